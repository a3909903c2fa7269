// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * meshpoll: one request for the mesh directory, for the end-to-end tests,
 * in a client's place.
 *
 *   meshpoll [-t SECONDS] IFACE SRC EPOCH SINCE PORT [CANDIDATE...]
 *
 * Connects from [SRC%IFACE]:970 to [fe80::%IFACE]:970, sends
 * request_peers=1 with epoch=EPOCH, since=SINCE, port=PORT and a
 * candidate= line each, and prints what comes back until the server
 * closes, then a last line "elapsed=MS". It waits SECONDS for the answer
 * (default 40, the client's limit for a long poll). Exit status:
 *   0  an answer came;
 *   2  the connection closed (FIN or RST) without an answer;
 *   3  nothing came in time;
 *   1  any other failure (bad arguments, bind, connect).
 * The socket is closed with SO_LINGER 0, as the client does: the server
 * closes first, and the reset clears its TIME_WAIT for the next request.
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
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int usage(const char *prog)
{
	fprintf(stderr, "Usage: %s [-t SECONDS] IFACE SRC EPOCH SINCE PORT [CANDIDATE...]\n",
		prog);
	return 1;
}

int main(int argc, char *argv[])
{
	struct sockaddr_in6 src = { .sin6_family = AF_INET6, .sin6_port = htons(970) };
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6, .sin6_port = htons(970),
				    .sin6_addr = { .s6_addr = { 0xfe, 0x80 } } };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char req[2048], buf[16384];
	size_t len, got = 0;
	int timeout_s = 40, fd, one = 1, arg = 1;
	unsigned ifindex;
	uint64_t start;

	if (argc > 2 && !strcmp(argv[1], "-t")) {
		timeout_s = atoi(argv[2]);
		arg = 3;
	}
	if (argc - arg < 5 || argc - arg > 5 + 8 || timeout_s <= 0)
		return usage(argv[0]);
	ifindex = if_nametoindex(argv[arg]);
	if (!ifindex) {
		perror(argv[arg]);
		return 1;
	}
	src.sin6_scope_id = dst.sin6_scope_id = ifindex;
	if (inet_pton(AF_INET6, argv[arg + 1], &src.sin6_addr) != 1)
		return usage(argv[0]);
	len = (size_t)snprintf(req, sizeof(req), "request_peers=1\nepoch=%s\nsince=%s\nport=%s\n",
			       argv[arg + 2], argv[arg + 3], argv[arg + 4]);
	for (int i = arg + 5; i < argc && len < sizeof(req); i++)
		len += (size_t)snprintf(req + len, sizeof(req) - len, "candidate=%s\n", argv[i]);
	if (len + 2 > sizeof(req))
		return usage(argv[0]);
	req[len++] = '\n';

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src))) {
		perror("bind");
		return 1;
	}
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst))) {
		perror("connect");
		return errno == ECONNRESET ? 2 : 1;
	}
	start = now_ms();
	if (send(fd, req, len, MSG_NOSIGNAL) < 0)
		printf("send: %s\n", strerror(errno));

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t spent = now_ms() - start;
		ssize_t n;

		if (spent >= (uint64_t)timeout_s * 1000 ||
		    poll(&pfd, 1, (int)((uint64_t)timeout_s * 1000 - spent)) <= 0) {
			printf("no answer within %d s\n", timeout_s);
			return 3;
		}
		n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n < 0) {
			printf("closed: %s\n", strerror(errno));
			return 2;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf) - 1)
			break;
	}
	if (!got) {
		printf("closed without an answer\n");
		return 2;
	}
	buf[got] = '\0';
	fputs(buf, stdout);
	printf("elapsed=%llu\n", (unsigned long long)(now_ms() - start));
	close(fd);
	return 0;
}
