/**
 * `ipvs mark` and the setFwmarkRules / getFwmarkRules commands: rules are checked before anything
 * is stored, kept by the state file, and applied by the packet data plane to mark packets for
 * fwmark services.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runMark } from '../../src/cli/mark.js';
import { snapshot } from '../../src/config/state.js';
import { localBackend } from '../../src/ctl/controller.js';
import { createMemoryPair } from '../../src/dataplane/io/memory.js';
import { PacketDataplane } from '../../src/dataplane/packet/plane.js';
import { destSpec, fwmSpec, makeIpvs } from '../helpers/ipvs.js';
import { dec, dmac, dst, tcp4 } from '../dataplane/packet/frames.js';
import { CLIENT, MAC, RS1, VIP } from '../dataplane/packet/lab.js';

function io(ipvs: ReturnType<typeof makeIpvs>['ipvs']) {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      backend: async () => localBackend(ipvs),
    },
    out: () => out,
    err: () => err,
  };
}

describe('ipvs mark', () => {
  it('adds, lists, deletes and flushes rules, normalising their spacing', async () => {
    const { ipvs } = makeIpvs();
    const a = io(ipvs);
    assert.equal(
      await runMark(['add', 'proto tcp  dport 80,443 mark 1', 'src 203.0.113.0/24 mark 2'], a.io),
      0,
    );
    assert.equal(await runMark(['list'], a.io), 0);
    assert.equal(a.out(), '1: proto tcp dport 80,443 mark 1\n2: src 203.0.113.0/24 mark 2\n');
    assert.equal(await runMark(['del', '1'], a.io), 0);
    assert.deepEqual(ipvs.fwmarkRules, ['src 203.0.113.0/24 mark 2']);
    assert.equal(await runMark(['flush'], a.io), 0);
    assert.deepEqual(ipvs.fwmarkRules, []);
  });

  it('replaces the rules from a file, skipping comments', async () => {
    const { ipvs } = makeIpvs();
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-mark-'));
    try {
      const f = join(dir, 'marks');
      writeFileSync(f, '# web\nproto tcp dport 80 mark 7\n\nproto udp dport 53 mark 8 # dns\n');
      assert.equal(await runMark(['set', f], io(ipvs).io), 0);
      assert.deepEqual(ipvs.fwmarkRules, [
        'proto tcp dport 80 mark 7',
        'proto udp dport 53 mark 8',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad rule with a coded error and keeps the old rules', async () => {
    const { ipvs } = makeIpvs();
    const a = io(ipvs);
    await runMark(['add', 'dport 80 mark 1'], a.io);
    assert.equal(await runMark(['add', 'dport 99999 mark 2'], a.io), 1);
    assert.match(a.err(), /^ipvs mark: IPVS_ERR_PKT_RULE: .*99999/);
    assert.equal(await runMark(['add', 'dport 80'], a.io), 1);
    assert.deepEqual(ipvs.fwmarkRules, ['dport 80 mark 1']);
    await assert.rejects(localBackend(ipvs).call({ cmd: 'setFwmarkRules', rules: ['mark 0'] }), {
      code: 'IPVS_ERR_PKT_RULE',
    });
    // a bad address or prefix is the rule's error too
    for (const bad of [
      'dst 1.2.3.4/33 mark 1',
      'src 2001:db8::/129 mark 1',
      'dst 10.0.0.0/ mark 1',
    ]) {
      const b = io(ipvs);
      assert.equal(await runMark(['add', bad], b.io), 1, bad);
      assert.match(
        b.err(),
        /^ipvs mark: IPVS_ERR_PKT_RULE: fwmark rule: rule 2: (src|dst): bad prefix length/,
      );
    }
    const d = io(ipvs);
    assert.equal(await runMark(['del', '9'], d.io), 1);
    assert.equal(d.err(), 'ipvs mark: IPVS_ERR_PKT_RULE: no rule 9 (there is 1)\n');
    const f = io(ipvs);
    assert.equal(await runMark(['set', '/nonexistent/marks'], f.io), 1);
    assert.equal(
      f.err(),
      'ipvs mark: IPVS_ERR_STATE_FILE: cannot read rules file /nonexistent/marks: ENOENT\n',
    );
    assert.deepEqual(ipvs.fwmarkRules, ['dport 80 mark 1']);
  });

  it('prints usage and exits 2 on unknown verbs or missing arguments', async () => {
    const { ipvs } = makeIpvs();
    for (const args of [
      [],
      ['frob'],
      ['del'],
      ['del', 'abc'],
      ['del', '0'],
      ['add'],
      ['list', 'x'],
    ]) {
      const a = io(ipvs);
      assert.equal(await runMark(args, a.io), 2, args.join(' '));
      assert.match(a.err(), /^Usage: ipvs mark/);
    }
  });

  it('keeps the rules in the state file', async () => {
    const { ipvs } = makeIpvs();
    await runMark(['add', 'proto tcp dport 443 mark 3'], io(ipvs).io);
    assert.deepEqual(
      snapshot(ipvs).filter((c) => c.cmd === 'setFwmarkRules'),
      [{ cmd: 'setFwmarkRules', rules: ['proto tcp dport 443 mark 3'] }],
    );
  });

  it('makes the packet data plane send marked packets to the fwmark service', async () => {
    const { ipvs } = makeIpvs();
    const [d0, c0] = createMemoryPair();
    const plane = new PacketDataplane({
      interfaces: [
        { name: 'eth0', mac: MAC.eth0, addrs: ['10.0.0.1/24', '192.168.1.1/24'], io: d0 },
      ],
      neighbours: [
        { dev: 'eth0', addr: RS1, mac: MAC.rs1 },
        { dev: 'eth0', addr: CLIENT, mac: MAC.client },
      ],
      vips: [{ addr: VIP, dev: 'eth0' }],
    });
    const got: Buffer[] = [];
    c0.onFrames((b) => {
      for (let i = 0; i < b.count; i++) got.push(Buffer.from(b.frame(i)));
    });
    await plane.start(ipvs);
    const be = {
      call: async (cmd: Parameters<ReturnType<typeof localBackend>['call']>[0]) => {
        const { execute } = await import('../../src/ctl/commands.js');
        return execute(ipvs, cmd, plane);
      },
      close: () => {},
    };
    try {
      await be.call({ cmd: 'newService', service: fwmSpec(5, { scheduler: 'rr' }) });
      await be.call({ cmd: 'newDest', service: fwmSpec(5), dest: destSpec(RS1, 80, { fwd: 3 }) });
      const send = async (): Promise<void> => {
        got.length = 0;
        c0.send(tcp4({ dport: 8080 }));
        c0.txCommit();
        for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
      };
      await send();
      assert.equal(got.filter((f) => dmac(f) === MAC.rs1).length, 0, 'unmarked: not for IPVS');
      await runMark(['add', `proto tcp dst ${VIP}/32 dport 8080 mark 5`], {
        ...io(ipvs).io,
        backend: async () => be as never,
      });
      await send();
      const fwd = got.filter((f) => dmac(f) === MAC.rs1);
      assert.equal(fwd.length, 1, 'marked 5: forwarded by the fwmark service');
      assert.equal(dst(dec(fwd[0]!)), VIP);
    } finally {
      await plane.stop(0);
      await c0.close();
    }
  });
});
