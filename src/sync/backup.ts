/**
 * The sync backup (spec §8.5; ip_vs_sync.c ip_vs_process_message, ip_vs_proc_conn and
 * ip_vs_conn.c ip_vs_try_bind_dest): applies the records of a received datagram to the
 * connection table. A record updates the connection it names (activity bit, sequence flags, a
 * destination if it had none) or creates it bound to the destination the rule finds — or
 * unbound, still forwarded with the synced method to the synced real server. Every record sets
 * `in_pkts = sync_threshold`, the state and the timeout, and re-arms the timer. Pure: no sockets.
 */
import { AF_INET6 } from '../core/addr.js';
import { NO_CONN } from '../core/conn.js';
import {
  CONN_F_BACKUP_UPD_MASK,
  CONN_F_FWD_MASK,
  CONN_F_INACTIVE,
  CONN_F_TEMPLATE,
  FWD_MASQ,
} from '../core/constants.js';
import type { Ipvs } from '../core/ipvs.js';
import type { Dest } from '../core/service.js';
import { type DecodeResult, MAX_SYNC_TIMEOUT_SEC, type SyncRecord, decodeMessage } from './wire.js';

/** A template without a v1 timeout lives this long (3 minutes, as ip_vs_proc_conn). */
export const SYNC_TEMPLATE_TIMEOUT_MS = 180_000;

/** What each backup counter counts (HELP of `/metrics`). */
export const BACKUP_COUNTER_HELP: Readonly<Record<keyof SyncBackupCounters, string>> = {
  messages: 'datagrams received',
  dropped: 'datagrams (or their remainders) dropped by a validation rule',
  skipped: 'records skipped (unknown protocol, state, option, persistence engine)',
  applied: 'records applied',
  created: 'records that created a connection',
  stale: 'records ignored as stale',
  tableFull: 'new connections refused because the table was full',
};

/** Counters of one backup (ipvs-ts extension; the kernel only logs). */
export interface SyncBackupCounters {
  /** Datagrams received. */
  messages: number;
  /** Datagrams (or their remainders) dropped by a validation rule. */
  dropped: number;
  /** Records skipped (unknown protocol, state, option, persistence engine). */
  skipped: number;
  /** Records applied. */
  applied: number;
  /** Records that created a connection. */
  created: number;
  /** Records ignored as stale (inactive, for a connection replaced already). */
  stale: number;
  /** New connections refused because the table was full. */
  tableFull: number;
}

function sameAddr(af: number, a: ArrayLike<number>, ao: number, b: ArrayLike<number>): boolean {
  if (a[ao] !== b[0]) return false;
  return af !== AF_INET6 || (a[ao + 1] === b[1] && a[ao + 2] === b[2] && a[ao + 3] === b[3]);
}

/**
 * ip_vs_find_dest: the service of (af, fwmark, protocol, vaddr, vport) and in it the destination
 * (daddr, dport); fwmark services with a non-NAT method look with port 0 first.
 */
export function findSyncDest(
  ipvs: Ipvs,
  af: number,
  daddr: ArrayLike<number>,
  dport: number,
  vaddr: ArrayLike<number>,
  vport: number,
  protocol: number,
  fwmark: number,
  flags: number,
): Dest | null {
  const svc = ipvs.services.find(af, fwmark, protocol, vaddr, vport);
  if (!svc) return null;
  let port = dport;
  if (fwmark && (flags & CONN_F_FWD_MASK) !== FWD_MASQ) port = 0;
  const look = (p: number): Dest | null => {
    for (const d of svc.dests) {
      if (d.af === af && d.port === p && sameAddr(af, d.addr, 0, daddr)) return d;
    }
    return null;
  };
  return look(port) ?? look(port ^ dport);
}

/** A running sync backup. */
export class SyncBackup {
  readonly ipvs: Ipvs;
  /** 0: every message; otherwise only messages of this sync id. */
  readonly syncId: number;
  readonly counters: SyncBackupCounters = {
    messages: 0,
    dropped: 0,
    skipped: 0,
    applied: 0,
    created: 0,
    stale: 0,
    tableFull: 0,
  };

  constructor(ipvs: Ipvs, syncId: number) {
    this.ipvs = ipvs;
    this.syncId = syncId;
  }

  /** One received datagram: validated, then its records applied in order. */
  receive(b: Uint8Array): DecodeResult {
    this.counters.messages++;
    const r = decodeMessage(b, { syncId: this.syncId });
    for (const rec of r.records) this.apply(rec);
    this.counters.skipped += r.skipped.length;
    if (r.drop !== null && r.drop !== 'syncid') {
      this.counters.dropped++;
      this.ipvs.warn('sync-drop', `sync backup: message dropped (${r.drop})`);
    }
    return r;
  }

