/**
 * The packet engine: IPVS's packet path in user space (spec §4.5, §5; DESIGN.md "How a packet
 * flows"). Frames come in per interface (in batches from a FrameIO), Ethernet is checked and
 * decoded, ARP and neighbour discovery go to the neighbour subsystem, IP packets get a mark from
 * the classifier and traverse the hook chain — LOCAL_IN when addressed to the director (a VIP or
 * one of its addresses), FORWARD otherwise — where IPVS's `in`, `out` and forward-ICMP handlers
 * (./ipvs-hooks.ts) sit at the kernel's priorities; the transmitters are in ./xmit.ts and the
 * fast path for established flows in ./fastpath.ts. Frames that are not IPVS's business are left alone:
 * the host stack owns them. Every frame ends with a verdict and, unless it was forwarded, a
 * counted reason; nothing on this path throws or allocates (tracing aside).
 */
import * as diagnostics from 'node:diagnostics_channel';
import { AF_INET, AF_INET6, formatIp } from '../../core/addr.js';
import { CONN_F_FWD_MASK, FWD_MASQ, FWD_TUNNEL } from '../../core/constants.js';
import type { Ipvs, SyncConnData } from '../../core/ipvs.js';
import type { Service } from '../../core/service.js';
import { ETH_P, ICMP, ICMPV6, IPPROTO } from '../../packet/constants.js';
import { ipv4HeaderChecksumOk } from '../../packet/checksum.js';
import { decodeEthernet, decodeIp } from '../../packet/decode.js';
import type { PacketView } from '../../packet/view.js';
import { setTtl } from '../../packet/nat.js';
import { TUPLE_OK, Tuple, decodeTuple } from '../../packet/tuple.js';
import { PKTTYPE, type FrameBatch } from '../io/types.js';
import { Classifier } from './classifier.js';
import { Counters, R, REASON_NAMES as REASONS } from './counters.js';
import { Ctx, Pkt, forwardingView, type Tracer } from './ctx.js';
import { FastPath } from './fastpath.js';
import { FragTable } from './frag.js';
import { FtpHelper } from './ftp.js';
import { HOOK, HookChain, NF, PRI } from './hooks.js';
import { IcmpLimit, type IcmpLimitOptions } from './icmp-limit.js';
import { IcmpSender } from './icmp-send.js';
import { IpvsHandlers } from './ipvs-hooks.js';
import { EXT_DROP, EXT_OK, parseTlv, ppCode, ppPointer } from './ip6ext.js';
import { compileIpv4Options, forwardIpv4Options, msOfDay, unicastTest } from './ipopt.js';
import { Neigh, type NeighOptions } from './neigh.js';
import { NetModel, RouteResult, martianSource4, type Iface } from './net.js';
import { REASM_DONE, REASM_HELD, REASM_PASS, USER_FWD, USER_LOCAL } from './reasm.js';
import { ReplyPath } from './reply-path.js';
import { describeFrame } from './trace.js';
import { Tx } from './tx.js';
import { VipHost } from './vip-host.js';
import { Xmit, headerChecksum } from './xmit.js';

/** Options of a packet engine. */
export interface EngineOptions {
  /** The network model (default: an empty one to fill with `net.addIface` …). */
  net?: NetModel;
  /** Neighbour cache sizes and timers. */
  neigh?: NeighOptions;
  /** Learn neighbours from the source MAC of received IP frames (the trace tool). Default false. */
  learnFromIp?: boolean;
  /** Handle packets whose mark names an fwmark service as local (LOCAL_IN). Default true. */
  fwmarkLocal?: boolean;
  /** Own (answer ARP for, accept as local) the address of every non-fwmark service. Default true. */
  ownServiceVips?: boolean;
  /**
   * Answer what IPVS leaves to the local stack for a VIP as the host would (echo replies, TCP
   * resets, port unreachable: ./vip-host.ts). Default true.
   */
  answerForVips?: boolean;
  /**
   * The host's ICMP rate limits on the errors the engine sends (./icmp-limit.ts; the kernel's
   * defaults when omitted), false for none.
   */
  icmpLimit?: IcmpLimitOptions | false;
  /** FTP helper ports (default [21]). */
  ftpPorts?: number[];
  /** Handle established flows on the fast path (decodeTuple, rewrite in the TX slot). Default true. */
  fastPath?: boolean;
  /** Prefetch connection-table buckets over a batch before handling it. Default true. */
  prefetch?: boolean;
  /** Receives packets a hook QUEUEd; without it QUEUE means DROP (no queue listener). */
  queue?: (pkt: Pkt) => void;
}

