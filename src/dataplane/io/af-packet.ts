/**
 * AF_PACKET backend: packet sockets bound to an interface with a TPACKET_V2 (default) or V3
 * receive ring and a TPACKET_V3 transmit ring, memory-mapped and seen from JavaScript as
 * ArrayBuffers. Receive is the NAPI-style loop of rx-loop.ts over `packetRxPoll` (the addon walks
 * the ring and lists ready frames; no copies); transmit writes into ring slots and kicks once per
 * `txCommit`. V2 because a V3 block reaches user space only when full or when its timer (1 ms at
 * least) runs out: below a few hundred thousand frames per second every frame waited for the
 * timer, a millisecond or two added to each pass through the director.
 */
import { IoClosedError, IoFrameSizeError, fromNative } from './errors.js';
import { interfaceInfo, netnsPath, type InterfaceInfo } from './iface.js';
import {
  loadNative,
  type NativeAddon,
  type NativePacketOptions,
  type NativePacketSocket,
} from './native.js';
import { RxLoop } from './rx-loop.js';
import {
  FrameBatch,
  newStats,
  type FrameHandler,
  type FrameIO,
  type IoStats,
  type RxLoopOptions,
} from './types.js';

/** PACKET_FANOUT modes. */
export const FANOUT = {
  HASH: 0,
  LB: 1,
  CPU: 2,
  ROLLOVER: 3,
  RND: 4,
  QM: 5,
  CBPF: 6,
  EBPF: 7,
} as const;
/** PACKET_FANOUT flags (or'ed into the mode). */
export const FANOUT_FLAG = {
  ROLLOVER: 0x1000,
  UNIQUEID: 0x2000,
  IGNORE_OUTGOING: 0x4000,
  DEFRAG: 0x8000,
} as const;

const TP_STATUS_AVAILABLE = 0;
const TP_STATUS_WRONG_FORMAT = 4;
const TP_STATUS_SEND_REQUEST = 1;
/**
 * Kicks in a row that may end in ENOBUFS / EAGAIN before the oldest frame is given up: the first
 * ones at once, the rest a millisecond apart (about 8 ms in all, a device queue's drain time).
 */
const TX_RETRY_FAST = 4;
const TX_RETRY_MAX = 12;

export interface AfPacketOptions extends RxLoopOptions, NativePacketOptions {
  /**
   * Who walks the RX ring's block descriptors: 'native' (default; the addon lists frames into the
   * batch's descriptor array, one N-API call per batch) or 'js' (this file reads the ring through
   * an Int32Array; no N-API call per batch). Both hand blocks back at the next poll. See
   * docs/native.md for the measured difference.
   */
  rxWalk?: 'native' | 'js';
  /** Network namespace the interface lives in (name under /run/netns, or a path). */
  netns?: string;
  /** Join a fanout group right after opening (mode from FANOUT, optionally | FANOUT_FLAG bits). */
  fanout?: { group: number; mode?: number };
}

/** Opens an AF_PACKET frame I/O on `iface`. Throws IoNativeMissingError / IoNotRootError / IoNoInterfaceError / IoSyscallError. */
export function openAfPacket(iface: string, opts: AfPacketOptions = {}): AfPacketIO {
  const native = loadNative();
  const info = interfaceInfo(iface, opts);
  let sock: NativePacketSocket;
  try {
    sock = native.packetOpen(info.index, ringDefaults(opts, info.mtu), netnsPath(opts.netns));
  } catch (err) {
    throw fromNative(err, { iface, netns: opts.netns, capability: 'CAP_NET_RAW' });
  }
  const io = new AfPacketIO(native, sock, info, opts);
  if (opts.fanout) io.setFanout(opts.fanout.group, opts.fanout.mode ?? FANOUT.HASH);
  return io;
}

