/**
 * Packet fixtures for every path of the engine: input frame → verdict, reason and output frames,
 * each output frame's checksums recomputed from scratch (spec §4.5, §5.2–5.5).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { CONN_F_FWD_MASK, SVC_F_ONEPACKET, SVC_F_PERSISTENT } from '../../../src/core/constants.js';
import { NF } from '../../../src/dataplane/packet/hooks.js';
import {
  PacketBuilder,
  IPPROTO,
  TUNNEL,
  decodeGue,
  decodeTunnelInner,
  PacketView,
} from '../../../src/packet/index.js';
import { destSpec, svcSpec, fwmSpec } from '../../helpers/ipvs.js';
import {
  CLIENT,
  CLIENT6,
  MAC,
  REMOTE,
  RS1,
  RS2,
  RS6,
  VIP,
  VIP6,
  checksumErrors,
  makeLab,
  natLab,
  recording,
} from './lab.js';
import { readPcap, writePcap } from '../../../src/packet/index.js';

const GOLDEN = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  '..',
  'test',
  'fixtures',
  'engine',
  'paths.pcap',
);
import { ACK, RST, SYN, dec, dmac, dst, ipv4Sum, quoted, smac, src, tcp4, udp4 } from './frames.js';

/** A lab with TCP VIP:80 → RS1:8080 (NAT, rr). */
function noChecksumErrors(frames: Buffer[]): void {
  for (const f of frames) assert.deepEqual(checksumErrors(f), [], 'every checksum verifies');
}

