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
    assert.deepEqual(d6.addrs, v6, 'IPv6 addresses come back in their compressed form');
    const mapped = { ...v6, transport: 'tcp' as const, dstAddr: '::ffff:192.0.2.1' };
    const dm = decodeProxyHeader(
      encodeProxyV2(mapped, words(mapped.srcAddr), words(mapped.dstAddr)),
    );
    assert.ok(typeof dm === 'object');
    assert.equal(dm.addrs?.dstAddr, '::ffff:192.0.2.1');
    const t6 = decodeProxyHeader(Buffer.from('PROXY TCP6 2001:DB8:0::1 ::1 1 2\r\n'));
    assert.ok(typeof t6 === 'object');
    assert.deepEqual([t6.addrs?.srcAddr, t6.addrs?.dstAddr], ['2001:db8::1', '::1']);
  });

  it('#decodeProxyHeader refuses what does not exactly match the spec', () => {
    const line = (s: string) => decodeProxyHeader(Buffer.from(`${s}\r\n`));
    for (const bad of [
      'PROXY TCP4 1.2.3.4 5.6.7.8 -1 2',
      'PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1e3 2',
      'PROXY TCP4 1.2.3.4 5.6.7.8 080 2',
      'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2',
      'PROXY TCP4 1.2.3.4 5.6.7.8  2',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1 ',
      'PROXY TCP4  1.2.3.4 5.6.7.8 1 2',
      'PROXY TCP4 foo bar 1 2',
      'PROXY TCP4 ::1 ::1 1 2',
      'PROXY TCP6 1.2.3.4 5.6.7.8 1 2',
      'PROXY TCP4 01.2.3.4 5.6.7.8 1 2',
      'PROXY TCP4 1.2.3.256 5.6.7.8 1 2',
      'PROXY UDP4 1.2.3.4 5.6.7.8 1 2',
    ])
      assert.equal(line(bad), 'invalid', bad);
    const ok = line('PROXY TCP4 1.2.3.4 5.6.7.8 0 65535');
    assert.ok(typeof ok === 'object' && ok.addrs?.srcPort === 0 && ok.addrs.dstPort === 65535);
    const unknown = line('PROXY UNKNOWN anything at all');
    assert.ok(typeof unknown === 'object' && unknown.addrs === null);
    // v2: version/command, family and transport values the spec does not define
    const body = Buffer.from('7f0000017f000002303900500000', 'hex').subarray(0, 12);
    const v2 = (vc: number, ft: number, b: Buffer = body) => {
      const h = Buffer.from('0d0a0d0a000d0a515549540a00000000', 'hex');
      h[12] = vc;
      h[13] = ft;
      h.writeUInt16BE(b.length, 14);
      return decodeProxyHeader(Buffer.concat([h, b]));
    };
    for (const [vc, ft] of [
      [0x22, 0x11], // command 2
      [0x2f, 0x11], // command 15
      [0x21, 0x41], // family 4
      [0x21, 0xf1], // family 15
      [0x21, 0x13], // transport 3
      [0x31, 0x11], // version 3
    ])
      assert.equal(v2(vc!, ft!), 'invalid', `${vc!.toString(16)} ${ft!.toString(16)}`);
    const local = v2(0x20, 0x41); // LOCAL: the family is ignored
    assert.ok(typeof local === 'object' && local.addrs === null);
    const unspec = v2(0x21, 0x00, Buffer.alloc(0));
    assert.ok(typeof unspec === 'object' && unspec.addrs === null && unspec.length === 16);
    const tcp4 = v2(0x21, 0x11);
    assert.ok(typeof tcp4 === 'object');
    assert.deepEqual(tcp4.addrs, {
      af: 2,
      transport: 'tcp',
      srcAddr: '127.0.0.1',
      dstAddr: '127.0.0.2',
      srcPort: 12345,
      dstPort: 80,
    });
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
