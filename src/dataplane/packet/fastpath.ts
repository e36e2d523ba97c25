/**
 * The fast path: packets of established connections that need nothing but a lookup, the state
 * machine and a rewrite. It works from the 5-tuple `decodeTuple` reads (no full decode), copies
 * the IP packet straight into the transmit slot and rewrites it there: TTL and, for NAT, the
 * address, port and checksums, incrementally. It does exactly what the slow path would do for
 * these packets, and declines (returning false before changing anything) whenever the slow path
 * has more to do: a connection opener (conn_reuse_mode), a fragment, a template, NO_CPORT, an
 * application helper, a deleted destination, an IPv4 header with a wrong checksum, TTL 1, a
 * packet above the MTU, an unresolved next hop, a tunnel, a NAT rewrite of a UDP datagram without
 * a checksum, a hook other than IPVS's, the classifier, or a tracer.
 */
import { NO_CONN } from '../../core/conn.js';
import {
  CONN_F_FWD_MASK,
  CONN_F_NO_CPORT,
  CONN_F_ONE_PACKET,
  CONN_F_TEMPLATE,
  DEST_F_AVAILABLE,
  FWD_DROUTE,
  FWD_MASQ,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from '../../core/constants.js';
import { csumReplace16, csumReplace32, ipv4HeaderChecksumOk } from '../../packet/checksum.js';
import type { Tuple } from '../../packet/tuple.js';
import { DIR_INPUT, DIR_OUTPUT } from '../../proto/index.js';
import { WordCopier, copyWords, words } from '../io/copy.js';
import { copyBytes, isLoopback } from './bytes.js';
import type { Ctx } from './ctx.js';
import type { Iface } from './net.js';

const SYN = 0x02;
/** Words stored over the Ethernet header are composed for a little-endian host. */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const AF_INET6 = 10;

/** Words per destination in the next-hop cache (see `#hop`). */
const HOP = 11;
const HOP_NET_GEN = 0;
const HOP_NEIGH_GEN = 1;
const HOP_IF = 2;
const HOP_MTU = 3;
const HOP_SLOT = 4;
const HOP_AF = 5;
const HOP_ADDR = 6; // 4 words
/** 1 when recorded for a NAT connection: behind a gateway, NAT sends to the gateway, DR not. */
const HOP_NAT = 10;

/** Words per route in the NAT-reply next-hop cache (see `#outHop`). */
const OUT_HOP = 5;
const OH_NET_GEN = 0;
const OH_NEIGH_GEN = 1;
const OH_IF = 2;
const OH_MTU = 3;
const OH_SLOT = 4;

/** The fast path of one engine. */
export class FastPath {
  readonly #c: Ctx;
  /** Copies the IP packet into the transmit slot 4 bytes per step. */
  readonly #copier = new WordCopier();
  /** Int32 views over the last receive and transmit memory `#frame` copied between. */
  #rxB: Uint8Array | null = null;
  #rxW: Int32Array | null = null;
  #txB: Uint8Array | null = null;
  #txW: Int32Array | null = null;
  /**
   * Next hop per destination id, as the last fast-path packet toward it found it: the route's
   * interface and MTU and the neighbour slot. Valid while the route table's and the neighbour
   * table's generations are the ones recorded and the destination address and the forwarding
   * method (a destination edited from -m to -g keeps connections of both) are the same; the
   * neighbour entry's state is still checked (and aged) per packet, as `resolve` would.
   */
  #hop = new Int32Array(16 * HOP).fill(-1);
  /**
   * Next hop per route index for NAT replies through a gateway (the client is behind it): the
   * neighbour slot of the gateway, valid while both generations are the recorded ones. Replies to
   * on-link clients resolve the client itself and are not cached.
   */
  #outHop = new Int32Array(8 * OUT_HOP).fill(-1);

  constructor(c: Ctx) {
    this.#c = c;
  }

  /**
   * Handles the frame at `buf[off]` received on `ifc`, whose tuple is `t`, when it is a
   * fast-path packet; returns true when it was forwarded, false when nothing was done. `bs` / `bd`
   * are the connection-table buckets of the tuple's source / destination key when the batch's
   * prefetch computed them, -1 otherwise.
   */
  run(ifc: Iface, buf: Uint8Array, off: number, t: Tuple, bs = -1, bd = -1): boolean {
    const c = this.#c;
    const ipvs = c.ipvs;
    const l3 = t.l3Offset;
    const af = t.af;
    if (af !== AF_INET6) {
      if ((buf[l3 + 6]! & 0x20) !== 0) return false; // first fragment
      // ip_rcv drops a header with a wrong checksum: the full path does, with its reason
      if (!headerSumOk(buf, l3, t.l4Offset - l3)) return false;
    }
    if (t.ttl <= 1) return false;
    // destination MAC: ours (PACKET_HOST)
    const m = ifc.mac;
    if (
      buf[off] !== m[0] ||
      buf[off + 1] !== m[1] ||
      buf[off + 2] !== m[2] ||
      buf[off + 3] !== m[3] ||
      buf[off + 4] !== m[4] ||
      buf[off + 5] !== m[5]
    ) {
      return false;
    }
    // no hooks for a family without services: the full path passes such packets on
    if (!ipvs.services.hasFamily(af)) return false;
    const conns = ipvs.conns;
    const proto = t.protocol;
    // the out-lookup keys on the packet's destination, the in-lookup on its source
    const bo = bd >= 0 ? bd : conns.bucket(af, proto, t.daddr, 0, t.dport);
    if (c.net.isLocal(af, t.daddr, 0)) {
      if (ipvs.standby) return false;
      if (proto === IPPROTO_TCP && (t.tcpFlags & SYN) !== 0) return false;
      // LOCAL_IN: the out handler (98) runs before the in handler (99)
      if (conns.outGetAt(bo, af, proto, t.saddr, t.sport, t.daddr, t.dport) !== NO_CONN)
        return false;
      const bi = bs >= 0 ? bs : conns.bucket(af, proto, t.saddr, 0, t.sport);
      const h = conns.inGetAt(bi, af, proto, t.saddr, t.sport, t.daddr, t.dport);
      if (h === NO_CONN) return false;
      return this.#in(h, t, buf, off);
    }
    const h = conns.outGetAt(bo, af, proto, t.saddr, t.sport, t.daddr, t.dport);
    if (h === NO_CONN) return false;
    return this.#out(h, t, buf, off);
  }

  #in(h: number, t: Tuple, buf: Uint8Array, off: number): boolean {
    const c = this.#c;
    const ipvs = c.ipvs;
    const conns = ipvs.conns;
    const f = conns.flags(h);
    const fwd = f & CONN_F_FWD_MASK;
    if (
      (fwd !== FWD_MASQ && fwd !== FWD_DROUTE) ||
      (f & (CONN_F_NO_CPORT | CONN_F_TEMPLATE | CONN_F_ONE_PACKET)) !== 0
    )
      return false;
    const d = ipvs.ops.dest(h);
    if (d === null || (d.flags & DEST_F_AVAILABLE) === 0) return false;
    if (fwd === FWD_MASQ && (c.ftp.bound(h) || udpNoChecksum(t, buf))) return false;
    const daf = conns.daf(h);
    // a loopback source may not leave on a non-local route (the transmitters refuse it)
    if (daf !== t.af || isLoopback(daf, t.saddr)) return false;
    const dOff = conns.daddrOff(h);
    const nat = fwd === FWD_MASQ;
    const ipLen = t.ipLength;
    const cold = conns.cold;
    const hb = d.id * HOP;
    let hop = this.#hop;
    let ifo;
    let s: number;
    if (
      hb + HOP <= hop.length &&
      hop[hb + HOP_NET_GEN] === c.net.gen &&
      hop[hb + HOP_NEIGH_GEN] === c.neigh.gen &&
      hop[hb + HOP_AF] === daf &&
      hop[hb + HOP_NAT] === (nat ? 1 : 0) &&
      hop[hb + HOP_ADDR] === (cold[dOff]! | 0) &&
      (daf !== AF_INET6 ||
        (hop[hb + HOP_ADDR + 1] === (cold[dOff + 1]! | 0) &&
          hop[hb + HOP_ADDR + 2] === (cold[dOff + 2]! | 0) &&
          hop[hb + HOP_ADDR + 3] === (cold[dOff + 3]! | 0)))
    ) {
      if (ipLen > hop[hb + HOP_MTU]!) return false;
      ifo = c.net.ifaces[hop[hb + HOP_IF]!]!;
      s = c.neigh.use(hop[hb + HOP_SLOT]!);
    } else {
      const res = c.route;
      // a loopback real server: the transmitters' local-route rules (never cached)
      if (isLoopback(daf, cold, dOff)) return false;
      if (!c.net.route(daf, cold, dOff, res) || res.local) return false;
      // a learned path MTU comes first, as in the transmitters (./pmtu.ts bumps net.gen)
      let mtu = res.mtu;
      if (c.pmtu.size > 0) {
        const pm = c.pmtu.get(daf, cold, dOff, c.ipvs.now());
        if (pm > 0) mtu = pm;
      }
      if (ipLen > mtu) return false;
      ifo = c.net.ifaces[res.ifIndex]!;
      s =
        nat && res.hasGw
          ? c.neigh.resolve(ifo, daf, res.gw, 0)
          : c.neigh.resolve(ifo, daf, cold, dOff);
      if (s >= 0) {
        if (hb + HOP > hop.length) this.#hop = hop = grown(hop, hb + HOP);
        hop[hb + HOP_NET_GEN] = c.net.gen;
        hop[hb + HOP_NEIGH_GEN] = c.neigh.gen;
        hop[hb + HOP_IF] = res.ifIndex;
        hop[hb + HOP_MTU] = mtu;
        hop[hb + HOP_SLOT] = s;
        hop[hb + HOP_AF] = daf;
        hop[hb + HOP_NAT] = nat ? 1 : 0;
        for (let i = 0; i < 4; i++) hop[hb + HOP_ADDR + i] = cold[dOff + i]! | 0;
      }
    }
    if (s < 0 || !c.neigh.usable(s)) return false;
    const o = c.tx.raw(ifo, 14 + ipLen);
    if (o < 0) return false;
    // committed: statistics, state, then the frame
    ipvs.ops.inStats(h, ipLen);
    ipvs.ops.transition(h, DIR_INPUT, t.protocol === IPPROTO_TCP ? t.tcpFlags : 0);
    const b = ifo.io!.txData;
    this.#frame(b, o, buf, off, t, s, ifo);
    const l3 = o + 14;
    decTtl(b, l3, daf);
    if (nat)
      rewrite(
        b,
        l3,
        l3 + (t.l4Offset - t.l3Offset),
        daf,
        t.protocol,
        1,
        conns.cold,
        dOff,
        t.daddr,
        conns.dport(h),
        t.dport,
      );
    conns.setInPkts(h, conns.inPkts(h) + 1);
    if (ipvs.syncMaster !== null) ipvs.syncMaster.syncConn(h, conns.inPkts(h));
    ipvs.ops.put(h);
    c.counters.inForwarded++;
    return true;
  }

  #out(h: number, t: Tuple, buf: Uint8Array, off: number): boolean {
    const c = this.#c;
    const ipvs = c.ipvs;
    const conns = ipvs.conns;
    const f = conns.flags(h);
    if ((f & CONN_F_FWD_MASK) !== FWD_MASQ || c.ftp.bound(h) || udpNoChecksum(t, buf)) return false;
    const af = t.af;
    const ipLen = t.ipLength;
    const net = c.net;
    const k = net.match(af, t.daddr, 0);
    const ob = k * OUT_HOP;
    let oh = this.#outHop;
    let ifo;
    let s: number;
    if (
      k >= 0 &&
      ob + OUT_HOP <= oh.length &&
      oh[ob + OH_NET_GEN] === net.gen &&
      oh[ob + OH_NEIGH_GEN] === c.neigh.gen
    ) {
      // a route through a gateway, as the last reply on it found it (`run` found the client is
      // not a local address)
      if (ipLen > oh[ob + OH_MTU]!) return false;
      ifo = net.ifaces[oh[ob + OH_IF]!]!;
      s = c.neigh.use(oh[ob + OH_SLOT]!);
    } else {
      const res = c.route;
      if (!net.route(af, t.daddr, 0, res) || res.local) return false;
      if (ipLen > res.mtu) return false;
      ifo = net.ifaces[res.ifIndex]!;
      s = c.neigh.resolve(ifo, af, res.hasGw ? res.gw : t.daddr, 0);
      if (res.hasGw && s >= 0) {
        if (ob + OUT_HOP > oh.length) this.#outHop = oh = grown(oh, ob + OUT_HOP);
        oh[ob + OH_NET_GEN] = net.gen;
        oh[ob + OH_NEIGH_GEN] = c.neigh.gen;
        oh[ob + OH_IF] = res.ifIndex;
        oh[ob + OH_MTU] = res.mtu;
        oh[ob + OH_SLOT] = s;
      }
    }
    if (s < 0 || !c.neigh.usable(s)) return false;
    const o = c.tx.raw(ifo, 14 + ipLen);
    if (o < 0) return false;
    const b = ifo.io!.txData;
    this.#frame(b, o, buf, off, t, s, ifo);
    const l3 = o + 14;
    decTtl(b, l3, af);
    rewrite(
      b,
      l3,
      l3 + (t.l4Offset - t.l3Offset),
      af,
      t.protocol,
      0,
      conns.hot,
      conns.vaddrOff(h),
      t.saddr,
      conns.vport(h),
      t.sport,
    );
    ipvs.ops.outStats(h, ipLen);
    ipvs.ops.transition(h, DIR_OUTPUT, t.protocol === IPPROTO_TCP ? t.tcpFlags : 0);
    ipvs.ops.put(h);
    c.counters.outForwarded++;
    return true;
  }

  /**
   * Writes the outgoing frame at `b[o]`: the Ethernet header toward neighbour slot `s` from
   * `ifo`, then the IP packet of the frame at `buf[off]` (tuple `t`), unchanged. The packet keeps
   * its family (the callers check), so the received frame's EtherType stays. When both frames
   * start on a word boundary behind a plain 14-byte header, the whole frame is copied a word at a
   * time after its first three, which are stored with the two MAC addresses; otherwise the header
   * is written byte by byte and the IP packet copied after it.
   */
  #frame(
    b: Uint8Array,
    o: number,
    buf: Uint8Array,
    off: number,
    t: Tuple,
    s: number,
    ifo: Iface,
  ): void {
    const nm = this.#c.neigh.mac;
    const im = ifo.mac;
    const n = 14 + t.ipLength;
    if (LE && ((off | o) & 3) === 0 && t.l3Offset === off + 14) {
      if (buf !== this.#rxB) {
        this.#rxB = buf;
        this.#rxW = words(buf);
      }
      if (b !== this.#txB) {
        this.#txB = b;
        this.#txW = words(b);
      }
      const rw = this.#rxW;
      const tw = this.#txW;
      const s4 = off >>> 2;
      const d4 = o >>> 2;
      const n4 = (n + 3) >>> 2;
      // the last word may run up to 3 bytes past the frame: inside both views, never past them
      if (rw !== null && tw !== null && s4 + n4 <= rw.length && d4 + n4 <= tw.length) {
        copyWords(tw, d4 + 3, rw, s4 + 3, n4 - 3);
        const m = s * 6;
        tw[d4] = nm[m]! | (nm[m + 1]! << 8) | (nm[m + 2]! << 16) | (nm[m + 3]! << 24);
        tw[d4 + 1] = nm[m + 4]! | (nm[m + 5]! << 8) | (im[0]! << 16) | (im[1]! << 24);
        tw[d4 + 2] = im[2]! | (im[3]! << 8) | (im[4]! << 16) | (im[5]! << 24);
        return;
      }
    }
    copyBytes(b, o, nm, s * 6, 6);
    copyBytes(b, o + 6, im, 0, 6);
    b[o + 12] = t.af === AF_INET6 ? 0x86 : 0x08;
    b[o + 13] = t.af === AF_INET6 ? 0xdd : 0x00;
    this.#copier.copy(b, o + 14, buf, t.l3Offset, n - 14);
  }
}

