/**
 * The sync master (spec §8.4; ip_vs_sync.c ip_vs_sync_conn, sync_conn_needed, the send threads):
 * decides whether a counted packet makes its connection worth sending, appends the record to the
 * current buffer of the connection's "thread" (one per sync port), queues full buffers, and
 * hands queued buffers to `send` with the kernel's timing: 20 ms after the first buffer is
 * queued, at once when 8 are waiting, and a partly filled buffer once it is 2 s old (each thread
 * looks at least every second). Pure: the clock is the Ipvs clock, timers and the socket are
 * injected, so tests drive it with a fake clock.
 */
import { AF_INET, AF_INET6 } from '../core/addr.js';
import { NO_CONN } from '../core/conn.js';
import {
  CONN_F_ONE_PACKET,
  CONN_F_SEQ_MASK,
  CONN_F_TEMPLATE,
  IPPROTO_SCTP,
  IPPROTO_TCP,
} from '../core/constants.js';
import type { Ipvs, SyncHook } from '../core/ipvs.js';
import {
  SCTP_S_CLOSED,
  SCTP_S_ESTABLISHED,
  SCTP_S_SHUTDOWN_ACK_SENT,
  SCTP_S_SHUTDOWN_RECEIVED,
  SCTP_S_SHUTDOWN_SENT,
  TCP_S_CLOSE,
  TCP_S_CLOSE_WAIT,
  TCP_S_ESTABLISHED,
  TCP_S_FIN_WAIT,
  TCP_S_TIME_WAIT,
} from '../proto/index.js';
import { type SyncConn, SyncMessage, recordLengthV0, recordLengthV1 } from './wire.js';

/** IPVS_SYNC_WAKEUP_RATE: queued buffers that wake the sender at once. */
export const SYNC_WAKEUP_RATE = 8;
/** IPVS_SYNC_SEND_DELAY: the sender wakes this long after the first buffer was queued (ms). */
export const SYNC_SEND_DELAY_MS = 20;
/** IPVS_SYNC_CHECK_PERIOD: the sender looks at least this often (ms). */
export const SYNC_CHECK_PERIOD_MS = 1000;
/** IPVS_SYNC_FLUSH_TIME: a partly filled buffer is sent once it is this old (ms). */
export const SYNC_FLUSH_TIME_MS = 2000;
/** IPVS_SYNC_PORTS_MAX. */
export const SYNC_PORTS_MAX = 64;

/** TCP states worth syncing (ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT, TIME_WAIT). */
const TCP_SYNC_STATES =
  (1 << TCP_S_ESTABLISHED) |
  (1 << TCP_S_FIN_WAIT) |
  (1 << TCP_S_CLOSE) |
  (1 << TCP_S_CLOSE_WAIT) |
  (1 << TCP_S_TIME_WAIT);
/** SCTP states worth syncing. */
const SCTP_SYNC_STATES =
  (1 << SCTP_S_ESTABLISHED) |
  (1 << SCTP_S_SHUTDOWN_SENT) |
  (1 << SCTP_S_SHUTDOWN_RECEIVED) |
  (1 << SCTP_S_SHUTDOWN_ACK_SENT) |
  (1 << SCTP_S_CLOSED);

/** Timers as the master uses them (setTimeout in the daemon, a fake in tests). */
export interface SyncTimers {
  set(ms: number, fn: () => void): unknown;
  clear(t: unknown): void;
}

/** Settings of a running master. */
export interface SyncMasterConfig {
  syncId: number;
  /** Largest datagram, header included (sync_maxlen). */
  maxlen: number;
  /** Threads / sockets (sync_ports clamped to 1..64 when the first daemon started). */
  ports: number;
}

/** Counters of one master (ipvs-ts extension; the kernel only logs). */
/** What each master counter counts (HELP of `/metrics`). */
export const MASTER_COUNTER_HELP: Readonly<Record<keyof SyncMasterCounters, string>> = {
  records: 'records appended to buffers',
  sent: 'datagrams sent',
  queueFull: 'buffers dropped because the send queue held sync_qlen_max',
};

export interface SyncMasterCounters {
  /** Records appended to buffers. */
  records: number;
  /** Datagrams handed to the socket. */
  sent: number;
  /** Buffers discarded because the queue held sync_qlen_max already. */
  queueFull: number;
}

