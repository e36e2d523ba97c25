/**
 * sh — spec §2.12, §13 item 12. Golden tables derived independently: `hash_32` in BigInt and the
 * weighted cyclic fill written from the spec's text ("each destination fills `weight` consecutive
 * buckets; weight 0 or 1 fills one").
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEST_F_OVERLOAD,
  IPPROTO_ICMP,
  IPPROTO_UDP,
  SVC_F_SCHED1,
  SVC_F_SCHED2,
} from '../../src/core/constants.js';
import { Flow } from '../../src/core/flow.js';
import type { Dest } from '../../src/core/service.js';
import { sh } from '../../src/sched/sh.js';
import { addDest, delDest, flow, makeService, setWeight, v4flow } from './sched-util.js';

function refHash32(x: number, bits: number): number {
  return Number(((BigInt(x >>> 0) * 0x61c88647n) & 0xffffffffn) >> BigInt(32 - bits));
}

/** Spec §2.12 fill: walk the list cyclically, each destination takes max(weight, 1) buckets. */
function refTable(list: Dest[]): Dest[] {
  const pattern: Dest[] = [];
  for (const d of list) for (let k = 0; k < Math.max(d.weight, 1); k++) pattern.push(d);
  return Array.from({ length: 256 }, (_, i) => pattern[i % pattern.length]!);
}

/** bucket(addr, port, offset) of spec §2.12. */
const refBucket = (addr: number, port: number, off: number) =>
  (off + refHash32(port + addr, 8)) & 255;

