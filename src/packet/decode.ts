/**
 * Hot-path decoders: fill a caller-owned `PacketView` from a frame in the caller's Buffer without
 * allocating. Every read is preceded by a bounds check against the frame's end, so any byte
 * sequence is safe: a truncated or malformed frame yields `view.malformed` (a MALFORMED code) and
 * `view.reason`, never an exception and never a read past the end.
 *
 * Layers: Ethernet II with up to two 802.1Q/802.1ad tags → ARP | IPv4 (options validated) | IPv6
 * (hop-by-hop, routing, fragment and destination-options headers walked) → TCP (options
 * validated) | UDP | ICMP | ICMPv6 | SCTP (chunk walk) | GRE | IPIP / IPv6-in-IP. GUE sits on a
 * configured UDP port, so `decodeGue` is called explicitly. ICMP errors embed the offending
 * packet's headers: `decodeIcmpInner` decodes them into a second view (spec §4.5).
 */
import { ETH_P, IPPROTO, MALFORMED, MALFORMED_REASON } from './constants.js';
import { PacketView, TUNNEL, U32 } from './view.js';

/** How many IPv6 extension headers the walk follows before giving up. */
export const MAX_IPV6_EXT_HEADERS = 8;

/**
 * The length of the IPv6 extension header of type `nh` at `buf[q]`: a fragment header is 8 bytes,
 * AH counts 4-byte words less two (RFC 4302 §2.2), the others 8-byte words less one (RFC 8200 §4).
 */
export function ipv6ExtLength(buf: Uint8Array, q: number, nh: number): number {
  if (nh === IPPROTO.FRAGMENT) return 8;
  return nh === IPPROTO.AH ? (buf[q + 1]! + 2) << 2 : (buf[q + 1]! + 1) << 3;
}
/** How many SCTP chunks the walk validates. */
export const MAX_SCTP_CHUNKS = 64;

const OK_REASON = MALFORMED_REASON[0]!;

/**
 * Records a malformed verdict and puts the fields of the failing layer and those above it back to
 * their defaults, so nothing from an earlier frame survives in them.
 */
function fail(v: PacketView, code: number): number {
  v.malformed = code;
  v.reason = MALFORMED_REASON[code]!;
  if (code <= MALFORMED.ARP_BAD_FORMAT) resetArp(v);
  if (code <= MALFORMED.IPV6_BAD_FRAGMENT || code === MALFORMED.IPV4_BAD_FRAGMENT) resetL3(v);
  resetL4(v);
  return code;
}

function resetArp(v: PacketView): void {
  v.arpOp = 0;
  v.arpShaOffset = -1;
  v.arpThaOffset = -1;
  v.u32[U32.ARP_SPA] = 0;
  v.u32[U32.ARP_TPA] = 0;
  v.arpState = false;
}

function resetL3(v: PacketView): void {
  v.l3State = 0;
  v.u32[U32.IP_ID] = 0;
  v.l3Offset = -1;
  v.ipVersion = 0;
  v.af = 0;
  v.ipHeaderLength = 0;
  v.ipOptionsLength = 0;
  v.ipTotalLength = 0;
  v.ipEnd = 0;
  v.protocol = -1;
  v.tos = 0;
  v.flowLabel = 0;
  v.ttl = 0;
  v.ipChecksum = 0;
  v.df = false;
  v.mf = false;
  v.fragOffset = 0;
  v.isFragment = false;
  v.fragHeaderOffset = -1;
  const s = v.src;
  const d = v.dst;
  s[0] = s[1] = s[2] = s[3] = 0;
  d[0] = d[1] = d[2] = d[3] = 0;
}

