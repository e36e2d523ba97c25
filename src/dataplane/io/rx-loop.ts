/**
 * The receive loop every backend shares, shaped like the kernel's NAPI: readiness (an IRQ, here a
 * libuv poll callback) disables further readiness notifications and schedules a poll; the poll
 * drains the source in batches of at most `batchSize` frames, at most `budget` frames per
 * event-loop turn. A turn that runs out of budget yields (setImmediate) and comes back, so a busy
 * source cannot starve timers, the control socket or another interface; a turn that finds the
 * source empty re-enables readiness (napi_complete).
 */
import type { FrameBatch, FrameHandler, IoStats, RxLoopOptions } from './types.js';

export interface RxSource {
  /** Lists up to `max` ready frames in `batch` (sets data/desc); returns how many (0 = empty). */
  fill(batch: FrameBatch, max: number): number;
  /** Re-enables readiness notification (the source found empty). */
  arm(): void;
  /** Disables readiness notification (a poll is scheduled or running). */
  disarm(): void;
}

/**
 * One cleared Immediate kept for the life of the process. The optimized code of every function that
 * inlines `setImmediate` / `clearImmediate` (the poll below, and with it whatever it inlined: the
 * handler, the packet engine) depends on the hidden classes of Immediate objects, and V8 drops such
 * code ("deoptimization, reason: weak objects") when a full GC finds those classes unused: no
 * Immediate alive, which is the usual state between batches. Holding one keeps them in use, so a
 * GC no longer sends the whole receive path back to the interpreter for the 100-140 ms its
 * recompilation takes (seen with --trace-deopt in the engine benchmark, 2026-12-07). Exported so
 * that the module keeps it: V8 need not keep a module variable nothing reads.
 */
export const immediateAnchor: NodeJS.Immediate = setImmediate(noop);
clearImmediate(immediateAnchor);

function noop(): void {}

export class RxLoop {
  readonly batchSize: number;
  readonly budget: number;
  private handler: FrameHandler | undefined;
  private running = false;
  private armed = false;
  private immediate: NodeJS.Immediate | undefined;

  constructor(
    private readonly src: RxSource,
    private readonly batch: FrameBatch,
    private readonly stats: IoStats,
    opts: RxLoopOptions = {},
  ) {
    this.batchSize = Math.max(1, Math.min(opts.batchSize ?? 64, batch.capacity));
    this.budget = Math.max(this.batchSize, opts.budget ?? 256);
  }

  setHandler(h: FrameHandler): void {
    this.handler = h;
  }

  get isRunning(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    if (this.armed) this.src.disarm();
    this.armed = false;
  }

  /** Readiness callback: stop notifications and poll (now, on this turn). */
  readonly ready = (): void => {
    if (!this.running) return;
    if (this.armed) this.src.disarm();
    this.armed = false;
    if (this.immediate === undefined) this.poll();
  };

  /** Schedules a poll on the next turn (used at start and by sources that learn of data themselves). */
  schedule(): void {
    if (!this.running || this.immediate !== undefined) return;
    if (this.armed) this.src.disarm();
    this.armed = false;
    this.immediate = setImmediate(this.poll);
  }

  /**
   * Hands everything the source has to the handler now, synchronously and without a budget
   * (simulation and benchmarks stepping a backend by hand); returns the frames handed over.
   */
  drainNow(): number {
    if (!this.running) return 0;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    let total = 0;
    for (;;) {
      const n = this.src.fill(this.batch, this.batchSize);
      if (n === 0) {
        this.armed = true;
        this.src.arm();
        break;
      }
      this.#handle(n);
      total += n;
      if (!this.running) break;
    }
    return total;
  }

  #handle(n: number): void {
    const { batch, stats } = this;
    batch.count = n;
    stats.rxBatches++;
    stats.rxFrames += n;
    if (n > stats.rxMaxBatch) stats.rxMaxBatch = n;
    // summed here, stored once: a field update per frame costs more than the sum
    let bytes = 0;
    let truncated = 0;
    for (let i = 0; i < n; i++) {
      const len = batch.length(i);
      bytes += len;
      if (batch.wireLength(i) > len) truncated++;
    }
    stats.rxBytes += bytes;
    stats.rxTruncated += truncated;
    this.handler?.(batch);
  }

  private readonly poll = (): void => {
    this.immediate = undefined;
    if (!this.running) return;
    let done = 0;
    while (done < this.budget) {
      const n = this.src.fill(this.batch, Math.min(this.batchSize, this.budget - done));
      if (n === 0) {
        this.armed = true;
        this.src.arm();
        return;
      }
      done += n;
      try {
        this.#handle(n);
      } catch (err) {
        // Keep the loop alive for whoever catches this (uncaughtException): poll again next turn.
        if (this.running && this.immediate === undefined) this.immediate = setImmediate(this.poll);
        throw err;
      }
      if (!this.running) return;
    }
    // Budget used up: more may be waiting. Yield to the event loop and come back.
    this.stats.rxYields++;
    this.immediate = setImmediate(this.poll);
  };
}

/**
 * Transmit staging for backends without a kernel ring (TUN, memory, pcap): `slots` slots of
 * `slotSize` bytes in one Buffer, descriptors in the FrameBatch layout, flushed as one batch.
 */
export class StagedTx {
  readonly data: Buffer;
  readonly desc: Int32Array;
  pending = 0;

  constructor(
    readonly slotSize: number,
    readonly slots: number,
  ) {
    this.data = Buffer.alloc(slotSize * slots);
    this.desc = new Int32Array(slots * 4);
  }

  alloc(length: number): number {
    if (this.pending === this.slots) return -1;
    const off = this.pending * this.slotSize;
    const d = this.pending * 4;
    this.desc[d] = off;
    this.desc[d + 1] = length;
    this.desc[d + 2] = length;
    this.desc[d + 3] = 0;
    this.pending++;
    return off;
  }
}
