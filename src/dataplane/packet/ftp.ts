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
  CONN_F_IN_SEQ,
  CONN_F_NFCT,
  CONN_F_NO_CPORT,
  CONN_F_OUT_SEQ,
  IPPROTO_TCP,
} from '../../core/constants.js';
import type { Ipvs } from '../../core/ipvs.js';
import { TCP_S_ESTABLISHED, TCP_S_LISTEN } from '../../proto/index.js';
import type { PacketView } from '../../packet/view.js';

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

  /** The sequence records of `h` (tests). */
  seqOf(h: number): Int32Array | null {
    return this.#conns.get(h)?.seq ?? null;
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
    // PASV / EPSV anywhere in the payload
    for (let q = p; q + 6 <= end; q++) {
      if (ci(b, q, 'PASV\r\n') && af === AF_INET) {
        st.pasv = PASV_V4;
        this.note = 'ftp: PASV seen, passive reply pending';
        return changed ? APP.CHANGED : APP.SAME;
      }
      if (ci(b, q, 'EPSV')) {
        const c = b[q + 4];
        let ok = c === 0x0d;
        if (c === 0x20 && q + 6 <= end && b[q + 6] === 0x0d)
          ok = (b[q + 5] === 0x31 && af === AF_INET) || (b[q + 5] === 0x32 && af === AF_INET6);
        if (ok) {
          st.pasv = PASV_EXT;
          this.note = 'ftp: EPSV seen, extended passive reply pending';
          return changed ? APP.CHANGED : APP.SAME;
        }
      }
    }
    // PORT / EPRT must start the payload
    const to = this.#addr;
    let port = -1;
    if (af === AF_INET && end - p >= 5 && ci(b, p, 'PORT ')) {
      port = parseHostPort(b, p + 5, end, 0x0d, to);
    } else if (end - p >= 5 && ci(b, p, 'EPRT ')) {
      port = parseExtended(b, p + 5, end, af, to, true);
    }
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
    let port = -1;
    let start = -1;
    let stop = -1;
    if (st.pasv === PASV_V4 && end - p >= 4 && ci(b, p, '227 ')) {
      let q = p + 4;
      while (q < end && b[q] !== 0x28 && !(b[q]! >= 0x30 && b[q]! <= 0x39)) q++;
      if (q < end && b[q] === 0x28) q++;
      start = q;
      port = parseHostPort(b, q, end, 0x29, from);
      if (port < 0) port = parseHostPort(b, q, end, 0x0d, from);
      if (port >= 0) {
        stop = q;
        while (b[stop] !== 0x29 && b[stop] !== 0x0d) stop++;
      }
    } else if (st.pasv === PASV_EXT && end - p >= 4 && ci(b, p, '229 ')) {
      let q = p + 4;
      while (q < end && b[q] !== 0x28) q++;
      if (q < end) {
        start = q + 1;
        port = parseExtended(b, start, end, af, from, false);
        if (port >= 0) {
          // omitted address: the connection's real server
          if (from[0] === 0 && from[1] === 0 && from[2] === 0 && from[3] === 0) {
            const d = t.daddrOff(h);
            from.set(t.cold.subarray(d, d + 4));
          }
          stop = start;
          while (stop < end && b[stop] !== 0x29) stop++;
        }
      }
    }
    if (port < 0) return changed ? APP.CHANGED : APP.SAME;
    const ext = st.pasv === PASV_EXT;
    st.pasv = PASV_NONE;
    const vaddrOff = t.vaddrOff(h);
    const vaddr = t.hot.subarray(vaddrOff, vaddrOff + 4);
    const caddr = t.hot.subarray(t.caddrOff(h), t.caddrOff(h) + 4);
    let n = t.inGet(af, IPPROTO_TCP, caddr, 0, vaddr, port);
    if (n === NO_CONN) {
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
    this.#listen(n);
    // the new text: the VIP (PASV) or just the port (EPSV)
    const txt = this.#text;
    let len = 0;
    const put = (s: string): void => {
      for (let i = 0; i < s.length; i++) txt[len++] = s.charCodeAt(i);
    };
    if (start < 0 || stop < 0) return APP.DROP;
    if (!ext) {
      const a = vaddr[0]!;
      put(
        `${a >>> 24},${(a >>> 16) & 255},${(a >>> 8) & 255},${a & 255},${port >>> 8},${port & 255}`,
      );
    } else put(`|||${port}|`);
    const oldLen = stop - start;
    const diff = len - oldLen;
    if (!resize(start, stop, txt, len)) return APP.DROP;
    if (diff !== 0) this.#seqUpdate(h, st.seq, 3, CONN_F_OUT_SEQ, seq, diff);
    this.note = `ftp: passive reply rewritten to ${formatIp(af, vaddr)}:${port} (payload ${diff >= 0 ? '+' : ''}${diff} bytes), data connection prepared (NO_CPORT, LISTEN)`;
    return APP.CHANGED;
  }

  #listen(n: number): void {
    const ipvs = this.#ipvs;
    ipvs.conns.setState(n, TCP_S_LISTEN);
    ipvs.conns.setTimeout(n, ipvs.timeouts.get(IPPROTO_TCP)![TCP_S_LISTEN]!);
    ipvs.ops.put(n);
  }
}

