/**
 * Tests of the SCTP state machine (spec §4.3, §13 items 3–4). The expected grids are the spec's
 * tables pasted as text and parsed here, independent of the implementation's own tables.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIR_INPUT, DIR_INPUT_ONLY, DIR_OUTPUT } from '../../src/proto/common.js';
import { protoOps } from '../../src/proto/index.js';
import {
  SCTP_CID_ABORT,
  SCTP_CID_COOKIE_ACK,
  SCTP_CID_COOKIE_ECHO,
  SCTP_CID_CWR,
  SCTP_CID_DATA,
  SCTP_CID_ECNE,
  SCTP_CID_ERROR,
  SCTP_CID_HEARTBEAT,
  SCTP_CID_HEARTBEAT_ACK,
  SCTP_CID_INIT,
  SCTP_CID_INIT_ACK,
  SCTP_CID_SACK,
  SCTP_CID_SHUTDOWN,
  SCTP_CID_SHUTDOWN_ACK,
  SCTP_CID_SHUTDOWN_COMPLETE,
  SCTP_EV_ABORT,
  SCTP_EV_COOKIE_ACK,
  SCTP_EV_COOKIE_ECHO,
  SCTP_EV_DATA,
  SCTP_EV_ERROR,
  SCTP_EV_INIT,
  SCTP_EV_INIT_ACK,
  SCTP_EV_SHUTDOWN,
  SCTP_EV_SHUTDOWN_ACK,
  SCTP_EV_SHUTDOWN_COMPLETE,
  SCTP_S_CLOSED,
  SCTP_S_ESTABLISHED,
  SCTP_S_INIT,
  SCTP_S_INIT1,
  SCTP_S_LAST,
  SCTP_S_NONE,
  SCTP_S_REJECTED,
  sctp,
  sctpEvent,
  sctpMayOpen,
  sctpNextState,
} from '../../src/proto/sctp.js';

// spec §4.3 "Transition tables", copied verbatim (INPUT, OUTPUT, INPUT_ONLY).
const INPUT_TEXT = `
| d | ES | I1 | IN | CS | CR | CW | CO | CE | ES | SS | SR | SA | RJ | CL |
| i | I1 | IN | IN | CS | CR | CW | CO | CE | ES | SS | SR | SA | IN | IN |
| i_a | CW | CW | CW | CS | CR | CO | CO | CE | ES | SS | SR | SA | RJ | CL |
| c_e | CR | IN | IN | CR | CR | CW | CO | CE | ES | SS | SR | SA | RJ | CL |
| c_a | ES | I1 | IN | CS | CR | CW | CO | ES | ES | SS | SR | SA | RJ | CL |
| s | SR | I1 | IN | CS | CR | CW | CO | CE | SR | SS | SR | SA | RJ | CL |
| s_a | CL | IN | IN | CS | CR | CW | CO | CE | ES | CL | SR | CL | RJ | CL |
| s_c | CL | CL | CL | CS | CR | CW | CO | CE | ES | SS | SR | CL | RJ | CL |
| err | CL | I1 | IN | CS | CR | CW | CO | CL | ES | SS | SR | SA | RJ | CL |
| ab | CL | CL | CL | CL | CL | RJ | CL | CL | CL | CL | CL | CL | CL | CL |
`;

const OUTPUT_TEXT = `
| d | ES | I1 | IN | CS | CR | CW | CO | CE | ES | SS | SR | SA | RJ | CL |
| i | CW | CW | CW | CW | CW | CW | CW | CW | ES | CW | CW | CW | CW | CW |
| i_a | CS | CS | CS | CS | CR | CW | CO | CE | ES | SS | SR | SA | RJ | CL |
| c_e | CE | CE | CE | CE | CE | CE | CE | CE | ES | SS | SR | SA | RJ | CL |
| c_a | ES | ES | ES | ES | ES | ES | ES | ES | ES | SS | SR | SA | RJ | CL |
| s | SS | SS | SS | SS | SS | SS | SS | SS | SS | SS | SR | SA | RJ | CL |
| s_a | SA | SA | SA | SA | SA | CW | CO | CE | ES | SA | SA | SA | RJ | CL |
| s_c | CL | I1 | IN | CS | CR | CW | CO | CE | ES | SS | SR | SA | RJ | CL |
| err | CL | CL | CL | CL | CL | CW | CO | CE | ES | SS | SR | SA | RJ | CL |
| ab | CL | RJ | CL | CL | CL | CL | CL | CL | CL | CL | CL | CL | CL | CL |
`;

const INPUT_ONLY_TEXT = `
| d | ES | I1 | IN | CS | CR | ES | CO | CE | ES | SS | SR | SA | RJ | CL |
| i | I1 | IN | IN | IN | IN | IN | CO | CE | ES | SS | SR | SA | IN | IN |
| i_a | CE | CE | CE | CE | CE | CE | CO | CE | ES | SS | SR | SA | RJ | CL |
| c_e | ES | ES | ES | ES | ES | ES | CO | CE | ES | SS | SR | SA | RJ | CL |
| c_a | ES | I1 | IN | ES | ES | CW | ES | ES | ES | SS | SR | SA | RJ | CL |
| s | SR | I1 | IN | CS | CR | CW | CO | CE | SR | SS | SR | SA | RJ | CL |
| s_a | CL | IN | IN | CS | CR | CW | CO | CE | CL | CL | SR | CL | RJ | CL |
| s_c | CL | CL | CL | CL | CL | CW | CO | CE | ES | SS | CL | CL | RJ | CL |
| err | CL | I1 | IN | CS | CR | CW | CO | CE | ES | SS | SR | SA | RJ | CL |
| ab | CL | CL | CL | CL | CL | RJ | CL | CL | CL | CL | CL | CL | CL | CL |
`;

// The spec's column order (NO I1 IN CS CR CW CO CE ES SS SR SA RJ CL) and names.
const LEGEND: Record<string, string> = {
  NO: 'NONE',
  I1: 'INIT1',
  IN: 'INIT',
  CS: 'C-SENT',
  CR: 'C-REPLIED',
  CW: 'C-WAIT',
  CO: 'COOKIE',
  CE: 'C-ECHOED',
  ES: 'ESTABLISHED',
  SS: 'S-SENT',
  SR: 'S-RECEIVED',
  SA: 'S-ACK-SENT',
  RJ: 'REJECTED',
  CL: 'CLOSED',
};
const COLUMNS = [
  'NO',
  'I1',
  'IN',
  'CS',
  'CR',
  'CW',
  'CO',
  'CE',
  'ES',
  'SS',
  'SR',
  'SA',
  'RJ',
  'CL',
];
// The spec's event abbreviations and the first chunk that raises each.
const EVENT_CHUNK: Record<string, number> = {
  d: SCTP_CID_DATA,
  i: SCTP_CID_INIT,
  i_a: SCTP_CID_INIT_ACK,
  c_e: SCTP_CID_COOKIE_ECHO,
  c_a: SCTP_CID_COOKIE_ACK,
  s: SCTP_CID_SHUTDOWN,
  s_a: SCTP_CID_SHUTDOWN_ACK,
  s_c: SCTP_CID_SHUTDOWN_COMPLETE,
  err: SCTP_CID_ERROR,
  ab: SCTP_CID_ABORT,
};

function checkGrid(dirName: string, dir: number, text: string): void {
  const rows = text.trim().split('\n');
  assert.equal(rows.length, 10);
  for (const line of rows) {
    const [event, ...next] = line
      .split('|')
      .map((c) => c.trim())
      .filter((c) => c !== '');
    assert.equal(next.length, COLUMNS.length, `bad transcription: ${line}`);
    it(`maps ${dirName} ${event} from every state as the spec's table says`, () => {
      const ev = sctpEvent(EVENT_CHUNK[event!]!, -1);
      const actual = COLUMNS.map((_, state) => sctp.stateName(sctpNextState(dir, ev, state)));
      assert.deepEqual(
        actual,
        next.map((a) => LEGEND[a]!),
      );
    });
  }
}

/** Runs a sequence of [dir, first chunk, expected state name] steps from NONE. */
function walk(steps: [number, number, string][]): void {
  let state = SCTP_S_NONE;
  steps.forEach(([dir, chunk, want], i) => {
    state = sctpNextState(dir, sctpEvent(chunk, -1), state);
    assert.equal(sctp.stateName(state), want, `step ${i + 1}`);
  });
}

