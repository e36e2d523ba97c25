// Shared by the tshark cross-check and the fixture tests: a frame set covering every format the
// library speaks, the tshark fields to ask for, and those fields as our decoder reads them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  decodeEthernet,
  decodeGue,
  decodeIcmpInner,
  decodeIp,
  decodeTunnelInner,
  ENCAP,
  EncapParams,
  encapHeaderLength,
  encapsulate,
  ethernet,
  findTcpOption,
  IPPROTO,
  LINKTYPE,
  natRewriteDst4,
  PacketBuilder,
  PacketView,
  TCP_FLAG,
} from '../../src/packet/index.js';
import { formatIpv4, formatIpv6 } from '../../src/core/addr.js';

/** The UDP port GUE frames use in these tests. */
export const GUE_PORT = 6080;
export const FIELDS = [
  'vlan.id',
  'ieee8021ad.id',
  'arp.opcode',
  'arp.src.proto_ipv4',
  'arp.dst.proto_ipv4',
  'ip.src',
  'ip.dst',
  'ip.ttl',
  'ip.proto',
  'ip.flags.df',
  'ip.flags.mf',
  'ip.frag_offset',
  'ip.id',
  'ip.hdr_len',
  'ip.len',
  'ip.dsfield',
  'ipv6.src',
  'ipv6.dst',
  'ipv6.hlim',
  'ipv6.plen',
  'ipv6.fraghdr.ident',
  'tcp.srcport',
  'tcp.dstport',
  'tcp.flags',
  'tcp.seq_raw',
  'tcp.ack_raw',
  'tcp.hdr_len',
  'tcp.window_size_value',
  'tcp.options.mss_val',
  'udp.srcport',
  'udp.dstport',
  'udp.length',
  'icmp.type',
  'icmp.code',
  'icmpv6.type',
  'icmpv6.code',
  'sctp.srcport',
  'sctp.dstport',
  'sctp.verification_tag',
  'sctp.chunk_type',
  'gre.proto',
  'gre.flags.checksum',
  'data.data',
] as const;
export const STATUS = [
  'ip.checksum.status',
  'tcp.checksum.status',
  'udp.checksum.status',
  'icmp.checksum.status',
  'icmpv6.checksum.status',
  'sctp.checksum.status',
  'gre.checksum.status',
] as const;

export type Fields = Record<string, string[]>;

/** Runs tshark over a pcap and returns one record of field → occurrences per frame. */
export function tshark(file: string, fields: readonly string[]): Fields[] {
  const args = [
    '-r',
    file,
    '-n',
    '-o',
    'ip.check_checksum:TRUE',
    '-o',
    'tcp.check_checksum:TRUE',
    '-o',
    'udp.check_checksum:TRUE',
    '-o',
    'sctp.checksum:CRC-32C',
    '-o',
    'ip.defragment:FALSE',
    '-o',
    'ipv6.defragment:FALSE',
    '-T',
    'fields',
    '-E',
    'separator=/t',
    '-E',
    'occurrence=a',
    '-E',
    'aggregator=,',
  ];
  for (const f of fields) args.push('-e', f);
  const r = spawnSync('tshark', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      const cols = line.split('\t');
      const o: Fields = {};
      fields.forEach((f, i) => {
        if (cols[i]) o[f] = cols[i]!.split(',');
      });
      return o;
    });
}

/** tshark prints numbers in decimal or 0x-hex and booleans as 1/0; addresses stay text. */
export function norm(s: string | number | boolean): string {
  if (typeof s === 'boolean') return s ? '1' : '0';
  if (typeof s === 'number') return String(s);
  if (/^(0x[0-9a-f]+|\d+)$/i.test(s)) return String(Number(s));
  if (s === 'True') return '1';
  if (s === 'False') return '0';
  return s;
}

