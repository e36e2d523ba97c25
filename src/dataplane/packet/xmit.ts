/**
 * The transmitters (spec §5.5, kernel twin ip_vs_xmit.c): NAT (DNAT with incremental checksums,
 * NO_CPORT fill-in, the FTP helper), DR (the packet unchanged but for TTL, sent to the real
 * server's MAC), TUN (IPIP / GUE / GRE encapsulation with the spec's header rules), LOCALNODE and
 * BYPASS; ICMP errors related to a connection go through the same code with the ICMP rewrite of
 * `ip_vs_nat_icmp`. Every transmitter does the common prelude of `__ip_vs_get_out_rt`: route
 * lookup, the local-route rules, TTL (Time Exceeded at 1), MTU (Fragmentation Needed / Packet Too
 * Big for DF packets; IPv4 packets without DF are fragmented). Also the forwarding of replies the
 * out handler rewrote (what the host's routing does in the kernel).
 */
import { AF_INET, AF_INET6, formatIp } from '../../core/addr.js';
import {
  CONN_F_FWD_MASK,
  CONN_F_NO_CPORT,
  FWD_BYPASS,
  FWD_DROUTE,
  FWD_LOCALNODE,
  FWD_MASQ,
  FWD_TUNNEL,
  TUN_F_CSUM,
  TUN_F_REMCSUM,
} from '../../core/constants.js';
import { decodeIp } from '../../packet/decode.js';
import { ENCAP, encapHeaderLength, encapsulate } from '../../packet/encap.js';
import {
  icmpChecksum,
  ipv4HeaderChecksum,
  l4Checksum,
  l4ChecksumOk,
  write16,
} from '../../packet/checksum.js';
import { ICMP, ICMPV6, IPPROTO } from '../../packet/constants.js';
import { natRewrite4, natRewrite6, natRewriteDst4, setTtl } from '../../packet/nat.js';
import type { PacketView } from '../../packet/view.js';
import { R } from './counters.js';
import type { Ctx, Pkt } from './ctx.js';
import { APP } from './ftp.js';
import { fragment4, fragment6 } from './frag.js';
import { HOOK, NF } from './hooks.js';
import type { Iface } from './net.js';
import { copyBytes, isLoopback, words4 } from './bytes.js';

/** Route modes of __ip_vs_get_out_rt. */
const RT_LOCAL = 1;
const RT_NON_LOCAL = 2;
const RT_RDR = 4;
const RT_TUNNEL = 16;

/** Local port range GUE source ports are mapped into (ip_local_port_range default). */
const PORT_MIN = 32768;
const PORT_MAX = 60999;

/** Where `ICMP(V6)` errors and forwarding need a scratch offset in `Ctx.scratch`. */
const SCRATCH_HEADROOM = 128;

/** The transmitters of one engine. */
export class Xmit {
  readonly #c: Ctx;
  /** MTU chosen by the last successful route prelude. */
  #mtu = 0;

  constructor(c: Ctx) {
    this.#c = c;
  }

  /** Transmits `pkt` with connection `h`'s method; `icmp`: `pkt` is a related ICMP error. */
  send(pkt: Pkt, h: number, icmp: boolean, hook: number): number {
    const fwd = this.#c.ipvs.conns.flags(h) & CONN_F_FWD_MASK;
    switch (fwd) {
      case FWD_MASQ:
        return this.#nat(pkt, h, icmp, hook);
      case FWD_DROUTE:
        return this.#dr(pkt, h, icmp, hook);
      case FWD_TUNNEL:
        return this.#tun(pkt, h, icmp, hook);
      case FWD_BYPASS:
        return this.#bypass(pkt, hook);
      case FWD_LOCALNODE:
      default:
        pkt.reason = R.LOCAL;
        if (this.#c.trace) this.#note('xmit', 'LOCALNODE: accepted to the local stack unchanged');
        return NF.ACCEPT;
    }
  }

  #note(kind: string, text: string): void {
    this.#c.trace!.step(kind, text);
  }

