/**
 * The data-plane plug-in interface. A daemon runs one data plane (`proxy`, `packet` or `none`);
 * every configuration command passes through it: `validate` may refuse a command with a coded
 * error before core applies it (e.g. the proxy plane refusing DR destinations), `apply` runs after
 * core has applied it (open or close listeners, …). `none` is the control-only plane.
 */
import type { Ipvs } from '../core/ipvs.js';
import type { AppInfo } from '../metrics/proc.js';
import type { PlaneMetric } from '../metrics/prometheus.js';
import type { Command } from './types.js';

/** A data plane, as the daemon drives it. */
export interface Dataplane {
  /** Name used by `ipvs daemon --dataplane`. */
  readonly name: string;
  /** Starts the plane on an Ipvs instance (after the saved state and rules were applied). */
  start(ipvs: Ipvs): Promise<void>;
  /** Throws a coded IpvsError to refuse `cmd`; must not change anything. */
  validate(cmd: Command, ipvs: Ipvs): void;
  /** Called after core applied `cmd` successfully. */
  apply(cmd: Command, ipvs: Ipvs): void;
  /** Stops the plane: closes listeners, drains connections until the deadline. */
  stop(deadlineMs: number): Promise<void>;
  /** Its application helpers' incarnations (ip_vs_app); absent or empty when it has none. */
  apps?(): AppInfo[];
  /** Its counters as one log line (the daemon logs it on SIGUSR2); absent when it keeps none. */
  counterLine?(): string;
  /** Its own figures for `/metrics`; absent when it has none. */
  metrics?(): PlaneMetric[];
}

/** Control only: accepts everything, forwards nothing. */
export class NoneDataplane implements Dataplane {
  readonly name = 'none';
  async start(): Promise<void> {}
  validate(): void {}
  apply(): void {}
  async stop(): Promise<void> {}
}
