/**
 * The connection table (spec §1.3, §3): every connection and persistence template lives in a
 * fixed-size record inside typed arrays, addressed by an integer handle — no object per
 * connection. The record's "hot" part (64 bytes) holds what every lookup reads: the lookup key,
 * flags, state, timeout, destination and expiry time; its "cold" part (48 bytes) holds the
 * real-server address, controller links, counters and the timer-wheel links. The index is keyed
 * like the kernel's — (protocol, client address, client port), templates by (protocol, masked
 * client, 0) — and the in / out / template lookups allocate nothing. Binding, state and expiry
 * policy live in `ConnOps`; this is storage.
 */
import { AF_INET6 } from './addr.js';
import { CONN_F_FWD_MASK, CONN_F_NO_CPORT, CONN_F_TEMPLATE, FWD_MASQ } from './constants.js';
import type { WheelStorage } from './timer-wheel.js';

/** Handle value meaning "no connection". */
export const NO_CONN = -1;

/**
 * One record per handle, 28 words (112 bytes): the hot part (words 0..15) then the cold part
 * (words 16..27), side by side so a packet's reads of both stay on one page (one TLB entry; under
 * a hypervisor's 4 KiB backing pages every page is a nested page walk).
 */
const RS = 28;
/** Hot part, in 32-bit words from the record's start. */
const H_NEXT = 0; // hash chain / free list link (i32)
const H_PORTS = 1; // cport | vport << 16
const H_META = 2; // af | protocol << 8 | state << 16 | oldState << 24
const H_FLAGS = 3;
const H_CADDR = 4; // 4 words
const H_VADDR = 8; // 4 words
const H_TIMEOUT = 12; // ms
const H_DEST = 13; // destination id (i32)
const H_EXPIRES = 14; // f64 over words 14..15
/** Cold part, in 32-bit words from the record's start. */
const C_DADDR = 16; // 4 words
const C_DPORT = 20; // dport | daf << 16 | refcnt << 24
const C_FWMARK = 21;
const C_INPKTS = 22;
const C_CONTROL = 23; // i32
const C_NCONTROL = 24; // i32
const C_WHEEL = 25; // next, prev, slot (i32)

/**
 * Index buckets: the smallest power of two with at least 4/3 of a bucket per entry of capacity, so
 * a full table stays at load factor ≤ 3/4 and a lookup seldom walks past a record the batch did
 * not prefetch (at 0.95, with 1M connections, walking past cold records cost the packet engine
 * 60–75 ns a frame); an index much larger than that costs inserts more misses of their own.
 */
const BUCKETS_NUM = 4;
const BUCKETS_DEN = 3;

/** Bytes of a record. */
export const RECORD_BYTES = RS * 4;

/**
 * Copies words 1..3 of the IPv6 address at `a[ao]` to `t[to]` (word 0 is stored inline by
 * `alloc`; out of line so `alloc` stays small enough for V8 to inline).
 */
function copyWords123(t: Uint32Array, to: number, a: ArrayLike<number>, ao: number): void {
  t[to + 1] = a[ao + 1]!;
  t[to + 2] = a[ao + 2]!;
  t[to + 3] = a[ao + 3]!;
}

/** Supplies zeroed memory of at least `bytes` bytes for a table. */
export type TableAlloc = (bytes: number) => ArrayBuffer;

const plainAlloc: TableAlloc = (bytes) => new ArrayBuffer(bytes);

/** Storage and index for every connection and persistence template. */
export class ConnTable {
  readonly capacity: number;
  /** The records; addresses are at `caddrOff(h)` / `vaddrOff(h)`. */
  readonly hot: Uint32Array;
  /** The same records (`hot`), named for their cold parts: the real server is at `daddrOff(h)`. */
  readonly cold: Uint32Array;
  readonly #hoti: Int32Array;
  readonly #hotf: Float64Array;
  readonly #coldi: Int32Array;
  readonly #buckets: Int32Array;
  readonly #bmask: number;
  readonly #seed: number;
  /** Handles never used yet start here. */
  #hwm = 0;
  #freeHead = NO_CONN;
  #count = 0;
  #noCport = 0;
  /** Sink for `prefetchBuckets` loads, so the engine cannot drop them. */
  #sink = 0;

