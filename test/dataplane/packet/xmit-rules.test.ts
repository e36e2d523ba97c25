/**
 * Transmitter and forwarding rules a packet capture shows (spec §4.5, §5.5; ip_vs_xmit.c,
 * ip_forward): no DNAT to a loopback address for packets from the network, no non-local route
 * for a loopback source, the MTU of a forwarded NAT reply checked before IPVS sees it, the
 * FORWARD ICMP hook idle on a standby, broadcast frames to a VIP left to the host, IPVS's hooks
 * only for a family with a service, and unreachable errors when there is no route (to the real
 * server, or for a packet in transit).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NF } from '../../../src/dataplane/packet/hooks.js';
import { PacketBuilder } from '../../../src/packet/index.js';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { CLIENT, CLIENT6, MAC, RS1, RS6, VIP, VIP6, makeLab, natLab } from './lab.js';
import { ACK, SYN, dec, dst, quoted, rsTcp4, src, tcp4, udp4 } from './frames.js';

function tcp6(o: { flags: number; dst?: string }): Buffer {
  return Buffer.from(
    PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv6({ src: CLIENT6, dst: o.dst ?? VIP6, hopLimit: 64 })
      .tcp({ srcPort: 40000, dstPort: 80, flags: o.flags, seq: 1000, ack: o.flags & ACK ? 1 : 0 })
      .build(),
  );
}

describe('transmitter rules', () => {
  it('NAT to 127.0.0.1 from the network: dropped, on the slow and the fast path', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec('127.0.0.1', 8080));
    const r = lab.send('eth0', tcp4());
    assert.deepEqual(
      [r.verdict, r.reason, r.eth0.length, r.eth1.length],
      [NF.STOLEN, 'loopback-dnat', 0, 0],
    );
    // the connection exists (it was made before the transmitter refused): the next segment
    // takes the fast path's lookup, which must refuse it too
    const f = lab.receive('eth0', tcp4({ flags: ACK, seq: 1001, ack: 1 }));
    assert.deepEqual([f.eth0.length, f.eth1.length], [0, 0]);
  });

  it('NAT to ::1 from the network: dropped', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec('::1', 8080));
    const r = lab.send('eth0', tcp6({ flags: SYN }));
    assert.deepEqual(
      [r.verdict, r.reason, r.eth0.length, r.eth1.length],
      [NF.STOLEN, 'loopback-dnat', 0, 0],
    );
  });

  it('NAT to 127.0.0.1 for the host’s own packet (LOCAL_OUT): accepted to the local stack', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec('127.0.0.1', 8080));
    const r = lab.output('eth0', tcp4({ src: '10.0.0.1' }).subarray(14));
    assert.deepEqual([r.verdict, r.eth0.length + r.eth1.length], [NF.ACCEPT, 0]);
  });

  it('a loopback source never leaves on a non-local route (crosses_local_route_boundary)', () => {
    const lab = natLab();
    const r = lab.output('eth0', tcp4({ src: '127.0.0.1' }).subarray(14));
    assert.deepEqual([r.verdict, r.eth0.length + r.eth1.length], [NF.STOLEN, 0]);
  });

  it('a NAT reply with DF above the client side’s MTU: fragmentation needed to the real server, quoting it as sent', () => {
    const lab = natLab();
    lab.send('eth0', tcp4());
    const before = lab.ipvs.listConns().find((c) => c.vport === 80)!;
    lab.eth0.mtu = 1000;
    const reply = rsTcp4({ flags: SYN | ACK, df: true, payload: 'x'.repeat(1100) });
    const r = lab.send('eth1', reply);
    assert.deepEqual(
      [r.verdict, r.reason, r.eth0.length, r.eth1.length],
      [NF.DROP, 'frag-needed', 0, 1],
    );
    const e = dec(r.eth1[0]!);
    assert.deepEqual(
      [src(e), dst(e), e.icmpType, e.icmpCode, e.icmpRest],
      ['192.168.1.1', RS1, 3, 4, 1000],
    );
    // ip_forward refuses it before the TTL decrement and before the FORWARD hook: the quote is
    // the real server's packet unchanged, and IPVS never saw it (no state change, no out stats)
    const q = quoted(r.eth1[0]!);
    assert.deepEqual([src(q), q.srcPort, dst(q), q.ttl], [RS1, 8080, CLIENT, 64]);
    const after = lab.ipvs.listConns().find((c) => c.vport === 80)!;
    assert.equal(after.state, before.state);
    assert.equal(lab.ipvs.total.outpkts, 0);
    // without DF it is SNATed and sent on as fragments
    const r2 = lab.send('eth1', rsTcp4({ flags: SYN | ACK, payload: 'x'.repeat(1100) }));
    assert.equal(r2.eth0.length, 2);
    assert.equal(src(dec(r2.eth0[0]!)), VIP);
  });

  it('IPv6: a NAT reply above the client side’s MTU gets packet too big (the MTU, at least 1280)', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec('2001:db8:1::11', 8080));
    lab.send('eth0', tcp6({ flags: SYN }));
    lab.eth0.mtu = 1300;
    const reply = Buffer.from(
      PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
        .ipv6({ src: '2001:db8:1::11', dst: CLIENT6, hopLimit: 64 })
        .tcp({ srcPort: 8080, dstPort: 40000, flags: SYN | ACK })
        .payload('x'.repeat(1300))
        .build(),
    );
    const r = lab.send('eth1', reply);
    assert.deepEqual(
      [r.verdict, r.reason, r.eth0.length, r.eth1.length],
      [NF.DROP, 'frag-needed', 0, 1],
    );
    const e = dec(r.eth1[0]!);
    assert.deepEqual([dst(e), e.icmpType, e.icmpRest], ['2001:db8:1::11', 2, 1300]);
  });

  it('no route to the real server: ICMPv6 address unreachable to the client, quoting its packet', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    // 2001:db8:2::/64 is neither connected nor routed (the lab has no IPv6 default route)
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec('2001:db8:2::11', 8080));
    const r = lab.send('eth0', tcp6({ flags: SYN }));
    assert.deepEqual(
      [r.verdict, r.reason, r.eth0.length, r.eth1.length],
      [NF.STOLEN, 'no-route', 1, 0],
    );
    const e = dec(r.eth0[0]!);
    assert.deepEqual([src(e), dst(e), e.icmpType, e.icmpCode], [VIP6, CLIENT6, 1, 3]);
    const q = quoted(r.eth0[0]!);
    assert.deepEqual([src(q), dst(q), q.dstPort], [CLIENT6, VIP6, 80]);
  });

  it('no route to an IPv6 tunnel endpoint for an IPv4 client: ICMP host unreachable (the packet’s family)', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec('2001:db8:2::11', 80, { af: 10, fwd: 2 }));
    const r = lab.send('eth0', tcp4());
    assert.deepEqual(
      [r.verdict, r.reason, r.eth0.length, r.eth1.length],
      [NF.STOLEN, 'no-route', 1, 0],
    );
    const e = dec(r.eth0[0]!);
    assert.deepEqual([src(e), dst(e), e.icmpType, e.icmpCode], [VIP, CLIENT, 3, 1]);
    assert.deepEqual([src(quoted(r.eth0[0]!)), dst(quoted(r.eth0[0]!))], [CLIENT, VIP]);
    // the connection was made before the transmitter failed, as in the kernel
    assert.equal(lab.ipvs.listConns().length, 1);
  });

  it('a packet in transit with no route: ICMPv6 no route to its sender, before IPVS sees it', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec(RS6, 8080));
    // a real server's packet to a client the director has no route to (no IPv6 default route)
    const stray = Buffer.from(
      PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
        .ipv6({ src: RS6, dst: '2001:db8:5::5', hopLimit: 1 })
        .tcp({ srcPort: 8080, dstPort: 40000, flags: SYN | ACK })
        .build(),
    );
    const r = lab.send('eth1', stray);
    assert.deepEqual(
      [r.verdict, r.reason, r.eth0.length, r.eth1.length],
      [NF.DROP, 'no-route', 0, 1],
    );
    // the route comes before the hop limit: unreachable, not time exceeded
    const e = dec(r.eth1[0]!);
    assert.deepEqual([src(e), dst(e), e.icmpType, e.icmpCode], ['2001:db8:1::1', RS6, 1, 0]);
  });

  it('a datagram to the VIP in a broadcast or multicast frame is left to the host (pkt_type ≠ PACKET_HOST)', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 53, { protocol: 17, scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 53, { protocol: 17 }), destSpec(RS1, 53));
    for (const dmac of ['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01']) {
      const r = lab.send('eth0', udp4({ dmac }));
      assert.deepEqual([r.verdict, r.eth1.length], [NF.ACCEPT, 0], dmac);
    }
    assert.equal(lab.ipvs.listConns().length, 0);
    // the same datagram to the director's MAC is IPVS's
    assert.equal(lab.send('eth0', udp4()).eth1.length, 1);
    assert.equal(lab.ipvs.listConns().length, 1);
  });

  it('the last IPv4 service deleted: IPv4 replies of its connections are left to the host (the family’s hooks go)', () => {
    const lab = natLab();
    lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
    lab.send('eth0', tcp4());
    const reply = (seq: number) => rsTcp4({ flags: ACK, seq, ack: 1001 });
    assert.equal(src(dec(lab.receive('eth1', reply(1)).eth0[0]!)), VIP, 'SNATed while it exists');
    lab.ipvs.delService(svcSpec(VIP, 80));
    // the connection stays in the table, but no IPv4 hook looks at it (slow and fast path): the
    // reply is the host's to forward as it is, never SNATed to the VIP
    assert.equal(lab.ipvs.listConns().length, 1);
    const outBefore = lab.ipvs.total.outpkts;
    const r = lab.send('eth1', reply(2));
    assert.deepEqual([r.verdict, r.eth0.length], [NF.ACCEPT, 0]);
    assert.equal(lab.receive('eth1', reply(3)).eth0.length, 0);
    assert.equal(lab.ipvs.total.outpkts, outBefore);
    // an IPv4 service again: its connections are looked at once more
    lab.ipvs.addService(svcSpec(VIP, 81, { scheduler: 'rr' }));
    assert.equal(src(dec(lab.send('eth1', reply(4)).eth0[0]!)), VIP);
  });

  it('a standby leaves ICMP errors in transit alone (ip_vs_forward_icmp checks backup_only)', () => {
    const lab = natLab();
    lab.send('eth0', tcp4());
    // an error in transit (to an address that is not the director's) about VIP:80 → client
    const quote = PacketBuilder.ipv4({ src: VIP, dst: CLIENT, ttl: 63 })
      .tcp({ srcPort: 80, dstPort: 40000, flags: SYN | ACK })
      .build()
      .subarray(0, 28);
    const err = () =>
      Buffer.from(
        PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
          .ipv4({ src: CLIENT, dst: '198.51.100.9' })
          .icmp({ type: 3, code: 3 })
          .payload(quote)
          .build(),
      );
    assert.equal(lab.send('eth0', err()).eth1.length, 1, 'a director NATs it to the real server');
    lab.ipvs.startDaemon({ state: 2, mcastIfn: 'eth0', syncId: 0 });
    lab.ipvs.setSysctl('backup_only', 1);
    assert.ok(lab.ipvs.standby);
    const r = lab.send('eth0', err());
    assert.deepEqual([r.verdict, r.eth1.length], [NF.ACCEPT, 0]);
  });
});
