/**
 * The proxy data plane over loopback with real TCP clients and backends: scheduling sequences,
 * persistence, thresholds, the TCP state machine and counters, half-close, failures, PROXY
 * protocol headers, configuration errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Ipvs } from '../../src/core/ipvs.js';
import { Flow } from '../../src/core/flow.js';
import { decodeProxyHeader } from '../../src/dataplane/proxy/index.js';
import { lastDataAddon } from '../../src/dataplane/proxy/last-data.js';
import {
  type Backend,
  type Lb,
  closed,
  connect,
  freePort,
  masq,
  readUntil,
  startBackend,
  startLb,
  tcpService,
  until,
  whoAnswers,
} from '../dataplane/proxy-helpers.js';

/** The destination ports a twin Ipvs with the same configuration schedules for `n` new clients. */
function expectedSequence(
  scheduler: string,
  dests: { port: number; weight: number }[],
  n: number,
): number[] {
  const ipvs = new Ipvs({ log: () => {} });
  const svc = tcpService(80, scheduler, { addr: '10.0.0.1' });
  ipvs.addService(svc);
  for (const d of dests) ipvs.addDest(svc, masq(d.port, d.weight));
  const s = ipvs.findService(svc)!;
  const flow = new Flow();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    flow.set(2, 6, [0x7f000001], 10000 + i, [0x0a000001], 80);
    const h = ipvs.ops.schedule(s, flow);
    out.push(ipvs.ops.dest(h)!.port);
  }
  ipvs.close();
  return out;
}

