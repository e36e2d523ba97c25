/**
 * Builders for listing data (ServiceInfo, DestInfo, ConnInfo) used by the ipvsadm golden tests.
 */
import type { StatsSnapshot } from '../../src/core/stats.js';
import type { ConnInfo, DestInfo, ServiceInfo } from '../../src/ctl/types.js';

export function stats(p: Partial<StatsSnapshot> = {}): StatsSnapshot {
  return {
    conns: 0,
    inpkts: 0,
    outpkts: 0,
    inbytes: 0,
    outbytes: 0,
    cps: 0,
    inpps: 0,
    outpps: 0,
    inbps: 0,
    outbps: 0,
    ...p,
  };
}

export function dest(addr: string, port: number, p: Partial<DestInfo> = {}): DestInfo {
  return {
    af: addr.includes(':') ? 10 : 2,
    addr,
    port,
    fwd: 0,
    weight: 1,
    uThreshold: 0,
    lThreshold: 0,
    tunType: 0,
    tunPort: 0,
    tunFlags: 0,
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
    stats: stats(),
    connectFailures: 0,
    ...p,
  };
}

export function svc(
  proto: 'TCP' | 'UDP' | 'SCTP' | 'FWM',
  addrOrMark: string | number,
  port: number,
  p: Partial<ServiceInfo> = {},
): ServiceInfo {
  const fw = proto === 'FWM';
  const addr = fw ? '' : String(addrOrMark);
  const dests = p.dests ?? [];
  return {
    af: !fw && addr.includes(':') ? 10 : 2,
    protocol: proto === 'UDP' ? 17 : proto === 'SCTP' ? 132 : 6,
    addr,
    port: fw ? 0 : port,
    fwmark: fw ? Number(addrOrMark) : 0,
    scheduler: 'wlc',
    flags: 0,
    timeout: 0,
    netmask: !fw && addr.includes(':') ? 128 : 0xffffffff,
    pe: '',
    stats: stats(),
    numDests: dests.length,
    ...p,
    dests,
  };
}

export function conn(p: Partial<ConnInfo> = {}): ConnInfo {
  return {
    af: 2,
    daf: 2,
    protocol: 6,
    caddr: '1.2.3.4',
    cport: 5555,
    vaddr: '10.0.0.1',
    vport: 80,
    daddr: '192.168.1.10',
    dport: 80,
    fwmark: 0,
    flags: 0,
    state: 3,
    stateName: 'ESTABLISHED',
    expiresMs: 899_000,
    peName: '',
    peData: '',
    ...p,
  };
}
