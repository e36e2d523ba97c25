/**
 * Read buffers for the TCP splice. Every socket reads into a buffer it owns while it is open
 * (`net.Socket` `onread`), so reading allocates nothing. Buffers come in two sizes: a small one
 * that every socket starts with (idle connections cost little memory) and a large one a socket is
 * moved to when a read fills its buffer (bulk transfers cost few system calls); a socket goes back
 * to a small buffer once its reads are small again. Small buffers are carved out of slabs; both
 * sizes are recycled through free lists whose lengths are bounded.
 */

/** Sizes and limits of a pool. */
export interface BufferPoolOptions {
  /** Bytes of a small buffer (default 2048). */
  small?: number;
  /**
   * Bytes of a large buffer (default 32768). Measured with iperf3 through the proxy on loopback
   * (Intel guest): 32 KiB reads and writes 11.4–11.6 Gbit/s, 16 KiB 10.1–10.2, 64 KiB 7.0–7.9,
   * 8 KiB 8.4; HAProxy (16 KiB buffers) 11.2 in the same runs.
   */
  large?: number;
  /** Small buffers per slab (default 64). */
  slab?: number;
  /** Most large buffers kept free for reuse (default 64). */
  maxFreeLarge?: number;
}

/** Recycles read buffers of two sizes. */
export class BufferPool {
  readonly small: number;
  readonly large: number;
  readonly #slab: number;
  readonly #maxFreeLarge: number;
  readonly #freeSmall: Buffer[] = [];
  readonly #freeLarge: Buffer[] = [];
  /** Buffers handed out and not yet returned. */
  inUseSmall = 0;
  inUseLarge = 0;

  constructor(o: BufferPoolOptions = {}) {
    this.small = o.small ?? 2048;
    this.large = o.large ?? 32768;
    this.#slab = o.slab ?? 64;
    this.#maxFreeLarge = o.maxFreeLarge ?? 64;
  }

  /** A small buffer. */
  getSmall(): Buffer {
    let b = this.#freeSmall.pop();
    if (!b) {
      const slab = Buffer.allocUnsafeSlow(this.small * this.#slab);
      for (let i = this.#slab - 1; i > 0; i--)
        this.#freeSmall.push(slab.subarray(i * this.small, (i + 1) * this.small));
      b = slab.subarray(0, this.small);
    }
    this.inUseSmall++;
    return b;
  }

  /** A large buffer. */
  getLarge(): Buffer {
    this.inUseLarge++;
    return this.#freeLarge.pop() ?? Buffer.allocUnsafeSlow(this.large);
  }

  /** Returns a buffer obtained from this pool. */
  put(b: Buffer): void {
    if (b.length === this.large && this.large !== this.small) {
      this.inUseLarge--;
      if (this.#freeLarge.length < this.#maxFreeLarge) this.#freeLarge.push(b);
    } else {
      this.inUseSmall--;
      this.#freeSmall.push(b);
    }
  }
}
