/**
 * The kernel's /proc/net/ip_vs* texts (spec §12), rebuilt from the control API's read-outs
 * (`src/ctl/types.ts`): `ip_vs` (services and destinations, hex), `ip_vs_conn` and
 * `ip_vs_conn_sync` (one row per connection or template), `ip_vs_stats` and `ip_vs_stats_percpu`
 * (the totals) and `ip_vs_app` (application helper incarnations). Pure functions; every layout
 * follows the seq_printf format strings of mainline net/netfilter/ipvs/ip_vs_ctl.c
 * (ip_vs_info_seq_show, ip_vs_stats_show, ip_vs_stats_percpu_show), ip_vs_conn.c
 * (ip_vs_conn_seq_show, ip_vs_conn_sync_seq_show) and ip_vs_app.c (ip_vs_app_seq_show).
 * Connection texts come as a header plus one function per row, so a caller can stream a table
 * of millions page by page.
 */
import { AF_INET6, parseIpv4, parseIpv6 } from '../core/addr.js';
import {
  CONN_F_FWD_MASK,
  CONN_F_SYNC,
  FWD_BYPASS,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_IP,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
  fwdName,
} from '../core/constants.js';
import type { StatsSnapshot } from '../core/stats.js';
import type { ConnInfo, Info, ServiceInfo } from '../ctl/types.js';

/**
 * Ticks per second of the `persistent %d` field of /proc/net/ip_vs. The kernel prints the
 * persistence timeout as it stores it, in jiffies (seconds × HZ, spec §12 and §14), and HZ is a
 * build option (250 on Debian, 1000 on RHEL, Fedora and Ubuntu 24.04+). ipvs-ts keeps timeouts in
 * milliseconds (spec §0: "convert seconds × HZ to seconds × 1000"), so it prints them as a
 * HZ=1000 kernel does: 360 s → 360000.
 */
export const PROC_HZ = 1000;

/** The running total counters, before the zero baseline is taken off (the per-CPU rows). */
export interface RawCounters {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
}

/** The global statistics object and the connection table's size, as the daemon reads them. */
export interface TotalsInfo {
  /** Zero-based counters and rates (`ipvsadm -Z` resets them). */
  stats: StatsSnapshot;
  /** The same counters since start: what one CPU's row of ip_vs_stats_percpu shows. */
  raw: RawCounters;
  /** Live entries in the connection table, templates included (the kernel's conn_count). */
  conns: number;
}

/** One application helper incarnation (ip_vs_app): protocol, port, bound connections, name. */
export interface AppInfo {
  protocol: number;
  port: number;
  useCount: number;
  name: string;
}

/** ip_vs_proto_name: the protocol as the kernel's texts name it. */
export function procProtoName(p: number): string {
  switch (p) {
    case IPPROTO_IP:
      return 'IP';
    case IPPROTO_UDP:
      return 'UDP';
    case IPPROTO_TCP:
      return 'TCP';
    case IPPROTO_SCTP:
      return 'SCTP';
    case IPPROTO_ICMP:
      return 'ICMP';
    case IPPROTO_ICMPV6:
      return 'ICMPv6';
    default:
      return `IP_${p}`;
  }
}

/**
 * ip_vs_fwd_name: a destination's method as the kernel's texts name it (Masq, Local, Tunnel,
 * Route; a destination is never Bypass, which the kernel would also print as Masq).
 */
export function procFwdName(fwd: number): string {
  return (fwd & CONN_F_FWD_MASK) === FWD_BYPASS ? 'Masq' : fwdName(fwd);
}

/** `%0<w>X`: upper-case hex, zero-padded. */
function hex0(v: number, w: number): string {
  return v.toString(16).toUpperCase().padStart(w, '0');
}

/** `%<w>LX`: upper-case hex, space-padded. */
function hexS(v: number, w: number): string {
  return v.toString(16).toUpperCase().padStart(w, ' ');
}

/** `%-<w>s`. */
function left(s: string, w: number): string {
  return s.padEnd(w, ' ');
}