function resetL4(v: PacketView): void {
  v.l4State = 0;
  const u = v.u32;
  u[0] = u[1] = u[2] = u[3] = u[4] = 0;
  v.l4Offset = -1;
  v.l4Length = 0;
  v.l4Parsed = false;
  v.srcPort = 0;
  v.dstPort = 0;
  v.l4Checksum = 0;
  v.tcpFlags = 0;
  v.tcpWindow = 0;
  v.tcpHeaderLength = 0;
  v.tcpOptionsOk = true;
  v.udpLength = 0;
  v.icmpType = -1;
  v.icmpCode = -1;
  v.icmpIsError = false;
  v.sctpChunkType = -1;
  v.sctpNextChunkType = -1;
  v.sctpChunksOk = true;
  v.sctpChunkCount = 0;
  v.tunnelType = 0;
  v.innerOffset = -1;
  v.innerProtocol = -1;
  v.tunnelFlags = 0;
  v.greChecksum = -1;
  v.remcsumStart = -1;
  v.remcsumOffset = -1;
  v.payloadOffset = -1;
  v.payloadLength = 0;
}

function begin(v: PacketView, buf: Uint8Array, off: number, len: number): number {
  v.buf = buf;
  // Clamp the frame to the buffer so no later check can be fooled by a bad length argument.
  let start = off;
  if (!(start >= 0)) start = 0;
  if (start > buf.length) start = buf.length;
  let end = start + len;
  if (!(end <= buf.length)) end = buf.length;
  if (end < start) end = start;
  v.start = start | 0;
  v.end = end | 0;
  if (v.malformed !== 0) {
    v.malformed = 0;
    v.reason = OK_REASON;
  }
  v.embedded = false;
  return v.start;
}

/**
 * Decodes an Ethernet II frame of `len` bytes at `buf[off]` into `v`. Returns 0 or a MALFORMED
 * code (also left in `v.malformed`, with `v.reason`).
 */
export function decodeEthernet(v: PacketView, buf: Uint8Array, off: number, len: number): number {
  let p = begin(v, buf, off, len);
  const end = v.end;
  v.vlanCount = 0;
  v.vlanId = 0;
  v.vlanPcp = 0;
  v.vlanId2 = 0;
  v.vlanTpid = 0;
  v.etherType = 0;
  if (p + 14 > end) {
    v.l2Offset = -1;
    return fail(v, MALFORMED.ETH_TRUNCATED);
  }
  v.l2Offset = p;
  let type = (buf[p + 12]! << 8) | buf[p + 13]!;
  p += 14;
  while (type === ETH_P.VLAN || type === ETH_P.QINQ) {
    if (v.vlanCount === 2) return fail(v, MALFORMED.VLAN_TOO_MANY);
    if (p + 4 > end) return fail(v, MALFORMED.VLAN_TRUNCATED);
    const tci = (buf[p]! << 8) | buf[p + 1]!;
    if (v.vlanCount === 0) {
      v.vlanTpid = type;
      v.vlanId = tci & 0xfff;
      v.vlanPcp = tci >>> 13;
    } else v.vlanId2 = tci & 0xfff;
    v.vlanCount++;
    type = (buf[p + 2]! << 8) | buf[p + 3]!;
    p += 4;
  }
  v.etherType = type;
  if (type === ETH_P.IPV4 || type === ETH_P.IPV6) {
    if (v.arpState) resetArp(v);
    // the EtherType names the version (ip_rcv_core / ip6_rcv_core drop a mismatch)
    if (p < end && buf[p]! >>> 4 !== (type === ETH_P.IPV4 ? 4 : 6))
      return fail(v, MALFORMED.IP_BAD_VERSION);
    return decodeL3(v, buf, p, end, false);
  }
  if (v.l3State !== 0) resetL3(v);
  if (v.l4State !== 0) resetL4(v);
  if (type === ETH_P.ARP) return decodeArp(v, buf, p, end);
  if (v.arpState) resetArp(v);
  v.payloadOffset = p;
  v.payloadLength = end - p;
  return 0;
}

/** Decodes a raw IP packet (IPv4 or IPv6 by its version nibble) of `len` bytes at `buf[off]`. */
export function decodeIp(v: PacketView, buf: Uint8Array, off: number, len: number): number {
  const p = begin(v, buf, off, len);
  v.l2Offset = -1;
  v.vlanCount = 0;
  v.vlanId = 0;
  v.vlanPcp = 0;
  v.vlanId2 = 0;
  v.vlanTpid = 0;
  v.etherType = 0;
  if (v.arpState) resetArp(v);
  return decodeL3(v, buf, p, v.end, false);
}

