/** wrr — spec §2.3 and §13 item 11: passes with a falling threshold, gcd steps, cursor resets. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEST_F_OVERLOAD } from '../../src/core/constants.js';
import { bindScheduler, updatedDest } from '../../src/core/dests.js';
import type { Dest } from '../../src/core/service.js';
import { gcd } from '../../src/sched/common.js';
import { wrr } from '../../src/sched/wrr.js';
import { addDest, makeService, namer, run, setWeight } from './sched-util.js';

/**
 * Adds destinations in the given order (so the list is the reverse). With `bindAfter` the
 * scheduler is bound once they are all present (as when `ipvsadm -E` switches to wrr), so `cw`
 * starts at `mw`; otherwise each add re-derives `cw` from the previous value.
 */
function setup(addOrder: [string, number][], bindAfter = false) {
  const svc = makeService(bindAfter ? null : wrr);
  const names = new Map<Dest, string>();
  const by: Record<string, Dest> = {};
  addOrder.forEach(([name, w], i) => {
    const d = addDest(svc, `10.1.0.${i + 1}`, w);
    names.set(d, name);
    by[name] = d;
  });
  if (bindAfter) bindScheduler(svc, wrr);
  return { svc, by, label: namer(names) };
}

describe('wrr', () => {
  describe('#schedule', () => {
    it('yields A A B A B C A B C for A=4, B=3, C=2 in list order A, B, C (added C, B, A)', () => {
      const { svc, label } = setup(
        [
          ['C', 2],
          ['B', 3],
          ['A', 4],
        ],
        true,
      );
      const cycle = ['A', 'A', 'B', 'A', 'B', 'C', 'A', 'B', 'C'];
      assert.deepEqual(run(svc, 18, label), [...cycle, ...cycle]);
    });

    it('starts with a weight ≥ 1 pass when destinations were added one by one', () => {
      // add C: di 2, mw 1, cw 0 → 1; add B, A: cw 1 ≤ mw and di 1, so cw stays 1.
      const { svc, label } = setup([
        ['C', 2],
        ['B', 3],
        ['A', 4],
      ]);
      const cycle = ['A', 'A', 'B', 'A', 'B', 'C', 'A', 'B', 'C'];
      assert.deepEqual(run(svc, 12, label), ['A', 'B', 'C', ...cycle]);
    });

    it('steps the threshold by the gcd: weights 6, 4, 2 give A A B A B C', () => {
      const { svc, label } = setup(
        [
          ['C', 2],
          ['B', 4],
          ['A', 6],
        ],
        true,
      );
      // di = 2, mw = 6 − 1 = 5: passes at cw = 5, 3, 1.
      assert.deepEqual(run(svc, 12, label), [
        'A',
        'A',
        'B',
        'A',
        'B',
        'C',
        'A',
        'A',
        'B',
        'A',
        'B',
        'C',
      ]);
    });

    it('weights 4, 2 added one by one give A B, then A, A B', () => {
      // add B: di 2, mw 1, cw 1; add A: di 2, mw 3, cw = (1 / 2) × 2 + 1 = 1.
      const { svc, label } = setup([
        ['B', 2],
        ['A', 4],
      ]);
      assert.deepEqual(run(svc, 6, label), ['A', 'B', 'A', 'A', 'B', 'A']);
    });

    it('returns null when every destination is overloaded, and recovers', () => {
      const { svc, by, label } = setup([
        ['B', 1],
        ['A', 2],
      ]);
      assert.deepEqual(run(svc, 1, label), ['A']);
      by.A!.flags |= DEST_F_OVERLOAD;
      by.B!.flags |= DEST_F_OVERLOAD;
      assert.deepEqual(run(svc, 2, label), ['null', 'null']);
      by.B!.flags &= ~DEST_F_OVERLOAD;
      assert.deepEqual(run(svc, 2, label), ['B', 'B']);
    });

    it('returns null when every weight is 0', () => {
      const { svc, label } = setup([
        ['B', 0],
        ['A', 0],
      ]);
      assert.deepEqual(run(svc, 2, label), ['null', 'null']);
    });
  });

  describe('#updDest', () => {
    it('resets the cursor to the head on any destination change', () => {
      const { svc, by, label } = setup(
        [
          ['C', 2],
          ['B', 3],
          ['A', 4],
        ],
        true,
      );
      assert.deepEqual(run(svc, 4, label), ['A', 'A', 'B', 'A']); // cw = 2, cursor on A
      updatedDest(svc, by.C!); // nothing changed but the hook ran: the scan restarts at the head
      // Without the reset the scan would continue after A: B, C, then A, B.
      assert.deepEqual(run(svc, 4, label), ['A', 'B', 'C', 'A']);
    });

    it('clamps cw to the new maximum when weights shrink', () => {
      const { svc, by, label } = setup(
        [
          ['B', 4],
          ['A', 8],
        ],
        true,
      );
      assert.deepEqual(run(svc, 1, label), ['A']); // di 4, mw 5, cw 5
      setWeight(svc, by.A!, 2); // di 2, mw 3: cw 5 > 3 → 3
      assert.deepEqual(run(svc, 6, label), ['B', 'A', 'B', 'B', 'A', 'B']);
    });

    it('re-derives cw = (cw / di) × di + 1 when the gcd grows', () => {
      const { svc, by, label } = setup(
        [
          ['B', 3],
          ['A', 5],
        ],
        true,
      );
      assert.deepEqual(run(svc, 3, label), ['A', 'A', 'A']); // di 1, mw 5: cw now 3
      setWeight(svc, by.A!, 6); // di 3, mw 4; cw 3 → (3 / 3) × 3 + 1 = 4
      // With cw left at 3 the next two would be A, B.
      assert.deepEqual(run(svc, 6, label), ['A', 'A', 'B', 'A', 'A', 'B']);
    });
  });

  describe('property', () => {
    it('over one full cycle, each destination is chosen exactly weight / gcd times', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 0, max: 24 }), { minLength: 1, maxLength: 7 }),
          (ws) => {
            const svc = makeService(wrr);
            const dests = ws.map((w, i) => addDest(svc, `10.1.0.${i + 1}`, w));
            const g = ws.filter((w) => w > 0).reduce((a, b) => gcd(a, b), 0);
            if (g === 0) {
              assert.equal(wrr.schedule(svc, null as never), null);
              return;
            }
            const cycle = ws.reduce((a, w) => a + w / g, 0);
            const counts = new Map<Dest, number>();
            for (let k = 0; k < 3 * cycle; k++) {
              const d = wrr.schedule(svc, null as never)!;
              counts.set(d, (counts.get(d) ?? 0) + 1);
            }
            for (const d of dests) assert.equal(counts.get(d) ?? 0, (3 * d.weight) / g);
          },
        ),
        { numRuns: 200 },
      );
    });
  });
});
