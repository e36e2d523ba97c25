/**
 * NAT rewrites for the NAT (masquerading) transmitter (spec §5.5): change a decoded packet's
 * destination or source address and port in place and patch the IPv4 header checksum and the
 * TCP/UDP checksum incrementally (RFC 1624; the kernel's `tcp_fast_csum_update`), so the cost does
 * not depend on the payload. An IPv4 UDP datagram without a checksum (0) keeps none (spec §4.2: "if
 * the UDP checksum field is 0 it is left 0"); over IPv6, where 0 is not allowed, it gets a full one,
 * as the kernel's `udp_dnat_handler` / `udp_snat_handler` give every such datagram, except a first
 * fragment, whose datagram is not all here; a computed 0 is sent as 0xFFFF (RFC 768).
 * SCTP's CRC32c covers no addresses and is recomputed only when the port changes (as
 * `sctp_dnat_handler` does). ICMP-quoted packets (`view.embedded`) have
 * their ports and addresses rewritten but no L4 checksum (the caller recomputes the ICMP checksum).
 * The view's fields are updated to match.
 */
import { IPPROTO } from './constants.js';
import { csumReplace16, csumReplace32, csumReplace128, l4Checksum } from './checksum.js';
import { writeSctpChecksum } from './crc32c.js';
import type { PacketView } from './view.js';

const UDP = IPPROTO.UDP;
const OLD6 = new Uint32Array(4);

/**
 * A UDP datagram that carried no checksum (0) after its rewrite: IPv4 leaves it without one (spec
 * §4.2); IPv6 gets the full checksum over the new pseudo-header, unless it is the first fragment of
 * several (the rest of the datagram is not here).
 */
function udpFull(v: PacketView, buf: Uint8Array, co: number): void {
  if (v.af !== 10 || v.mf) return;
  const c = l4Checksum(v.af, v.src, v.dst, UDP, buf, v.l4Offset, v.ipEnd - v.l4Offset);
  buf[co] = c >>> 8;
  buf[co + 1] = c;
  v.l4Checksum = c;
}

/** Which end of the flow a rewrite changes. */
export const NAT_SIDE = { SRC: 0, DST: 1 } as const;

function l4Fix(
  v: PacketView,
  buf: Uint8Array,
  side: number,
  oldPort: number,
  port: number,
): number {
  // returns the offset of the L4 checksum field to patch, or -1
  const l4 = v.l4Offset;
  const proto = v.protocol;
  if (proto === IPPROTO.TCP || proto === IPPROTO.UDP || proto === IPPROTO.SCTP) {
    const changed = port >= 0 && port !== oldPort;
    if (changed) {
      const po = l4 + (side === 0 ? 0 : 2);
      buf[po] = port >>> 8;
      buf[po + 1] = port;
      if (side === 0) v.srcPort = port;
      else v.dstPort = port;
    }
    if (v.embedded) return -1;
    if (proto === IPPROTO.TCP) return l4 + 16;
    if (proto === IPPROTO.UDP) return l4 + 6;
    if (!changed) return -1;
    writeSctpChecksum(buf, l4, v.l4Length);
    v.u32[4] = buf[l4 + 8]! | (buf[l4 + 9]! << 8) | (buf[l4 + 10]! << 16) | (buf[l4 + 11]! << 24);
  }
  return -1;
}

/**
 * Rewrites the IPv4 destination (`side` 1) or source (`side` 0) address to `addr` (host order) and,
 * when `port` >= 0 and the transport header was parsed, the port; patches checksums incrementally.
 */
export function natRewrite4(v: PacketView, side: number, addr: number, port: number): void {
  const buf = v.buf;
  const l3 = v.l3Offset;
  const ao = l3 + (side === 0 ? 12 : 16);
  const words = side === 0 ? v.src : v.dst;
  const old = words[0]!;
  const a = addr >>> 0;
  buf[ao] = a >>> 24;
  buf[ao + 1] = a >>> 16;
  buf[ao + 2] = a >>> 8;
  buf[ao + 3] = a;
  words[0] = a;
  let c = csumReplace32((buf[l3 + 10]! << 8) | buf[l3 + 11]!, old, a);
  buf[l3 + 10] = c >>> 8;
  buf[l3 + 11] = c;
  v.ipChecksum = c;
  if (!v.l4Parsed) return;
  const oldPort = side === 0 ? v.srcPort : v.dstPort;
  const co = l4Fix(v, buf, side, oldPort, port);
  if (co < 0) return;
  c = (buf[co]! << 8) | buf[co + 1]!;
  const udp = v.protocol === IPPROTO.UDP;
  if (udp && c === 0) {
    udpFull(v, buf, co);
    return;
  }
  c = csumReplace32(c, old, a);
  if (port >= 0) c = csumReplace16(c, oldPort, port);
  if (udp && c === 0) c = 0xffff;
  buf[co] = c >>> 8;
  buf[co + 1] = c;
  v.l4Checksum = c;
}

