/*
 * splice.c: the proxy's byte relay for established keep-alive connections.
 *
 * The proxy data plane hands a connection here once it is known to be long-lived (both sides
 * connected, nothing queued, no FIN seen, a reply not followed by the real server's FIN): from
 * then on each side's readiness is watched by a libuv poll on the main loop, and what one side
 * sends is read into a scratch buffer and written to the other, with no JavaScript per chunk.
 * Nothing is decided here. What JavaScript needs to keep IPVS's view exact is handed to it:
 *
 *   - per read, one packet of its size, summed per connection and direction and handed over in
 *     one call per loop turn (a uv_check handle), where the proxy counts them and runs the state
 *     machine and the idle timer, as it does for each chunk it relays itself;
 *   - anything that is not plain data (EOF, an error, a socket error): the polls stop, the
 *     connection goes back to JavaScript with the counts so far, and JavaScript reads on by
 *     libuv, which sees the same EOF or error (both are sticky) or gets the error code from here
 *     when reading it consumed it.
 *
 * A write the peer's socket does not take whole keeps the rest in a buffer of its own and stops
 * reading from the sending side until it is out, so memory per connection stays bounded; an EOF
 * read meanwhile waits until those bytes are out before the connection goes back.
 * The polls watch the handles' own descriptors: the proxy stops its libuv reads first and takes
 * the connection back (spliceStop) before it closes either socket.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "splice.h"

#define SCRATCH (64 * 1024)
/* Counts handed to JavaScript per connection: slot, in packets, in bytes, out packets, out bytes. */
#define STAT_STRIDE 5
#define STAT_MAX 1024

typedef struct splice_s splice_t;

typedef struct {
  uv_poll_t poll;
  splice_t *sp;
  int fd;
  int events; /* the mask the poll is started with (0: stopped) */
} sp_side_t;

struct splice_s {
  sp_side_t s[2]; /* 0 client, 1 real server */
  int32_t slot;
  int closes;     /* poll handles still to be closed before the struct is freed */
  int reading[2]; /* reading from side i */
  int eof;        /* bit i: side i's EOF was read while bytes still waited for a socket */
  uint8_t *pend[2]; /* bytes not yet taken by side i's socket */
  uint32_t plen[2], poff[2];
  double pk[2], by[2]; /* packets and bytes read from side i since the last hand-over */
  int dirty;
};

static struct {
  napi_env env;
  napi_ref on_stats; /* (count) */
  napi_ref on_end;   /* (slot, side, code, inPkts, inBytes, outPkts, outBytes) */
  napi_ref stats_ref;
  double *stats; /* STAT_MAX * STAT_STRIDE, shared with JavaScript */
  napi_async_context actx;
  uv_check_t check;
  int ready;
  splice_t **slots;
  int32_t nslots;
  int32_t *free_slots;
  int32_t nfree;
  int32_t *dirty;
  int32_t ndirty, cdirty;
  uint8_t scratch[SCRATCH];
  double live, started, pending_writes;
} G;

static napi_value sp_throw(napi_env env, const char *msg) {
  napi_throw_type_error(env, "IPVS_NATIVE_ARG", msg);
  return NULL;
}

