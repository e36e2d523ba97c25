/**
 * dh — spec §2.11, §13 item 12. Golden bucket tables derived independently here: the kernel's
 * `hash_32` is recomputed with BigInt and the cyclic fill is written from the spec's text.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AF_INET6 } from '../../src/core/addr.js';
import { DEST_F_AVAILABLE, DEST_F_OVERLOAD } from '../../src/core/constants.js';
import type { Dest } from '../../src/core/service.js';
import { dh, dhBucket } from '../../src/sched/dh.js';
import { addDest, delDest, flow, ip, makeService, setWeight } from './sched-util.js';

/** hash_32(x, bits) from include/linux/hash.h, in exact integer arithmetic. */
function refHash32(x: number, bits: number): number {
  return Number(((BigInt(x >>> 0) * 0x61c88647n) & 0xffffffffn) >> BigInt(32 - bits));
}

/** Spec §2.11: bucket i holds the i-th destination of the list, taken cyclically. */
function refTable(list: Dest[]): (Dest | null)[] {
  return Array.from({ length: 256 }, (_, i) => (list.length ? list[i % list.length]! : null));
}

const toDaddr = (a: number) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;

describe('dh', () => {
  describe('#schedule', () => {
    it('indexes 192.0.2.1 to bucket 50 (0xC0000201 × 0x61C88647 = 0x32D51447 mod 2^32)', () => {
      assert.equal(refHash32(0xc0000201, 8), 50);
      assert.equal(dhBucket(2, [0xc0000201]), 50);
    });

    it('matches the cyclic bucket table for 3 destinations with weights 1, 2, 3', () => {
      const svc = makeService(dh);
      const a = addDest(svc, '10.1.0.1', 1);
      const b = addDest(svc, '10.1.0.2', 2);
      const c = addDest(svc, '10.1.0.3', 3);
      const table = refTable([c, b, a]); // newest first; weights ignored
      assert.equal(table[50], a); // 50 mod 3 = 2 → [C, B, A][2]
      for (let i = 0; i < 2000; i++) {
        const daddr = (0xc6336400 + i * 7919) >>> 0;
        const want = table[refHash32(daddr, 8)]!;
        assert.equal(dh.schedule(svc, flow('192.0.2.9', 1, toDaddr(daddr))), want);
      }
    });

    it('hashes the packet destination, not the source', () => {
      const svc = makeService(dh);
      for (let i = 1; i <= 5; i++) addDest(svc, `10.1.0.${i}`);
      const got = new Set<Dest | null>();
      for (let i = 0; i < 50; i++)
        got.add(dh.schedule(svc, flow(`192.0.2.${i}`, 1000 + i, '198.51.100.7')));
      assert.equal(got.size, 1);
    });

    it('folds IPv6 destination addresses by xor of the four words', () => {
      const svc = makeService(dh, { af: AF_INET6 });
      const list: Dest[] = [];
      for (let i = 1; i <= 5; i++) list.unshift(addDest(svc, `2001:db8::${i}`));
      const table = refTable(list);
      const d = ip('2001:db8:1:2::3:4');
      const fold = (d[0]! ^ d[1]! ^ d[2]! ^ d[3]!) >>> 0;
      assert.equal(
        dh.schedule(svc, flow('2001:db8::99', 1, '2001:db8:1:2::3:4')),
        table[refHash32(fold, 8)],
      );
    });

    it('returns null (no fallback) when the bucket destination has weight 0, is OVERLOAD or not AVAILABLE', () => {
      const svc = makeService(dh);
      const a = addDest(svc, '10.1.0.1');
      const b = addDest(svc, '10.1.0.2');
      const f = flow('192.0.2.9', 1, '192.0.2.1'); // bucket 50 → list [B, A][0] = B
      assert.equal(dh.schedule(svc, f), b);
      b.flags |= DEST_F_OVERLOAD;
      assert.equal(dh.schedule(svc, f), null);
      b.flags &= ~DEST_F_OVERLOAD;
      b.flags &= ~DEST_F_AVAILABLE;
      assert.equal(dh.schedule(svc, f), null);
      b.flags |= DEST_F_AVAILABLE;
      setWeight(svc, b, 0);
      assert.equal(dh.schedule(svc, f), null);
      assert.notEqual(a, b);
    });
  });

  describe('hooks', () => {
    it('does not rebuild on weight edits but rebuilds on add and delete', () => {
      const svc = makeService(dh);
      const a = addDest(svc, '10.1.0.1');
      const b = addDest(svc, '10.1.0.2');
      const f = flow('192.0.2.9', 1, '192.0.2.1'); // bucket 50
      setWeight(svc, b, 5);
      assert.equal(dh.schedule(svc, f), b); // still [B, A] cyclic
      const c = addDest(svc, '10.1.0.3'); // [C, B, A]: 50 mod 3 = 2 → A
      assert.equal(dh.schedule(svc, f), a);
      delDest(svc, a); // [C, B]: 50 mod 2 = 0 → C
      assert.equal(dh.schedule(svc, f), c);
    });
  });
});
