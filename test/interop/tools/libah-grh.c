// An LD_PRELOAD shim for the interop guest (built into /usr/lib/libah-grh.so): an address handle asked
// for without a GRH gets the one a RoCE port needs, so that librdmacm's datagram rsockets run over rxe.
// rsocket.c's ds_add_qp_dest makes an AH to its QP's own port from the port's LID alone, which rxe (as
// any RoCE device) refuses with EINVAL: rconnect fails, and a server drops every first datagram. That AH
// carries the QP's datagrams to itself, so the GRH names the port's own GID as source and destination:
// the one at AH_GRH_SGID_INDEX (default 1, rxe's IPv4 GID; 2 its IPv6 one). Every other AH goes through
// as it was asked for.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <infiniband/verbs.h>

typedef struct ibv_ah *(*create_ah_fn)(struct ibv_pd *, struct ibv_ah_attr *);

struct ibv_ah *ibv_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr)
{
	static create_ah_fn next;
	struct ibv_ah_attr with_grh;
	const char *index = getenv("AH_GRH_SGID_INDEX");

	if (!next)
		next = (create_ah_fn)dlsym(RTLD_NEXT, "ibv_create_ah");
	if (!next)
		return NULL;
	if (attr->is_global)
		return next(pd, attr);
	with_grh = *attr;
	with_grh.is_global = 1;
	with_grh.grh.sgid_index = index ? (uint8_t)atoi(index) : 1;
	with_grh.grh.hop_limit = 64;
	if (ibv_query_gid(pd->context, with_grh.port_num, with_grh.grh.sgid_index, &with_grh.grh.dgid))
		return NULL;
	return next(pd, &with_grh);
}
