/**
 * ovf — Weighted Overflow (spec §2.9, kernel ip_vs_ovf.c). Eligible destinations are not OVERLOAD,
 * have weight ≠ 0 and at most `weight` active connections; the eligible one with the highest
 * weight wins (first in list order on ties). Connections overflow to the next-heaviest destination
 * once the heaviest has more active connections than its weight. Inactive connections are not
 * counted, so it suits TCP rather than UDP.
 */
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { isOverloaded, schedErr } from './common.js';

/** The ovf scheduler. */
export const ovf: SchedulerOps = {
  name: 'ovf',

  schedule(svc: Service): Dest | null {
    const dests = svc.dests;
    let best: Dest | null = null;
    let hw = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i]!;
      const w = d.weight;
      if (w === 0 || d.activeConns > w || isOverloaded(d)) continue;
      if (best === null || w > hw) {
        best = d;
        hw = w;
      }
    }
    return best ?? schedErr(svc);
  },
};
