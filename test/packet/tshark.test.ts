// Independent cross-check with Wireshark's dissectors: frames built by ipvs-ts (every format,
// plus NAT-rewritten and tunnel-encapsulated ones) are written to pcap and dissected by tshark;
// tshark's fields must equal what our decoder reads, and tshark must find every checksum good.
// Then a real capture (tcpdump on lo while Node sends TCP and UDP on 127.0.0.1) is decoded by
// both and compared frame by frame. Needs tshark (and tcpdump + root for the capture): scripts/
// test.mjs installs them from scripts/debian-packages.txt when run as root; otherwise these skip.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import {
  decodeEthernet,
  IPPROTO,
  LINKTYPE,
  PacketBuilder,
  PacketView,
  readPcap,
  TCP_FLAG,
  writePcap,
} from '../../src/packet/index.js';
import { builtFrames, compare, FIELDS, ours, STATUS, tshark, u8 } from './frames.js';

const has = (cmd: string, arg: string) => spawnSync(cmd, [arg], { stdio: 'ignore' }).status === 0;
const HAVE_TSHARK = has('tshark', '-v');
const HAVE_TCPDUMP = has('tcpdump', '--version');
const IS_ROOT = process.getuid?.() === 0;
const NO_TSHARK =
  'tshark is not installed: run the tests as root (scripts/test.mjs installs scripts/debian-packages.txt) or apt-get install tshark';

