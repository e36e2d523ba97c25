/**
 * The real-server decapsulator in-process: frames built with the packet library (the inner packet
 * with PacketBuilder, the tunnel with `encapsulate`, exactly as the director's TUN transmitter
 * does) go through `Decapsulator.handleFrame`; a capturing FrameIO stands in for the TUN device.
 * One row per outcome, plus the details of spec §5.5 and RFC 6040.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseIp, type IpAddr } from '../../src/core/addr.js';
import {
  newStats,
  PKTTYPE,
  TP_STATUS,
  type FrameHandler,
  type FrameIO,
} from '../../src/dataplane/io/index.js';
import {
  ENCAP,
  EncapParams,
  IPPROTO,
  PacketBuilder,
  TCP_FLAG,
  csumFold,
  csumPartial,
  encapsulate,
  ipv4HeaderChecksumOk,
  l4ChecksumOk,
  pseudoHeaderSum,
} from '../../src/packet/index.js';
import {
  Decapsulator,
  OUTCOME_NAMES,
  looksLikeGue,
  validateDecapOptions,
  type DecapType,
} from '../../src/realserver/decap.js';
import { parseRealserverArgs, runRealserver } from '../../src/cli/realserver.js';

/** A TUN stand-in: staged frames become `frames` on commit; `slots` limits a batch. */
class CaptureIO implements FrameIO {
  readonly kind = 'tun' as const;
  readonly linkType = 'ip' as const;
  readonly maxFrame = 65535;
  readonly stats = newStats();
  readonly txData = Buffer.alloc(65536 * 4);
  frames: Buffer[] = [];
  #staged: [number, number][] = [];
  #next = 0;
  constructor(readonly slots = 4) {}
  onFrames(_h: FrameHandler): void {}
  stop(): void {}
  start(): void {}
  txAlloc(length: number): number {
    if (this.#staged.length >= this.slots) return -1;
    const off = this.#next;
    this.#next += length;
    this.#staged.push([off, length]);
    return off;
  }
  txCommit(): number {
    for (const [o, l] of this.#staged)
      this.frames.push(Buffer.from(this.txData.subarray(o, o + l)));
    const n = this.#staged.length;
    this.#staged = [];
    this.#next = 0;
    return n;
  }
  send(f: Uint8Array): boolean {
    const o = this.txAlloc(f.length);
    if (o < 0) return false;
    this.txData.set(f, o);
    return true;
  }
  async close(): Promise<void> {}
}

const ME = '198.51.100.10';
const ME6 = '2001:db8::10';
const DIRECTOR = '198.51.100.1';
const CLIENT = '192.0.2.2';
const VIP = '203.0.113.10';
const GUE_PORT = 6080;

const addr = (s: string): IpAddr => parseIp(s)!;

/** An inner TCP/IPv4 segment client → VIP with correct checksums. */
function innerTcp(opts: { tos?: number; payload?: string } = {}): Buffer {
  return PacketBuilder.ipv4({ src: CLIENT, dst: VIP, ttl: 63, tos: opts.tos ?? 0, df: true })
    .tcp({ srcPort: 40000, dstPort: 8080, flags: TCP_FLAG.PSH | TCP_FLAG.ACK, seq: 1, ack: 1 })
    .payload(opts.payload ?? 'hello, real server')
    .build();
}

function innerTcp6(): Buffer {
  return PacketBuilder.ipv6({ src: '2001:db8:c::2', dst: '2001:db8:f::10', hopLimit: 63 })
    .tcp({ srcPort: 40000, dstPort: 8080, flags: TCP_FLAG.SYN })
    .build();
}

interface Tunnel {
  type: number;
  csum?: boolean;
  remcsum?: { start: number; offset: number };
  af?: number;
  dst?: string;
  src?: string;
  port?: number;
}

/** Ethernet + outer headers from `encapsulate` (the director's code path) around `inner`. */
function tunnelFrame(inner: Buffer, t: Tunnel): Buffer {
  const p = new EncapParams();
  p.type = t.type;
  p.af = t.af ?? 2;
  const src = addr(t.src ?? (p.af === 10 ? '2001:db8::1' : DIRECTOR));
  const dst = addr(t.dst ?? (p.af === 10 ? ME6 : ME));
  p.src.set(src.words);
  p.dst.set(dst.words);
  p.ipId = 0x1234;
  p.srcPort = 45000;
  p.dstPort = t.port ?? GUE_PORT;
  p.csum = t.csum === true;
  if (t.remcsum) {
    p.remcsum = true;
    p.remcsumStart = t.remcsum.start;
    p.remcsumOffset = t.remcsum.offset;
  }
  const head = 14 + 80;
  const buf = Buffer.alloc(head + inner.length);
  inner.copy(buf, head);
  const start = encapsulate(p, buf, head, inner.length);
  const eth = start - 14;
  buf.fill(0x02, eth, eth + 12);
  buf.writeUInt16BE(p.af === 10 ? 0x86dd : 0x0800, eth + 12);
  return buf.subarray(eth);
}

function decapsulator(types: DecapType[], out = new CaptureIO()): [Decapsulator, CaptureIO] {
  const d = new Decapsulator(out, {
    types,
    guePort: types.includes('gue') ? GUE_PORT : undefined,
    addresses: [addr(ME), addr(ME6)],
  });
  return [d, out];
}

/** Runs one frame through and commits; returns the outcome name and what reached the TUN. */
function run(
  d: Decapsulator,
  out: CaptureIO,
  frame: Buffer,
  status = 0,
  pktType: number = PKTTYPE.HOST,
): { outcome: string; tun: Buffer | undefined } {
  out.frames = [];
  const o = d.handleFrame(frame, 0, frame.length, status, pktType);
  d.count[o]!++;
  d.commit();
  return { outcome: OUTCOME_NAMES[o]!, tun: out.frames[0] };
}

describe('Decapsulator', () => {
  describe('#handleFrame: tunnels for us', () => {
    const cases: { description: string; types: DecapType[]; tunnel: Tunnel; inner?: Buffer }[] = [
      {
        description: 'IPIP (outer protocol 4) → inner IPv4',
        types: ['ipip'],
        tunnel: { type: ENCAP.IPIP },
      },
      {
        description: 'IPv6 in IPv4 (outer protocol 41) → inner IPv6',
        types: ['ipip'],
        tunnel: { type: ENCAP.IPIP },
        inner: innerTcp6(),
      },
      {
        description: 'IPIP with an IPv6 outer header',
        types: ['ipip'],
        tunnel: { type: ENCAP.IPIP, af: 10 },
      },
      { description: 'GUE without UDP checksum', types: ['gue'], tunnel: { type: ENCAP.GUE } },
      {
        description: 'GUE with UDP checksum (--tun-csum)',
        types: ['gue'],
        tunnel: { type: ENCAP.GUE, csum: true },
      },
      {
        description: 'GUE over IPv6 with checksum, inner IPv6',
        types: ['gue'],
        tunnel: { type: ENCAP.GUE, csum: true, af: 10 },
        inner: innerTcp6(),
      },
      {
        description: 'GRE (4-byte header), inner IPv4',
        types: ['gre'],
        tunnel: { type: ENCAP.GRE },
      },
      { description: 'GRE with checksum', types: ['gre'], tunnel: { type: ENCAP.GRE, csum: true } },
      {
        description: 'GRE with checksum, inner IPv6 (protocol type 0x86DD)',
        types: ['gre'],
        tunnel: { type: ENCAP.GRE, csum: true },
        inner: innerTcp6(),
      },
      {
        description: 'any of several types when told several',
        types: ['ipip', 'gue', 'gre'],
        tunnel: { type: ENCAP.GRE },
      },
    ];
    for (const c of cases) {
      it(`${c.description}: the inner packet reaches the TUN device byte-identical`, () => {
        const [d, out] = decapsulator(c.types);
        const inner = c.inner ?? innerTcp();
        const r = run(d, out, tunnelFrame(inner, c.tunnel));
        assert.equal(r.outcome, 'decapsulated');
        assert.deepEqual(r.tun, inner);
        assert.equal(d.counters().decapsulated, 1);
        assert.equal(d.counters().decapsulatedBytes, inner.length);
      });
    }

    it('GUE remote checksum offload: the inner TCP checksum is completed from start/offset', () => {
      const inner = innerTcp({ payload: 'odd-length payload!' });
      const good = Buffer.from(inner);
      // What a sender with CHECKSUM_PARTIAL has: the pseudo-header sum, not the checksum.
      const l4 = 20;
      const partial = csumFold(
        pseudoHeaderSum(
          2,
          [addr(CLIENT).words[0]!],
          [addr(VIP).words[0]!],
          IPPROTO.TCP,
          inner.length - l4,
        ),
      );
      inner.writeUInt16BE(partial, l4 + 16);
      const [d, out] = decapsulator(['gue']);
      const frame = tunnelFrame(inner, { type: ENCAP.GUE, remcsum: { start: l4, offset: 16 } });
      // The GUE header is 12 bytes: PRIV flag, REMCSUM private flag, start 20, offset 36.
      const gue = 14 + 20 + 8;
      assert.equal(frame[gue]! & 31, 2, 'hlen 2 words');
      assert.equal(frame.readUInt16BE(gue + 8), 20);
      assert.equal(frame.readUInt16BE(gue + 10), 36);
      const r = run(d, out, frame);
      assert.equal(r.outcome, 'decapsulated');
      assert.deepEqual(r.tun, good, 'checksum filled in, everything else as sent');
      assert.ok(
        l4ChecksumOk(
          2,
          [addr(CLIENT).words[0]!],
          [addr(VIP).words[0]!],
          IPPROTO.TCP,
          r.tun!,
          l4,
          r.tun!.length - l4,
        ),
      );
    });

    it('GUE version 1 (direct IP encapsulation) is accepted too', () => {
      const inner = innerTcp();
      const frame = PacketBuilder.eth()
        .ipv4({ src: DIRECTOR, dst: ME })
        .udp({ srcPort: 45000, dstPort: GUE_PORT })
        .payload(inner)
        .build();
      const [d, out] = decapsulator(['gue']);
      const r = run(d, out, frame);
      assert.equal(r.outcome, 'decapsulated');
      assert.deepEqual(r.tun, inner);
    });

    it('GRE with key and sequence number (not sent by IPVS) still decapsulates', () => {
      const inner = innerTcp();
      const frame = PacketBuilder.eth()
        .ipv4({ src: DIRECTOR, dst: ME })
        .gre({ key: 7, seq: 9 })
        .payload(inner)
        .build();
      frame.writeUInt16BE(0x0800, 14 + 20 + 2);
      const [d, out] = decapsulator(['gre']);
      assert.deepEqual(run(d, out, frame).tun, inner);
    });

    it('trailing Ethernet padding is not passed on', () => {
      const inner = PacketBuilder.ipv4({ src: CLIENT, dst: VIP })
        .tcp({ srcPort: 1, dstPort: 2, flags: TCP_FLAG.ACK })
        .build();
      const frame = Buffer.concat([tunnelFrame(inner, { type: ENCAP.IPIP }), Buffer.alloc(6)]);
      const [d, out] = decapsulator(['ipip']);
      assert.deepEqual(run(d, out, frame).tun, inner);
    });
  });

  describe('#handleFrame: ECN (RFC 6040)', () => {
    it('outer CE marks an ECT(0) inner packet CE and keeps its header checksum right', () => {
      const inner = innerTcp({ tos: 0x02 });
      const frame = tunnelFrame(inner, { type: ENCAP.IPIP });
      frame[14 + 1] = 0x03; // outer CE
      frame.writeUInt16BE(0, 14 + 10);
      frame.writeUInt16BE(~csumFold(csumPartial(frame, 14, 20)) & 0xffff, 14 + 10);
      const [d, out] = decapsulator(['ipip']);
      const r = run(d, out, frame);
      assert.equal(r.outcome, 'decapsulated');
      assert.equal(r.tun![1]! & 3, 3, 'inner now CE');
      assert.ok(ipv4HeaderChecksumOk(r.tun!, 0, 20));
    });

    it('outer ECT(1) turns an ECT(0) inner packet ECT(1); CE and not-ECT inner packets stay', () => {
      for (const [innerEcn, want] of [
        [2, 1],
        [3, 3],
        [0, 0],
        [1, 1],
      ] as const) {
        const frame = tunnelFrame(innerTcp({ tos: 0x20 | innerEcn }), { type: ENCAP.IPIP });
        frame[14 + 1] = 0x01; // outer ECT(1)
        frame.writeUInt16BE(0, 14 + 10);
        frame.writeUInt16BE(~csumFold(csumPartial(frame, 14, 20)) & 0xffff, 14 + 10);
        const [d, out] = decapsulator(['ipip']);
        const r = run(d, out, frame);
        assert.equal(r.outcome, 'decapsulated');
        assert.equal(r.tun![1]!, 0x20 | want, `inner ECN ${innerEcn}`);
        assert.ok(ipv4HeaderChecksumOk(r.tun!, 0, 20));
      }
      const frame6 = tunnelFrame(innerTcp6(), { type: ENCAP.IPIP, af: 10 });
      frame6[14 + 1] = (frame6[14 + 1]! & 0xcf) | 0x10; // outer ECT(1)
      const inner6 = frame6.subarray(14 + 40);
      inner6[1] = (inner6[1]! & 0xcf) | 0x20; // inner ECT(0)
      const [d6, out6] = decapsulator(['ipip']);
      const r6 = run(d6, out6, frame6);
      assert.equal(r6.outcome, 'decapsulated');
      assert.equal((r6.tun![1]! >>> 4) & 3, 1);
    });

    it('outer CE over a not-ECT inner packet is dropped', () => {
      const frame = tunnelFrame(innerTcp({ tos: 0 }), { type: ENCAP.GRE });
      frame[14 + 1] = 0x03;
      frame.writeUInt16BE(0, 14 + 10);
      frame.writeUInt16BE(~csumFold(csumPartial(frame, 14, 20)) & 0xffff, 14 + 10);
      const [d, out] = decapsulator(['gre']);
      const r = run(d, out, frame);
      assert.equal(r.outcome, 'ecnDrop');
      assert.equal(r.tun, undefined);
    });
  });

  describe('#handleFrame: everything else is counted and left to the kernel', () => {
    const inner = innerTcp();
    const plainUdp = (port: number, payload: Uint8Array | string) =>
      PacketBuilder.eth()
        .ipv4({ src: DIRECTOR, dst: ME })
        .udp({ srcPort: 1000, dstPort: port })
        .payload(payload)
        .build();
    const corruptOuterChecksum = (f: Buffer) => {
      f[14 + 10]! ^= 0xff;
      return f;
    };
    const fragment = (f: Buffer) => {
      f.writeUInt16BE(0x2000, 14 + 6); // MF
      f.writeUInt16BE(0, 14 + 10);
      f.writeUInt16BE(~csumFold(csumPartial(f, 14, 20)) & 0xffff, 14 + 10);
      return f;
    };
    const rows: {
      description: string;
      types: DecapType[];
      frame: () => Buffer;
      status?: number;
      pktType?: number;
      verdict: (typeof OUTCOME_NAMES)[number];
    }[] = [
      {
        description: 'a tunnel to another address',
        types: ['ipip'],
        frame: () => tunnelFrame(inner, { type: ENCAP.IPIP, dst: '198.51.100.99' }),
        verdict: 'notForUs',
      },
      {
        description: 'our own outgoing frame',
        types: ['ipip'],
        frame: () => tunnelFrame(inner, { type: ENCAP.IPIP }),
        pktType: PKTTYPE.OUTGOING,
        verdict: 'notForUs',
      },
      {
        description: 'a frame for another host (promiscuous)',
        types: ['ipip'],
        frame: () => tunnelFrame(inner, { type: ENCAP.IPIP }),
        pktType: PKTTYPE.OTHERHOST,
        verdict: 'notForUs',
      },
      {
        description: 'ARP',
        types: ['ipip'],
        frame: () =>
          PacketBuilder.eth()
            .arp({
              op: 1,
              sha: '02:00:00:00:00:01',
              spa: DIRECTOR,
              tha: '00:00:00:00:00:00',
              tpa: ME,
            })
            .build(),
        verdict: 'notForUs',
      },
      {
        description: 'plain TCP to us',
        types: ['ipip', 'gue', 'gre'],
        frame: () =>
          PacketBuilder.eth()
            .ipv4({ src: CLIENT, dst: ME })
            .tcp({ srcPort: 1, dstPort: 22, flags: TCP_FLAG.SYN })
            .build(),
        verdict: 'notTunnel',
      },
      {
        description: 'plain UDP to another port',
        types: ['gue'],
        frame: () => plainUdp(53, 'not a tunnel'),
        verdict: 'notTunnel',
      },
      {
        description: 'UDP when GUE is not decapsulated',
        types: ['ipip'],
        frame: () => tunnelFrame(inner, { type: ENCAP.GUE }),
        verdict: 'notTunnel',
      },
      {
        description: 'GUE on another UDP port',
        types: ['gue'],
        frame: () => tunnelFrame(inner, { type: ENCAP.GUE, port: 5555 }),
        verdict: 'otherPort',
      },
      {
        description: 'GRE when only IPIP is decapsulated',
        types: ['ipip'],
        frame: () => tunnelFrame(inner, { type: ENCAP.GRE }),
        verdict: 'wrongType',
      },
      {
        description: 'IPIP when only GUE is decapsulated',
        types: ['gue'],
        frame: () => tunnelFrame(inner, { type: ENCAP.IPIP }),
        verdict: 'wrongType',
      },
      {
        description: 'outer protocol 4 carrying an IPv6 packet',
        types: ['ipip'],
        frame: () => {
          const f = tunnelFrame(innerTcp6(), { type: ENCAP.IPIP });
          f[14 + 9] = 4;
          f.writeUInt16BE(0, 14 + 10);
          f.writeUInt16BE(~csumFold(csumPartial(f, 14, 20)) & 0xffff, 14 + 10);
          return f;
        },
        verdict: 'malformed',
      },
      {
        description: 'an inner total length beyond the outer packet',
        types: ['gre'],
        frame: () => {
          const f = tunnelFrame(inner, { type: ENCAP.GRE });
          f.writeUInt16BE(inner.length + 10, 14 + 20 + 4 + 2);
          return f;
        },
        verdict: 'malformed',
      },
      {
        description: 'a GUE header longer than the datagram',
        types: ['gue'],
        frame: () => plainUdp(GUE_PORT, Buffer.from([31, 4, 0, 0])),
        verdict: 'malformed',
      },
      {
        description: 'remote checksum offload pointing beyond the inner packet',
        types: ['gue'],
        frame: () =>
          tunnelFrame(inner, { type: ENCAP.GUE, remcsum: { start: 20, offset: inner.length } }),
        verdict: 'malformed',
      },
      {
        description: 'a bad outer IPv4 header checksum',
        types: ['ipip'],
        frame: () => corruptOuterChecksum(tunnelFrame(inner, { type: ENCAP.IPIP })),
        verdict: 'badChecksum',
      },
      {
        description: 'a bad GRE checksum',
        types: ['gre'],
        frame: () => {
          const f = tunnelFrame(inner, { type: ENCAP.GRE, csum: true });
          f[f.length - 1]! ^= 0x5a;
          return f;
        },
        verdict: 'badChecksum',
      },
      {
        description: 'a bad GUE UDP checksum',
        types: ['gue'],
        frame: () => {
          const f = tunnelFrame(inner, { type: ENCAP.GUE, csum: true });
          f[f.length - 1]! ^= 0x5a;
          return f;
        },
        verdict: 'badChecksum',
      },
      {
        description: 'an outer fragment',
        types: ['ipip'],
        frame: () => fragment(tunnelFrame(inner, { type: ENCAP.IPIP })),
        verdict: 'fragment',
      },
      {
        description: 'GRE carrying Ethernet (0x6558)',
        types: ['gre'],
        frame: () => {
          const f = tunnelFrame(inner, { type: ENCAP.GRE });
          f.writeUInt16BE(0x6558, 14 + 20 + 2);
          return f;
        },
        verdict: 'unsupported',
      },
      {
        description: 'GRE version 1 (PPTP)',
        types: ['gre'],
        frame: () => {
          const f = tunnelFrame(inner, { type: ENCAP.GRE });
          f[14 + 20 + 1] = 1;
          return f;
        },
        verdict: 'unsupported',
      },
      {
        description: 'GRE over IPv4 with reserved bits above the version (gre_rcv: ver >= 2)',
        types: ['gre'],
        frame: () => {
          const f = tunnelFrame(inner, { type: ENCAP.GRE });
          f[14 + 20 + 1] = 0x08;
          return f;
        },
        verdict: 'unsupported',
      },
      {
        description: 'GUE with a flag other than the private-flags word',
        types: ['gue'],
        frame: () => plainUdp(GUE_PORT, Buffer.concat([Buffer.from([0, 4, 0x80, 0]), inner])),
        verdict: 'unsupported',
      },
      {
        description: 'GUE with a private flag other than remote checksum offload',
        types: ['gue'],
        frame: () =>
          plainUdp(GUE_PORT, Buffer.concat([Buffer.from([1, 4, 0, 1, 0x40, 0, 0, 0]), inner])),
        verdict: 'unsupported',
      },
      {
        description: 'GUE announcing remote checksum offload without room for its option',
        types: ['gue'],
        frame: () =>
          plainUdp(GUE_PORT, Buffer.concat([Buffer.from([1, 4, 0, 1, 0x80, 0, 0, 0]), inner])),
        verdict: 'unsupported',
      },
      {
        description: 'a GUE control message',
        types: ['gue'],
        frame: () => plainUdp(GUE_PORT, Buffer.from([0x20, 0, 0, 0, 1, 2, 3, 4])),
        verdict: 'unsupported',
      },
      {
        description: 'GUE carrying another protocol (47)',
        types: ['gue'],
        frame: () => plainUdp(GUE_PORT, Buffer.concat([Buffer.from([0, 47, 0, 0]), inner])),
        verdict: 'unsupported',
      },
    ];
    for (const r of rows) {
      it(`${r.description} → ${r.verdict}`, () => {
        const [d, out] = decapsulator(r.types);
        const res = run(d, out, r.frame(), r.status ?? 0, r.pktType ?? PKTTYPE.HOST);
        assert.equal(res.outcome, r.verdict);
        assert.equal(res.tun, undefined, 'nothing written to the TUN device');
        assert.equal(d.counters()[r.verdict], 1);
      });
    }

    it('a checksum marked not-yet-computed (TP_STATUS_CSUMNOTREADY) is not verified', () => {
      const f = tunnelFrame(inner, { type: ENCAP.GRE, csum: true });
      f[14 + 20 + 4]! ^= 0xff; // GRE checksum field
      const [d, out] = decapsulator(['gre']);
      assert.equal(run(d, out, f, TP_STATUS.CSUMNOTREADY).outcome, 'decapsulated');
    });
  });

  describe('#handleFrame: outer fragments are reassembled first', () => {
    /** The IPv4 frame `f` as two outer fragments split `at` bytes into its payload. */
    function fragments4(f: Buffer, at: number): Buffer[] {
      const ip = 14;
      const payload = f.subarray(ip + 20);
      const parts = [payload.subarray(0, at), payload.subarray(at)];
      return parts.map((p, i) => {
        const g = Buffer.concat([f.subarray(0, ip + 20), p]);
        g.writeUInt16BE(20 + p.length, ip + 2);
        g.writeUInt16BE((i === 0 ? 0x2000 : 0) | ((i === 0 ? 0 : at) >>> 3), ip + 6);
        g.writeUInt16BE(0, ip + 10);
        g.writeUInt16BE(~csumFold(csumPartial(g, ip, 20)) & 0xffff, ip + 10);
        return g;
      });
    }
    /** The IPv6 frame `f` (no extension header) as two fragments split `at` bytes in. */
    function fragments6(f: Buffer, at: number): Buffer[] {
      const ip = 14;
      const nh = f[ip + 6]!;
      const payload = f.subarray(ip + 40);
      const parts = [payload.subarray(0, at), payload.subarray(at)];
      return parts.map((p, i) => {
        const fh = Buffer.alloc(8);
        fh[0] = nh;
        fh.writeUInt16BE((i === 0 ? 0 : at) | (i === 0 ? 1 : 0), 2);
        fh.writeUInt32BE(0xfeed, 4);
        const g = Buffer.concat([f.subarray(0, ip + 40), fh, p]);
        g[ip + 6] = 44;
        g.writeUInt16BE(8 + p.length, ip + 4);
        return g;
      });
    }

    const big = innerTcp({ payload: 'x'.repeat(1400) });
    for (const [name, type, af, split] of [
      ['IPIP', ENCAP.IPIP, 2, fragments4],
      ['GUE', ENCAP.GUE, 2, fragments4],
      ['GRE', ENCAP.GRE, 2, fragments4],
      ['IPIP over IPv6', ENCAP.IPIP, 10, fragments6],
      ['GUE over IPv6', ENCAP.GUE, 10, fragments6],
    ] as const) {
      it(`${name}: two outer fragments, in either order, give the inner packet whole`, () => {
        const types: DecapType[] = [
          type === ENCAP.GUE ? 'gue' : type === ENCAP.GRE ? 'gre' : 'ipip',
        ];
        for (const reverse of [false, true]) {
          const [d, out] = decapsulator(types);
          const frags = split(tunnelFrame(big, { type, af }), 1000);
          if (reverse) frags.reverse();
          const first = run(d, out, frags[0]!);
          assert.deepEqual([first.outcome, first.tun], ['fragment', undefined]);
          const second = run(d, out, frags[1]!);
          assert.equal(second.outcome, 'decapsulated');
          assert.deepEqual(second.tun, big);
          assert.equal(d.reasm.size, 0, 'nothing left held');
        }
      });
    }

    it('a fragment of a tunnel type not taken, or of another protocol, is not held', () => {
      const [d, out] = decapsulator(['gre']);
      const [f] = fragments4(tunnelFrame(big, { type: ENCAP.IPIP }), 1000);
      assert.equal(run(d, out, f!).outcome, 'wrongType');
      const tcp = PacketBuilder.eth()
        .ipv4({ src: DIRECTOR, dst: ME, mf: true })
        .tcp({ srcPort: 1, dstPort: 2, flags: TCP_FLAG.SYN })
        .payload('y'.repeat(64))
        .build();
      assert.equal(run(d, out, Buffer.from(tcp)).outcome, 'notTunnel');
      assert.equal(d.reasm.size, 0);
    });
  });

  describe('#handleBatch and #commit', () => {
    it('counts frames the TUN device has no room for as txDropped', () => {
      const [d, out] = decapsulator(['ipip'], new CaptureIO(2));
      for (let i = 0; i < 3; i++) {
        const f = tunnelFrame(innerTcp(), { type: ENCAP.IPIP });
        d.count[d.handleFrame(f, 0, f.length)]!++;
      }
      d.commit();
      assert.equal(out.frames.length, 2);
      const c = d.counters();
      assert.equal(c.decapsulated, 2);
      assert.equal(c.txDropped, 1);
    });

    it('setAddresses changes which outer destinations are ours', () => {
      const [d, out] = decapsulator(['ipip']);
      const f = tunnelFrame(innerTcp(), { type: ENCAP.IPIP, dst: '198.51.100.77' });
      assert.equal(run(d, out, f).outcome, 'notForUs');
      d.setAddresses([addr('198.51.100.77')]);
      assert.equal(run(d, out, f).outcome, 'decapsulated');
    });
  });

  describe('looksLikeGue', () => {
    it('recognises a GUE v0 header carrying a whole IPv4 or IPv6 packet, nothing else', () => {
      const v4 = Buffer.concat([Buffer.from([0, 4, 0, 0]), innerTcp()]);
      const v6 = Buffer.concat([Buffer.from([0, 41, 0, 0]), innerTcp6()]);
      assert.ok(looksLikeGue(v4, 0, v4.length));
      assert.ok(looksLikeGue(v6, 0, v6.length));
      assert.ok(!looksLikeGue(v4, 0, v4.length - 1), 'length must match');
      assert.ok(!looksLikeGue(Buffer.from('DNS query bytes here, not GUE'), 0, 29));
    });
  });
});

describe('validateDecapOptions', () => {
  it('refuses no type, an unknown type and GUE without a port', () => {
    assert.throws(() => validateDecapOptions({ types: [] }), /no tunnel type/);
    assert.throws(
      () => validateDecapOptions({ types: ['vxlan' as DecapType] }),
      /unknown tunnel type/,
    );
    assert.throws(() => validateDecapOptions({ types: ['gue'] }), /--gue-port/);
    assert.throws(() => validateDecapOptions({ types: ['gue'], guePort: 70000 }), /--gue-port/);
    assert.equal(typeof validateDecapOptions({ types: ['gue'], guePort: 6080 }), 'number');
  });
});

describe('ipvs realserver arguments', () => {
  it('parses every option', () => {
    const r = parseRealserverArgs([
      '--decap',
      'gue,ipip',
      '--iface=eth1',
      '--gue-port',
      '6080',
      '--tun',
      'rs1',
      '--vip',
      VIP,
      '--vip',
      '2001:db8::5',
      '--setup-host',
      '--stats-interval',
      '5',
    ]);
    assert.ok(typeof r !== 'string', String(r));
    assert.deepEqual(r.types, ['gue', 'ipip']);
    assert.equal(r.iface, 'eth1');
    assert.equal(r.guePort, 6080);
    assert.equal(r.tun, 'rs1');
    assert.equal(r.vips?.length, 2);
    assert.equal(r.setupHost, true);
    assert.equal(r.statsInterval, 5);
  });

  const usage: [string[], RegExp][] = [
    [['--iface', 'eth0'], /--decap is required/],
    [['--decap', 'ipip'], /--iface is required/],
    [['--decap', 'gue', '--iface', 'eth0'], /needs --gue-port/],
    [['--decap', 'vxlan', '--iface', 'eth0'], /unknown tunnel type 'vxlan'/],
    [['--decap', 'gue', '--iface', 'eth0', '--gue-port', '0'], /1\.\.65535/],
    [['--decap', 'ipip', '--iface', 'eth0', '--gue-port', '6080'], /only for --decap gue/],
    [['--decap', 'ipip', '--iface', 'eth0', '--vip', 'nope'], /not an IPv4 or IPv6 address/],
    [['--decap', 'ipip', '--iface', 'eth0', '--bogus'], /unknown option '--bogus'/],
    [['--decap', 'ipip', '--iface', 'an-interface-name-too-long'], /invalid interface name/],
  ];
  for (const [args, re] of usage) {
    it(`exits 2 with a usage message for: ${args.join(' ')}`, async () => {
      let err = '';
      const code = await runRealserver(args, {
        stdout: { write: () => true },
        stderr: { write: (s: string) => (err += s) },
        signals: false,
      });
      assert.equal(code, 2);
      assert.match(err, re);
      assert.match(err, /Usage: ipvs realserver/);
    });
  }

  it('--help prints the usage on stdout and exits 0', async () => {
    let out = '';
    const code = await runRealserver(['--help'], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: () => true },
    });
    assert.equal(code, 0);
    assert.match(out, /--gue-port N/);
  });
});
