/**
 * A deterministic scheduler environment for tests: a manual clock whose `advance()` fires
 * periodic jobs in time order, a seeded PRNG and default sysctls.
 */
import type { SchedEnv } from '../../src/core/service.js';
import { defaultSysctls, type Sysctls } from '../../src/core/sysctl.js';

/** splitmix32: small, seedable, good enough for tests. */
export function seededU32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

interface Job {
  next: number;
  ms: number;
  fn: () => void;
  live: boolean;
}

/** A fake SchedEnv; `advance(ms)` moves the clock and runs due jobs. */
export class FakeEnv implements SchedEnv {
  t = 0;
  readonly sysctl: Sysctls = defaultSysctls();
  readonly warnings: string[] = [];
  readonly #jobs: Job[] = [];
  readonly randomU32: () => number;

  constructor(seed = 1) {
    this.randomU32 = seededU32(seed);
  }

  now(): number {
    return this.t;
  }

  every(ms: number, fn: () => void): () => void {
    const job: Job = { next: this.t + ms, ms, fn, live: true };
    this.#jobs.push(job);
    return () => {
      job.live = false;
    };
  }

  warn(_key: string, msg: string): void {
    this.warnings.push(msg);
  }

  /** Advances the clock by `ms`, running every job that falls due, in time order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let due: Job | null = null;
      for (const j of this.#jobs)
        if (j.live && j.next <= end && (!due || j.next < due.next)) due = j;
      if (!due) break;
      this.t = due.next;
      due.next += due.ms;
      due.fn();
    }
    this.t = end;
  }
}
