/*
 * verbs-ops: memory-window and invalidation scenarios between two RC QPs,
 * run in the interop guests against Linux rdma_rxe so that the wire traffic
 * (and rxe's answers) can be captured. It prints every work completion it
 * polls, one "WC ..." line each, so the logs record what rxe completed with.
 *
 *   server (owns the memory):  verbs-ops -t SCENARIO [-d rxe0] [-g 1] [-p 18517]
 *   client (does the remote ops): verbs-ops -t SCENARIO [-d rxe0] [-g 1] [-p 18517] SERVER_IPV4
 *
 * Scenarios (the same name on both sides; the server checks it):
 *   mw2-inv    server binds a type-2 MW with IBV_WR_BIND_MW; client RDMA WRITEs and READs through
 *              it, then SENDs WITH INVALIDATE naming its rkey; then WRITEs to the invalidated rkey
 *   mw1        server binds a type-1 MW with ibv_bind_mw; client WRITEs and READs through it; the
 *              server unbinds it (ibv_bind_mw, length 0); the client WRITEs to the old rkey
 *   local-inv  server binds a type-2 MW; client WRITEs through it; the server invalidates it
 *              locally (IBV_WR_LOCAL_INV); the client WRITEs to it again
 *   inv-type1  server binds a type-1 MW; client WRITEs through it, then SENDs WITH INVALIDATE
 *              naming it (a type-1 window cannot be invalidated by a SEND)
 *   inv-mr     client WRITEs through the server MR's own rkey, then SENDs WITH INVALIDATE naming
 *              it (a registered user MR cannot be invalidated)
 *
 * Out-of-band exchange, in the style of ibv_rc_pingpong but line based so that it reads in a
 * capture: TCP to port 18517 (-p), text lines ending in '\n':
 *   client -> server  "VOPS <scenario> <qpn %06x> <psn %06x> <gid 32 hex>"
 *   server -> client  "VOPS <scenario> <qpn> <psn> <gid>"          (both QPs are now RTS)
 *   server -> client  "KEY <rkey %08x> <addr %016x> <length>"      (window or MR to use)
 *   then "STEP <what>" lines that order the two sides (each waits for the other's line),
 *   and "END" from the client.
 * Exit status 0 when the run got through every step (whatever rxe completed them with; the
 * WC lines say that), 1 on a setup or protocol failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <infiniband/verbs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 4096
#define WIN_OFF 1024 /* the window covers [WIN_OFF, WIN_OFF + WIN_LEN) of the server's MR */
#define WIN_LEN 1024
#define IO_LEN 64
#define RECV_LEN 256
#define POLL_MS 10000 /* longer than rxe's 7 retries at timeout 14 (7 x 67 ms), even under TCG */

struct ctx {
	struct ibv_context *dev;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	struct ibv_mw *mw;
	uint8_t *buf;
	int gid_index;
	int sock;
	FILE *in;
};

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("verbs-ops: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	va_end(ap);
}

/* ---- out-of-band lines */

static void send_line(struct ctx *c, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(c->sock, line + off, n - off);
		if (w <= 0)
			die("oob write: %s", strerror(errno));
		off += w;
	}
	say("OOB sent: %.*s", n - 1, line);
}

static void recv_line(struct ctx *c, char *line, size_t size)
{
	if (!fgets(line, size, c->in))
		die("oob: peer closed the connection");
	line[strcspn(line, "\n")] = 0;
	say("OOB got:  %s", line);
}

static void expect_step(struct ctx *c, const char *step)
{
	char line[256], want[128];
	snprintf(want, sizeof want, "STEP %s", step);
	recv_line(c, line, sizeof line);
	if (strcmp(line, want) != 0)
		die("oob: expected \"%s\", got \"%s\"", want, line);
}

/* ---- completions */

