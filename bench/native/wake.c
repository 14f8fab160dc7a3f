/* What one hop between two processes costs on this machine: a ping-pong between a parent and a
 * forked child over loopback (UDP or TCP), each message carrying its sender's CLOCK_MONOTONIC
 * time, the receiver noting when it has the message. Two ways to wait:
 *   block: epoll_wait, then read (as a Node event loop waits): the receiver sleeps, and each
 *          message costs a wake-up;
 *   spin:  non-blocking reads in a loop (a busy poll): no sleep, no wake-up; each side holds a CPU.
 * Prints one JSON line: one-way latency (send call -> message in the receiver's hands) median and
 * p90 in µs, and the round trip's median.
 * relay: three processes, the shape of the gateway's path: the pinger over loopback TCP to a relay,
 * which forwards each message over loopback UDP to an echoing process and the echo back over TCP
 * (each waiting as `block` or `spin` says; spinning, each yields the CPU between empty looks, as
 * softroce's polls do: three spinners on two CPUs otherwise wait out scheduler ticks). Prints the
 * round trip's median and p90 only.
 * worker: the device worker's shape: one process, two threads. The application thread hands each
 * message to a worker thread through a shared word (the doorbell; blocking, it also writes an
 * eventfd the worker sleeps on beside its socket), the worker sends it over loopback UDP to an
 * echoing process, takes the echo and hands it back through a second word (blocking, the
 * application sleeps in a futex wait on it). Spinning, every thread looks in a loop and yields the
 * CPU between empty looks. Prints the round trip's median and p90 only.
 * usage: wake udp|tcp|relay|worker block|spin COUNT ADDRESS */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* a message: its send time, and (echo) the latency the echoing side measured */
typedef struct {
  uint64_t sent, there;
} msg;

/* Spinning, give the CPU away between empty looks (relay mode: three processes on the machine's CPUs). */
static int yield_between;

/* Waits for one message on `fd` (blocking through epoll, or spinning). */
static msg take(int fd, int ep, int spin) {
  msg v;
  size_t got = 0;
  while (got < sizeof v) {
    if (!spin) {
      struct epoll_event e;
      int n = epoll_wait(ep, &e, 1, 5000);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) die("epoll_wait");
    }
    ssize_t r = recv(fd, (char *)&v + got, sizeof v - got, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (spin && yield_between) sched_yield();
      continue;
    }
    if (r <= 0) die("recv");
    got += (size_t)r;
  }
  return v;
}

static void give(int fd, msg v) {
  if (send(fd, &v, sizeof v, 0) != (ssize_t)sizeof v) die("send");
}

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* A TCP connection over loopback at `a` (port 0: any), both ends with TCP_NODELAY. */
static void tcp_pair(struct sockaddr_in a, int *client, int *server) {
  socklen_t al = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || getsockname(l, (struct sockaddr *)&a, &al) || listen(l, 1)) die("listen");
  *client = socket(AF_INET, SOCK_STREAM, 0);
  if (*client < 0 || connect(*client, (struct sockaddr *)&a, sizeof a)) die("connect");
  *server = accept(l, NULL, NULL);
  if (*server < 0) die("accept");
  close(l);
  int one = 1;
  setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(*server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Two UDP sockets at `a`'s address, each connected to the other. */
static void udp_pair(struct sockaddr_in a, int *x, int *y) {
  struct sockaddr_in b = a;
  socklen_t al = sizeof a;
  a.sin_port = b.sin_port = 0;
  *x = socket(AF_INET, SOCK_DGRAM, 0);
  *y = socket(AF_INET, SOCK_DGRAM, 0);
  if (*x < 0 || *y < 0 || bind(*x, (struct sockaddr *)&a, sizeof a) || getsockname(*x, (struct sockaddr *)&a, &al)) die("bind");
  al = sizeof b;
  if (bind(*y, (struct sockaddr *)&b, sizeof b) || getsockname(*y, (struct sockaddr *)&b, &al)) die("bind");
  if (connect(*x, (struct sockaddr *)&b, sizeof b) || connect(*y, (struct sockaddr *)&a, sizeof a)) die("connect");
}

/* One fd readable (epoll over both, or spinning over both with non-blocking reads): the message read whole. */
static int take_either(int f0, int f1, int ep, int spin, msg *out) {
  for (;;) {
    int fds[2] = {f0, f1};
    if (!spin) {
      struct epoll_event e;
      int n = epoll_wait(ep, &e, 1, 5000);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) die("epoll_wait");
      fds[0] = fds[1] = (int)e.data.u32;
    }
    for (int k = 0; k < 2; k++) {
      ssize_t r = recv(fds[k], out, sizeof *out, MSG_DONTWAIT | MSG_PEEK);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (r <= 0) die("recv");
      *out = take(fds[k], -1, 1); /* the whole message: a TCP stream may hand it over in pieces */
      return fds[k];
    }
    if (spin) sched_yield();
  }
}

