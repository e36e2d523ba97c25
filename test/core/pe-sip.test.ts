import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SCHED_DROP } from '../../src/core/conn-ops.js';
import { NO_CONN } from '../../src/core/conn.js';
import { sipCallId } from '../../src/core/pe-sip.js';
import { destSpec, flow, makeIpvs, svcSpec } from '../helpers/ipvs.js';

const VIP = '192.0.2.1';

function sip(callId: string, header = 'Call-ID'): Buffer {
  return Buffer.from(
    `INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:5060\r\n${header}: ${callId}\r\nCSeq: 1 INVITE\r\n\r\n`,
    'latin1',
  );
}

function sipFlow(src: string, sport: number, callId: string | null) {
  const f = flow(17, src, sport, VIP, 5060);
  const p = callId === null ? Buffer.from('not sip at all\r\n') : sip(callId);
  f.payload = p;
  f.payloadOffset = 0;
  f.payloadLength = p.length;
  return f;
}

describe('SIP persistence engine', () => {
  describe('sipCallId', () => {
    const cases: [string, Buffer, string | null][] = [
      ['long form', sip('a84b4c76e66710@pc33.example.com'), 'a84b4c76e66710@pc33.example.com'],
      ['compact form', sip('f81d4fae-7dec', 'i'), 'f81d4fae-7dec'],
      ['any letter case and spaces before the colon', sip('xyz', 'call-id  '), 'xyz'],
      [
        'not at the start of a line',
        Buffer.from('INVITE x SIP/2.0\r\nTo: <sip:a>;Call-ID: nope\r\n\r\n'),
        null,
      ],
      ['value not followed by a line end', Buffer.from('INVITE x SIP/2.0\r\nCall-ID: abc'), null],
      ['value longer than 255 bytes', sip('x'.repeat(256)), null],
      ['255 bytes is fine', sip('y'.repeat(255)), 'y'.repeat(255)],
      [
        'compact name must not run into letters',
        Buffer.from('INVITE x SIP/2.0\r\nin: 5\r\ni: ok\r\n'),
        'ok',
      ],
      [
        'bare line feeds end lines too',
        Buffer.from('INVITE x SIP/2.0\nCall-ID: lf-only\n\n'),
        'lf-only',
      ],
      ['no Call-ID', Buffer.from('INVITE x SIP/2.0\r\nVia: y\r\n\r\n'), null],
    ];
    for (const [name, msg, want] of cases) {
      it(name, () => assert.equal(sipCallId(msg, 0, msg.length), want));
    }
  });

  it('pins each call to one server and lets different calls of one client be scheduled apart', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec(VIP, 5060, {
      protocol: 17,
      scheduler: 'rr',
      flags: 1,
      timeout: 300,
      pe: 'sip',
    });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 5060));
    ipvs.addDest(k, destSpec('198.51.100.11', 5060));
    const daddr = (h: number) => ipvs.conns.cold[ipvs.conns.daddrOff(h)];
    const a = ipvs.ops.schedule(svc, sipFlow('203.0.113.5', 5060, 'call-1'));
    const b = ipvs.ops.schedule(svc, sipFlow('203.0.113.5', 5062, 'call-2'));
    const a2 = ipvs.ops.schedule(svc, sipFlow('203.0.113.5', 5064, 'call-1'));
    assert.notEqual(daddr(a), daddr(b), 'rr gives the second call the other server');
    assert.equal(daddr(a2), daddr(a), 'the first call stays on its server');
    const tmpl = ipvs.listConns().filter((c) => c.flags & 0x1000);
    assert.deepEqual(tmpl.map((t) => [t.peName, t.peData]).sort(), [
      ['sip', 'call-1'],
      ['sip', 'call-2'],
    ]);
    assert.deepEqual([tmpl[0]!.cport, tmpl[0]!.vport], [0, 5060]);
  });

  it('drops a new packet whose Call-ID cannot be found', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec(VIP, 5060, {
      protocol: 17,
      scheduler: 'rr',
      flags: 1,
      timeout: 300,
      pe: 'sip',
    });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 5060));
    assert.equal(ipvs.ops.schedule(svc, sipFlow('203.0.113.5', 5060, null)), SCHED_DROP);
    assert.equal(ipvs.conns.count, 0);
  });

  it('creates a connection for a call the server starts, so answers reach that server', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec(VIP, 5060, {
      protocol: 17,
      scheduler: 'rr',
      flags: 1,
      timeout: 300,
      pe: 'sip',
    });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 5060));
    ipvs.addDest(k, destSpec('198.51.100.11', 5060));
    // the server 198.51.100.11 calls 203.0.113.9
    const out = flow(17, '198.51.100.11', 5060, '203.0.113.9', 5060);
    const msg = sip('server-call');
    out.payload = msg;
    out.payloadLength = msg.length;
    const h = ipvs.ops.peConnOut(out);
    assert.ok(h >= 0);
    const c = ipvs.listConns().find((x) => !(x.flags & 0x1000))!;
    assert.deepEqual(
      [c.caddr, c.cport, c.vaddr, c.vport, c.daddr, c.dport],
      ['203.0.113.9', 5060, VIP, 5060, '198.51.100.11', 5060],
    );
    // the remote party's reply is found by the in-lookup; a new message of the call sticks to .11
    const back = sipFlow('203.0.113.9', 5070, 'server-call');
    const h2 = ipvs.ops.schedule(svc, back);
    assert.equal(ipvs.conns.cold[ipvs.conns.daddrOff(h2)], 0xc633640b);
    // a packet from a host that is no real server creates nothing
    const stray = flow(17, '198.51.100.99', 5060, '203.0.113.9', 5060);
    stray.payload = msg;
    stray.payloadLength = msg.length;
    assert.equal(ipvs.ops.peConnOut(stray), NO_CONN);
  });
});