describe('sh', () => {
  describe('#schedule', () => {
    it('matches the weighted table for 3 destinations with weights 1, 2, 3', () => {
      const svc = makeService(sh);
      const a = addDest(svc, '10.1.0.1', 1);
      const b = addDest(svc, '10.1.0.2', 2);
      const c = addDest(svc, '10.1.0.3', 3);
      const table = refTable([c, b, a]);
      // Hand check: buckets run C C C B B A, repeating; 192.0.2.1 → bucket 50 → 50 mod 6 = 2 → C.
      assert.deepEqual(table.slice(0, 7), [c, c, c, b, b, a, c]);
      assert.equal(sh.schedule(svc, flow('192.0.2.1', 40000)), c);
      const f = new Flow();
      for (let i = 0; i < 3000; i++) {
        const addr = (0xc0000200 + i * 2654435) >>> 0;
        assert.equal(sh.schedule(svc, v4flow(f, addr, 1 + i)), table[refBucket(addr, 0, 0)]);
      }
    });

    it('hashes the client port only with sh-port and only for TCP/UDP/SCTP', () => {
      const svc = makeService(sh, { flags: SVC_F_SCHED2 });
      const list: Dest[] = [];
      for (let i = 1; i <= 7; i++) list.unshift(addDest(svc, `10.1.0.${i}`, i));
      const table = refTable(list);
      const f = new Flow();
      for (let p = 1000; p < 1400; p++) {
        assert.equal(
          sh.schedule(svc, v4flow(f, 0xc0000201, p)),
          table[refBucket(0xc0000201, p, 0)],
        );
      }
      const u = flow('192.0.2.1', 5353, '10.0.0.1', 53, IPPROTO_UDP);
      assert.equal(sh.schedule(svc, u), table[refBucket(0xc0000201, 5353, 0)]);
      const icmp = flow('192.0.2.1', 5353, '10.0.0.1', 53, IPPROTO_ICMP);
      assert.equal(sh.schedule(svc, icmp), table[refBucket(0xc0000201, 0, 0)]);
      svc.flags = 0;
      assert.equal(
        sh.schedule(svc, v4flow(f, 0xc0000201, 1234)),
        table[refBucket(0xc0000201, 0, 0)],
      );
    });

    it('uses the packet destination and destination port for inverse (ICMP-embedded) packets', () => {
      const svc = makeService(sh, { flags: SVC_F_SCHED2 });
      const list: Dest[] = [];
      for (let i = 1; i <= 5; i++) list.unshift(addDest(svc, `10.1.0.${i}`, 2));
      const table = refTable(list);
      const f = flow('10.0.0.1', 80, '192.0.2.77', 43210);
      f.inverse = true;
      assert.equal(sh.schedule(svc, f), table[refBucket(0xc000024d, 43210, 0)]);
    });

    it('returns null for an unavailable bucket without sh-fallback', () => {
      const svc = makeService(sh);
      const a = addDest(svc, '10.1.0.1');
      const b = addDest(svc, '10.1.0.2');
      const f = flow('192.0.2.1'); // bucket 50 → [B, A][0] = B
      assert.equal(sh.schedule(svc, f), b);
      b.flags |= DEST_F_OVERLOAD;
      assert.equal(sh.schedule(svc, f), null);
      assert.notEqual(a, b);
    });

    it('with sh-fallback walks bucket(addr, port, (k + ihash) mod 256) to the first available', () => {
      const svc = makeService(sh, { flags: SVC_F_SCHED1 });
      const list: Dest[] = [];
      for (let i = 1; i <= 4; i++) list.unshift(addDest(svc, `10.1.0.${i}`, i));
      const table = refTable(list);
      const f = new Flow();
      for (let i = 0; i < 300; i++) {
        const addr = (0xc0000000 + i * 40503) >>> 0;
        const ihash = refBucket(addr, 0, 0);
        const home = table[ihash]!;
        home.flags |= DEST_F_OVERLOAD;
        let want: Dest | null = null;
        for (let k = 0; k < 256 && want === null; k++) {
          const d = table[refBucket(addr, 0, (k + ihash) % 256)]!;
          if (!(d.flags & DEST_F_OVERLOAD)) want = d;
        }
        assert.equal(sh.schedule(svc, v4flow(f, addr, 1)), want);
        home.flags &= ~DEST_F_OVERLOAD;
      }
      for (const d of list) d.flags |= DEST_F_OVERLOAD;
      assert.equal(sh.schedule(svc, v4flow(f, 1, 1)), null);
    });
  });

  describe('hooks', () => {
    it('rebuilds on weight edits (weight 0 keeps one bucket but is unavailable)', () => {
      const svc = makeService(sh);
      const a = addDest(svc, '10.1.0.1', 1);
      const b = addDest(svc, '10.1.0.2', 2);
      const c = addDest(svc, '10.1.0.3', 3);
      const f = new Flow();
      const check = (list: Dest[]) => {
        const table = refTable(list);
        for (let i = 0; i < 500; i++) {
          const addr = (0x0a640000 + i * 7777) >>> 0;
          const want = table[refBucket(addr, 0, 0)]!;
          assert.equal(sh.schedule(svc, v4flow(f, addr, 1)), want.weight > 0 ? want : null);
        }
      };
      check([c, b, a]);
      setWeight(svc, b, 1);
      check([c, b, a]);
      setWeight(svc, c, 0); // C C C → one bucket, and C is unavailable
      check([c, b, a]);
      delDest(svc, b);
      check([c, a]);
    });
  });

  describe('property', () => {
    it('gives each destination a client share roughly proportional to its weight', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 2, maxLength: 8 }),
          (ws) => {
            const svc = makeService(sh);
            const dests = ws.map((w, i) => addDest(svc, `10.1.0.${i + 1}`, w));
            const counts = new Map<Dest, number>();
            const f = new Flow();
            const n = 20_000;
            for (let i = 0; i < n; i++) {
              const d = sh.schedule(svc, v4flow(f, Math.imul(i + 1, 0x9e3779b1) >>> 0, 1))!;
              counts.set(d, (counts.get(d) ?? 0) + 1);
            }
            // Buckets per destination follow the (truncated) cyclic fill of 256 buckets.
            const table = refTable([...dests].reverse());
            for (const d of dests) {
              const buckets = table.filter((x) => x === d).length;
              const share = (counts.get(d) ?? 0) / n;
              assert.ok(Math.abs(share - buckets / 256) < 0.025, `${share} vs ${buckets / 256}`);
              const total = ws.reduce((x, y) => x + y, 0);
              assert.ok(Math.abs(buckets / 256 - d.weight / total) < (2 * d.weight) / 256 + 0.02);
            }
          },
        ),
        { numRuns: 30 },
      );
    });
  });
});