  /** ip_vs_proc_conn: adds or updates the connection of one record; returns its handle. */
  apply(r: SyncRecord): number {
    const ipvs = this.ipvs;
    const t = ipvs.conns;
    const ops = ipvs.ops;
    const flags0 = r.flags;
    let h: number;
    if (!(flags0 & CONN_F_TEMPLATE)) {
      h = t.inGet(r.af, r.protocol, r.caddr, r.cport, r.vaddr, r.vport);
      if (
        h !== NO_CONN &&
        (t.dport(h) !== r.dport || !sameAddr(t.daf(h), t.cold, t.daddrOff(h), r.daddr))
      ) {
        if (flags0 & CONN_F_INACTIVE) {
          // the end of a connection that was replaced already
          this.counters.stale++;
          return NO_CONN;
        }
        ops.expireNow(h);
        h = NO_CONN;
      }
    } else {
      const pd = r.peData ? r.peData.toString('latin1') : null;
      h = t.templateGet(
        r.af,
        r.protocol,
        r.caddr,
        r.cport,
        r.vaddr,
        r.vport,
        pd === null ? null : (x) => ops.peData(x) === pd,
      );
    }
    if (h !== NO_CONN) {
      const dest = ops.dest(h);
      const cur = t.flags(h);
      if ((cur ^ flags0) & CONN_F_INACTIVE && !(flags0 & CONN_F_TEMPLATE) && dest) {
        if (flags0 & CONN_F_INACTIVE) {
          dest.activeConns--;
          dest.inactConns++;
        } else {
          dest.activeConns++;
          dest.inactConns--;
        }
      }
      t.setFlags(h, ((flags0 & CONN_F_BACKUP_UPD_MASK) | (cur & ~CONN_F_BACKUP_UPD_MASK)) >>> 0);
      if (!dest) this.tryBindDest(h);
    } else {
      const dest = findSyncDest(
        ipvs,
        r.af,
        r.daddr,
        r.dport,
        r.vaddr,
        r.vport,
        r.protocol,
        r.fwmark,
        flags0,
      );
      h = ops.newConn(
        r.af,
        r.protocol,
        r.caddr,
        r.cport,
        r.vaddr,
        r.vport,
        r.af,
        r.daddr,
        r.dport,
        flags0,
        dest,
        r.fwmark,
      );
      if (h === NO_CONN) {
        this.counters.tableFull++;
        return NO_CONN;
      }
      this.counters.created++;
      if (flags0 & CONN_F_TEMPLATE && r.peData && r.peName)
        ops.setPe(h, r.peName, r.peData.toString('latin1'));
    }
    // the data plane binds its helper (FTP) and takes the sequence data
    ipvs.syncData?.synced(h, r.inSeq && r.outSeq ? { in: r.inSeq, out: r.outSeq } : null);
    t.setInPkts(h, ipvs.sysctl.sync_threshold[0]);
    t.setState(h, r.state);
    t.setOldState(h, r.state);
    if (r.timeout) {
      t.setTimeout(h, Math.min(r.timeout, MAX_SYNC_TIMEOUT_SEC) * 1000);
    } else {
      const table = ipvs.timeouts.get(r.protocol);
      t.setTimeout(
        h,
        !(flags0 & CONN_F_TEMPLATE) && table ? table[r.state]! : SYNC_TEMPLATE_TIMEOUT_MS,
      );
    }
    ops.put(h);
    this.counters.applied++;
    return h;
  }

  /** ip_vs_try_bind_dest: binds an unbound synced connection once its destination exists. */
  tryBindDest(h: number): void {
    const ipvs = this.ipvs;
    const t = ipvs.conns;
    if (t.dest(h) >= 0) return;
    const af = t.af(h);
    const n = af === AF_INET6 ? 4 : 1;
    const d = new Uint32Array(4);
    const v = new Uint32Array(4);
    for (let i = 0; i < n; i++) {
      d[i] = t.cold[t.daddrOff(h) + i]!;
      v[i] = t.hot[t.vaddrOff(h) + i]!;
    }
    const dest = findSyncDest(
      ipvs,
      af,
      d,
      t.dport(h),
      v,
      t.vport(h),
      t.protocol(h),
      t.fwmark(h),
      t.flags(h),
    );
    if (dest) ipvs.ops.bind(h, dest);
  }
}
