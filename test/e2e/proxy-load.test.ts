/**
 * The proxy data plane under pressure: a slow reader, 5,000 concurrent connections, clients that
 * send nothing or half a PROXY header, a connection flood over the limit, and a graceful stop.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  type Backend,
  type Lb,
  closed,
  connect,
  freePort,
  masq,
  readUntil,
  startBackend,
  startLb,
  tcpService,
  until,
  whoAnswers,
} from '../dataplane/proxy-helpers.js';

const fdCount = (): number => readdirSync('/proc/self/fd').length;

describe('proxy data plane under load', () => {
  let lb: Lb;
  let backend: Backend;
  before(async () => {
    lb = await startLb({ maxConns: 20_000 });
    backend = await startBackend('x');
  });
  after(async () => {
    await lb.close();
    await backend.close();
  });

  it('keeps memory bounded when the client reads slowly', async () => {
    const port = await freePort();
    const chunk = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    const firehose = net.createServer((s) => {
      s.on('error', () => {});
      const pump = (): void => {
        while (sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!s.write(chunk)) {
            s.once('drain', pump);
            return;
          }
        }
        s.end();
      };
      pump();
    });
    await new Promise<void>((r) => firehose.listen(0, '127.0.0.1', () => r()));
    const fport = (firehose.address() as net.AddressInfo).port;
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(fport) });
    const s = await connect(port);
    try {
      s.pause(); // the client does not read at all
      await new Promise((r) => setTimeout(r, 500));
      const stuck = sent;
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(
        sent - stuck <= 1024 * 1024,
        `the server keeps sending: ${sent - stuck} more bytes`,
      );
      assert.ok(sent < 32 * 1024 * 1024, `only socket buffers fill up: ${sent} bytes sent`);
      const bufs = lb.plane.buffers;
      assert.ok(bufs.large <= 2, `${bufs.large} large buffers in use`);
      // the client reads now: everything arrives
      let got = 0;
      s.on('data', (d: Buffer) => (got += d.length));
      const ended = new Promise((r) => s.once('end', r));
      s.resume();
      await ended;
      assert.equal(got, 64 * 1024 * 1024);
    } finally {
      s.destroy();
      lb.ctl.run({ cmd: 'delService', service: svc });
      await new Promise<void>((r) => firehose.close(() => r()));
    }
  });

  it('opens and closes 5,000 concurrent connections without leaking file descriptors', async () => {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backend.port) });
    const fds0 = fdCount();
    const N = 5000;
    // the clients run in a child process: 4 descriptors per connection would not fit in one
    const child = fork(fileURLToPath(new URL('../dataplane/proxy-loadgen.js', import.meta.url)), [
      String(port),
      String(N),
    ]);
    const msgs: { ready?: number; closed?: number; error?: string }[] = [];
    child.on('message', (m: { ready?: number; closed?: number; error?: string }) => msgs.push(m));
    try {
      await until(() => msgs.some((m) => m.ready === N), 30_000, 'all connections proxied');
      assert.equal(lb.plane.open.tcp, N);
      assert.equal(lb.ipvs.getService(svc).dests[0]!.activeConns, N);
      assert.ok(fdCount() >= fds0 + 3 * N);
      child.send({ cmd: 'close' });
      await until(() => msgs.some((m) => m.closed === N), 30_000, 'all clients closed');
      assert.deepEqual(
        msgs.filter((m) => m.error),
        [],
      );
      await until(() => lb.plane.open.tcp === 0, 20_000, 'all proxied connections closed');
      await until(() => fdCount() <= fds0 + 5, 5000, `fds back to ${fds0} (now ${fdCount()})`);
      assert.equal(lb.ipvs.getService(svc).dests[0]!.activeConns, 0);
      assert.equal(lb.plane.buffers.small, 0);
      assert.equal(lb.plane.buffers.large, 0);
    } finally {
      child.kill();
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  });

  it('does not let silent clients, half PROXY headers or a flood over the limit stall others', async () => {
    const small = await startLb({ maxConns: 50 });
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    small.ctl.run({ cmd: 'newService', service: svc });
    small.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backend.port) });
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 20; i++) socks.push(await connect(port)); // send nothing
      for (let i = 0; i < 20; i++) {
        const s = await connect(port);
        s.write('\r\n\r\n\0\r\nQU'); // half a PROXY v2 signature, then silence
        socks.push(s);
      }
      // a flood past maxConns: refused and counted
      const flood = await Promise.all(
        Array.from({ length: 40 }, () => {
          const s = net.connect(port, '127.0.0.1');
          s.on('error', () => {});
          socks.push(s);
          return new Promise<void>((r) => {
            s.once('connect', () => r());
            s.once('close', () => r());
          });
        }),
      );
      assert.equal(flood.length, 40);
      await until(() => small.plane.counters.refusedLimit >= 30, 3000, 'refusals counted');
      // everyone else is still served
      for (const s of socks.slice(0, 10)) s.destroy();
      await until(() => small.plane.open.tcp <= 40);
      const { name, sock } = await whoAnswers(port);
      assert.equal(name, 'x');
      sock.write('still works');
      await readUntil(sock, (t) => t.includes('still works'));
      sock.destroy();
    } finally {
      for (const s of socks) s.destroy();
      await small.close();
    }
  });

  it('stops accepting on stop(), lets open connections finish, then resets the rest', async () => {
    const st = await startLb();
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    st.ctl.run({ cmd: 'newService', service: svc });
    st.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backend.port) });
    const finishing = await whoAnswers(port);
    const lingering = await whoAnswers(port);
    lingering.sock.on('error', () => {});
    const stopped = st.plane.stop(600);
    const t0 = Date.now();
    await assert.rejects(connect(port), /ECONNREFUSED/);
    // an open connection still works during the drain
    finishing.sock.write('last words');
    await readUntil(finishing.sock, (t) => t.includes('last words'));
    finishing.sock.end();
    await closed(finishing.sock);
    // the other one is reset at the deadline
    await closed(lingering.sock);
    await stopped;
    const took = Date.now() - t0;
    assert.ok(took >= 500 && took < 5000, `stop took ${took} ms`);
    assert.equal(st.plane.open.tcp, 0);
    st.ipvs.close();
  });
});
