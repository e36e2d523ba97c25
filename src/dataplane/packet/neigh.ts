/**
 * The neighbour subsystem (ARP for IPv4, neighbour discovery for IPv6): a fixed-size cache of
 * next hops per interface with the kernel's states (INCOMPLETE → REACHABLE → STALE, FAILED,
 * PERMANENT), a small queue of frames waiting for resolution (the oldest is dropped past
 * `unresQlen` per neighbour, like the kernel's arp_queue), answers to ARP requests and neighbour
 * solicitations for the addresses the director owns, and gratuitous ARP / unsolicited NA to
 * announce a VIP. The cache is open addressing over typed arrays: lookups allocate nothing.
 * Garbage collection as neigh_periodic_work / neigh_forced_gc: every 15 s, past 128 entries, an
 * entry without a timer running (not PERMANENT, INCOMPLETE, DELAY or PROBE; REACHABLE only past
 * its reachable time, when Linux would have made it STALE) that has not been used or confirmed
 * for 60 s is removed; and when the cache is full, such entries not updated in the last 5 s make
 * room down to half of it.
 */
import { AF_INET, AF_INET6 } from '../../core/addr.js';
import { ETH_P, IPPROTO } from '../../packet/constants.js';
import { l4Checksum, l4ChecksumOk } from '../../packet/checksum.js';
import type { PacketView } from '../../packet/view.js';
import type { Counters } from './counters.js';
import { PktConfigError } from './errors.js';
import { unicastTest } from './ipopt.js';
import { martianSource4, type Iface, type NetModel } from './net.js';
import { copyBytes, put32 } from './bytes.js';

/** Neighbour states (include/net/neighbour.h, simplified). */
export const NUD = {
  NONE: 0,
  INCOMPLETE: 1,
  REACHABLE: 2,
  STALE: 3,
  FAILED: 4,
  PERMANENT: 5,
  /** STALE and used: confirmation awaited for `delayMs`, then PROBE. */
  DELAY: 6,
  /** Unicast solicitations to the cached address; FAILED after `probes` unanswered. */
  PROBE: 7,
} as const;
export const NUD_NAMES: readonly string[] = [
  'NONE',
  'INCOMPLETE',
  'REACHABLE',
  'STALE',
  'FAILED',
  'PERMANENT',
  'DELAY',
  'PROBE',
];

/** Neighbour subsystem sizes and timers. */
export interface NeighOptions {
  /** Cache slots (power of two; the cache refuses new entries past 3/4). Default 4096. */
  capacity?: number;
  /** Frames waiting for resolution, all neighbours together. Default 256. */
  queueSlots?: number;
  /** Largest frame a queue slot holds. Default 9216 + 64. */
  queueFrameMax?: number;
  /** Frames queued per neighbour (the oldest is dropped beyond). Default 101 (unres_qlen). */
  unresQlen?: number;
  /** Time between solicitations, ms. Default 1000. */
  retransMs?: number;
  /** Solicitations before an entry fails. Default 3. */
  probes?: number;
  /** A confirmed entry becomes STALE (re-probed on use) after this, ms. Default 30000. */
  reachableMs?: number;
  /** A used STALE entry waits this long in DELAY before unicast probes, ms. Default 5000. */
  delayMs?: number;
  /** An idle collectable entry is removed after this (gc_staletime), ms. Default 60000. */
  gcStaleMs?: number;
  /**
   * An ARP reply with another address changes an entry only this long after its last change
   * (locktime: the first of several back-to-back answers wins), ms. Default 1000.
   */
  lockMs?: number;
}

/** The periodic collection's interval (base_reachable_time / 2), ms, and its floor (gc_thresh1). */
const GC_INTERVAL_MS = 15_000;
const GC_THRESH1 = 128;
/** neigh_forced_gc spares entries updated this recently (FAILED ones never), ms. */
const GC_FORCED_SPARE_MS = 5000;

/** Where the neighbour subsystem sends frames it builds (ARP, NDP, released queue frames). */
export interface FrameSink {
  /** Reserves `len` bytes in `ifc`'s transmit memory; returns the offset in `txBuf(ifc)` or -1. */
  raw(ifc: Iface, len: number): number;
  txBuf(ifc: Iface): Uint8Array;
}

const BCAST = new Uint8Array([255, 255, 255, 255, 255, 255]);
const ZERO_MAC = new Uint8Array(6);

function hashKey(af: number, w: ArrayLike<number>, o: number, ifIndex: number): number {
  let h = Math.imul(w[o]! ^ (ifIndex << 24) ^ af, 0x9e3779b1);
  if (af === AF_INET6) {
    h = Math.imul(h ^ w[o + 1]!, 0x85ebca6b);
    h = Math.imul(h ^ w[o + 2]!, 0xc2b2ae35);
    h = Math.imul(h ^ w[o + 3]!, 0x27d4eb2f);
  }
  return (h ^ (h >>> 15)) >>> 0;
}

