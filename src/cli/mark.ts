/**
 * `ipvs mark`: the fwmark classifier rules of the daemon — the firewall marks the kernel's fwmark
 * services would see (`iptables -j MARK` in front of IPVS). The packet data plane marks every
 * packet with the first rule that matches it; other planes keep the rules with the configuration.
 *
 *   ipvs mark [--control PATH] list | flush | add 'RULE' [...] | del N | set FILE|-
 *
 * A rule: `[proto tcp|udp|sctp|N] [src CIDR] [dst CIDR] [sport P] [dport P] mark M`, where P is a
 * port, a range `lo-hi` or a comma list of those.
 */
import { readFileSync } from 'node:fs';
import { IpvsError } from '../core/errors.js';
import type { CtlBackend } from '../ctl/backend.js';
import { ControlClient } from '../ctl/client.js';
import { controlPath } from '../ctl/paths.js';
import { splitControl } from './adm.js';

/** Where `runMark` writes and how it reaches the daemon (tests pass their own). */
export interface MarkIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  readStdin?: () => Promise<string>;
  backend?: () => Promise<CtlBackend>;
}

const USAGE =
  "Usage: ipvs mark [--control PATH] list | flush | add 'RULE' [...] | del N | set FILE|-\n" +
  '  RULE: [proto tcp|udp|sctp|N] [src CIDR] [dst CIDR] [sport P] [dport P] mark M\n';

/** Rules of a text (one per line, `#` comments). */
function rulesOf(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/** Runs `ipvs mark`; resolves with the exit status (0 ok, 1 refused, 2 usage). */
export async function runMark(args: readonly string[], io?: MarkIo): Promise<number> {
  const out = io?.stdout ?? process.stdout;
  const err = io?.stderr ?? process.stderr;
  const { control, rest } = splitControl(args);
  const [verb, ...params] = rest;
  const usage = (): number => {
    err.write(USAGE);
    return 2;
  };
  if (!verb || verb === '-h' || verb === '--help') {
    if (verb) {
      out.write(USAGE);
      return 0;
    }
    return usage();
  }
  if (!['list', 'flush', 'add', 'del', 'set'].includes(verb)) return usage();
  if ((verb === 'list' || verb === 'flush') && params.length) return usage();
  if ((verb === 'del' || verb === 'set') && params.length !== 1) return usage();
  if (verb === 'add' && params.length === 0) return usage();
  if (verb === 'del' && !/^[1-9][0-9]{0,8}$/.test(params[0]!)) return usage();
  let backend: CtlBackend | undefined;
  try {
    backend = await (io?.backend ?? (() => ControlClient.connect(controlPath(control))))();
    const current = await backend.call({ cmd: 'getFwmarkRules' });
    let next: string[];
    switch (verb) {
      case 'list':
        current.forEach((r, i) => out.write(`${i + 1}: ${r}\n`));
        return 0;
      case 'flush':
        next = [];
        break;
      case 'add':
        next = [...current, ...params];
        break;
      case 'del': {
        const n = Number(params[0]);
        if (n > current.length) {
          const has = current.length === 1 ? 'is 1' : `are ${current.length}`;
          err.write(`ipvs mark: IPVS_ERR_PKT_RULE: no rule ${n} (there ${has})\n`);
          return 1;
        }
        next = current.filter((_, i) => i !== n - 1);
        break;
      }
      default: {
        const file = params[0]!;
        let text: string;
        try {
          text =
            file === '-'
              ? await (io?.readStdin ?? (() => Promise.resolve(readFileSync(0, 'utf8'))))()
              : readFileSync(file, 'utf8');
        } catch (e) {
          const why = (e as NodeJS.ErrnoException).code ?? String(e);
          err.write(`ipvs mark: IPVS_ERR_STATE_FILE: cannot read rules file ${file}: ${why}\n`);
          return 1;
        }
        next = rulesOf(text);
      }
    }
    await backend.call({ cmd: 'setFwmarkRules', rules: next });
    return 0;
  } catch (e) {
    const why =
      e instanceof IpvsError
        ? `${e.code}: ${e.message}`
        : e instanceof Error
          ? e.message
          : String(e);
    err.write(`ipvs mark: ${why}\n`);
    return 1;
  } finally {
    backend?.close();
  }
}
