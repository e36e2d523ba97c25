/**
 * Tests of the TCP state machine (spec §4.1, §13 items 2–4). The expected grids are the spec's
 * tables pasted as text and parsed here, independent of the implementation's own tables.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIR_INPUT, DIR_INPUT_ONLY, DIR_OUTPUT } from '../../src/proto/common.js';
import { protoOps } from '../../src/proto/index.js';
import {
  TCP_ACK,
  TCP_EV_ACK,
  TCP_EV_FIN,
  TCP_EV_RST,
  TCP_EV_SYN,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_S_CLOSE,
  TCP_S_CLOSE_WAIT,
  TCP_S_ESTABLISHED,
  TCP_S_FIN_WAIT,
  TCP_S_LAST,
  TCP_S_NONE,
  TCP_S_SYN_RECV,
  TCP_S_SYNACK,
  TCP_S_TIME_WAIT,
  TCP_SYN,
  TCP_URG,
  tcp,
  tcpEvent,
  tcpMayOpen,
  tcpNextState,
} from '../../src/proto/tcp.js';

// spec §4.1 "Normal transition table", copied verbatim.
const NORMAL_TEXT = `
| INPUT | syn | SR | ES | ES | SR | SR | SR | SR | SR | SR | SR | SR |
| INPUT | fin | CL | CW | SS | TW | TW | TW | CL | CW | LA | LI | TW |
| INPUT | ack | ES | ES | SS | ES | FW | TW | CL | CW | CL | LI | ES |
| INPUT | rst | CL | CL | CL | SR | CL | CL | CL | CL | LA | LI | SR |
| OUTPUT | syn | SS | ES | SS | SR | SS | SS | SS | SS | SS | LI | SR |
| OUTPUT | fin | TW | FW | SS | TW | FW | TW | CL | TW | LA | LI | TW |
| OUTPUT | ack | ES | ES | SS | ES | FW | TW | CL | CW | LA | ES | ES |
| OUTPUT | rst | CL | CL | SS | CL | CL | TW | CL | CL | CL | CL | CL |
| INPUT_ONLY | syn | SR | ES | ES | SR | SR | SR | SR | SR | SR | SR | SR |
| INPUT_ONLY | fin | CL | FW | SS | TW | FW | TW | CL | CW | LA | LI | TW |
| INPUT_ONLY | ack | ES | ES | SS | ES | FW | TW | CL | CW | CL | LI | ES |
| INPUT_ONLY | rst | CL | CL | CL | SR | CL | CL | CL | CL | LA | LI | CL |
`;

// spec §4.1 "secure_tcp ("DoS") table", copied verbatim.
const SECURE_TEXT = `
| INPUT | syn | SR | ES | ES | SR | SR | SR | SR | SR | SR | SR | SA |
| INPUT | fin | CL | CW | SS | TW | TW | TW | CL | CW | LA | LI | SA |
| INPUT | ack | ES | ES | SS | SR | FW | TW | CL | CW | CL | LI | SA |
| INPUT | rst | CL | CL | CL | SR | CL | CL | CL | CL | LA | LI | CL |
| OUTPUT | syn | SS | ES | SS | SA | SS | SS | SS | SS | SS | LI | SA |
| OUTPUT | fin | TW | FW | SS | TW | FW | TW | CL | TW | LA | LI | TW |
| OUTPUT | ack | ES | ES | SS | ES | FW | TW | CL | CW | LA | ES | ES |
| OUTPUT | rst | CL | CL | SS | CL | CL | TW | CL | CL | CL | CL | CL |
| INPUT_ONLY | syn | SA | ES | ES | SR | SA | SA | SA | SA | SA | SA | SA |
| INPUT_ONLY | fin | CL | FW | SS | TW | FW | TW | CL | CW | LA | LI | TW |
| INPUT_ONLY | ack | ES | ES | SS | ES | FW | TW | CL | CW | CL | LI | ES |
| INPUT_ONLY | rst | CL | CL | CL | SR | CL | CL | CL | CL | LA | LI | CL |
`;

// The spec's legend: column order and abbreviation → state name.
const LEGEND: Record<string, string> = {
  NO: 'NONE',
  ES: 'ESTABLISHED',
  SS: 'SYN_SENT',
  SR: 'SYN_RECV',
  FW: 'FIN_WAIT',
  TW: 'TIME_WAIT',
  CL: 'CLOSE',
  CW: 'CLOSE_WAIT',
  LA: 'LAST_ACK',
  LI: 'LISTEN',
  SA: 'SYNACK',
};
const COLUMNS = ['NO', 'ES', 'SS', 'SR', 'FW', 'TW', 'CL', 'CW', 'LA', 'LI', 'SA'];
const DIRS: Record<string, number> = {
  INPUT: DIR_INPUT,
  OUTPUT: DIR_OUTPUT,
  INPUT_ONLY: DIR_INPUT_ONLY,
};
// One flag that raises each event on its own.
const EVENT_FLAGS: Record<string, number> = {
  syn: TCP_SYN,
  fin: TCP_FIN,
  ack: TCP_ACK,
  rst: TCP_RST,
};

interface Row {
  dir: string;
  event: string;
  expected: string[];
}

function parseGrid(text: string): Row[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const cells = line
        .split('|')
        .map((c) => c.trim())
        .filter((c) => c !== '');
      const [dir, event, ...next] = cells;
      assert.equal(next.length, COLUMNS.length, `bad transcription: ${line}`);
      return { dir: dir!, event: event!, expected: next.map((a) => LEGEND[a]!) };
    });
}

function checkGrid(secure: boolean, text: string): void {
  const rows = parseGrid(text);
  assert.equal(rows.length, 12);
  for (const { dir, event, expected } of rows) {
    it(`maps ${dir} ${event} from every state as the spec's table says`, () => {
      const actual = COLUMNS.map((_, state) =>
        tcp.stateName(tcpNextState(secure, DIRS[dir]!, EVENT_FLAGS[event]!, state)),
      );
      assert.deepEqual(actual, expected);
    });
  }
}

/** Runs a sequence of [dir, flags, expected state] steps from NONE. */
function walk(secure: boolean, steps: [number, number, number][]): void {
  let state = TCP_S_NONE;
  steps.forEach(([dir, flags, want], i) => {
    state = tcpNextState(secure, dir, flags, state);
    assert.equal(tcp.stateName(state), tcp.stateName(want), `step ${i + 1}`);
  });
}

