/**
 * fo — Weighted Fail-Over (spec §2.8, kernel ip_vs_fo.c). Returns the non-OVERLOAD destination
 * with the highest weight; the comparison is a strict `>` starting from 0, so weight-0
 * destinations never qualify and the first in list order wins ties.
 */
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { isOverloaded, schedErr } from './common.js';

/** The fo scheduler. */
export const fo: SchedulerOps = {
  name: 'fo',

  schedule(svc: Service): Dest | null {
    const dests = svc.dests;
    let best: Dest | null = null;
    let hw = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i]!;
      if (d.weight > hw && !isOverloaded(d)) {
        best = d;
        hw = d.weight;
      }
    }
    return best ?? schedErr(svc);
  },
};
