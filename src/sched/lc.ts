/**
 * lc — Least Connection (spec §2.4, kernel ip_vs_lc.c). Among destinations that are not OVERLOAD
 * and have a non-zero weight, returns the one with the smallest overhead `active × 256 + inactive`;
 * the comparison is strict, so the first in list order (newest first) wins ties. The weight's value
 * is otherwise ignored.
 */
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { connOverhead, isOverloaded, schedErr } from './common.js';

/** The lc scheduler. */
export const lc: SchedulerOps = {
  name: 'lc',

  schedule(svc: Service): Dest | null {
    const dests = svc.dests;
    let least: Dest | null = null;
    let loh = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i]!;
      if (d.weight === 0 || isOverloaded(d)) continue;
      const doh = connOverhead(d);
      if (least === null || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    return least ?? schedErr(svc);
  },
};
