/**
 * Connection lifecycle (spec §1.3, §1.4, §3.4, §3.5, §5.4): creating connections and persistence
 * templates, binding them to destinations (counters and OVERLOAD hysteresis), controller links,
 * state transitions with active/inactive accounting, statistics, expiry with IPVS timer semantics,
 * scheduling, and the memory-pressure defences. Everything works on integer handles.
 */
import * as diagnostics from 'node:diagnostics_channel';
import { AF_INET6, maskAddr } from './addr.js';
import { NO_CONN } from './conn.js';
import {
  CONN_F_FWD_MASK,
  CONN_F_INACTIVE,
  CONN_F_NOOUTPUT,
  CONN_F_NO_CPORT,
  CONN_F_ONE_PACKET,
  CONN_F_SYNC,
  CONN_F_TEMPLATE,
  DEST_F_AVAILABLE,
  DEST_F_OVERLOAD,
  FWD_MASQ,
  IPPROTO_IP,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
} from './constants.js';
import type { Flow } from './flow.js';
import type { Ipvs } from './ipvs.js';
import { Defense } from './defense.js';
import { sipCallId } from './pe-sip.js';
import type { Dest, Service } from './service.js';
import { schedWhere } from '../sched/common.js';
import {
  DIR_INPUT_ONLY,
  DIR_OUTPUT,
  SCTP_EV_NONE,
  SCTP_S_CLOSED,
  SCTP_S_ESTABLISHED,
  TCP_S_CLOSE,
  TCP_S_ESTABLISHED,
  TCP_S_FIN_WAIT,
  TCP_S_TIME_WAIT,
  TEMPLATE_STATE_ASSURED,
  protoOps,
  sctpNextState,
  tcpNextState,
} from '../proto/index.js';

/** `schedule()` results that are not a connection handle (spec §5.4). */
export const SCHED_PASS = -2; // ignored = 1: let the packet through untouched
export const SCHED_LEAVE = -3; // ignored = 0: no destination → the "leave" path
export const SCHED_DROP = -4; // ignored = -1: drop (table full, drop_packet, PE failure)

/** New connections start with this placeholder timeout (spec §1.3.3). */
export const INITIAL_TIMEOUT_MS = 3000;
/** Expiring connections that still control others are postponed by this much (spec §1.3.4). */
export const POSTPONE_MS = 60_000;
const FTPPORT = 21;
const FTPDATA = 20;

const chConnNew = diagnostics.channel('ipvs:conn:new');
const chConnExpire = diagnostics.channel('ipvs:conn:expire');
const chSchedNone = diagnostics.channel('ipvs:sched:none');

/** Counters of conditions that are not errors a caller sees (ipvs-ts extension). */
export interface ConnCounters {
  /** New connections refused because the table was full. */
  tableFull: number;
  /** New-connection packets dropped by drop_packet. */
  defenseDropPacket: number;
  /** Connections dropped by drop_entry. */
  defenseDropEntry: number;
  /** Scheduling attempts that found no destination. */
  noDest: number;
}

/** Connection operations of one `Ipvs`. */
export class ConnOps {
  readonly #ipvs: Ipvs;
  readonly counters: ConnCounters = {
    tableFull: 0,
    defenseDropPacket: 0,
    defenseDropEntry: 0,
    noDest: 0,
  };
  /** Called just before a connection is freed (data planes close what belongs to it). */
  onFree: ((h: number) => void) | null = null;
  /** Called when a destination's OVERLOAD bit turns on or off as connections bind and unbind. */
  onOverload: ((dest: Dest) => void) | null = null;
  #nodestPending = false;
  readonly #peName = new Map<number, string>();
  readonly #peData = new Map<number, string>();
  // scratch buffers (no allocation per packet)
  readonly #snet = new Uint32Array(4);
  readonly #vkey = new Uint32Array(4);

