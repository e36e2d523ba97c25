/**
 * What is logged when no destination is found (spec §2.1; kernel ip_vs_scheduler_err): each
 * scheduler reports `<sched>: <PROTO> <vip>:<port> - <msg>` itself, so the message is the one
 * its kernel twin uses — wrr adds ": all destinations are overloaded" when it gave up after a
 * scan, lblcr stays silent on a cache miss (the kernel only has a debug message there), and a
 * service with scheduler `none` logs nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AF_INET6 } from '../../src/core/addr.js';
import { DEST_F_OVERLOAD, IPPROTO_TCP } from '../../src/core/constants.js';
import { bindScheduler } from '../../src/core/dests.js';
import { Service } from '../../src/core/service.js';
import { SCHED_LEAVE } from '../../src/core/conn-ops.js';
import { SCHEDULERS, lblcr, rr, wrr } from '../../src/sched/index.js';
import { FakeEnv } from '../helpers/fake-env.js';
import { flow as ipvsFlow, makeIpvs, svcSpec } from '../helpers/ipvs.js';
import { addDest, flow, makeService, setWeight } from './sched-util.js';

const NO_DEST = 'no destination available';

describe('no destination available', () => {
  for (const ops of SCHEDULERS) {
    if (ops === lblcr) continue;
    it(`${ops.name} logs "${ops.name}: TCP 10.0.0.1:80 - ${NO_DEST}" on an empty service`, () => {
      const env = new FakeEnv(1);
      const svc = makeService(ops, { env });
      assert.equal(svc.sched!.schedule(svc, flow('192.0.2.7')), null);
      assert.deepEqual(env.warnings, [`${ops.name}: TCP 10.0.0.1:80 - ${NO_DEST}`]);
    });
  }

  it('formats IPv6 services as [addr]:port and fwmark services as FWM n 0x%08X', () => {
    const env6 = new FakeEnv(1);
    const svc6 = makeService(rr, { env: env6, af: AF_INET6 });
    assert.equal(svc6.sched!.schedule(svc6, flow('2001:db8::7', 1, '2001:db8::1')), null);
    assert.deepEqual(env6.warnings, [`rr: TCP [2001:db8::1]:80 - ${NO_DEST}`]);

    const envf = new FakeEnv(1);
    const svcf = new Service(envf, 2, IPPROTO_TCP, null, 0, 255);
    bindScheduler(svcf, rr);
    assert.equal(svcf.sched!.schedule(svcf, flow('192.0.2.7')), null);
    assert.deepEqual(envf.warnings, [`rr: FWM 255 0x000000FF - ${NO_DEST}`]);
  });

  it('wrr says "all destinations are overloaded" when a scan found nothing, not when mw = 0', () => {
    const env = new FakeEnv(1);
    const svc = makeService(wrr, { env });
    const a = addDest(svc, '10.1.0.1', 2);
    const b = addDest(svc, '10.1.0.2', 1);
    a.flags |= DEST_F_OVERLOAD;
    b.flags |= DEST_F_OVERLOAD;
    assert.equal(svc.sched!.schedule(svc, flow('192.0.2.7')), null);
    assert.deepEqual(env.warnings, [
      `wrr: TCP 10.0.0.1:80 - ${NO_DEST}: all destinations are overloaded`,
    ]);

    env.warnings.length = 0;
    a.flags &= ~DEST_F_OVERLOAD;
    b.flags &= ~DEST_F_OVERLOAD;
    setWeight(svc, a, 0);
    setWeight(svc, b, 0);
    assert.equal(svc.sched!.schedule(svc, flow('192.0.2.7')), null);
    assert.deepEqual(env.warnings, [`wrr: TCP 10.0.0.1:80 - ${NO_DEST}`]);
  });

  it('lblcr is silent on a cache miss but logs when a cached entry cannot be served', () => {
    const env = new FakeEnv(1);
    const svc = makeService(lblcr, { env });
    const d = addDest(svc, '10.1.0.1', 0);
    assert.equal(svc.sched!.schedule(svc, flow('192.0.2.7')), null);
    assert.deepEqual(env.warnings, []);

    setWeight(svc, d, 1);
    assert.equal(svc.sched!.schedule(svc, flow('192.0.2.7')), d); // creates the entry
    setWeight(svc, d, 0);
    assert.equal(svc.sched!.schedule(svc, flow('192.0.2.7')), null); // hit, nothing usable
    assert.deepEqual(env.warnings, [`lblcr: TCP 10.0.0.1:80 - ${NO_DEST}`]);
  });

  it('a service with scheduler none leaves the packet without logging', () => {
    const logs: string[] = [];
    const { ipvs } = makeIpvs({ log: (m) => logs.push(m) });
    const svc = ipvs.addService(svcSpec('192.0.2.1', 80, { scheduler: 'none' }));
    const f = ipvsFlow(IPPROTO_TCP, '203.0.113.5', 1000, '192.0.2.1', 80);
    assert.equal(ipvs.ops.schedule(svc, f), SCHED_LEAVE);
    assert.deepEqual(logs, []);
    assert.equal(ipvs.ops.counters.noDest, 1);
  });

  it('keys the rate limit on the service: one line per second per service', () => {
    const logs: string[] = [];
    const { ipvs } = makeIpvs({ log: (m) => logs.push(m) });
    const svc = ipvs.addService(svcSpec('192.0.2.1', 80, { scheduler: 'wlc' }));
    for (let p = 1; p <= 3; p++) {
      ipvs.ops.schedule(svc, ipvsFlow(IPPROTO_TCP, '203.0.113.5', p, '192.0.2.1', 80));
    }
    assert.deepEqual(logs, [`wlc: TCP 192.0.2.1:80 - ${NO_DEST}`]);
  });
});
