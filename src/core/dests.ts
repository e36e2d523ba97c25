/**
 * Linking and unlinking destinations and binding schedulers: the list operations every
 * configuration path shares, with the scheduler hooks called where the kernel calls them
 * (spec §1.2, §2.1). Validation happens before these are called.
 */
import { DEST_F_AVAILABLE } from './constants.js';
import type { Dest, SchedulerOps, Service } from './service.js';

/** Inserts `dest` at the head of the service's list (newest-first) and runs `add_dest`. */
export function linkDest(svc: Service, dest: Dest): void {
  svc.dests.unshift(dest);
  for (let i = 0; i < svc.dests.length; i++) svc.dests[i]!.index = i;
  dest.svc = svc;
  dest.flags |= DEST_F_AVAILABLE;
  svc.sched?.addDest?.(svc, dest);
}

/** Removes `dest` from the list, clears AVAILABLE and runs `del_dest` (dest.index keeps its old value). */
export function unlinkDest(svc: Service, dest: Dest): void {
  const at = dest.index;
  svc.dests.splice(at, 1);
  for (let i = at; i < svc.dests.length; i++) svc.dests[i]!.index = i;
  dest.flags &= ~DEST_F_AVAILABLE;
  svc.sched?.delDest?.(svc, dest);
}

/** Runs the scheduler's `upd_dest` after a destination's settings changed. */
export function updatedDest(svc: Service, dest: Dest): void {
  svc.sched?.updDest?.(svc, dest);
}

/** Binds a scheduler to a service (`null` = `none`), tearing down the previous one's state. */
export function bindScheduler(svc: Service, ops: SchedulerOps | null): void {
  if (svc.sched) {
    svc.sched.doneService?.(svc);
    svc.schedData = null;
  }
  svc.sched = ops;
  svc.schedName = ops ? ops.name : 'none';
  try {
    ops?.initService?.(svc);
  } catch (e) {
    // ip_vs_edit_service: the old scheduler is already unbound; a failed bind leaves none
    svc.sched = null;
    svc.schedName = 'none';
    svc.schedData = null;
    throw e;
  }
}
