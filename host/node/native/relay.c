/*
 * The gateway's native relay (docs/TUNNEL.md, "The native relay"): the per-packet path of
 * established tunnel sessions on one thread of the addon, so a round trip crosses no Node event
 * loop in the gateway.
 *
 * JS (host/gateway) keeps everything that is not the per-packet path: the HTTP upgrade, HELLO,
 * sessions, the address policy, the RC/UC conversation bindings, refusals and their log, close
 * and timers. After the upgrade it hands the session's TCP descriptor to the relay (`adopt`), and
 * from then on every byte to and from that socket goes through here:
 *
 *  client -> UDP  read() the TCP stream, parse WebSocket frames strictly (ws's rules), unmask in
 *                 place, parse the tunnel frame (DATA, BATCH); each datagram whose checks all pass
 *                 (IPv4 ID 0, the client's token buckets, the RoCEv2 shape, its DETH source QP in
 *                 the client's range, not hairpinned, and a destination the JS path approved for
 *                 this session) leaves with sendmmsg from the gateway's UDP socket, straight out of
 *                 the read buffer.
 *  UDP -> client  recvmmsg on the gateway's UDP socket; a datagram whose checks pass (source port,
 *                 shape, a relayed session owning its destination QP, a source the JS path approved
 *                 for that QP) is appended to that session's DATA/BATCH frame, which leaves as one
 *                 unmasked WebSocket message when the receive batch ends (write(); the rest waits
 *                 for EPOLLOUT in a bounded queue, the JS path's clientQueueBytes).
 *
 * Anything else is PUNTED to JS through an event queue, in order: a frame the relay does not
 * forward itself (malformed, text, a kind clients do not send), a datagram whose check failed or
 * that is not approved yet (JS runs the same code as for its own sessions — the refusal, the
 * ERROR frame, the eviction — and approves the conversation when it forwards it), close, pong, a
 * WebSocket protocol error (the relay answers it with ws's close code, JS counts and logs it).
 * From a session's first punt until JS says it has handled them (`resume`), the session's
 * datagrams in that direction all take the punt path, so nothing overtakes. Approvals expire
 * (approvalMs), so the JS side sees every conversation at least that often (its bindings' clocks).
 *
 * The tunnel's constants (frame kinds, header lengths, record offsets) are not written here: JS
 * passes them at construction (host/core/tunnel/frames.ts is their one home), and `constants()`
 * gives back what the relay uses (test/host/gateway/relay.test.ts compares them).
 */
#define _GNU_SOURCE
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "napi_util.h"
#include "poll_gate.h"
#include "udpsock.h"

#define TX_BATCH 64
#define RX_BATCH 64
#define RX_BUDGET 8
#define APPROVALS 256
#define EVENT_QUEUE_MAX (8u << 20)
/* the longest poll window (µs) */
#define POLL_MAX_US 10000

/* Event kinds delivered to JS (host/gateway/relay.ts RelayEvent). */
enum { EV_END = 0, EV_FRAME = 1, EV_DATAGRAM = 2, EV_UDP = 3, EV_CLOSED = 4, EV_PONG = 5, EV_WS_ERROR = 6, EV_PING = 7 };
/* EV_DATAGRAM's `a`: why it was punted. */
enum { PUNT_DECIDE = 0, PUNT_RATE = 1 };
/* EV_FRAME's `a`. */
enum { FRAME_TEXT = 0, FRAME_BINARY = 1 };
enum { S_FREE = 0, S_OPEN = 1, S_CLOSING = 2 };

/* A traced turn: CLOCK_MONOTONIC ns when epoll_wait returned and when the turn ended, what woke it
   (1: a session's TCP socket, 2: the UDP socket), datagrams sent to UDP and frames queued to clients in it. */
#define TRACE_FIELDS 5
#define TRACE_MAX (1u << 20)

#define TAG_UDP 0xffffffffffffff01ull
#define TAG_WAKE 0xffffffffffffff02ull

/* The tunnel's constants as JS gave them (frames.ts). */
typedef struct {
  uint32_t v1, v2, kind_data, kind_batch, data_header, batch_header, record, batch_max, min_payload;
  uint32_t port_off, address_off, ip_id_off, ip_id_unknown;
} tunnel_consts;

typedef struct {
  uint8_t gid[16];
  uint32_t port, qpn;
  uint64_t until;
} approval;

typedef struct event {
  struct event *next;
  int kind;
  uint32_t id;
  int32_t a;
  uint32_t len;
  uint8_t bytes[];
} event;

/* The two polls (relay_main): the answer poll waits for the peer's answer to a client's request, the
   request poll for the client's next request after its answer went to it. Counters are per kind:
   windows opened (or joined), those that saw what they waited for after a look in vain (hits), those
   that found it at their first look (ready: neither a hit nor a miss, poll_gate_found), those the gate
   held back. */
enum { POLL_ANSWER = 0, POLL_REQUEST = 1, POLL_KINDS = 2 };

typedef struct {
  uint64_t polls[POLL_KINDS], hits[POLL_KINDS], ready[POLL_KINDS], gated[POLL_KINDS];
} poll_stats;

typedef struct {
  uint64_t frames_in, frames_out, bytes_in, bytes_out, dropped, last_active;
  poll_stats poll;
} sess_stats;

typedef struct session {
  int state, fd, version, want_out;
  uint32_t id, gen;
  uint8_t *in;
  size_t in_len, in_cap;
  uint8_t *msg; /* a fragmented message being assembled */
  size_t msg_len;
  int msg_op; /* 0: none */
  uint8_t *out;
  size_t out_head, out_tail, out_cap;
  /* the frame toward the client being built at out[batch_at] (0 datagrams: none) */
  size_t batch_at;
  uint32_t batch_n;
  uint32_t batch_acks; /* of them, bare ACKs (ACK or NAK, no payload) */
  /* the open frame holds only bare ACKs and waits for the answer the session's answer poll waits for
     (join_acks): it leaves with it, or when the window ends (poll_end), or before anything else written */
  int held;
  int dirty;
  double tok_p, tok_b;
  uint64_t tok_last;
  uint32_t tx_punted, tx_acked, rx_punted, rx_acked;
  int close_sent; /* 1: our close frame queued; 2: the client's received (ours answered) */
  int close_deferred; /* a protocol error came while JS held earlier frames: JS sends the close after them (closeSession) */
  int close_code, discard;
  /* the polls, per session (relay_main): this turn sent a request that asks for an answer, or an
     answer went to the client (`join`: JOIN_* bits; the session is on the turn's join list: `joined`,
     kept apart so that a slot adopted anew stays listed once but asks for nothing); a window waits
     for the peer's answer or the client's next request (`polling`: 1 + the POLL_* kind, on the
     window's list: `listed`); each kind's own hit-rate gate (poll_gate.h, the datapath's too) */
  int join, joined, polling, listed;
  uint64_t poll_from; /* relay.poll_empty when its wait began (poll_join): none since, what it waits for is ready */
  poll_gate gate[POLL_KINDS];
  sess_stats st;
  approval tx[APPROVALS], rx[APPROVALS];
} session;

typedef struct {
  uint64_t udp_out, udp_in, udp_send_errors, udp_send_calls, udp_recv_calls, punts_tx, punts_rx, punts_frames, backlog_drops,
      queue_drops, client_backlog, frames_in, frames_out, bytes_in, bytes_out, wakeups, events;
  poll_stats poll;
  uint64_t poll_late; /* windows ended by a yield that came back after a whole window (relay_main) */
  uint64_t ack_joins, ack_join_misses; /* held bare ACKs that left with their answer, and without it */
} relay_stats;

/* relay.slow_us: the fault injections' sleeps (slowYield, slowLook) */
enum { SLOW_YIELD = 0, SLOW_LOOK = 1, SLOW_KINDS = 2 };

/* session.join: what the session's turn asks of the windows (poll_join) */
enum { JOIN_ANSWER = 1, JOIN_REQUEST = 2 };

/* Per-opcode flags in the shape table's second row (host/gateway/roce-shape.ts RelayOp is their one
   home; relayOpFlags() gives these back and a test compares them). */
enum { OPF_PAYLOAD = 1, OPF_REQ = 2, OPF_ANSWERED = 4, OPF_ACK_ONLY = 8 };

typedef struct relay {
  napi_env env;
  napi_ref wrapper;
  napi_threadsafe_function tsfn;
  pthread_t thread;
  pthread_mutex_t mu;
  int thread_started, stop, closed, epfd, wakefd, udp_fd, family;
  /* the polls' windows (µs; 0: that poll off), by POLL_* kind: after a turn that sent a client's request
     its peer answers at once, poll for the answer this long before blocking; after a turn that sent an
     answer to a client, poll this long for the client's next request; see relay_main */
  volatile uint32_t poll_us[POLL_KINDS];
  /* the polls' sessions (slots, max_clients each): those whose turn asks to join a window, and those the
     open window (until poll_until, µs) serves; poll_live of them still wait */
  uint32_t *join_list, *poll_list;
  uint32_t join_n, poll_n, poll_live;
  uint64_t poll_until;
  uint32_t poll_len; /* the longest window (µs) that opened or made longer the open one */
  /* the windows' looks that found nothing (each followed by a yield), ever: a session that finds what it
     waits for with none since its wait began (session.poll_from) found it at its first look */
  uint64_t poll_empty;
  /* joinAcks: bare ACKs toward a client whose answer poll waits hold for the answer (udp_receive) */
  volatile uint32_t join_acks;
  /* fault injection (tests), µs by SLOW_* kind: each yield between polls also sleeps this long; after a turn
     that began a wait, the thread sleeps this long before the next look */
  volatile uint32_t slow_us[SLOW_KINDS];
  /* trace(cap): the thread's turns that forwarded something, TRACE_FIELDS each (a bench's per-hop breakdown) */
  uint64_t *trace;
  uint32_t trace_cap, trace_n;
  tunnel_consts k;
  uint32_t qpn_start, qpn_count, max_clients, max_roce, max_ws, queue_bytes, gateway_port, approval_ms;
  double pps, bps;
  uint8_t gateway_gid[16];
  /* RoCEv2 shape per opcode: headers length (-1 unknown), has payload, DETH offset (-1) */
  int16_t op_len[256], op_deth[256];
  uint8_t op_flags[256]; /* OPF_* */
  session *sess;
  /* events toward JS */
  event *ev_head, *ev_tail;
  size_t ev_bytes;
  int signaled;
  relay_stats st;
  /* client -> UDP batch */
  struct mmsghdr tx_msgs[TX_BATCH];
  struct iovec tx_iov[TX_BATCH];
  struct sockaddr_in6 tx_names[TX_BATCH];
  uint8_t tx_rec[TX_BATCH][32];
  uint32_t tx_slot[TX_BATCH];
  int tx_n;
  /* UDP -> client */
  struct mmsghdr rx_msgs[RX_BATCH];
  struct iovec rx_iov[RX_BATCH];
  struct sockaddr_in6 rx_names[RX_BATCH];
  uint8_t *rx_buf;
  size_t rx_slot;
} relay;

