/*
 * ipvs_native: the only C in ipvs-ts. A small N-API addon for what Node cannot do by itself:
 *
 *   - AF_PACKET sockets with memory-mapped TPACKET_V3 receive and transmit rings, handed to
 *     JavaScript as external ArrayBuffers (batches cross the boundary, never single frames);
 *   - readiness of any fd through a libuv poll handle on the main loop;
 *   - PACKET_FANOUT, PACKET_STATISTICS;
 *   - TUN/TAP devices (IFF_TUN / IFF_TAP with IFF_NO_PI) and batched non-blocking read/write;
 *   - interface facts (index, MAC, MTU, flags, GRO / LRO) by ioctl, and a CAP_NET_RAW probe;
 *   - zeroed memory on transparent huge pages for the connection table;
 *   - opening any of these inside a named network namespace (setns on the calling thread,
 *     then back), so tests and the daemon can use namespaces without `ip netns exec`.
 *
 * No packet decision is made here: the receive walk only lists (offset, length, ...) of ready
 * frames into a caller-provided Int32Array, and transmit only flips slot status words and kicks
 * the kernel once per batch. See docs/native.md.
 *
 * Transmit uses TPACKET_V3 (PACKET_VERSION is per socket; V3 transmit needs Linux >= 4.11):
 * fixed-size slots, tpacket3_hdr at the slot start, frame bytes at TPACKET3_HDRLEN -
 * sizeof(struct sockaddr_ll) (= 48). Receive uses TPACKET_V2 (rxVersion 2) or TPACKET_V3. V3: the
 * kernel fills variable-size frames into blocks and retires a block to user space when it is full
 * or its timer (>= 1 ms) expires, so at low rates every frame waits for the timer. V2: fixed-size
 * frame slots, each handed to user space (and the socket made readable) as soon as it is written.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>

#include "splice.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif
#ifndef PACKET_VNET_HDR
#define PACKET_VNET_HDR 15
#endif

/* Descriptor stride (int32 words per frame) in the arrays rxPoll / fdReadBatch fill. */
#define DESC_STRIDE 4
#define TX_DATA_OFFSET (TPACKET3_HDRLEN - sizeof(struct sockaddr_ll))
/* struct virtio_net_hdr (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset): 10 bytes. */
#define VNET_HDR_LEN 10
#define RX_SLL_OFFSET (TPACKET_ALIGN(sizeof(struct tpacket3_hdr)))
#define RX2_SLL_OFFSET (TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                      */

#define NAPI_CALL(env, call)                                                                     \
  do {                                                                                           \
    napi_status status_ = (call);                                                                \
    if (status_ != napi_ok) {                                                                    \
      const napi_extended_error_info *info_ = NULL;                                              \
      napi_get_last_error_info((env), &info_);                                                   \
      bool pending_;                                                                             \
      napi_is_exception_pending((env), &pending_);                                               \
      if (!pending_) {                                                                           \
        const char *m_ = (info_ && info_->error_message) ? info_->error_message : "N-API call failed"; \
        napi_throw_error((env), "IPVS_NATIVE_NAPI", m_);                                         \
      }                                                                                          \
      return NULL;                                                                               \
    }                                                                                            \
  } while (0)

static const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *n = strerrorname_np(err);
  if (n) return n;
#endif
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENODEV: return "ENODEV";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case ENOMEM: return "ENOMEM";
    case EAGAIN: return "EAGAIN";
    case ENOBUFS: return "ENOBUFS";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    default: return "EUNKNOWN";
  }
}

/* Throws an Error with code = errno name, errno = number, syscall = what failed. */
static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[320];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_value code, m, e, n, s;
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, code, m, &e);
  napi_create_int32(env, err, &n);
  napi_set_named_property(env, e, "errno", n);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, e, "syscall", s);
  napi_throw(env, e);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/* Reads an optional numeric property; leaves *out unchanged when absent or undefined. */
static int opt_u32(napi_env env, napi_value obj, const char *key, uint32_t *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 1;
  napi_value v;
  napi_valuetype t;
  napi_get_named_property(env, obj, key, &v);
  napi_typeof(env, v, &t);
  if (t == napi_undefined) return 1;
  return get_u32(env, v, out);
}

static int opt_bool(napi_env env, napi_value obj, const char *key, bool *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 1;
  napi_value v;
  napi_valuetype t;
  napi_get_named_property(env, obj, key, &v);
  napi_typeof(env, v, &t);
  if (t == napi_undefined) return 1;
  return napi_get_value_bool(env, v, out) == napi_ok;
}

/* Copies an optional string argument; returns 0 when absent/undefined/null, 1 when copied, -1 on type error. */
static int opt_string(napi_env env, napi_value v, char *buf, size_t cap) {
  napi_valuetype t;
  if (v == NULL) return 0;
  napi_typeof(env, v, &t);
  if (t == napi_undefined || t == napi_null) return 0;
  if (t != napi_string) return -1;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) return -1;
  if (len >= cap - 1) return -1;
  return 1;
}

static napi_value make_u32(napi_env env, uint32_t v) {
  napi_value r;
  napi_create_uint32(env, v, &r);
  return r;
}

static napi_value make_i32(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static void set_u32(napi_env env, napi_value obj, const char *key, uint32_t v) {
  napi_set_named_property(env, obj, key, make_u32(env, v));
}

/* Gets a typed array's data pointer and element count; checks its element type. */
static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) return 0;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, data, &ab, &off) != napi_ok) return 0;
  return type == want;
}

/* ------------------------------------------------------------------------------------------ */
/* network namespaces                                                                          */

/* Enters the netns at `path` on this thread; *saved receives the fd to come back with. */
static int netns_enter(const char *path, int *saved) {
  *saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (*saved < 0) return -errno;
  int nfd = open(path, O_RDONLY | O_CLOEXEC);
  if (nfd < 0) {
    int e = errno;
    close(*saved);
    *saved = -1;
    return -e;
  }
  if (setns(nfd, CLONE_NEWNET) < 0) {
    int e = errno;
    close(nfd);
    close(*saved);
    *saved = -1;
    return -e;
  }
  close(nfd);
  return 0;
}

