/**
 * A connection opener that finds an existing connection (spec §1.6, §5.2 step 8): the
 * expire_nodest_conn rule for a quiescent destination applies whatever conn_reuse_mode says.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { RS1, RS2, VIP, makeLab } from './lab.js';
import { ACK, SYN, dec, dst, tcp4 } from './frames.js';

describe('connection openers on an existing connection', () => {
  function quiescedLab(reuse: number, nodest: number) {
    const lab = makeLab();
    lab.ipvs.sysctl.conn_reuse_mode = reuse;
    lab.ipvs.sysctl.expire_nodest_conn = nodest;
    const k = svcSpec(VIP, 80, { scheduler: 'rr' });
    lab.ipvs.addService(k);
    lab.ipvs.addDest(k, destSpec(RS1, 80));
    const first = dst(dec(lab.send('eth0', tcp4({ flags: SYN })).eth1[0]!));
    lab.ipvs.addDest(k, destSpec(RS2, 80));
    lab.ipvs.editDest(k, destSpec(RS1, 80, { weight: 0 }));
    return { lab, first };
  }

  it('expire_nodest_conn 1 reschedules a SYN of a weight-0 destination with conn_reuse_mode 0', () => {
    const { lab, first } = quiescedLab(0, 1);
    assert.equal(first, RS1);
    const again = lab.send('eth0', tcp4({ flags: SYN }));
    assert.equal(dst(dec(again.eth1[0]!)), RS2);
  });

  it('expire_nodest_conn 0 with conn_reuse_mode 0: the SYN follows the old connection', () => {
    const { lab } = quiescedLab(0, 0);
    const again = lab.send('eth0', tcp4({ flags: SYN }));
    assert.equal(dst(dec(again.eth1[0]!)), RS1);
  });

  it('a segment without SYN keeps following the weight-0 destination', () => {
    const { lab } = quiescedLab(0, 1);
    const ack = lab.send('eth0', tcp4({ flags: ACK }));
    assert.equal(dst(dec(ack.eth1[0]!)), RS1);
  });
});
