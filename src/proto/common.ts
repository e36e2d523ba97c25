/**
 * What the protocol state machines share (spec §4): the three packet directions, the `ProtoOps`
 * shape every protocol exposes to the core (names, default timeouts, "active" classification), and
 * the two states of persistence templates (spec §1.4). The kernel's counterpart is
 * `struct ip_vs_protocol` in include/net/ip_vs.h, minus everything that touches packets.
 *
 * Everything here is pure data and allocation-free functions.
 */

/** Client → server packet, seen by the incoming handler (spec §4.1 "Direction"). */
export const DIR_INPUT = 0;
/** Server → client packet, seen by the outgoing handler (NAT only in practice). */
export const DIR_OUTPUT = 1;
/** Client → server packet on a connection that still has NOOUTPUT set (DR / TUN). */
export const DIR_INPUT_ONLY = 2;
/** Number of directions: the size of the first index of every transition table. */
export const DIR_LAST = 3;

/** A protocol's state machine as the core and the listings see it (spec §4). */
export interface ProtoOps {
  /** IP protocol number (6, 17, 132). */
  readonly protocol: number;
  /** Protocol name as listings print it ('TCP', 'UDP', 'SCTP'). */
  readonly name: string;
  /** Number of states; valid states are `0 … numStates - 1`. */
  readonly numStates: number;
  /** State names as listings print them, indexed by state. */
  readonly stateNames: readonly string[];
  /** Default idle timeout of each state, in seconds, indexed by state. */
  readonly defaultTimeouts: readonly number[];
  /** Whether a connection in `state` counts in `activeconns` (otherwise `inactconns`). */
  isActive(state: number): boolean;
  /** State name, 'ERR!' when out of range. */
  stateName(state: number): string;
}

/** Template state: not (yet) confirmed by an established child (spec §1.4). */
export const TEMPLATE_STATE_NONE = 0;
/** Template state: a child reached ESTABLISHED (TCP/SCTP) or saw a reply (UDP) (spec §1.4). */
export const TEMPLATE_STATE_ASSURED = 1;

const TEMPLATE_STATE_NAMES: readonly string[] = Object.freeze(['NONE', 'ASSURED']);

/** Name of a persistence template's state: 'NONE' or 'ASSURED' ('ERR!' when out of range, as the kernel prints). */
export function templateStateName(s: number): string {
  return isIndex(s, TEMPLATE_STATE_NAMES.length) ? TEMPLATE_STATE_NAMES[s]! : 'ERR!';
}

/** True when `i` is an integer in `[0, n)`. */
export function isIndex(i: number, n: number): boolean {
  return i >>> 0 === i && i < n;
}

/**
 * Builds a frozen `ProtoOps` from its tables; `active` lists the states that count as active.
 * Throws (at module load, never per packet) when the tables disagree in length.
 */
export function defineProtoOps(def: {
  protocol: number;
  name: string;
  stateNames: readonly string[];
  defaultTimeouts: readonly number[];
  active: readonly number[];
}): ProtoOps {
  const n = def.stateNames.length;
  if (n === 0 || def.defaultTimeouts.length !== n) {
    throw new RangeError(
      `${def.name}: ${n} state names but ${def.defaultTimeouts.length} timeouts`,
    );
  }
  const activeTable = new Uint8Array(n);
  for (const s of def.active) {
    if (!isIndex(s, n)) throw new RangeError(`${def.name}: active state ${s} out of range`);
    activeTable[s] = 1;
  }
  const stateNames = Object.freeze([...def.stateNames]);
  return Object.freeze({
    protocol: def.protocol,
    name: def.name,
    numStates: n,
    stateNames,
    defaultTimeouts: Object.freeze([...def.defaultTimeouts]),
    isActive: (state: number): boolean => isIndex(state, n) && activeTable[state] === 1,
    stateName: (state: number): string => (isIndex(state, n) ? stateNames[state]! : 'ERR!'),
  });
}
