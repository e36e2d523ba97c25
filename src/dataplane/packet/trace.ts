/**
 * Packet trace: the record of every step a frame takes through the engine (hook, lookup,
 * scheduler choice, state change, rewrite, transmission, verdict), and one-line descriptions of
 * frames (`describeFrame`) and connections (`describeConn`) for humans; `toEthernet` turns raw-IP
 * and Linux cooked capture records into the Ethernet frames the engine takes. Tracing allocates
 * (strings); the per-frame path only builds them when a tracer is set.
 */
import { AF_INET, AF_INET6, formatIp } from '../../core/addr.js';
import { CONN_F_FWD_MASK, CONN_F_TEMPLATE } from '../../core/constants.js';
import type { Ipvs } from '../../core/ipvs.js';
import { protoOps } from '../../proto/index.js';
import { ETH_P, IPPROTO, LINKTYPE } from '../../packet/constants.js';
import { decodeEthernet, decodeIp } from '../../packet/decode.js';
import { PacketView } from '../../packet/view.js';
import { forwardingView, type Tracer } from './ctx.js';

/** Collects the steps of one frame as text lines. */
export class TraceRecorder implements Tracer {
  readonly steps: { kind: string; text: string }[] = [];

  step(kind: string, text: string): void {
    this.steps.push({ kind, text });
  }

  /** The steps, one per line, indented. */
  lines(indent = '    '): string[] {
    return this.steps.map((s) => `${indent}${s.kind.padEnd(8)} ${s.text}`);
  }

  clear(): void {
    this.steps.length = 0;
  }
}

const TCP_FLAG_NAMES: [number, string][] = [
  [0x02, 'S'],
  [0x10, '.'],
  [0x08, 'P'],
  [0x01, 'F'],
  [0x04, 'R'],
  [0x20, 'U'],
];

function ap(af: number, w: ArrayLike<number>, port: number): string {
  const a = formatIp(af, w);
  return af === AF_INET ? `${a}:${port}` : `[${a}]:${port}`;
}