static inline uint32_t be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static inline uint32_t be32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }
static inline void put16(uint8_t *p, uint32_t v) { p[0] = v >> 8; p[1] = v; }
static inline void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

static uint64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}
static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
static uint64_t wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* ---------- events toward JS ---------- */

/* Queues an event (bytes copied); false when the queue is over its bound (the caller counts a drop). Lock held. */
static int post(relay *r, int kind, uint32_t id, int32_t a, const uint8_t *p1, uint32_t l1, const uint8_t *p2, uint32_t l2) {
  if (r->closed) return 0;
  size_t len = (size_t)l1 + l2;
  if (kind != EV_CLOSED && r->ev_bytes + len > EVENT_QUEUE_MAX) return 0;
  event *e = malloc(sizeof(event) + len);
  if (!e) return 0;
  e->next = NULL;
  e->kind = kind;
  e->id = id;
  e->a = a;
  e->len = (uint32_t)len;
  if (l1) memcpy(e->bytes, p1, l1);
  if (l2) memcpy(e->bytes + l1, p2, l2);
  if (r->ev_tail) r->ev_tail->next = e;
  else r->ev_head = e;
  r->ev_tail = e;
  r->ev_bytes += len;
  r->st.events++;
  if (!r->signaled) {
    r->signaled = 1;
    napi_call_threadsafe_function(r->tsfn, NULL, napi_tsfn_nonblocking);
  }
  return 1;
}

static void call_js(napi_env env, napi_value fn, void *context, void *data) {
  (void)data;
  relay *r = context;
  if (!env || !fn) return;
  pthread_mutex_lock(&r->mu);
  event *e = r->ev_head;
  r->ev_head = r->ev_tail = NULL;
  r->ev_bytes = 0;
  r->signaled = 0;
  pthread_mutex_unlock(&r->mu);
  napi_value undef;
  napi_get_undefined(env, &undef);
  while (e) {
    event *next = e->next;
    napi_value argv[4];
    napi_create_int32(env, e->kind, &argv[0]);
    napi_create_uint32(env, e->id, &argv[1]);
    napi_create_int32(env, e->a, &argv[2]);
    void *copy;
    napi_create_buffer_copy(env, e->len, e->bytes, &copy, &argv[3]);
    free(e);
    e = next;
    napi_value res;
    if (napi_call_function(env, undef, fn, 4, argv, &res) != napi_ok) {
      /* an exception in the handler: leave it to Node (uncaught), free the rest */
      while (e) {
        next = e->next;
        free(e);
        e = next;
      }
      return;
    }
  }
  napi_value argv[4], res;
  napi_create_int32(env, EV_END, &argv[0]);
  napi_create_uint32(env, 0, &argv[1]);
  napi_create_int32(env, 0, &argv[2]);
  napi_get_undefined(env, &argv[3]);
  napi_call_function(env, undef, fn, 4, argv, &res);
}

/* ---------- sessions ---------- */

static session *find(relay *r, uint32_t slot, uint32_t id) {
  if (slot >= r->max_clients) return NULL;
  session *s = &r->sess[slot];
  return s->state != S_FREE && s->id == id ? s : NULL;
}

static void free_buffers(session *s) {
  free(s->in);
  free(s->out);
  free(s->msg);
  s->in = s->out = s->msg = NULL;
}

/* Closes the session's descriptor and tells JS (code: the close code ws would report). Lock held. */
static void udp_send_batch(relay *r);

static void sess_end(relay *r, session *s, int code) {
  if (s->state == S_FREE) return;
  udp_send_batch(r); /* datagrams may point into this session's buffer */
  epoll_ctl(r->epfd, EPOLL_CTL_DEL, s->fd, NULL);
  close(s->fd);
  s->fd = -1;
  s->state = S_FREE;
  s->gen++;
  if (s->polling) r->poll_live--;
  s->polling = 0; /* a listed slot stays listed (and not re-listed) until the window ends */
  free_buffers(s);
  post(r, EV_CLOSED, s->id, code, NULL, 0, NULL, 0);
}

static void want_out(relay *r, session *s, int on) {
  if (s->want_out == on) return;
  s->want_out = on;
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)(s - r->sess)};
  epoll_ctl(r->epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

static void seal_batch(relay *r, session *s);

/* Writes what is queued toward the client (a frame being built is sealed first); EAGAIN: waits for
   EPOLLOUT. Lock held. Returns 0, or -1 when the session ended. */
static int sess_flush(relay *r, session *s) {
  if (s->batch_n) seal_batch(r, s);
  while (s->out_tail > s->out_head) {
    ssize_t n = write(s->fd, s->out + s->out_head, s->out_tail - s->out_head);
    if (n > 0) {
      s->out_head += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      want_out(r, s, 1);
      return 0;
    }
    sess_end(r, s, 1006);
    return -1;
  }
  s->out_head = s->out_tail = 0;
  want_out(r, s, 0);
  if (s->state == S_CLOSING && s->close_sent == 2) {
    /* both close frames exchanged and ours written: done, as ws ends the socket */
    shutdown(s->fd, SHUT_WR);
    sess_end(r, s, s->close_code);
    return -1;
  }
  return 0;
}

/* Room for `need` bytes at the tail of the out queue (compacting); NULL when the queue cannot take them. */
static uint8_t *out_room(session *s, size_t need) {
  if (s->out_tail + need > s->out_cap && s->out_head > 0) {
    size_t keep = s->out_tail - s->out_head;
    memmove(s->out, s->out + s->out_head, keep);
    /* an open batch moves with it */
    if (s->batch_n) s->batch_at -= s->out_head;
    s->out_head = 0;
    s->out_tail = keep;
  }
  if (s->out_tail + need > s->out_cap) return NULL;
  return s->out + s->out_tail;
}

/* The header of an unmasked server frame for `len` payload bytes; returns its length (2, 4 or 10). */
static size_t ws_header(uint8_t *h, int opcode, uint64_t len) {
  h[0] = 0x80 | (uint8_t)opcode;
  if (len < 126) {
    h[1] = (uint8_t)len;
    return 2;
  }
  if (len < 65536) {
    h[1] = 126;
    put16(h + 2, (uint32_t)len);
    return 4;
  }
  h[1] = 127;
  put32(h + 2, (uint32_t)(len >> 32));
  put32(h + 6, (uint32_t)len);
  return 10;
}

/* Queues one whole message (no limit but the buffer's) behind the frame being built, which is sealed
   first (held ACKs keep their place, before it); 0, or -1 when it does not fit. Lock held. */
static int queue_message(relay *r, session *s, int opcode, const uint8_t *p1, size_t l1, const uint8_t *p2, size_t l2) {
  if (s->batch_n) seal_batch(r, s);
  uint8_t *o = out_room(s, 10 + l1 + l2);
  if (!o) return -1;
  size_t h = ws_header(o, opcode, l1 + l2);
  if (l1) memcpy(o + h, p1, l1);
  if (l2) memcpy(o + h + l1, p2, l2);
  s->out_tail += h + l1 + l2;
  return 0;
}

/* Seals the frame being built toward the client: one datagram as DATA, more as BATCH. Lock held. */
static void seal_batch(relay *r, session *s) {
  if (!s->batch_n) return;
  const tunnel_consts *k = &r->k;
  uint8_t *base = s->out + s->batch_at; /* 10 bytes for the WS header, then the BATCH header, then records */
  uint8_t *start;
  size_t len;
  if (s->batch_n == 1) {
    start = base + 10 + k->batch_header;
    start[0] = (uint8_t)k->v2;
    start[1] = (uint8_t)k->kind_data;
  } else {
    start = base + 10;
    start[0] = (uint8_t)k->v2;
    start[1] = (uint8_t)k->kind_batch;
    put16(start + 2, s->batch_n);
  }
  len = (size_t)(s->out + s->out_tail - start);
  uint8_t h[10];
  size_t hl = ws_header(h, 2, len);
  /* close the gap between the reserved header space and the frame's own header */
  size_t gap = (size_t)(start - base) - hl;
  memcpy(base, h, hl);
  if (gap) {
    memmove(base + hl, start, len);
    s->out_tail -= gap;
  }
  if (s->held) {
    if (s->batch_n > s->batch_acks) r->st.ack_joins++;
    else r->st.ack_join_misses++;
    s->held = 0;
  }
  s->batch_n = 0;
  s->batch_acks = 0;
  s->st.frames_out++;
  s->st.bytes_out += len;
  r->st.frames_out++;
}

/* ---------- checks shared by both directions ---------- */

/* RoceShape.inspect: sets *dest, *src (-1: no DETH). 0: refused (JS says why). */
static int shape_ok(relay *r, const uint8_t *b, uint32_t len, uint32_t *dest, int64_t *src) {
  if (len < 16 || len > r->max_roce) return 0;
  uint8_t op = b[0];
  int hl = r->op_len[op];
  if (hl < 0) return 0;
  if ((b[1] & 0x0f) != 0) return 0;
  uint32_t pad = (b[1] >> 4) & 3;
  int64_t rest = (int64_t)len - hl - 4;
  if (rest < (int64_t)pad) return 0;
  if (!(r->op_flags[op] & OPF_PAYLOAD)) {
    if (rest != 0) return 0;
  } else if (rest % 4 != 0)
    return 0;
  *dest = ((uint32_t)b[5] << 16) | ((uint32_t)b[6] << 8) | b[7];
  int d = r->op_deth[op];
  *src = d < 0 ? -1 : (int64_t)(((uint32_t)b[d + 5] << 16) | ((uint32_t)b[d + 6] << 8) | b[d + 7]);
  return 1;
}

static uint32_t approval_hash(const uint8_t *gid, uint32_t port, uint32_t qpn) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < 16; i++) h = (h ^ gid[i]) * 16777619u;
  h = (h ^ port) * 16777619u;
  h = (h ^ qpn) * 16777619u;
  return h ^ (h >> 16);
}

static int approved(approval *t, const uint8_t *gid, uint32_t port, uint32_t qpn, uint64_t now) {
  approval *a = &t[approval_hash(gid, port, qpn) % APPROVALS];
  return a->until > now && a->qpn == qpn && a->port == port && memcmp(a->gid, gid, 16) == 0;
}

