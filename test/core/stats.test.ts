import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Stats } from '../../src/core/stats.js';

describe('Stats', () => {
  describe('#estimate', () => {
    it('computes cps from one 2 s sample with the kernel scaling and rounding', () => {
      const s = new Stats();
      s.conns = 100;
      s.estimate();
      // rate = 100 << 9 = 51200; avg = 51200 / 4 = 12800; cps = (12800 + 511) >> 10 = 12
      assert.equal(s.avgCps, 12800);
      assert.equal(s.snapshot().cps, 12);
    });

    it('decays by a quarter of the difference per sample (EWMA 1/4)', () => {
      const s = new Stats();
      s.conns = 100;
      s.estimate();
      s.estimate();
      // avg = 12800 + ((0 - 12800) >> 2) = 9600; cps = (9600 + 511) >> 10 = 9
      assert.equal(s.avgCps, 9600);
      assert.equal(s.snapshot().cps, 9);
    });

    it('uses arithmetic (flooring) shifts for negative differences', () => {
      const s = new Stats();
      s.avgCps = 3;
      s.estimate();
      // (0 - 3) >> 2 = -1 → avg 2
      assert.equal(s.avgCps, 2);
    });

    it('scales bytes by 2^4 per sample and reports bytes per second rounded with (x + 15) >> 5', () => {
      const s = new Stats();
      s.inbytes = 1_000_000;
      s.outbytes = 3;
      s.estimate();
      // in: rate = 16,000,000; avg = 4,000,000; bps = 4,000,015 >> 5 = 125000
      assert.equal(s.snapshot().inbps, 125000);
      // out: rate = 48; avg = 12; (12 + 15) >> 5 = 0
      assert.equal(s.avgOutbps, 12);
      assert.equal(s.snapshot().outbps, 0);
    });

    it('converges to the true rate under a steady load', () => {
      const s = new Stats();
      for (let i = 0; i < 80; i++) {
        s.inpkts += 2000; // 1000 packets per second
        s.inbytes += 2_000_000; // 1,000,000 bytes per second
        s.estimate();
      }
      assert.equal(s.snapshot().inpps, 1000);
      assert.equal(s.snapshot().inbps, 1_000_000);
    });

    it('handles byte counts beyond 32 bits without wrapping', () => {
      const s = new Stats();
      s.outbytes = 2 ** 40;
      s.estimate();
      assert.equal(s.avgOutbps, (2 ** 40 * 16) / 4);
      assert.equal(s.snapshot().outbps, Math.floor((2 ** 42 + 15) / 32));
    });
  });

  describe('#zero', () => {
    it('records baselines instead of clearing the running counters, and resets rates', () => {
      const s = new Stats();
      s.conns = 10;
      s.inpkts = 20;
      s.inbytes = 3000;
      s.estimate();
      s.zero();
      assert.equal(s.conns, 10);
      assert.deepEqual(
        {
          c: s.snapshot().conns,
          p: s.snapshot().inpkts,
          b: s.snapshot().inbytes,
          r: s.snapshot().cps,
        },
        { c: 0, p: 0, b: 0, r: 0 },
      );
      s.conns += 5;
      assert.equal(s.snapshot().conns, 5);
      // the estimator restarts from the zeroing point: only the 5 new connections count
      s.estimate();
      assert.equal(s.avgCps, (5 * 512) / 4);
    });
  });
});