function put32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
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

/** Parses `h1,h2,h3,h4,p1,p2` up to `term`; writes the IPv4 address; returns the port or -1. */
function parseHostPort(
  b: Uint8Array,
  p: number,
  end: number,
  term: number,
  out: Uint32Array,
): number {
  const v = [0, 0, 0, 0, 0, 0];
  let i = 0;
  let digits = 0;
  let q = p;
  for (; q < end; q++) {
    const c = b[q]!;
    if (c === term) break;
    if (c >= 0x30 && c <= 0x39) {
      v[i] = v[i]! * 10 + c - 0x30;
      if (v[i]! > 255 || ++digits > 3) return -1;
    } else if (c === 0x2c && i < 5 && digits > 0) {
      i++;
      digits = 0;
    } else return -1;
  }
  if (q >= end || i !== 5 || digits === 0) return -1;
  out[0] = ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
  out[1] = out[2] = out[3] = 0;
  return (v[4]! << 8) | v[5]!;
}

/**
 * Parses `|af|addr|port|` (EPRT, `withAddr`) or `|||port|` / `|af|addr|port|` (EPSV reply) with
 * any printable delimiter; the address family must match. Returns the port or -1; `out` gets the
 * address (zeros when omitted).
 */
function parseExtended(
  b: Uint8Array,
  p: number,
  end: number,
  af: number,
  out: Uint32Array,
  withAddr: boolean,
): number {
  if (p >= end) return -1;
  const d = b[p]!;
  if (d < 33 || d > 126) return -1;
  const fields: string[] = [];
  let cur = '';
  let q = p + 1;
  for (; q < end && fields.length < 3; q++) {
    const c = b[q]!;
    if (c === d) {
      fields.push(cur);
      cur = '';
    } else if (c < 33 || c > 126 || cur.length > 45) return -1;
    else cur += String.fromCharCode(c);
  }
  if (fields.length !== 3) return -1;
  const [fam, addr, portText] = fields as [string, string, string];
  out.fill(0);
  if (fam !== '' || addr !== '') {
    if ((fam === '1' && af !== AF_INET) || (fam === '2' && af !== AF_INET6)) return -1;
    if (fam !== '1' && fam !== '2') return -1;
    const words = parseWords(addr, af);
    if (!words) return -1;
    out.set(words);
  } else if (withAddr) return -1;
  if (!/^\d{1,5}$/.test(portText)) return -1;
  const port = Number(portText);
  return port > 0 && port <= 65535 ? port : -1;
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
