/**
 * TCP in the proxy data plane: a listener per TCP virtual service and, per accepted client, a
 * splice to the real server core chose. Socket events are fed to core as the TCP segments IPVS
 * would have seen (spec §4.1, NAT lifecycle): accept = SYN in (SYN_RECV); the real server accepting
 * = SYN+ACK out, then ACK in (ESTABLISHED); a FIN from either side = FIN in / FIN out (CLOSE_WAIT,
 * FIN_WAIT, TIME_WAIT); a reset = RST (CLOSE). Each of these segments counts as one packet
 * without payload in the in/out statistics, as IPVS counts every segment it forwards; every chunk
 * read counts as one packet of its size and re-arms the entry's idle timer. Each direction reads into a buffer of
 * its own (small, grown on bulk transfers) and stops reading while the other side's write is
 * pending, so memory per connection is bounded whatever the peers do.
 *
 * Both sockets are `tcp_wrap` handles driven directly (./sockets.ts), with the semantics
 * `net.Socket` gives them with `allowHalfOpen`: a side is closed once it has sent its FIN and we
 * have sent ours (shutdown after the pending write), at once on an error (the other side is then
 * reset), and with a reset when killed. Callbacks are shared functions; the per-connection state
 * is one `TcpConn` object and a word of flags.
 *
 * A connection found to be a keep-alive one (a short reply from the real server with no FIN
 * behind it) is handed to the native relay (./splice.ts) while it stays plain data both ways: the
 * addon moves the bytes and hands back per loop turn what was read (counted here as if relayed
 * here), and the connection at its first EOF or error, after which this file reads on as before.
 */