static void approve(approval *t, const uint8_t *gid, uint32_t port, uint32_t qpn, uint64_t until) {
  approval *a = &t[approval_hash(gid, port, qpn) % APPROVALS];
  memcpy(a->gid, gid, 16);
  a->port = port;
  a->qpn = qpn;
  a->until = until;
}

/* TokenBucket.take for both of the client's buckets (packets, bytes), all or nothing. */
static int take_tokens(relay *r, session *s, uint32_t len) {
  uint64_t now = wall_ms();
  if (now > s->tok_last) {
    double dt = (double)(now - s->tok_last);
    s->tok_p += dt * r->pps / 1000;
    if (s->tok_p > r->pps) s->tok_p = r->pps;
    s->tok_b += dt * r->bps / 1000;
    if (s->tok_b > r->bps) s->tok_b = r->bps;
    s->tok_last = now;
  }
  if (s->tok_p < 1) return 0;
  s->tok_p -= 1;
  if (s->tok_b < len) return 0; /* as the JS path: the packet token is spent, the byte one not */
  s->tok_b -= len;
  return 1;
}

/* ---------- client -> UDP ---------- */

/* A datagram of session s (its 24-byte record header, then the payload) goes to JS. */
static void punt_datagram(relay *r, session *s, int why, const uint8_t *rec, const uint8_t *payload, uint32_t len) {
  udp_send_batch(r); /* what came before it leaves first */
  if (post(r, EV_DATAGRAM, s->id, why, rec, r->k.data_header, payload, len)) {
    s->tx_punted++;
    r->st.punts_tx++;
  } else {
    r->st.queue_drops++;
    s->st.dropped++;
  }
}

/* Fills a sockaddr for a GID and port on the UDP socket's family; 0: not sendable from it. */
static socklen_t gid_sockaddr(relay *r, const uint8_t *gid, uint32_t port, struct sockaddr_in6 *out) {
  static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  int mapped = memcmp(gid, v4mapped, 12) == 0;
  if (r->family == 4) {
    if (!mapped) return 0;
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    memcpy(&a->sin_addr, gid + 12, 4);
    return sizeof *a;
  }
  if (mapped) return 0;
  memset(out, 0, sizeof *out);
  out->sin6_family = AF_INET6;
  out->sin6_port = htons((uint16_t)port);
  memcpy(&out->sin6_addr, gid, 16);
  return sizeof *out;
}

/* sendmmsg of the datagrams gathered; EAGAIN: the rest are punted (JS queues them for writable). Lock held. */
static void udp_send_batch(relay *r) {
  int first = 0;
  while (first < r->tx_n) {
    int n = sendmmsg(r->udp_fd, r->tx_msgs + first, (unsigned)(r->tx_n - first), 0);
    r->st.udp_send_calls++;
    if (n > 0) {
      r->st.udp_out += (uint64_t)n;
      first += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      /* the socket is full: the rest to JS, whose UDP side waits for writable */
      int rest = r->tx_n;
      r->tx_n = 0;
      for (int i = first; i < rest; i++) {
        session *s = &r->sess[r->tx_slot[i]];
        if (s->state == S_FREE) continue;
        punt_datagram(r, s, PUNT_DECIDE, r->tx_rec[i], r->tx_iov[i].iov_base, (uint32_t)r->tx_iov[i].iov_len);
      }
      return;
    }
    /* this datagram failed (as the JS path's per-record result): count it, go on */
    r->st.udp_send_errors++;
    first++;
  }
  r->tx_n = 0;
}

/* The session's turn asks to join a window (JOIN_* bits), at the turn's end (poll_join). Lock held. */
static void join_window(relay *r, session *s, int bits) {
  if (!s->joined) {
    s->joined = 1;
    r->join_list[r->join_n++] = (uint32_t)(s - r->sess);
  }
  s->join |= bits;
}

/* The session's wait ends with what it waited for: a hit after a look in vain since the wait began, else
   ready (there at the first look; the gate is not told: poll_gate_found). Lock held. */
static void poll_hit(relay *r, session *s) {
  int kind = s->polling - 1;
  if (poll_gate_found(&s->gate[kind], r->poll_empty != s->poll_from)) {
    r->st.poll.hits[kind]++;
    s->st.poll.hits[kind]++;
  } else {
    r->st.poll.ready[kind]++;
    s->st.poll.ready[kind]++;
  }
  s->polling = 0;
  r->poll_live--;
}

/* One datagram from the client: record header `rec` (DATA header or BATCH record), payload. */
static void from_client(relay *r, session *s, const uint8_t *rec, const uint8_t *payload, uint32_t len) {
  const tunnel_consts *k = &r->k;
  /* the client reacted to its answer (anything but a bare ACK, forwarded here or punted): the request poll's hit */
  if (s->polling == 1 + POLL_REQUEST && !(r->op_flags[payload[0]] & OPF_ACK_ONLY)) poll_hit(r, s);
  if (be32(rec + k->ip_id_off) != 0) return punt_datagram(r, s, PUNT_DECIDE, rec, payload, len);
  if (!take_tokens(r, s, len)) return punt_datagram(r, s, PUNT_RATE, rec, payload, len);
  if (s->tx_punted != s->tx_acked) return punt_datagram(r, s, PUNT_DECIDE, rec, payload, len);
  uint32_t dest;
  int64_t src;
  if (!shape_ok(r, payload, len, &dest, &src)) return punt_datagram(r, s, PUNT_DECIDE, rec, payload, len);
  uint32_t base = r->qpn_start + (uint32_t)(s - r->sess) * r->qpn_count;
  if (src >= 0 && (src < base || src >= base + r->qpn_count)) return punt_datagram(r, s, PUNT_DECIDE, rec, payload, len);
  const uint8_t *gid = rec + k->address_off;
  uint32_t port = be16(rec + k->port_off);
  if (port == r->gateway_port && memcmp(gid, r->gateway_gid, 16) == 0) return punt_datagram(r, s, PUNT_DECIDE, rec, payload, len);
  if (!approved(s->tx, gid, port, dest, now_ms())) return punt_datagram(r, s, PUNT_DECIDE, rec, payload, len);
  if (r->tx_n == TX_BATCH) udp_send_batch(r);
  int i = r->tx_n;
  socklen_t nl = gid_sockaddr(r, gid, port, &r->tx_names[i]);
  if (!nl) return punt_datagram(r, s, PUNT_DECIDE, rec, payload, len);
  r->tx_iov[i].iov_base = (void *)payload;
  r->tx_iov[i].iov_len = len;
  memcpy(r->tx_rec[i], rec, k->data_header);
  r->tx_slot[i] = (uint32_t)(s - r->sess);
  struct msghdr *h = &r->tx_msgs[i].msg_hdr;
  memset(h, 0, sizeof *h);
  h->msg_name = &r->tx_names[i];
  h->msg_namelen = nl;
  h->msg_iov = &r->tx_iov[i];
  h->msg_iovlen = 1;
  r->tx_n++;
  uint8_t f = r->op_flags[payload[0]];
  if ((f & OPF_REQ) && ((payload[8] & 0x80) || (f & OPF_ANSWERED))) join_window(r, s, JOIN_ANSWER); /* AckReq, a READ, an atomic */
}

/* The whole message goes to JS (it gives the error, or reads the kind). */
static void punt_frame(relay *r, session *s, int binary, const uint8_t *p, size_t len) {
  udp_send_batch(r);
  if (post(r, EV_FRAME, s->id, binary, p, (uint32_t)len, NULL, 0)) {
    s->tx_punted++;
    r->st.punts_frames++;
  } else {
    r->st.queue_drops++;
    s->st.dropped++;
  }
}

/* A tunnel frame the relay forwards itself: DATA, or a BATCH well-formed throughout (frames.ts checkBatch). */
static void on_message(relay *r, session *s, int binary, const uint8_t *b, size_t len) {
  const tunnel_consts *k = &r->k;
  if (s->state != S_OPEN) return; /* after our close: what was read is ignored, as by the JS path */
  if (!binary) return punt_frame(r, s, 0, b, len);
  if ((uint32_t)s->version == k->v1 && len > k->data_header + r->max_roce) return punt_frame(r, s, 1, b, len);
  if (len < 2 || b[0] < k->v1 || b[0] > (uint32_t)s->version || b[0] > k->v2) return punt_frame(r, s, 1, b, len);
  if (b[1] == k->kind_data) {
    if (len < k->data_header + k->min_payload || be16(b + k->port_off) == 0) return punt_frame(r, s, 1, b, len);
  } else if (b[1] == k->kind_batch) {
    if ((uint32_t)s->version != k->v2 || b[0] != k->v2 || len < k->batch_header) return punt_frame(r, s, 1, b, len);
    uint32_t count = be16(b + 2);
    if (count == 0 || count > k->batch_max) return punt_frame(r, s, 1, b, len);
    size_t at = k->batch_header;
    for (uint32_t i = 0; i < count; i++) {
      if (len - at < k->record + k->min_payload) return punt_frame(r, s, 1, b, len);
      uint32_t l = be16(b + at);
      if (l < k->min_payload || at + k->record + l > len || be16(b + at + k->port_off) == 0) return punt_frame(r, s, 1, b, len);
      at += k->record + l;
    }
    if (at != len) return punt_frame(r, s, 1, b, len);
  } else
    return punt_frame(r, s, 1, b, len);
  s->st.frames_in++;
  s->st.bytes_in += len;
  s->st.last_active = wall_ms();
  r->st.frames_in++;
  r->st.bytes_in += len;
  if (b[1] == k->kind_data) return from_client(r, s, b, b + k->data_header, (uint32_t)(len - k->data_header));
  uint32_t count = be16(b + 2);
  size_t at = k->batch_header;
  for (uint32_t i = 0; i < count && s->state == S_OPEN; i++) {
    uint32_t l = be16(b + at);
    from_client(r, s, b + at, b + at + k->record, l);
    at += k->record + l;
  }
}

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF), as ws checks text and close reasons. */
static int utf8_ok(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t m;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) m = 1, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) m = 2, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) m = 3, cp = c & 0x07;
    else return 0;
    if (i + m >= n) return 0;
    for (size_t j = 1; j <= m; j++) {
      if ((p[i + j] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + j] & 0x3f);
    }
    if ((m == 1 && cp < 0x80) || (m == 2 && cp < 0x800) || (m == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    i += m + 1;
  }
  return 1;
}

/* ws's isValidStatusCode. */
static int close_code_ok(uint32_t c) {
  return (c >= 1000 && c <= 1014 && c != 1004 && c != 1005 && c != 1006) || (c >= 3000 && c <= 4999);
}

