/**
 * Reassembly, as the host does before IPVS sees a packet (spec §5.1: "IPv4 packets reaching
 * LOCAL_IN are already reassembled; IPv6 services enable IPv6 defragmentation"; §5.3: the `out`
 * handler gathers IPv4 fragments of TCP, UDP, SCTP and ICMP first). The rules are ip_defrag's
 * and, for IPv6, nf_ct_frag6's (the defragmentation IPVS enables):
 *
 * - A datagram is keyed by (source, destination, identification, protocol (IPv4), user);
 *   LOCAL_IN and FORWARD are separate users, as the kernel's LOCAL_DELIVER and VS_FWD are.
 * - A fragment that lies inside what is already held is a duplicate: dropped, the rest kept. One
 *   that overlaps held data otherwise is an attack (RFC 5722, applied to IPv4 since Linux 4.19):
 *   the whole datagram is dropped. So is one whose length contradicts the last fragment's, an
 *   empty one, a datagram that would exceed 65535 bytes (IPv6: of payload), and one mixing
 *   ECN-capable with not-ECN-capable fragments. A non-last fragment's data is trimmed to a
 *   multiple of 8 (IPv6: such a fragment drops the datagram and goes on alone, `REASM_PASS`, as
 *   nf_ct_frag6_queue's -EPROTO lets it; the host's own reassembly answers it with a parameter
 *   problem).
 * - The datagram is whole when the first and last fragments and every byte between are in. It is
 *   built on the first fragment's link-layer and IP headers (IPv4: options included; total
 *   length set, offset and MF cleared, DF set when every fragment had DF; IPv6: the
 *   unfragmentable part, the fragment header removed, payload length set), with CE when any
 *   fragment had it (the others being ECN-capable).
 * - A datagram not whole `IPFRAG_TIME_MS` (IPv6: `IP6FRAG_TIME_MS`) after its first fragment
 *   came is dropped; when the first fragment was in, the sender gets ICMP time exceeded,
 *   fragment reassembly time exceeded: for IPv4 LOCAL_IN (ip_expire; none for the IPVS user in
 *   transit), for IPv6 always (ip6frag_expire_frag_queue, nf_ct_frag6's too).
 * - While the held fragments' memory is above `IPFRAG_HIGH_THRESH` every fragment is dropped.
 *
 * The whole datagram remembers its largest fragment and the fragments' boundaries: on output
 * the kernel fragments a reassembled packet again at that size at most (frag_max_size in
 * ip_do_fragment / ip6_fragment), along the original boundaries when they still fit the MTU (the
 * frag_list path). Left out: ipfrag_max_dist (restarting a datagram after 64 other fragments
 * from its source).
 */
import { AF_INET6 } from '../../core/addr.js';
import { ipv4HeaderChecksum } from '../../packet/checksum.js';
import type { PacketView } from '../../packet/view.js';
import { copyBytes } from './bytes.js';
import { R } from './counters.js';
import { nextHeaderAt } from './frag.js';
import { Ipv4Options } from './ipopt.js';
import type { Iface } from './net.js';

/** ipfrag_time: how long a datagram may take to arrive whole, ms. */
export const IPFRAG_TIME_MS = 30_000;
/** IPv6: IPV6_FRAG_TIMEOUT (ip6frag_time, and nf_conntrack_frag6_timeout), ms. */
export const IP6FRAG_TIME_MS = 60_000;
/** ipfrag_high_thresh: bytes of held fragments above which every fragment is dropped. */
export const IPFRAG_HIGH_THRESH = 4 * 1024 * 1024;
/**
 * What a held fragment is charged beyond its frame (the kernel charges an skb's truesize); a
 * datagram is charged its buffer besides.
 */
const FRAG_OVERHEAD = 256;
/** The furthest a fragment's data can end: offset 65528 plus 65515 bytes, rounded up. */
const MAX_END = 131_072;
/** Room for the first fragment's link-layer header (Ethernet and VLAN tags). */
const L2_ROOM = 64;

