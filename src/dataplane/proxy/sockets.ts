/**
 * The two things the proxy plane needs from Node's socket layer that `net` does not offer publicly:
 * a TCP listener whose bind and listen happen synchronously, so a control command learns at once
 * (with the operating system's errno) whether its VIP:port can be served and nothing is
 * half-applied; and accepted sockets that read into caller-owned buffers (`onread`), which
 * `net.Server` only offers for client sockets. Both use the `tcp_wrap` binding that `net` itself
 * is built on (the same handle objects `net.Server` and `child_process` pass around). The TCP
 * splice drives the same handles directly (connect, read into its own buffers, write, shutdown,
 * close), as `net.Socket` does internally, without its streams and events. UDP listeners use
 * public `dgram`, after a synchronous probe bind through `udp_wrap`.
 */
import { getSystemErrorName } from 'node:util';
import { AF_INET6 } from '../../core/addr.js';

/** The subset of the `tcp_wrap` TCP handle the listener and the splice use. */
export interface TcpHandle {
  bind(addr: string, port: number): number;
  bind6(addr: string, port: number, flags: number): number;
  listen(backlog: number): number;
  getsockname(out: { address?: string; port?: number; family?: string }): number;
  getpeername(out: { address?: string; port?: number; family?: string }): number;
  setNoDelay(on: boolean): number;
  /** The socket's file descriptor (-1 before it exists). */
  readonly fd: number;
  close(cb?: () => void): void;
  /** Closes with a reset (SO_LINGER 0). */
  reset?(cb: () => void): number;
  onconnection: ((err: number, client: StreamHandle | undefined) => void) | null;
}

/**
 * The stream side of a `tcp_wrap` TCP handle (libuv `uv_tcp_t`), as the proxy's splice drives it
 * directly: `net.Socket` adds two streams, an event emitter and several ticks per connection on top
 * of these calls, which is most of the cost of a short connection.
 */
export interface StreamHandle extends TcpHandle {
  connect(req: ConnectReq, addr: string, port: number): number;
  connect6(req: ConnectReq, addr: string, port: number): number;
  readStart(): number;
  readStop(): number;
  /** Reads go into this buffer; the read callback returns the next one (or undefined: the same). */
  useUserBuffer(buf: Uint8Array): void;
  /** Called with `this` = the handle; the byte count (or a negative errno) is in `streamState`. */
  onread: ((this: StreamHandle) => Uint8Array | undefined) | null;
  writeBuffer(req: WriteReq, buf: Uint8Array): number;
  shutdown(req: ShutdownReq): number;
  /** Closes with a reset (SO_LINGER 0); the handle must not have a shutdown pending. */
  reset(cb?: () => void): number;
}

/** A `TCPConnectWrap`: `oncomplete(status, handle)` runs with `this` = the request. */
export interface ConnectReq {
  oncomplete: (this: ConnectReq, status: number, handle: StreamHandle) => void;
  address: string;
  port: number;
}
/** A `WriteWrap`: `oncomplete(status, handle)` runs when an asynchronous write is done. */
export interface WriteReq {
  oncomplete: (this: WriteReq, status: number, handle: StreamHandle) => void;
  handle: StreamHandle | null;
  async: boolean;
  bytes: number;
  buffer: Uint8Array | null;
}
/**
 * A `ShutdownWrap`. Without an `oncomplete` nothing is called when the shutdown has run; the C++
 * request is freed then, after which `getAsyncId()` answers -1.
 */
export interface ShutdownReq {
  oncomplete?: (this: ShutdownReq, status: number, handle: StreamHandle) => void;
  getAsyncId(): number;
}

interface TcpWrapBinding {
  TCP: new (type: number) => StreamHandle;
  TCPConnectWrap: new () => ConnectReq;
  constants: { SOCKET: number; SERVER: number; UV_TCP_IPV6ONLY: number };
}
interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}
interface UdpHandle {
  bind(addr: string, port: number, flags: number): number;
  bind6(addr: string, port: number, flags: number): number;
  close(cb?: () => void): void;
}
interface UdpWrapBinding {
  UDP: new () => UdpHandle;
}