static napi_value sp_i32(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

/* ---- calling JavaScript --------------------------------------------------------------------- */

static void sp_call(napi_value fn, size_t argc, napi_value *argv) {
  napi_env env = G.env;
  napi_value recv, result;
  napi_get_global(env, &recv);
  napi_status st = napi_make_callback(env, G.actx, recv, fn, argc, argv, &result);
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

/* Hands the counts of every connection that read something this loop turn to JavaScript. */
static void sp_flush(void) {
  if (G.ndirty == 0) return;
  napi_env env = G.env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn;
  napi_get_reference_value(env, G.on_stats, &fn);
  int32_t i = 0;
  while (i < G.ndirty) {
    int n = 0;
    for (; i < G.ndirty && n < STAT_MAX; i++) {
      int32_t slot = G.dirty[i];
      splice_t *sp = slot < G.nslots ? G.slots[slot] : NULL;
      if (sp == NULL || !sp->dirty) continue;
      sp->dirty = 0;
      double *o = G.stats + n * STAT_STRIDE;
      o[0] = slot;
      o[1] = sp->pk[0];
      o[2] = sp->by[0];
      o[3] = sp->pk[1];
      o[4] = sp->by[1];
      sp->pk[0] = sp->by[0] = sp->pk[1] = sp->by[1] = 0;
      n++;
    }
    if (n > 0 && fn != NULL) {
      /* a plain call: the counts run no asynchronous work, so no callback scope is needed */
      napi_value argv[1], recv, result;
      napi_create_int32(env, n, &argv[0]);
      napi_get_undefined(env, &recv);
      if (napi_call_function(env, recv, fn, 1, argv, &result) == napi_pending_exception) {
        napi_value err;
        napi_get_and_clear_last_exception(env, &err);
        napi_fatal_exception(env, err);
      }
    }
  }
  G.ndirty = 0;
  napi_close_handle_scope(env, scope);
}

static void sp_on_check(uv_check_t *h) {
  (void)h;
  sp_flush();
}

/* ---- connection lifecycle ------------------------------------------------------------------- */

static void sp_on_closed(uv_handle_t *h) {
  sp_side_t *ss = (sp_side_t *)h->data;
  splice_t *sp = ss->sp;
  if (--sp->closes == 0) free(sp);
}

/*
 * Stops both polls, frees the slot and leaves the pending bytes and counts in *sp for the
 * caller; the struct itself goes once libuv has closed both polls.
 */
static void sp_detach(splice_t *sp) {
  for (int i = 0; i < 2; i++) {
    uv_poll_stop(&sp->s[i].poll);
    sp->s[i].events = 0;
    uv_close((uv_handle_t *)&sp->s[i].poll, sp_on_closed);
  }
  G.slots[sp->slot] = NULL;
  G.free_slots[G.nfree++] = sp->slot;
  G.live--;
}

static void sp_free_pending(splice_t *sp) {
  for (int i = 0; i < 2; i++) {
    if (sp->pend[i]) G.pending_writes--;
    free(sp->pend[i]);
    sp->pend[i] = NULL;
  }
}

/* The connection goes back to JavaScript: code 0 = read on by libuv, < 0 = errno on `side`. */
static void sp_end(splice_t *sp, int side, int code) {
  int32_t slot = sp->slot;
  double c[4] = {sp->pk[0], sp->by[0], sp->pk[1], sp->by[1]};
  sp->dirty = 0;
  sp_free_pending(sp);
  sp_detach(sp);
  napi_env env = G.env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, argv[7];
  napi_get_reference_value(env, G.on_end, &fn);
  if (fn != NULL) {
    napi_create_int32(env, slot, &argv[0]);
    napi_create_int32(env, side, &argv[1]);
    napi_create_int32(env, code, &argv[2]);
    for (int i = 0; i < 4; i++) napi_create_double(env, c[i], &argv[3 + i]);
    sp_call(fn, 7, argv);
  }
  napi_close_handle_scope(env, scope);
}

static void sp_on_poll(uv_poll_t *h, int status, int events);

/* Restarts side i's poll with what it waits for now. */
static int sp_rearm(splice_t *sp, int i) {
  int ev = (sp->reading[i] ? UV_READABLE : 0) | (sp->pend[i] ? UV_WRITABLE : 0);
  if (ev == sp->s[i].events) return 0;
  sp->s[i].events = ev;
  if (ev == 0) return uv_poll_stop(&sp->s[i].poll);
  return uv_poll_start(&sp->s[i].poll, ev, sp_on_poll);
}

static void sp_mark(splice_t *sp) {
  if (sp->dirty) return;
  sp->dirty = 1;
  if (G.ndirty == G.cdirty) {
    int32_t c = G.cdirty ? G.cdirty * 2 : 256;
    int32_t *d = realloc(G.dirty, (size_t)c * sizeof *d);
    if (d == NULL) {
      sp->dirty = 0; /* counted at the next mark or hand-over */
      return;
    }
    G.dirty = d;
    G.cdirty = c;
  }
  G.dirty[G.ndirty++] = sp->slot;
}

static ssize_t sp_send(int fd, const uint8_t *b, size_t n) {
  ssize_t w;
  do w = send(fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  return w;
}

/* Side y's socket became writable: send what waits for it. 1 = all out, 0 = not yet, < 0 errno. */
static int sp_drain(splice_t *sp, int y) {
  uint32_t left = sp->plen[y] - sp->poff[y];
  ssize_t w = sp_send(sp->s[y].fd, sp->pend[y] + sp->poff[y], left);
  if (w < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
  sp->poff[y] += (uint32_t)w;
  if ((uint32_t)w < left) return 0;
  free(sp->pend[y]);
  sp->pend[y] = NULL;
  G.pending_writes--;
  return 1;
}

/* Reads once from side x and writes it to the other side. 0 = go on, else the code to end with. */
static int sp_relay(splice_t *sp, int x, int *end_side) {
  int y = 1 - x;
  ssize_t n;
  do n = recv(sp->s[x].fd, G.scratch, SCRATCH, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n == 0) {
    *end_side = x;
    if (sp->pend[0] || sp->pend[1]) {
      /* what was read before the FIN goes out first; libuv reads the EOF again afterwards */
      sp->eof |= 1 << x;
      sp->reading[x] = 0;
      return 0;
    }
    return 1;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    *end_side = x;
    return -errno;
  }
  sp->pk[x] += 1;
  sp->by[x] += (double)n;
  sp_mark(sp);
  ssize_t w = sp_send(sp->s[y].fd, G.scratch, (size_t)n);
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      *end_side = y;
      return -errno;
    }
    w = 0;
  }
  if (w < n) {
    uint32_t left = (uint32_t)(n - w);
    uint8_t *p = malloc(left);
    if (p == NULL) {
      *end_side = y;
      return -ENOMEM;
    }
    memcpy(p, G.scratch + w, left);
    sp->pend[y] = p;
    sp->plen[y] = left;
    sp->poff[y] = 0;
    G.pending_writes++;
    sp->reading[x] = 0;
  }
  return 0;
}

static void sp_on_poll(uv_poll_t *h, int status, int events) {
  sp_side_t *ss = (sp_side_t *)h->data;
  splice_t *sp = ss->sp;
  int x = ss == &sp->s[0] ? 0 : 1;
  int end_side = x, code = 0;
  if (status < 0) {
    /* a socket error (POLLERR): libuv's own read reports it */
    sp_end(sp, x, 0);
    return;
  }
  if ((events & UV_WRITABLE) && sp->pend[x]) {
    int r = sp_drain(sp, x);
    if (r < 0) {
      sp_end(sp, x, r);
      return;
    }
    if (r == 1) {
      if (!(sp->eof & (1 << (1 - x)))) sp->reading[1 - x] = 1;
      if (sp->eof && !sp->pend[0] && !sp->pend[1]) {
        sp_end(sp, (sp->eof & 1) ? 0 : 1, 0);
        return;
      }
    }
  }
  if ((events & UV_READABLE) && sp->reading[x]) {
    code = sp_relay(sp, x, &end_side);
    if (code != 0) {
      sp_end(sp, end_side, code > 0 ? 0 : code);
      return;
    }
  }
  if (sp_rearm(sp, 0) < 0 || sp_rearm(sp, 1) < 0) sp_end(sp, x, 0);
}

/* ---- JavaScript API ------------------------------------------------------------------------- */

static void sp_stats_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  (void)data; /* G.stats lives as long as the process */
}

/* spliceInit(onStats(count), onEnd(slot, side, code, inPkts, inBytes, outPkts, outBytes)) -> Float64Array */
static napi_value SpliceInit(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return sp_throw(env, "spliceInit(onStats, onEnd)");
  napi_valuetype t0, t1;
  napi_typeof(env, argv[0], &t0);
  napi_typeof(env, argv[1], &t1);
  if (t0 != napi_function || t1 != napi_function) return sp_throw(env, "spliceInit(onStats, onEnd)");
  if (G.ready) {
    if (G.env != env) return sp_throw(env, "spliceInit: one environment per process");
    napi_delete_reference(env, G.on_stats);
    napi_delete_reference(env, G.on_end);
  } else {
    uv_loop_t *loop;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) return sp_throw(env, "spliceInit: no event loop");
    G.env = env;
    G.stats = calloc(STAT_MAX * STAT_STRIDE, sizeof(double));
    if (G.stats == NULL) return sp_throw(env, "spliceInit: out of memory");
    uv_check_init(loop, &G.check);
    uv_check_start(&G.check, sp_on_check);
    uv_unref((uv_handle_t *)&G.check);
    napi_value name;
    napi_create_string_utf8(env, "ipvs:splice", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &G.actx);
    G.ready = 1;
  }
  napi_create_reference(env, argv[0], 1, &G.on_stats);
  napi_create_reference(env, argv[1], 1, &G.on_end);
  napi_value ab, arr;
  if (G.stats_ref == NULL) {
    napi_create_external_arraybuffer(env, G.stats, STAT_MAX * STAT_STRIDE * sizeof(double), sp_stats_finalize, NULL, &ab);
    napi_create_reference(env, ab, 1, &G.stats_ref);
  }
  napi_get_reference_value(env, G.stats_ref, &ab);
  napi_create_typedarray(env, napi_float64_array, STAT_MAX * STAT_STRIDE, ab, 0, &arr);
  return arr;
}

