/**
 * UDP in the proxy data plane (spec §4.2): one socket bound to VIP:port per UDP virtual service,
 * and one flow per client address:port with a socket connected to the real server core chose.
 * Datagrams from the client are counted in, replies are counted out and sent back from the VIP
 * socket, so they come from the VIP address; each re-arms the entry with the UDP timeout, and when
 * IPVS expires the entry the flow's socket is closed. With one-packet scheduling (`-o`) every
 * datagram is scheduled on its own (an entry that lives for that datagram only); the sockets toward
 * each real server are kept per client so replies still find their way back, and are closed after
 * the UDP timeout without traffic. As in IPVS, replies on one-packet flows are not counted.
 *
 * While no destination could take a new client and no flow is left, the VIP socket is connected
 * to itself: it keeps the port, and the host's stack answers every other sender with ICMP port
 * unreachable, as kernel IPVS's ip_vs_leave does (a connected client sees ECONNREFUSED).
 */
import * as dgram from 'node:dgram';
import { AF_INET6, type Af, formatIp, parseIpv4, parseIpv6 } from '../../core/addr.js';
import { NO_CONN } from '../../core/conn.js';
import { CONN_F_ONE_PACKET, DEST_F_AVAILABLE, IPPROTO_UDP } from '../../core/constants.js';
import { DIR_INPUT, DIR_OUTPUT } from '../../proto/index.js';
import { isLocalError, type EntryOwner, type ProxyContext } from './context.js';
import { encodeProxyV2 } from './proxy-protocol.js';
import type { VipAddress } from './tcp.js';

/** Datagrams held per socket while it connects to its real server (more are dropped, counted). */
export const UDP_CONNECT_QUEUE = 64;

/**
 * A dgram socket connected to a real server; datagrams sent while the (asynchronous) connect is
 * in progress wait in a bounded queue.
 */
class Upstream {
  readonly sock: dgram.Socket;
  #queue: Buffer[] | null = [];
  readonly #ctx: ProxyContext;

  constructor(ctx: ProxyContext, af: number, addr: string, port: number) {
    this.#ctx = ctx;
    this.sock = dgram.createSocket(af === AF_INET6 ? 'udp6' : 'udp4');
    this.sock.connect(port, addr, () => {
      const q = this.#queue;
      this.#queue = null;
      if (q) for (const m of q) this.sock.send(m);
    });
  }

  send(msg: Buffer): void {
    const q = this.#queue;
    if (q === null) this.sock.send(msg);
    else if (q.length < UDP_CONNECT_QUEUE) q.push(msg);
    else this.#ctx.counters.udpDropped++;
  }

  close(): void {
    this.#queue = null;
    try {
      this.sock.close();
    } catch {
      // already closed
    }
  }
}

/** One client's flow through a UDP service. */
class UdpFlow implements EntryOwner {
  h: number;
  readonly key: string;
  readonly svc: UdpService;
  readonly caddr: string;
  readonly cport: number;
  readonly backend: Upstream;
  /** PROXY v2 header prepended to every datagram, or null. */
  readonly header: Buffer | null;

