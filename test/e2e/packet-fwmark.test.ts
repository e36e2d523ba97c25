/**
 * An fwmark service with persistence through `ipvs daemon --dataplane packet` across namespaces:
 * `ipvs mark` gives TCP to the VIP on two ports mark 1 (what `iptables -j MARK` does for kernel
 * IPVS), `-A -f 1 -p` balances the mark by DR, and a client's connections to either port stick to
 * one real server through the fwmark template (client, mark, port 0), which `ipvs adm -L -c -n`
 * lists. Another client is scheduled on its own.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { nativeAvailable } from '../../src/dataplane/io/index.js';
import { IFACE, NET, Topology, netnsSkipReason } from '../helpers/netns.js';
import { Director, IPVS_BIN } from './packet-tools.js';

const skip =
  netnsSkipReason() ??
  (nativeAvailable() ? undefined : 'needs the native addon (node native/build.mjs)');

const HTTP = 8080;
const HTTPS = 8443;
/** A second client on the front network. */
const CLIENT2 = '192.0.2.3';

describe('ipvs daemon --dataplane packet: fwmark service with persistence (DR)', { skip }, () => {
  let t: Topology;
  let d: Director;

  before(async () => {
    t = Topology.create({ prefix: 'ipvsfm' });
    t.setupDr();
    t.ip(t.ns.client, 'addr', 'add', `${CLIENT2}/24`, 'dev', IFACE.front);
    await Promise.all(
      [0, 1].flatMap((i) => [
        t.startEchoServer(i, { tcp: HTTP }),
        t.startEchoServer(i, { tcp: HTTPS }),
      ]),
    );
    d = await new Director(t).start();
    const mark = spawnSync(
      process.execPath,
      [
        IPVS_BIN,
        'mark',
        '--control',
        d.sock,
        'add',
        `proto tcp dst ${NET.vip}/32 dport ${HTTP},${HTTPS} mark 1`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(mark.status, 0, mark.stderr);
    d.adm('-A', '-f', '1', '-s', 'rr', '-p', '300');
    for (const i of [0, 1]) d.adm('-a', '-f', '1', '-r', NET.serverBack(i), '-g');
  });
  after(async () => {
    await d?.stop();
    t?.cleanup();
  });

  it('both ports of one client go to the same real server; the template is listed', async () => {
    const names = new Set<string>();
    for (const port of [HTTP, HTTPS, HTTP, HTTPS]) {
      const data = randomBytes(2000);
      const r = await t.echo(t.ns.client, NET.vip, port, data);
      assert.deepEqual(r.echo, data);
      names.add(r.name);
    }
    assert.equal(names.size, 1, `one server for the client, got ${[...names].join(', ')}`);
    const list = d.adm('-L', '-c', '-n');
    // the fwmark template (protocol IP, ASSURED once a connection under it was established):
    // client address, port 0, the mark as the virtual address
    assert.match(
      list,
      new RegExp(
        `IP\\s+0[45]:\\d\\d\\s+ASSURED\\s+${NET.client}:0\\s+0\\.0\\.0\\.1:0\\s+198\\.51\\.100\\.1[01]:0`,
      ),
      list,
    );
    const rows = list.split('\n').filter((l) => l.includes(`${NET.vip}:`));
    assert.equal(rows.length, 4, list);
    const stats = d.adm('-Ln', '--stats');
    assert.match(stats, /FWM  1\s+4\s/, stats);
  });

  it('another client is scheduled on its own (rr moves on to the other server)', async () => {
    const first = (await t.echo(t.ns.client, NET.vip, HTTP, Buffer.from('a'))).name;
    const script = `
      const s = require('net').connect({ host: '${NET.vip}', port: ${HTTP}, localAddress: '${CLIENT2}' });
      const c = []; s.on('connect', () => s.end('b')); s.on('data', (x) => c.push(x));
      s.on('end', () => { console.log(Buffer.concat(c).toString().split('\\n')[0]); });
      s.on('error', (e) => { console.error(e.message); process.exit(1); });`;
    const second = t.exec(t.ns.client, process.execPath, ['-e', script]).stdout.trim();
    assert.notEqual(second, first, 'the second client got the other server');
    const rs = NET.serverBack(Number(second.slice(2)));
    const tpl = new RegExp(
      `^IP\\s+\\d\\d:\\d\\d\\s+ASSURED\\s+${CLIENT2}:0\\s+0\\.0\\.0\\.1:0\\s+${rs}:0$`,
      'm',
    );
    assert.match(d.adm('-L', '-c', '-n'), tpl, 'its own template, to its server');
  });
});
