/**
 * Shared pieces of the `packet-*.test.ts` end-to-end tests: the director (the real
 * `bin/ipvs daemon --dataplane packet --iface eth0 --iface eth1` in the director namespace,
 * configured with `bin/ipvs adm --control SOCK`), and a client that runs in the client namespace.
 *
 * Run as a script (`node packet-tools.js client …`) it is that client:
 * - `client HOST:PORT --conns N --bytes B [--parallel P]`: N TCP connections, each sends B random
 *   bytes, reads the server's name line and the echo, checks the echo is byte-identical (SHA-256)
 *   and prints one JSON line `{"names":[…],"ok":N,"failed":[…]}`.
 * - `hold HOST:PORT`: one connection; prints `connected NAME LOCAL`; on SIGUSR1 sends 4 KiB and
 *   prints `echo ok` or, after 2 s without the whole echo, `echo timeout`.
 * - `junk IFACE DSTMAC --frames N`: sends N malformed / hostile frames to DSTMAC on IFACE through
 *   AF_PACKET and prints `junk sent N`.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IFACE, ROOT, type NsChild, type Topology } from '../helpers/netns.js';

export const TOOLS = fileURLToPath(import.meta.url);
export const IPVS_BIN = join(ROOT, 'bin', 'ipvs');

/** The director running `ipvs daemon --dataplane packet`. */
export class Director {
  readonly dir: string;
  readonly sock: string;
  child!: NsChild;