/** Reassembly users: the host's local delivery and IPVS on the forwarding path. */
export const USER_LOCAL = 0;
export const USER_FWD = 1;

/** `add` results besides an R.* reason for a dropped fragment. */
export const REASM_HELD = -1;
export const REASM_DONE = -2;
/** IPv6: a non-last fragment not a multiple of 8 long; its datagram dropped, it goes on alone. */
export const REASM_PASS = -3;

/** One datagram being reassembled. */
class Datagram<I> {
  readonly af: number;
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  readonly id: number;
  readonly proto: number;
  readonly user: number;
  readonly expires: number;
  /** Data bytes by offset. */
  data = new Uint8Array(2048);
  /** Length of the datagram's data once known (the last fragment's end), else the largest end. */
  len = 0;
  /** Data bytes held. */
  meat = 0;
  firstIn = false;
  lastIn = false;
  /** Runs of contiguous held data, [start, end) pairs sorted by start (inet_frag's fragruns). */
  readonly runs: number[] = [];
  /** Every held fragment's [start, end), sorted by start. */
  readonly frags: number[] = [];
  /** Largest fragment (IP total length), and largest with DF set. */
  maxSize = 0;
  maxDfSize = 0;
  /** ECN codepoints seen (one bit each). */
  ecn = 0;
  /** Memory charged. */
  mem = 0;
  /** What the first fragment's receive found in its IPv4 options (null: none). */
  opts: Ipv4Options | null = null;
  /**
   * The first fragment's link-layer header and IP header (IPv6: the unfragmentable part, up to
   * the fragment header), and its IP total length.
   */
  readonly head = new Uint8Array(L2_ROOM + 512);
  headL2 = 0;
  headIhl = 0;
  headTotal = 0;
  /** IPv6: the fragment header's next header, and where the header before it keeps its own. */
  fragNh = 0;
  nhAt = 6;
  /** Interface the latest fragment came in on. */
  ifc: I;
  /** Index in the reassembler's list, and the key's hash. */
  at = -1;
  readonly hash: number;

  constructor(v: PacketView, user: number, ifc: I, now: number) {
    this.af = v.af;
    this.src.set(v.src);
    this.dst.set(v.dst);
    this.id = v.ipId;
    // an IPv6 datagram is keyed by addresses and identification only
    this.proto = v.af === AF_INET6 ? 0 : v.protocol;
    this.user = user;
    this.expires = now + (v.af === AF_INET6 ? IP6FRAG_TIME_MS : IPFRAG_TIME_MS);
    this.ifc = ifc;
    this.hash = keyHash(v, user);
  }

  is(v: PacketView, user: number): boolean {
    const s = this.src;
    const d = this.dst;
    const vs = v.src;
    const vd = v.dst;
    return (
      this.af === v.af &&
      s[0] === vs[0] &&
      d[0] === vd[0] &&
      s[1] === vs[1] &&
      d[1] === vd[1] &&
      s[2] === vs[2] &&
      d[2] === vd[2] &&
      s[3] === vs[3] &&
      d[3] === vd[3] &&
      this.id === v.ipId &&
      this.proto === (v.af === AF_INET6 ? 0 : v.protocol) &&
      this.user === user
    );
  }

  /** Makes room for data up to `end`. */
  reserve(end: number): void {
    if (end <= this.data.length) return;
    let n = this.data.length;
    while (n < end) n *= 2;
    // an IPv4 fragment may reach past 65535 bytes (offset up to 65528 plus up to 65515 bytes):
    // it is held like any other and its datagram fails when whole (ip_frag_reasm, out_oversize)
    const d = new Uint8Array(Math.min(n, MAX_END));
    d.set(this.data);
    this.data = d;
  }

