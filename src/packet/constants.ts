/**
 * Wire-format numbers shared by the codecs: EtherTypes (IEEE 802), IP protocol numbers (IANA
 * "Assigned Internet Protocol Numbers"), TCP flags (RFC 9293), ICMP/ICMPv6 types (RFC 792,
 * RFC 4443), and the malformed-frame verdicts the decoders return.
 */

/** EtherTypes (IEEE 802 numbers). */
export const ETH_P = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  IPV6: 0x86dd,
} as const;

/** IP protocol / IPv6 next-header numbers (IANA). */
export const IPPROTO = {
  HOPOPTS: 0,
  ICMP: 1,
  IPIP: 4,
  TCP: 6,
  UDP: 17,
  IPV6: 41,
  ROUTING: 43,
  FRAGMENT: 44,
  GRE: 47,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NONE: 59,
  DSTOPTS: 60,
  SCTP: 132,
} as const;

/** TCP flag bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR). */
export const TCP_FLAG = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** ICMP types used by IPVS (RFC 792). */
export const ICMP = {
  ECHO_REPLY: 0,
  DEST_UNREACH: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
  /** Destination unreachable codes. */
  NET_UNREACH: 0,
  HOST_UNREACH: 1,
  PORT_UNREACH: 3,
  FRAG_NEEDED: 4,
} as const;

/** ICMPv6 types (RFC 4443). Types below 128 are errors. */
export const ICMPV6 = {
  DEST_UNREACH: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAM_PROB: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  /** Destination unreachable codes: no route, address unreachable, port unreachable. */
  NOROUTE: 0,
  ADDR_UNREACH: 3,
  PORT_UNREACH: 4,
} as const;

/** Link-layer header types in pcap files (tcpdump.org/linktypes.html). */
export const LINKTYPE = {
  ETHERNET: 1,
  RAW: 101,
  IPV4: 228,
  IPV6: 229,
  /** Linux cooked capture v1 and v2 (`tcpdump -i any`). */
  LINUX_SLL: 113,
  LINUX_SLL2: 276,
} as const;

/**
 * Decoder verdicts: 0 is a good frame, anything else is malformed and `MALFORMED_REASON[code]`
 * names why. Frames of a kind the decoders do not know (another EtherType, another IP protocol)
 * are not malformed; they decode as far as the library understands them.
 */
export const MALFORMED = {
  OK: 0,
  ETH_TRUNCATED: 1,
  VLAN_TRUNCATED: 2,
  VLAN_TOO_MANY: 3,
  ARP_TRUNCATED: 4,
  ARP_BAD_FORMAT: 5,
  IP_TRUNCATED: 6,
  IP_BAD_VERSION: 7,
  IPV4_BAD_IHL: 8,
  IPV4_BAD_TOTAL_LENGTH: 9,
  IPV4_BAD_OPTIONS: 10,
  IPV6_BAD_PAYLOAD_LENGTH: 11,
  IPV6_EXT_TRUNCATED: 12,
  IPV6_EXT_TOO_MANY: 13,
  IPV6_BAD_FRAGMENT: 14,
  TCP_TRUNCATED: 15,
  TCP_BAD_DATA_OFFSET: 16,
  TCP_BAD_OPTIONS: 17,
  UDP_TRUNCATED: 18,
  UDP_BAD_LENGTH: 19,
  ICMP_TRUNCATED: 20,
  SCTP_TRUNCATED: 21,
  SCTP_BAD_CHUNK: 22,
  GRE_TRUNCATED: 23,
  GRE_UNSUPPORTED: 24,
  GUE_TRUNCATED: 25,
  GUE_UNSUPPORTED: 26,
  IPV4_BAD_FRAGMENT: 27,
} as const;

/** Human-readable reason for each MALFORMED code (static strings: reading one allocates nothing). */
export const MALFORMED_REASON: readonly string[] = [
  'ok',
  'ethernet header truncated',
  'VLAN tag truncated',
  'more than two VLAN tags',
  'ARP packet truncated',
  'ARP packet has an unsupported hardware/protocol format',
  'IP header truncated',
  "IP version is neither 4 nor 6, or not the EtherType's",
  'IPv4 header length (IHL) below 5 or beyond the packet',
  'IPv4 total length below the header length or beyond the frame',
  'IPv4 options malformed',
  'IPv6 payload length beyond the frame',
  'IPv6 extension header truncated',
  'more IPv6 extension headers than the walk allows',
  'IPv6 fragment header malformed',
  'TCP header truncated',
  'TCP data offset below 5 or beyond the packet',
  'TCP options malformed',
  'UDP header truncated',
  'UDP length below 8 or beyond the packet',
  'ICMP header truncated',
  'SCTP header or chunk truncated',
  'SCTP chunk length malformed',
  'GRE header truncated',
  'GRE version or flags unsupported',
  'GUE header truncated',
  'GUE version or control bit unsupported',
  'IPv4 fragment offset beyond the maximum datagram size',
];
