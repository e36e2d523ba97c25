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
});