  /**
   * Files [offset, end) (inet_frag_queue_insert): 0 when inserted, 1 for a duplicate (inside a
   * held run), 2 for an overlap.
   */
  insert(offset: number, end: number): number {
    const runs = this.runs;
    const n = runs.length;
    if (n === 0) runs.push(offset, end);
    else if (runs[n - 1]! < end) {
      // the common case: it goes after everything held
      const tail = runs[n - 1]!;
      if (offset < tail) return 2;
      if (offset === tail) runs[n - 1] = end;
      else runs.push(offset, end);
    } else {
      let at = n;
      for (let i = 0; i < n; i += 2) {
        const s = runs[i]!;
        const e = runs[i + 1]!;
        if (end <= s) {
          at = i;
          break;
        }
        if (offset >= e) continue;
        return offset >= s && end <= e ? 1 : 2;
      }
      runs.splice(at, 0, offset, end);
    }
    const f = this.frags;
    let i = f.length;
    while (i > 0 && f[i - 2]! > offset) i -= 2;
    f.splice(i, 0, offset, end);
    return 0;
  }
}

function keyHash(v: PacketView, user: number): number {
  let x = Math.imul(v.src[0]! ^ v.src[3]! ^ (v.ipId << 8) ^ user, 0x9e3779b1);
  x ^= Math.imul(v.dst[0]! ^ v.dst[3]! ^ (v.af === AF_INET6 ? 0 : v.protocol), 0x85ebca6b);
  return (x ^ (x >>> 15)) | 0;
}

/** ip_frag_ecn_table: the ECN codepoint to set on the whole datagram, or -1 to drop it. */
function ecnOf(seen: number): number {
  const NOT_ECT = 1;
  const CE = 8;
  if (seen & NOT_ECT) return seen === NOT_ECT ? 0 : -1;
  return seen & CE && seen & 6 ? 3 : 0;
}

/** Reassembly counters (the kernel's Ip: Reasm* SNMP counters). */
export interface ReasmStats {
  /** Fragments received for reassembly. */
  reqds: number;
  /** Datagrams reassembled. */
  oks: number;
  /** Datagrams (or fragments) given up: overlaps, bad lengths, timeouts, memory. */
  fails: number;
  /** Datagrams dropped for an overlapping fragment. */
  overlaps: number;
  /** Datagrams that timed out. */
  timeouts: number;
}

/**
 * Held fragments, by datagram. `I`: what a fragment arrived on (given back on a timeout).
 */
export class Reasm<I = Iface> {
  readonly #held: Datagram<I>[] = [];
  readonly #byKey = new Map<number, Datagram<I>[]>();
  #mem = 0;
  readonly #highThresh: number;
  readonly stats: ReasmStats = { reqds: 0, oks: 0, fails: 0, overlaps: 0, timeouts: 0 };
  /** The last whole datagram (or timed-out first fragment) as a frame: link layer and IP. */
  readonly frame = new Uint8Array(L2_ROOM + 65536);
  frameLen = 0;
  /** The whole datagram's largest fragment (IP total length): the size to fragment it at. */
  maxSize = 0;
  /** Its fragments' data boundaries: [start, end) pairs in offset order. */
  readonly geometry: number[] = [];
  /** Its header's length (IPv6: the unfragmentable part), and its identification. */
  unfrag = 0;
  id = 0;
  /**
   * What its first fragment's receive found in the IPv4 options, which the whole datagram keeps
   * (inet_frag_reasm_prepare morphs the head's skb, control block included); null: none.
   */
  opts: Ipv4Options | null = null;

  constructor(highThresh = IPFRAG_HIGH_THRESH) {
    this.#highThresh = highThresh;
  }

  /** Datagrams held. */
  get size(): number {
    return this.#held.length;
  }

  /** Bytes of memory charged to held fragments. */
  get memory(): number {
    return this.#mem;
  }

