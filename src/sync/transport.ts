/**
 * The sync daemon's UDP multicast sockets (spec §8.1; ip_vs_sync.c make_send_sock,
 * make_receive_sock), with node:dgram. Master: one socket per sync port, bound to the
 * interface's primary IPv4 address (IPv4 groups), multicast out of that interface, loop off, the
 * configured TTL, SNDBUF = sync_sock_size when set, connected to group:port+i. Backup: one socket
 * per port bound to group:port+i with address reuse, the group joined on the interface,
 * RCVBUF = sync_sock_size when set. Opening is all or nothing: on any failure every socket made
 * so far is closed and a coded error says why.
 */
import { type Socket, createSocket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { NoDeviceError, SyncNoAddressError, SyncSocketError } from '../core/errors.js';

/** What the sync daemon needs to know about its interface. */
export interface SyncIface {
  name: string;
  /** The first IPv4 address of universe scope (inet_select_addr), or null. */
  ipv4: string | null;
  /**
   * An IPv4 address that names the interface to the multicast calls (which take an address where
   * the kernel's sync threads pass the interface index): `ipv4`, else any, host scope included
   * (127.0.0.1 on lo); null when it has none.
   */
  mcast4: string | null;
  /** Whether the interface has an IPv6 address (a link needs one to join an IPv6 group). */
  ipv6: boolean;
  /** MTU (1500 when it cannot be read). */
  mtu: number;
}

/**
 * Looks the interface up (in the daemon's network namespace): NoDeviceError when it does not
 * exist (ENODEV, as start_sync_thread).
 */
export function syncIface(name: string): SyncIface {
  const addrs = networkInterfaces()[name];
  const sys = `/sys/class/net/${name}`;
  const inSys = !name.includes('/') && name !== '.' && name !== '..' && existsSync(sys);
  if (!addrs && !inSys) throw new NoDeviceError(`Unknown mcast interface: ${name}`);
  let mtu = 1500;
  if (inSys) {
    try {
      const m = Number.parseInt(readFileSync(`${sys}/mtu`, 'utf8'), 10);
      if (Number.isFinite(m) && m > 0) mtu = m;
    } catch {
      // keep 1500
    }
  }
  // host-scope (127/8) and link-scope (169.254/16) addresses are not what inet_select_addr picks
  const all4 = (addrs ?? []).filter((a) => a.family === 'IPv4');
  const v4 = all4.find((a) => !a.address.startsWith('127.') && !a.address.startsWith('169.254.'));
  return {
    name,
    ipv4: v4 ? v4.address : null,
    mcast4: v4 ? v4.address : (all4[0]?.address ?? null),
    ipv6: (addrs ?? []).some((a) => a.family === 'IPv6'),
    mtu,
  };
}

/** Socket settings of one role. */
export interface SyncSocketSpec {
  iface: SyncIface;
  /** Group address text (IPv4 or IPv6). */
  group: string;
  port: number;
  ttl: number;
  /** Sockets to open: ports `port … port + count - 1`. */
  count: number;
  /** sync_sock_size: SNDBUF (master) / RCVBUF (backup) when > 0. */
  sockSize: number;
  /** Largest datagram the backup reads (longer ones are cut, then fail the size check). */
  maxlen: number;
}

/** strerror texts of the errors a socket call can end with. */
const STRERROR: Readonly<Record<string, string>> = {
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EINVAL: 'Invalid argument',
  ENODEV: 'No such device',
  ENOBUFS: 'No buffer space available',
  ENETUNREACH: 'Network is unreachable',
  EAFNOSUPPORT: 'Address family not supported by protocol',
};

function socketError(e: unknown, what: string): SyncSocketError {
  const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
  const errno = /^E[A-Z]+$/.test(code) ? code : 'EIO';
  const text = STRERROR[errno] ?? (e instanceof Error ? e.message : String(e));
  return new SyncSocketError(errno, text, `${what}: ${text}`);
}

function isV6(group: string): boolean {
  return group.includes(':');
}

function bindAsync(s: Socket, port: number, address: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    s.once('error', onError);
    s.bind({ port, ...(address ? { address } : {}), exclusive: true }, () => {
      s.off('error', onError);
      resolve();
    });
  });
}

function connectAsync(s: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    s.connect(port, address, (e?: Error) => (e ? reject(e) : resolve()));
  });
}

function closeAll(socks: Socket[]): void {
  for (const s of socks) {
    try {
      s.close();
    } catch {
      // closed already
    }
  }
}

/** The master's open sockets. */
export class MasterSockets {
  readonly #socks: Socket[];
  readonly #log: (msg: string) => void;
  #lastError = 0;

