/**
 * Data planes by name, as `ipvs daemon --dataplane NAME` selects them. Each entry loads its plane
 * lazily so the daemon only pays for the plane it runs.
 */
import type { Dataplane } from '../ctl/dataplane.js';

/** What the daemon's options give a data plane (planes ignore what they do not use). */
export interface DataplaneArgs {
  /** `--iface IF` (repeatable): the interfaces the packet plane attaches to. */
  ifaces?: readonly string[];
  /** `--route 'DST [via GW] dev IF [mtu N] [src ADDR]'` (repeatable): routes beyond the system's. */
  routes?: readonly string[];
  /** The daemon's log. */
  log?: (msg: string) => void;
  /** `--no-ingress-drop` gives false: the packet plane leaves the kernel's copy of frames alone. */
  ingressDrop?: boolean;
}

/** Factories of the data planes implemented under src/dataplane. */
export const DATAPLANE_FACTORIES: Record<string, (args?: DataplaneArgs) => Promise<Dataplane>> = {
  proxy: async () => new (await import('./proxy/index.js')).ProxyDataplane(),
  packet: async (args = {}) =>
    (await import('./packet/host.js')).HostPacketDataplane.create({
      ifaces: args.ifaces ?? [],
      routes: args.routes ?? [],
      log: args.log,
      ingressDrop: args.ingressDrop,
    }),
};