static void netns_leave(int saved) {
  if (saved < 0) return;
  if (setns(saved, CLONE_NEWNET) < 0) {
    /* Could not come back: the thread would keep living in another namespace. */
    fprintf(stderr, "ipvs_native: setns back to the original network namespace failed: %s\n", strerror(errno));
    abort();
  }
  close(saved);
}

/* ------------------------------------------------------------------------------------------ */
/* AF_PACKET with TPACKET_V3 rings                                                             */

typedef struct {
  int fd;   /* receive: RX ring, polled by the event loop */
  int txfd; /* transmit: TX ring, never polled (see PacketOpen) */
  int tx_vnet; /* TX slots carry a virtio_net_hdr before the frame */
  int closed;
  int refs; /* the handle external + the two ArrayBuffers */
  int ifindex;
  uint8_t *map;
  size_t map_len;
  uint8_t *rx;
  size_t rx_len;
  uint32_t rx_block_size, rx_block_count;
  int rx_v2;                               /* TPACKET_V2 receive ring: fixed frame slots */
  uint32_t rx_frame_size, rx_frame_count;  /* V2 */
  uint8_t *tx;
  size_t tx_len;
  uint8_t *tx_map;
  uint32_t tx_frame_size, tx_frame_count;
  /* receive cursor */
  uint32_t cur_block, cur_frame, cur_off, cur_num;
  uint32_t release_from, release_count; /* blocks walked but not yet returned to the kernel */
  napi_ref rx_ab, tx_ab;
} pkt_t;

static void pkt_release_blocks(pkt_t *p) {
  if (p->rx_v2) {
    /* V2: release_from / release_count count frame slots */
    while (p->release_count > 0) {
      struct tpacket2_hdr *h = (struct tpacket2_hdr *)(p->rx + (size_t)p->release_from * p->rx_frame_size);
      __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      p->release_from = (p->release_from + 1) % p->rx_frame_count;
      p->release_count--;
    }
    return;
  }
  while (p->release_count > 0) {
    struct tpacket_block_desc *bd = (struct tpacket_block_desc *)(p->rx + (size_t)p->release_from * p->rx_block_size);
    __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    p->release_from = (p->release_from + 1) % p->rx_block_count;
    p->release_count--;
  }
}

static void pkt_close_resources(pkt_t *p) {
  if (p->closed) return;
  p->closed = 1;
  if (p->map && p->map != MAP_FAILED) munmap(p->map, p->map_len);
  if (p->tx_map && p->tx_map != MAP_FAILED) munmap(p->tx_map, p->tx_len);
  p->map = p->tx_map = NULL;
  p->rx = p->tx = NULL;
  if (p->fd >= 0) close(p->fd);
  if (p->txfd >= 0) close(p->txfd);
  p->fd = p->txfd = -1;
}

static void pkt_unref(napi_env env, pkt_t *p) {
  if (--p->refs > 0) return;
  /* Nothing in JavaScript can reach the ring any more. */
  pkt_close_resources(p);
  if (p->rx_ab) napi_delete_reference(env, p->rx_ab);
  if (p->tx_ab) napi_delete_reference(env, p->tx_ab);
  free(p);
}

static void pkt_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  pkt_unref(env, (pkt_t *)data);
}

static void pkt_ab_finalize(napi_env env, void *data, void *hint) {
  (void)data;
  pkt_unref(env, (pkt_t *)hint);
}

static pkt_t *get_pkt(napi_env env, napi_value v) {
  void *d = NULL;
  if (napi_get_value_external(env, v, &d) != napi_ok || d == NULL) {
    throw_type(env, "expected a packet socket handle");
    return NULL;
  }
  pkt_t *p = (pkt_t *)d;
  if (p->closed) {
    napi_throw_error(env, "EBADF", "packet socket is closed");
    return NULL;
  }
  return p;
}

static int is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

/*
 * packetOpen(ifindex, opts, netnsPath?) -> { handle, fd, rx, tx, rxBlockSize, rxBlockCount,
 *   txFrameSize, txFrameCount, txDataOffset }
 * opts: rxVersion (2 or 3, default 3), rxBlockSize, rxBlockCount, rxFrameSize (V3: a hint; V2:
 *   the slot size), rxRetireMs (V3), txFrameSize, txFrameCount, ignoreOutgoing, qdiscBypass,
 *   txLinear, fanoutGroup/fanoutMode (mode|flags<<8 as the kernel packs it).
 *
 * Two sockets on the interface. The receive socket holds the RX ring and is the one the event
 * loop polls. The transmit socket holds the TX ring, is bound with protocol 0 (it receives
 * nothing) and is never polled: every transmitted skb's destructor signals write space on its
 * socket, and on a polled socket that is an epoll wake-up (a lock round trip) per frame.
 * With txLinear (default), the TX socket has PACKET_VNET_HDR and each slot starts with a
 * virtio_net_hdr whose hdr_len covers the whole frame, so the kernel copies the frame into the
 * skb's linear area: a TX ring skb otherwise references the ring's pages as zero-copy fragments,
 * which veth (and any path that must own its data) copies into a freshly allocated page.
 */
