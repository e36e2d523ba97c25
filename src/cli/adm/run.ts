/**
 * `ipvs adm`: ipvsadm's process_options and restore_table on top of a control backend. Parses one
 * command line (or, for `-R`, every line of stdin), translates it into control commands, prints
 * what ipvsadm prints and returns ipvsadm's exit status. Runs in-process (tests, demo) or against
 * the daemon over the control socket, with the same code.
 */
import { ALL_ERRORS, IpvsError } from '../../core/errors.js';
import type { CtlBackend } from '../../ctl/backend.js';
import {
  type Command,
  type ConnInfo,
  type DaemonSpec,
  type DestKey,
  type DestSpec,
  type ServiceInfo,
  type ServiceKey,
  type ServiceSpec,
  destSpecOf,
} from '../../ctl/types.js';
import { AdmExit } from '../errors.js';
import * as F from './format.js';
import { SystemResolver, type NameResolver } from './netdb.js';
import * as O from './options.js';
import { parseAdm, type AdmEntry } from './parse.js';
import { ipvsStrerror, type AdmOp } from './strerror.js';
import { tryHelpText } from './usage.js';

/** Where `runAdm` reads and writes, and how it reaches the control plane. */
export interface AdmIo {
  /**
   * Where listings go. `write` may return a promise (the page loop of `-L -c` waits for it, so a
   * slow reader slows the listing instead of filling memory); `broken` true stops a listing
   * whose reader went away.
   */
  stdout: { write(s: string): unknown; broken?: () => boolean };
  stderr: { write(s: string): unknown };
  /** All of stdin, for `-R` (read on demand). */
  readStdin?: () => Promise<string>;
  /** The control plane, or a function that connects to it on first use. */
  backend: CtlBackend | (() => Promise<CtlBackend>);
  /** Name services (default: /etc/services, /etc/hosts, DNS). */
  resolver?: NameResolver;
  /** Program name in messages (default `ipvsadm`). */
  program?: string;
}

const CORE_CODES: ReadonlySet<string> = new Set(ALL_ERRORS.map((c) => c.code));
/** Connections per `getConnsPage` request of `-L -c`. */
const CONN_PAGE = 10_000;

/** Thrown when the backend cannot be reached at all. */
export class BackendUnavailable extends Error {}

/** A kernel command of a `-R` restore that was sent and whose reply has not been reported yet. */
interface InFlight {
  op: AdmOp;
  reply: Promise<unknown>;
}

/** What `kernel()` returns for a command it sent without waiting (restore pipelining). */
const PENDING = -1;

class Session {
  readonly io: AdmIo;
  readonly resolver: NameResolver;
  readonly program: string;
  #backend: CtlBackend | null = null;
  /**
   * During `-R`: kernel commands are sent without waiting for their replies (so the daemon can
   * apply, and save, a whole burst at once); their results are reported in order by `drain()`,
   * before anything else is printed.
   */
  pipeline: InFlight[] | null = null;
  /** Status of the last restore line whose result is known. */
  last = 0;
  /** Host names looked up during this command (`-L -c` asks for the same addresses page after page). */
  readonly hosts = new Map<string, string | null>();

  constructor(io: AdmIo) {
    this.io = io;
    this.resolver = io.resolver ?? new SystemResolver();
    this.program = io.program ?? 'ipvsadm';
  }

