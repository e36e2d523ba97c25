/**
 * What the engine answers for a VIP when IPVS leaves a packet to the local stack (the VIP is no
 * host stack's address, so the engine answers as the host would): echo and timestamp replies,
 * TCP resets from a port no service covers, port unreachable for UDP, protocol unreachable;
 * nothing for resets, fragments, the interfaces' own addresses, or with `answerForVips: false`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NF } from '../../../src/dataplane/packet/hooks.js';
import { parseIp } from '../../../src/core/addr.js';
import { csumFinish, csumPartial, pseudoHeaderSum } from '../../../src/packet/checksum.js';
import { IPPROTO, PacketBuilder } from '../../../src/packet/index.js';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { ACK, FIN, RST, SYN, dec, dmac, dst, quoted, src, tcp4, udp4 } from './frames.js';
import { CLIENT, CLIENT6, MAC, VIP, VIP6, checksumErrors, natLab } from './lab.js';

function verified(frames: Buffer[]): Buffer[] {
  for (const f of frames) assert.deepEqual(checksumErrors(f), [], 'every checksum verifies');
  return frames;
}

/** natLab plus an IPv6 service [VIP6]:80. */
function lab6() {
  const lab = natLab();
  lab.ipvs.addService(svcSpec(VIP6, 80, { af: 10, scheduler: 'rr' }));
  lab.ipvs.addDest(svcSpec(VIP6, 80, { af: 10 }), destSpec('2001:db8:1::11', 8080));
  return lab;
}

