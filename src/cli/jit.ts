/**
 * V8 inlining budgets for the long-running commands (`daemon`, `trace`, `realserver`, `demo`).
 *
 * TurboFan inlines a callee only when its bytecode is at most 460 bytes and the caller's inlined
 * total stays under 920. A new connection crosses `newConn → ConnTable.alloc / hash → the timer
 * wheel's arm`, whose bytecode together is about three times that budget, so by default most of it
 * stays as out-of-line calls with fifteen arguments each. With the budgets below the whole insert
 * is compiled as one function: insert + lookup of a connection with 1M live entries goes from
 * 136–138 to 93–102 ns (BENCHMARKS.md). The packet engine's fast path (`#receive → FastPath.run
 * → #in / #out` with the lookups, state machine, statistics and timer) needs the larger
 * cumulative budget: with 3000 part of it stayed out of line (DR in at 10 k connections 328 vs
 * 311 ns per frame with 6000, NAT out 428 vs 362; 10000 gained nothing more; insert + lookup at
 * 1M 120 vs 104 ns). The NAT reply path (`#out` inlined into `#receive`) then hit V8's absolute
 * cap of 4600 bytecode bytes per optimized function: the checksum updates, the transmit slot's
 * allocation, the state machine and the frame copy stayed out of line. With that cap and the
 * cumulative budget at 12000, NAT out at 10 k connections went from 261–277 to 208–223 ns per
 * frame, NAT in 219–229 to 213–225 (2026-12-04; 24000 gained nothing more). The flags only steer
 * the optimizing compiler, so setting
 * them at start-up, before any hot function is optimized, is safe; `IPVS_JIT_DEFAULTS=1` leaves
 * V8's own budgets (for comparison).
 */
import v8 from 'node:v8';

/** The V8 flags set by `tuneJit`. */
export const JIT_FLAGS: readonly string[] = [
  '--max-inlined-bytecode-size=1200',
  '--max-inlined-bytecode-size-cumulative=12000',
  '--max-inlined-bytecode-size-absolute=12000',
];

/** Applies `JIT_FLAGS` unless `IPVS_JIT_DEFAULTS=1`; returns whether it did. */
export function tuneJit(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.IPVS_JIT_DEFAULTS === '1') return false;
  for (const f of JIT_FLAGS) v8.setFlagsFromString(f);
  return true;
}