/** A copy of the cache `a` with room for `need` words (new words -1: nothing recorded). */
function grown(a: Int32Array<ArrayBuffer>, need: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(Math.max(a.length * 2, need)).fill(-1);
  b.set(a);
  return b;
}

/** `ipv4HeaderChecksumOk`, unrolled for the 20-byte header nearly every packet has. */
function headerSumOk(b: Uint8Array, o: number, ihl: number): boolean {
  if (ihl !== 20) return ipv4HeaderChecksumOk(b, o, ihl);
  let s =
    ((b[o]! << 8) | b[o + 1]!) +
    ((b[o + 2]! << 8) | b[o + 3]!) +
    ((b[o + 4]! << 8) | b[o + 5]!) +
    ((b[o + 6]! << 8) | b[o + 7]!) +
    ((b[o + 8]! << 8) | b[o + 9]!) +
    ((b[o + 10]! << 8) | b[o + 11]!) +
    ((b[o + 12]! << 8) | b[o + 13]!) +
    ((b[o + 14]! << 8) | b[o + 15]!) +
    ((b[o + 16]! << 8) | b[o + 17]!) +
    ((b[o + 18]! << 8) | b[o + 19]!);
  s = (s & 0xffff) + (s >>> 16);
  return (s & 0xffff) + (s >>> 16) === 0xffff;
}

