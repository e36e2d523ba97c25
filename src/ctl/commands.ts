/**
 * The single place control commands are applied: `execute(ipvs, cmd, plane?)` checks the command's
 * shape, lets the data plane refuse it, applies it to core and lets the data plane follow. Every
 * front end (ipvs adm, rules files, the state file, later REST and keepalived import) ends here.
 */
import type { Ipvs } from '../core/ipvs.js';
import type { ResultOf } from './backend.js';
import type { Dataplane } from './dataplane.js';
import { BadRequestError } from './errors.js';
import type { Command } from './types.js';
import { validateCommand } from './validate.js';
import { checkFwmarkRules } from '../dataplane/packet/classifier.js';
import { connInfosPage } from '../core/snapshot.js';

/** Applies one command and returns its result. Throws coded errors; state is unchanged on error. */
export function execute<C extends Command>(ipvs: Ipvs, cmd: C, plane?: Dataplane): ResultOf<C> {
  validateCommand(cmd);
  plane?.validate(cmd, ipvs);
  const result = apply(ipvs, cmd);
  plane?.apply(cmd, ipvs);
  return result as ResultOf<C>;
}

function apply(ipvs: Ipvs, c: Command): unknown {
  switch (c.cmd) {
    case 'newService':
      ipvs.addService(c.service);
      return null;
    case 'setService':
      ipvs.editService(c.service);
      return null;
    case 'delService':
      ipvs.delService(c.service);
      return null;
    case 'getService':
      return ipvs.getService(c.service);
    case 'getServices':
      return ipvs.listServices();
    case 'newDest':
      ipvs.addDest(c.service, c.dest);
      return null;
    case 'setDest':
      ipvs.editDest(c.service, c.dest);
      return null;
    case 'delDest':
      ipvs.delDest(c.service, c.dest);
      return null;
    case 'getDests':
      return ipvs.getService(c.service).dests;
    case 'flush':
      ipvs.flush();
      return null;
    case 'zero':
      ipvs.zero(c.service);
      return null;
    case 'setConfig':
      ipvs.setTimeouts(c.timeouts);
      return null;
    case 'getConfig':
      return ipvs.getTimeouts();
    case 'getInfo':
      return ipvs.info();
    case 'getConns':
      return ipvs.listConns();
    case 'getConnsPage':
      return connInfosPage(ipvs, c.from, c.max);
    case 'newDaemon':
      ipvs.startDaemon(c.daemon);
      return null;
    case 'delDaemon':
      ipvs.stopDaemon(c.state);
      return null;
    case 'getDaemons':
      return ipvs.listDaemons();
    case 'setSysctl':
      ipvs.setSysctl(c.name, c.value);
      return null;
    case 'getSysctls':
      return ipvs.getSysctls();
    case 'setFwmarkRules':
      // every rule must be valid (coded IPVS_ERR_PKT_RULE otherwise) before any is stored
      checkFwmarkRules(c.rules);
      ipvs.fwmarkRules = c.rules.map((r) => r.trim().replace(/\s+/g, ' '));
      return null;
    case 'getFwmarkRules':
      return [...ipvs.fwmarkRules];
    default:
      throw new BadRequestError(`unknown command '${String((c as { cmd: unknown }).cmd)}'`);
  }
}