/**
 * The receive ring unless the caller chose: TPACKET_V2 with slots of the smallest power of two
 * that holds a frame of the interface's MTU after the kernel's 66 bytes of slot header (2 KiB up
 * to MTU 1,900; at most 64 KiB, larger frames arrive truncated), 8,192 of them but no more than
 * 32 MiB — 16 MiB at MTU 1,500, 14 ms of small frames at 600 k/s to ride out a pause of the event
 * loop (the V3 default's 4 MiB held about 32,000 small frames). A given block size smaller than a slot
 * is raised to one slot. TX slots likewise: 2 KiB up to MTU 1,900 (the slot header and a
 * virtio_net_hdr take 58 bytes), the next power of two above for jumbo frames (16 KiB at MTU 9,000),
 * so the largest frame the link takes fits a slot.
 */
function ringDefaults(opts: AfPacketOptions, mtu: number): NativePacketOptions {
  let txFrame = 2048;
  while (txFrame < mtu + 18 + 64 && txFrame < 65536) txFrame *= 2;
  const txFrameSize = opts.txFrameSize ?? txFrame;
  const version = opts.rxVersion ?? 2;
  if (version !== 2) return { ...opts, txFrameSize, rxVersion: version };
  let frame = 2048;
  while (frame < mtu + 18 + 66 && frame < 65536) frame *= 2;
  const rxFrameSize = opts.rxFrameSize ?? frame;
  const rxBlockSize = Math.max(opts.rxBlockSize ?? 1 << 18, rxFrameSize);
  const ring = Math.min(8192 * rxFrameSize, 32 << 20);
  const rxBlockCount = opts.rxBlockCount ?? Math.max(1, Math.floor(ring / rxBlockSize));
  return { ...opts, txFrameSize, rxVersion: 2, rxFrameSize, rxBlockSize, rxBlockCount };
}

export class AfPacketIO implements FrameIO {
  readonly kind = 'af-packet' as const;
  readonly linkType = 'ethernet' as const;
  readonly stats: IoStats = newStats();
  /** The largest frame sent (see `mtuChanged`). */
  maxFrame: number;
  readonly txData: Buffer;
  /** The receive ring (valid until close; detached, i.e. empty, afterwards). */
  readonly rxData: Buffer;
  readonly txSlots: number;
  /** Frames leave as linear skbs (NativePacketOptions.txLinear, when the kernel has it). */
  readonly txLinear: boolean;
  /** The receive ring's TPACKET version (2: a slot per frame, 3: blocks). */
  readonly rxVersion: 2 | 3;
  private readonly txSlotSize: number;
  private readonly txDataOffset: number;
  private readonly txWords: Uint32Array;
  private txHead = 0;
  private txPending = 0;
  private retryKick: NodeJS.Immediate | NodeJS.Timeout | undefined;
  /** Retry kicks in a row that ended in ENOBUFS / EAGAIN (see scheduleRetry). */
  private txRetries = 0;
  /** retryKick is a timer (else an immediate). */
  private retryTimer = false;
  private readonly batch: FrameBatch;
  private readonly loop: RxLoop;
  private readonly poll: object;
  private closed = false;

  constructor(
    private readonly native: NativeAddon,
    private readonly sock: NativePacketSocket,
    readonly iface: InterfaceInfo,
    opts: RxLoopOptions = {},
  ) {
    this.rxData = Buffer.from(sock.rx);
    this.txData = Buffer.from(sock.tx);
    this.txWords = new Uint32Array(sock.tx);
    this.txSlots = sock.txFrameCount;
    this.txLinear = sock.txLinear;
    this.rxVersion = sock.rxVersion;
    this.txSlotSize = sock.txFrameSize;
    this.txDataOffset = sock.txDataOffset;
    // The kernel's own limit for a raw frame (MTU + Ethernet header + one VLAN tag), which it no
    // longer applies when the TX slots carry a virtio_net_hdr (txLinear).
    this.maxFrame = Math.min(sock.txFrameSize - sock.txDataOffset, iface.mtu + 18);

    this.batch = new FrameBatch(opts.batchSize ?? 64, this.rxData);
    const handle = sock.handle;
    const walker = (opts as AfPacketOptions).rxWalk === 'js' ? new JsRingWalker(sock) : undefined;
    this.loop = new RxLoop(
      {
        fill: walker
          ? (b, max) => walker.fill(b.desc, max)
          : (b, max) => native.packetRxPoll(handle, b.desc, max),
        arm: () => native.pollStart(this.poll, 1),
        disarm: () => native.pollStop(this.poll),
      },
      this.batch,
      this.stats,
      opts,
    );
    this.poll = native.pollOpen(sock.fd, this.loop.ready);
  }

