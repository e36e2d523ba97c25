/**
 * `ipvs daemon --dataplane packet` under adverse conditions, end to end in network namespaces
 * (NAT topology, test/helpers/netns.ts): prerequisites refused with messages that say what to do
 * (not root, unknown interface, IP forwarding on, a VIP the kernel owns); a real server removed
 * mid-test (new connections go to the other, an existing one follows expire_nodest_conn); a storm
 * of junk frames counted and dropped while a transfer goes on; frames that are not for the
 * director left alone; the interface going away (link down, deleted and re-created) reported
 * and recovered from.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { nativeAvailable } from '../../src/dataplane/io/index.js';
import { IFACE, NET, Topology, netnsSkipReason, type NsChild } from '../helpers/netns.js';
import { Director, IPVS_BIN, TOOLS, runClient, tally } from './packet-tools.js';

const skip =
  netnsSkipReason() ??
  (nativeAvailable() ? undefined : 'needs the native addon (node native/build.mjs)');

const PORT = 8080;
const SVC = `${NET.vip}:${PORT}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns true (or throws after `ms`). */
async function until(
  fn: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('ipvs daemon --dataplane packet: prerequisites', { skip }, () => {
  let t: Topology;
  before(() => {
    t = Topology.create({ servers: 1, prefix: 'ipvspq' });
  });
  after(() => t?.cleanup());

  const daemon = (args: string[], pre: string[] = []) =>
    t.exec(
      t.ns.director,
      pre.length ? pre[0]! : process.execPath,
      [
        ...pre.slice(1),
        ...(pre.length ? [process.execPath] : []),
        IPVS_BIN,
        'daemon',
        '--dataplane',
        'packet',
        '--control',
        `/tmp/ipvs-pq-${t.tag}.sock`,
        ...args,
      ],
      { allowFail: true, timeoutMs: 10_000 },
    );

  it('no --iface: says which option is missing', () => {
    const r = daemon([]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /needs the interfaces to attach to: --iface IF/);
  });

  it('unknown interface: IPVS_ERR_IO_NO_INTERFACE, named', () => {
    const r = daemon(['--iface', 'nosuch0']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no such network interface: nosuch0/);
  });

  it('not root (no CAP_NET_RAW): says so and how to grant it', () => {
    const r = daemon(
      ['--iface', IFACE.front],
      // root's uid without CAP_NET_RAW: works wherever the checkout lives (nobody may not read it)
      ['setpriv', '--bounding-set=-net_raw', '--inh-caps=-net_raw', '--'],
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /permission denied: run as root or grant CAP_NET_RAW/);
  });

  it('IP forwarding on in the director namespace: refused, with the sysctl that fixes it', () => {
    t.sysctl(t.ns.director, 'net.ipv4.ip_forward', '1');
    try {
      const r = daemon(['--iface', IFACE.front]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /IP forwarding is enabled in this network namespace/);
      assert.match(r.stderr, /sysctl -w net\.ipv4\.ip_forward=0/);
    } finally {
      t.sysctl(t.ns.director, 'net.ipv4.ip_forward', '0');
    }
  });

  it('GRO on an interface: a warning that says what it breaks and how to turn it off', async (tc) => {
    if (spawnSync('ethtool', ['--version']).status !== 0)
      return tc.skip('ethtool is not installed (scripts/debian-packages.txt)');
    t.exec(t.ns.director, 'ethtool', ['-K', IFACE.front, 'gro', 'on']);
    try {
      const d = await new Director(t).start();
      await d.stop();
      assert.match(
        d.child.stderr,
        new RegExp(
          `packet: warning: ${IFACE.front} has generic-receive-offload on: .* ` +
            `ethtool -K ${IFACE.front} gro off lro off`,
        ),
      );
      assert.doesNotMatch(d.child.stderr, new RegExp(`warning: ${IFACE.back} has`));
    } finally {
      t.exec(t.ns.director, 'ethtool', ['-K', IFACE.front, 'gro', 'off']);
    }
  });

  it("a VIP that is one of the kernel's own addresses is refused (the kernel would answer it too)", async () => {
    t.ip(t.ns.director, 'addr', 'add', `${NET.vip}/32`, 'dev', 'lo');
    const d = await new Director(t).start();
    try {
      const r = spawnSync(
        process.execPath,
        [IPVS_BIN, 'adm', '--control', d.sock, '-A', '-t', SVC, '-s', 'rr'],
        { encoding: 'utf8' },
      );
      assert.notEqual(r.status, 0);
      assert.match(r.stderr + r.stdout, /Invalid operation/);
      // The control reply carries the reason; the daemon logs it.
      await assert.rejects(
        d.ctl({
          cmd: 'newService',
          service: {
            af: 2,
            protocol: 6,
            addr: NET.vip,
            port: PORT,
            fwmark: 0,
            scheduler: 'rr',
            flags: 0,
            timeout: 0,
            netmask: 0xffffffff,
            pe: '',
          },
        }),
        /IPVS_ERR_PKT_CONFIG.*is an address of this host/,
      );
      assert.match(
        d.child.stderr,
        /virtual address 203\.0\.113\.10 is an address of this host \(on lo\).*ip addr del 203\.0\.113\.10\/32 dev lo/,
      );
    } finally {
      await d.stop();
      t.ip(t.ns.director, 'addr', 'del', `${NET.vip}/32`, 'dev', 'lo');
    }
  });
});

describe('ipvs daemon --dataplane packet: NAT under adverse conditions', { skip }, () => {
  let t: Topology;
  let d: Director;

  before(async () => {
    t = Topology.create({ prefix: 'ipvspr' });
    t.setupNat();
    t.noSenderGso();
    await Promise.all([t.startEchoServer(0), t.startEchoServer(1)]);
    d = await new Director(t).start();
    d.adm('-A', '-t', SVC, '-s', 'rr');
    for (const i of [0, 1]) d.adm('-a', '-t', SVC, '-r', `${NET.serverBack(i)}:${PORT}`, '-m');
  });
  after(async () => {
    await d?.stop();
    t?.cleanup();
  });

  it('frames that are not for the director pass it by untouched (client ↔ real server front link)', async () => {
    // In NAT the servers' front link is down; bring rs0's up for a moment and talk to it
    // directly across the front bridge, where the director's eth0 sees the frames too.
    t.ip(t.ns.servers[0]!, 'link', 'set', IFACE.front, 'up');
    try {
      const before = await d.counters();
      const r = await t.echo(t.ns.client, NET.serverFront(0), PORT, Buffer.from('direct'), {
        timeoutMs: 5000,
      });
      assert.equal(r.name, 'rs0');
      assert.equal(r.echo.toString(), 'direct');
      const after = await d.counters();
      assert.equal(after.engine.inForwarded, before.engine.inForwarded, 'nothing forwarded');
      assert.equal(after.engine.txFrames, before.engine.txFrames, 'nothing sent');
    } finally {
      t.ip(t.ns.servers[0]!, 'link', 'set', IFACE.front, 'down');
    }
  });

  it('the VIP answers like a host: ping gets echo replies, a port without a service refuses', () => {
    assert.ok(
      t.ping(t.ns.client, NET.vip, 2),
      `no echo reply from the VIP; daemon log:\n${d.child.stderr}`,
    );
    // a ping above the MTU arrives in fragments: reassembled, answered, the reply fragmented
    assert.ok(
      t.ping(t.ns.client, NET.vip, 2, 4000),
      `no reply to a fragmented ping; daemon log:\n${d.child.stderr}`,
    );
    // with kernel IPVS the VIP is a local address and the host's TCP resets a closed port
    const probe =
      "const s=require('net').connect(81,process.argv[1]);" +
      "s.on('connect',()=>{console.log('connected');s.destroy()});" +
      "s.on('error',(e)=>console.log(e.code));setTimeout(()=>{console.log('timeout');process.exit(0)},3000).unref()";
    const r = t.exec(t.ns.client, process.execPath, ['-e', probe, NET.vip]);
    assert.equal(r.stdout.trim(), 'ECONNREFUSED');
  });

  it('a junk storm is counted and dropped; an established transfer is unaffected', async () => {
    // The bridges must carry junk as a wire would (br_netfilter, when loaded, drops malformed
    // IP headers before they reach a port).
    for (const k of ['iptables', 'ip6tables', 'arptables'])
      t.sysctl(t.ns.bridge, `net.bridge.bridge-nf-call-${k}`, '0', true);
    const before = await d.counters();
    const dirMac = t.mac(t.ns.director, IFACE.front);
    const junk = t.spawnNode(t.ns.client, TOOLS, [
      'junk',
      IFACE.front,
      dirMac,
      '--frames',
      '50000',
    ]);
    const transfer = runClient(t, t.ns.client, SVC, {
      conns: 8,
      bytes: 512 * 1024,
      parallel: 2,
      timeoutMs: 20_000,
    });
    const [code, r] = await Promise.all([junk.exited, transfer]);
    assert.equal(code, 0, junk.stderr);
    assert.match(junk.stdout, /junk sent 50000/);
    assert.deepEqual(r.failed, []);
    assert.equal(r.ok, 8);
    assert.deepEqual(tally(r.names), { rs0: 4, rs1: 4 });
    const after = await d.counters();
    const dropped = (k: string) => (after.engine[k] ?? 0) - (before.engine[k] ?? 0);
    const counted = dropped('malformed') + dropped('pass') + dropped('consumed');
    // Most junk frames reach the director (the kernel may drop some from a full ring).
    assert.ok(counted > 30_000, JSON.stringify(after.engine));
    assert.ok(dropped('malformed') > 10_000, JSON.stringify(after.engine));
    assert.equal(d.child.running, true);
  });

  it('real server removed: new connections go to the other; an existing one follows expire_nodest_conn', async () => {
    await d.ctl({ cmd: 'setSysctl', name: 'expire_nodest_conn', value: 1 });
    // An established connection to each server.
    const holds: NsChild[] = [];
    const names: string[] = [];
    for (let k = 0; k < 2; k++) {
      const h = t.spawnNode(t.ns.client, TOOLS, ['hold', SVC]);
      holds.push(h);
      names.push((await h.waitFor(/connected (rs\d) /, { timeoutMs: 5000 }))[1]!);
    }
    assert.deepEqual([...names].sort(), ['rs0', 'rs1']);
    const h0 = holds[names.indexOf('rs0')]!;
    const h1 = holds[names.indexOf('rs1')]!;
    const echoes = async (h: NsChild) => {
      const from = h.stdout.length;
      h.proc.kill('SIGUSR1');
      return (await h.waitFor(/echo (ok|timeout)/, { from, timeoutMs: 5000 }))[1]!;
    };
    assert.equal(await echoes(h0), 'ok');
    assert.equal(await echoes(h1), 'ok');

    d.adm('-d', '-t', SVC, '-r', `${NET.serverBack(0)}:${PORT}`);
    // expire_nodest_conn = 1: the next packet of the connection to rs0 is dropped and the
    // connection expired; it never gets an echo again. The one to rs1 goes on.
    assert.equal(await echoes(h0), 'timeout');
    assert.equal(await echoes(h1), 'ok');
    await until(
      () => !d.adm('-L', '-c', '-n').includes(`${NET.serverBack(0)}:${PORT}`),
      3000,
      'the connection to the removed server to leave the table',
    );
    const r = await runClient(t, t.ns.client, SVC, { conns: 4, bytes: 10_000, timeoutMs: 5000 });
    assert.deepEqual(r.failed, []);
    assert.deepEqual(tally(r.names), { rs1: 4 });
    for (const h of holds) await h.kill();
    d.adm('-a', '-t', SVC, '-r', `${NET.serverBack(0)}:${PORT}`, '-m');
  });

  it('expire_nodest_conn = 0: the connection to a removed server stays listed, its packets are dropped', async () => {
    await d.ctl({ cmd: 'setSysctl', name: 'expire_nodest_conn', value: 0 });
    const holds: NsChild[] = [];
    let h0: NsChild | undefined;
    for (let k = 0; k < 2 && !h0; k++) {
      const h = t.spawnNode(t.ns.client, TOOLS, ['hold', SVC]);
      holds.push(h);
      const name = (await h.waitFor(/connected (rs\d) /, { timeoutMs: 5000 }))[1]!;
      if (name === 'rs0') h0 = h;
    }
    assert.ok(h0, 'one connection went to rs0');
    const local = /connected rs0 (\S+)/.exec(h0.stdout)![1]!;
    d.adm('-d', '-t', SVC, '-r', `${NET.serverBack(0)}:${PORT}`);
    const from = h0.stdout.length;
    h0.proc.kill('SIGUSR1');
    assert.equal((await h0.waitFor(/echo (ok|timeout)/, { from, timeoutMs: 5000 }))[1], 'timeout');
    const conns = d.adm('-L', '-c', '-n');
    assert.match(
      conns,
      new RegExp(
        `${local.replace(/\./g, '\\.')}\\s+${NET.vip}:${PORT}\\s+${NET.serverBack(0)}:${PORT}`,
      ),
    );
    for (const h of holds) await h.kill();
    d.adm('-a', '-t', SVC, '-r', `${NET.serverBack(0)}:${PORT}`, '-m');
  });

  it('the back link’s MTU lowered while running: reported; a held connection learns it and goes on', async () => {
    const from = d.child.stderr.length;
    const h = t.spawnNode(t.ns.client, TOOLS, ['hold', SVC]);
    const echoes = async (): Promise<string> => {
      const at = h.stdout.length;
      h.proc.kill('SIGUSR1');
      return (await h.waitFor(/echo (ok|timeout)/, { from: at, timeoutMs: 5000 }))[1]!;
    };
    try {
      await h.waitFor(/connected (rs\d) /, { timeoutMs: 5000 });
      assert.equal(await echoes(), 'ok');
      // the director's eth1, the bridge ports and the servers: a frame of 1,514 bytes now goes
      // nowhere (veth drops it), as the kernel's IPVS would find from the route's MTU
      t.setBackMtu(1280);
      await d.child.waitFor(/interface eth1 changed: MTU 1500 → 1280/, {
        stream: 'stderr',
        from,
        timeoutMs: 5000,
      });
      // 4 KiB in 1460-byte segments (MSS from before): fragmentation needed tells the client
      assert.equal(await echoes(), 'ok', d.child.stderr.slice(from));
      assert.match(t.ip(t.ns.client, 'route', 'get', NET.vip), /mtu 1280/, 'the path MTU learnt');
      const r = await runClient(t, t.ns.client, SVC, {
        conns: 2,
        bytes: 64 * 1024,
        timeoutMs: 5000,
      });
      assert.deepEqual(r.failed, []);
    } finally {
      await h.kill();
      t.setBackMtu(1500);
    }
    await d.child.waitFor(/interface eth1 changed: MTU 1280 → 1500/, {
      stream: 'stderr',
      from,
      timeoutMs: 5000,
    });
  });

  it('interface link down: reported; forwarding resumes when it comes back up', async () => {
    const from = d.child.stderr.length;
    // Traffic in flight while the link goes down: sends on the dead socket must not kill the
    // daemon (they fail with ENETDOWN until the watchdog closes the socket).
    const busy = runClient(t, t.ns.client, SVC, {
      conns: 8,
      bytes: 1024 * 1024,
      parallel: 4,
      timeoutMs: 1500,
    }).catch(() => null);
    await sleep(150);
    t.ip(t.ns.director, 'link', 'set', IFACE.back, 'down');
    await d.child.waitFor(
      /interface eth1 went away \((its link is down|sending failed: ENETDOWN)\)/,
      {
        stream: 'stderr',
        from,
        timeoutMs: 10_000,
      },
    );
    await assert.rejects(
      runClient(t, t.ns.client, SVC, { conns: 1, bytes: 1000, timeoutMs: 1000 }).then((r) => {
        if (r.failed.length) throw new Error(r.failed[0]);
      }),
    );
    await busy;
    assert.equal(d.child.running, true, d.child.stderr);
    t.ip(t.ns.director, 'link', 'set', IFACE.back, 'up');
    await d.child.waitFor(/interface eth1 is back/, { stream: 'stderr', from, timeoutMs: 10_000 });
    const r = await runClient(t, t.ns.client, SVC, { conns: 4, bytes: 64 * 1024, timeoutMs: 5000 });
    assert.deepEqual(r.failed, []);
    assert.deepEqual(tally(r.names), { rs0: 2, rs1: 2 });
  });

  it('interface deleted and re-created (new index and MAC): reported and recovered', async () => {
    const from = d.child.stderr.length;
    const dir = t.ns.director;
    t.ip(dir, 'link', 'del', IFACE.back);
    // either the watchdog sees it gone first, or a transmit to it fails first: both are reports
    await d.child.waitFor(
      /interface eth1 went away \((it no longer exists|sending failed: \w+)\)/,
      {
        stream: 'stderr',
        from,
        timeoutMs: 10_000,
      },
    );
    // Re-create the director's back port on the back bridge.
    spawnSync('ip', [
      'link',
      'add',
      IFACE.back,
      'netns',
      dir,
      'type',
      'veth',
      'peer',
      'name',
      'db',
      'netns',
      t.ns.bridge,
    ]);
    t.ip(t.ns.bridge, 'link', 'set', 'db', 'master', 'brb');
    t.ip(t.ns.bridge, 'link', 'set', 'db', 'up');
    t.ip(dir, 'addr', 'add', `${NET.directorBack}/24`, 'dev', IFACE.back);
    t.ip(dir, 'link', 'set', IFACE.back, 'up');
    await d.child.waitFor(/interface eth1 is back \(index \d+, MAC [0-9a-f:]+, MAC changed\)/, {
      stream: 'stderr',
      from,
      timeoutMs: 10_000,
    });
    // The real servers had the old MAC for 198.51.100.1: the daemon's gratuitous ARP for the
    // interface's addresses updated them.
    const r = await runClient(t, t.ns.client, SVC, { conns: 4, bytes: 64 * 1024, timeoutMs: 5000 });
    assert.deepEqual(r.failed, []);
    assert.deepEqual(tally(r.names), { rs0: 2, rs1: 2 });
    const c = await d.counters();
    assert.equal(c.ifaces.eth1!.up, 1);
    assert.ok(c.ifaces.eth1!.downs! >= 2);
  });

  it("the kernel's copy is dropped at ingress: tables follow the configuration, go at stop", async () => {
    const list = (ifname: string): string =>
      t.exec(t.ns.director, 'nft', ['list', 'table', 'netdev', `ipvs_ts_${ifname}`], {
        allowFail: true,
      }).stdout;
    const has = (ifname: string, set: string, addr: string): boolean =>
      new RegExp(`set ${set} \\{[^}]*elements = \\{[^}]*\\b${addr.replace(/\./g, '\\.')}\\b`).test(
        list(ifname),
      );
    for (const i of [IFACE.front, IFACE.back]) {
      assert.ok(has(i, 'vip4', NET.vip), list(i));
      for (const r of [0, 1]) assert.ok(has(i, 'nat4', NET.serverBack(r)), list(i));
    }
    assert.match(d.child.stderr, /dropped at ingress \(nftables tables ipvs_ts_eth0, ipvs_ts_eth1/);
    // the sets follow the configuration
    const extra = '203.0.113.77';
    d.adm('-A', '-u', `${extra}:53`, '-s', 'rr');
    d.adm('-a', '-u', `${extra}:53`, '-r', '198.51.100.99:53', '-m');
    await until(() => has(IFACE.front, 'vip4', extra), 5000, 'the new VIP in the set');
    assert.ok(has(IFACE.back, 'nat4', '198.51.100.99'));
    d.adm('-D', '-u', `${extra}:53`);
    await until(() => !has(IFACE.front, 'vip4', extra), 5000, 'the VIP gone from the set');
    assert.ok(!has(IFACE.back, 'nat4', '198.51.100.99'));
    assert.ok(has(IFACE.front, 'vip4', NET.vip), 'the other VIP stays');
    // traffic goes on with the drop in place: the AF_PACKET tap sees frames before the hook
    const r = await runClient(t, t.ns.client, SVC, { conns: 4, bytes: 64 * 1024, timeoutMs: 5000 });
    assert.deepEqual(r.failed, []);
    // a stopped daemon removes its tables (this is the describe's last test)
    await d.stop();
    for (const i of [IFACE.front, IFACE.back]) assert.equal(list(i), '', `table of ${i} gone`);
    // with --no-ingress-drop there is none
    const other = await new Director(t).start(['--no-ingress-drop']);
    try {
      other.adm('-A', '-t', SVC, '-s', 'rr');
      await sleep(200);
      assert.doesNotMatch(other.child.stderr, /dropped at ingress/);
      assert.equal(list(IFACE.front), '');
    } finally {
      await other.stop();
    }
  });
});
