import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SVC_F_PERSISTENT } from '../../src/core/constants.js';
import { DIR_INPUT, DIR_OUTPUT, TCP_ACK, TCP_SYN } from '../../src/proto/index.js';
import { destSpec, flow, fwmSpec, makeIpvs, svcSpec } from '../helpers/ipvs.js';

const VIP = '192.0.2.1';
const P = SVC_F_PERSISTENT;

function templates(ipvs: ReturnType<typeof makeIpvs>['ipvs']) {
  return ipvs.listConns().filter((c) => c.flags & 0x1000);
}

describe('persistence templates', () => {
  it('keys a normal service by the masked client, port 0, the VIP and the service port', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec(VIP, 80, { scheduler: 'rr', flags: P, timeout: 360, netmask: 0xffffff00 });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 8080));
    ipvs.addDest(k, destSpec('198.51.100.11', 8080));
    const h1 = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1111, VIP, 80));
    const h2 = ipvs.ops.schedule(svc, flow(6, '203.0.113.77', 2222, VIP, 80));
    const [t] = templates(ipvs);
    assert.equal(templates(ipvs).length, 1, 'two clients of one /24 share a template');
    assert.deepEqual(
      [t!.protocol, t!.caddr, t!.cport, t!.vaddr, t!.vport, t!.dport],
      [6, '203.0.113.0', 0, VIP, 80, 8080],
    );
    assert.equal(
      ipvs.conns.cold[ipvs.conns.daddrOff(h1)],
      ipvs.conns.cold[ipvs.conns.daddrOff(h2)],
    );
    assert.equal(ipvs.conns.dport(h1), 8080);
    // another network gets its own template
    ipvs.ops.schedule(svc, flow(6, '203.0.114.5', 1111, VIP, 80));
    assert.equal(templates(ipvs).length, 2);
  });

  it('masks IPv6 clients by the persistence prefix length', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec('2001:db8::1', 443, { scheduler: 'rr', flags: P, timeout: 360, netmask: 48 });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('2001:db8::10', 443));
    ipvs.addDest(k, destSpec('2001:db8::11', 443));
    ipvs.ops.schedule(svc, flow(6, '2001:db8:aaaa:1::5', 1111, '2001:db8::1', 443));
    ipvs.ops.schedule(svc, flow(6, '2001:db8:aaaa:ffff::9', 2222, '2001:db8::1', 443));
    ipvs.ops.schedule(svc, flow(6, '2001:db8:aaab::9', 2222, '2001:db8::1', 443));
    assert.deepEqual(
      templates(ipvs)
        .map((t) => t.caddr)
        .sort(),
      ['2001:db8:aaaa::', '2001:db8:aaab::'],
    );
  });

  it('uses vport 0 for FTP (port 21) services so data connections follow', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec(VIP, 21, { scheduler: 'rr', flags: P, timeout: 360 });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 21, { fwd: 3 }));
    ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1111, VIP, 21));
    const [t] = templates(ipvs);
    assert.deepEqual([t!.vport, t!.dport], [0, 0]);
    // a passive data connection to port 40000 is found through the port-21 service and the same template
    const data = ipvs.services.find(2, 0, 6, new Uint32Array([0xc0000201, 0, 0, 0]), 40000);
    assert.equal(data, svc);
    const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1112, VIP, 40000));
    assert.equal(ipvs.conns.dport(h), 40000, 'the client port is kept for data connections');
    assert.equal(templates(ipvs).length, 1);
  });

  it('for a port-0 service keys by vport 0 and keeps the client destination port', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec(VIP, 0, { scheduler: 'rr', flags: P, timeout: 360 });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 9999));
    const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1111, VIP, 443));
    assert.equal(ipvs.conns.dport(h), 443, 'destination port is ignored for port-0 services');
    const [t] = templates(ipvs);
    assert.deepEqual([t!.vport, t!.dport, t!.protocol], [0, 0, 6]);
    // a second port of the same client sticks to the same destination
    const h2 = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1112, VIP, 8443));
    assert.equal(ipvs.conns.dport(h2), 8443);
    assert.equal(templates(ipvs).length, 1);
  });

  it('for a fwmark service uses protocol 0 and the fwmark as the virtual address', () => {
    const { ipvs } = makeIpvs();
    const k = fwmSpec(7, { scheduler: 'rr', flags: P, timeout: 360 });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 80));
    const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1111, VIP, 443, 7));
    assert.equal(ipvs.conns.dport(h), 443, 'persistent fwmark keeps the client destination port');
    const [t] = templates(ipvs);
    assert.deepEqual([t!.protocol, t!.vaddr, t!.vport], [0, '0.0.0.7', 0]);
    // UDP from the same client, same mark, uses the same (protocol 0) template
    ipvs.ops.schedule(svc, flow(17, '203.0.113.5', 1111, VIP, 53, 7));
    assert.equal(templates(ipvs).length, 1);
  });

  it('non-persistent fwmark services use the destination port', () => {
    const { ipvs } = makeIpvs();
    const k = fwmSpec(7, { scheduler: 'rr' });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 8080));
    const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1111, VIP, 443, 7));
    assert.equal(ipvs.conns.dport(h), 8080);
  });

  it('re-arms the template to the persistence timeout for each new child and marks it ASSURED', () => {
    const { ipvs, advance } = makeIpvs();
    const k = svcSpec(VIP, 80, { scheduler: 'rr', flags: P, timeout: 100 });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 80));
    const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1111, VIP, 80));
    assert.equal(templates(ipvs)[0]!.stateName, 'NONE');
    ipvs.ops.transition(h, DIR_INPUT, TCP_SYN);
    ipvs.ops.transition(h, DIR_OUTPUT, TCP_SYN | TCP_ACK);
    ipvs.ops.transition(h, DIR_INPUT, TCP_ACK);
    assert.equal(templates(ipvs)[0]!.stateName, 'ASSURED');
    advance(50_000);
    ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1112, VIP, 80));
    const t = templates(ipvs)[0]!;
    assert.ok(t.expiresMs > 99_000 && t.expiresMs <= 100_000);
  });

  it('outlives its children by the persistence timeout', () => {
    const { ipvs, advance } = makeIpvs();
    const k = svcSpec(VIP, 80, { scheduler: 'rr', flags: P, timeout: 30 });
    const svc = ipvs.addService(k);
    const d = ipvs.addDest(k, destSpec('198.51.100.10', 80));
    ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1111, VIP, 80)); // child expires after 3 s
    advance(5000);
    assert.equal(ipvs.conns.count, 1);
    assert.equal(d.persistConns, 1);
    advance(26_000);
    assert.equal(ipvs.conns.count, 0);
    assert.equal(d.persistConns, 0);
  });

  it('neutralises a template whose destination was deleted and schedules anew', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec(VIP, 80, { scheduler: 'rr', flags: P, timeout: 360 });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 80));
    ipvs.addDest(k, destSpec('198.51.100.11', 80));
    const h = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1111, VIP, 80));
    const first = ipvs.listConns().find((c) => !(c.flags & 0x1000))!.daddr;
    ipvs.delDest(k, { addr: first, port: 80 });
    void h;
    const h2 = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1112, VIP, 80));
    const other = first === '198.51.100.10' ? '198.51.100.11' : '198.51.100.10';
    assert.equal(ipvs.listConns().find((c) => c.cport === 1112)!.daddr, other);
    assert.ok(h2 >= 0);
    const stale = templates(ipvs).find((t) => t.daddr === first)!;
    assert.deepEqual([stale.vport, stale.dport, stale.cport], [0xffff, 0xffff, 0]);
  });

  it('keeps sending a client to a quiescent destination unless expire_quiescent_template is set', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec(VIP, 80, { scheduler: 'rr', flags: P, timeout: 360 });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 80));
    ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1111, VIP, 80));
    ipvs.addDest(k, destSpec('198.51.100.11', 80));
    ipvs.editDest(k, destSpec('198.51.100.10', 80, { weight: 0 }));
    const h2 = ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1112, VIP, 80));
    assert.equal(ipvs.listConns().find((c) => c.cport === 1112)!.daddr, '198.51.100.10');
    void h2;
    ipvs.setSysctl('expire_quiescent_template', 1);
    ipvs.ops.schedule(svc, flow(6, '203.0.113.5', 1113, VIP, 80));
    assert.equal(ipvs.listConns().find((c) => c.cport === 1113)!.daddr, '198.51.100.11');
  });
});