/* A WebSocket protocol error: JS hears it (counted and logged as ws's 'error'), the relay closes with ws's code. */
static void ws_error(relay *r, session *s, int code, int oversize, const char *msg) {
  udp_send_batch(r);
  /* JS still holds frames that came before the bad one (their ERROR frames are not out yet): as ws, which
     answers those before it closes, the close waits for JS, which sends it when it reaches this event */
  int deferred = s->state == S_OPEN && s->tx_punted != s->tx_acked;
  post(r, EV_WS_ERROR, s->id, code | (oversize ? 0x10000 : 0) | (deferred ? 0x20000 : 0), (const uint8_t *)msg, (uint32_t)strlen(msg), NULL, 0);
  if (deferred) {
    s->close_deferred = 1;
  } else if (s->state == S_OPEN) {
    uint8_t c[2];
    put16(c, (uint32_t)code);
    queue_message(r, s, 8, c, 2, NULL, 0);
    s->state = S_CLOSING;
    s->close_sent = 1;
  }
  /* as ws: nothing more is parsed from this client (read and dropped until EOF or JS's timer ends it) */
  s->discard = 1;
  s->msg_op = 0;
  sess_flush(r, s);
}

/* A close frame from the client. */
static void on_close_frame(relay *r, session *s, const uint8_t *p, size_t n) {
  uint32_t code = 1005;
  if (n == 1) return ws_error(r, s, 1002, 0, "invalid payload length 1");
  if (n >= 2) {
    code = be16(p);
    if (!close_code_ok(code)) {
      char m[48];
      snprintf(m, sizeof m, "invalid status code %u", code);
      return ws_error(r, s, 1002, 0, m);
    }
    if (!utf8_ok(p + 2, n - 2)) return ws_error(r, s, 1007, 0, "invalid UTF-8 sequence");
  }
  udp_send_batch(r);
  s->close_code = (int)code;
  s->discard = 1;
  if (!s->close_sent) queue_message(r, s, 8, p, n, NULL, 0); /* ws answers with the same code and reason (nothing for 1005) */
  s->state = S_CLOSING;
  s->close_sent = 2;
  sess_flush(r, s);
}

/* Parses the frames in s->in; returns after each complete one is handled, leaving a partial one. */
static void parse_frames(relay *r, session *s) {
  size_t at = 0;
  while (s->state != S_FREE && !s->discard) {
    uint8_t *p = s->in + at;
    size_t avail = s->in_len - at;
    if (avail < 2) break;
    int fin = p[0] & 0x80, op = p[0] & 0x0f, masked = p[1] & 0x80;
    uint64_t len = p[1] & 0x7f;
    size_t hl = 2;
    char m[64];
    if (p[0] & 0x30) return ws_error(r, s, 1002, 0, "RSV2 and RSV3 must be clear");
    if (p[0] & 0x40) return ws_error(r, s, 1002, 0, "RSV1 must be clear");
    if (op >= 8) {
      if (op > 10) {
        snprintf(m, sizeof m, "invalid opcode %d", op);
        return ws_error(r, s, 1002, 0, m);
      }
      if (!fin) return ws_error(r, s, 1002, 0, "FIN must be set");
      if (len > 125) {
        snprintf(m, sizeof m, "invalid payload length %u", (unsigned)len);
        return ws_error(r, s, 1002, 0, m);
      }
    } else if (op == 0) {
      if (!s->msg_op) return ws_error(r, s, 1002, 0, "invalid opcode 0");
    } else if (op == 1 || op == 2) {
      if (s->msg_op) {
        snprintf(m, sizeof m, "invalid opcode %d", op);
        return ws_error(r, s, 1002, 0, m);
      }
    } else {
      snprintf(m, sizeof m, "invalid opcode %d", op);
      return ws_error(r, s, 1002, 0, m);
    }
    if (!masked) return ws_error(r, s, 1002, 0, "MASK must be set");
    if (len == 126) {
      if (avail < 4) break;
      len = be16(p + 2);
      hl = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      uint32_t hi = be32(p + 2);
      if (hi > 0x1fffff) return ws_error(r, s, 1009, 0, "Unsupported WebSocket frame: payload length > 2^53 - 1");
      len = ((uint64_t)hi << 32) | be32(p + 6);
      hl = 10;
    }
    if (op < 8 && (uint64_t)s->msg_len + len > r->max_ws) return ws_error(r, s, 1009, 1, "Max payload size exceeded");
    hl += 4;
    if (avail < hl + len) break;
    uint8_t *mask = p + hl - 4, *d = p + hl;
    for (size_t i = 0; i < len; i++) d[i] ^= mask[i & 3];
    at += hl + (size_t)len;
    if (op == 8) {
      on_close_frame(r, s, d, (size_t)len);
      break;
    }
    if (op == 9) {
      if (s->tx_punted != s->tx_acked) {
        /* JS is deciding what came before (it may close the session): it answers this one too, after */
        udp_send_batch(r);
        if (post(r, EV_PING, s->id, 0, d, (uint32_t)len, NULL, 0)) s->tx_punted++;
        continue;
      }
      if (s->state == S_OPEN && queue_message(r, s, 10, d, (size_t)len, NULL, 0) == 0) sess_flush(r, s);
      if (s->state == S_FREE) return;
      continue;
    }
    if (op == 10) {
      post(r, EV_PONG, s->id, 0, NULL, 0, NULL, 0);
      continue;
    }
    if (fin && op != 0) {
      if (op == 1 && !utf8_ok(d, (size_t)len)) return ws_error(r, s, 1007, 0, "invalid UTF-8 sequence");
      on_message(r, s, op == 2, d, (size_t)len);
      continue;
    }
    /* a fragment: assembled in its own buffer */
    if (!s->msg) s->msg = malloc(r->max_ws);
    if (!s->msg) return ws_error(r, s, 1011, 0, "out of memory");
    if (op) s->msg_op = op;
    memcpy(s->msg + s->msg_len, d, (size_t)len);
    s->msg_len += (size_t)len;
    if (fin) {
      int mop = s->msg_op;
      s->msg_op = 0;
      size_t ml = s->msg_len;
      s->msg_len = 0;
      if (mop == 1 && !utf8_ok(s->msg, ml)) return ws_error(r, s, 1007, 0, "invalid UTF-8 sequence");
      on_message(r, s, mop == 2, s->msg, ml);
    }
  }
  /* the datagrams point into s->in: they leave before it is compacted */
  udp_send_batch(r);
  if (s->state == S_FREE) return;
  if (s->discard) {
    s->in_len = 0;
    return;
  }
  if (at) {
    memmove(s->in, s->in + at, s->in_len - at);
    s->in_len -= at;
  }
}

static void sess_read(relay *r, session *s) {
  for (int rounds = 0; rounds < 16 && s->state != S_FREE; rounds++) {
    if (s->discard) s->in_len = 0;
    size_t room = s->in_cap - s->in_len;
    ssize_t n = read(s->fd, s->in + s->in_len, room);
    if (n == 0) return sess_end(r, s, 1006);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return sess_end(r, s, 1006);
    }
    s->in_len += (size_t)n;
    if (!s->discard) parse_frames(r, s);
    /* a short read took all there was: no second read() for its EAGAIN (epoll is level-triggered,
       so what comes later, or the end of the stream, wakes the thread again) */
    if ((size_t)n < room) return;
  }
}

/* ---------- UDP -> client ---------- */

static void punt_udp(relay *r, session *s, const uint8_t gid[16], uint32_t port, const uint8_t *p, uint32_t len) {
  if (post(r, EV_UDP, s ? s->id : 0, (int32_t)port, gid, 16, p, len)) {
    r->st.punts_rx++;
    if (s) s->rx_punted++;
  } else
    r->st.queue_drops++;
}

/* Appends a datagram to the session's frame toward the client. Lock held. */
static void to_client(relay *r, session *s, const uint8_t gid[16], uint32_t port, const uint8_t *p, uint32_t len) {
  const tunnel_consts *k = &r->k;
  size_t queued = s->out_tail - s->out_head;
  if (queued > r->queue_bytes) {
    r->st.client_backlog++;
    s->st.dropped++;
    return;
  }
  if ((uint32_t)s->version == k->v1) {
    uint8_t hdr[64];
    memset(hdr, 0, k->data_header);
    hdr[0] = (uint8_t)k->v1;
    hdr[1] = (uint8_t)k->kind_data;
    put16(hdr + k->port_off, port);
    memcpy(hdr + k->address_off, gid, 16);
    put32(hdr + k->ip_id_off, k->ip_id_unknown);
    if (queue_message(r, s, 2, hdr, k->data_header, p, len) != 0) {
      r->st.client_backlog++;
      s->st.dropped++;
      return;
    }
    s->st.frames_out++;
    s->st.bytes_out += k->data_header + len;
    r->st.frames_out++;
    s->dirty = 1;
    return;
  }
  size_t rec = k->record + len;
  if (s->batch_n) {
    size_t cur = s->out_tail - s->batch_at - 10;
    if (cur + rec > r->max_ws || s->batch_n == k->batch_max) seal_batch(r, s);
  }
  if (!s->batch_n) {
    uint8_t *o = out_room(s, 10 + k->batch_header + rec);
    if (!o) {
      r->st.client_backlog++;
      s->st.dropped++;
      return;
    }
    s->batch_at = s->out_tail;
    s->out_tail += 10 + k->batch_header;
  } else if (!out_room(s, rec)) {
    seal_batch(r, s);
    s->dirty = 1;
    r->st.client_backlog++;
    s->st.dropped++;
    return;
  }
  uint8_t *o = s->out + s->out_tail;
  put16(o, len);
  put16(o + k->port_off, port);
  memcpy(o + k->address_off, gid, 16);
  put32(o + k->ip_id_off, k->ip_id_unknown);
  memcpy(o + k->record, p, len);
  s->out_tail += rec;
  s->batch_n++;
  if (r->op_flags[p[0]] & OPF_ACK_ONLY) s->batch_acks++;
  s->dirty = 1;
}

