/**
 * The ingress drop's nft scripts and their lifecycle, with a recording runner in place of `nft`
 * (the e2e test in test/e2e/packet-robust.test.ts runs the real one in a namespace).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IngressDrop,
  ingressDropSets,
  ingressRuleset,
  ingressTableName,
} from '../../../src/dataplane/packet/ingress-drop.js';
import { destSpec, makeIpvs, svcSpec } from '../../helpers/ipvs.js';

const tick = () => new Promise((r) => setImmediate(r));

function config() {
  const { ipvs } = makeIpvs();
  const a = svcSpec('203.0.113.10', 80, { scheduler: 'rr' });
  ipvs.addService(a);
  ipvs.addDest(a, destSpec('198.51.100.2', 8080));
  ipvs.addDest(a, destSpec('198.51.100.3', 80, { fwd: 3 }));
  const b = svcSpec('2001:db8::10', 443, { scheduler: 'rr' });
  ipvs.addService(b);
  ipvs.addDest(b, destSpec('2001:db8:1::2', 443));
  return { ipvs, a };
}

describe('ingress drop', () => {
  it('matches the VIPs and the NAT destinations only (not DR ones), by family', () => {
    const { ipvs } = config();
    assert.deepEqual(ingressDropSets(ipvs), {
      vip4: ['203.0.113.10'],
      vip6: ['2001:db8::10'],
      nat4: ['198.51.100.2'],
      nat6: ['2001:db8:1::2'],
    });
  });

  it('replaces any old table in one transaction and fills the sets', () => {
    const { ipvs } = config();
    const r = ingressRuleset('eth0', ingressDropSets(ipvs));
    assert.ok(r.startsWith('add table netdev ipvs_ts_eth0\ndelete table netdev ipvs_ts_eth0\n'));
    assert.match(r, /type filter hook ingress device "eth0" priority -500; policy accept;/);
    assert.match(r, /ip daddr @vip4 drop\n/);
    assert.match(r, /ip saddr @nat4 fib daddr type != local drop\n/);
    assert.match(r, /add element netdev ipvs_ts_eth0 vip4 \{ 203\.0\.113\.10 \}/);
    assert.match(r, /add element netdev ipvs_ts_eth0 nat6 \{ 2001:db8:1::2 \}/);
    assert.equal(ingressTableName('veth-a.1'), 'ipvs_ts_veth_2da_2e1');
  });

  it('coalesces changes of one turn into one refresh, and removes its tables', async () => {
    const { ipvs, a } = config();
    const runs: string[] = [];
    const logs: string[] = [];
    const drop = new IngressDrop(
      ['eth0', 'eth1'],
      (m) => logs.push(m),
      async (s) => {
        runs.push(s);
      },
    );
    await drop.install(ipvs);
    assert.equal(runs.length, 1);
    assert.match(runs[0]!, /table netdev ipvs_ts_eth0 \{[^]*table netdev ipvs_ts_eth1 \{/);
    assert.ok(drop.active);
    assert.match(logs[0]!, /dropped at ingress \(nftables tables ipvs_ts_eth0, ipvs_ts_eth1;/);
    ipvs.addDest(a, destSpec('198.51.100.4', 8080));
    drop.changed();
    ipvs.delService(a);
    drop.changed();
    await tick();
    await drop.settled();
    assert.equal(runs.length, 2, 'one refresh for both changes');
    assert.doesNotMatch(runs[1]!, /table netdev/, 'the sets only');
    assert.match(runs[1]!, /flush set netdev ipvs_ts_eth1 vip4\n/);
    assert.doesNotMatch(runs[1]!, /203\.0\.113\.10|198\.51\.100\.4/, 'the deleted service is gone');
    await drop.reattach('eth1');
    assert.match(runs[2]!, /^add table netdev ipvs_ts_eth1\ndelete table/);
    assert.doesNotMatch(runs[2]!, /ipvs_ts_eth0/);
    await drop.remove();
    assert.equal(
      runs[3],
      'add table netdev ipvs_ts_eth0\ndelete table netdev ipvs_ts_eth0\n' +
        'add table netdev ipvs_ts_eth1\ndelete table netdev ipvs_ts_eth1\n',
    );
    assert.ok(!drop.active);
  });

  it('while nft runs, changes of many turns wait as one refresh of the latest configuration', async () => {
    const { ipvs, a } = config();
    const runs: string[] = [];
    let release: (() => void) | null = null;
    const drop = new IngressDrop(
      ['eth0'],
      () => {},
      (s) =>
        new Promise<void>((r) => {
          runs.push(s);
          release = r;
        }),
    );
    const installed = drop.install(ipvs);
    await tick();
    release!();
    await installed;
    // a restore arriving over many event-loop turns while the first refresh is running
    drop.changed();
    await tick();
    await tick();
    assert.equal(runs.length, 2, 'the first refresh started');
    for (let i = 0; i < 50; i++) {
      ipvs.addDest(a, destSpec(`198.51.100.${100 + i}`, 8080));
      drop.changed();
      await tick();
    }
    release!();
    await tick();
    await tick();
    assert.equal(runs.length, 3, 'one more refresh for all fifty changes');
    assert.match(runs[2]!, /198\.51\.100\.149/);
    release!();
    await drop.settled();
    assert.equal(runs.length, 3);
  });

  it('without nft: says so once, then stays out of the way', async () => {
    const { ipvs } = config();
    const logs: string[] = [];
    let calls = 0;
    const drop = new IngressDrop(
      ['eth0'],
      (m) => logs.push(m),
      async () => {
        calls++;
        throw new Error('nft is not installed');
      },
    );
    await drop.install(ipvs);
    drop.changed();
    await tick();
    await drop.remove();
    assert.equal(calls, 1);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /not dropped at ingress \(nft is not installed\)/);
    assert.ok(!drop.active);
  });
});