/**
 * Decodes the packet embedded in the ICMP/ICMPv6 error `outer` (its IP header and at least the
 * first 4 transport bytes, as RFC 792 / RFC 4443 quote it) into `inner`. The embedded packet may be
 * cut short: its total length may exceed what is quoted, and only ports (plus TCP sequence / SCTP
 * tag when 8 bytes are present) are read. Returns 0 or a MALFORMED code.
 */
export function decodeIcmpInner(inner: PacketView, outer: PacketView): number {
  const buf = outer.buf;
  const p = begin(inner, buf, outer.l4Offset + 8, outer.ipEnd - outer.l4Offset - 8);
  inner.l2Offset = -1;
  inner.vlanCount = 0;
  inner.vlanId = 0;
  inner.vlanPcp = 0;
  inner.vlanId2 = 0;
  inner.vlanTpid = 0;
  inner.etherType = 0;
  inner.embedded = true;
  if (inner.arpState) resetArp(inner);
  if (!outer.icmpIsError || outer.malformed !== 0) {
    resetL3(inner);
    return fail(inner, MALFORMED.ICMP_TRUNCATED);
  }
  return decodeL3(inner, buf, p, inner.end, true);
}

/** Decodes the IP packet a tunnel (`outer.innerOffset`, from IPIP, GRE or `decodeGue`) carries. */
export function decodeTunnelInner(inner: PacketView, outer: PacketView): number {
  if (outer.innerOffset < 0) {
    begin(inner, outer.buf, 0, 0);
    resetArp(inner);
    return fail(inner, MALFORMED.IP_TRUNCATED);
  }
  return decodeIp(
    inner,
    outer.buf,
    outer.innerOffset,
    outer.payloadOffset + outer.payloadLength - outer.innerOffset,
  );
}

function decodeArp(v: PacketView, buf: Uint8Array, p: number, end: number): number {
  if (p + 8 > end) return fail(v, MALFORMED.ARP_TRUNCATED);
  const htype = (buf[p]! << 8) | buf[p + 1]!;
  const ptype = (buf[p + 2]! << 8) | buf[p + 3]!;
  if (htype !== 1 || ptype !== ETH_P.IPV4 || buf[p + 4] !== 6 || buf[p + 5] !== 4) {
    return fail(v, MALFORMED.ARP_BAD_FORMAT);
  }
  if (p + 28 > end) return fail(v, MALFORMED.ARP_TRUNCATED);
  v.arpOp = (buf[p + 6]! << 8) | buf[p + 7]!;
  v.arpShaOffset = p + 8;
  v.u32[U32.ARP_SPA] =
    (buf[p + 14]! << 24) | (buf[p + 15]! << 16) | (buf[p + 16]! << 8) | buf[p + 17]!;
  v.arpThaOffset = p + 18;
  v.u32[U32.ARP_TPA] =
    (buf[p + 24]! << 24) | (buf[p + 25]! << 16) | (buf[p + 26]! << 8) | buf[p + 27]!;
  v.arpState = true;
  v.payloadOffset = p + 28;
  v.payloadLength = end - p - 28;
  return 0;
}

function decodeL3(v: PacketView, buf: Uint8Array, p: number, end: number, emb: boolean): number {
  if (p + 1 > end) return fail(v, MALFORMED.IP_TRUNCATED);
  const ver = buf[p]! >>> 4;
  if (ver === 4) return decodeIpv4(v, buf, p, end, emb);
  if (ver === 6) return decodeIpv6(v, buf, p, end, emb);
  return fail(v, MALFORMED.IP_BAD_VERSION);
}

