// Fuzz (fast-check): random bytes and mutated valid frames never make a decoder throw or read
// outside the frame it was given, and every field it fills is an integer in range.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  arp,
  decodeEthernet,
  decodeGue,
  decodeIcmpInner,
  decodeIp,
  decodeTunnelInner,
  ethernet,
  gre,
  gue,
  icmp,
  ipv4,
  ipv6,
  MALFORMED_REASON,
  PacketBuilder,
  PacketView,
  readPcap,
  sctp,
  tcp,
  TCP_FLAG,
  udp,
} from '../../src/packet/index.js';

/** A Buffer stand-in whose indexed reads outside [lo, hi) throw, so an out-of-frame read fails the test. */
function guarded(buf: Buffer, lo: number, hi: number): Buffer {
  return new Proxy(buf, {
    get(target, key) {
      if (typeof key === 'string' && /^-?\d+$/.test(key)) {
        const i = Number(key);
        if (i < lo || i >= hi)
          throw new RangeError(`read of byte ${i} outside the frame [${lo}, ${hi})`);
        return target[i];
      }
      const val = Reflect.get(target, key) as unknown;
      return typeof val === 'function' ? (val as (...a: unknown[]) => unknown).bind(target) : val;
    },
  });
}

const U32_GETTERS = [
  'tcpSeq',
  'tcpAck',
  'icmpRest',
  'sctpVtag',
  'sctpChecksum',
  'ipId',
  'arpSpa',
  'arpTpa',
] as const;
const OFFSETS = [
  'l2Offset',
  'l3Offset',
  'l4Offset',
  'payloadOffset',
  'innerOffset',
  'arpShaOffset',
  'arpThaOffset',
  'fragHeaderOffset',
] as const;

function checkView(v: PacketView, code: number): void {
  assert.equal(typeof code, 'number');
  assert.equal(v.malformed, code);
  assert.equal(v.reason, MALFORMED_REASON[code]);
  for (const [k, val] of Object.entries(v)) {
    if (typeof val === 'number') assert.ok(Number.isInteger(val), `${k} = ${val}`);
  }
  for (const k of U32_GETTERS)
    assert.ok(Number.isInteger(v[k]) && v[k] >= 0 && v[k] <= 0xffffffff, k);
  for (const k of OFFSETS) {
    const o = v[k];
    assert.ok(
      o === -1 || (o >= v.start && o <= v.end),
      `${k} = ${o} outside [${v.start}, ${v.end}]`,
    );
  }
  if (v.payloadOffset >= 0)
    assert.ok(v.payloadLength >= 0 && v.payloadOffset + v.payloadLength <= v.end, 'payload');
  if (v.l4Offset >= 0) assert.ok(v.l4Length >= 0 && v.l4Offset + v.l4Length <= v.end, 'l4');
  if (v.l3Offset >= 0 && code === 0) assert.ok(v.ipEnd <= v.end);
  for (const [k, lo, hi] of [
    ['srcPort', 0, 0xffff],
    ['dstPort', 0, 0xffff],
    ['ttl', 0, 255],
    ['tos', 0, 255],
    ['tcpFlags', 0, 255],
    ['icmpType', -1, 255],
    ['icmpCode', -1, 255],
    ['protocol', -1, 255],
    ['vlanId', 0, 4095],
    ['etherType', 0, 0xffff],
    ['l4Checksum', 0, 0xffff],
    ['sctpChunkType', -1, 255],
  ] as const) {
    assert.ok(v[k] >= lo && v[k] <= hi, `${k} = ${v[k]}`);
  }
}

/** Runs every view decoder over `buf[off, off+len)` through a guard; nothing may throw. */
function decodeAll(raw: Buffer, off: number, len: number): void {
  const hi = Math.min(raw.length, Math.max(0, off) + Math.max(0, len));
  const buf = guarded(raw, Math.max(0, off), hi);
  const v = new PacketView();
  const inner = new PacketView();
  checkView(v, decodeEthernet(v, buf, off, len));
  if (v.icmpIsError) checkView(inner, decodeIcmpInner(inner, v));
  if (v.innerOffset >= 0) checkView(inner, decodeTunnelInner(inner, v));
  checkView(v, decodeIp(v, buf, off, len));
  if (v.icmpIsError) checkView(inner, decodeIcmpInner(inner, v));
  if (v.protocol === 17 && v.ok) {
    checkView(v, decodeGue(v));
    if (v.innerOffset >= 0) checkView(inner, decodeTunnelInner(inner, v));
  }
  if (v.innerOffset >= 0) checkView(inner, decodeTunnelInner(inner, v));
}

