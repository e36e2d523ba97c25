/**
 * The contracts of `ipvs daemon` and its control socket that users script against (DESIGN.md,
 * "Contracts"): --help, --http values and the HTTP listener, rules files refused by any failing line
 * (named), a failed start that leaves nothing open, a second daemon refused before it loads
 * anything, the socket's directory, other users, group commit of the state file under a large
 * `ipvs adm -R`, clients that do not read, `ipvs adm … | head`, and a proxied connection in flight
 * finishing on SIGTERM. Every daemon and child is stopped in `after`, also on failure.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { Daemon, type DaemonOptions } from '../../src/cli/daemon.js';
import { runAdm } from '../../src/cli/adm/run.js';
import { ControlClient } from '../../src/ctl/client.js';
import { destSpec, fillConns, svcSpec } from '../helpers/ipvs.js';
import { readStateFile, writeStateFile } from '../../src/config/state.js';
import { IpvsError } from '../../src/core/errors.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const IPVS = join(ROOT, 'bin', 'ipvs');
const quiet = () => {};
const isRoot = process.getuid?.() === 0;

const dir = mkdtempSync(join(tmpdir(), 'ipvs-contracts-'));
const daemons = new Set<Daemon>();
const children = new Set<ChildProcess>();
const servers = new Set<Server>();
/** Temporary directories outside `dir` (removed in `after` too). */
const tmpDirs: string[] = [];
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of daemons) await d.stop(0);
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

let n = 0;
function opts(o: Partial<DaemonOptions> = {}): DaemonOptions {
  return {
    dataplane: 'none',
    control: join(dir, `s${++n}.sock`),
    rules: undefined,
    stateFile: undefined,
    ...o,
  };
}

async function start(o: DaemonOptions, log: (m: string) => void = quiet): Promise<Daemon> {
  const d = await Daemon.start(o, log);
  daemons.add(d);
  return d;
}

