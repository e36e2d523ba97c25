/**
 * The `Ipvs` instance: everything the kernel keeps per network namespace — services and
 * destinations, the destination trash, the connection table and its timer wheel, sysctls,
 * timeouts, statistics and the estimator, defence modes and sync-daemon settings. It does no I/O;
 * its clock and random source are injected. Configuration methods validate fully and change nothing
 * when they throw a coded error (spec §1.7). Data planes use the connection methods in
 * `./conn-ops.ts` through this object.
 */
import * as diagnostics from 'node:diagnostics_channel';
import { AF_INET, AF_INET6, type Af, formatIp, parseIp } from './addr.js';
import { ConnTable, type TableAlloc } from './conn.js';
import {
  CONN_F_DEST_MASK,
  CONN_F_FWD_MASK,
  CONN_F_INACTIVE,
  CONN_F_NOOUTPUT,
  DEST_F_OVERLOAD,
  FWD_MASQ,
  FWD_TUNNEL,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPVS_VERSION,
  MAX_PERSIST_TIMEOUT_SEC,
  MAX_TIMEOUT_SEC,
  PE_NAME_MAX,
  SCHED_NAME_MAX,
  SVC_F_HASHED,
  TUN_TYPE_GUE,
} from './constants.js';
import { bindScheduler, linkDest, unlinkDest, updatedDest } from './dests.js';
import {
  AfNotSupportedError,
  DaemonRunningError,
  DestExistsError,
  InvalidError,
  NoDaemonError,
  NoPeError,
  NoSchedulerError,
  NoSuchDestError,
  NoSuchServiceError,
  RangeError_,
  ServiceExistsError,
  ServiceNotDefinedError,
  validateInt,
} from './errors.js';
import { Dest, type SchedEnv, Service } from './service.js';
import { EST_TICK_MS, Estimator, Stats } from './stats.js';
import { ServiceTable } from './svc-table.js';
import {
  defaultSysctls,
  hostCpus,
  type SysctlValue,
  type Sysctls,
  validateSysctl,
} from './sysctl.js';
import { TimerWheel } from './timer-wheel.js';
import { DestTrash, TRASH_SWEEP_MS } from './trash.js';
import { getScheduler } from '../sched/registry.js';
import '../sched/index.js';
import { protoOps } from '../proto/index.js';
import type {
  ConnInfo,
  DaemonSpec,
  DestKey,
  DestSpec,
  Info,
  ServiceInfo,
  ServiceKey,
  ServiceSpec,
  Timeouts,
} from '../ctl/types.js';
import { ConnOps } from './conn-ops.js';
import { connInfos, serviceInfo } from './snapshot.js';

/** Options for a new `Ipvs`. */

/** A periodic job this many periods late runs once instead of catching up (`tick`). */
const LATE_PERIODS = 8;
export interface IpvsOptions {
  /** Monotonic clock in milliseconds (default: performance.now based). */
  now?: () => number;
  /** Uniform random unsigned 32-bit integers (default: Math.random based). */
  randomU32?: () => number;
  /** log2 of the connection hash size reported as `size=` (default 12 → 4096, range 8..20). */
  connTabBits?: number;
  /** Capacity of the connection table (default 1,048,576 entries). */
  maxConns?: number;
  /**
   * Available memory in 4 KiB pages, for the automatic defence modes, read once a second (default:
   * plenty; the daemon passes the host's free and buffer memory, `hostAvailMemPages`).
   */
  availMemPages?: () => number;
  /** Log sink (default: stderr). */
  log?: (msg: string) => void;
  /** Timer wheel resolution in ms (default 10). */
  tickMs?: number;
  /** Backing memory of the connection table (default: plain ArrayBuffers). */
  tableAlloc?: TableAlloc;
  /** CPUs of the machine, for `est_cpulist` (default: this host's count). */
  cpus?: number;
}

/** What the incoming path calls when a sync master runs (spec §8.4). */
export interface SyncHook {
  /** A packet of connection `h` was counted; `pkts` is its incremented `in_pkts`. */
  syncConn(h: number, pkts: number): void;
}

/** One direction's TCP sequence adjustment (ip_vs_seq: init_seq, delta, previous_delta). */
export interface SeqAdjust {
  initSeq: number;
  delta: number;
  previousDelta: number;
}

/**
 * What a data plane keeps per connection beside the table that sync carries (spec §8.3): the FTP
 * helper's sequence adjustments (IN_SEQ / OUT_SEQ).
 */
