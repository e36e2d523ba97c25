/**
 * Packet engine end-to-end benchmark: frames per second through `PacketEngine.receive` with the
 * memory frame-I/O backend on the transmit side, with 1,000,000 connections in the table
 * (half NAT to VIP:80, half DR to VIP:81, all ESTABLISHED). Cases: NAT in (client → VIP, DNAT),
 * NAT out (real server → client, SNAT), DR in (MAC rewrite), with and without the batch prefetch.
 * Every frame hits a random live connection. The receive buffer is refilled from a pristine copy
 * before each batch (the rewrite is in place, as on a ring); the refill alone is measured too.
 * Heap growth per frame is measured after GC (run with --expose-gc).
 *
 * Beside each case, the peers measured in the same run, on the same table size: the same
 * per-frame work in C (native/bench/engine-ref.c, built with `cc -O2` into a temporary directory;
 * a missing compiler skips it with the reason), and in JavaScript with none of the engine's
 * structure (floor-js.ts, a child process: what V8 makes of the work itself). `--no-ref` leaves
 * both out.
 *
 * The connection table's memory comes from the daemon's allocator (huge pages when the addon is
 * built); `--plain-pages` uses ordinary ArrayBuffers instead. The JIT runs with the daemon's inlining
 * budgets (src/cli/jit.ts); `IPVS_JIT_DEFAULTS=1` keeps V8's.
 *
 *   node --expose-gc dist/bench/engine/engine.bench.js [liveConnections] [--plain-pages] [--no-ref]
 */
import { tuneJit } from '../../src/cli/jit.js';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ipvs } from '../../src/core/ipvs.js';
import { createMemoryPair } from '../../src/dataplane/io/memory.js';
import { hugeTableAlloc } from '../../src/dataplane/io/native.js';
import { FrameBatch } from '../../src/dataplane/io/types.js';
import { PacketEngine } from '../../src/dataplane/packet/engine.js';
import { parseMac } from '../../src/dataplane/packet/net.js';
import { PacketBuilder, TCP_FLAG } from '../../src/packet/index.js';
import { bench, buildC, machineLine, printTable, type BenchResult } from '../harness.js';

const args = process.argv.slice(2);
const PLAIN = args.includes('--plain-pages');
const NO_REF = args.includes('--no-ref');
// the daemon's JIT budgets (src/cli/jit.ts) unless IPVS_JIT_DEFAULTS=1
const JIT = tuneJit();
const LIVE = Number(args.find((a) => !a.startsWith('--')) ?? 1_000_000);
const FRAMES = 1 << 15; // distinct frames per case, each a random live connection
const BATCH = 64;
const FRAME = 64;
// more rounds for profiling (perf record): BENCH_ROUNDS=200
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 7);
// BENCH_PREFETCH=1: only the prefetching engine (0: only the one without), for profiling
const PF_ONLY = process.env['BENCH_PREFETCH'];

/** This file's directory (dist/bench/engine). */
const HERE = dirname(fileURLToPath(import.meta.url));

/** The C reference (native/bench/engine-ref.c), built once; null when it cannot be. */
let refBin: string | null | undefined;

function buildRef(): string | null {
  if (refBin === undefined) {
    refBin = buildC(join(HERE, '..', '..', '..', 'native', 'bench', 'engine-ref.c'), 'C reference');
  }
  return refBin;
}

/**
 * Runs a reference (`cmd` with `pre` arguments, then LIVE, case and rounds); its line
 * "CASE LIVE MEDIAN BEST" (ns per frame) becomes the row `name`. Null, with the reason on stderr, when it fails.
 */
function runReference(
  name: string,
  cmd: string,
  pre: string[],
  kind: string,
  live: number,
): BenchResult | null {
  const r = spawnSync(cmd, [...pre, String(live), kind, String(ROUNDS)], { encoding: 'utf8' });
  const m = /^\S+ \d+ ([\d.]+) ([\d.]+)$/m.exec(r.stdout ?? '');
  if (r.status !== 0 || !m) {
    process.stderr.write(`${name} failed (${kind}): ${r.stderr || r.error?.message}\n`);
    return null;
  }
  const ns = Number(m[1]);
  return {
    name,
    nsPerOp: ns,
    opsPerSec: 1e9 / ns,
    bestNsPerOp: Number(m[2]),
    rounds: ROUNDS,
    opsPerRound: 1 << 16,
  };
}

