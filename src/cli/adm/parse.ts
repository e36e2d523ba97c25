/**
 * ipvsadm's argument processing (spec §10.1–10.4): popt parsing with the first option required to
 * be a command, per-option parsing and messages, the command × option legality check, and the
 * defaults and semantic checks ipvsadm applies before asking the kernel. The result is ipvsadm's
 * "command entry": the service, destination, timeouts and daemon it would send.
 */
import {
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  FWD_DROUTE,
  FWD_MASQ,
  FWD_TUNNEL,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
  SVC_F_SCHED1,
  SVC_F_SCHED2,
  SVC_F_SCHED3,
  TUN_F_CSUM,
  TUN_F_REMCSUM,
} from '../../core/constants.js';
import { AdmExit, fail } from '../errors.js';
import {
  atoi,
  inetAton,
  inetPton4,
  inetPton6,
  stringToNumber,
  strIsDigit,
  strtolWhole,
} from './inet.js';
import type { NameResolver } from './netdb.js';
import * as O from './options.js';
import { PoptContext, poptStrerror } from './popt.js';
import { tryHelpText, usageText, versionText } from './usage.js';

/** The virtual service as ipvsadm fills it in (ipvs_service_t). */
export interface AdmService {
  /** 0 until a service option sets it. */
  af: number;
  protocol: number;
  /** Canonical address text; '' = unspecified (all zeros). */
  addr: string;
  port: number;
  fwmark: number;
  sched: string;
  flags: number;
  timeout: number;
  /** IPv4: host-order mask; IPv6: prefix length. */
  netmask: number;
  pe: string;
  /** ipvs-ts extensions (`--proxy-protocol`). */
  ext: Record<string, string>;
}

/** The destination as ipvsadm fills it in (ipvs_dest_t). */
export interface AdmDest {
  af: number;
  addr: string;
  port: number;
  fwd: number;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
}

/** The sync daemon as ipvsadm fills it in (ipvs_daemon_t). */
export interface AdmDaemon {
  state: number;
  ifn: string;
  syncId: number;
  maxlen: number;
  /** Multicast group text, or '' when not given. */
  group: string;
  port: number;
  ttl: number;
}

/** Everything one ipvsadm command line asks for. */
export interface AdmEntry {
  cmd: number;
  svc: AdmService;
  dest: AdmDest;
  timeouts: { tcp: number; tcpfin: number; udp: number };
  daemon: AdmDaemon;
  /** OPTC_* indexes given on the line. */
  options: Set<number>;
  /** FMT_* bits. */
  format: number;
}

const SERVICE_NONE = 0;
const SERVICE_ADDR = 1;
const SERVICE_PORT = 2;

function newEntry(): AdmEntry {
  return {
    cmd: O.CMD_NONE,
    svc: {
      af: 0,
      protocol: 0,
      addr: '',
      port: 0,
      fwmark: 0,
      sched: '',
      flags: 0,
      timeout: 0,
      netmask: 0xffffffff,
      pe: '',
      ext: {},
    },
    dest: {
      af: 0,
      addr: '',
      port: 0,
      fwd: FWD_DROUTE,
      weight: 1,
      uThreshold: 0,
      lThreshold: 0,
      tunType: 0,
      tunPort: 0,
      tunFlags: 0,
    },
    timeouts: { tcp: 0, tcpfin: 0, udp: 0 },
    daemon: { state: 0, ifn: '', syncId: 0, maxlen: 0, group: '', port: 0, ttl: 0 },
    options: new Set(),
    format: O.FMT_NONE,
  };
}

function protocolOf(val: string): number {
  if (val === 't') return IPPROTO_TCP;
  if (val === 'u') return IPPROTO_UDP;
  if (val === O.TAG.SCTP_SERVICE) return IPPROTO_SCTP;
  return 0;
}

function setCommand(ce: AdmEntry, cmd: number): void {
  if (ce.cmd !== O.CMD_NONE) fail(2, 'multiple commands specified');
  ce.cmd = cmd;
}

function setOption(ce: AdmEntry, optc: number): void {
  if (ce.options.has(optc)) fail(2, `multiple '${O.OPT_NAMES[optc]}' options specified`);
  ce.options.add(optc);
}

