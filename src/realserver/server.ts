/**
 * A running real-server decapsulator: an AF_PACKET socket on the interface the tunnels arrive on, a
 * TUN device (default `ipvs-rs0`) the inner packets go to, a `Decapsulator` between them, and the
 * host checks of host.ts. For GUE it also binds the GUE port with a UDP socket that discards what it
 * gets, so the kernel does not answer every tunnelled datagram with ICMP port unreachable.
 */
import { createSocket, type Socket } from 'node:dgram';
import {
  ARPHRD,
  IoNotRootError,
  checkPacketPrerequisites,
  checkTunPrerequisites,
  coalescingOffloads,
  openAfPacket,
  openTun,
  type AfPacketIO,
  type TunIO,
} from '../dataplane/io/index.js';
import { formatIp, type IpAddr } from '../core/addr.js';
import { Decapsulator, validateDecapOptions, type DecapCounters, type DecapType } from './decap.js';
import { checkHost, interfaceAddresses, runIp, type HostReport } from './host.js';

/** Default name of the TUN device. */
export const DEFAULT_TUN_NAME = 'ipvs-rs0';

/** How to run a real server. */
export interface RealServerOptions {
  /** Tunnel types to decapsulate. */
  types: readonly DecapType[];
  /** Interface the encapsulated frames arrive on. */
  iface: string;
  /** UDP port of GUE (required with 'gue'). */
  guePort?: number;
  /** TUN device name (default DEFAULT_TUN_NAME). */
  tun?: string;
  /** VIPs to check (and, with setupHost, add to lo). */
  vips?: readonly IpAddr[];
  /** Apply host-wide sysctls and add missing VIPs to lo. */
  setupHost?: boolean;
  /** Bind the GUE port so the kernel sends no port unreachable (default true). */
  gueSink?: boolean;
  /** How often the interface's addresses are read again, in ms (default 2000). */
  addressRefreshMs?: number;
  /** Log sink (one line per call, no newline). */
  log?: (msg: string) => void;
}

/** A started real server. */
export class RealServer {
  readonly decap: Decapsulator;
  readonly rx: AfPacketIO;
  readonly tun: TunIO;
  /** What the host checks changed and advised at start. */
  readonly host: HostReport;
  readonly #sinks: Socket[];
  readonly #timer: NodeJS.Timeout;
  readonly #log: (msg: string) => void;
  #stopped = false;

  private constructor(
    decap: Decapsulator,
    rx: AfPacketIO,
    tun: TunIO,
    host: HostReport,
    sinks: Socket[],
    timer: NodeJS.Timeout,
    log: (msg: string) => void,
  ) {
    this.decap = decap;
    this.rx = rx;
    this.tun = tun;
    this.host = host;
    this.#sinks = sinks;
    this.#timer = timer;
    this.#log = log;
  }

