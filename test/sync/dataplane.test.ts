/**
 * Sync and the packet data plane: a backup that takes over forwards packets of synced
 * connections to the recorded real server (bound or not), `backup_only` keeps a running backup
 * out of the way, and on a master both the slow path and the fast path hand counted packets to
 * the sync master.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../../src/core/addr.js';
import { FWD_DROUTE, FWD_MASQ } from '../../src/core/constants.js';
import { NF } from '../../src/dataplane/packet/hooks.js';
import { TCP_S_ESTABLISHED } from '../../src/proto/index.js';
import { SyncBackup } from '../../src/sync/backup.js';
import { SyncMaster } from '../../src/sync/master.js';
import { type SyncConn, SyncMessage, decodeMessage } from '../../src/sync/wire.js';
import { ACK, dec, dmac, dst, tcp4 } from '../dataplane/packet/frames.js';
import { CLIENT, MAC, RS1, RS2, VIP, natLab } from '../dataplane/packet/lab.js';

const w = (a: string): Uint32Array => parseIp(a)!.words;

function record(o: Partial<SyncConn> = {}): Buffer {
  const c: SyncConn = {
    af: 2,
    protocol: 6,
    flags: FWD_MASQ,
    state: TCP_S_ESTABLISHED,
    cport: 40000,
    vport: 80,
    dport: 8080,
    fwmark: 0,
    timeout: 900,
    caddr: w(CLIENT),
    vaddr: w(VIP),
    daddr: w(RS1),
    ...o,
  };
  const m = new SyncMessage(1, 0, 1472, 36, 0);
  m.addV1(c);
  return m.bytes();
}

describe('sync and the packet data plane', () => {
  it('a backup forwards a mid-stream packet of a synced connection to its real server', () => {
    const lab = natLab();
    new SyncBackup(lab.ipvs, 0).receive(record());
    // an ACK opens nothing (sloppy_tcp 0): only the synced connection can take it
    for (const path of ['send', 'receive'] as const) {
      const r = lab[path]('eth0', tcp4({ flags: ACK, seq: 5000, ack: 7000 }));
      assert.equal(r.eth1.length, 1, path);
      const o = dec(r.eth1[0]!);
      assert.deepEqual([dst(o), o.dstPort], [RS1, 8080], path);
      assert.equal(dmac(r.eth1[0]!), MAC.rs1);
    }
  });

  it('an unbound synced connection is forwarded with the synced method to the synced server', () => {
    const lab = natLab();
    new SyncBackup(lab.ipvs, 0).receive(record({ flags: FWD_DROUTE, daddr: w(RS2), dport: 80 }));
    const h = lab.ipvs.conns.inGet(2, 6, w(CLIENT), 40000, w(VIP), 80);
    assert.equal(lab.ipvs.conns.dest(h), -1);
    const r = lab.send('eth0', tcp4({ flags: ACK }));
    assert.equal(r.eth1.length, 1);
    // DR: the packet still goes to the VIP, in a frame for RS2's MAC
    assert.equal(dst(dec(r.eth1[0]!)), VIP);
    assert.equal(dmac(r.eth1[0]!), MAC.rs2);
  });

  it('backup_only = 1 while a backup runs: the director does not touch traffic', () => {
    const lab = natLab();
    new SyncBackup(lab.ipvs, 0).receive(record());
    lab.ipvs.setSysctl('backup_only', 1);
    lab.ipvs.startDaemon({ state: 2, mcastIfn: 'eth1', syncId: 0 });
    const r = lab.send('eth0', tcp4({ flags: ACK }));
    assert.equal(r.verdict, NF.ACCEPT);
    assert.equal(r.eth1.length, 0);
    lab.ipvs.stopDaemon(2);
    assert.equal(lab.send('eth0', tcp4({ flags: ACK })).eth1.length, 1);
  });

  it('on a master, slow and fast path packets are counted and synced at the threshold', () => {
    const lab = natLab();
    const sent: Buffer[] = [];
    const timers = { set: () => null, clear: () => {} };
    const m = new SyncMaster(
      lab.ipvs,
      { syncId: 0, maxlen: 1472, ports: 1 },
      (_i, b) => sent.push(b),
      timers,
    );
    lab.ipvs.syncMaster = m;
    lab.send('eth0', tcp4()); // SYN: slow path, SYN_RECV
    lab.send('eth0', tcp4({ flags: ACK })); // ESTABLISHED (input only)
    const h = lab.ipvs.conns.inGet(2, 6, w(CLIENT), 40000, w(VIP), 80);
    assert.equal(m.hasCurrent(0), false);
    const fast = lab.engine.counters.fastPath;
    lab.receive('eth0', tcp4({ flags: ACK })); // third packet, through the batch (fast) path
    assert.equal(lab.engine.counters.fastPath - fast, 1, 'the fast path took it');
    assert.equal(lab.ipvs.conns.inPkts(h), 3);
    assert.equal(m.hasCurrent(0), true);
    lab.clock.t += 2_000;
    m.runThreads();
    const recs = sent.flatMap((b) => decodeMessage(b, { syncId: 0 }).records);
    assert.equal(recs.length, 1);
    assert.equal(recs[0]!.state, TCP_S_ESTABLISHED);
    assert.equal(recs[0]!.daddr[0], w(RS1)[0]);
    assert.equal(recs[0]!.dport, 8080);
  });
});
