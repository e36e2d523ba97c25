/**
 * TCP in the proxy data plane: a listener per TCP virtual service and, per accepted client, a
 * splice to the real server core chose. Socket events are fed to core as the TCP segments IPVS
 * would have seen (spec §4.1, NAT lifecycle): accept = SYN in (SYN_RECV); the real server accepting
 * = SYN+ACK out, then ACK in (ESTABLISHED); a FIN from either side = FIN in / FIN out (CLOSE_WAIT,
 * FIN_WAIT, TIME_WAIT); a reset = RST (CLOSE). Every chunk read counts as one packet of its size in
 * the in/out statistics and re-arms the entry's idle timer. Each direction reads into a buffer of
 * its own (small, grown on bulk transfers) and stops reading while the other side's write is
 * pending, so memory per connection is bounded whatever the peers do.
 */
import * as net from 'node:net';
import { AF_INET6, type Af, formatIp, parseIpv4, parseIpv6 } from '../../core/addr.js';
import { SCHED_DROP, SCHED_LEAVE } from '../../core/conn-ops.js';
import { NO_CONN } from '../../core/conn.js';
import { DEST_F_AVAILABLE, IPPROTO_TCP } from '../../core/constants.js';
import type { Service } from '../../core/service.js';
import { DIR_INPUT, DIR_OUTPUT, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../proto/index.js';
import type { EntryOwner, ProxyContext } from './context.js';
import { encodeProxyV1, encodeProxyV2 } from './proxy-protocol.js';
import type { TcpHandle } from './sockets.js';

const kConn = Symbol('ipvs.proxy.conn');
type ConnSocket = net.Socket & { [kConn]: TcpConn };

const noop = (): void => {};

// Socket callbacks are shared functions (no closures per connection); `this` is the socket.
// Node calls the onread buffer function without `this`, right after the read callback (and once
// when the handle is set up), so the callback leaves the next buffer in `nextBuf` for it.
let nextBuf: Buffer | null = null;
function genBuf(): Buffer {
  const b = nextBuf!;
  nextBuf = null;
  return b;
}
function onClientRead(this: ConnSocket, n: number, buf: Buffer): boolean {
  const c = this[kConn];
  const r = c.relay(true, n, buf);
  nextBuf = c.nextBuf(true);
  return r;
}
function onServerRead(this: ConnSocket, n: number, buf: Buffer): boolean {
  const c = this[kConn];
  const r = c.relay(false, n, buf);
  nextBuf = c.nextBuf(false);
  return r;
}
function onClientEnd(this: ConnSocket): void {
  this[kConn].ended(true);
}
function onServerEnd(this: ConnSocket): void {
  this[kConn].ended(false);
}
function onClientError(this: ConnSocket, e: NodeJS.ErrnoException): void {
  this[kConn].failed(true, e);
}
function onServerError(this: ConnSocket, e: NodeJS.ErrnoException): void {
  this[kConn].failed(false, e);
}
function onClientClose(this: ConnSocket): void {
  this[kConn].closed(true);
}
function onServerClose(this: ConnSocket): void {
  this[kConn].closed(false);
}
function onClientDrain(this: ConnSocket): void {
  this[kConn].drained(true);
}
function onServerDrain(this: ConnSocket): void {
  this[kConn].drained(false);
}
function onServerConnect(this: ConnSocket): void {
  this[kConn].connected();
}

function kill(s: net.Socket | null): void {
  if (!s || s.destroyed) return;
  if (s.connecting) s.destroy();
  else s.resetAndDestroy();
}

/** One proxied TCP connection: client socket, real-server socket, and its IPVS entry. */
export class TcpConn implements EntryOwner {
  /** Connection-table handle, or -1 once the entry is gone or no longer ours. */
  h: number;
  readonly ctx: ProxyContext;
  readonly svc: Service;
  readonly client: net.Socket;
  readonly server: net.Socket;
  /** When the connect to the real server started (ms, ipvs clock); -1 once connected or failed. */
  connectStart: number;
  #bufC: Buffer | null = null;
  #bufS: Buffer | null = null;
  #lastC = 0;
  #lastS = 0;
  /** A write toward the server (resp. client) is pending: the client (resp. server) is paused. */
  #waitS = false;
  #waitC = false;
  #connected = false;
  #endC = false;
  #endS = false;
  #closedC = false;
  #closedS = false;
  #stalled = false;
  #done = false;

  constructor(
    ctx: ProxyContext,
    h: number,
    svc: Service,
    handle: TcpHandle,
    proxyHeader: Buffer | null,
  ) {
    this.ctx = ctx;
    this.h = h;
    this.svc = svc;
    ctx.owners[h] = this;
    ctx.liveTcp++;
    ctx.tcpOpen.add(this);
    handle.setNoDelay(true);
    nextBuf = this.nextBuf(true);
    const client = new net.Socket({
      handle: handle as unknown as undefined,
      allowHalfOpen: true,
      readable: true,
      writable: true,
      pauseOnCreate: true,
      // with a high-water mark of 1 byte a write that cannot complete at once sets needDrain, so
      // 'drain' tells us when the buffer it holds is free again (see relay())
      writableHighWaterMark: 1,
      onread: { buffer: genBuf, callback: onClientRead },
    } as net.SocketConstructorOpts) as ConnSocket;
    client[kConn] = this;
    this.client = client;
    client.on('end', onClientEnd);
    client.on('error', onClientError);
    client.on('close', onClientClose);
    client.on('drain', onClientDrain);
    const t = ctx.ipvs.conns;
    const daf = t.daf(h);
    const server = new net.Socket({
      allowHalfOpen: true,
      noDelay: true,
      writableHighWaterMark: 1,
      onread: { buffer: genBuf, callback: onServerRead },
    } as net.SocketConstructorOpts) as ConnSocket;
    server[kConn] = this;
    this.server = server;
    server.on('connect', onServerConnect);
    server.on('end', onServerEnd);
    server.on('error', onServerError);
    server.on('close', onServerClose);
    server.on('drain', onServerDrain);
    this.connectStart = ctx.ipvs.now();
    nextBuf = this.nextBuf(false);
    server.connect({
      host: formatIp(daf, t.cold, t.daddrOff(h)),
      port: t.dport(h),
      family: daf === AF_INET6 ? 6 : 4,
    });
    if (proxyHeader) server.write(proxyHeader);
  }

  /** The next buffer a socket reads into (called once at start and after every read). */
  nextBuf(fromClient: boolean): Buffer {
    const pool = this.ctx.pool;
    let b = fromClient ? this.#bufC : this.#bufS;
    const last = fromClient ? this.#lastC : this.#lastS;
    const lent = fromClient ? this.#waitS : this.#waitC;
    if (b === null) b = pool.getSmall();
    else if (!lent) {
      if (last === b.length && b.length < pool.large) {
        pool.put(b);
        b = pool.getLarge();
      } else if (b.length === pool.large && last <= pool.small) {
        pool.put(b);
        b = pool.getSmall();
      }
    }
    if (fromClient) this.#bufC = b;
    else this.#bufS = b;
    return b;
  }

  /** `n` bytes arrived in `buf` from one side: count, run the state machine, forward. */
  relay(fromClient: boolean, n: number, buf: Buffer): boolean {
    const h = this.h;
    if (h < 0 || this.#stalled) return false;
    const ops = this.ctx.ipvs.ops;
    const d = ops.dest(h);
    if (!d || !(d.flags & DEST_F_AVAILABLE)) {
      this.#stall();
      return false;
    }
    let dst: net.Socket;
    if (fromClient) {
      this.#lastC = n;
      ops.inStats(h, n);
      ops.transition(h, DIR_INPUT, TCP_ACK);
      dst = this.server;
    } else {
      this.#lastS = n;
      ops.outStats(h, n);
      ops.transition(h, DIR_OUTPUT, TCP_ACK);
      dst = this.client;
    }
    ops.put(h);
    dst.write(buf.subarray(0, n));
    if (dst.writableLength === 0) return true;
    // the write is pending and holds `buf`: stop reading until the other side drains
    if (fromClient) this.#waitS = true;
    else this.#waitC = true;
    return false;
  }

  /**
   * Data for a connection whose destination was deleted. IPVS drops such packets (and with
   * expire_nodest_conn expires the connection at once); the proxy stops forwarding and lets the
   * entry expire, which closes both sockets.
   */
  #stall(): void {
    this.#stalled = true;
    this.client.pause();
    this.server.pause();
    if (this.ctx.ipvs.sysctl.expire_nodest_conn && this.h >= 0) this.ctx.ipvs.ops.expireNow(this.h);
  }

  /** A pending write toward one side completed: resume reading from the other side. */
  drained(toClient: boolean): void {
    if (this.#stalled) return;
    if (toClient) {
      this.#waitC = false;
      if (!this.#endS && this.#connected) this.server.resume();
    } else {
      this.#waitS = false;
      if (!this.#endC && this.#connected) this.client.resume();
    }
  }

  /** The real server accepted: SYN+ACK out, ACK in → ESTABLISHED; start reading the client. */
  connected(): void {
    this.#connected = true;
    this.connectStart = -1;
    const h = this.h;
    if (h >= 0) {
      const ops = this.ctx.ipvs.ops;
      ops.transition(h, DIR_OUTPUT, TCP_SYN | TCP_ACK);
      ops.transition(h, DIR_INPUT, TCP_ACK);
      ops.put(h);
    }
    if (this.#endC) this.server.end();
    else if (!this.#waitS && !this.#stalled) this.client.resume();
  }

  /** A FIN arrived from one side: FIN in / FIN out, then half-close the other side. */
  ended(fromClient: boolean): void {
    const h = this.h;
    if (fromClient) this.#endC = true;
    else this.#endS = true;
    if (h >= 0) {
      const ops = this.ctx.ipvs.ops;
      ops.transition(h, fromClient ? DIR_INPUT : DIR_OUTPUT, TCP_FIN | TCP_ACK);
      ops.put(h);
    }
    if (fromClient) {
      if (this.#connected) this.server.end();
    } else this.client.end();
  }

  /** A socket error: a reset (or a failed connect) on one side resets the other. */
  failed(fromClient: boolean, e: NodeJS.ErrnoException): void {
    void e;
    const h = this.h;
    const ops = this.ctx.ipvs.ops;
    if (!fromClient && !this.#connected) {
      this.#connectFailed(false);
      return;
    }
    if (h >= 0) {
      ops.transition(h, fromClient ? DIR_INPUT : DIR_OUTPUT, TCP_RST);
      ops.put(h);
    }
    kill(fromClient ? this.server : this.client);
  }

  /** The real server refused, reset, or did not answer in time: count it, reset the client. */
  #connectFailed(timeout: boolean): void {
    if (this.connectStart < 0) return;
    this.connectStart = -1;
    const ctx = this.ctx;
    const h = this.h;
    if (timeout) ctx.counters.connectTimeouts++;
    else ctx.counters.connectFailures++;
    if (h >= 0) {
      const ops = ctx.ipvs.ops;
      const d = ops.dest(h);
      if (d) d.connectFailures++;
      ops.transition(h, DIR_OUTPUT, TCP_RST);
      ops.put(h);
    }
    kill(this.server);
    kill(this.client);
  }

  /** Called by the plane's sweep: gives up on a real server that has not answered. */
  connectTimedOut(): void {
    this.#connectFailed(true);
  }

  /** IPVS freed the entry while the sockets were open (idle timeout, nodest sweep, flush). */
  expired(): void {
    this.h = -1;
    this.ctx.counters.expiredOpen++;
    kill(this.server);
    kill(this.client);
  }

  /** Closes both sockets with a reset (stop() after its deadline). */
  abort(): void {
    kill(this.server);
    kill(this.client);
  }

  /** A socket closed; once both have, release the buffers and the entry's ownership. */
  closed(isClient: boolean): void {
    if (isClient) this.#closedC = true;
    else this.#closedS = true;
    if (this.#closedC && this.#closedS) this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    const ctx = this.ctx;
    if (this.#bufC) ctx.pool.put(this.#bufC);
    if (this.#bufS) ctx.pool.put(this.#bufS);
    this.#bufC = this.#bufS = null;
    if (this.h >= 0 && ctx.owners[this.h] === this) ctx.owners[this.h] = undefined;
    this.h = -1;
    ctx.liveTcp--;
    ctx.tcpOpen.delete(this);
    ctx.onIdle?.();
  }

  /** True until both sockets have closed. */
  get open(): boolean {
    return !this.#done;
  }
}

/** What a listener knows about its virtual service. */
export interface VipAddress {
  af: number;
  addr: string;
  /** Address words (host order, IPv4 in word 0). */
  words: Uint32Array;
  port: number;
}

/**
 * Accepts one client on a VIP listener: applies IPVS's rules for an existing entry with the same
 * addresses (conn_reuse_mode, expire_nodest_conn), schedules through core, and starts the splice.
 * Returns the connection, or null when the client was refused (and counted).
 */
export function acceptTcp(ctx: ProxyContext, vip: VipAddress, ch: TcpHandle): TcpConn | null {
  const c = ctx.counters;
  if (ctx.stopping) {
    c.refusedStopping++;
    return refuse(ch);
  }
  if (ctx.liveTcp >= ctx.limits.maxConns) {
    c.refusedLimit++;
    ctx.ipvs.warn(
      'proxy-limit',
      `proxy: ${ctx.limits.maxConns} connections open (maxConns): new connection refused`,
    );
    return refuse(ch);
  }
  const peer: { address?: string; port?: number } = {};
  if (ch.getpeername(peer) || peer.address === undefined || peer.port === undefined)
    return refuse(ch);
  const ipvs = ctx.ipvs;
  const cw = ctx.caddr;
  if (vip.af === AF_INET6) {
    if (!parseIpv6(peer.address, cw)) return refuse(ch);
  } else {
    const v = parseIpv4(peer.address);
    if (v === null) return refuse(ch);
    cw[0] = v;
    cw[1] = cw[2] = cw[3] = 0;
  }
  const cport = peer.port;
  const svc = ipvs.services.find(vip.af, 0, IPPROTO_TCP, vip.words, vip.port);
  if (!svc) {
    c.refusedNoDest++;
    return refuse(ch);
  }
  const ops = ipvs.ops;
  let h = ipvs.conns.inGet(vip.af, IPPROTO_TCP, cw, cport, vip.words, vip.port);
  if (h !== NO_CONN) {
    // an entry for the same addresses: the client's previous connection (spec §1.6, §5.2 step 8-9)
    const d = ops.dest(h);
    const nodest = ipvs.sysctl.expire_nodest_conn;
    const owned = ctx.owners[h] !== undefined;
    if (!d || !(d.flags & DEST_F_AVAILABLE)) {
      if (!nodest) {
        c.refusedNodest++;
        return refuse(ch);
      }
      ops.expireNow(h);
      h = NO_CONN;
    } else if (owned || (nodest && d.weight === 0) || ops.reusable(h)) {
      ops.expireNow(h);
      h = NO_CONN;
    }
    // otherwise the new connection follows the old entry (conn_reuse_mode)
  }
  if (h === NO_CONN) {
    ctx.flow.set(vip.af as Af, IPPROTO_TCP, cw, cport, vip.words, vip.port);
    h = ops.connSchedule(svc, ctx.flow);
    if (h < 0) {
      if (h === SCHED_LEAVE) c.refusedNoDest++;
      else if (h === SCHED_DROP) c.refusedDropped++;
      else c.refusedDropped++;
      return refuse(ch);
    }
  }
  c.accepted++;
  ops.transition(h, DIR_INPUT, TCP_SYN);
  ops.put(h);
  return new TcpConn(ctx, h, svc, ch, proxyHeader(svc, vip, peer.address, cport, cw));
}

function refuse(ch: TcpHandle): null {
  if (ch.reset) ch.reset(noop);
  else ch.close();
  return null;
}

function proxyHeader(
  svc: Service,
  vip: VipAddress,
  caddr: string,
  cport: number,
  cw: Uint32Array,
): Buffer | null {
  const pp = svc.ext['proxy-protocol'];
  if (pp !== 'v1' && pp !== 'v2') return null;
  const a = {
    af: vip.af,
    transport: 'tcp' as const,
    srcAddr: caddr,
    srcPort: cport,
    dstAddr: vip.addr,
    dstPort: vip.port,
  };
  return pp === 'v1' ? encodeProxyV1(a) : encodeProxyV2(a, cw, vip.words);
}
