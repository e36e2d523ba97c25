/**
 * The way back to a packet's sender, for what the director itself answers (ICMP errors, echo
 * replies, TCP resets): the route toward the sender's address and its next hop, or, when there is
 * no route back, the interface the packet came in on and its sender's MAC (as a host answers the
 * neighbour it heard from). The source address is the packet's destination when that is one of
 * the director's addresses (a VIP answers as itself), otherwise the route's preferred source or
 * the ingress interface's address.
 */
import type { PacketView } from '../../packet/view.js';
import { copyBytes } from './bytes.js';
import type { Iface, NetModel } from './net.js';
import { RouteResult } from './net.js';
import type { Tx } from './tx.js';

const AF_INET6 = 10;

/** Starts reply frames toward a packet's sender. */
export class ReplyPath {
  readonly #net: NetModel;
  readonly #tx: Tx;
  readonly #res = new RouteResult();
  readonly #nh = new Uint32Array(4);
  /** The reply's source address (set by `open`). */
  readonly src = new Uint32Array(4);
  /** The memory the last `open` wrote the Ethernet header into. */
  buf: Uint8Array = new Uint8Array(0);
  #learned = false;

  constructor(net: NetModel, tx: Tx) {
    this.#net = net;
    this.#tx = tx;
  }

  /**
   * Starts a frame of `ipLen` bytes of IP toward the sender of the packet in `v` (received on
   * `ingress`): writes the Ethernet header into `this.buf` and returns the IP header's offset
   * there, or -1 when nothing can be sent. Finish the frame, then call `done()`.
   */
  open(v: PacketView, ingress: Iface, ipLen: number): number {
    const af = v.af;
    const net = this.#net;
    const res = this.#res;
    const src = this.src;
    const nh = this.#nh;
    let ifc: Iface = ingress;
    const routed = net.route(af, v.src, 0, res);
    if (routed) {
      ifc = net.ifaces[res.ifIndex]!;
      if (res.hasGw) nh.set(res.gw);
      else nh.set(v.src);
      src.set(res.src);
    } else {
      const a = ingress.addrOf(af);
      if (a) src.set(a);
      else src.fill(0);
    }
    if (net.isLocal(af, v.dst, 0)) src.set(v.dst);
    this.#learned = !routed && v.l2Offset >= 0;
    let off: number;
    if (this.#learned) {
      // no route back: answer through the interface the packet came in on, to its sender's MAC
      off = this.#tx.raw(ingress, 14 + ipLen);
      if (off < 0) return -1;
      const b = this.#tx.txBuf(ingress);
      copyBytes(b, off, v.buf, v.l2Offset + 6, 6);
      copyBytes(b, off + 6, ingress.mac, 0, 6);
      b[off + 12] = af === AF_INET6 ? 0x86 : 0x08;
      b[off + 13] = af === AF_INET6 ? 0xdd : 0x00;
      this.buf = b;
    } else {
      if (!routed) nh.set(v.src);
      off = this.#tx.begin(ifc, af, nh, 0, 14 + ipLen);
      if (off < 0) return -1;
      this.buf = this.#tx.buf;
    }
    return off + 14;
  }

  /** The frame of the last `open` is complete (the tracer sees it). */
  done(): void {
    if (!this.#learned) this.#tx.traced();
  }
}
