/**
 * `PacketBuilder`: a small fluent builder for tests and fixtures,
 * `PacketBuilder.eth({...}).ipv4({...}).tcp({...}).payload('hi').build()`. Lengths, EtherTypes,
 * protocol numbers and every checksum (IPv4 header, TCP/UDP/ICMPv6 with pseudo-header, ICMP, SCTP
 * CRC32c, GRE, the outer UDP of GUE) are filled in unless given; `corruptChecksum: true` on a layer
 * writes a wrong one on purpose. Fields that cannot be encoded throw PacketEncodeError.
 */
import { ETH_P, IPPROTO } from './constants.js';
import {
  csumFinish,
  csumPartial,
  icmpChecksum,
  ipv4HeaderChecksum,
  l4Checksum,
} from './checksum.js';
import { writeSctpChecksum } from './crc32c.js';
import { PacketEncodeError } from './errors.js';
import { parseIpv4, parseIpv6 } from '../core/addr.js';
import * as arp from './arp.js';
import * as ethernet from './ethernet.js';
import * as gre from './gre.js';
import * as gue from './gue.js';
import * as icmp from './icmp.js';
import * as ipv4 from './ipv4.js';
import * as ipv6 from './ipv6.js';
import * as sctp from './sctp.js';
import * as tcp from './tcp.js';
import * as udp from './udp.js';

/** Checksum control shared by layers that carry one. */
export interface ChecksumOpts {
  /** Write this checksum instead of computing it. */
  checksum?: number;
  /** Compute the checksum, then write a wrong one. */
  corruptChecksum?: boolean;
}

type Opt<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

/** Layer options accepted by the builder (lengths and next-protocol fields are optional). */
export type EthOpts = Partial<ethernet.EthernetHeader>;
export type Ipv4Opts = Opt<ipv4.Ipv4Header, 'totalLength' | 'protocol'> & ChecksumOpts;
export type Ipv6Opts = Opt<ipv6.Ipv6Header, 'payloadLength' | 'nextHeader'>;
export type TcpOpts = Opt<tcp.TcpHeader, 'flags'> & ChecksumOpts;
export type UdpOpts = Opt<udp.UdpHeader, 'length'> & ChecksumOpts;
export type IcmpOpts = icmp.IcmpHeader & ChecksumOpts;
export type SctpOpts = Opt<sctp.SctpPacket, 'chunks' | 'vtag'> & ChecksumOpts;
export type GreOpts = Opt<gre.GreHeader, 'protocol'> & ChecksumOpts;
export type GueOpts = Partial<gue.GueHeader>;

type Layer =
  | { kind: 'eth'; o: EthOpts }
  | { kind: 'arp'; o: arp.ArpPacket }
  | { kind: 'ipv4'; o: Ipv4Opts }
  | { kind: 'ipv6'; o: Ipv6Opts }
  | { kind: 'tcp'; o: TcpOpts }
  | { kind: 'udp'; o: UdpOpts }
  | { kind: 'icmp'; o: IcmpOpts }
  | { kind: 'icmpv6'; o: IcmpOpts }
  | { kind: 'sctp'; o: SctpOpts }
  | { kind: 'gre'; o: GreOpts }
  | { kind: 'gue'; o: GueOpts }
  | { kind: 'raw'; o: Uint8Array };

const PROTO_OF: Record<string, number> = {
  ipv4: IPPROTO.IPIP,
  ipv6: IPPROTO.IPV6,
  tcp: IPPROTO.TCP,
  udp: IPPROTO.UDP,
  icmp: IPPROTO.ICMP,
  icmpv6: IPPROTO.ICMPV6,
  sctp: IPPROTO.SCTP,
  gre: IPPROTO.GRE,
};
const ETHERTYPE_OF: Record<string, number> = { ipv4: ETH_P.IPV4, ipv6: ETH_P.IPV6, arp: ETH_P.ARP };

