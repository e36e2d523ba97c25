/**
 * rr — Round Robin (spec §2.2, kernel ip_vs_rr.c). A cursor remembers the last destination
 * returned; each call scans forward from the element after it, wrapping around, and returns the
 * first destination that is not OVERLOAD and has weight > 0. The cursor's own element is the last
 * one examined. Weights other than "zero or not" are ignored.
 */
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { isOverloaded, schedErr } from './common.js';

/** Per-service state: the cursor (null = the list head, "before the first"). */
interface RrState {
  cursor: Dest | null;
}

function eligible(d: Dest): boolean {
  return d.weight > 0 && !isOverloaded(d);
}

/** The rr scheduler. */
export const rr: SchedulerOps = {
  name: 'rr',

  initService(svc: Service): void {
    const s: RrState = { cursor: null };
    svc.schedData = s;
  },

  doneService(svc: Service): void {
    svc.schedData = null;
  },

  delDest(svc: Service, dest: Dest): void {
    // The cursor moves to the removed element's predecessor so the rotation continues with the
    // element that followed it (dest.index still holds its former position).
    const s = svc.schedData as RrState;
    if (s.cursor === dest) s.cursor = dest.index > 0 ? svc.dests[dest.index - 1]! : null;
  },

  schedule(svc: Service): Dest | null {
    const s = svc.schedData as RrState;
    const dests = svc.dests;
    const n = dests.length;
    const cur = s.cursor;
    if (cur === null || dests[cur.index] !== cur) {
      // At the head: exactly one pass over the list.
      for (let i = 0; i < n; i++) {
        const d = dests[i]!;
        if (eligible(d)) return (s.cursor = d);
      }
      return schedErr(svc);
    }
    // After the cursor to the end, then from the start up to and including the cursor.
    const start = cur.index;
    for (let k = 1; k <= n; k++) {
      let i = start + k;
      if (i >= n) i -= n;
      const d = dests[i]!;
      if (eligible(d)) return (s.cursor = d);
    }
    return schedErr(svc);
  },
};
