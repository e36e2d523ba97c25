/**
 * The conformance suite every scheduler runs (STYLE.md "Tests"): the contract of spec §2.1 —
 * null without destinations, weight-0 (quiescent, §1.6) and OVERLOAD destinations never chosen,
 * determinism for a given state and seed, correct behaviour across adds and deletes, and state
 * torn down by doneService — checked on fixed cases and on fast-check generated services.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEST_F_OVERLOAD, SVC_F_SCHED1, SVC_F_SCHED2 } from '../../src/core/constants.js';
import { bindScheduler } from '../../src/core/dests.js';
import { Flow } from '../../src/core/flow.js';
import type { Dest, SchedulerOps, Service } from '../../src/core/service.js';
import { SCHEDULERS } from '../../src/sched/index.js';
import { FakeEnv } from '../helpers/fake-env.js';
import { addDest, delDest, flow, makeService, v4flow } from './sched-util.js';

interface DestSpec {
  weight: number;
  overload: boolean;
  active: number;
  inact: number;
}

const destSpec = fc.record({
  weight: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 8 }),
    fc.integer({ min: 1, max: 65535 }),
  ),
  overload: fc.boolean(),
  active: fc.integer({ min: 0, max: 50 }),
  inact: fc.integer({ min: 0, max: 50 }),
});
const flagsArb = fc.constantFrom(0, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED1 | SVC_F_SCHED2);
const flowsArb = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 65535 }), fc.nat(3)), {
  minLength: 1,
  maxLength: 40,
});

/** Builds a service with one destination per spec (10.1.0.i), in the given add order. */
function build(ops: SchedulerOps, specs: DestSpec[], flags: number, seed: number): Service {
  const svc = makeService(ops, { env: new FakeEnv(seed), flags });
  specs.forEach((s, i) => {
    const d = addDest(svc, `10.1.${i >> 8}.${i & 255}`, s.weight);
    d.activeConns = s.active;
    d.inactConns = s.inact;
    if (s.overload) d.flags |= DEST_F_OVERLOAD;
  });
  return svc;
}

/** Schedules every flow (source address, port, one of four VIPs) and returns dest indexes. */
function choices(svc: Service, flows: [number, number, number][]): number[] {
  const f = new Flow();
  return flows.map(([a, p, vip]) => {
    const d = svc.sched!.schedule(svc, v4flow(f, a, p, 0x0a000001 + vip));
    return d === null ? -1 : svc.dests.indexOf(d);
  });
}

for (const ops of SCHEDULERS) {
  describe(ops.name, () => {
    describe('conformance', () => {
      it('returns null when the service has no destinations', () => {
        const svc = makeService(ops);
        assert.equal(ops.schedule(svc, flow('192.0.2.1')), null);
        assert.equal(ops.schedule(svc, flow('192.0.2.200', 1234)), null);
      });

      it('returns null when every destination has weight 0 or is OVERLOAD', () => {
        const svc = makeService(ops, { flags: SVC_F_SCHED1 });
        addDest(svc, '10.1.0.1', 0);
        const b = addDest(svc, '10.1.0.2', 5);
        b.flags |= DEST_F_OVERLOAD;
        for (let i = 0; i < 50; i++)
          assert.equal(ops.schedule(svc, flow(`192.0.2.${i}`, 1000 + i)), null);
      });

      it('never returns a weight-0 or OVERLOAD destination (property)', () => {
        fc.assert(
          fc.property(
            fc.array(destSpec, { maxLength: 12 }),
            flagsArb,
            flowsArb,
            (specs, flags, flows) => {
              const svc = build(ops, specs, flags, 7);
              const f = new Flow();
              for (const [a, p, vip] of flows) {
                const d = svc.sched!.schedule(svc, v4flow(f, a, p, 0x0a000001 + vip));
                if (d === null) continue;
                assert.ok(svc.dests.includes(d), 'chosen destination is linked');
                assert.ok(d.weight > 0, 'weight-0 destination chosen');
                assert.equal(d.flags & DEST_F_OVERLOAD, 0, 'OVERLOAD destination chosen');
              }
            },
          ),
          { numRuns: 150 },
        );
      });

      it('is deterministic for the same state, flows and seed (property)', () => {
        fc.assert(
          fc.property(
            fc.array(destSpec, { maxLength: 10 }),
            flagsArb,
            flowsArb,
            fc.nat(),
            (specs, flags, flows, seed) => {
              const a = choices(build(ops, specs, flags, seed), flows);
              const b = choices(build(ops, specs, flags, seed), flows);
              assert.deepEqual(a, b);
            },
          ),
          { numRuns: 100 },
        );
      });

      it('chooses among the remaining destinations after adds and deletes', () => {
        const svc = makeService(ops);
        const a = addDest(svc, '10.1.0.1', 1);
        const b = addDest(svc, '10.1.0.2', 2);
        const c = addDest(svc, '10.1.0.3', 3);
        delDest(svc, b);
        const d = addDest(svc, '10.1.0.4', 1);
        const seen = new Set<Dest>();
        for (let i = 0; i < 200; i++) {
          const got = ops.schedule(
            svc,
            flow(`192.0.${i >> 4}.${i}`, 2000 + i, `10.0.0.${1 + (i % 7)}`),
          );
          assert.ok(got === a || got === c || got === d, `got ${String(got)}`);
          seen.add(got);
        }
        delDest(svc, a);
        delDest(svc, c);
        delDest(svc, d);
        assert.equal(ops.schedule(svc, flow('192.0.2.1')), null);
        assert.ok(seen.size >= 1);
      });

      it('leaves schedData null after doneService and can be bound again', () => {
        const env = new FakeEnv(3);
        const svc = makeService(ops, { env });
        addDest(svc, '10.1.0.1', 1);
        ops.schedule(svc, flow('192.0.2.1'));
        ops.doneService?.(svc);
        assert.equal(svc.schedData, null);
        svc.sched = null;
        env.advance(3_600_000); // no collector may still run against the old state
        bindScheduler(svc, ops);
        assert.ok(ops.schedule(svc, flow('192.0.2.1')) !== null);
        bindScheduler(svc, null);
        assert.equal(svc.schedData, null);
      });
    });
  });
}

describe('SCHEDULERS', () => {
  it('lists the 14 kernel schedulers by their ipvsadm names', () => {
    assert.deepEqual(SCHEDULERS.map((s) => s.name).sort(), [
      'dh',
      'fo',
      'lblc',
      'lblcr',
      'lc',
      'mh',
      'nq',
      'ovf',
      'rr',
      'sed',
      'sh',
      'twos',
      'wlc',
      'wrr',
    ]);
  });
});