/* An epoll set watching `fd` for input. */
static int epoll_for(int fd) {
  int ep = epoll_create1(0);
  struct epoll_event e = {.events = EPOLLIN};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e)) die("epoll_ctl");
  return ep;
}

/* Forks the echoing process of the three-party modes: `count` messages on `fd`, each sent back as it
 * came. It first closes the parent's `n` descriptors in `others`. Returns its pid. */
static pid_t fork_echo(int fd, int count, int spin, const int *others, int n) {
  pid_t echo = fork();
  if (echo < 0) die("fork");
  if (echo == 0) {
    for (int k = 0; k < n; k++) close(others[k]);
    int ep = epoll_for(fd);
    for (int i = 0; i < count; i++) give(fd, take(fd, ep, spin));
    _exit(0);
  }
  return echo;
}

/* The three-party modes' line: the round trips' median and p90. */
static void print_rtt(const char *proto, const char *wait, uint64_t *rtt, int count) {
  qsort(rtt, (size_t)count, sizeof *rtt, cmp);
  printf("{\"proto\":\"%s\",\"wait\":\"%s\",\"count\":%d,\"rttMedianUs\":%.1f,\"rttP90Us\":%.1f}\n", proto, wait, count, rtt[count / 2] / 1e3,
         rtt[count * 9 / 10] / 1e3);
}

/* relay mode: pinger -TCP- relay -UDP- echo, every message forwarded as it comes. */
static int relay_main(int spin, int count, struct sockaddr_in a, const char *wait) {
  int pinger, relay_tcp, relay_udp, echo_udp;
  yield_between = 1;
  tcp_pair(a, &pinger, &relay_tcp);
  udp_pair(a, &relay_udp, &echo_udp);
  pid_t relay = fork();
  if (relay < 0) die("fork");
  if (relay == 0) {
    close(pinger);
    close(echo_udp);
    int ep = epoll_create1(0);
    struct epoll_event e0 = {.events = EPOLLIN, .data.u32 = (uint32_t)relay_tcp}, e1 = {.events = EPOLLIN, .data.u32 = (uint32_t)relay_udp};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, relay_tcp, &e0) || epoll_ctl(ep, EPOLL_CTL_ADD, relay_udp, &e1)) die("epoll_ctl");
    for (int i = 0; i < 2 * count; i++) {
      msg m;
      int from = take_either(relay_tcp, relay_udp, ep, spin, &m);
      give(from == relay_tcp ? relay_udp : relay_tcp, m);
    }
    _exit(0);
  }
  pid_t echo = fork_echo(echo_udp, count, spin, (int[]){pinger, relay_tcp, relay_udp}, 3);
  close(relay_tcp);
  close(relay_udp);
  close(echo_udp);
  int ep = epoll_for(pinger);
  uint64_t *rtt = calloc((size_t)count, sizeof *rtt);
  if (!rtt) die("calloc");
  for (int i = 0; i < count; i++) {
    uint64_t t0 = now_ns();
    give(pinger, (msg){.sent = t0});
    take(pinger, ep, spin);
    rtt[i] = now_ns() - t0;
  }
  waitpid(relay, NULL, 0);
  waitpid(echo, NULL, 0);
  print_rtt("relay", wait, rtt, count);
  return 0;
}

/* worker mode's shared state: the doorbell and answer words, the doorbell's eventfd, the worker's socket */
typedef struct {
  _Atomic uint32_t req, resp;
  int efd, udp, spin, count;
} worker_ctl;

static void futex_wait(_Atomic uint32_t *w, uint32_t v) { syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0); }
static void futex_wake(_Atomic uint32_t *w) { syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static void *worker_thread(void *arg) {
  worker_ctl *w = arg;
  int ep = epoll_for(w->efd), ep_udp = epoll_for(w->udp);
  struct epoll_event e1 = {.events = EPOLLIN};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, w->udp, &e1)) die("epoll_ctl");
  uint32_t seen = 0;
  for (int i = 0; i < w->count; i++) {
    for (;;) { /* the doorbell */
      uint32_t v = atomic_load(&w->req);
      if (v != seen) {
        seen = v;
        break;
      }
      if (w->spin) {
        sched_yield();
        continue;
      }
      struct epoll_event e;
      if (epoll_wait(ep, &e, 1, 5000) < 0 && errno != EINTR) die("epoll_wait");
      uint64_t n;
      if (read(w->efd, &n, sizeof n) < 0 && errno != EAGAIN) die("read eventfd");
    }
    give(w->udp, (msg){.sent = now_ns()});
    take(w->udp, ep_udp, w->spin);
    atomic_store(&w->resp, (uint32_t)i + 1);
    if (!w->spin) futex_wake(&w->resp);
  }
  return NULL;
}