  async backend(): Promise<CtlBackend> {
    if (this.#backend) return this.#backend;
    const b = this.io.backend;
    this.#backend = typeof b === 'function' ? await b() : b;
    return this.#backend;
  }

  /** Reports the replies of pipelined commands, in order; the last one sets `last`. */
  async drain(): Promise<void> {
    const q = this.pipeline;
    if (!q) return;
    while (q.length > 0) {
      const { op, reply } = q.shift()!;
      const e = await reply;
      if (e === null) {
        this.last = 0;
        continue;
      }
      if (isUnavailable(e)) throw e;
      this.io.stderr.write(`${errorText(op, e)}\n`);
      this.last = 255;
    }
  }

  close(): void {
    if (typeof this.io.backend === 'function') this.#backend?.close();
  }
}

/** Service identity of a parsed entry. */
function serviceKey(ce: AdmEntry): ServiceKey {
  const s = ce.svc;
  const af = s.af === 10 ? 10 : 2;
  if (s.fwmark) return { af, protocol: 6, addr: '', port: 0, fwmark: s.fwmark };
  return {
    af,
    protocol: s.protocol,
    addr: s.addr || (af === 10 ? '::' : '0.0.0.0'),
    port: s.port,
    fwmark: 0,
  };
}

function serviceSpec(ce: AdmEntry): ServiceSpec {
  const s = ce.svc;
  return {
    ...serviceKey(ce),
    scheduler: s.sched,
    flags: s.flags,
    timeout: s.timeout,
    netmask: s.netmask >>> 0,
    pe: s.pe,
    ...(Object.keys(s.ext).length ? { ext: { ...s.ext } } : {}),
  };
}

function destKey(ce: AdmEntry): DestKey {
  const d = ce.dest;
  return { af: d.af === 10 ? 10 : 2, addr: d.addr, port: d.port };
}

function destSpec(ce: AdmEntry): DestSpec {
  return destSpecOf(ce.dest);
}

function daemonSpec(ce: AdmEntry): DaemonSpec {
  const d = ce.daemon;
  const spec: DaemonSpec = { state: d.state === 2 ? 2 : 1, mcastIfn: d.ifn, syncId: d.syncId };
  if (d.maxlen) spec.syncMaxlen = d.maxlen;
  if (d.group) spec.mcastGroup = d.group;
  if (d.port) spec.mcastPort = d.port;
  if (d.ttl) spec.mcastTtl = d.ttl;
  return spec;
}

/** The message ipvsadm prints for a failed operation. */
export function errorText(op: AdmOp, e: unknown): string {
  if (e instanceof IpvsError) {
    if (CORE_CODES.has(e.code)) return ipvsStrerror(op, e.errno);
    return e.ipvsadmMessage || e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

function isUnavailable(e: unknown): boolean {
  return (
    e instanceof BackendUnavailable ||
    (e instanceof IpvsError &&
      (e.code === 'IPVS_ERR_NO_DAEMON_SOCKET' || e.code === 'IPVS_ERR_PERMISSION'))
  );
}

/** Commands that are one control command and print nothing but their error (pipelined in -R). */
const KERNEL_COMMANDS: ReadonlySet<number> = new Set([
  O.CMD_FLUSH,
  O.CMD_ADD,
  O.CMD_EDIT,
  O.CMD_DEL,
  O.CMD_ZERO,
  O.CMD_ADDDEST,
  O.CMD_EDITDEST,
  O.CMD_DELDEST,
  O.CMD_TIMEOUT,
  O.CMD_STARTDAEMON,
  O.CMD_STOPDAEMON,
]);

/** Runs one command; returns the status or throws AdmExit for exits. */
async function call<T>(sess: Session, _op: AdmOp, cmd: Command): Promise<T> {
  const b = await sess.backend();
  return (await b.call(cmd)) as T;
}

/** Looks up host names for every address in a listing, unless numeric. */
async function prepareNames(
  sess: Session,
  format: number,
  addrs: Array<[number, string]>,
): Promise<F.Names> {
  if (format & O.FMT_NUMERIC) return F.NO_NAMES;
  const hosts = sess.hosts;
  const todo = new Map<string, [number, string]>();
  for (const [af, addr] of addrs) {
    const k = `${af}/${addr}`;
    if (!hosts.has(k)) todo.set(k, [af, addr]);
  }
  await Promise.all(
    [...todo].map(async ([k, [af, addr]]) => {
      hosts.set(k, await sess.resolver.addrToHost(af, addr).catch(() => null));
    }),
  );
  return {
    host: (af, addr) => hosts.get(`${af}/${addr}`) ?? null,
    service: (port, proto) => (proto ? sess.resolver.portToService(port, proto) : null),
  };
}

function serviceAddrs(list: ServiceInfo[]): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (const s of list) {
    if (!s.fwmark) out.push([s.af, s.addr]);
    for (const d of s.dests) out.push([d.af, d.addr]);
  }
  return out;
}

function connAddrs(list: ConnInfo[]): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (const c of list) out.push([c.af, c.caddr], [c.af, F.connVaddr(c)], [c.daf, c.daddr]);
  return out;
}

async function listAll(sess: Session, format: number): Promise<void> {
  let info;
  let services: ServiceInfo[];
  try {
    info = await call<{ version: number; connTabSize: number }>(sess, 'other', { cmd: 'getInfo' });
    services = await call<ServiceInfo[]>(sess, 'getServices', { cmd: 'getServices' });
  } catch (e) {
    if (isUnavailable(e)) throw e;
    throw new AdmExit(1, { stderr: `${errorText('getServices', e)}\n` });
  }
  const names = await prepareNames(sess, format, serviceAddrs(services));
  sess.io.stdout.write(F.listAll(info, services, format, names));
}

/** ipvsadm's process_options for one argument vector (without the program name). */
async function processOptions(
  sess: Session,
  args: readonly string[],
  readingStdin: boolean,
): Promise<number> {
  let ce: AdmEntry;
  try {
    ce = await parseAdm(args, sess.resolver, sess.program);
  } catch (e) {
    await sess.drain();
    if (e instanceof AdmExit && !e.abort) {
      sess.io.stdout.write(e.stdout);
      sess.io.stderr.write(e.stderr);
      return e.status;
    }
    throw e;
  }
  const fmt = ce.format;
  const kernel = async (op: AdmOp, cmd: Command): Promise<number> => {
    if (sess.pipeline) {
      const b = await sess.backend();
      const reply = b.call(cmd).then(
        () => null,
        (e: unknown) => e ?? new Error('unknown error'),
      );
      sess.pipeline.push({ op, reply });
      return PENDING;
    }
    try {
      await call(sess, op, cmd);
      return 0;
    } catch (e) {
      if (isUnavailable(e)) throw e;
      sess.io.stderr.write(`${errorText(op, e)}\n`);
      return 255;
    }
  };
  if (!KERNEL_COMMANDS.has(ce.cmd)) await sess.drain();
  switch (ce.cmd) {
    case O.CMD_LIST: {
      const has = (k: number) => ce.options.has(k);
      if (has(O.OPTC_CONNECTION)) {
        // in pages, as ipvsadm reads /proc/net/ip_vs_conn: the daemon never builds the whole
        // listing of a million connections at once, and keeps forwarding between pages
        let from = 0;
        let out = F.connsHeader(fmt);
        do {
          let page: { conns: ConnInfo[]; next: number };
          try {
            page = await call<{ conns: ConnInfo[]; next: number }>(sess, 'other', {
              cmd: 'getConnsPage',
              from,
              max: CONN_PAGE,
            });
          } catch (e) {
            if (isUnavailable(e)) throw e;
            throw new AdmExit(1, { stderr: `${errorText('other', e)}\n` });
          }
          const names = await prepareNames(sess, fmt, connAddrs(page.conns));
          for (const c of page.conns) out += F.connRow(c, fmt, names);
          // each page is printed before the next is asked for, as ipvsadm prints the rows of
          // /proc/net/ip_vs_conn as it reads them; a reader that went away ends the listing
          await sess.io.stdout.write(out);
          out = '';
          if (sess.io.stdout.broken?.()) break;
          from = page.next;
        } while (from >= 0);
      } else if (has(O.OPTC_SERVICE)) {
        let se: ServiceInfo;
        try {
          se = await call<ServiceInfo>(sess, 'getService', {
            cmd: 'getService',
            service: serviceKey(ce),
          });
        } catch (e) {
          if (isUnavailable(e)) throw e;
          throw new AdmExit(1, { stderr: `${errorText('getService', e)}\n` });
        }
        const names = await prepareNames(sess, fmt, serviceAddrs([se]));
        sess.io.stdout.write(F.listService(se, fmt, names));
      } else if (has(O.OPTC_TIMEOUT)) {
        try {
          const t = await call<{ tcp: number; tcpfin: number; udp: number }>(sess, 'other', {
            cmd: 'getConfig',
          });
          sess.io.stdout.write(F.listTimeout(t));
        } catch (e) {
          if (isUnavailable(e)) throw e;
          throw new AdmExit(1);
        }
      } else if (has(O.OPTC_DAEMON)) {
        try {
          const d = await call<DaemonSpec[]>(sess, 'other', { cmd: 'getDaemons' });
          sess.io.stdout.write(F.listDaemon(d));
        } catch (e) {
          if (isUnavailable(e)) throw e;
          throw new AdmExit(1);
        }
      } else {
        await listAll(sess, fmt);
      }
      return 0;
    }
    case O.CMD_RESTORE:
      if (readingStdin) throw new AdmExit(255, { stderr: tryHelpText(sess.program) });
      return restoreText(sess, sess.io.readStdin ? await sess.io.readStdin() : '');
    case O.CMD_SAVE:
      await listAll(sess, fmt | O.FMT_RULE);
      return 0;
    case O.CMD_FLUSH:
      return kernel('flush', { cmd: 'flush' });
    case O.CMD_ADD:
      return kernel('addService', { cmd: 'newService', service: serviceSpec(ce) });
    case O.CMD_EDIT:
      return kernel('updateService', { cmd: 'setService', service: serviceSpec(ce) });
    case O.CMD_DEL:
      return kernel('delService', { cmd: 'delService', service: serviceKey(ce) });
    case O.CMD_ZERO: {
      const s = ce.svc;
      const anyAddr = s.addr === '' || s.addr === '0.0.0.0' || s.addr === '::';
      if (s.fwmark || !anyAddr || s.port)
        return kernel('zeroService', { cmd: 'zero', service: serviceKey(ce) });
      return kernel('zeroService', { cmd: 'zero' });
    }
    case O.CMD_ADDDEST:
      return kernel('addDest', { cmd: 'newDest', service: serviceKey(ce), dest: destSpec(ce) });
    case O.CMD_EDITDEST:
      return kernel('updateDest', { cmd: 'setDest', service: serviceKey(ce), dest: destSpec(ce) });
    case O.CMD_DELDEST:
      return kernel('delDest', { cmd: 'delDest', service: serviceKey(ce), dest: destKey(ce) });
    case O.CMD_TIMEOUT:
      return kernel('setTimeout', { cmd: 'setConfig', timeouts: { ...ce.timeouts } });
    case O.CMD_STARTDAEMON:
      return kernel('startDaemon', { cmd: 'newDaemon', daemon: daemonSpec(ce) });
    case O.CMD_STOPDAEMON:
      return kernel('stopDaemon', { cmd: 'delDaemon', state: ce.daemon.state === 2 ? 2 : 1 });
    default:
      return 0;
  }
}

/**
 * Splits restore input the way ipvsadm's config_stream_read does: one command per line, tokens
 * separated by spaces, tabs or CRs, every token `ipvsadm` dropped, lines without tokens skipped.
 * A last line without its newline that ends in two or more separators is lost, as there: its
 * reader meets the end of input while skipping the second one and discards what it has read.
 */
export function restoreLines(text: string): string[][] {
  const out: string[][] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (i === lines.length - 1 && /[ \t\r]{2}$/.test(line)) break;
    const toks = line.split(/[ \t\r]+/).filter((t) => t !== '' && t !== 'ipvsadm');
    if (toks.length > 0) out.push(toks);
  }
  return out;
}

