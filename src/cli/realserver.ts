/**
 * `ipvs realserver --decap ipip|gue|gre[,…] --iface IF [--gue-port N] [--tun NAME] [--vip ADDR]…
 * [--setup-host] [--stats-interval SEC]`: the real-server side of tunnelling for hosts whose kernel
 * lacks the tunnel modules. Receives encapsulated frames on IF, strips the outer headers and hands
 * the inner packets to the local stack through a TUN device, so a server with the VIP on `lo`
 * answers the client directly. Runs in the foreground, logs to stderr, prints its counters on
 * SIGUSR2 (SIGUSR1 would start Node's inspector) and when it stops (SIGINT/SIGTERM). See
 * docs/realserver.md.
 */
import { parseIp, type IpAddr } from '../core/addr.js';
import { IpvsError } from '../core/errors.js';
import { DECAP_TYPES, type DecapType } from '../realserver/decap.js';
import { DEFAULT_TUN_NAME, RealServer, type RealServerOptions } from '../realserver/server.js';

/** Where `runRealserver` writes, and how a caller (a test, an embedding) stops it. */
export interface RealserverIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** Aborting stops the real server as SIGTERM does. */
  signal?: AbortSignal;
  /** Called once the real server runs (tests read its counters). */
  onReady?: (rs: RealServer) => void;
  /** Listen for SIGINT/SIGTERM/SIGUSR2 (default true). */
  signals?: boolean;
}

export const REALSERVER_USAGE =
  'Usage: ipvs realserver --decap ipip|gue|gre[,...] --iface IF [--gue-port N] [--tun NAME]\n' +
  '                       [--vip ADDR]... [--setup-host] [--stats-interval SEC]\n\n' +
  '  --decap T        tunnel types to decapsulate (comma-separated)\n' +
  '  --iface IF       interface the encapsulated frames arrive on\n' +
  "  --gue-port N     UDP port of GUE (the director's --tun-port); required with gue\n" +
  `  --tun NAME       TUN device for the inner packets (default ${DEFAULT_TUN_NAME})\n` +
  '  --vip ADDR       a virtual address this server answers for (checked; repeatable)\n' +
  '  --setup-host     also set all.rp_filter=0, arp_ignore=1, arp_announce=2, add --vip to lo\n' +
  '  --stats-interval SEC  log the counters every SEC seconds\n';

/** Parsed `ipvs realserver` options. */
export interface RealserverArgs extends RealServerOptions {
  statsInterval: number;
}

/** Parses the arguments; returns a usage message on error. */
export function parseRealserverArgs(args: readonly string[]): RealserverArgs | string {
  const bad = (m: string) => `ipvs realserver: ${m}\n${REALSERVER_USAGE}`;
  let types: DecapType[] | undefined;
  let iface: string | undefined;
  let guePort: number | undefined;
  let tun: string | undefined;
  let setupHost = false;
  let statsInterval = 0;
  const vips: IpAddr[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (name === '--setup-host') {
      setupHost = true;
      continue;
    }
    const known = ['--decap', '--iface', '--gue-port', '--tun', '--vip', '--stats-interval'];
    if (!known.includes(name)) return bad(`unknown option '${a}'`);
    const v = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (v === undefined || v === '') return bad(`option '${name}' needs a value`);
    switch (name) {
      case '--decap': {
        const list = v.split(',').map((s) => s.trim().toLowerCase());
        const unknown = list.filter((t) => !(DECAP_TYPES as readonly string[]).includes(t));
        if (unknown.length > 0)
          return bad(`unknown tunnel type '${unknown[0]}' (ipip, gue or gre)`);
        types = [...new Set(list)] as DecapType[];
        break;
      }
      case '--iface':
        if (v.length > 15 || /[/\s]/.test(v)) return bad(`invalid interface name '${v}'`);
        iface = v;
        break;
      case '--gue-port': {
        const n = /^\d+$/.test(v) ? Number(v) : NaN;
        if (!(n >= 1 && n <= 65535)) return bad(`--gue-port must be 1..65535, not '${v}'`);
        guePort = n;
        break;
      }
      case '--tun':
        if (v.length > 15 || /[/\s]/.test(v)) return bad(`invalid TUN device name '${v}'`);
        tun = v;
        break;
      case '--vip': {
        const p = parseIp(v);
        if (!p) return bad(`--vip '${v}' is not an IPv4 or IPv6 address`);
        vips.push(p);
        break;
      }
      case '--stats-interval': {
        const n = Number(v);
        if (!(n > 0)) return bad(`--stats-interval must be a positive number of seconds`);
        statsInterval = n;
        break;
      }
    }
  }
  if (!types) return bad('--decap is required');
  if (!iface) return bad('--iface is required');
  if (types.includes('gue') && guePort === undefined)
    return bad('--decap gue needs --gue-port (GUE has no default port)');
  if (!types.includes('gue') && guePort !== undefined)
    return bad('--gue-port is only for --decap gue');
  return { types, iface, guePort, tun, vips, setupHost, statsInterval };
}

/** `ipvs realserver …`: runs until SIGINT/SIGTERM (or `io.signal`); resolves with the exit status. */
export async function runRealserver(
  argv: readonly string[],
  io: RealserverIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(REALSERVER_USAGE);
    return 0;
  }
  const log = (m: string) => io.stderr.write(`ipvs realserver: ${m}\n`);
  const parsed = parseRealserverArgs(argv);
  if (typeof parsed === 'string') {
    io.stderr.write(parsed);
    return 2;
  }
  // Signal handlers go in before anything starts: the "decapsulating" line may be read (and a
  // signal sent) before start() returns, and an unhandled SIGUSR2 would kill the process.
  let rs: RealServer | undefined;
  let stopReason: string | undefined;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => (finish = resolve));
  const useSignals = io.signals !== false;
  let stats: NodeJS.Timeout | undefined;
  const printCounters = () => {
    if (rs) log(`counters ${JSON.stringify(rs.counters())}`);
  };
  const detach = () => {
    if (stats) clearInterval(stats);
    if (useSignals) {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      process.off('SIGUSR2', printCounters);
    }
    io.signal?.removeEventListener('abort', onAbort);
  };
  const stop = (why: string) => {
    if (stopReason !== undefined) return;
    stopReason = why;
    if (!rs) return; // still starting: stopped as soon as it runs
    detach();
    log(`${why}: stopping`);
    printCounters();
    rs.stop().then(
      () => finish(0),
      (e: unknown) => {
        log(`error while stopping: ${e instanceof Error ? e.message : String(e)}`);
        finish(1);
      },
    );
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
  const onAbort = () => stop('aborted');
  if (useSignals) {
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    process.on('SIGUSR2', printCounters);
  }
  io.signal?.addEventListener('abort', onAbort);
  try {
    rs = await RealServer.start({ ...parsed, log });
  } catch (e) {
    detach();
    if (e instanceof IpvsError) log(`${e.code}: ${e.message}`);
    else log(e instanceof Error ? e.message : String(e));
    return 1;
  }
  io.onReady?.(rs);
  if (parsed.statsInterval > 0) stats = setInterval(printCounters, parsed.statsInterval * 1000);
  if (io.signal?.aborted) stopReason ??= 'aborted';
  if (stopReason !== undefined) {
    const why = stopReason;
    stopReason = undefined;
    stop(why);
  }
  return done;
}
