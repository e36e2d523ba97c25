/**
 * The packet data plane on this host's interfaces (`ipvs daemon --dataplane packet --iface IF …`):
 * prerequisites checked with messages that say what to do, each interface's MAC / MTU /
 * addresses learned from the system (`ip -j addr`), routes from `ip -j route` (plus `--route`),
 * frames through AF_PACKET, and a watchdog that notices an interface going away (link down,
 * deleted) and reopens it when it returns.
 *
 * The host kernel in the director's namespace must not handle the same packets: the VIPs are not
 * the kernel's addresses (the engine answers ARP for them; the kernel, owning no such address,
 * drops what it sees addressed to them), and IP forwarding is off (otherwise the kernel would
 * forward the real servers' NAT replies un-NATed, and any transit frame a second time). Both are
 * checked: forwarding at start, the VIP of every virtual service when it is added.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { formatIp, parseIp } from '../../core/addr.js';
import type { Ipvs } from '../../core/ipvs.js';
import type { Dataplane } from '../../ctl/dataplane.js';
import type { Command } from '../../ctl/types.js';
import type { AppInfo } from '../../metrics/proc.js';
import {
  counterMetrics,
  escapeLabelValue,
  snakeCase,
  type PlaneMetric,
} from '../../metrics/prometheus.js';
import { MALFORMED_REASON } from '../../packet/constants.js';
import { REASON_NAMES } from './counters.js';
import { IPPROTO } from '../../packet/constants.js';
import { l4Checksum, l4ChecksumFieldOffset } from '../../packet/checksum.js';
import { decodeEthernet } from '../../packet/decode.js';
import { forwardingView } from './ctx.js';
import { openAfPacket, type AfPacketIO } from '../io/af-packet.js';
import { IoNoInterfaceError } from '../io/errors.js';
import {
  checkPacketPrerequisites,
  coalescingOffloads,
  interfaceInfo,
  type InterfaceInfo,
} from '../io/iface.js';
import {
  FrameBatch,
  TP_STATUS,
  newStats,
  type FrameHandler,
  type FrameIO,
  type IoStats,
} from '../io/types.js';
import { PktConfigError } from './errors.js';
import { IngressDrop } from './ingress-drop.js';
import type { RouteSpec } from './net.js';
import { PacketDataplane, type PlaneIface } from './plane.js';

/** What the daemon passes to the packet plane. */
export interface HostPlaneArgs {
  /** `--iface` values, in order. */
  ifaces: readonly string[];
  /** `--route` values: `DST [via GW] dev IF [mtu N] [src ADDR]`. */
  routes?: readonly string[];
  log?: (msg: string) => void;
  /** Watchdog period, ms (default 500). */
  watchMs?: number;
  /**
   * Drop the host kernel's copy of forwarded frames at each interface's ingress hook
   * (./ingress-drop.ts; default true, `--no-ingress-drop` sets false).
   */
  ingressDrop?: boolean;
}

/**
 * IP forwarding is on in the director's namespace: the kernel would forward the same packets.
 * (Code IPVS_ERR_PKT_CONFIG; the message names the sysctl and the fix.)
 */
export class PktHostForwardingError extends PktConfigError {
  constructor(keys: string[]) {
    super(
      `IP forwarding is enabled in this network namespace (${keys.map((k) => `${k} = 1`).join(', ')}): ` +
        'the kernel would forward the packets the packet data plane forwards a second time ' +
        "(the real servers' NAT replies would leave un-NATed). Turn it off: " +
        keys.map((k) => `\`sysctl -w ${k}=0\``).join(' and '),
    );
    this.name = 'PktHostForwardingError';
  }
}

/**
 * A VIP is one of the host kernel's own addresses: the kernel would answer its packets too.
 * (Code IPVS_ERR_PKT_CONFIG.)
 */
