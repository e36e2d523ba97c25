/**
 * The FTP helper for NAT (spec §7.2, kernel twin ip_vs_ftp.c + the sequence machinery of
 * ip_vs_app.c). Bound to a NAT TCP connection whose virtual port is an FTP port (default 21), it
 * watches the control channel while ESTABLISHED: `PORT` / `EPRT` from the client pre-create the
 * server's active data connection; `PASV` / `EPSV` mark a passive request whose `227` / `229`
 * answer pre-creates a NO_CPORT data connection and is rewritten to carry the VIP. A rewrite that
 * changes the payload length is followed by the sequence adjustment of §7.2 (`out_seq`), applied
 * to every later segment of the connection in both directions. The kernel leaves the resize to
 * conntrack's NAT helper; here the helper does it itself with the IPVS delta algorithm.
 *
 * State lives in a side table keyed by connection handle (a flag array plus a map for the bound
 * connections), cleaned up when core frees the connection.
 */
import { AF_INET, AF_INET6, formatIp, parseIpv6 as parseV6 } from '../../core/addr.js';
import { NO_CONN } from '../../core/conn.js';
import {
  CONN_F_FWD_MASK,
  CONN_F_IN_SEQ,
  CONN_F_NFCT,
  CONN_F_NO_CPORT,
  CONN_F_OUT_SEQ,
  FWD_MASQ,
  IPPROTO_TCP,
} from '../../core/constants.js';
import type { Ipvs, SeqAdjust } from '../../core/ipvs.js';
import { TCP_S_ESTABLISHED, TCP_S_LISTEN } from '../../proto/index.js';
import type { PacketView } from '../../packet/view.js';
import { put32 } from './bytes.js';
import { read32 } from '../../packet/checksum.js';
import { TCP_OPT } from '../../packet/tcp.js';
import type { AppInfo } from '../../metrics/proc.js';

/** Default FTP control ports (module parameter `ports`). */
export const FTP_PORTS_DEFAULT: readonly number[] = [21];

const PASV_NONE = 0;
const PASV_V4 = 1; // PASV
const PASV_EXT = 2; // EPSV

/** Sequence-delta records of one connection (ip_vs_seq ×2). */
class FtpConn {
  pasv = PASV_NONE;
  /** [in init_seq, in delta, in previous_delta, out init_seq, out delta, out previous_delta]. */
  readonly seq = new Int32Array(6);
}

/** 32-bit serial-number "a is after b" (RFC 1982). */
function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}

/** What the helper did with a packet. */
export const APP = { DROP: 0, SAME: 1, CHANGED: 2 } as const;

/** The FTP application helper of one engine. */
export class FtpHelper {
  readonly #ipvs: Ipvs;
  readonly #bound: Uint8Array;
  readonly #conns = new Map<number, FtpConn>();
  ports: number[] = [...FTP_PORTS_DEFAULT];
  /** Data connections created (for tests and the trace). */
  created = 0;
  /** Last action, for the trace ('' when none). */
  note = '';
  readonly #addr = new Uint32Array(4);
  /** [start, end) of the address text the last `getAddrPort` parsed. */
  readonly #span = new Int32Array(2);
  readonly #text = new Uint8Array(64);

  constructor(ipvs: Ipvs) {
    this.#ipvs = ipvs;
    this.#bound = new Uint8Array(ipvs.conns.capacity);
  }

  /** Binds the helper to `h` when it is an FTP control connection (called at creation). */
  bindIfFtp(h: number, masq: boolean): boolean {
    const t = this.#ipvs.conns;
    if (!masq || t.protocol(h) !== IPPROTO_TCP || !this.ports.includes(t.vport(h))) return false;
    this.#bound[h] = 1;
    this.#conns.set(h, new FtpConn());
    t.setFlags(h, (t.flags(h) | CONN_F_NFCT) >>> 0);
    return true;
  }

  /** True when the helper is bound to `h`. */
  bound(h: number): boolean {
    return this.#bound[h] === 1;
  }

