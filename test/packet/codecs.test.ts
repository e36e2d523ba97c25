// Per-header codecs: encode → decode round trips at a non-zero offset, truncation verdicts, and
// refusal (PacketEncodeError, IPVS_ERR_PACKET_ENCODE) of fields that cannot be encoded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  arp,
  ethernet,
  gre,
  gue,
  icmp,
  ipv4,
  ipv6,
  MALFORMED,
  PacketBuilder,
  PacketEncodeError,
  sctp,
  tcp,
  udp,
} from '../../src/packet/index.js';

interface Codec<T> {
  encode(h: T, buf: Uint8Array, off: number): number;
  decode(
    buf: Uint8Array,
    off: number,
    end?: number,
  ): { ok: boolean; value?: T; length?: number; code?: number };
  encodingLength(h: T): number;
}

const u8 = (...b: number[]) => new Uint8Array(b);

const roundTrips: {
  description: string;
  codec: Codec<never>;
  input: unknown;
  truncated: number;
  cut?: number;
}[] = [
  {
    description: 'Ethernet without tags',
    codec: ethernet as never,
    input: { dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:00:00:00:01', etherType: 0x0800 },
    truncated: MALFORMED.ETH_TRUNCATED,
  },
  {
    description: 'Ethernet with 802.1ad + 802.1Q tags',
    codec: ethernet as never,
    input: {
      dst: '02:00:00:00:00:02',
      src: '02:00:00:00:00:01',
      vlans: [
        { id: 100, pcp: 3, dei: true, tpid: 0x88a8 },
        { id: 4095, pcp: 0, dei: false, tpid: 0x8100 },
      ],
      etherType: 0x86dd,
    },
    truncated: MALFORMED.VLAN_TRUNCATED,
    cut: 21,
  },
  {
    description: 'ARP request',
    codec: arp as never,
    input: {
      op: 1,
      sha: '02:00:00:00:00:01',
      spa: '10.0.0.1',
      tha: '00:00:00:00:00:00',
      tpa: '10.0.0.2',
    },
    truncated: MALFORMED.ARP_TRUNCATED,
  },
  {
    description: 'IPv4 with options, DF, fragment offset',
    codec: ipv4 as never,
    input: {
      tos: 0xb8,
      totalLength: 1000,
      id: 0xbeef,
      df: false,
      mf: true,
      fragOffset: 1480,
      ttl: 1,
      protocol: 6,
      checksum: 0x1234,
      src: '192.0.2.1',
      dst: '198.51.100.7',
      options: [{ type: 1 }, { type: 7, data: u8(4, 0, 0, 0, 0) }, { type: 148, data: u8(0, 0) }],
    },
    truncated: MALFORMED.IP_TRUNCATED,
  },
  {
    description: 'IPv6 with hop-by-hop, routing, fragment and destination options',
    codec: ipv6 as never,
    input: {
      trafficClass: 0x2e,
      flowLabel: 0xabcde,
      payloadLength: 100,
      nextHeader: 17,
      hopLimit: 255,
      src: '2001:db8::1',
      dst: 'fe80::1:2',
      extensions: [
        { type: 0, data: u8(5, 2, 0, 0, 1, 0) },
        { type: 43, data: u8(0, 0, 0, 0, 0, 0) },
        { type: 44, fragOffset: 0, mf: true, id: 0xdeadbeef },
        { type: 60, data: u8(1, 4, 0, 0, 0, 0) },
      ],
    },
    truncated: MALFORMED.IP_TRUNCATED,
  },
  {
    description: 'TCP with MSS, SACK-permitted, timestamps and window scale',
    codec: tcp as never,
    input: {
      srcPort: 65535,
      dstPort: 0,
      seq: 0xffffffff,
      ack: 0x80000000,
      flags: 0xff,
      window: 29200,
      checksum: 0xabcd,
      urgent: 7,
      options: [
        { kind: 2, data: u8(5, 180) },
        { kind: 4, data: u8() },
        { kind: 8, data: u8(0, 0, 0, 1, 0, 0, 0, 2) },
        { kind: 1 },
        { kind: 3, data: u8(7) },
      ],
    },
    truncated: MALFORMED.TCP_TRUNCATED,
  },
  {
    description: 'UDP',
    codec: udp as never,
    input: { srcPort: 53, dstPort: 33333, length: 8, checksum: 0 },
    truncated: MALFORMED.UDP_TRUNCATED,
  },
  {
    description: 'ICMP fragmentation needed',
    codec: icmp as never,
    input: { type: 3, code: 4, checksum: 0x1111, rest: 1400 },
    truncated: MALFORMED.ICMP_TRUNCATED,
  },
  {
    description: 'SCTP with INIT and an odd-length DATA chunk',
    codec: sctp as never,
    input: {
      srcPort: 2905,
      dstPort: 2905,
      vtag: 0xcafebabe,
      checksum: 0x01020304,
      chunks: [
        { type: 1, flags: 0, value: u8(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16) },
        { type: 0, flags: 3, value: u8(1, 2, 3) },
      ],
    },
    truncated: MALFORMED.SCTP_TRUNCATED,
  },
  {
    description: 'GRE without checksum',
    codec: gre as never,
    input: { protocol: 0x0800 },
    truncated: MALFORMED.GRE_TRUNCATED,
  },
  {
    description: 'GRE with checksum, key and sequence',
    codec: gre as never,
    input: { protocol: 0x86dd, checksumPresent: true, checksum: 0xffee, key: 42, seq: 0xffffffff },
    truncated: MALFORMED.GRE_TRUNCATED,
  },
  {
    description: 'GUE v0',
    codec: gue as never,
    input: { protocol: 4 },
    truncated: MALFORMED.GUE_TRUNCATED,
  },
  {
    description: 'GUE v0 with remote checksum offload',
    codec: gue as never,
    input: { protocol: 41, remcsum: { start: 40, offset: 56 } },
    truncated: MALFORMED.GUE_TRUNCATED,
  },
];

describe('codecs', () => {
  describe('#encode / #decode / #encodingLength', () => {
    for (const t of roundTrips) {
      it(`round-trips ${t.description} at offset 7`, () => {
        const n = t.codec.encodingLength(t.input as never);
        const buf = Buffer.alloc(7 + n + 5, 0xee);
        assert.equal(t.codec.encode(t.input as never, buf, 7), n);
        assert.equal(buf[6], 0xee, 'no write before the offset');
        assert.equal(buf[7 + n], 0xee, 'no write past encodingLength');
        const d = t.codec.decode(buf, 7, 7 + n);
        assert.ok(d.ok, `decode failed: ${JSON.stringify(d)}`);
        assert.equal(d.length, n);
        assert.deepEqual(d.value, t.input);
      });
      it(`reports ${t.description} cut one byte short as malformed, without throwing`, () => {
        const n = t.codec.encodingLength(t.input as never);
        const buf = Buffer.alloc(7 + n);
        t.codec.encode(t.input as never, buf, 7);
        for (let cut = 0; cut < n; cut++) {
          const d = t.codec.decode(buf, 7, 7 + cut);
          if (t.codec === (sctp as never) && cut >= 16) continue; // a shorter chunk list is still a packet
          assert.equal(d.ok, false, `cut at ${cut}`);
        }
        const d = t.codec.decode(buf, 7, 7 + (t.cut ?? 3));
        assert.equal(d.ok ? -1 : d.code, t.truncated);
      });
    }
  });

  describe('refusals', () => {
    const refusals: { description: string; input: () => unknown }[] = [
      {
        description: 'a port over 65535',
        input: () => tcp.encode({ srcPort: 65536, dstPort: 1, flags: 0 }, Buffer.alloc(20), 0),
      },
      {
        description: 'a negative port',
        input: () => udp.encode({ srcPort: -1, dstPort: 1, length: 8 }, Buffer.alloc(8), 0),
      },
      {
        description: 'a non-integer TTL',
        input: () =>
          ipv4.encode(
            { totalLength: 20, protocol: 6, ttl: 1.5, src: '1.2.3.4', dst: '1.2.3.4' },
            Buffer.alloc(20),
            0,
          ),
      },
      {
        description: 'IPv4 options that do not fit in 40 bytes',
        input: () =>
          ipv4.encode(
            {
              totalLength: 80,
              protocol: 6,
              src: '1.2.3.4',
              dst: '1.2.3.4',
              options: [{ type: 7, data: new Uint8Array(39) }],
            },
            Buffer.alloc(80),
            0,
          ),
      },
      {
        description: 'TCP options that do not fit in 40 bytes',
        input: () =>
          tcp.encode(
            {
              srcPort: 1,
              dstPort: 2,
              flags: 0,
              options: [
                { kind: 8, data: new Uint8Array(8) },
                { kind: 254, data: new Uint8Array(30) },
              ],
            },
            Buffer.alloc(80),
            0,
          ),
      },
      {
        description: 'a fragment offset that is not a multiple of 8',
        input: () =>
          ipv4.encode(
            { totalLength: 20, protocol: 6, fragOffset: 12, src: '1.2.3.4', dst: '1.2.3.4' },
            Buffer.alloc(20),
            0,
          ),
      },
      {
        description: 'a malformed IPv4 address',
        input: () =>
          ipv4.encode(
            { totalLength: 20, protocol: 6, src: '1.2.3.400', dst: '1.2.3.4' },
            Buffer.alloc(20),
            0,
          ),
      },
      {
        description: 'a malformed MAC address',
        input: () =>
          ethernet.encode(
            { dst: 'zz:00:00:00:00:00', src: '02:00:00:00:00:01', etherType: 0x800 },
            Buffer.alloc(14),
            0,
          ),
      },
      {
        description: 'a VLAN id over 4095',
        input: () =>
          ethernet.encode(
            {
              dst: '02:00:00:00:00:01',
              src: '02:00:00:00:00:01',
              vlans: [{ id: 4096 }],
              etherType: 0x800,
            },
            Buffer.alloc(18),
            0,
          ),
      },
      {
        description: 'three VLAN tags',
        input: () =>
          ethernet.encode(
            {
              dst: '02:00:00:00:00:01',
              src: '02:00:00:00:00:01',
              vlans: [{ id: 1 }, { id: 2 }, { id: 3 }],
              etherType: 0x800,
            },
            Buffer.alloc(30),
            0,
          ),
      },
      {
        description: 'an IPv6 flow label over 20 bits',
        input: () =>
          ipv6.encode(
            { payloadLength: 0, nextHeader: 59, flowLabel: 0x100000, src: '::1', dst: '::1' },
            Buffer.alloc(40),
            0,
          ),
      },
      {
        description: 'a routing header whose data does not fill 8-byte units',
        input: () =>
          ipv6.encode(
            {
              payloadLength: 8,
              nextHeader: 59,
              src: '::1',
              dst: '::1',
              extensions: [{ type: 43, data: new Uint8Array(3) }],
            },
            Buffer.alloc(48),
            0,
          ),
      },
      {
        description: 'a header that does not fit in the buffer',
        input: () => udp.encode({ srcPort: 1, dstPort: 2, length: 8 }, Buffer.alloc(10), 3),
      },
      {
        description: 'an IPv4 total length below the header length',
        input: () =>
          ipv4.encode(
            { totalLength: 19, protocol: 6, src: '1.2.3.4', dst: '1.2.3.4' },
            Buffer.alloc(20),
            0,
          ),
      },
      {
        description: 'a builder port over 65535',
        input: () =>
          PacketBuilder.eth()
            .ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
            .udp({ srcPort: 70000, dstPort: 1 })
            .build(),
      },
      {
        description: 'a builder packet larger than 64 KiB',
        input: () =>
          PacketBuilder.ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
            .udp({ srcPort: 1, dstPort: 1 })
            .payload(70000)
            .build(),
      },
      {
        description: 'a GUE remcsum start over 65535',
        input: () =>
          gue.encode({ protocol: 4, remcsum: { start: 65536, offset: 0 } }, Buffer.alloc(12), 0),
      },
    ];
    for (const t of refusals) {
      it(`refuses ${t.description} with IPVS_ERR_PACKET_ENCODE`, () => {
        assert.throws(t.input, (e: unknown) => {
          assert.ok(e instanceof PacketEncodeError);
          assert.equal(e.code, 'IPVS_ERR_PACKET_ENCODE');
          assert.equal(e.errno, 'EINVAL');
          return true;
        });
      });
    }
  });
});
