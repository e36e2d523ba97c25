/**
 * `ipvs daemon [--dataplane proxy|packet|none] [--iface IF …] [--route R …] [--control PATH] [--rules FILE] [--state-file FILE] [--http HOST:PORT]`:
 * runs in the foreground, logs to stderr, serves the control socket (and, with `--http`, the
 * read-only /metrics and /proc/net/ip_vs* texts over HTTP), keeps the state file, stops
 * cleanly on SIGINT/SIGTERM. The control socket is checked first (a second daemon on it is refused
 * before any configuration is loaded); a start that fails closes whatever it had opened. If the state file exists it is restored and `--rules` is not applied
 * (the state file holds every change acknowledged since the rules were first loaded); otherwise
 * the rules file is applied and the state file written.
 */
import { IpvsError } from '../core/errors.js';
import { Ipvs } from '../core/ipvs.js';
import { DATAPLANE_FACTORIES, type DataplaneArgs } from '../dataplane/index.js';
import { hugeTableAlloc } from '../dataplane/io/native.js';
import { hostAvailMemPages } from './meminfo.js';
import { Controller } from '../ctl/controller.js';
import { NoneDataplane, type Dataplane } from '../ctl/dataplane.js';
import { StateFileError, UnknownDataplaneError } from '../ctl/errors.js';
import {
  formatHttpAddress,
  HttpServer,
  parseHttpAddress,
  type ObservabilitySource,
} from '../ctl/http.js';
import { controlPath } from '../ctl/paths.js';
import { checkControlPath, ControlServer } from '../ctl/server.js';
import { loadRulesFile } from '../config/rules.js';
import { applyState, readStateFile, writeStateFile } from '../config/state.js';
import { SyncRunner } from '../sync/runner.js';
import { counterMetrics, type PlaneMetric } from '../metrics/prometheus.js';
import { MASTER_COUNTER_HELP, type SyncMasterCounters } from '../sync/master.js';
import { BACKUP_COUNTER_HELP, type SyncBackupCounters } from '../sync/backup.js';
import type { Command } from '../ctl/types.js';

/** Data planes by name; a plane's issue adds its line here. */
export const DATAPLANES: Record<string, (args?: DataplaneArgs) => Promise<Dataplane>> = {
  none: async () => new NoneDataplane(),
  ...DATAPLANE_FACTORIES,
};

/** Default data plane: the proxy, which needs no privileges. */
export const DEFAULT_DATAPLANE = 'proxy';

/** Parsed daemon options. */
export interface DaemonOptions {
  dataplane: string;
  control: string | undefined;
  rules: string | undefined;
  stateFile: string | undefined;
  /** `--iface IF` (repeatable): interfaces of the packet data plane. */
  iface?: string[];
  /** `--route 'DST [via GW] dev IF'` (repeatable): extra routes of the packet data plane. */
  route?: string[];
  /** `--no-ingress-drop`: the packet data plane leaves the host kernel's copy of frames alone. */
  noIngressDrop?: boolean;
  /** `--http HOST:PORT`: the read-only HTTP listener (/metrics, /proc/net/ip_vs*). */
  http?: string;
  /** `--help`: print the usage and exit 0. */
  help?: boolean;
}

const USAGE =
  'Usage: ipvs daemon [--dataplane proxy|packet|none] [--iface IF …] [--route ROUTE …] [--no-ingress-drop]\n' +
  '                   [--control PATH] [--rules FILE] [--state-file FILE] [--http HOST:PORT]\n';

/** `ipvs daemon --help`. */
export const DAEMON_HELP =
  USAGE +
  `
Runs the load balancer in the foreground; logs to stderr; SIGINT/SIGTERM stop it cleanly.

  --dataplane NAME   proxy (default: TCP/UDP sockets, no privileges), packet (raw frames, root)
                     or none (control only)
  --control PATH     control socket (default: $IPVS_CONTROL, /run/ipvs-ts/ctl.sock as root,
                     else $XDG_RUNTIME_DIR/ipvs-ts/ctl.sock or <tmpdir>/ipvs-ts-<uid>/ctl.sock)
  --rules FILE       ipvsadm-save text applied at start (unless the state file exists)
  --state-file FILE  the configuration, saved after every change and restored at start
  --iface IF         (packet) an interface to attach to; repeatable
  --route ROUTE      (packet) 'DST [via GW] dev IF [mtu N] [src ADDR]'; repeatable
  --no-ingress-drop  (packet) leave the host kernel's copy of forwarded frames alone
  --http HOST:PORT   read-only HTTP: GET /metrics (Prometheus) and /proc/net/ip_vs,
                     ip_vs_conn, ip_vs_conn_sync, ip_vs_stats, ip_vs_stats_percpu, ip_vs_app
                     (the kernel's texts); port 0 picks a free one (logged). No REST API or
                     dashboard yet

See docs/daemon.md.
`;

