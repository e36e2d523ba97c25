/**
 * In-memory backend: a connected pair of FrameIOs (think a veth pair without a kernel); what one
 * end commits arrives at the other in batches, through the same NAPI-style receive loop as the
 * native backends. No addon needed: for tests and simulation.
 */
import { WordCopier, copyWords, words } from './copy.js';
import { RxLoop, StagedTx } from './rx-loop.js';
import { StagedFrameIO } from './staged-io.js';
import { FrameBatch, type FrameIO, type IoStats, type RxLoopOptions } from './types.js';

export interface MemoryOptions extends RxLoopOptions {
  /** Largest frame. Default 9216 (jumbo). */
  maxFrame?: number;
  /** Frames queued at a receiver before further frames are dropped. Default 4096. */
  queueLimit?: number;
  /** Bytes of received frames held at most (the receive ring). Default 8 MiB, or less when
   * `queueLimit` frames of `maxFrame` bytes take less. */
  queueBytes?: number;
  /** Transmit slots staged per commit. Default 256. */
  txSlots?: number;
  linkType?: 'ethernet' | 'ip';
}

/** Longest copy done word by word; longer ones use one view (`subarray`), small next to the copy. */
const LOOP_MAX = 512;

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
  protected readonly loop: RxLoop;
  /**
   * Arriving frames are copied back to back into this ring and received in place (the batch
   * lists them where they are): no allocation per frame on either end.
   */
  private readonly ring: Buffer;
  /** Offset and length of every frame held in the ring, oldest first (a ring of its own). */
  private readonly held: Int32Array;
  private readonly heldCap: number;
  /** Index in `held` of the oldest frame still held (queued, or in the batch being handled). */
  private hFirst = 0;
  /** Frames held: `inBatch` handed to the receiver last, then `queue` waiting. */
  private hCount = 0;
  private inBatch = 0;
  private queue = 0;
  /** Bytes in use: [rd, wr), or with `wrapped`, [rd, end of ring) and [0, wr). */
  private rd = 0;
  private wr = 0;
  private wrapped = false;
  private readonly copier = new WordCopier();
  /** The ring as words (its length is a multiple of 4, frames start on word boundaries). */
  private readonly ringW: Int32Array;
  /** The sender's transmit memory `arriveAll` last copied from, and its word view. */
  private txSrc: Buffer | null = null;
  private txSrcW: Int32Array | null = null;

  constructor(opts: MemoryOptions = {}) {
    const maxFrame = opts.maxFrame ?? 9216;
    super(maxFrame, new StagedTx(maxFrame, opts.txSlots ?? 256));
    this.linkType = opts.linkType ?? 'ethernet';
    this.queueLimit = opts.queueLimit ?? 4096;
    const batchSize = opts.batchSize ?? 64;
    const want = Math.max(
      this.maxFrame * (batchSize + 1),
      opts.queueBytes ?? Math.min(this.queueLimit * this.maxFrame, 8 << 20),
    );
    const bytes = (want + 3) & ~3;
    this.ring = Buffer.alloc(bytes);
    this.ringW = new Int32Array(this.ring.buffer, this.ring.byteOffset, bytes >>> 2);
    this.heldCap = this.queueLimit + batchSize;
    this.held = new Int32Array(this.heldCap * 2);
    this.loop = new RxLoop(
      { fill: (b, max) => this.fill(b, max), arm: () => this.armed(), disarm: () => undefined },
      new FrameBatch(batchSize, this.ring),
      this.stats,
      opts,
    );
  }

  /** Frames waiting to be received. */
  get queued(): number {
    return this.queue;
  }

  /**
   * Hands every queued frame to the receiver now, synchronously, as the event loop would have
   * (for simulations and benchmarks that step the pair by hand); returns how many.
   */
  flush(): number {
    return this.loop.drainNow();
  }

  /** Queues a copy of `frame` for this end's receiver, as if the peer had committed it. */
  inject(frame: Uint8Array): boolean {
    if (!this.take(frame, null, 0, frame.length)) return false;
    this.loop.schedule();
    return true;
  }

  /**
   * Queues copies of the `n` frames `desc` lists in `src` (a peer's commit), in order, and counts
   * them in the sender's `tx` stats; the receive loop is scheduled once.
   */
  arriveAll(src: Buffer, desc: Int32Array, n: number, tx: IoStats): void {
    if (src !== this.txSrc) {
      this.txSrc = src;
      this.txSrcW = words(src);
    }
    let sent = 0;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const len = desc[i * 4 + 1]!;
      if (!this.take(src, this.txSrcW, desc[i * 4]!, len)) continue;
      sent++;
      bytes += len;
    }
    tx.txFrames += sent;
    tx.txBytes += bytes;
    tx.txDropped += n - sent;
    if (sent > 0) this.loop.schedule();
  }

  /**
   * Copies `src[off, off+len)` into the ring and lists it as the newest frame queued; false (and
   * counted) when the queue is full or this end is closed. With `sw`, a word view of `src`, a frame
   * on word boundaries on both sides is copied whole words at a time (the last may carry up to 3
   * bytes of padding past the frame, inside both buffers).
   */
  private take(src: Uint8Array, sw: Int32Array | null, off: number, len: number): boolean {
    const at = this.closed || this.queue >= this.queueLimit ? -1 : this.reserve(len);
    if (at < 0) {
      this.rxDropped++;
      return false;
    }
    const n4 = (len + 3) >>> 2;
    if (sw !== null && ((off | at) & 3) === 0 && (off >>> 2) + n4 <= sw.length)
      copyWords(this.ringW, at >>> 2, sw, off >>> 2, n4);
    else this.copyIn(at, src, off, len);
    let k = this.hFirst + this.hCount;
    if (k >= this.heldCap) k -= this.heldCap;
    k *= 2;
    this.held[k] = at;
    this.held[k + 1] = len;
    this.hCount++;
    this.queue++;
    return true;
  }

  /** Where `len` more bytes fit in the ring, or -1. */
  private reserve(len: number): number {
    if (this.hCount === 0) {
      this.rd = this.wr = 0;
      this.wrapped = false;
    }
    let at = this.wr;
    if (this.wrapped) {
      if (at + len > this.rd) return -1;
    } else if (at + len > this.ring.length) {
      if (len > this.rd) return -1;
      at = 0;
      this.wrapped = true;
    }
    // frames start on 4-byte boundaries, so aligned copies go a word at a time
    this.wr = (at + len + 3) & ~3;
    return at;
  }

  private copyIn(at: number, src: Uint8Array, off: number, len: number): void {
    if (len > LOOP_MAX) this.ring.set(src.subarray(off, off + len), at);
    else this.copier.copy(this.ring, at, src, off, len);
  }

  /** Releases the frames of the last batch, then lists up to `max` queued frames in place. */
  private fill(b: FrameBatch, max: number): number {
    if (this.inBatch > 0) {
      this.hFirst += this.inBatch;
      if (this.hFirst >= this.heldCap) this.hFirst -= this.heldCap;
      this.hCount -= this.inBatch;
      this.inBatch = 0;
      if (this.hCount > 0) {
        const rd = this.held[this.hFirst * 2]!;
        if (rd < this.rd) this.wrapped = false;
        this.rd = rd;
      }
    }
    const n = Math.min(max, this.queue);
    b.data = this.ring;
    // entries past the end of `held` continue at its start (hFirst < heldCap, n <= hCount)
    for (let i = 0, k = this.hFirst * 2, end = this.heldCap * 2; i < n; i++, k += 2) {
      if (k === end) k = 0;
      const d = i * 4;
      b.desc[d] = this.held[k]!;
      b.desc[d + 1] = this.held[k + 1]!;
      b.desc[d + 2] = this.held[k + 1]!;
      b.desc[d + 3] = 0;
    }
    this.inBatch = n;
    this.queue -= n;
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
    const peer = this.peer;
    if (peer === undefined) this.stats.txDropped += n;
    else peer.arriveAll(this.tx.data, this.tx.desc, n, this.stats);
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.loop.stop();
    this.hCount = this.inBatch = this.queue = 0;
    this.rd = this.wr = 0;
    this.wrapped = false;
  }
}
