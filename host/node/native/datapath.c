/*
 * The native batched datapath: one UDP socket moving datagrams straight between the kernel
 * and ONE memory buffer (the wasm linear memory's ArrayBuffer or SharedArrayBuffer, seen
 * through a Uint8Array), with no JS call and no allocation per datagram.
 *
 *  TX  sendBatch(base, first, count, flagsOr): a batch of records in the buffer, each one
 *      datagram as up to four (offset, length) pieces plus its destination, goes out with
 *      sendmmsg. A run of records to one peer with equal lengths (the last may be shorter)
 *      that allow it goes as ONE message with UDP_SEGMENT (GSO). Linux numbers the IPv4
 *      Identification of a GSO send's segments 0, 1, 2, ... and the ICRC covers the ID, so a
 *      segment's ICRC is moved to the ID it will get first (icrc_id.h). Errors come back per
 *      record (its result word: bytes sent or -errno); EAGAIN ends the batch early and the
 *      return value says how many records were dealt with.
 *  RX  receive(...): readiness comes from a uv_poll on the socket inside the addon; each
 *      wakeup runs recvmmsg straight into a caller-given area of the buffer, splits GRO
 *      super-datagrams by their segment size, writes one metadata record per datagram, and
 *      calls the JS callback once per recvmmsg batch with the count, until EAGAIN or a
 *      per-wakeup budget.
 *
 * Record layouts are not hard-coded here: the TS wrapper (host/node/datapath.ts) passes the
 * offset of every field at construction, so the layout has one home and the TX ring's own
 * descriptors can later be read in place (docs/PERFORMANCE.md, "Native datapath").
 * Every offset a record carries is checked against the buffer: a bad record fails alone with
 * -EFAULT, nothing outside the buffer is read or written.
 */
#define _GNU_SOURCE
#include "datapath.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <linux/errqueue.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "icrc.h"
#include "icrc_id.h"
#include "napi_util.h"
#include "poll_gate.h"
#include "udpsock.h"

#define TX_MAX_PIECES 4
#define TX_MAX_MSGS 64
/* UIO_MAXIOV is 1024: the most iovecs one message may carry, and plenty for 64 messages. */
#define TX_MAX_IOV 1024
/* UDP_MAX_SEGMENTS is 64 before Linux 6.9 and 128 after: take the smaller. */
#define GSO_MAX_SEGS 64
#define RX_MAX_MSGS 64
#define RX_CTRL_SPACE 128
/* The largest UDP payload of one datagram; a GSO send is one datagram until segmentation. */
#define UDP4_MAX_PAYLOAD 65507u
#define UDP6_MAX_PAYLOAD 65527u

/* TXF_ICRC_FILL: the ICRC offload computes the datagram's ICRC here (for the ID it goes with) */
enum { TXF_GSO = 1, TXF_ICRC = 2, TXF_ICRC_FILL = 4 };
/* RXF_ICRC: the ICRC offload computed the datagram's ICRC (for ID idHint) into the record's icrc word */
enum { RXF_TRUNCATED = 1, RXF_GRO = 2, RXF_ICRC = 4 };

typedef struct {
  int32_t data, len, inline_data;
} piece_at;

/* Byte offsets inside a TX record; -1: the record has no such field. */
typedef struct {
  uint32_t stride, ring_cap;
  int32_t dst_addr, dst_port, flags, ip_id, result;
  uint32_t npieces;
  piece_at piece[TX_MAX_PIECES];
  int32_t ttl, tos; /* per-datagram IP_TTL/IP_TOS (IPV6_HOPLIMIT/IPV6_TCLASS) words, -1: the socket's */
  int32_t flow; /* IPv6 flow label word (low 20 bits; sin6_flowinfo), -1: none (0 on the wire) */
  /* ICRC offload: the source GID and UDP port the ICRC covers (-1: the socket's), and the word and
   * bit by which a record asks for its ICRC to be filled in (cleared once it is; -1: only TXF_ICRC_FILL) */
  int32_t src_addr, src_port, fill_word;
  uint32_t fill_bit;
} tx_layout;

/* Byte offsets inside an RX metadata record; -1: not written. */
typedef struct {
  uint32_t stride;
  int32_t data, length, family, src, src_port, dst, dst_port, ip_id, id_hint, flags;
  int32_t icrc; /* ICRC offload: the computed ICRC (u32; RXF_ICRC in flags says it is there); -1: off */
} rx_layout;

typedef struct {
  uint64_t tx_datagrams, tx_bytes, tx_syscalls, tx_gso_sends, tx_gso_segments, tx_gso_fallbacks, tx_errors,
      tx_eagain, tx_bad_records;
  uint64_t rx_datagrams, rx_bytes, rx_syscalls, rx_gro_splits, rx_truncated, rx_batches, rx_batches_more, rx_wakeups, rx_errors;
  /* busy poll: windows opened, windows that caught a datagram, windows the gate held back, empty polls */
  uint64_t rx_busy_polls, rx_busy_hits, rx_busy_gated, rx_busy_spins;
  uint64_t rx_busy_late; /* windows ended by a yield that came back after a whole window (the CPU was wanted) */
  uint64_t rx_busy_ready; /* windows whose first look found a datagram (it came while the batch before was in JS): no wait, not a hit */
  uint64_t rx_poll_calls, rx_poll_hits; /* pollReceive: calls, and calls that found datagrams */
  uint64_t tx_icrc_filled, rx_icrc_computed; /* ICRC offload: datagrams whose ICRC the addon computed */
  uint64_t rx_socket_errors; /* POLLERR wake-ups whose socket error was read and cleared (receiving went on) */
  int last_socket_error;     /* the errno the last of them read (SO_ERROR, or the error queue's) */
} dp_stats;

typedef struct {
  uint32_t off, len, flags, port, niov;
  int ttl, tos; /* -1: the socket's */
  uint32_t flow; /* IPv6 flow label (20 bits) */
  const uint8_t *dst;
  struct iovec iov[TX_MAX_PIECES];
} tx_rec;

struct datapath;
/* A one-shot writable watch on a descriptor the datapath does not own (sendBatch's fromFd: a
 * per-QP source-port socket that libuv already watches for readable through node:dgram). libuv
 * refuses a second uv_poll on one descriptor number, so the watch is on a dup() of it: another
 * number for epoll, the same socket. Freed in its close callback; counted in handle_open. */
typedef struct fd_watch {
  uv_poll_t poll;
  int fd; /* the dup */
  struct datapath *dp;
} fd_watch;

typedef struct datapath {
  napi_env env;
  napi_ref wrapper; /* weak; strong while the poll handle may call back */
  napi_ref memory;
  int fd, family, gso_ok, gro_on, pktinfo_on;
  uint16_t local_port;
  uint8_t local_gid[16]; /* the bound address as a GID: the destination of what arrives (no pktinfo) */
  tx_layout tx;
  rx_layout rx;

  uv_poll_t poll;
  struct fd_watch *watch; /* the writable wait on a foreign descriptor (a pool socket's), or NULL */
  int poll_started, handle_open, poll_events, wrapper_strong;
  int receiving, closed, finalized, in_call;
  napi_ref on_batch, on_writable;
  napi_async_context actx;
  napi_async_cleanup_hook_handle cleanup;
  uint32_t rx_area, rx_space, rx_nmsg, rx_meta, rx_meta_cap, rx_budget;
  uint32_t busy_poll_us; /* after a received batch, keep polling this long for the next (0: never) */
  uint32_t busy_poll_cap_us; /* the most one wake-up may spend in busy-poll windows and the batches they catch */
  int busy_adaptive;         /* windows open only as the gate lets them (setBusyPoll's adaptive) */
  poll_gate gate;
  uint32_t slow_yield_us; /* fault injection (tests): each yield between busy polls also sleeps this long */
  int draining;          /* rx_drain is on the stack (pollReceive does not nest in it) */

  dp_stats st;
  icrc_id_cache icrc;

  struct mmsghdr tx_msgs[TX_MAX_MSGS];
  struct iovec tx_iov[TX_MAX_IOV];
  struct sockaddr_in6 tx_names[TX_MAX_MSGS];
  char tx_ctrl[TX_MAX_MSGS][CMSG_SPACE(sizeof(uint16_t)) + 2 * CMSG_SPACE(sizeof(int))];
  uint32_t tx_first[TX_MAX_MSGS], tx_nrec[TX_MAX_MSGS];

  struct mmsghdr rx_msgs[RX_MAX_MSGS];
  struct iovec rx_iov[RX_MAX_MSGS];
  struct sockaddr_in6 rx_names[RX_MAX_MSGS];
  char rx_ctrl[RX_MAX_MSGS][RX_CTRL_SPACE];
} datapath;

/* ---- little-endian words in the buffer (wasm memory is little-endian whatever the host) */

static inline uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* ---- N-API helpers */


/* The bytes of a Uint8Array (over an ArrayBuffer or a SharedArrayBuffer) or an ArrayBuffer. */
static int view_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t n = 0, offset = 0;
    void *d = NULL;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &n, &d, &ab, &offset) != napi_ok || type != napi_uint8_array) return 0;
    *data = d;
    *len = d ? n : 0; /* a detached buffer has no bytes */
    return 1;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    void *d = NULL;
    size_t n = 0;
    if (napi_get_arraybuffer_info(env, v, &d, &n) != napi_ok) return 0;
    *data = d;
    *len = d ? n : 0;
    return 1;
  }
  return 0;
}

static int memory_bytes(datapath *dp, uint8_t **mem, size_t *len) {
  napi_value v;
  if (!dp->memory || napi_get_reference_value(dp->env, dp->memory, &v) != napi_ok || v == NULL) return 0;
  return view_bytes(dp->env, v, mem, len);
}

static int opt_value(napi_env env, napi_value obj, const char *name, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, name, out) != napi_ok) return 0;
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t != napi_undefined;
}

