/**
 * `ipvs adm -L -c` of a large table: the listing comes from the daemon in pages
 * (`getConnsPage`, whole index buckets of about 10,000 entries each), so the daemon never builds
 * a million-row reply at once. Every connection is listed exactly once under one header, the
 * pages are what the command promises, and bad page arguments are refused. The client prints
 * each page before it asks for the next (a slow or vanished reader holds the listing back, as
 * ipvsadm reading /proc/net/ip_vs_conn row by row), and looks each address up once per listing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runAdm } from '../../src/cli/adm/run.js';
import type { NameResolver } from '../../src/cli/adm/netdb.js';
import { Ipvs } from '../../src/core/ipvs.js';
import type { CtlBackend } from '../../src/ctl/backend.js';
import { execute } from '../../src/ctl/commands.js';
import { localBackend } from '../../src/ctl/controller.js';
import { fillConns } from '../helpers/ipvs.js';
import { Adm, RESOLVER } from './helpers.js';

function filled(n: number): Ipvs {
  return fillConns(new Ipvs({ maxConns: n + 16, log: () => {}, now: () => 1_000_000 }), n);
}

/** A backend that counts the pages asked for; `onPage` sees each request. */
function counting(
  ipvs: Ipvs,
  onPage: () => void = () => {},
): { backend: CtlBackend; pages: () => number } {
  const inner = localBackend(ipvs);
  let pages = 0;
  return {
    backend: {
      call: (cmd) => {
        if (cmd.cmd === 'getConnsPage') {
          pages++;
          onPage();
        }
        return inner.call(cmd);
      },
      close: () => inner.close(),
    },
    pages: () => pages,
  };
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

  it('prints each page before asking for the next, waits for a slow reader, stops for a gone one', async () => {
    const ipvs = filled(25_000);
    try {
      // a reader that takes each page only later: no page is asked for while one is unread
      let unread = false;
      let early = 0;
      const { backend, pages } = counting(ipvs, () => {
        if (unread) early++;
      });
      const seen: number[] = [];
      let rows = 0;
      let status = await runAdm(['-L', '-c', '-n'], {
        stdout: {
          write: (s: string) => {
            seen.push(pages());
            rows += s.split('\n').length - 1;
            unread = true;
            return new Promise<void>((r) =>
              setTimeout(() => {
                unread = false;
                r();
              }, 5),
            );
          },
        },
        stderr: { write: () => {} },
        backend,
        resolver: RESOLVER,
      });
      assert.equal(status, 0);
      assert.equal(rows, 25_002);
      assert.equal(early, 0, 'pages asked for while the reader had not taken the last one');
      assert.ok(seen.length >= 3, `${seen.length} writes`);
      assert.deepEqual(
        seen,
        seen.map((_, i) => i + 1),
        'page k printed before page k+1 was asked for',
      );
      // a reader that went away after the first page: no more pages are fetched
      const before = pages();
      let writes = 0;
      status = await runAdm(['-L', '-c', '-n'], {
        stdout: { write: () => void writes++, broken: () => writes > 0 },
        stderr: { write: () => {} },
        backend,
        resolver: RESOLVER,
      });
      assert.equal(status, 0);
      assert.equal(writes, 1);
      assert.equal(pages() - before, 1);
    } finally {
      ipvs.close();
    }
  });

  it('without -n, looks each address up once for the whole listing, not once per page', async () => {
    const ipvs = filled(25_000);
    try {
      const { backend, pages } = counting(ipvs);
      const asked = new Map<string, number>();
      const resolver: NameResolver = {
        hostToAddr4: (n) => RESOLVER.hostToAddr4(n),
        addrToHost: (af, a) => {
          asked.set(a, (asked.get(a) ?? 0) + 1);
          return RESOLVER.addrToHost(af, a);
        },
        serviceToPort: (n, p) => RESOLVER.serviceToPort(n, p),
        portToService: (p, pr) => RESOLVER.portToService(p, pr),
      };
      let out = '';
      const status = await runAdm(['-L', '-c'], {
        stdout: { write: (s: string) => (out += s) },
        stderr: { write: () => {} },
        backend,
        resolver,
      });
      assert.equal(status, 0);
      assert.ok(pages() >= 3, `${pages()} pages`);
      // 16 clients per address (fillConns): 1,563 client addresses, the VIP and the real server
      assert.equal(asked.size, 1_565);
      assert.deepEqual(new Set(asked.values()), new Set([1]));
      // the names are still used on every page
      const rows = out.split('\n').filter((l) => l.startsWith('TCP'));
      assert.equal(rows.length, 25_000);
      assert.ok(rows.every((l) => / vip\.example:http /.test(l) && / rs1\.example:http$/.test(l)));
    } finally {
      ipvs.close();
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