static void udp_receive(relay *r) {
  for (int round = 0; round < RX_BUDGET; round++) {
    for (int i = 0; i < RX_BATCH; i++) {
      r->rx_iov[i].iov_base = r->rx_buf + (size_t)i * r->rx_slot;
      r->rx_iov[i].iov_len = r->rx_slot;
      struct msghdr *h = &r->rx_msgs[i].msg_hdr;
      memset(h, 0, sizeof *h);
      h->msg_name = &r->rx_names[i];
      h->msg_namelen = sizeof r->rx_names[i];
      h->msg_iov = &r->rx_iov[i];
      h->msg_iovlen = 1;
    }
    int n = recvmmsg(r->udp_fd, r->rx_msgs, RX_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    r->st.udp_recv_calls++;
    uint64_t now = now_ms();
    for (int i = 0; i < n; i++) {
      uint8_t gid[16];
      uint16_t port;
      uint32_t dest;
      int64_t src;
      const uint8_t *p = r->rx_iov[i].iov_base;
      uint32_t len = r->rx_msgs[i].msg_len;
      if (r->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) len = (uint32_t)r->rx_slot; /* longer than anything forwarded */
      udpsock_gid_of(&r->rx_names[i], gid, &port);
      if (port == 0 || !shape_ok(r, p, len, &dest, &src)) {
        punt_udp(r, NULL, gid, port, p, len);
        continue;
      }
      session *s = NULL;
      if (dest >= r->qpn_start) {
        uint32_t slot = (dest - r->qpn_start) / r->qpn_count;
        if (slot < r->max_clients && r->sess[slot].state == S_OPEN) s = &r->sess[slot];
      }
      if (!s || s->close_deferred || s->rx_punted != s->rx_acked || !approved(s->rx, gid, 0, dest, now)) {
        punt_udp(r, s, gid, port, p, len);
        continue;
      }
      r->st.udp_in++;
      if (!(r->op_flags[p[0]] & OPF_ACK_ONLY)) { /* an answer: the window saw it; the client will react */
        if (s->polling == 1 + POLL_ANSWER) poll_hit(r, s);
        join_window(r, s, JOIN_REQUEST);
      }
      to_client(r, s, gid, port, p, len);
    }
    for (uint32_t i = 0; i < r->max_clients; i++) {
      session *s = &r->sess[i];
      if (!s->dirty) continue;
      s->dirty = 0;
      if (s->state == S_FREE) continue;
      /* only bare ACKs so far, and the session's answer poll waits for its answer (the ACK's request
         asked for one; the peer sends the ACK, then the answer): they wait for it in the open frame, so
         that both reach the client in one write and one read — not while its gate is closed (a probe:
         its answers have not been coming), nor behind bytes the socket has not taken */
      if (r->join_acks && s->polling == 1 + POLL_ANSWER && s->batch_n && s->batch_acks == s->batch_n && s->batch_at == s->out_head &&
          !s->want_out && poll_gate_is_open(&s->gate[POLL_ANSWER])) {
        s->held = 1;
        continue;
      }
      sess_flush(r, s);
    }
    if (n < RX_BATCH) return;
  }
}

/* ---------- the thread ---------- */

/* Whether the session's next window of `kind` opens (its gate); counted when held back. Lock held. */
static int gate_open(relay *r, session *s, int kind) {
  if (poll_gate_open(&s->gate[kind])) return 1;
  r->st.poll.gated[kind]++;
  s->st.poll.gated[kind]++;
  return 0;
}

/*
 * After a turn: each session on the join list waits in the window (opened, or made longer, to its
 * kind's length from now) — for the answer when it asked for one (that wait comes first: its request
 * is the latest), else for the client's next request after an answer went to it — unless that poll is
 * off or its gate holds it back. A session already waiting for an answer keeps waiting; one waiting
 * for a request whose answer went on (a later packet of it) waits on from now (its first look is the
 * next). Returns whether a wait began. Lock held.
 */
static int poll_join(relay *r) {
  uint64_t now = 0;
  for (uint32_t i = 0; i < r->join_n; i++) {
    session *s = &r->sess[r->join_list[i]];
    int join = s->join, kind = join & JOIN_ANSWER ? POLL_ANSWER : POLL_REQUEST;
    s->join = s->joined = 0;
    uint32_t window = r->poll_us[kind];
    /* (no bits: the slot was adopted anew after its old session joined; the new one asked for nothing) */
    if (!join || !window || s->state == S_FREE || s->polling == 1 + POLL_ANSWER) continue;
    if (!s->polling) {
      if (!gate_open(r, s, kind)) continue;
      s->polling = 1 + kind;
      if (!s->listed) { /* served earlier in this window, it is listed already */
        s->listed = 1;
        r->poll_list[r->poll_n++] = r->join_list[i];
      }
      r->poll_live++;
      r->st.poll.polls[kind]++;
      s->st.poll.polls[kind]++;
    }
    s->poll_from = r->poll_empty;
    if (!now) now = poll_now_us();
    if (now + window > r->poll_until) r->poll_until = now + window;
    if (window > r->poll_len) r->poll_len = window;
  }
  r->join_n = 0;
  return now != 0;
}

/* The window ended (every session got what it waited for, or the time ran out): the sessions still
   waiting missed it. Lock held. */
static void poll_end(relay *r) {
  for (uint32_t i = 0; i < r->poll_n; i++) {
    session *s = &r->sess[r->poll_list[i]];
    s->listed = 0;
    if (s->held && s->state != S_FREE) sess_flush(r, s); /* its answer did not come: the ACKs leave now */
    if (!s->polling) continue;
    poll_gate_note(&s->gate[s->polling - 1], 0);
    s->polling = 0;
  }
  r->poll_n = r->poll_live = 0;
  r->poll_until = 0;
  r->poll_len = 0;
}

/*
 * The thread: epoll_wait, then the ready sockets under the lock.
 *
 * The polls: in a round trip the thread sleeps twice, waiting for the peer's answer and for the
 * client's next request, and each wake-up is a hop's latency (on an idle vCPU that halted, tens of
 * µs). So after some turns the thread polls instead (epoll_wait with no timeout over all its
 * descriptors, sched_yield between polls so that a runnable thread on this CPU — the target, the
 * client — is not kept off it) until what it waits for came or the window ends:
 *  - the answer poll (poll_us[POLL_ANSWER]): after a turn that sent a client's request its peer
 *    answers at once (AckReq set, a READ, an atomic), for a datagram toward that client that is not a
 *    bare ACK;
 *  - the request poll (poll_us[POLL_REQUEST]): after a turn that sent such a datagram (an answer) to
 *    a client, which reacts to it at once, for that client's next datagram that is not a bare ACK.
 * Together they cover the whole round trip of a ping-pong: answer, then next request, then answer.
 * One window serves every waiting session (it ends when each got what it waited for, or at the latest
 * deadline); the gates are each session's own, one per kind: a session's turn opens (or joins,
 * making it longer) a window only while most of that session's recent windows of that kind saw what
 * they waited for (an EWMA of hits; under it, every POLL_GATE_PROBE-th still opens, to notice when they
 * come in time again), so a client whose peer never answers, or that does not send again, stops
 * polling without holding back the others.
 */
static void *relay_main(void *arg) {
  relay *r = arg;
  pthread_setname_np(pthread_self(), "softroce-relay");
  struct epoll_event evs[64];
  for (;;) {
    int n, blocked = 0;
    if (r->poll_until) { /* read without locking: only this thread writes it */
      n = epoll_wait(r->epfd, evs, 64, 0);
      uint64_t t = poll_now_us();
      if (n > 0 && t >= r->poll_until) {
        /* the window is over (the thread was away past its end): what came is not in time */
        pthread_mutex_lock(&r->mu);
        poll_end(r);
        pthread_mutex_unlock(&r->mu);
      } else if (n == 0) {
        r->poll_empty++;
        if (t < r->poll_until) {
          if (!poll_yield_late(r->slow_us[SLOW_YIELD], t, r->poll_len)) continue;
          /* back after a whole window: it ends, a miss for every session in it (whatever came is taken
             next, by a blocking wait that returns at once) */
          pthread_mutex_lock(&r->mu);
          r->st.poll_late++;
          poll_end(r);
          pthread_mutex_unlock(&r->mu);
          continue;
        }
        pthread_mutex_lock(&r->mu);
        poll_end(r);
        pthread_mutex_unlock(&r->mu);
        continue;
      }
    } else {
      n = epoll_wait(r->epfd, evs, 64, -1);
      blocked = 1;
    }
    pthread_mutex_lock(&r->mu);
    if (r->stop) {
      pthread_mutex_unlock(&r->mu);
      return NULL;
    }
    if (blocked) r->st.wakeups++;
    uint64_t fwd = r->st.udp_out + r->st.frames_out;
    uint64_t t_wake = r->trace ? now_ns() : 0, udp0 = r->st.udp_out, fr0 = r->st.frames_out;
    uint32_t woke = 0;
    for (int i = 0; i < n; i++) {
      uint64_t tag = evs[i].data.u64;
      if (tag == TAG_WAKE) {
        uint64_t v;
        if (read(r->wakefd, &v, sizeof v) < 0) { /* nothing to read */
        }
        continue;
      }
      if (tag == TAG_UDP) {
        woke |= 2;
        udp_receive(r);
        continue;
      }
      woke |= 1;
      uint32_t slot = (uint32_t)tag, gen = (uint32_t)(tag >> 32);
      if (slot >= r->max_clients) continue;
      session *s = &r->sess[slot];
      if (s->state == S_FREE || s->gen != gen) continue;
      if ((evs[i].events & EPOLLOUT) && sess_flush(r, s) < 0) continue;
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) sess_read(r, s);
    }
    if (r->trace && r->st.udp_out + r->st.frames_out != fwd && r->trace_n < r->trace_cap) {
      uint64_t *t = r->trace + (size_t)r->trace_n++ * TRACE_FIELDS;
      t[0] = t_wake;
      t[1] = now_ns();
      t[2] = woke;
      t[3] = r->st.udp_out - udp0;
      t[4] = r->st.frames_out - fr0;
    }
    if (r->poll_until && !r->poll_live) poll_end(r); /* every session in the window has its answer */
    int began = r->join_n && poll_join(r);
    pthread_mutex_unlock(&r->mu);
    if (began && r->slow_us[SLOW_LOOK]) poll_sleep(r->slow_us[SLOW_LOOK]);
  }
}

/* ---------- N-API ---------- */

static int get_u32_prop(napi_env env, napi_value o, const char *name, uint32_t *out) {
  napi_value v;
  bool has;
  if (napi_has_named_property(env, o, name, &has) != napi_ok || !has) return -1;
  if (napi_get_named_property(env, o, name, &v) != napi_ok) return -1;
  return nu_get_u32(env, v, out) ? 0 : -1;
}
static int get_f64_prop(napi_env env, napi_value o, const char *name, double *out) {
  napi_value v;
  if (napi_get_named_property(env, o, name, &v) != napi_ok) return -1;
  return napi_get_value_double(env, v, out) == napi_ok ? 0 : -1;
}
static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is;
  napi_is_typedarray(env, v, &is);
  if (!is) return -1;
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  void *d;
  if (napi_get_typedarray_info(env, v, &t, len, &d, &ab, &off) != napi_ok || t != napi_uint8_array) return -1;
  *data = d;
  return 0;
}

