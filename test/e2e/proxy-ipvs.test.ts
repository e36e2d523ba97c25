/**
 * The proxy data plane as `ipvsadm -Ln --stats` and `-L -c` show it, against what IPVS shows for
 * the same traffic: the segments of a connection that carried no data and of a refused one are
 * counted, IPv6 services on [::1] with the exact PROXY protocol v1/v2 header bytes, and
 * replies of a UDP flow whose real server was deleted.
 */
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
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
} from '../dataplane/proxy-helpers.js';

/** An echo backend on [::1] that records the raw bytes of each connection. */
async function v6Backend(): Promise<{
  port: number;
  received: Buffer[][];
  close(): Promise<void>;
}> {
  const received: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    const chunks: Buffer[] = [];
    received.push(chunks);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      s.write(d);
    });
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, '::1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The PROXY v2 header bytes (signature, version/command, family/transport, length, addresses). */
function v2Bytes(famProto: number, addrs: number[], sport: number, dport: number): Buffer {
  const sig = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  const len = addrs.length + 4;
  return Buffer.from([
    ...sig,
    0x21,
    famProto,
    len >> 8,
    len & 0xff,
    ...addrs,
    sport >> 8,
    sport & 0xff,
    dport >> 8,
    dport & 0xff,
  ]);
}

