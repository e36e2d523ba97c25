/**
 * The fast path of decoding: from an Ethernet frame (optionally 802.1Q tagged) straight to the
 * 5-tuple the connection table is keyed by, for the common case — IPv4 without options, or IPv6
 * without extension headers, carrying TCP or UDP (a data offset / UDP length the packet holds),
 * not a non-first fragment. Everything else (ARP, ICMP, SCTP with its chunk walk, IPv4 options,
 * IPv6 extension headers, fragments, tunnels) answers TUPLE_SLOW, and
 * the caller runs the full `decodeEthernet` into a `PacketView`. Every read is bounds-checked;
 * nothing is allocated.
 */

/** Results of `decodeTuple`. */
export const TUPLE_OK = 0;
/** Not malformed, but not the fast path's business: decode fully. */
export const TUPLE_SLOW = 1;
/** Truncated or inconsistent headers. */
export const TUPLE_MALFORMED = 2;

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;

/** A reused, caller-owned 5-tuple. Every field is set in the constructor (stable shape). */
export class Tuple {
  /** 2 or 10. */
  af = 0;
  /** 6 or 17. */
  protocol = 0;
  /** Source and destination addresses, host-order words (IPv4 in word 0). */
  readonly saddr = new Uint32Array(4);
  readonly daddr = new Uint32Array(4);
  sport = 0;
  dport = 0;
  /** Offset of the IP header in the buffer. */
  l3Offset = 0;
  /** Offset of the transport header in the buffer. */
  l4Offset = 0;
  /** IP total length (IPv4) or header + payload length (IPv6): the "packet length" of statistics. */
  ipLength = 0;
  /** TCP flags byte (0 for other protocols). */
  tcpFlags = 0;
  /** IPv4 TTL or IPv6 hop limit. */
  ttl = 0;
}

/**
 * Decodes the 5-tuple of the frame `buf[off, off + len)` into `t`. Returns TUPLE_OK,
 * TUPLE_SLOW or TUPLE_MALFORMED; on anything but TUPLE_OK the fields of `t` are unspecified.
 */
export function decodeTuple(t: Tuple, buf: Uint8Array, off: number, len: number): number {
  let end = off + len;
  if (end > buf.length) end = buf.length;
  let p = off + 12;
  if (p + 2 > end) return TUPLE_MALFORMED;
  let type = (buf[p]! << 8) | buf[p + 1]!;
  p += 2;
  if (type === ETH_P_8021Q || type === ETH_P_8021AD) {
    if (p + 4 > end) return TUPLE_MALFORMED;
    type = (buf[p + 2]! << 8) | buf[p + 3]!;
    p += 4;
    if (type === ETH_P_8021Q) {
      if (p + 4 > end) return TUPLE_MALFORMED;
      type = (buf[p + 2]! << 8) | buf[p + 3]!;
      p += 4;
    }
  }
  t.l3Offset = p;
  let l4: number;
  let l4end: number;
  if (type === ETH_P_IP) {
    if (p + 20 > end) return TUPLE_MALFORMED;
    const vihl = buf[p]!;
    const ihl = (vihl & 15) << 2;
    if (vihl >>> 4 !== 4 || ihl < 20) return TUPLE_MALFORMED;
    const total = (buf[p + 2]! << 8) | buf[p + 3]!;
    if (total < ihl || p + total > end) return TUPLE_MALFORMED;
    // options are for the full decoder to judge (as the host's ip_options_compile would)
    if (ihl !== 20) return TUPLE_SLOW;
    // a fragment other than the first carries no ports
    if (((buf[p + 6]! & 0x1f) | buf[p + 7]!) !== 0) return TUPLE_SLOW;
    const proto = buf[p + 9]!;
    if (proto !== 6 && proto !== 17) return TUPLE_SLOW;
    const s = t.saddr;
    const d = t.daddr;
    if (t.af === 10) s[1] = s[2] = s[3] = d[1] = d[2] = d[3] = 0; // after an IPv6 frame
    t.af = 2;
    t.protocol = proto;
    t.ttl = buf[p + 8]!;
    t.ipLength = total;
    s[0] = (buf[p + 12]! << 24) | (buf[p + 13]! << 16) | (buf[p + 14]! << 8) | buf[p + 15]!;
    d[0] = (buf[p + 16]! << 24) | (buf[p + 17]! << 16) | (buf[p + 18]! << 8) | buf[p + 19]!;
    l4 = p + ihl;
    l4end = p + total;
  } else if (type === ETH_P_IPV6) {
    if (p + 40 > end) return TUPLE_MALFORMED;
    if (buf[p]! >>> 4 !== 6) return TUPLE_MALFORMED;
    const plen = (buf[p + 4]! << 8) | buf[p + 5]!;
    if (p + 40 + plen > end) return TUPLE_MALFORMED;
    const nh = buf[p + 6]!;
    if (nh !== 6 && nh !== 17) return TUPLE_SLOW;
    t.af = 10;
    t.protocol = nh;
    t.ttl = buf[p + 7]!;
    t.ipLength = 40 + plen;
    const s = t.saddr;
    const d = t.daddr;
    for (let i = 0; i < 4; i++) {
      const a = p + 8 + 4 * i;
      s[i] = (buf[a]! << 24) | (buf[a + 1]! << 16) | (buf[a + 2]! << 8) | buf[a + 3]!;
      const b = a + 16;
      d[i] = (buf[b]! << 24) | (buf[b + 1]! << 16) | (buf[b + 2]! << 8) | buf[b + 3]!;
    }
    l4 = p + 40;
    l4end = l4 + plen;
  } else return TUPLE_SLOW;
  t.l4Offset = l4;
  if (t.protocol === 6) {
    const doff = buf[l4 + 12]! >>> 4;
    if (l4 + 20 > l4end || doff < 5) return TUPLE_MALFORMED;
    // a data offset beyond the segment: the full decoder's verdict
    if (l4 + (doff << 2) > l4end) return TUPLE_SLOW;
    t.tcpFlags = buf[l4 + 13]!;
  } else {
    if (l4 + 8 > l4end) return TUPLE_MALFORMED;
    const ulen = (buf[l4 + 4]! << 8) | buf[l4 + 5]!;
    // a UDP length the datagram does not hold: the full decoder's verdict
    if (ulen < 8 || l4 + ulen > l4end) return TUPLE_SLOW;
    t.tcpFlags = 0;
  }
  t.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
  t.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
  return TUPLE_OK;
}