static int opt_u32(napi_env env, napi_value obj, const char *name, uint32_t dflt, uint32_t *out) {
  napi_value v;
  if (!opt_value(env, obj, name, &v)) {
    *out = dflt;
    return 1;
  }
  return nu_get_u32(env, v, out);
}

static int opt_bool(napi_env env, napi_value obj, const char *name, int dflt) {
  napi_value v;
  bool b;
  if (!opt_value(env, obj, name, &v) || napi_get_value_bool(env, v, &b) != napi_ok) return dflt;
  return b;
}

static int int32_array(napi_env env, napi_value v, const int32_t **data, size_t *n) {
  bool is = false;
  napi_typedarray_type type;
  void *d;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, n, &d, &ab, &off) != napi_ok || type != napi_int32_array) return 0;
  *data = d;
  return 1;
}

/* A field of `size` bytes at `at` fits a record of `stride` bytes (or is absent, -1, when allowed). */
static int field_ok(int32_t at, uint32_t size, uint32_t stride, int optional) {
  if (at == -1) return optional;
  return at >= 0 && (uint64_t)at + size <= stride;
}

/* [stride, ringCap, dstAddr, dstPort, flags, ipId, result, npieces, (data, len, inline) x npieces, ttl?, tos?, flowLabel?,
 *  srcAddr?, srcPort?, icrcFill?, icrcFillBit?] */
static const char *parse_tx_layout(const int32_t *a, size_t n, tx_layout *t) {
  if (n < 8) return "TX layout: too short";
  memset(t, 0, sizeof *t);
  if (a[0] <= 0 || a[0] > 65536) return "TX layout: stride must be 1..65536";
  t->stride = (uint32_t)a[0];
  if (a[1] < 0 || (a[1] & (a[1] - 1)) != 0) return "TX layout: ringCap must be 0 (a table) or a power of two";
  t->ring_cap = (uint32_t)a[1];
  t->dst_addr = a[2], t->dst_port = a[3], t->flags = a[4], t->ip_id = a[5], t->result = a[6];
  if (!field_ok(t->dst_addr, 16, t->stride, 0) || !field_ok(t->dst_port, 4, t->stride, 0))
    return "TX layout: dstAddr (16 bytes) and dstPort (u32) must lie inside the record";
  if (!field_ok(t->flags, 4, t->stride, 1) || !field_ok(t->ip_id, 4, t->stride, 1) || !field_ok(t->result, 4, t->stride, 1))
    return "TX layout: flags, ipId and result must lie inside the record or be -1";
  if (a[7] < 1 || a[7] > TX_MAX_PIECES) return "TX layout: 1..4 pieces";
  t->npieces = (uint32_t)a[7];
  if (n < 8 + 3 * (size_t)t->npieces) return "TX layout: too short for its pieces";
  for (uint32_t p = 0; p < t->npieces; p++) {
    const int32_t *q = a + 8 + 3 * p;
    t->piece[p].data = q[0], t->piece[p].len = q[1], t->piece[p].inline_data = q[2] != 0;
    if (!field_ok(q[1], 4, t->stride, 0)) return "TX layout: a piece's length word must lie inside the record";
    if (!t->piece[p].inline_data && !field_ok(q[0], 4, t->stride, 0))
      return "TX layout: a piece's offset word must lie inside the record";
    if (t->piece[p].inline_data && !(q[0] >= 0 && (uint32_t)q[0] <= t->stride))
      return "TX layout: inline piece data must start inside the record";
  }
  size_t at = 8 + 3 * (size_t)t->npieces;
  t->ttl = n > at ? a[at] : -1;
  t->tos = n > at + 1 ? a[at + 1] : -1;
  if (!field_ok(t->ttl, 4, t->stride, 1) || !field_ok(t->tos, 4, t->stride, 1))
    return "TX layout: ttl and tos must lie inside the record or be -1";
  t->flow = n > at + 2 ? a[at + 2] : -1;
  if (!field_ok(t->flow, 4, t->stride, 1)) return "TX layout: flowLabel must lie inside the record or be -1";
  t->src_addr = n > at + 3 ? a[at + 3] : -1;
  t->src_port = n > at + 4 ? a[at + 4] : -1;
  t->fill_word = n > at + 5 ? a[at + 5] : -1;
  t->fill_bit = n > at + 6 ? (uint32_t)a[at + 6] : 0;
  if (!field_ok(t->src_addr, 16, t->stride, 1) || !field_ok(t->src_port, 4, t->stride, 1) || !field_ok(t->fill_word, 4, t->stride, 1))
    return "TX layout: srcAddr (16 bytes), srcPort and icrcFill must lie inside the record or be -1";
  if (t->fill_word >= 0 && (t->fill_bit == 0 || (t->fill_bit & (t->fill_bit - 1)) != 0)) return "TX layout: icrcFillBit must be one bit";
  return NULL;
}

/* [stride, data, length, family, src, srcPort, dst, dstPort, ipId, idHint, flags, icrc?] */
static const char *parse_rx_layout(const int32_t *a, size_t n, rx_layout *r) {
  if (n < 11) return "RX layout: too short";
  if (a[0] <= 0 || a[0] > 65536) return "RX layout: stride must be 1..65536";
  r->stride = (uint32_t)a[0];
  r->data = a[1], r->length = a[2], r->family = a[3], r->src = a[4], r->src_port = a[5];
  r->dst = a[6], r->dst_port = a[7], r->ip_id = a[8], r->id_hint = a[9], r->flags = a[10];
  if (!field_ok(r->data, 4, r->stride, 0) || !field_ok(r->length, 4, r->stride, 0) || !field_ok(r->family, 4, r->stride, 0) ||
      !field_ok(r->src, 16, r->stride, 0) || !field_ok(r->src_port, 4, r->stride, 0))
    return "RX layout: data, length, family, src (16 bytes) and srcPort must lie inside the record";
  if (!field_ok(r->dst, 16, r->stride, 1) || !field_ok(r->dst_port, 4, r->stride, 1) || !field_ok(r->ip_id, 4, r->stride, 1) ||
      !field_ok(r->id_hint, 4, r->stride, 1) || !field_ok(r->flags, 4, r->stride, 1))
    return "RX layout: dst, dstPort, ipId, idHint and flags must lie inside the record or be -1";
  r->icrc = n > 11 ? a[11] : -1;
  if (!field_ok(r->icrc, 4, r->stride, 1) || (r->icrc >= 0 && r->flags < 0))
    return "RX layout: icrc must lie inside the record or be -1, and needs flags";
  return NULL;
}

/* ---- lifetime
 * The struct lives until the JS object was collected (or the environment torn down) AND the
 * poll handle finished closing AND no call of ours is on the stack. */

static void maybe_free(datapath *dp) {
  if (dp->finalized && !dp->handle_open && dp->in_call == 0) free(dp);
}

static void on_watch_closed(uv_handle_t *h) {
  fd_watch *w = h->data;
  datapath *dp = w->dp;
  free(w);
  dp->handle_open--;
  if (dp->closed && dp->handle_open == 0 && dp->cleanup) {
    napi_remove_async_cleanup_hook(dp->cleanup);
    dp->cleanup = NULL;
  }
  maybe_free(dp);
}

/* Ends the foreign-descriptor watch, if any: stopped (libuv takes it out of epoll by its number
 * before the dup closes), its dup closed, the handle freed once libuv has closed it. */
static void drop_watch(datapath *dp) {
  fd_watch *w = dp->watch;
  if (!w) return;
  dp->watch = NULL;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_watch_closed); /* libuv is done with the number here */
  close(w->fd);
  w->fd = -1;
}

static void set_wrapper_strong(datapath *dp, int strong) {
  if (strong == dp->wrapper_strong || !dp->wrapper) return;
  uint32_t count;
  if (strong) napi_reference_ref(dp->env, dp->wrapper, &count);
  else napi_reference_unref(dp->env, dp->wrapper, &count);
  dp->wrapper_strong = strong;
}

static void on_handle_closed(uv_handle_t *h) {
  datapath *dp = h->data;
  dp->handle_open--;
  if (dp->handle_open == 0 && dp->cleanup) {
    napi_remove_async_cleanup_hook(dp->cleanup);
    dp->cleanup = NULL;
  }
  maybe_free(dp);
}

/* Stops everything that needs no JS: the poll handle and the socket. */
static void shut_socket(datapath *dp) {
  if (dp->closed) return;
  dp->closed = 1;
  dp->receiving = 0;
  drop_watch(dp);
  if (dp->poll_started) {
    uv_poll_stop(&dp->poll);
    uv_close((uv_handle_t *)&dp->poll, on_handle_closed);
  } else if (dp->handle_open == 0 && dp->cleanup) {
    napi_remove_async_cleanup_hook(dp->cleanup);
    dp->cleanup = NULL;
  }
  if (dp->fd >= 0) close(dp->fd);
  dp->fd = -1;
}

/* Also drops the references into JS (callbacks, memory, async context): needs the env. */
static void shut(datapath *dp) {
  shut_socket(dp);
  napi_env env = dp->env;
  if (dp->on_batch) napi_delete_reference(env, dp->on_batch), dp->on_batch = NULL;
  if (dp->on_writable) napi_delete_reference(env, dp->on_writable), dp->on_writable = NULL;
  if (dp->memory) napi_delete_reference(env, dp->memory), dp->memory = NULL;
  if (dp->actx) napi_async_destroy(env, dp->actx), dp->actx = NULL;
  set_wrapper_strong(dp, 0);
}

static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  datapath *dp = arg;
  (void)handle;
  shut_socket(dp);
}

static void finalize(napi_env env, void *data, void *hint) {
  datapath *dp = data;
  (void)env, (void)hint;
  shut(dp);
  if (dp->wrapper) napi_delete_reference(env, dp->wrapper), dp->wrapper = NULL;
  dp->finalized = 1;
  maybe_free(dp);
}

/* ---- readiness */

static void on_poll(uv_poll_t *h, int status, int events);

/* The socket's watcher as `receiving` and the writable wait want it; the wrapper stays strong while
 * a watcher (this one, or the foreign descriptor's) may call back. 0, or the libuv error. */
