/**
 * The daemon's HTTP listener (`ipvs daemon --http HOST:PORT`): read-only observability over plain
 * HTTP/1.1. `GET /metrics` is the Prometheus exposition (src/metrics/prometheus.ts); `GET
 * /proc/net/ip_vs`, `ip_vs_conn`, `ip_vs_conn_sync`, `ip_vs_stats`, `ip_vs_stats_percpu` and
 * `ip_vs_app` are the kernel's texts (src/metrics/proc.ts). The connection texts are streamed page
 * by page (`getConnsPage`), honouring the client's backpressure and yielding to the event loop
 * between pages, so millions of connections neither build one giant string nor stall forwarding.
 * Nothing here changes state: every other method is 405, every other path 404. The REST API and
 * the dashboard (DESIGN.md) are not here yet.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import type { ConnInfo, Info, ServiceInfo } from './types.js';
import { HttpAddressError, HttpListenError } from './errors.js';
import {
  PROC_CONN_HEADER,
  PROC_CONN_SYNC_HEADER,
  procConnRow,
  procConnSyncRow,
  procIpVs,
  procIpVsApp,
  procIpVsStats,
  procIpVsStatsPercpu,
  type AppInfo,
  type TotalsInfo,
} from '../metrics/proc.js';
import {
  PROMETHEUS_CONTENT_TYPE,
  prometheusChunks,
  type PlaneMetric,
} from '../metrics/prometheus.js';

/** What the listener reads; the daemon implements it over its controller and core. */
export interface ObservabilitySource {
  info(): Promise<Info>;
  services(): Promise<ServiceInfo[]>;
  /** One page of the connection table (the `getConnsPage` command). */
  connsPage(from: number, max: number): Promise<{ conns: ConnInfo[]; next: number }>;
  totals(): TotalsInfo;
  /** Application helper incarnations (the FTP helper's ports); empty when none is registered. */
  apps(): AppInfo[];
  /** Figures beyond IPVS's (the data plane's, the sync daemons'; ipvs-ts extension). */
  extraMetrics?(): PlaneMetric[];
}

/** A parsed `--http` value. */
export interface HttpAddress {
  host: string;
  port: number;
}

/** Options of the HTTP listener. */
export interface HttpServerOptions {
  /** Connections per page of the streamed texts (default 10,000). */
  connPage?: number;
  log?: (msg: string) => void;
}

const TEXT = 'text/plain; charset=utf-8';
const DEFAULT_CONN_PAGE = 10_000;

/**
 * Parses `HOST:PORT`: HOST an IPv4 address, a bracketed IPv6 address or a host name; PORT
 * 0..65535 (0: any free port). Throws HttpAddressError.
 */
export function parseHttpAddress(text: string): HttpAddress {
  const bad = (why: string) =>
    new HttpAddressError(
      `--http ${text}: ${why}; give HOST:PORT, e.g. 127.0.0.1:9100 or [::1]:9100`,
    );
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]+)$/.exec(text);
  if (!m) throw bad(text.includes(':') ? 'not HOST:PORT' : 'no port');
  const host = m[1] ?? m[2]!;
  if (host === '') throw bad('no host');
  if (m[1] !== undefined && isIP(host) !== 6) throw bad(`[${host}] is not an IPv6 address`);
  if (m[2] !== undefined && !/^[A-Za-z0-9.-]+$/.test(host)) throw bad(`'${host}' is not a host`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port > 65535 || m[3]!.length > 5)
    throw bad(`port ${m[3]} is not in 0..65535`);
  return { host, port };
}

/** `HOST:PORT`, brackets around an IPv6 host. */
export function formatHttpAddress(a: HttpAddress): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The paths served and how. */
const PROC_PATHS: ReadonlySet<string> = new Set([
  '/proc/net/ip_vs',
  '/proc/net/ip_vs_conn',
  '/proc/net/ip_vs_conn_sync',
  '/proc/net/ip_vs_stats',
  '/proc/net/ip_vs_stats_percpu',
  '/proc/net/ip_vs_app',
]);