describe('proxy data plane (TCP)', () => {
  let lb: Lb;
  let backends: Backend[];
  const open: net.Socket[] = [];

  before(async () => {
    lb = await startLb();
    backends = [await startBackend('a'), await startBackend('b'), await startBackend('c')];
  });
  after(async () => {
    for (const s of open) s.destroy();
    await lb.close();
    for (const b of backends) await b.close();
  });

  const nameOf = (port: number) => backends.find((b) => b.port === port)!.name;

  async function sequence(port: number, n: number): Promise<string[]> {
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const { name, sock } = await whoAnswers(port);
      names.push(name);
      sock.end();
      await closed(sock);
    }
    return names;
  }

  for (const [sched, weights] of [
    ['rr', [1, 1, 1]],
    ['wrr', [3, 2, 1]],
  ] as const) {
    it(`sends new connections in the ${sched} scheduler's sequence`, async () => {
      const port = await freePort();
      const svc = tcpService(port, sched);
      lb.ctl.run({ cmd: 'newService', service: svc });
      const dests = backends.map((b, i) => ({ port: b.port, weight: weights[i]! }));
      for (const d of dests)
        lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(d.port, d.weight) });
      const got = await sequence(port, 12);
      assert.deepEqual(got, expectedSequence(sched, dests, 12).map(nameOf));
      lb.ctl.run({ cmd: 'delService', service: svc });
    });
  }

  it('tracks the TCP state machine and counts bytes and packets per destination, service and total', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backends[0]!.port) });
    const before = lb.ipvs.total.snapshot();
    const { sock } = await whoAnswers(port);
    await until(() =>
      lb.ipvs.listConns().some((c) => c.vport === port && c.stateName === 'ESTABLISHED'),
    );
    let info = lb.ipvs.getService(svc);
    assert.equal(info.dests[0]!.activeConns, 1);
    assert.equal(info.dests[0]!.inactConns, 0);
    sock.write('ping!');
    await readUntil(sock, (t) => t.includes('ping!'));
    sock.end(); // FIN in → CLOSE_WAIT, the backend's FIN → TIME_WAIT
    await closed(sock);
    await until(() =>
      lb.ipvs.listConns().some((c) => c.vport === port && c.stateName === 'TIME_WAIT'),
    );
    const conn = lb.ipvs.listConns().find((c) => c.vport === port && c.protocol === 6)!;
    assert.ok(
      conn.expiresMs > 100_000 && conn.expiresMs <= 120_000,
      `TIME_WAIT expires in ${conn.expiresMs}`,
    );
    info = lb.ipvs.getService(svc);
    const d = info.dests[0]!;
    assert.equal(d.activeConns, 0);
    assert.equal(d.inactConns, 1);
    assert.equal(d.stats.conns, 1);
    assert.equal(d.stats.inbytes, 5);
    // SYN, the handshake's ACK, the data, the FIN
    assert.equal(d.stats.inpkts, 4);
    assert.equal(d.stats.outbytes, 2 + 5); // "a\n" greeting + echo
    // SYN+ACK, greeting and echo (one read or two), the FIN
    assert.ok(d.stats.outpkts >= 3 && d.stats.outpkts <= 4, `outpkts ${d.stats.outpkts}`);
    assert.deepEqual(info.stats.inbytes, d.stats.inbytes);
    const after = lb.ipvs.total.snapshot();
    assert.equal(after.inbytes - before.inbytes, 5);
    assert.equal(after.conns - before.conns, 1);
    lb.ctl.run({ cmd: 'delService', service: svc });
  });

  it('pins a client to one real server with persistence', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr', { flags: 1, timeout: 300 });
    lb.ctl.run({ cmd: 'newService', service: svc });
    for (const b of backends) lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
    const got = await sequence(port, 6);
    assert.equal(new Set(got).size, 1, `all on one server: ${got.join(',')}`);
    const tmpl = lb.ipvs.listConns().filter((c) => c.vport === port && c.cport === 0);
    assert.equal(tmpl.length, 1);
    assert.equal(tmpl[0]!.stateName, 'ASSURED');
    lb.ctl.run({ cmd: 'delService', service: svc });
  });

  it('overflows to the next server when the upper threshold is reached', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'fo');
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({
      cmd: 'newDest',
      service: svc,
      dest: masq(backends[0]!.port, 100, { uThreshold: 2 }),
    });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backends[1]!.port, 1) });
    const held: net.Socket[] = [];
    const names: string[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const { name, sock } = await whoAnswers(port);
        names.push(name);
        held.push(sock);
        open.push(sock);
      }
      // fo sends everything to the heaviest server until it is OVERLOADed at 2 connections
      assert.deepEqual(names, ['a', 'a', 'b', 'b']);
      const a = lb.ipvs.getService(svc).dests.find((d) => d.port === backends[0]!.port)!;
      assert.equal(a.activeConns, 2);
    } finally {
      for (const s of held) s.destroy();
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('relays half-close in both directions', async () => {
    const port = await freePort();
    const b = await startBackend('h', { endOnEnd: false });
    try {
      const svc = tcpService(port, 'rr');
      lb.ctl.run({ cmd: 'newService', service: svc });
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
      // client half-closes first; the server still sends, then closes
      const c1 = await connect(port);
      await readUntil(c1, (t) => t.includes('h\n'));
      c1.end('bye');
      await until(() => [...b.sockets].some((s) => s.readableEnded));
      await until(() =>
        lb.ipvs.listConns().some((c) => c.vport === port && c.stateName === 'CLOSE_WAIT'),
      );
      const srv = [...b.sockets][0]!;
      const tail = readUntil(c1, (t) => t.includes('after-fin'));
      srv.write('after-fin');
      await tail;
      srv.end();
      await closed(c1);
      await until(() =>
        lb.ipvs.listConns().some((c) => c.vport === port && c.stateName === 'TIME_WAIT'),
      );
      // server half-closes first; the client still sends
      const c2 = await connect(port);
      await readUntil(c2, (t) => t.includes('h\n'));
      await until(() => b.sockets.size === 1);
      const srv2 = [...b.sockets][0]!;
      const ended = new Promise<void>((r) => c2.once('end', () => r()));
      srv2.end();
      await ended;
      await until(() =>
        lb.ipvs.listConns().some((c) => c.vport === port && c.stateName === 'FIN_WAIT'),
      );
      const got = new Promise<string>((r) => srv2.once('data', (d: Buffer) => r(d.toString())));
      c2.write('still-here');
      assert.equal(await got, 'still-here');
      c2.end();
      await closed(c2);
      lb.ctl.run({ cmd: 'delService', service: svc });
    } finally {
      await b.close();
    }
  });

  /**
   * A backend that answers each request with `reply(i)` and its FIN already queued behind it (both
   * in one segment, through the addon), as a server looks to the proxy when its FIN arrives before
   * the proxy reads the reply: nginx's `Connection: close` responses under load.
   */
  async function replyAndFinBackend(reply: (i: number) => Buffer) {
    const last = lastDataAddon()!;
    let i = 0;
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      // our FIN went by the addon, so Node does not know this side is done: close on the peer's
      s.on('end', () => s.destroy());
      s.once('data', () => {
        const body = reply(i++);
        const fd = (s as unknown as { _handle: { fd: number } })._handle.fd;
        // a reply larger than the socket buffer: the first part by Node, the last bytes + FIN
        const head = body.subarray(0, Math.max(0, body.length - 1000));
        const tail = body.subarray(head.length);
        const finish = () => {
          const r = last.tcpSendFin(fd, tail, tail.length);
          assert.equal(r, tail.length, 'backend could not send its last bytes and FIN');
        };
        if (head.length === 0 || s.write(head)) finish();
        else s.once('drain', finish);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return { server, port: (server.address() as net.AddressInfo).port };
  }

  /** TIME_WAIT sockets on this host as [local port, peer port] pairs (ss, from iproute2). */
  function timeWaits(): [number, number][] {
    // a machine that just ran a benchmark holds tens of thousands of them: room for all
    const r = spawnSync('ss', ['-Htan', 'state', 'time-wait'], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    });
    assert.equal(r.status, 0, `ss failed: ${r.stderr}`);
    return r.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 4)
      .map((f) => [Number(f[2]!.split(':').pop()), Number(f[3]!.split(':').pop())]);
  }

  const needsAddon = {
    skip: lastDataAddon() ? undefined : 'needs the native addon (node native/build.mjs)',
  };

  /** Runs `body` against a fresh rr service whose one real server is `replyAndFinBackend(reply)`. */
  async function viaReplyAndFin(
    reply: (i: number) => Buffer,
    body: (port: number) => Promise<void>,
  ): Promise<void> {
    const port = await freePort();
    const b = await replyAndFinBackend(reply);
    const svc = tcpService(port, 'rr');
    try {
      lb.ctl.run({ cmd: 'newService', service: svc });
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
      await body(port);
      lb.ctl.run({ cmd: 'delService', service: svc });
    } finally {
      await new Promise<void>((r) => b.server.close(() => r()));
    }
  }

  it(
    "sends its FIN with the real server's last data, so the client closes second",
    needsAddon,
    async () => {
      await viaReplyAndFin(
        (i) => Buffer.from(`reply ${i}\n`),
        async (port) => {
          for (let k = 0; k < 3; k++) {
            // a client that closes as soon as it has its reply, as wrk and HTTP/1.0 clients do
            const c = await connect(port);
            const cport = c.localPort!;
            let got = '';
            let endedFirst = false;
            c.on('data', (d: Buffer) => {
              got += d.toString();
              // the FIN came on the reply's segment: the kernel has it before we read the data
              endedFirst = spawnSync(
                'ss',
                ['-Htan', 'state', 'close-wait', `( sport = :${cport} )`],
                {
                  encoding: 'utf8',
                },
              ).stdout.includes(`:${cport}`);
              c.end();
            });
            c.write('GET');
            await closed(c);
            assert.equal(got, `reply ${k}\n`);
            assert.ok(
              endedFirst,
              'the client socket was not in CLOSE_WAIT when the reply was read',
            );
            // the proxy's side holds the TIME_WAIT, the client's port is free at once
            const tw = timeWaits();
            assert.ok(
              tw.some(([l, r]) => l === port && r === cport),
              'no TIME_WAIT on the VIP side',
            );
            assert.ok(
              !tw.some(([l, r]) => l === cport && r === port),
              'TIME_WAIT on the client side',
            );
          }
          await until(
            () =>
              lb.ipvs
                .listConns()
                .filter((c) => c.vport === port)
                .every((c) => c.stateName === 'TIME_WAIT'),
            3000,
            'entries in TIME_WAIT',
          );
          assert.equal(lb.ipvs.listConns().filter((c) => c.vport === port).length, 3);
        },
      );
    },
  );

  it(
    'closes both sides when the reply and FIN come after the client half-closed',
    needsAddon,
    async () => {
      await viaReplyAndFin(
        (i) => Buffer.from(`late reply ${i}\n`),
        async (port) => {
          const before = lb.plane.open.tcp;
          for (let k = 0; k < 3; k++) {
            const c = await connect(port);
            const got = readUntil(c, (t) => t.includes('\n'));
            c.end('GET'); // request and our FIN first; the server answers after it
            assert.equal(await got, `late reply ${k}\n`);
            await closed(c);
          }
          // nothing is left open on the proxy: both sides of every connection were closed, and
          // each entry went CLOSE_WAIT → TIME_WAIT
          await until(() => lb.plane.open.tcp === before, 5000, 'proxied connections to close');
          const states = lb.ipvs
            .listConns()
            .filter((c) => c.vport === port)
            .map((c) => c.stateName);
          assert.deepEqual(states, ['TIME_WAIT', 'TIME_WAIT', 'TIME_WAIT']);
        },
      );
    },
  );

  it(
    'delivers a bulk reply ending in the FIN intact to a client that reads slowly',
    needsAddon,
    async () => {
      const bodies: Buffer[] = [];
      await viaReplyAndFin(
        (i) => (bodies[i] = randomBytes(3_000_000 + i * 777)),
        async (port) => {
          for (let k = 0; k < 3; k++) {
            const c = await connect(port);
            const h = createHash('sha256');
            let n = 0;
            c.on('data', (d: Buffer) => {
              h.update(d);
              n += d.length;
              // pause after every read, so the proxy's writes toward us queue and resume
              c.pause();
              setTimeout(() => c.resume(), 1);
            });
            const ended = new Promise<void>((r) => c.once('end', () => r()));
            // read nothing at first: the proxy's socket buffers toward us fill up
            c.pause();
            c.write('GET');
            setTimeout(() => c.resume(), 150);
            await ended;
            c.end();
            await closed(c);
            assert.equal(n, bodies[k]!.length);
            assert.equal(h.digest('hex'), createHash('sha256').update(bodies[k]!).digest('hex'));
          }
        },
      );
    },
  );

  it('closes the client promptly when the real server refuses, and counts the failure', async () => {
    const port = await freePort();
    let dead = await freePort();
    while (dead === port) dead = await freePort();
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(dead) });
    const before = lb.plane.counters.connectFailures;
    const openBefore = lb.plane.open.tcp;
    const s = await connect(port);
    const t0 = Date.now();
    s.on('error', () => {});
    await closed(s);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(lb.plane.counters.connectFailures, before + 1);
    const d = lb.ipvs.getService(svc).dests[0]!;
    assert.equal(d.connectFailures, 1);
    assert.equal(d.activeConns, 0);
    await until(() => lb.plane.open.tcp <= openBefore);
    lb.ctl.run({ cmd: 'delService', service: svc });
  });

  it('closes clients of a backend that is killed mid-connection', async () => {
    const port = await freePort();
    const b = await startBackend('k');
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
    const { sock } = await whoAnswers(port);
    sock.on('error', () => {});
    for (const s of b.sockets) s.resetAndDestroy();
    await b.close();
    await closed(sock);
    await until(() => lb.ipvs.listConns().some((c) => c.vport === port && c.stateName === 'CLOSE'));
    // the next client is refused promptly and counted
    const s2 = await connect(port);
    s2.on('error', () => {});
    await closed(s2);
    assert.equal(lb.ipvs.getService(svc).dests[0]!.connectFailures, 1);
    lb.ctl.run({ cmd: 'delService', service: svc });
  });

  for (const v of ['v1', 'v2'] as const) {
    it(`sends a PROXY protocol ${v} header to the real server`, async () => {
      const port = await freePort();
      const b = await startBackend('p', { greet: false });
      try {
        const svc = tcpService(port, 'rr', { ext: { 'proxy-protocol': v } });
        lb.ctl.run({ cmd: 'newService', service: svc });
        lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
        assert.equal(lb.ipvs.getService(svc).ext?.['proxy-protocol'], v);
        const s = await connect(port);
        s.write('payload');
        await readUntil(s, (t) => t.includes('payload'));
        const raw = Buffer.concat(b.received[0] ?? []);
        const hdr = decodeProxyHeader(raw);
        assert.ok(typeof hdr === 'object', `header: ${String(hdr)}`);
        assert.equal(hdr.version, v === 'v1' ? 1 : 2);
        assert.deepEqual(hdr.addrs, {
          af: 2,
          transport: 'tcp',
          srcAddr: '127.0.0.1',
          srcPort: s.localPort,
          dstAddr: '127.0.0.1',
          dstPort: port,
        });
        assert.equal(raw.subarray(hdr.length).toString(), 'payload');
        s.end();
        await closed(s);
        lb.ctl.run({ cmd: 'delService', service: svc });
      } finally {
        await b.close();
      }
    });
  }

  it('a service on 0.0.0.0 names the address the client connected to in its PROXY header', async () => {
    const port = await freePort();
    const b = await startBackend('p', { greet: false });
    try {
      const svc = tcpService(port, 'rr', { addr: '0.0.0.0', ext: { 'proxy-protocol': 'v2' } });
      lb.ctl.run({ cmd: 'newService', service: svc });
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
      const s = await connect(port, { host: '127.0.0.5' });
      s.write('x');
      await readUntil(s, (t) => t.includes('x'));
      const hdr = decodeProxyHeader(Buffer.concat(b.received[0] ?? []));
      assert.ok(typeof hdr === 'object', `header: ${String(hdr)}`);
      assert.equal(hdr.addrs?.dstAddr, '127.0.0.5');
      assert.equal(hdr.addrs?.dstPort, port);
      s.end();
      await closed(s);
      lb.ctl.run({ cmd: 'delService', service: svc });
    } finally {
      await b.close();
    }
  });

  it('keeps existing connections on a quiesced (weight 0) server and sends new ones elsewhere', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backends[0]!.port) });
    const { name, sock } = await whoAnswers(port);
    assert.equal(name, 'a');
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backends[1]!.port) });
    lb.ctl.run({ cmd: 'setDest', service: svc, dest: masq(backends[0]!.port, 0) });
    sock.write('still');
    await readUntil(sock, (t) => t.includes('still'));
    const next = await sequence(port, 3);
    assert.deepEqual(next, ['b', 'b', 'b']);
    sock.end();
    await closed(sock);
    lb.ctl.run({ cmd: 'delService', service: svc });
  });

  it('holds a client whose server was deleted, still relays the server, and goes on once it is added back', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    const b = backends[2]!;
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
    try {
      const { name, sock } = await whoAnswers(port);
      assert.equal(name, 'c');
      const rs = [...b.sockets].at(-1)!;
      let text = '';
      sock.on('data', (d: Buffer) => (text += d.toString()));
      // an exchange first: a keep-alive connection may be in the native relay when it is deleted
      sock.write('one');
      await until(() => text.includes('one'), 3000, 'the first echo');
      lb.ctl.run({ cmd: 'delDest', service: svc, dest: masq(b.port) });
      // IPVS drops the client's segments now (expire_nodest_conn = 0): nothing reaches the server
      sock.write('two');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(Buffer.concat(b.received.at(-1)!).toString(), 'one');
      // … and still NATs the real server's back to the client (handle_response)
      rs.write('push');
      await until(() => text.includes('push'), 3000, 'the server’s push');
      const entry = () => lb.ipvs.listConns().find((c) => c.vport === port)!;
      assert.equal(entry().stateName, 'ESTABLISHED');
      // added back, the destination comes from the trash with its connection: the client's
      // bytes go on (as its retransmissions would), nothing lost
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
      await until(() => text.includes('two'), 3000, 'the held bytes’ echo');
      sock.write('three');
      await until(() => text.includes('three'), 3000, 'the echo after the re-add');
      assert.equal(Buffer.concat(b.received.at(-1)!).toString(), 'onetwothree');
      assert.equal(lb.ipvs.getService(svc).dests[0]!.activeConns, 1);
      sock.end();
      await closed(sock);
    } finally {
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('closes connections of a deleted server with expire_nodest_conn', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backends[2]!.port) });
    lb.ctl.run({ cmd: 'setSysctl', name: 'expire_nodest_conn', value: 1 });
    try {
      const { sock } = await whoAnswers(port);
      sock.on('error', () => {});
      lb.ctl.run({ cmd: 'delDest', service: svc, dest: masq(backends[2]!.port) });
      await closed(sock);
      assert.equal(lb.ipvs.listConns().filter((c) => c.vport === port).length, 0);
    } finally {
      lb.ctl.run({ cmd: 'setSysctl', name: 'expire_nodest_conn', value: 0 });
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('a client port reused after TIME_WAIT is scheduled again when the old entry’s server was deleted', async () => {
    // two servers that send their name and close first (the VIP side then holds the TIME_WAIT,
    // so the client may reuse its port at once)
    const names = ['x', 'y'];
    const servers = names.map((n) =>
      net.createServer({ allowHalfOpen: true }, (c) => {
        c.on('error', () => {});
        c.end(n);
      }),
    );
    const sports: number[] = [];
    for (const srv of servers) {
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      sports.push((srv.address() as net.AddressInfo).port);
    }
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    for (const sp of sports) lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(sp) });
    const localPort = await freePort();
    const ask = async (): Promise<string> => {
      const c = await connect(port, { localPort });
      let got = '';
      c.on('data', (d: Buffer) => (got += d.toString()));
      await new Promise<void>((r) => c.once('end', () => r()));
      c.end();
      await closed(c);
      return got;
    };
    try {
      const refused = lb.plane.counters.refusedNodest;
      const first = await ask();
      assert.ok(names.includes(first), first);
      const entry = () =>
        lb.ipvs.listConns().find((c) => c.vport === port && c.cport === localPort);
      await until(() => entry()?.stateName === 'TIME_WAIT', 3000, 'the entry in TIME_WAIT');
      // the entry's server is deleted; conn_reuse_mode (1) still takes the SYN for a new
      // connection (spec §5.2 step 8 before step 9), so the client goes to the other server
      lb.ctl.run({
        cmd: 'delDest',
        service: svc,
        dest: { addr: '127.0.0.1', port: sports[names.indexOf(first)]! },
      });
      const second = await ask();
      assert.equal(
        second,
        names.find((n) => n !== first),
      );
      assert.equal(lb.plane.counters.refusedNodest, refused);
    } finally {
      lb.ctl.run({ cmd: 'delService', service: svc });
      for (const srv of servers) await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('expire_nodest_conn turned on after the deletion ends a held connection at its client’s next bytes', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    const b = backends[2]!;
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
    const entries = () => lb.ipvs.listConns().filter((c) => c.vport === port).length;
    const earlier = b.received.length;
    try {
      // two clients, each after an exchange (either may be in the native relay)
      const idle = await whoAnswers(port);
      const busy = await whoAnswers(port);
      for (const { sock } of [idle, busy]) {
        sock.on('error', () => {});
        let text = '';
        sock.on('data', (d: Buffer) => (text += d.toString()));
        sock.write('one');
        await until(() => text.includes('one'), 3000, 'the first echo');
      }
      lb.ctl.run({ cmd: 'delDest', service: svc, dest: masq(b.port) });
      // the busy client's bytes are dropped (held) while expire_nodest_conn is 0
      busy.sock.write('two');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(entries(), 2);
      lb.ctl.run({ cmd: 'setSysctl', name: 'expire_nodest_conn', value: 1 });
      // held bytes: under IPVS the client retransmits them and its next segment ends the entry
      await until(() => busy.sock.closed, 3000, 'the busy client closed');
      assert.equal(entries(), 1);
      // the idle one stays until its client sends again, as no packet of it reaches IPVS
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(idle.sock.destroyed, false);
      assert.equal(entries(), 1);
      idle.sock.write('three');
      await until(() => idle.sock.closed, 3000, 'the idle client closed at its next bytes');
      assert.equal(entries(), 0);
      const got = b.received.slice(earlier).map((r) => Buffer.concat(r).toString());
      assert.deepEqual(got, ['one', 'one'], 'nothing after the deletion reached the server');
    } finally {
      lb.ctl.run({ cmd: 'setSysctl', name: 'expire_nodest_conn', value: 0 });
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('closes an idle connection when its entry expires on the --set timeout', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backends[0]!.port) });
    lb.ctl.run({ cmd: 'setConfig', timeouts: { tcp: 1, tcpfin: 0, udp: 0 } });
    try {
      const { sock } = await whoAnswers(port);
      sock.on('error', () => {});
      const t0 = Date.now();
      await closed(sock);
      const waited = Date.now() - t0;
      assert.ok(waited >= 700 && waited < 4000, `closed after ${waited} ms`);
    } finally {
      lb.ctl.run({ cmd: 'setConfig', timeouts: { tcp: 900, tcpfin: 0, udp: 0 } });
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('listens while a service exists and stops when it is deleted', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    assert.ok(lb.plane.listeners().some((l) => l.port === port && l.protocol === 'tcp'));
    lb.ctl.run({ cmd: 'delService', service: svc });
    assert.ok(!lb.plane.listeners().some((l) => l.port === port));
    await assert.rejects(connect(port), /ECONNREFUSED/);
  });

  it('refuses clients as the kernel does (ECONNREFUSED) while no destination could take one', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    const accepting = (): boolean => lb.plane.listeners().find((l) => l.port === port)!.accepting;
    lb.ctl.run({ cmd: 'newService', service: svc });
    await assert.rejects(connect(port), /ECONNREFUSED/, 'no destination');
    assert.equal(accepting(), false);
    const b = backends[0]!;
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port, 0) });
    await assert.rejects(connect(port), /ECONNREFUSED/, 'only a destination of weight 0');
    lb.ctl.run({ cmd: 'setDest', service: svc, dest: masq(b.port, 1) });
    const { name, sock } = await whoAnswers(port);
    assert.deepEqual([name, accepting()], ['a', true]);
    lb.ctl.run({ cmd: 'delDest', service: svc, dest: { addr: '127.0.0.1', port: b.port } });
    await assert.rejects(connect(port), /ECONNREFUSED/, 'its destination deleted');
    sock.destroy();
    lb.ctl.run({ cmd: 'delService', service: svc });
  });

  it('refuses clients while every destination is OVERLOADed, and takes them once one is not', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'wlc');
    const accepting = (): boolean => lb.plane.listeners().find((l) => l.port === port)!.accepting;
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({
      cmd: 'newDest',
      service: svc,
      dest: masq(backends[0]!.port, 1, { uThreshold: 1 }),
    });
    lb.ctl.run({
      cmd: 'newDest',
      service: svc,
      dest: masq(backends[1]!.port, 1, { uThreshold: 1 }),
    });
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) held.push((await whoAnswers(port)).sock);
      // both at their upper threshold: a SYN would get port unreachable from kernel IPVS
      await until(() => !accepting());
      await assert.rejects(connect(port), /ECONNREFUSED/);
      // the last connection's entry goes: its destination drops below 3/4 of the threshold
      held.pop()!.destroy();
      const closedOne = (): number | undefined =>
        lb.ipvs.conns
          .handles()
          .find((x) => lb.ipvs.conns.vport(x) === port && lb.ipvs.ops.dest(x)?.activeConns === 0);
      await until(() => closedOne() !== undefined);
      assert.equal(accepting(), false, 'a closed entry still counts (InActConn)');
      lb.ipvs.ops.expireNow(closedOne()!);
      await until(() => accepting());
      const { sock } = await whoAnswers(port);
      held.push(sock);
    } finally {
      for (const s of held) s.destroy();
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('a persistent service with only quiescent destinations listens; a client none takes is reset', async () => {
    // a client with a persistence template would still reach its quiescent destination
    const port = await freePort();
    const svc = tcpService(port, 'rr', { flags: 1, timeout: 300 });
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backends[0]!.port, 0) });
    const before = lb.plane.counters.refusedNoDest;
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    await closed(s);
    assert.equal(lb.plane.counters.refusedNoDest, before + 1);
    lb.ctl.run({ cmd: 'delService', service: svc });
  });
});