static int sp_get_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/*
 * spliceStart(clientFd, serverFd) -> slot (>= 0) or -errno. The caller has stopped its own reads
 * on both descriptors and has nothing queued on either.
 */
static napi_value SpliceStart(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !sp_get_i32(env, argv[0], &fd[0]) ||
      !sp_get_i32(env, argv[1], &fd[1]) || fd[0] < 0 || fd[1] < 0)
    return sp_throw(env, "spliceStart(clientFd, serverFd)");
  if (!G.ready) return sp_throw(env, "spliceStart before spliceInit");
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  if (G.nfree == 0) {
    int32_t n = G.nslots ? G.nslots * 2 : 1024;
    splice_t **s = realloc(G.slots, (size_t)n * sizeof *s);
    if (s == NULL) return sp_i32(env, -ENOMEM);
    G.slots = s;
    int32_t *f = realloc(G.free_slots, (size_t)n * sizeof *f);
    if (f == NULL) return sp_i32(env, -ENOMEM);
    G.free_slots = f;
    for (int32_t i = n - 1; i >= G.nslots; i--) {
      G.slots[i] = NULL;
      G.free_slots[G.nfree++] = i;
    }
    G.nslots = n;
  }
  splice_t *sp = calloc(1, sizeof *sp);
  if (sp == NULL) return sp_i32(env, -ENOMEM);
  for (int i = 0; i < 2; i++) {
    int r = uv_poll_init(loop, &sp->s[i].poll, fd[i]);
    if (r < 0) {
      if (i == 1) {
        sp->closes = 1;
        uv_close((uv_handle_t *)&sp->s[0].poll, sp_on_closed);
      } else free(sp);
      return sp_i32(env, r);
    }
    sp->s[i].poll.data = &sp->s[i];
    sp->s[i].sp = sp;
    sp->s[i].fd = fd[i];
    sp->reading[i] = 1;
  }
  sp->closes = 2;
  sp->slot = G.free_slots[--G.nfree];
  G.slots[sp->slot] = sp;
  G.live++;
  G.started++;
  if (sp_rearm(sp, 0) < 0 || sp_rearm(sp, 1) < 0) {
    sp_detach(sp);
    return sp_i32(env, -EINVAL);
  }
  return sp_i32(env, sp->slot);
}

