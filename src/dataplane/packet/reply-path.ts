/**
 * The way back to a packet's sender, for what the director itself answers (ICMP errors, echo
 * replies, TCP resets): the route toward the sender's address and its next hop, or, when there is
 * no route back, the interface the packet came in on and its sender's MAC (as a host answers the
 * neighbour it heard from). The source address is the packet's destination when that is one of
 * the director's addresses (a VIP answers as itself), otherwise the route's preferred source or
 * the ingress interface's address.
 */
import type { PacketView } from '../../packet/view.js';
import { ipv4HeaderChecksum } from '../../packet/checksum.js';
import { copyBytes, put32 } from './bytes.js';
import { fragment4, fragment6 } from './frag.js';
import { Ipv4Options, buildIpv4Options, echoIpv4Options, msOfDay, unicastTest } from './ipopt.js';
import type { Iface, NetModel } from './net.js';
import { RouteResult } from './net.js';
import type { Tx } from './tx.js';

const AF_INET6 = 10;
/** TTL / hop limit of the host's own packets (ip_default_ttl, hop_limit). */
const HOST_TTL = 64;

/** Starts reply frames toward a packet's sender. */
export class ReplyPath {
  readonly #net: NetModel;
  readonly #tx: Tx;
  readonly #res = new RouteResult();
  readonly #nh = new Uint32Array(4);
  /** The reply's source address (set by `open`). */
  readonly src = new Uint32Array(4);
  /** The memory the last `open` wrote the Ethernet header into. */
  buf: Uint8Array = new Uint8Array(0);
  #learned = false;
  #ipId = 1;
  /** A reply above the egress MTU is built here and sent as fragments by `done()`. */
  readonly #big = new Uint8Array(14 + 65536);
  #bigLen = 0;
  #bigMtu = 0;
  /** Identification of the IPv6 fragments of the host's own replies. */
  #fragId = 1;
  #ifc: Iface | null = null;
  #ingress: Iface | null = null;
  readonly #peerMac = new Uint8Array(6);
  readonly #now: () => number;
  /** IPv4 options echoed by the next reply (`echoOptions`), and what `header` fills in them. */
  readonly #opt = new Uint8Array(40);
  readonly #dopt = new Ipv4Options();
  #optLen = 0;
  #optOpen = 0;
  readonly #unicast: (a: number) => boolean;

  /** `now`: the clock (ms) timestamps echoed in IPv4 options take the time of day from. */
  constructor(net: NetModel, tx: Tx, now: () => number = Date.now) {
    this.#net = net;
    this.#tx = tx;
    this.#now = now;
    this.#unicast = unicastTest(net);
  }

