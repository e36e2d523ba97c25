/**
 * Frame output: writes an Ethernet frame toward a next hop, straight into the transmit slot of the
 * interface's frame I/O when the neighbour is known, or into the neighbour queue while it is being
 * resolved (the queued frame is sent when the answer comes). `commit()` hands every interface's
 * batch over at once. Nothing is allocated per frame.
 */
import { AF_INET6 } from '../../core/addr.js';
import type { FrameIO } from '../io/types.js';
import { R, type Counters } from './counters.js';
import type { Neigh, FrameSink } from './neigh.js';
import type { Iface, NetModel } from './net.js';
import { copyBytes } from './bytes.js';

const EMPTY = new Uint8Array(0);

/** Frame output of one engine. */
export class Tx implements FrameSink {
  readonly #net: NetModel;
  readonly #neigh: Neigh;
  readonly #counters: Counters;
  #ios: FrameIO[] = [];
  #iosGen = -1;
  /** The memory the last successful `begin` wrote into (a transmit area or the neighbour queue). */
  buf: Uint8Array = EMPTY;
  /** Why the last `begin` / `raw` failed (an R.* code). */
  reason = 0;
  /** Called (when set) with every complete frame `traced()` reports: the tracer listens. */
  onFrame:
    ((ifc: Iface, buf: Uint8Array, off: number, len: number, queued: boolean) => void) | null =
    null;

  constructor(net: NetModel, neigh: Neigh, counters: Counters) {
    this.#net = net;
    this.#neigh = neigh;
    this.#counters = counters;
    neigh.sink = this;
  }

  /** Reserves `len` bytes in `ifc`'s transmit memory; -1 when impossible (reason set). */
  raw(ifc: Iface, len: number): number {
    const io = ifc.io;
    if (!io) {
      this.reason = R.NO_ROUTE;
      return -1;
    }
    if (len > io.maxFrame) {
      this.reason = R.TOO_BIG;
      return -1;
    }
    let off = io.txAlloc(len);
    if (off < 0) {
      io.txCommit();
      off = io.txAlloc(len);
      if (off < 0) {
        this.reason = R.TX_FULL;
        return -1;
      }
    }
    this.#counters.txFrames++;
    return off;
  }

  txBuf(ifc: Iface): Uint8Array {
    return ifc.io!.txData;
  }

  /**
   * Starts a frame of `len` bytes (Ethernet header included) toward next hop `nh` (family `af`)
   * on `ifc`; writes the Ethernet header and returns the frame's offset in `this.buf`, or -1
   * (reason set). The caller writes the rest of the frame, then calls `traced()`.
   */
  begin(ifc: Iface, af: number, nh: ArrayLike<number>, nhOff: number, len: number): number {
    const neigh = this.#neigh;
    const s = neigh.resolve(ifc, af, nh, nhOff);
    if (s < 0) {
      this.reason = R.NEIGH_DROP;
      return -1;
    }
    let off: number;
    let b: Uint8Array;
    if (neigh.usable(s)) {
      off = this.raw(ifc, len);
      if (off < 0) return -1;
      b = ifc.io!.txData;
      copyBytes(b, off, neigh.mac, s * 6, 6);
    } else {
      if (!ifc.io) {
        this.reason = R.NO_ROUTE;
        return -1;
      }
      off = neigh.enqueue(s, ifc, len);
      if (off < 0) {
        this.reason = R.NEIGH_DROP;
        return -1;
      }
      b = neigh.queueBuf;
      b.fill(0, off, off + 6);
    }
    b.set(ifc.mac, off + 6);
    b[off + 12] = af === AF_INET6 ? 0x86 : 0x08;
    b[off + 13] = af === AF_INET6 ? 0xdd : 0x00;
    this.buf = b;
    this.#lastIfc = ifc;
    this.#lastOff = off;
    this.#lastLen = len;
    this.#lastQueued = b !== ifc.io!.txData;
    return off;
  }

  #lastIfc: Iface | null = null;
  #lastOff = 0;
  #lastLen = 0;
  #lastQueued = false;

  /** Reports the frame of the last `begin` to the tracer, once it is complete. */
  traced(): void {
    if (this.onFrame && this.#lastIfc)
      this.onFrame(this.#lastIfc, this.buf, this.#lastOff, this.#lastLen, this.#lastQueued);
  }

  /** Hands every interface's pending transmit slots over. */
  commit(): void {
    this.#neigh.sendPending();
    if (this.#iosGen !== this.#net.gen) {
      this.#ios = [];
      for (const i of this.#net.ifaces) if (i.io && !this.#ios.includes(i.io)) this.#ios.push(i.io);
      this.#iosGen = this.#net.gen;
    }
    for (let i = 0; i < this.#ios.length; i++) this.#ios[i]!.txCommit();
  }
}
