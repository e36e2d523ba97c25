/**
 * `ipvs daemon --dataplane packet` end to end, one topology per forwarding method
 * (test/helpers/netns.ts, shaped like the kernel's ipvs.sh self-test): a client, a director
 * running the real daemon on eth0 + eth1, two real servers running the echo/identity server.
 * For NAT (real servers route replies via the director), DR (VIP on the real servers' lo, ARP for
 * it suppressed) and TUN with ipip, gue and gre (`ipvs realserver` on the real servers): random
 * bytes must come back byte-identical over several connections, rr must spread them over both
 * servers, and `ipvs adm -Ln --stats` and `-L -c` must report what happened.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { nativeAvailable } from '../../src/dataplane/io/index.js';
import { spawnSync } from 'node:child_process';
import { NET, type NsChild, Topology, netnsSkipReason } from '../helpers/netns.js';
import { Director, runClient, tally } from './packet-tools.js';

const skip =
  netnsSkipReason() ??
  (nativeAvailable() ? undefined : 'needs the native addon (node native/build.mjs)') ??
  (spawnSync('nft', ['--version']).status === 0
    ? undefined
    : 'needs nft (Debian package nftables) to keep the real servers quiet about tunnel protocols');

const PORT = 8080;
const GUE_PORT = 6080;
const CONNS = 6;
const BYTES = 256 * 1024;

interface Method {
  name: string;
  setup: (t: Topology) => void;
  /** ipvsadm forwarding flags of the destinations. */
  flags: string[];
  /** Real-server port in `-r` (NAT may map ports; the others may not). */
  rport: boolean;
  forward: string;
  /** `ipvs realserver` arguments, for tunnels. */
  realserver?: string[];
}

const METHODS: Method[] = [
  {
    name: 'NAT',
    setup: (t) => t.setupNat(),
    flags: ['-m'],
    rport: true,
    forward: 'Masq',
  },
  { name: 'DR', setup: (t) => t.setupDr(), flags: ['-g'], rport: false, forward: 'Route' },
  {
    name: 'TUN ipip',
    setup: (t) => t.setupTun(),
    flags: ['-i', '--tun-type', 'ipip'],
    rport: false,
    forward: 'Tunnel',
    realserver: ['--decap', 'ipip'],
  },
  {
    name: 'TUN gue',
    setup: (t) => t.setupTun(),
    flags: ['-i', '--tun-type', 'gue', '--tun-port', String(GUE_PORT)],
    rport: false,
    forward: 'Tunnel',
    realserver: ['--decap', 'gue', '--gue-port', String(GUE_PORT)],
  },
  {
    name: 'TUN gre',
    setup: (t) => t.setupTun(),
    flags: ['-i', '--tun-type', 'gre', '--tun-csum'],
    rport: false,
    forward: 'Tunnel',
    realserver: ['--decap', 'gre'],
  },
];

