/**
 * The real-server side of IPVS tunnelling (spec §5.5) for hosts whose kernel has no tunnel modules:
 * frames received on an interface (an AF_PACKET tap, so the kernel still sees every frame) are
 * classified; IPIP / IPv6-in-IP, GUE (on the configured UDP port) and GRE packets addressed to one
 * of the interface's addresses lose their outer headers, and the inner IP packet is written as-is to
 * a TUN device (IFF_TUN, IFF_NO_PI), where the local stack receives it as if it came off a wire.
 * Everything else is only counted: the kernel handles it as it would anyway.
 *
 * What the kernel's receivers do and this does too: outer IPv4 header checksum, GRE checksum and
 * GUE UDP checksum verified (unless the frame is marked as not yet checksummed or already verified);
 * the inner IP version must match the outer protocol (4 → IPv4, 41 → IPv6; GRE 0x0800 / 0x86DD);
 * GUE flags other than the private-flags word, and private flags other than remote checksum
 * offload, drop the packet (`validate_gue_flags`), as do IPv4 GRE headers of a version or reserved
 * bits above 1 (`gre_rcv`); GUE remote checksum offload completes the inner checksum
 * (`skb_remcsum_process`); ECN is decapsulated as RFC 6040 / `INET_ECN_decapsulate` says (outer CE
 * marks an ECN-capable inner packet CE and drops a not-ECT one; outer ECT(1) turns an ECT(0) inner
 * packet ECT(1)). Outer fragments of a tunnel type taken are reassembled first, as ip_local_deliver
 * / ipv6_frag_rcv do before any tunnel receiver (../dataplane/packet/reasm.ts: the kernel's rules,
 * 30 s, 4 MiB held at most). Apart from reassembly the per-frame path allocates nothing.
 */
import {
  PKTTYPE,
  TP_STATUS,
  type FrameBatch,
  type FrameHandler,
  type FrameIO,
} from '../dataplane/io/index.js';
import {
  ETH_P,
  IPPROTO,
  PacketView,
  TUNNEL,
  csumFinish,
  csumFold,
  csumPartial,
  csumReplace16,
  decodeEthernet,
  decodeGue,
  decodeIp,
  ipv4HeaderChecksumOk,
  l4ChecksumOk,
} from '../packet/index.js';
import { AF_INET, AF_INET6, type IpAddr } from '../core/addr.js';
import { REASM_DONE, Reasm, USER_LOCAL } from '../dataplane/packet/reasm.js';

/** Tunnel types the real server can take apart (the names of `ipvsadm --tun-type`). */
export const DECAP_TYPES = ['ipip', 'gue', 'gre'] as const;
export type DecapType = (typeof DECAP_TYPES)[number];

/** What happened to a frame. Index into the counters; names in OUTCOME_NAMES. */
export const OUTCOME = {
  /** Outer headers stripped, inner packet handed to the TUN device. */
  DECAPSULATED: 0,
  /** Not addressed to one of the interface's addresses (or not received for this host, or not IP). */
  NOT_FOR_US: 1,
  /** For us, but not a tunnel packet: the kernel's business. */
  NOT_TUNNEL: 2,
  /** A tunnel packet of a type this real server was not told to decapsulate. */
  WRONG_TYPE: 3,
  /** A UDP datagram that looks like GUE on a port other than `--gue-port` (misconfiguration?). */
  OTHER_PORT: 4,
  /** Truncated or inconsistent headers (outer, tunnel or inner). */
  MALFORMED: 5,
  /** Outer IPv4 header, GRE or GUE UDP checksum wrong. */
  BAD_CHECKSUM: 6,
  /** An outer fragment taken by reassembly (held, or refused by its rules). */
  FRAGMENT: 7,
  /** A tunnel we know carrying something else (GRE Ethernet bridging, GUE control, GRE v1...). */
  UNSUPPORTED: 8,
  /** Outer CE over a not-ECT inner packet: dropped, as RFC 6040 says. */
  ECN_DROP: 9,
  /** The TUN device took no more frames. */
  TX_DROPPED: 10,
} as const;

/** Counter names, by OUTCOME value (camelCase; `_total` snake_case names derive from them). */
export const OUTCOME_NAMES = [
  'decapsulated',
  'notForUs',
  'notTunnel',
  'wrongType',
  'otherPort',
  'malformed',
  'badChecksum',
  'fragment',
  'unsupported',
  'ecnDrop',
  'txDropped',
] as const;
export type OutcomeName = (typeof OUTCOME_NAMES)[number];

/** Counters of a Decapsulator: one per outcome, plus the inner bytes handed to the TUN device. */
export type DecapCounters = Record<OutcomeName, number> & { decapsulatedBytes: number };

