/**
 * The neighbour subsystem: ARP / NDP answers for VIPs, resolution with a queue, failure after the
 * probes, gratuitous ARP.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../../../src/core/addr.js';
import { PacketBuilder } from '../../../src/packet/index.js';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { CLIENT6, MAC, VIP, VIP6, checksumErrors, makeLab } from './lab.js';
import { ACK, SYN, dec, dmac, tcp4 } from './frames.js';

const RS9 = '192.168.1.99';
const MAC9 = '02:00:00:00:01:99';

function arpReply(spa: string, mac: string): Buffer {
  return Buffer.from(
    PacketBuilder.eth({ src: mac, dst: MAC.eth1 })
      .arp({ op: 2, sha: mac, spa, tha: MAC.eth1, tpa: '192.168.1.1' })
      .build(),
  );
}

describe('neighbours', () => {
  it('queues frames for an unresolved real server, asks once, sends them when the answer comes', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS9, 80, { fwd: 3 }));
    const r1 = lab.send('eth0', tcp4({ flags: SYN }));
    assert.equal(r1.eth1.length, 1, 'an ARP request');
    const req = dec(r1.eth1[0]!);
    assert.deepEqual(
      [req.arpOp, dmac(r1.eth1[0]!), req.arpTpa >>> 0],
      [1, 'ff:ff:ff:ff:ff:ff', parseIp(RS9)!.words[0]],
    );
    const r2 = lab.send('eth0', tcp4({ flags: ACK }));
    assert.equal(r2.eth1.length, 0, 'queued, no second request within a second');
    const r3 = lab.send('eth1', arpReply(RS9, MAC9));
    assert.equal(r3.eth1.length, 2, 'both queued frames go out');
    assert.ok(r3.eth1.every((f) => dmac(f) === MAC9));
    assert.deepEqual(
      r3.eth1.map((f) => dec(f).tcpFlags),
      [SYN, ACK],
    );
    for (const f of r3.eth1) assert.deepEqual(checksumErrors(f), []);
  });

  it('keeps at most unres_qlen frames per neighbour (oldest dropped) and fails after the probes', () => {
    const lab = makeLab({ neigh: { unresQlen: 2 } });
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS9, 80, { fwd: 3 }));
    for (let i = 0; i < 4; i++) lab.send('eth0', tcp4({ flags: SYN, seq: i, sport: 40000 + i }));
    assert.equal(lab.engine.neigh.dropped, 2);
    for (let i = 0; i < 4; i++) {
      lab.clock.t += 1000;
      lab.engine.tick();
    }
    assert.equal(lab.engine.neigh.dropped, 4, 'queue dropped when resolution failed');
    assert.ok(lab.engine.counters.arpRequests >= 3);
    assert.ok(lab.engine.neigh.describe().some((l) => l.includes('FAILED')));
  });

  it('announces a VIP with gratuitous ARP', () => {
    const lab = makeLab();
    lab.engine.announce(parseIp(VIP)!.words, 2, 'eth0');
    const f = Buffer.from(lab.io0.sent[0]!.data);
    const v = dec(f);
    assert.deepEqual(
      [dmac(f), v.arpOp, v.arpSpa >>> 0, v.arpTpa >>> 0],
      ['ff:ff:ff:ff:ff:ff', 1, 0x0a000064, 0x0a000064],
    );
  });

  it('answers IPv6 neighbour solicitations for a VIP', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.engine.refresh();
    const target = Buffer.alloc(16);
    const tw = parseIp(VIP6)!.words;
    for (let i = 0; i < 4; i++) target.writeUInt32BE(tw[i]!, 4 * i);
    const body = Buffer.concat([Buffer.alloc(4), target, Buffer.from([1, 1, 2, 0, 0, 0, 0, 0xc1])]);
    const ns = PacketBuilder.eth({ src: MAC.client, dst: '33:33:ff:00:01:00' })
      .ipv6({ src: CLIENT6, dst: 'ff02::1:ff00:100', hopLimit: 255 })
      .icmpv6({ type: 135, code: 0 })
      .payload(body.subarray(4))
      .build();
    const r = lab.send('eth0', ns);
    assert.equal(r.eth0.length, 1);
    const na = dec(r.eth0[0]!);
    assert.deepEqual([na.icmpType, dmac(r.eth0[0]!)], [136, MAC.client]);
    assert.deepEqual(checksumErrors(r.eth0[0]!), []);
  });
});
