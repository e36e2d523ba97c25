/** sed — spec §2.6: the wlc rule with overhead `active + 1`. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sed } from '../../src/sched/sed.js';
import { makeService, named } from './sched-util.js';

const pick = (...ds: [string, number, number, number][]) => {
  const svc = makeService(sed);
  const { label } = named(svc, ds);
  return label(sed.schedule(svc, null as never));
};

describe('sed', () => {
  describe('#schedule', () => {
    it('ignores inactive connections', () => {
      assert.equal(pick(['A', 1, 0, 1000], ['B', 1, 1, 0]), 'A');
    });

    it('sends to the heavier of two idle destinations (1 / 3 < 1 / 1)', () => {
      assert.equal(pick(['A', 3, 0, 0], ['B', 1, 0, 0]), 'A');
    });

    it('keeps the earlier destination on equal (active + 1) / weight', () => {
      // list B, A: B = 4 / 2, A = 2 / 1 → tie → B.
      assert.equal(pick(['A', 1, 1, 0], ['B', 2, 3, 0]), 'B');
      // B = 5 / 2 > A = 2 / 1 → A.
      assert.equal(pick(['A', 1, 1, 0], ['B', 2, 4, 0]), 'A');
    });

    it('never picks weight 0', () => {
      assert.equal(pick(['A', 1, 100, 0], ['Z', 0, 0, 0]), 'A');
    });
  });
});
