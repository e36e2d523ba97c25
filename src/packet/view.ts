/**
 * `PacketView`: the reused, caller-owned result of decoding a frame. A decoder (`decode.ts`) fills
 * it with offsets into the caller's Buffer and the header fields IPVS needs (the 5-tuple, TCP
 * flags, fragment state, ICMP type, SCTP chunk types, tunnel headers); nothing is allocated per
 * packet. Every field is set in the constructor so the object keeps one shape (one hidden class).
 *
 * Offsets are absolute indexes into `buf`; -1 means "absent". Addresses are host-order 32-bit
 * words in preallocated `Uint32Array(4)`s (IPv4 uses word 0), as in `core/addr.ts`.
 */
import { MALFORMED, MALFORMED_REASON } from './constants.js';

const EMPTY = new Uint8Array(0);

/**
 * Slots of `PacketView.u32`: unsigned 32-bit fields live in a typed array because storing a
 * number above 2^31 in an object field boxes it (a heap allocation per packet in V8); a getter
 * reads each back as an unsigned number.
 */
export const U32 = {
  TCP_SEQ: 0,
  TCP_ACK: 1,
  ICMP_REST: 2,
  SCTP_VTAG: 3,
  SCTP_CSUM: 4,
  IP_ID: 5,
  ARP_SPA: 6,
  ARP_TPA: 7,
} as const;

/** Tunnel kinds a view can report (`tunnelType`). */
export const TUNNEL = { NONE: 0, IPIP: 1, GRE: 2, GUE: 3 } as const;

/** A decoded frame: offsets into the caller's buffer plus header fields. Reuse one per caller. */
export class PacketView {
  /** The buffer the offsets refer to (the caller's, not a copy). */
  buf: Uint8Array = EMPTY;
  /** First byte and one past the last byte of the frame handed to the decoder. */
  start = 0;
  end = 0;
  /** 0 when the frame decoded, otherwise a MALFORMED code. */
  malformed = 0;
  /** Why the frame is malformed (a static string), or 'ok'. */
  reason: string = MALFORMED_REASON[0]!;
  /** True for a packet quoted inside an ICMP error (it may be cut short; see decodeIcmpInner). */
  embedded = false;

  // ---- L2 ----
  /** Offset of the Ethernet header (destination MAC at +0, source MAC at +6), -1 for raw IP. */
  l2Offset = -1;
  /** Number of 802.1Q / 802.1ad tags (0..2). */
  vlanCount = 0;
  /** VLAN id and priority of the outer tag, and the id of the inner tag (0 when absent). */
  vlanId = 0;
  vlanPcp = 0;
  vlanId2 = 0;
  /** Tag protocol id of the outer tag: 0x8100 (802.1Q) or 0x88A8 (802.1ad), 0 without tags. */
  vlanTpid = 0;
  /** EtherType after the VLAN tags (for raw IP: 0x0800 or 0x86DD from the version nibble). */
  etherType = 0;

  // ---- ARP (Ethernet/IPv4 only) ----
  arpOp = 0;
  /** Offsets of the sender and target hardware addresses. */
  arpShaOffset = -1;
  arpThaOffset = -1;
  /** Sender and target protocol (IPv4) addresses, host order. */
  get arpSpa(): number {
    return this.u32[6]!;
  }
  get arpTpa(): number {
    return this.u32[7]!;
  }

  // ---- L3 ----
  /** Offset of the IP header, -1 when the frame carries no IP. */
  l3Offset = -1;
  /** 4 or 6 (0 without IP); `af` is the matching address family, 2 or 10. */
  ipVersion = 0;
  af = 0;
  /** IPv4: IHL in bytes. IPv6: 40 + every extension header walked. */
  ipHeaderLength = 0;
  /** IPv4 options length in bytes (IHL*4 - 20). */
  ipOptionsLength = 0;
  /** IPv4 total length, IPv6 40 + payload length. */
  ipTotalLength = 0;
  /** One past the IP packet's last byte (frames may carry Ethernet padding beyond it). */
  ipEnd = 0;
  /** Transport protocol (IPv6: next header after the extension-header walk). */
  protocol = -1;
  /** IPv4 TOS byte / IPv6 traffic class. */
  tos = 0;
  /** IPv6 flow label. */
  flowLabel = 0;
  /** TTL / hop limit. */
  ttl = 0;
  /** IPv4 identification, or the IPv6 fragment header's identification. */
  get ipId(): number {
    return this.u32[5]!;
  }
  /** IPv4 header checksum as read. */
  ipChecksum = 0;
  /** IPv4 DF flag. */
  df = false;
  /** More-fragments flag (IPv4 MF, IPv6 fragment header M). */
  mf = false;
  /** Fragment offset in bytes. */
  fragOffset = 0;
  /** True when this packet is a fragment (MF set or offset non-zero). */
  isFragment = false;
  /** Offset of the IPv6 fragment header, -1 when there is none. */
  fragHeaderOffset = -1;
  /** Source and destination addresses, host-order words. */
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  /** Unsigned 32-bit fields (see U32), read through the getters below. */
  readonly u32 = new Uint32Array(8);

