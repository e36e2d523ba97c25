/**
 * Coded errors of the packet data plane (`IPVS_ERR_PKT_*`): configuration problems of the
 * director's network model (interfaces, addresses, routes), the fwmark classifier and the trace
 * tool. The per-frame path never throws: bad frames get a verdict and a counted reason instead.
 */
import { IpvsError } from '../../core/errors.js';

/** An interface name that the network model does not know. */
export class PktNoInterfaceError extends IpvsError {
  static readonly code = 'IPVS_ERR_PKT_NO_INTERFACE';
  constructor(name: string) {
    super(
      PktNoInterfaceError.code,
      'ENODEV',
      'No such device',
      `packet engine: no interface named '${name}' in the network model`,
    );
    this.name = 'PktNoInterfaceError';
  }
}

/** A malformed interface, address, route or VIP definition. */
export class PktConfigError extends IpvsError {
  static readonly code = 'IPVS_ERR_PKT_CONFIG';
  constructor(detail: string) {
    super(
      PktConfigError.code,
      'EINVAL',
      'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      `packet engine: ${detail}`,
    );
    this.name = 'PktConfigError';
  }
}

/** A malformed fwmark classifier rule. */
export class PktRuleError extends IpvsError {
  static readonly code = 'IPVS_ERR_PKT_RULE';
  constructor(detail: string) {
    super(
      PktRuleError.code,
      'EINVAL',
      'Invalid operation.  Possibly wrong module version, address not unicast, ...',
      `fwmark rule: ${detail}`,
    );
    this.name = 'PktRuleError';
  }
}

/** A bounded table of the engine (neighbours, classifier rules, interfaces) is full. */
export class PktTableFullError extends IpvsError {
  static readonly code = 'IPVS_ERR_PKT_TABLE_FULL';
  constructor(detail: string) {
    super(
      PktTableFullError.code,
      'ENOMEM',
      'Memory allocation problem',
      `packet engine: ${detail}`,
    );
    this.name = 'PktTableFullError';
  }
}
