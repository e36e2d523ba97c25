/**
 * The floor of the engine's work in JavaScript, for bench/engine (not part of ipvs-ts): the C
 * reference (native/bench/engine-ref.c) ported as directly as the language allows, with none of
 * the engine's structure — one Int32Array of 16-word connection records, the batch's tuples in
 * struct-of-arrays, word copies, every step in one function. It does for each frame what the C
 * reference does (decode, MAC / header checksum / TTL checks, chained-table lookup with the batch's
 * buckets and chain heads loaded first, flags and destination, statistics, TCP state and timeout,
 * lazy timer re-arm, transmit slot, header + copy, TTL and NAT rewrite with incremental checksums,
 * delivery into the far end's ring) and checks that every frame went through. What it costs is
 * what V8 makes of the work itself on this machine: a bound the engine can approach, not pass.
 *
 * It runs as the engine does: the daemon's JIT budgets (src/cli/jit.ts) and the table and index
 * on huge pages when the addon is built.
 *
 *   node dist/bench/engine/floor-js.js LIVE natIn|natOut|drIn [ROUNDS]
 *   prints: CASE LIVE MEDIAN BEST (ns per frame: the median and the fastest round)
 */
import { tuneJit } from '../../src/cli/jit.js';
import { hugeTableAlloc } from '../../src/dataplane/io/native.js';

tuneJit();
const alloc = hugeTableAlloc();
const BATCH = 64;
const FRAME = 64;
const FRAMES = 1 << 15;
const OPS = 1 << 16;
const TX_SLOTS = 256;
const TX_SLOT = 256;
const RING_FRAMES = 4096;
const NAT_IN = 0;
const NAT_OUT = 1;
const DR_IN = 2;
const FWD_MASQ = 0;
const FWD_DROUTE = 3;

// a connection: 16 int32 words; the expiry time is the float64 over words 14-15
const W = 16;
const C_CADDR = 0;
const C_VADDR = 1;
const C_DADDR = 2;
const C_CPORT = 3;
const C_VPORT = 4;
const C_DPORT = 5;
const C_PROTO = 6;
const C_STATE = 7;
const C_FLAGS = 8;
const C_NEXT = 9;
const C_DEST = 10;
const C_TIMEOUT = 11;
const C_INPKTS = 12;
const C_SLOT = 13;
const C_EXP_F64 = 7;

const S_ESTABLISHED = 3;
const S_LAST = 12;
const EV_LAST = 4;

const VIP = 0x0aff0064;
const RS = [0xc0a8010b | 0, 0xc0a8010c | 0];

const args = process.argv.slice(2);
const LIVE = Number(args[0] ?? 1_000_000);
const KIND_NAME = args[1] ?? 'natIn';
const KIND = KIND_NAME === 'natOut' ? NAT_OUT : KIND_NAME === 'drIn' ? DR_IN : NAT_IN;
const ROUNDS = Math.min(64, Math.max(1, Number(args[2] ?? 7)));

let nb = 1;
while (nb < LIVE) nb <<= 1;
const HMASK = nb - 1;
const cbuf = alloc(LIVE * W * 4);
const conns = new Int32Array(cbuf);
const connsF = new Float64Array(cbuf);
const heads = new Int32Array(alloc(nb * 4)).fill(-1);
const ourMac = Uint8Array.of(2, 0, 0, 0, 0, 0xa0);
const destMac = Uint8Array.of(2, 0, 0, 0, 1, 0x11, 2, 0, 0, 0, 1, 0x11);
const gwMac = Uint8Array.of(2, 0, 0, 0, 0, 0xfe);
const destFlags = Int32Array.of(1, 1);
// destination stats (2 × 4), service stats (2 × 4), totals (4): in pkts, in bytes, out pkts, out bytes
const stats = new Float64Array(20);
// [dir][event][state]: these frames keep ESTABLISHED
const tcpTable = new Uint8Array(3 * EV_LAST * S_LAST).fill(S_ESTABLISHED);
const tcpTimeouts = new Int32Array(S_LAST).fill(60);
tcpTimeouts[S_ESTABLISHED] = 900;
const NOW_MS = 1e6;
const WHEEL_TICK = 100_000;

function hashKey(proto: number, addr: number, port: number): number {
  let x = Math.imul(addr, 0x9e3779b1) ^ Math.imul((port << 16) | proto, 0x85ebca6b);
  x ^= x >>> 15;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 13;
  return x & HMASK;
}

let xs = 88172645;
function rnd(): number {
  xs ^= xs << 13;
  xs ^= xs >>> 17;
  xs ^= xs << 5;
  return xs >>> 0;
}

