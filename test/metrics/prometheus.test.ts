/**
 * The Prometheus exposition, parsed back the way a scraper reads it: every family has its HELP
 * and TYPE before its samples, counters end in _total, no series appears twice, label values
 * come back unescaped, and the values are the ones `ipvsadm -L -n --stats --rate` shows.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServiceInfo } from '../../src/ctl/types.js';
import { escapeLabelValue, prometheusText } from '../../src/metrics/prometheus.js';
import { SERVICES, TOTALS, ZERO } from './fixtures.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A small 0.0.4 text parser: families with help and type, samples with unescaped labels. */
function parseExposition(text: string): {
  types: Map<string, string>;
  helps: Map<string, string>;
  samples: Sample[];
} {
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const samples: Sample[] = [];
  assert.ok(text.endsWith('\n'), 'the text ends with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      assert.ok(!helps.has(m[1]!), `one HELP for ${m[1]}`);
      helps.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line);
    if (m) {
      assert.ok(helps.has(m[1]!), `HELP before TYPE for ${m[1]}`);
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const name = m[1]!;
    assert.ok(types.has(name), `TYPE before the samples of ${name}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
    let pos = 0;
    while (pos < body.length) {
      re.lastIndex = pos;
      const l = re.exec(body);
      assert.ok(l, `labels of ${line}`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      pos = re.lastIndex;
    }
    samples.push({ name, labels, value: Number(m[3]) });
  }
  return { types, helps, samples };
}

function find(samples: Sample[], name: string, labels: Record<string, string>): number {
  const hits = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  assert.equal(hits.length, 1, `one ${name} ${JSON.stringify(labels)}`);
  return hits[0]!.value;
}

const busy: ServiceInfo[] = SERVICES.map((s, i) =>
  i !== 0
    ? s
    : {
        ...s,
        stats: {
          ...ZERO,
          conns: 42,
          inpkts: 400,
          outpkts: 300,
          inbytes: 40000,
          outbytes: 900000,
          cps: 3,
          inpps: 20,
          outpps: 15,
          inbps: 2000,
          outbps: 45000,
        },
        dests: s.dests.map((d, j) =>
          j === 1
            ? {
                ...d,
                persistConns: 4,
                stats: { ...ZERO, conns: 40, inpkts: 390, outbytes: 880000 },
              }
            : d,
        ),
      },
);

describe('prometheusText', () => {
  const { types, helps, samples } = parseExposition(prometheusText(TOTALS, busy));

  it('declares each family once, with HELP and TYPE; counters end in _total, gauges do not', () => {
    for (const [name, type] of types) {
      assert.ok(helps.get(name)!.length > 0);
      assert.equal(name.endsWith('_total'), type === 'counter', name);
      assert.ok(name.startsWith('ipvs_'), name);
    }
  });

  it('has no series twice (services of both families share fwmarks)', () => {
    const keys = samples.map((s) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`);
    assert.equal(new Set(keys).size, keys.length);
  });

  it("the totals under node_exporter's names, and the table's live size", () => {
    assert.equal(find(samples, 'ipvs_connections_total', {}), 10);
    assert.equal(find(samples, 'ipvs_incoming_packets_total', {}), 300);
    assert.equal(find(samples, 'ipvs_outgoing_packets_total', {}), 200);
    assert.equal(find(samples, 'ipvs_incoming_bytes_total', {}), 123456789012);
    assert.equal(find(samples, 'ipvs_incoming_bytes_per_second', {}), 5000);
    assert.equal(find(samples, 'ipvs_connection_table_entries', {}), 7);
    assert.equal(types.get('ipvs_connection_table_entries'), 'gauge');
  });

  it('per service: counters by direction and rates, labelled like node_exporter', () => {
    const svc = { proto: 'TCP', local_address: '10.0.0.1', local_port: '80', local_mark: '' };
    assert.equal(find(samples, 'ipvs_service_connections_total', svc), 42);
    assert.equal(find(samples, 'ipvs_service_packets_total', { ...svc, direction: 'in' }), 400);
    assert.equal(find(samples, 'ipvs_service_packets_total', { ...svc, direction: 'out' }), 300);
    assert.equal(find(samples, 'ipvs_service_bytes_total', { ...svc, direction: 'out' }), 900000);
    assert.equal(find(samples, 'ipvs_service_connections_per_second', svc), 3);
    assert.equal(
      find(samples, 'ipvs_service_bytes_per_second', { ...svc, direction: 'out' }),
      45000,
    );
    assert.equal(types.get('ipvs_service_packets_per_second'), 'gauge');
    const v6 = { family: 'inet6', proto: 'TCP', local_address: '2001:db8::1', local_port: '443' };
    assert.equal(find(samples, 'ipvs_service_connections_total', v6), 0);
    // fwmark services: proto FWM, the mark, no address; one per family
    assert.equal(
      find(samples, 'ipvs_service_connections_total', {
        family: 'inet',
        proto: 'FWM',
        local_mark: '5',
        local_address: '',
        local_port: '0',
      }),
      0,
    );
    assert.equal(
      find(samples, 'ipvs_service_connections_total', { family: 'inet6', local_mark: '7' }),
      0,
    );
  });

  it('per backend: weight, active / inactive / persistent connections, counters, forwarding method', () => {
    const be = {
      local_address: '10.0.0.1',
      local_port: '80',
      remote_address: '192.168.1.10',
      remote_port: '80',
      proto: 'TCP',
    };
    assert.equal(find(samples, 'ipvs_backend_connections_active', be), 2);
    assert.equal(find(samples, 'ipvs_backend_connections_inactive', be), 3);
    assert.equal(find(samples, 'ipvs_backend_connections_persistent', be), 4);
    assert.equal(find(samples, 'ipvs_backend_weight', be), 1);
    assert.equal(find(samples, 'ipvs_backend_connections_total', { ...be, forward: 'Masq' }), 40);
    assert.equal(find(samples, 'ipvs_backend_packets_total', { ...be, direction: 'in' }), 390);
    assert.equal(find(samples, 'ipvs_backend_bytes_total', { ...be, direction: 'out' }), 880000);
    const route = { remote_address: '192.168.1.11', remote_port: '8080' };
    assert.equal(find(samples, 'ipvs_backend_weight', { ...route, forward: 'Route' }), 5);
    assert.equal(
      find(samples, 'ipvs_backend_weight', { remote_address: '10.1.0.5', forward: 'Tunnel' }),
      2,
    );
    assert.equal(
      find(samples, 'ipvs_backend_connections_inactive', {
        remote_address: '2001:db8::10',
        forward: 'Local',
      }),
      1,
    );
    assert.equal(
      find(samples, 'ipvs_backend_weight', { local_mark: '5', remote_address: '192.168.1.20' }),
      1,
    );
    // 5 destinations, each with every backend family
    assert.equal(samples.filter((s) => s.name === 'ipvs_backend_weight').length, 5);
  });

  it('with no services: the totals and the table size only', () => {
    const r = parseExposition(prometheusText(TOTALS, []));
    assert.ok(r.samples.every((s) => Object.keys(s.labels).length === 0));
    assert.equal(r.samples.length, 11);
  });

  it('escapes label values (backslash, double quote, newline) so they parse back unchanged', () => {
    const odd = 'a"b\\c\nd';
    assert.equal(escapeLabelValue(odd), 'a\\"b\\\\c\\nd');
    const r = parseExposition(`# HELP x y\n# TYPE x gauge\nx{v="${escapeLabelValue(odd)}"} 1\n`);
    assert.equal(r.samples[0]!.labels.v, odd);
  });
});
