/**
 * IPv4 header codec (RFC 791): version/IHL, TOS, total length, identification, DF/MF and fragment
 * offset, TTL, protocol, header checksum, addresses and options (EOL, NOP and type-length-value,
 * padded with EOL to a 4-byte boundary, at most 40 bytes).
 */
import { MALFORMED } from './constants.js';
import { ipv4HeaderChecksum } from './checksum.js';
import { checkInt, checkRoom, PacketEncodeError } from './errors.js';
import { type Decoded, decoded, endOf, malformed, readIpv4, writeIpv4 } from './codec.js';

/** One IPv4 option: EOL (0) and NOP (1) are single bytes; others are type, length, data. */
export interface Ipv4Option {
  type: number;
  data?: Uint8Array;
}

/** An IPv4 header. */
export interface Ipv4Header {
  tos?: number;
  /** Header plus payload in bytes. */
  totalLength: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  /** Fragment offset in bytes (a multiple of 8). */
  fragOffset?: number;
  ttl?: number;
  protocol: number;
  /** Header checksum; computed when omitted. */
  checksum?: number;
  src: string;
  dst: string;
  options?: Ipv4Option[];
}

function optionsLength(opts: Ipv4Option[] | undefined): number {
  if (!opts) return 0;
  let n = 0;
  for (const o of opts) n += o.type === 0 || o.type === 1 ? 1 : 2 + (o.data?.length ?? 0);
  return (n + 3) & ~3;
}

/** Bytes `encode` writes for `h` (20 plus padded options). */
export function encodingLength(h: Ipv4Header): number {
  return 20 + optionsLength(h.options);
}

/** Writes `h` at `buf[offset]` (computing the checksum unless given); returns the bytes written. */
export function encode(h: Ipv4Header, buf: Uint8Array, offset: number): number {
  const optLen = optionsLength(h.options);
  if (optLen > 40) throw new PacketEncodeError(`IPv4 options need ${optLen} bytes; at most 40 fit`);
  const len = 20 + optLen;
  checkInt(h.totalLength, 'IPv4 totalLength', len, 0xffff);
  const tos = checkInt(h.tos ?? 0, 'IPv4 tos', 0, 255);
  const id = checkInt(h.id ?? 0, 'IPv4 id', 0, 0xffff);
  const fo = checkInt(h.fragOffset ?? 0, 'IPv4 fragOffset', 0, 0x1fff * 8);
  if (fo % 8 !== 0)
    throw new PacketEncodeError(`IPv4 fragOffset must be a multiple of 8, got ${fo}`);
  const ttl = checkInt(h.ttl ?? 64, 'IPv4 ttl', 0, 255);
  checkInt(h.protocol, 'IPv4 protocol', 0, 255);
  checkRoom(buf, offset, len, 'IPv4 header');
  buf[offset] = 0x40 | (len >>> 2);
  buf[offset + 1] = tos;
  buf[offset + 2] = h.totalLength >>> 8;
  buf[offset + 3] = h.totalLength;
  buf[offset + 4] = id >>> 8;
  buf[offset + 5] = id;
  const frag = (h.df ? 0x4000 : 0) | (h.mf ? 0x2000 : 0) | (fo >>> 3);
  buf[offset + 6] = frag >>> 8;
  buf[offset + 7] = frag;
  buf[offset + 8] = ttl;
  buf[offset + 9] = h.protocol;
  buf[offset + 10] = 0;
  buf[offset + 11] = 0;
  writeIpv4(h.src, buf, offset + 12, 'IPv4 src');
  writeIpv4(h.dst, buf, offset + 16, 'IPv4 dst');
  let p = offset + 20;
  for (const o of h.options ?? []) {
    checkInt(o.type, 'IPv4 option type', 0, 255);
    if (o.type === 0 || o.type === 1) {
      buf[p++] = o.type;
      continue;
    }
    const dl = o.data?.length ?? 0;
    buf[p] = o.type;
    buf[p + 1] = 2 + dl;
    if (o.data) buf.set(o.data, p + 2);
    p += 2 + dl;
  }
  while (p < offset + len) buf[p++] = 0;
  const c = h.checksum ?? ipv4HeaderChecksum(buf, offset, len);
  checkInt(c, 'IPv4 checksum', 0, 0xffff);
  buf[offset + 10] = c >>> 8;
  buf[offset + 11] = c;
  return len;
}

/** Reads an IPv4 header at `buf[offset]` (options validated and listed, EOL padding dropped). */
export function decode(buf: Uint8Array, offset: number, end?: number): Decoded<Ipv4Header> {
  const e = endOf(buf, end);
  if (!(offset >= 0) || offset + 20 > e) return malformed(MALFORMED.IP_TRUNCATED);
  if (buf[offset]! >>> 4 !== 4) return malformed(MALFORMED.IP_BAD_VERSION);
  const ihl = (buf[offset]! & 15) << 2;
  if (ihl < 20 || offset + ihl > e) return malformed(MALFORMED.IPV4_BAD_IHL);
  const total = (buf[offset + 2]! << 8) | buf[offset + 3]!;
  if (total < ihl) return malformed(MALFORMED.IPV4_BAD_TOTAL_LENGTH);
  const frag = (buf[offset + 6]! << 8) | buf[offset + 7]!;
  const h: Ipv4Header = {
    tos: buf[offset + 1]!,
    totalLength: total,
    id: (buf[offset + 4]! << 8) | buf[offset + 5]!,
    df: (frag & 0x4000) !== 0,
    mf: (frag & 0x2000) !== 0,
    fragOffset: (frag & 0x1fff) << 3,
    ttl: buf[offset + 8]!,
    protocol: buf[offset + 9]!,
    checksum: (buf[offset + 10]! << 8) | buf[offset + 11]!,
    src: readIpv4(buf, offset + 12),
    dst: readIpv4(buf, offset + 16),
  };
  if (ihl > 20) {
    const opts: Ipv4Option[] = [];
    let q = offset + 20;
    const he = offset + ihl;
    while (q < he) {
      const t = buf[q]!;
      if (t === 0) break;
      if (t === 1) {
        opts.push({ type: 1 });
        q++;
        continue;
      }
      if (q + 2 > he) return malformed(MALFORMED.IPV4_BAD_OPTIONS);
      const l = buf[q + 1]!;
      if (l < 2 || q + l > he) return malformed(MALFORMED.IPV4_BAD_OPTIONS);
      opts.push({ type: t, data: new Uint8Array(buf.subarray(q + 2, q + l)) });
      q += l;
    }
    h.options = opts;
  }
  return decoded(h, ihl);
}
