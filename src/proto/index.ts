/**
 * The protocol state machines of IPVS (spec §4): TCP, UDP and SCTP as pure data and functions,
 * and `protoOps()` to find one by IP protocol number. AH/ESP have no state machine (spec §4.4)
 * and are not listed here.
 */
import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../core/constants.js';
import type { ProtoOps } from './common.js';
import { sctp } from './sctp.js';
import { tcp } from './tcp.js';
import { udp } from './udp.js';

export * from './common.js';
export * from './sctp.js';
export * from './tcp.js';
export * from './udp.js';

/** The ops of protocol 6 (TCP), 17 (UDP) or 132 (SCTP); undefined for any other protocol. */
export function protoOps(protocol: number): ProtoOps | undefined {
  switch (protocol) {
    case IPPROTO_TCP:
      return tcp;
    case IPPROTO_UDP:
      return udp;
    case IPPROTO_SCTP:
      return sctp;
    default:
      return undefined;
  }
}