/*
 * spliceStop(slot) -> undefined, or [toClient, toServer] (Buffer or null) when bytes were still
 * waiting for a socket. The counts since the last hand-over are left in the stats array's first
 * row (slot, in packets, in bytes, out packets, out bytes).
 */
static napi_value SpliceStop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t slot;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !sp_get_i32(env, argv[0], &slot))
    return sp_throw(env, "spliceStop(slot)");
  splice_t *sp = slot >= 0 && slot < G.nslots ? G.slots[slot] : NULL;
  if (sp == NULL) return sp_throw(env, "spliceStop: no such splice");
  double *o = G.stats;
  o[0] = slot;
  o[1] = sp->pk[0];
  o[2] = sp->by[0];
  o[3] = sp->pk[1];
  o[4] = sp->by[1];
  sp->dirty = 0;
  napi_value res = NULL;
  if (sp->pend[0] || sp->pend[1]) {
    napi_create_array_with_length(env, 2, &res);
    for (int i = 0; i < 2; i++) {
      napi_value b;
      if (sp->pend[i]) napi_create_buffer_copy(env, sp->plen[i] - sp->poff[i], sp->pend[i] + sp->poff[i], NULL, &b);
      else napi_get_null(env, &b);
      napi_set_element(env, res, (uint32_t)i, b);
    }
  }
  sp_free_pending(sp);
  sp_detach(sp);
  if (res == NULL) napi_get_undefined(env, &res);
  return res;
}

/* spliceFlush(): hands the counts over now (before a configuration command looks at them). */
static napi_value SpliceFlush(napi_env env, napi_callback_info info) {
  (void)info;
  if (G.ready && G.env == env) sp_flush();
  return NULL;
}

/* spliceInfo() -> { live, started, pendingWrites } */
static napi_value SpliceInfo(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o, v;
  napi_create_object(env, &o);
  napi_create_double(env, G.live, &v);
  napi_set_named_property(env, o, "live", v);
  napi_create_double(env, G.started, &v);
  napi_set_named_property(env, o, "started", v);
  napi_create_double(env, G.pending_writes, &v);
  napi_set_named_property(env, o, "pendingWrites", v);
  return o;
}

napi_status splice_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"spliceInit", NULL, SpliceInit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spliceStart", NULL, SpliceStart, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spliceStop", NULL, SpliceStop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spliceFlush", NULL, SpliceFlush, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spliceInfo", NULL, SpliceInfo, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
