/**
 * The sync master (spec §8.4): when a counted packet makes a connection worth sending
 * (sync_conn_needed, as a table of states, packet counts and sysctls), templates and
 * controllers, and the buffering and send timing on a fake clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../../src/core/addr.js';
import { NO_CONN } from '../../src/core/conn.js';
import { CONN_F_ONE_PACKET, CONN_F_TEMPLATE } from '../../src/core/constants.js';
import type { Ipvs } from '../../src/core/ipvs.js';
import {
  SCTP_S_CLOSED,
  SCTP_S_COOKIE_ECHOED,
  SCTP_S_ESTABLISHED,
  TCP_S_CLOSE,
  TCP_S_CLOSE_WAIT,
  TCP_S_ESTABLISHED,
  TCP_S_FIN_WAIT,
  TCP_S_LAST_ACK,
  TCP_S_SYN_RECV,
  TCP_S_SYN_SENT,
  TCP_S_TIME_WAIT,
} from '../../src/proto/index.js';
import { SyncMaster, type SyncTimers, syncConnNeeded } from '../../src/sync/master.js';
import { decodeMessage } from '../../src/sync/wire.js';
import { type Clock, makeIpvs } from '../helpers/ipvs.js';

const w = (a: string): Uint32Array => parseIp(a)!.words;

/** setTimeout on the test clock. */
class FakeTimers implements SyncTimers {
  #jobs: { at: number; fn: () => void; live: boolean }[] = [];
  constructor(readonly clock: Clock) {}
  set(ms: number, fn: () => void): unknown {
    const j = { at: this.clock.t + ms, fn, live: true };
    this.#jobs.push(j);
    return j;
  }
  clear(t: unknown): void {
    (t as { live: boolean }).live = false;
  }
  /** Moves the clock to `t + ms`, firing due timers in time order. */
  advance(ms: number): void {
    const end = this.clock.t + ms;
    for (;;) {
      const due = this.#jobs.filter((j) => j.live && j.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.clock.t = Math.max(this.clock.t, due.at);
      due.fn();
    }
    this.clock.t = end;
    this.#jobs = this.#jobs.filter((j) => j.live);
  }
}

let port = 1000;
/** A connection in `state` with `timeout` ms; `oldState` defaults to the state (no change). */
function conn(
  ipvs: Ipvs,
  o: { proto?: number; state?: number; oldState?: number; timeout?: number; flags?: number } = {},
): number {
  const h = ipvs.ops.newConn(
    2,
    o.proto ?? 6,
    w('192.0.2.2'),
    port++,
    w('203.0.113.10'),
    80,
    2,
    w('198.51.100.11'),
    80,
    o.flags ?? 0,
    null,
    0,
  );
  const t = ipvs.conns;
  t.setState(h, o.state ?? TCP_S_ESTABLISHED);
  t.setOldState(h, o.oldState ?? o.state ?? TCP_S_ESTABLISHED);
  t.setTimeout(h, o.timeout ?? 900_000);
  return h;
}

