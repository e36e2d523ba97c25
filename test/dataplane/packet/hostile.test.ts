/**
 * Bad input: malformed, truncated, mutated, looping and fragmented frames never crash the engine,
 * never corrupt the connection table, and every frame is accounted for (forwarded, or counted by
 * reason; malformed ones also by the decoder's reason).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CONN_F_TEMPLATE } from '../../../src/core/constants.js';
import { REASON_NAMES } from '../../../src/dataplane/packet/counters.js';
import { NF } from '../../../src/dataplane/packet/hooks.js';
import { describeFrame } from '../../../src/dataplane/packet/trace.js';
import { FrameBatch } from '../../../src/dataplane/io/types.js';
import { PacketBuilder } from '../../../src/packet/index.js';
import { l4Checksum } from '../../../src/packet/checksum.js';
import { PacketView } from '../../../src/packet/view.js';
import { decodeEthernet } from '../../../src/packet/decode.js';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { CLIENT, CLIENT6, MAC, RS1, RS2, VIP, VIP6, makeLab } from './lab.js';
import { ACK, SYN, ipv4Sum, tcp4, udp4 } from './frames.js';

function hostileLab() {
  const lab = makeLab();
  const k = svcSpec(VIP, 80, { scheduler: 'rr' });
  lab.ipvs.addService(k);
  lab.ipvs.addDest(k, destSpec(RS1, 8080));
  lab.ipvs.addDest(k, destSpec(RS2, 80, { fwd: 2, tunType: 1, tunPort: 6080 }));
  const u = svcSpec(VIP, 53, { protocol: 17, scheduler: 'rr' });
  lab.ipvs.addService(u);
  lab.ipvs.addDest(u, destSpec(RS1, 53));
  lab.ipvs.addService(svcSpec(VIP, 21, { scheduler: 'rr' }));
  lab.ipvs.addDest(svcSpec(VIP, 21), destSpec(RS1, 21));
  return lab;
}

/** The table agrees with itself: counts, hash chains, destination counters. */
function assertTableSane(lab: ReturnType<typeof makeLab>): void {
  const t = lab.ipvs.conns;
  const hs = t.handles();
  assert.equal(new Set(hs).size, hs.length, 'no handle twice in the index');
  assert.ok(hs.length <= t.count);
  let normal = 0;
  for (const h of hs) {
    assert.ok(
      t.protocol(h) === 6 || t.protocol(h) === 17 || t.protocol(h) === 132 || t.protocol(h) === 0,
    );
    if (!(t.flags(h) & CONN_F_TEMPLATE) && t.dest(h) >= 0) normal++;
  }
  let counted = 0;
  for (const s of lab.ipvs.services.list()) {
    for (const d of s.dests) {
      assert.ok(d.activeConns >= 0 && d.inactConns >= 0, 'counters never negative');
      counted += d.activeConns + d.inactConns;
    }
  }
  assert.equal(counted, normal, 'ActiveConn + InActConn = bound connections');
  lab.ipvs.listConns();
}

function assertAccounted(lab: ReturnType<typeof makeLab>): void {
  const c = lab.engine.counters;
  const reasons = c.reason.reduce((a, b) => a + b, 0);
  assert.equal(
    reasons + c.inForwarded + c.outForwarded,
    c.rxFrames,
    'every frame forwarded or counted',
  );
  const mal = c.malformed.reduce((a, b) => a + b, 0);
  assert.equal(mal, c.reason[0], 'malformed frames counted by decoder reason');
}

