/**
 * What the parts of the proxy data plane share: the `Ipvs` instance, the read-buffer pool, the
 * owner of each connection-table entry (so an entry that IPVS expires closes its sockets), the
 * counters of refused and failed connections, and the plane's sizes and timeouts.
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { Ipvs } from '../../core/ipvs.js';
import { Flow } from '../../core/flow.js';
import type { BufferPool } from './buffers.js';

/** Something that owns a connection-table entry: told when IPVS frees the entry. */
export interface EntryOwner {
  /** The entry was freed by IPVS (idle timeout, expire_nodest_conn, flush …): close everything. */
  expired(): void;
}

/** An open proxied TCP connection, as the plane's sweeps and stop() see it. */
export interface OpenTcp {
  /** When the connect to the real server started (ms, ipvs clock), or -1. */
  readonly connectStart: number;
  connectTimedOut(): void;
  abort(): void;
  /** True while the native relay moves its bytes. */
  readonly native: boolean;
  /** Stops forwarding if its destination is gone. */
  checkDest(): void;
  /** Forwards again if it was stopped and its destination is back. */
  resume(): void;
  /**
   * expire_nodest_conn was turned on while it was stopped: its client's next packet ends it (at
   * once when the client has bytes the kernel would have dropped, and so would see again).
   */
  watchClient(): void;
}

/**
 * Counters of what the proxy plane refused or saw fail (ipvs-ts extension). Per-destination
 * connection failures are also counted on the destination (`connectFailures`).
 */
export interface ProxyCounters {
  /** TCP connections accepted on a VIP listener. */
  accepted: number;
  /** Refused: the scheduler found no destination (IPVS would answer ICMP port unreachable). */
  refusedNoDest: number;
  /** Refused: connection table full, drop_packet, or a persistence-engine failure. */
  refusedDropped: number;
  /** Refused: the plane's own limit of open proxied connections (`maxConns`) was reached. */
  refusedLimit: number;
  /** Refused: the client's previous connection is bound to a deleted destination (expire_nodest_conn = 0). */
  refusedNodest: number;
  /** Refused: the plane is stopping. */
  refusedStopping: number;
  /** accept() failures reported by the operating system (EMFILE …). */
  acceptErrors: number;
  /** Connections a real server refused or reset before answering. */
  connectFailures: number;
  /** Connections a real server did not answer within `connectTimeoutMs`. */
  connectTimeouts: number;
  /** Connections closed because IPVS expired their entry while they were open. */
  expiredOpen: number;
  /** UDP datagrams dropped: no destination, table full, flow limit, or deleted destination. */
  udpDropped: number;
  /** Listener failures after the command that created them succeeded (UDP bind races). */
  listenerErrors: number;
  /** Keep-alive connections handed to the native relay (native/splice.c). */
  spliced: number;
  /**
   * Connections and flows refused or ended for want of this host's resources: the open files
   * limit (`fdLimit`, or EMFILE / ENFILE from the system), ENOBUFS, ENOMEM, EADDRNOTAVAIL. Not
   * the real servers' fault: their `connectFailures` do not count these.
   */
  localErrors: number;
}

/** What each counter counts, as `/metrics` describes it (HELP). */
export const COUNTER_HELP: Readonly<Record<keyof ProxyCounters, string>> = {
  accepted: 'TCP connections accepted on a VIP listener.',
  refusedNoDest: 'clients refused: no destination could take them (IPVS: ICMP port unreachable).',
  refusedDropped:
    'clients refused: connection table full, drop_packet, or a persistence engine failure.',
  refusedLimit: 'clients refused: the plane held maxConns connections.',
  refusedNodest:
    "clients refused: their previous connection's destination was deleted (expire_nodest_conn 0).",
  refusedStopping: 'clients refused while the daemon stopped.',
  acceptErrors: 'accept() failures reported by the operating system.',
  connectFailures: 'connections a real server refused or reset before answering.',
  connectTimeouts: 'connections a real server did not answer in time.',
  expiredOpen: 'connections closed because IPVS expired their entry while they were open.',
  udpDropped:
    'UDP datagrams dropped (no destination, table full, flow limit, deleted destination).',
  listenerErrors: 'listener failures after the command that created them succeeded.',
  spliced: 'keep-alive connections handed to the native relay.',
  localErrors:
    "clients refused or sockets not made for want of this host's resources (open files limit, EMFILE, ENOBUFS …).",
};

