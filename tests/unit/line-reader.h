/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_TEST_LINE_READER_H
#define WGD_TEST_LINE_READER_H

/*
 * Reads newline-terminated lines from a socket, for the fake UAPI daemons
 * of the unit tests. Header-only: each test program is one file.
 */

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

struct line_reader {
	int fd;
	int stop;               /* readable when the test wants the fake to stop */
	/* Sees every chunk as it is read, to log what the client sent; may be NULL. */
	void (*tap)(void *ctx, const char *p, size_t n);
	void *tap_ctx;
	char buf[16384];
	size_t len;
};

/* Next line without its newline into line; false at EOF or when stopped. */
static inline bool line_read(struct line_reader *lr, char *line, size_t size)
{
	for (;;) {
		char *nl = memchr(lr->buf, '\n', lr->len);
		struct pollfd pfd[2] = { { lr->fd, POLLIN, 0 }, { lr->stop, POLLIN, 0 } };
		ssize_t n;

		if (nl) {
			size_t l = (size_t)(nl - lr->buf);

			if (l >= size)
				return false;
			memcpy(line, lr->buf, l);
			line[l] = '\0';
			memmove(lr->buf, nl + 1, lr->len - l - 1);
			lr->len -= l + 1;
			return true;
		}
		if (poll(pfd, 2, -1) < 0 || (pfd[1].revents & POLLIN))
			return false;
		n = read(lr->fd, lr->buf + lr->len, sizeof(lr->buf) - lr->len);
		if (n <= 0)
			return false;
		if (lr->tap)
			lr->tap(lr->tap_ctx, lr->buf + lr->len, (size_t)n);
		lr->len += (size_t)n;
	}
}

#endif
