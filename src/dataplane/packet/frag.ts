/**
 * IPv6 fragments without reassembly (IPv4 is reassembled first: ./reasm.ts). The first fragment
 * (which carries the ports) is scheduled and handled like any packet, and the engine remembers
 * (source, destination, protocol, identification) → the connection, so the later fragments
 * follow it (spec §5.1: "only first fragments are scheduled, later fragments follow existing
 * connections"). A NAT rewrite of the first fragment updates the transport checksum
 * incrementally, which stays valid for the whole datagram; later fragments only get their
 * addresses rewritten. Entries live `FRAG_TTL_MS` (the kernel's ipfrag_time).
 *
 * Also here: the IPv4 fragmenter used on output when a packet without DF exceeds the MTU, and
 * for reassembled datagrams.
 */
import { AF_INET6 } from '../../core/addr.js';
import { ipv4HeaderChecksum } from '../../packet/checksum.js';
import type { PacketView } from '../../packet/view.js';
import { copyBytes, put32 } from './bytes.js';
import { blankUncopiedOptions } from './ipopt.js';

/** Lifetime of a fragment-table entry (ipfrag_time, 30 s). */
export const FRAG_TTL_MS = 30_000;

/** (src, dst, protocol, id, direction) → connection handle. */
export class FragTable {
  readonly #mask: number;
  readonly #key: Uint32Array; // src(4) dst(4) id proto|dir<<8|af<<16
  readonly #h: Int32Array;
  readonly #exp: Float64Array;

  constructor(size = 1024) {
    let n = 1;
    while (n < size) n <<= 1;
    this.#mask = n - 1;
    this.#key = new Uint32Array(n * 10);
    this.#h = new Int32Array(n).fill(-1);
    this.#exp = new Float64Array(n);
  }

  #slot(v: PacketView, dir: number): number {
    let x =
      Math.imul(v.src[0]! ^ v.ipId, 0x9e3779b1) ^
      Math.imul(v.dst[0]! ^ (v.protocol << 8) ^ dir, 0x85ebca6b);
    if (v.af === AF_INET6) x ^= Math.imul(v.src[3]! ^ v.dst[3]!, 0xc2b2ae35);
    x ^= x >>> 15;
    return x & this.#mask;
  }

  #matches(i: number, v: PacketView, dir: number): boolean {
    const k = this.#key;
    const b = i * 10;
    for (let j = 0; j < 4; j++)
      if (k[b + j] !== v.src[j] || k[b + 4 + j] !== v.dst[j]) return false;
    return k[b + 8] === v.ipId && k[b + 9] === (v.protocol | (dir << 8) | (v.af << 16)) >>> 0;
  }

  /** Remembers that the datagram of first fragment `v` (direction `dir`) belongs to `h`. */
  record(v: PacketView, dir: number, h: number, now: number): void {
    const i = this.#slot(v, dir);
    const k = this.#key;
    const b = i * 10;
    for (let j = 0; j < 4; j++) {
      k[b + j] = v.src[j]!;
      k[b + 4 + j] = v.dst[j]!;
    }
    k[b + 8] = v.ipId;
    k[b + 9] = (v.protocol | (dir << 8) | (v.af << 16)) >>> 0;
    this.#h[i] = h;
    this.#exp[i] = now + FRAG_TTL_MS;
  }

  /** The connection a later fragment belongs to, or -1. */
  lookup(v: PacketView, dir: number, now: number): number {
    const i = this.#slot(v, dir);
    if (this.#h[i]! < 0 || this.#exp[i]! < now || !this.#matches(i, v, dir)) return -1;
    return this.#h[i]!;
  }

  /** Forgets every entry of `h` (its connection was freed). */
  forget(h: number): void {
    const hs = this.#h;
    for (let i = 0; i < hs.length; i++) if (hs[i] === h) hs[i] = -1;
  }
}

/**
 * Splits the IPv4 packet `src[off, off+len)` into fragments of at most `mtu` bytes, calling
 * `emit(fragLen)` → an offset in `out()` to write each into (Ethernet header space included:
 * fragments are written at offset + `l2`). With `geometry` ([start, end) pairs of data offsets
 * covering the packet's data, as reassembly recorded them) the fragments are those instead.
 * Returns the number of fragments, or -1 when the packet cannot be split (DF is the caller's
 * business; an MTU too small for 8 data bytes).
 */
