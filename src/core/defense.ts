/**
 * The memory-pressure defences (spec §3.5), run once a second: drop_entry (drop connections of
 * randomly chosen buckets by the kernel's rules), drop_packet (drop 1/rate of new-connection
 * packets) and the switching of secure_tcp, each in modes 0..3 with the automatic modes flipping
 * between 1 and 2 as available memory crosses amemthresh.
 */
import type { ConnOps } from './conn-ops.js';
import { CONN_F_TEMPLATE, IPPROTO_SCTP, IPPROTO_TCP, SVC_F_ONEPACKET } from './constants.js';
import type { Ipvs } from './ipvs.js';
import {
  SCTP_S_ESTABLISHED,
  SCTP_S_INIT,
  SCTP_S_INIT1,
  TCP_S_ESTABLISHED,
  TCP_S_SYN_RECV,
  TCP_S_SYNACK,
  TEMPLATE_STATE_ASSURED,
} from '../proto/index.js';

/** Defence state of one `Ipvs`. */
export class Defense {
  readonly #ipvs: Ipvs;
  readonly #ops: ConnOps;
  /** drop_packet: drop one in `dropRate` new connections (0 = off). */
  dropRate = 0;
  #counter = 0;
  /** Whether drop_entry is currently on. */
  dropEntryOn = false;
  readonly #todropCounter = new Int8Array(9);
  readonly #bucket: number[] = [];

  constructor(ipvs: Ipvs, ops: ConnOps) {
    this.#ipvs = ipvs;
    this.#ops = ops;
  }

  /** drop_packet's decision for one new-connection packet (ip_vs_todrop, spec §3.5). */
  todrop(): boolean {
    if (!this.dropRate) return false;
    if (--this.#counter > 0) return false;
    this.#counter = this.dropRate;
    this.#ops.counters.defenseDropPacket++;
    return true;
  }

  /** Once a second (spec §3.5): update the defence modes from available memory, run drop_entry. */
  tick(): void {
    this.updateLevel();
    if (this.dropEntryOn) this.randomDropEntry();
  }

  /**
   * update_defense_level: re-derives drop_entry / drop_packet / secure_tcp from available memory,
   * flipping the automatic modes between 1 and 2. Also run on a write to one of those sysctls.
   */
  updateLevel(): void {
    const ipvs = this.#ipvs;
    const sc = ipvs.sysctl;
    const avail = ipvs.availMemPages();
    const thresh = Math.max(0, sc.amemthresh);
    const nomem = avail < thresh;
    switch (sc.drop_entry) {
      case 0:
        this.dropEntryOn = false;
        break;
      case 1:
        this.dropEntryOn = nomem;
        if (nomem) sc.drop_entry = 2;
        break;
      case 2:
        this.dropEntryOn = nomem;
        if (!nomem) sc.drop_entry = 1;
        break;
      default:
        this.dropEntryOn = true;
    }
    const autoRate = (): number => Math.floor(thresh / Math.max(1, thresh - avail));
    switch (sc.drop_packet) {
      case 0:
        this.dropRate = 0;
        break;
      case 1:
        if (nomem) {
          this.dropRate = this.#counter = autoRate();
          sc.drop_packet = 2;
        } else this.dropRate = 0;
        break;
      case 2:
        if (nomem) this.dropRate = this.#counter = autoRate();
        else {
          this.dropRate = 0;
          sc.drop_packet = 1;
        }
        break;
      default:
        // mode 3 sets only the rate: the countdown carries on (0 in a new namespace, so the
        // first candidate is dropped)
        this.dropRate = sc.am_droprate;
    }
    if (sc.secure_tcp === 1 && nomem) sc.secure_tcp = 2;
    else if (sc.secure_tcp === 2 && !nomem) sc.secure_tcp = 1;
  }

  #todropEntry(h: number): boolean {
    const ipvs = this.#ipvs;
    const t = ipvs.conns;
    const armedAt = ipvs.wheel.expires(h) - t.timeout(h);
    if (ipvs.now() - armedAt < 60_000) return false;
    const i = t.inPkts(h);
    if (i > 8 || i === 0) return false;
    if (--this.#todropCounter[i]! > 0) return false;
    this.#todropCounter[i] = i;
    return true;
  }

  /** drop_entry: visit 1/32 of the buckets at random and drop connections by the spec's rules. */
  randomDropEntry(): void {
    const ipvs = this.#ipvs;
    const t = ipvs.conns;
    const visits = Math.max(1, t.bucketCount >>> 5);
    const list = this.#bucket;
    for (let v = 0; v < visits; v++) {
      t.bucketHandles(ipvs.randomU32(), list);
      for (const h of list) {
        if (t.nControl(h) > 0) continue;
        const f = t.flags(h);
        let drop: boolean;
        if (f & CONN_F_TEMPLATE) {
          // one-packet services first (ip_vs_conn_ops_mode), assured or not; then non-assured
          if ((this.#ops.dest(h)?.svc?.flags ?? 0) & SVC_F_ONEPACKET) drop = this.#todropEntry(h);
          else drop = !(t.state(h) & TEMPLATE_STATE_ASSURED);
        } else if (t.protocol(h) === IPPROTO_TCP) {
          const s = t.state(h);
          drop =
            s === TCP_S_SYN_RECV ||
            s === TCP_S_SYNACK ||
            (s === TCP_S_ESTABLISHED && this.#todropEntry(h));
        } else if (t.protocol(h) === IPPROTO_SCTP) {
          const s = t.state(h);
          drop =
            s === SCTP_S_INIT1 ||
            s === SCTP_S_INIT ||
            (s === SCTP_S_ESTABLISHED && this.#todropEntry(h));
        } else drop = this.#todropEntry(h);
        if (drop) {
          this.#ops.counters.defenseDropEntry++;
          this.#ops.del(h);
        }
      }
    }
  }
}
