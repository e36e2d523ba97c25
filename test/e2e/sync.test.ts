/**
 * Connection sync end to end (spec §8): three namespaces, a client, a master director and a
 * backup, joined by veth pairs (documentation addresses only):
 *
 * ```
 *   client ─eth0── 192.0.2.0/24 ──eth0─ master ─eth1── 198.51.100.0/24 ──eth1─ backup
 *   192.0.2.2                      192.0.2.1   198.51.100.1                198.51.100.2
 * ```
 *
 * The master runs `bin/ipvs daemon --dataplane packet` with a NAT service 203.0.113.10:8080 →
 * 198.51.100.2:8080 (the backup's kernel serves it with the echo server, so real TCP traffic
 * flows); the backup runs `bin/ipvs daemon --dataplane none`. `--start-daemon master|backup
 * --mcast-interface eth1` on each, then real connections through the master must show up in the
 * backup's `ipvs adm -L -c -n` with their state and real server, and tshark's IPVS dissector must
 * read the captured datagrams as valid sync messages. Needs root; cleans up on failure too.
 */
import { strict as assert } from 'node:assert';
import { spawn as spawnChild, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nativeAvailable } from '../../src/dataplane/io/index.js';
import { ECHO_SERVER, NsChild, ROOT, netnsSkipReason } from '../helpers/netns.js';
import { TOOLS } from './packet-tools.js';

const skip =
  netnsSkipReason() ??
  (nativeAvailable() ? undefined : 'needs the native addon (node native/build.mjs)') ??
  (spawnSync('tcpdump', ['--version']).status === 0 ? undefined : 'needs tcpdump');
const haveTshark = spawnSync('tshark', ['--version']).status === 0;
const IPVS = join(ROOT, 'bin', 'ipvs');
const VIP = '203.0.113.10';
const RS = '198.51.100.2';

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

/** The three namespaces, their links and every process started in them. */
class SyncNet {
  readonly tag = randomBytes(3).toString('hex');
  readonly ns = {
    client: `sync-${this.tag}-c`,
    master: `sync-${this.tag}-m`,
    backup: `sync-${this.tag}-b`,
  };
  readonly dir = mkdtempSync(join(tmpdir(), 'ipvs-sync-'));
  readonly children: NsChild[] = [];
  #made: string[] = [];
  #exit = () => this.cleanup();

