/**
 * The proxy data plane (`ipvs daemon --dataplane proxy`): IPVS's Masq semantics with TCP and UDP
 * sockets, no privileges. It follows the configuration command by command: a TCP or UDP virtual
 * service gets a listener on VIP:port when it is added and loses it when it is deleted (or
 * flushed). `validate` refuses what sockets cannot do (fwmark services, SCTP, port 0, DR/TUN/local
 * destinations, a bad `proxy-protocol` option) with an error naming the packet data plane, and
 * binds the listener of a new service synchronously, so a VIP that cannot be bound refuses the
 * command with the operating system's errno before core changes anything. Connections are
 * scheduled, tracked, counted and expired by core (see ./tcp.ts and ./udp.ts); when IPVS frees an
 * entry whose sockets are still open, they are closed. `stop` stops accepting, lets open
 * connections finish until the deadline, then resets the rest.
 */
import { AF_INET6, formatIp, parseIp } from '../../core/addr.js';
import {
  CONN_F_FWD_MASK,
  DEST_F_OVERLOAD,
  FWD_MASQ,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SVC_F_PERSISTENT,
} from '../../core/constants.js';
import type { Ipvs } from '../../core/ipvs.js';
import type { Service } from '../../core/service.js';
import { MUTATING } from '../../ctl/backend.js';
import type { Dataplane } from '../../ctl/dataplane.js';
import type { Command, ServiceKey, ServiceSpec } from '../../ctl/types.js';
import { BufferPool, type BufferPoolOptions } from './buffers.js';
import { counterMetrics, type PlaneMetric } from '../../metrics/prometheus.js';
import {
  COUNTER_HELP,
  newCounters,
  openFilesLimit,
  ProxyContext,
  type ProxyCounters,
  type ProxyLimits,
} from './context.js';
import {
  ProxyBindError,
  ProxyForwardingError,
  ProxyFwmarkError,
  ProxyOptionError,
  ProxyServiceError,
} from './errors.js';
import {
  bindTcp,
  isFailure,
  listenBound,
  listenTcp,
  probeUdp,
  type StreamHandle,
  type TcpHandle,
} from './sockets.js';
import { acceptTcp, flushNativeCounts, type VipAddress } from './tcp.js';
import { UdpService, isAny } from './udp.js';

/** Options of a proxy data plane. */
export interface ProxyDataplaneOptions extends Partial<ProxyLimits> {
  /** Read-buffer sizes. */
  buffers?: BufferPoolOptions;
  /**
   * Run `ipvs.tick()` every this many ms from the plane itself (for in-process use without a
   * daemon). Default 0: the daemon ticks.
   */
  tickMs?: number;
  /** Period of the plane's own sweep (connect timeouts, idle one-packet sockets), ms (default 250). */
  sweepMs?: number;
  /** Log sink (default: stderr). */
  log?: (msg: string) => void;
}

/** The listening state of one virtual service, as `listeners()` reports it. */
export interface ListenerInfo {
  protocol: 'tcp' | 'udp';
  addr: string;
  port: number;
  /** Port actually bound (differs from `port` only when the service's port is 0 in tests). */
  boundPort: number;
  /** False while clients are refused by the kernel (no destination could take one). */
  accepting: boolean;
}

interface Listener {
  key: string;
  vip: VipAddress;
  protocol: number;
  tcp: TcpHandle | null;
  udp: UdpService | null;
  /**
   * TCP: no destination could take a client, so the socket is bound but not listening: the
   * kernel refuses clients (ECONNREFUSED), as kernel IPVS's port unreachable does. (UDP: the
   * UdpService parks its own socket.)
   */
  parked: boolean;
}

/** `proto|af|addr|port`. */
function keyOf(proto: number, af: number, addr: string, port: number): string {
  return `${proto}|${af}|${addr}|${port}`;
}

