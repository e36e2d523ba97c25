/**
 * Micro-benchmarks of the packet library's hot functions (issue 5): decoding a 64-byte TCP/IPv4
 * Ethernet frame to its 5-tuple, the NAT rewrite (destination address and port, IPv4 and TCP
 * checksums patched incrementally), IPv6 decode, CRC32c of 1 KiB, a full TCP checksum, GUE
 * encapsulation. Target: >= 20 M frames/s per core for decode and NAT rewrite.
 *
 *   npx tsc -p tsconfig.json && node --expose-gc dist/bench/packet.bench.js
 */
import { bench, machineLine, printTable, type BenchResult } from './harness.js';
import {
  crc32c,
  decodeEthernet,
  decodeIp,
  ENCAP,
  EncapParams,
  encapsulate,
  l4Checksum,
  natRewriteDst4,
  PacketBuilder,
  PacketView,
  TCP_FLAG,
  Tuple,
  TUPLE_OK,
  decodeTuple,
} from '../src/packet/index.js';

const RING = 256;

/** 64-byte frames (14 Ethernet + 20 IPv4 + 20 TCP + 10 payload) with varied ports and addresses. */
function tcp4Frames(): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < RING; i++) {
    out.push(
      PacketBuilder.eth()
        .ipv4({ src: `10.1.${i}.${(i * 7) & 255}`, dst: '192.0.2.10', ttl: 64, df: true })
        .tcp({ srcPort: 10000 + i * 13, dstPort: 80, flags: TCP_FLAG.ACK, seq: i * 1000, ack: 1 })
        .payload(10)
        .build(),
    );
  }
  return out;
}

