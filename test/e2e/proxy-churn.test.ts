/**
 * The proxy data plane while the configuration churns under live traffic: a few dozen clients
 * at a time echo random amounts through three TCP services (one persistent) while edits arrive
 * every 40 ms — weights (0 included), thresholds, schedulers and persistence, timeouts,
 * conn_reuse_mode, counters zeroed, a destination deleted and added back, services deleted and
 * re-created, UDP (and one-packet UDP) traffic and services re-created. None of these is a reason
 * for IPVS to reset a connection that is under way (a deleted destination's connections wait in
 * the trash and go on when it is added back, expire_nodest_conn being 0), so every client that
 * got a byte back must get all of it back and a FIN. A client may be refused before any byte
 * (no destination could take it). Clients sometimes reuse a fixed local port, pause, or reset.
 */
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ServiceSpec } from '../../src/ctl/types.js';
import { type Lb, freePort, masq, startLb, tcpService } from '../dataplane/proxy-helpers.js';

/** A small deterministic generator, so a failing run can be replayed with its seed. */
function generator(seed: number): { int(a: number, b: number): number; pick<T>(a: T[]): T } {
  let s = seed;
  const next = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return s / 0x80000000;
  };
  return {
    int: (a, b) => a + Math.floor(next() * (b - a + 1)),
    pick: (a) => a[Math.floor(next() * a.length)]!,
  };
}

interface Broken {
  why: string;
  svcPort: number;
  scheduler: string;
  got: number;
  total: number;
}

interface EchoServer {
  port: number;
  close(): void;
}

/** A TCP echo server (it ends after the client, sometimes a little later) with a UDP echo beside. */
async function echoServer(lateFin: boolean): Promise<EchoServer> {
  const tcp = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('data', (d: Buffer) => c.write(d));
    c.on('end', () => (lateFin ? setTimeout(() => c.end(), 30) : c.end()));
    c.on('error', () => {});
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  const port = (tcp.address() as net.AddressInfo).port;
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', () => r()));
  udp.on('message', (m, from) => udp.send(m, from.port, from.address));
  return {
    port,
    close: () => {
      tcp.close();
      udp.close();
    },
  };
}