describe('tshark cross-check', { skip: HAVE_TSHARK ? false : NO_TSHARK }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipvs-packet-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('dissects every built frame to the fields our decoder reads, with every checksum good', () => {
    const frames = builtFrames();
    const file = join(dir, 'built.pcap');
    writeFileSync(file, writePcap(frames.map((f) => f.frame)));
    const t = tshark(file, FIELDS);
    const st = tshark(file, STATUS);
    assert.equal(t.length, frames.length);
    frames.forEach((f, i) => {
      compare(t[i]!, ours(f.frame, LINKTYPE.ETHERNET), f.label);
      const statuses = Object.values(st[i]!).flat();
      assert.ok(
        !statuses.includes('0'),
        `${f.label}: a checksum tshark finds bad: ${JSON.stringify(st[i])}`,
      );
      // ARP has no checksum; tshark does not verify L4 checksums of IPv6 fragments.
      if (!['ARP request', 'IPv6 fragment header, UDP'].includes(f.label)) {
        assert.ok(statuses.includes('1'), `${f.label}: no checksum verified`);
      }
    });
  });

  it('sees the checksums the builder corrupts on purpose as bad', () => {
    const file = join(dir, 'bad.pcap');
    const frames = [
      PacketBuilder.eth()
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', corruptChecksum: true })
        .udp({ srcPort: 1, dstPort: 2 })
        .build(),
      PacketBuilder.eth()
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .tcp({ srcPort: 1, dstPort: 2, flags: 2, corruptChecksum: true })
        .build(),
      PacketBuilder.eth()
        .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .sctp({
          srcPort: 1,
          dstPort: 2,
          vtag: 1,
          chunks: [{ type: 1, value: u8(16) }],
          corruptChecksum: true,
        })
        .build(),
    ];
    writeFileSync(file, writePcap(frames));
    const st = tshark(file, STATUS);
    assert.deepEqual(
      st.map((s) => [
        s['ip.checksum.status']?.[0],
        s['tcp.checksum.status']?.[0] ??
          s['udp.checksum.status']?.[0] ??
          s['sctp.checksum.status']?.[0],
      ]),
      [
        ['0', '1'],
        ['1', '0'],
        ['1', '0'],
      ],
    );
  });

  it('reads raw-IP (link type 101) files the way tshark does', () => {
    const frames = [
      PacketBuilder.ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
        .tcp({ srcPort: 5, dstPort: 6, flags: TCP_FLAG.FIN | TCP_FLAG.ACK, seq: 9 })
        .build(),
      PacketBuilder.ipv6({ src: '2001:db8::1', dst: '2001:db8::2' })
        .udp({ srcPort: 7, dstPort: 8 })
        .payload('raw')
        .build(),
    ];
    const file = join(dir, 'raw.pcap');
    writeFileSync(file, writePcap(frames, LINKTYPE.RAW));
    const r = readPcap(readFileSync(file));
    assert.ok(r.ok && r.file.linkType === LINKTYPE.RAW);
    const t = tshark(file, FIELDS);
    r.file.records.forEach((rec, i) =>
      compare(t[i]!, ours(rec.data, LINKTYPE.RAW), `raw frame ${i}`),
    );
  });

  it(
    'decodes a real loopback capture (tcpdump, TCP and UDP from Node) to the fields tshark reports',
    {
      skip: !HAVE_TCPDUMP
        ? 'tcpdump is not installed (apt-get install tcpdump)'
        : !IS_ROOT
          ? 'capturing on lo needs root'
          : false,
      timeout: 30_000,
    },
    async () => {
      const file = join(dir, 'lo.pcap');
      const server = net.createServer((s) => s.on('data', (d) => s.end(d)));
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
      const tport = (server.address() as net.AddressInfo).port;
      const rx = dgram.createSocket('udp4');
      await new Promise<void>((res) => rx.bind(0, '127.0.0.1', res));
      const uport = rx.address().port;
      const dump = spawn(
        'tcpdump',
        [
          '-i',
          'lo',
          '-U',
          '--immediate-mode',
          '-n',
          '-Z',
          'root',
          '-w',
          file,
          `host 127.0.0.1 and (tcp port ${tport} or udp port ${uport})`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      await new Promise<void>((res, rej) => {
        let err = '';
        dump.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('listening on')) res();
        });
        dump.on('exit', (c) => rej(new Error(`tcpdump exited ${c}: ${err}`)));
      });
      await new Promise((res) => setTimeout(res, 300));
      try {
        const got = new Promise<Buffer>((res) => rx.once('message', res));
        const tx = dgram.createSocket('udp4');
        tx.send('ping over udp', uport, '127.0.0.1');
        assert.equal((await got).toString(), 'ping over udp');
        tx.close();
        const echoed = await new Promise<string>((res, rej) => {
          const c = net.connect(tport, '127.0.0.1', () => c.write('hello over tcp'));
          let s = '';
          c.on('data', (d) => (s += d.toString()));
          c.on('end', () => res(s));
          c.on('error', rej);
        });
        assert.equal(echoed, 'hello over tcp');
        await new Promise((res) => setTimeout(res, 500));
      } finally {
        dump.kill('SIGINT');
        await new Promise((res) => dump.once('exit', res));
        server.close();
        rx.close();
      }
      const r = readPcap(readFileSync(file));
      assert.ok(r.ok, r.ok ? '' : r.reason);
      const recs = r.file.records;
      assert.ok(recs.length >= 6, `only ${recs.length} frames captured`);
      const t = tshark(file, FIELDS);
      assert.equal(t.length, recs.length);
      let syn = 0;
      let udpSeen = 0;
      recs.forEach((rec, i) => {
        const o = ours(rec.data, r.file.linkType);
        compare(t[i]!, o, `captured frame ${i + 1}`);
        const v = new PacketView();
        decodeEthernet(v, rec.data, 0, rec.data.length);
        if (v.protocol === IPPROTO.TCP && v.tcpFlags === TCP_FLAG.SYN) syn++;
        if (
          v.protocol === IPPROTO.UDP &&
          Buffer.from(
            rec.data.subarray(v.payloadOffset, v.payloadOffset + v.payloadLength),
          ).toString() === 'ping over udp'
        )
          udpSeen++;
      });
      assert.equal(syn, 1);
      assert.equal(udpSeen, 1);
    },
  );
});
