/*
 * mad-probe: sends a few management datagrams to a peer's QP1 (GSI) through the kernel's
 * user MAD interface (/dev/infiniband/umadN) and prints what comes back, to record how
 * Linux answers MADs that its CM does not handle. Run in the interop guest:
 *
 *   mad-probe [-d /dev/infiniband/umad0] [-g sgid_index] [-t timeout_ms] [-r retries] DEST_IP
 *
 * DEST_IP is an IPv4 (sent with GID ::ffff:a.b.c.d) or IPv6 address. Probes, in order:
 *   cm-get-cpi      CM class (0x07, version 2) Get(ClassPortInfo)            method 0x01 attr 0x0001
 *   cm-send-cpi     CM class Send(ClassPortInfo)                             method 0x03 attr 0x0001
 *   cm-send-unknown CM class Send of an attribute ib_cm has no handler for   method 0x03 attr 0x00ff
 *   perf-get-cpi    Performance Management (0x04, version 1) Get(ClassPortInfo)
 *   vendor-get      a vendor class (0x09, version 1) Get, attribute 0x0001
 * Each probe is sent with the given response timeout and retry count; the kernel's MAD layer
 * resends it when no response arrives in time, so the capture shows its retry timing too.
 * The agent is registered send-only (no class): responses reach it by the high 32 bits of the
 * transaction ID, which the kernel sets to the agent's own.
 * Prints one "PROBE name: ..." line per probe: the response's method, status and attribute, or
 * the send's final status (ETIMEDOUT when nothing answered). Exit status 0 when every probe
 * ended one way or the other.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <rdma/ib_user_mad.h>
#include <rdma/rdma_user_ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAD_SIZE 256
#define GSI_QKEY 0x80010000u

struct probe {
	const char *name;
	uint8_t mgmt_class, class_version, method;
	uint16_t attr_id;
};

static const struct probe probes[] = {
	{"cm-get-cpi", 0x07, 2, 0x01, 0x0001},
	{"cm-send-cpi", 0x07, 2, 0x03, 0x0001},
	{"cm-send-unknown", 0x07, 2, 0x03, 0x00ff},
	{"perf-get-cpi", 0x04, 1, 0x01, 0x0001},
	{"vendor-get", 0x09, 1, 0x01, 0x0001},
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "mad-probe: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/infiniband/umad0";
	int sgid_index = -1, timeout_ms = 1000, retries = 1, opt;
	while ((opt = getopt(argc, argv, "d:g:t:r:")) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'g': sgid_index = atoi(optarg); break;
		case 't': timeout_ms = atoi(optarg); break;
		case 'r': retries = atoi(optarg); break;
		default: fprintf(stderr, "usage: mad-probe [-d umad] [-g sgid_index] [-t ms] [-r retries] DEST_IP\n"); return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "mad-probe: DEST_IP missing\n");
		return 2;
	}
	uint8_t dgid[16] = {0};
	struct in_addr a4;
	if (inet_pton(AF_INET, argv[optind], &a4) == 1) {
		dgid[10] = dgid[11] = 0xff;
		memcpy(dgid + 12, &a4, 4);
		if (sgid_index < 0)
			sgid_index = 1;
	} else if (inet_pton(AF_INET6, argv[optind], dgid) == 1) {
		if (sgid_index < 0)
			sgid_index = 2;
	} else {
		fprintf(stderr, "mad-probe: bad address %s\n", argv[optind]);
		return 2;
	}

	int fd = open(dev, O_RDWR);
	if (fd < 0)
		die(dev);
	/* the header with pkey_index (the current ABI) */
	if (ioctl(fd, IB_USER_MAD_ENABLE_PKEY) < 0)
		die("IB_USER_MAD_ENABLE_PKEY");
	struct ib_user_mad_reg_req reg;
	memset(&reg, 0, sizeof reg);
	reg.qpn = 1; /* GSI; mgmt_class 0 = send-only agent */
	if (ioctl(fd, IB_USER_MAD_REGISTER_AGENT, &reg) < 0)
		die("IB_USER_MAD_REGISTER_AGENT");
	printf("agent %u on %s, sgid index %d, timeout %d ms, retries %d\n", reg.id, dev, sgid_index, timeout_ms, retries);

	size_t len = sizeof(struct ib_user_mad) + MAD_SIZE;
	struct ib_user_mad *out = calloc(1, len), *in = calloc(1, len);
	if (!out || !in)
		die("calloc");
	for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
		const struct probe *p = &probes[i];
		memset(out, 0, len);
		out->hdr.id = reg.id;
		out->hdr.timeout_ms = timeout_ms;
		out->hdr.retries = retries;
		out->hdr.qpn = htonl(1);
		out->hdr.qkey = htonl(GSI_QKEY);
		out->hdr.lid = htons(0xffff);
		out->hdr.grh_present = 1;
		out->hdr.gid_index = sgid_index;
		out->hdr.hop_limit = 64;
		memcpy(out->hdr.gid, dgid, 16);
		uint8_t *m = (uint8_t *)out->data;
		m[0] = 1; /* base version */
		m[1] = p->mgmt_class;
		m[2] = p->class_version;
		m[3] = p->method;
		uint32_t tid_lo = htonl(0x4d500000u + i); /* the kernel writes the high half */
		memcpy(m + 12, &tid_lo, 4);
		m[16] = p->attr_id >> 8;
		m[17] = p->attr_id & 0xff;
		double t0 = now_s();
		if (write(fd, out, len) != (ssize_t)len)
			die("write");
		/* A response (if any) and then the send's own completion come back as reads. A send that
		 * expects no response (method Send) completes at once. */
		int answered = 0, done = 0;
		while (!done) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			int wait_ms = timeout_ms * (retries + 1) + 3000;
			if (poll(&pfd, 1, wait_ms) <= 0) {
				printf("PROBE %s: nothing read within %d ms\n", p->name, wait_ms);
				break;
			}
			ssize_t n = read(fd, in, len);
			if (n < 0)
				die("read");
			uint8_t *r = (uint8_t *)in->data;
			double dt = now_s() - t0;
			if (in->hdr.status == 0 && n > (ssize_t)sizeof(struct ib_user_mad) && (r[3] & 0x80)) {
				uint64_t tid;
				memcpy(&tid, r + 8, 8);
				printf("PROBE %s: response after %.3f s: class 0x%02x version %u method 0x%02x status 0x%04x "
				       "attr 0x%04x tid 0x%016llx from qpn %u\n",
				       p->name, dt, r[1], r[2], r[3], (r[4] << 8) | r[5], (r[16] << 8) | r[17],
				       (unsigned long long)be64toh(tid), ntohl(in->hdr.qpn));
				answered = 1;
				if (p->method != 0x03)
					done = 1; /* the request's own completion is not reported once answered */
			} else {
				printf("PROBE %s: send completed after %.3f s with status %u (%s)%s\n", p->name, dt,
				       in->hdr.status, in->hdr.status ? strerror(in->hdr.status) : "ok",
				       answered ? "" : ", no response");
				done = 1;
			}
		}
		fflush(stdout);
	}
	return 0;
}
