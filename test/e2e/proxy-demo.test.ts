/**
 * `ipvs demo` in a spawned process: the real daemon with the proxy data plane, curl-like HTTP
 * clients taking turns over the backends, `ipvs adm` from another process over the control
 * socket, and SIGTERM draining an open connection before exiting.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connect, freePort, readUntil, until } from '../dataplane/proxy-helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const demoJs = join(root, 'dist', 'src', 'cli', 'demo.js');
const bin = join(root, 'bin', 'ipvs');

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

describe('ipvs demo', () => {
  let child: ChildProcess;
  let out = '';
  let port = 0;
  let control = '';
  before(async () => {
    port = await freePort();
    control = join(mkdtempSync(join(tmpdir(), 'ipvs-demo-')), 'ctl.sock');
    child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(demoJs)}); process.exitCode = await m.runDemo(process.argv.slice(1));`,
        '--',
        '--port',
        String(port),
        '--control',
        control,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('Ctrl-C'), 10_000, `demo start: ${out}`);
  });
  after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('prints the URL and the ipvs adm -Ln table', () => {
    assert.match(out, new RegExp(`http://127\\.0\\.0\\.1:${port}/`));
    assert.match(out, new RegExp(`TCP  127\\.0\\.0\\.1:${port} wrr`));
    assert.equal(out.match(/Masq {4}/g)?.length, 3);
  });

  it('lets the backends take turns (weighted round robin 2:1:1)', async () => {
    const names: string[] = [];
    for (let i = 0; i < 8; i++) names.push(/backend-\d/.exec(await get(port))![0]);
    assert.deepEqual(names, [
      'backend-1',
      'backend-2',
      'backend-3',
      'backend-1',
      'backend-1',
      'backend-2',
      'backend-3',
      'backend-1',
    ]);
  });

  it('answers ipvs adm from another process', () => {
    const r = spawnSync(process.execPath, [bin, 'adm', '--control', control, '-Ln', '--stats'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`TCP  127\\.0\\.0\\.1:${port} +8 `));
    const c = spawnSync(process.execPath, [bin, 'adm', '--control', control, '-L', '-c', '-n'], {
      encoding: 'utf8',
    });
    assert.match(c.stdout, /TIME_WAIT/);
  });

  it('drains an open connection on SIGTERM, then exits', async () => {
    const s = await connect(port);
    s.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await new Promise((r) => setTimeout(r, 100));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    // new clients are refused (once the signal is handled), the open one is still served
    let refused = false;
    for (const end = Date.now() + 3000; !refused && Date.now() < end;) {
      try {
        (await connect(port)).destroy();
        await new Promise((r) => setTimeout(r, 50));
      } catch (e) {
        assert.match(String(e), /ECONNREFUSED/);
        refused = true;
      }
    }
    assert.ok(refused, 'new clients refused after SIGTERM');
    s.write('Connection: close\r\n\r\n');
    const reply = await readUntil(s, (t) => t.includes('Hello from'));
    assert.match(reply, /200 OK/);
    assert.equal(await exited, 0);
  });
});