/** How a Decapsulator classifies frames. */
export interface DecapOptions {
  /** Tunnel types to decapsulate (at least one). */
  types: readonly DecapType[];
  /** UDP port GUE arrives on (the director's `--tun-port`); required when `types` has 'gue'. */
  guePort?: number;
  /** Outer destinations accepted: the receiving interface's addresses. */
  addresses?: readonly IpAddr[];
  /** What received frames start with: an Ethernet header (default) or an IP header. */
  linkType?: 'ethernet' | 'ip';
}

const T_IPIP = 1;
const T_GUE = 2;
const T_GRE = 4;
const CSUM_SKIP = TP_STATUS.CSUMNOTREADY | TP_STATUS.CSUM_VALID;
/** GUE flags (include/net/gue.h): the private-flags word; in it, remote checksum offload. */
const GUE_FLAG_PRIV = 0x0001;
const GUE_PFLAG_REMCSUM = 0x80000000;

/**
 * Throws a TypeError / RangeError when `o` names no tunnel type, an unknown one, or GUE without a
 * port in 1..65535; returns the type bit mask.
 */
export function validateDecapOptions(o: DecapOptions): number {
  if (o.types.length === 0) throw new TypeError('no tunnel type given');
  let t = 0;
  for (const ty of o.types) {
    if (ty === 'ipip') t |= T_IPIP;
    else if (ty === 'gue') t |= T_GUE;
    else if (ty === 'gre') t |= T_GRE;
    else throw new TypeError(`unknown tunnel type '${String(ty)}' (ipip, gue or gre)`);
  }
  const port = o.guePort ?? -1;
  if (t & T_GUE && !(Number.isInteger(port) && port >= 1 && port <= 65535))
    throw new RangeError('GUE needs its UDP port (--gue-port 1..65535)');
  return t;
}

/**
 * Classifies received frames and writes the inner packets of the tunnels it decapsulates to `out`
 * (a TUN device: frames are IP packets). Call `handleBatch` from the receive handler (or `attach`
 * it to a FrameIO); `handleFrame` does one frame and leaves the commit to the caller.
 */
export class Decapsulator {
  /** Frames by outcome (indexed by OUTCOME). */
  readonly count = new Float64Array(OUTCOME_NAMES.length);
  /** Inner bytes handed to the TUN device. */
  decapsulatedBytes = 0;
  readonly #out: FrameIO;
  readonly #view = new PacketView();
  readonly #types: number;
  readonly #guePort: number;
  readonly #ip: boolean;
  #v4 = new Uint32Array(0);
  #v6 = new Uint32Array(0);
  /** Inner packets staged on the TUN device since the last commit. */
  #staged = 0;
  /** The last UDP port GUE-looking traffic arrived on outside `guePort` (for a log hint). */
  otherPortSeen = -1;
  /** Outer fragments being reassembled. */
  readonly reasm = new Reasm<null>();
  #nextExpire = 0;

  constructor(out: FrameIO, opts: DecapOptions) {
    this.#types = validateDecapOptions(opts);
    this.#guePort = opts.guePort ?? -1;
    this.#ip = opts.linkType === 'ip';
    this.#out = out;
    this.setAddresses(opts.addresses ?? []);
  }

  /** Replaces the accepted outer destinations (the interface's addresses change at run time). */
  setAddresses(addrs: readonly IpAddr[]): void {
    const v4 = addrs.filter((a) => a.af === AF_INET);
    const v6 = addrs.filter((a) => a.af === AF_INET6);
    const w4 = new Uint32Array(v4.length);
    v4.forEach((a, i) => (w4[i] = a.words[0]!));
    const w6 = new Uint32Array(v6.length * 4);
    v6.forEach((a, i) => w6.set(a.words.subarray(0, 4), i * 4));
    this.#v4 = w4;
    this.#v6 = w6;
  }

  /** The counters by name. */
  counters(): DecapCounters {
    const r = {} as DecapCounters;
    OUTCOME_NAMES.forEach((n, i) => (r[n] = this.count[i]!));
    r.decapsulatedBytes = this.decapsulatedBytes;
    return r;
  }

  /** A receive handler that classifies every frame of a batch and commits once. */
  readonly handleBatch: FrameHandler = (b: FrameBatch): void => {
    const data = b.data;
    if (this.reasm.size > 0) {
      // datagrams past their 30 s are dropped once a second at most, not per batch
      const now = performance.now();
      if (now >= this.#nextExpire) {
        this.#nextExpire = now + 1000;
        this.reasm.expire(now, () => {});
      }
    }
    for (let i = 0; i < b.count; i++) {
      const o = this.handleFrame(data, b.offset(i), b.length(i), b.status(i), b.pktType(i));
      this.count[o]!++;
    }
    this.commit();
  };

