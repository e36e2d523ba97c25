/**
 * Host facts and setup for `ipvs realserver`: the receiving interface's addresses, bringing the TUN
 * device up, and the sysctls the kernel needs before it accepts an inner packet written to the TUN
 * device and answers the client directly (docs/realserver.md, "Host setup"):
 *
 * - `rp_filter` 0 on the TUN device and on `all` (the kernel uses the larger of the two): the
 *   client's address is not routed back through the TUN device, so reverse-path filtering would
 *   drop every decapsulated packet. The TUN device is ours, so its value is always set.
 * - the VIP on `lo` (a /32 or /128), with `arp_ignore` 1 and `arp_announce` 2 (the larger of `all`
 *   and the interface is used), as for direct routing: only the director answers ARP for the VIP.
 *
 * What the real server may change without being asked (its own TUN device) it changes; the rest it
 * changes with `--setup-host`, or says what the administrator must do.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { AF_INET, parseIp, formatIp, type IpAddr } from '../core/addr.js';
import { IoSyscallError } from '../dataplane/io/index.js';

/** The IPv4 and IPv6 addresses configured on `iface` (empty when it has none or does not exist). */
export function interfaceAddresses(iface: string): IpAddr[] {
  const list = networkInterfaces()[iface] ?? [];
  const out: IpAddr[] = [];
  for (const a of list) {
    const p = parseIp(a.address.replace(/%.*$/, ''));
    if (p) out.push(p);
  }
  return out;
}

/** Every address configured on any interface, as text. */
export function localAddresses(): Map<string, string> {
  const m = new Map<string, string>();
  for (const [name, list] of Object.entries(networkInterfaces())) {
    for (const a of list ?? []) {
      const p = parseIp(a.address.replace(/%.*$/, ''));
      if (p) m.set(formatIp(p.af, p.words), name);
    }
  }
  return m;
}

/** `/proc/sys/` path of a dotted sysctl name whose device part may contain dots (`conf.<dev>.x`). */
function sysctlPath(family: 'ipv4' | 'ipv6', dev: string, key: string): string {
  return `/proc/sys/net/${family}/conf/${dev}/${key}`;
}

/** Reads an integer sysctl; undefined when it does not exist or cannot be read. */
export function readConfSysctl(
  family: 'ipv4' | 'ipv6',
  dev: string,
  key: string,
): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(sysctlPath(family, dev, key), 'utf8').trim(), 10);
    return Number.isNaN(n) ? undefined : n;
  } catch {
    return undefined;
  }
}

