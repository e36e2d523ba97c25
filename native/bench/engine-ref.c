// The packet engine's fast-path work, in C, as a reference for bench/engine (not part of the addon,
// not part of ipvs-ts): what the same per-frame work costs on this machine without a JavaScript
// runtime, measured in the same run as the engine. For every frame of an established TCP
// connection it does what ipvs-ts's fast path does (src/dataplane/packet/fastpath.ts): decode the
// tuple, check the destination MAC, the IPv4 header checksum and the TTL, find the connection in
// a chained hash table of LIVE connections keyed on the client side (the batch's buckets and
// chain heads loaded ahead, as the engine's prefetch does), check its flags and destination, count
// destination / service / total statistics, run the TCP state table and set the timeout, re-arm
// the timer lazily, take a transmit slot, write the Ethernet header and copy the IP packet, lower
// the TTL and, for NAT, rewrite the address and port with incremental checksums; then hand the
// batch to the far end, which copies every frame into its receive ring, as the memory backend
// does. Frames: 64 bytes, batches of 64, refilled from 32,768 pristine frames of random live
// connections before each batch (half the table NAT to VIP:80, half DR to VIP:81).
//
//   engine-ref LIVE natIn|natOut|drIn [ROUNDS]     prints: CASE LIVE MEDIAN BEST (ns per frame)
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define BATCH 64
#define FRAME 64
#define FRAMES (1 << 15)
#define OPS (1 << 16)
#define TX_SLOTS 256
#define TX_SLOT 256
#define RING_FRAMES 4096

enum { NAT_IN, NAT_OUT, DR_IN };

// one cache line per connection, the fields the fast path reads and writes
struct conn {
  uint32_t caddr, vaddr, daddr;
  uint16_t cport, vport, dport;
  uint8_t proto, state;
  uint16_t flags;
  int32_t next;
  int32_t dest;
  uint32_t timeout;
  uint32_t inpkts;
  uint32_t wheel_slot;
  double expires;
  uint8_t pad[8];
};
_Static_assert(sizeof(struct conn) == 64, "one line per connection");

struct stats {
  uint64_t inpkts, inbytes, outpkts, outbytes;
};

struct dest {
  uint32_t addr;
  uint16_t port;
  uint16_t flags;
  uint8_t mac[6];
  struct stats st;
};

#define FWD_MASQ 0
#define FWD_DROUTE 3
#define DEST_AVAILABLE 1

static struct conn *conns;
static int32_t *heads;
static uint32_t hmask;
static struct dest dests[2];
static struct stats svc_st[2], total;
static const uint8_t our_mac[6] = {2, 0, 0, 0, 0, 0xa0};
static const uint32_t VIP = 0x0aff0064; // 10.255.0.100
static const uint32_t RS[2] = {0xc0a8010b, 0xc0a8010c};
// TCP states as the engine numbers them; only ESTABLISHED + ACK matters for these frames, the
// table is indexed [dir][event][state] as the engine's is
#define S_LAST 12
#define EV_LAST 4
static uint8_t tcp_table[3 * EV_LAST * S_LAST];
static uint32_t tcp_timeouts[S_LAST];
static double now_ms = 1e6;
static uint32_t wheel_tick = 100000;

static inline uint32_t hash_key(uint32_t proto, uint32_t addr, uint32_t port) {
  uint32_t x = addr * 0x9e3779b1u ^ (port << 16 | proto) * 0x85ebca6bu;
  x ^= x >> 15;
  x *= 0xc2b2ae35u;
  x ^= x >> 13;
  return x & hmask;
}

static uint64_t xs = 88172645463325252ull;
static uint32_t rnd(void) {
  xs ^= xs << 13;
  xs ^= xs >> 7;
  xs ^= xs << 17;
  return (uint32_t)(xs >> 16);
}

static uint16_t csum_fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

