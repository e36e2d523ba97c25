/**
 * mh — spec §2.13, §13 item 12. Golden tables come from a reference population written here from
 * the spec's text, hashing with the independent BigInt SipHash-1-3 oracle of sched-util.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AF_INET } from '../../src/core/addr.js';
import { DEST_F_OVERLOAD, SVC_F_SCHED1, SVC_F_SCHED2 } from '../../src/core/constants.js';
import { bindScheduler, linkDest, unlinkDest } from '../../src/core/dests.js';
import { Flow } from '../../src/core/flow.js';
import { Dest, type Service } from '../../src/core/service.js';
import { MH_TAB_SIZE, mh } from '../../src/sched/mh.js';
import { addDest, delDest, flow, makeService, refSip, setWeight, v4flow } from './sched-util.js';

const M = 4093;
const K1 = 2654435761n;
const K2 = 2654446892n;
const h = (k: bigint, v: number) => Number(refSip(k, k, v >>> 0, 1, 3) & 0xffffffffn);

/** Spec §2.13 population, straight from the text. */
function refTable(list: Dest[]): (Dest | null)[] {
  const table: (Dest | null)[] = new Array<Dest | null>(M).fill(null);
  const lws = list.map((d) => d.lastWeight);
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  const g = lws.filter((w) => w > 0).reduce(gcd, 0);
  if (g < 1) return table;
  const maxW = Math.max(...lws);
  const fls = (x: number) => (x === 0 ? 0 : Math.floor(Math.log2(x)) + 1);
  const rshift = Math.max(0, fls(Math.floor(maxW / g)) - 6);
  const st = list.map((d) => {
    const v = d.port + d.addr[0]!;
    const lw = d.lastWeight;
    const t = Math.floor(lw / g) >> rshift;
    return {
      d,
      perm: h(K1, v) % M,
      skip: (h(K2, v) % (M - 1)) + 1,
      turns: t !== 0 ? t : lw !== 0 ? 1 : 0,
    };
  });
  let filled = 0;
  for (;;) {
    for (const s of st) {
      for (let t = 0; t < s.turns; t++) {
        while (table[s.perm] !== null) s.perm = (s.perm + s.skip) % M;
        table[s.perm] = s.d;
        if (++filled === M) return table;
      }
    }
  }
}

const slotOf = (addr: number, port: number, off = 0) => h(K1, off + port + addr) % M;
const tableOf = (svc: Service) => (svc.schedData as { table: (Dest | null)[] }).table;

function build(weights: number[], flags = 0) {
  const svc = makeService(mh, { flags });
  const dests = weights.map((w, i) => addDest(svc, `10.1.${i >> 8}.${(i & 255) + 1}`, w, 8080));
  return { svc, dests };
}

