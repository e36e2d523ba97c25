/**
 * The frame-I/O contract every backend (AF_PACKET, TUN/TAP, memory, pcap) implements: frames come
 * in and go out in batches. A receive batch is one reused object listing up to N frames as
 * (offset, length) pairs into one Buffer; it is valid only during the handler call (the backend
 * hands the memory back to the kernel afterwards). Transmit writes straight into a slot
 * (`txAlloc` then write at the returned offset of `txData`) and `txCommit` hands every slot
 * written since the last commit over at once (one kernel kick per batch).
 */
import { DESC_STRIDE } from './native.js';

export { DESC_STRIDE };

/** `meta` bits: low 16 bits are the kernel's tp_status flags of the frame. */
export const TP_STATUS = {
  /** Checksum not computed yet (locally generated, offloaded): don't verify L4 checksums. */
  CSUMNOTREADY: 0x8,
  VLAN_VALID: 0x10,
  /** The kernel or device verified the checksum. */
  CSUM_VALID: 0x80,
} as const;

/** sll_pkttype, bits 16..23 of `meta`. */
export const PKTTYPE = { HOST: 0, BROADCAST: 1, MULTICAST: 2, OTHERHOST: 3, OUTGOING: 4 } as const;

/** A batch of received frames: `count` frames, frame i at data[offset(i), offset(i)+length(i)). */
export class FrameBatch {
  /** Frames in this batch. */
  count = 0;
  /** The memory the descriptors index (an RX ring or a staging buffer). */
  data: Buffer;
  /** DESC_STRIDE int32 words per frame: offset, captured length, wire length, meta. */
  readonly desc: Int32Array;

  constructor(capacity: number, data: Buffer = Buffer.alloc(0)) {
    this.desc = new Int32Array(capacity * DESC_STRIDE);
    this.data = data;
  }

  /** Frames the descriptor array can list. */
  get capacity(): number {
    return this.desc.length / DESC_STRIDE;
  }

  offset(i: number): number {
    return this.desc[i * DESC_STRIDE]!;
  }

  /** Captured bytes of frame i. */
  length(i: number): number {
    return this.desc[i * DESC_STRIDE + 1]!;
  }

  /** Length of frame i on the wire (above `length(i)` when truncated). */
  wireLength(i: number): number {
    return this.desc[i * DESC_STRIDE + 2]!;
  }

  /** tp_status flags (TP_STATUS) of frame i; 0 for backends without them. */
  status(i: number): number {
    return this.desc[i * DESC_STRIDE + 3]! & 0xffff;
  }

  /** sll_pkttype (PKTTYPE) of frame i; HOST for backends without it. */
  pktType(i: number): number {
    return (this.desc[i * DESC_STRIDE + 3]! >>> 16) & 0xff;
  }

  /** A view of frame i (allocates a view object; hot paths use data/offset/length directly). */
  frame(i: number): Buffer {
    const o = this.offset(i);
    return this.data.subarray(o, o + this.length(i));
  }
}

/** Counters every backend keeps. */
export interface IoStats {
  rxFrames: number;
  rxBytes: number;
  /** Handler calls. */
  rxBatches: number;
  /** Largest batch delivered. */
  rxMaxBatch: number;
  /** Receive-loop turns that used their whole budget and yielded to the event loop. */
  rxYields: number;
  /**
   * Frames captured shorter than they arrived (larger than the receive slot: on AF_PACKET, a
   * frame coalesced by GRO / LRO beyond the MTU). The engine drops them as malformed.
   */
  rxTruncated: number;
  txFrames: number;
  txBytes: number;
  /** txCommit calls that handed at least one frame over (one kernel kick each). */
  txKicks: number;
  /** txAlloc calls refused because every slot was busy. */
  txFull: number;
  /** Frames the backend could not hand over (EAGAIN on a TUN write, a full memory queue). */
  txDropped: number;
}

export function newStats(): IoStats {
  return {
    rxFrames: 0,
    rxBytes: 0,
    rxBatches: 0,
    rxMaxBatch: 0,
    rxYields: 0,
    rxTruncated: 0,
    txFrames: 0,
    txBytes: 0,
    txKicks: 0,
    txFull: 0,
    txDropped: 0,
  };
}

/** Receive-loop tuning, as in the kernel's NAPI. */
export interface RxLoopOptions {
  /** Frames per handler call (the batch capacity; NAPI's weight). Default 64. */
  batchSize?: number;
  /** Frames per event-loop turn before yielding with setImmediate (netdev_budget). Default 256. */
  budget?: number;
}

export type FrameHandler = (batch: FrameBatch) => void;

/** A frame source and sink. */
export interface FrameIO {
  readonly kind: 'af-packet' | 'tun' | 'tap' | 'memory' | 'pcap';
  /** What a frame starts with: an Ethernet header, or an IP header (TUN, raw-IP pcap). */
  readonly linkType: 'ethernet' | 'ip';
  /** Largest frame txAlloc accepts. */
  readonly maxFrame: number;
  readonly stats: IoStats;
  /** Sets the receive handler and starts receiving. */
  onFrames(handler: FrameHandler): void;
  /** Stops receiving (frames stay queued in the kernel ring); onFrames or start() resumes. */
  stop(): void;
  start(): void;
  /** Memory transmit slots live in: write a frame at the offset txAlloc returns. */
  readonly txData: Buffer;
  /** Reserves the next transmit slot for a frame of exactly `length` bytes; -1 when all are busy. */
  txAlloc(length: number): number;
  /** Hands every slot reserved since the last commit to the kernel at once; returns how many. */
  txCommit(): number;
  /** Copies `frame` into a slot (txAlloc + copy); false when all slots are busy. Commit after. */
  send(frame: Uint8Array): boolean;
  close(): Promise<void>;
}
