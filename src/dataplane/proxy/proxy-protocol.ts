/**
 * PROXY protocol headers (haproxy doc/proxy-protocol.txt) that the proxy data plane sends to real
 * servers so they see the client's address: version 1 (text, TCP only) and version 2 (binary,
 * TCP and UDP). `decodeProxyHeader` parses either version; tests and the demo backends use it.
 */
import { AF_INET6, formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../../core/addr.js';

/** The 12-byte version 2 signature. */
export const PP2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
/** Longest version 1 line, CRLF included (spec §2.1). */
export const PP1_MAX = 107;

/** Addressing of a proxied connection, as the header carries it. */
export interface ProxyAddrs {
  af: number;
  /** 'tcp' or 'udp'. */
  transport: 'tcp' | 'udp';
  srcAddr: string;
  srcPort: number;
  dstAddr: string;
  dstPort: number;
}

/** `PROXY TCP4 src dst sport dport\r\n` (TCP only). */
export function encodeProxyV1(a: ProxyAddrs): Buffer {
  const fam = a.af === AF_INET6 ? 'TCP6' : 'TCP4';
  return Buffer.from(
    `PROXY ${fam} ${a.srcAddr} ${a.dstAddr} ${a.srcPort} ${a.dstPort}\r\n`,
    'latin1',
  );
}

/** The binary version 2 header, command PROXY, family INET/INET6, STREAM or DGRAM. */
export function encodeProxyV2(
  a: ProxyAddrs,
  srcWords: ArrayLike<number>,
  dstWords: ArrayLike<number>,
): Buffer {
  const v6 = a.af === AF_INET6;
  const alen = v6 ? 36 : 12;
  const b = Buffer.allocUnsafe(16 + alen);
  PP2_SIGNATURE.copy(b, 0);
  b[12] = 0x21; // version 2, PROXY
  b[13] = (v6 ? 0x20 : 0x10) | (a.transport === 'udp' ? 0x02 : 0x01);
  b.writeUInt16BE(alen, 14);
  let o = 16;
  if (v6) {
    for (let i = 0; i < 4; i++) b.writeUInt32BE(srcWords[i]! >>> 0, o + 4 * i);
    for (let i = 0; i < 4; i++) b.writeUInt32BE(dstWords[i]! >>> 0, o + 16 + 4 * i);
    o += 32;
  } else {
    b.writeUInt32BE(srcWords[0]! >>> 0, o);
    b.writeUInt32BE(dstWords[0]! >>> 0, o + 4);
    o += 8;
  }
  b.writeUInt16BE(a.srcPort, o);
  b.writeUInt16BE(a.dstPort, o + 2);
  return b;
}

/** A decoded header and its length in bytes. */
export interface DecodedProxyHeader {
  version: 1 | 2;
  /** Bytes the header occupies at the start of the buffer. */
  length: number;
  /** null for `PROXY UNKNOWN` / v2 LOCAL or UNSPEC. */
  addrs: ProxyAddrs | null;
}

/**
 * Parses a header at the start of `buf`. Returns the header, `'incomplete'` when more bytes are
 * needed, or `'invalid'`. Never throws.
 */
export function decodeProxyHeader(buf: Uint8Array): DecodedProxyHeader | 'incomplete' | 'invalid' {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length >= 1 && b[0] === 0x0d) return decodeV2(b);
  if (b.length >= 1 && b[0] === 0x50) return decodeV1(b);
  return b.length === 0 ? 'incomplete' : 'invalid';
}

function decodeV1(b: Buffer): DecodedProxyHeader | 'incomplete' | 'invalid' {
  const pre = 'PROXY ';
  for (let i = 0; i < Math.min(pre.length, b.length); i++)
    if (b[i] !== pre.charCodeAt(i)) return 'invalid';
  const end = b.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return b.length >= PP1_MAX ? 'invalid' : 'incomplete';
  if (end + 2 > PP1_MAX) return 'invalid';
  const parts = b.toString('latin1', 0, end).split(' ');
  // UNKNOWN: whatever follows up to the CRLF is ignored
  if (parts[1] === 'UNKNOWN') return { version: 1, length: end + 2, addrs: null };
  // exactly one space between fields, the addresses of the family named, ports in decimal
  // without leading zeros: "any sequence which does not exactly match the protocol" is refused
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return 'invalid';
  const af = parts[1] === 'TCP6' ? AF_INET6 : 2;
  const src = v1Address(af, parts[2]!);
  const dst = v1Address(af, parts[3]!);
  const sp = v1Port(parts[4]!);
  const dp = v1Port(parts[5]!);
  if (src === null || dst === null || sp < 0 || dp < 0) return 'invalid';
  return {
    version: 1,
    length: end + 2,
    addrs: { af, transport: 'tcp', srcAddr: src, dstAddr: dst, srcPort: sp, dstPort: dp },
  };
}

/** A v1 address of family `af` in its canonical text, or null. */
function v1Address(af: number, text: string): string | null {
  if (af !== AF_INET6) {
    const v = parseIpv4(text); // four decimal numbers 0..255, no leading zeros
    return v === null ? null : formatIpv4(v);
  }
  if (!text.includes(':')) return null;
  const w = parseIpv6(text);
  return w === null ? null : formatIpv6(w);
}

/** A v1 port (decimal 0..65535, no leading zeros), or -1. */
function v1Port(text: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return -1;
  const n = Number(text);
  return n > 65535 ? -1 : n;
}

function decodeV2(b: Buffer): DecodedProxyHeader | 'incomplete' | 'invalid' {
  const n = Math.min(b.length, 12);
  for (let i = 0; i < n; i++) if (b[i] !== PP2_SIGNATURE[i]) return 'invalid';
  if (b.length < 16) return 'incomplete';
  if (b[12]! >> 4 !== 2) return 'invalid';
  const cmd = b[12]! & 0x0f;
  const len = b.readUInt16BE(14);
  if (b.length < 16 + len) return 'incomplete';
  const fam = b[13]! >> 4;
  const proto = b[13]! & 0x0f;
  // commands LOCAL (0) and PROXY (1); families UNSPEC, INET, INET6, UNIX; transports UNSPEC,
  // STREAM, DGRAM: any other value is refused. LOCAL, UNSPEC and UNIX carry no address this
  // decoder reports (the connection's own endpoints stand).
  if (cmd > 1) return 'invalid';
  if (cmd === 0) return { version: 2, length: 16 + len, addrs: null };
  if (fam > 3 || proto > 2) return 'invalid';
  if (fam === 0 || fam === 3 || proto === 0) return { version: 2, length: 16 + len, addrs: null };
  const need = fam === 1 ? 12 : 36;
  if (len < need) return 'invalid';
  const o = 16;
  let src: string;
  let dst: string;
  let po: number;
  if (fam === 1) {
    src = `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
    dst = `${b[o + 4]}.${b[o + 5]}.${b[o + 6]}.${b[o + 7]}`;
    po = o + 8;
  } else {
    const six = (at: number): string =>
      formatIpv6([0, 1, 2, 3].map((i) => b.readUInt32BE(at + 4 * i)));
    src = six(o);
    dst = six(o + 16);
    po = o + 32;
  }
  return {
    version: 2,
    length: 16 + len,
    addrs: {
      af: fam === 2 ? AF_INET6 : 2,
      transport: proto === 2 ? 'udp' : 'tcp',
      srcAddr: src,
      dstAddr: dst,
      srcPort: b.readUInt16BE(po),
      dstPort: b.readUInt16BE(po + 2),
    },
  };
}