/** A fresh set of zero counters. */
export function newCounters(): ProxyCounters {
  return {
    accepted: 0,
    refusedNoDest: 0,
    refusedDropped: 0,
    refusedLimit: 0,
    refusedNodest: 0,
    refusedStopping: 0,
    acceptErrors: 0,
    connectFailures: 0,
    connectTimeouts: 0,
    expiredOpen: 0,
    udpDropped: 0,
    listenerErrors: 0,
    spliced: 0,
    localErrors: 0,
  };
}

/** Sizes and timeouts of the proxy plane; every table has a named limit. */
export interface ProxyLimits {
  /** Most open proxied TCP connections; more are refused and counted (default 65,536). */
  maxConns: number;
  /** Most UDP flows (client address:port) across all UDP services (default 65,536). */
  maxUdpFlows: number;
  /** How long a real server may take to accept a connection (default 5,000 ms). */
  connectTimeoutMs: number;
  /** listen() backlog of each VIP listener (default 511). */
  backlog: number;
  /**
   * Open files the process may have (default: the soft RLIMIT_NOFILE, `ulimit -n`). A TCP
   * connection takes two, a UDP flow and a listener one each, and FD_RESERVE stay for the control
   * socket, the state file, the HTTP listener and sync: a new client that would go past it is
   * refused (counted `localErrors`, logged), so the control socket keeps working at the limit.
   */
  fdLimit: number;
}

/** Descriptors kept back from the data plane for the daemon's own use (see `fdLimit`). */
export const FD_RESERVE = 64;

/** The soft open-files limit of this process (/proc/self/limits), or Infinity when unknown. */
export function openFilesLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
  } catch {
    return Infinity;
  }
}

const LOCAL_ERRNOS = ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL'];
const LOCAL_UV = new Set(LOCAL_ERRNOS.map((n) => -(constants.errno as Record<string, number>)[n]!));

/** Whether an error (a libuv code, negative, or a Node error code) is this host's, not the peer's. */
export function isLocalError(err: number | string | undefined): boolean {
  return typeof err === 'number' ? LOCAL_UV.has(err) : LOCAL_ERRNOS.includes(err ?? '');
}

/** State shared by the listeners and connections of one proxy plane. */
export class ProxyContext {
  readonly ipvs: Ipvs;
  readonly pool: BufferPool;
  readonly limits: ProxyLimits;
  readonly counters: ProxyCounters;
  /** Owner of each connection-table handle, or undefined. */
  readonly owners: (EntryOwner | undefined)[] = [];
  /** A reusable Flow for scheduling. */
  readonly flow = new Flow();
  /** Reusable address words. */
  readonly caddr = new Uint32Array(4);
  /** Open proxied TCP connections. */
  liveTcp = 0;
  /** The same connections, for the connect-timeout sweep and stop(). */
  readonly tcpOpen = new Set<OpenTcp>();
  /** Those of them stalled on a deleted destination (resumed when one is added back). */
  readonly tcpStalled = new Set<OpenTcp>();
  /** UDP flows across all services. */
  liveUdp = 0;
  /** Set once stop() has begun: listeners are closed and new clients refused. */
  stopping = false;
  readonly log: (msg: string) => void;
  /** Called whenever an open TCP connection finishes (drain waits on it). */
  onIdle: (() => void) | null = null;
  /** Descriptors the plane holds besides connections and flows (its listeners). */
  fixedFds: () => number = () => 0;

  /**
   * Whether `fds` more descriptors fit under `fdLimit`; when not, counts and logs (once a
   * second) the refusal of `what`.
   */
  fdRoom(fds: number, what: string): boolean {
    const lim = this.limits.fdLimit;
    const used = 2 * this.liveTcp + this.liveUdp + this.fixedFds() + FD_RESERVE;
    if (used + fds <= lim) return true;
    this.counters.localErrors++;
    this.ipvs.warn(
      'proxy-fd-limit',
      `proxy: open files limit ${lim} (ulimit -n) reached: ${this.liveTcp} connections, ${this.liveUdp} UDP flows, ${this.fixedFds()} listeners, ${FD_RESERVE} kept for the daemon; ${what} refused (raise the limit)`,
    );
    return false;
  }

  /** Counts and logs (once a second) a socket this host could not open (see isLocalError). */
  localError(code: string, what: string): void {
    this.counters.localErrors++;
    this.ipvs.warn(
      'proxy-local-error',
      `proxy: ${what}: ${code} (this host's resources, not the real server)`,
    );
  }

  constructor(
    ipvs: Ipvs,
    pool: BufferPool,
    limits: ProxyLimits,
    counters: ProxyCounters,
    log: (msg: string) => void,
  ) {
    this.ipvs = ipvs;
    this.counters = counters;
    this.pool = pool;
    this.limits = limits;
    this.log = log;
  }
}
