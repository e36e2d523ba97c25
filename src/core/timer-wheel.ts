/**
 * One hashed timing wheel for every connection expiry (spec §1.3.4, §3.4). Entries are integer
 * handles whose expiry time and links live in the caller's typed arrays (the connection table's
 * records, so a packet touches one cache line for both), so arming allocates nothing. Re-arming to
 * a later time (the common case: every packet pushes the expiry forward) only stores the new time;
 * the entry is re-filed when its slot comes round and it is not yet due.
 */

/** Where a handle's expiry time and wheel links are stored. */
export interface WheelStorage {
  /** Expiry times, ms, at `h * expStride + expOff`. */
  readonly exp: Float64Array;
  readonly expStride: number;
  readonly expOff: number;
  /** Links at `h * linkStride + linkOff + {0: next, 1: prev, 2: slot}`. */
  readonly links: Int32Array;
  readonly linkStride: number;
  readonly linkOff: number;
}

/** Allocates standalone storage for `capacity` handles (tests and small users). */
export function wheelStorage(capacity: number): WheelStorage {
  const links = new Int32Array(capacity * 3);
  for (let i = 2; i < links.length; i += 3) links[i] = -1;
  return {
    exp: new Float64Array(capacity),
    expStride: 1,
    expOff: 0,
    links,
    linkStride: 3,
    linkOff: 0,
  };
}

/** Timer wheel over handles 0..capacity-1. */
export class TimerWheel {
  readonly #exp: Float64Array;
  readonly #es: number;
  readonly #eo: number;
  readonly #l: Int32Array;
  readonly #ls: number;
  readonly #lo: number;
  readonly #heads: Int32Array;
  readonly #mask: number;
  readonly #proc: number;
  readonly #tickMs: number;
  /** Last tick processed. */
  #tick: number;
  #armed = 0;
  readonly #onExpire: (h: number) => void;

  /**
   * @param store where expiry times and links live; every slot link must start at -1
   * @param onExpire called for each handle whose time has come (it may re-arm the handle)
   * @param now current time, ms
   * @param tickMs resolution, ms
   * @param slotsLog2 log2 of the number of slots
   */
  constructor(
    store: WheelStorage,
    onExpire: (h: number) => void,
    now: number,
    tickMs = 10,
    slotsLog2 = 16,
  ) {
    this.#exp = store.exp;
    this.#es = store.expStride;
    this.#eo = store.expOff;
    this.#l = store.links;
    this.#ls = store.linkStride;
    this.#lo = store.linkOff;
    // one extra list, PROC, holds the entries of the slot being visited
    this.#heads = new Int32Array((1 << slotsLog2) + 1).fill(-1);
    this.#mask = (1 << slotsLog2) - 1;
    this.#proc = 1 << slotsLog2;
    this.#tickMs = tickMs;
    this.#tick = Math.floor(now / tickMs);
    this.#onExpire = onExpire;
  }

  /** Number of armed handles. */
  get armed(): number {
    return this.#armed;
  }

  /** Expiry time of `h`, ms. */
  expires(h: number): number {
    return this.#exp[h * this.#es + this.#eo]!;
  }

  /** True when `h` is armed. */
  isArmed(h: number): boolean {
    return this.#l[h * this.#ls + this.#lo + 2]! >= 0;
  }

  #tickOf(t: number): number {
    const k = Math.ceil(t / this.#tickMs);
    return k > this.#tick ? k : this.#tick + 1;
  }

  #linkSlot(h: number, s: number): void {
    const l = this.#l;
    const b = h * this.#ls + this.#lo;
    const head = this.#heads[s]!;
    l[b] = head;
    l[b + 1] = -1;
    if (head >= 0) l[head * this.#ls + this.#lo + 1] = h;
    this.#heads[s] = h;
    l[b + 2] = s;
  }

  #unlink(h: number): void {
    const l = this.#l;
    const b = h * this.#ls + this.#lo;
    const n = l[b]!;
    const p = l[b + 1]!;
    if (p >= 0) l[p * this.#ls + this.#lo] = n;
    else this.#heads[l[b + 2]!] = n;
    if (n >= 0) l[n * this.#ls + this.#lo + 1] = p;
    l[b + 2] = -1;
  }

  /** Arms (or re-arms) `h` to fire at time `at` (ms). */
  arm(h: number, at: number): void {
    const s = this.#l[h * this.#ls + this.#lo + 2]!;
    this.#exp[h * this.#es + this.#eo] = at;
    if (s >= 0) {
      if (s !== this.#proc) {
        // lazy: when the slot's next visit is not after `at`, the entry is re-filed then
        const t = this.#tick + 1;
        if ((t + ((s - t) & this.#mask)) * this.#tickMs <= at) return;
      }
      this.#unlink(h);
    } else this.#armed++;
    this.#linkSlot(h, this.#tickOf(at) & this.#mask);
  }

  /** Disarms `h` (no-op when not armed). */
  cancel(h: number): void {
    if (this.#l[h * this.#ls + this.#lo + 2]! < 0) return;
    this.#unlink(h);
    this.#armed--;
  }

  /** Fires every handle due at or before `now`. */
  advance(now: number): void {
    const target = Math.floor(now / this.#tickMs);
    if (target <= this.#tick) return;
    const l = this.#l;
    // beyond one revolution every slot is visited once; entries check their own time
    const span = Math.min(target - this.#tick, this.#mask + 1);
    for (let t = target - span + 1; t <= target; t++) {
      this.#tick = t;
      const s = t & this.#mask;
      let h = this.#heads[s]!;
      if (h < 0) continue;
      // move the slot's entries to PROC; expiry callbacks may cancel or re-arm any of them
      this.#heads[s] = -1;
      this.#heads[this.#proc] = h;
      for (let x = h; x >= 0; x = l[x * this.#ls + this.#lo]!)
        l[x * this.#ls + this.#lo + 2] = this.#proc;
      while ((h = this.#heads[this.#proc]!) >= 0) {
        this.#unlink(h);
        const at = this.#exp[h * this.#es + this.#eo]!;
        if (at <= now) {
          this.#armed--;
          this.#onExpire(h);
        } else this.#linkSlot(h, this.#tickOf(at) & this.#mask);
      }
    }
    this.#tick = target;
  }
}
