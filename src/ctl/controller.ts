/**
 * The daemon's command executor: runs commands through `execute` (data plane hooks included) and,
 * after every successful configuration change, calls the commit hook (the state file writer)
 * before the change is acknowledged. Execution is synchronous, so commands from any number of
 * clients apply one at a time, in arrival order. Requests from the control socket (`submit`) are
 * saved by group commit: the changes applied in one turn of the event loop are written once, and
 * acknowledged after that write (a 10k-line `ipvs adm -R` costs a few writes, not 20k).
 */
import type { Ipvs } from '../core/ipvs.js';
import { MUTATING, type CtlBackend, type ResultOf } from './backend.js';
import { execute } from './commands.js';
import type { Dataplane } from './dataplane.js';
import { InternalError, StateFileError, toWireError } from './errors.js';
import type { Reply } from './protocol.js';
import type { Command, DaemonSpec } from './types.js';
import { validateCommand, validateId } from './validate.js';

/** Options of a controller. */
export interface ControllerOptions {
  plane?: Dataplane;
  /** Called after each successful change, before it is acknowledged; may throw. */
  commit?: () => void;
  /** Opens and closes the sync daemon's sockets (the daemon's SyncRunner). */
  sync?: SyncControl;
}

/** A daemon whose sockets are open, waiting for its command to be applied. */
export interface PreparedSyncDaemon {
  /** The settings to apply. */
  spec: DaemonSpec;
  commit(): void;
  abort(): void;
}

/** The I/O side of `newDaemon` / `delDaemon`. */
export interface SyncControl {
  /** Throws NoDeviceError when the interface does not exist (checked before EEXIST, as the kernel). */
  checkInterface(name: string): void;
  /** Opens a role's sockets; throws a coded error with nothing left open. */
  prepare(d: DaemonSpec): Promise<PreparedSyncDaemon>;
  /** A role was stopped in core: close its sockets. */
  stopped(state: 1 | 2): void;
}

/** Runs commands against one Ipvs instance. */
export class Controller {
  readonly ipvs: Ipvs;
  readonly plane: Dataplane | undefined;
  #commit: (() => void) | undefined;
  readonly #sync: SyncControl | undefined;
  /** Requests run one at a time, in arrival order, also while one waits for I/O. */
  #queue: Promise<unknown> = Promise.resolve();
  #inAsync = false;
  /** Replies of applied changes waiting for the next group commit. */
  #unsaved: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];

  constructor(ipvs: Ipvs, opts: ControllerOptions = {}) {
    this.ipvs = ipvs;
    this.plane = opts.plane;
    this.#commit = opts.commit;
    this.#sync = opts.sync;
  }

  /** Sets (or clears) the commit hook. */
  setCommit(commit: (() => void) | undefined): void {
    this.#commit = commit;
  }

