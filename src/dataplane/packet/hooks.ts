/**
 * A netfilter-style hook chain (spec §5.1): handlers registered per hook point with a priority,
 * run in ascending priority order, each returning a verdict. ACCEPT continues with the next
 * handler; STOP accepts and skips the rest; DROP, STOLEN and QUEUE end the traversal; REPEAT runs
 * the chain again from its first handler (at most `MAX_REPEAT` times, then DROP, so a looping
 * handler cannot wedge the engine). IPVS's handlers are registered where the kernel places them.
 */

/** Netfilter verdicts (include/uapi/linux/netfilter.h). */
export const NF = { DROP: 0, ACCEPT: 1, STOLEN: 2, QUEUE: 3, REPEAT: 4, STOP: 5 } as const;
/** Verdict names, by value. */
export const NF_NAMES: readonly string[] = ['DROP', 'ACCEPT', 'STOLEN', 'QUEUE', 'REPEAT', 'STOP'];

/** Hook points (NF_INET_*). */
export const HOOK = {
  PRE_ROUTING: 0,
  LOCAL_IN: 1,
  FORWARD: 2,
  LOCAL_OUT: 3,
  POST_ROUTING: 4,
} as const;
/** Hook point names, by value. */
export const HOOK_NAMES: readonly string[] = [
  'PRE_ROUTING',
  'LOCAL_IN',
  'FORWARD',
  'LOCAL_OUT',
  'POST_ROUTING',
];

/** IPVS's priorities (spec §5.1): NF_IP_PRI_NAT_SRC = 100, NF_IP_PRI_NAT_DST = -100. */
export const PRI = {
  IPVS_OUT_LOCAL_IN: 98,
  IPVS_IN_LOCAL_IN: 99,
  IPVS_OUT_LOCAL_OUT: -99,
  IPVS_IN_LOCAL_OUT: -98,
  IPVS_FORWARD_ICMP: 99,
  IPVS_OUT_FORWARD: 100,
} as const;

/** Re-runs of a chain after REPEAT before the frame is dropped. */
export const MAX_REPEAT = 8;

/** A hook handler: gets the packet context, returns an NF verdict. */
export type HookFn<P> = (pkt: P, hook: number) => number;

/** Observer of hook traversal (the tracer). */
export interface HookObserver {
  hook(hook: number, priority: number, name: string, verdict: number): void;
}

interface Entry<P> {
  priority: number;
  name: string;
  fn: HookFn<P>;
}

/** Handlers per hook point, in priority order. */
export class HookChain<P> {
  readonly #chains: Entry<P>[][] = [[], [], [], [], []];
  /** Set by the engine while tracing. */
  observer: HookObserver | null = null;

  /** Registers `fn` at `hook` with `priority` (equal priorities keep registration order). */
  register(hook: number, priority: number, name: string, fn: HookFn<P>): void {
    const c = this.#chains[hook]!;
    let i = c.length;
    while (i > 0 && c[i - 1]!.priority > priority) i--;
    c.splice(i, 0, { priority, name, fn });
  }

  /** Removes every handler named `name`; returns how many were removed. */
  unregister(name: string): number {
    let n = 0;
    for (const c of this.#chains) {
      for (let i = c.length - 1; i >= 0; i--) {
        if (c[i]!.name === name) {
          c.splice(i, 1);
          n++;
        }
      }
    }
    return n;
  }

  /** Number of handlers at `hook`. */
  count(hook: number): number {
    return this.#chains[hook]!.length;
  }

  /** `[priority, name]` of the handlers at `hook`, in order (for docs, trace and tests). */
  list(hook: number): [number, string][] {
    return this.#chains[hook]!.map((e) => [e.priority, e.name]);
  }

  /**
   * Runs the chain of `hook`; returns the final verdict: ACCEPT (every handler accepted, or one
   * said STOP), DROP, STOLEN or QUEUE. `repeatLimit` is reported as -1 (DROP for a loop).
   */
  run(hook: number, pkt: P): number {
    const c = this.#chains[hook]!;
    let repeats = 0;
    for (let i = 0; i < c.length; i++) {
      const e = c[i]!;
      const v = e.fn(pkt, hook);
      if (this.observer) this.observer.hook(hook, e.priority, e.name, v);
      if (v === NF.ACCEPT) continue;
      if (v === NF.STOP) return NF.ACCEPT;
      if (v === NF.REPEAT) {
        if (++repeats > MAX_REPEAT) return -1;
        i = -1;
        continue;
      }
      return v;
    }
    return NF.ACCEPT;
  }
}
