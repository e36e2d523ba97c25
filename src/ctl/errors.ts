/**
 * Coded errors of the control plane itself (the socket protocol, the daemon, the state file), in
 * addition to core's configuration errors (`src/core/errors.ts`). Same shape: a stable `code`, an
 * errno name, and the text `ipvs adm` prints for it.
 */
import { IpvsError } from '../core/errors.js';

/** Defines a coded control-plane error class. */
function ctlError(code: string, errno: string, message: string) {
  return class extends IpvsError {
    static readonly code = code;
    constructor(detail?: string) {
      super(code, errno, detail ?? message, detail ?? message);
    }
  };
}

/** A control request that is not valid JSON, not an object, or not a known command shape. */
export const BadRequestError = ctlError(
  'IPVS_ERR_BAD_REQUEST',
  'EINVAL',
  'Malformed control request',
);
/** A control request longer than the daemon accepts (1 MiB by default). */
export const RequestTooLargeError = ctlError(
  'IPVS_ERR_REQUEST_TOO_LARGE',
  'EMSGSIZE',
  'Control request too large',
);
/** An unexpected failure inside the daemon while executing a command (a bug; state unchanged). */
export const InternalError = ctlError('IPVS_ERR_INTERNAL', 'EIO', 'Internal error in the daemon');
/** No daemon answers on the control socket. */
export const NoDaemonSocketError = ctlError(
  'IPVS_ERR_NO_DAEMON_SOCKET',
  'ECONNREFUSED',
  'No ipvs-ts daemon is listening on the control socket',
);
/** Another daemon already serves the control socket. */
export const SocketInUseError = ctlError(
  'IPVS_ERR_SOCKET_IN_USE',
  'EADDRINUSE',
  'Another ipvs-ts daemon is already listening on the control socket',
);
/** The state file or rules file could not be read, parsed or written. */
export const StateFileError = ctlError(
  'IPVS_ERR_STATE_FILE',
  'EIO',
  'Cannot read or write the state file',
);
/** The daemon was asked for a data plane it does not have. */
export const UnknownDataplaneError = ctlError(
  'IPVS_ERR_UNKNOWN_DATAPLANE',
  'EINVAL',
  'Unknown data plane',
);
/** The connection to the daemon closed before it answered. */
export const ConnectionLostError = ctlError(
  'IPVS_ERR_CONNECTION_LOST',
  'ECONNRESET',
  'The daemon closed the control connection',
);

/**
 * An option this build recognises but cannot honour yet. No option uses it at present (`ipvs
 * daemon --http` did until the HTTP listener came); the code keeps its meaning.
 */
export const NotAvailableError = ctlError(
  'IPVS_ERR_NOT_AVAILABLE',
  'EOPNOTSUPP',
  'Not available in this build',
);
/** The control socket's directory can be changed by another user, so the socket could be swapped. */
export const SocketDirError = ctlError(
  'IPVS_ERR_SOCKET_DIR',
  'EPERM',
  "The control socket's directory is not safe",
);

/** `ipvs daemon --http` with a value that is not HOST:PORT (port 0..65535). */
export const HttpAddressError = ctlError(
  'IPVS_ERR_HTTP_ADDRESS',
  'EINVAL',
  'The --http address is not HOST:PORT',
);
/** The HTTP listener could not bind its address (in use, not an address of this host, …). */
export const HttpListenError = ctlError(
  'IPVS_ERR_HTTP_LISTEN',
  'EADDRINUSE',
  'Cannot listen on the --http address',
);

/** Every control-plane error class, for documentation checks. */
export const CTL_ERRORS = [
  BadRequestError,
  RequestTooLargeError,
  InternalError,
  NoDaemonSocketError,
  SocketInUseError,
  StateFileError,
  UnknownDataplaneError,
  ConnectionLostError,
  NotAvailableError,
  SocketDirError,
  HttpAddressError,
  HttpListenError,
] as const;

/** A coded error as it crosses the control socket. */
export interface WireError {
  code: string;
  errno: string;
  message: string;
  ipvsadmMessage: string;
}

/** Converts anything thrown into the wire form; non-coded errors become IPVS_ERR_INTERNAL. */
export function toWireError(e: unknown): WireError {
  if (e instanceof IpvsError) {
    return { code: e.code, errno: e.errno, message: e.message, ipvsadmMessage: e.ipvsadmMessage };
  }
  const err = new InternalError(`Internal error in the daemon: ${describe(e)}`);
  return { code: err.code, errno: err.errno, message: err.message, ipvsadmMessage: err.message };
}

/** Rebuilds a coded error received from the daemon. */
export function fromWireError(w: WireError): IpvsError {
  return new IpvsError(
    String(w.code),
    String(w.errno),
    String(w.ipvsadmMessage ?? w.message),
    String(w.message),
  );
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
