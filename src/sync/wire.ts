/**
 * The connection-sync wire format (spec §8.2, §8.3; ip_vs_sync.c): version 1 messages (8-byte
 * header, IPv4 / IPv6 records with SEQ, PE data and PE name options, each record padded to four
 * bytes) and legacy version 0 messages (4-byte header, 24-byte IPv4 records, sequence data in the
 * sender's byte order). `SyncMessage` builds one datagram in place; `decodeMessage` validates a
 * received datagram the way the kernel's backup does and returns the records it would apply,
 * the records it would skip (with the reason) and, when it stops early, why. Nothing here
 * touches a connection table.
 */
import { endianness } from 'node:os';
import { AF_INET, AF_INET6 } from '../core/addr.js';
import type { SeqAdjust } from '../core/ipvs.js';
import {
  CONN_F_BACKUP_MASK,
  CONN_F_HASHED,
  CONN_F_SEQ_MASK,
  CONN_F_SYNC,
  CONN_F_TEMPLATE,
  IPPROTO_AH,
  IPPROTO_ESP,
} from '../core/constants.js';
import { protoOps } from '../proto/index.js';

/** Default multicast group (IP_VS_SYNC_GROUP) and port. */
export const SYNC_GROUP = '224.0.0.81';
export const SYNC_PORT = 8848;
/** Version byte of a v1 header. */
export const SYNC_PROTO_VER = 1;
/** Header sizes. */
export const HDR_V0 = 4;
export const HDR_V1 = 8;
/** Fixed parts of the records. */
export const REC_V1_V4 = 36;
export const REC_V1_V6 = 72;
export const REC_V0 = 24;
/** A v0 record followed by its sequence data (in_seq, out_seq: 3 × u32 each). */
export const REC_V0_FULL = 48;
/** Sequence data: two `ip_vs_seq` of three u32 each. */
export const SEQ_DATA_LEN = 24;
/** Option types; adding OPT_F_PARAM marks an option the receiver may ignore. */
export const OPT_SEQ_DATA = 1;
export const OPT_PE_DATA = 2;
export const OPT_PE_NAME = 3;
export const OPT_F_PARAM = 64;
/** Record type bit: IPv6 addresses. */
export const STYPE_F_INET6 = 1;
/** IP_VS_PEDATA_MAXLEN and IP_VS_PENAME_MAXLEN. */
export const PE_DATA_MAX = 255;
export const PE_NAME_MAX = 16;
/** The largest timeout a backup accepts, in seconds (what a u32 of milliseconds holds). */
export const MAX_SYNC_TIMEOUT_SEC = Math.floor(0xffffffff / 1000);

const NATIVE_LE = endianness() === 'LE';

/** One direction's TCP sequence adjustment (struct ip_vs_seq), core's `SeqAdjust`. */
export type SeqAdj = SeqAdjust;

/** A connection as a sync record carries it. Addresses are four words, as in core. */
export interface SyncConn {
  af: number;
  protocol: number;
  /** Connection flags (HASHED is cleared when encoded). */
  flags: number;
  state: number;
  cport: number;
  vport: number;
  dport: number;
  fwmark: number;
  /** Seconds (v1 only). */
  timeout: number;
  caddr: ArrayLike<number>;
  vaddr: ArrayLike<number>;
  daddr: ArrayLike<number>;
  /** Sequence data, sent when `flags` has IN_SEQ or OUT_SEQ (zeros when absent). */
  inSeq?: SeqAdj | null;
  outSeq?: SeqAdj | null;
  /** Persistence-engine data and name (templates of `--pe` services). */
  peData?: Uint8Array | null;
  peName?: string | null;
}

const ZERO_SEQ: SeqAdj = { initSeq: 0, delta: 0, previousDelta: 0 };

/** Length of a v1 record without its padding (the `ver_size` value). */
export function recordLengthV1(c: SyncConn): number {
  let len = c.af === AF_INET6 ? REC_V1_V6 : REC_V1_V4;
  if (c.flags & CONN_F_SEQ_MASK) len += SEQ_DATA_LEN + 2;
  const pd = c.peData?.length ?? 0;
  if (pd) {
    len += pd + 2;
    const pn = peNameBytes(c.peName).length;
    if (pn) len += pn + 2;
  }
  return len;
}

