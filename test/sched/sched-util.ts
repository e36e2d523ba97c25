/**
 * Small builders for the scheduler tests: services on a FakeEnv, destinations linked through the
 * core list operations (so the hooks run where the kernel runs them), and flows.
 */
import { AF_INET, AF_INET6, type Af, parseIp } from '../../src/core/addr.js';
import { IPPROTO_TCP } from '../../src/core/constants.js';
import { bindScheduler, linkDest, unlinkDest, updatedDest } from '../../src/core/dests.js';
import { Flow } from '../../src/core/flow.js';
import { Dest, type SchedulerOps, Service } from '../../src/core/service.js';
import { FakeEnv } from '../helpers/fake-env.js';

/** Address words of a textual IPv4 or IPv6 address. */
export function ip(text: string): Uint32Array {
  const a = parseIp(text);
  if (!a) throw new Error(`bad address ${text}`);
  return a.words;
}

/** A TCP service on 10.0.0.1:80 (or [2001:db8::1]:80) bound to `ops`. */
export function makeService(
  ops: SchedulerOps | null,
  opts: { env?: FakeEnv; af?: Af; flags?: number } = {},
): Service {
  const af = opts.af ?? AF_INET;
  const env = opts.env ?? new FakeEnv(1);
  const svc = new Service(
    env,
    af,
    IPPROTO_TCP,
    ip(af === AF_INET ? '10.0.0.1' : '2001:db8::1'),
    80,
    0,
  );
  svc.flags = opts.flags ?? 0;
  if (ops) bindScheduler(svc, ops);
  return svc;
}

/** Adds a destination (weight as given, last_weight = weight as on add) at the list head. */
export function addDest(svc: Service, addr: string, weight = 1, port = 80): Dest {
  const d = new Dest(addr.includes(':') ? AF_INET6 : AF_INET, ip(addr), port);
  d.weight = weight;
  d.lastWeight = weight;
  linkDest(svc, d);
  return d;
}

/** Edits a destination's weight the way core does (last_weight follows non-zero weights). */
export function setWeight(svc: Service, d: Dest, weight: number): void {
  d.weight = weight;
  if (weight !== 0) d.lastWeight = weight;
  updatedDest(svc, d);
}

/** Deletes a destination. */
export function delDest(svc: Service, d: Dest): void {
  unlinkDest(svc, d);
}

/** A TCP flow client:sport → vip:dport. */
export function flow(
  saddr: string,
  sport = 40000,
  daddr = '10.0.0.1',
  dport = 80,
  proto = IPPROTO_TCP,
): Flow {
  const f = new Flow();
  const s = ip(saddr);
  f.set(saddr.includes(':') ? AF_INET6 : AF_INET, proto, s, sport, ip(daddr), dport);
  return f;
}

/** A reusable IPv4 flow with the given host-order source address and port. */
export function v4flow(f: Flow, saddr: number, sport = 40000, daddr = 0x0a000001): Flow {
  f.af = AF_INET;
  f.protocol = IPPROTO_TCP;
  f.saddr[0] = saddr >>> 0;
  f.sport = sport;
  f.daddr[0] = daddr >>> 0;
  f.dport = 80;
  f.inverse = false;
  return f;
}

/** Calls schedule `n` times and returns the chosen destinations' labels. */
export function run(
  svc: Service,
  n: number,
  label: (d: Dest | null) => string,
  f = flow('192.0.2.9'),
): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(label(svc.sched!.schedule(svc, f)));
  return out;
}

/** Labels destinations by their last address byte: 10.0.0.A → 'A' style names given in `names`. */
export function namer(names: Map<Dest, string>): (d: Dest | null) => string {
  return (d) => (d === null ? 'null' : (names.get(d) ?? '?'));
}

/** Adds named destinations in the given order; returns them and a labeller. */
export function named(
  svc: Service,
  addOrder: [name: string, weight: number, active?: number, inact?: number][],
): { by: Record<string, Dest>; label: (d: Dest | null) => string } {
  const names = new Map<Dest, string>();
  const by: Record<string, Dest> = {};
  addOrder.forEach(([name, w, active = 0, inact = 0], i) => {
    const d = addDest(svc, `10.1.0.${i + 1}`, w);
    d.activeConns = active;
    d.inactConns = inact;
    names.set(d, name);
    by[name] = d;
  });
  return { by, label: namer(names) };
}

/**
 * A straightforward BigInt SipHash-c-d of one 32-bit value (4 little-endian bytes), written from
 * the SipHash paper as an oracle independent of src/sched/siphash.ts.
 */
export function refSip(k0: bigint, k1: bigint, v: number, c: number, d: number): bigint {
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & M;
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & M;
    v1 = rotl(v1, 13n);
    v1 ^= v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & M;
    v3 = rotl(v3, 16n);
    v3 ^= v2;
    v0 = (v0 + v3) & M;
    v3 = rotl(v3, 21n);
    v3 ^= v0;
    v2 = (v2 + v1) & M;
    v1 = rotl(v1, 17n);
    v1 ^= v2;
    v2 = rotl(v2, 32n);
  };
  const b = (4n << 56n) | BigInt(v >>> 0);
  v3 ^= b;
  for (let i = 0; i < c; i++) round();
  v0 ^= b;
  v2 ^= 0xffn;
  for (let i = 0; i < d; i++) round();
  return v0 ^ v1 ^ v2 ^ v3;
}
