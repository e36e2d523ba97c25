/**
 * UDP through `ipvs daemon --dataplane packet` across namespaces (the topology of
 * packet-methods.test.ts): a NAT service whose datagrams come back rewritten through the
 * director, one flow per client address and port, listed by `ipvs adm -L -c -n` in state UDP;
 * and one-packet scheduling (`-o`) over DR, where every datagram of one client socket is
 * scheduled on its own (rr alternates) and leaves no connection behind.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { nativeAvailable } from '../../src/dataplane/io/index.js';
import { NET, Topology, netnsSkipReason } from '../helpers/netns.js';
import { Director, tally } from './packet-tools.js';

const skip =
  netnsSkipReason() ??
  (nativeAvailable() ? undefined : 'needs the native addon (node native/build.mjs)');

const PORT = 5353;
const SVC = `${NET.vip}:${PORT}`;

/**
 * From `ns`, one UDP socket sends `n` datagrams of random bytes to `host:port`, each after the
 * previous one's echo came back; prints the JSON list of the servers' names (or throws).
 */
function oneSocket(t: Topology, ns: string, host: string, port: number, n: number): string[] {
  const script = `
    const u = require('dgram').createSocket('udp4');
    const names = [];
    let want;
    const next = () => {
      if (names.length === ${n}) { console.log(JSON.stringify(names)); process.exit(0); }
      want = require('crypto').randomBytes(200);
      u.send(want, ${port}, '${host}');
    };
    u.on('message', (m) => {
      const nl = m.indexOf(10);
      if (!m.subarray(nl + 1).equals(want)) { console.error('echo differs'); process.exit(1); }
      names.push(m.subarray(0, nl).toString());
      next();
    });
    setTimeout(() => { console.error('timeout after ' + names.length); process.exit(1); }, 8000);
    next();`;
  const r = t.exec(ns, process.execPath, ['-e', script]);
  return JSON.parse(r.stdout.trim()) as string[];
}

describe('ipvs daemon --dataplane packet: UDP NAT end to end', { skip }, () => {
  let t: Topology;
  let d: Director;

  before(async () => {
    t = Topology.create({ prefix: 'ipvsud' });
    t.setupNat();
    t.sysctl(t.ns.director, 'net.ipv4.ip_forward', '0');
    await Promise.all([0, 1].map((i) => t.startEchoServer(i, { udp: PORT })));
    d = await new Director(t).start();
    d.adm('-A', '-u', SVC, '-s', 'rr');
    for (const i of [0, 1]) d.adm('-a', '-u', SVC, '-r', `${NET.serverBack(i)}:${PORT}`, '-m');
  });
  after(async () => {
    await d?.stop();
    t?.cleanup();
  });

  it('datagrams from four client sockets come back byte-identical from the VIP, spread by rr', async () => {
    const names: string[] = [];
    for (let i = 0; i < 4; i++) {
      const data = randomBytes(600);
      const r = await t.echo(t.ns.client, NET.vip, PORT, data, { udp: true });
      assert.deepEqual(r.echo, data, 'echo byte-identical');
      names.push(r.name);
    }
    assert.deepEqual(tally(names), { rs0: 2, rs1: 2 });
  });

  it('ipvs adm -L -c -n lists one UDP flow per client port; --stats counts both directions', () => {
    const list = d.adm('-L', '-c', '-n');
    const rows = list.split('\n').filter((l) => l.startsWith('UDP '));
    assert.equal(rows.length, 4, list);
    for (const l of rows)
      assert.match(
        l,
        new RegExp(
          `^UDP\\s+\\d\\d:\\d\\d\\s+UDP\\s+${NET.client}:\\d+\\s+${NET.vip}:${PORT}\\s+198\\.51\\.100\\.1[01]:${PORT}$`,
        ),
      );
    const stats = d.adm('-Ln', '--stats');
    const m = new RegExp(
      `UDP  ${NET.vip}:${PORT}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`,
    ).exec(stats);
    assert.ok(m, stats);
    assert.deepEqual(m.slice(1, 4).map(Number), [4, 4, 4], stats);
  });

  it('a datagram above the MTU crosses in fragments both ways and comes back whole', async () => {
    // the client's kernel fragments it; the director gathers the fragments, NATs the datagram
    // and sends it on in fragments; the server's reply is gathered and SNATed the same way
    const before = await d.counters();
    const data = randomBytes(4000);
    const r = await t.echo(t.ns.client, NET.vip, PORT, data, { udp: true });
    assert.deepEqual(r.echo, data, 'echo byte-identical');
    const after = await d.counters();
    const held = (c: typeof after): number => c.engine['frag-held'] ?? 0;
    assert.ok(held(after) - held(before) >= 4, 'both datagrams were held in fragments');
  });
});

describe('ipvs daemon --dataplane packet: UDP one-packet scheduling (-o) over DR', { skip }, () => {
  let t: Topology;
  let d: Director;

  before(async () => {
    t = Topology.create({ prefix: 'ipvsuo' });
    t.setupDr();
    await Promise.all([0, 1].map((i) => t.startEchoServer(i, { udp: PORT })));
    d = await new Director(t).start();
    d.adm('-A', '-u', SVC, '-s', 'rr', '-o');
    for (const i of [0, 1]) d.adm('-a', '-u', SVC, '-r', NET.serverBack(i), '-g');
  });
  after(async () => {
    await d?.stop();
    t?.cleanup();
  });

  it('every datagram of one socket is scheduled on its own: rr alternates, no flow is kept', () => {
    const names = oneSocket(t, t.ns.client, NET.vip, PORT, 6);
    assert.deepEqual(tally(names), { rs0: 3, rs1: 3 }, names.join(' '));
    for (let i = 1; i < names.length; i++) assert.notEqual(names[i], names[i - 1], names.join(' '));
    const list = d.adm('-L', '-c', '-n');
    assert.equal(list.split('\n').filter((l) => l.startsWith('UDP ')).length, 0, list);
    assert.match(d.adm('-Ln'), new RegExp(`UDP  ${NET.vip}:${PORT} rr ops`));
    const stats = d.adm('-Ln', '--stats');
    assert.match(stats, new RegExp(`UDP  ${NET.vip}:${PORT}\\s+6\\s+6\\s+0\\s`), stats);
  });
});