  /** Core freed `h`. */
  free(h: number): void {
    if (this.#bound[h] === 0) return;
    this.#bound[h] = 0;
    this.#conns.delete(h);
  }

  /** Number of bound connections. */
  get size(): number {
    return this.#conns.size;
  }

  /**
   * The helper's incarnations as ip_vs_app lists them: one `ftp` row per port, newest first
   * (ip_vs_app_inc_new adds each at the head of the list), with the connections bound to it.
   */
  apps(): AppInfo[] {
    const used = new Map<number, number>(this.ports.map((p) => [p, 0]));
    const t = this.#ipvs.conns;
    for (const h of this.#conns.keys()) used.set(t.vport(h), (used.get(t.vport(h)) ?? 0) + 1);
    return [...this.ports].reverse().map((port) => ({
      protocol: IPPROTO_TCP,
      port,
      useCount: used.get(port) ?? 0,
      name: 'ftp',
    }));
  }

  /** The sequence records of `h` (tests). */
  seqOf(h: number): Int32Array | null {
    return this.#conns.get(h)?.seq ?? null;
  }

  /** `h`'s adjustments as sync carries them (in, then out), null when the helper is not bound. */
  syncSeq(h: number): { in: SeqAdjust; out: SeqAdjust } | null {
    const s = this.#conns.get(h)?.seq;
    if (!s) return null;
    const adj = (b: number): SeqAdjust => ({
      initSeq: s[b]! >>> 0,
      delta: s[b + 1]! >>> 0,
      previousDelta: s[b + 2]! >>> 0,
    });
    return { in: adj(0), out: adj(3) };
  }

  /**
   * A backup synced `h`: bound when it is an FTP control connection (as at creation), then given
   * the master's adjustments, so the stream goes on being resized where the master left it.
   */
  synced(h: number, seq: { in: SeqAdjust; out: SeqAdjust } | null): void {
    const t = this.#ipvs.conns;
    if (!this.bound(h) && !this.bindIfFtp(h, (t.flags(h) & CONN_F_FWD_MASK) === FWD_MASQ)) return;
    if (!seq) return;
    const s = this.#conns.get(h)!.seq;
    const put = (b: number, a: SeqAdjust): void => {
      s[b] = a.initSeq | 0;
      s[b + 1] = a.delta | 0;
      s[b + 2] = a.previousDelta | 0;
    };
    put(0, seq.in);
    put(3, seq.out);
  }

  // ---- sequence adjustment (ip_vs_app.c) ------------------------------------------------------

  #fixSeq(s: Int32Array, base: number, v: PacketView): void {
    const delta = s[base + 1]!;
    const prev = s[base + 2]!;
    if (!delta && !prev) return;
    const seq = v.tcpSeq;
    const n = after(seq, s[base]!) ? seq + delta : seq + prev;
    put32(v.buf, v.l4Offset + 4, n);
    v.u32[0] = n;
  }

  #fixAck(s: Int32Array, base: number, v: PacketView): void {
    const delta = s[base + 1]!;
    const prev = s[base + 2]!;
    if (!delta && !prev) return;
    const ack = v.tcpAck;
    const n = after(ack, s[base]! + delta) ? ack - delta : ack - prev;
    put32(v.buf, v.l4Offset + 8, n);
    v.u32[1] = n;
    this.#fixSack(s[base]!, delta, prev, v);
  }