/** The neighbour cache and its resolution queue. */
export class Neigh {
  readonly capacity: number;
  /** Bumped whenever an entry may have moved to another slot (a removal). */
  gen = 0;
  readonly #mask: number;
  readonly #key: Uint32Array; // 4 words per slot
  readonly #af: Uint8Array; // 0 = empty slot
  readonly #if: Int16Array;
  /** MAC of each slot, 6 bytes per slot. */
  readonly mac: Uint8Array;
  readonly #state: Uint8Array;
  readonly #probes: Uint8Array;
  readonly #qlen: Int32Array;
  readonly #confirmed: Float64Array;
  /** Last send toward the entry (n->used) and last change of its state or address (n->updated). */
  readonly #used: Float64Array;
  readonly #updated: Float64Array;
  readonly #gcStale: number;
  readonly #lock: number;
  readonly #unicast: (a: number) => boolean;
  #nextGc = 0;
  readonly #nextProbe: Float64Array;
  /** Slots whose first solicitation waits for the frame its sender is queueing (`sendPending`). */
  readonly #pending: Uint8Array;
  #pendingCount = 0;
  #count = 0;
  // resolution queue
  readonly queueFrameMax: number;
  /** Memory of the queued frames (one `queueFrameMax` region per queue slot). */
  readonly queueBuf: Uint8Array;
  readonly #qSlot: Int32Array; // neighbour slot, -1 free
  readonly #qLen: Int32Array;
  readonly #qSeq: Float64Array;
  /** The queue slots of a failed neighbour, oldest first (`#reportQueue`). */
  readonly #failing: Int32Array;
  #seq = 0;
  readonly #unresQlen: number;
  readonly #retrans: number;
  readonly #maxProbes: number;
  readonly #reachable: number;
  readonly #delay: number;
  readonly #net: NetModel;
  readonly #counters: Counters;
  /** Says something once a second per key (the engine passes Ipvs.warn); none by default. */
  warn: ((key: string, msg: string) => void) | null = null;
  readonly #now: () => number;
  sink: FrameSink | null = null;
  /**
   * Told about each frame queued for a neighbour whose resolution failed, oldest first, before
   * it is dropped (neigh_invalidate → arp_error_report / ndisc_error_report: the host answers
   * its sender with an ICMP unreachable). The frame is at `buf[off, off+len)`.
   */
  onFailed: ((ifc: Iface, buf: Uint8Array, off: number, len: number) => void) | null = null;
  readonly #tmp = new Uint32Array(4);
  readonly #tmp2 = new Uint32Array(4);
  readonly #src = new Uint32Array(4);

  constructor(net: NetModel, counters: Counters, now: () => number, o: NeighOptions = {}) {
    const cap = o.capacity ?? 4096;
    if (!Number.isInteger(cap) || cap < 8 || cap & (cap - 1))
      throw new PktConfigError(`neighbour capacity ${cap} must be a power of two >= 8`);
    this.capacity = cap;
    this.#mask = cap - 1;
    this.#key = new Uint32Array(cap * 4);
    this.#af = new Uint8Array(cap);
    this.#if = new Int16Array(cap);
    this.mac = new Uint8Array(cap * 6);
    this.#state = new Uint8Array(cap);
    this.#probes = new Uint8Array(cap);
    this.#qlen = new Int32Array(cap);
    this.#confirmed = new Float64Array(cap);
    this.#used = new Float64Array(cap);
    this.#updated = new Float64Array(cap);
    this.#nextProbe = new Float64Array(cap);
    this.#pending = new Uint8Array(cap);
    const qs = o.queueSlots ?? 256;
    this.queueFrameMax = o.queueFrameMax ?? 9216 + 64;
    this.queueBuf = new Uint8Array(qs * this.queueFrameMax);
    this.#qSlot = new Int32Array(qs).fill(-1);
    this.#qLen = new Int32Array(qs);
    this.#qSeq = new Float64Array(qs);
    this.#failing = new Int32Array(qs);
    this.#unresQlen = o.unresQlen ?? 101;
    this.#retrans = o.retransMs ?? 1000;
    this.#maxProbes = o.probes ?? 3;
    this.#reachable = o.reachableMs ?? 30000;
    this.#delay = o.delayMs ?? 5000;
    this.#gcStale = o.gcStaleMs ?? 60_000;
    this.#lock = o.lockMs ?? 1000;
    this.#unicast = unicastTest(net);
    this.#net = net;
    this.#counters = counters;
    this.#now = now;
  }

  /** Entries in the cache. */
  get count(): number {
    return this.#count;
  }

  /** State of slot `s` (NUD.*). */
  state(s: number): number {
    return this.#state[s]!;
  }

  /** The slot of (ifIndex, af, w), or -1. */
  lookup(ifIndex: number, af: number, w: ArrayLike<number>, o = 0): number {
    const m = this.#mask;
    const k = this.#key;
    for (let i = hashKey(af, w, o, ifIndex) & m, n = 0; n <= m; i = (i + 1) & m, n++) {
      const a = this.#af[i]!;
      if (a === 0) return -1;
      if (
        a === af &&
        this.#if[i] === ifIndex &&
        k[i * 4] === w[o] &&
        (af !== AF_INET6 ||
          (k[i * 4 + 1] === w[o + 1] && k[i * 4 + 2] === w[o + 2] && k[i * 4 + 3] === w[o + 3]))
      ) {
        return i;
      }
    }
    return -1;
  }

  #insert(ifIndex: number, af: number, w: ArrayLike<number>, o: number): number {
    const now = this.#now();
    if (this.#count >= (this.capacity * 3) >>> 2) {
      this.#forcedGc(now);
      if (this.#count >= (this.capacity * 3) >>> 2) {
        // neigh_alloc: "neighbor table overflow!", counted in table_fulls
        this.#counters.neighTableFull++;
        this.warn?.(
          'neigh-overflow',
          `packet: neighbour table overflow (${this.#count} entries, capacity ${this.capacity}): new next hop refused, its frames dropped (neighTableFull ${this.#counters.neighTableFull})`,
        );
        return -1;
      }
    }
    const m = this.#mask;
    let i = hashKey(af, w, o, ifIndex) & m;
    while (this.#af[i] !== 0) i = (i + 1) & m;
    this.#af[i] = af;
    this.#if[i] = ifIndex;
    const k = this.#key;
    k[i * 4] = w[o]!;
    k[i * 4 + 1] = af === AF_INET6 ? w[o + 1]! : 0;
    k[i * 4 + 2] = af === AF_INET6 ? w[o + 2]! : 0;
    k[i * 4 + 3] = af === AF_INET6 ? w[o + 3]! : 0;
    this.#state[i] = NUD.NONE;
    this.#probes[i] = 0;
    this.#qlen[i] = 0;
    this.#used[i] = now;
    this.#updated[i] = now;
    this.#count++;
    return i;
  }