static relay *this_relay(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  return nu_this(env, info, argc, argv, "not a Relay");
}

static void relay_shutdown(relay *r) {
  if (r->closed) return;
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  r->closed = 1;
  pthread_mutex_unlock(&r->mu);
  uint64_t one = 1;
  if (write(r->wakefd, &one, sizeof one) < 0) { /* the thread also sees stop on its next wake */
  }
  if (r->thread_started) pthread_join(r->thread, NULL);
  r->thread_started = 0;
  for (uint32_t i = 0; i < r->max_clients; i++) {
    session *s = &r->sess[i];
    if (s->state != S_FREE) {
      close(s->fd);
      s->state = S_FREE;
    }
    free_buffers(s);
  }
  event *e = r->ev_head;
  while (e) {
    event *n = e->next;
    free(e);
    e = n;
  }
  r->ev_head = r->ev_tail = NULL;
  close(r->epfd);
  close(r->wakefd);
  r->epfd = r->wakefd = -1;
  free(r->trace);
  r->trace = NULL;
  if (r->tsfn) napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
  r->tsfn = NULL;
}

static void relay_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  relay *r = data;
  relay_shutdown(r);
  pthread_mutex_destroy(&r->mu);
  free(r->sess);
  free(r->join_list);
  free(r->poll_list);
  free(r->rx_buf);
  free(r);
}

/* new Relay(options, constants, shape: Int16Array(768), onEvent) */
static napi_value js_construct(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "Relay(options, constants, shape, onEvent)");
    return NULL;
  }
  relay *r = calloc(1, sizeof *r);
  if (!r) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  r->env = env;
  r->epfd = r->wakefd = -1;
  uint32_t fd, family;
  const char *bad = NULL;
  if (get_u32_prop(env, argv[0], "udpFd", &fd) || get_u32_prop(env, argv[0], "family", &family) ||
      get_u32_prop(env, argv[0], "qpnStart", &r->qpn_start) || get_u32_prop(env, argv[0], "qpnCount", &r->qpn_count) ||
      get_u32_prop(env, argv[0], "maxClients", &r->max_clients) || get_u32_prop(env, argv[0], "maxRocePayload", &r->max_roce) ||
      get_u32_prop(env, argv[0], "maxMessage", &r->max_ws) || get_u32_prop(env, argv[0], "clientQueueBytes", &r->queue_bytes) ||
      get_u32_prop(env, argv[0], "gatewayPort", &r->gateway_port) || get_u32_prop(env, argv[0], "approvalMs", &r->approval_ms) ||
      get_f64_prop(env, argv[0], "packetsPerSecond", &r->pps) || get_f64_prop(env, argv[0], "bytesPerSecond", &r->bps))
    bad = "Relay options: a field is missing or not a number";
  tunnel_consts *k = &r->k;
  struct {
    const char *name;
    uint32_t *at;
  } kf[] = {{"TUNNEL_VERSION", &k->v1}, {"TUNNEL_VERSION_BATCH", &k->v2}, {"KIND_DATA", &k->kind_data}, {"KIND_BATCH", &k->kind_batch},
            {"DATA_HEADER_LEN", &k->data_header}, {"BATCH_HEADER_LEN", &k->batch_header}, {"BATCH_RECORD_LEN", &k->record},
            {"BATCH_MAX_COUNT", &k->batch_max}, {"MIN_ROCE_PAYLOAD", &k->min_payload}, {"RECORD_PORT_OFF", &k->port_off},
            {"RECORD_ADDRESS_OFF", &k->address_off}, {"RECORD_IP_ID_OFF", &k->ip_id_off}, {"TUNNEL_IP_ID_UNKNOWN", &k->ip_id_unknown}};
  for (size_t i = 0; !bad && i < sizeof kf / sizeof kf[0]; i++)
    if (get_u32_prop(env, argv[1], kf[i].name, kf[i].at)) bad = "Relay constants: a field is missing or not a number";
  /* the layout facts the code relies on (the values themselves come from frames.ts) */
  if (!bad && (k->data_header != k->record || k->data_header > 32 || k->address_off + 16 > k->data_header || k->port_off + 2 > k->data_header ||
               k->ip_id_off + 4 > k->data_header || k->batch_header != 4 || k->min_payload < 16))
    bad = "Relay constants: a DATA header and a BATCH record must share one layout of at most 32 bytes";
  if (!bad && (family != 4 && family != 6)) bad = "Relay options: family is 4 or 6";
  /* the polls' windows, optional (absent: off) */
  static const char *const poll_opt[POLL_KINDS] = {"busyPollUs", "requestPollUs"};
  static const char *const poll_bad[POLL_KINDS] = {"Relay options: busyPollUs is 0..10000", "Relay options: requestPollUs is 0..10000"};
  for (int i = 0; i < POLL_KINDS; i++) {
    uint32_t us = 0;
    bool has = false;
    if (!bad && napi_has_named_property(env, argv[0], poll_opt[i], &has) == napi_ok && has &&
        (get_u32_prop(env, argv[0], poll_opt[i], &us) || us > POLL_MAX_US))
      bad = poll_bad[i];
    r->poll_us[i] = us;
  }
  /* joinAcks, optional (absent: off): 0 or 1 */
  {
    uint32_t on = 0;
    bool has = false;
    if (!bad && napi_has_named_property(env, argv[0], "joinAcks", &has) == napi_ok && has && (get_u32_prop(env, argv[0], "joinAcks", &on) || on > 1))
      bad = "Relay options: joinAcks is 0 or 1";
    r->join_acks = on;
  }
  if (!bad && (r->max_clients == 0 || r->max_clients > 65536 || r->qpn_count == 0 || r->max_roce < 16 || r->max_roce > 65535 ||
               r->max_ws < k->data_header + r->max_roce || r->max_ws > (64u << 20)))
    bad = "Relay options: out of range";
  uint8_t *gid;
  size_t gl;
  napi_value gv;
  if (!bad && (napi_get_named_property(env, argv[0], "gatewayGid", &gv) != napi_ok || get_bytes(env, gv, &gid, &gl) || gl != 16))
    bad = "Relay options: gatewayGid is 16 bytes";
  else if (!bad)
    memcpy(r->gateway_gid, gid, 16);
  napi_typedarray_type t;
  size_t sl, so;
  void *sd;
  napi_value sab;
  if (!bad && (napi_get_typedarray_info(env, argv[2], &t, &sl, &sd, &sab, &so) != napi_ok || t != napi_int16_array || sl != 768))
    bad = "Relay shape: an Int16Array of 3 x 256 (header length, flags, DETH offset per opcode)";
  if (bad) {
    free(r);
    napi_throw_range_error(env, NULL, bad);
    return NULL;
  }
  const int16_t *sh = sd;
  for (int i = 0; i < 256; i++) {
    r->op_len[i] = sh[i];
    r->op_flags[i] = (uint8_t)(sh[256 + i] & 0x0f);
    r->op_deth[i] = sh[512 + i];
    if (r->op_deth[i] >= 0 && (r->op_len[i] < 0 || r->op_deth[i] + 8 > r->op_len[i])) r->op_deth[i] = -1, r->op_len[i] = -1;
  }
  r->udp_fd = (int)fd;
  r->family = (int)family;
  r->sess = calloc(r->max_clients, sizeof(session));
  r->join_list = calloc(r->max_clients, sizeof(uint32_t));
  r->poll_list = calloc(r->max_clients, sizeof(uint32_t));
  r->rx_slot = ((size_t)r->max_roce + 8 + 7) & ~(size_t)7;
  r->rx_buf = malloc(r->rx_slot * RX_BATCH);
  pthread_mutex_init(&r->mu, NULL);
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
  struct epoll_event eu = {.events = EPOLLIN, .data.u64 = TAG_UDP};
  napi_value name;
  napi_create_string_utf8(env, "softroce relay", NAPI_AUTO_LENGTH, &name);
  if (!r->sess || !r->join_list || !r->poll_list || !r->rx_buf || r->epfd < 0 || r->wakefd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &ev) ||
      epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->udp_fd, &eu) ||
      napi_create_threadsafe_function(env, argv[3], NULL, name, 0, 1, NULL, NULL, r, call_js, &r->tsfn) != napi_ok) {
    int e = errno;
    if (r->epfd >= 0) close(r->epfd);
    if (r->wakefd >= 0) close(r->wakefd);
    free(r->sess);
    free(r->join_list);
    free(r->poll_list);
    free(r->rx_buf);
    free(r);
    char m[96];
    snprintf(m, sizeof m, "Relay: could not start (%s)", strerror(e));
    napi_throw_error(env, NULL, m);
    return NULL;
  }
  napi_unref_threadsafe_function(env, r->tsfn);
  if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
    r->closed = 1;
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
    close(r->epfd);
    close(r->wakefd);
    free(r->sess);
    free(r->join_list);
    free(r->poll_list);
    free(r->rx_buf);
    free(r);
    napi_throw_error(env, NULL, "Relay: could not start its thread");
    return NULL;
  }
  r->thread_started = 1;
  napi_wrap(env, self, r, relay_finalize, NULL, &r->wrapper);
  return self;
}

