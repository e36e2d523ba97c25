#!/usr/bin/env node
// Builds the native addon (native/ipvs_native.c) with node-gyp, from source, never downloading
// headers: when the running Node's own headers are installed (e.g. Debian's /usr/include/node), it
// passes --nodedir so node-gyp uses them. Run by `npm ci`/`npm install` (the package's install
// script) and by scripts/prepare.mjs.
//
//   node native/build.mjs            rebuild
//   node native/build.mjs --if-stale build only when the .node is missing or older than a source
//   IPVS_NATIVE_STRICT=1             fail (exit 1) when the build fails; default: warn and go on,
//                                    since only the native frame-I/O backends need the addon
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'build', 'Release', 'ipvs_native.node');
const sources = ['ipvs_native.c', 'binding.gyp'].map((f) => join(here, f));
const strict = process.env.IPVS_NATIVE_STRICT === '1';

function warn(msg) {
  console.error(`ipvs-ts native: ${msg}`);
}

if (process.platform !== 'linux') {
  warn(`skipping the addon build: AF_PACKET and TUN need Linux (this is ${process.platform})`);
  process.exit(0);
}

if (process.argv.includes('--if-stale') && existsSync(out)) {
  const built = statSync(out).mtimeMs;
  if (sources.every((s) => statSync(s).mtimeMs <= built)) process.exit(0);
}

// node-gyp: the devDependency, else the one npm runs lifecycle scripts with, else npm's bundled copy.
function findNodeGyp() {
  try {
    return createRequire(join(here, '..', 'package.json')).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    /* not installed as a dependency */
  }
  const env = process.env.npm_config_node_gyp;
  if (env && existsSync(env) && env.endsWith('.js')) return env;
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(bundled) ? bundled : undefined;
}

// Headers of the running Node: <prefix>/include/node/node_api.h next to <prefix>/bin/node.
function findNodeDir() {
  const candidates = [join(dirname(process.execPath), '..'), '/usr', '/usr/local'];
  for (const dir of candidates) {
    if (existsSync(join(dir, 'include', 'node', 'node_api.h')) && existsSync(join(dir, 'include', 'node', 'common.gypi'))) {
      return dir;
    }
  }
  return undefined;
}

const gyp = findNodeGyp();
if (!gyp) {
  warn('node-gyp not found (run `npm install` first); the addon was not built');
  process.exit(strict ? 1 : 0);
}
const args = [gyp, 'rebuild', `--directory=${here}`, '--loglevel=warn'];
const nodedir = findNodeDir();
if (nodedir) args.push(`--nodedir=${nodedir}`);
else warn('no local Node headers found (e.g. Debian package libnode-dev); node-gyp may try to download them');
const res = spawnSync(process.execPath, args, { cwd: here, stdio: ['ignore', 'inherit', 'inherit'] });
if (res.status !== 0) {
  warn(
    'building the addon failed; the AF_PACKET and TUN backends will report IPVS_ERR_IO_NATIVE_MISSING. ' +
      'Needs gcc, make, python3 and Node headers; retry with `node native/build.mjs`.',
  );
  process.exit(strict ? 1 : 0);
}