export interface SyncConnData {
  /** The adjustments of `h` (client → server, then server → client), null when none are kept. */
  seq(h: number): { in: SeqAdjust; out: SeqAdjust } | null;
  /**
   * A backup made or updated `h` from a record (ip_vs_proc_conn): the data plane binds its
   * helper to it, as ip_vs_conn_new binds an application, and takes the record's `seq`.
   */
  synced(h: number, seq: { in: SeqAdjust; out: SeqAdjust } | null): void;
}

/** Known persistence engines (spec §7). */
const PERSISTENCE_ENGINES = new Set(['sip']);

const chConfig = diagnostics.channel('ipvs:config');

interface Job {
  next: number;
  ms: number;
  fn: () => void;
  live: boolean;
}

/** Per-namespace IPVS state and configuration operations. */
export class Ipvs implements SchedEnv {
  readonly sysctl: Sysctls;
  /** CPUs of the machine (`est_cpulist` names CPUs below this). */
  readonly cpus: number;
  /** Global statistics (all services). */
  readonly total = new Stats();
  /** The rate estimator's schedule (spec §6.2). */
  readonly estimator = new Estimator();
  readonly conns: ConnTable;
  readonly wheel: TimerWheel;
  readonly services: ServiceTable;
  readonly trash = new DestTrash();
  /** Destination by id (connections refer to destinations by id). */
  readonly destById: (Dest | null)[] = [];
  readonly connTabBits: number;
  /** Connection-level operations used by data planes. */
  readonly ops: ConnOps;
  /** Timeouts in ms per protocol, indexed by state. */
  readonly timeouts: Map<number, Uint32Array> = new Map();
  /** The TCP, UDP and SCTP rows of `timeouts` (the same arrays), for the per-packet path. */
  readonly tcpTimeouts: Uint32Array;
  readonly udpTimeouts: Uint32Array;
  readonly sctpTimeouts: Uint32Array;
  /**
   * fwmark classifier rules in their text form (`proto tcp dport 80 mark 1`): the firewall marks
   * the kernel's fwmark services would see. Kept here so every plane persists them; the packet
   * data plane applies them.
   */
  fwmarkRules: string[] = [];
  /** Running sync daemons (their settings; `src/sync/` runs their sockets). */
  readonly daemons: { master: DaemonSpec | null; backup: DaemonSpec | null } = {
    master: null,
    backup: null,
  };
  /**
   * The running sync master's entry point (ip_vs_sync_conn), or null when no master runs: the
   * incoming path calls it after counting a packet, guarded by this one null check.
   */
  syncMaster: SyncHook | null = null;
  /** The data plane's per-connection data for sync (the packet engine's FTP helper), or null. */
  syncData: SyncConnData | null = null;
  readonly #now: () => number;
  readonly #rand: () => number;
  readonly #log: (msg: string) => void;
  readonly availMemPages: () => number;
  readonly #jobs: Job[] = [];
  readonly #freeDestIds: number[] = [];
  /** Sequence of the real-server table's insertions (`Dest.rsOrder`). */
  #rsOrder = 0;
  readonly #warned = new Map<string, number>();
  #trashStop: (() => void) | null = null;
  #estStop: (() => void) | null = null;
  #defStop: (() => void) | null = null;
  #enabled = false;
  #holding = false;
  #held = 0;

