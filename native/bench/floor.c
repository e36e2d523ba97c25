// The floor of user-space forwarding on this kernel, for bench/netns (not part of the addon, not
// part of ipvs-ts): the cheapest direct-routing forwarder, in C, with no packet logic beyond a
// destination MAC rewrite (real servers alternate). What it costs per packet is what any
// user-space data plane pays to the kernel before doing any work of its own:
//   xdp  AF_XDP in copy mode (veth has no zero-copy): an XDP program on FRONT redirects every
//        frame to the socket's receive ring; frames go out through a second socket on BACK.
//   pkt  AF_PACKET: a TPACKET_V2 receive ring on FRONT, a TX ring with PACKET_QDISC_BYPASS on
//        BACK (as ipvs-ts's daemon), the host's own copy dropped at FRONT's ingress by the bench.
// Runs until killed; the XDP program goes with the process (a BPF link held by its descriptor).
//
//   floor xdp|pkt FRONT BACK BACK_MAC RS_MAC0 RS_MAC1
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif

static void die(const char *m) {
  perror(m);
  exit(1);
}
static long bpf(int cmd, union bpf_attr *a) { return syscall(__NR_bpf, cmd, a, sizeof(*a)); }

static void mac(const char *s, uint8_t *m) {
  sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]);
}

#define NF 4096
#define FS 2048
#define RING 2048

struct ring {
  uint32_t *prod, *cons, *flags;
  void *desc;
  uint32_t mask;
};

struct xsk {
  int fd;
  uint8_t *umem;
  struct ring rx, tx, fq, cq;
};

static void mapring(int fd, struct ring *r, struct xdp_ring_offset *o, off_t pgoff, size_t dsz) {
  size_t len = o->desc + RING * dsz;
  uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff);
  if (p == MAP_FAILED) die("mmap ring");
  r->prod = (uint32_t *)(p + o->producer);
  r->cons = (uint32_t *)(p + o->consumer);
  r->flags = (uint32_t *)(p + o->flags);
  r->desc = p + o->desc;
  r->mask = RING - 1;
}

static void xsk_open(struct xsk *x, int ifindex, int rx) {
  x->fd = socket(AF_XDP, SOCK_RAW, 0);
  if (x->fd < 0) die("socket AF_XDP");
  x->umem = mmap(NULL, NF * FS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  struct xdp_umem_reg ur = {.addr = (uint64_t)x->umem, .len = NF * FS, .chunk_size = FS, .headroom = 0};
  if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &ur, sizeof ur)) die("UMEM_REG");
  int n = RING;
  if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_FILL_RING, &n, sizeof n)) die("FILL");
  if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &n, sizeof n)) die("COMP");
  if (rx && setsockopt(x->fd, SOL_XDP, XDP_RX_RING, &n, sizeof n)) die("RX");
  if (setsockopt(x->fd, SOL_XDP, XDP_TX_RING, &n, sizeof n)) die("TX");
  struct xdp_mmap_offsets off;
  socklen_t ol = sizeof off;
  if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &ol)) die("OFFSETS");
  mapring(x->fd, &x->fq, &off.fr, XDP_UMEM_PGOFF_FILL_RING, 8);
  mapring(x->fd, &x->cq, &off.cr, XDP_UMEM_PGOFF_COMPLETION_RING, 8);
  if (rx) mapring(x->fd, &x->rx, &off.rx, XDP_PGOFF_RX_RING, sizeof(struct xdp_desc));
  mapring(x->fd, &x->tx, &off.tx, XDP_PGOFF_TX_RING, sizeof(struct xdp_desc));
  struct sockaddr_xdp sa = {.sxdp_family = AF_XDP, .sxdp_ifindex = ifindex, .sxdp_queue_id = 0,
                            .sxdp_flags = XDP_COPY | XDP_USE_NEED_WAKEUP};
  if (bind(x->fd, (void *)&sa, sizeof sa)) die("bind xsk");
  if (rx) {
    uint64_t *fq = x->fq.desc;
    uint32_t p = *x->fq.prod;
    for (int i = 0; i < RING; i++) fq[(p + i) & x->fq.mask] = (uint64_t)i * FS;
    __atomic_store_n(x->fq.prod, p + RING, __ATOMIC_RELEASE);
  }
}

