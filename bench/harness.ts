/**
 * A small benchmark harness: runs a function in timed rounds after a warm-up, reports the median
 * time per operation over the rounds, and optionally the heap growth across the measurement.
 * Benchmarks print tables; the numbers go into BENCHMARKS.md with the command that made them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** One measured case. */
export interface BenchResult {
  name: string;
  /** Median nanoseconds per operation over the rounds. */
  nsPerOp: number;
  /** Median operations per second. */
  opsPerSec: number;
  /**
   * Nanoseconds per operation in the fastest round: the code's cost with the least interference
   * from the rest of the host (a shared host can slow whole rounds two-fold). Medians are the
   * figures to quote; this one compares code on a noisy host.
   */
  bestNsPerOp?: number;
  /** Heap bytes gained per operation across the measured rounds (after GC), when measured. */
  heapBytesPerOp?: number;
  rounds: number;
  opsPerRound: number;
}

/** Options for `bench`. */
export interface BenchOptions {
  /** Operations per round: `fn` is called with the count and must do that many operations. */
  ops: number;
  rounds?: number;
  warmupRounds?: number;
  /** Measure heap growth (needs --expose-gc for accuracy). */
  heap?: boolean;
  /** Untimed work before each round (also before warm-up rounds). */
  beforeRound?: () => void;
  /** Untimed work after each round. */
  afterRound?: () => void;
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Runs `fn(ops)` for each round and returns the median cost per operation. */
export function bench(name: string, fn: (ops: number) => void, opts: BenchOptions): BenchResult {
  const rounds = opts.rounds ?? 9;
  for (let i = 0; i < (opts.warmupRounds ?? 3); i++) {
    opts.beforeRound?.();
    fn(opts.ops);
    opts.afterRound?.();
  }
  gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    opts.beforeRound?.();
    const t0 = performance.now();
    fn(opts.ops);
    times.push(performance.now() - t0);
    opts.afterRound?.();
  }
  gc?.();
  const heap1 = process.memoryUsage().heapUsed;
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  const nsPerOp = (median * 1e6) / opts.ops;
  const r: BenchResult = {
    name,
    nsPerOp,
    opsPerSec: 1e9 / nsPerOp,
    bestNsPerOp: (times[0]! * 1e6) / opts.ops,
    rounds,
    opsPerRound: opts.ops,
  };
  if (opts.heap) r.heapBytesPerOp = (heap1 - heap0) / (opts.ops * rounds);
  return r;
}

/** Prints results as an aligned text table. */
export function printTable(title: string, results: BenchResult[]): void {
  console.log(`\n${title}`);
  const best = results.some((r) => r.bestNsPerOp !== undefined);
  console.log(
    `${'case'.padEnd(48)} ${'ns/op'.padStart(10)} ${'ops/s'.padStart(14)}${best ? '  best ns/op' : ''}${results.some((r) => r.heapBytesPerOp !== undefined) ? '  heap B/op' : ''}`,
  );
  for (const r of results) {
    const b = !best ? '' : `  ${(r.bestNsPerOp?.toFixed(1) ?? '').padStart(10)}`;
    const heap =
      r.heapBytesPerOp !== undefined ? `  ${r.heapBytesPerOp.toFixed(3).padStart(9)}` : '';
    console.log(
      `${r.name.padEnd(48)} ${r.nsPerOp.toFixed(1).padStart(10)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(14)}${b}${heap}`,
    );
  }
}

/** A one-line description of the machine and runtime, for BENCHMARKS.md. */
export async function machineLine(): Promise<string> {
  const os = await import('node:os');
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.type()} ${os.release()}`;
}

/**
 * Builds the C program `src` (a file under native/bench) with `cc -O2` into a temporary directory;
 * returns the executable, or null with the reason on stderr, prefixed by `what` (what is skipped).
 */
export function buildC(src: string, what: string): string | null {
  const out = join(mkdtempSync(join(tmpdir(), 'ipvs-bench-')), basename(src, '.c'));
  const r = spawnSync('cc', ['-O2', '-o', out, src], { encoding: 'utf8' });
  if (r.status === 0) return out;
  process.stderr.write(`${what} skipped: cc ${src} failed: ${r.error?.message ?? r.stderr}\n`);
  return null;
}
