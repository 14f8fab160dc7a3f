/* See udpsock.h. */
#define _GNU_SOURCE
#include "udpsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(int fd, udpsock_step at, udpsock_step *step, int err) {
  close(fd);
  *step = at;
  return -err;
}

/* The index of the interface holding IPv6 address `a`, or 0. */
static unsigned ipv6_ifindex(const struct in6_addr *a) {
  struct ifaddrs *list = NULL;
  unsigned idx = 0;
  if (getifaddrs(&list) != 0) return 0;
  for (struct ifaddrs *i = list; i && !idx; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET6) continue;
    if (memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, a, sizeof *a) == 0) idx = if_nametoindex(i->ifa_name);
  }
  freeifaddrs(list);
  return idx;
}

/* Multicast's TTL / hop limit when a datagram carries none of its own (node:dgram sends from these
 * sockets with no control message): rxe's, the address handle's 64, not the socket default of 1. */
#define MULTICAST_TTL 64

/* Multicast out of the interface holding the bound address, looped back here (best effort). */
static void set_multicast_if(int fd, int family, const void *addr) {
  int one = 1, ttl = MULTICAST_TTL;
  if (family == 4) {
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, addr, sizeof(struct in_addr));
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
    return;
  }
  unsigned idx = ipv6_ifindex(addr);
  if (idx) setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
  setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one);
  setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl);
}

int udpsock_open(int family, const char *address, int port, int flags, udpsock_step *step) {
  int type = SOCK_DGRAM | SOCK_CLOEXEC | ((flags & UDPSOCK_NONBLOCK) ? SOCK_NONBLOCK : 0);
  int fd = socket(family == 4 ? AF_INET : AF_INET6, type, 0);
  if (fd < 0) {
    *step = UDPSOCK_AT_SOCKET;
    return -errno;
  }
  int one = 1;
  if ((flags & UDPSOCK_REUSEADDR) && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    return fail(fd, UDPSOCK_AT_SETSOCKOPT, step, errno);
  if (family == 4) {
    int pmtu = IP_PMTUDISC_DO;
    if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu) != 0) return fail(fd, UDPSOCK_AT_SETSOCKOPT, step, errno);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, address, &sa.sin_addr) != 1) return fail(fd, UDPSOCK_AT_ADDRESS, step, EINVAL);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) return fail(fd, UDPSOCK_AT_BIND, step, errno);
    set_multicast_if(fd, 4, &sa.sin_addr);
  } else {
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) return fail(fd, UDPSOCK_AT_SETSOCKOPT, step, errno);
    if (setsockopt(fd, IPPROTO_UDP, UDP_NO_CHECK6_RX, &one, sizeof one) != 0) return fail(fd, UDPSOCK_AT_SETSOCKOPT, step, errno);
    /* the flow label from sin6_flowinfo, none made up by the kernel (best effort: udpsock_flow_label) */
    int zero = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_FLOWINFO_SEND, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, &zero, sizeof zero);
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, address, &sa.sin6_addr) != 1) return fail(fd, UDPSOCK_AT_ADDRESS, step, EINVAL);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) return fail(fd, UDPSOCK_AT_BIND, step, errno);
    set_multicast_if(fd, 6, &sa.sin6_addr);
  }
  return fd;
}

int udpsock_flow_label(int fd) {
  int send = 0, autolabel = 1;
  socklen_t l = sizeof send;
  if (getsockopt(fd, IPPROTO_IPV6, IPV6_FLOWINFO_SEND, &send, &l) != 0) return 0;
  l = sizeof autolabel;
  if (getsockopt(fd, IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, &autolabel, &l) != 0) return 0;
  return send == 1 && autolabel == 0;
}

const char *udpsock_step_name(udpsock_step step) {
  switch (step) {
    case UDPSOCK_AT_SOCKET: return "socket";
    case UDPSOCK_AT_SETSOCKOPT: return "setsockopt";
    case UDPSOCK_AT_BIND: return "bind";
    default: return "address";
  }
}

void udpsock_gid_of(const struct sockaddr_in6 *sa, uint8_t gid[16], uint16_t *port) {
  if (sa->sin6_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    memset(gid, 0, 10);
    gid[10] = gid[11] = 0xff;
    memcpy(gid + 12, &s4->sin_addr, 4);
    *port = ntohs(s4->sin_port);
  } else {
    memcpy(gid, &sa->sin6_addr, 16);
    *port = ntohs(sa->sin6_port);
  }
}
