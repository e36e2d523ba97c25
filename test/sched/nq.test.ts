/** nq — spec §2.7: the first idle destination at once, otherwise the sed choice. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEST_F_OVERLOAD } from '../../src/core/constants.js';
import { nq } from '../../src/sched/nq.js';
import { makeService, named } from './sched-util.js';

const pick = (...ds: [string, number, number, number][]) => {
  const svc = makeService(nq);
  const { label, by } = named(svc, ds);
  return { by, got: () => label(nq.schedule(svc, null as never)) };
};

describe('nq', () => {
  describe('#schedule', () => {
    it('returns the first idle destination even if a heavier one is idle too', () => {
      // list B, A: B (weight 1) is idle and first; sed would choose A (1 / 10).
      assert.equal(pick(['A', 10, 0, 0], ['B', 1, 0, 0]).got(), 'B');
    });

    it('counts only active connections as busy', () => {
      assert.equal(pick(['A', 1, 0, 0], ['B', 1, 0, 500]).got(), 'B');
      assert.equal(pick(['A', 1, 0, 0], ['B', 1, 1, 0]).got(), 'A');
    });

    it('falls back to the sed rule when every destination is busy', () => {
      // A: 3 / 1, B: 4 / 2 → B.
      assert.equal(pick(['A', 1, 2, 0], ['B', 2, 3, 0]).got(), 'B');
      // A: 2 / 1, B: 4 / 2 → tie → first in list (B).
      assert.equal(pick(['A', 1, 1, 0], ['B', 2, 3, 0]).got(), 'B');
      // A: 2 / 1, B: 5 / 2 → A.
      assert.equal(pick(['A', 1, 1, 0], ['B', 2, 4, 0]).got(), 'A');
    });

    it('skips idle destinations with weight 0 or OVERLOAD', () => {
      assert.equal(pick(['A', 1, 5, 0], ['Z', 0, 0, 0]).got(), 'A');
      const t = pick(['A', 1, 5, 0], ['B', 1, 0, 0]);
      t.by.B!.flags |= DEST_F_OVERLOAD;
      assert.equal(t.got(), 'A');
    });
  });
});
