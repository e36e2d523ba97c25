/**
 * What the host stack would answer for a VIP. With kernel IPVS the VIP is one of the director's
 * own addresses, so whatever IPVS leaves to the local stack (NF_ACCEPT at LOCAL_IN: a port with
 * no virtual service, a TCP segment that opens nothing, an echo request) gets the host's answer:
 * an echo reply (icmp_echo / icmpv6_echo_reply) or timestamp reply (icmp_timestamp), a reset
 * from a closed port (tcp_v4_send_reset / tcp_v6_send_reset), ICMP port unreachable for UDP
 * (__udp4_lib_rcv) and protocol unreachable
 * for a protocol no handler takes (ip_local_deliver_finish; ICMPv6 parameter problem,
 * unrecognised next header, for IPv6). Here no host stack owns the VIP, so the engine answers
 * the same way. Fragments reach this reassembled (./reasm.ts), and an echo reply above the MTU
 * leaves as fragments, as the host's does. A packet that came in a broadcast or multicast frame
 * (pkt_type not PACKET_HOST) gets only the echo / timestamp reply: tcp_v4_rcv / tcp_v6_rcv discard such a
 * segment without a reset, and __icmp_send / icmp6_send send no error about it.
 */
import {
  csumFinish,
  csumFold,
  csumPartial,
  l4Checksum,
  l4ChecksumOk,
  pseudoHeaderSum,
} from '../../packet/checksum.js';
import { IPPROTO } from '../../packet/constants.js';
import { ipv6ExtLength } from '../../packet/decode.js';
import type { PacketView } from '../../packet/view.js';
import { copyBytes, put32 } from './bytes.js';
import type { Counters } from './counters.js';
import type { IcmpSender } from './icmp-send.js';
import {
  EXT_DROP,
  EXT_OK,
  paramProblem,
  parseTlv,
  ppCode,
  ppPointer,
  routingHeader,
} from './ip6ext.js';
import { msOfDay, type Ipv4Options } from './ipopt.js';
import type { Iface } from './net.js';
import type { ReplyPath } from './reply-path.js';

const AF_INET6 = 10;
const IPPROTO_IGMP = 2;
const IPPROTO_UDPLITE = 136;
/** `chain()` result: dropped without a word (below it, a parameter problem: `-2 - result`). */
const CHAIN_DROP = -1;
/** ICMPv6 parameter problem code: unrecognised next header. */
const PP_UNK_NEXTHDR = 1;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

/** The engine's answers for its VIPs. */
export class VipHost {
  readonly #path: ReplyPath;
  readonly #icmp: IcmpSender;
  readonly #counters: Counters;
  readonly #now: () => number;

  /** `now`: the clock (ms) a timestamp reply takes the time of day from. */
  constructor(path: ReplyPath, icmp: IcmpSender, counters: Counters, now: () => number = Date.now) {
    this.#path = path;
    this.#icmp = icmp;
    this.#counters = counters;
    this.#now = now;
  }

