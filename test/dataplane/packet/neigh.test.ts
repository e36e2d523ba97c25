/**
 * The neighbour subsystem: ARP / NDP answers for VIPs, resolution with a queue, failure after the
 * probes, gratuitous ARP.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../../../src/core/addr.js';
import { PacketBuilder } from '../../../src/packet/index.js';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { PcapIO } from '../../../src/dataplane/io/pcap.js';
import {
  CLIENT,
  CLIENT6,
  MAC,
  RS1,
  RS6,
  VIP,
  VIP6,
  checksumErrors,
  makeLab,
  natLab,
  v4,
} from './lab.js';
import { ACK, SYN, dec, dmac, dst, quoted, rsTcp4, src, tcp4 } from './frames.js';

const RS9 = '192.168.1.99';
const MAC9 = '02:00:00:00:01:99';

function arpReply(spa: string, mac: string): Buffer {
  return Buffer.from(
    PacketBuilder.eth({ src: mac, dst: MAC.eth1 })
      .arp({ op: 2, sha: mac, spa, tha: MAC.eth1, tpa: '192.168.1.1' })
      .build(),
  );
}

/** Adds interface eth2 (MAC 02:00:00:00:00:a2) to `lab`; returns the frame I/O it sends into. */
function eth2(
  lab: ReturnType<typeof makeLab>,
  spec: { addrs: string[]; linkLocal?: string },
): PcapIO {
  const io = new PcapIO(undefined, 'eth2', {});
  lab.engine.net.addIface({ name: 'eth2', mac: '02:00:00:00:00:a2', ...spec, io });
  return io;
}

