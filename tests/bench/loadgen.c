// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * loadgen: simulated wg-dynamic clients for tests/bench/throughput.sh.
 *
 *   loadgen setup N IFACE WGCONF IPBATCH
 *   loadgen grant IFACE N CONC LEASES
 *   loadgen renew IFACE N CONC LEASES
 *
 * Client i (0 <= i < N) is the link-local address fe80::1:0:HI:LO, where HI
 * and LO are the two halves of i, together with a random public key that
 * has that address as its only allowed-IP. The peers never handshake: the
 * clients live on the hub's own interface, so their connections to
 * [fe80::%IFACE]:970 are delivered locally, and wireguard-go only serves the
 * server's allowed-IPs updates.
 *
 * setup writes WGCONF, a configuration for wg setconf with the N peers (so
 * that it also resets their allowed-IPs between runs), and IPBATCH, an
 * ip -batch file that adds the N addresses to IFACE.
 *
 * grant makes every client ask once for any IPv4 and IPv6 address, as a
 * client without a lease does, and writes what each was granted to LEASES.
 * renew makes every client ask again for the addresses in LEASES, with their
 * leasestart and leasetime, as a bound client does; a client that was
 * granted nothing asks as grant does. CONC connections are open at once.
 * Each connection binds [LL%IFACE]:970, sends the request, reads the whole
 * response and then closes abortively (SO_LINGER 0), as wg-dynamic-client
 * does.
 *
 * Both print one line of figures:
 *   requests=N answered=A errno=E failed=F changed=C seconds=S rate=R
 *   p50_us=P p99_us=Q first_error=TEXT
 * answered counts whole responses, errno= those with a non-zero errno,
 * failed the connections that gave no whole response (refused, reset,
 * closed early, timed out, unparsable), changed the renewals answered with
 * other addresses than asked for, rate the answered requests per second;
 * latencies run from socket() to the last byte of a response. The exit
 * status is 0 when the storm ran, whatever its errors, and 1 when it could
 * not run at all.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "../../common/key.h"
#include "../../protocol/ipaddr.h"
#include "../../protocol/proto.h"

#define SIMCLIENT_PROG "loadgen"
#include "simclient.h"

#define MAX_CLIENTS (1u << 24)
#define MAX_CONC 4096
/* Generous: a grant whose device update takes tens of milliseconds, queued
 * behind 127 others, is slow, not failed. */
#define TIMEOUT_US (60 * 1000000ull)

struct lease_rec {
	struct wgd_ip ip4, ip6; /* family 0: none */
	uint32_t leasestart, leasetime;
};

enum slot_state { SLOT_CONNECTING, SLOT_SENDING, SLOT_READING };

struct slot {
	int fd; /* -1: free */
	enum slot_state state;
	uint32_t client;
	uint64_t start_us;
	size_t sent;
	struct wgd_parser parser;
};

struct storm {
	unsigned ifindex;
	uint32_t n, conc, next;
	bool renew;
	struct lease_rec *leases;
	uint32_t *latency_us;
	uint32_t answered, errno_nonzero, failed, changed;
	char first_error[128];
	int epfd;
};

/* ---- setup ---- */

