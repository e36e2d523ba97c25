import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimerWheel, wheelStorage } from '../../src/core/timer-wheel.js';

describe('TimerWheel', () => {
  it('fires a handle at the first tick at or after its time, not before', () => {
    const fired: number[] = [];
    const w = new TimerWheel(wheelStorage(8), (h) => fired.push(h), 0, 10, 4);
    w.arm(3, 3000);
    w.advance(2999);
    assert.deepEqual(fired, []);
    w.advance(3000);
    assert.deepEqual(fired, [3]);
    assert.equal(w.armed, 0);
  });

  it('re-arming later postpones, re-arming earlier advances', () => {
    const fired: number[] = [];
    const w = new TimerWheel(wheelStorage(8), (h) => fired.push(h), 0, 10, 4);
    w.arm(1, 100);
    w.arm(1, 5000);
    w.advance(4990);
    assert.deepEqual(fired, []);
    w.arm(1, 4995);
    w.advance(5000);
    assert.deepEqual(fired, [1]);
  });

  it('handles times many revolutions ahead and large clock jumps', () => {
    const fired: number[] = [];
    const w = new TimerWheel(wheelStorage(8), (h) => fired.push(h), 0, 10, 4); // 16 slots × 10 ms = 160 ms
    w.arm(0, 900_000);
    w.arm(1, 50);
    w.advance(1000);
    assert.deepEqual(fired, [1]);
    w.advance(899_990);
    assert.deepEqual(fired, [1]);
    w.advance(2_000_000);
    assert.deepEqual(fired, [1, 0]);
  });

  it('lets an expiry callback cancel or re-arm other handles of the same slot', () => {
    const fired: number[] = [];
    const w = new TimerWheel(
      wheelStorage(8),
      (h) => {
        fired.push(h);
        if (h === 2) w.cancel(5);
        if (h === 4) w.arm(4, 10_000);
      },
      0,
      10,
      4,
    );
    // new entries go to the head of their slot: 2 is visited first and cancels 5
    for (const h of [5, 4, 2]) w.arm(h, 100);
    w.advance(100);
    assert.deepEqual(fired, [2, 4]);
    assert.ok(w.isArmed(4));
    w.cancel(4);
    assert.equal(w.armed, 0);
  });
});
