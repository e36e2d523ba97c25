/** src/sched/index.ts: registration of the built-in schedulers under their ipvsadm names. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SCHEDULERS, registerBuiltinSchedulers, wlc } from '../../src/sched/index.js';
import { getScheduler, schedulerNames } from '../../src/sched/registry.js';

describe('sched/index', () => {
  it('registers every scheduler on import', () => {
    for (const ops of SCHEDULERS) assert.equal(getScheduler(ops.name), ops);
    assert.ok(schedulerNames().length >= 14);
    assert.equal(getScheduler('wlc'), wlc);
  });

  it('is safe to run again (idempotent)', async () => {
    assert.doesNotThrow(() => registerBuiltinSchedulers());
    await import('../../src/sched/index.js');
    assert.equal(getScheduler('rr'), SCHEDULERS[0]);
  });
});
