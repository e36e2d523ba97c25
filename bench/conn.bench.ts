/**
 * Connection table micro-benchmarks at 1M live entries: insert + lookup, lookup hits and misses,
 * delete, re-arming the timer per packet, and expiry through the timer wheel; plus bytes per
 * entry, from the record layout and from the resident-set growth while filling the table.
 * Steady state: the table's memory has been touched once (as in a running daemon), so no case
 * pays first-touch page faults.
 *
 * The table's memory comes from the daemon's allocator (huge pages when the addon is built);
 * `--plain-pages` uses ordinary ArrayBuffers instead. The JIT runs with the daemon's inlining
 * budgets (src/cli/jit.ts); `IPVS_JIT_DEFAULTS=1` keeps V8's.
 *
 *   node --expose-gc dist/bench/conn.bench.js [liveEntries] [--plain-pages]
 */
import { tuneJit } from '../src/cli/jit.js';
import { NO_CONN, RECORD_BYTES } from '../src/core/conn.js';
import { Ipvs } from '../src/core/ipvs.js';
import { bench, machineLine, printTable } from './harness.js';
import { hugeTableAlloc } from '../src/dataplane/io/native.js';

const args = process.argv.slice(2);
const PLAIN = args.includes('--plain-pages');
// the daemon's JIT budgets (src/cli/jit.ts) unless IPVS_JIT_DEFAULTS=1
const JIT = tuneJit();
const LIVE = Number(args.find((a) => !a.startsWith('--')) ?? 1_000_000);
const BATCH = 100_000;
const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<void> {
  const cap = LIVE + BATCH;
  let clock = 0;
  gc?.();
  const rss0 = process.memoryUsage().rss;
  const ipvs = new Ipvs({
    maxConns: cap,
    now: () => clock,
    log: () => {},
    tableAlloc: PLAIN ? undefined : hugeTableAlloc(),
  });
  const ops = ipvs.ops;
  const t = ipvs.conns;
  const vaddr = new Uint32Array([0xc0000201, 0, 0, 0]);
  const daddr = new Uint32Array([0xc6336401, 0, 0, 0]);
  const caddr = new Uint32Array(4);
  let x = 0x12345678;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  // live clients and the keys of a batch of new ones
  const liveAddr = new Uint32Array(LIVE);
  const livePort = new Uint16Array(LIVE);
  const newAddr = new Uint32Array(BATCH);
  const newPort = new Uint16Array(BATCH);
  const batch = new Int32Array(BATCH);
  const pfb = new Int32Array(32);
  const insert = (a: number, p: number): number => {
    caddr[0] = a;
    return ops.newConn(2, 6, caddr, p, vaddr, 80, 2, daddr, 80, 0, null, 0);
  };
  for (let i = 0; i < LIVE; i++) {
    liveAddr[i] = (0xcb000000 | (rnd() & 0xffffff)) >>> 0;
    livePort[i] = 1024 + (rnd() % 60000);
    const h = insert(liveAddr[i]!, livePort[i]!);
    t.setTimeout(h, 900_000); // established: stays through the expiry case
    ops.put(h);
  }
  const fillBatch = (): void => {
    for (let i = 0; i < BATCH; i++) {
      newAddr[i] = (0xc6000000 | (rnd() & 0xffffff)) >>> 0;
      newPort[i] = 1024 + (rnd() % 60000);
    }
  };
  // touch the spare records once, as a running daemon would have
  fillBatch();
  for (let i = 0; i < BATCH; i++) batch[i] = insert(newAddr[i]!, newPort[i]!);
  for (let i = 0; i < BATCH; i++) ops.del(batch[i]!);
  gc?.();
  const rssFull = process.memoryUsage().rss;
  // random live keys for lookups, laid out sequentially
  const probeAddr = new Uint32Array(BATCH);
  const probePort = new Uint16Array(BATCH);
  const probeHandle = new Int32Array(BATCH);
  for (let i = 0; i < BATCH; i++) {
    const j = rnd() % LIVE;
    probeAddr[i] = liveAddr[j]!;
    probePort[i] = livePort[j]!;
    caddr[0] = probeAddr[i]!;
    probeHandle[i] = t.inGet(2, 6, caddr, probePort[i]!, vaddr, 80);
  }
  const dropBatch = (): void => {
    for (let i = 0; i < BATCH; i++) if (batch[i]! >= 0) ops.del(batch[i]!);
    batch.fill(NO_CONN);
  };

  const results = [
    bench(
      `insert + lookup (${LIVE.toLocaleString('en-US')} live)`,
      (n) => {
        for (let i = 0; i < n; i++) {
          const h = insert(newAddr[i]!, newPort[i]!);
          batch[i] = h;
          caddr[0] = newAddr[i]!;
          if (t.inGet(2, 6, caddr, newPort[i]!, vaddr, 80) !== h) throw new Error('lookup miss');
        }
      },
      {
        ops: BATCH,
        rounds: 9,
        warmupRounds: 1,
        heap: true,
        beforeRound: fillBatch,
        afterRound: dropBatch,
      },
    ),
    bench(
      `insert + lookup, batches of 32 with prefetchBuckets`,
      (n) => {
        for (let i0 = 0; i0 < n; i0 += 32) {
          const end = Math.min(n, i0 + 32);
          for (let i = i0; i < end; i++) {
            caddr[0] = newAddr[i]!;
            pfb[i - i0] = t.bucket(2, 6, caddr, 0, newPort[i]!);
          }
          t.prefetchBuckets(pfb, end - i0, false);
          for (let i = i0; i < end; i++) {
            const h = insert(newAddr[i]!, newPort[i]!);
            batch[i] = h;
            caddr[0] = newAddr[i]!;
            if (t.inGet(2, 6, caddr, newPort[i]!, vaddr, 80) !== h) throw new Error('lookup miss');
          }
        }
      },
      {
        ops: BATCH,
        rounds: 9,
        warmupRounds: 1,
        heap: true,
        beforeRound: fillBatch,
        afterRound: dropBatch,
      },
    ),
    bench(
      'lookup, hit, batches of 32 with prefetchBuckets',
      (n) => {
        for (let i0 = 0; i0 < n; i0 += 32) {
          const end = Math.min(n, i0 + 32);
          for (let i = i0; i < end; i++) {
            caddr[0] = probeAddr[i]!;
            pfb[i - i0] = t.bucket(2, 6, caddr, 0, probePort[i]!);
          }
          t.prefetchBuckets(pfb, end - i0);
          for (let i = i0; i < end; i++) {
            caddr[0] = probeAddr[i]!;
            const b = pfb[i - i0]!;
            if (t.inGetAt(b, 2, 6, caddr, probePort[i]!, vaddr, 80) === NO_CONN)
              throw new Error('miss');
          }
        }
      },
      { ops: BATCH, heap: true },
    ),
    bench(
      'delete (unhash, unbind, free)',
      (n) => {
        for (let i = 0; i < n; i++) ops.del(batch[i]!);
        batch.fill(NO_CONN);
      },
      {
        ops: BATCH,
        rounds: 9,
        warmupRounds: 1,
        beforeRound: () => {
          fillBatch();
          for (let i = 0; i < BATCH; i++) batch[i] = insert(newAddr[i]!, newPort[i]!);
        },
      },
    ),
    bench(
      'lookup, hit (random live entry)',
      (n) => {
        for (let i = 0; i < n; i++) {
          caddr[0] = probeAddr[i]!;
          if (t.inGet(2, 6, caddr, probePort[i]!, vaddr, 80) === NO_CONN) throw new Error('miss');
        }
      },
      { ops: BATCH, heap: true },
    ),
    bench(
      'lookup, miss',
      (n) => {
        for (let i = 0; i < n; i++) {
          caddr[0] = newAddr[i]! ^ 0x5a5a5a;
          t.inGet(2, 6, caddr, newPort[i]!, vaddr, 80);
        }
      },
      { ops: BATCH, heap: true, beforeRound: fillBatch },
    ),
    bench(
      'put: re-arm the timer (random live entry)',
      (n) => {
        for (let i = 0; i < n; i++) ops.put(probeHandle[i]!);
      },
      { ops: BATCH, heap: true },
    ),
    bench(
      'expire through the timer wheel',
      () => {
        clock += 3010; // the 3 s placeholder timeout of new connections
        ipvs.wheel.advance(clock);
      },
      {
        ops: BATCH,
        rounds: 5,
        warmupRounds: 1,
        beforeRound: () => {
          fillBatch();
          for (let i = 0; i < BATCH; i++) insert(newAddr[i]!, newPort[i]!);
        },
      },
    ),
  ];
  // The peer: the obvious Node implementation, one object per connection in a Map keyed by a string.
  interface MapConn {
    caddr: number;
    cport: number;
    daddr: number;
    dport: number;
    state: number;
    expires: number;
  }
  const peer = new Map<string, MapConn>();
  const key = (a: number, p: number): string => `6|${a}|${p}|3221225985|80`;
  for (let i = 0; i < LIVE; i++) {
    peer.set(key(liveAddr[i]!, livePort[i]!), {
      caddr: liveAddr[i]!,
      cport: livePort[i]!,
      daddr: 0xc6336401,
      dport: 80,
      state: 1,
      expires: 900_000,
    });
  }
  const peerResults = [
    bench(
      'peer Map<string, object>: insert + lookup',
      (n) => {
        for (let i = 0; i < n; i++) {
          const k = key(newAddr[i]!, newPort[i]!);
          peer.set(k, {
            caddr: newAddr[i]!,
            cport: newPort[i]!,
            daddr: 0xc6336401,
            dport: 80,
            state: 0,
            expires: clock + 3000,
          });
          if (peer.get(key(newAddr[i]!, newPort[i]!)) === undefined) throw new Error('miss');
        }
      },
      {
        ops: BATCH,
        rounds: 9,
        warmupRounds: 1,
        heap: true,
        beforeRound: fillBatch,
        afterRound: () => {
          for (let i = 0; i < BATCH; i++) peer.delete(key(newAddr[i]!, newPort[i]!));
        },
      },
    ),
    bench(
      'peer Map<string, object>: lookup, hit',
      (n) => {
        for (let i = 0; i < n; i++) {
          if (peer.get(key(probeAddr[i]!, probePort[i]!)) === undefined) throw new Error('miss');
        }
      },
      { ops: BATCH, heap: true },
    ),
  ];
  console.log(`machine: ${await machineLine()}`);
  console.log(
    `table memory: ${PLAIN ? 'plain ArrayBuffers (--plain-pages)' : 'hugeTableAlloc (transparent huge pages when the addon is built)'}; JIT: ${JIT ? "the daemon's inlining budgets" : 'V8 defaults (IPVS_JIT_DEFAULTS=1)'}`,
  );
  printTable('Connection table', results);
  printTable('Peer in the same run', peerResults);
  const ratio = (a: number, b: number): string => (b / a).toFixed(2);
  const hit = results.find((r) => r.name.startsWith('lookup, hit (random'))!;
  console.log(
    `\nspeed-up over the peer: insert + lookup ${ratio(results[0]!.nsPerOp, peerResults[0]!.nsPerOp)}x, lookup hit ${ratio(hit.nsPerOp, peerResults[1]!.nsPerOp)}x`,
  );
  console.log(`\nlive after run: ${t.count.toLocaleString('en-US')}`);
  console.log(
    `table memory: ${t.bytesPerEntry.toFixed(1)} bytes per entry (record ${RECORD_BYTES}: hot part 64 + cold part 48; ${(t.bucketCount / t.capacity).toFixed(2)} index buckets of 4 bytes per entry at this capacity, 1.33 to 2.67 for any)`,
  );
  console.log(
    `resident growth while filling ${cap.toLocaleString('en-US')} entries: ${((rssFull - rss0) / cap).toFixed(1)} bytes per entry (includes the benchmark's own key arrays)`,
  );
}

void main();