  onFrames(handler: FrameHandler): void {
    this.loop.setHandler(handler);
    this.start();
  }

  start(): void {
    if (this.closed) throw new IoClosedError(`AF_PACKET socket on ${this.iface.name}`);
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  /** Whether the open socket keeps the process alive while receiving (default true). */
  ref(on: boolean): void {
    if (!this.closed) this.native.pollRef(this.poll, on);
  }

  txAlloc(length: number): number {
    if (this.closed) throw new IoClosedError(`AF_PACKET socket on ${this.iface.name}`);
    if (length > this.maxFrame || length <= 0) {
      throw new IoFrameSizeError(
        `frame of ${length} bytes does not fit a ${this.maxFrame}-byte TX slot`,
      );
    }
    if (this.txPending === this.txSlots) {
      this.stats.txFull++;
      return -1;
    }
    let slot = this.txHead + this.txPending;
    if (slot >= this.txSlots) slot -= this.txSlots;
    const w = (slot * this.txSlotSize) >>> 2;
    const status = this.txWords[w + 5]!;
    if (status !== TP_STATUS_AVAILABLE && status !== TP_STATUS_WRONG_FORMAT) {
      this.stats.txFull++;
      return -1;
    }
    this.txWords[w + 4] = length; // tp_len
    this.txPending++;
    this.stats.txBytes += length;
    return slot * this.txSlotSize + this.txDataOffset;
  }

  send(frame: Uint8Array): boolean {
    const off = this.txAlloc(frame.length);
    if (off < 0) return false;
    this.txData.set(frame, off);
    return true;
  }

  txCommit(): number {
    const n = this.txPending;
    if (n === 0 || this.closed) return 0;
    const r = this.native.packetTxSend(this.sock.handle, this.txHead, n);
    this.txHead = (this.txHead + n) % this.txSlots;
    this.txPending = 0;
    this.stats.txFrames += n;
    this.stats.txKicks++;
    // ENOBUFS/EAGAIN: the frames stay marked in the ring; kick again on the next turn.
    if (r < 0) this.scheduleRetry();
    else this.txRetries = 0;
    return n;
  }

  /**
   * The interface's MTU changed while the socket is open: frames above the new one are refused
   * from now on (the slots' size still bounds a larger one).
   */
  mtuChanged(mtu: number): void {
    this.maxFrame = Math.min(this.txSlotSize - this.txDataOffset, mtu + 18);
  }

  /** True when txAlloc would get a slot now. */
  txReady(): boolean {
    if (this.closed || this.txPending === this.txSlots) return false;
    let slot = this.txHead + this.txPending;
    if (slot >= this.txSlots) slot -= this.txSlots;
    const st = this.txWords[((slot * this.txSlotSize) >>> 2) + 5]!;
    return st === TP_STATUS_AVAILABLE || st === TP_STATUS_WRONG_FORMAT;
  }

  /**
   * Resolves when a TX slot is free (at once if one is). For senders that would rather wait than
   * drop; a forwarder drops instead, like a full device queue. Polls the next slot's status word
   * (setImmediate, then 1 ms timers): the kernel frees slots as the device consumes them.
   */
  txWait(): Promise<void> {
    if (this.closed)
      return Promise.reject(new IoClosedError(`AF_PACKET socket on ${this.iface.name}`));
    if (this.txReady()) return Promise.resolve();
    if (this.txPending > 0) this.txCommit();
    return new Promise((resolve, reject) => {
      let spins = 0;
      const check = (): void => {
        if (this.closed) reject(new IoClosedError(`AF_PACKET socket on ${this.iface.name}`));
        else if (this.txReady()) resolve();
        else if (++spins < 16) setImmediate(check);
        else setTimeout(check, 1);
      };
      setImmediate(check);
    });
  }

  /** Slots handed to the kernel and not yet sent. */
  txInFlight(): number {
    let n = 0;
    for (let s = 0; s < this.txSlots; s++) {
      const st = this.txWords[((s * this.txSlotSize) >>> 2) + 5]!;
      if (st !== TP_STATUS_AVAILABLE && st !== TP_STATUS_WRONG_FORMAT) n++;
    }
    return n;
  }

  /** The last error of a deferred transmit kick (the link went down), or undefined. */
  txError: Error | undefined;

  /**
   * Kicks the ring again after ENOBUFS / EAGAIN. The kernel leaves a frame the device dropped
   * marked for sending and stops there (tpacket_snd), so a frame that can never go (a veth peer
   * whose MTU is below it) would be retried forever and hold every frame behind it: after
   * TX_RETRY_MAX kicks in a row the oldest frame is given up (counted in txDropped) and the rest
   * go on.
   */
  private scheduleRetry(): void {
    if (this.retryKick) return;
    const kick = (): void => {
      this.retryKick = undefined;
      if (this.closed) return;
      let r: number;
      try {
        r = this.native.packetTxSend(this.sock.handle, this.txHead, 0);
      } catch (err) {
        // e.g. ENETDOWN: the link went away between two kicks. Nothing here may throw (this runs
        // outside any caller); the frames still in the ring are counted as dropped and the
        // error is kept for whoever watches the interface.
        this.txError = fromNative(err, { iface: this.iface.name });
        this.stats.txDropped += this.txInFlight();
        return;
      }
      if (r >= 0 || this.txInFlight() === 0) {
        this.txRetries = 0;
        return;
      }
      if (++this.txRetries >= TX_RETRY_MAX) {
        this.txRetries = 0;
        this.dropOldest();
      }
      this.scheduleRetry();
    };
    this.retryTimer = this.txRetries >= TX_RETRY_FAST;
    this.retryKick = this.retryTimer ? setTimeout(kick, 1) : setImmediate(kick);
  }

  /**
   * Gives up the oldest frame still marked for sending: a non-zero tp_next_offset makes the
   * kernel refuse the slot as malformed, which with PACKET_LOSS frees it and moves past it.
   */
  private dropOldest(): void {
    for (let i = 0; i < this.txSlots; i++) {
      let slot = this.txHead + i;
      if (slot >= this.txSlots) slot -= this.txSlots;
      const w = (slot * this.txSlotSize) >>> 2;
      if (this.txWords[w + 5] !== TP_STATUS_SEND_REQUEST) continue;
      this.txWords[w] = 1; // tp_next_offset (PacketTxSend sets it back to 0 on reuse)
      this.stats.txDropped++;
      return;
    }
  }

  /** Joins PACKET_FANOUT group `group` (0..65535) with `mode` (FANOUT.*, | FANOUT_FLAG.*). */
  setFanout(group: number, mode: number = FANOUT.HASH): void {
    try {
      this.native.packetSetFanout(this.sock.handle, group, mode);
    } catch (err) {
      throw fromNative(err, { iface: this.iface.name });
    }
  }

  /** The kernel's PACKET_STATISTICS since the previous call: frames seen and dropped (ring full). */
  kernelStats(): { packets: number; drops: number; freezeQueueCount: number } {
    return this.native.packetStats(this.sock.handle);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.loop.stop();
    if (this.retryKick) {
      if (this.retryTimer) clearTimeout(this.retryKick as NodeJS.Timeout);
      else clearImmediate(this.retryKick as NodeJS.Immediate);
    }
    this.native.pollClose(this.poll);
    this.native.packetClose(this.sock.handle);
  }
}

/**
 * The RX ring walk of the addon's packetRxPoll, in TypeScript over an Int32Array of the ring
 * (V3: struct tpacket_block_desc and struct tpacket3_hdr; V2: struct tpacket2_hdr per slot;
 * little-endian host). Same contract: blocks (V2: slots) walked are handed back (status =
 * TP_STATUS_KERNEL) at the next call.
 */
class JsRingWalker {
  private readonly w: Int32Array;
  private readonly b8: Uint8Array;
  private readonly blockWords: number;
  private readonly blockSize: number;
  private readonly blocks: number;
  private cur = 0;
  private frame = 0;
  private num = 0;
  private off = 0;
  private relFrom = 0;
  private relCount = 0;

