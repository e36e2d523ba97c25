/**
 * sh — Source Hashing (spec §2.12, §13 item 12; kernel ip_vs_sh.c). A 256-bucket table is filled
 * by walking the destination list cyclically, each destination taking `weight` consecutive
 * buckets (weight 0 or 1 takes one); it is rebuilt on every add, delete and edit. The client key
 * is `port + addr_fold(client)` (port only with `sh-port`, see `clientKey`) and
 * `bucket(offset) = (offset + hash_32(key, 8)) mod 256`. Unavailable = weight ≤ 0 or OVERLOAD.
 * Without `sh-fallback` an unavailable bucket yields null; with it (SCHED1) the offsets
 * `(k + ihash) mod 256` are tried in turn, stopping at the first empty bucket.
 */
import { SVC_F_SCHED1 } from '../core/constants.js';
import type { Flow } from '../core/flow.js';
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { clientKey, hash32, hashUnavailable, schedErr } from './common.js';

/** Bits of the bucket index (IP_VS_SH_TAB_BITS). */
export const SH_TAB_BITS = 8;
/** Number of buckets. */
export const SH_TAB_SIZE = 1 << SH_TAB_BITS;

/** Per-service state: the bucket table. */
interface ShState {
  table: (Dest | null)[];
}

/** Rebuilds the table: each destination fills `max(weight, 1)` consecutive buckets, cyclically. */
function reassign(svc: Service): void {
  const s = svc.schedData as ShState;
  const dests = svc.dests;
  const n = dests.length;
  let j = 0;
  let count = 0;
  for (let i = 0; i < SH_TAB_SIZE; i++) {
    if (n === 0) {
      s.table[i] = null;
      continue;
    }
    const d = dests[j]!;
    s.table[i] = d;
    if (++count >= d.weight) {
      j = j + 1 === n ? 0 : j + 1;
      count = 0;
    }
  }
}

/** `bucket(addr, port, offset)` for a client key `port + addr_fold`. */
export function shBucket(key: number, offset: number): number {
  return (offset + hash32(key, SH_TAB_BITS)) & (SH_TAB_SIZE - 1);
}

/** The sh scheduler. */
export const sh: SchedulerOps = {
  name: 'sh',

  initService(svc: Service): void {
    const s: ShState = { table: new Array<Dest | null>(SH_TAB_SIZE).fill(null) };
    svc.schedData = s;
    reassign(svc);
  },

  doneService(svc: Service): void {
    svc.schedData = null;
  },

  addDest: reassign,
  delDest: reassign,
  updDest: reassign,

  schedule(svc: Service, flow: Flow): Dest | null {
    const table = (svc.schedData as ShState).table;
    const key = clientKey(svc, flow);
    const ihash = shBucket(key, 0);
    const d = table[ihash]!;
    if (d === null) return schedErr(svc);
    if (!hashUnavailable(d)) return d;
    if ((svc.flags & SVC_F_SCHED1) === 0) return schedErr(svc);
    for (let k = 0; k < SH_TAB_SIZE; k++) {
      const alt = table[shBucket(key, (k + ihash) & (SH_TAB_SIZE - 1))]!;
      if (alt === null) return schedErr(svc);
      if (!hashUnavailable(alt)) return alt;
    }
    return schedErr(svc);
  },
};
