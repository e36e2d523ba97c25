/**
 * wrr — Weighted Round Robin (spec §2.3, §13 item 11; kernel ip_vs_wrr.c). Passes over the
 * destination list with a falling weight threshold `cw`: each pass selects every destination whose
 * weight ≥ `cw`, then `cw` drops by `di` (the gcd of the positive weights) and wraps to
 * `mw = max − (di − 1)`. The scan resumes after the last chosen destination, and every
 * add / delete / edit resets the cursor to the head and re-derives `cw`.
 */
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { NO_DEST, gcd, isOverloaded, schedErr } from './common.js';

/** wrr's message when a scan gave up (ip_vs_wrr.c). */
const ALL_OVERLOADED = `${NO_DEST}: all destinations are overloaded`;

/** Per-service state (the kernel's `ip_vs_wrr_mark`). */
interface WrrState {
  /** Last chosen destination; null = the list head. */
  cl: Dest | null;
  /** Current weight threshold. */
  cw: number;
  /** Maximum weight minus (di − 1); 0 when no weight is positive. */
  mw: number;
  /** gcd of the positive weights (1 when there are none). */
  di: number;
}

/** Recomputes `di` and `mw` from the destination list. */
function derive(svc: Service, s: WrrState): void {
  let g = 0;
  let max = 0;
  for (const d of svc.dests) {
    if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
    if (d.weight > max) max = d.weight;
  }
  s.di = g > 0 ? g : 1;
  s.mw = max - (s.di - 1);
}

/** add / del / upd hook: back to the head, new `di` / `mw`, `cw` kept in step. */
function changed(svc: Service): void {
  const s = svc.schedData as WrrState;
  s.cl = null;
  derive(svc, s);
  if (s.cw > s.mw || s.cw === 0) s.cw = s.mw;
  else if (s.di > 1) s.cw = Math.trunc(s.cw / s.di) * s.di + 1;
}

/** The wrr scheduler. */
export const wrr: SchedulerOps = {
  name: 'wrr',

  initService(svc: Service): void {
    const s: WrrState = { cl: null, cw: 0, mw: 0, di: 1 };
    derive(svc, s);
    s.cw = s.mw;
    svc.schedData = s;
  },

  doneService(svc: Service): void {
    svc.schedData = null;
  },

  addDest: changed,
  delDest: changed,
  updDest: changed,

  schedule(svc: Service): Dest | null {
    const s = svc.schedData as WrrState;
    if (s.mw === 0) return schedErr(svc);
    const dests = svc.dests;
    const n = dests.length;
    // Index of the element the scan started after; -1 = the head.
    const last = s.cl === null || dests[s.cl.index] !== s.cl ? -1 : s.cl.index;
    let stop = -2;
    let lastPass = false;
    let restarted = false;
    let i = last;
    for (;;) {
      for (i++; i < n; i++) {
        const d = dests[i]!;
        if (d.weight >= s.cw && !isOverloaded(d)) return (s.cl = d);
        if (i === stop) {
          s.cl = d;
          return schedErr(svc, ALL_OVERLOADED);
        }
      }
      i = -1;
      s.cw -= s.di;
      if (s.cw <= 0) {
        s.cw = s.mw;
        // The last pass (weight ≥ 1) already covered every destination.
        if (lastPass || last === -1) {
          s.cl = null;
          return schedErr(svc, ALL_OVERLOADED);
        }
        restarted = true;
      }
      lastPass = s.cw <= s.di;
      // The first traversal covered only the elements after `last`: finish at `last`.
      if (lastPass && restarted && last !== -1) stop = last;
    }
  },
};
