/**
 * The control socket's wire protocol: newline-delimited JSON over a Unix stream socket. A request
 * is one command object (`{"cmd":"newService","service":{…}}`), optionally with an `id` that the
 * reply echoes. A reply is `{"id":…,"ok":true,"result":…}` or
 * `{"id":…,"ok":false,"error":{"code","errno","message","ipvsadmMessage"}}`. Replies come in
 * request order. A request longer than `MAX_REQUEST_BYTES` gets an error reply and is discarded
 * up to its newline.
 */
import type { WireError } from './errors.js';

/** Largest accepted request line, in bytes (1 MiB). */
export const MAX_REQUEST_BYTES = 1 << 20;

/** A reply line. */
export type Reply =
  { id?: unknown; ok: true; result: unknown } | { id?: unknown; ok: false; error: WireError };

/** Splits a byte stream into lines, enforcing a maximum line length. */
export class LineSplitter {
  readonly #max: number;
  #parts: Buffer[] = [];
  #size = 0;
  #discarding = false;

  constructor(max = MAX_REQUEST_BYTES) {
    this.#max = max;
  }

  /**
   * Feeds a chunk; calls `line` for each complete line and `tooLong` once for each line that went
   * over the limit (its bytes are dropped).
   */
  push(chunk: Buffer, line: (text: string) => void, tooLong: () => void): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(10, start);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.#discarding) {
        const piece = chunk.subarray(start, end);
        if (this.#size + piece.length > this.#max) {
          this.#discarding = true;
          this.#parts = [];
          this.#size = 0;
          tooLong();
        } else {
          this.#parts.push(piece);
          this.#size += piece.length;
        }
      }
      if (nl < 0) break;
      if (!this.#discarding) {
        const text = Buffer.concat(this.#parts).toString('utf8');
        this.#parts = [];
        this.#size = 0;
        line(text);
      }
      this.#discarding = false;
      start = nl + 1;
    }
  }
}
