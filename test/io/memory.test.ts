/**
 * In-memory backend: frames committed on one end arrive on the other in order, byte for byte, in
 * batches of at most batchSize and at most budget per event-loop turn; a large backlog yields to
 * timers; a full queue drops and counts.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { createMemoryPair, type FrameBatch } from '../../src/dataplane/io/index.js';
import { ioModule, parseTestFrame, testFrame } from './lab.js';

const MAC = Uint8Array.of(2, 0, 0, 0, 0, 1);

function collect(batchSizes: number[], got: Buffer[]) {
  return (b: FrameBatch): void => {
    batchSizes.push(b.count);
    for (let i = 0; i < b.count; i++) got.push(Buffer.from(b.frame(i)));
  };
}

describe('memory frame I/O pair', () => {
  it('round trip: order, bytes, batching, both directions', async () => {
    const [a, b] = createMemoryPair({ batchSize: 16, budget: 64 });
    const sizes: number[] = [];
    const got: Buffer[] = [];
    b.onFrames(collect(sizes, got));
    const sent: Buffer[] = [];
    for (let i = 0; i < 500; i++) {
      const f = testFrame(60 + (i % 1400), i, 7, MAC);
      sent.push(f);
      assert.ok(a.send(f));
      if (i % 50 === 49) assert.equal(a.txCommit(), 50);
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(got.length, 500);
    got.forEach((f, i) => assert.deepEqual(f, sent[i]));
    assert.ok(Math.max(...sizes) === 16 && sizes.every((n) => n <= 16));
    assert.equal(a.stats.txKicks, 10);
    assert.equal(b.stats.rxFrames, 500);

    const back: Buffer[] = [];
    a.onFrames(collect([], back));
    const off = b.txAlloc(100);
    b.txData.fill(0xab, off, off + 100);
    b.txCommit();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(back, [Buffer.alloc(100, 0xab)]);
    await a.close();
    await b.close();
  });

  it('frames in slots off word boundaries (an odd maxFrame) arrive byte for byte, and are counted', async () => {
    const [a, b] = createMemoryPair({ maxFrame: 1021, txSlots: 8 });
    const got: Buffer[] = [];
    b.onFrames(collect([], got));
    const sent: Buffer[] = [];
    let bytes = 0;
    for (let i = 0; i < 40; i++) {
      const f = testFrame(60 + ((i * 37) % 960), i, 3, MAC);
      sent.push(f);
      bytes += f.length;
      assert.ok(a.send(f));
      if (i % 8 === 7) assert.equal(a.txCommit(), 8);
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(got.length, 40);
    got.forEach((f, i) => assert.deepEqual(f, sent[i], `frame ${i}`));
    assert.equal(a.stats.txFrames, 40);
    assert.equal(a.stats.txBytes, bytes);
    assert.equal(a.stats.txDropped, 0);
    assert.equal(b.stats.rxFrames, 40);
    assert.equal(b.stats.rxBytes, bytes);
    assert.equal(b.stats.rxTruncated, 0);
    await a.close();
    await b.close();
  });

  it('a backlog is drained budget by budget: timers run between turns', async () => {
    const [a, b] = createMemoryPair({ batchSize: 32, budget: 64, queueLimit: 100_000 });
    let n = 0;
    let firedAt = -1;
    b.onFrames((batch) => {
      n += batch.count;
    });
    for (let i = 0; i < 20_000; i++) {
      a.send(testFrame(64, i, 1, MAC));
      if (i % 200 === 199) a.txCommit();
    }
    a.txCommit();
    setTimeout(() => (firedAt = n), 0);
    await new Promise((r) => setTimeout(r, 5));
    while (n < b.stats.rxFrames || b.queued > 0) await new Promise((r) => setTimeout(r, 5));
    assert.ok(
      firedAt >= 0 && firedAt < 20_000,
      `the timer ran before the backlog was drained (after ${firedAt} frames)`,
    );
    assert.ok(b.stats.rxYields >= 20_000 / 64 - 2);
    assert.equal(b.stats.rxMaxBatch, 32);
    await a.close();
    await b.close();
  });

  it('a full queue drops and counts; stop() pauses delivery', async () => {
    const [a, b] = createMemoryPair({ queueLimit: 10 });
    b.stop();
    for (let i = 0; i < 15; i++) a.send(testFrame(60, i, 3, MAC));
    a.txCommit();
    assert.equal(b.queued, 10);
    assert.equal(b.rxDropped, 5);
    assert.equal(a.stats.txDropped, 5);
    const seqs: number[] = [];
    b.onFrames((batch) => {
      for (let i = 0; i < batch.count; i++)
        seqs.push(parseTestFrame(batch.data, batch.offset(i), batch.length(i))!.seq);
    });
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.throws(() => a.txAlloc(100_000), { code: 'IPVS_ERR_IO_FRAME_SIZE' });
    await a.close();
    assert.throws(() => a.start(), { code: 'IPVS_ERR_IO_CLOSED' });
  });
  it('flush() hands the queued frames to the receiver at once, in order', async () => {
    const [a, b] = createMemoryPair({ batchSize: 8 });
    const sizes: number[] = [];
    const got: Buffer[] = [];
    b.onFrames(collect(sizes, got));
    for (let i = 0; i < 20; i++) a.send(testFrame(64, i, 9, MAC));
    a.txCommit();
    assert.equal(b.queued, 20);
    assert.equal(b.flush(), 20);
    assert.equal(b.queued, 0);
    assert.deepEqual(sizes, [8, 8, 4]);
    assert.deepEqual(
      got.map((f) => parseTestFrame(f, 0, f.length)!.seq),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.equal(b.flush(), 0);
    // a frame from memory that is not word-aligned arrives intact too
    const odd = testFrame(99, 77, 9, MAC);
    const carrier = Buffer.alloc(120);
    odd.copy(carrier, 3);
    assert.ok(b.inject(carrier.subarray(3, 3 + 99)));
    assert.equal(b.flush(), 1);
    assert.deepEqual(got[20], odd);
    got.pop();
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(got.length, 20, 'nothing is delivered twice');
    await a.close();
    await b.close();
  });

  it('the receive ring wraps around and fills by bytes as well as frames', async () => {
    // a ring of 5 × 2048 bytes: frames of 60 … 1500 bytes wrap it every few batches, and the
    // last batch stays held while the next frames arrive (one batch of 4 per turn, 4 sent per turn)
    const [a, b] = createMemoryPair({ maxFrame: 2048, batchSize: 4, budget: 4, queueBytes: 1 });
    const got: Buffer[] = [];
    b.onFrames(collect([], got));
    const sent: Buffer[] = [];
    for (let i = 0; i < 600; i++) {
      const f = testFrame(60 + ((i * 733) % 1441), i, 5, MAC);
      sent.push(f);
      assert.ok(a.send(f));
      if (i % 4 === 3) {
        assert.equal(a.txCommit(), 4);
        await new Promise((r) => setImmediate(r));
      }
    }
    a.txCommit();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(a.stats.txDropped, 0);
    assert.equal(got.length, 600);
    got.forEach((f, i) => assert.deepEqual(f, sent[i], `frame ${i}`));
    // with the receiver stopped the ring fills: 10,240 bytes hold six 1,500-byte frames
    b.stop();
    for (let i = 0; i < 10; i++) a.send(testFrame(1500, 1000 + i, 5, MAC));
    a.txCommit();
    assert.equal(b.queued, 6);
    assert.equal(b.rxDropped, 4);
    const seqs: number[] = [];
    b.onFrames((batch) => {
      for (let i = 0; i < batch.count; i++)
        seqs.push(parseTestFrame(batch.data, batch.offset(i), batch.length(i))!.seq);
    });
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seqs, [1000, 1001, 1002, 1003, 1004, 1005]);
    await a.close();
    await b.close();
  });
});

describe('receive loop', () => {
  it('a handler that throws does not stall the loop (checked in a child process)', () => {
    const index = ioModule();
    const script = `
      import { createMemoryPair } from ${JSON.stringify(index)};
      const errors = [];
      process.on('uncaughtException', (e) => errors.push(e.message));
      const [a, b] = createMemoryPair({ batchSize: 1 });
      const seen = [];
      b.onFrames((batch) => {
        const v = batch.data[batch.offset(0)];
        seen.push(v);
        if (v === 1) throw new Error('handler failure');
      });
      for (let i = 0; i < 4; i++) a.send(Buffer.alloc(60, i));
      a.txCommit();
      setTimeout(() => { console.log(JSON.stringify({ seen, errors })); }, 50);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { seen: [0, 1, 2, 3], errors: ['handler failure'] });
  });

  it('its optimized poll survives a full GC that finds no Immediate pending (a child with --trace-deopt)', () => {
    // as in the daemon: readiness calls ready(), a poll over budget yields with setImmediate, and
    // the collector runs between turns, when that Immediate has already run
    const script = `
      import { RxLoop } from ${JSON.stringify(ioModule('rx-loop.js'))};
      import { FrameBatch, newStats } from ${JSON.stringify(ioModule('types.js'))};
      const data = Buffer.alloc(64 * 64, 1);
      const batch = new FrameBatch(64, data);
      let ready = 0;
      const src = {
        fill(b, max) {
          const n = Math.min(max, ready);
          ready -= n;
          for (let i = 0; i < n; i++) b.desc.set([i * 64, 64, 64, 0], i * 4);
          return n;
        },
        arm() {},
        disarm() {},
      };
      const stats = newStats();
      const loop = new RxLoop(src, batch, stats, { batchSize: 64, budget: 256 });
      let sum = 0;
      loop.setHandler((b) => {
        for (let i = 0; i < b.count; i++) for (let k = 0; k < 64; k++) sum = (sum + data[b.desc[i * 4] + k]) | 0;
      });
      loop.start();
      let ticks = 0;
      const t = setInterval(() => {
        if (++ticks % 50 === 0) gc();
        ready += 300;
        loop.ready();
        if (ticks === 800) {
          clearInterval(t);
          loop.stop();
          console.log('frames ' + stats.rxFrames + ' yields ' + stats.rxYields + ' sum ' + sum);
        }
      }, 1);
    `;
    const r = spawnSync(
      process.execPath,
      ['--expose-gc', '--trace-opt', '--trace-deopt', '--input-type=module', '-e', script],
      { encoding: 'utf8', maxBuffer: 64 << 20 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /frames 239\d+ yields 800 /);
    // not vacuous: the poll was optimized
    assert.match(r.stdout, /completed optimizing[^\n]*JSFunction poll /);
    const dropped = r.stdout
      .split('\n')
      .filter((l) => /SharedFunctionInfo poll>.*weak objects/.test(l));
    assert.deepEqual(dropped, []);
  });
});
