/**
 * Rules files (`ipvs daemon --rules FILE`, `ipvs trace --rules FILE`): ipvsadm-save text applied
 * with `ipvsadm -R` semantics (one command per line; a validation error stops, as ipvsadm exits
 * there; a refused command is reported and the next line runs). Like the `ipvsadm-restore`
 * wrapper, lines whose first non-blank character is `#` are comments. Unlike `ipvsadm -R`, whose
 * status is the last line's, the status is that of the first line that failed, and every message
 * names its line (`FILE:LINE: message`), so a caller can refuse a file with any failing line.
 */
import { readFileSync } from 'node:fs';
import { restoreLines, runRestoreLine } from '../cli/adm/run.js';
import { SystemResolver, type NameResolver } from '../cli/adm/netdb.js';
import type { CtlBackend } from '../ctl/backend.js';
import { StateFileError } from '../ctl/errors.js';

/** Blanks `#` comment lines (keeping the line count, so line numbers stay right). */
export function stripComments(text: string): string {
  return text
    .split('\n')
    .map((l) => (/^\s*#/.test(l) ? '' : l))
    .join('\n');
}

/** Outcome of applying rules text. */
export interface RulesResult {
  /** 0 when every line succeeded, else the ipvsadm status of the first line that failed. */
  status: number;
  /** Everything printed; a failing line's messages are prefixed with `FILE:LINE: `. */
  output: string;
}

/**
 * Applies rules text; returns the status and everything it printed (errors included). `file`
 * names the source in messages (default: `line N: …`).
 */
export async function applyRules(
  text: string,
  backend: CtlBackend,
  resolver?: NameResolver,
  file?: string,
): Promise<RulesResult> {
  const names = resolver ?? new SystemResolver();
  const lines = stripComments(text).split('\n');
  let output = '';
  let status = 0;
  for (let i = 0; i < lines.length; i++) {
    const toks = restoreLines(lines[i]!)[0];
    if (!toks) continue;
    let printed = '';
    const sink = { write: (s: string) => (printed += s) };
    const r = await runRestoreLine(toks, {
      stdout: sink,
      stderr: sink,
      backend,
      resolver: names,
    });
    if (r.status !== 0) {
      const where = file ? `${file}:${i + 1}: ` : `line ${i + 1}: `;
      const text = printed.trimEnd() || `failed with status ${r.status}`;
      output += `${text
        .split('\n')
        .map((l) => where + l)
        .join('\n')}\n`;
      if (status === 0) status = r.status;
    } else {
      output += printed;
    }
    if (r.abort) break;
  }
  return { status, output };
}

/** Reads and applies a rules file; throws StateFileError when it cannot be read. */
export async function loadRulesFile(
  path: string,
  backend: CtlBackend,
  resolver?: NameResolver,
): Promise<RulesResult> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new StateFileError(`cannot read rules file ${path}: ${(e as Error).message}`);
  }
  return applyRules(text, backend, resolver, path);
}
