/**
 * The director's own view of the network: its interfaces (name, MAC, addresses, MTU, the frame
 * I/O they send through), the virtual addresses it owns, and a small route table with
 * longest-prefix match. Connected routes come from the interface addresses. Everything the
 * per-frame path reads (local addresses, routes) lives in typed arrays: `isLocal` and `route`
 * allocate nothing. Configuration methods validate and throw coded errors.
 */
import { AF_INET, AF_INET6, type Af, formatIp, parseIp } from '../../core/addr.js';
import type { FrameIO } from '../io/types.js';
import { AddrIndex } from './addr-index.js';
import { PktConfigError, PktNoInterfaceError, PktTableFullError } from './errors.js';

/** An interface of the director. */
export interface IfaceSpec {
  name: string;
  /** "aa:bb:cc:dd:ee:ff". */
  mac: string;
  /** Addresses with prefix length, "10.0.0.1/24", "2001:db8::1/64". */
  addrs?: string[];
  /** Default 1500. */
  mtu?: number;
  /** Where frames leaving through this interface go (several interfaces may share one). */
  io?: FrameIO | null;
  /**
   * The interface's IPv6 link-local address ("fe80::…"): the source of its neighbour
   * solicitations (ndisc_send_ns), answered for on this link only; not a local address
   * otherwise (no route, no VIP host).
   */
  linkLocal?: string;
}

/** A route: destination prefix ("10.1.0.0/16", "default", "::/0"), optional gateway, device. */
export interface RouteSpec {
  dst: string;
  via?: string;
  dev: string;
  /** Route MTU (default: the interface's). */
  mtu?: number;
  /** Preferred source address (default: the interface's first address of the family). */
  src?: string;
}

/** A virtual address the director owns (answers ARP / NDP for, accepts as local). */
export interface VipSpec {
  addr: string;
  /** Only answer ARP / NDP on this interface (default: every interface). */
  dev?: string;
  /** False for a VIP that must not be announced (a DR real server's loopback VIP). Default true. */
  arp?: boolean;
}

/** An interface, as the engine uses it. */
export class Iface {
  readonly index: number;
  readonly name: string;
  readonly mac = new Uint8Array(6);
  mtu: number;
  io: FrameIO | null;
  /** Addresses: family, words, prefix length. */
  readonly addrs: { af: Af; words: Uint32Array; prefix: number }[] = [];
  /** The IPv6 link-local address, or null. */
  linkLocal: Uint32Array | null = null;

  constructor(index: number, name: string, mac: Uint8Array, mtu: number, io: FrameIO | null) {
    this.index = index;
    this.name = name;
    this.mac.set(mac);
    this.mtu = mtu;
    this.io = io;
  }

  /** First address of family `af`, or null. */
  addrOf(af: number): Uint32Array | null {
    for (const a of this.addrs) if (a.af === af) return a.words;
    return null;
  }
}

/** Result of a route lookup; one reused object per caller. */
export class RouteResult {
  /** Interface index, -1 when there is no route. */
  ifIndex = -1;
  /** True when the destination is one of the director's own addresses. */
  local = false;
  /** True when the route has a gateway (`gw`); otherwise the destination is on link. */
  hasGw = false;
  readonly gw = new Uint32Array(4);
  /** Preferred source address for packets on this route. */
  readonly src = new Uint32Array(4);
  mtu = 0;
  /** The route's prefix length. */
  prefix = 0;
  /** Index of the route in the table (for caches). */
  index = -1;
}

const MAX_ROUTES = 1024;
/** Local addresses the arrays start with room for (they double when full). */
const LOCAL0 = 64;
/** Up to this many local addresses of a family are found by a scan, beyond through the index. */
const SCAN_MAX = 8;

/**
 * A source ip_route_input_slow refuses as martian (route_localnet 0): multicast, the limited
 * broadcast, 0/8 (0.0.0.0 included) or loopback.
 */
export function martianSource4(a: number): boolean {
  return a >>> 28 === 14 || a === 0xffffffff || a >>> 24 === 0 || a >>> 24 === 127;
}