describe('PacketEngine paths', () => {
  // Every input frame of this file followed by the frames the engine sent for it, as a pcap a
  // human can open (test/fixtures/engine/paths.pcap); the file is the expected output.
  before(() => {
    recording.on = true;
    recording.frames = [];
  });
  after(() => {
    recording.on = false;
    const bytes = writePcap(
      recording.frames.map((data, i) => ({ data, timestampUs: 1_700_000_000_000_000 + i * 1000 })),
    );
    if (process.env['UPDATE_FIXTURES'] || !existsSync(GOLDEN)) writeFileSync(GOLDEN, bytes);
    const want = readPcap(readFileSync(GOLDEN));
    assert.ok(want.ok);
    assert.deepEqual(
      recording.frames.map((f) => f.toString('hex')),
      want.file.records.map((r) => Buffer.from(r.data).toString('hex')),
      'every output frame equals test/fixtures/engine/paths.pcap (UPDATE_FIXTURES=1 after a deliberate change)',
    );
  });

  describe('NAT', () => {
    it('DNATs a client SYN to the real server: address, port, TTL, MACs, incremental checksums', () => {
      const lab = natLab();
      const r = lab.send('eth0', tcp4({ ttl: 64 }));
      assert.equal(r.verdict, NF.STOLEN);
      assert.equal(r.reason, 'forwarded');
      assert.equal(r.eth1.length, 1);
      const o = dec(r.eth1[0]!);
      assert.deepEqual(
        [src(o), o.srcPort, dst(o), o.dstPort, o.ttl],
        [CLIENT, 40000, RS1, 8080, 63],
      );
      assert.deepEqual([smac(r.eth1[0]!), dmac(r.eth1[0]!)], [MAC.eth1, MAC.rs1]);
      noChecksumErrors(r.eth1);
    });

    it('SNATs the real server reply back to the VIP and routes it to the client', () => {
      const lab = natLab();
      lab.send('eth0', tcp4());
      const r = lab.send(
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
      assert.equal(r.verdict, NF.ACCEPT);
      assert.equal(r.eth0.length, 1);
      const o = dec(r.eth0[0]!);
      assert.deepEqual([src(o), o.srcPort, dst(o), o.dstPort, o.ttl], [VIP, 80, CLIENT, 40000, 63]);
      assert.deepEqual([smac(r.eth0[0]!), dmac(r.eth0[0]!)], [MAC.eth0, MAC.client]);
      noChecksumErrors(r.eth0);
    });

    it('leaves a UDP datagram without a checksum without one (§4.2), and rewrites a non-zero one', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 53, { protocol: 17, scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 53, { protocol: 17 }), destSpec(RS1, 5353));
      const z = lab.send('eth0', udp4({ checksum: 0, payload: 'query' }));
      assert.deepEqual([dst(dec(z.eth1[0]!)), dec(z.eth1[0]!).l4Checksum], [RS1, 0]);
      noChecksumErrors(z.eth1);
      const n = lab.send('eth0', udp4({ sport: 40001, payload: 'query' }));
      assert.notEqual(dec(n.eth1[0]!).l4Checksum, 0);
      noChecksumErrors(n.eth1);
      const back = lab.send(
        'eth1',
        udp4({
          src: RS1,
          dst: CLIENT,
          sport: 5353,
          dport: 40001,
          smac: MAC.rs1,
          dmac: MAC.eth1,
          payload: 'answer',
        }),
      );
      const o = dec(back.eth0[0]!);
      assert.deepEqual([src(o), o.srcPort], [VIP, 53]);
      noChecksumErrors(back.eth0);
    });

    it('NATs IPv6 both ways', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec(RS6, 8080));
      const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6, hopLimit: 64 })
        .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
        .build();
      const r = lab.send('eth0', syn);
      const o = dec(r.eth1[0]!);
      assert.deepEqual([dst(o), o.dstPort, o.ttl], [RS6, 8080, 63]);
      noChecksumErrors(r.eth1);
      const back = PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
        .ipv6({ src: RS6, dst: CLIENT6, hopLimit: 64 })
        .tcp({ srcPort: 8080, dstPort: 40000, flags: SYN | ACK, seq: 1, ack: 2 })
        .build();
      const b = lab.send('eth1', back);
      const p = dec(b.eth0[0]!);
      assert.deepEqual([src(p), p.srcPort], [VIP6, 80]);
      noChecksumErrors(b.eth0);
    });

    it('rewrites SCTP ports and recomputes the CRC32c', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 3868, { protocol: 132, scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 3868, { protocol: 132 }), destSpec(RS1, 3869));
      const init = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP })
        .sctp({
          srcPort: 5000,
          dstPort: 3868,
          chunks: [{ type: 1, flags: 0, value: new Uint8Array(16) }],
        })
        .build();
      const r = lab.send('eth0', init);
      const o = dec(r.eth1[0]!);
      assert.equal(o.dstPort, 3869);
      noChecksumErrors(r.eth1);
      assert.equal(lab.ipvs.listConns()[0]!.stateName, 'INIT1');
    });
  });

  describe('DR and TUN', () => {
    it('DR: rewrites only the destination MAC (and TTL)', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS2, 80, { fwd: 3 }));
      const inFrame = tcp4({ ttl: 64 });
      const r = lab.send('eth0', inFrame);
      assert.equal(r.eth1.length, 1);
      const f = r.eth1[0]!;
      assert.deepEqual([dmac(f), smac(f)], [MAC.rs2, MAC.eth1]);
      const o = dec(f);
      assert.deepEqual([src(o), dst(o), o.srcPort, o.dstPort, o.ttl], [CLIENT, VIP, 40000, 80, 63]);
      // everything after the IP header is byte-identical
      assert.deepEqual(f.subarray(14 + 20), inFrame.subarray(14 + 20));
      noChecksumErrors(r.eth1);
      assert.equal(lab.ipvs.listConns()[0]!.flags & 0x80, 0x80, 'NOOUTPUT set');
    });

    const tunCases = [
      { description: 'IPIP', tunType: 0, tunPort: 0, tunFlags: 0, proto: IPPROTO.IPIP, hdr: 20 },
      { description: 'GUE', tunType: 1, tunPort: 6080, tunFlags: 0, proto: IPPROTO.UDP, hdr: 32 },
      {
        description: 'GUE with checksum',
        tunType: 1,
        tunPort: 6080,
        tunFlags: 1,
        proto: IPPROTO.UDP,
        hdr: 32,
      },
      {
        // a complete inner checksum: no remcsum option, but the UDP checksum as with --tun-csum
        description: 'GUE with remote checksum offload',
        tunType: 1,
        tunPort: 6080,
        tunFlags: 2,
        proto: IPPROTO.UDP,
        hdr: 32,
      },
      { description: 'GRE', tunType: 2, tunPort: 0, tunFlags: 0, proto: IPPROTO.GRE, hdr: 24 },
      {
        description: 'GRE with checksum',
        tunType: 2,
        tunPort: 0,
        tunFlags: 1,
        proto: IPPROTO.GRE,
        hdr: 28,
      },
    ];
    for (const c of tunCases) {
      it(`TUN ${c.description}: outer header by the spec's rules`, () => {
        const lab = makeLab();
        lab.ipvs.sysctl.pmtu_disc = 1;
        lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
        lab.ipvs.addDest(
          svcSpec(VIP, 80),
          destSpec(RS2, 80, {
            fwd: 2,
            tunType: c.tunType,
            tunPort: c.tunPort,
            tunFlags: c.tunFlags,
          }),
        );
        const frame = Buffer.from(
          PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
            .ipv4({ src: CLIENT, dst: VIP, ttl: 64, df: true, tos: 0x2b })
            .tcp({ srcPort: 40000, dstPort: 80, flags: SYN, seq: 1 })
            .build(),
        );
        const r = lab.send('eth0', frame);
        assert.equal(r.eth1.length, 1);
        const f = r.eth1[0]!;
        assert.equal(dmac(f), MAC.rs2);
        const o = dec(f);
        assert.equal(o.ipTotalLength, 40 + c.hdr);
        assert.deepEqual(
          [src(o), dst(o), o.protocol, o.ttl, o.df],
          ['192.168.1.1', RS2, c.proto, 63, true],
        );
        assert.equal(o.tos, 0x2a, 'DS copied, CE → ECT(0)');
        if (c.tunType === 1) {
          assert.equal(o.dstPort, 6080);
          assert.ok(
            o.srcPort >= 32768 && o.srcPort <= 60999,
            'GUE source port in the local port range',
          );
          assert.equal(
            o.l4Checksum === 0,
            c.tunFlags === 0,
            'UDP checksum with --tun-csum and --tun-remcsum (ip_vs_tunnel_xmit udp_set_csum)',
          );
          assert.equal(decodeGue(o), 0);
          assert.equal(o.innerProtocol, IPPROTO.IPIP);
        }
        if (c.tunType === 2) assert.equal(o.greChecksum >= 0, c.tunFlags === 1);
        const i = new PacketView();
        assert.equal(decodeTunnelInner(i, o), 0);
        assert.deepEqual([src(i), dst(i), i.dstPort, i.ttl], [CLIENT, VIP, 80, 63]);
        noChecksumErrors(r.eth1);
        if (c.tunType !== 1) assert.ok(o.tunnelType === TUNNEL.IPIP || o.tunnelType === TUNNEL.GRE);
      });
    }
  });

  describe('ICMP generation', () => {
    it('sends port unreachable (not a TCP RST) when no destination is available', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
      const r = lab.send('eth0', tcp4());
      assert.deepEqual(
        [r.verdict, r.reason, r.eth1.length, r.eth0.length],
        [NF.DROP, 'no-dest', 0, 1],
      );
      const o = dec(r.eth0[0]!);
      assert.deepEqual(
        [o.protocol, o.icmpType, o.icmpCode, src(o), dst(o)],
        [1, 3, 3, VIP, CLIENT],
      );
      assert.equal(dmac(r.eth0[0]!), MAC.client);
      const q = quoted(r.eth0[0]!);
      assert.deepEqual([src(q), dst(q), q.srcPort, q.dstPort], [CLIENT, VIP, 40000, 80]);
      noChecksumErrors(r.eth0);
    });

    it('sends ICMPv6 port unreachable for IPv6 services', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
      const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6 })
        .tcp({ srcPort: 1, dstPort: 80, flags: SYN })
        .build();
      const r = lab.send('eth0', syn);
      const o = dec(r.eth0[0]!);
      assert.deepEqual([o.protocol, o.icmpType, o.icmpCode, src(o)], [58, 1, 4, VIP6]);
      noChecksumErrors(r.eth0);
    });

    it('lets non-FTP ports through a port-21 service with no destination (the host resets them)', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 21, { scheduler: 'rr' }));
      const r = lab.send('eth0', tcp4({ dport: 2000 }));
      // IPVS leaves it to the local stack (ACCEPT): no port unreachable, the closed port's reset
      assert.deepEqual([r.verdict, r.reason, r.eth0.length], [NF.ACCEPT, 'vip-host', 1]);
      const o = dec(r.eth0[0]!);
      assert.deepEqual(
        [o.protocol, src(o), o.srcPort, dst(o), o.dstPort, o.tcpFlags, o.tcpAck],
        [IPPROTO.TCP, VIP, 2000, CLIENT, 40000, RST | ACK, 1001],
      );
      noChecksumErrors(r.eth0);
    });

    it('TTL expiry: time exceeded to the sender, nothing forwarded', () => {
      const lab = natLab();
      const r = lab.send('eth0', tcp4({ ttl: 1 }));
      assert.deepEqual([r.verdict, r.reason, r.eth1.length], [NF.STOLEN, 'ttl-expired', 0]);
      const o = dec(r.eth0[0]!);
      assert.deepEqual([o.icmpType, o.icmpCode, src(o), dst(o)], [11, 0, VIP, CLIENT]);
      noChecksumErrors(r.eth0);
    });

    it('fragmentation needed for a DF packet above the route MTU (quoted packet, MTU in the error)', () => {
      const lab = natLab();
      lab.eth1.mtu = 1400;
      const r = lab.send('eth0', tcp4({ df: true, flags: SYN, payload: 1460 }));
      assert.deepEqual([r.verdict, r.reason, r.eth1.length], [NF.STOLEN, 'frag-needed', 0]);
      const o = dec(r.eth0[0]!);
      assert.deepEqual([o.icmpType, o.icmpCode, o.icmpRest & 0xffff], [3, 4, 1400]);
      assert.equal(o.ipTotalLength, 576, 'the quote fills a 576-byte datagram');
      noChecksumErrors(r.eth0);
    });

    it('IPv6: packet too big above the MTU', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP6, 80, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP6, 80), destSpec(RS6, 80));
      lab.eth1.mtu = 1280;
      const syn = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv6({ src: CLIENT6, dst: VIP6 })
        .tcp({ srcPort: 1, dstPort: 80, flags: SYN })
        .payload(1400)
        .build();
      const r = lab.send('eth0', syn);
      const o = dec(r.eth0[0]!);
      assert.deepEqual([r.reason, o.icmpType, o.icmpRest], ['frag-needed', 2, 1280]);
      assert.equal(o.ipTotalLength, 1280);
      noChecksumErrors(r.eth0);
    });

    it('fragments an oversized packet without DF', () => {
      const lab = natLab();
      lab.eth1.mtu = 1000;
      const r = lab.send('eth0', tcp4({ df: false, payload: 1400 }));
      assert.equal(r.eth1.length, 2);
      const a = dec(r.eth1[0]!);
      const b = dec(r.eth1[1]!);
      assert.deepEqual([a.mf, a.fragOffset, b.mf, b.fragOffset], [true, 0, false, 976]);
      assert.equal(a.ipTotalLength + b.ipTotalLength - 20, 20 + 20 + 1400);
      noChecksumErrors(r.eth1);
    });

    it('tunnel with pmtu_disc = 0: DF cleared and the outer packet fragmented', () => {
      const lab = makeLab();
      lab.ipvs.sysctl.pmtu_disc = 0;
      lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS2, 80, { fwd: 2 }));
      const r = lab.send('eth0', tcp4({ df: true, payload: 1460 }));
      assert.equal(r.eth1.length, 2);
      assert.deepEqual([dec(r.eth1[0]!).df, dec(r.eth1[0]!).mf], [false, true]);
    });
  });

  describe('ICMP errors about connections (§4.5)', () => {
    it('incoming: a client error about a reply is NATed to the real server (outer dst, quoted src and port)', () => {
      const lab = natLab();
      lab.send('eth0', tcp4());
      // the client says the VIP's reply was unreachable: quotes VIP:80 → client:40000
      const quote = PacketBuilder.ipv4({ src: VIP, dst: CLIENT, ttl: 63 })
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
      const o = dec(r.eth1[0]!);
      const q = quoted(r.eth1[0]!);
      assert.deepEqual(
        [dst(o), src(q), q.srcPort, dst(q), q.dstPort],
        [RS1, RS1, 8080, CLIENT, 40000],
      );
      noChecksumErrors(r.eth1);
    });

    it('incoming: a bad ICMP checksum is dropped and counted', () => {
      const lab = natLab();
      lab.send('eth0', tcp4());
      const quote = PacketBuilder.ipv4({ src: VIP, dst: CLIENT })
        .tcp({ srcPort: 80, dstPort: 40000, flags: ACK })
        .build()
        .subarray(0, 28);
      const err = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP })
        .icmp({ type: 3, code: 3, corruptChecksum: true })
        .payload(quote)
        .build();
      const r = lab.send('eth0', err);
      assert.deepEqual([r.verdict, r.reason], [NF.DROP, 'icmp-bad-csum']);
    });

    it('outgoing: a real server error about a client packet is NATed back to the VIP', () => {
      const lab = natLab();
      lab.send('eth0', tcp4());
      const quote = PacketBuilder.ipv4({ src: CLIENT, dst: RS1 })
        .tcp({ srcPort: 40000, dstPort: 8080, flags: SYN })
        .build()
        .subarray(0, 28);
      const err = PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
        .ipv4({ src: RS1, dst: CLIENT })
        .icmp({ type: 3, code: 1 })
        .payload(quote)
        .build();
      const r = lab.send('eth1', err);
      assert.equal(r.eth0.length, 1);
      const o = dec(r.eth0[0]!);
      const q = quoted(r.eth0[0]!);
      assert.deepEqual([src(o), dst(q), q.dstPort, src(q)], [VIP, VIP, 80, CLIENT]);
      noChecksumErrors(r.eth0);
    });

    it('errors in either direction leave the connection timer alone (__ip_vs_conn_put)', () => {
      const lab = natLab();
      lab.send('eth0', tcp4());
      const live = () => lab.ipvs.listConns().filter((c) => c.vport === 80).length;
      assert.equal(live(), 1);
      lab.advance(40_000); // SYN_RECV lives 60 s
      const fromClient = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP })
        .icmp({ type: 3, code: 3 })
        .payload(
          PacketBuilder.ipv4({ src: VIP, dst: CLIENT })
            .tcp({ srcPort: 80, dstPort: 40000, flags: SYN | ACK })
            .build()
            .subarray(0, 28),
        )
        .build();
      const fromServer = PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
        .ipv4({ src: RS1, dst: CLIENT })
        .icmp({ type: 3, code: 1 })
        .payload(
          PacketBuilder.ipv4({ src: CLIENT, dst: RS1 })
            .tcp({ srcPort: 40000, dstPort: 8080, flags: SYN })
            .build()
            .subarray(0, 28),
        )
        .build();
      assert.equal(lab.send('eth0', fromClient).eth1.length, 1);
      assert.equal(lab.send('eth1', fromServer).eth0.length, 1);
      lab.advance(21_000);
      assert.equal(live(), 0, 'expired 60 s after the SYN, not after the errors');
    });

    it('unrelated ICMP (echo) to the VIP is left to the host, which answers it', () => {
      const lab = natLab();
      const ping = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
        .ipv4({ src: CLIENT, dst: VIP })
        .icmp({ type: 8, code: 0, rest: 0x10001 })
        .payload('ping')
        .build();
      const r = lab.send('eth0', ping);
      assert.deepEqual(
        [r.verdict, r.reason, r.eth0.length, r.eth1.length],
        [NF.ACCEPT, 'vip-host', 1, 0],
      );
      const o = dec(r.eth0[0]!);
      assert.deepEqual([o.icmpType, o.icmpRest, src(o), dst(o)], [0, 0x10001, VIP, CLIENT]);
      noChecksumErrors(r.eth0);
    });

    it('relays fragmentation-needed about our IPIP tunnel to the client with the reduced MTU', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS2, 80, { fwd: 2 }));
      lab.send('eth0', tcp4({ df: true }));
      // a router on the way to RS2 reports MTU 1300 for our encapsulated packet
      const clientPkt = PacketBuilder.ipv4({ src: CLIENT, dst: VIP, df: true, ttl: 63 })
        .tcp({ srcPort: 40000, dstPort: 80, flags: ACK })
        .build();
      const outer = PacketBuilder.ipv4({ src: '192.168.1.1', dst: RS2, df: true, ttl: 63 })
        .payload(clientPkt)
        .build();
      outer[9] = 4; // IPIP
      const err = PacketBuilder.eth({ src: MAC.rs2, dst: MAC.eth1 })
        .ipv4({ src: '192.168.1.254', dst: '192.168.1.1' })
        .icmp({ type: 3, code: 4, rest: 1300 })
        .payload(outer.subarray(0, 68))
        .build();
      const r = lab.send('eth1', err);
      assert.equal(r.reason, 'consumed');
      assert.equal(r.eth0.length, 1);
      const o = dec(r.eth0[0]!);
      assert.deepEqual(
        [o.icmpType, o.icmpCode, o.icmpRest & 0xffff, src(o), dst(o)],
        [3, 4, 1280, VIP, CLIENT],
      );
      const q = quoted(r.eth0[0]!);
      assert.deepEqual([src(q), dst(q), q.dstPort], [CLIENT, VIP, 80]);
      noChecksumErrors(r.eth0);
      // the recorded path MTU now limits the tunnel: a 1400-byte DF packet gets frag-needed
      const big = lab.send('eth0', tcp4({ df: true, flags: ACK, payload: 1360 }));
      assert.equal(big.reason, 'frag-needed');
      assert.equal(dec(big.eth0[0]!).icmpRest & 0xffff, 1280);
    });

    it('nat_icmp_send: a stray reply from a NAT real server gets port unreachable (not for RST)', () => {
      const lab = natLab();
      lab.ipvs.sysctl.nat_icmp_send = 1;
      const stray = tcp4({
        src: RS1,
        dst: CLIENT,
        sport: 8080,
        dport: 41000,
        flags: ACK,
        smac: MAC.rs1,
        dmac: MAC.eth1,
      });
      const r = lab.send('eth1', stray);
      assert.deepEqual([r.verdict, r.reason, r.eth1.length], [NF.DROP, 'stray-reply', 1]);
      const o = dec(r.eth1[0]!);
      assert.deepEqual([o.icmpType, o.icmpCode, dst(o)], [3, 3, RS1]);
      noChecksumErrors(r.eth1);
      const rst = lab.send(
        'eth1',
        tcp4({
          src: RS1,
          dst: CLIENT,
          sport: 8080,
          dport: 41000,
          flags: RST,
          smac: MAC.rs1,
          dmac: MAC.eth1,
        }),
      );
      assert.deepEqual([rst.verdict, rst.eth1.length], [NF.ACCEPT, 0]);
    });
  });

  describe('connection rules', () => {
    it('persistence: a second connection of the client goes to the same real server', () => {
      const lab = makeLab();
      const k = svcSpec(VIP, 80, { scheduler: 'rr', flags: SVC_F_PERSISTENT, timeout: 300 });
      lab.ipvs.addService(k);
      lab.ipvs.addDest(k, destSpec(RS1, 80));
      lab.ipvs.addDest(k, destSpec(RS2, 80));
      const first = dec(lab.send('eth0', tcp4({ sport: 1000 })).eth1[0]!);
      const second = dec(lab.send('eth0', tcp4({ sport: 1001 })).eth1[0]!);
      const other = dec(
        lab.send('eth0', tcp4({ src: REMOTE, sport: 1002, smac: MAC.router })).eth1[0]!,
      );
      assert.equal(dst(first), dst(second));
      assert.notEqual(dst(first), dst(other), 'rr moves on for another client');
      assert.equal(lab.ipvs.listConns().filter((c) => c.flags & 0x1000).length, 2);
    });

    it('conn_reuse_mode 1: a SYN on a TIME_WAIT connection expires it and reschedules', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS1, 80));
      lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS2, 80));
      const a = dst(dec(lab.send('eth0', tcp4()).eth1[0]!));
      const h = lab.ipvs.conns.inGet(2, 6, [0x0a000005], 40000, [0x0a000064], 80);
      lab.ipvs.conns.setState(h, 5); // TIME_WAIT
      const b = dst(dec(lab.send('eth0', tcp4()).eth1[0]!));
      assert.notEqual(a, b, 'rescheduled by rr');
    });

    it('conn_reuse_mode 0: the SYN follows the old connection', () => {
      const lab = makeLab();
      lab.ipvs.sysctl.conn_reuse_mode = 0;
      lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS1, 80));
      lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS2, 80));
      const a = dst(dec(lab.send('eth0', tcp4()).eth1[0]!));
      const h = lab.ipvs.conns.inGet(2, 6, [0x0a000005], 40000, [0x0a000064], 80);
      lab.ipvs.conns.setState(h, 5);
      const b = dst(dec(lab.send('eth0', tcp4()).eth1[0]!));
      assert.equal(a, b);
    });

    it('expire_nodest_conn 0: packets of a deleted destination are dropped; 1: rescheduled', () => {
      const lab = makeLab();
      const k = svcSpec(VIP, 80, { scheduler: 'rr' });
      lab.ipvs.addService(k);
      lab.ipvs.addDest(k, destSpec(RS1, 80));
      lab.send('eth0', tcp4());
      lab.ipvs.addDest(k, destSpec(RS2, 80));
      lab.ipvs.delDest(k, { addr: RS1, port: 80 });
      const r = lab.send('eth0', tcp4({ flags: ACK }));
      assert.deepEqual([r.verdict, r.reason], [NF.DROP, 'dest-gone']);
      lab.ipvs.sysctl.expire_nodest_conn = 1;
      const s = lab.send('eth0', tcp4({ flags: SYN }));
      assert.equal(dst(dec(s.eth1[0]!)), RS2);
    });

    it('packets that cannot open a connection pass (ACK without connection, RST)', () => {
      const lab = natLab();
      assert.deepEqual(lab.send('eth0', tcp4({ flags: ACK })).verdict, NF.ACCEPT);
      assert.deepEqual(lab.send('eth0', tcp4({ flags: RST | SYN })).verdict, NF.ACCEPT);
      assert.equal(lab.ipvs.conns.count, 0);
    });

    it('one-packet scheduling: every UDP datagram scheduled, nothing kept', () => {
      const lab = makeLab();
      const k = svcSpec(VIP, 53, { protocol: 17, scheduler: 'rr', flags: SVC_F_ONEPACKET });
      lab.ipvs.addService(k);
      lab.ipvs.addDest(k, destSpec(RS1, 53));
      lab.ipvs.addDest(k, destSpec(RS2, 53));
      const a = dst(dec(lab.send('eth0', udp4({ payload: 'a' })).eth1[0]!));
      const b = dst(dec(lab.send('eth0', udp4({ payload: 'b' })).eth1[0]!));
      assert.notEqual(a, b);
      assert.equal(lab.ipvs.conns.count, 0);
    });

    it('fragments: reassembled, scheduled whole, sent on along their own boundaries', () => {
      const lab = makeLab();
      lab.ipvs.addService(svcSpec(VIP, 53, { protocol: 17, scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 53, { protocol: 17 }), destSpec(RS1, 5353));
      const whole = udp4({ payload: 100, id: 77 });
      // split by hand: first fragment = UDP header + 24 bytes, second = the rest
      const ip = whole.subarray(14);
      const first = Buffer.concat([whole.subarray(0, 14), ip.subarray(0, 20 + 32)]);
      first.writeUInt16BE(52, 16);
      first.writeUInt16BE(0x2000, 20);
      const second = Buffer.concat([whole.subarray(0, 14), ip.subarray(0, 20), ip.subarray(52)]);
      second.writeUInt16BE(20 + ip.length - 52, 16);
      second.writeUInt16BE(4, 20);
      for (const f of [first, second]) ipv4Sum(f);
      const a = lab.send('eth0', first);
      assert.deepEqual([a.reason, a.eth1.length], ['frag-held', 0], 'the first waits for the rest');
      const b = lab.send('eth0', second);
      assert.equal(b.eth1.length, 2, 'the whole datagram leaves as the two fragments it came in');
      const [f1, f2] = b.eth1.map((f) => dec(f));
      assert.deepEqual(
        [dst(f1!), f1!.fragOffset, f1!.mf, f1!.dstPort, dst(f2!), f2!.fragOffset, f2!.mf],
        [RS1, 0, true, 5353, RS1, 32, false],
      );
      assert.deepEqual(
        b.eth1.map((f) => f.length),
        [first.length, second.length],
      );
      noChecksumErrors(b.eth1);
      assert.equal(lab.ipvs.conns.count, 1);
      // reassembled, the datagram's UDP checksum still verifies after the NAT rewrite
      const re = Buffer.concat([
        b.eth1[0]!.subarray(0, 14 + 20),
        b.eth1[0]!.subarray(34),
        b.eth1[1]!.subarray(34),
      ]);
      re.writeUInt16BE(re.length - 14, 16);
      re.writeUInt16BE(0, 20);
      ipv4Sum(re);
      assert.deepEqual(checksumErrors(re), []);
      // a later fragment of another datagram waits for its first
      const lone = Buffer.from(second);
      lone.writeUInt16BE(99, 18);
      ipv4Sum(lone);
      assert.equal(lab.send('eth0', lone).reason, 'frag-held');
    });

    it('fwmark services: the classifier marks the packet and the fwmark service takes it', () => {
      const lab = makeLab();
      lab.engine.classifier.set([
        { proto: 'tcp', dst: '198.51.100.0/24', dport: '80,443', mark: 7 },
      ]);
      lab.ipvs.addService(fwmSpec(7, { scheduler: 'rr' }));
      lab.ipvs.addDest(fwmSpec(7), destSpec(RS1, 0, { fwd: 3 }));
      const r = lab.send('eth0', tcp4({ dst: '198.51.100.9', dport: 443 }));
      assert.equal(r.eth1.length, 1);
      assert.equal(dmac(r.eth1[0]!), MAC.rs1);
      assert.equal(lab.ipvs.listConns()[0]!.fwmark, 7);
      const miss = lab.send('eth0', tcp4({ dst: '198.51.100.9', dport: 22 }));
      assert.equal(miss.eth1.length, 0);
    });

    it('cache_bypass: an fwmark service without destinations forwards to the original destination', () => {
      const lab = makeLab();
      lab.ipvs.sysctl.cache_bypass = 1;
      lab.engine.classifier.set([{ dst: '198.51.100.0/24', mark: 9 }]);
      lab.ipvs.addService(fwmSpec(9, { scheduler: 'rr' }));
      const r = lab.send('eth0', tcp4({ dst: '198.51.100.9', ttl: 10 }));
      assert.equal(r.eth0.length, 1, 'routed out through the default gateway');
      assert.equal(dmac(r.eth0[0]!), MAC.router);
      assert.equal(lab.ipvs.listConns()[0]!.flags & CONN_F_FWD_MASK, 4);
    });

    it('SIP: the Call-ID pins a call; a server-initiated request creates its connection', () => {
      const lab = makeLab();
      const k = svcSpec(VIP, 5060, {
        protocol: 17,
        scheduler: 'rr',
        flags: SVC_F_PERSISTENT,
        timeout: 60,
        pe: 'sip',
        netmask: 0xffffff00,
      });
      lab.ipvs.addService(k);
      lab.ipvs.addDest(k, destSpec(RS1, 5060));
      lab.ipvs.addDest(k, destSpec(RS2, 5060));
      const sip = (id: string) =>
        `INVITE sip:a@b SIP/2.0\r\nCall-ID: ${id}\r\nCSeq: 1 INVITE\r\n\r\n`;
      const a = dst(
        dec(lab.send('eth0', udp4({ sport: 5060, dport: 5060, payload: sip('call-1') })).eth1[0]!),
      );
      const b = dst(
        dec(
          lab.send(
            'eth0',
            udp4({ src: '10.0.0.6', sport: 5060, dport: 5060, payload: sip('call-1') }),
          ).eth1[0]!,
        ),
      );
      assert.equal(a, b, 'same call, same server, other client address of the masked network');
      const c = dst(
        dec(
          lab.send(
            'eth0',
            udp4({ src: '10.0.0.7', sport: 5060, dport: 5060, payload: sip('call-9') }),
          ).eth1[0]!,
        ),
      );
      assert.notEqual(a, c, 'another call is scheduled anew');
      const noId = lab.send('eth0', udp4({ sport: 5061, dport: 5060, payload: 'hello' }));
      assert.deepEqual([noId.verdict, noId.reason], [NF.DROP, 'sched-drop']);
      // RS2 calls out to a new party: the out handler creates a connection (conn_out)
      const out = lab.send(
        'eth1',
        udp4({
          src: RS2,
          dst: '203.0.113.50',
          sport: 5060,
          dport: 5060,
          smac: MAC.rs2,
          dmac: MAC.eth1,
          payload: sip('call-2'),
        }),
      );
      assert.equal(out.eth0.length, 1);
      assert.equal(src(dec(out.eth0[0]!)), VIP);
    });
  });

  describe('the host’s traffic', () => {
    it('leaves traffic to no service alone and answers ARP for the VIP', () => {
      const lab = natLab();
      assert.equal(lab.send('eth0', tcp4({ dport: 22 })).verdict, NF.ACCEPT);
      const arp = PacketBuilder.eth({ src: MAC.client, dst: 'ff:ff:ff:ff:ff:ff' })
        .arp({ op: 1, sha: MAC.client, spa: CLIENT, tha: '00:00:00:00:00:00', tpa: VIP })
        .build();
      const r = lab.send('eth0', arp);
      assert.equal(r.eth0.length, 1);
      const v = dec(r.eth0[0]!);
      assert.deepEqual([v.arpOp, dmac(r.eth0[0]!), v.arpSpa >>> 0], [2, MAC.client, 0x0a000064]);
    });

    it('ignores frames for another MAC', () => {
      const lab = natLab();
      const r = lab.send('eth0', tcp4({ dmac: '02:00:00:00:00:99' }));
      assert.deepEqual([r.verdict, r.reason], [NF.DROP, 'otherhost']);
    });
  });
});
