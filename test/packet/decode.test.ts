// PacketView decoders: every format's fields, the malformed verdict for each reason, ICMP-quoted
// packets, tunnels (IPIP, GRE, GUE) and the encapsulation helper, at non-zero offsets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeEthernet,
  decodeGue,
  decodeIcmpInner,
  decodeIp,
  decodeTunnelInner,
  ENCAP,
  EncapParams,
  encapHeaderLength,
  encapsulate,
  findTcpOption,
  gre,
  ipv4HeaderChecksumOk,
  l4ChecksumOk,
  MALFORMED,
  MALFORMED_REASON,
  PacketBuilder,
  PacketView,
  sctp,
  TCP_FLAG,
  TUNNEL,
} from '../../src/packet/index.js';
import { csumFinish, csumPartial } from '../../src/packet/checksum.js';

const OFF = 5;
const tcp4 = () =>
  PacketBuilder.eth()
    .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
    .tcp({ srcPort: 40000, dstPort: 80, flags: TCP_FLAG.SYN, seq: 0xfffffff0 })
    .payload('GET');

function frame(b: PacketBuilder): { buf: Buffer; len: number } {
  const buf = b.build(OFF);
  return { buf, len: buf.length - OFF };
}

describe('decode', () => {
  describe('#decodeEthernet', () => {
    it('fills the 5-tuple, TCP fields and payload of a TCP/IPv4 frame at a non-zero offset', () => {
      const { buf, len } = frame(
        PacketBuilder.eth({ vlans: [{ id: 42, pcp: 5 }] })
          .ipv4({ src: '192.0.2.1', dst: '198.51.100.2', ttl: 17, df: true, id: 777, tos: 0x10 })
          .tcp({
            srcPort: 12345,
            dstPort: 443,
            flags: TCP_FLAG.SYN | TCP_FLAG.ACK,
            seq: 0xfffffff0,
            ack: 0x80000001,
            window: 1000,
            options: [{ kind: 2, data: new Uint8Array([5, 180]) }],
          })
          .payload('hello'),
      );
      const v = new PacketView();
      assert.equal(decodeEthernet(v, buf, OFF, len), 0);
      assert.equal(v.reason, 'ok');
      assert.equal(v.l2Offset, OFF);
      assert.deepEqual([v.vlanCount, v.vlanId, v.vlanPcp, v.etherType], [1, 42, 5, 0x0800]);
      assert.deepEqual(
        [v.l3Offset, v.ipVersion, v.af, v.ipHeaderLength, v.ipTotalLength],
        [OFF + 18, 4, 2, 20, 20 + 24 + 5],
      );
      assert.deepEqual(
        [v.ttl, v.df, v.mf, v.isFragment, v.ipId, v.tos, v.protocol],
        [17, true, false, false, 777, 0x10, 6],
      );
      assert.deepEqual([v.src[0], v.dst[0]], [0xc0000201, 0xc6336402]);
      assert.deepEqual(
        [v.srcPort, v.dstPort, v.tcpFlags, v.tcpSeq, v.tcpAck, v.tcpWindow, v.tcpHeaderLength],
        [12345, 443, 0x12, 0xfffffff0, 0x80000001, 1000, 24],
      );
      assert.equal(
        buf.toString('utf8', v.payloadOffset, v.payloadOffset + v.payloadLength),
        'hello',
      );
      assert.equal(findTcpOption(v, 2), v.l4Offset + 20);
      assert.equal(findTcpOption(v, 8), -1);
      assert.ok(ipv4HeaderChecksumOk(buf, v.l3Offset));
      assert.ok(l4ChecksumOk(v.af, v.src, v.dst, v.protocol, buf, v.l4Offset, v.l4Length));
    });

    it('reads ARP requests', () => {
      const { buf, len } = frame(
        PacketBuilder.eth({ dst: 'ff:ff:ff:ff:ff:ff' }).arp({
          op: 1,
          sha: '02:00:00:00:00:01',
          spa: '10.0.0.1',
          tha: '00:00:00:00:00:00',
          tpa: '10.0.0.254',
        }),
      );
      const v = new PacketView();
      assert.equal(decodeEthernet(v, buf, OFF, len), 0);
      assert.deepEqual(
        [v.etherType, v.arpOp, v.arpSpa, v.arpTpa, v.arpShaOffset, v.l3Offset],
        [0x0806, 1, 0x0a000001, 0x0a0000fe, OFF + 22, -1],
      );
    });

    it('walks IPv6 hop-by-hop, routing and destination options headers to UDP', () => {
      const { buf, len } = frame(
        PacketBuilder.eth()
          .ipv6({
            src: '2001:db8::1',
            dst: '2001:db8::2',
            hopLimit: 3,
            trafficClass: 0xb8,
            flowLabel: 0x12345,
            extensions: [
              { type: 0 },
              { type: 43, data: new Uint8Array(6) },
              { type: 60, data: new Uint8Array(10) },
            ],
          })
          .udp({ srcPort: 5353, dstPort: 53 })
          .payload('q'),
      );
      const v = new PacketView();
      assert.equal(decodeEthernet(v, buf, OFF, len), 0);
      assert.deepEqual(
        [v.ipVersion, v.af, v.protocol, v.ipHeaderLength, v.ttl, v.tos, v.flowLabel],
        [6, 10, 17, 40 + 8 + 8 + 16, 3, 0xb8, 0x12345],
      );
      assert.deepEqual([...v.src], [0x20010db8, 0, 0, 1]);
      assert.deepEqual([v.srcPort, v.dstPort, v.udpLength, v.payloadLength], [5353, 53, 9, 1]);
      assert.ok(l4ChecksumOk(v.af, v.src, v.dst, v.protocol, buf, v.l4Offset, v.l4Length));
    });

    it('walks an IPv6 authentication header (length in 4-byte words) to TCP, as ipv6_find_hdr', () => {
      const ah = new Uint8Array(22); // reserved, SPI, sequence, a 12-byte ICV: 24 bytes in all
      ah[5] = 0x42;
      const { buf, len } = frame(
        PacketBuilder.eth()
          .ipv6({
            src: '2001:db8::1',
            dst: '2001:db8::2',
            extensions: [{ type: 0 }, { type: 51, data: ah }],
          })
          .tcp({ srcPort: 40000, dstPort: 80, flags: TCP_FLAG.SYN, seq: 1 }),
      );
      const v = new PacketView();
      assert.equal(decodeEthernet(v, buf, OFF, len), 0);
      assert.deepEqual([v.protocol, v.ipHeaderLength, v.dstPort], [6, 40 + 8 + 24, 80]);
      // the length byte is (24 / 4) - 2 = 4
      assert.equal(buf[OFF + 14 + 48 + 1], 4);
    });

    it('reports IPv6 fragments: the first carries the transport header, later ones do not', () => {
      const v = new PacketView();
      const first = frame(
        PacketBuilder.eth()
          .ipv6({
            src: '::1',
            dst: '::2',
            extensions: [{ type: 44, fragOffset: 0, mf: true, id: 0xabcdef01 }],
          })
          .tcp({ srcPort: 1, dstPort: 2, flags: 2 }),
      );
      assert.equal(decodeEthernet(v, first.buf, OFF, first.len), 0);
      assert.deepEqual(
        [v.isFragment, v.mf, v.fragOffset, v.ipId, v.fragHeaderOffset >= 0, v.l4Parsed, v.dstPort],
        [true, true, 0, 0xabcdef01, true, true, 2],
      );
      const later = frame(
        PacketBuilder.eth()
          .ipv6({
            src: '::1',
            dst: '::2',
            extensions: [{ type: 44, fragOffset: 1232, mf: false, id: 1 }],
          })
          .tcp({ srcPort: 1, dstPort: 2, flags: 2 }),
      );
      assert.equal(decodeEthernet(v, later.buf, OFF, later.len), 0);
      assert.deepEqual(
        [v.isFragment, v.mf, v.fragOffset, v.protocol, v.l4Parsed, v.dstPort],
        [true, false, 1232, 6, false, 0],
      );
    });

    it('does not parse the transport header of a non-first IPv4 fragment', () => {
      const { buf, len } = frame(
        PacketBuilder.eth()
          .ipv4({ src: '1.1.1.1', dst: '2.2.2.2', fragOffset: 1480 })
          .udp({ srcPort: 1, dstPort: 2 }),
      );
      const v = new PacketView();
      assert.equal(decodeEthernet(v, buf, OFF, len), 0);
      assert.deepEqual([v.isFragment, v.fragOffset, v.l4Parsed, v.srcPort], [true, 1480, false, 0]);
    });

    it('walks SCTP chunks and reports the first two chunk types', () => {
      const { buf, len } = frame(
        PacketBuilder.eth()
          .ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
          .sctp({
            srcPort: 9,
            dstPort: 2905,
            vtag: 0xdeadbeef,
            chunks: [
              { type: sctp.SCTP_CHUNK.COOKIE_ECHO, value: new Uint8Array(5) },
              { type: sctp.SCTP_CHUNK.DATA, value: new Uint8Array(13) },
              { type: 4 },
            ],
          }),
      );
      const v = new PacketView();
      assert.equal(decodeEthernet(v, buf, OFF, len), 0);
      assert.deepEqual(
        [v.srcPort, v.dstPort, v.sctpVtag, v.sctpChunkType, v.sctpNextChunkType, v.sctpChunkCount],
        [9, 2905, 0xdeadbeef, 10, 0, 3],
      );
    });

    it('clears fields left by a previous frame of another kind', () => {
      const v = new PacketView();
      const a = frame(tcp4());
      decodeEthernet(v, a.buf, OFF, a.len);
      const b = frame(
        PacketBuilder.eth()
          .ipv6({ src: '::1', dst: '::2' })
          .icmpv6({ type: 128, code: 0, rest: 0x00010002 }),
      );
      assert.equal(decodeEthernet(v, b.buf, OFF, b.len), 0);
      assert.deepEqual(
        [v.srcPort, v.tcpFlags, v.tcpSeq, v.icmpType, v.icmpRest, v.icmpIsError, v.src[0]],
        [0, 0, 0, 128, 0x10002, false, 0],
      );
      const c = frame(
        PacketBuilder.eth().arp({
          op: 2,
          sha: '02:00:00:00:00:09',
          spa: '1.2.3.4',
          tha: '02:00:00:00:00:01',
          tpa: '5.6.7.8',
        }),
      );
      assert.equal(decodeEthernet(v, c.buf, OFF, c.len), 0);
      assert.deepEqual(
        [v.l3Offset, v.icmpType, v.protocol, v.src[0], v.src[3]],
        [-1, -1, -1, 0, 0],
      );
      decodeEthernet(v, a.buf, OFF, 40); // truncated TCP/IPv4 → nothing from frame a or c survives
      assert.deepEqual(
        [v.malformed, v.arpOp, v.srcPort, v.tcpSeq, v.l3Offset],
        [MALFORMED.IPV4_BAD_TOTAL_LENGTH, 0, 0, 0, -1],
      );
    });
  });

  describe('#decodeIcmpInner', () => {
    it('decodes the TCP/IPv4 packet quoted by an ICMP port unreachable (spec §4.5)', () => {
      const quoted = PacketBuilder.ipv4({ src: '10.0.0.2', dst: '192.0.2.80', df: true })
        .tcp({ srcPort: 80, dstPort: 40000, flags: TCP_FLAG.ACK, seq: 12345 })
        .payload(100)
        .build()
        .subarray(0, 28);
      const { buf, len } = frame(
        PacketBuilder.eth()
          .ipv4({ src: '192.0.2.1', dst: '10.0.0.2' })
          .icmp({ type: 3, code: 3 })
          .payload(quoted),
      );
      const outer = new PacketView();
      const inner = new PacketView();
      assert.equal(decodeEthernet(outer, buf, OFF, len), 0);
      assert.deepEqual([outer.icmpType, outer.icmpCode, outer.icmpIsError], [3, 3, true]);
      assert.equal(decodeIcmpInner(inner, outer), 0);
      assert.deepEqual(
        [
          inner.embedded,
          inner.protocol,
          inner.srcPort,
          inner.dstPort,
          inner.tcpSeq,
          inner.ipTotalLength,
          inner.df,
        ],
        [true, 6, 80, 40000, 12345, 20 + 20 + 100, true],
      );
      assert.deepEqual([inner.src[0], inner.dst[0]], [0x0a000002, 0xc0000250]);
    });
    it('decodes the UDP/IPv6 packet quoted by an ICMPv6 packet too big', () => {
      const quoted = PacketBuilder.ipv6({ src: '2001:db8::2', dst: '2001:db8::80' })
        .udp({ srcPort: 53, dstPort: 1024 })
        .payload(1400)
        .build()
        .subarray(0, 48);
      const { buf, len } = frame(
        PacketBuilder.eth()
          .ipv6({ src: '2001:db8::1', dst: '2001:db8::2' })
          .icmpv6({ type: 2, code: 0, rest: 1280 })
          .payload(quoted),
      );
      const outer = new PacketView();
      const inner = new PacketView();
      assert.equal(decodeEthernet(outer, buf, OFF, len), 0);
      assert.deepEqual([outer.icmpType, outer.icmpRest, outer.icmpIsError], [2, 1280, true]);
      assert.equal(decodeIcmpInner(inner, outer), 0);
      assert.deepEqual(
        [inner.af, inner.protocol, inner.srcPort, inner.dstPort, inner.udpLength],
        [10, 17, 53, 1024, 1408],
      );
    });
    it('refuses an informational ICMP message (echo)', () => {
      const { buf, len } = frame(
        PacketBuilder.eth()
          .ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
          .icmp({ type: 8, code: 0 })
          .payload(28),
      );
      const outer = new PacketView();
      const inner = new PacketView();
      assert.equal(decodeEthernet(outer, buf, OFF, len), 0);
      assert.equal(decodeIcmpInner(inner, outer), MALFORMED.ICMP_TRUNCATED);
    });
    it('refuses a quote shorter than the IP header plus 4 bytes', () => {
      const quoted = PacketBuilder.ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
        .udp({ srcPort: 1, dstPort: 2 })
        .build()
        .subarray(0, 22);
      const { buf, len } = frame(
        PacketBuilder.eth()
          .ipv4({ src: '2.2.2.2', dst: '1.1.1.1' })
          .icmp({ type: 11, code: 0 })
          .payload(quoted),
      );
      const outer = new PacketView();
      const inner = new PacketView();
      decodeEthernet(outer, buf, OFF, len);
      assert.equal(decodeIcmpInner(inner, outer), MALFORMED.UDP_TRUNCATED);
    });
  });

  describe('tunnels', () => {
    const inner = () =>
      PacketBuilder.ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 9 })
        .udp({ srcPort: 1000, dstPort: 2000 })
        .payload('in');
    const table: {
      description: string;
      build: () => PacketBuilder;
      tunnelType: number;
      gue?: boolean;
    }[] = [
      {
        description: 'IPIP',
        build: () =>
          PacketBuilder.eth()
            .ipv4({ src: '192.0.2.1', dst: '192.0.2.2' })
            .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 9 })
            .udp({ srcPort: 1000, dstPort: 2000 })
            .payload('in'),
        tunnelType: TUNNEL.IPIP,
      },
      {
        description: 'IPv6-in-IPv6',
        build: () =>
          PacketBuilder.eth()
            .ipv6({ src: '2001:db8::1', dst: '2001:db8::2' })
            .ipv6({ src: '2001:db8::a', dst: '2001:db8::b' })
            .udp({ srcPort: 1000, dstPort: 2000 })
            .payload('in'),
        tunnelType: TUNNEL.IPIP,
      },
      {
        description: 'GRE with checksum',
        build: () =>
          PacketBuilder.eth()
            .ipv4({ src: '192.0.2.1', dst: '192.0.2.2' })
            .gre({ checksumPresent: true })
            .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 9 })
            .udp({ srcPort: 1000, dstPort: 2000 })
            .payload('in'),
        tunnelType: TUNNEL.GRE,
      },
      {
        description: 'GUE v0',
        build: () =>
          PacketBuilder.eth()
            .ipv4({ src: '192.0.2.1', dst: '192.0.2.2' })
            .udp({ srcPort: 40000, dstPort: 6080 })
            .gue()
            .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 9 })
            .udp({ srcPort: 1000, dstPort: 2000 })
            .payload('in'),
        tunnelType: TUNNEL.GUE,
        gue: true,
      },
    ];
    for (const t of table) {
      it(`finds the inner packet of ${t.description} and decodes it`, () => {
        const { buf, len } = frame(t.build());
        const outer = new PacketView();
        const iv = new PacketView();
        assert.equal(decodeEthernet(outer, buf, OFF, len), 0);
        if (t.gue) assert.equal(decodeGue(outer), 0);
        assert.equal(outer.tunnelType, t.tunnelType);
        assert.equal(decodeTunnelInner(iv, outer), 0);
        assert.deepEqual([iv.protocol, iv.srcPort, iv.dstPort], [17, 1000, 2000]);
        assert.ok(l4ChecksumOk(iv.af, iv.src, iv.dst, iv.protocol, buf, iv.l4Offset, iv.l4Length));
      });
    }
    it('verifies the GRE checksum over header and payload', () => {
      const { buf, len } = frame(table[2]!.build());
      const v = new PacketView();
      decodeEthernet(v, buf, OFF, len);
      assert.equal(csumFinish(csumPartial(buf, v.l4Offset, v.l4Length)), 0);
      assert.equal(gre.decode(buf, v.l4Offset).ok, true);
    });

    const encaps: {
      description: string;
      set: (p: EncapParams) => void;
      check: (v: PacketView, buf: Buffer) => void;
    }[] = [
      {
        description: 'IPIP over IPv4',
        set: (p) => (p.type = ENCAP.IPIP),
        check: (v) => assert.equal(v.protocol, 4),
      },
      {
        description: 'GRE with checksum over IPv4',
        set: (p) => {
          p.type = ENCAP.GRE;
          p.csum = true;
        },
        check: (v, b) => {
          assert.equal(v.greChecksum >= 0, true);
          assert.equal(csumFinish(csumPartial(b, v.l4Offset, v.l4Length)), 0);
        },
      },
      {
        description: 'GUE over IPv4 without UDP checksum',
        set: (p) => {
          p.type = ENCAP.GUE;
          p.srcPort = 40001;
          p.dstPort = 6080;
        },
        check: (v) => assert.deepEqual([v.dstPort, v.l4Checksum, v.remcsumStart], [6080, 0, -1]),
      },
      {
        description: 'GUE with remote checksum offload over IPv6',
        set: (p) => {
          p.type = ENCAP.GUE;
          p.af = 10;
          p.src.set([0x20010db8, 0, 0, 1]);
          p.dst.set([0x20010db8, 0, 0, 2]);
          p.srcPort = 1;
          p.dstPort = 6080;
          p.remcsum = true;
          p.remcsumStart = 20;
          p.remcsumOffset = 6;
        },
        check: (v, b) => {
          assert.deepEqual([v.af, v.remcsumStart, v.remcsumOffset, v.tunnelFlags], [10, 20, 26, 1]);
          assert.ok(l4ChecksumOk(v.af, v.src, v.dst, 17, b, v.l4Offset, v.l4Length));
        },
      },
    ];
    for (const t of encaps) {
      it(`encapsulates ${t.description} per spec §5.5 (outer TTL, DS with CE→ECT(0), DF)`, () => {
        const innerBuf = inner().build();
        innerBuf[1] = 0xbb; // DSCP 46 + CE
        innerBuf[6] |= 0x40; // DF
        const p = new EncapParams();
        p.src[0] = 0xc0000201;
        p.dst[0] = 0xc0000264;
        p.ipId = 99;
        t.set(p);
        const hl = encapHeaderLength(p);
        const buf = Buffer.alloc(100 + innerBuf.length);
        innerBuf.copy(buf, 100);
        const start = encapsulate(p, buf, 100, innerBuf.length);
        assert.equal(start, 100 - hl);
        const v = new PacketView();
        assert.equal(decodeIp(v, buf, start, hl + innerBuf.length), 0);
        if (p.type === ENCAP.GUE) assert.equal(decodeGue(v), 0);
        assert.equal(v.ttl, 9);
        assert.equal(v.tos, 0xba);
        if (v.af === 2) {
          assert.ok(v.df);
          assert.ok(ipv4HeaderChecksumOk(buf, v.l3Offset));
          assert.equal(v.ipId, 0, 'DF set: identification 0, as ip_select_ident gives it');
        }
        t.check(v, buf);
        const iv = new PacketView();
        assert.equal(decodeTunnelInner(iv, v), 0);
        assert.deepEqual([iv.l3Offset, iv.srcPort, iv.dstPort], [100, 1000, 2000]);
      });
    }
    it('refuses to encapsulate without enough headroom', () => {
      const p = new EncapParams();
      p.type = ENCAP.GUE;
      const b = inner().build();
      assert.throws(() => encapsulate(p, b, 0, b.length), { code: 'IPVS_ERR_PACKET_ENCODE' });
    });
  });

  describe('malformed frames', () => {
    const eth = (type: number, body: number[]) =>
      Buffer.from([...Array(12).fill(2), type >> 8, type & 255, ...body]);
    const mut = (b: PacketBuilder, f: (x: Buffer) => void) => {
      const x = b.build();
      f(x);
      return x;
    };
    const ip4 = () => PacketBuilder.ipv4({ src: '1.1.1.1', dst: '2.2.2.2' });
    const ip6 = (extensions: never[] = []) =>
      PacketBuilder.ipv6({ src: '::1', dst: '::2', extensions });
    const gueUdp = (b0: number, n = 4) =>
      ip4()
        .udp({ srcPort: 1, dstPort: 6080 })
        .payload(Buffer.from([b0, 4, 0, 0].slice(0, n)));
    const table: {
      description: string;
      input: Buffer;
      eth?: boolean;
      gue?: boolean;
      expected: number;
    }[] = [
      {
        description: 'a 13-byte frame',
        input: Buffer.alloc(13),
        eth: true,
        expected: MALFORMED.ETH_TRUNCATED,
      },
      {
        description: 'a VLAN tag cut short',
        input: eth(0x8100, [0, 1]),
        eth: true,
        expected: MALFORMED.VLAN_TRUNCATED,
      },
      {
        description: 'three VLAN tags',
        input: eth(0x8100, [0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 8, 0]),
        eth: true,
        expected: MALFORMED.VLAN_TOO_MANY,
      },
      {
        description: 'an ARP packet cut short',
        input: eth(0x0806, [0, 1, 8, 0, 6, 4, 0, 1, 1, 2, 3]),
        eth: true,
        expected: MALFORMED.ARP_TRUNCATED,
      },
      {
        description: 'an ARP packet for another hardware type',
        input: eth(0x0806, [0, 6, 8, 0, 6, 4, ...Array(22).fill(0)]),
        eth: true,
        expected: MALFORMED.ARP_BAD_FORMAT,
      },
      {
        description: 'an IPv4 header cut short',
        input: eth(0x0800, [0x45, 0, 0, 20, 0, 0]),
        eth: true,
        expected: MALFORMED.IP_TRUNCATED,
      },
      {
        description: 'IP version 5',
        input: mut(ip4(), (x) => (x[0] = 0x55)),
        expected: MALFORMED.IP_BAD_VERSION,
      },
      {
        description: 'an IHL of 4',
        input: mut(ip4(), (x) => (x[0] = 0x44)),
        expected: MALFORMED.IPV4_BAD_IHL,
      },
      {
        description: 'a total length beyond the frame',
        input: mut(ip4().udp({ srcPort: 1, dstPort: 2 }), (x) => x.writeUInt16BE(100, 2)),
        expected: MALFORMED.IPV4_BAD_TOTAL_LENGTH,
      },
      {
        description: 'an IPv4 option overrunning the header',
        input: mut(
          PacketBuilder.ipv4({
            src: '1.1.1.1',
            dst: '1.1.1.1',
            options: [{ type: 7, data: new Uint8Array(2) }],
          }),
          (x) => (x[21] = 9),
        ),
        expected: MALFORMED.IPV4_BAD_OPTIONS,
      },
      {
        description: 'an IPv6 payload length beyond the frame',
        input: mut(ip6().udp({ srcPort: 1, dstPort: 2 }), (x) => x.writeUInt16BE(9, 4)),
        expected: MALFORMED.IPV6_BAD_PAYLOAD_LENGTH,
      },
      {
        description: 'an IPv6 extension header overrunning the packet',
        input: mut(
          ip6([{ type: 60 } as never]).udp({ srcPort: 1, dstPort: 2 }),
          (x) => (x[41] = 3),
        ),
        expected: MALFORMED.IPV6_EXT_TRUNCATED,
      },
      {
        description: 'nine destination-options headers',
        input: ip6(Array(9).fill({ type: 60 }) as never[])
          .udp({ srcPort: 1, dstPort: 2 })
          .build(),
        expected: MALFORMED.IPV6_EXT_TOO_MANY,
      },
      {
        description: 'two IPv6 fragment headers',
        input: ip6([
          { type: 44, fragOffset: 0, mf: true, id: 1 },
          { type: 44, fragOffset: 0, mf: true, id: 1 },
        ] as never[])
          .udp({ srcPort: 1, dstPort: 2 })
          .build(),
        expected: MALFORMED.IPV6_BAD_FRAGMENT,
      },
      {
        description: 'a TCP header cut short',
        input: mut(ip4().payload(10), (x) => (x[9] = 6)),
        expected: MALFORMED.TCP_TRUNCATED,
      },
      {
        description: 'a TCP data offset of 4',
        input: mut(ip4().tcp({ srcPort: 1, dstPort: 2, flags: 2 }), (x) => (x[32] = 0x40)),
        expected: MALFORMED.TCP_BAD_DATA_OFFSET,
      },
      {
        description: 'a TCP option of length 0',
        input: mut(
          ip4().tcp({
            srcPort: 1,
            dstPort: 2,
            flags: 2,
            options: [{ kind: 2, data: new Uint8Array(2) }],
          }),
          (x) => (x[41] = 0),
        ),
        expected: MALFORMED.TCP_BAD_OPTIONS,
      },
      {
        description: 'a UDP header cut short',
        input: mut(ip4().payload(4), (x) => (x[9] = 17)),
        expected: MALFORMED.UDP_TRUNCATED,
      },
      {
        description: 'a UDP length of 7',
        input: mut(ip4().udp({ srcPort: 1, dstPort: 2 }), (x) => x.writeUInt16BE(7, 24)),
        expected: MALFORMED.UDP_BAD_LENGTH,
      },
      {
        description: 'an ICMP header cut short',
        input: mut(ip4().payload(4), (x) => (x[9] = 1)),
        expected: MALFORMED.ICMP_TRUNCATED,
      },
      {
        description: 'an SCTP packet without chunks',
        input: mut(ip4().payload(12), (x) => (x[9] = 132)),
        expected: MALFORMED.SCTP_TRUNCATED,
      },
      {
        description: 'an SCTP chunk length of 3',
        input: mut(
          ip4().sctp({ srcPort: 1, dstPort: 2, chunks: [{ type: 1, value: new Uint8Array(4) }] }),
          (x) => x.writeUInt16BE(3, 34),
        ),
        expected: MALFORMED.SCTP_BAD_CHUNK,
      },
      {
        description: 'a GRE header whose checksum word is missing',
        input: mut(ip4().payload(4), (x) => {
          x[9] = 47;
          x[20] = 0x80;
        }),
        expected: MALFORMED.GRE_TRUNCATED,
      },
      {
        description: 'a GUE header cut short',
        input: gueUdp(0, 2).build(),
        gue: true,
        expected: MALFORMED.GUE_TRUNCATED,
      },
      {
        description: 'GUE version 1',
        input: gueUdp(0x40).build(),
        gue: true,
        expected: MALFORMED.GUE_UNSUPPORTED,
      },
      {
        description: 'a fragment reaching past 64 KiB',
        input: mut(ip4().payload(16), (x) => x.writeUInt16BE(0x1fff, 6)),
        expected: MALFORMED.IPV4_BAD_FRAGMENT,
      },
    ];
    for (const t of table) {
      it(`reports ${t.description} as "${MALFORMED_REASON[t.expected]}"`, () => {
        const v = new PacketView();
        const buf = Buffer.concat([Buffer.alloc(3, 0xff), t.input, Buffer.alloc(3, 0xff)]);
        const r = t.eth
          ? decodeEthernet(v, buf, 3, t.input.length)
          : decodeIp(v, buf, 3, t.input.length);
        if (t.gue) {
          assert.equal(r, 0);
          assert.equal(decodeGue(v), t.expected);
        } else assert.equal(r, t.expected);
        assert.equal(v.malformed, t.expected);
        assert.equal(v.reason, MALFORMED_REASON[t.expected]);
        assert.equal(v.ok, false);
      });
    }
    it('decodes malformed TCP options in a lenient view, as a forwarder takes them', () => {
      const seg = mut(
        ip4().tcp({
          srcPort: 40000,
          dstPort: 80,
          flags: 2,
          options: [{ kind: 2, data: new Uint8Array([5, 0xb4]) }],
        }),
        (x) => (x[41] = 9), // the MSS option claims 9 bytes of a 4-byte option area
      );
      const strict = new PacketView();
      assert.equal(decodeIp(strict, seg, 0, seg.length), MALFORMED.TCP_BAD_OPTIONS);
      const v = new PacketView();
      v.lenient = true;
      assert.equal(decodeIp(v, seg, 0, seg.length), 0);
      assert.deepEqual([v.srcPort, v.dstPort, v.tcpFlags, v.tcpHeaderLength], [40000, 80, 2, 24]);
      assert.equal(v.tcpOptionsOk, false);
      assert.equal(findTcpOption(v, 2), -1, 'no option is looked up in a malformed list');
      // the next segment, well formed, is judged afresh
      const good = ip4()
        .tcp({ srcPort: 1, dstPort: 2, flags: 2, options: [{ kind: 2, data: new Uint8Array(2) }] })
        .build();
      assert.equal(decodeIp(v, good, 0, good.length), 0);
      assert.equal(v.tcpOptionsOk, true);
      assert.equal(findTcpOption(v, 2), 20 + 20);
    });
    it('decodes missing or malformed SCTP chunks in a lenient view, reading the types there', () => {
      const bare = mut(ip4().payload(12), (x) => (x[9] = 132));
      const v = new PacketView();
      v.lenient = true;
      assert.equal(decodeIp(v, bare, 0, bare.length), 0);
      assert.deepEqual([v.sctpChunkType, v.sctpNextChunkType, v.sctpChunksOk], [-1, -1, false]);
      // COOKIE_ECHO then an ABORT whose length runs past the end: both types are read
      const two = mut(
        ip4().sctp({
          srcPort: 1,
          dstPort: 2,
          chunks: [
            { type: 10, value: new Uint8Array(4) },
            { type: 6, value: new Uint8Array(4) },
          ],
        }),
        (x) => x.writeUInt16BE(64, 20 + 12 + 8 + 2),
      );
      assert.equal(decodeIp(new PacketView(), two, 0, two.length), MALFORMED.SCTP_BAD_CHUNK);
      assert.equal(decodeIp(v, two, 0, two.length), 0);
      assert.deepEqual([v.sctpChunkType, v.sctpNextChunkType, v.sctpChunksOk], [10, 6, false]);
      const shorter = mut(ip4().payload(11), (x) => (x[9] = 132));
      assert.equal(decodeIp(v, shorter, 0, shorter.length), MALFORMED.SCTP_TRUNCATED);
    });
    it('has a table row for every malformed reason except the GRE codec-only one', () => {
      const covered = new Set(table.map((t) => t.expected));
      const missing = Object.entries(MALFORMED).filter(
        ([k, c]) => c !== 0 && !covered.has(c) && k !== 'GRE_UNSUPPORTED',
      );
      assert.deepEqual(missing, []);
    });
    it('refuses GRE version 1 in the GRE codec, and lets it pass undecoded in the view', () => {
      const x = mut(ip4().payload(8), (b) => {
        b[9] = 47;
        b[21] = 1;
        b.writeUInt16BE(0x880b, 22);
      });
      assert.deepEqual(gre.decode(x, 20), {
        ok: false,
        code: MALFORMED.GRE_UNSUPPORTED,
        reason: MALFORMED_REASON[MALFORMED.GRE_UNSUPPORTED],
      });
      const v = new PacketView();
      assert.equal(decodeIp(v, x, 0, x.length), 0);
      assert.deepEqual([v.tunnelType, v.innerOffset, v.l4Parsed], [TUNNEL.NONE, -1, false]);
    });
    it('clamps a length argument beyond the buffer instead of reading past it', () => {
      const b = tcp4().build();
      const v = new PacketView();
      assert.equal(decodeEthernet(v, b, 0, b.length + 100), 0);
      assert.equal(decodeEthernet(v, b, 10, 1e9), 0); // EtherType 0x4006 (TTL, protocol): not IP
      assert.equal(v.payloadOffset + v.payloadLength, b.length);
      assert.equal(decodeEthernet(v, b, -5, 10), MALFORMED.ETH_TRUNCATED);
      assert.equal(decodeEthernet(v, b, b.length + 5, 10), MALFORMED.ETH_TRUNCATED);
    });
  });
});