/** A UDP datagram without a checksum: left to the slow path (IPv4 keeps none, IPv6 gets one). */
function udpNoChecksum(t: Tuple, buf: Uint8Array): boolean {
  return t.protocol === IPPROTO_UDP && buf[t.l4Offset + 6] === 0 && buf[t.l4Offset + 7] === 0;
}

/** TTL / hop limit minus one, with the IPv4 header checksum patched. */
function decTtl(b: Uint8Array, l3: number, af: number): void {
  if (af === AF_INET6) {
    b[l3 + 7] = b[l3 + 7]! - 1;
    return;
  }
  const old = (b[l3 + 8]! << 8) | b[l3 + 9]!;
  const neu = old - 0x100;
  b[l3 + 8] = neu >>> 8;
  const cs = csumReplace16((b[l3 + 10]! << 8) | b[l3 + 11]!, old, neu);
  b[l3 + 10] = cs >>> 8;
  b[l3 + 11] = cs;
}

/**
 * Rewrites the source (`side` 0) or destination (1) address to `w[wo…]` and the port to `port`,
 * patching the IPv4 header checksum and the TCP / UDP checksum incrementally (a computed zero UDP
 * checksum is sent as 0xFFFF; datagrams without one never get here). `oldA` / `oldPort` are the
 * current values.
 */
