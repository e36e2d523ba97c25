/**
 * The state file (snapshot → atomic write → restore keeps everything, including what `-S` cannot
 * express) and rules files (`-R` semantics with `#` comments).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { applyRules } from '../../src/config/rules.js';
import {
  applyState,
  parseState,
  readStateFile,
  snapshot,
  writeStateFile,
} from '../../src/config/state.js';
import { Ipvs } from '../../src/core/ipvs.js';
import { IpvsError } from '../../src/core/errors.js';
import { Controller } from '../../src/ctl/controller.js';
import { Flow } from '../../src/core/flow.js';
import { Adm } from '../cli/helpers.js';
import { fwmSpec, svcSpec } from '../helpers/ipvs.js';

describe('state file', () => {
  it('restores services, destination order, thresholds, timeouts, sysctls and daemons', async () => {
    const a = new Adm();
    for (const l of [
      '-A -t 10.0.0.1:80 -s wrr -p 60',
      '-a -t 10.0.0.1:80 -r 192.168.1.1 -m -w 3 -x 100 -y 10',
      '-a -t 10.0.0.1:80 -r 192.168.1.2 -m -w 1',
      '-a -t 10.0.0.1:80 -r 192.168.1.3 -i --tun-type gue --tun-port 6080 --tun-csum',
      '-A -f 9 -6 -s sh -b sh-port',
      '--set 100 20 30',
      '--start-daemon master --mcast-interface lo --syncid 7',
    ])
      assert.equal((await a.run(l)).status, 0, l);
    a.ipvs.setSysctl('expire_nodest_conn', 1);
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-state-'));
    const file = join(dir, 'state.json');
    writeStateFile(file, a.ipvs);
    assert.deepEqual(readdirSync(dir), ['state.json'], 'no temp file left behind');

    const b = new Ipvs({ log: () => {} });
    applyState(new Controller(b), readStateFile(file)!);
    assert.deepEqual(snapshot(b), snapshot(a.ipvs));
    const order = (x: Ipvs) =>
      x.listServices().map((s) => s.dests.map((d) => `${d.addr}/${d.uThreshold}/${d.lThreshold}`));
    assert.deepEqual(order(b), order(a.ipvs));
    assert.deepEqual(b.getTimeouts(), { tcp: 100, tcpfin: 20, udp: 30 });
    assert.equal(b.getSysctls().expire_nodest_conn, 1);
    assert.equal(b.listDaemons()[0]!.syncId, 7);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { save: string };
    assert.match(doc.save, /^-A -t 10\.0\.0\.1:80 -s wrr -p 60$/m);
    a.close();
    b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the unsorted service order: the hash salt is restored with the services', () => {
    let x = 1;
    const a = new Ipvs({ log: () => {}, randomU32: () => (x = Math.imul(x, 48271) >>> 0) });
    const ctl = new Controller(a);
    for (let i = 1; i <= 12; i++) {
      ctl.run({ cmd: 'newService', service: svcSpec(`10.0.0.${i}`, 80, { scheduler: 'rr' }) });
      ctl.run({ cmd: 'newService', service: fwmSpec(i, { scheduler: 'rr' }) });
    }
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-state-'));
    const file = join(dir, 'state.json');
    writeStateFile(file, a);
    const listed = (v: Ipvs) => v.listServices().map((s) => s.fwmark || s.addr);
    // another instance draws another salt: without the saved one its buckets, and so its
    // unsorted order, would differ
    let y = 7;
    const b = new Ipvs({ log: () => {}, randomU32: () => (y = Math.imul(y, 69621) >>> 0) });
    assert.notEqual(b.services.salt, a.services.salt);
    applyState(new Controller(b), readStateFile(file)!);
    assert.equal(b.services.salt, a.services.salt);
    assert.deepEqual(listed(b), listed(a));
    a.close();
    b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a server drained to weight 0 keeps its last weight: mh schedules the same after a restart', async () => {
    const a = new Adm();
    for (const l of [
      '-A -t 10.0.0.1:80 -s mh -b mh-port',
      '-a -t 10.0.0.1:80 -r 192.168.1.1 -m -w 1',
      '-a -t 10.0.0.1:80 -r 192.168.1.2 -m -w 3',
      '-a -t 10.0.0.1:80 -r 192.168.1.3 -m -w 1',
      '-e -t 10.0.0.1:80 -r 192.168.1.2 -m -w 0',
      '-a -t 10.0.0.1:80 -r 192.168.1.4 -m -w 0',
    ])
      assert.equal((await a.run(l)).status, 0, l);
    const b = new Ipvs({ log: () => {} });
    applyState(
      new Controller(b),
      parseState(
        JSON.stringify({ format: 'ipvs-ts-state', version: 1, commands: snapshot(a.ipvs) }),
      ),
    );
    const key = { af: 2 as const, protocol: 6, addr: '10.0.0.1', port: 80, fwmark: 0 };
    const weights = (x: Ipvs) =>
      x.findService(key)!.dests.map((d) => `${d.weight}/${d.lastWeight}`);
    assert.deepEqual(weights(b), weights(a.ipvs));
    assert.deepEqual(weights(b), ['0/0', '1/1', '0/3', '1/1']);
    // the drained server keeps its slots of the lookup table: the same clients find no server
    const pick = (x: Ipvs) => {
      const svc = x.findService(key)!;
      const f = new Flow();
      const out: string[] = [];
      for (let i = 0; i < 400; i++) {
        f.set(2, 6, new Uint32Array([0xc0000200 + (i & 255), 0, 0, 0]), 1000 + i, svc.addr, 80);
        out.push(svc.sched!.schedule(svc, f)?.toString() ?? '-');
      }
      return out;
    };
    assert.deepEqual(pick(b), pick(a.ipvs));
    assert.ok(pick(b).includes('-'), 'some clients hash to the drained server');
    assert.deepEqual(snapshot(b), snapshot(a.ipvs));
    a.close();
    b.close();
  });

  it('returns null for a missing file and refuses a corrupt one', () => {
    assert.equal(readStateFile('/nonexistent/state.json'), null);
    for (const bad of [
      '',
      '{"format":"x"}',
      '{"format":"ipvs-ts-state","version":1,"commands":[{"cmd":"nope"}]}',
      '{"format":"ipvs-ts-state","ver',
    ]) {
      assert.throws(
        () => parseState(bad),
        (e: unknown) => e instanceof IpvsError && e.code === 'IPVS_ERR_STATE_FILE',
      );
    }
  });
});

describe('rules files', () => {
  it('apply ipvsadm-save text with -R semantics, skipping # comments', async () => {
    const ipvs = new Ipvs({ log: () => {} });
    const backend = new Controller(ipvs).backend();
    const r = await applyRules(
      '# a comment\n-A -t 10.0.0.1:80 -s rr\n  # indented comment\nipvsadm -a -t 10.0.0.1:80 -r 192.168.1.1 -m\n',
      backend,
    );
    assert.deepEqual(r, { status: 0, output: '' });
    assert.equal(ipvs.listServices()[0]!.dests.length, 1);
    const bad = await applyRules('-A -t 10.0.0.2:0\n', backend);
    assert.deepEqual(bad, {
      status: 2,
      output: 'line 1: Zero port specified for non-persistent service\n',
    });
    ipvs.close();
  });

  it('a rules file loaded by the daemon is written to the state file', async () => {
    const { Daemon } = await import('../../src/cli/daemon.js');
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-rules-'));
    const rules = join(dir, 'rules');
    writeFileSync(rules, '-A -u 10.0.0.5:53 -s rr\n');
    const state = join(dir, 'state.json');
    const d = await Daemon.start(
      { dataplane: 'none', control: join(dir, 's.sock'), rules, stateFile: state },
      () => {},
    );
    try {
      assert.match(
        parseState(readFileSync(state, 'utf8')).save ?? '',
        /^-A -u 10\.0\.0\.5:53 -s rr$/m,
      );
    } finally {
      await d.stop();
    }
    // with a state file present, the rules are not applied again
    writeFileSync(rules, '-A -u 10.0.0.6:53 -s rr\n');
    const d2 = await Daemon.start(
      { dataplane: 'none', control: join(dir, 's.sock'), rules, stateFile: state },
      () => {},
    );
    try {
      assert.deepEqual(
        d2.ipvs.listServices().map((s) => s.addr),
        ['10.0.0.5'],
      );
    } finally {
      await d2.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
