/**
 * Helpers shared by the schedulers (spec §2.1): the kernel's multiplicative `hash_32`, connection
 * overheads, the weighted-least-connection pick used by wlc / sed / lblc / lblcr, the lblc
 * "overloaded" test, the client key of the hashing schedulers (sh / mh port rule, spec §2.12) and
 * the destination-address cache with its garbage collector shared by lblc and lblcr (spec §2.14).
 * Nothing here allocates on the scheduling path.
 */
import { AF_INET, AF_INET6, addrFold, formatIp } from '../core/addr.js';
import {
  DEST_F_AVAILABLE,
  DEST_F_OVERLOAD,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_SCHED2,
  protoName,
} from '../core/constants.js';
import type { Flow } from '../core/flow.js';
import type { Dest, Service } from '../core/service.js';

/** `GOLDEN_RATIO_32` of include/linux/hash.h. */
export const GOLDEN_RATIO_32 = 0x61c88647;

/** The kernel's `hash_32(x, bits)`: the top `bits` bits of `x × 0x61C88647 mod 2^32`. */
export function hash32(x: number, bits: number): number {
  return Math.imul(x, GOLDEN_RATIO_32) >>> (32 - bits);
}

/** What a scheduler reports when it finds nothing (spec §2.1). */
export const NO_DEST = 'no destination available';

/**
 * The service as `ip_vs_scheduler_err` names it: `FWM <n> 0x<N as %08X>` for fwmark services,
 * else `<PROTO> <addr>:<port>` with IPv6 addresses in brackets.
 */
export function schedWhere(svc: Service): string {
  if (svc.fwmark) {
    return `FWM ${svc.fwmark} 0x${svc.fwmark.toString(16).toUpperCase().padStart(8, '0')}`;
  }
  const a = formatIp(svc.af, svc.addr);
  return `${protoName(svc.protocol)} ${svc.af === AF_INET6 ? `[${a}]` : a}:${svc.port}`;
}

/**
 * `ip_vs_scheduler_err`: logs `<sched>: <service> - <msg>` (rate limited per service) and
 * returns null, so a scheduler can `return schedErr(svc)`. Each scheduler calls it where its
 * kernel twin does, with the same message.
 */
export function schedErr(svc: Service, msg: string = NO_DEST): null {
  const where = schedWhere(svc);
  svc.env.warn(`nodest:${where}`, `${svc.schedName}: ${where} - ${msg}`);
  return null;
}

/** Greatest common divisor of two non-negative integers. */
export function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** True when the destination carries OVERLOAD. */
export function isOverloaded(d: Dest): boolean {
  return (d.flags & DEST_F_OVERLOAD) !== 0;
}

/** True when the destination is linked in its service (AVAILABLE). */
export function isAvailable(d: Dest): boolean {
  return (d.flags & DEST_F_AVAILABLE) !== 0;
}

/** "Unavailable" for sh and mh: weight ≤ 0 or OVERLOAD (AVAILABLE is not checked, spec §2.12). */
export function hashUnavailable(d: Dest): boolean {
  return d.weight <= 0 || (d.flags & DEST_F_OVERLOAD) !== 0;
}

/** Overhead used by lc / wlc / lblc / lblcr / twos: `active × 256 + inactive` (spec §2.1). */
export function connOverhead(d: Dest): number {
  return d.activeConns * 256 + d.inactConns;
}

/** Overhead used by sed / nq: `active + 1` (spec §2.6). */
export function sedOverhead(d: Dest): number {
  return d.activeConns + 1;
}

const TWO_16 = 65536;
const TWO_32 = 4294967296;
/** Low 32 bits of the last `mulHi` product (scratch, so nothing is allocated). */
let mulLo = 0;

/**
 * High part `⌊a × b / 2^32⌋` of an exact product (a < 2^37, b < 2^32); the low 32 bits are then
 * `lastMulLo()`.
 */
export function mulHi(a: number, b: number): number {
  const bl = b % TWO_16;
  const x = a * ((b - bl) / TWO_16); // < 2^53
  const y = a * bl; // < 2^53
  const xl = x % TWO_16;
  const yl = y % TWO_32;
  let lo = xl * TWO_16 + yl;
  let hi = (x - xl) / TWO_16 + (y - yl) / TWO_32;
  if (lo >= TWO_32) {
    lo -= TWO_32;
    hi++;
  }
  mulLo = lo;
  return hi;
}

/** The low 32 bits of the last `mulHi` product. */
export function lastMulLo(): number {
  return mulLo;
}

