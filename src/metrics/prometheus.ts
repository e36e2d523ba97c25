/**
 * Prometheus text exposition (format 0.0.4) of what `ipvsadm -L -n --stats --rate` shows: the
 * global totals, every service and every destination (backend) with their counters, estimated
 * rates, weights and connection counts, and the connection table's live size. Pure function over
 * the control API's read-outs.
 *
 * Metrics are declared once per object kind (total, service, backend) in the tables below and
 * every name is generated from them (STYLE.md, Metrics). Where node_exporter's ipvs collector has
 * a metric, the name and labels are its own with `ipvs_` for `node_ipvs_`: the totals
 * `ipvs_connections_total`, `ipvs_incoming_packets_total`, … and the backend gauges
 * `ipvs_backend_connections_active`, `ipvs_backend_connections_inactive`, `ipvs_backend_weight`
 * with the labels `local_address`, `local_port`, `local_mark`, `proto`, `remote_address`,
 * `remote_port`. ipvs-ts adds per-service and per-backend counters with a `direction` label,
 * the rates (gauges, per second, spec §6.2), `family` (inet / inet6) and `forward`.
 */
import { AF_INET6 } from '../core/addr.js';
import type { StatsSnapshot } from '../core/stats.js';
import type { DestInfo, ServiceInfo } from '../ctl/types.js';
import { procFwdName, procProtoName, type TotalsInfo } from './proc.js';

/** The Content-Type of this exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = ReadonlyArray<readonly [string, string]>;

/**
 * One metric family: name, help, type, and its samples for one object: one per entry of `extra`
 * (the sample's labels beyond the object's, as `k="v"` text, '' for none), valued `value(x, i)`.
 */
interface Family<T> {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  extra: readonly string[];
  value: (x: T, i: number) => number;
}

const ONE: readonly string[] = [''];
const DIRECTIONS: readonly string[] = ['direction="in"', 'direction="out"'];

/** The counters and rates every stats object has, named for an object kind (`service_`, `backend_`). */
function statsFamilies<T>(kind: string, what: string, stats: (x: T) => StatsSnapshot): Family<T>[] {
  const one = (
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    key: keyof StatsSnapshot,
  ) => ({
    name: `ipvs_${kind}${name}`,
    help,
    type,
    extra: ONE,
    value: (x: T) => stats(x)[key],
  });
  const dir = (
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    a: keyof StatsSnapshot,
    b: keyof StatsSnapshot,
  ) => ({
    name: `ipvs_${kind}${name}`,
    help,
    type,
    extra: DIRECTIONS,
    value: (x: T, i: number) => stats(x)[i === 0 ? a : b],
  });
  return [
    one('connections_total', 'counter', `Connections scheduled to the ${what}.`, 'conns'),
    dir(
      'packets_total',
      'counter',
      `Packets through the ${what}: in (client to server), out (server to client).`,
      'inpkts',
      'outpkts',
    ),
    dir(
      'bytes_total',
      'counter',
      `Bytes (layer-3 length) through the ${what}, by direction.`,
      'inbytes',
      'outbytes',
    ),
    one(
      'connections_per_second',
      'gauge',
      `Estimated connections per second of the ${what} (2 s samples, 8 s average).`,
      'cps',
    ),
    dir(
      'packets_per_second',
      'gauge',
      `Estimated packets per second of the ${what}, by direction.`,
      'inpps',
      'outpps',
    ),
    dir(
      'bytes_per_second',
      'gauge',
      `Estimated bytes per second of the ${what}, by direction.`,
      'inbps',
      'outbps',
    ),
  ];
}

/** The global totals, named as node_exporter names them (incoming_/outgoing_, no labels). */
const TOTALS: ReadonlyArray<readonly [string, 'counter' | 'gauge', string, keyof StatsSnapshot]> = [
  ['connections_total', 'counter', 'The total number of connections made.', 'conns'],
  ['incoming_packets_total', 'counter', 'The total number of incoming packets.', 'inpkts'],
  ['outgoing_packets_total', 'counter', 'The total number of outgoing packets.', 'outpkts'],
  ['incoming_bytes_total', 'counter', 'The total amount of incoming data.', 'inbytes'],
  ['outgoing_bytes_total', 'counter', 'The total amount of outgoing data.', 'outbytes'],
  ['connections_per_second', 'gauge', 'Estimated connections per second.', 'cps'],
  ['incoming_packets_per_second', 'gauge', 'Estimated incoming packets per second.', 'inpps'],
  ['outgoing_packets_per_second', 'gauge', 'Estimated outgoing packets per second.', 'outpps'],
  ['incoming_bytes_per_second', 'gauge', 'Estimated incoming bytes per second.', 'inbps'],
  ['outgoing_bytes_per_second', 'gauge', 'Estimated outgoing bytes per second.', 'outbps'],
];

const TOTAL_FAMILIES: Family<TotalsInfo>[] = TOTALS.map(([name, type, help, key]) => ({
  name: `ipvs_${name}`,
  help,
  type,
  extra: ONE,
  value: (t) => t.stats[key],
}));

const TABLE_FAMILIES: Family<TotalsInfo>[] = [
  {
    name: 'ipvs_connection_table_entries',
    help: 'Entries in the connection table now, persistence templates included.',
    type: 'gauge',
    extra: ONE,
    value: (t) => t.conns,
  },
];

