/* The UDP socket both the dgram-adopted socket (sockopt.c) and the native datapath
 * (datapath.c) start from, with the options RoCEv2 interoperability needs. */
#ifndef SOFTROCE_UDPSOCK_H
#define SOFTROCE_UDPSOCK_H

#include <stdint.h>

#ifndef UDP_NO_CHECK6_TX
#define UDP_NO_CHECK6_TX 101
#endif
#ifndef UDP_NO_CHECK6_RX
#define UDP_NO_CHECK6_RX 102
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
/* linux/in6.h's, which glibc's netinet/in.h does not carry */
#ifndef IPV6_FLOWINFO_SEND
#define IPV6_FLOWINFO_SEND 33
#endif
#ifndef IPV6_AUTOFLOWLABEL
#define IPV6_AUTOFLOWLABEL 70
#endif

enum { UDPSOCK_REUSEADDR = 1, UDPSOCK_NONBLOCK = 2 };

/* Which step failed when udpsock_open returns a negative errno. */
typedef enum { UDPSOCK_AT_SOCKET, UDPSOCK_AT_SETSOCKOPT, UDPSOCK_AT_ADDRESS, UDPSOCK_AT_BIND } udpsock_step;

/*
 * A bound UDP socket: family 4 or 6, `address` in text form, `port` 0..65535.
 *  - IPv4: IP_MTU_DISCOVER = IP_PMTUDISC_DO, so Linux sends DF with IP ID 0 on an unconnected
 *    socket (the ICRC covers the ID; the default gives an unpredictable one).
 *  - IPv6: IPV6_V6ONLY and UDP_NO_CHECK6_RX, so datagrams with UDP checksum 0 (what Linux rxe
 *    sends) reach the socket instead of being dropped by the kernel. Best effort (udpsock_flow_label
 *    says whether it took): IPV6_FLOWINFO_SEND on and IPV6_AUTOFLOWLABEL off, so the flow label of
 *    each datagram is the destination's sin6_flowinfo (the address handle's; 0 stays 0, as rxe's).
 *  - Multicast leaves through the interface holding `address` (IP_MULTICAST_IF by address,
 *    IPV6_MULTICAST_IF by that interface's index) and loops back to members on this host; best
 *    effort (an interface without multicast, like IPv6 loopback, keeps the route's choice).
 * Returns the descriptor, or -errno with *step saying where (-EINVAL at UDPSOCK_AT_ADDRESS:
 * not an address of that family).
 */
int udpsock_open(int family, const char *address, int port, int flags, udpsock_step *step);

/* 1 when IPv6 socket `fd` sends the flow label its sendmsg destination carries (and no automatic one). */
int udpsock_flow_label(int fd);

/* The GID and UDP port of a socket address: an IPv6 address as it is, an IPv4 one mapped (::ffff:a.b.c.d),
 * as RoCEv2 names an IPv4 peer. */
struct sockaddr_in6;
void udpsock_gid_of(const struct sockaddr_in6 *sa, uint8_t gid[16], uint16_t *port);

/* The system call a step names, for error messages: "socket", "setsockopt", "bind" (or "address"). */
const char *udpsock_step_name(udpsock_step step);

#endif
