/**
 * The fwmark classifier: packets get a mark from an ordered list of rules matching addresses,
 * ports and protocol, standing in for the firewall marks (iptables `-j MARK --set-mark`) the
 * kernel's fwmark services see. The first matching rule wins; no match is mark 0. Rules are
 * compiled into typed arrays so `match` allocates nothing.
 *
 * Text form (one rule per line, `#` comments), keys in any order, all optional but `mark`:
 *   `proto tcp src 10.0.0.0/8 dst 192.168.10.0/24 sport 1024-65535 dport 80,443 mark 1`
 * `dport` / `sport` take a port, a range `lo-hi` or `lo:hi`, or a comma list of those.
 */
import { AF_INET, AF_INET6 } from '../../core/addr.js';
import { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../core/constants.js';
import { PktRuleError } from './errors.js';
import { parseCidr } from './net.js';

/** A classifier rule, as configured. */
export interface FwmarkRule {
  /** Source prefix ("10.0.0.0/8"); absent matches any. */
  src?: string;
  /** Destination prefix. */
  dst?: string;
  /** 'tcp', 'udp', 'sctp' or a protocol number; absent matches any. */
  proto?: string | number;
  /** Source ports: "80", "1024-65535", "80,443". */
  sport?: string | number;
  /** Destination ports. */
  dport?: string | number;
  /** The mark (1..0xffffffff). */
  mark: number;
}

/** Most rules a classifier holds. */
export const MAX_RULES = 4096;
/** Most port ranges one rule lists. */
const MAX_RANGES = 8;

function parseProto(p: string | number | undefined): number {
  if (p === undefined) return 0;
  if (typeof p === 'number') {
    if (!Number.isInteger(p) || p < 1 || p > 255) throw new PktRuleError(`bad protocol ${p}`);
    return p;
  }
  const m: Record<string, number> = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, sctp: IPPROTO_SCTP };
  const n = m[p.toLowerCase()] ?? (/^\d+$/.test(p) ? Number(p) : NaN);
  if (!Number.isInteger(n) || n < 1 || n > 255) throw new PktRuleError(`bad protocol '${p}'`);
  return n;
}

function parsePorts(p: string | number | undefined, what: string): [number, number][] {
  if (p === undefined) return [];
  const out: [number, number][] = [];
  for (const part of String(p).split(',')) {
    const m = /^(\d+)(?:[-:](\d+))?$/.exec(part.trim());
    if (!m) throw new PktRuleError(`bad ${what} '${p}'`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo > 65535 || hi > 65535 || lo > hi) throw new PktRuleError(`bad ${what} range '${part}'`);
    out.push([lo, hi]);
  }
  if (out.length > MAX_RANGES) throw new PktRuleError(`more than ${MAX_RANGES} ${what} ranges`);
  return out;
}

/** Parses one text rule (see the module comment). */
export function parseFwmarkRule(line: string): FwmarkRule {
  const t = line.trim().split(/\s+/);
  if (t.length % 2 !== 0) throw new PktRuleError(`'${line}': keys and values must pair up`);
  const r: Partial<FwmarkRule> = {};
  for (let i = 0; i < t.length; i += 2) {
    const k = t[i]!;
    const v = t[i + 1]!;
    switch (k) {
      case 'src':
      case 'dst':
      case 'sport':
      case 'dport':
        r[k] = v;
        break;
      case 'proto':
        r.proto = v;
        break;
      case 'mark':
        r.mark = Number(v);
        break;
      default:
        throw new PktRuleError(`'${line}': unknown key '${k}'`);
    }
  }
  if (r.mark === undefined) throw new PktRuleError(`'${line}': no mark`);
  return r as FwmarkRule;
}

/** Parses a rules text (one rule per line, `#` comments, blank lines ignored). */
export function parseFwmarkRules(text: string): FwmarkRule[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map(parseFwmarkRule);
}

/** Checks one rule and resolves its addresses, protocol and ports; throws PktRuleError. */
function compileRule(r: FwmarkRule, i: number) {
  if (!Number.isInteger(r.mark) || r.mark < 1 || r.mark > 0xffffffff)
    throw new PktRuleError(`rule ${i + 1}: mark must be 1..4294967295, got ${String(r.mark)}`);
  const src = r.src !== undefined ? ruleCidr(r.src, i, 'src') : null;
  const dst = r.dst !== undefined ? ruleCidr(r.dst, i, 'dst') : null;
  if (src && dst && src.af !== dst.af)
    throw new PktRuleError(`rule ${i + 1}: source and destination families differ`);
  return {
    af: src?.af ?? dst?.af ?? 0,
    src,
    dst,
    proto: parseProto(r.proto),
    sp: parsePorts(r.sport, 'sport'),
    dp: parsePorts(r.dport, 'dport'),
    mark: r.mark >>> 0,
  };
}

/** A rule's address or prefix; a bad one is the rule's error (PktRuleError), not the config's. */
function ruleCidr(text: string, i: number, key: string): ReturnType<typeof parseCidr> {
  try {
    return parseCidr(text);
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^packet engine: /, '') : String(e);
    throw new PktRuleError(`rule ${i + 1}: ${key}: ${why}`);
  }
}

