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
const INT_MAX = 0x7fffffff;

/**
 * A uniformly distributed integer in [0, ceil), 0 ≤ ceil < 2^32, computed like the kernel's
 * `__get_random_u32_below` (drivers/char/random.c): `m = ceil × u` as a 64-bit product, the result
 * is its high half `⌊m / 2^32⌋`, and a draw whose low half is below `2^32 mod ceil` is redrawn.
 * `ceil` 0 gives the raw u32, as the kernel's does.
 */
export function randomBelow(env: SchedEnv, ceil: number): number {
  if (ceil === 0) return env.randomU32() >>> 0;
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
    // ip_vs_twos_schedule's sums and draws are ints: weights near 2^31 wrap them, and the kernel
    // goes on with the wrapped values (its first choice defaults to the last eligible server).
    // Below 2^31 nothing can wrap (every r stays above -total), so plain arithmetic gives the
    // same values without the int conversions, which cost a third of the call.
    let sum = 0;
    let last: Dest | null = null;
    for (let i = 0; i < n; i++) {
      const d = dests[i]!;
      if (d.weight > 0 && !isOverloaded(d)) {
        sum += d.weight;
        last = d;
      }
    }
    if (last === null) return schedErr(svc);
    const wrap = sum + 1 > INT_MAX;
    const total = wrap ? ((sum + 1) | 0) >>> 0 : sum + 1;
    const env = svc.env;
    let r1 = randomBelow(env, total);
    let r2 = randomBelow(env, total);
    if (wrap) {
      r1 |= 0;
      r2 |= 0;
    }
    let c1: Dest = last;
    let c2: Dest | null = null;
    let w1 = -1;
    let w2 = -1;
    let o1 = 0;
    let o2 = 0;
    for (let i = 0; i < n; i++) {
      const d = dests[i]!;
      const w = d.weight;
      if (w <= 0 || isOverloaded(d)) continue;
      r1 = wrap ? (r1 - w) | 0 : r1 - w;
      r2 = wrap ? (r2 - w) | 0 : r2 - w;
      if (r1 <= 0 && w1 === -1) {
        c1 = d;
        w1 = w;
        o1 = connOverhead(d);
      }
      if (r2 <= 0 && w2 === -1) {
        c2 = d;
        w2 = w;
        o2 = connOverhead(d);
      }
      if (w1 !== -1 && w2 !== -1) break;
    }
    // the products are ints too: unlike the least-connection family's 64-bit products, these
    // wrap past 2^31 (weight 65535 × 128 active connections)
    return c2 !== null && Math.imul(w2, o1) > Math.imul(w1, o2) ? c2 : c1;
  },
};
