/**
 * IPv4 reassembly before IPVS (spec §5.1, §5.3): fragments to a VIP and fragmented NAT replies
 * are gathered (in any order), handled as one datagram and sent on as fragments again, along
 * their own boundaries or at their largest size; duplicates, overlaps, contradictions, ECN mixes,
 * timeouts (with ICMP fragment reassembly time exceeded) and the memory threshold as ip_defrag
 * treats them (IPv6 after 60 s, with ICMPv6 time exceeded), first fragments the host refuses,
 * pings larger than the MTU answered in fragments.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { PacketBuilder, PacketView, decodeEthernet } from '../../../src/packet/index.js';
import { Reasm, REASM_DONE, REASM_HELD, USER_LOCAL } from '../../../src/dataplane/packet/reasm.js';
import { R } from '../../../src/dataplane/packet/counters.js';
import { destSpec, fwmSpec, svcSpec } from '../../helpers/ipvs.js';
import { CLIENT, CLIENT6, MAC, RS1, RS6, VIP, VIP6, checksumErrors, makeLab } from './lab.js';
import { dec, dmac, dst, ipv4Sum, quoted, src, udp4 } from './frames.js';

/**
 * Splits the whole IPv4 frame `whole` into fragments carrying `sizes` data bytes each (the last
 * takes the rest); `tos` / `df` override the header of every fragment.
 */
function split(whole: Buffer, sizes: number[], o: { tos?: number[]; df?: boolean } = {}): Buffer[] {
  const data = whole.subarray(34);
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = i < sizes.length ? Math.min(sizes[i]!, data.length - at) : data.length - at;
    const f = Buffer.concat([whole.subarray(0, 34), data.subarray(at, at + n)]);
    f.writeUInt16BE(20 + n, 16);
    const more = at + n < data.length;
    f.writeUInt16BE((o.df ? 0x4000 : 0) | (more ? 0x2000 : 0) | (at >>> 3), 20);
    if (o.tos) f[15] = o.tos[i]!;
    ipv4Sum(f);
    out.push(f);
    at += n;
  }
  return out;
}

/**
 * Splits the whole IPv6 frame `whole` (no extension headers) into fragments with identification
 * `id`, carrying `sizes` bytes of what follows the fixed header each (the last takes the rest).
 */
function split6(whole: Buffer, id: number, sizes: number[]): Buffer[] {
  const head = whole.subarray(0, 54);
  const nh = whole[20]!;
  const data = whole.subarray(54);
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = i < sizes.length ? Math.min(sizes[i]!, data.length - at) : data.length - at;
    const fh = Buffer.alloc(8);
    fh[0] = nh;
    fh.writeUInt16BE(at | (at + n < data.length ? 1 : 0), 2);
    fh.writeUInt32BE(id, 4);
    const f = Buffer.concat([head, fh, data.subarray(at, at + n)]);
    f[20] = 44;
    f.writeUInt16BE(8 + n, 18);
    out.push(f);
    at += n;
  }
  return out;
}

/** The datagram carried by IPv4 fragment frames (any order), rebuilt as one frame. */
function join(frames: Buffer[]): Buffer {
  const vs = frames.map((f) => ({ f, v: dec(f) })).sort((a, b) => a.v.fragOffset - b.v.fragOffset);
  const head = vs[0]!.f;
  const whole = Buffer.concat([head.subarray(0, 34), ...vs.map(({ f }) => f.subarray(34))]);
  whole.writeUInt16BE(whole.length - 14, 16);
  whole.writeUInt16BE(0, 20);
  ipv4Sum(whole);
  return whole;
}

/**
 * Sends a datagram's first fragment and another's later one, then checks both are held until
 * `ms` and gone just after, with one error sent: returns it (the first fragment's datagram's).
 */
