/**
 * Failover between two `ipvs daemon --dataplane packet` directors across namespaces, with
 * connection sync: director A is active (DR to two real servers) and runs a sync master; director
 * B has the same services, `backup_only = 1` and a sync backup, so it claims no VIP. A client
 * holds a TCP connection through A; B learns it from A's sync messages. A stops; B's backup role
 * is stopped (the takeover), B announces the VIP with gratuitous ARP, and the client's held
 * connection goes on through B to the same real server.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { nativeAvailable } from '../../src/dataplane/io/index.js';
import { IFACE, NET, Topology, netnsSkipReason, type NsChild } from '../helpers/netns.js';
import { Director, IPVS_BIN, TOOLS } from './packet-tools.js';

const skip =
  netnsSkipReason() ??
  (nativeAvailable() ? undefined : 'needs the native addon (node native/build.mjs)');

const PORT = 8080;
const SVC = `${NET.vip}:${PORT}`;
const B_FRONT = '192.0.2.4';
const B_BACK = '198.51.100.4';

async function until(f: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('ipvs daemon --dataplane packet: failover with connection sync (DR)', { skip }, () => {
  let t: Topology;
  let a: Director;
  let b: Director;
  let hold: NsChild | undefined;

  const configure = (d: Director) => {
    d.adm('-A', '-t', SVC, '-s', 'rr');
    for (const i of [0, 1]) d.adm('-a', '-t', SVC, '-r', NET.serverBack(i), '-g');
  };
  const sysctl = (d: Director, ...args: string[]) => {
    const r = spawnSync(process.execPath, [IPVS_BIN, 'sysctl', '--control', d.sock, ...args], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
  };

  before(async () => {
    t = Topology.create({ prefix: 'ipvsfo' });
    t.setupDr();
    t.noSenderGso();
    const nsB = t.addHost('dir2', `${B_FRONT}/24`, `${B_BACK}/24`);
    // the client reaches the VIP on its link: whoever claims it (ARP) gets its packets
    t.ip(t.ns.client, 'route', 'replace', `${NET.vip}/32`, 'dev', IFACE.front);
    await Promise.all([t.startEchoServer(0), t.startEchoServer(1)]);
    b = await new Director(t, nsB).start();
    sysctl(b, '-w', 'backup_only=1');
    b.adm('--start-daemon', 'backup', '--mcast-interface', IFACE.back, '--syncid', '3');
    configure(b);
    a = await new Director(t).start();
    configure(a);
    a.adm('--start-daemon', 'master', '--mcast-interface', IFACE.back, '--syncid', '3');
  });
  after(async () => {
    await hold?.kill();
    await a?.stop();
    await b?.stop();
    t?.cleanup();
  });

  it('a held connection learnt by the standby goes on through it after the takeover', async () => {
    hold = t.spawnNode(t.ns.client, TOOLS, ['hold', SVC]);
    const [, name] = (await hold.waitFor(/connected (rs\d) /, { timeoutMs: 5000 }))!;
    const rs = NET.serverBack(Number(name!.slice(2)));
    const echo = async () => {
      const from = hold!.stdout.length;
      hold!.proc.kill('SIGUSR1');
      return (await hold!.waitFor(/echo (ok|timeout)/, { from, timeoutMs: 5000 }))[1]!;
    };
    assert.equal(await echo(), 'ok', 'through A');
    // the standby holds the connection A synced (sync_threshold: the 3rd packet; a partly
    // filled buffer goes out within 2 s)
    const local = /connected rs\d (\S+)/.exec(hold.stdout)![1]!;
    await until(
      () => b.adm('-L', '-c', '-n').includes(`${local.split(':')[0]}:${local.split(':')[1]}`),
      5000,
      'the connection on the standby',
    );
    assert.match(
      b.adm('-L', '-c', '-n'),
      new RegExp(
        `TCP\\s+\\S+\\s+ESTABLISHED\\s+${local.replace(/\./g, '\\.')}\\s+${NET.vip}:${PORT}\\s+${rs}:${PORT}`,
      ),
    );
    assert.equal(a.adm('-L', '--daemon').trim().split('\n').length, 1);
    assert.match(b.adm('-L', '--daemon'), /backup sync daemon \(mcast=eth1, syncid=3/);

    // A goes away; B takes over: its backup role stops and it announces the VIP
    await a.stop();
    b.adm('--stop-daemon', 'backup');
    assert.equal(await echo(), 'ok', 'through B, to the same real server');
    const c = await b.counters();
    assert.ok((c.engine.inForwarded ?? 0) > 0, 'B forwarded the held connection');
    // and new connections are B's too
    const r = await t.echo(t.ns.client, NET.vip, PORT, Buffer.from('new'));
    assert.equal(r.echo.toString(), 'new');
  });
});
