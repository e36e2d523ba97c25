/**
 * `ipvs daemon --http HOST:PORT` end to end: the real daemon, configured with `ipvs adm`, read
 * over a real socket — /proc/net/ip_vs in the kernel's text, /metrics that a scraper parses,
 * the connection texts streamed in pages over a table of 25,000 entries, 404 / 405, bad or taken
 * addresses refused with their code (and nothing left open), and the listener gone after
 * SIGTERM. Every daemon and child is stopped in `after`, also on failure.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { Daemon, type DaemonOptions } from '../../src/cli/daemon.js';
import { IpvsError } from '../../src/core/errors.js';
import { HttpServer, parseHttpAddress, type ObservabilitySource } from '../../src/ctl/http.js';
import { fillConns } from '../helpers/ipvs.js';
import { stats } from '../cli/fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const IPVS = join(ROOT, 'bin', 'ipvs');
const quiet = () => {};

const dir = mkdtempSync(join(tmpdir(), 'ipvs-http-'));
const children = new Set<ChildProcess>();
const daemons = new Set<Daemon>();
const servers = new Set<Server>();
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of daemons) await d.stop(0);
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
const sockPath = () => join(dir, `h${++n}.sock`);

/** Starts `bin/ipvs daemon`; resolves once the control socket listens, with the HTTP port. */
function startDaemon(
  sock: string,
  http: string,
): Promise<{ child: ChildProcess; port: number; log: () => string }> {
  const child = spawn(
    process.execPath,
    [IPVS, 'daemon', '--dataplane', 'none', '--control', sock, '--http', http],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start: ${log}`)), 10_000);
    child.stderr!.on('data', (c) => {
      log += c.toString();
      const m = /http listening on 127\.0\.0\.1:(\d+)\n/.exec(log);
      if (m && log.includes(`listening on ${sock}`)) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), log: () => log });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited ${code}: ${log}`));
    });
  });
}