static napi_value PacketOpen(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3] = {NULL, NULL, NULL};
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t ifindex = 0;
  if (argc < 2 || !get_u32(env, argv[0], &ifindex) || ifindex == 0) return throw_type(env, "ifindex must be a positive integer");
  uint32_t rx_version = 3, rx_block_size = 1u << 18, rx_block_count = 16, rx_frame_size = 2048, rx_retire_ms = 2;
  uint32_t tx_frame_size = 2048, tx_frame_count = 512;
  bool ignore_outgoing = true, qdisc_bypass = false, tx_linear = true;
  napi_value o = argv[1];
  if (!opt_u32(env, o, "rxBlockSize", &rx_block_size) || !opt_u32(env, o, "rxBlockCount", &rx_block_count) ||
      !opt_u32(env, o, "rxFrameSize", &rx_frame_size) || !opt_u32(env, o, "rxRetireMs", &rx_retire_ms) ||
      !opt_u32(env, o, "txFrameSize", &tx_frame_size) || !opt_u32(env, o, "txFrameCount", &tx_frame_count) ||
      !opt_bool(env, o, "ignoreOutgoing", &ignore_outgoing) || !opt_bool(env, o, "qdiscBypass", &qdisc_bypass) ||
      !opt_bool(env, o, "txLinear", &tx_linear) || !opt_u32(env, o, "rxVersion", &rx_version))
    return throw_type(env, "bad packet socket options");
  if (rx_version != 2 && rx_version != 3) return throw_type(env, "rxVersion must be 2 or 3");
  if (rx_version == 2 && (!is_pow2(rx_frame_size) || rx_frame_size < 256))
    return throw_type(env, "with rxVersion 2, rxFrameSize must be a power of two of at least 256");
  long page = sysconf(_SC_PAGESIZE);
  if (rx_block_size % page || !is_pow2(rx_block_size) || rx_block_count == 0 || rx_frame_size < TPACKET3_HDRLEN ||
      rx_frame_size % TPACKET_ALIGNMENT || rx_frame_size > rx_block_size)
    return throw_type(env, "rxBlockSize must be a power-of-two multiple of the page size, rxFrameSize a multiple of 16 that fits a block");
  if (tx_frame_size < TPACKET3_HDRLEN + 64 || tx_frame_size % TPACKET_ALIGNMENT || tx_frame_count == 0)
    return throw_type(env, "txFrameSize must be a multiple of 16 above the slot header, txFrameCount positive");
  /* TX block: the smallest page multiple holding a whole number of slots, so slot i sits at i * frameSize. */
  uint32_t tx_block_size = (uint32_t)page;
  while (tx_block_size % tx_frame_size) tx_block_size += (uint32_t)page;
  uint32_t tx_per_block = tx_block_size / tx_frame_size;
  uint32_t tx_block_count = (tx_frame_count + tx_per_block - 1) / tx_per_block;
  tx_frame_count = tx_block_count * tx_per_block;

  char nspath[512];
  int has_ns = argc >= 3 ? opt_string(env, argv[2], nspath, sizeof nspath) : 0;
  if (has_ns < 0) return throw_type(env, "netns must be a path string");
  int saved = -1, rc;
  if (has_ns && (rc = netns_enter(nspath, &saved)) < 0) return throw_errno(env, "setns", -rc);

  const char *failed = NULL;
  int err = 0;
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int txfd = fd < 0 ? -1 : socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || txfd < 0) {
    err = errno;
    if (fd >= 0) close(fd);
    netns_leave(saved);
    return throw_errno(env, "socket(AF_PACKET)", err);
  }
  int v = TPACKET_V3, rv = rx_version == 2 ? TPACKET_V2 : TPACKET_V3;
  struct tpacket_req3 rreq, treq;
  memset(&rreq, 0, sizeof rreq);
  memset(&treq, 0, sizeof treq);
  rreq.tp_block_size = rx_block_size;
  rreq.tp_block_nr = rx_block_count;
  rreq.tp_frame_size = rx_frame_size;
  rreq.tp_frame_nr = (rx_block_size / rx_frame_size) * rx_block_count;
  rreq.tp_retire_blk_tov = rx_retire_ms;
  rreq.tp_feature_req_word = TP_FT_REQ_FILL_RXHASH;
  treq.tp_block_size = tx_block_size;
  treq.tp_block_nr = tx_block_count;
  treq.tp_frame_size = tx_frame_size;
  treq.tp_frame_nr = tx_frame_count;
  int one = 1, tx_vnet = 0;
  uint8_t *map = MAP_FAILED, *tx_map = MAP_FAILED;
  size_t rx_len = (size_t)rx_block_size * rx_block_count, tx_len = (size_t)tx_block_size * tx_block_count;
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)ifindex;
  struct sockaddr_ll tsll = sll;
  tsll.sll_protocol = 0; /* no receive hook: this socket only sends */

  /* V2 takes the first four fields of tpacket_req3 (struct tpacket_req) */
  socklen_t rreq_len = rx_version == 2 ? (socklen_t)sizeof(struct tpacket_req) : (socklen_t)sizeof rreq;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &rv, sizeof rv) < 0) failed = "setsockopt(PACKET_VERSION)";
  else if (ignore_outgoing && setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0)
    failed = "setsockopt(PACKET_IGNORE_OUTGOING)";
  else if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &rreq, rreq_len) < 0) failed = "setsockopt(PACKET_RX_RING)";
  else if ((map = mmap(NULL, rx_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE, fd, 0)) == MAP_FAILED &&
           (map = mmap(NULL, rx_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
    failed = "mmap(packet RX ring)";
  else if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) failed = "bind(AF_PACKET)";
  else if (setsockopt(txfd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0) failed = "setsockopt(PACKET_VERSION)";
  else if (setsockopt(txfd, SOL_PACKET, PACKET_LOSS, &one, sizeof one) < 0) failed = "setsockopt(PACKET_LOSS)";
  else if (qdisc_bypass && setsockopt(txfd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0)
    failed = "setsockopt(PACKET_QDISC_BYPASS)";
  else {
    /* A kernel without PACKET_VNET_HDR (or without it on packet sockets) falls back to fragments. */
    tx_vnet = tx_linear && setsockopt(txfd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) == 0;
    if (setsockopt(txfd, SOL_PACKET, PACKET_TX_RING, &treq, sizeof treq) < 0) failed = "setsockopt(PACKET_TX_RING)";
    else if ((tx_map = mmap(NULL, tx_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE, txfd, 0)) ==
                 MAP_FAILED &&
             (tx_map = mmap(NULL, tx_len, PROT_READ | PROT_WRITE, MAP_SHARED, txfd, 0)) == MAP_FAILED)
      failed = "mmap(packet TX ring)";
    else if (bind(txfd, (struct sockaddr *)&tsll, sizeof tsll) < 0) failed = "bind(AF_PACKET)";
  }
  if (failed) {
    err = errno;
    if (map != MAP_FAILED) munmap(map, rx_len);
    if (tx_map != MAP_FAILED) munmap(tx_map, tx_len);
    close(fd);
    close(txfd);
    netns_leave(saved);
    return throw_errno(env, failed, err);
  }
  netns_leave(saved);

  pkt_t *p = calloc(1, sizeof *p);
  if (!p) {
    munmap(map, rx_len);
    munmap(tx_map, tx_len);
    close(fd);
    close(txfd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  p->fd = fd;
  p->txfd = txfd;
  p->tx_vnet = tx_vnet;
  p->ifindex = (int)ifindex;
  p->map = map;
  p->map_len = rx_len;
  p->rx = map;
  p->rx_len = rx_len;
  p->rx_block_size = rx_block_size;
  p->rx_block_count = rx_block_count;
  p->rx_v2 = rx_version == 2;
  p->rx_frame_size = rx_frame_size;
  p->rx_frame_count = rreq.tp_frame_nr;
  p->tx = p->tx_map = tx_map;
  p->tx_len = tx_len;
  p->tx_frame_size = tx_frame_size;
  p->tx_frame_count = tx_frame_count;
  p->refs = 1;

  napi_value handle, rx_ab, tx_ab, result;
  if (napi_create_external(env, p, pkt_finalize, NULL, &handle) != napi_ok) {
    pkt_close_resources(p);
    free(p);
    return throw_errno(env, "napi_create_external", ENOMEM);
  }
  /* From here the handle's finalizer owns p. */
  NAPI_CALL(env, napi_create_external_arraybuffer(env, p->rx, rx_len, pkt_ab_finalize, p, &rx_ab));
  p->refs++;
  NAPI_CALL(env, napi_create_external_arraybuffer(env, p->tx, tx_len, pkt_ab_finalize, p, &tx_ab));
  p->refs++;
  NAPI_CALL(env, napi_create_reference(env, rx_ab, 0, &p->rx_ab));
  NAPI_CALL(env, napi_create_reference(env, tx_ab, 0, &p->tx_ab));
  NAPI_CALL(env, napi_create_object(env, &result));
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "rx", rx_ab);
  napi_set_named_property(env, result, "tx", tx_ab);
  set_u32(env, result, "fd", (uint32_t)fd);
  set_u32(env, result, "rxBlockSize", rx_block_size);
  set_u32(env, result, "rxBlockCount", rx_block_count);
  set_u32(env, result, "rxVersion", rx_version);
  set_u32(env, result, "rxFrameSize", rx_frame_size);
  set_u32(env, result, "rxFrameCount", rreq.tp_frame_nr);
  set_u32(env, result, "txFrameSize", tx_frame_size);
  set_u32(env, result, "txFrameCount", tx_frame_count);
  set_u32(env, result, "txDataOffset", (uint32_t)(TX_DATA_OFFSET + (tx_vnet ? VNET_HDR_LEN : 0)));
  napi_value lin;
  napi_get_boolean(env, tx_vnet != 0, &lin);
  napi_set_named_property(env, result, "txLinear", lin);
  return result;
}

/*
 * packetRxPoll(handle, desc: Int32Array, max) -> frames listed (0..max).
 * First hands back to the kernel every block (V2: every frame slot) the previous call walked (so
 * the views of the previous batch become invalid), then lists up to `max` ready frames: per frame
 * [offset in rx, captured length, wire length, tp_status & 0xffff | sll_pkttype << 16].
 */
static uint32_t rx_poll_v2(pkt_t *p, int32_t *desc, uint32_t max) {
  uint32_t n = 0;
  while (n < max) {
    size_t base = (size_t)p->cur_frame * p->rx_frame_size;
    struct tpacket2_hdr *h = (struct tpacket2_hdr *)(p->rx + base);
    uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (!(st & TP_STATUS_USER)) break;
    struct sockaddr_ll *sll = (struct sockaddr_ll *)((uint8_t *)h + RX2_SLL_OFFSET);
    int32_t *d = desc + (size_t)n * DESC_STRIDE;
    d[0] = (int32_t)(base + h->tp_mac);
    d[1] = (int32_t)h->tp_snaplen;
    d[2] = (int32_t)h->tp_len;
    d[3] = (int32_t)((st & 0xffff) | ((uint32_t)sll->sll_pkttype << 16));
    if (p->release_count == 0) p->release_from = p->cur_frame;
    p->release_count++;
    p->cur_frame = (p->cur_frame + 1) % p->rx_frame_count;
    n++;
  }
  return n;
}

static napi_value PacketRxPoll(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pkt_t *p = get_pkt(env, argv[0]);
  if (!p) return NULL;
  int32_t *desc;
  size_t dlen;
  uint32_t max;
  if (!get_typed(env, argv[1], napi_int32_array, (void **)&desc, &dlen)) return throw_type(env, "desc must be an Int32Array");
  if (!get_u32(env, argv[2], &max)) return throw_type(env, "max must be a non-negative integer");
  if ((size_t)max * DESC_STRIDE > dlen) max = (uint32_t)(dlen / DESC_STRIDE);
  pkt_release_blocks(p);
  if (p->rx_v2) return make_u32(env, rx_poll_v2(p, desc, max));
  uint32_t n = 0;
  while (n < max) {
    uint8_t *blk = p->rx + (size_t)p->cur_block * p->rx_block_size;
    struct tpacket_block_desc *bd = (struct tpacket_block_desc *)blk;
    if (p->cur_frame == 0) {
      uint32_t st = __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
      if (!(st & TP_STATUS_USER)) break;
      p->cur_num = bd->hdr.bh1.num_pkts;
      p->cur_off = bd->hdr.bh1.offset_to_first_pkt;
    }
    while (p->cur_frame < p->cur_num && n < max) {
      struct tpacket3_hdr *h = (struct tpacket3_hdr *)(blk + p->cur_off);
      struct sockaddr_ll *sll = (struct sockaddr_ll *)((uint8_t *)h + RX_SLL_OFFSET);
      int32_t *d = desc + (size_t)n * DESC_STRIDE;
      d[0] = (int32_t)((size_t)p->cur_block * p->rx_block_size + p->cur_off + h->tp_mac);
      d[1] = (int32_t)h->tp_snaplen;
      d[2] = (int32_t)h->tp_len;
      d[3] = (int32_t)((h->tp_status & 0xffff) | ((uint32_t)sll->sll_pkttype << 16));
      p->cur_off += h->tp_next_offset;
      p->cur_frame++;
      n++;
    }
    if (p->cur_frame >= p->cur_num) {
      /* Block walked to its end: return it at the next poll, once JS is done with the batch. */
      if (p->release_count == 0) p->release_from = p->cur_block;
      p->release_count++;
      p->cur_block = (p->cur_block + 1) % p->rx_block_count;
      p->cur_frame = 0;
      p->cur_num = 0;
    }
  }
  return make_u32(env, n);
}

/* packetRxRelease(handle): returns every walked block now (after the last batch is processed). */
static napi_value PacketRxRelease(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pkt_t *p = get_pkt(env, argv[0]);
  if (!p) return NULL;
  pkt_release_blocks(p);
  return NULL;
}

/*
 * packetTxSend(handle, start, count) -> bytes the kernel took (>= 0) or -errno for EAGAIN/ENOBUFS.
 * JS has written frame bytes at slot*txFrameSize + txDataOffset and tp_len; this marks slots
 * [start, start+count) (mod txFrameCount) SEND_REQUEST and kicks the socket once. With a
 * virtio_net_hdr in the slot, it is filled here (no offloads, hdr_len = the whole frame) and
 * tp_len grows by its size.
 */
static napi_value PacketTxSend(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pkt_t *p = get_pkt(env, argv[0]);
  if (!p) return NULL;
  uint32_t start, count;
  if (!get_u32(env, argv[1], &start) || !get_u32(env, argv[2], &count) || start >= p->tx_frame_count ||
      count > p->tx_frame_count)
    return throw_type(env, "bad TX slot range");
  for (uint32_t i = 0; i < count; i++) {
    uint32_t slot = (start + i) % p->tx_frame_count;
    struct tpacket3_hdr *h = (struct tpacket3_hdr *)(p->tx + (size_t)slot * p->tx_frame_size);
    h->tp_next_offset = 0;
    if (p->tx_vnet) {
      uint8_t *vh = (uint8_t *)h + TX_DATA_OFFSET;
      uint16_t len = (uint16_t)h->tp_len;
      memset(vh, 0, VNET_HDR_LEN);
      memcpy(vh + 2, &len, 2); /* hdr_len, little-endian like the host (virtio legacy) */
      h->tp_len += VNET_HDR_LEN;
    }
    __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
  }
  ssize_t r = sendto(p->txfd, NULL, 0, MSG_DONTWAIT, NULL, 0);
  if (r < 0) {
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) return make_i32(env, -e);
    return throw_errno(env, "sendto(AF_PACKET ring)", e);
  }
  return make_i32(env, (int32_t)r);
}

/* packetSetFanout(handle, group, modeAndFlags): PACKET_FANOUT with id | type_flags << 16. */
static napi_value PacketSetFanout(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pkt_t *p = get_pkt(env, argv[0]);
  if (!p) return NULL;
  uint32_t group, mode;
  if (!get_u32(env, argv[1], &group) || !get_u32(env, argv[2], &mode) || group > 0xffff || mode > 0xffff)
    return throw_type(env, "fanout group and mode must be 16-bit integers");
  int arg = (int)(group | (mode << 16));
  if (setsockopt(p->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) < 0) return throw_errno(env, "setsockopt(PACKET_FANOUT)", errno);
  return NULL;
}

/* packetStats(handle) -> { packets, drops, freezeQueueCount } since the previous call (the kernel resets them). */
static napi_value PacketStats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pkt_t *p = get_pkt(env, argv[0]);
  if (!p) return NULL;
  struct tpacket_stats_v3 st;
  socklen_t len = sizeof st;
  memset(&st, 0, sizeof st);
  if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) return throw_errno(env, "getsockopt(PACKET_STATISTICS)", errno);
  napi_value r;
  NAPI_CALL(env, napi_create_object(env, &r));
  set_u32(env, r, "packets", st.tp_packets);
  set_u32(env, r, "drops", st.tp_drops);
  set_u32(env, r, "freezeQueueCount", st.tp_freeze_q_cnt);
  return r;
}

/* packetClose(handle): detaches the ring ArrayBuffers (JS views become empty), unmaps, closes. */
static napi_value PacketClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *d = NULL;
  if (napi_get_value_external(env, argv[0], &d) != napi_ok || d == NULL) return throw_type(env, "expected a packet socket handle");
  pkt_t *p = (pkt_t *)d;
  if (p->closed) return NULL;
  napi_ref refs[2] = {p->rx_ab, p->tx_ab};
  for (int i = 0; i < 2; i++) {
    napi_value ab = NULL;
    if (refs[i] && napi_get_reference_value(env, refs[i], &ab) == napi_ok && ab != NULL) {
      bool detached = false;
      napi_is_detached_arraybuffer(env, ab, &detached);
      if (!detached && napi_detach_arraybuffer(env, ab) != napi_ok) {
        /* Cannot make JS views safe: keep the mapping alive, close only the socket. */
        close(p->fd);
        if (p->txfd >= 0) close(p->txfd);
        p->fd = p->txfd = -1;
        p->closed = 1;
        p->map = NULL; /* leaked on purpose; freed never (JS may still read it) */
        return NULL;
      }
    }
  }
  pkt_close_resources(p);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* readiness: a uv_poll_t on the main loop calling back into JS                                */

/*
 * The poll watches a dup() of the caller's fd, closed only after libuv's close callback: libuv
 * removes an fd from epoll when the poll stops or closes, and if the caller had closed the fd and
 * its number had been reused, that removal would hit the new fd. The callback reference is strong
 * only while the poll is started, so an unclosed, stopped backend can be garbage-collected.
 */
typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
  int fd; /* our dup */
  int started;
  int closing;
  int freed_by_close; /* uv_close issued: on_closed frees */
  int external_alive;
} pollw_t;