describe('proto/tcp', () => {
  describe('normal transition table', () => checkGrid(false, NORMAL_TEXT));

  describe('secure_tcp transition table', () => checkGrid(true, SECURE_TEXT));

  describe('#tcpEvent', () => {
    it('gives each single flag its event', () => {
      assert.equal(tcpEvent(TCP_SYN), TCP_EV_SYN);
      assert.equal(tcpEvent(TCP_FIN), TCP_EV_FIN);
      assert.equal(tcpEvent(TCP_ACK), TCP_EV_ACK);
      assert.equal(tcpEvent(TCP_RST), TCP_EV_RST);
    });

    it('ranks RST above SYN, SYN above FIN, FIN above ACK', () => {
      assert.equal(tcpEvent(TCP_RST | TCP_SYN), TCP_EV_RST);
      assert.equal(tcpEvent(TCP_RST | TCP_ACK), TCP_EV_RST);
      assert.equal(tcpEvent(TCP_SYN | TCP_FIN), TCP_EV_SYN);
      assert.equal(tcpEvent(TCP_SYN | TCP_ACK), TCP_EV_SYN);
      assert.equal(tcpEvent(TCP_FIN | TCP_ACK), TCP_EV_FIN);
      assert.equal(tcpEvent(TCP_ACK | TCP_PSH), TCP_EV_ACK);
    });

    it('returns -1 when none of RST, SYN, FIN, ACK is set', () => {
      assert.equal(tcpEvent(0), -1);
      assert.equal(tcpEvent(TCP_PSH), -1);
      assert.equal(tcpEvent(TCP_URG | TCP_PSH), -1);
    });
  });

  describe('#tcpNextState', () => {
    it('uses the rst row for RST+SYN', () => {
      // INPUT rst in SYN_RECV stays SYN_RECV; INPUT syn in ESTABLISHED would stay ESTABLISHED.
      assert.equal(
        tcpNextState(false, DIR_INPUT, TCP_RST | TCP_SYN, TCP_S_ESTABLISHED),
        TCP_S_CLOSE,
      );
      assert.equal(
        tcpNextState(false, DIR_INPUT, TCP_RST | TCP_SYN, TCP_S_SYN_RECV),
        TCP_S_SYN_RECV,
      );
    });

    it('uses the syn row for SYN+FIN', () => {
      // INPUT syn in CLOSE → SYN_RECV, INPUT fin in CLOSE → CLOSE.
      assert.equal(tcpNextState(false, DIR_INPUT, TCP_SYN | TCP_FIN, TCP_S_CLOSE), TCP_S_SYN_RECV);
    });

    it('uses the fin row for FIN+ACK', () => {
      // INPUT fin in ESTABLISHED → CLOSE_WAIT, INPUT ack would stay ESTABLISHED.
      assert.equal(
        tcpNextState(false, DIR_INPUT, TCP_FIN | TCP_ACK, TCP_S_ESTABLISHED),
        TCP_S_CLOSE_WAIT,
      );
    });

    it('moves a flagless or PSH-only segment to CLOSE from every state, direction and table', () => {
      for (const secure of [false, true]) {
        for (const dir of [DIR_INPUT, DIR_OUTPUT, DIR_INPUT_ONLY]) {
          for (let s = 0; s < TCP_S_LAST; s++) {
            assert.equal(tcpNextState(secure, dir, 0, s), TCP_S_CLOSE);
            assert.equal(tcpNextState(secure, dir, TCP_PSH, s), TCP_S_CLOSE);
            assert.equal(tcpNextState(secure, dir, TCP_PSH | TCP_URG, s), TCP_S_CLOSE);
          }
        }
      }
    });

    it('gives CLOSE for a state or direction out of range instead of reading a neighbouring row', () => {
      assert.equal(tcpNextState(false, DIR_INPUT, TCP_SYN, TCP_S_LAST), TCP_S_CLOSE);
      assert.equal(tcpNextState(false, DIR_INPUT, TCP_SYN, -1), TCP_S_CLOSE);
      assert.equal(tcpNextState(false, 3, TCP_SYN, TCP_S_NONE), TCP_S_CLOSE);
      assert.equal(tcpNextState(false, DIR_INPUT, TCP_SYN, 1.5), TCP_S_CLOSE);
    });
  });

  describe('lifecycles (spec §4.1)', () => {
    it('walks a NAT connection: SYN in, SYN+ACK out, ACK in, FIN in, FIN out, ACK in', () => {
      walk(false, [
        [DIR_INPUT, TCP_SYN, TCP_S_SYN_RECV],
        [DIR_OUTPUT, TCP_SYN | TCP_ACK, TCP_S_SYN_RECV],
        [DIR_INPUT, TCP_ACK, TCP_S_ESTABLISHED],
        [DIR_INPUT, TCP_FIN | TCP_ACK, TCP_S_CLOSE_WAIT],
        [DIR_OUTPUT, TCP_FIN | TCP_ACK, TCP_S_TIME_WAIT],
        [DIR_INPUT, TCP_ACK, TCP_S_TIME_WAIT],
      ]);
    });

    it('gives the NAT lifecycle the timeouts 60, 60, 900, 60, 120, 120 s', () => {
      let s = TCP_S_NONE;
      const got: number[] = [];
      for (const [dir, flags] of [
        [DIR_INPUT, TCP_SYN],
        [DIR_OUTPUT, TCP_SYN | TCP_ACK],
        [DIR_INPUT, TCP_ACK],
        [DIR_INPUT, TCP_FIN | TCP_ACK],
        [DIR_OUTPUT, TCP_FIN | TCP_ACK],
        [DIR_INPUT, TCP_ACK],
      ] as const) {
        s = tcpNextState(false, dir, flags, s);
        got.push(tcp.defaultTimeouts[s]!);
      }
      assert.deepEqual(got, [60, 60, 900, 60, 120, 120]);
    });

    it('walks a DR connection through INPUT_ONLY: SYN, ACK, FIN, ACK', () => {
      walk(false, [
        [DIR_INPUT_ONLY, TCP_SYN, TCP_S_SYN_RECV],
        [DIR_INPUT_ONLY, TCP_ACK, TCP_S_ESTABLISHED],
        [DIR_INPUT_ONLY, TCP_FIN | TCP_ACK, TCP_S_FIN_WAIT],
        [DIR_INPUT_ONLY, TCP_ACK, TCP_S_FIN_WAIT],
      ]);
    });

    it('secure: keeps SYN_RECV on client ACKs and reaches SYNACK only on the server SYN+ACK', () => {
      walk(true, [
        [DIR_INPUT, TCP_SYN, TCP_S_SYN_RECV],
        [DIR_INPUT, TCP_ACK, TCP_S_SYN_RECV],
        [DIR_OUTPUT, TCP_SYN | TCP_ACK, TCP_S_SYNACK],
      ]);
    });

    it('secure: goes SYNACK → ESTABLISHED on the next ACK from the server, not from the client', () => {
      // Spec prose says "SYNACK → ES on client ACK", but its table (and the kernel) keep INPUT ack
      // in SYNACK; OUTPUT ack and INPUT_ONLY ack move it to ESTABLISHED.
      walk(true, [
        [DIR_INPUT, TCP_SYN, TCP_S_SYN_RECV],
        [DIR_OUTPUT, TCP_SYN | TCP_ACK, TCP_S_SYNACK],
        [DIR_INPUT, TCP_ACK, TCP_S_SYNACK],
        [DIR_OUTPUT, TCP_ACK, TCP_S_ESTABLISHED],
      ]);
      assert.equal(tcpNextState(true, DIR_INPUT_ONLY, TCP_ACK, TCP_S_SYNACK), TCP_S_ESTABLISHED);
    });

    it('secure: a DR SYN goes straight to SYNACK and the client ACK establishes it', () => {
      walk(true, [
        [DIR_INPUT_ONLY, TCP_SYN, TCP_S_SYNACK],
        [DIR_INPUT_ONLY, TCP_ACK, TCP_S_ESTABLISHED],
      ]);
    });
  });

  describe('#tcpMayOpen', () => {
    const cases: [string, number, boolean, boolean][] = [
      ['SYN', TCP_SYN, false, true],
      ['SYN', TCP_SYN, true, true],
      ['SYN+ACK', TCP_SYN | TCP_ACK, false, true],
      ['SYN+ACK', TCP_SYN | TCP_ACK, true, true],
      ['RST+SYN', TCP_RST | TCP_SYN, false, false],
      ['RST+SYN', TCP_RST | TCP_SYN, true, false],
      ['RST', TCP_RST, true, false],
      ['ACK', TCP_ACK, false, false],
      ['ACK', TCP_ACK, true, true],
      ['FIN+ACK', TCP_FIN | TCP_ACK, false, false],
      ['FIN+ACK', TCP_FIN | TCP_ACK, true, true],
      ['no flags', 0, true, true],
    ];
    for (const [name, flags, sloppy, want] of cases) {
      it(`${want ? 'lets' : 'does not let'} ${name} open a connection ${sloppy ? 'with' : 'without'} sloppy_tcp`, () => {
        assert.equal(tcpMayOpen(flags, sloppy), want);
      });
    }
  });

  describe('ops', () => {
    it('is protocol 6 named TCP with 11 states', () => {
      assert.equal(tcp.protocol, 6);
      assert.equal(tcp.name, 'TCP');
      assert.equal(tcp.numStates, 11);
      assert.equal(protoOps(6), tcp);
    });

    it('names the states as listings print them', () => {
      assert.deepEqual(
        [...tcp.stateNames],
        'NONE ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN SYNACK'.split(
          ' ',
        ),
      );
      for (let s = 0; s < 11; s++) assert.equal(tcp.stateName(s), tcp.stateNames[s]);
    });

    it("prints 'ERR!' for a state out of range", () => {
      assert.equal(tcp.stateName(99), 'ERR!');
      assert.equal(tcp.stateName(11), 'ERR!');
      assert.equal(tcp.stateName(-1), 'ERR!');
    });

    it('has the default timeouts 2 900 120 60 120 120 10 60 30 120 120 s', () => {
      assert.deepEqual([...tcp.defaultTimeouts], [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120]);
    });

    it('counts ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK as active, nothing else', () => {
      const active = tcp.stateNames.filter((_, s) => tcp.isActive(s));
      assert.deepEqual(active, ['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'SYNACK']);
      assert.equal(tcp.isActive(99), false);
    });

    it('cannot be modified', () => {
      assert.throws(() => {
        (tcp.defaultTimeouts as number[])[1] = 1;
      }, TypeError);
      assert.equal(tcp.defaultTimeouts[1], 900);
    });
  });
});
