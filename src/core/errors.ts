/**
 * Coded errors. Every failure of a configuration operation is one of these classes: a stable
 * `code` (IPVS_ERR_*, never reused), the errno the kernel would return, and the exact message
 * ipvsadm prints for that case (spec §1.7, §10.8). Callers match on `err.code`.
 */

/** Base class of every coded error in ipvs-ts. */
export class IpvsError extends Error {
  /** Stable identifier, `IPVS_ERR_*`. */
  readonly code: string;
  /** The errno name the kernel returns for this condition (EEXIST, ESRCH, …). */
  readonly errno: string;
  /** What ipvsadm prints for this condition (spec §10.8). */
  readonly ipvsadmMessage: string;

  constructor(code: string, errno: string, ipvsadmMessage: string, message?: string) {
    super(message ?? ipvsadmMessage);
    this.name = 'IpvsError';
    this.code = code;
    this.errno = errno;
    this.ipvsadmMessage = ipvsadmMessage;
  }
}

type Detail = string | undefined;

/** Defines a coded error class with a fixed code, errno and ipvsadm message. */
function coded(code: string, errno: string, ipvsadmMessage: string) {
  return class extends IpvsError {
    static readonly code = code;
    constructor(detail?: Detail) {
      super(code, errno, ipvsadmMessage, detail ?? ipvsadmMessage);
    }
  };
}

const EINVAL_MSG = 'Invalid operation.  Possibly wrong module version, address not unicast, ...';

/** Adding a service whose identity exists already. */
export const ServiceExistsError = coded(
  'IPVS_ERR_SERVICE_EXISTS',
  'EEXIST',
  'Service already exists',
);
/** Editing, deleting, zeroing or listing a service that does not exist. */
export const NoSuchServiceError = coded('IPVS_ERR_NO_SERVICE', 'ESRCH', 'No such service');
/** A destination operation names a service that does not exist. */
export const ServiceNotDefinedError = coded(
  'IPVS_ERR_SERVICE_NOT_DEFINED',
  'ESRCH',
  'Service not defined',
);
/** Unknown scheduler name. */
export const NoSchedulerError = coded(
  'IPVS_ERR_NO_SCHEDULER',
  'ENOENT',
  'Scheduler or persistence engine not found',
);
/** Unknown persistence engine name. */
export const NoPeError = coded(
  'IPVS_ERR_NO_PE',
  'ENOENT',
  'Scheduler or persistence engine not found',
);
/** Adding a destination that exists already in the service. */
export const DestExistsError = coded(
  'IPVS_ERR_DEST_EXISTS',
  'EEXIST',
  'Destination already exists',
);
/** Editing or deleting a destination that does not exist. */
export const NoSuchDestError = coded('IPVS_ERR_NO_DEST', 'ENOENT', 'No such destination');
/** A negative weight, or a lower threshold above the upper one. */
export const RangeError_ = coded('IPVS_ERR_RANGE', 'ERANGE', 'Numerical result out of range');
/** Any argument the kernel refuses with EINVAL. */
export const InvalidError = coded('IPVS_ERR_INVALID', 'EINVAL', EINVAL_MSG);
/** A destination family the service cannot take. */
export const AfNotSupportedError = coded(
  'IPVS_ERR_AF_NOT_SUPPORTED',
  'EAFNOSUPPORT',
  'Operation not supported with specified address family',
);
/** Starting a sync daemon role that already runs. */
export const DaemonRunningError = coded(
  'IPVS_ERR_DAEMON_RUNNING',
  'EEXIST',
  'Daemon has already run',
);
/** Stopping a sync daemon role that does not run. */
export const NoDaemonError = coded('IPVS_ERR_NO_DAEMON', 'ESRCH', 'No daemon is running');
/** A network interface that does not exist. */
export const NoDeviceError = coded('IPVS_ERR_NO_DEVICE', 'ENODEV', 'No such device');
/** The connection table (or another bounded table) is full. */
export const TableFullError = coded('IPVS_ERR_TABLE_FULL', 'ENOMEM', 'Memory allocation problem');
/** The caller may not change state. */
export const PermissionError = coded(
  'IPVS_ERR_PERMISSION',
  'EPERM',
  'Permission denied (you must be root)',
);
/** A scheduler registered with an empty or duplicate name. */
export const SchedRegistryError = coded('IPVS_ERR_SCHED_REGISTRY', 'EINVAL', EINVAL_MSG);
/** A sysctl written with a value outside its range. */
export const SysctlError = coded('IPVS_ERR_SYSCTL', 'EINVAL', EINVAL_MSG);
/** A sysctl name that does not exist. */
export const NoSysctlError = coded('IPVS_ERR_NO_SYSCTL', 'ENOENT', 'No such file or directory');

/**
 * The sync daemon's sockets could not be made (bind, join, connect): the errno the socket call
 * failed with, and its strerror text, which is what ipvsadm prints for an errno it has no message
 * for. Not in ALL_ERRORS: its errno varies.
 */
export class SyncSocketError extends IpvsError {
  static readonly code = 'IPVS_ERR_SYNC_SOCKET';
  constructor(errno: string, strerrorText: string, detail?: Detail) {
    super('IPVS_ERR_SYNC_SOCKET', errno, strerrorText, detail ?? strerrorText);
  }
}
/**
 * A sync backup on an interface without an IPv4 address: Node joins an IPv4 group by the
 * interface's address, so there is nothing to join with (EADDRNOTAVAIL). Not in ALL_ERRORS, so
 * ipvsadm prints its strerror text.
 */
export class SyncNoAddressError extends IpvsError {
  static readonly code = 'IPVS_ERR_SYNC_NO_ADDRESS';
  constructor(detail?: Detail) {
    super(
      'IPVS_ERR_SYNC_NO_ADDRESS',
      'EADDRNOTAVAIL',
      'Cannot assign requested address',
      detail ?? 'Cannot assign requested address',
    );
  }
}

/** Every error class, for documentation checks. */
export const ALL_ERRORS = [
  ServiceExistsError,
  NoSuchServiceError,
  ServiceNotDefinedError,
  NoSchedulerError,
  NoPeError,
  DestExistsError,
  NoSuchDestError,
  RangeError_,
  InvalidError,
  AfNotSupportedError,
  DaemonRunningError,
  NoDaemonError,
  NoDeviceError,
  TableFullError,
  PermissionError,
  SchedRegistryError,
  SysctlError,
  NoSysctlError,
] as const;

/** Throws InvalidError unless `v` is an integer in [min, max]. */
export function validateInt(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidError(`${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}
