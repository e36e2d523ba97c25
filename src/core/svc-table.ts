/**
 * The service tables (spec §1.1): 256 buckets keyed by (protocol, address, port) and 256 keyed by
 * fwmark, new services at the head of their bucket, and `find()` in the kernel's lookup order
 * (fwmark, exact, FTP-data fallback to port 21, port-0 service). Lookups allocate nothing.
 */
import { AF_INET6, addrEqual, addrFold } from './addr.js';
import { IPPROTO_TCP } from './constants.js';
import type { Service } from './service.js';

const BUCKETS = 256;

/** Services indexed the way the kernel indexes them. */
export class ServiceTable {
  readonly #tab: Service[][] = Array.from({ length: BUCKETS }, () => []);
  readonly #fwm: Service[][] = Array.from({ length: BUCKETS }, () => []);
  #salt: number;
  #ftpSvcs = 0;
  #nullportSvcs = 0;
  #count = 0;
  /** Services by family: [IPv4, IPv6]. */
  readonly #byAf = [0, 0];

  constructor(salt: number) {
    this.#salt = salt >>> 0;
  }

  /** The salt of the bucket hashes (the state file keeps it, so a restart lists in the same order). */
  get salt(): number {
    return this.#salt;
  }

  /** Takes another salt; only while the table is empty (no service would be found again). */
  reseed(salt: number): void {
    if (this.#count === 0) this.#salt = salt >>> 0;
  }

  /** Number of services. */
  get size(): number {
    return this.#count;
  }

  /** True while a service of family `af` exists (IPVS's hooks for the family are registered). */
  hasFamily(af: number): boolean {
    return this.#byAf[af === AF_INET6 ? 1 : 0]! > 0;
  }

  #hash(proto: number, af: number, addr: ArrayLike<number>, port: number): number {
    return (proto ^ addrFold(af, addr) ^ this.#salt ^ (port >>> 8) ^ port) & (BUCKETS - 1);
  }

  #fwHash(mark: number): number {
    return (this.#salt ^ mark) & (BUCKETS - 1);
  }

  /** Inserts a service at the head of its bucket. */
  add(svc: Service): void {
    if (svc.fwmark) this.#fwm[this.#fwHash(svc.fwmark)]!.unshift(svc);
    else {
      this.#tab[this.#hash(svc.protocol, svc.af, svc.addr, svc.port)]!.unshift(svc);
      if (svc.port === 21) this.#ftpSvcs++;
      else if (svc.port === 0) this.#nullportSvcs++;
    }
    this.#count++;
    this.#byAf[svc.af === AF_INET6 ? 1 : 0]!++;
  }

  /** Removes a service. */
  remove(svc: Service): void {
    const bucket = svc.fwmark
      ? this.#fwm[this.#fwHash(svc.fwmark)]!
      : this.#tab[this.#hash(svc.protocol, svc.af, svc.addr, svc.port)]!;
    const i = bucket.indexOf(svc);
    if (i < 0) return;
    bucket.splice(i, 1);
    if (!svc.fwmark) {
      if (svc.port === 21) this.#ftpSvcs--;
      else if (svc.port === 0) this.#nullportSvcs--;
    }
    this.#count--;
    this.#byAf[svc.af === AF_INET6 ? 1 : 0]!--;
  }

  /** Exact (af, protocol, address, port) lookup. */
  findExact(af: number, proto: number, addr: ArrayLike<number>, port: number): Service | null {
    const bucket = this.#tab[this.#hash(proto, af, addr, port)]!;
    for (let i = 0; i < bucket.length; i++) {
      const s = bucket[i]!;
      if (s.af === af && s.port === port && s.protocol === proto && addrEqual(af, s.addr, addr))
        return s;
    }
    return null;
  }

  /** (af, fwmark) lookup. */
  findFwmark(af: number, mark: number): Service | null {
    const bucket = this.#fwm[this.#fwHash(mark)]!;
    for (let i = 0; i < bucket.length; i++) {
      const s = bucket[i]!;
      if (s.fwmark === mark && s.af === af) return s;
    }
    return null;
  }

  /**
   * The service for an incoming packet, in the kernel's order (spec §1.1): fwmark; exact; TCP to
   * port 20 or an unprivileged port falls back to a port-21 service; then the port-0 service.
   */
  find(
    af: number,
    mark: number,
    proto: number,
    vaddr: ArrayLike<number>,
    vport: number,
    unprivilegedPortStart = 1024,
  ): Service | null {
    if (mark) {
      const s = this.findFwmark(af, mark);
      if (s) return s;
    }
    let s = this.findExact(af, proto, vaddr, vport);
    if (s) return s;
    if (
      this.#ftpSvcs > 0 &&
      proto === IPPROTO_TCP &&
      (vport === 20 || vport >= unprivilegedPortStart)
    ) {
      s = this.findExact(af, proto, vaddr, 21);
      if (s) return s;
    }
    if (this.#nullportSvcs > 0) s = this.findExact(af, proto, vaddr, 0);
    return s;
  }

  /** Every service in kernel listing order: address table buckets, then fwmark buckets. */
  list(): Service[] {
    const out: Service[] = [];
    for (const b of this.#tab) out.push(...b);
    for (const b of this.#fwm) out.push(...b);
    return out;
  }
}
