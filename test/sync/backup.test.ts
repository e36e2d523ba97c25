/**
 * The sync backup (spec §8.5, ip_vs_proc_conn): what a received record does to the connection
 * table — creation and binding by the rule, unbound connections, updates, replaced and stale
 * connections, templates with persistence-engine data, timeouts, sync id filtering.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../../src/core/addr.js';
import { NO_CONN } from '../../src/core/conn.js';
import {
  CONN_F_INACTIVE,
  CONN_F_IN_SEQ,
  CONN_F_NOOUTPUT,
  CONN_F_ONE_PACKET,
  CONN_F_SYNC,
  CONN_F_TEMPLATE,
  FWD_DROUTE,
  FWD_MASQ,
} from '../../src/core/constants.js';
import { TCP_S_ESTABLISHED, TCP_S_FIN_WAIT } from '../../src/proto/index.js';
import { SyncBackup } from '../../src/sync/backup.js';
import { type SyncConn, SyncMessage, recordLengthV0, recordLengthV1 } from '../../src/sync/wire.js';
import { destSpec, fwmSpec, makeIpvs, svcSpec } from '../helpers/ipvs.js';

const w = (a: string): Uint32Array => parseIp(a)!.words;
const VIP = '203.0.113.10';
const RS = '198.51.100.11';

function rec(o: Partial<SyncConn> = {}): SyncConn {
  return {
    af: 2,
    protocol: 6,
    flags: FWD_MASQ,
    state: TCP_S_ESTABLISHED,
    cport: 40000,
    vport: 80,
    dport: 80,
    fwmark: 0,
    timeout: 900,
    caddr: w('192.0.2.2'),
    vaddr: w(VIP),
    daddr: w(RS),
    ...o,
  };
}

function msg(recs: SyncConn[], version: 0 | 1 = 1, syncId = 0): Buffer {
  const m = new SyncMessage(version, syncId, 1472, 100, 0);
  for (const r of recs) {
    if (version === 1) {
      assert.ok(m.fits(recordLengthV1(r)));
      m.addV1(r);
    } else {
      assert.ok(m.fits(recordLengthV0(r)));
      m.addV0(r);
    }
  }
  return m.bytes();
}

function setup(fwd = FWD_DROUTE) {
  const env = makeIpvs();
  const { ipvs } = env;
  ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
  ipvs.addDest(svcSpec(VIP, 80), destSpec(RS, 80, { fwd }));
  const dest = ipvs.findService(svcSpec(VIP, 80))!.dests[0]!;
  const b = new SyncBackup(ipvs, 0);
  const find = (cport = 40000) => ipvs.conns.inGet(2, 6, w('192.0.2.2'), cport, w(VIP), 80);
  return { ...env, b, dest, find };
}

describe('SyncBackup', () => {
  describe('#apply (a new connection)', () => {
    it('creates it bound to the destination: SYNC, the destination’s method, active counted', () => {
      const { ipvs, b, dest, find } = setup(FWD_DROUTE);
      b.receive(msg([rec({ flags: FWD_MASQ })]));
      const h = find();
      assert.notEqual(h, NO_CONN);
      const t = ipvs.conns;
      assert.equal(t.flags(h) & 7, FWD_DROUTE); // method from the destination, not the record
      assert.ok(t.flags(h) & CONN_F_SYNC);
      assert.ok(t.flags(h) & CONN_F_NOOUTPUT); // DR's NOOUTPUT comes with the destination
      assert.equal(t.state(h), TCP_S_ESTABLISHED);
      assert.equal(t.oldState(h), TCP_S_ESTABLISHED);
      assert.equal(t.inPkts(h), 3);
      assert.equal(t.timeout(h), 900_000);
      assert.equal(ipvs.wheel.expires(h) - ipvs.now(), 900_000);
      assert.deepEqual([dest.activeConns, dest.inactConns], [1, 0]);
      assert.equal(ipvs.ops.dest(h), dest);
    });

    it('an inactive record counts in inactconns', () => {
      const { b, dest } = setup();
      b.receive(msg([rec({ flags: CONN_F_INACTIVE, state: TCP_S_FIN_WAIT })]));
      assert.deepEqual([dest.activeConns, dest.inactConns], [0, 1]);
    });

    it('keeps a connection without a matching destination, unbound, with the synced method', () => {
      const { ipvs, b, find } = setup();
      b.receive(msg([rec({ flags: FWD_DROUTE, daddr: w('198.51.100.99') })]));
      const h = find();
      assert.notEqual(h, NO_CONN);
      assert.equal(ipvs.conns.dest(h), -1);
      assert.equal(ipvs.conns.flags(h) & 7, FWD_DROUTE);
    });

    it('binds an unbound connection when a later record finds its destination', () => {
      const { ipvs, b, find } = setup();
      b.receive(msg([rec({ daddr: w('198.51.100.12') })]));
      const h = find();
      assert.equal(ipvs.conns.dest(h), -1);
      ipvs.addDest(svcSpec(VIP, 80), destSpec('198.51.100.12', 80));
      b.receive(msg([rec({ daddr: w('198.51.100.12') })]));
      assert.equal(ipvs.ops.dest(h)?.port, 80);
      assert.equal(ipvs.ops.dest(h)!.activeConns, 1);
    });

    it('fwmark services with a non-NAT method find the destination with port 0', () => {
      const { ipvs } = makeIpvs();
      ipvs.addService(fwmSpec(7, { scheduler: 'rr' }));
      ipvs.addDest(fwmSpec(7), destSpec(RS, 0, { fwd: FWD_DROUTE }));
      const b = new SyncBackup(ipvs, 0);
      b.receive(msg([rec({ fwmark: 7, flags: FWD_DROUTE, dport: 443, vport: 443 })]));
      const h = ipvs.conns.inGet(2, 6, w('192.0.2.2'), 40000, w(VIP), 443);
      assert.notEqual(h, NO_CONN);
      assert.equal(ipvs.ops.dest(h)?.port, 0);
    });

    it('v0: the timeout is the protocol’s for the state (ESTABLISHED 900 s)', () => {
      const { ipvs, b, find } = setup();
      ipvs.setTimeouts({ tcp: 1234, tcpfin: 0, udp: 0 });
      b.receive(msg([rec({ timeout: 0 })], 0));
      assert.equal(ipvs.conns.timeout(find()), 1_234_000);
    });

    it('v0: a template gets 180 s', () => {
      const { ipvs, b } = setup();
      b.receive(msg([rec({ flags: CONN_F_TEMPLATE, state: 0, cport: 0 })], 0));
      const ct = ipvs.conns.templateGet(2, 6, w('192.0.2.2'), 0, w(VIP), 80);
      assert.notEqual(ct, NO_CONN);
      assert.equal(ipvs.conns.timeout(ct), 180_000);
    });

    it('v0: an ESP connection (no timeout table) gets 180 s', () => {
      const { ipvs, b } = setup();
      b.receive(msg([rec({ protocol: 50, state: 0 })], 0));
      const h = ipvs.conns.inGet(2, 50, w('192.0.2.2'), 40000, w(VIP), 80);
      assert.notEqual(h, NO_CONN);
      assert.equal(ipvs.conns.timeout(h), 180_000);
    });

    it('creates a template whose state is past NONE / ASSURED (not validated), with that state', () => {
      const { ipvs, b } = setup();
      b.receive(msg([rec({ flags: CONN_F_TEMPLATE, state: 5, cport: 0, timeout: 300 })]));
      const ct = ipvs.conns.templateGet(2, 6, w('192.0.2.2'), 0, w(VIP), 80);
      assert.notEqual(ct, NO_CONN);
      assert.equal(ipvs.conns.state(ct), 5);
      assert.equal(ipvs.conns.timeout(ct), 300_000);
      assert.equal(b.counters.skipped, 0);
    });

    it('a template keeps its persistence-engine data; the next record finds it by that data', () => {
      const { ipvs } = makeIpvs();
      ipvs.addService(
        svcSpec(VIP, 5060, { protocol: 17, flags: 1, timeout: 360, pe: 'sip', scheduler: 'rr' }),
      );
      ipvs.addDest(svcSpec(VIP, 5060, { protocol: 17 }), destSpec(RS, 5060));
      const b = new SyncBackup(ipvs, 0);
      const tpl = rec({
        protocol: 17,
        flags: CONN_F_TEMPLATE,
        state: 0,
        cport: 0,
        vport: 5060,
        dport: 5060,
        timeout: 360,
        peData: Buffer.from('call-1'),
        peName: 'sip',
      });
      b.receive(msg([tpl]));
      const ct = ipvs.conns.templateGet(2, 17, w('192.0.2.2'), 0, w(VIP), 5060);
      assert.notEqual(ct, NO_CONN);
      assert.equal(ipvs.ops.peData(ct), 'call-1');
      assert.equal(ipvs.ops.peName(ct), 'sip');
      assert.equal(ipvs.ops.dest(ct)!.persistConns, 1);
      b.receive(msg([tpl]));
      assert.equal(ipvs.conns.count, 1);
      b.receive(msg([{ ...tpl, peData: Buffer.from('call-2') }]));
      assert.equal(ipvs.conns.count, 2);
    });
  });

  describe('#apply (an existing connection)', () => {
    it('moves the count between active and inactive and updates only INACTIVE and SEQ', () => {
      const { ipvs, b, dest, find } = setup(FWD_MASQ);
      b.receive(msg([rec()]));
      const h = find();
      const before = ipvs.conns.flags(h);
      b.receive(
        msg([rec({ flags: CONN_F_INACTIVE | CONN_F_IN_SEQ | FWD_DROUTE, state: TCP_S_FIN_WAIT })]),
      );
      assert.equal(find(), h);
      assert.deepEqual([dest.activeConns, dest.inactConns], [0, 1]);
      assert.equal(ipvs.conns.flags(h), before | CONN_F_INACTIVE | CONN_F_IN_SEQ);
      assert.equal(ipvs.conns.state(h), TCP_S_FIN_WAIT);
      b.receive(msg([rec()]));
      assert.deepEqual([dest.activeConns, dest.inactConns], [1, 0]);
    });

    it('an active record for another real server replaces the connection', () => {
      const { ipvs, b, find, advance } = setup();
      ipvs.addDest(svcSpec(VIP, 80), destSpec('198.51.100.12', 80));
      b.receive(msg([rec()]));
      const old = find();
      b.receive(msg([rec({ daddr: w('198.51.100.12') })]));
      const now = find();
      assert.notEqual(now, old);
      assert.equal(ipvs.conns.cold[ipvs.conns.daddrOff(now)], w('198.51.100.12')[0]);
      advance(200); // the old one was expired now
      assert.equal(ipvs.conns.count, 1);
    });

    it('an inactive record for another real server is stale and ignored', () => {
      const { ipvs, b, find } = setup();
      b.receive(msg([rec()]));
      const h = find();
      b.receive(msg([rec({ daddr: w('198.51.100.12'), flags: CONN_F_INACTIVE })]));
      assert.equal(find(), h);
      assert.equal(b.counters.stale, 1);
      assert.equal(ipvs.conns.count, 1);
    });
  });

  describe('#receive', () => {
    it('a backup with a sync id ignores other ids; sync id 0 takes all', () => {
      const env = makeIpvs();
      const b7 = new SyncBackup(env.ipvs, 7);
      b7.receive(msg([rec()], 1, 5));
      assert.equal(env.ipvs.conns.count, 0);
      b7.receive(msg([rec()], 1, 7));
      assert.equal(env.ipvs.conns.count, 1);
      const b0 = new SyncBackup(makeIpvs().ipvs, 0);
      b0.receive(msg([rec()], 1, 5));
      assert.equal(b0.ipvs.conns.count, 1);
    });

    it('v0 one-packet flags are taken as sent (mainline does not mask v0 flags)', () => {
      const { ipvs, b } = setup();
      b.receive(msg([rec({ flags: CONN_F_ONE_PACKET, protocol: 17, state: 0 })], 0));
      // an OPS connection is never hashed: it is freed when its record is done
      assert.equal(ipvs.conns.count, 0);
    });

    it('an IPv6 record creates an IPv6 connection', () => {
      const { ipvs } = makeIpvs();
      const b = new SyncBackup(ipvs, 0);
      b.receive(
        msg([
          rec({
            af: 10,
            caddr: w('2001:db8::2'),
            vaddr: w('2001:db8::10'),
            daddr: w('2001:db8::11'),
          }),
        ]),
      );
      const h = ipvs.conns.inGet(10, 6, w('2001:db8::2'), 40000, w('2001:db8::10'), 80);
      assert.notEqual(h, NO_CONN);
      assert.equal(ipvs.listConns()[0]!.state, TCP_S_ESTABLISHED);
    });
  });
});
