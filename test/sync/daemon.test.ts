/**
 * The sync roles and the daemon's life: a role in the state file is reopened (sockets and all)
 * when the daemon restarts, over the real control socket; the daemon's stop closes it. Uses the
 * loopback interface, which needs no privileges (a master there binds 0.0.0.0, as the kernel's
 * does on an interface without a universe-scope address).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Daemon } from '../../src/cli/daemon.js';
import { ControlClient } from '../../src/ctl/client.js';

const quiet = (): void => {};

describe('sync roles across daemon restarts', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ipvs-syncd-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('starts a master over the control socket, and reopens it from the state file', async () => {
    const sock = join(dir, 'ctl.sock');
    const stateFile = join(dir, 'state.json');
    const opts = { dataplane: 'none', control: sock, rules: undefined, stateFile };
    const d1 = await Daemon.start(opts, quiet);
    try {
      const c = await ControlClient.connect(sock);
      await c.call({ cmd: 'newDaemon', daemon: { state: 1, mcastIfn: 'lo', syncId: 3 } });
      await assert.rejects(
        c.call({ cmd: 'newDaemon', daemon: { state: 2, mcastIfn: 'nope0', syncId: 3 } }),
        { code: 'IPVS_ERR_NO_DEVICE' },
      );
      c.close();
      assert.ok(d1.ipvs.syncMaster);
      assert.ok(d1.sync.master);
    } finally {
      await d1.stop();
    }
    assert.equal(d1.sync.master, null, 'the daemon stop closed the role');
    const d2 = await Daemon.start(opts, quiet);
    try {
      assert.deepEqual(
        d2.ipvs.listDaemons().map((x) => [x.state, x.mcastIfn, x.syncId]),
        [[1, 'lo', 3]],
      );
      assert.ok(d2.ipvs.syncMaster, 'the master runs again');
    } finally {
      await d2.stop();
    }
  });
});
