/**
 * The proxy data plane with IPv6 clients that are not the VIP itself (on loopback every client is
 * ::1, so these run in a network namespace with two addresses on its lo): a UDP service serves
 * outside clients after its first real server is added (and again after a park), and a wildcard
 * VIP and a specific VIP of its family on one port are refused whichever comes first.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NsChild, ROOT, netnsSkipReason } from '../helpers/netns.js';

const IPVS = join(ROOT, 'bin', 'ipvs');
const VIP = '2001:db8:1::2';
const CLIENT = '2001:db8:2::1';

/** A UDP echo server on [::1]:port answering `echo:<text>`. */
const ECHO = `const d=require('dgram').createSocket('udp6');
d.on('message',(m,r)=>d.send('echo:'+m,r.port,r.address));
d.bind(0,'::1',()=>console.log('port '+d.address().port));`;

/**
 * Sends one datagram from CLIENT to [VIP]:port and prints the reply, the error or "nothing";
 * connected (`c`) so that a refusal shows, or not (`u`: a reply from another local address counts).
 */
const ASK = `const d=require('dgram').createSocket('udp6');
const t=setTimeout(()=>{console.log('nothing');process.exit(0)},1500);
d.on('message',(m)=>{console.log(String(m));clearTimeout(t);process.exit(0)});
d.on('error',(e)=>{console.log(e.code);process.exit(0)});
const [port,how]=[+process.argv[1],process.argv[2]];
d.bind(0,'${CLIENT}',()=>how==='c'?d.connect(port,'${VIP}',()=>d.send('hi')):d.send('hi',port,'${VIP}'));`;

describe('proxy data plane: IPv6 clients in a namespace', { skip: netnsSkipReason() }, () => {
  const ns = `ipvs-p6-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'ipvs-p6-'));
  const sock = join(dir, 'ctl.sock');
  const children: NsChild[] = [];
  let echoPort = 0;

  const inNs = (label: string, cmd: string, args: string[]) => {
    const c = new NsChild(ns, label, spawn('ip', ['netns', 'exec', ns, cmd, ...args]));
    children.push(c);
    return c;
  };
  const adm = (...args: string[]) =>
    spawnSync(process.execPath, [IPVS, 'adm', '--control', sock, ...args], { encoding: 'utf8' });
  const ask = (port: number, how: 'c' | 'u' = 'c'): string =>
    spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', ASK, String(port), how], {
      encoding: 'utf8',
      timeout: 10_000,
    }).stdout.trim();

  before(async () => {
    spawnSync('ip', ['netns', 'del', ns]);
    const ip = (...a: string[]) => {
      const r = spawnSync('ip', ['-n', ns, ...a], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
    ip('link', 'set', 'lo', 'up');
    ip('addr', 'add', `${VIP}/128`, 'dev', 'lo', 'nodad');
    ip('addr', 'add', `${CLIENT}/128`, 'dev', 'lo', 'nodad');
    const echo = inNs('echo', process.execPath, ['-e', ECHO]);
    echoPort = Number((await echo.waitFor(/port (\d+)/))[1]);
    const d = inNs('daemon', process.execPath, [
      IPVS,
      'daemon',
      '--dataplane',
      'proxy',
      '--control',
      sock,
    ]);
    await d.waitFor(/listening on/, { stream: 'stderr', timeoutMs: 10_000 });
  });
  after(async () => {
    for (const c of children) await c.kill('SIGKILL', 500);
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a UDP service answers an outside IPv6 client once it has a real server, also after a park', () => {
    // the wildcard's replies leave from the address the host picks for the client (the socket
    // does not know the one it was sent to), so its client does not connect
    for (const [vip, port, how] of [
      [`[${VIP}]`, 28120, 'c'],
      ['[::]', 28121, 'u'],
    ] as const) {
      const svc = ['-u', `${vip}:${port}`];
      assert.equal(adm('-A', ...svc, '-s', 'rr').status, 0);
      // no real server: the host refuses the client (the kernel's port unreachable)
      assert.equal(ask(port), 'ECONNREFUSED', vip);
      assert.equal(adm('-a', ...svc, '-r', `[::1]:${echoPort}`, '-m').status, 0);
      assert.equal(ask(port, how), 'echo:hi', `${vip} after -a`);
      // parked again without a server, and open again with one
      assert.equal(adm('-d', ...svc, '-r', `[::1]:${echoPort}`).status, 0);
      assert.equal(adm('-a', ...svc, '-r', `[::1]:${echoPort}`, '-m').status, 0);
      assert.equal(ask(port, how), 'echo:hi', `${vip} after a park`);
    }
  });

  it('refuses a wildcard VIP and a specific VIP of its family on one port, whichever is first', () => {
    for (const [first, second, port] of [
      ['[::]', `[${VIP}]`, 28150],
      [`[${VIP}]`, '[::]', 28151],
    ] as const) {
      assert.equal(adm('-A', '-t', `${first}:${port}`).status, 0); // parked: no real server
      const r = adm('-A', '-t', `${second}:${port}`);
      assert.equal(r.status, 255, `${second} after ${first}`);
      assert.match(r.stderr, /address already in use/);
      const listed = adm('-Ln').stdout;
      assert.ok(!listed.includes(`${second}:${port}`), listed);
      // IPv4's wildcard on the same port is another family's: taken
      assert.equal(adm('-A', '-t', `0.0.0.0:${port}`).status, 0);
    }
  });
});
