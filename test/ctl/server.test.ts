/**
 * The control socket: mode 0600, one daemon per socket, stale sockets replaced, malformed and
 * oversized requests answered with errors while the daemon keeps serving and state is unchanged,
 * many clients at once.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Daemon } from '../../src/cli/daemon.js';
import { ControlClient } from '../../src/ctl/client.js';
import { execute } from '../../src/ctl/commands.js';
import { Ipvs } from '../../src/core/ipvs.js';
import { IpvsError } from '../../src/core/errors.js';
import { MAX_REQUEST_BYTES } from '../../src/ctl/protocol.js';

const quiet = () => {};

/** Sends raw bytes and collects `n` reply lines. */
function raw(path: string, data: string | Buffer, n: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    const out: unknown[] = [];
    s.on('data', (c) => {
      buf += c.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        out.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
        if (out.length === n) {
          s.destroy();
          resolve(out);
        }
      }
    });
    s.on('error', reject);
    s.write(data);
  });
}

const SVC = { af: 2, protocol: 6, addr: '10.0.0.1', port: 80, fwmark: 0 } as const;

describe('control socket', () => {
  let dir: string;
  let sock: string;
  let daemon: Daemon;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ipvs-ctl-'));
    sock = join(dir, 'ctl.sock');
    daemon = await Daemon.start(
      { dataplane: 'none', control: sock, rules: undefined, stateFile: undefined },
      quiet,
    );
  });
  after(async () => {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is a socket with mode 0600', () => {
    const st = statSync(sock);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  it('executes commands and returns coded errors', async () => {
    const c = await ControlClient.connect(sock);
    try {
      await c.call({
        cmd: 'newService',
        service: { ...SVC, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, pe: '' },
      });
      const list = await c.call({ cmd: 'getServices' });
      assert.equal(list.length, 1);
      await assert.rejects(
        c.call({ cmd: 'delService', service: { ...SVC, port: 81 } }),
        (e: unknown) =>
          e instanceof IpvsError && e.code === 'IPVS_ERR_NO_SERVICE' && e.errno === 'ESRCH',
      );
    } finally {
      c.close();
    }
  });

  it('answers garbage with error replies, keeps serving and changes nothing', async () => {
    const before = JSON.stringify(daemon.ipvs.listServices());
    const replies = await raw(
      sock,
      'not json\n[]\n{"cmd":"explode"}\n{"cmd":"newService","service":{"af":"2"}}\n{"cmd":"delService"}\n' +
        '{"cmd":"newService","service":{"af":2,"protocol":6,"addr":"10.0.0.1","port":80,"fwmark":0,"scheduler":"rr","flags":0,"timeout":0,"netmask":-1,"pe":""}}\n' +
        '\u0000\u00ff\n{"cmd":"getInfo","id":7}\n',
      8,
    );
    const codes = replies.map(
      (r) => (r as { ok: boolean; error?: { code: string } }).error?.code ?? 'ok',
    );
    assert.deepEqual(codes, [
      'IPVS_ERR_BAD_REQUEST',
      'IPVS_ERR_BAD_REQUEST',
      'IPVS_ERR_BAD_REQUEST',
      'IPVS_ERR_BAD_REQUEST',
      'IPVS_ERR_BAD_REQUEST',
      'IPVS_ERR_INVALID',
      'IPVS_ERR_BAD_REQUEST',
      'ok',
    ]);
    const last = await raw(sock, '{"cmd":"getInfo","id":7}\n', 1);
    assert.deepEqual(last[0], {
      id: 7,
      ok: true,
      result: { version: 0x010201, connTabSize: 4096 },
    });
    assert.equal(JSON.stringify(daemon.ipvs.listServices()), before);
  });

  it('refuses nesting it cannot echo or name, and options no data plane knows, without crashing', async () => {
    const before = JSON.stringify(daemon.ipvs.listServices());
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const spec = (ext: string) =>
      `{"cmd":"newService","service":{"af":2,"protocol":6,"addr":"10.0.0.9","port":80,"fwmark":0,"scheduler":"rr","flags":0,"timeout":0,"netmask":4294967295,"pe":"","ext":${ext}}}`;
    const replies = (await raw(
      sock,
      // an id JSON.parse accepts but JSON.stringify cannot write back (the reply once killed the
      // daemon), then a command that is such an array, then ext values -S would write as lines
      `{"cmd":"newService","id":${deep(8000)},"service":${JSON.stringify({ ...SVC, addr: '10.0.0.8', scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, pe: '' })}}\n` +
        `{"cmd":${deep(20000)}}\n` +
        `${spec('{"proxy-protocol":"v1\\n-A -t 192.0.2.66:1"}')}\n` +
        `${spec('{"bogus":"y"}')}\n` +
        '{"cmd":"getInfo","id":8}\n',
      5,
    )) as { id?: unknown; ok: boolean; error?: { code: string; message: string } }[];
    assert.deepEqual(
      replies.map((r) => [r.id, r.error?.code ?? 'ok']),
      [
        [undefined, 'IPVS_ERR_BAD_REQUEST'],
        [undefined, 'IPVS_ERR_BAD_REQUEST'],
        [undefined, 'IPVS_ERR_PROXY_OPTION'],
        [undefined, 'IPVS_ERR_BAD_REQUEST'],
        [8, 'ok'],
      ],
    );
    assert.match(replies[0]!.error!.message, /id cannot be echoed/);
    assert.match(replies[1]!.error!.message, /unknown command \(cmd is an array\)/);
    assert.match(replies[3]!.error!.message, /unknown option 'bogus'/);
    assert.equal(JSON.stringify(daemon.ipvs.listServices()), before);
    // 'none' is accepted and not kept: the service lists as one without the option
    const ok = (await raw(sock, `${spec('{"proxy-protocol":"none"}')}\n`, 1)) as { ok: boolean }[];
    assert.equal(ok[0]!.ok, true);
    const svc = daemon.ipvs.listServices().find((x) => x.addr === '10.0.0.9')!;
    assert.deepEqual(svc.ext, {});
    await raw(
      sock,
      `{"cmd":"delService","service":${JSON.stringify({ ...SVC, addr: '10.0.0.9' })}}\n`,
      1,
    );
  });

  it('rejects an oversized request and keeps the connection usable', async () => {
    const big = Buffer.alloc(MAX_REQUEST_BYTES + 10, 0x61);
    const replies = await raw(
      sock,
      Buffer.concat([big, Buffer.from('\n{"cmd":"getConfig"}\n')]),
      2,
    );
    assert.equal(
      (replies[0] as { error: { code: string } }).error.code,
      'IPVS_ERR_REQUEST_TOO_LARGE',
    );
    assert.deepEqual(replies[1], { ok: true, result: { tcp: 900, tcpfin: 120, udp: 300 } });
  });

  it('serves many clients at once', async () => {
    const clients = await Promise.all(
      Array.from({ length: 20 }, () => ControlClient.connect(sock)),
    );
    try {
      await Promise.all(
        clients.map((c, i) =>
          c.call({
            cmd: 'newService',
            service: {
              af: 2,
              protocol: 17,
              addr: `10.9.0.${i + 1}`,
              port: 53,
              fwmark: 0,
              scheduler: 'rr',
              flags: 0,
              timeout: 0,
              netmask: 0xffffffff,
              pe: '',
            },
          }),
        ),
      );
      const all = await clients[0]!.call({ cmd: 'getServices' });
      assert.equal(all.filter((s) => s.protocol === 17).length, 20);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('refuses a second daemon on the same socket with a clear message', async () => {
    await assert.rejects(
      Daemon.start(
        { dataplane: 'none', control: sock, rules: undefined, stateFile: undefined },
        quiet,
      ),
      (e: unknown) =>
        e instanceof IpvsError &&
        e.code === 'IPVS_ERR_SOCKET_IN_USE' &&
        /already listening on/.test(e.message),
    );
    // the first daemon still answers
    const c = await ControlClient.connect(sock);
    assert.equal((await c.call({ cmd: 'getInfo' })).version, 0x010201);
    c.close();
  });
});

describe('control socket startup', () => {
  it('replaces a stale socket file left by a dead daemon', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-ctl-'));
    const sock = join(dir, 'ctl.sock');
    // a process that listens on the socket and dies without cleaning up
    const child = spawn(process.execPath, [
      '-e',
      "require('net').createServer().listen(process.argv[1], () => console.log('up'))",
      sock,
    ]);
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    child.kill('SIGKILL');
    await new Promise<void>((r) => child.once('exit', () => r()));
    assert.ok(statSync(sock).isSocket());
    const d = await Daemon.start(
      { dataplane: 'none', control: sock, rules: undefined, stateFile: undefined },
      quiet,
    );
    try {
      const c = await ControlClient.connect(sock);
      assert.equal((await c.call({ cmd: 'getInfo' })).connTabSize, 4096);
      c.close();
    } finally {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a path that is not a socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-ctl-'));
    const p = join(dir, 'file');
    writeFileSync(p, 'x');
    await assert.rejects(
      Daemon.start(
        { dataplane: 'none', control: p, rules: undefined, stateFile: undefined },
        quiet,
      ),
      /not a socket/,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an unknown data plane', async () => {
    await assert.rejects(
      Daemon.start(
        {
          dataplane: 'warp',
          control: '/nonexistent/x.sock',
          rules: undefined,
          stateFile: undefined,
        },
        quiet,
      ),
      (e: unknown) => e instanceof IpvsError && e.code === 'IPVS_ERR_UNKNOWN_DATAPLANE',
    );
  });

  it('reports a missing daemon as IPVS_ERR_NO_DAEMON_SOCKET', async () => {
    await assert.rejects(
      ControlClient.connect('/nonexistent/dir/ctl.sock'),
      (e: unknown) => e instanceof IpvsError && e.code === 'IPVS_ERR_NO_DAEMON_SOCKET',
    );
  });
});

describe('execute', () => {
  it('lets the data plane refuse a command before core applies it', () => {
    const ipvs = new Ipvs({ log: quiet });
    const plane = {
      name: 'test',
      start: async () => {},
      stop: async () => {},
      applied: [] as string[],
      validate(cmd: { cmd: string }) {
        if (cmd.cmd === 'newService')
          throw new IpvsError('IPVS_ERR_TEST', 'EINVAL', 'refused by plane');
      },
      apply(cmd: { cmd: string }) {
        this.applied.push(cmd.cmd);
      },
    };
    assert.throws(
      () =>
        execute(
          ipvs,
          {
            cmd: 'newService',
            service: { ...SVC, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff, pe: '' },
          },
          plane,
        ),
      /refused by plane/,
    );
    assert.equal(ipvs.listServices().length, 0);
    execute(ipvs, { cmd: 'setConfig', timeouts: { tcp: 5, tcpfin: 0, udp: 0 } }, plane);
    assert.deepEqual(plane.applied, ['setConfig']);
    ipvs.close();
  });
});