  constructor(opts: IpvsOptions = {}) {
    const t0 = Date.now();
    this.#now = opts.now ?? (() => performance.now() + t0);
    this.#rand = opts.randomU32 ?? (() => (Math.random() * 0x100000000) >>> 0);
    this.#log = opts.log ?? ((m) => process.stderr.write(`ipvs: ${m}\n`));
    this.availMemPages = opts.availMemPages ?? (() => Number.MAX_SAFE_INTEGER);
    this.cpus = opts.cpus ?? hostCpus();
    validateInt(this.cpus, 'cpus', 1, 8192);
    this.sysctl = defaultSysctls(this.cpus);
    const bits = opts.connTabBits ?? 12;
    validateInt(bits, 'connTabBits', 8, 20);
    this.connTabBits = bits;
    const cap = opts.maxConns ?? 1 << 20;
    validateInt(cap, 'maxConns', 1, 1 << 26);
    this.conns = new ConnTable(cap, this.#rand(), opts.tableAlloc);
    this.services = new ServiceTable(this.#rand());
    this.ops = new ConnOps(this);
    this.wheel = new TimerWheel(
      this.conns.wheelStorage(),
      (h) => this.ops.expire(h),
      this.#now(),
      opts.tickMs ?? 10,
    );
    for (const p of [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP]) {
      const po = protoOps(p)!;
      this.timeouts.set(
        p,
        Uint32Array.from(po.defaultTimeouts, (s) => s * 1000),
      );
    }
    this.tcpTimeouts = this.timeouts.get(IPPROTO_TCP)!;
    this.udpTimeouts = this.timeouts.get(IPPROTO_UDP)!;
    this.sctpTimeouts = this.timeouts.get(IPPROTO_SCTP)!;
    this.#startDefense();
  }

  /** defense_work is queued when the namespace is set up, with or without services (spec §3.5). */
  #startDefense(): void {
    this.#defStop ??= this.every(1000, () => this.ops.defense.tick());
  }

  // ---- SchedEnv ---------------------------------------------------------------------------

  now(): number {
    return this.#holding ? this.#held : this.#now();
  }

  /**
   * Reads the clock once for a batch of packets: until `releaseClock()`, `now()` returns this
   * reading, as the kernel's jiffies stand still while a softirq handles its packets. A data
   * plane calls it around each received batch; reading the clock per packet (twice: the
   * neighbour check and the connection's re-armed timer) was 5 % of the packet daemon's CPU.
   */
  holdClock(): number {
    this.#held = this.#now();
    this.#holding = true;
    return this.#held;
  }

  /** Ends `holdClock()`: `now()` reads the clock again. */
  releaseClock(): void {
    this.#holding = false;
  }

  randomU32(): number {
    return this.#rand() >>> 0;
  }

  every(ms: number, fn: () => void): () => void {
    const job: Job = { next: this.#now() + ms, ms, fn, live: true };
    this.#jobs.push(job);
    return () => {
      job.live = false;
      const i = this.#jobs.indexOf(job);
      if (i >= 0) this.#jobs.splice(i, 1);
    };
  }

  /** Logs `msg` at most once per second per `key`. */
  warn(key: string, msg: string): void {
    const now = this.#now();
    const last = this.#warned.get(key);
    if (last !== undefined && now - last < 1000) return;
    this.#warned.set(key, now);
    this.#log(msg);
  }

  /** Runs due timers: connection expiries, periodic jobs (estimator, defence, sweeps). */
  tick(): void {
    const now = this.#now();
    this.wheel.advance(now);
    for (let i = 0; i < this.#jobs.length; i++) {
      const j = this.#jobs[i]!;
      while (j.live && j.next <= now) {
        // far behind (a stalled process, a capture's jump in time): the missed runs are
        // dropped and the job runs once, as the estimator kthread resets a timer more than 8
        // ticks late and the defence work re-arms from now
        if (now - j.next >= LATE_PERIODS * j.ms) {
          j.next = now + j.ms;
          j.fn();
          break;
        }
        j.next += j.ms;
        j.fn();
      }
    }
    this.ops.runDeferred();
  }

  /** Stops every periodic job. */
  close(): void {
    this.#estStop?.();
    this.#defStop?.();
    this.#trashStop?.();
    this.#jobs.length = 0;
    this.#enabled = false;
    this.#trashStop = this.#estStop = this.#defStop = null;
  }

  // ---- helpers ----------------------------------------------------------------------------

  /**
   * A standby: `backup_only` is set while a backup sync daemon runs, so the director role is off
   * (ip_vs_in / ip_vs_out pass everything; spec §8.1).
   */
  get standby(): boolean {
    return this.sysctl.backup_only !== 0 && this.daemons.backup !== null;
  }

  /** IPVS processing is enabled once a service exists (spec §1.1). */
  get enabled(): boolean {
    return this.#enabled;
  }

  #enable(): void {
    if (this.#enabled) return;
    this.#enabled = true;
    this.estimator.start(this.total);
    this.#estStop = this.every(EST_TICK_MS, () =>
      // run_estimation = 0 or an empty est_cpulist stops the estimator threads
      this.estimator.tick(this.sysctl.run_estimation !== 0 && this.sysctl.est_cpulist !== ''),
    );
    this.#startDefense(); // again after close()
  }

  #parseAddr(af: number, text: string, what: string): Uint32Array {
    const a = parseIp(text);
    if (!a) throw new InvalidError(`${what}: invalid address '${text}'`);
    if (a.af !== af) throw new InvalidError(`${what}: address '${text}' is not of family ${af}`);
    return a.words;
  }