static int update_poll(datapath *dp) {
  if (dp->closed) return 0;
  int want = (dp->receiving ? UV_READABLE : 0) | (dp->on_writable && !dp->watch ? UV_WRITABLE : 0);
  int r = 0;
  if (!dp->poll_started && want != 0) {
    uv_loop_t *loop;
    if (napi_get_uv_event_loop(dp->env, &loop) != napi_ok) return UV_EINVAL;
    r = uv_poll_init(loop, &dp->poll, dp->fd);
    if (r != 0) return r;
    dp->poll.data = dp;
    dp->poll_started = 1;
    dp->handle_open++;
  }
  if (dp->poll_started && want != dp->poll_events) {
    r = want ? uv_poll_start(&dp->poll, want, on_poll) : uv_poll_stop(&dp->poll);
    if (r == 0) dp->poll_events = want;
  }
  set_wrapper_strong(dp, want != 0 || dp->watch != NULL);
  return r;
}

/* Calls a JS function as the event loop would (microtasks and nextTicks run after it). 0 when it threw. */
static int call_js(datapath *dp, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = dp->env;
  napi_value fn, recv, result;
  if (!fn_ref || napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return 1;
  if (!dp->wrapper || napi_get_reference_value(env, dp->wrapper, &recv) != napi_ok || recv == NULL) napi_get_undefined(env, &recv);
  napi_status s = napi_make_callback(env, dp->actx, recv, fn, argc, argv, &result);
  if (s == napi_ok) return 1;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err); /* as any event handler that throws: 'uncaughtException' */
  }
  return 0;
}

/* One metadata batch to JS: onBatch(count, error, more); `more` 1 when the socket may hold more
 * datagrams behind this batch (its receive filled every slot or the records ran out), 0 when the
 * receive that made it found the socket drained. Returns 0 when the datapath must stop now. */
static int deliver(datapath *dp, uint32_t count, int error, int more) {
  napi_value argv[3];
  napi_create_uint32(dp->env, count, &argv[0]);
  napi_create_int32(dp->env, error, &argv[1]);
  napi_create_uint32(dp->env, more ? 1 : 0, &argv[2]);
  dp->st.rx_batches++;
  if (more) dp->st.rx_batches_more++;
  int ok = call_js(dp, dp->on_batch, 3, argv);
  return ok && dp->receiving && !dp->closed;
}

/* a fixed busy-poll window (and pollReceive) never holds the event loop longer than this in one wake-up */
#define BUSY_POLL_CAP_US 2000
/* the adaptive one (on by default) holds it at most this long: a ping-pong caught by its windows goes
 * back to libuv (timers, other handles) at least this often */
#define BUSY_POLL_ADAPTIVE_CAP_US 1000

static void rx_drain_once(datapath *dp);

static void rx_drain(datapath *dp) {
  dp->draining++;
  rx_drain_once(dp);
  dp->draining--;
}

/*
 * Whether a busy-poll window opens now, after a batch went to JS and the socket looked drained
 * (as perftest and rdma-core poll their CQs: the batch's reaction, e.g. a reply, has left by now,
 * and its answer may come sooner than an epoll sleep and wake-up). No: busy polling is off, the
 * wake-up has spent its cap, or the gate holds the window back (adaptive; counted).
 */
static int busy_window_opens(datapath *dp, uint64_t start) {
  if (!dp->busy_poll_us || poll_now_us() - start >= dp->busy_poll_cap_us) return 0;
  if (dp->busy_adaptive && !poll_gate_open(&dp->gate)) {
    dp->st.rx_busy_gated++;
    return 0;
  }
  dp->st.rx_busy_polls++;
  return 1;
}

/*
 * One wake-up's receive: recvmmsg batches to JS until the socket is drained or the budget spent.
 * With busy polling, each batch that drained the socket opens a window (busy_window_opens): the
 * socket is polled, yielding the CPU between polls, until a datagram comes (a hit: its batch goes
 * to JS and may open the next window) or busy_poll_us pass (a miss); adaptive windows tell the gate
 * how they ended. The whole call stays within busy_poll_cap_us (a window the cap cuts is a miss too).
 */
static void rx_drain_once(datapath *dp) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(dp->env, &scope) != napi_ok) return;
  const rx_layout *L = &dp->rx;
  uint32_t done = 0;
  uint64_t start = dp->busy_poll_us ? poll_now_us() : 0, window = 0; /* window: when the open one opened */
  int after_batch = 0, late = 0; /* late: a yield came back late, no more windows in this wake-up */
  int waited = 0;                 /* the open window has yielded at least once */
  while (dp->receiving && !dp->closed && done < dp->rx_budget) {
    uint8_t *mem;
    size_t memlen;
    uint64_t area_end = (uint64_t)dp->rx_area + (uint64_t)dp->rx_space * dp->rx_nmsg;
    uint64_t meta_end = (uint64_t)dp->rx_meta + (uint64_t)dp->rx_meta_cap * L->stride;
    if (!memory_bytes(dp, &mem, &memlen) || area_end > memlen || meta_end > memlen) {
      /* the buffer went away under us (a non-shared wasm memory grew): stop, say so once */
      dp->receiving = 0;
      update_poll(dp);
      deliver(dp, 0, -EFAULT, 0);
      break;
    }
    uint32_t nmsg = dp->rx_nmsg;
    if (nmsg > dp->rx_budget - done) nmsg = dp->rx_budget - done;
    for (uint32_t i = 0; i < nmsg; i++) {
      struct msghdr *h = &dp->rx_msgs[i].msg_hdr;
      dp->rx_iov[i].iov_base = mem + dp->rx_area + (size_t)i * dp->rx_space;
      dp->rx_iov[i].iov_len = dp->rx_space;
      h->msg_iov = &dp->rx_iov[i];
      h->msg_iovlen = 1;
      h->msg_name = &dp->rx_names[i];
      h->msg_namelen = sizeof dp->rx_names[i];
      h->msg_control = dp->rx_ctrl[i];
      h->msg_controllen = RX_CTRL_SPACE;
      h->msg_flags = 0;
    }
    int n = recvmmsg(dp->fd, dp->rx_msgs, nmsg, MSG_DONTWAIT, NULL);
    dp->st.rx_syscalls++;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        dp->st.rx_errors++;
        break;
      }
      /* a full batch went to JS and the socket is drained now: a window may open here too */
      if (!window && !(after_batch && !late && busy_window_opens(dp, start))) break;
      uint64_t t = poll_now_us();
      if (!window) window = t;
      if (t - window >= dp->busy_poll_us || t - start >= dp->busy_poll_cap_us) {
        /* over (or cut by the wake-up's cap) with nothing caught: a miss */
        if (dp->busy_adaptive) poll_gate_note(&dp->gate, 0);
        break;
      }
      dp->st.rx_busy_spins++;
      waited = 1;
      /* give the CPU to any thread waiting for one (on a busy machine, typically the peer whose
       * answer we poll for): without it the window cost 5-7x the round trip beside other work,
       * with it the window still wins (docs/PERFORMANCE.md, "Busy polling") */
      if (poll_yield_late(dp->slow_yield_us, t, dp->busy_poll_us)) {
        /* back after a whole window: a miss, and no more windows in this wake-up; one last look */
        dp->st.rx_busy_late++;
        if (dp->busy_adaptive) poll_gate_note(&dp->gate, 0);
        window = 0;
        waited = 0;
        late = 1;
      }
      continue;
    }
    if (window) {
      /* caught inside the window after a wait (no epoll sleep before it): a hit; there at its first
       * look: ready, the gate is not told (poll_gate_found) */
      if (poll_gate_found(dp->busy_adaptive ? &dp->gate : NULL, waited)) dp->st.rx_busy_hits++;
      else dp->st.rx_busy_ready++;
      window = 0;
      waited = 0;
    }
    uint32_t used = 0;
    int go_on = 1;
    for (int i = 0; i < n && go_on; i++) {
      struct msghdr *h = &dp->rx_msgs[i].msg_hdr;
      uint32_t len = dp->rx_msgs[i].msg_len;
      uint32_t seg = 0, flags = 0;
      uint8_t dst[16];
      int have_dst = 0;
      if (h->msg_flags & MSG_TRUNC) flags |= RXF_TRUNCATED, dp->st.rx_truncated++;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
          int g;
          memcpy(&g, CMSG_DATA(c), sizeof g);
          if (g > 0) seg = (uint32_t)g;
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          struct in_pktinfo pi;
          memcpy(&pi, CMSG_DATA(c), sizeof pi);
          memset(dst, 0, 10);
          dst[10] = dst[11] = 0xff;
          memcpy(dst + 12, &pi.ipi_addr, 4);
          have_dst = 1;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
          struct in6_pktinfo pi;
          memcpy(&pi, CMSG_DATA(c), sizeof pi);
          memcpy(dst, &pi.ipi6_addr, 16);
          have_dst = 1;
        }
      }
      uint8_t src[16];
      uint16_t sport;
      udpsock_gid_of(&dp->rx_names[i], src, &sport);
      if (len > dp->rx_space) len = dp->rx_space;
      uint32_t nseg = 1;
      if (seg && seg < len) {
        nseg = (len + seg - 1) / seg;
        flags |= RXF_GRO;
        dp->st.rx_gro_splits++;
      } else {
        seg = len;
      }
      uint32_t data = dp->rx_area + (uint32_t)i * dp->rx_space;
      for (uint32_t s = 0; s < nseg; s++) {
        if (used == dp->rx_meta_cap) {
          if (!deliver(dp, used, 0, 1)) {
            go_on = 0;
            break;
          }
          used = 0;
          if (!memory_bytes(dp, &mem, &memlen) || meta_end > memlen) {
            go_on = 0;
            break;
          }
        }
        uint32_t slen = s + 1 < nseg ? seg : len - s * seg;
        uint8_t *m = mem + dp->rx_meta + (size_t)used * L->stride;
        put32(m + L->data, data + s * seg);
        put32(m + L->length, slen);
        put32(m + L->family, dp->family);
        memcpy(m + L->src, src, 16);
        put32(m + L->src_port, sport);
        if (L->dst >= 0) {
          if (have_dst) memcpy(m + L->dst, dst, 16);
          else memset(m + L->dst, 0, 16);
        }
        if (L->dst_port >= 0) put32(m + L->dst_port, dp->local_port);
        if (L->ip_id >= 0) put32(m + L->ip_id, 0xffffffffu); /* a UDP socket never sees the IP header */
        if (L->id_hint >= 0) put32(m + L->id_hint, nseg > 1 ? s : 0);
        uint32_t rflags = flags;
        if (L->icrc >= 0 && !(flags & RXF_TRUNCATED) && slen >= ICRC_MIN_PAYLOAD) {
          /* ICRC offload: computed here, while the datagram is in cache, for the ID the core tries
           * first (idHint); the core compares it with the datagram's and solves an unseen ID from it */
          icrc_facts f = {dp->family == 6, src, have_dst ? dst : dp->local_gid, sport, dp->local_port, (uint16_t)(nseg > 1 ? s : 0)};
          struct iovec one = {mem + data + s * seg, slen};
          put32(m + L->icrc, icrc_compute(&f, &one, 1, slen));
          rflags |= RXF_ICRC;
          dp->st.rx_icrc_computed++;
        }
        if (L->flags >= 0) put32(m + L->flags, rflags);
        used++;
        dp->st.rx_datagrams++;
        dp->st.rx_bytes += slen;
      }
    }
    if (go_on && used > 0) go_on = deliver(dp, used, 0, (uint32_t)n == nmsg);
    done += (uint32_t)n;
    after_batch = 1;
    if (!go_on) break;
    if ((uint32_t)n < nmsg) { /* the socket looked drained: sleep in epoll, or poll in a window */
      if (late || !busy_window_opens(dp, start)) break;
      window = poll_now_us();
    }
  }
  napi_close_handle_scope(dp->env, scope);
}

