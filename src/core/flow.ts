/**
 * The facts about a packet (or a new proxied connection) that core needs to decide where it goes.
 * Callers own one `Flow` and refill it per packet; nothing here allocates.
 */
import { AF_INET, type Af } from './addr.js';

/** A packet's addressing, as seen by IPVS's `in` handler. */
export class Flow {
  /** Address family of the packet. */
  af: Af = AF_INET;
  /** IP protocol number (6, 17, 132). */
  protocol = 0;
  /** Source address (the client, for client → VIP packets). */
  readonly saddr = new Uint32Array(4);
  /** Source port. */
  sport = 0;
  /** Destination address (the VIP). */
  readonly daddr = new Uint32Array(4);
  /** Destination port. */
  dport = 0;
  /** Packet mark (fwmark), 0 when none. */
  fwmark = 0;
  /**
   * True for the embedded header of an ICMP error, looked up "inverse": the client is then the
   * packet's destination (spec §2.12, §4.5).
   */
  inverse = false;
  /** L3 length of the packet, for statistics. */
  length = 0;
  /** The transport payload (UDP data), for persistence engines that read it (SIP); null if none. */
  payload: Uint8Array | null = null;
  payloadOffset = 0;
  payloadLength = 0;

  /** Sets every field at once; addresses are four-word host-order arrays (IPv4 in word 0). */
  set(
    af: Af,
    protocol: number,
    saddr: ArrayLike<number>,
    sport: number,
    daddr: ArrayLike<number>,
    dport: number,
    fwmark = 0,
  ): this {
    this.af = af;
    this.protocol = protocol;
    for (let i = 0; i < 4; i++) {
      this.saddr[i] = saddr[i] ?? 0;
      this.daddr[i] = daddr[i] ?? 0;
    }
    this.sport = sport;
    this.dport = dport;
    this.fwmark = fwmark;
    this.inverse = false;
    this.payload = null;
    this.payloadOffset = 0;
    this.payloadLength = 0;
    return this;
  }

  /** Sets the transport payload, `buf[off, off+len)`, after `set`. */
  withPayload(buf: Uint8Array, off: number, len: number): this {
    this.payload = buf;
    this.payloadOffset = off;
    this.payloadLength = len;
    return this;
  }
}
