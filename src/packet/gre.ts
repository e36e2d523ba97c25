/**
 * GRE header codec (RFC 2784, key and sequence from RFC 2890): flags C(0x8000) K(0x2000)
 * S(0x1000), version 0, protocol type; with C a checksum over the GRE header and payload plus a
 * reserved word follows. IPVS sends only C and the protocol (spec §5.5).
 */
import { MALFORMED } from './constants.js';
import { csumFinish, csumPartial } from './checksum.js';
import { checkInt, checkRoom } from './errors.js';
import { type Decoded, decoded, endOf, malformed } from './codec.js';

/** GRE flag bits. */
export const GRE_FLAG = { CSUM: 0x8000, ROUTING: 0x4000, KEY: 0x2000, SEQ: 0x1000 } as const;

/** A GRE header. */
export interface GreHeader {
  /** EtherType of the payload (0x0800 IPv4, 0x86DD IPv6). */
  protocol: number;
  /** Checksum present (C bit). */
  checksumPresent?: boolean;
  /** Checksum value when present; `encode` writes 0, use `writeGreChecksum` once the payload is in. */
  checksum?: number;
  key?: number;
  seq?: number;
}

/** Bytes `encode` writes for `h`. */
export function encodingLength(h: GreHeader): number {
  return (
    4 + (h.checksumPresent ? 4 : 0) + (h.key !== undefined ? 4 : 0) + (h.seq !== undefined ? 4 : 0)
  );
}

/** Writes `h` at `buf[offset]`; returns the bytes written. */
export function encode(h: GreHeader, buf: Uint8Array, offset: number): number {
  const len = encodingLength(h);
  checkInt(h.protocol, 'GRE protocol', 0, 0xffff);
  const c = checkInt(h.checksum ?? 0, 'GRE checksum', 0, 0xffff);
  if (h.key !== undefined) checkInt(h.key, 'GRE key', 0, 0xffffffff);
  if (h.seq !== undefined) checkInt(h.seq, 'GRE seq', 0, 0xffffffff);
  checkRoom(buf, offset, len, 'GRE header');
  const flags =
    (h.checksumPresent ? GRE_FLAG.CSUM : 0) |
    (h.key !== undefined ? GRE_FLAG.KEY : 0) |
    (h.seq !== undefined ? GRE_FLAG.SEQ : 0);
  buf[offset] = flags >>> 8;
  buf[offset + 1] = 0;
  buf[offset + 2] = h.protocol >>> 8;
  buf[offset + 3] = h.protocol;
  let p = offset + 4;
  const w32 = (v: number) => {
    buf[p] = v >>> 24;
    buf[p + 1] = v >>> 16;
    buf[p + 2] = v >>> 8;
    buf[p + 3] = v;
    p += 4;
  };
  if (h.checksumPresent) w32((c << 16) >>> 0);
  if (h.key !== undefined) w32(h.key);
  if (h.seq !== undefined) w32(h.seq);
  return len;
}

/** Computes and writes the checksum of the GRE packet (header + payload) `buf[offset, offset+len)`. */
export function writeGreChecksum(buf: Uint8Array, offset: number, len: number): void {
  buf[offset + 4] = 0;
  buf[offset + 5] = 0;
  const c = csumFinish(csumPartial(buf, offset, len));
  buf[offset + 4] = c >>> 8;
  buf[offset + 5] = c;
}

/** Reads a GRE header at `buf[offset]`; version 1 (PPTP) and routing are refused as unsupported. */
export function decode(buf: Uint8Array, offset: number, end?: number): Decoded<GreHeader> {
  const e = endOf(buf, end);
  if (!(offset >= 0) || offset + 4 > e) return malformed(MALFORMED.GRE_TRUNCATED);
  const flags = (buf[offset]! << 8) | buf[offset + 1]!;
  if ((flags & 7) !== 0 || (flags & GRE_FLAG.ROUTING) !== 0)
    return malformed(MALFORMED.GRE_UNSUPPORTED);
  const h: GreHeader = { protocol: (buf[offset + 2]! << 8) | buf[offset + 3]! };
  const len = encodingLength({
    protocol: 0,
    checksumPresent: (flags & GRE_FLAG.CSUM) !== 0,
    key: flags & GRE_FLAG.KEY ? 0 : undefined,
    seq: flags & GRE_FLAG.SEQ ? 0 : undefined,
  });
  if (offset + len > e) return malformed(MALFORMED.GRE_TRUNCATED);
  let p = offset + 4;
  const r32 = () => {
    const v = ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
    p += 4;
    return v;
  };
  if (flags & GRE_FLAG.CSUM) {
    h.checksumPresent = true;
    h.checksum = r32() >>> 16;
  }
  if (flags & GRE_FLAG.KEY) h.key = r32();
  if (flags & GRE_FLAG.SEQ) h.seq = r32();
  return decoded(h, len);
}