static const char *wc_opcode_name(enum ibv_wc_opcode op)
{
	switch (op) {
	case IBV_WC_SEND: return "SEND";
	case IBV_WC_RDMA_WRITE: return "RDMA_WRITE";
	case IBV_WC_RDMA_READ: return "RDMA_READ";
	case IBV_WC_COMP_SWAP: return "COMP_SWAP";
	case IBV_WC_FETCH_ADD: return "FETCH_ADD";
	case IBV_WC_BIND_MW: return "BIND_MW";
	case IBV_WC_LOCAL_INV: return "LOCAL_INV";
	case IBV_WC_RECV: return "RECV";
	case IBV_WC_RECV_RDMA_WITH_IMM: return "RECV_RDMA_WITH_IMM";
	default: return "?";
	}
}

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/*
 * Polls one completion (POLL_MS at most) and prints it. The opcode of a
 * completion with an error status is undefined in verbs, so it is printed
 * but must not be trusted. Returns the status, or -1 when nothing came.
 */
static int poll_one(struct ctx *c, const char *what)
{
	struct ibv_wc wc;
	long deadline = now_ms() + POLL_MS;
	for (;;) {
		int n = ibv_poll_cq(c->cq, 1, &wc);
		if (n < 0)
			die("ibv_poll_cq failed");
		if (n == 1)
			break;
		if (now_ms() > deadline) {
			say("WC %s: none within %d ms", what, POLL_MS);
			return -1;
		}
		usleep(1000);
	}
	char flags[96] = "";
	if (wc.wc_flags & IBV_WC_GRH)
		strcat(flags, "|GRH");
	if (wc.wc_flags & IBV_WC_WITH_IMM)
		strcat(flags, "|WITH_IMM");
	/* rxe 6.1 writes the kernel's IB_WC_WITH_INVALIDATE (1 << 2) into the user CQ ring, where
	 * libibverbs reads bit 2 as IBV_WC_IP_CSUM_OK (IBV_WC_WITH_INV is 1 << 3): name both */
	if (wc.wc_flags & IBV_WC_IP_CSUM_OK)
		strcat(flags, "|IP_CSUM_OK(bit2=kernel IB_WC_WITH_INVALIDATE)");
	if (wc.wc_flags & IBV_WC_WITH_INV)
		strcat(flags, "|WITH_INV");
	say("WC %s: wr_id=%" PRIu64 " status=%s(%d) opcode=%s(%d) vendor_err=0x%x byte_len=%u qp_num=0x%06x "
	    "wc_flags=0x%x%s%s",
	    what, wc.wr_id, ibv_wc_status_str(wc.status), wc.status, wc_opcode_name(wc.opcode), wc.opcode,
	    wc.vendor_err, wc.byte_len, wc.qp_num, wc.wc_flags, flags[0] ? " " : "", flags[0] ? flags + 1 : "");
	/* imm_data / invalidated_rkey share one word: print it for every receive */
	if (wc.opcode & IBV_WC_RECV)
		say("WC %s: invalidated_rkey/imm_data word=0x%08x", what, wc.invalidated_rkey);
	return wc.status;
}

/* Prints whatever else completes within ms (flushed receives after an error, for instance). */
static void drain(struct ctx *c, const char *what, int ms)
{
	struct ibv_wc wc;
	long deadline = now_ms() + ms;
	while (now_ms() < deadline) {
		int n = ibv_poll_cq(c->cq, 1, &wc);
		if (n < 0)
			die("ibv_poll_cq failed");
		if (n == 0) {
			usleep(2000);
			continue;
		}
		say("WC %s: wr_id=%" PRIu64 " status=%s(%d) opcode=%s(%d) byte_len=%u wc_flags=0x%x", what, wc.wr_id,
		    ibv_wc_status_str(wc.status), wc.status, wc_opcode_name(wc.opcode), wc.opcode, wc.byte_len,
		    wc.wc_flags);
	}
}

static void qp_state(struct ctx *c, const char *who)
{
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr ia;
	if (ibv_query_qp(c->qp, &a, IBV_QP_STATE, &ia))
		die("ibv_query_qp: %s", strerror(errno));
	static const char *names[] = {"RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR"};
	say("QP %s: state %s", who, a.qp_state <= IBV_QPS_ERR ? names[a.qp_state] : "?");
}

/* ---- posting */