/** Parses and checks text rules completely, as `Classifier.set` would; throws PktRuleError. */
export function checkFwmarkRules(lines: readonly string[]): FwmarkRule[] {
  if (lines.length > MAX_RULES) throw new PktRuleError(`more than ${MAX_RULES} rules`);
  return lines.map((l, i) => {
    const r = parseFwmarkRule(l);
    compileRule(r, i);
    return r;
  });
}

/** Ordered fwmark rules, compiled. */
export class Classifier {
  #rules: FwmarkRule[] = [];
  #n = 0;
  readonly #af = new Uint8Array(MAX_RULES);
  readonly #proto = new Uint8Array(MAX_RULES);
  readonly #addr = new Uint32Array(MAX_RULES * 16); // src net, src mask, dst net, dst mask
  readonly #ports = new Uint16Array(MAX_RULES * MAX_RANGES * 4); // sport lo/hi, dport lo/hi
  readonly #nsp = new Uint8Array(MAX_RULES);
  readonly #ndp = new Uint8Array(MAX_RULES);
  readonly #mark = new Uint32Array(MAX_RULES);

  /** Number of rules. */
  get size(): number {
    return this.#n;
  }

  /** The rules as configured. */
  list(): FwmarkRule[] {
    return this.#rules.map((r) => ({ ...r }));
  }

  /** Replaces every rule (validates all first; on error nothing changes). */
  set(rules: readonly FwmarkRule[]): void {
    if (rules.length > MAX_RULES) throw new PktRuleError(`more than ${MAX_RULES} rules`);
    const compiled = rules.map((r, i) => compileRule(r, i));
    this.#ports.fill(0);
    compiled.forEach((c, i) => {
      this.#af[i] = c.af;
      this.#proto[i] = c.proto;
      const a = i * 16;
      for (const [k, x] of [
        [0, c.src],
        [8, c.dst],
      ] as const) {
        for (let j = 0; j < 4; j++) {
          const bits = x ? Math.max(0, Math.min(32, x.prefix - 32 * j)) : 0;
          const m = bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
          const mm = x && x.af === AF_INET && j > 0 ? 0 : m;
          this.#addr[a + k + 4 + j] = mm;
          this.#addr[a + k + j] = x ? (x.words[j]! & mm) >>> 0 : 0;
        }
      }
      const p = i * MAX_RANGES * 4;
      c.sp.forEach(([lo, hi], j) => {
        this.#ports[p + j * 2] = lo;
        this.#ports[p + j * 2 + 1] = hi;
      });
      c.dp.forEach(([lo, hi], j) => {
        this.#ports[p + MAX_RANGES * 2 + j * 2] = lo;
        this.#ports[p + MAX_RANGES * 2 + j * 2 + 1] = hi;
      });
      this.#nsp[i] = c.sp.length;
      this.#ndp[i] = c.dp.length;
      this.#mark[i] = c.mark;
    });
    this.#n = compiled.length;
    this.#rules = rules.map((r) => ({ ...r }));
  }

  #inRanges(p: number, base: number, n: number, port: number): boolean {
    if (n === 0) return true;
    if (port < 0) return false;
    const t = this.#ports;
    for (let j = 0; j < n; j++) {
      if (port >= t[base + j * 2]! && port <= t[base + j * 2 + 1]!) return true;
    }
    void p;
    return false;
  }

  /**
   * The mark for a packet (0 when no rule matches). Ports are -1 when the packet has none (a
   * later fragment, a protocol without ports): rules naming ports do not match it.
   */
  match(
    af: number,
    proto: number,
    src: ArrayLike<number>,
    dst: ArrayLike<number>,
    sport: number,
    dport: number,
  ): number {
    const A = this.#addr;
    const w = af === AF_INET6 ? 4 : 1;
    for (let i = 0; i < this.#n; i++) {
      const raf = this.#af[i]!;
      if (raf !== 0 && raf !== af) continue;
      const rp = this.#proto[i]!;
      if (rp !== 0 && rp !== proto) continue;
      const a = i * 16;
      let ok = true;
      for (let j = 0; j < w && ok; j++) {
        if ((src[j]! & A[a + 4 + j]!) >>> 0 !== A[a + j]) ok = false;
        else if ((dst[j]! & A[a + 12 + j]!) >>> 0 !== A[a + 8 + j]) ok = false;
      }
      if (!ok) continue;
      const p = i * MAX_RANGES * 4;
      if (!this.#inRanges(0, p, this.#nsp[i]!, sport)) continue;
      if (!this.#inRanges(0, p + MAX_RANGES * 2, this.#ndp[i]!, dport)) continue;
      return this.#mark[i]!;
    }
    return 0;
  }

  /** Rules in text form. */
  describe(): string[] {
    return this.#rules.map((r) => {
      const parts: string[] = [];
      if (r.proto !== undefined) parts.push(`proto ${r.proto}`);
      if (r.src !== undefined) parts.push(`src ${r.src}`);
      if (r.dst !== undefined) parts.push(`dst ${r.dst}`);
      if (r.sport !== undefined) parts.push(`sport ${r.sport}`);
      if (r.dport !== undefined) parts.push(`dport ${r.dport}`);
      parts.push(`mark ${r.mark}`);
      return parts.join(' ');
    });
  }
}