interface Thread {
  buff: SyncMessage | null;
  queue: SyncMessage[];
  /** Buffers queued since the queue was last empty (sync_queue_delay). */
  delay: number;
  wakeWork: unknown;
  poll: unknown;
  wakeSoon: unknown;
}

/**
 * `sync_conn_needed`: whether the connection `h`, whose `in_pkts` is now `pkts`, should be sent.
 * On yes it records the send (`old_state`, the end time in `endtimes[h]`).
 */
export function syncConnNeeded(
  ipvs: Ipvs,
  endtimes: Float64Array,
  h: number,
  pkts: number,
): boolean {
  const t = ipvs.conns;
  const sc = ipvs.sysctl;
  const orig = endtimes[h]!;
  const now = ipvs.now();
  const timeout = t.timeout(h);
  // the would-be end time, its two low bits kept for the retry counter
  let n = Math.floor((now + timeout) / 4) * 4;
  const f = t.flags(h);
  let force = false;
  let set = false;
  if (f & CONN_F_TEMPLATE) force = false;
  else if (sc.sync_persist_mode && inPersistence(ipvs, h)) return false;
  else {
    const proto = t.protocol(h);
    const st = t.state(h);
    if (proto === IPPROTO_TCP || proto === IPPROTO_SCTP) {
      const states = proto === IPPROTO_TCP ? TCP_SYNC_STATES : SCTP_SYNC_STATES;
      if (!((1 << st) & states)) return false;
      force = st !== t.oldState(h);
      const est = proto === IPPROTO_TCP ? TCP_S_ESTABLISHED : SCTP_S_ESTABLISHED;
      if (force && st !== est) set = true;
    }
  }
  if (!set) {
    const refresh = sc.sync_refresh_period * 1000;
    if (refresh > 0) {
      const diff = n - orig;
      const minDiff = Math.max(Math.floor(timeout / 2), 10_000);
      if (Math.abs(diff) < Math.min(refresh, minDiff)) {
        const retries = orig % 4;
        if (retries >= sc.sync_retries) return false;
        // retry only once an eighth of the refresh period has passed since the last send
        if (now < orig - timeout + Math.floor(refresh / 8)) return false;
        n += retries + 1;
      }
    }
    const [threshold, period] = sc.sync_threshold;
    if (period > 0) {
      if (!(f & CONN_F_TEMPLATE) && pkts % period !== threshold) return false;
    } else if (!refresh && pkts !== threshold) return false;
  }
  t.setOldState(h, t.state(h));
  endtimes[h] = n;
  return true;
}

/** Whether `h` hangs under a persistence template (in_persistence). */
function inPersistence(ipvs: Ipvs, h: number): boolean {
  const t = ipvs.conns;
  for (let c = t.control(h), i = 0; c !== NO_CONN && i < 8; c = t.control(c), i++) {
    if (t.flags(c) & CONN_F_TEMPLATE) return true;
  }
  return false;
}

/** A running sync master. */
export class SyncMaster implements SyncHook {
  readonly ipvs: Ipvs;
  readonly config: SyncMasterConfig;
  readonly counters: SyncMasterCounters = { records: 0, sent: 0, queueFull: 0 };
  /** `sync_endtime` of every connection handle (kept by the core: ConnOps.syncEndtime). */
  readonly endtimes: Float64Array;
  readonly #send: (id: number, msg: Buffer) => void;
  readonly #timers: SyncTimers;
  readonly #threads: Thread[] = [];
  readonly #mask: number;
  #running = true;
  // scratch record, reused for every connection
  readonly #c: SyncConn;

