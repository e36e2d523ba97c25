/**
 * The daemon's command executor: runs commands through `execute` (data plane hooks included) and,
 * after every successful configuration change, calls the commit hook (the state file writer)
 * before the change is acknowledged. Execution is synchronous, so commands from any number of
 * clients apply one at a time, in arrival order.
 */
import type { Ipvs } from '../core/ipvs.js';
import { MUTATING, type CtlBackend, type ResultOf } from './backend.js';
import { execute } from './commands.js';
import type { Dataplane } from './dataplane.js';
import { StateFileError, toWireError } from './errors.js';
import type { Reply } from './protocol.js';
import type { Command } from './types.js';
import { validateCommand } from './validate.js';

/** Options of a controller. */
export interface ControllerOptions {
  plane?: Dataplane;
  /** Called after each successful change, before it is acknowledged; may throw. */
  commit?: () => void;
}

/** Runs commands against one Ipvs instance. */
export class Controller {
  readonly ipvs: Ipvs;
  readonly plane: Dataplane | undefined;
  #commit: (() => void) | undefined;

  constructor(ipvs: Ipvs, opts: ControllerOptions = {}) {
    this.ipvs = ipvs;
    this.plane = opts.plane;
    this.#commit = opts.commit;
  }

  /** Sets (or clears) the commit hook. */
  setCommit(commit: (() => void) | undefined): void {
    this.#commit = commit;
  }

  /** Executes a command (throws coded errors). */
  run<C extends Command>(cmd: C): ResultOf<C> {
    validateCommand(cmd);
    const result = execute(this.ipvs, cmd, this.plane);
    if (MUTATING.has(cmd.cmd) && this.#commit) {
      try {
        this.#commit();
      } catch (e) {
        throw new StateFileError(
          `the change was applied but could not be saved: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    }
    return result;
  }

  /** Executes an untrusted request and builds its reply; never throws. */
  handle(request: unknown): Reply {
    const id =
      typeof request === 'object' && request !== null && 'id' in request
        ? (request as { id: unknown }).id
        : undefined;
    try {
      let cmd = request;
      if (id !== undefined) {
        const { id: _drop, ...rest } = request as Record<string, unknown>;
        void _drop;
        cmd = rest;
      }
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
      call: async <C extends Command>(cmd: C) => this.run(cmd),
      close: () => {},
    };
  }
}

/** An in-process backend over a bare Ipvs (no data plane, no state file). */
export function localBackend(ipvs: Ipvs, plane?: Dataplane): CtlBackend {
  return new Controller(ipvs, plane ? { plane } : {}).backend();
}
