import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../../src/core/addr.js';
import { ConnTable, NO_CONN } from '../../src/core/conn.js';
import { SCHED_DROP, SCHED_LEAVE, SCHED_PASS } from '../../src/core/conn-ops.js';
import {
  CONN_F_INACTIVE,
  CONN_F_NO_CPORT,
  CONN_F_NOOUTPUT,
  CONN_F_ONE_PACKET,
  CONN_F_SYNC,
  CONN_F_TEMPLATE,
  DEST_F_OVERLOAD,
  FWD_BYPASS,
  FWD_DROUTE,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
} from '../../src/core/constants.js';
import {
  DIR_INPUT,
  DIR_OUTPUT,
  SCTP_CID_COOKIE_ECHO,
  SCTP_CID_DATA,
  SCTP_CID_INIT,
  SCTP_CID_SHUTDOWN,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  sctpEvent,
} from '../../src/proto/index.js';
import { destSpec, flow, makeIpvs, svcSpec } from '../helpers/ipvs.js';

const VIP = '192.0.2.1';

function setup(o: Parameters<typeof makeIpvs>[0] = {}) {
  const env = makeIpvs(o);
  const key = svcSpec(VIP, 80, { scheduler: 'rr' });
  const svc = env.ipvs.addService(key);
  return { ...env, key, svc };
}

