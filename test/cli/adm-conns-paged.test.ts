/**
 * `ipvs adm -L -c` of a large table: the listing comes from the daemon in pages
 * (`getConnsPage`, whole index buckets of about 10,000 entries each), so the daemon never builds
 * a million-row reply at once. Every connection is listed exactly once under one header, the
 * pages are what the command promises, and bad page arguments are refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ipvs } from '../../src/core/ipvs.js';
import { execute } from '../../src/ctl/commands.js';
import { fillConns } from '../helpers/ipvs.js';
import { Adm } from './helpers.js';

function filled(n: number): Ipvs {
  return fillConns(new Ipvs({ maxConns: n + 16, log: () => {}, now: () => 1_000_000 }), n);
}

describe('ipvs adm -L -c in pages', () => {
  it('lists 25,000 connections, each once, under one header', async () => {
    const adm = new Adm(filled(25_000));
    try {
      const r = await adm.run('-L -c -n');
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.split('\n').filter(Boolean);
      assert.equal(lines[0], 'IPVS connection entries');
      assert.match(lines[1]!, /^pro expire state/);
      assert.equal(lines.filter((l) => l === 'IPVS connection entries').length, 1);
      const rows = lines.slice(2);
      assert.equal(rows.length, 25_000);
      assert.equal(new Set(rows.map((l) => l.split(/\s+/)[3])).size, 25_000, 'each client once');
    } finally {
      adm.close();
    }
  });

  it('getConnsPage: whole buckets of at least max entries, then -1; bad arguments refused', () => {
    const ipvs = filled(5_000);
    try {
      let from = 0;
      let total = 0;
      let pages = 0;
      do {
        const p = execute(ipvs, { cmd: 'getConnsPage', from, max: 1000 });
        if (p.next >= 0) assert.ok(p.conns.length >= 1000, 'a page before the last is full');
        total += p.conns.length;
        from = p.next;
        pages++;
      } while (from >= 0);
      assert.equal(total, 5_000);
      assert.ok(pages >= 5 && pages <= 6, `${pages} pages`);
      for (const bad of [
        { from: -1, max: 10 },
        { from: 0, max: 0 },
        { from: 0, max: 2_000_000 },
        { from: 1.5, max: 10 },
      ])
        assert.throws(
          () => execute(ipvs, { cmd: 'getConnsPage', ...bad }),
          (e: unknown) => (e as { code?: string }).code === 'IPVS_ERR_BAD_REQUEST',
        );
    } finally {
      ipvs.close();
    }
  });
});
