/**
 * twos — Power of Two Choices (spec §2.10, kernel ip_vs_twos.c). Two destinations are drawn at
 * random with probability proportional to weight (over non-OVERLOAD destinations with weight > 0)
 * and the less loaded one per unit of weight is returned (the first draw on a tie).
 *
 * Random numbers: `r ∈ [0, total)` with `total = Σweight + 1`, drawn from `svc.env.randomU32()`
 * by rejection sampling (`uniformBelow`), so every value is exactly equally likely; the kernel's
 * `prandom_u32() % total` has a modulo bias of up to total / 2^32. As in the kernel, `r = 0`
 * selects the first eligible destination, which therefore gets one extra share in `total`.
 */
import type { Dest, SchedEnv, SchedulerOps, Service } from '../core/service.js';
import { connOverhead, isOverloaded, mulGt } from './common.js';

const TWO_32 = 4294967296;

/** A uniformly distributed integer in [0, n), 1 ≤ n ≤ 2^32, by rejection of the biased tail. */
export function uniformBelow(env: SchedEnv, n: number): number {
  const limit = TWO_32 - (TWO_32 % n);
  for (;;) {
    const r = env.randomU32();
    if (r < limit) return r % n;
  }
}

/** The twos scheduler. */
export const twos: SchedulerOps = {
  name: 'twos',

  schedule(svc: Service): Dest | null {
    const dests = svc.dests;
    const n = dests.length;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const d = dests[i]!;
      if (d.weight > 0 && !isOverloaded(d)) total += d.weight;
    }
    if (total === 0) return null;
    total += 1;
    const env = svc.env;
    let r1 = uniformBelow(env, total);
    let r2 = uniformBelow(env, total);
    let c1: Dest | null = null;
    let c2: Dest | null = null;
    for (let i = 0; i < n && (c1 === null || c2 === null); i++) {
      const d = dests[i]!;
      if (d.weight <= 0 || isOverloaded(d)) continue;
      r1 -= d.weight;
      r2 -= d.weight;
      if (c1 === null && r1 <= 0) c1 = d;
      if (c2 === null && r2 <= 0) c2 = d;
    }
    // Both draws are at most Σweight, so the walk always ends with both chosen.
    if (c1 === null || c2 === null) return c1 ?? c2;
    return mulGt(connOverhead(c1), c2.weight, connOverhead(c2), c1.weight) ? c2 : c1;
  },
};