/**
 * `-R`: runs every line; the kernel commands are pipelined (sent at once, replies reported in
 * order as ipvsadm would print them), so a large restore costs the daemon one state-file write
 * per burst instead of one per line. The status is the last line's, as in ipvsadm.
 */
async function restoreText(sess: Session, text: string): Promise<number> {
  sess.pipeline = [];
  sess.last = 0;
  try {
    for (const toks of restoreLines(text)) {
      const status = await processOptions(sess, toks, true);
      if (status !== PENDING) sess.last = status;
    }
    await sess.drain();
    return sess.last;
  } finally {
    sess.pipeline = null;
  }
}

function unavailableText(e: unknown): string {
  const detail = e instanceof Error ? e.message : String(e);
  if (e instanceof IpvsError && e.code === 'IPVS_ERR_PERMISSION')
    // what ipvsadm says to a user who may not talk to IPVS, plus which socket
    return (
      `Can't initialize ipvs: ${ipvsStrerror('other', 'EPERM')}\n` +
      `${detail}: only the user who runs the ipvs-ts daemon (or root) may use it.\n`
    );
  return (
    `Can't initialize ipvs: ${detail}\n` +
    'Is the ipvs-ts daemon running? Start it with `ipvs daemon` (add `--control PATH` to both\n' +
    'commands, or set IPVS_CONTROL, to use another control socket).\n'
  );
}