export function fragment4(
  src: Uint8Array,
  off: number,
  len: number,
  mtu: number,
  l2: number,
  emit: (fragLen: number) => number,
  out: () => Uint8Array,
  geometry: readonly number[] | null = null,
): number {
  const ihl = (src[off]! & 15) << 2;
  const chunk = (mtu - ihl) & ~7;
  if (chunk < 8 && geometry === null) return -1;
  const fo = ((src[off + 6]! & 0x1f) << 8) | src[off + 7]!;
  const baseOff = fo << 3;
  const lastMf = (src[off + 6]! & 0x20) !== 0;
  let n = 0;
  for (let p = ihl; p < len;) {
    const data =
      geometry !== null ? geometry[2 * n + 1]! - geometry[2 * n]! : Math.min(chunk, len - p);
    const fl = ihl + data;
    const o = emit(fl);
    if (o < 0) return -1;
    const b = out();
    const q = o + l2;
    copyBytes(b, q, src, off, ihl);
    copyBytes(b, q + ihl, src, off + p, data);
    // ip_options_fragment: after the first, options without the copied bit are no-operations
    if (n > 0 && ihl > 20) blankUncopiedOptions(b, q + 20, q + ihl);
    const more = p + data < len || lastMf;
    const foff = (baseOff + p - ihl) >>> 3;
    b[q + 2] = fl >>> 8;
    b[q + 3] = fl;
    b[q + 6] = (src[off + 6]! & 0x40) | (more ? 0x20 : 0) | ((foff >>> 8) & 0x1f);
    b[q + 7] = foff;
    b[q + 10] = 0;
    b[q + 11] = 0;
    const c = ipv4HeaderChecksum(b, q, ihl);
    b[q + 10] = c >>> 8;
    b[q + 11] = c;
    n++;
    p += data;
  }
  return n;
}

/**
 * Splits the IPv6 packet `src[off, off+len)` into fragments of at most `mtu` bytes (ip6_fragment):
 * each repeats the first `unfrag` bytes (the header and the extension headers before the
 * fragment header), then a fragment header with identification `id`, then its part of the rest.
 * `emit`, `out`, `l2` and `geometry` as for `fragment4`. Returns the number of fragments, or -1.
 */
export function fragment6(
  src: Uint8Array,
  off: number,
  len: number,
  unfrag: number,
  mtu: number,
  id: number,
  l2: number,
  emit: (fragLen: number) => number,
  out: () => Uint8Array,
  geometry: readonly number[] | null = null,
): number {
  // the next-header field of the last unfragmentable header names the fragment header
  const nhAt = nextHeaderAt(src, off, unfrag);
  const next = src[off + nhAt]!;
  const chunk = (mtu - unfrag - 8) & ~7;
  if (chunk < 8 && geometry === null) return -1;
  let n = 0;
  for (let at = unfrag; at < len;) {
    const data =
      geometry !== null ? geometry[2 * n + 1]! - geometry[2 * n]! : Math.min(chunk, len - at);
    const fl = unfrag + 8 + data;
    const o = emit(fl);
    if (o < 0) return -1;
    const b = out();
    const q = o + l2;
    copyBytes(b, q, src, off, unfrag);
    b[q + nhAt] = 44;
    b[q + 4] = (fl - 40) >>> 8;
    b[q + 5] = fl - 40;
    const fh = q + unfrag;
    const fo = (at - unfrag) | (at + data < len ? 1 : 0);
    b[fh] = next;
    b[fh + 1] = 0;
    b[fh + 2] = fo >>> 8;
    b[fh + 3] = fo;
    put32(b, fh + 4, id);
    copyBytes(b, fh + 8, src, off + at, data);
    n++;
    at += data;
  }
  return n;
}

/**
 * Offset, from the IPv6 header at `l3`, of the next-header field that names what follows the
 * first `len` bytes (the fixed header's own when `len` is 40, else the last extension header's).
 */
export function nextHeaderAt(buf: Uint8Array, l3: number, len: number): number {
  let at = 6;
  for (let p = 40; p < len; p += (buf[l3 + p + 1]! + 1) << 3) at = p;
  return at;
}