  /**
   * Executes a command (throws coded errors). With sync sockets attached, `newDaemon` must go
   * through `runAsync`, which opens them first.
   */
  run<C extends Command>(cmd: C, save = true): ResultOf<C> {
    validateCommand(cmd);
    if (this.#sync && cmd.cmd === 'newDaemon' && !this.#inAsync)
      throw new InternalError('newDaemon needs runAsync: its sockets are opened first');
    const result = execute(this.ipvs, cmd, this.plane);
    // a stopped role's sockets close with it
    if (this.#sync && cmd.cmd === 'delDaemon') this.#sync.stopped(cmd.state);
    if (save && MUTATING.has(cmd.cmd)) this.#save();
    return result;
  }

  /** Runs the commit hook; throws StateFileError when it fails. */
  #save(): void {
    if (!this.#commit) return;
    try {
      this.#commit();
    } catch (e) {
      throw new StateFileError(
        `the change was applied but could not be saved: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }

  /** Resolves after the next group commit (which is scheduled if it is not yet). */
  #groupSave(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#unsaved.push({ resolve, reject });
      if (this.#unsaved.length === 1) setImmediate(() => this.#flushSaves());
    });
  }

  #flushSaves(): void {
    const waiting = this.#unsaved;
    this.#unsaved = [];
    try {
      this.#save();
    } catch (e) {
      for (const w of waiting) w.reject(e);
      return;
    }
    for (const w of waiting) w.resolve();
  }

  /**
   * Executes a command that may need I/O: `newDaemon` opens the role's sockets before the
   * command is applied (a failure leaves nothing applied and nothing open), `delDaemon` closes
   * them after. Every other command runs as `run`.
   */
  async runAsync<C extends Command>(cmd: C, save = true): Promise<ResultOf<C>> {
    validateCommand(cmd);
    const sync = this.#sync;
    if (!sync || (cmd.cmd !== 'newDaemon' && cmd.cmd !== 'delDaemon')) return this.run(cmd, save);
    if (cmd.cmd === 'delDaemon') return this.run(cmd, save);
    const d = (cmd as Extract<Command, { cmd: 'newDaemon' }>).daemon;
    // refuse what core refuses before any socket is made, in the kernel's order: bad settings
    // (EINVAL), an unknown interface (ENODEV), then a role that runs already (EEXIST)
    let running: unknown = null;
    try {
      this.ipvs.checkDaemon(d);
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'IPVS_ERR_DAEMON_RUNNING') throw e;
      running = e;
    }
    sync.checkInterface(d.mcastIfn);
    if (running) throw running;
    const prepared = await sync.prepare(d);
    const role = d.state === 1 ? 'master' : 'backup';
    this.#inAsync = true;
    try {
      const result = this.run({ ...cmd, daemon: prepared.spec }, save);
      prepared.commit();
      return result;
    } catch (e) {
      // applied but not saved (StateFileError): the role runs all the same
      if (this.ipvs.daemons[role]) prepared.commit();
      else prepared.abort();
      throw e;
    } finally {
      this.#inAsync = false;
    }
  }

  /**
   * `handle` for requests that may need I/O, queued so requests apply one at a time in arrival
   * order; never rejects. `onApplied` is called once the request has run (before its reply waits
   * for the state file's group commit): the control server submits a client's next request then.
   */
  submit(request: unknown, onApplied?: () => void): Promise<Reply> {
    const p = this.#queue.then(() => this.#handleAsync(request));
    this.#queue = p;
    if (onApplied) void p.then(onApplied);
    // the next request runs as soon as this one is applied; this reply waits for the group commit
    return p.then(({ reply, unsaved }) => {
      if (!unsaved) return reply;
      return this.#groupSave().then(
        () => reply,
        (e: unknown) => {
          const error = toWireError(e);
          return reply.id === undefined ? { ok: false, error } : { id: reply.id, ok: false, error };
        },
      );
    });
  }

  async #handleAsync(request: unknown): Promise<{ reply: Reply; unsaved: boolean }> {
    const { id, cmd, bad } = splitRequest(request);
    try {
      if (bad) throw bad;
      validateCommand(cmd);
      const result = await this.runAsync(cmd, false);
      const reply: Reply = id === undefined ? { ok: true, result } : { id, ok: true, result };
      return { reply, unsaved: MUTATING.has(cmd.cmd) && this.#commit !== undefined };
    } catch (e) {
      const error = toWireError(e);
      return {
        reply: id === undefined ? { ok: false, error } : { id, ok: false, error },
        unsaved: false,
      };
    }
  }

  /** Executes an untrusted request and builds its reply; never throws. */
  handle(request: unknown): Reply {
    const { id, cmd, bad } = splitRequest(request);
    try {
      if (bad) throw bad;
      validateCommand(cmd);
      const result = this.run(cmd);
      return id === undefined ? { ok: true, result } : { id, ok: true, result };
    } catch (e) {
      const error = toWireError(e);
      return id === undefined ? { ok: false, error } : { id, ok: false, error };
    }
  }

  /** An in-process backend over this controller. */
  backend(): CtlBackend {
    return {
      call: async <C extends Command>(cmd: C) => this.runAsync(cmd),
      close: () => {},
    };
  }
}

/** An in-process backend over a bare Ipvs (no data plane, no state file). */
export function localBackend(ipvs: Ipvs, plane?: Dataplane): CtlBackend {
  return new Controller(ipvs, plane ? { plane } : {}).backend();
}

/**
 * A request's id (undefined when it has none) and the command without it. An id the reply cannot
 * echo refuses the request before it runs (`bad`), answered without an id.
 */
function splitRequest(request: unknown): { id: unknown; cmd: unknown; bad?: unknown } {
  if (typeof request !== 'object' || request === null || !('id' in request))
    return { id: undefined, cmd: request };
  const { id, ...cmd } = request as Record<string, unknown>;
  try {
    validateId(id);
  } catch (e) {
    return { id: undefined, cmd, bad: e };
  }
  return { id, cmd };
}
