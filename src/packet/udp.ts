/**
 * UDP header codec (RFC 768). A checksum of 0 means "none" over IPv4; a computed 0 is sent as
 * 0xFFFF (see `checksum.ts`).
 */
import { MALFORMED } from './constants.js';
import { checkInt, checkRoom } from './errors.js';
import { type Decoded, decoded, endOf, malformed } from './codec.js';

/** A UDP header. */
export interface UdpHeader {
  srcPort: number;
  dstPort: number;
  /** Header plus payload in bytes. */
  length: number;
  checksum?: number;
}

/** Bytes `encode` writes (always 8). */
export function encodingLength(_h?: UdpHeader): number {
  return 8;
}

/** Writes `h` at `buf[offset]`; returns 8. */
export function encode(h: UdpHeader, buf: Uint8Array, offset: number): number {
  checkInt(h.srcPort, 'UDP srcPort', 0, 0xffff);
  checkInt(h.dstPort, 'UDP dstPort', 0, 0xffff);
  checkInt(h.length, 'UDP length', 8, 0xffff);
  const c = checkInt(h.checksum ?? 0, 'UDP checksum', 0, 0xffff);
  checkRoom(buf, offset, 8, 'UDP header');
  buf[offset] = h.srcPort >>> 8;
  buf[offset + 1] = h.srcPort;
  buf[offset + 2] = h.dstPort >>> 8;
  buf[offset + 3] = h.dstPort;
  buf[offset + 4] = h.length >>> 8;
  buf[offset + 5] = h.length;
  buf[offset + 6] = c >>> 8;
  buf[offset + 7] = c;
  return 8;
}

/** Reads a UDP header at `buf[offset]`; refuses a length below 8 or beyond `end`. */
export function decode(buf: Uint8Array, offset: number, end?: number): Decoded<UdpHeader> {
  const e = endOf(buf, end);
  if (!(offset >= 0) || offset + 8 > e) return malformed(MALFORMED.UDP_TRUNCATED);
  const length = (buf[offset + 4]! << 8) | buf[offset + 5]!;
  if (length < 8 || offset + length > e) return malformed(MALFORMED.UDP_BAD_LENGTH);
  return decoded(
    {
      srcPort: (buf[offset]! << 8) | buf[offset + 1]!,
      dstPort: (buf[offset + 2]! << 8) | buf[offset + 3]!,
      length,
      checksum: (buf[offset + 6]! << 8) | buf[offset + 7]!,
    },
    8,
  );
}
