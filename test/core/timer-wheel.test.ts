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

describe('Ipvs clock held for a batch', () => {
  it('holdClock freezes now() at one reading until releaseClock; connections armed meanwhile expire from it', async () => {
    const { makeIpvs } = await import('../helpers/ipvs.js');
    const { parseIp } = await import('../../src/core/addr.js');
    const { ipvs, clock, advance } = makeIpvs();
    const t0 = clock.t;
    assert.equal(ipvs.holdClock(), t0);
    clock.t = t0 + 500;
    assert.equal(ipvs.now(), t0, 'held');
    const c = parseIp('203.0.113.5')!.words;
    const v = parseIp('192.0.2.1')!.words;
    const d = parseIp('198.51.100.2')!.words;
    const h = ipvs.ops.newConn(2, 17, c, 5000, v, 53, 2, d, 53, 0, null, 0);
    ipvs.ops.put(h); // the packet is done with it: its timer runs from the held reading
    ipvs.releaseClock();
    assert.equal(ipvs.now(), t0 + 500, 'released');
    // armed at the held reading: the 3 s placeholder ends 3 s after t0, not after t0 + 500
    advance(2400); // t0 + 2900
    assert.notEqual(ipvs.conns.inGet(2, 17, c, 5000, v, 53), -1);
    advance(200); // t0 + 3100: armed from t0 + 500 it would live until t0 + 3500
    assert.equal(ipvs.conns.inGet(2, 17, c, 5000, v, 53), -1, `handle ${h} expired at t0 + 3000`);
  });
});
