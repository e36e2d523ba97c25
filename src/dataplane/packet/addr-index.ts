/**
 * An index from addresses (one word for IPv4, four for IPv6) to small integers, for the
 * director's local addresses and VIPs: open addressing with linear probing in typed arrays
 * (removal by backward shift, so no tombstones), grown at half full. A lookup is a hash and, nearly
 * always, one compare: a director with thousands of VIPs (one per service, as a large cluster's
 * load balancer has) decides per packet whether the destination is its own in constant time.
 */
const EMPTY = -1;

export class AddrIndex {
  readonly #words: number;
  #keys: Uint32Array;
  #vals: Int32Array;
  #mask: number;
  #size = 0;

  /** `words`: 1 (IPv4) or 4 (IPv6). */
  constructor(words: 1 | 4, capacity = 16) {
    this.#words = words;
    let n = 16;
    while (n < 2 * capacity) n <<= 1;
    this.#keys = new Uint32Array(n * words);
    this.#vals = new Int32Array(n).fill(EMPTY);
    this.#mask = n - 1;
  }

  get size(): number {
    return this.#size;
  }

  #hash(w: ArrayLike<number>, o: number): number {
    let x = w[o]! >>> 0;
    if (this.#words === 4) {
      x = Math.imul(x ^ (w[o + 1]! >>> 0), 0x9e3779b1) ^ (w[o + 2]! >>> 0);
      x = Math.imul(x, 0x85ebca6b) ^ (w[o + 3]! >>> 0);
    }
    x = Math.imul(x ^ (x >>> 16), 0x2c1b3c6d);
    x = Math.imul(x ^ (x >>> 15), 0x297a2d39);
    return (x ^ (x >>> 16)) & this.#mask;
  }

  #eq(s: number, w: ArrayLike<number>, o: number): boolean {
    const k = this.#keys;
    if (this.#words === 1) return k[s] === w[o]! >>> 0;
    const b = s * 4;
    return (
      k[b] === w[o]! >>> 0 &&
      k[b + 1] === w[o + 1]! >>> 0 &&
      k[b + 2] === w[o + 2]! >>> 0 &&
      k[b + 3] === w[o + 3]! >>> 0
    );
  }

  /** The value stored for the address at `w[o…]`, or -1. */
  get(w: ArrayLike<number>, o = 0): number {
    const v = this.#vals;
    const m = this.#mask;
    for (let s = this.#hash(w, o); ; s = (s + 1) & m) {
      const x = v[s]!;
      if (x === EMPTY) return EMPTY;
      if (this.#eq(s, w, o)) return x;
    }
  }

  /** Stores `val` (≥ 0) for the address at `w[o…]` (replacing a value stored before). */
  set(w: ArrayLike<number>, o: number, val: number): void {
    if (2 * (this.#size + 1) > this.#vals.length) this.#grow();
    const v = this.#vals;
    const m = this.#mask;
    let s = this.#hash(w, o);
    for (; v[s] !== EMPTY; s = (s + 1) & m) {
      if (this.#eq(s, w, o)) {
        v[s] = val;
        return;
      }
    }
    v[s] = val;
    const n = this.#words;
    for (let i = 0; i < n; i++) this.#keys[s * n + i] = w[o + i]! >>> 0;
    this.#size++;
  }

  /** Removes the address at `w[o…]` (nothing when absent). */
  delete(w: ArrayLike<number>, o = 0): void {
    const v = this.#vals;
    const k = this.#keys;
    const m = this.#mask;
    const n = this.#words;
    let s = this.#hash(w, o);
    for (; ; s = (s + 1) & m) {
      if (v[s] === EMPTY) return;
      if (this.#eq(s, w, o)) break;
    }
    // backward shift: move later entries of the probe run into the hole when their home allows
    for (let j = (s + 1) & m; v[j] !== EMPTY; j = (j + 1) & m) {
      const home = this.#hash(k, j * n);
      // j's entry may fill hole s unless its home lies cyclically in (s, j]
      if (((j - home) & m) >= ((j - s) & m)) {
        v[s] = v[j]!;
        for (let i = 0; i < n; i++) k[s * n + i] = k[j * n + i]!;
        s = j;
      }
    }
    v[s] = EMPTY;
    this.#size--;
  }

  #grow(): void {
    const oldK = this.#keys;
    const oldV = this.#vals;
    const n = this.#words;
    const cap = oldV.length * 2;
    this.#keys = new Uint32Array(cap * n);
    this.#vals = new Int32Array(cap).fill(EMPTY);
    this.#mask = cap - 1;
    this.#size = 0;
    for (let s = 0; s < oldV.length; s++) if (oldV[s] !== EMPTY) this.set(oldK, s * n, oldV[s]!);
  }
}