static void poll_on_closed(uv_handle_t *h) {
  pollw_t *w = (pollw_t *)h->data;
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  w->freed_by_close = 2;
  if (!w->external_alive) free(w);
}

static void poll_begin_close(pollw_t *w) {
  if (w->closing) return;
  w->closing = 1;
  uv_poll_stop(&w->poll);
  if (w->cb) {
    napi_delete_reference(w->env, w->cb);
    w->cb = NULL;
  }
  if (w->ctx) {
    napi_async_destroy(w->env, w->ctx);
    w->ctx = NULL;
  }
  w->freed_by_close = 1;
  uv_close((uv_handle_t *)&w->poll, poll_on_closed);
}

static void poll_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  pollw_t *w = (pollw_t *)data;
  w->external_alive = 0;
  if (!w->closing) poll_begin_close(w); /* on_closed frees */
  else if (w->freed_by_close == 2) free(w);
}

static void poll_on_event(uv_poll_t *h, int status, int events) {
  pollw_t *w = (pollw_t *)h->data;
  if (w->closing || !w->cb) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb = NULL, recv, argv[2], result;
  napi_get_reference_value(env, w->cb, &cb);
  if (cb == NULL) {
    napi_close_handle_scope(env, scope);
    return;
  }
  napi_get_global(env, &recv); /* napi_make_callback needs an object receiver */
  napi_create_int32(env, status, &argv[0]);
  napi_create_int32(env, events, &argv[1]);
  napi_status st = napi_make_callback(env, w->ctx, recv, cb, 2, argv, &result);
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static pollw_t *get_poll(napi_env env, napi_value v) {
  void *d = NULL;
  if (napi_get_value_external(env, v, &d) != napi_ok || d == NULL) {
    throw_type(env, "expected a poll handle");
    return NULL;
  }
  return (pollw_t *)d;
}

/* pollOpen(fd, callback(status, events)) -> handle. Not started: call pollStart. */
static napi_value PollOpen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  napi_valuetype t;
  if (argc < 2 || !get_i32(env, argv[0], &fd) || fd < 0) return throw_type(env, "fd must be a non-negative integer");
  napi_typeof(env, argv[1], &t);
  if (t != napi_function) return throw_type(env, "callback must be a function");
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  pollw_t *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "calloc", ENOMEM);
  w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (w->fd < 0) {
    int e = errno;
    free(w);
    return throw_errno(env, "fcntl(F_DUPFD_CLOEXEC)", e);
  }
  int r = uv_poll_init(loop, &w->poll, w->fd);
  if (r < 0) {
    close(w->fd);
    free(w);
    return throw_errno(env, "uv_poll_init", -r);
  }
  w->poll.data = w;
  w->env = env;
  w->external_alive = 1;
  napi_value res_name, handle;
  napi_create_string_utf8(env, "ipvs:poll", NAPI_AUTO_LENGTH, &res_name);
  napi_create_reference(env, argv[1], 0, &w->cb); /* weak until started */
  napi_async_init(env, NULL, res_name, &w->ctx);
  if (napi_create_external(env, w, poll_finalize, NULL, &handle) != napi_ok) {
    poll_begin_close(w);
    w->external_alive = 0;
    return throw_errno(env, "napi_create_external", ENOMEM);
  }
  return handle;
}

