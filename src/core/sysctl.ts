/**
 * The IPVS sysctls (spec §11): every knob with its default and the range the kernel accepts.
 * Values are plain numbers (seconds for the expiration knobs); `sync_threshold` is a pair.
 */
import { MAX_TIMEOUT_SEC } from './constants.js';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { NoSysctlError, RangeError_, SysctlError } from './errors.js';

/** Every sysctl and its current value. */
export interface Sysctls {
  am_droprate: number;
  amemthresh: number;
  backup_only: number;
  cache_bypass: number;
  conn_reuse_mode: number;
  conntrack: number;
  debug_level: number;
  drop_entry: number;
  drop_packet: number;
  /** CPUs the estimator may run on, as a cpulist (`0-3,6`); empty stops estimation. */
  est_cpulist: string;
  est_nice: number;
  expire_nodest_conn: number;
  expire_quiescent_template: number;
  ignore_tunneled: number;
  lblc_expiration: number;
  lblcr_expiration: number;
  nat_icmp_send: number;
  pmtu_disc: number;
  run_estimation: number;
  schedule_icmp: number;
  secure_tcp: number;
  sloppy_sctp: number;
  sloppy_tcp: number;
  snat_reroute: number;
  sync_persist_mode: number;
  sync_ports: number;
  sync_qlen_max: number;
  sync_refresh_period: number;
  sync_retries: number;
  sync_sock_size: number;
  sync_threshold: [number, number];
  sync_version: number;
}

/** A sysctl value: a number, the `sync_threshold` pair or the `est_cpulist` text. */
export type SysctlValue = number | [number, number] | string;

/** The number of CPUs of this machine (the default of `Ipvs`'s `cpus` option). */
export function hostCpus(): number {
  return Math.max(1, availableParallelism());
}

let freeBufferPagesCache = -1;

/**
 * nr_free_buffer_pages(): the pages of the zones up to Normal above their high watermark, from
 * /proc/zoneinfo (read once); 2,097,152 (64 Ki × 32) where that is not readable.
 */
export function freeBufferPages(): number {
  if (freeBufferPagesCache >= 0) return freeBufferPagesCache;
  let sum = 0;
  try {
    const text = readFileSync('/proc/zoneinfo', 'utf8');
    for (const zone of text.split(/^Node \d+, zone\s+/m).slice(1)) {
      const name = /^(\S+)/.exec(zone)?.[1];
      if (name !== 'DMA' && name !== 'DMA32' && name !== 'Normal') continue;
      const managed = Number(/^\s+managed\s+(\d+)/m.exec(zone)?.[1] ?? 0);
      const high = Number(/^\s+high\s+(\d+)/m.exec(zone)?.[1] ?? 0);
      if (managed > high) sum += managed - high;
    }
  } catch {
    sum = 0;
  }
  freeBufferPagesCache = sum > 0 ? sum : 32 << 16;
  return freeBufferPagesCache;
}

/** Default values (spec §11); `est_cpulist` lists all `cpus` CPUs (the housekeeping set). */
export function defaultSysctls(cpus = hostCpus()): Sysctls {
  return {
    am_droprate: 10,
    amemthresh: 1024,
    backup_only: 0,
    cache_bypass: 0,
    conn_reuse_mode: 1,
    conntrack: 0,
    debug_level: 0,
    drop_entry: 0,
    drop_packet: 0,
    est_cpulist: cpus > 1 ? `0-${cpus - 1}` : '0',
    est_nice: 0,
    expire_nodest_conn: 0,
    expire_quiescent_template: 0,
    ignore_tunneled: 0,
    lblc_expiration: 86400,
    lblcr_expiration: 86400,
    nat_icmp_send: 0,
    pmtu_disc: 1,
    run_estimation: 1,
    schedule_icmp: 0,
    secure_tcp: 0,
    sloppy_sctp: 0,
    sloppy_tcp: 0,
    snat_reroute: 1,
    sync_persist_mode: 0,
    sync_ports: 1,
    // ip_vs_control_net_init_sysctl: nr_free_buffer_pages() / 32
    sync_qlen_max: Math.floor(freeBufferPages() / 32),
    sync_refresh_period: 0,
    sync_retries: 0,
    sync_sock_size: 0,
    sync_threshold: [3, 50],
    sync_version: 1,
  };
}

