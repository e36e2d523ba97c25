/**
 * One hashed timing wheel for every connection expiry (spec §1.3.4, §3.4). Entries are integer
 * handles linked intrusively through typed arrays, so arming a timer allocates nothing. Re-arming
 * to a later time (the common case: every packet pushes the expiry forward) only stores the new
 * time; the entry is moved when its slot comes round and it is not yet due.
 */

/** Timer wheel over handles 0..capacity-1. */
export class TimerWheel {
  /** Expiry time per handle, ms. */
  readonly expires: Float64Array;
  readonly #next: Int32Array;
  readonly #prev: Int32Array;
  /** Slot a handle is linked in, or -1 when not armed. */
  readonly #slotOf: Int32Array;
  readonly #heads: Int32Array;
  readonly #mask: number;
  readonly #proc: number;
  readonly #tickMs: number;
  /** Last tick processed. */
  #tick: number;
  #armed = 0;
  readonly #onExpire: (h: number) => void;

  /**
   * @param capacity number of handles
   * @param onExpire called for each handle whose time has come (it may re-arm the handle)
   * @param now current time, ms
   * @param tickMs resolution, ms
   * @param slotsLog2 log2 of the number of slots
   */
  constructor(capacity: number, onExpire: (h: number) => void, now: number, tickMs = 10, slotsLog2 = 16) {
    this.expires = new Float64Array(capacity);
    this.#next = new Int32Array(capacity);
    this.#prev = new Int32Array(capacity);
    this.#slotOf = new Int32Array(capacity).fill(-1);
    // one extra list, PROC, holds the entries of the slot being visited
    this.#heads = new Int32Array((1 << slotsLog2) + 1).fill(-1);
    this.#proc = 1 << slotsLog2;
    this.#mask = (1 << slotsLog2) - 1;
    this.#tickMs = tickMs;
    this.#tick = Math.floor(now / tickMs);
    this.#onExpire = onExpire;
  }

  /** Number of armed handles. */
  get armed(): number {
    return this.#armed;
  }

  /** True when `h` is armed. */
  isArmed(h: number): boolean {
    return this.#slotOf[h]! >= 0;
  }

  #tickOf(t: number): number {
    const k = Math.ceil(t / this.#tickMs);
    return k > this.#tick ? k : this.#tick + 1;
  }

  #link(h: number, tick: number): void {
    this.#linkSlot(h, tick & this.#mask);
  }

  #linkSlot(h: number, s: number): void {
    const head = this.#heads[s]!;
    this.#next[h] = head;
    this.#prev[h] = -1;
    if (head >= 0) this.#prev[head] = h;
    this.#heads[s] = h;
    this.#slotOf[h] = s;
  }

  #unlink(h: number): void {
    const s = this.#slotOf[h]!;
    const n = this.#next[h]!;
    const p = this.#prev[h]!;
    if (p >= 0) this.#next[p] = n;
    else this.#heads[s] = n;
    if (n >= 0) this.#prev[n] = p;
    this.#slotOf[h] = -1;
  }

  /** The next tick at which slot `s` is visited. */
  #nextVisit(s: number): number {
    const t = this.#tick + 1;
    return t + ((s - t) & this.#mask);
  }

  /** Arms (or re-arms) `h` to fire at time `at` (ms). */
  arm(h: number, at: number): void {
    const s = this.#slotOf[h]!;
    this.expires[h] = at;
    if (s >= 0) {
      if (s === this.#proc) {
        this.#unlink(h);
        this.#link(h, this.#tickOf(at));
        return;
      }
      // lazy: the slot will be visited before `at`; it is re-filed then
      if (this.#nextVisit(s) * this.#tickMs <= at) return;
      this.#unlink(h);
    } else this.#armed++;
    this.#link(h, this.#tickOf(at));
  }

  /** Disarms `h` (no-op when not armed). */
  cancel(h: number): void {
    if (this.#slotOf[h]! < 0) return;
    this.#unlink(h);
    this.#armed--;
  }

  /** Fires every handle due at or before `now`. */
  advance(now: number): void {
    const target = Math.floor(now / this.#tickMs);
    if (target <= this.#tick) return;
    // beyond one revolution every slot is visited once; entries check their own time
    const span = Math.min(target - this.#tick, this.#mask + 1);
    const first = target - span + 1;
    for (let t = first; t <= target; t++) {
      this.#tick = t;
      const s = t & this.#mask;
      let h = this.#heads[s]!;
      if (h < 0) continue;
      // move the slot's entries to PROC; expiry callbacks may cancel or re-arm any of them
      this.#heads[s] = -1;
      this.#heads[this.#proc] = h;
      for (let x = h; x >= 0; x = this.#next[x]!) this.#slotOf[x] = this.#proc;
      while ((h = this.#heads[this.#proc]!) >= 0) {
        this.#unlink(h);
        const at = this.expires[h]!;
        if (at <= now) {
          this.#armed--;
          this.#onExpire(h);
        } else {
          this.#link(h, this.#tickOf(at));
        }
      }
    }
    this.#tick = target;
  }
}