function decodeIpv4(v: PacketView, buf: Uint8Array, p: number, end: number, emb: boolean): number {
  if (p + 20 > end) return fail(v, MALFORMED.IP_TRUNCATED);
  if (v.l3State !== 4) {
    if (v.l3State !== 0) resetL3(v);
    v.l3State = 4;
  }
  if (v.etherType === 0) v.etherType = ETH_P.IPV4;
  v.l3Offset = p;
  v.ipVersion = 4;
  v.af = 2;
  const ihl = (buf[p]! & 15) << 2;
  if (ihl < 20 || p + ihl > end) return fail(v, MALFORMED.IPV4_BAD_IHL);
  const total = (buf[p + 2]! << 8) | buf[p + 3]!;
  let ipEnd = p + total;
  if (total < ihl) return fail(v, MALFORMED.IPV4_BAD_TOTAL_LENGTH);
  if (ipEnd > end) {
    if (!emb) return fail(v, MALFORMED.IPV4_BAD_TOTAL_LENGTH);
    ipEnd = end;
  }
  v.ipHeaderLength = ihl;
  v.ipOptionsLength = ihl - 20;
  v.ipTotalLength = total;
  v.ipEnd = ipEnd;
  v.tos = buf[p + 1]!;
  v.u32[U32.IP_ID] = (buf[p + 4]! << 8) | buf[p + 5]!;
  const frag = (buf[p + 6]! << 8) | buf[p + 7]!;
  v.df = (frag & 0x4000) !== 0;
  v.mf = (frag & 0x2000) !== 0;
  const fragOff = (frag & 0x1fff) << 3;
  v.fragOffset = fragOff;
  v.isFragment = v.mf || fragOff !== 0;
  v.ttl = buf[p + 8]!;
  const proto = buf[p + 9]!;
  v.protocol = proto;
  v.ipChecksum = (buf[p + 10]! << 8) | buf[p + 11]!;
  v.src[0] = (buf[p + 12]! << 24) | (buf[p + 13]! << 16) | (buf[p + 14]! << 8) | buf[p + 15]!;
  v.dst[0] = (buf[p + 16]! << 24) | (buf[p + 17]! << 16) | (buf[p + 18]! << 8) | buf[p + 19]!;
  // a lenient view leaves a fragment reaching past 65535 bytes to reassembly, which drops its
  // datagram (ip_frag_reasm); in transit it is forwarded as it is
  if (fragOff + total - ihl > 65535 && !v.lenient) return fail(v, MALFORMED.IPV4_BAD_FRAGMENT);
  const hdrEnd = p + ihl;
  // a lenient view (the packet engine's) leaves IPv4 options to ip_options_compile
  // (dataplane/packet/ipopt.ts), which answers a bad one with a parameter problem
  if (ihl > 20 && !v.lenient && !tcpOptionsValid(buf, p + 20, hdrEnd))
    return fail(v, MALFORMED.IPV4_BAD_OPTIONS);
  const partial = v.mf && fragOff === 0 && v.lenient && !emb;
  return decodeL4(v, buf, hdrEnd, ipEnd, proto, fragOff !== 0, emb, partial);
}