  constructor(socks: Socket[], log: (msg: string) => void) {
    this.#socks = socks;
    this.#log = log;
  }

  /** Sends one datagram from thread `id`'s socket (non-blocking; errors logged, at most 1/s). */
  send(id: number, msg: Buffer): void {
    // the buffer is not reused by the master, so the socket may keep it until sent
    this.#socks[id]!.send(msg, (e) => {
      if (!e) return;
      const now = Date.now();
      if (now - this.#lastError < 1000) return;
      this.#lastError = now;
      this.#log(`sync master: send error: ${e.message}`);
    });
  }

  /** Local address of socket `id` (tests). */
  address(id: number): { address: string; port: number } {
    return this.#socks[id]!.address();
  }

  close(): void {
    closeAll(this.#socks);
  }
}

/** Opens the master's sockets (make_send_sock for each port). */
export async function openMasterSockets(
  spec: SyncSocketSpec,
  log: (msg: string) => void,
): Promise<MasterSockets> {
  const v6 = isV6(spec.group);
  const socks: Socket[] = [];
  try {
    for (let i = 0; i < spec.count; i++) {
      const s = createSocket({
        type: v6 ? 'udp6' : 'udp4',
        ...(spec.sockSize > 0 ? { sendBufferSize: spec.sockSize } : {}),
      });
      socks.push(s);
      let bindAddr: string | undefined;
      if (!v6) {
        bindAddr = spec.iface.ipv4 ?? '0.0.0.0';
        if (!spec.iface.ipv4)
          log(
            `sync master: no IPv4 address on ${spec.iface.name}: binding to 0.0.0.0 (You probably need to specify IP address on multicast interface.)`,
          );
      }
      try {
        await bindAsync(s, 0, bindAddr);
      } catch (e) {
        throw socketError(e, `Error binding address of the mcast interface ${spec.iface.name}`);
      }
      try {
        // the device, named by any of its addresses (the kernel's set_mcast_if takes its index)
        s.setMulticastInterface(v6 ? `::%${spec.iface.name}` : (spec.iface.mcast4 ?? '0.0.0.0'));
        s.setMulticastLoopback(false);
        s.setMulticastTTL(spec.ttl);
      } catch (e) {
        throw socketError(e, 'Error setting outbound mcast interface');
      }
      try {
        await connectAsync(s, spec.port + i, v6 ? `${spec.group}%${spec.iface.name}` : spec.group);
      } catch (e) {
        throw socketError(e, 'Error connecting to the multicast addr');
      }
      s.on('error', (e) => log(`sync master: socket error: ${e.message}`));
      s.unref();
    }
  } catch (e) {
    closeAll(socks);
    throw e;
  }
  return new MasterSockets(socks, log);
}

/** The backup's open sockets. */
export class BackupSockets {
  readonly #socks: Socket[];

  constructor(socks: Socket[]) {
    this.#socks = socks;
  }

  close(): void {
    closeAll(this.#socks);
  }
}

/** Opens the backup's sockets (make_receive_sock for each port); `onMessage` gets each datagram. */
export async function openBackupSockets(
  spec: SyncSocketSpec,
  onMessage: (msg: Buffer) => void,
  log: (msg: string) => void,
): Promise<BackupSockets> {
  const v6 = isV6(spec.group);
  if (!v6 && !spec.iface.mcast4)
    throw new SyncNoAddressError(
      `sync backup: interface ${spec.iface.name} has no IPv4 address to join ${spec.group} with`,
    );
  const socks: Socket[] = [];
  try {
    for (let i = 0; i < spec.count; i++) {
      const s = createSocket({
        type: v6 ? 'udp6' : 'udp4',
        reuseAddr: true,
        ...(spec.sockSize > 0 ? { recvBufferSize: spec.sockSize } : {}),
      });
      socks.push(s);
      const group = v6 ? `${spec.group}%${spec.iface.name}` : spec.group;
      try {
        await bindAsync(s, spec.port + i, group);
      } catch (e) {
        throw socketError(e, 'Error binding to the multicast addr');
      }
      try {
        s.addMembership(spec.group, v6 ? `::%${spec.iface.name}` : spec.iface.mcast4!);
      } catch (e) {
        throw socketError(e, 'Error joining to the multicast group');
      }
      s.on('message', (msg: Buffer) =>
        onMessage(msg.length > spec.maxlen ? msg.subarray(0, spec.maxlen) : msg),
      );
      s.on('error', (e) => log(`sync backup: socket error: ${e.message}`));
      s.unref();
    }
  } catch (e) {
    closeAll(socks);
    throw e;
  }
  return new BackupSockets(socks);
}
