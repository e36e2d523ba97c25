/**
 * The host kernel's copy of what the packet data plane forwards, dropped at each interface's
 * ingress hook (nftables, netdev family). AF_PACKET sockets bound to every protocol are taps:
 * they get their copy of a frame before the ingress hook runs, so the data plane still sees
 * everything. Without the drop the kernel takes its own copy of every such frame through its IP
 * stack (header checks, a route lookup) only to drop it at the end: with IP forwarding off (the
 * data plane's prerequisite) and the VIPs not its addresses (refused at configuration), the
 * kernel drops every frame to a VIP and every NAT reply from a real server to a client anyway.
 * On the veth benchmark that pass cost the sending side 0.3 µs per packet.
 *
 * The rules drop exactly those: frames to a service VIP, and frames from a NAT real server to
 * an address that is not local (`fib daddr type != local`: replies to the director's own
 * addresses, health checks say, still reach it). One table per interface (`ipvs_ts_<if>`), created
 * at start (replacing one a killed daemon left), kept in step with the configuration (changes
 * coalesced: a set one change behind only lets a frame through to the kernel's own drop, or drops
 * one the kernel would have dropped), re-created when the interface returns, deleted at stop.
 * Where `nft` is missing or refuses, the daemon says so once and runs without.
 */
import { execFile } from 'node:child_process';
import { AF_INET6, formatIp } from '../../core/addr.js';
import { CONN_F_FWD_MASK, FWD_MASQ } from '../../core/constants.js';
import type { Ipvs } from '../../core/ipvs.js';

/** Addresses the rules match, by family. */
export interface IngressDropSets {
  vip4: string[];
  vip6: string[];
  nat4: string[];
  nat6: string[];
}

/** The VIPs of the non-fwmark services and the addresses of the NAT destinations of all. */
export function ingressDropSets(ipvs: Ipvs): IngressDropSets {
  const vip4 = new Set<string>();
  const vip6 = new Set<string>();
  const nat4 = new Set<string>();
  const nat6 = new Set<string>();
  for (const s of ipvs.services.list()) {
    if (!s.fwmark) (s.af === AF_INET6 ? vip6 : vip4).add(formatIp(s.af, s.addr));
    for (const d of s.dests)
      if ((d.connFlags & CONN_F_FWD_MASK) === FWD_MASQ)
        (d.af === AF_INET6 ? nat6 : nat4).add(formatIp(d.af, d.addr));
  }
  const sorted = (x: Set<string>): string[] => [...x].sort();
  return { vip4: sorted(vip4), vip6: sorted(vip6), nat4: sorted(nat4), nat6: sorted(nat6) };
}

/** The table's name for interface `ifname` (nft identifiers: letters, digits, `_`). */
export function ingressTableName(ifname: string): string {
  return `ipvs_ts_${ifname.replace(/[^A-Za-z0-9_]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`;
}

const SETS = [
  ['vip4', 'ipv4_addr'],
  ['vip6', 'ipv6_addr'],
  ['nat4', 'ipv4_addr'],
  ['nat6', 'ipv6_addr'],
] as const;

function elements(table: string, sets: IngressDropSets): string {
  let out = '';
  for (const [name] of SETS) {
    out += `flush set netdev ${table} ${name}\n`;
    if (sets[name].length)
      out += `add element netdev ${table} ${name} { ${sets[name].join(', ')} }\n`;
  }
  return out;
}

/** Deletes table `t` whether or not it exists: adding an empty one first makes the delete succeed. */
function deleteTable(t: string): string {
  return `add table netdev ${t}\ndelete table netdev ${t}\n`;
}

/**
 * The nft script that (re)creates the table of `ifname` with `sets`, replacing any old one, in
 * one transaction.
 */
export function ingressRuleset(ifname: string, sets: IngressDropSets): string {
  const t = ingressTableName(ifname);
  const dev = JSON.stringify(ifname);
  return (
    deleteTable(t) +
    `table netdev ${t} {\n` +
    SETS.map(([name, type]) => `  set ${name} { type ${type}; }\n`).join('') +
    `  chain ingress {\n` +
    `    type filter hook ingress device ${dev} priority -500; policy accept;\n` +
    `    ip daddr @vip4 drop\n` +
    `    ip6 daddr @vip6 drop\n` +
    `    ip saddr @nat4 fib daddr type != local drop\n` +
    `    ip6 saddr @nat6 fib daddr type != local drop\n` +
    `  }\n` +
    `}\n` +
    elements(t, sets)
  );
}

