/**
 * `ipvs trace --rules FILE --pcap IN.pcap [options]`: replays a capture through a director
 * configured from an ipvsadm-save rules file and prints, for every frame, the trace of what IPVS
 * did with it (hooks, lookups, the scheduler's choice, state changes, rewrites, the verdict) and
 * the frames it would send; `--write OUT.pcap` (or `--out`) saves those frames. An offline way to
 * see what IPVS would do with real traffic. The clock follows the capture's timestamps, so timeouts
 * and expiry behave as they would have (expiries show in the trace of the frame that follows them).
 * Captures may be pcap or pcapng, Ethernet, raw IP or Linux cooked (`tcpdump -i any`). Every
 * failure is a coded error (docs/errors.md) on stderr. See docs/trace.md.
 */
import * as diagnostics from 'node:diagnostics_channel';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { AF_INET6, parseIp } from '../core/addr.js';
import { IpvsError, SysctlError } from '../core/errors.js';
import { Ipvs } from '../core/ipvs.js';
import { SYSCTL_NAMES, type SysctlValue, kernelValue } from '../core/sysctl.js';
import { applyRules, stripComments } from '../config/rules.js';
import { localBackend } from '../ctl/controller.js';
import { StateFileError } from '../ctl/errors.js';
import { IoPcapError } from '../dataplane/io/errors.js';
import { PcapIO } from '../dataplane/io/pcap.js';
import { parseFwmarkRules } from '../dataplane/packet/classifier.js';
import { PacketEngine } from '../dataplane/packet/engine.js';
import { PktConfigError } from '../dataplane/packet/errors.js';
import { NF_NAMES } from '../dataplane/packet/hooks.js';
import { parseMac } from '../dataplane/packet/net.js';
import {
  TraceRecorder,
  describeConn,
  describeFrame,
  toEthernet,
  TRACE_LINKTYPES,
} from '../dataplane/packet/trace.js';
import { IPPROTO, LINKTYPE } from '../packet/constants.js';
import { PacketView, decodeEthernet, l4ChecksumOk } from '../packet/index.js';
import { readPcap } from '../packet/pcap.js';

/** Gaps between frames are ticked through second by second for up to this many seconds. */
const GAP_STEPS = 60;

/** Where the command writes. */
export interface TraceIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const USAGE = `Usage: ipvs trace --rules FILE --pcap IN.pcap [options]

Replays IN.pcap through a director configured from FILE (ipvsadm-save format) and prints the
trace of every frame and the frames the director would send. The capture's timestamps drive
the clock: connections idle longer than their timeout expire between frames.

Options:
  --rules FILE        services and real servers (ipvsadm-save / ipvsadm -R format)
  --pcap FILE         the capture to replay: pcap or pcapng; Ethernet, raw IP or Linux
                      cooked (tcpdump -i any) link type
  --write FILE        write the frames the director would send to this pcap file (Ethernet);
                      alias --out
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

Exit status: 0 when every frame was traced; 1 when an input cannot be read or is refused
(a coded error on stderr: IPVS_ERR_IO_PCAP for the capture or the output file,
IPVS_ERR_STATE_FILE for rules, IPVS_ERR_PKT_* for the director options; a capture cut
short is traced up to the cut, then reported); 2 for bad usage.
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
        case '--out':
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
    if (e instanceof IpvsError) io.stderr.write(`ipvs trace: ${e.code}: ${e.message}\n`);
    else io.stderr.write(`ipvs trace: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

/** Reads a file the command needs; a failure is `wrap(why)` (a coded error). */
function readInput(path: string, wrap: (why: string) => Error): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT'
        ? 'no such file'
        : err.code === 'EISDIR'
          ? 'is a directory'
          : err.code === 'EACCES'
            ? 'permission denied'
            : err.message;
    throw wrap(why);
  }
}