  #checkAf(af: number): Af {
    if (af !== AF_INET && af !== AF_INET6)
      throw new AfNotSupportedError(`unsupported address family ${af}`);
    return af;
  }

  /** Finds a service by its key; null when missing. */
  findService(key: ServiceKey): Service | null {
    const af = this.#checkAf(key.af);
    if (key.fwmark) return this.services.findFwmark(af, key.fwmark >>> 0);
    const a = parseIp(key.addr);
    if (!a || a.af !== af) return null;
    return this.services.findExact(af, key.protocol, a.words, key.port);
  }

  #needService(key: ServiceKey): Service {
    const s = this.findService(key);
    if (!s) throw new NoSuchServiceError(`no such service: ${keyText(key)}`);
    return s;
  }

  /**
   * The checks the kernel makes while parsing a service request, before it looks the service up:
   * family, identity fields, the scheduler name's length, and the flags, timeout and IPv4 netmask
   * as integers in range.
   */
  #validateServiceKey(spec: ServiceSpec): { af: Af; addr: Uint32Array | null } {
    const af = this.#checkAf(spec.af);
    let addr: Uint32Array | null = null;
    if (spec.fwmark) validateInt(spec.fwmark, 'fwmark', 1, 0xffffffff);
    else {
      if (![IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP].includes(spec.protocol)) {
        throw new InvalidError(`unsupported protocol ${spec.protocol}`);
      }
      validateInt(spec.port, 'port', 0, 65535);
      addr = this.#parseAddr(af, spec.addr, 'service');
    }
    if (!spec.scheduler || spec.scheduler.length > SCHED_NAME_MAX) {
      throw new InvalidError(
        `scheduler name '${spec.scheduler}' is empty or longer than ${SCHED_NAME_MAX}`,
      );
    }
    validateInt(spec.flags, 'flags', 0, 0xffffffff);
    validateInt(spec.timeout, 'timeout', 0, MAX_PERSIST_TIMEOUT_SEC);
    if (af !== AF_INET6) validateInt(spec.netmask, 'netmask', 0, 0xffffffff);
    return { af, addr };
  }

  /**
   * The checks of ip_vs_add_service / ip_vs_edit_service, made once the service was found (edit)
   * or found missing (add): scheduler, persistence engine, IPv6 prefix length.
   */
  #validateServiceSettings(af: Af, spec: ServiceSpec): void {
    if (spec.scheduler !== 'none' && !getScheduler(spec.scheduler)) {
      throw new NoSchedulerError(`scheduler '${spec.scheduler}' not found`);
    }
    if (spec.pe) {
      if (spec.pe.length > PE_NAME_MAX || !PERSISTENCE_ENGINES.has(spec.pe)) {
        throw new NoPeError(`persistence engine '${spec.pe}' not found`);
      }
    }
    if (af === AF_INET6) {
      if (!Number.isInteger(spec.netmask) || spec.netmask < 1 || spec.netmask > 128) {
        throw new InvalidError(`IPv6 persistence prefix must be 1..128, got ${spec.netmask}`);
      }
    }
  }

  #applyServiceSettings(svc: Service, spec: ServiceSpec): void {
    svc.flags = (spec.flags & ~SVC_F_HASHED) >>> 0;
    svc.timeout = spec.timeout;
    svc.netmask = spec.netmask >>> 0;
    svc.peName = spec.pe ?? '';
    // an option set to '' or 'none' is not kept: listings and -S show only the ones in force
    svc.ext = {};
    for (const [k, v] of Object.entries(spec.ext ?? {}))
      if (v !== '' && v !== 'none') svc.ext[k] = v;
  }

  // ---- services ---------------------------------------------------------------------------

  /** NEW_SERVICE (spec §1.7): EEXIST, ENOENT scheduler/PE, EINVAL. */
  addService(spec: ServiceSpec): Service {
    // as ip_vs_genl_set_cmd: an existing service is EEXIST before the scheduler is looked at
    const { af, addr } = this.#validateServiceKey(spec);
    if (this.findService(spec))
      throw new ServiceExistsError(`service ${keyText(spec)} already exists`);
    this.#validateServiceSettings(af, spec);
    const svc = new Service(this, af, spec.protocol, addr, spec.port, spec.fwmark);
    this.#applyServiceSettings(svc, spec);
    bindScheduler(svc, spec.scheduler === 'none' ? null : getScheduler(spec.scheduler)!);
    this.services.add(svc);
    this.#enable();
    this.estimator.start(svc.stats);
    chConfig.publish({ op: 'addService', service: svc.toString() });
    return svc;
  }

  /** SET_SERVICE: replaces flags, timeout, netmask, scheduler and PE wholesale. */
  editService(spec: ServiceSpec): Service {
    // a missing service is ESRCH before the scheduler is looked at (ip_vs_genl_set_cmd)
    const { af } = this.#validateServiceKey(spec);
    const svc = this.#needService(spec);
    this.#validateServiceSettings(af, spec);
    if (spec.scheduler !== svc.schedName) {
      // the new scheduler's initService builds its state from the current destinations; as in
      // ip_vs_edit_service, a failed bind leaves no scheduler and the old flags, timeout, netmask
      // and PE (they are set only after it)
      bindScheduler(svc, spec.scheduler === 'none' ? null : getScheduler(spec.scheduler)!);
    }
    this.#applyServiceSettings(svc, spec);
    chConfig.publish({ op: 'editService', service: svc.toString() });
    return svc;
  }

  /** DEL_SERVICE: destinations go to the trash; connections are left to expire. */
  delService(key: ServiceKey): void {
    const svc = this.#needService(key);
    this.#removeService(svc);
    chConfig.publish({ op: 'delService', service: svc.toString() });
  }

  #removeService(svc: Service): void {
    while (svc.dests.length) this.#trashDest(svc, svc.dests[0]!);
    bindScheduler(svc, null);
    this.services.remove(svc);
    this.estimator.stop(svc.stats);
  }

  /** FLUSH: removes every service. */
  flush(): void {
    for (const s of this.services.list()) this.#removeService(s);
    chConfig.publish({ op: 'flush' });
  }

  // ---- destinations -----------------------------------------------------------------------

  #validateDest(svc: Service, d: DestSpec): { daf: Af; addr: Uint32Array } {
    const daf = this.#checkAf(d.af ?? svc.af);
    const addr = this.#parseAddr(daf, d.addr, 'destination');
    validateInt(d.port, 'port', 0, 65535);
    validateInt(d.fwd, 'forwarding method', 0, 7);
    // ip_vs_genl_set_cmd refuses a destination of another family (EINVAL) before ip_vs_add_dest /
    // ip_vs_edit_dest check the weight and thresholds (ERANGE)
    if (daf !== svc.af) {
      if (this.daemons.master || this.daemons.backup) {
        throw new InvalidError('mixed-family destinations cannot be used while a sync daemon runs');
      }
      if ((d.fwd & CONN_F_FWD_MASK) !== FWD_TUNNEL) {
        throw new InvalidError('a destination of another address family needs tunnel forwarding');
      }
    }
    if (!Number.isInteger(d.weight)) throw new InvalidError('weight must be an integer');
    if (d.weight < 0) throw new RangeError_(`weight ${d.weight} is negative`);
    validateInt(d.weight, 'weight', 0, 0x7fffffff);
    validateInt(d.uThreshold, 'upper threshold', 0, 0xffffffff);
    validateInt(d.lThreshold, 'lower threshold', 0, 0xffffffff);
    if (d.lThreshold > d.uThreshold) {
      throw new RangeError_(
        `lower threshold ${d.lThreshold} is above upper threshold ${d.uThreshold}`,
      );
    }
    validateInt(d.tunType, 'tunnel type', 0, 2);
    validateInt(d.tunPort, 'tunnel port', 0, 65535);
    validateInt(d.tunFlags, 'tunnel flags', 0, 2);
    // ip_vs_add_dest / ip_vs_edit_dest test this whatever the forwarding method
    if (d.tunType === TUN_TYPE_GUE && d.tunPort === 0) {
      throw new InvalidError('GUE tunnels need a non-zero port');
    }
    return { daf, addr };
  }

  #findDest(svc: Service, daf: number, addr: ArrayLike<number>, port: number): Dest | null {
    for (const d of svc.dests) {
      if (d.af === daf && d.port === port && sameAddr(daf, d.addr, addr)) return d;
    }
    return null;
  }

  #updateDestSettings(svc: Service, dest: Dest, d: DestSpec, add: boolean): void {
    // __ip_vs_update_dest re-hashes the real server (to the head of its bucket) when it is
    // new or back from the trash, or when its method or tunnel changes
    if (
      add ||
      (d.fwd & CONN_F_FWD_MASK) !== (dest.connFlags & CONN_F_FWD_MASK) ||
      d.tunType !== dest.tunType ||
      d.tunPort !== dest.tunPort
    )
      dest.rsOrder = ++this.#rsOrder;
    let flags = (d.fwd & CONN_F_DEST_MASK) | CONN_F_INACTIVE;
    if ((flags & CONN_F_FWD_MASK) !== FWD_MASQ) flags |= CONN_F_NOOUTPUT;
    dest.connFlags = flags >>> 0;
    dest.weight = d.weight;
    if (add || d.weight !== 0) dest.lastWeight = d.weight;
    if (d.uThreshold === 0 || d.uThreshold > dest.uThreshold) dest.flags &= ~DEST_F_OVERLOAD;
    dest.uThreshold = d.uThreshold;
    dest.lThreshold = d.lThreshold;
    dest.tunType = d.tunType;
    dest.tunPort = d.tunPort;
    dest.tunFlags = d.tunFlags;
    void svc;
  }

  /** NEW_DEST: ESRCH service, EEXIST, ERANGE, EINVAL; resurrects a trashed twin with its counters. */
  addDest(key: ServiceKey, d: DestSpec): Dest {
    const svc = this.findService(key);
    if (!svc) throw new ServiceNotDefinedError(`service ${keyText(key)} is not defined`);
    const { daf, addr } = this.#validateDest(svc, d);
    if (this.#findDest(svc, daf, addr, d.port)) {
      throw new DestExistsError(`destination ${d.addr}:${d.port} already exists`);
    }
    // ip_vs_new_dest checks the address; an edit does not (a missing one is ENOENT)
    if (!isUnicast(daf, addr))
      throw new InvalidError(`destination ${d.addr} is not a unicast address`);
    let dest = this.trash.take(svc, daf, addr, d.port);
    const fromTrash = dest !== null;
    // __ip_vs_update_dest: a destination of a deleted-and-re-created service keeps its object
    // and connections but starts its statistics again
    if (dest && dest.svc !== svc) dest.stats.zero();
    if (!dest) {
      dest = new Dest(daf, addr, d.port);
      dest.id = this.#freeDestIds.pop() ?? this.destById.length;
      this.destById[dest.id] = dest;
    }
    this.#updateDestSettings(svc, dest, d, true);
    try {
      linkDest(svc, dest);
    } catch (e) {
      // a scheduler refused the destination: undo (a resurrected one goes back to the trash)
      unlinkDest(svc, dest);
      if (fromTrash) this.trash.put(dest);
      else this.#freeDest(dest);
      throw e;
    }
    this.estimator.start(dest.stats);
    chConfig.publish({ op: 'addDest', service: svc.toString(), dest: dest.toString() });
    return dest;
  }

  /** SET_DEST: replaces every setting; clears OVERLOAD when the upper threshold is raised or removed. */
  editDest(key: ServiceKey, d: DestSpec): Dest {
    const svc = this.findService(key);
    if (!svc) throw new ServiceNotDefinedError(`service ${keyText(key)} is not defined`);
    const { daf, addr } = this.#validateDest(svc, d);
    const dest = this.#findDest(svc, daf, addr, d.port);
    if (!dest) throw new NoSuchDestError(`no destination ${d.addr}:${d.port}`);
    this.#updateDestSettings(svc, dest, d, false);
    updatedDest(svc, dest);
    chConfig.publish({ op: 'editDest', service: svc.toString(), dest: dest.toString() });
    return dest;
  }

  /** DEL_DEST: unlinks to the trash; with expire_nodest_conn its connections are swept next tick. */
  delDest(key: ServiceKey, d: DestKey): void {
    const svc = this.findService(key);
    if (!svc) throw new ServiceNotDefinedError(`service ${keyText(key)} is not defined`);
    const daf = this.#checkAf(d.af ?? svc.af);
    const a = parseIp(d.addr);
    const dest = a && a.af === daf ? this.#findDest(svc, daf, a.words, d.port) : null;
    if (!dest) throw new NoSuchDestError(`no destination ${d.addr}:${d.port}`);
    this.#trashDest(svc, dest);
    chConfig.publish({ op: 'delDest', service: svc.toString(), dest: dest.toString() });
  }

  #trashDest(svc: Service, dest: Dest): void {
    unlinkDest(svc, dest);
    this.estimator.stop(dest.stats);
    // __ip_vs_del_dest: the first entry of an empty trash (re)arms the sweep 60 s from now
    const wasEmpty = this.trash.size === 0;
    this.trash.put(dest);
    if (wasEmpty) {
      this.#trashStop?.();
      this.#trashStop = this.every(TRASH_SWEEP_MS, () => {
        for (const f of this.trash.sweep(this.#now())) this.#freeDest(f);
        if (this.trash.size === 0) {
          this.#trashStop?.();
          this.#trashStop = null;
        }
      });
    }
    if (this.sysctl.expire_nodest_conn) this.ops.deferNodestSweep();
  }

  #freeDest(d: Dest): void {
    if (d.id >= 0 && this.destById[d.id] === d) {
      this.destById[d.id] = null;
      this.#freeDestIds.push(d.id);
    }
  }

  // ---- counters, timeouts, sysctls, daemons, info -----------------------------------------

  /** ZERO: one service and its destinations, or everything including the totals. */
  zero(key?: ServiceKey): void {
    if (key) {
      const svc = this.#needService(key);
      svc.stats.zero();
      for (const d of svc.dests) d.stats.zero();
      return;
    }
    for (const s of this.services.list()) {
      s.stats.zero();
      for (const d of s.dests) d.stats.zero();
    }
    this.total.zero();
  }

  /** SET_CONFIG: tcp → ESTABLISHED, tcpfin → FIN_WAIT, udp → NORMAL; 0 leaves a value unchanged. */
  setTimeouts(t: Timeouts): void {
    for (const [k, v] of Object.entries(t)) validateInt(v, `${k} timeout`, 0, MAX_TIMEOUT_SEC);
    const tcp = this.timeouts.get(IPPROTO_TCP)!;
    if (t.tcp) tcp[1] = t.tcp * 1000;
    if (t.tcpfin) tcp[4] = t.tcpfin * 1000;
    if (t.udp) this.timeouts.get(IPPROTO_UDP)![0] = t.udp * 1000;
  }

  /** GET_CONFIG. */
  getTimeouts(): Timeouts {
    const tcp = this.timeouts.get(IPPROTO_TCP)!;
    return {
      tcp: Math.floor(tcp[1]! / 1000),
      tcpfin: Math.floor(tcp[4]! / 1000),
      udp: Math.floor(this.timeouts.get(IPPROTO_UDP)![0]! / 1000),
    };
  }

  /** Writes a sysctl after validating it (spec §11). */
  setSysctl(name: string, value: SysctlValue): void {
    const v = validateSysctl(name, value, this.cpus);
    const table = this.sysctl as unknown as Record<string, unknown>;
    const changed = table[name] !== v;
    table[name] = v;
    // proc_do_defense_mode: a changed mode updates the defence level at once; drop_entry's
    // sweep itself waits for the 1 s timer
    if (changed && (name === 'drop_entry' || name === 'drop_packet' || name === 'secure_tcp'))
      this.ops.defense.updateLevel();
    // with a backup running, backup_only decides whether this is a director at all
    if (changed && name === 'backup_only') chConfig.publish({ op: 'setSysctl', name });
  }

  /** Every sysctl's value. */
  getSysctls(): Sysctls {
    return { ...this.sysctl, sync_threshold: [...this.sysctl.sync_threshold] };
  }

  /** GET_INFO. */
  info(): Info {
    return { version: IPVS_VERSION, connTabSize: 1 << this.connTabBits };
  }

  /** NEW_DAEMON: records the role's settings; `src/sync/` opens its sockets first. */
  startDaemon(d: DaemonSpec): void {
    const eff = this.checkDaemon(d);
    this.daemons[eff.state === 1 ? 'master' : 'backup'] = eff;
    chConfig.publish({ op: 'startDaemon', state: eff.state });
  }

  /**
   * Validates a NEW_DAEMON without applying it: EEXIST when the role runs, EINVAL on bad settings;
   * returns the effective settings (defaults filled in, sync_maxlen clamped).
   */
  checkDaemon(d: DaemonSpec): DaemonSpec {
    if (d.state !== 1 && d.state !== 2)
      throw new InvalidError('daemon state must be 1 (master) or 2 (backup)');
    const role = d.state === 1 ? 'master' : 'backup';
    if (!d.mcastIfn || d.mcastIfn.length > 15)
      throw new InvalidError('interface name must be 1..15 characters');
    validateInt(d.syncId, 'syncid', 0, 255);
    const group = d.mcastGroup ?? '224.0.0.81';
    const g = parseIp(group);
    if (!g || !isMulticast(g.af, g.words))
      throw new InvalidError(`${group} is not a multicast group`);
    // as start_sync_thread: a port, TTL or sync_maxlen of 0 means the default
    const port = d.mcastPort || 8848;
    validateInt(port, 'mcast port', 1, 65535);
    const ttl = d.mcastTtl || 1;
    validateInt(ttl, 'mcast ttl', 1, 255);
    const hdr = g.af === AF_INET6 ? 48 : 28;
    let maxlen = 1500 - hdr;
    if (d.syncMaxlen) {
      validateInt(d.syncMaxlen, 'sync maxlen', 1, 65535);
      maxlen = Math.max(d.state === 1 ? 1 : 1024, Math.min(d.syncMaxlen, 65535 - hdr));
    }
    for (const s of this.services.list()) {
      for (const x of s.dests) {
        if (x.af !== s.af)
          throw new InvalidError('mixed-family destinations exist; sync cannot start');
      }
    }
    // last, as start_sync_thread checks it after the settings and the interface
    if (this.daemons[role]) throw new DaemonRunningError(`${role} sync daemon is already running`);
    return {
      state: d.state,
      mcastIfn: d.mcastIfn,
      syncId: d.syncId,
      syncMaxlen: maxlen,
      mcastGroup: formatIp(g.af, g.words),
      mcastPort: port,
      mcastTtl: ttl,
    };
  }

  /** DEL_DAEMON: ESRCH when that role is not running. */
  stopDaemon(state: 1 | 2): void {
    const role = state === 1 ? 'master' : state === 2 ? 'backup' : null;
    if (!role) throw new InvalidError('daemon state must be 1 (master) or 2 (backup)');
    if (!this.daemons[role]) throw new NoDaemonError(`no ${role} sync daemon is running`);
    this.daemons[role] = null;
    chConfig.publish({ op: 'stopDaemon', state });
  }

  /** GET_DAEMON: master first, then backup. */
  listDaemons(): DaemonSpec[] {
    return [this.daemons.master, this.daemons.backup]
      .filter((x): x is DaemonSpec => x !== null)
      .map((x) => ({ ...x }));
  }

  // ---- listings ---------------------------------------------------------------------------

  /** GET_SERVICE dump: every service in kernel order, destinations newest-first. */
  listServices(): ServiceInfo[] {
    return this.services.list().map((s) => serviceInfo(s));
  }

  /** GET_SERVICE do: one service. */
  getService(key: ServiceKey): ServiceInfo {
    return serviceInfo(this.#needService(key));
  }

  /** The connection table, as `ipvsadm -L -c` lists it (templates included). */
  listConns(): ConnInfo[] {
    return connInfos(this);
  }
}