static int setup(uint32_t n, const char *ifname, const char *conf_path, const char *batch_path)
{
	FILE *conf = fopen(conf_path, "w"), *batch = fopen(batch_path, "w");
	uint8_t key[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN], ab[INET6_ADDRSTRLEN];
	struct in6_addr ll;
	int ret = 0;

	if (!conf || !batch) {
		perror("loadgen: setup");
		ret = -1;
		goto out;
	}
	/* No [Interface] keys: wg setconf then keeps the device's own. */
	fputs("[Interface]\n", conf);
	for (uint32_t i = 0; i < n; i++) {
		randombytes_buf(key, sizeof(key));
		wgkey_to_base64(b64, key);
		client_ll(&ll, i);
		inet_ntop(AF_INET6, &ll, ab, sizeof(ab));
		fprintf(conf, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/128\n", b64, ab);
		fprintf(batch, "address add %s/128 dev %s nodad\n", ab, ifname);
	}
out:
	if (conf && fclose(conf))
		ret = -1;
	if (batch && fclose(batch))
		ret = -1;
	return ret;
}

/* ---- lease file: one line per client, "IP4 IP6 LEASESTART LEASETIME", "-" for none ---- */

static int leases_write(const char *path, const struct lease_rec *l, uint32_t n)
{
	FILE *f = fopen(path, "w");
	char b4[WGD_IP_STRLEN], b6[WGD_IP_STRLEN];

	if (!f) {
		perror(path);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		fprintf(f, "%s %s %u %u\n",
			l[i].ip4.family ? wgd_ip_format(&l[i].ip4, b4, sizeof(b4)) : "-",
			l[i].ip6.family ? wgd_ip_format(&l[i].ip6, b6, sizeof(b6)) : "-",
			l[i].leasestart, l[i].leasetime);
	}
	if (fclose(f)) {
		perror(path);
		return -1;
	}
	return 0;
}

static int parse_ip_field(struct wgd_ip *ip, const char *s)
{
	memset(ip, 0, sizeof(*ip));
	return strcmp(s, "-") ? wgd_ip_parse(ip, s, strlen(s), false) : 0;
}

static int leases_read(const char *path, struct lease_rec *l, uint32_t n)
{
	FILE *f = fopen(path, "r");
	char s4[WGD_IP_STRLEN + 1], s6[WGD_IP_STRLEN + 1];
	uint32_t i;

	if (!f) {
		perror(path);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (fscanf(f, "%47s %47s %u %u", s4, s6, &l[i].leasestart, &l[i].leasetime) != 4 ||
		    parse_ip_field(&l[i].ip4, s4) || parse_ip_field(&l[i].ip6, s6))
			break;
	}
	fclose(f);
	if (i < n) {
		fprintf(stderr, "loadgen: %s: line %u is missing or bad\n", path, i + 1);
		return -1;
	}
	return 0;
}

/* ---- storms ---- */

static void note_error(struct storm *s, uint32_t client, const char *what)
{
	char ab[INET6_ADDRSTRLEN];
	struct in6_addr ll;

	if (s->first_error[0])
		return;
	client_ll(&ll, client);
	inet_ntop(AF_INET6, &ll, ab, sizeof(ab));
	snprintf(s->first_error, sizeof(s->first_error), "%s:%s", ab, what);
	/* Blanks would split the figures line. */
	for (char *p = s->first_error; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n')
			*p = '_';
	}
}

/* What client i sends: a renewal of its lease, or a first request. */
static ssize_t build_request(const struct storm *s, uint32_t i, char *buf, size_t len)
{
	const struct lease_rec *l = s->renew ? &s->leases[i] : NULL;
	struct wgd_msg req;

	memset(&req, 0, sizeof(req));
	req.cmd = WGD_CMD_REQUEST_IP;
	req.version = 1;
	req.has_ip4 = req.has_ip6 = true;
	req.ip4.family = AF_INET;
	req.ip4.cidr = 32;
	req.ip6.family = AF_INET6;
	req.ip6.cidr = 128;
	if (l && (l->ip4.family || l->ip6.family)) {
		if (l->ip4.family)
			req.ip4 = l->ip4;
		if (l->ip6.family)
			req.ip6 = l->ip6;
		req.leasestart = l->leasestart;
		req.leasetime = l->leasetime;
	}
	return wgd_serialize_request(&req, buf, len);
}

static void slot_close(struct storm *s, struct slot *sl)
{
	if (sl->fd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, sl->fd, NULL);
		close(sl->fd);
	}
	sl->fd = -1;
}

static void slot_fail(struct storm *s, struct slot *sl, const char *what, int err)
{
	char buf[96];

	snprintf(buf, sizeof(buf), "%s%s%s", what, err ? ":" : "", err ? strerror(err) : "");
	s->failed++;
	note_error(s, sl->client, buf);
	slot_close(s, sl);
}