describe('connections', () => {
  describe('table memory', () => {
    it('stays within 128 bytes per entry and load factor 3/4 at every capacity', () => {
      for (const cap of [1, 3, 4, 1000, 1 << 16, (1 << 16) + 1, 98_304, 98_305, 1_100_000]) {
        const t = new ConnTable(cap, 1);
        assert.ok(t.bytesPerEntry <= 128, `${cap}: ${t.bytesPerEntry} bytes per entry`);
        assert.ok(
          cap / t.bucketCount <= 0.75,
          `${cap}: load factor ${cap / t.bucketCount} when full`,
        );
        // the smallest such index: half as many buckets would exceed 3/4 when full
        assert.ok(
          cap / (t.bucketCount / 2) > 0.75,
          `${cap}: ${t.bucketCount} buckets is more than needed`,
        );
      }
    });
  });

  describe('creation and the TCP state machine', () => {
    it('starts INACTIVE with the 3 s placeholder timeout and becomes active on the first SYN', () => {
      const { ipvs, key, svc } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 8080));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      assert.ok(h >= 0);
      const t = ipvs.conns;
      assert.equal(t.timeout(h), 3000);
      assert.ok(t.flags(h) & CONN_F_INACTIVE);
      assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
      assert.equal(t.dport(h), 8080, 'masq connection goes to the destination port');
      ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
      assert.equal(ipvs.listConns()[0]!.stateName, 'SYN_RECV');
      assert.equal(t.timeout(h), 60_000);
      assert.deepEqual([d.activeConns, d.inactConns], [1, 0]);
    });

    it('follows the NAT lifecycle and moves counters at each active/inactive boundary', () => {
      const { ipvs, key, svc } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      const steps: [number, number, string, number, number][] = [
        [DIR_INPUT, TCP_SYN, 'SYN_RECV', 1, 0],
        [DIR_OUTPUT, TCP_SYN | TCP_ACK, 'SYN_RECV', 1, 0],
        [DIR_INPUT, TCP_ACK, 'ESTABLISHED', 1, 0],
        [DIR_INPUT, TCP_FIN | TCP_ACK, 'CLOSE_WAIT', 0, 1],
        [DIR_OUTPUT, TCP_FIN | TCP_ACK, 'TIME_WAIT', 0, 1],
        [DIR_INPUT, TCP_ACK, 'TIME_WAIT', 0, 1],
      ];
      for (const [dir, flags, name, act, inact] of steps) {
        ipvs.ops.transition(h, dir, flags);
        assert.equal(ipvs.listConns()[0]!.stateName, name);
        assert.deepEqual([d.activeConns, d.inactConns], [act, inact], name);
      }
    });

    it('uses INPUT_ONLY for DR connections until a reply is seen', () => {
      const { ipvs, key, svc } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80, { fwd: 3 }));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      assert.ok(ipvs.conns.flags(h) & CONN_F_NOOUTPUT);
      for (const f of [TCP_SYN, TCP_ACK, TCP_FIN | TCP_ACK]) ipvs.ops.transition(h, DIR_INPUT, f);
      // INPUT_ONLY: FIN in ESTABLISHED → FIN_WAIT (the INPUT table would give CLOSE_WAIT)
      assert.equal(ipvs.listConns()[0]!.stateName, 'FIN_WAIT');
      assert.equal(ipvs.conns.timeout(h), 120_000);
      assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
    });

    it('binds a synced connection with the destination method and NOOUTPUT, keeping its INACTIVE bit', () => {
      // ip_vs_bind_dest: for SYNC connections both FWD_MASK and NOOUTPUT come from the destination.
      const { ipvs, key } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const c = parseIp('203.0.113.5')!.words;
      const v = parseIp(VIP)!.words;
      const bind = (flags: number) =>
        ipvs.ops.newConn(2, 6, c, 40000, v, 80, 2, d.addr, 80, flags, d, 0);
      const h = bind(CONN_F_SYNC | CONN_F_NOOUTPUT | FWD_DROUTE);
      assert.equal(ipvs.conns.flags(h) & (CONN_F_NOOUTPUT | 7), 0, 'masq destination: no NOOUTPUT');
      assert.ok(!(ipvs.conns.flags(h) & CONN_F_INACTIVE), 'the synced (active) activity is kept');
      assert.deepEqual([d.activeConns, d.inactConns], [1, 0]);
      const h2 = bind(CONN_F_SYNC | CONN_F_INACTIVE);
      assert.ok(ipvs.conns.flags(h2) & CONN_F_INACTIVE);
      assert.deepEqual([d.activeConns, d.inactConns], [1, 1]);
    });

    it('closes on a segment without SYN, FIN, ACK or RST', () => {
      const { ipvs, key, svc } = setup();
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
      ipvs.ops.transition(h, DIR_INPUT, TCP_PSH);
      assert.equal(ipvs.listConns()[0]!.stateName, 'CLOSE');
      assert.equal(ipvs.conns.timeout(h), 10_000);
    });

    it('applies --set timeouts to new transitions', () => {
      const { ipvs, key, svc } = setup();
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      ipvs.setTimeouts({ tcp: 30, tcpfin: 0, udp: 7 });
      assert.deepEqual(ipvs.getTimeouts(), { tcp: 30, tcpfin: 120, udp: 7 });
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
      ipvs.ops.transition(h, DIR_INPUT, TCP_ACK);
      assert.equal(ipvs.conns.timeout(h), 30_000);
    });
  });

  describe('state changes against mainline set_tcp_state / set_sctp_state / udp_state_transition', () => {
    // Each step: direction, state-machine argument (TCP flags / SCTP event / 0), then the state
    // `ipvsadm -L -c` prints, ActiveConn, InActConn and whether NOOUTPUT is still set afterwards.
    type Step = [
      dir: number,
      arg: number,
      state: string,
      act: number,
      inact: number,
      noout: boolean,
    ];
    const ev = (chunk: number): number => sctpEvent(chunk, -1);
    const cases: {
      description: string;
      proto: number;
      fwd: number;
      secure?: number;
      steps: Step[];
    }[] = [
      {
        description: 'TCP DR: INPUT_ONLY until the first reply, which clears NOOUTPUT for good',
        proto: 6,
        fwd: FWD_DROUTE,
        steps: [
          [DIR_INPUT, TCP_SYN, 'SYN_RECV', 1, 0, true],
          [DIR_INPUT, TCP_ACK, 'ESTABLISHED', 1, 0, true],
          [DIR_OUTPUT, TCP_ACK, 'ESTABLISHED', 1, 0, false],
          // INPUT table now: FIN in ESTABLISHED → CLOSE_WAIT (INPUT_ONLY would say FIN_WAIT)
          [DIR_INPUT, TCP_FIN | TCP_ACK, 'CLOSE_WAIT', 0, 1, false],
        ],
      },
      {
        description: 'TCP DR under secure_tcp 3: a client SYN goes to SYNACK, still active',
        proto: 6,
        fwd: FWD_DROUTE,
        secure: 3,
        steps: [
          [DIR_INPUT, TCP_SYN, 'SYNACK', 1, 0, true],
          [DIR_INPUT, TCP_ACK, 'ESTABLISHED', 1, 0, true],
          [DIR_INPUT, TCP_RST, 'CLOSE', 0, 1, true],
        ],
      },
      {
        description:
          'TCP NAT: SYN+RST uses the rst row, SYN+FIN the syn row, a flagless segment closes',
        proto: 6,
        fwd: 0,
        steps: [
          [DIR_INPUT, TCP_SYN | TCP_FIN, 'SYN_RECV', 1, 0, false],
          [DIR_INPUT, TCP_SYN | TCP_RST, 'SYN_RECV', 1, 0, false],
          [DIR_INPUT, TCP_ACK, 'ESTABLISHED', 1, 0, false],
          [DIR_INPUT, TCP_PSH, 'CLOSE', 0, 1, false],
          [DIR_INPUT, TCP_SYN, 'SYN_RECV', 1, 0, false],
        ],
      },
      {
        description: 'SCTP DR: only ESTABLISHED is active; a reply clears NOOUTPUT',
        proto: 132,
        fwd: FWD_DROUTE,
        steps: [
          [DIR_INPUT, ev(SCTP_CID_INIT), 'INIT1', 0, 1, true],
          [DIR_INPUT, ev(SCTP_CID_COOKIE_ECHO), 'ESTABLISHED', 1, 0, true],
          [DIR_OUTPUT, ev(SCTP_CID_DATA), 'ESTABLISHED', 1, 0, false],
          [DIR_OUTPUT, ev(SCTP_CID_SHUTDOWN), 'S-SENT', 0, 1, false],
        ],
      },
      {
        description: 'UDP DR: never active, and a reply does not clear NOOUTPUT',
        proto: 17,
        fwd: FWD_DROUTE,
        steps: [
          [DIR_INPUT, 0, 'UDP', 0, 1, true],
          [DIR_OUTPUT, 0, 'UDP', 0, 1, true],
        ],
      },
    ];
    for (const { description, proto, fwd, secure, steps } of cases) {
      it(description, () => {
        const env = makeIpvs();
        const key = svcSpec(VIP, 80, { scheduler: 'rr', protocol: proto });
        const svc = env.ipvs.addService(key);
        const d = env.ipvs.addDest(key, destSpec('198.51.100.10', 80, { fwd }));
        if (secure !== undefined) env.ipvs.setSysctl('secure_tcp', secure);
        const h = env.ipvs.ops.schedule(svc, flow(proto, '203.0.113.5', 40000, VIP, 80));
        steps.forEach(([dir, arg, state, act, inact, noout], i) => {
          env.ipvs.ops.transition(h, dir, arg);
          const c = env.ipvs.listConns()[0]!;
          assert.deepEqual(
            [c.stateName, d.activeConns, d.inactConns, (c.flags & CONN_F_NOOUTPUT) !== 0],
            [state, act, inact, noout],
            `step ${i + 1}`,
          );
        });
      });
    }

    it('keeps moving the counters of a deleted destination, which come back when it is re-added', () => {
      // cp->dest keeps pointing at the trashed destination (ip_vs_trash_get_dest resurrects it)
      const { ipvs, key, svc } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
      ipvs.delDest(key, { addr: '198.51.100.10', port: 80 });
      ipvs.ops.transition(h, DIR_OUTPUT, TCP_RST);
      assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
      const again = ipvs.addDest(key, destSpec('198.51.100.10', 80));
      assert.equal(again, d);
      assert.deepEqual([again.activeConns, again.inactConns], [0, 1]);
    });

    it('leaves the INACTIVE bit alone on a connection without a destination', () => {
      // set_tcp_state only touches IP_VS_CONN_F_INACTIVE inside `if (dest)`
      const { ipvs } = setup();
      const c = parseIp('203.0.113.5')!.words;
      const v = parseIp(VIP)!.words;
      const h = ipvs.ops.newConn(2, 6, c, 40000, v, 80, 2, v, 80, FWD_BYPASS, null, 0);
      for (const f of [TCP_SYN, TCP_ACK]) ipvs.ops.transition(h, DIR_INPUT, f);
      assert.equal(ipvs.listConns()[0]!.stateName, 'ESTABLISHED');
      assert.equal(ipvs.conns.flags(h) & CONN_F_INACTIVE, 0);
      ipvs.ops.transition(h, DIR_INPUT, TCP_RST);
      assert.equal(ipvs.conns.flags(h) & CONN_F_INACTIVE, 0);
      assert.equal(ipvs.conns.timeout(h), 10_000);
    });
  });

  describe('timers', () => {
    it('expires a new connection after 3 s unless a packet moved it on', () => {
      const { ipvs, key, svc, advance } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80));
      ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      advance(2900);
      assert.equal(ipvs.conns.count, 1);
      advance(200);
      assert.equal(ipvs.conns.count, 0);
      assert.equal(d.inactConns, 0);
    });

    it('re-arms with the state timeout on every put', () => {
      const { ipvs, key, svc, advance } = setup();
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
      ipvs.ops.put(h);
      advance(59_000);
      assert.equal(ipvs.conns.count, 1);
      assert.ok(Math.abs(ipvs.listConns()[0]!.expiresMs - 1000) <= 100);
      ipvs.ops.put(h);
      advance(59_000);
      assert.equal(ipvs.conns.count, 1);
      advance(1200);
      assert.equal(ipvs.conns.count, 0);
    });

    it('postpones a controller by 60 s while it still controls a connection', () => {
      const { ipvs, key, advance } = setup();
      ipvs.editService({ ...key, scheduler: 'rr', flags: 1, timeout: 10 });
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const svc = ipvs.findService(key)!;
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
      ipvs.ops.transition(h, DIR_INPUT, TCP_ACK);
      ipvs.ops.put(h); // ESTABLISHED: 900 s
      advance(10_100); // the template's 10 s ran out, but it controls h
      assert.equal(ipvs.conns.count, 2);
      const tmpl = ipvs.listConns().find((c) => c.stateName === 'ASSURED')!;
      assert.ok(tmpl.expiresMs > 59_000 && tmpl.expiresMs <= 60_000);
    });

    it('frees a one-packet connection as soon as its packet is done', () => {
      const { ipvs } = setup();
      const ukey = svcSpec(VIP, 53, { protocol: 17, scheduler: 'rr', flags: SVC_F_ONEPACKET });
      const usvc = ipvs.addService(ukey);
      const d = ipvs.addDest(ukey, destSpec('198.51.100.10', 53));
      const h = ipvs.ops.schedule(usvc, flow(17, '203.0.113.5', 5353, VIP, 53));
      assert.ok(ipvs.conns.flags(h) & CONN_F_ONE_PACKET);
      assert.equal(ipvs.listConns().length, 0, 'OPS connections are never hashed');
      assert.equal(d.inactConns, 1);
      ipvs.ops.put(h);
      assert.equal(d.inactConns, 0);
      assert.equal(ipvs.conns.count, 0);
      assert.equal(d.stats.snapshot().conns, 1);
    });
  });

  describe('thresholds and OVERLOAD', () => {
    it('sets OVERLOAD at the upper threshold and clears it below 3/4 of it', () => {
      const { ipvs, key, svc } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80, { uThreshold: 4 }));
      const hs: number[] = [];
      for (let i = 0; i < 4; i++)
        hs.push(ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000 + i, VIP, 80)));
      assert.ok(d.flags & DEST_F_OVERLOAD);
      assert.equal(
        ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 41000, VIP, 80)),
        SCHED_LEAVE,
        'no other destination',
      );
      ipvs.ops.del(hs[0]!); // 3 left: 3*4 = 12 is not < 12
      assert.ok(d.flags & DEST_F_OVERLOAD);
      ipvs.ops.del(hs[1]!); // 2 left: 8 < 12
      assert.ok(!(d.flags & DEST_F_OVERLOAD));
    });

    it('with a lower threshold, clears OVERLOAD only below it', () => {
      const { ipvs, key, svc } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80, { uThreshold: 4, lThreshold: 2 }));
      const hs: number[] = [];
      for (let i = 0; i < 4; i++)
        hs.push(ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000 + i, VIP, 80)));
      ipvs.ops.del(hs[0]!);
      ipvs.ops.del(hs[1]!);
      assert.ok(d.flags & DEST_F_OVERLOAD, 'total 2 is not below 2');
      ipvs.ops.del(hs[2]!);
      assert.ok(!(d.flags & DEST_F_OVERLOAD));
    });

    it('clears OVERLOAD when the administrator raises or removes the upper threshold', () => {
      const { ipvs, key, svc } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80, { uThreshold: 1 }));
      ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      assert.ok(d.flags & DEST_F_OVERLOAD);
      ipvs.editDest(key, destSpec('198.51.100.10', 80, { uThreshold: 1 }));
      assert.ok(d.flags & DEST_F_OVERLOAD, 'same threshold keeps it');
      ipvs.editDest(key, destSpec('198.51.100.10', 80, { uThreshold: 5 }));
      assert.ok(!(d.flags & DEST_F_OVERLOAD));
    });

    it('does not count persistent templates against thresholds', () => {
      const { ipvs, key } = setup();
      ipvs.editService({ ...key, scheduler: 'rr', flags: 1, timeout: 300 });
      const svc = ipvs.findService(key)!;
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80, { uThreshold: 2 }));
      ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      assert.deepEqual([d.persistConns, d.inactConns], [1, 1]);
      assert.ok(!(d.flags & DEST_F_OVERLOAD));
    });
  });

  describe('listing of template states (ip_vs_state_name)', () => {
    it('prints NONE, ASSURED, and ERR! past the template state table', () => {
      const { ipvs } = makeIpvs();
      const key = svcSpec(VIP, 80, { scheduler: 'rr', flags: SVC_F_PERSISTENT, timeout: 300 });
      const svc = ipvs.addService(key);
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      assert.ok(h >= 0);
      const ct = ipvs.conns.control(h);
      const tplState = () => ipvs.listConns().find((c) => c.flags & CONN_F_TEMPLATE)!.stateName;
      assert.equal(tplState(), 'NONE');
      ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
      ipvs.ops.transition(h, DIR_INPUT, TCP_ACK);
      assert.equal(tplState(), 'ASSURED');
      // a sync backup applies a template record of any state (mainline only logs it); the
      // kernel then lists it as ERR!, not as ASSURED
      ipvs.conns.setState(ct, 2);
      assert.equal(tplState(), 'ERR!');
    });
  });

  describe('lookups', () => {
    it('finds connections from the client side and replies from the real server side', () => {
      const { ipvs, key, svc } = setup();
      ipvs.addDest(key, destSpec('198.51.100.10', 8080));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      const c = parseIp('203.0.113.5')!.words;
      const v = parseIp(VIP)!.words;
      const r = parseIp('198.51.100.10')!.words;
      assert.equal(ipvs.conns.inGet(2, 6, c, 40000, v, 80), h);
      assert.equal(ipvs.conns.inGet(2, 6, c, 40001, v, 80), NO_CONN);
      assert.equal(ipvs.conns.inGet(2, 17, c, 40000, v, 80), NO_CONN);
      // NAT reply: source is the real server
      assert.equal(ipvs.conns.outGet(2, 6, r, 8080, c, 40000), h);
      assert.equal(ipvs.conns.outGet(2, 6, v, 80, c, 40000), NO_CONN);
    });

    it('finds a NO_CPORT connection for any client port, then under its real port once filled', () => {
      const { ipvs, key, svc } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const c = parseIp('203.0.113.5')!.words;
      const v = parseIp(VIP)!.words;
      const h = ipvs.ops.newConn(2, 6, c, 0, v, 40000, 2, d.addr, 40000, CONN_F_NO_CPORT, d, 0);
      assert.equal(ipvs.conns.noCportCount, 1);
      assert.equal(ipvs.conns.inGet(2, 6, c, 51234, v, 40000), h, 'retried with client port 0');
      ipvs.ops.fillCport(h, 51234);
      assert.equal(ipvs.conns.noCportCount, 0);
      assert.equal(ipvs.conns.inGet(2, 6, c, 51234, v, 40000), h);
      assert.equal(ipvs.conns.inGet(2, 6, c, 51235, v, 40000), NO_CONN);
      void svc;
    });

    it('matches DR replies by the virtual address', () => {
      const { ipvs, key, svc } = setup();
      ipvs.addDest(key, destSpec('198.51.100.10', 80, { fwd: 3 }));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      const c = parseIp('203.0.113.5')!.words;
      assert.equal(ipvs.conns.outGet(2, 6, parseIp(VIP)!.words, 80, c, 40000), h);
    });

    it('finds the same entries through precomputed buckets, NO_CPORT retry included', () => {
      const { ipvs, key, svc } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 8080));
      const t = ipvs.conns;
      const c = parseIp('203.0.113.5')!.words;
      const v = parseIp(VIP)!.words;
      const r = parseIp('198.51.100.10')!.words;
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 40000, VIP, 80));
      const nc = ipvs.ops.newConn(2, 6, c, 0, v, 40000, 2, d.addr, 40000, CONN_F_NO_CPORT, d, 0);
      const bs = Int32Array.of(t.bucket(2, 6, c, 0, 40000), t.bucket(2, 6, c, 0, 51234));
      t.prefetchBuckets(bs, 2);
      assert.equal(t.inGetAt(bs[0]!, 2, 6, c, 40000, v, 80), h);
      assert.equal(t.inGetAt(bs[0]!, 2, 6, c, 40000, v, 81), NO_CONN);
      assert.equal(t.outGetAt(bs[0]!, 2, 6, r, 8080, c, 40000), h);
      assert.equal(t.outGetAt(bs[0]!, 2, 6, r, 8081, c, 40000), NO_CONN);
      // the bucket of port 51234 holds nothing: the retry with client port 0 finds the FTP entry
      assert.equal(t.inGetAt(bs[1]!, 2, 6, c, 51234, v, 40000), nc);
      assert.equal(t.inGetAt(bs[1]!, 2, 6, c, 51234, v, 40001), NO_CONN);
    });

    it('finds IPv6 connections by all four words', () => {
      const { ipvs } = makeIpvs();
      const k = svcSpec('2001:db8::1', 443, { scheduler: 'rr' });
      const svc = ipvs.addService(k);
      ipvs.addDest(k, destSpec('2001:db8::10', 443));
      const h = ipvs.ops.schedule(svc, flow(6, '2001:db8:1::5', 1234, '2001:db8::1', 443));
      assert.equal(
        ipvs.conns.inGet(
          10,
          6,
          parseIp('2001:db8:1::5')!.words,
          1234,
          parseIp('2001:db8::1')!.words,
          443,
        ),
        h,
      );
      assert.equal(
        ipvs.conns.inGet(
          10,
          6,
          parseIp('2001:db8:2::5')!.words,
          1234,
          parseIp('2001:db8::1')!.words,
          443,
        ),
        NO_CONN,
      );
      assert.equal(ipvs.listConns()[0]!.caddr, '2001:db8:1::5');
    });
  });

  describe('scheduling results', () => {
    it('never schedules client port 20 (active FTP data)', () => {
      const { ipvs, key, svc } = setup();
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      assert.equal(ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 20, VIP, 80)), SCHED_PASS);
    });

    it('returns LEAVE with no destination and logs once', () => {
      const logs: string[] = [];
      const { ipvs, svc } = setup({ log: (m) => logs.push(m) });
      assert.equal(ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1, VIP, 80)), SCHED_LEAVE);
      assert.equal(ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 2, VIP, 80)), SCHED_LEAVE);
      assert.deepEqual(logs, ['rr: TCP 192.0.2.1:80 - no destination available']);
      assert.equal(ipvs.ops.counters.noDest, 2);
    });

    it('refuses new connections when the table is full, counting them and never throwing', () => {
      const { ipvs, key, svc } = setup({ maxConns: 3 });
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      for (let i = 0; i < 3; i++)
        assert.ok(ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000 + i, VIP, 80)) >= 0);
      assert.equal(ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 2000, VIP, 80)), SCHED_DROP);
      assert.equal(ipvs.ops.counters.tableFull, 1);
      assert.equal(ipvs.total.snapshot().conns, 3);
    });

    it('counts one new connection in destination, service and total statistics', () => {
      const { ipvs, key, svc } = setup();
      const d = ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000, VIP, 80));
      ipvs.ops.inStats(h, 60);
      ipvs.ops.outStats(h, 1500);
      for (const s of [d.stats, svc.stats, ipvs.total]) {
        const x = s.snapshot();
        assert.deepEqual(
          [x.conns, x.inpkts, x.inbytes, x.outpkts, x.outbytes],
          [1, 1, 60, 1, 1500],
        );
      }
    });

    it('stops counting packets for a connection whose destination was deleted', () => {
      const { ipvs, key, svc } = setup();
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000, VIP, 80));
      ipvs.delDest(key, { addr: '198.51.100.10', port: 80 });
      ipvs.ops.inStats(h, 60);
      assert.equal(ipvs.total.snapshot().inpkts, 0);
    });
  });

  describe('expire_nodest_conn', () => {
    it('keeps connections of a deleted destination by default', () => {
      const { ipvs, key, svc, advance } = setup();
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000, VIP, 80));
      ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
      ipvs.ops.put(h);
      ipvs.delDest(key, { addr: '198.51.100.10', port: 80 });
      advance(1000);
      assert.equal(ipvs.conns.count, 1);
    });

    it('sweeps them at the next tick when enabled', () => {
      const { ipvs, key, svc, advance } = setup();
      ipvs.setSysctl('expire_nodest_conn', 1);
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      ipvs.addDest(key, destSpec('198.51.100.11', 80));
      for (let i = 0; i < 4; i++) {
        const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000 + i, VIP, 80));
        ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
        ipvs.ops.put(h);
      }
      ipvs.delDest(key, { addr: '198.51.100.10', port: 80 });
      advance(100);
      assert.equal(ipvs.conns.count, 2);
      assert.ok(ipvs.listConns().every((c) => c.daddr === '198.51.100.11'));
    });
  });

  describe('conn_reuse_mode', () => {
    it('lets a new SYN reuse a TIME_WAIT or CLOSE connection but not an ESTABLISHED one', () => {
      const { ipvs, key, svc } = setup();
      ipvs.addDest(key, destSpec('198.51.100.10', 80));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000, VIP, 80));
      ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
      ipvs.ops.transition(h, DIR_INPUT, TCP_ACK);
      assert.equal(ipvs.ops.reusable(h), false);
      ipvs.ops.transition(h, DIR_INPUT, TCP_FIN);
      ipvs.ops.transition(h, DIR_OUTPUT, TCP_FIN);
      assert.equal(ipvs.listConns()[0]!.stateName, 'TIME_WAIT');
      assert.equal(ipvs.ops.reusable(h), true);
      ipvs.setSysctl('conn_reuse_mode', 0);
      assert.equal(ipvs.ops.reusable(h), false);
    });

    it('reuses FIN_WAIT only for NOOUTPUT connections with bit 2 set', () => {
      const { ipvs, key, svc } = setup();
      ipvs.addDest(key, destSpec('198.51.100.10', 80, { fwd: 3 }));
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000, VIP, 80));
      for (const f of [TCP_SYN, TCP_ACK, TCP_FIN]) ipvs.ops.transition(h, DIR_INPUT, f);
      assert.equal(ipvs.listConns()[0]!.stateName, 'FIN_WAIT');
      assert.equal(ipvs.ops.reusable(h), false);
      ipvs.setSysctl('conn_reuse_mode', 3);
      assert.equal(ipvs.ops.reusable(h), true);
    });
  });
});