  /**
   * `alloc` supplies the zeroed backing memory of the records and the index (default: plain
   * ArrayBuffers); the daemon passes one that puts large tables on huge pages.
   */
  constructor(capacity: number, seed: number, alloc: TableAlloc = plainAlloc) {
    this.capacity = capacity;
    const buf = alloc(capacity * RS * 4);
    this.hot = new Uint32Array(buf, 0, capacity * RS);
    this.#hoti = new Int32Array(buf, 0, capacity * RS);
    this.#hotf = new Float64Array(buf, 0, (capacity * RS) / 2);
    // the cold parts are in the same records: one memory, two names for readability
    this.cold = this.hot;
    this.#coldi = this.#hoti;
    let nb = 1;
    while (nb * BUCKETS_DEN < capacity * BUCKETS_NUM) nb <<= 1;
    this.#buckets = new Int32Array(alloc(nb * 4), 0, nb).fill(NO_CONN);
    this.#bmask = nb - 1;
    this.#seed = seed >>> 0;
  }

  /** Where the timer wheel keeps each handle's expiry and links. */
  wheelStorage(): WheelStorage {
    return {
      exp: this.#hotf,
      expStride: RS / 2,
      expOff: H_EXPIRES / 2,
      links: this.#coldi,
      linkStride: RS,
      linkOff: C_WHEEL,
    };
  }

  /** Live connections (hashed or not). */
  get count(): number {
    return this.#count;
  }

  /** Hashed NO_CPORT connections. */
  get noCportCount(): number {
    return this.#noCport;
  }

