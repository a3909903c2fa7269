// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * floor: the least a server on [fe80::%IFACE]:970 can do, for
 * tests/bench/throughput.sh to measure wg-dynamic-server against.
 *
 *   floor IFACE POOL4 POOL6
 *
 * One epoll loop over non-blocking sockets, as the server's: it accepts
 * every connection, reads until the empty line that ends a request, writes
 * one fixed response and closes. The response has the shape and size of a
 * grant from pools POOL4 and POOL6 (the first address of each, the pools as
 * routes). No peer lookup, no parsing, no lease, no journal, no device
 * update: what is left is the cost of TCP over loopback and of the event
 * loop. Runs until killed.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../protocol/ipaddr.h"
#include "../../protocol/proto.h"

struct conn {
	int fd;
	size_t len;
	bool seen_lf; /* the last byte read was a line feed */
};

static char response[WGD_MAX_MESSAGE];
static size_t response_len;

/* A grant of the first host address of each pool, pushing the pools. */
static int make_response(const char *pool4, const char *pool6)
{
	struct wgd_msg m;
	ssize_t len;

	memset(&m, 0, sizeof(m));
	if (wgd_ip_parse(&m.routes[0], pool4, strlen(pool4), true) ||
	    wgd_ip_parse(&m.routes[1], pool6, strlen(pool6), true) ||
	    m.routes[0].family != AF_INET || m.routes[1].family != AF_INET6)
		return -1;
	m.n_routes = 2;
	m.has_ip4 = m.has_ip6 = true;
	m.ip4 = m.routes[0];
	m.ip4.cidr = 32;
	m.ip4.bytes[3] |= 1;
	m.ip6 = m.routes[1];
	m.ip6.cidr = 128;
	m.ip6.bytes[15] |= 1;
	m.leasestart = (uint32_t)time(NULL);
	m.leasetime = 3600;
	m.has_errno = true;
	len = wgd_serialize_response(&m, response, sizeof(response));
	if (len < 0)
		return -1;
	response_len = (size_t)len;
	return 0;
}

static int open_listener(unsigned ifindex)
{
	struct sockaddr_in6 sa = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_addr = { .s6_addr = { 0xfe, 0x80 } },
		.sin6_scope_id = ifindex,
	};
	int fd, one = 1;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, SOMAXCONN)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void conn_close(int epfd, struct conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Reads what has come; answers and closes once the empty line is there. */
static void conn_read(int epfd, struct conn *c)
{
	char buf[4096];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			conn_close(epfd, c);
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' && c->seen_lf) {
				/* The response is far smaller than a socket buffer. */
				send(c->fd, response, response_len, MSG_NOSIGNAL);
				conn_close(epfd, c);
				return;
			}
			c->seen_lf = buf[i] == '\n';
		}
		c->len += (size_t)n;
		if (c->len > WGD_MAX_MESSAGE) {
			conn_close(epfd, c);
			return;
		}
	}
}

static void accept_conns(int epfd, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev.data.ptr = c;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		conn_read(epfd, c);
	}
}

int main(int argc, char *argv[])
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, evs[64];
	unsigned ifindex;
	int lfd, epfd;

	if (argc != 4) {
		fprintf(stderr, "Usage: floor IFACE POOL4 POOL6\n");
		return 1;
	}
	ifindex = if_nametoindex(argv[1]);
	if (!ifindex) {
		perror(argv[1]);
		return 1;
	}
	if (make_response(argv[2], argv[3])) {
		fprintf(stderr, "floor: bad pools %s %s\n", argv[2], argv[3]);
		return 1;
	}
	lfd = open_listener(ifindex);
	if (lfd < 0) {
		perror("floor: cannot listen on [fe80::]:970");
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev)) {
		perror("floor: epoll");
		return 1;
	}
	for (;;) {
		int n = epoll_wait(epfd, evs, 64, -1);

		if (n < 0 && errno != EINTR) {
			perror("floor: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr)
				conn_read(epfd, evs[i].data.ptr);
			else
				accept_conns(epfd, lfd);
		}
	}
}
