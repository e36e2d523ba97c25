/**
 * The `ipvs` executable: a table of subcommands (`daemon`, `adm`, …; adding one is one line),
 * `--help` and `--version`. An unknown subcommand prints the help to stderr and exits 2.
 */
import { readFileSync } from 'node:fs';
import { runAdmCli } from './adm.js';
import { runDemo } from './demo.js';
import { runDaemon } from './daemon.js';
import { tuneJit } from './jit.js';
import { runMark } from './mark.js';
import { runRealserver } from './realserver.js';
import { runSysctl } from './sysctl.js';
import { runTrace } from './trace.js';

/** A subcommand: one-line summary and its runner (arguments after the subcommand name). */
export interface Subcommand {
  summary: string;
  run: (args: readonly string[]) => Promise<number>;
  /** Long-running: gets the JIT budgets of `jit.ts` before it starts. */
  hot?: boolean;
}

/** Every subcommand of `ipvs`. */
export const SUBCOMMANDS: Record<string, Subcommand> = {
  daemon: {
    summary: 'run the load balancer (control socket, state file, data plane) in the foreground',
    run: runDaemon,
    hot: true,
  },
  adm: {
    summary: 'ipvsadm-compatible administration: ipvs adm [--control PATH] <ipvsadm args>',
    run: runAdmCli,
  },
  demo: {
    summary: 'a working load balancer with three demo backends: ipvs demo [--port N]',
    run: runDemo,
    hot: true,
  },
  trace: {
    summary: 'replay a pcap capture through a director configured from rules and print every step',
    run: (args) => runTrace(args, { stdout: process.stdout, stderr: process.stderr }),
    hot: true,
  },
  mark: {
    summary:
      "fwmark classifier rules of the daemon: ipvs mark list|flush|add 'RULE'|del N|set FILE",
    run: (args) => runMark(args),
  },
  sysctl: {
    summary: 'the IPVS sysctls of the daemon, as sysctl(8): ipvs sysctl -a | NAME | -w NAME=VALUE',
    run: (args) => runSysctl(args),
  },
  realserver: {
    summary: 'real-server side of tunnelling: decapsulate IPIP/GUE/GRE into a TUN device',
    run: runRealserver,
    hot: true,
  },
};

/** The package version. */
export function version(): string {
  try {
    const url = new URL('../../../package.json', import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The help text. */
export function helpText(): string {
  const w = Math.max(...Object.keys(SUBCOMMANDS).map((k) => k.length));
  const lines = Object.entries(SUBCOMMANDS).map(([k, v]) => `  ${k.padEnd(w)}  ${v.summary}`);
  return (
    `ipvs ${version()}: IPVS, the Linux Virtual Server layer-4 load balancer, in user space\n\n` +
    'Usage: ipvs <command> [arguments]\n\nCommands:\n' +
    `${lines.join('\n')}\n\n` +
    'Options:\n  --help     show this help\n  --version  show the version\n'
  );
}

/** Runs `ipvs` with `argv` (without node and script); resolves with the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(helpText());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`ipvs ${version()}\n`);
    return 0;
  }
  const sub = name === undefined ? undefined : SUBCOMMANDS[name];
  if (!sub) {
    if (name !== undefined) process.stderr.write(`ipvs: unknown command '${name}'\n\n`);
    process.stderr.write(helpText());
    return 2;
  }
  if (sub.hot) tuneJit();
  return sub.run(rest);
}

/** The status a shell reports for a process killed by SIGPIPE (128 + 13). */
const SIGPIPE_STATUS = 141;

/**
 * The body of each executable in `bin/`: runs `run(argv)` (`main` unless the executable is a
 * wrapper of its own) and sets the exit status; an uncaught error is printed under the
 * executable's `name` with status 1.
 */
export function runBin(
  name: string,
  argv: readonly string[],
  run: (argv: readonly string[]) => Promise<number> = main,
): void {
  // a reader that went away (`ipvs sysctl -a | head`): the output stops quietly, the work goes on
  // (a pcap being written is finished) and the status is the shell's for SIGPIPE, as a C tool
  // that dies of it shows; a daemon whose log pipe closed goes on serving
  let brokenPipe = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    brokenPipe = true;
  });
  run(argv).then(
    (code) => {
      process.exitCode = brokenPipe ? SIGPIPE_STATUS : code;
    },
    (err: unknown) => {
      const text = err instanceof Error && err.stack ? err.stack : String(err);
      process.stderr.write(`${name}: ${text}\n`);
      process.exitCode = 1;
    },
  );
}
