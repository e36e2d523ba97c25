/**
 * The destination trash (spec §1.5): deleted destinations stay here while connections still point
 * at them, and can be resurrected with their counters when re-added to the same service. A sweep
 * every 60 s frees entries that have had no references for 120 s.
 */
import { addrEqual } from './addr.js';
import type { Dest, Service } from './service.js';

/** Sweep interval and idle period, milliseconds. */
export const TRASH_SWEEP_MS = 60_000;
export const TRASH_PERIOD_MS = 120_000;

/** Deleted destinations awaiting reuse or release. */
export class DestTrash {
  readonly #items: Dest[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** Adds a destination that was just unlinked. */
  put(d: Dest): void {
    d.idleSince = -1;
    this.#items.push(d);
  }

  /**
   * Takes back a trashed destination with the same identity whose old service had the same
   * fwmark and protocol and, for non-fwmark services, the same virtual address and port
   * (ip_vs_trash_get_dest: the old service's family is not compared), or returns null. The
   * caller zeroes its statistics when that old service is not `svc` itself. The most recently
   * deleted match wins: the kernel adds to the head of its trash list and searches from there.
   */
  take(svc: Service, daf: number, addr: ArrayLike<number>, port: number): Dest | null {
    for (let i = this.#items.length - 1; i >= 0; i--) {
      const d = this.#items[i]!;
      const old = d.svc;
      if (
        d.af === daf &&
        d.port === port &&
        addrEqual(daf, d.addr, addr) &&
        old !== null &&
        old.fwmark === svc.fwmark &&
        old.protocol === svc.protocol &&
        (svc.fwmark !== 0 || (old.port === svc.port && addrEqual(svc.af, old.addr, svc.addr)))
      ) {
        this.#items.splice(i, 1);
        d.idleSince = -1;
        return d;
      }
    }
    return null;
  }

  /** One sweep: returns the destinations to free (unreferenced and idle for the trash period). */
  sweep(now: number): Dest[] {
    const freed: Dest[] = [];
    for (let i = this.#items.length - 1; i >= 0; i--) {
      const d = this.#items[i]!;
      if (d.refs > 0) continue;
      if (d.idleSince < 0) {
        d.idleSince = now;
        continue;
      }
      if (now - d.idleSince < TRASH_PERIOD_MS) continue;
      this.#items.splice(i, 1);
      freed.push(d);
    }
    return freed;
  }

  /** Frees everything unreferenced right away (flush / shutdown). */
  drain(): Dest[] {
    const freed = this.#items.filter((d) => d.refs === 0);
    for (const d of freed) this.#items.splice(this.#items.indexOf(d), 1);
    return freed;
  }
}
