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
      // ct_sip_get_header / sip_skip_whitespace: white space may continue on a folded line
      [
        'a value folded onto the next line',
        Buffer.from('INVITE x SIP/2.0\r\nCall-ID:\r\n \tfolded@host\r\n'),
        'folded@host',
      ],
      // get_callid: a header whose value is no Call-ID makes the search go on after it
      [
        'a malformed value is passed over for a later Call-ID',
        Buffer.from('INVITE x SIP/2.0\r\nCall-ID: @bad\r\nCall-ID: good\r\n'),
        'good',
      ],
      // ct_sip_get_header: a name that matches but is not followed by a colon ends the search
      [
        'a longer name that starts with Call-ID ends the search',
        Buffer.from('INVITE x SIP/2.0\r\nCall-IDx: a\r\nCall-ID: b\r\n'),
        null,
      ],
      [
        'a compact name followed by punctuation ends the search',
        Buffer.from('INVITE x SIP/2.0\r\ni-x: a\r\ni: b\r\n'),
        null,
      ],
      // the kernel's ctype table counts ISO 8859-1 letters as alphanumeric (lib/ctype.c)
      [
        'ISO 8859-1 letters belong to the value',
        Buffer.from('INVITE x SIP/2.0\r\nCall-ID: caf\xe9@h\xf4te\r\n', 'latin1'),
        'caf\xe9@h\xf4te',
      ],
      // ct_sip_get_header: the character that starts a line is never itself taken as a line end
      [
        'a line after an empty LF-only line is not examined',
        Buffer.from('INVITE x SIP/2.0\nVia: y\n\ni: body\n'),
        null,
      ],
      [
        'a line after an empty CRLF line is examined',
        Buffer.from('INVITE x SIP/2.0\r\nVia: y\r\n\r\ni: body\r\n'),
        'body',
      ],
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

  it('a server that sends a call pinned to another server takes the call over (ip_vs_new_conn_out)', () => {
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
    // the remote party calls in and the call lands on one server; then the other one sends a
    // message of the same call to that party
    const first = daddr(ipvs.ops.schedule(svc, sipFlow('203.0.113.9', 5070, 'shared')));
    const [firstIp, otherIp] =
      first === 0xc633640a
        ? ['198.51.100.10', '198.51.100.11']
        : ['198.51.100.11', '198.51.100.10'];
    const out = flow(17, otherIp, 5060, '203.0.113.9', 5070);
    const msg = sip('shared');
    out.payload = msg;
    out.payloadLength = msg.length;
    assert.ok(ipvs.ops.peConnOut(out) >= 0);
    // the old template no longer matches (vport 0xffff), a new one pins the call to the sender
    const tmpl = ipvs.listConns().filter((c) => c.flags & 0x1000);
    assert.deepEqual(
      tmpl.map((t) => [t.daddr, t.vport]).sort(),
      [
        [firstIp, 0xffff],
        [otherIp, 5060],
      ].sort(),
    );
    const next = daddr(ipvs.ops.schedule(svc, sipFlow('203.0.113.9', 5072, 'shared')));
    assert.notEqual(next, first, 'new messages of the call follow the server that took it over');
  });

  it('a real server’s most recent NAT entry decides: a non-SIP service there starts nothing', () => {
    const { ipvs } = makeIpvs();
    const sipSvc = svcSpec(VIP, 5060, { protocol: 17, scheduler: 'rr', pe: 'sip' });
    const plain = svcSpec('192.0.2.2', 5060, { protocol: 17, scheduler: 'rr' });
    ipvs.addService(sipSvc);
    ipvs.addService(plain);
    ipvs.addDest(sipSvc, destSpec('198.51.100.10', 5060));
    ipvs.addDest(plain, destSpec('198.51.100.10', 5060));
    const out = () => {
      const f = flow(17, '198.51.100.10', 5060, '203.0.113.9', 5060);
      const msg = sip('which-service');
      f.payload = msg;
      f.payloadLength = msg.length;
      return f;
    };
    // ip_vs_find_real_service returns the plain service's destination, hashed last
    assert.equal(ipvs.ops.peConnOut(out()), NO_CONN);
    // re-adding the SIP service's destination puts it at the head of the real-server bucket
    ipvs.delDest(sipSvc, { addr: '198.51.100.10', port: 5060 });
    ipvs.addDest(sipSvc, destSpec('198.51.100.10', 5060));
    assert.ok(ipvs.ops.peConnOut(out()) >= 0);
    // an edit that changes nothing keeps the order; one that changes the method rehashes
    ipvs.editDest(plain, destSpec('198.51.100.10', 5060, { weight: 2 }));
    assert.ok(ipvs.ops.peConnOut(out()) >= 0);
    ipvs.editDest(plain, destSpec('198.51.100.10', 5060, { fwd: 3 }));
    ipvs.editDest(plain, destSpec('198.51.100.10', 5060));
    assert.equal(ipvs.ops.peConnOut(out()), NO_CONN);
  });

  it('a server of a SIP service without persistence still gets its connection, without a template', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec(VIP, 5060, { protocol: 17, scheduler: 'rr', flags: 0, pe: 'sip' });
    ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 5060));
    // no Call-ID is needed: the engine only fills template data for persistent services
    const out = flow(17, '198.51.100.10', 5060, '203.0.113.9', 5060);
    const msg = Buffer.from('NOTIFY sip:x SIP/2.0\r\n\r\n');
    out.payload = msg;
    out.payloadLength = msg.length;
    assert.ok(ipvs.ops.peConnOut(out) >= 0);
    const cs = ipvs.listConns();
    assert.deepEqual(
      cs.map((c) => [c.flags & 0x1000, c.caddr, c.cport, c.vaddr, c.vport, c.daddr, c.dport]),
      [[0, '203.0.113.9', 5060, VIP, 5060, '198.51.100.10', 5060]],
    );
  });

  it('one-packet SIP service without persistence: each answer of a server is translated', () => {
    const { ipvs } = makeIpvs();
    const k = svcSpec(VIP, 5060, { protocol: 17, scheduler: 'rr', flags: 4, pe: 'sip' });
    ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 5060));
    const out = flow(17, '198.51.100.10', 5060, '203.0.113.9', 5060);
    const msg = sip('ops-call');
    out.payload = msg;
    out.payloadLength = msg.length;
    const h = ipvs.ops.peConnOut(out);
    assert.ok(h >= 0);
    assert.ok(ipvs.conns.flags(h) & 0x2000, 'the connection is a one-packet one');
    assert.equal(ipvs.conns.vport(h), 5060);
    assert.deepEqual(ipvs.listConns(), [], 'one-packet connections are never in the table');
  });

  it('templates of the engine stop matching once the service drops the engine', () => {
    const { ipvs } = makeIpvs();
    const spec = { protocol: 17, scheduler: 'rr', flags: 1, timeout: 300 } as const;
    const k = svcSpec(VIP, 5060, { ...spec, pe: 'sip' });
    const svc = ipvs.addService(k);
    ipvs.addDest(k, destSpec('198.51.100.10', 5060));
    ipvs.ops.schedule(svc, sipFlow('203.0.113.5', 5060, 'call-1'));
    ipvs.editService(svcSpec(VIP, 5060, { ...spec, pe: '' }));
    // the kernel hashes engine templates by their data, so a plain lookup never finds them
    ipvs.ops.schedule(svc, sipFlow('203.0.113.5', 5062, 'call-1'));
    const tmpl = ipvs.listConns().filter((c) => c.flags & 0x1000);
    assert.deepEqual(tmpl.map((t) => [t.peName, t.peData]).sort(), [
      ['', ''],
      ['sip', 'call-1'],
    ]);
  });
});