  /** Table memory per entry of capacity: its record and its share of the index (117–123 bytes). */
  get bytesPerEntry(): number {
    return RECORD_BYTES + ((this.#bmask + 1) * 4) / this.capacity;
  }

  /** Number of index buckets. */
  get bucketCount(): number {
    return this.#bmask + 1;
  }

  // ---- field access -----------------------------------------------------------------------

  af(h: number): number {
    return this.hot[h * RS + H_META]! & 0xff;
  }
  protocol(h: number): number {
    return (this.hot[h * RS + H_META]! >>> 8) & 0xff;
  }
  state(h: number): number {
    return (this.hot[h * RS + H_META]! >>> 16) & 0xff;
  }
  setState(h: number, s: number): void {
    const i = h * RS + H_META;
    this.hot[i] = (this.hot[i]! & 0xff00ffff) | ((s & 0xff) << 16);
  }
  oldState(h: number): number {
    return this.hot[h * RS + H_META]! >>> 24;
  }
  setOldState(h: number, s: number): void {
    const i = h * RS + H_META;
    this.hot[i] = (this.hot[i]! & 0x00ffffff) | ((s & 0xff) << 24);
  }
  flags(h: number): number {
    return this.hot[h * RS + H_FLAGS]!;
  }
  setFlags(h: number, f: number): void {
    this.hot[h * RS + H_FLAGS] = f;
  }
  cport(h: number): number {
    return this.hot[h * RS + H_PORTS]! & 0xffff;
  }
  vport(h: number): number {
    return this.hot[h * RS + H_PORTS]! >>> 16;
  }
  /** Sets both ports at once (callers that change a port re-hash around it). */
  setPorts(h: number, cport: number, vport: number): void {
    this.hot[h * RS + H_PORTS] = (cport & 0xffff) | ((vport & 0xffff) << 16);
  }
  timeout(h: number): number {
    return this.hot[h * RS + H_TIMEOUT]!;
  }
  setTimeout(h: number, ms: number): void {
    this.hot[h * RS + H_TIMEOUT] = ms;
  }
  dest(h: number): number {
    return this.#hoti[h * RS + H_DEST]!;
  }
  setDest(h: number, id: number): void {
    this.#hoti[h * RS + H_DEST] = id;
  }
  /** Offset of the client address words in `hot`. */
  caddrOff(h: number): number {
    return h * RS + H_CADDR;
  }
  /** Offset of the virtual address words in `hot`. */
  vaddrOff(h: number): number {
    return h * RS + H_VADDR;
  }
  /** Offset of the real-server address words in `cold`. */
  daddrOff(h: number): number {
    return h * RS + C_DADDR;
  }
  dport(h: number): number {
    return this.cold[h * RS + C_DPORT]! & 0xffff;
  }
  setDport(h: number, p: number): void {
    const i = h * RS + C_DPORT;
    this.cold[i] = (this.cold[i]! & 0xffff0000) | (p & 0xffff);
  }
  daf(h: number): number {
    return (this.cold[h * RS + C_DPORT]! >>> 16) & 0xff;
  }
  refcnt(h: number): number {
    return this.cold[h * RS + C_DPORT]! >>> 24;
  }
  setRefcnt(h: number, n: number): void {
    const i = h * RS + C_DPORT;
    this.cold[i] = (this.cold[i]! & 0x00ffffff) | ((n & 0xff) << 24);
  }
  fwmark(h: number): number {
    return this.cold[h * RS + C_FWMARK]!;
  }
  inPkts(h: number): number {
    return this.cold[h * RS + C_INPKTS]!;
  }
  setInPkts(h: number, n: number): void {
    this.cold[h * RS + C_INPKTS] = n;
  }
  control(h: number): number {
    return this.#coldi[h * RS + C_CONTROL]!;
  }
  setControl(h: number, c: number): void {
    this.#coldi[h * RS + C_CONTROL] = c;
  }
  nControl(h: number): number {
    return this.#coldi[h * RS + C_NCONTROL]!;
  }
  setNControl(h: number, n: number): void {
    this.#coldi[h * RS + C_NCONTROL] = n;
  }

  // ---- allocation -------------------------------------------------------------------------

  /**
   * Takes a free handle and fills its identity and timeout (ms), or returns NO_CONN when the
   * table is full. Addresses are four-word arrays read from offset `ao` / `vo` / `dOff`; for IPv4
   * only the first word is read and stored (the others of the record are unspecified).
   */
  alloc(
    af: number,
    proto: number,
    caddr: ArrayLike<number>,
    ao: number,
    cport: number,
    vaddr: ArrayLike<number>,
    vo: number,
    vport: number,
    daf: number,
    daddr: ArrayLike<number>,
    dOff: number,
    dport: number,
    flags: number,
    fwmark: number,
    timeout: number,
  ): number {
    let h: number;
    if (this.#freeHead !== NO_CONN) {
      h = this.#freeHead;
      this.#freeHead = this.#hoti[h * RS + H_NEXT]!;
    } else if (this.#hwm < this.capacity) h = this.#hwm++;
    else return NO_CONN;
    // only word 0 of an IPv4 address is meaningful: its other words are not written
    const hb = h * RS;
    const hot = this.hot;
    hot[hb + H_PORTS] = (cport & 0xffff) | ((vport & 0xffff) << 16);
    hot[hb + H_META] = (af & 0xff) | ((proto & 0xff) << 8);
    hot[hb + H_FLAGS] = flags;
    hot[hb + H_CADDR] = caddr[ao]!;
    hot[hb + H_VADDR] = vaddr[vo]!;
    hot[hb + H_TIMEOUT] = timeout;
    this.#hoti[hb + H_DEST] = -1;
    const cb = h * RS;
    const cold = this.cold;
    cold[cb + C_DADDR] = daddr[dOff]!;
    cold[cb + C_DPORT] = (dport & 0xffff) | ((daf & 0xff) << 16);
    cold[cb + C_FWMARK] = fwmark;
    cold[cb + C_INPKTS] = 0;
    const ci = this.#coldi;
    ci[cb + C_CONTROL] = NO_CONN;
    ci[cb + C_NCONTROL] = 0;
    ci[cb + C_WHEEL + 2] = -1;
    if (af === AF_INET6) {
      copyWords123(hot, hb + H_CADDR, caddr, ao);
      copyWords123(hot, hb + H_VADDR, vaddr, vo);
    }
    if (daf === AF_INET6) copyWords123(cold, cb + C_DADDR, daddr, dOff);
    this.#count++;
    return h;
  }

  /** Returns a handle to the free list (it must be unhashed and disarmed). */
  release(h: number): void {
    this.#hoti[h * RS + H_NEXT] = this.#freeHead;
    this.#freeHead = h;
    this.#count--;
  }

  // ---- index ------------------------------------------------------------------------------

  /** The bucket of (protocol, client address, client port). */
  #hash(proto: number, af: number, a: ArrayLike<number>, ao: number, port: number): number {
    let k = a[ao]!;
    if (af === AF_INET6)
      k = Math.imul(k ^ a[ao + 1]!, 0x9e3779b1) ^ a[ao + 2]! ^ Math.imul(a[ao + 3]!, 0x85ebca6b);
    // multiply-xorshift mixing: sequential addresses and ports spread like random ones
    let x = Math.imul(k ^ this.#seed, 0x9e3779b1) ^ ((port << 8) | proto);
    x ^= x >>> 15;
    x = Math.imul(x, 0x2c1b3c6d);
    x ^= x >>> 12;
    x = Math.imul(x, 0x297a2d39);
    return (x ^ (x >>> 15)) & this.#bmask;
  }

  #bucketOf(h: number): number {
    const hb = h * RS;
    const meta = this.hot[hb + H_META]!;
    return this.#hash(
      (meta >>> 8) & 0xff,
      meta & 0xff,
      this.hot,
      hb + H_CADDR,
      this.hot[hb + H_PORTS]! & 0xffff,
    );
  }

  /** The index bucket of (protocol, client address, client port), for `inGetAt` / `outGetAt`. */
  bucket(af: number, proto: number, caddr: ArrayLike<number>, ao: number, cport: number): number {
    return this.#hash(proto, af, caddr, ao, cport);
  }

  /**
   * Loads `n` index buckets (`bucket()` values) and the records at their heads into the cache:
   * a data plane that handles frames in batches calls this for a whole batch before looking any
   * of them up, so the processor overlaps their memory latency instead of paying it once per
   * frame (the software prefetch of DPDK and VPP). Each of the two loops is a few instructions per
   * bucket, so many loads are in flight at once; loads interleaved with a frame's decoding wait in
   * the reorder buffer, a few at a time. `records` false loads the buckets only (for inserts,
   * which read no record).
   */
  prefetchBuckets(bs: Int32Array, n: number, records = true): void {
    const bk = this.#buckets;
    const r = this.hot;
    let s = 0;
    for (let i = 0; i < n; i++) s ^= bk[bs[i]!]!;
    if (records)
      for (let i = 0; i < n; i++) {
        const x = bk[bs[i]!]!;
        // every cache line of the record (112 bytes: two or three lines, on one page)
        if (x !== NO_CONN) s ^= r[x * RS]! ^ r[x * RS + RS / 2]! ^ r[x * RS + RS - 1]!;
      }
    this.#sink ^= s;
  }

  /** Inserts `h` into the index under its (protocol, caddr, cport). */
  hash(h: number): void {
    const b = this.#bucketOf(h);
    this.#hoti[h * RS + H_NEXT] = this.#buckets[b]!;
    this.#buckets[b] = h;
    if (this.hot[h * RS + H_FLAGS]! & CONN_F_NO_CPORT) this.#noCport++;
  }

  /** Removes `h` from the index. Returns false when it was not there. */
  unhash(h: number): boolean {
    const b = this.#bucketOf(h);
    const hi = this.#hoti;
    let p = NO_CONN;
    for (let x = this.#buckets[b]!; x !== NO_CONN; p = x, x = hi[x * RS + H_NEXT]!) {
      if (x !== h) continue;
      const n = hi[x * RS + H_NEXT]!;
      if (p === NO_CONN) this.#buckets[b] = n;
      else hi[p * RS + H_NEXT] = n;
      hi[h * RS + H_NEXT] = NO_CONN;
      if (this.hot[h * RS + H_FLAGS]! & CONN_F_NO_CPORT) this.#noCport--;
      return true;
    }
    return false;
  }

  /** True when the four-word address at `ao` in `a` equals the one at `to` in `t`. */
  #eq(af: number, t: Uint32Array, to: number, a: ArrayLike<number>, ao: number): boolean {
    if (t[to] !== a[ao]) return false;
    return (
      af !== AF_INET6 ||
      (t[to + 1] === a[ao + 1] && t[to + 2] === a[ao + 2] && t[to + 3] === a[ao + 3])
    );
  }

