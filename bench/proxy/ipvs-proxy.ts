/**
 * The ipvs-ts side of the end-to-end proxy benchmark: one process, one thread, the proxy data
 * plane with one rr TCP service per `VIP_PORT:REAL_PORT` argument (all on 127.0.0.1, Masq).
 * Prints `ready` on stdout once listening; stops on SIGTERM. Configured as `ipvs daemon` runs:
 * the JIT budgets of src/cli/jit.ts (unless IPVS_JIT_DEFAULTS=1) and the connection table on
 * huge pages.
 */
import { tuneJit } from '../../src/cli/jit.js';
import { Ipvs } from '../../src/core/ipvs.js';
import { hugeTableAlloc } from '../../src/dataplane/io/native.js';
import { Controller } from '../../src/ctl/controller.js';
import { ProxyDataplane } from '../../src/dataplane/proxy/index.js';

tuneJit();
const ipvs = new Ipvs({ log: () => {}, tableAlloc: hugeTableAlloc() });
const plane = new ProxyDataplane({ maxConns: 200_000, log: () => {} });
const ctl = new Controller(ipvs, { plane });
await plane.start(ipvs);
const tick = setInterval(() => ipvs.tick(), 100);
for (const arg of process.argv.slice(2)) {
  const [vport, rport] = arg.split(':').map(Number) as [number, number];
  const service = {
    af: 2 as const,
    protocol: 6,
    addr: '127.0.0.1',
    port: vport,
    fwmark: 0,
    scheduler: 'rr',
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    pe: '',
  };
  ctl.run({ cmd: 'newService', service });
  ctl.run({
    cmd: 'newDest',
    service,
    dest: {
      addr: '127.0.0.1',
      port: rport,
      fwd: 0,
      weight: 1,
      uThreshold: 0,
      lThreshold: 0,
      tunType: 0,
      tunPort: 0,
      tunFlags: 0,
    },
  });
}
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  clearInterval(tick);
  void plane.stop(0).then(() => process.exit(0));
});