static void post_rdma(struct ctx *c, enum ibv_wr_opcode op, uint64_t wr_id, uint32_t local_off, uint64_t raddr,
		      uint32_t rkey)
{
	struct ibv_sge sge = {.addr = (uintptr_t)(c->buf + local_off), .length = IO_LEN, .lkey = c->mr->lkey};
	struct ibv_send_wr wr = {.wr_id = wr_id, .sg_list = &sge, .num_sge = 1, .opcode = op,
				 .send_flags = IBV_SEND_SIGNALED};
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	struct ibv_send_wr *bad;
	if (ibv_post_send(c->qp, &wr, &bad))
		die("ibv_post_send(%d): %s", op, strerror(errno));
}

static void post_send_inv(struct ctx *c, uint64_t wr_id, uint32_t rkey)
{
	strcpy((char *)c->buf + 3072, "send with invalidate");
	struct ibv_sge sge = {.addr = (uintptr_t)(c->buf + 3072), .length = 20, .lkey = c->mr->lkey};
	struct ibv_send_wr wr = {.wr_id = wr_id, .sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_SEND_WITH_INV,
				 .send_flags = IBV_SEND_SIGNALED};
	wr.invalidate_rkey = rkey;
	struct ibv_send_wr *bad;
	if (ibv_post_send(c->qp, &wr, &bad))
		die("ibv_post_send(SEND_WITH_INV): %s", strerror(errno));
}

static void post_recvs(struct ctx *c, int n)
{
	for (int i = 0; i < n; i++) {
		struct ibv_sge sge = {.addr = (uintptr_t)(c->buf + 3072 + i * RECV_LEN / 2), .length = RECV_LEN / 2,
				      .lkey = c->mr->lkey};
		struct ibv_recv_wr wr = {.wr_id = 100 + i, .sg_list = &sge, .num_sge = 1}, *bad;
		if (ibv_post_recv(c->qp, &wr, &bad))
			die("ibv_post_recv: %s", strerror(errno));
	}
}

/* Type 2: a BIND_MW work request on the server's own send queue (the window is then tied to this QP). */
static uint32_t bind_type2(struct ctx *c)
{
	c->mw = ibv_alloc_mw(c->pd, IBV_MW_TYPE_2);
	if (!c->mw)
		die("ibv_alloc_mw(type 2): %s", strerror(errno));
	uint32_t rkey = ibv_inc_rkey(c->mw->rkey);
	say("MW type 2 allocated: rkey 0x%08x, binding with rkey 0x%08x", c->mw->rkey, rkey);
	struct ibv_send_wr wr = {.wr_id = 1, .opcode = IBV_WR_BIND_MW, .send_flags = IBV_SEND_SIGNALED};
	wr.bind_mw.mw = c->mw;
	wr.bind_mw.rkey = rkey;
	wr.bind_mw.bind_info.mr = c->mr;
	wr.bind_mw.bind_info.addr = (uintptr_t)(c->buf + WIN_OFF);
	wr.bind_mw.bind_info.length = WIN_LEN;
	wr.bind_mw.bind_info.mw_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
	struct ibv_send_wr *bad;
	if (ibv_post_send(c->qp, &wr, &bad))
		die("ibv_post_send(BIND_MW): %s", strerror(errno));
	if (poll_one(c, "server BIND_MW (type 2)") != IBV_WC_SUCCESS)
		die("binding the type-2 window failed");
	return rkey;
}

/* Type 1: ibv_bind_mw (rxe's provider turns it into a BIND_MW WQE too); length 0 unbinds. */
static uint32_t bind_type1(struct ctx *c, uint64_t length, const char *what)
{
	if (!c->mw) {
		c->mw = ibv_alloc_mw(c->pd, IBV_MW_TYPE_1);
		if (!c->mw)
			die("ibv_alloc_mw(type 1): %s", strerror(errno));
		say("MW type 1 allocated: rkey 0x%08x", c->mw->rkey);
	}
	struct ibv_mw_bind b = {.wr_id = 2, .send_flags = IBV_SEND_SIGNALED};
	b.bind_info.mr = c->mr;
	b.bind_info.addr = (uintptr_t)(c->buf + WIN_OFF);
	b.bind_info.length = length;
	b.bind_info.mw_access_flags = length ? IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ : 0;
	if (ibv_bind_mw(c->qp, c->mw, &b))
		die("ibv_bind_mw: %s", strerror(errno));
	say("ibv_bind_mw(length %" PRIu64 "): new rkey 0x%08x", length, c->mw->rkey);
	if (poll_one(c, what) != IBV_WC_SUCCESS)
		die("%s failed", what);
	return c->mw->rkey;
}