export const INT_MAX = 0x7fffffff;
const INT_MIN = -INT_MAX - 1;
/** proc_dointvec: any C int. */
const INT: [number, number] = [INT_MIN, INT_MAX];
/** proc_dointvec_jiffies: seconds, either sign, |v| ≤ INT_MAX / HZ (HZ = 1000 here). */
const JIFFIES: [number, number] = [-MAX_TIMEOUT_SEC, MAX_TIMEOUT_SEC];
/**
 * Accepted range per scalar sysctl, [min, max], as the kernel's handlers check them
 * (`vs_vars` in ip_vs_ctl.c). Most knobs are plain `proc_dointvec` and take any int: the kernel
 * tests them for non-zero, so 2 is as good as 1. Only the defence modes (0..3), `est_nice`
 * (−20..19), `sync_retries` (0..3), `sync_version` (0..1) and `sync_ports` (a power of two ≥ 1,
 * no upper bound: the daemon clamps it to 64 when it starts) have ranges; `sync_qlen_max` is an
 * unsigned long.
 */
const RANGES: Record<Exclude<keyof Sysctls, 'sync_threshold' | 'est_cpulist'>, [number, number]> = {
  am_droprate: INT,
  amemthresh: INT,
  backup_only: INT,
  cache_bypass: INT,
  conn_reuse_mode: INT,
  conntrack: INT,
  debug_level: INT,
  drop_entry: [0, 3],
  drop_packet: [0, 3],
  est_nice: [-20, 19],
  expire_nodest_conn: INT,
  expire_quiescent_template: INT,
  ignore_tunneled: INT,
  lblc_expiration: JIFFIES,
  lblcr_expiration: JIFFIES,
  nat_icmp_send: INT,
  pmtu_disc: INT,
  run_estimation: INT,
  schedule_icmp: INT,
  secure_tcp: [0, 3],
  sloppy_sctp: INT,
  sloppy_tcp: INT,
  snat_reroute: INT,
  sync_persist_mode: INT,
  sync_ports: [1, INT_MAX],
  sync_qlen_max: [0, Number.MAX_SAFE_INTEGER],
  sync_refresh_period: JIFFIES,
  sync_retries: [0, 3],
  sync_sock_size: INT,
  sync_version: [0, 1],
};

/** The names of every sysctl. */
export const SYSCTL_NAMES = Object.keys(defaultSysctls()) as (keyof Sysctls)[];

/**
 * Validates a new value for `name` and returns it normalised; throws a coded error and changes
 * nothing when the value is out of range (spec §11). `cpus` is the machine's CPU count, for
 * `est_cpulist`.
 */