/** `TCP 10.0.0.1:80` / `FWM 5` for messages. */
function keyText(k: ServiceKey): string {
  if (k.fwmark) return `FWM ${k.fwmark}`;
  const p = k.protocol === IPPROTO_TCP ? 'TCP' : k.protocol === IPPROTO_UDP ? 'UDP' : 'SCTP';
  return `${p} ${k.af === AF_INET6 ? `[${k.addr}]` : k.addr}:${k.port}`;
}

function sameAddr(af: number, a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  return a[0] === b[0] && (af !== AF_INET6 || (a[1] === b[1] && a[2] === b[2] && a[3] === b[3]));
}

/** Unicast test of spec §1.2: IPv4 not 0/8, not multicast, not limited broadcast; IPv6 unicast (::1 included), not link-local. */
function isUnicast(af: number, w: ArrayLike<number>): boolean {
  if (af === AF_INET) {
    const a = w[0]! >>> 0;
    return a >>> 24 !== 0 && a >>> 28 !== 0xe && a !== 0xffffffff;
  }
  const w0 = w[0]! >>> 0;
  // :: is not unicast; ::1 is (ipv6_addr_type: LOOPBACK | UNICAST), so a [::1] real server is valid
  if (w0 === 0 && w[1] === 0 && w[2] === 0 && w[3]! >>> 0 === 0) return false;
  // ::ffff:a.b.c.d is IPV6_ADDR_MAPPED without UNICAST (::a.b.c.d, COMPATv4, is unicast)
  if (w0 === 0 && w[1] === 0 && w[2]! >>> 0 === 0xffff) return false;
  if (w0 >>> 24 === 0xff) return false;
  if (w0 >>> 22 === 0x3fa) return false; // fe80::/10
  return true;
}

function isMulticast(af: number, w: ArrayLike<number>): boolean {
  return af === AF_INET ? w[0]! >>> 28 === 0xe : w[0]! >>> 24 === 0xff;
}
