/**
 * pcap backend: frames of a pcap file arrive in batches, byte for byte, with their wire lengths;
 * what is sent is written to a pcap file on close; raw-IP captures are linkType 'ip'; a bad file
 * is a coded error.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LINKTYPE } from '../../src/packet/constants.js';
import { readPcap, writePcap } from '../../src/packet/pcap.js';
import { openPcap, type FrameBatch } from '../../src/dataplane/io/index.js';
import { testFrame } from './lab.js';

const MAC = Uint8Array.of(2, 0, 0, 0, 0, 2);
const dir = mkdtempSync(join(tmpdir(), 'ipvs-io-pcap-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('pcap frame I/O', () => {
  it('replays a capture in batches and writes what is sent', async () => {
    const frames = Array.from({ length: 300 }, (_, i) =>
      testFrame(60 + ((i * 13) % 1400), i, 9, MAC),
    );
    const input = join(dir, 'in.pcap');
    const output = join(dir, 'out.pcap');
    writeFileSync(input, writePcap(frames));
    const io = await openPcap({ input, output, batchSize: 32, budget: 64 });
    assert.equal(io.linkType, 'ethernet');
    assert.equal(io.remaining, 300);
    const got: Buffer[] = [];
    const sizes: number[] = [];
    io.onFrames((b: FrameBatch) => {
      sizes.push(b.count);
      for (let i = 0; i < b.count; i++) {
        assert.equal(b.wireLength(i), b.length(i));
        got.push(Buffer.from(b.frame(i)));
        // Echo every other frame back out, rewritten in the TX slot.
        if (i % 2 === 0) {
          const off = io.txAlloc(b.length(i));
          b.data.copy(io.txData, off, b.offset(i), b.offset(i) + b.length(i));
          io.txData[off] = 0x02;
        }
      }
      io.txCommit();
    });
    await io.done;
    assert.equal(got.length, 300);
    got.forEach((f, i) => assert.deepEqual(f, frames[i]));
    assert.equal(Math.max(...sizes), 32);
    assert.ok(io.stats.rxYields >= 4);
    await io.close();
    const out = readPcap(readFileSync(output));
    assert.ok(out.ok);
    if (!out.ok) return;
    assert.equal(out.file.linkType, LINKTYPE.ETHERNET);
    assert.equal(out.file.records.length, 150);
    out.file.records.forEach((r, j) => {
      const want = Buffer.from(frames[j * 2]!);
      want[0] = 0x02;
      assert.deepEqual(Buffer.from(r.data), want);
    });
  });

  it('raw-IP captures are linkType ip; truncated records keep their wire length', async () => {
    const pkt = Buffer.alloc(40, 0x45);
    const buf = writePcap([pkt], LINKTYPE.RAW);
    buf.writeUInt32LE(1500, 24 + 12); // orig_len: captured 40 of 1500
    const io = await openPcap({ input: buf });
    assert.equal(io.linkType, 'ip');
    const lens: Array<[number, number]> = [];
    io.onFrames((b) => lens.push([b.length(0), b.wireLength(0)]));
    await io.done;
    assert.deepEqual(lens, [[40, 1500]]);
    const empty = readPcap(io.toPcap());
    assert.ok(empty.ok && empty.file.records.length === 0 && empty.file.linkType === LINKTYPE.RAW);
    await io.close();
  });

  it('an unreadable capture is IPVS_ERR_IO_PCAP', async () => {
    await assert.rejects(openPcap({ input: Buffer.from('not a pcap file at all.....') }), {
      code: 'IPVS_ERR_IO_PCAP',
    });
  });
});
