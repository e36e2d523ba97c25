/**
 * The packet data plane (issue 6): IPVS's packet path in user space over frame I/O. The engine
 * (`PacketEngine`), its network model, neighbours, hook chain, transmitters, FTP helper, fwmark
 * classifier and tracer, and `PacketDataplane` for the daemon. See docs/packet-engine.md.
 */
export { PacketEngine, type EngineOptions } from './engine.js';
export { PacketDataplane, type PacketDataplaneOptions, type PlaneIface } from './plane.js';
export {
  NetModel,
  Iface,
  RouteResult,
  parseCidr,
  parseMac,
  type IfaceSpec,
  type RouteSpec,
  type VipSpec,
} from './net.js';
export { Neigh, NUD, NUD_NAMES, type NeighOptions } from './neigh.js';
export {
  HookChain,
  HOOK,
  HOOK_NAMES,
  NF,
  NF_NAMES,
  PRI,
  MAX_REPEAT,
  type HookFn,
} from './hooks.js';
export { Classifier, parseFwmarkRule, parseFwmarkRules, type FwmarkRule } from './classifier.js';
export { Counters, R, REASON_NAMES } from './counters.js';
export { FtpHelper, FTP_PORTS_DEFAULT } from './ftp.js';
export { Pkt, type Tracer } from './ctx.js';
export { TraceRecorder, describeFrame } from './trace.js';
export * from './errors.js';
