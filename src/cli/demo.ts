/**
 * `ipvs demo [--port N] [--control PATH]`: a working load balancer with no configuration. Starts
 * the daemon in this process with the proxy data plane, three demo HTTP backends on loopback (each
 * answers with its own name), and a weighted round-robin virtual service on 127.0.0.1:8080; prints
 * the URL and the `ipvs adm -Ln` table, then serves until Ctrl-C. `ipvs adm` from another shell
 * talks to it over the usual control socket.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Daemon } from './daemon.js';
import { runAdm } from './adm/run.js';
import type { DestSpec, ServiceSpec } from '../ctl/types.js';

const USAGE = 'Usage: ipvs demo [--port N] [--control PATH]\n';

/** Parsed `ipvs demo` options. */
export interface DemoOptions {
  port: number;
  control: string | undefined;
}

/** Parses demo arguments; returns a message on error. */
export function parseDemoArgs(args: readonly string[]): DemoOptions | string {
  const o: DemoOptions = { port: 8080, control: undefined };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (name === '--help' || name === '-h') return USAGE;
    const v = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (name === '--port') {
      const p = Number(v);
      if (!Number.isInteger(p) || p < 1 || p > 65535)
        return `ipvs demo: --port needs a port number 1..65535\n${USAGE}`;
      o.port = p;
    } else if (name === '--control') {
      if (!v) return `ipvs demo: --control needs a path\n${USAGE}`;
      o.control = v;
    } else return `ipvs demo: unknown option '${a}'\n${USAGE}`;
  }
  return o;
}

/** The demo's backends: name and weight. */
export const DEMO_BACKENDS = [
  { name: 'backend-1', weight: 2 },
  { name: 'backend-2', weight: 1 },
  { name: 'backend-3', weight: 1 },
] as const;

/** A running demo (used by `ipvs demo` and its tests). */
export interface Demo {
  daemon: Daemon;
  url: string;
  backends: { name: string; port: number; server: http.Server }[];
  /** The `ipvs adm -Ln` table. */
  table(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts the demo: backends, daemon with the proxy plane, the virtual service. */
export async function startDemo(o: DemoOptions, log: (msg: string) => void): Promise<Demo> {
  const backends: Demo['backends'] = [];
  const closeBackends = async (): Promise<void> => {
    for (const b of backends) {
      b.server.closeAllConnections();
      await new Promise<void>((r) => b.server.close(() => r()));
    }
  };
  try {
    for (const { name } of DEMO_BACKENDS) {
      const server = http.createServer((req, res) => {
        const body = `Hello from ${name} (127.0.0.1:${port})\n`;
        void req;
        res.writeHead(200, {
          'content-type': 'text/plain',
          'content-length': Buffer.byteLength(body),
          'x-backend': name,
        });
        res.end(body);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const port = (server.address() as AddressInfo).port;
      backends.push({ name, port, server });
    }
  } catch (e) {
    await closeBackends();
    throw e;
  }
  let daemon: Daemon;
  try {
    daemon = await Daemon.start(
      { dataplane: 'proxy', control: o.control, rules: undefined, stateFile: undefined },
      log,
    );
  } catch (e) {
    await closeBackends();
    throw e;
  }
  const service: ServiceSpec = {
    af: 2,
    protocol: 6,
    addr: '127.0.0.1',
    port: o.port,
    fwmark: 0,
    scheduler: 'wrr',
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    pe: '',
  };
  try {
    daemon.controller.run({ cmd: 'newService', service });
    // added last-first so `ipvs adm -Ln` (newest first) lists backend-1 at the top
    for (let i = backends.length - 1; i >= 0; i--) {
      const dest: DestSpec = {
        addr: '127.0.0.1',
        port: backends[i]!.port,
        fwd: 0,
        weight: DEMO_BACKENDS[i]!.weight,
        uThreshold: 0,
        lThreshold: 0,
        tunType: 0,
        tunPort: 0,
        tunFlags: 0,
      };
      daemon.controller.run({ cmd: 'newDest', service, dest });
    }
  } catch (e) {
    await daemon.stop(0);
    await closeBackends();
    throw e;
  }
  const table = async (): Promise<string> => {
    let out = '';
    await runAdm(['-Ln'], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (out += s) },
      backend: daemon.controller.backend(),
    });
    return out;
  };
  return {
    daemon,
    url: `http://127.0.0.1:${o.port}/`,
    backends,
    table,
    stop: async () => {
      await daemon.stop(2000);
      await closeBackends();
    },
  };
}

/** `ipvs demo …`: runs until SIGINT/SIGTERM; resolves with the exit status. */
export async function runDemo(args: readonly string[]): Promise<number> {
  const parsed = parseDemoArgs(args);
  if (typeof parsed === 'string') {
    (parsed === USAGE ? process.stdout : process.stderr).write(parsed);
    return parsed === USAGE ? 0 : 2;
  }
  const log = (m: string): void => {
    process.stderr.write(`ipvs demo: ${m}\n`);
  };
  let demo: Demo;
  try {
    demo = await startDemo(parsed, log);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    log(msg);
    if (/already listening on the control socket/i.test(msg)) {
      log('another ipvs daemon is running; stop it or pass --control PATH');
    }
    return 1;
  }
  const ctl = parsed.control ? ` --control ${parsed.control}` : '';
  process.stdout.write(
    `\nipvs-ts demo: a load balancer on ${demo.url} in front of ${demo.backends.length} backends ` +
      '(weighted round robin, proxy data plane)\n\n' +
      (await demo.table()) +
      `\nTry it:\n  curl ${demo.url}        (repeat: the backends take turns, backend-1 twice as often)\n` +
      `  ipvs adm${ctl} -Ln --stats   (in another shell)\n  ipvs adm${ctl} -L -c\n\nCtrl-C to stop.\n`,
  );
  return new Promise<number>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      log('stopping');
      demo.stop().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
