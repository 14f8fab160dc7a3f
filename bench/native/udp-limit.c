/*
 * The machine's limit for moving RoCE-sized datagrams between two processes over UDP
 * loopback: what a C program reaches with one send() a datagram, with sendmmsg, with UDP
 * GSO (UDP_SEGMENT) and with GSO plus UDP_GRO on the receiver. bench/native-limit.mjs and
 * bench/native-datapath.mjs build it with the compiler node-gyp uses and print the figures
 * next to what Node moves, so the Node numbers read as a fraction of this machine's limit.
 *
 * The sender keeps a bounded window in flight, as RC does (128 datagrams, its PSN window):
 * the receiver returns its cumulative datagram count every 32 datagrams. Goodput is
 * measured at the receiver (first to last datagram); lost datagrams are counted, and a
 * window stalled by a loss reopens after 20 ms, so loss shows in the figure.
 *
 * usage: udp-limit MODE [size] [count] [window] [sender-address] [receiver-address]
 *   MODE: send | sendmmsg | gso | gso+gro
 * prints one JSON line: mode, size, count, received, lost, us, gbps, sender_us_per_dgram.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The addon's own socket setup (DF with IP ID 0, as the datapath sends). */
#include "udpsock.h"

enum mode { M_SEND, M_SENDMMSG, M_GSO, M_GSO_GRO };
static const char *const MODE_NAMES[] = {"send", "sendmmsg", "gso", "gso+gro"};

/* Largest UDP payload of one IPv4 datagram: a GSO send is one such datagram before segmentation. */
#define MAX_UDP4_PAYLOAD 65507
#define ACK_EVERY 32
#define RECV_BATCH 64
#define SEND_BATCH 64
#define IDLE_MS 300
#define STALL_MS 20

static void die(const char *what) {
  fprintf(stderr, "udp-limit: %s: %s\n", what, strerror(errno));
  exit(2);
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int udp_socket(const char *addr, struct sockaddr_in *bound) {
  udpsock_step step;
  int fd = udpsock_open(4, addr, 0, 0, &step);
  if (fd < 0) {
    errno = -fd;
    die(udpsock_step_name(step));
  }
  int buf = 4 << 20;
  /* Linux caps both at net.core.[rw]mem_max; the cap is part of the machine's limit. */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  socklen_t len = sizeof *bound;
  if (getsockname(fd, (struct sockaddr *)bound, &len) != 0) die("getsockname");
  return fd;
}

struct result {
  uint64_t received;
  double first_us, last_us;
};

/* Receives until `count` datagrams arrived or the line was idle IDLE_MS after the first. */
static struct result receive(int fd, enum mode mode, size_t size, uint64_t count) {
  int gro = mode == M_GSO_GRO;
  if (gro) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof one) != 0) die("UDP_GRO");
  }
  size_t slot = gro ? 65536 : size;
  char *buf = malloc(slot * RECV_BATCH);
  if (!buf) die("malloc");
  struct mmsghdr msgs[RECV_BATCH];
  struct iovec iov[RECV_BATCH];
  struct sockaddr_in from[RECV_BATCH];
  char ctrl[RECV_BATCH][CMSG_SPACE(sizeof(int))];
  struct result r = {0, 0, 0};
  uint64_t acked = 0;
  struct sockaddr_in peer;
  while (r.received < count) {
    struct pollfd p = {fd, POLLIN, 0};
    int ready = poll(&p, 1, r.received ? IDLE_MS : 10000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    for (int i = 0; i < RECV_BATCH; i++) {
      iov[i].iov_base = buf + i * slot;
      iov[i].iov_len = slot;
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_control = gro ? ctrl[i] : NULL;
      msgs[i].msg_hdr.msg_controllen = gro ? sizeof ctrl[i] : 0;
    }
    int n = recvmmsg(fd, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      die("recvmmsg");
    }
    double t = now_us();
    if (r.received == 0) r.first_us = t;
    r.last_us = t;
    for (int i = 0; i < n; i++) {
      size_t len = msgs[i].msg_len, seg = len;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
        if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
          int g;
          memcpy(&g, CMSG_DATA(c), sizeof g);
          if (g > 0) seg = (size_t)g;
        }
      }
      r.received += seg ? (len + seg - 1) / seg : 1;
      peer = from[i];
    }
    if (r.received / ACK_EVERY != acked / ACK_EVERY || r.received >= count) {
      acked = r.received;
      uint32_t c32 = (uint32_t)acked;
      sendto(fd, &c32, sizeof c32, 0, (struct sockaddr *)&peer, sizeof peer);
    }
  }
  free(buf);
  return r;
}