/** The packet data plane's engine. */
export class PacketEngine {
  readonly ipvs: Ipvs;
  readonly net: NetModel;
  readonly neigh: Neigh;
  readonly tx: Tx;
  readonly icmp: IcmpSender;
  readonly counters = new Counters();
  readonly hooks = new HookChain<Pkt>();
  readonly classifier = new Classifier();
  readonly ftp: FtpHelper;
  readonly frag = new FragTable();
  readonly xmit: Xmit;
  readonly ctx: Ctx;
  /** IPVS's hook handlers. */
  readonly handlers: IpvsHandlers;
  readonly #pkt = new Pkt();
  /** The frame whose next hop failed (`#linkFailure`) and the ICMP error built about it. */
  readonly #failed = forwardingView();
  readonly #failedIcmp = new Uint8Array(1280);
  /** The first fragment of a datagram that timed out, for the ICMP error about it. */
  readonly #expired = forwardingView();
  readonly #tuples: Tuple[] = [];
  readonly #tupleOk = new Uint8Array(1024);
  /** The index buckets of each frame's two lookup keys, from the first prefetch pass. */
  readonly #pfBucket = new Int32Array(2 * this.#tupleOk.length);
  readonly #fast: FastPath;
  readonly #prefetch: boolean;
  readonly #fastEnabled: boolean;
  readonly #opts: EngineOptions;
  #dirty = true;
  /** The VIPs this engine claimed (`addVip`), by `vipKey`. */
  readonly #ownedVips = new Map<number | string, string>();
  readonly #vipHost: VipHost | null;
  readonly #syncData: SyncConnData;
  readonly #onConfig = (): void => {
    this.#dirty = true;
  };

  constructor(ipvs: Ipvs, opts: EngineOptions = {}) {
    this.ipvs = ipvs;
    this.#opts = opts;
    this.#prefetch = opts.prefetch ?? true;
    this.net = opts.net ?? new NetModel();
    this.neigh = new Neigh(this.net, this.counters, () => ipvs.now(), opts.neigh);
    this.neigh.warn = (key, msg) => ipvs.warn(key, msg);
    this.tx = new Tx(this.net, this.neigh, this.counters);
    this.icmp = new IcmpSender(
      this.net,
      this.tx,
      this.counters,
      opts.icmpLimit === false
        ? null
        : new IcmpLimit(
            () => ipvs.now(),
            () => ipvs.randomU32(),
            opts.icmpLimit,
          ),
      () => ipvs.now(),
    );
    this.icmp.options = (v) => (v === this.#pkt.view && this.#pkt.hasOpts ? this.#pkt.opts : null);
    this.#unicast = unicastTest(this.net);
    this.#vipHost =
      opts.answerForVips === false
        ? null
        : new VipHost(
            new ReplyPath(this.net, this.tx, () => ipvs.now()),
            this.icmp,
            this.counters,
            () => ipvs.now(),
          );
    this.ftp = new FtpHelper(ipvs);
    // sync carries the FTP helper's sequence adjustments, and a backup binds it (spec §8.3)
    this.#syncData = {
      seq: (h) => this.ftp.syncSeq(h),
      synced: (h, seq) => this.ftp.synced(h, seq),
    };
    ipvs.syncData = this.#syncData;
    this.neigh.onFailed = (ifc, buf, off, len) => this.#linkFailure(ifc, buf, off, len);
    if (opts.ftpPorts) this.ftp.ports = [...opts.ftpPorts];
    this.ctx = new Ctx(
      ipvs,
      this.net,
      this.neigh,
      this.tx,
      this.icmp,
      this.counters,
      this.ftp,
      this.frag,
      this.classifier,
      {
        learnFromIp: opts.learnFromIp ?? false,
        fwmarkLocal: opts.fwmarkLocal ?? true,
      },
    );
    this.xmit = new Xmit(this.ctx);
    this.handlers = new IpvsHandlers(this.ctx, this.xmit);
    this.#fast = new FastPath(this.ctx);
    this.#fastEnabled = opts.fastPath ?? true;
    const prev = ipvs.ops.onFree;
    ipvs.ops.onFree = (h) => {
      this.ftp.free(h);
      prev?.(h);
    };
    // spec §5.1: where IPVS's handlers sit
    const out = (p: Pkt, hk: number): number => this.handlers.out(p, hk);
    const inp = (p: Pkt, hk: number): number => this.handlers.in(p, hk);
    this.hooks.register(HOOK.LOCAL_IN, PRI.IPVS_OUT_LOCAL_IN, 'ipvs-out', out);
    this.hooks.register(HOOK.LOCAL_IN, PRI.IPVS_IN_LOCAL_IN, 'ipvs-in', inp);
    this.hooks.register(HOOK.LOCAL_OUT, PRI.IPVS_OUT_LOCAL_OUT, 'ipvs-out', out);
    this.hooks.register(HOOK.LOCAL_OUT, PRI.IPVS_IN_LOCAL_OUT, 'ipvs-in', inp);
    this.hooks.register(HOOK.FORWARD, PRI.IPVS_FORWARD_ICMP, 'ipvs-forward-icmp', (p, hk) =>
      this.handlers.forwardIcmp(p, hk),
    );
    this.hooks.register(HOOK.FORWARD, PRI.IPVS_OUT_FORWARD, 'ipvs-out', out);
    diagnostics.subscribe('ipvs:config', this.#onConfig);
  }

  /** Stops following configuration changes. */
  close(): void {
    diagnostics.unsubscribe('ipvs:config', this.#onConfig);
    if (this.ipvs.syncData === this.#syncData) this.ipvs.syncData = null;
  }

  /** The tracer (null: not tracing). */
  get trace(): Tracer | null {
    return this.ctx.trace;
  }
  set trace(t: Tracer | null) {
    this.ctx.trace = t;
    this.hooks.observer = t
      ? {
          hook: (h, prio, name, v) =>
            t.step(
              'hook',
              `${['PRE_ROUTING', 'LOCAL_IN', 'FORWARD', 'LOCAL_OUT', 'POST_ROUTING'][h]} ${prio} ${name} → ${['DROP', 'ACCEPT', 'STOLEN', 'QUEUE', 'REPEAT', 'STOP'][v] ?? v}`,
            ),
        }
      : null;
  }

  /** Why the last frame ended as it did (an R.* code), -1 when it was forwarded. */
  get lastReason(): number {
    return this.#pkt.reason;
  }

  /**
   * Re-reads what the engine derives from the configuration (VIPs, helpers' tables). Returns the
   * VIPs it has just come to own (a data plane announces them with gratuitous ARP).
   */
  refresh(): string[] {
    this.#dirty = false;
    const svcs = this.ipvs.services.list();
    const hd = this.handlers;
    hd.sipServices = svcs.filter((s) => s.peName === 'sip').length;
    hd.masqDests = [];
    hd.tunDests = [];
    for (const s of svcs) {
      for (const d of s.dests) {
        const fwd = d.connFlags & CONN_F_FWD_MASK;
        if (fwd === FWD_MASQ) hd.masqDests.push(d);
        else if (fwd === FWD_TUNNEL) hd.tunDests.push(d);
      }
    }
    if (this.#opts.ownServiceVips === false) return [];
    // a standby (Ipvs.standby) claims no VIP — no ARP / NDP answers, nothing answered for them —
    // as a kernel standby does not hold the VIP; what the services want, keyed without formatting an address per service and refresh
    const want = new Map<number | string, Service>();
    if (!this.ipvs.standby) for (const s of svcs) if (!s.fwmark) want.set(vipKey(s.af, s.addr), s);
    for (const [k, a] of this.#ownedVips) {
      if (!want.has(k)) {
        this.net.delVip(a);
        this.#ownedVips.delete(k);
      }
    }
    const fresh: string[] = [];
    for (const [k, s] of want) {
      if (this.#ownedVips.has(k)) continue;
      const a = this.#claim(k, s.af, s.addr);
      if (a !== null) fresh.push(a);
    }
    return fresh;
  }

  /**
   * Claims the VIP `af`/`addr` of a service just added, without re-reading the whole
   * configuration (a restore of thousands of services stays linear); returns the address when
   * it is newly claimed (to announce), else null. Removals are found by the next `refresh()`.
   */
  claimVip(af: number, addr: ArrayLike<number>): string | null {
    if (this.#opts.ownServiceVips === false || this.ipvs.standby) return null;
    const k = vipKey(af, addr);
    return this.#ownedVips.has(k) ? null : this.#claim(k, af, addr);
  }

  #claim(k: number | string, af: number, addr: ArrayLike<number>): string | null {
    const before = this.net.gen;
    const a = formatIp(af, addr);
    this.net.addVip({ addr: a });
    if (this.net.gen === before) return null;
    this.#ownedVips.set(k, a);
    return a;
  }

  /** Periodic work: neighbour probes and timeouts. Call with (or after) `ipvs.tick()`. */
  tick(): void {
    this.neigh.tick();
    this.#reasmTimeouts();
    this.tx.commit();
  }

  /**
   * Handles every frame of a received batch, then hands the transmit batches over. With
   * `prefetch` on (default), a first pass takes each frame's 5-tuple with the fast decoder and
   * the connection-table buckets of both lookup keys, then loads every bucket and the record at
   * its head in two tight loops, so the whole batch's cache misses are in flight together (loads
   * interleaved with the decoding overlapped a few at a time: 2026-12-04, DR in at 1M connections
   * 720 → 520 ns per frame).
   */
  receive(ifc: Iface, batch: FrameBatch): void {
    // one clock reading for the whole batch
    this.ipvs.holdClock();
    try {
      this.#receive(ifc, batch);
    } finally {
      this.ipvs.releaseClock();
    }
  }

  #receive(ifc: Iface, batch: FrameBatch): void {
    if (this.#dirty) this.refresh();
    const data = batch.data;
    const n = batch.count;
    const fast =
      this.#fastEnabled &&
      this.ctx.trace === null &&
      this.classifier.size === 0 &&
      this.hooks.count(HOOK.LOCAL_IN) === 2 &&
      this.hooks.count(HOOK.FORWARD) === 2;
    if (fast || (this.#prefetch && n > 1)) {
      const t = this.ipvs.conns;
      const tus = this.#tuples;
      const ok = this.#tupleOk;
      const pb = this.#pfBucket;
      for (let i = 0; i < n; i++) {
        if (i >= tus.length) tus.push(new Tuple());
        const tu = tus[i]!;
        ok[i] = 0;
        if (i < ok.length) pb[2 * i] = pb[2 * i + 1] = 0;
        if (i >= ok.length || decodeTuple(tu, data, batch.offset(i), batch.length(i)) !== TUPLE_OK)
          continue;
        ok[i] = 1;
        if (!this.#prefetch) continue;
        pb[2 * i] = t.bucket(tu.af, tu.protocol, tu.saddr, 0, tu.sport);
        pb[2 * i + 1] = t.bucket(tu.af, tu.protocol, tu.daddr, 0, tu.dport);
      }
      // then the buckets of both lookup keys and the records they lead to, in tight loops
      if (this.#prefetch) t.prefetchBuckets(pb, 2 * Math.min(n, ok.length));
    }
    for (let i = 0; i < n; i++) {
      const off = batch.offset(i);
      const len = batch.length(i);
      if (fast && i < this.#tupleOk.length && this.#tupleOk[i] === 1 && batch.pktType(i) === 0) {
        const pf = this.#prefetch;
        const bs = pf ? this.#pfBucket[2 * i]! : -1;
        const bd = pf ? this.#pfBucket[2 * i + 1]! : -1;
        if (this.#fast.run(ifc, data, off, this.#tuples[i]!, bs, bd)) {
          this.counters.rxFrames++;
          this.counters.fastPath++;
          this.#pkt.reason = -1;
          continue;
        }
      }
      this.input(ifc, data, off, len, batch.pktType(i));
    }
    this.tx.commit();
  }

  /** Announces `addr` (a VIP) with gratuitous ARP / unsolicited NA on `ifname`. */
  announce(addr: ArrayLike<number>, af: number, ifname: string): void {
    this.neigh.announce(this.net.iface(ifname), af, addr);
    this.tx.commit();
  }

  /**
   * Handles one frame received on `ifc`; returns the NF verdict. Transmitted frames are staged in
   * the interfaces' frame I/O (call `tx.commit()`, or use `receive`).
   */
  input(ifc: Iface, buf: Uint8Array, off: number, len: number, pktType = 0): number {
    if (this.#dirty) this.refresh();
    const c = this.ctx;
    const pkt = this.#pkt;
    const trace = c.trace;
    this.counters.rxFrames++;
    pkt.ifc = ifc;
    pkt.mark = 0;
    pkt.property = false;
    pkt.local = false;
    pkt.host = true;
    pkt.reroute = false;
    pkt.reason = R.PASS;
    pkt.forwarded = -1;
    pkt.mangled = false;
    pkt.fragMax = 0;
    pkt.hasOpts = false;
    let verdict = this.#frame(pkt, ifc, buf, off, len, pktType);
    if (
      verdict === NF.ACCEPT &&
      pkt.local &&
      !pkt.reroute &&
      !pkt.mangled &&
      this.#vipHost !== null &&
      pkt.view.ipVersion !== 0 &&
      this.net.isVip(pkt.view.af, pkt.view.dst, 0)
    ) {
      // IPVS left it to the local stack (the verdict stays ACCEPT), which for a VIP is the
      // engine: the host's answer
      const what = this.#vipHost.deliver(pkt.view, ifc, pkt.host, pkt.hasOpts ? pkt.opts : null);
      if (what !== '') {
        pkt.reason = R.VIP_HOST;
        if (trace) trace.step('local', `for the VIP: ${what}`);
      }
    }
    if (verdict === -1) {
      pkt.reason = R.HOOK_LOOP;
      verdict = NF.DROP;
    } else if (verdict === NF.ACCEPT && pkt.reroute) {
      if (pkt.hasOpts && !pkt.local) this.#forwardOptions(pkt);
      verdict = this.xmit.forward(pkt);
    } else if (verdict === NF.QUEUE) {
      if (this.#opts.queue) this.#opts.queue(pkt);
      else {
        pkt.reason = R.QUEUE_DROP;
        verdict = NF.DROP;
      }
    } else if (verdict === NF.DROP && pkt.reason === R.PASS) pkt.reason = R.HOOK_DROP;
    if (pkt.reason >= 0) this.counters.count(pkt.reason);
    else if (pkt.forwarded === 1) this.counters.outForwarded++;
    else this.counters.inForwarded++;
    if (trace) {
      const why = pkt.reason >= 0 ? ` (${REASONS[pkt.reason]})` : ' (forwarded)';
      trace.step('verdict', `${['DROP', 'ACCEPT', 'STOLEN', 'QUEUE'][verdict] ?? verdict}${why}`);
    }
    return verdict;
  }

  /**
   * A packet the director's own stack sends (raw IP at `buf[off, off+len)`, e.g. a local client
   * connecting to a VIP): it traverses LOCAL_OUT, where IPVS's `out` (-99) and `in` (-98)
   * handlers sit. `ifc` is the interface ICMP errors about it would leave through. Returns the
   * verdict; ACCEPT means the host stack sends it itself.
   */
  output(ifc: Iface, buf: Uint8Array, off: number, len: number): number {
    this.counters.rxFrames++;
    return this.#output(ifc, buf, off, len, true);
  }

  /** `output`; `count`: count the packet's end (a packet of the engine's own is not counted). */
  #output(ifc: Iface, buf: Uint8Array, off: number, len: number, count: boolean): number {
    if (this.#dirty) this.refresh();
    const pkt = this.#pkt;
    pkt.ifc = ifc;
    pkt.mark = 0;
    pkt.property = false;
    pkt.local = true;
    pkt.host = true;
    pkt.reroute = false;
    pkt.reason = R.PASS;
    pkt.forwarded = -1;
    pkt.mangled = false;
    pkt.fragMax = 0;
    pkt.hasOpts = false;
    const v = pkt.view;
    const r = decodeIp(v, buf, off, len);
    let verdict: number;
    if (r !== 0) {
      this.counters.malformed[r]!++;
      pkt.reason = R.MALFORMED;
      verdict = NF.DROP;
    } else {
      if (this.classifier.size > 0)
        pkt.mark = this.classifier.match(
          v.af,
          v.protocol,
          v.src,
          v.dst,
          v.l4Parsed ? v.srcPort : -1,
          v.l4Parsed ? v.dstPort : -1,
        );
      verdict = this.hooks.run(HOOK.LOCAL_OUT, pkt);
      if (verdict === -1) {
        pkt.reason = R.HOOK_LOOP;
        verdict = NF.DROP;
      } else if (verdict === NF.ACCEPT && pkt.reroute) verdict = this.xmit.forward(pkt);
    }
    if (!count) return verdict;
    if (pkt.reason >= 0) this.counters.count(pkt.reason);
    else if (pkt.forwarded === 1) this.counters.outForwarded++;
    else this.counters.inForwarded++;
    return verdict;
  }

  /**
   * A frame that waited for a next hop whose resolution failed (`Neigh.onFailed`): like
   * arp_error_report / ndisc_error_report (dst_link_failure), the host tells its sender with ICMP
   * host unreachable / ICMPv6 address unreachable. The error is the host's own packet: it passes
   * LOCAL_OUT, where IPVS's out handler turns one about a NAT connection's packet (client → real
   * server) into one from the VIP about client → VIP; the host routes any other.
   */
  #linkFailure(ifc: Iface, buf: Uint8Array, off: number, len: number): void {
    const v = this.#failed;
    if (decodeEthernet(v, buf, off, len) !== 0 || v.ipVersion === 0) return;
    const v6 = v.af === AF_INET6;
    const type = v6 ? ICMPV6.DEST_UNREACH : ICMP.DEST_UNREACH;
    const code = v6 ? ICMPV6.ADDR_UNREACH : ICMP.HOST_UNREACH;
    const n = this.icmp.build(v, ifc, type, code, 0, this.#failedIcmp);
    if (n < 0) return;
    const t = this.ctx.trace;
    if (t)
      t.step(
        'neigh',
        `next hop never answered: ICMP ${v6 ? 'address' : 'host'} unreachable to ${formatIp(v.af, v.src)} about ${describeFrame(buf, off, len)}`,
      );
    const verdict = this.#output(ifc, this.#failedIcmp, 0, n, false);
    if (verdict === NF.ACCEPT && !this.#pkt.reroute) this.xmit.forward(this.#pkt);
  }

  #frame(pkt: Pkt, ifc: Iface, buf: Uint8Array, off: number, len: number, pktType: number): number {
    const c = this.ctx;
    const v = pkt.view;
    if (pktType === PKTTYPE.OTHERHOST || pktType === PKTTYPE.OUTGOING) {
      pkt.reason = R.OTHERHOST;
      return NF.DROP;
    }
    // the group bit of the destination MAC: broadcast and multicast
    const group = len >= 6 && (buf[off]! & 1) !== 0;
    if (len >= 6 && off + 6 <= buf.length && !group) {
      const m = ifc.mac;
      if (
        buf[off] !== m[0] ||
        buf[off + 1] !== m[1] ||
        buf[off + 2] !== m[2] ||
        buf[off + 3] !== m[3] ||
        buf[off + 4] !== m[4] ||
        buf[off + 5] !== m[5]
      ) {
        pkt.reason = R.OTHERHOST;
        return NF.DROP;
      }
    }
    pkt.host = !(pktType === PKTTYPE.BROADCAST || pktType === PKTTYPE.MULTICAST || group);
    const r = decodeEthernet(v, buf, off, len);
    if (r !== 0) {
      this.counters.malformed[r]!++;
      pkt.reason = R.MALFORMED;
      if (c.trace) c.trace.step('decode', `malformed: ${v.reason}`);
      return NF.DROP;
    }
    if (v.etherType === ETH_P.ARP) {
      this.neigh.arpInput(ifc, v);
      pkt.reason = R.CONSUMED;
      if (c.trace)
        c.trace.step(
          'neigh',
          `ARP ${v.arpOp === 1 ? 'request' : 'reply'} for ${formatIp(AF_INET, v.u32, 7)}`,
        );
      return NF.STOLEN;
    }
    if (v.ipVersion === 0) return NF.ACCEPT;
    // ip_rcv: a header with a wrong checksum never reaches a hook (the fast path declines it)
    if (v.ipVersion === 4 && !ipv4HeaderChecksumOk(buf, v.l3Offset, v.ipHeaderLength)) {
      pkt.reason = R.IP_BAD_CSUM;
      if (c.trace) c.trace.step('decode', 'IPv4 header checksum wrong: dropped');
      return NF.DROP;
    }
    if (this.#martian(v)) {
      pkt.reason = R.MARTIAN;
      if (c.trace) c.trace.step('decode', 'martian address: dropped');
      return NF.DROP;
    }
    if (v.ipVersion === 4 && v.ipHeaderLength > 20) {
      const r = this.#ipOptions(pkt, ifc);
      if (r >= 0) return r;
    } else if (v.ipVersion === 6 && buf[v.l3Offset + 6] === IPPROTO.HOPOPTS) {
      // ip6_rcv_core → ipv6_parse_hopopts, before any hook
      const r = parseTlv(buf, v.l3Offset, 40, true, v.dst[0]! >>> 24 === 0xff);
      if (r !== EXT_OK) {
        if (r !== EXT_DROP) this.icmp.send(v, ifc, ICMPV6.PARAM_PROB, ppCode(r), ppPointer(r));
        pkt.reason = R.IP_BAD_OPTIONS;
        if (c.trace) c.trace.step('decode', 'hop-by-hop options refused');
        return NF.DROP;
      }
    }
    const af = v.af;
    if (c.opts.learnFromIp && v.l2Offset >= 0 && v.src[0] !== 0)
      this.neigh.learn(ifc, af, v.src, 0, buf, v.l2Offset + 6, true);
    if (
      af === AF_INET6 &&
      v.protocol === IPPROTO.ICMPV6 &&
      (v.icmpType === 135 || v.icmpType === 136)
    ) {
      this.neigh.ndpInput(ifc, v);
      pkt.reason = R.CONSUMED;
      if (c.trace)
        c.trace.step('neigh', `neighbour ${v.icmpType === 135 ? 'solicitation' : 'advertisement'}`);
      return NF.STOLEN;
    }
    if (v.isFragment || v.fragHeaderOffset >= 0) {
      // IPv4: ip_local_deliver reassembles what is addressed to the host before LOCAL_IN; with a
      // classifier everything is, as conntrack's defragmentation does before iptables marks it.
      // IPv6: the defragmentation an IPv6 service enables takes every fragment at PREROUTING,
      // an atomic one (offset 0, no M flag: first and last at once) too, which leaves without
      // its fragment header (nf_ct_frag6_queue / nf_ct_frag6_reasm; ipv6_frag_rcv likewise).
      const local = this.net.isLocal(af, v.dst, 0);
      const all =
        af === AF_INET6 ? this.ipvs.services.hasFamily(AF_INET6) : this.classifier.size > 0;
      if (af === AF_INET6 && v.mf && v.fragOffset === 0 && headerCut(v)) {
        // RFC 8200 §4.5: a first fragment without the whole upper-layer header is not
        // reassembled (nf_ct_frag6_gather lets it pass); for the director the host answers it
        // with a parameter problem, header incomplete (ipv6_frag_rcv), in transit it goes on
        if (local) {
          this.icmp.send(v, ifc, ICMPV6.PARAM_PROB, ICMPV6_HDR_INCOMP, 0);
          pkt.reason = R.FRAG_BAD;
          if (c.trace) c.trace.step('defrag', 'first fragment without its upper-layer header');
          return NF.DROP;
        }
      } else if (local || all) {
        const r = this.#defrag(pkt, ifc, local ? USER_LOCAL : USER_FWD);
        if (r >= 0) return r;
      }
    }
    if (this.classifier.size > 0) {
      pkt.mark = this.classifier.match(
        af,
        v.protocol,
        v.src,
        v.dst,
        v.l4Parsed ? v.srcPort : -1,
        v.l4Parsed ? v.dstPort : -1,
      );
      if (c.trace && pkt.mark) c.trace.step('mark', `classifier: fwmark ${pkt.mark}`);
    }
    const ipvs = this.ipvs;
    pkt.local =
      this.net.isLocal(af, v.dst, 0) ||
      (pkt.mark !== 0 && c.opts.fwmarkLocal && ipvs.services.findFwmark(af, pkt.mark) !== null);
    if (pkt.local) return this.hooks.run(HOOK.LOCAL_IN, pkt);
    if (!ipvs.enabled) return NF.ACCEPT;
    // ip_forward drops what was not sent to this host's MAC (pkt_type != PACKET_HOST) before the
    // TTL check and the FORWARD hook: a multicast / broadcast frame (an MLD report with hop
    // limit 1, say) is the host's business, never a transit packet answered with time exceeded.
    if (!pkt.host) return NF.ACCEPT;
    // ip_route_input comes first: without a route the packet ends in ip_error (IPv4: network
    // unreachable) or ip6_pkt_discard (IPv6: no route) and never reaches ip_forward or IPVS
    if (!this.net.route(af, v.dst, 0, this.ctx.route)) {
      if (af === AF_INET6) this.icmp.send(v, ifc, ICMPV6.DEST_UNREACH, ICMPV6.NOROUTE, 0);
      else this.icmp.send(v, ifc, ICMP.DEST_UNREACH, ICMP.NET_UNREACH, 0);
      pkt.reason = R.NO_ROUTE;
      if (c.trace) c.trace.step('icmp', 'forwarding: no route, ICMP unreachable sent');
      return NF.DROP;
    }
    // ip_forward: the TTL is checked and decremented before the FORWARD hook
    if (v.ttl <= 1) {
      if (af === AF_INET6) this.icmp.send(v, ifc, ICMPV6.TIME_EXCEEDED, 0, 0);
      else this.icmp.send(v, ifc, ICMP.TIME_EXCEEDED, 0, 0);
      pkt.reason = R.TTL_EXPIRED;
      if (c.trace) c.trace.step('icmp', 'forwarding: TTL expired, ICMP time exceeded sent');
      return NF.DROP;
    }
    // ip_forward / ip6_forward: then the MTU of the route on (ip_exceeds_mtu, ip6_pkt_too_big),
    // still before the decrement and the FORWARD hook, so a NAT reply too big for the client's
    // side is refused to the real server as it sent it, and IPVS never sees it
    const mtu = this.#forwardTooBig(pkt);
    if (mtu > 0) {
      if (af === AF_INET6) this.icmp.send(v, ifc, ICMPV6.PACKET_TOO_BIG, 0, mtu);
      else this.icmp.send(v, ifc, ICMP.DEST_UNREACH, ICMP.FRAG_NEEDED, mtu);
      pkt.reason = R.FRAG_NEEDED;
      if (c.trace)
        c.trace.step(
          'icmp',
          `forwarding: above the route's MTU ${mtu}, ${af === AF_INET6 ? 'packet too big' : 'fragmentation needed'} sent`,
        );
      return NF.DROP;
    }
    setTtl(v, v.ttl - 1);
    if (
      af === AF_INET &&
      v.isFragment &&
      GATHERED[v.protocol] === 1 &&
      this.ipvs.services.hasFamily(AF_INET)
    ) {
      // IPVS's out and ICMP handlers gather the fragments they see first (ip_vs_gather_frags)
      const r = this.#defrag(pkt, ifc, USER_FWD);
      if (r >= 0) return r;
    }
    return this.hooks.run(HOOK.FORWARD, pkt);
  }

  /**
   * Addresses a Linux host drops a received packet for before any hook. IPv4 (the input route:
   * ip_route_input_slow, fib_validate_source; route_localnet 0): a multicast, limited broadcast,
   * 0/8, loopback or local source, a 0/8 or loopback destination. IPv6 (ip6_rcv_core): a
   * multicast or loopback source, a loopback destination, a multicast one of scope 0 or 1.
   */
  #martian(v: PacketView): boolean {
    if (v.ipVersion === 4) {
      const s = v.src[0]! >>> 0;
      const d = v.dst[0]! >>> 0;
      if (martianSource4(s)) return true;
      if (d >>> 24 === 0 || d >>> 24 === 127) return true;
      // 255.255.255.255 and 0.0.0.0 → 0.0.0.0 are broadcast input; a source of ours is refused
      return d !== 0xffffffff && this.net.isLocal(AF_INET, v.src, 0);
    }
    if (v.ipVersion !== 6) return false;
    const s = v.src;
    const d = v.dst;
    if (s[0]! >>> 24 === 0xff) return true;
    if (s[0] === 0 && s[1] === 0 && s[2] === 0 && s[3] === 1) return true;
    if (d[0] === 0 && d[1] === 0 && d[2] === 0 && d[3] === 1) return true;
    return d[0]! >>> 24 === 0xff && ((d[0]! >>> 16) & 15) <= 1;
  }

  readonly #optRoute = new RouteResult();
  readonly #unicast: (a: number) => boolean;

  /**
   * ip_rcv_options, for an IPv4 header with options, before reassembly and any hook:
   * ip_options_compile checks them and fills record-route / timestamp slots (the address is
   * fib_compute_spec_dst's: the destination of a packet for the host, else the host's source
   * toward the sender); a bad option is answered with a parameter problem pointing at it, and a
   * source-routed packet is dropped (accept_source_route 0). Returns the verdict, or -1 to go on.
   */
  #ipOptions(pkt: Pkt, ifc: Iface): number {
    const v = pkt.view;
    const ip = v.l3Offset;
    const res = this.#optRoute;
    let spec: number;
    if (this.net.isLocal(AF_INET, v.dst, 0)) spec = v.dst[0]!;
    else if (v.src[0] !== 0 && this.net.route(AF_INET, v.src, 0, res)) spec = res.src[0]!;
    else spec = ifc.addrOf(AF_INET)?.[0] ?? 0;
    const o = pkt.opts;
    const ms = msOfDay(this.ipvs.now());
    const ptr = compileIpv4Options(v.buf, ip, v.ipHeaderLength, spec, ms, this.#unicast, o);
    // what was found so far is echoed by the parameter problem (icmp_send → __ip_options_echo)
    pkt.hasOpts = true;
    if (ptr >= 0) {
      this.icmp.send(v, ifc, ICMP.PARAMETER_PROBLEM, 0, (ptr << 24) >>> 0);
      pkt.reason = R.IP_BAD_OPTIONS;
      if (this.ctx.trace)
        this.ctx.trace.step('decode', `IPv4 option at byte ${ptr} refused: parameter problem`);
      return NF.DROP;
    }
    if (o.changed) headerChecksum(v.buf, ip, v.ipHeaderLength);
    if (o.srr !== 0) {
      pkt.reason = R.SOURCE_ROUTE;
      if (this.ctx.trace) this.ctx.trace.step('decode', 'source-routed (accept_source_route 0)');
      return NF.DROP;
    }
    return -1;
  }

  /** ip_forward_options: a forwarded packet's record-route / address timestamp slot gets the
   * address it leaves from (the source of the route toward its destination). */
  #forwardOptions(pkt: Pkt): void {
    const v = pkt.view;
    if (v.af !== AF_INET || v.ipHeaderLength <= 20) return;
    const res = this.#optRoute;
    if (!this.net.route(AF_INET, v.dst, 0, res)) return;
    if (forwardIpv4Options(v.buf, v.l3Offset, pkt.opts, res.src[0]!))
      headerChecksum(v.buf, v.l3Offset, v.ipHeaderLength);
  }

  /**
   * The MTU a packet in transit exceeds, else 0: IPv4 only with DF (a reassembled datagram by its
   * largest fragment), IPv6 always (a reassembled one only by its largest fragment), against the
   * route toward its destination (IPv6: at least 1280), which `ctx.route` holds.
   */
  #forwardTooBig(pkt: Pkt): number {
    const v = pkt.view;
    const res = this.ctx.route;
    if (res.local) return 0;
    const len = v.ipEnd - v.l3Offset;
    if (v.af === AF_INET6) {
      const mtu = res.mtu < 1280 ? 1280 : res.mtu;
      if (len <= mtu) return 0;
      return pkt.fragMax === 0 || pkt.fragMax > mtu ? mtu : 0;
    }
    const mtu = res.mtu;
    if (len <= mtu || !v.df) return 0;
    return pkt.fragMax === 0 || pkt.fragMax > mtu ? mtu : 0;
  }

  /**
   * Gives the fragment in `pkt` to reassembly. Returns the verdict when the fragment ends
   * here (held or dropped), or -1 when it completed its datagram: `pkt.view` is then the whole
   * datagram, which goes on in the fragment's place.
   */
  #defrag(pkt: Pkt, ifc: Iface, user: number): number {
    const c = this.ctx;
    const v = pkt.view;
    const re = c.reasm;
    const trace = c.trace;
    const id = trace ? `id ${v.ipId} offset ${v.fragOffset}${v.mf ? ' MF' : ''}` : '';
    const r = re.add(v, user, ifc, this.ipvs.now(), pkt.hasOpts ? pkt.opts : null);
    if (r === REASM_HELD) {
      pkt.reason = R.FRAG_HELD;
      if (trace) trace.step('defrag', `fragment ${id} held for reassembly`);
      return NF.STOLEN;
    }
    if (r === REASM_PASS) {
      // IPv6, a non-last fragment whose length is not a multiple of 8: its datagram is gone and
      // it goes on alone; for the director the host's reassembly points a parameter problem at
      // the payload length (ip6_frag_queue), in transit it is forwarded as it is
      if (trace) trace.step('defrag', `fragment ${id} not a multiple of 8 long: datagram dropped`);
      if (user !== USER_LOCAL) return -1;
      this.icmp.send(v, ifc, ICMPV6.PARAM_PROB, 0, 4);
      pkt.reason = R.FRAG_BAD;
      return NF.DROP;
    }
    if (r !== REASM_DONE) {
      pkt.reason = r;
      if (trace) trace.step('defrag', `fragment ${id} dropped (${REASONS[r]})`);
      return NF.DROP;
    }
    const d = decodeEthernet(v, re.frame, 0, re.frameLen);
    if (d !== 0) {
      this.counters.malformed[d]!++;
      pkt.reason = R.MALFORMED;
      if (trace) trace.step('defrag', `reassembled datagram malformed: ${v.reason}`);
      return NF.DROP;
    }
    pkt.fragMax = re.maxSize;
    // the datagram carries its first fragment's header and what that one's receive found in
    // its options (the head's control block)
    if (re.opts !== null) {
      pkt.opts.copyFrom(re.opts);
      pkt.hasOpts = true;
    } else pkt.hasOpts = false;
    if (trace)
      trace.step(
        'defrag',
        `fragment ${id} completed the datagram: ${v.ipTotalLength} bytes from ${re.geometry.length / 2} fragments`,
      );
    return -1;
  }

  /** Sends ICMP fragment reassembly time exceeded for the datagrams that timed out. */
  #reasmTimeouts(): void {
    const re = this.ctx.reasm;
    if (re.size === 0) return;
    re.expire(this.ipvs.now(), (ifc) => {
      const v = this.#expired;
      if (decodeEthernet(v, re.frame, 0, re.frameLen) !== 0) return;
      if (v.af === AF_INET6) this.icmp.send(v, ifc, ICMPV6.TIME_EXCEEDED, ICMP_EXC_FRAGTIME, 0);
      else this.icmp.send(v, ifc, ICMP.TIME_EXCEEDED, ICMP_EXC_FRAGTIME, 0);
    });
  }
}

/** Protocols whose IPv4 fragments IPVS gathers on the forwarding path (not AH / ESP). */
const GATHERED = new Uint8Array(256);
GATHERED[IPPROTO.TCP] = GATHERED[IPPROTO.UDP] = GATHERED[IPPROTO.SCTP] = GATHERED[IPPROTO.ICMP] = 1;
/** ICMP time exceeded code: fragment reassembly time exceeded. */
const ICMP_EXC_FRAGTIME = 1;
/** ICMPv6 parameter problem code: the first fragment lacks headers (RFC 7112). */
const ICMPV6_HDR_INCOMP = 3;

/**
 * ipv6frag_thdr_truncated: an IPv6 first fragment ending before its upper-layer header does
 * (TCP 20 bytes, UDP and ICMPv6 8, anything else 1).
 */
function headerCut(v: PacketView): boolean {
  const p = v.protocol;
  const need = p === IPPROTO.TCP ? 20 : p === IPPROTO.UDP || p === IPPROTO.ICMPV6 ? 8 : 1;
  return v.l4Offset < 0 || v.l4Offset + need > v.ipEnd;
}

/** A VIP's key: the address word for IPv4, the text for IPv6. */
function vipKey(af: number, addr: ArrayLike<number>): number | string {
  return af === AF_INET6 ? formatIp(af, addr) : addr[0]! >>> 0;
}
