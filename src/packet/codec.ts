/**
 * Shared shape of the per-header codecs (mafintosh/dns-packet style): `encode(obj, buf, offset)`
 * writes a header and returns the bytes written, `decode(buf, offset, end?)` returns a `Decoded`
 * result (never throws), `encodingLength(obj)` says how many bytes `encode` will write. These
 * allocate an object per call and are meant for tests, tools and control paths; the per-packet path
 * uses `PacketView` (`decode.ts`).
 */
import { MALFORMED_REASON } from './constants.js';
import { PacketEncodeError } from './errors.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../core/addr.js';

/** Result of an object decode: the header and its length, or a malformed verdict. */
export type Decoded<T> =
  { ok: true; value: T; length: number } | { ok: false; code: number; reason: string };

/** A successful decode. */
export function decoded<T>(value: T, length: number): Decoded<T> {
  return { ok: true, value, length };
}

/** A malformed verdict for MALFORMED code `code`. */
export function malformed<T>(code: number): Decoded<T> {
  return { ok: false, code, reason: MALFORMED_REASON[code] ?? 'malformed' };
}

/** Clamps the decode window to the buffer. */
export function endOf(buf: Uint8Array, end: number | undefined): number {
  return end === undefined || !(end <= buf.length) ? buf.length : end;
}

/** Parses "aa:bb:cc:dd:ee:ff" into `buf` at `off`; refuses anything else. */
export function writeMac(text: string, buf: Uint8Array, off: number, name = 'MAC address'): void {
  const m =
    /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(
      String(text),
    );
  if (!m)
    throw new PacketEncodeError(`${name} must look like aa:bb:cc:dd:ee:ff, got ${String(text)}`);
  for (let i = 0; i < 6; i++) buf[off + i] = parseInt(m[i + 1]!, 16);
}

/** Formats the six bytes at `off` as "aa:bb:cc:dd:ee:ff". */
export function readMac(buf: Uint8Array, off: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + buf[off + i]!.toString(16).padStart(2, '0');
  return s;
}

/** Writes a dotted-quad IPv4 address at `off`; refuses malformed text. */
export function writeIpv4(
  text: string,
  buf: Uint8Array,
  off: number,
  name = 'IPv4 address',
): number {
  const v = parseIpv4(String(text));
  if (v === null) throw new PacketEncodeError(`${name} is not an IPv4 address: ${String(text)}`);
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
  return v;
}

/** Reads an IPv4 address at `off` as dotted-quad text. */
export function readIpv4(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** Writes an IPv6 address at `off`; refuses malformed text. Returns the four words. */
export function writeIpv6(
  text: string,
  buf: Uint8Array,
  off: number,
  name = 'IPv6 address',
): Uint32Array {
  const w = parseIpv6(String(text));
  if (w === null) throw new PacketEncodeError(`${name} is not an IPv6 address: ${String(text)}`);
  for (let i = 0; i < 4; i++) {
    const x = w[i]!;
    buf[off + 4 * i] = x >>> 24;
    buf[off + 4 * i + 1] = x >>> 16;
    buf[off + 4 * i + 2] = x >>> 8;
    buf[off + 4 * i + 3] = x;
  }
  return w;
}

/** Reads an IPv6 address at `off` as text (inet_ntop form). */
export function readIpv6(buf: Uint8Array, off: number): string {
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    const a = off + 4 * i;
    w[i] = (buf[a]! << 24) | (buf[a + 1]! << 16) | (buf[a + 2]! << 8) | buf[a + 3]!;
  }
  return formatIpv6(w);
}

/** Formats a host-order IPv4 number. */
export { formatIpv4 };
