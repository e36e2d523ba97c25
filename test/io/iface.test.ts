/**
 * Interface facts and prerequisite checks: `lo` and a veth the test creates (compared with what
 * `ip -j link` says), unknown interfaces, a process without CAP_NET_RAW, a missing addon.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  ARPHRD,
  IFF,
  IoNoInterfaceError,
  checkPacketPrerequisites,
  interfaceInfo,
  nativeAvailable,
} from '../../src/dataplane/io/index.js';
import { Lab, ioModule, ip, labSkipReason } from './lab.js';

const skip = labSkipReason();
const INDEX = ioModule();

interface IpLink {
  ifindex: number;
  ifname: string;
  address: string;
  mtu: number;
  flags: string[];
}

function ipLink(ns: string | undefined, name: string): IpLink {
  const args = ns ? ['-n', ns, '-j', 'link', 'show', name] : ['-j', 'link', 'show', name];
  return (JSON.parse(ip(...args)) as IpLink[])[0]!;
}

/** Runs a snippet in a child node with the io module imported as `io`; returns its stdout. */
function child(code: string, env: NodeJS.ProcessEnv = {}, wrap: string[] = []): string {
  const script = `import * as io from ${JSON.stringify(INDEX)};\n${code}`;
  const argv = [...wrap, process.execPath, '--input-type=module', '-e', script];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

describe('loading the addon', () => {
  it('importing the frame-I/O module never loads the addon; opening a native backend says how to build it', () => {
    const out = child(
      `try { io.openAfPacket('lo'); console.log('opened'); } catch (e) { console.log(e.code + '|' + e.message); }
       const [a] = io.createMemoryPair(); console.log(a.kind);`,
      { IPVS_NATIVE_ADDON: '/nonexistent/ipvs_native.node' },
    );
    const [first, second] = out.split('\n');
    assert.match(first!, /^IPVS_ERR_IO_NATIVE_MISSING\|/);
    assert.match(first!, /node native\/build\.mjs/);
    assert.equal(second, 'memory');
  });
});

describe('interface facts', { skip }, () => {
  const lab = new Lab();
  let ns = '';
  let v = '';
  before(() => {
    ns = lab.netns('if');
    const peerNs = lab.netns('ifp');
    v = lab.ifname('iof');
    lab.veth(ns, v, peerNs, lab.ifname('iop'));
    ip('-n', ns, 'link', 'set', v, 'mtu', '1400');
  });
  after(() => lab.cleanup());

  it('the addon is built (CI builds it with npm ci / scripts/prepare.mjs)', () => {
    assert.ok(nativeAvailable(), 'native/build/Release/ipvs_native.node loads');
  });

  it('reports lo', () => {
    const lo = interfaceInfo('lo');
    const ref = ipLink(undefined, 'lo');
    assert.equal(lo.index, ref.ifindex);
    assert.equal(lo.mtu, ref.mtu);
    assert.equal(lo.hwType, ARPHRD.LOOPBACK);
    assert.equal(lo.mac, '00:00:00:00:00:00');
    assert.ok(lo.flags & IFF.LOOPBACK);
    assert.equal(lo.up, ref.flags.includes('UP'));
    assert.equal(lo.gro, true, 'lo coalesces received segments (GRO on by default)');
    assert.equal(lo.lro, false);
  });

  it('reports a veth inside a namespace: index, MAC, MTU, flags', () => {
    const info = interfaceInfo(v, { netns: ns });
    const ref = ipLink(ns, v);
    assert.equal(info.name, v);
    assert.equal(info.index, ref.ifindex);
    assert.equal(info.mac, ref.address);
    assert.equal(info.mtu, 1400);
    assert.equal(info.hwType, ARPHRD.ETHER);
    assert.ok(info.up);
    assert.equal(info.gro, false, 'a veth has GRO off by default');
    assert.deepEqual(checkPacketPrerequisites(v, { netns: ns }), info);
  });

  it('an unknown interface is IPVS_ERR_IO_NO_INTERFACE', () => {
    assert.throws(
      () => interfaceInfo(`nx${lab.tag}`, { netns: ns }),
      (e: Error & { code?: string; errno?: string }) =>
        e instanceof IoNoInterfaceError &&
        e.code === 'IPVS_ERR_IO_NO_INTERFACE' &&
        e.errno === 'ENODEV' &&
        /nx/.test(e.message),
    );
    assert.throws(() => checkPacketPrerequisites(`nx${lab.tag}`), {
      code: 'IPVS_ERR_IO_NO_INTERFACE',
    });
  });

  it('an unknown namespace is IPVS_ERR_IO_SYSCALL naming setns and ENOENT', () => {
    assert.throws(() => interfaceInfo('lo', { netns: `nx-${lab.tag}` }), {
      code: 'IPVS_ERR_IO_SYSCALL',
      errno: 'ENOENT',
      syscall: 'setns',
    });
  });

  it('without CAP_NET_RAW the prerequisite check is IPVS_ERR_IO_NOT_ROOT and says how to fix it', (t) => {
    if (spawnSync('setpriv', ['--version']).status !== 0) {
      t.skip('needs setpriv (util-linux) to drop CAP_NET_RAW');
      return;
    }
    const out = child(
      `for (const f of [() => io.checkPacketPrerequisites('lo'), () => io.openAfPacket('lo')]) {
         try { f(); console.log('allowed'); } catch (e) { console.log(e.code + '|' + e.message); }
       }`,
      {},
      ['setpriv', '--bounding-set=-net_raw', '--inh-caps=-net_raw', '--'],
    );
    for (const line of out.split('\n')) {
      assert.match(line, /^IPVS_ERR_IO_NOT_ROOT\|/);
      assert.match(line, /CAP_NET_RAW/);
      assert.match(line, /setcap cap_net_raw\+ep/);
    }
  });
});
