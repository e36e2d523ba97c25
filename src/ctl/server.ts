/**
 * The control socket server: a Unix stream socket with mode 0600 (only its owner may change
 * state), newline-delimited JSON requests (see protocol.ts), any number of clients. A second daemon
 * on the same path refuses to start; a stale socket file left by a dead daemon is replaced. The
 * socket's directory is created 0700 and must not be writable by anyone else (who could swap the
 * socket). Garbage never crashes the server: it gets an error reply and the connection keeps
 * working; a client that does not read its replies is not read from until it does.
 */
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Controller } from './controller.js';
import {
  BadRequestError,
  RequestTooLargeError,
  InternalError,
  SocketDirError,
  SocketInUseError,
  toWireError,
} from './errors.js';
import { LineSplitter, MAX_REQUEST_BYTES, type Reply } from './protocol.js';

/** Lines of one client read ahead of the request running before its socket is not read. */
const MAX_QUEUED = 4096;
/**
 * Reply bytes waiting for a client to read them before its next request waits (one large reply
 * may go past it; a restore's small replies stream without waiting for the client's reads).
 */
const MAX_UNREAD = 1 << 20;

/** Options of the control server. */
export interface ControlServerOptions {
  maxRequestBytes?: number;
  log?: (msg: string) => void;
}

/** Resolves true when something accepts connections on `path`. */
function probe(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const timer = setTimeout(() => {
      s.destroy();
      resolve(true); // something is there but slow: treat as alive
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Creates the socket's directory (0700) if missing and checks that only this user (or root) can
 * change it: owned by us or root, and not group/other-writable unless sticky (like /tmp).
 */
function prepareDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const uid = process.getuid?.();
  if (uid === undefined) return;
  const st = statSync(dir);
  const sticky = (st.mode & 0o1000) !== 0;
  if (st.uid !== uid && st.uid !== 0)
    throw new SocketDirError(
      `The control socket's directory ${dir} belongs to uid ${st.uid}, not to you (uid ${uid}); remove it or use --control PATH`,
    );
  if ((st.mode & 0o022) !== 0 && !sticky)
    throw new SocketDirError(
      `The control socket's directory ${dir} is writable by others (mode ${(st.mode & 0o777).toString(8)}); chmod go-w it or use --control PATH`,
    );
}

/**
 * Checks that a daemon could listen on `path` (its directory is safe, no live daemon serves it)
 * without taking it; `ipvs daemon` calls it before it loads any configuration.
 */
export async function checkControlPath(path: string): Promise<void> {
  prepareDirectory(dirname(path));
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new SocketInUseError(`${path} exists and is not a socket`);
  if (await probe(path))
    throw new SocketInUseError(
      `Another ipvs-ts daemon is already listening on ${path}; stop it first or use --control PATH`,
    );
}

/** A listening control socket. */
export class ControlServer {
  readonly path: string;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #closed = false;

  private constructor(path: string, server: Server) {
    this.path = path;
    this.#server = server;
  }

  /** Starts listening on `path`; throws SocketInUseError when another daemon serves it. */
  static async listen(
    path: string,
    controller: Controller,
    opts: ControlServerOptions = {},
  ): Promise<ControlServer> {
    prepareDirectory(dirname(path));
    let exists = false;
    try {
      const st = lstatSync(path);
      exists = true;
      if (!st.isSocket()) throw new SocketInUseError(`${path} exists and is not a socket`);
    } catch (e) {
      if (e instanceof SocketInUseError) throw e;
    }
    if (exists) {
      if (await probe(path)) {
        throw new SocketInUseError(
          `Another ipvs-ts daemon is already listening on ${path}; stop it first or use --control PATH`,
        );
      }
      try {
        unlinkSync(path); // stale socket of a dead daemon
      } catch {
        // gone already
      }
    }
    const max = opts.maxRequestBytes ?? MAX_REQUEST_BYTES;
    const server = createServer();
    const cs = new ControlServer(path, server);
    server.on('connection', (sock) => cs.#serve(sock, controller, max));
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE')
        throw new SocketInUseError(`Another ipvs-ts daemon is already listening on ${path}`);
      throw e;
    } finally {
      process.umask(oldMask);
    }
    chmodSync(path, 0o600);
    server.on('error', (e) => opts.log?.(`control socket error: ${e.message}`));
    return cs;
  }

  #serve(sock: Socket, controller: Controller, max: number): void {
    this.#sockets.add(sock);
    sock.on('close', () => this.#sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    const splitter = new LineSplitter(max);
    // A client's requests run one after another, the next once the previous has been applied and
    // only while the client reads its replies (at most MAX_UNREAD bytes of them wait): a client
    // that pipelines reads and never reads their replies costs about one reply's memory, not
    // thousands, and leaves the others their turn. Mutations still go one after another without waiting for the state
    // file, so their group commit stays one save for many. Lines read ahead wait here; past
    // MAX_QUEUED the socket is not read from until they have run.
    const queued: (string | null)[] = []; // null: a line that was too long
    let head = 0;
    let running = false;
    let waitingDrain = false;
    const awaitDrain = (): void => {
      if (waitingDrain) return;
      waitingDrain = true;
      sock.once('drain', () => {
        waitingDrain = false;
        pump();
      });
    };
    const write = (r: Reply) => {
      if (sock.destroyed) return;
      let text: string;
      try {
        text = JSON.stringify(r);
      } catch {
        // past the longest string V8 holds (~512 MiB: some millions of real servers at once)
        const error = toWireError(new InternalError('reply too large to send as one message'));
        try {
          text = JSON.stringify(
            r.id === undefined ? { ok: false, error } : { id: r.id, ok: false, error },
          );
        } catch {
          text = JSON.stringify({ ok: false, error }); // the id itself cannot be written
        }
      }
      if (!sock.write(`${text}\n`)) {
        awaitDrain();
        flow();
      }
    };
    // replies leave in request order, also while a command waits for I/O (sync sockets)
    let last: Promise<unknown> = Promise.resolve();
    const send = (r: Reply | Promise<Reply>) => {
      last = last.then(() => r).then(write);
    };
    const flow = (): void => {
      if (sock.destroyed) return;
      const hold = queued.length - head > MAX_QUEUED || sock.writableLength > MAX_UNREAD;
      if (hold && !sock.isPaused()) sock.pause();
      else if (!hold && sock.isPaused()) sock.resume();
    };
    const pump = (): void => {
      while (!running && !sock.destroyed && head < queued.length) {
        if (sock.writableLength > MAX_UNREAD) {
          awaitDrain(); // the write that went past the high-water mark returned false
          break;
        }
        const line = queued[head++]!;
        if (line === null) {
          send({
            ok: false,
            error: toWireError(new RequestTooLargeError(`request longer than ${max} bytes`)),
          });
          continue;
        }
        let req: unknown;
        try {
          req = JSON.parse(line);
        } catch {
          send({ ok: false, error: toWireError(new BadRequestError('request is not valid JSON')) });
          continue;
        }
        running = true;
        send(
          controller.submit(req, () => {
            running = false;
            pump();
          }),
        );
      }
      if (head === queued.length) {
        queued.length = 0;
        head = 0;
      }
      flow();
    };
    sock.on('data', (chunk: Buffer) => {
      splitter.push(
        chunk,
        (line) => {
          if (line.trim() !== '') queued.push(line);
        },
        () => queued.push(null),
      );
      pump();
    });
  }

  /** Stops accepting, closes every client and removes the socket file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}
