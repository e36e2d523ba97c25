/**
 * Internet checksums (RFC 1071) over Buffers, with the IPv4/IPv6 pseudo-headers of RFC 9293 §3.1,
 * RFC 768 and RFC 8200 §8.1, and incremental updates by RFC 1624 equation 3
 * (HC' = ~(~HC + ~m + m')), the way IPVS's `tcp_fast_csum_update` and katran's `csum_helpers.h`
 * patch a header when only addresses or ports change.
 *
 * Sums are kept as plain integers (exact up to 2^53, i.e. any frame) and folded at the end.
 * Every full-checksum function here computes the value that belongs in the checksum field,
 * ignoring whatever the field holds now; the `...Ok` functions verify a received header.
 */
import { IPPROTO } from './constants.js';

/** Adds the big-endian 16-bit words of `buf[off, off+len)` to `sum` (odd tail padded with 0). */
export function csumPartial(buf: Uint8Array, off: number, len: number, sum = 0): number {
  const end = off + len;
  let i = off;
  let s = sum;
  // 4 words at a time keeps the loop short; the accumulator is exact (a double holds 2^53).
  for (; i + 8 <= end; i += 8) {
    s +=
      ((buf[i]! << 8) | buf[i + 1]!) +
      ((buf[i + 2]! << 8) | buf[i + 3]!) +
      ((buf[i + 4]! << 8) | buf[i + 5]!) +
      ((buf[i + 6]! << 8) | buf[i + 7]!);
  }
  for (; i + 2 <= end; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) s += buf[i]! << 8;
  return s;
}

/** Folds a sum to 16 bits with end-around carry (the one's-complement sum). */
export function csumFold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum for a sum: the one's complement of the folded sum. */
export function csumFinish(sum: number): number {
  return ~csumFold(sum) & 0xffff;
}

/** Sum of the IPv4 (`af` 2) or IPv6 (`af` 10) pseudo-header; addresses are host-order words. */
export function pseudoHeaderSum(
  af: number,
  src: ArrayLike<number>,
  dst: ArrayLike<number>,
  proto: number,
  len: number,
): number {
  let s = proto + (len >>> 16) + (len & 0xffff);
  const n = af === 10 ? 4 : 1;
  for (let i = 0; i < n; i++) {
    const a = src[i]!;
    const b = dst[i]!;
    s += (a >>> 16) + (a & 0xffff) + (b >>> 16) + (b & 0xffff);
  }
  return s;
}

/** The IPv4 header checksum of the `hdrLen`-byte header at `off` (its checksum field ignored). */
export function ipv4HeaderChecksum(buf: Uint8Array, off: number, hdrLen = 20): number {
  const s = csumPartial(buf, off, hdrLen) - ((buf[off + 10]! << 8) | buf[off + 11]!);
  return csumFinish(s);
}

/** True when the IPv4 header at `off` carries a correct checksum. */
export function ipv4HeaderChecksumOk(buf: Uint8Array, off: number, hdrLen = 20): boolean {
  // at most 30 words of 16 bits: the sum fits an int32, two folds finish it (the fast path
  // checks every IPv4 frame: no doubles, no division)
  let s = 0;
  for (let i = off, end = off + (hdrLen & ~1); i < end; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s === 0xffff;
}

/** Offset of the checksum field inside an L4 header of protocol `proto`, or -1 when it has none. */
export function l4ChecksumFieldOffset(proto: number): number {
  switch (proto) {
    case IPPROTO.TCP:
      return 16;
    case IPPROTO.UDP:
      return 6;
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6:
      return 2;
    default:
      return -1;
  }
}

/**
 * The checksum of the TCP, UDP or ICMPv6 segment `buf[off, off+len)` with the pseudo-header of `af`
 * (its checksum field ignored). For UDP a computed 0 is sent as 0xFFFF (RFC 768). For `proto` 1
 * (ICMP over IPv4) no pseudo-header is used, as RFC 792 says.
 */
export function l4Checksum(
  af: number,
  src: ArrayLike<number>,
  dst: ArrayLike<number>,
  proto: number,
  buf: Uint8Array,
  off: number,
  len: number,
): number {
  const f = off + l4ChecksumFieldOffset(proto);
  let s = csumPartial(buf, off, len);
  if (f >= off && f + 1 < off + len) s -= (buf[f]! << 8) | buf[f + 1]!;
  if (proto !== IPPROTO.ICMP) s += pseudoHeaderSum(af, src, dst, proto, len);
  const c = csumFinish(s);
  return c === 0 && proto === IPPROTO.UDP ? 0xffff : c;
}

/**
 * True when the segment's checksum verifies. A UDP-over-IPv4 checksum of 0 means "not computed"
 * and is accepted (RFC 768); over IPv6 it is invalid (RFC 8200 §8.1).
 */
export function l4ChecksumOk(
  af: number,
  src: ArrayLike<number>,
  dst: ArrayLike<number>,
  proto: number,
  buf: Uint8Array,
  off: number,
  len: number,
): boolean {
  if (proto === IPPROTO.UDP && af !== 10 && buf[off + 6] === 0 && buf[off + 7] === 0) return true;
  let s = csumPartial(buf, off, len);
  if (proto !== IPPROTO.ICMP) s += pseudoHeaderSum(af, src, dst, proto, len);
  return csumFold(s) === 0xffff;
}

/** The ICMP (IPv4) checksum of the message at `buf[off, off+len)`, its checksum field ignored. */
export function icmpChecksum(buf: Uint8Array, off: number, len: number): number {
  return csumFinish(csumPartial(buf, off, len) - ((buf[off + 2]! << 8) | buf[off + 3]!));
}

/** RFC 1624 eqn 3 for a 16-bit field change `old` → `neu` under checksum `check`. */
export function csumReplace16(check: number, old: number, neu: number): number {
  let s = (~check & 0xffff) + (~old & 0xffff) + (neu & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** RFC 1624 eqn 3 for a 32-bit field change (e.g. an IPv4 address), as two 16-bit changes. */
export function csumReplace32(check: number, old: number, neu: number): number {
  let s =
    (~check & 0xffff) +
    (~(old >>> 16) & 0xffff) +
    (~old & 0xffff) +
    ((neu >>> 16) & 0xffff) +
    (neu & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** RFC 1624 eqn 3 for a 128-bit field change (an IPv6 address as four host-order words). */
export function csumReplace128(
  check: number,
  old: ArrayLike<number>,
  neu: ArrayLike<number>,
): number {
  let s = ~check & 0xffff;
  for (let i = 0; i < 4; i++) {
    const o = old[i]!;
    const n = neu[i]!;
    s += (~(o >>> 16) & 0xffff) + (~o & 0xffff) + ((n >>> 16) & 0xffff) + (n & 0xffff);
  }
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Reads the big-endian 16-bit value at `off`. */
export function read16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

/** Writes `v` as a big-endian 16-bit value at `off`. */
export function write16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v;
}

/** Reads the big-endian 32-bit value at `off` as an unsigned number. */
export function read32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

/** Writes `v` as a big-endian 32-bit value at `off`. */
export function write32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}