  /** `ipv6`: keep IPv6 on (link-local addresses without DAD) for IPv6 multicast groups. */
  constructor(opts: { ipv6?: boolean } = {}) {
    process.on('exit', this.#exit);
    try {
      for (const n of Object.values(this.ns)) {
        ip('netns', 'add', n);
        this.#made.push(n);
        ip('-n', n, 'link', 'set', 'lo', 'up');
        const sysctls = opts.ipv6
          ? ['net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']
          : ['net.ipv6.conf.all.disable_ipv6=1'];
        for (const x of sysctls) spawnSync('ip', ['netns', 'exec', n, 'sysctl', '-qw', x]);
      }
      this.#link(this.ns.client, '192.0.2.2/24', this.ns.master, '192.0.2.1/24', 'eth0');
      this.#link(this.ns.master, '198.51.100.1/24', this.ns.backup, '198.51.100.2/24', 'eth1');
      ip('-n', this.ns.client, 'route', 'add', '203.0.113.0/24', 'via', '192.0.2.1');
      ip('-n', this.ns.backup, 'route', 'add', '192.0.2.0/24', 'via', '198.51.100.1');
      spawnSync('ip', ['netns', 'exec', this.ns.master, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    } catch (e) {
      this.cleanup();
      throw e;
    }
  }

  #link(a: string, aAddr: string, b: string, bAddr: string, name: string): void {
    const x = `sa${this.tag}${name}`;
    const y = `sb${this.tag}${name}`;
    ip('link', 'add', x, 'type', 'veth', 'peer', 'name', y);
    ip('link', 'set', x, 'netns', a, 'name', name);
    ip('link', 'set', y, 'netns', b, 'name', name);
    ip('-n', a, 'addr', 'add', aAddr, 'dev', name);
    ip('-n', b, 'addr', 'add', bAddr, 'dev', name);
    ip('-n', a, 'link', 'set', name, 'up');
    ip('-n', b, 'link', 'set', name, 'up');
  }

  spawn(ns: string, cmd: string, args: string[], label: string): NsChild {
    const c = new NsChild(ns, label, spawnChild('ip', ['netns', 'exec', ns, cmd, ...args]));
    this.children.push(c);
    return c;
  }

  sock(role: 'master' | 'backup'): string {
    return join(this.dir, `${role}.sock`);
  }

  async daemon(role: 'master' | 'backup'): Promise<NsChild> {
    const args =
      role === 'master'
        ? ['daemon', '--dataplane', 'packet', '--iface', 'eth0', '--iface', 'eth1']
        : ['daemon', '--dataplane', 'none'];
    const c = this.spawn(
      this.ns[role],
      process.execPath,
      [IPVS, ...args, '--control', this.sock(role)],
      `ipvs daemon (${role})`,
    );
    await c.waitFor(/listening on /, { stream: 'stderr', timeoutMs: 10_000 });
    return c;
  }

  /** `ipvs adm` against a role's daemon. */
  adm(role: 'master' | 'backup', ...args: string[]): { status: number; out: string; err: string } {
    const r = spawnSync(process.execPath, [IPVS, 'adm', '--control', this.sock(role), ...args], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    return { status: r.status ?? -1, out: r.stdout, err: r.stderr };
  }

  admOk(role: 'master' | 'backup', ...args: string[]): string {
    const r = this.adm(role, ...args);
    if (r.status !== 0) throw new Error(`ipvs adm ${args.join(' ')}: ${r.status} ${r.err}${r.out}`);
    return r.out;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.children.map((c) => c.kill('SIGTERM', 2000)));
  }

  cleanup(): void {
    for (const c of this.children) if (c.running) c.proc.kill('SIGKILL');
    for (const n of this.#made.splice(0)) spawnSync('ip', ['netns', 'del', n]);
    rmSync(this.dir, { recursive: true, force: true });
    process.off('exit', this.#exit);
  }
}

/** Polls `fn` until it returns a value or `ms` pass. */
async function until<T>(ms: number, fn: () => T | undefined): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('connection sync end to end (master → backup over multicast)', { skip }, () => {
  let n: SyncNet;

  before(async () => {
    n = new SyncNet();
    await n.daemon('master');
    await n.daemon('backup');
    const echo = n.spawn(
      n.ns.backup,
      process.execPath,
      [ECHO_SERVER, '--name', 'rs', '--tcp', '8080'],
      'echo',
    );
    await echo.waitFor(/^ready /m, { timeoutMs: 10_000 });
    for (const role of ['master', 'backup'] as const) {
      n.admOk(role, '-A', '-t', `${VIP}:8080`, '-s', 'rr');
      n.admOk(role, '-a', '-t', `${VIP}:8080`, '-r', `${RS}:8080`, '-m');
    }
  });

  after(async () => {
    if (n) {
      await n.stopAll();
      n.cleanup();
    }
  });

  it('refuses a start it cannot make sockets for, with nothing applied', () => {
    const r = n.adm('backup', '--start-daemon', 'backup', '--mcast-interface', 'nope0');
    assert.notEqual(r.status, 0);
    assert.match(r.err + r.out, /No such device/);
    // an interface without any IPv4 address: Node's join names the interface by an address
    ip('-n', n.ns.backup, 'link', 'add', 'nov4a', 'type', 'veth', 'peer', 'name', 'nov4b');
    ip('-n', n.ns.backup, 'link', 'set', 'nov4a', 'up');
    const r2 = n.adm('backup', '--start-daemon', 'backup', '--mcast-interface', 'nov4a');
    assert.notEqual(r2.status, 0);
    assert.match(r2.err + r2.out, /Cannot assign requested address/);
    assert.equal(n.admOk('backup', '-L', '--daemon'), '');
  });

  it('connections through the master appear on the backup with state and real server', async () => {
    const cap = join(n.dir, 'sync.pcap');
    const dump = n.spawn(
      n.ns.backup,
      'tcpdump',
      ['-i', 'eth1', '-n', '-U', '-w', cap, 'udp', 'port', '8848'],
      'tcpdump',
    );
    await dump.waitFor(/listening on/, { stream: 'stderr', timeoutMs: 5000 });
    n.admOk('backup', '--start-daemon', 'backup', '--mcast-interface', 'eth1', '--syncid', '9');
    n.admOk('master', '--start-daemon', 'master', '--mcast-interface', 'eth1', '--syncid', '9');
    assert.equal(
      n.admOk('master', '-L', '--daemon'),
      'master sync daemon (mcast=eth1, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
    );
    assert.equal(
      n.admOk('backup', '-L', '--daemon'),
      'backup sync daemon (mcast=eth1, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
    );
    // one connection held open (ESTABLISHED), then three that run to completion
    const hold = n.spawn(n.ns.client, process.execPath, [TOOLS, 'hold', `${VIP}:8080`], 'hold');
    const m = await hold.waitFor(/^connected rs (\S+):(\d+)/m, { timeoutMs: 5000 });
    const cport = m[2]!;
    hold.proc.kill('SIGUSR1');
    await hold.waitFor(/^echo ok/m, { timeoutMs: 5000 });
    const client = n.spawn(
      n.ns.client,
      process.execPath,
      [
        TOOLS,
        'client',
        `${VIP}:8080`,
        '--conns',
        '3',
        '--bytes',
        '20000',
        '--parallel',
        '1',
        '--timeout',
        '5000',
      ],
      'client',
    );
    assert.equal(await client.exited, 0, client.stderr);
    // a partly filled buffer leaves the master 2–3 s after its first record
    const row = new RegExp(
      `^TCP\\s+\\S+\\s+ESTABLISHED\\s+192\\.0\\.2\\.2:${cport}\\s+${VIP.replace(/\./g, '\\.')}:8080\\s+198\\.51\\.100\\.2:8080$`,
      'm',
    );
    const listing = await until(6000, () => {
      const out = n.admOk('backup', '-L', '-c', '-n');
      return row.test(out) && (out.match(/^TCP /gm) ?? []).length >= 4 ? out : undefined;
    });
    assert.ok(listing, `backup listing:\n${n.admOk('backup', '-L', '-c', '-n')}`);
    // the finished ones were synced in their closing states
    assert.match(listing, /^TCP\s+\S+\s+(FIN_WAIT|TIME_WAIT|CLOSE_WAIT|CLOSE)\s+192\.0\.2\.2:/m);
    // bound to the backup's own destination: counted there
    const svc = n.admOk('backup', '-L', '-n');
    assert.match(svc, /->\s+198\.51\.100\.2:8080\s+Masq\s+1\s+1\s+\d+/);
    hold.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    await dump.kill('SIGINT');
    if (!haveTshark) return;
    const ts = spawnSync(
      'tshark',
      [
        '-r',
        cap,
        '-d',
        'udp.port==8848,ipvs',
        '-T',
        'fields',
        '-E',
        'separator=;',
        '-E',
        'aggregator=/',
        '-e',
        'ip.dst',
        '-e',
        'ip.ttl',
        '-e',
        'ipvs.syncid',
        '-e',
        'ipvs.version',
        '-e',
        'ipvs.conncount',
        '-e',
        'ipvs.daddr',
        '-e',
        '_ws.malformed',
        '-e',
        '_ws.expert',
        '-e',
        'udp.srcport',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(ts.status, 0, ts.stderr);
    const lines = ts.stdout.trim().split('\n').filter(Boolean);
    assert.ok(lines.length >= 1, 'datagrams captured');
    for (const l of lines) {
      const [dst, ttl, syncid, version, count, daddr, malformed, expert, sport] = l.split(';');
      assert.equal(dst, '224.0.0.81');
      assert.equal(ttl, '1');
      assert.equal(syncid, '9');
      assert.equal(version, '1');
      assert.ok(Number(count) >= 1);
      assert.match(daddr!, /198\.51\.100\.2/);
      assert.equal(malformed ?? '', '');
      // the sync socket sends from an ephemeral port, as the kernel's does; Wireshark's UDP
      // dissector notes one in LBL traceroute's range (33435-33464) as a possible traceroute
      const port = Number(sport);
      const notes = (expert ?? '')
        .split('/')
        .filter((e) => e !== '')
        .filter(
          (e) =>
            !(
              port > 33434 &&
              port <= 33464 &&
              /^Expert Info \(Chat\/Sequence\): Possible traceroute: /.test(e)
            ),
        );
      assert.deepEqual(notes, [], l);
    }
  });

  it('stop-daemon closes the sockets; starting again works', () => {
    n.admOk('master', '--stop-daemon', 'master');
    n.admOk('backup', '--stop-daemon', 'backup');
    assert.equal(n.admOk('backup', '-L', '--daemon'), '');
    const r = n.adm('backup', '--stop-daemon', 'backup');
    assert.match(r.err + r.out, /No daemon is running/);
    // the port is free again (a leaked socket would still hold the membership, not the bind)
    n.admOk('backup', '--start-daemon', 'backup', '--mcast-interface', 'eth1');
    n.admOk('backup', '--stop-daemon', 'backup');
  });
});

/** A master socket of transport.ts sending one hand-built message (run in the master namespace). */
const SEND_ONE = `
import { parseIp } from '${ROOT}/dist/src/core/addr.js';
import { SyncMessage } from '${ROOT}/dist/src/sync/wire.js';
import { openMasterSockets, syncIface } from '${ROOT}/dist/src/sync/transport.js';
const w = (a) => parseIp(a).words;
const m = new SyncMessage(1, 0, 1452, 100, 0);
m.addV1({ af: 10, protocol: 6, flags: 0, state: 1, cport: 40000, vport: 80, dport: 8080,
  fwmark: 0, timeout: 900, caddr: w('2001:db8::2'), vaddr: w('2001:db8::10'),
  daddr: w('2001:db8:1::11') });
const s = await openMasterSockets({ iface: syncIface('eth1'), group: 'ff02::81', port: 8848,
  ttl: 1, count: 1, sockSize: 0, maxlen: 1452 }, (x) => process.stderr.write(x + '\\n'));
s.send(0, m.bytes());
setTimeout(() => { s.close(); process.stdout.write('sent\\n'); }, 200);
`;

describe('connection sync over an IPv6 group (ff02::81)', { skip }, () => {
  let n: SyncNet;
  before(async () => {
    n = new SyncNet({ ipv6: true });
    await n.daemon('backup');
  });
  after(async () => {
    if (n) {
      await n.stopAll();
      n.cleanup();
    }
  });

  it('a backup joined to ff02::81 on eth1 applies what a master socket sends there', async () => {
    n.admOk(
      'backup',
      '--start-daemon',
      'backup',
      '--mcast-interface',
      'eth1',
      '--mcast-group',
      'ff02::81',
    );
    assert.match(n.admOk('backup', '-L', '--daemon'), /group=ff02::81, port=8848/);
    const m = n.spawn(
      n.ns.master,
      process.execPath,
      ['--input-type=module', '-e', SEND_ONE],
      'master socket',
    );
    assert.equal(await m.exited, 0, m.stderr);
    const out = await until(3000, () => {
      const o = n.admOk('backup', '-L', '-c', '-n');
      return /ESTABLISHED \[2001:db8::2\]:40000\s+\[2001:db8::10\]:80\s+\[2001:db8:1::11\]:8080/.test(
        o,
      )
        ? o
        : undefined;
    });
    assert.ok(out, n.admOk('backup', '-L', '-c', '-n'));
  });
});
