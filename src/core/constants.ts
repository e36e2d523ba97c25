/**
 * Numeric constants of IPVS: protocol numbers, service / destination / connection flag bits and
 * forwarding methods, as the kernel's include/uapi/linux/ip_vs.h defines them (spec §0, §1).
 */

/** IP protocol numbers (spec §0). */
export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_GRE = 47;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;

/** Protocol names as ipvsadm prints them. */
export function protoName(p: number): string {
  switch (p) {
    case IPPROTO_TCP:
      return 'TCP';
    case IPPROTO_UDP:
      return 'UDP';
    case IPPROTO_SCTP:
      return 'SCTP';
    case IPPROTO_IP:
      return 'IP';
    default:
      return '???';
  }
}

/** Service flag bits, IP_VS_SVC_F_* (spec §1.1). */
export const SVC_F_PERSISTENT = 0x0001;
export const SVC_F_HASHED = 0x0002;
export const SVC_F_ONEPACKET = 0x0004;
export const SVC_F_SCHED1 = 0x0008;
export const SVC_F_SCHED2 = 0x0010;
export const SVC_F_SCHED3 = 0x0020;
export const SVC_F_SCHED_SH_FALLBACK = SVC_F_SCHED1;
export const SVC_F_SCHED_SH_PORT = SVC_F_SCHED2;
export const SVC_F_SCHED_MH_FALLBACK = SVC_F_SCHED1;
export const SVC_F_SCHED_MH_PORT = SVC_F_SCHED2;

/** Destination flag bits, IP_VS_DEST_F_* (spec §1.2). */
export const DEST_F_AVAILABLE = 0x0001;
export const DEST_F_OVERLOAD = 0x0002;

/** Forwarding methods: the low three bits of connection flags (spec §1.2). */
export const FWD_MASQ = 0;
export const FWD_LOCALNODE = 1;
export const FWD_TUNNEL = 2;
export const FWD_DROUTE = 3;
export const FWD_BYPASS = 4;

/** Connection flag bits, IP_VS_CONN_F_* (spec §1.3.2). */
export const CONN_F_FWD_MASK = 0x0007;
export const CONN_F_SYNC = 0x0020;
export const CONN_F_HASHED = 0x0040;
export const CONN_F_NOOUTPUT = 0x0080;
export const CONN_F_INACTIVE = 0x0100;
export const CONN_F_OUT_SEQ = 0x0200;
export const CONN_F_IN_SEQ = 0x0400;
export const CONN_F_SEQ_MASK = 0x0600;
export const CONN_F_NO_CPORT = 0x0800;
export const CONN_F_TEMPLATE = 0x1000;
export const CONN_F_ONE_PACKET = 0x2000;
export const CONN_F_NFCT = 0x10000;
/** Flags a sync backup accepts from a record (spec §1.3.2). */
export const CONN_F_BACKUP_MASK =
  CONN_F_FWD_MASK |
  CONN_F_NOOUTPUT |
  CONN_F_INACTIVE |
  CONN_F_SEQ_MASK |
  CONN_F_NO_CPORT |
  CONN_F_TEMPLATE;
/** Flags a sync backup updates on an existing connection (spec §1.3.2). */
export const CONN_F_BACKUP_UPD_MASK = CONN_F_INACTIVE | CONN_F_SEQ_MASK;
/** Destination flags a user may set: the method, one-packet and conntrack (spec §1.2). */
export const CONN_F_DEST_MASK = CONN_F_FWD_MASK | CONN_F_ONE_PACKET | CONN_F_NFCT;

/** Tunnel types and tunnel flags (spec §1.2). */
export const TUN_TYPE_IPIP = 0;
export const TUN_TYPE_GUE = 1;
export const TUN_TYPE_GRE = 2;
export const TUN_F_NOCSUM = 0;
export const TUN_F_CSUM = 1;
export const TUN_F_REMCSUM = 2;

/** Forwarding method names in listings (spec §1.2). */
export function fwdName(flags: number): string {
  switch (flags & CONN_F_FWD_MASK) {
    case FWD_MASQ:
      return 'Masq';
    case FWD_LOCALNODE:
      return 'Local';
    case FWD_TUNNEL:
      return 'Tunnel';
    case FWD_DROUTE:
      return 'Route';
    default:
      return 'Bypass';
  }
}

/** IPVS version code 1.2.1 (spec §0). */
export const IPVS_VERSION = 0x010201;
/** Maximum scheduler name length, without the NUL (spec §1.1). */
export const SCHED_NAME_MAX = 15;
/** Maximum persistence engine name length (spec §9.2). */
export const PE_NAME_MAX = 16;
/** Longest timeout accepted from the control plane, in seconds: INT_MAX / HZ with HZ = 1000. */
export const MAX_TIMEOUT_SEC = Math.floor(0x7fffffff / 1000);
/**
 * Longest persistence timeout, in seconds. `ip_vs_add_service` / `ip_vs_edit_service` do not check
 * it (they store `timeout * HZ` in an unsigned int); the largest value that does not wrap with
 * HZ = 1000 is kept, which covers every value ipvsadm's `-p` accepts (up to 31 days).
 */
export const MAX_PERSIST_TIMEOUT_SEC = Math.floor(0xffffffff / 1000);
