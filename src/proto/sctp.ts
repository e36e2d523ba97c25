/**
 * The SCTP state machine of IPVS (spec §4.3; kernel twin net/netfilter/ipvs/ip_vs_proto_sctp.c,
 * current mainline state set): states, names, default timeouts, the event raised by a packet's
 * first chunk (and an ABORT bundled right after COOKIE_ECHO / COOKIE_ACK), the INPUT, OUTPUT and
 * INPUT_ONLY transition tables, and the "may this packet open a connection" rule.
 *
 * As for TCP, the caller resolves the direction (INPUT_ONLY while NOOUTPUT is set) and applies the
 * effects of a transition: counter moves (active ⇔ ESTABLISHED), ASSURED marking, timeout.
 */
import { IPPROTO_SCTP } from '../core/constants.js';
import {
  DIR_INPUT,
  DIR_INPUT_ONLY,
  DIR_LAST,
  DIR_OUTPUT,
  defineProtoOps,
  type ProtoOps,
} from './common.js';

/** SCTP connection states, in the spec's order (spec §4.3). */
export const SCTP_S_NONE = 0;
/** First client INIT seen, waiting for the server's INIT_ACK. */
export const SCTP_S_INIT1 = 1;
/** A further client INIT seen, waiting for the server's INIT_ACK. */
export const SCTP_S_INIT = 2;
/** Server INIT_ACK seen, waiting for the client's COOKIE_ECHO. */
export const SCTP_S_COOKIE_SENT = 3;
/** Client COOKIE_ECHO seen, waiting for the server's COOKIE_ACK. */
export const SCTP_S_COOKIE_REPLIED = 4;
/** Server-initiated INIT seen, waiting for the client's INIT_ACK. */
export const SCTP_S_COOKIE_WAIT = 5;
/** Client INIT_ACK seen, waiting for the server's COOKIE_ECHO. */
export const SCTP_S_COOKIE = 6;
/** Server COOKIE_ECHO seen, waiting for the client's COOKIE_ACK. */
export const SCTP_S_COOKIE_ECHOED = 7;
export const SCTP_S_ESTABLISHED = 8;
export const SCTP_S_SHUTDOWN_SENT = 9;
export const SCTP_S_SHUTDOWN_RECEIVED = 10;
export const SCTP_S_SHUTDOWN_ACK_SENT = 11;
/** An INIT answered by ABORT: short timeout. */
export const SCTP_S_REJECTED = 12;
export const SCTP_S_CLOSED = 13;
/** Number of SCTP states. */
export const SCTP_S_LAST = 14;

/** SCTP chunk types (RFC 9260 §3.2). */
export const SCTP_CID_DATA = 0;
export const SCTP_CID_INIT = 1;
export const SCTP_CID_INIT_ACK = 2;
export const SCTP_CID_SACK = 3;
export const SCTP_CID_HEARTBEAT = 4;
export const SCTP_CID_HEARTBEAT_ACK = 5;
export const SCTP_CID_ABORT = 6;
export const SCTP_CID_SHUTDOWN = 7;
export const SCTP_CID_SHUTDOWN_ACK = 8;
export const SCTP_CID_ERROR = 9;
export const SCTP_CID_COOKIE_ECHO = 10;
export const SCTP_CID_COOKIE_ACK = 11;
export const SCTP_CID_ECNE = 12;
export const SCTP_CID_CWR = 13;
export const SCTP_CID_SHUTDOWN_COMPLETE = 14;

/** Transition events, the second index of the tables (spec §4.3: d i i_a c_e c_a s s_a s_c err ab). */
export const SCTP_EV_DATA = 0;
export const SCTP_EV_INIT = 1;
export const SCTP_EV_INIT_ACK = 2;
export const SCTP_EV_COOKIE_ECHO = 3;
export const SCTP_EV_COOKIE_ACK = 4;
export const SCTP_EV_SHUTDOWN = 5;
export const SCTP_EV_SHUTDOWN_ACK = 6;
export const SCTP_EV_SHUTDOWN_COMPLETE = 7;
export const SCTP_EV_ERROR = 8;
export const SCTP_EV_ABORT = 9;
/** Number of SCTP events. */
export const SCTP_EV_LAST = 10;
/** No event: a packet without a chunk leaves the connection as it is (set_sctp_state). */
export const SCTP_EV_NONE = -1;