/** Length of a v0 record. */
export function recordLengthV0(c: SyncConn): number {
  return c.flags & CONN_F_SEQ_MASK ? REC_V0_FULL : REC_V0;
}

function peNameBytes(name: string | null | undefined): Buffer {
  if (!name) return Buffer.alloc(0);
  const b = Buffer.from(name, 'latin1');
  return b.length > PE_NAME_MAX ? b.subarray(0, PE_NAME_MAX) : b;
}

function putAddr(b: Buffer, o: number, af: number, a: ArrayLike<number>): number {
  b.writeUInt32BE(a[0]! >>> 0, o);
  if (af !== AF_INET6) return o + 4;
  b.writeUInt32BE(a[1]! >>> 0, o + 4);
  b.writeUInt32BE(a[2]! >>> 0, o + 8);
  b.writeUInt32BE(a[3]! >>> 0, o + 12);
  return o + 16;
}

function putSeqBE(b: Buffer, o: number, s: SeqAdj): number {
  b.writeUInt32BE(s.initSeq >>> 0, o);
  b.writeUInt32BE(s.delta >>> 0, o + 4);
  b.writeUInt32BE(s.previousDelta >>> 0, o + 8);
  return o + 12;
}

function putSeqNative(b: Buffer, o: number, s: SeqAdj): number {
  for (const [i, v] of [s.initSeq, s.delta, s.previousDelta].entries()) {
    if (NATIVE_LE) b.writeUInt32LE(v >>> 0, o + i * 4);
    else b.writeUInt32BE(v >>> 0, o + i * 4);
  }
  return o + 12;
}

/**
 * Writes a v1 record at `o` (no padding) and returns its length. The caller checked the room
 * (`recordLengthV1`).
 */
export function encodeRecordV1(c: SyncConn, b: Buffer, o: number): number {
  const len = recordLengthV1(c);
  const v6 = c.af === AF_INET6;
  b[o] = v6 ? STYPE_F_INET6 : 0;
  b[o + 1] = c.protocol;
  b.writeUInt16BE(len & 0x0fff, o + 2); // version 0 in the top four bits
  b.writeUInt32BE((c.flags & ~CONN_F_HASHED) >>> 0, o + 4);
  b.writeUInt16BE(c.state & 0xffff, o + 8);
  b.writeUInt16BE(c.cport, o + 10);
  b.writeUInt16BE(c.vport, o + 12);
  b.writeUInt16BE(c.dport, o + 14);
  b.writeUInt32BE(c.fwmark >>> 0, o + 16);
  b.writeUInt32BE(c.timeout >>> 0, o + 20);
  let p = putAddr(b, o + 24, c.af, c.caddr);
  p = putAddr(b, p, c.af, c.vaddr);
  p = putAddr(b, p, c.af, c.daddr);
  if (c.flags & CONN_F_SEQ_MASK) {
    b[p++] = OPT_SEQ_DATA;
    b[p++] = SEQ_DATA_LEN;
    p = putSeqBE(b, p, c.inSeq ?? ZERO_SEQ);
    p = putSeqBE(b, p, c.outSeq ?? ZERO_SEQ);
  }
  const pd = c.peData;
  if (pd && pd.length) {
    b[p++] = OPT_PE_DATA;
    b[p++] = pd.length;
    b.set(pd, p);
    p += pd.length;
    const pn = peNameBytes(c.peName);
    if (pn.length) {
      b[p++] = OPT_PE_NAME;
      b[p++] = pn.length;
      b.set(pn, p);
      p += pn.length;
    }
  }
  return len;
}

/** Writes a v0 record (IPv4 only) at `o` and returns its length. */
export function encodeRecordV0(c: SyncConn, b: Buffer, o: number): number {
  b[o] = 0;
  b[o + 1] = c.protocol;
  b.writeUInt16BE(c.cport, o + 2);
  b.writeUInt16BE(c.vport, o + 4);
  b.writeUInt16BE(c.dport, o + 6);
  b.writeUInt32BE(c.caddr[0]! >>> 0, o + 8);
  b.writeUInt32BE(c.vaddr[0]! >>> 0, o + 12);
  b.writeUInt32BE(c.daddr[0]! >>> 0, o + 16);
  b.writeUInt16BE(c.flags & ~CONN_F_HASHED & 0xffff, o + 20);
  b.writeUInt16BE(c.state & 0xffff, o + 22);
  if (!(c.flags & CONN_F_SEQ_MASK)) return REC_V0;
  putSeqNative(b, o + 24, c.inSeq ?? ZERO_SEQ);
  putSeqNative(b, o + 36, c.outSeq ?? ZERO_SEQ);
  return REC_V0_FULL;
}