  /** The memory-pressure defences (spec §3.5). */
  readonly defense: Defense;
  /**
   * `sync_endtime` by handle: set to the creation time (two low bits clear) for every connection,
   * as ip_vs_conn_new does, whether or not a sync master runs, so a master started (or restarted)
   * later judges `sync_refresh_period` from it; the master's sends move it on (sync_conn_needed).
   */
  readonly syncEndtime: Float64Array;

  constructor(ipvs: Ipvs) {
    this.#ipvs = ipvs;
    this.defense = new Defense(ipvs, this);
    this.syncEndtime = new Float64Array(ipvs.conns.capacity);
  }

  /** The destination bound to `h`, or null. */
  dest(h: number): Dest | null {
    const id = this.#ipvs.conns.dest(h);
    return id >= 0 ? (this.#ipvs.destById[id] ?? null) : null;
  }

  /** Persistence-engine name / data of a template ('' when none). */
  peName(h: number): string {
    return this.#peName.get(h) ?? '';
  }

  peData(h: number): string {
    return this.#peData.get(h) ?? '';
  }

  /** Sets the persistence-engine name and data of a template (the sync backup's templates). */
  setPe(h: number, name: string, data: string): void {
    this.#peName.set(h, name);
    this.#peData.set(h, data);
  }

  // ---- creation and binding ----------------------------------------------------------------

  /**
   * Creates a connection (ip_vs_conn_new): hashed unless ONE_PACKET, bound to `dest`, timer armed
   * with the 3 s placeholder. Returns NO_CONN when the table is full (counted, logged rate-limited).
   */
  newConn(
    af: number,
    proto: number,
    caddr: ArrayLike<number>,
    cport: number,
    vaddr: ArrayLike<number>,
    vport: number,
    daf: number,
    daddr: ArrayLike<number>,
    dport: number,
    flags: number,
    dest: Dest | null,
    fwmark: number,
  ): number {
    const t = this.#ipvs.conns;
    const h = t.alloc(
      af,
      proto,
      caddr,
      0,
      cport,
      vaddr,
      0,
      vport,
      daf,
      daddr,
      0,
      dport,
      flags >>> 0,
      fwmark >>> 0,
      INITIAL_TIMEOUT_MS,
    );
    if (h === NO_CONN) {
      this.counters.tableFull++;
      this.#ipvs.warn(
        'conn-full',
        `connection table full (${t.capacity} entries): new connection refused`,
      );
      return NO_CONN;
    }
    if (dest) this.bind(h, dest);
    this.syncEndtime[h] = Math.floor(this.#ipvs.now() / 4) * 4;
    if (!(t.flags(h) & CONN_F_ONE_PACKET)) {
      t.hash(h);
      this.#ipvs.wheel.arm(h, this.#ipvs.now() + INITIAL_TIMEOUT_MS);
    }
    if (chConnNew.hasSubscribers) chConnNew.publish({ handle: h });
    return h;
  }

  /** Binds `h` to `dest` (ip_vs_bind_dest): flags, counters, OVERLOAD set (spec §1.3.3). */
  bind(h: number, dest: Dest): void {
    const t = this.#ipvs.conns;
    if (t.dest(h) >= 0) return;
    let cf = dest.connFlags;
    if (t.protocol(h) !== IPPROTO_UDP) cf &= ~CONN_F_ONE_PACKET;
    let f = t.flags(h);
    if (f & CONN_F_SYNC) {
      // keep the synced activity; method and NOOUTPUT come from the destination (ip_vs_bind_dest)
      if (!(f & CONN_F_TEMPLATE)) cf &= ~CONN_F_INACTIVE;
      f &= ~(CONN_F_FWD_MASK | CONN_F_NOOUTPUT);
    }
    t.setFlags(h, (f | cf) >>> 0);
    t.setDest(h, dest.id);
    dest.refs++;
    if (t.flags(h) & CONN_F_TEMPLATE) dest.persistConns++;
    else if (t.flags(h) & CONN_F_INACTIVE) dest.inactConns++;
    else dest.activeConns++;
    if (
      dest.uThreshold !== 0 &&
      !(dest.flags & DEST_F_OVERLOAD) &&
      dest.activeConns + dest.inactConns >= dest.uThreshold
    ) {
      dest.flags |= DEST_F_OVERLOAD;
      this.onOverload?.(dest);
    }
  }

  /** Unbinds `h` from its destination: counters, then OVERLOAD clear by the hysteresis rule. */
  unbind(h: number): void {
    const t = this.#ipvs.conns;
    const dest = this.dest(h);
    t.setDest(h, -1);
    if (!dest) return;
    dest.refs--;
    const f = t.flags(h);
    if (f & CONN_F_TEMPLATE) dest.persistConns--;
    else if (f & CONN_F_INACTIVE) dest.inactConns--;
    else dest.activeConns--;
    if (!(dest.flags & DEST_F_OVERLOAD)) return;
    const total = dest.activeConns + dest.inactConns;
    const clear =
      dest.lThreshold !== 0
        ? total < dest.lThreshold
        : dest.uThreshold === 0 || total * 4 < dest.uThreshold * 3;
    if (clear) {
      dest.flags &= ~DEST_F_OVERLOAD;
      this.onOverload?.(dest);
    }
  }

  /**
   * Fills in the client port of a NO_CPORT connection (FTP passive data) from the first packet:
   * clears the flag and re-hashes it under the real port (spec §3.3).
   */
  fillCport(h: number, cport: number): void {
    const t = this.#ipvs.conns;
    if (!(t.flags(h) & CONN_F_NO_CPORT)) return;
    const hashed = t.unhash(h);
    t.setFlags(h, t.flags(h) & ~CONN_F_NO_CPORT);
    t.setPorts(h, cport, t.vport(h));
    if (hashed) t.hash(h);
  }

  /** Makes `ct` the controller of `h`. */
  controlAdd(h: number, ct: number): void {
    const t = this.#ipvs.conns;
    if (t.control(h) !== NO_CONN) this.controlDel(h);
    t.setControl(h, ct);
    t.setNControl(ct, t.nControl(ct) + 1);
  }

  /** Detaches `h` from its controller. */
  controlDel(h: number): void {
    const t = this.#ipvs.conns;
    const ct = t.control(h);
    if (ct === NO_CONN) return;
    t.setControl(h, NO_CONN);
    t.setNControl(ct, t.nControl(ct) - 1);
  }

  // ---- timers and expiry ------------------------------------------------------------------

  /** Re-arms the idle timer after a packet (ip_vs_conn_put); ONE_PACKET connections go at once. */
  put(h: number): void {
    const t = this.#ipvs.conns;
    if (t.flags(h) & CONN_F_ONE_PACKET) {
      this.expire(h);
      return;
    }
    this.#ipvs.wheel.arm(h, this.#ipvs.now() + t.timeout(h));
  }

  /** Moves the timer so the connection expires at the next tick (ip_vs_conn_expire_now). */
  expireNow(h: number): void {
    const w = this.#ipvs.wheel;
    if (w.isArmed(h) && w.expires(h) > this.#ipvs.now()) w.arm(h, this.#ipvs.now());
  }

  /** Deletes a connection now, as flush and the defences do (timeout forced to 0). */
  del(h: number): void {
    const w = this.#ipvs.wheel;
    if (!w.isArmed(h) && !(this.#ipvs.conns.flags(h) & CONN_F_ONE_PACKET)) return;
    w.cancel(h);
    this.#ipvs.conns.setTimeout(h, 0);
    this.expire(h);
  }

  /** The timer fired (ip_vs_conn_expire, spec §1.3.4). */
  expire(h: number): void {
    const ipvs = this.#ipvs;
    const t = ipvs.conns;
    if (t.nControl(h) > 0 || t.refcnt(h) > 0) {
      t.setTimeout(h, POSTPONE_MS);
      // the postponed entry is announced again, as if it had seen sync_threshold packets
      if (ipvs.syncMaster !== null) ipvs.syncMaster.syncConn(h, ipvs.sysctl.sync_threshold[0]);
      ipvs.wheel.arm(h, ipvs.now() + POSTPONE_MS);
      return;
    }
    ipvs.wheel.cancel(h);
    this.onFree?.(h);
    if (chConnExpire.hasSubscribers) chConnExpire.publish({ handle: h });
    if (!(t.flags(h) & CONN_F_ONE_PACKET)) t.unhash(h);
    const ct = t.control(h);
    if (ct !== NO_CONN) {
      const forced = t.timeout(h) === 0;
      this.controlDel(h);
      if (
        forced &&
        t.nControl(ct) === 0 &&
        (!(t.flags(ct) & CONN_F_TEMPLATE) || !(t.state(ct) & TEMPLATE_STATE_ASSURED))
      ) {
        this.del(ct);
      }
    }
    this.unbind(h);
    if (this.#peName.size) {
      this.#peName.delete(h);
      this.#peData.delete(h);
    }
    t.release(h);
  }

  // ---- state and statistics ---------------------------------------------------------------

  /**
   * Runs the protocol state machine for a packet in direction `dir` (DIR_INPUT / DIR_OUTPUT):
   * `arg` is the TCP flags byte for TCP, the SCTP event for SCTP, ignored for UDP. Moves the
   * connection between active and inactive counters and sets its timeout (spec §4).
   */
  transition(h: number, dir: number, arg: number): void {
    const ipvs = this.#ipvs;
    const t = ipvs.conns;
    const proto = t.protocol(h);
    if (t.flags(h) & CONN_F_TEMPLATE) return;
    if (proto === IPPROTO_UDP) {
      if (dir === DIR_OUTPUT) this.#assureController(h);
      t.setTimeout(h, ipvs.udpTimeouts[0]!);
      return;
    }
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_SCTP) return;
    // set_sctp_state returns before anything else when the packet has no chunk
    if (proto === IPPROTO_SCTP && arg === SCTP_EV_NONE) return;
    if (t.flags(h) & CONN_F_NOOUTPUT) {
      if (dir === DIR_OUTPUT) t.setFlags(h, t.flags(h) & ~CONN_F_NOOUTPUT);
      else dir = DIR_INPUT_ONLY;
    }
    const cur = t.state(h);
    const next =
      proto === IPPROTO_TCP
        ? tcpNextState(ipvs.sysctl.secure_tcp > 1, dir, arg, cur)
        : sctpNextState(dir, arg, cur);
    const established = proto === IPPROTO_TCP ? TCP_S_ESTABLISHED : SCTP_S_ESTABLISHED;
    if (next !== cur) {
      const dest = this.dest(h);
      if (dest) {
        const active = protoOps(proto)!.isActive(next);
        const f = t.flags(h);
        if (!(f & CONN_F_INACTIVE) && !active) {
          dest.activeConns--;
          dest.inactConns++;
          t.setFlags(h, f | CONN_F_INACTIVE);
        } else if (f & CONN_F_INACTIVE && active) {
          dest.activeConns++;
          dest.inactConns--;
          t.setFlags(h, f & ~CONN_F_INACTIVE);
        }
      }
      if (next === established) this.#assureController(h);
    }
    t.setState(h, next);
    t.setTimeout(h, (proto === IPPROTO_TCP ? ipvs.tcpTimeouts : ipvs.sctpTimeouts)[next]!);
  }

  #assureController(h: number): void {
    const t = this.#ipvs.conns;
    const ct = t.control(h);
    if (ct !== NO_CONN && t.flags(ct) & CONN_F_TEMPLATE)
      t.setState(ct, t.state(ct) | TEMPLATE_STATE_ASSURED);
  }

  /**
   * Counts an incoming packet of `len` bytes (spec §5.6), only for an AVAILABLE destination;
   * `pkts` packets of `len` bytes in all when a data plane hands over a sum.
   */
  inStats(h: number, len: number, pkts = 1): void {
    const d = this.dest(h);
    if (!d || !(d.flags & DEST_F_AVAILABLE)) return;
    d.stats.inpkts += pkts;
    d.stats.inbytes += len;
    const s = d.svc!.stats;
    s.inpkts += pkts;
    s.inbytes += len;
    this.#ipvs.total.inpkts += pkts;
    this.#ipvs.total.inbytes += len;
  }

  /**
   * Step 12 of the incoming path for a data plane that counts reads rather than packets (the
   * proxy): `pkts` more incoming packets on `h`, each handed to a running sync master as the
   * packet path does; a one-packet connection counts on its template instead.
   */
  countIn(h: number, pkts = 1): void {
    const ipvs = this.#ipvs;
    const t = ipvs.conns;
    const sm = ipvs.syncMaster;
    if (t.flags(h) & CONN_F_ONE_PACKET) {
      const ct = t.control(h);
      if (sm !== null) sm.syncConn(h, ipvs.sysctl.sync_threshold[0]);
      else if (ct !== NO_CONN) t.setInPkts(ct, t.inPkts(ct) + pkts);
      return;
    }
    if (sm === null) {
      t.setInPkts(h, t.inPkts(h) + pkts);
      return;
    }
    for (let i = 0; i < pkts; i++) {
      t.setInPkts(h, t.inPkts(h) + 1);
      sm.syncConn(h, t.inPkts(h));
    }
  }

  /** Counts an outgoing (reply) packet of `len` bytes (or `pkts` packets of `len` in all). */
  outStats(h: number, len: number, pkts = 1): void {
    const d = this.dest(h);
    if (!d || !(d.flags & DEST_F_AVAILABLE)) return;
    d.stats.outpkts += pkts;
    d.stats.outbytes += len;
    const s = d.svc!.stats;
    s.outpkts += pkts;
    s.outbytes += len;
    this.#ipvs.total.outpkts += pkts;
    this.#ipvs.total.outbytes += len;
  }

  #connStats(dest: Dest, svc: Service): void {
    dest.stats.conns++;
    svc.stats.conns++;
    this.#ipvs.total.conns++;
  }

  // ---- scheduling -------------------------------------------------------------------------

  /**
   * The protocol `conn_schedule` step for a packet that may open a connection to `svc`:
   * drop_packet first, then `schedule`. Returns a handle or a SCHED_* code.
   */
  connSchedule(svc: Service, flow: Flow): number {
    if (this.defense.todrop()) return SCHED_DROP;
    return this.schedule(svc, flow);
  }

  /** ip_vs_schedule (spec §5.4): returns a new connection's handle or a SCHED_* code. */
  schedule(svc: Service, flow: Flow): number {
    const inv = flow.inverse;
    const cport = inv ? flow.dport : flow.sport;
    const vport = inv ? flow.sport : flow.dport;
    const caddr = inv ? flow.daddr : flow.saddr;
    const vaddr = inv ? flow.saddr : flow.daddr;
    if (cport === FTPDATA) return SCHED_PASS;
    if (svc.flags & SVC_F_PERSISTENT)
      return this.#schedPersist(svc, flow, caddr, cport, vaddr, vport);
    if (!svc.fwmark && vport !== svc.port) {
      if (!svc.port) {
        this.#ipvs.warn(
          'port0',
          'Schedule: port zero only supported in persistent services, check your ipvs configuration',
        );
      }
      return SCHED_LEAVE;
    }
    const dest = this.#pick(svc, flow);
    if (!dest) return SCHED_LEAVE;
    const flags =
      svc.flags & SVC_F_ONEPACKET && flow.protocol === IPPROTO_UDP ? CONN_F_ONE_PACKET : 0;
    const h = this.newConn(
      svc.af,
      flow.protocol,
      caddr,
      cport,
      vaddr,
      vport,
      dest.af,
      dest.addr,
      dest.port ? dest.port : vport,
      flags,
      dest,
      flow.fwmark,
    );
    if (h === NO_CONN) return SCHED_DROP;
    this.#connStats(dest, svc);
    return h;
  }