describe('SyncMaster', () => {
  describe('syncConnNeeded (sync_conn_needed)', () => {
    type Row = {
      what: string;
      proto?: number;
      state: number;
      oldState?: number;
      pkts: number;
      sysctl?: Record<string, number | [number, number]>;
      flags?: number;
      send: boolean;
    };
    const E = TCP_S_ESTABLISHED;
    const rows: Row[] = [
      { what: 'TCP ESTABLISHED, 3rd packet (threshold 3)', state: E, pkts: 3, send: true },
      { what: 'TCP ESTABLISHED, 2nd packet', state: E, pkts: 2, send: false },
      { what: 'TCP ESTABLISHED, 4th packet', state: E, pkts: 4, send: false },
      { what: 'TCP ESTABLISHED, 53rd packet (period 50)', state: E, pkts: 53, send: true },
      { what: 'TCP ESTABLISHED, 103rd packet', state: E, pkts: 103, send: true },
      { what: 'TCP ESTABLISHED, 50th packet', state: E, pkts: 50, send: false },
      { what: 'TCP SYN_RECV is never synced', state: TCP_S_SYN_RECV, pkts: 3, send: false },
      { what: 'TCP SYN_SENT is never synced', state: TCP_S_SYN_SENT, pkts: 3, send: false },
      { what: 'TCP LAST_ACK is never synced', state: TCP_S_LAST_ACK, pkts: 3, send: false },
      {
        what: 'TCP change to FIN_WAIT: sent at once, any packet count',
        state: TCP_S_FIN_WAIT,
        oldState: E,
        pkts: 7,
        send: true,
      },
      {
        what: 'TCP change to CLOSE_WAIT',
        state: TCP_S_CLOSE_WAIT,
        oldState: E,
        pkts: 1,
        send: true,
      },
      { what: 'TCP change to TIME_WAIT', state: TCP_S_TIME_WAIT, oldState: 4, pkts: 9, send: true },
      { what: 'TCP change to CLOSE', state: TCP_S_CLOSE, oldState: E, pkts: 9, send: true },
      { what: 'TCP FIN_WAIT unchanged, 9th packet', state: TCP_S_FIN_WAIT, pkts: 9, send: false },
      {
        what: 'TCP change to ESTABLISHED is not forced',
        state: E,
        oldState: TCP_S_SYN_RECV,
        pkts: 2,
        send: false,
      },
      { what: 'UDP, 3rd packet', proto: 17, state: 0, pkts: 3, send: true },
      { what: 'UDP, 4th packet', proto: 17, state: 0, pkts: 4, send: false },
      { what: 'SCTP ESTABLISHED, 3rd', proto: 132, state: SCTP_S_ESTABLISHED, pkts: 3, send: true },
      {
        what: 'SCTP change to CLOSED',
        proto: 132,
        state: SCTP_S_CLOSED,
        oldState: SCTP_S_ESTABLISHED,
        pkts: 8,
        send: true,
      },
      {
        what: 'SCTP COOKIE_ECHOED is never synced',
        proto: 132,
        state: SCTP_S_COOKIE_ECHOED,
        pkts: 3,
        send: false,
      },
      {
        what: 'period 0: only the threshold packet',
        state: E,
        pkts: 53,
        sysctl: { sync_threshold: [3, 0] },
        send: false,
      },
      {
        what: 'period 0: the threshold packet',
        state: E,
        pkts: 3,
        sysctl: { sync_threshold: [3, 0] },
        send: true,
      },
      {
        what: 'period 0 and a refresh period: every packet may send',
        state: E,
        pkts: 17,
        sysctl: { sync_threshold: [3, 0], sync_refresh_period: 10 },
        send: true,
      },
      {
        what: 'a template ignores the period',
        proto: 6,
        state: 0,
        pkts: 17,
        flags: CONN_F_TEMPLATE,
        send: true,
      },
      {
        what: 'a template with period 0 needs the threshold',
        state: 0,
        pkts: 17,
        flags: CONN_F_TEMPLATE,
        sysctl: { sync_threshold: [3, 0] },
        send: false,
      },
    ];
    for (const r of rows) {
      it(`${r.send ? 'sends' : 'skips'}: ${r.what}`, () => {
        const { ipvs } = makeIpvs();
        for (const [k, v] of Object.entries(r.sysctl ?? {})) ipvs.setSysctl(k, v);
        const h = conn(ipvs, {
          proto: r.proto,
          state: r.state,
          oldState: r.oldState,
          flags: r.flags,
        });
        const ends = new Float64Array(ipvs.conns.capacity);
        assert.equal(syncConnNeeded(ipvs, ends, h, r.pkts), r.send);
        if (r.send) assert.equal(ipvs.conns.oldState(h), r.state);
      });
    }

    it('sync_refresh_period: an unchanged end time is not re-sent; retries after an eighth', () => {
      const { ipvs, clock } = makeIpvs();
      ipvs.setSysctl('sync_threshold', [3, 0]);
      ipvs.setSysctl('sync_refresh_period', 80);
      ipvs.setSysctl('sync_retries', 1);
      const h = conn(ipvs, { timeout: 900_000 });
      const ends = new Float64Array(ipvs.conns.capacity);
      assert.equal(syncConnNeeded(ipvs, ends, h, 1), true);
      clock.t += 5_000; // end time moved 5 s: below min(80 s, 450 s)
      assert.equal(syncConnNeeded(ipvs, ends, h, 2), false);
      clock.t += 6_000; // 11 s after the send: past 80/8 = 10 s, one retry allowed
      assert.equal(syncConnNeeded(ipvs, ends, h, 3), true);
      assert.equal(ends[h]! % 4, 1);
      clock.t += 11_000; // retries used up
      assert.equal(syncConnNeeded(ipvs, ends, h, 4), false);
      clock.t += 70_000; // end time moved past the refresh period
      assert.equal(syncConnNeeded(ipvs, ends, h, 5), true);
      assert.equal(ends[h]! % 4, 0);
    });

    it('sync_refresh_period: a new connection on a reused handle starts from its creation time', () => {
      const { ipvs, m, timers, sent, clock } = master();
      ipvs.setSysctl('sync_threshold', [3, 0]);
      ipvs.setSysctl('sync_refresh_period', 80);
      const a = conn(ipvs, { timeout: 900_000 });
      m.syncConn(a, 1);
      const portA = ipvs.conns.cport(a);
      ipvs.ops.del(a);
      clock.t += 2_000;
      const b = conn(ipvs, { timeout: 900_000 });
      assert.equal(b, a, 'the freed handle is reused');
      // sync_endtime is set when the connection is created: 900 s away from its end time
      m.syncConn(b, 1);
      m.runThreads();
      timers.advance(2_500);
      const recs = sent.flatMap((x) => decodeMessage(x.msg, { syncId: 0 }).records);
      assert.deepEqual(
        recs.map((r) => r.cport),
        [portA, ipvs.conns.cport(b)],
      );
    });

    it('sync_refresh_period: a master started later judges from the creation time, as the kernel keeps sync_endtime in the connection', () => {
      const env = makeIpvs();
      const { ipvs, clock } = env;
      ipvs.setSysctl('sync_threshold', [3, 0]);
      ipvs.setSysctl('sync_refresh_period', 60);
      // created while no master runs, 5 s to live: its end time is 6 s after the creation time
      const h = conn(ipvs, { timeout: 5_000 });
      clock.t += 1_000;
      const sent: Buffer[] = [];
      const timers = new FakeTimers(clock);
      const m = new SyncMaster(
        ipvs,
        { syncId: 3, maxlen: 1472, ports: 1 },
        (_id, msg) => sent.push(Buffer.from(msg)),
        timers,
      );
      ipvs.syncMaster = m;
      // 6 s is below min(60 s, max(2.5 s, 10 s)), and sync_retries 0: not sent
      m.syncConn(h, 1);
      assert.equal(m.counters.records, 0);
      // a connection created after the start is judged the same way
      const h2 = conn(ipvs, { timeout: 5_000 });
      m.syncConn(h2, 1);
      assert.equal(m.counters.records, 0);
      // one whose end time is 15 s away is sent
      const h3 = conn(ipvs, { timeout: 15_000 });
      m.syncConn(h3, 1);
      assert.equal(m.counters.records, 1);
    });

    it('sync_persist_mode 1 skips connections under a template, not the template', () => {
      const { ipvs } = makeIpvs();
      ipvs.setSysctl('sync_persist_mode', 1);
      const ct = conn(ipvs, { state: 0, flags: CONN_F_TEMPLATE });
      const h = conn(ipvs);
      ipvs.ops.controlAdd(h, ct);
      const ends = new Float64Array(ipvs.conns.capacity);
      assert.equal(syncConnNeeded(ipvs, ends, h, 3), false);
      assert.equal(syncConnNeeded(ipvs, ends, ct, 3), true);
    });
  });

  function master(o: { ports?: number; maxlen?: number; log?: (m: string) => void } = {}) {
    const env = makeIpvs(o.log ? { log: o.log } : {});
    const timers = new FakeTimers(env.clock);
    const sent: { id: number; at: number; msg: Buffer }[] = [];
    const m = new SyncMaster(
      env.ipvs,
      { syncId: 3, maxlen: o.maxlen ?? 1472, ports: o.ports ?? 1 },
      (id, msg) => sent.push({ id, at: env.clock.t, msg: Buffer.from(msg) }),
      timers,
    );
    env.ipvs.syncMaster = m;
    return { ...env, m, timers, sent };
  }

  describe('#syncConn', () => {
    it('sends a template after its connection, counting the template packets', () => {
      const { ipvs, m, timers, sent } = master();
      const ct = conn(ipvs, { state: 0, flags: CONN_F_TEMPLATE, timeout: 360_000 });
      const h = conn(ipvs);
      ipvs.ops.controlAdd(h, ct);
      for (let p = 1; p <= 3; p++) {
        ipvs.conns.setInPkts(h, p);
        m.syncConn(h, p);
      }
      timers.advance(2_500);
      const recs = sent.flatMap((s) => decodeMessage(s.msg, { syncId: 0 }).records);
      // v1 considers the template on every packet of its connection, and with sync_period > 0 a
      // template is not rate-limited by the packet count (only sync_refresh_period limits it):
      // T at packets 1 and 2, then the connection at its 3rd packet, then T again
      assert.deepEqual(
        recs.map((r) => (r.flags & CONN_F_TEMPLATE ? 'T' : 'C')),
        ['T', 'T', 'C', 'T'],
      );
      assert.equal(ipvs.conns.inPkts(ct), 3);
      assert.equal(recs[1]!.timeout, 360);
    });

    it('does not send a one-packet connection, but considers its template', () => {
      const { ipvs, m, timers, sent } = master();
      const ct = conn(ipvs, { state: 0, flags: CONN_F_TEMPLATE });
      ipvs.conns.setInPkts(ct, 2);
      const h = conn(ipvs, { proto: 17, state: 0, flags: CONN_F_ONE_PACKET });
      ipvs.ops.controlAdd(h, ct);
      m.syncConn(h, 3);
      timers.advance(2_500);
      const recs = sent.flatMap((s) => decodeMessage(s.msg, { syncId: 0 }).records);
      assert.equal(recs.length, 1);
      assert.ok(recs[0]!.flags & CONN_F_TEMPLATE);
    });

    it('sync_version 0 sends v0 messages and no IPv6 connections', () => {
      const { ipvs, m, timers, sent } = master();
      ipvs.setSysctl('sync_version', 0);
      const h = conn(ipvs);
      m.syncConn(h, 3);
      const h6 = ipvs.ops.newConn(
        10,
        6,
        w('2001:db8::2'),
        1,
        w('2001:db8::10'),
        80,
        10,
        w('2001:db8::11'),
        80,
        0,
        null,
        0,
      );
      ipvs.conns.setState(h6, TCP_S_ESTABLISHED);
      ipvs.conns.setOldState(h6, TCP_S_ESTABLISHED);
      m.syncConn(h6, 3);
      timers.advance(2_500);
      assert.equal(sent.length, 1);
      const r = decodeMessage(sent[0]!.msg, { syncId: 0 });
      assert.equal(r.version, 0);
      assert.equal(r.records.length, 1);
      assert.equal(sent[0]!.msg[1], 3); // syncid
    });

    it('sends a postponed expiry again (ip_vs_conn_expire with a master running)', () => {
      const { ipvs, m, timers, sent, advance } = master();
      const ct = conn(ipvs, { state: 0, flags: CONN_F_TEMPLATE, timeout: 1_000 });
      const h = conn(ipvs, { timeout: 900_000 });
      ipvs.ops.controlAdd(h, ct);
      ipvs.ops.put(ct);
      advance(1_200); // template timer fires; it still controls h → postponed 60 s and synced
      assert.notEqual(ipvs.conns.flags(ct), 0);
      m.runThreads();
      timers.advance(2_500);
      const recs = sent.flatMap((s) => decodeMessage(s.msg, { syncId: 0 }).records);
      assert.equal(recs.length, 1);
      assert.equal(recs[0]!.timeout, 60);
    });
  });

  describe('ConnOps#countIn (the proxy data plane counts reads)', () => {
    it('counts in_pkts and hands each count to the master: 5 reads sync once, at the 3rd', () => {
      const { ipvs, m, timers, sent } = master();
      const h = conn(ipvs);
      ipvs.ops.countIn(h, 2);
      assert.equal(m.hasCurrent(0), false);
      ipvs.ops.countIn(h, 3);
      assert.equal(ipvs.conns.inPkts(h), 5);
      timers.advance(3_100);
      assert.equal(sent.flatMap((s) => decodeMessage(s.msg, { syncId: 0 }).records).length, 1);
    });

    it('without a master only counts; a one-packet connection counts on its template', () => {
      const { ipvs } = makeIpvs();
      const ct = conn(ipvs, { state: 0, flags: CONN_F_TEMPLATE });
      const h = conn(ipvs, { proto: 17, state: 0, flags: CONN_F_ONE_PACKET });
      ipvs.ops.controlAdd(h, ct);
      ipvs.ops.countIn(h);
      assert.equal(ipvs.conns.inPkts(ct), 1);
      const k = conn(ipvs);
      ipvs.ops.countIn(k, 4);
      assert.equal(ipvs.conns.inPkts(k), 4);
    });
  });

  describe('buffering and timing', () => {
    it('a partly filled buffer goes out 2 to 3 s after its first record', () => {
      const { ipvs, m, timers, sent, clock } = master();
      const t0 = clock.t;
      m.syncConn(conn(ipvs), 3);
      timers.advance(1_999);
      assert.equal(sent.length, 0);
      timers.advance(1_100);
      assert.equal(sent.length, 1);
      assert.ok(sent[0]!.at - t0 >= 2_000 && sent[0]!.at - t0 <= 3_000);
      assert.equal(m.hasCurrent(0), false);
    });

    it('a full buffer is queued and sent 20 ms later', () => {
      // 8 + 2 × 36 = 80: the third record does not fit
      const { ipvs, m, timers, sent, clock } = master({ maxlen: 80 });
      const t0 = clock.t;
      for (let i = 0; i < 3; i++) m.syncConn(conn(ipvs), 3);
      assert.equal(m.queued(0), 1);
      timers.advance(19);
      assert.equal(sent.length, 0);
      timers.advance(1);
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.at - t0, 20);
      assert.equal(decodeMessage(sent[0]!.msg, { syncId: 0 }).records.length, 2);
      assert.ok(sent[0]!.msg.length <= 80);
    });

    it('eight queued buffers wake the sender at once', () => {
      const { ipvs, m, timers, sent, clock } = master({ maxlen: 44 }); // one record each
      const t0 = clock.t;
      for (let i = 0; i < 9; i++) m.syncConn(conn(ipvs), 3);
      assert.equal(m.queued(0), 8);
      timers.advance(0);
      assert.equal(sent.length, 8);
      assert.equal(sent[7]!.at, t0);
    });

    it('discards buffers beyond sync_qlen_max, and says so once a second', () => {
      const logged: string[] = [];
      const { ipvs, m, timers, sent } = master({ maxlen: 44, log: (x) => logged.push(x) });
      ipvs.setSysctl('sync_qlen_max', 2);
      for (let i = 0; i < 5; i++) m.syncConn(conn(ipvs), 3);
      assert.equal(m.queued(0), 2);
      assert.equal(m.counters.queueFull, 2);
      assert.deepEqual(logged, [
        'sync: send queue full (sync_qlen_max 2): 1 buffers of records dropped so far',
      ]);
      timers.advance(3_100);
      assert.equal(sent.length, 3); // two queued, then the current one after 2 s
    });

    it('switching sync_version queues the other version’s buffer first', () => {
      const { ipvs, m, timers, sent } = master();
      m.syncConn(conn(ipvs), 3);
      ipvs.setSysctl('sync_version', 0);
      m.syncConn(conn(ipvs), 3);
      timers.advance(3_100);
      assert.deepEqual(
        sent.map((s) => decodeMessage(s.msg, { syncId: 0 }).version),
        [1, 0],
      );
    });

    it('sync_version 0: the 256th record wraps the one-byte count, and that buffer goes out', () => {
      // ip_vs_sync_conn_v0 queues a buffer whose nr_conns reads 0: 256 records, count 0
      const { ipvs, m, timers, sent } = master({ maxlen: 65_000 });
      ipvs.setSysctl('sync_version', 0);
      for (let i = 0; i < 300; i++) m.syncConn(conn(ipvs), 3);
      assert.equal(m.queued(0), 1);
      timers.advance(3_100);
      assert.deepEqual(
        sent.map((s) => [s.msg.length, s.msg[0]]),
        [
          [4 + 256 * 24, 0],
          [4 + 44 * 24, 44],
        ],
      );
    });

    it('a connection always goes through the same one of sync_ports threads', () => {
      const { ipvs, m, timers, sent } = master({ ports: 4 });
      const hs = Array.from({ length: 16 }, () => conn(ipvs));
      for (const h of hs) m.syncConn(h, 3);
      timers.advance(3_100);
      const ids = new Set(sent.map((s) => s.id));
      assert.ok(ids.size > 1, 'connections spread over threads');
      for (const s of sent) {
        for (const r of decodeMessage(s.msg, { syncId: 0 }).records) {
          const h = ipvs.conns.inGet(2, 6, r.caddr, r.cport, r.vaddr, r.vport);
          assert.notEqual(h, NO_CONN);
          assert.equal(m.threadOf(h), s.id);
        }
      }
    });

    it('stop discards what is buffered and sends nothing more', () => {
      const { ipvs, m, timers, sent } = master();
      m.syncConn(conn(ipvs), 3);
      m.stop();
      m.syncConn(conn(ipvs), 3);
      timers.advance(5_000);
      assert.equal(sent.length, 0);
    });
  });
});
