/**
 * ICMP (RFC 792) and ICMPv6 (RFC 4443) header codec: type, code, checksum and the 32-bit "rest of
 * header" (echo identifier/sequence, next-hop MTU, pointer). Errors (ICMP 3, 4, 5, 11, 12; ICMPv6
 * types below 128) quote the offending packet after these 8 bytes; `decodeIcmpInner` reads it.
 */
import { MALFORMED } from './constants.js';
import { checkInt, checkRoom } from './errors.js';
import { type Decoded, decoded, endOf, malformed } from './codec.js';

/** An ICMP or ICMPv6 header. */
export interface IcmpHeader {
  type: number;
  code: number;
  checksum?: number;
  /** Bytes 4..7: echo id << 16 | sequence, or MTU for "fragmentation needed" / "packet too big". */
  rest?: number;
}

/** True when ICMP (v4) type `t` is an error that quotes a packet. */
export function isIcmpError(t: number): boolean {
  return t === 3 || t === 4 || t === 5 || t === 11 || t === 12;
}

/** True when ICMPv6 type `t` is an error that quotes a packet. */
export function isIcmpv6Error(t: number): boolean {
  return t < 128;
}

/** Bytes `encode` writes (always 8). */
export function encodingLength(_h?: IcmpHeader): number {
  return 8;
}

/** Writes `h` at `buf[offset]`; returns 8. */
export function encode(h: IcmpHeader, buf: Uint8Array, offset: number): number {
  checkInt(h.type, 'ICMP type', 0, 255);
  checkInt(h.code, 'ICMP code', 0, 255);
  const c = checkInt(h.checksum ?? 0, 'ICMP checksum', 0, 0xffff);
  const r = checkInt(h.rest ?? 0, 'ICMP rest', 0, 0xffffffff);
  checkRoom(buf, offset, 8, 'ICMP header');
  buf[offset] = h.type;
  buf[offset + 1] = h.code;
  buf[offset + 2] = c >>> 8;
  buf[offset + 3] = c;
  buf[offset + 4] = r >>> 24;
  buf[offset + 5] = r >>> 16;
  buf[offset + 6] = r >>> 8;
  buf[offset + 7] = r;
  return 8;
}

/** Reads an ICMP/ICMPv6 header at `buf[offset]`. */
export function decode(buf: Uint8Array, offset: number, end?: number): Decoded<IcmpHeader> {
  const e = endOf(buf, end);
  if (!(offset >= 0) || offset + 8 > e) return malformed(MALFORMED.ICMP_TRUNCATED);
  return decoded(
    {
      type: buf[offset]!,
      code: buf[offset + 1]!,
      checksum: (buf[offset + 2]! << 8) | buf[offset + 3]!,
      rest:
        ((buf[offset + 4]! << 24) |
          (buf[offset + 5]! << 16) |
          (buf[offset + 6]! << 8) |
          buf[offset + 7]!) >>>
        0,
    },
    8,
  );
}