describe('VIP host: answers for the VIP what IPVS leaves to the local stack', () => {
  it('ICMP echo request → echo reply from the VIP: identifier, sequence and data kept, TTL 64', () => {
    const lab = natLab();
    const ping = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv4({ src: CLIENT, dst: VIP, ttl: 5, tos: 0x10 })
      .icmp({ type: 8, code: 0, rest: 0x1234_0007 })
      .payload('abcdefghijklmnopqrstuvwxyz0123456789')
      .build();
    const r = lab.send('eth0', ping);
    assert.deepEqual([r.verdict, r.reason, r.eth1.length], [NF.ACCEPT, 'vip-host', 0]);
    const [f] = verified(r.eth0);
    const o = dec(f!);
    assert.deepEqual(
      [o.icmpType, o.icmpCode, o.icmpRest, src(o), dst(o), o.ttl, o.tos, dmac(f!)],
      [0, 0, 0x1234_0007, VIP, CLIENT, 64, 0x10, MAC.client],
    );
    assert.equal(
      Buffer.from(f!.subarray(o.l4Offset + 8, o.ipEnd)).toString(),
      'abcdefghijklmnopqrstuvwxyz0123456789',
    );
    assert.equal(lab.engine.counters.icmpSent, 1);
  });

  it('ICMP timestamp request → timestamp reply with the time of day (icmp_timestamp)', () => {
    const lab = natLab();
    lab.clock.t = 86_400_000 * 2 + 3_723_004; // 01:02:03.004 UTC
    const req = (data: string) =>
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP, tos: 0x08 })
        .icmp({ type: 13, code: 0, rest: 0x4321_0002 })
        .payload(Buffer.from(data, 'hex'))
        .build();
    // originate, receive and transmit timestamps, then data the reply does not carry
    const r = lab.send('eth0', req('00bc614e' + '00000000' + '00000000' + 'aabbccdd'));
    assert.equal(r.reason, 'vip-host');
    const [f] = verified(r.eth0);
    const o = dec(f!);
    assert.deepEqual(
      [o.icmpType, o.icmpCode, o.icmpRest, src(o), dst(o), o.tos, o.ipEnd - o.l4Offset],
      [14, 0, 0x4321_0002, VIP, CLIENT, 0x08, 20],
    );
    assert.equal(
      Buffer.from(f!.subarray(o.l4Offset + 8, o.ipEnd)).toString('hex'),
      '00bc614e' + '0038cefc' + '0038cefc',
    );
    // a request without its originate timestamp gets nothing
    assert.deepEqual(lab.send('eth0', req('0102')).eth0, []);
  });

  it('ICMPv6 echo request → echo reply (type 129, pseudo-header checksum)', () => {
    const lab = lab6();
    const ping = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6, hopLimit: 9 })
      .icmpv6({ type: 128, code: 0, rest: 0x0042_0001 })
      .payload('ping6')
      .build();
    const r = lab.send('eth0', ping);
    assert.deepEqual([r.verdict, r.reason], [NF.ACCEPT, 'vip-host']);
    const o = dec(verified(r.eth0)[0]!);
    assert.deepEqual(
      [o.protocol, o.icmpType, o.icmpRest, src(o), dst(o), o.ttl],
      [IPPROTO.ICMPV6, 129, 0x0042_0001, VIP6, CLIENT6, 64],
    );
  });

  it('TCP SYN to a port without a service → RST+ACK acknowledging SYN and data', () => {
    const lab = natLab();
    const r = lab.send('eth0', tcp4({ dport: 443, flags: SYN, seq: 0xfffffff0, payload: 'hello' }));
    assert.deepEqual([r.verdict, r.reason], [NF.ACCEPT, 'vip-host']);
    const o = dec(verified(r.eth0)[0]!);
    assert.deepEqual(
      [src(o), o.srcPort, dst(o), o.dstPort, o.tcpFlags, o.tcpSeq, o.tcpAck, o.tcpWindow, o.df],
      [VIP, 443, CLIENT, 40000, RST | ACK, 0, (0xfffffff0 + 5 + 1) >>> 0, 0, true],
    );
  });

  it('TCP segment with ACK (no connection, service port) → RST with the acknowledged number', () => {
    const lab = natLab();
    const r = lab.send('eth0', tcp4({ flags: FIN | ACK, seq: 77, ack: 5000 }));
    assert.deepEqual([r.verdict, r.reason], [NF.ACCEPT, 'vip-host']);
    const o = dec(verified(r.eth0)[0]!);
    assert.deepEqual([o.srcPort, o.tcpFlags, o.tcpSeq, o.tcpAck], [80, RST, 5000, 0]);
  });

  it('a reset is never answered', () => {
    const lab = natLab();
    const r = lab.send('eth0', tcp4({ dport: 443, flags: RST, seq: 1 }));
    assert.deepEqual([r.verdict, r.reason, r.eth0.length], [NF.ACCEPT, 'pass', 0]);
  });

  it('IPv6 TCP to a port without a service → RST+ACK from the VIP', () => {
    const lab = lab6();
    const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6 })
      .tcp({ srcPort: 40000, dstPort: 22, flags: SYN, seq: 10, ack: 0 })
      .build();
    const r = lab.send('eth0', syn);
    const o = dec(verified(r.eth0)[0]!);
    assert.deepEqual(
      [src(o), o.srcPort, dst(o), o.tcpFlags, o.tcpAck],
      [VIP6, 22, CLIENT6, RST | ACK, 11],
    );
  });

  it('UDP to a port without a service → ICMP port unreachable from the VIP, quoting it', () => {
    const lab = natLab();
    const r = lab.send('eth0', udp4({ dport: 5353, payload: 'q' }));
    assert.deepEqual([r.verdict, r.reason], [NF.ACCEPT, 'vip-host']);
    const [f] = verified(r.eth0);
    const o = dec(f!);
    const q = quoted(f!);
    assert.deepEqual(
      [o.icmpType, o.icmpCode, src(o), dst(o), q.dstPort, src(q)],
      [3, 3, VIP, CLIENT, 5353, CLIENT],
    );
  });

  it('a protocol no handler takes → ICMP protocol unreachable (IPv6: unrecognised next header)', () => {
    const lab = lab6();
    const gre = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv4({ src: CLIENT, dst: VIP, protocol: 232 })
      .payload('xxxxxxxx')
      .build();
    const r = lab.send('eth0', gre);
    const o = dec(verified(r.eth0)[0]!);
    assert.deepEqual([o.icmpType, o.icmpCode, src(o)], [3, 2, VIP]);
    const raw6 = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6, nextHeader: 253 })
      .payload('xxxxxxxx')
      .build();
    const r6 = lab.send('eth0', raw6);
    const o6 = dec(verified(r6.eth0)[0]!);
    assert.deepEqual([o6.icmpType, o6.icmpCode, o6.icmpRest, src(o6)], [4, 1, 6, VIP6]);
    // behind extension headers the pointer names the last one's next-header field
    // (ip6_input_finish's nhoff): 40 after hop-by-hop, 48 after hop-by-hop + destination options
    for (const [extensions, at] of [
      [[{ type: 0 as const }], 40],
      [[{ type: 0 as const }, { type: 60 as const }], 48],
    ] as const) {
      const f = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6, nextHeader: 253, extensions: [...extensions] })
        .payload('xxxxxxxx')
        .build();
      const o = dec(verified(lab.send('eth0', f).eth0)[0]!);
      assert.deepEqual([o.icmpType, o.icmpCode, o.icmpRest], [4, 1, at]);
    }
  });

  it('what the host would not answer: bad checksums, IGMP, no next header', () => {
    const lab = lab6();
    const bad = (f: Uint8Array, at: number): Buffer => {
      const b = Buffer.from(f);
      b[at]! ^= 0x5a;
      return b;
    };
    // where the transport starts (no options, no extension headers)
    const L4 = 14 + 20;
    const L6 = 14 + 40;
    const ping4 = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv4({ src: CLIENT, dst: VIP })
      .icmp({ type: 8, code: 0, rest: 0x10001 })
      .payload('ping')
      .build();
    const ping6 = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6 })
      .icmpv6({ type: 128, code: 0, rest: 0x10001 })
      .payload('ping')
      .build();
    const tcp6 = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6 })
      .tcp({ srcPort: 40000, dstPort: 443, flags: SYN, seq: 1, ack: 0 })
      .build();
    const udp6 = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6 })
      .udp({ srcPort: 40000, dstPort: 5353 })
      .payload('q')
      .build();
    // each answered when whole, and not once its checksum is wrong (the transport's checksum
    // field or its data changed)
    for (const [what, f, at] of [
      ['echo', ping4, L4 + 9],
      ['ICMPv6 echo', ping6, L6 + 9],
      ['TCP SYN', tcp4({ dport: 443 }), L4 + 16],
      ['IPv6 TCP SYN', tcp6, L6 + 16],
      ['UDP', udp4({ dport: 5353, payload: 'q' }), L4 + 8],
      ['IPv6 UDP', udp6, L6 + 8],
    ] as const) {
      assert.equal(verified(lab.send('eth0', f).eth0).length, 1, `${what} answered`);
      assert.deepEqual(lab.send('eth0', bad(f, at)).eth0, [], `${what} with a bad checksum`);
    }
    // an IPv6 UDP datagram without a checksum is refused too (IPv4 ones have none to check)
    const zero = Buffer.from(udp6);
    zero[L6 + 6] = 0;
    zero[L6 + 7] = 0;
    assert.deepEqual(lab.send('eth0', zero).eth0, []);
    const igmp = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv4({ src: CLIENT, dst: VIP, protocol: 2 })
      .payload(Buffer.from('1600fa0be0000001', 'hex'))
      .build();
    assert.deepEqual(lab.send('eth0', igmp).eth0, [], 'igmp_rcv takes IGMP');
    const none = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6, nextHeader: 59 })
      .payload('xxxxxxxx')
      .build();
    assert.deepEqual(lab.send('eth0', none).eth0, [], 'no next header: discarded');
    // from one of our own addresses: the host's answer goes over lo, nothing on the wire (no
    // solicitation for our own address either)
    const self = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: VIP6, dst: VIP6 })
      .tcp({ srcPort: 40000, dstPort: 443, flags: SYN, seq: 1, ack: 0 })
      .build();
    assert.deepEqual(lab.send('eth0', self).eth0, []);
  });

  it('echo replies keep the request’s code; resets take its DSCP without ECN', () => {
    const lab = lab6();
    const ping4 = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv4({ src: CLIENT, dst: VIP })
      .icmp({ type: 8, code: 5, rest: 0x10001 })
      .payload('ping')
      .build();
    const ping6 = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6 })
      .icmpv6({ type: 128, code: 5, rest: 0x10001 })
      .payload('ping')
      .build();
    const e4 = dec(verified(lab.send('eth0', ping4).eth0)[0]!);
    const e6 = dec(verified(lab.send('eth0', ping6).eth0)[0]!);
    assert.deepEqual([e4.icmpType, e4.icmpCode, e6.icmpType, e6.icmpCode], [0, 5, 129, 5]);
    const syn4 = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv4({ src: CLIENT, dst: VIP, tos: 0xbb })
      .tcp({ srcPort: 40000, dstPort: 443, flags: SYN, seq: 1, ack: 0 })
      .build();
    const syn6 = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6, trafficClass: 0xbb })
      .tcp({ srcPort: 40000, dstPort: 443, flags: SYN, seq: 1, ack: 0 })
      .build();
    const r4 = dec(verified(lab.send('eth0', syn4).eth0)[0]!);
    const r6 = dec(verified(lab.send('eth0', syn6).eth0)[0]!);
    assert.deepEqual(
      [r4.tcpFlags & RST, r4.tos, r6.tcpFlags & RST, r6.tos],
      [RST, 0xb8, RST, 0xb8],
    );
  });

  it('UDP-Lite to a closed port: port unreachable once its checksum over the coverage holds', () => {
    const lab = lab6();
    const lite = (v6: boolean, cov: number, corrupt: boolean): Buffer => {
      const b = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 });
      const ip = v6
        ? b.ipv6({ src: CLIENT6, dst: VIP6, nextHeader: 136 })
        : b.ipv4({ src: CLIENT, dst: VIP, protocol: 136 });
      const f = Buffer.from(ip.payload(Buffer.alloc(16)).build());
      const l4 = v6 ? 54 : 34;
      f.writeUInt16BE(40000, l4);
      f.writeUInt16BE(5353, l4 + 2);
      f.writeUInt16BE(cov, l4 + 4);
      f.write('payload!', l4 + 8);
      const len = 16;
      const covered = cov === 0 ? len : cov;
      const words = (s: string) => parseIp(s)!.words;
      let sum = csumPartial(f, l4, covered);
      sum += pseudoHeaderSum(
        v6 ? 10 : 2,
        words(v6 ? CLIENT6 : CLIENT),
        words(v6 ? VIP6 : VIP),
        136,
        len,
      );
      const c = csumFinish(sum);
      f.writeUInt16BE(c === 0 ? 0xffff : c, l4 + 6);
      if (corrupt) f[l4 + 8]! ^= 1;
      return f;
    };
    for (const v6 of [false, true]) {
      for (const cov of [0, 8, 12]) {
        const o = dec(verified(lab.send('eth0', lite(v6, cov, false)).eth0)[0]!);
        assert.deepEqual([o.icmpType, o.icmpCode], v6 ? [1, 4] : [3, 3], `coverage ${cov}`);
      }
      // data outside the coverage may change; inside it may not; coverage below 8 is refused
      assert.equal(lab.send('eth0', lite(v6, 8, true)).eth0.length, 1);
      assert.deepEqual(lab.send('eth0', lite(v6, 12, true)).eth0, []);
      assert.deepEqual(lab.send('eth0', lite(v6, 4, false)).eth0, []);
    }
  });

  it('an IPv6 hop-by-hop header after the first gets a parameter problem at the field naming it', () => {
    const lab = lab6();
    for (const [extensions, at] of [
      [[{ type: 0 as const }, { type: 0 as const }], 40],
      [[{ type: 60 as const }, { type: 0 as const }], 40],
    ] as const) {
      const f = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6, extensions: [...extensions] })
        .udp({ srcPort: 40000, dstPort: 5353 })
        .payload('q')
        .build();
      const o = dec(verified(lab.send('eth0', f).eth0)[0]!);
      assert.deepEqual([o.icmpType, o.icmpCode, o.icmpRest], [4, 1, at]);
    }
  });

  it('an IPv6 packet with an AH header gets no answer (no security association for the VIP)', () => {
    const lab = lab6();
    const ah = { type: 51 as const, data: new Uint8Array(22) };
    for (const [proto, body] of [
      [253, (b: PacketBuilder) => b.payload('xxxxxxxx')],
      [
        6,
        (b: PacketBuilder) => b.tcp({ srcPort: 40000, dstPort: 443, flags: SYN, seq: 1, ack: 0 }),
      ],
      [58, (b: PacketBuilder) => b.icmpv6({ type: 128, code: 0, rest: 0x10001 }).payload('ping')],
    ] as const) {
      const f = body(
        PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 }).ipv6({
          src: CLIENT6,
          dst: VIP6,
          ...(proto === 253 ? { nextHeader: 253 } : {}),
          extensions: [ah],
        }),
      ).build();
      const r = lab.send('eth0', f);
      assert.equal(r.eth0.length, 0, `protocol ${proto}: nothing sent`);
    }
  });

  it('fragments, the interfaces’ own addresses and answerForVips: false get no answer', () => {
    const lab = natLab();
    const frag = udp4({ dport: 5353, mf: true, payload: 'abcdefgh' });
    assert.equal(lab.send('eth0', frag).eth0.length, 0, 'a first fragment is not answered');
    // 10.0.0.1 is eth0's address: the host stack's business, left to it
    const own = lab.send('eth0', tcp4({ dst: '10.0.0.1', dport: 22 }));
    assert.deepEqual([own.verdict, own.reason, own.eth0.length], [NF.ACCEPT, 'pass', 0]);
    const off = natLab({ answerForVips: false });
    const r = off.send('eth0', tcp4({ dport: 443 }));
    assert.deepEqual([r.verdict, r.reason, r.eth0.length], [NF.ACCEPT, 'pass', 0]);
  });

  it('a broadcast or multicast frame gets an echo reply but no reset and no ICMP error', () => {
    const lab = lab6();
    for (const dmac of ['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01']) {
      // tcp_v4_rcv discards a segment not sent to the host's MAC; __icmp_send sends nothing
      const syn = lab.send('eth0', tcp4({ dmac, dport: 443 }));
      assert.deepEqual([syn.verdict, syn.reason, syn.eth0.length], [NF.ACCEPT, 'pass', 0]);
      const udp = lab.send('eth0', udp4({ dmac, dport: 5353, payload: 'q' }));
      assert.deepEqual([udp.reason, udp.eth0.length], ['pass', 0]);
      const raw = PacketBuilder.eth({ src: MAC.client, dst: dmac })
        .ipv4({ src: CLIENT, dst: VIP, protocol: 232 })
        .payload('xxxxxxxx')
        .build();
      assert.equal(lab.send('eth0', raw).eth0.length, 0, 'no protocol unreachable');
      const ping = PacketBuilder.eth({ src: MAC.client, dst: dmac })
        .ipv4({ src: CLIENT, dst: VIP })
        .icmp({ type: 8, code: 0, rest: 0x0001_0002 })
        .payload('p')
        .build();
      const echo = lab.send('eth0', ping);
      assert.deepEqual([echo.reason, dec(verified(echo.eth0)[0]!).icmpType], ['vip-host', 0]);
    }
    const syn6 = PacketBuilder.eth({ src: MAC.client, dst: '33:33:00:00:00:01' })
      .ipv6({ src: CLIENT6, dst: VIP6 })
      .tcp({ srcPort: 40000, dstPort: 22, flags: SYN, seq: 10, ack: 0 })
      .build();
    assert.equal(lab.send('eth0', syn6).eth0.length, 0, 'tcp_v6_rcv discards it too');
    // the same SYN sent to the interface's own MAC is answered
    assert.equal(lab.send('eth0', tcp4({ dport: 443 })).eth0.length, 1);
  });

  it('a VIP stops answering once its last service is deleted', () => {
    const lab = natLab();
    assert.equal(lab.send('eth0', tcp4({ dport: 443 })).eth0.length, 1);
    lab.ipvs.delService(svcSpec(VIP, 80));
    const r = lab.send('eth0', tcp4({ dport: 443 }));
    assert.equal(r.eth0.length + r.eth1.length, 0, JSON.stringify(r.reason));
  });
});
