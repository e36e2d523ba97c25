/**
 * A director with thousands of VIPs (one per service, as a large cluster's load balancer has):
 * the address index agrees with a plain Map through random inserts and removals, the network
 * model finds every local address past the few it scans, and the packet data plane takes 6,000
 * services on distinct VIPs without refusing any (it used to stop at 4,096 and report the
 * commands as failed after core had applied them), answers ARP for the last one and forgets a
 * VIP once its service is gone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { execute } from '../../../src/ctl/commands.js';
import { createMemoryPair } from '../../../src/dataplane/io/memory.js';
import { AddrIndex } from '../../../src/dataplane/packet/addr-index.js';
import { NetModel } from '../../../src/dataplane/packet/net.js';
import { PacketDataplane } from '../../../src/dataplane/packet/plane.js';
import { PacketBuilder, PacketView, decodeEthernet } from '../../../src/packet/index.js';
import { makeIpvs, svcSpec } from '../../helpers/ipvs.js';
import { MAC } from './lab.js';

function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const vipOf = (i: number): string => `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

describe('many VIPs', () => {
  for (const words of [1, 4] as const) {
    it(`AddrIndex (${words === 1 ? 'IPv4' : 'IPv6'}) agrees with a Map through 20,000 random inserts and removals`, () => {
      const r = rng(words === 1 ? 11 : 12);
      const idx = new AddrIndex(words);
      const ref = new Map<string, number>();
      const key = new Uint32Array(4);
      const pick = () => {
        // a small key space, so removals and replacements hit present keys often
        key[0] = r() % 3000;
        if (words === 4) {
          key[1] = 0x20010db8;
          key[2] = r() % 2;
          key[3] = r() % 7;
        }
        return words === 1 ? `${key[0]}` : `${key[0]}:${key[2]}:${key[3]}`;
      };
      for (let n = 0; n < 20_000; n++) {
        const k = pick();
        const op = r() % 3;
        if (op === 0) {
          idx.delete(key, 0);
          ref.delete(k);
        } else {
          idx.set(key, 0, n);
          ref.set(k, n);
        }
        if (n % 97 === 0) {
          const probe = pick();
          assert.equal(idx.get(key, 0), ref.get(probe) ?? -1, `after ${n} operations`);
        }
      }
      assert.equal(idx.size, ref.size);
      // every key of the space, present or not, answers as the Map does
      for (let a = 0; a < 3000; a++)
        for (const [b, c] of words === 1
          ? [[0, 0]]
          : [
              [0, 0],
              [1, 3],
              [0, 6],
            ]) {
          key[0] = a;
          key[2] = b!;
          key[3] = c!;
          const k = words === 1 ? `${a}` : `${a}:${b}:${c}`;
          assert.equal(idx.get(key, 0), ref.get(k) ?? -1, k);
        }
    });
  }

  it('NetModel finds every one of 10,000 VIPs, tells them from interface addresses, removes one', () => {
    const net = new NetModel();
    net.addIface({ name: 'eth0', mac: MAC.eth0, addrs: ['192.0.2.1/24', '2001:db8::1/64'] });
    for (let i = 0; i < 10_000; i++) {
      net.addVip({ addr: vipOf(i) });
      if (i % 10 === 0) net.addVip({ addr: `2001:db8:a::${i.toString(16)}` });
    }
    const w4 = (a: string) =>
      new Uint32Array(
        a
          .split('.')
          .reduce((n, x) => [(n[0]! << 8) | Number(x)], [0])
          .map((n) => n >>> 0),
      );
    for (const i of [0, 1, 4095, 4096, 7777, 9999]) {
      assert.ok(net.isLocal(2, w4(vipOf(i))), vipOf(i));
      assert.ok(net.isVip(2, w4(vipOf(i))));
      assert.ok(net.answersFor(2, w4(vipOf(i)), 0, 0));
    }
    assert.ok(
      net.isLocal(2, w4('192.0.2.1')) && !net.isVip(2, w4('192.0.2.1')),
      'interface address',
    );
    assert.ok(!net.isLocal(2, w4('10.200.0.1')));
    net.delVip(vipOf(4096));
    assert.ok(!net.isLocal(2, w4(vipOf(4096))), 'removed');
    for (const i of [4095, 4097, 9999, 0])
      assert.ok(net.isLocal(2, w4(vipOf(i))), `kept ${vipOf(i)}`);
    net.delVip('192.0.2.1');
    assert.ok(net.isLocal(2, w4('192.0.2.1')), 'delVip leaves an interface address alone');
    assert.equal(net.localAddresses().length, 2 + 10_000 - 1 + 1000);
  });

  it('the packet data plane takes 6,000 services on distinct VIPs and answers ARP for them', async () => {
    const { ipvs } = makeIpvs();
    const [d0, c0] = createMemoryPair();
    const plane = new PacketDataplane({
      interfaces: [{ name: 'eth0', mac: MAC.eth0, addrs: ['10.0.0.1/8'], io: d0 }],
    });
    const got: Buffer[] = [];
    c0.onFrames((b) => {
      for (let i = 0; i < b.count; i++) got.push(Buffer.from(b.frame(i)));
    });
    await plane.start(ipvs);
    try {
      for (let i = 0; i < 6000; i++)
        execute(ipvs, { cmd: 'newService', service: svcSpec(vipOf(i), 80) }, plane);
      const ask = (vip: string): PacketView[] => {
        got.length = 0;
        d0.inject(
          Buffer.from(
            PacketBuilder.eth({ src: MAC.client, dst: 'ff:ff:ff:ff:ff:ff' })
              .arp({ op: 1, sha: MAC.client, spa: '10.0.0.5', tha: '00:00:00:00:00:00', tpa: vip })
              .build(),
          ),
        );
        d0.flush();
        c0.flush();
        return got.map((f) => {
          const v = new PacketView();
          decodeEthernet(v, f, 0, f.length);
          return v;
        });
      };
      const last = ask(vipOf(5999));
      assert.deepEqual([last.length, last[0]?.arpOp], [1, 2], 'the 6,000th VIP is answered');
      execute(ipvs, { cmd: 'delService', service: svcSpec(vipOf(5999), 80) }, plane);
      assert.equal(ask(vipOf(5999)).length, 0, 'its service gone, the VIP is not answered');
      assert.equal(ask(vipOf(5998)).length, 1);
    } finally {
      await plane.stop(0);
    }
  });
});
