/**
 * Name resolution the way ipvsadm does it (spec §10.5): service names from the services database
 * (/etc/services, getservbyname / getservbyport), host names to IPv4 addresses (gethostbyname:
 * /etc/hosts, then DNS) and addresses back to names (gethostbyaddr: /etc/hosts, then a reverse DNS
 * lookup with a short timeout, falling back to the numeric form). A `NameResolver` is passed in so
 * tests can use fixed tables.
 */
import { lookup, Resolver } from 'node:dns';
import { readFileSync } from 'node:fs';
import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../core/constants.js';
import { formatIp, parseIp } from '../../core/addr.js';

/** Everything ipvsadm asks the name services. */
export interface NameResolver {
  /** gethostbyname restricted to IPv4: the first IPv4 address of `name`, or null. */
  hostToAddr4(name: string): Promise<string | null>;
  /** gethostbyaddr: the host name of an address, or null. */
  addrToHost(af: number, addr: string): Promise<string | null>;
  /** getservbyname for the protocol (tcp/udp/sctp); null when unknown. */
  serviceToPort(name: string, proto: number): number | null;
  /** getservbyport for the protocol; null when unknown (or for protocol 0). */
  portToService(port: number, proto: number): string | null;
}

/** Protocol name as the services database spells it. */
function protoKey(proto: number): string | null {
  switch (proto) {
    case IPPROTO_TCP:
      return 'tcp';
    case IPPROTO_UDP:
      return 'udp';
    case IPPROTO_SCTP:
      return 'sctp';
    default:
      return null;
  }
}

/** A parsed services(5) file: lookups by name (official or alias) and by port. */
export class ServicesDb {
  readonly #byName = new Map<string, number>();
  readonly #byPort = new Map<string, string>();

  constructor(text: string) {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      const [name, portProto, ...aliases] = line.split(/\s+/);
      const m = /^(\d+)\/(\w+)$/.exec(portProto ?? '');
      if (!name || !m) continue;
      const port = Number(m[1]);
      const proto = m[2]!.toLowerCase();
      for (const n of [name, ...aliases]) {
        const k = `${n}/${proto}`;
        if (!this.#byName.has(k)) this.#byName.set(k, port);
      }
      const pk = `${port}/${proto}`;
      if (!this.#byPort.has(pk)) this.#byPort.set(pk, name);
    }
  }

  /** Port of a service name for a protocol, or null. */
  port(name: string, proto: number): number | null {
    const p = protoKey(proto);
    return p ? (this.#byName.get(`${name}/${p}`) ?? null) : null;
  }

  /** Official service name of a port for a protocol, or null. */
  name(port: number, proto: number): string | null {
    const p = protoKey(proto);
    return p ? (this.#byPort.get(`${port}/${p}`) ?? null) : null;
  }
}

/** A parsed hosts(5) file. */
export class HostsDb {
  readonly #byName = new Map<string, string>();
  readonly #byAddr = new Map<string, string>();

  constructor(text: string) {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      const [addrText, ...names] = line.split(/\s+/);
      const ip = parseIp(addrText ?? '');
      if (!ip || names.length === 0) continue;
      const canon = `${ip.af}/${formatIp(ip.af, ip.words)}`;
      if (!this.#byAddr.has(canon)) this.#byAddr.set(canon, names[0]!);
      if (ip.af === 2) {
        for (const n of names) {
          const k = n.toLowerCase();
          if (!this.#byName.has(k)) this.#byName.set(k, formatIp(ip.af, ip.words));
        }
      }
    }
  }

  /** First IPv4 address of a name, or null. */
  addr4(name: string): string | null {
    return this.#byName.get(name.toLowerCase()) ?? null;
  }

  /** First name of an address, or null. */
  host(af: number, addr: string): string | null {
    return this.#byAddr.get(`${af}/${addr}`) ?? null;
  }
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Options of the system resolver. */
export interface SystemResolverOptions {
  servicesFile?: string;
  hostsFile?: string;
  /** Reverse-DNS timeout in milliseconds (default 1000). */
  dnsTimeoutMs?: number;
  /** Set false to skip DNS entirely (files only). */
  dns?: boolean;
}

/** The resolver `ipvs adm` uses: services and hosts files, then DNS with a short timeout. */
export class SystemResolver implements NameResolver {
  #services: ServicesDb | null = null;
  #hosts: HostsDb | null = null;
  readonly #opts: SystemResolverOptions;

  constructor(opts: SystemResolverOptions = {}) {
    this.#opts = opts;
  }

  get #svc(): ServicesDb {
    this.#services ??= new ServicesDb(readOr(this.#opts.servicesFile ?? '/etc/services'));
    return this.#services;
  }

  get #hostsDb(): HostsDb {
    this.#hosts ??= new HostsDb(readOr(this.#opts.hostsFile ?? '/etc/hosts'));
    return this.#hosts;
  }

  serviceToPort(name: string, proto: number): number | null {
    return this.#svc.port(name, proto);
  }

  portToService(port: number, proto: number): string | null {
    return this.#svc.name(port, proto);
  }

  async hostToAddr4(name: string): Promise<string | null> {
    const h = this.#hostsDb.addr4(name);
    if (h) return h;
    if (this.#opts.dns === false || name === '') return null;
    return new Promise((resolve) => {
      lookup(name, { family: 4 }, (err, address) => resolve(err ? null : address));
    });
  }

  async addrToHost(af: number, addr: string): Promise<string | null> {
    const h = this.#hostsDb.host(af, addr);
    if (h) return h;
    if (this.#opts.dns === false) return null;
    const r = new Resolver({ timeout: this.#opts.dnsTimeoutMs ?? 1000, tries: 1 });
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          r.cancel();
          resolve(null);
        },
        (this.#opts.dnsTimeoutMs ?? 1000) + 200,
      );
      timer.unref();
      r.reverse(addr, (err, names) => {
        clearTimeout(timer);
        resolve(err || !names || names.length === 0 ? null : names[0]!);
      });
    });
  }
}

/** A resolver with fixed tables, for tests and for `-n`-only paths. */
export class StaticResolver implements NameResolver {
  readonly #hosts: Map<string, string>;
  readonly #addrs: Map<string, string>;
  readonly #services: ServicesDb;

  constructor(
    opts: {
      hosts?: Record<string, string>;
      names?: Record<string, string>;
      services?: string;
    } = {},
  ) {
    this.#hosts = new Map(Object.entries(opts.hosts ?? {}));
    this.#addrs = new Map(Object.entries(opts.names ?? {}));
    this.#services = new ServicesDb(opts.services ?? '');
  }

  async hostToAddr4(name: string): Promise<string | null> {
    return this.#hosts.get(name) ?? null;
  }

  async addrToHost(_af: number, addr: string): Promise<string | null> {
    return this.#addrs.get(addr) ?? null;
  }

  serviceToPort(name: string, proto: number): number | null {
    return this.#services.port(name, proto);
  }

  portToService(port: number, proto: number): string | null {
    return this.#services.name(port, proto);
  }
}