/**
 * One datagram being filled (struct ip_vs_sync_buff): the header is written at creation, each
 * record updates the count and the size field. Capacity is `max(first record + header, maxlen)`.
 */
export class SyncMessage {
  readonly version: 0 | 1;
  readonly buf: Buffer;
  /** Bytes used so far, header included. */
  head: number;
  /** When the first record went in (ms, the master's clock). */
  readonly firstUse: number;

  constructor(version: 0 | 1, syncId: number, maxlen: number, firstLen: number, now: number) {
    const hdr = version === 1 ? HDR_V1 : HDR_V0;
    this.version = version;
    this.buf = Buffer.alloc(Math.max(firstLen + hdr, maxlen));
    this.firstUse = now;
    this.head = hdr;
    const b = this.buf;
    if (version === 1) {
      b[0] = 0; // where v0 has nr_conns: a v0 receiver sees an empty message
      b[1] = syncId;
      b[5] = SYNC_PROTO_VER;
    } else b[1] = syncId;
    this.#setSize();
  }

  /** Records in the message. */
  get count(): number {
    return this.version === 1 ? this.buf[4]! : this.buf[0]!;
  }

  /** Zero bytes a v1 record needs before it to start on a four-byte boundary. */
  get pad(): number {
    return (4 - this.head) & 3;
  }

  /** Whether a record of `len` bytes (plus padding for v1) still fits. */
  fits(len: number): boolean {
    return this.head + (this.version === 1 ? this.pad : 0) + len <= this.buf.length;
  }

  /** Appends a v1 record (after its padding). */
  addV1(c: SyncConn): void {
    const pad = this.pad;
    this.buf.fill(0, this.head, this.head + pad);
    this.head += pad;
    this.head += encodeRecordV1(c, this.buf, this.head);
    this.buf[4]!++;
    this.#setSize();
  }

  /** Appends a v0 record. */
  addV0(c: SyncConn): void {
    this.head += encodeRecordV0(c, this.buf, this.head);
    this.buf[0]!++;
    this.#setSize();
  }

  #setSize(): void {
    this.buf.writeUInt16BE(this.head, 2);
  }

  /** The datagram: header and records. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.head);
  }
}

// ---- receiving -----------------------------------------------------------------------------

/** A record as the backup will apply it. */
export interface SyncRecord {
  /** The message version it came in. */
  version: 0 | 1;
  af: number;
  protocol: number;
  /** Flags as received. */
  wireFlags: number;
  /**
   * Flags for the backup: v1 `(wire & BACKUP_MASK) | SYNC`; v0 `(wire | SYNC) & ~HASHED`
   * (mainline does not mask v0 flags).
   */
  flags: number;
  state: number;
  cport: number;
  vport: number;
  dport: number;
  fwmark: number;
  /** Seconds; 0 (v0) means "the protocol's timeout for the state". */
  timeout: number;
  caddr: Uint32Array;
  vaddr: Uint32Array;
  daddr: Uint32Array;
  inSeq: SeqAdj | null;
  outSeq: SeqAdj | null;
  peData: Buffer | null;
  peName: string | null;
}

/** Why a whole message was dropped or cut short. */
export type SyncDrop =
  | 'short' // under 4 bytes
  | 'size' // header size ≠ datagram length
  | 'syncid' // another sync id
  | 'truncated' // a record runs past the datagram
  | 'record-version' // a record's ver_size has a version
  | 'record-type' // a record type other than 0 and IPv6
  | 'record-size' // ver_size smaller than the fixed part
  | 'option'; // a malformed option (short, zero length, overflow, bad or repeated)

/** Why one record was skipped (the rest of the message is still read). */
export type SyncSkip =
  | 'mandatory-option' // an unknown option without the optional bit
  | 'protocol' // not TCP, UDP or SCTP
  | 'state' // a state the protocol does not have
  | 'pe-params' // PE data without a PE name
  | 'pe-name'; // a persistence engine this build does not have

