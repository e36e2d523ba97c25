// Classic pcap files: write → read round trips, both byte orders and resolutions on read, link
// types, and what the reader does with damaged files.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LINKTYPE, PacketBuilder, readPcap, writePcap } from '../../src/packet/index.js';

const f1 = PacketBuilder.eth()
  .ipv4({ src: '1.1.1.1', dst: '2.2.2.2' })
  .udp({ srcPort: 1, dstPort: 2 })
  .payload('a')
  .build();
const f2 = PacketBuilder.eth()
  .ipv6({ src: '::1', dst: '::2' })
  .tcp({ srcPort: 3, dstPort: 4, flags: 2 })
  .build();

/** A pcap written by hand in big-endian order with nanosecond timestamps. */
function bigEndianNano(linkType: number, frames: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(24)];
  parts[0]!.writeUInt32BE(0xa1b23c4d, 0);
  parts[0]!.writeUInt16BE(2, 4);
  parts[0]!.writeUInt16BE(4, 6);
  parts[0]!.writeUInt32BE(65535, 16);
  parts[0]!.writeUInt32BE(linkType, 20);
  frames.forEach((f, i) => {
    const h = Buffer.alloc(16);
    h.writeUInt32BE(1700000000 + i, 0);
    h.writeUInt32BE(123456789, 4);
    h.writeUInt32BE(f.length, 8);
    h.writeUInt32BE(f.length + 10, 12);
    parts.push(h, f);
  });
  return Buffer.concat(parts);
}

/** A pcapng file written by hand: one section, the interfaces given, enhanced packet blocks. */
function pcapng(
  ifaces: { linkType: number; tsresol?: number; tsoffset?: bigint }[],
  packets: { iface: number; data: Uint8Array; ts: bigint; orig?: number }[],
  be = false,
): Buffer {
  const u16 = (v: number) => {
    const b = Buffer.alloc(2);
    if (be) b.writeUInt16BE(v);
    else b.writeUInt16LE(v);
    return b;
  };
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    if (be) b.writeUInt32BE(v >>> 0);
    else b.writeUInt32LE(v >>> 0);
    return b;
  };
  const block = (type: number, body: Buffer) => {
    const pad = Buffer.alloc((4 - (body.length % 4)) % 4);
    const len = 12 + body.length + pad.length;
    return Buffer.concat([u32(type), u32(len), body, pad, u32(len)]);
  };
  const opt = (code: number, v: Buffer) =>
    Buffer.concat([u16(code), u16(v.length), v, Buffer.alloc((4 - (v.length % 4)) % 4)]);
  const parts = [
    block(0x0a0d0d0a, Buffer.concat([u32(0x1a2b3c4d), u16(1), u16(0), Buffer.alloc(8, 0xff)])),
  ];
  for (const i of ifaces) {
    const opts: Buffer[] = [];
    if (i.tsresol !== undefined) opts.push(opt(9, Buffer.from([i.tsresol])));
    if (i.tsoffset !== undefined) {
      const b = Buffer.alloc(8);
      if (be) b.writeBigInt64BE(i.tsoffset);
      else b.writeBigInt64LE(i.tsoffset);
      opts.push(opt(14, b));
    }
    if (opts.length) opts.push(Buffer.alloc(4));
    parts.push(block(1, Buffer.concat([u16(i.linkType), u16(0), u32(262144), ...opts])));
  }
  for (const k of packets) {
    const d = Buffer.from(k.data);
    const head = Buffer.concat([
      u32(k.iface),
      u32(Number(k.ts >> 32n)),
      u32(Number(k.ts & 0xffffffffn)),
      u32(d.length),
      u32(k.orig ?? d.length),
    ]);
    parts.push(block(6, Buffer.concat([head, d])));
  }
  return Buffer.concat(parts);
}

