import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SCHED_DROP } from '../../src/core/conn-ops.js';
import { CONN_F_TEMPLATE, SVC_F_ONEPACKET, SVC_F_PERSISTENT } from '../../src/core/constants.js';
import { DIR_INPUT, DIR_OUTPUT, TCP_ACK, TCP_SYN } from '../../src/proto/index.js';
import { Ipvs } from '../../src/core/ipvs.js';
import { hostAvailMemPages, meminfoAvailPages } from '../../src/cli/meminfo.js';
import { destSpec, flow, makeIpvs, svcSpec } from '../helpers/ipvs.js';

const VIP = '192.0.2.1';

function setup(avail: { pages: number }) {
  const env = makeIpvs({ availMemPages: () => avail.pages });
  const k = svcSpec(VIP, 80, { scheduler: 'rr' });
  const svc = env.ipvs.addService(k);
  env.ipvs.addDest(k, destSpec('198.51.100.10', 80));
  return { ...env, svc, k };
}

describe('memory-pressure defences', () => {
  describe('drop_packet', () => {
    it('in mode 3 drops every am_droprate-th new connection, the first one included', () => {
      // update_defense_level sets only drop_rate in mode 3; the countdown (0 in a new namespace)
      // is not restarted, so ip_vs_todrop drops the first candidate and then every 4th.
      const { ipvs, svc } = setup({ pages: 1e9 });
      ipvs.setSysctl('am_droprate', 4);
      ipvs.setSysctl('drop_packet', 3);
      const results = Array.from(
        { length: 12 },
        (_, i) =>
          ipvs.ops.connSchedule(svc, flow(6, '203.0.113.5', 1000 + i, VIP, 80)) === SCHED_DROP,
      );
      assert.deepEqual(results.map((d) => (d ? 'D' : '.')).join(''), 'D...D...D...');
      assert.equal(ipvs.ops.counters.defenseDropPacket, 3);
    });

    it('in mode 3 keeps its countdown across the once-a-second updates', () => {
      const { ipvs, svc, advance } = setup({ pages: 1e9 });
      ipvs.setSysctl('am_droprate', 4);
      ipvs.setSysctl('drop_packet', 3);
      const drop = (p: number) =>
        ipvs.ops.connSchedule(svc, flow(6, '203.0.113.5', p, VIP, 80)) === SCHED_DROP ? 'D' : '.';
      let got = drop(1) + drop(2);
      advance(1000);
      got += drop(3) + drop(4) + drop(5);
      assert.equal(got, 'D...D');
    });

    it('in mode 1 switches itself to 2 under memory pressure and back when memory recovers', () => {
      const mem = { pages: 1e9 };
      const { ipvs, svc, advance } = setup(mem);
      ipvs.setSysctl('drop_packet', 1);
      assert.equal(ipvs.ops.connSchedule(svc, flow(6, '203.0.113.5', 1, VIP, 80)) >= 0, true);
      mem.pages = 512; // amemthresh 1024: rate = 1024 / (1024 - 512) = 2
      advance(1000);
      assert.equal(ipvs.getSysctls().drop_packet, 2);
      assert.equal(ipvs.ops.defense.dropRate, 2);
      const r = [2, 3, 4, 5].map(
        (p) => ipvs.ops.connSchedule(svc, flow(6, '203.0.113.5', p, VIP, 80)) === SCHED_DROP,
      );
      assert.deepEqual(r, [false, true, false, true]);
      mem.pages = 1e9;
      advance(1000);
      assert.equal(ipvs.getSysctls().drop_packet, 1);
      assert.equal(ipvs.ops.defense.dropRate, 0);
    });
  });

  describe('secure_tcp', () => {
    it('uses the secure table while effective: a client ACK in SYN_RECV does not establish', () => {
      const { ipvs, svc } = setup({ pages: 1e9 });
      ipvs.setSysctl('secure_tcp', 3);
      const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000, VIP, 80));
      ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
      ipvs.ops.transition(h, DIR_INPUT, TCP_ACK);
      assert.equal(ipvs.listConns()[0]!.stateName, 'SYN_RECV');
      ipvs.ops.transition(h, DIR_OUTPUT, TCP_SYN | TCP_ACK);
      assert.equal(ipvs.listConns()[0]!.stateName, 'SYNACK');
    });

    it('in mode 1 becomes effective (2) only under memory pressure', () => {
      const mem = { pages: 1e9 };
      const { ipvs, advance } = setup(mem);
      ipvs.setSysctl('secure_tcp', 1);
      advance(1000);
      assert.equal(ipvs.getSysctls().secure_tcp, 1);
      mem.pages = 10;
      advance(1000);
      assert.equal(ipvs.getSysctls().secure_tcp, 2);
    });
  });

  describe('drop_entry', () => {
    it('a sysctl write updates the defence level but drops nothing before the next tick', () => {
      // proc_do_defense_mode calls update_defense_level only; the sweep runs from the 1 s timer.
      const { ipvs, svc, advance } = setup({ pages: 1e9 });
      for (let i = 0; i < 400; i++) {
        const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000 + i, VIP, 80));
        ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
        ipvs.ops.put(h);
      }
      ipvs.setSysctl('drop_entry', 3);
      assert.equal(ipvs.ops.defense.dropEntryOn, true);
      assert.equal(ipvs.ops.counters.defenseDropEntry, 0);
      advance(999);
      assert.equal(ipvs.ops.counters.defenseDropEntry, 0);
      advance(1);
      assert.ok(ipvs.ops.counters.defenseDropEntry > 0);
    });

    it('subjects templates of one-packet services to todrop, assured or not', () => {
      // ip_vs_random_dropentry tests ip_vs_conn_ops_mode before ASSURED: a fresh OPS template
      // (in_pkts 0) is never dropped, although it is not assured.
      const { ipvs, advance } = setup({ pages: 1e9 });
      const k = svcSpec(VIP, 53, {
        protocol: 17,
        scheduler: 'rr',
        flags: SVC_F_PERSISTENT | SVC_F_ONEPACKET,
        timeout: 600,
      });
      const svc = ipvs.addService(k);
      ipvs.addDest(k, destSpec('198.51.100.10', 53));
      for (let i = 0; i < 20; i++) {
        const h = ipvs.ops.connSchedule(svc, flow(17, `203.0.113.${i + 1}`, 5000, VIP, 53));
        assert.ok(h >= 0);
        ipvs.ops.put(h);
      }
      const templates = () =>
        ipvs.listConns().filter((c) => (c.flags & CONN_F_TEMPLATE) !== 0).length;
      assert.equal(templates(), 20);
      ipvs.setSysctl('drop_entry', 3);
      advance(100_000);
      assert.equal(templates(), 20);
      assert.equal(ipvs.ops.counters.defenseDropEntry, 0);
    });

    it('drops half-open connections but keeps established ones that are fresh', () => {
      const { ipvs, svc, advance } = setup({ pages: 1e9 });
      const halfOpen: number[] = [];
      for (let i = 0; i < 50; i++) {
        const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000 + i, VIP, 80));
        ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
        ipvs.ops.put(h);
        halfOpen.push(h);
      }
      for (let i = 0; i < 50; i++) {
        const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.6', 1000 + i, VIP, 80));
        ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
        ipvs.ops.transition(h, DIR_INPUT, TCP_ACK);
        ipvs.conns.setInPkts(h, 1);
        ipvs.ops.put(h);
      }
      ipvs.setSysctl('drop_entry', 3);
      // 1/32 of the buckets per second at random: after 50 s about 80% have been visited
      advance(50_000);
      const left = ipvs.listConns();
      assert.ok(left.filter((c) => c.stateName === 'SYN_RECV').length < 20);
      assert.equal(
        left.filter((c) => c.stateName === 'ESTABLISHED').length,
        50,
        'armed less than 60 s ago',
      );
      assert.ok(ipvs.ops.counters.defenseDropEntry > 30);
    });
  });

  describe('available memory and the defence timer', () => {
    it('the daemon counts the host free and buffer memory (si_meminfo: freeram + bufferram)', () => {
      // a threshold above any real machine's free memory is "nomem"
      const ipvs = new Ipvs({ log: () => {}, availMemPages: hostAvailMemPages });
      ipvs.setSysctl('amemthresh', 0x7fffffff);
      ipvs.setSysctl('drop_packet', 1);
      ipvs.setSysctl('secure_tcp', 1);
      assert.equal(ipvs.getSysctls().drop_packet, 2);
      assert.equal(ipvs.getSysctls().secure_tcp, 2);
      assert.ok(ipvs.ops.defense.dropRate >= 1);
      ipvs.close();
    });

    it('reads MemFree + Buffers of /proc/meminfo as 4 KiB pages', () => {
      const text =
        'MemTotal:       16318740 kB\nMemFree:         1048576 kB\n' +
        'MemAvailable:    9000000 kB\nBuffers:           40960 kB\nCached:          5000000 kB\n';
      assert.equal(meminfoAvailPages(text), (1048576 + 40960) / 4);
      assert.equal(meminfoAvailPages('MemTotal: 1 kB\n'), null);
    });

    it('runs once a second from the start, before any service exists', () => {
      // defense_work is queued when the namespace's sysctls are set up, not on the first service
      const mem = { pages: 1e9 };
      const { ipvs, advance } = makeIpvs({ availMemPages: () => mem.pages });
      ipvs.setSysctl('drop_entry', 1);
      ipvs.setSysctl('drop_packet', 1);
      mem.pages = 10;
      advance(1000);
      assert.equal(ipvs.getSysctls().drop_entry, 2);
      assert.equal(ipvs.getSysctls().drop_packet, 2);
      mem.pages = 1e9;
      advance(1000);
      assert.equal(ipvs.getSysctls().drop_entry, 1);
    });
  });
});
