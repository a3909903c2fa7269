// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * The start-up benchmark's rig: a lease journal and a device of N peers
 * that agree, as after a server restart on a busy hub.
 *
 *   startup-rig journal DIR IFACE N   writes DIR/IFACE.leases: N live leases
 *   startup-rig serve SOCKET N        answers the WireGuard UAPI on SOCKET
 *                                     for a device of the same N peers
 *
 * Peer i has a public key derived from i, the link-local fe80::1:0:I/128,
 * and the lease 10.0.0.0/8 + i + 1 and fd00::/64 + i + 1, all of which the
 * device already carries. The UAPI side answers get=1 with the device in
 * the format wireguard-go writes (rendered once, before listening) and
 * every set=1 with errno=0. It stands in for wireguard-go because a
 * wireguard-go device costs tens of kilobytes per peer, which a million
 * peers would not fit on an ordinary machine.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "../../server/journal.h"

#define LEASE_TIME 86400

static void peer_key(uint8_t key[WG_KEY_LEN], uint32_t i)
{
	static const char label[] = "wg-dynamic bench peer";
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, WG_KEY_LEN);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label) - 1);
	crypto_generichash_update(&st, (const uint8_t *)&i, sizeof(i));
	crypto_generichash_final(&st, key, WG_KEY_LEN);
}

static void lease_addrs(uint32_t i, struct in_addr *ip4, struct in6_addr *ip6)
{
	uint32_t host = i + 1;

	ip4->s_addr = htonl(0x0a000000U | host);
	memset(ip6, 0, sizeof(*ip6));
	ip6->s6_addr[0] = 0xfd;
	ip6->s6_addr[12] = (uint8_t)(host >> 24);
	ip6->s6_addr[13] = (uint8_t)(host >> 16);
	ip6->s6_addr[14] = (uint8_t)(host >> 8);
	ip6->s6_addr[15] = (uint8_t)host;
}

static int write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

static int make_journal(const char *dir, const char *ifname, uint32_t n)
{
	size_t len = JOURNAL_HEADER_SIZE + (size_t)n * JOURNAL_RECORD_SIZE;
	uint8_t *buf = malloc(len), *p;
	uint32_t now = (uint32_t)time(NULL);
	char path[4096];
	int fd;

	if (!buf)
		return -1;
	journal_encode_header(buf);
	p = buf + JOURNAL_HEADER_SIZE;
	for (uint32_t i = 0; i < n; i++, p += JOURNAL_RECORD_SIZE) {
		struct journal_record r = {
			.type = JREC_GRANT,
			.flags = JREC_F_IP4 | JREC_F_IP6,
			.start = now,
			.leasetime = LEASE_TIME,
		};

		peer_key(r.pubkey, i);
		lease_addrs(i, &r.ip4, &r.ip6);
		journal_encode(&r, p);
	}
	snprintf(path, sizeof(path), "%s/%s.leases", dir, ifname);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, buf, len) || fsync(fd)) {
		perror(path);
		return -1;
	}
	close(fd);
	free(buf);
	return 0;
}

struct text {
	char *s;
	size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->cap - t->len < 512) {
		t->cap = t->cap ? t->cap * 2 : 1 << 20;
		t->s = realloc(t->s, t->cap);
		if (!t->s) {
			perror("realloc");
			exit(1);
		}
	}
	va_start(ap, fmt);
	n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* The device as wireguard-go's get=1 writes it. */
static void render_device(struct text *t, uint32_t n)
{
	uint8_t key[WG_KEY_LEN];
	char hex[WG_KEY_LEN * 2 + 1], a4[INET_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
	struct in_addr ip4;
	struct in6_addr ip6;

	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	put(t, "private_key=%s\nlisten_port=51820\n", hex);
	for (uint32_t i = 0; i < n; i++) {
		peer_key(key, i);
		sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
		lease_addrs(i, &ip4, &ip6);
		inet_ntop(AF_INET, &ip4, a4, sizeof(a4));
		inet_ntop(AF_INET6, &ip6, a6, sizeof(a6));
		put(t, "public_key=%s\n"
		       "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
		       "protocol_version=1\n"
		       "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
		       "tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n"
		       "allowed_ip=fe80::1:0:%x:%x/128\nallowed_ip=%s/32\nallowed_ip=%s/128\n",
		    hex, i >> 16, i & 0xffff, a4, a6);
	}
	put(t, "errno=0\n\n");
}

/* Reads one operation, up to its blank line; 1 for get, 0 for set, -1 at the end. */
static int read_op(int fd, struct text *in)
{
	for (;;) {
		char *end = in->len ? memmem(in->s, in->len, "\n\n", 2) : NULL;

		if (end) {
			int get = in->len >= 6 && !memcmp(in->s, "get=1\n", 6);
			size_t used = (size_t)(end + 2 - in->s);

			memmove(in->s, in->s + used, in->len - used);
			in->len -= used;
			return get;
		}
		if (in->cap - in->len < 4096) {
			in->cap = in->cap ? in->cap * 2 : 65536;
			in->s = realloc(in->s, in->cap);
			if (!in->s)
				return -1;
		}
		ssize_t r = read(fd, in->s + in->len, in->cap - in->len);

		if (r <= 0)
			return -1;
		in->len += (size_t)r;
	}
}

static int serve(const char *path, uint32_t n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct text dev = { 0 };
	int lfd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	render_device(&dev, n);
	strcpy(sa.sun_path, path);
	unlink(path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 16)) {
		perror(path);
		return -1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct text in = { 0 };
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), op;

		if (fd < 0)
			continue;
		while ((op = read_op(fd, &in)) >= 0) {
			static const char ok[] = "errno=0\n\n";

			if (op ? write_all(fd, dev.s, dev.len) : write_all(fd, ok, sizeof(ok) - 1))
				break;
		}
		free(in.s);
		close(fd);
	}
}

int main(int argc, char *argv[])
{
	unsigned long n;

	if (sodium_init() < 0)
		return 1;
	if (argc == 5 && !strcmp(argv[1], "journal")) {
		n = strtoul(argv[4], NULL, 10);
		return n && n < (1UL << 24) - 2 && !make_journal(argv[2], argv[3], (uint32_t)n) ? 0 : 1;
	}
	if (argc == 4 && !strcmp(argv[1], "serve")) {
		n = strtoul(argv[3], NULL, 10);
		return n && n < (1UL << 24) - 2 && !serve(argv[2], (uint32_t)n) ? 0 : 1;
	}
	fprintf(stderr, "usage: startup-rig journal DIR IFACE N | startup-rig serve SOCKET N\n");
	return 2;
}
