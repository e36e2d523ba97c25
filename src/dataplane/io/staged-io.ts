/**
 * What the backends without a kernel transmit ring (memory, pcap, TUN) share: frames are staged
 * in `StagedTx` slots (`txAlloc` then write at the returned offset of `txData`), received through
 * the NAPI-style `RxLoop`, and counted in one `IoStats`. Each backend supplies its receive loop,
 * its name for errors and its own `txCommit`.
 */
import { IoClosedError, IoFrameSizeError } from './errors.js';
import type { RxLoop, StagedTx } from './rx-loop.js';
import { newStats, type FrameHandler, type IoStats } from './types.js';

/** Base of the staged backends. */
export abstract class StagedFrameIO {
  readonly stats: IoStats = newStats();
  readonly maxFrame: number;
  protected readonly tx: StagedTx;
  /** The receive loop (created by the subclass, which knows how to fill a batch). */
  protected abstract readonly loop: RxLoop;
  protected closed = false;

  constructor(maxFrame: number, tx: StagedTx) {
    this.maxFrame = maxFrame;
    this.tx = tx;
  }

  /** How errors name this backend, e.g. `TUN device tun0`. */
  protected abstract get label(): string;

  get txData(): Buffer {
    return this.tx.data;
  }

  onFrames(handler: FrameHandler): void {
    this.loop.setHandler(handler);
    this.start();
  }

  start(): void {
    if (this.closed) throw new IoClosedError(this.label);
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  txAlloc(length: number): number {
    if (this.closed) throw new IoClosedError(this.label);
    if (length > this.maxFrame || length <= 0) {
      throw new IoFrameSizeError(
        `frame of ${length} bytes does not fit a ${this.maxFrame}-byte slot`,
      );
    }
    const off = this.tx.alloc(length);
    if (off < 0) this.stats.txFull++;
    return off;
  }

  send(frame: Uint8Array): boolean {
    const off = this.txAlloc(frame.length);
    if (off < 0) return false;
    this.tx.data.set(frame, off);
    return true;
  }
}