  /**
   * Takes the IP fragment in `v` (received on `ifc`) for `user`; `opts`: what its receive found
   * in its IPv4 options. Returns REASM_HELD when it is kept, REASM_DONE when it completed its
   * datagram (now in `frame`, the first fragment's options in `opts`), REASM_PASS, or the R.*
   * reason it was dropped for.
   */
  add(v: PacketView, user: number, ifc: I, now: number, opts: Ipv4Options | null = null): number {
    this.stats.reqds++;
    // inet_frag_find refuses while memory is above the threshold
    if (this.#mem > this.#highThresh) {
      this.stats.fails++;
      return R.FRAG_MEM;
    }
    let q: Datagram<I> | null = null;
    const chain = this.#byKey.get(keyHash(v, user));
    if (chain !== undefined)
      for (const d of chain)
        if (d.is(v, user) && d.expires > now) {
          q = d;
          break;
        }
    if (q === null) {
      q = new Datagram(v, user, ifc, now);
      q.at = this.#held.length;
      this.#held.push(q);
      const c = this.#byKey.get(q.hash);
      if (c === undefined) this.#byKey.set(q.hash, [q]);
      else c.push(q);
    }
    const qi = q.at;
    const buf = v.buf;
    const v6 = v.af === AF_INET6;
    // IPv4: the header; IPv6: the unfragmentable part, then the fragment header
    const ihl = v6 ? v.fragHeaderOffset - v.l3Offset : v.ipHeaderLength;
    const dataAt = v6 ? v.fragHeaderOffset + 8 : v.l3Offset + ihl;
    const offset = v.fragOffset;
    let end = offset + (v.ipEnd - dataAt);
    if (v6 && end > 65535) return this.#fail(qi, R.FRAG_BAD);
    if (!v.mf) {
      if (end < q.len || (q.lastIn && end !== q.len)) return this.#fail(qi, R.FRAG_BAD);
      q.lastIn = true;
      q.len = end;
    } else {
      // IPv4 trims a non-last fragment to a multiple of 8; IPv6 drops the datagram
      if (end & 7) {
        if (v6) {
          this.#fail(qi, R.FRAG_BAD);
          return REASM_PASS;
        }
        end &= ~7;
      }
      if (end > q.len) {
        if (q.lastIn) return this.#fail(qi, R.FRAG_BAD);
        q.len = end;
      }
    }
    if (end === offset) return this.#fail(qi, R.FRAG_BAD);
    const ins = q.insert(offset, end);
    if (ins === 1) return R.FRAG_DUP;
    if (ins === 2) {
      this.stats.overlaps++;
      return this.#fail(qi, R.FRAG_OVERLAP);
    }
    const room = q.meat === 0 ? 0 : q.data.length;
    q.reserve(end);
    copyBytes(q.data, offset, buf, dataAt, end - offset);
    q.ifc = ifc;
    q.meat += end - offset;
    // the frame as the kernel charges it, and what the datagram's buffer grew by
    const charge =
      v.ipEnd - (v.l2Offset >= 0 ? v.l2Offset : v.l3Offset) + FRAG_OVERHEAD + q.data.length - room;
    q.mem += charge;
    this.#mem += charge;
    q.ecn |= 1 << (v.tos & 3);
    if (offset === 0 && ihl <= 512) {
      q.firstIn = true;
      const l2 = v.l2Offset >= 0 ? Math.min(v.l3Offset - v.l2Offset, L2_ROOM) : 0;
      copyBytes(q.head, 0, buf, v.l3Offset - l2, l2 + ihl);
      q.headL2 = l2;
      q.headIhl = ihl;
      q.headTotal = ihl + end - offset;
      if (opts !== null) (q.opts ??= new Ipv4Options()).copyFrom(opts);
      else q.opts = null;
      if (v6) {
        q.fragNh = buf[v.fragHeaderOffset]!;
        q.nhAt = nextHeaderAt(buf, v.l3Offset, ihl);
      }
    }
    // the largest fragment as it came (IPv6: its fragment header included)
    const size = v6 ? v.ipEnd - v.l3Offset : ihl + end - offset;
    if (size > q.maxSize) q.maxSize = size;
    if (v.df && size > q.maxDfSize) q.maxDfSize = size;
    if (!(q.firstIn && q.lastIn && q.meat === q.len)) return REASM_HELD;
    return this.#whole(qi);
  }

