/**
 * IPv6 packets with extension headers through the director, as the kernel's IPVS sees them:
 * ipv6_find_hdr steps over hop-by-hop, routing, destination options and AH headers to the
 * transport; conntrack's defragmentation takes an atomic fragment as a whole datagram; and an
 * IPv6 tunnel fragments an outer packet the MTU rules let through.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PacketBuilder } from '../../../src/packet/index.js';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { ACK, SYN, dec, dst, src, tcp4 } from './frames.js';
import { CLIENT6, MAC, RS6, VIP, VIP6, checksumErrors, makeLab } from './lab.js';

/** An AH header's data (reserved, SPI, sequence number, a 12-byte ICV): 24 bytes in all. */
const ah = () => ({ type: 51 as const, data: Uint8Array.from({ length: 22 }, (_, i) => i + 1) });

/** The next-header values of the IPv6 header in `f` and of each extension header, in order. */
function chain(f: Uint8Array): number[] {
  const ip = 14;
  const out = [f[ip + 6]!];
  let nh = f[ip + 6]!;
  let q = ip + 40;
  while (nh === 0 || nh === 43 || nh === 44 || nh === 51 || nh === 60) {
    const len = nh === 44 ? 8 : nh === 51 ? (f[q + 1]! + 2) << 2 : (f[q + 1]! + 1) << 3;
    nh = f[q]!;
    out.push(nh);
    q += len;
  }
  return out;
}

function lab6(fwd: number) {
  const lab = makeLab();
  lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
  lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec(RS6, fwd === 0 ? 8080 : 80, { fwd }));
  return lab;
}