async function trace(o: Opts, io: TraceIo): Promise<number> {
  const capture = readInput(o.pcap!, (why) => new IoPcapError(o.pcap!, `cannot read: ${why}`));
  const file = readPcap(capture, TRACE_LINKTYPES);
  if (!file.ok) {
    const hint = file.reason.startsWith('unsupported link type')
      ? ` (supported: Ethernet 1, raw IP 101/228/229, Linux cooked 113/276)`
      : '';
    throw new IoPcapError(o.pcap!, `${file.reason}${hint}`);
  }
  const linkType = file.file.linkType;
  // An output that cannot be written is refused before the replay, not after it.
  if (o.write) {
    try {
      closeSync(openSync(o.write, 'w'));
    } catch (e) {
      throw new IoPcapError(o.write, `cannot write: ${(e as Error).message}`);
    }
  }
  const records = file.file.records;
  let clock = records.length ? records[0]!.timestampUs / 1000 : 0;
  const ipvs = new Ipvs({
    now: () => clock,
    randomU32: seeded(1),
    log: (m) => io.stderr.write(`ipvs: ${m}\n`),
  });
  const rulesText = readInput(
    o.rules!,
    (why) => new StateFileError(`cannot read rules file ${o.rules}: ${why}`),
  ).toString('utf8');
  const applied = await applyRules(stripComments(rulesText), localBackend(ipvs));
  if (applied.output) io.stderr.write(applied.output);
  if (applied.status !== 0) {
    ipvs.close();
    throw new StateFileError(
      `rules file ${o.rules} failed (ipvsadm -R status ${applied.status}; its message is above)`,
    );
  }
  for (const s of o.sysctl) {
    const eq = s.indexOf('=');
    if (eq <= 0) {
      ipvs.close();
      throw new PktConfigError(`--sysctl '${s}': expected NAME=VALUE`);
    }
    const n = s.slice(0, eq);
    const v = s.slice(eq + 1);
    // the integers as the kernel reads them; sync_threshold given one keeps its period
    const value = kernelValue(n, v);
    if (value === null) {
      ipvs.close();
      // an unknown name is IPVS_ERR_NO_SYSCTL before its value is looked at
      if (!(SYSCTL_NAMES as string[]).includes(n)) ipvs.setSysctl(n, 0);
      throw new SysctlError(
        `--sysctl ${n}=${v}: not an integer as the kernel reads one (decimal, 0x hex, 0 octal)`,
      );
    }
    ipvs.setSysctl(
      n,
      Array.isArray(value) && value.length === 1
        ? [value[0], ipvs.sysctl.sync_threshold[1]]
        : (value as SysctlValue),
    );
  }
  const engine = new PacketEngine(ipvs, { learnFromIp: true });
  if (o.marks)
    engine.classifier.set(
      parseFwmarkRules(
        readInput(
          o.marks,
          (why) => new StateFileError(`cannot read marks file ${o.marks}: ${why}`),
        ).toString('utf8'),
      ),
    );
  engine.refresh();
  const out = new PcapIO(undefined, 'trace', { linkType: 'ethernet' });
  const ethernet = linkType === LINKTYPE.ETHERNET;
  const mac =
    o.mac ??
    (ethernet
      ? inferMac(
          records.map((r) => r.data),
          engine,
        )
      : undefined) ??
    '02:00:00:00:00:01';
  const macBytes = parseMac(mac);
  const ifc = engine.net.addIface({ name: 'eth0', mac, addrs: o.addrs, mtu: o.mtu, io: out });
  if (o.routes.length === 0) {
    engine.net.addRoute({ dst: '0.0.0.0/0', dev: 'eth0' });
    engine.net.addRoute({ dst: '::/0', dev: 'eth0' });
  }
  for (const r of o.routes) {
    const m = /^(\S+)(?:\s+via\s+(\S+))?(?:\s+mtu\s+(\d+))?$/.exec(r.trim());
    if (!m) throw new PktConfigError(`bad route '${r}' (DST [via GW] [mtu N])`);
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
    if (!a || !m) throw new PktConfigError(`bad neighbour '${n}' (IP=MAC)`);
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
  let expired = 0;
  // Connections the timers (or the packet path) expire: the table still holds them when this runs.
  const onExpire = (m: unknown): void => {
    expired++;
    if (o.quiet) return;
    const h = (m as { handle: number }).handle;
    // the wheel still holds the due time: when it fell inside a gap ticked at once, say that time
    const due = ipvs.wheel.expires(h);
    const at = due > 0 && due < clock ? due : clock;
    rec.step('expire', `+${((at * 1000 - t0) / 1e6).toFixed(3)} s ${describeConn(ipvs, h)}`);
  };
  const chExpire = diagnostics.channel('ipvs:conn:expire');
  chExpire.subscribe(onExpire);
  try {
    records.forEach((r, i) => {
      rec.clear();
      // Time passes as the capture says: second by second over the first minute of a gap (so
      // neighbour probes run and give up as they would), then at once to the frame's time.
      const target = r.timestampUs / 1000;
      const tick = (): void => {
        ipvs.tick();
        engine.tick();
        // frames the timers sent (neighbour probes) before this frame arrived, at their time
        for (let k = sentBefore; k < out.sent.length; k++) {
          const f = out.sent[k]!;
          f.timestampUs = Math.round(clock * 1000);
          if (!o.quiet)
            rec.step(
              'timer',
              `+${((clock * 1000 - t0) / 1e6).toFixed(3)} s send ${describeFrame(f.data, 0, f.data.length)}`,
            );
        }
        sentBefore = out.sent.length;
      };
      for (let k = 0; k < GAP_STEPS && clock + 1000 < target; k++) {
        clock += 1000;
        tick();
      }
      clock = Math.max(clock, target);
      tick();
      const data = ethernet ? Buffer.from(r.data) : toEthernet(linkType, r.data, macBytes);
      const head = `#${i + 1} ${((r.timestampUs - t0) / 1e6).toFixed(6)} ${describeFrame(data, 0, data.length)}${r.origLength > r.data.length ? ` (captured ${r.data.length} of ${r.origLength} bytes)` : ''}\n`;
      if (!o.quiet) noteChecksum(rec, data);
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
  } finally {
    chExpire.unsubscribe(onExpire);
  }
  engine.trace = null;
  w(
    `${records.length} frames in, ${out.sent.length} frames out; verdicts ${[...verdicts].map(([k, v]) => `${k} ${v}`).join(', ')}; ${expired} connections expired\n`,
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
  engine.close();
  ipvs.close();
  if (o.write) {
    try {
      await writeFile(o.write, out.toPcap());
    } catch (e) {
      throw new IoPcapError(o.write, `cannot write: ${(e as Error).message}`);
    }
    w(`wrote ${out.sent.length} frames to ${o.write}\n`);
  }
  if (file.file.truncated) {
    throw new IoPcapError(
      o.pcap!,
      `capture cut short: ${file.file.truncated}; the ${records.length} frame${records.length === 1 ? '' : 's'} before it were traced`,
    );
  }
  return 0;
}

const csumView = new PacketView();

/**
 * Notes a captured TCP/UDP frame whose checksum is wrong: most often the capturing host's own
 * outgoing traffic, whose checksum the NIC (or veth) fills in later (checksum offload). IPVS
 * rewrites such packets incrementally, so what it sends is wrong by the same amount.
 */
function noteChecksum(rec: TraceRecorder, f: Uint8Array): void {
  const v = csumView;
  if (decodeEthernet(v, f, 0, f.length) !== 0 || !v.l4Parsed || v.isFragment) return;
  if (v.protocol !== IPPROTO.TCP && v.protocol !== IPPROTO.UDP) return;
  if (v.protocol === IPPROTO.UDP && v.l4Checksum === 0 && v.af !== AF_INET6) return;
  if (l4ChecksumOk(v.af, v.src, v.dst, v.protocol, f, v.l4Offset, v.ipEnd - v.l4Offset)) return;
  rec.step(
    'note',
    `${v.protocol === IPPROTO.TCP ? 'TCP' : 'UDP'} checksum of the captured frame is wrong ` +
      '(checksum offload on the capturing host?); rewrites keep it wrong, as IPVS does',
  );
}

/** The destination MAC of the first frame addressed to a virtual address the rules define. */
function inferMac(frames: Uint8Array[], engine: PacketEngine): string | undefined {
  const v = new PacketView();
  for (const f of frames) {
    // a broadcast or multicast destination (the group bit) names no host
    if (decodeEthernet(v, f, 0, f.length) !== 0 || v.ipVersion === 0 || f[0]! & 1) continue;
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
