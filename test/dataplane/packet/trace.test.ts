/**
 * `ipvs trace`: a capture (test/fixtures/engine/nat-conversation.pcap, open it in Wireshark)
 * replayed through a director configured from test/fixtures/engine/nat.rules; the frames it would
 * send are compared with test/fixtures/engine/nat-conversation.out.pcap. Set UPDATE_FIXTURES=1 to
 * rewrite the fixtures after a deliberate change.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { runTrace } from '../../../src/cli/trace.js';
import { PacketBuilder, readPcap, writePcap } from '../../../src/packet/index.js';
import { CLIENT, MAC, RS1, VIP, checksumErrors } from './lab.js';
import { ACK, FIN, PSH, SYN, tcp4, udp4 } from './frames.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const FIX = join(ROOT, 'test', 'fixtures', 'engine');
const DIR = '02:00:00:00:00:a0';

/** The capture: ARP for the VIP, a NAT conversation, a DR connection, a UDP service with no server. */
function capture(): Buffer[] {
  const c = (o: Parameters<typeof tcp4>[0]) => tcp4({ dmac: DIR, ...o });
  const s = (o: Parameters<typeof tcp4>[0]) =>
    tcp4({ src: RS1, dst: CLIENT, sport: 8080, dport: 40000, smac: MAC.rs1, dmac: DIR, ...o });
  return [
    Buffer.from(
      PacketBuilder.eth({ src: MAC.client, dst: 'ff:ff:ff:ff:ff:ff' })
        .arp({ op: 1, sha: MAC.client, spa: CLIENT, tha: '00:00:00:00:00:00', tpa: VIP })
        .build(),
    ),
    c({ flags: SYN, seq: 100 }),
    s({ flags: SYN | ACK, seq: 900, ack: 101 }),
    c({ flags: ACK, seq: 101, ack: 901 }),
    c({ flags: PSH | ACK, seq: 101, ack: 901, payload: 'GET / HTTP/1.0\r\n\r\n' }),
    s({ flags: PSH | ACK, seq: 901, ack: 119, payload: 'HTTP/1.0 200 OK\r\n\r\nhi' }),
    c({ flags: FIN | ACK, seq: 119, ack: 922 }),
    s({ flags: FIN | ACK, seq: 922, ack: 120 }),
    c({ flags: ACK, seq: 120, ack: 923 }),
    c({ sport: 40001, dport: 81, flags: SYN, seq: 5 }),
    udp4({ dmac: DIR, dport: 53, payload: 'query' }),
    c({ dport: 22, flags: SYN }),
  ];
}

describe('ipvs trace', () => {
  const inPath = join(FIX, 'nat-conversation.pcap');
  const outPath = join(FIX, 'nat-conversation.out.pcap');
  const frames = capture();

  it('the input fixture is the capture this test describes', () => {
    const bytes = writePcap(
      frames.map((data, i) => ({ data, timestampUs: 1_700_000_000_000_000 + i * 10_000 })),
    );
    if (process.env['UPDATE_FIXTURES'] || !existsSync(inPath)) writeFileSync(inPath, bytes);
    assert.deepEqual(readFileSync(inPath), bytes);
  });

  it('replays it, prints the trace, and sends what the fixture says', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ipvs-trace-'));
    const got = join(tmp, 'out.pcap');
    let out = '';
    let err = '';
    const status = await runTrace(
      [
        '--rules',
        join(FIX, 'nat.rules'),
        '--pcap',
        inPath,
        '--write',
        got,
        '--neigh',
        `${RS1}=${MAC.rs1}`,
        '--neigh',
        `192.168.1.12=${MAC.rs2}`,
      ],
      {
        stdout: { write: (s: string) => (out += s) },
        stderr: { write: (s: string) => (err += s) },
      },
    );
    assert.equal(status, 0, err);
    assert.match(out, /schedule +TCP 10\.0\.0\.100:80 rr: 192\.168\.1\.11:8080/);
    assert.match(
      out,
      /state +INPUT: NONE → SYN_RECV, timeout 60 s; 192\.168\.1\.11:8080 ActiveConn 1 InActConn 0/,
    );
    assert.match(out, /rewrite +SNAT → 10\.0\.0\.100:80/);
    assert.match(out, /state +OUTPUT: CLOSE_WAIT → TIME_WAIT/);
    assert.match(out, /rewrite +DR: destination MAC/);
    assert.match(out, /icmp +port unreachable sent to 10\.0\.0\.5/);
    assert.match(out, /ARP 10\.0\.0\.100 is-at 02:00:00:00:00:a0/);
    assert.match(out, /12 frames in, 11 frames out/);
    const sent = readPcap(readFileSync(got));
    assert.ok(sent.ok);
    for (const r of sent.file.records)
      if (r.data.length > 42) assert.deepEqual(checksumErrors(r.data), []);
    if (process.env['UPDATE_FIXTURES'] || !existsSync(outPath))
      writeFileSync(outPath, readFileSync(got));
    const want = readPcap(readFileSync(outPath));
    assert.ok(want.ok);
    assert.deepEqual(
      sent.file.records.map((r) => Buffer.from(r.data).toString('hex')),
      want.file.records.map((r) => Buffer.from(r.data).toString('hex')),
    );
  });

  it('refuses bad usage with status 2', async () => {
    let err = '';
    const status = await runTrace(['--pcap', 'x'], {
      stdout: { write: () => 0 },
      stderr: { write: (s: string) => (err += s) },
    });
    assert.equal(status, 2);
    assert.match(err, /--rules and --pcap are required/);
  });
});
