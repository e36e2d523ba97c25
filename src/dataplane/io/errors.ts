/**
 * Coded errors of the frame-I/O layer (`IPVS_ERR_IO_*`). The daemon checks its prerequisites
 * through these: match on `err.code`, show `err.message` (it says what to do).
 */
import { IpvsError } from '../../core/errors.js';

/** The process may not open packet sockets or TUN devices (not root, no CAP_NET_RAW / CAP_NET_ADMIN). */
export class IoNotRootError extends IpvsError {
  static readonly code = 'IPVS_ERR_IO_NOT_ROOT';
  constructor(detail?: string, capability = 'CAP_NET_RAW') {
    const msg =
      `${detail ? `${detail}: ` : ''}permission denied: run as root or grant ${capability} to node, ` +
      `e.g. \`setcap ${capability.toLowerCase()}+ep $(readlink -f $(which node))\``;
    super(IoNotRootError.code, 'EPERM', 'Permission denied (you must be root)', msg);
    this.name = 'IoNotRootError';
  }
}

/** The named network interface does not exist (in the namespace it was looked up in). */
export class IoNoInterfaceError extends IpvsError {
  static readonly code = 'IPVS_ERR_IO_NO_INTERFACE';
  readonly iface: string;
  constructor(iface: string, netns?: string) {
    super(
      IoNoInterfaceError.code,
      'ENODEV',
      'No such device',
      `no such network interface: ${iface}${netns ? ` (in network namespace ${netns})` : ''}`,
    );
    this.name = 'IoNoInterfaceError';
    this.iface = iface;
  }
}

/** The native addon (native/build/Release/ipvs_native.node) is not built or does not load. */
export class IoNativeMissingError extends IpvsError {
  static readonly code = 'IPVS_ERR_IO_NATIVE_MISSING';
  constructor(detail?: string) {
    super(
      IoNativeMissingError.code,
      'ENOENT',
      'Native addon not available',
      'the native frame-I/O addon is not built' +
        (detail ? ` (${detail})` : '') +
        ': build it with `node native/build.mjs` (needs Linux, gcc, make, python3 and the Node headers, ' +
        'e.g. Debian package libnode-dev or nodejs-dev); `npm ci` builds it too',
    );
    this.name = 'IoNativeMissingError';
  }
}

/** A system call failed; `errno` is its name (EBUSY, ENOBUFS, ...), `syscall` what was called. */
export class IoSyscallError extends IpvsError {
  static readonly code = 'IPVS_ERR_IO_SYSCALL';
  readonly syscall: string;
  readonly errnoNumber: number;
  constructor(syscall: string, errno: string, errnoNumber: number, text: string) {
    super(IoSyscallError.code, errno, text, `${syscall} failed: ${text} (${errno})`);
    this.name = 'IoSyscallError';
    this.syscall = syscall;
    this.errnoNumber = errnoNumber;
  }
}

/** A frame does not fit a transmit slot, or an option is out of range. */
export class IoFrameSizeError extends IpvsError {
  static readonly code = 'IPVS_ERR_IO_FRAME_SIZE';
  constructor(message: string) {
    super(IoFrameSizeError.code, 'EMSGSIZE', 'Message too long', message);
    this.name = 'IoFrameSizeError';
  }
}

/** The backend was used after close(). */
export class IoClosedError extends IpvsError {
  static readonly code = 'IPVS_ERR_IO_CLOSED';
  constructor(what: string) {
    super(IoClosedError.code, 'EBADF', 'Bad file descriptor', `${what} is closed`);
    this.name = 'IoClosedError';
  }
}

/** Shape of the errors the addon throws (code = errno name). */
interface NativeErrno {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  message?: unknown;
}

/**
 * Maps an error thrown by the addon to a coded error: EPERM/EACCES to IoNotRootError, ENODEV/ENXIO
 * to IoNoInterfaceError (when `iface` is known), other errnos to IoSyscallError. Anything else
 * (type errors from bad arguments) is returned unchanged.
 */
export function fromNative(
  err: unknown,
  ctx: { iface?: string; netns?: string; capability?: string } = {},
): Error {
  const e = err as NativeErrno;
  if (typeof e?.code !== 'string' || typeof e.errno !== 'number') return err as Error;
  const syscall = typeof e.syscall === 'string' ? e.syscall : 'system call';
  if (e.code === 'EPERM' || e.code === 'EACCES') return new IoNotRootError(syscall, ctx.capability);
  if ((e.code === 'ENODEV' || e.code === 'ENXIO') && ctx.iface !== undefined) {
    return new IoNoInterfaceError(ctx.iface, ctx.netns);
  }
  const msg = typeof e.message === 'string' ? e.message.replace(/^[^:]*: /, '') : e.code;
  return new IoSyscallError(syscall, e.code, e.errno, msg);
}

/** A pcap input that cannot be read (bad magic, version, link type). */
export class IoPcapError extends IpvsError {
  static readonly code = 'IPVS_ERR_IO_PCAP';
  constructor(source: string, reason: string) {
    super(IoPcapError.code, 'EINVAL', 'Invalid argument', `${source}: ${reason}`);
    this.name = 'IoPcapError';
  }
}
