/**
 * The proxy's native relay for keep-alive connections (native/splice.c, src/dataplane/proxy/
 * splice.ts), over loopback with real clients and backends: a connection whose reply is not
 * followed by the real server's FIN is handed to the relay, and what users see — counters, the
 * state machine, idle expiry, half-close, resets, deleted destinations, slow readers — stays what
 * the JavaScript relay gives (the same files' other tests run with IPVS_PROXY_SPLICE=0 as well).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { splice } from '../../src/dataplane/proxy/splice.js';
import {
  type Lb,
  closed,
  connect,
  freePort,
  masq,
  startLb,
  tcpService,
  until,
} from '../dataplane/proxy-helpers.js';

const relay = splice();
const needsRelay = {
  skip: relay
    ? undefined
    : 'needs the native addon (node native/build.mjs) and IPVS_PROXY_SPLICE unset',
};

/** Deterministic bytes: the reply of request `n` (size `size`). */
function body(n: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (n * 31 + i * 7) & 0xff;
  return b;
}

/**
 * A keep-alive backend: each line `<n> <size>\n` is answered with `body(n, size)` and nothing
 * closes the connection; a line `bye` makes it end its side; other lines are only counted.
 */
async function keepAliveBackend(): Promise<{
  port: number;
  sockets: Set<net.Socket>;
  received: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<net.Socket>();
  let received = 0;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let pending = '';
    s.on('data', (d: Buffer) => {
      received += d.length;
      pending += d.toString('latin1');
      let i: number;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        if (line === 'bye') s.end();
        else {
          const [n, size] = line.split(' ').map(Number);
          if (Number.isInteger(n) && Number.isInteger(size)) s.write(body(n!, size!));
        }
      }
    });
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    received: () => received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Sends request `n` for `size` bytes and resolves with the reply once all of it arrived. */
function ask(s: net.Socket, n: number, size: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const t = setTimeout(() => done(new Error(`reply ${n}: ${got} of ${size} bytes`)), 5000);
    const onData = (d: Buffer): void => {
      parts.push(d);
      got += d.length;
      if (got >= size) done(null);
    };
    const onEnd = (): void => done(new Error(`reply ${n}: ended after ${got} of ${size} bytes`));
    function done(err: Error | null): void {
      clearTimeout(t);
      s.off('data', onData);
      s.off('end', onEnd);
      if (err) reject(err);
      else resolve(Buffer.concat(parts));
    }
    s.on('data', onData);
    s.on('end', onEnd);
    s.write(`${n} ${size}\n`);
  });
}

/**
 * Resumes a paused client and reads until `size` bytes arrived (or, with `size` null, until the
 * end): the byte count and the sha256 of what arrived.
 */
function readAll(s: net.Socket, size: number | null): Promise<{ got: number; sha256: string }> {
  return new Promise((resolve) => {
    const h = createHash('sha256');
    let got = 0;
    const done = (): void => resolve({ got, sha256: h.digest('hex') });
    s.on('data', (d: Buffer) => {
      h.update(d);
      got += d.length;
      if (size !== null && got >= size) done();
    });
    if (size === null) s.once('end', done);
    s.resume();
  });
}

