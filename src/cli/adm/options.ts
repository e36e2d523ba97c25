/**
 * ipvsadm 1.31's command and option tables (spec §10.2–10.4): the popt option table, the command
 * and option names used in messages, and the command × option legality matrix and the tunnel type ×
 * option matrix, as ipvsadm.c defines them.
 */
import type { PoptOption } from './popt.js';

/** Commands, numbered as ipvsadm numbers them (CMD_*). */
export const CMD_NONE = 0;
export const CMD_ADD = 1;
export const CMD_EDIT = 2;
export const CMD_DEL = 3;
export const CMD_FLUSH = 4;
export const CMD_LIST = 5;
export const CMD_ADDDEST = 6;
export const CMD_DELDEST = 7;
export const CMD_EDITDEST = 8;
export const CMD_TIMEOUT = 9;
export const CMD_STARTDAEMON = 10;
export const CMD_STOPDAEMON = 11;
export const CMD_RESTORE = 12;
export const CMD_SAVE = 13;
export const CMD_ZERO = 14;

/** Command names in messages, indexed by CMD_* − 1. */
export const CMD_NAMES = [
  'add-service',
  'edit-service',
  'delete-service',
  'flush',
  'list',
  'add-server',
  'delete-server',
  'edit-server',
  'set',
  'start-daemon',
  'stop-daemon',
  'restore',
  'save',
  'zero',
] as const;

/** Option indexes (OPTC_*). */
export const OPTC_NUMERIC = 0;
export const OPTC_CONNECTION = 1;
export const OPTC_SERVICE = 2;
export const OPTC_SCHEDULER = 3;
export const OPTC_PERSISTENT = 4;
export const OPTC_NETMASK = 5;
export const OPTC_SERVER = 6;
export const OPTC_FORWARD = 7;
export const OPTC_WEIGHT = 8;
export const OPTC_UTHRESHOLD = 9;
export const OPTC_LTHRESHOLD = 10;
export const OPTC_MCAST = 11;
export const OPTC_TIMEOUT = 12;
export const OPTC_DAEMON = 13;
export const OPTC_STATS = 14;
export const OPTC_RATE = 15;
export const OPTC_THRESHOLDS = 16;
export const OPTC_PERSISTENTCONN = 17;
export const OPTC_NOSORT = 18;
export const OPTC_SYNCID = 19;
export const OPTC_EXACT = 20;
export const OPTC_ONEPACKET = 21;
export const OPTC_PE = 22;
export const OPTC_SCHED_FLAGS = 23;
export const OPTC_MCAST_GROUP = 24;
export const OPTC_MCAST_PORT = 25;
export const OPTC_MCAST_TTL = 26;
export const OPTC_SYNC_MAXLEN = 27;
export const OPTC_TUN_INFO = 28;
export const OPTC_TUN_TYPE = 29;
export const OPTC_TUN_PORT = 30;
export const OPTC_TUN_NOCSUM = 31;
export const OPTC_TUN_CSUM = 32;
export const OPTC_TUN_REMCSUM = 33;
/** ipvs-ts extension: PROXY protocol header toward real servers (proxy data plane). */
export const OPTC_PROXY_PROTOCOL = 34;
export const NUMBER_OF_OPT = 35;

/** Option names in messages, indexed by OPTC_*. */
export const OPT_NAMES = [
  'numeric',
  'connection',
  'service-address',
  'scheduler',
  'persistent',
  'netmask',
  'real-server',
  'forwarding-method',
  'weight',
  'u-threshold',
  'l-threshold',
  'mcast-interface',
  'timeout',
  'daemon',
  'stats',
  'rate',
  'thresholds',
  'persistent-conn',
  'nosort',
  'syncid',
  'exact',
  'ops',
  'pe',
  'sched-flags',
  'mcast-group',
  'mcast-port',
  'mcast-ttl',
  'sync-maxlen',
  'tun-info',
  'tun-type',
  'tun-port',
  'tun-nocsum',
  'tun-csum',
  'tun-remcsum',
  'proxy-protocol',
] as const;

/**
 * Legal combinations of commands (rows, CMD_* − 1) and options (columns, OPTC_*):
 * '+' compulsory, 'x' illegal, '1' mutually exclusive, ' ' optional (ipvsadm.c).
 */
//  columns:        -n -c svc -s -p -M -r fwd -w -x -y mc tot dmn st rt thr pc srt sid ex ops pe -b grp port ttl size tinf type tprt nocs csum remc pp
export const COMMANDS_V_OPTIONS: readonly string[] = [
  /* ADD     */ 'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx ',
  /* EDIT    */ 'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx ',
  /* DEL     */ 'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* FLUSH   */ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* LIST    */ ' 11xxxxxxxxx11       xxxxxxx xxxxxx',
  /* ADDSRV  */ 'xx+xxx+    xxxxxxxxxxxxxxxxxx     x',
  /* DELSRV  */ 'xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* EDITSRV */ 'xx+xxx+    xxxxxxxxxxxxxxxxxx     x',
  /* TIMEOUT */ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* STARTD  */ 'xxxxxxxxxxx xxxxxxx xxxx    xxxxxxx',
  /* STOPD   */ 'xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxx',
  /* RESTORE */ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* SAVE    */ ' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  /* ZERO    */ 'xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
];

