// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * connect: one TCP exchange from a chosen source address and port, for the
 * end-to-end tests (bash's /dev/tcp cannot pick its source port).
 *
 *   connect IFACE SRC SPORT DST DPORT
 *
 * Binds [SRC%IFACE]:SPORT, connects to [DST%IFACE]:DPORT, sends a request
 * for any IPv4 and IPv6 address, and prints what comes back. Exit status:
 *   0  an answer came;
 *   2  the connection closed (FIN or RST) without an answer;
 *   3  nothing happened for 5 seconds;
 *   1  any other failure (bad arguments, bind, connect).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TIMEOUT_MS 5000

static const char request[] = "request_ip=1\nip=0.0.0.0/32\nip=::/128\n\n";

static int parse_addr(struct sockaddr_in6 *sa, const char *addr, const char *port,
		      unsigned ifindex)
{
	char *end;
	unsigned long p = strtoul(port, &end, 10);

	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	sa->sin6_scope_id = ifindex;
	if (!*port || *end || p > 65535 || inet_pton(AF_INET6, addr, &sa->sin6_addr) != 1)
		return -1;
	sa->sin6_port = htons((uint16_t)p);
	return 0;
}

int main(int argc, char *argv[])
{
	struct sockaddr_in6 src, dst;
	struct pollfd pfd;
	char buf[4096];
	unsigned ifindex;
	ssize_t n;
	int fd, one = 1;

	if (argc != 6) {
		fprintf(stderr, "Usage: %s IFACE SRC SPORT DST DPORT\n", argv[0]);
		return 1;
	}
	ifindex = if_nametoindex(argv[1]);
	if (!ifindex) {
		perror(argv[1]);
		return 1;
	}
	if (parse_addr(&src, argv[2], argv[3], ifindex) ||
	    parse_addr(&dst, argv[4], argv[5], ifindex)) {
		fprintf(stderr, "connect: bad address or port\n");
		return 1;
	}

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src))) {
		perror("bind");
		return 1;
	}
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst))) {
		perror("connect");
		return errno == ECONNRESET ? 2 : 1;
	}
	/* The server may already have closed: a failed send is an answer too. */
	if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) < 0)
		printf("send: %s\n", strerror(errno));

	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, TIMEOUT_MS) <= 0) {
		printf("no answer and not closed within %d ms\n", TIMEOUT_MS);
		return 3;
	}
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0) {
		printf("closed: %s\n", strerror(errno));
		return errno == ECONNRESET ? 2 : 1;
	}
	if (n == 0) {
		printf("closed without an answer\n");
		return 2;
	}
	buf[n] = '\0';
	fputs(buf, stdout);
	close(fd);
	return 0;
}