  /** Receives from `rx` into this decapsulator. */
  attach(rx: FrameIO): void {
    rx.onFrames(this.handleBatch);
  }

  /** Hands the staged inner packets to the TUN device; returns how many it took. */
  commit(): number {
    const staged = this.#staged;
    if (staged === 0) return 0;
    this.#staged = 0;
    let written = 0;
    try {
      written = this.#out.txCommit();
    } catch {
      written = 0;
    }
    if (written < staged) {
      this.count[OUTCOME.DECAPSULATED]! -= staged - written;
      this.count[OUTCOME.TX_DROPPED]! += staged - written;
    }
    return written;
  }

  /**
   * Classifies the frame `buf[off, off+len)` (tp_status flags `status`, sll_pkttype `pktType`) and,
   * when it is a tunnel packet for us, stages its inner packet on the TUN device (commit() sends).
   * Returns the OUTCOME; the caller counts it (handleBatch does).
   */
  handleFrame(buf: Uint8Array, off: number, len: number, status = 0, pktType = 0): number {
    if (pktType !== PKTTYPE.HOST) return OUTCOME.NOT_FOR_US;
    const v = this.#view;
    const rc = this.#ip ? decodeIp(v, buf, off, len) : decodeEthernet(v, buf, off, len);
    if (v.l3Offset < 0) {
      const ipType = v.etherType === ETH_P.IPV4 || v.etherType === ETH_P.IPV6;
      return rc !== 0 && (ipType || this.#ip) ? OUTCOME.MALFORMED : OUTCOME.NOT_FOR_US;
    }
    if (!this.#isLocal(v)) return OUTCOME.NOT_FOR_US;
    if (v.isFragment || v.fragHeaderOffset >= 0) {
      // the host reassembles what is addressed to it before any tunnel receiver sees it
      const t = this.#typeOf(v.protocol);
      if (t === 0) return OUTCOME.NOT_TUNNEL;
      if ((this.#types & t) === 0) return OUTCOME.WRONG_TYPE;
      if (this.reasm.add(v, USER_LOCAL, null, performance.now()) !== REASM_DONE)
        return OUTCOME.FRAGMENT;
      const f = this.reasm.frame;
      const n = this.reasm.frameLen;
      const rc2 = this.#ip ? decodeIp(v, f, 0, n) : decodeEthernet(v, f, 0, n);
      if (v.l3Offset < 0) return OUTCOME.MALFORMED;
      return this.#classify(v, f, rc2, 0);
    }
    return this.#classify(v, buf, rc, status);
  }

  /** The T_* bit of a tunnel's outer protocol, 0 when it is none. */
  #typeOf(proto: number): number {
    if (proto === IPPROTO.UDP) return T_GUE;
    if (proto === IPPROTO.IPIP || proto === IPPROTO.IPV6) return T_IPIP;
    return proto === IPPROTO.GRE ? T_GRE : 0;
  }

  /** Classifies the whole (not fragmented) IP packet decoded in `v` (decode result `rc`). */
  #classify(v: PacketView, buf: Uint8Array, rc: number, status: number): number {
    const proto = v.protocol;
    const types = this.#types;
    if (proto === IPPROTO.UDP) {
      if ((types & T_GUE) === 0) return OUTCOME.NOT_TUNNEL;
      if (rc !== 0) {
        // A broken UDP header: malformed if it was meant for the GUE port, else not ours to judge.
        const u = v.l3Offset + v.ipHeaderLength;
        const port = u + 4 <= v.ipEnd ? (buf[u + 2]! << 8) | buf[u + 3]! : -1;
        return port === this.#guePort ? OUTCOME.MALFORMED : OUTCOME.NOT_TUNNEL;
      }
      if (v.dstPort !== this.#guePort) {
        if (!looksLikeGue(buf, v.payloadOffset, v.payloadOffset + v.payloadLength))
          return OUTCOME.NOT_TUNNEL;
        this.otherPortSeen = v.dstPort;
        return OUTCOME.OTHER_PORT;
      }
      return this.#gue(v, buf, status);
    }
    if (proto === IPPROTO.IPIP || proto === IPPROTO.IPV6) {
      if (rc !== 0) return OUTCOME.MALFORMED;
      if ((types & T_IPIP) === 0) return OUTCOME.WRONG_TYPE;
      if (!this.#outerHeaderOk(v, buf)) return OUTCOME.BAD_CHECKSUM;
      return this.#inner(v, buf, v.l4Offset, v.ipEnd, proto === IPPROTO.IPIP ? 4 : 6, -1, -1);
    }
    if (proto === IPPROTO.GRE) {
      if (rc !== 0) return OUTCOME.MALFORMED;
      if ((types & T_GRE) === 0) return OUTCOME.WRONG_TYPE;
      if (!this.#outerHeaderOk(v, buf)) return OUTCOME.BAD_CHECKSUM;
      // gre_rcv (IPv4 only): the version with the reserved bits above it must be 0 or 1 (PPTP)
      if (v.ipVersion === 4 && (buf[v.l4Offset + 1]! & 0x7f) >= 2) return OUTCOME.UNSUPPORTED;
      if (v.tunnelType !== TUNNEL.GRE || v.innerOffset < 0) return OUTCOME.UNSUPPORTED;
      if (
        v.greChecksum >= 0 &&
        (status & CSUM_SKIP) === 0 &&
        csumFold(csumPartial(buf, v.l4Offset, v.ipEnd - v.l4Offset)) !== 0xffff
      )
        return OUTCOME.BAD_CHECKSUM;
      const ver = v.innerProtocol === IPPROTO.IPIP ? 4 : 6;
      return this.#inner(v, buf, v.innerOffset, v.ipEnd, ver, -1, -1);
    }
    return OUTCOME.NOT_TUNNEL;
  }

  #gue(v: PacketView, buf: Uint8Array, status: number): number {
    if (!this.#outerHeaderOk(v, buf)) return OUTCOME.BAD_CHECKSUM;
    if (
      v.l4Checksum !== 0 &&
      (status & CSUM_SKIP) === 0 &&
      !l4ChecksumOk(v.af, v.src, v.dst, IPPROTO.UDP, buf, v.l4Offset, v.udpLength)
    )
      return OUTCOME.BAD_CHECKSUM;
    const p = v.payloadOffset;
    const end = p + v.payloadLength;
    if (p >= end) return OUTCOME.MALFORMED;
    const b0 = buf[p]!;
    // GUE version 1 (draft-ietf-intarea-gue §5): the IP packet follows the UDP header directly.
    if (b0 >>> 6 === 1) return this.#inner(v, buf, p, end, b0 >>> 4, -1, -1);
    if (b0 >>> 6 !== 0) return OUTCOME.UNSUPPORTED;
    if (!gueFlagsOk(buf, p, end)) return OUTCOME.UNSUPPORTED;
    if (decodeGue(v) !== 0) {
      // The control bit (a GUE control message) is not data for the stack.
      return p + 4 <= end && (b0 & 0x20) !== 0 ? OUTCOME.UNSUPPORTED : OUTCOME.MALFORMED;
    }
    if (v.innerOffset < 0) return OUTCOME.UNSUPPORTED;
    const ver = v.innerProtocol === IPPROTO.IPIP ? 4 : 6;
    return this.#inner(v, buf, v.innerOffset, end, ver, v.remcsumStart, v.remcsumOffset);
  }

  /** Outer IPv4 header checksum (the kernel drops a bad one before any tunnel sees it). */
  #outerHeaderOk(v: PacketView, buf: Uint8Array): boolean {
    return v.ipVersion !== 4 || ipv4HeaderChecksumOk(buf, v.l3Offset, v.ipHeaderLength);
  }

  /**
   * Checks the inner packet at `buf[p, end)` (IP version `ver`), stages it on the TUN device and
   * applies RFC 6040 ECN decapsulation and remote checksum offload (`rcStart`/`rcOff` relative to
   * the inner packet, -1 when absent) to the staged copy.
   */
  #inner(
    v: PacketView,
    buf: Uint8Array,
    p: number,
    end: number,
    ver: number,
    rcStart: number,
    rcOff: number,
  ): number {
    const avail = end - p;
    if (avail < 1 || buf[p]! >>> 4 !== ver) return OUTCOME.MALFORMED;
    let len: number;
    let innerEcn: number;
    if (ver === 4) {
      if (avail < 20) return OUTCOME.MALFORMED;
      const ihl = (buf[p]! & 15) << 2;
      len = (buf[p + 2]! << 8) | buf[p + 3]!;
      if (ihl < 20 || len < ihl || len > avail) return OUTCOME.MALFORMED;
      innerEcn = buf[p + 1]! & 3;
    } else if (ver === 6) {
      if (avail < 40) return OUTCOME.MALFORMED;
      len = 40 + ((buf[p + 4]! << 8) | buf[p + 5]!);
      if (len > avail) return OUTCOME.MALFORMED;
      innerEcn = (buf[p + 1]! >>> 4) & 3;
    } else return OUTCOME.MALFORMED;
    if (rcStart >= 0 && ((rcStart & 1) !== 0 || rcStart >= len || rcOff < 0 || rcOff + 2 > len))
      return OUTCOME.MALFORMED;
    const ce = (v.tos & 3) === 3;
    if (ce && innerEcn === 0) return OUTCOME.ECN_DROP;
    // INET_ECN_decapsulate: outer CE marks an ECN-capable inner packet CE; outer ECT(1) turns an
    // ECT(0) one ECT(1) (RFC 6040 §4.2)
    const mark = ce && innerEcn !== 3 ? 3 : (v.tos & 3) === 1 && innerEcn === 2 ? 1 : -1;
    const out = this.#out;
    if (len > out.maxFrame) return OUTCOME.TX_DROPPED;
    const q = out.txAlloc(len);
    if (q < 0) return OUTCOME.TX_DROPPED;
    const tx = out.txData;
    tx.set(buf.subarray(p, p + len), q);
    if (mark >= 0) {
      if (ver === 4) {
        const old = (tx[q]! << 8) | tx[q + 1]!;
        tx[q + 1] = (tx[q + 1]! & ~3) | mark;
        const c = csumReplace16((tx[q + 10]! << 8) | tx[q + 11]!, old, (old & ~3) | mark);
        tx[q + 10] = c >>> 8;
        tx[q + 11] = c;
      } else tx[q + 1] = (tx[q + 1]! & ~0x30) | (mark << 4);
    }
    if (rcStart >= 0) {
      // skb_remcsum_process: the field holds the pseudo-header sum; sum from start to the end.
      const c = csumFinish(csumPartial(tx, q + rcStart, len - rcStart)) || 0xffff;
      tx[q + rcOff] = c >>> 8;
      tx[q + rcOff + 1] = c;
    }
    this.#staged++;
    this.decapsulatedBytes += len;
    return OUTCOME.DECAPSULATED;
  }

  #isLocal(v: PacketView): boolean {
    const d = v.dst;
    if (v.af === AF_INET) {
      const a = this.#v4;
      const x = d[0]!;
      for (let i = 0; i < a.length; i++) if (a[i] === x) return true;
      return false;
    }
    const a = this.#v6;
    for (let i = 0; i < a.length; i += 4) {
      if (a[i] === d[0] && a[i + 1] === d[1] && a[i + 2] === d[2] && a[i + 3] === d[3]) return true;
    }
    return false;
  }
}

/**
 * validate_gue_flags for the GUE v0 header at `buf[p, end)`: no flag but the private-flags word,
 * in it no flag but remote checksum offload, and the options they announce within the header.
 */
function gueFlagsOk(buf: Uint8Array, p: number, end: number): boolean {
  if (p + 4 > end) return true; // too short: decodeGue calls it malformed
  const optlen = (buf[p]! & 31) << 2;
  const flags = (buf[p + 2]! << 8) | buf[p + 3]!;
  if ((flags & ~GUE_FLAG_PRIV) !== 0) return false;
  if ((flags & GUE_FLAG_PRIV) === 0) return true;
  if (optlen < 4 || p + 8 > end) return false;
  const pflags =
    ((buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!) >>> 0;
  if ((pflags & ~GUE_PFLAG_REMCSUM) >>> 0 !== 0) return false;
  return (pflags & GUE_PFLAG_REMCSUM) === 0 || optlen >= 8;
}

/**
 * True when the UDP payload `buf[p, end)` is a GUE v0 data header carrying an IP packet whose
 * length fills the rest of the datagram: the test for "GUE, but on another port".
 */
export function looksLikeGue(buf: Uint8Array, p: number, end: number): boolean {
  if (p < 0 || p + 4 > end) return false;
  const b0 = buf[p]!;
  if ((b0 & 0xe0) !== 0) return false;
  const q = p + 4 + ((b0 & 31) << 2);
  const proto = buf[p + 1]!;
  if (proto === IPPROTO.IPIP) {
    return (
      q + 20 <= end &&
      buf[q] !== undefined &&
      buf[q]! >>> 4 === 4 &&
      (buf[q]! & 15) >= 5 &&
      ((buf[q + 2]! << 8) | buf[q + 3]!) === end - q
    );
  }
  if (proto === IPPROTO.IPV6) {
    return (
      q + 40 <= end && buf[q]! >>> 4 === 6 && 40 + ((buf[q + 4]! << 8) | buf[q + 5]!) === end - q
    );
  }
  return false;
}