/* worker mode: application thread -doorbell- worker thread -UDP- echo process. */
static int worker_main(int spin, int count, struct sockaddr_in a, const char *wait) {
  int mine, echo_udp;
  yield_between = 1;
  udp_pair(a, &mine, &echo_udp);
  pid_t echo = fork_echo(echo_udp, count, spin, &mine, 1);
  close(echo_udp);
  static worker_ctl w;
  w.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w.efd < 0) die("eventfd");
  w.udp = mine;
  w.spin = spin;
  w.count = count;
  pthread_t t;
  if (pthread_create(&t, NULL, worker_thread, &w)) die("pthread_create");
  uint64_t *rtt = calloc((size_t)count, sizeof *rtt);
  if (!rtt) die("calloc");
  for (int i = 0; i < count; i++) {
    uint64_t t0 = now_ns();
    atomic_store(&w.req, (uint32_t)i + 1);
    if (!spin) {
      uint64_t one = 1;
      if (write(w.efd, &one, sizeof one) != (ssize_t)sizeof one) die("write eventfd");
    }
    for (uint32_t v; (v = atomic_load(&w.resp)) != (uint32_t)i + 1;) {
      if (spin) sched_yield();
      else futex_wait(&w.resp, v);
    }
    rtt[i] = now_ns() - t0;
  }
  pthread_join(t, NULL);
  waitpid(echo, NULL, 0);
  print_rtt("worker", wait, rtt, count);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: wake udp|tcp|relay|worker block|spin COUNT ADDRESS\n");
    return 2;
  }
  int tcp = strcmp(argv[1], "tcp") == 0, spin = strcmp(argv[2], "spin") == 0;
  int count = atoi(argv[3]);
  if (count < 1 || count > 1000000) return 2;
  struct sockaddr_in a = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, argv[4], &a.sin_addr) != 1) return 2;
  if (strcmp(argv[1], "relay") == 0) return relay_main(spin, count, a, argv[2]);
  if (strcmp(argv[1], "worker") == 0) return worker_main(spin, count, a, argv[2]);
  socklen_t al = sizeof a;
  int s0 = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0), s1;
  if (s0 < 0) die("socket");
  if (bind(s0, (struct sockaddr *)&a, sizeof a) || getsockname(s0, (struct sockaddr *)&a, &al)) die("bind");
  if (tcp) {
    if (listen(s0, 1)) die("listen");
    s1 = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s1, (struct sockaddr *)&a, sizeof a)) die("connect");
    int c = accept(s0, NULL, NULL);
    if (c < 0) die("accept");
    close(s0);
    s0 = c;
    int one = 1;
    setsockopt(s0, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s1, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  } else {
    struct sockaddr_in b = a;
    b.sin_port = 0;
    s1 = socket(AF_INET, SOCK_DGRAM, 0);
    if (s1 < 0 || bind(s1, (struct sockaddr *)&b, sizeof b) || getsockname(s1, (struct sockaddr *)&b, &al)) die("bind");
    if (connect(s0, (struct sockaddr *)&b, sizeof b) || connect(s1, (struct sockaddr *)&a, sizeof a)) die("connect");
  }
  /* parent: s0, the pinger; child: s1, echoes each message with its own send time */
  pid_t child = fork();
  if (child < 0) die("fork");
  int fd = child == 0 ? s1 : s0;
  close(child == 0 ? s0 : s1);
  int ep = epoll_for(fd); /* after the fork: each process its own */
  uint64_t *oneway = calloc((size_t)count * 2, sizeof *oneway), *rtt = calloc((size_t)count, sizeof *rtt);
  if (!oneway || !rtt) die("calloc");
  if (child == 0) {
    /* the child's one-way latency goes back in the echo */
    for (int i = 0; i < count; i++) {
      msg m = take(fd, ep, spin);
      uint64_t t = now_ns();
      give(fd, (msg){.sent = now_ns(), .there = t - m.sent});
    }
    _exit(0);
  }
  for (int i = 0; i < count; i++) {
    uint64_t t0 = now_ns();
    give(fd, (msg){.sent = t0});
    msg m = take(fd, ep, spin);
    uint64_t t1 = now_ns();
    oneway[2 * i] = m.there;
    oneway[2 * i + 1] = t1 - m.sent;
    rtt[i] = t1 - t0;
  }
  waitpid(child, NULL, 0);
  qsort(oneway, (size_t)count * 2, sizeof *oneway, cmp);
  qsort(rtt, (size_t)count, sizeof *rtt, cmp);
  printf("{\"proto\":\"%s\",\"wait\":\"%s\",\"count\":%d,\"onewayMedianUs\":%.1f,\"onewayP90Us\":%.1f,\"rttMedianUs\":%.1f}\n", argv[1],
         argv[2], count, oneway[count] / 1e3, oneway[count * 2 * 9 / 10] / 1e3, rtt[count / 2] / 1e3);
  return 0;
}