/*
 * A socket error makes epoll report POLLERR, and libuv then stops the poll handle and calls back
 * with UV_EBADF (uv__poll_io), whatever else the socket holds. On a UDP socket such an error
 * belongs to one datagram, not to the socket: an ICMP error for something sent (queued with
 * IP_RECVERR; sk_err too), or an error recvmmsg met after a partial batch (Linux keeps it in
 * sk_err for the next call). Taken as fatal it would leave every later datagram in the socket
 * with no wake-up: read and clear it (SO_ERROR, then the error queue, a batch at most), and say
 * whether there was one to clear (the caller then starts the watcher again; errors still queued
 * wake it once more). A POLLERR with nothing to clear stays fatal, so it cannot spin the loop.
 */
static int clear_socket_error(datapath *dp) {
  if (dp->fd < 0) return 0;
  int err = 0;
  socklen_t l = sizeof err;
  if (getsockopt(dp->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0) return 0; /* reads and clears sk_err */
  int cleared = err != 0;
  if (err) dp->st.last_socket_error = err;
  for (int i = 0; i < RX_MAX_MSGS; i++) {
    char data[64], ctrl[256];
    struct iovec iov = {data, sizeof data};
    struct msghdr h;
    memset(&h, 0, sizeof h);
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = ctrl;
    h.msg_controllen = sizeof ctrl;
    if (recvmsg(dp->fd, &h, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    cleared = 1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
      if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) || (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
        struct sock_extended_err ee;
        memcpy(&ee, CMSG_DATA(c), sizeof ee);
        dp->st.last_socket_error = (int)ee.ee_errno;
      }
    }
  }
  return cleared;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  datapath *dp = h->data;
  if (dp->closed) return;
  dp->in_call++;
  napi_handle_scope scope;
  napi_open_handle_scope(dp->env, &scope);
  if (status == UV_EBADF && clear_socket_error(dp)) {
    /* a datagram's error, read and cleared: the watcher libuv stopped starts again as it was (a
     * datagram waiting behind the error is reported on the next turn: epoll is level-triggered) */
    dp->st.rx_socket_errors++;
    dp->poll_events = 0;
    if (update_poll(dp) != 0) status = UV_EBADF; /* could not start it again: as before, stop */
    else status = 0, events = 0;
  }
  if (status < 0) {
    /* the descriptor itself failed: nothing more will come; a sender waiting for writable is told
     * too, and its next sendBatch gets the error per record */
    dp->st.rx_errors++;
    napi_ref writable = dp->on_writable;
    dp->on_writable = NULL;
    drop_watch(dp);
    int was_receiving = dp->receiving;
    dp->receiving = 0;
    update_poll(dp);
    if (was_receiving) deliver(dp, 0, status, 0);
    if (writable) {
      if (!dp->closed) call_js(dp, writable, 0, NULL);
      napi_delete_reference(dp->env, writable);
    }
  } else {
    if ((events & UV_WRITABLE) && dp->on_writable && !dp->watch) {
      napi_ref cb = dp->on_writable;
      dp->on_writable = NULL;
      update_poll(dp);
      call_js(dp, cb, 0, NULL);
      napi_delete_reference(dp->env, cb);
    }
    if ((events & UV_READABLE) && dp->receiving && !dp->closed) {
      dp->st.rx_wakeups++;
      rx_drain(dp);
    }
  }
  napi_close_handle_scope(dp->env, scope);
  dp->in_call--;
  maybe_free(dp);
}

/* The foreign descriptor's watch fired (writable, or the socket failed: its next sendBatch gets
 * the error per record): the wait ends, its callback runs. */
static void on_watch(uv_poll_t *h, int status, int events) {
  fd_watch *w = h->data;
  datapath *dp = w->dp;
  (void)status, (void)events;
  if (dp->closed || dp->watch != w) return;
  dp->in_call++;
  napi_handle_scope scope;
  napi_open_handle_scope(dp->env, &scope);
  napi_ref cb = dp->on_writable;
  dp->on_writable = NULL;
  drop_watch(dp);
  update_poll(dp);
  if (cb) {
    call_js(dp, cb, 0, NULL);
    napi_delete_reference(dp->env, cb);
  }
  napi_close_handle_scope(dp->env, scope);
  dp->in_call--;
  maybe_free(dp);
}

/* Starts the one-shot writable watch on a dup of `fd`. 0 or a libuv error (negative). */
static int start_watch(datapath *dp, int fd) {
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(dp->env, &loop) != napi_ok) return UV_EINVAL;
  fd_watch *w = calloc(1, sizeof *w);
  if (!w) return UV_ENOMEM;
  w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (w->fd < 0) {
    int e = errno;
    free(w);
    return -e;
  }
  w->dp = dp;
  int r = uv_poll_init(loop, &w->poll, w->fd);
  if (r != 0) {
    close(w->fd);
    free(w);
    return r;
  }
  w->poll.data = w;
  dp->handle_open++;
  dp->watch = w;
  r = uv_poll_start(&w->poll, UV_WRITABLE, on_watch);
  if (r != 0) drop_watch(dp);
  return r;
}

/* ---- TX */

/* Reads TX record i of a batch: its datagram as iovecs, destination, flags. 0 or an errno. */
static int tx_read(datapath *dp, uint8_t *mem, size_t memlen, uint32_t base, uint32_t first, uint32_t i, uint32_t flags_or,
                   tx_rec *r) {
  const tx_layout *L = &dp->tx;
  uint64_t idx = dp->tx.ring_cap ? ((uint64_t)(first + i) & (dp->tx.ring_cap - 1)) : (uint64_t)first + i;
  uint32_t off = (uint32_t)(base + idx * L->stride); /* the batch was checked to fit the buffer */
  const uint8_t *rec = mem + off;
  r->off = off;
  r->len = 0;
  r->niov = 0;
  r->flags = (L->flags >= 0 ? get32(rec + L->flags) : 0) | flags_or;
  if (L->fill_word >= 0 && (get32(rec + L->fill_word) & L->fill_bit)) r->flags |= TXF_ICRC_FILL;
  for (uint32_t p = 0; p < L->npieces; p++) {
    const piece_at *pa = &L->piece[p];
    uint32_t plen = get32(rec + pa->len);
    if (plen == 0) continue;
    uint64_t at;
    if (pa->inline_data) {
      if ((uint64_t)pa->data + plen > L->stride) return EFAULT;
      at = (uint64_t)off + (uint32_t)pa->data;
    } else {
      at = get32(rec + pa->data);
    }
    if (at + plen > memlen) return EFAULT;
    r->iov[r->niov].iov_base = mem + at;
    r->iov[r->niov].iov_len = plen;
    r->niov++;
    r->len += plen;
  }
  if ((r->flags & TXF_ICRC) && r->len < 4) return EINVAL;
  if ((r->flags & TXF_ICRC_FILL) && (r->len < ICRC_MIN_PAYLOAD || (L->src_port >= 0 && get32(rec + L->src_port) > 65535))) return EINVAL;
  r->dst = rec + L->dst_addr;
  r->port = get32(rec + L->dst_port);
  if (r->port > 65535) return EINVAL;
  r->ttl = L->ttl >= 0 ? (int)get32(rec + L->ttl) : -1;
  r->tos = L->tos >= 0 ? (int)get32(rec + L->tos) : -1;
  if (r->ttl > 255 || r->tos > 255) return EINVAL;
  r->flow = L->flow >= 0 ? get32(rec + L->flow) & 0xfffffu : 0;
  int mapped = 1;
  for (int k = 0; k < 10; k++) mapped &= r->dst[k] == 0;
  mapped &= r->dst[10] == 0xff && r->dst[11] == 0xff;
  if (dp->family == 4 && !mapped) return EAFNOSUPPORT;
  return 0;
}

static void tx_set_result(datapath *dp, uint8_t *mem, uint32_t off, int32_t v) {
  if (dp->tx.result >= 0) put32(mem + off + (uint32_t)dp->tx.result, (uint32_t)v);
}