  /**
   * Answers the packet in `v` (addressed to a VIP, received on `ingress`, left by IPVS to the
   * local stack) as the host would; returns what was done, for the trace ('' when nothing: the
   * packet is dropped, as the host drops what no socket takes). `host`: the frame was sent to
   * this interface's own MAC address. `opts`: what the receive found in its IPv4 options, which
   * an echo reply or a reset carries back (__ip_options_echo).
   */
  deliver(v: PacketView, ingress: Iface, host: boolean, opts: Ipv4Options | null = null): string {
    if (v.isFragment || v.l4Offset < 0) return '';
    const v6 = v.af === AF_INET6;
    // the offset of the last next-header field (IP6CB nhoff), once the extension headers were
    // processed as the host does
    const nhAt = v6 ? chain(v, !host) : 0;
    if (nhAt === CHAIN_DROP) return '';
    if (nhAt < 0) {
      const pp = -2 - nhAt;
      return this.#icmp.send(v, ingress, 4, ppCode(pp), ppPointer(pp))
        ? `ICMPv6 parameter problem (code ${ppCode(pp)}, pointer ${ppPointer(pp)})`
        : '';
    }
    if (!host && v.protocol !== (v6 ? IPPROTO.ICMPV6 : IPPROTO.ICMP)) return '';
    // the transport checks its checksum before anything answers (tcp_checksum_complete,
    // udp_lib_checksum_complete, icmp_rcv / icmpv6_rcv): a bad one gets no word
    const proto = v.protocol;
    if (
      (proto === IPPROTO.TCP ||
        proto === IPPROTO.UDP ||
        proto === IPPROTO.ICMP ||
        proto === IPPROTO.ICMPV6) &&
      !l4ChecksumOk(v.af, v.src, v.dst, proto, v.buf, v.l4Offset, v.ipEnd - v.l4Offset)
    )
      return '';
    switch (proto) {
      case IPPROTO.TCP:
        return this.#reset(v, ingress, opts) ? 'TCP reset (no socket on the VIP)' : '';
      case IPPROTO.UDP:
        return this.#icmp.send(v, ingress, v6 ? 1 : 3, v6 ? 4 : 3, 0)
          ? 'ICMP port unreachable (no socket on the VIP)'
          : '';
      case IPPROTO_UDPLITE:
        // UDP-Lite has the host's UDP handling (udplite_rcv / udplitev6_rcv): its checksum and
        // coverage checked, then port unreachable
        if (!udpLiteOk(v)) return '';
        return this.#icmp.send(v, ingress, v6 ? 1 : 3, v6 ? 4 : 3, 0)
          ? 'ICMP port unreachable (no UDP-Lite socket on the VIP)'
          : '';
      case IPPROTO_IGMP:
        // igmp_rcv takes it (the director joined no group on the VIP): nothing to answer
        if (!v6) return '';
        break;
      case IPPROTO.NONE:
        // no next header (nodata_protocol): discarded without a word
        if (v6) return '';
        break;
      case IPPROTO.ICMP:
        if (v6) return '';
        if (v.icmpType === 8) return this.#echo(v, ingress, 0, opts) ? 'ICMP echo reply' : '';
        if (v.icmpType === 13)
          return this.#timestamp(v, ingress, opts) ? 'ICMP timestamp reply' : '';
        return '';
      case IPPROTO.ICMPV6:
        return v6 && v.icmpType === 128 && this.#echo(v, ingress, 129, null)
          ? 'ICMPv6 echo reply'
          : '';
    }
    if (v6) {
      // parameter problem, unrecognised next header, pointing at the field that named it
      // (ip6_input_finish: the fixed header's, or the last extension header's)
      return this.#icmp.send(v, ingress, 4, 1, nhAt) ? 'ICMPv6 unrecognised next header' : '';
    }
    return this.#icmp.send(v, ingress, 3, 2, 0) ? 'ICMP protocol unreachable' : '';
  }

  /** An echo reply carrying the request's identifier, sequence and data. */
  #echo(v: PacketView, ingress: Iface, type: number, opts: Ipv4Options | null): boolean {
    const len = v.ipEnd - v.l4Offset;
    return len >= 8 && this.#reply(v, ingress, opts, type, len, len, false);
  }

  /**
   * icmp_timestamp: a timestamp reply carrying the request's identifier, sequence and originate
   * timestamp, with the time of day (ms since midnight UTC) as receive and transmit timestamps;
   * the request's data past its originate timestamp is not returned. None for a request without
   * one.
   */
  #timestamp(v: PacketView, ingress: Iface, opts: Ipv4Options | null): boolean {
    return v.ipEnd - v.l4Offset >= 12 && this.#reply(v, ingress, opts, 14, 20, 12, true);
  }

  /**
   * An ICMP / ICMPv6 reply of type `type` and `len` bytes to the request in `v`: its first
   * `copied` bytes (code, identifier, sequence, data: icmp_echo keeps the request's code), or
   * with `stamp` code 0 and the time of day twice after them (icmp_timestamp), as the
   * request's IPv4 options are echoed (`opts`).
   */
  #reply(
    v: PacketView,
    ingress: Iface,
    opts: Ipv4Options | null,
    type: number,
    len: number,
    copied: number,
    stamp: boolean,
  ): boolean {
    const v6 = v.af === AF_INET6;
    const path = this.#path;
    const ol = path.echoOptions(v, opts);
    if (ol < 0) return false;
    const ipHdr = v6 ? 40 : 20 + ol;
    const ip = path.open(v, ingress, ipHdr + len);
    if (ip < 0) return false;
    const b = path.buf;
    const l4 = ip + ipHdr;
    copyBytes(b, l4, v.buf, v.l4Offset, copied);
    b[l4] = type;
    b[l4 + 2] = 0;
    b[l4 + 3] = 0;
    if (stamp) {
      b[l4 + 1] = 0;
      const now = msOfDay(this.#now());
      put32(b, l4 + copied, now);
      put32(b, l4 + copied + 4, now);
    }
    path.header(ip, v, v6 ? IPPROTO.ICMPV6 : IPPROTO.ICMP, len, v.tos, false);
    const c = v6
      ? l4Checksum(v.af, path.src, v.src, IPPROTO.ICMPV6, b, l4, len)
      : csumFinish(csumPartial(b, l4, len));
    b[l4 + 2] = c >>> 8;
    b[l4 + 3] = c;
    if (!path.done()) return false;
    this.#counters.icmpSent++;
    return true;
  }

  /**
   * A reset for a segment no socket takes (RFC 793 "reset generation"): none for a reset; with
   * ACK set, RST with the acknowledged number as its sequence; otherwise RST+ACK acknowledging
   * everything the segment occupied (its data, SYN and FIN).
   */
  #reset(v: PacketView, ingress: Iface, opts: Ipv4Options | null): boolean {
    const f = v.tcpFlags;
    if (f & TCP_RST) return false;
    const v6 = v.af === AF_INET6;
    const path = this.#path;
    const ol = path.echoOptions(v, opts);
    if (ol < 0) return false;
    const ipHdr = v6 ? 40 : 20 + ol;
    const ip = path.open(v, ingress, ipHdr + 20);
    if (ip < 0) return false;
    const b = path.buf;
    const t = ip + ipHdr;
    let seq = 0;
    let ack = 0;
    let flags = TCP_RST;
    if (f & TCP_ACK) seq = v.tcpAck;
    else {
      const data = v.ipEnd - v.l4Offset - v.tcpHeaderLength;
      ack = (v.tcpSeq + data + (f & TCP_SYN ? 1 : 0) + (f & TCP_FIN ? 1 : 0)) >>> 0;
      flags |= TCP_ACK;
    }
    b[t] = v.dstPort >>> 8;
    b[t + 1] = v.dstPort;
    b[t + 2] = v.srcPort >>> 8;
    b[t + 3] = v.srcPort;
    put32(b, t + 4, seq);
    put32(b, t + 8, ack);
    b[t + 12] = 5 << 4;
    b[t + 13] = flags;
    b.fill(0, t + 14, t + 20);
    // the segment's DSCP, its ECN bits cleared (ip_send_unicast_reply, tcp_v6_send_response)
    path.header(ip, v, IPPROTO.TCP, 20, v.tos & ~3, true);
    const c = l4Checksum(v.af, path.src, v.src, IPPROTO.TCP, b, t, 20);
    b[t + 16] = c >>> 8;
    b[t + 17] = c;
    path.done();
    return true;
  }
}

