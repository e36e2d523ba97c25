/**
 * GUE version 0 header codec (draft-ietf-intarea-gue; Linux `include/net/gue.h`): byte 0 holds
 * version (2 bits), control (1 bit) and hlen (5 bits, option words); then the inner protocol and
 * 16 flag bits. IPVS uses the PRIV flag (0x0001) with a private-flags word whose REMCSUM bit
 * (0x80000000) announces remote checksum offload: two 16-bit fields, checksum start and the
 * checksum field's position, both relative to the inner packet (spec §5.5).
 */
import { MALFORMED } from './constants.js';
import { checkInt, checkRoom } from './errors.js';
import { type Decoded, decoded, endOf, malformed } from './codec.js';

/** GUE flag and private-flag bits. */
export const GUE_FLAG = { PRIV: 0x0001, PFLAG_REMCSUM: 0x80000000 } as const;

/** A GUE v0 data header. */
export interface GueHeader {
  /** Inner IP protocol: 4 (IPv4) or 41 (IPv6). */
  protocol: number;
  /** Remote checksum offload: start of the checksummed area and the offset of its checksum field. */
  remcsum?: { start: number; offset: number };
}

/** Bytes `encode` writes: 4, or 12 with remote checksum offload. */
export function encodingLength(h: GueHeader): number {
  return h.remcsum ? 12 : 4;
}

/** Writes `h` at `buf[offset]`; returns the bytes written. */
export function encode(h: GueHeader, buf: Uint8Array, offset: number): number {
  const len = encodingLength(h);
  checkInt(h.protocol, 'GUE protocol', 0, 255);
  checkRoom(buf, offset, len, 'GUE header');
  buf[offset] = (len - 4) >>> 2; // version 0, control 0, hlen
  buf[offset + 1] = h.protocol;
  buf[offset + 2] = 0;
  buf[offset + 3] = h.remcsum ? GUE_FLAG.PRIV : 0;
  if (h.remcsum) {
    const s = checkInt(h.remcsum.start, 'GUE remcsum start', 0, 0xffff);
    const o = checkInt(h.remcsum.offset, 'GUE remcsum offset', 0, 0xffff);
    buf[offset + 4] = 0x80;
    buf[offset + 5] = 0;
    buf[offset + 6] = 0;
    buf[offset + 7] = 0;
    buf[offset + 8] = s >>> 8;
    buf[offset + 9] = s;
    buf[offset + 10] = o >>> 8;
    buf[offset + 11] = o;
  }
  return len;
}

/** Reads a GUE v0 data header at `buf[offset]`; control messages and other versions are refused. */
export function decode(buf: Uint8Array, offset: number, end?: number): Decoded<GueHeader> {
  const e = endOf(buf, end);
  if (!(offset >= 0) || offset + 4 > e) return malformed(MALFORMED.GUE_TRUNCATED);
  const b0 = buf[offset]!;
  if (b0 >>> 6 !== 0 || (b0 & 0x20) !== 0) return malformed(MALFORMED.GUE_UNSUPPORTED);
  const len = 4 + ((b0 & 31) << 2);
  if (offset + len > e) return malformed(MALFORMED.GUE_TRUNCATED);
  const h: GueHeader = { protocol: buf[offset + 1]! };
  const flags = (buf[offset + 2]! << 8) | buf[offset + 3]!;
  if (flags & GUE_FLAG.PRIV) {
    if (len < 8) return malformed(MALFORMED.GUE_TRUNCATED);
    if (buf[offset + 4]! & 0x80) {
      if (len < 12) return malformed(MALFORMED.GUE_TRUNCATED);
      h.remcsum = {
        start: (buf[offset + 8]! << 8) | buf[offset + 9]!,
        offset: (buf[offset + 10]! << 8) | buf[offset + 11]!,
      };
    }
  }
  return decoded(h, len);
}