/** ipvsadm's parse_service: fills af/addr/port of `svc`; returns SERVICE_* bits. */
async function parseService(
  text: string,
  svc: { af: number; protocol: number; addr: string; port: number; netmask: number },
  resolver: NameResolver,
): Promise<number> {
  if (strIsDigit(text)) return SERVICE_NONE;
  let buf = text;
  let portText: string | null = null;
  if (buf.startsWith('[')) {
    buf = buf.slice(1);
    const close = buf.indexOf(']');
    if (close < 0) return SERVICE_NONE;
    const after = buf.slice(close + 1);
    buf = buf.slice(0, close);
    if (!after.startsWith(':')) return SERVICE_NONE;
    portText = after.slice(1);
  }
  const v6 = inetPton6(buf);
  if (v6 !== null) {
    svc.addr = v6;
    svc.af = 10;
    svc.netmask = 128;
  } else {
    const colon = buf.lastIndexOf(':');
    if (colon >= 0) {
      portText = buf.slice(colon + 1);
      buf = buf.slice(0, colon);
    } else {
      portText = null;
    }
    const v4 = inetAton(buf);
    let addr: string | null = null;
    if (v4 !== null) addr = fmt4(v4);
    else addr = await resolver.hostToAddr4(buf);
    if (addr === null) return SERVICE_NONE;
    svc.addr = addr;
    svc.af = 2;
  }
  let result = SERVICE_ADDR;
  if (portText !== null) {
    result |= SERVICE_PORT;
    const n = stringToNumber(portText, 0, 65535);
    if (n !== -1) svc.port = n;
    else {
      const p = resolver.serviceToPort(portText, svc.protocol);
      if (p === null) return SERVICE_NONE;
      svc.port = p;
    }
  }
  return result;
}

function fmt4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** ipvsadm's parse_timeout. */
function parseTimeout(text: string | null, min: number, max: number): number {
  if (text === null) return O.DEF_PERSISTENT_TIMEOUT;
  const i = stringToNumber(text, min, max);
  if (i === -1) fail(2, `invalid timeout value \`${text}' specified`);
  return i;
}

/** ipvsadm's parse_fwmark: 1..4294967295. */
function parseFwmark(text: string): number {
  const l = strtolWhole(text);
  if (l === null || l <= 0 || l > 0xffffffff) fail(2, `invalid fwmark value \`${text}' specified`);
  return l;
}

/** ipvsadm's parse_sched_flags; `sched` is the scheduler named on the same line (default wlc). */
function parseSchedFlags(schedName: string, arg: string): number {
  const sched = schedName || O.DEF_SCHED;
  let flags = 0;
  const tokens = arg.split(',').filter((t) => t !== '');
  if (tokens.length === 0) fail(2, `invalid scheduler flag \`${arg}'`);
  for (const flag of tokens) {
    if (flag === 'flag-1') flags |= SVC_F_SCHED1;
    else if (flag === 'flag-2') flags |= SVC_F_SCHED2;
    else if (flag === 'flag-3') flags |= SVC_F_SCHED3;
    else if (flag === 'sh-fallback' || flag === 'sh-port') {
      flags |= flag === 'sh-fallback' ? SVC_F_SCHED1 : SVC_F_SCHED2;
      if (sched !== 'sh') fail(2, `incompatible scheduler flag \`${flag}'`);
    } else if (flag === 'mh-fallback' || flag === 'mh-port') {
      flags |= flag === 'mh-fallback' ? SVC_F_SCHED1 : SVC_F_SCHED2;
      if (sched !== 'mh') fail(2, `incompatible scheduler flag \`${flag}'`);
    } else fail(2, `invalid scheduler flag \`${flag}'`);
  }
  return flags;
}

/** ipvsadm's parse_netmask for IPv4: a dotted mask or a resolvable name. */
async function parseNetmask(text: string, resolver: NameResolver): Promise<number | null> {
  const v = inetAton(text);
  if (v !== null) return v;
  const a = await resolver.hostToAddr4(text);
  return a === null ? null : (inetAton(a) ?? null);
}

function tunTypeOf(name: string): number {
  const i = (O.TUN_NAMES as readonly string[]).indexOf(name);
  return i;
}

