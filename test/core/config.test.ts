import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../../src/core/addr.js';
import { ALL_ERRORS, IpvsError } from '../../src/core/errors.js';
import type { Ipvs } from '../../src/core/ipvs.js';
import { destSpec, flow, fwmSpec, makeIpvs, svcSpec } from '../helpers/ipvs.js';

const VIP = '192.0.2.1';

function state(ipvs: Ipvs): string {
  return JSON.stringify({ s: ipvs.listServices(), d: ipvs.listDaemons(), t: ipvs.getTimeouts() });
}

/** Asserts `fn` throws the coded error and leaves the configuration unchanged. */
function refuses(ipvs: Ipvs, fn: () => unknown, code: string, ipvsadmMessage: string): void {
  const before = state(ipvs);
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof IpvsError);
    assert.equal(e.code, code);
    assert.equal(e.ipvsadmMessage, ipvsadmMessage);
    return true;
  });
  assert.equal(state(ipvs), before, 'configuration unchanged');
}

describe('Ipvs configuration', () => {
  describe('services', () => {
    it('refuses a duplicate service', () => {
      const { ipvs } = makeIpvs();
      ipvs.addService(svcSpec(VIP, 80));
      refuses(
        ipvs,
        () => ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' })),
        'IPVS_ERR_SERVICE_EXISTS',
        'Service already exists',
      );
    });

    it('refuses unknown schedulers and persistence engines, and over-long scheduler names', () => {
      const { ipvs } = makeIpvs();
      refuses(
        ipvs,
        () => ipvs.addService(svcSpec(VIP, 80, { scheduler: 'fastest' })),
        'IPVS_ERR_NO_SCHEDULER',
        'Scheduler or persistence engine not found',
      );
      refuses(
        ipvs,
        () => ipvs.addService(svcSpec(VIP, 80, { pe: 'http' })),
        'IPVS_ERR_NO_PE',
        'Scheduler or persistence engine not found',
      );
      refuses(
        ipvs,
        () => ipvs.addService(svcSpec(VIP, 80, { scheduler: 'a'.repeat(16) })),
        'IPVS_ERR_INVALID',
        'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      );
    });

    it('refuses an IPv6 persistence prefix outside 1..128', () => {
      const { ipvs } = makeIpvs();
      for (const netmask of [0, 129]) {
        refuses(
          ipvs,
          () => ipvs.addService(svcSpec('2001:db8::1', 80, { netmask })),
          'IPVS_ERR_INVALID',
          'Invalid operation.  Possibly wrong module version, address not unicast, ...',
        );
      }
    });

    it('edits and deletes only existing services', () => {
      const { ipvs } = makeIpvs();
      refuses(
        ipvs,
        () => ipvs.editService(svcSpec(VIP, 80)),
        'IPVS_ERR_NO_SERVICE',
        'No such service',
      );
      refuses(
        ipvs,
        () => ipvs.delService(svcSpec(VIP, 80)),
        'IPVS_ERR_NO_SERVICE',
        'No such service',
      );
      refuses(ipvs, () => ipvs.zero(svcSpec(VIP, 80)), 'IPVS_ERR_NO_SERVICE', 'No such service');
      ipvs.addService(svcSpec(VIP, 80));
      refuses(
        ipvs,
        () => ipvs.editService(svcSpec(VIP, 80, { protocol: 17 })),
        'IPVS_ERR_NO_SERVICE',
        'No such service',
      );
    });

    it('replaces scheduler, flags, timeout and netmask wholesale on edit', () => {
      const { ipvs } = makeIpvs();
      const k = svcSpec(VIP, 80, {
        scheduler: 'sh',
        flags: 1 | 8,
        timeout: 100,
        netmask: 0xffffff00,
      });
      ipvs.addService(k);
      ipvs.addDest(k, destSpec('198.51.100.10', 80));
      ipvs.editService(svcSpec(VIP, 80));
      const s = ipvs.getService(k);
      assert.deepEqual([s.scheduler, s.flags, s.timeout, s.netmask], ['wlc', 0, 0, 0xffffffff]);
      assert.equal(s.dests.length, 1);
    });

    it('a scheduler that fails to bind on edit leaves none, and the old flags and timeout', () => {
      // ip_vs_edit_service binds the new scheduler before it sets flags, timeout, netmask and PE
      const { ipvs } = makeIpvs();
      const k = svcSpec(VIP, 80, { scheduler: 'rr' });
      ipvs.addService(k);
      for (let i = 0; i < 4094; i++)
        ipvs.addDest(k, destSpec(`10.${(i >> 8) & 255}.${i & 255}.1`, 80));
      assert.throws(
        () => ipvs.editService(svcSpec(VIP, 80, { scheduler: 'mh', flags: 1, timeout: 600 })),
        { code: 'IPVS_ERR_INVALID' },
      );
      const s = ipvs.getService(k);
      assert.deepEqual([s.scheduler, s.flags, s.timeout], ['none', 0, 0]);
    });

    it('forces the protocol of fwmark services to TCP and keeps IPv4 and IPv6 fwmarks apart', () => {
      const { ipvs } = makeIpvs();
      ipvs.addService(fwmSpec(5, { protocol: 17 }));
      ipvs.addService(fwmSpec(5, { af: 10, netmask: 128 }));
      const l = ipvs.listServices();
      assert.equal(l.length, 2);
      assert.ok(l.every((s) => s.protocol === 6 && s.fwmark === 5));
    });

    it('binds no scheduler for "none"', () => {
      const { ipvs } = makeIpvs();
      const k = svcSpec(VIP, 80, { scheduler: 'none' });
      const svc = ipvs.addService(k);
      ipvs.addDest(k, destSpec('198.51.100.10', 80));
      assert.equal(svc.sched, null);
      assert.equal(ipvs.getService(k).scheduler, 'none');
    });

    it('finds services in the kernel order: fwmark, exact, FTP data, port 0', () => {
      const { ipvs } = makeIpvs();
      const v = parseIp(VIP)!.words;
      const f = ipvs.addService(fwmSpec(3));
      const e = ipvs.addService(svcSpec(VIP, 8080));
      const ftp = ipvs.addService(svcSpec(VIP, 21));
      const zero = ipvs.addService(svcSpec(VIP, 0, { flags: 1, timeout: 60 }));
      assert.equal(ipvs.services.find(2, 3, 6, v, 8080), f);
      assert.equal(ipvs.services.find(2, 4, 6, v, 8080), e);
      assert.equal(ipvs.services.find(2, 0, 6, v, 20), ftp);
      assert.equal(ipvs.services.find(2, 0, 6, v, 1024), ftp);
      assert.equal(ipvs.services.find(2, 0, 6, v, 1023), zero);
      assert.equal(ipvs.services.find(2, 0, 17, v, 2000), null, 'UDP has no port-0 service');
      ipvs.delService(svcSpec(VIP, 21));
      assert.equal(ipvs.services.find(2, 0, 6, v, 2000), zero);
    });
  });

  describe('destinations', () => {
    it('refuses operations on a missing service with "Service not defined"', () => {
      const { ipvs } = makeIpvs();
      refuses(
        ipvs,
        () => ipvs.addDest(svcSpec(VIP, 80), destSpec('198.51.100.10', 80)),
        'IPVS_ERR_SERVICE_NOT_DEFINED',
        'Service not defined',
      );
      refuses(
        ipvs,
        () => ipvs.delDest(svcSpec(VIP, 80), { addr: '198.51.100.10', port: 80 }),
        'IPVS_ERR_SERVICE_NOT_DEFINED',
        'Service not defined',
      );
    });

    it('refuses duplicates, missing destinations, bad ranges and non-unicast addresses', () => {
      const { ipvs } = makeIpvs();
      const k = svcSpec(VIP, 80);
      ipvs.addService(k);
      ipvs.addDest(k, destSpec('198.51.100.10', 80));
      refuses(
        ipvs,
        () => ipvs.addDest(k, destSpec('198.51.100.10', 80, { weight: 5 })),
        'IPVS_ERR_DEST_EXISTS',
        'Destination already exists',
      );
      refuses(
        ipvs,
        () => ipvs.editDest(k, destSpec('198.51.100.11', 80)),
        'IPVS_ERR_NO_DEST',
        'No such destination',
      );
      refuses(
        ipvs,
        () => ipvs.delDest(k, { addr: '198.51.100.11', port: 80 }),
        'IPVS_ERR_NO_DEST',
        'No such destination',
      );
      refuses(
        ipvs,
        () => ipvs.addDest(k, destSpec('198.51.100.12', 80, { weight: -1 })),
        'IPVS_ERR_RANGE',
        'Numerical result out of range',
      );
      refuses(
        ipvs,
        () => ipvs.addDest(k, destSpec('198.51.100.12', 80, { uThreshold: 5, lThreshold: 6 })),
        'IPVS_ERR_RANGE',
        'Numerical result out of range',
      );
      for (const a of ['224.0.0.1', '0.0.0.1', '255.255.255.255']) {
        refuses(
          ipvs,
          () => ipvs.addDest(k, destSpec(a, 80)),
          'IPVS_ERR_INVALID',
          'Invalid operation.  Possibly wrong module version, address not unicast, ...',
        );
      }
      // IPv6: ipv6_addr_type gives no UNICAST to ::, multicast or v4-mapped, and link-local is
      // refused too; ::1 and v4-compatible ::a.b.c.d are unicast
      const k6 = svcSpec('2001:db8::100', 80, { af: 10, netmask: 128 });
      ipvs.addService(k6);
      for (const a of ['::', 'ff02::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:198.51.100.1']) {
        refuses(
          ipvs,
          () => ipvs.addDest(k6, destSpec(a, 80, { af: 10 })),
          'IPVS_ERR_INVALID',
          'Invalid operation.  Possibly wrong module version, address not unicast, ...',
        );
      }
      for (const a of ['::1', '::198.51.100.1']) ipvs.addDest(k6, destSpec(a, 80, { af: 10 }));
      ipvs.delService(k6);
      refuses(
        ipvs,
        () => ipvs.addDest(k, destSpec('198.51.100.12', 80, { fwd: 2, tunType: 1, tunPort: 0 })),
        'IPVS_ERR_INVALID',
        'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      );
    });

    it('checks in the kernel order: the service or destination lookup before its settings', () => {
      const { ipvs } = makeIpvs();
      const k = svcSpec(VIP, 80);
      ipvs.addService(k);
      ipvs.addDest(k, destSpec('198.51.100.10', 80));
      // ip_vs_genl_set_cmd: EEXIST / ESRCH come before ip_vs_add_service / edit_service look
      // the scheduler up
      refuses(
        ipvs,
        () => ipvs.addService(svcSpec(VIP, 80, { scheduler: 'fastest' })),
        'IPVS_ERR_SERVICE_EXISTS',
        'Service already exists',
      );
      refuses(
        ipvs,
        () => ipvs.editService(svcSpec(VIP, 81, { scheduler: 'fastest' })),
        'IPVS_ERR_NO_SERVICE',
        'No such service',
      );
      refuses(
        ipvs,
        () => ipvs.editService(svcSpec('2001:db8::1', 80, { netmask: 0 })),
        'IPVS_ERR_NO_SERVICE',
        'No such service',
      );
      // ip_vs_edit_dest does not check the address: a missing one is ENOENT
      refuses(
        ipvs,
        () => ipvs.editDest(k, destSpec('224.0.0.1', 80)),
        'IPVS_ERR_NO_DEST',
        'No such destination',
      );
      // a GUE tunnel type without a port is EINVAL whatever the forwarding method
      refuses(
        ipvs,
        () => ipvs.addDest(k, destSpec('198.51.100.12', 80, { fwd: 3, tunType: 1, tunPort: 0 })),
        'IPVS_ERR_INVALID',
        'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      );
      refuses(
        ipvs,
        () => ipvs.editDest(k, destSpec('198.51.100.10', 80, { tunType: 1, tunPort: 0 })),
        'IPVS_ERR_INVALID',
        'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      );
    });

    it('accepts a destination of the other family only for tunnelling', () => {
      const { ipvs } = makeIpvs();
      const k = svcSpec(VIP, 80);
      ipvs.addService(k);
      refuses(
        ipvs,
        () => ipvs.addDest(k, destSpec('2001:db8::10', 80, { af: 10 })),
        'IPVS_ERR_INVALID',
        'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      );
      ipvs.addDest(k, destSpec('2001:db8::10', 80, { af: 10, fwd: 2 }));
      assert.equal(ipvs.getService(k).dests[0]!.af, 10);
      // the family is checked before the thresholds: EINVAL, not ERANGE (ip_vs_genl_set_cmd)
      refuses(
        ipvs,
        () =>
          ipvs.addDest(k, destSpec('2001:db8::11', 80, { af: 10, uThreshold: 1, lThreshold: 5 })),
        'IPVS_ERR_INVALID',
        'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      );
      // with a sync daemon running, no destination of another family (the sync protocol has none)
      const other = makeIpvs().ipvs;
      other.addService(k);
      other.startDaemon({ state: 1, mcastIfn: 'lo', syncId: 0 });
      refuses(
        other,
        () =>
          other.addDest(
            k,
            destSpec('2001:db8::12', 80, { af: 10, fwd: 2, uThreshold: 1, lThreshold: 5 }),
          ),
        'IPVS_ERR_INVALID',
        'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      );
    });

    it('lists destinations newest first', () => {
      const { ipvs } = makeIpvs();
      const k = svcSpec(VIP, 80);
      ipvs.addService(k);
      for (const a of ['198.51.100.1', '198.51.100.2', '198.51.100.3'])
        ipvs.addDest(k, destSpec(a, 80));
      assert.deepEqual(
        ipvs.getService(k).dests.map((d) => d.addr),
        ['198.51.100.3', '198.51.100.2', '198.51.100.1'],
      );
    });

    it('sets NOOUTPUT and INACTIVE in the connection flags of non-NAT destinations', () => {
      const { ipvs } = makeIpvs();
      const k = svcSpec(VIP, 80);
      ipvs.addService(k);
      const dr = ipvs.addDest(k, destSpec('198.51.100.1', 80, { fwd: 3 }));
      const nat = ipvs.addDest(k, destSpec('198.51.100.2', 80, { fwd: 0 }));
      assert.equal(dr.connFlags, 0x0003 | 0x0080 | 0x0100);
      assert.equal(nat.connFlags, 0x0100);
    });

    it('remembers the last non-zero weight for mh', () => {
      const { ipvs } = makeIpvs();
      const k = svcSpec(VIP, 80);
      ipvs.addService(k);
      const d = ipvs.addDest(k, destSpec('198.51.100.1', 80, { weight: 7 }));
      ipvs.editDest(k, destSpec('198.51.100.1', 80, { weight: 0 }));
      assert.deepEqual([d.weight, d.lastWeight], [0, 7]);
    });
  });

  describe('destination trash', () => {
    it('resurrects a deleted destination with its counters when re-added to the same service', () => {
      const { ipvs } = makeIpvs();
      const k = svcSpec(VIP, 80, { scheduler: 'rr' });
      const svc = ipvs.addService(k);
      const d = ipvs.addDest(k, destSpec('198.51.100.1', 80));
      ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000, VIP, 80));
      ipvs.delDest(k, { addr: '198.51.100.1', port: 80 });
      assert.equal(ipvs.trash.size, 1);
      const again = ipvs.addDest(k, destSpec('198.51.100.1', 80, { weight: 3 }));
      assert.equal(again, d);
      assert.equal(again.stats.snapshot().conns, 1);
      assert.equal(again.weight, 3);
      assert.equal(ipvs.trash.size, 0);
    });

    for (const scheduler of ['lblc', 'lblcr']) {
      it(`${scheduler}: a cache entry naming a deleted destination keeps it in the trash`, () => {
        const { ipvs, advance } = makeIpvs();
        const k = svcSpec(VIP, 80, { scheduler });
        const svc = ipvs.addService(k);
        const d = ipvs.addDest(k, destSpec('198.51.100.1', 80));
        ipvs.ops.put(ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000, VIP, 80)));
        advance(5_000); // the connection (3 s) is gone; the cache entry holds the destination
        ipvs.delDest(k, { addr: '198.51.100.1', port: 80 });
        advance(300_000);
        assert.equal(ipvs.trash.size, 1);
        assert.equal(ipvs.addDest(k, destSpec('198.51.100.1', 80)), d);
        assert.equal(d.stats.snapshot().conns, 1);
        // without a cache (the service gone) the trash lets it go after its idle period
        ipvs.delDest(k, { addr: '198.51.100.1', port: 80 });
        ipvs.delService(k);
        advance(300_000);
        assert.equal(ipvs.trash.size, 0);
      });
    }

    it('does not resurrect into a different service', () => {
      const { ipvs } = makeIpvs();
      const a = svcSpec(VIP, 80);
      const b = svcSpec(VIP, 81);
      ipvs.addService(a);
      ipvs.addService(b);
      const d = ipvs.addDest(a, destSpec('198.51.100.1', 80));
      ipvs.delDest(a, { addr: '198.51.100.1', port: 80 });
      assert.notEqual(ipvs.addDest(b, destSpec('198.51.100.1', 80)), d);
    });

    it('resurrects into a re-created service with zeroed statistics (ip_vs_zero_stats)', () => {
      const { ipvs, advance } = makeIpvs();
      const k = svcSpec(VIP, 80, { scheduler: 'rr' });
      let svc = ipvs.addService(k);
      const d = ipvs.addDest(k, destSpec('198.51.100.1', 80));
      for (let i = 0; i < 100; i++)
        ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1000 + i, VIP, 80));
      advance(2000);
      assert.ok(d.stats.snapshot().cps > 0);
      ipvs.delService(k);
      svc = ipvs.addService(k);
      const again = ipvs.addDest(k, destSpec('198.51.100.1', 80));
      assert.equal(again, d, 'the trashed object comes back');
      assert.equal(again.svc, svc);
      const s = again.stats.snapshot();
      assert.deepEqual([s.conns, s.cps, s.inpps], [0, 0, 0]);
      // the total keeps counting across services; the new service starts from zero
      assert.equal(ipvs.total.snapshot().conns, 100);
      assert.equal(svc.stats.snapshot().conns, 0);
    });

    it('resurrects a fwmark destination whatever the family of the old fwmark service', () => {
      const { ipvs } = makeIpvs();
      const v4 = fwmSpec(7);
      const v6 = fwmSpec(7, { af: 10, netmask: 128 });
      ipvs.addService(v4);
      ipvs.addService(v6);
      const tun = { fwd: 2, af: 10 as const };
      const d = ipvs.addDest(v4, destSpec('2001:db8::10', 80, tun));
      ipvs.delDest(v4, { addr: '2001:db8::10', port: 80, af: 10 });
      // ip_vs_trash_get_dest matches fwmark and protocol only, not the service family
      assert.equal(ipvs.addDest(v6, destSpec('2001:db8::10', 80, tun)), d);
    });

    it('takes back the most recently deleted of two matches (the trash list is newest-first)', () => {
      const { ipvs } = makeIpvs();
      const v4 = fwmSpec(1);
      const v6 = fwmSpec(1, { af: 10, netmask: 128 });
      ipvs.addService(v4);
      ipvs.addService(v6);
      const tun = { fwd: 2, af: 2 as const };
      const d4 = ipvs.addDest(v4, destSpec('198.51.100.9', 0, tun));
      const d6 = ipvs.addDest(v6, destSpec('198.51.100.9', 0, tun));
      assert.notEqual(d4, d6);
      ipvs.delDest(v4, { addr: '198.51.100.9', port: 0, af: 2 });
      ipvs.delDest(v6, { addr: '198.51.100.9', port: 0, af: 2 });
      assert.equal(ipvs.addDest(v4, destSpec('198.51.100.9', 0, tun)), d6);
      assert.equal(ipvs.addDest(v6, destSpec('198.51.100.9', 0, tun)), d4);
    });

    it('restarts the 60 s sweep timer when the trash fills again after emptying', () => {
      const { ipvs, advance } = makeIpvs();
      const k = svcSpec(VIP, 80);
      ipvs.addService(k);
      const dk = { addr: '198.51.100.1', port: 80 };
      ipvs.addDest(k, destSpec('198.51.100.1', 80));
      ipvs.delDest(k, dk); // t = 0: sweep due at 60 s
      advance(10_000);
      ipvs.addDest(k, destSpec('198.51.100.1', 80)); // trash empty again
      advance(40_000);
      ipvs.delDest(k, dk); // t = 50 s: the kernel re-arms the timer for 110 s
      advance(15_000); // t = 65 s
      advance(115_000); // t = 180 s: first idle sweep was at 110 s, so not yet freed
      assert.equal(ipvs.trash.size, 1);
      advance(50_000); // t = 230 s = 110 + 120
      assert.equal(ipvs.trash.size, 0);
    });

    it('frees unreferenced entries after a sweep finds them idle for 120 s', () => {
      const { ipvs, advance } = makeIpvs();
      const k = svcSpec(VIP, 80);
      ipvs.addService(k);
      ipvs.addDest(k, destSpec('198.51.100.1', 80));
      ipvs.delDest(k, { addr: '198.51.100.1', port: 80 });
      advance(60_000); // first sweep: starts the idle clock
      assert.equal(ipvs.trash.size, 1);
      advance(120_000); // 120 s after the first sweep
      assert.equal(ipvs.trash.size, 0);
    });
  });

  describe('timeouts, sysctls, daemons, info', () => {
    it('reports version 1.2.1 and the hash size', () => {
      const { ipvs } = makeIpvs({ connTabBits: 16 });
      assert.deepEqual(ipvs.info(), { version: 0x010201, connTabSize: 65536 });
    });

    it('defaults the timeouts to 900 120 300 and leaves a value unchanged on 0', () => {
      const { ipvs } = makeIpvs();
      assert.deepEqual(ipvs.getTimeouts(), { tcp: 900, tcpfin: 120, udp: 300 });
      ipvs.setTimeouts({ tcp: 0, tcpfin: 0, udp: 60 });
      assert.deepEqual(ipvs.getTimeouts(), { tcp: 900, tcpfin: 120, udp: 60 });
      assert.throws(() => ipvs.setTimeouts({ tcp: -1, tcpfin: 0, udp: 0 }), {
        code: 'IPVS_ERR_INVALID',
      });
      assert.deepEqual(ipvs.getTimeouts(), { tcp: 900, tcpfin: 120, udp: 60 });
    });

    it('validates sysctl writes', () => {
      const { ipvs } = makeIpvs();
      assert.throws(() => ipvs.setSysctl('drop_entry', 4), { code: 'IPVS_ERR_SYSCTL' });
      assert.throws(() => ipvs.setSysctl('sync_ports', 3), { code: 'IPVS_ERR_SYSCTL' });
      assert.throws(() => ipvs.setSysctl('sync_threshold', [50, 3]), { code: 'IPVS_ERR_SYSCTL' });
      assert.throws(() => ipvs.setSysctl('no_such', 1), { code: 'IPVS_ERR_NO_SYSCTL' });
      ipvs.setSysctl('sync_threshold', [3, 0]);
      assert.deepEqual(ipvs.getSysctls().sync_threshold, [3, 0]);
      assert.equal(ipvs.getSysctls().conn_reuse_mode, 1);
    });

    it('starts each sync role once and stops only running roles', () => {
      const { ipvs } = makeIpvs();
      ipvs.startDaemon({ state: 1, mcastIfn: 'eth0', syncId: 0 });
      refuses(
        ipvs,
        () => ipvs.startDaemon({ state: 1, mcastIfn: 'eth0', syncId: 0 }),
        'IPVS_ERR_DAEMON_RUNNING',
        'Daemon has already run',
      );
      refuses(ipvs, () => ipvs.stopDaemon(2), 'IPVS_ERR_NO_DAEMON', 'No daemon is running');
      refuses(
        ipvs,
        () => ipvs.startDaemon({ state: 2, mcastIfn: 'eth0', syncId: 0, mcastGroup: '192.0.2.1' }),
        'IPVS_ERR_INVALID',
        'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      );
      assert.deepEqual(ipvs.listDaemons(), [
        {
          state: 1,
          mcastIfn: 'eth0',
          syncId: 0,
          syncMaxlen: 1472,
          mcastGroup: '224.0.0.81',
          mcastPort: 8848,
          mcastTtl: 1,
        },
      ]);
    });
  });

  describe('errors', () => {
    it('gives every error class a unique IPVS_ERR_ code', () => {
      const codes = ALL_ERRORS.map((E) => new E().code);
      assert.equal(new Set(codes).size, codes.length);
      assert.ok(codes.every((c) => /^IPVS_ERR_[A-Z_]+$/.test(c)));
    });
  });
});