  /**
   * The in-lookup (spec §3.2): a client → VIP packet. Matches protocol, af, both addresses, both
   * ports, and the NO_CPORT rule; retries with client port 0 while NO_CPORT entries exist.
   */
  inGet(
    af: number,
    proto: number,
    caddr: ArrayLike<number>,
    cport: number,
    vaddr: ArrayLike<number>,
    vport: number,
  ): number {
    return this.inGetAt(
      this.#hash(proto, af, caddr, 0, cport),
      af,
      proto,
      caddr,
      cport,
      vaddr,
      vport,
    );
  }

  /**
   * `inGet` with the bucket of (proto, caddr, cport) already known (`bucket()`):
   * a batch that prefetched its buckets does not hash its keys a second time.
   */
  inGetAt(
    b: number,
    af: number,
    proto: number,
    caddr: ArrayLike<number>,
    cport: number,
    vaddr: ArrayLike<number>,
    vport: number,
  ): number {
    const h = this.#inGet(b, af, proto, caddr, cport, vaddr, vport);
    if (h !== NO_CONN || this.#noCport === 0 || cport === 0) return h;
    return this.#inGet(this.#hash(proto, af, caddr, 0, 0), af, proto, caddr, 0, vaddr, vport);
  }

  #inGet(
    b0: number,
    af: number,
    proto: number,
    caddr: ArrayLike<number>,
    cport: number,
    vaddr: ArrayLike<number>,
    vport: number,
  ): number {
    const hot = this.hot;
    const hi = this.#hoti;
    const ports = (cport | (vport << 16)) >>> 0;
    const meta = af | (proto << 8);
    const noCport = cport === 0 ? CONN_F_NO_CPORT : 0;
    for (let x = this.#buckets[b0]!; x !== NO_CONN; x = hi[x * RS + H_NEXT]!) {
      const b = x * RS;
      if (
        hot[b + H_PORTS] === ports &&
        (hot[b + H_META]! & 0xffff) === meta &&
        (hot[b + H_FLAGS]! & CONN_F_NO_CPORT) === noCport &&
        this.#eq(af, hot, b + H_CADDR, caddr, 0) &&
        this.#eq(af, hot, b + H_VADDR, vaddr, 0)
      ) {
        return x;
      }
    }
    return NO_CONN;
  }

