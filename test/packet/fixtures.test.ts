// Pcap fixtures (test/fixtures/packet, open them in Wireshark): every built format and a real
// loopback capture made with tcpdump, each with the fields tshark reported when the fixture was
// recorded (make-fixtures.ts). Runs without tshark installed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decodeEthernet,
  findTcpOption,
  LINKTYPE,
  PacketView,
  readPcap,
  TCP_FLAG,
} from '../../src/packet/index.js';
import { builtFrames, compare, type Fields, ours } from './frames.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/packet');
const load = (name: string) => {
  const r = readPcap(readFileSync(join(dir, `${name}.pcap`)));
  assert.ok(r.ok);
  const fields = JSON.parse(readFileSync(join(dir, `${name}.tshark.json`), 'utf8')) as Fields[];
  return { file: r.file, fields };
};

describe('fixtures', () => {
  describe('all-formats.pcap', () => {
    const { file, fields } = load('all-formats');
    const labels = JSON.parse(
      readFileSync(join(dir, 'all-formats.labels.json'), 'utf8'),
    ) as string[];
    const frames = builtFrames();
    it('holds exactly what the builder produces today', () => {
      assert.deepEqual(
        labels,
        frames.map((f) => f.label),
      );
      assert.deepEqual(
        file.records.map((r) => Buffer.from(r.data).toString('hex')),
        frames.map((f) => f.frame.toString('hex')),
      );
    });
    file.records.forEach((rec, i) => {
      it(`decodes "${labels[i]}" to the fields tshark recorded`, () =>
        compare(fields[i]!, ours(rec.data, file.linkType), labels[i]!));
    });
  });

  describe('lo-capture.pcap (tcpdump on lo: a UDP datagram and a TCP echo exchange)', () => {
    const { file, fields } = load('lo-capture');
    it('is an Ethernet capture of eleven frames', () => {
      assert.equal(file.linkType, LINKTYPE.ETHERNET);
      assert.equal(file.records.length, 11);
    });
    file.records.forEach((rec, i) => {
      it(`decodes captured frame ${i + 1} to the fields tshark recorded`, () =>
        compare(fields[i]!, ours(rec.data, file.linkType), `frame ${i + 1}`));
    });
    it('reads the handshake, the payloads and the close as a user would see them', () => {
      const v = new PacketView();
      const seen = file.records.map((r) => {
        assert.equal(decodeEthernet(v, r.data, 0, r.data.length), 0);
        return {
          flags: v.tcpFlags,
          proto: v.protocol,
          len: v.payloadLength,
          text: Buffer.from(
            r.data.subarray(v.payloadOffset, v.payloadOffset + v.payloadLength),
          ).toString(),
          mss: findTcpOption(v, 2),
        };
      });
      assert.deepEqual(seen[0]!.text, 'ping over udp');
      assert.equal(seen[1]!.flags, TCP_FLAG.SYN);
      assert.ok(seen[1]!.mss > 0);
      assert.equal(seen[2]!.flags, TCP_FLAG.SYN | TCP_FLAG.ACK);
      assert.equal(seen[4]!.text, 'hello over tcp');
      assert.equal(seen[6]!.text, 'hello over tcp');
      assert.equal(seen[8]!.flags, TCP_FLAG.FIN | TCP_FLAG.ACK);
    });
  });
});
