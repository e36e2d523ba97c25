/**
 * dh — Destination Hashing (spec §2.11, §13 item 12; kernel ip_vs_dh.c). A 256-bucket table maps
 * `hash_32(addr_fold(packet destination), 8)` to a destination. Bucket `i` holds the `i`-th
 * destination of the list taken cyclically (weights ignored); the table is rebuilt when a
 * destination is added or deleted, not when one is edited. The bucket's destination is returned
 * only if it is AVAILABLE, has weight > 0 and is not OVERLOAD — there is no fallback.
 */
import { addrFold } from '../core/addr.js';
import type { Flow } from '../core/flow.js';
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { hash32, isAvailable, isOverloaded, schedErr } from './common.js';

/** Bits of the bucket index (IP_VS_DH_TAB_BITS). */
export const DH_TAB_BITS = 8;
/** Number of buckets. */
export const DH_TAB_SIZE = 1 << DH_TAB_BITS;

/** Per-service state: the bucket table. */
interface DhState {
  table: (Dest | null)[];
}

/** Fills bucket `i` with destination `i mod n` (newest-first order), or empties every bucket. */
function assign(svc: Service): void {
  const s = svc.schedData as DhState;
  const dests = svc.dests;
  const n = dests.length;
  for (let i = 0; i < DH_TAB_SIZE; i++) s.table[i] = n === 0 ? null : dests[i % n]!;
}

/** The bucket index of a destination address (exported for tests and tracing). */
export function dhBucket(af: number, addr: ArrayLike<number>): number {
  return hash32(addrFold(af, addr), DH_TAB_BITS);
}

/** The dh scheduler. */
export const dh: SchedulerOps = {
  name: 'dh',

  initService(svc: Service): void {
    const s: DhState = { table: new Array<Dest | null>(DH_TAB_SIZE).fill(null) };
    svc.schedData = s;
    assign(svc);
  },

  doneService(svc: Service): void {
    svc.schedData = null;
  },

  addDest: assign,
  delDest: assign,

  schedule(svc: Service, flow: Flow): Dest | null {
    const s = svc.schedData as DhState;
    const d = s.table[dhBucket(svc.af, flow.daddr)]!;
    if (d === null || !isAvailable(d) || d.weight <= 0 || isOverloaded(d)) return schedErr(svc);
    return d;
  },
};