/** The C reference, then the JavaScript floor (floor-js.ts, a child process of its own). */
function references(kind: string, live: number): BenchResult[] {
  if (NO_REF) return [];
  const out: BenchResult[] = [];
  const bin = buildRef();
  const c = bin && runReference('peer: the same work in C (engine-ref.c)', bin, [], kind, live);
  if (c) out.push(c);
  const script = join(HERE, 'floor-js.js');
  const js = runReference(
    'floor: the same work in bare JavaScript',
    process.execPath,
    [script],
    kind,
    live,
  );
  if (js) out.push(js);
  return out;
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const ip = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

async function main(): Promise<void> {
  let clock = 1_000_000;
  const ipvs = new Ipvs({
    maxConns: LIVE + 1024,
    now: () => clock,
    log: () => {},
    tableAlloc: PLAIN ? undefined : hugeTableAlloc(),
  });
  const engine = new PacketEngine(ipvs, { ownServiceVips: true });
  const [d0, wire] = createMemoryPair({ txSlots: 256, maxFrame: 256 });
  // the far end takes every frame committed (as the wire would): none is dropped for a full queue
  wire.onFrames(() => {});
  const ifc = engine.net.addIface({
    name: 'eth0',
    mac: '02:00:00:00:00:a0',
    addrs: ['10.0.0.1/8', '192.168.1.1/24'],
    io: d0,
  });
  const rsMac = parseMac('02:00:00:00:01:11');
  const svc = (port: number, fwd: number, rs: string): void => {
    const k = {
      af: 2 as const,
      protocol: 6,
      addr: '10.255.0.100',
      port,
      fwmark: 0,
      scheduler: 'rr',
      flags: 0,
      timeout: 0,
      netmask: 0xffffffff,
      pe: '',
    };
    ipvs.addService(k);
    ipvs.addDest(k, {
      addr: rs,
      port: fwd === 0 ? 8080 : port,
      fwd,
      weight: 1,
      uThreshold: 0,
      lThreshold: 0,
      tunType: 0,
      tunPort: 0,
      tunFlags: 0,
    });
    engine.neigh.addStatic(
      ifc,
      2,
      [((192 << 24) | (168 << 16) | (1 << 8) | Number(rs.split('.')[3])) >>> 0],
      rsMac,
    );
  };
  svc(80, 0, '192.168.1.11');
  svc(81, 3, '192.168.1.12');
  engine.refresh();
  // clients: 10.x.y.z on link, each with a static neighbour entry would be 1M entries; instead
  // the clients sit behind a router (default route), as on the Internet
  engine.net.addRoute({ dst: 'default', via: '10.0.0.254', dev: 'eth0' });
  engine.neigh.addStatic(ifc, 2, [0x0a0000fe], parseMac('02:00:00:00:00:fe'));
  const r = rng(42);
  const cAddr = new Uint32Array(LIVE);
  const cPort = new Uint16Array(LIVE);
  const t0 = performance.now();
  const vip = new Uint32Array([0x0aff0064, 0, 0, 0]);
  const caddr = new Uint32Array(4);
  const svcs = ipvs.services.list();
  const nat = svcs.find((s) => s.port === 80)!;
  const dr = svcs.find((s) => s.port === 81)!;
  const { Flow } = await import('../../src/core/flow.js');
  const flow = new Flow();
  for (let i = 0; i < LIVE; i++) {
    cAddr[i] = (0xcb000000 | (r() & 0xffffff)) >>> 0;
    cPort[i] = 1024 + (r() % 60000);
    caddr[0] = cAddr[i]!;
    const s = i & 1 ? dr : nat;
    flow.set(2, 6, caddr, cPort[i]!, vip, s.port);
    const h = ipvs.ops.schedule(s, flow);
    if (h < 0) continue;
    ipvs.ops.transition(h, 0, TCP_FLAG.SYN);
    ipvs.ops.transition(h, 0, TCP_FLAG.ACK);
    ipvs.ops.put(h);
  }
  const fillMs = performance.now() - t0;
  const build = (i: number, kind: 'natIn' | 'natOut' | 'drIn'): Uint8Array => {
    const k = kind === 'drIn' ? i | 1 : i & ~1;
    const c = ip(cAddr[k]!);
    if (kind === 'natOut')
      return PacketBuilder.eth({ src: '02:00:00:00:01:11', dst: '02:00:00:00:00:a0' })
        .ipv4({ src: '192.168.1.11', dst: c, ttl: 64 })
        .tcp({ srcPort: 8080, dstPort: cPort[k]!, flags: TCP_FLAG.ACK, seq: 1, ack: 1 })
        .payload(10)
        .build();
    return PacketBuilder.eth({ src: '02:00:00:00:00:fe', dst: '02:00:00:00:00:a0' })
      .ipv4({ src: c, dst: '10.255.0.100', ttl: 64 })
      .tcp({
        srcPort: cPort[k]!,
        dstPort: kind === 'drIn' ? 81 : 80,
        flags: TCP_FLAG.ACK,
        seq: 1,
        ack: 1,
      })
      .payload(10)
      .build();
  };
  const results: BenchResult[] = [];
  const cases: ['natIn' | 'natOut' | 'drIn', string][] = [
    ['natIn', 'NAT in (client → VIP, DNAT)'],
    ['natOut', 'NAT out (real server → client, SNAT)'],
    ['drIn', 'DR in (destination MAC rewrite)'],
  ];
  const only = process.env['BENCH_CASE'];
  for (const [kind, label] of cases) {
    if (only && only !== kind) continue;
    const pristine = Buffer.alloc(FRAMES * FRAME);
    for (let i = 0; i < FRAMES; i++) {
      const f = build(r() % LIVE, kind);
      if (f.length > FRAME) throw new Error('frame too long');
      pristine.set(f, i * FRAME);
    }
    const data = Buffer.alloc(BATCH * FRAME);
    const batch = new FrameBatch(BATCH, data);
    for (let j = 0; j < BATCH; j++) {
      batch.desc[j * 4] = j * FRAME;
      batch.desc[j * 4 + 1] = FRAME;
      batch.desc[j * 4 + 2] = FRAME;
    }
    batch.count = BATCH;
    let pos = 0;
    const refill = (): void => {
      data.set(pristine.subarray(pos * FRAME, (pos + BATCH) * FRAME));
      pos = (pos + BATCH) & (FRAMES - 1);
    };
    const before = engine.counters.inForwarded + engine.counters.outForwarded;
    for (const pf of [true, false]) {
      if (PF_ONLY !== undefined && pf !== (PF_ONLY === '1')) continue;
      const e2 = pf ? engine : new PacketEngine(ipvs, { prefetch: false, net: engine.net });
      if (!pf) {
        e2.neigh.addStatic(ifc, 2, [0xc0a8010b], rsMac);
        e2.neigh.addStatic(ifc, 2, [0xc0a8010c], rsMac);
        e2.neigh.addStatic(ifc, 2, [0x0a0000fe], parseMac('02:00:00:00:00:fe'));
        e2.refresh();
      }
      results.push(
        bench(
          `${label}${pf ? '' : ', no prefetch'}`,
          (n) => {
            for (let k = 0; k < n; k += BATCH) {
              refill();
              e2.receive(ifc, batch);
              wire.flush();
            }
          },
          { ops: 1 << 16, rounds: ROUNDS, heap: true },
        ),
      );
      if (!pf) e2.close();
    }
    results.push(...references(kind, LIVE));
    const fwd = engine.counters.inForwarded + engine.counters.outForwarded - before;
    if (fwd === 0)
      throw new Error(
        `${label}: nothing forwarded (${JSON.stringify(engine.counters.snapshot())})`,
      );
  }
  let p2 = 0;
  const data = Buffer.alloc(BATCH * FRAME);
  const pristine = Buffer.alloc(FRAMES * FRAME);
  results.push(
    bench(
      'baseline: refill the batch buffer only',
      (n) => {
        for (let k = 0; k < n; k += BATCH) {
          data.set(pristine.subarray(p2 * FRAME, (p2 + BATCH) * FRAME));
          p2 = (p2 + BATCH) & (FRAMES - 1);
        }
      },
      { ops: 1 << 16, rounds: 7 },
    ),
  );
  printTable(
    `packet engine, ${LIVE.toLocaleString('en-US')} connections, batches of ${BATCH}, 64-byte frames (ns/frame), ${PLAIN ? 'plain pages' : 'huge-page table'}, ${JIT ? 'daemon JIT budgets' : 'V8 JIT defaults'}`,
    results,
  );
  console.log(
    `\n${await machineLine()}; load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `table fill: ${LIVE.toLocaleString('en-US')} connections in ${(fillMs / 1000).toFixed(1)} s; live ${ipvs.conns.count.toLocaleString('en-US')}`,
  );
  console.log(`counters: ${JSON.stringify(engine.counters.snapshot())}`);
  console.log(
    `transmitted: ${d0.stats.txFrames.toLocaleString('en-US')} frames delivered to the far end, ${d0.stats.txDropped} dropped`,
  );
  clock++;
}

void main();
