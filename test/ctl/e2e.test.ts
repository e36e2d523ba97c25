/**
 * The real executables: `bin/ipvs daemon` with `bin/ipvsadm` / `bin/ipvs adm` against it over the
 * control socket, the state file surviving SIGKILL in the middle of a burst of changes, and the
 * message when no daemon answers. Every spawned daemon is killed in `after`/`finally`.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { parseState } from '../../src/config/state.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const IPVS = join(ROOT, 'bin', 'ipvs');
const IPVSADM = join(ROOT, 'bin', 'ipvsadm');
const SAVE = join(ROOT, 'bin', 'ipvsadm-save');
const RESTORE = join(ROOT, 'bin', 'ipvsadm-restore');

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

function startDaemon(args: string[]): Promise<{ child: ChildProcess; log: () => string }> {
  // control-plane tests: no traffic, so no data plane unless a test asks for one
  const plane = args.includes('--dataplane') ? [] : ['--dataplane', 'none'];
  const child = spawn(process.execPath, [IPVS, 'daemon', ...plane, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start: ${log}`)), 10_000);
    child.stderr!.on('data', (c) => {
      log += c.toString();
      if (log.includes('listening on')) {
        clearTimeout(timer);
        resolve({ child, log: () => log });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited ${code}: ${log}`));
    });
  });
}

function adm(bin: string, args: string[], input = '', env: NodeJS.ProcessEnv = process.env) {
  const pre = bin === IPVS ? ['adm'] : [];
  return spawnSync(process.execPath, [bin, ...pre, ...args], { input, encoding: 'utf8', env });
}

describe('ipvs daemon + ipvsadm (spawned)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipvs-e2e-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs ipvsadm commands against the daemon and stops cleanly on SIGTERM', async () => {
    const sock = join(dir, 'a.sock');
    const rules = join(dir, 'rules');
    writeFileSync(
      rules,
      '# initial rules\n-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 192.168.1.10:80 -m\n',
    );
    const { child, log } = await startDaemon(['--control', sock, '--rules', rules]);
    try {
      const c = ['--control', sock];
      assert.equal(
        adm(IPVSADM, [...c, '-a', '-t', '10.0.0.1:80', '-r', '192.168.1.11', '-m', '-w', '2'])
          .status,
        0,
      );
      const l = adm(IPVS, [...c, '-L', '-n']);
      assert.equal(l.status, 0);
      assert.equal(
        l.stdout,
        'IP Virtual Server version 1.2.1 (size=4096)\n' +
          'Prot LocalAddress:Port Scheduler Flags\n' +
          '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
          'TCP  10.0.0.1:80 rr\n' +
          '  -> 192.168.1.10:80              Masq    1      0          0         \n' +
          '  -> 192.168.1.11:80              Masq    2      0          0         \n',
      );
      const dup = adm(IPVSADM, [...c, '-A', '-t', '10.0.0.1:80']);
      assert.deepEqual([dup.status, dup.stderr], [255, 'Service already exists\n']);
      const r = adm(
        IPVSADM,
        [...c, '-R'],
        '-A -u 10.0.0.2:53\n-a -u 10.0.0.2:53 -r 192.168.1.20 -m\n',
      );
      assert.equal(r.status, 0, r.stderr);
      const env = { ...process.env, IPVS_CONTROL: sock };
      assert.equal(adm(IPVSADM, ['-S', '-n'], '', env).stdout.split('\n').length, 6);
      // ipvsadm-save, as ipvsadm ships it: -S with the arguments given
      const saved = adm(IPVS, [...c, '-S', '-n']).stdout;
      assert.equal(adm(SAVE, ['-n'], '', env).stdout, saved);
      assert.equal(adm(SAVE, [...c, '-n']).stdout, saved);
      assert.match(adm(SAVE, [...c]).stdout, /^-A -u 10\.0\.0\.2:domain -s wlc$/m);
      // ipvsadm-restore as the wrapper ipvsadm installs: `#` lines dropped, the table flushed
      // first (-C), the rest to -R; a `#` line given to -R itself is a usage error
      const restored = adm(RESTORE, [...c], '# saved\n-A -t 10.0.0.3:443 -s sh\n');
      assert.deepEqual([restored.status, restored.stderr], [0, '']);
      assert.equal(adm(SAVE, ['-n'], '', env).stdout, '-A -t 10.0.0.3:443 -s sh\n');
      const again = adm(RESTORE, [], '-A -t 10.0.0.4:80 -s rr\n#-A -t 10.0.0.5:80', env);
      assert.deepEqual([again.status, again.stderr], [0, '']);
      assert.equal(adm(SAVE, ['-n'], '', env).stdout, '-A -t 10.0.0.4:80 -s rr\n');
      const bad = adm(RESTORE, [], '-A -t 10.0.0.6:80\n-A -t 10.0.0.6:80\n', env);
      assert.deepEqual([bad.status, bad.stderr], [255, 'Service already exists\n']);
      const raw = adm(IPVSADM, [...c, '-R'], '# saved\n-A -t 10.0.0.7:80\n');
      assert.equal(raw.status, 255);
      assert.match(raw.stderr, /^Try `ipvsadm -h' or 'ipvsadm --help' for more information\.$/m);
      child.kill('SIGTERM');
      const code = await new Promise((res) => child.once('exit', (c) => res(c)));
      assert.equal(code, 0);
      assert.match(log(), /SIGTERM: stopping/);
      assert.equal(existsSync(sock), false, 'socket removed on clean stop');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses a second daemon on the same socket', async () => {
    const sock = join(dir, 'b.sock');
    const first = await startDaemon(['--control', sock]);
    try {
      const second = spawnSync(process.execPath, [IPVS, 'daemon', '--control', sock], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      assert.equal(second.status, 1);
      assert.match(
        second.stderr,
        /^ipvs daemon: IPVS_ERR_[A-Z_]+: Another ipvs-ts daemon is already listening on .*b\.sock/m,
      );
      assert.equal(
        adm(IPVSADM, ['--control', sock, '-L', '--timeout']).stdout,
        'Timeout (tcp tcpfin udp): 900 120 300\n',
      );
    } finally {
      first.child.kill('SIGKILL');
    }
  });

  it('says how to start a daemon when none answers (status 2)', () => {
    const r = adm(IPVSADM, ['--control', join(dir, 'nobody.sock'), '-L', '-n']);
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /^Can't initialize ipvs: No ipvs-ts daemon is listening on .*nobody\.sock\n/,
    );
    assert.match(r.stderr, /ipvs daemon/);
  });

  it('ipvs: unknown subcommand prints help to stderr and exits 2; --version prints the version', () => {
    const r = spawnSync(process.execPath, [IPVS, 'frobnicate'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /Usage: ipvs <command>/);
    const v = spawnSync(process.execPath, [IPVS, '--version'], { encoding: 'utf8' });
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(v.stdout, `ipvs ${pkg.version}\n`);
  });

  it('packet-only daemon options without --dataplane packet: a message and status 2', () => {
    for (const opt of [['--no-ingress-drop'], ['--iface', 'eth0']]) {
      const r = spawnSync(process.execPath, [IPVS, 'daemon', '--dataplane', 'none', ...opt], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 2, opt.join(' '));
      assert.match(
        r.stderr,
        /--iface, --route and --no-ingress-drop are options of --dataplane packet/,
      );
      assert.match(r.stderr, /Usage: ipvs daemon .*\[--no-ingress-drop\]/);
    }
  });

  it('loses no acknowledged change when SIGKILLed in the middle of a burst', async () => {
    const sock = join(dir, 'k.sock');
    const state = join(dir, 'state.json');
    const { child } = await startDaemon(['--control', sock, '--state-file', state]);
    const acked: number[] = [];
    try {
      const { ControlClient } = await import('../../src/ctl/client.js');
      const c = await ControlClient.connect(sock);
      // fire a burst without waiting; kill the daemon while it is going
      const pending: Promise<unknown>[] = [];
      for (let i = 1; i <= 400; i++) {
        const p = c
          .call({
            cmd: 'newService',
            service: {
              af: 2,
              protocol: 6,
              addr: `10.1.${i >> 8}.${i & 255}`,
              port: 80,
              fwmark: 0,
              scheduler: 'rr',
              flags: 0,
              timeout: 0,
              netmask: 0xffffffff,
              pe: '',
            },
          })
          .then(() => {
            // kill in the middle of the burst: after some acknowledgements, with more in flight
            if (acked.push(i) === 100) child.kill('SIGKILL');
          });
        pending.push(p.catch(() => {}));
      }
      await Promise.all(pending);
      await new Promise((r) =>
        child.exitCode !== null || child.signalCode ? r(null) : child.once('exit', r),
      );
    } finally {
      child.kill('SIGKILL');
    }
    assert.ok(acked.length > 0, 'some changes were acknowledged before the kill');
    const doc = parseState(readFileSync(state, 'utf8')); // never truncated: parses
    const saved = new Set(
      doc.commands
        .filter((x) => x.cmd === 'newService')
        .map((x) => (x as { service: { addr: string } }).service.addr),
    );
    for (const i of acked)
      assert.ok(
        saved.has(`10.1.${i >> 8}.${i & 255}`),
        `acknowledged change ${i} is in the state file`,
      );
    // a new daemon restores exactly that state
    const again = await startDaemon(['--control', sock, '--state-file', state]);
    try {
      const l = adm(IPVSADM, ['--control', sock, '-S', '-n']);
      assert.equal(l.stdout.trim().split('\n').length, saved.size);
    } finally {
      again.child.kill('SIGKILL');
    }
  });
});