function mac(b: Uint8Array, o: number): string {
  return Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** A one-line description of the frame `buf[off, off+len)` (Ethernet, or raw IP when `ip`). */
export function describeFrame(buf: Uint8Array, off: number, len: number, ip = false): string {
  // as the engine decodes: malformed TCP options are forwarded, so they are described, not refused
  const v = forwardingView();
  const r = ip ? decodeIp(v, buf, off, len) : decodeEthernet(v, buf, off, len);
  const l2 = v.l2Offset >= 0 ? `${mac(buf, v.l2Offset + 6)} → ${mac(buf, v.l2Offset)} ` : '';
  if (r !== 0) return `${l2}malformed (${v.reason}), ${len} bytes`;
  if (v.etherType === ETH_P.ARP) {
    const spa = formatIp(AF_INET, v.u32, 6);
    const tpa = formatIp(AF_INET, v.u32, 7);
    return v.arpOp === 1
      ? `${l2}ARP who-has ${tpa} tell ${spa}`
      : `${l2}ARP ${spa} is-at ${mac(buf, v.arpShaOffset)}`;
  }
  if (v.ipVersion === 0)
    return `${l2}ethertype 0x${v.etherType.toString(16).padStart(4, '0')}, ${len} bytes`;
  const ipv = v.ipVersion === 4 ? 'IPv4' : 'IPv6';
  const frag = v.isFragment ? ` frag off ${v.fragOffset}${v.mf ? ' MF' : ''} id ${v.ipId}` : '';
  const tail = ` ttl ${v.ttl}${v.df ? ' DF' : ''}${frag} len ${v.ipTotalLength}`;
  const s = formatIp(v.af, v.src);
  const d = formatIp(v.af, v.dst);
  switch (v.protocol) {
    case IPPROTO.TCP: {
      if (!v.l4Parsed) return `${l2}${ipv} TCP ${s} → ${d}${tail}`;
      const f = TCP_FLAG_NAMES.filter(([b]) => v.tcpFlags & b)
        .map(([, n]) => n)
        .join('');
      return `${l2}${ipv} TCP ${ap(v.af, v.src, v.srcPort)} → ${ap(v.af, v.dst, v.dstPort)} [${f || 'none'}] seq ${v.tcpSeq} ack ${v.tcpAck}${v.tcpOptionsOk ? '' : ' (options malformed)'}${v.payloadLength ? ` data ${v.payloadLength}` : ''}${tail}`;
    }
    case IPPROTO.UDP:
      if (!v.l4Parsed) return `${l2}${ipv} UDP ${s} → ${d}${tail}`;
      return `${l2}${ipv} UDP ${ap(v.af, v.src, v.srcPort)} → ${ap(v.af, v.dst, v.dstPort)} data ${v.payloadLength}${tail}`;
    case IPPROTO.SCTP:
      return `${l2}${ipv} SCTP ${ap(v.af, v.src, v.srcPort)} → ${ap(v.af, v.dst, v.dstPort)} ${v.sctpChunkType < 0 ? 'no chunk' : `chunk ${v.sctpChunkType}`}${v.sctpChunksOk ? '' : ' (chunks malformed)'}${tail}`;
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6:
      return `${l2}${ipv} ICMP${v.protocol === IPPROTO.ICMPV6 ? 'v6' : ''} ${s} → ${d} type ${v.icmpType} code ${v.icmpCode}${v.icmpIsError ? ` info ${v.icmpRest}` : ''}${tail}`;
    case IPPROTO.IPIP:
    case IPPROTO.IPV6:
    case IPPROTO.GRE:
      return `${l2}${ipv} ${v.protocol === IPPROTO.GRE ? 'GRE' : v.protocol === IPPROTO.IPV6 ? 'IPv6-in-IP' : 'IPIP'} ${s} → ${d} (inner ${describeInner(v)})${tail}`;
    default:
      return `${l2}${ipv} proto ${v.protocol} ${s} → ${d}${tail}`;
  }
}

function describeInner(v: PacketView): string {
  if (v.innerOffset < 0) return '?';
  const end = v.payloadOffset + v.payloadLength;
  return describeFrame(v.buf, v.innerOffset, end - v.innerOffset, true);
}

/**
 * Connection `h` of `ipvs` as the trace shows it: `#h TCP client → VIP → real server Masq
 * ESTABLISHED, timeout 900 s` (templates say so).
 */
export function describeConn(ipvs: Ipvs, h: number): string {
  const t = ipvs.conns;
  const af = t.af(h);
  const daf = t.daf(h);
  const ap = (a: number, w: Uint32Array, o: number, p: number): string =>
    a === AF_INET6 ? `[${formatIp(a, w, o)}]:${p}` : `${formatIp(a, w, o)}:${p}`;
  const flags = t.flags(h);
  const fwd = ['Masq', 'Local', 'Tunnel', 'Route', 'Bypass'][flags & CONN_F_FWD_MASK] ?? '?';
  const proto = t.protocol(h);
  const pname =
    proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : proto === 132 ? 'SCTP' : `proto ${proto}`;
  const tmpl = (flags & CONN_F_TEMPLATE) !== 0;
  const po = protoOps(proto);
  const state = tmpl ? 'template' : po ? po.stateName(t.state(h)) : String(t.state(h));
  return (
    `#${h} ${pname} ${ap(af, t.hot, t.caddrOff(h), t.cport(h))} → ${ap(af, t.hot, t.vaddrOff(h), t.vport(h))}` +
    ` → ${ap(daf, t.cold, t.daddrOff(h), t.dport(h))} ${fwd} ${state}, timeout ${t.timeout(h) / 1000} s`
  );
}

/** Link types `ipvs trace` replays (`toEthernet` converts all but Ethernet). */
export const TRACE_LINKTYPES: readonly number[] = [
  LINKTYPE.ETHERNET,
  LINKTYPE.RAW,
  LINKTYPE.IPV4,
  LINKTYPE.IPV6,
  LINKTYPE.LINUX_SLL,
  LINKTYPE.LINUX_SLL2,
];

/**
 * The Ethernet frame for a capture record of `linkType` (raw IP 101/228/229, Linux cooked 113/276):
 * the destination is `director` (broadcast, multicast and other-host packets of a cooked capture
 * keep what they were), the source is the cooked capture's link address or, when there is none,
 * a locally administered MAC made from the IP source (02:00 + its last four bytes), so every host
 * of the capture keeps its own MAC. A record too short for its header becomes an empty frame
 * (the engine counts it malformed).
 */
export function toEthernet(linkType: number, rec: Uint8Array, director: Uint8Array): Buffer {
  let p = 0;
  let etherType = -1;
  let pktType = 0;
  let src: Uint8Array | null = null;
  if (linkType === LINKTYPE.LINUX_SLL) {
    if (rec.length < 16) return Buffer.alloc(0);
    pktType = (rec[0]! << 8) | rec[1]!;
    const halen = (rec[4]! << 8) | rec[5]!;
    if (halen === 6) src = rec.subarray(6, 12);
    etherType = (rec[14]! << 8) | rec[15]!;
    p = 16;
  } else if (linkType === LINKTYPE.LINUX_SLL2) {
    if (rec.length < 20) return Buffer.alloc(0);
    etherType = (rec[0]! << 8) | rec[1]!;
    pktType = rec[10]!;
    if (rec[11] === 6) src = rec.subarray(12, 18);
    p = 20;
  }
  const ip = rec.subarray(p);
  if (etherType < 0) {
    const ver = ip.length ? ip[0]! >>> 4 : 0;
    etherType = ver === 6 ? ETH_P.IPV6 : ETH_P.IPV4;
  }
  const f = Buffer.alloc(14 + ip.length);
  // sll_pkttype: 1 broadcast, 2 multicast, 3 to another host (PACKET_OTHERHOST)
  if (pktType === 1) f.fill(0xff, 0, 6);
  else if (pktType === 2) f.set([0x01, 0x00, 0x5e, 0, 0, 1], 0);
  else if (pktType === 3) f.set([0x02, 0xff, 0xff, 0xff, 0xff, 0xfe], 0);
  else f.set(director.subarray(0, 6), 0);
  if (src) f.set(src, 6);
  else {
    f[6] = 0x02;
    const v4 = etherType === ETH_P.IPV4 && ip.length >= 16;
    const v6 = etherType === ETH_P.IPV6 && ip.length >= 24;
    if (v4 || v6) f.set(ip.subarray(v4 ? 12 : 20, v4 ? 16 : 24), 8);
  }
  f[12] = etherType >>> 8;
  f[13] = etherType & 0xff;
  f.set(ip, 14);
  return f;
}