describe('proxy data plane configuration errors', () => {
  let lb: Lb;
  before(async () => {
    lb = await startLb();
  });
  after(async () => {
    await lb.close();
  });

  it('refuses DR and tunnel destinations, naming the packet data plane', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    for (const fwd of [2, 3]) {
      assert.throws(
        () => lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(8080, 1, { fwd }) }),
        (e: Error & { code?: string }) =>
          e.code === 'IPVS_ERR_PROXY_FORWARDING' && /packet data plane/.test(e.message),
      );
    }
    assert.equal(lb.ipvs.getService(svc).dests.length, 0);
    lb.ctl.run({ cmd: 'delService', service: svc });
    // an IPv6 destination is named in brackets
    const svc6 = tcpService(port, 'rr', { af: 10, addr: '::1', netmask: 128 });
    lb.ctl.run({ cmd: 'newService', service: svc6 });
    assert.throws(
      () =>
        lb.ctl.run({
          cmd: 'newDest',
          service: svc6,
          dest: { ...masq(8080, 1, { fwd: 3 }), addr: '::1' },
        }),
      (e: Error) => e.message.startsWith('destination [::1]:8080: direct routing'),
    );
    lb.ctl.run({ cmd: 'delService', service: svc6 });
  });

  it('refuses fwmark services, naming the packet data plane', () => {
    assert.throws(
      () =>
        lb.ctl.run({ cmd: 'newService', service: tcpService(0, 'rr', { fwmark: 7, addr: '' }) }),
      (e: Error & { code?: string }) =>
        e.code === 'IPVS_ERR_PROXY_FWMARK' && /packet data plane/.test(e.message),
    );
    assert.equal(lb.ipvs.listServices().length, 0);
  });

  it('refuses a VIP it cannot bind with the OS error, and applies nothing', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      assert.throws(
        () => lb.ctl.run({ cmd: 'newService', service: tcpService(port) }),
        (e: Error & { code?: string; errno?: string }) =>
          e.code === 'IPVS_ERR_PROXY_BIND' && e.errno === 'EADDRINUSE' && /in use/.test(e.message),
      );
      assert.equal(lb.ipvs.listServices().length, 0);
      assert.throws(
        () =>
          lb.ctl.run({ cmd: 'newService', service: tcpService(80, 'rr', { addr: '192.0.2.77' }) }),
        (e: Error & { code?: string; errno?: string }) =>
          e.code === 'IPVS_ERR_PROXY_BIND' && e.errno === 'EADDRNOTAVAIL',
      );
      assert.equal(lb.ipvs.listServices().length, 0);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it('releases the listener when core refuses the command after it was bound', async () => {
    const port = await freePort();
    assert.throws(
      () => lb.ctl.run({ cmd: 'newService', service: tcpService(port, 'no-such-sched') }),
      /not found/,
    );
    await new Promise((r) => setImmediate(r));
    await assert.rejects(connect(port), /ECONNREFUSED/);
    // the port is free again
    lb.ctl.run({ cmd: 'newService', service: tcpService(port) });
    lb.ctl.run({ cmd: 'delService', service: tcpService(port) });
  });

  it('refuses a bad proxy-protocol option', async () => {
    const port = await freePort();
    assert.throws(
      () =>
        lb.ctl.run({
          cmd: 'newService',
          service: tcpService(port, 'rr', { ext: { 'proxy-protocol': 'v3' } }),
        }),
      (e: Error & { code?: string }) => e.code === 'IPVS_ERR_PROXY_OPTION',
    );
    assert.throws(
      () =>
        lb.ctl.run({
          cmd: 'newService',
          service: tcpService(port, 'rr', { protocol: 17, ext: { 'proxy-protocol': 'v1' } }),
        }),
      (e: Error & { code?: string }) => e.code === 'IPVS_ERR_PROXY_OPTION',
    );
    assert.equal(lb.ipvs.listServices().length, 0);
  });
});