const SERVICE_FAMILIES: Family<ServiceInfo>[] = statsFamilies(
  'service_',
  'virtual service',
  (s) => s.stats,
);

const BACKEND_FAMILIES: Family<DestInfo>[] = [
  {
    name: 'ipvs_backend_connections_active',
    help: 'The current active connections by local and remote address.',
    type: 'gauge',
    extra: ONE,
    value: (d) => d.activeConns,
  },
  {
    name: 'ipvs_backend_connections_inactive',
    help: 'The current inactive connections by local and remote address.',
    type: 'gauge',
    extra: ONE,
    value: (d) => d.inactConns,
  },
  {
    name: 'ipvs_backend_connections_persistent',
    help: 'The current persistence templates pointing at the backend.',
    type: 'gauge',
    extra: ONE,
    value: (d) => d.persistConns,
  },
  {
    name: 'ipvs_backend_weight',
    help: 'The current backend weight by local and remote address.',
    type: 'gauge',
    extra: ONE,
    value: (d) => d.weight,
  },
  ...statsFamilies<DestInfo>('backend_', 'real server', (d) => d.stats),
];

/** `\\`, `"` and newline escaped, as label values need. */
export function escapeLabelValue(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `\\` and newline escaped, as HELP text needs. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** The labels that name a service, node_exporter's plus `family`. */
function serviceLabels(s: ServiceInfo): Labels {
  const fwm = s.fwmark !== 0;
  return [
    ['family', s.af === AF_INET6 ? 'inet6' : 'inet'],
    ['proto', fwm ? 'FWM' : procProtoName(s.protocol)],
    ['local_address', fwm ? '' : s.addr],
    ['local_port', String(fwm ? 0 : s.port)],
    ['local_mark', fwm ? String(s.fwmark >>> 0) : ''],
  ];
}

/** The destination's labels that follow its service's: address, port and forwarding method. */
function backendLabels(d: DestInfo): Labels {
  return [
    ['remote_address', d.addr],
    ['remote_port', String(d.port)],
    ['forward', procFwdName(d.fwd)],
  ];
}

/** Labels as they are written between the braces: `k="v",…` ('' for none). */
function labelText(labels: Labels): string {
  return labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
}

/**
 * One family: HELP, TYPE, then its samples for every object, each object's labels written once
 * beforehand (`[label text, object]`).
 */
function family<T>(f: Family<T>, objects: ReadonlyArray<readonly [string, T]>): string {
  let out = familyHeader(f.name, f.help, f.type);
  const { name, extra } = f;
  for (const [lab, x] of objects)
    for (let i = 0; i < extra.length; i++) {
      const e = extra[i]!;
      const all = e === '' ? lab : lab === '' ? e : `${lab},${e}`;
      out += all === '' ? `${name} ${f.value(x, i)}\n` : `${name}{${all}} ${f.value(x, i)}\n`;
    }
  return out;
}

/** A counter's camelCase name as a metric name part: refusedNoDest → refused_no_dest. */
export function snakeCase(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A family's `# HELP` and `# TYPE` lines. */
function familyHeader(name: string, help: string, type: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

/**
 * Unlabelled counters of an object of named counts: `<prefix><snake name>_total` each, described
 * by `help(name)`.
 */
export function counterMetrics(
  prefix: string,
  counters: object,
  help: (name: string) => string,
): PlaneMetric[] {
  return Object.entries(counters).map(([k, v]) => ({
    name: `${prefix}${snakeCase(k)}_total`,
    help: help(k),
    type: 'counter' as const,
    value: v as number,
  }));
}

/** One figure of a data plane's own (an ipvs-ts extension), for `/metrics`. */
export interface PlaneMetric {
  /** The family's name, `ipvs_` prefix included (a counter's ends in `_total`). */
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  value: number;
  /** The sample's labels, `k="v",…` (escaped); samples of one family must be adjacent. */
  labels?: string;
}

/**
 * The whole exposition, a family at a time (totals, the connection table, services, backends),
 * so a listener can send each before it writes the next.
 */
export function* prometheusChunks(
  totals: TotalsInfo,
  services: readonly ServiceInfo[],
  plane: readonly PlaneMetric[] = [],
): Generator<string> {
  const svcs: [string, ServiceInfo][] = services.map((s) => [labelText(serviceLabels(s)), s]);
  const dests: [string, DestInfo][] = [];
  for (const [lab, s] of svcs)
    for (const d of s.dests) dests.push([`${lab},${labelText(backendLabels(d))}`, d]);
  const none: [string, TotalsInfo][] = [['', totals]];
  for (const f of [...TOTAL_FAMILIES, ...TABLE_FAMILIES]) yield family(f, none);
  for (const f of SERVICE_FAMILIES) yield family(f, svcs);
  for (const f of BACKEND_FAMILIES) yield family(f, dests);
  let out = '';
  let last = '';
  for (const m of plane) {
    if (m.name !== last) out += familyHeader(m.name, m.help, m.type);
    last = m.name;
    out += m.labels ? `${m.name}{${m.labels}} ${m.value}\n` : `${m.name} ${m.value}\n`;
  }
  if (out) yield out;
}

/** The whole exposition as one text. */
export function prometheusText(
  totals: TotalsInfo,
  services: readonly ServiceInfo[],
  plane: readonly PlaneMetric[] = [],
): string {
  let out = '';
  for (const c of prometheusChunks(totals, services, plane)) out += c;
  return out;
}
