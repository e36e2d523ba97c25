/**
 * Coded errors of the proxy data plane (spec §1.7 style): a stable `IPVS_ERR_PROXY_*` code, the
 * errno the condition maps to, and the text `ipvs adm` prints. A command the proxy plane cannot
 * carry out is refused before core applies it, so nothing is half-applied.
 */
import { IpvsError } from '../../core/errors.js';

/** Defines a coded proxy-plane error class. */
function proxyError(code: string, errno: string, message: string) {
  return class extends IpvsError {
    static readonly code = code;
    constructor(detail?: string) {
      super(code, errno, detail ?? message, detail ?? message);
    }
  };
}

/** A forwarding method other than Masq (DR, tunnel, local): it needs raw packets. */
export const ProxyForwardingError = proxyError(
  'IPVS_ERR_PROXY_FORWARDING',
  'EOPNOTSUPP',
  'The proxy data plane forwards only with masquerading (-m); direct routing and tunnelling need the packet data plane (ipvs daemon --dataplane packet)',
);
/** A fwmark service: marks exist only on raw packets. */
export const ProxyFwmarkError = proxyError(
  'IPVS_ERR_PROXY_FWMARK',
  'EOPNOTSUPP',
  'The proxy data plane cannot match firewall marks; fwmark services need the packet data plane (ipvs daemon --dataplane packet)',
);
/** A protocol the proxy cannot carry (SCTP) or a port-0 (all ports) service. */
export const ProxyServiceError = proxyError(
  'IPVS_ERR_PROXY_SERVICE',
  'EOPNOTSUPP',
  'The proxy data plane serves TCP and UDP services on one port; SCTP and port-0 services need the packet data plane (ipvs daemon --dataplane packet)',
);
/**
 * The VIP:port of a service could not be bound (address not local, port in use, permission); the
 * errno is the operating system's (EADDRINUSE, EADDRNOTAVAIL, EACCES, …).
 */
export class ProxyBindError extends IpvsError {
  static readonly code = 'IPVS_ERR_PROXY_BIND';
  constructor(detail?: string, errno = 'EADDRNOTAVAIL') {
    const msg = detail ?? 'Cannot listen on the virtual address';
    super('IPVS_ERR_PROXY_BIND', errno, msg, msg);
  }
}
/** A bad value for the `proxy-protocol` extension option. */
export const ProxyOptionError = proxyError(
  'IPVS_ERR_PROXY_OPTION',
  'EINVAL',
  "Invalid proxy data plane option (--proxy-protocol takes 'v1' or 'v2'; UDP takes only 'v2')",
);

/** Every proxy-plane error class, for documentation checks. */
export const PROXY_ERRORS = [
  ProxyForwardingError,
  ProxyFwmarkError,
  ProxyServiceError,
  ProxyBindError,
  ProxyOptionError,
] as const;
