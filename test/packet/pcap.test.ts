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

describe('pcap', () => {
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
        description: 'a pcapng file',
        input: Buffer.from('0a0d0d0a' + '00'.repeat(40), 'hex'),
        expected: 'not a classic pcap file (bad magic)',
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
    it('stops at a record cut short, as a killed capture leaves it', () => {
      const file = writePcap([f1, f2]);
      const r = readPcap(file.subarray(0, file.length - 3));
      assert.ok(r.ok);
      assert.equal(r.file.records.length, 1);
    });
    it('refuses to write a link type other than 1 or 101', () => {
      assert.throws(() => writePcap([f1], 228), { code: 'IPVS_ERR_PACKET_ENCODE' });
    });
  });
});