/** Fields as our decoder reads them, in tshark's order (outer headers first). */
export function ours(frame: Uint8Array, linkType: number): Fields {
  const out: Fields = {};
  const add = (k: string, val: string | number | boolean) => (out[k] ??= []).push(norm(val));
  const v = new PacketView();
  const code =
    linkType === LINKTYPE.ETHERNET
      ? decodeEthernet(v, frame, 0, frame.length)
      : decodeIp(v, frame, 0, frame.length);
  assert.equal(code, 0, v.reason);
  if (v.vlanCount > 0) add(v.vlanTpid === 0x88a8 ? 'ieee8021ad.id' : 'vlan.id', v.vlanId);
  if (v.vlanCount > 1) add('vlan.id', v.vlanId2);
  if (v.arpOp) {
    add('arp.opcode', v.arpOp);
    add('arp.src.proto_ipv4', formatIpv4(v.arpSpa));
    add('arp.dst.proto_ipv4', formatIpv4(v.arpTpa));
  }
  walk(v, add);
  return out;
}

function walk(v: PacketView, add: (k: string, val: string | number | boolean) => void): void {
  if (v.l3Offset < 0) return;
  const emb = v.embedded;
  if (v.ipVersion === 4) {
    add('ip.src', formatIpv4(v.src[0]!));
    add('ip.dst', formatIpv4(v.dst[0]!));
    add('ip.ttl', v.ttl);
    add('ip.proto', v.protocol);
    add('ip.flags.df', v.df);
    add('ip.flags.mf', v.mf);
    add('ip.frag_offset', v.fragOffset / 8); // tshark 4.0 reports 8-byte units
    add('ip.id', v.ipId);
    add('ip.hdr_len', v.ipHeaderLength);
    add('ip.len', v.ipTotalLength);
    add('ip.dsfield', v.tos);
  } else {
    add('ipv6.src', formatIpv6(v.src));
    add('ipv6.dst', formatIpv6(v.dst));
    add('ipv6.hlim', v.ttl);
    add('ipv6.plen', v.ipTotalLength - 40);
    if (v.fragHeaderOffset >= 0) add('ipv6.fraghdr.ident', v.ipId);
  }
  if (!v.l4Parsed && v.tunnelType === 0) return;
  switch (v.protocol) {
    case IPPROTO.TCP:
      add('tcp.srcport', v.srcPort);
      add('tcp.dstport', v.dstPort);
      if (emb) return;
      add('tcp.flags', v.tcpFlags);
      add('tcp.seq_raw', v.tcpSeq);
      add('tcp.ack_raw', v.tcpAck);
      add('tcp.hdr_len', v.tcpHeaderLength);
      add('tcp.window_size_value', v.tcpWindow);
      if (findTcpOption(v, 2) >= 0) {
        const o = findTcpOption(v, 2);
        add('tcp.options.mss_val', (v.buf[o + 2]! << 8) | v.buf[o + 3]!);
      }
      return;
    case IPPROTO.UDP:
      add('udp.srcport', v.srcPort);
      add('udp.dstport', v.dstPort);
      add('udp.length', v.udpLength);
      if (!emb && v.dstPort === GUE_PORT) {
        // Wireshark 4.0 has no GUE dissector: the GUE header and inner packet are UDP payload.
        add(
          'data.data',
          Buffer.from(v.buf.subarray(v.payloadOffset, v.payloadOffset + v.payloadLength)).toString(
            'hex',
          ),
        );
        assert.equal(decodeGue(v), 0);
      }
      return;
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6: {
      const p = v.protocol === IPPROTO.ICMP ? 'icmp' : 'icmpv6';
      add(`${p}.type`, v.icmpType);
      add(`${p}.code`, v.icmpCode);
      if (v.icmpIsError) {
        const inner = new PacketView();
        assert.equal(decodeIcmpInner(inner, v), 0, inner.reason);
        walk(inner, add);
      }
      return;
    }
    case IPPROTO.SCTP:
      add('sctp.srcport', v.srcPort);
      add('sctp.dstport', v.dstPort);
      add('sctp.verification_tag', v.sctpVtag);
      add('sctp.chunk_type', v.sctpChunkType);
      if (v.sctpNextChunkType >= 0) add('sctp.chunk_type', v.sctpNextChunkType);
      return;
    case IPPROTO.GRE:
      add('gre.proto', (v.buf[v.l4Offset + 2]! << 8) | v.buf[v.l4Offset + 3]!);
      add('gre.flags.checksum', v.greChecksum >= 0);
      break;
  }
  if (v.innerOffset >= 0) {
    const inner = new PacketView();
    assert.equal(decodeTunnelInner(inner, v), 0, inner.reason);
    walk(inner, add);
  }
}

