/**
 * Addresses as IPVS keeps them: an address family plus four 32-bit words in host order.
 * IPv4 uses word 0 only; IPv6 uses all four, most significant first. Parsing and formatting
 * follow inet_pton / glibc inet_ntop so listings match ipvsadm.
 */

/** Address family numbers, as the kernel defines them (they matter for sorting, spec §10.6). */
export const AF_INET = 2;
export const AF_INET6 = 10;
export type Af = typeof AF_INET | typeof AF_INET6;

/** A parsed address: its family and four host-order words. */
export interface IpAddr {
  af: Af;
  words: Uint32Array;
}

/** Creates an all-zero four-word address buffer. */
export function newAddrWords(): Uint32Array {
  return new Uint32Array(4);
}

/** Parses a dotted-quad IPv4 address (exactly four decimal parts, each 0..255) into a number. */
export function parseIpv4(text: string): number | null {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46;
    if (c === 46) {
      // a part ends: 1 to 3 digits (the length cap keeps 0255 out), at most 255
      if (digits === 0 || part > 255) return null;
      v = v * 256 + part;
      part = digits = 0;
      if (i < text.length && ++dots > 3) return null;
      continue;
    }
    if (c < 48 || c > 57) return null;
    // inet_pton: decimal, no leading zero (glibc refuses "01", which inet_aton reads as octal)
    if (digits === 1 && part === 0) return null;
    if (++digits > 3) return null;
    part = part * 10 + (c - 48);
  }
  return dots === 3 ? v >>> 0 : null;
}

/** Parses an IPv6 address (RFC 4291 text forms, including an embedded dotted quad) into `out`. */
export function parseIpv6(text: string, out: Uint32Array = newAddrWords()): Uint32Array | null {
  if (text.length === 0 || text.length > 45) return null;
  let head = text;
  let tail4: number | null = null;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) >= 0) {
    tail4 = parseIpv4(text.slice(lastColon + 1));
    if (tail4 === null) return null;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = head.indexOf('::');
  if (dbl >= 0 && head.indexOf('::', dbl + 1) >= 0) return null;
  const parseGroups = (s: string): number[] | null => {
    if (s === '') return [];
    const gs = s.split(':');
    const r: number[] = [];
    for (const g of gs) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      r.push(parseInt(g, 16));
    }
    return r;
  };
  let groups: number[];
  if (dbl >= 0) {
    const a = parseGroups(head.slice(0, dbl));
    const b = parseGroups(head.slice(dbl + 2));
    if (!a || !b || a.length + b.length > 7) return null;
    groups = [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b];
  } else {
    const g = parseGroups(head);
    if (!g || g.length !== 8) return null;
    groups = g;
  }
  for (let i = 0; i < 4; i++) out[i] = ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0;
  if (tail4 !== null) out[3] = tail4;
  return out;
}

/** Parses an IPv4 or IPv6 address text (no brackets). */
export function parseIp(text: string): IpAddr | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) {
    const words = newAddrWords();
    words[0] = v4;
    return { af: AF_INET, words };
  }
  const v6 = parseIpv6(text);
  return v6 ? { af: AF_INET6, words: v6 } : null;
}

/** Formats a host-order IPv4 number as a dotted quad. */
export function formatIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Formats four host-order words the way glibc's inet_ntop does for AF_INET6. */
export function formatIpv6(w: ArrayLike<number>, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 4; i++) {
    const x = w[off + i]! >>> 0;
    g.push(x >>> 16, x & 0xffff);
  }
  // longest run of zero groups (length >= 2); the first wins a tie
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (g[i] === 0) {
      if (curBase < 0) {
        curBase = i;
        curLen = 1;
      } else curLen++;
    } else if (curBase >= 0) {
      if (curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase >= 0 && curLen > bestLen) {
    bestBase = curBase;
    bestLen = curLen;
  }
  if (bestLen < 2) bestBase = -1;
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) s += ':';
      continue;
    }
    if (i !== 0) s += ':';
    // embedded IPv4: ::a.b.c.d (compatible) or ::ffff:a.b.c.d (mapped)
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) {
      s += formatIpv4(w[off + 3]! >>> 0);
      break;
    }
    s += g[i]!.toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) s += ':';
  return s;
}

/** Formats an address of the given family. */
export function formatIp(af: number, w: ArrayLike<number>, off = 0): string {
  return af === AF_INET6 ? formatIpv6(w, off) : formatIpv4(w[off]! >>> 0);
}

/** The kernel's ip_vs_addr_fold: the IPv4 address, or the XOR of the four IPv6 words (host order). */
export function addrFold(af: number, w: ArrayLike<number>, off = 0): number {
  return af === AF_INET6
    ? (w[off]! ^ w[off + 1]! ^ w[off + 2]! ^ w[off + 3]!) >>> 0
    : w[off]! >>> 0;
}

/** True when two addresses of family `af` are equal. */
export function addrEqual(af: number, a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a[0] !== b[0]) return false;
  return af !== AF_INET6 || (a[1] === b[1] && a[2] === b[2] && a[3] === b[3]);
}

/** Copies an address's words into `out`, zeroing unused words for IPv4. */
export function addrCopy(af: number, src: ArrayLike<number>, out: Uint32Array, outOff = 0): void {
  out[outOff] = src[0]!;
  if (af === AF_INET6) {
    out[outOff + 1] = src[1]!;
    out[outOff + 2] = src[2]!;
    out[outOff + 3] = src[3]!;
  } else {
    out[outOff + 1] = 0;
    out[outOff + 2] = 0;
    out[outOff + 3] = 0;
  }
}

/**
 * Applies a persistence netmask: IPv4 `mask` is a host-order dotted mask; IPv6 `mask` is a prefix
 * length 1..128 (spec §1.4). Writes the masked address to `out`.
 */
export function maskAddr(af: number, src: ArrayLike<number>, mask: number, out: Uint32Array): void {
  if (af !== AF_INET6) {
    out[0] = (src[0]! & mask) >>> 0;
    out[1] = out[2] = out[3] = 0;
    return;
  }
  for (let i = 0; i < 4; i++) {
    const bits = Math.max(0, Math.min(32, mask - 32 * i));
    const m = bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    out[i] = (src[i]! & m) >>> 0;
  }
}

/** Number of leading one bits of a host-order IPv4 mask, or -1 when the mask is not contiguous. */
export function maskToPrefix(mask: number): number {
  let n = 0;
  while (n < 32 && (mask >>> (31 - n)) & 1) n++;
  const rebuilt = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return rebuilt === mask >>> 0 ? n : -1;
}