export class PktHostVipError extends PktConfigError {
  constructor(addr: string, dev: string) {
    super(
      `virtual address ${addr} is an address of this host (on ${dev}): the kernel would answer ` +
        'the same packets (TCP resets). The packet data plane owns its VIPs itself; remove it: ' +
        `\`ip addr del ${addr}/${addr.includes(':') ? 128 : 32} dev ${dev}\``,
    );
    this.name = 'PktHostVipError';
  }
}

interface IpAddrJson {
  ifname?: string;
  address?: string;
  mtu?: number;
  addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string }[];
}

interface IpRouteJson {
  dst?: string;
  gateway?: string;
  via?: { family?: string; host?: string };
  dev?: string;
  protocol?: string;
  type?: string;
  prefsrc?: string;
  metrics?: { mtu?: number }[];
}

function ipJson<T>(args: string[]): T[] {
  const out = execFileSync('ip', ['-j', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const v = JSON.parse(out.trim() || '[]') as T[];
  return Array.isArray(v) ? v : [];
}

/**
 * Addresses of `dev` with prefix length, as `ip -j addr show dev IF` lists them, and apart its
 * first IPv6 link-local address (the source of its neighbour solicitations).
 */
export function learnAddresses(dev: string): { addrs: string[]; linkLocal?: string } {
  const addrs: string[] = [];
  let linkLocal: string | undefined;
  for (const l of ipJson<IpAddrJson>(['addr', 'show', 'dev', dev]))
    for (const a of l.addr_info ?? []) {
      if (!a.local || a.prefixlen === undefined) continue;
      if (a.family === 'inet6' && a.scope === 'link') {
        linkLocal ??= a.local;
        continue;
      }
      if (a.family !== 'inet' && a.family !== 'inet6') continue;
      addrs.push(`${a.local}/${a.prefixlen}`);
    }
  return linkLocal === undefined ? { addrs } : { addrs, linkLocal };
}

/** Every address of the host (all interfaces) with its device. */
function hostAddresses(): { addr: string; dev: string }[] {
  const out: { addr: string; dev: string }[] = [];
  for (const l of ipJson<IpAddrJson>(['addr', 'show']))
    for (const a of l.addr_info ?? [])
      if (a.local) out.push({ addr: a.local, dev: l.ifname ?? '?' });
  return out;
}

/**
 * The main table's routes through `devs` that the engine cannot derive itself (connected routes
 * of the interface addresses are derived): gateways, static on-link routes, default routes.
 */
export function learnRoutes(devs: readonly string[]): RouteSpec[] {
  const out: RouteSpec[] = [];
  for (const fam of ['-4', '-6']) {
    for (const r of ipJson<IpRouteJson>([fam, 'route', 'show', 'table', 'main'])) {
      if (!r.dev || !devs.includes(r.dev) || !r.dst) continue;
      if (r.type && r.type !== 'unicast') continue;
      if (r.protocol === 'kernel') continue; // connected (from an address)
      if (fam === '-6' && r.dst.startsWith('fe80')) continue;
      const dst = r.dst === 'default' && fam === '-6' ? '::/0' : r.dst;
      const spec: RouteSpec = { dst, dev: r.dev };
      if (r.gateway) spec.via = r.gateway;
      const mtu = r.metrics?.find((m) => m.mtu !== undefined)?.mtu;
      if (mtu) spec.mtu = mtu;
      if (r.prefsrc) spec.src = r.prefsrc;
      out.push(spec);
    }
  }
  return out;
}

/** Parses a `--route` value: `DST [via GW] dev IF [mtu N] [src ADDR]`. */
export function parseRouteOption(text: string): RouteSpec {
  const w = text.trim().split(/\s+/);
  const dst = w[0];
  if (!dst) throw new PktConfigError(`empty --route`);
  const r: Partial<RouteSpec> & { dst: string } = { dst };
  for (let i = 1; i < w.length; i += 2) {
    const k = w[i]!;
    const v = w[i + 1];
    if (v === undefined) throw new PktConfigError(`--route '${text}': '${k}' needs a value`);
    if (k === 'via') r.via = v;
    else if (k === 'dev') r.dev = v;
    else if (k === 'src') r.src = v;
    else if (k === 'mtu') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 68) throw new PktConfigError(`--route '${text}': bad mtu`);
      r.mtu = n;
    } else
      throw new PktConfigError(
        `--route '${text}': unknown word '${k}' (expected DST [via GW] dev IF [mtu N] [src ADDR])`,
      );
  }
  if (!r.dev) throw new PktConfigError(`--route '${text}': 'dev IF' is required`);
  return r as RouteSpec;
}