/** What `decodeMessage` found. */
export interface DecodeResult {
  /** 1 or 0; -1 when dropped before the version was known. */
  version: 0 | 1 | -1;
  /** Records to apply, in order (those before a drop included, as the kernel applies them). */
  records: SyncRecord[];
  skipped: SyncSkip[];
  /** Set when the message (or its remainder) was dropped. */
  drop: SyncDrop | null;
}

/** Options of `decodeMessage`. */
export interface DecodeOptions {
  /** The backup's sync id: 0 accepts every message. */
  syncId: number;
  /** Persistence engines known here (default: sip). */
  peNames?: ReadonlySet<string>;
}

const DEFAULT_PE = new Set(['sip']);

function getAddr(b: Uint8Array, o: number, af: number): Uint32Array {
  const w = new Uint32Array(4);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  w[0] = v.getUint32(o);
  if (af === AF_INET6) {
    w[1] = v.getUint32(o + 4);
    w[2] = v.getUint32(o + 8);
    w[3] = v.getUint32(o + 12);
  }
  return w;
}

function getSeq(v: DataView, o: number, le: boolean): SeqAdj {
  return {
    initSeq: v.getUint32(o, le),
    delta: v.getUint32(o + 4, le),
    previousDelta: v.getUint32(o + 8, le),
  };
}

/**
 * The protocol / state checks of both versions; null when the record may be applied. A
 * template's protocol and state are not checked: mainline only logs a template state past
 * NONE / ASSURED and applies the record all the same.
 */
function checkState(flags: number, protocol: number, state: number): SyncSkip | null {
  if (flags & CONN_F_TEMPLATE) return null;
  // AH and ESP have handlers of one state and no state machine (ip_vs_proto_ah_esp.c)
  const states =
    protocol === IPPROTO_AH || protocol === IPPROTO_ESP ? 1 : protoOps(protocol)?.numStates;
  if (states === undefined) return 'protocol';
  return state >= states ? 'state' : null;
}

/**
 * Validates and decodes one received datagram (ip_vs_process_message): `b` holds exactly the
 * bytes received.
 */
export function decodeMessage(b: Uint8Array, opts: DecodeOptions): DecodeResult {
  const res: DecodeResult = { version: -1, records: [], skipped: [], drop: null };
  const len = b.length;
  if (len < HDR_V0) return { ...res, drop: 'short' };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint16(2) !== len) return { ...res, drop: 'size' };
  if (opts.syncId !== 0 && b[1] !== opts.syncId) return { ...res, drop: 'syncid' };
  // v1 iff reserved = 0, version = 1 and spare = 0 (a short v0 datagram reads as zeros past its end)
  const isV1 = len >= HDR_V1 && b[0] === 0 && b[5] === SYNC_PROTO_VER && v.getUint16(6) === 0;
  if (!isV1) {
    res.version = 0;
    decodeV0(b, v, res);
    return res;
  }
  res.version = 1;
  const pe = opts.peNames ?? DEFAULT_PE;
  const n = b[4]!;
  let p = HDR_V1;
  for (let i = 0; i < n; i++) {
    if (p + REC_V1_V4 > len) return { ...res, drop: 'truncated' };
    const vs = v.getUint16(p + 2);
    const size = vs & 0x0fff;
    const end = p + size;
    if (end > len) return { ...res, drop: 'truncated' };
    if (vs >>> 12) return { ...res, drop: 'record-version' };
    const r = decodeRecordV1(b, v, p, end, pe);
    if (typeof r === 'object' && r !== null) res.records.push(r);
    else if (r === 'drop-type' || r === 'drop-size' || r === 'drop-option') {
      res.drop = r === 'drop-type' ? 'record-type' : r === 'drop-size' ? 'record-size' : 'option';
      return res;
    } else res.skipped.push(r);
    p += (size + 3) & ~3;
  }
  return res;
}