  /**
   * The SACK blocks of the segment acknowledge the resized stream too: each edge moves back by
   * the same rule as the acknowledgement number (nf_ct_sack_adjust does this for NAT helpers).
   * Options that run past the header, or a SACK option whose length is not 2 + 8n, are left.
   */
  #fixSack(init: number, delta: number, prev: number, v: PacketView): void {
    const b = v.buf;
    const end = v.l4Offset + v.tcpHeaderLength;
    let q = v.l4Offset + 20;
    while (q < end) {
      const kind = b[q]!;
      if (kind === TCP_OPT.EOL) return;
      if (kind === TCP_OPT.NOP) {
        q++;
        continue;
      }
      if (q + 1 === end) return;
      const len = b[q + 1]!;
      if (len < 2 || q + len > end) return;
      if (kind === TCP_OPT.SACK && len >= 10 && (len - 2) % 8 === 0) {
        for (let e = q + 2; e < q + len; e += 4) {
          const edge = read32(b, e);
          put32(b, e, after(edge, init + delta) ? edge - delta : edge - prev);
        }
      }
      q += len;
    }
  }

  #seqUpdate(
    h: number,
    s: Int32Array,
    base: number,
    flag: number,
    seq: number,
    diff: number,
  ): void {
    const t = this.#ipvs.conns;
    if (!(t.flags(h) & flag) || after(seq, s[base]!)) {
      s[base + 2] = s[base + 1]!;
      s[base + 1] = (s[base + 1]! + diff) | 0;
      s[base] = seq | 0;
      t.setFlags(h, (t.flags(h) | flag) >>> 0);
    }
  }

  /**
   * Client → server segment of control connection `h` (app_tcp_pkt_in + ip_vs_ftp_in), before
   * DNAT. `v` is writable and may be resized by `resize` (not needed in this direction).
   */
  pktIn(h: number, v: PacketView, mark: number): number {
    const st = this.#conns.get(h);
    if (!st) return APP.SAME;
    const t = this.#ipvs.conns;
    const f = t.flags(h);
    let changed = false;
    if (f & CONN_F_IN_SEQ) {
      this.#fixSeq(st.seq, 0, v);
      changed = true;
    }
    if (f & CONN_F_OUT_SEQ) {
      this.#fixAck(st.seq, 3, v);
      changed = true;
    }
    this.note = '';
    if (t.state(h) !== TCP_S_ESTABLISHED) return changed ? APP.CHANGED : APP.SAME;
    const b = v.buf;
    const p = v.payloadOffset;
    const end = p + v.payloadLength;
    const af = t.af(h);
    // PASV / EPSV anywhere in the payload; an EPSV with an argument the helper does not take
    // (EPSV ALL, another protocol) ends the search, as ip_vs_ftp_in does
    for (let q = p; q + 6 <= end; q++) {
      if (af === AF_INET && ci(b, q, 'PASV\r\n')) {
        st.pasv = PASV_V4;
        this.note = 'ftp: PASV seen, passive reply pending';
        return changed ? APP.CHANGED : APP.SAME;
      }
      if (ci(b, q, 'EPSV') && (b[q + 4] === 0x20 || b[q + 4] === 0x0d)) {
        if (b[q + 4] === 0x20) {
          if (q + 7 > end || b[q + 6] !== 0x0d) return changed ? APP.CHANGED : APP.SAME;
          const net = b[q + 5];
          if (!((net === 0x31 && af === AF_INET) || (net === 0x32 && af === AF_INET6)))
            return changed ? APP.CHANGED : APP.SAME;
        }
        st.pasv = PASV_EXT;
        this.note = 'ftp: EPSV seen, extended passive reply pending';
        return changed ? APP.CHANGED : APP.SAME;
      }
    }
    // PORT / EPRT must start the payload
    const to = this.#addr;
    const span = this.#span;
    let port = -1;
    if (af === AF_INET) port = getAddrPort(b, p, end, 'PORT', 0x20, false, false, af, to, span);
    if (port < 0) port = getAddrPort(b, p, end, 'EPRT', 0x20, true, false, af, to, span);
    if (port < 0) return changed ? APP.CHANGED : APP.SAME;
    st.pasv = PASV_NONE;
    // the server's future active data connection: client to:port ← VIP:vport-1
    const vaddrOff = t.vaddrOff(h);
    const vport = (t.vport(h) - 1) & 0xffff;
    let n = t.inGet(af, IPPROTO_TCP, to, port, t.hot.subarray(vaddrOff, vaddrOff + 4), vport);
    if (n === NO_CONN) {
      const d = t.daddrOff(h);
      n = this.#ipvs.ops.newConn(
        af,
        IPPROTO_TCP,
        to,
        port,
        t.hot.subarray(vaddrOff, vaddrOff + 4),
        vport,
        t.daf(h),
        t.cold.subarray(d, d + 4),
        (t.dport(h) - 1) & 0xffff,
        CONN_F_NFCT,
        this.#ipvs.ops.dest(h),
        mark,
      );
      if (n === NO_CONN) return APP.DROP;
      this.#ipvs.ops.controlAdd(n, h);
      this.created++;
    }
    this.#listen(n);
    this.note = `ftp: active data connection ${formatIp(af, to)}:${port} ← port ${vport} prepared (LISTEN)`;
    return changed ? APP.CHANGED : APP.SAME;
  }

  /**
   * Server → client segment of control connection `h` (app_tcp_pkt_out + ip_vs_ftp_out), before
   * SNAT. `resize(start, end, bytes, n)` replaces `v.buf[start, end)` by `bytes[0, n)` and
   * updates the view's lengths; it returns false when the packet cannot grow.
   */
  pktOut(
    h: number,
    v: PacketView,
    mark: number,
    resize: (start: number, end: number, bytes: Uint8Array, n: number) => boolean,
  ): number {
    const st = this.#conns.get(h);
    if (!st) return APP.SAME;
    const t = this.#ipvs.conns;
    const f = t.flags(h);
    const seq = v.tcpSeq;
    let changed = false;
    if (f & CONN_F_OUT_SEQ) {
      this.#fixSeq(st.seq, 3, v);
      changed = true;
    }
    if (f & CONN_F_IN_SEQ) {
      this.#fixAck(st.seq, 0, v);
      changed = true;
    }
    this.note = '';
    if (t.state(h) !== TCP_S_ESTABLISHED || st.pasv === PASV_NONE)
      return changed ? APP.CHANGED : APP.SAME;
    const b = v.buf;
    const p = v.payloadOffset;
    const end = p + v.payloadLength;
    const af = t.af(h);
    const from = this.#addr;
    const span = this.#span;
    let port: number;
    if (st.pasv === PASV_V4) {
      port = getAddrPort(b, p, end, '227 ', 0x28, false, false, af, from, span);
    } else {
      // the address is usually omitted: the connection's real server
      const d = t.daddrOff(h);
      from.set(t.cold.subarray(d, d + 4));
      port = getAddrPort(b, p, end, '229 ', 0x28, true, true, af, from, span);
    }
    const start = span[0]!;
    const stop = span[1]!;
    if (port < 0) return changed ? APP.CHANGED : APP.SAME;
    const ext = st.pasv === PASV_EXT;
    st.pasv = PASV_NONE;
    const vaddrOff = t.vaddrOff(h);
    const caddr = t.hot.subarray(t.caddrOff(h), t.caddrOff(h) + 4);
    // an entry already made for this server endpoint and client (ip_vs_conn_out_get: the
    // announced address and port as its source, the client with port 0 as its destination)
    let n = t.outGet(af, IPPROTO_TCP, from, port, caddr, 0);
    if (n === NO_CONN) {
      const vaddr = t.hot.subarray(vaddrOff, vaddrOff + 4);
      n = this.#ipvs.ops.newConn(
        af,
        IPPROTO_TCP,
        caddr,
        0,
        vaddr,
        port,
        t.daf(h),
        from,
        port,
        CONN_F_NO_CPORT | CONN_F_NFCT,
        this.#ipvs.ops.dest(h),
        mark,
      );
      if (n === NO_CONN) return APP.DROP;
      this.#ipvs.ops.controlAdd(n, h);
      this.created++;
    }
    // the new text carries the data connection's virtual address and port: the VIP (PASV) or
    // just the port (EPSV)
    const nv = t.vaddrOff(n);
    const vaddr = t.hot.subarray(nv, nv + 4);
    const vport = t.vport(n);
    this.#listen(n);
    const txt = this.#text;
    let len = 0;
    const put = (s: string): void => {
      for (let i = 0; i < s.length; i++) txt[len++] = s.charCodeAt(i);
    };
    if (start < 0 || stop < 0) return APP.DROP;
    if (!ext) {
      const a = vaddr[0]!;
      put(
        `${a >>> 24},${(a >>> 16) & 255},${(a >>> 8) & 255},${a & 255},${vport >>> 8},${vport & 255}`,
      );
    } else put(`|||${vport}|`);
    const oldLen = stop - start;
    const diff = len - oldLen;
    if (!resize(start, stop, txt, len)) return APP.DROP;
    if (diff !== 0) this.#seqUpdate(h, st.seq, 3, CONN_F_OUT_SEQ, seq, diff);
    this.note = `ftp: passive reply rewritten to ${formatIp(af, vaddr)}:${vport} (payload ${diff >= 0 ? '+' : ''}${diff} bytes), data connection prepared (NO_CPORT, LISTEN)`;
    return APP.CHANGED;
  }

  #listen(n: number): void {
    const ipvs = this.#ipvs;
    ipvs.conns.setState(n, TCP_S_LISTEN);
    ipvs.conns.setTimeout(n, ipvs.timeouts.get(IPPROTO_TCP)![TCP_S_LISTEN]!);
    ipvs.ops.put(n);
  }
}