  private readonly v2: boolean;
  private readonly frameSize: number;
  private readonly frames: number;

  constructor(sock: NativePacketSocket) {
    this.w = new Int32Array(sock.rx);
    this.b8 = new Uint8Array(sock.rx);
    this.blockSize = sock.rxBlockSize;
    this.blockWords = sock.rxBlockSize >>> 2;
    this.blocks = sock.rxBlockCount;
    this.v2 = sock.rxVersion === 2;
    this.frameSize = sock.rxFrameSize;
    this.frames = sock.rxFrameCount;
  }

  fill(desc: Int32Array, max: number): number {
    return this.v2 ? this.#fill2(desc, max) : this.#fill3(desc, max);
  }

  /** TPACKET_V2: struct tpacket2_hdr at each slot's start, sockaddr_ll 32 bytes in. */
  #fill2(desc: Int32Array, max: number): number {
    const w = this.w;
    const fw = this.frameSize >>> 2;
    while (this.relCount > 0) {
      Atomics.store(w, this.relFrom * fw, 0); // tp_status = TP_STATUS_KERNEL
      this.relFrom = (this.relFrom + 1) % this.frames;
      this.relCount--;
    }
    let n = 0;
    while (n < max) {
      const h = this.cur * fw;
      const st = Atomics.load(w, h);
      if ((st & 1) === 0) break; // TP_STATUS_USER
      const base = this.cur * this.frameSize;
      const d = n * 4;
      desc[d] = base + (w[h + 3]! & 0xffff); // tp_mac
      desc[d + 1] = w[h + 2]!; // tp_snaplen
      desc[d + 2] = w[h + 1]!; // tp_len
      desc[d + 3] = (st & 0xffff) | (this.b8[base + 32 + 10]! << 16); // status | sll_pkttype
      if (this.relCount === 0) this.relFrom = this.cur;
      this.relCount++;
      this.cur = (this.cur + 1) % this.frames;
      n++;
    }
    return n;
  }

