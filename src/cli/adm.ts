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
  let out = '';
  let err = '';
  const status = await runAdm(rest, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    readStdin,
    backend: () => ControlClient.connect(path),
  });
  // a reader that went away (`ipvs adm -Ln | head`): ipvsadm would die of SIGPIPE, quietly
  let brokenPipe = false;
  const onError = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    brokenPipe = true;
  };
  process.stdout.on('error', onError);
  await new Promise<void>((resolve) =>
    process.stdout.write(out, (e) => {
      if ((e as NodeJS.ErrnoException | null | undefined)?.code === 'EPIPE') brokenPipe = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve) => process.stderr.write(err, () => resolve()));
  return brokenPipe ? SIGPIPE_STATUS : status;
}

/** The status a shell reports for a process killed by SIGPIPE (128 + 13). */
const SIGPIPE_STATUS = 141;
