/**
 * Data planes by name, as `ipvs daemon --dataplane NAME` selects them. Each entry loads its plane
 * lazily so the daemon only pays for the plane it runs.
 */
import type { Dataplane } from '../ctl/dataplane.js';

/** Factories of the data planes implemented under src/dataplane. */
export const DATAPLANE_FACTORIES: Record<string, () => Promise<Dataplane>> = {
  proxy: async () => new (await import('./proxy/index.js')).ProxyDataplane(),
};
