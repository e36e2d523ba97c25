/**
 * End-to-end benchmark of the proxy data plane beside its peers, in one run on one machine, one
 * worker / thread each: ipvs-ts (proxy data plane), HAProxy (mode tcp), nginx (stream) and no
 * proxy at all (the limit). Measures keep-alive requests/s and latency (wrk against an nginx
 * backend), new connections/s (wrk with `Connection: close`), bulk throughput (iperf3) and memory
 * per idle proxied connection (RSS growth over N idle connections), and the CPU time the proxy
 * process itself spends per request (user + system, from /proc: less sensitive to other load on a
 * shared machine than the rates). Installs missing peers from Debian packages when run as root.
 * Prints a table of medians with ratios to HAProxy.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/proxy/e2e.js [--duration 10] [--conns 64] [--idle 2000]
 *       [--runs 3] [--only ipvs-ts,HAProxy] [--out FILE]
 *
 * Method: `--runs` rounds; every round runs every target once, in an order rotated by one each
 * round (so drift in the machine's load hits all targets alike); a target's run starts its proxy
 * afresh, measures memory, warms up (2 s keep-alive, 2 s new connections: JIT, pools, caches),
 * then measures keep-alive, new connections and bulk. Each figure is the median over the rounds;
 * the load average is printed per round. The proxies run on CPU 1, wrk / iperf3 / the backends on
 * CPU 0 (taskset), when two CPUs exist.
 *
 * On that layout one wrk thread and the nginx backend share CPU 0, and every proxy reaches their
 * limit under keep-alive before its own. `--cap P` (default 50, 0 = off; needs root and a cgroup
 * cpu controller) adds a keep-alive run with the proxy held to P % of one core by a CFS quota in
 * 10 ms periods: each proxy is then the bottleneck, and the ratio compares what it does with the
 * same CPU.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  mkdtempSync,
  mkdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
  existsSync,
  readdirSync,
} from 'node:fs';
import * as net from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Args {
  duration: number;
  conns: number;
  idle: number;
  runs: number;
  out: string | null;
  only: string[] | null;
  /** Percent of one core for the capped keep-alive run (0: none). */
  cap: number;
}

function parseArgs(): Args {
  const a: Args = {
    duration: 10,
    conns: 64,
    idle: 2000,
    runs: 3,
    out: null,
    only: null,
    cap: 50,
  };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    const k = v[i];
    const x = v[++i] ?? '';
    if (k === '--duration') a.duration = Number(x);
    else if (k === '--conns') a.conns = Number(x);
    else if (k === '--idle') a.idle = Number(x);
    else if (k === '--runs') a.runs = Math.max(1, Number(x));
    else if (k === '--out') a.out = x;
    else if (k === '--only') a.only = x.split(',');
    else if (k === '--cap') a.cap = Math.max(0, Math.min(100, Number(x)));
    else throw new Error(`unknown option ${k}`);
  }
  return a;
}

const TOOLS: Record<string, string[]> = {
  haproxy: ['haproxy'],
  nginx: ['nginx-light', 'libnginx-mod-stream'],
  wrk: ['wrk'],
  iperf3: ['iperf3'],
};