describe('proto/sctp', () => {
  describe('INPUT transition table', () => checkGrid('INPUT', DIR_INPUT, INPUT_TEXT));
  describe('OUTPUT transition table', () => checkGrid('OUTPUT', DIR_OUTPUT, OUTPUT_TEXT));
  describe('INPUT_ONLY transition table', () =>
    checkGrid('INPUT_ONLY', DIR_INPUT_ONLY, INPUT_ONLY_TEXT));

  describe('#sctpEvent', () => {
    it('maps every known chunk type to its event', () => {
      const want: [number, number][] = [
        [SCTP_CID_DATA, SCTP_EV_DATA],
        [SCTP_CID_INIT, SCTP_EV_INIT],
        [SCTP_CID_INIT_ACK, SCTP_EV_INIT_ACK],
        [SCTP_CID_SACK, SCTP_EV_DATA],
        [SCTP_CID_HEARTBEAT, SCTP_EV_DATA],
        [SCTP_CID_HEARTBEAT_ACK, SCTP_EV_DATA],
        [SCTP_CID_ABORT, SCTP_EV_ABORT],
        [SCTP_CID_SHUTDOWN, SCTP_EV_SHUTDOWN],
        [SCTP_CID_SHUTDOWN_ACK, SCTP_EV_SHUTDOWN_ACK],
        [SCTP_CID_ERROR, SCTP_EV_ERROR],
        [SCTP_CID_COOKIE_ECHO, SCTP_EV_COOKIE_ECHO],
        [SCTP_CID_COOKIE_ACK, SCTP_EV_COOKIE_ACK],
        [SCTP_CID_ECNE, SCTP_EV_DATA],
        [SCTP_CID_CWR, SCTP_EV_DATA],
        [SCTP_CID_SHUTDOWN_COMPLETE, SCTP_EV_SHUTDOWN_COMPLETE],
      ];
      for (const [chunk, ev] of want) assert.equal(sctpEvent(chunk, -1), ev, `chunk ${chunk}`);
    });

    it('checks the chunk type constants against RFC 9260 numbering', () => {
      assert.deepEqual(
        [
          SCTP_CID_DATA,
          SCTP_CID_INIT,
          SCTP_CID_INIT_ACK,
          SCTP_CID_SACK,
          SCTP_CID_HEARTBEAT,
          SCTP_CID_HEARTBEAT_ACK,
          SCTP_CID_ABORT,
          SCTP_CID_SHUTDOWN,
          SCTP_CID_SHUTDOWN_ACK,
          SCTP_CID_ERROR,
          SCTP_CID_COOKIE_ECHO,
          SCTP_CID_COOKIE_ACK,
          SCTP_CID_ECNE,
          SCTP_CID_CWR,
          SCTP_CID_SHUTDOWN_COMPLETE,
        ],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
      );
    });

    it('treats unknown chunk types (15, 0x80 ASCONF_ACK, 0xC1 ASCONF, 255) as DATA', () => {
      for (const t of [15, 0x80, 0xc0, 0xc1, 255]) assert.equal(sctpEvent(t, -1), SCTP_EV_DATA);
    });

    it('raises ABORT for COOKIE_ECHO or COOKIE_ACK followed by ABORT', () => {
      assert.equal(sctpEvent(SCTP_CID_COOKIE_ECHO, SCTP_CID_ABORT), SCTP_EV_ABORT);
      assert.equal(sctpEvent(SCTP_CID_COOKIE_ACK, SCTP_CID_ABORT), SCTP_EV_ABORT);
    });

    it('ignores a following ABORT after any other first chunk, and any other following chunk', () => {
      assert.equal(sctpEvent(SCTP_CID_DATA, SCTP_CID_ABORT), SCTP_EV_DATA);
      assert.equal(sctpEvent(SCTP_CID_SHUTDOWN, SCTP_CID_ABORT), SCTP_EV_SHUTDOWN);
      assert.equal(sctpEvent(SCTP_CID_COOKIE_ECHO, SCTP_CID_DATA), SCTP_EV_COOKIE_ECHO);
      assert.equal(sctpEvent(SCTP_CID_COOKIE_ACK, SCTP_CID_SACK), SCTP_EV_COOKIE_ACK);
    });
  });

  describe('#sctpNextState', () => {
    it('moves a COOKIE_ECHO bundled with ABORT along the ab row', () => {
      // INPUT c_e from NONE would be C-REPLIED; ab from NONE is CLOSED.
      const ev = sctpEvent(SCTP_CID_COOKIE_ECHO, SCTP_CID_ABORT);
      assert.equal(sctpNextState(DIR_INPUT, ev, SCTP_S_NONE), SCTP_S_CLOSED);
    });

    it('gives CLOSED for a direction, event or state out of range', () => {
      assert.equal(sctpNextState(3, SCTP_EV_INIT, SCTP_S_NONE), SCTP_S_CLOSED);
      assert.equal(sctpNextState(DIR_INPUT, 10, SCTP_S_NONE), SCTP_S_CLOSED);
      assert.equal(sctpNextState(DIR_INPUT, SCTP_EV_INIT, SCTP_S_LAST), SCTP_S_CLOSED);
      assert.equal(sctpNextState(DIR_INPUT, SCTP_EV_INIT, -1), SCTP_S_CLOSED);
    });
  });

  describe('lifecycles', () => {
    it('reaches ESTABLISHED through the four-way handshake over INPUT/OUTPUT (NAT)', () => {
      walk([
        [DIR_INPUT, SCTP_CID_INIT, 'INIT1'],
        [DIR_OUTPUT, SCTP_CID_INIT_ACK, 'C-SENT'],
        [DIR_INPUT, SCTP_CID_COOKIE_ECHO, 'C-REPLIED'],
        [DIR_OUTPUT, SCTP_CID_COOKIE_ACK, 'ESTABLISHED'],
        [DIR_INPUT, SCTP_CID_DATA, 'ESTABLISHED'],
        [DIR_OUTPUT, SCTP_CID_SACK, 'ESTABLISHED'],
      ]);
    });

    it('closes on a client-initiated shutdown: SHUTDOWN in, SHUTDOWN_ACK out, SHUTDOWN_COMPLETE in', () => {
      let s = SCTP_S_ESTABLISHED;
      const seen: string[] = [];
      for (const [dir, chunk] of [
        [DIR_INPUT, SCTP_CID_SHUTDOWN],
        [DIR_OUTPUT, SCTP_CID_SHUTDOWN_ACK],
        [DIR_INPUT, SCTP_CID_SHUTDOWN_COMPLETE],
      ] as const) {
        s = sctpNextState(dir, sctpEvent(chunk, -1), s);
        seen.push(sctp.stateName(s));
      }
      assert.deepEqual(seen, ['S-RECEIVED', 'S-ACK-SENT', 'CLOSED']);
    });

    it('closes on a server-initiated shutdown: SHUTDOWN out, SHUTDOWN_ACK in', () => {
      let s = sctpNextState(DIR_OUTPUT, SCTP_EV_SHUTDOWN, SCTP_S_ESTABLISHED);
      assert.equal(sctp.stateName(s), 'S-SENT');
      s = sctpNextState(DIR_INPUT, SCTP_EV_SHUTDOWN_ACK, s);
      assert.equal(sctp.stateName(s), 'CLOSED');
    });

    it('establishes a DR association from client chunks alone (INPUT_ONLY)', () => {
      walk([
        [DIR_INPUT_ONLY, SCTP_CID_INIT, 'INIT1'],
        [DIR_INPUT_ONLY, SCTP_CID_COOKIE_ECHO, 'ESTABLISHED'],
        [DIR_INPUT_ONLY, SCTP_CID_DATA, 'ESTABLISHED'],
        [DIR_INPUT_ONLY, SCTP_CID_SHUTDOWN, 'S-RECEIVED'],
        [DIR_INPUT_ONLY, SCTP_CID_SHUTDOWN_COMPLETE, 'CLOSED'],
      ]);
    });

    it('marks an INIT answered by ABORT as REJECTED and lets a new INIT retry', () => {
      let s = sctpNextState(DIR_INPUT, SCTP_EV_INIT, SCTP_S_NONE);
      assert.equal(s, SCTP_S_INIT1);
      s = sctpNextState(DIR_OUTPUT, SCTP_EV_ABORT, s);
      assert.equal(s, SCTP_S_REJECTED);
      assert.equal(sctp.defaultTimeouts[s], 4);
      s = sctpNextState(DIR_INPUT, SCTP_EV_INIT, s);
      assert.equal(s, SCTP_S_INIT);
    });
  });

  describe('#sctpMayOpen', () => {
    it('lets INIT open a connection with or without sloppy_sctp', () => {
      assert.equal(sctpMayOpen(SCTP_CID_INIT, false), true);
      assert.equal(sctpMayOpen(SCTP_CID_INIT, true), true);
    });

    it('never lets ABORT open a connection', () => {
      assert.equal(sctpMayOpen(SCTP_CID_ABORT, false), false);
      assert.equal(sctpMayOpen(SCTP_CID_ABORT, true), false);
    });

    it('lets other first chunks open a connection only with sloppy_sctp', () => {
      for (const t of [
        SCTP_CID_DATA,
        SCTP_CID_INIT_ACK,
        SCTP_CID_COOKIE_ECHO,
        SCTP_CID_HEARTBEAT,
        200,
      ]) {
        assert.equal(sctpMayOpen(t, false), false, `chunk ${t}`);
        assert.equal(sctpMayOpen(t, true), true, `chunk ${t}`);
      }
    });
  });

  describe('ops', () => {
    it('is protocol 132 named SCTP with 14 states', () => {
      assert.equal(sctp.protocol, 132);
      assert.equal(sctp.name, 'SCTP');
      assert.equal(sctp.numStates, 14);
      assert.equal(protoOps(132), sctp);
    });

    it('names the states as listings print them', () => {
      assert.deepEqual(
        [...sctp.stateNames],
        'NONE INIT1 INIT C-SENT C-REPLIED C-WAIT COOKIE C-ECHOED ESTABLISHED S-SENT S-RECEIVED S-ACK-SENT REJECTED CLOSED'.split(
          ' ',
        ),
      );
      assert.equal(sctp.stateName(99), 'ERR!');
      assert.equal(sctp.stateName(14), 'ERR!');
    });

    it('has the default timeouts 2 4 61 61 61 61 61 61 900 61 61 61 4 61 s', () => {
      assert.deepEqual(
        [...sctp.defaultTimeouts],
        [2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61],
      );
    });

    it('counts only ESTABLISHED as active', () => {
      assert.deepEqual(
        sctp.stateNames.filter((_, s) => sctp.isActive(s)),
        ['ESTABLISHED'],
      );
    });
  });
});
