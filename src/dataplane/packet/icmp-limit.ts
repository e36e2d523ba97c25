/**
 * The host's ICMP rate limits, which the director's own ICMP errors go through in the kernel
 * (IPVS calls icmp_send / icmpv6_send): a global credit of `msgsPerSec` messages per second up to
 * `msgsBurst` (icmp_global_allow; each message sent then takes 0, 1 or 2 credits at random,
 * icmp_global_consume), and per destination host a token bucket of one message per `ratelimitMs`
 * (IPv4) or `ratelimit6Ms` (IPv6) with a burst of six (inet_peer_xrlim_allow; a host not seen
 * before starts with the full burst). Only the types in the rate mask are limited: IPv4
 * destination unreachable except fragmentation needed, source quench, time exceeded, parameter
 * problem (icmp_ratemask 0x1818); IPv6 every error but packet too big (ratemask 0-1,3-127), at
 * net.ipv6.icmp.ratelimit's 100 ms whatever the route's prefix (icmpv6_xrlim_allow since
 * commit 0201eedb69b2, which dropped the interval's scaling by prefix and the 1 s default).
 * Echo replies are never limited. Hosts are kept in a fixed table of `peers` slots; a
 * host that loses its slot to another starts afresh, as an expired inet_peer entry does.
 */
const AF_INET6 = 10;
const BURST_FACTOR = 6;

/** Settings, the kernel's defaults when omitted. */
export interface IcmpLimitOptions {
  /** icmp_msgs_per_sec (default 1000; 0 disables the global limit). */
  msgsPerSec?: number;
  /** icmp_msgs_burst (default 50). */
  msgsBurst?: number;
  /** icmp_ratelimit, ms (default 1000; 0 disables the per-host limit for IPv4). */
  ratelimitMs?: number;
  /** net.ipv6.icmp.ratelimit, ms (default 100; 0 disables the per-host limit for IPv6). */
  ratelimit6Ms?: number;
  /** icmp_ratemask (default 0x1818). */
  ratemask?: number;
  /** Host slots (default 4096, a power of two). */
  peers?: number;
}

/** ICMP rate limiting of one engine. */
export class IcmpLimit {
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #perSec: number;
  readonly #burst: number;
  readonly #rate: number;
  readonly #rate6: number;
  readonly #mask: number;
  #credit = 0;
  #stamp: number;
  /** Per host slot: the address (4 words), then the tokens and the last time, ms. */
  readonly #addr: Uint32Array;
  readonly #used: Uint8Array;
  readonly #tokens: Float64Array;
  readonly #last: Float64Array;
  readonly #slotMask: number;
  /** Messages refused by the global / per-host limit (ICMP_MIB_RATELIMITGLOBAL / HOST). */
  limitedGlobal = 0;
  limitedHost = 0;

  constructor(now: () => number, random: () => number, o: IcmpLimitOptions = {}) {
    this.#now = now;
    this.#random = random;
    this.#perSec = o.msgsPerSec ?? 1000;
    this.#burst = o.msgsBurst ?? 50;
    this.#rate = o.ratelimitMs ?? 1000;
    this.#rate6 = o.ratelimit6Ms ?? 100;
    this.#mask = o.ratemask ?? 0x1818;
    let n = 1;
    while (n < (o.peers ?? 4096)) n <<= 1;
    this.#slotMask = n - 1;
    this.#addr = new Uint32Array(4 * n);
    this.#used = new Uint8Array(n);
    this.#tokens = new Float64Array(n);
    this.#last = new Float64Array(n);
    // the first message finds a whole second's credit (the stamp starts a second back)
    this.#stamp = now() - 1000;
  }

  /**
   * Whether an ICMP message of `type`/`code` to `dst` (family `af`) may go now; when it may and
   * is limited, its cost is taken.
   */
  allow(af: number, type: number, code: number, dst: ArrayLike<number>): boolean {
    if (!this.#limited(af, type, code)) return true;
    if (!this.#globalAllow()) {
      this.limitedGlobal++;
      return false;
    }
    const tmo = af === AF_INET6 ? this.#rate6 : this.#rate;
    if (tmo > 0 && !this.#hostAllow(af, dst, tmo)) {
      this.limitedHost++;
      return false;
    }
    // icmp_global_consume: 0, 1 or 2 credits (may go below zero)
    if (this.#perSec > 0) this.#credit -= this.#random() % 3;
    return true;
  }

  #limited(af: number, type: number, code: number): boolean {
    if (af === AF_INET6) return type !== 2 && type < 128;
    if (type > 18) return false;
    // path MTU discovery is never limited
    if (type === 3 && code === 4) return false;
    return ((1 << type) & this.#mask) !== 0;
  }

  #globalAllow(): boolean {
    if (this.#perSec <= 0) return true;
    if (this.#credit > 0) return true;
    const now = this.#now();
    const delta = Math.min(now - this.#stamp, 1000);
    if (delta < 20) return false;
    const incr = Math.floor((this.#perSec * delta) / 1000);
    if (incr === 0) return false;
    this.#stamp = now;
    this.#credit = Math.min(this.#credit + incr, this.#burst);
    return true;
  }

  #hostAllow(af: number, a: ArrayLike<number>, tmo: number): boolean {
    const w0 = a[0]! >>> 0;
    const v6 = af === AF_INET6;
    const w1 = v6 ? a[1]! >>> 0 : 0;
    const w2 = v6 ? a[2]! >>> 0 : 0;
    const w3 = v6 ? a[3]! >>> 0 : 0;
    let h = Math.imul(w0 ^ Math.imul(w1, 0x9e3779b1) ^ Math.imul(w2, 0x85ebca6b) ^ w3, 0x2c1b3c6d);
    h ^= h >>> 15;
    const i = (h ^ (v6 ? 1 : 0)) & this.#slotMask;
    const k = 4 * i;
    const ad = this.#addr;
    const now = this.#now();
    if (
      !this.#used[i] ||
      ad[k] !== w0 ||
      ad[k + 1] !== w1 ||
      ad[k + 2] !== w2 ||
      ad[k + 3] !== w3
    ) {
      ad[k] = w0;
      ad[k + 1] = w1;
      ad[k + 2] = w2;
      ad[k + 3] = w3;
      this.#used[i] = 1;
      this.#tokens[i] = 0;
      // a new host: far enough back that the first message fills the burst
      this.#last[i] = now - 60_000;
    }
    let token = this.#tokens[i]!;
    const delta = now - this.#last[i]!;
    if (delta > 0) {
      this.#last[i] = now;
      token = Math.min(token + delta, BURST_FACTOR * tmo);
    }
    let ok = false;
    if (token >= tmo) {
      token -= tmo;
      ok = true;
    }
    this.#tokens[i] = token;
    return ok;
  }
}
