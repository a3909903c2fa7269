// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * One request and its response over one TCP connection to the hub, as an
 * object the client's loop moves along; nothing here waits. The loop polls
 * exchange_fd() for exchange_events() next to its other descriptors, hands
 * what poll() saw to exchange_advance(), and takes the result once the
 * exchange is EXCHANGE_DONE. Each exchange holds its own socket, buffers
 * and deadline, so that the loop can drive several at once.
 *
 * The response is parsed as it arrives, by the protocol's incremental
 * parser, which keeps at most a line and the message: a hub that sends
 * more, or too slowly, ends the exchange with an error.
 */

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "client.h"

void exchange_init(struct exchange *ex)
{
	memset(ex, 0, sizeof(*ex));
	ex->fd = -1;
}

/* Done with result: the socket is closed at once. */
static void finish(struct exchange *ex, int result)
{
	if (ex->fd >= 0)
		close(ex->fd);
	ex->fd = -1;
	ex->result = result;
	ex->step = EXCHANGE_DONE;
}

void exchange_end(struct exchange *ex)
{
	if (ex->fd >= 0)
		close(ex->fd);
	ex->fd = -1;
	ex->step = EXCHANGE_IDLE;
}

int exchange_start(struct exchange *ex, struct client *cl, const struct wgd_msg *req,
		   uint64_t now_ms, uint64_t timeout_ms)
{
	ssize_t len;
	int fd;

	exchange_end(ex);
	ex->req = *req;
	ex->started_ms = now_ms;
	ex->deadline_ms = now_ms + timeout_ms;
	ex->out_off = 0;
	wgd_parser_init(&ex->parser, WGD_PARSE_RESPONSE);
	wgd_parser_set_peers(&ex->parser, ex->peers);
	len = wgd_serialize_request(req, ex->out, sizeof(ex->out));
	if (len < 0) {
		finish(ex, (int)len);
		return (int)len;
	}
	ex->out_len = (size_t)len;
	fd = cl->sys->hub_connect(cl);
	if (fd < 0) {
		finish(ex, fd);
		return fd;
	}
	ex->fd = fd;
	ex->step = EXCHANGE_CONNECTING;
	return 0;
}

static bool running(const struct exchange *ex)
{
	return ex->step == EXCHANGE_CONNECTING || ex->step == EXCHANGE_SENDING ||
	       ex->step == EXCHANGE_RECEIVING;
}

int exchange_fd(const struct exchange *ex)
{
	return running(ex) ? ex->fd : -1;
}

short exchange_events(const struct exchange *ex)
{
	switch (ex->step) {
	case EXCHANGE_CONNECTING:
	case EXCHANGE_SENDING:
		return POLLOUT;
	case EXCHANGE_RECEIVING:
		return POLLIN;
	default:
		return 0;
	}
}

uint64_t exchange_wake(const struct exchange *ex)
{
	if (ex->step == EXCHANGE_DONE)
		return 0;
	return running(ex) ? ex->deadline_ms : UINT64_MAX;
}

static void send_some(struct exchange *ex)
{
	while (ex->out_off < ex->out_len) {
		ssize_t n = send(ex->fd, ex->out + ex->out_off, ex->out_len - ex->out_off,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN)
				return;
			if (errno == EINTR)
				continue;
			finish(ex, -errno);
			return;
		}
		ex->out_off += (size_t)n;
	}
	ex->step = EXCHANGE_RECEIVING;
}

static void receive_some(struct exchange *ex)
{
	char buf[WGD_MAX_MESSAGE];
	ssize_t n, p;

	n = recv(ex->fd, buf, sizeof(buf), 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			finish(ex, -errno);
		return;
	}
	if (n == 0) {
		log_warnx("the server closed the connection before answering");
		finish(ex, -ECONNRESET);
		return;
	}
	p = wgd_parse(&ex->parser, buf, (size_t)n);
	if (p < 0) {
		/* The parser's reasons are its own constant strings. */
		log_warnx("bad response from the server: %s", ex->parser.error);
		finish(ex, -EBADMSG);
	} else if (p > 0) {
		finish(ex, 0);
	}
}

void exchange_advance(struct exchange *ex, short revents, uint64_t now_ms)
{
	if (!running(ex))
		return;
	if (revents && ex->step == EXCHANGE_CONNECTING) {
		int err = 0;
		socklen_t errlen = sizeof(err);

		if (getsockopt(ex->fd, SOL_SOCKET, SO_ERROR, &err, &errlen) || err) {
			finish(ex, -(err ?: errno));
			return;
		}
		/* Connected: the request goes out at once. */
		ex->step = EXCHANGE_SENDING;
	}
	if (revents && ex->step == EXCHANGE_SENDING)
		send_some(ex);
	else if (revents && ex->step == EXCHANGE_RECEIVING)
		receive_some(ex);
	if (running(ex) && now_ms >= ex->deadline_ms)
		finish(ex, -ETIMEDOUT);
}

const struct wgd_msg *exchange_response(const struct exchange *ex)
{
	return ex->step == EXCHANGE_DONE && !ex->result ? &ex->parser.msg : NULL;
}
