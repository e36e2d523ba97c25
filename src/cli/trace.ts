/**
 * `ipvs trace --rules FILE --pcap IN.pcap [options]`: replays a capture through a director
 * configured from an ipvsadm-save rules file and prints, for every frame, the trace of what IPVS
 * did with it (hooks, lookups, the scheduler's choice, state changes, rewrites, the verdict) and
 * the frames it would send; `--write OUT.pcap` saves those frames. An offline way to see what IPVS
 * would do with real traffic. The clock follows the capture's timestamps, so timeouts and expiry
 * behave as they would have. See docs/trace.md.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { AF_INET6, parseIp } from '../core/addr.js';
import { Ipvs } from '../core/ipvs.js';
import { applyRules, stripComments } from '../config/rules.js';
import { localBackend } from '../ctl/controller.js';
import { PcapIO } from '../dataplane/io/pcap.js';
import { parseFwmarkRules } from '../dataplane/packet/classifier.js';
import { PacketEngine } from '../dataplane/packet/engine.js';
import { NF_NAMES } from '../dataplane/packet/hooks.js';
import { parseMac } from '../dataplane/packet/net.js';
import { TraceRecorder, describeFrame } from '../dataplane/packet/trace.js';
import { LINKTYPE } from '../packet/constants.js';
import { PacketView, decodeEthernet } from '../packet/index.js';
import { readPcap } from '../packet/pcap.js';

/** Where the command writes. */
export interface TraceIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const USAGE = `Usage: ipvs trace --rules FILE --pcap IN.pcap [options]

Replays IN.pcap through a director configured from FILE (ipvsadm-save format) and prints the
trace of every frame and the frames the director would send.

Options:
  --rules FILE        services and real servers (ipvsadm-save / ipvsadm -R format)
  --pcap FILE         the capture to replay (Ethernet link type)
  --write FILE        write the frames the director would send to this pcap file
  --mac MAC           the director's MAC (default: the destination MAC of the first frame sent
                      to a virtual address)
  --addr CIDR         an address of the director's interface (repeatable; default: none)
  --mtu N             the interface MTU (default 1500)
  --route 'DST [via GW] [mtu N]'
                      a route (repeatable; default: everything on link)
  --neigh IP=MAC      a known neighbour (repeatable; others are learned from the capture)
  --sysctl NAME=VALUE set an IPVS sysctl (repeatable)
  --marks FILE        fwmark classifier rules ("proto tcp dst 10.0.0.0/24 dport 80 mark 1")
  --quiet             print only the summary
`;

interface Opts {
  rules?: string;
  pcap?: string;
  write?: string;
  mac?: string;
  addrs: string[];
  mtu: number;
  routes: string[];
  neigh: string[];
  sysctl: string[];
  marks?: string;
  quiet: boolean;
}

function parseArgs(argv: readonly string[]): Opts | string {
  const o: Opts = { addrs: [], mtu: 1500, routes: [], neigh: [], sysctl: [], quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    try {
      switch (a) {
        case '--rules':
          o.rules = val();
          break;
        case '--pcap':
          o.pcap = val();
          break;
        case '--write':
          o.write = val();
          break;
        case '--mac':
        case '--vip-mac':
          o.mac = val();
          break;
        case '--addr':
          o.addrs.push(val());
          break;
        case '--mtu':
          o.mtu = Number(val());
          break;
        case '--route':
          o.routes.push(val());
          break;
        case '--neigh':
          o.neigh.push(val());
          break;
        case '--sysctl':
          o.sysctl.push(val());
          break;
        case '--marks':
          o.marks = val();
          break;
        case '--quiet':
          o.quiet = true;
          break;
        case '--help':
        case '-h':
          return 'help';
        default:
          return `unknown option '${a}'`;
      }
    } catch (e) {
      return (e as Error).message;
    }
  }
  if (!o.rules || !o.pcap) return '--rules and --pcap are required';
  return o;
}