describe('mh', () => {
  describe('population', () => {
    it('matches the reference table for 3 IPv4 destinations with weights 1, 2, 3', () => {
      const { svc } = build([1, 2, 3]);
      const want = refTable(svc.dests);
      assert.deepEqual(tableOf(svc), want);
      const counts = svc.dests.map((d) => want.filter((x) => x === d).length);
      assert.deepEqual(
        counts.reduce((a, b) => a + b),
        M,
      );
      // weights 3 : 2 : 1 (list order) → 2046.5, 1364.3, 682.2 slots
      counts.forEach((c, i) => assert.ok(Math.abs(c - (M * (3 - i)) / 6) < 6, `${c}`));
    });

    it('shifts large weights down to 6 bits (65535 and 1 → 63 turns and 1)', () => {
      const { svc } = build([65535, 1, 30000]);
      assert.deepEqual(tableOf(svc), refTable(svc.dests));
    });

    it('fills every slot, with slot shares proportional to weight (property)', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 12 }),
          (ws) => {
            const { svc, dests } = build(ws);
            const table = tableOf(svc);
            assert.ok(table.every((d) => d !== null));
            const total = ws.reduce((a, b) => a + b, 0);
            for (const d of dests) {
              const share = table.filter((x) => x === d).length / M;
              assert.ok(
                Math.abs(share - d.weight / total) < 0.01 + 20 / M,
                `${share} vs ${d.weight / total}`,
              );
            }
          },
        ),
        { numRuns: 40 },
      );
    });

    it('keeps a weight-0 destination in the table (last_weight) and returns null for its clients', () => {
      const { svc, dests } = build([2, 2, 2]);
      const before = [...tableOf(svc)];
      const zero = dests[1]!;
      setWeight(svc, zero, 0);
      assert.equal(zero.lastWeight, 2);
      assert.deepEqual(tableOf(svc), before);
      const f = new Flow();
      let hits = 0;
      for (let i = 0; i < 400; i++) {
        const addr = (0xc0000000 + i * 104729) >>> 0;
        const owner = before[slotOf(addr, 0)]!;
        const got = mh.schedule(svc, v4flow(f, addr, 9));
        assert.equal(got, owner === zero ? null : owner);
        if (owner === zero) hits++;
      }
      assert.ok(hits > 0);
    });

    it('clears the table when every last_weight is 0', () => {
      const svc = makeService(null);
      const d = new Dest(AF_INET, [0x0a010001], 80);
      d.weight = 0;
      d.lastWeight = 0;
      linkDest(svc, d);
      bindScheduler(svc, mh);
      assert.ok(tableOf(svc).every((x) => x === null));
      assert.equal(mh.schedule(svc, flow('192.0.2.1')), null);
    });

    it('refuses to bind to more than 4093 destinations, but a 4094th add leaves the table as it was', () => {
      // ip_vs_mh_reassign returns EINVAL; init_service passes it on, while __ip_vs_update_dest
      // ignores add_dest's result: the destination is linked and the old table stays.
      const svc = makeService(null);
      for (let i = 0; i < MH_TAB_SIZE; i++) linkDest(svc, new Dest(AF_INET, [0x0a000000 + i], 80));
      bindScheduler(svc, mh);
      const before = tableOf(svc).slice();
      assert.ok(before.every((x) => x !== null));
      const extra = new Dest(AF_INET, [0x0b000000], 80);
      extra.weight = 1000;
      extra.lastWeight = 1000;
      linkDest(svc, extra);
      assert.equal(svc.dests.length, MH_TAB_SIZE + 1);
      assert.deepEqual(tableOf(svc), before);
      // Back at 4093 destinations the table is rebuilt.
      unlinkDest(svc, svc.dests[MH_TAB_SIZE]!);
      assert.ok(tableOf(svc).includes(extra));
      const svc2 = makeService(null);
      for (const d of svc.dests) linkDest(svc2, new Dest(AF_INET, d.addr, 80));
      linkDest(svc2, new Dest(AF_INET, [0x0c000000], 80));
      assert.throws(() => bindScheduler(svc2, mh), { code: 'IPVS_ERR_INVALID' });
    });
  });

  describe('#schedule', () => {
    it('looks up slot hsiphash(key1, port + addr) mod 4093, port only with mh-port', () => {
      const { svc } = build([1, 2, 3, 4]);
      const want = refTable(svc.dests);
      const f = new Flow();
      for (let i = 0; i < 1000; i++) {
        const addr = (0xc6336400 + i * 7919) >>> 0;
        assert.equal(mh.schedule(svc, v4flow(f, addr, 1000 + i)), want[slotOf(addr, 0)]);
      }
      svc.flags = SVC_F_SCHED2;
      for (let i = 0; i < 1000; i++) {
        const addr = (0xc6336400 + i * 7919) >>> 0;
        assert.equal(mh.schedule(svc, v4flow(f, addr, 1000 + i)), want[slotOf(addr, 1000 + i)]);
      }
      const inv = flow('10.0.0.1', 80, '192.0.2.1', 5555);
      inv.inverse = true;
      assert.equal(mh.schedule(svc, inv), want[slotOf(0xc0000201, 5555)]);
    });

    it('with mh-fallback tries slot h(key1, (k + ihash) mod M + key) until an available one', () => {
      const { svc } = build([1, 1, 1, 1, 1], SVC_F_SCHED1);
      const want = refTable(svc.dests);
      const f = new Flow();
      for (let i = 0; i < 200; i++) {
        const addr = (0x0a0a0000 + i * 3571) >>> 0;
        const ihash = slotOf(addr, 0);
        const home = want[ihash]!;
        home.flags |= DEST_F_OVERLOAD;
        let expect: Dest | null = null;
        for (let k = 0; k < M && expect === null; k++) {
          const d = want[slotOf(addr, 0, (k + ihash) % M)]!;
          if (!(d.flags & DEST_F_OVERLOAD)) expect = d;
        }
        assert.equal(mh.schedule(svc, v4flow(f, addr, 1)), expect);
        home.flags &= ~DEST_F_OVERLOAD;
      }
    });
  });

  describe('property', () => {
    it('removing one of N destinations remaps little more than its own clients', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 4, max: 16 }),
          fc.nat(),
          fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 16, maxLength: 16 }),
          (n, pick, ws) => {
            const { svc, dests } = build(ws.slice(0, n));
            const before = [...tableOf(svc)];
            const gone = dests[pick % n]!;
            delDest(svc, gone);
            const after = tableOf(svc);
            let moved = 0;
            let own = 0;
            for (let i = 0; i < M; i++) {
              if (before[i] === gone) own++;
              else if (after[i] !== before[i]) moved++;
            }
            // Maglev is only nearly minimal: about 1% (at most ~2%) of the other slots move.
            assert.ok(moved / M < 0.04, `moved ${moved} (own ${own})`);
            assert.ok(after.every((d) => d !== gone && d !== null));
          },
        ),
        { numRuns: 40 },
      );
    });
  });
});
