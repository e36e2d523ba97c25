/**
 * twos — Power of Two Choices (spec §2.10, kernel ip_vs_twos.c). Two destinations are drawn at
 * random with probability proportional to weight (over non-OVERLOAD destinations with weight > 0)
 * and the less loaded one per unit of weight is returned (the first draw on a tie), compared
 * with the kernel's 32-bit products.
 *
 * Random numbers: `r ∈ [0, total)` with `total = Σweight + 1`, drawn from `svc.env.randomU32()`
 * exactly as mainline's `get_random_u32_below(total)` maps its u32 stream (`randomBelow`), so a
 * given random sequence picks what the kernel would pick. As in the kernel, `r = 0` selects the
 * first eligible destination, which therefore gets one extra share in `total`.
 */
import type { Dest, SchedEnv, SchedulerOps, Service } from '../core/service.js';
import { connOverhead, isOverloaded, lastMulLo, mulHi, schedErr } from './common.js';

const TWO_32 = 4294967296;

/**
 * A uniformly distributed integer in [0, ceil), 1 ≤ ceil < 2^32, computed like the kernel's
 * `__get_random_u32_below` (drivers/char/random.c): `m = ceil × u` as a 64-bit product, the result
 * is its high half `⌊m / 2^32⌋`, and a draw whose low half is below `2^32 mod ceil` is redrawn.
 */
export function randomBelow(env: SchedEnv, ceil: number): number {
  const thresh = TWO_32 % ceil;
  for (;;) {
    const hi = mulHi(ceil, env.randomU32());
    // the kernel tests `low < ceil` first only to skip computing thresh (which is below ceil)
    if (lastMulLo() >= thresh) return hi;
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
    if (total === 0) return schedErr(svc);
    total += 1;
    const env = svc.env;
    let r1 = randomBelow(env, total);
    let r2 = randomBelow(env, total);
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
    // ip_vs_twos_schedule multiplies in int: unlike the least-connection family's 64-bit
    // products, these wrap past 2^31 (weight 65535 × 128 active connections)
    return Math.imul(c2.weight, connOverhead(c1)) > Math.imul(c1.weight, connOverhead(c2))
      ? c2
      : c1;
  },
};