/** Runs `ipvs trace`; resolves with the exit status (0 ok, 1 runtime error, 2 usage). */
export async function runTrace(argv: readonly string[], io: TraceIo): Promise<number> {
  const parsed = parseArgs(argv);
  if (parsed === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (typeof parsed === 'string') {
    io.stderr.write(`ipvs trace: ${parsed}\n\n${USAGE}`);
    return 2;
  }
  const o = parsed;
  try {
    return await trace(o, io);
  } catch (e) {
    io.stderr.write(`ipvs trace: ${(e as Error).message}\n`);
    return 1;
  }
}

async function trace(o: Opts, io: TraceIo): Promise<number> {
  const file = readPcap(readFileSync(o.pcap!));
  if (!file.ok) throw new Error(`${o.pcap}: ${file.reason}`);
  if (file.file.linkType !== LINKTYPE.ETHERNET)
    throw new Error(`${o.pcap}: only Ethernet captures are supported`);
  const records = file.file.records;
  let clock = records.length ? records[0]!.timestampUs / 1000 : 0;
  const ipvs = new Ipvs({
    now: () => clock,
    randomU32: seeded(1),
    log: (m) => io.stderr.write(`ipvs: ${m}\n`),
  });
  const rulesText = readFileSync(o.rules!, 'utf8');
  const applied = await applyRules(stripComments(rulesText), localBackend(ipvs));
  if (applied.output) io.stderr.write(applied.output);
  if (applied.status !== 0)
    throw new Error(`${o.rules}: rules not applied (status ${applied.status})`);
  for (const s of o.sysctl) {
    const [n, v] = s.split('=');
    ipvs.setSysctl(n!, n === 'est_cpulist' ? (v ?? '') : Number(v));
  }
  const engine = new PacketEngine(ipvs, { learnFromIp: true });
  if (o.marks) engine.classifier.set(parseFwmarkRules(readFileSync(o.marks, 'utf8')));
  engine.refresh();
  const out = new PcapIO(undefined, 'trace', { linkType: 'ethernet' });
  const mac =
    o.mac ??
    inferMac(
      records.map((r) => r.data),
      engine,
    ) ??
    '02:00:00:00:00:01';
  const ifc = engine.net.addIface({ name: 'eth0', mac, addrs: o.addrs, mtu: o.mtu, io: out });
  if (o.routes.length === 0) {
    engine.net.addRoute({ dst: '0.0.0.0/0', dev: 'eth0' });
    engine.net.addRoute({ dst: '::/0', dev: 'eth0' });
  }
  for (const r of o.routes) {
    const m = /^(\S+)(?:\s+via\s+(\S+))?(?:\s+mtu\s+(\d+))?$/.exec(r.trim());
    if (!m) throw new Error(`bad route '${r}'`);
    engine.net.addRoute({
      dst: m[1]!,
      dev: 'eth0',
      ...(m[2] ? { via: m[2] } : {}),
      ...(m[3] ? { mtu: Number(m[3]) } : {}),
    });
  }
  for (const n of o.neigh) {
    const [ip, m] = n.split('=');
    const a = ip ? parseIp(ip) : null;
    if (!a || !m) throw new Error(`bad neighbour '${n}' (IP=MAC)`);
    engine.neigh.addStatic(ifc, a.af, a.words, parseMac(m));
  }
  const w = (s: string): void => void io.stdout.write(s);
  if (!o.quiet) {
    w(
      `director eth0 ${mac} mtu ${o.mtu}; local addresses ${engine.net.localAddresses().join(' ') || '(none)'}\n`,
    );
    w(`routes: ${engine.net.describeRoutes().join('; ')}\n\n`);
  }
  const rec = new TraceRecorder();
  engine.trace = rec;
  engine.tx.onFrame = (_ifc, buf, off, len, queued) => {
    if (queued)
      rec.step('queue', `waiting for the next hop's MAC: ${describeFrame(buf, off, len)}`);
  };
  const t0 = records.length ? records[0]!.timestampUs : 0;
  let sentBefore = 0;
  const verdicts = new Map<string, number>();
  records.forEach((r, i) => {
    clock = r.timestampUs / 1000;
    ipvs.tick();
    engine.tick();
    rec.clear();
    const data = Buffer.from(r.data);
    const head = `#${i + 1} ${((r.timestampUs - t0) / 1e6).toFixed(6)} ${describeFrame(data, 0, data.length)}\n`;
    const verdict = engine.input(ifc, data, 0, data.length);
    engine.tx.commit();
    // the frames a packet caused carry its capture time (frames released from a neighbour
    // queue carry the time of the frame that released them)
    for (let k = sentBefore; k < out.sent.length; k++) out.sent[k]!.timestampUs = r.timestampUs;
    const name = NF_NAMES[verdict] ?? String(verdict);
    verdicts.set(name, (verdicts.get(name) ?? 0) + 1);
    if (o.quiet) {
      sentBefore = out.sent.length;
      return;
    }
    w(head);
    for (const l of rec.lines()) w(`${l}\n`);
    for (let k = sentBefore; k < out.sent.length; k++) {
      const f = out.sent[k]!.data;
      w(`    send     ${describeFrame(f, 0, f.length)}\n`);
    }
    sentBefore = out.sent.length;
    w('\n');
  });
  engine.trace = null;
  w(
    `${records.length} frames in, ${out.sent.length} frames out; verdicts ${[...verdicts].map(([k, v]) => `${k} ${v}`).join(', ')}\n`,
  );
  const c = engine.counters.snapshot();
  w(
    `counters: ${Object.entries(c)
      .filter(([, v]) => v)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}\n`,
  );
  const conns = ipvs.listConns();
  if (conns.length) {
    w('connections:\n');
    for (const x of conns) {
      const a = (af: number, s: string, p: number): string =>
        af === AF_INET6 ? `[${s}]:${p}` : `${s}:${p}`;
      w(
        `  ${x.protocol === 6 ? 'TCP' : x.protocol === 17 ? 'UDP' : x.protocol === 132 ? 'SCTP' : 'IP '} ${a(x.af, x.caddr, x.cport)} ${a(x.af, x.vaddr, x.vport)} ${a(x.daf, x.daddr, x.dport)} ${x.stateName} ${Math.round(x.expiresMs / 1000)}s\n`,
      );
    }
  }
  if (o.write) {
    await writeFile(o.write, out.toPcap());
    w(`wrote ${out.sent.length} frames to ${o.write}\n`);
  }
  engine.close();
  ipvs.close();
  return 0;
}

/** The destination MAC of the first frame addressed to a virtual address the rules define. */
function inferMac(frames: Uint8Array[], engine: PacketEngine): string | undefined {
  const v = new PacketView();
  for (const f of frames) {
    if (decodeEthernet(v, f, 0, f.length) !== 0 || v.ipVersion === 0) continue;
    if (engine.net.isLocal(v.af, v.dst, 0)) {
      return Array.from(f.subarray(0, 6), (x) => x.toString(16).padStart(2, '0')).join(':');
    }
  }
  return undefined;
}

function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}