  /**
   * The IPv4 options the next reply to `v` carries (__ip_options_echo), `o` being what their
   * receive found; returns their length (0: none), or -1 when the host would not answer. Call
   * before `open`, whose `ipLen` includes them.
   */
  echoOptions(v: PacketView, o: Ipv4Options | null): number {
    this.#optLen = 0;
    if (o === null || v.af === AF_INET6) return 0;
    const n = echoIpv4Options(v.buf, v.l3Offset, o, this.#unicast, this.#opt, this.#dopt);
    if (n > 0) this.#optLen = n;
    return n;
  }

  /**
   * Starts a frame of `ipLen` bytes of IP toward the sender of the packet in `v` (received on
   * `ingress`): writes the Ethernet header into `this.buf` and returns the IP header's offset
   * there, or -1 when nothing can be sent (also when the sender is one of the director's own
   * addresses). Finish the frame, then call `done()`.
   */
  open(v: PacketView, ingress: Iface, ipLen: number): number {
    this.#optOpen = this.#optLen;
    this.#optLen = 0;
    const af = v.af;
    const net = this.#net;
    // an answer to one of our own addresses goes over lo, never on the wire
    if (net.isLocal(af, v.src, 0)) return -1;
    const res = this.#res;
    const src = this.src;
    const nh = this.#nh;
    let ifc: Iface = ingress;
    const routed = net.route(af, v.src, 0, res);
    if (routed) {
      ifc = net.ifaces[res.ifIndex]!;
      if (res.hasGw) nh.set(res.gw);
      else nh.set(v.src);
      src.set(res.src);
    } else {
      const a = ingress.addrOf(af);
      if (a) src.set(a);
      else src.fill(0);
    }
    if (net.isLocal(af, v.dst, 0)) src.set(v.dst);
    this.#learned = !routed && v.l2Offset >= 0;
    const mtu = routed && res.mtu > 0 ? res.mtu : ifc.mtu;
    this.#bigLen = 0;
    if (ipLen > mtu) {
      // as ip_append_data / ip6_append_data do for the host's own packets: built whole, sent
      // as fragments
      if (this.#learned) copyBytes(this.#peerMac, 0, v.buf, v.l2Offset + 6, 6);
      else if (!routed) nh.set(v.src);
      this.#bigLen = ipLen;
      this.#bigMtu = mtu;
      this.#ifc = ifc;
      this.#ingress = ingress;
      this.buf = this.#big;
      return 14;
    }
    let off: number;
    if (this.#learned) {
      // no route back: answer through the interface the packet came in on, to its sender's MAC
      off = this.#tx.raw(ingress, 14 + ipLen);
      if (off < 0) return -1;
      const b = this.#tx.txBuf(ingress);
      copyBytes(b, off, v.buf, v.l2Offset + 6, 6);
      copyBytes(b, off + 6, ingress.mac, 0, 6);
      b[off + 12] = af === AF_INET6 ? 0x86 : 0x08;
      b[off + 13] = af === AF_INET6 ? 0xdd : 0x00;
      this.buf = b;
    } else {
      if (!routed) nh.set(v.src);
      off = this.#tx.begin(ifc, af, nh, 0, 14 + ipLen);
      if (off < 0) return -1;
      this.buf = this.#tx.buf;
    }
    return off + 14;
  }

  /**
   * Writes the reply's IP header at `ip` in `this.buf`: from `this.src` to the sender of `v`,
   * TTL / hop limit 64 (the host's default), `payload` bytes of `proto` after it. IPv4 with `df`
   * gets identification 0 (ip_select_ident without a socket), otherwise the next of this path's.
   * The options `echoOptions` prepared follow an IPv4 header (the payload starts after them).
   */
  header(
    ip: number,
    v: PacketView,
    proto: number,
    payload: number,
    tos: number,
    df: boolean,
  ): void {
    const id = v.af === AF_INET6 || df ? 0 : this.#ipId++ & 0xffff;
    const ol = this.#optOpen;
    this.#optOpen = 0;
    const b = this.buf;
    hostIpHeader(b, ip, v.af, this.src, v.src, proto, payload + ol, tos, id, df);
    if (ol === 0 || v.af === AF_INET6) return;
    b[ip] = 0x40 | ((20 + ol) >>> 2);
    copyBytes(b, ip + 20, this.#opt, 0, ol);
    buildIpv4Options(b, ip, this.#dopt, this.src[0]!, msOfDay(this.#now()));
    b[ip + 10] = 0;
    b[ip + 11] = 0;
    const hc = ipv4HeaderChecksum(b, ip, 20 + ol);
    b[ip + 10] = hc >>> 8;
    b[ip + 11] = hc;
  }

  /**
   * The frame of the last `open` is complete (the tracer sees it); one above the MTU is sent as
   * fragments. Returns false when not all of them could be sent.
   */
  done(): boolean {
    if (this.#bigLen === 0) {
      if (!this.#learned) this.#tx.traced();
      return true;
    }
    const tx = this.#tx;
    const learned = this.#learned;
    const ifc = learned ? this.#ingress! : this.#ifc!;
    const v6 = this.#big[14]! >>> 4 === 6;
    // each fragment is reported to the tracer once written: when the next one starts, and at the end
    let pending = false;
    const emit = (fl: number): number => {
      if (!learned) {
        if (pending) tx.traced();
        const o = tx.begin(ifc, v6 ? AF_INET6 : 2, this.#nh, 0, 14 + fl);
        pending = o >= 0;
        return o;
      }
      const o = tx.raw(ifc, 14 + fl);
      if (o < 0) return -1;
      const b = tx.txBuf(ifc);
      copyBytes(b, o, this.#peerMac, 0, 6);
      copyBytes(b, o + 6, ifc.mac, 0, 6);
      b[o + 12] = v6 ? 0x86 : 0x08;
      b[o + 13] = v6 ? 0xdd : 0x00;
      return o;
    };
    const out = (): Uint8Array => (learned ? tx.txBuf(ifc) : tx.buf);
    const big = this.#big;
    const n = v6
      ? fragment6(big, 14, this.#bigLen, 40, this.#bigMtu, this.#fragId++ >>> 0, 14, emit, out)
      : fragment4(big, 14, this.#bigLen, this.#bigMtu, 14, emit, out);
    if (pending) tx.traced();
    this.#bigLen = 0;
    return n > 0;
  }
}

/**
 * Writes the IP header of a packet the host sends itself at `b[ip, …)`: `src` → `dst` (family
 * `af`, address words), TTL / hop limit 64, `payload` bytes of `proto` after it, IPv4
 * identification `id` and DF when `df`; the IPv6 traffic class is `tos`.
 */
export function hostIpHeader(
  b: Uint8Array,
  ip: number,
  af: number,
  src: ArrayLike<number>,
  dst: ArrayLike<number>,
  proto: number,
  payload: number,
  tos: number,
  id: number,
  df: boolean,
): void {
  if (af === AF_INET6) {
    b[ip] = 0x60 | (tos >>> 4);
    b[ip + 1] = (tos & 0x0f) << 4;
    b[ip + 2] = 0;
    b[ip + 3] = 0;
    b[ip + 4] = payload >>> 8;
    b[ip + 5] = payload;
    b[ip + 6] = proto;
    b[ip + 7] = HOST_TTL;
    for (let i = 0; i < 4; i++) {
      put32(b, ip + 8 + 4 * i, src[i]!);
      put32(b, ip + 24 + 4 * i, dst[i]!);
    }
    return;
  }
  const len = 20 + payload;
  b[ip] = 0x45;
  b[ip + 1] = tos;
  b[ip + 2] = len >>> 8;
  b[ip + 3] = len;
  b[ip + 4] = id >>> 8;
  b[ip + 5] = id;
  b[ip + 6] = df ? 0x40 : 0;
  b[ip + 7] = 0;
  b[ip + 8] = HOST_TTL;
  b[ip + 9] = proto;
  b[ip + 10] = 0;
  b[ip + 11] = 0;
  put32(b, ip + 12, src[0]!);
  put32(b, ip + 16, dst[0]!);
  const hc = ipv4HeaderChecksum(b, ip, 20);
  b[ip + 10] = hc >>> 8;
  b[ip + 11] = hc;
}