/* XORs `delta` into the ICRC value carried by the datagram's last 4 bytes (least-significant byte first). */
static void icrc_xor(const tx_rec *r, uint32_t delta) {
  int k = 3;
  for (int p = (int)r->niov - 1; p >= 0 && k >= 0; p--) {
    uint8_t *b = r->iov[p].iov_base;
    for (size_t j = r->iov[p].iov_len; j > 0 && k >= 0; j--, k--) b[j - 1] ^= (uint8_t)(delta >> (8 * k));
  }
}

/* ICRC offload: computes record r's ICRC for IPv4 ID `id` (IPv6: none) into its last 4 bytes,
 * records the ID and clears the record's request, so a record sent again is only moved (TXF_ICRC). */
static void tx_fill_icrc(datapath *dp, uint8_t *mem, const tx_rec *r, uint16_t id) {
  const tx_layout *L = &dp->tx;
  uint8_t *rec = mem + r->off;
  icrc_facts f = {dp->family == 6, L->src_addr >= 0 ? rec + L->src_addr : dp->local_gid, r->dst,
                  (uint16_t)(L->src_port >= 0 ? get32(rec + L->src_port) : dp->local_port), (uint16_t)r->port,
                  (uint16_t)(dp->family == 4 ? id : 0)};
  icrc_store(r->iov, r->niov, r->len, icrc_compute(&f, r->iov, r->niov, r->len));
  if (dp->family == 4 && L->ip_id >= 0) put32(rec + L->ip_id, id);
  if (L->fill_word >= 0) put32(rec + L->fill_word, get32(rec + L->fill_word) & ~L->fill_bit);
  dp->st.tx_icrc_filled++;
}

/* Gives record r the IPv4 ID `id`: moves its ICRC there when it carries one (or computes it when
 * the record asks, TXF_ICRC_FILL), records the ID. */
static void tx_assign_id(datapath *dp, uint8_t *mem, const tx_rec *r, uint16_t id) {
  if (r->flags & TXF_ICRC_FILL) return tx_fill_icrc(dp, mem, r, id);
  if (dp->family != 4 || dp->tx.ip_id < 0) return;
  uint8_t *idw = mem + r->off + (uint32_t)dp->tx.ip_id;
  uint32_t was = get32(idw);
  if (was == id) return;
  if (r->flags & TXF_ICRC) icrc_xor(r, icrc_id_delta(&dp->icrc, r->len, (uint16_t)was, id));
  put32(idw, id);
}

/* Appends one int-valued cmsg at *used bytes into ctrl. */
static void cmsg_int(char *ctrl, size_t *used, int level, int type, int v) {
  struct cmsghdr *c = (struct cmsghdr *)(ctrl + *used);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &v, sizeof v);
  *used += CMSG_SPACE(sizeof(int));
}

/*
 * The control messages of one sendmmsg message: UDP_SEGMENT for a GSO send (gso_size > 0), and
 * the address handle's TTL/hop limit and TOS/traffic class when the record carries them (the
 * socket's own are 64 and 0; a TOS of 0 is left to the socket). None: no control buffer.
 */
static void tx_cmsgs(datapath *dp, struct msghdr *h, char *ctrl, size_t cap, uint32_t gso_size, int ttl, int tos) {
  size_t used = 0;
  memset(ctrl, 0, cap);
  if (gso_size) {
    struct cmsghdr *c = (struct cmsghdr *)ctrl;
    c->cmsg_level = IPPROTO_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t size = (uint16_t)gso_size;
    memcpy(CMSG_DATA(c), &size, sizeof size);
    used += CMSG_SPACE(sizeof(uint16_t));
  }
  if (ttl >= 0) cmsg_int(ctrl, &used, dp->family == 4 ? IPPROTO_IP : IPPROTO_IPV6, dp->family == 4 ? IP_TTL : IPV6_HOPLIMIT, ttl);
  if (tos > 0) cmsg_int(ctrl, &used, dp->family == 4 ? IPPROTO_IP : IPPROTO_IPV6, dp->family == 4 ? IP_TOS : IPV6_TCLASS, tos);
  h->msg_control = used ? ctrl : NULL;
  h->msg_controllen = used;
}

static int gso_fallback_errno(int e) {
  /* what a GSO send gets for a segment larger than the path (EINVAL), a device that cannot
   * checksum it (EIO), a kernel without it: the datagrams then go one by one */
  return e == EINVAL || e == EMSGSIZE || e == EIO || e == EOPNOTSUPP || e == ENOPROTOOPT;
}

static uint32_t tx_batch(datapath *dp, uint8_t *mem, size_t memlen, uint32_t base, uint32_t first, uint32_t count,
                         uint32_t flags_or, int fd) {
  uint32_t i = 0, no_gso_before = 0;
  const uint32_t max_payload = dp->family == 4 ? UDP4_MAX_PAYLOAD : UDP6_MAX_PAYLOAD;
  while (i < count) {
    uint32_t nmsg = 0, niov = 0, j = i;
    while (j < count && nmsg < TX_MAX_MSGS) {
      tx_rec r;
      int err = tx_read(dp, mem, memlen, base, first, j, flags_or, &r);
      if (err) {
        tx_set_result(dp, mem, r.off, -err);
        dp->st.tx_bad_records++;
        dp->st.tx_errors++;
        j++;
        continue;
      }
      if (niov + r.niov > TX_MAX_IOV) break;
      uint32_t m = nmsg;
      struct msghdr *h = &dp->tx_msgs[m].msg_hdr;
      memset(h, 0, sizeof *h);
      h->msg_iov = &dp->tx_iov[niov];
      memcpy(&dp->tx_iov[niov], r.iov, r.niov * sizeof r.iov[0]);
      niov += r.niov;
      h->msg_iovlen = r.niov;
      dp->tx_first[m] = j;
      uint32_t nrec = 1;
      /* a GSO run: same peer, same length (the last may be shorter), every record allowing it */
      int can_gso = dp->gso_ok && (r.flags & TXF_GSO) && j >= no_gso_before && r.len <= max_payload &&
                    !(dp->family == 4 && (r.flags & (TXF_ICRC | TXF_ICRC_FILL)) && dp->tx.ip_id < 0);
      tx_rec seg[GSO_MAX_SEGS];
      seg[0] = r;
      if (can_gso) {
        uint32_t cap = max_payload / (r.len ? r.len : 1);
        if (cap > GSO_MAX_SEGS) cap = GSO_MAX_SEGS;
        while (j + nrec < count && nrec < cap) {
          tx_rec s;
          if (tx_read(dp, mem, memlen, base, first, j + nrec, flags_or, &s) != 0) break;
          if (!(s.flags & TXF_GSO) || s.len > r.len || s.len == 0 || s.port != r.port || memcmp(s.dst, r.dst, 16) != 0) break;
          if (s.ttl != r.ttl || s.tos != r.tos || s.flow != r.flow) break; /* one TTL/TOS/flow label per GSO send */
          if (dp->family == 4 && (s.flags & (TXF_ICRC | TXF_ICRC_FILL)) && dp->tx.ip_id < 0) break;
          if (niov + s.niov > TX_MAX_IOV) break;
          memcpy(&dp->tx_iov[niov], s.iov, s.niov * sizeof s.iov[0]);
          niov += s.niov;
          h->msg_iovlen += s.niov;
          seg[nrec++] = s;
          if (s.len < r.len) break;
        }
      }
      dp->tx_nrec[m] = nrec;
      /* destination */
      struct sockaddr_in6 *name = &dp->tx_names[m];
      if (dp->family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)name;
        memset(s4, 0, sizeof *s4);
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)r.port);
        memcpy(&s4->sin_addr, r.dst + 12, 4);
        h->msg_namelen = sizeof *s4;
      } else {
        memset(name, 0, sizeof *name);
        name->sin6_family = AF_INET6;
        name->sin6_port = htons((uint16_t)r.port);
        /* the address handle's flow label: the kernel takes it from here on a socket with
         * IPV6_FLOWINFO_SEND (udpsock.c sets it on every addon socket), 0 stays 0 (no auto label) */
        name->sin6_flowinfo = htonl(r.flow);
        memcpy(&name->sin6_addr, r.dst, 16);
        h->msg_namelen = sizeof *name;
      }
      h->msg_name = name;
      tx_cmsgs(dp, h, dp->tx_ctrl[m], sizeof dp->tx_ctrl[m], nrec > 1 ? r.len : 0, r.ttl, r.tos);
      /* IPv4 IDs: 0 for a lone datagram (DF, unconnected), segment k of a GSO send gets k */
      for (uint32_t k = 0; k < nrec; k++) tx_assign_id(dp, mem, &seg[k], (uint16_t)(nrec > 1 ? k : 0));
      nmsg++;
      j += nrec;
    }

    uint32_t m = 0;
    int rebuild = 0;
    while (m < nmsg) {
      int sent = sendmmsg(fd, dp->tx_msgs + m, nmsg - m, 0);
      dp->st.tx_syscalls++;
      if (sent > 0) {
        for (uint32_t k = m; k < m + (uint32_t)sent; k++) {
          uint32_t nrec = dp->tx_nrec[k];
          if (nrec > 1) dp->st.tx_gso_sends++, dp->st.tx_gso_segments += nrec;
          for (uint32_t q = 0; q < nrec; q++) {
            tx_rec r;
            /* re-read for the length and offset; the record was valid when the message was built */
            tx_read(dp, mem, memlen, base, first, dp->tx_first[k] + q, flags_or, &r);
            tx_set_result(dp, mem, r.off, (int32_t)r.len);
            dp->st.tx_datagrams++;
            dp->st.tx_bytes += r.len;
          }
        }
        m += (uint32_t)sent;
        continue;
      }
      int e = sent < 0 ? errno : EAGAIN; /* 0 sent of a non-empty vector: take it as "not now" */
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) {
        /* backpressure: what was not sent is the caller's again, untouched but for IDs */
        dp->st.tx_eagain++;
        uint32_t stop = dp->tx_first[m];
        for (uint32_t q = stop; q < j; q++) {
          tx_rec r;
          tx_read(dp, mem, memlen, base, first, q, flags_or, &r);
          tx_set_result(dp, mem, r.off, 0);
        }
        return stop;
      }
      if (dp->tx_nrec[m] > 1 && gso_fallback_errno(e)) {
        dp->st.tx_gso_fallbacks++;
        no_gso_before = dp->tx_first[m] + dp->tx_nrec[m];
        i = dp->tx_first[m];
        rebuild = 1;
        break;
      }
      for (uint32_t q = 0; q < dp->tx_nrec[m]; q++) {
        tx_rec r;
        tx_read(dp, mem, memlen, base, first, dp->tx_first[m] + q, flags_or, &r);
        tx_set_result(dp, mem, r.off, -e);
        dp->st.tx_errors++;
      }
      m++;
    }
    if (!rebuild) i = j;
  }
  return count;
}

