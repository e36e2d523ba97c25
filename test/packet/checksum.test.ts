// Checksums: full Internet checksums, RFC 1624 incremental updates (property-tested against full
// recomputation), UDP's zero rule, CRC32c vectors, and the NAT rewrite helpers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  crc32c,
  csumFold,
  csumPartial,
  csumReplace16,
  csumReplace32,
  csumReplace128,
  decodeEthernet,
  decodeIp,
  icmpChecksum,
  ipv4HeaderChecksum,
  ipv4HeaderChecksumOk,
  l4Checksum,
  l4ChecksumOk,
  natRewrite4,
  natRewrite6,
  natRewriteDst4,
  PacketBuilder,
  PacketView,
  sctpChecksumOk,
  setTtl,
  TCP_FLAG,
} from '../../src/packet/index.js';
import { formatIpv4, formatIpv6 } from '../../src/core/addr.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('checksum', () => {
  describe('#csumPartial / #csumFold', () => {
    it('sums the RFC 1071 §3 example to 0xddf2', () => {
      assert.equal(csumFold(csumPartial(hex('0001 f203 f4f5 f6f7'), 0, 8)), 0xddf2);
    });
    it('pads an odd trailing byte with zero', () => {
      assert.equal(csumPartial(hex('0102 03'), 0, 3), 0x0102 + 0x0300);
    });
  });

  describe('#ipv4HeaderChecksum', () => {
    it('computes the checksum of a known header (Wikipedia example, 0xb861)', () => {
      const h = hex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
      assert.equal(ipv4HeaderChecksum(h, 0, 20), 0xb861);
      h.writeUInt16BE(0xb861, 10);
      assert.ok(ipv4HeaderChecksumOk(h, 0, 20));
    });
    it('ignores whatever the checksum field holds', () => {
      const h = hex('4500 0073 0000 4000 4011 ffff c0a8 0001 c0a8 00c7');
      assert.equal(ipv4HeaderChecksum(h, 0, 20), 0xb861);
    });
  });

  describe('#l4Checksum', () => {
    const table = [
      {
        description: 'TCP over IPv4',
        build: () =>
          PacketBuilder.ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
            .tcp({ srcPort: 1, dstPort: 2, flags: TCP_FLAG.SYN })
            .payload('abc'),
      },
      {
        description: 'UDP over IPv6',
        build: () =>
          PacketBuilder.ipv6({ src: '2001:db8::1', dst: '2001:db8::2' })
            .udp({ srcPort: 1, dstPort: 2 })
            .payload('abcd'),
      },
      {
        description: 'ICMPv6 echo',
        build: () =>
          PacketBuilder.ipv6({ src: 'fe80::1', dst: 'ff02::1' }).icmpv6({
            type: 128,
            code: 0,
            rest: 0x10001,
          }),
      },
    ];
    for (const t of table) {
      it(`verifies a built ${t.description} segment, and rejects a corrupted one`, () => {
        const b = t.build().build();
        const v = new PacketView();
        assert.equal(decodeIp(v, b, 0, b.length), 0);
        assert.ok(l4ChecksumOk(v.af, v.src, v.dst, v.protocol, b, v.l4Offset, v.l4Length));
        b[b.length - 1]! ^= 0x40;
        assert.ok(!l4ChecksumOk(v.af, v.src, v.dst, v.protocol, b, v.l4Offset, v.l4Length));
      });
    }
    it('sends a computed UDP checksum of 0 as 0xffff (RFC 768)', () => {
      // Find a payload whose checksum would be zero by solving for the last 16-bit word.
      const b = PacketBuilder.ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .udp({ srcPort: 7, dstPort: 9 })
        .payload(2)
        .build();
      const src = [0x0a000001];
      const dst = [0x0a000002];
      b.writeUInt16BE(0, 26);
      const c = l4Checksum(2, src, dst, 17, b, 20, 10);
      // Adding c's value to the data makes the complement sum 0xffff → checksum 0 → must be 0xffff.
      b.writeUInt16BE(c, 28);
      assert.equal(l4Checksum(2, src, dst, 17, b, 20, 10), 0xffff);
    });
    it('accepts a zero UDP checksum over IPv4 but not over IPv6', () => {
      const b = PacketBuilder.ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .udp({ srcPort: 7, dstPort: 9, checksum: 0 })
        .payload('x')
        .build();
      assert.equal(b.readUInt16BE(26), 0);
      assert.ok(l4ChecksumOk(2, [0x0a000001], [0x0a000002], 17, b, 20, 9));
      assert.ok(!l4ChecksumOk(10, [0, 0, 0, 1], [0, 0, 0, 2], 17, b, 20, 9));
    });
  });

  describe('#icmpChecksum', () => {
    it('computes an echo request checksum without a pseudo-header', () => {
      const m = hex('0800 ffff 0001 0001 6162 6364');
      assert.equal(icmpChecksum(m, 0, m.length), 0x3337);
    });
  });

  describe('#csumReplace16 / #csumReplace32 / #csumReplace128', () => {
    it('agree with full recomputation after random 16-bit changes (RFC 1624)', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 2, maxLength: 64 }),
          fc.nat(),
          fc.integer({ min: 0, max: 0xffff }),
          (data, pos, neu) => {
            const b = Buffer.from(data.length % 2 ? [...data, 0] : data);
            const i = (pos % (b.length / 2)) * 2;
            const before = ~csumFold(csumPartial(b, 0, b.length)) & 0xffff;
            const old = b.readUInt16BE(i);
            b.writeUInt16BE(neu, i);
            const full = ~csumFold(csumPartial(b, 0, b.length)) & 0xffff;
            // 0x0000 and 0xffff are the two zeros of one's complement; eqn 3 gives 0x0000 where
            // recomputation gives 0xffff only over all-zero data, which no real header is
            const zero = (x: number): number => (x === 0xffff ? 0 : x);
            assert.equal(zero(csumFold(csumReplace16(before, old, neu))), zero(csumFold(full)));
          },
        ),
      );
    });
    it('agree with full recomputation after random 32- and 128-bit changes', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 32, maxLength: 80 }),
          fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 }),
          (data, words) => {
            const b = Buffer.from(data.length % 2 ? [...data, 0] : data);
            const c0 = ~csumFold(csumPartial(b, 0, b.length)) & 0xffff;
            const old = [0, 1, 2, 3].map((k) => b.readUInt32BE(8 + 4 * k));
            b.writeUInt32BE(words[0]!, 8);
            const c32 = csumReplace32(c0, old[0]!, words[0]!);
            assert.equal(c32, ~csumFold(csumPartial(b, 0, b.length)) & 0xffff);
            for (let k = 1; k < 4; k++) b.writeUInt32BE(words[k]!, 8 + 4 * k);
            const c128 = csumReplace128(c0, old, words);
            assert.equal(c128, ~csumFold(csumPartial(b, 0, b.length)) & 0xffff);
          },
        ),
      );
    });
  });

  describe('#crc32c', () => {
    const table = [
      { description: '"123456789"', input: Buffer.from('123456789'), expected: 0xe3069283 },
      {
        description: '32 zero bytes (RFC 3720 B.4)',
        input: Buffer.alloc(32),
        expected: 0x8a9136aa,
      },
      {
        description: '32 0xff bytes (RFC 3720 B.4)',
        input: Buffer.alloc(32, 0xff),
        expected: 0x62a8ab43,
      },
      {
        description: '32 ascending bytes (RFC 3720 B.4)',
        input: Buffer.from([...Array(32).keys()]),
        expected: 0x46dd794e,
      },
      { description: 'the empty string', input: Buffer.alloc(0), expected: 0 },
    ];
    for (const t of table) {
      it(`computes the CRC32c of ${t.description}`, () =>
        assert.equal(crc32c(t.input), t.expected));
    }
    it('gives the same result at any offset and length (slicing-by-8 vs bytewise tail)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(7), (data, pad) => {
          const b = Buffer.concat([Buffer.alloc(pad, 0x77), data]);
          let c = ~0;
          for (const x of data) {
            c ^= x;
            for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
          }
          assert.equal(crc32c(b, pad, data.length), ~c >>> 0);
        }),
      );
    });
    it('makes built SCTP packets verify', () => {
      const b = PacketBuilder.ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .sctp({ srcPort: 1, dstPort: 2, vtag: 7, chunks: [{ type: 1, value: new Uint8Array(16) }] })
        .build();
      assert.ok(sctpChecksumOk(b, 20, b.length - 20));
      b[b.length - 1]! ^= 1;
      assert.ok(!sctpChecksumOk(b, 20, b.length - 20));
    });
  });
});

