/**
 * Helpers for the proxy data plane's end-to-end tests: an in-process Ipvs + ProxyDataplane +
 * Controller on loopback, real backends on port 0, and small socket clients.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { Ipvs } from '../../src/core/ipvs.js';
import { Controller } from '../../src/ctl/controller.js';
import type { DestSpec, ServiceSpec } from '../../src/ctl/types.js';
import { ProxyDataplane, type ProxyDataplaneOptions } from '../../src/dataplane/proxy/index.js';

/** A TCP backend: greets each connection with its name and a newline, then echoes. */
export interface Backend {
  name: string;
  port: number;
  server: net.Server;
  /** Sockets currently open on this backend. */
  sockets: Set<net.Socket>;
  /** Connections accepted so far. */
  accepted: number;
  /** Raw bytes received per connection, in order (for PROXY header checks). */
  received: Buffer[][];
  close(): Promise<void>;
}

/** Behaviour of a test backend. */
export interface BackendOptions {
  /** Send `name\n` on connect (default true). */
  greet?: boolean;
  /** Echo what arrives (default true). */
  echo?: boolean;
  /** End our side when the client ends (default true). */
  endOnEnd?: boolean;
}

/** Starts a TCP backend on 127.0.0.1:0. */
export async function startBackend(name: string, o: BackendOptions = {}): Promise<Backend> {
  const sockets = new Set<net.Socket>();
  const received: Buffer[][] = [];
  const b: Backend = {
    name,
    port: 0,
    server: null as unknown as net.Server,
    sockets,
    accepted: 0,
    received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => b.server.close(() => r()));
    },
  };
  b.server = net.createServer({ allowHalfOpen: true }, (s) => {
    b.accepted++;
    sockets.add(s);
    const chunks: Buffer[] = [];
    received.push(chunks);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (o.greet !== false) s.write(`${name}\n`);
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (o.echo !== false) s.write(d);
    });
    s.on('end', () => {
      if (o.endOnEnd !== false) s.end();
    });
  });
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', () => r()));
  b.port = (b.server.address() as net.AddressInfo).port;
  return b;
}

/** A free TCP (or UDP) port on 127.0.0.1 (bound and released). */
export async function freePort(udp = false): Promise<number> {
  if (udp) {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const p = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return p;
  }
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** An in-process load balancer with the proxy data plane. */
export interface Lb {
  ipvs: Ipvs;
  plane: ProxyDataplane;
  ctl: Controller;
  close(): Promise<void>;
}

/** Builds Ipvs + ProxyDataplane + Controller; the plane ticks core itself. */
export async function startLb(opts: ProxyDataplaneOptions = {}): Promise<Lb> {
  const ipvs = new Ipvs({ log: () => {} });
  const plane = new ProxyDataplane({ tickMs: 20, log: () => {}, ...opts });
  const ctl = new Controller(ipvs, { plane });
  await plane.start(ipvs);
  return {
    ipvs,
    plane,
    ctl,
    close: async () => {
      await plane.stop(200);
      ipvs.close();
    },
  };
}

/** A TCP service spec on 127.0.0.1. */
export function tcpService(
  port: number,
  scheduler = 'rr',
  extra: Partial<ServiceSpec> = {},
): ServiceSpec {
  return {
    af: 2,
    protocol: 6,
    addr: '127.0.0.1',
    port,
    fwmark: 0,
    scheduler,
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    pe: '',
    ...extra,
  };
}

/** A Masq destination spec on 127.0.0.1. */
export function masq(port: number, weight = 1, extra: Partial<DestSpec> = {}): DestSpec {
  return {
    addr: '127.0.0.1',
    port,
    fwd: 0,
    weight,
    uThreshold: 0,
    lThreshold: 0,
    tunType: 0,
    tunPort: 0,
    tunFlags: 0,
    ...extra,
  };
}

/** Connects to 127.0.0.1:port and resolves with the socket once connected. */
export function connect(port: number, opts: net.NetConnectOpts | object = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, ...opts });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads from `s` until `pred(text)` holds, or rejects after `ms`. */
export function readUntil(
  s: net.Socket,
  pred: (text: string) => boolean,
  ms = 3000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`timeout; got ${JSON.stringify(text)}`));
    }, ms);
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      if (pred(text)) {
        cleanup();
        resolve(text);
      }
    };
    const onEnd = () => {
      cleanup();
      if (pred(text)) resolve(text);
      else reject(new Error(`ended; got ${JSON.stringify(text)}`));
    };
    const cleanup = () => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('end', onEnd);
    };
    s.on('data', onData);
    s.on('end', onEnd);
  });
}

/** Connects, reads the backend's greeting line, and returns the backend name (socket left open). */
export async function whoAnswers(port: number): Promise<{ name: string; sock: net.Socket }> {
  const sock = await connect(port);
  const line = await readUntil(sock, (t) => t.includes('\n'));
  return { name: line.split('\n')[0]!, sock };
}

/** Resolves when `cond()` holds, polling every 10 ms; rejects after `ms`. */
export async function until(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves when the socket has closed. */
export function closed(s: net.Socket): Promise<void> {
  return new Promise((r) => {
    if (s.destroyed && s.closed) r();
    else s.once('close', () => r());
  });
}