/** Parses "a.b.c.d/len" or "v6/len" (no prefix: host route). */
export function parseCidr(text: string): { af: Af; words: Uint32Array; prefix: number } {
  if (text === 'default') return { af: AF_INET, words: new Uint32Array(4), prefix: 0 };
  const slash = text.indexOf('/');
  const a = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!a) throw new PktConfigError(`bad address '${text}'`);
  const max = a.af === AF_INET ? 32 : 128;
  const len = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefix = /^[0-9]{1,3}$/.test(len) ? Number(len) : NaN;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max)
    throw new PktConfigError(`bad prefix length in '${text}'`);
  return { af: a.af, words: a.words, prefix };
}

/** Parses "aa:bb:cc:dd:ee:ff". */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p)))
    throw new PktConfigError(`bad MAC address '${text}'`);
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

function maskWord(prefix: number, i: number): number {
  const bits = Math.max(0, Math.min(32, prefix - 32 * i));
  return bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/** The network model. */
export class NetModel {
  readonly ifaces: Iface[] = [];
  /** Bumped on every change (caches compare it). */
  gen = 0;
  // local addresses: IPv4 words, IPv6 four words each; VIP flags in parallel arrays (grown as
  // needed), found through an index once there are more than a few
  #loc4 = new Uint32Array(LOCAL0);
  #loc4If = new Int32Array(LOCAL0); // -1: any interface
  #loc4Arp = new Uint8Array(LOCAL0);
  /** 1 for a VIP (`addVip`), 0 for an interface address. */
  #loc4Vip = new Uint8Array(LOCAL0);
  #n4 = 0;
  #loc6 = new Uint32Array(LOCAL0 * 4);
  #loc6If = new Int32Array(LOCAL0);
  #loc6Arp = new Uint8Array(LOCAL0);
  #loc6Vip = new Uint8Array(LOCAL0);
  #n6 = 0;
  readonly #idx4 = new AddrIndex(1);
  readonly #idx6 = new AddrIndex(4);
  // routes, sorted by prefix length (longest first)
  readonly #routes: {
    af: Af;
    net: Uint32Array;
    prefix: number;
    gw: Uint32Array | null;
    ifIndex: number;
    mtu: number;
    src: Uint32Array | null;
  }[] = [];
  readonly #rNet = new Uint32Array(MAX_ROUTES * 4);
  readonly #rMask = new Uint32Array(MAX_ROUTES * 4);
  readonly #rAf = new Uint8Array(MAX_ROUTES);

  /** Adds an interface (its addresses become local and give connected routes). */
  addIface(spec: IfaceSpec): Iface {
    if (!spec.name) throw new PktConfigError('interface without a name');
    if (this.ifaces.some((i) => i.name === spec.name))
      throw new PktConfigError(`interface '${spec.name}' defined twice`);
    const mtu = spec.mtu ?? 1500;
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535)
      throw new PktConfigError(`interface '${spec.name}': MTU ${mtu} outside 68..65535`);
    const ifc = new Iface(this.ifaces.length, spec.name, parseMac(spec.mac), mtu, spec.io ?? null);
    if (spec.linkLocal !== undefined) {
      const ll = parseIp(spec.linkLocal);
      if (!ll || ll.af !== AF_INET6 || ll.words[0]! >>> 22 !== 0x3fa)
        throw new PktConfigError(
          `interface '${spec.name}': '${spec.linkLocal}' is not an IPv6 link-local address`,
        );
      ifc.linkLocal = ll.words;
    }
    this.ifaces.push(ifc);
    for (const a of spec.addrs ?? []) {
      const c = parseCidr(a);
      ifc.addrs.push(c);
      // IPv4: answered on every interface (arp_ignore 0); IPv6: on its own link only
      // (ndisc_recv_ns looks the target up on the receiving device)
      this.#addLocal(c.af, c.words, c.af === AF_INET6 ? ifc.index : -1, true, false);
      const net = new Uint32Array(4);
      for (let i = 0; i < 4; i++) net[i] = (c.words[i]! & maskWord(c.prefix, i)) >>> 0;
      this.#addRoute(c.af, net, c.prefix, null, ifc.index, 0, c.words);
    }
    this.gen++;
    return ifc;
  }

  /** The interface called `name` (throws PktNoInterfaceError). */
  iface(name: string): Iface {
    const i = this.ifaces.find((x) => x.name === name);
    if (!i) throw new PktNoInterfaceError(name);
    return i;
  }

  /** Adds a route. */
  addRoute(spec: RouteSpec): void {
    const ifc = this.iface(spec.dev);
    const c = parseCidr(spec.dst);
    let af = c.af;
    if (spec.dst === 'default' && spec.via && parseIp(spec.via)?.af === AF_INET6) af = AF_INET6;
    let gw: Uint32Array | null = null;
    if (spec.via) {
      const g = parseIp(spec.via);
      if (!g || g.af !== af)
        throw new PktConfigError(`route ${spec.dst}: bad gateway '${spec.via}'`);
      gw = g.words;
    }
    let src: Uint32Array | null = null;
    if (spec.src) {
      const s = parseIp(spec.src);
      if (!s || s.af !== af)
        throw new PktConfigError(`route ${spec.dst}: bad source '${spec.src}'`);
      src = s.words;
    }
    const mtu = spec.mtu ?? 0;
    if (mtu && (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535))
      throw new PktConfigError(`route ${spec.dst}: MTU ${mtu} outside 68..65535`);
    this.#addRoute(af, c.words, c.prefix, gw, ifc.index, mtu, src);
    this.gen++;
  }

  /** Makes `spec.addr` a local address of the director (a VIP it owns). */
  addVip(spec: VipSpec): void {
    const a = parseIp(spec.addr);
    if (!a) throw new PktConfigError(`bad VIP '${spec.addr}'`);
    const ifIndex = spec.dev === undefined ? -1 : this.iface(spec.dev).index;
    if (this.isLocal(a.af, a.words)) return;
    this.#addLocal(a.af, a.words, ifIndex, spec.arp !== false, true);
    this.gen++;
  }

  /** Removes a VIP added by `addVip` (interface addresses stay). */
  delVip(addr: string): void {
    const a = parseIp(addr);
    if (!a) return;
    const v6 = a.af === AF_INET6;
    const i = this.#find(a.af, a.words, 0);
    if (i < 0 || !(v6 ? this.#loc6Vip : this.#loc4Vip)[i]) return;
    if (v6) {
      this.#idx6.delete(a.words, 0);
      const last = --this.#n6;
      if (i !== last) {
        this.#loc6.copyWithin(i * 4, last * 4, last * 4 + 4);
        this.#loc6If[i] = this.#loc6If[last]!;
        this.#loc6Arp[i] = this.#loc6Arp[last]!;
        this.#loc6Vip[i] = this.#loc6Vip[last]!;
        if (this.#idx6.get(this.#loc6, i * 4) === last) this.#idx6.set(this.#loc6, i * 4, i);
      }
    } else {
      this.#idx4.delete(a.words, 0);
      const last = --this.#n4;
      if (i !== last) {
        this.#loc4[i] = this.#loc4[last]!;
        this.#loc4If[i] = this.#loc4If[last]!;
        this.#loc4Arp[i] = this.#loc4Arp[last]!;
        this.#loc4Vip[i] = this.#loc4Vip[last]!;
        if (this.#idx4.get(this.#loc4, i) === last) this.#idx4.set(this.#loc4, i, i);
      }
    }
    this.gen++;
  }

  #addLocal(af: Af, w: ArrayLike<number>, ifIndex: number, arp: boolean, vip: boolean): void {
    if (af === AF_INET) {
      if (this.#n4 === this.#loc4.length) {
        const n = 2 * this.#n4;
        this.#loc4 = grownU32(this.#loc4, n);
        this.#loc4If = grownI32(this.#loc4If, n);
        this.#loc4Arp = grownU8(this.#loc4Arp, n);
        this.#loc4Vip = grownU8(this.#loc4Vip, n);
      }
      const i = this.#n4++;
      this.#loc4[i] = w[0]!;
      this.#loc4If[i] = ifIndex;
      this.#loc4Vip[i] = vip ? 1 : 0;
      this.#loc4Arp[i] = arp ? 1 : 0;
      // the first entry of an address is the one that answers (an address may be on two links)
      if (this.#idx4.get(w, 0) < 0) this.#idx4.set(w, 0, i);
    } else {
      if (this.#n6 === this.#loc6If.length) {
        const n = 2 * this.#n6;
        this.#loc6 = grownU32(this.#loc6, n * 4);
        this.#loc6If = grownI32(this.#loc6If, n);
        this.#loc6Arp = grownU8(this.#loc6Arp, n);
        this.#loc6Vip = grownU8(this.#loc6Vip, n);
      }
      const i = this.#n6++;
      for (let k = 0; k < 4; k++) this.#loc6[i * 4 + k] = w[k]!;
      this.#loc6If[i] = ifIndex;
      this.#loc6Vip[i] = vip ? 1 : 0;
      this.#loc6Arp[i] = arp ? 1 : 0;
      if (this.#idx6.get(w, 0) < 0) this.#idx6.set(w, 0, i);
    }
  }

  /** The entry of local address `af`/`w[o…]`, or -1: a scan of a few, else the index. */
  #find(af: number, w: ArrayLike<number>, o: number): number {
    if (af === AF_INET) {
      if (this.#n4 > SCAN_MAX) return this.#idx4.get(w, o);
      const a = w[o]!;
      const l = this.#loc4;
      for (let i = 0; i < this.#n4; i++) if (l[i] === a) return i;
      return -1;
    }
    if (this.#n6 > SCAN_MAX) return this.#idx6.get(w, o);
    for (let i = 0; i < this.#n6; i++) if (this.#eq6(i, w, o)) return i;
    return -1;
  }

  #addRoute(
    af: Af,
    net: Uint32Array,
    prefix: number,
    gw: Uint32Array | null,
    ifIndex: number,
    mtu: number,
    src: Uint32Array | null,
  ): void {
    if (this.#routes.length >= MAX_ROUTES)
      throw new PktTableFullError(`more than ${MAX_ROUTES} routes`);
    const r = { af, net: net.slice(), prefix, gw, ifIndex, mtu, src };
    let i = 0;
    while (i < this.#routes.length && this.#routes[i]!.prefix >= prefix) i++;
    this.#routes.splice(i, 0, r);
    this.#routes.forEach((x, k) => {
      this.#rAf[k] = x.af;
      for (let j = 0; j < 4; j++) {
        const m = x.af === AF_INET ? (j === 0 ? maskWord(x.prefix, 0) : 0) : maskWord(x.prefix, j);
        this.#rMask[k * 4 + j] = m;
        this.#rNet[k * 4 + j] = (x.net[j]! & m) >>> 0;
      }
    });
  }

  #eq6(i: number, w: ArrayLike<number>, o: number): boolean {
    const b = i * 4;
    const l = this.#loc6;
    return l[b] === w[o] && l[b + 1] === w[o + 1] && l[b + 2] === w[o + 2] && l[b + 3] === w[o + 3];
  }

  /** True when `af`/`w` is one of the director's addresses (interface address or VIP). */
  isLocal(af: number, w: ArrayLike<number>, o = 0): boolean {
    return this.#find(af, w, o) >= 0;
  }

  /**
   * True when `af`/`w` is a VIP (`addVip`): an address no host stack owns, so the engine answers
   * for it what the host would (echo requests, resets, port unreachable: ./vip-host.ts).
   */
  isVip(af: number, w: ArrayLike<number>, o = 0): boolean {
    const i = this.#find(af, w, o);
    return i >= 0 && (af === AF_INET ? this.#loc4Vip : this.#loc6Vip)[i] === 1;
  }

  /** True when the director answers ARP / NDP for `w` on interface `ifIndex`. */
  answersFor(af: number, w: ArrayLike<number>, o: number, ifIndex: number): boolean {
    const i = this.#find(af, w, o);
    if (i < 0) return false;
    const v4 = af === AF_INET;
    if (!(v4 ? this.#loc4Arp : this.#loc6Arp)[i]) return false;
    const f = (v4 ? this.#loc4If : this.#loc6If)[i]!;
    return f === -1 || f === ifIndex;
  }

  /**
   * Longest-prefix match for `af`/`w` into `res`. Returns false (res.ifIndex = -1) when there is
   * no route. A local destination gives `res.local` (and still the route used to reach it).
   */
  route(af: number, w: ArrayLike<number>, o: number, res: RouteResult): boolean {
    res.local = this.isLocal(af, w, o);
    const k = this.match(af, w, o);
    if (k >= 0) {
      const r = this.#routes[k]!;
      const ifc = this.ifaces[r.ifIndex]!;
      res.index = k;
      res.ifIndex = r.ifIndex;
      res.mtu = r.mtu || ifc.mtu;
      res.prefix = r.prefix;
      res.hasGw = r.gw !== null;
      const g = res.gw;
      const s = res.src;
      if (r.gw) {
        g[0] = r.gw[0]!;
        g[1] = r.gw[1]!;
        g[2] = r.gw[2]!;
        g[3] = r.gw[3]!;
      } else g[0] = g[1] = g[2] = g[3] = 0;
      const src = r.src ?? ifc.addrOf(af);
      if (src) {
        s[0] = src[0]!;
        s[1] = src[1]!;
        s[2] = src[2]!;
        s[3] = src[3]!;
      } else s[0] = s[1] = s[2] = s[3] = 0;
      return true;
    }
    res.index = -1;
    res.ifIndex = -1;
    return false;
  }

  /**
   * The index of the route `route()` would use for `af`/`w` (longest prefix first: the table is
   * kept in that order), or -1. Fills nothing: for callers that cache what they learnt per route
   * (valid while `gen` is unchanged).
   */
  match(af: number, w: ArrayLike<number>, o: number): number {
    const n = this.#routes.length;
    const net = this.#rNet;
    const mask = this.#rMask;
    for (let k = 0; k < n; k++) {
      if (this.#rAf[k] !== af) continue;
      const b = k * 4;
      if ((w[o]! & mask[b]!) >>> 0 !== net[b]) continue;
      if (
        af === AF_INET6 &&
        ((w[o + 1]! & mask[b + 1]!) >>> 0 !== net[b + 1] ||
          (w[o + 2]! & mask[b + 2]!) >>> 0 !== net[b + 2] ||
          (w[o + 3]! & mask[b + 3]!) >>> 0 !== net[b + 3])
      ) {
        continue;
      }
      return k;
    }
    return -1;
  }

  /** Human-readable routes (for the trace tool and docs). */
  describeRoutes(): string[] {
    return this.#routes.map((r) => {
      const dst = `${formatIp(r.af, r.net)}/${r.prefix}`;
      const via = r.gw ? ` via ${formatIp(r.af, r.gw)}` : '';
      return `${dst}${via} dev ${this.ifaces[r.ifIndex]!.name}${r.mtu ? ` mtu ${r.mtu}` : ''}`;
    });
  }

  /**
   * The first IPv4 local address that is not a loopback one, or 0: where inet_select_addr
   * turns for an interface without an address of its own (the VIPs on lo come first).
   */
  firstLocal4(): number {
    let other = 0;
    for (let i = 0; i < this.#n4; i++) {
      const a = this.#loc4[i]!;
      if (a >>> 24 === 127) continue;
      if (this.#loc4Vip[i] === 1) return a;
      if (other === 0) other = a;
    }
    return other;
  }

  /** Local IPv4 addresses (interface addresses and VIPs), for listings. */
  localAddresses(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.#n4; i++) out.push(formatIp(AF_INET, this.#loc4, i));
    for (let i = 0; i < this.#n6; i++) out.push(formatIp(AF_INET6, this.#loc6, i * 4));
    return out;
  }
}

function grownU32(a: Uint32Array, n: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}

function grownI32(a: Int32Array, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

function grownU8(a: Uint8Array, n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  b.set(a);
  return b;
}
