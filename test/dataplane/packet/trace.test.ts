/**
 * `ipvs trace`: a capture (test/fixtures/engine/nat-conversation.pcap, open it in Wireshark)
 * replayed through a director configured from test/fixtures/engine/nat.rules; the frames it would
 * send are compared with test/fixtures/engine/nat-conversation.out.pcap. Set UPDATE_FIXTURES=1 to
 * rewrite the fixtures after a deliberate change. The same capture as pcapng
 * (nat-conversation.pcapng, written by Wireshark's `editcap -F pcapng`) gives the same frames; raw IP
 * and Linux cooked captures, gaps that expire connections, and every bad input (a coded error, exit
 * status 1, no stack trace) are covered too.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { runTrace } from '../../../src/cli/trace.js';
import { toEthernet } from '../../../src/dataplane/packet/trace.js';
import { LINKTYPE, PacketBuilder, readPcap, writePcap } from '../../../src/packet/index.js';
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
    // a SYN to a port with no service: IPVS leaves it to the host, which resets it
    assert.match(
      out,
      /local +for the VIP: TCP reset \(no socket on the VIP\)\n +verdict +ACCEPT \(vip-host\)/,
    );
    assert.match(
      out,
      /send .* 10\.0\.0\.100:22 → 10\.0\.0\.5:40000 \[\.R\] seq 0 ack 1001 ttl 64 DF/,
    );
    assert.match(out, /12 frames in, 12 frames out/);
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

  it('reads the same capture as pcapng (what Wireshark writes) and sends the same frames', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ipvs-trace-'));
    const a = join(tmp, 'a.pcap');
    const b = join(tmp, 'b.pcap');
    const common = ['--rules', join(FIX, 'nat.rules'), '--neigh', `${RS1}=${MAC.rs1}`];
    const r1 = await run([...common, '--pcap', inPath, '--write', a]);
    const r2 = await run([...common, '--pcap', join(FIX, 'nat-conversation.pcapng'), '--out', b]);
    assert.equal(r2.status, 0, r2.err);
    assert.equal(r2.out, r1.out.replace(a, b));
    assert.deepEqual(readFileSync(b), readFileSync(a));
  });

  it('a capture cut short: the frames before the cut are traced, then a coded error, status 1', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ipvs-trace-'));
    const cut = join(tmp, 'cut.pcap');
    const whole = readFileSync(inPath);
    writeFileSync(cut, whole.subarray(0, whole.length - 5));
    const r = await run(['--rules', join(FIX, 'nat.rules'), '--pcap', cut]);
    assert.equal(r.status, 1);
    assert.match(r.out, /^#11 /m);
    assert.doesNotMatch(r.out, /^#12 /m);
    assert.match(
      r.err,
      /^ipvs trace: IPVS_ERR_IO_PCAP: .*cut\.pcap: capture cut short: record 12 at byte \d+ cut short .*; the 11 frames before it were traced$/m,
    );
    noStack(r.err);
  });

  describe('bad input: a coded error on stderr, status 1, never a stack trace', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ipvs-trace-'));
    const notPcap = join(tmp, 'hello.pcap');
    writeFileSync(notPcap, 'hello, this is not a capture\n');
    const badRules = join(tmp, 'bad.rules');
    writeFileSync(badRules, '-A -t 10.0.0.100:80 -s nosuch\n');
    const sll = join(tmp, 'other.pcap');
    writeFileSync(sll, writePcap([], LINKTYPE.ETHERNET).fill(0, 20, 24).fill(105, 20, 21));
    const rules = join(FIX, 'nat.rules');
    const cases: { description: string; args: string[]; err: RegExp }[] = [
      {
        description: 'a capture that does not exist',
        args: ['--rules', rules, '--pcap', join(tmp, 'nope.pcap')],
        err: /IPVS_ERR_IO_PCAP: .*nope\.pcap: cannot read: no such file/,
      },
      {
        description: 'a capture that is a directory',
        args: ['--rules', rules, '--pcap', tmp],
        err: /IPVS_ERR_IO_PCAP: .*: cannot read: is a directory/,
      },
      {
        description: 'a file that is not a capture',
        args: ['--rules', rules, '--pcap', notPcap],
        err: /IPVS_ERR_IO_PCAP: .*hello\.pcap: not a pcap or pcapng file \(bad magic\)/,
      },
      {
        description: 'a capture of a link type the trace cannot replay',
        args: ['--rules', rules, '--pcap', sll],
        err: /IPVS_ERR_IO_PCAP: .*unsupported link type 105 \(supported: Ethernet 1, raw IP 101\/228\/229, Linux cooked 113\/276\)/,
      },
      {
        description: 'a rules file that does not exist',
        args: ['--rules', join(tmp, 'nope.rules'), '--pcap', inPath],
        err: /IPVS_ERR_STATE_FILE: cannot read rules file .*nope\.rules: no such file/,
      },
      {
        description: 'rules ipvsadm refuses',
        args: ['--rules', badRules, '--pcap', inPath],
        err: /Scheduler or persistence engine not found\nipvs trace: IPVS_ERR_STATE_FILE: rules file .*bad\.rules failed \(ipvsadm -R status 255/,
      },
      {
        description: 'a bad route',
        args: ['--rules', rules, '--pcap', inPath, '--route', 'nowhere via'],
        err: /IPVS_ERR_PKT_CONFIG: packet engine: bad route 'nowhere via'/,
      },
      {
        description: 'a sysctl without a value',
        args: ['--rules', rules, '--pcap', inPath, '--sysctl', 'conn_reuse_mode'],
        err: /IPVS_ERR_PKT_CONFIG: packet engine: --sysctl 'conn_reuse_mode': expected NAME=VALUE/,
      },
      {
        description: 'an unknown sysctl',
        args: ['--rules', rules, '--pcap', inPath, '--sysctl', 'nosuch=1'],
        err: /IPVS_ERR_NO_SYSCTL: no sysctl named nosuch/,
      },
      {
        description: 'a sysctl value the kernel would not read as an integer',
        args: ['--rules', rules, '--pcap', inPath, '--sysctl', 'conn_reuse_mode=1abc'],
        err: /IPVS_ERR_SYSCTL: --sysctl conn_reuse_mode=1abc: not an integer as the kernel reads one/,
      },
      {
        description: 'an output file that cannot be written (refused before the replay)',
        args: ['--rules', rules, '--pcap', inPath, '--write', join(tmp, 'no', 'dir', 'out.pcap')],
        err: /IPVS_ERR_IO_PCAP: .*out\.pcap: cannot write: ENOENT/,
      },
    ];
    for (const c of cases) {
      it(c.description, async () => {
        const r = await run(c.args);
        assert.equal(r.status, 1, r.err);
        assert.match(r.err, c.err);
        assert.match(r.err, /^ipvs trace: IPVS_ERR_[A-Z_]+: /m);
        assert.equal(r.out, '', 'nothing traced');
        noStack(r.err);
      });
    }
  });

  it('--help documents the inputs, --out and the exit status', async () => {
    const r = await run(['--help']);
    assert.equal(r.status, 0);
    for (const want of [
      /pcapng/,
      /Linux\s+cooked/,
      /--write FILE/,
      /alias --out/,
      /Exit status/,
      /expire/,
    ])
      assert.match(r.out, want);
  });

  it('a capture that jumps decades ahead is traced at once (missed timer periods are not replayed)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ipvs-trace-'));
    const cap = join(tmp, 'jump.pcap');
    const c = (o: Parameters<typeof tcp4>[0]) => tcp4({ dmac: DIR, ...o });
    writeFileSync(
      cap,
      writePcap([
        { data: c({ flags: SYN, seq: 100 }), timestampUs: 0 },
        // the largest time a classic pcap holds: 2^32 - 1 s, 136 years later
        { data: c({ sport: 40001, flags: SYN, seq: 7 }), timestampUs: 0xffffffff * 1e6 },
      ]),
    );
    const t0 = Date.now();
    const r = await run(['--rules', join(FIX, 'nat.rules'), '--pcap', cap, '--quiet']);
    assert.equal(r.status, 0, r.err);
    assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
    assert.match(r.out, /2 frames in, .*; 1 connections expired/);
  });

  it('the capture drives the clock: a connection idle past its timeout expires between frames', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ipvs-trace-'));
    const cap = join(tmp, 'gap.pcap');
    const t0 = 1_700_000_000_000_000;
    const c = (o: Parameters<typeof tcp4>[0]) => tcp4({ dmac: DIR, ...o });
    const s = (o: Parameters<typeof tcp4>[0]) =>
      tcp4({ src: RS1, dst: CLIENT, sport: 8080, dport: 40000, smac: MAC.rs1, dmac: DIR, ...o });
    writeFileSync(
      cap,
      writePcap([
        { data: c({ flags: SYN, seq: 100 }), timestampUs: t0 },
        { data: s({ flags: SYN | ACK, seq: 900, ack: 101 }), timestampUs: t0 + 10_000 },
        { data: c({ flags: ACK, seq: 101, ack: 901 }), timestampUs: t0 + 20_000 },
        // 1000 s later: past the 900 s ESTABLISHED timeout
        { data: c({ flags: ACK, seq: 101, ack: 901 }), timestampUs: t0 + 1_000_020_000 },
        { data: c({ sport: 40001, flags: SYN, seq: 7 }), timestampUs: t0 + 1_000_030_000 },
      ]),
    );
    const r = await run([
      '--rules',
      join(FIX, 'nat.rules'),
      '--pcap',
      cap,
      '--neigh',
      `${RS1}=${MAC.rs1}`,
    ]);
    assert.equal(r.status, 0, r.err);
    const frame4 = r.out.split(/\n(?=#)/).find((b) => b.startsWith('#4 '))!;
    assert.match(
      frame4,
      /expire +\+900\.020 s #0 TCP 10\.0\.0\.5:40000 → 10\.0\.0\.100:80 → 192\.168\.1\.11:8080 Masq ESTABLISHED, timeout 900 s/,
    );
    assert.match(frame4, /lookup +in: no connection/);
    // the host has no socket for it either: a reset with the acknowledged number as sequence
    assert.match(frame4, /verdict +ACCEPT \(vip-host\)/);
    assert.match(frame4, /10\.0\.0\.100:80 → 10\.0\.0\.5:40000 \[R\] seq 901 ack 0/);
    assert.match(r.out, /5 frames in, 5 frames out; .*; 1 connections expired/);
  });

  it('replays raw IP and Linux cooked (tcpdump -i any) captures as Ethernet frames', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ipvs-trace-'));
    const syn = tcp4({ dmac: DIR, flags: SYN, seq: 100 }).subarray(14);
    const sll2 = Buffer.alloc(20);
    sll2.writeUInt16BE(0x0800, 0);
    sll2.writeUInt32BE(2, 4);
    sll2.writeUInt16BE(1, 8);
    sll2[10] = 0; // PACKET_HOST
    sll2[11] = 6;
    Buffer.from(MAC.client.split(':').map((x) => parseInt(x, 16))).copy(sll2, 12);
    const sll1 = Buffer.alloc(16);
    sll1.writeUInt16BE(0, 0);
    sll1.writeUInt16BE(1, 2);
    sll1.writeUInt16BE(6, 4);
    Buffer.from(MAC.client.split(':').map((x) => parseInt(x, 16))).copy(sll1, 6);
    sll1.writeUInt16BE(0x0800, 14);
    const dir = Buffer.from(DIR.split(':').map((x) => parseInt(x, 16)));
    for (const [lt, rec] of [
      [LINKTYPE.RAW, syn],
      [LINKTYPE.LINUX_SLL, Buffer.concat([sll1, syn])],
      [LINKTYPE.LINUX_SLL2, Buffer.concat([sll2, syn])],
    ] as const) {
      const eth = toEthernet(lt, rec, dir);
      assert.equal(eth.subarray(0, 6).toString('hex'), dir.toString('hex'));
      assert.equal(eth.readUInt16BE(12), 0x0800);
      assert.deepEqual(eth.subarray(14), syn);
      if (lt !== LINKTYPE.RAW)
        assert.equal(eth.subarray(6, 12).toString('hex'), MAC.client.replaceAll(':', ''));
      else assert.equal(eth.subarray(6, 12).toString('hex'), '02000a000005', 'from the IP source');
      const f = join(tmp, `lt${lt}.pcap`);
      // writePcap writes 1 or 101; patch the header for the cooked link types
      const bytes = writePcap([rec], LINKTYPE.RAW);
      bytes.writeUInt32LE(lt, 20);
      writeFileSync(f, bytes);
      const r = await run([
        '--rules',
        join(FIX, 'nat.rules'),
        '--pcap',
        f,
        '--mac',
        DIR,
        '--neigh',
        `${RS1}=${MAC.rs1}`,
      ]);
      assert.equal(r.status, 0, r.err);
      assert.match(
        r.out,
        /schedule +TCP 10\.0\.0\.100:80 rr: 192\.168\.1\.11:8080/,
        `link type ${lt}`,
      );
      assert.match(
        r.out,
        /send +02:00:00:00:00:a0 → 02:00:00:00:01:11 IPv4 TCP 10\.0\.0\.5:40000 → 192\.168\.1\.11:8080 \[S\]/,
      );
    }
  });

  it('without --mac, takes the director’s MAC from a frame sent to it, never a broadcast one', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ipvs-trace-'));
    const f = join(tmp, 'bcast-first.pcap');
    const frames = [
      udp4({ dmac: 'ff:ff:ff:ff:ff:ff', dport: 9999, payload: 'x' }),
      tcp4({ dmac: '01:00:5e:00:00:01', dport: 22, flags: SYN }),
      tcp4({ dmac: DIR, flags: SYN, seq: 100 }),
    ];
    writeFileSync(f, writePcap(frames.map((data, i) => ({ data, timestampUs: i }))));
    const r = await run([
      '--rules',
      join(FIX, 'nat.rules'),
      '--pcap',
      f,
      '--neigh',
      `${RS1}=${MAC.rs1}`,
    ]);
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /director eth0 02:00:00:00:00:a0/);
    assert.doesNotMatch(
      r.out,
      /ff:ff:ff:ff:ff:ff →|01:00:5e:00:00:01 →/,
      'nothing sent from a group MAC',
    );
    // the broadcast UDP datagram and the multicast SYN to a closed port get no answer
    assert.doesNotMatch(r.out, /port unreachable|TCP reset/);
  });

  it('a reader that goes away (| head): no stack trace, the pcap still written, status 141', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ipvs-trace-'));
    const got = join(tmp, 'out.pcap');
    const bin = join(ROOT, 'bin', 'ipvs');
    const args = ['trace', '--rules', join(FIX, 'nat.rules'), '--pcap', inPath, '--write', got];
    const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.destroy(); // closed before the first line is written
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const status = await new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    noStack(err);
    assert.doesNotMatch(err, /EPIPE/);
    assert.equal(status, 141);
    // the same as with a reader that stays
    const whole = join(tmp, 'whole.pcap');
    const full = spawnSync(process.execPath, [bin, ...args.slice(0, -1), whole]);
    assert.equal(full.status, 0);
    assert.deepEqual(readFileSync(got), readFileSync(whole), 'the pcap was written whole');
  });

  it('notes captured frames whose checksum is wrong (offloaded on the capturing host)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ipvs-trace-'));
    const f = tcp4({ dmac: DIR, flags: SYN, seq: 100 });
    f.writeUInt16BE(0x1234, 14 + 20 + 16);
    const cap = join(tmp, 'offload.pcap');
    writeFileSync(cap, writePcap([f]));
    const r = await run(['--rules', join(FIX, 'nat.rules'), '--pcap', cap]);
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /note +TCP checksum of the captured frame is wrong \(checksum offload/);
    const ok = await run(['--rules', join(FIX, 'nat.rules'), '--pcap', inPath]);
    assert.doesNotMatch(ok.out, /note +/);
  });
});

async function run(args: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await runTrace(args, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
  });
  return { status, out, err };
}

function noStack(err: string): void {
  assert.doesNotMatch(err, /\n\s+at .*[(:]\d+/, 'no stack trace');
}
