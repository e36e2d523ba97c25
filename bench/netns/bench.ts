/**
 * The packet data plane on a veth topology (test/helpers/netns.ts: client, director, two real
 * servers, documentation addresses), beside the Linux kernel's own load balancing by nftables
 * DNAT (numgen / jhash maps over the same real servers) and HAProxy as a full proxy in the
 * director namespace, in one run. Needs root; installs nftables, haproxy, wrk and ethtool from
 * Debian when missing.
 *
 *   node scripts/prepare.mjs && node dist/bench/netns/bench.js [--duration 5] [--runs 3] [--out FILE]
 *
 * Measures, per target:
 * - packets/s: an AF_PACKET generator in the client namespace (TX ring, batches of 64) sends
 *   64-byte UDP datagrams over 256 flows to VIP:9 as fast as it can for `--duration` s; the real
 *   servers drop them in nftables prerouting; the figure is the sum of the real servers' eth1
 *   rx_packets over the run divided by its length (what went through the director);
 * - CPU per packet: the generator's own (user + system, from process.cpuUsage) per packet sent, and
 *   the daemon's (utime + stime from /proc, "of which kernel" = stime) per packet forwarded. On
 *   veth, a send runs the receiving side (bridge, the next namespace's stack) in the sender's
 *   system call: nftables' forwarding cost shows in the generator's column (compare it with the
 *   ipvs-ts rows, where the director's kernel only copies the frame to the AF_PACKET ring and
 *   drops its own copy at the ingress hook, as the daemon sets up), the daemon's TX kicks carry
 *   the delivery to the real servers;
 * - new connections/s: wrk (1 thread, 32 connections, `Connection: close`: one TCP connection per
 *   request) against HAProxy instances serving `200 OK` on the real servers, through VIP:8080,
 *   with wrk's latency of each request (connect, request, reply: p50 and p99).
 * Targets: ipvs-ts NAT and DR (`ipvs daemon --dataplane packet`, director ip_forward 0; add
 * `--daemon-args --no-ingress-drop` to run it without its ingress drop),
 * nftables DNAT (director ip_forward 1, conntrack), HAProxy (mode tcp, VIP on the director's lo,
 * conn/s only), and the floor of user-space forwarding: native/bench/floor.c, a C forwarder doing
 * direct routing with nothing but a MAC rewrite, over AF_XDP (copy mode) or AF_PACKET rings
 * (built with cc at the start; skipped when that fails). After the table, each target's kernel
 * work per packet and the per-core figure it would allow with no user-space time at all.
 * The daemon, HAProxy and the floor run on CPU 1, the generator and wrk on CPU 0 (taskset).
 * The kernel's forwarding runs in softirq on the sending CPU (veth), so nftables borrows the
 * generator's CPU: noted beside the figures. Senders' TX offloads are off (ethtool -K tx off):
 * wire-sized frames with complete checksums, as from a NIC. Each figure is the median of `--runs`
 * rounds; load averages are printed per round.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IFACE, NET, ROOT, Topology, type NsChild } from '../../test/helpers/netns.js';
import { buildC } from '../harness.js';

const SELF = fileURLToPath(import.meta.url);
const IPVS = join(ROOT, 'bin', 'ipvs');
const UDP_PORT = 9;
const HTTP_PORT = 8080;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : def;
}

// ---------------------------------------------------------------------------------------------
// Generator (child process in the client namespace).

async function genMain(): Promise<void> {
  const { openAfPacket } = await import('../../src/dataplane/io/index.js');
  const { PacketBuilder } = await import('../../src/packet/index.js');
  const [, , , iface, srcMac, dstMac, src, dst, secs] = process.argv;
  const io = openAfPacket(iface!, { batchSize: 64 });
  const frames: Buffer[] = [];
  for (let f = 0; f < 256; f++) {
    const b = PacketBuilder.eth({ src: srcMac!, dst: dstMac! })
      .ipv4({ src: src!, dst: dst!, ttl: 64 })
      .udp({ srcPort: 10000 + f, dstPort: UDP_PORT })
      .payload(Buffer.alloc(18))
      .build();
    frames.push(Buffer.from(b));
  }
  const cpu = process.cpuUsage();
  const end = Date.now() + Number(secs) * 1000;
  let sent = 0;
  let f = 0;
  while (Date.now() < end) {
    for (let i = 0; i < 64; i++) {
      const fr = frames[f]!;
      const off = io.txAlloc(fr.length);
      if (off < 0) break;
      io.txData.set(fr, off);
      f = (f + 1) & 255;
      sent++;
    }
    io.txCommit();
    await io.txWait();
  }
  await new Promise((r) => setTimeout(r, 200));
  await io.close();
  const c = process.cpuUsage(cpu);
  process.stdout.write(`sent ${sent} cpu ${c.user + c.system}\n`);
}

// ---------------------------------------------------------------------------------------------
// The run.

function sh(cmd: string, args: string[], opts: { allowFail?: boolean; input?: string } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input });
  if (r.status !== 0 && !opts.allowFail)
    throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
  return r.stdout ?? '';
}

function ensureTools(): void {
  const need: Record<string, string> = {
    nft: 'nftables',
    haproxy: 'haproxy',
    wrk: 'wrk',
    ethtool: 'ethtool',
  };
  const missing = Object.entries(need)
    .filter(([bin]) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
    .map(([, pkg]) => pkg);
  if (!missing.length) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env,
  });
}

/** [user, system] CPU seconds of `pid` (from /proc). */
function cpuSeconds(pid: number | undefined): [number, number] {
  if (!pid) return [NaN, NaN];
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const w = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return [Number(w[11]) / 100, Number(w[12]) / 100]; // utime, stime in USER_HZ (100)
  } catch {
    return [NaN, NaN];
  }
}