describe('IPv6 extension headers through the director', () => {
  it('NAT: a SYN behind hop-by-hop + AH is scheduled and rewritten, the headers kept; so is the reply', () => {
    const lab = lab6(0);
    const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6, extensions: [{ type: 0 }, ah()] })
      .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
      .build();
    const r = lab.send('eth0', syn);
    assert.equal(r.reason, 'forwarded');
    const [f] = r.eth1;
    const o = dec(f!);
    assert.deepEqual([dst(o), o.protocol, o.dstPort, o.ttl], [RS6, 6, 8080, 63]);
    assert.deepEqual(chain(f!), [0, 51, 6], 'hop-by-hop and AH still in front of TCP');
    assert.deepEqual(
      Buffer.from(f!.subarray(14 + 48 + 2, 14 + 48 + 24)),
      Buffer.from(ah().data),
      'the AH header travels unchanged',
    );
    assert.deepEqual(checksumErrors(f!), []);
    assert.equal(lab.ipvs.conns.count, 1);
    const back = PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
      .ipv6({ src: RS6, dst: CLIENT6, extensions: [ah()] })
      .tcp({ srcPort: 8080, dstPort: 40000, flags: SYN | ACK, seq: 9, ack: 2 })
      .build();
    const b = lab.send('eth1', back);
    const p = dec(b.eth0[0]!);
    assert.deepEqual([src(p), p.srcPort], [VIP6, 80]);
    assert.deepEqual(chain(b.eth0[0]!), [51, 6]);
    assert.deepEqual(checksumErrors(b.eth0[0]!), []);
  });

  it('DR: a SYN behind AH goes to the real server unchanged but for the MACs', () => {
    const lab = lab6(3);
    const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6, extensions: [ah()] })
      .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
      .build();
    const r = lab.send('eth0', syn);
    assert.equal(r.reason, 'forwarded');
    const f = r.eth1[0]!;
    assert.deepEqual([...f.subarray(0, 6)], [...Buffer.from(MAC.rs1.replace(/:/g, ''), 'hex')]);
    // only the hop limit changed (64 → 63)
    const want = Buffer.from(syn.subarray(14));
    want[7] = want[7]! - 1;
    assert.deepEqual(Buffer.from(f.subarray(14)), want);
  });

  it('an atomic fragment (offset 0, no M flag) leaves without its fragment header', () => {
    const lab = lab6(0);
    const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({
        src: CLIENT6,
        dst: VIP6,
        extensions: [{ type: 44, fragOffset: 0, mf: false, id: 0xdeadbeef }],
      })
      .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
      .payload('hello')
      .build();
    const r = lab.send('eth0', syn);
    assert.equal(r.reason, 'forwarded');
    const f = r.eth1[0]!;
    assert.deepEqual(chain(f), [6]);
    const o = dec(f);
    assert.deepEqual([dst(o), o.dstPort, o.ipEnd - o.l3Offset], [RS6, 8080, 40 + 20 + 5]);
    assert.deepEqual(checksumErrors(f), []);
  });

  it('TUN over IPv6: an IPv4 packet without DF above the route MTU leaves as IPv6 fragments', () => {
    const lab = makeLab();
    lab.engine.net.addRoute({ dst: `${RS6}/128`, dev: 'eth1', mtu: 1400 });
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS6, 80, { fwd: 2, af: 10 }));
    lab.send('eth0', tcp4({ flags: SYN }));
    const payload = Uint8Array.from({ length: 1360 }, (_, i) => i & 0xff);
    const big = tcp4({ flags: ACK, seq: 2, ack: 1, df: false, payload });
    const r = lab.send('eth0', big);
    assert.equal(r.reason, 'forwarded');
    assert.equal(r.eth1.length, 2);
    const inner: Buffer[] = [];
    let expectOff = 0;
    let id = -1;
    for (const [i, f] of r.eth1.entries()) {
      assert.ok(f.length - 14 <= 1400, `fragment ${i} fits the MTU`);
      assert.deepEqual(chain(f), [44, 4], 'a fragment header, then IPv4 (IPIP)');
      const fo = f.readUInt16BE(14 + 42);
      assert.equal(fo & 0xfff8, expectOff);
      assert.equal(fo & 1, i === 0 ? 1 : 0);
      if (id < 0) id = f.readUInt32BE(14 + 44);
      assert.equal(f.readUInt32BE(14 + 44), id, 'one identification');
      assert.equal(f.readUInt16BE(14 + 4), f.length - 14 - 40, 'payload length');
      const data = f.subarray(14 + 48);
      inner.push(Buffer.from(data));
      expectOff += data.length;
    }
    // the fragments carry the client's packet whole, its TTL decremented
    const want = Buffer.from(big.subarray(14));
    const got = Buffer.concat(inner);
    assert.equal(got.length, want.length);
    assert.equal(got[8], want[8]! - 1);
    assert.deepEqual(got.subarray(20), want.subarray(20));
  });

  it('hop-by-hop options are checked before any hook, as ip6_parse_tlv does', () => {
    const syn = (data: number[], dport = 80) =>
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6, extensions: [{ type: 0, data: Uint8Array.from(data) }] })
        .tcp({ srcPort: 40000, dstPort: dport, flags: SYN, seq: 1 })
        .build();
    const cases: [string, number[], null | [number, number]][] = [
      ['14 bytes of padding', [1, 12, ...Array<number>(12).fill(0)], null],
      ['PadN with data', [1, 4, 0, 9, 0, 0], null],
      ['unknown, action 01 (discard)', [0x5e, 4, 0, 0, 0, 0], null],
      ['unknown, action 10 (parameter problem)', [0x9e, 4, 0, 0, 0, 0], [2, 42]],
      ['unknown, action 11 (parameter problem unless to a group)', [0xde, 4, 0, 0, 0, 0], [2, 42]],
      [
        'nine options',
        Array<number>(9)
          .fill(0)
          .flatMap(() => [0x1e, 0]),
        null,
      ],
      ['router alert of 4 bytes', [5, 4, 0, 0, 0, 0], null],
      ['CALIPSO (no DOI configured)', [7, 4, 0, 0, 0, 1], null],
      ['jumbo payload of 100 bytes', [0xc2, 4, 0, 0, 0, 100], [0, 44]],
    ];
    for (const [what, data, pp] of cases) {
      const lab = lab6(0);
      const r = lab.send('eth0', syn(data));
      assert.deepEqual(
        [r.reason, r.eth1.length, lab.ipvs.conns.count],
        ['ip-bad-options', 0, 0],
        what,
      );
      if (pp === null) assert.deepEqual(r.eth0, [], `${what}: silently`);
      else {
        const e = dec(r.eth0[0]!);
        assert.deepEqual([e.icmpType, e.icmpCode, e.icmpRest, src(e)], [4, ...pp, VIP6], what);
      }
    }
    // skipped unknowns, a router alert and eight options are fine: scheduled and NATed
    for (const data of [
      [0x1e, 4, 0, 0, 0, 0],
      [5, 2, 0, 0, 1, 0],
      Array<number>(8)
        .fill(0)
        .flatMap(() => [0x1e, 0]),
    ]) {
      const lab = lab6(0);
      assert.equal(lab.send('eth0', syn(data)).eth1.length, 1);
    }
  });

  it('for the VIP host: destination options and routing headers as ip6_protocol_deliver_rcu', () => {
    const syn = (ext: { type: 43 | 60; data: number[] }, dport: number) =>
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({
          src: CLIENT6,
          dst: VIP6,
          extensions: [{ type: ext.type, data: Uint8Array.from(ext.data) }],
        })
        .tcp({ srcPort: 40000, dstPort: dport, flags: SYN, seq: 1 })
        .build();
    const rh = (type: number, left: number) => ({
      type: 43 as const,
      data: [type, left, 0, 0, 0, 0, ...Array<number>(16).fill(0)],
    });
    const cases: [string, { type: 43 | 60; data: number[] }, string][] = [
      ['destination option, action 10', { type: 60, data: [0x9e, 4, 0, 0, 0, 0] }, '4/2/42'],
      [
        'destination options padded too long',
        { type: 60, data: [1, 12, ...Array<number>(12).fill(0)] },
        '',
      ],
      ['routing header type 0, a segment left', rh(0, 1), '4/0/42'],
      ['routing header type 0, none left', rh(0, 0), 'rst'],
      ['segment routing header (not enabled)', rh(4, 0), ''],
    ];
    for (const [what, ext, want] of cases) {
      const lab = lab6(0);
      const r = lab.send('eth0', syn(ext, 81));
      const got = r.eth0.map((f) => {
        const v = dec(f);
        return v.protocol === 6 ? 'rst' : `${v.icmpType}/${v.icmpCode}/${v.icmpRest}`;
      });
      assert.deepEqual(got, want === '' ? [] : [want], what);
      // IPVS sees the packet before these headers are processed: a service port is scheduled
      const s = lab6(0).send('eth0', syn(ext, 80));
      assert.equal(s.eth1.length, 1, `${what}: NATed to the service`);
    }
  });
});