/** Event of each known chunk type, indexed by type; any other type is DATA (spec §4.3). */
const CHUNK_EVENT = Uint8Array.from([
  SCTP_EV_DATA, // DATA
  SCTP_EV_INIT, // INIT
  SCTP_EV_INIT_ACK, // INIT_ACK
  SCTP_EV_DATA, // SACK
  SCTP_EV_DATA, // HEARTBEAT
  SCTP_EV_DATA, // HEARTBEAT_ACK
  SCTP_EV_ABORT, // ABORT
  SCTP_EV_SHUTDOWN, // SHUTDOWN
  SCTP_EV_SHUTDOWN_ACK, // SHUTDOWN_ACK
  SCTP_EV_ERROR, // ERROR
  SCTP_EV_COOKIE_ECHO, // COOKIE_ECHO
  SCTP_EV_COOKIE_ACK, // COOKIE_ACK
  SCTP_EV_DATA, // ECNE
  SCTP_EV_DATA, // CWR
  SCTP_EV_SHUTDOWN_COMPLETE, // SHUTDOWN_COMPLETE
]);

/**
 * The event a packet raises, from the type of its first chunk and of the chunk after it
 * (`nextChunkType` = -1 when there is none or it could not be read). A COOKIE_ECHO or COOKIE_ACK
 * followed by ABORT raises ABORT; unknown types raise DATA (spec §4.3); a packet without a chunk
 * (`firstChunkType` = -1) raises none.
 */
export function sctpEvent(firstChunkType: number, nextChunkType: number): number {
  if (firstChunkType < 0) return SCTP_EV_NONE;
  if (
    nextChunkType === SCTP_CID_ABORT &&
    (firstChunkType === SCTP_CID_COOKIE_ECHO || firstChunkType === SCTP_CID_COOKIE_ACK)
  ) {
    return SCTP_EV_ABORT;
  }
  return firstChunkType >>> 0 === firstChunkType && firstChunkType < CHUNK_EVENT.length
    ? CHUNK_EVENT[firstChunkType]!
    : SCTP_EV_DATA;
}

// Short aliases so the tables below read like the spec's grids. No transition leads back to
// NONE, so sNO is only a column label.
const sI1 = SCTP_S_INIT1;
const sIN = SCTP_S_INIT;
const sCS = SCTP_S_COOKIE_SENT;
const sCR = SCTP_S_COOKIE_REPLIED;
const sCW = SCTP_S_COOKIE_WAIT;
const sCO = SCTP_S_COOKIE;
const sCE = SCTP_S_COOKIE_ECHOED;
const sES = SCTP_S_ESTABLISHED;
const sSS = SCTP_S_SHUTDOWN_SENT;
const sSR = SCTP_S_SHUTDOWN_RECEIVED;
const sSA = SCTP_S_SHUTDOWN_ACK_SENT;
const sRJ = SCTP_S_REJECTED;
const sCL = SCTP_S_CLOSED;