/* ---- JS methods */

static datapath *this_dp(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  return nu_this(env, info, argc, argv, "not a Datapath");
}

/*
 * sendBatch(base, first, count, flagsOr, fromFd?): records dealt with (count unless EAGAIN stopped
 * the batch). fromFd: another bound UDP socket of the same family to send from (a QP's own source
 * port, host/node/sport-pool.ts); the datapath's own socket when absent or -1.
 */
static napi_value js_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  datapath *dp = this_dp(env, info, &argc, argv);
  if (!dp) return NULL;
  uint32_t base, first, count, flags_or = 0;
  int32_t from_fd = -1;
  if (argc < 3 || !nu_get_u32(env, argv[0], &base) || !nu_get_u32(env, argv[1], &first) || !nu_get_u32(env, argv[2], &count) ||
      (argc > 3 && !nu_get_u32(env, argv[3], &flags_or)) ||
      (argc > 4 && napi_get_value_int32(env, argv[4], &from_fd) != napi_ok))
    return nu_throw_type(env, "sendBatch(base, first, count, flagsOr?, fromFd?): unsigned integers (fromFd -1: own socket)");
  if (dp->closed) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "sendBatch: the datapath is closed");
    return NULL;
  }
  uint8_t *mem;
  size_t memlen;
  if (!memory_bytes(dp, &mem, &memlen)) return nu_throw_type(env, "sendBatch: the memory buffer is gone");
  uint64_t span = dp->tx.ring_cap ? dp->tx.ring_cap : (uint64_t)first + count;
  if (dp->tx.ring_cap && count > dp->tx.ring_cap) return nu_throw_range(env, "sendBatch: count exceeds the ring");
  if ((uint64_t)base + span * dp->tx.stride > memlen) return nu_throw_range(env, "sendBatch: the records do not fit the buffer");
  dp->in_call++;
  uint32_t done = count ? tx_batch(dp, mem, memlen, base, first, count, flags_or, from_fd >= 0 ? from_fd : dp->fd) : 0;
  dp->in_call--;
  napi_value out;
  napi_create_uint32(env, done, &out);
  return out;
}

/* receive(areaOff, slotSize, slots, metaOff, metaCap, budget, onBatch) */
static napi_value js_receive(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  datapath *dp = this_dp(env, info, &argc, argv);
  if (!dp) return NULL;
  uint32_t area, space, slots, meta, meta_cap, budget;
  napi_valuetype t = napi_undefined;
  if (argc >= 7) napi_typeof(env, argv[6], &t);
  if (argc < 7 || !nu_get_u32(env, argv[0], &area) || !nu_get_u32(env, argv[1], &space) || !nu_get_u32(env, argv[2], &slots) ||
      !nu_get_u32(env, argv[3], &meta) || !nu_get_u32(env, argv[4], &meta_cap) || !nu_get_u32(env, argv[5], &budget) || t != napi_function)
    return nu_throw_type(env, "receive(areaOff, slotSize, slots, metaOff, metaCap, budget, onBatch)");
  if (dp->closed) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "receive: the datapath is closed");
    return NULL;
  }
  if (space == 0 || space > 65536 || slots == 0 || meta_cap == 0 || budget == 0)
    return nu_throw_range(env, "receive: slotSize 1..65536, slots, metaCap and budget at least 1");
  if (dp->gro_on && space < 65536) return nu_throw_range(env, "receive: with GRO each slot must hold 65536 bytes (a whole super-datagram)");
  uint8_t *mem;
  size_t memlen;
  if (!memory_bytes(dp, &mem, &memlen)) return nu_throw_type(env, "receive: the memory buffer is gone");
  if (slots > RX_MAX_MSGS) slots = RX_MAX_MSGS;
  uint64_t area_end = (uint64_t)area + (uint64_t)space * slots, meta_end = (uint64_t)meta + (uint64_t)meta_cap * dp->rx.stride;
  if (area_end > memlen || meta_end > memlen) return nu_throw_range(env, "receive: the slots or the metadata do not fit the buffer");
  if (area < meta_end && meta < area_end) return nu_throw_range(env, "receive: the slots and the metadata overlap");
  if (dp->on_batch) napi_delete_reference(env, dp->on_batch);
  napi_create_reference(env, argv[6], 1, &dp->on_batch);
  dp->rx_area = area, dp->rx_space = space, dp->rx_nmsg = slots;
  dp->rx_meta = meta, dp->rx_meta_cap = meta_cap, dp->rx_budget = budget;
  dp->receiving = 1;
  int r = update_poll(dp);
  if (r != 0) {
    dp->receiving = 0;
    napi_throw_error(env, NULL, uv_strerror(r));
    return NULL;
  }
  return nu_undefined(env);
}

/*
 * setBusyPoll(us, adaptive, capUs): after a received batch that drained the socket keep polling it up
 * to `us` µs for the next (0 off, at most 1000; rx_drain_once). adaptive (1): each window opens only
 * as the hit-rate gate lets it (poll_gate.h; a fresh gate) and one wake-up spends at most
 * BUSY_POLL_ADAPTIVE_CAP_US in windows; 0 or absent: every window opens, at most BUSY_POLL_CAP_US.
 * capUs (1..BUSY_POLL_CAP_US, benches): another cap.
 */
static napi_value js_set_busy_poll(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  datapath *dp = this_dp(env, info, &argc, argv);
  if (!dp) return NULL;
  uint32_t us, adaptive = 0, cap = 0;
  if (argc < 1 || !nu_get_u32(env, argv[0], &us) || (argc >= 2 && !nu_get_u32(env, argv[1], &adaptive)) ||
      (argc >= 3 && !nu_get_u32(env, argv[2], &cap))) {
    return nu_throw_type(env, "setBusyPoll(us, adaptive, capUs)");
  }
  if (us > 1000) return nu_throw_range(env, "setBusyPoll: 0..1000 µs");
  if (adaptive > 1) return nu_throw_range(env, "setBusyPoll: adaptive is 0 or 1");
  if (cap > BUSY_POLL_CAP_US) return nu_throw_range(env, "setBusyPoll: capUs 1..2000");
  dp->busy_poll_us = us;
  dp->busy_adaptive = (int)adaptive;
  dp->busy_poll_cap_us = cap ? cap : adaptive ? BUSY_POLL_ADAPTIVE_CAP_US : BUSY_POLL_CAP_US;
  poll_gate_init(&dp->gate);
  return nu_undefined(env);
}

/* slowYield(us): fault injection for tests — each yield between busy polls also sleeps this long
 * (0..1000000 µs; 0 off), as a yield beside CPU hogs can last a scheduler tick. */
static napi_value js_slow_yield(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  datapath *dp = this_dp(env, info, &argc, argv);
  if (!dp) return NULL;
  uint32_t us;
  if (argc < 1 || !nu_get_u32(env, argv[0], &us)) return nu_throw_type(env, "slowYield(us)");
  if (us > 1000000) return nu_throw_range(env, "slowYield: 0..1000000 µs");
  dp->slow_yield_us = us;
  return nu_undefined(env);
}

/*
 * pollReceive(us): a busy poll asked for by JS, typically right after a send whose answer comes
 * soon (a gateway forwarding a request): checks the socket without sleeping for up to `us` µs (at
 * most BUSY_POLL_CAP_US); once datagrams are there, receives them as a readable socket would (the
 * batch callback runs inside this call) and returns how many arrived. 0: none in time, not
 * receiving, or called from inside a batch callback (no nesting).
 */
static napi_value js_poll_receive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  datapath *dp = this_dp(env, info, &argc, argv);
  if (!dp) return NULL;
  uint32_t us;
  if (argc < 1 || !nu_get_u32(env, argv[0], &us)) return nu_throw_type(env, "pollReceive(us)");
  if (us > BUSY_POLL_CAP_US) return nu_throw_range(env, "pollReceive: 0..2000 µs");
  uint64_t got = 0;
  if (dp->receiving && !dp->closed && !dp->draining && dp->on_batch) {
    dp->st.rx_poll_calls++;
    uint64_t end = poll_now_us() + us;
    for (;;) {
      struct pollfd p = {.fd = dp->fd, .events = POLLIN};
      int r = poll(&p, 1, 0);
      if (r > 0) {
        /* readable (or an error, which rx_drain counts): as on_poll would */
        uint64_t before = dp->st.rx_datagrams;
        dp->in_call++;
        rx_drain(dp);
        dp->in_call--;
        got = dp->st.rx_datagrams - before;
        if (got) dp->st.rx_poll_hits++;
        break;
      }
      if (r < 0 && errno != EINTR) break;
      if (poll_now_us() >= end) break;
    }
  }
  napi_value out;
  napi_create_double(env, (double)got, &out);
  return out;
}

static napi_value js_stop_receive(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  datapath *dp = this_dp(env, info, &argc, NULL);
  if (!dp) return NULL;
  dp->receiving = 0;
  update_poll(dp);
  return nu_undefined(env);
}

/* onWritable(fn, fd?): fn() once, when the socket can take datagrams again (after sendBatch stopped
 * on EAGAIN): the datapath's own, or with `fd` (sendBatch's fromFd) that socket. A new call replaces
 * the wait before it. */
