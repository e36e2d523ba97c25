/** rr — spec §2.2: rotation in newest-first list order and the cursor rules. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEST_F_OVERLOAD } from '../../src/core/constants.js';
import type { Dest } from '../../src/core/service.js';
import { rr } from '../../src/sched/rr.js';
import { addDest, delDest, makeService, namer, run, setWeight } from './sched-util.js';

function setup(weights: Record<string, number>) {
  const svc = makeService(rr);
  const names = new Map<Dest, string>();
  const by: Record<string, Dest> = {};
  let i = 1;
  for (const [name, w] of Object.entries(weights)) {
    const d = addDest(svc, `10.1.0.${i++}`, w);
    names.set(d, name);
    by[name] = d;
  }
  return { svc, by, label: namer(names) };
}

describe('rr', () => {
  describe('#schedule', () => {
    it('rotates newest first: A, B, C added in that order yield C, B, A, C, B, A', () => {
      const { svc, label } = setup({ A: 1, B: 1, C: 1 });
      assert.deepEqual(run(svc, 7, label), ['C', 'B', 'A', 'C', 'B', 'A', 'C']);
    });

    it('skips weight-0 and OVERLOAD destinations', () => {
      const { svc, by, label } = setup({ A: 1, B: 0, C: 1, D: 1 });
      by.D!.flags |= DEST_F_OVERLOAD;
      assert.deepEqual(run(svc, 4, label), ['C', 'A', 'C', 'A']);
    });

    it('returns the single eligible destination every time', () => {
      const { svc, by, label } = setup({ A: 0, B: 3, C: 0 });
      assert.deepEqual(run(svc, 3, label), ['B', 'B', 'B']);
      setWeight(svc, by.B!, 0);
      assert.deepEqual(run(svc, 2, label), ['null', 'null']);
    });

    it('ignores weight values other than zero', () => {
      const { svc, label } = setup({ A: 1, B: 100 });
      assert.deepEqual(run(svc, 4, label), ['B', 'A', 'B', 'A']);
    });

    it('continues with the element after a newly added head only on the next wrap', () => {
      const { svc, label, by } = setup({ A: 1, B: 1, C: 1 });
      assert.deepEqual(run(svc, 2, label), ['C', 'B']);
      const d = addDest(svc, '10.1.0.9', 1); // list: D C B A, cursor still on B
      const names = new Map<Dest, string>([
        [d, 'D'],
        [by.A!, 'A'],
        [by.B!, 'B'],
        [by.C!, 'C'],
      ]);
      assert.deepEqual(run(svc, 5, namer(names)), ['A', 'D', 'C', 'B', 'A']);
    });
  });

  describe('#delDest', () => {
    it('moves the cursor to the predecessor so rotation continues with the follower', () => {
      const { svc, by, label } = setup({ A: 1, B: 1, C: 1 });
      assert.deepEqual(run(svc, 2, label), ['C', 'B']); // cursor on B
      delDest(svc, by.B!);
      assert.deepEqual(run(svc, 3, label), ['A', 'C', 'A']);
    });

    it('moves the cursor to the head when the first element was current', () => {
      const { svc, by, label } = setup({ A: 1, B: 1, C: 1 });
      assert.deepEqual(run(svc, 1, label), ['C']);
      delDest(svc, by.C!);
      assert.deepEqual(run(svc, 3, label), ['B', 'A', 'B']);
    });

    it('keeps the rotation when another destination is deleted', () => {
      const { svc, by, label } = setup({ A: 1, B: 1, C: 1 });
      assert.deepEqual(run(svc, 2, label), ['C', 'B']);
      delDest(svc, by.C!);
      assert.deepEqual(run(svc, 3, label), ['A', 'B', 'A']);
    });
  });
});
