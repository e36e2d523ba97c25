/**
 * `ipvs daemon --dataplane packet` end to end over IPv6: the topology of packet-methods.test.ts
 * with IPv6 documentation addresses (2001:db8::/32) beside the IPv4 ones, an IPv6 virtual service
 * (`-A -t [VIP]:PORT`) and real servers reached by NAT, by direct routing and through IPv6
 * tunnels (ipip, gue, gre; `ipvs realserver` decapsulates on the servers). The director learns
 * its interfaces' IPv6 addresses and routes, resolves the real servers and the client with
 * neighbour discovery and rewrites IPv6 headers (no header checksum; the TCP checksum covers the
 * pseudo-header). Random bytes must come back byte-identical, rr must spread the connections
 * over both servers, and `ipvs adm -Ln --stats` / `-L -c -n` must show the IPv6 rows.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { nativeAvailable } from '../../src/dataplane/io/index.js';
import { IFACE, Topology, netnsSkipReason } from '../helpers/netns.js';
import { Director, runClient, tally } from './packet-tools.js';

const skip =
  netnsSkipReason() ??
  (nativeAvailable() ? undefined : 'needs the native addon (node native/build.mjs)') ??
  (spawnSync('nft', ['--version']).status === 0
    ? undefined
    : 'needs nft (Debian package nftables)');

/** The IPv6 address plan (documentation prefix 2001:db8::/32 only). */
const V6 = {
  directorFront: '2001:db8:f::1',
  client: '2001:db8:f::2',
  directorBack: '2001:db8:b::1',
  vip: '2001:db8:a::10',
  serverFront: (i: number) => `2001:db8:f::${10 + i}`,
  serverBack: (i: number) => `2001:db8:b::${10 + i}`,
} as const;

const PORT = 8080;
const CONNS = 4;
const BYTES = 128 * 1024;

/** IPv6 on every host namespace, addresses without duplicate address detection (no wait). */
function addIpv6(t: Topology): void {
  const hosts = [t.ns.client, t.ns.director, ...t.ns.servers];
  for (const ns of hosts) {
    t.sysctl(ns, 'net.ipv6.conf.all.disable_ipv6', '0');
    t.sysctl(ns, 'net.ipv6.conf.all.accept_dad', '0');
    t.sysctl(ns, 'net.ipv6.conf.default.accept_dad', '0');
    t.sysctl(ns, 'net.ipv6.conf.all.forwarding', '0');
  }
  const add = (ns: string, addr: string, dev: string) =>
    t.ip(ns, '-6', 'addr', 'add', `${addr}/64`, 'dev', dev, 'nodad');
  add(t.ns.client, V6.client, IFACE.front);
  add(t.ns.director, V6.directorFront, IFACE.front);
  add(t.ns.director, V6.directorBack, IFACE.back);
  t.ns.servers.forEach((ns, i) => {
    add(ns, V6.serverFront(i), IFACE.front);
    add(ns, V6.serverBack(i), IFACE.back);
  });
  t.ip(t.ns.client, '-6', 'route', 'add', `${V6.vip}/128`, 'via', V6.directorFront);
}

/**
 * Waits until no address is tentative in any host namespace: the link-local addresses came up
 * with the links, before accept_dad was 0, and a kernel whose link-local address is still in
 * duplicate address detection holds its neighbour solicitations (a real server's first reply to
 * the client would wait a second).
 */
