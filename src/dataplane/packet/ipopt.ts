/**
 * IPv4 options as a Linux host handles them (net/ipv4/ip_options.c): the checks and the updates
 * made when a packet is received (`__ip_options_compile` with an skb: a record-route slot and an
 * address timestamp get the host's address, a timestamp the time, a full timestamp its overflow
 * count, whatever follows an end-of-list is blanked), the forwarding rewrite
 * (`ip_forward_options`) and what later fragments keep (`ip_options_fragment`).
 */
import { AF_INET } from '../../core/addr.js';
import { copyBytes, put32 } from './bytes.js';
import type { NetModel } from './net.js';

/** Option types (IPOPT_*). */
export const IPOPT = {
  END: 0,
  NOOP: 1,
  RR: 7,
  TIMESTAMP: 68,
  SEC: 130,
  LSRR: 131,
  CIPSO: 134,
  SID: 136,
  SSRR: 137,
  RA: 148,
} as const;

/** Timestamp flags (the low nibble of the option's fourth byte). */
const TS_TSONLY = 0;
const TS_TSANDADDR = 1;
const TS_PRESPEC = 3;

/** inet_addr_type(addr) == RTN_UNICAST: an address of another host (not zero, broadcast,
 * multicast or one of `net`'s). */
export function unicastTest(net: NetModel): (addr: number) => boolean {
  const w = new Uint32Array(1);
  return (a) => {
    if (a === 0 || a === 0xffffffff || a >>> 28 === 14) return false;
    w[0] = a;
    return !net.isLocal(AF_INET, w, 0);
  };
}

/** inet_current_timestamp: the clock `ms` as milliseconds since midnight UTC. */
export function msOfDay(ms: number): number {
  return Math.floor(ms) % 86_400_000;
}

/** What `compileIpv4Options` found: offsets from the IP header, 0 when absent. */
export class Ipv4Options {
  rr = 0;
  ts = 0;
  srr = 0;
  cipso = 0;
  /** A record-route slot was filled: forwarding writes the outgoing address there instead. */
  rrNeedAddr = false;
  /** An address timestamp was filled: likewise. */
  tsNeedAddr = false;
  /** A timestamp was recorded. */
  tsNeedTime = false;
  /** Bytes of the header changed (its checksum must be recomputed). */
  changed = false;

  copyFrom(o: Ipv4Options): void {
    this.rr = o.rr;
    this.ts = o.ts;
    this.srr = o.srr;
    this.cipso = o.cipso;
    this.rrNeedAddr = o.rrNeedAddr;
    this.tsNeedAddr = o.tsNeedAddr;
    this.tsNeedTime = o.tsNeedTime;
    this.changed = o.changed;
  }

  reset(): void {
    this.copyFrom(NO_OPTIONS);
  }
}

/** No option found: what `reset` copies. */
const NO_OPTIONS = new Ipv4Options();

/**
 * `__ip_options_compile` on the received IPv4 header at `buf[ip, ip + ihl)`. `specDst` is the
 * address a record-route or address timestamp gets (fib_compute_spec_dst: the destination of a
 * packet for the host, else the host's source toward the sender); `msOfDay` the time a timestamp
 * gets (milliseconds since midnight UTC); `unicast(addr)` tells whether a prespecified timestamp
 * address is a unicast one of another host (inet_addr_type = RTN_UNICAST: no timestamp).
 * Returns -1 when the options are good, else the parameter problem's pointer (an offset from the
 * start of the header). `o` tells what was found.
 */
