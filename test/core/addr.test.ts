/**
 * Address text as IPVS's tools read it: IPv4 as glibc's inet_pton takes it (four decimal parts of
 * 1-3 digits, each at most 255, no leading zero, nothing else), checked case by case and against a
 * reference written straight from that rule over random strings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIp, parseIp, parseIpv4 } from '../../src/core/addr.js';

/** The rule, spelled out: split on dots, four parts, each /^(0|[1-9]\d{0,2})$/ and <= 255. */
function reference(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let v = 0;
  for (const p of parts) {
    if (!/^(?:0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return null;
    v = v * 256 + Number(p);
  }
  return v >>> 0;
}

describe('parseIpv4 (inet_pton)', () => {
  it('takes dotted quads and refuses everything inet_pton refuses', () => {
    const ok: Array<[string, number]> = [
      ['0.0.0.0', 0],
      ['1.2.3.4', 0x01020304],
      ['10.0.0.1', 0x0a000001],
      ['192.0.2.255', 0xc00002ff],
      ['255.255.255.255', 0xffffffff],
    ];
    for (const [t, v] of ok) assert.equal(parseIpv4(t), v, t);
    for (const t of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '1..2.3',
      '.1.2.3',
      '1.2.3.',
      '01.2.3.4',
      '1.2.3.04',
      '00.1.1.1',
      '1.2.3.0400',
      '256.0.0.0',
      '1.2.3.999',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '+1.2.3.4',
      '1.2.3.-4',
      '1.2.3.0x4',
      'a.b.c.d',
      '1.2.3.4/24',
      '....',
    ])
      assert.equal(parseIpv4(t), null, JSON.stringify(t));
  });

  it('agrees with the rule on 200,000 random strings of digits, dots and junk', () => {
    let x = 12345;
    const rnd = (n: number) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return (x >>> 8) % n;
    };
    const alphabet = '0123456789...a -';
    for (let k = 0; k < 200_000; k++) {
      let t = '';
      if (k & 1) t = [0, 1, 2, 3].map(() => String(rnd(300))).join('.');
      else for (let i = 1 + rnd(16); i > 0; i--) t += alphabet[rnd(alphabet.length)];
      assert.equal(parseIpv4(t), reference(t), JSON.stringify(t));
    }
  });

  it('parseIp and formatIp round-trip both families', () => {
    for (const t of ['192.0.2.1', '0.0.0.0', '2001:db8::1', '::', '::ffff:192.0.2.1']) {
      const a = parseIp(t)!;
      assert.equal(formatIp(a.af, a.words), t);
    }
    assert.equal(parseIp('192.0.2.01'), null);
  });
});
