/**
 * A director on a manual clock for the packet-engine tests: two interfaces, eth0 toward the
 * clients (10.0.0.1/24, router 10.0.0.254 for everything else) and eth1 toward the real servers
 * (192.168.1.1/24), each sending into an output-only pcap frame I/O whose `sent` list the tests
 * read; static neighbours for the client, the router and three real servers. `send()` runs one
 * frame through the engine and returns the verdict, the reason and the frames each interface sent.
 * `checksumErrors()` recomputes every checksum of an output frame from scratch.
 */
import { AF_INET, AF_INET6, parseIp } from '../../../src/core/addr.js';
import { PacketEngine, type EngineOptions } from '../../../src/dataplane/packet/engine.js';
import { REASON_NAMES } from '../../../src/dataplane/packet/counters.js';
import { parseMac } from '../../../src/dataplane/packet/net.js';
import { PcapIO } from '../../../src/dataplane/io/pcap.js';
import { FrameBatch } from '../../../src/dataplane/io/types.js';
import {
  PacketView,
  decodeEthernet,
  decodeIcmpInner,
  decodeTunnelInner,
  decodeGue,
  ipv4HeaderChecksumOk,
  l4ChecksumOk,
  sctpChecksumOk,
  csumFold,
  csumPartial,
  IPPROTO,
  TUNNEL,
} from '../../../src/packet/index.js';
import { destSpec, makeIpvs, svcSpec } from '../../helpers/ipvs.js';

export const MAC = {
  eth0: '02:00:00:00:00:a0',
  eth1: '02:00:00:00:00:a1',
  client: '02:00:00:00:00:c1',
  router: '02:00:00:00:00:fe',
  rs1: '02:00:00:00:01:11',
  rs2: '02:00:00:00:01:12',
  rs3: '02:00:00:00:01:13',
} as const;

export const VIP = '10.0.0.100';
export const CLIENT = '10.0.0.5';
export const REMOTE = '203.0.113.7';
export const RS1 = '192.168.1.11';
export const RS2 = '192.168.1.12';
export const RS3 = '192.168.1.13';
export const VIP6 = '2001:db8::100';
export const CLIENT6 = '2001:db8::5';
export const RS6 = '2001:db8:1::11';

/** When `recording.on`, every frame `send()` handles and every frame it sends are kept here. */
export const recording: { on: boolean; frames: Buffer[] } = { on: false, frames: [] };

/** What one frame did. */
export interface SendResult {
  verdict: number;
  reason: string;
  eth0: Buffer[];
  eth1: Buffer[];
}

export function makeLab(opts: EngineOptions & { maxConns?: number } = {}) {
  const { ipvs, clock, advance } = makeIpvs({ maxConns: opts.maxConns ?? 4096 });
  const engine = new PacketEngine(ipvs, opts);
  const io0 = new PcapIO(undefined, 'eth0', {});
  const io1 = new PcapIO(undefined, 'eth1', {});
  const net = engine.net;
  const eth0 = net.addIface({
    name: 'eth0',
    mac: MAC.eth0,
    addrs: ['10.0.0.1/24', '2001:db8::1/64'],
    io: io0,
  });
  const eth1 = net.addIface({
    name: 'eth1',
    mac: MAC.eth1,
    addrs: ['192.168.1.1/24', '2001:db8:1::1/64'],
    io: io1,
  });
  net.addRoute({ dst: 'default', via: '10.0.0.254', dev: 'eth0' });
  const stat = (ifc: typeof eth0, ip: string, mac: string): void => {
    const a = parseIp(ip)!;
    engine.neigh.addStatic(ifc, a.af, a.words, parseMac(mac));
  };
  stat(eth0, CLIENT, MAC.client);
  stat(eth0, '10.0.0.254', MAC.router);
  stat(eth0, CLIENT6, MAC.client);
  stat(eth1, RS1, MAC.rs1);
  stat(eth1, RS2, MAC.rs2);
  stat(eth1, RS3, MAC.rs3);
  stat(eth1, RS6, MAC.rs1);
  const send = (ifname: 'eth0' | 'eth1', frame: Uint8Array): SendResult => {
    io0.sent.length = 0;
    io1.sent.length = 0;
    const ifc = ifname === 'eth0' ? eth0 : eth1;
    const copy = Buffer.from(frame);
    const verdict = engine.input(ifc, copy, 0, copy.length);
    engine.tx.commit();
    const r = engine.lastReason;
    if (recording.on) {
      recording.frames.push(Buffer.from(frame));
      for (const f of io0.sent) recording.frames.push(Buffer.from(f.data));
      for (const f of io1.sent) recording.frames.push(Buffer.from(f.data));
    }
    return {
      verdict,
      reason: r < 0 ? 'forwarded' : REASON_NAMES[r]!,
      eth0: io0.sent.map((f) => Buffer.from(f.data)),
      eth1: io1.sent.map((f) => Buffer.from(f.data)),
    };
  };
  /**
   * Like `send`, through `engine.receive()` as a one-frame batch (so the fast path can take it),
   * the frame at byte `at` of the batch's memory.
   */
  const batch = new FrameBatch(1, Buffer.alloc(2048));
  const receive = (
    ifname: 'eth0' | 'eth1',
    frame: Uint8Array,
    at = 0,
  ): { eth0: Buffer[]; eth1: Buffer[] } => {
    io0.sent.length = 0;
    io1.sent.length = 0;
    batch.data.set(frame, at);
    batch.desc[0] = at;
    batch.desc[1] = frame.length;
    batch.desc[2] = frame.length;
    batch.count = 1;
    engine.receive(ifname === 'eth0' ? eth0 : eth1, batch);
    engine.tx.commit();
    return {
      eth0: io0.sent.map((f) => Buffer.from(f.data)),
      eth1: io1.sent.map((f) => Buffer.from(f.data)),
    };
  };
  /** A raw IP packet the director's own stack sends through `ifname` (LOCAL_OUT), as `send`. */
  const output = (
    ifname: 'eth0' | 'eth1',
    ip: Uint8Array,
  ): { verdict: number; eth0: Buffer[]; eth1: Buffer[] } => {
    io0.sent.length = 0;
    io1.sent.length = 0;
    const copy = Buffer.from(ip);
    const verdict = engine.output(ifname === 'eth0' ? eth0 : eth1, copy, 0, copy.length);
    engine.tx.commit();
    return {
      verdict,
      eth0: io0.sent.map((f) => Buffer.from(f.data)),
      eth1: io1.sent.map((f) => Buffer.from(f.data)),
    };
  };
  return { ipvs, clock, advance, engine, eth0, eth1, io0, io1, send, receive, output };
}