  /** `ns`: the namespace it runs in (default the topology's director). */
  constructor(
    readonly t: Topology,
    readonly ns: string = t.ns.director,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'ipvs-pkt-'));
    this.sock = join(this.dir, 'ctl.sock');
  }

  /** Starts the daemon on the director's interfaces; resolves once it listens. */
  async start(extra: string[] = []): Promise<this> {
    this.child = this.t.spawnNode(
      this.ns,
      IPVS_BIN,
      [
        'daemon',
        '--dataplane',
        'packet',
        '--iface',
        IFACE.front,
        '--iface',
        IFACE.back,
        '--control',
        this.sock,
        ...extra,
      ],
      'ipvs daemon',
    );
    await this.child.waitFor(/listening on /, { stream: 'stderr', timeoutMs: 10_000 });
    return this;
  }

  /** `ipvs adm --control SOCK ARGS`; throws on a non-zero status. */
  adm(...args: string[]): string {
    const r = spawnSync(process.execPath, [IPVS_BIN, 'adm', '--control', this.sock, ...args], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.status !== 0)
      throw new Error(`ipvs adm ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** One control command as JSON (for what ipvsadm cannot say: sysctls). */
  async ctl(cmd: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const s = connect(this.sock);
      let buf = '';
      s.setEncoding('utf8');
      s.on('connect', () => s.write(`${JSON.stringify({ ...cmd, id: 1 })}\n`));
      s.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        s.end();
        const r = JSON.parse(buf.slice(0, nl)) as {
          ok: boolean;
          result?: unknown;
          error?: unknown;
        };
        if (r.ok) resolve(r.result);
        else reject(new Error(JSON.stringify(r.error)));
      });
      s.on('error', reject);
    });
  }

  /** The engine's and the interfaces' counters (the daemon prints them on SIGUSR2). */
  async counters(): Promise<PlaneCounters> {
    const from = this.child.stderr.length;
    this.child.proc.kill('SIGUSR2');
    const m = await this.child.waitFor(/packet counters (\{.*\})/, { stream: 'stderr', from });
    return JSON.parse(m[1]!) as PlaneCounters;
  }

  async stop(): Promise<void> {
    if (this.child) await this.child.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface PlaneCounters {
  engine: Record<string, number>;
  ifaces: Record<string, Record<string, number>>;
}

/** Result of the `client` mode. */
export interface ClientResult {
  names: string[];
  ok: number;
  failed: string[];
}

/** Runs the client in namespace `ns` (see the module comment). */
export async function runClient(
  t: Topology,
  ns: string,
  target: string,
  opts: { conns: number; bytes: number; parallel?: number; timeoutMs?: number },
): Promise<ClientResult> {
  const c = t.spawnNode(ns, TOOLS, [
    'client',
    target,
    '--conns',
    String(opts.conns),
    '--bytes',
    String(opts.bytes),
    '--parallel',
    String(opts.parallel ?? 1),
    '--timeout',
    String(opts.timeoutMs ?? 10_000),
  ]);
  const code = await c.exited;
  if (code !== 0) throw new Error(`client failed (${String(code)}): ${c.stderr}`);
  return JSON.parse(c.stdout.trim()) as ClientResult;
}

/** Counts per name. */
export function tally(names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = (out[n] ?? 0) + 1;
  return out;
}

// ---------------------------------------------------------------------------------------------
// The script side.

function arg(name: string, def?: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : def;
  if (v === undefined) throw new Error(`missing ${name}`);
  return v;
}

/** `HOST:PORT` or `[IPV6]:PORT`. */
function hostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  const h = s.slice(0, i);
  return [h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h, Number(s.slice(i + 1))];
}

/** One connection: send `data`, half-close, read `NAME\n` + echo. */
function oneConn(host: string, port: number, data: Buffer, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    s.on('connect', () => s.end(data));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('end', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const nl = all.indexOf(10);
      const name = all.subarray(0, nl).toString();
      const echo = all.subarray(nl + 1);
      const h1 = createHash('sha256').update(data).digest('hex');
      const h2 = createHash('sha256').update(echo).digest('hex');
      if (nl < 0 || h1 !== h2)
        reject(new Error(`echo differs from ${name}: ${echo.length} of ${data.length} bytes`));
      else resolve(name);
    });
  });
}

async function clientMain(): Promise<void> {
  const [host, port] = hostPort(process.argv[3]!);
  const conns = Number(arg('--conns', '1'));
  const bytes = Number(arg('--bytes', '1024'));
  const parallel = Number(arg('--parallel', '1'));
  const timeoutMs = Number(arg('--timeout', '10000'));
  const res: ClientResult = { names: [], ok: 0, failed: [] };
  let next = 0;
  const worker = async () => {
    while (next < conns) {
      next++;
      try {
        res.names.push(await oneConn(host, port, randomBytes(bytes), timeoutMs));
        res.ok++;
      } catch (e) {
        res.failed.push(e instanceof Error ? e.message : String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

function holdMain(): void {
  const [host, port] = hostPort(process.argv[3]!);
  const s = connect({ host, port });
  let got = Buffer.alloc(0);
  let name: string | null = null;
  let want = 0;
  let timer: NodeJS.Timeout | null = null;
  s.on('data', (d: Buffer) => {
    got = Buffer.concat([got, d]);
    if (name === null) {
      const nl = got.indexOf(10);
      if (nl < 0) return;
      name = got.subarray(0, nl).toString();
      got = got.subarray(nl + 1);
      process.stdout.write(`connected ${name} ${s.localAddress}:${s.localPort}\n`);
    }
    if (want > 0 && got.length >= want) {
      want = 0;
      got = Buffer.alloc(0);
      if (timer) clearTimeout(timer);
      process.stdout.write('echo ok\n');
    }
  });
  s.on('error', (e) => process.stdout.write(`error ${e.message}\n`));
  process.on('SIGUSR1', () => {
    want = 4096;
    s.write(randomBytes(4096));
    timer = setTimeout(() => {
      want = 0;
      process.stdout.write('echo timeout\n');
    }, 2000);
  });
  process.on('SIGTERM', () => process.exit(0));
}

async function junkMain(): Promise<void> {
  const { openAfPacket } = await import('../../src/dataplane/io/index.js');
  const iface = process.argv[3]!;
  const dst = Buffer.from(process.argv[4]!.replace(/:/g, ''), 'hex');
  const frames = Number(arg('--frames', '10000'));
  const io = openAfPacket(iface);
  let sent = 0;
  const kinds = [
    // random bytes after an IPv4 ethertype
    (): Buffer => Buffer.concat([hdr(0x0800), randomBytes((20 + Math.random() * 200) | 0)]),
    // an IPv4 header with a bad length / version / checksum
    (): Buffer => {
      const b = randomBytes(60);
      b[0] = 0x40 | ((Math.random() * 16) | 0);
      return Buffer.concat([hdr(0x0800), b]);
    },
    // truncated
    (): Buffer => Buffer.concat([hdr(0x0800), Buffer.from([0x45, 0, 0])]),
    // random IPv6
    (): Buffer => Buffer.concat([hdr(0x86dd), randomBytes(40 + ((Math.random() * 100) | 0))]),
    // random ARP
    (): Buffer => Buffer.concat([hdr(0x0806), randomBytes(28)]),
    // unknown ethertype
    (): Buffer => Buffer.concat([hdr(0x88b5), randomBytes(46)]),
  ];
  function hdr(type: number): Buffer {
    const h = Buffer.alloc(14);
    dst.copy(h, 0);
    Buffer.from([0x02, 0, 0, 0xde, 0xad, 0x01]).copy(h, 6);
    h.writeUInt16BE(type, 12);
    return h;
  }
  while (sent < frames) {
    for (let i = 0; i < 64 && sent < frames; i++) {
      const f = kinds[sent % kinds.length]!();
      const p = f.length < 60 ? Buffer.concat([f, Buffer.alloc(60 - f.length)]) : f;
      if (!io.send(p)) break;
      sent++;
    }
    io.txCommit();
    await io.txWait();
  }
  io.txCommit();
  await new Promise((r) => setTimeout(r, 100));
  await io.close();
  process.stdout.write(`junk sent ${sent}\n`);
}

if (process.argv[1] === TOOLS) {
  const mode = process.argv[2];
  const run =
    mode === 'client'
      ? clientMain()
      : mode === 'junk'
        ? junkMain()
        : mode === 'hold'
          ? Promise.resolve(holdMain())
          : Promise.reject(new Error(`unknown mode ${mode}`));
  run.catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
}