export function compileIpv4Options(
  buf: Uint8Array,
  ip: number,
  ihl: number,
  specDst: number,
  msOfDay: number,
  unicast: (addr: number) => boolean,
  o: Ipv4Options,
): number {
  o.reset();
  let p = ip + 20;
  let l = ihl - 20;
  while (l > 0) {
    const type = buf[p]!;
    if (type === IPOPT.END) {
      for (p++, l--; l > 0; p++, l--) {
        if (buf[p] !== IPOPT.END) {
          buf[p] = IPOPT.END;
          o.changed = true;
        }
      }
      break;
    }
    if (type === IPOPT.NOOP) {
      l--;
      p++;
      continue;
    }
    if (l < 2) return p - ip;
    const optlen = buf[p + 1]!;
    if (optlen < 2 || optlen > l) return p - ip;
    const ptr = optlen >= 3 ? buf[p + 2]! : 0;
    switch (type) {
      case IPOPT.SSRR:
      case IPOPT.LSRR:
        if (optlen < 3) return p + 1 - ip;
        if (ptr < 4) return p + 2 - ip;
        // RFC 1812 5.2.4.1: one source route
        if (o.srr !== 0) return p - ip;
        o.srr = p - ip;
        break;
      case IPOPT.RR:
        if (o.rr !== 0) return p - ip;
        if (optlen < 3) return p + 1 - ip;
        if (ptr < 4) return p + 2 - ip;
        if (ptr <= optlen) {
          if (ptr + 3 > optlen) return p + 2 - ip;
          put32(buf, p + ptr - 1, specDst);
          buf[p + 2] = ptr + 4;
          o.rrNeedAddr = true;
          o.changed = true;
        }
        o.rr = p - ip;
        break;
      case IPOPT.TIMESTAMP:
        if (o.ts !== 0) return p - ip;
        if (optlen < 4) return p + 1 - ip;
        if (ptr < 5) return p + 2 - ip;
        if (ptr <= optlen) {
          if (ptr + 3 > optlen) return p + 2 - ip;
          let time = -1;
          switch (buf[p + 3]! & 15) {
            case TS_TSONLY:
              time = p + ptr - 1;
              buf[p + 2] = ptr + 4;
              o.tsNeedTime = true;
              break;
            case TS_TSANDADDR:
              if (ptr + 7 > optlen) return p + 2 - ip;
              put32(buf, p + ptr - 1, specDst);
              time = p + ptr + 3;
              o.tsNeedAddr = true;
              o.tsNeedTime = true;
              buf[p + 2] = ptr + 8;
              break;
            case TS_PRESPEC: {
              if (ptr + 7 > optlen) return p + 2 - ip;
              const q = p + ptr - 1;
              const addr =
                ((buf[q]! << 24) | (buf[q + 1]! << 16) | (buf[q + 2]! << 8) | buf[q + 3]!) >>> 0;
              if (unicast(addr)) break;
              time = p + ptr + 3;
              o.tsNeedTime = true;
              buf[p + 2] = ptr + 8;
              break;
            }
            default:
              // another flag: kept as it is on receive
              break;
          }
          if (time >= 0) put32(buf, time, msOfDay);
          if (buf[p + 2] !== ptr) o.changed = true;
        } else if ((buf[p + 3]! & 15) !== TS_PRESPEC) {
          // full: count the host that could not record itself
          const overflow = buf[p + 3]! >>> 4;
          if (overflow === 15) return p + 3 - ip;
          buf[p + 3] = (buf[p + 3]! & 15) | ((overflow + 1) << 4);
          o.changed = true;
        }
        o.ts = p - ip;
        break;
      case IPOPT.RA:
        if (optlen < 4) return p + 1 - ip;
        break;
      case IPOPT.CIPSO:
        // no CIPSO DOI is configured (netlabel), so cipso_v4_validate refuses every one: by its
        // length, else by the unknown DOI
        if (o.cipso !== 0) return p - ip;
        // recorded before it is refused: the parameter problem echoes it
        o.cipso = p - ip;
        return optlen < 8 ? p + 1 - ip : p + 2 - ip;
      default:
        // IPOPT_SEC, IPOPT_SID and unknown options are accepted as they are on receive
        break;
    }
    l -= optlen;
    p += optlen;
  }
  return -1;
}

/**
 * `ip_forward_options`: a forwarded packet's filled record-route slot and address timestamp get
 * `src` (the host's address on the way out, ip_rt_get_source) in place of the receive-time
 * address. Returns true when the header changed (its checksum must be recomputed).
 */
export function forwardIpv4Options(
  buf: Uint8Array,
  ip: number,
  o: Ipv4Options,
  src: number,
): boolean {
  let changed = false;
  if (o.rrNeedAddr) {
    const r = ip + o.rr;
    put32(buf, r + buf[r + 2]! - 5, src);
    changed = true;
  }
  if (o.tsNeedAddr) {
    const t = ip + o.ts;
    put32(buf, t + buf[t + 2]! - 9, src);
    changed = true;
  }
  return changed;
}