static int xdp_attach(int ifindex, int xsk_fd) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_XSKMAP;
  a.key_size = 4;
  a.value_size = 4;
  a.max_entries = 1;
  int map = bpf(BPF_MAP_CREATE, &a);
  if (map < 0) die("map create");
  struct bpf_insn prog[] = {
      // r2 = ctx->rx_queue_index
      {.code = BPF_LDX | BPF_W | BPF_MEM, .dst_reg = 2, .src_reg = 1, .off = 16},
      // r1 = map (ld_imm64 pseudo map fd)
      {.code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map},
      {0},
      // r3 = XDP_PASS (default action on a miss)
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 3, .imm = XDP_PASS},
      {.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_redirect_map},
      {.code = BPF_JMP | BPF_EXIT},
  };
  char log[4096] = "";
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_XDP;
  a.insns = (uint64_t)prog;
  a.insn_cnt = sizeof prog / sizeof prog[0];
  a.license = (uint64_t) "GPL";
  a.log_buf = (uint64_t)log;
  a.log_size = sizeof log;
  a.log_level = 1;
  int pfd = bpf(BPF_PROG_LOAD, &a);
  if (pfd < 0) {
    fprintf(stderr, "%s\n", log);
    die("prog load");
  }
  memset(&a, 0, sizeof a);
  a.link_create.prog_fd = pfd;
  a.link_create.target_ifindex = ifindex;
  a.link_create.attach_type = BPF_XDP;
  a.link_create.flags = XDP_FLAGS_DRV_MODE;
  int link = bpf(BPF_LINK_CREATE, &a);
  if (link < 0) die("link create (drv mode)");
  uint32_t k = 0, v = xsk_fd;
  memset(&a, 0, sizeof a);
  a.map_fd = map;
  a.key = (uint64_t)&k;
  a.value = (uint64_t)&v;
  if (bpf(BPF_MAP_UPDATE_ELEM, &a)) die("map update");
  return link;
}

static uint8_t srcm[6], rsm[2][6];

