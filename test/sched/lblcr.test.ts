/**
 * lblcr — spec §2.15: destination sets per packet destination address, replication on overload,
 * shrinking after lblcr_expiration, and the lblc collector.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEST_F_OVERLOAD } from '../../src/core/constants.js';
import type { Dest, Service } from '../../src/core/service.js';
import { type LblcrState, lblcr } from '../../src/sched/lblcr.js';
import { FakeEnv } from '../helpers/fake-env.js';
import { delDest, flow, makeService, named, setWeight } from './sched-util.js';

const MIN = 60_000;
const F = flow('192.0.2.1', 1, '198.51.100.10');

function setOf(svc: Service, daddr = '198.51.100.10'): Dest[] {
  const en = (svc.schedData as LblcrState).table.find(svc.af, flow('192.0.2.1', 1, daddr).daddr);
  return en ? [...en.set] : [];
}

describe('lblcr', () => {
  describe('#schedule', () => {
    it('creates a one-member set on a miss and reuses it on hits', () => {
      const svc = makeService(lblcr);
      const { by, label } = named(svc, [
        ['A', 1],
        ['B', 1],
      ]);
      assert.equal(label(lblcr.schedule(svc, F)), 'B');
      by.B!.activeConns = 1; // wlc would pick A now; B is not lblc-overloaded (1 ≤ 1)
      assert.equal(label(lblcr.schedule(svc, F)), 'B');
      assert.deepEqual(setOf(svc), [by.B]);
    });

    it('adds the service-wide wlc pick at the head of the set when the set minimum is lblc-overloaded', () => {
      const svc = makeService(lblcr);
      const { by, label } = named(svc, [
        ['A', 4],
        ['B', 2],
        ['C', 2, 0, 1],
      ]);
      assert.equal(label(lblcr.schedule(svc, F)), 'B');
      by.B!.activeConns = 3; // > 2 and A: 0 < 4 → overloaded → wlc over the service: A (0 / 4)
      assert.equal(label(lblcr.schedule(svc, F)), 'A');
      assert.deepEqual(setOf(svc), [by.A, by.B]);
      // Hits now take the least loaded member: A 256 / 4 vs B 768 / 2.
      by.A!.activeConns = 1;
      assert.equal(label(lblcr.schedule(svc, F)), 'A');
      assert.deepEqual(setOf(svc), [by.A, by.B]);
    });

    it('never picks set members that are OVERLOAD, weight 0 or no longer AVAILABLE', () => {
      const svc = makeService(lblcr);
      const { by, label } = named(svc, [
        ['A', 1],
        ['B', 1],
      ]);
      assert.equal(label(lblcr.schedule(svc, F)), 'B');
      by.B!.activeConns = 2;
      assert.equal(label(lblcr.schedule(svc, F)), 'A');
      by.B!.activeConns = 0;
      assert.deepEqual(setOf(svc), [by.A, by.B]);
      assert.equal(label(lblcr.schedule(svc, F)), 'A'); // idle tie → first member
      by.A!.flags |= DEST_F_OVERLOAD;
      assert.equal(label(lblcr.schedule(svc, F)), 'B');
      by.A!.flags &= ~DEST_F_OVERLOAD;
      setWeight(svc, by.A!, 0);
      assert.equal(label(lblcr.schedule(svc, F)), 'B');
      setWeight(svc, by.A!, 1);
      delDest(svc, by.A!);
      assert.equal(label(lblcr.schedule(svc, F)), 'B');
      assert.deepEqual(setOf(svc), [by.A, by.B]); // members are only dropped by the shrink rule
    });

    it('drops the most loaded member once the set has not changed for lblcr_expiration', () => {
      const env = new FakeEnv();
      env.sysctl.lblcr_expiration = 120; // 2 min
      const svc = makeService(lblcr, { env });
      const { by, label } = named(svc, [
        ['A', 2],
        ['B', 2],
      ]);
      assert.equal(label(lblcr.schedule(svc, F)), 'B'); // set {B}, lastmod 0
      by.B!.activeConns = 3;
      assert.equal(label(lblcr.schedule(svc, F)), 'A'); // set {A, B}, lastmod 0
      env.t = 2 * MIN; // now = lastmod + expiration: not yet (strictly after)
      lblcr.schedule(svc, F);
      assert.deepEqual(setOf(svc), [by.A, by.B]);
      env.t = 2 * MIN + 1;
      // B (768 / 2) is the most loaded: removed; A is still returned.
      assert.equal(label(lblcr.schedule(svc, F)), 'A');
      assert.deepEqual(setOf(svc), [by.A]);
      // A single member is never removed.
      env.t = 10 * MIN;
      assert.equal(label(lblcr.schedule(svc, F)), 'A');
      assert.deepEqual(setOf(svc), [by.A]);
    });
  });

  describe('garbage collection', () => {
    it('drops entries unused for lblcr_expiration on the 30th tick', () => {
      const env = new FakeEnv();
      env.sysctl.lblcr_expiration = 60;
      const svc = makeService(lblcr, { env });
      named(svc, [['A', 1]]);
      lblcr.schedule(svc, F);
      env.advance(30 * MIN - 1);
      assert.equal((svc.schedData as LblcrState).table.entries, 1);
      env.advance(1);
      assert.equal((svc.schedData as LblcrState).table.entries, 0);
      assert.deepEqual(setOf(svc), []);
    });
  });
});