static napi_value js_on_writable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  datapath *dp = this_dp(env, info, &argc, argv);
  if (!dp) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  int32_t fd = -1;
  napi_valuetype ft = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &ft);
  if (t != napi_function || (ft != napi_undefined && (ft != napi_number || napi_get_value_int32(env, argv[1], &fd) != napi_ok)))
    return nu_throw_type(env, "onWritable(fn, fd?)");
  if (dp->closed) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "onWritable: the datapath is closed");
    return NULL;
  }
  if (dp->on_writable) napi_delete_reference(env, dp->on_writable);
  napi_create_reference(env, argv[0], 1, &dp->on_writable);
  drop_watch(dp);
  int r = fd >= 0 && fd != dp->fd ? start_watch(dp, fd) : 0;
  if (r != 0) {
    napi_delete_reference(env, dp->on_writable);
    dp->on_writable = NULL;
  }
  int r2 = update_poll(dp);
  if (r == 0) r = r2;
  if (r != 0) {
    napi_throw_error(env, NULL, uv_strerror(r));
    return NULL;
  }
  return nu_undefined(env);
}

static napi_value js_set_memory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  datapath *dp = this_dp(env, info, &argc, argv);
  if (!dp) return NULL;
  uint8_t *mem;
  size_t len;
  if (argc < 1 || !view_bytes(env, argv[0], &mem, &len)) return nu_throw_type(env, "setMemory(Uint8Array | ArrayBuffer)");
  if (dp->memory) napi_delete_reference(env, dp->memory);
  napi_create_reference(env, argv[0], 1, &dp->memory);
  return nu_undefined(env);
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  datapath *dp = this_dp(env, info, &argc, NULL);
  if (!dp) return NULL;
  napi_value o;
  napi_create_object(env, &o);
  int rcv = -1, snd = -1, gro = 0;
  socklen_t l = sizeof rcv;
  if (dp->fd >= 0) {
    getsockopt(dp->fd, SOL_SOCKET, SO_RCVBUF, &rcv, &l);
    l = sizeof snd;
    getsockopt(dp->fd, SOL_SOCKET, SO_SNDBUF, &snd, &l);
    l = sizeof gro;
    if (getsockopt(dp->fd, IPPROTO_UDP, UDP_GRO, &gro, &l) != 0) gro = 0;
  }
  nu_set_num(env, o, "fd", dp->fd);
  nu_set_num(env, o, "family", dp->family);
  nu_set_num(env, o, "port", dp->local_port);
  nu_set_num(env, o, "recvBufferSize", rcv);
  nu_set_num(env, o, "sendBufferSize", snd);
  napi_value b;
  napi_get_boolean(env, dp->gso_ok, &b);
  napi_set_named_property(env, o, "gso", b);
  napi_get_boolean(env, gro != 0, &b);
  napi_set_named_property(env, o, "gro", b);
  napi_get_boolean(env, dp->pktinfo_on, &b);
  napi_set_named_property(env, o, "pktinfo", b);
  /* IPv6: each datagram carries its record's flow label (the layout has one, the socket takes it) */
  napi_get_boolean(env, dp->family == 6 && dp->tx.flow >= 0 && dp->fd >= 0 && udpsock_flow_label(dp->fd), &b);
  napi_set_named_property(env, o, "flowLabel", b);
  napi_get_boolean(env, dp->closed, &b);
  napi_set_named_property(env, o, "closed", b);
  /* receive readiness, for a stalled receiver's report: whether receive() is on and the uv_poll
   * watches for readable, and what the socket holds now (poll without waiting; FIONREAD: the
   * size of the datagram at its head, 0 when none) */
  napi_get_boolean(env, dp->receiving, &b);
  napi_set_named_property(env, o, "receiving", b);
  napi_get_boolean(env, (dp->poll_events & UV_READABLE) != 0, &b);
  napi_set_named_property(env, o, "watchingReadable", b);
  int readable = 0, head = 0;
  if (dp->fd >= 0) {
    struct pollfd p = {.fd = dp->fd, .events = POLLIN};
    readable = poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
    if (ioctl(dp->fd, FIONREAD, &head) != 0) head = 0;
  }
  napi_get_boolean(env, readable, &b);
  napi_set_named_property(env, o, "readableNow", b);
  nu_set_num(env, o, "headDatagramBytes", head);
  /* ICRC offload: which directions the layouts ask for, and whether the CPU has the fast CRC */
  napi_get_boolean(env, dp->tx.fill_word >= 0, &b);
  napi_set_named_property(env, o, "icrcTx", b);
  napi_get_boolean(env, dp->rx.icrc >= 0, &b);
  napi_set_named_property(env, o, "icrcRx", b);
  napi_get_boolean(env, crc32_clmul_available(), &b);
  napi_set_named_property(env, o, "icrcClmul", b);
  return o;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  datapath *dp = this_dp(env, info, &argc, NULL);
  if (!dp) return NULL;
  napi_value o;
  napi_create_object(env, &o);
  const dp_stats *s = &dp->st;
#define STAT(name, field) nu_set_num(env, o, name, (double)s->field)
  STAT("txDatagrams", tx_datagrams);
  STAT("txBytes", tx_bytes);
  STAT("txSyscalls", tx_syscalls);
  STAT("txGsoSends", tx_gso_sends);
  STAT("txGsoSegments", tx_gso_segments);
  STAT("txGsoFallbacks", tx_gso_fallbacks);
  STAT("txErrors", tx_errors);
  STAT("txBadRecords", tx_bad_records);
  STAT("txEagain", tx_eagain);
  STAT("rxDatagrams", rx_datagrams);
  STAT("rxBytes", rx_bytes);
  STAT("rxSyscalls", rx_syscalls);
  STAT("rxGroSplits", rx_gro_splits);
  STAT("rxTruncated", rx_truncated);
  STAT("rxBatches", rx_batches);
  STAT("rxBatchesMore", rx_batches_more);
  STAT("rxWakeups", rx_wakeups);
  STAT("rxErrors", rx_errors);
  STAT("rxBusyPolls", rx_busy_polls);
  STAT("rxBusyHits", rx_busy_hits);
  STAT("rxBusyGated", rx_busy_gated);
  STAT("rxBusySpins", rx_busy_spins);
  STAT("rxBusyLate", rx_busy_late);
  STAT("rxBusyReady", rx_busy_ready);
  STAT("rxPollCalls", rx_poll_calls);
  STAT("rxPollHits", rx_poll_hits);
  STAT("txIcrcFilled", tx_icrc_filled);
  STAT("rxIcrcComputed", rx_icrc_computed);
  STAT("rxSocketErrors", rx_socket_errors);
  STAT("rxLastSocketError", last_socket_error);
#undef STAT
  return o;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  datapath *dp = this_dp(env, info, &argc, NULL);
  if (!dp) return NULL;
  shut(dp);
  return nu_undefined(env);
}

/*
 * new Datapath(memory, socket, txLayout, rxLayout)
 *   memory:   Uint8Array (over an ArrayBuffer or a SharedArrayBuffer) or ArrayBuffer
 *   socket:   { family: 4 | 6, address, port, reuseAddr?, recvBufferSize?, sendBufferSize?, gro?, gso?, pktinfo?, recvErr? }
 *   txLayout, rxLayout: Int32Array, see parse_tx_layout / parse_rx_layout
 */