function codeOf(e: unknown): string {
  return e instanceof IpvsError ? e.code : String(e);
}

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** Resolves true when 127.0.0.1:port can be bound (nothing listens on it). */
async function bindable(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function run(args: string[], input = '') {
  return spawnSync(process.execPath, [IPVS, ...args], { input, encoding: 'utf8', timeout: 5000 });
}

describe('ipvs daemon', () => {
  it('--help prints the usage on stdout with status 0', () => {
    const r = run(['daemon', '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: ipvs daemon \[--dataplane proxy\|packet\|none\]/);
    assert.match(r.stdout, /--state-file FILE/);
    assert.match(r.stdout, /--http HOST:PORT +read-only HTTP: GET \/metrics/);
    assert.equal(r.stderr, '');
  });

  it('--http serves HTTP (the bound port logged); a bad value is refused (status 1), not ignored', async () => {
    const r = run([
      'daemon',
      '--dataplane',
      'none',
      '--control',
      join(dir, 'h.sock'),
      '--http',
      '127.0.0.1',
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ipvs daemon: IPVS_ERR_HTTP_ADDRESS: --http 127\.0\.0\.1: no port;/m);
    await assert.rejects(Daemon.start(opts({ http: 'localhost' }), quiet), (e: unknown) => {
      return codeOf(e) === 'IPVS_ERR_HTTP_ADDRESS';
    });
    const logs: string[] = [];
    const d = await start(opts({ http: '127.0.0.1:0' }), (m) => logs.push(m));
    const port = d.http!.address.port;
    assert.ok(port > 0);
    assert.ok(logs.includes(`http listening on 127.0.0.1:${port}`), logs.join('\n'));
    await d.stop(0);
    assert.equal(await bindable(port), true, 'the HTTP listener closed with the daemon');
  });

  it('refuses a rules file in which any line fails, naming each failing line', async () => {
    const rules = join(dir, 'bad.rules');
    writeFileSync(
      rules,
      '# comment\n-A -t 10.0.0.1:80 -s rr\n\n-A -t 10.0.0.2:80 -s nosuch\n-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.3:80 -s rr\n',
    );
    const logs: string[] = [];
    const o = opts({ rules });
    await assert.rejects(
      start(o, (m) => logs.push(m)),
      (e: unknown) => codeOf(e) === 'IPVS_ERR_STATE_FILE',
    );
    const text = logs.join('\n');
    // one log line (`ipvs daemon: ` prefix) per failing line
    assert.ok(logs.includes(`${rules}:4: Scheduler or persistence engine not found`), text);
    assert.ok(logs.includes(`${rules}:5: Service already exists`), text);
    assert.doesNotMatch(text, /:6:/);
    assert.equal(existsSync(o.control!), false, 'no control socket left behind');
  });

  it('a failed start closes the listeners it opened, so the process can exit', async () => {
    const port = await freePort();
    const rules = join(dir, 'proxy.rules');
    writeFileSync(rules, `-A -t 127.0.0.1:${port} -s rr\n-A -t 127.0.0.1:${port + 1} -s nosuch\n`);
    await assert.rejects(start(opts({ dataplane: 'proxy', rules }), quiet));
    assert.equal(await bindable(port), true, 'the VIP listener of line 1 was closed');
  });

  it('refuses a state file it cannot write with IPVS_ERR_STATE_FILE, leaving no socket', async () => {
    const o = opts({ stateFile: join(dir, 'no-such-dir', 'state.json') });
    await assert.rejects(
      start(o),
      (e: unknown) =>
        codeOf(e) === 'IPVS_ERR_STATE_FILE' && /cannot write the state file/.test(String(e)),
    );
    assert.equal(existsSync(o.control!), false, 'the control socket was removed');
  });

  it('refuses a second daemon on the same socket before applying its rules', async () => {
    const first = await start(opts());
    const port = await freePort();
    const rules = join(dir, 'second.rules');
    writeFileSync(rules, `-A -t 127.0.0.1:${port} -s rr\n`);
    await assert.rejects(
      start({ ...opts({ dataplane: 'proxy', rules }), control: first.server.path }),
      (e: unknown) => codeOf(e) === 'IPVS_ERR_SOCKET_IN_USE',
    );
    assert.equal(await bindable(port), true, 'the second daemon bound nothing');
  });
});

describe('ipvs adm', () => {
  it('--control without a PATH says so (status 2) instead of handing it to ipvsadm', () => {
    for (const args of [
      ['adm', '--control'],
      ['adm', '--control='],
    ]) {
      const r = run(args);
      assert.equal(r.status, 2);
      assert.equal(
        r.stderr,
        'ipvs adm: --control needs a PATH: ipvs adm --control PATH <ipvsadm args>\n',
      );
    }
  });
});

describe('control socket directory', () => {
  it('is refused when others may write to it (no sticky bit)', async () => {
    const d = join(dir, 'open');
    mkdirSync(d);
    chmodSync(d, 0o777);
    await assert.rejects(
      start(opts({ control: join(d, 'ctl.sock') })),
      (e: unknown) => codeOf(e) === 'IPVS_ERR_SOCKET_DIR' && /writable by others/.test(String(e)),
    );
    const sticky = join(dir, 'sticky');
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    await start(opts({ control: join(sticky, 'ctl.sock') }));
  });

  it('is refused when it belongs to another user', { skip: !isRoot && 'needs root' }, async () => {
    const d = join(dir, 'theirs');
    mkdirSync(d);
    chownSync(d, 65534, 65534);
    await assert.rejects(
      start(opts({ control: join(d, 'ctl.sock') })),
      (e: unknown) => codeOf(e) === 'IPVS_ERR_SOCKET_DIR' && /belongs to uid 65534/.test(String(e)),
    );
  });

  it('is created 0700 when missing', async () => {
    const d = join(dir, 'new', 'sub');
    const daemon = await start(opts({ control: join(d, 'ctl.sock') }));
    assert.equal(statSync(d).mode & 0o777, 0o700);
    assert.equal(statSync(daemon.server.path).mode & 0o777, 0o600);
  });
});

describe('another user', { skip: !isRoot && 'needs root (setpriv to nobody)' }, () => {
  it('can neither read nor change state, and ipvs adm says so like ipvsadm (status 2)', async () => {
    // others may reach the socket file (the directory and its parent are open), but it is 0600
    const d = mkdtempSync(join(tmpdir(), 'ipvs-shared-'));
    chmodSync(d, 0o755);
    // nobody may not be able to read the checkout (a fresh clone in a 0700 temporary directory):
    // run a copy of the CLI (it has no runtime dependencies) from a directory anyone may read
    const cli = mkdtempSync(join(tmpdir(), 'ipvs-cli-'));
    chmodSync(cli, 0o755);
    tmpDirs.push(d, cli);
    for (const part of ['package.json', 'bin', join('dist', 'src')])
      cpSync(join(ROOT, part), join(cli, part), { recursive: true });
    const daemon = await start(opts({ control: join(d, 'ctl.sock') }));
    const asNobody = (args: string[]) =>
      new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const c = spawn(
          'setpriv',
          ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...args],
          { stdio: ['ignore', 'ignore', 'pipe'] },
        );
        children.add(c);
        let stderr = '';
        c.stderr!.on('data', (b) => (stderr += b));
        c.on('exit', (status) => resolve({ status, stderr }));
      });
    for (const args of [['-Ln'], ['-A', '-t', '10.0.0.1:80']]) {
      const r = await asNobody([
        join(cli, 'bin', 'ipvs'),
        'adm',
        '--control',
        daemon.server.path,
        ...args,
      ]);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(
        r.stderr,
        "Can't initialize ipvs: Permission denied (you must be root)\n" +
          `Permission denied on the control socket ${daemon.server.path}: only the user who runs the ipvs-ts daemon (or root) may use it.\n`,
      );
    }
    const raw = await asNobody([
      '-e',
      `require('net').connect(${JSON.stringify(daemon.server.path)}).on('error', (e) => { console.error(e.code); process.exit(3); }).on('connect', () => process.exit(0));`,
    ]);
    assert.equal(raw.status, 3);
    assert.match(raw.stderr, /EACCES/);
    assert.equal(daemon.ipvs.listServices().length, 0);
  });
});

describe('state file', () => {
  it('a large ipvs adm -R is saved by group commit, not once per line', async () => {
    const stateFile = join(dir, 'big.json');
    const daemon = await start(opts({ stateFile }));
    let writes = 0;
    daemon.controller.setCommit(() => {
      writes++;
      writeStateFile(stateFile, daemon.ipvs);
    });
    const lines: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const vip = `10.1.${i >> 8}.${i & 255}`;
      lines.push(`-A -t ${vip}:80 -s rr`, `-a -t ${vip}:80 -r 192.168.0.1:8080 -m`);
    }
    lines.splice(500, 0, '-A -t 10.1.0.1:80 -s rr'); // a refused line in the middle
    let err = '';
    const status = await runAdm(['-R'], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => (err += s) },
      readStdin: async () => `${lines.join('\n')}\n`,
      backend: () => ControlClient.connect(daemon.server.path),
    });
    assert.equal(status, 0);
    assert.equal(err, 'Service already exists\n');
    assert.ok(writes < 200, `${writes} state-file writes for ${lines.length} changes`);
    const saved = readStateFile(stateFile)!;
    assert.equal(saved.commands.filter((c) => c.cmd === 'newService').length, 1000);
    assert.equal(saved.commands.filter((c) => c.cmd === 'newDest').length, 1000);
  });

  it('every change of a batch whose save fails is answered IPVS_ERR_STATE_FILE', async () => {
    const daemon = await start(opts({ stateFile: join(dir, 'fail.json') }));
    daemon.controller.setCommit(() => {
      throw new Error('disk full');
    });
    const svc = (port: number) => ({
      af: 2,
      protocol: 6,
      addr: '10.0.0.1',
      port,
      fwmark: 0,
      scheduler: 'rr',
      flags: 0,
      timeout: 0,
      netmask: 0xffffffff,
      pe: '',
    });
    const replies = await Promise.all([
      daemon.controller.submit({ cmd: 'newService', id: 1, service: svc(1) }),
      daemon.controller.submit({ cmd: 'getInfo', id: 2 }),
      daemon.controller.submit({ cmd: 'newService', id: 3, service: svc(2) }),
    ]);
    assert.deepEqual(
      replies.map((r) => (r.ok ? 'ok' : r.error.code)),
      ['IPVS_ERR_STATE_FILE', 'ok', 'IPVS_ERR_STATE_FILE'],
    );
    assert.deepEqual(
      replies.map((r) => r.id),
      [1, 2, 3],
    );
  });
});