function rewrite(
  b: Uint8Array,
  l3: number,
  l4: number,
  af: number,
  proto: number,
  side: number,
  w: Uint32Array,
  wo: number,
  oldA: Uint32Array,
  port: number,
  oldPort: number,
): void {
  const co = proto === IPPROTO_TCP ? l4 + 16 : l4 + 6;
  let l4c = (b[co]! << 8) | b[co + 1]!;
  const udpNone = proto === IPPROTO_UDP && l4c === 0;
  if (af === AF_INET6) {
    const ao = l3 + (side === 0 ? 8 : 24);
    for (let i = 0; i < 4; i++) {
      const a = w[wo + i]!;
      const p = ao + 4 * i;
      b[p] = a >>> 24;
      b[p + 1] = a >>> 16;
      b[p + 2] = a >>> 8;
      b[p + 3] = a;
      if (!udpNone) l4c = csumReplace32(l4c, oldA[i]!, a);
    }
  } else {
    const a = w[wo]!;
    const ao = l3 + (side === 0 ? 12 : 16);
    b[ao] = a >>> 24;
    b[ao + 1] = a >>> 16;
    b[ao + 2] = a >>> 8;
    b[ao + 3] = a;
    const ic = csumReplace32((b[l3 + 10]! << 8) | b[l3 + 11]!, oldA[0]!, a);
    b[l3 + 10] = ic >>> 8;
    b[l3 + 11] = ic;
    if (!udpNone) l4c = csumReplace32(l4c, oldA[0]!, a);
  }
  const po = l4 + (side === 0 ? 0 : 2);
  b[po] = port >>> 8;
  b[po + 1] = port;
  if (udpNone) return;
  l4c = csumReplace16(l4c, oldPort, port);
  if (l4c === 0 && proto === IPPROTO_UDP) l4c = 0xffff;
  b[co] = l4c >>> 8;
  b[co + 1] = l4c;
}
