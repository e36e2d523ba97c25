/**
 * sed — Shortest Expected Delay (spec §2.6, kernel ip_vs_sed.c). The wlc rule with overhead
 * `active + 1`: inactive connections are ignored and an idle destination still costs one, so a
 * heavier weight wins among idle destinations.
 */
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { OH_SED, schedErr, weightedLeast } from './common.js';

/** The sed scheduler. */
export const sed: SchedulerOps = {
  name: 'sed',

  schedule(svc: Service): Dest | null {
    return weightedLeast(svc.dests, OH_SED) ?? schedErr(svc);
  },
};
