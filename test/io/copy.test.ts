import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WordCopier } from '../../src/dataplane/io/copy.js';

test('WordCopier copies exactly the requested bytes at every alignment of both sides', () => {
  const src = new Uint8Array(256);
  for (let i = 0; i < src.length; i++) src[i] = (i * 151 + 7) & 0xff;
  // a view that starts off a word boundary takes the DataView path on that side
  const srcOdd = new Uint8Array(src.buffer, 1, 200);
  const c = new WordCopier();
  for (const s of [src, srcOdd]) {
    for (let so = 0; so < 8; so++) {
      for (let d = 0; d < 8; d++) {
        for (const n of [0, 1, 2, 3, 4, 5, 7, 13, 50, 64, 97]) {
          const dst = new Uint8Array(192).fill(0xee);
          c.copy(dst, d, s, so, n);
          for (let i = 0; i < dst.length; i++) {
            const want = i >= d && i < d + n ? s[so + i - d] : 0xee;
            assert.equal(dst[i], want, `so=${so} d=${d} n=${n} byte ${i}`);
          }
        }
      }
    }
  }
});
