/**
 * IPv6 extension headers as a Linux host processes them: the hop-by-hop options, which
 * ip6_rcv_core parses before any hook (ipv6_parse_hopopts), and the destination options and
 * routing headers of a packet delivered to the host, which ip6_protocol_deliver_rcu processes
 * after LOCAL_IN (ipv6_destopt_rcv, ipv6_rthdr_rcv). The option walk is ip6_parse_tlv's.
 *
 * Results: `EXT_OK`, `EXT_DROP` (silently), or a parameter problem to send, encoded by
 * `paramProblem(code, pointer)` (the pointer an offset from the IPv6 header).
 */

export const EXT_OK = -1;
export const EXT_DROP = -2;

/** ICMPv6 parameter problem codes. */
export const PP_HDR_FIELD = 0;
export const PP_UNK_OPTION = 2;

/** max_hbh_opts_number / max_dst_opts_number (IP6_DEFAULT_MAX_*_OPTS_CNT). */
const MAX_OPTS = 8;

const PAD1 = 0;
const PADN = 1;
const ROUTER_ALERT = 5;
const CALIPSO = 7;
const IOAM = 0x31;
const JUMBO = 0xc2;

/** A parameter problem of `code` pointing at `pointer`, as a result. */
export function paramProblem(code: number, pointer: number): number {
  return code * 0x10000 + pointer;
}

/** The code of a parameter-problem result. */
export function ppCode(r: number): number {
  return Math.floor(r / 0x10000);
}

/** The pointer of a parameter-problem result. */
export function ppPointer(r: number): number {
  return r & 0xffff;
}

/**
 * ip6_parse_tlv over the options header at `buf[ip + at …)` (hop-by-hop when `hop`) of the IPv6
 * packet at `buf[ip …)`, `multicast` telling whether its destination is a group: more than 7
 * bytes of padding in a row, non-zero PadN data, more than 8 other options, or an option past the
 * header drop it; an unknown option acts by its top two bits (skip, drop, parameter problem, or
 * parameter problem unless to a group). Hop-by-hop only: a router alert must be 2 bytes long;
 * IOAM (not enabled) is skipped when 4n-aligned; CALIPSO is refused (no DOI is configured); a
 * jumbo payload option never fits an Ethernet frame, and is refused by ipv6_hop_jumbo's rules.
 */
export function parseTlv(
  buf: Uint8Array,
  ip: number,
  at: number,
  hop: boolean,
  multicast: boolean,
): number {
  let off = at + 2;
  let len = ((buf[ip + at + 1]! + 1) << 3) - 2;
  let count = 0;
  let pad = 0;
  while (len > 0) {
    const type = buf[ip + off]!;
    if (type === PAD1) {
      if (++pad > 7) return EXT_DROP;
      off++;
      len--;
      continue;
    }
    if (len < 2) return EXT_DROP;
    const optlen = buf[ip + off + 1]! + 2;
    if (optlen > len) return EXT_DROP;
    if (type === PADN) {
      pad += optlen;
      if (pad > 7) return EXT_DROP;
      for (let i = 2; i < optlen; i++) if (buf[ip + off + i] !== 0) return EXT_DROP;
    } else {
      if (++count > MAX_OPTS) return EXT_DROP;
      let r = hop ? hopOption(buf, ip, off, type) : UNKNOWN;
      if (r === UNKNOWN) r = unknown(type, off, multicast);
      if (r !== EXT_OK) return r;
      pad = 0;
    }
    off += optlen;
    len -= optlen;
  }
  return EXT_OK;
}

const UNKNOWN = -3;

/** The hop-by-hop options ip6_parse_tlv knows; UNKNOWN for the others. */
function hopOption(buf: Uint8Array, ip: number, off: number, type: number): number {
  switch (type) {
    case ROUTER_ALERT:
      return buf[ip + off + 1] === 2 ? EXT_OK : EXT_DROP;
    case IOAM:
      return off & 3 ? EXT_DROP : EXT_OK;
    case CALIPSO:
      return EXT_DROP;
    case JUMBO: {
      if (buf[ip + off + 1] !== 4 || (off & 3) !== 2) return EXT_DROP;
      const p = ip + off + 2;
      const jumbo =
        ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
      if (jumbo <= 65535) return paramProblem(PP_HDR_FIELD, off + 2);
      if (buf[ip + 4] !== 0 || buf[ip + 5] !== 0) return paramProblem(PP_HDR_FIELD, off);
      // a jumbogram longer than any frame this host can receive
      return EXT_DROP;
    }
    default:
      return UNKNOWN;
  }
}

/** ip6_tlvopt_unknown: the action of an unknown option (its top two bits). */
function unknown(type: number, off: number, multicast: boolean): number {
  switch (type >>> 6) {
    case 0:
      return EXT_OK;
    case 1:
      return EXT_DROP;
    case 3:
      if (multicast) return EXT_DROP;
      return paramProblem(PP_UNK_OPTION, off);
    default:
      return paramProblem(PP_UNK_OPTION, off);
  }
}

/**
 * ipv6_rthdr_rcv for the routing header at `buf[ip + at …)` of a packet delivered to the host:
 * dropped when sent to a group (`multicast`: the address or the frame); segment routing (type 4) and RPL (type 3) are not enabled
 * (seg6_enabled, rpl_seg_enabled 0): dropped; with segments left, any other type is refused with
 * a parameter problem at its type field (this host routes no source routes).
 */
export function routingHeader(buf: Uint8Array, ip: number, at: number, multicast: boolean): number {
  if (multicast) return EXT_DROP;
  const type = buf[ip + at + 2]!;
  if (type === 3 || type === 4) return EXT_DROP;
  if (buf[ip + at + 3] === 0) return EXT_OK;
  return paramProblem(PP_HDR_FIELD, at + 2);
}