describe('proxy data plane: what ipvsadm shows, as IPVS shows it', () => {
  let lb: Lb;
  before(async () => {
    lb = await startLb();
  });
  after(async () => {
    await lb.close();
  });

  it('counts the SYN, the handshake and the FINs of a connection that carried no data', async () => {
    const b = await startBackend('n', { greet: false });
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    try {
      lb.ctl.run({ cmd: 'newService', service: svc });
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
      const s = await connect(port);
      await until(() => b.sockets.size === 1);
      await until(() =>
        lb.ipvs.listConns().some((c) => c.vport === port && c.stateName === 'ESTABLISHED'),
      );
      // SYN in, then the real server's SYN+ACK out and the client's ACK in
      let d = lb.ipvs.getService(svc).dests[0]!;
      assert.deepEqual(
        [d.stats.conns, d.stats.inpkts, d.stats.outpkts, d.stats.inbytes, d.stats.outbytes],
        [1, 2, 1, 0, 0],
      );
      s.end(); // FIN in → CLOSE_WAIT; the real server's FIN out → TIME_WAIT
      await closed(s);
      await until(() =>
        lb.ipvs.listConns().some((c) => c.vport === port && c.stateName === 'TIME_WAIT'),
      );
      d = lb.ipvs.getService(svc).dests[0]!;
      // IPVS counts every segment it forwards: never fewer packets than connections
      assert.deepEqual(
        [d.stats.conns, d.stats.inpkts, d.stats.outpkts, d.stats.inbytes, d.stats.outbytes],
        [1, 3, 2, 0, 0],
      );
      const svcStats = lb.ipvs.getService(svc).stats;
      assert.deepEqual([svcStats.inpkts, svcStats.outpkts], [3, 2]);
    } finally {
      lb.ctl.run({ cmd: 'delService', service: svc });
      await b.close();
    }
  });

  it('counts the SYN in and the RST out of a connection the real server refuses', async () => {
    const port = await freePort();
    const dead = await freePort();
    const svc = tcpService(port, 'rr');
    try {
      lb.ctl.run({ cmd: 'newService', service: svc });
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(dead) });
      const s = await connect(port);
      s.on('error', () => {});
      await closed(s);
      const d = lb.ipvs.getService(svc).dests[0]!;
      assert.deepEqual(
        [d.stats.conns, d.stats.inpkts, d.stats.outpkts, d.stats.inbytes, d.stats.outbytes],
        [1, 1, 1, 0, 0],
      );
      // SYN_RECV → CLOSE (10 s), inactive
      assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
      const e = lb.ipvs.listConns().find((c) => c.vport === port)!;
      assert.equal(e.stateName, 'CLOSE');
      assert.ok(e.expiresMs > 9000 && e.expiresMs <= 10_000, `expires in ${e.expiresMs} ms`);
    } finally {
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  for (const v of ['v1', 'v2'] as const) {
    it(`serves an IPv6 VIP with a [::1] real server and sends the exact PROXY ${v} header`, async () => {
      const b = await v6Backend();
      const port = await freePort();
      const svc = tcpService(port, 'rr', {
        af: 10,
        addr: '::1',
        netmask: 128,
        ext: { 'proxy-protocol': v },
      });
      try {
        lb.ctl.run({ cmd: 'newService', service: svc });
        lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port, 1, { addr: '::1' }) });
        const s = await connect(port, { host: '::1' });
        s.write('six');
        await readUntil(s, (t) => t.includes('six'));
        const cport = s.localPort!;
        const raw = Buffer.concat(b.received[0]!);
        const one = [...Buffer.alloc(15), 1];
        const hdr =
          v === 'v1'
            ? Buffer.from(`PROXY TCP6 ::1 ::1 ${cport} ${port}\r\n`, 'latin1')
            : v2Bytes(0x21, [...one, ...one], cport, port);
        assert.deepEqual(raw, Buffer.concat([hdr, Buffer.from('six')]));
        const e = lb.ipvs.listConns().find((c) => c.vport === port)!;
        assert.equal(e.stateName, 'ESTABLISHED');
        assert.equal(e.caddr, '::1');
        s.end();
        await closed(s);
      } finally {
        lb.ctl.run({ cmd: 'delService', service: svc });
        await b.close();
      }
    });
  }

  it('sends the exact PROXY v1 and v2 header bytes for IPv4', async () => {
    const b = await startBackend('p', { greet: false });
    try {
      for (const v of ['v1', 'v2'] as const) {
        const port = await freePort();
        const svc = tcpService(port, 'rr', { ext: { 'proxy-protocol': v } });
        lb.ctl.run({ cmd: 'newService', service: svc });
        lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
        const s = await connect(port);
        s.write('four');
        await readUntil(s, (t) => t.includes('four'));
        const cport = s.localPort!;
        const raw = Buffer.concat(b.received.at(-1)!);
        const hdr =
          v === 'v1'
            ? Buffer.from(`PROXY TCP4 127.0.0.1 127.0.0.1 ${cport} ${port}\r\n`, 'latin1')
            : v2Bytes(0x11, [127, 0, 0, 1, 127, 0, 0, 1], cport, port);
        assert.deepEqual(raw, Buffer.concat([hdr, Buffer.from('four')]));
        s.end();
        await closed(s);
        lb.ctl.run({ cmd: 'delService', service: svc });
      }
    } finally {
      await b.close();
    }
  });
  it('still delivers the replies of a UDP flow whose real server was deleted, uncounted', async () => {
    const rs = dgram.createSocket('udp4');
    await new Promise<void>((r) => rs.bind(0, '127.0.0.1', () => r()));
    let peer: dgram.RemoteInfo | null = null;
    rs.on('message', (m, r) => {
      peer = r;
      rs.send(`re:${m.toString()}`, r.port, r.address);
    });
    const client = dgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    const got: string[] = [];
    client.on('message', (m) => got.push(m.toString()));
    const port = await freePort(true);
    const svc = tcpService(port, 'rr', { protocol: 17 });
    try {
      lb.ctl.run({ cmd: 'newService', service: svc });
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(rs.address().port) });
      client.send('hello', port, '127.0.0.1');
      await until(() => got.length === 1);
      assert.equal(got[0], 're:hello');
      const statsBefore = lb.ipvs.getService(svc).stats;
      // a short UDP timeout, so the test sees whether the reply re-arms the entry (long enough
      // that a stall of the machine of a second or so changes nothing)
      lb.ctl.run({ cmd: 'setConfig', timeouts: { tcp: 0, tcpfin: 0, udp: 4 } });
      client.send('again', port, '127.0.0.1'); // re-arms with the 4 s timeout
      await until(() => got.length === 2);
      lb.ctl.run({ cmd: 'delDest', service: svc, dest: masq(rs.address().port) });
      // IPVS drops the client's datagrams (expire_nodest_conn = 0) …
      client.send('dropped', port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(got, ['re:hello', 're:again']);
      // … but NATs the real server's packets back to the client (handle_response), re-arming
      // the entry, and counts them only while the destination is available
      await new Promise((r) => setTimeout(r, 2300));
      rs.send('push', peer!.port, peer!.address);
      await until(() => got.length === 3, 1000, 'the pushed reply');
      assert.equal(got[2], 'push');
      await new Promise((r) => setTimeout(r, 2300));
      // 4.7 s after the last client datagram: alive only because the reply re-armed it
      const e = lb.ipvs.listConns().find((c) => c.vport === port && c.protocol === 17);
      assert.ok(e, 'the reply re-armed the entry');
      assert.equal(lb.ipvs.getService(svc).stats.outpkts, statsBefore.outpkts + 1);
    } finally {
      lb.ctl.run({ cmd: 'setConfig', timeouts: { tcp: 0, tcpfin: 0, udp: 300 } });
      lb.ctl.run({ cmd: 'delService', service: svc });
      client.close();
      rs.close();
    }
  });

  it('survives clients and real servers that reset, half-close or vanish at random, and its counts stay IPVS-consistent', async () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      const mode = rnd(4);
      if (mode === 0) s.resetAndDestroy();
      else if (mode === 1) s.end('bye');
      else if (mode === 2) setTimeout(() => s.destroyed || s.resetAndDestroy(), rnd(30));
      else {
        s.on('data', (d: Buffer) => s.write(d));
        s.on('end', () => s.end());
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const live = (server.address() as net.AddressInfo).port;
    const dead = await freePort();
    const port = await freePort();
    const svc = tcpService(port, 'wlc', { ext: { 'proxy-protocol': 'v2' } });
    try {
      lb.ctl.run({ cmd: 'newService', service: svc });
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(live, 3) });
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(dead, 1) });
      const clients: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        const m = rnd(6);
        const half = rnd(2) === 0;
        clients.push(
          new Promise((resolve) => {
            const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: half });
            s.on('error', () => {});
            s.on('data', () => {});
            s.on('close', () => resolve());
            const t = setTimeout(() => s.destroy(), 2000);
            s.on('close', () => clearTimeout(t));
            s.on('connect', () => {
              if (m === 0) s.resetAndDestroy();
              else if (m === 1) s.end(Buffer.alloc(rnd(100_000)));
              else if (m === 2) setTimeout(() => s.destroy(), rnd(20));
              else if (m === 3) s.end();
              else if (m === 4) {
                s.write('x');
                setTimeout(() => s.destroyed || s.resetAndDestroy(), rnd(20));
              } else setTimeout(() => s.end('late'), rnd(20));
            });
          }),
        );
        if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
      }
      await Promise.all(clients);
      await until(() => lb.plane.open.tcp === 0, 5000, 'every proxied connection to close');
      // ActiveConn / InActConn are the entries in active / inactive states, as in IPVS
      const active = new Set(['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'SYNACK']);
      const entries = lb.ipvs.listConns().filter((c) => c.vport === port && c.cport !== 0);
      const info = lb.ipvs.getService(svc);
      for (const d of info.dests) {
        const mine = entries.filter((c) => c.dport === d.port);
        const act = mine.filter((c) => active.has(c.stateName)).length;
        assert.equal(d.activeConns, act);
        assert.equal(d.inactConns, mine.length - act);
        assert.ok(d.stats.inpkts >= d.stats.conns, `InPkts ${d.stats.inpkts} < Conns`);
        if (d.port === dead) assert.equal(d.stats.outpkts, d.stats.conns); // one RST each
      }
    } finally {
      lb.ctl.run({ cmd: 'delService', service: svc });
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
