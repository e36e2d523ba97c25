/**
 * Frame-level details where the packet path follows mainline IPVS (ip_vs_core.c, ip_vs_xmit.c,
 * ip_vs_proto_udp.c / _sctp.c) and the host's IPv4 input and `icmp_send`: checksum rules of the
 * NAT rewrites, the tunnel header's DF and identification, the tunnel MTU floor, the "leave" path
 * for ICMP-embedded packets and cache_bypass, and the errors the director never sends.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONN_F_FWD_MASK, FWD_BYPASS, SVC_F_ONEPACKET } from '../../../src/core/constants.js';
import { NF } from '../../../src/dataplane/packet/hooks.js';
import { IPPROTO, PacketBuilder, sctpChecksumOk } from '../../../src/packet/index.js';
import { destSpec, fwmSpec, svcSpec } from '../../helpers/ipvs.js';
import {
  CLIENT,
  CLIENT6,
  MAC,
  RS1,
  RS2,
  RS6,
  VIP,
  VIP6,
  checksumErrors,
  makeLab,
  natLab,
} from './lab.js';
import { ACK, SYN, dec, dst, quoted, src, tcp4, udp4 } from './frames.js';

type Lab = ReturnType<typeof makeLab>;

function udpLab(): Lab {
  const lab = makeLab();
  lab.ipvs.addService(svcSpec(VIP, 53, { protocol: 17, scheduler: 'rr' }));
  lab.ipvs.addDest(svcSpec(VIP, 53, { protocol: 17 }), destSpec(RS1, 5353));
  return lab;
}

function tunLab(o: { df: boolean; pmtu: number }): Buffer {
  const lab = makeLab();
  lab.ipvs.sysctl.pmtu_disc = o.pmtu;
  lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
  lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS2, 80, { fwd: 2 }));
  const r = lab.send('eth0', tcp4({ df: o.df }));
  assert.equal(r.eth1.length, 1);
  return r.eth1[0]!;
}

describe('packet path against mainline IPVS', () => {
  describe('UDP without a checksum (spec §4.2)', () => {
    it('keeps none on the fast path too, both ways', () => {
      const lab = udpLab();
      lab.send('eth0', udp4({ checksum: 0, payload: 'first' }));
      // the connection exists: the next datagram may take the fast path (it must decline)
      const i = lab.receive('eth0', udp4({ checksum: 0, payload: 'second' }));
      assert.equal(i.eth1.length, 1);
      assert.deepEqual([dst(dec(i.eth1[0]!)), dec(i.eth1[0]!).l4Checksum], [RS1, 0]);
      assert.deepEqual(checksumErrors(i.eth1[0]!), []);
      const o = lab.receive(
        'eth1',
        udp4({
          src: RS1,
          dst: CLIENT,
          sport: 5353,
          dport: 40000,
          smac: MAC.rs1,
          dmac: MAC.eth1,
          checksum: 0,
          payload: 'answer',
        }),
      );
      assert.equal(o.eth0.length, 1);
      const v = dec(o.eth0[0]!);
      assert.deepEqual([src(v), v.srcPort, v.l4Checksum], [VIP, 53, 0]);
      assert.deepEqual(checksumErrors(o.eth0[0]!), []);
    });
  });

  describe('SCTP (sctp_dnat_handler)', () => {
    it('leaves the CRC32c alone when the port does not change', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 5000, { protocol: 132, scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 5000, { protocol: 132 }), destSpec(RS1, 5000));
      const f = Buffer.from(
        PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
          .ipv4({ src: CLIENT, dst: VIP })
          .sctp({
            srcPort: 40000,
            dstPort: 5000,
            vtag: 0,
            chunks: [{ type: 1, value: Buffer.alloc(16) }],
            corruptChecksum: true,
          })
          .build(),
      );
      const r = lab.send('eth0', f);
      assert.equal(r.eth1.length, 1);
      const o = dec(r.eth1[0]!);
      assert.ok(!sctpChecksumOk(r.eth1[0]!, o.l4Offset, o.l4Length), 'not recomputed');
      assert.equal(r.eth1[0]!.readUInt32BE(o.l4Offset + 8), f.readUInt32BE(14 + 20 + 8));
    });
  });

  describe('SCTP chunks (sctp_conn_schedule, set_sctp_state)', () => {
    type Chunk = { type: number; value?: Uint8Array };
    const sctpLab = () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 5000, { protocol: 132, scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 5000, { protocol: 132 }), destSpec(RS1, 5000));
      return lab;
    };
    const sctp4 = (chunks: Chunk[], sport = 40000) =>
      Buffer.from(
        PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
          .ipv4({ src: CLIENT, dst: VIP })
          .sctp({ srcPort: sport, dstPort: 5000, vtag: 0, chunks })
          .build(),
      );
    const state = (lab: Lab) => lab.ipvs.listConns().map((c) => `${c.stateName} ${c.expiresMs}`);

    it('forwards a packet without a chunk or with a malformed one on a connection, state unchanged', () => {
      const lab = sctpLab();
      assert.equal(lab.send('eth0', sctp4([{ type: 1, value: Buffer.alloc(16) }])).eth1.length, 1);
      assert.deepEqual(state(lab), ['INIT1 4000']);
      lab.advance(1000);
      // the 12-byte header alone: no event, no re-arm with another timeout
      const bare = lab.send('eth0', sctp4([]));
      assert.deepEqual([bare.reason, bare.eth1.length], ['forwarded', 1]);
      assert.equal(dst(dec(bare.eth1[0]!)), RS1);
      assert.deepEqual(state(lab), ['INIT1 4000']);
      // a DATA chunk whose length runs past the packet still raises its event
      const f = sctp4([{ type: 0, value: Buffer.alloc(8) }]);
      f.writeUInt16BE(200, 14 + 20 + 12 + 2);
      const bad = lab.send('eth0', f);
      assert.deepEqual([bad.reason, bad.eth1.length], ['forwarded', 1]);
      assert.equal(lab.ipvs.listConns()[0]!.stateName, 'INIT1');
    });

    it('drops a packet without a chunk that no connection takes; a malformed INIT opens one', () => {
      const lab = sctpLab();
      const bare = lab.send('eth0', sctp4([]));
      assert.deepEqual([bare.verdict, bare.eth1.length], [NF.DROP, 0]);
      assert.equal(lab.ipvs.listConns().length, 0);
      // the kernel reads the chunk type only: an INIT with a length under 4 is scheduled
      const f = sctp4([{ type: 1, value: Buffer.alloc(16) }], 40001);
      f.writeUInt16BE(2, 14 + 20 + 12 + 2);
      assert.equal(lab.send('eth0', f).eth1.length, 1);
      assert.deepEqual(state(lab), ['INIT1 4000']);
    });
  });

  describe('tunnel headers (ip_vs_tunnel_xmit)', () => {
    it('an outer header with DF carries identification 0 (ip_select_ident)', () => {
      const o = dec(tunLab({ df: true, pmtu: 1 }));
      assert.deepEqual([o.protocol, o.df, o.ipId], [IPPROTO.IPIP, true, 0]);
    });

    it('copies a clear DF: the outer header has none either', () => {
      const o = dec(tunLab({ df: false, pmtu: 1 }));
      assert.deepEqual([o.protocol, o.df], [IPPROTO.IPIP, false]);
    });

    it('IPv6 in IPv4: DF clear even with pmtu_disc (an IPv6 packet has no DF to copy)', () => {
      const lab = makeLab();
      lab.ipvs.sysctl.pmtu_disc = 1;
      lab.ipvs.addService(svcSpec(VIP6, 80, { af: 10, scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP6, 80, { af: 10 }), destSpec(RS2, 80, { af: 2, fwd: 2 }));
      const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6, hopLimit: 64 })
        .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
        .build();
      const r = lab.send('eth0', syn);
      assert.equal(r.eth1.length, 1);
      const o = dec(r.eth1[0]!);
      assert.deepEqual([o.af, o.protocol, o.df], [2, IPPROTO.IPV6, false]);
    });

    it('an IPv6 outer header needs a tunnel MTU of 1280 (__ip_vs_get_out_rt_v6)', () => {
      const lab = makeLab();
      lab.engine.net.addRoute({ dst: `${RS6}/128`, dev: 'eth1', mtu: 1300 });
      lab.ipvs.addService(svcSpec(VIP6, 80, { af: 10, scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP6, 80, { af: 10 }), destSpec(RS6, 80, { fwd: 2 }));
      const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6, hopLimit: 64 })
        .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
        .build();
      const r = lab.send('eth0', syn);
      assert.deepEqual([r.verdict, r.reason, r.eth1.length], [NF.STOLEN, 'tunnel-mtu', 0]);
    });
  });

  describe('ip_vs_leave', () => {
    it('an ICMP error scheduled by schedule_icmp for a port-21 service is dropped, not passed', () => {
      const lab = makeLab();
      lab.ipvs.sysctl.schedule_icmp = 1;
      lab.ipvs.addService(svcSpec(VIP, 21, { scheduler: 'rr' }));
      // the client says the VIP's reply from port 21 was unreachable; no destination exists
      const quote = PacketBuilder.ipv4({ src: VIP, dst: CLIENT, ttl: 63 })
        .tcp({ srcPort: 21, dstPort: 40000, flags: ACK })
        .build()
        .subarray(0, 28);
      const err = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP })
        .icmp({ type: 3, code: 3 })
        .payload(quote)
        .build();
      const r = lab.send('eth0', err);
      assert.deepEqual([r.verdict, r.eth0.length, r.eth1.length], [NF.DROP, 0, 0]);
    });

    it('the SIP engine looks for the Call-ID up to the datagram’s end, past a short UDP length', () => {
      // ip_vs_sip_fill_param reads skb->len after the UDP header; it never reads the UDP length
      const lab = makeLab();
      const k = svcSpec(VIP, 5060, {
        protocol: 17,
        scheduler: 'rr',
        flags: 1,
        timeout: 60,
        pe: 'sip',
      });
      lab.ipvs.addService(k);
      lab.ipvs.addDest(k, destSpec(RS1, 5060));
      const f = udp4({
        sport: 5060,
        dport: 5060,
        checksum: 0,
        payload: 'INVITE sip:b@x SIP/2.0\r\nCall-ID: abc\r\n',
      });
      const ulen = 14 + 20 + 4;
      f.writeUInt16BE(f.readUInt16BE(ulen) - 14, ulen); // the Call-ID line lies past the UDP length
      const r = lab.send('eth0', f);
      assert.equal(r.eth1.length, 1, 'scheduled and forwarded');
      assert.deepEqual(
        lab.ipvs
          .listConns()
          .filter((c) => c.peData)
          .map((c) => [c.peName, c.peData]),
        [['sip', 'abc']],
      );
    });

    it('cache_bypass to a local IPv6 address: an entry, no port unreachable, the packet dropped', () => {
      // ip_vs_addr_is_unicast looks only at an IPv6 address's type, so the director's own address
      // qualifies; ip_vs_bypass_xmit_v6 then finds no non-local route and drops it silently
      for (const [to, local] of [
        ['2001:db8::1', true],
        ['::ffff:10.0.0.1', false],
      ] as const) {
        const lab = makeLab();
        lab.ipvs.sysctl.cache_bypass = 1;
        lab.engine.classifier.set([{ dst: `${to}/128`, mark: 9 }]);
        lab.ipvs.addService(fwmSpec(9, { af: 10, scheduler: 'rr', netmask: 128 }));
        const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
          .ipv6({ src: CLIENT6, dst: to, hopLimit: 64 })
          .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
          .build();
        const r = lab.send('eth0', Buffer.from(syn));
        const conns = lab.ipvs.listConns();
        if (local) {
          assert.deepEqual([r.eth0.length, r.eth1.length], [0, 0], 'nothing sent');
          assert.deepEqual(
            conns.map((c) => [c.flags & CONN_F_FWD_MASK, c.stateName]),
            [[FWD_BYPASS, 'SYN_RECV']],
          );
        } else {
          // a v4-mapped address is not unicast to IPv6: the port unreachable of no destination
          assert.equal(conns.length, 0);
          assert.equal(dec(r.eth0[0]!).icmpType, 1);
        }
      }
    });

    it('cache_bypass on a one-packet fwmark service keeps no UDP connection', () => {
      const lab = makeLab();
      lab.ipvs.sysctl.cache_bypass = 1;
      lab.engine.classifier.set([{ dst: '198.51.100.0/24', mark: 9 }]);
      lab.ipvs.addService(fwmSpec(9, { scheduler: 'rr', flags: SVC_F_ONEPACKET }));
      const r = lab.send('eth0', udp4({ dst: '198.51.100.9', payload: 'x' }));
      assert.equal(r.eth0.length, 1, 'forwarded to its own destination');
      assert.equal(lab.ipvs.listConns().length, 0);
    });
  });

  describe('ICMP errors', () => {
    it('a quoted IPv4 header with a wrong checksum leaves the NAT with a right one (ip_send_check)', () => {
      const lab = natLab();
      lab.send('eth0', tcp4());
      const quote = PacketBuilder.ipv4({ src: VIP, dst: CLIENT, ttl: 63, corruptChecksum: true })
        .tcp({ srcPort: 80, dstPort: 40000, flags: SYN | ACK })
        .build()
        .subarray(0, 28);
      const err = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP })
        .icmp({ type: 3, code: 3 })
        .payload(quote)
        .build();
      const r = lab.send('eth0', err);
      assert.equal(r.eth1.length, 1);
      assert.equal(src(quoted(r.eth1[0]!)), RS1);
      assert.deepEqual(checksumErrors(r.eth1[0]!), []);
    });

    it('no time exceeded about an ICMP message of an unknown type (icmp_send takes it for an error)', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
      const f = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: '198.51.100.9', ttl: 1 })
        .icmp({ type: 42, code: 0 })
        .payload('?')
        .build();
      const r = lab.send('eth0', f);
      assert.deepEqual([r.verdict, r.eth0.length, r.eth1.length], [NF.DROP, 0, 0]);
      // a known informational type still gets one
      const ping = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: '198.51.100.9', ttl: 1 })
        .icmp({ type: 8, code: 0, rest: 1 })
        .build();
      assert.equal(dec(lab.send('eth0', ping).eth0[0]!).icmpType, 11);
    });
  });

  describe('IPv4 input (ip_rcv)', () => {
    it('drops a header with a wrong checksum before any hook', () => {
      const lab = natLab();
      const f = Buffer.from(
        PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
          .ipv4({ src: CLIENT, dst: VIP, corruptChecksum: true })
          .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
          .build(),
      );
      const r = lab.send('eth0', f);
      assert.deepEqual(
        [r.verdict, r.reason, r.eth0.length, r.eth1.length],
        [NF.DROP, 'ip-bad-csum', 0, 0],
      );
      assert.equal(lab.ipvs.listConns().length, 0);
    });
  });

  describe('IPv4 input on the fast path', () => {
    it("an established connection's frame with a wrong header checksum is dropped, not sent", () => {
      const lab = natLab();
      lab.send('eth0', tcp4({ flags: SYN, seq: 1 }));
      const ok = lab.receive('eth0', tcp4({ flags: ACK, seq: 2, ack: 1 }));
      assert.equal(ok.eth1.length, 1);
      const fast = lab.engine.counters.fastPath;
      const f = Buffer.from(
        PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
          .ipv4({ src: CLIENT, dst: VIP, corruptChecksum: true })
          .tcp({ srcPort: 40000, dstPort: 80, flags: ACK, seq: 3, ack: 1 })
          .build(),
      );
      const r = lab.receive('eth0', f);
      assert.deepEqual([r.eth0.length, r.eth1.length], [0, 0]);
      assert.equal(lab.engine.counters.fastPath, fast, 'declined by the fast path');
      assert.equal(lab.engine.counters.snapshot()['ip-bad-csum'], 1, 'counted under its reason');
    });
  });

  describe('on/off sysctls are tested for non-zero (proc_dointvec stores any int)', () => {
    it('sloppy_tcp = 2 lets an ACK open a connection, as 1 does', () => {
      for (const v of [0, 1, 2]) {
        const lab = natLab();
        lab.ipvs.setSysctl('sloppy_tcp', v);
        const r = lab.send('eth0', tcp4({ flags: ACK, seq: 5, ack: 1 }));
        assert.equal(r.eth1.length, v ? 1 : 0, `sloppy_tcp = ${v}`);
        assert.equal(lab.ipvs.listConns().length, v ? 1 : 0, `sloppy_tcp = ${v}`);
      }
    });
  });
});
