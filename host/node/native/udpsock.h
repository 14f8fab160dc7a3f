/* The UDP socket both the dgram-adopted socket (sockopt.c) and the native datapath
 * (datapath.c) start from, with the options RoCEv2 interoperability needs. */
#ifndef SOFTROCE_UDPSOCK_H
#define SOFTROCE_UDPSOCK_H

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

enum { UDPSOCK_REUSEADDR = 1, UDPSOCK_NONBLOCK = 2 };

/* Which step failed when udpsock_open returns a negative errno. */
typedef enum { UDPSOCK_AT_SOCKET, UDPSOCK_AT_SETSOCKOPT, UDPSOCK_AT_ADDRESS, UDPSOCK_AT_BIND } udpsock_step;

/*
 * A bound UDP socket: family 4 or 6, `address` in text form, `port` 0..65535.
 *  - IPv4: IP_MTU_DISCOVER = IP_PMTUDISC_DO, so Linux sends DF with IP ID 0 on an unconnected
 *    socket (the ICRC covers the ID; the default gives an unpredictable one).
 *  - IPv6: IPV6_V6ONLY and UDP_NO_CHECK6_RX, so datagrams with UDP checksum 0 (what Linux rxe
 *    sends) reach the socket instead of being dropped by the kernel.
 *  - Multicast leaves through the interface holding `address` (IP_MULTICAST_IF by address,
 *    IPV6_MULTICAST_IF by that interface's index) and loops back to members on this host; best
 *    effort (an interface without multicast, like IPv6 loopback, keeps the route's choice).
 * Returns the descriptor, or -errno with *step saying where (-EINVAL at UDPSOCK_AT_ADDRESS:
 * not an address of that family).
 */
int udpsock_open(int family, const char *address, int port, int flags, udpsock_step *step);

/* The system call a step names, for error messages: "socket", "setsockopt", "bind" (or "address"). */
const char *udpsock_step_name(udpsock_step step);

#endif