  #fill3(desc: Int32Array, max: number): number {
    const w = this.w;
    while (this.relCount > 0) {
      Atomics.store(w, this.relFrom * this.blockWords + 2, 0); // block_status = TP_STATUS_KERNEL
      this.relFrom = (this.relFrom + 1) % this.blocks;
      this.relCount--;
    }
    let n = 0;
    while (n < max) {
      const bw = this.cur * this.blockWords;
      if (this.frame === 0) {
        if ((Atomics.load(w, bw + 2) & 1) === 0) break; // TP_STATUS_USER
        this.num = w[bw + 3]!; // num_pkts
        this.off = w[bw + 4]!; // offset_to_first_pkt
      }
      const base = this.cur * this.blockSize;
      while (this.frame < this.num && n < max) {
        const h = (base + this.off) >>> 2;
        const d = n * 4;
        desc[d] = base + this.off + (w[h + 6]! & 0xffff); // tp_mac
        desc[d + 1] = w[h + 3]!; // tp_snaplen
        desc[d + 2] = w[h + 4]!; // tp_len
        desc[d + 3] = (w[h + 5]! & 0xffff) | (this.b8[base + this.off + 48 + 10]! << 16); // status | sll_pkttype
        this.off += w[h]!; // tp_next_offset
        this.frame++;
        n++;
      }
      if (this.frame >= this.num) {
        if (this.relCount === 0) this.relFrom = this.cur;
        this.relCount++;
        this.cur = (this.cur + 1) % this.blocks;
        this.frame = 0;
        this.num = 0;
      } else break;
    }
    return n;
  }
}
