/**
 * More packet fixtures: tunnel errors for GUE and GRE, fragments on the reply path, IPv6 DR and
 * tunnels, and packets the director itself sends (LOCAL_OUT).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NF } from '../../../src/dataplane/packet/hooks.js';
import { TraceRecorder } from '../../../src/dataplane/packet/trace.js';
import {
  PacketBuilder,
  PacketView,
  decodeIcmpInner,
  decodeTunnelInner,
} from '../../../src/packet/index.js';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { CLIENT, CLIENT6, MAC, RS1, RS2, RS6, VIP, VIP6, checksumErrors, makeLab } from './lab.js';
import { ACK, SYN, dec, dmac, dst, ipv4Sum, quoted, src, tcp4, udp4 } from './frames.js';

function tunnelError(kind: 'gue' | 'gre'): Buffer {
  const clientPkt = PacketBuilder.ipv4({ src: CLIENT, dst: VIP, df: true, ttl: 63 })
    .tcp({ srcPort: 40000, dstPort: 80, flags: ACK })
    .build();
  const b = PacketBuilder.ipv4({ src: '192.168.1.1', dst: RS2, df: true, ttl: 63 });
  const outer = (
    kind === 'gue'
      ? b.udp({ srcPort: 40000, dstPort: 6080, checksum: 0 }).gue({ protocol: 4 })
      : b.gre({})
  )
    .payload(clientPkt)
    .build();
  return Buffer.from(
    PacketBuilder.eth({ src: MAC.rs2, dst: MAC.eth1 })
      .ipv4({ src: '192.168.1.254', dst: '192.168.1.1' })
      .icmp({ type: 3, code: 4, rest: 1400 })
      .payload(outer.subarray(0, Math.min(outer.length, 100)))
      .build(),
  );
}

/** ICMP fragmentation needed (MTU `mtu`) from a router toward RS2 about our IPIP packet for client:40000 → VIP:`dport`. */
function ipipError(mtu: number, dport = 80): Buffer {
  const clientPkt = PacketBuilder.ipv4({ src: CLIENT, dst: VIP, df: true, ttl: 63 })
    .tcp({ srcPort: 40000, dstPort: dport, flags: ACK })
    .build();
  const outer = PacketBuilder.ipv4({ src: '192.168.1.1', dst: RS2, df: true, ttl: 63 })
    .payload(clientPkt)
    .build();
  outer[9] = 4; // IPIP
  ipv4Sum(Buffer.from(outer.buffer, outer.byteOffset, outer.length));
  return Buffer.from(
    PacketBuilder.eth({ src: MAC.rs2, dst: MAC.eth1 })
      .ipv4({ src: '192.168.1.254', dst: '192.168.1.1' })
      .icmp({ type: 3, code: 4, rest: mtu })
      .payload(outer.subarray(0, 68))
      .build(),
  );
}

/** The client's SYN from port 1234 to VIP6:80. */
const syn6 = (): Buffer =>
  Buffer.from(
    PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: VIP6 })
      .tcp({ srcPort: 1234, dstPort: 80, flags: SYN })
      .build(),
  );