/** Default addresses, so a test only names what matters to it. */
export const DEFAULT_MAC = { src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' } as const;

/** Fluent packet builder. Each call appends a layer; `build()` encodes the whole stack. */
export class PacketBuilder {
  readonly #layers: Layer[] = [];

  /** Starts a frame with an Ethernet header. */
  static eth(o: EthOpts = {}): PacketBuilder {
    return new PacketBuilder().#push({ kind: 'eth', o });
  }
  /** Starts a raw IPv4 packet. */
  static ipv4(o: Ipv4Opts): PacketBuilder {
    return new PacketBuilder().ipv4(o);
  }
  /** Starts a raw IPv6 packet. */
  static ipv6(o: Ipv6Opts): PacketBuilder {
    return new PacketBuilder().ipv6(o);
  }

  #push(l: Layer): this {
    this.#layers.push(l);
    return this;
  }
  /** Appends an ARP packet. */
  arp(o: arp.ArpPacket): this {
    return this.#push({ kind: 'arp', o });
  }
  /** Appends an IPv4 header (also an inner header after GRE, GUE or IPv4/IPv6 for IPIP). */
  ipv4(o: Ipv4Opts): this {
    return this.#push({ kind: 'ipv4', o });
  }
  /** Appends an IPv6 header with optional extension headers. */
  ipv6(o: Ipv6Opts): this {
    return this.#push({ kind: 'ipv6', o });
  }
  /** Appends a TCP header. */
  tcp(o: TcpOpts): this {
    return this.#push({ kind: 'tcp', o });
  }
  /** Appends a UDP header (`checksum: 0` sends no checksum). */
  udp(o: UdpOpts): this {
    return this.#push({ kind: 'udp', o });
  }
  /** Appends an ICMP header; an error's quoted packet goes in `.payload(...)`. */
  icmp(o: IcmpOpts): this {
    return this.#push({ kind: 'icmp', o });
  }
  /** Appends an ICMPv6 header. */
  icmpv6(o: IcmpOpts): this {
    return this.#push({ kind: 'icmpv6', o });
  }
  /** Appends an SCTP packet (common header and chunks). */
  sctp(o: SctpOpts): this {
    return this.#push({ kind: 'sctp', o });
  }
  /** Appends a GRE header. */
  gre(o: GreOpts = {}): this {
    return this.#push({ kind: 'gre', o });
  }
  /** Appends a GUE v0 header (after `.udp(...)`). */
  gue(o: GueOpts = {}): this {
    return this.#push({ kind: 'gue', o });
  }
  /** Appends payload bytes (a string is UTF-8, a number that many zero bytes). */
  payload(p: Uint8Array | string | number): this {
    const b =
      typeof p === 'string'
        ? Buffer.from(p, 'utf8')
        : typeof p === 'number'
          ? new Uint8Array(p)
          : p;
    return this.#push({ kind: 'raw', o: b });
  }

  #next(i: number): string {
    return this.#layers[i + 1]?.kind ?? 'raw';
  }

  #headerLength(l: Layer, i: number): number {
    switch (l.kind) {
      case 'eth':
        return ethernet.encodingLength({ dst: '', src: '', etherType: 0, ...l.o });
      case 'arp':
        return 28;
      case 'ipv4':
        return ipv4.encodingLength(l.o as ipv4.Ipv4Header);
      case 'ipv6':
        return ipv6.encodingLength(l.o as ipv6.Ipv6Header);
      case 'tcp':
        return tcp.encodingLength(l.o as tcp.TcpHeader);
      case 'udp':
      case 'icmp':
      case 'icmpv6':
        return 8;
      case 'sctp':
        return sctp.encodingLength({ ...l.o, vtag: 0, chunks: l.o.chunks ?? [] });
      case 'gre':
        return gre.encodingLength({ protocol: 0, ...l.o });
      case 'gue':
        return gue.encodingLength({ protocol: 0, ...l.o });
      case 'raw':
        return l.o.length;
    }
    throw new PacketEncodeError(`unknown layer ${String(i)}`);
  }

  /** Bytes `encode` writes. */
  encodingLength(): number {
    let n = 0;
    this.#layers.forEach((l, i) => (n += this.#headerLength(l, i)));
    return n;
  }

  /** Encodes the stack into `buf` at `offset`; returns the bytes written. */
  encode(buf: Uint8Array, offset: number): number {
    const L = this.#layers;
    const lens = L.map((l, i) => this.#headerLength(l, i));
    const offs: number[] = [];
    const rest: number[] = []; // bytes from this layer's start to the end
    let total = 0;
    for (let i = L.length - 1; i >= 0; i--) {
      total += lens[i]!;
      rest[i] = total;
    }
    if (!(offset >= 0) || offset + total > buf.length) {
      throw new PacketEncodeError(`packet of ${total} bytes does not fit at offset ${offset}`);
    }
    let p = offset;
    for (let i = 0; i < L.length; i++) {
      offs.push(p);
      const l = L[i]!;
      const nk = this.#next(i);
      switch (l.kind) {
        case 'eth':
          ethernet.encode(
            {
              src: DEFAULT_MAC.src,
              dst: DEFAULT_MAC.dst,
              etherType: ETHERTYPE_OF[nk] ?? 0,
              ...l.o,
            },
            buf,
            p,
          );
          break;
        case 'arp':
          arp.encode(l.o, buf, p);
          break;
        case 'ipv4':
          ipv4.encode(
            { protocol: PROTO_OF[nk] ?? 0, totalLength: rest[i]!, ...l.o, checksum: 0 },
            buf,
            p,
          );
          break;
        case 'ipv6':
          ipv6.encode(
            { nextHeader: PROTO_OF[nk] ?? IPPROTO.NONE, payloadLength: rest[i]! - 40, ...l.o },
            buf,
            p,
          );
          break;
        case 'tcp':
          tcp.encode({ flags: 0, ...l.o, checksum: 0 }, buf, p);
          break;
        case 'udp':
          udp.encode({ length: rest[i]!, ...l.o, checksum: 0 }, buf, p);
          break;
        case 'icmp':
        case 'icmpv6':
          icmp.encode({ ...l.o, checksum: 0 }, buf, p);
          break;
        case 'sctp':
          sctp.encode({ vtag: 0, chunks: [], ...l.o, checksum: 0 }, buf, p);
          break;
        case 'gre':
          gre.encode(
            { protocol: nk === 'ipv6' ? ETH_P.IPV6 : ETH_P.IPV4, ...l.o, checksum: 0 },
            buf,
            p,
          );
          break;
        case 'gue':
          gue.encode({ protocol: PROTO_OF[nk] ?? 0, ...l.o }, buf, p);
          break;
        case 'raw':
          buf.set(l.o, p);
          break;
      }
      p += lens[i]!;
    }
    // Checksums innermost first: outer ones (GRE, GUE's UDP) cover the inner bytes.
    for (let i = L.length - 1; i >= 0; i--) this.#checksum(L, i, buf, offs[i]!, rest[i]!, lens[i]!);
    return total;
  }

  #checksum(L: Layer[], i: number, buf: Uint8Array, p: number, rest: number, hlen: number): void {
    const l = L[i]!;
    if (
      l.kind === 'eth' ||
      l.kind === 'arp' ||
      l.kind === 'raw' ||
      l.kind === 'ipv6' ||
      l.kind === 'gue'
    )
      return;
    const o = l.o as ChecksumOpts;
    let at: number;
    let c: number;
    if (l.kind === 'ipv4') {
      at = p + 10;
      c = ipv4HeaderChecksum(buf, p, hlen);
    } else if (l.kind === 'sctp') {
      writeSctpChecksum(buf, p, rest);
      if (o.checksum !== undefined) {
        buf[p + 8] = o.checksum;
        buf[p + 9] = o.checksum >>> 8;
        buf[p + 10] = o.checksum >>> 16;
        buf[p + 11] = o.checksum >>> 24;
      }
      if (o.corruptChecksum) buf[p + 8] ^= 1;
      return;
    } else if (l.kind === 'gre') {
      if (!l.o.checksumPresent) return;
      at = p + 4;
      c = csumFinish(csumPartial(buf, p, rest) - ((buf[p + 4]! << 8) | buf[p + 5]!));
    } else if (l.kind === 'icmp') {
      at = p + 2;
      c = icmpChecksum(buf, p, rest);
    } else {
      // tcp, udp, icmpv6: find the enclosing IP header for the pseudo-header
      let j = i - 1;
      while (j >= 0 && L[j]!.kind !== 'ipv4' && L[j]!.kind !== 'ipv6') j--;
      if (j < 0)
        throw new PacketEncodeError(`${l.kind} needs an enclosing IP layer for its checksum`);
      const ip = L[j]!;
      const af = ip.kind === 'ipv6' ? 10 : 2;
      const src = new Uint32Array(4);
      const dst = new Uint32Array(4);
      const ipo = ip.o as { src: string; dst: string };
      if (af === 2) {
        src[0] = parseIpv4(ipo.src) ?? 0;
        dst[0] = parseIpv4(ipo.dst) ?? 0;
      } else {
        parseIpv6(ipo.src, src);
        parseIpv6(ipo.dst, dst);
      }
      const proto =
        l.kind === 'tcp' ? IPPROTO.TCP : l.kind === 'udp' ? IPPROTO.UDP : IPPROTO.ICMPV6;
      at = p + (l.kind === 'tcp' ? 16 : l.kind === 'udp' ? 6 : 2);
      c = l4Checksum(af, src, dst, proto, buf, p, rest);
      if (l.kind === 'udp' && o.checksum === 0) c = 0;
    }
    if (o.checksum !== undefined) c = o.checksum;
    if (o.corruptChecksum) c ^= 1;
    buf[at] = c >>> 8;
    buf[at + 1] = c;
  }

  /** Encodes the stack into a new Buffer (at `headroom`, which is left zero, when given). */
  build(headroom = 0): Buffer {
    const n = this.encodingLength();
    const b = Buffer.alloc(headroom + n);
    this.encode(b, headroom);
    return b;
  }
}
