#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's test runner.
// Arguments, when given, filter the test files by substring (e.g. `npm run test:only -- sched`).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testDir = join(root, 'dist', 'test');

function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

// Debian packages the tests use (tshark, socat, …): install the missing ones when we are root.
function ensureDebianPackages() {
  const list = readFileSync(join(root, 'scripts', 'debian-packages.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
  if (list.length === 0 || process.getuid?.() !== 0) return;
  const missing = list.filter(
    (p) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout?.includes('install ok installed') !== true,
  );
  if (missing.length === 0) return;
  console.error(`ipvs-ts: installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) console.error('ipvs-ts: could not install some Debian packages; the tests that need them will say so');
}
ensureDebianPackages();

const filters = process.argv.slice(2);
const files = walk(testDir, []).filter(
  (f) => filters.length === 0 || filters.some((s) => relative(testDir, f).includes(s)),
);
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const res = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
});
// The proxy's TCP tests once more with the native relay off, so the JavaScript relay that carries
// every connection before (and without) it is tested on keep-alive connections too.
const jsRelay = files.filter((f) => /e2e[\\/]proxy-(tcp|load|churn)\.test\.js$/.test(f));
let status = res.status ?? 1;
if (jsRelay.length > 0) {
  console.log('\n# proxy TCP tests again with the native relay off (IPVS_PROXY_SPLICE=0)');
  const again = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...jsRelay], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, IPVS_PROXY_SPLICE: '0' },
  });
  if (status === 0) status = again.status ?? 1;
}
process.exit(status);
