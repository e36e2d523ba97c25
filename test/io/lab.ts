/**
 * Network lab for the frame-I/O tests: network namespaces and veth pairs with names unique to
 * this run (so parallel runs never collide), all deleted by `cleanup()` (call it in `after`, it
 * never throws). Only documentation addresses are ever configured (192.0.2.0/24,
 * 198.51.100.0/24, 203.0.113.0/24). Needs root; `labSkipReason()` says why a test is skipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A compiled frame-I/O module (`index.js`, `native.js`), for scripts run in a child process. */
export function ioModule(name = 'index.js'): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'dataplane', 'io', name);
}

/** This module, compiled, for child scripts that need its helpers. */
export const LAB_MODULE = fileURLToPath(import.meta.url);

/**
 * MiB of this process's mappings whose VmFlags carry `hg` (advised MADV_HUGEPAGE). A sum, since
 * the kernel may merge neighbouring mappings with the same flags into one.
 */
export function advisedMiB(): number {
  let size = 0;
  let total = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^Size:\s+(\d+) kB/.exec(line);
    if (m) size = Number(m[1]);
    else if (line.startsWith('VmFlags:') && line.split(/\s+/).includes('hg')) total += size;
  }
  return total / 1024;
}

/** Why the namespace tests cannot run here, or undefined when they can. */
export function labSkipReason(): string | undefined {
  if (process.platform !== 'linux')
    return `needs Linux (AF_PACKET, TUN, netns); this is ${process.platform}`;
  if (process.getuid?.() !== 0) {
    return 'needs root (creates network namespaces and veth pairs, opens AF_PACKET sockets); CI runs as root';
  }
  if (spawnSync('ip', ['-V']).status !== 0)
    return 'needs the `ip` command (Debian package iproute2)';
  return undefined;
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export class Lab {
  /** Short random tag in every name this lab creates. */
  readonly tag = randomBytes(3).toString('hex');
  private readonly namespaces: string[] = [];

  /** Creates a namespace `ipvsio-<tag>-<suffix>` with lo up; returns its name. */
  netns(suffix: string): string {
    const name = `ipvsio-${this.tag}-${suffix}`;
    ip('netns', 'add', name);
    this.namespaces.push(name);
    ip('-n', name, 'link', 'set', 'lo', 'up');
    return name;
  }

  /** Interface name `<prefix><tag>` (at most 15 bytes). */
  ifname(prefix: string): string {
    return `${prefix}${this.tag}`.slice(0, 15);
  }

  /** A veth pair with end `a` in namespace `nsA` and end `b` in `nsB`, both up. */
  veth(nsA: string, a: string, nsB: string, b: string): void {
    ip('link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB);
    ip('-n', nsA, 'link', 'set', a, 'up');
    ip('-n', nsB, 'link', 'set', b, 'up');
  }

  /** Deletes every namespace (and so every interface in it). Never throws. */
  cleanup(): void {
    for (const ns of this.namespaces.splice(0)) {
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      if (existsSync(`/run/netns/${ns}`))
        spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    }
  }
}

/** Experimental EtherType (IEEE 802 local experimental 1) the tests' frames carry. */
export const TEST_ETHERTYPE = 0x88b5;

/**
 * A test frame: broadcast destination, `src` MAC, EtherType 0x88b5, then run tag (4 bytes),
 * sequence number (4 bytes) and a pattern derived from the sequence number, `size` bytes in all.
 */
export function testFrame(size: number, seq: number, runTag: number, src: Uint8Array): Buffer {
  const f = Buffer.alloc(size);
  f.fill(0xff, 0, 6);
  f.set(src.subarray(0, 6), 6);
  f.writeUInt16BE(TEST_ETHERTYPE, 12);
  f.writeUInt32BE(runTag >>> 0, 14);
  f.writeUInt32BE(seq >>> 0, 18);
  for (let i = 22; i < size; i++) f[i] = (seq * 31 + i) & 0xff;
  return f;
}

/** Run tag and sequence of a test frame, or undefined for any other frame. */
export function parseTestFrame(
  f: Uint8Array,
  off = 0,
  len = f.length,
): { runTag: number; seq: number } | undefined {
  if (len < 22 || ((f[off + 12]! << 8) | f[off + 13]!) !== TEST_ETHERTYPE) return undefined;
  const dv = new DataView(f.buffer, f.byteOffset + off, len);
  return { runTag: dv.getUint32(14), seq: dv.getUint32(18) };
}