const seeds = (): Buffer[] => [
  tcp4(),
  tcp4({ flags: ACK, payload: 'x'.repeat(100) }),
  tcp4({ dport: 21, flags: ACK, payload: 'PORT 10,0,0,5,1,2\r\n' }),
  udp4({ payload: 'query' }),
  tcp4({
    src: RS1,
    dst: CLIENT,
    sport: 8080,
    dport: 40000,
    flags: SYN | ACK,
    smac: MAC.rs1,
    dmac: MAC.eth1,
  }),
  Buffer.from(
    PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv4({ src: CLIENT, dst: VIP })
      .icmp({ type: 3, code: 3 })
      .payload(tcp4({ src: VIP, dst: CLIENT, sport: 80, dport: 40000 }).subarray(14, 14 + 28))
      .build(),
  ),
  Buffer.from(
    PacketBuilder.eth({ src: MAC.client, dst: 'ff:ff:ff:ff:ff:ff' })
      .arp({ op: 1, sha: MAC.client, spa: CLIENT, tha: '00:00:00:00:00:00', tpa: VIP })
      .build(),
  ),
  Buffer.from(
    PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: '2001:db8::5', dst: '2001:db8::100' })
      .tcp({ srcPort: 1, dstPort: 80, flags: SYN })
      .build(),
  ),
  Buffer.from(
    PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv4({ src: CLIENT, dst: VIP })
      .sctp({ srcPort: 1, dstPort: 80, chunks: [{ type: 1, flags: 0, value: new Uint8Array(16) }] })
      .build(),
  ),
];