/**
 * The extension headers of `v` as ip6_protocol_deliver_rcu processes them, in order (the
 * hop-by-hop options were checked on receive): an AH header drops the packet (no security
 * association is set up for a VIP), a hop-by-hop header after the first gets a parameter problem
 * at the field that named it (no handler takes it), destination options are parsed
 * (ipv6_destopt_rcv) and routing headers checked (ipv6_rthdr_rcv; `group`: the frame or address
 * was a group's). Returns the offset from the IPv6 header of the next-header field that names
 * the transport (6 with no extension header, else the last one's start), `CHAIN_DROP`, or
 * `-2 - paramProblem(…)`. The decoder has walked the chain (a reassembled packet has no fragment
 * header).
 */
function chain(v: PacketView, group: boolean): number {
  const b = v.buf;
  const ip = v.l3Offset;
  let nh = b[ip + 6]!;
  let at = 6;
  let q = ip + 40;
  while (q < v.l4Offset) {
    if (nh === IPPROTO.AH) return CHAIN_DROP;
    if (nh === IPPROTO.HOPOPTS && at !== 6) return -2 - paramProblem(PP_UNK_NEXTHDR, at);
    let r = EXT_OK;
    if (nh === IPPROTO.DSTOPTS) r = parseTlv(b, ip, q - ip, false, false);
    else if (nh === IPPROTO.ROUTING) r = routingHeader(b, ip, q - ip, group);
    if (r === EXT_DROP) return CHAIN_DROP;
    if (r !== EXT_OK) return -2 - r;
    at = q - ip;
    const len = ipv6ExtLength(b, q, nh);
    nh = b[q]!;
    q += len;
  }
  return at;
}

/**
 * udplite_checksum_init and the checksum over its coverage: a zero checksum, or a coverage
 * below 8 or beyond the datagram, is refused (0: the whole datagram).
 */
function udpLiteOk(v: PacketView): boolean {
  const b = v.buf;
  const o = v.l4Offset;
  const len = v.ipEnd - o;
  if (len < 8 || (b[o + 6] === 0 && b[o + 7] === 0)) return false;
  let cov = (b[o + 4]! << 8) | b[o + 5]!;
  if (cov === 0) cov = len;
  else if (cov < 8 || cov > len) return false;
  const s = csumPartial(b, o, cov) + pseudoHeaderSum(v.af, v.src, v.dst, IPPROTO_UDPLITE, len);
  return csumFold(s) === 0xffff;
}
