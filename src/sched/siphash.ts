/**
 * SipHash with 64-bit lanes held as pairs of unsigned 32-bit halves (no BigInt on the hot path),
 * for the Maglev scheduler (spec §2.13). 64-bit kernels compute `hsiphash()` as SipHash-1-3 with
 * 64-bit key words and return the low 32 bits of `v0^v1^v2^v3`; `hsipHash32` reproduces that for
 * one 32-bit input. The round count is a parameter of `sipHash64` so the published SipHash-2-4
 * reference vectors (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012) check the
 * round function itself.
 *
 * The lanes live in a module-level scratch array: it is working memory of one synchronous call,
 * never state kept between calls.
 */

/** v0..v3 as [hi, lo] pairs: v0h v0l v1h v1l v2h v2l v3h v3l. */
const S = new Uint32Array(8);

/** A 128-bit SipHash key: two 64-bit little-endian words, each split into hi/lo halves. */
export class SipKey {
  constructor(
    readonly k0h: number,
    readonly k0l: number,
    readonly k1h: number,
    readonly k1l: number,
  ) {}

  /** The key whose two 64-bit words are the unsigned 32-bit integers `k0` and `k1`. */
  static fromU32(k0: number, k1: number): SipKey {
    return new SipKey(0, k0 >>> 0, 0, k1 >>> 0);
  }

  /** The key made of 16 bytes, read as two little-endian 64-bit words. */
  static fromBytes(b: ArrayLike<number>): SipKey {
    const w = (o: number): number =>
      (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
    return new SipKey(w(4), w(0), w(12), w(8));
  }
}

/** Loads the initial state: the "somepseudorandomlygeneratedbytes" constants xor the key. */
function init(k: SipKey): void {
  S[0] = 0x736f6d65 ^ k.k0h;
  S[1] = 0x70736575 ^ k.k0l;
  S[2] = 0x646f7261 ^ k.k1h;
  S[3] = 0x6e646f6d ^ k.k1l;
  S[4] = 0x6c796765 ^ k.k0h;
  S[5] = 0x6e657261 ^ k.k0l;
  S[6] = 0x74656462 ^ k.k1h;
  S[7] = 0x79746573 ^ k.k1l;
}

/** Runs `n` SipRounds on the scratch state. */
function rounds(n: number): void {
  let v0h = S[0]!,
    v0l = S[1]!,
    v1h = S[2]!,
    v1l = S[3]!,
    v2h = S[4]!,
    v2l = S[5]!,
    v3h = S[6]!,
    v3l = S[7]!;
  let lo = 0,
    t = 0;
  for (let r = 0; r < n; r++) {
    // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
    lo = v0l + v1l;
    v0h = (v0h + v1h + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    v0l = lo >>> 0;
    t = (v1h << 13) | (v1l >>> 19);
    v1l = (((v1l << 13) | (v1h >>> 19)) ^ v0l) >>> 0;
    v1h = (t ^ v0h) >>> 0;
    t = v0h;
    v0h = v0l;
    v0l = t;
    // v2 += v3; v3 <<<= 16; v3 ^= v2
    lo = v2l + v3l;
    v2h = (v2h + v3h + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    v2l = lo >>> 0;
    t = (v3h << 16) | (v3l >>> 16);
    v3l = (((v3l << 16) | (v3h >>> 16)) ^ v2l) >>> 0;
    v3h = (t ^ v2h) >>> 0;
    // v0 += v3; v3 <<<= 21; v3 ^= v0
    lo = v0l + v3l;
    v0h = (v0h + v3h + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    v0l = lo >>> 0;
    t = (v3h << 21) | (v3l >>> 11);
    v3l = (((v3l << 21) | (v3h >>> 11)) ^ v0l) >>> 0;
    v3h = (t ^ v0h) >>> 0;
    // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
    lo = v2l + v1l;
    v2h = (v2h + v1h + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    v2l = lo >>> 0;
    t = (v1h << 17) | (v1l >>> 15);
    v1l = (((v1l << 17) | (v1h >>> 15)) ^ v2l) >>> 0;
    v1h = (t ^ v2h) >>> 0;
    t = v2h;
    v2h = v2l;
    v2l = t;
  }
  S[0] = v0h;
  S[1] = v0l;
  S[2] = v1h;
  S[3] = v1l;
  S[4] = v2h;
  S[5] = v2l;
  S[6] = v3h;
  S[7] = v3l;
}

/** Absorbs one 64-bit message block (hi, lo) with `c` compression rounds. */
function absorb(mh: number, ml: number, c: number): void {
  S[6]! ^= mh;
  S[7]! ^= ml;
  rounds(c);
  S[0]! ^= mh;
  S[1]! ^= ml;
}

/** Absorbs the final block and runs `d` finalisation rounds. */
function finish(bh: number, bl: number, c: number, d: number): void {
  absorb(bh, bl, c);
  S[5]! ^= 0xff;
  rounds(d);
}

/**
 * SipHash-c-d of a byte string, as a 64-bit unsigned BigInt (for tests and reference checks; the
 * scheduler uses `hsipHash32`).
 */
export function sipHash64(key: SipKey, msg: ArrayLike<number>, c = 2, d = 4): bigint {
  init(key);
  const len = msg.length;
  const full = len - (len % 8);
  const le32 = (o: number, n: number): number => {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + msg[o + i]!;
    return v >>> 0;
  };
  for (let o = 0; o < full; o += 8) absorb(le32(o + 4, 4), le32(o, 4), c);
  const left = len - full;
  const bl = le32(full, Math.min(left, 4));
  const bh = ((len & 0xff) << 24) | (left > 4 ? le32(full + 4, left - 4) : 0);
  finish(bh >>> 0, bl, c, d);
  const hi = (S[0]! ^ S[2]! ^ S[4]! ^ S[6]!) >>> 0;
  const lo = (S[1]! ^ S[3]! ^ S[5]! ^ S[7]!) >>> 0;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * The kernel's `hsiphash(&v, 4, key)` on a 64-bit machine: SipHash-1-3 of the 32-bit value `v`
 * taken as 4 little-endian bytes (so the single, final block is `4 << 56 | v`), returning the low
 * 32 bits of `v0^v1^v2^v3`. Allocates nothing.
 */
export function hsipHash32(key: SipKey, v: number): number {
  init(key);
  finish(0x04000000, v >>> 0, 1, 3);
  return (S[1]! ^ S[3]! ^ S[5]! ^ S[7]!) >>> 0;
}
