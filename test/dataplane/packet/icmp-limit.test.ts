/**
 * The host's ICMP rate limits on the errors the engine sends (icmp_global_allow /
 * inet_peer_xrlim_allow / icmpv6_xrlim_allow): the per-host burst of six then one a second, the
 * global credit, what is never limited (fragmentation needed, packet too big, echo replies), the
 * IPv6 interval (100 ms, whatever the route), and the engine's counters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IcmpLimit } from '../../../src/dataplane/packet/icmp-limit.js';
import { PacketBuilder } from '../../../src/packet/index.js';
import { udp4 } from './frames.js';
import { CLIENT, MAC, VIP, natLab } from './lab.js';

const A = new Uint32Array([0xc0000205, 0, 0, 0]);
const B = new Uint32Array([0xc0000206, 0, 0, 0]);
const V6 = new Uint32Array([0x20010db8, 0, 0, 5]);

function limiter(o: ConstructorParameters<typeof IcmpLimit>[2] = {}, rnd = () => 1) {
  let t = 5_000_000;
  const l = new IcmpLimit(() => t, rnd, o);
  return { l, step: (ms: number) => (t += ms) };
}

/** How many of `n` port unreachables to `dst` at the current time pass. */
function burst(l: IcmpLimit, n: number, dst = A, af = 2, type = 3, code = 3): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (l.allow(af, type, code, dst)) ok++;
  return ok;
}

describe('ICMP rate limits (icmp_ratelimit, icmp_msgs_per_sec)', () => {
  it('per host: a burst of six, then one per icmp_ratelimit; other hosts have their own', () => {
    const { l, step } = limiter();
    assert.equal(burst(l, 10), 6);
    assert.equal(l.limitedHost, 4);
    assert.equal(burst(l, 3, B), 3, 'another host is not held back by the first');
    step(999);
    assert.equal(burst(l, 1), 0, 'not yet a second');
    step(1);
    assert.equal(burst(l, 2), 1, 'one token a second');
    step(60_000);
    assert.equal(burst(l, 10), 6, 'the bucket refills to six, no more');
  });

  it('fragmentation needed, packet too big, echo replies and unmasked types are never limited', () => {
    const { l } = limiter();
    assert.equal(burst(l, 20, A, 2, 3, 4), 20, 'frag-needed (PMTU discovery)');
    assert.equal(burst(l, 20, A, 2, 0, 0), 20, 'echo reply');
    assert.equal(burst(l, 20, A, 2, 5, 1), 20, 'redirect: not in ratemask 0x1818');
    assert.equal(burst(l, 20, V6, 10, 2, 0), 20, 'ICMPv6 packet too big');
    assert.equal(burst(l, 20, V6, 10, 129, 0), 20, 'ICMPv6 echo reply');
    assert.equal(burst(l, 10, A, 2, 11, 0), 6, 'time exceeded is limited');
    const { l: l2 } = limiter({ ratemask: 0 });
    assert.equal(burst(l2, 20), 20, 'ratemask 0 limits nothing');
  });

  it('IPv6: a burst of six, then one per net.ipv6.icmp.ratelimit (100 ms)', () => {
    const { l, step } = limiter();
    assert.equal(burst(l, 10, V6, 10, 1, 4), 6);
    step(99);
    assert.equal(burst(l, 1, V6, 10, 1, 4), 0);
    step(1);
    assert.equal(burst(l, 2, V6, 10, 1, 4), 1);
    const { l: off } = limiter({ ratelimit6Ms: 0 });
    assert.equal(burst(off, 20, V6, 10, 1, 4), 20, '0 turns the per-host limit off');
    const { l: slow, step: s2 } = limiter({ ratelimit6Ms: 1000 });
    assert.equal(burst(slow, 10, V6, 10, 1, 4), 6);
    s2(999);
    assert.equal(burst(slow, 1, V6, 10, 1, 4), 0);
  });

  it('global: icmp_msgs_burst credits, refilled at icmp_msgs_per_sec, each message 0-2 credits', () => {
    const { l, step } = limiter({ ratelimitMs: 0 }, () => 2);
    // 50 credits, 2 per message: 25 messages, then the 26th is refused (credit 0, no time passed)
    let hosts = 0;
    const many = () => {
      let ok = 0;
      for (let i = 0; i < 40; i++) {
        const d = new Uint32Array([0x0a000000 + ++hosts, 0, 0, 0]);
        if (l.allow(2, 3, 3, d)) ok++;
      }
      return ok;
    };
    assert.equal(many(), 25);
    assert.ok(l.limitedGlobal > 0);
    step(19);
    assert.equal(many(), 0, 'no refill under 20 ms');
    step(1);
    assert.equal(many(), 10, '20 ms at 1000/s: 20 credits');
  });

  it('the engine: a UDP burst to a closed VIP port gets six port unreachables, the rest counted', () => {
    const lab = natLab();
    let sent = 0;
    for (let i = 0; i < 10; i++) sent += lab.send('eth0', udp4({ dport: 5353 })).eth0.length;
    assert.equal(sent, 6);
    assert.equal(lab.engine.counters.icmpLimited, 4);
    lab.advance(1000);
    assert.equal(lab.send('eth0', udp4({ dport: 5353 })).eth0.length, 1);
    // echo replies are not ICMP errors: never limited
    const ping = PacketBuilder.eth({ src: MAC.client, dst: MAC.eth0 })
      .ipv4({ src: CLIENT, dst: VIP })
      .icmp({ type: 8, code: 0, rest: 1 })
      .build();
    for (let i = 0; i < 10; i++) assert.equal(lab.send('eth0', ping).eth0.length, 1);
    const off = natLab({ icmpLimit: false });
    let all = 0;
    for (let i = 0; i < 10; i++) all += off.send('eth0', udp4({ dport: 5353 })).eth0.length;
    assert.equal(all, 10, 'icmpLimit: false');
  });
});
