/**
 * Where a fast-path frame's time goes: each step of the NAT-in fast path measured on its own over
 * 10,000 cached connections (decode, lookups, route, neighbour, state, statistics, timer, transmit
 * slot, the copy). Explains the end-to-end figure of engine.bench.ts.
 *
 *   node dist/bench/engine/breakdown.bench.js
 */
import os from 'node:os';
import { Flow } from '../../src/core/flow.js';
import { Ipvs } from '../../src/core/ipvs.js';
import { createMemoryPair } from '../../src/dataplane/io/memory.js';
import { PacketEngine } from '../../src/dataplane/packet/engine.js';
import { parseMac } from '../../src/dataplane/packet/net.js';
import { PacketBuilder, Tuple, decodeTuple } from '../../src/packet/index.js';
import { machineLine } from '../harness.js';

const N = 10_000;
const clock = 1e6;
const ipvs = new Ipvs({ maxConns: 2 * N, now: () => clock, log: () => {} });
const engine = new PacketEngine(ipvs);
const [d0, wire] = createMemoryPair({ txSlots: 256, maxFrame: 256 });
// the far end takes every frame (as the wire would), so none is dropped for a full queue
wire.onFrames(() => {});
const ifc = engine.net.addIface({
  name: 'eth0',
  mac: '02:00:00:00:00:a0',
  addrs: ['10.0.0.1/8', '192.168.1.1/24'],
  io: d0,
});
engine.net.addRoute({ dst: 'default', via: '10.0.0.254', dev: 'eth0' });
engine.neigh.addStatic(ifc, 2, [0x0a0000fe], parseMac('02:00:00:00:00:fe'));
engine.neigh.addStatic(ifc, 2, [0xc0a8010b], parseMac('02:00:00:00:01:11'));
const k = {
  af: 2 as const,
  protocol: 6,
  addr: '10.255.0.100',
  port: 80,
  fwmark: 0,
  scheduler: 'rr',
  flags: 0,
  timeout: 0,
  netmask: 0xffffffff,
  pe: '',
};
ipvs.addService(k);
ipvs.addDest(k, {
  addr: '192.168.1.11',
  port: 8080,
  fwd: 0,
  weight: 1,
  uThreshold: 0,
  lThreshold: 0,
  tunType: 0,
  tunPort: 0,
  tunFlags: 0,
});
engine.refresh();
const svc = ipvs.services.list()[0]!;
const fl = new Flow();
const vip = new Uint32Array([0x0aff0064, 0, 0, 0]);
const ca = new Uint32Array(4);
const frames: Buffer[] = [];
for (let i = 0; i < N; i++) {
  ca[0] = 0xcb000000 + i;
  fl.set(2, 6, ca, 1000 + (i % 50000), vip, 80);
  const h = ipvs.ops.schedule(svc, fl);
  ipvs.ops.transition(h, 0, 2);
  ipvs.ops.transition(h, 0, 16);
  ipvs.ops.put(h);
  frames.push(
    Buffer.from(
      PacketBuilder.eth({ src: '02:00:00:00:00:fe', dst: '02:00:00:00:00:a0' })
        .ipv4({ src: `203.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '10.255.0.100' })
        .tcp({ srcPort: 1000 + (i % 50000), dstPort: 80, flags: 16 })
        .payload(10)
        .build(),
    ),
  );
}
const t = ipvs.conns;
const res = engine.ctx.route;
const tus = frames.map((f) => {
  const x = new Tuple();
  decodeTuple(x, f, 0, f.length);
  return x;
});
const hs = tus.map((x) => t.inGet(2, 6, x.saddr, x.sport, x.daddr, x.dport));
const tu = new Tuple();
const out = new Uint8Array(256);
let sink = 0;
const rows: [string, number][] = [];
function time(name: string, fn: () => void): void {
  for (let r = 0; r < 5; r++) fn();
  const t0 = performance.now();
  const R = 30;
  for (let r = 0; r < R; r++) fn();
  rows.push([name, ((performance.now() - t0) * 1e6) / (R * N)]);
}
time('decodeTuple (64-byte frame)', () => {
  for (let i = 0; i < N; i++) sink += decodeTuple(tu, frames[i]!, 0, 64);
});
time('isLocal (is the destination a VIP)', () => {
  for (let i = 0; i < N; i++) sink += engine.net.isLocal(2, tus[i]!.daddr, 0) ? 1 : 0;
});
time('conns.outGet (LOCAL_IN 98, miss)', () => {
  for (let i = 0; i < N; i++) {
    const x = tus[i]!;
    sink += t.outGet(2, 6, x.saddr, x.sport, x.daddr, x.dport);
  }
});
time('conns.inGet (hit)', () => {
  for (let i = 0; i < N; i++) {
    const x = tus[i]!;
    sink += t.inGet(2, 6, x.saddr, x.sport, x.daddr, x.dport);
  }
});
time('ops.dest', () => {
  for (let i = 0; i < N; i++) sink += ipvs.ops.dest(hs[i]!) ? 1 : 0;
});
time('net.route (to the real server)', () => {
  for (let i = 0; i < N; i++) sink += engine.net.route(2, t.cold, t.daddrOff(hs[i]!), res) ? 1 : 0;
});
time('neigh.resolve', () => {
  for (let i = 0; i < N; i++) sink += engine.neigh.resolve(ifc, 2, t.cold, t.daddrOff(hs[i]!));
});
time('io.txAlloc (+ txCommit and delivery per 64)', () => {
  for (let i = 0; i < N; i++) {
    sink += d0.txAlloc(64);
    if ((i & 63) === 63) {
      d0.txCommit();
      wire.flush();
    }
  }
});
time('copy 50 bytes (byte loop)', () => {
  for (let i = 0; i < N; i++) {
    const f = frames[i]!;
    for (let j = 0; j < 50; j++) out[j] = f[14 + j]!;
  }
});
const big = Buffer.alloc(N * 64);
frames.forEach((f, i) => f.copy(big, i * 64));
const bigDv = new DataView(big.buffer, big.byteOffset, big.byteLength);
const outDv = new DataView(out.buffer, out.byteOffset, out.byteLength);
time('copy 50 bytes (DataView, as the fast path)', () => {
  for (let i = 0; i < N; i++) {
    const so = i * 64 + 14;
    let j = 0;
    for (; j + 4 <= 50; j += 4) outDv.setUint32(j, bigDv.getUint32(so + j));
    for (; j < 50; j++) out[j] = big[so + j]!;
  }
});
time('ops.inStats', () => {
  for (let i = 0; i < N; i++) ipvs.ops.inStats(hs[i]!, 64);
});
time('ops.transition (ES, ACK)', () => {
  for (let i = 0; i < N; i++) ipvs.ops.transition(hs[i]!, 0, 16);
});
time('ops.put (re-arm the timer)', () => {
  for (let i = 0; i < N; i++) ipvs.ops.put(hs[i]!);
});
console.log(`fast-path steps, ${N.toLocaleString('en-US')} connections (ns per frame)`);
let sum = 0;
for (const [n, v] of rows) {
  if (!n.includes('byte loop')) sum += v;
  console.log(`${n.padEnd(40)} ${v.toFixed(1).padStart(8)}`);
}
console.log(`${'sum (DataView copy)'.padEnd(40)} ${sum.toFixed(1).padStart(8)}`);
console.log(
  `\n${await machineLine()}; load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}${sink === 0.5 ? '' : ''}`,
);
