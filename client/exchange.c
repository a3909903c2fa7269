// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * One request over one TCP connection from [ll]:970 to [fe80::]:970.
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "client.h"

/* Waits for fd to become ready for events, or for a signal. Returns 1 when
 * ready, 0 on timeout, -EINTR when a signal arrived (kept in pending_signal). */
static int wait_fd(struct client *cl, int fd, short events, uint64_t deadline_ms)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = fd, .events = events },
			{ .fd = cl->sig_fd, .events = POLLIN },
		};
		uint64_t now = clock_boot_ms();
		int n;

		if (now >= deadline_ms)
			return 0;
		n = poll(pfd, 2, (int)(deadline_ms - now));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(cl->sig_fd, &si, sizeof(si)) == sizeof(si) &&
			    si.ssi_signo != SIGHUP) {
				cl->pending_signal = (int)si.ssi_signo;
				return -EINTR;
			}
		}
		if (pfd[0].revents)
			return 1;
	}
}

int exchange(struct client *cl, const struct wgd_msg *req, struct wgd_msg *resp,
	     uint64_t timeout_ms)
{
	uint64_t deadline = clock_boot_ms() + timeout_ms;
	struct wgd_parser *parser = NULL;
	char buf[WGD_MAX_MESSAGE];
	ssize_t len, n;
	size_t off = 0;
	int fd, ret, err = 0;
	socklen_t errlen = sizeof(err);

	len = wgd_serialize_request(req, buf, sizeof(buf));
	if (len < 0)
		return (int)len;

	fd = cl->sys->hub_connect(cl);
	if (fd < 0)
		return fd;
	ret = wait_fd(cl, fd, POLLOUT, deadline);
	if (ret <= 0) {
		ret = ret ?: -ETIMEDOUT;
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) || err) {
		ret = -(err ?: errno);
		goto out;
	}

	while (off < (size_t)len) {
		n = send(fd, buf + off, (size_t)len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN) {
				ret = wait_fd(cl, fd, POLLOUT, deadline);
				if (ret <= 0) {
					ret = ret ?: -ETIMEDOUT;
					goto out;
				}
				continue;
			}
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		off += (size_t)n;
	}

	parser = malloc(sizeof(*parser));
	if (!parser) {
		ret = -ENOMEM;
		goto out;
	}
	wgd_parser_init(parser, WGD_PARSE_RESPONSE);
	for (;;) {
		ret = wait_fd(cl, fd, POLLIN, deadline);
		if (ret <= 0) {
			ret = ret ?: -ETIMEDOUT;
			goto out;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (n == 0) {
			log_warnx("the server closed the connection before answering");
			ret = -ECONNRESET;
			goto out;
		}
		ssize_t p = wgd_parse(parser, buf, (size_t)n);
		if (p < 0) {
			/* The parser's reasons are its own constant strings. */
			log_warnx("bad response from the server: %s", parser->error);
			ret = -EBADMSG;
			goto out;
		}
		if (p > 0) {
			*resp = parser->msg;
			ret = 0;
			goto out;
		}
	}
out:
	free(parser);
	close(fd);
	return ret;
}