function have(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

/** Installs the peers and load generators from Debian packages when missing (root only). */
function ensureTools(): void {
  const missing: string[] = [];
  for (const [bin, pkgs] of Object.entries(TOOLS)) if (!have(bin)) missing.push(...pkgs);
  if (!existsSync('/usr/lib/nginx/modules/ngx_stream_module.so'))
    missing.push('libnginx-mod-stream');
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0)
    throw new Error(`missing tools; install Debian packages: ${missing.join(' ')}`);
  console.error(`installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync(
    'apt-get',
    ['install', '-y', '-qq', '--no-install-recommends', ...new Set(missing)],
    {
      stdio: 'inherit',
      env,
    },
  );
  if (r.status !== 0) throw new Error('apt-get install failed');
}

const twoCpus = availableParallelism() >= 2 && have('taskset');
const onCpu = (cpu: number, cmd: string[]): string[] =>
  twoCpus ? ['taskset', '-c', String(cpu), ...cmd] : cmd;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function waitPort(port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Processes we asked to stop (iperf3 exits with status 1 on SIGTERM: not worth a message). */
const stopping = new WeakSet<ChildProcess>();

function start(cmd: string[], name: string): ChildProcess {
  const p = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  p.on('exit', (code) => {
    if (code && !stopping.has(p)) console.error(`${name} exited ${code}: ${err.slice(-500)}`);
  });
  return p;
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  stopping.add(p);
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(t);
}

/** `pid` and its descendants. */
function tree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number): void => {
    out.push(p);
    try {
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim();
        for (const k of kids ? kids.split(/\s+/) : []) visit(Number(k));
      }
    } catch {
      // gone
    }
  };
  visit(pid);
  return out;
}

/** VmRSS in KiB of `pid` and its descendants. */
function rssKiB(pid: number): number {
  let total = 0;
  for (const p of tree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      total += m ? Number(m[1]) : 0;
    } catch {
      // gone
    }
  }
  return total;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU time (user + system, µs) used so far by `pid` and its descendants. */
function cpuUs(pid: number | null): number {
  if (pid === null) return NaN;
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      // fields after the parenthesised command: state is [0], utime [11], stime [12]
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return (ticks * 1e6) / CLK_TCK;
}

/** The cgroup directory that takes a CFS quota (v2 with the cpu controller, or v1 `cpu`), or null. */
function cpuCgroupRoot(): { dir: string; v2: boolean } | null {
  if (process.getuid?.() !== 0) return null;
  try {
    if (readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').split(/\s+/).includes('cpu'))
      return { dir: '/sys/fs/cgroup', v2: true };
  } catch {
    // not a v2 root
  }
  return existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')
    ? { dir: '/sys/fs/cgroup/cpu', v2: false }
    : null;
}

/**
 * Holds `pid` (all its threads) to `pct` % of one core until the returned function is called,
 * which puts it back; null when no cgroup cpu controller can be used.
 */
function capCpu(pid: number, pct: number): (() => void) | null {
  const root = cpuCgroupRoot();
  if (!root) return null;
  const dir = join(root.dir, `ipvs-bench-${process.pid}`);
  const period = 10_000;
  const quota = Math.max(1000, Math.round((period * pct) / 100));
  try {
    mkdirSync(dir);
    if (root.v2) {
      try {
        writeFileSync(join(root.dir, 'cgroup.subtree_control'), '+cpu');
      } catch {
        // already enabled, or not allowed: writing cpu.max below tells
      }
      writeFileSync(join(dir, 'cpu.max'), `${quota} ${period}`);
    } else {
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(period));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quota));
    }
    for (const p of tree(pid)) writeFileSync(join(dir, 'cgroup.procs'), String(p));
  } catch (e) {
    console.error(`  no CPU cap: ${(e as Error).message}`);
    try {
      rmdirSync(dir);
    } catch {
      // not created
    }
    return null;
  }
  return () => {
    for (const p of tree(pid)) {
      try {
        writeFileSync(join(root.dir, 'cgroup.procs'), String(p));
      } catch {
        // gone
      }
    }
    try {
      rmdirSync(dir);
    } catch {
      // busy: left for the next boot
    }
  };
}

function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((p, q) => p - q);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

interface Wrk {
  rps: number;
  p50: number;
  p99: number;
  /** Requests completed. */
  n: number;
  /** CPU time of the proxy per request, µs (NaN without a proxy). */
  cpu: number;
}

function ms(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

function wrk(port: number, a: Args, close: boolean, pid: number | null = null): Wrk {
  const cmd = onCpu(0, [
    'wrk',
    '-t1',
    `-c${a.conns}`,
    `-d${a.duration}s`,
    '--latency',
    ...(close ? ['-H', 'Connection: close'] : []),
    `http://127.0.0.1:${port}/`,
  ]);
  const cpu0 = cpuUs(pid);
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  const cpu1 = cpuUs(pid);
  const out = r.stdout ?? '';
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const n = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const p50 = ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const errs = /Socket errors: (.*)/.exec(out)?.[1];
  if (errs) console.error(`  wrk on ${port}: socket errors ${errs}`);
  return { rps, p50, p99, n, cpu: (cpu1 - cpu0) / n };
}

