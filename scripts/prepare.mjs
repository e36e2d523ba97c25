#!/usr/bin/env node
// Installs dependencies when they are missing or stale, then builds the project.
// Used by `npm test`, `npm run demo` and `npm run bench`, so both README commands work on a fresh clone.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

const lock = join(root, 'package-lock.json');
const marker = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
  console.error('ipvs-ts: installing dependencies (npm ci)');
  run(npm, ['ci', '--no-audit', '--no-fund']);
}
// The native frame-I/O addon (native/): rebuilt when missing or older than its sources; a failed
// build only warns (the backends that need it then say IPVS_ERR_IO_NATIVE_MISSING).
run(process.execPath, [join(root, 'native', 'build.mjs'), '--if-stale']);
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