/* Sends `count` datagrams keeping at most `window` unacknowledged. */
static void transmit(int fd, enum mode mode, size_t size, uint64_t count, uint64_t window, const struct sockaddr_in *to) {
  size_t max_segs = MAX_UDP4_PAYLOAD / size;
  if (max_segs < 1) max_segs = 1;
  size_t batch = mode == M_SEND ? 1 : mode == M_SENDMMSG ? SEND_BATCH : max_segs;
  char *buf = malloc(size * (batch > SEND_BATCH ? batch : SEND_BATCH));
  if (!buf) die("malloc");
  memset(buf, 0xab, size * (batch > SEND_BATCH ? batch : SEND_BATCH));
  struct mmsghdr msgs[SEND_BATCH];
  struct iovec iov[SEND_BATCH];
  for (int i = 0; i < SEND_BATCH; i++) {
    iov[i].iov_base = buf + i * size;
    iov[i].iov_len = size;
    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = (void *)to;
    msgs[i].msg_hdr.msg_namelen = sizeof *to;
  }
  char ctrl[CMSG_SPACE(sizeof(uint16_t))];
  uint64_t sent = 0, acked = 0;
  double progress = now_us();
  while (sent < count) {
    uint32_t a;
    while (recv(fd, &a, sizeof a, MSG_DONTWAIT) == sizeof a) {
      if (a > acked) acked = a, progress = now_us();
    }
    uint64_t avail = window - (sent - acked);
    if (sent - acked >= window) {
      struct pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, STALL_MS) == 0 && now_us() - progress > STALL_MS * 1000) {
        acked = sent - sent % ACK_EVERY; /* a lost datagram holds the count back for good */
        progress = now_us();
      }
      continue;
    }
    uint64_t n = count - sent < avail ? count - sent : avail;
    if (n > batch) n = batch;
    ssize_t r;
    if (mode == M_SEND) {
      r = sendto(fd, buf, size, 0, (const struct sockaddr *)to, sizeof *to);
      if (r >= 0) sent++;
    } else if (mode == M_SENDMMSG) {
      r = sendmmsg(fd, msgs, (unsigned)n, 0);
      if (r > 0) sent += (uint64_t)r;
    } else {
      struct iovec one = {buf, size * n};
      struct msghdr h = {.msg_name = (void *)to, .msg_namelen = sizeof *to, .msg_iov = &one, .msg_iovlen = 1};
      if (n > 1) {
        h.msg_control = ctrl;
        h.msg_controllen = sizeof ctrl;
        struct cmsghdr *c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = IPPROTO_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = (uint16_t)size;
        memcpy(CMSG_DATA(c), &seg, sizeof seg);
      }
      r = sendmsg(fd, &h, 0);
      if (r >= 0) sent += n;
    }
    if (r < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR) die("send");
  }
  free(buf);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: udp-limit send|sendmmsg|gso|gso+gro [size] [count] [window] [sender] [receiver]\n");
    return 2;
  }
  int mode = -1;
  for (int m = 0; m < 4; m++)
    if (strcmp(argv[1], MODE_NAMES[m]) == 0) mode = m;
  if (mode < 0) {
    fprintf(stderr, "udp-limit: unknown mode %s\n", argv[1]);
    return 2;
  }
  size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 4112;
  uint64_t count = argc > 3 ? strtoull(argv[3], NULL, 10) : 100000;
  uint64_t window = argc > 4 ? strtoull(argv[4], NULL, 10) : 128;
  const char *src = argc > 5 ? argv[5] : "127.33.1.1";
  const char *dst = argc > 6 ? argv[6] : "127.33.1.2";
  if (size < 8 || size > MAX_UDP4_PAYLOAD || count == 0 || window == 0) {
    fprintf(stderr, "udp-limit: size 8..%d, count and window > 0\n", MAX_UDP4_PAYLOAD);
    return 2;
  }

  struct sockaddr_in rx_addr;
  int rx = udp_socket(dst, &rx_addr);
  int pipefd[2];
  if (pipe(pipefd) != 0) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(pipefd[0]);
    struct result r = receive(rx, (enum mode)mode, size, count);
    if (write(pipefd[1], &r, sizeof r) != sizeof r) die("write");
    _exit(0);
  }
  close(pipefd[1]);
  close(rx);
  struct sockaddr_in tx_addr;
  int tx = udp_socket(src, &tx_addr);
  struct rusage before, after;
  getrusage(RUSAGE_SELF, &before);
  transmit(tx, (enum mode)mode, size, count, window, &rx_addr);
  getrusage(RUSAGE_SELF, &after);
  struct result r;
  if (read(pipefd[0], &r, sizeof r) != sizeof r) die("read");
  int status;
  waitpid(child, &status, 0);
  double cpu = (after.ru_utime.tv_sec - before.ru_utime.tv_sec) * 1e6 + (after.ru_utime.tv_usec - before.ru_utime.tv_usec) +
               (after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1e6 + (after.ru_stime.tv_usec - before.ru_stime.tv_usec);
  double us = r.last_us - r.first_us;
  printf("{\"mode\":\"%s\",\"size\":%zu,\"count\":%llu,\"received\":%llu,\"lost\":%llu,\"us\":%.0f,\"gbps\":%.3f,\"sender_us_per_dgram\":%.2f}\n",
         MODE_NAMES[mode], size, (unsigned long long)count, (unsigned long long)r.received,
         (unsigned long long)(r.received < count ? count - r.received : 0), us, us > 0 ? r.received * size / us / 1e3 : 0, cpu / count);
  return 0;
}