function iperf(port: number, a: Args): number {
  const cmd = onCpu(0, [
    'iperf3',
    '-c',
    '127.0.0.1',
    '-p',
    String(port),
    '-t',
    String(Math.max(3, Math.round(a.duration / 2))),
    '-J',
  ]);
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  try {
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 1e9;
  } catch {
    console.error(`  iperf3 on ${port} failed: ${r.stdout.slice(0, 300)} ${r.stderr}`);
    return NaN;
  }
}

/** Opens `n` connections through the proxy, one request each, and keeps them idle. */
async function idleConns(port: number, n: number): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  const req = `GET / HTTP/1.1\r\nHost: x\r\n\r\n`;
  for (let i = 0; i < n; i += 200) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(200, n - i) },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1', () => s.write(req));
            s.once('data', () => resolve(s));
            s.once('error', reject);
          }),
      ),
    );
    out.push(...batch);
  }
  return out;
}

async function memoryPerConn(pid: number, port: number, n: number): Promise<number> {
  const warm = await idleConns(port, 200);
  for (const s of warm) s.destroy();
  await new Promise((r) => setTimeout(r, 500));
  const before = rssKiB(pid);
  const socks = await idleConns(port, n);
  await new Promise((r) => setTimeout(r, 1000));
  const after = rssKiB(pid);
  for (const s of socks) s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  return ((after - before) * 1024) / n;
}

interface Result {
  name: string;
  keepalive: Wrk;
  /** Keep-alive with the proxy held to `--cap` % of a core (NaN rates when not run). */
  capped: Wrk;
  close: Wrk;
  gbps: number;
  memPerConn: number | null;
}

/** Medians over the rounds of one target's results. */
function summarize(name: string, rs: Result[]): Result {
  const w = (k: 'keepalive' | 'capped' | 'close'): Wrk => ({
    rps: median(rs.map((r) => r[k].rps)),
    p50: median(rs.map((r) => r[k].p50)),
    p99: median(rs.map((r) => r[k].p99)),
    n: median(rs.map((r) => r[k].n)),
    cpu: median(rs.map((r) => r[k].cpu)),
  });
  const mem = rs.map((r) => r.memPerConn).filter((m): m is number => m !== null);
  return {
    name,
    keepalive: w('keepalive'),
    capped: w('capped'),
    close: w('close'),
    gbps: median(rs.map((r) => r.gbps)),
    memPerConn: mem.length ? median(mem) : null,
  };
}

const BODY = 'x'.repeat(612);
const NO_WRK: Wrk = { rps: NaN, p50: NaN, p99: NaN, n: NaN, cpu: NaN };

