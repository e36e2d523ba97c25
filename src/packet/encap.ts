/**
 * Tunnel encapsulation for the TUN transmitter (spec §5.5): prepends an outer IPv4 or IPv6 header,
 * plus UDP + GUE v0 (optionally with remote checksum offload) or GRE (optionally with checksum),
 * in front of an inner IP packet that already sits in the buffer with enough headroom. The outer
 * header copies the inner DS field (CE becomes ECT(0), RFC 6040 / `ip_tunnel_ecn_encap`), the
 * inner TTL / hop limit and, when path-MTU discovery is on, the inner IPv4 DF bit (an IPv6 inner
 * packet has none: DF stays clear, as `ip_vs_prepare_tunneled_skb` leaves it). An outer IPv4
 * header with DF gets identification 0, as `ip_select_ident` gives a DF packet without a socket.
 * Nothing is allocated: the caller keeps one `EncapParams` per destination and reuses it.
 */
import { IPPROTO, ETH_P } from './constants.js';
import { csumPartial, csumFinish, ipv4HeaderChecksum, pseudoHeaderSum } from './checksum.js';
import { PacketEncodeError, checkInt } from './errors.js';

/** Encapsulation kinds (the kernel's IP_VS_CONN_F_TUNNEL_TYPE_*). */
export const ENCAP = { IPIP: 0, GUE: 1, GRE: 2 } as const;

/** How to encapsulate: one reusable object per destination. */
export class EncapParams {
  /** ENCAP.IPIP, ENCAP.GUE or ENCAP.GRE. */
  type: number = ENCAP.IPIP;
  /** Outer address family: 2 (IPv4) or 10 (IPv6). */
  af = 2;
  /** Outer source (the local address the route chose) and destination (the real server). */
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  /** Outer IPv4 identification (a fresh one per packet; 0 is written when DF is set). */
  ipId = 0;
  /** `pmtu_disc`: copy the inner IPv4 DF bit to the outer header (IPv6 inner: DF clear). */
  pmtuDisc = true;
  /** GUE UDP source port (a hash of the inner flow) and destination port (`tun_port`). */
  srcPort = 0;
  dstPort = 0;
  /** `--tun-csum`: GUE computes the UDP checksum, GRE carries a checksum (GUE: `remcsum` too). */
  csum = false;
  /** `--tun-remcsum`: GUE remote checksum offload (used when `remcsumStart` >= 0). */
  remcsum = false;
  /** Inner packet's partial checksum: start and checksum-field offset, relative to the inner packet. */
  remcsumStart = -1;
  remcsumOffset = -1;
}

/** Bytes the outer headers take for `p` (the MTU reduction of spec §5.5). */
export function encapHeaderLength(p: EncapParams): number {
  let n = p.af === 10 ? 40 : 20;
  if (p.type === ENCAP.GUE) n += 8 + 4 + (p.remcsum && p.remcsumStart >= 0 ? 8 : 0);
  else if (p.type === ENCAP.GRE) n += 4 + (p.csum ? 4 : 0);
  return n;
}

/** The outer DS field for inner DS `tos`: ECN copied, CE (3) becomes ECT(0) (2). */
export function encapDsfield(tos: number): number {
  return (tos & 3) === 3 ? (tos & 0xfc) | 2 : tos & 0xff;
}

/**
 * Writes the outer headers described by `p` in front of the inner IP packet `buf[innerOff,
 * innerOff+innerLen)` and returns the offset where the encapsulated packet now starts. Throws
 * PacketEncodeError when the headroom before `innerOff` is too small or the result exceeds 64 KiB.
 */
