// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * pollstorm: N mesh long polls held on a wg-dynamic-server --mesh, and the
 * time it takes to answer them all when the directory moves, for
 * tests/bench/mesh-polls.sh.
 *
 *   pollstorm IFACE N
 *
 * Clients 0..N are loadgen's (tests/bench/loadgen.c): link-locals on the
 * hub's own interface, each a peer's, each holding a lease already. Clients
 * 0..N-1 join the mesh and poll as a client does, asking again at once
 * after each answer, until the server holds all N (no answer for two
 * seconds). Then client N joins, which moves the directory, and every
 * held poll is answered. Prints one line:
 *   polls=N answered=A with_line=L first_ms=F p50_ms=P last_ms=M
 * times from client N's request, with_line the answers that carry client
 * N's peer= line. Exit status 1 when it could not run.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QUIET_MS 2000

struct poller {
	int fd;
	uint32_t epoch, version;
	size_t got;
	char buf[16384];
};

static unsigned ifindex;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* loadgen's client i: fe80::1:0:HI:LO. */
static void client_ll(struct in6_addr *a, uint32_t i)
{
	memset(a, 0, sizeof(*a));
	a->s6_addr[0] = 0xfe;
	a->s6_addr[1] = 0x80;
	a->s6_addr[9] = 1;
	a->s6_addr[12] = (uint8_t)(i >> 24);
	a->s6_addr[13] = (uint8_t)(i >> 16);
	a->s6_addr[14] = (uint8_t)(i >> 8);
	a->s6_addr[15] = (uint8_t)i;
}

/* Sends client i's request_peers on a new connection; the fd or -1. */
static int ask(uint32_t i, uint32_t epoch, uint32_t since)
{
	struct sockaddr_in6 src = { .sin6_family = AF_INET6, .sin6_port = htons(970),
				    .sin6_scope_id = ifindex };
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6, .sin6_port = htons(970),
				    .sin6_addr = { .s6_addr = { 0xfe, 0x80 } },
				    .sin6_scope_id = ifindex };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char req[128];
	int fd, one = 1, len;

	client_ll(&src.sin6_addr, i);
	len = snprintf(req, sizeof(req), "request_peers=1\nepoch=%u\nsince=%u\nport=51820\n\n",
		       epoch, since);
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	/* Blocking: the server is local, the connect and send are at once. */
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst)) ||
	    send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static uint32_t field(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);

	return p ? (uint32_t)strtoul(p + strlen(key), NULL, 10) : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Reads what came for p; 1 when its answer is whole (the server closed). */
static int readable(struct poller *p)
{
	for (;;) {
		ssize_t n = recv(p->fd, p->buf + p->got, sizeof(p->buf) - 1 - p->got, 0);

		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0 || p->got + (size_t)n == sizeof(p->buf) - 1) {
			p->got += (size_t)n;
			p->buf[p->got] = '\0';
			return 1;
		}
		p->got += (size_t)n;
	}
}

/* Asks for client i at (epoch, since) and watches the answer. */
static int start(int ep, struct poller *p, uint32_t i)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

	p->got = 0;
	p->fd = ask(i, p->epoch, p->version);
	if (p->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev)) {
		fprintf(stderr, "pollstorm: client %u cannot ask: %s\n", i, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	struct epoll_event evs[256];
	struct rlimit rl;
	struct poller *p;
	uint64_t *lat, t0, last = 0;
	uint32_t n, answered = 0, with_line = 0;
	char trigger_ll[INET6_ADDRSTRLEN];
	int ep, tfd;

	if (argc != 3 || !(n = (uint32_t)strtoul(argv[2], NULL, 10)) || n > 100000) {
		fprintf(stderr, "Usage: %s IFACE N\n", argv[0]);
		return 1;
	}
	ifindex = if_nametoindex(argv[1]);
	if (!ifindex) {
		perror(argv[1]);
		return 1;
	}
	rl.rlim_cur = rl.rlim_max = n + 64;
	setrlimit(RLIMIT_NOFILE, &rl);
	p = calloc(n, sizeof(*p));
	lat = calloc(n, sizeof(*lat));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!p || !lat || ep < 0)
		return 1;

	/* Join, then poll until every poll is held. */
	for (uint32_t i = 0; i < n; i++)
		if (start(ep, &p[i], i))
			return 1;
	last = now_ms();
	while (now_ms() - last < QUIET_MS) {
		int k = epoll_wait(ep, evs, 256, QUIET_MS);

		for (int j = 0; j < k; j++) {
			struct poller *q = &p[evs[j].data.u32];
			int r = readable(q);

			if (r == 0)
				continue;
			close(q->fd);
			if (r < 0 || !strstr(q->buf, "errno=0\n")) {
				fprintf(stderr, "pollstorm: client %u: %s\n", evs[j].data.u32,
					r < 0 ? strerror(errno) : q->buf);
				return 1;
			}
			q->epoch = field(q->buf, "epoch=");
			q->version = field(q->buf, "version=");
			if (start(ep, q, evs[j].data.u32))
				return 1;
			last = now_ms();
		}
	}

	/* Client n joins: every poll held sees it. */
	{
		struct in6_addr a;

		client_ll(&a, n);
		inet_ntop(AF_INET6, &a, trigger_ll, sizeof(trigger_ll));
	}
	t0 = now_ms();
	tfd = ask(n, 0, 0);
	if (tfd < 0) {
		fprintf(stderr, "pollstorm: the last client cannot ask: %s\n", strerror(errno));
		return 1;
	}
	while (answered < n) {
		int k = epoll_wait(ep, evs, 256, 30000);

		if (k <= 0)
			break;
		for (int j = 0; j < k; j++) {
			struct poller *q = &p[evs[j].data.u32];
			int r = readable(q);

			if (r == 0)
				continue;
			epoll_ctl(ep, EPOLL_CTL_DEL, q->fd, NULL);
			close(q->fd);
			lat[answered++] = now_ms() - t0;
			with_line += field(q->buf, "version=") > q->version &&
				     strstr(q->buf, "\npeer=") != NULL;
		}
	}
	close(tfd);
	qsort(lat, answered, sizeof(*lat), cmp_u64);
	printf("polls=%u answered=%u with_line=%u first_ms=%llu p50_ms=%llu last_ms=%llu\n", n,
	       answered, with_line, answered ? (unsigned long long)lat[0] : 0,
	       answered ? (unsigned long long)lat[answered / 2] : 0,
	       answered ? (unsigned long long)lat[answered - 1] : 0);
	return answered == n ? 0 : 1;
}