static napi_value js_construct(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  uint8_t *mem;
  size_t memlen;
  const int32_t *txa, *rxa;
  size_t txn, rxn;
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  if (argc < 4 || !view_bytes(env, argv[0], &mem, &memlen) || t != napi_object || !int32_array(env, argv[2], &txa, &txn) ||
      !int32_array(env, argv[3], &rxa, &rxn))
    return nu_throw_type(env, "new Datapath(memory: Uint8Array | ArrayBuffer, socket: object, txLayout: Int32Array, rxLayout: Int32Array)");
  tx_layout txl;
  rx_layout rxl;
  const char *bad = parse_tx_layout(txa, txn, &txl);
  if (!bad) bad = parse_rx_layout(rxa, rxn, &rxl);
  if (bad) return nu_throw_range(env, bad);

  napi_value opts = argv[1], v;
  uint32_t family = 0, port = 0, rcvbuf = 0, sndbuf = 0;
  char addr[64];
  size_t addr_len = 0;
  if (!opt_u32(env, opts, "family", 0, &family) || (family != 4 && family != 6) || !opt_u32(env, opts, "port", 0, &port) ||
      port > 65535 || !opt_value(env, opts, "address", &v) ||
      napi_get_value_string_utf8(env, v, addr, sizeof addr, &addr_len) != napi_ok ||
      !opt_u32(env, opts, "recvBufferSize", 0, &rcvbuf) || !opt_u32(env, opts, "sendBufferSize", 0, &sndbuf) ||
      rcvbuf > INT32_MAX || sndbuf > INT32_MAX)
    return nu_throw_range(env, "Datapath socket: family 4 or 6, address, port 0..65535, buffer sizes in bytes");
  int want_gro = opt_bool(env, opts, "gro", 0), want_gso = opt_bool(env, opts, "gso", 1);
  int want_pktinfo = opt_bool(env, opts, "pktinfo", 0);
  int want_recverr = opt_bool(env, opts, "recvErr", 0);
  int flags = UDPSOCK_NONBLOCK | (opt_bool(env, opts, "reuseAddr", 0) ? UDPSOCK_REUSEADDR : 0);

  udpsock_step step;
  int fd = udpsock_open((int)family, addr, (int)port, flags, &step);
  if (fd < 0) {
    if (step == UDPSOCK_AT_ADDRESS) return nu_throw_range(env, "Datapath socket: not an address of that family");
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %s", udpsock_step_name(step), strerror(-fd));
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  int one = 1, err = 0;
  const char *what = NULL;
  /* Linux caps both at net.core.[rw]mem_max; info() reports what the kernel granted. */
  if (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){(int)rcvbuf}, sizeof(int)) != 0) what = "SO_RCVBUF";
  if (!what && sndbuf && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){(int)sndbuf}, sizeof(int)) != 0) what = "SO_SNDBUF";
  if (!what && want_gro && setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof one) != 0) what = "UDP_GRO";
  if (!what && want_pktinfo) {
    int r = family == 4 ? setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one)
                        : setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    if (r != 0) what = "PKTINFO";
  }
  if (!what && want_recverr) {
    int r = family == 4 ? setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one)
                        : setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof one);
    if (r != 0) what = "RECVERR";
  }
  if (what) {
    err = errno;
    close(fd);
    char msg[160];
    snprintf(msg, sizeof msg, "setsockopt %s: %s", what, strerror(err));
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  struct sockaddr_in6 local;
  socklen_t ll = sizeof local;
  memset(&local, 0, sizeof local);
  getsockname(fd, (struct sockaddr *)&local, &ll);
  if (family == 4) {
    /* as the dgram link: multicast leaves through the bound address's interface (loopback too) and
     * loops back to members on this host (best effort: unicast does not need it) */
    struct in_addr ifa = ((struct sockaddr_in *)&local)->sin_addr;
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa);
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
  }
  /* A kernel that knows UDP_SEGMENT answers getsockopt for it; one that does not would send a
   * GSO batch as a single oversized datagram, so GSO is only used where the option exists. */
  int gso_size = 0;
  socklen_t gl = sizeof gso_size;
  int gso_ok = want_gso && getsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &gso_size, &gl) == 0;

  datapath *dp = calloc(1, sizeof *dp);
  if (!dp) {
    close(fd);
    napi_throw_error(env, NULL, "Datapath: out of memory");
    return NULL;
  }
  dp->env = env;
  dp->busy_poll_cap_us = BUSY_POLL_CAP_US;
  poll_gate_init(&dp->gate);
  dp->fd = fd;
  dp->family = (int)family;
  dp->gso_ok = gso_ok;
  dp->gro_on = want_gro;
  dp->pktinfo_on = want_pktinfo;
  dp->local_port = ntohs(local.sin6_port); /* sin_port and sin6_port share their offset */
  uint16_t ignored_port;
  udpsock_gid_of(&local, dp->local_gid, &ignored_port);
  dp->tx = txl;
  dp->rx = rxl;
  napi_create_reference(env, argv[0], 1, &dp->memory);
  napi_value name;
  napi_create_string_utf8(env, "softroce.datapath", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &dp->actx);
  if (napi_wrap(env, self, dp, finalize, NULL, &dp->wrapper) != napi_ok) {
    shut(dp);
    free(dp);
    napi_throw_error(env, NULL, "Datapath: wrap failed");
    return NULL;
  }
  napi_add_async_cleanup_hook(env, on_env_cleanup, dp, &dp->cleanup);
  return self;
}

/* patchIcrcId(memory, offset, length, fromId, toId): moves the ICRC of the RoCEv2 UDP payload at
 * [offset, offset + length) from IPv4 ID fromId to toId, in place. For tests and for hosts that
 * re-send a datagram under another ID. */
static napi_value js_patch_icrc_id(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *mem;
  size_t memlen;
  uint32_t off, len, from, to;
  if (argc < 5 || !view_bytes(env, argv[0], &mem, &memlen) || !nu_get_u32(env, argv[1], &off) || !nu_get_u32(env, argv[2], &len) ||
      !nu_get_u32(env, argv[3], &from) || !nu_get_u32(env, argv[4], &to))
    return nu_throw_type(env, "patchIcrcId(memory, offset, length, fromId, toId)");
  if (from > 0xffff || to > 0xffff) return nu_throw_range(env, "patchIcrcId: IDs are 16-bit");
  if (len < 4 || (uint64_t)off + len > memlen) return nu_throw_range(env, "patchIcrcId: the datagram must lie inside the buffer and hold an ICRC");
  icrc_id_columns cols;
  icrc_id_columns_for(len, &cols);
  uint32_t delta = 0, diff = from ^ to;
  for (int bit = 0; bit < 16; bit++)
    if (diff & (1u << bit)) delta ^= cols.col[bit];
  for (int k = 0; k < 4; k++) mem[off + len - 4 + k] ^= (uint8_t)(delta >> (8 * k));
  return nu_undefined(env);
}

/* The (memory, offset, length) arguments at argv[0..2] as bytes inside the buffer; NULL after a throw. */
static const uint8_t *byte_range_args(napi_env env, size_t argc, napi_value *argv, const char *usage, uint32_t *len) {
  uint8_t *mem;
  size_t memlen;
  uint32_t off;
  if (argc < 3 || !view_bytes(env, argv[0], &mem, &memlen) || !nu_get_u32(env, argv[1], &off) || !nu_get_u32(env, argv[2], len)) {
    nu_throw_type(env, usage);
    return NULL;
  }
  if ((uint64_t)off + *len > memlen) {
    nu_throw_range(env, "the bytes must lie inside the buffer");
    return NULL;
  }
  return mem + off;
}

/* crc32(memory, offset, length, crc): the raw CRC-32 register (no inversions) after the bytes, from
 * `crc`: the offload's CRC, for tests and bench/crc.mjs. */
static napi_value js_crc32(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t len, crc;
  const uint8_t *p = byte_range_args(env, argc, argv, "crc32(memory, offset, length, crc)", &len);
  if (!p) return NULL;
  if (argc < 4 || !nu_get_u32(env, argv[3], &crc)) return nu_throw_type(env, "crc32(memory, offset, length, crc)");
  napi_create_uint32(env, crc32_raw(crc, p, len), &out);
  return out;
}

/* icrcOfPacket(memory, offset, length): the ICRC value (u32 as read little-endian from the wire) the
 * offload computes for the IPv4 (20-byte header, DF) or IPv6 RoCEv2 packet at [offset, offset +
 * length), through the same icrc_compute the datapath uses, from the header's facts; -1 when it is
 * not such a packet. Tests compare it with the core's ICRC and with captured ones. */
static napi_value js_icrc_of_packet(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t len;
  const uint8_t *p = byte_range_args(env, argc, argv, "icrcOfPacket(memory, offset, length)", &len);
  if (!p) return NULL;
  double result = -1;
  uint8_t src[16] = {0}, dst[16] = {0};
  uint32_t iplen = 0;
  icrc_facts f = {0, src, dst, 0, 0, 0};
  if (len >= 20 && p[0] == 0x45 && p[9] == 17 && (p[6] & 0xbf) == 0x00 && p[7] == 0 && (p[6] & 0x40)) {
    iplen = 20;
    src[10] = src[11] = dst[10] = dst[11] = 0xff;
    memcpy(src + 12, p + 12, 4);
    memcpy(dst + 12, p + 16, 4);
    f.ip_id = (uint16_t)(p[4] << 8 | p[5]);
  } else if (len >= 40 && (p[0] >> 4) == 6 && p[6] == 17) {
    iplen = 40;
    f.v6 = 1;
    memcpy(src, p + 8, 16);
    memcpy(dst, p + 24, 16);
  }
  if (iplen && len >= iplen + 8 + ICRC_MIN_PAYLOAD) {
    const uint8_t *u = p + iplen;
    f.sport = (uint16_t)(u[0] << 8 | u[1]);
    f.dport = (uint16_t)(u[2] << 8 | u[3]);
    uint32_t udp_payload = len - iplen - 8;
    struct iovec one = {(void *)(u + 8), udp_payload};
    result = icrc_compute(&f, &one, 1, udp_payload);
  }
  napi_create_double(env, result, &out);
  return out;
}

/* crc32Wide(on): whether runs of 256 bytes or more take the 256-bit VPCLMULQDQ path where the CPU
 * has it (default true); returns whether they do now. Tests and bench/crc.mjs compare the two paths. */
static napi_value js_crc32_wide(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  bool on = true;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) return nu_throw_type(env, "crc32Wide(on: boolean)");
  crc32_no_vclmul = !on;
  napi_get_boolean(env, on && crc32_vclmul_available(), &out);
  return out;
}

void datapath_init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"sendBatch", NULL, js_send_batch, NULL, NULL, NULL, napi_default, NULL},
      {"receive", NULL, js_receive, NULL, NULL, NULL, napi_default, NULL},
      {"stopReceive", NULL, js_stop_receive, NULL, NULL, NULL, napi_default, NULL},
      {"setBusyPoll", NULL, js_set_busy_poll, NULL, NULL, NULL, napi_default, NULL},
      {"slowYield", NULL, js_slow_yield, NULL, NULL, NULL, napi_default, NULL},
      {"pollReceive", NULL, js_poll_receive, NULL, NULL, NULL, napi_default, NULL},
      {"onWritable", NULL, js_on_writable, NULL, NULL, NULL, napi_default, NULL},
      {"setMemory", NULL, js_set_memory, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, js_info, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, patch;
  napi_define_class(env, "Datapath", NAPI_AUTO_LENGTH, js_construct, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "Datapath", cls);
  napi_create_function(env, "patchIcrcId", NAPI_AUTO_LENGTH, js_patch_icrc_id, NULL, &patch);
  napi_set_named_property(env, exports, "patchIcrcId", patch);
  napi_value fn;
  napi_create_function(env, "crc32", NAPI_AUTO_LENGTH, js_crc32, NULL, &fn);
  napi_set_named_property(env, exports, "crc32", fn);
  napi_create_function(env, "icrcOfPacket", NAPI_AUTO_LENGTH, js_icrc_of_packet, NULL, &fn);
  napi_set_named_property(env, exports, "icrcOfPacket", fn);
  napi_get_boolean(env, crc32_clmul_available(), &fn);
  napi_set_named_property(env, exports, "crc32Clmul", fn);
  napi_get_boolean(env, crc32_vclmul_available(), &fn);
  napi_set_named_property(env, exports, "crc32Vclmul", fn);
  napi_create_function(env, "crc32Wide", NAPI_AUTO_LENGTH, js_crc32_wide, NULL, &fn);
  napi_set_named_property(env, exports, "crc32Wide", fn);
}
