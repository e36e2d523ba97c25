/**
 * Statistics counters and the IPVS rate estimator (spec §6). One `Stats` per service, per
 * destination and one global total. Zeroing records a baseline instead of clearing the running
 * counters; the estimator samples every 2 s with the kernel's fixed-point EWMA (weight 1/4).
 */

/** Estimator sampling interval in milliseconds (spec §6.2). */
export const EST_INTERVAL_MS = 2000;
/** The interval is split into this many ticks; each object is sampled in one of them (ip_vs_est.c). */
export const EST_TICKS = 50;
/** One estimator tick: 40 ms. */
export const EST_TICK_MS = EST_INTERVAL_MS / EST_TICKS;

/** A read-out of one stats object: zero-based counters and estimated rates. */
export interface StatsSnapshot {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

/** Counters plus estimator state for one object. All fields are set here so the shape stays stable. */
export class Stats {
  conns = 0;
  inpkts = 0;
  outpkts = 0;
  inbytes = 0;
  outbytes = 0;
  // baselines recorded by zero()
  #zConns = 0;
  #zInpkts = 0;
  #zOutpkts = 0;
  #zInbytes = 0;
  #zOutbytes = 0;
  // estimator: last sampled raw counters and scaled averages (cps/pps ×2^10, bps ×2^5)
  #lastConns = 0;
  #lastInpkts = 0;
  #lastOutpkts = 0;
  #lastInbytes = 0;
  #lastOutbytes = 0;
  avgCps = 0;
  avgInpps = 0;
  avgOutpps = 0;
  avgInbps = 0;
  avgOutbps = 0;
  /** The estimator tick (0..EST_TICKS-1) this object is sampled in, -1 when not estimated. */
  estRow = -1;
  /** Position inside that tick's list. */
  estIdx = -1;

  /** Takes one 2-second estimator sample (spec §6.2). */
  estimate(): void {
    const c = this.conns;
    const ip = this.inpkts;
    const op = this.outpkts;
    const ib = this.inbytes;
    const ob = this.outbytes;
    this.avgCps += Math.floor(((c - this.#lastConns) * 512 - this.avgCps) / 4);
    this.avgInpps += Math.floor(((ip - this.#lastInpkts) * 512 - this.avgInpps) / 4);
    this.avgOutpps += Math.floor(((op - this.#lastOutpkts) * 512 - this.avgOutpps) / 4);
    this.avgInbps += Math.floor(((ib - this.#lastInbytes) * 16 - this.avgInbps) / 4);
    this.avgOutbps += Math.floor(((ob - this.#lastOutbytes) * 16 - this.avgOutbps) / 4);
    this.#lastConns = c;
    this.#lastInpkts = ip;
    this.#lastOutpkts = op;
    this.#lastInbytes = ib;
    this.#lastOutbytes = ob;
  }

  /** Records the current counters as the new zero and resets the estimator (spec §6.1). */
  zero(): void {
    this.#zConns = this.#lastConns = this.conns;
    this.#zInpkts = this.#lastInpkts = this.inpkts;
    this.#zOutpkts = this.#lastOutpkts = this.outpkts;
    this.#zInbytes = this.#lastInbytes = this.inbytes;
    this.#zOutbytes = this.#lastOutbytes = this.outbytes;
    this.avgCps = this.avgInpps = this.avgOutpps = this.avgInbps = this.avgOutbps = 0;
  }

  /** Copies counters, baselines and estimator state from another object (dest resurrection). */
  copyFrom(o: Stats): void {
    const { estRow, estIdx } = this;
    Object.assign(this, o);
    this.estRow = estRow;
    this.estIdx = estIdx;
    this.#zConns = o.#zConns;
    this.#zInpkts = o.#zInpkts;
    this.#zOutpkts = o.#zOutpkts;
    this.#zInbytes = o.#zInbytes;
    this.#zOutbytes = o.#zOutbytes;
    this.#lastConns = o.#lastConns;
    this.#lastInpkts = o.#lastInpkts;
    this.#lastOutpkts = o.#lastOutpkts;
    this.#lastInbytes = o.#lastInbytes;
    this.#lastOutbytes = o.#lastOutbytes;
  }

  /** Zero-based counters and rounded rates, as the control API reports them. */
  snapshot(): StatsSnapshot {
    return {
      conns: this.conns - this.#zConns,
      inpkts: this.inpkts - this.#zInpkts,
      outpkts: this.outpkts - this.#zOutpkts,
      inbytes: this.inbytes - this.#zInbytes,
      outbytes: this.outbytes - this.#zOutbytes,
      cps: Math.floor((this.avgCps + 511) / 1024),
      inpps: Math.floor((this.avgInpps + 511) / 1024),
      outpps: Math.floor((this.avgOutpps + 511) / 1024),
      inbps: Math.floor((this.avgInbps + 15) / 32),
      outbps: Math.floor((this.avgOutbps + 15) / 32),
    };
  }
}

/**
 * The estimator's schedule (ip_vs_est.c): the 2 s interval is split into 50 ticks of 40 ms and
 * every estimated object lives in one tick's list, so each is sampled every 2 s in its own phase.
 * A started object joins the tick just behind the current one: its first sample comes ~2 s
 * after it was created (or re-added from the trash), whatever the phase of the others.
 */
export class Estimator {
  readonly #rows: Stats[][] = Array.from({ length: EST_TICKS }, () => []);
  #row = 0;

  /** Starts estimating `s` (ip_vs_start_estimator); a no-op when it is already estimated. */
  start(s: Stats): void {
    if (s.estRow >= 0) return;
    const r = (this.#row + EST_TICKS - 1) % EST_TICKS;
    const list = this.#rows[r]!;
    s.estRow = r;
    s.estIdx = list.length;
    list.push(s);
  }

  /** Stops estimating `s` (ip_vs_stop_estimator): its rates stay as they were. */
  stop(s: Stats): void {
    if (s.estRow < 0) return;
    const list = this.#rows[s.estRow]!;
    const last = list.pop()!;
    if (last !== s) {
      list[s.estIdx] = last;
      last.estIdx = s.estIdx;
    }
    s.estRow = s.estIdx = -1;
  }

  /** One 40 ms tick: samples the objects of the current tick when `run` (run_estimation) is set. */
  tick(run: boolean): void {
    const list = this.#rows[this.#row]!;
    this.#row = (this.#row + 1) % EST_TICKS;
    if (!run) return;
    for (let i = 0; i < list.length; i++) list[i]!.estimate();
  }
}