/** A listening HTTP server. */
export class HttpServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: HttpAddress;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #closed = false;

  private constructor(server: Server, address: HttpAddress) {
    this.#server = server;
    this.address = address;
  }

  /** Binds `addr` and serves `source`; throws HttpListenError when the address cannot be bound. */
  static async listen(
    addr: HttpAddress,
    source: ObservabilitySource,
    opts: HttpServerOptions = {},
  ): Promise<HttpServer> {
    const page = opts.connPage ?? DEFAULT_CONN_PAGE;
    const server = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why =
        err.code === 'EADDRINUSE'
          ? 'the address is in use'
          : err.code === 'EADDRNOTAVAIL'
            ? 'not an address of this host'
            : err.code === 'EACCES'
              ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
              : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
                ? 'the host name does not resolve'
                : err.message;
      throw new HttpListenError(
        `--http ${formatHttpAddress(addr)}: cannot listen: ${why} (${err.code ?? 'error'}, IPVS_ERR_HTTP_LISTEN)`,
      );
    }
    const bound = server.address();
    const port = typeof bound === 'object' && bound ? bound.port : addr.port;
    const hs = new HttpServer(server, { host: addr.host, port });
    server.on('connection', (s: Socket) => {
      hs.#sockets.add(s);
      s.on('close', () => hs.#sockets.delete(s));
    });
    // Pipelined requests on one connection are answered one after another: each reply is built
    // only once the one before it has been written out, and none once the client is gone, so a
    // client that pipelines many large requests holds one reply's memory, not one per request.
    const turns = new WeakMap<Socket, Promise<void>>();
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const s = req.socket;
      const turn = (turns.get(s) ?? Promise.resolve()).then(async () => {
        if (res.destroyed || s.destroyed) return;
        await serve(req, res, source, page).catch((e: unknown) => {
          opts.log?.(`http: ${req.url ?? ''}: ${e instanceof Error ? e.message : String(e)}`);
          if (!res.headersSent) reply(res, 500, 'Internal error\n', req.method === 'HEAD');
          else res.destroy();
        });
        await sent(res);
      });
      turns.set(s, turn);
    });
    server.on('error', (e) => opts.log?.(`http listener error: ${e.message}`));
    return hs;
  }

  /** Stops listening and closes every client connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const done = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await done;
  }
}

function reply(
  res: ServerResponse,
  status: number,
  body: string,
  head: boolean,
  type = TEXT,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(head ? undefined : body);
}

/**
 * The path of a request target: origin-form (`/metrics?x`) as clients send it, or absolute-form
 * (`http://host:port/metrics`), which RFC 7230 §5.3.2 says a server must accept too.
 */
function requestPath(target: string): string {
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  const rest = abs ? target.slice(abs[0].length) || '/' : target;
  return rest.split(/[?#]/)[0]!;
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  source: ObservabilitySource,
  page: number,
): Promise<void> {
  const path = requestPath(req.url ?? '/');
  const known = path === '/metrics' || PROC_PATHS.has(path);
  if (!known) {
    reply(
      res,
      404,
      `Not found: ${path}\nServed: /metrics ${[...PROC_PATHS].join(' ')}\n`,
      req.method === 'HEAD',
    );
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    reply(
      res,
      405,
      `Method ${req.method ?? ''} not allowed: read-only (GET, HEAD)\n`,
      false,
      TEXT,
      {
        Allow: 'GET, HEAD',
      },
    );
    return;
  }
  const head = req.method === 'HEAD';
  switch (path) {
    case '/metrics':
      await streamMetrics(res, source, head);
      return;
    case '/proc/net/ip_vs': {
      const [info, services] = await Promise.all([source.info(), source.services()]);
      reply(res, 200, procIpVs(info, services), head);
      return;
    }
    case '/proc/net/ip_vs_stats':
      reply(res, 200, procIpVsStats(source.totals()), head);
      return;
    case '/proc/net/ip_vs_stats_percpu':
      reply(res, 200, procIpVsStatsPercpu(source.totals()), head);
      return;
    case '/proc/net/ip_vs_app':
      reply(res, 200, procIpVsApp(source.apps()), head);
      return;
    case '/proc/net/ip_vs_conn':
      await streamConns(res, source, page, head, PROC_CONN_HEADER, procConnRow);
      return;
    case '/proc/net/ip_vs_conn_sync':
      await streamConns(res, source, page, head, PROC_CONN_SYNC_HEADER, procConnSyncRow);
      return;
  }
}

/** Resolves when `res` has been written out (finish) or is gone (close). */
function sent(res: ServerResponse): Promise<void> {
  if (res.writableFinished || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    res.once('finish', resolve);
    res.once('close', resolve);
  });
}

/** Resolves when `res` can take more (drain) or is gone (close). */
function writable(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * /metrics, chunked, a metric family at a time from one reading of the services: with thousands
 * of real servers the text runs to tens of megabytes, and the data plane and the control socket
 * go on between families instead of waiting for all of it.
 */
async function streamMetrics(
  res: ServerResponse,
  source: ObservabilitySource,
  head: boolean,
): Promise<void> {
  const services = await source.services();
  const totals = source.totals();
  const plane = source.extraMetrics?.() ?? [];
  res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Cache-Control': 'no-store' });
  if (!head) {
    let first = true;
    for (const chunk of prometheusChunks(totals, services, plane)) {
      if (!first) await new Promise((r) => setImmediate(r));
      first = false;
      if (res.destroyed) break;
      if (!res.write(chunk)) await writable(res);
    }
  }
  res.end();
}

/** A connection text, chunked, one `getConnsPage` page at a time. */
async function streamConns(
  res: ServerResponse,
  source: ObservabilitySource,
  page: number,
  head: boolean,
  header: string,
  row: (c: ConnInfo) => string,
): Promise<void> {
  // the first page comes before the headers, so a failing read is still a clean 500
  let p = head ? null : await source.connsPage(0, page);
  res.writeHead(200, { 'Content-Type': TEXT, 'Cache-Control': 'no-store' });
  if (!p) {
    res.end();
    return;
  }
  let out = header;
  for (;;) {
    for (const c of p.conns) out += row(c);
    if (!res.write(out)) await writable(res);
    out = '';
    if (p.next < 0 || res.destroyed) break;
    // let packets and other requests in between pages
    await new Promise((r) => setImmediate(r));
    p = await source.connsPage(p.next, page);
  }
  res.end();
}