/** A lab with the DR service VIP:80 → RS9 (not resolved yet), and RS9's cached MAC and state. */
function rs9Lab() {
  const lab = makeLab();
  lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
  lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS9, 80, { fwd: 3 }));
  const entry = (): string[] =>
    lab.engine.neigh
      .describe()
      .find((l) => l.startsWith(`${RS9} `))
      ?.split(' ') ?? [];
  return { lab, macOf: () => entry()[4], stateOf: () => entry().at(-1) };
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
    assert.equal(lab.engine.counters.neighDropped, 2);
    for (let i = 0; i < 4; i++) {
      lab.clock.t += 1000;
      lab.engine.tick();
    }
    assert.equal(lab.engine.counters.neighDropped, 4, 'queue dropped when resolution failed');
    // each frame is counted once, as it was when queued (forwarded): the later drops are not
    // reasons of their own
    const c = lab.engine.counters;
    const reasons = c.reason.reduce((a, b) => a + b, 0);
    assert.deepEqual([c.rxFrames, c.inForwarded, reasons], [4, 4, 0]);
    assert.ok(lab.engine.counters.arpRequests >= 3);
    assert.ok(lab.engine.neigh.describe().some((l) => l.includes('FAILED')));
  });

  it('holds a burst for a new neighbour (unres_qlen 101) and asks again at once after FAILED', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS9, 80, { fwd: 3 }));
    for (let i = 0; i < 10; i++) lab.send('eth0', tcp4({ flags: SYN, seq: i, sport: 40000 + i }));
    const r = lab.send('eth1', arpReply(RS9, MAC9));
    assert.equal(r.eth1.length, 10, 'every SYN of the burst goes out');
    assert.equal(lab.engine.counters.neighDropped, 0);
    // another neighbour that never answers: FAILED after the probes, then a new frame asks again
    const lab2 = makeLab();
    lab2.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab2.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS9, 80, { fwd: 3 }));
    lab2.send('eth0', tcp4({ flags: SYN }));
    for (let i = 0; i < 3; i++) {
      lab2.clock.t += 1000;
      lab2.engine.tick();
    }
    assert.ok(lab2.engine.neigh.describe().some((l) => l.includes('FAILED')));
    const again = lab2.send('eth0', tcp4({ flags: SYN, sport: 40001 }));
    assert.equal(again.eth1.length, 1, 'a broadcast ARP request at once (__neigh_event_send)');
    assert.equal(dmac(again.eth1[0]!), 'ff:ff:ff:ff:ff:ff');
  });

  it('tells the sender of each frame whose next hop never answered: host / address unreachable', () => {
    // arp_error_report / ndisc_error_report: one ICMP per queued frame, oldest first; for a NAT
    // connection IPVS's out handler turns it into one from the VIP about client -> VIP
    const run = (fwd: number, v6: boolean): { frames: Buffer[]; dropped: number } => {
      const lab = makeLab();
      const vip = v6 ? VIP6 : VIP;
      const rs = v6 ? '2001:db8:1::99' : RS9;
      lab.ipvs.addService(svcSpec(vip, 80, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(vip, 80), destSpec(rs, fwd === 0 ? 8080 : 80, { fwd }));
      for (let i = 0; i < 2; i++) {
        const f = v6
          ? PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
              .ipv6({ src: CLIENT6, dst: VIP6 })
              .tcp({ srcPort: 40000 + i, dstPort: 80, flags: SYN, seq: i })
              .build()
          : tcp4({ flags: SYN, sport: 40000 + i, seq: i });
        assert.equal(lab.send('eth0', f).eth0.length, 0, 'waiting, nothing back yet');
      }
      lab.io0.sent.length = 0;
      for (let i = 0; i < 4; i++) {
        lab.clock.t += 1000;
        lab.engine.tick();
      }
      return {
        frames: lab.io0.sent.map((f) => Buffer.from(f.data)),
        dropped: lab.engine.counters.neighDropped,
      };
    };
    const nat = run(0, false);
    assert.equal(nat.dropped, 2);
    assert.equal(nat.frames.length, 2, 'one error per queued frame');
    nat.frames.forEach((f, i) => {
      const v = dec(f);
      const q = quoted(f);
      assert.deepEqual(
        [dmac(f), v.icmpType, v.icmpCode, src(v), dst(v), src(q), dst(q), q.srcPort, q.dstPort],
        [MAC.client, 3, 1, VIP, CLIENT, CLIENT, VIP, 40000 + i, 80],
      );
      assert.deepEqual(checksumErrors(f), []);
    });
    const dr = run(3, false);
    const d = dec(dr.frames[0]!);
    assert.deepEqual(
      [dr.frames.length, d.icmpType, d.icmpCode, src(d), dst(quoted(dr.frames[0]!))],
      [2, 3, 1, '10.0.0.1', VIP],
      'DR: from the address toward the client, quoting the packet as it was',
    );
    const nat6 = run(0, true);
    const n6 = dec(nat6.frames[0]!);
    const q6 = quoted(nat6.frames[0]!);
    assert.deepEqual(
      [nat6.frames.length, n6.icmpType, n6.icmpCode, src(n6), dst(n6), dst(q6), q6.dstPort],
      [2, 1, 3, VIP6, CLIENT6, VIP6, 80],
    );
    for (const f of nat6.frames) assert.deepEqual(checksumErrors(f), []);
  });

  it('asks as the waiting frame’s source when that is the director’s (arp_announce 0): a NAT reply’s VIP', () => {
    const lab = natLab();
    const C = '10.0.0.6'; // on eth0's link, not yet resolved
    lab.send('eth0', tcp4({ src: C, flags: SYN }));
    const r = lab.send('eth1', rsTcp4({ dst: C, flags: SYN | ACK, seq: 5000, ack: 1001 }));
    assert.equal(r.eth0.length, 1, 'an ARP request for the client; the SYN-ACK waits');
    const a = dec(r.eth0[0]!);
    assert.deepEqual([a.arpOp, a.arpSpa >>> 0, a.arpTpa >>> 0], [1, v4(VIP), v4(C)]);
    // the retransmission asks with the newest waiting frame too
    lab.clock.t += 1000;
    lab.io0.sent.length = 0;
    lab.engine.tick();
    const again = lab.io0.sent.map((f) => dec(Buffer.from(f.data)));
    assert.deepEqual(
      again.map((v) => [v.arpOp, v.arpSpa >>> 0]),
      [[1, v4(VIP)]],
    );
    // a frame from a client (not the director's address) is asked for with the interface's
    const r2 = lab.send('eth0', tcp4({ src: C, sport: 40001, flags: SYN }));
    assert.equal(r2.eth1.length, 1);
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS9, 8080));
    lab.ipvs.delDest(svcSpec(VIP, 80), destSpec(RS1, 8080));
    const r3 = lab.send('eth0', tcp4({ src: C, sport: 40002, flags: SYN }));
    const q = dec(r3.eth1[0]!);
    assert.deepEqual([q.arpOp, q.arpSpa >>> 0, q.arpTpa >>> 0], [1, v4('192.168.1.1'), v4(RS9)]);
    // the answer releases the SYN-ACK from the VIP
    const done = lab.send(
      'eth0',
      Buffer.from(
        PacketBuilder.eth({ src: '02:00:00:00:00:06', dst: MAC.eth0 })
          .arp({ op: 2, sha: '02:00:00:00:00:06', spa: C, tha: MAC.eth0, tpa: VIP })
          .build(),
      ),
    );
    assert.deepEqual(
      done.eth0.map((f) => [dmac(f), src(dec(f)), dec(f).tcpFlags]),
      [['02:00:00:00:00:06', VIP, SYN | ACK]],
    );
  });

  it('asks from the interface address in the target’s subnet, else its first (inet_select_addr)', () => {
    const lab = makeLab();
    const io2 = eth2(lab, { addrs: ['172.16.0.1/24', '198.51.100.1/24'] });
    lab.engine.net.addRoute({ dst: '203.0.113.0/24', via: '172.16.0.254', dev: 'eth2' });
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec('198.51.100.50', 80, { fwd: 3 }));
    lab.send('eth0', tcp4({ flags: SYN }));
    lab.ipvs.addService(svcSpec(VIP, 81, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 81), destSpec('203.0.113.50', 80, { fwd: 3 }));
    lab.send('eth0', tcp4({ dport: 81, flags: SYN }));
    assert.deepEqual(
      io2.sent.map((f) => {
        const v = dec(Buffer.from(f.data));
        return [v.arpOp, v.arpSpa >>> 0, v.arpTpa >>> 0];
      }),
      [
        [1, v4('198.51.100.1'), v4('198.51.100.50')],
        // DR asks for the real server itself, past the route's gateway (IP_VS_RT_MODE_KNOWN_NH),
        // from the first address: neither subnet holds it
        [1, v4('172.16.0.1'), v4('203.0.113.50')],
      ],
    );
  });

  it('an interface without an IPv4 address asks from a VIP (inet_select_addr looks at lo first)', () => {
    const lab = makeLab();
    const io2 = eth2(lab, { addrs: [] });
    lab.engine.net.addRoute({ dst: '198.51.100.0/24', dev: 'eth2' });
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec('198.51.100.50', 80, { fwd: 3 }));
    lab.send('eth0', tcp4({ flags: SYN }));
    const a = dec(Buffer.from(io2.sent[0]!.data));
    assert.deepEqual([a.arpOp, a.arpSpa >>> 0], [1, v4(VIP)]);
  });

  it('solicits as the waiting frame’s IPv6 source when it is an address of the link (ndisc_solicit)', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec(RS6, 8080));
    const C6 = '2001:db8::6';
    const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: C6, dst: VIP6 })
      .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1000 })
      .build();
    assert.equal(lab.send('eth0', syn).eth1.length, 1);
    const reply = PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
      .ipv6({ src: RS6, dst: C6 })
      .tcp({ srcPort: 8080, dstPort: 40000, flags: SYN | ACK, seq: 5000, ack: 1001 })
      .build();
    const r = lab.send('eth1', reply);
    assert.equal(r.eth0.length, 1);
    const ns = dec(r.eth0[0]!);
    assert.deepEqual([ns.icmpType, src(ns), dst(ns)], [135, VIP6, 'ff02::1:ff00:6']);
    assert.deepEqual(checksumErrors(r.eth0[0]!), []);
    // a client's frame toward a new real server: the interface's own address
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec('2001:db8:1::99', 8080));
    lab.ipvs.delDest(svcSpec(VIP6, 80), destSpec(RS6, 8080));
    const syn2 = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: C6, dst: VIP6 })
      .tcp({ srcPort: 40001, dstPort: 80, flags: SYN, seq: 1000 })
      .build();
    const r2 = lab.send('eth0', syn2);
    const ns2 = dec(r2.eth1[0]!);
    assert.deepEqual([ns2.icmpType, src(ns2)], [135, '2001:db8:1::1']);
  });

  it('a sender heard in a request is STALE; used, it is probed by unicast after DELAY, then FAILED', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS9, 80, { fwd: 3 }));
    const req = PacketBuilder.eth({ src: MAC9, dst: 'ff:ff:ff:ff:ff:ff' })
      .arp({ op: 1, sha: MAC9, spa: RS9, tha: '00:00:00:00:00:00', tpa: '192.168.1.1' })
      .build();
    assert.equal(lab.send('eth1', req).eth1.length, 1, 'answered');
    assert.ok(
      lab.engine.neigh.describe().some((l) => l.startsWith(`${RS9} `) && l.endsWith('STALE')),
    );
    // an unsolicited reply from a stranger creates nothing (arp_accept 0)
    lab.send('eth1', arpReply('192.168.1.98', '02:00:00:00:01:98'));
    assert.ok(!lab.engine.neigh.describe().some((l) => l.startsWith('192.168.1.98 ')));
    // used: sent to the cached MAC at once, no ARP; DELAY for 5 s
    const r = lab.send('eth0', tcp4({ flags: SYN }));
    assert.deepEqual(r.eth1.map(dmac), [MAC9]);
    assert.ok(
      lab.engine.neigh.describe().some((l) => l.startsWith(`${RS9} `) && l.endsWith('DELAY')),
    );
    lab.clock.t += 5000;
    lab.engine.tick();
    const probe = lab.io1.sent.at(-1)!;
    const pv = dec(Buffer.from(probe.data));
    assert.deepEqual([dmac(Buffer.from(probe.data)), pv.arpOp], [MAC9, 1], 'a unicast probe');
    for (let i = 0; i < 3; i++) {
      lab.clock.t += 1000;
      lab.engine.tick();
    }
    assert.ok(
      lab.engine.neigh.describe().some((l) => l.startsWith(`${RS9} `) && l.endsWith('FAILED')),
    );
  });

  it('collects idle entries: every 15 s past 128 entries, and at once when the cache is full', () => {
    const arpFrom = (i: number): Buffer =>
      Buffer.from(
        PacketBuilder.eth({ src: MAC9, dst: 'ff:ff:ff:ff:ff:ff' })
          .arp({
            op: 1,
            sha: MAC9,
            spa: `192.168.1.${100 + i}`,
            tha: '00:00:00:00:00:00',
            tpa: '192.168.1.1',
          })
          .build(),
      );
    // neigh_periodic_work: senders heard (STALE), idle for 60 s, are gone once the cache holds
    // gc_thresh1 (128) entries or more; static ones stay
    for (const [n, left] of [
      [140, 0],
      [128, 0],
      [127, 127],
    ]) {
      const lab = makeLab();
      const statics = lab.engine.neigh.count;
      for (let i = 0; i < n! - statics; i++) lab.send('eth1', arpFrom(i));
      assert.equal(lab.engine.neigh.count, n);
      for (let t = 0; t < 80; t++) {
        lab.clock.t += 1000;
        lab.engine.tick();
      }
      assert.equal(lab.engine.neigh.count, left === 0 ? statics : left, `${n} entries`);
    }
    // neigh_forced_gc: a full cache (12 of 16 slots) makes room from entries not updated for 5 s
    const small = makeLab({ neigh: { capacity: 16 } });
    small.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    small.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS9, 80, { fwd: 3 }));
    for (let i = small.engine.neigh.count; i < 12; i++) small.send('eth1', arpFrom(i));
    assert.equal(small.engine.neigh.count, 12);
    const said: string[] = [];
    const warn = small.engine.neigh.warn!;
    small.engine.neigh.warn = (k, m) => {
      said.push(m);
      warn(k, m);
    };
    const now = small.send('eth0', tcp4({ flags: SYN }));
    assert.deepEqual([now.reason, now.eth1.length], ['neigh-drop', 0], 'all updated just now');
    // neigh_alloc's "neighbor table overflow!", counted as its table_fulls
    assert.equal(small.engine.counters.neighTableFull, 1);
    assert.deepEqual(said, [
      'packet: neighbour table overflow (12 entries, capacity 16): new next hop refused, its frames dropped (neighTableFull 1)',
    ]);
    small.clock.t += 6000;
    const later = small.send('eth0', tcp4({ flags: SYN, sport: 40001 }));
    assert.equal(later.eth1.length, 1, 'room made: the ARP request for the real server goes out');
    assert.equal(dec(later.eth1[0]!).arpTpa >>> 0, parseIp(RS9)!.words[0]);
    assert.ok(small.engine.neigh.count <= 8 + 1);
    // FAILED entries go at once, however recently they failed
    const failing = makeLab({ neigh: { capacity: 16 } });
    failing.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    const base = failing.engine.neigh.count;
    for (let i = 0; i < 12 - base; i++) {
      const rs = `192.168.1.${150 + i}`;
      failing.ipvs.addDest(svcSpec(VIP, 80), destSpec(rs, 80, { fwd: 3 }));
    }
    for (let i = 0; i < 12 - base; i++)
      failing.send('eth0', tcp4({ flags: SYN, sport: 41000 + i }));
    for (let t = 0; t < 3; t++) {
      failing.clock.t += 1000;
      failing.engine.tick();
    }
    assert.equal(failing.engine.neigh.count, 12);
    assert.ok(failing.engine.neigh.describe().some((l) => l.endsWith('FAILED')));
    failing.clock.t += 500;
    failing.send('eth1', arpFrom(90));
    assert.ok(
      failing.engine.neigh.describe().some((l) => l.startsWith('192.168.1.190 ')),
      'the new sender is learned',
    );
  });

  it('takes the first of several quick ARP replies (locktime), and a gratuitous one at once', () => {
    const { lab, macOf } = rs9Lab();
    const A = '02:00:00:00:0a:0a';
    const B = '02:00:00:00:0b:0b';
    lab.send('eth0', tcp4({ flags: SYN }));
    assert.deepEqual(lab.send('eth1', arpReply(RS9, A)).eth1.map(dmac), [A]);
    lab.clock.t += 10;
    lab.send('eth1', arpReply(RS9, B));
    assert.equal(macOf(), A, 'the second answer within a second is ignored');
    assert.deepEqual(lab.send('eth0', tcp4({ flags: ACK, seq: 1001 })).eth1.map(dmac), [A]);
    lab.clock.t += 1000;
    lab.send('eth1', arpReply(RS9, B));
    assert.equal(macOf(), B, 'past the locktime it replaces the address');
    // a gratuitous ARP (sender and target address the same) is taken at once
    const garp = Buffer.from(
      PacketBuilder.eth({ src: A, dst: 'ff:ff:ff:ff:ff:ff' })
        .arp({ op: 1, sha: A, spa: RS9, tha: '00:00:00:00:00:00', tpa: RS9 })
        .build(),
    );
    lab.clock.t += 10;
    lab.send('eth1', garp);
    assert.equal(macOf(), A);
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

  it('locktime counts from the last change, a timer’s too; a late answer revives a FAILED entry', () => {
    const { lab, macOf, stateOf } = rs9Lab();
    lab.send('eth0', tcp4({ flags: SYN }));
    lab.send('eth1', arpReply(RS9, '02:00:00:00:0a:0a'));
    // past its reachable time the entry is STALE to the kernel as of then: an answer with
    // another address 0.5 s later is ignored, one 1.5 s later taken
    lab.clock.t += 30_000 + 500;
    lab.send('eth1', arpReply(RS9, '02:00:00:00:0b:0b'));
    assert.equal(macOf(), '02:00:00:00:0a:0a');
    lab.clock.t += 1000;
    lab.send('eth1', arpReply(RS9, '02:00:00:00:0b:0b'));
    assert.equal(macOf(), '02:00:00:00:0b:0b');
    // a send moves a STALE entry to DELAY, a change too
    lab.clock.t += 60_000;
    lab.send('eth0', tcp4({ flags: ACK, seq: 1001 }));
    lab.clock.t += 200;
    lab.send('eth1', arpReply(RS9, '02:00:00:00:0c:0c'));
    assert.equal(macOf(), '02:00:00:00:0b:0b');
    // nobody answers the probes: FAILED, and kept (the collector takes it later), so an answer
    // seconds after still revives it
    for (let t = 0; t < 10; t++) {
      lab.clock.t += 1000;
      lab.engine.tick();
    }
    assert.equal(stateOf(), 'FAILED');
    lab.clock.t += 5000;
    lab.engine.tick();
    lab.send('eth1', arpReply(RS9, '02:00:00:00:0d:0d'));
    assert.equal(stateOf(), 'REACHABLE');
  });

  it('ignores ARP from martian senders; answers a subnet broadcast sender without learning it', () => {
    const lab = makeLab();
    const req = (spa: string): Buffer =>
      Buffer.from(
        PacketBuilder.eth({ src: MAC9, dst: 'ff:ff:ff:ff:ff:ff' })
          .arp({ op: 1, sha: MAC9, spa, tha: '00:00:00:00:00:00', tpa: '192.168.1.1' })
          .build(),
      );
    const before = lab.engine.neigh.count;
    for (const spa of ['127.0.0.2', '224.0.0.5', '255.255.255.255', '0.1.2.3', '10.0.0.1']) {
      assert.deepEqual(lab.send('eth1', req(spa)).eth1, [], spa);
    }
    const bc = lab.send('eth1', req('192.168.1.255'));
    assert.equal(dec(bc.eth1[0]!).arpOp, 2);
    assert.equal(lab.engine.neigh.count, before, 'none learned');
  });

  it('IPv6: solicits from the link-local address; answers NS for the link’s own addresses only', () => {
    const lab = makeLab();
    const io2 = eth2(lab, { addrs: ['2001:db8:2::1/64'], linkLocal: 'fe80::a2' });
    assert.throws(
      () =>
        lab.engine.net.addIface({
          name: 'eth3',
          mac: '02:00:00:00:00:a3',
          linkLocal: '2001:db8::9',
        }),
      /not an IPv6 link-local address/,
    );
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec('2001:db8:2::99', 80, { fwd: 3 }));
    lab.send(
      'eth0',
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6 })
        .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
        .build(),
    );
    const ns = io2.sent.map((f) => dec(Buffer.from(f.data)));
    assert.deepEqual(
      ns.map((v) => [v.icmpType, src(v)]),
      [[135, 'fe80::a2']],
    );
    const solicit = (target: string, dstIp: string, dstMac: string): Buffer => {
      const t = Buffer.alloc(16);
      parseIp(target)!.words.forEach((w, i) => t.writeUInt32BE(w, 4 * i));
      return Buffer.from(
        PacketBuilder.eth({ src: '02:00:00:00:02:02', dst: dstMac })
          .ipv6({ src: '2001:db8:2::2', dst: dstIp, hopLimit: 255 })
          .icmpv6({ type: 135, code: 0 })
          .payload(Buffer.concat([t, Buffer.from([1, 1, 2, 0, 0, 0, 2, 2])]))
          .build(),
      );
    };
    const run = (target: string, group: string, gmac: string): string[] => {
      io2.sent.length = 0;
      const f = solicit(target, group, gmac);
      lab.engine.input(lab.engine.net.iface('eth2'), f, 0, f.length);
      lab.engine.tx.commit();
      return io2.sent.map((x) => {
        const v = dec(Buffer.from(x.data));
        return `${v.icmpType} ${src(v)}`;
      });
    };
    assert.deepEqual(run('fe80::a2', 'ff02::1:ff00:a2', '33:33:ff:00:00:a2'), ['136 fe80::a2']);
    assert.deepEqual(run('2001:db8:2::1', 'ff02::1:ff00:1', '33:33:ff:00:00:01'), [
      '136 2001:db8:2::1',
    ]);
    // eth0's address is not on this link (ndisc_recv_ns looks it up on the receiving device)
    assert.deepEqual(run('2001:db8::1', 'ff02::1:ff00:1', '33:33:ff:00:00:01'), []);
  });

  it('a unicast NS without a link-layer option is answered once the solicitor is resolved', () => {
    const lab = makeLab();
    const words = (a: string): Buffer => {
      const b = Buffer.alloc(16);
      parseIp(a)!.words.forEach((w, i) => b.writeUInt32BE(w, 4 * i));
      return b;
    };
    const peer = '2001:db8::7';
    const peerMac = '02:00:00:00:00:77';
    const ns = PacketBuilder.eth({ src: peerMac, dst: MAC.eth0 })
      .ipv6({ src: peer, dst: '2001:db8::1', hopLimit: 255 })
      .icmpv6({ type: 135, code: 0 })
      .payload(words('2001:db8::1'))
      .build();
    // ndisc_recv_ns creates the entry and sends the NA through it: first a solicitation
    const r = lab.send('eth0', ns);
    assert.deepEqual(
      r.eth0.map((f) => [dec(f).icmpType, src(dec(f)), dst(dec(f))]),
      [[135, '2001:db8::1', 'ff02::1:ff00:7']],
    );
    const na = PacketBuilder.eth({ src: peerMac, dst: MAC.eth0 })
      .ipv6({ src: peer, dst: '2001:db8::1', hopLimit: 255 })
      .icmpv6({ type: 136, code: 0, rest: 0x60000000 })
      .payload(Buffer.concat([words(peer), Buffer.from([2, 1, 2, 0, 0, 0, 0, 0x77])]))
      .build();
    const back = lab.send('eth0', na);
    assert.deepEqual(
      back.eth0.map((f) => [dmac(f), dec(f).icmpType, src(dec(f)), dst(dec(f))]),
      [[peerMac, 136, '2001:db8::1', peer]],
    );
    assert.deepEqual(checksumErrors(back.eth0[0]!), []);
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

  it('answers NS as ndisc_recv_ns: flags by destination, DAD to all nodes, nothing for bad ones', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.engine.refresh();
    const tw = parseIp(VIP6)!.words;
    const target = Buffer.alloc(16);
    for (let i = 0; i < 4; i++) target.writeUInt32BE(tw[i]!, 4 * i);
    const sllao = Buffer.from([1, 1, 2, 0, 0, 0, 0, 0xc1]);
    const ns = (o: {
      src: string;
      dst: string;
      dmac: string;
      opt?: boolean;
      code?: number;
      bad?: boolean;
    }) => {
      const f = Buffer.from(
        PacketBuilder.eth({ src: MAC.client, dst: o.dmac })
          .ipv6({ src: o.src, dst: o.dst, hopLimit: 255 })
          .icmpv6({ type: 135, code: o.code ?? 0 })
          .payload(Buffer.concat([target, o.opt === false ? Buffer.alloc(0) : sllao]))
          .build(),
      );
      if (o.bad) f[f.length - 1]! ^= 0xff;
      return lab.send('eth0', f).eth0;
    };
    // unicast NS: solicited only, no target address option (24 bytes)
    const uni = ns({ src: CLIENT6, dst: VIP6, dmac: MAC.eth0 });
    assert.equal(uni.length, 1);
    const u = dec(uni[0]!);
    assert.deepEqual([u.l4Length, uni[0]![u.l4Offset + 4]], [24, 0x40]);
    // DAD: to ff02::1 at its multicast MAC, override set
    const dad = ns({ src: '::', dst: 'ff02::1:ff00:100', dmac: '33:33:ff:00:01:00', opt: false });
    assert.equal(dad.length, 1);
    const d = dec(dad[0]!);
    assert.deepEqual(
      [dmac(dad[0]!), d.dst[0], d.dst[3], dad[0]![d.l4Offset + 4]],
      ['33:33:00:00:00:01', 0xff020000, 1, 0x20],
    );
    assert.deepEqual(checksumErrors(dad[0]!), []);
    // refused: DAD with an address option, DAD not to the solicited-node group, a bad checksum,
    // a nonzero code
    assert.equal(ns({ src: '::', dst: 'ff02::1:ff00:100', dmac: '33:33:ff:00:01:00' }).length, 0);
    assert.equal(
      ns({ src: '::', dst: 'ff02::1', dmac: '33:33:00:00:00:01', opt: false }).length,
      0,
    );
    assert.equal(ns({ src: CLIENT6, dst: VIP6, dmac: MAC.eth0, bad: true }).length, 0);
    assert.equal(ns({ src: CLIENT6, dst: VIP6, dmac: MAC.eth0, code: 1 }).length, 0);
  });
});
