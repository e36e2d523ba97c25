/**
 * IPv4 options through the director, as a Linux host treats them (net/ipv4/ip_options.c): checked
 * and filled on receive before IPVS sees the packet (record route and timestamps get the
 * director's address and time), answered with a parameter problem when bad, dropped when source
 * routed, rewritten when forwarded, echoed by what the host answers, and left out of later
 * fragments when not copied.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PacketBuilder } from '../../../src/packet/index.js';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { CLIENT, MAC, RS1, VIP, checksumErrors, makeLab, natLab } from './lab.js';
import { ACK, SYN, dec, ipv4Sum, rsTcp4, src, tcp4, udp4 } from './frames.js';

/** `f` with `opts` (a multiple of 4 bytes) inserted after its IPv4 header. */
function withOpts(f: Buffer, opts: number[]): Buffer {
  const ihl = (f[14]! & 15) * 4;
  const out = Buffer.concat([f.subarray(0, 14 + ihl), Buffer.from(opts), f.subarray(14 + ihl)]);
  out[14] = 0x40 | ((ihl + opts.length) >> 2);
  out.writeUInt16BE(out.readUInt16BE(16) + opts.length, 16);
  ipv4Sum(out);
  return out;
}

/** The options of the IPv4 header at `f[at…)`, as bytes. */
function opts(f: Buffer, at = 14): number[] {
  return [...f.subarray(at + 20, at + (f[at]! & 15) * 4)];
}

const ip = (s: string): number[] => s.split('.').map(Number);
/** The source of the IPv4 packet an ICMP error `f` quotes (read as bytes: its options may be bad). */
function quotedSrc(f: Buffer): string {
  const q = 14 + (f[14]! & 15) * 4 + 8;
  return [...f.subarray(q + 12, q + 16)].join('.');
}
const be32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
/** An empty record route with one slot. */
const RR1 = [7, 7, 4, 0, 0, 0, 0, 0];

function lab(fwd: number) {
  const l = makeLab();
  l.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
  l.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS1, fwd === 0 ? 8080 : 80, { fwd }));
  l.ipvs.addService(svcSpec(VIP, 53, { protocol: 17, scheduler: 'rr' }));
  l.ipvs.addDest(svcSpec(VIP, 53, { protocol: 17 }), destSpec(RS1, 53, { fwd }));
  return l;
}