  /** Builds the datagram of `held[qi]` into `frame` (ip_frag_reasm). */
  #whole(qi: number): number {
    const q = this.#held[qi]!;
    this.#remove(qi);
    const ecn = ecnOf(q.ecn);
    const v6 = q.af === AF_INET6;
    if (ecn < 0 || q.headIhl + q.len > (v6 ? 65535 + 40 : 65535)) {
      this.stats.fails++;
      return R.FRAG_BAD;
    }
    const f = this.frame;
    const l2 = q.headL2;
    const ip = l2;
    const total = q.headIhl + q.len;
    copyBytes(f, 0, q.head, 0, l2 + q.headIhl);
    copyBytes(f, ip + q.headIhl, q.data, 0, q.len);
    this.frameLen = l2 + total;
    this.maxSize = Math.max(q.maxSize, q.maxDfSize);
    this.opts = q.opts;
    this.unfrag = q.headIhl;
    this.id = q.id;
    this.geometry.length = 0;
    for (const x of q.frags) this.geometry.push(x);
    this.stats.oks++;
    if (v6) {
      // the fragment header goes: the header before it names what followed it
      f[ip + q.nhAt] = q.fragNh;
      f[ip + 4] = (total - 40) >>> 8;
      f[ip + 5] = total - 40;
      f[ip + 1] = f[ip + 1]! | (ecn << 4);
      return REASM_DONE;
    }
    f[ip + 1] = f[ip + 1]! | ecn;
    f[ip + 2] = total >>> 8;
    f[ip + 3] = total;
    f[ip + 6] = q.maxDfSize === q.maxSize ? 0x40 : 0;
    f[ip + 7] = 0;
    f[ip + 10] = 0;
    f[ip + 11] = 0;
    const c = ipv4HeaderChecksum(f, ip, q.headIhl);
    f[ip + 10] = c >>> 8;
    f[ip + 11] = c;
    return REASM_DONE;
  }

  /**
   * Drops every datagram due at `now`. For each one whose first fragment was in (IPv4: of
   * LOCAL_IN), `onTimeout` gets that fragment rebuilt in `frame` (IPv6: its fragment header
   * too) and the interface of the latest fragment.
   */
  expire(now: number, onTimeout: (ifc: I) => void): void {
    const held = this.#held;
    for (let i = held.length - 1; i >= 0; i--) {
      const q = held[i]!;
      if (q.expires > now) continue;
      this.#remove(i);
      this.stats.fails++;
      this.stats.timeouts++;
      const v6 = q.af === AF_INET6;
      if (!q.firstIn || (!v6 && q.user !== USER_LOCAL)) continue;
      const f = this.frame;
      const at = q.headL2 + q.headIhl;
      copyBytes(f, 0, q.head, 0, at);
      let d = at;
      if (v6) {
        // the fragment header as it came: offset 0, more to come
        f[d] = q.fragNh;
        f[d + 1] = 0;
        f[d + 2] = 0;
        f[d + 3] = 1;
        f[d + 4] = q.id >>> 24;
        f[d + 5] = q.id >>> 16;
        f[d + 6] = q.id >>> 8;
        f[d + 7] = q.id;
        d += 8;
      }
      copyBytes(f, d, q.data, 0, q.headTotal - q.headIhl);
      this.frameLen = d + q.headTotal - q.headIhl;
      onTimeout(q.ifc);
    }
  }

  /** Forgets everything held. */
  clear(): void {
    this.#held.length = 0;
    this.#byKey.clear();
    this.#mem = 0;
  }

  #fail(qi: number, reason: number): number {
    this.#remove(qi);
    this.stats.fails++;
    return reason;
  }

  #remove(qi: number): void {
    const held = this.#held;
    const q = held[qi]!;
    this.#mem -= q.mem;
    const last = held.pop()!;
    if (last !== q) {
      held[qi] = last;
      last.at = qi;
    }
    const chain = this.#byKey.get(q.hash)!;
    if (chain.length === 1) this.#byKey.delete(q.hash);
    else chain.splice(chain.indexOf(q), 1);
  }
}
