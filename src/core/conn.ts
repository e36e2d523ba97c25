/**
 * The connection table (spec §1.3, §3): struct-of-arrays storage in typed arrays with integer
 * handles, a hash index keyed like the kernel's — (protocol, client address, client port), templates
 * by (protocol, masked client, 0) — and the in / out / template lookups. No object per connection;
 * lookups allocate nothing. Binding, state and expiry policy live in `Ipvs`; this is storage.
 */
import { AF_INET6 } from './addr.js';
import { CONN_F_FWD_MASK, CONN_F_NO_CPORT, CONN_F_TEMPLATE, FWD_MASQ } from './constants.js';

/** Handle value meaning "no connection". */
export const NO_CONN = -1;

/** Storage and index for every connection and persistence template. */
export class ConnTable {
  readonly capacity: number;
  readonly af: Uint8Array;
  /** Destination family (differs from af only for mixed-family tunnels). */
  readonly daf: Uint8Array;
  readonly protocol: Uint8Array;
  readonly state: Uint8Array;
  readonly oldState: Uint8Array;
  readonly flags: Uint32Array;
  /** Four words per handle: caddr[h*4 .. h*4+3]. */
  readonly caddr: Uint32Array;
  readonly vaddr: Uint32Array;
  readonly daddr: Uint32Array;
  readonly cport: Uint16Array;
  readonly vport: Uint16Array;
  readonly dport: Uint16Array;
  readonly fwmark: Uint32Array;
  /** Current idle timeout, ms. */
  readonly timeout: Uint32Array;
  /** Controlling connection (template or FTP control), or -1. */
  readonly control: Int32Array;
  /** Number of connections this one controls. */
  readonly nControl: Int32Array;
  /** Bound destination id, or -1. */
  readonly dest: Int32Array;
  readonly inPkts: Uint32Array;
  /** In-flight users (a data plane holding the handle during one event). */
  readonly refcnt: Uint16Array;
  /** Hash chain link; also the free-list link for released handles. */
  readonly #hnext: Int32Array;
  readonly #buckets: Int32Array;
  readonly #bmask: number;
  readonly #seed: number;
  /** Handles never used yet start here. */
  #hwm = 0;
  #freeHead = NO_CONN;
  #count = 0;
  #noCport = 0;

  constructor(capacity: number, seed: number) {
    this.capacity = capacity;
    this.af = new Uint8Array(capacity);
    this.daf = new Uint8Array(capacity);
    this.protocol = new Uint8Array(capacity);
    this.state = new Uint8Array(capacity);
    this.oldState = new Uint8Array(capacity);
    this.flags = new Uint32Array(capacity);
    this.caddr = new Uint32Array(capacity * 4);
    this.vaddr = new Uint32Array(capacity * 4);
    this.daddr = new Uint32Array(capacity * 4);
    this.cport = new Uint16Array(capacity);
    this.vport = new Uint16Array(capacity);
    this.dport = new Uint16Array(capacity);
    this.fwmark = new Uint32Array(capacity);
    this.timeout = new Uint32Array(capacity);
    this.control = new Int32Array(capacity);
    this.nControl = new Int32Array(capacity);
    this.dest = new Int32Array(capacity);
    this.inPkts = new Uint32Array(capacity);
    this.refcnt = new Uint16Array(capacity);
    this.#hnext = new Int32Array(capacity);
    let nb = 1;
    while (nb < capacity) nb <<= 1;
    this.#buckets = new Int32Array(nb).fill(NO_CONN);
    this.#bmask = nb - 1;
    this.#seed = seed >>> 0;
  }

  /** Live connections (hashed or not). */
  get count(): number {
    return this.#count;
  }

  /** Hashed NO_CPORT connections. */
  get noCportCount(): number {
    return this.#noCport;
  }

