/**
 * ipvsadm's output formats, byte for byte (spec §10.6–10.7): the version header, the title lines of
 * every listing mode, service and destination lines with their field widths and trailing spaces,
 * large-number formatting, connection rows, timeouts, daemons and the `-S` save format. Pure: name
 * lookups come from a `Names` table filled in beforehand.
 */
import { procProtoName } from '../../metrics/proc.js';
import type {
  ConnInfo,
  DaemonSpec,
  DestInfo,
  Info,
  ServiceInfo,
  Timeouts,
} from '../../ctl/types.js';
import {
  FMT_EXACT,
  FMT_NOSORT,
  FMT_NUMERIC,
  FMT_PERSISTENTCONN,
  FMT_RATE,
  FMT_RULE,
  FMT_STATS,
  FMT_THRESHOLDS,
  FMT_TUN_INFO,
  TUN_NAMES,
} from './options.js';
import { cmpDests, cmpServices, listedProtocol, msort } from './sort.js';
import { formatIpv4, formatIpv6, parseIpv4 } from '../../core/addr.js';

/** Host and service names, looked up beforehand (null = not known, print numerically). */
export interface Names {
  host(af: number, addr: string): string | null;
  service(port: number, proto: number): string | null;
}

/** A Names table that knows nothing (numeric output). */
export const NO_NAMES: Names = { host: () => null, service: () => null };

/** printf("%-Ns"). */
export function ljust(s: string | number, w: number): string {
  const t = String(s);
  return t.length >= w ? t : t + ' '.repeat(w - t.length);
}

/** printf("%Ns"). */
export function rjust(s: string | number, w: number): string {
  const t = String(s);
  return t.length >= w ? t : ' '.repeat(w - t.length) + t;
}

/** addrport_to_anyname: `addr:port` (IPv6 in brackets), names unless FMT_NUMERIC; ≤ 59 chars. */
export function addrPort(
  af: number,
  addr: string,
  port: number,
  proto: number,
  format: number,
  names: Names,
): string {
  const [open, close] = af === 10 ? ['[', ']'] : ['', ''];
  let s: string;
  if (format & FMT_NUMERIC) s = `${open}${addr}${close}:${port}`;
  else {
    const host = names.host(af, addr) ?? addr;
    const svc = names.service(port, proto) ?? String(port);
    s = `${open}${host}${close}:${svc}`;
  }
  return s.slice(0, 59);
}

