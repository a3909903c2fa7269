// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * fakehub: a stand-in for wg-dynamic-server that answers the real client
 * with canned responses, for the end-to-end tests of what the client does
 * with a hostile hub.
 *
 *   fakehub IFACE DIR
 *
 * Listens on [fe80::%IFACE]:970, as the server does, and serves one
 * connection at a time. For each it reads the request up to its empty line
 * (or 64 KiB, the peer's half-close, or 5 s of silence), then looks up the
 * script for the peer: DIR/ADDR, named after the peer's address as
 * inet_ntop(3) writes it (DIR/fe80::1:1), else DIR/default. The script is
 * read anew at every connection, so a test switches responses by renaming a
 * new file into place. Its first line says what to do, and the bytes after
 * that line are the response, sent as they are:
 *
 *   answer TAG     send the response at once, then close
 *   slow MS TAG    send it one byte every MS milliseconds, then close
 *   hold N TAG     send its first N bytes, then send nothing more and keep
 *                  the connection open until the peer closes it (at most
 *                  30 s)
 *   cut N TAG      send its first N bytes, then close
 *   close TAG      close without answering
 *   reset TAG      reset the connection (RST) without answering
 *
 * TAG names the response in the log. An oversized response is just a big
 * file. A peer without a script is closed on.
 *
 * One line per connection goes to stdout, written whole:
 *
 *   MS ADDR TAG ACTION SENT REQUEST
 *
 * MS is the wall clock in milliseconds since the epoch, SENT the bytes of
 * the response that went out, and REQUEST the request's bytes with each
 * line feed written as ';' and every byte outside 0x21-0x7E, ';' and '\' as
 * \xNN: "request_ip=1;ip=0.0.0.0/32;ip=::/128;leasestart=0;leasetime=0;;".
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORT 970
#define MAX_REQUEST 65536
#define MAX_SCRIPT (1 << 20)
#define REQUEST_TIMEOUT_MS 5000
#define HOLD_MAX_MS 30000

static const char *dir;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int ms_until(uint64_t deadline)
{
	uint64_t now = mono_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/* Whether buf holds a whole message: its empty line is there. */
static bool request_whole(const char *buf, size_t len)
{
	if (len && buf[0] == '\n')
		return true;
	for (size_t i = 1; i < len; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\n')
			return true;
	return false;
}

/* Reads the request into buf; returns its length. */
static size_t request_read(int fd, char *buf, size_t size)
{
	uint64_t deadline = mono_ms() + REQUEST_TIMEOUT_MS;
	size_t len = 0;

	while (len < size && !request_whole(buf, len)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, ms_until(deadline)) <= 0)
			break;
		n = recv(fd, buf + len, size - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	return len;
}

/* The script for the peer at addr, whole, NUL-terminated; NULL without one. */
static char *script_read(const char *addr, size_t *len)
{
	const char *names[] = { addr, "default" };
	char path[PATH_MAX];
	char *buf = malloc(MAX_SCRIPT + 1);

	if (!buf)
		return NULL;
	for (size_t i = 0; i < 2; i++) {
		int fd;
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		*len = 0;
		while (*len < MAX_SCRIPT) {
			n = read(fd, buf + *len, MAX_SCRIPT - *len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			*len += (size_t)n;
		}
		close(fd);
		buf[*len] = '\0';
		return buf;
	}
	free(buf);
	return NULL;
}

/* Sends len bytes; returns how many went out before the peer went away. */
static size_t send_all(int fd, const char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, p + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	return off;
}

/* Waits until the peer closes its side, or resets, or max_ms pass. */
static void wait_peer_close(int fd, unsigned max_ms)
{
	uint64_t deadline = mono_ms() + max_ms;
	char sink[4096];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, ms_until(deadline)) <= 0)
			return;
		n = recv(fd, sink, sizeof(sink), 0);
		if (n <= 0 && !(n < 0 && errno == EINTR))
			return;
	}
}

static void log_line(const char *addr, const char *tag, const char *action, size_t sent,
		     const char *req, size_t req_len)
{
	/* Four bytes per request byte at most, and room for the rest. */
	static char line[MAX_REQUEST * 4 + 512];
	size_t off;

	off = (size_t)snprintf(line, sizeof(line), "%llu %s %s %s %zu ",
			       (unsigned long long)wall_ms(), addr, tag, action, sent);
	for (size_t i = 0; i < req_len && off + 5 < sizeof(line); i++) {
		unsigned char c = (unsigned char)req[i];

		if (c == '\n')
			line[off++] = ';';
		else if (c < 0x21 || c > 0x7e || c == ';' || c == '\\')
			off += (size_t)snprintf(line + off, sizeof(line) - off, "\\x%02x", c);
		else
			line[off++] = (char)c;
	}
	line[off++] = '\n';
	/* stdout is a file the test reads while this runs: one write a line. */
	if (write(STDOUT_FILENO, line, off) < 0)
		perror("fakehub: log");
}

/* The first word of s into out (at most size - 1 bytes); s past it. */
static const char *word(const char *s, char *out, size_t size)
{
	size_t n = 0;

	while (*s == ' ')
		s++;
	while (*s && *s != ' ' && *s != '\n') {
		if (n + 1 < size)
			out[n++] = *s;
		s++;
	}
	out[n] = '\0';
	return s;
}

static void serve(int fd, const char *addr)
{
	static char req[MAX_REQUEST];
	char action[16], num[16] = "", tag[64] = "-";
	struct linger abortive = { .l_onoff = 1, .l_linger = 0 };
	size_t req_len, script_len = 0, sent = 0;
	char *script;
	const char *body, *p;
	size_t body_len;
	unsigned long n = 0;

	req_len = request_read(fd, req, sizeof(req));
	script = script_read(addr, &script_len);
	if (!script) {
		log_line(addr, "-", "noscript", 0, req, req_len);
		close(fd);
		return;
	}
	body = strchr(script, '\n');
	body = body ? body + 1 : script + script_len;
	body_len = script_len - (size_t)(body - script);
	p = word(script, action, sizeof(action));
	if (!strcmp(action, "slow") || !strcmp(action, "hold") || !strcmp(action, "cut")) {
		p = word(p, num, sizeof(num));
		n = strtoul(num, NULL, 10);
	}
	word(p, tag, sizeof(tag));
	if (!tag[0])
		snprintf(tag, sizeof(tag), "-");

	if (!strcmp(action, "answer")) {
		sent = send_all(fd, body, body_len);
	} else if (!strcmp(action, "slow")) {
		for (sent = 0; sent < body_len; sent++) {
			if (send_all(fd, body + sent, 1) != 1)
				break;
			if (sent + 1 < body_len)
				usleep((useconds_t)(n > 60000 ? 60000 : n) * 1000);
		}
	} else if (!strcmp(action, "hold") || !strcmp(action, "cut")) {
		sent = send_all(fd, body, n < body_len ? n : body_len);
		if (!strcmp(action, "hold"))
			wait_peer_close(fd, HOLD_MAX_MS);
	} else if (!strcmp(action, "reset")) {
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
	} else if (strcmp(action, "close")) {
		snprintf(action, sizeof(action), "unknown");
	}
	log_line(addr, tag, action, sent, req, req_len);
	free(script);
	close(fd);
}

int main(int argc, char *argv[])
{
	struct sockaddr_in6 sa = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(PORT),
		.sin6_addr = { .s6_addr = { 0xfe, 0x80 } },
	};
	int lfd, one = 1;

	if (argc != 3) {
		fprintf(stderr, "Usage: %s IFACE DIR\n", argv[0]);
		return 1;
	}
	dir = argv[2];
	sa.sin6_scope_id = if_nametoindex(argv[1]);
	if (!sa.sin6_scope_id) {
		perror(argv[1]);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* fe80:: may have been added a moment ago and still be settling; with
	 * IPV6_FREEBIND the bind does not wait for it. */
	setsockopt(lfd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 16)) {
		perror("fakehub: [fe80::]:970");
		return 1;
	}
	for (;;) {
		struct sockaddr_in6 peer;
		socklen_t plen = sizeof(peer);
		char addr[INET6_ADDRSTRLEN];
		int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("fakehub: accept");
			return 1;
		}
		if (!inet_ntop(AF_INET6, &peer.sin6_addr, addr, sizeof(addr)))
			snprintf(addr, sizeof(addr), "?");
		serve(fd, addr);
	}
}
