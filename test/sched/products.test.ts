/**
 * The kernel compares loads by 64-bit cross-multiplication (`(__s64)loh * w(d) > (__s64)doh *
 * w(least)`, spec §2.1). Weights may be up to 2^31 − 1 and overheads up to 2^31 − 1, so a product
 * can exceed 2^53, where doubles stop holding every integer. These cases differ by exactly one
 * at about 2^62 and must still compare like 64-bit integers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mulGt } from '../../src/sched/common.js';
import { lblc } from '../../src/sched/lblc.js';
import { nq } from '../../src/sched/nq.js';
import { sed } from '../../src/sched/sed.js';
import { wlc } from '../../src/sched/wlc.js';
import { FakeEnv } from '../helpers/fake-env.js';
import { flow, makeService, named } from './sched-util.js';

// x = 2^31 − 2: A has overhead x and weight x + 1, B overhead x − 1 and weight x;
// oh(A) × w(B) = x² is one more than oh(B) × w(A) = x² − 1, so B is strictly less loaded.
const X = 2147483646;

describe('64-bit load comparisons', () => {
  describe('mulGt', () => {
    it('compares products above 2^53 exactly', () => {
      assert.equal(mulGt(X, X, X - 1, X + 1), true);
      assert.equal(mulGt(X - 1, X + 1, X, X), false);
      assert.equal(mulGt(X, X, X, X), false);
      assert.equal(mulGt(0xffffffff, 0xffffffff, 0xffffffff, 0xfffffffe), true);
      assert.equal(mulGt(3, 5, 2, 7), true);
      assert.equal(mulGt(0, 5, 0, 7), false);
    });

    it('agrees with BigInt on random operands', () => {
      const env = new FakeEnv(7);
      for (let i = 0; i < 2000; i++) {
        const [a, b, c, d] = [env.randomU32(), env.randomU32(), env.randomU32(), env.randomU32()];
        const want = BigInt(a) * BigInt(b) > BigInt(c) * BigInt(d);
        assert.equal(mulGt(a, b, c, d), want, `${a}·${b} > ${c}·${d}`);
      }
    });
  });

  it('wlc: a destination one unit less loaded at ~2^62 wins', () => {
    const svc = makeService(wlc);
    // added B then A: list order A, B; A is the seed.
    const { label } = named(svc, [
      ['B', X, 0, X - 1],
      ['A', X + 1, 0, X],
    ]);
    assert.equal(label(wlc.schedule(svc, null as never)), 'B');
  });

  it('sed: the same with overhead active + 1', () => {
    const svc = makeService(sed);
    const { label } = named(svc, [
      ['B', X, X - 2, 0],
      ['A', X + 1, X - 1, 0],
    ]);
    assert.equal(label(sed.schedule(svc, null as never)), 'B');
  });

  it('nq: the same when every destination is busy', () => {
    const svc = makeService(nq);
    const { label } = named(svc, [
      ['B', X, X - 2, 0],
      ['A', X + 1, X - 1, 0],
    ]);
    assert.equal(label(nq.schedule(svc, null as never)), 'B');
  });

  it('lblc: the wlc pick on a cache miss', () => {
    const svc = makeService(lblc);
    const { label } = named(svc, [
      ['B', X, 0, X - 1],
      ['A', X + 1, 0, X],
    ]);
    assert.equal(label(lblc.schedule(svc, flow('192.0.2.1'))), 'B');
  });
});