/** print_largenum: each value with its own leading space. */
export function largeNum(i: number, format: number): string {
  if (format & FMT_EXACT) {
    const s = String(i);
    return rjust(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (i < 1e8) return rjust(i, 9);
  if (i < 1e9) return rjust(Math.floor(i / 1e3), 8) + 'K';
  if (i < 1e11) return rjust(Math.floor(i / 1e6), 8) + 'M';
  if (i < 1e14) return rjust(Math.floor(i / 1e9), 8) + 'G';
  return rjust(Math.floor(i / 1e12), 8) + 'T';
}

/** Version header printed before a full listing. */
export function header(info: Info): string {
  const v = info.version;
  return `IP Virtual Server version ${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff} (size=${info.connTabSize})\n`;
}

/** print_title: the two title lines of the listing mode ('' for -S). */
export function title(format: number): string {
  if (format & FMT_STATS)
    return (
      `${ljust('Prot LocalAddress:Port', 33)} ${rjust('Conns', 8)} ${rjust('InPkts', 8)} ${rjust('OutPkts', 8)} ${rjust('InBytes', 8)} ${rjust('OutBytes', 8)}\n` +
      '  -> RemoteAddress:Port\n'
    );
  if (format & FMT_RATE)
    return (
      `${ljust('Prot LocalAddress:Port', 33)} ${rjust('CPS', 8)} ${rjust('InPPS', 8)} ${rjust('OutPPS', 8)} ${rjust('InBPS', 8)} ${rjust('OutBPS', 8)}\n` +
      '  -> RemoteAddress:Port\n'
    );
  if (format & FMT_THRESHOLDS)
    return (
      `${ljust('Prot LocalAddress:Port', 33)} ${ljust('Uthreshold', 10)} ${ljust('Lthreshold', 10)} ${ljust('ActiveConn', 10)} ${ljust('InActConn', 10)}\n` +
      '  -> RemoteAddress:Port\n'
    );
  if (format & FMT_PERSISTENTCONN)
    return (
      `${ljust('Prot LocalAddress:Port', 33)} ${ljust('Weight', 9)} ${ljust('PersistConn', 11)} ${ljust('ActiveConn', 10)} ${ljust('InActConn', 10)}\n` +
      '  -> RemoteAddress:Port\n'
    );
  if (format & FMT_TUN_INFO)
    return (
      'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n'
    );
  if (!(format & FMT_RULE))
    return (
      'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n'
    );
  return '';
}

function fwdName(fwd: number): string {
  return ['Masq', 'Local', 'Tunnel', 'Route'][fwd & 7] ?? '(null)';
}

function fwdSwitch(fwd: number): string {
  return ['-m', '-g', '-i', '-g'][fwd & 7] ?? '(null)';
}

const TUN_FLAGS = ['-c', '+c', 'r+c'];
const TUN_FLAG_OPTS = ['--tun-nocsum', '--tun-csum', '--tun-remcsum'];

function tunInfo(d: DestInfo): string | null {
  if ((d.fwd & 7) !== 2) return null;
  switch (d.tunType) {
    case 0:
      return 'ipip';
    case 1:
      return `gue:${d.tunPort}:${TUN_FLAGS[d.tunFlags] ?? '(null)'}`.slice(0, 15);
    case 2:
      return `gre:${TUN_FLAGS[d.tunFlags] ?? '(null)'}`.slice(0, 15);
    default:
      return null;
  }
}

function schedFlags(s: ServiceInfo): string {
  const f: string[] = [];
  if (s.scheduler === 'sh') {
    if (s.flags & 0x08) f.push('sh-fallback');
    if (s.flags & 0x10) f.push('sh-port');
  } else if (s.scheduler === 'mh') {
    if (s.flags & 0x08) f.push('mh-fallback');
    if (s.flags & 0x10) f.push('mh-port');
  } else {
    if (s.flags & 0x08) f.push('flag-1');
    if (s.flags & 0x10) f.push('flag-2');
    if (s.flags & 0x20) f.push('flag-3');
  }
  return f.join(',');
}

function tunnelRule(svcName: string, dname: string, d: DestInfo): string {
  const base = `-a ${svcName} -r ${dname} ${fwdSwitch(d.fwd)} -w ${d.weight}`;
  switch (d.tunType) {
    case 2:
      return `${base} --tun-type ${TUN_NAMES[2]} ${TUN_FLAG_OPTS[d.tunFlags] ?? '(null)'}\n`;
    case 1:
      return `${base} --tun-type ${TUN_NAMES[1]} --tun-port ${d.tunPort} ${TUN_FLAG_OPTS[d.tunFlags] ?? '(null)'}\n`;
    case 0:
      return `${base} --tun-type ${TUN_NAMES[0]}\n`;
    default:
      return `${base}\n`;
  }
}

/** print_service_entry: one service and its destinations. */
export function serviceEntry(se: ServiceInfo, format: number, names: Names): string {
  const proto = listedProtocol(se);
  let svcName: string;
  if (se.fwmark) {
    // unsigned, as ipvsadm prints it since the fix after 1.31 (spec §0; 1.31's "%d" printed
    // marks of 2^31 and above negative, and -R refused them)
    const mark = se.fwmark >>> 0;
    if (format & FMT_RULE) svcName = se.af === 10 ? `-f ${mark} -6` : `-f ${mark}`;
    else svcName = se.af === 10 ? `FWM  ${mark} IPv6` : `FWM  ${mark}`;
  } else {
    const vname = addrPort(se.af, se.addr, se.port, proto, format, names);
    if (format & FMT_RULE) {
      const stype =
        proto === 6
          ? '-t'
          : proto === 17
            ? '-u'
            : proto === 132
              ? '--sctp-service'
              : '--xxx-service';
      svcName = `${stype} ${vname}`;
    } else {
      const stype = proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : proto === 132 ? 'SCTP' : '?';
      svcName = `${ljust(stype, 4)} ${vname}`;
      if (se.af !== 10) svcName = svcName.slice(0, 33);
    }
  }
  const hasSchedFlags = (se.flags & 0x38) !== 0;
  let out = '';
  if (format & FMT_RULE) {
    out += `-A ${svcName} -s ${se.scheduler}`;
    if (se.flags & 1) {
      out += ` -p ${se.timeout >>> 0}`;
      if (se.af === 2 && se.netmask >>> 0 !== 0xffffffff)
        out += ` -M ${formatIpv4(se.netmask >>> 0)}`;
      if (se.af === 10 && se.netmask !== 128) out += ` -M ${se.netmask | 0}`;
    }
    if (se.pe) out += ` --pe ${se.pe}`;
    if (se.flags & 4) out += ' -o';
    if (hasSchedFlags) out += ` -b ${schedFlags(se)}`;
    if (se.ext?.['proxy-protocol']) out += ` --proxy-protocol ${se.ext['proxy-protocol']}`;
  } else if (format & (FMT_STATS | FMT_RATE)) {
    const s = se.stats;
    const v =
      format & FMT_STATS
        ? [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
        : [s.cps, s.inpps, s.outpps, s.inbps, s.outbps];
    out += ljust(svcName, 33) + v.map((x) => largeNum(x, format)).join('');
  } else {
    out += `${svcName} ${se.scheduler}`;
    if (hasSchedFlags) out += ` (${schedFlags(se)})`;
    if (se.flags & 1) {
      out += ` persistent ${se.timeout >>> 0}`;
      if (se.af === 2 && se.netmask >>> 0 !== 0xffffffff)
        out += ` mask ${formatIpv4(se.netmask >>> 0)}`;
      if (se.af === 10 && se.netmask !== 128) out += ` mask ${se.netmask | 0}`;
      if (se.pe) out += ` pe ${se.pe}`;
    }
    if (se.flags & 4) out += ' ops';
    // ipvs-ts extension, only on services that use it: the output stays ipvsadm's otherwise
    if (se.ext?.['proxy-protocol']) out += ` proxy-protocol ${se.ext['proxy-protocol']}`;
  }
  out += '\n';

  const dests = format & FMT_NOSORT ? se.dests : msort([...se.dests], cmpDests);
  for (const d of dests) {
    let dname = addrPort(d.af, d.addr, d.port, proto, format, names);
    if (!(format & FMT_RULE) && d.af !== 10) dname = dname.slice(0, 28);
    const s = d.stats;
    if (format & FMT_RULE) {
      if ((d.fwd & 7) === 2) out += tunnelRule(svcName, dname, d);
      else out += `-a ${svcName} -r ${dname} ${fwdSwitch(d.fwd)} -w ${d.weight}\n`;
    } else if (format & FMT_STATS) {
      out +=
        `  -> ${ljust(dname, 28)}` +
        [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
          .map((x) => largeNum(x, format))
          .join('') +
        '\n';
    } else if (format & FMT_RATE) {
      out +=
        `  -> ${ljust(dname, 28)} ${rjust(s.cps, 8)} ${rjust(s.inpps, 8)} ${rjust(s.outpps, 8)}` +
        largeNum(s.inbps, format) +
        largeNum(s.outbps, format) +
        '\n';
    } else if (format & FMT_THRESHOLDS) {
      out += `  -> ${ljust(dname, 28)} ${ljust(d.uThreshold >>> 0, 10)} ${ljust(d.lThreshold >>> 0, 10)} ${ljust(d.activeConns >>> 0, 10)} ${ljust(d.inactConns >>> 0, 10)}\n`;
    } else if (format & FMT_PERSISTENTCONN) {
      out += `  -> ${ljust(dname, 28)} ${ljust(d.weight >>> 0, 9)} ${ljust(d.persistConns >>> 0, 11)} ${ljust(d.activeConns >>> 0, 10)} ${ljust(d.inactConns >>> 0, 10)}\n`;
    } else if (format & FMT_TUN_INFO) {
      out += `  -> ${ljust(dname, 28)} ${ljust(fwdName(d.fwd), 7)} ${ljust(tunInfo(d) ?? 'n/a', 13)} ${ljust(d.weight | 0, 6)} ${ljust(d.activeConns >>> 0, 10)} ${ljust(d.inactConns >>> 0, 10)}\n`;
    } else {
      out += `  -> ${ljust(dname, 28)} ${ljust(fwdName(d.fwd), 7)} ${ljust(d.weight | 0, 6)} ${ljust(d.activeConns >>> 0, 10)} ${ljust(d.inactConns >>> 0, 10)}\n`;
    }
  }
  return out;
}

/** list_all: header (not for -S), title, every service in ipvsadm's order. */
export function listAll(info: Info, services: ServiceInfo[], format: number, names: Names): string {
  let out = format & FMT_RULE ? '' : header(info);
  const list = format & FMT_NOSORT ? services : msort([...services], cmpServices);
  out += title(format);
  for (const s of list) out += serviceEntry(s, format, names);
  return out;
}

/** list_service: title and one service, no header. */
export function listService(se: ServiceInfo, format: number, names: Names): string {
  return title(format) + serviceEntry(se, format, names);
}

/** list_timeout. */
export function listTimeout(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
}

/** list_daemon: one line per running role, master first. */
export function listDaemon(daemons: DaemonSpec[]): string {
  let out = '';
  const ordered = [...daemons].sort((a, b) => a.state - b.state);
  for (const d of ordered) {
    const type = d.state & 1 ? 'master' : d.state & 2 ? 'backup' : null;
    if (!type) continue;
    out += `${type} sync daemon (mcast=${d.mcastIfn}, syncid=${d.syncId}`;
    if (d.syncMaxlen) out += `, maxlen=${d.syncMaxlen}`;
    if (d.mcastGroup) out += `, group=${d.mcastGroup}`;
    if (d.mcastPort) out += `, port=${d.mcastPort}`;
    if (d.mcastTtl) out += `, ttl=${d.mcastTtl}`;
    out += ')\n';
  }
  return out;
}

/** list_conn: title and one row per connection-table entry. */
export function listConns(conns: ConnInfo[], format: number, names: Names): string {
  let out = connsHeader(format);
  for (const c of conns) out += connRow(c, format, names);
  return out;
}

/** The two header lines of `-L -c`. */
export function connsHeader(format: number): string {
  const head = `pro expire ${ljust('state', 11)} ${ljust('source', 18)} ${ljust('virtual', 18)} `;
  return format & FMT_PERSISTENTCONN
    ? `IPVS connection entries\n${head}${ljust('destination', 18)} ${ljust('pe name', 16)} pe_data\n`
    : `IPVS connection entries\n${head}destination\n`;
}

/**
 * The virtual address of a `-L -c` row as ipvsadm reads it from /proc/net/ip_vs_conn. A fwmark
 * template (protocol 0) holds the mark in the first 32 bits of its address (`ip_vs_sched_persist`),
 * which the listing gives as IPv4 text; in an IPv6 template the kernel prints those bits as the
 * first two groups of an IPv6 address (mark 7 → `0:7::`).
 */
export function connVaddr(c: ConnInfo): string {
  if (c.protocol !== 0 || c.af !== 10) return c.vaddr;
  const mark = parseIpv4(c.vaddr);
  return mark === null ? c.vaddr : formatIpv6([mark, 0, 0, 0]);
}

/** One `-L -c` row. */
export function connRow(c: ConnInfo, format: number, names: Names): string {
  // the protocol as /proc/net/ip_vs_conn names it (ip_vs_proto_name: IP_<n> for others), which
  // ipvsadm prints as it reads it
  const pname = procProtoName(c.protocol);
  const proto = pname === 'TCP' ? 6 : pname === 'UDP' ? 17 : pname === 'SCTP' ? 132 : 0;
  const cname = addrPort(c.af, c.caddr, c.cport, proto, format, names);
  const vname = addrPort(c.af, connVaddr(c), c.vport, proto, format, names);
  const dname = addrPort(c.daf, c.daddr, c.dport, proto, format, names);
  const expires = Math.max(0, Math.floor(c.expiresMs / 1000));
  const exp = `${String(Math.floor(expires / 60)).padStart(2, '0')}:${String(expires % 60).padStart(2, '0')}`;
  const state = c.stateName.slice(0, 15);
  if (format & FMT_PERSISTENTCONN && c.peName && c.peData)
    return `${ljust(pname, 3)} ${ljust(exp, 6)} ${ljust(state, 11)} ${ljust(cname, 18)} ${ljust(vname, 18)} ${ljust(dname, 16)} ${ljust(c.peName, 18)} ${c.peData}\n`;
  return `${ljust(pname, 3)} ${ljust(exp, 6)} ${ljust(state, 11)} ${ljust(cname, 18)} ${ljust(vname, 18)} ${dname}\n`;
}
