/**
 * A small emulation of the parts of libpopt that ipvsadm relies on: short options bundled in one
 * word (`-Lnc`), a short option's argument glued to it (`-t10.0.0.1:80`) or in the next word,
 * `--long=arg` and `--long arg`, one '=' dropped after a short option (`-w=5`), options without an
 * argument refusing one given with '=' (`--numeric=1`, `-n=1`), optional arguments that are taken
 * only when the next word does not start with '-', non-option words collected as leftovers (in any
 * position), `--` ending the options, and popt's error codes and texts.
 */

/** How an option takes its argument. */
export type ArgKind = 'none' | 'string' | 'optional';

/** One entry of an option table. */
export interface PoptOption {
  long: string | null;
  short: string | null;
  arg: ArgKind;
  /** Value returned for this option (ipvsadm's `val`). */
  val: string;
}

/** popt's error codes (popt.h). */
export const POPT_ERROR_NOARG = -10;
export const POPT_ERROR_BADOPT = -11;
export const POPT_ERROR_UNWANTEDARG = -12;

/** What `next()` returns: an option, the end, or an error. */
export type PoptResult =
  | { kind: 'opt'; val: string; arg: string | null }
  | { kind: 'end' }
  | { kind: 'error'; code: number };

/** popt's messages for its error codes (poptStrerror). */
export function poptStrerror(code: number): string {
  switch (code) {
    case POPT_ERROR_NOARG:
      return 'missing argument';
    case POPT_ERROR_BADOPT:
      return 'unknown option';
    case POPT_ERROR_UNWANTEDARG:
      return 'option does not take an argument';
    default:
      return 'unknown error';
  }
}

/** An option-parsing context over one argument vector (without the program name). */
export class PoptContext {
  readonly #args: readonly string[];
  readonly #table: readonly PoptOption[];
  #next = 0;
  #nextChar: string | null = null;
  #restLeftover = false;
  readonly #leftovers: string[] = [];
  #nextLeftover = 0;

  constructor(args: readonly string[], table: readonly PoptOption[]) {
    this.#args = args;
    this.#table = table;
  }

  /** Returns the next option (poptGetNextOpt). */
  next(): PoptResult {
    for (;;) {
      let opt: PoptOption | undefined;
      let longArg: string | null = null;
      if (this.#nextChar === null) {
        if (this.#next >= this.#args.length) return { kind: 'end' };
        const word = this.#args[this.#next++]!;
        if (this.#restLeftover || !word.startsWith('-') || word === '-') {
          this.#leftovers.push(word);
          continue;
        }
        if (word === '--') {
          this.#restLeftover = true;
          continue;
        }
        if (word.startsWith('--')) {
          const body = word.slice(2);
          const eq = body.indexOf('=');
          const name = eq >= 0 ? body.slice(0, eq) : body;
          if (eq >= 0) longArg = body.slice(eq + 1);
          opt = this.#table.find((o) => o.long === name);
          if (!opt) return { kind: 'error', code: POPT_ERROR_BADOPT };
        } else {
          this.#nextChar = word.slice(1);
        }
      }
      if (!opt) {
        const chars = this.#nextChar!;
        this.#nextChar = null;
        const ch = chars[0]!;
        opt = this.#table.find((o) => o.short === ch);
        if (!opt) return { kind: 'error', code: POPT_ERROR_BADOPT };
        if (chars.length > 1) this.#nextChar = chars.slice(1);
        if (this.#nextChar?.startsWith('=')) {
          if (opt.arg === 'none') return { kind: 'error', code: POPT_ERROR_UNWANTEDARG };
          // popt skips one '=' between a short option and its glued argument
          this.#nextChar = this.#nextChar.slice(1);
        }
      }
      if (opt.arg === 'none') {
        if (longArg !== null) return { kind: 'error', code: POPT_ERROR_UNWANTEDARG };
        return { kind: 'opt', val: opt.val, arg: null };
      }
      let arg: string | null;
      if (longArg !== null) {
        arg = longArg;
      } else if (this.#nextChar !== null) {
        arg = this.#nextChar;
        this.#nextChar = null;
      } else if (this.#next >= this.#args.length) {
        if (opt.arg !== 'optional') return { kind: 'error', code: POPT_ERROR_NOARG };
        arg = null;
      } else if (opt.arg === 'optional' && this.#args[this.#next]!.startsWith('-')) {
        arg = null;
      } else {
        arg = this.#args[this.#next++]!;
      }
      return { kind: 'opt', val: opt.val, arg };
    }
  }

  /** The argument word that caused the last error (poptBadOption). */
  badOption(): string {
    return this.#args[this.#next - 1] ?? '';
  }

  /** The next leftover (non-option) word, or null (poptGetArg). */
  getArg(): string | null {
    if (this.#nextLeftover < this.#leftovers.length) return this.#leftovers[this.#nextLeftover++]!;
    return null;
  }
}
