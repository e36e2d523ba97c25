/**
 * pcap backend: frames come from a classic pcap file (delivered once, in budgeted batches, as
 * fast as the handler takes them); frames sent are collected and written to a pcap file on
 * close(). Uses the packet library's reader/writer (src/packet/pcap.ts). Received batches point
 * straight into the file's bytes (no copy).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { LINKTYPE } from '../../packet/constants.js';
import { readPcap, writePcap, type PcapWriteFrame } from '../../packet/pcap.js';
import { IoPcapError } from './errors.js';
import { RxLoop, StagedTx } from './rx-loop.js';
import { StagedFrameIO } from './staged-io.js';
import { FrameBatch, type FrameIO, type RxLoopOptions } from './types.js';

export interface PcapIOOptions extends RxLoopOptions {
  /** Frames to receive: a pcap file path or its bytes. None: nothing is received. */
  input?: string | Uint8Array;
  /** Where close() writes the frames sent. None: keep them in memory only (`sent`). */
  output?: string;
  /** Link type of the output (default: the input's, else 'ethernet'). */
  linkType?: 'ethernet' | 'ip';
  /** Largest frame txAlloc accepts. Default 65535 + 14. */
  maxFrame?: number;
  txSlots?: number;
}

/** Opens a pcap-backed FrameIO (reads the input file first). */
export async function openPcap(opts: PcapIOOptions = {}): Promise<PcapIO> {
  let input: Uint8Array | undefined;
  let source = '<buffer>';
  if (typeof opts.input === 'string') {
    source = opts.input;
    input = await readFile(opts.input);
  } else input = opts.input;
  return new PcapIO(input, source, opts);
}

export class PcapIO extends StagedFrameIO implements FrameIO {
  protected get label(): string {
    return 'pcap frame I/O';
  }

  readonly kind = 'pcap' as const;
  readonly linkType: 'ethernet' | 'ip';
  /** Frames sent so far (copies), in order, with their commit time. */
  readonly sent: PcapWriteFrame[] = [];
  /** Resolves once every input frame has been handed to the handler. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private readonly offsets: Int32Array;
  private readonly lengths: Int32Array;
  private readonly wire: Int32Array;
  private next = 0;
  protected readonly loop: RxLoop;

  constructor(
    input: Uint8Array | undefined,
    source: string,
    private readonly opts: PcapIOOptions,
  ) {
    const maxFrame = opts.maxFrame ?? 65535 + 14;
    super(maxFrame, new StagedTx(maxFrame, opts.txSlots ?? 256));
    this.done = new Promise((res) => (this.resolveDone = res));
    let data: Buffer = Buffer.alloc(0);
    let n = 0;
    let inLink: 'ethernet' | 'ip' | undefined;
    this.offsets = new Int32Array(0);
    this.lengths = this.offsets;
    this.wire = this.offsets;
    if (input) {
      const r = readPcap(input);
      if (!r.ok) throw new IoPcapError(source, r.reason);
      inLink = r.file.linkType === LINKTYPE.ETHERNET ? 'ethernet' : 'ip';
      data = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
      n = r.file.records.length;
      this.offsets = new Int32Array(n);
      this.lengths = new Int32Array(n);
      this.wire = new Int32Array(n);
      r.file.records.forEach((rec, i) => {
        this.offsets[i] = rec.data.byteOffset - input.byteOffset;
        this.lengths[i] = rec.data.length;
        this.wire[i] = rec.origLength;
      });
    }
    this.linkType = opts.linkType ?? inLink ?? 'ethernet';
    this.loop = new RxLoop(
      {
        fill: (b, max) => {
          let k = 0;
          while (k < max && this.next < n) {
            const d = k * 4;
            b.desc[d] = this.offsets[this.next]!;
            b.desc[d + 1] = this.lengths[this.next]!;
            b.desc[d + 2] = this.wire[this.next]!;
            b.desc[d + 3] = 0;
            this.next++;
            k++;
          }
          return k;
        },
        arm: () => {
          if (this.next >= n) this.resolveDone();
        },
        disarm: () => undefined,
      },
      new FrameBatch(opts.batchSize ?? 64, data),
      this.stats,
      opts,
    );
    if (n === 0) this.resolveDone();
  }

  /** Input frames not yet delivered. */
  get remaining(): number {
    return this.offsets.length - this.next;
  }

  txCommit(): number {
    const n = this.tx.pending;
    if (n === 0) return 0;
    this.tx.pending = 0;
    const now = Date.now() * 1000;
    for (let i = 0; i < n; i++) {
      const off = this.tx.desc[i * 4]!;
      const len = this.tx.desc[i * 4 + 1]!;
      this.sent.push({
        data: Buffer.from(this.tx.data.subarray(off, off + len)),
        timestampUs: now,
      });
      this.stats.txBytes += len;
    }
    this.stats.txFrames += n;
    this.stats.txKicks++;
    return n;
  }

  /** The pcap file of the frames sent so far. */
  toPcap(): Buffer {
    return writePcap(this.sent, this.linkType === 'ethernet' ? LINKTYPE.ETHERNET : LINKTYPE.RAW);
  }

  /** Stops receiving; writes the output file when one was given. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.loop.stop();
    if (this.opts.output !== undefined) await writeFile(this.opts.output, this.toPcap());
  }
}