describe('proxy data plane: the native relay for keep-alive connections', needsRelay, () => {
  let lb: Lb;
  let backend: Awaited<ReturnType<typeof keepAliveBackend>>;

  before(async () => {
    lb = await startLb();
    backend = await keepAliveBackend();
  });
  after(async () => {
    await lb.close();
    await backend.close();
  });

  /** Runs `fn` against a fresh rr service whose one real server is the keep-alive backend. */
  async function withService(fn: (port: number) => Promise<void>): Promise<void> {
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    lb.ctl.run({ cmd: 'newService', service: svc });
    lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backend.port) });
    try {
      await fn(port);
    } finally {
      lb.ctl.run({ cmd: 'delService', service: svc });
    }
  }

  // read as ipvsadm reads them: through a command, which first takes the relay's counts
  const dest = (port: number) =>
    lb.ctl
      .run({ cmd: 'getService', service: tcpService(port, 'rr') })
      .dests.find((d) => d.port === backend.port)!;
  const entry = (port: number) =>
    lb.ctl
      .run({ cmd: 'getConns' })
      .find((c) => c.vport === port && c.protocol === 6 && c.dport !== 0);

  it('takes a keep-alive connection over and counts every chunk as the JavaScript relay does', async () => {
    await withService(async (port) => {
      const spliced = lb.plane.counters.spliced;
      const s = await connect(port);
      let inBytes = 0;
      let outBytes = 0;
      for (let n = 1; n <= 12; n++) {
        const size = 100 + n * 17;
        const req = `${n} ${size}\n`;
        inBytes += req.length;
        outBytes += size;
        assert.deepEqual(await ask(s, n, size), body(n, size));
      }
      assert.equal(lb.plane.counters.spliced, spliced + 1, 'handed to the relay once');
      assert.equal(relay!.addon.spliceInfo().live >= 1, true);
      // one request and one reply per round: one packet each, as a reader of each chunk counts,
      // after the SYN and the handshake's ACK in and the SYN+ACK out
      const d = dest(port);
      assert.equal(d.stats.inpkts, 2 + 12);
      assert.equal(d.stats.inbytes, inBytes);
      assert.equal(d.stats.outpkts, 1 + 12);
      assert.equal(d.stats.outbytes, outBytes);
      assert.equal(d.activeConns, 1);
      const e = entry(port)!;
      assert.equal(e.stateName, 'ESTABLISHED');
      assert.ok(e.expiresMs > 890_000, `the last chunk re-armed the timer: ${e.expiresMs} ms`);
      // the client's FIN ends the relay; the backend answers with its own: TIME_WAIT, inactive
      s.end();
      await closed(s);
      await until(() => entry(port)?.stateName === 'TIME_WAIT', 3000, 'TIME_WAIT');
      assert.equal(dest(port).activeConns, 0);
      assert.equal(dest(port).inactConns, 1);
    });
  });

  it('relays a half-close from the real server and the bytes the client sends after it', async () => {
    await withService(async (port) => {
      const s = await connect(port);
      await ask(s, 1, 50); // now in the relay
      const ended = new Promise((r) => s.once('end', r));
      s.write('bye\n');
      await ended; // the backend's FIN reached the client
      await until(() => entry(port)?.stateName === 'FIN_WAIT', 3000, 'FIN_WAIT');
      // the other direction still flows: the backend counts what arrives
      const before = backend.received();
      s.write('late data\n');
      await until(() => backend.received() === before + 10, 3000, 'late data at the backend');
      s.end();
      await closed(s);
      await until(() => entry(port)?.stateName === 'TIME_WAIT', 3000, 'TIME_WAIT');
    });
  });

  it('resets the client when the real server resets a relayed connection', async () => {
    await withService(async (port) => {
      const s = await connect(port);
      await ask(s, 1, 50);
      const err = new Promise<NodeJS.ErrnoException>((r) => s.once('error', r));
      await until(() => backend.sockets.size === 1, 3000, 'backend socket');
      for (const b of backend.sockets) b.resetAndDestroy();
      assert.equal((await err).code, 'ECONNRESET');
      await until(() => entry(port)?.stateName === 'CLOSE', 3000, 'CLOSE');
    });
  });

  it('keeps a busy relayed connection past its idle timeout and closes it once idle', async () => {
    await withService(async (port) => {
      lb.ctl.run({ cmd: 'setConfig', timeouts: { tcp: 1, tcpfin: 0, udp: 0 } });
      try {
        const s = await connect(port);
        await ask(s, 1, 50);
        // 1.8 s of requests every 200 ms: each re-arms the 1 s timer
        for (let n = 2; n <= 10; n++) {
          await new Promise((r) => setTimeout(r, 200));
          await ask(s, n, 50);
        }
        assert.equal(entry(port)?.stateName, 'ESTABLISHED');
        // now idle: the entry expires and both sockets are closed (a reset, as for the JS relay)
        const gone = new Promise<void>((r) => s.once('close', () => r()));
        s.on('error', () => {});
        await gone;
        assert.equal(entry(port), undefined);
        assert.ok(lb.plane.counters.expiredOpen >= 1);
      } finally {
        lb.ctl.run({ cmd: 'setConfig', timeouts: { tcp: 900, tcpfin: 0, udp: 0 } });
      }
    });
  });

  it('stops forwarding at once when the destination of a relayed connection is deleted', async () => {
    await withService(async (port) => {
      const s = await connect(port);
      await ask(s, 1, 50);
      const svc = tcpService(port, 'rr');
      lb.ctl.run({ cmd: 'delDest', service: svc, dest: masq(backend.port) });
      const before = backend.received();
      s.write('2 50\n');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(backend.received(), before, 'nothing reaches the deleted server');
      s.destroy();
      lb.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backend.port) });
    });
  });

  it('holds a large reply for a paused client within bounded memory and delivers every byte', async () => {
    await withService(async (port) => {
      const s = await connect(port);
      await ask(s, 1, 50);
      const size = 48 * 1024 * 1024;
      const want = createHash('sha256').update(body(7, size)).digest('hex');
      s.pause();
      s.write(`7 ${size}\n`);
      await new Promise((r) => setTimeout(r, 600));
      const info = relay!.addon.spliceInfo();
      assert.ok(info.pendingWrites <= 1, `${info.pendingWrites} writes held`);
      const { got, sha256 } = await readAll(s, size);
      assert.equal(got, size);
      assert.equal(sha256, want);
      s.destroy();
    });
  });

  it('delivers a reply still held for a paused client that half-closes meanwhile', async () => {
    await withService(async (port) => {
      const s = await connect(port);
      await ask(s, 1, 50);
      const size = 24 * 1024 * 1024;
      const want = createHash('sha256').update(body(9, size)).digest('hex');
      s.pause();
      s.write(`9 ${size}\n`);
      await new Promise((r) => setTimeout(r, 600));
      // the client's FIN reaches the relay while part of the reply still waits for its socket
      s.end();
      await new Promise((r) => setTimeout(r, 200));
      // until the end: the backend ends after its reply, on our FIN
      const { got, sha256 } = await readAll(s, null);
      assert.equal(got, size);
      assert.equal(sha256, want);
      await closed(s);
      await until(() => entry(port)?.stateName === 'TIME_WAIT', 3000, 'TIME_WAIT');
    });
  });

  it('lets stop() drain relayed connections, then resets what is left', async () => {
    const lb2 = await startLb();
    const port = await freePort();
    const svc = tcpService(port, 'rr');
    lb2.ctl.run({ cmd: 'newService', service: svc });
    lb2.ctl.run({ cmd: 'newDest', service: svc, dest: masq(backend.port) });
    const s = await connect(port);
    await ask(s, 1, 50);
    const reset = new Promise<void>((r) => s.once('close', () => r()));
    s.on('error', () => {});
    const t0 = Date.now();
    await lb2.plane.stop(300);
    await reset;
    const took = Date.now() - t0;
    // the upper bound only has to tell the deadline from waiting for the idle client forever
    assert.ok(took >= 250 && took < 3000, `open connections were given the deadline: ${took} ms`);
    lb2.ipvs.close();
  });
});