for (const m of METHODS) {
  describe(`ipvs daemon --dataplane packet: ${m.name} end to end`, { skip }, () => {
    let t: Topology;
    let d: Director;
    let realservers: NsChild[] = [];
    const svc = `${NET.vip}:${PORT}`;

    before(async () => {
      t = Topology.create({ prefix: 'ipvspk' });
      m.setup(t);
      t.sysctl(t.ns.director, 'net.ipv4.ip_forward', '0');
      t.noSenderGso();
      await Promise.all([0, 1].map((i) => t.startEchoServer(i, { tcp: PORT, udp: PORT })));
      if (m.realserver) t.quietTunnelIcmp();
      if (m.realserver)
        realservers = await Promise.all([0, 1].map((i) => t.startRealserver(i, m.realserver!)));
      d = await new Director(t).start();
      d.adm('-A', '-t', svc, '-s', 'rr');
      for (const i of [0, 1]) {
        const rs = m.rport ? `${NET.serverBack(i)}:${PORT}` : NET.serverBack(i);
        d.adm('-a', '-t', svc, '-r', rs, ...m.flags);
      }
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

    it('ipvs adm -Ln --stats and -L -c -n report the connections, packets and bytes', async () => {
      const list = d.adm('-Ln');
      assert.match(list, new RegExp(`${NET.serverBack(0)}:${PORT}\\s+${m.forward}\\s+1`));
      const stats = d.adm('-Ln', '--stats');
      const row = (addr: string) => {
        const re = new RegExp(
          `${addr.replace(/\./g, '\\.')}:${PORT}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`,
        );
        const x = re.exec(stats);
        assert.ok(x, `no row for ${addr} in\n${stats}`);
        return x.slice(1).map(Number) as [number, number, number, number, number];
      };
      const [conns, inPkts, outPkts, inBytes, outBytes] = row(NET.vip);
      assert.equal(conns, CONNS, stats);
      // Every byte the clients sent went in (plus headers)…
      assert.ok(inBytes > CONNS * BYTES, stats);
      assert.ok(inPkts > CONNS * (BYTES / 1500), stats);
      if (m.name === 'NAT') {
        // …and in NAT the echoes came back through the director.
        assert.ok(outBytes > CONNS * BYTES, stats);
        assert.ok(outPkts > CONNS * (BYTES / 1500), stats);
      } else {
        // DR / TUN: replies go straight from the real servers to the client.
        assert.equal(outPkts, 0, stats);
        assert.equal(outBytes, 0, stats);
      }
      for (const i of [0, 1]) assert.equal(row(NET.serverBack(i))[0], CONNS / 2, stats);

      const conns2 = d.adm('-L', '-c', '-n');
      const lines = conns2.split('\n').filter((l) => l.startsWith('TCP '));
      assert.equal(lines.length, CONNS, conns2);
      for (const l of lines) {
        assert.match(
          l,
          new RegExp(`${NET.client}:\\d+\\s+${NET.vip}:${PORT}\\s+198\\.51\\.100\\.1[01]:${PORT}`),
        );
        // NAT sees both FINs (TIME_WAIT); DR / TUN only the client's side (FIN_WAIT or later).
        assert.match(l, m.name === 'NAT' ? /TIME_WAIT|CLOSE/ : /FIN_WAIT|TIME_WAIT|CLOSE/, l);
      }
      const c = await d.counters();
      assert.ok((c.engine.inForwarded ?? 0) > 0);
      if (m.name === 'NAT') assert.ok((c.engine.outForwarded ?? 0) > 0);
      else assert.equal(c.engine.outForwarded ?? 0, 0);
    });
    if (m.name === 'NAT' || m.name === 'DR')
      it('a real server that never answers ARP: the client is told host unreachable (EHOSTUNREACH)', async () => {
        // the kernel reports each frame queued for a neighbour it could not resolve with ICMP
        // host unreachable (arp_error_report); for NAT, IPVS's out path sends it from the VIP
        const dsvc = `${NET.vip}:${PORT + 1}`;
        const gone = NET.serverBack(5);
        d.adm('-A', '-t', dsvc, '-s', 'rr');
        d.adm('-a', '-t', dsvc, '-r', m.rport ? `${gone}:${PORT}` : gone, ...m.flags);
        try {
          const t0 = Date.now();
          await assert.rejects(
            t.echo(t.ns.client, NET.vip, PORT + 1, Buffer.from('hello'), { timeoutMs: 20_000 }),
            /EHOSTUNREACH/,
          );
          // three ARP probes a second apart, then the error (the SYN's own retry comes at 1 s)
          const took = Date.now() - t0;
          assert.ok(took < 15_000, `took ${took} ms`);
        } finally {
          d.adm('-D', '-t', dsvc);
        }
      });
    if (m.realserver)
      it('a UDP datagram sent as fragments: the director reassembles it and fragments its tunnel packet, the real server reassembles that', async () => {
        const usvc = `${NET.vip}:${PORT}`;
        d.adm('-A', '-u', usvc, '-s', 'rr');
        for (const i of [0, 1]) d.adm('-a', '-u', usvc, '-r', NET.serverBack(i), ...m.flags);
        // without DF the client sends a datagram above its link's MTU as fragments
        t.sysctl(t.ns.client, 'net.ipv4.ip_no_pmtu_disc', '1');
        try {
          const data = Buffer.alloc(2000, 0x5a);
          for (let k = 0; k < 2; k++) {
            const r = await t.echo(t.ns.client, NET.vip, PORT, data, {
              udp: true,
              timeoutMs: 5000,
            });
            assert.ok(r.echo.equals(data), 'echoed whole');
          }
          let fragments = 0;
          for (const rs of realservers) {
            const from = rs.stderr.length;
            rs.proc.kill('SIGUSR2');
            const got = await rs.waitFor(/counters (\{.*\})/, { stream: 'stderr', from });
            fragments += (JSON.parse(got[1]!) as { fragment: number }).fragment;
          }
          assert.ok(fragments >= 2, `the real servers took ${fragments} outer fragments`);
        } finally {
          t.sysctl(t.ns.client, 'net.ipv4.ip_no_pmtu_disc', '0');
          d.adm('-D', '-u', usvc);
        }
      });
  });
}