function decodeRecordV1(
  b: Uint8Array,
  v: DataView,
  p0: number,
  end: number,
  pe: ReadonlySet<string>,
): SyncRecord | SyncSkip | 'drop-type' | 'drop-size' | 'drop-option' {
  const type = b[p0]!;
  let af: number;
  let p: number;
  if (type & STYPE_F_INET6) {
    af = AF_INET6;
    p = p0 + REC_V1_V6;
  } else if (type === 0) {
    af = AF_INET;
    p = p0 + REC_V1_V4;
  } else return 'drop-type';
  if (p > end) return 'drop-size';
  let inSeq: SeqAdj | null = null;
  let outSeq: SeqAdj | null = null;
  let peData: Buffer | null = null;
  let peName: string | null = null;
  let seen = 0;
  while (p < end) {
    if (p + 2 > end) return 'drop-option';
    const ptype = b[p++]!;
    const plen = b[p++]!;
    if (!plen || p + plen > end) return 'drop-option';
    switch (ptype & ~OPT_F_PARAM) {
      case OPT_SEQ_DATA:
        if (plen !== SEQ_DATA_LEN || seen & 1) return 'drop-option';
        seen |= 1;
        inSeq = getSeq(v, p, false);
        outSeq = getSeq(v, p + 12, false);
        break;
      case OPT_PE_DATA:
        if (plen > PE_DATA_MAX || seen & 2) return 'drop-option';
        seen |= 2;
        peData = Buffer.from(b.subarray(p, p + plen));
        break;
      case OPT_PE_NAME:
        if (plen > PE_NAME_MAX || seen & 4) return 'drop-option';
        seen |= 4;
        peName = Buffer.from(b.subarray(p, p + plen)).toString('latin1');
        break;
      default:
        // the kernel stops reading this record at its first unknown mandatory option
        if (!(ptype & OPT_F_PARAM)) return 'mandatory-option';
    }
    p += plen;
  }
  const wireFlags = v.getUint32(p0 + 4);
  const flags = ((wireFlags & CONN_F_BACKUP_MASK) | CONN_F_SYNC) >>> 0;
  const protocol = b[p0 + 1]!;
  const state = v.getUint16(p0 + 8);
  const skip = checkState(flags, protocol, state);
  if (skip) return skip;
  if (peData) {
    if (peName === null) return 'pe-params';
    if (!pe.has(peName)) return 'pe-name';
  }
  const a = p0 + 24;
  const step = af === AF_INET6 ? 16 : 4;
  return {
    version: 1,
    af,
    protocol,
    wireFlags,
    flags,
    state,
    cport: v.getUint16(p0 + 10),
    vport: v.getUint16(p0 + 12),
    dport: v.getUint16(p0 + 14),
    fwmark: v.getUint32(p0 + 16),
    timeout: v.getUint32(p0 + 20),
    caddr: getAddr(b, a, af),
    vaddr: getAddr(b, a + step, af),
    daddr: getAddr(b, a + 2 * step, af),
    inSeq,
    outSeq,
    peData,
    peName: peData ? peName : null,
  };
}

function decodeV0(b: Uint8Array, v: DataView, res: DecodeResult): void {
  const len = b.length;
  const n = b[0]!;
  let p = HDR_V0;
  for (let i = 0; i < n; i++) {
    if (p + REC_V0 > len) {
      res.drop = 'truncated';
      return;
    }
    const s = p;
    const wireFlags = v.getUint16(s + 20);
    const flags = ((wireFlags | CONN_F_SYNC) & ~CONN_F_HASHED) >>> 0;
    let inSeq: SeqAdj | null = null;
    let outSeq: SeqAdj | null = null;
    if (flags & CONN_F_SEQ_MASK) {
      p += REC_V0_FULL;
      if (p > len) {
        res.drop = 'truncated';
        return;
      }
      inSeq = getSeq(v, s + 24, NATIVE_LE);
      outSeq = getSeq(v, s + 36, NATIVE_LE);
    } else p += REC_V0;
    const protocol = b[s + 1]!;
    const state = v.getUint16(s + 22);
    const skip = checkState(flags, protocol, state);
    if (skip) {
      res.skipped.push(skip);
      continue;
    }
    res.records.push({
      version: 0,
      af: AF_INET,
      protocol,
      wireFlags,
      flags,
      state,
      cport: v.getUint16(s + 2),
      vport: v.getUint16(s + 4),
      dport: v.getUint16(s + 6),
      fwmark: 0,
      timeout: 0,
      caddr: getAddr(b, s + 8, AF_INET),
      vaddr: getAddr(b, s + 12, AF_INET),
      daddr: getAddr(b, s + 16, AF_INET),
      inSeq,
      outSeq,
      peData: null,
      peName: null,
    });
  }
}
