/**
 * The sync roles and the daemon's life: a role in the state file is reopened (sockets and all)
 * when the daemon restarts, over the real control socket; the daemon's stop closes it. Uses the
 * loopback interface, which needs no privileges (a master there binds 0.0.0.0, as the kernel's
 * does on an interface without a universe-scope address). A master and a backup on lo (two
 * directors on one host) reach each other.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Daemon } from '../../src/cli/daemon.js';
import { ControlClient } from '../../src/ctl/client.js';
import { openBackupSockets, openMasterSockets, syncIface } from '../../src/sync/transport.js';

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

describe('sync over the loopback interface', () => {
  it('a backup joins on lo, and receives what a master on lo sends', async () => {
    const iface = syncIface('lo');
    assert.equal(iface.ipv4, null, 'lo has no universe-scope address');
    const probe = createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    const port = probe.address().port;
    probe.close();
    const spec = { iface, group: '224.0.0.81', port, ttl: 1, count: 1, sockSize: 0, maxlen: 1500 };
    const got: Buffer[] = [];
    const backup = await openBackupSockets(spec, (m) => got.push(Buffer.from(m)), quiet);
    const master = await openMasterSockets(spec, quiet);
    try {
      const msg = Buffer.from('ipvs-sync-over-lo');
      for (let i = 0; i < 20 && got.length === 0; i++) {
        master.send(0, msg);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(got.length > 0, 'the backup received the datagram');
      assert.deepEqual(got[0], msg);
    } finally {
      master.close();
      backup.close();
    }
  });

  it('starts a backup on lo over the control socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-synclo-'));
    const sock = join(dir, 'ctl.sock');
    const opts = { dataplane: 'none', control: sock, rules: undefined, stateFile: undefined };
    const d = await Daemon.start(opts, quiet);
    try {
      const c = await ControlClient.connect(sock);
      await c.call({ cmd: 'newDaemon', daemon: { state: 2, mcastIfn: 'lo', syncId: 9 } });
      c.close();
      assert.ok(d.sync.backup);
    } finally {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