  // ---- L4 ----
  /** Offset of the transport header (the IP payload after all IP headers). */
  l4Offset = -1;
  /** Bytes from `l4Offset` to `ipEnd`. */
  l4Length = 0;
  /** True when the transport header was parsed (false for non-first fragments, unknown protocols). */
  l4Parsed = false;
  srcPort = 0;
  dstPort = 0;
  /** The 16-bit L4 checksum field as read (TCP, UDP, ICMP, ICMPv6; SCTP: see `sctpChecksum`). */
  l4Checksum = 0;
  tcpFlags = 0;
  get tcpSeq(): number {
    return this.u32[0]!;
  }
  get tcpAck(): number {
    return this.u32[1]!;
  }
  tcpWindow = 0;
  /** TCP data offset in bytes (20..60). */
  tcpHeaderLength = 0;
  /**
   * Setting, kept across decodes: a forwarder's reading. When true a TCP segment whose options
   * are malformed decodes anyway, with `tcpOptionsOk` false, and so does an SCTP packet whose
   * chunks are missing or malformed (`sctpChunksOk` false, types read as far as the kernel
   * reads them), instead of being malformed: IPVS reads the 20-byte TCP header, the 12-byte SCTP
   * header and at most two chunk headers, and passes the rest on for the receiver to judge.
   */
  lenient = false;
  /** False when the TCP options are malformed (decoded only when `lenient`). */
  tcpOptionsOk = true;
  udpLength = 0;
  icmpType = -1;
  icmpCode = -1;
  /** The ICMP "rest of header" word (echo id/sequence, next-hop MTU, pointer). */
  get icmpRest(): number {
    return this.u32[2]!;
  }
  /** True for ICMP/ICMPv6 error messages, which embed the offending packet's headers. */
  icmpIsError = false;
  get sctpVtag(): number {
    return this.u32[3]!;
  }
  /** The SCTP CRC32c as read (little-endian on the wire). */
  get sctpChecksum(): number {
    return this.u32[4]!;
  }
  /** Type of the first SCTP chunk and of the second (-1 when absent); `sctpChunkCount` chunks. */
  sctpChunkType = -1;
  sctpNextChunkType = -1;
  sctpChunkCount = 0;
  /** False when an SCTP packet has no chunk or a malformed one (decoded only when `lenient`). */
  sctpChunksOk = true;

  // ---- tunnels (IPIP / IPv6-in-IP, GRE, GUE after decodeGue) ----
  tunnelType = 0;
  /** Offset of the encapsulated IP packet, -1 when none. */
  innerOffset = -1;
  /** IP protocol of the inner packet: 4 (IPv4) or 41 (IPv6), -1 when none. */
  innerProtocol = -1;
  /** GRE flags+version word, or the GUE flags field. */
  tunnelFlags = 0;
  /** GRE checksum as read, -1 without the checksum bit. */
  greChecksum = -1;
  /** GUE remote checksum offload: start and offset relative to the inner packet, -1 when absent. */
  remcsumStart = -1;
  remcsumOffset = -1;

  // ---- payload ----
  /** Offset and length of the application payload (after TCP/UDP/ICMP/SCTP common headers). */
  payloadOffset = -1;
  payloadLength = 0;

  // ---- bookkeeping: which layer fields hold values from an earlier frame (decode.ts) ----
  /** 0 when the L3 fields are at their defaults, else the IP version that last filled them. */
  l3State = 0;
  /** 0 when the L4 fields are at their defaults, else a key for the protocol that filled them. */
  l4State = 0;
  /** True when the ARP fields hold values. */
  arpState = false;

  /** True when the last decode succeeded. */
  get ok(): boolean {
    return this.malformed === MALFORMED.OK;
  }
}