// Random packets for the NAT property: protocol, family, addresses, ports, payload, new values.
const arbPacket = fc.record({
  v6: fc.boolean(),
  proto: fc.constantFrom('tcp', 'udp', 'udp0', 'sctp'),
  a: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 8, maxLength: 8 }),
  sport: fc.integer({ min: 0, max: 0xffff }),
  dport: fc.integer({ min: 0, max: 0xffff }),
  payload: fc.uint8Array({ maxLength: 40 }),
  newAddr: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 }),
  newPort: fc.integer({ min: 0, max: 0xffff }),
  side: fc.constantFrom(0, 1),
  ttl: fc.integer({ min: 0, max: 255 }),
  offset: fc.nat(9),
});

describe('nat', () => {
  describe('#natRewrite4 / #natRewrite6 / #natRewriteDst4', () => {
    it('leave every checksum equal to a full recomputation on random packets (property)', () => {
      fc.assert(
        fc.property(arbPacket, (p) => {
          const fmt = (w: number[]) => (p.v6 ? formatIpv6(w) : formatIpv4(w[0]!));
          const src = fmt(p.a.slice(0, 4));
          const dst = fmt(p.a.slice(4, 8));
          let b = p.v6
            ? PacketBuilder.eth().ipv6({ src, dst })
            : PacketBuilder.eth().ipv4({ src, dst, ttl: 9 });
          if (p.proto === 'tcp')
            b = b.tcp({ srcPort: p.sport, dstPort: p.dport, flags: TCP_FLAG.ACK, seq: 1 });
          else if (p.proto === 'sctp')
            b = b.sctp({
              srcPort: p.sport,
              dstPort: p.dport,
              vtag: 1,
              chunks: [{ type: 0, value: p.payload }],
            });
          else
            b = b.udp({
              srcPort: p.sport,
              dstPort: p.dport,
              ...(p.proto === 'udp0' && !p.v6 ? { checksum: 0 } : {}),
            });
          const frame = (p.proto === 'sctp' ? b : b.payload(p.payload)).build(p.offset);
          const v = new PacketView();
          assert.equal(decodeEthernet(v, frame, p.offset, frame.length - p.offset), 0);
          if (p.v6) natRewrite6(v, p.side, p.newAddr, p.newPort);
          else if (p.side === 1) natRewriteDst4(v, p.newAddr[0]!, p.newPort);
          else natRewrite4(v, p.side, p.newAddr[0]!, p.newPort);
          setTtl(v, p.ttl);
          // the frame re-decodes to the new values…
          const w = new PacketView();
          assert.equal(decodeEthernet(w, frame, p.offset, frame.length - p.offset), 0);
          const words = p.side === 0 ? w.src : w.dst;
          assert.deepEqual([...words].slice(0, p.v6 ? 4 : 1), p.newAddr.slice(0, p.v6 ? 4 : 1));
          assert.equal(p.side === 0 ? w.srcPort : w.dstPort, p.newPort);
          assert.equal(w.ttl, p.ttl);
          // …and every checksum is what a full recomputation gives
          if (!p.v6)
            assert.equal(w.ipChecksum, ipv4HeaderChecksum(frame, w.l3Offset, w.ipHeaderLength));
          // (an IPv4 datagram without a checksum keeps none, spec §4.2)
          if (p.proto === 'sctp') assert.ok(sctpChecksumOk(frame, w.l4Offset, w.l4Length));
          else if (p.proto === 'udp0' && !p.v6) assert.equal(w.l4Checksum, 0);
          else
            assert.equal(
              w.l4Checksum,
              l4Checksum(w.af, w.src, w.dst, w.protocol, frame, w.l4Offset, w.l4Length),
            );
          assert.equal(v.l4Checksum, w.l4Checksum);
        }),
        { numRuns: 500 },
      );
    });
    it('leaves an IPv4 UDP datagram without a checksum without one (§4.2); IPv6 gets a full one', () => {
      const f = PacketBuilder.eth()
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .udp({ srcPort: 1, dstPort: 53, checksum: 0 })
        .payload('q')
        .build();
      const v = new PacketView();
      decodeEthernet(v, f, 0, f.length);
      natRewriteDst4(v, 0xc0a80001, 5353);
      assert.equal(f.readUInt16BE(v.l4Offset + 2), 5353);
      assert.equal(f.readUInt16BE(v.l4Offset + 6), 0);
      assert.ok(ipv4HeaderChecksumOk(f, v.l3Offset));
      natRewrite4(v, 0, 0xc0a80002, 4000);
      assert.equal(f.readUInt16BE(v.l4Offset + 6), 0);
      // IPv6 has no "no checksum" (RFC 8200): the rewrite gives the datagram its full checksum
      const f6 = PacketBuilder.eth()
        .ipv6({ src: '2001:db8::1', dst: '2001:db8::2' })
        .udp({ srcPort: 1, dstPort: 53, checksum: 0 })
        .payload('q')
        .build();
      const v6 = new PacketView();
      assert.equal(decodeEthernet(v6, f6, 0, f6.length), 0);
      natRewrite6(v6, 1, new Uint32Array([0x20010db8, 0, 0, 9]), 5353);
      assert.notEqual(f6.readUInt16BE(v6.l4Offset + 6), 0);
      assert.equal(
        f6.readUInt16BE(v6.l4Offset + 6),
        l4Checksum(v6.af, v6.src, v6.dst, v6.protocol, f6, v6.l4Offset, v6.l4Length),
      );
      // the first fragment of a longer datagram: the rest is not here, the field stays 0
      const g = PacketBuilder.eth()
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', mf: true })
        .udp({ srcPort: 1, dstPort: 53, checksum: 0, length: 100 })
        .payload('q')
        .build();
      const w = new PacketView();
      assert.equal(decodeEthernet(w, g, 0, g.length), 0);
      natRewriteDst4(w, 0xc0a80001, 5353);
      assert.equal(g.readUInt16BE(w.l4Offset + 6), 0);
    });
  });
});
