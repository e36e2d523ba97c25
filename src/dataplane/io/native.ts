/**
 * Lazy loader of the native addon (native/ipvs_native.c). Importing this module never loads it:
 * `loadNative()` does, the first time a native backend is opened, and throws
 * IoNativeMissingError when it is not built. `IPVS_NATIVE_ADDON` overrides the path.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IoNativeMissingError } from './errors.js';

/** Int32 words per frame descriptor: [offset, captured length, wire length, meta]. */
export const DESC_STRIDE = 4;

/** What `packetOpen` returns. */
export interface NativePacketSocket {
  handle: object;
  fd: number;
  rx: ArrayBuffer;
  tx: ArrayBuffer;
  rxBlockSize: number;
  rxBlockCount: number;
  /** TPACKET_V2 (fixed frame slots of rxFrameSize, rxFrameCount of them) or V3 (blocks). */
  rxVersion: 2 | 3;
  rxFrameSize: number;
  rxFrameCount: number;
  txFrameSize: number;
  txFrameCount: number;
  txDataOffset: number;
  /** The TX slots carry a virtio_net_hdr and the kernel copies each frame whole (`txLinear`). */
  txLinear: boolean;
}

/** Options of `packetOpen` (all optional; see docs/native.md for defaults). */
export interface NativePacketOptions {
  /**
   * The receive ring's layout. 2: a slot per frame, handed to user space the moment it is
   * written (no added latency). 3: blocks of frames handed over when full or after
   * `rxRetireMs` (at least 1 ms, which every frame waits at low rates). The addon's default is 3;
   * `openAfPacket` picks 2.
   */
  rxVersion?: 2 | 3;
  rxBlockSize?: number;
  rxBlockCount?: number;
  rxFrameSize?: number;
  rxRetireMs?: number;
  txFrameSize?: number;
  txFrameCount?: number;
  ignoreOutgoing?: boolean;
  qdiscBypass?: boolean;
  /**
   * Transmit frames as linear skbs (default true): the TX socket gets PACKET_VNET_HDR and each
   * frame is copied whole into its skb, instead of skb fragments pointing into the ring, which
   * veth and other owners of the data copy into a new page per frame. Falls back by itself on a
   * kernel without PACKET_VNET_HDR.
   */
  txLinear?: boolean;
}

/** Interface facts as the addon reports them. */
export interface NativeIfInfo {
  name: string;
  index: number;
  mac: Uint8Array;
  hwType: number;
  mtu: number;
  flags: number;
  /** Generic receive offload / large receive offload: 1 on, 0 off, -1 not reported. */
  gro: number;
  lro: number;
}

/** The addon's exports (ABI 1). */
export interface NativeAddon {
  ABI: number;
  DESC_STRIDE: number;
  packetOpen(ifindex: number, opts: NativePacketOptions, netns?: string): NativePacketSocket;
  packetRxPoll(handle: object, desc: Int32Array, max: number): number;
  packetRxRelease(handle: object): void;
  packetTxSend(handle: object, start: number, count: number): number;
  packetSetFanout(handle: object, group: number, modeAndFlags: number): void;
  packetStats(handle: object): { packets: number; drops: number; freezeQueueCount: number };
  packetClose(handle: object): void;
  pollOpen(fd: number, cb: (status: number, events: number) => void): object;
  pollStart(poll: object, events?: number): void;
  pollStop(poll: object): void;
  pollRef(poll: object, ref: boolean): void;
  pollClose(poll: object): void;
  tunOpen(
    name: string | undefined,
    tap: boolean,
    multiQueue: boolean,
    netns?: string,
  ): { fd: number; name: string };
  fdReadBatch(fd: number, buf: Uint8Array, slotSize: number, desc: Int32Array, max: number): number;
  fdWriteBatch(fd: number, buf: Uint8Array, desc: Int32Array, count: number): number;
  fdClose(fd: number): void;
  ifInfo(name: string, netns?: string): NativeIfInfo;
  capNetRaw(): string | null;
  /** Zeroed memory, 2 MiB aligned and advised for transparent huge pages; null if mmap fails. */
  hugeBuffer(bytes: number): ArrayBuffer | null;
}

const ADDON_REL = join('native', 'build', 'Release', 'ipvs_native.node');
let cached: NativeAddon | undefined;
let failure: string | undefined;

/** Where the addon is looked for: the package root above this file (src/ or dist/src/). */
export function nativeAddonPath(): string {
  const env = process.env.IPVS_NATIVE_ADDON;
  if (env) return env;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, ADDON_REL);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', ADDON_REL);
}

/** Loads the addon once; throws IoNativeMissingError when it is missing or does not load. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  if (failure === undefined) {
    if (process.platform !== 'linux')
      failure = `native frame I/O needs Linux, this is ${process.platform}`;
    else {
      const path = nativeAddonPath();
      if (!existsSync(path)) failure = `${path} does not exist`;
      else {
        try {
          const mod = createRequire(import.meta.url)(path) as NativeAddon;
          if (mod.ABI !== 1) failure = `${path} has ABI ${String(mod.ABI)}, expected 1: rebuild it`;
          else cached = mod;
        } catch (err) {
          failure = `${path} does not load: ${(err as Error).message}`;
        }
      }
    }
  }
  if (cached) return cached;
  throw new IoNativeMissingError(failure);
}

/** True when the addon is built and loads (never throws). */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

/** Tables smaller than one huge page gain nothing from one. */
const HUGE_PAGE = 2 << 20;

/**
 * An allocator for the connection table's records and index (`IpvsOptions.tableAlloc`): with
 * the addon built, tables of 2 MiB or more go on transparent huge pages, so a lookup at a random
 * handle among a million costs one TLB entry per 2 MiB instead of per 4 KiB (docs/native.md);
 * without it, or when the mapping fails, plain ArrayBuffers.
 */
export function hugeTableAlloc(): (bytes: number) => ArrayBuffer {
  let native: NativeAddon | null = null;
  try {
    native = loadNative();
  } catch {
    native = null;
  }
  return (bytes) => (bytes >= HUGE_PAGE && native?.hugeBuffer(bytes)) || new ArrayBuffer(bytes);
}
