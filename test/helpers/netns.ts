/**
 * Network-namespace topology for end-to-end tests of the forwarding methods, shaped like the
 * kernel's own IPVS self-test (tools/testing/selftests/net/netfilter/ipvs.sh): a client, a director
 * and N real servers, each in its own namespace, joined by two bridges that live in a fourth
 * "bridge" namespace:
 *
 * ```
 *   client ─eth0─┐                      ┌─eth0─ director ─eth1─┐
 *    192.0.2.2   │   front (brf)        │   192.0.2.1          │   back (brb)
 *                ├── 192.0.2.0/24 ──────┤                      ├── 198.51.100.0/24
 *   rsI ─eth0────┘   (direct replies)      rsI ─eth1───────────┘   (director → servers)
 *    192.0.2.(10+I)                          198.51.100.(10+I)
 *
 *   VIP 203.0.113.10 (client route: via the director, 192.0.2.1)
 * ```
 *
 * Only documentation addresses (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) are used. Every
 * name carries a random tag, so runs never collide; nothing is created in the caller's namespace.
 * `cleanup()` kills every child spawned through the topology and deletes every namespace (and with
 * them every interface); it is registered on process 'exit' (and SIGINT/SIGTERM when nobody else
 * handles them), so it runs even when a test throws. Needs root: `netnsSkipReason()` says why not.
 *
 * Forwarding-method setups (`setupNat`, `setupDr`, `setupTun`) set the routes and sysctls each
 * method needs on the real servers; they do not start a load balancer.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The package root (dist/test/helpers → ../../..). */
export const ROOT = join(HERE, '..', '..', '..');
/** The compiled echo/identity server (see echo-server.ts). */
export const ECHO_SERVER = join(HERE, 'echo-server.js');

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux')
    return `needs Linux network namespaces; this is ${process.platform}`;
  if (process.getuid?.() !== 0)
    return 'needs root (creates network namespaces, veth pairs and bridges); CI runs as root';
  if (spawnSync('ip', ['-V']).status !== 0)
    return 'needs the `ip` command (Debian package iproute2)';
  return undefined;
}

/** The address plan (documentation prefixes only). */
export const NET = {
  front: '192.0.2.0/24',
  back: '198.51.100.0/24',
  directorFront: '192.0.2.1',
  client: '192.0.2.2',
  directorBack: '198.51.100.1',
  vip: '203.0.113.10',
  /** Front and back addresses of real server `i`. */
  serverFront: (i: number) => `192.0.2.${10 + i}`,
  serverBack: (i: number) => `198.51.100.${10 + i}`,
} as const;

/** Interface names inside the namespaces (the same in each; namespaces keep them apart). */
export const IFACE = { front: 'eth0', back: 'eth1' } as const;

/** Result of `exec`. */
export interface ExecResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** A child process running in a namespace. */
export class NsChild {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  /** Resolves with the exit code (or the signal name) once the child has exited. */
  readonly exited: Promise<number | string>;
  #exit: number | string | undefined;
  #watchers: (() => void)[] = [];

  constructor(
    readonly ns: string,
    readonly label: string,
    proc: ChildProcess,
  ) {
    this.proc = proc;
    proc.stdout?.setEncoding('utf8');
    proc.stderr?.setEncoding('utf8');
    proc.stdout?.on('data', (d: string) => {
      this.stdout += d;
      this.#notify();
    });
    proc.stderr?.on('data', (d: string) => {
      this.stderr += d;
      if (process.env.NETNS_DEBUG) process.stderr.write(`[${label}] ${d}`);
      this.#notify();
    });
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, sig) => {
        this.#exit = code ?? sig ?? -1;
        this.#notify();
        resolve(this.#exit);
      });
      proc.on('error', (e) => {
        this.stderr += `spawn error: ${e.message}\n`;
        this.#exit = -1;
        this.#notify();
        resolve(-1);
      });
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** True while the child runs. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  #notify(): void {
    for (const w of this.#watchers.splice(0)) w();
  }