/* adopt(fd, slot, id, version, initialBytes?): the session's TCP socket, from now on the relay's (dup'd). */
static napi_value js_adopt(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  relay *r = this_relay(env, info, &argc, argv);
  if (!r) return NULL;
  uint32_t fd, slot, id, version;
  if (argc < 4 || !nu_get_u32(env, argv[0], &fd) || !nu_get_u32(env, argv[1], &slot) ||
      !nu_get_u32(env, argv[2], &id) || !nu_get_u32(env, argv[3], &version)) {
    napi_throw_type_error(env, NULL, "adopt(fd, slot, id, version, initialBytes?)");
    return NULL;
  }
  if (r->closed || slot >= r->max_clients || (version != r->k.v1 && version != r->k.v2)) {
    napi_throw_range_error(env, NULL, "adopt: relay closed, slot or version out of range");
    return NULL;
  }
  uint8_t *init = NULL;
  size_t init_len = 0;
  if (argc >= 5) {
    napi_valuetype vt;
    napi_typeof(env, argv[4], &vt);
    if (vt != napi_undefined && vt != napi_null && get_bytes(env, argv[4], &init, &init_len)) {
      napi_throw_type_error(env, NULL, "adopt: initialBytes is a Uint8Array");
      return NULL;
    }
  }
  pthread_mutex_lock(&r->mu);
  session *s = &r->sess[slot];
  if (s->state != S_FREE) {
    pthread_mutex_unlock(&r->mu);
    napi_throw_range_error(env, NULL, "adopt: slot in use");
    return NULL;
  }
  int nfd = fcntl((int)fd, F_DUPFD_CLOEXEC, 3);
  if (nfd < 0) {
    pthread_mutex_unlock(&r->mu);
    napi_throw_error(env, NULL, "adopt: dup of the socket failed");
    return NULL;
  }
  int fl = fcntl(nfd, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(nfd, F_SETFL, fl | O_NONBLOCK);
  /* each frame toward the client leaves at once (Node's HTTP server sets it too; said here, not assumed) */
  int one = 1;
  setsockopt(nfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  uint32_t gen = s->gen;
  /* the slot stays on the open window's list and the turn's join list (once each), but what its old
     session asked of the windows is not the new one's: no JOIN bits */
  int listed = s->listed, joined = s->joined;
  memset(s, 0, offsetof(session, tx));
  s->listed = listed;
  s->joined = joined;
  for (int i = 0; i < POLL_KINDS; i++) poll_gate_init(&s->gate[i]);
  memset(s->tx, 0, sizeof s->tx);
  memset(s->rx, 0, sizeof s->rx);
  s->gen = gen + 1;
  s->fd = nfd;
  s->id = id;
  s->version = (int)version;
  s->in_cap = (size_t)r->max_ws + 14;
  s->out_cap = (size_t)r->queue_bytes + (size_t)r->max_ws + 64;
  s->in = malloc(s->in_cap);
  s->out = malloc(s->out_cap);
  s->tok_p = r->pps;
  s->tok_b = r->bps;
  s->tok_last = wall_ms();
  s->st.last_active = s->tok_last;
  if (!s->in || !s->out || init_len > s->in_cap) {
    free_buffers(s);
    close(nfd);
    pthread_mutex_unlock(&r->mu);
    napi_throw_error(env, NULL, "adopt: out of memory");
    return NULL;
  }
  s->state = S_OPEN;
  if (init_len) {
    memcpy(s->in, init, init_len);
    s->in_len = init_len;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)s->gen << 32) | slot};
  if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, nfd, &ev) != 0) {
    free_buffers(s);
    close(nfd);
    s->state = S_FREE;
    pthread_mutex_unlock(&r->mu);
    napi_throw_error(env, NULL, "adopt: epoll_ctl failed");
    return NULL;
  }
  if (init_len) parse_frames(r, s);
  pthread_mutex_unlock(&r->mu);
  return nu_undefined(env);
}

static int slot_id(napi_env env, napi_value *argv, size_t argc, uint32_t *slot, uint32_t *id) {
  return argc >= 2 && nu_get_u32(env, argv[0], slot) && nu_get_u32(env, argv[1], id) ? 0 : -1;
}

/*
 * The entry points on one session, (slot, id, ...): the relay, up to *argc arguments into argv
 * (*argc: the count given), the slot and the id; NULL with a TypeError naming `usage` when fewer
 * than `need` came or slot and id are not numbers. The caller checks its further arguments.
 */
static relay *session_call(napi_env env, napi_callback_info info, napi_value *argv, size_t *argc, size_t need,
                           const char *usage, uint32_t *slot, uint32_t *id) {
  relay *r = this_relay(env, info, argc, argv);
  if (!r) return NULL;
  if (*argc < need || slot_id(env, argv, *argc, slot, id)) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return r;
}

/* send(slot, id, bytes, opcode = 2): one message toward the client; the bytes queued after it, or -1 (gone or full). */
static napi_value js_send(napi_env env, napi_callback_info info) {
  static const char usage[] = "send(slot, id, bytes, opcode?)";
  size_t argc = 4;
  napi_value argv[4];
  uint32_t slot, id, op = 2;
  relay *r = session_call(env, info, argv, &argc, 3, usage, &slot, &id);
  if (!r) return NULL;
  uint8_t *d;
  size_t l;
  if (get_bytes(env, argv[2], &d, &l)) return nu_throw_type(env, usage);
  if (argc >= 4 && !nu_get_u32(env, argv[3], &op)) op = 0; /* not a whole number: refused below */
  if (op != 1 && op != 2 && op != 9 && op != 10) {
    napi_throw_range_error(env, NULL, "send: opcode 1, 2, 9 or 10");
    return NULL;
  }
  if (op >= 8 && l > 125) l = 125;
  double res = -1;
  pthread_mutex_lock(&r->mu);
  session *s = find(r, slot, id);
  if (s && s->state == S_OPEN && queue_message(r, s, (int)op, d, l, NULL, 0) == 0) {
    if (op < 8) {
      s->st.frames_out++;
      s->st.bytes_out += l;
    }
    if (!s->want_out) sess_flush(r, s);
    s = find(r, slot, id);
    res = s ? (double)(s->out_tail - s->out_head) : -1;
  }
  pthread_mutex_unlock(&r->mu);
  napi_value v;
  napi_create_double(env, res, &v);
  return v;
}

/* close(slot, id, code, reason): the closing handshake, as ws.close. */
static napi_value js_close_session(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t slot, id, code = 1000;
  relay *r = session_call(env, info, argv, &argc, 2, "close(slot, id, code, reason)", &slot, &id);
  if (!r) return NULL;
  char reason[124];
  size_t rl = 0;
  if (argc >= 3 && (!nu_get_u32(env, argv[2], &code) || code > 0xffff)) return nu_throw_range(env, "close: code is a whole number 0..65535");
  if (argc >= 4) napi_get_value_string_utf8(env, argv[3], reason, sizeof reason, &rl);
  pthread_mutex_lock(&r->mu);
  session *s = find(r, slot, id);
  if (s && s->state == S_OPEN) {
    uint8_t c[2];
    put16(c, code);
    queue_message(r, s, 8, c, 2, (const uint8_t *)reason, rl);
    s->state = S_CLOSING;
    s->close_sent = 1;
    if (!s->want_out) sess_flush(r, s);
  }
  pthread_mutex_unlock(&r->mu);
  return nu_undefined(env);
}

/* terminate(slot, id): the socket closed now (ws.terminate); JS hears EV_CLOSED 1006. */
static napi_value js_terminate(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint32_t slot, id;
  relay *r = session_call(env, info, argv, &argc, 2, "terminate(slot, id)", &slot, &id);
  if (!r) return NULL;
  pthread_mutex_lock(&r->mu);
  session *s = find(r, slot, id);
  if (s) sess_end(r, s, 1006);
  pthread_mutex_unlock(&r->mu);
  return nu_undefined(env);
}

/* approve(slot, id, dir 0 tx / 1 rx, gid: Uint8Array, gidAt, port, qpn): this conversation passes the fast path for approvalMs. */
static napi_value js_approve(napi_env env, napi_callback_info info) {
  static const char usage[] = "approve(slot, id, dir, gid, gidAt, port, qpn)";
  size_t argc = 7;
  napi_value argv[7];
  uint32_t slot, id, dir, at, port, qpn;
  relay *r = session_call(env, info, argv, &argc, 7, usage, &slot, &id);
  if (!r) return NULL;
  uint8_t *g;
  size_t gl;
  if (!nu_get_u32(env, argv[2], &dir) || get_bytes(env, argv[3], &g, &gl) ||
      !nu_get_u32(env, argv[4], &at) || !nu_get_u32(env, argv[5], &port) ||
      !nu_get_u32(env, argv[6], &qpn) || (size_t)at + 16 > gl)
    return nu_throw_type(env, usage);
  pthread_mutex_lock(&r->mu);
  session *s = find(r, slot, id);
  if (s) approve(dir ? s->rx : s->tx, g + at, dir ? 0 : port, qpn, now_ms() + r->approval_ms);
  pthread_mutex_unlock(&r->mu);
  return nu_undefined(env);
}

/* revoke(slot, id, qpn): received datagrams for this QP are decided by JS again (a binding moved). */
static napi_value js_revoke(napi_env env, napi_callback_info info) {
  static const char usage[] = "revoke(slot, id, qpn)";
  size_t argc = 3;
  napi_value argv[3];
  uint32_t slot, id, qpn;
  relay *r = session_call(env, info, argv, &argc, 3, usage, &slot, &id);
  if (!r) return NULL;
  if (!nu_get_u32(env, argv[2], &qpn)) return nu_throw_type(env, usage);
  pthread_mutex_lock(&r->mu);
  session *s = find(r, slot, id);
  if (s)
    for (int i = 0; i < APPROVALS; i++)
      if (s->rx[i].qpn == qpn) s->rx[i].until = 0;
  pthread_mutex_unlock(&r->mu);
  return nu_undefined(env);
}

/* resume(slot, id, txHandled, rxHandled): JS handled that many punts of the session (and sent what they produced). */
static napi_value js_resume(napi_env env, napi_callback_info info) {
  static const char usage[] = "resume(slot, id, tx, rx)";
  size_t argc = 4;
  napi_value argv[4];
  uint32_t slot, id, tx, rx;
  relay *r = session_call(env, info, argv, &argc, 4, usage, &slot, &id);
  if (!r) return NULL;
  if (!nu_get_u32(env, argv[2], &tx) || !nu_get_u32(env, argv[3], &rx))
    return nu_throw_type(env, usage);
  pthread_mutex_lock(&r->mu);
  session *s = find(r, slot, id);
  if (s) {
    s->tx_acked += tx;
    s->rx_acked += rx;
  }
  pthread_mutex_unlock(&r->mu);
  return nu_undefined(env);
}

/* The relay of a method whose one argument is a whole number 0..max (into *out); NULL with a RangeError `usage` otherwise. */
static relay *relay_u32_call(napi_env env, napi_callback_info info, uint32_t max, const char *usage, uint32_t *out) {
  size_t argc = 1;
  napi_value argv[1];
  relay *r = this_relay(env, info, &argc, argv);
  if (!r) return NULL;
  if (argc < 1 || !nu_get_u32(env, argv[0], out) || *out > max) {
    napi_throw_range_error(env, NULL, usage);
    return NULL;
  }
  return r;
}

/* A poll's window from now on (0..POLL_MAX_US µs; 0: off); `usage` names the method. */
static napi_value set_poll(napi_env env, napi_callback_info info, int kind, const char *usage) {
  uint32_t us;
  relay *r = relay_u32_call(env, info, POLL_MAX_US, usage, &us);
  if (!r) return NULL;
  r->poll_us[kind] = us;
  return nu_undefined(env);
}

/* A fault injection's sleep from now on (0..1000000 µs; 0: off), by SLOW_* kind; `usage` names the method. */
static napi_value set_slow(napi_env env, napi_callback_info info, int kind, const char *usage) {
  uint32_t us;
  relay *r = relay_u32_call(env, info, 1000000, usage, &us);
  if (!r) return NULL;
  r->slow_us[kind] = us;
  return nu_undefined(env);
}

