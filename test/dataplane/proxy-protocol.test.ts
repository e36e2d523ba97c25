/** PROXY protocol v1/v2 encoding and decoding (haproxy doc/proxy-protocol.txt). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../../src/core/addr.js';
import {
  decodeProxyHeader,
  encodeProxyV1,
  encodeProxyV2,
} from '../../src/dataplane/proxy/proxy-protocol.js';

const v4 = {
  af: 2,
  transport: 'tcp' as const,
  srcAddr: '192.0.2.1',
  srcPort: 51000,
  dstAddr: '198.51.100.7',
  dstPort: 443,
};
const v6 = {
  af: 10,
  transport: 'udp' as const,
  srcAddr: '2001:db8::1',
  srcPort: 5353,
  dstAddr: '2001:db8::2',
  dstPort: 53,
};
const words = (a: string) => parseIp(a)!.words;

describe('PROXY protocol', () => {
  it('#encodeProxyV1 writes the text line of the spec', () => {
    assert.equal(encodeProxyV1(v4).toString(), 'PROXY TCP4 192.0.2.1 198.51.100.7 51000 443\r\n');
  });

  it('#encodeProxyV2 writes signature, version/command, family, length and addresses', () => {
    const b = encodeProxyV2(v4, words(v4.srcAddr), words(v4.dstAddr));
    assert.equal(
      b.toString('hex'),
      '0d0a0d0a000d0a515549540a' + '21' + '11' + '000c' + 'c0000201' + 'c6336407' + 'c738' + '01bb',
    );
    const b6 = encodeProxyV2(v6, words(v6.srcAddr), words(v6.dstAddr));
    assert.equal(b6[13], 0x22);
    assert.equal(b6.readUInt16BE(14), 36);
  });

  it('#decodeProxyHeader round-trips both versions, followed by payload', () => {
    for (const b of [encodeProxyV1(v4), encodeProxyV2(v4, words(v4.srcAddr), words(v4.dstAddr))]) {
      const d = decodeProxyHeader(Buffer.concat([b, Buffer.from('GET /')]));
      assert.ok(typeof d === 'object');
      assert.equal(d.length, b.length);
      assert.deepEqual(d.addrs, v4);
    }
    const d6 = decodeProxyHeader(encodeProxyV2(v6, words(v6.srcAddr), words(v6.dstAddr)));
    assert.ok(typeof d6 === 'object');
    assert.equal(d6.addrs?.transport, 'udp');
    assert.equal(d6.addrs?.srcPort, 5353);
  });

  it('#decodeProxyHeader asks for more bytes on half a header and refuses garbage, never throwing', () => {
    const b = encodeProxyV2(v4, words(v4.srcAddr), words(v4.dstAddr));
    for (let n = 0; n < b.length; n++)
      assert.equal(decodeProxyHeader(b.subarray(0, n)), 'incomplete');
    const t = encodeProxyV1(v4);
    for (let n = 0; n < t.length - 1; n++)
      assert.equal(decodeProxyHeader(t.subarray(0, n)), 'incomplete');
    assert.equal(decodeProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')), 'invalid');
    assert.equal(decodeProxyHeader(Buffer.from(`PROXY ${'x'.repeat(200)}`)), 'invalid');
    for (let i = 0; i < 500; i++) {
      const r = Buffer.from(
        Array.from({ length: (i % 60) + 1 }, (_, j) => (i * 31 + j * 17) & 0xff),
      );
      decodeProxyHeader(r);
    }
  });
});