/** A lab with the NAT service VIP:80 → RS1:8080 (rr). */
export function natLab(o: Parameters<typeof makeLab>[0] = {}): ReturnType<typeof makeLab> {
  const lab = makeLab(o);
  lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
  lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS1, 8080));
  return lab;
}

export const v4 = (s: string): number => parseIp(s)!.words[0]!;

/**
 * Every checksum of an Ethernet frame, recomputed from scratch: the IPv4 header, TCP / UDP /
 * ICMP / ICMPv6 / SCTP, tunnel outer headers and their inner packet, and the IP header quoted in
 * an ICMP error. Returns the failures (empty when all verify).
 */
export function checksumErrors(frame: Uint8Array): string[] {
  const errs: string[] = [];
  const v = new PacketView();
  if (decodeEthernet(v, frame, 0, frame.length) !== 0) return [`undecodable: ${v.reason}`];
  checkIp(v, errs, 'outer');
  return errs;
}

function checkIp(v: PacketView, errs: string[], where: string): void {
  const b = v.buf;
  if (v.ipVersion === 4 && !ipv4HeaderChecksumOk(b, v.l3Offset, v.ipHeaderLength))
    errs.push(`${where}: IPv4 header checksum`);
  if (!v.l4Parsed || v.isFragment) return;
  const l4len = v.ipEnd - v.l4Offset;
  switch (v.protocol) {
    case IPPROTO.TCP:
    case IPPROTO.UDP:
    case IPPROTO.ICMPV6:
      if (!l4ChecksumOk(v.af, v.src, v.dst, v.protocol, b, v.l4Offset, l4len))
        errs.push(`${where}: L4 checksum (${v.protocol})`);
      break;
    case IPPROTO.ICMP:
      if (csumFold(csumPartial(b, v.l4Offset, l4len)) !== 0xffff)
        errs.push(`${where}: ICMP checksum`);
      break;
    case IPPROTO.SCTP:
      if (!sctpChecksumOk(b, v.l4Offset, l4len)) errs.push(`${where}: SCTP CRC32c`);
      break;
  }
  if (v.icmpIsError) {
    const q = new PacketView();
    if (
      decodeIcmpInner(q, v) === 0 &&
      q.ipVersion === 4 &&
      !ipv4HeaderChecksumOk(b, q.l3Offset, q.ipHeaderLength)
    )
      errs.push(`${where}: quoted IPv4 header checksum`);
  }
  if (v.tunnelType === TUNNEL.IPIP || v.tunnelType === TUNNEL.GRE) {
    const i = new PacketView();
    if (decodeTunnelInner(i, v) === 0) checkIp(i, errs, 'inner');
    else errs.push(`inner undecodable: ${i.reason}`);
  }
  if (v.protocol === IPPROTO.UDP && v.dstPort === 6080) {
    if (decodeGue(v) === 0) {
      const i = new PacketView();
      if (decodeTunnelInner(i, v) === 0) checkIp(i, errs, 'inner');
    }
  }
}

export { AF_INET, AF_INET6 };