/** Parses daemon arguments; returns a message on error. */
export function parseDaemonArgs(args: readonly string[]): DaemonOptions | string {
  const o: DaemonOptions = {
    dataplane: DEFAULT_DATAPLANE,
    control: undefined,
    rules: undefined,
    stateFile: undefined,
  };
  const lists: Record<string, 'iface' | 'route'> = { '--iface': 'iface', '--route': 'route' };
  const keys: Record<string, 'dataplane' | 'control' | 'rules' | 'stateFile' | 'http'> = {
    '--http': 'http',
    '--dataplane': 'dataplane',
    '--control': 'control',
    '--rules': 'rules',
    '--state-file': 'stateFile',
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--no-ingress-drop') {
      o.noIngressDrop = true;
      continue;
    }
    if (a === '--help' || a === '-h') {
      o.help = true;
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    const key = keys[name];
    const list = lists[name];
    if (!key && !list) return `ipvs daemon: unknown option '${a}'\n${USAGE}`;
    const v = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (v === undefined || v === '') return `ipvs daemon: option '${name}' needs a value\n${USAGE}`;
    if (list) (o[list] ??= []).push(v);
    else o[key!] = v;
  }
  if ((o.iface || o.route || o.noIngressDrop) && o.dataplane !== 'packet')
    return `ipvs daemon: --iface, --route and --no-ingress-drop are options of --dataplane packet\n${USAGE}`;
  return o;
}

/** A running daemon (also usable in-process by tests and `ipvs demo`). */
export class Daemon {
  readonly ipvs: Ipvs;
  readonly controller: Controller;
  readonly plane: Dataplane;
  readonly server: ControlServer;
  /** The `--http` listener, null without `--http`. */
  readonly http: HttpServer | null;
  /** The sync daemon's sockets (`--start-daemon`). */
  readonly sync: SyncRunner;
  readonly #timer: NodeJS.Timeout;
  #stopped = false;

  private constructor(
    ipvs: Ipvs,
    controller: Controller,
    plane: Dataplane,
    server: ControlServer,
    http: HttpServer | null,
    sync: SyncRunner,
  ) {
    this.ipvs = ipvs;
    this.controller = controller;
    this.plane = plane;
    this.server = server;
    this.http = http;
    this.sync = sync;
    this.#timer = setInterval(() => ipvs.tick(), 100);
    this.#timer.unref();
  }

  /**
   * Loads state / rules, opens the control socket and starts the data plane. A failure closes
   * everything opened so far (listeners, sockets) before it is thrown, so the process can exit.
   */
  static async start(opts: DaemonOptions, log: (msg: string) => void): Promise<Daemon> {
    const httpAddr = opts.http !== undefined ? parseHttpAddress(opts.http) : null;
    const factory = DATAPLANES[opts.dataplane];
    if (!factory)
      throw new UnknownDataplaneError(
        `unknown data plane '${opts.dataplane}' (available: ${Object.keys(DATAPLANES).join(', ')})`,
      );
    const path = controlPath(opts.control);
    // refuse a second daemon before loading anything (its rules would fight over the listeners)
    await checkControlPath(path);
    const ipvs = new Ipvs({
      log: (m) => log(m),
      tableAlloc: hugeTableAlloc(),
      availMemPages: hostAvailMemPages,
    });
    let plane: Dataplane | undefined;
    let sync: SyncRunner | undefined;
    let server: ControlServer | undefined;
    let http: HttpServer | null = null;
    try {
      plane = await factory({
        ifaces: opts.iface ?? [],
        routes: opts.route ?? [],
        log,
        ingressDrop: !opts.noIngressDrop,
      });
      sync = new SyncRunner(ipvs, log);
      const controller = new Controller(ipvs, { plane, sync });
      // bound before any rule is applied: a taken port stops the start before anything else opens
      if (httpAddr) {
        http = await HttpServer.listen(
          httpAddr,
          observabilitySource(ipvs, controller, plane, sync),
          {
            log,
          },
        );
        log(`http listening on ${formatHttpAddress(http.address)}`);
      }
      const state = opts.stateFile ? readStateFile(opts.stateFile) : null;
      // sync daemons open sockets: they start once everything else is in place
      let daemons: Command[] = [];
      if (state) {
        daemons = state.commands.filter((c) => c.cmd === 'newDaemon');
        applyState(
          controller,
          { ...state, commands: state.commands.filter((c) => c.cmd !== 'newDaemon') },
          opts.stateFile,
        );
        log(`restored ${state.commands.length} commands from ${opts.stateFile}`);
        if (opts.rules) log(`state file present: --rules ${opts.rules} not applied`);
      } else if (opts.rules) {
        const r = await loadRulesFile(opts.rules, controller.backend());
        // each line of ipvsadm's output is a log line of its own (`FILE:LINE: message`)
        if (r.output) for (const line of r.output.trimEnd().split('\n')) log(line);
        if (r.status !== 0)
          throw new StateFileError(
            `rules file ${opts.rules} failed (the lines are named above); not started`,
          );
        log(`applied rules from ${opts.rules}`);
      }
      server = await ControlServer.listen(path, controller, { log });
      if (opts.stateFile) {
        const file = opts.stateFile;
        try {
          writeStateFile(file, ipvs);
        } catch (e) {
          throw new StateFileError(
            `cannot write the state file ${file}: ${e instanceof Error ? e.message : String(e)}`,
          );
        }
        controller.setCommit(() => writeStateFile(file, ipvs));
      }
      await plane.start(ipvs);
      for (const c of daemons) {
        try {
          await controller.runAsync(c);
        } catch (e) {
          log(
            `sync daemon from the state file not started: ${e instanceof Error ? e.message : String(e)}`,
          );
        }
      }
      log(`listening on ${path} (data plane ${plane.name})`);
      return new Daemon(ipvs, controller, plane, server, http, sync);
    } catch (e) {
      sync?.close();
      await http?.close();
      await server?.close();
      await plane?.stop(0).catch(() => {});
      ipvs.close();
      throw e;
    }
  }

