/**
 * The proxy daemon at its open files limit (`ulimit -n`): new TCP clients and UDP flows past what
 * the limit leaves (two descriptors a connection, one a flow or listener, 64 kept for the daemon)
 * are refused, counted as this host's (`localErrors`, not the real server's `connectFailures`)
 * and logged, and the control socket keeps answering. A daemon started by `bash -c 'ulimit -n
 * 200; exec …'`; every child and socket is closed in `after`, also on failure.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { ControlClient } from '../../src/ctl/client.js';
import { freePort, masq, tcpService, until } from '../dataplane/proxy-helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const IPVS = join(ROOT, 'bin', 'ipvs');
const LIMIT = 200;
// (LIMIT - 64 kept - 1 listener) / 2 descriptors per connection
const TCP_ROOM = Math.floor((LIMIT - 64 - 1) / 2);
const UDP_ROOM = LIMIT - 64 - 1;

const dir = mkdtempSync(join(tmpdir(), 'ipvs-fdlimit-'));
const children = new Set<ChildProcess>();
const closers: Array<() => void> = [];
after(() => {
  for (const c of closers) c();
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A proxy daemon under `ulimit -n LIMIT`; resolves once it listens. */
async function daemon(
  name: string,
): Promise<{ sock: string; log: () => string; child: ChildProcess; http: number }> {
  const sock = join(dir, `${name}.sock`);
  const child = spawn(
    'bash',
    [
      '-c',
      `ulimit -n ${LIMIT} && exec "$0" "$1" daemon --dataplane proxy --control "$2" --http 127.0.0.1:0`,
      process.execPath,
      IPVS,
      sock,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  let log = '';
  child.stderr!.on('data', (b) => (log += b));
  await until(
    () => /listening on .*sock/.test(log) && /http listening on/.test(log),
    5000,
    'the daemon to listen',
  );
  const http = Number(/http listening on [^:]+:(\d+)/.exec(log)![1]);
  return { sock, log: () => log, child, http };
}

async function counters(d: { child: ChildProcess; log: () => string }) {
  const from = d.log().length;
  d.child.kill('SIGUSR2');
  await until(() => /proxy counters \{.*\}\n/.test(d.log().slice(from)), 3000, 'the counters');
  return JSON.parse(/proxy counters (\{.*\})\n/.exec(d.log().slice(from))![1]!) as Record<
    string,
    number
  >;
}

describe('proxy data plane at the open files limit', () => {
  it('refuses TCP clients past the limit as its own failure, and the control socket goes on', async () => {
    const held: net.Socket[] = [];
    const backend = net.createServer((s) => {
      held.push(s);
      s.on('error', () => {});
      s.write('hi\n');
    });
    closers.push(() => {
      for (const s of held) s.destroy();
      backend.close();
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const bport = (backend.address() as net.AddressInfo).port;
    const d = await daemon('tcp');
    const port = await freePort();
    const ctl = await ControlClient.connect(d.sock);
    closers.push(() => ctl.close());
    const svc = tcpService(port, 'rr');
    await ctl.call({ cmd: 'newService', service: svc });
    await ctl.call({ cmd: 'newDest', service: svc, dest: masq(bport) });
    // 100 clients, one after another: each either gets the backend's line or a reset
    let served = 0;
    let reset = 0;
    const clients: net.Socket[] = [];
    closers.push(() => clients.forEach((c) => c.destroy()));
    for (let i = 0; i < 100; i++) {
      const c = net.connect({ host: '127.0.0.1', port });
      clients.push(c);
      const ok = await new Promise<boolean>((r) => {
        c.once('data', () => r(true));
        c.once('error', () => r(false));
        c.once('close', () => r(false));
      });
      if (ok) served++;
      else reset++;
    }
    assert.equal(served, TCP_ROOM);
    assert.equal(reset, 100 - TCP_ROOM);
    // the control socket still answers, and the real server is not blamed
    const [dest] = await ctl.call({ cmd: 'getDests', service: svc });
    assert.equal(dest!.activeConns, TCP_ROOM);
    assert.equal(dest!.connectFailures, 0);
    const c = await counters(d);
    assert.equal(c['localErrors'], 100 - TCP_ROOM);
    assert.equal(c['connectFailures'], 0);
    assert.match(d.log(), /open files limit 200 \(ulimit -n\) reached/);
    // and a scraper sees them
    const m = await (await fetch(`http://127.0.0.1:${d.http}/metrics`)).text();
    assert.match(m, new RegExp(`^ipvs_proxy_local_errors_total ${100 - TCP_ROOM}$`, 'm'));
    assert.match(m, new RegExp(`^ipvs_proxy_open_connections ${TCP_ROOM}$`, 'm'));
    assert.match(m, /^ipvs_proxy_connect_failures_total 0$/m);
    assert.match(m, /^# TYPE ipvs_proxy_refused_no_dest_total counter$/m);
    // once clients go, new ones are served again
    for (const s of clients.splice(0)) s.destroy();
    await until(() => held.every((s) => s.destroyed || s.readableEnded), 3000, 'the closes');
    const again = net.connect({ host: '127.0.0.1', port });
    clients.push(again);
    await new Promise<void>((r, j) => {
      again.once('data', () => r());
      again.once('error', j);
    });
  });

  it('drops new UDP flows past the limit as its own failure', async () => {
    const backend = dgram.createSocket('udp4');
    closers.push(() => backend.close());
    backend.on('message', (m, r) => backend.send(m, r.port, r.address));
    await new Promise<void>((r) => backend.bind(0, '127.0.0.1', r));
    const d = await daemon('udp');
    const port = await freePort(true);
    const ctl = await ControlClient.connect(d.sock);
    closers.push(() => ctl.close());
    const svc = { ...tcpService(port, 'rr'), protocol: 17 };
    await ctl.call({ cmd: 'newService', service: svc });
    await ctl.call({ cmd: 'newDest', service: svc, dest: masq(backend.address().port) });
    const socks: dgram.Socket[] = [];
    closers.push(() => socks.forEach((s) => s.close()));
    let answered = 0;
    for (let i = 0; i < UDP_ROOM + 15; i++) {
      const s = dgram.createSocket('udp4');
      socks.push(s);
      s.on('message', () => answered++);
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
      s.send('ping', port, '127.0.0.1');
      // paced, so no datagram waits long in the VIP socket's buffer
      await new Promise((r) => setTimeout(r, 2));
    }
    await until(() => answered >= UDP_ROOM, 5000, 'the answers');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(answered, UDP_ROOM);
    const c = await counters(d);
    assert.equal(c['localErrors'], 15);
    assert.equal(c['connectFailures'], 0);
    const info = await ctl.call({ cmd: 'getDests', service: svc });
    assert.equal(info[0]!.connectFailures, 0);
  });
});