const samples = (): Buffer[] => {
  const quoted = PacketBuilder.ipv4({ src: '10.0.0.2', dst: '10.0.0.1' })
    .tcp({ srcPort: 80, dstPort: 1, flags: 2 })
    .build();
  const in4 = () => PacketBuilder.ipv4({ src: '10.0.0.1', dst: '10.0.0.2' });
  const list = [
    PacketBuilder.eth({ vlans: [{ id: 1 }, { id: 2 }] })
      .ipv4({
        src: '1.1.1.1',
        dst: '2.2.2.2',
        options: [{ type: 1 }, { type: 7, data: new Uint8Array(3) }],
      })
      .tcp({
        srcPort: 1,
        dstPort: 2,
        flags: TCP_FLAG.SYN,
        options: [{ kind: 2, data: new Uint8Array(2) }],
      })
      .payload('x'),
    PacketBuilder.eth()
      .ipv6({
        src: '::1',
        dst: '::2',
        extensions: [
          { type: 0 },
          { type: 43, data: new Uint8Array(6) },
          { type: 44, fragOffset: 0, mf: true, id: 1 },
          { type: 60 },
        ],
      })
      .udp({ srcPort: 1, dstPort: 2 })
      .payload('y'),
    PacketBuilder.eth()
      .ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
      .icmp({ type: 3, code: 3 })
      .payload(quoted),
    PacketBuilder.eth()
      .ipv6({ src: '::1', dst: '::2' })
      .icmpv6({ type: 1, code: 4 })
      .payload(
        PacketBuilder.ipv6({ src: '::2', dst: '::1' }).udp({ srcPort: 1, dstPort: 2 }).build(),
      ),
    PacketBuilder.eth()
      .ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
      .sctp({
        srcPort: 1,
        dstPort: 2,
        vtag: 3,
        chunks: [
          { type: 1, value: new Uint8Array(16) },
          { type: 0, value: new Uint8Array(3) },
        ],
      }),
    PacketBuilder.eth()
      .ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
      .gre({ checksumPresent: true })
      .ipv4({ src: '3.3.3.3', dst: '4.4.4.4' })
      .udp({ srcPort: 5, dstPort: 6 }),
    PacketBuilder.eth()
      .ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
      .udp({ srcPort: 5, dstPort: 6080 })
      .gue({ remcsum: { start: 20, offset: 6 } })
      .ipv4({ src: '3.3.3.3', dst: '4.4.4.4' })
      .udp({ srcPort: 5, dstPort: 6 }),
    PacketBuilder.eth()
      .ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
      .ipv4({ src: '3.3.3.3', dst: '4.4.4.4' })
      .tcp({ srcPort: 5, dstPort: 6, flags: 16 }),
    PacketBuilder.eth().arp({
      op: 1,
      sha: '02:00:00:00:00:01',
      spa: '1.1.1.1',
      tha: '00:00:00:00:00:00',
      tpa: '2.2.2.2',
    }),
    in4().udp({ srcPort: 1, dstPort: 2 }).payload(3),
  ];
  return list.map((b) => b.build());
};

describe('fuzz', () => {
  it('has a guard that catches a read outside the frame (so the properties below can fail)', () => {
    const raw = Buffer.alloc(40);
    raw[2] = 0x45;
    raw[5] = 30; // total length
    const g = guarded(raw, 2, 6);
    assert.equal(g[2], 0x45);
    assert.throws(() => g[6], RangeError);
    assert.throws(() => g[1], RangeError);
    const v = new PacketView();
    // a decoder told the frame is 30 bytes long while the guard allows 4 must trip it
    assert.throws(() => decodeIp(v, g, 2, 30), RangeError);
  });

  it('decodes random bytes at random offsets and lengths without throwing or reading outside the frame', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 160 }),
        fc.integer({ min: -4, max: 170 }),
        fc.integer({ min: -4, max: 200 }),
        (data, off, len) => {
          decodeAll(Buffer.from(data), off, len);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('decodes mutated and truncated valid frames of every format without throwing', () => {
    const pool = samples();
    fc.assert(
      fc.property(
        fc.nat(pool.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(),
        fc.boolean(),
        (pick, muts, cut, truncate) => {
          const f = Buffer.from(pool[pick]!);
          for (const [i, b] of muts) f[i % f.length] = b;
          const len = truncate ? cut % (f.length + 1) : f.length;
          const raw = Buffer.concat([Buffer.alloc(2), f]);
          decodeAll(raw, 2, len);
          if (pick === pool.length - 1) decodeAll(raw, 2, len);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('runs the per-header object decoders and the pcap reader over random bytes without throwing', () => {
    const codecs = [ethernet, arp, ipv4, ipv6, tcp, udp, icmp, sctp, gre, gue];
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 120 }),
        fc.integer({ min: -2, max: 130 }),
        (data, off) => {
          const b = Buffer.from(data);
          for (const c of codecs) {
            const d = c.decode(b, off);
            assert.equal(typeof d.ok, 'boolean');
            if (d.ok) assert.ok(d.length >= 0 && off + d.length <= b.length);
          }
          const p = readPcap(
            Buffer.concat([
              Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex'),
              b,
            ]),
          );
          assert.equal(p.ok, true);
          assert.equal(readPcap(b).ok === true || readPcap(b).ok === false, true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