describe('IPv4 options', () => {
  it('record route and timestamps get the VIP and the time on receive, for NAT, DR and TUN', () => {
    for (const fwd of [0, 3, 2]) {
      const l = lab(fwd);
      l.clock.t = 86_400_000 * 3 + 45_296_789; // 12:34:56.789 UTC
      const rr = l.send('eth0', withOpts(tcp4(), [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
      // TUN: the inner header keeps the options, the outer one has none
      const at = fwd === 2 ? 34 : 14;
      const f = rr.eth1[0]!;
      assert.equal(f[14]! & 15, 5 + (fwd === 2 ? 0 : 3));
      assert.deepEqual(opts(f, at), [7, 11, 8, ...ip(VIP), 0, 0, 0, 0, 0], `fwd ${fwd}`);
      assert.deepEqual(checksumErrors(f), []);
      const ts = l.send(
        'eth0',
        withOpts(udp4({ payload: 'q' }), [68, 12, 5, 0, ...Array(8).fill(0)]),
      );
      assert.deepEqual(opts(ts.eth1[0]!, at), [68, 12, 9, 0, ...be32(45_296_789), 0, 0, 0, 0]);
      // address and time: the VIP, then the time
      const ta = l.send(
        'eth0',
        withOpts(udp4({ sport: 5000, payload: 'q' }), [68, 12, 5, 1, ...Array(8).fill(0)]),
      );
      assert.deepEqual(opts(ta.eth1[0]!, at), [68, 12, 13, 1, ...ip(VIP), ...be32(45_296_789)]);
    }
  });

  it('a full timestamp counts its overflow; bytes after the end of the list are blanked', () => {
    const l = lab(0);
    const r = l.send('eth0', withOpts(tcp4(), [68, 8, 9, 0x30, 1, 2, 3, 4]));
    assert.deepEqual(opts(r.eth1[0]!), [68, 8, 9, 0x40, 1, 2, 3, 4]);
    const e = l.send('eth0', withOpts(tcp4({ sport: 40001 }), [1, 0, 0x55, 0x66]));
    assert.deepEqual(opts(e.eth1[0]!), [1, 0, 0, 0]);
    assert.deepEqual(checksumErrors(e.eth1[0]!), []);
    // unknown options and router alert pass as they are
    const u = l.send('eth0', withOpts(tcp4({ sport: 40002 }), [30, 4, 9, 9, 148, 4, 0, 0]));
    assert.deepEqual(opts(u.eth1[0]!), [30, 4, 9, 9, 148, 4, 0, 0]);
  });

  it('a forwarded NAT reply’s record-route entry is the address it leaves from', () => {
    const l = natLab();
    l.send('eth0', tcp4({ flags: SYN }));
    const r = l.send('eth1', withOpts(rsTcp4({ flags: SYN | ACK }), RR1));
    assert.equal(r.reason, 'forwarded');
    const f = r.eth0[0]!;
    assert.deepEqual([src(dec(f)), opts(f)], [VIP, [7, 7, 8, ...ip('10.0.0.1'), 0]]);
    assert.deepEqual(checksumErrors(f), []);
  });

  it('a bad option gets a parameter problem pointing at it, from the VIP; nothing goes on', () => {
    const cases: [string, number[], number][] = [
      ['option length 0', [30, 0, 0, 0], 20],
      ['option past the header', [30, 8, 0, 0], 20],
      ['a lone type byte at the end', [1, 1, 1, 30], 23],
      ['record route pointer below 4', [7, 7, 3, 0, 0, 0, 0, 0], 22],
      ['record route shorter than 3', [7, 2, 1, 1], 21],
      ['record route without room for the entry', [7, 7, 6, 0, 0, 0, 0, 0], 22],
      ['a second record route', [7, 7, 8, 1, 2, 3, 4, 1, 7, 7, 4, 0, 0, 0, 0, 0], 28],
      ['timestamp pointer below 5', [68, 8, 4, 0, 0, 0, 0, 0], 22],
      ['timestamp full with overflow 15', [68, 8, 9, 0xf0, 0, 0, 0, 0], 23],
      ['address timestamp without room', [68, 8, 5, 1, 0, 0, 0, 0], 22],
      ['router alert shorter than 4', [148, 2, 1, 1], 21],
      ['two source routes', [131, 3, 4, 131, 3, 4, 0, 0], 23],
      ['CIPSO (no DOI configured)', [134, 10, 0, 0, 0, 1, 1, 4, 0, 0, 0, 0], 22],
    ];
    for (const [what, o, ptr] of cases) {
      const l = lab(0);
      const r = l.send('eth0', withOpts(tcp4(), o));
      assert.deepEqual([r.reason, r.eth1.length, r.eth0.length], ['ip-bad-options', 0, 1], what);
      const f = r.eth0[0]!;
      const v = dec(f);
      assert.deepEqual([v.icmpType, v.icmpCode, f[14 + (f[14]! & 15) * 4 + 4]], [12, 0, ptr], what);
      assert.deepEqual([src(v), quotedSrc(f)], [VIP, CLIENT], what);
      assert.equal(l.ipvs.conns.count, 0, what);
    }
    // a CIPSO option is recorded before it is refused, so the error carries it back
    const cipso = [134, 10, 0, 0, 0, 1, 1, 4, 0, 0, 0, 0];
    const c = lab(0).send('eth0', withOpts(tcp4(), cipso)).eth0[0]!;
    assert.deepEqual(opts(c), cipso);
    // the options found before the bad one are echoed: the first record route, with the VIP
    // added for the error
    const l = lab(0);
    const r = l.send(
      'eth0',
      withOpts(tcp4(), [7, 11, 4, ...Array(8).fill(0), 7, 7, 4, 0, 0, 0, 0, 1, 1]),
    );
    const f = r.eth0[0]!;
    assert.equal(f[14 + (f[14]! & 15) * 4 + 4], 31);
    assert.deepEqual(opts(f), [7, 11, 12, ...ip(VIP), ...ip(VIP), 0]);
    // the quote is the header as the receive left it: the entry written, its checksum not
    // recomputed (ip_options_compile stopped at the error, before anyone would)
    assert.deepEqual(checksumErrors(f), ['outer: quoted IPv4 header checksum']);
  });

  it('drops source-routed packets without a word (accept_source_route 0)', () => {
    const l = natLab();
    for (const o of [
      [131, 7, 4, 192, 0, 2, 1, 0],
      [137, 7, 4, 192, 0, 2, 1, 0],
    ]) {
      const r = l.send('eth0', withOpts(tcp4(), o));
      assert.deepEqual([r.reason, r.eth0.length, r.eth1.length], ['source-route', 0, 0]);
    }
    l.send('eth0', tcp4({ sport: 40001 }));
    const r = l.send(
      'eth1',
      withOpts(rsTcp4({ dport: 40001, flags: SYN | ACK }), [131, 7, 4, 10, 0, 0, 9, 0]),
    );
    assert.deepEqual([r.reason, r.eth0.length], ['source-route', 0]);
  });

  it('the VIP’s echo reply, reset and port unreachable echo record route and timestamp', () => {
    const l = lab(0);
    l.clock.t = 86_400_000 + 1000; // a day after the clock's start (the ICMP limits' buckets full)
    const ping = (o: number[]): Buffer =>
      withOpts(
        Buffer.from(
          PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
            .ipv4({ src: CLIENT, dst: VIP })
            .icmp({ type: 8, code: 0, rest: 0x12340001 })
            .payload('abcdefgh')
            .build(),
        ),
        o,
      );
    // `ping -R`: nine slots, the client's own first
    const rr = [7, 39, 8, ...ip(CLIENT), ...Array(32).fill(0), 1];
    const e = l.send('eth0', ping(rr));
    const reply = e.eth0[0]!;
    assert.deepEqual(dec(reply).icmpType, 0);
    assert.deepEqual(opts(reply), [
      7,
      39,
      16,
      ...ip(CLIENT),
      ...ip(VIP),
      ...ip(VIP),
      ...Array(24).fill(0),
      0,
    ]);
    assert.deepEqual(checksumErrors(reply), []);
    // a timestamp: the receive's, then the reply's
    const t = l.send('eth0', ping([68, 12, 5, 0, ...Array(8).fill(0)]));
    assert.deepEqual(opts(t.eth0[0]!), [68, 12, 13, 0, ...be32(1000), ...be32(1000)]);
    // only record route and timestamp are echoed
    const ra = l.send('eth0', ping([148, 4, 0, 0]));
    assert.equal(ra.eth0[0]![14], 0x45);
    const rst = l.send('eth0', withOpts(tcp4({ dport: 81 }), RR1.slice(0, 4).concat([0, 0, 0, 0])));
    assert.deepEqual([dec(rst.eth0[0]!).tcpFlags & 4, rst.eth0[0]![14]], [4, 0x47]);
    const un = l.send(
      'eth0',
      withOpts(udp4({ dport: 9999, payload: 'x' }), [7, 11, 4, ...Array(9).fill(0)]),
    );
    const u = un.eth0[0]!;
    assert.deepEqual([dec(u).icmpType, opts(u)], [3, [7, 11, 12, ...ip(VIP), ...ip(VIP), 0]]);
    assert.deepEqual(checksumErrors(u), []);
  });

  it('a reassembled request keeps its first fragment’s options: the reply echoes them', () => {
    const l = lab(0);
    l.clock.t = 86_400_000 + 1000;
    const ping = withOpts(
      Buffer.from(
        PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
          .ipv4({ src: CLIENT, dst: VIP, id: 0x99 })
          .icmp({ type: 8, code: 0, rest: 0x10001 })
          .payload(Buffer.alloc(200, 5))
          .build(),
      ),
      [7, 11, 4, ...Array<number>(9).fill(0)],
    );
    const ihl = (ping[14]! & 15) * 4;
    const data = ping.subarray(14 + ihl);
    const frag = (at: number, n: number, more: boolean): Buffer => {
      const f = Buffer.concat([ping.subarray(0, 14 + ihl), data.subarray(at, at + n)]);
      f.writeUInt16BE(ihl + n, 16);
      f.writeUInt16BE((more ? 0x2000 : 0) | (at >>> 3), 20);
      ipv4Sum(f);
      return f;
    };
    assert.equal(l.send('eth0', frag(0, 64, true)).reason, 'frag-held');
    const r = l.send('eth0', frag(64, data.length - 64, false));
    assert.equal(r.reason, 'vip-host');
    // the first fragment's slot got the VIP on receive; the reply adds its own
    assert.deepEqual(opts(r.eth0[0]!), [7, 11, 12, ...ip(VIP), ...ip(VIP), 0]);
    assert.deepEqual(checksumErrors(r.eth0[0]!), []);
  });

  it('an error the director sends echoes the options and quotes less to stay within 576 bytes', () => {
    const l = natLab();
    l.eth1.mtu = 1000;
    const r = l.send('eth0', withOpts(tcp4({ df: true, payload: 1200 }), RR1));
    const f = r.eth0[0]!;
    assert.deepEqual([dec(f).icmpType, dec(f).icmpCode], [3, 4]);
    assert.deepEqual(opts(f), [7, 7, 8, ...ip(VIP), 0]);
    assert.equal(f.length - 14, 576);
    assert.deepEqual(checksumErrors(f), []);
  });

  it('later fragments carry no-operations for options without the copied bit', () => {
    for (const fwd of [0, 3]) {
      const l = lab(fwd);
      l.eth1.mtu = 500;
      const whole = udp4({ dport: 53, payload: 1000, id: 77 });
      const body = whole.subarray(34);
      const frag = (off: number, data: Buffer, mf: boolean, o: number[]): Buffer => {
        const f = Buffer.from(whole.subarray(0, 34 + data.length));
        data.copy(f, 34);
        f.writeUInt16BE(20 + data.length, 16);
        f.writeUInt16BE((mf ? 0x2000 : 0) | (off >> 3), 20);
        ipv4Sum(f);
        return withOpts(f, o);
      };
      // router alert (copied) and record route (not copied)
      const raRr = [148, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0];
      const nop = [148, 4, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0];
      l.send('eth0', frag(0, body.subarray(0, 600), true, raRr));
      const r = l.send('eth0', frag(600, body.subarray(600), false, nop));
      assert.equal(r.eth1.length, 3, `fwd ${fwd}`);
      assert.deepEqual(
        r.eth1.map((f) => opts(f)),
        [[148, 4, 0, 0, 7, 7, 8, ...ip(VIP), 0], nop, nop],
      );
      for (const f of r.eth1) assert.deepEqual(checksumErrors(f), []);
    }
  });

  it('an ICMP error quoting a header with bad options is still related to its connection', () => {
    const l = natLab();
    l.send('eth0', tcp4({ flags: SYN }));
    const req = withOpts(tcp4({ dst: RS1, dport: 8080 }), [30, 0, 0, 0]);
    const err = Buffer.from(
      PacketBuilder.eth({ src: MAC.rs1, dst: MAC.eth1 })
        .ipv4({ src: RS1, dst: CLIENT })
        .icmp({ type: 3, code: 3, rest: 0 })
        .payload(req.subarray(14))
        .build(),
    );
    const r = l.send('eth1', err);
    assert.equal(r.reason, 'forwarded');
    const f = r.eth0[0]!;
    const q = 14 + (f[14]! & 15) * 4 + 8;
    assert.deepEqual(
      [src(dec(f)), quotedSrc(f), [...f.subarray(q + 16, q + 20)]],
      [VIP, CLIENT, ip(VIP)],
    );
  });
});