/* pollStart(handle, events: 1 readable | 2 writable). Level-triggered. */
static napi_value PollStart(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pollw_t *w = get_poll(env, argv[0]);
  if (!w) return NULL;
  uint32_t ev = UV_READABLE;
  if (argc >= 2) get_u32(env, argv[1], &ev);
  if (w->closing) return NULL;
  int r = uv_poll_start(&w->poll, (int)ev, poll_on_event);
  if (r < 0) return throw_errno(env, "uv_poll_start", -r);
  if (!w->started) {
    uint32_t count;
    napi_reference_ref(env, w->cb, &count);
    w->started = 1;
  }
  return NULL;
}

static napi_value PollStop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pollw_t *w = get_poll(env, argv[0]);
  if (!w) return NULL;
  if (!w->closing) uv_poll_stop(&w->poll);
  if (w->started && !w->closing) {
    uint32_t count;
    napi_reference_unref(env, w->cb, &count);
    w->started = 0;
  }
  return NULL;
}

/* pollRef(handle, ref: boolean): whether the poll keeps the event loop alive. */
static napi_value PollRef(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pollw_t *w = get_poll(env, argv[0]);
  if (!w) return NULL;
  bool ref = true;
  napi_get_value_bool(env, argv[1], &ref);
  if (!w->closing) {
    if (ref) uv_ref((uv_handle_t *)&w->poll);
    else uv_unref((uv_handle_t *)&w->poll);
  }
  return NULL;
}

