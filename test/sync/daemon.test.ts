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
import { SyncMessage } from '../../src/sync/wire.js';

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

describe('sync counters in /metrics', () => {
  it('a backup on lo counts what it received and applied, and /metrics shows it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-syncm-'));
    const probe = createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    const port = probe.address().port;
    const d = await Daemon.start(
      {
        dataplane: 'none',
        control: join(dir, 'c.sock'),
        rules: undefined,
        stateFile: undefined,
        http: '127.0.0.1:0',
      },
      quiet,
    );
    try {
      const c = await ControlClient.connect(join(dir, 'c.sock'));
      await c.call({
        cmd: 'newDaemon',
        daemon: { state: 2, mcastIfn: 'lo', syncId: 1, mcastPort: port },
      });
      c.close();
      const metrics = async () =>
        (await fetch(`http://127.0.0.1:${d.http!.address.port}/metrics`)).text();
      assert.match(await metrics(), /^ipvs_sync_backup_messages_total 0$/m);
      assert.doesNotMatch(await metrics(), /ipvs_sync_master_/);
      // one v1 message of three connections, and one datagram too short to be one
      const msg = new SyncMessage(1, 1, 1472, 36, Date.now());
      for (let i = 0; i < 3; i++)
        msg.addV1({
          af: 2,
          protocol: 6,
          flags: 0,
          state: 1,
          cport: 1024 + i,
          vport: 80,
          dport: 80,
          fwmark: 0,
          timeout: 60,
          caddr: [0xcb007101],
          vaddr: [0x0a000001],
          daddr: [0xc0000201],
        });
      probe.setMulticastInterface('127.0.0.1');
      probe.setMulticastLoopback(true);
      for (const b of [Buffer.from(msg.bytes()), Buffer.from([1, 2, 3])])
        await new Promise<void>((r, j) =>
          probe.send(b, port, '224.0.0.81', (e) => (e ? j(e) : r())),
        );
      for (let i = 0; i < 100 && d.ipvs.conns.count < 3; i++)
        await new Promise((r) => setTimeout(r, 20));
      const m = await metrics();
      assert.match(m, /^ipvs_sync_backup_messages_total 2$/m);
      assert.match(m, /^ipvs_sync_backup_created_total 3$/m);
      assert.match(m, /^ipvs_sync_backup_dropped_total 1$/m);
      assert.match(m, /^# TYPE ipvs_sync_backup_applied_total counter$/m);
    } finally {
      probe.close();
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
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