function adm(sock: string, args: string) {
  const r = spawnSync(process.execPath, [IPVS, 'adm', '--control', sock, ...args.split(' ')], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `ipvs adm ${args}: ${r.stderr}`);
  return r.stdout;
}

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, method = 'GET'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A source with no connections and zero totals whose services come from `services`. */
function fakeSource(services: ObservabilitySource['services']): ObservabilitySource {
  return {
    info: () => Promise.resolve({ version: '1.2.1', size: 4096, services: 0 } as never),
    services,
    connsPage: () => Promise.resolve({ conns: [], next: -1 }),
    totals: () => ({
      stats: stats(),
      raw: { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 },
      conns: 0,
    }),
    apps: () => [],
  };
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. */
function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function run(args: string[]) {
  return spawnSync(process.execPath, [IPVS, ...args], { encoding: 'utf8', timeout: 10_000 });
}

function codeOf(e: unknown): string {
  return e instanceof IpvsError ? e.code : String(e);
}

describe('ipvs daemon --http', () => {
  it('serves /proc/net/ip_vs and /metrics for what ipvs adm configured; closes on SIGTERM', async () => {
    const sock = sockPath();
    const { child, port } = await startDaemon(sock, '127.0.0.1:0');
    adm(sock, '-A -t 10.0.0.1:80 -s rr');
    adm(sock, '-a -t 10.0.0.1:80 -r 192.168.1.10:8080 -m -w 3');
    adm(sock, '-A -u [2001:db8::1]:53 -s sh -p 120');
    adm(sock, '-a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -m');
    adm(sock, '-A -f 5 -s wlc');

    const proc = await get(port, '/proc/net/ip_vs');
    assert.equal(proc.status, 200);
    assert.equal(proc.headers['content-type'], 'text/plain; charset=utf-8');
    const size = /size=(\d+)/.exec(adm(sock, '-L -n'))![1];
    // services in the kernel's hash order (unsorted), fwmark services after the others
    const blocks = (t: string) => t.split(/\n(?! {2}->)/);
    const expected = [
      `IP Virtual Server version 1.2.1 (size=${size})`,
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn',
      'TCP  0A000001:0050 rr  ',
      '  -> C0A8010A:1F90      Masq    3      0          0         ',
      'UDP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0035 sh persistent 120000 80000000',
      '  -> [2001:0db8:0000:0000:0000:0000:0000:0010]:0035      Masq    1      0          0         ',
      'FWM  00000005 wlc ',
      '',
    ].join('\n');
    assert.deepEqual(blocks(proc.body).sort(), blocks(expected).sort());
    assert.ok(proc.body.endsWith('\nFWM  00000005 wlc \n'));

    const m = await get(port, '/metrics');
    assert.equal(m.status, 200);
    assert.equal(m.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(m.body, /^# HELP ipvs_connections_total /m);
    assert.match(m.body, /^# TYPE ipvs_backend_weight gauge$/m);
    assert.match(
      m.body,
      /^ipvs_backend_weight\{family="inet",proto="TCP",local_address="10\.0\.0\.1",local_port="80",local_mark="",remote_address="192\.168\.1\.10",remote_port="8080",forward="Masq"\} 3$/m,
    );
    assert.match(
      m.body,
      /^ipvs_service_connections_total\{family="inet",proto="FWM",local_address="",local_port="0",local_mark="5"\} 0$/m,
    );
    assert.match(m.body, /^ipvs_connection_table_entries 0$/m);

    const stats = await get(port, '/proc/net/ip_vs_stats');
    assert.equal(
      stats.body.split('\n')[2],
      `${'0'.padStart(8)} ${'0'.padStart(8)} ${'0'.padStart(8)} ${'0'.padStart(16)} ${'0'.padStart(16)}`,
    );
    const conns = await get(port, '/proc/net/ip_vs_conn');
    assert.equal(
      conns.body,
      'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n',
    );
    // the none data plane has no FTP helper: the header alone, as a kernel without ip_vs_ftp
    assert.equal((await get(port, '/proc/net/ip_vs_app')).body, 'prot port    usecnt name\n');

    // read-only: other methods 405, other paths 404, HEAD has no body; nothing changed
    const post = await get(port, '/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.equal((await get(port, '/proc/net/ip_vs', 'DELETE')).status, 405);
    const missing = await get(port, '/api/v1/services');
    assert.equal(missing.status, 404);
    assert.match(missing.body, /^Not found: \/api\/v1\/services\n/);
    const head = await get(port, '/proc/net/ip_vs', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal((await get(port, '/proc/net/ip_vs?x=1')).body, proc.body);
    // absolute-form request targets are served too (RFC 7230 §5.3.2)
    assert.equal((await get(port, `http://127.0.0.1:${port}/proc/net/ip_vs`)).body, proc.body);
    assert.equal((await get(port, `http://127.0.0.1:${port}/nope`)).status, 404);

    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(await accepting(port), false, 'the HTTP listener is closed');
  });

  it('refuses bad --http values with IPVS_ERR_HTTP_ADDRESS (status 1), leaving nothing behind', () => {
    for (const bad of [
      '9100',
      '127.0.0.1',
      '127.0.0.1:',
      '127.0.0.1:65536',
      ':80',
      '[nope]:80',
      'a b:80',
    ]) {
      const sock = sockPath();
      const r = run(['daemon', '--dataplane', 'none', '--control', sock, '--http', bad]);
      assert.equal(r.status, 1, `${bad}: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(`IPVS_ERR_HTTP_ADDRESS: --http ${bad.replace(/[.[\]]/g, '\\$&')}: `),
      );
      assert.equal(existsSync(sock), false);
    }
    assert.deepEqual(parseHttpAddress('[::1]:9100'), { host: '::1', port: 9100 });
    assert.deepEqual(parseHttpAddress('localhost:0'), { host: 'localhost', port: 0 });
  });

  it('refuses a taken port with IPVS_ERR_HTTP_LISTEN and closes what it had opened', async () => {
    const taken = createServer();
    servers.add(taken);
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    const sock = sockPath();
    const r = run([
      'daemon',
      '--dataplane',
      'none',
      '--control',
      sock,
      '--http',
      `127.0.0.1:${port}`,
    ]);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `--http 127\\.0\\.0\\.1:${port}: cannot listen: the address is in use \\(EADDRINUSE, IPVS_ERR_HTTP_LISTEN\\)`,
      ),
    );
    assert.equal(existsSync(sock), false, 'no control socket left');
    // in-process: the same code (the listener is bound before any rule is applied)
    const o: DaemonOptions = {
      dataplane: 'none',
      control: sockPath(),
      rules: undefined,
      stateFile: undefined,
      http: `127.0.0.1:${port}`,
    };
    await assert.rejects(
      Daemon.start(o, quiet),
      (e: unknown) => codeOf(e) === 'IPVS_ERR_HTTP_LISTEN',
    );
  });

  it('streams /proc/net/ip_vs_conn of 25,000 connections page by page, each once', async () => {
    const d = await Daemon.start(
      {
        dataplane: 'none',
        control: sockPath(),
        rules: undefined,
        stateFile: undefined,
        http: '127.0.0.1:0',
      },
      quiet,
    );
    daemons.add(d);
    fillConns(d.ipvs, 25_000);
    const port = d.http!.address.port;
    const r = await get(port, '/proc/net/ip_vs_conn');
    assert.equal(r.status, 200);
    assert.equal(r.headers['transfer-encoding'], 'chunked', 'streamed, not one buffer');
    const lines = r.body.split('\n').filter(Boolean);
    assert.equal(
      lines[0],
      'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData',
    );
    const rows = lines.slice(1);
    assert.equal(rows.length, 25_000);
    assert.equal(new Set(rows.map((l) => l.slice(4, 18))).size, 25_000, 'each client once');
    assert.match(
      rows[0]!,
      /^TCP CB00[0-9A-F]{4} [0-9A-F]{4} 0A000001 0050 C0A8010A 0050 NONE {14}[0-3]$/,
    );
    const sync = await get(port, '/proc/net/ip_vs_conn_sync');
    assert.equal(sync.body.split('\n').filter((l) => / LOCAL +\d+$/.test(l)).length, 25_000);
    const m = await get(port, '/metrics');
    assert.match(m.body, /^ipvs_connection_table_entries 25000$/m);
    assert.match(m.body, /^ipvs_connections_total 25000$/m);
    const pc = (await get(port, '/proc/net/ip_vs_stats_percpu')).body.split('\n');
    assert.match(pc[2]!, /^ {2}0 {5}61A8 /);
    assert.match(pc[3]!, /^ {2}~ {5}61A8 /);
    await d.stop(0);
    assert.equal(await accepting(port), false);
  });
  it('sends a large /metrics a family at a time, letting other work run in between', async () => {
    // 2,000 services x 4 real servers; reading a weight or a stats object is counted, so an
    // immediate can see how far the text has got
    let weights = 0;
    let statsRead = 0;
    const st = stats();
    const dest = (i: number, j: number) => ({
      af: 2,
      addr: `192.0.${j}.${i & 255}`,
      port: 8080,
      fwd: 0,
      get weight() {
        weights++;
        return 1;
      },
      activeConns: 1,
      inactConns: 2,
      persistConns: 0,
      get stats() {
        statsRead++;
        return st;
      },
    });
    const services = Array.from({ length: 2000 }, (_, i) => ({
      af: 2,
      protocol: 6,
      addr: `10.0.${i >> 8}.${i & 255}`,
      port: 80,
      fwmark: 0,
      stats: st,
      dests: [0, 1, 2, 3].map((j) => dest(i, j)),
    }));
    const source = fakeSource(() => Promise.resolve(services as never));
    const hs = await HttpServer.listen({ host: '127.0.0.1', port: 0 }, source);
    let between = false;
    let watching = true;
    const watch = () => {
      // the weights are written, the real servers' counters not all yet: something ran between
      if (weights === 8000 && statsRead > 0 && statsRead < 8000 * 10) between = true;
      if (watching) setImmediate(watch);
    };
    try {
      setImmediate(watch);
      const m = await get(hs.address.port, '/metrics');
      watching = false;
      assert.equal(m.status, 200);
      assert.equal(m.headers['transfer-encoding'], 'chunked');
      assert.equal(
        m.body.split('\n').filter((l) => l.startsWith('ipvs_backend_weight{')).length,
        8000,
      );
      assert.ok(m.body.endsWith('direction="out"} 0\n'), m.body.slice(-80));
      assert.equal(between, true, 'nothing ran while the text was built');
    } finally {
      watching = false;
      await hs.close();
    }
  });

  it('answers pipelined requests in order, building each reply only when the last was sent', async () => {
    // a source that counts how often a services list was built
    let built = 0;
    const source = fakeSource(() => {
      built++;
      return Promise.resolve([]);
    });
    const hs = await HttpServer.listen({ host: '127.0.0.1', port: 0 }, source);
    try {
      const port = hs.address.port;
      const pipeline = (reqs: string[], readAll: boolean): Promise<string> =>
        new Promise((resolve) => {
          const s = connect(port, '127.0.0.1');
          let got = '';
          s.on('data', (d) => (got += d.toString('latin1')));
          s.on('error', () => resolve(got));
          s.on('close', () => resolve(got));
          s.on('connect', () => {
            s.write(reqs.map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
            if (!readAll) s.destroy();
            else setTimeout(() => s.end(), 300);
          });
        });
      const got = await pipeline(['/proc/net/ip_vs_stats', '/nope', '/metrics'], true);
      assert.deepEqual(
        [...got.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => m[1]),
        ['200', '404', '200'],
      );
      assert.equal(built, 1);
      // 200 pipelined /metrics from a client that goes at once: not 200 replies built
      built = 0;
      await pipeline(Array<string>(200).fill('/metrics'), false);
      await new Promise((r) => setTimeout(r, 300));
      // how soon the close is noticed varies with the machine's load; 200 would mean no check
      assert.ok(built <= 10, `${built} replies built for a client that had gone`);
    } finally {
      await hs.close();
    }
  });
});
