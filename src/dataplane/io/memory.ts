/**
 * In-memory backend: a connected pair of FrameIOs (think a veth pair without a kernel); what one
 * end commits arrives at the other in batches, through the same NAPI-style receive loop as the
 * native backends. No addon needed: for tests and simulation.
 */
import { RxLoop, StagedTx } from './rx-loop.js';
import { StagedFrameIO } from './staged-io.js';
import { FrameBatch, type FrameIO, type RxLoopOptions } from './types.js';

export interface MemoryOptions extends RxLoopOptions {
  /** Largest frame. Default 9216 (jumbo). */
  maxFrame?: number;
  /** Frames queued at a receiver before further frames are dropped. Default 4096. */
  queueLimit?: number;
  /** Transmit slots staged per commit. Default 256. */
  txSlots?: number;
  linkType?: 'ethernet' | 'ip';
}

/** Two connected ends. */
export function createMemoryPair(opts: MemoryOptions = {}): [MemoryIO, MemoryIO] {
  const a = new MemoryIO(opts);
  const b = new MemoryIO(opts);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

export class MemoryIO extends StagedFrameIO implements FrameIO {
  protected get label(): string {
    return 'memory frame I/O';
  }

  readonly kind = 'memory' as const;
  readonly linkType: 'ethernet' | 'ip';
  /** The other end; frames committed here are queued there. */
  peer: MemoryIO | undefined;
  /** Frames dropped on arrival because the queue was full. */
  rxDropped = 0;
  private readonly queueLimit: number;
  private queue: Buffer[] = [];
  private qHead = 0;
  protected readonly loop: RxLoop;
  private readonly rxBuf: Buffer;

  constructor(opts: MemoryOptions = {}) {
    const maxFrame = opts.maxFrame ?? 9216;
    super(maxFrame, new StagedTx(maxFrame, opts.txSlots ?? 256));
    this.linkType = opts.linkType ?? 'ethernet';
    this.queueLimit = opts.queueLimit ?? 4096;
    const batchSize = opts.batchSize ?? 64;
    this.rxBuf = Buffer.alloc(this.maxFrame * batchSize);
    this.loop = new RxLoop(
      { fill: (b, max) => this.fill(b, max), arm: () => this.armed(), disarm: () => undefined },
      new FrameBatch(batchSize, this.rxBuf),
      this.stats,
      opts,
    );
  }

  /** Frames waiting to be received. */
  get queued(): number {
    return this.queue.length - this.qHead;
  }

  /** Queues a copy of `frame` for this end's receiver (what the peer's txCommit does). */
  inject(frame: Uint8Array): boolean {
    if (this.closed || this.queued >= this.queueLimit) {
      this.rxDropped++;
      return false;
    }
    this.queue.push(Buffer.from(frame));
    this.loop.schedule();
    return true;
  }

  private fill(b: FrameBatch, max: number): number {
    let n = 0;
    while (n < max && this.qHead < this.queue.length) {
      const f = this.queue[this.qHead++]!;
      const off = n * this.maxFrame;
      f.copy(this.rxBuf, off);
      const d = n * 4;
      b.desc[d] = off;
      b.desc[d + 1] = f.length;
      b.desc[d + 2] = f.length;
      b.desc[d + 3] = 0;
      n++;
    }
    if (this.qHead === this.queue.length) {
      this.queue = [];
      this.qHead = 0;
    }
    return n;
  }

  private armed(): void {
    // Found empty: nothing to do until inject() schedules the loop again.
  }

  txCommit(): number {
    const n = this.tx.pending;
    if (n === 0) return 0;
    this.tx.pending = 0;
    this.stats.txKicks++;
    for (let i = 0; i < n; i++) {
      const off = this.tx.desc[i * 4]!;
      const len = this.tx.desc[i * 4 + 1]!;
      if (this.peer && this.peer.inject(this.tx.data.subarray(off, off + len))) {
        this.stats.txFrames++;
        this.stats.txBytes += len;
      } else this.stats.txDropped++;
    }
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.loop.stop();
    this.queue = [];
    this.qHead = 0;
  }
}
