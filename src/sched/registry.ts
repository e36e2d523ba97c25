/**
 * The scheduler registry: ops objects keyed by the name `ipvsadm -s` uses (spec §2.1).
 * Registering an empty or duplicate name is a coded error.
 */
import { SchedRegistryError } from '../core/errors.js';
import type { SchedulerOps } from '../core/service.js';
import { SCHED_NAME_MAX } from '../core/constants.js';

const table = new Map<string, SchedulerOps>();

/** Registers a scheduler under `ops.name`. */
export function registerScheduler(ops: SchedulerOps): void {
  if (!ops.name || ops.name.length > SCHED_NAME_MAX) {
    throw new SchedRegistryError(`invalid scheduler name '${ops.name}'`);
  }
  if (table.has(ops.name))
    throw new SchedRegistryError(`scheduler '${ops.name}' is already registered`);
  table.set(ops.name, ops);
}

/** Removes a scheduler (tests only). */
export function unregisterScheduler(name: string): boolean {
  return table.delete(name);
}

/** Looks a scheduler up by exact name. */
export function getScheduler(name: string): SchedulerOps | undefined {
  return table.get(name);
}

/** Names of every registered scheduler. */
export function schedulerNames(): string[] {
  return [...table.keys()];
}
