/**
 * The packet data plane (`ipvs daemon --dataplane packet`): the engine attached to frame I/O
 * backends, one per interface of the director. It implements the control plane's `Dataplane`
 * interface: everything core accepts is accepted (DR, TUN, fwmark services need raw packets and
 * are what this plane is for); after each command the engine re-reads what it derives from the
 * configuration, and new VIPs are announced with gratuitous ARP when `announce` is on. Opening
 * the interfaces is the backends' business (AF_PACKET wiring is another issue): give each
 * interface a FrameIO, or an `open()` that returns one.
 */
import { parseIp } from '../../core/addr.js';
import type { Ipvs } from '../../core/ipvs.js';
import type { Dataplane } from '../../ctl/dataplane.js';
import type { Command } from '../../ctl/types.js';
import type { AppInfo } from '../../metrics/proc.js';
import type { FrameIO } from '../io/types.js';
import { parseFwmarkRule, type FwmarkRule } from './classifier.js';
import { PacketEngine, type EngineOptions } from './engine.js';
import { PktConfigError } from './errors.js';
import { parseMac, type IfaceSpec, type RouteSpec, type VipSpec } from './net.js';

/** An interface of the plane: its model plus where its frames come from. */
export interface PlaneIface extends IfaceSpec {
  /** Opens the interface's frame I/O at start (when `io` is not given). */
  open?: () => Promise<FrameIO>;
}

/** Options of a packet data plane. */
export interface PacketDataplaneOptions {
  interfaces: PlaneIface[];
  routes?: RouteSpec[];
  /** VIPs owned beyond the service addresses (which are owned automatically). */
  vips?: VipSpec[];
  /** Static neighbours: `{ dev, addr, mac }`. */
  neighbours?: { dev: string; addr: string; mac: string }[];
  /** fwmark classifier rules. */
  fwmarkRules?: FwmarkRule[];
  engine?: EngineOptions;
  /** Engine housekeeping period (neighbour probes), ms. Default 100. */
  tickMs?: number;
  /** Announce VIPs with gratuitous ARP / unsolicited NA at start and when services are added. */
  announce?: boolean;
}

/** The packet data plane. */
export class PacketDataplane implements Dataplane {
  readonly name = 'packet';
  readonly #opts: PacketDataplaneOptions;
  #engine: PacketEngine | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #ios: FrameIO[] = [];

  constructor(opts: PacketDataplaneOptions) {
    if (!opts.interfaces.length)
      throw new PktConfigError('the packet data plane needs at least one interface');
    this.#opts = opts;
  }

  /** The engine (after start). */
  get engine(): PacketEngine {
    if (!this.#engine) throw new PktConfigError('the packet data plane is not started');
    return this.#engine;
  }

  /** The FTP helper's ports (ip_vs_app); none before start. */
  apps(): AppInfo[] {
    return this.#engine ? this.#engine.ftp.apps() : [];
  }

  async start(ipvs: Ipvs): Promise<void> {
    const o = this.#opts;
    const engine = new PacketEngine(ipvs, o.engine);
    for (const spec of o.interfaces) {
      const io = spec.io ?? (spec.open ? await spec.open() : null);
      if (!io) throw new PktConfigError(`interface '${spec.name}' has no frame I/O`);
      const ifc = engine.net.addIface({ ...spec, io });
      this.#ios.push(io);
      io.onFrames((batch) => engine.receive(ifc, batch));
    }
    for (const r of o.routes ?? []) engine.net.addRoute(r);
    for (const v of o.vips ?? []) engine.net.addVip(v);
    for (const n of o.neighbours ?? []) {
      const a = parseIp(n.addr);
      if (!a) throw new PktConfigError(`bad neighbour address '${n.addr}'`);
      engine.neigh.addStatic(engine.net.iface(n.dev), a.af, a.words, parseMac(n.mac));
    }
    if (o.fwmarkRules) engine.classifier.set(o.fwmarkRules);
    if (ipvs.fwmarkRules.length) engine.classifier.set(ipvs.fwmarkRules.map(parseFwmarkRule));
    engine.refresh();
    this.#engine = engine;
    this.#timer = setInterval(() => engine.tick(), o.tickMs ?? 100);
    this.#timer.unref();
    if (o.announce) this.#announceAll();
  }

  /** Everything core accepts, this plane can forward. */
  validate(_cmd: Command, _ipvs: Ipvs): void {}

  apply(cmd: Command, ipvs: Ipvs): void {
    const e = this.#engine;
    if (!e) return;
    if (cmd.cmd === 'setFwmarkRules') e.classifier.set(ipvs.fwmarkRules.map(parseFwmarkRule));
    // VIPs the engine has just come to own are announced: a new service's (claimed on its own,
    // so a restore of thousands of services does not re-read the configuration per line), or
    // all of them when a standby takes over (the backup role stopped, backup_only cleared).
    // Everything else (removals, destinations) the engine re-reads before its next frame.
    let fresh: string[] = [];
    if (cmd.cmd === 'newService') {
      const a = cmd.service.fwmark ? null : parseIp(cmd.service.addr);
      const v = a ? e.claimVip(a.af, a.words) : null;
      if (v !== null) fresh = [v];
    } else if (
      cmd.cmd === 'newDaemon' ||
      cmd.cmd === 'delDaemon' ||
      (cmd.cmd === 'setSysctl' && cmd.name === 'backup_only')
    )
      fresh = e.refresh();
    if (!this.#opts.announce) return;
    for (const v of fresh) {
      const a = parseIp(v);
      if (a) for (const ifc of e.net.ifaces) e.announce(a.words, a.af, ifc.name);
    }
  }

  #announceAll(): void {
    const e = this.engine;
    for (const s of e.ipvs.services.list()) {
      if (s.fwmark || !e.net.isVip(s.af, s.addr)) continue;
      for (const ifc of e.net.ifaces) e.announce(s.addr, s.af, ifc.name);
    }
  }

  async stop(_deadlineMs: number): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const io of this.#ios) {
      io.stop();
      await io.close();
    }
    this.#ios.length = 0;
    this.#engine?.close();
  }
}
