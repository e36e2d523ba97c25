/**
 * The FTP helper (spec §7.2): PORT / EPRT create the server's active data connection, PASV / EPSV
 * replies are rewritten to the VIP with the data connection prepared (NO_CPORT), and the payload
 * size change is followed by the sequence adjustment on every later segment in both directions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONN_F_NO_CPORT, CONN_F_OUT_SEQ } from '../../../src/core/constants.js';
import { destSpec, svcSpec } from '../../helpers/ipvs.js';
import { CLIENT, MAC, RS1, RS2, VIP, checksumErrors, makeLab } from './lab.js';
import { ACK, PSH, SYN, dec, dst, rsTcp4, src, tcp4 } from './frames.js';

function ftpLab() {
  const lab = makeLab();
  const k = svcSpec(VIP, 21, { scheduler: 'rr' });
  lab.ipvs.addService(k);
  lab.ipvs.addDest(k, destSpec(RS1, 21));
  let cseq = 1000;
  let sseq = 9000;
  const client = (flags: number, payload?: string, sport = 40000, dport = 21) => {
    const r = lab.send('eth0', tcp4({ sport, dport, flags, seq: cseq, ack: sseq, payload }));
    cseq += (payload?.length ?? 0) + (flags & SYN ? 1 : 0);
    return r;
  };
  const server = (flags: number, payload?: string) => {
    const r = lab.send('eth1', rsTcp4({ sport: 21, flags, seq: sseq, ack: cseq, payload }));
    sseq += (payload?.length ?? 0) + (flags & SYN ? 1 : 0);
    return r;
  };
  client(SYN);
  server(SYN | ACK);
  client(ACK);
  return { lab, client, server, seqs: () => ({ cseq, sseq }) };
}

const payloadOf = (f: Buffer): string => {
  const v = dec(f);
  return f.subarray(v.payloadOffset, v.payloadOffset + v.payloadLength).toString('latin1');
};

describe('FTP helper', () => {
  it('binds to NAT connections of port 21 only', () => {
    const { lab } = ftpLab();
    assert.equal(lab.engine.ftp.size, 1);
  });

  it('PASV: rewrites the 227 reply to the VIP, prepares a NO_CPORT data connection, adjusts sequences', () => {
    const { lab, client, server, seqs } = ftpLab();
    server(PSH | ACK, '220 ready\r\n');
    client(PSH | ACK, 'PASV\r\n');
    const { sseq: s0 } = seqs();
    const reply = '227 Entering Passive Mode (192,168,1,11,195,80).\r\n';
    const r = server(PSH | ACK, reply);
    const out = r.eth0[0]!;
    const rewritten = '227 Entering Passive Mode (10,0,0,100,195,80).\r\n';
    assert.equal(payloadOf(out), rewritten);
    assert.equal(dec(out).tcpSeq, s0, 'the rewritten segment keeps its own sequence number');
    assert.deepEqual(checksumErrors(out), []);
    const diff = rewritten.length - reply.length;
    assert.equal(diff, -2);
    // the data connection waits for the client: NO_CPORT, LISTEN, to the announced server port
    const data = lab.ipvs.listConns().find((c) => c.vport === 50000)!;
    assert.deepEqual(
      [data.cport, data.daddr, data.dport, data.stateName, (data.flags & CONN_F_NO_CPORT) !== 0],
      [0, RS1, 50000, 'LISTEN', true],
    );
    // the next server segment is shifted by the delta; the client's ACK is shifted back
    const next = server(PSH | ACK, '150 here it comes\r\n').eth0[0]!;
    assert.equal(dec(next).tcpSeq, (s0 + reply.length + diff) >>> 0);
    assert.deepEqual(checksumErrors(next), []);
    const ackSeen = s0 + reply.length + diff + 19;
    const back = lab.send('eth0', tcp4({ dport: 21, flags: ACK, seq: seqs().cseq, ack: ackSeen }))
      .eth1[0]!;
    assert.equal(dec(back).tcpAck, (s0 + reply.length + 19) >>> 0);
    assert.deepEqual(checksumErrors(back), []);
    const ctl = lab.ipvs.conns.inGet(2, 6, [0x0a000005], 40000, [0x0a000064], 21);
    assert.ok(lab.ipvs.conns.flags(ctl) & CONN_F_OUT_SEQ);
    // the client opens the data connection from any port: the NO_CPORT entry takes it
    const syn = lab.send('eth0', tcp4({ sport: 40123, dport: 50000, flags: SYN, seq: 1 }));
    const d = dec(syn.eth1[0]!);
    assert.deepEqual([dst(d), d.dstPort, d.srcPort], [RS1, 50000, 40123]);
    const filled = lab.ipvs.listConns().find((c) => c.vport === 50000)!;
    assert.deepEqual(
      [filled.cport, filled.flags & CONN_F_NO_CPORT, filled.stateName],
      [40123, 0, 'SYN_RECV'],
    );
  });

  it('after a resize, the client’s SACK blocks move back with its ACK (nf_ct_sack_adjust)', () => {
    const { lab, client, server, seqs } = ftpLab();
    client(PSH | ACK, 'PASV\r\n');
    const { sseq: s0 } = seqs();
    const reply = '227 Entering Passive Mode (192,168,1,11,195,80).\r\n';
    server(PSH | ACK, reply);
    const diff = -2; // 192,168,1,11 → 10,0,0,100
    const seen = (s0 + reply.length + diff) >>> 0; // the client's view of the stream's end
    const block = (a: number, b: number): Uint8Array => {
      const d = new Uint8Array(8);
      new DataView(d.buffer).setUint32(0, a >>> 0);
      new DataView(d.buffer).setUint32(4, b >>> 0);
      return d;
    };
    // two blocks after the rewritten segment, and one before it (unchanged: previous delta 0)
    const two = new Uint8Array([
      ...block(seen + 100, seen + 200),
      ...block(seen + 300, seen + 400),
    ]);
    const frame = tcp4({
      dport: 21,
      flags: ACK,
      seq: seqs().cseq,
      ack: seen,
      tcpOptions: [{ kind: 1 }, { kind: 1 }, { kind: 5, data: two }, { kind: 1 }, { kind: 1 }],
    });
    const out = lab.send('eth0', frame).eth1[0]!;
    const v = dec(out);
    const opt = v.l4Offset + 20 + 2;
    assert.deepEqual([out[opt], out[opt + 1]], [5, 18]);
    const edges = [0, 1, 2, 3].map((i) => out.readUInt32BE(opt + 2 + 4 * i));
    assert.equal(v.tcpAck, (seen - diff) >>> 0);
    assert.deepEqual(
      edges,
      [seen + 100, seen + 200, seen + 300, seen + 400].map((e) => (e - diff) >>> 0),
    );
    assert.deepEqual(checksumErrors(out), []);
    const before = tcp4({
      dport: 21,
      flags: ACK,
      seq: seqs().cseq,
      ack: seen,
      tcpOptions: [{ kind: 1 }, { kind: 1 }, { kind: 5, data: block(s0 - 50, s0 - 10) }],
    });
    const o2 = lab.send('eth0', before).eth1[0]!;
    const q = dec(o2).l4Offset + 24;
    assert.deepEqual([o2.readUInt32BE(q), o2.readUInt32BE(q + 4)], [s0 - 50, s0 - 10]);
    assert.deepEqual(checksumErrors(o2), []);
  });

  it('EPSV: the 229 reply keeps |||port| and the data connection is prepared', () => {
    const { lab, client, server } = ftpLab();
    client(PSH | ACK, 'EPSV\r\n');
    const r = server(PSH | ACK, '229 Entering Extended Passive Mode (|||50001|)\r\n');
    assert.equal(payloadOf(r.eth0[0]!), '229 Entering Extended Passive Mode (|||50001|)\r\n');
    const data = lab.ipvs.listConns().find((c) => c.vport === 50001)!;
    assert.deepEqual([data.daddr, data.dport, data.stateName], [RS1, 50001, 'LISTEN']);
  });

  it('PORT: prepares the server’s active data connection from port 20, which is SNATed to VIP:20', () => {
    const { lab, client } = ftpLab();
    const r = client(PSH | ACK, 'PORT 10,0,0,5,156,65\r\n');
    assert.equal(
      payloadOf(r.eth1[0]!),
      'PORT 10,0,0,5,156,65\r\n',
      'not modified in this direction',
    );
    const data = lab.ipvs.listConns().find((c) => c.cport === 40001)!;
    assert.deepEqual(
      [data.caddr, data.vport, data.daddr, data.dport, data.stateName],
      [CLIENT, 20, RS1, 20, 'LISTEN'],
    );
    const syn = lab.send(
      'eth1',
      tcp4({
        src: RS1,
        dst: CLIENT,
        sport: 20,
        dport: 40001,
        flags: SYN,
        smac: MAC.rs1,
        dmac: MAC.eth1,
      }),
    );
    const o = dec(syn.eth0[0]!);
    assert.deepEqual([src(o), o.srcPort, dst(o), o.dstPort], [VIP, 20, CLIENT, 40001]);
    assert.deepEqual(checksumErrors(syn.eth0[0]!), []);
  });

  it('EPRT: |1|addr|port| with any delimiter', () => {
    const { lab, client } = ftpLab();
    client(PSH | ACK, 'EPRT !1!10.0.0.5!40002!\r\n');
    assert.ok(lab.ipvs.listConns().some((c) => c.cport === 40002 && c.vport === 20));
    client(PSH | ACK, 'EPRT |2|::1|40003|\r\n');
    assert.ok(!lab.ipvs.listConns().some((c) => c.cport === 40003), 'family must match');
  });

  it('PORT parses as ip_vs_ftp_get_addrport does: the space optional, any character ends it', () => {
    const { lab, client } = ftpLab();
    client(PSH | ACK, 'PORT10,0,0,5,156,66\n');
    assert.ok(lab.ipvs.listConns().some((c) => c.cport === 40002 && c.vport === 20));
    client(PSH | ACK, 'PORT  10,0,0,5,156,67 \r\n');
    assert.ok(lab.ipvs.listConns().some((c) => c.cport === 40003 && c.vport === 20));
  });

  it('227: parentheses optional (or doubled), the numbers end at any other character', () => {
    const { lab, client, server } = ftpLab();
    client(PSH | ACK, 'PASV\r\n');
    const r = server(PSH | ACK, '227 Entering Passive Mode ((192,168,1,11,195,82)).\r\n');
    assert.equal(payloadOf(r.eth0[0]!), '227 Entering Passive Mode ((10,0,0,100,195,82)).\r\n');
    client(PSH | ACK, 'PASV\r\n');
    const q = server(PSH | ACK, '227 =192,168,1,11,195,83 ok\r\n');
    assert.equal(payloadOf(q.eth0[0]!), '227 =10,0,0,100,195,83 ok\r\n');
    assert.ok(lab.ipvs.listConns().some((c) => c.vport === 50003 && c.dport === 50003));
  });

  it('an EPSV argument it does not take (EPSV ALL) ends the search of that segment', () => {
    const { lab, client, server } = ftpLab();
    client(PSH | ACK, 'EPSV ALL\r\nPASV\r\n');
    const reply = '227 Entering Passive Mode (192,168,1,11,195,84).\r\n';
    const r = server(PSH | ACK, reply);
    assert.equal(payloadOf(r.eth0[0]!), reply, 'no passive request pending: not rewritten');
    assert.ok(!lab.ipvs.listConns().some((c) => c.vport === 50004));
  });

  it('drops a control segment with a bad TCP checksum (the helper must not parse it)', () => {
    const { lab, seqs } = ftpLab();
    const f = tcp4({
      dport: 21,
      flags: PSH | ACK,
      seq: seqs().cseq,
      ack: seqs().sseq,
      payload: 'PASV\r\n',
    });
    f[14 + 20 + 16] ^= 0xff;
    const r = lab.send('eth0', f);
    assert.equal(r.reason, 'app-drop');
  });

  it('forgets its state when core frees the connection', () => {
    const { lab, advance } = { ...ftpLab(), advance: undefined as unknown as (ms: number) => void };
    void advance;
    const { ipvs } = lab;
    for (const h of ipvs.conns.handles()) ipvs.ops.del(h);
    assert.equal(lab.engine.ftp.size, 0);
  });
});

describe('FTP helper: passive data connections are found by the announced server endpoint', () => {
  it('a second real server announcing the same port to the same client gets its own entry', () => {
    // ip_vs_ftp_out looks the data connection up with ip_vs_conn_out_get (client, cport 0,
    // announced server address and port), so a pending entry toward RS1 is not reused for RS2
    const lab = makeLab();
    const k = svcSpec(VIP, 21, { scheduler: 'rr' });
    lab.ipvs.addService(k);
    lab.ipvs.addDest(k, destSpec(RS1, 21));
    lab.ipvs.addDest(k, destSpec(RS2, 21));
    const seq = new Map<string, number>();
    const next = (key: string, start: number, n: number): number => {
      const s = seq.get(key) ?? start;
      seq.set(key, s + n);
      return s;
    };
    const client = (sport: number, flags: number, payload?: string) =>
      lab.send(
        'eth0',
        tcp4({
          sport,
          dport: 21,
          flags,
          seq: next(`c${sport}`, 1000, (payload?.length ?? 0) + (flags & SYN ? 1 : 0)),
          ack: 9000,
          payload,
        }),
      );
    const server = (rs: string, mac: string, cport: number, flags: number, payload?: string) =>
      lab.send(
        'eth1',
        rsTcp4({
          src: rs,
          smac: mac,
          sport: 21,
          dport: cport,
          flags,
          seq: next(`s${cport}`, 9000, (payload?.length ?? 0) + (flags & SYN ? 1 : 0)),
          ack: 1001,
          payload,
        }),
      );
    for (const sport of [40000, 40001]) client(sport, SYN);
    const ctl = lab.ipvs.listConns().filter((c) => c.dport === 21);
    const rsOf = (cport: number) => ctl.find((c) => c.cport === cport)!.daddr;
    assert.deepEqual([rsOf(40000), rsOf(40001)].sort(), [RS1, RS2]);
    const macOf = (rs: string) => (rs === RS1 ? MAC.rs1 : MAC.rs2);
    for (const sport of [40000, 40001]) {
      server(rsOf(sport), macOf(rsOf(sport)), sport, SYN | ACK);
      client(sport, ACK);
      client(sport, PSH | ACK, 'PASV\r\n');
    }
    for (const sport of [40000, 40001]) {
      const rs = rsOf(sport);
      const o = rs.split('.').join(',');
      const r = server(
        rs,
        macOf(rs),
        sport,
        PSH | ACK,
        `227 Entering Passive Mode (${o},195,80)\r\n`,
      );
      assert.equal(payloadOf(r.eth0[0]!), '227 Entering Passive Mode (10,0,0,100,195,80)\r\n');
    }
    const data = lab.ipvs.listConns().filter((c) => c.vport === 50000);
    assert.deepEqual(data.map((c) => c.daddr).sort(), [RS1, RS2]);
    // the newest entry comes first in its hash chain: the client's next data connection takes it
    const syn = lab.send('eth0', tcp4({ sport: 40123, dport: 50000, flags: SYN, seq: 1 }));
    assert.equal(dst(dec(syn.eth1[0]!)), rsOf(40001));
  });
});
