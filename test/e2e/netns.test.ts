/**
 * The namespace topology builder (test/helpers/netns.ts) itself: a client, a director and two real
 * servers come up with the documented addresses, reach each other across both bridges, serve the
 * identity/echo protocol, and leave nothing behind after cleanup() (`ip netns list`, `ip link`).
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { IFACE, NET, Topology, netnsSkipReason } from '../helpers/netns.js';

const skip =
  netnsSkipReason() ??
  (spawnSync('ping', ['-V']).status === 0
    ? undefined
    : 'needs ping (Debian package iputils-ping; add it to scripts/debian-packages.txt)');

describe('network-namespace topology', { skip }, () => {
  let t: Topology;
  before(() => {
    t = Topology.create({ servers: 2 });
  });
  after(() => t?.cleanup());

  it('creates a client, a director, two real servers and a bridge namespace, named with one tag', () => {
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    for (const ns of t.namespaces) assert.match(list, new RegExp(`^${ns}\\b`, 'm'));
    assert.equal(t.ns.servers.length, 2);
    for (const ns of t.namespaces) assert.ok(ns.includes(t.tag), ns);
    assert.match(t.ip(t.ns.director, 'addr', 'show', 'dev', IFACE.back), /198\.51\.100\.1\/24/);
    assert.match(t.ip(t.ns.servers[1]!, 'addr', 'show', 'dev', IFACE.front), /192\.0\.2\.11\/24/);
  });

  it('the front network connects client, director and servers; the back network director and servers', () => {
    assert.ok(t.ping(t.ns.client, NET.directorFront), 'client → director');
    assert.ok(t.ping(t.ns.client, NET.serverFront(0)), 'client → rs0 (front)');
    assert.ok(t.ping(t.ns.client, NET.serverFront(1)), 'client → rs1 (front)');
    assert.ok(t.ping(t.ns.director, NET.serverBack(0)), 'director → rs0 (back)');
    assert.ok(t.ping(t.ns.director, NET.serverBack(1)), 'director → rs1 (back)');
    assert.ok(t.ping(t.ns.servers[0]!, NET.serverBack(1)), 'rs0 → rs1 (back)');
    assert.ok(
      !t.ping(t.ns.client, NET.serverBack(0)),
      'the client has no route to the back network',
    );
  });

  it('echo servers answer with their own name and echo the bytes, over TCP and UDP', async () => {
    await t.startEchoServer(0, { tcp: 8080, udp: 8080 });
    await t.startEchoServer(1, { tcp: 8080 });
    const data = randomBytes(3000);
    const a = await t.echo(t.ns.client, NET.serverFront(0), 8080, data);
    assert.equal(a.name, 'rs0');
    assert.deepEqual(a.echo, data);
    assert.equal(a.local?.split(':')[0], NET.client);
    const b = await t.echo(t.ns.director, NET.serverBack(1), 8080, data);
    assert.equal(b.name, 'rs1');
    assert.deepEqual(b.echo, data);
    const u = await t.echo(t.ns.client, NET.serverFront(0), 8080, Buffer.from('datagram'), {
      udp: true,
    });
    assert.equal(u.name, 'rs0');
    assert.equal(u.echo.toString(), 'datagram');
  });

  it('spawned children can be killed and report their exit', async () => {
    const c = t.spawn(t.ns.servers[0]!, 'sleep', ['60']);
    assert.ok(c.running);
    const code = await c.kill('SIGTERM');
    assert.equal(code, 'SIGTERM');
    assert.ok(!c.running);
  });

  it("DR setup: the VIP is on the servers' lo with arp_ignore=1 / arp_announce=2", () => {
    t.setupDr();
    for (const ns of t.ns.servers) {
      assert.match(t.ip(ns, 'addr', 'show', 'dev', 'lo'), /203\.0\.113\.10\/32/);
      assert.equal(t.exec(ns, 'sysctl', ['-n', 'net.ipv4.conf.all.arp_ignore']).stdout.trim(), '1');
      assert.equal(
        t.exec(ns, 'sysctl', ['-n', 'net.ipv4.conf.all.arp_announce']).stdout.trim(),
        '2',
      );
    }
    assert.match(t.ip(t.ns.client, 'route', 'get', NET.vip), /via 192\.0\.2\.1/);
  });

  it('NAT setup: servers leave only through the director', () => {
    t.setupNat();
    for (const ns of t.ns.servers)
      assert.match(t.ip(ns, 'route', 'get', NET.client), /via 198\.51\.100\.1 dev eth1/);
  });

  it('cleanup() kills the children and deletes every namespace and link', async () => {
    const c = t.spawn(t.ns.client, 'sleep', ['60']);
    assert.ok(c.running);
    t.cleanup();
    await c.exited;
    assert.deepEqual(t.leftovers(), []);
    const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(
      links,
      /\b(brf|brb|s0f|s0b|df|db|c0)[@:]/,
      'no topology link in the root namespace',
    );
    t.cleanup(); // idempotent
  });
});

describe('network-namespace topology cleanup on failure', { skip }, () => {
  it('a topology whose test throws is still deleted, by the exit handler if nobody else', () => {
    const script = `
      import { Topology } from ${JSON.stringify(new URL('../helpers/netns.js', import.meta.url).href)};
      const t = Topology.create({ servers: 1 });
      process.stdout.write(t.tag + '\\n');
      throw new Error('test failed on purpose');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /failed on purpose/);
    const tag = r.stdout.trim();
    assert.match(tag, /^[0-9a-f]{6}$/);
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    assert.ok(!list.includes(tag), `namespaces of ${tag} left behind:\n${list}`);
  });
});
