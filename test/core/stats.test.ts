import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Stats } from '../../src/core/stats.js';
import { destSpec, flow, makeIpvs, svcSpec } from '../helpers/ipvs.js';

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

  describe('estimator timing (Ipvs)', () => {
    const VIP = '192.0.2.1';

    it('samples every object every 2 s from its creation, the first sample ~2 s after it', () => {
      const { ipvs, advance } = makeIpvs();
      const a = svcSpec(VIP, 80, { scheduler: 'rr' });
      ipvs.addService(a);
      advance(1000);
      // a second service and its destination, created 1 s after estimation started
      const b = svcSpec(VIP, 81, { scheduler: 'rr' });
      const svc = ipvs.addService(b);
      const d = ipvs.addDest(b, destSpec('198.51.100.1', 81));
      const open = (n: number, from: number): void => {
        for (let i = 0; i < n; i++)
          ipvs.ops.schedule(svc, flow(6, '203.0.113.9', from + i, VIP, 81));
      };
      open(100, 2000);
      advance(1500);
      // not sampled yet: the kernel puts a new estimator 2 s ahead, not in the total's phase
      assert.deepEqual([svc.stats.snapshot().cps, d.stats.snapshot().cps], [0, 0]);
      advance(500);
      // one sample: 100 << 9 = 51200, avg 12800, (12800 + 511) >> 10 = 12
      assert.deepEqual([svc.stats.snapshot().cps, d.stats.snapshot().cps], [12, 12]);
      assert.equal(ipvs.total.snapshot().cps, 12, 'the total was sampled at 2 s already');
      open(100, 3000);
      advance(1500);
      assert.equal(svc.stats.snapshot().cps, 12, 'the next sample is 2 s after the first');
      advance(500);
      // avg = 12800 + (51200 - 12800) / 4 = 22400 → 22
      assert.equal(svc.stats.avgCps, 22400);
      assert.equal(svc.stats.snapshot().cps, 22);
    });

    it('stops sampling a deleted destination and restarts it 2 s after it is re-added', () => {
      const { ipvs, advance } = makeIpvs();
      const k = svcSpec(VIP, 80, { scheduler: 'rr' });
      const svc = ipvs.addService(k);
      const d = ipvs.addDest(k, destSpec('198.51.100.1', 80));
      for (let i = 0; i < 100; i++)
        ipvs.ops.schedule(svc, flow(6, '203.0.113.9', 2000 + i, VIP, 80));
      advance(2000);
      assert.equal(d.stats.avgCps, 12800);
      ipvs.delDest(k, { addr: '198.51.100.1', port: 80 });
      advance(4000);
      assert.equal(d.stats.avgCps, 12800, 'frozen while in the trash');
      advance(1000);
      ipvs.addDest(k, destSpec('198.51.100.1', 80));
      advance(1500);
      assert.equal(d.stats.avgCps, 12800, 'not sampled before 2 s');
      advance(500);
      assert.equal(d.stats.avgCps, 9600);
    });
    it('after a stall of the clock the estimator samples once, not once per missed period', () => {
      // the estimator kthread resets its timer when more than 8 ticks late and goes on one row
      // per tick from there
      const { ipvs, clock, advance } = makeIpvs();
      const k = svcSpec(VIP, 80, { scheduler: 'rr' });
      const svc = ipvs.addService(k);
      ipvs.addDest(k, destSpec('198.51.100.1', 80));
      advance(2000);
      for (let i = 0; i < 100; i++)
        ipvs.ops.schedule(svc, flow(6, '203.0.113.9', 2000 + i, VIP, 80));
      clock.t += 3_600_000;
      ipvs.tick();
      advance(2000);
      // one sample of the 100 new connections, not 1800 samples decaying them to nothing
      assert.equal(svc.stats.avgCps, 12800);
    });
  });
});
