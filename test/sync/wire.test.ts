/**
 * The sync wire format (spec §8.2, §8.3): golden datagrams hand-built from the spec's layout
 * tables, every receive-side validation rule, and round trips.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CONN_F_HASHED,
  CONN_F_INACTIVE,
  CONN_F_IN_SEQ,
  CONN_F_NFCT,
  CONN_F_ONE_PACKET,
  CONN_F_SYNC,
  CONN_F_TEMPLATE,
} from '../../src/core/constants.js';
import {
  type SyncConn,
  SyncMessage,
  decodeMessage,
  encodeRecordV0,
  encodeRecordV1,
  recordLengthV1,
} from '../../src/sync/wire.js';
import { syncConn, w } from './fixtures.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');

/** TCP 192.0.2.2:40000 → 203.0.113.10:80 → 198.51.100.11:8080, ESTABLISHED, 900 s. */
function tcpConn(o: Partial<SyncConn> = {}): SyncConn {
  return syncConn({ flags: CONN_F_INACTIVE | CONN_F_HASHED, ...o });
}

// header: reserved 0, syncid 5, size 44, 1 record, version 1, spare 0
const V1_HDR_1 = '00 05 002c 01 01 0000';
// type 0, proto 6, ver_size 36 | flags 0x100 (HASHED cleared) | state 1, cport 40000 |
// vport 80, dport 8080 | fwmark 0 | timeout 900 | caddr | vaddr | daddr
const V1_TCP =
  '00 06 0024  00000100  0001 9c40  0050 1f90  00000000  00000384  c0000202  cb00710a  c633640b';

const SIP_TPL: SyncConn = {
  af: 2,
  protocol: 17,
  flags: CONN_F_TEMPLATE,
  state: 0,
  cport: 0,
  vport: 5060,
  dport: 5060,
  fwmark: 0,
  timeout: 360,
  caddr: w('192.0.2.2'),
  vaddr: w('203.0.113.10'),
  daddr: w('198.51.100.11'),
  peData: Buffer.from('abc'),
  peName: 'sip',
};
// 36 + PE data (2 + 3) + PE name (2 + 3) = 46 = 0x2e, then 2 bytes of padding
const V1_SIP =
  '00 11 002e  00001000  0000 0000  13c4 13c4  00000000  00000168  c0000202  cb00710a  c633640b' +
  '02 03 616263  03 03 736970';

