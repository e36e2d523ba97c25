/**
 * SCTP codec (RFC 9260 §3): the 12-byte common header (ports, verification tag, CRC32c checksum)
 * and the chunk list (type, flags, length, value, padded to 4 bytes). `encode` writes the chunks and
 * computes the CRC32c over the whole packet unless a checksum is given.
 */
import { MALFORMED } from './constants.js';
import { sctpChecksum } from './crc32c.js';
import { checkInt, checkRoom } from './errors.js';
import { type Decoded, decoded, endOf, malformed } from './codec.js';

/** Chunk types IPVS's SCTP state machine looks at (RFC 9260 §3.2). */
export const SCTP_CHUNK = {
  DATA: 0,
  INIT: 1,
  INIT_ACK: 2,
  SACK: 3,
  HEARTBEAT: 4,
  HEARTBEAT_ACK: 5,
  ABORT: 6,
  SHUTDOWN: 7,
  SHUTDOWN_ACK: 8,
  ERROR: 9,
  COOKIE_ECHO: 10,
  COOKIE_ACK: 11,
  SHUTDOWN_COMPLETE: 14,
} as const;

/** One chunk; its length field is 4 + value length. */
export interface SctpChunk {
  type: number;
  flags?: number;
  value?: Uint8Array;
}

/** An SCTP packet: common header plus chunks. */
export interface SctpPacket {
  srcPort: number;
  dstPort: number;
  vtag: number;
  /** CRC32c as an unsigned number; computed when omitted. */
  checksum?: number;
  chunks: SctpChunk[];
}

/** Bytes `encode` writes for `p` (chunks padded to 4 bytes, the last one included). */
export function encodingLength(p: SctpPacket): number {
  let n = 12;
  for (const c of p.chunks) n += (4 + (c.value?.length ?? 0) + 3) & ~3;
  return n;
}

/** Writes `p` at `buf[offset]`; returns the bytes written. */
export function encode(p: SctpPacket, buf: Uint8Array, offset: number): number {
  const len = encodingLength(p);
  checkInt(p.srcPort, 'SCTP srcPort', 0, 0xffff);
  checkInt(p.dstPort, 'SCTP dstPort', 0, 0xffff);
  checkInt(p.vtag, 'SCTP vtag', 0, 0xffffffff);
  checkRoom(buf, offset, len, 'SCTP packet');
  buf[offset] = p.srcPort >>> 8;
  buf[offset + 1] = p.srcPort;
  buf[offset + 2] = p.dstPort >>> 8;
  buf[offset + 3] = p.dstPort;
  buf[offset + 4] = p.vtag >>> 24;
  buf[offset + 5] = p.vtag >>> 16;
  buf[offset + 6] = p.vtag >>> 8;
  buf[offset + 7] = p.vtag;
  let q = offset + 12;
  for (const c of p.chunks) {
    checkInt(c.type, 'SCTP chunk type', 0, 255);
    const f = checkInt(c.flags ?? 0, 'SCTP chunk flags', 0, 255);
    const cl = checkInt(4 + (c.value?.length ?? 0), 'SCTP chunk length', 4, 0xffff);
    buf[q] = c.type;
    buf[q + 1] = f;
    buf[q + 2] = cl >>> 8;
    buf[q + 3] = cl;
    if (c.value) buf.set(c.value, q + 4);
    const padded = (cl + 3) & ~3;
    buf.fill(0, q + cl, q + padded);
    q += padded;
  }
  const crc = checkInt(
    p.checksum ?? sctpChecksum(buf, offset, len),
    'SCTP checksum',
    0,
    0xffffffff,
  );
  buf[offset + 8] = crc;
  buf[offset + 9] = crc >>> 8;
  buf[offset + 10] = crc >>> 16;
  buf[offset + 11] = crc >>> 24;
  return len;
}

/** Reads an SCTP packet (header and every chunk) from `buf[offset, end)`. */
export function decode(buf: Uint8Array, offset: number, end?: number): Decoded<SctpPacket> {
  const e = endOf(buf, end);
  if (!(offset >= 0) || offset + 16 > e) return malformed(MALFORMED.SCTP_TRUNCATED);
  const p: SctpPacket = {
    srcPort: (buf[offset]! << 8) | buf[offset + 1]!,
    dstPort: (buf[offset + 2]! << 8) | buf[offset + 3]!,
    vtag:
      ((buf[offset + 4]! << 24) |
        (buf[offset + 5]! << 16) |
        (buf[offset + 6]! << 8) |
        buf[offset + 7]!) >>>
      0,
    checksum:
      (buf[offset + 8]! |
        (buf[offset + 9]! << 8) |
        (buf[offset + 10]! << 16) |
        (buf[offset + 11]! << 24)) >>>
      0,
    chunks: [],
  };
  let q = offset + 12;
  while (q + 4 <= e) {
    const cl = (buf[q + 2]! << 8) | buf[q + 3]!;
    if (cl < 4 || q + cl > e) return malformed(MALFORMED.SCTP_BAD_CHUNK);
    p.chunks.push({
      type: buf[q]!,
      flags: buf[q + 1]!,
      value: new Uint8Array(buf.subarray(q + 4, q + cl)),
    });
    q += (cl + 3) & ~3;
  }
  return decoded(p, Math.min(q, e) - offset);
}