static void local_inv(struct ctx *c, uint32_t rkey)
{
	struct ibv_send_wr wr = {.wr_id = 3, .opcode = IBV_WR_LOCAL_INV, .send_flags = IBV_SEND_SIGNALED};
	wr.invalidate_rkey = rkey;
	struct ibv_send_wr *bad;
	if (ibv_post_send(c->qp, &wr, &bad))
		die("ibv_post_send(LOCAL_INV): %s", strerror(errno));
	poll_one(c, "server LOCAL_INV");
}

/* ---- setup */

static void gid_hex(const union ibv_gid *g, char *out)
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", g->raw[i]);
}

static void hex_gid(const char *s, union ibv_gid *g)
{
	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			die("bad gid %s", s);
		g->raw[i] = v;
	}
}

static void open_device(struct ctx *c, const char *name)
{
	int n;
	struct ibv_device **list = ibv_get_device_list(&n);
	if (!list)
		die("ibv_get_device_list: %s", strerror(errno));
	for (int i = 0; i < n && !c->dev; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			c->dev = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!c->dev)
		die("no device %s", name);
	struct ibv_device_attr da;
	if (ibv_query_device(c->dev, &da))
		die("ibv_query_device");
	say("device %s: max_mw %d, MEM_WINDOW %d, MEM_WINDOW_TYPE_2A %d, MEM_WINDOW_TYPE_2B %d", name, da.max_mw,
	    !!(da.device_cap_flags & IBV_DEVICE_MEM_WINDOW), !!(da.device_cap_flags & IBV_DEVICE_MEM_WINDOW_TYPE_2A),
	    !!(da.device_cap_flags & IBV_DEVICE_MEM_WINDOW_TYPE_2B));
	c->pd = ibv_alloc_pd(c->dev);
	c->cq = ibv_create_cq(c->dev, 32, NULL, NULL, 0);
	if (posix_memalign((void **)&c->buf, 4096, BUF_SIZE))
		die("no memory");
	memset(c->buf, 0xaa, BUF_SIZE);
	c->mr = ibv_reg_mr(c->pd, c->buf, BUF_SIZE,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_MW_BIND);
	if (!c->pd || !c->cq || !c->mr)
		die("pd/cq/mr: %s", strerror(errno));
	struct ibv_qp_init_attr ia = {.send_cq = c->cq, .recv_cq = c->cq, .qp_type = IBV_QPT_RC,
				      .cap = {.max_send_wr = 16, .max_recv_wr = 16, .max_send_sge = 1, .max_recv_sge = 1}};
	c->qp = ibv_create_qp(c->pd, &ia);
	if (!c->qp)
		die("ibv_create_qp: %s", strerror(errno));
	struct ibv_qp_attr a = {.qp_state = IBV_QPS_INIT, .pkey_index = 0, .port_num = 1,
				.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ};
	if (ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("INIT: %s", strerror(errno));
}

static void connect_qp(struct ctx *c, uint32_t psn, uint32_t rqpn, uint32_t rpsn, const union ibv_gid *rgid)
{
	struct ibv_qp_attr a = {.qp_state = IBV_QPS_RTR, .path_mtu = IBV_MTU_1024, .dest_qp_num = rqpn,
				.rq_psn = rpsn, .max_dest_rd_atomic = 1, .min_rnr_timer = 12};
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = *rgid;
	a.ah_attr.grh.sgid_index = c->gid_index;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
					     IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("RTR: %s", strerror(errno));
	struct ibv_qp_attr r = {.qp_state = IBV_QPS_RTS, .timeout = 14, .retry_cnt = 7, .rnr_retry = 7, .sq_psn = psn,
				.max_rd_atomic = 1};
	if (ibv_modify_qp(c->qp, &r, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
					     IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
		die("RTS: %s", strerror(errno));
}

/* Exchanges QPN/PSN/GID lines and brings the QP to RTS. */
static void exchange(struct ctx *c, const char *scenario, int server)
{
	union ibv_gid gid, rgid;
	char g[33], line[256], rscen[32], rg[64];
	unsigned rqpn, rpsn;
	if (ibv_query_gid(c->dev, 1, c->gid_index, &gid))
		die("ibv_query_gid(%d)", c->gid_index);
	gid_hex(&gid, g);
	uint32_t psn = (uint32_t)(now_ms() * 2654435761u) & 0xffffff;
	if (server) {
		recv_line(c, line, sizeof line);
		if (sscanf(line, "VOPS %31s %x %x %63s", rscen, &rqpn, &rpsn, rg) != 4 || strcmp(rscen, scenario))
			die("client asked for \"%s\"", line);
		send_line(c, "VOPS %s %06x %06x %s", scenario, c->qp->qp_num, psn, g);
	} else {
		send_line(c, "VOPS %s %06x %06x %s", scenario, c->qp->qp_num, psn, g);
		recv_line(c, line, sizeof line);
		if (sscanf(line, "VOPS %31s %x %x %63s", rscen, &rqpn, &rpsn, rg) != 4 || strcmp(rscen, scenario))
			die("server answered \"%s\"", line);
	}
	hex_gid(rg, &rgid);
	say("local QPN 0x%06x PSN 0x%06x GID %s; remote QPN 0x%06x PSN 0x%06x GID %s", c->qp->qp_num, psn, g, rqpn,
	    rpsn, rg);
	if (server)
		post_recvs(c, 2);
	connect_qp(c, psn, rqpn, rpsn, &rgid);
}

/* ---- the two sides */

static void server(struct ctx *c, const char *s)
{
	char line[256];
	uint32_t rkey;
	uint64_t addr = (uintptr_t)(c->buf + WIN_OFF), len = WIN_LEN;
	if (!strcmp(s, "mw2-inv") || !strcmp(s, "local-inv"))
		rkey = bind_type2(c);
	else if (!strcmp(s, "mw1") || !strcmp(s, "inv-type1"))
		rkey = bind_type1(c, WIN_LEN, "server BIND_MW (type 1)");
	else {
		rkey = c->mr->rkey, addr = (uintptr_t)c->buf, len = BUF_SIZE;
		say("MR rkey 0x%08x lkey 0x%08x (no window)", c->mr->rkey, c->mr->lkey);
	}
	send_line(c, "KEY %08x %016" PRIx64 " %" PRIu64, rkey, addr, len);

	if (!strcmp(s, "mw2-inv")) {
		expect_step(c, "sent-inv");
		poll_one(c, "server RECV of SEND_WITH_INV");
		say("server window bytes: \"%.*s\"", 16, (char *)c->buf + WIN_OFF);
		send_line(c, "STEP invalidated");
	} else if (!strcmp(s, "mw1")) {
		expect_step(c, "rw-done");
		say("server window bytes: \"%.*s\"", 16, (char *)c->buf + WIN_OFF);
		bind_type1(c, 0, "server BIND_MW (type 1, length 0 = unbind)");
		send_line(c, "STEP unbound");
	} else if (!strcmp(s, "local-inv")) {
		expect_step(c, "w-done");
		local_inv(c, rkey);
		send_line(c, "STEP invalidated");
	} else {
		expect_step(c, "sent-inv");
		poll_one(c, "server RECV of SEND_WITH_INV");
		qp_state(c, "server");
		send_line(c, "STEP received");
	}
	recv_line(c, line, sizeof line);
	if (strcmp(line, "END"))
		die("expected END, got \"%s\"", line);
	/* what the responder's error (if any) did to the receive still posted */
	drain(c, "server (after END)", 500);
	qp_state(c, "server");
}

static void client(struct ctx *c, const char *s)
{
	char line[256];
	uint32_t rkey;
	uint64_t addr, len;
	recv_line(c, line, sizeof line);
	if (sscanf(line, "KEY %x %" SCNx64 " %" SCNu64, &rkey, &addr, &len) != 3)
		die("bad KEY line");
	snprintf((char *)c->buf, IO_LEN, "verbs-ops %s write", s);
	post_rdma(c, IBV_WR_RDMA_WRITE, 10, 0, addr, rkey);
	poll_one(c, "client RDMA_WRITE through the key");

	if (!strcmp(s, "mw2-inv") || !strcmp(s, "mw1")) {
		post_rdma(c, IBV_WR_RDMA_READ, 11, 1024, addr, rkey);
		poll_one(c, "client RDMA_READ through the key");
		say("client read back: \"%.*s\" (%s)", 24, (char *)c->buf + 1024,
		    memcmp(c->buf, c->buf + 1024, IO_LEN) ? "DIFFERS" : "same as written");
	}
	if (!strcmp(s, "mw2-inv")) {
		post_send_inv(c, 12, rkey);
		poll_one(c, "client SEND_WITH_INV");
		send_line(c, "STEP sent-inv");
		expect_step(c, "invalidated");
	} else if (!strcmp(s, "mw1")) {
		send_line(c, "STEP rw-done");
		expect_step(c, "unbound");
	} else if (!strcmp(s, "local-inv")) {
		send_line(c, "STEP w-done");
		expect_step(c, "invalidated");
	} else {
		post_send_inv(c, 12, rkey);
		poll_one(c, "client SEND_WITH_INV");
		qp_state(c, "client");
		send_line(c, "STEP sent-inv");
		expect_step(c, "received");
	}
	if (!strcmp(s, "mw2-inv") || !strcmp(s, "mw1") || !strcmp(s, "local-inv")) {
		post_rdma(c, IBV_WR_RDMA_WRITE, 13, 0, addr, rkey);
		poll_one(c, "client RDMA_WRITE after invalidation");
		qp_state(c, "client");
	}
	send_line(c, "END");
}

int main(int argc, char **argv)
{
	struct ctx c = {.gid_index = 1};
	const char *devname = "rxe0", *scenario = NULL, *port = "18517";
	int opt;
	while ((opt = getopt(argc, argv, "d:g:p:t:")) != -1) {
		switch (opt) {
		case 'd': devname = optarg; break;
		case 'g': c.gid_index = atoi(optarg); break;
		case 'p': port = optarg; break;
		case 't': scenario = optarg; break;
		default: die("usage: verbs-ops -t SCENARIO [-d dev] [-g gid_index] [-p port] [server_ipv4]");
		}
	}
	static const char *known[] = {"mw2-inv", "mw1", "local-inv", "inv-type1", "inv-mr"};
	int ok = 0;
	for (size_t i = 0; scenario && i < sizeof known / sizeof *known; i++)
		ok |= !strcmp(scenario, known[i]);
	if (!ok)
		die("-t must name one of: mw2-inv mw1 local-inv inv-type1 inv-mr");
	const char *peer = optind < argc ? argv[optind] : NULL;

	open_device(&c, devname);
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = peer ? 0 : AI_PASSIVE},
			*ai;
	if (getaddrinfo(peer, port, &hints, &ai))
		die("getaddrinfo");
	if (peer) {
		c.sock = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c.sock, ai->ai_addr, ai->ai_addrlen))
			die("connect %s:%s: %s", peer, port, strerror(errno));
	} else {
		int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(l, ai->ai_addr, ai->ai_addrlen) || listen(l, 1))
			die("listen on %s: %s", port, strerror(errno));
		say("listening on TCP %s", port);
		c.sock = accept(l, NULL, NULL);
		close(l);
		if (c.sock < 0)
			die("accept: %s", strerror(errno));
	}
	freeaddrinfo(ai);
	c.in = fdopen(dup(c.sock), "r");
	say("scenario %s, %s, GID index %d", scenario, peer ? "client" : "server", c.gid_index);
	exchange(&c, scenario, !peer);
	if (peer)
		client(&c, scenario);
	else
		server(&c, scenario);
	say("done");
	return 0;
}