/** Writes an integer sysctl; returns an error text, or undefined on success. */
export function writeConfSysctl(
  family: 'ipv4' | 'ipv6',
  dev: string,
  key: string,
  value: number,
): string | undefined {
  try {
    writeFileSync(sysctlPath(family, dev, key), `${value}\n`);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Runs `ip ARGS`; throws IoSyscallError (code IPVS_ERR_IO_SYSCALL) naming the command on failure. */
export function runIp(args: readonly string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error) {
    throw new IoSyscallError(
      `ip ${args.join(' ')}`,
      'ENOENT',
      2,
      `cannot run ip (install iproute2): ${r.error.message}`,
    );
  }
  if (r.status !== 0)
    throw new IoSyscallError(`ip ${args.join(' ')}`, 'EIO', 5, (r.stderr || 'failed').trim());
}

/** What `checkHost` changed and what it advises. */
export interface HostReport {
  /** Changes made ("net.ipv4.conf.ipvs-rs0.rp_filter=0"). */
  applied: string[];
  /** Problems left for the administrator, each with the command that fixes it. */
  advice: string[];
}

/** Inputs of `checkHost`. */
export interface HostCheckOptions {
  /** Interface the tunnels arrive on. */
  iface: string;
  /** The TUN device the inner packets go to. */
  tun: string;
  /** Virtual addresses the server answers for (`--vip`); checked to be configured locally. */
  vips: readonly IpAddr[];
  /** Apply the host-wide settings and add missing VIPs to `lo` (`--setup-host`). */
  apply: boolean;
}

/**
 * Sets the TUN device's own sysctls and checks the host-wide ones (changing them when `apply`).
 * Never throws: failures become advice.
 */
export function checkHost(o: HostCheckOptions): HostReport {
  const applied: string[] = [];
  const advice: string[] = [];
  const set = (family: 'ipv4' | 'ipv6', dev: string, key: string, value: number): boolean => {
    const err = writeConfSysctl(family, dev, key, value);
    if (err === undefined) applied.push(`net.${family}.conf.${dev}.${key}=${value}`);
    return err === undefined;
  };
  const want = (
    family: 'ipv4' | 'ipv6',
    dev: string,
    key: string,
    value: number,
    ok: (v: number) => boolean,
    why: string,
    force: boolean,
  ): void => {
    const cur = readConfSysctl(family, dev, key);
    if (cur === undefined || ok(cur)) return;
    if ((force || o.apply) && set(family, dev, key, value)) return;
    advice.push(`sysctl -w net.${family}.conf.${dev}.${key}=${value}  # ${why}`);
  };
  // The TUN device is ours: reverse-path filtering off, IPv6 on.
  want('ipv4', o.tun, 'rp_filter', 0, (v) => v === 0, 'decapsulated packets arrive here', true);
  want('ipv6', o.tun, 'disable_ipv6', 0, (v) => v === 0, 'inner IPv6 packets', true);
  want(
    'ipv4',
    'all',
    'rp_filter',
    0,
    (v) => v === 0,
    `the kernel uses max(all, ${o.tun}): clients are not routed back through ${o.tun}`,
    false,
  );
  if (o.vips.length > 0 || o.apply) {
    const ign = Math.max(
      readConfSysctl('ipv4', 'all', 'arp_ignore') ?? 0,
      readConfSysctl('ipv4', o.iface, 'arp_ignore') ?? 0,
    );
    if (ign < 1)
      want(
        'ipv4',
        'all',
        'arp_ignore',
        1,
        () => false,
        'only the director answers ARP for the VIP',
        false,
      );
    const ann = Math.max(
      readConfSysctl('ipv4', 'all', 'arp_announce') ?? 0,
      readConfSysctl('ipv4', o.iface, 'arp_announce') ?? 0,
    );
    if (ann < 2)
      want(
        'ipv4',
        'all',
        'arp_announce',
        2,
        () => false,
        'never announce the VIP in ARP requests',
        false,
      );
  }
  const local = localAddresses();
  for (const vip of o.vips) {
    const text = formatIp(vip.af, vip.words);
    const on = local.get(text);
    const plen = vip.af === AF_INET ? 32 : 128;
    if (on === undefined) {
      const cmd = ['addr', 'add', `${text}/${plen}`, 'dev', 'lo'];
      if (o.apply) {
        try {
          runIp(cmd);
          applied.push(`ip ${cmd.join(' ')}`);
          continue;
        } catch (e) {
          advice.push(`ip ${cmd.join(' ')}  # ${(e as Error).message}`);
          continue;
        }
      }
      advice.push(`ip ${cmd.join(' ')}  # the VIP must be a local address for the stack to answer`);
    } else if (on !== 'lo') {
      advice.push(
        `# VIP ${text} is on ${on}, not lo: with arp_ignore/arp_announce as above it is not announced, but lo is the usual place`,
      );
    }
  }
  for (const dev of ['tunl0', 'gre0', 'ip6tnl0']) {
    const flags = readIfFlags(dev);
    if (flags !== undefined && (flags & 1) !== 0) {
      advice.push(
        `ip link set dev ${dev} down  # the kernel decapsulates too: packets would arrive twice`,
      );
    }
  }
  return { applied, advice };
}

function readIfFlags(dev: string): number | undefined {
  const p = `/sys/class/net/${dev}/flags`;
  if (!existsSync(p)) return undefined;
  try {
    return Number.parseInt(readFileSync(p, 'utf8').trim(), 16);
  } catch {
    return undefined;
  }
}
