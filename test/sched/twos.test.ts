/** twos — spec §2.10: two weighted random draws, the less loaded per weight wins. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Dest } from '../../src/core/service.js';
import { randomBelow, twos } from '../../src/sched/twos.js';
import { FakeEnv } from '../helpers/fake-env.js';
import { makeService, named } from './sched-util.js';

/** An env whose random numbers come from a script. */
class ScriptedEnv extends FakeEnv {
  script: number[] = [];
  override readonly randomU32 = (): number => {
    const v = this.script.shift();
    if (v === undefined) throw new Error('script exhausted');
    return v;
  };
}

function setup(ds: [string, number, number?, number?][]) {
  const env = new ScriptedEnv();
  const svc = makeService(twos, { env });
  const { by, label } = named(svc, ds);
  // get_random_u32_below(total) = ⌊total × u / 2^32⌋: feed the u32 in the middle of r's range.
  const total = ds.reduce((t, [, w]) => t + w, 0) + 1;
  const u = (r: number) => Math.floor(((r + 0.5) * 2 ** 32) / total);
  const pickWith = (r1: number, r2: number) => {
    env.script = [u(r1), u(r2)];
    const got = label(twos.schedule(svc, null as never));
    assert.equal(env.script.length, 0);
    return got;
  };
  return { env, svc, by, label, pickWith };
}

