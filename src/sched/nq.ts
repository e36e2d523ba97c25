/**
 * nq — Never Queue (spec §2.7, kernel ip_vs_nq.c). The first destination (list order, not
 * OVERLOAD, weight ≠ 0) with no active connection is returned at once; when every candidate is
 * busy, the sed choice (overhead `active + 1`, strict cross-multiplied comparison) is returned.
 */
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { isOverloaded, mulGt, schedErr, sedOverhead } from './common.js';

/** The nq scheduler. */
export const nq: SchedulerOps = {
  name: 'nq',

  schedule(svc: Service): Dest | null {
    const dests = svc.dests;
    let least: Dest | null = null;
    let loh = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i]!;
      if (d.weight === 0 || isOverloaded(d)) continue;
      if (d.activeConns === 0) return d;
      const doh = sedOverhead(d);
      if (least === null || mulGt(loh, d.weight, doh, least.weight)) {
        least = d;
        loh = doh;
      }
    }
    return least ?? schedErr(svc);
  },
};