/* slowYield(us): fault injection for tests — each yield between polls also sleeps this long, as when threads that do
   not sleep take the CPU. slowLook(us): after a turn that began a wait (poll_join), the thread sleeps this long before
   the window's first look, as when the CPU went to the thread its turn woke: what the wait is for can be there at
   that look (ready). */
static napi_value js_slow_yield(napi_env env, napi_callback_info info) { return set_slow(env, info, SLOW_YIELD, "slowYield(us): 0..1000000"); }
static napi_value js_slow_look(napi_env env, napi_callback_info info) { return set_slow(env, info, SLOW_LOOK, "slowLook(us): 0..1000000"); }

/* busyPoll(us): the answer poll's window; requestPoll(us): the request poll's. */
static napi_value js_busy_poll(napi_env env, napi_callback_info info) { return set_poll(env, info, POLL_ANSWER, "busyPoll(us): 0..10000"); }
static napi_value js_request_poll(napi_env env, napi_callback_info info) {
  return set_poll(env, info, POLL_REQUEST, "requestPoll(us): 0..10000");
}

/* joinAcks(on): bare ACKs toward a client whose answer poll waits hold for the answer (1) or leave at once (0). */
static napi_value js_join_acks(napi_env env, napi_callback_info info) {
  uint32_t on;
  relay *r = relay_u32_call(env, info, 1, "joinAcks(on): 0 or 1", &on);
  if (!r) return NULL;
  r->join_acks = on;
  return nu_undefined(env);
}

/*
 * trace(cap): from now on record up to `cap` turns that forwarded something (0: stop and free);
 * traceTake(): the records so far as a BigUint64Array of TRACE_FIELDS each (see TRACE_FIELDS), and
 * the count restarts. For a bench's per-hop breakdown: the clock is process.hrtime's.
 */
static napi_value js_trace(napi_env env, napi_callback_info info) {
  uint32_t cap;
  relay *r = relay_u32_call(env, info, TRACE_MAX, "trace(cap): 0..1048576 turns", &cap);
  if (!r) return NULL;
  uint64_t *t = cap ? calloc((size_t)cap * TRACE_FIELDS, sizeof(uint64_t)) : NULL;
  if (cap && !t) {
    napi_throw_error(env, NULL, "trace: out of memory");
    return NULL;
  }
  pthread_mutex_lock(&r->mu);
  uint64_t *old = r->trace;
  r->trace = t;
  r->trace_cap = cap;
  r->trace_n = 0;
  pthread_mutex_unlock(&r->mu);
  free(old);
  return nu_undefined(env);
}

static napi_value js_trace_take(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  relay *r = this_relay(env, info, &argc, NULL);
  if (!r) return NULL;
  pthread_mutex_lock(&r->mu);
  size_t n = r->trace ? (size_t)r->trace_n * TRACE_FIELDS : 0;
  void *data;
  napi_value ab, arr;
  if (napi_create_arraybuffer(env, n * sizeof(uint64_t), &data, &ab) != napi_ok) {
    pthread_mutex_unlock(&r->mu);
    napi_throw_error(env, NULL, "traceTake: out of memory");
    return NULL;
  }
  if (n) memcpy(data, r->trace, n * sizeof(uint64_t));
  r->trace_n = 0;
  pthread_mutex_unlock(&r->mu);
  napi_create_typedarray(env, napi_biguint64_array, n, ab, 0, &arr);
  return arr;
}

/* The polls' counters (poll_stats), by kind. */
static void set_poll_stats(napi_env env, napi_value o, const poll_stats *p) {
  static const char *const names[POLL_KINDS][4] = {{"busyPolls", "busyPollHits", "busyPollReady", "busyPollGated"},
                                                   {"requestPolls", "requestPollHits", "requestPollReady", "requestPollGated"}};
  for (int i = 0; i < POLL_KINDS; i++) {
    nu_set_num(env, o, names[i][0], (double)p->polls[i]);
    nu_set_num(env, o, names[i][1], (double)p->hits[i]);
    nu_set_num(env, o, names[i][2], (double)p->ready[i]);
    nu_set_num(env, o, names[i][3], (double)p->gated[i]);
  }
}

/* session(slot, id): { buffered, lastActive (ms since the epoch), framesIn, framesOut, bytesIn, bytesOut, dropped,
   busyPolls, busyPollHits, busyPollReady, busyPollGated, requestPolls, requestPollHits, requestPollReady,
   requestPollGated } or undefined. */
static napi_value js_session(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint32_t slot, id;
  relay *r = session_call(env, info, argv, &argc, 2, "session(slot, id)", &slot, &id);
  if (!r) return NULL;
  pthread_mutex_lock(&r->mu);
  session *s = find(r, slot, id);
  if (!s) {
    pthread_mutex_unlock(&r->mu);
    return nu_undefined(env);
  }
  sess_stats st = s->st;
  double buffered = (double)(s->out_tail - s->out_head);
  pthread_mutex_unlock(&r->mu);
  napi_value o;
  napi_create_object(env, &o);
  nu_set_num(env, o, "buffered", buffered);
  nu_set_num(env, o, "lastActive", (double)st.last_active);
  nu_set_num(env, o, "framesIn", (double)st.frames_in);
  nu_set_num(env, o, "framesOut", (double)st.frames_out);
  nu_set_num(env, o, "bytesIn", (double)st.bytes_in);
  nu_set_num(env, o, "bytesOut", (double)st.bytes_out);
  nu_set_num(env, o, "dropped", (double)st.dropped);
  set_poll_stats(env, o, &st.poll);
  return o;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  relay *r = this_relay(env, info, &argc, NULL);
  if (!r) return NULL;
  pthread_mutex_lock(&r->mu);
  relay_stats st = r->st;
  uint32_t open = 0;
  for (uint32_t i = 0; i < r->max_clients; i++) open += r->sess[i].state != S_FREE;
  pthread_mutex_unlock(&r->mu);
  napi_value o;
  napi_create_object(env, &o);
#define STAT(name, field) nu_set_num(env, o, name, (double)st.field)
  STAT("udpOut", udp_out);
  STAT("udpIn", udp_in);
  STAT("udpSendErrors", udp_send_errors);
  STAT("udpSendCalls", udp_send_calls);
  STAT("udpReceiveCalls", udp_recv_calls);
  STAT("puntedDatagrams", punts_tx);
  STAT("puntedUdp", punts_rx);
  STAT("puntedFrames", punts_frames);
  STAT("queueDrops", queue_drops);
  STAT("clientBacklog", client_backlog);
  STAT("framesIn", frames_in);
  STAT("framesOut", frames_out);
  STAT("bytesIn", bytes_in);
  STAT("bytesOut", bytes_out);
  STAT("wakeups", wakeups);
  STAT("events", events);
  STAT("pollsLate", poll_late);
  STAT("ackJoins", ack_joins);
  STAT("ackJoinMisses", ack_join_misses);
#undef STAT
  set_poll_stats(env, o, &st.poll);
  nu_set_num(env, o, "sessions", open);
  return o;
}

/* constants(): the tunnel constants the relay uses (as given at construction). */
static napi_value js_constants(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  relay *r = this_relay(env, info, &argc, NULL);
  if (!r) return NULL;
  const tunnel_consts *k = &r->k;
  napi_value o;
  napi_create_object(env, &o);
  nu_set_num(env, o, "TUNNEL_VERSION", k->v1);
  nu_set_num(env, o, "TUNNEL_VERSION_BATCH", k->v2);
  nu_set_num(env, o, "KIND_DATA", k->kind_data);
  nu_set_num(env, o, "KIND_BATCH", k->kind_batch);
  nu_set_num(env, o, "DATA_HEADER_LEN", k->data_header);
  nu_set_num(env, o, "BATCH_HEADER_LEN", k->batch_header);
  nu_set_num(env, o, "BATCH_RECORD_LEN", k->record);
  nu_set_num(env, o, "BATCH_MAX_COUNT", k->batch_max);
  nu_set_num(env, o, "MIN_ROCE_PAYLOAD", k->min_payload);
  nu_set_num(env, o, "RECORD_PORT_OFF", k->port_off);
  nu_set_num(env, o, "RECORD_ADDRESS_OFF", k->address_off);
  nu_set_num(env, o, "RECORD_IP_ID_OFF", k->ip_id_off);
  nu_set_num(env, o, "TUNNEL_IP_ID_UNKNOWN", k->ip_id_unknown);
  nu_set_num(env, o, "maxMessage", r->max_ws);
  nu_set_num(env, o, "maxRocePayload", r->max_roce);
  /* the shape table's flag bits as the relay reads them (roce-shape.ts RelayOp) */
  napi_value f;
  napi_create_object(env, &f);
  nu_set_num(env, f, "PAYLOAD", OPF_PAYLOAD);
  nu_set_num(env, f, "REQ", OPF_REQ);
  nu_set_num(env, f, "ANSWERED", OPF_ANSWERED);
  nu_set_num(env, f, "ACK_ONLY", OPF_ACK_ONLY);
  napi_set_named_property(env, o, "opFlags", f);
  return o;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  relay *r = this_relay(env, info, &argc, NULL);
  if (!r) return NULL;
  relay_shutdown(r);
  return nu_undefined(env);
}

void relay_init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"adopt", NULL, js_adopt, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"closeSession", NULL, js_close_session, NULL, NULL, NULL, napi_default, NULL},
      {"terminate", NULL, js_terminate, NULL, NULL, NULL, napi_default, NULL},
      {"approve", NULL, js_approve, NULL, NULL, NULL, napi_default, NULL},
      {"revoke", NULL, js_revoke, NULL, NULL, NULL, napi_default, NULL},
      {"resume", NULL, js_resume, NULL, NULL, NULL, napi_default, NULL},
      {"busyPoll", NULL, js_busy_poll, NULL, NULL, NULL, napi_default, NULL},
      {"requestPoll", NULL, js_request_poll, NULL, NULL, NULL, napi_default, NULL},
      {"joinAcks", NULL, js_join_acks, NULL, NULL, NULL, napi_default, NULL},
      {"slowYield", NULL, js_slow_yield, NULL, NULL, NULL, napi_default, NULL},
      {"slowLook", NULL, js_slow_look, NULL, NULL, NULL, napi_default, NULL},
      {"trace", NULL, js_trace, NULL, NULL, NULL, napi_default, NULL},
      {"traceTake", NULL, js_trace_take, NULL, NULL, NULL, napi_default, NULL},
      {"session", NULL, js_session, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"constants", NULL, js_constants, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  napi_define_class(env, "Relay", NAPI_AUTO_LENGTH, js_construct, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "Relay", cls);
}