/**
 * `__ip_options_echo`: the options a reply to the packet at `buf[ip…)` carries, `o` being what
 * its receive found: its record route and timestamp, each with room for one more entry when the
 * receive recorded one, and a CIPSO option (only a parameter problem about it has one: no DOI
 * is configured), padded with end-of-list to a multiple of 4; source routes never get this
 * far, other options are not echoed. Written to `out[0…)`, `d` telling
 * `buildIpv4Options` what to fill; returns their length, or -1 when no reply may be sent (an
 * entry to add without the room for it).
 */
export function echoIpv4Options(
  buf: Uint8Array,
  ip: number,
  o: Ipv4Options,
  unicast: (addr: number) => boolean,
  out: Uint8Array,
  d: Ipv4Options,
): number {
  d.reset();
  let n = 0;
  if (o.rr !== 0) {
    const s = ip + o.rr;
    const optlen = buf[s + 1]!;
    const soff = buf[s + 2]!;
    d.rr = 20 + n;
    copyBytes(out, n, buf, s, optlen);
    if (o.rrNeedAddr && soff <= optlen) {
      if (soff + 3 > optlen) return -1;
      out[n + 2] = soff + 4;
      d.rrNeedAddr = true;
    }
    n += optlen;
  }
  if (o.ts !== 0) {
    const s = ip + o.ts;
    const optlen = buf[s + 1]!;
    let soff = buf[s + 2]!;
    d.ts = 20 + n;
    copyBytes(out, n, buf, s, optlen);
    if (soff <= optlen) {
      if (o.tsNeedAddr) {
        if (soff + 3 > optlen) return -1;
        d.tsNeedAddr = true;
        soff += 4;
      }
      if (o.tsNeedTime) {
        if (soff + 3 > optlen) return -1;
        if ((out[n + 3]! & 15) !== TS_PRESPEC) {
          d.tsNeedTime = true;
          soff += 4;
        } else if (soff + 7 <= optlen) {
          const q = n + soff - 1;
          const addr =
            ((out[q]! << 24) | (out[q + 1]! << 16) | (out[q + 2]! << 8) | out[q + 3]!) >>> 0;
          if (!unicast(addr)) {
            d.tsNeedTime = true;
            soff += 8;
          }
        }
      }
      out[n + 2] = soff;
    }
    n += optlen;
  }
  if (o.cipso !== 0) {
    const s = ip + o.cipso;
    const optlen = buf[s + 1]!;
    copyBytes(out, n, buf, s, optlen);
    n += optlen;
  }
  while (n & 3) out[n++] = IPOPT.END;
  return n;
}

/**
 * `ip_options_build`: the echoed options of a reply, at `b[ip + 20…)`, get `src` (the reply's
 * source) in the entries `d` names, and the time `msOfDay`.
 */
export function buildIpv4Options(
  b: Uint8Array,
  ip: number,
  d: Ipv4Options,
  src: number,
  msOfDay: number,
): void {
  if (d.rrNeedAddr) put32(b, ip + d.rr + b[ip + d.rr + 2]! - 5, src);
  if (d.tsNeedAddr) put32(b, ip + d.ts + b[ip + d.ts + 2]! - 9, src);
  if (d.tsNeedTime) put32(b, ip + d.ts + b[ip + d.ts + 2]! - 5, msOfDay);
}

/**
 * `ip_options_fragment` on the options at `b[p, end)` of a fragment after the first: options
 * without the copied bit (0x80: record route, timestamp) become no-operations.
 */
export function blankUncopiedOptions(b: Uint8Array, p: number, end: number): void {
  while (p < end) {
    const type = b[p]!;
    if (type === IPOPT.END) return;
    if (type === IPOPT.NOOP) {
      p++;
      continue;
    }
    if (p + 1 >= end) return;
    const optlen = b[p + 1]!;
    if (optlen < 2 || p + optlen > end) return;
    if ((type & 0x80) === 0) b.fill(IPOPT.NOOP, p, p + optlen);
    p += optlen;
  }
}
