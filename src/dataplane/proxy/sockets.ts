/**
 * The two things the proxy plane needs from Node's socket layer that `net` does not offer publicly:
 * a TCP listener whose bind and listen happen synchronously, so a control command learns at once
 * (with the operating system's errno) whether its VIP:port can be served and nothing is
 * half-applied; and accepted sockets that read into caller-owned buffers (`onread`), which
 * `net.Server` only offers for client sockets. Both use the `tcp_wrap` binding that `net` itself
 * is built on (the same handle objects `net.Server` and `child_process` pass around). UDP listeners
 * use public `dgram`, after a synchronous probe bind through `udp_wrap`.
 */
import { getSystemErrorName } from 'node:util';
import { AF_INET6 } from '../../core/addr.js';

/** The subset of the `tcp_wrap` TCP handle the listener uses. */
export interface TcpHandle {
  bind(addr: string, port: number): number;
  bind6(addr: string, port: number, flags: number): number;
  listen(backlog: number): number;
  getsockname(out: { address?: string; port?: number; family?: string }): number;
  getpeername(out: { address?: string; port?: number; family?: string }): number;
  setNoDelay(on: boolean): number;
  close(cb?: () => void): void;
  /** Closes with a reset (SO_LINGER 0). */
  reset?(cb: () => void): number;
  onconnection: ((err: number, client: TcpHandle | undefined) => void) | null;
}

interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  constants: { SOCKET: number; SERVER: number; UV_TCP_IPV6ONLY: number };
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
  if (err) {
    h.close();
    return failure(err, 'listen on', af, addr, port);
  }
  return h;
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
