/**
 * Interface facts and prerequisite checks. The daemon calls `checkPacketPrerequisites(iface)`
 * before opening a packet data plane: it throws IoNativeMissingError, IoNotRootError or
 * IoNoInterfaceError with a message that says what to do.
 */
import { existsSync } from 'node:fs';
import { IoNoInterfaceError, IoNotRootError, fromNative } from './errors.js';
import { loadNative } from './native.js';

/** IFF_* flags of SIOCGIFFLAGS. */
export const IFF = {
  UP: 0x1,
  BROADCAST: 0x2,
  LOOPBACK: 0x8,
  POINTOPOINT: 0x10,
  RUNNING: 0x40,
  NOARP: 0x80,
} as const;

/** ARPHRD_* hardware types. */
export const ARPHRD = { ETHER: 1, LOOPBACK: 772, NONE: 0xfffe } as const;

export interface InterfaceInfo {
  name: string;
  index: number;
  /** "aa:bb:cc:dd:ee:ff" (all zero for loopback and TUN). */
  mac: string;
  macBytes: Uint8Array;
  /** ARPHRD_* (1 Ethernet, 772 loopback, 65534 none/TUN). */
  hwType: number;
  mtu: number;
  flags: number;
  up: boolean;
  running: boolean;
  /**
   * Receive offloads that coalesce TCP segments into frames above the MTU (generic / large
   * receive offload); null when the driver does not say.
   */
  gro: boolean | null;
  lro: boolean | null;
}

/** Options naming the network namespace to look in (a name under /run/netns or a path). */
export interface NetnsOption {
  netns?: string;
}

/** `ip netns` names live in /run/netns; anything with a slash is taken as a path. */
export function netnsPath(netns: string | undefined): string | undefined {
  if (netns === undefined || netns === '') return undefined;
  return netns.includes('/') ? netns : `/run/netns/${netns}`;
}

export function formatMac(b: Uint8Array): string {
  return Array.from(b.subarray(0, 6), (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Index, MAC, MTU and flags of `name`; IoNoInterfaceError when it does not exist. */
export function interfaceInfo(name: string, opts: NetnsOption = {}): InterfaceInfo {
  const native = loadNative();
  const ns = netnsPath(opts.netns);
  let r;
  try {
    r = native.ifInfo(name, ns);
  } catch (err) {
    throw fromNative(err, { iface: name, netns: opts.netns, capability: 'CAP_SYS_ADMIN' });
  }
  return {
    name: r.name,
    index: r.index,
    mac: formatMac(r.mac),
    macBytes: r.mac,
    hwType: r.hwType,
    mtu: r.mtu,
    flags: r.flags,
    up: (r.flags & IFF.UP) !== 0,
    running: (r.flags & IFF.RUNNING) !== 0,
    gro: r.gro < 0 ? null : r.gro === 1,
    lro: r.lro < 0 ? null : r.lro === 1,
  };
}

/**
 * The receive offloads on `info` that merge a flow's TCP segments into frames above the MTU
 * before a packet socket sees them ("generic-receive-offload and large-receive-offload"), with
 * the command that turns them off; null when neither is on (or the driver does not say).
 */
export function coalescingOffloads(info: InterfaceInfo): { names: string; fix: string } | null {
  const on = [
    info.gro ? 'generic-receive-offload' : '',
    info.lro ? 'large-receive-offload' : '',
  ].filter(Boolean);
  if (on.length === 0) return null;
  return { names: on.join(' and '), fix: `ethtool -K ${info.name} gro off lro off` };
}

/** Null when this process may open AF_PACKET sockets, else the errno name the probe got. */
export function probeCapNetRaw(): string | null {
  return loadNative().capNetRaw();
}

/**
 * Everything `ipvs daemon --dataplane packet --iface IF` needs: the addon, CAP_NET_RAW, the
 * interface. Returns the interface facts.
 */
export function checkPacketPrerequisites(iface: string, opts: NetnsOption = {}): InterfaceInfo {
  const native = loadNative();
  const denied = native.capNetRaw();
  if (denied === 'EPERM' || denied === 'EACCES')
    throw new IoNotRootError('opening an AF_PACKET socket', 'CAP_NET_RAW');
  const info = interfaceInfo(iface, opts);
  if (info.index <= 0) throw new IoNoInterfaceError(iface, opts.netns);
  return info;
}

/**
 * What `ipvs realserver --decap ...` over TUN needs: the addon and /dev/net/tun. Creating the
 * device also needs CAP_NET_ADMIN, which only an attempt tells for sure: openTun then throws
 * IoNotRootError.
 */
export function checkTunPrerequisites(): void {
  loadNative();
  if (!existsSync('/dev/net/tun')) {
    throw fromNative({
      code: 'ENOENT',
      errno: 2,
      syscall: 'open(/dev/net/tun)',
      message: 'open: /dev/net/tun does not exist (load the tun module: modprobe tun)',
    });
  }
}