describe('twos', () => {
  describe('#schedule', () => {
    it('maps a draw r to the first destination where r − Σweight ≤ 0 (r = 0 → the first)', () => {
      // list C(3), B(2), A(1): total = 6 + 1 = 7; draws in [0, 7).
      const { pickWith } = setup([
        ['A', 1],
        ['B', 2],
        ['C', 3],
      ]);
      // Both draws equal → same destination.
      const at = [0, 1, 2, 3, 4, 5, 6].map((r) => pickWith(r, r));
      assert.deepEqual(at, ['C', 'C', 'C', 'C', 'B', 'B', 'A']);
    });

    it('returns the second choice only when it is strictly less loaded per weight', () => {
      const { by, pickWith } = setup([
        ['A', 1],
        ['B', 2],
      ]);
      // list B(2), A(1); r = 0 → B, r = 3 → A.
      by.B!.activeConns = 1; // B: 256 / 2 = 128, A: 0 → A less loaded
      assert.equal(pickWith(0, 3), 'A');
      assert.equal(pickWith(3, 0), 'A');
      by.A!.activeConns = 1; // B: 256 / 2, A: 256 / 1 → B less loaded
      assert.equal(pickWith(0, 3), 'B');
      by.B!.activeConns = 2; // B: 512 / 2 = A: 256 / 1 → tie → first choice
      assert.equal(pickWith(0, 3), 'B');
      assert.equal(pickWith(3, 0), 'A');
    });

    it('compares in 32-bit int as the kernel does: a product past 2^31 wraps negative', () => {
      const { by, pickWith } = setup([
        ['A', 65535],
        ['B', 65535],
      ]);
      // list B, A; r = 0 → B, r = 65536 → A. A: 100 active, B: 200 active.
      by.A!.activeConns = 100;
      by.B!.activeConns = 200;
      // choice1 B, choice2 A: 65535 × 51200 wraps to −939575296 < 65535 × 25600 → B stays
      assert.equal(pickWith(0, 65536), 'B');
      by.B!.activeConns = 120; // 65535 × 30720 and 65535 × 25600 both below 2^31: A wins
      assert.equal(pickWith(0, 65536), 'A');
    });

    it('draws over non-OVERLOAD destinations with weight > 0 only', () => {
      const { pickWith } = setup([
        ['A', 1],
        ['Z', 0],
        ['B', 1],
      ]);
      // list B, Z, A: total = 3; r = 2 → past B (2 − 1 = 1), Z skipped, A.
      assert.equal(pickWith(2, 2), 'A');
    });

    it('draws like get_random_u32_below: ⌊total × u / 2^32⌋, redrawing a biased low half', () => {
      const env = new ScriptedEnv();
      // total 7: u = 2^28 → 0, u = 2^32 − 1 → 6, u = 2^31 → 3 (not u mod 7).
      env.script = [0x10000000, 0xffffffff, 0x80000000];
      assert.deepEqual([randomBelow(env, 7), randomBelow(env, 7), randomBelow(env, 7)], [0, 6, 3]);
      // 7 × u mod 2^32 < 2^32 mod 7 (= 4) is redrawn: u = 0x24924925 gives low half 3.
      // u = 0 too: its low half 0 is below 4.
      env.script = [0x24924925, 0, 0x80000000];
      assert.equal(randomBelow(env, 7), 3);
      assert.equal(env.script.length, 0);
      // A low half below total but not below 2^32 mod total is kept: 7 × 0x4924924a = 2 · 2^32 + 6.
      env.script = [0x4924924a];
      assert.equal(randomBelow(env, 7), 2);
      env.script = [0xffffffff];
      assert.equal(randomBelow(env, 1), 0);
    });

    it('a constant source of 2^32 − 1 picks the last eligible destination (no endless redraw)', () => {
      const env = new ScriptedEnv();
      const svc = makeService(twos, { env });
      const { label } = named(svc, [
        ['A', 1],
        ['B', 2],
        ['C', 3],
      ]);
      env.script = [0xffffffff, 0xffffffff];
      // r = 6 for both: C 6 − 3 = 3, B 3 − 2 = 1, A 1 − 1 = 0 → A.
      assert.equal(label(twos.schedule(svc, null as never)), 'A');
    });

    it('sums and draws in int as the kernel does: weights near 2^31 wrap, and it still picks', () => {
      const env = new ScriptedEnv();
      const svc = makeService(twos, { env });
      // list A(1), B(2^31−1), C(2^31−1): total 1 + 2(2^31−1) + 1 wraps to 0, so
      // get_random_u32_below(0) gives the raw u32; 3e9 as an int is negative, ≤ 0 at the first
      const { label } = named(svc, [
        ['C', 0x7fffffff],
        ['B', 0x7fffffff],
        ['A', 1],
      ]);
      env.script = [3_000_000_000, 3_000_000_000];
      assert.equal(label(twos.schedule(svc, null as never)), 'A');
      assert.equal(env.script.length, 0);
      // three of 2^31−1: total wraps to 2^31−2 (it used to reach 2^32 and redraw forever)
      const env3 = new ScriptedEnv();
      const svc3 = makeService(twos, { env: env3 });
      const three = named(svc3, [
        ['X', 0x7fffffff],
        ['Y', 0x7fffffff],
        ['Z', 0x7fffffff],
      ]);
      env3.script = [1, 1];
      assert.equal(three.label(twos.schedule(svc3, null as never)), 'Z');
      assert.equal(env3.script.length, 0);
    });

    it('with a seeded env and no load, shares follow weight (+1 share for the first)', () => {
      const env = new FakeEnv(42);
      const svc = makeService(twos, { env });
      const { by } = named(svc, [
        ['A', 1],
        ['B', 2],
        ['C', 3],
      ]);
      const counts = new Map<Dest, number>();
      const n = 70_000;
      for (let i = 0; i < n; i++) {
        const d = twos.schedule(svc, null as never)!;
        counts.set(d, (counts.get(d) ?? 0) + 1);
      }
      // No load: ties keep choice 1, so shares are (3 + 1, 2, 1) / 7 for C, B, A.
      const expect: [Dest, number][] = [
        [by.C!, 4 / 7],
        [by.B!, 2 / 7],
        [by.A!, 1 / 7],
      ];
      for (const [d, p] of expect)
        assert.ok(Math.abs(counts.get(d)! / n - p) < 0.01, `${d} ${counts.get(d)}`);
    });
  });
});
