/**
 * lblc — Locality-Based Least Connection (spec §2.14, §13 item 12; kernel ip_vs_lblc.c). A cache
 * maps the packet's destination address (the VIP, or the original target for fwmark cache
 * clusters) to one destination. A hit is reused while that destination is AVAILABLE, has weight
 * > 0 and is not lblc-overloaded; otherwise the wlc pick chooses a new one and the entry is
 * created or repointed. A collector runs every 60 s (see `LocalityTable.collect`).
 */
import type { Flow } from '../core/flow.js';
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import {
  LOCALITY_GC_MS,
  LocalityEntry,
  LocalityTable,
  OH_CONN,
  isAvailable,
  lblcOverloaded,
  schedErr,
  weightedLeast,
} from './common.js';

/** A cache entry: address → one destination, which it holds a reference on. */
class LblcEntry extends LocalityEntry {
  dest: Dest | null = null;

  /** Points the entry at `d`, moving its reference. */
  point(d: Dest): void {
    if (this.dest !== null) this.dest.refs--;
    d.refs++;
    this.dest = d;
  }

  override release(): void {
    if (this.dest !== null) this.dest.refs--;
    this.dest = null;
  }
}

/** Per-service state: the cache and the handle that stops its collector. */
export interface LblcState {
  readonly table: LocalityTable<LblcEntry>;
  readonly stopGc: () => void;
}

/** The lblc scheduler. */
export const lblc: SchedulerOps = {
  name: 'lblc',

  initService(svc: Service): void {
    const table = new LocalityTable<LblcEntry>();
    const env = svc.env;
    const stopGc = env.every(LOCALITY_GC_MS, () =>
      table.collect(env.now(), env.sysctl.lblc_expiration * 1000),
    );
    const s: LblcState = { table, stopGc };
    svc.schedData = s;
  },

  doneService(svc: Service): void {
    const s = svc.schedData as LblcState;
    s.stopGc();
    s.table.clear();
    svc.schedData = null;
  },

  schedule(svc: Service, flow: Flow): Dest | null {
    const { table } = svc.schedData as LblcState;
    const now = svc.env.now();
    const en = table.find(svc.af, flow.daddr);
    if (en !== null) {
      en.lastuse = now;
      const d = en.dest!;
      if (isAvailable(d) && d.weight > 0 && !lblcOverloaded(d, svc)) return d;
    }
    const d = weightedLeast(svc.dests, OH_CONN);
    if (d === null) return schedErr(svc);
    if (en !== null) {
      if (en.dest !== d) {
        // ip_vs_lblc_new unlinks the old entry without counting it out, then hashes a new
        // one: the collector's count (which decides its partial sweeps) grows by one
        en.point(d);
        en.lastuse = now;
        table.entries++;
      }
    } else {
      const fresh = table.recycle() ?? new LblcEntry();
      fresh.point(d);
      table.insert(fresh, svc.af, flow.daddr, now);
    }
    return d;
  },
};