/** Case-insensitive match of ASCII `s` at `b[p]`. */
function ci(b: Uint8Array, p: number, s: string): boolean {
  if (p + s.length > b.length) return false;
  for (let i = 0; i < s.length; i++) {
    let c = b[p + i]!;
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    let d = s.charCodeAt(i);
    if (d >= 0x61 && d <= 0x7a) d -= 0x20;
    if (c !== d) return false;
  }
  return true;
}

/** ASCII digit. */
function digit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * ip_vs_ftp_get_addrport: `pattern` (case-insensitive) must start the payload `b[p, end)`; then
 * `skip` characters are passed (before the first one anything is, and for the old format a digit
 * also ends the search, so the parenthesis of a 227 reply is optional). The old format
 * `h1,h2,h3,h4,p1,p2` ends at the first other character (each number kept modulo 256, as the
 * kernel's bytes do); the extended one is `<d>af<d>addr<d>port<d>` with any printable delimiter
 * `<d>`, the family matching `af`, and for an EPSV reply (`epsv`) both family and address may be
 * omitted (`out` keeps what the caller preset). Writes the address to `out` and the replaced
 * text's bounds to `span`; returns the port, or -1.
 */
function getAddrPort(
  b: Uint8Array,
  p: number,
  end: number,
  pattern: string,
  skip: number,
  ext: boolean,
  epsv: boolean,
  af: number,
  out: Uint32Array,
  span: Int32Array,
): number {
  if (end - p < pattern.length || !ci(b, p, pattern)) return -1;
  let s = p + pattern.length;
  let found = false;
  for (; ; s++) {
    if (s >= end) return -1;
    const c = b[s]!;
    if (!found) {
      if (!ext && digit(c)) break;
      if (c === skip) found = true;
    } else if (c !== skip) break;
  }
  if (!ext) {
    const v = [0, 0, 0, 0, 0, 0];
    let i = 0;
    let q = s;
    for (; ; q++) {
      if (q >= end) return -1;
      const c = b[q]!;
      if (digit(c)) v[i] = (v[i]! * 10 + c - 0x30) & 255;
      else if (c === 0x2c && i < 5) i++;
      else break;
    }
    if (i !== 5) return -1;
    span[0] = s;
    span[1] = q;
    out[0] = ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
    out[1] = out[2] = out[3] = 0;
    return (v[4]! << 8) | v[5]!;
  }
  span[0] = s;
  const d = b[s++]!;
  if (d < 33 || d > 126 || s >= end) return -1;
  if (b[s] === d) {
    // family (and then address) omitted: only in an EPSV reply
    if (!epsv || ++s >= end || b[s] !== d) return -1;
    s++;
  } else {
    if (b[s] !== (af === AF_INET6 ? 0x32 : 0x31)) return -1;
    if (++s >= end || b[s] !== d || ++s >= end) return -1;
    let q = s;
    while (q < end && b[q] !== d) q++;
    if (q >= end) return -1;
    let text = '';
    for (let k = s; k < q; k++) text += String.fromCharCode(b[k]!);
    const words = parseWords(text, af);
    if (!words) return -1;
    out.set(words);
    s = q + 1;
  }
  let port = 0;
  for (; s < end && digit(b[s]!); s++) port = (port * 10 + b[s]! - 0x30) & 0xffff;
  if (s >= end || port === 0 || b[s] !== d) return -1;
  span[1] = s + 1;
  return port;
}

function parseWords(text: string, af: number): Uint32Array | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (af === AF_INET) {
    if (!m) return null;
    const o = m.slice(1).map(Number);
    if (o.some((x) => x > 255)) return null;
    const w = new Uint32Array(4);
    w[0] = ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
    return w;
  }
  return parseV6(text);
}
