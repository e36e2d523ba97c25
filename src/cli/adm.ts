/**
 * `ipvs adm [--control PATH] <ipvsadm arguments>` (and `bin/ipvsadm`): ipvsadm against the daemon
 * over the control socket.
 */
import { ControlClient } from '../ctl/client.js';
import { controlPath } from '../ctl/paths.js';
import { runAdm } from './adm/run.js';

async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Splits a leading `--control PATH` / `--control=PATH` off the ipvsadm arguments. */
export function splitControl(args: readonly string[]): {
  control: string | undefined;
  rest: string[];
} {
  const a = [...args];
  let control: string | undefined;
  if (a[0] === '--control' && a.length >= 2) {
    control = a[1];
    a.splice(0, 2);
  } else if (a[0]?.startsWith('--control=')) {
    control = a[0].slice('--control='.length);
    a.splice(0, 1);
  }
  return { control, rest: a };
}

/**
 * `ipvs adm` arguments for a wrapper that runs one ipvsadm command (`ipvsadm-save` is `-S`):
 * the command goes after a leading `--control PATH`, before the user's other arguments.
 */
export function admWithCommand(command: string, args: readonly string[]): string[] {
  const { control, rest } = splitControl(args);
  return control === undefined ? [command, ...rest] : [`--control=${control}`, command, ...rest];
}

/**
 * `ipvsadm-restore`, as the wrapper ipvsadm installs (spec §10.7): stdin without the lines that
 * start with `#`, the table flushed with `-C`, then `-R` with what is left. Like the wrapper, it
 * takes no arguments but `--control PATH`; its status is `-R`'s.
 */
export async function runRestoreCli(args: readonly string[]): Promise<number> {
  const { control, rest } = splitControl(args);
  if (control === '' || (control === undefined && rest[0] === '--control'))
    return runAdmCli(['--control']); // its message for a --control without a PATH
  const head = control === undefined ? [] : ['--control', control];
  const text = await readAllStdin();
  // the shell's "$(grep -v '^#')" drops trailing newlines and `echo` adds one back
  const kept = text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n')
    .replace(/\n+$/, '');
  await runAdmCli([...head, '-C']);
  return runAdmCli([...head, '-R'], async () => `${kept}\n`);
}

/** Runs `ipvs adm` in this process; resolves with the exit status. */
export async function runAdmCli(
  args: readonly string[],
  readStdin: () => Promise<string> = readAllStdin,
): Promise<number> {
  const { control, rest } = splitControl(args);
  if (control === '' || (control === undefined && rest[0] === '--control')) {
    process.stderr.write(
      'ipvs adm: --control needs a PATH: ipvs adm --control PATH <ipvsadm args>\n',
    );
    return 2;
  }
  const path = controlPath(control);
  let err = '';
  const stdout = new StreamedStdout();
  const status = await runAdm(rest, {
    stdout,
    stderr: { write: (s: string) => (err += s) },
    readStdin,
    backend: () => ControlClient.connect(path),
  });
  await stdout.flushed();
  await new Promise<void>((resolve) => process.stderr.write(err, () => resolve()));
  return stdout.brokenPipe ? SIGPIPE_STATUS : status;
}

/**
 * Standard output as `runAdm` writes it: each write goes out at once (a listing of a million
 * connections is printed page by page, never held whole), and a write the pipe cannot take yet
 * returns a promise that settles when it drains. A reader that went away (`ipvs adm -Lnc | head`)
 * ends the output quietly, as SIGPIPE ends ipvsadm.
 */
class StreamedStdout {
  brokenPipe = false;
  #last: Promise<void> = Promise.resolve();

  constructor() {
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      this.brokenPipe = true;
    });
  }

  write(s: string): Promise<void> | undefined {
    if (this.brokenPipe || s === '') return undefined;
    let settle!: () => void;
    this.#last = new Promise<void>((resolve) => (settle = resolve));
    const more = process.stdout.write(s, (e) => {
      if ((e as NodeJS.ErrnoException | null | undefined)?.code === 'EPIPE') this.brokenPipe = true;
      settle();
    });
    return more ? undefined : this.#last;
  }

  broken(): boolean {
    return this.brokenPipe;
  }

  /** Settles once everything written has been handed to the pipe (or the pipe broke). */
  flushed(): Promise<void> {
    return this.#last;
  }
}

/** The status a shell reports for a process killed by SIGPIPE (128 + 13). */
const SIGPIPE_STATUS = 141;