  constructor(
    ipvs: Ipvs,
    config: SyncMasterConfig,
    send: (id: number, msg: Buffer) => void,
    timers: SyncTimers,
  ) {
    this.ipvs = ipvs;
    this.config = config;
    this.#send = send;
    this.#timers = timers;
    this.#mask = config.ports - 1;
    this.endtimes = ipvs.ops.syncEndtime;
    for (let i = 0; i < config.ports; i++) {
      const th: Thread = {
        buff: null,
        queue: [],
        delay: 0,
        wakeWork: null,
        poll: null,
        wakeSoon: null,
      };
      this.#threads.push(th);
      this.#armPoll(i);
    }
    this.#c = {
      af: AF_INET,
      protocol: 0,
      flags: 0,
      state: 0,
      cport: 0,
      vport: 0,
      dport: 0,
      fwmark: 0,
      timeout: 0,
      caddr: new Uint32Array(4),
      vaddr: new Uint32Array(4),
      daddr: new Uint32Array(4),
      inSeq: null,
      outSeq: null,
      peData: null,
      peName: null,
    };
  }

  /** The thread (socket) that sends connection `h`: the same one for the connection's life. */
  threadOf(h: number): number {
    return (Math.imul(h, 0x9e3779b1) >>> 16) & this.#mask;
  }

  /** Buffers waiting in thread `id`'s queue (for tests and metrics). */
  queued(id: number): number {
    return this.#threads[id]!.queue.length;
  }

  /** Whether thread `id` has a partly filled current buffer. */
  hasCurrent(id: number): boolean {
    return this.#threads[id]!.buff !== null;
  }

  /** ip_vs_sync_conn: the incoming path counted a packet of `h`. */
  syncConn(h: number, pkts: number): void {
    if (!this.#running) return;
    const ipvs = this.ipvs;
    const t = ipvs.conns;
    if (ipvs.sysctl.sync_version === 0) {
      this.#syncV0(h, pkts);
      return;
    }
    let cp = h;
    // a one-packet connection is not sent itself; its controller may be
    let skip = (t.flags(cp) & CONN_F_ONE_PACKET) !== 0;
    for (let depth = 0; depth < 8; depth++) {
      if (!skip && syncConnNeeded(ipvs, this.endtimes, cp, pkts)) {
        if (!this.#addV1(cp)) return;
      }
      skip = false;
      const ct = t.control(cp);
      if (ct === NO_CONN) return;
      if (t.flags(ct) & CONN_F_TEMPLATE) {
        t.setInPkts(ct, t.inPkts(ct) + 1);
        pkts = t.inPkts(ct);
      } else pkts = ipvs.sysctl.sync_threshold[0];
      cp = ct;
    }
  }

  /** ip_vs_sync_conn_v0: IPv4 only, no one-packet connections, controller after a send. */
  #syncV0(h: number, pkts: number): void {
    const ipvs = this.ipvs;
    const t = ipvs.conns;
    if (t.af(h) !== AF_INET) return;
    if (t.flags(h) & CONN_F_ONE_PACKET) return;
    if (!syncConnNeeded(ipvs, this.endtimes, h, pkts)) return;
    const c = this.#fill(h);
    this.#buffer(h, 0, recordLengthV0(c)).addV0(c);
    this.counters.records++;
    const ct = t.control(h);
    if (ct === NO_CONN) return;
    let p: number;
    if (t.flags(ct) & CONN_F_TEMPLATE) {
      t.setInPkts(ct, t.inPkts(ct) + 1);
      p = t.inPkts(ct);
    } else p = ipvs.sysctl.sync_threshold[0];
    this.syncConn(ct, p);
  }

  /** Appends `h` as a v1 record; false when it must not be sent (PE data without a destination). */
  #addV1(h: number): boolean {
    const ipvs = this.ipvs;
    const c = this.#fill(h);
    if (c.peData && ipvs.conns.dest(h) < 0) {
      ipvs.warn('sync-pe', 'SYNC, connection pe_data invalid');
      return false;
    }
    this.#buffer(h, 1, recordLengthV1(c)).addV1(c);
    this.counters.records++;
    return true;
  }

  /**
   * The buffer of `h`'s thread, ready for a record of `len` bytes in format `version`: one of
   * the other format (a v1 buffer reads as "0 records" to v0) or without room is queued first.
   */
  #buffer(h: number, version: 0 | 1, len: number): SyncMessage {
    const th = this.#threads[this.threadOf(h)]!;
    let buff = th.buff;
    // a v0 count is one byte: at 256 records it reads 0 and the buffer goes out as it is
    if (buff && (buff.version !== version || !buff.fits(len) || (version === 0 && !buff.count))) {
      this.#queueTail(th);
      buff = null;
    }
    if (!buff) {
      buff = new SyncMessage(version, this.config.syncId, this.config.maxlen, len, this.ipvs.now());
      th.buff = buff;
    }
    return buff;
  }

  /** Fills the scratch record from connection `h`. */
  #fill(h: number): SyncConn {
    const ipvs = this.ipvs;
    const t = ipvs.conns;
    const c = this.#c;
    const af = t.af(h);
    c.af = af;
    c.protocol = t.protocol(h);
    c.flags = t.flags(h);
    c.state = t.state(h);
    c.cport = t.cport(h);
    c.vport = t.vport(h);
    c.dport = t.dport(h);
    c.fwmark = t.fwmark(h);
    c.timeout = Math.floor(t.timeout(h) / 1000);
    const ca = c.caddr as Uint32Array;
    const va = c.vaddr as Uint32Array;
    const da = c.daddr as Uint32Array;
    const n = af === AF_INET6 ? 4 : 1;
    const co = t.caddrOff(h);
    const vo = t.vaddrOff(h);
    const dOff = t.daddrOff(h);
    for (let i = 0; i < n; i++) {
      ca[i] = t.hot[co + i]!;
      va[i] = t.hot[vo + i]!;
      da[i] = t.cold[dOff + i]!;
    }
    c.inSeq = c.outSeq = null;
    // IN_SEQ / OUT_SEQ data comes from the data plane (the FTP helper); zeros without one
    if (c.flags & CONN_F_SEQ_MASK && ipvs.syncData) {
      const s = ipvs.syncData.seq(h);
      if (s) {
        c.inSeq = s.in;
        c.outSeq = s.out;
      }
    }
    const pd = ipvs.ops.peData(h);
    if (pd) {
      c.peData = Buffer.from(pd, 'latin1');
      c.peName = ipvs.ops.peName(h);
    } else {
      c.peData = null;
      c.peName = null;
    }
    return c;
  }

  /** sb_queue_tail: the current buffer joins the queue (or is discarded when it is full). */
  #queueTail(th: Thread): void {
    const sb = th.buff!;
    th.buff = null;
    if (th.queue.length >= this.ipvs.sysctl.sync_qlen_max) {
      // sb_queue_tail drops it without a word; we say so, once a second
      this.counters.queueFull++;
      this.ipvs.warn(
        'sync-queue-full',
        `sync: send queue full (sync_qlen_max ${this.ipvs.sysctl.sync_qlen_max}): ${this.counters.queueFull} buffers of records dropped so far`,
      );
      return;
    }
    const id = this.#threads.indexOf(th);
    if (th.queue.length === 0 && th.wakeWork === null) {
      th.wakeWork = this.#timers.set(SYNC_SEND_DELAY_MS, () => {
        th.wakeWork = null;
        // master_wakeup_work_handler
        if (th.queue.length && th.delay < SYNC_WAKEUP_RATE) {
          th.delay = SYNC_WAKEUP_RATE;
          this.#wake(id);
        }
      });
    }
    th.queue.push(sb);
    if (++th.delay === SYNC_WAKEUP_RATE) this.#wakeSoon(id);
  }

  /** wake_up_process from the packet path: the thread runs right after the current work. */
  #wakeSoon(id: number): void {
    const th = this.#threads[id]!;
    if (th.wakeSoon !== null) return;
    th.wakeSoon = this.#timers.set(0, () => {
      th.wakeSoon = null;
      this.#wake(id);
    });
  }

  #armPoll(id: number): void {
    const th = this.#threads[id]!;
    if (th.poll !== null) this.#timers.clear(th.poll);
    th.poll = this.#timers.set(SYNC_CHECK_PERIOD_MS, () => {
      th.poll = null;
      this.#wake(id);
    });
  }

  /** One run of the send thread: everything queued, then a current buffer older than 2 s. */
  #wake(id: number): void {
    if (!this.#running) return;
    const th = this.#threads[id]!;
    for (;;) {
      let sb = th.queue.shift() ?? null;
      if (sb && th.queue.length === 0) th.delay = 0;
      if (!sb && th.buff && this.ipvs.now() - th.buff.firstUse >= SYNC_FLUSH_TIME_MS) {
        sb = th.buff;
        th.buff = null;
      }
      if (!sb) break;
      this.#send(id, sb.bytes());
      this.counters.sent++;
    }
    this.#armPoll(id);
  }

  /** Runs every thread now (tests; the daemon never needs it). */
  runThreads(): void {
    for (let i = 0; i < this.#threads.length; i++) this.#wake(i);
  }

  /**
   * Stops the master: timers cancelled, queued and current buffers discarded unsent, as
   * stop_sync_thread does.
   */
  stop(): void {
    this.#running = false;
    for (const th of this.#threads) {
      for (const k of ['wakeWork', 'poll', 'wakeSoon'] as const) {
        if (th[k] !== null) this.#timers.clear(th[k]);
        th[k] = null;
      }
      th.queue.length = 0;
      th.buff = null;
    }
  }
}