static uint32_t sum16(const uint8_t *p, int n) {
  uint32_t s = 0;
  for (int i = 0; i + 1 < n; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
  if (n & 1) s += (uint32_t)p[n - 1] << 8;
  return s;
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) {
  p[0] = v >> 8;
  p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
// RFC 1624 incremental updates
static inline uint16_t csum_replace16(uint16_t c, uint16_t old, uint16_t neu) {
  return (uint16_t)~csum_fold((uint32_t)(uint16_t)~c + (uint16_t)~old + neu);
}
static inline uint16_t csum_replace32(uint16_t c, uint32_t old, uint32_t neu) {
  uint32_t s = (uint32_t)(uint16_t)~c + (uint16_t)~(old >> 16) + (uint16_t)~(old & 0xffff) +
               (neu >> 16) + (neu & 0xffff);
  return (uint16_t)~csum_fold(s);
}

static void build(uint8_t *f, int live, int kind) {
  uint32_t h;
  do h = rnd() % (uint32_t)live;
  while ((int)(h & 1) != (kind == DR_IN));
  struct conn *c = &conns[h];
  uint32_t sa, da;
  uint16_t sp, dp;
  if (kind == NAT_OUT) {
    sa = c->daddr, sp = c->dport, da = c->caddr, dp = c->cport;
  } else {
    sa = c->caddr, sp = c->cport, da = c->vaddr, dp = c->vport;
  }
  memset(f, 0, FRAME);
  memcpy(f, our_mac, 6);
  uint8_t src_mac[6] = {2, 0, 0, 0, 0, kind == NAT_OUT ? 0x11 : 0xfe};
  memcpy(f + 6, src_mac, 6);
  wr16(f + 12, 0x0800);
  uint8_t *ip = f + 14;
  ip[0] = 0x45;
  wr16(ip + 2, 50);
  wr16(ip + 4, (uint16_t)rnd());
  ip[6] = 0x40;
  ip[8] = 64;
  ip[9] = 6;
  wr32(ip + 12, sa);
  wr32(ip + 16, da);
  wr16(ip + 10, (uint16_t)~csum_fold(sum16(ip, 20)));
  uint8_t *tcp = ip + 20;
  wr16(tcp, sp);
  wr16(tcp + 2, dp);
  wr32(tcp + 4, 1000);
  wr32(tcp + 8, 1);
  tcp[12] = 0x50;
  tcp[13] = 0x10; // ACK
  wr16(tcp + 14, 65535);
  for (int i = 0; i < 10; i++) tcp[20 + i] = (uint8_t)i;
  uint32_t s = sum16(tcp, 30) + (sa >> 16) + (sa & 0xffff) + (da >> 16) + (da & 0xffff) + 6 + 30;
  wr16(tcp + 16, (uint16_t)~csum_fold(s));
}

// the far end (the memory backend's peer): a ring the committed frames are copied into
static uint8_t *ring;
static int32_t held[RING_FRAMES * 2];
static uint32_t ring_wr, n_held;
static uint8_t tx[TX_SLOTS * TX_SLOT];
static int32_t tx_len[TX_SLOTS];
static uint32_t tx_pending;
static uint64_t delivered, forwarded;

static void tx_commit(void) {
  for (uint32_t i = 0; i < tx_pending; i++) {
    uint32_t len = (uint32_t)tx_len[i];
    if (ring_wr + len > RING_FRAMES * TX_SLOT) ring_wr = 0;
    memcpy(ring + ring_wr, tx + i * TX_SLOT, len);
    held[n_held * 2] = (int32_t)ring_wr;
    held[n_held * 2 + 1] = (int32_t)len;
    n_held++;
    ring_wr = (ring_wr + len + 3) & ~3u;
  }
  tx_pending = 0;
}

static void flush(void) {
  // the receiver lists the frames where they are; the benchmark's handler does nothing with them
  delivered += n_held;
  n_held = 0;
}

struct tuple {
  uint32_t saddr, daddr;
  uint16_t sport, dport;
  uint16_t len;
  uint8_t flags, ttl;
  int ok;
};

static int decode(const uint8_t *f, int len, struct tuple *t) {
  if (len < 14 + 20 || rd16(f + 12) != 0x0800) return 0;
  const uint8_t *ip = f + 14;
  int ihl = (ip[0] & 15) * 4;
  if (ip[0] >> 4 != 4 || ihl < 20) return 0;
  int total = rd16(ip + 2);
  if (total < ihl || 14 + total > len) return 0;
  if (((ip[6] & 0x1f) | ip[7]) != 0 || ip[9] != 6) return 0;
  const uint8_t *l4 = ip + ihl;
  if (ihl + 20 > total || (l4[12] >> 4) < 5) return 0;
  t->saddr = rd32(ip + 12);
  t->daddr = rd32(ip + 16);
  t->ttl = ip[8];
  t->len = (uint16_t)total;
  t->sport = rd16(l4);
  t->dport = rd16(l4 + 2);
  t->flags = l4[13];
  return 1;
}

static int tx_alloc(void) {
  if (tx_pending == TX_SLOTS) tx_commit();
  return (int)tx_pending++;
}

static inline int tcp_event(uint8_t fl) {
  if (fl & 0x04) return 3;
  if (fl & 0x02) return 0;
  if (fl & 0x01) return 1;
  if (fl & 0x10) return 2;
  return -1;
}

static void forward(const uint8_t *f, const struct tuple *t) {
  const uint8_t *ip = f + 14;
  if (memcmp(f, our_mac, 6) != 0) return;
  if (csum_fold(sum16(ip, 20)) != 0xffff || t->ttl <= 1) return;
  int in = t->daddr == VIP;
  uint32_t b = in ? hash_key(6, t->saddr, t->sport) : hash_key(6, t->daddr, t->dport);
  struct conn *c = NULL;
  for (int32_t h = heads[b]; h >= 0; h = conns[h].next) {
    struct conn *x = &conns[h];
    if (in ? (x->caddr == t->saddr && x->cport == t->sport && x->vaddr == t->daddr &&
              x->vport == t->dport && x->proto == 6)
           : (x->caddr == t->daddr && x->cport == t->dport && x->daddr == t->saddr &&
              x->dport == t->sport && x->proto == 6)) {
      c = x;
      break;
    }
  }
  if (!c) return;
  int fwd = c->flags & 7;
  if (fwd != FWD_MASQ && fwd != FWD_DROUTE) return;
  if (!in && fwd != FWD_MASQ) return;
  struct dest *d = &dests[c->dest];
  if (!(d->flags & DEST_AVAILABLE)) return;
  int s = tx_alloc();
  uint8_t *o = tx + s * TX_SLOT;
  int dir = in ? 0 : 1;
  struct stats *ss = &svc_st[fwd == FWD_DROUTE];
  if (in) {
    d->st.inpkts++, d->st.inbytes += t->len, ss->inpkts++, ss->inbytes += t->len;
    total.inpkts++, total.inbytes += t->len;
  } else {
    d->st.outpkts++, d->st.outbytes += t->len, ss->outpkts++, ss->outbytes += t->len;
    total.outpkts++, total.outbytes += t->len;
  }
  int ev = tcp_event(t->flags);
  if (ev >= 0) {
    c->state = tcp_table[(dir * EV_LAST + ev) * S_LAST + c->state];
    c->timeout = tcp_timeouts[c->state];
  }
  // the Ethernet header toward the next hop, then the IP packet
  memcpy(o, in ? d->mac : (const uint8_t[]){2, 0, 0, 0, 0, 0xfe}, 6);
  memcpy(o + 6, our_mac, 6);
  memcpy(o + 12, f + 12, 2 + t->len);
  tx_len[s] = 14 + t->len;
  uint8_t *ip2 = o + 14;
  uint16_t old = rd16(ip2 + 8);
  ip2[8]--;
  wr16(ip2 + 10, csum_replace16(rd16(ip2 + 10), old, rd16(ip2 + 8)));
  if (fwd == FWD_MASQ) {
    uint8_t *l4 = ip2 + 20;
    uint16_t tc = rd16(l4 + 16);
    uint32_t oa = in ? t->daddr : t->saddr, na = in ? c->daddr : c->vaddr;
    uint16_t op = in ? t->dport : t->sport, np = in ? c->dport : c->vport;
    wr32(ip2 + (in ? 16 : 12), na);
    wr16(ip2 + 10, csum_replace32(rd16(ip2 + 10), oa, na));
    wr16(l4 + (in ? 2 : 0), np);
    tc = csum_replace32(tc, oa, na);
    tc = csum_replace16(tc, op, np);
    wr16(l4 + 16, tc);
  }
  if (in) c->inpkts++;
  // ip_vs_conn_put: the lazy re-arm stores the time; the entry moves when its slot comes round
  double at = now_ms + c->timeout * 1000.0;
  c->expires = at;
  uint32_t nt = wheel_tick + 1;
  if ((double)(nt + ((c->wheel_slot - nt) & 0xffff)) * 10 > at) c->wheel_slot = (uint32_t)(at / 10) & 0xffff;
  forwarded++;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: engine-ref LIVE natIn|natOut|drIn [ROUNDS]\n");
    return 2;
  }
  int live = atoi(argv[1]);
  int kind = !strcmp(argv[2], "natOut") ? NAT_OUT : !strcmp(argv[2], "drIn") ? DR_IN : NAT_IN;
  int rounds = argc > 3 ? atoi(argv[3]) : 7;
  if (live < 2 || rounds < 1) return 2;
  uint32_t nb = 1;
  while (nb < (uint32_t)live) nb <<= 1;
  hmask = nb - 1;
  size_t cbytes = ((size_t)live * sizeof(struct conn) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
  conns = aligned_alloc(2u << 20, cbytes);
  heads = aligned_alloc(2u << 20, ((size_t)nb * 4 + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1));
  ring = malloc(RING_FRAMES * TX_SLOT);
  if (!conns || !heads || !ring) return 1;
  // huge pages, as the engine's table (hugeTableAlloc)
  madvise(conns, cbytes, MADV_HUGEPAGE);
  memset(heads, 0xff, (size_t)nb * 4);
  for (int i = 0; i < 2; i++) {
    dests[i].addr = RS[i];
    dests[i].port = 8080;
    dests[i].flags = DEST_AVAILABLE;
    uint8_t m[6] = {2, 0, 0, 0, 1, 0x11};
    memcpy(dests[i].mac, m, 6);
  }
  for (int s = 0; s < S_LAST; s++) tcp_timeouts[s] = s == 3 ? 900 : 60;
  for (size_t k = 0; k < sizeof tcp_table; k++) tcp_table[k] = 3; // ESTABLISHED stays
  for (int h = 0; h < live; h++) {
    struct conn *c = &conns[h];
    memset(c, 0, sizeof *c);
    c->proto = 6;
    c->caddr = 0x0b000000u | (rnd() & 0xffffff);
    c->cport = (uint16_t)(1024 + rnd() % 60000);
    c->vaddr = VIP;
    int dr = h & 1;
    c->vport = dr ? 81 : 80;
    c->dest = (h >> 1) & 1;
    c->daddr = RS[c->dest];
    c->dport = dr ? 81 : 8080;
    c->flags = dr ? FWD_DROUTE : FWD_MASQ;
    c->state = 3;
    c->timeout = 900;
    c->wheel_slot = rnd() & 0xffff;
    uint32_t b = hash_key(6, c->caddr, c->cport);
    c->next = heads[b];
    heads[b] = h;
  }
  uint8_t *pristine = malloc((size_t)FRAMES * FRAME);
  static uint8_t data[BATCH * FRAME];
  for (int i = 0; i < FRAMES; i++) build(pristine + (size_t)i * FRAME, live, kind);
  struct tuple tu[BATCH];
  uint32_t bk[BATCH];
  uint32_t pos = 0;
  double times[64];
  if (rounds > 64) rounds = 64;
  for (int r = -3; r < rounds; r++) {
    double t0 = now_ns();
    for (int k = 0; k < OPS; k += BATCH) {
      memcpy(data, pristine + (size_t)pos * FRAME, BATCH * FRAME);
      pos = (pos + BATCH) & (FRAMES - 1);
      // the batch's buckets and chain heads first, so their misses overlap
      for (int i = 0; i < BATCH; i++) {
        tu[i].ok = decode(data + i * FRAME, FRAME, &tu[i]);
        bk[i] = tu[i].daddr == VIP ? hash_key(6, tu[i].saddr, tu[i].sport)
                                   : hash_key(6, tu[i].daddr, tu[i].dport);
        __builtin_prefetch(&heads[bk[i]]);
      }
      for (int i = 0; i < BATCH; i++) {
        int32_t h = heads[bk[i]];
        if (h >= 0) __builtin_prefetch(&conns[h]);
      }
      for (int i = 0; i < BATCH; i++)
        if (tu[i].ok) forward(data + i * FRAME, &tu[i]);
      tx_commit();
      flush();
    }
    if (r >= 0) times[r] = (now_ns() - t0) / OPS;
  }
  qsort(times, (size_t)rounds, sizeof times[0], cmp);
  // every frame is an established connection's: all of them must have gone through
  if (forwarded != (uint64_t)(rounds + 3) * OPS || delivered != forwarded) {
    fprintf(stderr, "engine-ref: forwarded %llu, delivered %llu\n", (unsigned long long)forwarded,
            (unsigned long long)delivered);
    return 1;
  }
  printf("%s %d %.1f %.1f\n", argv[2], live, times[rounds / 2], times[0]);
  return 0;
}
