/** fo — spec §2.8: the heaviest non-OVERLOAD destination. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEST_F_OVERLOAD } from '../../src/core/constants.js';
import { fo } from '../../src/sched/fo.js';
import { makeService, named } from './sched-util.js';

const pick = (...ds: [string, number, number][]) => {
  const svc = makeService(fo);
  const { label, by } = named(svc, ds);
  return { by, got: () => label(fo.schedule(svc, null as never)) };
};

describe('fo', () => {
  describe('#schedule', () => {
    it('returns the highest weight regardless of load', () => {
      assert.equal(pick(['A', 5, 1000], ['B', 3, 0], ['C', 1, 0]).got(), 'A');
    });

    it('breaks ties in favour of the first in list order', () => {
      assert.equal(pick(['A', 5, 0], ['B', 5, 0]).got(), 'B');
    });

    it('fails over to the next heaviest when the heaviest is OVERLOAD', () => {
      const t = pick(['A', 5, 0], ['B', 3, 0], ['C', 4, 0]);
      t.by.A!.flags |= DEST_F_OVERLOAD;
      assert.equal(t.got(), 'C');
    });

    it('never qualifies weight 0', () => {
      assert.equal(pick(['A', 0, 0], ['B', 0, 0]).got(), 'null');
    });
  });
});