  /**
   * Resolves with the first match of `re` in stdout (or stderr with `stream: 'stderr'`) at or after
   * character `from`; rejects when the child exits first or after `timeoutMs`.
   */
  waitFor(
    re: RegExp,
    opts: { stream?: 'stdout' | 'stderr'; timeoutMs?: number; from?: number } = {},
  ): Promise<RegExpMatchArray> {
    const stream = opts.stream ?? 'stdout';
    const from = opts.from ?? 0;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `${this.label}: no ${re} on ${stream} within ${opts.timeoutMs ?? 5000} ms\n` +
                `stdout: ${this.stdout}\nstderr: ${this.stderr}`,
            ),
          ),
        opts.timeoutMs ?? 5000,
      );
      const check = () => {
        const m = this[stream].slice(from).match(re);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        } else if (!this.running) {
          clearTimeout(timer);
          reject(
            new Error(
              `${this.label} exited (${String(this.#exit)}) before printing ${re}\n` +
                `stdout: ${this.stdout}\nstderr: ${this.stderr}`,
            ),
          );
        } else this.#watchers.push(check);
      };
      check();
    });
  }

  /** Sends `signal` (default SIGTERM) and waits for the exit; SIGKILL after `graceMs`. */
  async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<number | string> {
    if (this.running) {
      this.proc.kill(signal);
      const t = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    return this.exited;
  }
}

/** Topology options. */
export interface TopologyOptions {
  /** Real servers (default 2). */
  servers?: number;
  /** Prefix of every name (default 'ipvsts'). */
  prefix?: string;
}

const live = new Set<Topology>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const t of live) t.cleanup();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const t of live) t.cleanup();
      // Only we listened: die of the signal as the default action would.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

/** A client / director / N real servers topology; see the module comment. */
export class Topology {
  /** Random tag in every name of this topology. */
  readonly tag: string;
  readonly ns: { client: string; director: string; bridge: string; servers: string[] };
  readonly #children = new Set<NsChild>();
  readonly #created: string[] = [];
  #cleaned = false;

  private constructor(opts: TopologyOptions) {
    this.tag = randomBytes(3).toString('hex');
    const p = `${opts.prefix ?? 'ipvsts'}-${this.tag}`;
    const n = opts.servers ?? 2;
    this.ns = {
      client: `${p}-client`,
      director: `${p}-dir`,
      bridge: `${p}-br`,
      servers: Array.from({ length: n }, (_, i) => `${p}-rs${i}`),
    };
  }

  /** Builds the topology; on any failure deletes what it made and rethrows. */
  static create(opts: TopologyOptions = {}): Topology {
    const t = new Topology(opts);
    installExitHooks();
    live.add(t);
    try {
      t.#build();
    } catch (e) {
      t.cleanup();
      throw e;
    }
    return t;
  }

  /** Every namespace of this topology. */
  get namespaces(): string[] {
    return [this.ns.bridge, this.ns.client, this.ns.director, ...this.ns.servers];
  }