  /**
   * The route prelude: 1 = the target is local (deliver to the host), 0 = send with `#mtu`,
   * -1 = dropped (reason set; an ICMP error may have gone out).
   */
  #outRoute(
    pkt: Pkt,
    daf: number,
    target: ArrayLike<number>,
    toff: number,
    mode: number,
    hdr: number,
    icmp: boolean,
    hook: number,
  ): number {
    const c = this.#c;
    const res = c.route;
    const v = pkt.view;
    // a loopback target always has a local route (the host's local table), whatever the model's
    // routes say
    const loop = isLoopback(daf, target, toff);
    if (!loop && !c.net.route(daf, target, toff, res)) {
      // err_unreach: dst_link_failure answers in the packet's own family (ipv4_link_failure:
      // host unreachable, ip6_link_failure: address unreachable), quoting it before any rewrite
      if (v.af === AF_INET6) c.icmp.send(v, pkt.ifc!, ICMPV6.DEST_UNREACH, ICMPV6.ADDR_UNREACH, 0);
      else c.icmp.send(v, pkt.ifc!, ICMP.DEST_UNREACH, ICMP.HOST_UNREACH, 0);
      pkt.reason = R.NO_ROUTE;
      if (this.#c.trace)
        this.#note('icmp', `no route to ${formatIp(daf, target, toff)}: ICMP unreachable sent`);
      return -1;
    }
    const local = loop || res.local;
    // crosses_local_route_boundary: a non-local route is refused to a loopback source (IPv6:
    // only for the host's own packets, which have no input device)
    if (
      (local && !(mode & RT_LOCAL)) ||
      (!local && !(mode & RT_NON_LOCAL)) ||
      (local && !pkt.local && !(mode & RT_RDR)) ||
      (!local && isLoopback(v.af, v.src, 0) && (v.af !== AF_INET6 || hook === HOOK.LOCAL_OUT))
    ) {
      pkt.reason = R.ROUTE_CROSS;
      if (this.#c.trace)
        this.#note(
          'xmit',
          `route to ${formatIp(daf, target, toff)} crosses the local/non-local boundary`,
        );
      return -1;
    }
    if (local) return 1;
    if (v.ttl <= 1) {
      if (v.af === AF_INET6) c.icmp.send(v, pkt.ifc!, ICMPV6.TIME_EXCEEDED, 0, 0);
      else c.icmp.send(v, pkt.ifc!, ICMP.TIME_EXCEEDED, 0, 0);
      pkt.reason = R.TTL_EXPIRED;
      if (this.#c.trace)
        this.#note(
          'icmp',
          `TTL ${v.ttl} expired: ICMP time exceeded sent to ${formatIp(v.af, v.src)}`,
        );
      return -1;
    }
    setTtl(v, v.ttl - 1);
    // a path MTU learned for the address comes first (ipv4_mtu: rt_pmtu before the route's)
    let mtu = res.mtu;
    if (c.pmtu.size > 0) {
      const pm = c.pmtu.get(daf, target, toff, c.ipvs.now());
      if (pm > 0) mtu = pm;
    }
    if (mode & RT_TUNNEL) {
      mtu -= hdr;
      // the minimum is the outer family's: __ip_vs_get_out_rt 68, __ip_vs_get_out_rt_v6 1280
      const min = daf === AF_INET6 ? 1280 : 68;
      if (mtu < min) {
        pkt.reason = R.TUN_MTU;
        if (this.#c.trace) this.#note('xmit', `tunnel MTU ${mtu} below ${min}`);
        return -1;
      }
    }
    const len = v.ipEnd - v.l3Offset;
    if (v.af === AF_INET6) {
      // a reassembled datagram is judged by its largest fragment (__mtu_check_toobig_v6)
      if ((pkt.fragMax > 0 ? pkt.fragMax : len) > mtu) {
        if (v.fragOffset === 0 && !icmp) c.icmp.send(v, pkt.ifc!, ICMPV6.PACKET_TOO_BIG, 0, mtu);
        pkt.reason = R.FRAG_NEEDED;
        if (this.#c.trace)
          this.#note('icmp', `${len} bytes above MTU ${mtu}: ICMPv6 packet too big`);
        return -1;
      }
    } else if (!(mode & RT_TUNNEL && !c.ipvs.sysctl.pmtu_disc)) {
      // ensure_mtu_is_adequate: IPv4 by the whole length, even for a reassembled datagram (its
      // header has DF only when every fragment had it); only IPv6 judges by the largest fragment
      if (v.df && len > mtu && !icmp) {
        c.icmp.send(v, pkt.ifc!, ICMP.DEST_UNREACH, ICMP.FRAG_NEEDED, mtu & 0xffff);
        pkt.reason = R.FRAG_NEEDED;
        if (this.#c.trace)
          this.#note(
            'icmp',
            `${len} bytes with DF above MTU ${mtu}: ICMP fragmentation needed (mtu ${mtu})`,
          );
        return -1;
      }
    }
    this.#mtu = mtu + hdr;
    return 0;
  }

  /** Copies the packet of `v` out through `ifc` toward `nh`, encapsulated when `encap`. */
  #emit(
    pkt: Pkt,
    ifc: Iface,
    af: number,
    nh: ArrayLike<number>,
    v: PacketView,
    hdr: boolean,
  ): number {
    const c = this.#c;
    const tx = c.tx;
    const ipOff = v.l3Offset;
    const ipLen = v.ipEnd - ipOff;
    const hl = hdr ? encapHeaderLength(c.encap) : 0;
    const total = ipLen + hl;
    let mtu = this.#mtu;
    const fm = pkt.fragMax;
    // IPv6 fragments only a reassembled datagram, and only when it is larger than its largest
    // fragment (ip6_finish_output2)
    const v6frag = af === AF_INET6 && fm > 0 && !hdr && ipLen > fm;
    if (total > mtu || (af === AF_INET && fm > 0) || v6frag) {
      // only packets the MTU rules let through get here: IPv4 without DF (or ICMP, or tunnels
      // without pmtu_disc) are fragmented, as ip_fragment does; a reassembled datagram always
      // is, at its largest fragment's size at most (frag_max_size: "don't send fragments
      // larger than what we received")
      // An IPv6 tunnel's outer packet is fragmented too: ip_vs_tunnel_xmit_v6 sets ignore_df, so
      // what passed the MTU rules (IPv4 inside without DF, ICMP, a reassembled datagram whose
      // fragments fit) leaves as IPv6 fragments of the route's MTU (ip6_fragment)
      const v6tun = af === AF_INET6 && hdr;
      if (af !== AF_INET && !v6frag && !v6tun) {
        pkt.reason = R.FRAG_FAIL;
        return NF.STOLEN;
      }
      if (fm > 0 && fm < mtu && !v6tun) mtu = fm;
      // along its fragments' boundaries when they still fit (the frag_list path)
      const geo = fm > 0 && !hdr && !pkt.mangled ? this.#geometry(v, mtu) : null;
      let pending = false;
      const begin = (fl: number): number => {
        // the tracer sees each fragment once written: when the next starts, and at the end
        if (pending) tx.traced();
        const o = tx.begin(ifc, af, nh, 0, 14 + fl);
        pending = o >= 0;
        return o;
      };
      if (v6frag) {
        const re = c.reasm;
        const n = fragment6(
          v.buf,
          ipOff,
          ipLen,
          re.unfrag,
          mtu,
          re.id,
          14,
          begin,
          () => tx.buf,
          geo,
        );
        if (pending) tx.traced();
        pkt.reason = n < 0 ? tx.reason || R.FRAG_FAIL : -1;
        if (n >= 0 && this.#c.trace)
          this.#note(
            'xmit',
            `${total} bytes from fragments of up to ${fm}: sent as ${n} fragments`,
          );
        return NF.STOLEN;
      }
      let src = v.buf;
      let so = ipOff;
      if (hdr) {
        src = c.scratch;
        so = SCRATCH_HEADROOM;
        if (src !== v.buf) copyBytes(src, so, v.buf, ipOff, ipLen);
        else src.copyWithin(so, ipOff, ipOff + ipLen);
        so = encapsulate(c.encap, src, so, ipLen);
      }
      const n = v6tun
        ? fragment6(src, so, total, 40, mtu, c.ipId++ >>> 0, 14, begin, () => tx.buf, null)
        : fragment4(src, so, total, mtu, 14, begin, () => tx.buf, geo);
      if (pending) tx.traced();
      if (n < 0) {
        pkt.reason = tx.reason || R.FRAG_FAIL;
        return NF.STOLEN;
      }
      if (this.#c.trace)
        this.#note('xmit', `${total} bytes above MTU ${mtu}: sent as ${n} fragments`);
      pkt.reason = -1;
      return NF.STOLEN;
    }
    const off = tx.begin(ifc, af, nh, 0, 14 + total);
    if (off < 0) {
      pkt.reason = tx.reason;
      if (this.#c.trace)
        this.#note(
          'xmit',
          `not sent: ${tx.reason === R.NEIGH_DROP ? 'next hop unresolved and its queue full' : 'no transmit room'}`,
        );
      return NF.STOLEN;
    }
    const b = tx.buf;
    copyBytes(b, off + 14 + hl, v.buf, ipOff, ipLen);
    if (hdr) encapsulate(c.encap, b, off + 14 + hl, ipLen);
    tx.traced();
    pkt.reason = -1;
    return NF.STOLEN;
  }

  /**
   * The boundaries of the reassembled datagram in `v` when each of its fragments fits `mtu` and
   * they still cover it exactly, else null (the datagram is split afresh).
   */
  #geometry(v: PacketView, mtu: number): readonly number[] | null {
    const re = this.#c.reasm;
    const g = re.geometry;
    const room = mtu - re.unfrag - (v.af === AF_INET6 ? 8 : 0);
    if (g.length === 0 || g[g.length - 1] !== v.ipEnd - v.l3Offset - re.unfrag) return null;
    for (let i = 0; i < g.length; i += 2) {
      const n = g[i + 1]! - g[i]!;
      if (n > room || (i + 2 < g.length && (n & 7) !== 0)) return null;
    }
    return g;
  }

  #nh(af: number, target: ArrayLike<number>, toff: number): Uint32Array {
    const c = this.#c;
    const nh = c.nh;
    if (c.route.hasGw) nh.set(c.route.gw);
    else {
      nh[0] = target[toff]!;
      nh[1] = af === AF_INET6 ? target[toff + 1]! : 0;
      nh[2] = af === AF_INET6 ? target[toff + 2]! : 0;
      nh[3] = af === AF_INET6 ? target[toff + 3]! : 0;
    }
    return nh;
  }

  // ---- NAT ----------------------------------------------------------------------------------

  #nat(pkt: Pkt, h: number, icmp: boolean, hook: number): number {
    const c = this.#c;
    const t = c.ipvs.conns;
    const v = pkt.view;
    if (!icmp && t.flags(h) & CONN_F_NO_CPORT && v.l4Parsed) {
      c.ipvs.ops.fillCport(h, v.srcPort);
      if (this.#c.trace)
        this.#note('state', `client port ${v.srcPort} filled in (NO_CPORT cleared)`);
    }
    const d = t.daddrOff(h);
    const daf = t.daf(h);
    const mode = icmp && hook === HOOK.FORWARD ? RT_NON_LOCAL : RT_LOCAL | RT_NON_LOCAL | RT_RDR;
    const r = this.#outRoute(pkt, daf, t.cold, d, mode, 0, icmp, hook);
    if (r < 0) return NF.STOLEN;
    if (r === 1) {
      // "from world but DNAT to loopback address?": only the host's own packets (LOCAL_OUT, no
      // input route / device) may be DNATed to 127.0.0.0/8 or ::1 (ip_vs_nat_xmit{,_v6})
      if (hook !== HOOK.LOCAL_OUT && isLoopback(daf, t.cold, d)) {
        pkt.reason = R.LOOPBACK_DNAT;
        if (this.#c.trace)
          this.#note(
            'xmit',
            `from the network but DNAT to loopback ${formatIp(daf, t.cold, d)}: dropped`,
          );
        return NF.STOLEN;
      }
      pkt.reason = R.LOCAL;
      if (this.#c.trace)
        this.#note('xmit', 'real server is a local address: delivered to the local stack');
      return NF.ACCEPT;
    }
    const dport = t.dport(h);
    if (icmp) this.natIcmp(pkt, h, false);
    else {
      if (c.ftp.bound(h)) {
        if (!this.#appPrepare(pkt)) return NF.STOLEN;
        if (c.ftp.pktIn(h, pkt.view, pkt.mark) === APP.DROP) {
          pkt.reason = R.APP_DROP;
          return NF.STOLEN;
        }
        pkt.mangled = true;
        if (c.ftp.note) if (this.#c.trace) this.#note('rewrite', c.ftp.note);
      }
      const w = pkt.view;
      const crc = w.protocol === IPPROTO.SCTP && w.dstPort !== dport;
      if (daf === AF_INET) natRewriteDst4(w, t.cold[d]!, dport);
      else natRewrite6(w, 1, words4(t.cold, d, c.addr), dport);
      if (pkt.mangled) fullChecksums(w);
      if (this.#c.trace)
        this.#note(
          'rewrite',
          `DNAT → ${fmtAp(daf, t.cold, d, dport)} (${checksumNote(w.protocol, pkt.mangled, crc)})`,
        );
    }
    const ifc = c.net.ifaces[c.route.ifIndex]!;
    return this.#emit(pkt, ifc, daf, this.#nh(daf, t.cold, d), pkt.view, false);
  }

  /**
   * Makes the packet writable and resizable for an application helper: copies it to the scratch
   * buffer and decodes it there. Verifies the TCP checksum first (tcp_csum_check).
   */
  #appPrepare(pkt: Pkt): boolean {
    const c = this.#c;
    const v = pkt.view;
    if (!l4ChecksumOk(v.af, v.src, v.dst, IPPROTO.TCP, v.buf, v.l4Offset, v.ipEnd - v.l4Offset)) {
      pkt.reason = R.APP_DROP;
      if (this.#c.trace) this.#note('rewrite', 'application helper: bad TCP checksum, dropped');
      return false;
    }
    const len = v.ipEnd - v.l3Offset;
    copyBytes(c.scratch, SCRATCH_HEADROOM, v.buf, v.l3Offset, len);
    return decodeIp(v, c.scratch, SCRATCH_HEADROOM, len) === 0;
  }

  /** Prepares `pkt` for the helper on the out path (same as the in path). */
  appPrepare(pkt: Pkt): boolean {
    return this.#appPrepare(pkt);
  }

  /** Replaces `v.buf[start, end)` with `bytes[0, n)` in the scratch packet (FTP rewrites). */
  resize(v: PacketView, start: number, end: number, bytes: Uint8Array, n: number): boolean {
    const b = v.buf;
    const diff = n - (end - start);
    if (v.ipEnd + diff > b.length || v.ipTotalLength + diff > 65535) return false;
    b.copyWithin(start + n, end, v.ipEnd);
    b.set(bytes.subarray(0, n), start);
    v.ipEnd += diff;
    v.ipTotalLength += diff;
    v.l4Length += diff;
    v.payloadLength += diff;
    const l3 = v.l3Offset;
    if (v.af === AF_INET) {
      b[l3 + 2] = v.ipTotalLength >>> 8;
      b[l3 + 3] = v.ipTotalLength;
    } else {
      const pl = v.ipTotalLength - 40;
      b[l3 + 4] = pl >>> 8;
      b[l3 + 5] = pl;
    }
    return true;
  }

  /**
   * ip_vs_nat_icmp: `inout` false (toward the real server): outer destination and quoted source
   * become the real server (address and port); true (toward the client): outer source and quoted
   * destination become the VIP. Then the ICMP checksum is recomputed.
   */
  natIcmp(pkt: Pkt, h: number, inout: boolean): void {
    const t = this.#c.ipvs.conns;
    const v = pkt.view;
    const ci = pkt.inner;
    const af = v.af;
    const ports =
      ci.l4Parsed &&
      (ci.protocol === IPPROTO.TCP || ci.protocol === IPPROTO.UDP || ci.protocol === IPPROTO.SCTP);
    if (inout) {
      const o = t.vaddrOff(h);
      const port = ports ? t.vport(h) : -1;
      if (af === AF_INET) {
        natRewrite4(v, 0, t.hot[o]!, -1);
        natRewrite4(ci, 1, t.hot[o]!, port);
      } else {
        const a = words4(t.hot, o, this.#c.addr);
        natRewrite6(v, 0, a, -1);
        natRewrite6(ci, 1, a, port);
      }
    } else {
      const o = t.daddrOff(h);
      const port = ports ? t.dport(h) : -1;
      if (af === AF_INET) {
        natRewrite4(v, 1, t.cold[o]!, -1);
        natRewrite4(ci, 0, t.cold[o]!, port);
      } else {
        const a = words4(t.cold, o, this.#c.addr);
        natRewrite6(v, 1, a, -1);
        natRewrite6(ci, 0, a, port);
      }
    }
    const b = v.buf;
    // ip_vs_nat_icmp recomputes both IPv4 header checksums (ip_send_check): a quoted header that
    // arrived with a wrong one leaves with a right one
    if (af === AF_INET) {
      headerChecksum(b, v.l3Offset, v.ipHeaderLength);
      if (ci.ipVersion === 4) headerChecksum(b, ci.l3Offset, ci.ipHeaderLength);
    }
    const l4 = v.l4Offset;
    const len = v.ipEnd - l4;
    const cs =
      af === AF_INET
        ? icmpChecksum(b, l4, len)
        : l4Checksum(AF_INET6, v.src, v.dst, IPPROTO.ICMPV6, b, l4, len);
    b[l4 + 2] = cs >>> 8;
    b[l4 + 3] = cs;
    if (this.#c.trace)
      this.#note(
        'rewrite',
        inout
          ? `ICMP NAT: source and quoted destination → ${fmtAp(af, t.hot, t.vaddrOff(h), t.vport(h))}`
          : `ICMP NAT: destination and quoted source → ${fmtAp(af, t.cold, t.daddrOff(h), t.dport(h))}`,
      );
  }

  // ---- DR, TUN, BYPASS ------------------------------------------------------------------------

  #dr(pkt: Pkt, h: number, icmp: boolean, hook: number): number {
    const c = this.#c;
    const t = c.ipvs.conns;
    const d = t.daddrOff(h);
    const daf = t.daf(h);
    const r = this.#outRoute(pkt, daf, t.cold, d, RT_LOCAL | RT_NON_LOCAL, 0, icmp, hook);
    if (r < 0) return NF.STOLEN;
    if (r === 1) {
      pkt.reason = R.LOCAL;
      return NF.ACCEPT;
    }
    const nh = c.nh;
    for (let i = 0; i < 4; i++) nh[i] = daf === AF_INET6 || i === 0 ? t.cold[d + i]! : 0;
    if (this.#c.trace)
      this.#note('rewrite', `DR: destination MAC → ${formatIp(daf, nh)}'s (TTL ${pkt.view.ttl})`);
    return this.#emit(pkt, c.net.ifaces[c.route.ifIndex]!, daf, nh, pkt.view, false);
  }

  #tun(pkt: Pkt, h: number, icmp: boolean, hook: number): number {
    const c = this.#c;
    const t = c.ipvs.conns;
    const dest = c.ipvs.ops.dest(h);
    const d = t.daddrOff(h);
    const daf = t.daf(h);
    const p = c.encap;
    p.type = dest ? dest.tunType : ENCAP.IPIP;
    p.af = daf;
    p.csum = dest ? (dest.tunFlags & TUN_F_CSUM) !== 0 : false;
    p.remcsum = dest ? (dest.tunFlags & TUN_F_REMCSUM) !== 0 : false;
    p.remcsumStart = -1;
    p.remcsumOffset = -1;
    const hdr = encapHeaderLength(p);
    const r = this.#outRoute(
      pkt,
      daf,
      t.cold,
      d,
      RT_LOCAL | RT_NON_LOCAL | RT_TUNNEL,
      hdr,
      icmp,
      hook,
    );
    if (r < 0) return NF.STOLEN;
    if (r === 1) {
      pkt.reason = R.LOCAL;
      return NF.ACCEPT;
    }
    const v = pkt.view;
    for (let i = 0; i < 4; i++) {
      p.dst[i] = daf === AF_INET6 || i === 0 ? t.cold[d + i]! : 0;
      p.src[i] = c.route.src[i]!;
    }
    p.ipId = c.ipId++ & 0xffff;
    p.pmtuDisc = c.ipvs.sysctl.pmtu_disc !== 0;
    p.dstPort = dest ? dest.tunPort : 0;
    p.srcPort = p.type === ENCAP.GUE ? gueSourcePort(v) : 0;
    if (this.#c.trace)
      this.#note(
        'rewrite',
        `TUN ${['IPIP', 'GUE', 'GRE'][p.type]}: outer ${formatIp(daf, p.src)} → ${formatIp(daf, p.dst)}` +
          (p.type === ENCAP.GUE ? ` udp ${p.srcPort} → ${p.dstPort}` : '') +
          (p.csum || (p.type === ENCAP.GUE && p.remcsum) ? ' with checksum' : '') +
          (p.type === ENCAP.GUE && p.remcsum ? ' (remcsum)' : ''),
      );
    return this.#emit(pkt, c.net.ifaces[c.route.ifIndex]!, daf, this.#nh(daf, t.cold, d), v, true);
  }

  #bypass(pkt: Pkt, hook: number): number {
    const c = this.#c;
    const v = pkt.view;
    const r = this.#outRoute(pkt, v.af, v.dst, 0, RT_NON_LOCAL, 0, false, hook);
    if (r < 0) return NF.STOLEN;
    if (this.#c.trace)
      this.#note('xmit', `BYPASS: forwarded unchanged to ${formatIp(v.af, v.dst)}`);
    return this.#emit(
      pkt,
      c.net.ifaces[c.route.ifIndex]!,
      v.af,
      this.#nh(v.af, v.dst, 0),
      v,
      false,
    );
  }

  /**
   * Forwards a packet the out handler accepted after rewriting it (the host's routing in the
   * kernel): route to its destination, MTU, next hop. TTL was handled on the way in.
   */
  forward(pkt: Pkt): number {
    const c = this.#c;
    const v = pkt.view;
    const res = c.route;
    if (!c.net.route(v.af, v.dst, 0, res)) {
      pkt.reason = R.NO_ROUTE;
      if (this.#c.trace) this.#note('xmit', `no route to ${formatIp(v.af, v.dst)}`);
      return NF.DROP;
    }
    if (res.local) {
      pkt.reason = R.LOCAL;
      return NF.ACCEPT;
    }
    const len = v.ipEnd - v.l3Offset;
    if (len > res.mtu && (v.af === AF_INET6 || v.df)) {
      if (v.af === AF_INET6) c.icmp.send(v, pkt.ifc!, ICMPV6.PACKET_TOO_BIG, 0, res.mtu);
      else c.icmp.send(v, pkt.ifc!, ICMP.DEST_UNREACH, ICMP.FRAG_NEEDED, res.mtu);
      pkt.reason = R.FRAG_NEEDED;
      return NF.DROP;
    }
    this.#mtu = res.mtu;
    this.#emit(pkt, c.net.ifaces[res.ifIndex]!, v.af, this.#nh(v.af, v.dst, 0), v, false);
    return pkt.reason === -1 ? NF.ACCEPT : NF.DROP;
  }
}

/** Recomputes the IPv4 header checksum and the transport checksum of `v` (after a payload change). */
export function fullChecksums(v: PacketView): void {
  const b = v.buf;
  if (v.af === AF_INET) headerChecksum(b, v.l3Offset, v.ipHeaderLength);
  if (v.protocol === IPPROTO.TCP || v.protocol === IPPROTO.UDP) {
    const o = v.l4Offset + (v.protocol === IPPROTO.TCP ? 16 : 6);
    if (v.protocol === IPPROTO.UDP && b[o] === 0 && b[o + 1] === 0 && v.af === AF_INET) return;
    const c = l4Checksum(v.af, v.src, v.dst, v.protocol, b, v.l4Offset, v.ipEnd - v.l4Offset);
    b[o] = c >>> 8;
    b[o + 1] = c;
  }
}

/** Writes the IPv4 header checksum of the header at `b[off, off+len)`. */
export function headerChecksum(b: Uint8Array, off: number, len: number): void {
  write16(b, off + 10, ipv4HeaderChecksum(b, off, len));
}

/** GUE source port: a hash of the inner flow mapped into the local port range (udp_flow_src_port). */
export function gueSourcePort(v: PacketView): number {
  let x =
    Math.imul(v.src[0]! ^ v.src[3]!, 0x9e3779b1) ^ Math.imul(v.dst[0]! ^ v.dst[3]!, 0x85ebca6b);
  x ^= Math.imul((v.srcPort << 16) | v.dstPort, 0xc2b2ae35) ^ v.protocol;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  return PORT_MIN + Math.floor(((x >>> 0) * (PORT_MAX - PORT_MIN)) / 4294967296);
}

function fmtAp(af: number, w: ArrayLike<number>, o: number, port: number): string {
  const a = formatIp(af, w, o);
  return af === AF_INET6 ? `[${a}]:${port}` : `${a}:${port}`;
}

/**
 * How a NAT rewrite left the checksums, for the trace: TCP / UDP incrementally (recomputed when a
 * helper changed the payload); SCTP's CRC32c recomputed only when the port changed
 * (sctp_dnat_handler / sctp_snat_handler), else left as it came.
 */
export function checksumNote(protocol: number, mangled: boolean, crc: boolean): string {
  if (protocol === IPPROTO.SCTP) return crc ? 'CRC32c recomputed' : 'CRC32c unchanged';
  return mangled ? 'checksums recomputed' : 'incremental checksums';
}