async function settled(t: Topology): Promise<void> {
  const hosts = [t.ns.client, t.ns.director, ...t.ns.servers];
  for (let i = 0; i < 60; i++) {
    if (hosts.every((ns) => t.ip(ns, '-6', 'addr', 'show', 'tentative').trim() === '')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('IPv6 addresses still tentative after 3 s');
}

const GUE_PORT = 6080;

/**
 * The VIP on the real servers' lo: Linux answers neighbour solicitations only for the receiving
 * interface's own addresses, so only the director answers for it.
 */
function vipOnLo(t: Topology): void {
  for (const ns of t.ns.servers) t.ip(ns, '-6', 'addr', 'add', `${V6.vip}/128`, 'dev', 'lo');
}

const METHODS: {
  name: string;
  setup: (t: Topology) => void;
  flags: string[];
  forward: string;
  realserver?: string[];
}[] = [
  {
    name: 'NAT',
    setup: (t: Topology) => {
      t.setupNat();
      // the real servers' way back to the client is the director
      for (const ns of t.ns.servers)
        t.ip(ns, '-6', 'route', 'replace', 'default', 'via', V6.directorBack, 'dev', IFACE.back);
    },
    flags: ['-m'],
    forward: 'Masq',
  },
  {
    name: 'DR',
    setup: vipOnLo,
    flags: ['-g'],
    forward: 'Route',
  },
  ...(['ipip', 'gue', 'gre'] as const).map((type) => ({
    name: `TUN ${type}`,
    setup: (t: Topology) => {
      vipOnLo(t);
      // room for the outer IPv6 header (and GUE / GRE's) on the back network
      t.setBackMtu(1600);
      // this kernel has no ip6_tunnel / ip6_gre: keep it from answering the tunnelled packets
      // with parameter problem (unrecognised next header) while `ipvs realserver` decapsulates
      for (const ns of t.ns.servers) {
        t.exec(ns, 'nft', ['add', 'table', 'inet', 'ipvsts']);
        t.exec(ns, 'nft', ['add chain inet ipvsts out { type filter hook output priority 0; }']);
        t.exec(ns, 'nft', ['add rule inet ipvsts out icmpv6 type parameter-problem drop']);
      }
    },
    flags: ['-i', '--tun-type', type, ...(type === 'gue' ? ['--tun-port', String(GUE_PORT)] : [])],
    forward: 'Tunnel',
    realserver: ['--decap', type, ...(type === 'gue' ? ['--gue-port', String(GUE_PORT)] : [])],
  })),
];

for (const m of METHODS) {
  describe(`ipvs daemon --dataplane packet: IPv6 ${m.name} end to end`, { skip }, () => {
    let t: Topology;
    let d: Director;
    const svc = `[${V6.vip}]:${PORT}`;
    const rs = (i: number) => `[${V6.serverBack(i)}]:${PORT}`;

    before(async () => {
      t = Topology.create({ prefix: 'ipvs6' });
      addIpv6(t);
      m.setup(t);
      t.sysctl(t.ns.director, 'net.ipv4.ip_forward', '0');
      t.noSenderGso();
      await settled(t);
      await Promise.all([t.startEchoServer(0), t.startEchoServer(1)]);
      if (m.realserver) await Promise.all([0, 1].map((i) => t.startRealserver(i, m.realserver!)));
      d = await new Director(t).start();
      d.adm('-A', '-t', svc, '-s', 'rr');
      for (const i of [0, 1]) d.adm('-a', '-t', svc, '-r', rs(i), ...m.flags);
    });
    after(async () => {
      await d?.stop();
      t?.cleanup();
    });

    it(`${CONNS} connections of ${BYTES / 1024} KiB come back byte-identical, spread over both real servers`, async () => {
      const r = await runClient(t, t.ns.client, svc, {
        conns: CONNS,
        bytes: BYTES,
        parallel: 2,
        timeoutMs: 15_000,
      });
      assert.deepEqual(r.failed, [], `failed connections; daemon log:\n${d.child.stderr}`);
      assert.equal(r.ok, CONNS);
      assert.deepEqual(tally(r.names), { rs0: CONNS / 2, rs1: CONNS / 2 });
    });

    if (m.name === 'NAT')
      it('the VIP answers ping, also above the MTU (fragments reassembled, the reply fragmented)', () => {
        assert.ok(t.ping(t.ns.client, V6.vip, 2), `no echo reply; daemon log:\n${d.child.stderr}`);
        assert.ok(
          t.ping(t.ns.client, V6.vip, 2, 4000),
          `no reply to a fragmented ping; daemon log:\n${d.child.stderr}`,
        );
      });

    it('ipvs adm -Ln --stats and -L -c -n show the IPv6 service, destinations and connections', () => {
      const list = d.adm('-Ln');
      assert.match(list, new RegExp(`TCP  \\[${V6.vip}\\]:${PORT} rr`), list);
      for (const i of [0, 1])
        assert.match(list, new RegExp(`-> \\[${V6.serverBack(i)}\\]:${PORT}\\s+${m.forward}\\s+1`));
      const stats = d.adm('-Ln', '--stats');
      const row = new RegExp(
        `TCP  \\[${V6.vip}\\]:${PORT}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`,
      ).exec(stats);
      assert.ok(row, stats);
      const [conns, inPkts, outPkts, inBytes, outBytes] = row.slice(1).map(Number) as number[];
      assert.equal(conns, CONNS, stats);
      assert.ok(inBytes! > CONNS * BYTES && inPkts! > CONNS * (BYTES / 1500), stats);
      if (m.name === 'NAT') assert.ok(outBytes! > CONNS * BYTES && outPkts! > 0, stats);
      else assert.equal(outPkts, 0, stats);
      const conns2 = d.adm('-L', '-c', '-n');
      const lines = conns2.split('\n').filter((l) => l.startsWith('TCP '));
      assert.equal(lines.length, CONNS, conns2);
      for (const l of lines)
        assert.match(
          l,
          new RegExp(
            `\\[${V6.client}\\]:\\d+\\s+\\[${V6.vip}\\]:${PORT}\\s+\\[2001:db8:b::1[01]\\]:${PORT}`,
          ),
          l,
        );
    });
  });
}
