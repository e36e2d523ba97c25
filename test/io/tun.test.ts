/**
 * TUN/TAP backend: a TUN device in a namespace the test creates, 198.51.100.1/24 on it; an ICMP
 * echo request from 198.51.100.2 written into it comes back out as the kernel's echo reply, with
 * correct IPv4 and ICMP checksums (computed here, independently of src/packet).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { ARPHRD, openTun, type TunIO } from '../../src/dataplane/io/index.js';
import { Lab, ip, labSkipReason } from './lab.js';

const skip = labSkipReason();

/** RFC 1071 checksum of buf[off, off+len). */
function inetChecksum(buf: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i + 1 < len; i += 2) s += (buf[off + i]! << 8) | buf[off + i + 1]!;
  if (len & 1) s += buf[off + len - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function echoRequest(
  src: number[],
  dst: number[],
  id: number,
  seq: number,
  payload: Buffer,
): Buffer {
  const p = Buffer.alloc(20 + 8 + payload.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE(0x1234, 4);
  p[8] = 64;
  p[9] = 1; // ICMP
  p.set(src, 12);
  p.set(dst, 16);
  p.writeUInt16BE(inetChecksum(p, 0, 20), 10);
  p[20] = 8; // echo request
  p.writeUInt16BE(id, 24);
  p.writeUInt16BE(seq, 26);
  payload.copy(p, 28);
  p.writeUInt16BE(inetChecksum(p, 20, p.length - 20), 22);
  return p;
}

describe('TUN/TAP devices', { skip }, () => {
  const lab = new Lab();
  let ns = '';
  const open: TunIO[] = [];
  before(() => {
    ns = lab.netns('tun');
  });
  after(async () => {
    for (const io of open) await io.close();
    lab.cleanup();
  });

  it('the kernel answers an ICMP echo request written into a TUN device', async () => {
    const name = lab.ifname('iotun');
    const tun = openTun({ name, netns: ns });
    open.push(tun);
    assert.equal(tun.name, name);
    assert.equal(tun.linkType, 'ip');
    assert.equal(tun.iface.hwType, ARPHRD.NONE);
    ip('-n', ns, 'addr', 'add', '198.51.100.1/24', 'dev', name);
    ip('-n', ns, 'link', 'set', name, 'up');
    const payload = Buffer.from('ipvs-ts tun echo test 0123456789');
    const id = 0x4242;
    const reply = new Promise<Buffer>((resolve) => {
      tun.onFrames((b) => {
        for (let i = 0; i < b.count; i++) {
          const f = b.frame(i);
          // Skip IPv6 (router solicitations, MLD) and anything that is not our reply.
          if (
            f.length >= 28 &&
            f[0] === 0x45 &&
            f[9] === 1 &&
            f[20] === 0 &&
            f.readUInt16BE(24) === id
          )
            resolve(Buffer.from(f));
        }
      });
    });
    const req = echoRequest([198, 51, 100, 2], [198, 51, 100, 1], id, 7, payload);
    // The device may still be settling; resend until the reply shows up.
    let got: Buffer | undefined;
    for (let attempt = 0; attempt < 20 && !got; attempt++) {
      assert.ok(tun.send(req));
      assert.equal(tun.txCommit(), 1);
      got = await Promise.race([
        reply,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)),
      ]);
    }
    assert.ok(got, 'echo reply received');
    assert.deepEqual([...got.subarray(12, 16)], [198, 51, 100, 1], 'from 198.51.100.1');
    assert.deepEqual([...got.subarray(16, 20)], [198, 51, 100, 2], 'to 198.51.100.2');
    assert.equal(inetChecksum(got, 0, 20), 0, 'IPv4 header checksum verifies');
    const ihl = (got[0]! & 0xf) * 4;
    assert.equal(inetChecksum(got, ihl, got.readUInt16BE(2) - ihl), 0, 'ICMP checksum verifies');
    assert.equal(got.readUInt16BE(ihl + 6), 7, 'sequence echoed');
    assert.deepEqual(got.subarray(ihl + 8), payload, 'payload echoed');
    assert.ok(tun.stats.rxFrames >= 1);
    assert.ok(tun.stats.txFrames >= 1);
  });

  it('a batch of 50 echo requests in one commit comes back as 50 replies, read in batches', async () => {
    const name = lab.ifname('iotb');
    const tun = openTun({ name, netns: ns, batchSize: 64 });
    open.push(tun);
    ip('-n', ns, 'addr', 'add', '203.0.113.1/24', 'dev', name);
    ip('-n', ns, 'link', 'set', name, 'up');
    const id = 0x5151;
    const seqs = new Set<number>();
    tun.onFrames((b) => {
      for (let i = 0; i < b.count; i++) {
        const f = b.frame(i);
        if (
          f.length >= 28 &&
          f[0] === 0x45 &&
          f[9] === 1 &&
          f[20] === 0 &&
          f.readUInt16BE(24) === id
        ) {
          assert.equal(inetChecksum(f, 20, f.length - 20), 0);
          seqs.add(f.readUInt16BE(26));
        }
      }
    });
    // The first ping may race the device coming up: send one until it is answered.
    for (let attempt = 0; attempt < 20 && seqs.size === 0; attempt++) {
      tun.send(echoRequest([203, 0, 113, 2], [203, 0, 113, 1], id, 1000, Buffer.alloc(8)));
      tun.txCommit();
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(seqs.size, 1);
    for (let seq = 0; seq < 50; seq++) {
      assert.ok(
        tun.send(echoRequest([203, 0, 113, 2], [203, 0, 113, 1], id, seq, Buffer.alloc(16, seq))),
      );
    }
    const kicks = tun.stats.txKicks;
    assert.equal(tun.txCommit(), 50);
    assert.equal(tun.stats.txKicks, kicks + 1);
    const end = Date.now() + 3000;
    while (seqs.size < 51 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(seqs.size, 51, 'every request answered');
    assert.ok(
      tun.stats.rxMaxBatch > 1,
      `several frames per read batch (max ${tun.stats.rxMaxBatch})`,
    );
  });

  it('a TAP device carries Ethernet frames and has a MAC address', async () => {
    const tap = openTun({ name: lab.ifname('iotap'), tap: true, netns: ns });
    open.push(tap);
    assert.equal(tap.kind, 'tap');
    assert.equal(tap.linkType, 'ethernet');
    assert.equal(tap.iface.hwType, ARPHRD.ETHER);
    assert.notEqual(tap.iface.mac, '00:00:00:00:00:00');
    await tap.close();
  });
});
