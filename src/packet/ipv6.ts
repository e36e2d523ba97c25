/**
 * IPv6 header codec (RFC 8200 §3) with the extension headers IPVS walks (§4): hop-by-hop options
 * (0), routing (43), fragment (44), authentication (51, RFC 4302) and destination options (60).
 * Options headers are padded with Pad1/PadN (§4.2) to a multiple of 8 bytes; a routing or
 * authentication header's data must already fit that rule.
 */
import { IPPROTO, MALFORMED } from './constants.js';
import { checkInt, checkRoom, PacketEncodeError } from './errors.js';
import { type Decoded, decoded, endOf, malformed, readIpv6, writeIpv6 } from './codec.js';
import { MAX_IPV6_EXT_HEADERS, ipv6ExtLength } from './decode.js';

/**
 * A hop-by-hop, routing, authentication or destination-options header: its data after next-header
 * and length (for AH: the reserved field, SPI, sequence number and ICV).
 */
export interface Ipv6OptionsExt {
  type: 0 | 43 | 51 | 60;
  data?: Uint8Array;
}

/** A fragment header. */
export interface Ipv6FragmentExt {
  type: 44;
  /** Fragment offset in bytes (a multiple of 8). */
  fragOffset: number;
  mf: boolean;
  id: number;
}

/** One extension header. */
export type Ipv6Ext = Ipv6OptionsExt | Ipv6FragmentExt;

/** An IPv6 header with its extension headers. */
export interface Ipv6Header {
  trafficClass?: number;
  flowLabel?: number;
  /** Bytes after the fixed 40-byte header (extension headers included). */
  payloadLength: number;
  /** The protocol after the last extension header (TCP 6, UDP 17, ICMPv6 58, …). */
  nextHeader: number;
  hopLimit?: number;
  src: string;
  dst: string;
  extensions?: Ipv6Ext[];
}

function extLength(x: Ipv6Ext): number {
  if (x.type === 44) return 8;
  const dl = x.data?.length ?? 0;
  return x.type === 43 || x.type === 51 ? 2 + dl : (2 + dl + 7) & ~7;
}

/** Bytes `encode` writes for `h` (40 plus extension headers). */
export function encodingLength(h: Ipv6Header): number {
  let n = 40;
  for (const x of h.extensions ?? []) n += extLength(x);
  return n;
}

/** Writes `h` and its extension headers at `buf[offset]`; returns the bytes written. */
export function encode(h: Ipv6Header, buf: Uint8Array, offset: number): number {
  const len = encodingLength(h);
  const exts = h.extensions ?? [];
  const tc = checkInt(h.trafficClass ?? 0, 'IPv6 trafficClass', 0, 255);
  const fl = checkInt(h.flowLabel ?? 0, 'IPv6 flowLabel', 0, 0xfffff);
  checkInt(h.payloadLength, 'IPv6 payloadLength', len - 40, 0xffff);
  checkInt(h.nextHeader, 'IPv6 nextHeader', 0, 255);
  const hl = checkInt(h.hopLimit ?? 64, 'IPv6 hopLimit', 0, 255);
  checkRoom(buf, offset, len, 'IPv6 header');
  buf[offset] = 0x60 | (tc >>> 4);
  buf[offset + 1] = ((tc & 15) << 4) | (fl >>> 16);
  buf[offset + 2] = fl >>> 8;
  buf[offset + 3] = fl;
  buf[offset + 4] = h.payloadLength >>> 8;
  buf[offset + 5] = h.payloadLength;
  buf[offset + 6] = exts.length ? exts[0]!.type : h.nextHeader;
  buf[offset + 7] = hl;
  writeIpv6(h.src, buf, offset + 8, 'IPv6 src');
  writeIpv6(h.dst, buf, offset + 24, 'IPv6 dst');
  let p = offset + 40;
  for (let i = 0; i < exts.length; i++) {
    const x = exts[i]!;
    const next = i + 1 < exts.length ? exts[i + 1]!.type : h.nextHeader;
    const xl = extLength(x);
    buf[p] = next;
    if (x.type === 44) {
      const fo = checkInt(x.fragOffset, 'IPv6 fragOffset', 0, 0x1fff * 8);
      if (fo % 8 !== 0)
        throw new PacketEncodeError(`IPv6 fragOffset must be a multiple of 8, got ${fo}`);
      checkInt(x.id, 'IPv6 fragment id', 0, 0xffffffff);
      const w = fo | (x.mf ? 1 : 0);
      buf[p + 1] = 0;
      buf[p + 2] = w >>> 8;
      buf[p + 3] = w;
      buf[p + 4] = x.id >>> 24;
      buf[p + 5] = x.id >>> 16;
      buf[p + 6] = x.id >>> 8;
      buf[p + 7] = x.id;
    } else if (x.type === 0 || x.type === 43 || x.type === 51 || x.type === 60) {
      const ah = x.type === 51;
      if (xl % 8 !== 0 || xl < (ah ? 16 : 8) || xl > (ah ? 1028 : 2048)) {
        throw new PacketEncodeError(
          `IPv6 ${ah ? 'authentication' : 'routing'} header data must make a multiple of 8 bytes ` +
            `from ${ah ? 16 : 8} to ${ah ? 1028 : 2048}, got ${xl}`,
        );
      }
      // AH counts 4-byte words less two (RFC 4302 §2.2), the others 8-byte words less one
      buf[p + 1] = ah ? (xl >>> 2) - 2 : (xl >>> 3) - 1;
      const dl = x.data?.length ?? 0;
      if (x.data) buf.set(x.data, p + 2);
      const pad = xl - 2 - dl;
      if (pad === 1) buf[p + 2 + dl] = 0;
      else if (pad > 1) {
        buf[p + 2 + dl] = 1; // PadN
        buf[p + 3 + dl] = pad - 2;
        buf.fill(0, p + 4 + dl, p + xl);
      }
    } else {
      throw new PacketEncodeError(
        `unsupported IPv6 extension header type ${String((x as Ipv6Ext).type)}`,
      );
    }
    p += xl;
  }
  return len;
}

