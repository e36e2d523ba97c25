/**
 * mh — Maglev Hashing (spec §2.13, §13 item 12; kernel ip_vs_mh.c; Eisenbud et al., "Maglev",
 * NSDI 2016, §3.4). A lookup table of M = 4093 slots is populated from per-destination
 * permutations `(offset + k × skip) mod M`; each destination claims `turns` slots per round, with
 * turns derived from `last_weight` (so setting a weight to 0 keeps its slots and its clients get
 * null, or the fallback). Hashes are the kernel's 64-bit `hsiphash` (SipHash-1-3) with fixed keys,
 * making tables bit-identical to a 64-bit Linux kernel's. Rebuilt on every add, delete and edit.
 */
import { addrFold } from '../core/addr.js';
import { SVC_F_SCHED1 } from '../core/constants.js';
import { InvalidError } from '../core/errors.js';
import type { Flow } from '../core/flow.js';
import type { Dest, SchedulerOps, Service } from '../core/service.js';
import { clientKey, gcd, hashUnavailable, schedErr } from './common.js';
import { SipKey, hsipHash32 } from './siphash.js';

/** Table size: the prime at CONFIG_IP_VS_MH_TAB_INDEX = 12 (spec §2.13). */
export const MH_TAB_SIZE = 4093;
/** IP_VS_MH_TAB_BITS = 12 / 2: weights are shifted down to at most this many bits. */
const MH_TAB_BITS = 6;
/** Key of the lookup / offset hash. */
export const MH_KEY1 = SipKey.fromU32(2654435761, 2654435761);
/** Key of the skip hash. */
export const MH_KEY2 = SipKey.fromU32(2654446892, 2654446892);

/** The slot of key `port + addr_fold` at `offset`: `hsiphash(key1, offset + key) mod M`. */
export function mhSlot(key: number, offset: number): number {
  return hsipHash32(MH_KEY1, (offset + key) >>> 0) % MH_TAB_SIZE;
}

/** Per-service state: the lookup table and the population scratch bitmap. */
interface MhState {
  table: (Dest | null)[];
  taken: Uint8Array;
}

/** Index of the highest set bit, 1-based (`fls`); 0 for 0. */
function fls(x: number): number {
  return 32 - Math.clz32(x);
}

/** Recomputes the permutations and repopulates the table (spec §2.13 "Population"). */
function populate(svc: Service): void {
  const s = svc.schedData as MhState;
  const dests = svc.dests;
  const n = dests.length;
  if (n > MH_TAB_SIZE) return; // ip_vs_mh_reassign: EINVAL, the table stays as it was
  let g = 0;
  let max = 0;
  for (const d of dests) {
    const lw = d.lastWeight;
    if (lw > 0) g = g > 0 ? gcd(lw, g) : lw;
    if (lw > max) max = lw;
  }
  const table = s.table;
  if (g < 1) {
    table.fill(null);
    return;
  }
  const rshift = Math.max(0, fls(Math.trunc(max / g)) - MH_TAB_BITS);
  const skip = new Uint32Array(n);
  const perm = new Uint32Array(n);
  const turns = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    const d = dests[j]!;
    const v = (d.port + addrFold(svc.af, d.addr)) >>> 0;
    perm[j] = hsipHash32(MH_KEY1, v) % MH_TAB_SIZE;
    skip[j] = (hsipHash32(MH_KEY2, v) % (MH_TAB_SIZE - 1)) + 1;
    const lw = d.lastWeight;
    turns[j] = Math.trunc(lw / g) >> rshift || (lw !== 0 ? 1 : 0);
  }
  const taken = s.taken;
  taken.fill(0);
  let filled = 0;
  let dt = 0;
  while (filled < MH_TAB_SIZE) {
    for (let j = 0; j < n;) {
      if (turns[j]! < 1) {
        j++;
        continue;
      }
      let c = perm[j]!;
      while (taken[c] !== 0) {
        c += skip[j]!;
        if (c >= MH_TAB_SIZE) c -= MH_TAB_SIZE;
      }
      perm[j] = c;
      taken[c] = 1;
      table[c] = dests[j]!;
      if (++filled === MH_TAB_SIZE) return;
      if (++dt >= turns[j]!) {
        dt = 0;
        j++;
      }
    }
  }
}

/** Throws EINVAL when the service has more destinations than table slots (binding mh). */
function checkCount(svc: Service): void {
  if (svc.dests.length > MH_TAB_SIZE) {
    throw new InvalidError(
      `mh: a service may have at most ${MH_TAB_SIZE} destinations (has ${svc.dests.length})`,
    );
  }
}

/** The mh scheduler. */
export const mh: SchedulerOps = {
  name: 'mh',

  initService(svc: Service): void {
    checkCount(svc);
    const s: MhState = {
      table: new Array<Dest | null>(MH_TAB_SIZE).fill(null),
      taken: new Uint8Array(MH_TAB_SIZE),
    };
    svc.schedData = s;
    populate(svc);
  },

  doneService(svc: Service): void {
    svc.schedData = null;
  },

  // Past 4093 destinations populate() leaves the table as it was. The kernel's add_dest fails the
  // same way, but __ip_vs_update_dest ignores that result, so the destination is still added.
  addDest: populate,
  delDest: populate,
  updDest: populate,

  schedule(svc: Service, flow: Flow): Dest | null {
    const table = (svc.schedData as MhState).table;
    const key = clientKey(svc, flow);
    const ihash = mhSlot(key, 0);
    const d = table[ihash]!;
    if (d === null) return schedErr(svc);
    if (!hashUnavailable(d)) return d;
    if ((svc.flags & SVC_F_SCHED1) === 0) return schedErr(svc);
    for (let k = 0; k < MH_TAB_SIZE; k++) {
      let off = k + ihash;
      if (off >= MH_TAB_SIZE) off -= MH_TAB_SIZE;
      const alt = table[mhSlot(key, off)]!;
      if (alt === null) return schedErr(svc);
      if (!hashUnavailable(alt)) return alt;
    }
    return schedErr(svc);
  },
};
