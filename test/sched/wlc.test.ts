/** wlc — spec §2.5: least overhead per weight by strict cross-multiplication. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEST_F_OVERLOAD } from '../../src/core/constants.js';
import { wlc } from '../../src/sched/wlc.js';
import { makeService, named } from './sched-util.js';

const pick = (...ds: [string, number, number, number][]) => {
  const svc = makeService(wlc);
  const { label, by } = named(svc, ds);
  return { svc, by, got: () => label(wlc.schedule(svc, null as never)) };
};

describe('wlc', () => {
  describe('#schedule', () => {
    it('picks the least overhead per unit of weight', () => {
      // A: 256 / 1; B: 512 / 3 ≈ 171 → B.
      assert.equal(pick(['A', 1, 1, 0], ['B', 3, 2, 0]).got(), 'B');
      // A: 256 / 1; B: 1024 / 3 ≈ 341 → A.
      assert.equal(pick(['A', 1, 1, 0], ['B', 3, 4, 0]).got(), 'A');
    });

    it('uses active × 256 + inactive as the overhead', () => {
      assert.equal(pick(['A', 2, 1, 0], ['B', 2, 0, 255]).got(), 'B');
      assert.equal(pick(['A', 2, 1, 0], ['B', 2, 0, 257]).got(), 'A');
    });

    it('keeps the earlier destination on equal load per weight', () => {
      // list order B, A: B = 512 / 2, A = 256 / 1 → tie → B.
      assert.equal(pick(['A', 1, 1, 0], ['B', 2, 2, 0]).got(), 'B');
      // idle destinations all tie at 0: the newest wins whatever the weights.
      assert.equal(pick(['A', 9, 0, 0], ['B', 1, 0, 0]).got(), 'B');
    });

    it('never picks a weight-0 destination, even an idle one at the head', () => {
      assert.equal(pick(['A', 1, 50, 0], ['Z', 0, 0, 0]).got(), 'A');
      assert.equal(pick(['A', 0, 0, 0], ['Z', 0, 0, 0]).got(), 'null');
    });

    it('skips OVERLOAD destinations', () => {
      const t = pick(['A', 1, 9, 0], ['B', 1, 0, 0]);
      t.by.B!.flags |= DEST_F_OVERLOAD;
      assert.equal(t.got(), 'A');
    });
  });
});
