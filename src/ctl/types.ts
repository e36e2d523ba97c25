/**
 * The control command set: one typed command per IPVS generic-netlink command (spec §9.1), plus
 * sysctls. Every front end (ipvsadm CLI, rules files, REST, keepalived import) translates into
 * these; nothing else mutates state. All values are JSON-safe so commands cross the control socket
 * unchanged.
 */
import type { StatsSnapshot } from '../core/stats.js';
import type { SysctlValue } from '../core/sysctl.js';

/** Address family numbers: 2 (IPv4) or 10 (IPv6). */
export type AfNum = 2 | 10;

/** Identifies a service: (af, protocol, addr, port) with fwmark 0, or (af, fwmark). */
export interface ServiceKey {
  af: AfNum;
  /** 6 TCP, 17 UDP, 132 SCTP; ignored (TCP) for fwmark services. */
  protocol: number;
  /** Address text without brackets ('' for fwmark services). */
  addr: string;
  port: number;
  /** Non-zero for fwmark services. */
  fwmark: number;
}

/** A full service definition, as NEW_SERVICE / SET_SERVICE carry it (spec §9.2). */
export interface ServiceSpec extends ServiceKey {
  /** Scheduler name; 'none' binds none. */
  scheduler: string;
  /** IP_VS_SVC_F_* bits (PERSISTENT, ONEPACKET, SCHED1..3); HASHED is ignored. */
  flags: number;
  /** Persistence timeout, seconds. */
  timeout: number;
  /** IPv4: host-order mask as an unsigned number; IPv6: prefix length. */
  netmask: number;
  /** Persistence engine name, '' for none. */
  pe: string;
  /** ipvs-ts extensions (data-plane options such as `proxy-protocol`: 'v1' | 'v2'). */
  ext?: Record<string, string>;
}

/** Identifies a destination inside a service. */
export interface DestKey {
  /** Destination family; defaults to the service's. */
  af?: AfNum;
  addr: string;
  port: number;
}

/** A full destination definition (spec §9.3). */
export interface DestSpec extends DestKey {
  /** Forwarding method, 0 masq, 1 local, 2 tunnel, 3 route. */
  fwd: number;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  /** 0 ipip, 1 gue, 2 gre. */
  tunType: number;
  tunPort: number;
  /** 0 nocsum, 1 csum, 2 remcsum. */
  tunFlags: number;
}

/**
 * The DestSpec of a destination as listed (DestInfo) or as ipvsadm fills one in: its ten fields,
 * nothing else.
 */
export function destSpecOf(d: Omit<DestSpec, 'af'> & { af?: number }): DestSpec {
  return {
    af: d.af === 10 ? 10 : 2,
    addr: d.addr,
    port: d.port,
    fwd: d.fwd,
    weight: d.weight,
    uThreshold: d.uThreshold,
    lThreshold: d.lThreshold,
    tunType: d.tunType,
    tunPort: d.tunPort,
    tunFlags: d.tunFlags,
  };
}

/** A destination as listed, with its counters. */
export interface DestInfo extends Required<DestSpec> {
  activeConns: number;
  inactConns: number;
  persistConns: number;
  stats: StatsSnapshot;
  /** Failed connection attempts seen by the data plane (ipvs-ts extension). */
  connectFailures: number;
}

/** A service as listed, with its destinations in kernel (newest-first) order. */
export interface ServiceInfo extends ServiceSpec {
  stats: StatsSnapshot;
  numDests: number;
  dests: DestInfo[];
}

/** One connection-table entry as listed by `ipvsadm -L -c`. */
export interface ConnInfo {
  af: AfNum;
  daf: AfNum;
  protocol: number;
  caddr: string;
  cport: number;
  /** For fwmark templates: the fwmark rendered as an IPv4 address. */
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  fwmark: number;
  /** IP_VS_CONN_F_* bits. */
  flags: number;
  state: number;
  /** State name as ipvsadm prints it (ESTABLISHED, UDP, NONE, ASSURED …). */
  stateName: string;
  /** Milliseconds until expiry. */
  expiresMs: number;
  peName: string;
  peData: string;
}

/** Sync daemon settings (spec §9.4). */
export interface DaemonSpec {
  /** 1 master, 2 backup. */
  state: 1 | 2;
  mcastIfn: string;
  syncId: number;
  syncMaxlen?: number;
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
}

/** The three user-settable timeouts, seconds (0 = unchanged on set). */
export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

/** Every command of the control plane. */
export type Command =
  | { cmd: 'newService'; service: ServiceSpec }
  | { cmd: 'setService'; service: ServiceSpec }
  | { cmd: 'delService'; service: ServiceKey }
  | { cmd: 'getService'; service: ServiceKey }
  | { cmd: 'getServices' }
  | { cmd: 'newDest'; service: ServiceKey; dest: DestSpec }
  | { cmd: 'setDest'; service: ServiceKey; dest: DestSpec }
  | { cmd: 'delDest'; service: ServiceKey; dest: DestKey }
  | { cmd: 'getDests'; service: ServiceKey }
  | { cmd: 'flush' }
  | { cmd: 'zero'; service?: ServiceKey }
  | { cmd: 'setConfig'; timeouts: Timeouts }
  | { cmd: 'getConfig' }
  | { cmd: 'getInfo' }
  | { cmd: 'getConns' }
  /** A page of the connection listing: buckets from `from` (0 first), about `max` entries. */
  | { cmd: 'getConnsPage'; from: number; max: number }
  | { cmd: 'newDaemon'; daemon: DaemonSpec }
  | { cmd: 'delDaemon'; state: 1 | 2 }
  | { cmd: 'getDaemons' }
  | { cmd: 'setSysctl'; name: string; value: SysctlValue }
  | { cmd: 'getSysctls' }
  | { cmd: 'setFwmarkRules'; rules: string[] }
  | { cmd: 'getFwmarkRules' };

/** Reply to `getInfo`. */
export interface Info {
  /** 0x010201. */
  version: number;
  /** Connection hash table size (2^conn_tab_bits). */
  connTabSize: number;
}