  constructor(
    svc: UdpService,
    key: string,
    h: number,
    caddr: string,
    cport: number,
    header: Buffer | null,
  ) {
    const ctx = svc.ctx;
    this.svc = svc;
    this.key = key;
    this.h = h;
    this.caddr = caddr;
    this.cport = cport;
    this.header = header;
    const t = ctx.ipvs.conns;
    const daf = t.daf(h);
    this.backend = new Upstream(ctx, daf, formatIp(daf, t.cold, t.daddrOff(h)), t.dport(h));
    this.backend.sock.on('message', (msg) => this.#reply(msg));
    this.backend.sock.on('error', (e: NodeJS.ErrnoException) => this.#error(e));
    ctx.owners[h] = this;
    ctx.liveUdp++;
  }

  send(msg: Buffer): void {
    const ops = this.svc.ctx.ipvs.ops;
    ops.inStats(this.h, msg.length);
    ops.transition(this.h, DIR_INPUT, 0);
    ops.countIn(this.h);
    ops.put(this.h);
    this.backend.send(this.header ? Buffer.concat([this.header, msg]) : msg);
  }

  /**
   * A datagram from the real server. As IPVS's handle_response does for NAT, it goes back to the
   * client even when the destination was deleted (only the client's datagrams are dropped then),
   * re-arms the entry, and is counted only while the destination is available (outStats).
   */
  #reply(msg: Buffer): void {
    const h = this.h;
    if (h < 0) return;
    const ops = this.svc.ctx.ipvs.ops;
    ops.outStats(h, msg.length);
    ops.transition(h, DIR_OUTPUT, 0);
    ops.put(h);
    this.svc.sendToClient(msg, this.cport, this.caddr);
  }

  /**
   * ICMP port unreachable from the real server (ECONNREFUSED on the connected socket), or a
   * socket this host could not make (EMFILE …: counted as the host's, not the server's).
   */
  #error(e: NodeJS.ErrnoException): void {
    const ctx = this.svc.ctx;
    if (isLocalError(e.code)) {
      ctx.localError(e.code!, 'no UDP socket toward the real server');
      // the flow cannot forward: its entry goes, and the client's next datagram tries again
      if (this.h >= 0) ctx.ipvs.ops.expireNow(this.h);
      return;
    }
    ctx.counters.connectFailures++;
    if (this.h >= 0) {
      const d = ctx.ipvs.ops.dest(this.h);
      if (d) d.connectFailures++;
    }
  }

  expired(): void {
    this.h = -1;
    this.close();
  }

  close(): void {
    const ctx = this.svc.ctx;
    if (this.svc.flows.get(this.key) === this) {
      this.svc.flows.delete(this.key);
      ctx.liveUdp--;
      this.svc.settle();
    }
    this.backend.close();
  }
}

/** One-packet (-o) sockets of one client: one per real server, closed when idle. */
interface OpsClient {
  sockets: Map<number, Upstream>;
  last: number;
}

/** The VIP socket of one UDP virtual service and its flows. */
export class UdpService {
  readonly ctx: ProxyContext;
  readonly vip: VipAddress;
  /** The VIP socket (replaced when it reopens after a park, see `settle`). */
  sock: dgram.Socket;
  readonly #onError: (e: Error) => void;
  readonly flows = new Map<string, UdpFlow>();
  readonly #ops = new Map<string, OpsClient>();
  #closed = false;
  /** No destination could take a new client (the plane says so, see `refuse`). */
  #refusing = false;
  /** The VIP socket's connection to itself: none, under way, or made (clients refused). */
  #park: 'open' | 'connecting' | 'parked' | 'reopening' = 'open';
  /**
   * Connecting to itself failed (a non-local VIP without a route): not retried until
   * `refuse` changes.
   */
  #unparkable = false;

  constructor(ctx: ProxyContext, vip: VipAddress, onError: (e: Error) => void) {
    this.ctx = ctx;
    this.vip = vip;
    this.#onError = onError;
    this.sock = this.#open();
  }

