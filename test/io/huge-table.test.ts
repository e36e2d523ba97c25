/**
 * The daemon's table allocator: the connection table's records and index on transparent huge
 * pages (native `hugeBuffer`), checked from the process's own memory map, a connection table
 * that works on that memory, and the mapping given back when the table is collected.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { parseIp } from '../../src/core/addr.js';
import { NO_CONN } from '../../src/core/conn.js';
import { Ipvs } from '../../src/core/ipvs.js';
import { hugeTableAlloc, loadNative } from '../../src/dataplane/io/native.js';
import { LAB_MODULE, advisedMiB, ioModule } from './lab.js';

const MIB = 1 << 20;

describe('huge-page table memory', () => {
  it('hugeBuffer returns zeroed, writable memory of the asked length on an advised 2 MiB-aligned mapping', () => {
    const before = advisedMiB();
    const bytes = 5 * MIB + 12;
    const buf = loadNative().hugeBuffer(bytes);
    assert.ok(buf instanceof ArrayBuffer);
    assert.equal(buf.byteLength, bytes);
    const u = new Uint32Array(buf, 0, (bytes / 4) | 0);
    assert.equal(
      u.findIndex((v) => v !== 0),
      -1,
    );
    u[u.length - 1] = 0xdeadbeef;
    assert.equal(new DataView(buf).getUint32(bytes - 4, true), 0xdeadbeef);
    // advised memory grows by the length rounded up to whole 2 MiB pages
    assert.equal(advisedMiB() - before, 6);
  });

  it('hugeBuffer rejects a length that is not a positive number, with a coded error', () => {
    const native = loadNative();
    for (const bad of [0, -1, Number.NaN, 'x' as unknown as number]) {
      assert.throws(
        () => native.hugeBuffer(bad),
        (e: Error & { code?: string }) => e.code === 'ERR_ARG' && /positive/.test(e.message),
      );
    }
  });

  it('tables under 2 MiB stay on ordinary memory; a connection table works on huge pages', () => {
    const alloc = hugeTableAlloc();
    const before = advisedMiB();
    const small = alloc(64 * 1024);
    assert.equal(small.byteLength, 64 * 1024);
    assert.equal(advisedMiB(), before, 'a 64 KiB table is not given a huge page');
    const ipvs = new Ipvs({ maxConns: 100_000, now: () => 0, log: () => {}, tableAlloc: alloc });
    // records (100,000 × 112 B = 11.2 MB → 12 MiB of huge pages), index (512 KiB: ordinary)
    assert.equal(advisedMiB() - before, 12);
    const caddr = parseIp('203.0.113.7')!.words;
    const vaddr = parseIp('192.0.2.1')!.words;
    const daddr = parseIp('198.51.100.2')!.words;
    const handles: number[] = [];
    for (let p = 1000; p < 1100; p++) {
      handles.push(ipvs.ops.newConn(2, 6, caddr, p, vaddr, 80, 2, daddr, 8080, 0, null, 0));
    }
    assert.equal(ipvs.conns.count, 100);
    for (let p = 1000; p < 1100; p++) {
      const h = ipvs.conns.inGet(2, 6, caddr, p, vaddr, 80);
      assert.equal(h, handles[p - 1000]);
      assert.equal(ipvs.conns.dport(h), 8080);
    }
    assert.equal(ipvs.conns.inGet(2, 6, caddr, 1100, vaddr, 80), NO_CONN);
  });

  it('the mappings are returned when the table is collected', () => {
    const script = `
      const { hugeTableAlloc } = await import(${JSON.stringify(ioModule('native.js'))});
      const { advisedMiB } = await import(${JSON.stringify(LAB_MODULE)});
      const alloc = hugeTableAlloc();
      const base = advisedMiB();
      let keep = [];
      for (let i = 0; i < 8; i++) keep.push(new Uint8Array(alloc(4 << 20)).fill(1));
      const held = advisedMiB();
      keep = null;
      for (let r = 0; r < 6; r++) { globalThis.gc(); await new Promise((res) => setTimeout(res, 20)); }
      console.log(JSON.stringify({ base, held, end: advisedMiB() }));
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const f = JSON.parse(r.stdout) as { base: number; held: number; end: number };
    assert.equal(f.held - f.base, 32, JSON.stringify(f));
    assert.ok(f.end - f.base <= 4, `collected tables were unmapped: ${JSON.stringify(f)}`);
  });
});
