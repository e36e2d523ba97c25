/**
 * TCP header codec (RFC 9293 §3.1): ports, sequence and acknowledgment numbers, data offset, flags
 * (CWR..FIN), window, checksum, urgent pointer and options (EOL/NOP single bytes, others
 * kind-length-value; padded with EOL to a 4-byte boundary, at most 40 bytes). The checksum needs
 * the pseudo-header and payload: see `checksum.ts` `l4Checksum` (the builder fills it).
 */
import { MALFORMED } from './constants.js';
import { checkInt, checkRoom, PacketEncodeError } from './errors.js';
import { type Decoded, decoded, endOf, malformed } from './codec.js';

/** TCP option kinds (IANA "TCP Option Kind Numbers"). */
export const TCP_OPT = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WSCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMP: 8,
} as const;

/** One TCP option. */
export interface TcpOption {
  kind: number;
  data?: Uint8Array;
}

/** A TCP header. */
export interface TcpHeader {
  srcPort: number;
  dstPort: number;
  seq?: number;
  ack?: number;
  /** Flag bits, TCP_FLAG.* or'ed. */
  flags: number;
  window?: number;
  checksum?: number;
  urgent?: number;
  options?: TcpOption[];
}

function optionsLength(opts: TcpOption[] | undefined): number {
  if (!opts) return 0;
  let n = 0;
  for (const o of opts) n += o.kind === 0 || o.kind === 1 ? 1 : 2 + (o.data?.length ?? 0);
  return (n + 3) & ~3;
}

/** Bytes `encode` writes for `h`. */
export function encodingLength(h: TcpHeader): number {
  return 20 + optionsLength(h.options);
}

/** Writes `h` at `buf[offset]`; returns the bytes written. */
export function encode(h: TcpHeader, buf: Uint8Array, offset: number): number {
  const optLen = optionsLength(h.options);
  if (optLen > 40) throw new PacketEncodeError(`TCP options need ${optLen} bytes; at most 40 fit`);
  const len = 20 + optLen;
  checkInt(h.srcPort, 'TCP srcPort', 0, 0xffff);
  checkInt(h.dstPort, 'TCP dstPort', 0, 0xffff);
  const seq = checkInt(h.seq ?? 0, 'TCP seq', 0, 0xffffffff);
  const ack = checkInt(h.ack ?? 0, 'TCP ack', 0, 0xffffffff);
  checkInt(h.flags, 'TCP flags', 0, 0xff);
  const win = checkInt(h.window ?? 65535, 'TCP window', 0, 0xffff);
  const csum = checkInt(h.checksum ?? 0, 'TCP checksum', 0, 0xffff);
  const urg = checkInt(h.urgent ?? 0, 'TCP urgent', 0, 0xffff);
  checkRoom(buf, offset, len, 'TCP header');
  buf[offset] = h.srcPort >>> 8;
  buf[offset + 1] = h.srcPort;
  buf[offset + 2] = h.dstPort >>> 8;
  buf[offset + 3] = h.dstPort;
  buf[offset + 4] = seq >>> 24;
  buf[offset + 5] = seq >>> 16;
  buf[offset + 6] = seq >>> 8;
  buf[offset + 7] = seq;
  buf[offset + 8] = ack >>> 24;
  buf[offset + 9] = ack >>> 16;
  buf[offset + 10] = ack >>> 8;
  buf[offset + 11] = ack;
  buf[offset + 12] = (len >>> 2) << 4;
  buf[offset + 13] = h.flags;
  buf[offset + 14] = win >>> 8;
  buf[offset + 15] = win;
  buf[offset + 16] = csum >>> 8;
  buf[offset + 17] = csum;
  buf[offset + 18] = urg >>> 8;
  buf[offset + 19] = urg;
  let p = offset + 20;
  for (const o of h.options ?? []) {
    checkInt(o.kind, 'TCP option kind', 0, 255);
    if (o.kind === 0 || o.kind === 1) {
      buf[p++] = o.kind;
      continue;
    }
    const dl = o.data?.length ?? 0;
    buf[p] = o.kind;
    buf[p + 1] = 2 + dl;
    if (o.data) buf.set(o.data, p + 2);
    p += 2 + dl;
  }
  while (p < offset + len) buf[p++] = 0;
  return len;
}

/** Reads a TCP header at `buf[offset]` (options validated and listed, EOL padding dropped). */
export function decode(buf: Uint8Array, offset: number, end?: number): Decoded<TcpHeader> {
  const e = endOf(buf, end);
  if (!(offset >= 0) || offset + 20 > e) return malformed(MALFORMED.TCP_TRUNCATED);
  const doff = (buf[offset + 12]! >>> 4) << 2;
  if (doff < 20 || offset + doff > e) return malformed(MALFORMED.TCP_BAD_DATA_OFFSET);
  const r32 = (o: number) =>
    ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0;
  const h: TcpHeader = {
    srcPort: (buf[offset]! << 8) | buf[offset + 1]!,
    dstPort: (buf[offset + 2]! << 8) | buf[offset + 3]!,
    seq: r32(offset + 4),
    ack: r32(offset + 8),
    flags: buf[offset + 13]!,
    window: (buf[offset + 14]! << 8) | buf[offset + 15]!,
    checksum: (buf[offset + 16]! << 8) | buf[offset + 17]!,
    urgent: (buf[offset + 18]! << 8) | buf[offset + 19]!,
  };
  if (doff > 20) {
    const opts: TcpOption[] = [];
    let q = offset + 20;
    const he = offset + doff;
    while (q < he) {
      const k = buf[q]!;
      if (k === 0) break;
      if (k === 1) {
        opts.push({ kind: 1 });
        q++;
        continue;
      }
      if (q + 2 > he) return malformed(MALFORMED.TCP_BAD_OPTIONS);
      const l = buf[q + 1]!;
      if (l < 2 || q + l > he) return malformed(MALFORMED.TCP_BAD_OPTIONS);
      opts.push({ kind: k, data: new Uint8Array(buf.subarray(q + 2, q + l)) });
      q += l;
    }
    h.options = opts;
  }
  return decoded(h, doff);
}