function rxPackets(t: Topology): number {
  let n = 0;
  for (const ns of t.ns.servers)
    n += Number(t.exec(ns, 'cat', [`/sys/class/net/${IFACE.back}/statistics/rx_packets`]).stdout);
  return n;
}

async function measurePps(
  t: Topology,
  secs: number,
  pid?: number,
): Promise<{ pps: number; sent: number; nsPerPkt: number; sysPerPkt: number; genNs: number }> {
  const cpu0 = cpuSeconds(pid);
  const dirMac = t.mac(t.ns.director, IFACE.front);
  const cMac = t.mac(t.ns.client, IFACE.front);
  const before = rxPackets(t);
  const t0 = Date.now();
  const g = t.spawn(
    t.ns.client,
    'taskset',
    [
      '-c',
      '0',
      process.execPath,
      SELF,
      'gen',
      IFACE.front,
      cMac,
      dirMac,
      NET.client,
      NET.vip,
      String(secs),
    ],
    'generator',
  );
  await g.exited;
  const dt = (Date.now() - t0 - 200) / 1000;
  const m = /sent (\d+) cpu (\d+)/.exec(g.stdout);
  if (!m) throw new Error(`generator: ${g.stderr}`);
  const fwd = rxPackets(t) - before;
  const cpu1 = cpuSeconds(pid);
  return {
    pps: fwd / dt,
    sent: Number(m[1]) / dt,
    nsPerPkt: ((cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]) * 1e9) / fwd,
    sysPerPkt: ((cpu1[1] - cpu0[1]) * 1e9) / fwd,
    genNs: (Number(m[2]) * 1000) / Number(m[1]),
  };
}

/** wrk's latency as milliseconds ("812.00us", "1.20ms", "2.00s"). */
function wrkMs(v: string, unit: string): number {
  return Number(v) * (unit === 'us' ? 1e-3 : unit === 's' ? 1e3 : 1);
}