/** Transition tables, `new = T[dir][event][current]` (spec §4.3 "Transition tables"). */
// prettier-ignore
const GRID: readonly (readonly number[])[] = [
  //                    sNO  sI1  sIN  sCS  sCR  sCW  sCO  sCE  sES  sSS  sSR  sSA  sRJ  sCL
  /* INPUT      d   */ [sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            i   */ [sI1, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN],
  /*            i_a */ [sCW, sCW, sCW, sCS, sCR, sCO, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            c_e */ [sCR, sIN, sIN, sCR, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            c_a */ [sES, sI1, sIN, sCS, sCR, sCW, sCO, sES, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            s   */ [sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL],
  /*            s_a */ [sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sCL, sSR, sCL, sRJ, sCL],
  /*            s_c */ [sCL, sCL, sCL, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sCL, sRJ, sCL],
  /*            err */ [sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCL, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            ab  */ [sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
  /* OUTPUT     d   */ [sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            i   */ [sCW, sCW, sCW, sCW, sCW, sCW, sCW, sCW, sES, sCW, sCW, sCW, sCW, sCW],
  /*            i_a */ [sCS, sCS, sCS, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            c_e */ [sCE, sCE, sCE, sCE, sCE, sCE, sCE, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            c_a */ [sES, sES, sES, sES, sES, sES, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            s   */ [sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSR, sSA, sRJ, sCL],
  /*            s_a */ [sSA, sSA, sSA, sSA, sSA, sCW, sCO, sCE, sES, sSA, sSA, sSA, sRJ, sCL],
  /*            s_c */ [sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            err */ [sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            ab  */ [sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
  /* INPUT_ONLY d   */ [sES, sI1, sIN, sCS, sCR, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            i   */ [sI1, sIN, sIN, sIN, sIN, sIN, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN],
  /*            i_a */ [sCE, sCE, sCE, sCE, sCE, sCE, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            c_e */ [sES, sES, sES, sES, sES, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            c_a */ [sES, sI1, sIN, sES, sES, sCW, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            s   */ [sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL],
  /*            s_a */ [sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sCL, sCL, sSR, sCL, sRJ, sCL],
  /*            s_c */ [sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sCL, sCL, sRJ, sCL],
  /*            err */ [sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL],
  /*            ab  */ [sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
];

// The grid is ordered by direction constant; make the assumption explicit.
if (DIR_INPUT !== 0 || DIR_OUTPUT !== 1 || DIR_INPUT_ONLY !== 2) {
  throw new Error('sctp: direction constants changed; reorder the grid');
}

/** `TABLE[(dir * SCTP_EV_LAST + event) * SCTP_S_LAST + state]`. */
const TABLE = ((): Uint8Array => {
  if (GRID.length !== DIR_LAST * SCTP_EV_LAST) throw new Error(`sctp: ${GRID.length} rows`);
  const t = new Uint8Array(DIR_LAST * SCTP_EV_LAST * SCTP_S_LAST);
  GRID.forEach((row, r) => {
    if (row.length !== SCTP_S_LAST) throw new Error(`sctp: row ${r} has ${row.length} cells`);
    t.set(row, r * SCTP_S_LAST);
  });
  return t;
})();

/**
 * The state after an `event` (from `sctpEvent`) arrives in direction `dir` (INPUT / OUTPUT /
 * INPUT_ONLY, already resolved) while the connection is in `state` (spec §4.3). Out-of-range
 * arguments, which the kernel never produces, give CLOSED.
 */
export function sctpNextState(dir: number, event: number, state: number): number {
  if (
    dir >>> 0 !== dir ||
    dir >= DIR_LAST ||
    event >>> 0 !== event ||
    event >= SCTP_EV_LAST ||
    state >>> 0 !== state ||
    state >= SCTP_S_LAST
  ) {
    return SCTP_S_CLOSED;
  }
  return TABLE[(dir * SCTP_EV_LAST + event) * SCTP_S_LAST + state]!;
}

/**
 * Whether a packet that matched no connection may create one (spec §4.3, §13 item 3): a first
 * chunk INIT yes, ABORT never, anything else only when `sloppy` (sysctl sloppy_sctp).
 */
export function sctpMayOpen(firstChunkType: number, sloppy: boolean): boolean {
  if (firstChunkType === SCTP_CID_ABORT) return false;
  return firstChunkType === SCTP_CID_INIT || sloppy;
}

/** SCTP protocol ops: names, default timeouts (s), only ESTABLISHED active (spec §4.3). */
export const sctp: ProtoOps = defineProtoOps({
  protocol: IPPROTO_SCTP,
  name: 'SCTP',
  // prettier-ignore
  stateNames: [
    'NONE', 'INIT1', 'INIT', 'C-SENT', 'C-REPLIED', 'C-WAIT', 'COOKIE',
    'C-ECHOED', 'ESTABLISHED', 'S-SENT', 'S-RECEIVED', 'S-ACK-SENT', 'REJECTED', 'CLOSED',
  ],
  defaultTimeouts: [2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61],
  active: [SCTP_S_ESTABLISHED],
});
