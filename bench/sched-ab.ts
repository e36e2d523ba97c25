/**
 * A/B of `schedule()` between two builds in one process: loads the scheduler modules of two
 * `dist/` trees, builds the same service in each (as sched.bench.ts does) and alternates them,
 * so a change is judged against its base without the run-to-run drift of separate processes.
 *
 *   node dist/bench/sched-ab.js BASE_DIST NEW_DIST [SCHEDULER [DESTS [ROUNDS]]]
 *   e.g. git worktree add /tmp/base <rev> && (cd /tmp/base && npm ci && npx tsc -p .)
 *        node dist/bench/sched-ab.js /tmp/base/dist dist lblcr 16
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { seededU32 } from '../test/helpers/fake-env.js';
import { machineLine } from './harness.js';

type Mod = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function setup(root: string, sched: string, n: number) {
  const load = (p: string): Promise<Mod> =>
    import(pathToFileURL(resolve(root, p)).href) as Promise<Mod>;
  const [{ bindScheduler, linkDest }, { Flow }, { Dest, Service }, { SCHEDULERS }, { FakeEnv }] =
    await Promise.all([
      load('src/core/dests.js'),
      load('src/core/flow.js'),
      load('src/core/service.js'),
      load('src/sched/index.js'),
      load('test/helpers/fake-env.js'),
    ]);
  const r = seededU32(7);
  const flows: Mod[] = [];
  for (let i = 0; i < 4096; i++) {
    const f = new Flow();
    f.set(2, 6, [r()], 1024 + (r() % 60000), [0x0a000000 + (r() % 1024)], 80);
    flows.push(f);
  }
  const svc = new Service(new FakeEnv(1), 2, 6, [0x0a000001], 80, 0);
  const rw = seededU32(n);
  for (let i = 0; i < n; i++) {
    const d = new Dest(2, [0x0a010000 + i], 8080);
    d.weight = d.lastWeight = 1 + (rw() % 10);
    d.activeConns = rw() % 64;
    d.inactConns = rw() % 256;
    linkDest(svc, d);
  }
  const ops = (SCHEDULERS as Mod[]).find((o) => o.name === sched);
  if (!ops) throw new Error(`no scheduler ${sched}`);
  bindScheduler(svc, ops);
  for (const f of flows) ops.schedule(svc, f); // warm caches and the JIT
  return { ops, svc, flows };
}

const [baseRoot, newRoot, sched = 'lblcr', dests = '16', rounds = '20'] = process.argv.slice(2);
if (!baseRoot || !newRoot) {
  console.error('usage: sched-ab BASE_DIST NEW_DIST [SCHEDULER [DESTS [ROUNDS]]]');
  process.exit(2);
}
const n = Number(dests);
const sides = { base: await setup(baseRoot, sched, n), new: await setup(newRoot, sched, n) };
const times: Record<'base' | 'new', number[]> = { base: [], new: [] };
let sink = 0;
for (let round = 0; round < Number(rounds); round++) {
  for (const name of round & 1 ? (['new', 'base'] as const) : (['base', 'new'] as const)) {
    const { ops, svc, flows } = sides[name];
    const N = 400_000;
    let k = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      const d = ops.schedule(svc, flows[k]);
      k = (k + 1) & 4095;
      if (d) sink += d.index as number;
    }
    times[name].push(Number(process.hrtime.bigint() - t0) / N);
  }
}
const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length & 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
console.log(
  `${sched} ${n} dests, ns per schedule(), median of ${rounds} alternating rounds: ` +
    `base ${median(times.base).toFixed(1)}, new ${median(times.new).toFixed(1)}`,
);
console.log(`${await machineLine()} (checksum ${sink})`);
