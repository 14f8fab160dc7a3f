/*
 * softroce socket addon, the entry point of softroce_sockopt.node:
 *  - openUdpSocket / socketOptions: the UDP sockets the Node host adopts with dgram's
 *    bind({ fd }), with the options Node does not expose and RoCEv2 interoperability needs
 *    (udpsock.h says which and why).
 *  - Datapath / patchIcrcId: the native batched datapath (datapath.c).
 *  - schedYield: gives this thread's CPU to another runnable thread (the device worker's and the
 *    application thread's yielding looks: host/core/worker).
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "datapath.h"
#include "relay.h"
#include "udpsock.h"

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* openUdpSocket(family: 4 | 6, address: string, port: number, reuseAddr: boolean): fd */
static napi_value open_udp_socket(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "openUdpSocket(family, address, port, reuseAddr)");
    return NULL;
  }
  int32_t family = 0, port = 0;
  bool reuse = false;
  char addr[64];
  size_t addr_len = 0;
  if (napi_get_value_int32(env, argv[0], &family) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], addr, sizeof addr, &addr_len) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || napi_get_value_bool(env, argv[3], &reuse) != napi_ok) {
    napi_throw_type_error(env, NULL, "openUdpSocket: bad argument types");
    return NULL;
  }
  if ((family != 4 && family != 6) || port < 0 || port > 65535) {
    napi_throw_range_error(env, NULL, "openUdpSocket: family must be 4 or 6 and port 0..65535");
    return NULL;
  }
  udpsock_step step;
  int fd = udpsock_open(family, addr, port, reuse ? UDPSOCK_REUSEADDR : 0, &step);
  if (fd < 0) {
    if (step == UDPSOCK_AT_ADDRESS) {
      napi_throw_range_error(env, NULL, "openUdpSocket: not an address of that family");
      return NULL;
    }
    return throw_errno(env, udpsock_step_name(step), -fd);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

/* socketOptions(fd): { pmtuDiscover, noCheck6Rx, multicastIf6 } as the kernel reports them (-1 where not applicable). */
static napi_value socket_options(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "socketOptions(fd)");
    return NULL;
  }
  int v = 0;
  socklen_t len = sizeof v;
  int pmtu = getsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, &len) == 0 ? v : -1;
  v = 0;
  len = sizeof v;
  int nocheck = getsockopt(fd, IPPROTO_UDP, UDP_NO_CHECK6_RX, &v, &len) == 0 ? v : -1;
  v = 0;
  len = sizeof v;
  int mif6 = getsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v, &len) == 0 ? v : -1;
  napi_value obj, a, b, c;
  napi_create_object(env, &obj);
  napi_create_int32(env, pmtu, &a);
  napi_create_int32(env, nocheck, &b);
  napi_create_int32(env, mif6, &c);
  napi_set_named_property(env, obj, "pmtuDiscover", a);
  napi_set_named_property(env, obj, "noCheck6Rx", b);
  napi_set_named_property(env, obj, "multicastIf6", c);
  return obj;
}

/* schedYield(): sched_yield(), so that a thread looking for something another thread produces does
 * not keep a runnable one (on a busy machine, the producer) off this CPU for its time slice. */
static napi_value sched_yield_js(napi_env env, napi_callback_info info) {
  (void)info;
  sched_yield();
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openUdpSocket", NULL, open_udp_socket, NULL, NULL, NULL, napi_default, NULL},
      {"socketOptions", NULL, socket_options, NULL, NULL, NULL, napi_default, NULL},
      {"schedYield", NULL, sched_yield_js, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  datapath_init(env, exports);
  relay_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
