/**
 * Read-outs of core state as the JSON-safe shapes of the control API (`src/ctl/types.ts`):
 * services with their destinations and counters, and the connection table as `ipvsadm -L -c`
 * shows it.
 */
import { type Af, formatIp, formatIpv4 } from './addr.js';
import { CONN_F_FWD_MASK, CONN_F_TEMPLATE, IPPROTO_IP } from './constants.js';
import type { Ipvs } from './ipvs.js';
import type { Dest, Service } from './service.js';
import { protoOps, templateStateName } from '../proto/index.js';
import type { ConnInfo, DestInfo, ServiceInfo } from '../ctl/types.js';

/** Every hashed connection and template of `ipvs`. */
export function connInfos(ipvs: Ipvs): ConnInfo[] {
  const out: ConnInfo[] = [];
  ipvs.conns.forEach((h) => out.push(connInfo(ipvs, h)));
  return out;
}

/**
 * One page of `connInfos`: the connections of the index buckets from `from` on, at least `max`
 * of them unless the table ends first, and the bucket the next page starts from (-1: done).
 */
export function connInfosPage(
  ipvs: Ipvs,
  from: number,
  max: number,
): { conns: ConnInfo[]; next: number } {
  const conns: ConnInfo[] = [];
  const next = ipvs.conns.forEachFrom(from, max, (h) => conns.push(connInfo(ipvs, h)));
  return { conns, next };
}

/** The listing of connection `h`. */
function connInfo(ipvs: Ipvs, h: number): ConnInfo {
  const t = ipvs.conns;
  const af = t.af(h) as Af;
  const daf = t.daf(h) as Af;
  const proto = t.protocol(h);
  const tmpl = (t.flags(h) & CONN_F_TEMPLATE) !== 0;
  const po = protoOps(proto);
  // ip_vs_state_name: a template past NONE / ASSURED (a synced one may be) reads ERR!
  const stateName = tmpl ? templateStateName(t.state(h)) : po ? po.stateName(t.state(h)) : 'ERR!';
  return {
    af,
    daf,
    protocol: proto,
    caddr: formatIp(af, t.hot, t.caddrOff(h)),
    cport: t.cport(h),
    vaddr:
      proto === IPPROTO_IP ? formatIpv4(t.hot[t.vaddrOff(h)]!) : formatIp(af, t.hot, t.vaddrOff(h)),
    vport: t.vport(h),
    daddr: formatIp(daf, t.cold, t.daddrOff(h)),
    dport: t.dport(h),
    fwmark: t.fwmark(h),
    flags: t.flags(h),
    state: t.state(h),
    stateName,
    expiresMs: Math.max(0, ipvs.wheel.expires(h) - ipvs.now()),
    peName: ipvs.ops.peName(h),
    peData: ipvs.ops.peData(h),
  };
}

/** One destination with its counters. */
export function destInfo(d: Dest): DestInfo {
  return {
    af: d.af as 2 | 10,
    addr: formatIp(d.af, d.addr),
    port: d.port,
    fwd: d.connFlags & CONN_F_FWD_MASK,
    weight: d.weight,
    uThreshold: d.uThreshold,
    lThreshold: d.lThreshold,
    tunType: d.tunType,
    tunPort: d.tunPort,
    tunFlags: d.tunFlags,
    activeConns: d.activeConns,
    inactConns: d.inactConns,
    persistConns: d.persistConns,
    stats: d.stats.snapshot(),
    connectFailures: d.connectFailures,
  };
}

/** One service with its destinations, newest first. */
export function serviceInfo(s: Service): ServiceInfo {
  return {
    af: s.af as 2 | 10,
    protocol: s.protocol,
    addr: s.fwmark ? '' : formatIp(s.af, s.addr),
    port: s.port,
    fwmark: s.fwmark,
    scheduler: s.schedName,
    flags: s.flags,
    timeout: s.timeout,
    netmask: s.netmask,
    pe: s.peName,
    ext: { ...s.ext },
    stats: s.stats.snapshot(),
    numDests: s.dests.length,
    dests: s.dests.map(destInfo),
  };
}