/** generic_opt_check: the command × option matrix. */
function genericOptCheck(cmd: number, options: Set<number>): void {
  const row = O.COMMANDS_V_OPTIONS[cmd - 1]!;
  const cname = O.CMD_NAMES[cmd - 1]!;
  let last = 0;
  let count = 0;
  for (let j = 0; j < O.NUMBER_OF_OPT; j++) {
    const rule = row[j];
    if (!options.has(j)) {
      if (rule === '+')
        fail(2, `You need to supply the '${O.OPT_NAMES[j]}' option for the '${cname}' command`);
    } else {
      if (rule === 'x') fail(2, `Illegal '${O.OPT_NAMES[j]}' option with the '${cname}' command`);
      if (rule === '1') {
        count++;
        if (count === 1) {
          last = j;
          continue;
        }
        fail(
          2,
          `The option '${O.OPT_NAMES[j]}' conflicts with the '${O.OPT_NAMES[last]}' option in the '${cname}' command`,
        );
      }
    }
  }
}

/** tunnel_opt_check: the tunnel type × option matrix. */
function tunnelOptCheck(tunType: number, options: Set<number>): void {
  const row = O.TUNNEL_TYPES_V_OPTIONS[tunType]!;
  const tname = O.TUN_NAMES[tunType]!;
  let last = 0;
  let count = 0;
  for (let j = 0; j < O.TUN_OPTS.length; j++) {
    const k = O.TUN_OPTS[j]!;
    const rule = row[j];
    if (!options.has(k)) {
      if (rule === '+')
        fail(2, `You need to supply the '${O.OPT_NAMES[k]}' option for the '${tname}' tunnel type`);
    } else {
      if (rule === 'x')
        fail(2, `Illegal '${O.OPT_NAMES[k]}' option with the '${tname}' tunnel type`);
      if (rule === '1') {
        count++;
        if (count === 1) {
          last = k;
          continue;
        }
        fail(
          2,
          `The option '${O.OPT_NAMES[k]}' conflicts with the '${O.OPT_NAMES[last]}' option in the '${tname}' tunnel type`,
        );
      }
    }
  }
}

/** The "Try `ipvsadm -h' ..." exit (status 255, ends a restore). */
function tryHelpExit(program: string): never {
  throw new AdmExit(255, { stderr: tryHelpText(program) });
}

/**
 * ipvsadm's parse_options + the checks of process_options. `args` excludes the program name.
 * Throws AdmExit for every early exit; returns the command entry otherwise.
 */