describe('PacketEngine paths (2)', () => {
  for (const [kind, tunType, tunPort] of [
    ['gue', 1, 6080],
    ['gre', 2, 0],
  ] as const) {
    it(`relays fragmentation-needed about our ${kind.toUpperCase()} tunnel to the client`, () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS2, 80, { fwd: 2, tunType, tunPort }));
      lab.send('eth0', tcp4({ df: true }));
      const r = lab.send('eth1', tunnelError(kind));
      assert.equal(r.reason, 'consumed');
      assert.equal(r.eth0.length, 1);
      const o = dec(r.eth0[0]!);
      assert.deepEqual([o.icmpType, o.icmpCode, o.icmpRest & 0xffff, dst(o)], [3, 4, 1380, CLIENT]);
      assert.deepEqual(checksumErrors(r.eth0[0]!), []);
    });
  }

  it('a tunnel error about a client packet without DF is consumed, not relayed', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS2, 80, { fwd: 2 }));
    lab.send('eth0', tcp4());
    const clientPkt = PacketBuilder.ipv4({ src: CLIENT, dst: VIP, df: false })
      .tcp({ srcPort: 40000, dstPort: 80, flags: ACK })
      .build();
    const outer = PacketBuilder.ipv4({ src: '192.168.1.1', dst: RS2 }).payload(clientPkt).build();
    outer[9] = 4;
    const err = PacketBuilder.eth({ src: MAC.rs2, dst: MAC.eth1 })
      .ipv4({ src: '192.168.1.254', dst: '192.168.1.1' })
      .icmp({ type: 3, code: 4, rest: 1300 })
      .payload(outer.subarray(0, 68))
      .build();
    const r = lab.send('eth1', err);
    assert.deepEqual([r.reason, r.eth0.length], ['consumed', 0]);
  });

  it('reply fragments: gathered, SNATed whole, sent on as the fragments they came in', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 53, { protocol: 17, scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 53, { protocol: 17 }), destSpec(RS1, 53));
    lab.send('eth0', udp4({ payload: 'q' }));
    const first = udp4({
      src: RS1,
      dst: CLIENT,
      sport: 53,
      dport: 40000,
      smac: MAC.rs1,
      dmac: MAC.eth1,
      payload: 24,
      id: 9,
      mf: true,
    });
    first.writeUInt16BE(8 + 24 + 100, 14 + 20 + 4); // the UDP length of the whole datagram
    const later = Buffer.from(
      PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
        .ipv4({ src: RS1, dst: CLIENT, id: 9, fragOffset: 32, protocol: 17 } as never)
        .payload(100)
        .build(),
    );
    // the later one first: IPVS's out handler gathers both before it looks the reply up
    const b = lab.send('eth1', later);
    assert.deepEqual([b.reason, b.eth0.length], ['frag-held', 0]);
    const a = lab.send('eth1', first);
    assert.equal(a.eth0.length, 2);
    const [f1, f2] = a.eth0.map((f) => dec(f));
    assert.deepEqual(
      [src(f1!), f1!.srcPort, f1!.fragOffset, f1!.mf, f1!.ttl, src(f2!), f2!.fragOffset, f2!.mf],
      [VIP, 53, 0, true, 63, VIP, 32, false],
    );
    for (const f of a.eth0) assert.deepEqual(checksumErrors(f), []);
  });

  it('schedule_icmp: an ICMP error about an unknown connection schedules one for its quoted packet', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS1, 8080));
    const quote = PacketBuilder.ipv4({ src: VIP, dst: CLIENT })
      .tcp({ srcPort: 80, dstPort: 40000, flags: ACK })
      .build()
      .subarray(0, 28);
    const err = () =>
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP })
        .icmp({ type: 3, code: 3 })
        .payload(quote)
        .build();
    assert.deepEqual(
      [lab.send('eth0', err()).verdict, lab.ipvs.conns.count],
      [NF.ACCEPT, 0],
      'off: passed',
    );
    lab.ipvs.sysctl.schedule_icmp = 1;
    const r = lab.send('eth0', err());
    assert.equal(lab.ipvs.conns.count, 1);
    const c = lab.ipvs.listConns()[0]!;
    assert.deepEqual([c.caddr, c.cport, c.vaddr, c.vport, c.daddr], [CLIENT, 40000, VIP, 80, RS1]);
    assert.equal(dst(dec(r.eth1[0]!)), RS1);
    assert.deepEqual(checksumErrors(r.eth1[0]!), []);
  });

  it('AH / ESP follow the IKE (UDP 500) connection between the same hosts, both ways', () => {
    const lab = makeLab();
    const k = svcSpec(VIP, 500, { protocol: 17, scheduler: 'rr', flags: 1, timeout: 600 });
    lab.ipvs.addService(k);
    lab.ipvs.addDest(k, destSpec(RS1, 500));
    const esp = (from: string, to: string, smac: string, dmac: string) => {
      const f = Buffer.from(
        PacketBuilder.eth({ src: smac, dst: dmac })
          .ipv4({ src: from, dst: to })
          .payload(Buffer.from('0000100100000001deadbeefdeadbeef', 'hex'))
          .build(),
      );
      f[14 + 9] = 50;
      ipv4Sum(f);
      return f;
    };
    assert.equal(
      lab.send('eth0', esp(CLIENT, VIP, MAC.client, MAC.eth0)).verdict,
      NF.ACCEPT,
      'no IKE connection: passed',
    );
    lab.send('eth0', udp4({ sport: 500, dport: 500, payload: 'ike' }));
    const r = lab.send('eth0', esp(CLIENT, VIP, MAC.client, MAC.eth0));
    assert.equal(r.eth1.length, 1);
    const o = dec(r.eth1[0]!);
    assert.deepEqual([dst(o), o.protocol], [RS1, 50]);
    assert.deepEqual(
      r.eth1[0]!.subarray(34),
      esp(CLIENT, VIP, MAC.client, MAC.eth0).subarray(34),
      'payload untouched',
    );
    assert.deepEqual(checksumErrors(r.eth1[0]!), []);
    const back = lab.send('eth1', esp(RS1, CLIENT, MAC.rs1, MAC.eth1));
    assert.deepEqual([src(dec(back.eth0[0]!)), dmac(back.eth0[0]!)], [VIP, MAC.client]);
  });

  it('ICMP errors quoting AH / ESP follow the IKE connection: NATed both ways, SPI untouched', () => {
    const lab = makeLab();
    const k = svcSpec(VIP, 500, { protocol: 17, scheduler: 'rr', flags: 1, timeout: 600 });
    lab.ipvs.addService(k);
    lab.ipvs.addDest(k, destSpec(RS1, 500));
    const quote = (from: string, to: string) =>
      PacketBuilder.ipv4({ src: from, dst: to, protocol: 50 })
        .payload(Buffer.from('00001001000000010000', 'hex'))
        .build()
        .subarray(0, 28);
    const error = (from: string, to: string, q: Uint8Array, smac: string, dmac: string) =>
      Buffer.from(
        PacketBuilder.eth({ src: smac, dst: dmac })
          .ipv4({ src: from, dst: to })
          .icmp({ type: 3, code: 4, rest: 1400 })
          .payload(q)
          .build(),
      );
    const fromClient = () => error(CLIENT, VIP, quote(VIP, CLIENT), MAC.client, MAC.eth0);
    assert.deepEqual(lab.send('eth0', fromClient()).eth1.length, 0, 'no IKE connection: passed');
    lab.send('eth0', udp4({ sport: 500, dport: 500, payload: 'ike' }));
    const inPkts = lab.ipvs.total.snapshot().inpkts;
    const r = lab.send('eth0', fromClient());
    assert.equal(r.eth1.length, 1);
    const q = quoted(r.eth1[0]!);
    assert.deepEqual([dst(dec(r.eth1[0]!)), src(q), q.protocol], [RS1, RS1, 50]);
    assert.equal(Buffer.from(r.eth1[0]!).readUInt32BE(14 + 20 + 8 + 20), 0x1001, 'SPI untouched');
    assert.deepEqual(checksumErrors(r.eth1[0]!), []);
    assert.equal(lab.ipvs.total.snapshot().inpkts, inPkts + 1);
    const back = lab.send('eth1', error(RS1, CLIENT, quote(CLIENT, RS1), MAC.rs1, MAC.eth1));
    assert.equal(back.eth0.length, 1);
    assert.deepEqual([src(dec(back.eth0[0]!)), dst(quoted(back.eth0[0]!))], [VIP, VIP]);
    assert.deepEqual(checksumErrors(back.eth0[0]!), []);
  });

  it('ICMPv6: a real server error about a client packet is NATed back to the VIP', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec(RS6, 8080));
    lab.send('eth0', syn6());
    const quote = PacketBuilder.ipv6({ src: CLIENT6, dst: RS6, hopLimit: 63 })
      .tcp({ srcPort: 1234, dstPort: 8080, flags: SYN })
      .build()
      .subarray(0, 48);
    const err = PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
      .ipv6({ src: RS6, dst: CLIENT6 })
      .icmpv6({ type: 1, code: 4 })
      .payload(quote)
      .build();
    const r = lab.send('eth1', err);
    assert.equal(r.eth0.length, 1);
    const o = dec(r.eth0[0]!);
    const q = new PacketView();
    decodeIcmpInner(q, o);
    assert.deepEqual([src(o), dst(q), q.dstPort, src(q)], [VIP6, VIP6, 80, CLIENT6]);
    assert.deepEqual(checksumErrors(r.eth0[0]!), []);
  });

  it('ICMPv6: the host’s own error about a DR connection just goes (ip_vs_in_icmp_v6 at LOCAL_OUT)', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec(RS6, 80, { fwd: 3 }));
    lab.send('eth0', syn6());
    const inpkts = lab.ipvs.total.inpkts;
    const quote = PacketBuilder.ipv6({ src: VIP6, dst: CLIENT6 })
      .tcp({ srcPort: 80, dstPort: 1234, flags: SYN | ACK })
      .build()
      .subarray(0, 48);
    const e = Buffer.from(
      PacketBuilder.ipv6({ src: '2001:db8::1', dst: VIP6 })
        .icmpv6({ type: 1, code: 4 })
        .payload(quote)
        .build(),
    );
    const o = lab.output('eth0', e);
    assert.deepEqual([o.verdict, o.eth0.length + o.eth1.length], [NF.ACCEPT, 0]);
    assert.equal(lab.ipvs.total.inpkts, inpkts);
    // from the network, the same error is the connection's: sent on to the real server
    const r = lab.send('eth0', Buffer.concat([syn6().subarray(0, 14), e]));
    assert.deepEqual([r.eth1.length, dmac(r.eth1[0]!)], [1, MAC.rs1]);
    assert.equal(lab.ipvs.total.inpkts, inpkts + 1);
  });

  it('IPv6 DR and IPv6-in-IPv6 tunnelling', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec(RS6, 80, { fwd: 3 }));
    lab.ipvs.addService(svcSpec(VIP6, 81, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 81), destSpec(RS6, 81, { fwd: 2 }));
    const syn = (port: number) =>
      PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6, hopLimit: 64 })
        .tcp({ srcPort: 1234, dstPort: port, flags: SYN })
        .build();
    const d = lab.send('eth0', syn(80)).eth1[0]!;
    assert.deepEqual([dmac(d), dst(dec(d)), dec(d).ttl], [MAC.rs1, VIP6, 63]);
    assert.deepEqual(checksumErrors(d), []);
    const t = lab.send('eth0', syn(81)).eth1[0]!;
    const o = dec(t);
    assert.deepEqual([dst(o), src(o), o.protocol], [RS6, '2001:db8:1::1', 41]);
    const i = new PacketView();
    assert.equal(decodeTunnelInner(i, o), 0);
    assert.deepEqual([dst(i), i.dstPort, i.ttl], [VIP6, 81, 63]);
    assert.deepEqual(checksumErrors(t), []);
  });

  it('LOCAL_OUT: a local client connecting to a VIP is scheduled by the in handler at -98', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS1, 8080));
    const o = lab.output('eth1', tcp4({ src: '192.168.1.1', dst: VIP }).subarray(14));
    assert.equal(o.verdict, NF.STOLEN);
    const f = o.eth1[0]!;
    assert.deepEqual([dst(dec(f)), dec(f).dstPort, src(dec(f))], [RS1, 8080, '192.168.1.1']);
    // with no destination, no ICMP goes on the wire about the director's own packet
    lab.ipvs.addService(svcSpec(VIP, 81, { scheduler: 'rr' }));
    const o2 = lab.output('eth1', tcp4({ src: '192.168.1.1', dst: VIP, dport: 81 }).subarray(14));
    assert.deepEqual([o2.verdict, o2.eth0.length + o2.eth1.length], [NF.DROP, 0]);
  });

  it('the trace says when SCTP NAT recomputes the CRC32c: only when the port changes', () => {
    const lab = makeLab();
    const tr = new TraceRecorder();
    lab.engine.trace = tr;
    for (const [vport, rport] of [
      [3868, 3869],
      [2905, 2905],
    ] as const) {
      lab.ipvs.addService(svcSpec(VIP, vport, { protocol: 132, scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, vport, { protocol: 132 }), destSpec(RS1, rport));
      tr.clear();
      const init = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP })
        .sctp({
          srcPort: 5000,
          dstPort: vport,
          chunks: [{ type: 1, flags: 0, value: new Uint8Array(16) }],
        })
        .build();
      assert.equal(lab.send('eth0', init).reason, 'forwarded');
      const note = vport === rport ? 'CRC32c unchanged' : 'CRC32c recomputed';
      assert.ok(
        tr.steps.some((x) => x.kind === 'rewrite' && x.text === `DNAT → ${RS1}:${rport} (${note})`),
        JSON.stringify(tr.steps),
      );
      tr.clear();
      const ack = PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
        .ipv4({ src: RS1, dst: CLIENT })
        .sctp({
          srcPort: rport,
          dstPort: 5000,
          chunks: [{ type: 2, flags: 0, value: new Uint8Array(16) }],
        })
        .build();
      assert.equal(lab.send('eth1', ack).reason, 'forwarded');
      assert.ok(
        tr.steps.some((x) => x.kind === 'rewrite' && x.text === `SNAT → ${VIP}:${vport} (${note})`),
        JSON.stringify(tr.steps),
      );
    }
  });
  describe('path MTU learned from errors about our tunnels (__ip_rt_update_pmtu)', () => {
    const tunLab = (...ports: [number, number][]) => {
      const lab = makeLab();
      for (const [port, fwd] of ports) {
        lab.ipvs.addService(svcSpec(VIP, port, { scheduler: 'rr' }));
        lab.ipvs.addDest(svcSpec(VIP, port), destSpec(RS2, port, { fwd }));
        lab.send('eth0', tcp4({ df: true, dport: port }));
      }
      return lab;
    };
    /** The MTU the client was told, or 'sent' when the frame went to the real server. */
    const told = (lab: ReturnType<typeof makeLab>, bytes: number, dport = 80): number | string => {
      const r = lab.send('eth0', tcp4({ df: true, flags: ACK, dport, payload: bytes - 40 }));
      if (r.reason === 'forwarded') return 'sent';
      assert.equal(r.reason, 'frag-needed');
      return dec(r.eth0[0]!).icmpRest & 0xffff;
    };
    const relayed = (lab: ReturnType<typeof makeLab>, mtu: number): number => {
      const r = lab.send('eth1', ipipError(mtu));
      assert.deepEqual([r.reason, r.eth0.length], ['consumed', 1]);
      return dec(r.eth0[0]!).icmpRest & 0xffff;
    };

    it('never below 552: a tiny or zero MTU is taken as 552 and locked', () => {
      for (const m of [0, 80, 500]) {
        const lab = tunLab([80, 2]);
        assert.equal(relayed(lab, m), 532, `reported ${m}`);
        assert.equal(told(lab, 100), 'sent', 'small packets still go through the tunnel');
        assert.equal(told(lab, 600), 532);
        assert.equal(relayed(lab, 300), 532, 'locked: a later report changes nothing');
      }
    });

    it('only ever goes down', () => {
      const lab = tunLab([80, 2]);
      assert.equal(relayed(lab, 1300), 1280);
      assert.equal(relayed(lab, 1400), 1280, 'a larger report is ignored');
      assert.equal(told(lab, 1340), 1280);
      assert.equal(relayed(lab, 1200), 1180);
      assert.equal(told(lab, 1200), 1180);
    });

    it('is kept for the address: every service and method toward that real server obeys it', () => {
      const lab = tunLab([80, 2], [443, 2], [8000, 3]);
      assert.equal(relayed(lab, 1300), 1280);
      assert.equal(told(lab, 1400, 80), 1280);
      assert.equal(told(lab, 1400, 443), 1280);
      assert.equal(told(lab, 1400, 8000), 1300, 'DR: the path MTU itself');
      assert.equal(told(lab, 1300, 8000), 'sent');
      // ten minutes later it has expired (ip_rt_mtu_expires)
      lab.clock.t += 600_000;
      assert.equal(told(lab, 1400, 80), 'sent');
      assert.equal(told(lab, 1500, 8000), 'sent');
    });

    it('an error is ours only when the newest tunnel destination for the address has its type', () => {
      // ip_vs_find_tunnel takes the first (af, addr, tun_port) match of any tunnel type
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS2, 80, { fwd: 2 }));
      lab.send('eth0', tcp4({ df: true }));
      lab.ipvs.addService(svcSpec(VIP, 443, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 443), destSpec(RS2, 443, { fwd: 2, tunType: 2 }));
      const r = lab.send('eth1', ipipError(1300));
      assert.notEqual(r.reason, 'consumed');
      assert.equal(r.eth0.length, 0, 'not relayed: the GRE destination was found first');
      assert.equal(told(lab, 1400), 'sent', 'nothing recorded');
    });
  });
});