  #pick(svc: Service, flow: Flow): Dest | null {
    const dest = svc.sched ? svc.sched.schedule(svc, flow) : null;
    if (!dest) {
      // the scheduler itself logged (schedErr), as the kernel's do; `none` logs nothing
      this.counters.noDest++;
      if (chSchedNone.hasSubscribers) chSchedNone.publish({ service: schedWhere(svc) });
    }
    return dest;
  }

  /**
   * ip_vs_check_template: a template is invalid when its destination is gone, deleted, (with
   * expire_quiescent_template) quiescent, or not `cdest` when one is given; an invalid one is
   * neutralised so it never matches again.
   */
  checkTemplate(ct: number, cdest: Dest | null = null): boolean {
    const t = this.#ipvs.conns;
    const dest = this.dest(ct);
    if (
      dest &&
      dest.flags & DEST_F_AVAILABLE &&
      !(this.#ipvs.sysctl.expire_quiescent_template && dest.weight === 0) &&
      (cdest === null || dest === cdest)
    ) {
      return true;
    }
    if (t.vport(ct) !== 0xffff && t.unhash(ct)) {
      t.setDport(ct, 0xffff);
      t.setPorts(ct, 0, 0xffff);
      t.hash(ct);
    }
    return false;
  }

  /** ip_vs_sched_persist (spec §1.4). */
  #schedPersist(
    svc: Service,
    flow: Flow,
    caddr: Uint32Array,
    cport: number,
    vaddr: Uint32Array,
    vport: number,
  ): number {
    const ipvs = this.#ipvs;
    const t = ipvs.conns;
    const snet = this.#snet;
    maskAddr(svc.af, caddr, svc.netmask, snet);
    let tproto = flow.protocol;
    let tvport: number;
    let tvaddr: ArrayLike<number> = vaddr;
    let dport: number;
    const normal = vport === svc.port;
    if (normal) {
      tvport = svc.port !== FTPPORT ? vport : 0;
    } else {
      tvport = 0;
      if (svc.fwmark) {
        tproto = IPPROTO_IP;
        const k = this.#vkey;
        k[0] = svc.fwmark;
        k[1] = k[2] = k[3] = 0;
        tvaddr = k;
      }
    }
    // a persistence engine adds its data (the SIP Call-ID) to the template key; no data: drop
    let pe: string | null = null;
    if (svc.peName === 'sip') {
      pe =
        flow.protocol === IPPROTO_UDP && flow.payload && !flow.inverse
          ? sipCallId(flow.payload, flow.payloadOffset, flow.payloadLength)
          : null;
      if (pe === null) return SCHED_DROP;
    }
    let ct = t.templateGet(svc.af, tproto, snet, 0, tvaddr, tvport, this.#peMatch(pe));
    let dest: Dest | null;
    if (ct === NO_CONN || !this.checkTemplate(ct)) {
      dest = this.#pick(svc, flow);
      if (!dest) return SCHED_LEAVE;
      const tdport = normal && svc.port !== FTPPORT ? dest.port : 0;
      ct = this.newConn(
        svc.af,
        tproto,
        snet,
        0,
        tvaddr,
        tvport,
        dest.af,
        dest.addr,
        tdport,
        CONN_F_TEMPLATE,
        dest,
        flow.fwmark,
      );
      if (ct === NO_CONN) return SCHED_DROP;
      t.setTimeout(ct, svc.timeout * 1000);
      if (pe !== null) {
        this.#peName.set(ct, svc.peName);
        this.#peData.set(ct, pe);
      }
    } else {
      dest = this.dest(ct)!;
    }
    dport = vport;
    if (normal && dest.port !== 0) dport = dest.port;
    const flags =
      svc.flags & SVC_F_ONEPACKET && flow.protocol === IPPROTO_UDP ? CONN_F_ONE_PACKET : 0;
    const h = this.newConn(
      svc.af,
      flow.protocol,
      caddr,
      cport,
      vaddr,
      vport,
      dest.af,
      dest.addr,
      dport,
      flags,
      dest,
      flow.fwmark,
    );
    if (h === NO_CONN) {
      this.put(ct);
      return SCHED_DROP;
    }
    this.controlAdd(h, ct);
    this.put(ct);
    this.#connStats(dest, svc);
    return h;
  }

  /**
   * The template filter of a lookup (ip_vs_ct_in_get): with engine data only templates carrying
   * the same data match (ip_vs_sip_ct_match); without, templates that carry engine data never
   * match, as the kernel hashes those by their data (ip_vs_sip_hashkey_raw), not by the client.
   */
  #peMatch(pe: string | null): ((h: number) => boolean) | null {
    if (pe !== null) return (x) => this.#peData.get(x) === pe;
    return this.#peData.size ? (x) => !this.#peData.has(x) : null;
  }

  /**
   * Server-initiated flows of the SIP engine (ip_vs_sip_conn_out → ip_vs_new_conn_out, spec §5.3
   * step 5, §7.1): a UDP packet that matched no connection from a NAT real server whose first
   * real-server match belongs to a non-fwmark, non-port-0 SIP service. For a persistent service
   * it finds the template of the Call-ID, and replaces it when it is invalid or pinned to another
   * server (ip_vs_check_template with the sender); then it creates a connection whose client is
   * the packet's destination, so the remote party's answers reach the same server (with -o also
   * the way a one-packet service's answers get translated). `flow` is the outgoing packet
   * (source = real server). Returns the handle, or NO_CONN when it does not apply.
   */
  peConnOut(flow: Flow): number {
    if (flow.protocol !== IPPROTO_UDP || !flow.payload) return NO_CONN;
    const ipvs = this.#ipvs;
    // __ip_vs_rs_conn_out: the real-server table's first NAT match decides, and only its
    // service may start the flow (a normal SIP service)
    const dest = this.#realService(flow);
    const svc = dest?.svc;
    if (dest && svc && svc.peName === 'sip' && !svc.fwmark && svc.port) {
      const t = ipvs.conns;
      let ct = NO_CONN;
      if (svc.flags & SVC_F_PERSISTENT) {
        const pe = sipCallId(flow.payload, flow.payloadOffset, flow.payloadLength);
        if (pe === null) return NO_CONN;
        maskAddr(svc.af, flow.daddr, svc.netmask, this.#snet);
        ct = t.templateGet(
          svc.af,
          IPPROTO_UDP,
          this.#snet,
          0,
          svc.addr,
          svc.port,
          this.#peMatch(pe),
        );
        if (ct !== NO_CONN && !this.checkTemplate(ct, dest)) ct = NO_CONN;
        if (ct === NO_CONN) {
          ct = this.newConn(
            svc.af,
            IPPROTO_UDP,
            this.#snet,
            0,
            svc.addr,
            svc.port,
            dest.af,
            dest.addr,
            dest.port,
            CONN_F_TEMPLATE,
            dest,
            0,
          );
          if (ct === NO_CONN) return NO_CONN;
          t.setTimeout(ct, svc.timeout * 1000);
          this.#peName.set(ct, svc.peName);
          this.#peData.set(ct, pe);
        }
      }
      const flags = svc.flags & SVC_F_ONEPACKET ? CONN_F_ONE_PACKET : 0;
      const h = this.newConn(
        svc.af,
        IPPROTO_UDP,
        flow.daddr,
        flow.dport,
        svc.addr,
        svc.port,
        dest.af,
        dest.addr,
        dest.port,
        flags,
        dest,
        0,
      );
      if (ct !== NO_CONN) {
        if (h !== NO_CONN) this.controlAdd(h, ct);
        this.put(ct);
      }
      if (h === NO_CONN) return NO_CONN;
      this.#connStats(dest, svc);
      return h;
    }
    return NO_CONN;
  }

  /**
   * ip_vs_find_real_service: the NAT destination at the packet's source address and port, of a
   * service of its protocol or a fwmark service; of several, the one most recently put in the
   * real-server table (its buckets are newest-first).
   */
  #realService(flow: Flow): Dest | null {
    let best: Dest | null = null;
    for (const svc of this.#ipvs.services.list()) {
      if (svc.protocol !== flow.protocol && !svc.fwmark) continue;
      for (const d of svc.dests) {
        if (
          (d.connFlags & CONN_F_FWD_MASK) === FWD_MASQ &&
          d.port === flow.sport &&
          d.af === flow.af &&
          d.addr[0] === flow.saddr[0] &&
          (flow.af !== AF_INET6 ||
            (d.addr[1] === flow.saddr[1] &&
              d.addr[2] === flow.saddr[2] &&
              d.addr[3] === flow.saddr[3])) &&
          (best === null || d.rsOrder > best.rsOrder)
        )
          best = d;
      }
    }
    return best;
  }

  // ---- sweeps -----------------------------------------------------------------------------

  /** Asks for an expire_nodest_conn sweep at the next tick (after a destination is deleted). */
  deferNodestSweep(): void {
    this.#nodestPending = true;
  }

  /** Runs deferred work (the nodest sweep). */
  runDeferred(): void {
    if (!this.#nodestPending) return;
    this.#nodestPending = false;
    const t = this.#ipvs.conns;
    for (const h of t.handles()) {
      if (!this.#ipvs.wheel.isArmed(h)) continue; // freed earlier in this sweep
      const d = this.dest(h);
      if (!d || d.flags & DEST_F_AVAILABLE || t.nControl(h) > 0) continue;
      const ct = t.control(h);
      this.del(h);
      if (ct !== NO_CONN && this.#ipvs.wheel.isArmed(ct) && t.nControl(ct) === 0) this.del(ct);
    }
  }

  /** Deletes every connection, children before their controllers (spec §3.6). */
  flushAll(): void {
    const t = this.#ipvs.conns;
    while (t.count > 0) {
      let progressed = false;
      for (const h of t.handles()) {
        if (!this.#ipvs.wheel.isArmed(h) || t.nControl(h) > 0) continue;
        const ct = t.control(h);
        this.del(h);
        progressed = true;
        if (ct !== NO_CONN && this.#ipvs.wheel.isArmed(ct) && t.nControl(ct) === 0) this.del(ct);
      }
      if (!progressed) break;
    }
  }

  /** Whether a TCP/SCTP connection in `state` may be reused by a new opener (conn_reuse_mode, spec §1.6). */
  reusable(h: number): boolean {
    const ipvs = this.#ipvs;
    const t = ipvs.conns;
    const mode = ipvs.sysctl.conn_reuse_mode;
    if (!mode || t.control(h) !== NO_CONN) return false;
    const s = t.state(h);
    if (t.protocol(h) === IPPROTO_TCP) {
      if (s === TCP_S_TIME_WAIT || s === TCP_S_CLOSE) return true;
      return (mode & 2) !== 0 && s === TCP_S_FIN_WAIT && (t.flags(h) & CONN_F_NOOUTPUT) !== 0;
    }
    if (t.protocol(h) === IPPROTO_SCTP) return s === SCTP_S_CLOSED;
    return false;
  }
}