static napi_value PollClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pollw_t *w = get_poll(env, argv[0]);
  if (!w) return NULL;
  poll_begin_close(w);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* TUN/TAP and batched fd I/O                                                                   */

/* tunOpen(name, tap: boolean, multiQueue: boolean, netnsPath?) -> { fd, name } (fd non-blocking). */
static napi_value TunOpen(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4] = {NULL, NULL, NULL, NULL};
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ + 1] = {0};
  if (opt_string(env, argv[0], name, sizeof name) < 0) return throw_type(env, "TUN name must be a string shorter than 16 bytes");
  bool tap = false, mq = false;
  if (argv[1]) napi_get_value_bool(env, argv[1], &tap);
  if (argv[2]) napi_get_value_bool(env, argv[2], &mq);
  char nspath[512];
  int has_ns = opt_string(env, argv[3], nspath, sizeof nspath);
  if (has_ns < 0) return throw_type(env, "netns must be a path string");
  int saved = -1, rc;
  if (has_ns && (rc = netns_enter(nspath, &saved)) < 0) return throw_errno(env, "setns", -rc);
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    netns_leave(saved);
    return throw_errno(env, "open(/dev/net/tun)", e);
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = (short)((tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI | (mq ? IFF_MULTI_QUEUE : 0));
  if (name[0]) memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    netns_leave(saved);
    return throw_errno(env, "ioctl(TUNSETIFF)", e);
  }
  netns_leave(saved);
  napi_value r, s;
  NAPI_CALL(env, napi_create_object(env, &r));
  set_u32(env, r, "fd", (uint32_t)fd);
  ifr.ifr_name[IFNAMSIZ - 1] = 0;
  napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, r, "name", s);
  return r;
}