type BindingFn = (name: string) => unknown;
const binding = (process as unknown as { binding: BindingFn }).binding.bind(process);
const tcpWrap = binding('tcp_wrap') as TcpWrapBinding;
const udpWrap = binding('udp_wrap') as UdpWrapBinding;
const streamWrap = binding('stream_wrap') as StreamWrapBinding;
const uv = binding('uv') as { UV_EOF: number; UV_ENOTCONN: number; UV_ECANCELED: number };

/** What the splice needs to drive TCP handles without `net.Socket`. */
export const raw = {
  TCP: tcpWrap.TCP,
  SOCKET: tcpWrap.constants.SOCKET,
  TCPConnectWrap: tcpWrap.TCPConnectWrap,
  WriteWrap: streamWrap.WriteWrap,
  ShutdownWrap: streamWrap.ShutdownWrap,
  /** Shared with the C++ side: the last read's byte count or errno, whether the last write queued. */
  streamState: streamWrap.streamBaseState,
  kReadBytesOrError: streamWrap.kReadBytesOrError,
  kLastWriteWasAsync: streamWrap.kLastWriteWasAsync,
  UV_EOF: uv.UV_EOF,
  UV_ENOTCONN: uv.UV_ENOTCONN,
};

/** A failed bind: the errno name (EADDRINUSE …) and a message naming the address. */
export interface BindFailure {
  errno: string;
  message: string;
}

function failure(err: number, what: string, af: number, addr: string, port: number): BindFailure {
  const errno = getSystemErrorName(err);
  const where = af === AF_INET6 ? `[${addr}]:${port}` : `${addr}:${port}`;
  const why =
    errno === 'EADDRINUSE'
      ? 'address already in use'
      : errno === 'EADDRNOTAVAIL'
        ? 'address not available on this host'
        : errno === 'EACCES'
          ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
          : errno;
  return { errno, message: `cannot ${what} ${where}: ${why} (${errno})` };
}

/** Whether accepted TCP sockets inherit TCP_NODELAY from their listener (Linux does). */
export const INHERITS_NODELAY = process.platform === 'linux';

/**
 * Binds and listens on `addr:port` synchronously. Returns the listening handle, or the failure.
 * IPv6 listeners are IPv6-only so an IPv4 VIP on the same port stays independent.
 */
export function listenTcp(
  af: number,
  addr: string,
  port: number,
  backlog: number,
): TcpHandle | BindFailure {
  const h = new tcpWrap.TCP(tcpWrap.constants.SERVER);
  let err =
    af === AF_INET6 ? h.bind6(addr, port, tcpWrap.constants.UV_TCP_IPV6ONLY) : h.bind(addr, port);
  if (!err) err = h.listen(backlog);
  // accepted sockets inherit TCP_NODELAY from the listener on Linux: one setsockopt per service
  // instead of one per client
  if (!err && INHERITS_NODELAY) err = h.setNoDelay(true);
  if (err) {
    h.close();
    return failure(err, 'listen on', af, addr, port);
  }
  return h;
}

/**
 * Binds `addr:port` without listening: the kernel answers a client's SYN with a reset, so the
 * client's connect fails with ECONNREFUSED, and the port stays this process's until `listen`.
 */
export function bindTcp(af: number, addr: string, port: number): TcpHandle | BindFailure {
  const h = new tcpWrap.TCP(tcpWrap.constants.SERVER);
  const err =
    af === AF_INET6 ? h.bind6(addr, port, tcpWrap.constants.UV_TCP_IPV6ONLY) : h.bind(addr, port);
  if (err) {
    h.close();
    return failure(err, 'bind', af, addr, port);
  }
  return h;
}

/** Starts listening on a handle `bindTcp` bound; 0 or a negative errno (the handle is kept). */
export function listenBound(h: TcpHandle, backlog: number): number {
  let err = h.listen(backlog);
  if (!err && INHERITS_NODELAY) err = h.setNoDelay(true);
  return err;
}

/** Checks synchronously that a UDP socket can be bound on `addr:port` (the bind is released at once). */
export function probeUdp(af: number, addr: string, port: number): BindFailure | null {
  const h = new udpWrap.UDP();
  const err = af === AF_INET6 ? h.bind6(addr, port, 1) : h.bind(addr, port, 0);
  h.close();
  return err ? failure(err, 'bind UDP', af, addr, port) : null;
}

/** True for a bind failure. */
export function isFailure(x: unknown): x is BindFailure {
  return typeof x === 'object' && x !== null && 'errno' in x && 'message' in x;
}