/** New connections/s and the latency of each one-request connection (p50, p99, ms). */
function measureConns(
  t: Topology,
  secs: number,
  host = NET.vip,
): { cps: number; p50: number; p99: number } {
  const r = t.exec(
    t.ns.client,
    'taskset',
    [
      '-c',
      '0',
      'wrk',
      '-t1',
      '-c32',
      `-d${secs}s`,
      '--latency',
      '-H',
      'Connection: close',
      `http://${host}:${HTTP_PORT}/`,
    ],
    { timeoutMs: (secs + 30) * 1000 },
  );
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  const pct = (p: string): number => {
    const x = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\b`, 'm').exec(r.stdout);
    return x ? wrkMs(x[1]!, x[2]!) : NaN;
  };
  return { cps: Number(m[1]), p50: pct('50'), p99: pct('99') };
}

interface Target {
  name: string;
  /** Sets the target up; returns its teardown and the pid whose CPU time is measured, if any. */
  up: (t: Topology) => Promise<{ down: () => Promise<void>; pid?: number }>;
  pps: boolean;
  /** Measures new connections/s too (default true). */
  conns?: boolean;
}

/**
 * The generator's baseline: the director's front interface drops every frame at its ingress
 * hook (nftables netdev family), the cheapest receive there is. What the generator spends beyond
 * this with another target is that target's receive and forwarding work done on the generator's
 * CPU (veth runs the receiver in the sender's system call).
 */
const SINK: Target = {
  name: 'sink (director drops at ingress)',
  pps: true,
  conns: false,
  up: async (t) => {
    const undo = ingressDrop(t, 'sink');
    return { down: async () => undo() };
  },
};

/**
 * Drops the generator's datagrams at the director's front ingress hook (nftables netdev table
 * `name`); returns the undo.
 */
function ingressDrop(t: Topology, name: string): () => void {
  t.exec(t.ns.director, 'nft', ['-f', '-'], {
    input: `table netdev ${name} {\n  chain in {\n    type filter hook ingress device ${IFACE.front} priority -500; policy accept;\n    udp dport ${UDP_PORT} drop\n  }\n}\n`,
  });
  return () => t.exec(t.ns.director, 'nft', ['delete', 'table', 'netdev', name]);
}

/** Real servers' return path: through the director (NAT) or straight to the client (DR). */
function returnPath(t: Topology, direct: boolean): void {
  for (const ns of t.ns.servers) t.ip(ns, 'link', 'set', IFACE.front, direct ? 'up' : 'down');
  if (!direct)
    for (const ns of t.ns.servers)
      t.ip(ns, 'route', 'replace', 'default', 'via', NET.directorBack, 'dev', IFACE.back);
}

function ipvsTarget(method: 'NAT' | 'DR'): Target {
  return {
    name: `ipvs-ts ${method}`,
    pps: true,
    up: async (t) => {
      returnPath(t, method === 'DR');
      t.sysctl(t.ns.director, 'net.ipv4.ip_forward', '0');
      const dir = mkdtempSync(join(tmpdir(), 'ipvs-bench-'));
      const sock = join(dir, 'ctl.sock');
      const d: NsChild = t.spawn(
        t.ns.director,
        'taskset',
        [
          '-c',
          '1',
          process.execPath,
          IPVS,
          'daemon',
          '--dataplane',
          'packet',
          '--iface',
          IFACE.front,
          '--iface',
          IFACE.back,
          '--control',
          sock,
          ...arg('--daemon-args', '').split(' ').filter(Boolean),
        ],
        'ipvs daemon',
      );
      await d.waitFor(/listening on /, { stream: 'stderr', timeoutMs: 10_000 });
      const flag = method === 'NAT' ? '-m' : '-g';
      const rules = [
        `-A -u ${NET.vip}:${UDP_PORT} -s rr`,
        `-A -t ${NET.vip}:${HTTP_PORT} -s rr`,
        ...[0, 1].flatMap((i) => [
          `-a -u ${NET.vip}:${UDP_PORT} -r ${NET.serverBack(i)}:${UDP_PORT} ${flag}`,
          `-a -t ${NET.vip}:${HTTP_PORT} -r ${NET.serverBack(i)}:${HTTP_PORT} ${flag}`,
        ]),
      ];
      sh(process.execPath, [IPVS, 'adm', '--control', sock, '-R'], {
        input: rules.join('\n') + '\n',
      });
      return {
        pid: d.pid,
        down: async () => {
          await d.kill('SIGTERM');
        },
      };
    },
  };
}

const NFT_DNAT: Target = {
  name: 'nftables DNAT',
  pps: true,
  up: async (t) => {
    returnPath(t, false);
    t.sysctl(t.ns.director, 'net.ipv4.ip_forward', '1');
    const [a, b] = [NET.serverBack(0), NET.serverBack(1)];
    const ruleset = `table ip lb {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${NET.vip} udp dport ${UDP_PORT} dnat to numgen inc mod 2 map { 0 : ${a}, 1 : ${b} }
    ip daddr ${NET.vip} tcp dport ${HTTP_PORT} dnat to jhash ip saddr . tcp sport mod 2 map { 0 : ${a}, 1 : ${b} }
  }
}
`;
    t.exec(t.ns.director, 'nft', ['-f', '-'], { input: ruleset });
    return {
      down: async () => {
        t.exec(t.ns.director, 'nft', ['delete', 'table', 'ip', 'lb']);
        t.sysctl(t.ns.director, 'net.ipv4.ip_forward', '0');
      },
    };
  },
};

/**
 * The floor of user-space forwarding (native/bench/floor.c): a C forwarder doing direct routing
 * with no packet logic beyond the destination MAC, over AF_XDP (copy mode; veth has no zero-copy)
 * or AF_PACKET rings as the daemon's. What it costs per packet is what any user-space data plane
 * pays the kernel on this machine before its own work: the bound on ipvs-ts's "per core" figure.
 * Built with `cc` into a temporary directory; missing compiler or a kernel refusing AF_XDP skip
 * the target with the reason.
 */
let floorBin: string | null | undefined;

function buildFloor(): string | null {
  if (floorBin === undefined)
    floorBin = buildC(join(ROOT, 'native', 'bench', 'floor.c'), 'floor targets');
  return floorBin;
}

function floorTarget(mode: 'xdp' | 'pkt'): Target {
  return {
    name: `floor ${mode === 'xdp' ? 'AF_XDP' : 'AF_PACKET'} (C, DR)`,
    pps: true,
    conns: false,
    up: async (t) => {
      const bin = buildFloor();
      if (!bin) throw new Error('floor forwarder not built (cc missing)');
      returnPath(t, true);
      t.sysctl(t.ns.director, 'net.ipv4.ip_forward', '0');
      // the AF_PACKET floor leaves the host's copy to the ingress drop, as the daemon does;
      // an XDP redirect takes the frame away from the host by itself
      const undo = mode === 'pkt' ? ingressDrop(t, 'floor') : null;
      const d = t.spawn(
        t.ns.director,
        'taskset',
        [
          '-c',
          '1',
          bin,
          mode,
          IFACE.front,
          IFACE.back,
          t.mac(t.ns.director, IFACE.back),
          t.mac(t.ns.servers[0]!, IFACE.back),
          t.mac(t.ns.servers[1]!, IFACE.back),
        ],
        `floor ${mode}`,
      );
      await d.waitFor(/ready/, { stream: 'stderr', timeoutMs: 10_000 });
      return {
        pid: d.pid,
        down: async () => {
          await d.kill('SIGTERM');
          undo?.();
        },
      };
    },
  };
}

const HAPROXY: Target = {
  name: 'HAProxy (full proxy)',
  pps: false,
  up: async (t) => {
    returnPath(t, false);
    t.ip(t.ns.director, 'addr', 'add', `${NET.vip}/32`, 'dev', 'lo');
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-bench-hap-'));
    const cfg = join(dir, 'lb.cfg');
    writeFileSync(
      cfg,
      `global\n  maxconn 8000\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n` +
        `listen lb\n  bind ${NET.vip}:${HTTP_PORT}\n  balance roundrobin\n` +
        `  server rs0 ${NET.serverBack(0)}:${HTTP_PORT}\n  server rs1 ${NET.serverBack(1)}:${HTTP_PORT}\n`,
    );
    const h = t.spawn(
      t.ns.director,
      'taskset',
      ['-c', '1', 'haproxy', '-db', '-f', cfg],
      'haproxy lb',
    );
    await new Promise((r) => setTimeout(r, 500));
    return {
      down: async () => {
        await h.kill('SIGTERM');
        t.ip(t.ns.director, 'addr', 'del', `${NET.vip}/32`, 'dev', 'lo');
      },
    };
  },
};

/**
 * Per core, for the round just measured: everything the forwarding costs per packet forwarded,
 * wherever it ran — the daemon's own CPU plus what the generator spent beyond the sink baseline
 * (the director's receive path, and for nftables its whole forwarding, run in the generator's
 * sends). Both sides include the delivery to the real servers. nftables' figure ÷ a target's is
 * how many packets one core forwards with that target, relative to the kernel.
 */
function perCore(res: Record<string, Rounds>, targets: Target[]): void {
  const base = res[SINK.name]?.gns.at(-1);
  if (base === undefined) return;
  const allOf = (v: Rounds): number => {
    const extra = ((v.gns.at(-1)! - base) * v.gen.at(-1)!) / v.pps.at(-1)!;
    const own = v.ns.at(-1)!;
    return (Number.isFinite(own) ? own : 0) + extra;
  };
  const nft = res['nftables DNAT'];
  const nftAll = nft ? allOf(nft) : NaN;
  for (const x of targets) {
    if (!x.pps || x === SINK) continue;
    const v = res[x.name]!;
    const all = allOf(v);
    v.all.push(all);
    v.core.push(nftAll / all);
    v.kern.push(all - (v.ns.at(-1)! - v.sys.at(-1)!));
  }
}

/** One target's figures, one entry per round. */
interface Rounds {
  pps: number[];
  gen: number[];
  cps: number[];
  /** Latency of a one-request connection, p50 and p99 (ms). */
  p50: number[];
  p99: number[];
  ns: number[];
  sys: number[];
  gns: number[];
  /** All CPU per packet forwarded, wherever it ran (see perCore). */
  all: number[];
  /** nftables' all-CPU figure ÷ this target's (packets per core, relative). */
  core: number[];
  /** The kernel's part of `all`: the daemon's system time plus the generator's extra. */
  kern: number[];
}

function newRounds(): Rounds {
  return {
    pps: [],
    gen: [],
    cps: [],
    p50: [],
    p99: [],
    ns: [],
    sys: [],
    gns: [],
    all: [],
    core: [],
    kern: [],
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (network namespaces, AF_PACKET)');
  ensureTools();
  const secs = Number(arg('--duration', '5'));
  const runs = Number(arg('--runs', '3'));
  const out = arg('--out', '');
  const t = Topology.create({ prefix: 'ipvsbn' });
  try {
    for (const k of ['iptables', 'ip6tables', 'arptables'])
      t.sysctl(t.ns.bridge, `net.bridge.bridge-nf-call-${k}`, '0', true);
    t.setupDr(); // VIP on the servers' lo, ARP for it suppressed (used by DR; harmless otherwise)
    t.sysctl(t.ns.client, 'net.ipv4.ip_local_port_range', '1024 65535');
    t.sysctl(t.ns.client, 'net.ipv4.tcp_tw_reuse', '1');
    // No TIME_WAIT sockets anywhere: one target's leftovers (the real servers' side of the same
    // client ports) must not stall the next target's SYNs.
    for (const ns of [t.ns.client, t.ns.director, ...t.ns.servers])
      t.sysctl(ns, 'net.ipv4.tcp_max_tw_buckets', '0');
    for (const ns of [t.ns.client, ...t.ns.servers])
      for (const dev of ns === t.ns.client ? [IFACE.front] : [IFACE.front, IFACE.back])
        t.exec(ns, 'ethtool', ['-K', dev, 'tx', 'off'], { allowFail: true });
    for (const [i, ns] of t.ns.servers.entries()) {
      t.exec(ns, 'nft', ['-f', '-'], {
        input: `table inet sink {\n  chain pre {\n    type filter hook prerouting priority -300; policy accept;\n    udp dport ${UDP_PORT} drop\n  }\n}\n`,
      });
      const cfg = join(mkdtempSync(join(tmpdir(), 'ipvs-bench-rs-')), 'rs.cfg');
      writeFileSync(
        cfg,
        `global\n  maxconn 8000\n  nbthread 1\ndefaults\n  mode http\n  timeout client 30s\n` +
          `frontend web\n  bind :${HTTP_PORT}\n  http-request return status 200 content-type text/plain string rs${i}\n`,
      );
      t.spawn(ns, 'taskset', ['-c', '0', 'haproxy', '-db', '-f', cfg], `haproxy rs${i}`);
    }
    await new Promise((r) => setTimeout(r, 500));
    const only = arg('--only', '');
    const floors = [floorTarget('xdp'), floorTarget('pkt')];
    const targets = [
      ipvsTarget('NAT'),
      ipvsTarget('DR'),
      ...floors,
      NFT_DNAT,
      HAPROXY,
      SINK,
    ].filter(
      (x) =>
        (!only || x === SINK || only.split(',').some((o) => x.name.startsWith(o))) &&
        (!floors.includes(x) || buildFloor() !== null),
    );
    const res: Record<string, Rounds> = {};
    for (const x of targets) res[x.name] = newRounds();
    const loads: string[] = [];
    for (let r = 0; r < runs; r++) {
      const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
      loads.push(
        loadavg()
          .map((x) => x.toFixed(2))
          .join(' '),
      );
      for (const x of order) {
        const { down, pid } = await x.up(t);
        try {
          // warm-up: JIT, neighbours, connection tables
          if (x.conns !== false) measureConns(t, 1);
          if (x.pps) {
            const p = await measurePps(t, secs, pid);
            res[x.name]!.pps.push(p.pps);
            res[x.name]!.ns.push(p.nsPerPkt);
            res[x.name]!.sys.push(p.sysPerPkt);
            res[x.name]!.gns.push(p.genNs);
            res[x.name]!.gen.push(p.sent);
          }
          if (x.conns !== false) {
            const c = measureConns(t, secs);
            res[x.name]!.cps.push(c.cps);
            res[x.name]!.p50.push(c.p50);
            res[x.name]!.p99.push(c.p99);
          }
        } finally {
          await down();
        }
        process.stderr.write(
          `round ${r + 1} ${x.name}: pps ${res[x.name]!.pps.at(-1)?.toFixed(0) ?? '-'} conn/s ${res[x.name]!.cps.at(-1)?.toFixed(0)}\n`,
        );
      }
      perCore(res, targets);
    }
    const empty = { ...newRounds(), pps: [NaN], cps: [NaN] };
    const nft = res['nftables DNAT'] ?? empty;
    const hap = res['HAProxy (full proxy)'] ?? empty;
    const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '');
    const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '');
    const lines: string[] = [];
    lines.push(
      `| target | packets/s (forwarded) | offered by the generator | × nftables | generator CPU ns/packet sent | director CPU ns/packet (of which kernel) | all CPU ns/packet | per core × nftables | new conn/s | × HAProxy | connection p50 / p99 ms |`,
      `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
    );
    for (const x of targets) {
      const v = res[x.name]!;
      const pps = median(v.pps);
      const cps = median(v.cps);
      const fwd = x.pps && x !== SINK;
      lines.push(
        `| ${x.name} | ${!x.pps ? 'n/a (TCP proxy)' : fwd ? f0(pps) : '—'} | ${x.pps ? f0(median(v.gen)) : ''} | ${fwd ? f2(pps / median(nft.pps)) : ''} | ${x.pps ? f0(median(v.gns)) : ''} | ${v.ns.length && Number.isFinite(median(v.ns)) ? `${f0(median(v.ns))} (${f0(median(v.sys))})` : ''} | ${fwd ? f0(median(v.all)) : ''} | ${fwd ? f2(median(v.core)) : ''} | ${x.conns !== false ? f0(cps) : ''} | ${x.conns !== false ? f2(cps / median(hap.cps)) : ''} | ${x.conns !== false ? `${f2(median(v.p50))} / ${f2(median(v.p99))}` : ''} |`,
      );
    }
    // the kernel's share alone bounds a target's per-core figure, whatever its user space costs
    const bounds = targets
      .filter((x) => x.pps && x !== SINK && x !== NFT_DNAT && res[x.name]!.kern.length)
      .map((x) => {
        const k = median(res[x.name]!.kern);
        const bound = median(nft.all) / k;
        return `${x.name} ${f0(k)} ns${Number.isFinite(bound) ? ` (≤ ${f2(bound)}×)` : ''}`;
      });
    if (bounds.length)
      lines.push(
        '',
        `Kernel work per packet forwarded (the director's system time + the generator's extra), and the per-core figure it allows with no user-space time at all: ${bounds.join('; ')}.`,
      );
    const text =
      `${lines.join('\n')}\n\nMedians of ${runs} rounds × ${secs} s; load averages at the start of each round: ${loads.join(' / ')}; ` +
      `${process.version}, ${sh('uname', ['-r']).trim()}, ${spawnSync('nproc').stdout.toString().trim()} CPUs.\n`;
    process.stdout.write(text);
    if (out) writeFileSync(out, text);
  } finally {
    t.cleanup();
  }
}

if (process.argv[2] === 'gen') {
  genMain().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
} else {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
}
