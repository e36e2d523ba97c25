/**
 * SipHash (spec §2.13): the 32-bit-halves implementation checked against the published reference
 * vectors — SipHash-2-4 with key 00..0f over messages 00, 00 01, … (veorq/SipHash `vectors.h`,
 * also the kernel's lib/siphash_kunit.c) — and against the kernel's 64-bit `hsiphash` vectors,
 * which are SipHash-1-3 truncated to 32 bits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SipKey, hsipHash32, sipHash64 } from '../../src/sched/siphash.js';
import { refSip } from './sched-util.js';

const KEY = SipKey.fromBytes(Array.from({ length: 16 }, (_, i) => i));
const msg = (n: number) => Array.from({ length: n }, (_, i) => i);

/** SipHash-2-4 of 00 01 … (n−1), n = 0..63 (reference `vectors_sip64`). */
const SIP24: bigint[] = [
  0x726fdb47dd0e0e31n,
  0x74f839c593dc67fdn,
  0x0d6c8009d9a94f5an,
  0x85676696d7fb7e2dn,
  0xcf2794e0277187b7n,
  0x18765564cd99a68dn,
  0xcbc9466e58fee3cen,
  0xab0200f58b01d137n,
  0x93f5f5799a932462n,
  0x9e0082df0ba9e4b0n,
  0x7a5dbbc594ddb9f3n,
  0xf4b32f46226bada7n,
  0x751e8fbc860ee5fbn,
  0x14ea5627c0843d90n,
  0xf723ca908e7af2een,
  0xa129ca6149be45e5n,
  0x3f2acc7f57c29bdbn,
  0x699ae9f52cbe4794n,
  0x4bc1b3f0968dd39cn,
  0xbb6dc91da77961bdn,
  0xbed65cf21aa2ee98n,
  0xd0f2cbb02e3b67c7n,
  0x93536795e3a33e88n,
  0xa80c038ccd5ccec8n,
];
/** Index 63 of the same table. */
const SIP24_63 = 0x958a324ceb064572n;

/** 64-bit kernels' hsiphash (SipHash-1-3, low 32 bits), same key and messages, n = 0..15. */
const HSIP13: number[] = [
  0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7, 0x9bb11140,
  0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956,
];

describe('siphash', () => {
  describe('sipHash64', () => {
    it('reproduces the SipHash-2-4 reference vectors', () => {
      SIP24.forEach((want, n) => assert.equal(sipHash64(KEY, msg(n), 2, 4), want, `length ${n}`));
      assert.equal(sipHash64(KEY, msg(63), 2, 4), SIP24_63);
    });

    it('reproduces the 64-bit kernel hsiphash vectors as SipHash-1-3 truncated to 32 bits', () => {
      HSIP13.forEach((want, n) =>
        assert.equal(Number(sipHash64(KEY, msg(n), 1, 3) & 0xffffffffn), want, `length ${n}`),
      );
    });
  });

  describe('hsipHash32', () => {
    it('equals hsiphash_1u32(0x03020100) of the kernel self-test (vector 4)', () => {
      assert.equal(hsipHash32(KEY, 0x03020100), 0x88d38328);
    });

    it('agrees with an independent BigInt SipHash-1-3 for any key and value (property)', () => {
      fc.assert(
        fc.property(
          fc.nat({ max: 0xffffffff }),
          fc.nat({ max: 0xffffffff }),
          fc.nat({ max: 0xffffffff }),
          (k0, k1, v) => {
            const want = Number(refSip(BigInt(k0), BigInt(k1), v, 1, 3) & 0xffffffffn);
            assert.equal(hsipHash32(SipKey.fromU32(k0, k1), v), want);
          },
        ),
        { numRuns: 500 },
      );
    });
  });
});
