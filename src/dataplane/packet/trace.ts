/**
 * Packet trace: the record of every step a frame takes through the engine (hook, lookup,
 * scheduler choice, state change, rewrite, transmission, verdict), and one-line descriptions of
 * frames for humans (`describeFrame`). Tracing allocates (strings); the per-frame path only builds
 * them when a tracer is set.
 */
import { AF_INET, formatIp } from '../../core/addr.js';
import { ETH_P, IPPROTO } from '../../packet/constants.js';
import { decodeEthernet, decodeIp } from '../../packet/decode.js';
import { PacketView } from '../../packet/view.js';
import type { Tracer } from './ctx.js';

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
  const v = new PacketView();
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
      return `${l2}${ipv} TCP ${ap(v.af, v.src, v.srcPort)} → ${ap(v.af, v.dst, v.dstPort)} [${f || 'none'}] seq ${v.tcpSeq} ack ${v.tcpAck}${v.payloadLength ? ` data ${v.payloadLength}` : ''}${tail}`;
    }
    case IPPROTO.UDP:
      if (!v.l4Parsed) return `${l2}${ipv} UDP ${s} → ${d}${tail}`;
      return `${l2}${ipv} UDP ${ap(v.af, v.src, v.srcPort)} → ${ap(v.af, v.dst, v.dstPort)} data ${v.payloadLength}${tail}`;
    case IPPROTO.SCTP:
      return `${l2}${ipv} SCTP ${ap(v.af, v.src, v.srcPort)} → ${ap(v.af, v.dst, v.dstPort)} chunk ${v.sctpChunkType}${tail}`;
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6:
      return `${l2}${ipv} ICMP${v.protocol === IPPROTO.ICMPV6 ? 'v6' : ''} ${s} → ${d} type ${v.icmpType} code ${v.icmpCode}${v.icmpIsError ? ` info ${v.icmpRest}` : ''}${tail}`;
    case IPPROTO.IPIP:
    case IPPROTO.GRE:
      return `${l2}${ipv} ${v.protocol === IPPROTO.GRE ? 'GRE' : 'IPIP'} ${s} → ${d} (inner ${describeInner(v)})${tail}`;
    default:
      return `${l2}${ipv} proto ${v.protocol} ${s} → ${d}${tail}`;
  }
}

function describeInner(v: PacketView): string {
  if (v.innerOffset < 0) return '?';
  const end = v.payloadOffset + v.payloadLength;
  return describeFrame(v.buf, v.innerOffset, end - v.innerOffset, true);
}