/*
 * fdReadBatch(fd, buf: Uint8Array, slotSize, desc: Int32Array, max) -> frames read.
 * Reads one datagram per slot (slot i at i*slotSize) until EAGAIN or max; desc as in rxPoll.
 */
static napi_value FdReadBatch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t slot, max;
  uint8_t *buf;
  size_t blen, dlen;
  int32_t *desc;
  if (argc < 5 || !get_i32(env, argv[0], &fd) || !get_typed(env, argv[1], napi_uint8_array, (void **)&buf, &blen) ||
      !get_u32(env, argv[2], &slot) || slot == 0 || !get_typed(env, argv[3], napi_int32_array, (void **)&desc, &dlen) ||
      !get_u32(env, argv[4], &max))
    return throw_type(env, "fdReadBatch(fd, Uint8Array, slotSize, Int32Array, max)");
  if ((size_t)max * slot > blen) max = (uint32_t)(blen / slot);
  if ((size_t)max * DESC_STRIDE > dlen) max = (uint32_t)(dlen / DESC_STRIDE);
  uint32_t n = 0;
  while (n < max) {
    ssize_t r = read(fd, buf + (size_t)n * slot, slot);
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (n > 0) break;
      return throw_errno(env, "read", e);
    }
    int32_t *d = desc + (size_t)n * DESC_STRIDE;
    d[0] = (int32_t)((size_t)n * slot);
    d[1] = (int32_t)r;
    d[2] = (int32_t)r;
    d[3] = 0;
    n++;
  }
  return make_u32(env, n);
}

/*
 * fdWriteBatch(fd, buf: Uint8Array, desc: Int32Array, count) -> frames written.
 * One write per frame (desc [offset, length, ...] with DESC_STRIDE words each); stops at EAGAIN.
 */
static napi_value FdWriteBatch(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t count;
  uint8_t *buf;
  size_t blen, dlen;
  int32_t *desc;
  if (argc < 4 || !get_i32(env, argv[0], &fd) || !get_typed(env, argv[1], napi_uint8_array, (void **)&buf, &blen) ||
      !get_typed(env, argv[2], napi_int32_array, (void **)&desc, &dlen) || !get_u32(env, argv[3], &count))
    return throw_type(env, "fdWriteBatch(fd, Uint8Array, Int32Array, count)");
  if ((size_t)count * DESC_STRIDE > dlen) count = (uint32_t)(dlen / DESC_STRIDE);
  uint32_t n = 0;
  while (n < count) {
    int32_t off = desc[(size_t)n * DESC_STRIDE], len = desc[(size_t)n * DESC_STRIDE + 1];
    if (off < 0 || len < 0 || (size_t)off + (size_t)len > blen) return throw_type(env, "frame descriptor outside the buffer");
    ssize_t r = write(fd, buf + off, (size_t)len);
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (n > 0) break;
      return throw_errno(env, "write", e);
    }
    n++;
  }
  return make_u32(env, n);
}

static napi_value FdClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (!get_i32(env, argv[0], &fd)) return throw_type(env, "fd must be an integer");
  if (close(fd) < 0) return throw_errno(env, "close", errno);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* TCP: the proxy's last-data fast path                                                        */

/*
 * tcpPeekEof(fd) -> 1 when the peer's FIN is the next thing to read (nothing unread before it),
 * 0 when data is unread or nothing has arrived, -errno on an error. One recv(MSG_PEEK) of a byte.
 */
static napi_value TcpPeekEof(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "tcpPeekEof(fd)");
  char c;
  ssize_t r;
  do r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  int32_t v = r == 0 ? 1 : r > 0 ? 0 : (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
  return make_i32(env, v);
}

/*
 * tcpSendFin(fd, buf: Uint8Array, len) -> bytes sent, or -errno.
 * Sends the first len bytes of buf with MSG_MORE and, when all of them went, shuts the write side:
 * the kernel then puts the FIN on the segment that carries the data (one segment instead of two).
 * When fewer than len bytes went nothing is shut down: the caller queues the rest and ends later.
 */
