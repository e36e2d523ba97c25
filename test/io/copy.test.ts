import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WordCopier, copyWords } from '../../src/dataplane/io/copy.js';

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

test('copyWords copies exactly n words, four at a time and the rest one by one', () => {
  const src = Int32Array.from({ length: 64 }, (_, i) => (i * 0x01010101 + 0x7f) | 0);
  for (let n = 0; n <= 21; n++) {
    for (const [d, s] of [
      [0, 0],
      [3, 5],
      [7, 1],
    ] as const) {
      const dst = new Int32Array(40).fill(-7);
      copyWords(dst, d, src, s, n);
      for (let i = 0; i < dst.length; i++) {
        const want = i >= d && i < d + n ? src[s + i - d] : -7;
        assert.equal(dst[i], want, `n=${n} d=${d} s=${s} word ${i}`);
      }
    }
  }
});