function readSysctl(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Throws PktHostForwardingError when this namespace's kernel forwards IPv4 or IPv6. */
export function checkForwarding(): void {
  const on: string[] = [];
  if (readSysctl('/proc/sys/net/ipv4/ip_forward') === '1') on.push('net.ipv4.ip_forward');
  if (readSysctl('/proc/sys/net/ipv6/conf/all/forwarding') === '1')
    on.push('net.ipv6.conf.all.forwarding');
  if (on.length) throw new PktHostForwardingError(on);
}

/**
 * A FrameIO over an interface that may go away: delegates to the AF_PACKET socket while the
 * interface is up; `check()` (the watchdog) closes the socket when the link goes down or the
 * interface disappears (frames sent meanwhile are refused: `txAlloc` returns -1) and opens a new
 * one when it is back. Frames whose transport checksum is still partial (TP_STATUS_CSUMNOTREADY:
 * a local sender on a veth left it to "hardware") get it completed before the engine sees them,
 * as a NIC would have done on the sender's side.
 */
export class WatchedIO implements FrameIO {
  readonly kind = 'af-packet' as const;
  readonly linkType = 'ethernet' as const;
  /** The largest frame the first socket took (a socket opened later must take as much). */
  readonly #firstMax: number;
  #io: AfPacketIO | null;
  #handler: FrameHandler | null = null;
  #running = false;
  #closed = false;
  /** The errno of a send that failed since the watchdog's last turn. */
  #failed: string | null = null;
  /** Counters of the sockets closed so far (the live one's are added in `stats`). */
  readonly #past: IoStats = newStats();
  readonly #v = forwardingView();
  /** Partial checksums completed. */
  csumCompleted = 0;
  /** Times the interface went away / came back. */
  downs = 0;
  ups = 0;
  /** Frames the kernel dropped because the receive ring was full (PACKET_STATISTICS tp_drops). */
  rxRingDrops = 0;

  /** Reads the kernel's ring statistics (they reset on each read); returns the new drops. */
  pollRingDrops(): number {
    if (!this.#io) return 0;
    let d = 0;
    try {
      d = this.#io.kernelStats().drops;
    } catch {
      return 0;
    }
    this.rxRingDrops += d;
    return d;
  }

  constructor(
    readonly name: string,
    public info: InterfaceInfo,
    private readonly opener: () => AfPacketIO,
  ) {
    this.#io = opener();
    this.#firstMax = this.#io.maxFrame;
  }

  /** The largest frame sent now (it follows the interface's MTU). */
  get maxFrame(): number {
    return this.#io ? this.#io.maxFrame : this.#firstMax;
  }

  get up(): boolean {
    return this.#io !== null;
  }

  get stats(): IoStats {
    const s = { ...this.#past };
    const cur = this.#io?.stats;
    if (cur)
      for (const k of Object.keys(s) as (keyof IoStats)[])
        s[k] = k === 'rxMaxBatch' ? Math.max(s[k], cur[k]) : s[k] + cur[k];
    return s;
  }

  get txData(): Buffer {
    return this.#io ? this.#io.txData : EMPTY;
  }

  readonly #onFrames = (b: FrameBatch): void => {
    const v = this.#v;
    for (let i = 0; i < b.count; i++) {
      if ((b.status(i) & TP_STATUS.CSUMNOTREADY) === 0) continue;
      const off = b.offset(i);
      if (decodeEthernet(v, b.data, off, b.length(i)) !== 0 || v.ipVersion === 0) continue;
      if (v.isFragment || (v.protocol !== IPPROTO.TCP && v.protocol !== IPPROTO.UDP)) continue;
      const field = l4ChecksumFieldOffset(v.protocol);
      const len = v.ipEnd - v.l4Offset;
      if (len < field + 2) continue;
      const c = l4Checksum(v.af, v.src, v.dst, v.protocol, b.data, v.l4Offset, len);
      b.data[v.l4Offset + field] = c >>> 8;
      b.data[v.l4Offset + field + 1] = c & 0xff;
      this.csumCompleted++;
    }
    this.#handler?.(b);
  };

  onFrames(handler: FrameHandler): void {
    this.#handler = handler;
    this.start();
  }

  start(): void {
    this.#running = true;
    if (this.#io && this.#handler) this.#io.onFrames(this.#onFrames);
  }

  stop(): void {
    this.#running = false;
    this.#io?.stop();
  }

  txAlloc(length: number): number {
    return this.#io ? this.#io.txAlloc(length) : -1;
  }

  txCommit(): number {
    const io = this.#io;
    if (!io) return 0;
    try {
      return io.txCommit();
    } catch (e) {
      // The interface went away under us (ENETDOWN, ENXIO) before the watchdog noticed: stop
      // using the socket now, close it after the current batch (the caller may be reading its
      // receive ring), and let the watchdog report it and reopen.
      this.#failed = (e as { code?: string }).code ?? (e instanceof Error ? e.message : String(e));
      this.downs++;
      this.#retire(io);
      setImmediate(() => {
        io.stop();
        void io.close();
      });
      return 0;
    }
  }

  send(frame: Uint8Array): boolean {
    return this.#io ? this.#io.send(frame) : false;
  }

  /**
   * The watchdog's turn: returns 'down' or 'up' when the state changed (with the reason), null
   * otherwise.
   */
  check(): { event: 'down' | 'up' | 'changed'; detail: string; newMac?: boolean } | null {
    if (this.#closed) return null;
    let info: InterfaceInfo | null = null;
    try {
      info = interfaceInfo(this.name);
    } catch (e) {
      if (!(e instanceof IoNoInterfaceError)) throw e;
    }
    const ok = info !== null && info.up;
    if (this.#failed !== null) {
      const detail = `sending failed: ${this.#failed}`;
      this.#failed = null;
      const up = ok && !this.#io ? this.#reopen(info!, detail) : null;
      return up ?? { event: 'down', detail };
    }
    if (this.#io && (!ok || info!.index !== this.info.index)) {
      void this.#drop();
      this.downs++;
      const detail = !info
        ? 'it no longer exists'
        : !info.up
          ? 'its link is down'
          : `it was replaced (index ${this.info.index} → ${info.index})`;
      if (ok) return this.#reopen(info!, detail);
      return { event: 'down', detail };
    }
    if (!this.#io && ok) return this.#reopen(info!, null);
    if (this.#io && (info!.mtu !== this.info.mtu || info!.mac !== this.info.mac)) {
      // the kernel's route MTU follows the device's at once (dst_mtu): so does what is sent
      const parts: string[] = [];
      if (info!.mtu !== this.info.mtu) parts.push(`MTU ${this.info.mtu} → ${info!.mtu}`);
      const newMac = info!.mac !== this.info.mac;
      if (newMac) parts.push(`MAC ${this.info.mac} → ${info!.mac}`);
      this.info = info!;
      this.#io.mtuChanged(info!.mtu);
      return { event: 'changed', detail: parts.join(', '), newMac };
    }
    return null;
  }

  #reopen(info: InterfaceInfo, downDetail: string | null): { event: 'up'; detail: string } | null {
    try {
      const io = this.opener();
      if (io.maxFrame < Math.min(this.#firstMax, info.mtu + 18)) {
        void io.close();
        return null;
      }
      this.#io = io;
    } catch {
      return null; // try again next turn
    }
    const macChanged = info.mac !== this.info.mac;
    this.info = info;
    this.ups++;
    if (this.#running && this.#handler) this.#io.onFrames(this.#onFrames);
    const parts = [`index ${info.index}`, `MAC ${info.mac}`];
    if (macChanged) parts.push('MAC changed');
    if (downDetail) parts.unshift(downDetail);
    return { event: 'up', detail: parts.join(', ') };
  }

  /** Stops using `io` (the current socket); its counters join the past ones. */
  #retire(io: AfPacketIO): void {
    if (this.#io === io) this.#io = null;
    const s = io.stats;
    for (const k of Object.keys(s) as (keyof IoStats)[])
      this.#past[k] = k === 'rxMaxBatch' ? Math.max(this.#past[k], s[k]) : this.#past[k] + s[k];
  }

  async #drop(): Promise<void> {
    const io = this.#io;
    if (!io) return;
    this.#retire(io);
    io.stop();
    await io.close();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#drop();
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The packet plane on host interfaces, as the daemon runs it: a PacketDataplane plus the host
 * checks and the interface watchdog.
 */
export class HostPacketDataplane implements Dataplane {
  readonly name = 'packet';
  readonly plane: PacketDataplane;
  readonly ios: WatchedIO[] = [];
  readonly #log: (msg: string) => void;
  readonly #watchMs: number;
  /** The ingress drop of the kernel's copy (null with `ingressDrop: false`). */
  readonly ingress: IngressDrop | null;
  #timer: NodeJS.Timeout | null = null;

  private constructor(plane: PacketDataplane, ios: WatchedIO[], args: HostPlaneArgs) {
    this.plane = plane;
    this.ios = ios;
    this.#log = args.log ?? (() => {});
    this.#watchMs = args.watchMs ?? 500;
    this.ingress = args.ingressDrop === false ? null : new IngressDrop(args.ifaces, this.#log);
  }

  /** Checks the prerequisites and learns the interfaces; throws coded errors that say what to do. */
  static create(args: HostPlaneArgs): HostPacketDataplane {
    if (!args.ifaces.length)
      throw new PktConfigError(
        'the packet data plane needs the interfaces to attach to: --iface IF [--iface IF2 …]',
      );
    const seen = new Set<string>();
    for (const name of args.ifaces) {
      if (seen.has(name)) throw new PktConfigError(`--iface ${name} given twice`);
      seen.add(name);
      checkPacketPrerequisites(name);
    }
    checkForwarding();
    const ios: WatchedIO[] = [];
    const ifaces: PlaneIface[] = [];
    for (const name of args.ifaces) {
      const info = interfaceInfo(name);
      if (info.hwType !== 1)
        throw new PktConfigError(
          `interface ${name} is not an Ethernet interface (ARPHRD ${info.hwType})`,
        );
      if (!info.up)
        throw new PktConfigError(
          `interface ${name} is down: bring it up (\`ip link set ${name} up\`)`,
        );
      const { addrs, linkLocal } = learnAddresses(name);
      ifaces.push({
        name,
        mac: info.mac,
        mtu: info.mtu,
        addrs,
        ...(linkLocal === undefined ? {} : { linkLocal }),
        open: async () => {
          const io = new WatchedIO(name, info, () =>
            openAfPacket(name, { batchSize: 64, budget: 256 }),
          );
          ios.push(io);
          return io;
        },
      });
    }
    const routes = learnRoutes(args.ifaces);
    for (const r of args.routes ?? []) {
      const spec = parseRouteOption(r);
      if (!seen.has(spec.dev))
        throw new PktConfigError(
          `--route '${r}': dev ${spec.dev} is not one of the --iface interfaces`,
        );
      routes.push(spec);
    }
    const plane = new PacketDataplane({ interfaces: ifaces, routes, announce: true });
    return new HostPacketDataplane(plane, ios, args);
  }

  /** The engine (after start). */
  get engine() {
    return this.plane.engine;
  }

  apps(): AppInfo[] {
    return this.plane.apps();
  }

  async start(ipvs: Ipvs): Promise<void> {
    for (const s of ipvs.services.list()) if (!s.fwmark) this.#checkVip(formatIp(s.af, s.addr));
    await this.plane.start(ipvs);
    const e = this.plane.engine;
    for (const io of this.ios) {
      const ifc = e.net.iface(io.name);
      // a frame is the MTU plus the Ethernet header and room for one VLAN tag (see af-packet.ts)
      ifc.mtu = Math.min(io.info.mtu, io.maxFrame - 18);
      const capped =
        ifc.mtu < io.info.mtu ? ` (${ifc.mtu} used: the rings' slots are smaller)` : '';
      this.#log(
        `packet: attached to ${io.name} (index ${io.info.index}, MAC ${io.info.mac}, MTU ${io.info.mtu}${capped}, ` +
          `${ifc.addrs.length} address${ifc.addrs.length === 1 ? '' : 'es'})`,
      );
      const merged = coalescingOffloads(io.info);
      if (merged)
        this.#log(
          `packet: warning: ${io.name} has ${merged.names} on: the kernel hands over ` +
            `TCP segments merged beyond the MTU, which ipvs-ts cannot forward (dropped, counted as ` +
            `rxTruncated); turn it off: ${merged.fix}`,
        );
    }
    await this.ingress?.install(ipvs);
    this.#timer = setInterval(() => this.#watch(), this.#watchMs);
    this.#timer.unref();
  }

  /** The engine's counters and each interface's frame-I/O counters. */
  counters(): { engine: Record<string, number>; ifaces: Record<string, Record<string, number>> } {
    const ifaces: Record<string, Record<string, number>> = {};
    for (const io of this.ios)
      ifaces[io.name] = {
        ...io.stats,
        csumCompleted: io.csumCompleted,
        downs: io.downs,
        ups: io.ups,
        rxRingDrops: io.rxRingDrops,
        up: io.up ? 1 : 0,
      };
    return { engine: this.plane.engine.counters.snapshot(), ifaces };
  }

  /**
   * For `/metrics`: the engine's counters as `ipvs_packet_<name>_total`, every frame's reason as
   * `ipvs_packet_frames_total{reason}` and the decoder's as `ipvs_packet_malformed_total{reason}`,
   * each interface's frame-I/O counters as `ipvs_packet_iface_<name>_total{iface}`.
   */
  metrics(): PlaneMetric[] {
    const c = this.plane.engine.counters;
    const { engine, ifaces } = this.counters();
    // the reasons (names with '-' or ':') come below, with labels
    const plain = Object.fromEntries(Object.entries(engine).filter(([k]) => /^[a-zA-Z]+$/.test(k)));
    const out = counterMetrics(
      'ipvs_packet_',
      plain,
      (k) => `Packet data plane: ${k} (docs/packet-engine.md).`,
    );
    const byReason = (
      name: string,
      help: string,
      names: readonly string[],
      n: Float64Array,
      from: number,
    ) => {
      for (let i = from; i < names.length; i++)
        out.push({
          name,
          help,
          type: 'counter',
          value: n[i]!,
          labels: `reason="${escapeLabelValue(names[i]!)}"`,
        });
    };
    byReason(
      'ipvs_packet_frames_total',
      'Packet data plane: frames by what became of them (docs/packet-engine.md, reasons).',
      REASON_NAMES,
      c.reason,
      0,
    );
    // code 0 is a good frame
    byReason(
      'ipvs_packet_malformed_total',
      'Packet data plane: malformed frames by the decoder reason.',
      MALFORMED_REASON,
      c.malformed,
      1,
    );
    const keys = new Set<string>();
    for (const st of Object.values(ifaces)) for (const k of Object.keys(st)) keys.add(k);
    // two are levels, not counts: whether the interface is there, the largest batch seen
    const gauges = new Set(['up', 'rxMaxBatch']);
    for (const k of keys)
      for (const [name, st] of Object.entries(ifaces))
        out.push({
          name: gauges.has(k)
            ? `ipvs_packet_iface_${snakeCase(k)}`
            : `ipvs_packet_iface_${snakeCase(k)}_total`,
          help: `Packet data plane: ${k} of each interface's frame I/O.`,
          type: gauges.has(k) ? 'gauge' : 'counter',
          value: st[k] ?? 0,
          labels: `iface="${escapeLabelValue(name)}"`,
        });
    return out;
  }

  /** The counters as one log line (the daemon logs it on SIGUSR2). */
  counterLine(): string {
    return `packet counters ${JSON.stringify(this.counters())}`;
  }

  #watch(): void {
    const e = this.plane.engine;
    for (const io of this.ios) {
      // frames the kernel could not put in a full receive ring: nothing else would say so
      const dropped = io.pollRingDrops();
      if (dropped > 0)
        this.#log(
          `packet: ${io.name}: the kernel dropped ${dropped} frames, the receive ring was full (${io.rxRingDrops} so far; rxRingDrops)`,
        );
      let ev;
      try {
        ev = io.check();
      } catch (err) {
        this.#log(
          `packet: checking ${io.name}: ${err instanceof Error ? err.message : String(err)}`,
        );
        continue;
      }
      if (!ev) continue;
      if (ev.event === 'down') {
        this.#log(
          `packet: interface ${io.name} went away (${ev.detail}); its frames are dropped until it returns`,
        );
        continue;
      }
      const ifc = e.net.iface(io.name);
      ifc.mac.set(io.info.macBytes);
      // a frame is the MTU plus the Ethernet header and room for one VLAN tag (see af-packet.ts)
      ifc.mtu = Math.min(io.info.mtu, io.maxFrame - 18);
      e.net.gen++;
      if (ev.event === 'changed') {
        const capped =
          ifc.mtu < io.info.mtu ? ` (${ifc.mtu} used: the rings' slots are smaller)` : '';
        this.#log(`packet: interface ${io.name} changed: ${ev.detail}${capped}`);
        if (!ev.newMac) continue;
      } else {
        this.#log(`packet: interface ${io.name} is back (${ev.detail}); forwarding resumed`);
        // a device made anew has no ingress hook: its table is made again
        void this.ingress?.reattach(io.name);
      }
      // Gratuitous ARP for the interface's own addresses (its MAC may be new) and the VIPs.
      for (const a of ifc.addrs) e.announce(a.words, a.af, io.name);
      for (const s of e.ipvs.services.list())
        if (!s.fwmark && e.net.isVip(s.af, s.addr)) e.announce(s.addr, s.af, io.name);
    }
  }

  /**
   * The host kernel's addresses (normalised text → device), read once per event-loop turn: the
   * commands of one burst (a restore of thousands of services) are checked against one reading
   * instead of running `ip` for each, and a command of a later turn sees the addresses as they are.
   */
  #hostAddrs: Map<string, string> | null = null;

  #checkVip(addr: string): void {
    const v = parseIp(addr);
    if (!v) return; // core refuses it
    if (this.#hostAddrs === null) {
      this.#hostAddrs = new Map();
      for (const a of hostAddresses()) {
        const h = parseIp(a.addr);
        if (h) this.#hostAddrs.set(formatIp(h.af, h.words), a.dev);
      }
      setImmediate(() => {
        this.#hostAddrs = null;
      });
    }
    const dev = this.#hostAddrs.get(formatIp(v.af, v.words));
    if (dev !== undefined) throw new PktHostVipError(addr, dev);
  }

  validate(cmd: Command, ipvs: Ipvs): void {
    if ((cmd.cmd === 'newService' || cmd.cmd === 'setService') && !cmd.service.fwmark) {
      try {
        this.#checkVip(cmd.service.addr);
      } catch (e) {
        // ipvsadm shows only its own message: the reason goes to the log too.
        this.#log(`packet: ${cmd.cmd} refused: ${(e as Error).message}`);
        throw e;
      }
    }
    this.plane.validate(cmd, ipvs);
  }

  apply(cmd: Command, ipvs: Ipvs): void {
    this.plane.apply(cmd, ipvs);
    this.ingress?.changed();
  }

  async stop(deadlineMs: number): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.plane.stop(deadlineMs);
    await this.ingress?.remove();
  }
}