describe('control socket clients', () => {
  it('a client that does not read its replies is not read from until it does', async () => {
    const daemon = await start(opts());
    const s = connect(daemon.server.path);
    await new Promise<void>((r) => s.once('connect', r));
    s.pause(); // never read
    const total = 40_000;
    const chunk: string[] = [];
    for (let i = 1; i <= total; i++) {
      chunk.push(
        '{"cmd":"getSysctls"}',
        `{"cmd":"setConfig","timeouts":{"tcp":${i},"tcpfin":0,"udp":0}}`,
      );
      if (chunk.length >= 2000) s.write(`${chunk.splice(0).join('\n')}\n`);
    }
    await new Promise((r) => setTimeout(r, 700));
    const applied = daemon.ipvs.getTimeouts().tcp;
    assert.ok(applied < total, `the daemon kept reading: ${applied} of ${total} applied`);
    s.destroy();
  });

  it('a client pipelining big reads it never reads back leaves the others their turn', async () => {
    const daemon = await start(opts());
    for (let i = 0; i < 1000; i++) {
      const service = svcSpec(`10.3.${i >> 8}.${i & 255}`, 80, { scheduler: 'rr' });
      daemon.controller.run({ cmd: 'newService', service });
      daemon.controller.run({ cmd: 'newDest', service, dest: destSpec('192.0.2.1', 80) });
    }
    const s = connect(daemon.server.path);
    await new Promise<void>((r) => s.once('connect', r));
    s.pause(); // never read: each reply is ~0.5 MB
    s.write('{"cmd":"getServices"}\n'.repeat(3000));
    await new Promise((r) => setTimeout(r, 200));
    const heap = process.memoryUsage().heapUsed;
    // another client is answered at once, not after 3,000 replies were built and queued
    const c = connect(daemon.server.path);
    const reply = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply within 5 s')), 5000);
      c.once('data', (d: Buffer) => {
        clearTimeout(t);
        resolve(d.toString());
      });
      c.write('{"cmd":"getInfo","id":7}\n');
    });
    assert.match(reply, /^\{"id":7,"ok":true/);
    const grown = process.memoryUsage().heapUsed - heap;
    assert.ok(grown < 200 * 1024 * 1024, `heap grew by ${grown} bytes`);
    c.destroy();
    s.destroy();
  });

  it('a listing above 64 MiB (220,000 real servers) reaches the client whole', async () => {
    const daemon = await start(opts());
    for (let i = 0; i < 200; i++) {
      const service = svcSpec(`10.4.${i}.1`, 80, { scheduler: 'rr' });
      daemon.ipvs.addService(service);
      for (let j = 0; j < 1100; j++)
        daemon.ipvs.addDest(service, destSpec(`192.${j >> 8}.${j & 255}.${i}`, 80));
    }
    const client = await ControlClient.connect(daemon.server.path);
    try {
      const services = await client.call({ cmd: 'getServices' });
      assert.equal(services.length, 200);
      assert.equal(
        services.reduce((n, s) => n + s.dests.length, 0),
        220_000,
      );
    } finally {
      client.close();
    }
    daemon.ipvs.flush();
  });

  it('ipvs adm -Lnc prints each page as it comes: its first bytes arrive before the rest is fetched', async () => {
    const daemon = await start(opts());
    fillConns(daemon.ipvs, 60_000);
    const controller = daemon.controller;
    const runAsync = controller.runAsync.bind(controller);
    let pages = 0;
    controller.runAsync = ((cmd: Parameters<typeof runAsync>[0], ...rest: [boolean?]) => {
      if (cmd.cmd === 'getConnsPage') pages++;
      return runAsync(cmd, ...rest);
    }) as typeof controller.runAsync;
    const c = spawn(process.execPath, [IPVS, 'adm', '--control', daemon.server.path, '-Lnc'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(c);
    let atFirst = -1;
    let lines = 0;
    let stderr = '';
    c.stdout!.on('data', (b: Buffer) => {
      if (atFirst < 0) atFirst = pages;
      for (const x of b) if (x === 10) lines++;
    });
    c.stderr!.on('data', (b) => (stderr += b));
    const status = await new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
    assert.equal(status, 0, stderr);
    assert.equal(lines, 60_002);
    assert.ok(pages >= 6, `${pages} pages in all`);
    // the first page is on the pipe while the daemon has served at most the one after it
    assert.ok(atFirst >= 1 && atFirst <= 2, `${atFirst} pages fetched before the first byte`);
    daemon.ipvs.flush();
  });

  it('ipvs adm -Ln | head: no stack trace when the reader goes away', async () => {
    const daemon = await start(opts());
    for (let i = 0; i < 8000; i++) {
      // well over a pipe's 64 KiB, so the writer meets the closed pipe
      daemon.controller.run({
        cmd: 'newService',
        service: {
          af: 2,
          protocol: 6,
          addr: `10.2.${i >> 8}.${i & 255}`,
          port: 80,
          fwmark: 0,
          scheduler: 'rr',
          flags: 0,
          timeout: 0,
          netmask: 0xffffffff,
          pe: '',
        },
      });
    }
    const c = spawn(
      'bash',
      [
        '-c',
        'set -o pipefail; "$0" "$1" adm --control "$2" -Ln | head -c 1 >/dev/null',
        process.execPath,
        IPVS,
        daemon.server.path,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.add(c);
    let stderr = '';
    c.stderr!.on('data', (b) => (stderr += b));
    const status = await new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
    assert.equal(stderr, '');
    assert.equal(status, 141);
  });
});

describe('stopping', () => {
  it('SIGUSR2 logs the data plane’s counters and the daemon goes on (proxy and none)', async () => {
    for (const [plane, line] of [
      ['proxy', /proxy counters (\{.*\})\n/],
      ['none', /none: the data plane keeps no counters\n/],
    ] as const) {
      const sock = join(dir, `usr2-${plane}.sock`);
      const child = spawn(
        process.execPath,
        [IPVS, 'daemon', '--dataplane', plane, '--control', sock],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      children.add(child);
      let log = '';
      const seen = (re: RegExp) =>
        new Promise<RegExpMatchArray>((resolve, reject) => {
          const check = () => {
            const m = re.exec(log);
            if (m) resolve(m);
          };
          child.stderr!.on('data', (b) => {
            log += b;
            check();
          });
          child.once('exit', (code) => reject(new Error(`exited ${code}: ${log}`)));
          check();
        });
      await seen(/listening on/);
      child.kill('SIGUSR2');
      const m = await seen(line);
      if (plane === 'proxy') {
        const c = JSON.parse(m[1]!) as { open: { tcp: number }; accepted: number };
        assert.equal(c.open.tcp, 0);
        assert.equal(c.accepted, 0);
      }
      // still serving
      const client = await ControlClient.connect(sock);
      assert.equal((await client.call({ cmd: 'getInfo' })).version, 0x010201);
      client.close();
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, log);
    }
  });

  it('SIGTERM lets a proxied TCP connection in flight finish, then removes the socket', async () => {
    const backend = createServer((s) =>
      s.on('data', () => setTimeout(() => s.end('late reply\n'), 400)),
    );
    servers.add(backend);
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const bport = (backend.address() as AddressInfo).port;
    const vport = await freePort();
    const sock = join(dir, 'drain.sock');
    const child = spawn(process.execPath, [IPVS, 'daemon', '--control', sock], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.add(child);
    let log = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (b) => {
        log += b;
        if (log.includes('listening on')) resolve();
      });
      child.once('exit', () => reject(new Error(log)));
    });
    const client = await ControlClient.connect(sock);
    const key = { af: 2, protocol: 6, addr: '127.0.0.1', port: vport, fwmark: 0 } as const;
    await client.call({
      cmd: 'newService',
      service: { ...key, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, pe: '' },
    });
    await client.call({
      cmd: 'newDest',
      service: key,
      dest: {
        af: 2,
        addr: '127.0.0.1',
        port: bport,
        fwd: 0,
        weight: 1,
        uThreshold: 0,
        lThreshold: 0,
        tunType: 0,
        tunPort: 0,
        tunFlags: 0,
      },
    });
    client.close();
    const c = connect(vport, '127.0.0.1');
    let got = '';
    c.on('data', (b) => (got += b));
    c.on('error', () => {});
    await new Promise<void>((r) => c.once('connect', r));
    c.write('hello\n');
    await new Promise((r) => setTimeout(r, 100));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    assert.equal(got, 'late reply\n');
    assert.equal(existsSync(sock), false, 'socket file removed');
  });
});
