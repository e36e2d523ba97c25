/**
 * `ipvs sysctl`: the IPVS sysctls of a running daemon (`/proc/sys/net/ipv4/vs/*` of the kernel,
 * spec §11) read and written the way sysctl(8) does it, so `sysctl -w net.ipv4.vs.X=Y` habits and
 * `/etc/sysctl.d` snippets carry over:
 *
 *   ipvs sysctl [--control PATH] [-n|-N] [-b] [-e] [-q] [--dry-run] -a [-r PATTERN] | NAME... |
 *               [-w] NAME=VALUE... | -p FILE... (or -f FILE, - for stdin)
 *
 * NAME is `net.ipv4.vs.NAME`, `net/ipv4/vs/NAME` or the bare `NAME`; `net.ipv4.vs` alone lists
 * them all (the directory, as sysctl(8) lists a subtree). In a `-p` file only
 * `net.ipv4.vs.*` keys are applied; the kernel's other knobs there are skipped). Values are text as
 * the kernel's handlers read them: an integer, `sync_threshold` as two integers, `est_cpulist` as
 * a CPU list. Output and messages are sysctl(8)'s, each error followed by a line with its code;
 * the status is 0, or 1 when any name or value was refused (the others still apply), 2 for usage.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { IpvsError, NoSysctlError, SysctlError } from '../core/errors.js';
import { SYSCTL_NAMES, type SysctlValue, kernelValue } from '../core/sysctl.js';
import type { CtlBackend } from '../ctl/backend.js';
import { ControlClient } from '../ctl/client.js';
import { controlPath } from '../ctl/paths.js';
import { splitControl } from './adm.js';

/** Where `runSysctl` writes and how it reaches the daemon (tests pass their own). */
export interface SysctlIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  backend?: () => Promise<CtlBackend>;
  readFile?: (path: string) => string;
  /** The names in a directory (`--system`); throws when it does not exist. */
  listDir?: (dir: string) => string[];
}

/** `--system`'s directories, by precedence (sysctl(8) "SYSTEM FILE PRECEDENCE"). */
const SYSTEM_DIRS = [
  '/etc/sysctl.d',
  '/run/sysctl.d',
  '/usr/local/lib/sysctl.d',
  '/usr/lib/sysctl.d',
  '/lib/sysctl.d',
];

const USAGE =
  'Usage: ipvs sysctl [--control PATH] [-n|-N] [-b] [-e] [-q] [--dry-run] -a [-r PATTERN] | NAME... |\n' +
  '                   [-w] NAME=VALUE... | -p [FILE...]\n' +
  '  NAME: net.ipv4.vs.NAME (or NAME); -n values only, -N names only, -b values without newline,\n' +
  '  -e ignore unknown names, -q quiet writes, --dry-run echo without writing, -r only names\n' +
  '  matching PATTERN (a regular expression), -p / -f FILE (- for stdin), --system: the\n' +
  '  sysctl.d directories and /etc/sysctl.conf\n';

const PREFIX = 'net.ipv4.vs.';
/** What `-p` without a file reads, as sysctl(8). */
const DEFAULT_CONF = '/etc/sysctl.conf';

