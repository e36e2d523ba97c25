/**
 * CRC32c (Castagnoli, reflected polynomial 0x82F63B78; RFC 3309, RFC 9260 Appendix A), table
 * driven with slicing-by-8, and the SCTP checksum built on it. SCTP stores the CRC with its least
 * significant byte first (the kernel's `cpu_to_le32(~crc)`).
 */

const POLY = 0x82f63b78;

/** Eight 256-entry tables: T[k][b] is the CRC of byte b followed by k zero bytes. */
const T = new Int32Array(8 * 256);
for (let b = 0; b < 256; b++) {
  let c = b;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[b] = c;
}
for (let b = 0; b < 256; b++) {
  let c = T[b]!;
  for (let k = 1; k < 8; k++) {
    c = T[c & 0xff]! ^ (c >>> 8);
    T[k * 256 + b] = c;
  }
}

/** Advances a raw (not inverted) CRC32c state over `buf[off, off+len)`. */
export function crc32cUpdate(state: number, buf: Uint8Array, off: number, len: number): number {
  let c = state | 0;
  let i = off;
  const end = off + len;
  for (; i + 8 <= end; i += 8) {
    const lo = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    c =
      T[7 * 256 + (lo & 0xff)]! ^
      T[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      T[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      T[4 * 256 + (lo >>> 24)]! ^
      T[3 * 256 + buf[i + 4]!]! ^
      T[2 * 256 + buf[i + 5]!]! ^
      T[256 + buf[i + 6]!]! ^
      T[buf[i + 7]!]!;
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return c;
}

/** The CRC32c of `buf[off, off+len)` as an unsigned 32-bit number ("123456789" → 0xE3069283). */
export function crc32c(buf: Uint8Array, off = 0, len = buf.length - off): number {
  return ~crc32cUpdate(~0, buf, off, len) >>> 0;
}

const ZERO4 = new Uint8Array(4);

/**
 * The SCTP checksum of the packet `buf[off, off+len)` (common header + chunks), computed with the
 * checksum field (bytes 8..11) taken as zero, as an unsigned number in wire-read little-endian order.
 */
export function sctpChecksum(buf: Uint8Array, off: number, len: number): number {
  let c = crc32cUpdate(~0, buf, off, 8);
  c = crc32cUpdate(c, ZERO4, 0, 4);
  c = crc32cUpdate(c, buf, off + 12, len - 12);
  return ~c >>> 0;
}

/** Writes the SCTP checksum of the packet at `off` into its checksum field. */
export function writeSctpChecksum(buf: Uint8Array, off: number, len: number): void {
  const c = sctpChecksum(buf, off, len);
  buf[off + 8] = c;
  buf[off + 9] = c >>> 8;
  buf[off + 10] = c >>> 16;
  buf[off + 11] = c >>> 24;
}

/** True when the SCTP packet at `off` carries a correct CRC32c. */
export function sctpChecksumOk(buf: Uint8Array, off: number, len: number): boolean {
  if (len < 12) return false;
  const c = sctpChecksum(buf, off, len);
  const got =
    (buf[off + 8]! | (buf[off + 9]! << 8) | (buf[off + 10]! << 16) | (buf[off + 11]! << 24)) >>> 0;
  return c === got;
}
