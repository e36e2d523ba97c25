/**
 * One configuration with every case the /proc texts and /metrics distinguish: IPv4 and IPv6
 * services, a one-packet and persistent services, fwmark services of both families, a
 * destination of each forwarding method, connections, templates of each kind, a synced
 * connection, SIP engine data and a mixed-family destination.
 */
import type { StatsSnapshot } from '../../src/core/stats.js';
import type { ConnInfo, DestInfo, ServiceInfo } from '../../src/ctl/types.js';
import type { TotalsInfo } from '../../src/metrics/proc.js';
import { dest, stats } from '../cli/fixtures.js';

/** Stats with nothing counted. */
export const ZERO: StatsSnapshot = stats();

/** An IPv4 TCP wlc service, overridden by `o`. */
export function svc(o: Partial<ServiceInfo>, dests: DestInfo[] = []): ServiceInfo {
  return {
    af: 2,
    protocol: 6,
    addr: '',
    port: 0,
    fwmark: 0,
    scheduler: 'wlc',
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    pe: '',
    stats: ZERO,
    numDests: dests.length,
    dests,
    ...o,
  };
}

/** Services in the order the kernel lists them: address services, then fwmark services. */
export const SERVICES: ServiceInfo[] = [
  svc({ addr: '10.0.0.1', port: 80 }, [
    dest('192.168.1.11', 8080, { fwd: 3, weight: 5 }),
    dest('192.168.1.10', 80, { activeConns: 2, inactConns: 3 }),
  ]),
  // one-packet scheduling, persistent 360 s with a /24 mask
  svc(
    {
      protocol: 17,
      addr: '10.0.0.2',
      port: 53,
      scheduler: 'rr',
      flags: 1 | 4,
      timeout: 360,
      netmask: 0xffffff00,
    },
    [dest('10.1.0.5', 53, { fwd: 2, weight: 2 })],
  ),
  // IPv6, persistent /64; its ops flag is not printed (the kernel's IPv6 format has no %s for it)
  svc(
    {
      af: 10,
      addr: '2001:db8::1',
      port: 443,
      scheduler: 'sh',
      flags: 1 | 4,
      timeout: 300,
      netmask: 64,
    },
    [dest('2001:db8::10', 443, { fwd: 1, inactConns: 1 })],
  ),
  svc({ fwmark: 5, flags: 1, timeout: 60 }, [dest('192.168.1.20', 0, { fwd: 3 })]),
  svc({ af: 10, fwmark: 7, scheduler: 'rr', flags: 4, netmask: 128 }),
];

/** A connection with everything zero, overridden by `o`. */
export function conn(o: Partial<ConnInfo>): ConnInfo {
  return {
    af: 2,
    daf: 2,
    protocol: 6,
    caddr: '',
    cport: 0,
    vaddr: '',
    vport: 0,
    daddr: '',
    dport: 0,
    fwmark: 0,
    flags: 0,
    state: 0,
    stateName: 'NONE',
    expiresMs: 0,
    peName: '',
    peData: '',
    ...o,
  };
}

/** A connection, templates of each kind, a synced IPv6 connection, SIP data, a mixed family. */
export const CONNS: ConnInfo[] = [
  conn({
    caddr: '203.0.113.5',
    cport: 40000,
    vaddr: '10.0.0.1',
    vport: 80,
    daddr: '192.168.1.10',
    dport: 80,
    state: 1,
    stateName: 'ESTABLISHED',
    expiresMs: 899_500,
  }),
  conn({
    protocol: 17,
    caddr: '203.0.113.0',
    vaddr: '10.0.0.2',
    vport: 53,
    daddr: '10.1.0.5',
    dport: 53,
    flags: 0x1000 | 2,
    expiresMs: 359_999,
  }),
  // fwmark template: protocol IP, the mark in the virtual address
  conn({
    protocol: 0,
    caddr: '203.0.113.0',
    vaddr: '0.0.0.5',
    daddr: '192.168.1.20',
    fwmark: 5,
    flags: 0x1000 | 3,
    state: 1,
    stateName: 'ASSURED',
    expiresMs: 59_000,
  }),
  conn({
    af: 10,
    daf: 10,
    caddr: '2001:db8::99',
    cport: 50000,
    vaddr: '2001:db8::1',
    vport: 443,
    daddr: '2001:db8::10',
    dport: 443,
    flags: 0x20 | 1,
    state: 3,
    stateName: 'SYN_RECV',
    expiresMs: 30_000,
  }),
  conn({
    protocol: 17,
    caddr: '198.51.100.0',
    vaddr: '10.0.0.3',
    vport: 5060,
    daddr: '192.168.1.30',
    dport: 5060,
    flags: 0x1000,
    expiresMs: 179_000,
    peName: 'sip',
    peData: 'call-1@x',
  }),
  // IPv4 service, IPv6 tunnel destination: the destination by its own family
  conn({
    daf: 10,
    caddr: '203.0.113.6',
    cport: 1000,
    vaddr: '10.0.0.1',
    vport: 80,
    daddr: '2001:db8::20',
    dport: 80,
    flags: 0x20 | 2,
    state: 4,
    stateName: 'FIN_WAIT',
    expiresMs: 2_500,
  }),
  conn({
    af: 10,
    daf: 10,
    protocol: 0,
    caddr: '2001:db8::',
    vaddr: '0.0.0.7',
    daddr: '2001:db8::10',
    fwmark: 7,
    flags: 0x1000 | 1,
    state: 1,
    stateName: 'ASSURED',
    expiresMs: 400,
  }),
];

/** Totals with counters, a zero baseline (raw > zero-based) and rates. */
export const TOTALS: TotalsInfo = {
  stats: {
    conns: 10,
    inpkts: 300,
    outpkts: 200,
    inbytes: 123456789012,
    outbytes: 0,
    cps: 1,
    inpps: 15,
    outpps: 10,
    inbps: 5000,
    outbps: 0,
  },
  raw: { conns: 12, inpkts: 310, outpkts: 205, inbytes: 123456789999, outbytes: 7 },
  conns: 7,
};
