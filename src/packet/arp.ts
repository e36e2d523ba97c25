/** ARP codec for Ethernet/IPv4 (RFC 826): 28 bytes, hardware type 1, protocol type 0x0800. */
import { ETH_P, MALFORMED } from './constants.js';
import { checkInt, checkRoom } from './errors.js';
import {
  type Decoded,
  decoded,
  endOf,
  malformed,
  readIpv4,
  readMac,
  writeIpv4,
  writeMac,
} from './codec.js';

/** ARP operations. */
export const ARP_OP = { REQUEST: 1, REPLY: 2 } as const;

/** An Ethernet/IPv4 ARP packet. */
export interface ArpPacket {
  op: number;
  /** Sender hardware / protocol address, target hardware / protocol address. */
  sha: string;
  spa: string;
  tha: string;
  tpa: string;
}

/** Bytes `encode` writes (always 28). */
export function encodingLength(_p?: ArpPacket): number {
  return 28;
}

/** Writes `a` at `buf[offset]`; returns 28. */
export function encode(a: ArpPacket, buf: Uint8Array, offset: number): number {
  checkInt(a.op, 'ARP op', 0, 0xffff);
  checkRoom(buf, offset, 28, 'ARP packet');
  buf[offset] = 0;
  buf[offset + 1] = 1;
  buf[offset + 2] = ETH_P.IPV4 >>> 8;
  buf[offset + 3] = ETH_P.IPV4 & 0xff;
  buf[offset + 4] = 6;
  buf[offset + 5] = 4;
  buf[offset + 6] = a.op >>> 8;
  buf[offset + 7] = a.op;
  writeMac(a.sha, buf, offset + 8, 'ARP sha');
  writeIpv4(a.spa, buf, offset + 14, 'ARP spa');
  writeMac(a.tha, buf, offset + 18, 'ARP tha');
  writeIpv4(a.tpa, buf, offset + 24, 'ARP tpa');
  return 28;
}

/** Reads an Ethernet/IPv4 ARP packet at `buf[offset]`. */
export function decode(buf: Uint8Array, offset: number, end?: number): Decoded<ArpPacket> {
  const e = endOf(buf, end);
  if (!(offset >= 0) || offset + 8 > e) return malformed(MALFORMED.ARP_TRUNCATED);
  if (
    buf[offset] !== 0 ||
    buf[offset + 1] !== 1 ||
    buf[offset + 2] !== 8 ||
    buf[offset + 3] !== 0 ||
    buf[offset + 4] !== 6 ||
    buf[offset + 5] !== 4
  ) {
    return malformed(MALFORMED.ARP_BAD_FORMAT);
  }
  if (offset + 28 > e) return malformed(MALFORMED.ARP_TRUNCATED);
  return decoded(
    {
      op: (buf[offset + 6]! << 8) | buf[offset + 7]!,
      sha: readMac(buf, offset + 8),
      spa: readIpv4(buf, offset + 14),
      tha: readMac(buf, offset + 18),
      tpa: readIpv4(buf, offset + 24),
    },
    28,
  );
}
