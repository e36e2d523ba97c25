/**
 * The control socket client `ipvs adm` uses: one connection, requests tagged with ids, replies
 * matched back; coded errors rebuilt from the wire.
 */
import { connect, type Socket } from 'node:net';
import { PermissionError } from '../core/errors.js';
import type { CtlBackend, ResultOf } from './backend.js';
import { ConnectionLostError, fromWireError, NoDaemonSocketError } from './errors.js';
import { LineSplitter, type Reply } from './protocol.js';
import type { Command } from './types.js';

/** A connected control client. */
export class ControlClient implements CtlBackend {
  readonly #sock: Socket;
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  #nextId = 1;
  #closedError: Error | null = null;

  private constructor(sock: Socket) {
    this.#sock = sock;
    // a reply is one line: up to the longest string V8 holds (-L of ~1.5 million real servers)
    const splitter = new LineSplitter((1 << 29) - 64);
    sock.on('data', (chunk: Buffer) =>
      splitter.push(
        chunk,
        (line) => this.#onReply(line),
        () => this.#fail(new ConnectionLostError('reply too large')),
      ),
    );
    sock.on('close', () => this.#fail(new ConnectionLostError()));
    sock.on('error', (e) =>
      this.#fail(new ConnectionLostError(`control connection failed: ${e.message}`)),
    );
  }

  /** Connects to the daemon at `path`. */
  static connect(path: string, timeoutMs = 5000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new NoDaemonSocketError(`No ipvs-ts daemon answers on ${path} (timed out)`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new ControlClient(sock));
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (e.code === 'EACCES' || e.code === 'EPERM')
          reject(new PermissionError(`Permission denied on the control socket ${path}`));
        else reject(new NoDaemonSocketError(`No ipvs-ts daemon is listening on ${path}`));
      });
    });
  }

  #onReply(line: string): void {
    let r: Reply;
    try {
      r = JSON.parse(line) as Reply;
    } catch {
      this.#fail(new ConnectionLostError('the daemon sent an unreadable reply'));
      return;
    }
    const id = typeof r.id === 'number' ? r.id : -1;
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    if (r.ok) p.resolve(r.result);
    else p.reject(fromWireError(r.error));
  }

  #fail(e: Error): void {
    this.#closedError ??= e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    this.#sock.destroy();
  }

  call<C extends Command>(cmd: C): Promise<ResultOf<C>> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#sock.write(`${JSON.stringify({ ...cmd, id })}\n`);
    });
  }

  close(): void {
    this.#closedError ??= new ConnectionLostError('closed');
    this.#sock.end();
  }
}
