// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * notify-recv PATH SECONDS: binds a datagram socket at PATH, as a service
 * manager's $NOTIFY_SOCKET, and prints the first datagram that arrives
 * within SECONDS. Exits 0 when one came, 3 on timeout.
 */

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096];
	struct pollfd pfd;
	ssize_t n;
	int fd;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify-recv PATH SECONDS\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	unlink(argv[1]);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("notify-recv: bind");
		return 2;
	}
	/* Ready to receive: the caller waits for the socket file. */
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, atoi(argv[2]) * 1000) != 1)
		return 3;
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return 2;
	buf[n] = '\0';
	printf("%s\n", buf);
	unlink(argv[1]);
	return 0;
}
