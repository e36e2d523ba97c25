/**
 * The state file (`ipvs daemon --state-file FILE`): the full configuration, rewritten after every
 * acknowledged change and restored at start. Format: JSON
 * `{"format":"ipvs-ts-state","version":1,"commands":[…],"salt":N,"save":"…"}` where `commands` is the list
 * of control commands that rebuilds the configuration on an empty instance (timeouts, changed
 * sysctls, services and their destinations oldest first so list order and scheduling are the same,
 * sync daemons) — including what `ipvsadm -S` cannot express (thresholds, sysctls, daemons,
 * extensions) — and `save` is the same configuration as `ipvsadm -S -n` text, for humans.
 * Writes are atomic and durable: temp file, fsync, rename, fsync of the directory.
 */
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Ipvs } from '../core/ipvs.js';
import { defaultSysctls, type SysctlValue } from '../core/sysctl.js';
import { SVC_F_HASHED } from '../core/constants.js';
import type { Controller } from '../ctl/controller.js';
import { StateFileError } from '../ctl/errors.js';
import { type Command, type ServiceInfo, type ServiceKey, destSpecOf } from '../ctl/types.js';
import { validateCommand } from '../ctl/validate.js';
import { listAll, NO_NAMES } from '../cli/adm/format.js';
import { FMT_NUMERIC, FMT_RULE } from '../cli/adm/options.js';

/** Identifies the file format. */
export const STATE_FORMAT = 'ipvs-ts-state';
/** Current format version. */
export const STATE_VERSION = 1;

/** The parsed state file. */
export interface StateDoc {
  format: typeof STATE_FORMAT;
  version: number;
  commands: Command[];
  save?: string;
  /**
   * The service tables' hash salt: services are hashed into the same buckets after a restart, so
   * unsorted listings (`-L --nosort`, /proc/net/ip_vs) keep their order. Optional.
   */
  salt?: number;
}

/**
 * The commands that rebuild `ipvs`'s configuration on an empty instance (`services`: its
 * `listServices()`, when the caller has it already).
 */
export function snapshot(ipvs: Ipvs, services: ServiceInfo[] = ipvs.listServices()): Command[] {
  const cmds: Command[] = [{ cmd: 'setConfig', timeouts: ipvs.getTimeouts() }];
  const def = defaultSysctls(ipvs.cpus) as unknown as Record<string, unknown>;
  const cur = ipvs.getSysctls() as unknown as Record<string, unknown>;
  for (const [name, value] of Object.entries(cur)) {
    if (JSON.stringify(value) !== JSON.stringify(def[name]))
      cmds.push({ cmd: 'setSysctl', name, value: value as SysctlValue });
  }
  // the core's services, in the same order as their listing (listServices maps this list)
  const cores = ipvs.services.list();
  for (let i = services.length - 1; i >= 0; i--) {
    const s = services[i]!;
    const key: ServiceKey = {
      af: s.af,
      protocol: s.protocol,
      addr: s.addr,
      port: s.port,
      fwmark: s.fwmark,
    };
    cmds.push({
      cmd: 'newService',
      service: {
        ...key,
        scheduler: s.scheduler,
        flags: (s.flags & ~SVC_F_HASHED) >>> 0,
        timeout: s.timeout,
        netmask: s.netmask,
        pe: s.pe,
        ...(s.ext && Object.keys(s.ext).length ? { ext: { ...s.ext } } : {}),
      },
    });
    const core = cores.length === services.length ? cores[i] : ipvs.findService(key);
    for (let j = s.dests.length - 1; j >= 0; j--) {
      const d = s.dests[j]!;
      const dest = destSpecOf(d);
      // a server drained to weight 0 keeps its last weight (mh sizes its share of the table by
      // it, as ip_vs_mh_permutate does): added with that weight, then set to 0
      const last = core?.dests[j]?.lastWeight ?? 0;
      if (d.weight === 0 && last !== 0) {
        cmds.push({ cmd: 'newDest', service: key, dest: { ...dest, weight: last } });
        cmds.push({ cmd: 'setDest', service: key, dest });
      } else cmds.push({ cmd: 'newDest', service: key, dest });
    }
  }
  for (const d of ipvs.listDaemons()) cmds.push({ cmd: 'newDaemon', daemon: d });
  if (ipvs.fwmarkRules.length) cmds.push({ cmd: 'setFwmarkRules', rules: [...ipvs.fwmarkRules] });
  return cmds;
}

/** Serialises the configuration as the state file's text. */
export function stateText(ipvs: Ipvs): string {
  // one listing for both parts (with 20,000 real servers it is a good share of the time)
  const services = ipvs.listServices();
  const doc: StateDoc = {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    commands: snapshot(ipvs, services),
    salt: ipvs.services.salt,
    save: listAll(ipvs.info(), services, FMT_RULE | FMT_NUMERIC, NO_NAMES),
  };
  return `${JSON.stringify(doc, null, 1)}\n`;
}

/** Writes `text` to `path` atomically and durably (temp + fsync + rename + fsync(dir)). */
export function writeFileAtomic(path: string, text: string): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing to clean
    }
    throw e;
  }
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** Writes the state file for `ipvs`. */
export function writeStateFile(path: string, ipvs: Ipvs): void {
  writeFileAtomic(path, stateText(ipvs));
}

/** Parses state-file text; throws StateFileError when it is not a valid state file. */
export function parseState(text: string, where = 'state file'): StateDoc {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new StateFileError(`${where}: not valid JSON (${(e as Error).message})`);
  }
  const d = doc as Partial<StateDoc>;
  if (typeof doc !== 'object' || doc === null || d.format !== STATE_FORMAT)
    throw new StateFileError(`${where}: not an ipvs-ts state file`);
  if (d.version !== STATE_VERSION)
    throw new StateFileError(`${where}: unsupported version ${String(d.version)}`);
  if (!Array.isArray(d.commands)) throw new StateFileError(`${where}: no command list`);
  if (
    d.salt !== undefined &&
    (typeof d.salt !== 'number' || !Number.isInteger(d.salt) || d.salt < 0 || d.salt > 0xffffffff)
  )
    throw new StateFileError(`${where}: salt must be an unsigned 32-bit integer`);
  d.commands.forEach((c, i) => {
    try {
      validateCommand(c);
    } catch (e) {
      throw new StateFileError(`${where}: command ${i + 1}: ${(e as Error).message}`);
    }
  });
  return d as StateDoc;
}

/** Reads a state file; null when it does not exist. */
export function readStateFile(path: string): StateDoc | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateFileError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseState(text, path);
}

/** Applies a state document through a controller; throws StateFileError on the first failure. */
export function applyState(controller: Controller, doc: StateDoc, where = 'state file'): void {
  if (doc.salt !== undefined) controller.ipvs.services.reseed(doc.salt);
  doc.commands.forEach((c, i) => {
    try {
      controller.run(c);
    } catch (e) {
      throw new StateFileError(
        `${where}: command ${i + 1} (${c.cmd}) failed: ${(e as Error).message}`,
      );
    }
  });
}