function timedOut(lab: ReturnType<typeof makeLab>, frames: Buffer[], ms: number): Buffer {
  for (const f of frames) lab.send('eth0', f);
  assert.equal(lab.engine.ctx.reasm.size, 2);
  lab.io0.sent.length = 0;
  lab.advance(ms - 1000);
  lab.engine.tick();
  assert.deepEqual([lab.io0.sent.length, lab.engine.ctx.reasm.size], [0, 2], 'not yet');
  lab.advance(1_100);
  lab.engine.tick();
  assert.equal(lab.engine.ctx.reasm.size, 0);
  assert.equal(lab.io0.sent.length, 1, 'one error: only the datagram whose first fragment came');
  return Buffer.from(lab.io0.sent[0]!.data);
}

/** A lab with UDP VIP:53 → RS1:5353 (NAT). */
function udpLab(): ReturnType<typeof makeLab> {
  const lab = makeLab();
  lab.ipvs.addService(svcSpec(VIP, 53, { protocol: 17, scheduler: 'rr' }));
  lab.ipvs.addDest(svcSpec(VIP, 53, { protocol: 17 }), destSpec(RS1, 5353));
  return lab;
}

describe('IPv4 reassembly', () => {
  it('fragments in any order: held, scheduled whole, NATed, sent along their own boundaries', () => {
    const lab = udpLab();
    const whole = udp4({ payload: 3000, id: 4242 });
    const [a, b, c] = split(whole, [1480, 1480]);
    assert.deepEqual(lab.send('eth0', c!).reason, 'frag-held');
    assert.deepEqual(lab.send('eth0', a!).reason, 'frag-held');
    assert.equal(lab.ipvs.conns.count, 0, 'nothing scheduled before the datagram is whole');
    const r = lab.send('eth0', b!);
    assert.equal(r.reason, 'forwarded');
    assert.equal(r.eth1.length, 3);
    const out = r.eth1.map((f) => dec(f));
    assert.deepEqual(
      out.map((v) => [dst(v), v.fragOffset, v.mf, v.ipTotalLength, v.ipId]),
      [
        [RS1, 0, true, 1500, 4242],
        [RS1, 1480, true, 1500, 4242],
        [RS1, 2960, false, 68, 4242],
      ],
    );
    assert.equal(out[0]!.dstPort, 5353);
    for (const f of r.eth1) assert.deepEqual(checksumErrors(f), []);
    const rebuilt = join(r.eth1);
    assert.deepEqual(checksumErrors(rebuilt), [], 'the UDP checksum of the datagram holds');
    assert.deepEqual(rebuilt.subarray(42), whole.subarray(42), 'payload unchanged');
    const c0 = lab.ipvs.listConns()[0]!;
    assert.deepEqual([c0.cport, c0.dport, lab.ipvs.conns.count], [40000, 5353, 1]);
    const st = lab.ipvs.listServices()[0]!.stats;
    assert.deepEqual([st.inpkts, st.inbytes], [1, 3028], 'one datagram, one packet');
  });

  it('sent on at the largest fragment size when the boundaries no longer fit the egress MTU', () => {
    const lab = udpLab();
    lab.eth1.mtu = 1200;
    const [a, b, c] = split(udp4({ payload: 3000, id: 7 }), [1480, 1480]);
    lab.send('eth0', a!);
    lab.send('eth0', b!);
    const r = lab.send('eth0', c!);
    // 1176 data bytes a fragment: the 1200-byte MTU, less the header, to a multiple of 8
    assert.deepEqual(
      r.eth1.map((f) => dec(f).ipTotalLength),
      [1196, 1196, 20 + 3008 - 2 * 1176],
    );
    // fragments smaller than the MTU stay as they came (596, 220 and 252 bytes)
    const lab2 = udpLab();
    const parts = split(udp4({ payload: 1000, id: 8 }), [576, 200]);
    let out: Buffer[] = [];
    for (const p of parts) out = lab2.send('eth0', p).eth1;
    assert.deepEqual(
      out.map((f) => dec(f).ipTotalLength),
      parts.map((p) => p.length - 14),
    );
  });

  it('a duplicate is dropped and the datagram kept; an overlap drops the datagram', () => {
    const lab = udpLab();
    const [a, b] = split(udp4({ payload: 100, id: 1 }), [64]);
    lab.send('eth0', a!);
    assert.equal(lab.send('eth0', a!).reason, 'frag-dup');
    assert.equal(lab.send('eth0', b!).eth1.length, 2, 'still completes');
    // inside what is held: a duplicate too, whatever its boundaries
    const [p, q] = split(udp4({ payload: 100, id: 2 }), [64]);
    lab.send('eth0', p!);
    const whole = udp4({ payload: 100, id: 2 });
    const part = (at: number, n: number): Buffer => {
      const f = Buffer.concat([whole.subarray(0, 34), whole.subarray(34 + at, 34 + at + n)]);
      f.writeUInt16BE(20 + n, 16);
      f.writeUInt16BE(0x2000 | (at >>> 3), 20);
      ipv4Sum(f);
      return f;
    };
    assert.equal(lab.send('eth0', part(8, 48)).reason, 'frag-dup');
    // an overlap: [8, 72) against the held [0, 64)
    const over = part(8, 64);
    assert.equal(lab.send('eth0', over).reason, 'frag-overlap');
    const after = lab.send('eth0', q!);
    assert.deepEqual([after.reason, after.eth1.length], ['frag-held', 0], 'the first is gone');
    assert.equal(lab.engine.counters.snapshot()['frag-overlap'], 1);
  });

  it('contradicting lengths, an ECN mix and DF on every fragment', () => {
    const lab = udpLab();
    // a second last fragment with another end drops the datagram
    const [a, b] = split(udp4({ payload: 100, id: 3 }), [64]);
    lab.send('eth0', b!);
    const short = Buffer.from(b!.subarray(0, b!.length - 8));
    short.writeUInt16BE(short.length - 14, 16);
    ipv4Sum(short);
    assert.equal(lab.send('eth0', short).reason, 'frag-bad');
    assert.equal(lab.send('eth0', a!).reason, 'frag-held', 'the datagram was dropped');
    // ECT(0) with not-ECT: dropped whole; CE with ECT(0): the datagram carries CE
    const mix = split(udp4({ payload: 100, id: 4 }), [64], { tos: [2, 0] });
    lab.send('eth0', mix[0]!);
    assert.equal(lab.send('eth0', mix[1]!).reason, 'frag-bad');
    const ce = split(udp4({ payload: 100, id: 5 }), [64], { tos: [2, 3] });
    lab.send('eth0', ce[0]!);
    const out = lab.send('eth0', ce[1]!).eth1;
    assert.deepEqual(
      out.map((f) => dec(f).tos & 3),
      [3, 3],
    );
    // DF on every fragment: the datagram has DF; a path narrower than its largest fragment
    // gets fragmentation needed, quoting the whole datagram
    lab.eth1.mtu = 1000;
    const df = split(udp4({ payload: 2000, id: 6 }), [1480], { df: true });
    lab.send('eth0', df[0]!);
    const r = lab.send('eth0', df[1]!);
    assert.deepEqual([r.reason, r.eth1.length, r.eth0.length], ['frag-needed', 0, 1]);
    const e = dec(r.eth0[0]!);
    assert.deepEqual([e.icmpType, e.icmpCode, e.u32[2]! & 0xffff], [3, 4, 1000]);
    assert.deepEqual([quoted(r.eth0[0]!).ipTotalLength, quoted(r.eth0[0]!).mf], [2028, false]);
    // IPVS judges an IPv4 datagram by its whole length (ensure_mtu_is_adequate, skb->len): with
    // DF, one above the path MTU is refused even when each of its fragments would fit
    lab.eth1.mtu = 1500;
    const fit = split(udp4({ payload: 2000, id: 9 }), [1480], { df: true });
    lab.send('eth0', fit[0]!);
    const r2 = lab.send('eth0', fit[1]!);
    assert.deepEqual([r2.reason, r2.eth1.length, r2.eth0.length], ['frag-needed', 0, 1]);
    assert.equal(dec(r2.eth0[0]!).u32[2]! & 0xffff, 1500);
  });

  it('a datagram not whole in 30 s: dropped, ICMP reassembly time exceeded when its first came', () => {
    const lab = udpLab();
    const [a] = split(udp4({ payload: 100, id: 9 }), [64]);
    const [, lone] = split(udp4({ payload: 100, id: 10 }), [64]);
    const err = timedOut(lab, [a!, lone!], 30_000);
    const e = dec(err);
    assert.deepEqual([src(e), dst(e), e.icmpType, e.icmpCode], [VIP, CLIENT, 11, 1]);
    const q = quoted(err);
    assert.deepEqual([q.ipId, q.mf, q.fragOffset, q.srcPort, q.dstPort], [9, true, 0, 40000, 53]);
    assert.equal(lab.engine.ctx.reasm.stats.timeouts, 2);
  });

  it('a ping larger than the MTU to a VIP is answered in fragments', () => {
    const lab = udpLab();
    const ping = Buffer.from(
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP, id: 77 })
        .icmp({ type: 8, code: 0, rest: 0x1234_0001 })
        .payload(Buffer.alloc(3000, 0x5a))
        .build(),
    );
    const parts = split(ping, [1480, 1480]);
    lab.send('eth0', parts[0]!);
    lab.send('eth0', parts[2]!);
    const r = lab.send('eth0', parts[1]!);
    assert.equal(r.reason, 'vip-host');
    assert.deepEqual(
      r.eth0.map((f) => [dec(f).ipTotalLength, dec(f).fragOffset, dec(f).mf]),
      [
        [1500, 0, true],
        [1500, 1480, true],
        [68, 2960, false],
      ],
    );
    const reply = join(r.eth0);
    const v = dec(reply);
    assert.deepEqual(
      [src(v), dst(v), v.icmpType, reply.readUInt32BE(38)],
      [VIP, CLIENT, 0, 0x1234_0001],
    );
    assert.deepEqual(checksumErrors(reply), []);
    assert.deepEqual(reply.subarray(42), ping.subarray(42), 'the data comes back');
  });

  it('with a classifier, fragments are gathered first, so a rule on ports marks the datagram', () => {
    const lab = makeLab();
    lab.engine.classifier.set([{ proto: 'udp', dst: '198.51.100.0/24', dport: '53', mark: 7 }]);
    lab.ipvs.addService(fwmSpec(7, { scheduler: 'rr' }));
    lab.ipvs.addDest(fwmSpec(7), destSpec(RS1, 0, { fwd: 3 }));
    const [a, b] = split(udp4({ dst: '198.51.100.9', payload: 100, id: 11 }), [64]);
    assert.equal(lab.send('eth0', b!).reason, 'frag-held', 'a later fragment has no ports');
    const r = lab.send('eth0', a!);
    assert.deepEqual(
      r.eth1.map((f) => [dmac(f), dst(dec(f)), dec(f).fragOffset]),
      [
        [MAC.rs1, '198.51.100.9', 0],
        [MAC.rs1, '198.51.100.9', 64],
      ],
    );
    assert.equal(lab.ipvs.listConns()[0]!.fwmark, 7);
  });

  it('IPv6: fragments in any order reassembled, NATed whole, sent on along their boundaries', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 53, { af: 10, protocol: 17, scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 53, { af: 10, protocol: 17 }), destSpec(RS6, 5353, { af: 10 }));
    const whole = Buffer.from(
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6, hopLimit: 64 })
        .udp({ srcPort: 40000, dstPort: 53 })
        .payload(Buffer.alloc(3000, 0x33))
        .build(),
    );
    const [a, b, c] = split6(whole, 0xabcd0001, [1448, 1448]);
    assert.equal(lab.send('eth0', b!).reason, 'frag-held');
    assert.equal(lab.send('eth0', c!).reason, 'frag-held');
    const r = lab.send('eth0', a!);
    assert.equal(r.reason, 'forwarded');
    const out = r.eth1.map((f) => dec(f));
    assert.deepEqual(
      out.map((v) => [dst(v), v.fragOffset, v.mf, v.ipId, v.ipTotalLength]),
      [
        [RS6, 0, true, 0xabcd0001, 1496],
        [RS6, 1448, true, 0xabcd0001, 1496],
        [RS6, 2896, false, 0xabcd0001, 40 + 8 + 3008 - 2896],
      ],
    );
    assert.equal(out[0]!.dstPort, 5353);
    // put together again, the UDP checksum holds after the NAT rewrite
    const parts = r.eth1.map((f) => f.subarray(62));
    const re = Buffer.concat([r.eth1[0]!.subarray(0, 54), ...parts]);
    re[20] = 17;
    re.writeUInt16BE(re.length - 54, 18);
    assert.deepEqual(checksumErrors(re), []);
    assert.deepEqual(re.subarray(62), whole.subarray(62));
  });

  it('IPv6: a ping larger than the MTU to a VIP is answered in fragments', () => {
    const lab = udpLab();
    const ping = Buffer.from(
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6, hopLimit: 64 })
        .icmpv6({ type: 128, code: 0, rest: 0x0042_0001 })
        .payload(Buffer.alloc(3000, 0x61))
        .build(),
    );
    lab.ipvs.addService(svcSpec(VIP6, 80, { af: 10 }));
    const parts = split6(ping, 77, [1448, 1448]);
    lab.send('eth0', parts[2]!);
    lab.send('eth0', parts[0]!);
    const r = lab.send('eth0', parts[1]!);
    assert.equal(r.reason, 'vip-host');
    const out = r.eth0.map((f) => dec(f));
    assert.deepEqual(
      out.map((v) => [src(v), v.fragOffset, v.mf, v.ipTotalLength]),
      [
        [VIP6, 0, true, 1496],
        [VIP6, 1448, true, 1496],
        [VIP6, 2896, false, 40 + 8 + 3008 - 2896],
      ],
    );
    const re = Buffer.concat([r.eth0[0]!.subarray(0, 54), ...r.eth0.map((f) => f.subarray(62))]);
    re[20] = 58;
    re.writeUInt16BE(re.length - 54, 18);
    assert.deepEqual([re[54], re.readUInt32BE(58)], [129, 0x0042_0001]);
    assert.deepEqual(checksumErrors(re), []);
    assert.deepEqual(re.subarray(62), ping.subarray(62));
  });

  it('IPv6: a datagram not whole in 60 s: ICMPv6 reassembly time exceeded quoting its first fragment', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 53, { af: 10, protocol: 17, scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 53, { af: 10, protocol: 17 }), destSpec(RS6, 5353, { af: 10 }));
    const whole = (id: number) =>
      Buffer.from(
        PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
          .ipv6({ src: CLIENT6, dst: VIP6 })
          .udp({ srcPort: 40000, dstPort: 53 })
          .payload(Buffer.alloc(200, id))
          .build(),
      );
    const [a] = split6(whole(1), 0x11, [64]);
    const [, lone] = split6(whole(2), 0x12, [64]);
    const err = timedOut(lab, [a!, lone!], 60_000);
    const e = dec(err);
    assert.deepEqual([src(e), dst(e), e.icmpType, e.icmpCode], [VIP6, CLIENT6, 3, 1]);
    // the first fragment as it came: its fragment header (identification, M) included
    assert.deepEqual(err.subarray(62), a!.subarray(14, 14 + err.length - 62));
    assert.deepEqual(checksumErrors(err), []);
  });

  it('first fragments the host refuses: an IPv6 one without its upper-layer header, or not 8-aligned', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { af: 10, scheduler: 'rr' }));
    const syn = Buffer.from(
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6 })
        .tcp({ srcPort: 40000, dstPort: 81, flags: 2, seq: 1, ack: 0 })
        .payload(Buffer.alloc(24, 1))
        .build(),
    );
    // 8 of the TCP header's 20 bytes in the first fragment: parameter problem, header incomplete
    const cut = lab.send('eth0', split6(syn, 0x21, [8, 8])[0]!);
    const p = dec(cut.eth0[0]!);
    assert.deepEqual([cut.reason, p.icmpType, p.icmpCode, p.icmpRest], ['frag-bad', 4, 3, 0]);
    // a non-last fragment of 1001 bytes: parameter problem at the payload length field
    const big = Buffer.from(
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6 })
        .udp({ srcPort: 40000, dstPort: 9 })
        .payload(Buffer.alloc(1600, 2))
        .build(),
    );
    const odd = lab.send('eth0', split6(big, 0x22, [1001])[0]!);
    const o = dec(odd.eth0[0]!);
    assert.deepEqual([odd.reason, o.icmpType, o.icmpCode, o.icmpRest], ['frag-bad', 4, 0, 4]);
    assert.equal(lab.engine.ctx.reasm.size, 0);
  });

  it('IPv4: a first fragment shorter than its TCP header is reassembled; past 65535 bytes, dropped', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    const syn = Buffer.from(
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP, id: 0x6c })
        .tcp({ srcPort: 40000, dstPort: 81, flags: 2, seq: 1000, ack: 0 })
        .payload(Buffer.alloc(24, 1))
        .build(),
    );
    const [f1, f2, f3] = split(syn, [8, 8]);
    assert.equal(lab.send('eth0', f1!).reason, 'frag-held');
    assert.equal(lab.send('eth0', f2!).reason, 'frag-held');
    const r = lab.send('eth0', f3!);
    const rst = dec(r.eth0[0]!);
    assert.deepEqual([r.reason, rst.tcpFlags, rst.tcpAck], ['vip-host', 0x14, 1025]);
    // an echo request whose last fragment ends past 65535: the datagram fails when whole and
    // leaves nothing behind to time out
    const ping = Buffer.from(
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP, id: 0x77 })
        .icmp({ type: 8, code: 0, rest: 0x10001 })
        .payload(Buffer.alloc(64_000, 3))
        .build(),
    );
    const parts = split(ping, Array<number>(43).fill(1480));
    // the last fragment (offset 63640) made 2000 bytes long: it would end at 65640
    const last = parts.pop()!;
    const long = Buffer.concat([last.subarray(0, 34), Buffer.alloc(2000, 4)]);
    long.writeUInt16BE(2020, 16);
    ipv4Sum(long);
    parts.push(long);
    const results = parts.map((f) => lab.send('eth0', f).reason);
    assert.deepEqual(
      results.slice(0, -1).filter((x) => x !== 'frag-held'),
      [],
    );
    assert.equal(results.at(-1), 'frag-bad');
    assert.equal(lab.engine.ctx.reasm.size, 0);
    lab.io0.sent.length = 0;
    lab.advance(31_000);
    lab.engine.tick();
    assert.equal(lab.io0.sent.length, 0, 'no time exceeded: the queue is gone');
  });

  it('memory above the threshold: every fragment dropped until the held ones go', () => {
    // a full-size first fragment is charged 1514 + 256 bytes and its datagram's 2 KiB buffer:
    // three are held, the fourth is refused
    const re = new Reasm(7700);
    const v = new PacketView();
    const ifc = makeLab().eth0;
    const take = (f: Buffer): number => {
      decodeEthernet(v, f, 0, f.length);
      return re.add(v, USER_LOCAL, ifc, 0);
    };
    const big = (id: number): Buffer[] => split(udp4({ payload: 3000, id }), [1480, 1480]);
    assert.equal(take(big(1)[0]!), REASM_HELD);
    assert.equal(take(big(2)[0]!), REASM_HELD);
    assert.equal(take(big(3)[0]!), REASM_HELD, 'still below the threshold before it');
    assert.equal(re.memory, 3 * (1770 + 2048));
    const one = big(1);
    assert.equal(take(one[1]!), R.FRAG_MEM, 'even for a datagram already held');
    re.expire(IPFRAG_TIME_END, () => {});
    assert.equal(re.memory, 0);
    for (const f of one.slice(0, 2)) assert.equal(take(f), REASM_HELD);
    assert.equal(take(one[2]!), REASM_DONE);
    assert.equal(re.frameLen, 14 + 3028);
  });
});

const IPFRAG_TIME_END = 30_000;
