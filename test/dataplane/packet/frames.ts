/** Frame builders and readers shared by the packet-engine tests. */
import {
  PacketBuilder,
  PacketView,
  TCP_FLAG,
  decodeEthernet,
  decodeIcmpInner,
  readMac,
} from '../../../src/packet/index.js';
import { formatIp } from '../../../src/core/addr.js';
import { CLIENT, MAC, RS1, VIP } from './lab.js';

export { TCP_FLAG };
export const { SYN, ACK, FIN, RST, PSH } = TCP_FLAG;

export interface TcpFrame {
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  flags?: number;
  seq?: number;
  ack?: number;
  ttl?: number;
  df?: boolean;
  payload?: string | number | Uint8Array;
  smac?: string;
  dmac?: string;
  id?: number;
  mf?: boolean;
  fragOffset?: number;
  tcpOptions?: { kind: number; data?: Uint8Array }[];
}

/** A TCP/IPv4 frame, by default client:40000 → VIP:80 SYN, from the client's MAC to eth0. */
export function tcp4(o: TcpFrame = {}): Buffer {
  const b = PacketBuilder.eth({ src: o.smac ?? MAC.client, dst: o.dmac ?? MAC.eth0 })
    .ipv4({
      src: o.src ?? CLIENT,
      dst: o.dst ?? VIP,
      ttl: o.ttl ?? 64,
      df: o.df ?? false,
      id: o.id ?? 1,
    })
    .tcp({
      srcPort: o.sport ?? 40000,
      dstPort: o.dport ?? 80,
      flags: o.flags ?? SYN,
      seq: o.seq ?? 1000,
      ack: o.ack ?? 0,
      options: o.tcpOptions,
    });
  if (o.payload !== undefined) b.payload(o.payload);
  return Buffer.from(b.build());
}

/** A TCP/IPv4 frame from real server RS1:8080 to client:40000 (NAT reply), RS1's MAC to eth1. */
export function rsTcp4(o: TcpFrame = {}): Buffer {
  return tcp4({
    src: RS1,
    dst: CLIENT,
    sport: 8080,
    dport: 40000,
    smac: MAC.rs1,
    dmac: MAC.eth1,
    ...o,
  });
}

/** A UDP/IPv4 frame. */
export function udp4(o: TcpFrame & { checksum?: number } = {}): Buffer {
  const b = PacketBuilder.eth({ src: o.smac ?? MAC.client, dst: o.dmac ?? MAC.eth0 })
    .ipv4({
      src: o.src ?? CLIENT,
      dst: o.dst ?? VIP,
      ttl: o.ttl ?? 64,
      df: o.df ?? false,
      id: o.id ?? 1,
      mf: o.mf,
      fragOffset: o.fragOffset,
    })
    .udp({
      srcPort: o.sport ?? 40000,
      dstPort: o.dport ?? 53,
      ...(o.checksum !== undefined ? { checksum: o.checksum } : {}),
    });
  if (o.payload !== undefined) b.payload(o.payload);
  return Buffer.from(b.build());
}

/** Rewrites the IPv4 header checksum of Ethernet frame `f` (header at 14) after an edit. */
export function ipv4Sum(f: Buffer): void {
  f.writeUInt16BE(0, 24);
  const ihl = (f[14]! & 15) * 4;
  let s = 0;
  for (let i = 14; i < 14 + ihl; i += 2) s += f.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  f.writeUInt16BE(~s & 0xffff, 24);
}

/** Decodes a frame (asserting nothing). */
export function dec(f: Uint8Array): PacketView {
  const v = new PacketView();
  decodeEthernet(v, f, 0, f.length);
  return v;
}

/** The packet quoted by an ICMP error frame. */
export function quoted(f: Uint8Array): PacketView {
  const v = dec(f);
  const q = new PacketView();
  decodeIcmpInner(q, v);
  return q;
}

export const dmac = (f: Uint8Array): string => readMac(f, 0);
export const smac = (f: Uint8Array): string => readMac(f, 6);
export const src = (v: PacketView): string => formatIp(v.af, v.src);
export const dst = (v: PacketView): string => formatIp(v.af, v.dst);