export async function parseAdm(
  args: readonly string[],
  resolver: NameResolver,
  program = 'ipvsadm',
): Promise<AdmEntry> {
  const ce = newEntry();
  const ctx = new PoptContext(args, O.OPTIONS_TABLE);
  let schedFlagsArg = '';

  const first = ctx.next();
  if (first.kind !== 'opt') tryHelpExit(program);
  switch (first.val) {
    case 'A':
      setCommand(ce, O.CMD_ADD);
      break;
    case 'E':
      setCommand(ce, O.CMD_EDIT);
      break;
    case 'D':
      setCommand(ce, O.CMD_DEL);
      break;
    case 'a':
      setCommand(ce, O.CMD_ADDDEST);
      break;
    case 'e':
      setCommand(ce, O.CMD_EDITDEST);
      break;
    case 'd':
      setCommand(ce, O.CMD_DELDEST);
      break;
    case 'C':
      setCommand(ce, O.CMD_FLUSH);
      break;
    case 'L':
    case 'l':
      setCommand(ce, O.CMD_LIST);
      break;
    case 'Z':
      setCommand(ce, O.CMD_ZERO);
      break;
    case O.TAG.SET:
      setCommand(ce, O.CMD_TIMEOUT);
      break;
    case 'R':
      setCommand(ce, O.CMD_RESTORE);
      break;
    case 'S':
      setCommand(ce, O.CMD_SAVE);
      break;
    case O.TAG.START_DAEMON:
    case O.TAG.STOP_DAEMON: {
      const start = first.val === O.TAG.START_DAEMON;
      setCommand(ce, start ? O.CMD_STARTDAEMON : O.CMD_STOPDAEMON);
      if (first.arg === 'master') ce.daemon.state = 1;
      else if (first.arg === 'backup') ce.daemon.state = 2;
      else
        fail(
          2,
          start ? 'illegal start-daemon parameter specified' : 'illegal start_daemon specified',
        );
      break;
    }
    case 'h':
      throw new AdmExit(0, { stdout: usageText(program) });
    case 'v':
      throw new AdmExit(0, { stdout: versionText() });
    default:
      tryHelpExit(program);
  }

  let r = ctx.next();
  for (; r.kind === 'opt'; r = ctx.next()) {
    const arg = r.arg ?? '';
    switch (r.val) {
      case 't':
      case 'u':
      case O.TAG.SCTP_SERVICE: {
        setOption(ce, O.OPTC_SERVICE);
        ce.svc.protocol = protocolOf(r.val);
        const parse = await parseService(arg, ce.svc, resolver);
        if (!(parse & SERVICE_ADDR)) fail(2, 'illegal virtual server address[:port] specified');
        break;
      }
      case 'f':
        setOption(ce, O.OPTC_SERVICE);
        ce.svc.af = 2;
        ce.svc.protocol = IPPROTO_TCP;
        ce.svc.fwmark = parseFwmark(arg);
        break;
      case 's':
        setOption(ce, O.OPTC_SCHEDULER);
        ce.svc.sched = arg.slice(0, 15);
        break;
      case 'p':
        setOption(ce, O.OPTC_PERSISTENT);
        ce.svc.flags |= SVC_F_PERSISTENT;
        ce.svc.timeout = parseTimeout(r.arg, 1, O.MAX_TIMEOUT);
        break;
      case 'M':
        setOption(ce, O.OPTC_NETMASK);
        if (ce.svc.af !== 10) {
          const m = await parseNetmask(arg, resolver);
          if (m === null) fail(2, 'illegal virtual server persistent mask specified');
          ce.svc.netmask = m;
        } else {
          ce.svc.netmask = atoi(arg);
          if (ce.svc.netmask < 1 || ce.svc.netmask > 128) fail(2, 'illegal ipv6 netmask specified');
        }
        break;
      case 'r': {
        setOption(ce, O.OPTC_SERVER);
        const t = { ...ce.svc };
        const parse = await parseService(arg, t, resolver);
        ce.dest.af = t.af;
        ce.dest.addr = t.addr;
        ce.dest.port = t.port;
        if (!(parse & SERVICE_ADDR)) fail(2, 'illegal real server address[:port] specified');
        if (parse === SERVICE_ADDR) ce.dest.port = ce.svc.port;
        break;
      }
      case 'i':
        setOption(ce, O.OPTC_FORWARD);
        ce.dest.fwd = FWD_TUNNEL;
        break;
      case 'g':
        setOption(ce, O.OPTC_FORWARD);
        ce.dest.fwd = FWD_DROUTE;
        break;
      case 'm':
        setOption(ce, O.OPTC_FORWARD);
        ce.dest.fwd = FWD_MASQ;
        break;
      case 'w':
        setOption(ce, O.OPTC_WEIGHT);
        // 0..65535, as the spec and ipvsadm 1.31 have it (the kernel takes up to INT_MAX; a later
        // ipvsadm patch, carried by some distributions, raises the limit to that)
        if ((ce.dest.weight = stringToNumber(arg, 0, 65535)) === -1)
          fail(2, 'illegal weight specified');
        break;
      case 'x':
        setOption(ce, O.OPTC_UTHRESHOLD);
        if ((ce.dest.uThreshold = stringToNumber(arg, 0, 0x7fffffff)) === -1)
          fail(2, 'illegal u_threshold specified');
        break;
      case 'y':
        setOption(ce, O.OPTC_LTHRESHOLD);
        if ((ce.dest.lThreshold = stringToNumber(arg, 0, 0x7fffffff)) === -1)
          fail(2, 'illegal l_threshold specified');
        break;
      case 'c':
        setOption(ce, O.OPTC_CONNECTION);
        break;
      case 'n':
        setOption(ce, O.OPTC_NUMERIC);
        ce.format |= O.FMT_NUMERIC;
        break;
      case O.TAG.MCAST_INTERFACE:
        setOption(ce, O.OPTC_MCAST);
        ce.daemon.ifn = arg.slice(0, 15);
        break;
      case 'I':
        setOption(ce, O.OPTC_SYNCID);
        if ((ce.daemon.syncId = stringToNumber(arg, 0, 255)) === -1)
          fail(2, 'illegal syncid specified');
        break;
      case O.TAG.TIMEOUT:
        setOption(ce, O.OPTC_TIMEOUT);
        break;
      case O.TAG.DAEMON:
        setOption(ce, O.OPTC_DAEMON);
        break;
      case O.TAG.STATS:
        setOption(ce, O.OPTC_STATS);
        ce.format |= O.FMT_STATS;
        break;
      case O.TAG.RATE:
        setOption(ce, O.OPTC_RATE);
        ce.format |= O.FMT_RATE;
        break;
      case O.TAG.THRESHOLDS:
        setOption(ce, O.OPTC_THRESHOLDS);
        ce.format |= O.FMT_THRESHOLDS;
        break;
      case O.TAG.PERSISTENTCONN:
        setOption(ce, O.OPTC_PERSISTENTCONN);
        ce.format |= O.FMT_PERSISTENTCONN;
        break;
      case O.TAG.NO_SORT:
        setOption(ce, O.OPTC_NOSORT);
        ce.format |= O.FMT_NOSORT;
        break;
      case O.TAG.SORT:
        break;
      case 'X':
        setOption(ce, O.OPTC_EXACT);
        ce.format |= O.FMT_EXACT;
        break;
      case '6':
        if (ce.svc.fwmark) {
          ce.svc.af = 10;
          ce.svc.netmask = 128;
        } else {
          // ipvsadm's message carries its own newline, so fail() prints an empty line after it.
          fail(2, '-6 used before -f\n');
        }
        break;
      case 'o':
        setOption(ce, O.OPTC_ONEPACKET);
        ce.svc.flags |= SVC_F_ONEPACKET;
        break;
      case O.TAG.PE:
        setOption(ce, O.OPTC_PE);
        ce.svc.pe = arg.slice(0, 16);
        break;
      case O.TAG.PROXY_PROTOCOL:
        setOption(ce, O.OPTC_PROXY_PROTOCOL);
        if (arg !== 'v1' && arg !== 'v2' && arg !== 'none')
          fail(2, 'illegal proxy-protocol specified (v1, v2 or none)');
        if (arg !== 'none') ce.svc.ext['proxy-protocol'] = arg;
        break;
      case 'b':
        setOption(ce, O.OPTC_SCHED_FLAGS);
        schedFlagsArg = arg.slice(0, 127);
        break;
      case O.TAG.MCAST_GROUP:
        setOption(ce, O.OPTC_MCAST_GROUP);
        if (arg.includes(':')) {
          const g = inetPton6(arg);
          if (g === null || !/^ff/i.test(g)) fail(2, `invalid IPv6 mcast-group \`${arg}'`);
          ce.daemon.group = g;
        } else {
          const g = inetPton4(arg);
          if (g === null || g >>> 28 !== 0xe) fail(2, `invalid IPv4 mcast-group \`${arg}'`);
          ce.daemon.group = fmt4(g);
        }
        break;
      case O.TAG.MCAST_PORT: {
        setOption(ce, O.OPTC_MCAST_PORT);
        const n = stringToNumber(arg, 1, 65535);
        if (n === -1) fail(2, 'illegal mcast-port specified');
        ce.daemon.port = n;
        break;
      }
      case O.TAG.MCAST_TTL: {
        setOption(ce, O.OPTC_MCAST_TTL);
        const n = stringToNumber(arg, 1, 255);
        if (n === -1) fail(2, 'illegal mcast-ttl specified');
        ce.daemon.ttl = n;
        break;
      }
      case O.TAG.SYNC_MAXLEN: {
        setOption(ce, O.OPTC_SYNC_MAXLEN);
        const n = stringToNumber(arg, 1, 65535 - 20 - 8);
        if (n === -1) fail(2, 'illegal sync-maxlen specified');
        ce.daemon.maxlen = n;
        break;
      }
      case O.TAG.TUN_INFO:
        setOption(ce, O.OPTC_TUN_INFO);
        ce.format |= O.FMT_TUN_INFO;
        break;
      case O.TAG.TUN_TYPE: {
        setOption(ce, O.OPTC_TUN_TYPE);
        const t = tunTypeOf(arg);
        if (t === -1) fail(2, 'illegal tunnel type specified');
        ce.dest.tunType = t;
        break;
      }
      case O.TAG.TUN_PORT: {
        setOption(ce, O.OPTC_TUN_PORT);
        const n = stringToNumber(arg, 1, 65535);
        if (n === -1) fail(2, 'illegal tunnel port specified');
        ce.dest.tunPort = n;
        break;
      }
      case O.TAG.TUN_NOCSUM:
        setOption(ce, O.OPTC_TUN_NOCSUM);
        break;
      case O.TAG.TUN_CSUM:
        setOption(ce, O.OPTC_TUN_CSUM);
        ce.dest.tunFlags |= TUN_F_CSUM;
        break;
      case O.TAG.TUN_REMCSUM:
        setOption(ce, O.OPTC_TUN_REMCSUM);
        ce.dest.tunFlags |= TUN_F_REMCSUM;
        break;
      default:
        fail(2, `invalid option \`${ctx.badOption()}'`);
    }
  }

  if (r.kind === 'error') {
    // popt error: printed, and process_options returns -1 (exit 255; a restore goes on).
    throw new AdmExit(255, {
      stderr: `${ctx.badOption()}: ${poptStrerror(r.code)}\n`,
      abort: false,
    });
  }

  if (ce.cmd === O.CMD_TIMEOUT) {
    const a = ctx.getArg();
    const b = a === null ? null : ctx.getArg();
    const c = b === null ? null : ctx.getArg();
    if (a === null || b === null || c === null) fail(2, '--set option requires 3 timeout values');
    ce.timeouts.tcp = parseTimeout(a, 0, O.MAX_TIMEOUT);
    ce.timeouts.tcpfin = parseTimeout(b, 0, O.MAX_TIMEOUT);
    ce.timeouts.udp = parseTimeout(c, 0, O.MAX_TIMEOUT);
  }

  const extra = ctx.getArg();
  if (extra !== null) fail(2, `unexpected argument ${extra}`);

  if (schedFlagsArg) {
    ce.svc.flags &= ~(SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3);
    ce.svc.flags |= parseSchedFlags(ce.svc.sched, schedFlagsArg);
  }

  // process_options
  genericOptCheck(ce.cmd, ce.options);

  if (ce.cmd === O.CMD_ADD || ce.cmd === O.CMD_EDIT) {
    if (!ce.svc.fwmark && !ce.svc.port && !(ce.svc.flags & SVC_F_PERSISTENT))
      fail(2, 'Zero port specified for non-persistent service');
    if (ce.svc.flags & SVC_F_ONEPACKET && !ce.svc.fwmark && ce.svc.protocol !== IPPROTO_UDP)
      fail(2, 'One-Packet Scheduling is only for UDP virtual services');
    if (ce.svc.sched === '') ce.svc.sched = O.DEF_SCHED;
  }

  if (ce.cmd === O.CMD_STARTDAEMON && ce.daemon.ifn === '') ce.daemon.ifn = O.DEF_MCAST_IFN;

  if (ce.cmd === O.CMD_ADDDEST || ce.cmd === O.CMD_EDITDEST) {
    const fwd = ce.dest.fwd;
    if (!ce.svc.fwmark && (fwd === FWD_TUNNEL || fwd === FWD_DROUTE)) ce.dest.port = ce.svc.port;
    if (ce.dest.af !== ce.svc.af && fwd !== FWD_TUNNEL)
      fail(2, 'Different address family is allowed only for tunneling servers');
    const tunOpts = [
      O.OPTC_TUN_TYPE,
      O.OPTC_TUN_PORT,
      O.OPTC_TUN_NOCSUM,
      O.OPTC_TUN_CSUM,
      O.OPTC_TUN_REMCSUM,
    ];
    if (tunOpts.some((k) => ce.options.has(k)) && fwd !== FWD_TUNNEL)
      fail(2, 'Tunnel options conflict with forward method');
    tunnelOptCheck(ce.dest.tunType, ce.options);
  }

  if (ce.cmd === O.CMD_LIST) {
    const has = (k: number) => ce.options.has(k);
    if (
      ((has(O.OPTC_CONNECTION) || has(O.OPTC_TIMEOUT) || has(O.OPTC_DAEMON)) &&
        (has(O.OPTC_STATS) || has(O.OPTC_RATE) || has(O.OPTC_THRESHOLDS))) ||
      ((has(O.OPTC_TIMEOUT) || has(O.OPTC_DAEMON)) && has(O.OPTC_PERSISTENTCONN))
    )
      fail(2, 'options conflicts in the list command');
  }
  return ce;
}