async function main(): Promise<void> {
  const a = parseArgs();
  ensureTools();
  const dir = mkdtempSync(join(tmpdir(), 'ipvs-bench-'));
  const ports = {
    backend: await freePort(),
    iperf: await freePort(),
  };
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  writeFileSync(
    join(dir, 'backend.conf'),
    `${user}worker_processes 1;\npid ${dir}/backend.pid;\nerror_log ${dir}/backend.err;\nevents { worker_connections 65536; }\n` +
      `http { access_log off; keepalive_requests 100000000; keepalive_timeout 600s;\n` +
      `  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};\n` +
      `  server { listen 127.0.0.1:${ports.backend} backlog=4096; location / { default_type text/plain; return 200 '${BODY}'; } } }\n`,
  );
  const backend = start(
    onCpu(0, ['nginx', '-p', dir, '-c', join(dir, 'backend.conf'), '-g', 'daemon off;']),
    'nginx backend',
  );
  const iperfd = start(onCpu(0, ['iperf3', '-s', '-p', String(ports.iperf)]), 'iperf3 server');
  await waitPort(ports.backend);
  await new Promise((r) => setTimeout(r, 300)); // iperf3 -s: probing its port would log an error

  const here = fileURLToPath(new URL('.', import.meta.url));
  type Target = { name: string; http: number; bulk: number; run: (() => ChildProcess) | null };
  const targets: Target[] = [];
  {
    const http = await freePort();
    const bulk = await freePort();
    targets.push({
      name: 'ipvs-ts',
      http,
      bulk,
      run: () =>
        start(
          onCpu(1, [
            process.execPath,
            join(here, 'ipvs-proxy.js'),
            `${http}:${ports.backend}`,
            `${bulk}:${ports.iperf}`,
          ]),
          'ipvs-ts',
        ),
    });
  }
  {
    const http = await freePort();
    const bulk = await freePort();
    writeFileSync(
      join(dir, 'haproxy.cfg'),
      `global\n  nbthread 1\n  maxconn 9000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 600s\n  timeout server 600s\n` +
        `listen web\n  bind 127.0.0.1:${http}\n  server s1 127.0.0.1:${ports.backend}\n` +
        `listen bulk\n  bind 127.0.0.1:${bulk}\n  server s1 127.0.0.1:${ports.iperf}\n`,
    );
    targets.push({
      name: 'HAProxy',
      http,
      bulk,
      run: () => start(onCpu(1, ['haproxy', '-db', '-f', join(dir, 'haproxy.cfg')]), 'haproxy'),
    });
  }
  {
    const http = await freePort();
    const bulk = await freePort();
    writeFileSync(
      join(dir, 'stream.conf'),
      `load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n${user}worker_processes 1;\npid ${dir}/stream.pid;\nerror_log ${dir}/stream.err;\n` +
        `events { worker_connections 65536; }\n` +
        `stream { server { listen 127.0.0.1:${http} backlog=4096; proxy_pass 127.0.0.1:${ports.backend}; proxy_timeout 600s; }\n` +
        `  server { listen 127.0.0.1:${bulk}; proxy_pass 127.0.0.1:${ports.iperf}; } }\n`,
    );
    targets.push({
      name: 'nginx stream',
      http,
      bulk,
      run: () =>
        start(
          onCpu(1, ['nginx', '-p', dir, '-c', join(dir, 'stream.conf'), '-g', 'daemon off;']),
          'nginx stream',
        ),
    });
  }
  targets.push({ name: 'no proxy', http: ports.backend, bulk: ports.iperf, run: null });

  const chosen = targets.filter((t) => !a.only || a.only.includes(t.name));
  const perTarget = new Map<string, Result[]>(chosen.map((t) => [t.name, []]));
  const loads: string[] = [];
  try {
    for (let round = 0; round < a.runs; round++) {
      const load0 = loadavg();
      const order = chosen.map((_, i) => chosen[(i + round) % chosen.length]!);
      for (const t of order) {
        console.error(`round ${round + 1}/${a.runs}: ${t.name} …`);
        const p = t.run ? t.run() : null;
        try {
          await waitPort(t.http);
          const pid = p ? p.pid! : null;
          const memPerConn = pid !== null ? await memoryPerConn(pid, t.http, a.idle) : null;
          wrk(t.http, { ...a, duration: 2 }, false); // warm-up, both paths
          wrk(t.http, { ...a, duration: 2 }, true);
          const keepalive = wrk(t.http, a, false, pid);
          const release = pid !== null && a.cap > 0 ? capCpu(pid, a.cap) : null;
          const capped = release ? wrk(t.http, a, false, pid) : NO_WRK;
          release?.();
          const close = wrk(t.http, a, true, pid);
          const gbps = iperf(t.bulk, a);
          const r = { name: t.name, keepalive, capped, close, gbps, memPerConn };
          console.error(
            `  keep-alive ${keepalive.rps.toFixed(0)}/s (${keepalive.cpu.toFixed(1)} µs CPU/req), ` +
              (release ? `on ${a.cap} % of a core ${capped.rps.toFixed(0)}/s, ` : '') +
              `new conn ${close.rps.toFixed(0)}/s (${close.cpu.toFixed(1)} µs CPU/conn), ${gbps.toFixed(2)} Gbit/s` +
              (memPerConn === null ? '' : `, ${memPerConn.toFixed(0)} B/idle conn`),
          );
          perTarget.get(t.name)!.push(r);
        } finally {
          if (p) await stop(p);
        }
      }
      loads.push(`${load0} → ${loadavg()}`);
    }
  } finally {
    await stop(backend);
    await stop(iperfd);
  }
  const results = chosen.map((t) => summarize(t.name, perTarget.get(t.name)!));
  const report = table(results, a, loads) + roundRatios(perTarget);
  process.stdout.write(report);
  if (a.out) writeFileSync(a.out, report);
}

