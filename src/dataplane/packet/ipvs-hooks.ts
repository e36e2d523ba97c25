/**
 * IPVS's hook handlers (spec §4.5, §5.2–5.4; kernel twin ip_vs_core.c): `in` — lookup,
 * conn_reuse_mode and expire_nodest_conn, scheduling and the "leave" path, statistics, the INPUT
 * transition, transmission, `in_pkts` and put; `out` — the out-lookup, SIP server-initiated flows,
 * nat_icmp_send, SNAT, statistics and the OUTPUT transition; and the ICMP handlers for errors
 * related to connections in both directions, including errors about the director's own tunnels.
 * The engine (./engine.ts) registers them in its hook chain and feeds them frames.
 */
import { AF_INET, AF_INET6, type Af, formatIp } from '../../core/addr.js';
import { NO_CONN } from '../../core/conn.js';
import { SCHED_DROP, SCHED_LEAVE, SCHED_PASS } from '../../core/conn-ops.js';
import {
  CONN_F_FWD_MASK,
  CONN_F_ONE_PACKET,
  DEST_F_AVAILABLE,
  FWD_BYPASS,
  FWD_MASQ,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_ONEPACKET,
  TUN_TYPE_GRE,
  TUN_TYPE_GUE,
  TUN_TYPE_IPIP,
} from '../../core/constants.js';
import type { Ipvs } from '../../core/ipvs.js';
import type { Dest, Service } from '../../core/service.js';
import {
  DIR_INPUT,
  DIR_OUTPUT,
  SCTP_CID_ABORT,
  SCTP_CID_INIT,
  protoOps,
  sctpEvent,
  sctpMayOpen,
  tcpMayOpen,
} from '../../proto/index.js';
import { l4ChecksumOk, csumFold, csumPartial } from '../../packet/checksum.js';
import { ICMP, ICMPV6, IPPROTO, TCP_FLAG } from '../../packet/constants.js';
import { decodeIcmpInner } from '../../packet/decode.js';
import { natRewrite4, natRewrite6 } from '../../packet/nat.js';
import { PacketView } from '../../packet/view.js';
import { words4 } from './bytes.js';
import { R } from './counters.js';
import type { Ctx, Pkt } from './ctx.js';
import { APP } from './ftp.js';
import { HOOK, NF } from './hooks.js';
import { Xmit, checksumNote, fullChecksums } from './xmit.js';

/** Returned by the ICMP handlers for ICMP that is not related to a connection. */
export const UNRELATED = -2;
const ZERO = new Uint32Array(4);
/** AH / ESP follow the IKE connection between the same hosts: UDP 500 → 500 (PORT_ISAKMP). */
const IKE_PORT = 500;

/** AH or ESP: their packets follow the IKE connection between the same hosts. */
const isAhEsp = (p: number): boolean => p === IPPROTO.ESP || p === IPPROTO.AH;

/**
 * Whether the ICMP handlers look a quoted packet up: TCP / UDP / SCTP with its ports read, or AH /
 * ESP unless a later fragment (their handlers are "don't defrag"); anything else passes.
 */
function quotedLookup(q: PacketView): boolean {
  const p = q.protocol;
  if (isAhEsp(p)) return q.fragOffset === 0;
  return (p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_SCTP) && q.l4Parsed;
}

/** IPVS's `in`, `out` and ICMP handlers. */
export class IpvsHandlers {
  readonly ipvs: Ipvs;
  readonly ctx: Ctx;
  readonly xmit: Xmit;
  /** Services with the SIP persistence engine (conn_out is tried when > 0). */
  sipServices = 0;
  /** NAT destinations (ip_vs_has_real_service) and tunnel destinations (ip_vs_find_tunnel). */
  masqDests: Dest[] = [];
  tunDests: Dest[] = [];
  readonly #fake = new PacketView();

  constructor(ctx: Ctx, xmit: Xmit) {
    this.ipvs = ctx.ipvs;
    this.ctx = ctx;
    this.xmit = xmit;
  }

  get icmp() {
    return this.ctx.icmp;
  }
  get frag() {
    return this.ctx.frag;
  }
  get ftp() {
    return this.ctx.ftp;
  }
  get net() {
    return this.ctx.net;
  }

  /** The `in` handler (LOCAL_IN 99, LOCAL_OUT -98). */
  in(pkt: Pkt, hook: number): number {
    return this.#in(pkt, hook);
  }

  /** The `out` handler (LOCAL_IN 98, LOCAL_OUT -99, FORWARD 100). */
  out(pkt: Pkt, hook: number): number {
    return this.#out(pkt, hook);
  }