  /**
   * Checks prerequisites, creates and brings up the TUN device, checks the host and starts
   * receiving. Throws the coded errors of the frame-I/O layer: IPVS_ERR_IO_NATIVE_MISSING (addon
   * not built), IPVS_ERR_IO_NOT_ROOT (no CAP_NET_RAW / CAP_NET_ADMIN), IPVS_ERR_IO_NO_INTERFACE,
   * IPVS_ERR_IO_SYSCALL (TUN device busy, `ip` failed).
   */
  static async start(o: RealServerOptions): Promise<RealServer> {
    const log = o.log ?? (() => {});
    const tunName = o.tun ?? DEFAULT_TUN_NAME;
    let info: ReturnType<typeof checkPacketPrerequisites>;
    let tun: TunIO;
    try {
      checkTunPrerequisites();
      info = checkPacketPrerequisites(o.iface);
      validateDecapOptions({ types: o.types, guePort: o.guePort });
      tun = openTun({ name: tunName });
    } catch (e) {
      throw bothCapabilities(e);
    }
    let rx: AfPacketIO | undefined;
    const sinks: Socket[] = [];
    try {
      runIp(['link', 'set', 'dev', tun.name, 'up']);
      const host = checkHost({
        iface: o.iface,
        tun: tun.name,
        vips: o.vips ?? [],
        apply: o.setupHost === true,
      });
      for (const a of host.applied) log(`set ${a}`);
      for (const a of host.advice) log(`host setup needed: ${a}`);
      const addrs = interfaceAddresses(o.iface);
      if (addrs.length === 0)
        log(`warning: ${o.iface} has no addresses yet; nothing is decapsulated until it has one`);
      const merged = coalescingOffloads(info);
      if (merged)
        log(
          `warning: ${o.iface} has ${merged.names} on: tunnelled TCP segments may arrive merged ` +
            `beyond the MTU and are dropped; turn it off: ${merged.fix}`,
        );
      const decap = new Decapsulator(tun, {
        types: o.types,
        guePort: o.guePort,
        addresses: addrs,
        linkType: info.hwType === ARPHRD.NONE ? 'ip' : 'ethernet',
      });
      if (o.types.includes('gue') && o.gueSink !== false && o.guePort !== undefined) {
        for (const type of ['udp4', 'udp6'] as const) {
          const s = await bindSink(type, o.guePort).catch((e: Error) => {
            log(
              `note: cannot bind UDP ${type === 'udp4' ? '' : '[::]'}:${o.guePort} (${e.message}); the kernel may answer GUE with port unreachable`,
            );
            return undefined;
          });
          if (s) sinks.push(s);
        }
      }
      rx = openAfPacket(o.iface);
      decap.attach(rx);
      let known = addrs.map((a) => formatIp(a.af, a.words)).join(',');
      let hinted = -1;
      const timer = setInterval(() => {
        const now = interfaceAddresses(o.iface);
        const text = now.map((a) => formatIp(a.af, a.words)).join(',');
        if (text !== known) {
          known = text;
          decap.setAddresses(now);
          log(`${o.iface} addresses now: ${text || '(none)'}`);
        }
        if (decap.otherPortSeen >= 0 && decap.otherPortSeen !== hinted) {
          hinted = decap.otherPortSeen;
          log(
            `GUE-looking datagrams arrive on UDP port ${hinted}, not --gue-port ${o.guePort ?? '(none)'}: check the director's --tun-port`,
          );
        }
      }, o.addressRefreshMs ?? 2000);
      timer.unref();
      log(
        `decapsulating ${o.types.join(', ')}${o.types.includes('gue') ? ` (GUE on UDP port ${o.guePort})` : ''} ` +
          `for ${known || '(no addresses)'} on ${o.iface} into ${tun.name}`,
      );
      return new RealServer(decap, rx, tun, host, sinks, timer, log);
    } catch (e) {
      for (const s of sinks) s.close();
      if (rx) await rx.close();
      await tun.close();
      throw e;
    }
  }

  /** Frames by outcome and the inner bytes handed to the TUN device. */
  counters(): DecapCounters {
    return this.decap.counters();
  }

  /** Stops receiving, closes the sockets and deletes the TUN device. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const s of this.#sinks) s.close();
    await this.rx.close();
    await this.tun.close();
    this.#log(`stopped; ${this.tun.name} deleted`);
  }
}

/**
 * A missing privilege names both capabilities the real server needs, so granting the one a first
 * attempt asked for is not followed by a second refusal for the other.
 */
function bothCapabilities(e: unknown): unknown {
  if (!(e instanceof IoNotRootError)) return e;
  const step = e.message.split(': permission denied')[0] ?? '';
  return new IoNotRootError(
    `${step}: ipvs realserver needs CAP_NET_RAW (AF_PACKET socket) and CAP_NET_ADMIN (TUN device, ` +
      'sysctls)',
    'CAP_NET_RAW,CAP_NET_ADMIN',
  );
}

function bindSink(type: 'udp4' | 'udp6', port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type, ipv6Only: type === 'udp6', recvBufferSize: 4096 });
    s.once('error', reject);
    s.on('message', () => {});
    s.bind(port, () => {
      s.off('error', reject);
      s.on('error', () => {});
      s.unref();
      resolve(s);
    });
  });
}
