/**
 * The UDP "state machine" of IPVS (spec §4.2; kernel twin net/netfilter/ipvs/ip_vs_proto_udp.c):
 * one state, NORMAL, printed as 'UDP', with a 300 s timeout; never active, so UDP connections stay
 * in `inactconns` for life (spec §1.3.3, §13 item 4). Every packet may create a connection.
 * Marking the template ASSURED on an OUTPUT packet is the caller's job (spec §1.4, §4.2).
 */
import { IPPROTO_UDP } from '../core/constants.js';
import { defineProtoOps, type ProtoOps } from './common.js';

/** The only UDP state. */
export const UDP_S_NORMAL = 0;
/** Number of UDP states. */
export const UDP_S_LAST = 1;

/** The state after any UDP packet in any direction: always NORMAL (spec §4.2). */
export function udpNextState(_dir?: number, _state?: number): number {
  return UDP_S_NORMAL;
}

/** Whether a UDP packet that matched no connection may create one: always (spec §4.2, §13 item 3). */
export function udpMayOpen(): boolean {
  return true;
}

/** UDP protocol ops (spec §4.2). */
export const udp: ProtoOps = defineProtoOps({
  protocol: IPPROTO_UDP,
  name: 'UDP',
  stateNames: ['UDP'],
  defaultTimeouts: [300],
  active: [],
});