/** Reads an IPv6 header at `buf[offset]`, walking its extension headers. */
export function decode(buf: Uint8Array, offset: number, end?: number): Decoded<Ipv6Header> {
  const e = endOf(buf, end);
  if (!(offset >= 0) || offset + 40 > e) return malformed(MALFORMED.IP_TRUNCATED);
  if (buf[offset]! >>> 4 !== 6) return malformed(MALFORMED.IP_BAD_VERSION);
  const plen = (buf[offset + 4]! << 8) | buf[offset + 5]!;
  const ipEnd = Math.min(e, offset + 40 + plen);
  const h: Ipv6Header = {
    trafficClass: ((buf[offset]! & 15) << 4) | (buf[offset + 1]! >>> 4),
    flowLabel: ((buf[offset + 1]! & 15) << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!,
    payloadLength: plen,
    nextHeader: buf[offset + 6]!,
    hopLimit: buf[offset + 7]!,
    src: readIpv6(buf, offset + 8),
    dst: readIpv6(buf, offset + 24),
  };
  let nh = h.nextHeader;
  let q = offset + 40;
  const exts: Ipv6Ext[] = [];
  while (
    nh === IPPROTO.HOPOPTS ||
    nh === IPPROTO.ROUTING ||
    nh === IPPROTO.DSTOPTS ||
    nh === IPPROTO.FRAGMENT ||
    nh === IPPROTO.AH
  ) {
    if (exts.length >= MAX_IPV6_EXT_HEADERS) return malformed(MALFORMED.IPV6_EXT_TOO_MANY);
    if (nh === IPPROTO.FRAGMENT) {
      if (q + 8 > ipEnd) return malformed(MALFORMED.IPV6_EXT_TRUNCATED);
      const w = (buf[q + 2]! << 8) | buf[q + 3]!;
      exts.push({
        type: 44,
        fragOffset: w & 0xfff8,
        mf: (w & 1) !== 0,
        id: ((buf[q + 4]! << 24) | (buf[q + 5]! << 16) | (buf[q + 6]! << 8) | buf[q + 7]!) >>> 0,
      });
      nh = buf[q]!;
      q += 8;
      if ((w & 0xfff8) !== 0) break;
      continue;
    }
    if (q + 2 > ipEnd) return malformed(MALFORMED.IPV6_EXT_TRUNCATED);
    const l = ipv6ExtLength(buf, q, nh);
    if (q + l > ipEnd) return malformed(MALFORMED.IPV6_EXT_TRUNCATED);
    exts.push({ type: nh, data: new Uint8Array(buf.subarray(q + 2, q + l)) });
    nh = buf[q]!;
    q += l;
  }
  h.nextHeader = nh;
  if (exts.length) h.extensions = exts;
  return decoded(h, q - offset);
}
