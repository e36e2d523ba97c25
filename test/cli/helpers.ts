/** Runs `ipvs adm` in-process against a fresh Ipvs and captures its output. */
import { Ipvs } from '../../src/core/ipvs.js';
import { runAdm } from '../../src/cli/adm/run.js';
import { StaticResolver } from '../../src/cli/adm/netdb.js';
import { localBackend } from '../../src/ctl/controller.js';
import type { CtlBackend } from '../../src/ctl/backend.js';

export const SERVICES = [
  'http 80/tcp www',
  'http 80/udp',
  'domain 53/tcp',
  'domain 53/udp',
  'https 443/tcp',
  'http-alt 8080/tcp',
  'sip 5060/udp',
].join('\n');

export const RESOLVER = new StaticResolver({
  hosts: { 'vip.example': '10.0.0.1', 'rs1.example': '192.168.1.10', localhost: '127.0.0.1' },
  names: { '10.0.0.1': 'vip.example', '192.168.1.10': 'rs1.example' },
  services: SERVICES,
});

export interface AdmResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** An in-process ipvsadm bound to one Ipvs. */
export class Adm {
  readonly ipvs: Ipvs;
  readonly backend: CtlBackend;

  constructor(ipvs = new Ipvs({ log: () => {} })) {
    this.ipvs = ipvs;
    this.backend = localBackend(ipvs);
  }

  async run(args: string | string[], stdin = ''): Promise<AdmResult> {
    const argv = typeof args === 'string' ? (args.trim() ? args.trim().split(/\s+/) : []) : args;
    let stdout = '';
    let stderr = '';
    const status = await runAdm(argv, {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      readStdin: async () => stdin,
      backend: this.backend,
      resolver: RESOLVER,
    });
    return { status, stdout, stderr };
  }

  /** `-S -n` output. */
  async save(): Promise<string> {
    return (await this.run('-S -n')).stdout;
  }

  close(): void {
    this.ipvs.close();
  }
}