export function validateSysctl(name: string, value: unknown, cpus = hostCpus()): SysctlValue {
  if (!(SYSCTL_NAMES as string[]).includes(name))
    throw new NoSysctlError(`no sysctl named ${name}`);
  if (name === 'est_cpulist') return formatCpuList(parseCpuList(value, cpus));
  if (name === 'sync_threshold') {
    const v = value as unknown[];
    if (
      !Array.isArray(v) ||
      v.length !== 2 ||
      !v.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= INT_MAX)
    ) {
      throw new SysctlError('sync_threshold takes two non-negative integers');
    }
    const [t, p] = v as [number, number];
    if (p !== 0 && t >= p) throw new SysctlError('sync_threshold: threshold must be below period');
    return [t, p];
  }
  const [min, max] = RANGES[name as Exclude<keyof Sysctls, 'sync_threshold' | 'est_cpulist'>];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SysctlError(`${name} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  if (name === 'sync_ports' && (value & (value - 1)) !== 0) {
    throw new SysctlError('sync_ports must be a power of two');
  }
  return value;
}

/**
 * The integers a write of `text` gives, as the kernel's proc_dointvec reads them (proc_get_long):
 * up to `slots` of them, whitespace-separated, each an optional `-` and digits in the base its
 * prefix names (`0x` hex, `0` octal, else decimal: strtoul base 0) ending at a blank, within int
 * range; what follows the last slot is not read (the rest of the write is ignored). Null when a
 * value is malformed or there is none.
 */
export function kernelInts(text: string, slots: number): number[] | null {
  const toks = text.trim().split(/[ \t\n]+/);
  if (toks[0] === '') return null;
  const out: number[] = [];
  for (const tok of toks.slice(0, slots)) {
    const v = kernelLong(tok);
    if (v === null || v > INT_MAX || v < INT_MIN) return null;
    out.push(v);
  }
  return out;
}

/** ULONG_MAX of a 64-bit kernel. */
const ULONG_MAX = 2n ** 64n - 1n;

/**
 * One integer token as proc_get_long reads it: an optional `-`, then digits in the base their
 * prefix names (strtoul base 0), within unsigned long; a token of 21 characters or more is EINVAL
 * (the kernel copies at most 21 and refuses a number that fills them). Null when malformed.
 */
function kernelLong(tok: string): number | null {
  const m = /^(-?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))$/.exec(tok);
  if (!m || tok.length >= 21) return null;
  const mag = BigInt(
    m[2] !== undefined ? `0x${m[2]}` : m[3] !== undefined ? `0o${m[3].slice(1) || '0'}` : m[4]!,
  );
  if (mag > ULONG_MAX) return null;
  // beyond 2^53 the value no longer matters to any bound it is compared with
  const n = mag > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(mag);
  return m[1] ? -n : n;
}

/**
 * The value a write of `text` to entry `name` gives, as the entry's kernel handler reads it:
 * est_cpulist as text (parseCpuList checks it), sync_qlen_max an unsigned long, sync_threshold
 * one or two ints (one: `[threshold]`, the caller keeps the current period), the rest one int.
 * Null when the kernel would answer EINVAL.
 */
export function kernelValue(name: string, text: string): SysctlValue | [number] | null {
  if (name === 'est_cpulist') return text.trim();
  if (name === 'sync_qlen_max') return kernelULong(text);
  if (name !== 'sync_threshold') return kernelInts(text, 1)?.[0] ?? null;
  const n = kernelInts(text, 2);
  return n === null ? null : n.length === 1 ? [n[0]!] : [n[0]!, n[1]!];
}

/**
 * The value of a write to an unsigned long entry (proc_doulongvec_minmax: sync_qlen_max): the
 * first token, not negative, up to ULONG_MAX. Values above 2^53 - 1 are kept as 2^53 - 1 (a queue
 * bound no queue reaches either way). Null when malformed.
 */
export function kernelULong(text: string): number | null {
  const tok = text.trim().split(/[ \t\n]+/)[0]!;
  if (tok === '' || tok.startsWith('-')) return null;
  return kernelLong(tok);
}

/**
 * Parses a cpulist as the kernel's bitmap_parselist does: regions separated by commas and / or
 * whitespace (empty ones skipped), each `n`, `a-b`, `a-b:used/group`, `all` or `all:used/group`
 * (`all` in any case), with `N` for the last CPU; blank means none. A malformed list is EINVAL,
 * a CPU number ≥ `cpus` ERANGE. Returns the set CPUs in ascending order.
 */
export function parseCpuList(value: unknown, cpus: number): number[] {
  if (typeof value !== 'string') throw new SysctlError('est_cpulist takes a cpulist string');
  const set = new Uint8Array(cpus);
  const s = value;
  const last = cpus - 1;
  const bad = (): never => {
    throw new SysctlError(`est_cpulist: '${value}' is not a cpulist`);
  };
  const endOfStr = (i: number): boolean => i >= s.length || s[i] === '\n';
  const endOfRegion = (i: number): boolean => endOfStr(i) || /[\s,]/.test(s[i]!);
  let i = 0;
  // bitmap_getnum: `N`, or decimal digits
  const num = (): number => {
    if (s[i] === 'N') {
      i++;
      return last;
    }
    const m = /^[0-9]+/.exec(s.slice(i));
    if (!m) return bad();
    i += m[0].length;
    const n = Number(m[0]);
    if (n > 0xffffffff) throw new SysctlError(`est_cpulist: ${m[0]} is too large`);
    return n;
  };
  for (;;) {
    while (!endOfStr(i) && /[\s,]/.test(s[i]!)) i++;
    if (endOfStr(i)) break;
    let start: number;
    let end: number;
    if (s.slice(i, i + 3).toLowerCase() === 'all') {
      i += 3;
      start = 0;
      end = last;
    } else {
      start = end = num();
      if (!endOfRegion(i)) {
        if (s[i] !== '-') bad();
        i++;
        end = num();
      }
    }
    let used = end + 1;
    let group = end + 1;
    if (!endOfRegion(i)) {
      if (s[i] !== ':') bad();
      i++;
      used = num();
      if (s[i] !== '/') bad();
      i++;
      group = num();
    }
    if (start > end || group === 0 || used > group) bad();
    if (end >= cpus)
      throw new RangeError_(`est_cpulist: CPU ${end} is beyond the last CPU ${last}`);
    for (let c = start; c <= end; c++) if ((c - start) % group < used) set[c] = 1;
  }
  const out: number[] = [];
  for (let c = 0; c < cpus; c++) if (set[c]) out.push(c);
  return out;
}

/** Prints CPUs as the kernel's `%*pbl` does: `0-3,5,7-8`; empty for none. */
export function formatCpuList(list: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < list.length;) {
    let j = i;
    while (j + 1 < list.length && list[j + 1] === list[j]! + 1) j++;
    parts.push(i === j ? String(list[i]) : `${list[i]}-${list[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