describe('proxy data plane under configuration churn', () => {
  let lb: Lb;
  const servers: EchoServer[] = [];
  before(async () => {
    lb = await startLb({ maxConns: 20_000 });
    for (let i = 0; i < 3; i++) servers.push(await echoServer(i === 2));
  });
  after(async () => {
    await lb.close();
    for (const s of servers) s.close();
  });

  it('resets no connection that is under way, and leaves no active connection behind', async () => {
    const rnd = generator(20261207);
    const run = (c: Parameters<Lb['ctl']['run']>[0]): void => {
      try {
        lb.ctl.run(c);
      } catch {
        // refused edits (a threshold below its lower one, a destination mid re-add) change nothing
      }
    };
    const addAll = (svc: ServiceSpec, weight = (): number => 1): void => {
      for (const s of servers) run({ cmd: 'newDest', service: svc, dest: masq(s.port, weight()) });
    };
    const tcp: ServiceSpec[] = [];
    for (const [sched, extra] of [
      ['rr', {}],
      ['wlc', { flags: 1, timeout: 3 }],
      ['lc', {}],
    ] as const) {
      const svc = tcpService(await freePort(), sched, extra);
      run({ cmd: 'newService', service: svc });
      addAll(svc, () => rnd.int(1, 3));
      tcp.push(svc);
    }
    const udp: ServiceSpec[] = [];
    for (const flags of [0, 4 /* one-packet */]) {
      const svc: ServiceSpec = {
        ...tcpService(await freePort(true), 'rr', { flags }),
        protocol: 17,
      };
      run({ cmd: 'newService', service: svc });
      addAll(svc);
      udp.push(svc);
    }
    const schedulers = ['rr', 'wrr', 'lc', 'wlc', 'sh', 'mh', 'sed', 'nq', 'lblc', 'fo', 'ovf'];
    const edits: (() => void)[] = [
      () =>
        run({
          cmd: 'setDest',
          service: rnd.pick(tcp),
          dest: masq(rnd.pick(servers).port, rnd.int(0, 4)),
        }),
      () =>
        run({
          cmd: 'setDest',
          service: rnd.pick(tcp),
          dest: masq(rnd.pick(servers).port, rnd.int(1, 3), {
            uThreshold: rnd.pick([0, 0, 2, 5, 20]),
            lThreshold: rnd.pick([0, 1]),
          }),
        }),
      () => {
        const i = rnd.int(0, tcp.length - 1);
        const persistent = rnd.int(0, 1) === 1;
        tcp[i] = {
          ...tcp[i]!,
          scheduler: rnd.pick(schedulers),
          flags: persistent ? 1 : 0,
          timeout: persistent ? rnd.int(1, 5) : 0,
        };
        run({ cmd: 'setService', service: tcp[i]! });
      },
      () =>
        run({
          cmd: 'setConfig',
          timeouts: {
            tcp: rnd.pick([0, 30, 900]),
            tcpfin: rnd.pick([0, 2, 120]),
            udp: rnd.pick([0, 1, 300]),
          },
        }),
      () => run({ cmd: 'zero' }),
      () => run({ cmd: 'setSysctl', name: 'conn_reuse_mode', value: rnd.int(0, 3) }),
      () => {
        const svc = rnd.pick(tcp);
        const port = rnd.pick(servers).port;
        run({ cmd: 'delDest', service: svc, dest: { addr: '127.0.0.1', port } });
        setTimeout(
          () => run({ cmd: 'newDest', service: svc, dest: masq(port, rnd.int(1, 3)) }),
          rnd.int(0, 300),
        );
      },
      () => {
        const svc = rnd.pick(tcp);
        run({ cmd: 'delService', service: svc });
        run({ cmd: 'newService', service: svc });
        addAll(svc);
      },
      () => {
        const svc = rnd.pick(udp);
        run({ cmd: 'delService', service: svc });
        run({ cmd: 'newService', service: svc });
        addAll(svc);
      },
      () => {
        const s = dgram.createSocket('udp4');
        s.on('error', () => {});
        const port = rnd.pick(udp).port;
        s.bind(0, '127.0.0.1', () => {
          for (let i = rnd.int(1, 5); i > 0; i--) s.send('x', port, '127.0.0.1');
          setTimeout(() => s.close(), 300);
        });
      },
      () => run({ cmd: 'getConns' }),
    ];
    const localPorts = Array.from({ length: 30 }, (_, i) => 41_000 + i);
    const broken: Broken[] = [];
    let ok = 0;
    let stopping = false;

    const client = (): Promise<void> =>
      new Promise((resolve) => {
        const svc = rnd.pick(tcp);
        const opts: net.NetConnectOpts = { host: '127.0.0.1', port: svc.port, allowHalfOpen: true };
        if (rnd.int(0, 9) < 3)
          Object.assign(opts, { localAddress: '127.0.0.1', localPort: rnd.pick(localPorts) });
        const sizes = Array.from({ length: rnd.int(1, 4) }, () =>
          rnd.int(1, rnd.int(0, 4) === 0 ? 200_000 : 3000),
        );
        const total = sizes.reduce((a, b) => a + b, 0);
        const abort = rnd.int(0, 19) === 0;
        const pauses = sizes.map(() =>
          rnd.int(0, 1) ? 0 : rnd.int(0, 6) === 0 ? rnd.int(100, 600) : rnd.int(0, 30),
        );
        let got = 0;
        let done = false;
        const c = net.connect(opts);
        const finish = (why: string | null): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (why === null) ok++;
          else if (why !== '')
            broken.push({ why, svcPort: svc.port, scheduler: svc.scheduler, got, total });
          c.destroy();
          resolve();
        };
        const timer = setTimeout(() => finish('no FIN within 20 s'), 20_000);
        c.on('connect', async () => {
          for (let i = 0; i < sizes.length && !done; i++) {
            c.write(Buffer.alloc(sizes[i]!, 97));
            if (pauses[i]) await new Promise((r) => setTimeout(r, pauses[i]));
          }
          if (done) return;
          if (!abort) c.end();
          else {
            c.resetAndDestroy();
            finish('');
          }
        });
        c.on('data', (d: Buffer) => (got += d.length));
        c.on('end', () => finish(got === total ? null : `FIN after ${got} of ${total} bytes`));
        c.on('error', (e: NodeJS.ErrnoException) => {
          // a fixed local port still in use, or a client refused before any byte came back
          if (e.code === 'EADDRINUSE' || e.code === 'EADDRNOTAVAIL') finish('');
          else if (got === 0 && (e.code === 'ECONNRESET' || e.code === 'ECONNREFUSED')) finish('');
          else finish(e.code ?? e.message);
        });
        c.on('close', () => finish(`closed after ${got} of ${total} bytes`));
      });

    const editing = setInterval(() => rnd.pick(edits)(), 40);
    const workers = Array.from({ length: 24 }, async () => {
      while (!stopping) await client();
    });
    await new Promise((r) => setTimeout(r, 8000));
    stopping = true;
    clearInterval(editing);
    await Promise.all(workers);
    assert.deepEqual(broken.slice(0, 10), [], `${broken.length} connections broken under way`);
    assert.ok(ok >= 300, `only ${ok} connections completed`);

    // every client has closed: no entry is active, every destination's ActiveConn is 0
    await new Promise((r) => setTimeout(r, 300));
    const states = new Set(lb.ctl.run({ cmd: 'getConns' }).map((c) => c.stateName));
    for (const s of ['ESTABLISHED', 'SYN_RECV', 'CLOSE_WAIT', 'FIN_WAIT'])
      assert.ok(!states.has(s), `an entry is left in ${s}: ${[...states].join(' ')}`);
    for (const svc of tcp) {
      for (const d of lb.ctl.run({ cmd: 'getDests', service: svc }))
        assert.equal(d.activeConns, 0, `ActiveConn of ${d.port} behind ${svc.port}`);
    }
  });
});