function decodeIpv6(v: PacketView, buf: Uint8Array, p: number, end: number, emb: boolean): number {
  if (p + 40 > end) return fail(v, MALFORMED.IP_TRUNCATED);
  if (v.l3State !== 6) {
    if (v.l3State !== 0) resetL3(v);
    v.l3State = 6;
  }
  if (v.etherType === 0) v.etherType = ETH_P.IPV6;
  v.l3Offset = p;
  v.fragHeaderOffset = -1;
  v.fragOffset = 0;
  v.mf = false;
  v.isFragment = false;
  v.u32[U32.IP_ID] = 0;
  v.ipVersion = 6;
  v.af = 10;
  v.tos = ((buf[p]! & 15) << 4) | (buf[p + 1]! >>> 4);
  v.flowLabel = ((buf[p + 1]! & 15) << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
  const plen = (buf[p + 4]! << 8) | buf[p + 5]!;
  let nh = buf[p + 6]!;
  v.ttl = buf[p + 7]!;
  const s = v.src;
  const d = v.dst;
  for (let i = 0; i < 4; i++) {
    const a = p + 8 + 4 * i;
    s[i] = (buf[a]! << 24) | (buf[a + 1]! << 16) | (buf[a + 2]! << 8) | buf[a + 3]!;
    const b = a + 16;
    d[i] = (buf[b]! << 24) | (buf[b + 1]! << 16) | (buf[b + 2]! << 8) | buf[b + 3]!;
  }
  v.ipTotalLength = 40 + plen;
  let ipEnd = p + 40 + plen;
  if (ipEnd > end) {
    if (!emb) return fail(v, MALFORMED.IPV6_BAD_PAYLOAD_LENGTH);
    ipEnd = end;
  }
  v.ipEnd = ipEnd;
  // RFC 8200 §4: walk hop-by-hop (0), routing (43), fragment (44), authentication (51) and
  // destination options (60), as ipv6_find_hdr does for IPVS (it steps over AH: ESP ends the walk).
  let q = p + 40;
  let n = 0;
  let nonFirst = false;
  while (
    nh === IPPROTO.HOPOPTS ||
    nh === IPPROTO.ROUTING ||
    nh === IPPROTO.DSTOPTS ||
    nh === IPPROTO.FRAGMENT ||
    nh === IPPROTO.AH
  ) {
    if (++n > MAX_IPV6_EXT_HEADERS) return fail(v, MALFORMED.IPV6_EXT_TOO_MANY);
    if (nh === IPPROTO.FRAGMENT) {
      if (q + 8 > ipEnd) return fail(v, MALFORMED.IPV6_EXT_TRUNCATED);
      if (v.fragHeaderOffset >= 0) return fail(v, MALFORMED.IPV6_BAD_FRAGMENT);
      const fo = (buf[q + 2]! << 8) | buf[q + 3]!;
      v.fragHeaderOffset = q;
      v.fragOffset = fo & 0xfff8;
      v.mf = (fo & 1) !== 0;
      v.isFragment = v.mf || v.fragOffset !== 0;
      v.u32[U32.IP_ID] =
        (buf[q + 4]! << 24) | (buf[q + 5]! << 16) | (buf[q + 6]! << 8) | buf[q + 7]!;
      nh = buf[q]!;
      q += 8;
      if (v.fragOffset !== 0) {
        nonFirst = true; // later headers live in the first fragment only
        break;
      }
      continue;
    }
    if (q + 2 > ipEnd) return fail(v, MALFORMED.IPV6_EXT_TRUNCATED);
    const l = ipv6ExtLength(buf, q, nh);
    if (q + l > ipEnd) return fail(v, MALFORMED.IPV6_EXT_TRUNCATED);
    nh = buf[q]!;
    q += l;
  }
  v.protocol = nh;
  v.ipHeaderLength = q - p;
  const partial = v.mf && !nonFirst && v.lenient && !emb;
  return decodeL4(v, buf, q, ipEnd, nh, nonFirst, emb, partial);
}

function decodeL4(
  v: PacketView,
  buf: Uint8Array,
  p: number,
  ipEnd: number,
  proto: number,
  nonFirst: boolean,
  emb: boolean,
  partial = false,
): number {
  // Fields of the protocol the previous frame filled are cleared only when the protocol changes.
  const key = nonFirst ? 0 : emb ? proto + 1000 : proto + 1;
  if (v.l4State !== key) {
    if (v.l4State !== 0) resetL4(v);
    v.l4State = key;
  }
  v.l4Offset = p;
  const avail = ipEnd - p;
  v.l4Length = avail;
  v.payloadOffset = p;
  v.payloadLength = avail;
  if (nonFirst) return 0;
  // Small per-protocol functions keep this dispatcher inlinable into the IP decoders.
  let r: number;
  if (proto === IPPROTO.TCP) {
    r = emb
      ? embeddedPorts(v, buf, p, avail, MALFORMED.TCP_TRUNCATED)
      : decodeTcp(v, buf, p, avail);
  } else if (proto === IPPROTO.UDP) {
    r = emb
      ? embeddedPorts(v, buf, p, avail, MALFORMED.UDP_TRUNCATED)
      : decodeUdp(v, buf, p, avail);
  } else r = decodeOtherL4(v, buf, p, avail, proto, emb);
  if (r === 0 || !partial) return r;
  // a first fragment (lenient view) whose transport header is cut or odd: reassembly judges the
  // datagram (ip_defrag takes any first fragment), the layer stays unparsed meanwhile
  v.malformed = 0;
  v.reason = OK_REASON;
  v.l4State = 0;
  v.l4Offset = p;
  v.l4Length = avail;
  v.payloadOffset = p;
  v.payloadLength = avail;
  return 0;
}

function decodeTcp(v: PacketView, buf: Uint8Array, p: number, avail: number): number {
  if (avail < 20) return fail(v, MALFORMED.TCP_TRUNCATED);
  const doff = (buf[p + 12]! >>> 4) << 2;
  if (doff < 20 || doff > avail) return fail(v, MALFORMED.TCP_BAD_DATA_OFFSET);
  const optionsOk = doff === 20 || tcpOptionsValid(buf, p + 20, p + doff);
  if (!optionsOk && !v.lenient) return fail(v, MALFORMED.TCP_BAD_OPTIONS);
  v.tcpOptionsOk = optionsOk;
  v.srcPort = (buf[p]! << 8) | buf[p + 1]!;
  v.dstPort = (buf[p + 2]! << 8) | buf[p + 3]!;
  const u = v.u32;
  u[0] = (buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!;
  u[1] = (buf[p + 8]! << 24) | (buf[p + 9]! << 16) | (buf[p + 10]! << 8) | buf[p + 11]!;
  v.tcpHeaderLength = doff;
  v.tcpFlags = buf[p + 13]!;
  v.tcpWindow = (buf[p + 14]! << 8) | buf[p + 15]!;
  v.l4Checksum = (buf[p + 16]! << 8) | buf[p + 17]!;
  v.l4Parsed = true;
  v.payloadOffset = p + doff;
  v.payloadLength = avail - doff;
  return 0;
}

function decodeUdp(v: PacketView, buf: Uint8Array, p: number, avail: number): number {
  if (avail < 8) return fail(v, MALFORMED.UDP_TRUNCATED);
  let ulen = (buf[p + 4]! << 8) | buf[p + 5]!;
  if (ulen < 8) return fail(v, MALFORMED.UDP_BAD_LENGTH);
  if (ulen > avail) {
    // A first fragment carries only the start of the datagram its UDP length describes.
    if (!v.mf) return fail(v, MALFORMED.UDP_BAD_LENGTH);
    v.udpLength = ulen;
    ulen = avail;
  } else v.udpLength = ulen;
  v.srcPort = (buf[p]! << 8) | buf[p + 1]!;
  v.dstPort = (buf[p + 2]! << 8) | buf[p + 3]!;
  v.l4Checksum = (buf[p + 6]! << 8) | buf[p + 7]!;
  v.l4Parsed = true;
  v.payloadOffset = p + 8;
  v.payloadLength = ulen - 8;
  return 0;
}

function decodeOtherL4(
  v: PacketView,
  buf: Uint8Array,
  p: number,
  avail: number,
  proto: number,
  emb: boolean,
): number {
  switch (proto) {
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6: {
      if (avail < 8) return fail(v, MALFORMED.ICMP_TRUNCATED);
      const t = buf[p]!;
      v.icmpType = t;
      v.icmpCode = buf[p + 1]!;
      v.l4Checksum = (buf[p + 2]! << 8) | buf[p + 3]!;
      v.u32[U32.ICMP_REST] =
        (buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!;
      // RFC 792 errors: unreachable, source quench, redirect, time exceeded, parameter problem.
      v.icmpIsError =
        proto === IPPROTO.ICMP ? t === 3 || t === 4 || t === 5 || t === 11 || t === 12 : t < 128;
      v.l4Parsed = true;
      v.payloadOffset = p + 8;
      v.payloadLength = avail - 8;
      return 0;
    }
    case IPPROTO.SCTP:
      return decodeSctp(v, buf, p, avail, emb);
    case IPPROTO.GRE:
      return decodeGre(v, buf, p, avail);
    case IPPROTO.IPIP:
    case IPPROTO.IPV6:
      v.tunnelType = TUNNEL.IPIP;
      v.innerOffset = p;
      v.innerProtocol = proto;
      return 0;
    default:
      return 0;
  }
}

function embeddedPorts(v: PacketView, buf: Uint8Array, p: number, avail: number, code: number) {
  if (avail < 4) return fail(v, code);
  v.u32[U32.TCP_SEQ] = 0;
  v.u32[U32.SCTP_VTAG] = 0;
  v.udpLength = 0;
  v.l4Checksum = 0;
  v.srcPort = (buf[p]! << 8) | buf[p + 1]!;
  v.dstPort = (buf[p + 2]! << 8) | buf[p + 3]!;
  if (avail >= 8) {
    const w = (buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!;
    if (v.protocol === IPPROTO.TCP) v.u32[U32.TCP_SEQ] = w;
    else if (v.protocol === IPPROTO.SCTP) v.u32[U32.SCTP_VTAG] = w;
    else if (v.protocol === IPPROTO.UDP) {
      v.udpLength = (buf[p + 4]! << 8) | buf[p + 5]!;
      v.l4Checksum = (buf[p + 6]! << 8) | buf[p + 7]!;
    }
  }
  v.l4Parsed = true;
  v.payloadOffset = p + avail;
  v.payloadLength = 0;
  return 0;
}

/**
 * True when the options in `buf[p, end)` are well formed. TCP (RFC 9293 §3.2) and IPv4 (RFC 791
 * §3.1) share the format: kind 0 ends the list, kind 1 is a one-byte pad, any other kind is
 * followed by a length byte (>= 2) covering kind, length and data.
 */
export function tcpOptionsValid(buf: Uint8Array, p: number, end: number): boolean {
  let q = p;
  while (q < end) {
    const k = buf[q]!;
    if (k === 0) return true;
    if (k === 1) {
      q++;
      continue;
    }
    if (q + 2 > end) return false;
    const l = buf[q + 1]!;
    if (l < 2 || q + l > end) return false;
    q += l;
  }
  return true;
}

/**
 * Finds TCP option `kind` in the header of the decoded segment; returns the option's offset (its
 * kind byte) or -1 (also when the options are malformed: see `lenient`).
 */
export function findTcpOption(v: PacketView, kind: number): number {
  if (v.protocol !== IPPROTO.TCP || !v.l4Parsed || v.tcpHeaderLength <= 20 || !v.tcpOptionsOk)
    return -1;
  const buf = v.buf;
  const end = v.l4Offset + v.tcpHeaderLength;
  let q = v.l4Offset + 20;
  while (q < end) {
    const k = buf[q]!;
    if (k === kind) return q;
    if (k === 0) return -1;
    if (k === 1) q++;
    else q += buf[q + 1]!;
  }
  return -1;
}

function decodeSctp(
  v: PacketView,
  buf: Uint8Array,
  p: number,
  avail: number,
  emb: boolean,
): number {
  if (emb) return embeddedPorts(v, buf, p, avail, MALFORMED.SCTP_TRUNCATED);
  if (avail < (v.lenient ? 12 : 16)) return fail(v, MALFORMED.SCTP_TRUNCATED);
  v.srcPort = (buf[p]! << 8) | buf[p + 1]!;
  v.dstPort = (buf[p + 2]! << 8) | buf[p + 3]!;
  v.u32[U32.SCTP_VTAG] =
    (buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!;
  v.u32[U32.SCTP_CSUM] =
    buf[p + 8]! | (buf[p + 9]! << 8) | (buf[p + 10]! << 16) | (buf[p + 11]! << 24);
  // RFC 9260 §3.2: chunks are type, flags, 16-bit length (>= 4), value, padded to 4 bytes.
  const end = p + avail;
  let c = p + 12;
  let n = 0;
  v.sctpChunkType = -1;
  v.sctpNextChunkType = -1;
  while (c + 4 <= end) {
    // the type first: the kernel reads a chunk header's type whatever its length says
    if (n === 0) v.sctpChunkType = buf[c]!;
    else if (n === 1) v.sctpNextChunkType = buf[c]!;
    n++;
    const clen = (buf[c + 2]! << 8) | buf[c + 3]!;
    if (clen < 4 || c + clen > end) {
      if (!v.lenient) return fail(v, MALFORMED.SCTP_BAD_CHUNK);
      v.sctpChunksOk = false;
      break;
    }
    if (n >= MAX_SCTP_CHUNKS) break;
    c += (clen + 3) & ~3;
  }
  if (n === 0) {
    if (!v.lenient) return fail(v, MALFORMED.SCTP_TRUNCATED);
    v.sctpChunksOk = false;
  }
  v.sctpChunkCount = n;
  v.l4Parsed = true;
  v.payloadOffset = p + 12;
  v.payloadLength = avail - 12;
  return 0;
}

function decodeGre(v: PacketView, buf: Uint8Array, p: number, avail: number): number {
  if (avail < 4) return fail(v, MALFORMED.GRE_TRUNCATED);
  const flags = (buf[p]! << 8) | buf[p + 1]!;
  v.tunnelFlags = flags;
  v.tunnelType = TUNNEL.NONE;
  v.greChecksum = -1;
  v.innerOffset = -1;
  v.innerProtocol = -1;
  v.l4Parsed = false;
  // Only RFC 2784/2890 GRE (version 0, no routing) is a tunnel we understand; others pass by.
  if ((flags & 7) !== 0 || (flags & 0x4000) !== 0) return 0;
  const hlen = 4 + (flags & 0x8000 ? 4 : 0) + (flags & 0x2000 ? 4 : 0) + (flags & 0x1000 ? 4 : 0);
  if (avail < hlen) return fail(v, MALFORMED.GRE_TRUNCATED);
  const ptype = (buf[p + 2]! << 8) | buf[p + 3]!;
  v.greChecksum = flags & 0x8000 ? (buf[p + 4]! << 8) | buf[p + 5]! : -1;
  v.tunnelType = TUNNEL.GRE;
  v.l4Parsed = true;
  v.payloadOffset = p + hlen;
  v.payloadLength = avail - hlen;
  if (ptype === ETH_P.IPV4 || ptype === ETH_P.IPV6) {
    v.innerOffset = p + hlen;
    v.innerProtocol = ptype === ETH_P.IPV4 ? IPPROTO.IPIP : IPPROTO.IPV6;
  }
  return 0;
}

/**
 * Decodes a GUE (version 0) header in the payload of the UDP datagram `v` describes (GUE runs on a
 * configured port, draft-ietf-intarea-gue): sets the tunnel fields, including the remote checksum
 * offload start/offset when the private-flags word carries REMCSUM. Returns 0 or a MALFORMED code.
 */
export function decodeGue(v: PacketView): number {
  if (v.malformed !== 0 || v.protocol !== IPPROTO.UDP || !v.l4Parsed) {
    return fail(v, MALFORMED.GUE_TRUNCATED);
  }
  const buf = v.buf;
  const p = v.payloadOffset;
  const end = p + v.payloadLength;
  if (p + 4 > end) return fail(v, MALFORMED.GUE_TRUNCATED);
  const b0 = buf[p]!;
  if (b0 >>> 6 !== 0 || (b0 & 0x20) !== 0) return fail(v, MALFORMED.GUE_UNSUPPORTED);
  const hlen = 4 + ((b0 & 31) << 2);
  if (p + hlen > end) return fail(v, MALFORMED.GUE_TRUNCATED);
  const proto = buf[p + 1]!;
  const flags = (buf[p + 2]! << 8) | buf[p + 3]!;
  v.l4State = -1; // tunnel fields on a UDP view: the next decode clears them
  v.tunnelType = TUNNEL.GUE;
  v.tunnelFlags = flags;
  v.remcsumStart = -1;
  v.remcsumOffset = -1;
  if (flags & 1) {
    // GUE_FLAG_PRIV: a 4-byte private-flags word; REMCSUM (bit 31) adds start/offset halves.
    if (hlen < 8) return fail(v, MALFORMED.GUE_TRUNCATED);
    if (buf[p + 4]! & 0x80) {
      if (hlen < 12) return fail(v, MALFORMED.GUE_TRUNCATED);
      v.remcsumStart = (buf[p + 8]! << 8) | buf[p + 9]!;
      v.remcsumOffset = (buf[p + 10]! << 8) | buf[p + 11]!;
    }
  }
  v.payloadOffset = p + hlen;
  v.payloadLength = end - p - hlen;
  if (proto === IPPROTO.IPIP || proto === IPPROTO.IPV6) {
    v.innerOffset = p + hlen;
    v.innerProtocol = proto;
  } else {
    v.innerOffset = -1;
    v.innerProtocol = -1;
  }
  return 0;
}
