/**
 * `ipvs daemon --dataplane packet --http 127.0.0.1:0` across network namespaces (NAT topology,
 * test/helpers/netns.ts): after real connections through the director, what a monitoring system
 * reads over HTTP inside the director's namespace agrees with what happened — `/metrics`
 * counts each real server's connections, `/proc/net/ip_vs_conn` lists them, and
 * `/proc/net/ip_vs_app` shows the packet data plane's FTP helper as the kernel's ip_vs_ftp does.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { nativeAvailable } from '../../src/dataplane/io/index.js';
import { NET, Topology, netnsSkipReason } from '../helpers/netns.js';
import { Director, runClient } from './packet-tools.js';

const skip =
  netnsSkipReason() ??
  (nativeAvailable() ? undefined : 'needs the native addon (node native/build.mjs)');

const PORT = 8080;
const CONNS = 6;

/** Hex of an IPv4 address as the kernel's /proc texts print it (`%08X`). */
const hex = (ip: string): string =>
  ip
    .split('.')
    .map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0'))
    .join('');

describe('ipvs daemon --dataplane packet --http: /metrics and /proc texts', { skip }, () => {
  let t: Topology;
  let d: Director;
  let port = 0;

  /** GET `path` from the daemon's HTTP listener, inside the director's namespace. */
  const get = (path: string): string => {
    const r = t.exec(t.ns.director, process.execPath, [
      '-e',
      `fetch('http://127.0.0.1:${port}${path}').then(async (r) => { if (r.status !== 200) process.exit(3); process.stdout.write(await r.text()); })`,
    ]);
    assert.equal(r.status, 0, `GET ${path}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    t = Topology.create({ prefix: 'ipvsph' });
    t.setupNat();
    t.sysctl(t.ns.director, 'net.ipv4.ip_forward', '0');
    t.noSenderGso();
    await Promise.all([t.startEchoServer(0), t.startEchoServer(1)]);
    d = await new Director(t).start(['--http', '127.0.0.1:0']);
    const m = /http listening on 127\.0\.0\.1:(\d+)/.exec(d.child.stderr);
    assert.ok(m, d.child.stderr);
    port = Number(m[1]);
    d.adm('-A', '-t', `${NET.vip}:${PORT}`, '-s', 'rr');
    d.adm('-A', '-t', `${NET.vip}:21`, '-s', 'rr');
    for (const i of [0, 1]) {
      d.adm('-a', '-t', `${NET.vip}:${PORT}`, '-r', `${NET.serverBack(i)}:${PORT}`, '-m');
      d.adm('-a', '-t', `${NET.vip}:21`, '-r', `${NET.serverBack(i)}:21`, '-m');
    }
  });
  after(async () => {
    await d?.stop();
    t?.cleanup();
  });

  it('counts and lists the connections that went through, per real server', async () => {
    const r = await runClient(t, t.ns.client, `${NET.vip}:${PORT}`, {
      conns: CONNS,
      bytes: 4096,
      timeoutMs: 15_000,
    });
    assert.deepEqual(r.failed, [], d.child.stderr);
    const metrics = get('/metrics');
    for (const i of [0, 1]) {
      const series = new RegExp(
        `^ipvs_backend_connections_total\\{[^}]*local_address="${NET.vip}",local_port="${PORT}"[^}]*remote_address="${NET.serverBack(i)}",remote_port="${PORT}"[^}]*\\} (\\d+)$`,
        'm',
      ).exec(metrics);
      assert.ok(series, metrics);
      assert.equal(Number(series[1]), CONNS / 2, 'rr: half the connections each');
    }
    assert.match(metrics, new RegExp(`^ipvs_connections_total ${CONNS}$`, 'm'));
    // the data plane's own counters: frames forwarded, by reason, per interface
    const num = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? NaN);
    assert.ok(num(/^ipvs_packet_in_forwarded_total (\d+)$/m) > 0, 'in forwarded');
    assert.ok(num(/^ipvs_packet_out_forwarded_total (\d+)$/m) > 0, 'out forwarded');
    assert.match(metrics, /^# TYPE ipvs_packet_frames_total counter$/m);
    assert.equal(metrics.match(/^# TYPE ipvs_packet_frames_total /gm)!.length, 1, 'one family');
    assert.match(metrics, /^ipvs_packet_frames_total\{reason="[a-z-]+"\} \d+$/m);
    assert.ok(num(/^ipvs_packet_iface_rx_frames_total\{iface="[^"]+"\} (\d+)$/m) > 0);
    assert.match(metrics, /^ipvs_packet_iface_up\{iface="[^"]+"\} 1$/m);
    assert.match(metrics, /^ipvs_packet_iface_rx_ring_drops_total\{iface="[^"]+"\} \d+$/m);
    const conns = get('/proc/net/ip_vs_conn').split('\n').filter(Boolean);
    assert.equal(
      conns[0],
      'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData',
    );
    const rows = conns
      .slice(1)
      .filter((l) =>
        l.includes(` ${hex(NET.vip)} ${PORT.toString(16).toUpperCase().padStart(4, '0')} `),
      );
    assert.equal(rows.length, CONNS, conns.join('\n'));
    for (const row of rows) assert.match(row, new RegExp(`^TCP ${hex(NET.client)} `));
  });

  it('shows the FTP helper on port 21 in /proc/net/ip_vs_app and both services in /proc/net/ip_vs', () => {
    assert.equal(
      get('/proc/net/ip_vs_app'),
      'prot port    usecnt name\nTCP  21      0      ftp              \n',
    );
    const ipvs = get('/proc/net/ip_vs');
    assert.match(ipvs, new RegExp(`^TCP  ${hex(NET.vip)}:0015 rr  $`, 'm'));
    assert.match(ipvs, new RegExp(`^  -> ${hex(NET.serverBack(1))}:1F90      Masq    1 `, 'm'));
  });
});
