/**
 * `ipvs sysctl`: the daemon's IPVS sysctls read and written as sysctl(8) does (names with or
 * without `net.ipv4.vs.`, `-a`, `-n`, `-w`, `-p FILE`, `-e`, `-q`), its messages for unknown names
 * and bad values (with the coded error after them), nothing changed by a refused write, and the
 * real binary against a real daemon.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { runSysctl } from '../../src/cli/sysctl.js';
import { localBackend } from '../../src/ctl/controller.js';
import { makeIpvs } from '../helpers/ipvs.js';

function io(ipvs: ReturnType<typeof makeIpvs>['ipvs'], files: Record<string, string> = {}) {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      backend: async () => localBackend(ipvs),
      readFile: (p: string) => {
        const f = files[p];
        if (f === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
        return f;
      },
    },
    out: () => out,
    err: () => err,
  };
}

describe('ipvs sysctl', () => {
  it('-a lists every IPVS sysctl sorted, as sysctl(8) prints net.ipv4.vs.*', async () => {
    const { ipvs } = makeIpvs();
    const a = io(ipvs);
    assert.equal(await runSysctl(['-a'], a.io), 0);
    const lines = a.out().trimEnd().split('\n');
    assert.ok(lines.length >= 30);
    assert.deepEqual(lines, [...lines].sort());
    assert.ok(lines.includes('net.ipv4.vs.expire_nodest_conn = 0'));
    assert.ok(lines.includes('net.ipv4.vs.sync_threshold = 3\t50'), 'two values tab-separated');
    assert.ok(lines.includes('net.ipv4.vs.conn_reuse_mode = 1'));
  });

  it('reads by full or bare name; -n prints values only', async () => {
    const { ipvs } = makeIpvs();
    const a = io(ipvs);
    assert.equal(
      await runSysctl(['net.ipv4.vs.pmtu_disc', 'net/ipv4/vs/snat_reroute', 'amemthresh'], a.io),
      0,
    );
    assert.equal(
      a.out(),
      'net.ipv4.vs.pmtu_disc = 1\nnet.ipv4.vs.snat_reroute = 1\nnet.ipv4.vs.amemthresh = 1024\n',
    );
    const b = io(ipvs);
    assert.equal(await runSysctl(['-n', 'am_droprate', 'sync_threshold'], b.io), 0);
    assert.equal(b.out(), '10\n3\t50\n');
  });

  it('-w NAME=VALUE (and NAME=VALUE alone) sets, echoing the new value; -q keeps quiet', async () => {
    const { ipvs } = makeIpvs();
    const a = io(ipvs);
    assert.equal(
      await runSysctl(
        ['-w', 'net.ipv4.vs.expire_nodest_conn=1', 'sync_threshold=4 60', 'est_cpulist=0'],
        a.io,
      ),
      0,
      a.err(),
    );
    assert.equal(
      a.out(),
      'net.ipv4.vs.expire_nodest_conn = 1\nnet.ipv4.vs.sync_threshold = 4 60\nnet.ipv4.vs.est_cpulist = 0\n',
    );
    assert.equal(ipvs.sysctl.expire_nodest_conn, 1);
    assert.deepEqual(ipvs.sysctl.sync_threshold, [4, 60]);
    const q = io(ipvs);
    assert.equal(await runSysctl(['-q', 'sloppy_tcp=1'], q.io), 0);
    assert.equal(q.out(), '');
    assert.equal(ipvs.sysctl.sloppy_tcp, 1);
    // combined short flags, as sysctl(8) takes them
    const c = io(ipvs);
    assert.equal(await runSysctl(['-qw', 'sloppy_sctp=1'], c.io), 0);
    assert.equal(await runSysctl(['-nq', 'sloppy_sctp'], c.io), 0);
    assert.equal(c.out(), '1\n');
  });

  it('reads integers as the kernel does: 0x hex, 0 octal, no sign but -, the rest of a write unread', async () => {
    const { ipvs } = makeIpvs();
    const ok: [string, number | [number, number]][] = [
      ['am_droprate=0x1f', 31],
      ['am_droprate=010', 8],
      ['am_droprate=0', 0],
      ['am_droprate=00000000000000000001', 1], // 20 characters: read
      ['am_droprate=12 junk', 12],
      ['sync_threshold=010 0x20', [8, 32]],
      ['sync_threshold=5', [5, 32]], // one value: the period stays
      ['sync_retries=0X2', 2],
      // an unsigned long (proc_doulongvec_minmax): any value up to ULONG_MAX
      ['sync_qlen_max=4294967296', 4294967296],
      ['sync_qlen_max=0x7fffffffffffff', Number.MAX_SAFE_INTEGER], // above 2^53 - 1: kept as that
    ];
    for (const [w, v] of ok) {
      const a = io(ipvs);
      assert.equal(await runSysctl(['-w', w], a.io), 0, `${w}: ${a.err()}`);
      const name = w.slice(0, w.indexOf('=')) as 'am_droprate';
      assert.deepEqual(ipvs.sysctl[name], v, w);
    }
    for (const w of [
      'am_droprate=08',
      'am_droprate=+5',
      'am_droprate=1e3',
      'am_droprate=0x',
      'am_droprate=',
      'am_droprate=000000000000000000001', // 21 characters fill proc_get_long's buffer: EINVAL
      'am_droprate=2147483648',
    ]) {
      const a = io(ipvs);
      assert.equal(await runSysctl(['-w', w], a.io), 1, w);
      assert.match(
        a.err(),
        /^sysctl: setting key "net\.ipv4\.vs\.am_droprate": Invalid argument\n/,
      );
    }
    assert.equal(ipvs.sysctl.am_droprate, 12);
    for (const w of ['-1', '18446744073709551616', '0x1ffffffffffffffff']) {
      const a = io(ipvs);
      assert.equal(await runSysctl(['-w', `sync_qlen_max=${w}`], a.io), 1, w);
      assert.match(a.err(), /Invalid argument/);
    }
    const a = io(ipvs);
    assert.equal(await runSysctl(['-w', 'sync_qlen_max=18446744073709551615'], a.io), 0, a.err());
  });

  it('goes through the arguments in order, echoing each value as given', async () => {
    const { ipvs } = makeIpvs();
    ipvs.setSysctl('am_droprate', 12);
    const a = io(ipvs);
    assert.equal(await runSysctl(['am_droprate', 'am_droprate=0x7', 'am_droprate'], a.io), 0);
    assert.equal(
      a.out(),
      'net.ipv4.vs.am_droprate = 12\nnet.ipv4.vs.am_droprate = 0x7\nnet.ipv4.vs.am_droprate = 7\n',
    );
  });

  it("refuses unknown names and bad values with sysctl(8)'s messages and the code; the rest applies", async () => {
    const { ipvs } = makeIpvs();
    const a = io(ipvs);
    const st = await runSysctl(
      ['-w', 'drop_entry=9', 'net.ipv4.vs.nope=1', 'sloppy_tcp=yes', 'cache_bypass=1'],
      a.io,
    );
    assert.equal(st, 1);
    assert.equal(
      a.err(),
      'sysctl: setting key "net.ipv4.vs.drop_entry": Invalid argument\n' +
        'ipvs sysctl: IPVS_ERR_SYSCTL: drop_entry must be an integer in 0..3, got 9\n' +
        'sysctl: cannot stat /proc/sys/net/ipv4/vs/nope: No such file or directory\n' +
        'ipvs sysctl: IPVS_ERR_NO_SYSCTL: no sysctl named nope\n' +
        'sysctl: setting key "net.ipv4.vs.sloppy_tcp": Invalid argument\n' +
        "ipvs sysctl: IPVS_ERR_SYSCTL: sloppy_tcp: 'yes' is not a value it takes\n",
    );
    assert.equal(a.out(), 'net.ipv4.vs.cache_bypass = 1\n');
    assert.deepEqual(
      [ipvs.sysctl.drop_entry, ipvs.sysctl.sloppy_tcp, ipvs.sysctl.cache_bypass],
      [0, 0, 1],
    );
    const e = io(ipvs);
    assert.equal(
      await runSysctl(['-e', 'nope', 'cache_bypass'], e.io),
      0,
      'unknown ignored with -e',
    );
    assert.equal(e.out(), 'net.ipv4.vs.cache_bypass = 1\n');
    const w = io(ipvs);
    assert.equal(await runSysctl(['-w', 'drop_entry'], w.io), 1);
    assert.equal(w.err(), 'sysctl: command line(0): invalid syntax, continuing...\n');
    assert.equal(await runSysctl([], io(ipvs).io), 2, 'usage');
  });

  it('as sysctl(8) too: -N, -b, --dry-run, -a -r PATTERN, the directory, trimmed values, -f, -p -', async () => {
    const { ipvs } = makeIpvs();
    const run = async (args: string[], files: Record<string, string> = {}) => {
      const x = io(ipvs, files);
      const rc = await runSysctl(args, x.io);
      return [rc, x.out(), x.err()];
    };
    assert.deepEqual(await run(['-N', 'sloppy_tcp']), [0, 'net.ipv4.vs.sloppy_tcp\n', '']);
    assert.deepEqual(await run(['-b', 'sloppy_tcp']), [0, '0', '']);
    assert.deepEqual(await run(['--dry-run', '-w', 'sloppy_tcp=1']), [
      0,
      'net.ipv4.vs.sloppy_tcp = 1\n',
      '',
    ]);
    assert.equal(ipvs.sysctl.sloppy_tcp, 0, 'a dry run writes nothing');
    assert.deepEqual(await run(['-a', '-r', 'sloppy_']), [
      0,
      'net.ipv4.vs.sloppy_sctp = 0\nnet.ipv4.vs.sloppy_tcp = 0\n',
      '',
    ]);
    assert.deepEqual(await run(['-a', '-N', '--pattern=^net.ipv4.vs.sync_ver']), [
      0,
      'net.ipv4.vs.sync_version\n',
      '',
    ]);
    const dir = (await run(['net.ipv4.vs']))[1] as string;
    assert.equal(dir, (await run(['-a']))[1]);
    // the command line's value loses its surrounding blanks
    assert.deepEqual(await run(['-w', 'sloppy_tcp= 1 ']), [0, 'net.ipv4.vs.sloppy_tcp = 1\n', '']);
    assert.deepEqual(await run(['-w', 'sync_threshold=\t5 60 ']), [
      0,
      'net.ipv4.vs.sync_threshold = 5 60\n',
      '',
    ]);
    assert.deepEqual(ipvs.sysctl.sync_threshold, [5, 60]);
    assert.deepEqual(await run(['-f', '/a.conf'], { '/a.conf': 'net.ipv4.vs.drop_entry = 1\n' }), [
      0,
      'net.ipv4.vs.drop_entry = 1\n',
      '',
    ]);
    assert.deepEqual(await run(['-p', '-'], { '-': 'net.ipv4.vs.drop_entry = 0\n' }), [
      0,
      'net.ipv4.vs.drop_entry = 0\n',
      '',
    ]);
    // a glob in a file names every key it matches
    assert.deepEqual(await run(['-p', '/g.conf'], { '/g.conf': 'net.ipv4.vs.sloppy_* = 1\n' }), [
      0,
      'net.ipv4.vs.sloppy_sctp = 1\nnet.ipv4.vs.sloppy_tcp = 1\n',
      '',
    ]);
    assert.deepEqual([ipvs.sysctl.sloppy_sctp, ipvs.sysctl.sloppy_tcp], [1, 1]);
    // every file is read before a line applies: syntax errors first
    const two = await run(['-p', '/b.conf', '/c.conf'], {
      '/b.conf': 'net.ipv4.vs.nope = 1\n',
      '/c.conf': 'junk\n',
    });
    assert.equal(two[0], 1);
    assert.match(
      two[2] as string,
      /^sysctl: \/c\.conf\(1\): invalid syntax, continuing\.\.\.\nsysctl: cannot stat/,
    );
  });

  it('--system: the sysctl.d directories by precedence, in name order, then /etc/sysctl.conf', async () => {
    const { ipvs } = makeIpvs();
    const x = io(ipvs, {
      '/etc/sysctl.d/60-ipvs.conf': 'net.ipv4.vs.drop_entry = 1\n',
      '/usr/lib/sysctl.d/60-ipvs.conf': 'net.ipv4.vs.drop_entry = 0\n',
      '/usr/lib/sysctl.d/50-base.conf': 'kernel.pid_max = 4194304\nnet.ipv4.vs.sloppy_tcp = 1\n',
      '/lib/sysctl.d/70-late.conf': 'net.ipv4.vs.sloppy_sctp = 1\n',
      '/etc/sysctl.conf': '# nothing\n',
    });
    const dirs: Record<string, string[]> = {
      '/etc/sysctl.d': ['60-ipvs.conf', 'README'],
      '/usr/lib/sysctl.d': ['60-ipvs.conf', '50-base.conf'],
      '/lib/sysctl.d': ['70-late.conf'],
    };
    const rc = await runSysctl(['--system'], {
      ...x.io,
      listDir: (d: string) => {
        const l = dirs[d];
        if (!l) throw new Error('ENOENT');
        return l;
      },
    });
    assert.equal(rc, 0, x.err());
    assert.equal(
      x.out(),
      '* Applying /usr/lib/sysctl.d/50-base.conf ...\n' +
        '* Applying /etc/sysctl.d/60-ipvs.conf ...\n' +
        '* Applying /lib/sysctl.d/70-late.conf ...\n' +
        '* Applying /etc/sysctl.conf ...\n' +
        'net.ipv4.vs.sloppy_tcp = 1\nnet.ipv4.vs.drop_entry = 1\nnet.ipv4.vs.sloppy_sctp = 1\n',
    );
    assert.deepEqual(
      [ipvs.sysctl.sloppy_tcp, ipvs.sysctl.drop_entry, ipvs.sysctl.sloppy_sctp],
      [1, 1, 1],
    );
  });

  it('prints the errno of the refusal: a CPU beyond the last in est_cpulist is ERANGE', async () => {
    const { ipvs } = makeIpvs({ cpus: 4 });
    const a = io(ipvs);
    assert.equal(await runSysctl(['-w', 'est_cpulist=0-9', 'est_cpulist=0-x'], a.io), 1);
    assert.equal(
      a.err(),
      'sysctl: setting key "net.ipv4.vs.est_cpulist": Numerical result out of range\n' +
        'ipvs sysctl: IPVS_ERR_RANGE: est_cpulist: CPU 9 is beyond the last CPU 3\n' +
        'sysctl: setting key "net.ipv4.vs.est_cpulist": Invalid argument\n' +
        "ipvs sysctl: IPVS_ERR_SYSCTL: est_cpulist: '0-x' is not a cpulist\n",
    );
    assert.equal(ipvs.getSysctls().est_cpulist, '0-3');
  });

  it('-p FILE applies `key = value` lines, skipping # and ; comments, naming bad lines', async () => {
    const { ipvs } = makeIpvs();
    const a = io(ipvs, {
      '/etc/sysctl.d/90-ipvs.conf':
        '# IPVS\nnet.ipv4.vs.conn_reuse_mode = 0\n; old\n  net.ipv4.vs.expire_quiescent_template=1\nnonsense\n' +
        "# the kernel's own knobs in the same file are not ours\nnet.ipv4.ip_forward = 1\n",
    });
    // a line without '=' is said and skipped: not a failure (sysctl(8) returns 0 for it)
    assert.equal(await runSysctl(['-p', '/etc/sysctl.d/90-ipvs.conf'], a.io), 0);
    assert.equal(
      a.out(),
      'net.ipv4.vs.conn_reuse_mode = 0\nnet.ipv4.vs.expire_quiescent_template = 1\n',
    );
    assert.equal(a.err(), 'sysctl: /etc/sysctl.d/90-ipvs.conf(5): invalid syntax, continuing...\n');
    assert.deepEqual([ipvs.sysctl.conn_reuse_mode, ipvs.sysctl.expire_quiescent_template], [0, 1]);
    // a leading `-` lets the line fail silently (sysctl.conf(5))
    const d = io(ipvs, {
      '/x.conf':
        '-net.ipv4.vs.drop_entry = 9\n-net.ipv4.vs.nope = 1\n- net.ipv4.vs.am_droprate = 0x20\n',
    });
    assert.equal(await runSysctl(['-p', '/x.conf'], d.io), 0, d.err());
    assert.deepEqual([d.out(), d.err()], ['net.ipv4.vs.am_droprate = 0x20\n', '']);
    assert.deepEqual([ipvs.sysctl.drop_entry, ipvs.sysctl.am_droprate], [0, 32]);
    const m = io(ipvs);
    assert.equal(await runSysctl(['-p', '/missing'], m.io), 1);
    assert.equal(m.err(), 'sysctl: cannot open "/missing": No such file or directory\n');
    // as sysctl(8): -p alone reads /etc/sysctl.conf, and after -p every argument is a file
    const e = io(ipvs, {
      '/etc/sysctl.conf': 'net.ipv4.vs.expire_nodest_conn = 1\n',
      '/b.conf': 'net.ipv4.vs.secure_tcp = 1\n',
    });
    assert.equal(await runSysctl(['-q', '-p'], e.io), 0, e.err());
    assert.equal(ipvs.sysctl.expire_nodest_conn, 1);
    assert.equal(await runSysctl(['-p', '/x.conf', '/b.conf'], e.io), 1);
    assert.equal(ipvs.sysctl.secure_tcp, 1);
    assert.equal(await runSysctl(['--load=/b.conf'], e.io), 0);
  });

  it('the real binary against a real daemon; no daemon is a coded error', async () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    const bin = join(root, 'bin', 'ipvs');
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-sysctl-'));
    const sock = join(dir, 'c.sock');
    const d = spawn(process.execPath, [bin, 'daemon', '--dataplane', 'none', '--control', sock], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        let log = '';
        d.stderr!.on('data', (b: Buffer) => {
          log += b.toString();
          if (/listening on /.test(log)) resolve();
        });
        d.on('exit', () => reject(new Error(`daemon exited: ${log}`)));
      });
      const run = (...args: string[]) =>
        spawnSync(process.execPath, [bin, 'sysctl', '--control', sock, ...args], {
          encoding: 'utf8',
        });
      const w = run('-w', 'net.ipv4.vs.expire_nodest_conn=1');
      assert.equal(w.status, 0, w.stderr);
      assert.equal(w.stdout, 'net.ipv4.vs.expire_nodest_conn = 1\n');
      const r = run('-n', 'expire_nodest_conn');
      assert.equal(r.stdout, '1\n');
      const bad = run('-w', 'secure_tcp=4');
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /IPVS_ERR_SYSCTL/);
      writeFileSync(join(dir, 'x.conf'), 'net.ipv4.vs.sloppy_tcp = 1\n');
      assert.equal(run('-q', '-p', join(dir, 'x.conf')).status, 0);
      assert.equal(run('-n', 'sloppy_tcp').stdout, '1\n');
    } finally {
      d.kill('SIGTERM');
      await new Promise((r) => d.once('exit', r));
    }
    const none = spawnSync(process.execPath, [bin, 'sysctl', '--control', sock, '-a'], {
      encoding: 'utf8',
    });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /^ipvs sysctl: IPVS_ERR_\w+: No ipvs-ts daemon is listening on /);
    rmSync(dir, { recursive: true, force: true });
  });
});