/** `natRewrite4(v, DST, addr, port)`: the NAT transmitter's DNAT toward a real server. */
export function natRewriteDst4(v: PacketView, addr: number, port: number): void {
  const proto = v.protocol;
  if (!v.l4Parsed || v.embedded || port < 0 || (proto !== IPPROTO.TCP && proto !== UDP)) {
    natRewrite4(v, 1, addr, port);
    return;
  }
  // The common case (TCP/UDP, port given) in one pass: one RFC 1624 sum covers address and port.
  const buf = v.buf;
  const l3 = v.l3Offset;
  const l4 = v.l4Offset;
  const old = v.dst[0]!;
  const a = addr >>> 0;
  buf[l3 + 16] = a >>> 24;
  buf[l3 + 17] = a >>> 16;
  buf[l3 + 18] = a >>> 8;
  buf[l3 + 19] = a;
  v.dst[0] = a;
  let c = csumReplace32((buf[l3 + 10]! << 8) | buf[l3 + 11]!, old, a);
  buf[l3 + 10] = c >>> 8;
  buf[l3 + 11] = c;
  v.ipChecksum = c;
  const oldPort = v.dstPort;
  buf[l4 + 2] = port >>> 8;
  buf[l4 + 3] = port;
  v.dstPort = port;
  const co = proto === IPPROTO.TCP ? l4 + 16 : l4 + 6;
  c = (buf[co]! << 8) | buf[co + 1]!;
  if (proto === UDP && c === 0) {
    udpFull(v, buf, co);
    return;
  }
  // ~HC + ~old address (two words) + new address + ~old port + new port, folded twice.
  let s =
    (~c & 0xffff) +
    (~(old >>> 16) & 0xffff) +
    (~old & 0xffff) +
    (a >>> 16) +
    (a & 0xffff) +
    (~oldPort & 0xffff) +
    (port & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  c = ~s & 0xffff;
  if (c === 0 && proto === UDP) c = 0xffff;
  buf[co] = c >>> 8;
  buf[co + 1] = c;
  v.l4Checksum = c;
}

/** `natRewrite4(v, SRC, addr, port)`: the out-path SNAT back to the virtual address. */
export function natRewriteSrc4(v: PacketView, addr: number, port: number): void {
  natRewrite4(v, 0, addr, port);
}

/** IPv6 twin of `natRewrite4`: `addr` is four host-order words; no IP header checksum exists. */
export function natRewrite6(
  v: PacketView,
  side: number,
  addr: ArrayLike<number>,
  port: number,
): void {
  const buf = v.buf;
  const ao = v.l3Offset + (side === 0 ? 8 : 24);
  const words = side === 0 ? v.src : v.dst;
  const o0 = words[0]!;
  const o1 = words[1]!;
  const o2 = words[2]!;
  const o3 = words[3]!;
  for (let i = 0; i < 4; i++) {
    const a = addr[i]! >>> 0;
    const o = ao + 4 * i;
    buf[o] = a >>> 24;
    buf[o + 1] = a >>> 16;
    buf[o + 2] = a >>> 8;
    buf[o + 3] = a;
    words[i] = a;
  }
  if (!v.l4Parsed) return;
  const oldPort = side === 0 ? v.srcPort : v.dstPort;
  const co = l4Fix(v, buf, side, oldPort, port);
  if (co < 0) return;
  let c = (buf[co]! << 8) | buf[co + 1]!;
  if (c === 0 && v.protocol === IPPROTO.UDP) {
    udpFull(v, buf, co);
    return;
  }
  OLD6[0] = o0;
  OLD6[1] = o1;
  OLD6[2] = o2;
  OLD6[3] = o3;
  c = csumReplace128(c, OLD6, words);
  if (port >= 0) c = csumReplace16(c, oldPort, port);
  if (c === 0 && v.protocol === IPPROTO.UDP) c = 0xffff;
  buf[co] = c >>> 8;
  buf[co + 1] = c;
  v.l4Checksum = c;
}

/** Sets the IPv4 TTL / IPv6 hop limit to `ttl`, patching the IPv4 header checksum incrementally. */
export function setTtl(v: PacketView, ttl: number): void {
  const buf = v.buf;
  const l3 = v.l3Offset;
  if (v.ipVersion === 6) {
    buf[l3 + 7] = ttl;
  } else {
    const old = (buf[l3 + 8]! << 8) | buf[l3 + 9]!;
    const neu = ((ttl & 0xff) << 8) | buf[l3 + 9]!;
    buf[l3 + 8] = ttl;
    const c = csumReplace16((buf[l3 + 10]! << 8) | buf[l3 + 11]!, old, neu);
    buf[l3 + 10] = c >>> 8;
    buf[l3 + 11] = c;
    v.ipChecksum = c;
  }
  v.ttl = ttl & 0xff;
}
