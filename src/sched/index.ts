/**
 * The 14 IPVS schedulers (spec §2), registered under the names `ipvsadm -s` uses. Importing this
 * module registers them; importing it again (or after another module registered a scheduler of
 * the same name) changes nothing.
 */
import type { SchedulerOps } from '../core/service.js';
import { dh } from './dh.js';
import { fo } from './fo.js';
import { lblc } from './lblc.js';
import { lblcr } from './lblcr.js';
import { lc } from './lc.js';
import { mh } from './mh.js';
import { nq } from './nq.js';
import { ovf } from './ovf.js';
import { getScheduler, registerScheduler } from './registry.js';
import { rr } from './rr.js';
import { sed } from './sed.js';
import { sh } from './sh.js';
import { twos } from './twos.js';
import { wlc } from './wlc.js';
import { wrr } from './wrr.js';

/** Every built-in scheduler, in the order of the kernel's documentation (spec §2.1). */
export const SCHEDULERS: readonly SchedulerOps[] = [
  rr,
  wrr,
  lc,
  wlc,
  lblc,
  lblcr,
  dh,
  sh,
  sed,
  nq,
  fo,
  ovf,
  mh,
  twos,
];

/** Registers every built-in scheduler that is not registered yet. */
export function registerBuiltinSchedulers(): void {
  for (const ops of SCHEDULERS) if (!getScheduler(ops.name)) registerScheduler(ops);
}

registerBuiltinSchedulers();

export { dh, fo, lblc, lblcr, lc, mh, nq, ovf, rr, sed, sh, twos, wlc, wrr };
