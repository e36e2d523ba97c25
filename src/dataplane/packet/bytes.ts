/**
 * Copying bytes between buffers without allocating: `TypedArray.set` needs a view of the source
 * (`subarray` creates an object per call), so short copies — every header and every small frame —
 * use a plain loop. Copies longer than `LOOP_MAX` use one view, whose cost is small next to the
 * copy itself.
 */

/** Longest copy done with a loop. */
export const LOOP_MAX = 512;

/** Copies `src[sOff, sOff+len)` to `dst[dOff]` (different buffers, or non-overlapping ranges). */
export function copyBytes(
  dst: Uint8Array,
  dOff: number,
  src: Uint8Array,
  sOff: number,
  len: number,
): void {
  if (len > LOOP_MAX) {
    dst.set(src.subarray(sOff, sOff + len), dOff);
    return;
  }
  for (let i = 0; i < len; i++) dst[dOff + i] = src[sOff + i]!;
}

/** Copies four address words from `src[o]` into `out`. */
export function words4(src: ArrayLike<number>, o: number, out: Uint32Array): Uint32Array {
  out[0] = src[o]!;
  out[1] = src[o + 1]!;
  out[2] = src[o + 2]!;
  out[3] = src[o + 3]!;
  return out;
}

/** Writes `v` at `b[p]` as a big-endian 32-bit word (network byte order). */
export function put32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

/**
 * True for a loopback address: IPv4 127.0.0.0/8 (the whole block is local to every host) or IPv6
 * ::1 (`ipv4_is_loopback` / `IPV6_ADDR_LOOPBACK`). `w[o…]` holds host-order words.
 */
export function isLoopback(af: number, w: ArrayLike<number>, o = 0): boolean {
  if (af !== 10) return w[o]! >>> 24 === 127;
  return w[o] === 0 && w[o + 1] === 0 && w[o + 2] === 0 && w[o + 3] === 1;
}