  /** Takes a free handle, or NO_CONN when the table is full. Fields are reset. */
  alloc(): number {
    let h: number;
    if (this.#freeHead !== NO_CONN) {
      h = this.#freeHead;
      this.#freeHead = this.#hnext[h]!;
    } else if (this.#hwm < this.capacity) h = this.#hwm++;
    else return NO_CONN;
    this.#hnext[h] = NO_CONN;
    this.flags[h] = 0;
    this.state[h] = 0;
    this.oldState[h] = 0;
    this.control[h] = NO_CONN;
    this.nControl[h] = 0;
    this.dest[h] = -1;
    this.inPkts[h] = 0;
    this.refcnt[h] = 0;
    this.fwmark[h] = 0;
    this.#count++;
    return h;
  }

  /** Returns a handle to the free list (it must be unhashed). */
  release(h: number): void {
    this.#hnext[h] = this.#freeHead;
    this.#freeHead = h;
    this.#count--;
  }

  /** The hash of (protocol, client address, client port). */
  #hash(proto: number, af: number, a: ArrayLike<number>, ao: number, port: number): number {
    let k = a[ao]!;
    if (af === AF_INET6) k = Math.imul(k ^ a[ao + 1]!, 0x9e3779b1) ^ a[ao + 2]! ^ Math.imul(a[ao + 3]!, 0x85ebca6b);
    let x = (k ^ this.#seed) >>> 0;
    x = Math.imul(x ^ ((port << 8) | proto) ^ (x >>> 16), 0x7feb352d);
    x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
    return (x ^ (x >>> 16)) & this.#bmask;
  }

  /** Inserts `h` into the index under its (protocol, caddr, cport). */
  hash(h: number): void {
    const b = this.#hash(this.protocol[h]!, this.af[h]!, this.caddr, h * 4, this.cport[h]!);
    this.#hnext[h] = this.#buckets[b]!;
    this.#buckets[b] = h;
    if (this.flags[h]! & CONN_F_NO_CPORT) this.#noCport++;
  }

  /** Removes `h` from the index. Returns false when it was not there. */
  unhash(h: number): boolean {
    const b = this.#hash(this.protocol[h]!, this.af[h]!, this.caddr, h * 4, this.cport[h]!);
    let p = NO_CONN;
    for (let x = this.#buckets[b]!; x !== NO_CONN; p = x, x = this.#hnext[x]!) {
      if (x !== h) continue;
      if (p === NO_CONN) this.#buckets[b] = this.#hnext[x]!;
      else this.#hnext[p] = this.#hnext[x]!;
      this.#hnext[h] = NO_CONN;
      if (this.flags[h]! & CONN_F_NO_CPORT) this.#noCport--;
      return true;
    }
    return false;
  }

  #addrEq(af: number, t: Uint32Array, h: number, a: ArrayLike<number>, ao: number): boolean {
    const o = h * 4;
    if (t[o] !== a[ao]) return false;
    return af !== AF_INET6 || (t[o + 1] === a[ao + 1] && t[o + 2] === a[ao + 2] && t[o + 3] === a[ao + 3]);
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
    const h = this.#inGet(af, proto, caddr, cport, vaddr, vport);
    if (h !== NO_CONN || this.#noCport === 0 || cport === 0) return h;
    return this.#inGet(af, proto, caddr, 0, vaddr, vport);
  }

  #inGet(
    af: number,
    proto: number,
    caddr: ArrayLike<number>,
    cport: number,
    vaddr: ArrayLike<number>,
    vport: number,
  ): number {
    const noCport = cport === 0;
    for (let x = this.#buckets[this.#hash(proto, af, caddr, 0, cport)]!; x !== NO_CONN; x = this.#hnext[x]!) {
      if (
        this.cport[x] === cport &&
        this.vport[x] === vport &&
        this.af[x] === af &&
        this.protocol[x] === proto &&
        noCport === ((this.flags[x]! & CONN_F_NO_CPORT) !== 0) &&
        this.#addrEq(af, this.caddr, x, caddr, 0) &&
        this.#addrEq(af, this.vaddr, x, vaddr, 0)
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
    for (let x = this.#buckets[this.#hash(proto, af, daddr, 0, dport)]!; x !== NO_CONN; x = this.#hnext[x]!) {
      if (
        this.cport[x] !== dport ||
        this.af[x] !== af ||
        this.protocol[x] !== proto ||
        this.flags[x]! & CONN_F_TEMPLATE ||
        !this.#addrEq(af, this.caddr, x, daddr, 0)
      ) {
        continue;
      }
      if ((this.flags[x]! & CONN_F_FWD_MASK) === FWD_MASQ) {
        if (this.dport[x] === sport && this.#addrEq(this.daf[x]!, this.daddr, x, saddr, 0)) return x;
      } else if (this.vport[x] === sport && this.#addrEq(af, this.vaddr, x, saddr, 0)) return x;
    }
    return NO_CONN;
  }

  /**
   * The template lookup (spec §1.4): af, masked client, cport, vport, protocol and the TEMPLATE
   * flag; the virtual address compares only its first word when protocol is 0 (fwmark templates).
   * `peData` (persistence-engine data) must match the template's when either has some.
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
    for (let x = this.#buckets[this.#hash(proto, af, caddr, 0, cport)]!; x !== NO_CONN; x = this.#hnext[x]!) {
      if (
        !(this.flags[x]! & CONN_F_TEMPLATE) ||
        this.af[x] !== af ||
        this.protocol[x] !== proto ||
        this.cport[x] !== cport ||
        this.vport[x] !== vport ||
        !this.#addrEq(af, this.caddr, x, caddr, 0)
      ) {
        continue;
      }
      const vOk = proto === 0 ? this.vaddr[x * 4] === vaddr[0] : this.#addrEq(af, this.vaddr, x, vaddr, 0);
      if (!vOk) continue;
      if (peMatch !== null ? peMatch(x) : true) return x;
    }
    return NO_CONN;
  }

  /** Calls `fn` for every hashed handle (order: bucket order). `fn` must not unhash others. */
  forEach(fn: (h: number) => void): void {
    const b = this.#buckets;
    for (let i = 0; i < b.length; i++) {
      for (let x = b[i]!; x !== NO_CONN; ) {
        const n = this.#hnext[x]!;
        fn(x);
        x = n;
      }
    }
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
    for (let x = this.#buckets[i & this.#bmask]!; x !== NO_CONN; x = this.#hnext[x]!) out.push(x);
    return out;
  }

  /** Number of index buckets. */
  get bucketCount(): number {
    return this.#bmask + 1;
  }
}