/** Tunnel types by number. */
export const TUN_NAMES = ['ipip', 'gue', 'gre'] as const;
/** Tunnel options checked against the tunnel type: tun-port, nocsum, csum, remcsum. */
export const TUN_OPTS = [OPTC_TUN_PORT, OPTC_TUN_NOCSUM, OPTC_TUN_CSUM, OPTC_TUN_REMCSUM] as const;
/** Legal tunnel options per tunnel type (rows ipip, gue, gre). */
export const TUNNEL_TYPES_V_OPTIONS: readonly string[] = ['xxxx', '+111', 'x11x'];

/** Option values that have no short letter (ipvsadm's TAG_*). */
export const TAG = {
  SET: 'set',
  START_DAEMON: 'start-daemon',
  STOP_DAEMON: 'stop-daemon',
  MCAST_INTERFACE: 'mcast-interface',
  TIMEOUT: 'timeout',
  DAEMON: 'daemon',
  STATS: 'stats',
  RATE: 'rate',
  THRESHOLDS: 'thresholds',
  PERSISTENTCONN: 'persistent-conn',
  SORT: 'sort',
  NO_SORT: 'nosort',
  PE: 'pe',
  SCTP_SERVICE: 'sctp-service',
  MCAST_GROUP: 'mcast-group',
  MCAST_PORT: 'mcast-port',
  MCAST_TTL: 'mcast-ttl',
  SYNC_MAXLEN: 'sync-maxlen',
  TUN_INFO: 'tun-info',
  TUN_TYPE: 'tun-type',
  TUN_PORT: 'tun-port',
  TUN_NOCSUM: 'tun-nocsum',
  TUN_CSUM: 'tun-csum',
  TUN_REMCSUM: 'tun-remcsum',
  PROXY_PROTOCOL: 'proxy-protocol',
} as const;

const o = (
  long: string,
  short: string | null,
  arg: PoptOption['arg'],
  val?: string,
): PoptOption => ({
  long,
  short,
  arg,
  val: val ?? short ?? long,
});

/** ipvsadm's popt option table, in its order. */
export const OPTIONS_TABLE: readonly PoptOption[] = [
  o('add-service', 'A', 'none'),
  o('edit-service', 'E', 'none'),
  o('delete-service', 'D', 'none'),
  o('clear', 'C', 'none'),
  o('list', 'L', 'none'),
  o('list', 'l', 'none'),
  o('zero', 'Z', 'none'),
  o('add-server', 'a', 'none'),
  o('edit-server', 'e', 'none'),
  o('delete-server', 'd', 'none'),
  o('set', null, 'none'),
  o('help', 'h', 'none'),
  o('version', 'v', 'none'),
  o('restore', 'R', 'none'),
  o('save', 'S', 'none'),
  o('start-daemon', null, 'string'),
  o('stop-daemon', null, 'string'),
  o('tcp-service', 't', 'string'),
  o('udp-service', 'u', 'string'),
  o('sctp-service', null, 'string'),
  o('fwmark-service', 'f', 'string'),
  o('scheduler', 's', 'string'),
  o('persistent', 'p', 'optional'),
  o('netmask', 'M', 'string'),
  o('real-server', 'r', 'string'),
  o('masquerading', 'm', 'none'),
  o('ipip', 'i', 'none'),
  o('gatewaying', 'g', 'none'),
  o('weight', 'w', 'string'),
  o('u-threshold', 'x', 'string'),
  o('l-threshold', 'y', 'string'),
  o('numeric', 'n', 'none'),
  o('connection', 'c', 'none'),
  o('mcast-interface', null, 'string'),
  o('syncid', null, 'string', 'I'),
  o('timeout', null, 'none'),
  o('daemon', null, 'none'),
  o('stats', null, 'none'),
  o('rate', null, 'none'),
  o('thresholds', null, 'none'),
  o('persistent-conn', null, 'none'),
  o('nosort', null, 'none'),
  o('sort', null, 'none'),
  o('exact', 'X', 'none'),
  o('ipv6', '6', 'none'),
  o('ops', 'o', 'none'),
  o('pe', null, 'string'),
  o('sched-flags', 'b', 'string'),
  o('mcast-group', null, 'string'),
  o('mcast-port', null, 'string'),
  o('mcast-ttl', null, 'string'),
  o('sync-maxlen', null, 'string'),
  o('tun-info', null, 'none'),
  o('tun-type', null, 'string'),
  o('tun-port', null, 'string'),
  o('tun-nocsum', null, 'none'),
  o('tun-csum', null, 'none'),
  o('tun-remcsum', null, 'none'),
  o('proxy-protocol', null, 'string'),
];

/** Printing format flags (FMT_*). */
export const FMT_NONE = 0x0000;
export const FMT_NUMERIC = 0x0001;
export const FMT_RULE = 0x0002;
export const FMT_STATS = 0x0004;
export const FMT_RATE = 0x0008;
export const FMT_THRESHOLDS = 0x0010;
export const FMT_PERSISTENTCONN = 0x0020;
export const FMT_NOSORT = 0x0040;
export const FMT_EXACT = 0x0080;
export const FMT_TUN_INFO = 0x0100;

/** Defaults (ipvsadm.c). */
export const DEF_SCHED = 'wlc';
export const DEF_MCAST_IFN = 'eth0';
/** `-p` without a value: IPVS_SVC_PERSISTENT_TIMEOUT = 6 × 60 s. */
export const DEF_PERSISTENT_TIMEOUT = 360;
/** Largest timeout ipvsadm accepts: 31 days. */
export const MAX_TIMEOUT = 86400 * 31;
