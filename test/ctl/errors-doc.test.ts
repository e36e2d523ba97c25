/**
 * docs/errors.md lists every error code the sources define, and nothing else (STYLE.md, Errors).
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function walk(dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (n.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('docs/errors.md', () => {
  const codesInSource = new Set<string>();
  for (const f of walk(join(ROOT, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/'(IPVS_ERR_[A-Z0-9_]+)'/g))
      codesInSource.add(m[1]!);
  }
  const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const codesInDoc = new Set([...doc.matchAll(/`(IPVS_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]!));

  it('documents every code defined in src/', () => {
    const missing = [...codesInSource].filter((c) => !codesInDoc.has(c));
    assert.deepEqual(missing, []);
  });

  it('documents no code that src/ does not define', () => {
    const extra = [...codesInDoc].filter((c) => !codesInSource.has(c));
    assert.deepEqual(extra, []);
  });
});
