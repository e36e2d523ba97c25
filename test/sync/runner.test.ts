/**
 * Starting and stopping sync roles through the controller (spec §8.1, §10): sockets first, then
 * the command; a failure leaves nothing applied; sync_maxlen from the interface MTU for a backup;
 * sync_ports fixed while a role runs; the master wired into Ipvs.syncMaster and unwired on stop.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NoDeviceError, SyncSocketError } from '../../src/core/errors.js';
import { Controller } from '../../src/ctl/controller.js';
import { SyncRunner, type SyncIo } from '../../src/sync/runner.js';
import type { SyncSocketSpec } from '../../src/sync/transport.js';
import { makeIpvs } from '../helpers/ipvs.js';

function setup(o: { mtu?: number; failOpen?: boolean } = {}) {
  const { ipvs } = makeIpvs();
  const opened: { role: string; spec: SyncSocketSpec; closed: boolean }[] = [];
  const io: SyncIo = {
    iface: (name) => {
      if (name !== 'eth1') throw new NoDeviceError(`Unknown mcast interface: ${name}`);
      return {
        name,
        ipv4: '198.51.100.1',
        mcast4: '198.51.100.1',
        ipv6: false,
        mtu: o.mtu ?? 1500,
      };
    },
    openMaster: async (spec) => {
      if (o.failOpen) throw new SyncSocketError('EADDRINUSE', 'Address already in use');
      const s = { role: 'master', spec, closed: false };
      opened.push(s);
      return { send: () => {}, close: () => void (s.closed = true) };
    },
    openBackup: async (spec) => {
      if (o.failOpen) throw new SyncSocketError('EADDRINUSE', 'Address already in use');
      const s = { role: 'backup', spec, closed: false };
      opened.push(s);
      return { close: () => void (s.closed = true) };
    },
  };
  const sync = new SyncRunner(ipvs, () => {}, { io });
  const ctl = new Controller(ipvs, { sync });
  return { ipvs, ctl, sync, opened };
}

const start = (state: 1 | 2, ifn = 'eth1') =>
  ({ cmd: 'newDaemon', daemon: { state, mcastIfn: ifn, syncId: 0 } }) as const;

describe('SyncRunner', () => {
  it('starts a master: sockets opened, Ipvs.syncMaster set; stop unwires and closes', async () => {
    const { ipvs, ctl, opened } = setup();
    await ctl.runAsync(start(1));
    assert.ok(ipvs.syncMaster);
    assert.equal(opened.length, 1);
    assert.equal(opened[0]!.spec.port, 8848);
    assert.equal(opened[0]!.spec.group, '224.0.0.81');
    assert.equal(ipvs.listDaemons()[0]!.syncMaxlen, 1472);
    await ctl.runAsync({ cmd: 'delDaemon', state: 1 });
    assert.equal(ipvs.syncMaster, null);
    assert.equal(opened[0]!.closed, true);
  });

  it('an unknown interface: ENODEV, nothing applied, nothing opened', async () => {
    const { ipvs, ctl, opened } = setup();
    await assert.rejects(ctl.runAsync(start(2, 'nope0')), { code: 'IPVS_ERR_NO_DEVICE' });
    assert.deepEqual(ipvs.listDaemons(), []);
    assert.equal(opened.length, 0);
  });

  it('a socket failure is the reply and nothing is applied', async () => {
    const { ipvs, ctl } = setup({ failOpen: true });
    await assert.rejects(ctl.runAsync(start(1)), {
      code: 'IPVS_ERR_SYNC_SOCKET',
      errno: 'EADDRINUSE',
    });
    assert.deepEqual(ipvs.listDaemons(), []);
    assert.equal(ipvs.syncMaster, null);
  });

  it('a role that runs already: EEXIST before any socket is made', async () => {
    const { ctl, opened } = setup();
    await ctl.runAsync(start(2));
    await assert.rejects(ctl.runAsync(start(2)), { code: 'IPVS_ERR_DAEMON_RUNNING' });
    assert.equal(opened.length, 1);
  });

  it('ENODEV comes before EEXIST, EINVAL before both (start_sync_thread’s order)', async () => {
    const { ctl } = setup();
    await ctl.runAsync(start(2));
    await assert.rejects(ctl.runAsync(start(2, 'nope0')), { code: 'IPVS_ERR_NO_DEVICE' });
    await assert.rejects(
      ctl.runAsync({ cmd: 'newDaemon', daemon: { state: 2, mcastIfn: 'nope0', syncId: 300 } }),
      { code: 'IPVS_ERR_INVALID' },
    );
  });

  it('a backup’s default sync_maxlen follows the interface MTU (clamped to 1500..65535)', async () => {
    const { ipvs, ctl } = setup({ mtu: 9000 });
    await ctl.runAsync(start(2));
    await ctl.runAsync(start(1));
    const [m, b] = ipvs.listDaemons();
    assert.equal(m!.syncMaxlen, 1472); // the master always uses 1500
    assert.equal(b!.syncMaxlen, 9000 - 28);
  });

  it('port, TTL and sync_maxlen 0 mean the defaults (start_sync_thread), in effect and listed', async () => {
    const { ipvs, ctl, opened } = setup({ mtu: 9000 });
    const zeros = { mcastIfn: 'eth1', syncId: 0, mcastPort: 0, mcastTtl: 0, syncMaxlen: 0 };
    await ctl.runAsync({ cmd: 'newDaemon', daemon: { state: 2, ...zeros } });
    await ctl.runAsync({ cmd: 'newDaemon', daemon: { state: 1, ...zeros } });
    assert.deepEqual(
      opened.map((o) => [o.role, o.spec.port, o.spec.ttl, o.spec.maxlen]),
      [
        ['backup', 8848, 1, 9000 - 28],
        ['master', 8848, 1, 1472],
      ],
    );
    assert.deepEqual(
      ipvs.listDaemons().map((d) => [d.state, d.mcastPort, d.mcastTtl, d.syncMaxlen]),
      [
        [1, 8848, 1, 1472],
        [2, 8848, 1, 9000 - 28],
      ],
    );
  });

  it('sync_ports is read when the first role starts and kept while one runs', async () => {
    const { ipvs, ctl, opened } = setup();
    ipvs.setSysctl('sync_ports', 4);
    await ctl.runAsync(start(2));
    ipvs.setSysctl('sync_ports', 8);
    await ctl.runAsync(start(1));
    assert.deepEqual(
      opened.map((o) => o.spec.count),
      [4, 4],
    );
  });

  it('newDaemon through the synchronous path is refused when sockets are attached', () => {
    const { ctl, ipvs } = setup();
    assert.throws(() => ctl.run(start(1)), { code: 'IPVS_ERR_INTERNAL' });
    assert.deepEqual(ipvs.listDaemons(), []);
  });

  it('submit answers requests in order while one waits for sockets', async () => {
    const { ctl } = setup();
    const a = ctl.submit({ ...start(1), id: 1 });
    const b = ctl.submit({ cmd: 'getDaemons', id: 2 });
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(ra.ok, true);
    assert.deepEqual(
      (rb as { result: { state: number }[] }).result.map((d) => d.state),
      [1],
    );
  });
});
