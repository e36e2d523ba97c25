/**
 * Ethernet II header codec (IEEE 802.3 §3.2.6) with 802.1Q / 802.1ad VLAN tags (IEEE 802.1Q §9.6).
 * A frame with tags reads dst(6) src(6) [TPID(2) TCI(2)]… EtherType(2).
 */
import { ETH_P, MALFORMED } from './constants.js';
import { checkInt, checkRoom, PacketEncodeError } from './errors.js';
import { type Decoded, decoded, endOf, malformed, readMac, writeMac } from './codec.js';

/** One VLAN tag: id 0..4095, priority (PCP) 0..7, drop-eligible bit, tag protocol id. */
export interface VlanTag {
  id: number;
  pcp?: number;
  dei?: boolean;
  /** 0x8100 (802.1Q, default) or 0x88A8 (802.1ad outer tag). */
  tpid?: number;
}

/** An Ethernet II header. */
export interface EthernetHeader {
  dst: string;
  src: string;
  /** Outer tag first; at most two. */
  vlans?: VlanTag[];
  etherType: number;
}

/** Bytes `encode` writes for `h`. */
export function encodingLength(h: EthernetHeader): number {
  return 14 + 4 * (h.vlans?.length ?? 0);
}

/** Writes `h` at `buf[offset]`; returns the bytes written. */
export function encode(h: EthernetHeader, buf: Uint8Array, offset: number): number {
  const len = encodingLength(h);
  const vlans = h.vlans ?? [];
  if (vlans.length > 2) throw new PacketEncodeError('at most two VLAN tags are supported');
  checkInt(h.etherType, 'etherType', 0, 0xffff);
  checkRoom(buf, offset, len, 'ethernet header');
  writeMac(h.dst, buf, offset, 'ethernet dst');
  writeMac(h.src, buf, offset + 6, 'ethernet src');
  let p = offset + 12;
  for (const t of vlans) {
    const tpid = checkInt(t.tpid ?? ETH_P.VLAN, 'VLAN tpid', 0, 0xffff);
    const id = checkInt(t.id, 'VLAN id', 0, 4095);
    const pcp = checkInt(t.pcp ?? 0, 'VLAN pcp', 0, 7);
    const tci = (pcp << 13) | (t.dei ? 0x1000 : 0) | id;
    buf[p] = tpid >>> 8;
    buf[p + 1] = tpid;
    buf[p + 2] = tci >>> 8;
    buf[p + 3] = tci;
    p += 4;
  }
  buf[p] = h.etherType >>> 8;
  buf[p + 1] = h.etherType;
  return len;
}

/** Reads an Ethernet header (with up to two VLAN tags) at `buf[offset]`. */
export function decode(buf: Uint8Array, offset: number, end?: number): Decoded<EthernetHeader> {
  const e = endOf(buf, end);
  if (!(offset >= 0) || offset + 14 > e) return malformed(MALFORMED.ETH_TRUNCATED);
  const h: EthernetHeader = {
    dst: readMac(buf, offset),
    src: readMac(buf, offset + 6),
    etherType: 0,
  };
  let p = offset + 12;
  let type = (buf[p]! << 8) | buf[p + 1]!;
  const vlans: VlanTag[] = [];
  while (type === ETH_P.VLAN || type === ETH_P.QINQ) {
    if (vlans.length === 2) return malformed(MALFORMED.VLAN_TOO_MANY);
    if (p + 6 > e) return malformed(MALFORMED.VLAN_TRUNCATED);
    const tci = (buf[p + 2]! << 8) | buf[p + 3]!;
    vlans.push({ id: tci & 0xfff, pcp: tci >>> 13, dei: (tci & 0x1000) !== 0, tpid: type });
    p += 4;
    type = (buf[p]! << 8) | buf[p + 1]!;
  }
  if (vlans.length) h.vlans = vlans;
  h.etherType = type;
  return decoded(h, p + 2 - offset);
}