  /** True when the collector may take slot `s`: no timer of its own running, not PERMANENT. */
  #collectable(s: number, now: number): boolean {
    const st = this.#state[s]!;
    return (
      st === NUD.STALE ||
      st === NUD.NONE ||
      st === NUD.FAILED ||
      (st === NUD.REACHABLE && now - this.#confirmed[s]! > this.#reachable)
    );
  }

  /** neigh_forced_gc: the cache is full; entries not updated lately make room, down to half. */
  #forcedGc(now: number): void {
    const half = this.capacity >>> 1;
    for (let s = 0; s < this.capacity && this.#count > half; s++) {
      if (this.#af[s] === 0 || !this.#collectable(s, now)) continue;
      if (this.#state[s] !== NUD.FAILED && now - this.#updated[s]! < GC_FORCED_SPARE_MS) continue;
      this.#remove(s);
      s--; // the slot may hold a shifted entry now
    }
  }

  /** neigh_periodic_work: past gc_thresh1 entries, the idle collectable ones go. */
  #periodicGc(now: number): void {
    if (this.#count < GC_THRESH1) return;
    for (let s = 0; s < this.capacity; s++) {
      if (this.#af[s] === 0 || !this.#collectable(s, now)) continue;
      const last = Math.max(this.#used[s]!, this.#confirmed[s]!);
      if (now - last < this.#gcStale) continue;
      this.#remove(s);
      s--;
    }
  }

  /** Removes slot `s` (backward-shift deletion keeps probe chains intact). */
  #remove(s: number): void {
    this.#dropQueue(s);
    if (this.#pending[s] === 1) {
      this.#pending[s] = 0;
      this.#pendingCount--;
    }
    this.gen++; // entries may move to other slots
    const m = this.#mask;
    let hole = s;
    this.#af[hole] = 0;
    this.#count--;
    for (let i = (hole + 1) & m; this.#af[i] !== 0; i = (i + 1) & m) {
      const home = hashKey(this.#af[i]!, this.#key, i * 4, this.#if[i]!) & m;
      // move i into the hole when its home is not in (hole, i]
      const between = hole <= i ? home > hole && home <= i : home > hole || home <= i;
      if (between) continue;
      this.#af[hole] = this.#af[i]!;
      this.#if[hole] = this.#if[i]!;
      this.#key.copyWithin(hole * 4, i * 4, i * 4 + 4);
      this.mac.copyWithin(hole * 6, i * 6, i * 6 + 6);
      this.#state[hole] = this.#state[i]!;
      this.#probes[hole] = this.#probes[i]!;
      this.#qlen[hole] = this.#qlen[i]!;
      this.#confirmed[hole] = this.#confirmed[i]!;
      this.#used[hole] = this.#used[i]!;
      this.#updated[hole] = this.#updated[i]!;
      this.#nextProbe[hole] = this.#nextProbe[i]!;
      this.#pending[hole] = this.#pending[i]!;
      this.#pending[i] = 0;
      for (let q = 0; q < this.#qSlot.length; q++) if (this.#qSlot[q] === i) this.#qSlot[q] = hole;
      this.#af[i] = 0;
      hole = i;
    }
  }

  /** Adds a static (PERMANENT) entry. */
  addStatic(ifc: Iface, af: number, w: ArrayLike<number>, mac: Uint8Array): void {
    let s = this.lookup(ifc.index, af, w);
    if (s < 0) s = this.#insert(ifc.index, af, w, 0);
    if (s < 0) throw new PktConfigError('neighbour cache full');
    this.mac.set(mac.subarray(0, 6), s * 6);
    this.#state[s] = NUD.PERMANENT;
    this.#flush(s);
  }

  /**
   * The slot to send toward next hop (af, w) on `ifc`: a usable MAC when the state is REACHABLE,
   * STALE or PERMANENT; otherwise resolution starts (a solicitation goes out) and the caller
   * queues its frame with `enqueue`. Returns -1 when the cache is full.
   */
  resolve(ifc: Iface, af: number, w: ArrayLike<number>, o: number): number {
    let s = this.lookup(ifc.index, af, w, o);
    if (s < 0) {
      s = this.#insert(ifc.index, af, w, o);
      if (s < 0) return -1;
    }
    return this.use(s);
  }

  /**
   * `resolve` for a caller that already knows the slot (and has checked `gen` since it learned
   * it): ages the entry and starts the probes a send toward it calls for; returns `s`.
   */
  use(s: number): number {
    const now = this.#now();
    this.#used[s] = now;
    const st = this.#state[s]!;
    if (st === NUD.REACHABLE) {
      // past reachable_time a used entry is confirmed again: DELAY, then unicast probes
      if (now - this.#confirmed[s]! > this.#reachable) this.#delayed(s, now);
      return s;
    }
    if (st === NUD.PERMANENT || st === NUD.DELAY || st === NUD.PROBE) return s;
    if (st === NUD.STALE) {
      this.#delayed(s, now);
      return s;
    }
    // NONE or FAILED: resolution starts again at once (__neigh_event_send)
    if (st !== NUD.INCOMPLETE) {
      this.#state[s] = NUD.INCOMPLETE;
      this.#probes[s] = 0;
      this.#nextProbe[s] = 0;
      this.#updated[s] = now;
    }
    // the last probe's answer time running out is the tick's to judge: a failure reports the
    // queued frames (onFailed), which must not happen in the middle of another frame's sending.
    // The solicitation itself waits for the frame the caller queues next: its source may be
    // the one the request names (`sendPending`)
    if (now >= this.#nextProbe[s]! && this.#probes[s]! < this.#maxProbes) {
      this.#probes[s]!++;
      this.#nextProbe[s] = now + this.#retrans;
      if (this.#pending[s] === 0) {
        this.#pending[s] = 1;
        this.#pendingCount++;
      }
    }
    return s;
  }

  #delayed(s: number, now: number): void {
    // the REACHABLE → STALE move the kernel's timer would have made on the way counts as a
    // change (`#changed`); this one too (__neigh_event_send sets n->updated)
    this.#state[s] = NUD.DELAY;
    this.#nextProbe[s] = now + this.#delay;
    this.#updated[s] = now;
  }

  /**
   * n->updated: the last change of slot `s`'s state or address. A REACHABLE entry past its
   * reachable time is STALE to the kernel, whose timer set `updated` when it moved it.
   */
  #changed(s: number, now: number): number {
    const u = this.#updated[s]!;
    if (this.#state[s] !== NUD.REACHABLE) return u;
    const stale = this.#confirmed[s]! + this.#reachable;
    return now > stale && stale > u ? stale : u;
  }

  /** True when slot `s` has a MAC to send to. */
  usable(s: number): boolean {
    const st = this.#state[s]!;
    return st >= NUD.REACHABLE && st !== NUD.FAILED;
  }

  #probe(ifc: Iface, s: number, now: number): void {
    if (this.#probes[s]! >= this.#maxProbes) {
      this.#state[s] = NUD.FAILED;
      this.#nextProbe[s] = now;
      this.#updated[s] = now;
      this.#reportQueue(ifc, s);
      return;
    }
    this.#probes[s]!++;
    this.#nextProbe[s] = now + this.#retrans;
    this.#solicit(ifc, s, this.#state[s] === NUD.PROBE);
  }

  /**
   * Sends the solicitations `use` held back until the frame that started the resolution was
   * queued and written (`Tx.commit` calls this first), as __neigh_event_send queues the packet
   * before neigh_probe asks with the newest queued one.
   */
  sendPending(): void {
    for (let s = 0; s < this.capacity && this.#pendingCount > 0; s++) {
      if (this.#pending[s] === 0) continue;
      this.#pending[s] = 0;
      this.#pendingCount--;
      if (this.#state[s] === NUD.INCOMPLETE)
        this.#solicit(this.#net.ifaces[this.#if[s]!]!, s, false);
    }
  }

  /** Runs due solicitations and timeouts (call from the engine's tick). */
  tick(): void {
    const now = this.#now();
    for (let s = 0; s < this.capacity; s++) {
      if (this.#af[s] === 0) continue;
      const st = this.#state[s]!;
      if (st === NUD.INCOMPLETE && now >= this.#nextProbe[s]!) {
        this.#probe(this.#net.ifaces[this.#if[s]!]!, s, now);
      } else if (st === NUD.DELAY && now >= this.#nextProbe[s]!) {
        // not confirmed while it waited (an answer would have made it REACHABLE): probe the
        // cached MAC
        this.#state[s] = NUD.PROBE;
        this.#probes[s] = 0;
        this.#updated[s] = now;
        this.#probe(this.#net.ifaces[this.#if[s]!]!, s, now);
      } else if (st === NUD.PROBE && now >= this.#nextProbe[s]!) {
        this.#probe(this.#net.ifaces[this.#if[s]!]!, s, now);
      }
      // a FAILED entry stays until garbage collection takes it: a late answer still revives
      // it (arp_process finds it), a use asks again
    }
    if (now >= this.#nextGc) {
      this.#nextGc = now + GC_INTERVAL_MS;
      this.#periodicGc(now);
    }
  }

  /**
   * Reserves a queue slot for a frame of `len` bytes waiting on neighbour slot `s`; returns its
   * offset in `queueBuf`, or -1 (frame too large, or every queue slot busy). Past `unresQlen`
   * frames for this neighbour the oldest is dropped.
   */
  enqueue(s: number, ifc: Iface, len: number): number {
    if (len > this.queueFrameMax) return -1;
    const qs = this.#qSlot;
    if (this.#qlen[s]! >= this.#unresQlen) {
      let oldest = -1;
      for (let q = 0; q < qs.length; q++) {
        if (qs[q] === s && (oldest < 0 || this.#qSeq[q]! < this.#qSeq[oldest]!)) oldest = q;
      }
      if (oldest >= 0) {
        qs[oldest] = -1;
        this.#qlen[s]!--;
        this.#counters.neighDropped++;
      }
    }
    for (let q = 0; q < qs.length; q++) {
      if (qs[q] !== -1) continue;
      qs[q] = s;
      this.#qLen[q] = len;
      this.#qSeq[q] = this.#seq++;
      this.#qlen[s]!++;
      this.#counters.neighQueued++;
      void ifc;
      return q * this.queueFrameMax;
    }
    return -1;
  }

  #dropQueue(s: number): void {
    if (this.#qlen[s] === 0) return;
    const qs = this.#qSlot;
    for (let q = 0; q < qs.length; q++) {
      if (qs[q] !== s) continue;
      qs[q] = -1;
      this.#counters.neighDropped++;
    }
    this.#qlen[s] = 0;
  }

  /**
   * Drops the frames queued on slot `s`, whose resolution failed, telling `onFailed` about each,
   * oldest first. What the report sends may queue on `s` again (resolution restarts); those
   * frames stay.
   */
  #reportQueue(ifc: Iface, s: number): void {
    const n = this.#qlen[s]!;
    if (n === 0) return;
    const qs = this.#qSlot;
    const f = this.#failing;
    let k = 0;
    for (let q = 0; q < qs.length; q++) if (qs[q] === s) f[k++] = q;
    // oldest first: an insertion sort of at most unres_qlen slots, on a rare path
    for (let i = 1; i < k; i++) {
      const q = f[i]!;
      let j = i - 1;
      for (; j >= 0 && this.#qSeq[f[j]!]! > this.#qSeq[q]!; j--) f[j + 1] = f[j]!;
      f[j + 1] = q;
    }
    this.#qlen[s] = 0;
    for (let i = 0; i < k; i++) {
      const q = f[i]!;
      this.#counters.neighDropped++;
      if (this.onFailed) this.onFailed(ifc, this.queueBuf, q * this.queueFrameMax, this.#qLen[q]!);
      qs[q] = -1;
    }
  }

  /** Sends the frames queued on slot `s` (its MAC became known), oldest first. */
  #flush(s: number): void {
    if (this.#qlen[s] === 0 || !this.sink) return;
    const ifc = this.#net.ifaces[this.#if[s]!]!;
    const qs = this.#qSlot;
    for (;;) {
      let q = -1;
      for (let i = 0; i < qs.length; i++) {
        if (qs[i] === s && (q < 0 || this.#qSeq[i]! < this.#qSeq[q]!)) q = i;
      }
      if (q < 0) break;
      qs[q] = -1;
      const len = this.#qLen[q]!;
      const src = q * this.queueFrameMax;
      copyBytes(this.queueBuf, src, this.mac, s * 6, 6);
      const off = this.sink.raw(ifc, len);
      if (off < 0) {
        this.#counters.neighDropped++;
        continue;
      }
      copyBytes(this.sink.txBuf(ifc), off, this.queueBuf, src, len);
    }
    this.#qlen[s] = 0;
  }

  /**
   * Learns or refreshes (ifIndex, af, w) → mac as neigh_update does: `create` adds a missing
   * entry; `state` is REACHABLE (a confirmation) or STALE (an address heard, not confirmed). On an
   * entry that has an address, a different one is taken only with `override`; with `weak`
   * instead, a REACHABLE entry keeps its address and turns STALE. The same address heard as
   * STALE leaves the state as it was.
   */
  learn(
    ifc: Iface,
    af: number,
    w: ArrayLike<number>,
    o: number,
    buf: Uint8Array,
    macOff: number,
    create: boolean,
    state: number = NUD.REACHABLE,
    override = true,
    weak = false,
  ): void {
    let s = this.lookup(ifc.index, af, w, o);
    if (s < 0) {
      if (!create) return;
      s = this.#insert(ifc.index, af, w, o);
      if (s < 0) return;
    }
    const old = this.#state[s]!;
    if (old === NUD.PERMANENT) return;
    let next = state;
    let take = true;
    if (this.usable(s)) {
      let same = true;
      for (let i = 0; i < 6; i++) if (this.mac[s * 6 + i] !== buf[macOff + i]) same = false;
      if (!same && !override) {
        if (!weak || old !== NUD.REACHABLE) return;
        take = false;
        next = NUD.STALE;
      } else if (same && next === NUD.STALE) next = old;
    }
    let changed = next !== old;
    if (take) {
      for (let i = 0; i < 6; i++) {
        if (this.mac[s * 6 + i] !== buf[macOff + i]) changed = true;
        this.mac[s * 6 + i] = buf[macOff + i]!;
      }
    }
    this.#state[s] = next;
    const now = this.#now();
    if (changed) this.#updated[s] = now;
    if (next === NUD.REACHABLE) this.#confirmed[s] = now;
    if (next !== old) this.#probes[s] = 0;
    this.#flush(s);
  }

  // ---- ARP ----------------------------------------------------------------------------------

  /**
   * Handles a decoded ARP frame received on `ifc`: answers requests for addresses the director
   * owns there, and learns the sender (creating the entry when the request was for us, refreshing
   * it otherwise — gratuitous ARP included).
   */
  arpInput(ifc: Iface, v: PacketView): void {
    const buf = v.buf;
    const spa = this.#tmp;
    spa[0] = v.arpSpa;
    const tpa = this.#tmp2;
    tpa[0] = v.arpTpa;
    const a = v.arpSpa >>> 0;
    // a martian sender (ip_route_input_slow: multicast, limited broadcast, 0/8, loopback, or one
    // of our own addresses) fails arp_process's route check: no answer, nothing learned; the
    // DAD probe's sender 0.0.0.0 is answered but not learned
    if (a !== 0 && (martianSource4(a) || this.#net.isLocal(AF_INET, spa, 0))) return;
    const forUs = this.#net.answersFor(AF_INET, tpa, 0, ifc.index);
    // a subnet's broadcast address is answered, its entry NOARP (arp_constructor): not learned
    const heard = a !== 0 && !subnetBroadcast(ifc, a);
    if (v.arpOp === 1 && forUs) {
      // a request for us: its sender is heard, not confirmed (neigh_event_ns: STALE)
      if (heard) this.learn(ifc, AF_INET, spa, 0, buf, v.arpShaOffset, true, NUD.STALE);
    } else if (heard) {
      // anything else refreshes an entry that exists (arp_accept 0: a reply creates none); only
      // a reply sent to this host confirms it. Another address is taken past the locktime
      // after the entry's last change, or from a gratuitous ARP (arp_process)
      let toUs = v.arpOp === 2 && v.l2Offset >= 0;
      for (let i = 0; toUs && i < 6; i++) if (buf[v.l2Offset + i] !== ifc.mac[i]) toUs = false;
      const s = this.lookup(ifc.index, AF_INET, spa, 0);
      const now = this.#now();
      const override = s >= 0 && (now - this.#changed(s, now) > this.#lock || this.#garp(v));
      this.learn(
        ifc,
        AF_INET,
        spa,
        0,
        buf,
        v.arpShaOffset,
        false,
        toUs ? NUD.REACHABLE : NUD.STALE,
        override,
      );
    }
    if (v.arpOp !== 1 || !forUs || !this.sink) return;
    const off = this.sink.raw(ifc, 42);
    if (off < 0) return;
    const o = this.sink.txBuf(ifc);
    copyBytes(o, off, buf, v.arpShaOffset, 6);
    o.set(ifc.mac, off + 6);
    writeArp(o, off + 14, 2, ifc.mac, v.arpTpa, buf, v.arpShaOffset, v.arpSpa);
    this.#counters.arpReplies++;
  }

  /**
   * arp_is_garp: sender and target address the same, a unicast one of another host, and for a
   * reply the target hardware address the sender's.
   */
  #garp(v: PacketView): boolean {
    if (v.arpSpa !== v.arpTpa) return false;
    const b = v.buf;
    if (v.arpOp === 2) {
      const tha = v.arpShaOffset + 10;
      for (let i = 0; i < 6; i++) if (b[tha + i] !== b[v.arpShaOffset + i]) return false;
    }
    return this.#unicast(v.arpSpa >>> 0);
  }

  /** Sends a gratuitous ARP request announcing `addr` (IPv4) or an unsolicited NA (IPv6) on `ifc`. */
  announce(ifc: Iface, af: number, w: ArrayLike<number>): void {
    if (!this.sink) return;
    if (af === AF_INET) {
      const off = this.sink.raw(ifc, 42);
      if (off < 0) return;
      const o = this.sink.txBuf(ifc);
      o.set(BCAST, off);
      o.set(ifc.mac, off + 6);
      writeArp(o, off + 14, 1, ifc.mac, w[0]!, ZERO_MAC, 0, w[0]!);
      this.#counters.arpRequests++;
      return;
    }
    // unsolicited neighbour advertisement to all nodes (RFC 4861 §7.2.6), override set
    const all = this.#tmp2;
    all[0] = 0xff020000;
    all[1] = 0;
    all[2] = 0;
    all[3] = 1;
    this.#sendNdp(ifc, 136, w, all, [0x33, 0x33, 0, 0, 0, 1], w, 0x20000000, 2);
  }

  /**
   * The sender address of a solicitation for slot `s`. The newest frame queued for it names its
   * own source when that is the director's (arp_solicit with arp_announce 0: any local address,
   * a VIP for a NAT reply; ndisc_solicit: an address of `ifc`'s link); otherwise for IPv4 the
   * interface's address in the target's subnet, else its first (inet_select_addr), for IPv6 its
   * link-local address when known, else its first. Null: none of `af`.
   */
  #source(ifc: Iface, s: number, af: number): Uint32Array | null {
    const out = this.#src;
    if (this.#qlen[s]! > 0) {
      let q = -1;
      const qs = this.#qSlot;
      for (let i = 0; i < qs.length; i++) {
        if (qs[i] === s && (q < 0 || this.#qSeq[i]! > this.#qSeq[q]!)) q = i;
      }
      const b = this.queueBuf;
      const f = q * this.queueFrameMax;
      const v6 = af === AF_INET6;
      if (q >= 0 && this.#qLen[q]! >= (v6 ? 54 : 34) && b[f + 12] === (v6 ? 0x86 : 0x08)) {
        const n = v6 ? 4 : 1;
        for (let j = 0, p = f + (v6 ? 22 : 26); j < n; j++, p += 4) out[j] = get32(b, p);
        const own = v6
          ? this.#net.answersFor(AF_INET6, out, 0, ifc.index)
          : this.#net.isLocal(AF_INET, out, 0);
        if (own) return out;
      }
    }
    // ndisc_send_ns without a source: the link-local address (ipv6_get_lladdr); without one
    // known here, the interface's first address
    if (af === AF_INET6 && ifc.linkLocal !== null) return ifc.linkLocal;
    let first: Uint32Array | null = null;
    const k = this.#key;
    for (const a of ifc.addrs) {
      if (a.af !== af) continue;
      if (first === null) first = a.words;
      if (af === AF_INET && a.prefix > 0) {
        const m = a.prefix >= 32 ? 0xffffffff : ~(0xffffffff >>> a.prefix);
        if (((a.words[0]! ^ k[s * 4]!) & m) === 0) return a.words;
      }
    }
    return first;
  }

  /** An ARP request / NS for slot `s`: broadcast (multicast), or to its cached MAC (`unicast`). */
  #solicit(ifc: Iface, s: number, unicast: boolean): void {
    if (!this.sink) return;
    const af = this.#af[s]!;
    const k = this.#key;
    if (af === AF_INET) {
      const off = this.sink.raw(ifc, 42);
      if (off < 0) return;
      const o = this.sink.txBuf(ifc);
      if (unicast) copyBytes(o, off, this.mac, s * 6, 6);
      else o.set(BCAST, off);
      o.set(ifc.mac, off + 6);
      const src = this.#source(ifc, s, AF_INET);
      const spa = src ? src[0]! : this.#net.firstLocal4();
      writeArp(o, off + 14, 1, ifc.mac, spa, ZERO_MAC, 0, k[s * 4]!);
      this.#counters.arpRequests++;
      return;
    }
    // neighbour solicitation to the solicited-node multicast address (RFC 4861 §7.2.2)
    const t = this.#tmp;
    t[0] = k[s * 4]!;
    t[1] = k[s * 4 + 1]!;
    t[2] = k[s * 4 + 2]!;
    t[3] = k[s * 4 + 3]!;
    const d = this.#tmp2;
    const src = this.#source(ifc, s, AF_INET6);
    if (!src) return;
    let mac: ArrayLike<number>;
    if (unicast) {
      d.set(t); // a probe goes to the neighbour itself, at its cached MAC
      mac = this.mac.subarray(s * 6, s * 6 + 6);
    } else {
      d[0] = 0xff020000;
      d[1] = 0;
      d[2] = 1;
      d[3] = (0xff000000 | (t[3]! & 0xffffff)) >>> 0;
      mac = [0x33, 0x33, 0xff, (t[3]! >>> 16) & 255, (t[3]! >>> 8) & 255, t[3]! & 255];
    }
    this.#sendNdp(ifc, 135, src, d, mac, t, 0, 1);
    this.#counters.ndpSolicits++;
  }

  /** Builds and sends an NS (135) or NA (136) with one link-layer address option (none: 0). */
  #sendNdp(
    ifc: Iface,
    type: number,
    src: ArrayLike<number>,
    dst: ArrayLike<number>,
    dmac: ArrayLike<number>,
    target: ArrayLike<number>,
    flags: number,
    optType: number,
  ): void {
    const off = this.sink!.raw(ifc, 14 + 40 + (optType ? 32 : 24));
    if (off < 0) return;
    this.#writeNdp(this.sink!.txBuf(ifc), off, ifc, type, src, dst, dmac, target, flags, optType);
  }

  /** Writes the NS / NA frame of `#sendNdp` at `o[off…)`. */
  #writeNdp(
    o: Uint8Array,
    off: number,
    ifc: Iface,
    type: number,
    src: ArrayLike<number>,
    dst: ArrayLike<number>,
    dmac: ArrayLike<number>,
    target: ArrayLike<number>,
    flags: number,
    optType: number,
  ): void {
    const body = optType ? 32 : 24;
    for (let i = 0; i < 6; i++) o[off + i] = dmac[i]!;
    o.set(ifc.mac, off + 6);
    o[off + 12] = 0x86;
    o[off + 13] = 0xdd;
    const ip = off + 14;
    o[ip] = 0x60;
    o[ip + 1] = 0;
    o[ip + 2] = 0;
    o[ip + 3] = 0;
    o[ip + 4] = 0;
    o[ip + 5] = body;
    o[ip + 6] = IPPROTO.ICMPV6;
    o[ip + 7] = 255;
    put128(o, ip + 8, src);
    put128(o, ip + 24, dst);
    const l4 = ip + 40;
    o[l4] = type;
    o[l4 + 1] = 0;
    o[l4 + 2] = 0;
    o[l4 + 3] = 0;
    put32(o, l4 + 4, flags);
    put128(o, l4 + 8, target);
    if (optType) {
      o[l4 + 24] = optType;
      o[l4 + 25] = 1;
      o.set(ifc.mac, l4 + 26);
    }
    const c = l4Checksum(AF_INET6, src, dst, IPPROTO.ICMPV6, o, l4, body);
    o[l4 + 2] = c >>> 8;
    o[l4 + 3] = c;
  }

  /**
   * Handles an ICMPv6 neighbour solicitation (135) or advertisement (136) received on `ifc`.
   * Returns true when the message was one of them (consumed).
   */
  ndpInput(ifc: Iface, v: PacketView): boolean {
    const t = v.icmpType;
    if (t !== 135 && t !== 136) return false;
    const buf = v.buf;
    const l4 = v.l4Offset;
    // RFC 4861 §7.1: hop limit 255, code 0, a valid ICMPv6 checksum (icmpv6_rcv, ndisc_rcv)
    if (v.l4Length < 24 || v.ttl !== 255 || buf[l4 + 1] !== 0) return true;
    if (!l4ChecksumOk(AF_INET6, v.src, v.dst, IPPROTO.ICMPV6, buf, l4, v.ipEnd - l4)) return true;
    const target = this.#tmp;
    for (let i = 0; i < 4; i++) target[i] = get32(buf, l4 + 8 + 4 * i);
    if (target[0]! >>> 24 === 0xff) return true; // a multicast target
    // link-layer address option (type 1 in NS, 2 in NA); a zero-length option voids the message
    let llOff = -1;
    for (let p = l4 + 24; p + 2 <= v.ipEnd;) {
      const ol = buf[p + 1]! * 8;
      if (ol === 0 || p + ol > v.ipEnd) return true;
      if ((buf[p] === 1 && t === 135) || (buf[p] === 2 && t === 136)) llOff = p + 2;
      p += ol;
    }
    const toGroup = v.dst[0]! >>> 24 === 0xff;
    if (t === 136) {
      // ndisc_recv_na: a solicited answer sent to a group is bogus; a FAILED entry ignores it
      const solicited = (buf[l4 + 4]! & 0x40) !== 0;
      const override = (buf[l4 + 4]! & 0x20) !== 0;
      if (solicited && toGroup) return true;
      const s = this.lookup(ifc.index, AF_INET6, target);
      if (s < 0 || this.#state[s] === NUD.FAILED) return true;
      // no target address option: the entry's own address, when it has one
      if (llOff < 0 && !this.usable(s)) return true;
      this.learn(
        ifc,
        AF_INET6,
        target,
        0,
        llOff >= 0 ? buf : this.mac,
        llOff >= 0 ? llOff : s * 6,
        false,
        solicited ? NUD.REACHABLE : NUD.STALE,
        override,
        true,
      );
      return true;
    }
    const dad = v.src[0] === 0 && v.src[1] === 0 && v.src[2] === 0 && v.src[3] === 0;
    if (dad) {
      // duplicate address detection: to the target's solicited-node group, without an option
      const d = v.dst;
      const solicitedNode =
        d[0] === 0xff020000 &&
        d[1] === 0 &&
        d[2] === 1 &&
        d[3]! >>> 24 === 0xff &&
        (d[3]! & 0xffffff) === (target[3]! & 0xffffff);
      if (!solicitedNode || llOff >= 0) return true;
    }
    const ll = ifc.linkLocal;
    const own =
      ll !== null &&
      ll[0] === target[0] &&
      ll[1] === target[1] &&
      ll[2] === target[2] &&
      ll[3] === target[3];
    if (!own && !this.#net.answersFor(AF_INET6, target, 0, ifc.index)) return true;
    const dst = this.#tmp2;
    if (dad) {
      // the defence: to all nodes, override, with our address (ndisc_send_na to ff02::1)
      dst[0] = 0xff020000;
      dst[1] = 0;
      dst[2] = 0;
      dst[3] = 1;
      this.#sendNdp(ifc, 136, target, dst, [0x33, 0x33, 0, 0, 0, 1], target, 0x20000000, 2);
      this.#counters.ndpAdverts++;
      return true;
    }
    // without a link-layer option the answer goes the way of any packet to the solicitor: its
    // entry (created for a unicast NS), resolved first if need be (ndisc_recv_ns → neigh_output)
    let via = -1;
    if (llOff >= 0) this.learn(ifc, AF_INET6, v.src, 0, buf, llOff, true, NUD.STALE, true, true);
    else {
      via = this.lookup(ifc.index, AF_INET6, v.src);
      if (via < 0 && !toGroup) via = this.#insert(ifc.index, AF_INET6, v.src, 0);
      if (via < 0) return true; // nowhere to answer
      this.use(via);
    }
    dst.set(v.src);
    // solicited; override and our address only in answer to a group solicitation (ndisc_recv_ns:
    // ndisc_send_na(…, solicited, override = inc, inc_opt = inc))
    const flags = toGroup ? 0x60000000 : 0x40000000;
    const opt = toGroup ? 2 : 0;
    if (via < 0 || this.usable(via)) {
      const dmac =
        via < 0 ? buf.subarray(llOff, llOff + 6) : this.mac.subarray(via * 6, via * 6 + 6);
      this.#sendNdp(ifc, 136, target, dst, dmac, target, flags, opt);
    } else {
      const off = this.enqueue(via, ifc, 14 + 40 + (opt ? 32 : 24));
      if (off < 0) return true;
      this.#writeNdp(this.queueBuf, off, ifc, 136, target, dst, ZERO_MAC, target, flags, opt);
    }
    this.#counters.ndpAdverts++;
    return true;
  }

  /** Entries as text (for the trace tool and tests). */
  describe(): string[] {
    const out: string[] = [];
    for (let s = 0; s < this.capacity; s++) {
      if (this.#af[s] === 0) continue;
      const ifc = this.#net.ifaces[this.#if[s]!]!;
      const m = Array.from(this.mac.subarray(s * 6, s * 6 + 6), (x) =>
        x.toString(16).padStart(2, '0'),
      ).join(':');
      const a =
        this.#af[s] === AF_INET
          ? [24, 16, 8, 0].map((b) => (this.#key[s * 4]! >>> b) & 255).join('.')
          : Array.from(this.#key.subarray(s * 4, s * 4 + 4), (x) => x.toString(16)).join(':');
      out.push(`${a} dev ${ifc.name} lladdr ${m} ${NUD_NAMES[this.#state[s]!]}`);
    }
    return out;
  }
}

function get32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

/** True when `a` is the broadcast address of one of `ifc`'s IPv4 subnets (prefix below 31). */
function subnetBroadcast(ifc: Iface, a: number): boolean {
  for (const x of ifc.addrs) {
    if (x.af !== AF_INET || x.prefix >= 31) continue;
    const host = 0xffffffff >>> x.prefix;
    if ((a & host) >>> 0 === host && ((a ^ x.words[0]!) & ~host) === 0) return true;
  }
  return false;
}

function put128(o: Uint8Array, p: number, w: ArrayLike<number>): void {
  for (let i = 0; i < 4; i++) put32(o, p + 4 * i, w[i]!);
}

/** Writes an Ethernet/IPv4 ARP body (28 bytes) at `p` and the EtherType before it. */
function writeArp(
  o: Uint8Array,
  p: number,
  op: number,
  sha: Uint8Array,
  spa: number,
  thaBuf: Uint8Array,
  thaOff: number,
  tpa: number,
): void {
  o[p - 2] = ETH_P.ARP >>> 8;
  o[p - 1] = ETH_P.ARP & 255;
  o[p] = 0;
  o[p + 1] = 1;
  o[p + 2] = 0x08;
  o[p + 3] = 0x00;
  o[p + 4] = 6;
  o[p + 5] = 4;
  o[p + 6] = 0;
  o[p + 7] = op;
  o.set(sha.subarray(0, 6), p + 8);
  put32(o, p + 14, spa);
  for (let i = 0; i < 6; i++) o[p + 18 + i] = thaBuf[thaOff + i]!;
  put32(o, p + 24, tpa);
}
