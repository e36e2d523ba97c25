/**
 * lblc — spec §2.14: the destination-address cache, the lblc overload rule, and the periodic
 * collector (counter, full sweep, partial sweep from the rover) driven by FakeEnv.advance.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AF_INET6 } from '../../src/core/addr.js';
import { DEST_F_OVERLOAD } from '../../src/core/constants.js';
import { Flow } from '../../src/core/flow.js';
import type { Service } from '../../src/core/service.js';
import { type LblcState, lblc } from '../../src/sched/lblc.js';
import { FakeEnv } from '../helpers/fake-env.js';
import { addDest, delDest, flow, makeService, named, setWeight, v4flow } from './sched-util.js';

const entries = (svc: Service) => (svc.schedData as LblcState).table.entries;
const MIN = 60_000;

function refHash32(x: number, bits: number): number {
  return Number(((BigInt(x >>> 0) * 0x61c88647n) & 0xffffffffn) >> BigInt(32 - bits));
}

describe('lblc', () => {
  describe('#schedule', () => {
    it('keeps sending a destination address to its cached destination', () => {
      const svc = makeService(lblc);
      const { by, label } = named(svc, [
        ['A', 1],
        ['B', 1],
      ]);
      const f = flow('192.0.2.1', 1, '198.51.100.10');
      assert.equal(label(lblc.schedule(svc, f)), 'B'); // wlc: idle tie → first (B)
      by.B!.activeConns = 1; // wlc would now choose A
      assert.equal(label(lblc.schedule(svc, flow('192.0.2.99', 7, '198.51.100.10'))), 'B');
      assert.equal(label(lblc.schedule(svc, flow('192.0.2.1', 1, '198.51.100.11'))), 'A');
      assert.equal(entries(svc), 2);
    });

    it('re-picks when the cached destination is lblc-overloaded: active > weight and some m has active × 2 < weight', () => {
      const svc = makeService(lblc);
      const { by, label } = named(svc, [
        ['A', 4, 2],
        ['B', 2],
      ]);
      const f = flow('192.0.2.1', 1, '198.51.100.10');
      assert.equal(label(lblc.schedule(svc, f)), 'B');
      by.B!.activeConns = 3; // 3 > 2, but A: 2 × 2 = 4 is not < 4 → not overloaded
      assert.equal(label(lblc.schedule(svc, f)), 'B');
      by.A!.activeConns = 1; // A: 2 < 4 → B is overloaded → wlc pick (A) and the entry moves
      assert.equal(label(lblc.schedule(svc, f)), 'A');
      by.B!.activeConns = 0;
      assert.equal(label(lblc.schedule(svc, f)), 'A');
      // one entry, counted twice: ip_vs_lblc_new re-creates a repointed entry without
      // counting the old one out
      assert.equal(entries(svc), 2);
    });

    it('re-picks when the cached destination has weight 0 or was deleted, but not for OVERLOAD alone', () => {
      const svc = makeService(lblc);
      const { by, label } = named(svc, [
        ['A', 1],
        ['B', 1],
        ['C', 1],
      ]);
      const f = flow('192.0.2.1', 1, '198.51.100.10');
      assert.equal(label(lblc.schedule(svc, f)), 'C');
      by.C!.flags |= DEST_F_OVERLOAD; // the cache does not test OVERLOAD
      assert.equal(label(lblc.schedule(svc, f)), 'C');
      setWeight(svc, by.C!, 0);
      assert.equal(label(lblc.schedule(svc, f)), 'B');
      delDest(svc, by.B!);
      assert.equal(label(lblc.schedule(svc, f)), 'A');
    });

    it('keys IPv6 entries on all four words (equal xor-folds stay distinct)', () => {
      const svc = makeService(lblc, { af: AF_INET6 });
      addDest(svc, '2001:db8::a');
      const b = addDest(svc, '2001:db8::b');
      lblc.schedule(svc, flow('2001:db8::1', 1, '2001:db8:0:1::'));
      b.activeConns = 1; // wlc now prefers a, but b is not lblc-overloaded (1 ≤ weight)
      const other = lblc.schedule(svc, flow('2001:db8::1', 1, '0:1:2001:db8::'));
      assert.equal(entries(svc), 2);
      assert.notEqual(other, b);
      assert.equal(lblc.schedule(svc, flow('2001:db8::1', 1, '2001:db8:0:1::')), b);
    });
  });

  describe('garbage collection', () => {
    it('runs a full sweep on the 30th tick, dropping entries unused for lblc_expiration', () => {
      const env = new FakeEnv();
      env.sysctl.lblc_expiration = 600; // 10 min
      const svc = makeService(lblc, { env });
      addDest(svc, '10.1.0.1');
      lblc.schedule(svc, flow('192.0.2.1', 1, '198.51.100.1'));
      env.advance(25 * MIN);
      lblc.schedule(svc, flow('192.0.2.1', 1, '198.51.100.2')); // used at 25 min
      env.advance(5 * MIN - 1);
      assert.equal(entries(svc), 2);
      env.advance(1); // tick 30 at 30 min: 198.51.100.1 idle 30 min (gone), .2 idle 5 min (kept)
      assert.equal(entries(svc), 1);
      env.advance(29 * MIN); // tick 59: counter only
      assert.equal(entries(svc), 1);
      env.advance(MIN); // tick 60: full sweep, .2 idle 35 min
      assert.equal(entries(svc), 0);
    });

    it('keeps entries for the default 24 h through full sweeps', () => {
      const env = new FakeEnv();
      const svc = makeService(lblc, { env });
      addDest(svc, '10.1.0.1');
      lblc.schedule(svc, flow('192.0.2.1', 1, '198.51.100.1'));
      env.advance(23 * 60 * MIN);
      assert.equal(entries(svc), 1);
      env.advance(60 * MIN);
      assert.equal(entries(svc), 0);
    });

    it('above 16384 entries sweeps whole buckets from the rover, idle ≥ 6 min, until (n − 16384) × 4/3 are gone', () => {
      const env = new FakeEnv();
      const svc = makeService(lblc, { env });
      addDest(svc, '10.1.0.1');
      const n = 16384 + 300;
      const f = new Flow();
      const bucketSize = new Array<number>(1024).fill(0);
      for (let i = 0; i < n; i++) {
        const daddr = (0x64000000 + i) >>> 0;
        lblc.schedule(svc, v4flow(f, 0xc0000201, 1, daddr));
        bucketSize[refHash32(daddr, 10)]!++;
      }
      assert.equal(entries(svc), n);
      env.advance(5 * MIN); // ticks at 1..5 min: partial sweeps find nothing idle for 6 min
      assert.equal(entries(svc), n);
      // Tick 6 at 6 min: goal 400; the sweep starts at bucket rover + 1 = 1 and stops after the
      // bucket that reaches the goal.
      let removed = 0;
      for (let b = 1; removed < 400; b++) removed += bucketSize[b]!;
      env.advance(MIN);
      assert.equal(entries(svc), n - removed);
      assert.ok(removed >= 400 && removed < 450);
    });

    it('counts every repoint as an entry, as the kernel does, so 16384 repoints start partial sweeps', () => {
      const env = new FakeEnv();
      const svc = makeService(lblc, { env });
      const { by, label } = named(svc, [
        ['A', 1],
        ['B', 1],
      ]);
      const x = flow('192.0.2.1', 1, '198.51.100.9');
      assert.equal(label(lblc.schedule(svc, x)), 'B');
      const y = flow('192.0.2.1', 1, '198.51.100.1');
      for (let i = 0; i < 16400; i++) {
        // the cached destination loses its weight: the entry moves to the other one
        setWeight(svc, by.A!, i & 1 ? 0 : 1);
        setWeight(svc, by.B!, i & 1 ? 1 : 0);
        lblc.schedule(svc, y);
      }
      setWeight(svc, by.A!, 1);
      setWeight(svc, by.B!, 1);
      assert.equal(entries(svc), 2 + 16399); // x, y, and y's 16399 repoints
      by.B!.activeConns = 1; // wlc would choose A now
      env.advance(7 * MIN); // a partial sweep drops x's entry (idle ≥ 6 min), y's too
      assert.equal(label(lblc.schedule(svc, x)), 'A');
    });

    it('stops collecting when the service lets go of the scheduler', () => {
      const env = new FakeEnv();
      let live = 0;
      const every = env.every.bind(env);
      env.every = (ms, fn) => {
        live++;
        const stop = every(ms, fn);
        return () => {
          live--;
          stop();
        };
      };
      const svc = makeService(lblc, { env });
      assert.equal(live, 1);
      lblc.doneService!(svc);
      assert.equal(live, 0);
      assert.equal(svc.schedData, null);
    });
  });
});
