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

/** One metric family: name, help, type and its samples (labels, value) for one object. */
interface Family<T> {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  /** Samples of one object: extra labels (e.g. direction) and the value. */
  samples: (x: T) => ReadonlyArray<readonly [Labels, number]>;
}

/** The counters and rates every stats object has, named for an object kind (`service_`, `backend_`). */
function statsFamilies<T>(kind: string, what: string, stats: (x: T) => StatsSnapshot): Family<T>[] {
  const dir = (a: number, b: number): ReadonlyArray<readonly [Labels, number]> => [
    [[['direction', 'in']], a],
    [[['direction', 'out']], b],
  ];
  return [
    {
      name: `ipvs_${kind}connections_total`,
      help: `Connections scheduled to the ${what}.`,
      type: 'counter',
      samples: (x) => [[[], stats(x).conns]],
    },
    {
      name: `ipvs_${kind}packets_total`,
      help: `Packets through the ${what}: in (client to server), out (server to client).`,
      type: 'counter',
      samples: (x) => dir(stats(x).inpkts, stats(x).outpkts),
    },
    {
      name: `ipvs_${kind}bytes_total`,
      help: `Bytes (layer-3 length) through the ${what}, by direction.`,
      type: 'counter',
      samples: (x) => dir(stats(x).inbytes, stats(x).outbytes),
    },
    {
      name: `ipvs_${kind}connections_per_second`,
      help: `Estimated connections per second of the ${what} (2 s samples, 8 s average).`,
      type: 'gauge',
      samples: (x) => [[[], stats(x).cps]],
    },
    {
      name: `ipvs_${kind}packets_per_second`,
      help: `Estimated packets per second of the ${what}, by direction.`,
      type: 'gauge',
      samples: (x) => dir(stats(x).inpps, stats(x).outpps),
    },
    {
      name: `ipvs_${kind}bytes_per_second`,
      help: `Estimated bytes per second of the ${what}, by direction.`,
      type: 'gauge',
      samples: (x) => dir(stats(x).inbps, stats(x).outbps),
    },
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
  samples: (t) => [[[], t.stats[key]]],
}));

const TABLE_FAMILIES: Family<TotalsInfo>[] = [
  {
    name: 'ipvs_connection_table_entries',
    help: 'Entries in the connection table now, persistence templates included.',
    type: 'gauge',
    samples: (t) => [[[], t.conns]],
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
    samples: (d) => [[[], d.activeConns]],
  },
  {
    name: 'ipvs_backend_connections_inactive',
    help: 'The current inactive connections by local and remote address.',
    type: 'gauge',
    samples: (d) => [[[], d.inactConns]],
  },
  {
    name: 'ipvs_backend_connections_persistent',
    help: 'The current persistence templates pointing at the backend.',
    type: 'gauge',
    samples: (d) => [[[], d.persistConns]],
  },
  {
    name: 'ipvs_backend_weight',
    help: 'The current backend weight by local and remote address.',
    type: 'gauge',
    samples: (d) => [[[], d.weight]],
  },
  ...statsFamilies<DestInfo>('backend_', 'real server', (d) => d.stats),
];

/** `\\`, `"` and newline escaped, as label values need. */
export function escapeLabelValue(v: string): string {
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

/** A service's labels plus the destination's address, port and forwarding method. */
function backendLabels(base: Labels, d: DestInfo): Labels {
  return [
    ...base,
    ['remote_address', d.addr],
    ['remote_port', String(d.port)],
    ['forward', procFwdName(d.fwd)],
  ];
}

function sampleLine(name: string, labels: Labels, value: number): string {
  const l = labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
  return `${name}${l ? `{${l}}` : ''} ${value}\n`;
}

/** One family: HELP, TYPE, then its samples for every object. */
function family<T>(f: Family<T>, objects: ReadonlyArray<readonly [Labels, T]>): string {
  let out = `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
  for (const [labels, x] of objects)
    for (const [extra, v] of f.samples(x)) out += sampleLine(f.name, [...labels, ...extra], v);
  return out;
}

/** The whole exposition: totals, the connection table, services, backends. */
export function prometheusText(totals: TotalsInfo, services: readonly ServiceInfo[]): string {
  const svcs: [Labels, ServiceInfo][] = services.map((s) => [serviceLabels(s), s]);
  const dests: [Labels, DestInfo][] = [];
  for (const [labels, s] of svcs)
    for (const d of s.dests) dests.push([backendLabels(labels, d), d]);
  let out = '';
  for (const f of [...TOTAL_FAMILIES, ...TABLE_FAMILIES]) out += family(f, [[[], totals]]);
  for (const f of SERVICE_FAMILIES) out += family(f, svcs);
  for (const f of BACKEND_FAMILIES) out += family(f, dests);
  return out;
}
