/**
 * Tests of the UDP state machine (spec §4.2), the template state names (spec §1.4) and the
 * protocol lookup.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DIR_INPUT,
  DIR_INPUT_ONLY,
  DIR_OUTPUT,
  TEMPLATE_STATE_ASSURED,
  TEMPLATE_STATE_NONE,
  protoOps,
  templateStateName,
} from '../../src/proto/index.js';
import { UDP_S_NORMAL, udp, udpMayOpen, udpNextState } from '../../src/proto/udp.js';

describe('proto/udp', () => {
  describe('ops', () => {
    it('is protocol 17 named UDP with one state printed as UDP', () => {
      assert.equal(udp.protocol, 17);
      assert.equal(udp.name, 'UDP');
      assert.equal(udp.numStates, 1);
      assert.deepEqual([...udp.stateNames], ['UDP']);
      assert.equal(udp.stateName(UDP_S_NORMAL), 'UDP');
      assert.equal(udp.stateName(99), 'ERR!');
      assert.equal(protoOps(17), udp);
    });

    it('times out after 300 s', () => {
      assert.deepEqual([...udp.defaultTimeouts], [300]);
    });

    it('is never active', () => {
      assert.equal(udp.isActive(UDP_S_NORMAL), false);
    });
  });

  describe('#udpNextState', () => {
    it('stays NORMAL in every direction', () => {
      for (const dir of [DIR_INPUT, DIR_OUTPUT, DIR_INPUT_ONLY]) {
        assert.equal(udpNextState(dir, UDP_S_NORMAL), UDP_S_NORMAL);
      }
      assert.equal(udpNextState(), UDP_S_NORMAL);
    });
  });

  describe('#udpMayOpen', () => {
    it('lets every packet open a connection', () => {
      assert.equal(udpMayOpen(), true);
    });
  });
});

describe('proto/common', () => {
  describe('#templateStateName', () => {
    it("names template states 'NONE' and 'ASSURED'", () => {
      assert.equal(TEMPLATE_STATE_NONE, 0);
      assert.equal(TEMPLATE_STATE_ASSURED, 1);
      assert.equal(templateStateName(TEMPLATE_STATE_NONE), 'NONE');
      assert.equal(templateStateName(TEMPLATE_STATE_ASSURED), 'ASSURED');
    });

    it("prints 'ERR!' for a template state out of range, like the kernel", () => {
      assert.equal(templateStateName(2), 'ERR!');
    });
  });

  describe('#protoOps', () => {
    it('knows TCP, UDP and SCTP and nothing else', () => {
      assert.deepEqual(
        [6, 17, 132].map((p) => protoOps(p)?.name),
        ['TCP', 'UDP', 'SCTP'],
      );
      for (const p of [0, 1, 50, 51, 58, 255]) assert.equal(protoOps(p), undefined);
    });

    it('has directions INPUT 0, OUTPUT 1, INPUT_ONLY 2', () => {
      assert.deepEqual([DIR_INPUT, DIR_OUTPUT, DIR_INPUT_ONLY], [0, 1, 2]);
    });
  });
});
