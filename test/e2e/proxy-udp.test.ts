/**
 * The proxy data plane's UDP flows over loopback: request/response through the VIP, replies from
 * the VIP address, per-flow scheduling and counters, one-packet scheduling, UDP timeout expiry,
 * a PROXY v2 header per datagram, SIP calls kept by Call-ID (--pe sip), clients refused (port
 * unreachable) while no destination takes them.
 */
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { CONN_F_TEMPLATE } from '../../src/core/constants.js';
import { Ipvs } from '../../src/core/ipvs.js';
import { ProxyDataplane, decodeProxyHeader } from '../../src/dataplane/proxy/index.js';
import { type Lb, freePort, masq, startLb, tcpService, until } from '../dataplane/proxy-helpers.js';

interface UdpBackend {
  name: string;
  port: number;
  sock: dgram.Socket;
  got: Buffer[];
}

async function udpBackend(name: string): Promise<UdpBackend> {
  const sock = dgram.createSocket('udp4');
  const b: UdpBackend = { name, port: 0, sock, got: [] };
  sock.on('message', (m, r) => {
    b.got.push(m);
    sock.send(`${name}:${m.toString('latin1')}`, r.port, r.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  b.port = sock.address().port;
  return b;
}

/** A UDP client bound to its own port; `ask` sends and waits for one reply. */
async function udpClient(): Promise<{
  sock: dgram.Socket;
  ask(port: number, text: string): Promise<{ text: string; from: string }>;
}> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return {
    sock,
    ask: (port, text) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no reply to ${text}`)), 2000);
        sock.once('message', (m, r) => {
          clearTimeout(t);
          resolve({ text: m.toString('latin1'), from: `${r.address}:${r.port}` });
        });
        sock.send(text, port, '127.0.0.1');
      }),
  };
}

/** What a client connected to 127.0.0.1:`port` hears after one datagram: a reply, ECONNREFUSED or nothing. */
async function hears(port: number): Promise<string> {
  const sock = dgram.createSocket('udp4');
  try {
    return await new Promise<string>((resolve) => {
      const t = setTimeout(() => resolve('nothing'), 1000);
      sock.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        resolve(e.code ?? e.message);
      });
      sock.on('message', (m) => {
        clearTimeout(t);
        resolve(m.toString('latin1'));
      });
      sock.connect(port, '127.0.0.1', () => sock.send('q'));
    });
  } finally {
    sock.close();
  }
}

describe('proxy data plane (UDP)', () => {
  let lb: Lb;
  let backends: UdpBackend[];
  before(async () => {
    lb = await startLb();
    backends = [await udpBackend('a'), await udpBackend('b')];
  });
  after(async () => {
    await lb.close();
    for (const b of backends) b.sock.close();
  });

  it('answers a request through the VIP, from the VIP, on one flow per client', async () => {
    const port = await freePort(true);
    const svc = tcpService(port, 'rr', { protocol: 17 });
    lb.ctl.run({ cmd: 'newService', service: svc });
    for (const b of backends) lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
    const c1 = await udpClient();
    const c2 = await udpClient();
    try {
      const r1 = await c1.ask(port, 'one');
      assert.equal(r1.from, `127.0.0.1:${port}`);
      const first = r1.text.split(':')[0];
      // the same client stays on its flow
      assert.equal((await c1.ask(port, 'two')).text, `${first}:two`);
      // another client is scheduled anew (rr → the other server)
      const r3 = await c2.ask(port, 'three');
      assert.notEqual(r3.text.split(':')[0], first);
      const conns = lb.ipvs.listConns().filter((c) => c.vport === port);
      assert.equal(conns.length, 2);
      assert.ok(conns.every((c) => c.stateName === 'UDP' && c.expiresMs > 290_000));
      const info = lb.ipvs.getService(svc);
      assert.equal(info.stats.conns, 2);
      assert.equal(info.stats.inpkts, 3);
      assert.equal(info.stats.outpkts, 3);
      assert.equal(info.stats.inbytes, 3 + 3 + 5);
      assert.ok(info.dests.every((d) => d.inactConns === 1 && d.activeConns === 0));
    } finally {
      c1.sock.close();
      c2.sock.close();
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('schedules every datagram with one-packet scheduling (-o)', async () => {
    const port = await freePort(true);
    const svc = tcpService(port, 'rr', { protocol: 17, flags: 4 });
    lb.ctl.run({ cmd: 'newService', service: svc });
    for (const b of backends) lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
    const c = await udpClient();
    try {
      const names: string[] = [];
      for (let i = 0; i < 4; i++) names.push((await c.ask(port, `m${i}`)).text.split(':')[0]!);
      assert.deepEqual(names.slice(0, 2).sort(), ['a', 'b']);
      assert.equal(names[0], names[2]);
      assert.equal(names[1], names[3]);
      assert.equal(lb.ipvs.listConns().filter((x) => x.vport === port).length, 0);
      assert.equal(lb.ipvs.getService(svc).stats.conns, 4);
    } finally {
      c.sock.close();
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('expires a flow on the UDP timeout and reschedules the client', async () => {
    const port = await freePort(true);
    const svc = tcpService(port, 'rr', { protocol: 17 });
    lb.ctl.run({ cmd: 'newService', service: svc });
    for (const b of backends) lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
    lb.ctl.run({ cmd: 'setConfig', timeouts: { tcp: 0, tcpfin: 0, udp: 1 } });
    const c = await udpClient();
    try {
      const first = (await c.ask(port, 'x')).text.split(':')[0];
      await until(() => lb.plane.open.udp === 0, 3000, 'flow expired');
      assert.equal(lb.ipvs.listConns().filter((x) => x.vport === port).length, 0);
      const again = (await c.ask(port, 'y')).text.split(':')[0];
      assert.notEqual(again, first);
    } finally {
      lb.ctl.run({ cmd: 'setConfig', timeouts: { tcp: 0, tcpfin: 0, udp: 300 } });
      c.sock.close();
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('keeps the calls of the SIP persistence engine (--pe sip) on their real server', async () => {
    const port = await freePort(true);
    // one-packet scheduling and a template per Call-ID, as SIP services are run
    const svc = tcpService(port, 'rr', { protocol: 17, flags: 1 | 4, timeout: 60, pe: 'sip' });
    lb.ctl.run({ cmd: 'newService', service: svc });
    for (const b of backends) lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
    const sip = (callId: string): string =>
      `OPTIONS sip:lb SIP/2.0\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\n\r\n`;
    const c1 = await udpClient();
    const c2 = await udpClient();
    try {
      const who = async (c: typeof c1, callId: string): Promise<string> =>
        (await c.ask(port, sip(callId))).text.split(':')[0]!;
      const a = await who(c1, 'call-a@example.test');
      const b = await who(c1, 'call-b@example.test');
      assert.notEqual(a, b, 'a new call is scheduled (rr)');
      // the same calls, from the same client and from another one, stay on their server
      for (let i = 0; i < 3; i++) {
        assert.equal(await who(c2, 'call-a@example.test'), a);
        assert.equal(await who(c1, 'call-b@example.test'), b);
      }
      const templates = lb.ipvs
        .listConns()
        .filter((c) => c.vport === port && c.flags & CONN_F_TEMPLATE);
      assert.deepEqual(templates.map((t) => t.peData).sort(), [
        'call-a@example.test',
        'call-b@example.test',
      ]);
      // a datagram without a Call-ID is dropped, as the kernel's engine does
      const before = lb.plane.counters.udpDropped;
      c1.sock.send('not sip', port, '127.0.0.1');
      await until(() => lb.plane.counters.udpDropped === before + 1, 1000, 'dropped');
    } finally {
      c1.sock.close();
      c2.sock.close();
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('prefixes each datagram with a PROXY v2 header when asked', async () => {
    const port = await freePort(true);
    const b = await udpBackend('p');
    const svc = tcpService(port, 'rr', { protocol: 17, ext: { 'proxy-protocol': 'v2' } });
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port) });
    const c = await udpClient();
    try {
      await c.ask(port, 'hello');
      const hdr = decodeProxyHeader(b.got[0]!);
      assert.ok(typeof hdr === 'object');
      assert.equal(hdr.version, 2);
      assert.equal(hdr.addrs?.transport, 'udp');
      assert.equal(hdr.addrs?.srcPort, c.sock.address().port);
      assert.equal(hdr.addrs?.dstPort, port);
      assert.equal(b.got[0]!.subarray(hdr.length).toString(), 'hello');
    } finally {
      c.sock.close();
      b.sock.close();
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('refuses clients as the kernel does (port unreachable) while no destination could take one', async () => {
    const port = await freePort(true);
    const svc = tcpService(port, 'rr', { protocol: 17 });
    const accepting = (): boolean =>
      lb.plane.listeners().find((l) => l.port === port && l.protocol === 'udp')!.accepting;
    lb.ctl.run({ cmd: 'newService', service: svc });
    const b = backends[0]!;
    const c = await udpClient();
    try {
      assert.equal(await hears(port), 'ECONNREFUSED', 'no destination');
      assert.equal(accepting(), false);
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(b.port, 0) });
      assert.equal(await hears(port), 'ECONNREFUSED', 'only a destination of weight 0');
      lb.ctl.run({ cmd: 'setConfig', timeouts: { tcp: 0, tcpfin: 0, udp: 1 } });
      lb.ctl.run({ cmd: 'setDest', service: svc, dest: masq(b.port, 1) });
      assert.equal(await hears(port), 'a:q');
      assert.equal(accepting(), true);
      assert.equal((await c.ask(port, 'x')).text, 'a:x');
      // quiescent: the live flow is still served, a new client is dropped while it lives
      lb.ctl.run({ cmd: 'setDest', service: svc, dest: masq(b.port, 0) });
      assert.equal((await c.ask(port, 'y')).text, 'a:y');
      assert.equal(accepting(), true);
      // once the last flow has expired, the host refuses clients again
      await until(() => lb.plane.open.udp === 0, 3000, 'flows expired');
      await until(() => !accepting(), 1000, 'parked');
      assert.equal(await hears(port), 'ECONNREFUSED', 'after the flows expired');
      lb.ctl.run({ cmd: 'setDest', service: svc, dest: masq(b.port, 2) });
      assert.equal((await c.ask(port, 'z')).text, 'a:z');
    } finally {
      lb.ctl.run({ cmd: 'setConfig', timeouts: { tcp: 0, tcpfin: 0, udp: 300 } });
      c.sock.close();
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('serves a UDP service added before the plane started (rules, state file)', async () => {
    const port = await freePort(true);
    const ipvs = new Ipvs({ log: () => {} });
    const svc = tcpService(port, 'rr', { protocol: 17 });
    ipvs.addService(svc);
    ipvs.addDest(svc, masq(backends[1]!.port));
    const plane = new ProxyDataplane({ log: () => {} });
    await plane.start(ipvs);
    try {
      assert.equal(await hears(port), 'b:q');
    } finally {
      await plane.stop(200);
      ipvs.close();
    }
  });

  it('refuses a UDP VIP that is already bound', async () => {
    const blocker = dgram.createSocket('udp4');
    await new Promise<void>((r) => blocker.bind(0, '127.0.0.1', () => r()));
    try {
      assert.throws(
        () =>
          lb.ctl.run({
            cmd: 'newService',
            service: tcpService(blocker.address().port, 'rr', { protocol: 17 }),
          }),
        (e: Error & { code?: string; errno?: string }) =>
          e.code === 'IPVS_ERR_PROXY_BIND' && e.errno === 'EADDRINUSE',
      );
    } finally {
      blocker.close();
    }
  });
});
