/**
 * Where the control socket lives (DESIGN.md, "Contracts"): `--control PATH` first, then the
 * IPVS_CONTROL environment variable, then `/run/ipvs-ts/ctl.sock` as root, else
 * `$XDG_RUNTIME_DIR/ipvs-ts/ctl.sock`, else `<tmpdir>/ipvs-ts-<uid>/ctl.sock`.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The control socket path for this user and environment. */
export function defaultControlPath(
  env: NodeJS.ProcessEnv = process.env,
  uid: number = process.getuid?.() ?? -1,
): string {
  if (env.IPVS_CONTROL) return env.IPVS_CONTROL;
  if (uid === 0) return '/run/ipvs-ts/ctl.sock';
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'ipvs-ts', 'ctl.sock');
  return join(tmpdir(), `ipvs-ts-${uid < 0 ? 'user' : uid}`, 'ctl.sock');
}

/** Resolves an explicit `--control` value against the defaults. */
export function controlPath(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  return explicit ?? defaultControlPath(env);
}