function fold(s: number): number {
  while (s >>> 16) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function sum16(p: Uint8Array, o: number, n: number): number {
  let s = 0;
  for (let i = 0; i + 1 < n; i += 2) s += (p[o + i]! << 8) | p[o + i + 1]!;
  return s;
}

function csumReplace16(c: number, old: number, neu: number): number {
  return ~fold((~c & 0xffff) + (~old & 0xffff) + neu) & 0xffff;
}

function csumReplace32(c: number, old: number, neu: number): number {
  const s =
    (~c & 0xffff) + (~(old >>> 16) & 0xffff) + (~old & 0xffff) + (neu >>> 16) + (neu & 0xffff);
  return ~fold(s) & 0xffff;
}

const rd16 = (p: Uint8Array, o: number): number => (p[o]! << 8) | p[o + 1]!;
const rd32 = (p: Uint8Array, o: number): number =>
  (p[o]! << 24) | (p[o + 1]! << 16) | (p[o + 2]! << 8) | p[o + 3]!;
function wr16(p: Uint8Array, o: number, v: number): void {
  p[o] = v >>> 8;
  p[o + 1] = v;
}
function wr32(p: Uint8Array, o: number, v: number): void {
  p[o] = v >>> 24;
  p[o + 1] = v >>> 16;
  p[o + 2] = v >>> 8;
  p[o + 3] = v;
}

// the table: half NAT to VIP:80, half DR to VIP:81, all ESTABLISHED, keyed on the client
for (let h = 0; h < LIVE; h++) {
  const b = h * W;
  const dr = h & 1;
  conns[b + C_PROTO] = 6;
  conns[b + C_CADDR] = 0x0b000000 | (rnd() & 0xffffff);
  conns[b + C_CPORT] = 1024 + (rnd() % 60000);
  conns[b + C_VADDR] = VIP;
  conns[b + C_VPORT] = dr ? 81 : 80;
  conns[b + C_DEST] = (h >> 1) & 1;
  conns[b + C_DADDR] = RS[conns[b + C_DEST]!]!;
  conns[b + C_DPORT] = dr ? 81 : 8080;
  conns[b + C_FLAGS] = dr ? FWD_DROUTE : FWD_MASQ;
  conns[b + C_STATE] = S_ESTABLISHED;
  conns[b + C_TIMEOUT] = 900;
  conns[b + C_SLOT] = rnd() & 0xffff;
  const k = hashKey(6, conns[b + C_CADDR]!, conns[b + C_CPORT]!);
  conns[b + C_NEXT] = heads[k]!;
  heads[k] = h;
}

// pristine frames of random live connections of the case's kind: ACK with 10 bytes of payload
const pristine = new Uint8Array(FRAMES * FRAME);
for (let i = 0; i < FRAMES; i++) {
  let h: number;
  do h = rnd() % LIVE;
  while ((h & 1) !== (KIND === DR_IN ? 1 : 0));
  const b = h * W;
  const out = KIND === NAT_OUT;
  const sa = out ? conns[b + C_DADDR]! : conns[b + C_CADDR]!;
  const sp = out ? conns[b + C_DPORT]! : conns[b + C_CPORT]!;
  const da = out ? conns[b + C_CADDR]! : conns[b + C_VADDR]!;
  const dp = out ? conns[b + C_CPORT]! : conns[b + C_VPORT]!;
  const f = i * FRAME;
  pristine.set(ourMac, f);
  pristine.set([2, 0, 0, 0, 0, out ? 0x11 : 0xfe], f + 6);
  wr16(pristine, f + 12, 0x0800);
  const ip = f + 14;
  pristine[ip] = 0x45;
  wr16(pristine, ip + 2, 50);
  wr16(pristine, ip + 4, rnd() & 0xffff);
  pristine[ip + 6] = 0x40;
  pristine[ip + 8] = 64;
  pristine[ip + 9] = 6;
  wr32(pristine, ip + 12, sa);
  wr32(pristine, ip + 16, da);
  wr16(pristine, ip + 10, ~fold(sum16(pristine, ip, 20)) & 0xffff);
  const tcp = ip + 20;
  wr16(pristine, tcp, sp);
  wr16(pristine, tcp + 2, dp);
  wr32(pristine, tcp + 4, 1000);
  wr32(pristine, tcp + 8, 1);
  pristine[tcp + 12] = 0x50;
  pristine[tcp + 13] = 0x10;
  wr16(pristine, tcp + 14, 65535);
  for (let k = 0; k < 10; k++) pristine[tcp + 20 + k] = k;
  const s =
    sum16(pristine, tcp, 30) + (sa >>> 16) + (sa & 0xffff) + (da >>> 16) + (da & 0xffff) + 6 + 30;
  wr16(pristine, tcp + 16, ~fold(s) & 0xffff);
}

// transmit slots, and the far end's receive ring the committed frames are copied into
const tx = new Uint8Array(TX_SLOTS * TX_SLOT);
const txW = new Int32Array(tx.buffer);
const txLen = new Int32Array(TX_SLOTS);
const ringW = new Int32Array((RING_FRAMES * TX_SLOT) >> 2);
const held = new Int32Array(RING_FRAMES * 2);
let ringWr = 0;
let nHeld = 0;
let txPending = 0;
let delivered = 0;
let forwarded = 0;

function txCommit(): void {
  for (let i = 0; i < txPending; i++) {
    const len = txLen[i]!;
    if (ringWr + len > ringW.length * 4) ringWr = 0;
    const n4 = (len + 3) >> 2;
    const d4 = ringWr >> 2;
    const s4 = (i * TX_SLOT) >> 2;
    for (let k = 0; k < n4; k++) ringW[d4 + k] = txW[s4 + k]!;
    held[nHeld * 2] = ringWr;
    held[nHeld * 2 + 1] = len;
    nHeld++;
    ringWr = (ringWr + len + 3) & ~3;
  }
  txPending = 0;
}

// the batch's tuples
const tSa = new Int32Array(BATCH);
const tDa = new Int32Array(BATCH);
const tSp = new Int32Array(BATCH);
const tDp = new Int32Array(BATCH);
const tLen = new Int32Array(BATCH);
const tFl = new Int32Array(BATCH);
const tTtl = new Int32Array(BATCH);
const tOk = new Int32Array(BATCH);
const bk = new Int32Array(BATCH);

function decode(f: Uint8Array, o: number, len: number, i: number): number {
  if (len < 34 || rd16(f, o + 12) !== 0x0800) return 0;
  const ip = o + 14;
  const ihl = (f[ip]! & 15) * 4;
  if (f[ip]! >>> 4 !== 4 || ihl < 20) return 0;
  const total = rd16(f, ip + 2);
  if (total < ihl || 14 + total > len) return 0;
  if (((f[ip + 6]! & 0x1f) | f[ip + 7]!) !== 0 || f[ip + 9] !== 6) return 0;
  const l4 = ip + ihl;
  if (ihl + 20 > total || f[l4 + 12]! >>> 4 < 5) return 0;
  tSa[i] = rd32(f, ip + 12);
  tDa[i] = rd32(f, ip + 16);
  tTtl[i] = f[ip + 8]!;
  tLen[i] = total;
  tSp[i] = rd16(f, l4);
  tDp[i] = rd16(f, l4 + 2);
  tFl[i] = f[l4 + 13]!;
  return 1;
}

function tcpEvent(fl: number): number {
  return fl & 4 ? 3 : fl & 2 ? 0 : fl & 1 ? 1 : fl & 0x10 ? 2 : -1;
}

function forward(f: Uint8Array, fw: Int32Array, o: number, i: number): void {
  const ip = o + 14;
  for (let k = 0; k < 6; k++) if (f[o + k] !== ourMac[k]) return;
  if (fold(sum16(f, ip, 20)) !== 0xffff || tTtl[i]! <= 1) return;
  const sa = tSa[i]!;
  const da = tDa[i]!;
  const sp = tSp[i]!;
  const dp = tDp[i]!;
  const inb = da === VIP;
  let c = -1;
  for (let h = heads[bk[i]!]!; h >= 0; h = conns[h * W + C_NEXT]!) {
    const x = h * W;
    if (
      inb
        ? conns[x + C_CADDR] === sa &&
          conns[x + C_CPORT] === sp &&
          conns[x + C_VADDR] === da &&
          conns[x + C_VPORT] === dp &&
          conns[x + C_PROTO] === 6
        : conns[x + C_CADDR] === da &&
          conns[x + C_CPORT] === dp &&
          conns[x + C_DADDR] === sa &&
          conns[x + C_DPORT] === sp &&
          conns[x + C_PROTO] === 6
    ) {
      c = x;
      break;
    }
  }
  if (c < 0) return;
  const fwd = conns[c + C_FLAGS]! & 7;
  if (fwd !== FWD_MASQ && fwd !== FWD_DROUTE) return;
  if (!inb && fwd !== FWD_MASQ) return;
  const d = conns[c + C_DEST]!;
  if ((destFlags[d]! & 1) === 0) return;
  if (txPending === TX_SLOTS) txCommit();
  const s = txPending++;
  const out = s * TX_SLOT;
  const len = tLen[i]!;
  const sv = 8 + (fwd === FWD_DROUTE ? 4 : 0);
  const so = inb ? 0 : 2;
  stats[d * 4 + so] += 1;
  stats[d * 4 + so + 1] += len;
  stats[sv + so] += 1;
  stats[sv + so + 1] += len;
  stats[16 + so] += 1;
  stats[17 + so] += len;
  const ev = tcpEvent(tFl[i]!);
  if (ev >= 0) {
    const ns = tcpTable[((inb ? 0 : 1) * EV_LAST + ev) * S_LAST + conns[c + C_STATE]!]!;
    conns[c + C_STATE] = ns;
    conns[c + C_TIMEOUT] = tcpTimeouts[ns]!;
  }
  // the Ethernet header toward the next hop, then the frame's IP packet a word at a time
  if (inb) for (let k = 0; k < 6; k++) tx[out + k] = destMac[d * 6 + k]!;
  else for (let k = 0; k < 6; k++) tx[out + k] = gwMac[k]!;
  for (let k = 0; k < 6; k++) tx[out + 6 + k] = ourMac[k]!;
  const n4 = (14 + len + 3) >> 2;
  const d4 = out >> 2;
  const s4 = o >> 2;
  for (let k = 3; k < n4; k++) txW[d4 + k] = fw[s4 + k]!;
  tx[out + 12] = f[o + 12]!;
  tx[out + 13] = f[o + 13]!;
  txLen[s] = 14 + len;
  const ip2 = out + 14;
  const old = rd16(tx, ip2 + 8);
  tx[ip2 + 8] = tx[ip2 + 8]! - 1;
  wr16(tx, ip2 + 10, csumReplace16(rd16(tx, ip2 + 10), old, rd16(tx, ip2 + 8)));
  if (fwd === FWD_MASQ) {
    const l4 = ip2 + 20;
    const oa = (inb ? da : sa) >>> 0;
    const na = (inb ? conns[c + C_DADDR]! : conns[c + C_VADDR]!) >>> 0;
    const op = inb ? dp : sp;
    const np = inb ? conns[c + C_DPORT]! : conns[c + C_VPORT]!;
    wr32(tx, ip2 + (inb ? 16 : 12), na);
    wr16(tx, ip2 + 10, csumReplace32(rd16(tx, ip2 + 10), oa, na));
    wr16(tx, l4 + (inb ? 2 : 0), np);
    wr16(tx, l4 + 16, csumReplace16(csumReplace32(rd16(tx, l4 + 16), oa, na), op, np));
  }
  if (inb) conns[c + C_INPKTS] = conns[c + C_INPKTS]! + 1;
  // the lazy re-arm: store the time; the entry moves when its slot comes round
  const at = NOW_MS + conns[c + C_TIMEOUT]! * 1000;
  connsF[(c >> 1) + C_EXP_F64] = at;
  const nt = WHEEL_TICK + 1;
  if ((nt + ((conns[c + C_SLOT]! - nt) & 0xffff)) * 10 > at)
    conns[c + C_SLOT] = Math.floor(at / 10) & 0xffff;
  forwarded++;
}

const data = new Uint8Array(BATCH * FRAME);
const dataW = new Int32Array(data.buffer);
let pos = 0;
// what the loads ahead read: kept, so that they are not left out
const touched = new Int32Array(BATCH);

function run(n: number): void {
  for (let k = 0; k < n; k += BATCH) {
    data.set(pristine.subarray(pos * FRAME, (pos + BATCH) * FRAME));
    pos = (pos + BATCH) & (FRAMES - 1);
    for (let i = 0; i < BATCH; i++) {
      tOk[i] = decode(data, i * FRAME, FRAME, i);
      bk[i] = tDa[i] === VIP ? hashKey(6, tSa[i]!, tSp[i]!) : hashKey(6, tDa[i]!, tDp[i]!);
    }
    // the buckets, then the records at their heads, in tight loops (as the engine's prefetch)
    for (let i = 0; i < BATCH; i++) touched[i] = heads[bk[i]!]!;
    for (let i = 0; i < BATCH; i++) {
      const h = heads[bk[i]!]!;
      if (h >= 0) touched[i] = conns[h * W]!;
    }
    for (let i = 0; i < BATCH; i++) if (tOk[i]) forward(data, dataW, i * FRAME, i);
    txCommit();
    delivered += nHeld;
    nHeld = 0;
  }
}

const times: number[] = [];
for (let r = -5; r < ROUNDS; r++) {
  const t0 = performance.now();
  run(OPS);
  if (r >= 0) times.push(((performance.now() - t0) * 1e6) / OPS);
}
times.sort((a, b) => a - b);
if (forwarded !== (ROUNDS + 5) * OPS || delivered !== forwarded) {
  process.stderr.write(`floor-js: forwarded ${forwarded}, delivered ${delivered}\n`);
  process.exit(1);
}
console.log(
  `${KIND_NAME} ${LIVE} ${times[Math.floor(ROUNDS / 2)]!.toFixed(1)} ${times[0]!.toFixed(1)}`,
);