describe('sync wire format', () => {
  describe('v1 encoding (golden datagrams)', () => {
    it('an IPv4 TCP record after the 8-byte header, HASHED cleared', () => {
      const m = new SyncMessage(1, 5, 1472, 36, 0);
      m.addV1(tcpConn());
      assert.equal(m.bytes().toString('hex'), hex(V1_HDR_1 + V1_TCP).toString('hex'));
    });

    it('pads a record to four bytes before the next, outside ver_size but inside size', () => {
      const m = new SyncMessage(1, 5, 1472, 46, 0);
      m.addV1(SIP_TPL);
      m.addV1(tcpConn());
      // 8 + 46 + 2 + 36 = 92 = 0x5c, two records
      const want = hex('00 05 005c 02 01 0000' + V1_SIP + '0000' + V1_TCP);
      assert.equal(m.bytes().toString('hex'), want.toString('hex'));
    });

    it('an IPv6 record with SEQ data: 72 + 26 bytes, sequence numbers big-endian', () => {
      const c = tcpConn({
        af: 10,
        flags: CONN_F_IN_SEQ,
        caddr: w('2001:db8::2'),
        vaddr: w('2001:db8::10'),
        daddr: w('2001:db8:1::11'),
        inSeq: { initSeq: 1, delta: 2, previousDelta: 3 },
        outSeq: { initSeq: 4, delta: 5, previousDelta: 6 },
      });
      assert.equal(recordLengthV1(c), 98);
      const m = new SyncMessage(1, 0, 1452, 98, 0);
      m.addV1(c);
      const want = hex(
        '00 00 006a 01 01 0000' +
          '01 06 0062  00000400  0001 9c40  0050 1f90  00000000  00000384' +
          '20010db8 00000000 00000000 00000002' +
          '20010db8 00000000 00000000 00000010' +
          '20010db8 00010000 00000000 00000011' +
          '01 18  00000001 00000002 00000003  00000004 00000005 00000006',
      );
      assert.equal(m.bytes().toString('hex'), want.toString('hex'));
    });

    it('encodes at a non-zero offset and writes nothing outside the record', () => {
      const b = Buffer.alloc(50, 0xee);
      assert.equal(encodeRecordV1(tcpConn(), b, 7), 36);
      assert.equal(b.subarray(7, 43).toString('hex'), hex(V1_TCP).toString('hex'));
      assert.ok(b.subarray(0, 7).every((x) => x === 0xee));
      assert.ok(b.subarray(43).every((x) => x === 0xee));
    });

    it('a message holds what fits in sync_maxlen; a record larger than that gets a buffer of its size', () => {
      const m = new SyncMessage(1, 0, 80, 36, 0);
      m.addV1(tcpConn());
      assert.equal(m.fits(36), true); // 44 + 36 = 80
      m.addV1(tcpConn());
      assert.equal(m.fits(36), false);
      const big = new SyncMessage(1, 0, 20, 46, 0);
      assert.equal(big.buf.length, 54);
    });
  });

  describe('v0 encoding', () => {
    it('4-byte header and a 24-byte record', () => {
      const m = new SyncMessage(0, 0, 1472, 24, 0);
      m.addV0(tcpConn());
      const want = hex('01 00 001c  00 06 9c40 0050 1f90 c0000202 cb00710a c633640b 0100 0001');
      assert.equal(m.bytes().toString('hex'), want.toString('hex'));
    });

    it('sequence data follows in the sender byte order (48 bytes)', () => {
      const b = Buffer.alloc(48);
      const c = tcpConn({
        flags: CONN_F_IN_SEQ,
        inSeq: { initSeq: 1, delta: 2, previousDelta: 3 },
        outSeq: { initSeq: 4, delta: 5, previousDelta: 6 },
      });
      assert.equal(encodeRecordV0(c, b, 0), 48);
      const r = decodeMessage(Buffer.concat([hex('01 00 0034'), b]), { syncId: 0 });
      assert.equal(r.version, 0);
      assert.deepEqual(r.records[0]!.inSeq, { initSeq: 1, delta: 2, previousDelta: 3 });
      assert.deepEqual(r.records[0]!.outSeq, { initSeq: 4, delta: 5, previousDelta: 6 });
    });
  });

  describe('decoding', () => {
    it('reads the golden v1 datagram back, flags masked with BACKUP_MASK plus SYNC', () => {
      const r = decodeMessage(hex(V1_HDR_1 + V1_TCP), { syncId: 0 });
      assert.equal(r.version, 1);
      assert.equal(r.drop, null);
      assert.equal(r.records.length, 1);
      const x = r.records[0]!;
      assert.equal(x.flags, CONN_F_INACTIVE | CONN_F_SYNC);
      assert.deepEqual(
        [x.protocol, x.state, x.cport, x.vport, x.dport, x.timeout, x.caddr[0], x.daddr[0]],
        [6, 1, 40000, 80, 8080, 900, 0xc0000202, 0xc633640b],
      );
    });

    it('reads a padded two-record datagram with PE options', () => {
      const r = decodeMessage(hex('00 05 005c 02 01 0000' + V1_SIP + '0000' + V1_TCP), {
        syncId: 5,
      });
      assert.equal(r.records.length, 2);
      assert.equal(r.records[0]!.peName, 'sip');
      assert.equal(r.records[0]!.peData!.toString(), 'abc');
      assert.equal(r.records[0]!.flags, CONN_F_TEMPLATE | CONN_F_SYNC);
      assert.equal(r.records[1]!.cport, 40000);
    });

    it('masks flags the backup does not take (HASHED, ONE_PACKET, NFCT)', () => {
      const b = hex(V1_HDR_1 + V1_TCP);
      b.writeUInt32BE(CONN_F_INACTIVE | CONN_F_HASHED | CONN_F_ONE_PACKET | CONN_F_NFCT, 12);
      assert.equal(
        decodeMessage(b, { syncId: 0 }).records[0]!.flags,
        CONN_F_INACTIVE | CONN_F_SYNC,
      );
    });

    it('v0 flags are not masked (mainline ip_vs_process_message_v0), only HASHED cleared', () => {
      const b = hex('01 00 001c  00 06 9c40 0050 1f90 c0000202 cb00710a c633640b 2140 0001');
      const r = decodeMessage(b, { syncId: 0 });
      assert.equal(r.records[0]!.flags, CONN_F_ONE_PACKET | CONN_F_INACTIVE | CONN_F_SYNC);
      assert.equal(r.records[0]!.timeout, 0);
    });

    const cases: { name: string; bytes: () => Buffer; syncId?: number; drop: string | null }[] = [
      { name: 'under 4 bytes', bytes: () => hex('000500'), drop: 'short' },
      {
        name: 'size field not the datagram length',
        bytes: () => Buffer.concat([hex(V1_HDR_1 + V1_TCP), hex('00')]),
        drop: 'size',
      },
      {
        name: 'another sync id when the backup has one',
        bytes: () => hex(V1_HDR_1 + V1_TCP),
        syncId: 7,
        drop: 'syncid',
      },
      {
        name: 'fewer than 36 bytes left for a record',
        bytes: () => {
          const b = hex(V1_HDR_1 + V1_TCP).subarray(0, 40);
          b.writeUInt16BE(40, 2);
          return b;
        },
        drop: 'truncated',
      },
      {
        name: 'ver_size past the end',
        bytes: () => {
          const b = hex(V1_HDR_1 + V1_TCP);
          b.writeUInt16BE(40, 10);
          return b;
        },
        drop: 'truncated',
      },
      {
        name: 'a record version in ver_size',
        bytes: () => {
          const b = hex(V1_HDR_1 + V1_TCP);
          b.writeUInt16BE(0x1024, 10);
          return b;
        },
        drop: 'record-version',
      },
      {
        name: 'a record type other than 0 / IPv6',
        bytes: () => {
          const b = hex(V1_HDR_1 + V1_TCP);
          b[8] = 2;
          return b;
        },
        drop: 'record-type',
      },
      {
        name: 'an IPv6 record shorter than its 72-byte fixed part',
        bytes: () => {
          const b = hex(V1_HDR_1 + V1_TCP);
          b[8] = 1;
          return b;
        },
        drop: 'record-size',
      },
    ];
    for (const c of cases) {
      it(`drops a message: ${c.name}`, () => {
        const r = decodeMessage(c.bytes(), { syncId: c.syncId ?? 0 });
        assert.equal(r.drop, c.drop);
        assert.equal(r.records.length, 0);
      });
    }

    /** A v1 datagram of one TCP record followed by `opts` (hex), ver_size covering them. */
    function withOpts(opts: string, secondRecord = false): Buffer {
      const o = hex(opts);
      const rec = Buffer.concat([hex(V1_TCP), o]);
      rec.writeUInt16BE(rec.length, 2);
      const pad = Buffer.alloc((4 - (rec.length & 3)) & 3);
      const parts = [hex('00 00 0000 01 01 0000'), rec];
      if (secondRecord) parts.push(pad, hex(V1_TCP));
      const b = Buffer.concat(parts);
      b.writeUInt16BE(b.length, 2);
      b[4] = secondRecord ? 2 : 1;
      return b;
    }

    const optionDrops: [string, string][] = [
      ['a lone option type byte', '01'],
      ['a zero option length', '02 00'],
      ['an option longer than the record', '02 05 6162'],
      ['SEQ data of the wrong length', '01 04 00000000'],
      ['SEQ data twice', '01 18' + '00'.repeat(24) + '01 18' + '00'.repeat(24)],
      ['PE data twice', '02 01 61 02 01 61 03 03 736970'],
      ['a PE name over 16 bytes', '02 01 61 03 11' + '61'.repeat(17)],
    ];
    for (const [name, opts] of optionDrops) {
      it(`drops the rest of the message on a malformed option: ${name}`, () => {
        const r = decodeMessage(withOpts(opts, true), { syncId: 0 });
        assert.equal(r.drop, 'option');
        assert.equal(r.records.length, 0);
      });
    }

    it('keeps records decoded before a drop (the kernel applied them already)', () => {
      const good = hex(V1_TCP);
      const bad = hex(V1_TCP);
      bad[0] = 4;
      const b = Buffer.concat([hex('00 00 0000 02 01 0000'), good, bad]);
      b.writeUInt16BE(b.length, 2);
      const r = decodeMessage(b, { syncId: 0 });
      assert.equal(r.drop, 'record-type');
      assert.equal(r.records.length, 1);
    });

    const skips: [string, () => Buffer, string][] = [
      ['an unknown mandatory option', () => withOpts('09 02 0000', true), 'mandatory-option'],
      ['PE data without a PE name', () => withOpts('02 03 616263', true), 'pe-params'],
      ['an unknown persistence engine', () => withOpts('02 01 61 03 03 78797a', true), 'pe-name'],
      [
        'an unknown protocol',
        () => {
          const b = withOpts('', true);
          b[9] = 1;
          return b;
        },
        'protocol',
      ],
      [
        'a TCP state past the table',
        () => {
          const b = withOpts('', true);
          b.writeUInt16BE(11, 16);
          return b;
        },
        'state',
      ],
    ];
    for (const [name, bytes, why] of skips) {
      it(`skips one record and reads on: ${name}`, () => {
        const r = decodeMessage(bytes(), { syncId: 0 });
        assert.equal(r.drop, null);
        assert.deepEqual(r.skipped, [why]);
        assert.equal(r.records.length, 1);
      });
    }

    it('applies AH and ESP records of state 0 (one-state handlers) and skips state 1', () => {
      for (const proto of [50, 51]) {
        const b = withOpts('', true);
        b[9] = proto;
        b.writeUInt16BE(0, 16);
        const r = decodeMessage(b, { syncId: 0 });
        assert.deepEqual(r.skipped, []);
        assert.equal(r.records[0]!.protocol, proto);
        b.writeUInt16BE(1, 16);
        assert.deepEqual(decodeMessage(b, { syncId: 0 }).skipped, ['state']);
      }
    });

    it('ignores an unknown option marked optional (type + 64)', () => {
      const r = decodeMessage(withOpts('49 02 0000'), { syncId: 0 });
      assert.equal(r.drop, null);
      assert.equal(r.records.length, 1);
    });

    it('a header with a non-zero spare field is a v0 header', () => {
      const b = hex(V1_HDR_1 + V1_TCP);
      b[7] = 1;
      const r = decodeMessage(b, { syncId: 0 });
      assert.equal(r.version, 0);
      assert.equal(r.records.length, 0); // byte 0 = 0 records
    });

    it('v0: a record past the end, or SEQ flags without their 24 bytes, drop the rest', () => {
      const one = hex('02 00 001c  00 06 9c40 0050 1f90 c0000202 cb00710a c633640b 0100 0001');
      const r1 = decodeMessage(one, { syncId: 0 });
      assert.equal(r1.drop, 'truncated');
      assert.equal(r1.records.length, 1);
      const seq = hex('01 00 001c  00 06 9c40 0050 1f90 c0000202 cb00710a c633640b 0500 0001');
      assert.equal(decodeMessage(seq, { syncId: 0 }).drop, 'truncated');
    });

    it('applies a template whatever its state (mainline only logs one past NONE / ASSURED)', () => {
      const b = withOpts('', true);
      b.writeUInt32BE(CONN_F_TEMPLATE, 12);
      b.writeUInt16BE(7, 16);
      const r = decodeMessage(b, { syncId: 0 });
      assert.equal(r.drop, null);
      assert.deepEqual(r.skipped, []);
      assert.equal(r.records.length, 2);
      assert.equal(r.records[0]!.state, 7);
      assert.equal(r.records[0]!.flags & CONN_F_TEMPLATE, CONN_F_TEMPLATE);
    });

    it('v0: template states are not validated, unknown protocols skipped', () => {
      const b = hex(
        '02 00 0034' +
          '00 06 0000 0050 1f90 c0000202 cb00710a c633640b 1000 0002' +
          '00 01 9c40 0050 1f90 c0000202 cb00710a c633640b 0100 0001',
      );
      const r = decodeMessage(b, { syncId: 0 });
      assert.deepEqual(r.skipped, ['protocol']);
      assert.equal(r.records.length, 1);
      assert.equal(r.records[0]!.state, 2);
    });

    it('round-trips IPv6 and PE data through SyncMessage', () => {
      const c = tcpConn({
        af: 10,
        flags: CONN_F_TEMPLATE,
        state: 1,
        protocol: 17,
        caddr: w('2001:db8::2'),
        vaddr: w('2001:db8::10'),
        daddr: w('2001:db8:1::11'),
        peData: Buffer.from('call-1@example'),
        peName: 'sip',
      });
      const m = new SyncMessage(1, 9, 1452, recordLengthV1(c), 0);
      m.addV1(c);
      m.addV1(tcpConn());
      const r = decodeMessage(m.bytes(), { syncId: 9 });
      assert.equal(r.records.length, 2);
      const x = r.records[0]!;
      assert.equal(x.af, 10);
      assert.deepEqual([...x.daddr], [...w('2001:db8:1::11')]);
      assert.equal(x.peData!.toString(), 'call-1@example');
    });
  });
});