  /** Stops everything; safe to call twice. */
  async stop(deadlineMs = 5000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.sync.close();
    await this.http?.close();
    await this.server.close();
    await this.plane.stop(deadlineMs);
    this.ipvs.close();
  }
}

/**
 * What the HTTP listener reads: services, info and connection pages through the controller (the
 * same read commands `ipvs adm` sends), the totals straight from core (no command carries them),
 * and the FTP helper's ports when the data plane has one.
 */
function observabilitySource(
  ipvs: Ipvs,
  controller: Controller,
  plane: Dataplane,
  sync: SyncRunner,
): ObservabilitySource {
  const backend = controller.backend();
  return {
    info: () => backend.call({ cmd: 'getInfo' }),
    services: () => backend.call({ cmd: 'getServices' }),
    connsPage: (from, max) => backend.call({ cmd: 'getConnsPage', from, max }),
    totals: () => {
      const t = ipvs.total;
      return {
        stats: t.snapshot(),
        raw: {
          conns: t.conns,
          inpkts: t.inpkts,
          outpkts: t.outpkts,
          inbytes: t.inbytes,
          outbytes: t.outbytes,
        },
        conns: ipvs.conns.count,
      };
    },
    apps: () => plane.apps?.() ?? [],
    extraMetrics: () => [...(plane.metrics?.() ?? []), ...syncMetrics(sync)],
  };
}

/**
 * The sync daemons' counters for `/metrics` (ipvs-ts extension; the kernel keeps none it shows):
 * `ipvs_sync_master_<counter>_total` and `ipvs_sync_backup_<counter>_total` while that daemon
 * runs (they start from 0 when it is started again).
 */
function syncMetrics(sync: SyncRunner): PlaneMetric[] {
  const out: PlaneMetric[] = [];
  if (sync.master)
    out.push(
      ...counterMetrics(
        'ipvs_sync_master_',
        sync.master.counters,
        (k) => `Sync master: ${MASTER_COUNTER_HELP[k as keyof SyncMasterCounters]}.`,
      ),
    );
  if (sync.backup)
    out.push(
      ...counterMetrics(
        'ipvs_sync_backup_',
        sync.backup.counters,
        (k) => `Sync backup: ${BACKUP_COUNTER_HELP[k as keyof SyncBackupCounters]}.`,
      ),
    );
  return out;
}

/** `ipvs daemon …`: runs until SIGINT/SIGTERM; resolves with the exit status. */
export async function runDaemon(args: readonly string[]): Promise<number> {
  const log = (m: string) => process.stderr.write(`ipvs daemon: ${m}\n`);
  const parsed = parseDaemonArgs(args);
  if (typeof parsed === 'string') {
    process.stderr.write(parsed);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(DAEMON_HELP);
    return 0;
  }
  // the data plane's counters on the log; installed before the start (whose log says the daemon
  // is listening), as without a handler the signal ends the process
  let started: Daemon | null = null;
  const onUsr2 = () => {
    if (started)
      log(
        started.plane.counterLine?.() ?? `${started.plane.name}: the data plane keeps no counters`,
      );
  };
  process.on('SIGUSR2', onUsr2);
  let daemon: Daemon;
  try {
    daemon = await Daemon.start(parsed, log);
    started = daemon;
  } catch (e) {
    process.off('SIGUSR2', onUsr2);
    // with its code, as every other refusal prints
    log(
      e instanceof IpvsError
        ? `${e.code}: ${e.message}`
        : e instanceof Error
          ? e.message
          : String(e),
    );
    return 1;
  }
  return new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      log(`${sig}: stopping`);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      process.off('SIGUSR2', onUsr2);
      daemon.stop().then(
        () => resolve(0),
        (e: unknown) => {
          log(`error while stopping: ${e instanceof Error ? e.message : String(e)}`);
          resolve(1);
        },
      );
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}
