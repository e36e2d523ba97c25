/** ovf — spec §2.9: the heaviest destination with active ≤ weight, then overflow. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEST_F_OVERLOAD } from '../../src/core/constants.js';
import { ovf } from '../../src/sched/ovf.js';
import { makeService, named } from './sched-util.js';

describe('ovf', () => {
  describe('#schedule', () => {
    it('fills the heaviest destination up to its weight in active connections, then overflows', () => {
      const svc = makeService(ovf);
      const { by, label } = named(svc, [
        ['A', 3],
        ['B', 2],
      ]);
      const seq: string[] = [];
      for (let i = 0; i < 8; i++) {
        const d = ovf.schedule(svc, null as never);
        seq.push(label(d));
        if (d) d.activeConns++;
      }
      // active ≤ weight keeps a destination eligible: A takes 4 (0..3), B takes 3 (0..2).
      assert.deepEqual(seq, ['A', 'A', 'A', 'A', 'B', 'B', 'B', 'null']);
      by.A!.activeConns = 0;
      assert.equal(label(ovf.schedule(svc, null as never)), 'A');
    });

    it('ignores inactive connections', () => {
      const svc = makeService(ovf);
      const { label } = named(svc, [
        ['A', 3, 0, 10_000],
        ['B', 2],
      ]);
      assert.equal(label(ovf.schedule(svc, null as never)), 'A');
    });

    it('breaks weight ties in favour of the first in list order and skips OVERLOAD', () => {
      const svc = makeService(ovf);
      const { by, label } = named(svc, [
        ['A', 3],
        ['B', 3],
        ['C', 1],
      ]);
      assert.equal(label(ovf.schedule(svc, null as never)), 'B');
      by.B!.flags |= DEST_F_OVERLOAD;
      assert.equal(label(ovf.schedule(svc, null as never)), 'A');
    });
  });
});