/**
 * Each target's ratio to HAProxy within every round (the two ran minutes apart, so drift in the
 * machine's speed cancels out), with the median: steadier than the ratio of the medians.
 */
function roundRatios(per: Map<string, Result[]>): string {
  const h = per.get('HAProxy');
  if (!h) return '';
  const cols: [string, (r: Result) => number, boolean][] = [
    ['keep-alive', (r) => r.keepalive.rps, false],
    ['capped keep-alive', (r) => r.capped.rps, false],
    ['new connections', (r) => r.close.rps, false],
    ['CPU per request', (r) => r.keepalive.cpu, true],
  ];
  const lines = ['', 'Per-round ratios to HAProxy (median; every round in order):', ''];
  for (const [name, rs] of per) {
    if (name === 'HAProxy' || name === 'no proxy') continue;
    const parts: string[] = [];
    for (const [col, get, lowerBetter] of cols) {
      const xs = rs.map((r, i) => {
        const v = get(r);
        const hv = h[i] ? get(h[i]) : NaN;
        return lowerBetter ? hv / v : v / hv;
      });
      if (!xs.some((x) => Number.isFinite(x))) continue;
      const shown = xs.map((x) => (Number.isFinite(x) ? x.toFixed(2) : '—')).join(', ');
      parts.push(`${col} ${median(xs).toFixed(2)}× (${shown})`);
    }
    lines.push(`- ${name}: ${parts.join('; ')}`);
  }
  return `${lines.join('\n')}\n`;
}

function table(rs: Result[], a: Args, loads: string[]): string {
  const h = rs.find((r) => r.name === 'HAProxy');
  const ratio = (v: number, hv: number | undefined, lowerBetter = false): string =>
    hv && Number.isFinite(v) && Number.isFinite(hv)
      ? ` (${(lowerBetter ? hv / v : v / hv).toFixed(2)}×)`
      : '';
  const lines = [
    `Node ${process.version}, ${availableParallelism()} CPUs, ${twoCpus ? 'proxy on CPU 1, load and backends on CPU 0' : 'no CPU pinning'}; ` +
      `wrk -t1 -c${a.conns} -d${a.duration}s; iperf3 -t ${Math.max(3, Math.round(a.duration / 2))}; ${a.idle} idle connections; ` +
      `median of ${a.runs} interleaved rounds. ` +
      'Ratios are to HAProxy (higher is better; memory and CPU: HAProxy ÷ ours).',
    '',
    `| | keep-alive req/s | keep-alive req/s, ${a.cap > 0 ? `proxy on ${a.cap} % of a core` : 'capped run off (--cap 0)'} | new conn/s | p50 ms | p99 ms | bulk Gbit/s | bytes / idle conn | CPU µs / req | CPU µs / new conn |`,
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const num = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toFixed(digits) : '—');
  for (const r of rs) {
    lines.push(
      `| ${r.name} | ${num(r.keepalive.rps)}${ratio(r.keepalive.rps, h?.keepalive.rps)} | ` +
        `${num(r.capped.rps)}${ratio(r.capped.rps, h?.capped.rps)} | ` +
        `${num(r.close.rps)}${ratio(r.close.rps, h?.close.rps)} | ${num(r.keepalive.p50, 2)} | ${num(r.keepalive.p99, 2)} | ` +
        `${num(r.gbps, 2)}${ratio(r.gbps, h?.gbps)} | ` +
        `${r.memPerConn === null ? '—' : `${r.memPerConn.toFixed(0)}${ratio(r.memPerConn, h?.memPerConn ?? undefined, true)}`} | ` +
        `${num(r.keepalive.cpu, 1)}${ratio(r.keepalive.cpu, h?.keepalive.cpu, true)} | ` +
        `${num(r.close.cpu, 1)}${ratio(r.close.cpu, h?.close.cpu, true)} |`,
    );
  }
  lines.push(
    '',
    `Load average (1, 5, 15 min) at the start → end of each round: ${loads.join('; ')}.`,
  );
  return `${lines.join('\n')}\n`;
}

await main();
