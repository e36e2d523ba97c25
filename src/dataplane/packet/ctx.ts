/**
 * What the parts of the engine share: the per-frame context (`Pkt`) and the engine's services
 * (`Ctx`: core, network model, neighbours, output, ICMP, helpers, counters, the tracer). One of
 * each per engine, reused for every frame.
 */
import type { Ipvs } from '../../core/ipvs.js';
import { Flow } from '../../core/flow.js';
import { PacketView } from '../../packet/view.js';
import { EncapParams } from '../../packet/encap.js';
import type { Classifier } from './classifier.js';
import type { Counters } from './counters.js';
import type { FragTable } from './frag.js';
import type { FtpHelper } from './ftp.js';
import { Ipv4Options } from './ipopt.js';
import { Reasm } from './reasm.js';
import { PathMtu } from './pmtu.js';
import type { IcmpSender } from './icmp-send.js';
import type { Neigh } from './neigh.js';
import { RouteResult, type Iface, type NetModel } from './net.js';
import type { Tx } from './tx.js';

/** Receives the steps of a traced frame. */
export interface Tracer {
  /** `kind`: hook, lookup, schedule, state, rewrite, xmit, icmp, neigh, verdict, note. */
  step(kind: string, text: string): void;
}

/**
 * A view for packets being forwarded: TCP segments with malformed options and SCTP packets with
 * missing or malformed chunks decode (IPVS reads the fixed headers and the chunk types only, and
 * the kernel forwards them for the receiver to judge).
 */
export function forwardingView(): PacketView {
  const v = new PacketView();
  v.lenient = true;
  return v;
}

/** The per-frame context. */
export class Pkt {
  /** Interface the frame arrived on. */
  ifc: Iface | null = null;
  /** The decoded packet (its buffer is the receive memory, or `Ctx.scratch` after a resize). */
  readonly view = forwardingView();
  /** The packet quoted by an ICMP error. */
  readonly inner = forwardingView();
  /** The client packet inside a quoted tunnel packet. */
  readonly inner2 = forwardingView();
  /** fwmark from the classifier. */
  mark = 0;
  /** IPVS already handled the packet (skb->ipvs_property). */
  property = false;
  /** Addressed to the director (LOCAL_IN) rather than in transit (FORWARD). */
  local = false;
  /** Sent to the interface's own MAC (pkt_type PACKET_HOST), not broadcast or multicast. */
  host = true;
  /** After ACCEPT: the packet was rewritten by the out path and must be routed on. */
  reroute = false;
  /** Why the frame ended as it did (R.*), -1 when it was forwarded. */
  reason = 0;
  /** 0 in-path forward, 1 out-path forward, -1 neither. */
  forwarded = -1;
  /** The application helper changed the payload or sequence numbers: checksums need a full pass. */
  mangled = false;
  /**
   * For a datagram reassembled from fragments: its largest fragment's size, which it is
   * fragmented at again on output (the boundaries are `Ctx.reasm.geometry`); else 0.
   */
  fragMax = 0;
  /** The IPv4 header has options (`opts` says what `compileIpv4Options` found in them). */
  hasOpts = false;
  readonly opts = new Ipv4Options();
}

/** Engine options that the handlers read. */
export interface CtxOptions {
  /** Learn neighbours from the source MAC of received IP frames (trace tool). */
  learnFromIp: boolean;
  /** Packets whose classifier mark names an fwmark service are handled as local (LOCAL_IN). */
  fwmarkLocal: boolean;
}

/** The engine's shared services. */
export class Ctx {
  readonly ipvs: Ipvs;
  readonly net: NetModel;
  readonly neigh: Neigh;
  readonly tx: Tx;
  readonly icmp: IcmpSender;
  readonly counters: Counters;
  readonly ftp: FtpHelper;
  readonly frag: FragTable;
  readonly classifier: Classifier;
  readonly opts: CtxOptions;
  /** The tracer while tracing, else null. */
  trace: Tracer | null = null;
  /** Reused objects. */
  readonly flow = new Flow();
  readonly route = new RouteResult();
  readonly encap = new EncapParams();
  readonly nh = new Uint32Array(4);
  readonly addr = new Uint32Array(4);
  /** Datagrams being reassembled. */
  readonly reasm = new Reasm();
  /** Writable room for packets an application helper resizes. */
  readonly scratch = new Uint8Array(65536 + 256);
  /** Path MTUs learned from errors about the director's tunnel packets, by address. */
  readonly pmtu: PathMtu;
  /** Outer IPv4 identification counter for tunnels. */
  ipId = 1;

  constructor(
    ipvs: Ipvs,
    net: NetModel,
    neigh: Neigh,
    tx: Tx,
    icmp: IcmpSender,
    counters: Counters,
    ftp: FtpHelper,
    frag: FragTable,
    classifier: Classifier,
    opts: CtxOptions,
  ) {
    this.ipvs = ipvs;
    this.net = net;
    this.pmtu = new PathMtu(net);
    this.neigh = neigh;
    this.tx = tx;
    this.icmp = icmp;
    this.counters = counters;
    this.ftp = ftp;
    this.frag = frag;
    this.classifier = classifier;
    this.opts = opts;
  }
}