describe('hostile input', () => {
  it('random bytes never throw and are counted', () => {
    const lab = hostileLab();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.boolean(), (bytes, eth1) => {
        const f = Buffer.from(bytes);
        if (f.length >= 6)
          Buffer.from(eth1 ? [2, 0, 0, 0, 0, 0xa1] : [2, 0, 0, 0, 0, 0xa0]).copy(f, 0);
        lab.send(eth1 ? 'eth1' : 'eth0', f);
      }),
      { numRuns: 3000 },
    );
    assertTableSane(lab);
    assertAccounted(lab);
  });

  it('mutated and truncated valid frames never throw and never corrupt the table', () => {
    const lab = hostileLab();
    const base = seeds();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: base.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(),
        fc.boolean(),
        (i, muts, cut, eth1) => {
          const f = Buffer.from(base[i]!);
          for (const [p, b] of muts) if (f.length > 12) f[12 + (p % (f.length - 12))] = b;
          const g = cut % 3 === 0 ? f.subarray(0, cut % (f.length + 1)) : f;
          lab.send(eth1 ? 'eth1' : 'eth0', g);
        },
      ),
      { numRuns: 5000 },
    );
    assertTableSane(lab);
    assertAccounted(lab);
    const c = lab.engine.counters.snapshot();
    assert.ok((c['malformed'] ?? 0) > 0, 'some frames were malformed');
  });

  it('the fast path (receive) takes mutated frames of established connections without harm', () => {
    const lab = hostileLab();
    // establish connections so mutated frames hit them
    for (const f of seeds()) lab.send('eth0', f);
    lab.send('eth0', tcp4({ flags: ACK }));
    const base = [
      tcp4({ flags: ACK, payload: 'abc' }),
      udp4({ payload: 'query' }),
      tcp4({
        src: RS1,
        dst: CLIENT,
        sport: 8080,
        dport: 40000,
        flags: ACK,
        smac: MAC.rs1,
        dmac: MAC.eth1,
      }),
    ];
    const batch = new FrameBatch(4, Buffer.alloc(4 * 256));
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: base.length - 1 }),
            fc.nat(),
            fc.integer({ min: 0, max: 255 }),
            fc.nat(),
          ),
          { minLength: 1, maxLength: 4 },
        ),
        (frames) => {
          frames.forEach(([i, p, b, cut], k) => {
            const f = Buffer.from(base[i]!);
            f[12 + (p % (f.length - 12))] = b;
            const len = cut % 4 === 0 ? cut % (f.length + 1) : f.length;
            f.copy(batch.data, k * 256, 0, len);
            batch.desc[k * 4] = k * 256;
            batch.desc[k * 4 + 1] = len;
            batch.desc[k * 4 + 2] = len;
            batch.desc[k * 4 + 3] = 0;
          });
          batch.count = frames.length;
          lab.engine.receive(lab.eth0, batch);
        },
      ),
      { numRuns: 3000 },
    );
    assertTableSane(lab);
    assertAccounted(lab);
    assert.ok(lab.engine.counters.fastPath > 0);
  });

  it('fragment storms (any order, overlaps, bad offsets, both families) never harm the engine', () => {
    const lab = hostileLab();
    const v6 = svcSpec('2001:db8::100', 53, { af: 10, protocol: 17, scheduler: 'rr' });
    lab.ipvs.addService(v6);
    lab.ipvs.addDest(v6, destSpec('2001:db8:1::11', 53, { af: 10 }));
    const whole4 = udp4({ payload: 600 });
    const whole6 = Buffer.from(
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: '2001:db8::5', dst: '2001:db8::100' })
        .udp({ srcPort: 1, dstPort: 53 })
        .payload(600)
        .build(),
    );
    // one fragment of datagram `id`: data [at, at + n) of the whole, flags and offset as given
    const frag = (v6f: boolean, id: number, at: number, n: number, more: boolean, off: number) => {
      if (!v6f) {
        const d = whole4.subarray(34);
        const f = Buffer.concat([
          whole4.subarray(0, 34),
          d.subarray(at % d.length, (at % d.length) + n),
        ]);
        f.writeUInt16BE(f.length - 14, 16);
        f.writeUInt16BE(id & 0xffff, 18);
        f.writeUInt16BE((more ? 0x2000 : 0) | (off & 0x1fff), 20);
        ipv4Sum(f);
        return f;
      }
      const d = whole6.subarray(54);
      const fh = Buffer.alloc(8);
      fh[0] = 17;
      fh.writeUInt16BE(((off & 0x1fff) << 3) | (more ? 1 : 0), 2);
      fh.writeUInt32BE(id >>> 0, 4);
      const f = Buffer.concat([
        whole6.subarray(0, 54),
        fh,
        d.subarray(at % d.length, (at % d.length) + n),
      ]);
      f[20] = 44;
      f.writeUInt16BE(f.length - 54, 18);
      return f;
    };
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.boolean(),
            fc.integer({ min: 0, max: 5 }),
            fc.nat(700),
            fc.integer({ min: 0, max: 700 }),
            fc.boolean(),
            fc.integer({ min: 0, max: 0x1fff }),
          ),
          { minLength: 1, maxLength: 12 },
        ),
        (frags) => {
          for (const [v6f, id, at, n, more, off] of frags)
            lab.send('eth0', frag(v6f, id, at, n, more, off % 100));
        },
      ),
      { numRuns: 1500 },
    );
    assertTableSane(lab);
    assertAccounted(lab);
    const re = lab.engine.ctx.reasm;
    assert.ok(re.memory <= 4 * 1024 * 1024 + 70_000, 'held fragments stay under the threshold');
    assert.ok(re.stats.overlaps > 0 && re.stats.fails > 0, 'overlaps and bad lengths were met');
    // and a well-formed datagram of each family still goes through, its fragments in any order
    for (const v6f of [false, true]) {
      const len = (v6f ? whole6.length - 54 : whole4.length - 34) - 320;
      const tail = lab.send('eth0', frag(v6f, 1000, 320, len, false, 40));
      const head = lab.send('eth0', frag(v6f, 1000, 0, 320, true, 0));
      assert.deepEqual([tail.reason, head.reason, head.eth1.length], ['frag-held', 'forwarded', 2]);
    }
    // IPv4 datagrams wait 30 s, IPv6 ones 60 s (IPV6_FRAG_TIMEOUT)
    lab.advance(61_000);
    lab.engine.tick();
    assert.deepEqual([re.size, re.memory], [0, 0], 'everything held times out');
  });

  it('a forwarding loop ends at TTL expiry', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS2, 80, { fwd: 3 }));
    // a misconfigured real server sends what it gets straight back to the director
    let f: Buffer = tcp4({ ttl: 64 });
    let rounds = 0;
    for (;;) {
      const r = lab.send('eth0', f);
      if (r.eth1.length === 0) {
        assert.equal(r.reason, 'ttl-expired');
        break;
      }
      f = Buffer.from(r.eth1[0]!);
      Buffer.from([2, 0, 0, 0, 0, 0xa0]).copy(f, 0);
      rounds++;
      assert.ok(rounds < 100);
    }
    assert.equal(rounds, 63);
    assert.equal(lab.engine.counters.reason[3], 1);
  });

  it('forwards TCP segments with malformed options, as the kernel does (the receiver judges them)', () => {
    const lab = makeLab();
    const k = svcSpec(VIP, 80, { scheduler: 'rr' });
    lab.ipvs.addService(k);
    lab.ipvs.addDest(k, destSpec(RS1, 8080));
    // client → VIP:80 with an MSS option claiming 9 bytes of a 4-byte option area
    const seg = (flags: number, seq: number): Buffer => {
      const f = Buffer.from(
        PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
          .ipv4({ src: CLIENT, dst: VIP, ttl: 64 })
          .tcp({
            srcPort: 40001,
            dstPort: 80,
            flags,
            seq,
            options: [{ kind: 2, data: new Uint8Array([5, 0xb4]) }],
          })
          .build(),
      );
      f[14 + 20 + 21] = 9;
      const v = new PacketView();
      v.lenient = true;
      assert.equal(decodeEthernet(v, f, 0, f.length), 0);
      f.writeUInt16BE(
        l4Checksum(2, v.src, v.dst, 6, f, v.l4Offset, v.ipEnd - v.l4Offset),
        v.l4Offset + 16,
      );
      return f;
    };
    const first = seg(SYN, 1000);
    assert.match(
      describeFrame(first, 0, first.length),
      /\[S\] seq 1000 ack 0 \(options malformed\)/,
    );
    const syn = lab.send('eth0', first);
    assert.equal(syn.reason, 'forwarded', 'the SYN is scheduled, not dropped as malformed');
    assert.equal(syn.eth1.length, 1);
    const out = syn.eth1[0]!;
    assert.equal(out.readUInt16BE(14 + 20 + 2), 8080, 'DNAT to RS1:8080');
    assert.deepEqual(
      [...out.subarray(14 + 20 + 20, 14 + 20 + 24)],
      [2, 9, 5, 0xb4],
      'options as sent',
    );
    const v = new PacketView();
    v.lenient = true;
    decodeEthernet(v, out, 0, out.length);
    assert.equal(
      l4Checksum(2, v.src, v.dst, 6, out, v.l4Offset, v.ipEnd - v.l4Offset),
      out.readUInt16BE(v.l4Offset + 16),
      'checksum right after the rewrite',
    );
    // the next segment of the connection takes the fast path
    const ack = lab.receive('eth0', seg(ACK, 1001));
    assert.equal(ack.eth1.length, 1);
    assert.equal(lab.ipvs.listConns().length, 1);
    assert.equal(lab.engine.counters.snapshot()['malformed: TCP options malformed'] ?? 0, 0);
    assertAccounted(lab);
  });

  it('frames with bad lengths, options and chunks are malformed with the decoder reason', () => {
    const lab = hostileLab();
    const cases = [
      {
        description: 'truncated Ethernet',
        frame: Buffer.from([2, 0, 0, 0, 0, 0xa0, 1, 2]),
        reason: 'ethernet header truncated',
      },
      {
        description: 'IPv4 total length beyond the frame',
        frame: (() => {
          const f = tcp4();
          f.writeUInt16BE(1500, 16);
          return f;
        })(),
        reason: 'IPv4 total length below the header length or beyond the frame',
      },
      {
        description: 'TCP data offset 3',
        frame: (() => {
          const f = tcp4();
          f[14 + 20 + 12] = 0x30;
          return f;
        })(),
        reason: 'TCP data offset below 5 or beyond the packet',
      },
      {
        description: 'IHL 4',
        frame: (() => {
          const f = tcp4();
          f[14] = 0x44;
          return f;
        })(),
        reason: 'IPv4 header length (IHL) below 5 or beyond the packet',
      },
    ];
    for (const c of cases) {
      const r = lab.send('eth0', c.frame);
      assert.deepEqual([r.verdict, r.reason], [NF.DROP, 'malformed'], c.description);
      assert.ok(
        (lab.engine.counters.snapshot()[`malformed: ${c.reason}`] ?? 0) >= 1,
        c.description,
      );
    }
    assertAccounted(lab);
  });
  it('a malformed frame of an established connection gets the same verdict on the fast path', () => {
    const established = () => {
      const lab = hostileLab();
      lab.send('eth0', tcp4({ flags: SYN, seq: 1 }));
      lab.send('eth0', tcp4({ flags: ACK, seq: 2 }));
      lab.send('eth0', udp4({ dport: 53, payload: 'q' }));
      return lab;
    };
    const withOption = (): Buffer => {
      // an IPv4 option whose length byte is 1
      const p = tcp4({ flags: ACK, seq: 2, payload: 'data' });
      const f = Buffer.concat([p.subarray(0, 34), Buffer.from([30, 1, 0, 0]), p.subarray(34)]);
      f[14] = 0x46;
      f.writeUInt16BE(f.length - 14, 16);
      ipv4Sum(f);
      return f;
    };
    // a bad IPv4 option is ip_options_compile's to refuse (a parameter problem), the others the
    // decoder's
    const cases: [string, () => Buffer, string][] = [
      ['IPv4 option of length 1', withOption, 'ip-bad-options'],
      [
        'TCP data offset beyond the segment',
        () => {
          const f = tcp4({ flags: ACK, seq: 2, payload: 'data' });
          f[14 + 20 + 12] = 0xf0;
          return f;
        },
        'malformed',
      ],
      [
        'UDP length beyond the datagram',
        () => {
          const f = udp4({ dport: 53, payload: 'q' });
          f.writeUInt16BE(200, 14 + 20 + 4);
          return f;
        },
        'malformed',
      ],
    ];
    for (const [what, make, reason] of cases) {
      const slow = established().send('eth0', make());
      const lab = established();
      const fast0 = lab.engine.counters.fastPath;
      const fast = lab.receive('eth0', make());
      assert.deepEqual([slow.reason, slow.eth1.length], [reason, 0], what);
      assert.deepEqual(
        [
          fast.eth1.length,
          lab.engine.counters.fastPath - fast0,
          lab.engine.counters.reason[REASON_NAMES.indexOf(reason)],
        ],
        [0, 0, 1],
        what,
      );
    }
  });

  it('martian addresses and a version the EtherType denies never reach IPVS', () => {
    const lab = hostileLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec('2001:db8:1::11', 8080));
    // sources: multicast, limited broadcast, 0/8, loopback, the VIP, the director's address;
    // destinations: loopback, 0/8 (ip_route_input_slow / fib_validate_source)
    for (const [s, d] of [
      ['224.0.0.5', VIP],
      ['255.255.255.255', VIP],
      ['0.0.0.0', VIP],
      ['127.0.0.1', VIP],
      [VIP, VIP],
      ['10.0.0.1', VIP],
      [CLIENT, '127.0.0.1'],
      [CLIENT, '0.0.0.7'],
    ]) {
      const r = lab.send('eth0', tcp4({ src: s, dst: d }));
      assert.deepEqual([r.reason, r.eth0.length, r.eth1.length], ['martian', 0, 0], `${s} → ${d}`);
    }
    // IPv6 (ip6_rcv_core): a multicast or loopback source, a loopback destination, an
    // interface-local group
    for (const [s, d] of [
      ['ff02::1', VIP6],
      ['::1', VIP6],
      [CLIENT6, '::1'],
      [CLIENT6, 'ff01::1'],
    ]) {
      const f = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: s, dst: d })
        .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
        .build();
      const r = lab.send('eth0', f);
      assert.deepEqual([r.reason, r.eth0.length, r.eth1.length], ['martian', 0, 0], `${s} → ${d}`);
    }
    assert.equal(lab.ipvs.conns.count, 0);
    // an IPv6 packet in an IPv4 frame and the other way round: ip_rcv_core / ip6_rcv_core
    const v4 = tcp4();
    const v6 = Buffer.from(
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6 })
        .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
        .build(),
    );
    v4.writeUInt16BE(0x86dd, 12);
    v6.writeUInt16BE(0x0800, 12);
    for (const f of [v4, v6]) assert.equal(lab.send('eth0', f).reason, 'malformed');
    assert.equal(lab.ipvs.conns.count, 0);
    // what stays the host's: a broadcast destination
    assert.equal(lab.send('eth0', tcp4({ dst: '255.255.255.255' })).reason, 'pass');
  });
});