export function encapsulate(
  p: EncapParams,
  buf: Uint8Array,
  innerOff: number,
  innerLen: number,
): number {
  const hl = encapHeaderLength(p);
  const start = innerOff - hl;
  if (start < 0 || innerOff + innerLen > buf.length) {
    throw new PacketEncodeError(
      `tunnel headers need ${hl} bytes of headroom before offset ${innerOff}`,
    );
  }
  const v = buf[innerOff]! >>> 4;
  let tos: number;
  let ttl: number;
  let df: boolean;
  if (v === 4) {
    tos = buf[innerOff + 1]!;
    ttl = buf[innerOff + 8]!;
    df = p.pmtuDisc && (buf[innerOff + 6]! & 0x40) !== 0;
  } else if (v === 6) {
    tos = ((buf[innerOff]! & 15) << 4) | (buf[innerOff + 1]! >>> 4);
    ttl = buf[innerOff + 7]!;
    df = false;
  } else throw new PacketEncodeError(`inner packet is not IP (version ${v})`);
  tos = encapDsfield(tos);
  const innerProto = v === 4 ? IPPROTO.IPIP : IPPROTO.IPV6;
  const outerProto =
    p.type === ENCAP.GUE ? IPPROTO.UDP : p.type === ENCAP.GRE ? IPPROTO.GRE : innerProto;
  const ipLen = p.af === 10 ? 40 : 20;
  const total = hl + innerLen;
  if (total - (p.af === 10 ? 40 : 0) > 0xffff)
    throw new PacketEncodeError(`encapsulated packet of ${total} bytes is too large`);
  let q = start;
  if (p.af === 10) {
    const plen = total - 40;
    buf[q] = 0x60 | (tos >>> 4);
    buf[q + 1] = (tos & 15) << 4;
    buf[q + 2] = 0;
    buf[q + 3] = 0;
    buf[q + 4] = plen >>> 8;
    buf[q + 5] = plen;
    buf[q + 6] = outerProto;
    buf[q + 7] = ttl;
    for (let i = 0; i < 4; i++) {
      const a = p.src[i]!;
      const b = p.dst[i]!;
      const o = q + 8 + 4 * i;
      buf[o] = a >>> 24;
      buf[o + 1] = a >>> 16;
      buf[o + 2] = a >>> 8;
      buf[o + 3] = a;
      buf[o + 16] = b >>> 24;
      buf[o + 17] = b >>> 16;
      buf[o + 18] = b >>> 8;
      buf[o + 19] = b;
    }
  } else {
    const a = p.src[0]!;
    const b = p.dst[0]!;
    buf[q] = 0x45;
    buf[q + 1] = tos;
    buf[q + 2] = total >>> 8;
    buf[q + 3] = total;
    const id = df ? 0 : p.ipId;
    buf[q + 4] = id >>> 8;
    buf[q + 5] = id;
    buf[q + 6] = df ? 0x40 : 0;
    buf[q + 7] = 0;
    buf[q + 8] = ttl;
    buf[q + 9] = outerProto;
    buf[q + 10] = 0;
    buf[q + 11] = 0;
    buf[q + 12] = a >>> 24;
    buf[q + 13] = a >>> 16;
    buf[q + 14] = a >>> 8;
    buf[q + 15] = a;
    buf[q + 16] = b >>> 24;
    buf[q + 17] = b >>> 16;
    buf[q + 18] = b >>> 8;
    buf[q + 19] = b;
    const c = ipv4HeaderChecksum(buf, q, 20);
    buf[q + 10] = c >>> 8;
    buf[q + 11] = c;
  }
  q += ipLen;
  if (p.type === ENCAP.GUE) {
    const udpLen = total - ipLen;
    const rem = p.remcsum && p.remcsumStart >= 0;
    checkInt(p.srcPort, 'GUE source port', 0, 0xffff);
    checkInt(p.dstPort, 'GUE destination port', 0, 0xffff);
    buf[q] = p.srcPort >>> 8;
    buf[q + 1] = p.srcPort;
    buf[q + 2] = p.dstPort >>> 8;
    buf[q + 3] = p.dstPort;
    buf[q + 4] = udpLen >>> 8;
    buf[q + 5] = udpLen;
    buf[q + 6] = 0;
    buf[q + 7] = 0;
    const g = q + 8;
    buf[g] = rem ? 2 : 0;
    buf[g + 1] = innerProto;
    buf[g + 2] = 0;
    buf[g + 3] = rem ? 1 : 0;
    if (rem) {
      const s = p.remcsumStart;
      const o = p.remcsumStart + p.remcsumOffset;
      buf[g + 4] = 0x80;
      buf[g + 5] = 0;
      buf[g + 6] = 0;
      buf[g + 7] = 0;
      buf[g + 8] = s >>> 8;
      buf[g + 9] = s;
      buf[g + 10] = o >>> 8;
      buf[g + 11] = o;
    }
    // ip_vs_tunnel_xmit: udp_set_csum(!(CSUM || REMCSUM), ...): --tun-remcsum computes the UDP
    // checksum whether or not this packet carries the remote-checksum option
    if (p.csum || p.remcsum) {
      const s =
        csumPartial(buf, q, udpLen) + pseudoHeaderSum(p.af, p.src, p.dst, IPPROTO.UDP, udpLen);
      const c = csumFinish(s) || 0xffff;
      buf[q + 6] = c >>> 8;
      buf[q + 7] = c;
    }
  } else if (p.type === ENCAP.GRE) {
    const et = v === 4 ? ETH_P.IPV4 : ETH_P.IPV6;
    buf[q] = p.csum ? 0x80 : 0;
    buf[q + 1] = 0;
    buf[q + 2] = et >>> 8;
    buf[q + 3] = et;
    if (p.csum) {
      buf[q + 4] = 0;
      buf[q + 5] = 0;
      buf[q + 6] = 0;
      buf[q + 7] = 0;
      const c = csumFinish(csumPartial(buf, q, total - ipLen));
      buf[q + 4] = c >>> 8;
      buf[q + 5] = c;
    }
  }
  return start;
}
