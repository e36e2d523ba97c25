/**
 * What a front end talks to: something that executes control commands and returns their results,
 * either in-process (an `Ipvs` instance through `execute`) or across the control socket. Errors
 * arrive as coded `IpvsError`s either way.
 */
import type { Sysctls } from '../core/sysctl.js';
import type {
  Command,
  ConnInfo,
  DaemonSpec,
  DestInfo,
  Info,
  ServiceInfo,
  Timeouts,
} from './types.js';

/** The result type of each command. */
export interface ResultMap {
  newService: null;
  setService: null;
  delService: null;
  getService: ServiceInfo;
  getServices: ServiceInfo[];
  newDest: null;
  setDest: null;
  delDest: null;
  getDests: DestInfo[];
  flush: null;
  zero: null;
  setConfig: null;
  getConfig: Timeouts;
  getInfo: Info;
  getConns: ConnInfo[];
  getConnsPage: { conns: ConnInfo[]; next: number };
  newDaemon: null;
  delDaemon: null;
  getDaemons: DaemonSpec[];
  setSysctl: null;
  getSysctls: Sysctls;
  setFwmarkRules: null;
  getFwmarkRules: string[];
}

/** Result of a command `C`. */
export type ResultOf<C extends Command> = ResultMap[C['cmd']];

/** Executes control commands. */
export interface CtlBackend {
  call<C extends Command>(cmd: C): Promise<ResultOf<C>>;
  /** Releases the connection, if any. */
  close(): void;
}

/** Commands that change configuration (and so are persisted to the state file). */
export const MUTATING: ReadonlySet<Command['cmd']> = new Set<Command['cmd']>([
  'newService',
  'setService',
  'delService',
  'newDest',
  'setDest',
  'delDest',
  'flush',
  'setConfig',
  'newDaemon',
  'delDaemon',
  'setSysctl',
  'setFwmarkRules',
]);

/** Every command name. */
export const COMMAND_NAMES: ReadonlySet<string> = new Set<Command['cmd']>([
  ...MUTATING,
  'getService',
  'getServices',
  'getDests',
  'zero',
  'getConfig',
  'getInfo',
  'getConns',
  'getConnsPage',
  'getDaemons',
  'getSysctls',
  'getFwmarkRules',
]);
