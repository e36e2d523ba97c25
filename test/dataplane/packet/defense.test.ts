/**
 * The defences of spec §3.5 measured under a SYN flood through the engine: drop_packet drops 1/rate
 * of the connection-opening packets, drop_entry removes half-open (SYN_RECV) connections, and
 * secure_tcp keeps a NAT connection out of ESTABLISHED until the server's SYN+ACK was seen.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { CLIENT, MAC, RS1, VIP, makeLab } from './lab.js';
import { ACK, SYN, tcp4 } from './frames.js';

const FLOOD = 5000;

function flood(lab: ReturnType<typeof makeLab>, n: number, base = 0): void {
  for (let i = 0; i < n; i++) {
    const a = base + i;
    const src = `172.${16 + ((a >>> 16) & 15)}.${(a >>> 8) & 255}.${a & 255}`;
    lab.send('eth0', tcp4({ src, sport: 1024 + (a % 60000), smac: MAC.router, flags: SYN }));
  }
}

function floodLab(sysctl: Record<string, number>) {
  const lab = makeLab({ maxConns: 65536 });
  const k = svcSpec(VIP, 80, { scheduler: 'wlc' });
  lab.ipvs.addService(k);
  const dest = lab.ipvs.addDest(k, destSpec(RS1, 8080));
  for (const [n, v] of Object.entries(sysctl)) lab.ipvs.setSysctl(n, v);
  return { lab, dest };
}

const measured: Record<string, unknown>[] = [];

describe('defences under a SYN flood', () => {
  it('no defence: every SYN creates a half-open connection', () => {
    const { lab, dest } = floodLab({});
    flood(lab, FLOOD);
    assert.equal(lab.ipvs.conns.count, FLOOD);
    assert.equal(dest.activeConns, FLOOD);
    measured.push({
      defence: 'none',
      syns: FLOOD,
      conns: lab.ipvs.conns.count,
      dropped: lab.engine.counters.snapshot()['sched-drop'] ?? 0,
    });
  });

  it('drop_packet = 3 (am_droprate 10): one SYN in ten is dropped, counted by reason', () => {
    const { lab } = floodLab({ am_droprate: 10, drop_packet: 3 });
    flood(lab, FLOOD);
    const dropped = lab.engine.counters.snapshot()['sched-drop'] ?? 0;
    assert.equal(dropped, FLOOD / 10);
    assert.equal(lab.ipvs.ops.counters.defenseDropPacket, FLOOD / 10);
    assert.equal(lab.ipvs.conns.count, FLOOD - FLOOD / 10);
    measured.push({
      defence: 'drop_packet=3 rate 10',
      syns: FLOOD,
      conns: lab.ipvs.conns.count,
      dropped,
    });
  });

  it('drop_packet only touches connection-opening packets', () => {
    const { lab } = floodLab({ am_droprate: 1, drop_packet: 3 });
    const r = lab.send('eth0', tcp4({ flags: SYN }));
    assert.equal(r.reason, 'sched-drop');
    lab.ipvs.setSysctl('drop_packet', 0);
    lab.send('eth0', tcp4({ flags: SYN }));
    lab.ipvs.setSysctl('drop_packet', 3);
    const ack = lab.send('eth0', tcp4({ flags: ACK }));
    assert.equal(ack.reason, 'forwarded');
  });

  it('drop_entry = 3: half-open connections are removed by the 1 s sweeps', () => {
    const { lab } = floodLab({ drop_entry: 3 });
    flood(lab, FLOOD);
    const before = lab.ipvs.conns.count;
    lab.advance(5_000);
    const after = lab.ipvs.conns.count;
    assert.ok(after < before, `${after} < ${before}`);
    assert.ok(lab.ipvs.ops.counters.defenseDropEntry > 0);
    measured.push({
      defence: 'drop_entry=3 (5 sweeps)',
      syns: FLOOD,
      conns: after,
      dropped: lab.ipvs.ops.counters.defenseDropEntry,
    });
  });

  // The spec's prose says "SYNACK → ES on client ACK", its table (and the kernel's tcp_states_dos)
  // says INPUT ack keeps SYNACK and the server's (OUTPUT) ACK establishes: the table wins.
  it('secure_tcp = 3: a client ACK does not establish a NAT connection before the server SYN+ACK', () => {
    const { lab, dest } = floodLab({ secure_tcp: 3 });
    lab.send('eth0', tcp4({ flags: SYN, seq: 1 }));
    lab.send('eth0', tcp4({ flags: ACK, seq: 2, ack: 1 }));
    assert.equal(lab.ipvs.listConns()[0]!.stateName, 'SYN_RECV');
    lab.send(
      'eth1',
      tcp4({
        src: RS1,
        dst: CLIENT,
        sport: 8080,
        dport: 40000,
        flags: SYN | ACK,
        smac: MAC.rs1,
        dmac: MAC.eth1,
      }),
    );
    assert.equal(lab.ipvs.listConns()[0]!.stateName, 'SYNACK');
    lab.send('eth0', tcp4({ flags: ACK, seq: 2, ack: 1 }));
    assert.equal(lab.ipvs.listConns()[0]!.stateName, 'SYNACK', 'INPUT ack keeps SYNACK (table)');
    lab.send(
      'eth1',
      tcp4({
        src: RS1,
        dst: CLIENT,
        sport: 8080,
        dport: 40000,
        flags: ACK,
        smac: MAC.rs1,
        dmac: MAC.eth1,
      }),
    );
    assert.equal(lab.ipvs.listConns()[0]!.stateName, 'ESTABLISHED');
    assert.equal(dest.activeConns, 1);
  });

  it('reports the measurements', () => {
    console.log('SYN flood through the engine:');
    console.table(measured);
  });
});
