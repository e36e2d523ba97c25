/**
 * lblcr — Locality-Based Least Connection with Replication (spec §2.15; kernel ip_vs_lblcr.c).
 * Like lblc, but the packet's destination address maps to a *set* of destinations. A hit uses the
 * least-loaded usable member; when that is missing or lblc-overloaded the wlc pick over the whole
 * service is added to the set (at its head). A set with several members that has not changed for
 * `lblcr_expiration` loses its most loaded member. Collector as lblc, with `lblcr_expiration`.
 */
import type { Flow } from '../core/flow.js';
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import {
  LOCALITY_GC_MS,
  LocalityEntry,
  LocalityTable,
  OH_CONN,
  connOverhead,
  isAvailable,
  isOverloaded,
  lblcOverloaded,
  mulGt,
  schedErr,
  weightedLeast,
} from './common.js';

/** A cache entry: address → destination set, newest member first; each member is referenced. */
export class LblcrEntry extends LocalityEntry {
  readonly set: Dest[] = [];
  /** When the set last changed, ms. */
  lastmod = 0;

  override release(): void {
    for (const d of this.set) d.refs--;
    this.set.length = 0;
  }
}

/** Per-service state: the cache and the handle that stops its collector. */
export interface LblcrState {
  readonly table: LocalityTable<LblcrEntry>;
  readonly stopGc: () => void;
}

/** wlc pick over the set: seed and winners must be AVAILABLE with weight > 0, never OVERLOAD. */
function setMin(set: readonly Dest[]): Dest | null {
  let least: Dest | null = null;
  let loh = 0;
  for (let i = 0; i < set.length; i++) {
    const d = set[i]!;
    if (isOverloaded(d)) continue;
    if (least === null) {
      if (d.weight > 0 && isAvailable(d)) {
        least = d;
        loh = connOverhead(d);
      }
      continue;
    }
    const doh = connOverhead(d);
    if (mulGt(loh, d.weight, doh, least.weight) && isAvailable(d)) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** Most loaded member with weight > 0 (seed: first with weight > 0; strict comparison). */
function setMax(set: readonly Dest[]): number {
  let most = -1;
  let moh = 0;
  for (let i = 0; i < set.length; i++) {
    const d = set[i]!;
    if (d.weight <= 0) continue;
    const doh = connOverhead(d);
    if (most < 0 || mulGt(doh, set[most]!.weight, moh, d.weight)) {
      most = i;
      moh = doh;
    }
  }
  return most;
}

/** Adds `d` at the head of the set unless present; a change updates `lastmod`. */
function setInsert(en: LblcrEntry, d: Dest, now: number): void {
  if (en.set.includes(d)) return;
  en.set.unshift(d);
  d.refs++;
  en.lastmod = now;
}

/** The lblcr scheduler. */
export const lblcr: SchedulerOps = {
  name: 'lblcr',

  initService(svc: Service): void {
    const table = new LocalityTable<LblcrEntry>();
    const env = svc.env;
    const stopGc = env.every(LOCALITY_GC_MS, () =>
      table.collect(env.now(), env.sysctl.lblcr_expiration * 1000),
    );
    const s: LblcrState = { table, stopGc };
    svc.schedData = s;
  },

  doneService(svc: Service): void {
    const s = svc.schedData as LblcrState;
    s.stopGc();
    s.table.clear();
    svc.schedData = null;
  },

  schedule(svc: Service, flow: Flow): Dest | null {
    const { table } = svc.schedData as LblcrState;
    const env = svc.env;
    const now = env.now();
    const en = table.find(svc.af, flow.daddr);
    if (en !== null) {
      en.lastuse = now;
      let d = setMin(en.set);
      // Several members and no change for lblcr_expiration: drop the most loaded one.
      if (en.set.length > 1 && now > en.lastmod + env.sysctl.lblcr_expiration * 1000) {
        const m = setMax(en.set);
        if (m >= 0) {
          en.set.splice(m, 1)[0]!.refs--;
          en.lastmod = now;
        }
      }
      if (d !== null && !lblcOverloaded(d, svc)) return d;
      d = weightedLeast(svc.dests, OH_CONN);
      if (d === null) return schedErr(svc);
      setInsert(en, d, now);
      return d;
    }
    const d = weightedLeast(svc.dests, OH_CONN);
    if (d === null) return null; // a miss: the kernel only has a debug message here
    const fresh = table.recycle() ?? new LblcrEntry();
    fresh.set.push(d);
    d.refs++;
    fresh.lastmod = now;
    table.insert(fresh, svc.af, flow.daddr, now);
    return d;
  },
};