/** The proxy data plane. */
export class ProxyDataplane implements Dataplane {
  readonly name = 'proxy';
  readonly #opts: ProxyDataplaneOptions;
  readonly #limits: ProxyLimits;
  readonly #pool: BufferPool;
  readonly #counters = newCounters();
  readonly #log: (msg: string) => void;
  #ctx: ProxyContext | null = null;
  readonly #listeners = new Map<string, Listener>();
  /** Listeners bound by validate() for a service core has not added yet. */
  readonly #pending = new Map<string, Listener>();
  #sweepTimer: NodeJS.Timeout | null = null;
  #tickTimer: NodeJS.Timeout | null = null;
  #prevOnFree: ((h: number) => void) | null = null;
  /** A re-check of the parked listeners is queued (an OVERLOAD bit changed). */
  #parkQueued = false;
  #stopped = false;

  constructor(opts: ProxyDataplaneOptions = {}) {
    this.#opts = opts;
    this.#limits = {
      maxConns: opts.maxConns ?? 65536,
      maxUdpFlows: opts.maxUdpFlows ?? 65536,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
      backlog: opts.backlog ?? 511,
      fdLimit: opts.fdLimit ?? openFilesLimit(),
    };
    this.#pool = new BufferPool(opts.buffers);
    this.#log = opts.log ?? ((m) => process.stderr.write(`ipvs proxy: ${m}\n`));
  }

  /** Counters of refused and failed connections (ipvs-ts extension). */
  get counters(): Readonly<ProxyCounters> {
    return this.#counters;
  }

  /** The counters, open connections and buffers as one log line (the daemon logs it on SIGUSR2). */
  counterLine(): string {
    return `proxy counters ${JSON.stringify({ open: this.open, buffers: this.buffers, ...this.#counters })}`;
  }

  /**
   * For `/metrics`: every counter as `ipvs_proxy_<name>_total` (refusedNoDest →
   * ipvs_proxy_refused_no_dest_total), and the open connections, flows and read buffers.
   */
  metrics(): PlaneMetric[] {
    const out = counterMetrics(
      'ipvs_proxy_',
      this.#counters,
      (k) => `Proxy data plane: ${COUNTER_HELP[k as keyof ProxyCounters]}`,
    );
    const { tcp, udp } = this.open;
    const { small, large } = this.buffers;
    const gauge = (name: string, help: string, value: number): PlaneMetric => ({
      name,
      help: `Proxy data plane: ${help}`,
      type: 'gauge',
      value,
    });
    out.push(
      gauge('ipvs_proxy_open_connections', 'TCP connections open now.', tcp),
      gauge('ipvs_proxy_open_udp_flows', 'UDP flows open now.', udp),
      gauge('ipvs_proxy_read_buffers', 'read buffers in use.', small + large),
    );
    return out;
  }

  /** Open proxied TCP connections and UDP flows. */
  get open(): { tcp: number; udp: number } {
    return { tcp: this.#ctx?.liveTcp ?? 0, udp: this.#ctx?.liveUdp ?? 0 };
  }

  /** Read buffers in use (for memory accounting). */
  get buffers(): { small: number; large: number } {
    return { small: this.#pool.inUseSmall, large: this.#pool.inUseLarge };
  }

  /** Every listening virtual service. */
  listeners(): ListenerInfo[] {
    const out: ListenerInfo[] = [];
    for (const l of this.#listeners.values()) {
      let bound = l.vip.port;
      if (l.tcp) {
        const o: { port?: number } = {};
        l.tcp.getsockname(o);
        bound = o.port ?? bound;
      }
      out.push({
        protocol: l.protocol === IPPROTO_TCP ? 'tcp' : 'udp',
        addr: l.vip.addr,
        port: l.vip.port,
        boundPort: bound,
        accepting: l.udp && l.udp !== PENDING_UDP ? !l.udp.parked : !l.parked,
      });
    }
    return out;
  }

  // ---- Dataplane ------------------------------------------------------------------------------

  async start(ipvs: Ipvs): Promise<void> {
    this.#attach(ipvs);
    // services restored before start (state file, rules) whose listener is missing
    const failures: string[] = [];
    for (const svc of ipvs.services.list()) {
      if (!servable(svc)) continue;
      const key = keyOf(svc.protocol, svc.af, formatIp(svc.af, svc.addr), svc.port);
      if (this.#listeners.has(key)) continue;
      const r = this.#bind(svc.protocol, svc.af, formatIp(svc.af, svc.addr), svc.port);
      if (r instanceof ProxyBindError) failures.push(r.message);
      else this.#listeners.set(key, r);
    }
    if (failures.length) {
      for (const l of this.#listeners.values()) this.#closeListener(l);
      this.#listeners.clear();
      throw new ProxyBindError(failures.join('; '));
    }
    for (const l of this.#listeners.values()) if (l.udp === PENDING_UDP) this.#startUdp(l);
    this.#park(ipvs);
  }

  validate(cmd: Command, ipvs: Ipvs): void {
    // counts the native relay holds go in before the command reads or changes them
    flushNativeCounts();
    switch (cmd.cmd) {
      case 'newService':
      case 'setService':
        checkService(cmd.service);
        if (cmd.cmd === 'newService') this.#prebind(cmd.service, ipvs);
        break;
      case 'newDest':
      case 'setDest': {
        const fwd = cmd.dest.fwd & CONN_F_FWD_MASK;
        if (fwd !== FWD_MASQ) {
          const name =
            fwd === 1
              ? 'local'
              : fwd === 2
                ? 'tunnel'
                : fwd === 3
                  ? 'direct routing'
                  : `method ${fwd}`;
          throw new ProxyForwardingError(
            `destination ${cmd.dest.addr.includes(':') ? `[${cmd.dest.addr}]` : cmd.dest.addr}:${cmd.dest.port}: ${name} forwarding needs the packet data plane ` +
              '(ipvs daemon --dataplane packet); the proxy data plane forwards only with masquerading (-m)',
          );
        }
        break;
      }
      default:
        break;
    }
  }

  apply(cmd: Command, ipvs: Ipvs): void {
    this.#attach(ipvs);
    switch (cmd.cmd) {
      case 'newService':
        this.#adopt(cmd.service, ipvs);
        break;
      case 'delService':
      case 'flush':
        this.#reconcile(ipvs);
        this.#stallNative();
        break;
      case 'delDest':
        this.#stallNative();
        break;
      case 'newDest':
        // a destination added back comes from the trash with its connections (ip_vs_trash_get_dest)
        if (this.#ctx) for (const c of this.#ctx.tcpStalled) c.resume();
        break;
      case 'setSysctl':
        // turned on after a deletion: ip_vs_in_hook expires such a connection at its client's
        // next packet (the sweep at deletion ran only if it was on then)
        if (cmd.name === 'expire_nodest_conn' && cmd.value !== 0 && this.#ctx)
          for (const c of [...this.#ctx.tcpStalled]) c.watchClient();
        break;
      default:
        break;
    }
    // a command on one service can change only that service's listener (-R of 5,000 services
    // and 20,000 real servers walked every listener per line: 11 s)
    if (!MUTATING.has(cmd.cmd)) return;
    if ('service' in cmd && cmd.service !== undefined) {
      if (cmd.cmd !== 'delService') this.#park(ipvs, this.#listenerOf(cmd.service));
      return;
    }
    this.#park(ipvs);
  }

  /** The listener of a service, if it has one (fwmark services and unknown keys have none). */
  #listenerOf(k: ServiceKey): Listener | null {
    if (k.fwmark) return null;
    const a = parseIp(k.addr);
    if (!a || a.af !== k.af) return null;
    return this.#listeners.get(keyOf(k.protocol, k.af, formatIp(a.af, a.words), k.port)) ?? null;
  }

  /**
   * Parks the TCP listeners of services no destination could take a client for, and resumes
   * those that have one again. Kernel IPVS answers such a client's SYN with ICMP port
   * unreachable (connect fails with ECONNREFUSED); a listener would accept the client first
   * and could only reset it. UDP services park their socket once their last flow is gone. A
   * service is refused when it has no destination, or only destinations of weight 0 (every
   * scheduler skips those) and no persistence (a persistent client's template may still name a
   * quiescent one).
   */
  #park(ipvs: Ipvs, only?: Listener | null): void {
    if (this.#stopped || only === null) return;
    for (const l of only ? [only] : this.#listeners.values()) {
      const svc = ipvs.services.findExact(l.vip.af, l.protocol, l.vip.words, l.vip.port);
      const want = svc === null || takesClients(svc);
      if (l.protocol !== IPPROTO_TCP) {
        if (l.udp && l.udp !== PENDING_UDP) l.udp.refuse(!want);
        continue;
      }
      if (want === !l.parked) continue;
      if (want) this.#resume(l);
      else {
        // the listening socket goes first (a bind beside a listener on the port would fail)
        const { af, addr, port } = l.vip;
        this.#closeListener(l);
        const h = bindTcp(af, addr, port);
        l.parked = true;
        if (!isFailure(h)) l.tcp = h;
      }
    }
  }

  /** Listens again on a parked listener's socket (or a new one); says so when it cannot. */
  #resume(l: Listener): void {
    const { af, addr, port } = l.vip;
    if (l.tcp && listenBound(l.tcp, this.#limits.backlog) !== 0) this.#closeListener(l);
    if (!l.tcp) {
      const h = listenTcp(af, addr, port, this.#limits.backlog);
      if (isFailure(h)) {
        this.#counters.listenerErrors++;
        this.#log(`TCP ${af === AF_INET6 ? `[${addr}]` : addr}:${port}: ${h.message}`);
        return;
      }
      l.tcp = h;
    }
    l.parked = false;
    l.tcp.onconnection = (err, client) => this.#onConnection(l, err, client);
  }

  /**
   * Connections in the native relay whose destination was just deleted stop forwarding now, as
   * those relayed in JavaScript do at their next chunk (before the relay could move another one).
   */
  #stallNative(): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    for (const c of ctx.tcpOpen) if (c.native) c.checkDest();
  }

  async stop(deadlineMs = 5000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const ctx = this.#ctx;
    for (const l of this.#pending.values()) this.#closeListener(l);
    this.#pending.clear();
    for (const l of this.#listeners.values()) if (l.tcp) this.#closeListener(l);
    if (ctx) {
      ctx.stopping = true;
      if (ctx.liveTcp > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, Math.max(0, deadlineMs));
          function done(): void {
            clearTimeout(t);
            ctx!.onIdle = null;
            resolve();
          }
          ctx.onIdle = () => {
            if (ctx.liveTcp === 0) done();
          };
        });
      }
      if (ctx.liveTcp > 0) {
        this.#log(
          `stopping: resetting ${ctx.liveTcp} connections still open after ${deadlineMs} ms`,
        );
        for (const c of [...ctx.tcpOpen]) c.abort();
        // resets close at once; wait only for a connection that is still closing
        if (ctx.liveTcp > 0)
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 1000);
            ctx.onIdle = () => {
              if (ctx.liveTcp === 0) {
                clearTimeout(t);
                resolve();
              }
            };
          });
        ctx.onIdle = null;
      }
    }
    for (const l of this.#listeners.values()) this.#closeListener(l);
    this.#listeners.clear();
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    if (this.#tickTimer) clearInterval(this.#tickTimer);
    this.#sweepTimer = this.#tickTimer = null;
    if (ctx) {
      const ops = ctx.ipvs.ops;
      ops.onFree = this.#prevOnFree;
      ops.onOverload = null;
      ctx.owners.length = 0;
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Binds this plane to `ipvs` (once): the entry-free hook and the sweep timer. */
  #attach(ipvs: Ipvs): ProxyContext {
    if (this.#ctx) {
      if (this.#ctx.ipvs !== ipvs) throw new Error('a proxy data plane serves one Ipvs instance');
      return this.#ctx;
    }
    const ctx = new ProxyContext(ipvs, this.#pool, this.#limits, this.#counters, this.#log);
    this.#ctx = ctx;
    ctx.fixedFds = () => this.#listeners.size + this.#pending.size;
    const prev = ipvs.ops.onFree;
    this.#prevOnFree = prev;
    ipvs.ops.onFree = (h) => {
      const o = ctx.owners[h];
      if (o) {
        ctx.owners[h] = undefined;
        o.expired();
      }
      prev?.(h);
    };
    // a TCP service whose every destination is OVERLOADed refuses clients until one is not
    ipvs.ops.onOverload = () => {
      if (this.#parkQueued) return;
      this.#parkQueued = true;
      queueMicrotask(() => {
        this.#parkQueued = false;
        this.#park(ipvs);
      });
    };
    const sweepMs = this.#opts.sweepMs ?? 250;
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepMs);
    this.#sweepTimer.unref();
    if (this.#opts.tickMs) {
      this.#tickTimer = setInterval(() => ipvs.tick(), this.#opts.tickMs);
      this.#tickTimer.unref();
    }
    return ctx;
  }

  #sweep(): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    const now = ctx.ipvs.now();
    const limit = this.#limits.connectTimeoutMs;
    for (const c of ctx.tcpOpen) {
      if (c.connectStart >= 0 && now - c.connectStart >= limit) c.connectTimedOut();
    }
    for (const l of this.#listeners.values()) l.udp?.sweep(now);
  }

  /** Binds the listener of a service about to be added, so a bind failure refuses the command. */
  #prebind(spec: ServiceSpec, ipvs: Ipvs): void {
    let exists: boolean;
    try {
      exists = ipvs.findService(spec) !== null;
    } catch {
      return; // core refuses the key itself
    }
    if (exists) return; // core answers "Service already exists"
    const a = parseIp(spec.addr);
    if (!a || a.af !== spec.af) return;
    const addr = formatIp(a.af, a.words);
    const key = keyOf(spec.protocol, spec.af, addr, spec.port);
    if (this.#listeners.has(key) || this.#pending.has(key)) return;
    const r = this.#bind(spec.protocol, spec.af, addr, spec.port);
    if (r instanceof ProxyBindError) throw r;
    this.#pending.set(key, r);
    // core may still refuse the command: release the listener unless apply() adopted it
    setImmediate(() => {
      if (this.#pending.get(key) === r) {
        this.#pending.delete(key);
        this.#closeListener(r);
      }
    });
  }

  /** After core added a service: take the pre-bound listener, or bind now (undoing on failure). */
  #adopt(spec: ServiceSpec, ipvs: Ipvs): void {
    const svc = ipvs.findService(spec);
    if (!svc || !servable(svc)) return;
    const addr = formatIp(svc.af, svc.addr);
    const key = keyOf(svc.protocol, svc.af, addr, svc.port);
    if (this.#listeners.has(key)) return;
    let l: Listener | ProxyBindError | undefined = this.#pending.get(key);
    this.#pending.delete(key);
    if (!l) {
      l = this.#bind(svc.protocol, svc.af, addr, svc.port);
      if (l instanceof ProxyBindError) {
        const k: ServiceKey = {
          af: spec.af,
          protocol: spec.protocol,
          addr: spec.addr,
          port: spec.port,
          fwmark: 0,
        };
        ipvs.delService(k); // nothing half-applied
        throw l;
      }
    }
    if (l.udp) this.#startUdp(l);
    this.#listeners.set(key, l);
  }

  /** Closes listeners whose service is gone. */
  #reconcile(ipvs: Ipvs): void {
    for (const [key, l] of this.#listeners) {
      const svc = ipvs.services.findExact(l.vip.af, l.protocol, l.vip.words, l.vip.port);
      if (!svc) {
        this.#closeListener(l);
        this.#listeners.delete(key);
      }
    }
  }

  /** Binds a listener synchronously (UDP: probes synchronously; the socket binds in #startUdp). */
  #bind(proto: number, af: number, addr: string, port: number): Listener | ProxyBindError {
    const a = parseIp(addr)!;
    const vip: VipAddress = { af, addr, words: Uint32Array.from(a.words), port };
    const key = keyOf(proto, af, addr, port);
    // a wildcard VIP and an address of its family on one port cannot both be served; the host
    // lets a bound but parked (not listening) TCP socket share the port, so it is checked here
    // and refused whichever came first
    for (const m of [this.#listeners, this.#pending])
      for (const other of m.values()) {
        const o = other.vip;
        if (other.protocol !== proto || o.af !== af || o.port !== port || o.addr === addr) continue;
        if (!isAny(addr) && !isAny(o.addr)) continue;
        const at = (x: string) => (af === AF_INET6 ? `[${x}]:${port}` : `${x}:${port}`);
        return new ProxyBindError(
          `cannot listen on ${at(addr)}: address already in use by the service on ${at(o.addr)} (EADDRINUSE)`,
          'EADDRINUSE',
        );
      }
    if (proto === IPPROTO_TCP) {
      const h = listenTcp(af, addr, port, this.#limits.backlog);
      if (isFailure(h)) return new ProxyBindError(h.message, h.errno);
      const l: Listener = { key, vip, protocol: proto, tcp: h, udp: null, parked: false };
      h.onconnection = (err, client) => this.#onConnection(l, err, client);
      return l;
    }
    const f = probeUdp(af, addr, port);
    if (f) return new ProxyBindError(f.message, f.errno);
    // the UdpService is created when the listener is adopted (placeholder until then)
    return { key, vip, protocol: proto, tcp: null, udp: PENDING_UDP, parked: false };
  }

  #startUdp(l: Listener): void {
    const ctx = this.#ctx!;
    l.udp = new UdpService(ctx, l.vip, (e) => {
      ctx.counters.listenerErrors++;
      this.#log(
        `UDP ${l.vip.af === AF_INET6 ? `[${l.vip.addr}]` : l.vip.addr}:${l.vip.port}: ${e.message}`,
      );
    });
  }

  #onConnection(l: Listener, err: number, client: StreamHandle | undefined): void {
    const ctx = this.#ctx;
    if (err || !client || !ctx) {
      if (ctx) ctx.counters.acceptErrors++;
      if (ctx && err)
        ctx.ipvs.warn(
          'proxy-accept',
          `proxy: accept failed on ${l.vip.addr}:${l.vip.port} (${err})`,
        );
      client?.close();
      return;
    }
    acceptTcp(ctx, l.vip, client);
  }

  #closeListener(l: Listener): void {
    if (l.tcp) {
      l.tcp.onconnection = null;
      l.tcp.close();
      l.tcp = null;
    }
    if (l.udp && l.udp !== PENDING_UDP) l.udp.close();
    l.udp = null;
  }
}

/** Marks a UDP listener whose socket is not created yet. */
const PENDING_UDP = {} as UdpService;

/**
 * Whether some destination could take a new client of `svc` (see `#park`): one of weight above 0
 * that is not OVERLOADed (every scheduler skips the others; ovf's own activeconns < weight rule
 * is left to the scheduler).
 */
function takesClients(svc: Service): boolean {
  if (svc.flags & SVC_F_PERSISTENT) return svc.dests.length > 0;
  for (const d of svc.dests) if (d.weight > 0 && !(d.flags & DEST_F_OVERLOAD)) return true;
  return false;
}

/** A service the proxy can listen for (validate() refuses the others). */
function servable(svc: Service): boolean {
  return (
    !svc.fwmark && svc.port !== 0 && (svc.protocol === IPPROTO_TCP || svc.protocol === IPPROTO_UDP)
  );
}

/** Refuses services the proxy cannot serve, and bad `proxy-protocol` values. */
function checkService(spec: ServiceSpec): void {
  if (spec.fwmark) {
    throw new ProxyFwmarkError(
      `fwmark service ${spec.fwmark}: firewall marks exist only on raw packets; use the packet data plane (ipvs daemon --dataplane packet)`,
    );
  }
  if (spec.protocol !== IPPROTO_TCP && spec.protocol !== IPPROTO_UDP) {
    throw new ProxyServiceError(
      `protocol ${spec.protocol}: the proxy data plane serves TCP and UDP; use the packet data plane (ipvs daemon --dataplane packet)`,
    );
  }
  if (spec.port === 0) {
    throw new ProxyServiceError(
      'port 0 (all ports) services need the packet data plane (ipvs daemon --dataplane packet)',
    );
  }
  // the value itself (v1 / v2 / none) is checked for every data plane by ctl/validate.ts
  if (spec.ext?.['proxy-protocol'] === 'v1' && spec.protocol === IPPROTO_UDP)
    throw new ProxyOptionError('--proxy-protocol v1 carries only TCP; use v2 for UDP services');
}
