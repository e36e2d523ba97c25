/**
 * The daemon side of connection sync (spec §8.1; ip_vs_sync.c start_sync_thread /
 * stop_sync_thread): when `--start-daemon` runs it looks the interface up, works out the
 * effective sync_maxlen, opens every socket of the role and only then lets the command be
 * applied; it wires the master into `Ipvs.syncMaster` and the backup's sockets into
 * `SyncBackup.receive`. `--stop-daemon` and the daemon's own stop close them again.
 */
import { AF_INET6, parseIp } from '../core/addr.js';
import type { Ipvs } from '../core/ipvs.js';
import type { DaemonSpec } from '../ctl/types.js';
import { SyncBackup } from './backup.js';
import { SYNC_PORTS_MAX, SyncMaster, type SyncTimers } from './master.js';
import {
  type BackupSockets,
  type MasterSockets,
  type SyncIface,
  type SyncSocketSpec,
  openBackupSockets,
  openMasterSockets,
  syncIface,
} from './transport.js';
import { SYNC_GROUP, SYNC_PORT } from './wire.js';

/** A daemon whose sockets are open but which is not running yet. */
export interface PreparedDaemon {
  /** The settings to apply (sync_maxlen filled in). */
  spec: DaemonSpec;
  /** The command was applied: start the role. */
  commit(): void;
  /** The command failed: close the sockets. */
  abort(): void;
}

/** What the runner opens sockets with (replaceable in tests). */
export interface SyncIo {
  iface(name: string): SyncIface;
  openMaster(
    spec: SyncSocketSpec,
    log: (m: string) => void,
  ): Promise<Pick<MasterSockets, 'send' | 'close'>>;
  openBackup(
    spec: SyncSocketSpec,
    onMessage: (msg: Buffer) => void,
    log: (m: string) => void,
  ): Promise<Pick<BackupSockets, 'close'>>;
}

const REAL_IO: SyncIo = {
  iface: syncIface,
  openMaster: openMasterSockets,
  openBackup: openBackupSockets,
};

const REAL_TIMERS: SyncTimers = {
  set(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear(t) {
    clearTimeout(t as NodeJS.Timeout);
  },
};

/** The running sync roles of one daemon. */
export class SyncRunner {
  readonly ipvs: Ipvs;
  readonly #log: (m: string) => void;
  readonly #io: SyncIo;
  readonly #timers: SyncTimers;
  #master: { core: SyncMaster; socks: Pick<MasterSockets, 'close'> } | null = null;
  #backup: { core: SyncBackup; socks: Pick<BackupSockets, 'close'> } | null = null;
  /** Threads per role, fixed while any role runs (threads_mask + 1). */
  #ports = 0;

  constructor(
    ipvs: Ipvs,
    log: (m: string) => void,
    opts: { io?: SyncIo; timers?: SyncTimers } = {},
  ) {
    this.ipvs = ipvs;
    this.#log = log;
    this.#io = opts.io ?? REAL_IO;
    this.#timers = opts.timers ?? REAL_TIMERS;
  }

  /** The running master, if any. */
  get master(): SyncMaster | null {
    return this.#master?.core ?? null;
  }

  /** The running backup, if any. */
  get backup(): SyncBackup | null {
    return this.#backup?.core ?? null;
  }

  /** NoDeviceError (ENODEV) when the interface does not exist. */
  checkInterface(name: string): void {
    this.#io.iface(name);
  }

  /**
   * Opens the sockets of a daemon about to start. Throws coded errors (ENODEV for an unknown
   * interface, socket errors) with nothing left open.
   */
  async prepare(d: DaemonSpec): Promise<PreparedDaemon> {
    const iface = this.#io.iface(d.mcastIfn);
    const group = d.mcastGroup ?? SYNC_GROUP;
    const g = parseIp(group);
    const hlen = g && g.af === AF_INET6 ? 48 : 28;
    const backup = d.state === 2;
    const spec: DaemonSpec = { ...d };
    // 0 means the default, as in start_sync_thread
    if (!d.syncMaxlen) {
      const mtu = backup ? Math.min(Math.max(iface.mtu, 1500), 65535) : 1500;
      spec.syncMaxlen = mtu - hlen;
    }
    const ports = this.#ports || Math.min(Math.max(this.ipvs.sysctl.sync_ports, 1), SYNC_PORTS_MAX);
    const sock: SyncSocketSpec = {
      iface,
      group,
      port: d.mcastPort || SYNC_PORT,
      ttl: d.mcastTtl || 1,
      count: ports,
      sockSize: this.ipvs.sysctl.sync_sock_size,
      maxlen: Math.max(1024, Math.min(spec.syncMaxlen!, 65535 - hlen)),
    };
    const log = this.#log;
    if (backup) {
      let core: SyncBackup | null = null;
      const socks = await this.#io.openBackup(sock, (m) => core?.receive(m), log);
      return {
        spec,
        commit: () => {
          core = new SyncBackup(this.ipvs, d.syncId);
          this.#backup = { core, socks };
          this.#ports = ports;
          log(
            `sync thread started: state = BACKUP, mcast_ifn = ${d.mcastIfn}, syncid = ${d.syncId}, ports = ${ports}`,
          );
        },
        abort: () => socks.close(),
      };
    }
    const socks = await this.#io.openMaster(sock, log);
    return {
      spec,
      commit: () => {
        const eff = this.ipvs.daemons.master;
        const core = new SyncMaster(
          this.ipvs,
          { syncId: d.syncId, maxlen: eff?.syncMaxlen ?? spec.syncMaxlen!, ports },
          (id, msg) => socks.send(id, msg),
          this.#timers,
        );
        this.#master = { core, socks };
        this.#ports = ports;
        this.ipvs.syncMaster = core;
        log(
          `sync thread started: state = MASTER, mcast_ifn = ${d.mcastIfn}, syncid = ${d.syncId}, ports = ${ports}`,
        );
      },
      abort: () => socks.close(),
    };
  }

  /** Closes a role after core stopped it (`--stop-daemon`). */
  stopped(state: 1 | 2): void {
    if (state === 1 && this.#master) {
      if (this.ipvs.syncMaster === this.#master.core) this.ipvs.syncMaster = null;
      this.#master.core.stop();
      this.#master.socks.close();
      this.#master = null;
      this.#log('stopping master sync thread');
    } else if (state === 2 && this.#backup) {
      this.#backup.socks.close();
      this.#backup = null;
      this.#log('stopping backup sync thread');
    }
    if (!this.#master && !this.#backup) this.#ports = 0;
  }

  /** Closes every role (the daemon stops; the recorded settings stay for the state file). */
  close(): void {
    this.stopped(1);
    this.stopped(2);
  }
}
