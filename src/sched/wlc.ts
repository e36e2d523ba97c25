/**
 * wlc — Weighted Least Connection, ipvsadm's default (spec §2.5, kernel ip_vs_wlc.c). Minimises
 * `overhead / weight` with overhead `active × 256 + inactive`, compared by cross-multiplication:
 * the first non-OVERLOAD destination with weight > 0 seeds the search and a later one replaces it
 * only when strictly less loaded (`oh(best) × w(d) > oh(d) × w(best)`).
 */
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { OH_CONN, schedErr, weightedLeast } from './common.js';

/** The wlc scheduler. */
export const wlc: SchedulerOps = {
  name: 'wlc',

  schedule(svc: Service): Dest | null {
    return weightedLeast(svc.dests, OH_CONN) ?? schedErr(svc);
  },
};