function main(): void {
  const frames = tcp4Frames();
  if (frames[0]!.length !== 64) throw new Error(`frame is ${frames[0]!.length} bytes, expected 64`);
  const v = new PacketView();
  const results: BenchResult[] = [];
  const ops = 2_000_000;
  let sink = 0;

  // Floor on this machine: read the 5-tuple straight from fixed offsets, with no validation.
  const t5 = new Uint32Array(5);
  results.push(
    bench(
      'baseline: raw 5-tuple read, no checks',
      (n) => {
        for (let i = 0; i < n; i++) {
          const f = frames[i & (RING - 1)]!;
          t5[0] = (f[26]! << 24) | (f[27]! << 16) | (f[28]! << 8) | f[29]!;
          t5[1] = (f[30]! << 24) | (f[31]! << 16) | (f[32]! << 8) | f[33]!;
          t5[2] = (f[34]! << 8) | f[35]!;
          t5[3] = (f[36]! << 8) | f[37]!;
          t5[4] = f[23]!;
          sink ^= t5[2]!;
        }
      },
      { ops, heap: true },
    ),
  );

  results.push(
    bench(
      'full decode eth/ipv4/tcp 64 B (PacketView)',
      (n) => {
        for (let i = 0; i < n; i++) {
          const f = frames[i & (RING - 1)]!;
          if (decodeEthernet(v, f, 0, 64) === 0) {
            sink ^= v.src[0]! ^ v.dst[0]! ^ v.srcPort ^ v.dstPort ^ v.protocol;
          }
        }
      },
      { ops, heap: true },
    ),
  );

  const tup = new Tuple();
  results.push(
    bench(
      'fast path: decodeTuple eth/ipv4/tcp 64 B → 5-tuple',
      (n) => {
        for (let i = 0; i < n; i++) {
          const f = frames[i & (RING - 1)]!;
          if (decodeTuple(tup, f, 0, 64) === TUPLE_OK) {
            sink ^= tup.saddr[0]! ^ tup.daddr[0]! ^ tup.sport ^ tup.dport ^ tup.protocol;
          }
        }
      },
      { ops, heap: true },
    ),
  );

  // NAT rewrite on views decoded once; addresses alternate so every call changes the frame.
  const views = frames.map((f) => {
    const x = new PacketView();
    decodeEthernet(x, f, 0, f.length);
    return x;
  });
  results.push(
    bench(
      'NAT rewrite dst addr+port, IP+TCP csum (incr.)',
      (n) => {
        for (let i = 0; i < n; i++) {
          const x = views[i & (RING - 1)]!;
          natRewriteDst4(x, 0x0a000002 + (i & 1), 8080 + (i & 1));
        }
      },
      { ops, heap: true },
    ),
  );

  results.push(
    bench(
      'decode + NAT rewrite (per frame)',
      (n) => {
        for (let i = 0; i < n; i++) {
          const f = frames[i & (RING - 1)]!;
          if (decodeEthernet(v, f, 0, 64) === 0) natRewriteDst4(v, 0x0a000002 + (i & 1), 8080);
        }
      },
      { ops, heap: true },
    ),
  );

  const v6frames: Buffer[] = [];
  for (let i = 0; i < RING; i++) {
    v6frames.push(
      PacketBuilder.eth()
        .ipv6({ src: `2001:db8::${i.toString(16)}`, dst: '2001:db8::10' })
        .tcp({ srcPort: 20000 + i, dstPort: 443, flags: TCP_FLAG.ACK })
        .build(),
    );
  }
  const v6len = v6frames[0]!.length;
  results.push(
    bench(
      `decode eth/ipv6/tcp ${v6len} B → 5-tuple`,
      (n) => {
        for (let i = 0; i < n; i++) {
          const f = v6frames[i & (RING - 1)]!;
          if (decodeEthernet(v, f, 0, v6len) === 0) sink ^= v.src[3]! ^ v.srcPort;
        }
      },
      { ops, heap: true },
    ),
  );

  const raw = frames.map((f) => f.subarray(14));
  results.push(
    bench(
      'decode raw ipv4/tcp 50 B (decodeIp)',
      (n) => {
        for (let i = 0; i < n; i++) {
          const f = raw[i & (RING - 1)]!;
          if (decodeIp(v, f, 0, 50) === 0) sink ^= v.srcPort;
        }
      },
      { ops, heap: true },
    ),
  );

  const kib = Buffer.alloc(1024, 0xa5);
  results.push(
    bench(
      'crc32c 1 KiB (slicing-by-8)',
      (n) => {
        for (let i = 0; i < n; i++) sink ^= crc32c(kib, 0, 1024);
      },
      { ops: 200_000, heap: true },
    ),
  );

  const big = PacketBuilder.eth()
    .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
    .tcp({ srcPort: 1, dstPort: 2, flags: TCP_FLAG.ACK })
    .payload(1460)
    .build();
  decodeEthernet(v, big, 0, big.length);
  const bs = new Uint32Array(v.src);
  const bd = new Uint32Array(v.dst);
  const bl4 = v.l4Offset;
  const bl4len = v.l4Length;
  results.push(
    bench(
      'full TCP checksum, 1480 B segment',
      (n) => {
        for (let i = 0; i < n; i++) sink ^= l4Checksum(2, bs, bd, 6, big, bl4, bl4len);
      },
      { ops: 200_000, heap: true },
    ),
  );

  const ep = new EncapParams();
  ep.type = ENCAP.GUE;
  ep.src[0] = 0xc0000201;
  ep.dst[0] = 0xc0000264;
  ep.srcPort = 40000;
  ep.dstPort = 6080;
  const tunBuf = Buffer.alloc(64 + 50);
  raw[0]!.copy(tunBuf, 64);
  results.push(
    bench(
      'GUE encapsulate (outer IPv4+UDP+GUE, no csum)',
      (n) => {
        for (let i = 0; i < n; i++) {
          ep.ipId = i & 0xffff;
          sink ^= encapsulate(ep, tunBuf, 64, 50);
        }
      },
      { ops, heap: true },
    ),
  );

  printTable('packet library (ns/op; one core, in-process)', results);
  console.log(`(sink ${sink & 1})`);
}

main();
void machineLine().then((m) => console.log(m));