/**
 * Runs ipvsadm with `args` (without the program name) and returns its exit status; output goes to
 * `io`. Never throws for anything ipvsadm would report.
 */
export async function runAdm(args: readonly string[], io: AdmIo): Promise<number> {
  const sess = new Session(io);
  try {
    if (args.length === 0) {
      await listAll(sess, O.FMT_NONE);
      return 0;
    }
    return (await processOptions(sess, args, false)) & 0xff;
  } catch (e) {
    return reportExit(e, io).status;
  } finally {
    sess.close();
  }
}

/** Prints how a command ended by an exception; returns its status and whether -R stops here. */
function reportExit(e: unknown, io: AdmIo): { status: number; abort: boolean } {
  if (e instanceof AdmExit) {
    io.stdout.write(e.stdout);
    io.stderr.write(e.stderr);
    return { status: e.status, abort: e.abort };
  }
  if (isUnavailable(e)) {
    io.stderr.write(unavailableText(e));
    return { status: 2, abort: true };
  }
  io.stderr.write(`${errorText('other', e)}\n`);
  return { status: 255, abort: false };
}

/**
 * Runs one line of `-R` input (tokens as `restoreLines` splits it; a nested `-R` is refused) and
 * returns its status and whether `ipvsadm -R` would stop there (a validation error: ipvsadm
 * exits). For callers that need each line's result, such as rules files.
 */
export async function runRestoreLine(
  args: readonly string[],
  io: AdmIo,
): Promise<{ status: number; abort: boolean }> {
  const sess = new Session(io);
  try {
    return { status: (await processOptions(sess, args, true)) & 0xff, abort: false };
  } catch (e) {
    return reportExit(e, io);
  } finally {
    sess.close();
  }
}