  /** ip_vs_forward_icmp (FORWARD 99): ICMP errors in transit go to the incoming ICMP handler. */
  forwardIcmp(pkt: Pkt, hook: number): number {
    const v = pkt.view;
    if (v.protocol !== IPPROTO.ICMP && v.protocol !== IPPROTO.ICMPV6) return NF.ACCEPT;
    // like the in handler: nothing to do without the family's hooks or for a standby
    // (backup_only with a backup running)
    if (!this.ipvs.services.hasFamily(v.af) || this.ipvs.standby) return NF.ACCEPT;
    const r = this.#inIcmp(pkt, hook);
    return r === UNRELATED ? NF.ACCEPT : r;
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** The state-machine argument of a packet: TCP flags, the SCTP event, 0 for UDP. */
  #event(v: PacketView): number {
    if (v.protocol === IPPROTO_TCP) return v.tcpFlags;
    if (v.protocol === IPPROTO_SCTP) return sctpEvent(v.sctpChunkType, v.sctpNextChunkType);
    return 0;
  }

  #traceState(h: number, old: number, dir: string): void {
    const t = this.ipvs.conns;
    const po = protoOps(t.protocol(h));
    const d = this.ipvs.ops.dest(h);
    const name = (s: number): string => (po ? po.stateName(s) : String(s));
    this.ctx.trace!.step(
      'state',
      `${dir}: ${name(old)} → ${name(t.state(h))}, timeout ${t.timeout(h) / 1000} s` +
        (d ? `; ${d.toString()} ActiveConn ${d.activeConns} InActConn ${d.inactConns}` : ''),
    );
  }

  #connText(h: number): string {
    const t = this.ipvs.conns;
    const af = t.af(h);
    const ap = (w: Uint32Array, o: number, p: number): string =>
      af === AF_INET6 ? `[${formatIp(af, w, o)}]:${p}` : `${formatIp(af, w, o)}:${p}`;
    const fwd = ['Masq', 'Local', 'Tunnel', 'Route', 'Bypass'][t.flags(h) & CONN_F_FWD_MASK];
    return `#${h} ${ap(t.hot, t.caddrOff(h), t.cport(h))} → ${ap(t.hot, t.vaddrOff(h), t.vport(h))} → ${ap(t.cold, t.daddrOff(h), t.dport(h))} ${fwd}`;
  }

  /** True when connection `h` is keyed by client `c` and VIP `d` (validates fragment-table hits). */
  #connIs(h: number, af: number, c: Uint32Array, d: Uint32Array | null): boolean {
    const t = this.ipvs.conns;
    if (!this.ipvs.wheel.isArmed(h) || t.af(h) !== af) return false;
    const co = t.caddrOff(h);
    const n = af === AF_INET6 ? 4 : 1;
    for (let i = 0; i < n; i++) if (t.hot[co + i] !== c[i]) return false;
    if (!d) return true;
    const vo = t.vaddrOff(h);
    for (let i = 0; i < n; i++) if (t.hot[vo + i] !== d[i]) return false;
    return true;
  }

  #icmpChecksumOk(v: PacketView): boolean {
    if (v.af === AF_INET)
      return csumFold(csumPartial(v.buf, v.l4Offset, v.ipEnd - v.l4Offset)) === 0xffff;
    return l4ChecksumOk(
      AF_INET6,
      v.src,
      v.dst,
      IPPROTO.ICMPV6,
      v.buf,
      v.l4Offset,
      v.ipEnd - v.l4Offset,
    );
  }

  // ---- the in handler (spec §5.2) -----------------------------------------------------------

  #in(pkt: Pkt, hook: number): number {
    const ipvs = this.ipvs;
    const c = this.ctx;
    const v = pkt.view;
    if (pkt.property) return NF.ACCEPT;
    // a broadcast or multicast frame is not for IPVS, even to a VIP (pkt_type != PACKET_HOST)
    if (!pkt.host && hook !== HOOK.LOCAL_OUT) return NF.ACCEPT;
    // the family's hooks exist only while it has a service (spec §1.1)
    if (!ipvs.services.hasFamily(v.af) || ipvs.standby) return NF.ACCEPT;
    const proto = v.protocol;
    if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) {
      const r = this.#inIcmp(pkt, hook);
      if (r !== UNRELATED) return r;
      return NF.ACCEPT;
    }
    if (isAhEsp(proto)) return this.#inAhEsp(pkt, hook);
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && proto !== IPPROTO_SCTP) {
      if (ipvs.sysctl.ignore_tunneled) pkt.property = true;
      return NF.ACCEPT;
    }
    const t = ipvs.conns;
    const ops = ipvs.ops;
    if (!v.l4Parsed) {
      // a later fragment: it follows the connection of its first fragment
      const h = this.frag.lookup(v, 0, ipvs.now());
      if (h < 0 || !this.#connIs(h, v.af, v.src, v.dst)) {
        pkt.reason = R.FRAG_UNKNOWN;
        return NF.ACCEPT;
      }
      if (c.trace) c.trace.step('lookup', `later fragment follows ${this.#connText(h)}`);
      ops.inStats(h, v.ipTotalLength);
      pkt.forwarded = 0;
      const verdict = this.xmit.send(pkt, h, false, hook);
      ops.put(h);
      return verdict;
    }
    const af = v.af;
    let h = t.inGet(af, proto, v.src, v.srcPort, v.dst, v.dstPort);
    if (c.trace)
      c.trace.step('lookup', h === NO_CONN ? 'in: no connection' : `in: ${this.#connText(h)}`);
    const sc = ipvs.sysctl;
    // step 8: a connection opener hitting an existing connection; the expire_nodest_conn rule
    // for a weight-0 destination applies even with conn_reuse_mode 0 (ip_vs_in_hook)
    if (h !== NO_CONN && (sc.conn_reuse_mode || sc.expire_nodest_conn) && v.fragOffset === 0) {
      const isNew =
        proto === IPPROTO_TCP
          ? (v.tcpFlags & TCP_FLAG.SYN) !== 0
          : proto === IPPROTO_SCTP && v.sctpChunkType === SCTP_CID_INIT;
      if (isNew) {
        const d = ops.dest(h);
        let resched = false;
        if (sc.expire_nodest_conn && d && d.weight === 0) resched = true;
        else if (ops.reusable(h)) resched = true;
        if (resched) {
          if (t.nControl(h) === 0) ops.expireNow(h);
          if (c.trace)
            c.trace.step('lookup', `conn_reuse_mode: connection #${h} expired, rescheduling`);
          h = NO_CONN;
        }
      }
    }
    // step 9: the destination was deleted
    if (h !== NO_CONN) {
      const d = ops.dest(h);
      if (d && !(d.flags & DEST_F_AVAILABLE)) {
        if (sc.expire_nodest_conn) {
          ops.expireNow(h);
          if (c.trace)
            c.trace.step(
              'lookup',
              `destination deleted: connection #${h} expired (expire_nodest_conn)`,
            );
          h = NO_CONN;
        } else {
          pkt.reason = R.DEST_GONE;
          if (c.trace)
            c.trace.step('lookup', 'destination deleted: dropped (expire_nodest_conn = 0)');
          return NF.DROP;
        }
      }
    }
    // step 10: schedule
    if (h === NO_CONN) {
      // sctp_conn_schedule drops a packet without a chunk header, before any service lookup
      if (proto === IPPROTO_SCTP && v.sctpChunkType < 0) {
        if (c.trace) c.trace.step('lookup', 'SCTP packet without a chunk: dropped');
        return NF.DROP;
      }
      let may: boolean;
      if (proto === IPPROTO_TCP) may = tcpMayOpen(v.tcpFlags, sc.sloppy_tcp !== 0);
      else if (proto === IPPROTO_SCTP) may = sctpMayOpen(v.sctpChunkType, sc.sloppy_sctp !== 0);
      else may = true;
      if (!may) return NF.ACCEPT;
      const svc = ipvs.services.find(af, pkt.mark, proto, v.dst, v.dstPort);
      if (!svc) {
        if (c.trace) c.trace.step('lookup', 'no virtual service');
        return NF.ACCEPT;
      }
      const flow = c.flow;
      flow.set(af as Af, proto, v.src, v.srcPort, v.dst, v.dstPort, pkt.mark);
      flow.length = v.ipTotalLength;
      // the SIP engine reads to the datagram's end (skb->len), not to the UDP length
      if (proto === IPPROTO_UDP)
        flow.withPayload(v.buf, v.payloadOffset, v.ipEnd - v.payloadOffset);
      h = ops.connSchedule(svc, flow);
      if (h < 0) return this.#schedFail(pkt, svc, h, false);
      this.ftp.bindIfFtp(h, (t.flags(h) & CONN_F_FWD_MASK) === FWD_MASQ);
      if (c.trace)
        c.trace.step(
          'schedule',
          `${svc.toString()} ${svc.schedName}: ${ops.dest(h)?.toString() ?? '?'} → ${this.#connText(h)}`,
        );
    }
    // step 11: statistics, state, transmit
    ops.inStats(h, v.ipTotalLength);
    const old = t.state(h);
    ops.transition(h, DIR_INPUT, this.#event(v));
    if (c.trace) this.#traceState(h, old, 'INPUT');
    if (v.mf) this.frag.record(v, 0, h, ipvs.now());
    pkt.forwarded = 0;
    const verdict = this.xmit.send(pkt, h, false, hook);
    // step 12: count, and let a running sync master look at the connection
    const sm = ipvs.syncMaster;
    if (t.flags(h) & CONN_F_ONE_PACKET) {
      const ct = t.control(h);
      if (sm !== null) sm.syncConn(h, sc.sync_threshold[0]);
      else if (ct !== NO_CONN) t.setInPkts(ct, t.inPkts(ct) + 1);
    } else {
      t.setInPkts(h, t.inPkts(h) + 1);
      if (sm !== null) sm.syncConn(h, t.inPkts(h));
    }
    ops.put(h);
    return verdict;
  }

  /**
   * AH / ESP (spec §3.2, §4.4): never scheduled; a packet follows the IKE connection (UDP
   * 500 → 500) between the same hosts and is forwarded with its method, without a state change.
   */
  #inAhEsp(pkt: Pkt, hook: number): number {
    const ipvs = this.ipvs;
    const c = this.ctx;
    const v = pkt.view;
    const h = ipvs.conns.inGet(v.af, IPPROTO_UDP, v.src, IKE_PORT, v.dst, IKE_PORT);
    if (c.trace)
      c.trace.step(
        'lookup',
        h === NO_CONN
          ? 'AH/ESP: no IKE (UDP 500) connection'
          : `AH/ESP follows ${this.#connText(h)}`,
      );
    if (h === NO_CONN) return NF.ACCEPT;
    const d = ipvs.ops.dest(h);
    if (d && !(d.flags & DEST_F_AVAILABLE)) {
      if (!ipvs.sysctl.expire_nodest_conn) {
        pkt.reason = R.DEST_GONE;
        return NF.DROP;
      }
      ipvs.ops.expireNow(h);
      return NF.ACCEPT;
    }
    ipvs.ops.inStats(h, v.ipTotalLength);
    pkt.forwarded = 0;
    const verdict = this.xmit.send(pkt, h, false, hook);
    ipvs.conns.setInPkts(h, ipvs.conns.inPkts(h) + 1);
    if (ipvs.syncMaster !== null) ipvs.syncMaster.syncConn(h, ipvs.conns.inPkts(h));
    ipvs.ops.put(h);
    return verdict;
  }

  /** A SCHED_* result: pass, drop, or the "leave" path. */
  #schedFail(pkt: Pkt, svc: Service, code: number, icmp: boolean): number {
    const c = this.ctx;
    if (code === SCHED_PASS) {
      if (c.trace) c.trace.step('schedule', `${svc.toString()}: not scheduled (pass)`);
      return NF.ACCEPT;
    }
    if (code === SCHED_DROP) {
      pkt.reason = R.SCHED_DROP;
      if (c.trace)
        c.trace.step(
          'schedule',
          `${svc.toString()}: dropped (table full, drop_packet or no persistence-engine data)`,
        );
      return NF.DROP;
    }
    void SCHED_LEAVE;
    if (c.trace) c.trace.step('schedule', `${svc.toString()}: no destination available`);
    return this.#leave(pkt, svc, icmp);
  }

  /** ip_vs_leave (spec §5.4). */
  #leave(pkt: Pkt, svc: Service, icmp: boolean): number {
    const c = this.ctx;
    const ipvs = this.ipvs;
    const v = pkt.view;
    // the quoted packet of an ICMP error is a reply: its source port is the service's side
    const dport = icmp ? pkt.inner.srcPort : v.fragOffset ? 0 : v.dstPort;
    // ip_vs_addr_is_unicast: IPv4 asks the routing tables (RTN_UNICAST: not local, multicast,
    // broadcast or 0/8); IPv6 only looks at the address (ipv6_addr_type & IPV6_ADDR_UNICAST: not
    // multicast, ::, or ::ffff:0:0/96), so a local IPv6 address gets an entry whose transmit then
    // finds no non-local route and drops the packet silently
    const d = v.dst;
    const unicast =
      v.af === AF_INET
        ? d[0]! >>> 28 !== 0xe &&
          d[0] !== 0xffffffff &&
          d[0]! >>> 24 !== 0 &&
          !this.net.isLocal(AF_INET, d, 0)
        : d[0]! >>> 24 !== 0xff &&
          !(d[0] === 0 && d[1] === 0 && (d[2] === 0xffff || (d[2] === 0 && d[3] === 0)));
    if (ipvs.sysctl.cache_bypass && svc.fwmark && !icmp && !v.isFragment && unicast) {
      const h = ipvs.ops.newConn(
        v.af,
        v.protocol,
        v.src,
        v.srcPort,
        v.dst,
        v.dstPort,
        v.af,
        ZERO,
        0,
        FWD_BYPASS |
          (svc.flags & SVC_F_ONEPACKET && v.protocol === IPPROTO_UDP ? CONN_F_ONE_PACKET : 0),
        null,
        pkt.mark,
      );
      if (h === NO_CONN) {
        pkt.reason = R.SCHED_DROP;
        return NF.DROP;
      }
      if (c.trace) c.trace.step('schedule', `cache_bypass: ${this.#connText(h)}`);
      ipvs.ops.transition(h, DIR_INPUT, this.#event(v));
      pkt.forwarded = 0;
      const verdict = this.xmit.send(pkt, h, false, HOOK.LOCAL_IN);
      ipvs.conns.setInPkts(h, ipvs.conns.inPkts(h) + 1);
      ipvs.ops.put(h);
      return verdict;
    }
    if (svc.port === 21 && dport !== 21) return NF.ACCEPT;
    pkt.reason = R.NO_DEST;
    if (icmp) return NF.DROP;
    if (v.af === AF_INET6) this.icmp.send(v, pkt.ifc!, ICMPV6.DEST_UNREACH, ICMPV6.PORT_UNREACH, 0);
    else this.icmp.send(v, pkt.ifc!, ICMP.DEST_UNREACH, ICMP.PORT_UNREACH, 0);
    if (c.trace) c.trace.step('icmp', `port unreachable sent to ${formatIp(v.af, v.src)}`);
    return NF.DROP;
  }

  // ---- ICMP related to connections (spec §4.5) ----------------------------------------------

  /** Common checks: UNRELATED, a verdict, or 0 when `pkt.inner` holds the quoted packet. */
  #icmpPrologue(pkt: Pkt): number {
    const v = pkt.view;
    if (v.af === AF_INET) {
      const ty = v.icmpType;
      if (ty !== ICMP.DEST_UNREACH && ty !== ICMP.SOURCE_QUENCH && ty !== ICMP.TIME_EXCEEDED)
        return UNRELATED;
    } else {
      if (v.icmpType >= 128 || v.icmpType < 0) return UNRELATED;
      if (v.isFragment) {
        pkt.reason = R.ICMP6_FRAG;
        return NF.DROP;
      }
    }
    if (!v.l4Parsed) return NF.ACCEPT;
    if (decodeIcmpInner(pkt.inner, v) !== 0) return NF.ACCEPT;
    return 0;
  }

  #findTunnel(af: number, addr: Uint32Array, type: number, port: number): Dest | null {
    // ip_vs_find_tunnel: the first tunnel destination of (af, addr, tun_port) in the real-server
    // table (the one hashed most recently), whatever its tunnel type; the caller's type must be
    // that one's
    const ds = this.tunDests;
    let best: Dest | null = null;
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i]!;
      if (d.af !== af || d.tunPort !== port || d.addr[0] !== addr[0]) continue;
      if (
        af === AF_INET6 &&
        (d.addr[1] !== addr[1] || d.addr[2] !== addr[2] || d.addr[3] !== addr[3])
      )
        continue;
      if (best === null || d.rsOrder > best.rsOrder) best = d;
    }
    return best !== null && best.tunType === type ? best : null;
  }

  /** Decodes the IP packet at `buf[off, end)` quoted inside a quoted tunnel packet into `inner2`. */
  #decodeNested(pkt: Pkt, off: number): boolean {
    const f = this.#fake;
    const v = pkt.view;
    f.buf = v.buf;
    f.l4Offset = off - 8;
    f.ipEnd = v.ipEnd;
    f.icmpIsError = true;
    f.malformed = 0;
    return decodeIcmpInner(pkt.inner2, f) === 0 && pkt.inner2.ipVersion === 4;
  }

  #inIcmp(pkt: Pkt, hook: number): number {
    const pr = this.#icmpPrologue(pkt);
    if (pr !== 0) return pr;
    const ipvs = this.ipvs;
    const c = this.ctx;
    const v = pkt.view;
    const ci = pkt.inner;
    const af = v.af;
    const b = v.buf;
    let orig = ci;
    let tunnel = false;
    let tdest: Dest | null = null;
    if (af === AF_INET && ci.ipVersion === 4) {
      if (ci.protocol === IPPROTO.IPIP) {
        if (ci.fragOffset || hook !== HOOK.LOCAL_IN) return NF.ACCEPT;
        tdest = this.#findTunnel(AF_INET, ci.dst, TUN_TYPE_IPIP, 0);
        if (!tdest || !this.#decodeNested(pkt, ci.l4Offset)) return NF.ACCEPT;
        tunnel = true;
      } else if (
        (ci.protocol === IPPROTO.UDP || ci.protocol === IPPROTO.GRE) &&
        hook === HOOK.LOCAL_IN
      ) {
        if (ci.fragOffset) return NF.ACCEPT;
        let inner = -1;
        const p = ci.l4Offset;
        if (ci.protocol === IPPROTO.UDP && ci.l4Parsed) {
          tdest = this.#findTunnel(AF_INET, ci.dst, TUN_TYPE_GUE, ci.dstPort);
          const g = p + 8;
          if (tdest && g + 4 <= v.ipEnd) {
            const b0 = b[g]!;
            if (b0 >>> 6 === 0 && !(b0 & 0x20) && b[g + 1] === IPPROTO.IPIP)
              inner = g + 4 + ((b0 & 31) << 2);
          }
        } else if (ci.protocol === IPPROTO.GRE && p + 4 <= v.ipEnd) {
          tdest = this.#findTunnel(AF_INET, ci.dst, TUN_TYPE_GRE, 0);
          const flags = (b[p]! << 8) | b[p + 1]!;
          if (tdest && (flags & 0x7fff) === 0 && b[p + 2] === 0x08 && b[p + 3] === 0x00)
            inner = p + 4 + (flags & 0x8000 ? 4 : 0);
        }
        if (inner > 0) {
          if (!this.#decodeNested(pkt, inner)) return NF.ACCEPT;
          tunnel = true;
        }
      }
    }
    if (tunnel) orig = pkt.inner2;
    const proto = orig.protocol;
    if (!quotedLookup(orig)) return NF.ACCEPT;
    // a quoted AH / ESP packet belongs to the IKE connection
    const ahEsp = isAhEsp(proto);
    const lp = ahEsp ? IPPROTO_UDP : proto;
    const sport = ahEsp ? IKE_PORT : orig.srcPort;
    const dport = ahEsp ? IKE_PORT : orig.dstPort;
    const t = ipvs.conns;
    // the quoted headers are reversed (a reply), except inside our own tunnel (a request)
    let h = tunnel
      ? t.inGet(af, lp, orig.src, sport, orig.dst, dport)
      : t.inGet(af, lp, orig.dst, dport, orig.src, sport);
    if (c.trace)
      c.trace.step(
        'lookup',
        `ICMP ${v.icmpType}/${v.icmpCode}${tunnel ? ' about our tunnel' : ''}: ${h === NO_CONN ? 'no connection' : this.#connText(h)}`,
      );
    // an error does not restart an existing entry's timer (__ip_vs_conn_put); one it created does
    let created = false;
    if (h === NO_CONN) {
      // AH / ESP never schedule (ah_esp_conn_schedule passes the packet on)
      if (tunnel || ahEsp || !ipvs.sysctl.schedule_icmp) return NF.ACCEPT;
      const svc = ipvs.services.find(af, pkt.mark, proto, orig.src, orig.srcPort);
      if (!svc) return NF.ACCEPT;
      const flow = c.flow;
      flow.set(af as Af, proto, orig.src, orig.srcPort, orig.dst, orig.dstPort, pkt.mark);
      flow.inverse = true;
      h = ipvs.ops.connSchedule(svc, flow);
      if (h < 0) return this.#schedFail(pkt, svc, h, true);
      created = true;
      if (c.trace) c.trace.step('schedule', `schedule_icmp: ${this.#connText(h)}`);
    }
    if (!this.#icmpChecksumOk(v)) {
      pkt.reason = R.ICMP_BAD_CSUM;
      if (created) ipvs.ops.put(h);
      return NF.DROP;
    }
    let verdict: number;
    if (tunnel) {
      const type = v.icmpType;
      const code = v.icmpCode;
      let info = v.icmpRest;
      let relay = true;
      if (type === ICMP.DEST_UNREACH && code === ICMP.FRAG_NEEDED) {
        let mtu = info & 0xffff;
        // ipv4_update_pmtu for the tunnel packet's destination (./pmtu.ts), then the path's
        // MTU as it now is, when there is a route
        const now = ipvs.now();
        const routed = this.net.route(AF_INET, ci.dst, 0, c.route) && !c.route.local;
        if (routed) mtu = c.pmtu.update(AF_INET, ci.dst, 0, mtu, c.route.mtu, now);
        if (!orig.df) relay = false;
        else {
          if (mtu > 68 + 20) mtu -= 20;
          info = mtu & 0xffff;
        }
      }
      if (relay) {
        this.icmp.send(orig, pkt.ifc!, type, code, info, orig.l3Offset, v.ipEnd);
        ipvs.ops.outStats(h, v.ipEnd - orig.l3Offset);
        if (c.trace)
          c.trace.step(
            'icmp',
            `tunnel error relayed to ${formatIp(af, orig.src)} (type ${type} code ${code} info ${info})`,
          );
      } else if (c.trace)
        c.trace.step(
          'icmp',
          'fragmentation needed for a packet without DF: path MTU recorded, error consumed',
        );
      pkt.reason = R.CONSUMED;
      verdict = NF.STOLEN;
    } else if (
      af === AF_INET6 &&
      hook === HOOK.LOCAL_OUT &&
      (t.flags(h) & CONN_F_FWD_MASK) !== FWD_MASQ
    ) {
      // ip_vs_in_icmp_v6: the host's own error about a DR / TUN / LOCALNODE connection just goes
      verdict = NF.ACCEPT;
    } else {
      ipvs.ops.inStats(h, v.ipTotalLength);
      pkt.forwarded = 0;
      verdict = this.xmit.send(pkt, h, true, hook);
      if ((t.flags(h) & CONN_F_FWD_MASK) !== FWD_MASQ) t.setInPkts(h, t.inPkts(h) + 1);
    }
    if (created) ipvs.ops.put(h);
    return verdict;
  }

  // ---- the out handler (spec §5.3) ----------------------------------------------------------

  #out(pkt: Pkt, hook: number): number {
    const ipvs = this.ipvs;
    const c = this.ctx;
    const v = pkt.view;
    if (pkt.property || !ipvs.services.hasFamily(v.af)) return NF.ACCEPT;
    const proto = v.protocol;
    if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) {
      const r = this.#outIcmp(pkt);
      return r === UNRELATED ? NF.ACCEPT : r;
    }
    const t = ipvs.conns;
    if (isAhEsp(proto)) {
      const h = t.outGet(v.af, IPPROTO_UDP, v.src, IKE_PORT, v.dst, IKE_PORT);
      if (h === NO_CONN) return NF.ACCEPT;
      if (c.trace) c.trace.step('lookup', `AH/ESP reply follows ${this.#connText(h)}`);
      return this.#response(pkt, h, true);
    }
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && proto !== IPPROTO_SCTP) return NF.ACCEPT;
    if (!v.l4Parsed) {
      const h = this.frag.lookup(v, 1, ipvs.now());
      if (h < 0 || !this.#connIs(h, v.af, v.dst, null)) return NF.ACCEPT;
      if (c.trace) c.trace.step('lookup', `later fragment follows ${this.#connText(h)}`);
      return this.#response(pkt, h, true);
    }
    let h = t.outGet(v.af, proto, v.src, v.srcPort, v.dst, v.dstPort);
    if (c.trace && h !== NO_CONN) c.trace.step('lookup', `out: ${this.#connText(h)}`);
    if (h === NO_CONN && this.sipServices > 0 && proto === IPPROTO_UDP && hook !== HOOK.LOCAL_IN) {
      const flow = c.flow;
      flow
        .set(v.af as Af, proto, v.src, v.srcPort, v.dst, v.dstPort, pkt.mark)
        .withPayload(v.buf, v.payloadOffset, v.ipEnd - v.payloadOffset);
      h = ipvs.ops.peConnOut(flow);
      if (c.trace && h !== NO_CONN)
        c.trace.step('schedule', `SIP server-initiated flow: ${this.#connText(h)}`);
    }
    if (h !== NO_CONN) {
      if (v.mf) this.frag.record(v, 1, h, ipvs.now());
      return this.#response(pkt, h, false);
    }
    if (ipvs.sysctl.nat_icmp_send && this.#hasRealService(v)) {
      const rst =
        (proto === IPPROTO_TCP && (v.tcpFlags & TCP_FLAG.RST) !== 0) ||
        (proto === IPPROTO_SCTP && v.sctpChunkType === SCTP_CID_ABORT);
      if (!rst) {
        if (v.af === AF_INET6)
          this.icmp.send(v, pkt.ifc!, ICMPV6.DEST_UNREACH, ICMPV6.PORT_UNREACH, 0);
        else this.icmp.send(v, pkt.ifc!, ICMP.DEST_UNREACH, ICMP.PORT_UNREACH, 0);
        pkt.reason = R.STRAY_REPLY;
        if (c.trace)
          c.trace.step(
            'icmp',
            'nat_icmp_send: reply without connection, port unreachable sent to the real server',
          );
        return NF.DROP;
      }
    }
    if (c.trace) c.trace.step('lookup', 'out: no connection');
    return NF.ACCEPT;
  }

  /** ip_vs_has_real_service: the source is a NAT real server of some service. */
  #hasRealService(v: PacketView): boolean {
    const ds = this.masqDests;
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i]!;
      if (d.af !== v.af || d.port !== v.srcPort || d.addr[0] !== v.src[0]) continue;
      if (
        v.af === AF_INET6 &&
        (d.addr[1] !== v.src[1] || d.addr[2] !== v.src[2] || d.addr[3] !== v.src[3])
      )
        continue;
      if (d.svc && (d.svc.fwmark || d.svc.protocol === v.protocol)) return true;
    }
    return false;
  }

  /** handle_response: SNAT for NAT, statistics, OUTPUT transition, accept. */
  #response(pkt: Pkt, h: number, frag: boolean): number {
    const ipvs = this.ipvs;
    const c = this.ctx;
    const t = ipvs.conns;
    const ops = ipvs.ops;
    if ((t.flags(h) & CONN_F_FWD_MASK) === FWD_MASQ) {
      if (this.ftp.bound(h) && !frag) {
        if (!this.xmit.appPrepare(pkt)) {
          ops.put(h);
          pkt.reason = R.APP_DROP;
          return NF.DROP;
        }
        const r = this.ftp.pktOut(h, pkt.view, pkt.mark, (s, e, bytes, n) =>
          this.xmit.resize(pkt.view, s, e, bytes, n),
        );
        if (r === APP.DROP) {
          ops.put(h);
          pkt.reason = R.APP_DROP;
          return NF.DROP;
        }
        pkt.mangled = true;
        if (c.trace && this.ftp.note) c.trace.step('rewrite', this.ftp.note);
      }
      const v = pkt.view;
      const o = t.vaddrOff(h);
      const port = frag ? -1 : t.vport(h);
      const crc = v.protocol === IPPROTO_SCTP && port >= 0 && v.srcPort !== port;
      if (v.af === AF_INET) natRewrite4(v, 0, t.hot[o]!, port);
      else natRewrite6(v, 0, words4(t.hot, o, c.addr), port);
      if (pkt.mangled) fullChecksums(v);
      if (c.trace)
        c.trace.step(
          'rewrite',
          `SNAT → ${formatIp(v.af, t.hot, o)}:${t.vport(h)} (${checksumNote(v.protocol, pkt.mangled, crc)})`,
        );
    }
    const v = pkt.view;
    ops.outStats(h, v.ipTotalLength);
    if (!frag) {
      const old = t.state(h);
      ops.transition(h, DIR_OUTPUT, this.#event(v));
      if (c.trace) this.#traceState(h, old, 'OUTPUT');
    }
    pkt.property = true;
    pkt.reroute = true;
    pkt.forwarded = 1;
    ops.put(h);
    return NF.ACCEPT;
  }

  #outIcmp(pkt: Pkt): number {
    const pr = this.#icmpPrologue(pkt);
    if (pr !== 0) return pr;
    const ipvs = this.ipvs;
    const c = this.ctx;
    const v = pkt.view;
    const ci = pkt.inner;
    const proto = ci.protocol;
    if (!quotedLookup(ci)) return NF.ACCEPT;
    const t = ipvs.conns;
    const h = isAhEsp(proto)
      ? t.outGet(v.af, IPPROTO_UDP, ci.dst, IKE_PORT, ci.src, IKE_PORT)
      : t.outGet(v.af, proto, ci.dst, ci.dstPort, ci.src, ci.srcPort);
    if (h === NO_CONN) return NF.ACCEPT;
    if (c.trace)
      c.trace.step(
        'lookup',
        `ICMP ${v.icmpType}/${v.icmpCode} from a real server: ${this.#connText(h)}`,
      );
    if ((t.flags(h) & CONN_F_FWD_MASK) === FWD_MASQ) {
      if (!this.#icmpChecksumOk(v)) {
        pkt.reason = R.ICMP_BAD_CSUM;
        return NF.DROP;
      }
      this.xmit.natIcmp(pkt, h, true);
      pkt.reroute = true;
      pkt.forwarded = 1;
    }
    // handle_response_icmp marks the packet for every method (the in handler skips it)
    pkt.property = true;
    ipvs.ops.outStats(h, v.ipTotalLength);
    // no timer restart: the error is not the connection's own traffic (__ip_vs_conn_put)
    return NF.ACCEPT;
  }
}