/** Compares tshark's fields to ours: every field we read must match; SCTP lists every chunk. */
export function compare(t: Fields, o: Fields, label: string): void {
  for (const [k, vals] of Object.entries(o)) {
    const theirs = (t[k] ?? []).map(norm);
    if (k === 'sctp.chunk_type')
      assert.deepEqual(theirs.slice(0, vals.length), vals, `${label}: ${k}`);
    else if (k === 'data.data')
      assert.equal(theirs.join('').replace(/:/g, ''), vals.join(''), `${label}: ${k}`);
    else assert.deepEqual(theirs, vals, `${label}: ${k}`);
  }
}

export const u8 = (n: number) => new Uint8Array(n);

/** Frames covering every format the library speaks, with a label each. */
export function builtFrames(): { label: string; frame: Buffer }[] {
  const eth = () => PacketBuilder.eth();
  const q4 = PacketBuilder.ipv4({ src: '10.0.0.2', dst: '192.0.2.80' })
    .udp({ srcPort: 53, dstPort: 40000 })
    .payload(20)
    .build()
    .subarray(0, 28);
  const qt = PacketBuilder.ipv4({ src: '10.0.0.2', dst: '192.0.2.80', df: true })
    .tcp({ srcPort: 80, dstPort: 40001, flags: TCP_FLAG.ACK, seq: 7 })
    .payload(1500)
    .build()
    .subarray(0, 28);
  const q6 = PacketBuilder.ipv6({ src: '2001:db8::2', dst: '2001:db8::80' })
    .udp({ srcPort: 53, dstPort: 40002 })
    .payload(1400)
    .build()
    .subarray(0, 48);
  const inner4 = () =>
    PacketBuilder.ipv4({ src: '10.1.0.1', dst: '10.2.0.2', ttl: 9 }).tcp({
      srcPort: 33000,
      dstPort: 80,
      flags: TCP_FLAG.SYN,
      seq: 1,
    });
  const list: { label: string; frame: Buffer }[] = [
    {
      label: 'VLAN TCP/IPv4 with IP and TCP options',
      frame: PacketBuilder.eth({ vlans: [{ id: 42, pcp: 3 }] })
        .ipv4({
          src: '192.0.2.1',
          dst: '198.51.100.2',
          ttl: 63,
          df: true,
          id: 0x1234,
          tos: 0x28,
          options: [{ type: 148, data: u8(2) }],
        })
        .tcp({
          srcPort: 51000,
          dstPort: 443,
          flags: TCP_FLAG.SYN,
          seq: 0xfffffff0,
          window: 64240,
          options: [
            { kind: 2, data: new Uint8Array([5, 180]) },
            { kind: 4 },
            { kind: 8, data: u8(8) },
            { kind: 1 },
            { kind: 3, data: new Uint8Array([7]) },
          ],
        })
        .build(),
    },
    {
      label: 'QinQ UDP/IPv4',
      frame: PacketBuilder.eth({ vlans: [{ id: 100, tpid: 0x88a8 }, { id: 200 }] })
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .udp({ srcPort: 5353, dstPort: 53 })
        .payload('hello')
        .build(),
    },
    {
      label: 'ARP request',
      frame: eth()
        .arp({
          op: 1,
          sha: '02:00:00:00:00:01',
          spa: '10.0.0.1',
          tha: '00:00:00:00:00:00',
          tpa: '10.0.0.254',
        })
        .build(),
    },
    {
      label: 'first IPv4 fragment',
      frame: eth()
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', mf: true, id: 99 })
        .udp({ srcPort: 1, dstPort: 2, length: 3000 })
        .payload(64)
        .build(),
    },
    {
      label: 'later IPv4 fragment',
      frame: eth()
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', fragOffset: 1480, id: 99 })
        .payload(64)
        .build(),
    },
    {
      label: 'IPv6 hop-by-hop + routing + destination options, TCP',
      frame: eth()
        .ipv6({
          src: '2001:db8::1',
          dst: '2001:db8::2',
          hopLimit: 7,
          extensions: [
            { type: 0, data: new Uint8Array([5, 2, 0, 0]) },
            { type: 43, data: u8(6) },
            { type: 60 },
          ],
        })
        .tcp({ srcPort: 1234, dstPort: 80, flags: TCP_FLAG.PSH | TCP_FLAG.ACK, seq: 5, ack: 6 })
        .payload('x')
        .build(),
    },
    {
      label: 'IPv6 fragment header, UDP',
      frame: eth()
        .ipv6({
          src: '2001:db8::1',
          dst: '2001:db8::2',
          extensions: [{ type: 44, fragOffset: 0, mf: true, id: 0xabcdef01 }],
        })
        .udp({ srcPort: 1, dstPort: 2, length: 2000 })
        .payload(16)
        .build(),
    },
    {
      label: 'ICMP echo request',
      frame: eth()
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .icmp({ type: 8, code: 0, rest: 0x00070001 })
        .payload('ping')
        .build(),
    },
    {
      label: 'ICMP port unreachable quoting UDP',
      frame: eth()
        .ipv4({ src: '192.0.2.80', dst: '10.0.0.2' })
        .icmp({ type: 3, code: 3 })
        .payload(q4)
        .build(),
    },
    {
      label: 'ICMP fragmentation needed quoting TCP',
      frame: eth()
        .ipv4({ src: '192.0.2.1', dst: '10.0.0.2' })
        .icmp({ type: 3, code: 4, rest: 1400 })
        .payload(qt)
        .build(),
    },
    {
      label: 'ICMPv6 echo request',
      frame: eth()
        .ipv6({ src: '2001:db8::1', dst: '2001:db8::2' })
        .icmpv6({ type: 128, code: 0, rest: 0x00010002 })
        .payload('ping6')
        .build(),
    },
    {
      label: 'ICMPv6 packet too big quoting UDP',
      frame: eth()
        .ipv6({ src: '2001:db8::1', dst: '2001:db8::2' })
        .icmpv6({ type: 2, code: 0, rest: 1280 })
        .payload(q6)
        .build(),
    },
    {
      label: 'SCTP INIT',
      frame: eth()
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .sctp({
          srcPort: 2905,
          dstPort: 2905,
          vtag: 0,
          chunks: [
            { type: 1, value: new Uint8Array([0, 0, 0, 1, 0, 1, 0, 0, 0, 10, 0, 10, 0, 0, 0, 1]) },
          ],
        })
        .build(),
    },
    {
      label: 'SCTP COOKIE ECHO + DATA over IPv6',
      frame: eth()
        .ipv6({ src: '2001:db8::1', dst: '2001:db8::2' })
        .sctp({
          srcPort: 5000,
          dstPort: 5001,
          vtag: 0xcafebabe,
          chunks: [
            { type: 10, value: u8(9) },
            { type: 0, flags: 3, value: new Uint8Array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 65]) },
          ],
        })
        .build(),
    },
    {
      label: 'IPIP',
      frame: eth()
        .ipv4({ src: '192.0.2.1', dst: '192.0.2.2' })
        .ipv4({ src: '10.1.0.1', dst: '10.2.0.2' })
        .udp({ srcPort: 1, dstPort: 2 })
        .build(),
    },
    {
      label: 'IPv6 in IPv4',
      frame: eth()
        .ipv4({ src: '192.0.2.1', dst: '192.0.2.2' })
        .ipv6({ src: '2001:db8::a', dst: '2001:db8::b' })
        .udp({ srcPort: 1, dstPort: 2 })
        .build(),
    },
    {
      label: 'IPv4 in IPv6',
      frame: eth()
        .ipv6({ src: '2001:db8::1', dst: '2001:db8::2' })
        .ipv4({ src: '10.1.0.1', dst: '10.2.0.2' })
        .udp({ srcPort: 1, dstPort: 2 })
        .build(),
    },
    {
      label: 'GRE without checksum',
      frame: eth()
        .ipv4({ src: '192.0.2.1', dst: '192.0.2.2' })
        .gre()
        .ipv4({ src: '10.1.0.1', dst: '10.2.0.2' })
        .udp({ srcPort: 1, dstPort: 2 })
        .build(),
    },
    {
      label: 'GRE with checksum, IPv6 inside',
      frame: eth()
        .ipv4({ src: '192.0.2.1', dst: '192.0.2.2' })
        .gre({ checksumPresent: true })
        .ipv6({ src: '2001:db8::a', dst: '2001:db8::b' })
        .tcp({ srcPort: 1, dstPort: 2, flags: 2 })
        .build(),
    },
    {
      label: 'GUE v0',
      frame: eth()
        .ipv4({ src: '192.0.2.1', dst: '192.0.2.2' })
        .udp({ srcPort: 40000, dstPort: GUE_PORT })
        .gue()
        .ipv4({ src: '10.1.0.1', dst: '10.2.0.2' })
        .udp({ srcPort: 1, dstPort: 2 })
        .build(),
    },
    {
      label: 'UDP without checksum',
      frame: eth()
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .udp({ srcPort: 1, dstPort: 2, checksum: 0 })
        .payload('z')
        .build(),
    },
  ];
  // NAT rewrite: checksums patched incrementally must still be right for Wireshark.
  for (const proto of ['tcp', 'udp'] as const) {
    const b = eth().ipv4({ src: '203.0.113.9', dst: '192.0.2.10', ttl: 50 });
    const f = (
      proto === 'tcp'
        ? b.tcp({ srcPort: 40000, dstPort: 80, flags: TCP_FLAG.ACK, seq: 100, ack: 200 })
        : b.udp({ srcPort: 40000, dstPort: 53 })
    )
      .payload('payload!')
      .build();
    const v = new PacketView();
    decodeEthernet(v, f, 0, f.length);
    natRewriteDst4(v, 0x0a0a0a0b, 8080);
    list.push({ label: `NAT-rewritten ${proto.toUpperCase()}`, frame: f });
  }
  // Tunnel encapsulation exactly as the TUN transmitter will send it (spec §5.5).
  for (const [type, csum, remcsum] of [
    [ENCAP.IPIP, false, false],
    [ENCAP.GRE, true, false],
    [ENCAP.GUE, true, false],
    [ENCAP.GUE, false, true],
  ] as const) {
    const innerBuf = inner4().build();
    const p = new EncapParams();
    p.type = type;
    p.csum = csum;
    p.remcsum = remcsum;
    p.remcsumStart = remcsum ? 20 : -1;
    p.remcsumOffset = remcsum ? 16 : -1;
    p.src[0] = 0xc0000201;
    p.dst[0] = 0xc0000264;
    p.srcPort = 45000;
    p.dstPort = GUE_PORT;
    p.ipId = 4321;
    const hl = encapHeaderLength(p);
    const buf = Buffer.alloc(14 + hl + innerBuf.length);
    innerBuf.copy(buf, 14 + hl);
    const start = encapsulate(p, buf, 14 + hl, innerBuf.length);
    ethernet.encode(
      { dst: '02:00:00:00:00:02', src: '02:00:00:00:00:01', etherType: 0x0800 },
      buf,
      start - 14,
    );
    list.push({
      label: `encapsulate ${['IPIP', 'GUE', 'GRE'][type]}${csum ? ' +csum' : ''}${remcsum ? ' +remcsum' : ''}`,
      frame: buf,
    });
  }
  return list;
}