static void run_xdp(int fi, int bi) {
  struct xsk in, out;
  xsk_open(&in, fi, 1);
  xsk_open(&out, bi, 0);
  xdp_attach(fi, in.fd);
  fprintf(stderr, "ready\n");
  // frames in flight on BACK stay within its rings; the umem frames cycle over twice as many
  uint32_t txfree = RING;
  uint32_t txnext = 0;
  unsigned rr = 0;
  struct pollfd pf = {.fd = in.fd, .events = POLLIN};
  for (;;) {
    uint32_t rc = __atomic_load_n(in.rx.prod, __ATOMIC_ACQUIRE), rcons = *in.rx.cons;
    if (rc == rcons) {
      poll(&pf, 1, 100);
      continue;
    }
    // completions of out
    uint32_t cp = __atomic_load_n(out.cq.prod, __ATOMIC_ACQUIRE), cc = *out.cq.cons;
    txfree += cp - cc;
    __atomic_store_n(out.cq.cons, cp, __ATOMIC_RELEASE);
    struct xdp_desc *rd = in.rx.desc, *td = out.tx.desc;
    uint64_t *fq = in.fq.desc;
    uint32_t tp = *out.tx.prod, fp = *in.fq.prod;
    uint32_t n = 0;
    for (; rcons != rc && n < 64; rcons++, n++) {
      struct xdp_desc *d = &rd[rcons & in.rx.mask];
      if (txfree) {
        uint64_t a = (uint64_t)(txnext++ & (NF - 1)) * FS;
        txfree--;
        uint8_t *o = out.umem + a;
        memcpy(o, in.umem + d->addr, d->len);
        memcpy(o, rsm[rr++ & 1], 6);
        memcpy(o + 6, srcm, 6);
        td[tp & out.tx.mask] = (struct xdp_desc){.addr = a, .len = d->len};
        tp++;
      }
      fq[fp++ & in.fq.mask] = d->addr & ~(uint64_t)(FS - 1);
    }
    __atomic_store_n(in.rx.cons, rcons, __ATOMIC_RELEASE);
    __atomic_store_n(in.fq.prod, fp, __ATOMIC_RELEASE);
    __atomic_store_n(out.tx.prod, tp, __ATOMIC_RELEASE);
    sendto(out.fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
    if (*in.fq.flags & XDP_RING_NEED_WAKEUP) recvfrom(in.fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
  }
}

static void run_pkt(int fi, int bi) {
  int rfd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  int tfd = socket(AF_PACKET, SOCK_RAW, 0);
  if (rfd < 0 || tfd < 0) die("socket");
  int v = TPACKET_V2;
  setsockopt(rfd, SOL_PACKET, PACKET_VERSION, &v, sizeof v);
  setsockopt(tfd, SOL_PACKET, PACKET_VERSION, &v, sizeof v);
  int one = 1;
  setsockopt(tfd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  struct tpacket_req rq = {.tp_block_size = 1 << 16, .tp_block_nr = 64, .tp_frame_size = FS,
                           .tp_frame_nr = (1 << 16) / FS * 64};
  if (setsockopt(rfd, SOL_PACKET, PACKET_RX_RING, &rq, sizeof rq)) die("rx ring");
  if (setsockopt(tfd, SOL_PACKET, PACKET_TX_RING, &rq, sizeof rq)) die("tx ring");
  size_t len = (size_t)rq.tp_block_size * rq.tp_block_nr;
  uint8_t *rr_ = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, rfd, 0);
  uint8_t *tr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, tfd, 0);
  struct sockaddr_ll sa = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = fi};
  if (bind(rfd, (void *)&sa, sizeof sa)) die("bind rx");
  struct sockaddr_ll sb = {.sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = bi};
  if (bind(tfd, (void *)&sb, sizeof sb)) die("bind tx");
  fprintf(stderr, "ready\n");
  unsigned nfr = rq.tp_frame_nr, ri = 0, ti = 0, rr = 0;
  struct pollfd pf = {.fd = rfd, .events = POLLIN};
  for (;;) {
    struct tpacket2_hdr *h = (void *)(rr_ + (size_t)ri * FS);
    if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
      poll(&pf, 1, 100);
      continue;
    }
    int n = 0;
    while (n < 64 && (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
      struct tpacket2_hdr *t = (void *)(tr + (size_t)ti * FS);
      if (h->tp_snaplen > 0 && __atomic_load_n(&t->tp_status, __ATOMIC_ACQUIRE) == TP_STATUS_AVAILABLE) {
        uint8_t *o = (uint8_t *)t + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
        memcpy(o, (uint8_t *)h + h->tp_mac, h->tp_snaplen);
        memcpy(o, rsm[rr++ & 1], 6);
        memcpy(o + 6, srcm, 6);
        t->tp_len = h->tp_snaplen;
        __atomic_store_n(&t->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
        ti = (ti + 1) % nfr;
      }
      __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      ri = (ri + 1) % nfr;
      h = (void *)(rr_ + (size_t)ri * FS);
      n++;
    }
    sendto(tfd, NULL, 0, MSG_DONTWAIT, NULL, 0);
  }
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: floor xdp|pkt FRONT BACK BACK_MAC RS_MAC0 RS_MAC1\n");
    return 2;
  }
  int fi = if_nametoindex(argv[2]), bi = if_nametoindex(argv[3]);
  if (!fi || !bi) die("ifindex");
  mac(argv[4], srcm);
  mac(argv[5], rsm[0]);
  mac(argv[6], rsm[1]);
  if (!strcmp(argv[1], "xdp")) run_xdp(fi, bi);
  else run_pkt(fi, bi);
  return 0;
}
