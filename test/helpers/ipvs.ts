/**
 * Test helpers: an `Ipvs` on a manual clock with a seeded random source, and terse builders for
 * service / destination specs and flows.
 */
import { parseIp } from '../../src/core/addr.js';
import { Flow } from '../../src/core/flow.js';
import { Ipvs, type IpvsOptions } from '../../src/core/ipvs.js';
import type { DestSpec, ServiceSpec } from '../../src/ctl/types.js';
import { seededU32 } from './fake-env.js';

/** A manual clock. */
export class Clock {
  t = 1_000_000;
  now = (): number => this.t;
}

/** An Ipvs on a manual clock; `advance(ms)` moves time and runs timers tick by tick. */
export function makeIpvs(opts: IpvsOptions = {}): {
  ipvs: Ipvs;
  clock: Clock;
  advance: (ms: number) => void;
} {
  const clock = new Clock();
  const ipvs = new Ipvs({ now: clock.now, randomU32: seededU32(7), log: () => {}, ...opts });
  const advance = (ms: number): void => {
    const end = clock.t + ms;
    while (clock.t < end) {
      clock.t = Math.min(end, clock.t + 100);
      ipvs.tick();
    }
  };
  return { ipvs, clock, advance };
}

/** A TCP service spec with ipvsadm's defaults (wlc, not persistent). */
export function svcSpec(addr: string, port: number, o: Partial<ServiceSpec> = {}): ServiceSpec {
  const v6 = addr.includes(':');
  return {
    af: v6 ? 10 : 2,
    protocol: 6,
    addr,
    port,
    fwmark: 0,
    scheduler: 'wlc',
    flags: 0,
    timeout: 0,
    netmask: v6 ? 128 : 0xffffffff,
    pe: '',
    ...o,
  };
}

/** A fwmark service spec. */
export function fwmSpec(mark: number, o: Partial<ServiceSpec> = {}): ServiceSpec {
  return { ...svcSpec('0.0.0.0', 0), addr: '', port: 0, fwmark: mark, ...o };
}

/** A NAT destination spec with weight 1. */
export function destSpec(addr: string, port: number, o: Partial<DestSpec> = {}): DestSpec {
  return {
    addr,
    port,
    fwd: 0,
    weight: 1,
    uThreshold: 0,
    lThreshold: 0,
    tunType: 0,
    tunPort: 0,
    tunFlags: 0,
    ...o,
  };
}

/** A flow from client `src:sport` to `dst:dport`. */
export function flow(
  proto: number,
  src: string,
  sport: number,
  dst: string,
  dport: number,
  mark = 0,
): Flow {
  const s = parseIp(src)!;
  const d = parseIp(dst)!;
  return new Flow().set(s.af, proto, s.words, sport, d.words, dport, mark);
}

/**
 * Gives `ipvs` a TCP service 10.0.0.1:80 with one destination 192.168.1.10:80 and `n` scheduled
 * connections from distinct clients (203.0.x.y, 16 ports each); returns `ipvs`.
 */
export function fillConns(ipvs: Ipvs, n: number): Ipvs {
  ipvs.addService(svcSpec('10.0.0.1', 80));
  ipvs.addDest(svcSpec('10.0.0.1', 80), destSpec('192.168.1.10', 80));
  const svc = ipvs.services.list()[0]!;
  const f = new Flow();
  const c = new Uint32Array(4);
  const v = new Uint32Array([0x0a000001, 0, 0, 0]);
  for (let i = 0; i < n; i++) {
    c[0] = (0xcb000000 + (i >> 4)) >>> 0;
    f.set(2, 6, c, 1024 + (i & 15), v, 80);
    ipvs.ops.put(ipvs.ops.schedule(svc, f));
  }
  return ipvs;
}
