// The fast 5-tuple decoder agrees with the full decoder on every frame it accepts, sends the
// frames it does not handle to the slow path, and never throws or reads outside the frame.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeEthernet,
  decodeTuple,
  PacketBuilder,
  PacketView,
  Tuple,
  TUPLE_MALFORMED,
  TUPLE_OK,
  TUPLE_SLOW,
} from '../../src/packet/index.js';

const ip4 = fc
  .tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.nat(255))
  .map((a) => a.join('.'));
const ip6 = fc
  .array(fc.nat(0xffff), { minLength: 8, maxLength: 8 })
  .map((g) => g.map((x) => x.toString(16)).join(':'));

function frame(
  v6: boolean,
  src: string,
  dst: string,
  proto: string,
  sport: number,
  dport: number,
  vlan: boolean,
): Buffer {
  let b = PacketBuilder.eth(vlan ? { vlans: [{ id: 42 }] } : {});
  b = v6 ? b.ipv6({ src, dst, hopLimit: 33 }) : b.ipv4({ src, dst, ttl: 33 });
  if (proto === 'tcp') b = b.tcp({ srcPort: sport, dstPort: dport, flags: 0x12, seq: 1, ack: 2 });
  else if (proto === 'udp') b = b.udp({ srcPort: sport, dstPort: dport });
  else
    b = b.sctp({
      srcPort: sport,
      dstPort: dport,
      vtag: 7,
      chunks: [{ type: 1, value: new Uint8Array(16) }],
    });
  return proto === 'sctp' ? b.build() : b.payload(5).build();
}

describe('decodeTuple', () => {
  it('agrees with the full decoder on TCP and UDP over IPv4 and IPv6, with and without a VLAN tag', () => {
    const t = new Tuple();
    const v = new PacketView();
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom('tcp', 'udp'),
        fc.nat(65535),
        fc.nat(65535),
        ip4,
        ip4,
        ip6,
        ip6,
        fc.nat(9),
        (v6, vlan, proto, sp, dp, s4, d4, s6, d6, at) => {
          const f = frame(v6, v6 ? s6 : s4, v6 ? d6 : d4, proto, sp, dp, vlan);
          const buf = Buffer.alloc(f.length + at);
          f.copy(buf, at);
          assert.equal(decodeTuple(t, buf, at, f.length), TUPLE_OK);
          assert.equal(decodeEthernet(v, buf, at, f.length), 0);
          assert.deepEqual(
            [
              t.af,
              t.protocol,
              [...t.saddr],
              [...t.daddr],
              t.sport,
              t.dport,
              t.l3Offset,
              t.l4Offset,
              t.ttl,
            ],
            [
              v.af,
              v.protocol,
              [...v.src],
              [...v.dst],
              v.srcPort,
              v.dstPort,
              v.l3Offset,
              v.l4Offset,
              v.ttl,
            ],
          );
          if (proto === 'tcp') assert.equal(t.tcpFlags, 0x12);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sends ARP, ICMP, SCTP and non-first fragments to the slow path', () => {
    const t = new Tuple();
    const sctpFrame = frame(false, '192.0.2.1', '192.0.2.2', 'sctp', 1, 2, false);
    assert.equal(decodeTuple(t, sctpFrame, 0, sctpFrame.length), TUPLE_SLOW);
    const icmp = PacketBuilder.eth()
      .ipv4({ src: '192.0.2.1', dst: '192.0.2.2' })
      .icmp({ type: 8, code: 0 })
      .payload(8)
      .build();
    assert.equal(decodeTuple(t, icmp, 0, icmp.length), TUPLE_SLOW);
    const frag = PacketBuilder.eth()
      .ipv4({ src: '192.0.2.1', dst: '192.0.2.2', fragOffset: 1480 })
      .udp({ srcPort: 1, dstPort: 2 })
      .build();
    assert.equal(decodeTuple(t, frag, 0, frag.length), TUPLE_SLOW);
    const arpFrame = Buffer.alloc(42);
    arpFrame.writeUInt16BE(0x0806, 12);
    assert.equal(decodeTuple(t, arpFrame, 0, arpFrame.length), TUPLE_SLOW);
  });

  it('reports every truncation of a valid frame as malformed', () => {
    const t = new Tuple();
    const f = frame(false, '192.0.2.1', '198.51.100.2', 'tcp', 1000, 80, true);
    for (let n = 0; n < f.length - 5; n++) {
      assert.equal(decodeTuple(t, f, 0, n), TUPLE_MALFORMED, `length ${n}`);
    }
  });

  it('never throws or reads outside the frame on random bytes', () => {
    const t = new Tuple();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), fc.nat(16), fc.nat(16), (bytes, pre, post) => {
        const buf = Buffer.alloc(pre + bytes.length + post, 0xee);
        buf.set(bytes, pre);
        const r = decodeTuple(t, buf.subarray(0, pre + bytes.length), pre, bytes.length);
        assert.ok(r === TUPLE_OK || r === TUPLE_SLOW || r === TUPLE_MALFORMED);
        if (r === TUPLE_OK) {
          assert.ok(t.l4Offset + 8 <= pre + bytes.length);
          assert.ok(t.sport >= 0 && t.sport <= 65535 && t.dport >= 0 && t.dport <= 65535);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
