/** lc — spec §2.4: least `active × 256 + inactive`, weight only as zero / non-zero. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEST_F_OVERLOAD } from '../../src/core/constants.js';
import { lc } from '../../src/sched/lc.js';
import { makeService, named } from './sched-util.js';

const pick = (...ds: [string, number, number, number][]) => {
  const svc = makeService(lc);
  const { label, by } = named(svc, ds);
  return { svc, by, got: () => label(lc.schedule(svc, null as never)) };
};

describe('lc', () => {
  describe('#schedule', () => {
    it('weighs one active connection as 256 inactive ones', () => {
      assert.equal(pick(['A', 1, 1, 0], ['B', 1, 0, 255]).got(), 'B');
      assert.equal(pick(['A', 1, 1, 0], ['B', 1, 0, 257]).got(), 'A');
    });

    it('breaks ties in favour of the first in list order (the newest)', () => {
      assert.equal(pick(['A', 1, 1, 0], ['B', 1, 0, 256]).got(), 'B');
      assert.equal(pick(['A', 1, 0, 0], ['B', 1, 0, 0], ['C', 1, 0, 0]).got(), 'C');
    });

    it('ignores the weight value but skips weight 0', () => {
      assert.equal(pick(['A', 100, 0, 10], ['B', 1, 0, 9]).got(), 'B');
      assert.equal(pick(['A', 5, 0, 10], ['B', 0, 0, 0]).got(), 'A');
    });

    it('skips OVERLOAD destinations', () => {
      const t = pick(['A', 1, 0, 10], ['B', 1, 0, 0]);
      t.by.B!.flags |= DEST_F_OVERLOAD;
      assert.equal(t.got(), 'A');
    });
  });
});
