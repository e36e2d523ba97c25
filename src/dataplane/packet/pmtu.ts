/**
 * Path MTUs the director learned from "fragmentation needed" errors about its own tunnel packets
 * (spec §4.5): route exceptions by destination address, as ipv4_update_pmtu →
 * __ip_rt_update_pmtu makes them. A path MTU only ever goes down; one reported below the minimum
 * (ip_rt_min_pmtu, 552) is taken as 552 (or the old MTU when that is lower) and locked against
 * further reports; each lasts ip_rt_mtu_expires (10 minutes), and a report of the same MTU
 * renews it only in its second half. Every transmitter toward that address uses it (dst_mtu of
 * the route), whatever the method. The net model's `gen` is bumped when one appears or goes, so
 * the fast path's cached hops are taken again.
 */
import { AF_INET6 } from '../../core/addr.js';
import type { NetModel } from './net.js';

/** ip_rt_min_pmtu: the lowest path MTU recorded (512 + 20 + 20). */
export const MIN_PMTU = 552;
/** ip_rt_mtu_expires: how long a learned path MTU lasts, ms. */
export const PMTU_EXPIRES_MS = 600_000;

interface Entry {
  mtu: number;
  expires: number;
  locked: boolean;
}

/** The learned path MTUs of one engine. */
export class PathMtu {
  readonly #m = new Map<number | string, Entry>();
  readonly #net: NetModel;

  constructor(net: NetModel) {
    this.#net = net;
  }

  /** Entries held (expired ones included until a lookup meets them). */
  get size(): number {
    return this.#m.size;
  }

  /** The path MTU toward `w[off…]` (family `af`) at `now`, or 0 when none is recorded. */
  get(af: number, w: ArrayLike<number>, off: number, now: number): number {
    if (this.#m.size === 0) return 0;
    const k = key(af, w, off);
    const e = this.#m.get(k);
    if (!e) return 0;
    if (now >= e.expires) {
      this.#m.delete(k);
      this.#net.gen++;
      return 0;
    }
    return e.mtu;
  }

  /**
   * Takes a reported MTU for the path toward `w[off…]`, whose route's MTU is `routeMtu`
   * (__ip_rt_update_pmtu). Returns the path MTU in force afterwards.
   */
  update(
    af: number,
    w: ArrayLike<number>,
    off: number,
    mtu: number,
    routeMtu: number,
    now: number,
  ): number {
    const cur = this.get(af, w, off, now);
    const k = key(af, w, off);
    const e = cur > 0 ? this.#m.get(k)! : null;
    const old = cur > 0 ? cur : routeMtu;
    if (e?.locked || old < mtu) return old;
    let locked = false;
    if (mtu < MIN_PMTU) {
      locked = true;
      mtu = Math.min(old, MIN_PMTU);
    }
    if (e && e.mtu === mtu && !locked && now < e.expires - PMTU_EXPIRES_MS / 2) return mtu;
    this.#m.set(k, { mtu, expires: now + PMTU_EXPIRES_MS, locked });
    this.#net.gen++;
    return mtu;
  }

  /** Forgets every learned path MTU. */
  clear(): void {
    if (this.#m.size === 0) return;
    this.#m.clear();
    this.#net.gen++;
  }
}

function key(af: number, w: ArrayLike<number>, off: number): number | string {
  if (af !== AF_INET6) return w[off]! >>> 0;
  return `${w[off]! >>> 0}:${w[off + 1]! >>> 0}:${w[off + 2]! >>> 0}:${w[off + 3]! >>> 0}`;
}
