/**
 * A standby director in the packet data plane: while a backup sync daemon runs with
 * `backup_only = 1` the director role is off, and the engine does not claim the VIPs either (no
 * ARP answer, no echo reply, nothing scheduled), as a kernel standby does not hold the VIP. When
 * the backup role stops (or backup_only is cleared) the director takes over: the VIPs are
 * announced with gratuitous ARP and synced connections are forwarded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { execute } from '../../src/ctl/commands.js';
import type { Command } from '../../src/ctl/types.js';
import { createMemoryPair } from '../../src/dataplane/io/memory.js';
import { PacketDataplane } from '../../src/dataplane/packet/plane.js';
import { PacketBuilder, PacketView, decodeEthernet } from '../../src/packet/index.js';
import { destSpec, makeIpvs, svcSpec } from '../helpers/ipvs.js';
import { ACK, SYN, dmac, tcp4 } from '../dataplane/packet/frames.js';
import { CLIENT, MAC, RS1, VIP } from '../dataplane/packet/lab.js';

const arpWhoHas = (tpa: string): Uint8Array =>
  PacketBuilder.eth({ src: MAC.client, dst: 'ff:ff:ff:ff:ff:ff' })
    .arp({ op: 1, sha: MAC.client, spa: CLIENT, tha: '00:00:00:00:00:00', tpa })
    .build();

const ping = (): Uint8Array =>
  PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
    .ipv4({ src: CLIENT, dst: VIP })
    .icmp({ type: 8, code: 0, rest: 1 })
    .build();

async function director() {
  const { ipvs } = makeIpvs();
  const [d0, c0] = createMemoryPair();
  const plane = new PacketDataplane({
    interfaces: [{ name: 'eth0', mac: MAC.eth0, addrs: ['10.0.0.1/24', '192.168.1.1/24'], io: d0 }],
    neighbours: [
      { dev: 'eth0', addr: RS1, mac: MAC.rs1 },
      { dev: 'eth0', addr: CLIENT, mac: MAC.client },
    ],
    announce: true,
  });
  const got: Buffer[] = [];
  c0.onFrames((b) => {
    for (let i = 0; i < b.count; i++) got.push(Buffer.from(b.frame(i)));
  });
  await plane.start(ipvs);
  const run = (cmd: Command) => execute(ipvs, cmd, plane);
  /** What the far end got for `frame` (sent from it), as decoded views. */
  const send = async (frame: Uint8Array): Promise<PacketView[]> => {
    c0.flush();
    got.length = 0;
    d0.inject(Buffer.from(frame));
    d0.flush();
    c0.flush();
    return got.splice(0).map((f) => {
      const v = new PacketView();
      decodeEthernet(v, f, 0, f.length);
      return v;
    });
  };
  const drain = (): Buffer[] => {
    d0.flush();
    c0.flush();
    return got.splice(0);
  };
  return { ipvs, plane, run, send, drain, close: () => plane.stop(0) };
}

describe('a standby director (backup_only while a backup runs)', () => {
  it('claims no VIP until the backup role stops; then announces it and forwards', async () => {
    const d = await director();
    try {
      d.run({ cmd: 'setSysctl', name: 'backup_only', value: 1 });
      d.run({ cmd: 'newDaemon', daemon: { state: 2, mcastIfn: 'eth0', syncId: 0 } });
      d.run({ cmd: 'newService', service: svcSpec(VIP, 80, { scheduler: 'rr' }) });
      d.run({ cmd: 'newDest', service: svcSpec(VIP, 80), dest: destSpec(RS1, 8080) });
      assert.equal(d.drain().length, 0, 'no gratuitous ARP from a standby');
      assert.equal((await d.send(arpWhoHas(VIP))).length, 0, 'no ARP answer for the VIP');
      assert.equal((await d.send(ping())).length, 0, 'no echo reply for the VIP');
      assert.equal((await d.send(tcp4({ flags: SYN }))).length, 0, 'nothing scheduled');
      assert.equal(d.ipvs.conns.count, 0);
      // its own addresses are still answered: only the director role is off
      const own = await d.send(arpWhoHas('10.0.0.1'));
      assert.equal(own.length, 1);
      assert.equal(own[0]!.arpOp, 2);

      // takeover: the backup role stops
      d.run({ cmd: 'delDaemon', state: 2 });
      const garp = d.drain().filter((f) => f.readUInt16BE(12) === 0x0806);
      assert.equal(garp.length, 1, 'the VIP is announced');
      assert.equal(dmac(garp[0]!), 'ff:ff:ff:ff:ff:ff');
      const arp = await d.send(arpWhoHas(VIP));
      assert.deepEqual([arp.length, arp[0]?.arpOp], [1, 2], 'the VIP is answered');
      const syn = await d.send(tcp4({ flags: SYN }));
      assert.equal(syn.length, 1, 'a new connection is scheduled and forwarded');
      assert.equal(dmac(Buffer.from(syn[0]!.buf.subarray(0, 14))), MAC.rs1);
      assert.equal((await d.send(ping())).length, 1, 'the VIP answers ping');
    } finally {
      await d.close();
    }
  });

  it('clearing backup_only ends the standby too; setting it again gives the VIPs up', async () => {
    const d = await director();
    try {
      d.run({ cmd: 'newService', service: svcSpec(VIP, 80, { scheduler: 'rr' }) });
      d.run({ cmd: 'newDest', service: svcSpec(VIP, 80), dest: destSpec(RS1, 8080) });
      d.run({ cmd: 'newDaemon', daemon: { state: 2, mcastIfn: 'eth0', syncId: 0 } });
      assert.equal((await d.send(arpWhoHas(VIP))).length, 1, 'backup_only 0: still a director');
      d.run({ cmd: 'setSysctl', name: 'backup_only', value: 1 });
      assert.equal((await d.send(arpWhoHas(VIP))).length, 0, 'standby now');
      d.drain();
      d.run({ cmd: 'setSysctl', name: 'backup_only', value: 0 });
      assert.equal(d.drain().length, 1, 'gratuitous ARP at the takeover');
      assert.equal((await d.send(tcp4({ flags: ACK }))).length, 1, 'ACK of no connection: reset');
    } finally {
      await d.close();
    }
  });
});
