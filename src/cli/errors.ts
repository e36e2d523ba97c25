/**
 * How the ipvsadm front end stops: ipvsadm either returns a status from `process_options` (a popt
 * error, a failed kernel call) or calls `exit()` from deep inside (`fail()`, usage, "Try ..."),
 * which also ends a `-R` restore. `AdmExit` carries that distinction.
 */

/** Thrown to end an ipvsadm command with an exit status and text. */
export class AdmExit extends Error {
  /** Exit status as the shell sees it (0..255). */
  readonly status: number;
  /** Text for stderr (already newline-terminated) or ''. */
  readonly stderr: string;
  /** Text for stdout (already newline-terminated) or ''. */
  readonly stdout: string;
  /** True when ipvsadm would call exit(): a running `-R` restore stops too. */
  readonly abort: boolean;

  constructor(status: number, opts: { stderr?: string; stdout?: string; abort?: boolean } = {}) {
    super(opts.stderr || `exit ${status}`);
    this.name = 'AdmExit';
    this.status = status & 0xff;
    this.stderr = opts.stderr ?? '';
    this.stdout = opts.stdout ?? '';
    this.abort = opts.abort ?? true;
  }
}

/** ipvsadm's fail(err, msg): message plus newline on stderr, exit(err). */
export function fail(status: number, msg: string): never {
  throw new AdmExit(status, { stderr: `${msg}\n` });
}
