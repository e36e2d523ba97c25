/**
 * libipvs's ipvs_strerror (spec §10.8): the message ipvsadm prints for a failed kernel call depends
 * on the operation and the errno; anything not in its table falls back to strerror().
 */

/** The libipvs operations that have operation-specific messages. */
export type AdmOp =
  | 'addService'
  | 'updateService'
  | 'delService'
  | 'zeroService'
  | 'addDest'
  | 'updateDest'
  | 'delDest'
  | 'startDaemon'
  | 'stopDaemon'
  | 'getServices'
  | 'getDests'
  | 'getService'
  | 'flush'
  | 'setTimeout'
  | 'other';

const TABLE: ReadonlyArray<[AdmOp | null, string, string]> = [
  ['addService', 'EEXIST', 'Service already exists'],
  ['addService', 'ENOENT', 'Scheduler or persistence engine not found'],
  ['updateService', 'ESRCH', 'No such service'],
  ['updateService', 'ENOENT', 'Scheduler or persistence engine not found'],
  ['delService', 'ESRCH', 'No such service'],
  ['zeroService', 'ESRCH', 'No such service'],
  ['addDest', 'ESRCH', 'Service not defined'],
  ['addDest', 'EEXIST', 'Destination already exists'],
  ['updateDest', 'ESRCH', 'Service not defined'],
  ['updateDest', 'ENOENT', 'No such destination'],
  ['delDest', 'ESRCH', 'Service not defined'],
  ['delDest', 'ENOENT', 'No such destination'],
  ['startDaemon', 'EEXIST', 'Daemon has already run'],
  ['stopDaemon', 'ESRCH', 'No daemon is running'],
  ['getServices', 'ESRCH', 'No such service'],
  ['getDests', 'ESRCH', 'No such service'],
  ['getService', 'ESRCH', 'No such service'],
  [null, 'EPERM', 'Permission denied (you must be root)'],
  [null, 'EINVAL', 'Invalid operation.  Possibly wrong module version, address not unicast, ...'],
  [null, 'ENOPROTOOPT', 'Protocol not available'],
  [null, 'ENOMEM', 'Memory allocation problem'],
  [null, 'EOPNOTSUPP', 'Operation not supported with IPv6'],
  [null, 'EAFNOSUPPORT', 'Operation not supported with specified address family'],
  [null, 'EMSGSIZE', 'Module is wrong version'],
];

/** glibc strerror() texts for the errno names IPVS returns. */
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EIO: 'Input/output error',
  ENOMEM: 'Cannot allocate memory',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  EINVAL: 'Invalid argument',
  ERANGE: 'Numerical result out of range',
  ENOPROTOOPT: 'Protocol not available',
  EOPNOTSUPP: 'Operation not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EMSGSIZE: 'Message too long',
  ECONNREFUSED: 'Connection refused',
  ECONNRESET: 'Connection reset by peer',
  EADDRINUSE: 'Address already in use',
};

/** glibc strerror() for an errno name. */
export function strerror(errno: string): string {
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

/** ipvs_strerror for the operation that failed. */
export function ipvsStrerror(op: AdmOp, errno: string): string {
  for (const [f, e, msg] of TABLE) if ((f === null || f === op) && e === errno) return msg;
  return strerror(errno);
}