static napi_value TcpSendFin(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t len;
  uint8_t *buf;
  size_t blen;
  if (argc < 3 || !get_i32(env, argv[0], &fd) || !get_typed(env, argv[1], napi_uint8_array, (void **)&buf, &blen) ||
      !get_u32(env, argv[2], &len) || len > blen)
    return throw_type(env, "tcpSendFin(fd, Uint8Array, len)");
  ssize_t r;
  do r = send(fd, buf, len, MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return make_i32(env, (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno);
  if ((uint32_t)r == len && shutdown(fd, SHUT_WR) < 0) return make_i32(env, -errno);
  return make_i32(env, (int32_t)r);
}

/* ------------------------------------------------------------------------------------------ */
/* interface facts and capability probe                                                        */

/* ifInfo(name, netnsPath?) -> { name, index, mac (6-byte Uint8Array), hwType, mtu, flags }. */
static napi_value IfInfo(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = {NULL, NULL};
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[64];
  if (opt_string(env, argv[0], name, sizeof name) != 1 || strlen(name) >= IFNAMSIZ)
    return throw_type(env, "interface name must be a string shorter than 16 bytes");
  char nspath[512];
  int has_ns = opt_string(env, argv[1], nspath, sizeof nspath);
  if (has_ns < 0) return throw_type(env, "netns must be a path string");
  int saved = -1, rc;
  if (has_ns && (rc = netns_enter(nspath, &saved)) < 0) return throw_errno(env, "setns", -rc);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    int e = errno;
    netns_leave(saved);
    return throw_errno(env, "socket", e);
  }
  struct ifreq ifr;
  int index = 0, mtu = 0, flags = 0, hwtype = 0;
  uint8_t mac[6] = {0};
  const char *failed = NULL;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) failed = "ioctl(SIOCGIFINDEX)";
  else {
    index = ifr.ifr_ifindex;
    if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) failed = "ioctl(SIOCGIFHWADDR)";
    else {
      hwtype = ifr.ifr_hwaddr.sa_family;
      memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
      if (ioctl(s, SIOCGIFMTU, &ifr) < 0) failed = "ioctl(SIOCGIFMTU)";
      else {
        mtu = ifr.ifr_mtu;
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) failed = "ioctl(SIOCGIFFLAGS)";
        else flags = (unsigned short)ifr.ifr_flags;
      }
    }
  }
  /* Receive offloads that coalesce segments (-1: the driver does not say). */
  int gro = -1, lro = -1;
  if (!failed) {
    struct ethtool_value ev;
    memset(&ev, 0, sizeof ev);
    ev.cmd = ETHTOOL_GGRO;
    ifr.ifr_data = (char *)&ev;
    if (ioctl(s, SIOCETHTOOL, &ifr) == 0) gro = ev.data ? 1 : 0;
    memset(&ev, 0, sizeof ev);
    ev.cmd = ETHTOOL_GFLAGS;
    ifr.ifr_data = (char *)&ev;
    if (ioctl(s, SIOCETHTOOL, &ifr) == 0) lro = (ev.data & ETH_FLAG_LRO) ? 1 : 0;
  }
  int e = errno;
  close(s);
  netns_leave(saved);
  if (failed) return throw_errno(env, failed, e);
  napi_value r, nm, macab, macarr;
  NAPI_CALL(env, napi_create_object(env, &r));
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &nm);
  napi_set_named_property(env, r, "name", nm);
  set_u32(env, r, "index", (uint32_t)index);
  void *macdata;
  NAPI_CALL(env, napi_create_arraybuffer(env, 6, &macdata, &macab));
  memcpy(macdata, mac, 6);
  NAPI_CALL(env, napi_create_typedarray(env, napi_uint8_array, 6, macab, 0, &macarr));
  napi_set_named_property(env, r, "mac", macarr);
  set_u32(env, r, "hwType", (uint32_t)hwtype);
  set_u32(env, r, "mtu", (uint32_t)mtu);
  set_u32(env, r, "flags", (uint32_t)flags);
  napi_value v;
  napi_create_int32(env, gro, &v);
  napi_set_named_property(env, r, "gro", v);
  napi_create_int32(env, lro, &v);
  napi_set_named_property(env, r, "lro", v);
  return r;
}

/* capNetRaw() -> null when an AF_PACKET socket can be opened, else the errno name (EPERM, EAFNOSUPPORT...). */
static napi_value CapNetRaw(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  napi_value r;
  if (fd >= 0) {
    close(fd);
    napi_get_null(env, &r);
    return r;
  }
  napi_create_string_utf8(env, errno_name(errno), NAPI_AUTO_LENGTH, &r);
  return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Large tables on transparent huge pages. */

#define HUGE_ALIGN ((size_t)2 << 20)

static void huge_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

/*
 * hugeBuffer(bytes) -> ArrayBuffer: zeroed anonymous memory, 2 MiB aligned and advised
 * MADV_HUGEPAGE, so a table larger than the TLB's reach costs one page-table walk per 2 MiB
 * instead of per 4 KiB. Returns null if the mapping fails (the caller allocates normally).
 */
static napi_value HugeBuffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double want = 0;
  if (argc < 1 || napi_get_value_double(env, argv[0], &want) != napi_ok || !(want >= 1) ||
      want > (double)((size_t)1 << 40)) {
    napi_throw_range_error(env, "ERR_ARG", "hugeBuffer: bytes must be a positive number");
    return NULL;
  }
  size_t len = ((size_t)want + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
  size_t span = len + HUGE_ALIGN;
  uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  napi_value r;
  if (raw == MAP_FAILED) {
    napi_get_null(env, &r);
    return r;
  }
  uint8_t *p = (uint8_t *)(((uintptr_t)raw + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
  if (p > raw) munmap(raw, (size_t)(p - raw));
  size_t tail = (size_t)((raw + span) - (p + len));
  if (tail > 0) munmap(p + len, tail);
#ifdef MADV_HUGEPAGE
  madvise(p, len, MADV_HUGEPAGE);
#endif
  if (napi_create_external_arraybuffer(env, p, (size_t)want, huge_finalize, (void *)(uintptr_t)len,
                                       &r) != napi_ok) {
    munmap(p, len);
    napi_get_null(env, &r);
  }
  return r;
}

/* ------------------------------------------------------------------------------------------ */

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"packetOpen", NULL, PacketOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packetRxPoll", NULL, PacketRxPoll, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packetRxRelease", NULL, PacketRxRelease, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packetTxSend", NULL, PacketTxSend, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packetSetFanout", NULL, PacketSetFanout, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packetStats", NULL, PacketStats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packetClose", NULL, PacketClose, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollOpen", NULL, PollOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStart", NULL, PollStart, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStop", NULL, PollStop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollRef", NULL, PollRef, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollClose", NULL, PollClose, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunOpen", NULL, TunOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fdReadBatch", NULL, FdReadBatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fdWriteBatch", NULL, FdWriteBatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fdClose", NULL, FdClose, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tcpPeekEof", NULL, TcpPeekEof, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tcpSendFin", NULL, TcpSendFin, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ifInfo", NULL, IfInfo, NULL, NULL, NULL, napi_enumerable, NULL},
      {"capNetRaw", NULL, CapNetRaw, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hugeBuffer", NULL, HugeBuffer, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  NAPI_CALL(env, splice_define(env, exports));
  napi_value c;
  napi_create_uint32(env, DESC_STRIDE, &c);
  napi_set_named_property(env, exports, "DESC_STRIDE", c);
  napi_create_uint32(env, 1, &c);
  napi_set_named_property(env, exports, "ABI", c);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