  /**
   * The out-lookup (spec §3.2): a real server → client packet with source (saddr,sport) and
   * destination (daddr,dport). The packet's destination is the client; its source must be the
   * real server for NAT connections and the VIP for the other methods.
   */
  outGet(
    af: number,
    proto: number,
    saddr: ArrayLike<number>,
    sport: number,
    daddr: ArrayLike<number>,
    dport: number,
  ): number {
    return this.outGetAt(
      this.#hash(proto, af, daddr, 0, dport),
      af,
      proto,
      saddr,
      sport,
      daddr,
      dport,
    );
  }

  /** `outGet` with the bucket of (proto, daddr, dport) already known (`bucket()`). */
  outGetAt(
    b0: number,
    af: number,
    proto: number,
    saddr: ArrayLike<number>,
    sport: number,
    daddr: ArrayLike<number>,
    dport: number,
  ): number {
    const hot = this.hot;
    const hi = this.#hoti;
    const meta = af | (proto << 8);
    for (let x = this.#buckets[b0]!; x !== NO_CONN; x = hi[x * RS + H_NEXT]!) {
      const b = x * RS;
      const f = hot[b + H_FLAGS]!;
      if (
        (hot[b + H_PORTS]! & 0xffff) !== dport ||
        (hot[b + H_META]! & 0xffff) !== meta ||
        f & CONN_F_TEMPLATE ||
        !this.#eq(af, hot, b + H_CADDR, daddr, 0)
      ) {
        continue;
      }
      if ((f & CONN_F_FWD_MASK) === FWD_MASQ) {
        const c = x * RS;
        if (
          (this.cold[c + C_DPORT]! & 0xffff) === sport &&
          this.#eq(this.daf(x), this.cold, c + C_DADDR, saddr, 0)
        ) {
          return x;
        }
      } else if (hot[b + H_PORTS]! >>> 16 === sport && this.#eq(af, hot, b + H_VADDR, saddr, 0))
        return x;
    }
    return NO_CONN;
  }

  /**
   * The template lookup (spec §1.4): af, masked client, cport, vport, protocol and the TEMPLATE
   * flag; the virtual address compares only its first word when protocol is 0 (fwmark templates).
   * `peMatch`, when given, must also accept the template (persistence-engine data).
   */
  templateGet(
    af: number,
    proto: number,
    caddr: ArrayLike<number>,
    cport: number,
    vaddr: ArrayLike<number>,
    vport: number,
    peMatch: ((h: number) => boolean) | null = null,
  ): number {
    const hot = this.hot;
    const hi = this.#hoti;
    const ports = (cport | (vport << 16)) >>> 0;
    const meta = af | (proto << 8);
    for (
      let x = this.#buckets[this.#hash(proto, af, caddr, 0, cport)]!;
      x !== NO_CONN;
      x = hi[x * RS + H_NEXT]!
    ) {
      const b = x * RS;
      if (
        !(hot[b + H_FLAGS]! & CONN_F_TEMPLATE) ||
        hot[b + H_PORTS] !== ports ||
        (hot[b + H_META]! & 0xffff) !== meta ||
        !this.#eq(af, hot, b + H_CADDR, caddr, 0)
      ) {
        continue;
      }
      const vOk =
        proto === 0 ? hot[b + H_VADDR] === vaddr[0] : this.#eq(af, hot, b + H_VADDR, vaddr, 0);
      if (vOk && (peMatch === null || peMatch(x))) return x;
    }
    return NO_CONN;
  }

  /** Calls `fn` for every hashed handle in bucket order; `fn` may unhash the handle it is given. */
  forEach(fn: (h: number) => void): void {
    const b = this.#buckets;
    const hi = this.#hoti;
    for (let i = 0; i < b.length; i++) {
      for (let x = b[i]!; x !== NO_CONN;) {
        const n = hi[x * RS + H_NEXT]!;
        fn(x);
        x = n;
      }
    }
  }

  /**
   * `forEach` from index bucket `from` on, bucket by bucket, stopping after the bucket in which
   * `max` handles have been visited: returns the bucket to go on from, or -1 when the table has
   * been walked to its end (a listing in pages, as /proc/net/ip_vs_conn is read in pieces).
   */
  forEachFrom(from: number, max: number, fn: (h: number) => void): number {
    const b = this.#buckets;
    const hi = this.#hoti;
    let n = 0;
    for (let i = Math.max(0, from); i < b.length; i++) {
      for (let x = b[i]!; x !== NO_CONN;) {
        const nx = hi[x * RS + H_NEXT]!;
        fn(x);
        n++;
        x = nx;
      }
      if (n >= max) return i + 1 < b.length ? i + 1 : -1;
    }
    return -1;
  }

  /** Every hashed handle, collected (for listings and sweeps that may remove entries). */
  handles(): number[] {
    const out: number[] = [];
    this.forEach((h) => out.push(h));
    return out;
  }

  /** Handles in one bucket (for drop_entry's random bucket visits). */
  bucketHandles(i: number, out: number[]): number[] {
    out.length = 0;
    for (let x = this.#buckets[i & this.#bmask]!; x !== NO_CONN; x = this.#hoti[x * RS + H_NEXT]!)
      out.push(x);
    return out;
  }
}
