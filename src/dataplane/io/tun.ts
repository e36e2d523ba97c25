/**
 * TUN/TAP backend: /dev/net/tun with IFF_TUN or IFF_TAP and IFF_NO_PI, non-blocking. Receive is
 * the NAPI-style loop of rx-loop.ts over `fdReadBatch` (one read per frame, many frames per call
 * into a staging buffer); transmit stages frames and writes them with one `fdWriteBatch` per
 * commit. A TUN frame is an IP packet (linkType 'ip'); a TAP frame is an Ethernet frame.
 */
import { fromNative } from './errors.js';
import { interfaceInfo, netnsPath, type InterfaceInfo } from './iface.js';
import { loadNative, type NativeAddon } from './native.js';
import { RxLoop, StagedTx } from './rx-loop.js';
import { StagedFrameIO } from './staged-io.js';
import { FrameBatch, type FrameIO, type RxLoopOptions } from './types.js';

export interface TunOptions extends RxLoopOptions {
  /** Device name ("" or omitted: the kernel picks tunN / tapN). */
  name?: string;
  /** IFF_TAP (Ethernet frames) instead of IFF_TUN (IP packets). */
  tap?: boolean;
  /** IFF_MULTI_QUEUE: open the same name again for more queues. */
  multiQueue?: boolean;
  /** Network namespace to create the device in (name under /run/netns, or a path). */
  netns?: string;
  /** Bytes per receive/transmit slot (largest frame). Default 65535 + 14 rounded to 16. */
  slotSize?: number;
  /** Transmit slots staged per commit. Default 256. */
  txSlots?: number;
}

/** Creates (or attaches to) a TUN/TAP device. Throws IoNativeMissingError / IoNotRootError / IoSyscallError. */
export function openTun(opts: TunOptions = {}): TunIO {
  const native = loadNative();
  let r: { fd: number; name: string };
  try {
    r = native.tunOpen(
      opts.name,
      opts.tap === true,
      opts.multiQueue === true,
      netnsPath(opts.netns),
    );
  } catch (err) {
    throw fromNative(err, { capability: 'CAP_NET_ADMIN' });
  }
  let info: InterfaceInfo;
  try {
    info = interfaceInfo(r.name, opts);
  } catch (err) {
    native.fdClose(r.fd);
    throw err;
  }
  return new TunIO(native, r.fd, info, opts);
}

export class TunIO extends StagedFrameIO implements FrameIO {
  protected get label(): string {
    return `TUN device ${this.name}`;
  }

  readonly kind: 'tun' | 'tap';
  readonly linkType: 'ethernet' | 'ip';
  readonly name: string;
  protected readonly loop: RxLoop;
  private readonly poll: object;

  constructor(
    private readonly native: NativeAddon,
    readonly fd: number,
    readonly iface: InterfaceInfo,
    opts: TunOptions = {},
  ) {
    const slot = opts.slotSize ?? (65535 + 14 + 15) & ~15;
    super(slot, new StagedTx(slot, opts.txSlots ?? 256));
    this.kind = opts.tap ? 'tap' : 'tun';
    this.linkType = opts.tap ? 'ethernet' : 'ip';
    this.name = iface.name;
    const batchSize = opts.batchSize ?? 64;
    const rxBuf = Buffer.alloc(slot * batchSize);
    const batch = new FrameBatch(batchSize, rxBuf);
    this.loop = new RxLoop(
      {
        fill: (b, max) => {
          try {
            return native.fdReadBatch(fd, rxBuf, slot, b.desc, max);
          } catch (err) {
            throw fromNative(err, { iface: this.name });
          }
        },
        arm: () => native.pollStart(this.poll, 1),
        disarm: () => native.pollStop(this.poll),
      },
      batch,
      this.stats,
      opts,
    );
    this.poll = native.pollOpen(fd, this.loop.ready);
  }

  ref(on: boolean): void {
    if (!this.closed) this.native.pollRef(this.poll, on);
  }

  txCommit(): number {
    const n = this.tx.pending;
    if (n === 0 || this.closed) return 0;
    this.tx.pending = 0;
    let written: number;
    try {
      written = this.native.fdWriteBatch(this.fd, this.tx.data, this.tx.desc, n);
    } catch (err) {
      this.stats.txDropped += n;
      throw fromNative(err, { iface: this.name });
    }
    for (let i = 0; i < written; i++) this.stats.txBytes += this.tx.desc[i * 4 + 1]!;
    this.stats.txFrames += written;
    this.stats.txDropped += n - written;
    this.stats.txKicks++;
    return written;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.loop.stop();
    this.native.pollClose(this.poll);
    this.native.fdClose(this.fd);
  }
}
