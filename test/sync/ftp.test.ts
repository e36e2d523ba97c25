/**
 * FTP takeover through sync (spec §8.3 SEQ option, §7.2): a master whose FTP helper rewrote a
 * 227 reply (the stream shrank by 2 bytes, OUT_SEQ set) sends the helper's sequence adjustments
 * in its record; a backup binds its own FTP helper to the synced control connection and takes
 * them, so after the takeover the server's next segment is shifted and the client's ACK shifted
 * back exactly as the master would have done.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONN_F_OUT_SEQ } from '../../src/core/constants.js';
import { SyncBackup } from '../../src/sync/backup.js';
import { SyncMaster } from '../../src/sync/master.js';
import { decodeMessage } from '../../src/sync/wire.js';
import { destSpec, svcSpec } from '../helpers/ipvs.js';
import { ACK, PSH, SYN, dec, rsTcp4, tcp4 } from '../dataplane/packet/frames.js';
import { RS1, VIP, checksumErrors, makeLab } from '../dataplane/packet/lab.js';

function ftpDirector() {
  const lab = makeLab();
  const k = svcSpec(VIP, 21, { scheduler: 'rr' });
  lab.ipvs.addService(k);
  lab.ipvs.addDest(k, destSpec(RS1, 21));
  return lab;
}

const server = (seq: number, ack: number, payload?: string, flags = PSH | ACK) =>
  rsTcp4({ sport: 21, flags, seq, ack, payload });

describe('sync carries the FTP helper', () => {
  it("a backup continues the master's sequence adjustment after the takeover", () => {
    const a = ftpDirector();
    const sent: Buffer[] = [];
    const m = new SyncMaster(
      a.ipvs,
      { syncId: 0, maxlen: 1472, ports: 1 },
      (_i, b) => sent.push(b),
      { set: () => null, clear: () => {} },
    );
    a.ipvs.syncMaster = m;
    let c = 1000;
    let s = 9000;
    a.send('eth0', tcp4({ dport: 21, flags: SYN, seq: c++, ack: 0 }));
    a.send('eth1', server(s++, c, undefined, SYN | ACK));
    a.send('eth0', tcp4({ dport: 21, flags: ACK, seq: c, ack: s }));
    a.send('eth0', tcp4({ dport: 21, flags: PSH | ACK, seq: c, ack: s, payload: 'PASV\r\n' }));
    c += 6;
    const reply = '227 Entering Passive Mode (192,168,1,11,195,80).\r\n';
    const out = a.send('eth1', server(s, c, reply)).eth0[0]!;
    assert.equal(dec(out).payloadLength, reply.length - 2, 'the reply was rewritten to the VIP');
    s += reply.length;
    // the client's next segment (its ACK of the shortened reply) is synced with the deltas
    a.send('eth0', tcp4({ dport: 21, flags: ACK, seq: c, ack: s - 2 }));
    const h = a.ipvs.conns.inGet(2, 6, [0x0a000005], 40000, [0x0a000064], 21);
    assert.ok(a.ipvs.conns.flags(h) & CONN_F_OUT_SEQ);
    m.syncConn(h, a.ipvs.sysctl.sync_threshold[0]);
    a.clock.t += 2_000;
    m.runThreads();
    // the last record of the control connection (an earlier one, at the third packet, had no
    // adjustment yet)
    const recs = sent
      .flatMap((b) => decodeMessage(b, { syncId: 0 }).records)
      .filter((r) => r.vport === 21 && r.cport === 40000);
    const rec = recs[recs.length - 1]!;
    assert.ok(rec, 'the control connection was sent');
    assert.deepEqual(
      [rec.outSeq?.initSeq, rec.outSeq?.delta, rec.outSeq?.previousDelta],
      [9001 >>> 0, (-2 >>> 0) as number, 0],
      'the helper’s OUT adjustment on the wire',
    );

    // the backup: its own FTP helper, bound to the synced connection with the deltas
    const b = ftpDirector();
    for (const m2 of sent) new SyncBackup(b.ipvs, 0).receive(m2);
    const hb = b.ipvs.conns.inGet(2, 6, [0x0a000005], 40000, [0x0a000064], 21);
    assert.ok(hb >= 0, 'the backup holds the connection');
    assert.ok(b.engine.ftp.bound(hb), 'its FTP helper is bound to it');
    const next = b.send('eth1', server(s, c, '150 here it comes\r\n')).eth0[0]!;
    assert.equal(dec(next).tcpSeq, (s - 2) >>> 0, 'shifted by the delta, as on the master');
    assert.deepEqual(checksumErrors(next), []);
    const back = b.send('eth0', tcp4({ dport: 21, flags: ACK, seq: c, ack: s - 2 + 19 })).eth1[0]!;
    assert.equal(dec(back).tcpAck, (s + 19) >>> 0, "the client's ACK shifted back");
  });
});