/**
 * `a × b > c × d` for non-negative integer overheads `a`, `c` (< 2^37) and weights `b`, `d`
 * (< 2^32), compared exactly as the kernel's 64-bit products are (`(__s64)loh * w > …`,
 * spec §2.1). Doubles hold every product up to 2^53; above that both sides are split into
 * 32-bit halves. Allocation-free.
 */
export function mulGt(a: number, b: number, c: number, d: number): boolean {
  const p = a * b;
  const q = c * d;
  if (p <= Number.MAX_SAFE_INTEGER && q <= Number.MAX_SAFE_INTEGER) return p > q;
  const ph = mulHi(a, b);
  const pl = mulLo;
  const qh = mulHi(c, d);
  return ph !== qh ? ph > qh : pl > mulLo;
}

/** Which overhead `weightedLeast` compares. */
export const OH_CONN = 0;
export const OH_SED = 1;

/**
 * The wlc pick (spec §2.5): the first `!OVERLOAD && weight > 0` destination is the seed, then every
 * later non-OVERLOAD destination replaces the best when `oh(best) × w(d) > oh(d) × w(best)`
 * (strict, so ties keep the earlier one; weight-0 ones can never win). `kind` selects the overhead.
 */
export function weightedLeast(dests: readonly Dest[], kind: number): Dest | null {
  const n = dests.length;
  let i = 0;
  let least: Dest | null = null;
  for (; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & DEST_F_OVERLOAD) === 0 && d.weight > 0) {
      least = d;
      break;
    }
  }
  if (least === null) return null;
  let loh = kind === OH_SED ? sedOverhead(least) : connOverhead(least);
  for (i++; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & DEST_F_OVERLOAD) !== 0) continue;
    const doh = kind === OH_SED ? sedOverhead(d) : connOverhead(d);
    if (mulGt(loh, d.weight, doh, least.weight)) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/**
 * lblc / lblcr "overloaded" (spec §2.14): more active connections than its weight while some
 * destination of the service has `active × 2 < weight`.
 */
export function lblcOverloaded(d: Dest, svc: Service): boolean {
  if (d.activeConns <= d.weight) return false;
  const dests = svc.dests;
  for (let i = 0; i < dests.length; i++) {
    const m = dests[i]!;
    if (m.activeConns * 2 < m.weight) return true;
  }
  return false;
}

/**
 * The client key hashed by sh and mh (spec §2.12, §2.13): `port + addr_fold(client)` mod 2^32,
 * where the client is the packet source (its destination for "inverse" ICMP-embedded packets)
 * and the port is the client's port only with the `*-port` flag (SCHED2) on TCP/UDP/SCTP.
 */
export function clientKey(svc: Service, flow: Flow): number {
  const inv = flow.inverse;
  let port = 0;
  if ((svc.flags & SVC_F_SCHED2) !== 0) {
    const p = flow.protocol;
    if (p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_SCTP) {
      port = inv ? flow.dport : flow.sport;
    }
  }
  return (port + addrFold(svc.af, inv ? flow.daddr : flow.saddr)) >>> 0;
}

/** Garbage-collection period of the lblc / lblcr caches, ms (CHECK_EXPIRE_INTERVAL). */
export const LOCALITY_GC_MS = 60_000;
/** Idle time after which a partial sweep may drop an entry, ms (ENTRY_TIMEOUT, 6 min). */
export const LOCALITY_IDLE_MS = 6 * 60_000;
/** Bits of the cache's bucket index (IP_VS_LBLC_TAB_BITS). */
export const LOCALITY_BITS = 10;
/** Number of buckets. */
export const LOCALITY_BUCKETS = 1 << LOCALITY_BITS;
/** Entries above which the partial sweep runs (buckets × 16). */
export const LOCALITY_MAX = LOCALITY_BUCKETS * 16;
/** A full sweep runs every this many GC ticks without a partial one. */
export const LOCALITY_FULL_EVERY = 30;

/** One cache entry: a packet destination address and when it was last used. */
export class LocalityEntry {
  a0 = 0;
  a1 = 0;
  a2 = 0;
  a3 = 0;
  /** Last use, ms of the service clock. */
  lastuse = 0;
  /** Next entry in the same bucket (or in the free list). */
  next: LocalityEntry | null = null;

  /**
   * Lets go of the entry's destinations as it is freed. An entry holds a reference on each
   * (ip_vs_dest_hold), so a deleted destination it names stays in the trash, counters and all,
   * until the entry lets go of it.
   */
  release(): void {}
}