/* Opens the next client's connection in sl; false when none are left. */
static bool slot_start(struct storm *s, struct slot *sl)
{
	struct linger abortive = { .l_onoff = 1, .l_linger = 0 };
	struct sockaddr_in6 src = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_scope_id = s->ifindex,
	};
	struct sockaddr_in6 dst = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_addr = { .s6_addr = { 0xfe, 0x80 } },
		.sin6_scope_id = s->ifindex,
	};
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = sl };
	int one = 1;

	while (s->next < s->n) {
		sl->client = s->next++;
		sl->start_us = now_us();
		sl->sent = 0;
		sl->state = SLOT_CONNECTING;
		wgd_parser_init(&sl->parser, WGD_PARSE_RESPONSE);
		client_ll(&src.sin6_addr, sl->client);
		sl->fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (sl->fd < 0) {
			slot_fail(s, sl, "socket", errno);
			continue;
		}
		setsockopt(sl->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(sl->fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
		if (bind(sl->fd, (struct sockaddr *)&src, sizeof(src))) {
			slot_fail(s, sl, "bind", errno);
			continue;
		}
		if (connect(sl->fd, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS) {
			slot_fail(s, sl, "connect", errno);
			continue;
		}
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, sl->fd, &ev)) {
			slot_fail(s, sl, "epoll", errno);
			continue;
		}
		return true;
	}
	return false;
}

static void slot_answered(struct storm *s, struct slot *sl)
{
	const struct wgd_msg *m = &sl->parser.msg;
	struct lease_rec *l = &s->leases[sl->client];

	s->latency_us[s->answered++] = (uint32_t)(now_us() - sl->start_us);
	if (m->err) {
		char what[64];

		s->errno_nonzero++;
		snprintf(what, sizeof(what), "errno=%u", m->err);
		note_error(s, sl->client, what);
	}
	if (s->renew && (l->ip4.family || l->ip6.family) &&
	    ((l->ip4.family && (!m->has_ip4 || !wgd_ip_equal(&l->ip4, &m->ip4))) ||
	     (l->ip6.family && (!m->has_ip6 || !wgd_ip_equal(&l->ip6, &m->ip6)))))
		s->changed++;
	memset(l, 0, sizeof(*l));
	if (m->has_ip4)
		l->ip4 = m->ip4;
	if (m->has_ip6)
		l->ip6 = m->ip6;
	l->leasestart = m->leasestart;
	l->leasetime = m->leasetime;
	slot_close(s, sl);
}

static void slot_writable(struct storm *s, struct slot *sl)
{
	char buf[WGD_MAX_MESSAGE];
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = sl };
	int err = 0;
	socklen_t errlen = sizeof(err);
	ssize_t len, n;

	if (sl->state == SLOT_CONNECTING) {
		if (getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &err, &errlen) || err) {
			slot_fail(s, sl, "connect", err ? err : errno);
			return;
		}
		sl->state = SLOT_SENDING;
	}
	len = build_request(s, sl->client, buf, sizeof(buf));
	if (len < 0) {
		slot_fail(s, sl, "request", (int)-len);
		return;
	}
	n = send(sl->fd, buf + sl->sent, (size_t)len - sl->sent, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			slot_fail(s, sl, "send", errno);
		return;
	}
	sl->sent += (size_t)n;
	if (sl->sent == (size_t)len) {
		sl->state = SLOT_READING;
		epoll_ctl(s->epfd, EPOLL_CTL_MOD, sl->fd, &ev);
	}
}

static void slot_readable(struct storm *s, struct slot *sl)
{
	char buf[WGD_MAX_MESSAGE];

	for (;;) {
		ssize_t n = recv(sl->fd, buf, sizeof(buf), 0);
		ssize_t p;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				slot_fail(s, sl, "recv", errno);
			return;
		}
		if (n == 0) {
			slot_fail(s, sl, "closed_without_an_answer", 0);
			return;
		}
		p = wgd_parse(&sl->parser, buf, (size_t)n);
		if (p < 0) {
			slot_fail(s, sl, "bad_response", 0);
			return;
		}
		if (p > 0) {
			slot_answered(s, sl);
			return;
		}
	}
}