describe('pcap', () => {
  describe('#readPcap: pcapng', () => {
    for (const be of [false, true]) {
      it(`reads enhanced packet blocks (${be ? 'big' : 'little'}-endian section)`, () => {
        const r = readPcap(
          pcapng(
            [{ linkType: 1 }],
            [
              { iface: 0, data: f1, ts: 1_700_000_000_000_000n },
              { iface: 0, data: f2, ts: 1_700_000_000_001_500n, orig: f2.length + 7 },
            ],
            be,
          ),
        );
        assert.ok(r.ok, r.ok ? '' : r.reason);
        assert.deepEqual([r.file.linkType, r.file.bigEndian], [1, be]);
        assert.deepEqual(
          r.file.records.map((x) => [Buffer.from(x.data), x.timestampUs, x.origLength]),
          [
            [Buffer.from(f1), 1_700_000_000_000_000, f1.length],
            [Buffer.from(f2), 1_700_000_000_001_500, f2.length + 7],
          ],
        );
      });
    }
    it('converts if_tsresol (10^-9 and 2^-10) and if_tsoffset to microseconds', () => {
      const r = readPcap(
        pcapng(
          [
            { linkType: 1, tsresol: 9 },
            { linkType: 1, tsresol: 0x80 | 10, tsoffset: 1_700_000_000n },
          ],
          [
            { iface: 0, data: f1, ts: 1_700_000_000_123_456_789n },
            { iface: 1, data: f2, ts: 512n },
          ],
        ),
      );
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.deepEqual(
        r.file.records.map((x) => x.timestampUs),
        [1_700_000_000_123_456, 1_700_000_000_500_000],
      );
    });
    it('refuses interfaces of different link types in one file', () => {
      const r = readPcap(
        pcapng(
          [{ linkType: 1 }, { linkType: 101 }],
          [
            { iface: 0, data: f1, ts: 0n },
            { iface: 1, data: f1.subarray(14), ts: 0n },
          ],
        ),
      );
      assert.deepEqual(r, { ok: false, reason: 'pcapng file mixes link types 1 and 101' });
    });
    it('stops at a block cut short and says where', () => {
      const file = pcapng(
        [{ linkType: 1 }],
        [
          { iface: 0, data: f1, ts: 0n },
          { iface: 0, data: f2, ts: 0n },
        ],
      );
      const r = readPcap(file.subarray(0, file.length - 10));
      assert.ok(r.ok);
      assert.equal(r.file.records.length, 1);
      assert.match(r.file.truncated ?? '', /^block 4 at byte \d+ cut short/);
    });
  });

  describe('#writePcap / #readPcap', () => {
    const table = [
      {
        description: 'Ethernet frames (link type 1)',
        input: [f1, f2],
        linkType: LINKTYPE.ETHERNET,
      },
      {
        description: 'raw IP packets (link type 101)',
        input: [f1.subarray(14), f2.subarray(14)],
        linkType: LINKTYPE.RAW,
      },
    ];
    for (const t of table) {
      it(`round-trips ${t.description}`, () => {
        const file = writePcap(
          t.input.map((data, i) => ({ data, timestampUs: 1_700_000_000_000_000 + i * 1500 })),
          t.linkType,
        );
        assert.equal(file.readUInt32LE(0), 0xa1b2c3d4);
        const r = readPcap(file);
        assert.ok(r.ok);
        assert.equal(r.file.linkType, t.linkType);
        assert.equal(r.file.bigEndian, false);
        assert.deepEqual(
          r.file.records.map((x) => Buffer.from(x.data)),
          t.input.map((x) => Buffer.from(x)),
        );
        assert.deepEqual(
          r.file.records.map((x) => x.timestampUs),
          [1_700_000_000_000_000, 1_700_000_000_001_500],
        );
        assert.deepEqual(
          r.file.records.map((x) => x.origLength),
          t.input.map((x) => x.length),
        );
      });
    }
    it('reads big-endian nanosecond files', () => {
      const r = readPcap(bigEndianNano(LINKTYPE.ETHERNET, [f1, f2]));
      assert.ok(r.ok);
      assert.deepEqual(
        [r.file.bigEndian, r.file.nanosecond, r.file.snaplen, r.file.records.length],
        [true, true, 65535, 2],
      );
      assert.equal(r.file.records[1]!.timestampUs, 1_700_000_001_123_456);
      assert.equal(r.file.records[0]!.origLength, f1.length + 10);
      assert.deepEqual(Buffer.from(r.file.records[1]!.data), f2);
    });
    for (const lt of [LINKTYPE.IPV4, LINKTYPE.IPV6]) {
      it(`accepts link type ${lt} on read`, () => {
        const r = readPcap(bigEndianNano(lt, [f1.subarray(14)]));
        assert.ok(r.ok && r.file.linkType === lt);
      });
    }
    const bad = [
      {
        description: 'a file shorter than its header',
        input: Buffer.alloc(10),
        expected: 'pcap global header truncated',
      },
      {
        description: 'a file that is neither pcap nor pcapng',
        input: Buffer.from('hello, this is not a capture file at all'),
        expected: 'not a pcap or pcapng file (bad magic)',
      },
      {
        description: 'a pcapng section header with a bad byte-order magic',
        input: Buffer.from('0a0d0d0a' + '1c000000' + '00'.repeat(20), 'hex'),
        expected: 'pcapng section at byte 0: bad byte-order magic',
      },
      {
        description: 'a pcapng file whose only interface is not Ethernet or IP',
        input: pcapng([{ linkType: 105 }], []),
        expected: 'unsupported link type 105',
      },
      {
        description: 'a pcapng packet block naming an interface never described',
        input: pcapng([{ linkType: 1 }], [{ iface: 3, data: f1, ts: 0n }]),
        expected: 'pcapng packet block at byte 48 names interface 3, not described',
      },
      {
        description: 'a pcapng timestamp beyond what a number holds exactly (if_tsresol 10^0)',
        input: pcapng([{ linkType: 1, tsresol: 0 }], [{ iface: 0, data: f1, ts: 1n << 63n }]),
        expected: 'pcapng packet block at byte 60: timestamp out of range',
      },
      {
        description: 'an unsupported link type',
        input: bigEndianNano(105, []),
        expected: 'unsupported link type 105',
      },
    ];
    for (const t of bad) {
      it(`refuses ${t.description}`, () =>
        assert.deepEqual(readPcap(t.input), { ok: false, reason: t.expected }));
    }
    it('stops at a record cut short, as a killed capture leaves it, and says where', () => {
      const file = writePcap([f1, f2]);
      const r = readPcap(file.subarray(0, file.length - 3));
      assert.ok(r.ok);
      assert.equal(r.file.records.length, 1);
      assert.equal(
        r.file.truncated,
        `record 2 at byte ${24 + 16 + f1.length} cut short (${f2.length} bytes, ${f2.length - 3} left)`,
      );
      const h = readPcap(file.subarray(0, 24 + 16 + f1.length + 5));
      assert.ok(h.ok);
      assert.match(h.file.truncated ?? '', /record 2 at byte \d+: header cut short/);
      const whole = readPcap(file);
      assert.ok(whole.ok);
      assert.equal(whole.file.truncated, undefined);
    });
    it('refuses to write a link type other than 1 or 101', () => {
      assert.throws(() => writePcap([f1], 228), { code: 'IPVS_ERR_PACKET_ENCODE' });
    });
  });
});
