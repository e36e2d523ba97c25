import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { defaultSysctls, validateSysctl } from '../../src/core/sysctl.js';
import { destSpec, flow, makeIpvs, svcSpec } from '../helpers/ipvs.js';

const INT_MAX = 0x7fffffff;
const INT_MIN = -INT_MAX - 1;

describe('sysctls', () => {
  describe('defaultSysctls', () => {
    it('sync_qlen_max: nr_free_buffer_pages() / 32, the zones up to Normal above their high mark', () => {
      // the kernel's sum, recomputed here line by line from /proc/zoneinfo
      let zone = '';
      let managed = 0;
      let pages = 0;
      const flush = () => {
        if (/^(DMA|DMA32|Normal)$/.test(zone)) pages += Math.max(0, managed - high);
      };
      let high = 0;
      for (const line of readFileSync('/proc/zoneinfo', 'utf8').split('\n')) {
        const z = /^Node \d+, zone\s+(\S+)/.exec(line);
        if (z) {
          flush();
          zone = z[1]!;
          managed = high = 0;
        }
        const m = /^\s+(managed|high)\s+(\d+)$/.exec(line);
        if (m && m[1] === 'managed') managed = Number(m[2]);
        if (m && m[1] === 'high') high = Number(m[2]);
      }
      flush();
      assert.ok(pages > 0);
      assert.equal(defaultSysctls().sync_qlen_max, Math.floor(pages / 32));
    });

    it('has the defaults of spec §11', () => {
      const d = defaultSysctls();
      assert.deepEqual(
        {
          am_droprate: d.am_droprate,
          amemthresh: d.amemthresh,
          backup_only: d.backup_only,
          cache_bypass: d.cache_bypass,
          conn_reuse_mode: d.conn_reuse_mode,
          conntrack: d.conntrack,
          drop_entry: d.drop_entry,
          drop_packet: d.drop_packet,
          est_nice: d.est_nice,
          expire_nodest_conn: d.expire_nodest_conn,
          expire_quiescent_template: d.expire_quiescent_template,
          ignore_tunneled: d.ignore_tunneled,
          lblc_expiration: d.lblc_expiration,
          lblcr_expiration: d.lblcr_expiration,
          nat_icmp_send: d.nat_icmp_send,
          pmtu_disc: d.pmtu_disc,
          run_estimation: d.run_estimation,
          schedule_icmp: d.schedule_icmp,
          secure_tcp: d.secure_tcp,
          sloppy_sctp: d.sloppy_sctp,
          sloppy_tcp: d.sloppy_tcp,
          snat_reroute: d.snat_reroute,
          sync_persist_mode: d.sync_persist_mode,
          sync_ports: d.sync_ports,
          sync_refresh_period: d.sync_refresh_period,
          sync_retries: d.sync_retries,
          sync_sock_size: d.sync_sock_size,
          sync_threshold: d.sync_threshold,
          sync_version: d.sync_version,
        },
        {
          am_droprate: 10,
          amemthresh: 1024,
          backup_only: 0,
          cache_bypass: 0,
          conn_reuse_mode: 1,
          conntrack: 0,
          drop_entry: 0,
          drop_packet: 0,
          est_nice: 0,
          expire_nodest_conn: 0,
          expire_quiescent_template: 0,
          ignore_tunneled: 0,
          lblc_expiration: 86400,
          lblcr_expiration: 86400,
          nat_icmp_send: 0,
          pmtu_disc: 1,
          run_estimation: 1,
          schedule_icmp: 0,
          secure_tcp: 0,
          sloppy_sctp: 0,
          sloppy_tcp: 0,
          snat_reroute: 1,
          sync_persist_mode: 0,
          sync_ports: 1,
          sync_refresh_period: 0,
          sync_retries: 0,
          sync_sock_size: 0,
          sync_threshold: [3, 50],
          sync_version: 1,
        },
      );
    });
  });

  describe('validateSysctl', () => {
    it('accepts any int for the proc_dointvec knobs, as the kernel does', () => {
      for (const name of [
        'am_droprate',
        'amemthresh',
        'backup_only',
        'cache_bypass',
        'conn_reuse_mode',
        'conntrack',
        'expire_nodest_conn',
        'expire_quiescent_template',
        'ignore_tunneled',
        'nat_icmp_send',
        'pmtu_disc',
        'run_estimation',
        'schedule_icmp',
        'sloppy_sctp',
        'sloppy_tcp',
        'snat_reroute',
        'sync_persist_mode',
        'sync_sock_size',
      ]) {
        for (const v of [2, -1, INT_MAX, INT_MIN])
          assert.equal(validateSysctl(name, v), v, `${name}=${v}`);
        assert.throws(() => validateSysctl(name, INT_MAX + 1), { code: 'IPVS_ERR_SYSCTL' });
      }
    });

    it('takes any power of two for sync_ports (the daemon clamps to 64), nothing else', () => {
      assert.equal(validateSysctl('sync_ports', 128), 128);
      assert.equal(validateSysctl('sync_ports', 1 << 30), 1 << 30);
      for (const v of [0, -2, 3, 96]) {
        assert.throws(() => validateSysctl('sync_ports', v), { code: 'IPVS_ERR_SYSCTL' }, `${v}`);
      }
    });

    it('keeps the ranges of the knobs the kernel checks', () => {
      const bad: [string, number][] = [
        ['drop_entry', 4],
        ['drop_packet', -1],
        ['secure_tcp', 4],
        ['est_nice', 20],
        ['est_nice', -21],
        ['sync_retries', 4],
        ['sync_retries', -1],
        ['sync_version', 2],
        ['sync_qlen_max', -1],
      ];
      for (const [n, v] of bad)
        assert.throws(() => validateSysctl(n, v), { code: 'IPVS_ERR_SYSCTL' }, `${n}=${v}`);
      assert.equal(validateSysctl('est_nice', -20), -20);
      assert.equal(validateSysctl('sync_qlen_max', 0), 0);
    });

    it('takes seconds of either sign up to INT_MAX / HZ for the jiffies knobs', () => {
      for (const n of ['lblc_expiration', 'lblcr_expiration', 'sync_refresh_period']) {
        assert.equal(validateSysctl(n, -5), -5);
        assert.equal(validateSysctl(n, 2147483), 2147483);
        assert.throws(() => validateSysctl(n, 2147484), { code: 'IPVS_ERR_SYSCTL' }, n);
      }
    });

    it('checks sync_threshold as proc_do_sync_threshold does', () => {
      assert.deepEqual(validateSysctl('sync_threshold', [0, 0]), [0, 0]);
      assert.deepEqual(validateSysctl('sync_threshold', [10, 0]), [10, 0]);
      for (const v of [
        [50, 50],
        [-1, 50],
        [3, -1],
        [INT_MAX + 1, 0],
      ]) {
        assert.throws(() => validateSysctl('sync_threshold', v), { code: 'IPVS_ERR_SYSCTL' });
      }
    });
  });

  describe('est_cpulist', () => {
    it('lists every CPU by default and prints lists as the kernel does (%*pbl)', () => {
      assert.equal(defaultSysctls(4).est_cpulist, '0-3');
      assert.equal(defaultSysctls(1).est_cpulist, '0');
      const { ipvs } = makeIpvs({ cpus: 8 });
      assert.equal(ipvs.getSysctls().est_cpulist, '0-7');
      for (const [w, r] of [
        ['1,0,2', '0-2'],
        ['5, 7-7,3', '3,5,7'],
        ['0-7:1/4', '0,4'],
        ['N', '7'],
        ['all', '0-7'],
        ['  ', ''],
        ['2-N', '2-7'],
        // bitmap_parselist: whitespace separates too, empty regions are skipped, `all` in any
        // case takes a pattern, and a pattern may use no CPU of its group
        ['0 1', '0-1'],
        ['0,,1,', '0-1'],
        [',0', '0'],
        ['ALL', '0-7'],
        ['all:1/2', '0,2,4,6'],
        ['0-7:0/2', ''],
      ]) {
        ipvs.setSysctl('est_cpulist', w!);
        assert.equal(ipvs.getSysctls().est_cpulist, r, w);
      }
    });

    it('refuses malformed lists (EINVAL) and CPUs that do not exist (ERANGE), changing nothing', () => {
      const { ipvs } = makeIpvs({ cpus: 4 });
      for (const w of ['x', '1-', '3-1', '+1', '0-3:3/2', '0-3:1/0', 'all1', '0-3:1'])
        assert.throws(() => ipvs.setSysctl('est_cpulist', w), { code: 'IPVS_ERR_SYSCTL' }, w);
      assert.throws(() => ipvs.setSysctl('est_cpulist', '0-4'), { code: 'IPVS_ERR_RANGE' });
      assert.throws(() => ipvs.setSysctl('est_cpulist', 3), { code: 'IPVS_ERR_SYSCTL' });
      assert.equal(ipvs.getSysctls().est_cpulist, '0-3');
    });

    it('stops estimation while empty, like run_estimation = 0', () => {
      const { ipvs, advance } = makeIpvs({ cpus: 2 });
      const k = svcSpec('192.0.2.1', 80, { scheduler: 'rr' });
      const svc = ipvs.addService(k);
      ipvs.addDest(k, destSpec('198.51.100.1', 80));
      ipvs.setSysctl('est_cpulist', '');
      for (let i = 0; i < 100; i++)
        ipvs.ops.schedule(svc, flow(6, '203.0.113.9', 2000 + i, '192.0.2.1', 80));
      advance(4000);
      assert.equal(svc.stats.avgCps, 0);
      ipvs.setSysctl('est_cpulist', '1');
      advance(2000);
      assert.equal(svc.stats.snapshot().cps, 12);
    });
  });

  describe('Ipvs#setSysctl', () => {
    it('changes nothing when it refuses a value', () => {
      const { ipvs } = makeIpvs();
      const before = JSON.stringify(ipvs.getSysctls());
      assert.throws(() => ipvs.setSysctl('est_nice', 20), { code: 'IPVS_ERR_SYSCTL' });
      assert.throws(() => ipvs.setSysctl('sync_threshold', [5, 5]), { code: 'IPVS_ERR_SYSCTL' });
      assert.equal(JSON.stringify(ipvs.getSysctls()), before);
    });
  });
});