static int storm_run(struct storm *s)
{
	struct epoll_event evs[256];
	struct slot *slots = calloc(s->conc, sizeof(*slots));
	uint64_t t0, elapsed;
	uint32_t active = 0;

	if (!slots) {
		perror("loadgen");
		return -1;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		perror("loadgen: epoll");
		free(slots);
		return -1;
	}
	t0 = now_us();
	for (uint32_t i = 0; i < s->conc; i++) {
		slots[i].fd = -1;
		active += slot_start(s, &slots[i]);
	}
	while (active) {
		int n = epoll_wait(s->epfd, evs, 256, 100);
		uint64_t now;

		if (n < 0 && errno != EINTR) {
			perror("loadgen: epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++) {
			struct slot *sl = evs[i].data.ptr;

			if (sl->fd < 0)
				continue; /* closed by an earlier event of this batch */
			if (sl->state != SLOT_READING)
				slot_writable(s, sl);
			else
				slot_readable(s, sl);
		}
		now = now_us();
		for (uint32_t i = 0; i < s->conc; i++) {
			if (slots[i].fd >= 0 && now - slots[i].start_us > TIMEOUT_US)
				slot_fail(s, &slots[i], "timeout", 0);
		}
		/* Every slot whose connection ended starts the next client. */
		active = 0;
		for (uint32_t i = 0; i < s->conc; i++) {
			if (slots[i].fd < 0)
				slot_start(s, &slots[i]);
			active += slots[i].fd >= 0;
		}
	}
	elapsed = now_us() - t0;
	close(s->epfd);
	free(slots);

	qsort(s->latency_us, s->answered, sizeof(s->latency_us[0]), cmp_u32);
	printf("requests=%u answered=%u errno=%u failed=%u changed=%u seconds=%.3f rate=%.0f "
	       "p50_us=%u p99_us=%u first_error=%s\n",
	       s->n, s->answered, s->errno_nonzero, s->failed, s->changed, (double)elapsed / 1e6,
	       elapsed ? (double)s->answered * 1e6 / (double)elapsed : 0.0,
	       percentile(s->latency_us, s->answered, 50),
	       percentile(s->latency_us, s->answered, 99),
	       s->first_error[0] ? s->first_error : "-");
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "Usage: loadgen setup N IFACE WGCONF IPBATCH\n"
			"       loadgen grant|renew IFACE N CONC LEASES\n");
}

int main(int argc, char *argv[])
{
	struct storm s = { 0 };
	int ret = 1;

	if (sodium_init() < 0) {
		fprintf(stderr, "loadgen: libsodium failed to initialise\n");
		return 1;
	}
	if (argc == 6 && !strcmp(argv[1], "setup")) {
		if (count_arg("N", argv[2], MAX_CLIENTS, &s.n))
			return 1;
		return setup(s.n, argv[3], argv[4], argv[5]) ? 1 : 0;
	}
	if (argc != 6 || (strcmp(argv[1], "grant") && strcmp(argv[1], "renew"))) {
		usage();
		return 1;
	}
	s.renew = !strcmp(argv[1], "renew");
	s.ifindex = if_nametoindex(argv[2]);
	if (!s.ifindex) {
		perror(argv[2]);
		return 1;
	}
	if (count_arg("N", argv[3], MAX_CLIENTS, &s.n) ||
	    count_arg("CONC", argv[4], MAX_CONC, &s.conc))
		return 1;
	raise_fd_limit(s.conc);
	s.leases = calloc(s.n, sizeof(*s.leases));
	s.latency_us = calloc(s.n, sizeof(*s.latency_us));
	if (!s.leases || !s.latency_us) {
		perror("loadgen");
		goto out;
	}
	if (s.renew && leases_read(argv[5], s.leases, s.n))
		goto out;
	if (storm_run(&s) || leases_write(argv[5], s.leases, s.n))
		goto out;
	ret = 0;
out:
	free(s.leases);
	free(s.latency_us);
	return ret;
}