/** `%08X` of an IPv4 address text, in host order (ntohl). */
function hexIpv4(text: string): string {
  return hex0((parseIpv4(text) ?? 0) >>> 0, 8);
}

/** `%pI6`: eight groups of four lower-case hex digits, none left out. */
function fullIpv6(words: ArrayLike<number>): string {
  const g: string[] = [];
  for (let i = 0; i < 4; i++) {
    const w = words[i]! >>> 0;
    g.push((w >>> 16).toString(16).padStart(4, '0'), (w & 0xffff).toString(16).padStart(4, '0'));
  }
  return g.join(':');
}

/** `%pI6` of an IPv6 address text. */
function pI6(text: string): string {
  return fullIpv6(parseIpv6(text) ?? [0, 0, 0, 0]);
}

/** An address of family `af` as the connection texts print it: `%08X` or `%pI6`. */
function connAddr(af: number, text: string): string {
  return af === AF_INET6 ? pI6(text) : hexIpv4(text);
}

/** A 32-bit byte swap: ntohl of a value a little-endian kernel stored in host order. */
function swab32(v: number): number {
  return (
    (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0
  );
}

/**
 * The `%08X` netmask of `persistent`: ntohl(svc->netmask). An IPv4 mask is stored in network
 * order and comes out as written (FFFFFF00); an IPv6 service's netmask field holds the prefix
 * length in host order, which ntohl swaps on the little-endian machines IPVS mostly runs on
 * (/128 → 80000000, /64 → 40000000).
 */
function procNetmask(s: ServiceInfo): string {
  return hex0(s.af === AF_INET6 ? swab32(s.netmask) : s.netmask >>> 0, 8);
}

/**
 * /proc/net/ip_vs: the version line with the connection hash size, the two column headers, then
 * each service (address services first, then fwmark services, as `services` lists them) with its
 * destinations (newest first). Note the kernel's own asymmetries: IPv6 services print no `ops`
 * flag, and a fwmark service line has one space less before `persistent`.
 */
export function procIpVs(info: Info, services: readonly ServiceInfo[]): string {
  const v = info.version;
  let out =
    `IP Virtual Server version ${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff} (size=${info.connTabSize})\n` +
    'Prot LocalAddress:Port Scheduler Flags\n' +
    '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n';
  for (const s of services) {
    const ops = (s.flags & SVC_F_ONEPACKET) !== 0 ? 'ops ' : '';
    if (s.fwmark) out += `FWM  ${hex0(s.fwmark >>> 0, 8)} ${s.scheduler} ${ops}`;
    else if (s.af === AF_INET6)
      out += `${procProtoName(s.protocol)}  [${pI6(s.addr)}]:${hex0(s.port, 4)} ${s.scheduler} `;
    else
      out += `${procProtoName(s.protocol)}  ${hexIpv4(s.addr)}:${hex0(s.port, 4)} ${s.scheduler} ${ops} `;
    out +=
      (s.flags & SVC_F_PERSISTENT) !== 0
        ? `persistent ${s.timeout * PROC_HZ} ${procNetmask(s)}\n`
        : '\n';
    for (const d of s.dests) {
      const addr =
        d.af === AF_INET6
          ? `[${pI6(d.addr)}]:${hex0(d.port, 4)}`
          : `${hexIpv4(d.addr)}:${hex0(d.port, 4)}`;
      out += `  -> ${addr}      ${left(procFwdName(d.fwd), 7)} ${left(String(d.weight), 6)} ${left(String(d.activeConns), 10)} ${left(String(d.inactConns), 10)}\n`;
    }
  }
  return out;
}

/** The header line of /proc/net/ip_vs_conn. */
export const PROC_CONN_HEADER =
  'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n';

/** The header line of /proc/net/ip_vs_conn_sync. */
export const PROC_CONN_SYNC_HEADER =
  'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n';

/**
 * The client, virtual and destination columns of a connection row: client and virtual address
 * by the connection's family, the destination by its own (`daf`). A fwmark template's virtual
 * address is the mark in the first word (zeros after it for IPv6).
 */
function connColumns(c: ConnInfo): string {
  const v6 = c.af === AF_INET6;
  let vaddr: string;
  if (c.protocol === IPPROTO_IP && v6) vaddr = fullIpv6([parseIpv4(c.vaddr) ?? 0, 0, 0, 0]);
  else vaddr = v6 ? pI6(c.vaddr) : hexIpv4(c.vaddr);
  return (
    `${left(procProtoName(c.protocol), 3)} ${connAddr(c.af, c.caddr)} ${hex0(c.cport, 4)} ` +
    `${vaddr} ${hex0(c.vport, 4)} ${connAddr(c.daf, c.daddr)} ${hex0(c.dport, 4)} ${left(c.stateName, 11)}`
  );
}

/** `%7u` of the seconds to expiry (rounded down). */
function expires(c: ConnInfo): string {
  return String(Math.floor(Math.max(0, c.expiresMs) / 1000)).padStart(7, ' ');
}

/** One row of /proc/net/ip_vs_conn; a persistence engine's data follows as ` NAME DATA`. */
export function procConnRow(c: ConnInfo): string {
  const pe = c.peData !== '' ? ` ${c.peName} ${c.peData}` : '';
  return `${connColumns(c)} ${expires(c)}${pe}\n`;
}

/** One row of /proc/net/ip_vs_conn_sync: Origin SYNC (made from a sync message) or LOCAL. */
export function procConnSyncRow(c: ConnInfo): string {
  const origin = (c.flags & CONN_F_SYNC) !== 0 ? 'SYNC' : 'LOCAL';
  return `${connColumns(c)} ${left(origin, 6)} ${expires(c)}\n`;
}

/** The five counters as `%8LX %8LX %8LX %16LX %16LX`. */
function counterRow(c: RawCounters): string {
  return `${hexS(c.conns, 8)} ${hexS(c.inpkts, 8)} ${hexS(c.outpkts, 8)} ${hexS(c.inbytes, 16)} ${hexS(c.outbytes, 16)}`;
}

/** The five rates as `%8LX %8LX %8LX %16LX %16LX`. */
function rateRow(s: StatsSnapshot): string {
  return `${hexS(s.cps, 8)} ${hexS(s.inpps, 8)} ${hexS(s.outpps, 8)} ${hexS(s.inbps, 16)} ${hexS(s.outbps, 16)}`;
}

/** /proc/net/ip_vs_stats: the zero-based totals, a blank line, the estimated rates, all in hex. */
export function procIpVsStats(t: TotalsInfo): string {
  return (
    '   Total Incoming Outgoing         Incoming         Outgoing\n' +
    '   Conns  Packets  Packets            Bytes            Bytes\n' +
    `${counterRow(t.stats)}\n\n` +
    ' Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n' +
    `${rateRow(t.stats)}\n`
  );
}

/**
 * /proc/net/ip_vs_stats_percpu for a daemon that counts on one CPU: CPU 0's row holds the running
 * counters (the kernel never zeroes per-CPU counters), the `~` row the zero-based totals, then the
 * rates.
 */
export function procIpVsStatsPercpu(t: TotalsInfo): string {
  return (
    '       Total Incoming Outgoing         Incoming         Outgoing\n' +
    'CPU    Conns  Packets  Packets            Bytes            Bytes\n' +
    `${hexS(0, 3)} ${counterRow(t.raw)}\n` +
    `  ~ ${counterRow(t.stats)}\n\n` +
    '     Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n' +
    `    ${rateRow(t.stats)}\n`
  );
}

/** /proc/net/ip_vs_app: one row per helper incarnation (`%-3s  %-7u %-6d %-17s`). */
export function procIpVsApp(apps: readonly AppInfo[]): string {
  let out = 'prot port    usecnt name\n';
  for (const a of apps)
    out += `${left(procProtoName(a.protocol), 3)}  ${left(String(a.port), 7)} ${left(String(a.useCount), 6)} ${left(a.name, 17)}\n`;
  return out;
}
