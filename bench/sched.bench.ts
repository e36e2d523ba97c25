/**
 * Micro-benchmark of `schedule()` for every scheduler (spec §2) with 2, 16 and 256 destinations.
 * Flows are pre-generated; lblc / lblcr caches are warmed first. Heap growth per operation is
 * reported (run with --expose-gc for accuracy) and should be ≈ 0: `schedule()` allocates nothing.
 *
 *   npx tsc -p tsconfig.json && node --expose-gc dist/bench/sched.bench.js
 */
import { AF_INET } from '../src/core/addr.js';
import { IPPROTO_TCP } from '../src/core/constants.js';
import { bindScheduler, linkDest } from '../src/core/dests.js';
import { Flow } from '../src/core/flow.js';
import { Dest, Service } from '../src/core/service.js';
import { SCHEDULERS } from '../src/sched/index.js';
import { FakeEnv, seededU32 } from '../test/helpers/fake-env.js';
import { type BenchResult, bench, machineLine, printTable } from './harness.js';

const FLOWS = 4096;
const OPS = 200_000;

function makeFlows(): Flow[] {
  const r = seededU32(7);
  const out: Flow[] = [];
  for (let i = 0; i < FLOWS; i++) {
    const f = new Flow();
    // Clients anywhere; destination addresses from a pool of 1024 (a cache cluster for lblc/dh).
    f.set(AF_INET, IPPROTO_TCP, [r()], 1024 + (r() % 60000), [0x0a000000 + (r() % 1024)], 80);
    out.push(f);
  }
  return out;
}

function makeService(n: number): Service {
  const env = new FakeEnv(1);
  const svc = new Service(env, AF_INET, IPPROTO_TCP, [0x0a000001], 80, 0);
  const r = seededU32(n);
  for (let i = 0; i < n; i++) {
    const d = new Dest(AF_INET, [0x0a010000 + i], 8080);
    d.weight = d.lastWeight = 1 + (r() % 10);
    // Some load so the least-connection family has to compare.
    d.activeConns = r() % 64;
    d.inactConns = r() % 256;
    linkDest(svc, d);
  }
  return svc;
}

const flows = makeFlows();
const results: BenchResult[] = [];
let sink = 0;
for (const ops of SCHEDULERS) {
  for (const n of [2, 16, 256]) {
    const svc = makeService(n);
    bindScheduler(svc, ops);
    for (const f of flows) ops.schedule(svc, f); // warm caches (lblc / lblcr) and the JIT
    let k = 0;
    results.push(
      bench(
        `${ops.name} ${n} dests`,
        (count) => {
          for (let i = 0; i < count; i++) {
            const d = ops.schedule(svc, flows[k]!);
            k = (k + 1) & (FLOWS - 1);
            if (d !== null) sink += d.index;
          }
        },
        { ops: OPS, heap: true },
      ),
    );
    bindScheduler(svc, null);
  }
}
printTable('schedule() — ns per call, heap bytes per call', results);
console.log(`\n${await machineLine()} (checksum ${sink})`);
