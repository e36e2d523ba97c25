/**
 * Rules files (`ipvs daemon --rules FILE`): ipvsadm-save text applied with `ipvsadm -R` semantics
 * (one command per line, a validation error stops, a refused command is reported and the next line
 * runs). Like the `ipvsadm-restore` wrapper, lines whose first non-blank character is `#` are
 * comments.
 */
import { readFileSync } from 'node:fs';
import { restoreRules } from '../cli/adm/run.js';
import type { NameResolver } from '../cli/adm/netdb.js';
import type { CtlBackend } from '../ctl/backend.js';
import { StateFileError } from '../ctl/errors.js';

/** Removes `#` comment lines. */
export function stripComments(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n');
}

/**
 * Applies rules text; returns ipvsadm's exit status and everything it printed (errors included).
 */
export async function applyRules(
  text: string,
  backend: CtlBackend,
  resolver?: NameResolver,
): Promise<{ status: number; output: string }> {
  let output = '';
  const status = await restoreRules(
    stripComments(text),
    backend,
    { write: (s: string) => (output += s) },
    resolver,
  );
  return { status, output };
}

/** Reads and applies a rules file; throws StateFileError when it cannot be read. */
export async function loadRulesFile(
  path: string,
  backend: CtlBackend,
  resolver?: NameResolver,
): Promise<{ status: number; output: string }> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new StateFileError(`cannot read rules file ${path}: ${(e as Error).message}`);
  }
  return applyRules(text, backend, resolver);
}