/** The bare sysctl name of `key` (`net.ipv4.vs.x`, `net/ipv4/vs/x` or `x`). */
function bare(key: string): string {
  const k = key.trim().replace(/\//g, '.');
  return k.startsWith(PREFIX) ? k.slice(PREFIX.length) : k;
}

/** A value as sysctl(8) prints it (several integers tab-separated). */
function show(v: SysctlValue): string {
  return Array.isArray(v) ? v.join('\t') : String(v);
}

/**
 * The value `text` means for `name`, as the kernel's handler parses it; null when it is not one.
 * `sync_threshold` given one integer keeps its second (`current`), as the kernel's does.
 */
async function parseValue(
  name: string,
  text: string,
  current: () => Promise<SysctlValue>,
): Promise<SysctlValue | null> {
  const v = kernelValue(name, text);
  if (!Array.isArray(v) || v.length === 2) return v as SysctlValue | null;
  return [v[0]!, ((await current()) as number[])[1]!];
}

/** The shell pattern `glob` (`*`, `?`, `[…]`; `.` separates, as `/` does in the path). */
function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[^.]*';
    else if (c === '?') re += '[^.]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** sysctl(8)'s message for a name with no file under /proc/sys. */
function noSuch(key: string): string {
  return `sysctl: cannot stat /proc/sys/${key.trim().replace(/\./g, '/')}: No such file or directory`;
}

/** Runs `ipvs sysctl`; resolves with the exit status. */
export async function runSysctl(args: readonly string[], io?: SysctlIo): Promise<number> {
  const out = io?.stdout ?? process.stdout;
  const err = io?.stderr ?? process.stderr;
  const { control, rest } = splitControl(args);
  let valuesOnly = false;
  let ignoreUnknown = false;
  let quiet = false;
  let all = false;
  let write = false;
  let load = false;
  let namesOnly = false;
  let binary = false;
  let dryRun = false;
  let pattern: RegExp | null = null;
  let system = false;
  const files: string[] = [];
  const keys: string[] = [];
  // combined short flags, as sysctl(8) takes them: -nq, -qw, -qp FILE
  const argv = rest.flatMap((a) =>
    /^-[neqaAXwNb]+[pf]?$/.test(a) && a.length > 2 ? [...a.slice(1)].map((c) => `-${c}`) : [a],
  );
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      out.write(USAGE);
      return 0;
    }
    if (a === '-n' || a === '--values') valuesOnly = true;
    else if (a === '-e' || a === '--ignore') ignoreUnknown = true;
    else if (a === '-q' || a === '--quiet') quiet = true;
    else if (a === '-a' || a === '-A' || a === '-X' || a === '--all') all = true;
    else if (a === '-w' || a === '--write') write = true;
    else if (a === '-N' || a === '--names') namesOnly = true;
    else if (a === '-b' || a === '--binary') binary = true;
    else if (a === '--dry-run') dryRun = true;
    else if (a === '--system') system = true;
    else if (a === '-r' || a === '--pattern' || a.startsWith('--pattern=')) {
      const p = a.startsWith('--pattern=') ? a.slice(10) : argv[++i];
      if (p === undefined) {
        err.write(`ipvs sysctl: ${a} needs a PATTERN\n${USAGE}`);
        return 2;
      }
      try {
        pattern = new RegExp(p);
      } catch {
        err.write(`sysctl: ${p}: bad regular expression\n`);
        return 2;
      }
    } else if (a === '-p' || a === '-f' || a === '--load') load = true;
    else if (a.startsWith('--load=')) {
      load = true;
      files.push(a.slice(7));
    } else if ((a.startsWith('-p') || a.startsWith('-f')) && a.length > 2) {
      load = true;
      files.push(a.slice(2));
    } else if (a.startsWith('-') && a.length > 1) {
      err.write(`ipvs sysctl: unknown option '${a}'\n${USAGE}`);
      return 2;
    } else keys.push(a);
  }
  if (load) {
    // as sysctl(8): with -p every other argument is a file, and none means /etc/sysctl.conf
    files.push(...keys.splice(0));
    if (files.length === 0) files.push(DEFAULT_CONF);
  }
  const applying = new Set<string>();
  if (system) {
    // every *.conf of the directories, the first of a name winning, in name order; then
    // /etc/sysctl.conf; each announced as sysctl(8) does
    const list = io?.listDir ?? ((d: string) => readdirSync(d));
    const byName = new Map<string, string>();
    for (const d of SYSTEM_DIRS) {
      let names: string[];
      try {
        names = list(d);
      } catch {
        continue;
      }
      for (const n of names) if (n.endsWith('.conf') && !byName.has(n)) byName.set(n, `${d}/${n}`);
    }
    const found = [...byName.keys()].sort().map((n) => byName.get(n)!);
    for (const f of found) applying.add(f);
    files.push(...found, DEFAULT_CONF);
    applying.add(DEFAULT_CONF);
  }
  // the directory itself lists what is in it, as sysctl(8) lists a subtree
  if (!load && !write && keys.length > 0 && keys.every((k) => /^net[./]ipv4[./]vs[./]?$/.test(k))) {
    all = true;
    keys.length = 0;
  }
  if (!all && !system && files.length === 0 && keys.length === 0) {
    err.write(USAGE);
    return 2;
  }
  let status = 0;
  const refuse = (first: string, e?: unknown): void => {
    err.write(`${first}\n`);
    if (e instanceof IpvsError) err.write(`ipvs sysctl: ${e.code}: ${e.message}\n`);
    status = 1;
  };
  // what to do, in sysctl(8)'s order: with -p the files' lines only (`key = value`, `#` / `;`
  // comments), with -a every value, else each argument as it comes (a write when it has `=`)
  type Op = { key: string; value: string | null; bad?: string; mayFail?: boolean };
  const ops: Op[] = [];
  for (const f of files) {
    let text: string;
    try {
      // `-` is the standard input, as sysctl(8) reads it
      text = (io?.readFile ?? ((p: string) => readFileSync(p === '-' ? 0 : p, 'utf8')))(f);
    } catch (e) {
      // --system's /etc/sysctl.conf is read only when it is there
      if (system && f === DEFAULT_CONF) continue;
      refuse(
        `sysctl: cannot open "${f}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : String((e as Error).message)}`,
      );
      continue;
    }
    if (applying.has(f) && !quiet) out.write(`* Applying ${f} ...\n`);
    text.split('\n').forEach((line, n) => {
      let l = line.trim();
      if (l === '' || l.startsWith('#') || l.startsWith(';')) return;
      // sysctl.conf(5): a leading `-` lets a failing write pass silently
      const mayFail = l.startsWith('-');
      if (mayFail) l = l.slice(1).trim();
      const eq = l.indexOf('=');
      if (eq < 0) {
        // sysctl(8) reads every file before it applies a line: said at once, not a failure
        err.write(`sysctl: ${f}(${n + 1}): invalid syntax, continuing...\n`);
        return;
      }
      const key = l.slice(0, eq).trim().replace(/\//g, '.');
      // a file may set the kernel's other knobs too (net.ipv4.ip_forward …): not ours, skipped;
      // with -r only the names it matches
      if (!key.startsWith(PREFIX) || (pattern !== null && !pattern.test(key))) return;
      const value = l.slice(eq + 1).trim();
      if (!/[*?[]/.test(key)) {
        ops.push({ key, value, mayFail });
        return;
      }
      // a glob names every key it matches (sysctl(8) expands it in files)
      const re = globRegExp(key);
      for (const name of [...SYSCTL_NAMES].sort())
        if (re.test(`${PREFIX}${name}`)) ops.push({ key: `${PREFIX}${name}`, value, mayFail });
    });
  }
  if (files.length === 0 && !all) {
    for (const k of keys) {
      const eq = k.indexOf('=');
      // the value as sysctl(8) takes it from the command line: surrounding blanks dropped
      if (eq >= 0) ops.push({ key: k.slice(0, eq), value: k.slice(eq + 1).trim() });
      else if (write)
        ops.push({
          key: k,
          value: null,
          bad: 'sysctl: command line(0): invalid syntax, continuing...',
        });
      else ops.push({ key: k, value: null });
    }
  }
  let backend: CtlBackend | undefined;
  try {
    backend = await (io?.backend ?? (() => ControlClient.connect(controlPath(control))))();
    const b = backend;
    const known = new Set<string>(SYSCTL_NAMES);
    const read = async (): Promise<Record<string, SysctlValue>> =>
      (await b.call({ cmd: 'getSysctls' })) as unknown as Record<string, SysctlValue>;
    const line = (name: string, v: string): string =>
      binary
        ? v
        : namesOnly
          ? `${PREFIX}${name}\n`
          : valuesOnly
            ? `${v}\n`
            : `${PREFIX}${name} = ${v}\n`;
    if (all && files.length === 0) {
      const cur = await read();
      for (const name of [...SYSCTL_NAMES].sort()) {
        if (pattern !== null && !pattern.test(`${PREFIX}${name}`)) continue;
        out.write(line(name, show(cur[name]!)));
      }
    }
    for (const op of ops) {
      if (op.bad !== undefined) {
        refuse(op.bad);
        continue;
      }
      const name = bare(op.key);
      if (!known.has(name)) {
        if (!ignoreUnknown && !op.mayFail)
          refuse(noSuch(op.key), new NoSysctlError(`no sysctl named ${name}`));
        continue;
      }
      if (op.value === null) {
        out.write(line(name, show((await read())[name]!)));
        continue;
      }
      try {
        const value = await parseValue(name, op.value, async () => (await read())[name]!);
        if (value === null)
          throw new SysctlError(`${name}: '${op.value.trim()}' is not a value it takes`);
        if (!dryRun) await b.call({ cmd: 'setSysctl', name, value });
        // sysctl(8) echoes the value as it was given
        if (!quiet) out.write(line(name, op.value));
      } catch (e) {
        if (e instanceof IpvsError && e.code === 'IPVS_ERR_STATE_FILE') {
          // applied, but not saved for the next start: not a refused write
          if (!quiet) out.write(line(name, op.value));
          refuse(`ipvs sysctl: ${e.code}: ${e.message}`);
          continue;
        }
        if (op.mayFail) continue;
        // sysctl(8) prints strerror of the write's errno: EINVAL, or ERANGE from est_cpulist
        const why =
          e instanceof IpvsError && e.errno === 'ERANGE'
            ? 'Numerical result out of range'
            : 'Invalid argument';
        refuse(`sysctl: setting key "${PREFIX}${name}": ${why}`, e);
      }
    }
  } catch (e) {
    const code = e instanceof IpvsError ? `${e.code}: ` : '';
    err.write(`ipvs sysctl: ${code}${e instanceof Error ? e.message : String(e)}\n`);
    status = 1;
  } finally {
    backend?.close();
  }
  return status;
}
