/**
 * Virtual services and their destinations (real servers), the objects a scheduler sees
 * (spec §1.1, §1.2). Destination lists are newest-first, as in the kernel: `svc.dests[0]` is the
 * most recently added destination, and `dest.index` is its position in that list.
 */
import { AF_INET, type Af, formatIp } from './addr.js';
import {
  CONN_F_INACTIVE,
  DEST_F_AVAILABLE,
  DEST_F_OVERLOAD,
  IPPROTO_TCP,
  protoName,
} from './constants.js';
import { Stats } from './stats.js';
import type { Sysctls } from './sysctl.js';

/** What a scheduler may use from its surroundings: the clock, randomness, sysctls and timers. */
export interface SchedEnv {
  /** Monotonic time in milliseconds. */
  now(): number;
  /** A uniformly random unsigned 32-bit integer. */
  randomU32(): number;
  /** The namespace's sysctls. */
  readonly sysctl: Sysctls;
  /** Runs `fn` every `ms` milliseconds of the injected clock until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
  /** Logs a rate-limited warning. */
  warn(key: string, msg: string): void;
}

/** A scheduler: an ops object registered by the name `ipvsadm -s` uses (spec §2.1). */
export interface SchedulerOps {
  readonly name: string;
  /** Allocates per-service state in `svc.schedData`. */
  initService?(svc: Service): void;
  /** Frees per-service state. */
  doneService?(svc: Service): void;
  /** A destination was inserted at the head of `svc.dests`. */
  addDest?(svc: Service, dest: Dest): void;
  /** A destination was unlinked; `dest.index` still holds its former position. */
  delDest?(svc: Service, dest: Dest): void;
  /** A destination's settings (weight, thresholds) were edited. */
  updDest?(svc: Service, dest: Dest): void;
  /** Chooses a destination for a new connection, or null when none is available. Allocates nothing. */
  schedule(svc: Service, flow: import('./flow.js').Flow): Dest | null;
}

/** A real server inside one service. */
export class Dest {
  /** Integer handle used by the connection table. */
  id = -1;
  af: Af;
  /** Address words, host order (IPv4 in word 0). */
  readonly addr = new Uint32Array(4);
  port: number;
  /** Forwarding method and the flags copied into each new connection (spec §1.2). */
  connFlags = CONN_F_INACTIVE;
  weight = 1;
  /** Most recent non-zero weight (used by mh). */
  lastWeight = 1;
  uThreshold = 0;
  lThreshold = 0;
  activeConns = 0;
  inactConns = 0;
  persistConns = 0;
  /** AVAILABLE / OVERLOAD bits. */
  flags = 0;
  tunType = 0;
  tunPort = 0;
  tunFlags = 0;
  readonly stats = new Stats();
  /** The service this destination is (or was, while in the trash) linked to. */
  svc: Service | null = null;
  /** Position in `svc.dests` (newest-first), or its former position after unlinking. */
  index = -1;
  /** When the trash sweep first found it idle (ms), or -1. */
  idleSince = -1;
  /**
   * When it last entered the real-server table (ip_vs_rs_hash: on add, and on an edit that
   * changes the method or tunnel), as a sequence number: lookups find the most recent first.
   */
  rsOrder = 0;
  /**
   * References that keep it in the trash once deleted: bound connections (templates included)
   * and the lblc / lblcr cache entries that name it.
   */
  refs = 0;
  /** Failed connection attempts seen by a data plane (an ipvs-ts extension). */
  connectFailures = 0;

  constructor(af: Af, addr: ArrayLike<number>, port: number) {
    this.af = af;
    for (let i = 0; i < 4; i++) this.addr[i] = addr[i] ?? 0;
    this.port = port;
  }

  /** True while linked in a service (not deleted). */
  get available(): boolean {
    return (this.flags & DEST_F_AVAILABLE) !== 0;
  }

  /** True while over its upper threshold. */
  get overloaded(): boolean {
    return (this.flags & DEST_F_OVERLOAD) !== 0;
  }

  /** `addr:port` as ipvsadm prints it numerically. */
  toString(): string {
    const a = formatIp(this.af, this.addr);
    return this.af === AF_INET ? `${a}:${this.port}` : `[${a}]:${this.port}`;
  }
}

/** A virtual service: (af, protocol, addr, port) or (af, fwmark). */
export class Service {
  readonly af: Af;
  /** Protocol number; TCP for fwmark services. */
  readonly protocol: number;
  readonly addr = new Uint32Array(4);
  readonly port: number;
  /** Non-zero for fwmark services. */
  readonly fwmark: number;
  flags = 0;
  /** Persistence timeout in seconds. */
  timeout = 0;
  /** IPv4: host-order dotted mask; IPv6: prefix length. */
  netmask: number;
  schedName = 'none';
  sched: SchedulerOps | null = null;
  /** Per-service scheduler state, owned by the scheduler. */
  schedData: unknown = null;
  /** Persistence engine name, '' when none. */
  peName = '';
  /** Destinations, newest first. */
  readonly dests: Dest[] = [];
  readonly stats = new Stats();
  /** Connections scheduled by this service that are still referenced by a data plane. */
  refs = 0;
  /** The namespace environment (clock, random, sysctls). */
  readonly env: SchedEnv;
  /** Data-plane extension options (e.g. PROXY protocol), opaque to core. */
  ext: Record<string, string> = {};

  constructor(
    env: SchedEnv,
    af: Af,
    protocol: number,
    addr: ArrayLike<number> | null,
    port: number,
    fwmark: number,
  ) {
    this.env = env;
    this.af = af;
    this.protocol = fwmark ? IPPROTO_TCP : protocol;
    if (addr && !fwmark) for (let i = 0; i < 4; i++) this.addr[i] = addr[i] ?? 0;
    this.port = fwmark ? 0 : port;
    this.fwmark = fwmark >>> 0;
    this.netmask = af === AF_INET ? 0xffffffff : 128;
  }

  /** Number of linked destinations. */
  get numDests(): number {
    return this.dests.length;
  }

  /** `TCP 10.0.0.1:80` or `FWM 1`, for logs. */
  toString(): string {
    if (this.fwmark) return `FWM ${this.fwmark}${this.af === AF_INET ? '' : ' IPv6'}`;
    const a = formatIp(this.af, this.addr);
    return `${protoName(this.protocol)} ${this.af === AF_INET ? a : `[${a}]`}:${this.port}`;
  }
}

/** Marks OVERLOAD clear on a destination (helper for core). */
export function clearOverload(d: Dest): void {
  d.flags &= ~DEST_F_OVERLOAD;
}
