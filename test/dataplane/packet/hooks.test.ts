/**
 * The hook chain's netfilter verdicts, IPVS's handler placement (spec §5.1), the fwmark classifier,
 * and the packet data plane over the memory backend.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryPair } from '../../../src/dataplane/io/memory.js';
import { Classifier, parseFwmarkRules } from '../../../src/dataplane/packet/classifier.js';
import { HOOK, HookChain, NF } from '../../../src/dataplane/packet/hooks.js';
import { PacketDataplane } from '../../../src/dataplane/packet/plane.js';
import { PktRuleError } from '../../../src/dataplane/packet/errors.js';
import { destSpec, makeIpvs, svcSpec } from '../../helpers/ipvs.js';
import { CLIENT, MAC, RS1, VIP, makeLab } from './lab.js';
import { dec, dmac, dst, tcp4 } from './frames.js';

describe('HookChain', () => {
  const cases = [
    {
      description: 'all ACCEPT → ACCEPT, every handler runs',
      verdicts: [NF.ACCEPT, NF.ACCEPT],
      expected: NF.ACCEPT,
      ran: 2,
    },
    {
      description: 'STOP accepts and skips the rest',
      verdicts: [NF.STOP, NF.DROP],
      expected: NF.ACCEPT,
      ran: 1,
    },
    {
      description: 'DROP ends the traversal',
      verdicts: [NF.DROP, NF.ACCEPT],
      expected: NF.DROP,
      ran: 1,
    },
    {
      description: 'STOLEN ends the traversal',
      verdicts: [NF.ACCEPT, NF.STOLEN],
      expected: NF.STOLEN,
      ran: 2,
    },
    { description: 'QUEUE ends the traversal', verdicts: [NF.QUEUE], expected: NF.QUEUE, ran: 1 },
    { description: 'REPEAT forever is cut off (-1)', verdicts: [NF.REPEAT], expected: -1, ran: 9 },
  ];
  for (const c of cases) {
    it(c.description, () => {
      const hc = new HookChain<number>();
      let ran = 0;
      c.verdicts.forEach((v, i) => hc.register(HOOK.LOCAL_IN, i, `h${i}`, () => (ran++, v)));
      assert.equal(hc.run(HOOK.LOCAL_IN, 0), c.expected);
      assert.equal(ran, c.ran);
    });
  }

  it('orders by priority and places IPVS where the kernel does', () => {
    const lab = makeLab();
    assert.deepEqual(lab.engine.hooks.list(HOOK.LOCAL_IN), [
      [98, 'ipvs-out'],
      [99, 'ipvs-in'],
    ]);
    assert.deepEqual(lab.engine.hooks.list(HOOK.LOCAL_OUT), [
      [-99, 'ipvs-out'],
      [-98, 'ipvs-in'],
    ]);
    assert.deepEqual(lab.engine.hooks.list(HOOK.FORWARD), [
      [99, 'ipvs-forward-icmp'],
      [100, 'ipvs-out'],
    ]);
  });

  it('a firewall hook before IPVS can drop or queue; QUEUE without a listener drops', () => {
    const lab = makeLab();
    lab.ipvs.addService(svcSpec(VIP, 80, { scheduler: 'rr' }));
    lab.ipvs.addDest(svcSpec(VIP, 80), destSpec(RS1, 80));
    lab.engine.hooks.register(HOOK.LOCAL_IN, 0, 'fw', (p) =>
      p.view.srcPort === 666 ? NF.DROP : p.view.srcPort === 667 ? NF.QUEUE : NF.ACCEPT,
    );
    assert.equal(lab.send('eth0', tcp4({ sport: 666 })).reason, 'hook-drop');
    assert.equal(lab.send('eth0', tcp4({ sport: 667 })).reason, 'queue-drop');
    assert.equal(lab.send('eth0', tcp4({ sport: 668 })).reason, 'forwarded');
    assert.equal(lab.ipvs.conns.count, 1);
  });
});

describe('Classifier', () => {
  it('first matching rule wins; ports, ranges, prefixes and protocol', () => {
    const c = new Classifier();
    c.set(
      parseFwmarkRules(`
      # web
      proto tcp dst 10.0.0.0/24 dport 80,443 mark 1
      proto udp sport 1000-2000 mark 2
      src 192.168.0.0/16 mark 3
      dst 2001:db8::/32 mark 6
    `),
    );
    const a = (s: string) => [Number(s.split('.').reduce((x, y) => x * 256 + Number(y), 0))];
    assert.equal(c.match(2, 6, a('1.1.1.1'), a('10.0.0.9'), 5, 443), 1);
    assert.equal(c.match(2, 6, a('1.1.1.1'), a('10.0.0.9'), 5, 22), 0);
    assert.equal(c.match(2, 17, a('1.1.1.1'), a('9.9.9.9'), 1500, 22), 2);
    assert.equal(c.match(2, 6, a('192.168.3.4'), a('10.0.0.9'), 5, 443), 1);
    assert.equal(c.match(2, 6, a('192.168.3.4'), a('10.0.1.9'), 5, 443), 3);
    assert.equal(c.match(10, 6, [0, 0, 0, 1], [0x20010db8, 0, 0, 5], 1, 1), 6);
    assert.equal(
      c.match(2, 6, a('1.1.1.1'), a('10.0.0.9'), -1, -1),
      0,
      'a later fragment has no ports',
    );
    assert.deepEqual(c.describe()[0], 'proto tcp dst 10.0.0.0/24 dport 80,443 mark 1');
  });

  it('refuses bad rules with a coded error and keeps the old ones', () => {
    const c = new Classifier();
    c.set([{ mark: 1 }]);
    for (const bad of [
      { mark: 0 },
      { mark: 1, dport: '99999' },
      { mark: 1, proto: 'xtp' },
      { mark: 1, src: '10.0.0.0/33' },
    ]) {
      assert.throws(
        () => c.set([bad]),
        (e: unknown) =>
          (e as PktRuleError).code === 'IPVS_ERR_PKT_RULE' ||
          (e as { code: string }).code === 'IPVS_ERR_PKT_CONFIG',
      );
    }
    assert.equal(c.size, 1);
    assert.throws(() => parseFwmarkRules('proto tcp'), PktRuleError);
  });
});

describe('PacketDataplane', () => {
  it('runs the engine over memory frame I/O and follows configuration changes', async () => {
    const { ipvs } = makeIpvs();
    const [d0, c0] = createMemoryPair();
    const plane = new PacketDataplane({
      interfaces: [
        { name: 'eth0', mac: MAC.eth0, addrs: ['10.0.0.1/24', '192.168.1.1/24'], io: d0 },
      ],
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
    const k = svcSpec(VIP, 80, { scheduler: 'rr' });
    ipvs.addService(k);
    plane.apply({ cmd: 'newService', service: k }, ipvs);
    ipvs.addDest(k, destSpec(RS1, 80, { fwd: 3 }));
    plane.apply({ cmd: 'newDest', service: k, dest: destSpec(RS1, 80, { fwd: 3 }) }, ipvs);
    await new Promise((r) => setImmediate(r));
    assert.equal(dec(got[0]!).arpOp, 1, 'gratuitous ARP for the new VIP');
    got.length = 0;
    c0.send(tcp4());
    c0.txCommit();
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
    assert.equal(got.length, 1);
    assert.deepEqual([dmac(got[0]!), dst(dec(got[0]!))], [MAC.rs1, VIP]);
    await plane.stop(0);
    await c0.close();
  });
});