import { AF_INET6, type Af, formatIp, parseIp, parseIpv6 } from '../../core/addr.js';
import { SCHED_DROP, SCHED_LEAVE } from '../../core/conn-ops.js';
import { NO_CONN } from '../../core/conn.js';
import { DEST_F_AVAILABLE, IPPROTO_TCP } from '../../core/constants.js';
import type { Service } from '../../core/service.js';
import { DIR_INPUT, DIR_OUTPUT, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../proto/index.js';
import { getSystemErrorName } from 'node:util';
import { isLocalError, type EntryOwner, type OpenTcp, type ProxyContext } from './context.js';
import { lastDataAddon, type LastDataAddon } from './last-data.js';
import { encodeProxyV1, encodeProxyV2 } from './proxy-protocol.js';
import { splice as nativeSplice, type Splice, type Spliced } from './splice.js';
import {
  type ConnectReq,
  INHERITS_NODELAY,
  raw,
  type ShutdownReq,
  type StreamHandle,
  type TcpHandle,
  type WriteReq,
} from './sockets.js';

/** A handle of a proxied connection knows its connection (its side: `conn.client === this`). */
interface ConnHandle extends StreamHandle {
  conn: TcpConn;
}

const { streamState, kReadBytesOrError, kLastWriteWasAsync, UV_EOF, UV_ENOTCONN } = raw;

const noop = (): void => {};

/** The two sides; a per-side flag is `F << side`. */
const CLIENT = 0;
const SERVER = 1;
/** The side sent its FIN (we read EOF). */
const F_EOF = 1 << 0;
/** We asked for a shutdown (our FIN) toward the side. */
const F_SHUT = 1 << 2;
/** The side's handle is closed (or reset): nothing more is done with it. */
const F_CLOSING = 1 << 6;
/** A write toward the side is pending: the other side does not read meanwhile. */
const F_WAIT = 1 << 10;
/** The side's handle is reading. */
const F_READING = 1 << 12;
const F_CONNECTED = 1 << 14;
/** The entry's destination is deleted: the client is not read (IPVS drops its packets). */
const F_STALLED = 1 << 15;
const F_DONE = 1 << 16;
/** A short read from the server was not followed by its FIN: no more peeks (keep-alive). */
const F_NOPEEK = 1 << 17;
/** The native relay moves the bytes (no libuv reads on either handle meanwhile). */
const F_NATIVE = 1 << 18;
/** What keeps a connection out of the native relay: anything but plain data both ways. */
const F_NOT_PLAIN = ((F_EOF | F_SHUT | F_CLOSING | F_WAIT) * 3) | F_STALLED | F_DONE | F_NATIVE;
const F_READING_BOTH = F_READING * 3;

// Shared callbacks (no closures per connection). Node calls a handle's onread with `this` = the
// handle, the byte count or errno in streamState; what it returns is the next read buffer.
function onClientRead(this: StreamHandle): Uint8Array | undefined {
  return (this as ConnHandle).conn.read(CLIENT);
}
function onServerRead(this: StreamHandle): Uint8Array | undefined {
  return (this as ConnHandle).conn.read(SERVER);
}
function onConnect(this: ConnectReq, status: number, handle: StreamHandle): void {
  (handle as ConnHandle).conn.connectDone(status);
}
function onWritten(this: WriteReq, status: number, handle: StreamHandle): void {
  this.buffer = null;
  const c = (handle as ConnHandle).conn;
  c.written(handle === c.client ? CLIENT : SERVER, status);
}

/** The addon's last-data calls, when it is built (else every FIN goes by libuv's shutdown). */
const lastData = lastDataAddon();
/** The native relay, when the addon is built. */
const relayAddon: Splice | null = lastData !== null ? nativeSplice() : null;

/**
 * A write request for the next write. A write the kernel takes at once never uses its request
 * object, so one is kept for the next write until a write is queued (and keeps its request).
 */
let spareReq: WriteReq | null = null;

/** Writes `buf` on `h`: 0 = written, 1 = queued (onWritten follows), < 0 = errno. */
function writeTo(h: StreamHandle, buf: Uint8Array): number {
  let req = spareReq;
  if (req === null) {
    req = new raw.WriteWrap();
    req.oncomplete = onWritten;
    req.handle = null;
    req.async = false;
    req.bytes = 0;
    req.buffer = null;
  }
  spareReq = null;
  const err = h.writeBuffer(req, buf);
  if (err !== 0) return err; // the request may have been used: not reused
  if (streamState[kLastWriteWasAsync] === 0) {
    spareReq = req;
    return 0;
  }
  req.handle = h;
  req.buffer = buf;
  return 1;
}

/** One proxied TCP connection: client handle, real-server handle, and its IPVS entry. */
export class TcpConn implements EntryOwner, OpenTcp, Spliced {
  /** Connection-table handle, or -1 once the entry is gone or no longer ours. */
  h: number;
  readonly ctx: ProxyContext;
  readonly svc: Service;
  readonly client: ConnHandle;
  readonly server: ConnHandle;
  /** When the connect to the real server started (ms, ipvs clock); -1 once connected or failed. */
  connectStart: number;
  #bufC: Buffer | null = null;
  #bufS: Buffer | null = null;
  #lastC = 0;
  #lastS = 0;
  /** The last partial view of #bufC / #bufS written (request/response sizes repeat). */
  #viewC: Buffer | null = null;
  #viewS: Buffer | null = null;
  #f = 0;
  /** The PROXY protocol header, sent once the real server accepted. */
  #header: Buffer | null;
  /** Our shutdown request toward the client / the server, once made. */
  #shutC: ShutdownReq | null = null;
  #shutS: ShutdownReq | null = null;
  /** The native relay's slot while it moves the bytes, else -1. */
  #slot = -1;
  /** Bytes read from the client into #bufC and held while the connection is stalled. */
  #held = 0;

  constructor(
    ctx: ProxyContext,
    h: number,
    svc: Service,
    handle: StreamHandle,
    proxyHeader: Buffer | null,
  ) {
    this.ctx = ctx;
    this.h = h;
    this.svc = svc;
    this.#header = proxyHeader;
    ctx.owners[h] = this;
    ctx.liveTcp++;
    ctx.tcpOpen.add(this);
    const client = handle as ConnHandle;
    client.conn = this;
    this.client = client;
    if (!INHERITS_NODELAY) client.setNoDelay(true);
    client.useUserBuffer(this.nextBuf(true));
    client.onread = onClientRead;
    const server = new raw.TCP(raw.SOCKET) as ConnHandle;
    server.conn = this;
    this.server = server;
    server.setNoDelay(true); // applied when connect creates the socket
    server.useUserBuffer(this.nextBuf(false));
    server.onread = onServerRead;
    this.connectStart = ctx.ipvs.now();
    const t = ctx.ipvs.conns;
    const daf = t.daf(h);
    const addr = formatIp(daf, t.cold, t.daddrOff(h));
    const req = new raw.TCPConnectWrap();
    req.oncomplete = onConnect;
    const err =
      daf === AF_INET6
        ? server.connect6(req, addr, t.dport(h))
        : server.connect(req, addr, t.dport(h));
    if (err) this.#error(SERVER, err);
    // reads start when the connect completes (libuv reports the connect first); asking now
    // saves re-arming the descriptor in epoll then
    else this.#readStart(SERVER);
  }

  /** The next buffer a socket reads into (called once at start and after every read). */
  nextBuf(fromClient: boolean): Buffer {
    const pool = this.ctx.pool;
    let b = fromClient ? this.#bufC : this.#bufS;
    const last = fromClient ? this.#lastC : this.#lastS;
    const lent =
      (this.#f & (F_WAIT << (fromClient ? SERVER : CLIENT))) !== 0 ||
      (fromClient && this.#held > 0);
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
    if (fromClient) {
      if (b !== this.#bufC) this.#viewC = null;
      this.#bufC = b;
    } else {
      if (b !== this.#bufS) this.#viewS = null;
      this.#bufS = b;
    }
    return b;
  }

  /** A read on one side's handle: data, EOF or an error. Returns the next buffer if it changed. */
  read(side: number): Uint8Array | undefined {
    const n = streamState[kReadBytesOrError]!;
    if (side === CLIENT && this.#f & F_STALLED && this.h >= 0) {
      // read again by watchClient: data, FIN or reset, the kernel would see a packet for an
      // entry whose destination is gone, and with expire_nodest_conn on it expires the entry
      if (this.ctx.ipvs.sysctl.expire_nodest_conn) {
        this.#readStop(CLIENT);
        this.ctx.ipvs.ops.expireNow(this.h);
        return undefined;
      }
    }
    if (n > 0) {
      const fromClient = side === CLIENT;
      const buf = fromClient ? this.#bufC! : this.#bufS!;
      if (!this.relay(fromClient, n, buf)) {
        // closed meanwhile (an error on the other side resets this one): buffers are released
        if (this.#f & (F_CLOSING << side)) return undefined;
        this.#readStop(side);
      }
      const next = this.nextBuf(fromClient);
      return next === buf ? undefined : next;
    }
    if (n === UV_EOF) {
      this.#f = (this.#f | (F_EOF << side)) & ~(F_READING << side);
      this.ended(side === CLIENT);
      this.#maybeClose(side);
    } else if (n < 0) this.#error(side, n);
    return undefined;
  }

  /**
   * `n` bytes arrived in `buf` from one side: count, run the state machine, forward. The client's
   * bytes wait in `buf` while the entry's destination is deleted (see #stall).
   */
  relay(fromClient: boolean, n: number, buf: Buffer): boolean {
    const h = this.h;
    if (h < 0) return false;
    if (fromClient && this.#destGone()) {
      this.#stall(n);
      return false;
    }
    const ops = this.ctx.ipvs.ops;
    let to: number;
    let data = buf;
    if (fromClient) {
      this.#lastC = n;
      ops.inStats(h, n);
      ops.transition(h, DIR_INPUT, TCP_ACK);
      ops.countIn(h);
      to = SERVER;
      if (n !== buf.length) {
        const v = this.#viewC;
        data = v !== null && v.length === n ? v : (this.#viewC = buf.subarray(0, n));
      }
    } else {
      this.#lastS = n;
      ops.outStats(h, n);
      ops.transition(h, DIR_OUTPUT, TCP_ACK);
      to = CLIENT;
      if (n !== buf.length) {
        const v = this.#viewS;
        data = v !== null && v.length === n ? v : (this.#viewS = buf.subarray(0, n));
      }
    }
    ops.put(h);
    // a side being closed takes no more data (net.Socket drops writes after destroy() too)
    if (this.#f & (F_CLOSING << to)) return true;
    const last = to === CLIENT && n !== buf.length ? lastData : null;
    const r =
      last !== null && !(this.#f & ((F_SHUT << CLIENT) | F_NOPEEK))
        ? this.#writeLast(last, data)
        : writeTo(to ? this.server : this.client, data);
    if (r === 0) return true;
    if (r > 0) {
      // the write is pending and holds `buf`: stop reading until it completes
      this.#f |= F_WAIT << to;
    } else this.#error(to, r);
    return false;
  }

  /**
   * Writes a short read from the real server to the client and, when the server's FIN is the next
   * thing to read, sends our FIN on the same segment as the data (as a proxy that reads data and
   * EOF in one go does): the client then closes second, so its TIME_WAIT and its next connect's
   * port search stay off this core, and one segment and one loop turn are saved per connection.
   * The server's EOF is still read (and fed to the state machine) in order, after the data. A
   * connection whose short read was not followed by a FIN is taken for a long-lived one (a
   * keep-alive response) and is not peeked again: one system call per connection, not per reply.
   */
  #writeLast(last: LastDataAddon, data: Uint8Array): number {
    if (last.tcpPeekEof(this.server.fd) !== 1) {
      this.#f |= F_NOPEEK;
      const r = writeTo(this.client, data);
      if (r === 0 && relayAddon !== null) this.#toNative(relayAddon);
      return r;
    }
    const n = data.length;
    const r = last.tcpSendFin(this.client.fd, data, n);
    if (r === n) {
      this.#f |= F_SHUT << CLIENT;
      // a client that half-closed first is done now: nothing will ask to close it later
      this.#maybeClose(CLIENT);
      return 0;
    }
    if (r < 0) return r;
    return writeTo(this.client, r === 0 ? data : data.subarray(r));
  }

  /**
   * The entry's destination was deleted. IPVS drops the client's packets then, without re-arming
   * the entry's timer (with expire_nodest_conn it expires the entry at once, which closes both
   * sockets), and still forwards the real server's: the proxy stops reading the client, keeps the
   * `held` bytes it had read, and relays the server as before. When the destination is added back
   * (the kernel takes it from its trash, connections and all), `resume` forwards what was held
   * and reads the client again, as the client's retransmissions would get through then.
   */
  #stall(held: number): void {
    this.#fromNative(true);
    this.#f |= F_STALLED;
    this.#held = held;
    this.ctx.tcpStalled.add(this);
    this.#readStop(CLIENT);
    const f = this.#f;
    if (!(f & (F_CLOSING << SERVER)) && f & F_CONNECTED) {
      // back from the native relay, the handles have no buffers of ours
      if (this.#bufS === null) this.server.useUserBuffer(this.nextBuf(false));
      if (!(f & (F_WAIT << CLIENT))) this.#readStart(SERVER);
    }
    if (this.ctx.ipvs.sysctl.expire_nodest_conn && this.h >= 0) this.ctx.ipvs.ops.expireNow(this.h);
  }

  /** See OpenTcp.watchClient: the client is read again, and its next read expires the entry. */
  watchClient(): void {
    const f = this.#f;
    if (!(f & F_STALLED) || f & (F_DONE | ((F_CLOSING | F_EOF) << CLIENT)) || this.h < 0) return;
    if (!this.ctx.ipvs.sysctl.expire_nodest_conn) return;
    // bytes taken from the client while stalled: under IPVS they were dropped, and the client's
    // retransmission comes within its RTO
    if (this.#held > 0) {
      this.ctx.ipvs.ops.expireNow(this.h);
      return;
    }
    if (this.#bufC === null) this.client.useUserBuffer(this.nextBuf(true));
    this.#readStart(CLIENT);
  }

  /** The destination is available again (see #stall): forward what was held, read the client. */
  resume(): void {
    const f = this.#f;
    if (!(f & F_STALLED) || f & (F_DONE | (F_CLOSING << CLIENT)) || this.#destGone()) return;
    this.#f = f & ~F_STALLED;
    this.ctx.tcpStalled.delete(this);
    const n = this.#held;
    this.#held = 0;
    if (this.#bufC === null) this.client.useUserBuffer(this.nextBuf(true));
    // a write toward the server still pending resumes the client once it completes (drained)
    if (n > 0 && !this.relay(true, n, this.#bufC!)) return;
    if (!(this.#f & (F_WAIT << SERVER))) this.#readStart(CLIENT);
  }

  #readStart(side: number): void {
    if (this.#f & ((F_READING | F_EOF | F_CLOSING) << side)) return;
    this.#f |= F_READING << side;
    const err = (side ? this.server : this.client).readStart();
    if (err) this.#error(side, err);
  }

  #readStop(side: number): void {
    const f = this.#f;
    if (!(f & (F_READING << side)) || f & (F_CLOSING << side)) return;
    this.#f = f & ~(F_READING << side);
    (side ? this.server : this.client).readStop();
  }

  /** A queued write toward `side` completed (or failed). */
  written(side: number, status: number): void {
    const f = this.#f;
    if (f & (F_CLOSING << side)) return;
    if (status < 0) {
      this.#error(side, status);
      return;
    }
    this.#f = f & ~(F_WAIT << side);
    this.#maybeClose(side);
    this.drained(side === CLIENT);
  }

  /** A pending write toward one side completed: resume reading from the other side. */
  drained(toClient: boolean): void {
    const f = this.#f;
    if ((f & F_STALLED && !toClient) || !(f & F_CONNECTED)) return;
    this.#readStart(toClient ? SERVER : CLIENT);
  }

  /** The connect to the real server finished (`status` < 0: it failed). */
  connectDone(status: number): void {
    if (this.#f & (F_CLOSING << SERVER)) return; // killed meanwhile
    if (status < 0) this.#error(SERVER, status);
    else this.connected();
  }

  /** The real server accepted: SYN+ACK out, ACK in → ESTABLISHED; start reading both sides. */
  connected(): void {
    this.#f |= F_CONNECTED;
    this.connectStart = -1;
    const h = this.h;
    if (h >= 0) {
      const ops = this.ctx.ipvs.ops;
      ops.outStats(h, 0);
      ops.transition(h, DIR_OUTPUT, TCP_SYN | TCP_ACK);
      ops.inStats(h, 0);
      ops.transition(h, DIR_INPUT, TCP_ACK);
      ops.put(h);
    }
    const hdr = this.#header;
    if (hdr) {
      this.#header = null;
      const r = writeTo(this.server, hdr);
      if (r > 0) this.#f |= F_WAIT << SERVER;
      else if (r < 0) {
        this.#error(SERVER, r);
        return;
      }
    }
    const f = this.#f;
    if (f & F_STALLED) return;
    if (f & (F_EOF << CLIENT)) this.#end(SERVER);
    else if (!(f & (F_WAIT << SERVER))) this.#readStart(CLIENT);
  }

  /** A FIN arrived from one side: FIN in / FIN out, then half-close the other side. */
  ended(fromClient: boolean): void {
    const h = this.h;
    if (h >= 0) {
      const ops = this.ctx.ipvs.ops;
      if (fromClient) ops.inStats(h, 0);
      else ops.outStats(h, 0);
      ops.transition(h, fromClient ? DIR_INPUT : DIR_OUTPUT, TCP_FIN | TCP_ACK);
      if (fromClient) ops.countIn(h);
      ops.put(h);
    }
    if (fromClient) {
      if (this.#f & F_CONNECTED) this.#end(SERVER);
    } else this.#end(CLIENT);
  }

  /**
   * Sends our FIN to `side` once what is queued toward it is out (libuv runs the shutdown after
   * the queued writes). A side that has sent its own FIN and has nothing queued is simply closed:
   * the same FIN, with one system call and one loop turn less.
   */
  #end(side: number): void {
    const f = this.#f;
    if (f & ((F_SHUT | F_CLOSING) << side)) return;
    if ((f & ((F_EOF | F_WAIT) << side)) === F_EOF << side) {
      this.#close(side);
      return;
    }
    this.#f = f | (F_SHUT << side);
    // no oncomplete: nothing waits for the shutdown (see #maybeClose, #kill)
    const req = new raw.ShutdownWrap();
    const err = (side ? this.server : this.client).shutdown(req);
    if (err === 0) {
      if (side) this.#shutS = req;
      else this.#shutC = req;
    } else if (err === 1 || err === UV_ENOTCONN) this.#maybeClose(side);
    else this.#error(side, err);
  }

  /**
   * Closes a side that has sent its FIN once ours is on its way: the shutdown was asked for and
   * nothing is queued before it (closing sends the FIN if the shutdown has not run yet; the side
   * sent everything it had, so nothing unread makes the close a reset).
   */
  #maybeClose(side: number): void {
    const m = (F_EOF | F_SHUT | F_WAIT) << side;
    if ((this.#f & m) === (F_EOF | F_SHUT) << side) this.#close(side);
  }

  /** True while our shutdown toward `side` has not run (its request still exists in C++). */
  #shutting(side: number): boolean {
    const req = side ? this.#shutS : this.#shutC;
    return req !== null && req.getAsyncId() !== -1;
  }

  /**
   * Closes one side's handle. libuv neither reads into nor writes from our buffers once a handle
   * is closing (queued writes are cancelled), so the connection is over once both sides are.
   */
  #close(side: number): void {
    if (this.#f & F_NATIVE) this.#fromNative(false);
    const f = this.#f;
    if (f & (F_CLOSING << side)) return;
    this.#f = f | (F_CLOSING << side);
    (side ? this.server : this.client).close();
    this.#closed();
  }

  /**
   * Resets one side (closes it with SO_LINGER 0); a connect in progress, or a side whose
   * shutdown is still pending (libuv refuses the reset then), is simply closed.
   */
  #kill(side: number): void {
    if (this.#f & F_NATIVE) this.#fromNative(false);
    const f = this.#f;
    if (f & (F_CLOSING << side)) return;
    if ((side === SERVER && !(f & F_CONNECTED)) || this.#shutting(side)) {
      this.#close(side);
      return;
    }
    this.#f = f | (F_CLOSING << side);
    (side ? this.server : this.client).reset();
    this.#closed();
  }

  /** An error on one side (read, write, connect): close it, then as IPVS would see it. */
  #error(side: number, err: number): void {
    if (this.#f & (F_CLOSING << side)) return;
    this.#close(side);
    // no socket toward the real server (EMFILE …): this host's failure, not the server's
    if (side === SERVER && !(this.#f & F_CONNECTED) && isLocalError(err)) {
      this.#connectFailed(false, err);
      return;
    }
    this.failed(side === CLIENT);
  }

  /** A socket error: a reset (or a failed connect) on one side resets the other. */
  failed(fromClient: boolean): void {
    const h = this.h;
    if (!fromClient && !(this.#f & F_CONNECTED)) {
      this.#connectFailed(false);
      return;
    }
    if (h >= 0) {
      const ops = this.ctx.ipvs.ops;
      if (fromClient) ops.inStats(h, 0);
      else ops.outStats(h, 0);
      ops.transition(h, fromClient ? DIR_INPUT : DIR_OUTPUT, TCP_RST);
      if (fromClient) ops.countIn(h);
      ops.put(h);
    }
    this.#kill(fromClient ? SERVER : CLIENT);
  }

  /**
   * The real server refused, reset, or did not answer in time: count it, reset the client. With
   * `localErr` (a libuv code) the socket toward it could not even be made: counted as this
   * host's (`localErrors`, logged), not as the server's.
   */
  #connectFailed(timeout: boolean, localErr = 0): void {
    if (this.connectStart < 0) return;
    this.connectStart = -1;
    const ctx = this.ctx;
    const h = this.h;
    if (localErr) ctx.localError(getSystemErrorName(localErr), 'no socket toward the real server');
    else if (timeout) ctx.counters.connectTimeouts++;
    else ctx.counters.connectFailures++;
    if (h >= 0) {
      const ops = ctx.ipvs.ops;
      const d = ops.dest(h);
      if (d && !localErr) d.connectFailures++;
      // a refusal is the real server's RST (a packet IPVS counts); a timeout is no packet
      if (!timeout && !localErr) ops.outStats(h, 0);
      ops.transition(h, DIR_OUTPUT, TCP_RST);
      ops.put(h);
    }
    this.#kill(SERVER);
    this.#kill(CLIENT);
  }

  /** Called by the plane's sweep: gives up on a real server that has not answered. */
  connectTimedOut(): void {
    this.#connectFailed(true);
  }

  /** IPVS freed the entry while the sockets were open (idle timeout, nodest sweep, flush). */
  expired(): void {
    this.h = -1;
    this.ctx.counters.expiredOpen++;
    this.#kill(SERVER);
    this.#kill(CLIENT);
  }

  /** Closes both sockets with a reset (stop() after its deadline). */
  abort(): void {
    this.#kill(SERVER);
    this.#kill(CLIENT);
  }

  /** A side was closed; once both are, release the buffers and the entry's ownership. */
  #closed(): void {
    const f = this.#f;
    const both = F_CLOSING | (F_CLOSING << 1);
    if ((f & both) !== both || f & F_DONE) return;
    this.#f = f | F_DONE;
    const ctx = this.ctx;
    if (this.#bufC) ctx.pool.put(this.#bufC);
    if (this.#bufS) ctx.pool.put(this.#bufS);
    this.#bufC = this.#bufS = this.#viewC = this.#viewS = null;
    if (this.h >= 0 && ctx.owners[this.h] === this) ctx.owners[this.h] = undefined;
    this.h = -1;
    ctx.liveTcp--;
    ctx.tcpOpen.delete(this);
    ctx.tcpStalled.delete(this);
    ctx.onIdle?.();
  }

  /** True until both sockets are closed. */
  get open(): boolean {
    return !(this.#f & F_DONE);
  }

  /** True while the native relay moves this connection's bytes. */
  get native(): boolean {
    return (this.#f & F_NATIVE) !== 0;
  }

  // ---- the native relay -----------------------------------------------------------------------

  /**
   * Hands the connection to the native relay when it is plain data both ways: both sides
   * connected and reading, nothing queued, no FIN, no close, an entry. Called right after a
   * write that completed, inside the real server's read callback.
   */
  #toNative(sp: Splice): void {
    const f = this.#f;
    if (f & F_NOT_PLAIN || (f & F_READING_BOTH) !== F_READING_BOTH || !(f & F_CONNECTED)) return;
    if (this.h < 0) return;
    this.#readStop(CLIENT);
    this.#readStop(SERVER);
    const slot = sp.addon.spliceStart(this.client.fd, this.server.fd);
    if (slot < 0) {
      this.#readStart(CLIENT);
      this.#readStart(SERVER);
      return;
    }
    this.#slot = slot;
    this.#f |= F_NATIVE;
    sp.bySlot[slot] = this;
    this.ctx.counters.spliced++;
    // the relay reads into its own scratch buffer: ours go back to the pool meanwhile (an idle
    // keep-alive connection then holds none), and new ones are given to the handles on resume
    const pool = this.ctx.pool;
    pool.put(this.#bufC!);
    pool.put(this.#bufS!);
    this.#bufC = this.#bufS = this.#viewC = this.#viewS = null;
  }

  /**
   * Takes the connection back from the native relay (before a close, a reset or a stall): counts
   * what it read since the last hand-over and, when `keep` and bytes were still waiting for a
   * socket, queues them through libuv.
   */
  #fromNative(keep: boolean): void {
    const sp = relayAddon;
    const slot = this.#slot;
    if (sp === null || slot < 0) return;
    this.#slot = -1;
    this.#f &= ~F_NATIVE;
    sp.bySlot[slot] = undefined;
    const pend = sp.addon.spliceStop(slot);
    const st = sp.stats;
    this.#count(st[1]!, st[2]!, st[3]!, st[4]!);
    if (!keep || pend === undefined) return;
    for (let side = CLIENT; side <= SERVER; side++) {
      const b = pend[side];
      if (!b) continue;
      const r = writeTo(side ? this.server : this.client, b);
      if (r > 0) this.#f |= F_WAIT << side;
      else if (r < 0) {
        this.#error(side, r);
        return;
      }
    }
  }

  /** What the relay read since the last hand-over: counted as the chunks relayed here are. */
  #count(inPkts: number, inBytes: number, outPkts: number, outBytes: number): void {
    const h = this.h;
    if (h < 0 || (inPkts === 0 && outPkts === 0)) return;
    const ops = this.ctx.ipvs.ops;
    if (inPkts > 0) {
      ops.inStats(h, inBytes, inPkts);
      ops.transition(h, DIR_INPUT, TCP_ACK);
      ops.countIn(h, inPkts);
    }
    if (outPkts > 0) {
      ops.outStats(h, outBytes, outPkts);
      ops.transition(h, DIR_OUTPUT, TCP_ACK);
    }
    ops.put(h);
  }

  /** The entry's destination was deleted (or the entry is gone): IPVS drops such packets. */
  #destGone(): boolean {
    const h = this.h;
    const d = h >= 0 ? this.ctx.ipvs.ops.dest(h) : null;
    return !d || !(d.flags & DEST_F_AVAILABLE);
  }

  /** Stops forwarding if the destination is gone (for a connection in the native relay). */
  checkDest(): void {
    if (this.#destGone() && !(this.#f & F_STALLED)) this.#stall(0);
  }

  /** The relay's counts of one loop turn (called by ./splice.ts). */
  nativeStats(inPkts: number, inBytes: number, outPkts: number, outBytes: number): void {
    if (this.h < 0) return;
    if (this.#destGone()) this.#stall(0);
    else this.#count(inPkts, inBytes, outPkts, outBytes);
  }

  /**
   * The relay gave the connection back (called by ./splice.ts): an EOF or a socket error that
   * libuv's reads will see again (`code` 0), or an error it consumed on `side` (`code` < 0).
   */
  nativeEnded(
    side: number,
    code: number,
    inPkts: number,
    inBytes: number,
    outPkts: number,
    outBytes: number,
  ): void {
    this.#slot = -1;
    this.#f &= ~F_NATIVE;
    this.nativeStats(inPkts, inBytes, outPkts, outBytes);
    if (code < 0) {
      this.#error(side, code);
      return;
    }
    if (this.#f & F_STALLED) return;
    this.client.useUserBuffer(this.nextBuf(true));
    this.server.useUserBuffer(this.nextBuf(false));
    this.#readStart(CLIENT);
    this.#readStart(SERVER);
  }
}

/** Hands the native relay's counts over now, before a command reads or changes what they touch. */
export function flushNativeCounts(): void {
  relayAddon?.addon.spliceFlush();
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
export function acceptTcp(ctx: ProxyContext, vip: VipAddress, ch: StreamHandle): TcpConn | null {
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
  // two descriptors (the client's and the real server's) must fit under the open files limit
  if (!ctx.fdRoom(2, 'new connection')) return refuse(ch);
  const peer: { address?: string; port?: number } = {};
  if (ch.getpeername(peer) || peer.address === undefined || peer.port === undefined)
    return refuse(ch);
  const ipvs = ctx.ipvs;
  const cw = ctx.caddr;
  if (vip.af === AF_INET6) {
    if (!parseIpv6(peer.address, cw)) return refuse(ch);
  } else {
    const v = ipv4(peer.address);
    if (v < 0) return refuse(ch);
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
    if ((nodest && d !== null && d.weight === 0) || ops.reusable(h)) {
      // step 8 first, as ip_vs_in_hook: an entry conn_reuse_mode lets a new connection replace
      // (TIME_WAIT, CLOSE …) is expired and the client scheduled again, whatever became of its
      // destination
      ops.expireNow(h);
      h = NO_CONN;
    } else if (!d || !(d.flags & DEST_F_AVAILABLE)) {
      // step 9: the destination is gone; the client's segments are dropped unless
      // expire_nodest_conn
      if (!nodest) {
        c.refusedNodest++;
        return refuse(ch);
      }
      ops.expireNow(h);
      h = NO_CONN;
    } else if (owned) {
      // a connection of ours still holds the entry, yet the client's host started a new one
      // with the same port: the old one is gone on its side
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
  ops.inStats(h, 0); // the SYN, as IPVS counts it after scheduling
  ops.transition(h, DIR_INPUT, TCP_SYN);
  ops.countIn(h);
  ops.put(h);
  return new TcpConn(ctx, h, svc, ch, proxyHeader(svc, vip, ch, peer.address, cport, cw));
}

function refuse(ch: TcpHandle): null {
  if (ch.reset) ch.reset(noop);
  else ch.close();
  return null;
}

/**
 * The PROXY header for a client of `svc`. Its destination is the address the client connected
 * to: the VIP, or for a service on the wildcard address (0.0.0.0 / ::, whose listener takes
 * clients on every local address) the accepted socket's own address.
 */
function proxyHeader(
  svc: Service,
  vip: VipAddress,
  ch: StreamHandle,
  caddr: string,
  cport: number,
  cw: Uint32Array,
): Buffer | null {
  const pp = svc.ext['proxy-protocol'];
  if (pp !== 'v1' && pp !== 'v2') return null;
  let dstAddr = vip.addr;
  let dw = vip.words;
  if (vip.addr === '0.0.0.0' || vip.addr === '::') {
    const own: { address?: string } = {};
    const a = ch.getsockname(own) === 0 && own.address ? parseIp(own.address) : null;
    if (a && a.af === vip.af) {
      dstAddr = formatIp(a.af, a.words);
      dw = a.words;
    }
  }
  const a = {
    af: vip.af,
    transport: 'tcp' as const,
    srcAddr: caddr,
    srcPort: cport,
    dstAddr,
    dstPort: vip.port,
  };
  return pp === 'v1' ? encodeProxyV1(a) : encodeProxyV2(a, cw, dw);
}

/** A dotted quad as getpeername() gives it, as a number; -1 if it is not one. */
function ipv4(s: string): number {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      v = v * 256 + part;
      part = digits = 0;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + c - 48;
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return (v * 256 + part) >>> 0;
}