/**
 * The lblc / lblcr cache (spec §2.14): 1024 chained buckets indexed by `hash_32(addr_fold, 10)`,
 * entries inserted at the head of their bucket, and the kernel's periodic collector. A chained
 * table (rather than a Map) keeps IPv6 lookups allocation-free and makes the partial sweep visit
 * buckets in the kernel's rover order. Removed entries go to a free list and are reused.
 */
export class LocalityTable<E extends LocalityEntry> {
  readonly buckets: (E | null)[] = new Array<E | null>(LOCALITY_BUCKETS).fill(null);
  /**
   * The kernel's `tbl->entries`: live entries, plus (lblc) one for every entry repointed to
   * another destination, which the kernel re-creates without counting the old one out.
   */
  entries = 0;
  /** Bucket cursor of the sweeps. */
  rover = 0;
  /** GC ticks since the last full sweep, starting at 1. */
  counter = 1;
  #free: E | null = null;

  /** The entry for address `w` (family `af`), or null. */
  find(af: number, w: ArrayLike<number>): E | null {
    let e: E | null = this.buckets[hash32(addrFold(af, w), LOCALITY_BITS)]!;
    const a0 = w[0]! >>> 0;
    if (af === AF_INET) {
      for (; e !== null; e = e.next as E | null) if (e.a0 === a0) return e;
      return null;
    }
    const a1 = w[1]! >>> 0,
      a2 = w[2]! >>> 0,
      a3 = w[3]! >>> 0;
    for (; e !== null; e = e.next as E | null) {
      if (e.a0 === a0 && e.a1 === a1 && e.a2 === a2 && e.a3 === a3) return e;
    }
    return null;
  }

  /** A recycled entry, or null when the free list is empty. */
  recycle(): E | null {
    const e = this.#free;
    if (e !== null) {
      this.#free = e.next as E | null;
      e.next = null;
    }
    return e;
  }

  /** Links `e` for address `w` at the head of its bucket, with `lastuse = now`. */
  insert(e: E, af: number, w: ArrayLike<number>, now: number): void {
    e.a0 = w[0]! >>> 0;
    e.a1 = af === AF_INET ? 0 : w[1]! >>> 0;
    e.a2 = af === AF_INET ? 0 : w[2]! >>> 0;
    e.a3 = af === AF_INET ? 0 : w[3]! >>> 0;
    e.lastuse = now;
    const b = hash32(addrFold(af, w), LOCALITY_BITS);
    e.next = this.buckets[b]!;
    this.buckets[b] = e;
    this.entries++;
  }

  /** Drops every entry of bucket `b` with `now ≥ lastuse + idleMs`; returns how many. */
  #sweepBucket(b: number, now: number, idleMs: number): number {
    let prev: E | null = null;
    let e: E | null = this.buckets[b]!;
    let n = 0;
    while (e !== null) {
      const next = e.next as E | null;
      if (now < e.lastuse + idleMs) {
        prev = e;
      } else {
        if (prev === null) this.buckets[b] = next;
        else prev.next = next;
        e.release();
        e.next = this.#free;
        this.#free = e;
        this.entries--;
        n++;
      }
      e = next;
    }
    return n;
  }

  /**
   * One run of the periodic collector (spec §2.14): every 30th tick a full sweep drops entries
   * unused for `expirationMs`; otherwise, while the table holds at most 16384 entries, only the
   * tick counter advances; above that a partial sweep from the rover drops entries idle ≥ 6 min,
   * whole buckets at a time, until `min((entries − 16384) × 4/3, 8192)` are gone.
   */
  collect(now: number, expirationMs: number): void {
    if (this.counter % LOCALITY_FULL_EVERY === 0) {
      for (let i = 0; i < LOCALITY_BUCKETS; i++) {
        this.#sweepBucket((this.rover + 1 + i) & (LOCALITY_BUCKETS - 1), now, expirationMs);
      }
      this.counter = 1;
      return;
    }
    if (this.entries <= LOCALITY_MAX) {
      this.counter++;
      return;
    }
    let goal = Math.trunc(((this.entries - LOCALITY_MAX) * 4) / 3);
    if (goal > LOCALITY_MAX / 2) goal = LOCALITY_MAX / 2;
    let j = this.rover;
    for (let i = 0; i < LOCALITY_BUCKETS; i++) {
      j = (j + 1) & (LOCALITY_BUCKETS - 1);
      goal -= this.#sweepBucket(j, now, LOCALITY_IDLE_MS);
      if (goal <= 0) break;
    }
    this.rover = j;
  }

  /** Drops every entry. */
  clear(): void {
    for (let e of this.buckets) for (; e !== null; e = e.next as E | null) e.release();
    this.buckets.fill(null);
    this.entries = 0;
    this.#free = null;
  }
}