/** Runs `nft -f -` with `script` on standard input. */
export type NftRunner = (script: string) => Promise<void>;

const nft: NftRunner = (script) =>
  new Promise((resolve, reject) => {
    const child = execFile('nft', ['-f', '-'], { timeout: 10_000 }, (err, _out, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        reject(
          new Error(
            code === 'ENOENT' ? 'nft is not installed' : stderr.trim() || String(err.message),
          ),
        );
      } else resolve();
    });
    child.stdin?.end(script);
  });

/** The ingress-drop tables of one daemon's interfaces. */
export class IngressDrop {
  readonly #ifaces: readonly string[];
  readonly #log: (msg: string) => void;
  readonly #run: NftRunner;
  /** Every nft run, in order (each starts when the one before ended). */
  #chain: Promise<void> = Promise.resolve();
  #ipvs: Ipvs | null = null;
  #pending = false;
  #failed = false;
  #installed = false;

  constructor(ifaces: readonly string[], log: (msg: string) => void, run: NftRunner = nft) {
    this.#ifaces = ifaces;
    this.#log = log;
    this.#run = run;
  }

  /** True once the tables are in place (and nft has not failed since). */
  get active(): boolean {
    return this.#installed && !this.#failed;
  }

  /** Creates every interface's table for the current configuration. */
  install(ipvs: Ipvs): Promise<void> {
    this.#ipvs = ipvs;
    const sets = ingressDropSets(ipvs);
    return this.#queue(this.#ifaces.map((i) => ingressRuleset(i, sets)).join(''), () => {
      this.#installed = true;
      this.#log(
        `packet: the host kernel's copy of forwarded frames is dropped at ingress ` +
          `(nftables table${this.#ifaces.length > 1 ? 's' : ''} ` +
          `${this.#ifaces.map(ingressTableName).join(', ')}; --no-ingress-drop turns this off)`,
      );
    });
  }

  /** The configuration changed: refreshes the sets once the current turn's changes are done. */
  changed(): void {
    if (!this.#installed || this.#failed || this.#pending) return;
    // at most one refresh waits; it reads the configuration when its turn comes (after the run
    // before it and the current event-loop turn), so a restore of thousands of rules costs a
    // handful of nft runs, not one per rule
    this.#pending = true;
    this.#chain = this.#chain
      .then(() => new Promise<void>((r) => setImmediate(r)))
      .then(() => {
        this.#pending = false;
        const ipvs = this.#ipvs;
        if (!ipvs || this.#failed || !this.#installed) return;
        const sets = ingressDropSets(ipvs);
        return this.#attempt(this.#ifaces.map((i) => elements(ingressTableName(i), sets)).join(''));
      });
  }

  /** Interface `ifname` came back (it may be a new device): its table is made again. */
  reattach(ifname: string): Promise<void> {
    if (!this.#installed || this.#failed || !this.#ipvs) return Promise.resolve();
    return this.#queue(ingressRuleset(ifname, ingressDropSets(this.#ipvs)));
  }

  /** Deletes the tables (at stop). */
  remove(): Promise<void> {
    if (!this.#installed) return this.#chain;
    this.#installed = false;
    const t = this.#ifaces.map(ingressTableName);
    return this.#queue(t.map(deleteTable).join(''));
  }

  /** Settles when every queued run has ended. */
  settled(): Promise<void> {
    return this.#chain;
  }

  #queue(script: string, ok?: () => void): Promise<void> {
    this.#chain = this.#chain.then(() => this.#attempt(script, ok));
    return this.#chain;
  }

  /** One nft run; the first failure is logged and ends the refreshes. */
  #attempt(script: string, ok?: () => void): Promise<void> {
    return this.#run(script).then(ok, (err: Error) => {
      if (this.#failed) return;
      this.#failed = true;
      this.#log(
        `packet: frames are not dropped at ingress (${err.message.split('\n')[0]}): the host ` +
          `kernel also takes every forwarded frame through its IP stack and drops it, which ` +
          `costs CPU but changes nothing else`,
      );
    });
  }
}