  #build(): void {
    const { client, director, bridge, servers } = this.ns;
    for (const ns of this.namespaces) {
      ipCmd('netns', 'add', ns);
      this.#created.push(ns);
      ipCmd('-n', ns, 'link', 'set', 'lo', 'up');
    }
    for (const br of ['brf', 'brb']) {
      ipCmd('-n', bridge, 'link', 'add', br, 'type', 'bridge');
      ipCmd('-n', bridge, 'link', 'set', br, 'up');
    }
    // The bridge namespace has no addresses: no IPv6 autoconfiguration chatter from its ports.
    this.sysctl(bridge, 'net.ipv6.conf.all.disable_ipv6', '1', true);
    const port = (br: 'brf' | 'brb', ns: string, inside: string, outside: string) => {
      ipCmd(
        'link',
        'add',
        inside,
        'netns',
        ns,
        'type',
        'veth',
        'peer',
        'name',
        outside,
        'netns',
        bridge,
      );
      ipCmd('-n', bridge, 'link', 'set', outside, 'master', br);
      ipCmd('-n', bridge, 'link', 'set', outside, 'up');
      ipCmd('-n', ns, 'link', 'set', inside, 'up');
    };
    port('brf', client, IFACE.front, 'c0');
    port('brf', director, IFACE.front, 'df');
    port('brb', director, IFACE.back, 'db');
    servers.forEach((ns, i) => {
      port('brf', ns, IFACE.front, `s${i}f`);
      port('brb', ns, IFACE.back, `s${i}b`);
    });
    ipCmd('-n', client, 'addr', 'add', `${NET.client}/24`, 'dev', IFACE.front);
    ipCmd('-n', director, 'addr', 'add', `${NET.directorFront}/24`, 'dev', IFACE.front);
    ipCmd('-n', director, 'addr', 'add', `${NET.directorBack}/24`, 'dev', IFACE.back);
    servers.forEach((ns, i) => {
      ipCmd('-n', ns, 'addr', 'add', `${NET.serverFront(i)}/24`, 'dev', IFACE.front);
      ipCmd('-n', ns, 'addr', 'add', `${NET.serverBack(i)}/24`, 'dev', IFACE.back);
    });
    // Clients reach the VIP through the director, as in ipvs.sh.
    ipCmd(
      '-n',
      client,
      'route',
      'add',
      `${NET.vip}/32`,
      'via',
      NET.directorFront,
      'dev',
      IFACE.front,
    );
  }

  /**
   * Adds another host (a second director, say) to the topology: a namespace named after `label`
   * with `eth0` on the front bridge and `eth1` on the back one, each given its address (CIDR).
   * Deleted by `cleanup()` with the rest. Returns the namespace's name.
   */
  addHost(label: string, front: string, back: string): string {
    const ns = `${this.ns.bridge.slice(0, -'-br'.length)}-${label}`;
    ipCmd('netns', 'add', ns);
    this.#created.push(ns);
    ipCmd('-n', ns, 'link', 'set', 'lo', 'up');
    const k = this.#created.length;
    for (const [br, dev, addr, side] of [
      ['brf', IFACE.front, front, 'f'],
      ['brb', IFACE.back, back, 'b'],
    ] as const) {
      const outside = `h${k}${side}`;
      ipCmd(
        'link',
        'add',
        dev,
        'netns',
        ns,
        'type',
        'veth',
        'peer',
        'name',
        outside,
        'netns',
        this.ns.bridge,
      );
      ipCmd('-n', this.ns.bridge, 'link', 'set', outside, 'master', br);
      ipCmd('-n', this.ns.bridge, 'link', 'set', outside, 'up');
      ipCmd('-n', ns, 'addr', 'add', addr, 'dev', dev);
      ipCmd('-n', ns, 'link', 'set', dev, 'up');
    }
    return ns;
  }

  /** Runs `cmd args` in `ns` and waits; throws with its stderr on a non-zero exit unless `allowFail`. */
  exec(
    ns: string,
    cmd: string,
    args: readonly string[] = [],
    opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {},
  ): ExecResult {
    const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? 30_000,
    });
    const res = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    if (res.status !== 0 && !opts.allowFail) {
      throw new Error(
        `[${ns}] ${cmd} ${args.join(' ')} failed (${res.status}): ${res.stderr}${r.error ? r.error.message : ''}`,
      );
    }
    return res;
  }

  /** `ip -n NS ARGS`. */
  ip(ns: string, ...args: string[]): string {
    return ipCmd('-n', ns, ...args);
  }

  /** Sets a sysctl (dotted name) in `ns`; `allowFail` for keys that may not exist. */
  sysctl(ns: string, key: string, value: string, allowFail = false): void {
    this.exec(ns, 'sysctl', ['-qw', `${key}=${value}`], { allowFail });
  }

  /** Starts `cmd args` in `ns` (`ip netns exec`, which execs, so the pid is the command's). */
  spawn(ns: string, cmd: string, args: readonly string[] = [], label = `${cmd}@${ns}`): NsChild {
    const proc = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const c = new NsChild(ns, label, proc);
    this.#children.add(c);
    void c.exited.then(() => this.#children.delete(c));
    return c;
  }

  /** Starts `node SCRIPT args` in `ns` with this Node binary. */
  spawnNode(ns: string, script: string, args: readonly string[] = [], label?: string): NsChild {
    return this.spawn(
      ns,
      process.execPath,
      [script, ...args],
      label ?? `${script.split('/').pop()}@${ns}`,
    );
  }

  /**
   * Starts the identity/echo server (echo-server.ts) in real server `i` (or a namespace name):
   * it answers with its name (default `rsI`) and echoes. Resolves once it listens.
   */
  async startEchoServer(
    server: number | string,
    opts: { name?: string; tcp?: number; udp?: number; host?: string } = {},
  ): Promise<NsChild> {
    const ns = typeof server === 'number' ? this.ns.servers[server]! : server;
    const name = opts.name ?? (typeof server === 'number' ? `rs${server}` : server);
    const args = ['--name', name];
    if (opts.tcp !== undefined) args.push('--tcp', String(opts.tcp));
    if (opts.udp !== undefined) args.push('--udp', String(opts.udp));
    if (opts.host !== undefined) args.push('--host', opts.host);
    if (opts.tcp === undefined && opts.udp === undefined) args.push('--tcp', '8080');
    const c = this.spawnNode(ns, ECHO_SERVER, args, `echo-server ${name}`);
    await c.waitFor(/^ready /m, { timeoutMs: 10_000 });
    return c;
  }

  /**
   * From namespace `ns`, sends `data` to `host:port` over TCP (or UDP) with the echo client and
   * returns the server's name and the bytes echoed (plus the client's local address for TCP).
   */
  async echo(
    ns: string,
    host: string,
    port: number,
    data: Buffer,
    opts: { udp?: boolean; timeoutMs?: number } = {},
  ): Promise<{ name: string; echo: Buffer; local?: string }> {
    const args = ['--client', `${host}:${port}`, '--send', data.toString('hex')];
    args.push('--timeout', String(opts.timeoutMs ?? 5000));
    if (opts.udp) args.push('--udp-client');
    const c = this.spawnNode(ns, ECHO_SERVER, args, `echo-client@${ns}`);
    const code = await c.exited;
    if (code !== 0)
      throw new Error(
        `echo client in ${ns} to ${host}:${port} failed (${String(code)}): ${c.stderr}`,
      );
    const r = JSON.parse(c.stdout.trim()) as { name: string; echo: string; local?: string };
    return { name: r.name, echo: Buffer.from(r.echo, 'hex'), local: r.local };
  }

  /**
   * True when `count` pings from `ns` to `addr` are answered (needs iputils-ping); `size` bytes
   * of data each (ping's -s; above the MTU the requests leave as fragments).
   */
  ping(ns: string, addr: string, count = 1, size?: number): boolean {
    const sz = size === undefined ? [] : ['-s', String(size)];
    const r = this.exec(
      ns,
      'ping',
      ['-n', '-q', '-c', String(count), '-W', '2', '-i', '0.2', ...sz, addr],
      { allowFail: true },
    );
    return r.status === 0;
  }

  /** The MAC address of `dev` in `ns`. */
  mac(ns: string, dev: string): string {
    const m = /link\/ether ([0-9a-f:]{17})/.exec(this.ip(ns, 'link', 'show', 'dev', dev));
    if (!m) throw new Error(`no MAC on ${dev} in ${ns}`);
    return m[1]!;
  }

  /** Sets the MTU of the back network (director eth1, server eth1 and their bridge ports). */
  setBackMtu(mtu: number): void {
    const b = this.ns.bridge;
    for (const p of ['db', ...this.ns.servers.map((_, i) => `s${i}b`)])
      ipCmd('-n', b, 'link', 'set', p, 'mtu', String(mtu));
    ipCmd('-n', this.ns.director, 'link', 'set', IFACE.back, 'mtu', String(mtu));
    for (const ns of this.ns.servers)
      ipCmd('-n', ns, 'link', 'set', IFACE.back, 'mtu', String(mtu));
  }

  /**
   * Makes the client's kernel hand one MSS per packet to its interface (gso_max_segs 1), so a
   * user-space forwarder on the director sees wire-sized frames, not 64 KiB GSO super-packets.
   */
  noClientGso(): void {
    ipCmd('-n', this.ns.client, 'link', 'set', IFACE.front, 'gso_max_segs', '1');
  }

  /**
   * `noClientGso` for every sender toward the director: the client's and the real servers'
   * interfaces hand one MSS per packet to the wire (gso_max_segs 1), so a user-space director on
   * AF_PACKET sees wire-sized frames in both directions (their checksums may still be partial;
   * the packet data plane completes them).
   */
  noSenderGso(): void {
    this.noClientGso();
    for (const ns of this.ns.servers)
      for (const dev of [IFACE.front, IFACE.back])
        ipCmd('-n', ns, 'link', 'set', dev, 'gso_max_segs', '1');
  }

  /**
   * Keeps the real servers' kernels from answering tunnelled packets with ICMP protocol
   * unreachable (this kernel has no ipip / gre handler; `ipvs realserver` decapsulates beside
   * it): an IPVS director relays ICMP errors about its own tunnel packets to the client
   * (ip_vs_in_icmp), which would abort the client's connection. Needs nft (Debian nftables).
   */
  quietTunnelIcmp(): void {
    for (const ns of this.ns.servers) {
      this.exec(ns, 'nft', ['add', 'table', 'inet', 'ipvsts']);
      this.exec(ns, 'nft', ['add chain inet ipvsts out { type filter hook output priority 0; }']);
      this.exec(ns, 'nft', [
        'add rule inet ipvsts out icmp type destination-unreachable icmp code prot-unreachable drop',
      ]);
    }
  }

  /**
   * NAT (masquerading): the real servers' only way out is the director (their front link is
   * taken down, default route via 198.51.100.1), as in ipvs.sh's test_nat. `directorForwarding`
   * turns on the director kernel's IP forwarding (kernel IPVS needs it; a user-space data plane
   * that does the NAT itself usually wants it off so the kernel does not forward un-NATed replies).
   */
  setupNat(opts: { directorForwarding?: boolean } = {}): void {
    this.sysctl(this.ns.director, 'net.ipv4.ip_forward', opts.directorForwarding ? '1' : '0');
    for (const ns of this.ns.servers) {
      ipCmd('-n', ns, 'link', 'set', IFACE.front, 'down');
      ipCmd('-n', ns, 'route', 'replace', 'default', 'via', NET.directorBack, 'dev', IFACE.back);
    }
  }

  /**
   * Direct routing: the VIP on every real server's `lo` (a /32), arp_ignore 1 and arp_announce 2
   * so only the director answers for it, rp_filter off; replies leave through the front link
   * straight to the client (ipvs.sh test_dr).
   */
  setupDr(): void {
    for (const ns of this.ns.servers) {
      this.sysctl(ns, 'net.ipv4.conf.all.arp_ignore', '1');
      this.sysctl(ns, 'net.ipv4.conf.all.arp_announce', '2');
      this.sysctl(ns, 'net.ipv4.conf.all.rp_filter', '0');
      for (const dev of [IFACE.front, IFACE.back])
        this.sysctl(ns, `net.ipv4.conf.${dev}.rp_filter`, '0');
      ipCmd('-n', ns, 'addr', 'replace', `${NET.vip}/32`, 'dev', 'lo');
    }
  }

  /**
   * Tunnelling: the DR setup plus room for the outer headers on the back network (MTU
   * `backMtu`, default 1600). The decapsulation itself is `startRealserver` (this kernel has no
   * ipip/gre/fou modules; `ipvs realserver` does it in user space).
   */
  setupTun(opts: { backMtu?: number } = {}): void {
    this.setupDr();
    this.setBackMtu(opts.backMtu ?? 1600);
  }

  /**
   * Starts `ipvs realserver ARGS --iface eth1` in real server `i` and waits until it runs. Uses
   * `bin/ipvs realserver` once the dispatcher knows the subcommand, else calls `runRealserver`
   * from the compiled module directly.
   */
  async startRealserver(i: number, args: readonly string[]): Promise<NsChild> {
    const ns = this.ns.servers[i]!;
    const full = [...args, '--iface', IFACE.back];
    const c = realserverWired()
      ? this.spawnNode(ns, join(ROOT, 'bin', 'ipvs'), ['realserver', ...full], `realserver@rs${i}`)
      : this.spawn(
          ns,
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `import(${JSON.stringify(join(ROOT, 'dist', 'src', 'cli', 'realserver.js'))})` +
              '.then((m) => m.runRealserver(process.argv.slice(1))).then((c) => { process.exitCode = c; })',
            '--',
            ...full,
          ],
          `realserver@rs${i}`,
        );
    await c.waitFor(/ipvs realserver: decapsulating /, { stream: 'stderr', timeoutMs: 10_000 });
    return c;
  }

  /**
   * Kills every child still running, then deletes every namespace (their interfaces go with
   * them). Synchronous so it can run from a process 'exit' handler; never throws; idempotent.
   */
  cleanup(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    for (const c of this.#children) {
      if (c.running) {
        try {
          c.proc.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    this.#children.clear();
    for (const ns of this.#created.splice(0).reverse()) {
      // Anything still started inside (by a test, not through spawn()) is killed first.
      spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
        .stdout?.split('\n')
        .filter(Boolean)
        .forEach((pid) => {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone
          }
        });
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      if (existsSync(`/run/netns/${ns}`))
        spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    }
    live.delete(this);
  }

  /** Namespaces and root-namespace links that still carry this topology's tag (should be none). */
  leftovers(): string[] {
    const out: string[] = [];
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    for (const l of list.split('\n'))
      if (l.includes(this.tag)) out.push(`netns ${l.split(' ')[0]}`);
    const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
    for (const l of links.split('\n'))
      if (l.includes(this.tag)) out.push(`link ${l.split(':')[1]?.trim()}`);
    return out;
  }
}

function ipCmd(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}

let wired: boolean | undefined;
/** True when `bin/ipvs` dispatches `realserver` (the lead's wiring line is in src/cli/main.ts). */
export function realserverWired(): boolean {
  if (wired === undefined) {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'ipvs'), 'realserver', '--help'], {
      encoding: 'utf8',
    });
    wired = r.status === 0 && /--decap/.test(r.stdout);
  }
  return wired;
}
