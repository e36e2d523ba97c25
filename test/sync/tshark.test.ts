/**
 * An independent reader of our datagrams: Wireshark's IPVS dissector (`tshark -d
 * udp.port==8848,ipvs`) must decode what `SyncMessage` builds — v1 IPv4 and IPv6 records with
 * options and padding, and v0 — to the same fields, with no malformed or expert warnings.
 * Skipped when tshark is not installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CONN_F_INACTIVE } from '../../src/core/constants.js';
import { PacketBuilder, writePcap } from '../../src/packet/index.js';
import { SyncMessage } from '../../src/sync/wire.js';
import { syncConn, w } from './fixtures.js';

const skip = spawnSync('tshark', ['--version']).status === 0 ? undefined : 'needs tshark';

function frame(payload: Buffer): Buffer {
  return Buffer.from(
    PacketBuilder.eth({ src: '02:00:00:00:00:01', dst: '01:00:5e:00:00:51' })
      .ipv4({ src: '198.51.100.1', dst: '224.0.0.81', ttl: 1 })
      .udp({ srcPort: 40000, dstPort: 8848 })
      .payload(payload)
      .build(),
  );
}

function tshark(frames: Buffer[], fields: string[]): string[][] {
  const dir = mkdtempSync(join(tmpdir(), 'ipvs-tshark-'));
  try {
    const f = join(dir, 'sync.pcap');
    writeFileSync(f, writePcap(frames));
    const args = ['-r', f, '-d', 'udp.port==8848,ipvs', '-T', 'fields'];
    args.push('-E', 'separator=;', '-E', 'aggregator=,');
    for (const x of [...fields, '_ws.malformed', '_ws.expert']) args.push('-e', x);
    const r = spawnSync('tshark', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(';'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('sync datagrams through tshark’s IPVS dissector', { skip }, () => {
  // Wireshark's dissector (4.0) walks v1 records by their fixed size and knows no options, so
  // records with SEQ / PE options are checked by the golden vectors of wire.test.ts only
  it('v1: an IPv6 and an IPv4 record', () => {
    const m = new SyncMessage(1, 9, 1472, 100, 0);
    m.addV1(
      syncConn({
        af: 10,
        flags: CONN_F_INACTIVE,
        state: 4,
        caddr: w('2001:db8::2'),
        vaddr: w('2001:db8::10'),
        daddr: w('2001:db8:1::11'),
      }),
    );
    m.addV1(syncConn({ protocol: 17, state: 0, cport: 5353, vport: 53, dport: 53, timeout: 300 }));
    const [row] = tshark(
      [frame(m.bytes())],
      [
        'ipvs.syncid',
        'ipvs.conncount',
        'ipvs.version',
        'ipvs.size',
        'ipvs.proto',
        'ipvs.cport',
        'ipvs.vport',
        'ipvs.dport',
        'ipvs.timeout',
        'ipvs.caddr6',
        'ipvs.daddr6',
        'ipvs.daddr',
        'ipvs.state',
      ],
    );
    assert.deepEqual(row, [
      '9',
      '2',
      '1',
      '116',
      '0x06,0x11',
      '40000,5353',
      '80,53',
      '8080,53',
      '900,300',
      '2001:db8::2',
      '2001:db8:1::11',
      '198.51.100.11',
      '0x0004,0x0000',
      '',
      '',
    ]);
  });

  it('v0: header and records', () => {
    const m = new SyncMessage(0, 4, 1472, 24, 0);
    m.addV0(syncConn());
    m.addV0(syncConn({ cport: 40001, state: 5, flags: CONN_F_INACTIVE }));
    const [row] = tshark(
      [frame(m.bytes())],
      ['ipvs.conncount', 'ipvs.syncid', 'ipvs.size', 'ipvs.cport', 'ipvs.daddr', 'ipvs.state'],
    );
    assert.deepEqual(row, [
      '2',
      '4',
      '52',
      '40000,40001',
      '198.51.100.11,198.51.100.11',
      '0x0001,0x0005',
      '',
      '',
    ]);
  });
});
