/**
 * The packet library (issue 5): wire formats on Buffers for the packet data plane. Hot path:
 * `PacketView` + `decodeEthernet` / `decodeIp` / `decodeIcmpInner` / `decodeGue`, incremental
 * checksums and NAT rewrites, tunnel encapsulation. Tools and tests: per-header codecs
 * (`encode` / `decode` / `encodingLength`), `PacketBuilder`, pcap read/write. See docs/packet.md.
 */
export * from './constants.js';
export * from './errors.js';
export * from './view.js';
export * from './decode.js';
export * from './checksum.js';
export * from './crc32c.js';
export * from './nat.js';
export * from './encap.js';
export * from './pcap.js';
export * from './builder.js';
export { type Decoded, readMac, writeMac, readIpv4, readIpv6 } from './codec.js';
export * as ethernet from './ethernet.js';
export * as arp from './arp.js';
export * as ipv4 from './ipv4.js';
export * as ipv6 from './ipv6.js';
export * as tcp from './tcp.js';
export * as udp from './udp.js';
export * as icmp from './icmp.js';
export * as sctp from './sctp.js';
export * as gre from './gre.js';
export * as gue from './gue.js';
export * from './tuple.js';