  /**
   * A socket bound to the VIP. IPv6 ones share the address (SO_REUSEADDR) so that a parked one
   * can be replaced without a moment in which the port is free (see `settle`).
   */
  #open(onBound?: () => void): dgram.Socket {
    const vip = this.vip;
    const sock = dgram.createSocket(
      vip.af === AF_INET6 ? { type: 'udp6', ipv6Only: true, reuseAddr: true } : { type: 'udp4' },
    );
    sock.on('message', (msg, rinfo) => this.#incoming(msg, rinfo.address, rinfo.port));
    sock.on('error', (e) => {
      if (this.#closed) return;
      if (sock === this.sock) this.#onError(e);
      else if (this.#park === 'reopening') {
        // the replacement could not bind: the parked socket stays
        this.#park = 'parked';
        sock.close();
        this.#onError(e);
      }
    });
    sock.bind({ address: vip.addr, port: vip.port, exclusive: true }, onBound);
    return sock;
  }

  sendToClient(msg: Buffer, port: number, addr: string): void {
    if (!this.#closed && this.#park === 'open') this.sock.send(msg, port, addr);
  }

  /** True while the host's stack refuses this service's clients. */
  get parked(): boolean {
    return this.#park === 'parked';
  }

  /** Whether no destination could take a new client; the socket parks once no flow is left. */
  refuse(on: boolean): void {
    if (on !== this.#refusing) this.#unparkable = false;
    this.#refusing = on;
    this.settle();
  }

  /** Parks or opens the VIP socket as `refuse` and the flows left ask. */
  settle(): void {
    if (this.#closed) return;
    const want =
      this.#refusing && !this.#unparkable && this.flows.size === 0 && this.#ops.size === 0;
    if (want && this.#park === 'open') {
      this.#park = 'connecting';
      // connected to itself it takes datagrams from itself only: others find no socket on the port
      const self = isAny(this.vip.addr)
        ? this.vip.af === AF_INET6
          ? '::1'
          : '127.0.0.1'
        : this.vip.addr;
      this.sock.connect(this.vip.port, self, (err?: Error) => {
        if (this.#closed) return;
        // no route to its own address (a non-local VIP): it stays open and drops such datagrams
        this.#park = err ? 'open' : 'parked';
        if (err) this.#unparkable = true;
        else this.settle();
      });
    } else if (!want && this.#park === 'parked') {
      if (this.vip.af !== AF_INET6) {
        this.sock.disconnect();
        this.#park = 'open';
        return;
      }
      // IPv6: a new socket, bound beside the parked one before that closes. After disconnect()
      // Linux keeps an IPv6 UDP socket's peer address (__udp_disconnect clears only IPv4's), so
      // the socket would go on taking datagrams from itself only
      this.#park = 'reopening';
      const next = this.#open(() => {
        if (this.#closed || this.#park !== 'reopening') {
          next.close();
          return;
        }
        const old = this.sock;
        this.sock = next;
        this.#park = 'open';
        old.close();
        this.settle();
      });
    }
  }

  #incoming(msg: Buffer, caddr: string, cport: number): void {
    const ctx = this.ctx;
    const ipvs = ctx.ipvs;
    const key = `${caddr}|${cport}`;
    let flow = this.flows.get(key);
    if (flow && flow.h >= 0) {
      const d = ipvs.ops.dest(flow.h);
      if (d && d.flags & DEST_F_AVAILABLE) {
        flow.send(msg);
        return;
      }
      // the flow's destination was deleted (spec §1.6)
      if (!ipvs.sysctl.expire_nodest_conn) {
        ctx.counters.udpDropped++;
        return;
      }
      const h = flow.h;
      flow.expired();
      ipvs.ops.del(h);
      flow = undefined;
    }
    const vip = this.vip;
    const cw = ctx.caddr;
    if (vip.af === AF_INET6) {
      if (!parseIpv6(caddr, cw)) return;
    } else {
      const v = parseIpv4(caddr);
      if (v === null) return;
      cw[0] = v;
      cw[1] = cw[2] = cw[3] = 0;
    }
    const svc = ipvs.services.find(vip.af, 0, IPPROTO_UDP, vip.words, vip.port);
    if (!svc) {
      ctx.counters.udpDropped++;
      return;
    }
    const oneShot = ipvs.conns.inGet(vip.af, IPPROTO_UDP, cw, cport, vip.words, vip.port);
    if (oneShot !== NO_CONN) ipvs.ops.expireNow(oneShot); // a stale entry without a flow
    if (!ctx.fdRoom(1, 'new UDP flow')) {
      ctx.counters.udpDropped++;
      return;
    }
    if (ctx.liveUdp >= ctx.limits.maxUdpFlows) {
      ctx.counters.udpDropped++;
      ipvs.warn(
        'proxy-udp-limit',
        `proxy: ${ctx.limits.maxUdpFlows} UDP flows (maxUdpFlows): datagram dropped`,
      );
      return;
    }
    // the datagram goes along for a persistence engine that reads it (--pe sip: the Call-ID)
    ctx.flow
      .set(vip.af as Af, IPPROTO_UDP, cw, cport, vip.words, vip.port)
      .withPayload(msg, 0, msg.length);
    ctx.flow.length = msg.length;
    const h = ipvs.ops.connSchedule(svc, ctx.flow);
    ctx.flow.payload = null;
    if (h < 0) {
      ctx.counters.udpDropped++;
      return;
    }
    const header =
      svc.ext['proxy-protocol'] === 'v2'
        ? encodeProxyV2(
            {
              af: vip.af,
              transport: 'udp',
              srcAddr: caddr,
              srcPort: cport,
              dstAddr: vip.addr,
              dstPort: vip.port,
            },
            cw,
            vip.words,
          )
        : null;
    if (ipvs.conns.flags(h) & CONN_F_ONE_PACKET) {
      this.#onePacket(h, key, caddr, cport, msg, header);
      return;
    }
    flow = new UdpFlow(this, key, h, caddr, cport, header);
    this.flows.set(key, flow);
    flow.send(msg);
  }

  /** A one-packet connection: count it, send it, let IPVS free the entry at once. */
  #onePacket(
    h: number,
    key: string,
    caddr: string,
    cport: number,
    msg: Buffer,
    header: Buffer | null,
  ): void {
    const ctx = this.ctx;
    const ops = ctx.ipvs.ops;
    const t = ctx.ipvs.conns;
    const destId = t.dest(h);
    let client = this.#ops.get(key);
    if (!client) {
      client = { sockets: new Map(), last: 0 };
      this.#ops.set(key, client);
    }
    client.last = ctx.ipvs.now();
    let s = client.sockets.get(destId);
    if (!s) {
      const daf = t.daf(h);
      s = new Upstream(ctx, daf, formatIp(daf, t.cold, t.daddrOff(h)), t.dport(h));
      s.sock.on('message', (reply) => this.sendToClient(reply, cport, caddr));
      s.sock.on('error', () => {
        ctx.counters.connectFailures++;
        const d = ctx.ipvs.destById[destId];
        if (d) d.connectFailures++;
      });
      client.sockets.set(destId, s);
    }
    ops.inStats(h, msg.length);
    ops.transition(h, DIR_INPUT, 0);
    s.send(header ? Buffer.concat([header, msg]) : msg);
    ops.countIn(h);
    ops.put(h); // frees a one-packet entry
  }

  /** Closes one-packet sockets idle for longer than the UDP timeout. */
  sweep(now: number): void {
    if (this.#ops.size === 0) return;
    const idle = this.ctx.ipvs.timeouts.get(IPPROTO_UDP)![0]!;
    for (const [k, c] of this.#ops) {
      if (now - c.last < idle) continue;
      for (const s of c.sockets.values()) s.close();
      this.#ops.delete(k);
    }
    this.settle();
  }

  /** Closes the VIP socket, every flow (their entries expire on their own) and every one-packet socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of [...this.flows.values()]) {
      if (f.h >= 0 && this.ctx.owners[f.h] === f) this.ctx.owners[f.h] = undefined;
      f.h = -1;
      f.close();
    }
    for (const c of this.#ops.values()) for (const s of c.sockets.values()) s.close();
    this.#ops.clear();
    try {
      this.sock.close();
    } catch {
      // not bound
    }
  }
}

/** The wildcard address of either family. */
export function isAny(addr: string): boolean {
  return addr === '0.0.0.0' || addr === '::';
}
