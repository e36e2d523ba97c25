/**
 * The TCP state machine of IPVS (spec §4.1; kernel twin net/netfilter/ipvs/ip_vs_proto_tcp.c):
 * states, default timeouts, which states count as active, event extraction from the header flags,
 * the normal and the secure_tcp ("DoS") transition tables, and the "may this segment open a
 * connection" rule.
 *
 * The caller resolves the direction before asking for a transition: INPUT for client packets,
 * OUTPUT for server packets (and clears NOOUTPUT when one arrives), INPUT_ONLY instead of INPUT
 * while the connection has NOOUTPUT (spec §4.1 "Direction", §13 item 2). Counter moves, the
 * ASSURED marking of the template on entering ESTABLISHED and the timeout assignment stay with the
 * caller (spec §4.1 "Effects of a transition").
 */
import { IPPROTO_TCP } from '../core/constants.js';
import {
  DIR_INPUT,
  DIR_INPUT_ONLY,
  DIR_LAST,
  DIR_OUTPUT,
  defineProtoOps,
  type ProtoOps,
} from './common.js';

/** TCP connection states (spec §4.1 table "States, default timeouts …"). */
export const TCP_S_NONE = 0;
export const TCP_S_ESTABLISHED = 1;
export const TCP_S_SYN_SENT = 2;
export const TCP_S_SYN_RECV = 3;
export const TCP_S_FIN_WAIT = 4;
export const TCP_S_TIME_WAIT = 5;
export const TCP_S_CLOSE = 6;
export const TCP_S_CLOSE_WAIT = 7;
export const TCP_S_LAST_ACK = 8;
export const TCP_S_LISTEN = 9;
export const TCP_S_SYNACK = 10;
/** Number of TCP states. */
export const TCP_S_LAST = 11;

/** TCP header flag bits (byte 13 of the header, RFC 9293 §3.1). */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;

/** Transition events, the second index of the tables (spec §4.1 "Event extraction"). */
export const TCP_EV_SYN = 0;
export const TCP_EV_FIN = 1;
export const TCP_EV_ACK = 2;
export const TCP_EV_RST = 3;
/** Number of TCP events. */
export const TCP_EV_LAST = 4;

/** The event a segment with `flags` raises: RST > SYN > FIN > ACK; -1 when none is set. */
export function tcpEvent(flags: number): number {
  if (flags & TCP_RST) return TCP_EV_RST;
  if (flags & TCP_SYN) return TCP_EV_SYN;
  if (flags & TCP_FIN) return TCP_EV_FIN;
  if (flags & TCP_ACK) return TCP_EV_ACK;
  return -1;
}

// Short aliases so the tables below read like the spec's grids. No transition leads back to
// NONE, so sNO is only a column label.
const sES = TCP_S_ESTABLISHED;
const sSS = TCP_S_SYN_SENT;
const sSR = TCP_S_SYN_RECV;
const sFW = TCP_S_FIN_WAIT;
const sTW = TCP_S_TIME_WAIT;
const sCL = TCP_S_CLOSE;
const sCW = TCP_S_CLOSE_WAIT;
const sLA = TCP_S_LAST_ACK;
const sLI = TCP_S_LISTEN;
const sSA = TCP_S_SYNACK;

/** Normal transition table, `new = T[dir][event][current]` (spec §4.1 "Normal transition table"). */
// prettier-ignore
const NORMAL_GRID: readonly (readonly number[])[] = [
  //                    sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
  /* INPUT      syn */ [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
  /*            fin */ [sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW],
  /*            ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
  /*            rst */ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR],
  /* OUTPUT     syn */ [sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR],
  /*            fin */ [sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW],
  /*            ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES],
  /*            rst */ [sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL],
  /* INPUT_ONLY syn */ [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
  /*            fin */ [sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW],
  /*            ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
  /*            rst */ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL],
];

/**
 * secure_tcp ("DoS") table (spec §4.1 "secure_tcp table"): a NAT connection in SYN_RECV moves to
 * SYNACK only on the server's SYN+ACK, and from SYNACK to ESTABLISHED only on a server (OUTPUT)
 * ACK; client (INPUT) ACKs leave both states unchanged. INPUT_ONLY (DR/TUN) SYNs go to SYNACK.
 */
// prettier-ignore
const SECURE_GRID: readonly (readonly number[])[] = [
  //                    sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
  /* INPUT      syn */ [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA],
  /*            fin */ [sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA],
  /*            ack */ [sES, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA],
  /*            rst */ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL],
  /* OUTPUT     syn */ [sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA],
  /*            fin */ [sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW],
  /*            ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES],
  /*            rst */ [sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL],
  /* INPUT_ONLY syn */ [sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA],
  /*            fin */ [sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW],
  /*            ack */ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
  /*            rst */ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL],
];

// The grids are ordered by direction constant; make the assumption explicit.
if (DIR_INPUT !== 0 || DIR_OUTPUT !== 1 || DIR_INPUT_ONLY !== 2) {
  throw new Error('tcp: direction constants changed; reorder the grids');
}

/** Flattens a grid into `Uint8Array[(dir * TCP_EV_LAST + event) * TCP_S_LAST + state]`. */
function flatten(name: string, grid: readonly (readonly number[])[]): Uint8Array {
  if (grid.length !== DIR_LAST * TCP_EV_LAST) throw new Error(`tcp ${name}: ${grid.length} rows`);
  const t = new Uint8Array(DIR_LAST * TCP_EV_LAST * TCP_S_LAST);
  grid.forEach((row, r) => {
    if (row.length !== TCP_S_LAST) throw new Error(`tcp ${name}: row ${r} has ${row.length} cells`);
    t.set(row, r * TCP_S_LAST);
  });
  return t;
}

const NORMAL = flatten('normal', NORMAL_GRID);
const SECURE = flatten('secure', SECURE_GRID);

/**
 * The state after a segment with TCP `flags` arrives in direction `dir` (INPUT / OUTPUT /
 * INPUT_ONLY, already resolved) while the connection is in `state`, using the secure_tcp table
 * when `secure`. A segment with none of RST/SYN/FIN/ACK moves to CLOSE (spec §13 item 2); so does
 * an out-of-range `dir` or `state`, which the kernel never produces.
 */
export function tcpNextState(secure: boolean, dir: number, flags: number, state: number): number {
  const ev = tcpEvent(flags);
  if (
    ev < 0 ||
    dir >>> 0 !== dir ||
    dir >= DIR_LAST ||
    state >>> 0 !== state ||
    state >= TCP_S_LAST
  ) {
    return TCP_S_CLOSE;
  }
  return (secure ? SECURE : NORMAL)[(dir * TCP_EV_LAST + ev) * TCP_S_LAST + state]!;
}

/**
 * Whether a segment that matched no connection may create one (spec §4.1, §13 item 3): never with
 * RST; with SYN (SYN+ACK included, for active FTP from real servers); otherwise only when
 * `sloppy` (sysctl sloppy_tcp).
 */
export function tcpMayOpen(flags: number, sloppy: boolean): boolean {
  if (flags & TCP_RST) return false;
  return (flags & TCP_SYN) !== 0 || sloppy;
}

/** TCP protocol ops: names, default timeouts (s) and active states (spec §4.1, §1.3.3). */
export const tcp: ProtoOps = defineProtoOps({
  protocol: IPPROTO_TCP,
  name: 'TCP',
  // prettier-ignore
  stateNames: [
    'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT',
    'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK',
  ],
  defaultTimeouts: [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120],
  active: [TCP_S_ESTABLISHED, TCP_S_SYN_SENT, TCP_S_SYN_RECV, TCP_S_SYNACK],
});
