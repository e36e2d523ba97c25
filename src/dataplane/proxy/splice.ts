/**
 * The native byte relay for long-lived TCP connections (native/splice.c). Once a proxied
 * connection is known to be a keep-alive one, its two descriptors are handed to the addon, which
 * relays the bytes in C, one read and one write per chunk, and hands back to JavaScript once per
 * loop turn the packets and bytes each connection read (counted, fed to the state machine and the
 * idle timer here as ./tcp.ts does per chunk), and the connection itself at the first EOF or
 * error. Without the addon, or with `IPVS_PROXY_SPLICE=0`, every byte goes through ./tcp.ts.
 */
import { loadNative } from '../io/native.js';

/** What the addon exports for the relay. */
export interface SpliceAddon {
  /** Registers the two callbacks; returns the shared counts array (rows of 5 numbers). */
  spliceInit(
    onStats: (count: number) => void,
    onEnd: (slot: number, ...end: Parameters<Spliced['nativeEnded']>) => void,
  ): Float64Array;
  /** Starts relaying between two descriptors whose libuv reads are stopped: slot or -errno. */
  spliceStart(clientFd: number, serverFd: number): number;
  /** Takes a connection back: bytes still waiting per side (client, server), or undefined. */
  spliceStop(slot: number): [Buffer | null, Buffer | null] | undefined;
  /** Hands the counts of this loop turn over now (the check phase does it otherwise). */
  spliceFlush(): void;
  /** Process-wide figures. */
  spliceInfo(): { live: number; started: number; pendingWrites: number };
}

/** A connection the relay can hand counts and ends to. */
export interface Spliced {
  nativeStats(inPkts: number, inBytes: number, outPkts: number, outBytes: number): void;
  nativeEnded(
    side: number,
    code: number,
    inPkts: number,
    inBytes: number,
    outPkts: number,
    outBytes: number,
  ): void;
}

/** Row stride of the counts array: slot, in packets, in bytes, out packets, out bytes. */
export const STAT_STRIDE = 5;

/** The relay, its connections by slot and the counts array; null when not available. */
export interface Splice {
  addon: SpliceAddon;
  bySlot: (Spliced | undefined)[];
  stats: Float64Array;
}

let cached: Splice | null | undefined;

/** The native relay, initialised once per process, or null. */
export function splice(): Splice | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.env.IPVS_PROXY_SPLICE === '0') return null;
  let a: Partial<SpliceAddon>;
  try {
    a = loadNative() as unknown as Partial<SpliceAddon>;
  } catch {
    return null;
  }
  if (typeof a.spliceInit !== 'function' || typeof a.spliceStart !== 'function') return null;
  const addon = a as SpliceAddon;
  const bySlot: (Spliced | undefined)[] = [];
  const s: Splice = { addon, bySlot, stats: new Float64Array(0) };
  s.stats = addon.spliceInit(
    (count) => {
      const st = s.stats;
      for (let i = 0; i < count; i++) {
        const o = i * STAT_STRIDE;
        bySlot[st[o]!]?.nativeStats(st[o + 1]!, st[o + 2]!, st[o + 3]!, st[o + 4]!);
      }
    },
    (slot, side, code, ip, ib, op, ob) => {
      const c = bySlot[slot];
      bySlot[slot] = undefined;
      c?.nativeEnded(side, code, ip, ib, op, ob);
    },
  );
  cached = s;
  return s;
}
