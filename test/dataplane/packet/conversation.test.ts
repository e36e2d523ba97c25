/**
 * A whole TCP conversation (handshake, data both ways, close) replayed as frames through the engine
 * over the memory frame-I/O backend, for NAT and for DR, with the connection's state, timeout and
 * the destination's ActiveConn / InActConn checked after every frame against spec §4.1 ("Typical
 * NAT lifecycle", "Typical DR lifecycle") and §1.3.3.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../../../src/core/addr.js';
import { createMemoryPair, type MemoryIO } from '../../../src/dataplane/io/memory.js';
import { PacketEngine } from '../../../src/dataplane/packet/engine.js';
import { parseMac } from '../../../src/dataplane/packet/net.js';
import { destSpec, makeIpvs, svcSpec } from '../../helpers/ipvs.js';
import { CLIENT, MAC, RS1, RS2, VIP, checksumErrors, makeLab } from './lab.js';
import { ACK, FIN, PSH, SYN, dec, dmac, dst, rsTcp4, src, tcp4, udp4 } from './frames.js';

function memLab(fwd: number) {
  const { ipvs } = makeIpvs();
  const engine = new PacketEngine(ipvs);
  const [d0, c0] = createMemoryPair();
  const [d1, s1] = createMemoryPair();
  const eth0 = engine.net.addIface({ name: 'eth0', mac: MAC.eth0, addrs: ['10.0.0.1/24'], io: d0 });
  const eth1 = engine.net.addIface({
    name: 'eth1',
    mac: MAC.eth1,
    addrs: ['192.168.1.1/24'],
    io: d1,
  });
  engine.neigh.addStatic(eth0, 2, parseIp(CLIENT)!.words, parseMac(MAC.client));
  engine.neigh.addStatic(eth1, 2, parseIp(RS1)!.words, parseMac(MAC.rs1));
  d0.onFrames((b) => engine.receive(eth0, b));
  d1.onFrames((b) => engine.receive(eth1, b));
  const atClient: Buffer[] = [];
  const atServer: Buffer[] = [];
  const grab = (io: MemoryIO, into: Buffer[]): void =>
    io.onFrames((b) => {
      for (let i = 0; i < b.count; i++) into.push(Buffer.from(b.frame(i)));
    });
  grab(c0, atClient);
  grab(s1, atServer);
  const k = svcSpec(VIP, 80, { scheduler: 'wlc' });
  ipvs.addService(k);
  const dest = ipvs.addDest(k, destSpec(RS1, fwd === 0 ? 8080 : 80, { fwd }));
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
  };
  const send = async (
    side: 'client' | 'server',
    f: Buffer,
  ): Promise<{ client: Buffer[]; server: Buffer[] }> => {
    atClient.length = 0;
    atServer.length = 0;
    const io = side === 'client' ? c0 : s1;
    assert.ok(io.send(f));
    io.txCommit();
    await settle();
    return { client: [...atClient], server: [...atServer] };
  };
  return {
    ipvs,
    engine,
    dest,
    send,
    close: () => Promise.all([d0, c0, d1, s1].map((x) => x.close())),
  };
}

interface Step {
  description: string;
  from: 'client' | 'server';
  flags: number;
  payload?: string;
  state: string;
  timeout: number;
  active: number;
  inact: number;
}

const cs = (o: { flags: number; seq: number; ack: number; payload?: string }) =>
  tcp4({ flags: o.flags, seq: o.seq, ack: o.ack, payload: o.payload });

describe('a TCP conversation through the engine (memory backend)', () => {
  const nat: Step[] = [
    {
      description: 'client SYN',
      from: 'client',
      flags: SYN,
      state: 'SYN_RECV',
      timeout: 60,
      active: 1,
      inact: 0,
    },
    {
      description: 'server SYN+ACK',
      from: 'server',
      flags: SYN | ACK,
      state: 'SYN_RECV',
      timeout: 60,
      active: 1,
      inact: 0,
    },
    {
      description: 'client ACK',
      from: 'client',
      flags: ACK,
      state: 'ESTABLISHED',
      timeout: 900,
      active: 1,
      inact: 0,
    },
    {
      description: 'client data',
      from: 'client',
      flags: PSH | ACK,
      payload: 'GET / HTTP/1.0\r\n\r\n',
      state: 'ESTABLISHED',
      timeout: 900,
      active: 1,
      inact: 0,
    },
    {
      description: 'server data',
      from: 'server',
      flags: PSH | ACK,
      payload: 'HTTP/1.0 200 OK\r\n\r\nhello',
      state: 'ESTABLISHED',
      timeout: 900,
      active: 1,
      inact: 0,
    },
    {
      description: 'client FIN',
      from: 'client',
      flags: FIN | ACK,
      state: 'CLOSE_WAIT',
      timeout: 60,
      active: 0,
      inact: 1,
    },
    {
      description: 'server ACK',
      from: 'server',
      flags: ACK,
      state: 'CLOSE_WAIT',
      timeout: 60,
      active: 0,
      inact: 1,
    },
    {
      description: 'server FIN',
      from: 'server',
      flags: FIN | ACK,
      state: 'TIME_WAIT',
      timeout: 120,
      active: 0,
      inact: 1,
    },
    {
      description: 'client last ACK',
      from: 'client',
      flags: ACK,
      state: 'TIME_WAIT',
      timeout: 120,
      active: 0,
      inact: 1,
    },
  ];

  it('NAT: every frame rewritten both ways, states and counters as spec §4.1 says', async () => {
    const lab = memLab(0);
    let cseq = 1000;
    let sseq = 5000;
    try {
      for (const s of nat) {
        const len = s.payload?.length ?? 0;
        const f =
          s.from === 'client'
            ? cs({ flags: s.flags, seq: cseq, ack: sseq, payload: s.payload })
            : tcp4({
                src: RS1,
                dst: CLIENT,
                sport: 8080,
                dport: 40000,
                smac: MAC.rs1,
                dmac: MAC.eth1,
                flags: s.flags,
                seq: sseq,
                ack: cseq,
                payload: s.payload,
              });
        const out = await lab.send(s.from, f);
        const got = s.from === 'client' ? out.server : out.client;
        assert.equal(got.length, 1, `${s.description}: one frame out`);
        const v = dec(got[0]!);
        if (s.from === 'client')
          assert.deepEqual([dst(v), v.dstPort, dmac(got[0]!)], [RS1, 8080, MAC.rs1], s.description);
        else
          assert.deepEqual(
            [src(v), v.srcPort, dmac(got[0]!)],
            [VIP, 80, MAC.client],
            s.description,
          );
        assert.equal(v.payloadLength, len);
        assert.deepEqual(checksumErrors(got[0]!), [], s.description);
        const [c] = lab.ipvs.listConns();
        assert.deepEqual(
          [c!.stateName, c!.expiresMs / 1000, lab.dest.activeConns, lab.dest.inactConns],
          [s.state, s.timeout, s.active, s.inact],
          s.description,
        );
        if (s.from === 'client') cseq += len + (s.flags & (SYN | FIN) ? 1 : 0);
        else sseq += len + (s.flags & (SYN | FIN) ? 1 : 0);
      }
      const st = lab.dest.stats.snapshot();
      assert.deepEqual([st.conns, st.inpkts, st.outpkts], [1, 5, 4]);
    } finally {
      await lab.close();
    }
  });

  const dr: Step[] = [
    {
      description: 'client SYN',
      from: 'client',
      flags: SYN,
      state: 'SYN_RECV',
      timeout: 60,
      active: 1,
      inact: 0,
    },
    {
      description: 'client ACK',
      from: 'client',
      flags: ACK,
      state: 'ESTABLISHED',
      timeout: 900,
      active: 1,
      inact: 0,
    },
    {
      description: 'client data',
      from: 'client',
      flags: PSH | ACK,
      payload: 'GET / HTTP/1.0\r\n\r\n',
      state: 'ESTABLISHED',
      timeout: 900,
      active: 1,
      inact: 0,
    },
    {
      description: 'client ACK of the answer',
      from: 'client',
      flags: ACK,
      state: 'ESTABLISHED',
      timeout: 900,
      active: 1,
      inact: 0,
    },
    {
      description: 'client FIN',
      from: 'client',
      flags: FIN | ACK,
      state: 'FIN_WAIT',
      timeout: 120,
      active: 0,
      inact: 1,
    },
    {
      description: 'client last ACK',
      from: 'client',
      flags: ACK,
      state: 'FIN_WAIT',
      timeout: 120,
      active: 0,
      inact: 1,
    },
  ];

  it('DR: INPUT_ONLY transitions, frames to the real server MAC unchanged but for TTL', async () => {
    const lab = memLab(3);
    let cseq = 1000;
    try {
      for (const s of dr) {
        const f = cs({ flags: s.flags, seq: cseq, ack: 5001, payload: s.payload });
        const out = await lab.send('client', f);
        assert.equal(out.server.length, 1, s.description);
        const g = out.server[0]!;
        assert.equal(dmac(g), MAC.rs1);
        assert.deepEqual(g.subarray(14 + 20), f.subarray(14 + 20), 'transport bytes untouched');
        assert.deepEqual(checksumErrors(g), []);
        const [c] = lab.ipvs.listConns();
        assert.deepEqual(
          [c!.stateName, c!.expiresMs / 1000, lab.dest.activeConns, lab.dest.inactConns],
          [s.state, s.timeout, s.active, s.inact],
          s.description,
        );
        cseq += (s.payload?.length ?? 0) + (s.flags & (SYN | FIN) ? 1 : 0);
      }
    } finally {
      await lab.close();
    }
  });
});

describe('the fast path', () => {
  it('follows a changed neighbour MAC and a new route toward an established destination', () => {
    const lab = makeLab();
    const k = svcSpec(VIP, 80, { scheduler: 'rr' });
    lab.ipvs.addService(k);
    lab.ipvs.addDest(k, destSpec(RS1, 8080));
    const fast = (f: Buffer) => lab.receive('eth0', f);
    lab.send('eth0', tcp4({ flags: SYN, seq: 1 }));
    lab.send('eth1', rsTcp4({ flags: SYN | ACK, seq: 9, ack: 2 }));
    const data = (seq: number) => tcp4({ flags: PSH | ACK, seq, ack: 10, payload: 'x' });
    const before = lab.engine.counters.fastPath;
    let r = fast(data(2));
    assert.equal(r.eth1.length, 1);
    assert.equal(dmac(r.eth1[0]!), MAC.rs1);
    // the real server's MAC changes (a new NIC): the next packet goes to the new one
    const a = parseIp(RS1)!;
    lab.engine.neigh.addStatic(lab.eth1, a.af, a.words, parseMac('02:00:00:00:01:99'));
    r = fast(data(3));
    assert.equal(dmac(r.eth1[0]!), '02:00:00:00:01:99');
    // a host route sends the real server's traffic out of eth0 from now on
    lab.engine.net.addRoute({ dst: `${RS1}/32`, dev: 'eth0' });
    lab.engine.neigh.addStatic(lab.eth0, a.af, a.words, parseMac('02:00:00:00:02:22'));
    r = fast(data(4));
    assert.equal(r.eth1.length, 0, 'nothing left on eth1');
    assert.equal(r.eth0.length, 1);
    assert.equal(dmac(r.eth0[0]!), '02:00:00:00:02:22');
    assert.equal(dst(dec(r.eth0[0]!)), RS1);
    assert.equal(lab.engine.counters.fastPath - before, 3, 'all three took the fast path');
  });

  it('keeps NAT and DR connections to one destination behind a gateway apart (edited -m to -g)', () => {
    const lab = makeLab();
    const RSX = '198.51.100.7';
    const GW = '192.168.1.254';
    const GW_MAC = '02:00:00:00:03:fe';
    const RSX_MAC = '02:00:00:00:03:07';
    lab.engine.net.addRoute({ dst: '198.51.100.0/24', via: GW, dev: 'eth1' });
    for (const [ip, mac] of [
      [GW, GW_MAC],
      [RSX, RSX_MAC],
    ] as const) {
      const a = parseIp(ip)!;
      lab.engine.neigh.addStatic(lab.eth1, a.af, a.words, parseMac(mac));
    }
    const k = svcSpec(VIP, 80, { scheduler: 'rr' });
    lab.ipvs.addService(k);
    lab.ipvs.addDest(k, destSpec(RSX, 80));
    const fastMac = (f: Buffer): string => {
      const r = lab.receive('eth0', f);
      assert.equal(r.eth1.length, 1);
      return dmac(r.eth1[0]!);
    };
    // A: NAT, established through the gateway
    lab.send('eth0', tcp4({ sport: 40000, flags: SYN, seq: 1 }));
    lab.send(
      'eth1',
      tcp4({
        src: RSX,
        dst: CLIENT,
        sport: 80,
        dport: 40000,
        smac: GW_MAC,
        dmac: MAC.eth1,
        flags: SYN | ACK,
        seq: 9,
        ack: 2,
      }),
    );
    const a = (seq: number) => tcp4({ sport: 40000, flags: PSH | ACK, seq, ack: 10, payload: 'a' });
    assert.equal(fastMac(a(2)), GW_MAC, 'NAT goes to the gateway');
    // the destination becomes direct routing: A stays NAT, B is DR (sent to the server's own MAC)
    lab.ipvs.editDest(k, destSpec(RSX, 80, { fwd: 3 }));
    lab.send('eth0', tcp4({ sport: 40001, flags: SYN, seq: 1 }));
    const b = (seq: number) => tcp4({ sport: 40001, flags: PSH | ACK, seq, ack: 10, payload: 'b' });
    const before = lab.engine.counters.fastPath;
    assert.equal(fastMac(b(2)), RSX_MAC, 'DR goes to the real server');
    assert.equal(fastMac(a(3)), GW_MAC, 'NAT still goes to the gateway');
    assert.equal(fastMac(b(3)), RSX_MAC);
    assert.equal(lab.engine.counters.fastPath - before, 3);
  });

  it('sends NAT replies to the router a remote client is behind, following route changes', () => {
    const lab = makeLab();
    const REMOTE = '203.0.113.9';
    const k = svcSpec(VIP, 80, { scheduler: 'rr' });
    lab.ipvs.addService(k);
    lab.ipvs.addDest(k, destSpec(RS1, 8080));
    const reply = (client: string, seq: number) =>
      lab.receive('eth1', rsTcp4({ dst: client, flags: PSH | ACK, seq, ack: 2, payload: 'y' }));
    for (const c of [REMOTE, CLIENT]) {
      const smac = c === REMOTE ? MAC.router : MAC.client;
      lab.send('eth0', tcp4({ src: c, smac, flags: SYN, seq: 1 }));
      lab.send('eth1', rsTcp4({ dst: c, flags: SYN | ACK, seq: 9, ack: 2 }));
      lab.send('eth0', tcp4({ src: c, smac, flags: ACK, seq: 2, ack: 10 }));
    }
    const before = lab.engine.counters.fastPath;
    const macOf = (client: string, seq: number): string => {
      const r = reply(client, seq);
      assert.equal(r.eth0.length, 1);
      assert.equal(src(dec(r.eth0[0]!)), VIP, 'SNAT back to the VIP');
      return dmac(r.eth0[0]!);
    };
    assert.equal(macOf(REMOTE, 10), MAC.router);
    assert.equal(macOf(REMOTE, 11), MAC.router, 'again, from the per-route cache');
    assert.equal(macOf(CLIENT, 10), MAC.client, 'an on-link client gets its own MAC');
    // the router's MAC changes, then a more specific route sends the remote network elsewhere
    const r1 = parseIp('10.0.0.254')!;
    lab.engine.neigh.addStatic(lab.eth0, r1.af, r1.words, parseMac('02:00:00:00:00:fd'));
    assert.equal(macOf(REMOTE, 12), '02:00:00:00:00:fd');
    const r2 = parseIp('10.0.0.253')!;
    lab.engine.neigh.addStatic(lab.eth0, r2.af, r2.words, parseMac('02:00:00:00:00:fc'));
    lab.engine.net.addRoute({ dst: '203.0.113.0/24', via: '10.0.0.253', dev: 'eth0' });
    assert.equal(macOf(REMOTE, 13), '02:00:00:00:00:fc');
    assert.equal(macOf(CLIENT, 11), MAC.client);
    assert.equal(lab.engine.counters.fastPath - before, 6, 'every reply took the fast path');
  });

  it('produces the same frames, states and counters as the full path, wherever the frame sits', () => {
    const run = (fast: boolean, at = 0) => {
      const lab = makeLab();
      const k = svcSpec(VIP, 80, { scheduler: 'rr' });
      lab.ipvs.addService(k);
      lab.ipvs.addDest(k, destSpec(RS1, 8080));
      lab.ipvs.addService(svcSpec(VIP, 81, { scheduler: 'rr' }));
      lab.ipvs.addDest(svcSpec(VIP, 81), destSpec(RS2, 81, { fwd: 3 }));
      const out: string[] = [];
      const feed = (ifname: 'eth0' | 'eth1', f: Buffer): void => {
        const r = fast ? lab.receive(ifname, f, at) : lab.send(ifname, f);
        for (const x of [...r.eth0, ...r.eth1]) out.push(x.toString('hex'));
        const c = lab.ipvs
          .listConns()
          .map((x) => `${x.cport}/${x.vport}:${x.stateName}:${x.expiresMs}`);
        out.push(c.join(','));
      };
      feed('eth0', tcp4({ flags: SYN, seq: 1 }));
      feed('eth1', rsTcp4({ flags: SYN | ACK, seq: 9, ack: 2 }));
      for (let i = 0; i < 5; i++) {
        feed('eth0', tcp4({ flags: PSH | ACK, seq: 2 + i, ack: 10, payload: 'x', ttl: 60 - i }));
        feed('eth1', rsTcp4({ flags: PSH | ACK, seq: 10 + i, ack: 3 + i, payload: 'yy' }));
      }
      feed('eth0', udp4({ dport: 80, payload: 'not a service' }));
      feed('eth0', tcp4({ dport: 81, flags: SYN, sport: 5555 }));
      feed('eth0', tcp4({ dport: 81, flags: ACK, sport: 5555, ttl: 1 }));
      feed('eth0', tcp4({ dport: 81, flags: ACK, sport: 5555 }));
      feed('eth0', tcp4({ flags: FIN | ACK, seq: 7, ack: 20 }));
      const d = lab.ipvs
        .listServices()
        .flatMap((s) =>
          s.dests.map((x) => [
            x.activeConns,
            x.inactConns,
            x.stats.inpkts,
            x.stats.outpkts,
            x.stats.inbytes,
          ]),
        );
      return {
        out,
        d,
        fwd: lab.engine.counters.inForwarded + lab.engine.counters.outForwarded,
        fastPath: lab.engine.counters.fastPath,
      };
    };
    const slow = run(false);
    assert.equal(slow.fastPath, 0);
    // on a word boundary the fast path copies words; off it, bytes
    for (const at of [0, 1, 2, 3, 64]) {
      const fast = run(true, at);
      assert.deepEqual(fast.out, slow.out, `frames at byte ${at}`);
      assert.deepEqual(fast.d, slow.d);
      assert.equal(fast.fwd, slow.fwd);
      assert.equal(
        fast.fastPath,
        13,
        'all but the openers, the non-service packet and the TTL-1 packet',
      );
    }
  });
});
