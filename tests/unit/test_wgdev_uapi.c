// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "../../common/wgctl.h"
#include "../../common/wgdev-uapi.h"
#include "../../common/wgdev.h"
#include "../../protocol/proto.h"
#include "line-reader.h"

/* Key pairs made with wg genkey / wg pubkey, in the hex the protocol uses. */
#define PRIV_A "30a7e7b87aa82e66b31b50d8c97a416f35dd2cb86d9f25ff1ee1b4ed3e544f52"
#define PUB_A  "34ac31dedd2bc10437605ab1ddecd86e10bb32f31a70f3db0f56c25038459c3b"
#define PUB_B  "881cac65368107eb504145efcae6101181996f69e4b309eb75fb53528f1f7f42"
#define PUB_C  "2f15a6f026498c7263c69a0179415f019aa48f5e09d1188c8b9e754a2d71b228"
#define PUB_D  "b492ddcb0b5999cd09e1a485a546576d8588601a898514b1aad84f76f38b901a"
#define ZERO_KEY "0000000000000000000000000000000000000000000000000000000000000000"

static void hex_key(uint8_t key[WG_KEY_LEN], const char *hex)
{
	for (int i = 0; i < WG_KEY_LEN; ++i) {
		unsigned v;

		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		key[i] = (uint8_t)v;
	}
}

static struct wgd_ip ip_of(const char *s)
{
	struct wgd_ip ip;

	ck_assert_int_eq(wgd_ip_parse(&ip, s, strlen(s), true), 0);
	return ip;
}

static void assert_ip(const struct wgd_ip *ip, const char *want)
{
	char buf[WGD_IP_STRLEN];

	ck_assert_str_eq(wgd_ip_format(ip, buf, sizeof(buf)), want);
}

/* ---- the pure parsers and builder ---- */

/* What wireguard-go 0.0.20220316 prints, with one of each kind of peer. */
static const char realistic[] =
	"private_key=" PRIV_A "\n"
	"listen_port=51820\n"
	"fwmark=4660\n"
	"public_key=" PUB_B "\n"
	"preshared_key=" ZERO_KEY "\n"
	"protocol_version=1\n"
	"endpoint=192.0.2.1:51821\n"
	"last_handshake_time_sec=1700000000\n"
	"last_handshake_time_nsec=123456789\n"
	"tx_bytes=18446744073709551615\n"
	"rx_bytes=200\n"
	"persistent_keepalive_interval=25\n"
	"allowed_ip=10.0.0.2/32\n"
	"allowed_ip=fd00::2/128\n"
	"public_key=" PUB_C "\n"
	"preshared_key=" ZERO_KEY "\n"
	"protocol_version=1\n"
	"endpoint=[2001:db8::1]:443\n"
	"last_handshake_time_sec=0\n"
	"last_handshake_time_nsec=0\n"
	"tx_bytes=0\n"
	"rx_bytes=0\n"
	"persistent_keepalive_interval=0\n"
	"allowed_ip=10.0.1.0/24\n"
	"public_key=" PUB_D "\n"
	"preshared_key=" ZERO_KEY "\n"
	"protocol_version=1\n"
	"endpoint=[fe80::1%3]:51820\n"
	"last_handshake_time_sec=0\n"
	"last_handshake_time_nsec=0\n"
	"tx_bytes=0\n"
	"rx_bytes=0\n"
	"persistent_keepalive_interval=0\n"
	"errno=0\n"
	"\n";

START_TEST(parse_realistic)
{
	uint8_t key[WG_KEY_LEN];
	struct wgdev *dev;
	struct wgdev_peer *p;
	char addr[INET6_ADDRSTRLEN];

	ck_assert_int_eq(uapi_parse_get(realistic, sizeof(realistic) - 1, &dev), 0);
	ck_assert(dev->has_pubkey);
	hex_key(key, PUB_A);
	ck_assert_mem_eq(dev->pubkey, key, WG_KEY_LEN);
	ck_assert_uint_eq(dev->listen_port, 51820);
	ck_assert_uint_eq(dev->n_peers, 3);

	hex_key(key, PUB_B);
	p = wgdev_find_peer(dev, key);
	ck_assert_ptr_eq(p, &dev->peers[0]);
	ck_assert_int_eq(p->endpoint.sa.sa_family, AF_INET);
	ck_assert_str_eq(inet_ntop(AF_INET, &p->endpoint.sin.sin_addr, addr, sizeof(addr)),
			 "192.0.2.1");
	ck_assert_uint_eq(ntohs(p->endpoint.sin.sin_port), 51821);
	ck_assert_int_eq(p->last_handshake_sec, 1700000000);
	ck_assert_uint_eq(p->last_handshake_nsec, 123456789);
	ck_assert_uint_eq(p->keepalive_s, 25);
	ck_assert_uint_eq(p->rx_bytes, 200);
	ck_assert_uint_eq(p->tx_bytes, UINT64_MAX);
	ck_assert_uint_eq(p->n_allowedips, 2);
	assert_ip(&p->allowedips[0], "10.0.0.2/32");
	assert_ip(&p->allowedips[1], "fd00::2/128");

	hex_key(key, PUB_C);
	p = wgdev_find_peer(dev, key);
	ck_assert_ptr_eq(p, &dev->peers[1]);
	ck_assert_int_eq(p->endpoint.sa.sa_family, AF_INET6);
	ck_assert_str_eq(inet_ntop(AF_INET6, &p->endpoint.sin6.sin6_addr, addr, sizeof(addr)),
			 "2001:db8::1");
	ck_assert_uint_eq(ntohs(p->endpoint.sin6.sin6_port), 443);
	ck_assert_int_eq(p->last_handshake_sec, 0);
	ck_assert_uint_eq(p->last_handshake_nsec, 0);
	ck_assert_uint_eq(p->keepalive_s, 0);
	ck_assert_uint_eq(p->rx_bytes, 0);
	ck_assert_uint_eq(p->tx_bytes, 0);
	ck_assert_uint_eq(p->n_allowedips, 1);
	assert_ip(&p->allowedips[0], "10.0.1.0/24");

	p = &dev->peers[2];
	ck_assert_int_eq(p->endpoint.sa.sa_family, AF_INET6);
	ck_assert_uint_eq(p->endpoint.sin6.sin6_scope_id, 3);
	ck_assert_uint_eq(p->n_allowedips, 0);
	wgdev_free(dev);

	/* An empty device. */
	ck_assert_int_eq(uapi_parse_get("errno=0\n\n", 9, &dev), 0);
	ck_assert(!dev->has_pubkey);
	ck_assert_uint_eq(dev->n_peers, 0);
	wgdev_free(dev);
}
END_TEST

/* The realistic reply with one line replaced; each must be refused. */
static const struct {
	const char *from, *to;
	int want;
} bad_replies[] = {
	{ "public_key=" PUB_C, "public_key=zz15a6f026498c7263c69a0179415f019aa48f5e09d1188c8b9e754a2d71b228", -EPROTO },
	{ "public_key=" PUB_C, "public_key=2f15a6f026498c7263c69a0179415f019aa48f5e09d1188c8b9e754a2d71b22", -EPROTO },
	{ "public_key=" PUB_C, "public_key=" PUB_C "0", -EPROTO },
	{ "public_key=" PUB_C, "public_key= " PUB_C, -EPROTO },
	{ "private_key=" PRIV_A, "private_key=" PRIV_A "ab", -EPROTO },
	{ "preshared_key=" ZERO_KEY, "preshared_key=00", -EPROTO },
	{ "listen_port=51820", "listen_port=65536", -EPROTO },
	{ "listen_port=51820", "listen_port=+1", -EPROTO },
	{ "listen_port=51820", "listen_port=", -EPROTO },
	{ "listen_port=51820", "listen_port=12a", -EPROTO },
	{ "fwmark=4660", "fwmark=4294967296", -EPROTO },
	{ "fwmark=4660", "endpoint=192.0.2.1:1", -EPROTO },
	{ "tx_bytes=18446744073709551615", "tx_bytes=18446744073709551616", -EPROTO },
	{ "last_handshake_time_nsec=123456789", "last_handshake_time_nsec=1000000000", -EPROTO },
	{ "persistent_keepalive_interval=25", "persistent_keepalive_interval=-1", -EPROTO },
	{ "persistent_keepalive_interval=25", "persistent_keepalive_interval=65536", -EPROTO },
	{ "rx_bytes=200", "rx_bytes=18446744073709551616", -EPROTO },
	{ "rx_bytes=200", "rx_bytes=2x", -EPROTO },
	{ "endpoint=192.0.2.1:51821", "endpoint=192.0.2.1", -EPROTO },
	{ "endpoint=192.0.2.1:51821", "endpoint=192.0.2.1:65536", -EPROTO },
	{ "endpoint=192.0.2.1:51821", "endpoint=192.0.2:51821", -EPROTO },
	{ "endpoint=192.0.2.1:51821", "endpoint=host.example:51821", -EPROTO },
	{ "endpoint=192.0.2.1:51821", "endpoint=192.0.2.1:", -EPROTO },
	{ "endpoint=[2001:db8::1]:443", "endpoint=[2001:db8::1]443", -EPROTO },
	{ "endpoint=[2001:db8::1]:443", "endpoint=[2001:db8::1:443", -EPROTO },
	{ "endpoint=[2001:db8::1]:443", "endpoint=2001:db8::1:443", -EPROTO },
	{ "endpoint=[2001:db8::1]:443", "endpoint=[192.0.2.1]:443", -EPROTO },
	{ "endpoint=[fe80::1%3]:51820", "endpoint=[fe80::1%]:51820", -EPROTO },
	{ "allowed_ip=10.0.0.2/32", "allowed_ip=10.0.0.2/33", -EPROTO },
	{ "allowed_ip=10.0.0.2/32", "allowed_ip=10.0.0.256/32", -EPROTO },
	{ "allowed_ip=10.0.0.2/32", "allowed_ip=", -EPROTO },
	{ "protocol_version=1", "protocol_version", -EPROTO },
	{ "protocol_version=1", "=1", -EPROTO },
	{ "rx_bytes=200", "listen_port=1", -EPROTO },
	{ "errno=0", "errno=-22", -EINVAL },
	{ "errno=0", "errno=5", -EIO },
	{ "errno=0", "errno=x", -EPROTO },
	{ "errno=0", "errno=2147483648", -EPROTO },
	{ "errno=0", "errno=", -EPROTO },
	{ "errno=0\n", "", -EPROTO },                           /* no errno */
	{ "errno=0\n", "errno=0\nlisten_port=1\n", -EPROTO },   /* line after errno */
	{ "errno=0\n\n", "errno=0\n", -EPROTO },                /* unterminated */
	{ "errno=0\n\n", "errno=0\n\nerrno=0\n\n", -EPROTO },   /* trailing bytes */
	{ "errno=0\n\n", "errno=0", -EPROTO },
};

START_TEST(parse_malformed)
{
	char buf[4096];
	const char *at = strstr(realistic, bad_replies[_i].from);
	struct wgdev *dev = (struct wgdev *)1;
	size_t head;
	int n;

	ck_assert_ptr_nonnull(at);
	head = (size_t)(at - realistic);
	n = snprintf(buf, sizeof(buf), "%.*s%s%s", (int)head, realistic, bad_replies[_i].to,
		     at + strlen(bad_replies[_i].from));
	ck_assert_int_eq(uapi_parse_get(buf, (size_t)n, &dev), bad_replies[_i].want);
	ck_assert_ptr_null(dev);
}
END_TEST

START_TEST(parse_odd_inputs)
{
	char buf[2048];
	struct wgdev *dev;
	int n;

	/* Too long a line, even of a key we would skip. */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "unknown=", 8);
	memcpy(buf + 8 + UAPI_LINE_MAX, "\nerrno=0\n\n", 10);
	ck_assert_int_eq(uapi_parse_get(buf, 8 + UAPI_LINE_MAX + 10, &dev), -EPROTO);
	/* Unknown keys of sane length are skipped. */
	n = snprintf(buf, sizeof(buf), "new_device_key=1\npublic_key=%s\nnew_peer_key=x\nerrno=0\n\n",
		     PUB_B);
	ck_assert_int_eq(uapi_parse_get(buf, (size_t)n, &dev), 0);
	ck_assert_uint_eq(dev->n_peers, 1);
	wgdev_free(dev);
	/* A NUL inside a value. */
	ck_assert_int_eq(uapi_parse_get("listen_port=1\0\nerrno=0\n\n", 24, &dev), -EPROTO);
	ck_assert_int_eq(uapi_parse_get("", 0, &dev), -EPROTO);
	ck_assert_int_eq(uapi_parse_get("\n", 1, &dev), -EPROTO);

	ck_assert_int_eq(uapi_parse_set("errno=0\n\n", 9), 0);
	ck_assert_int_eq(uapi_parse_set("errno=-22\n\n", 11), -EINVAL);
	ck_assert_int_eq(uapi_parse_set("listen_port=1\nerrno=0\n\n", 23), -EPROTO);
	ck_assert_int_eq(uapi_parse_set("errno=0\n", 8), -EPROTO);

	ck_assert_uint_eq(uapi_reply_end("errno=0\n\n", 9), 9);
	ck_assert_uint_eq(uapi_reply_end("errno=0\n", 8), 0);
	ck_assert_uint_eq(uapi_reply_end("\n", 1), 1);
	ck_assert_uint_eq(uapi_reply_end("a=1\n\nb", 6), 5);
	ck_assert_uint_eq(uapi_reply_end("", 0), 0);
}
END_TEST

START_TEST(build_set)
{
	static const char want_incr[] =
		"set=1\n"
		"public_key=" PUB_B "\n"
		"update_only=true\n"
		"allowed_ip=-10.0.0.2/32\n"
		"allowed_ip=-fd00::/64\n"
		"allowed_ip=10.0.0.3/32\n"
		"\n";
	static const char want_replace[] =
		"set=1\n"
		"public_key=" PUB_B "\n"
		"update_only=true\n"
		"replace_allowed_ips=true\n"
		"allowed_ip=10.0.0.3/32\n"
		"\n";
	struct wgd_ip add = ip_of("10.0.0.3/32"), del[2] = { ip_of("10.0.0.2"), ip_of("fd00::/64") };
	uint8_t key[WG_KEY_LEN];
	size_t len;
	char *s;

	hex_key(key, PUB_B);
	ck_assert_int_eq(uapi_build_set_allowedips(&s, &len, key, false, &add, 1, del, 2), 0);
	ck_assert_uint_eq(len, strlen(want_incr));
	ck_assert_str_eq(s, want_incr);
	free(s);
	ck_assert_int_eq(uapi_build_set_allowedips(&s, &len, key, true, &add, 1, NULL, 0), 0);
	ck_assert_str_eq(s, want_replace);
	free(s);
	ck_assert_int_eq(uapi_build_set_allowedips(&s, &len, key, true, &add, 1, del, 1), -EINVAL);
	ck_assert_ptr_null(s);

	/*
	 * Counts whose buffer size would overflow are refused before any is
	 * read. The check once wrapped when n_del alone was past the limit,
	 * and the list was then written into a buffer far too small.
	 */
	ck_assert_int_eq(uapi_build_set_allowedips(&s, &len, key, false, &add, 0,
						   del, SIZE_MAX), -ENOMEM);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(uapi_build_set_allowedips(&s, &len, key, false, &add, SIZE_MAX / 2,
						   del, SIZE_MAX / 2), -ENOMEM);
	ck_assert_ptr_null(s);
}
END_TEST

static struct wgd_endpoint endpoint_of(const char *addr, uint16_t port)
{
	struct wgd_endpoint ep = { .port = port };

	ep.addr = ip_of(addr);
	return ep;
}

START_TEST(build_peer_ops)
{
	static const char want_add4[] =
		"set=1\n"
		"public_key=" PUB_D "\n"
		"remove=true\n"
		"public_key=" PUB_D "\n"
		"endpoint=192.0.2.7:51820\n"
		"persistent_keepalive_interval=25\n"
		"replace_allowed_ips=true\n"
		"\n";
	static const char want_add6[] =
		"set=1\n"
		"public_key=" PUB_D "\n"
		"remove=true\n"
		"public_key=" PUB_D "\n"
		"endpoint=[2001:db8::7]:1\n"
		"persistent_keepalive_interval=65535\n"
		"replace_allowed_ips=true\n"
		"\n";
	static const char want_add_none[] =
		"set=1\n"
		"public_key=" PUB_D "\n"
		"remove=true\n"
		"public_key=" PUB_D "\n"
		"persistent_keepalive_interval=0\n"
		"replace_allowed_ips=true\n"
		"\n";
	static const char want_remove[] =
		"set=1\n"
		"public_key=" PUB_D "\n"
		"remove=true\n"
		"\n";
	struct wgd_endpoint ep = endpoint_of("192.0.2.7", 51820), none = { 0 };
	char buf[UAPI_PEER_OP_MAX];
	uint8_t key[WG_KEY_LEN];
	ssize_t n;

	hex_key(key, PUB_D);
	n = uapi_build_add_peer(buf, sizeof(buf), key, &ep, 25);
	ck_assert_int_eq(n, (ssize_t)strlen(want_add4));
	ck_assert_str_eq(buf, want_add4);
	ep = endpoint_of("2001:db8::7", 1);
	n = uapi_build_add_peer(buf, sizeof(buf), key, &ep, 65535);
	ck_assert_int_eq(n, (ssize_t)strlen(want_add6));
	ck_assert_str_eq(buf, want_add6);
	/* The longest endpoint there is still fits. */
	ep = endpoint_of("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 65535);
	ck_assert_int_gt(uapi_build_add_peer(buf, sizeof(buf), key, &ep, 65535), 0);
	ck_assert_ptr_nonnull(strstr(buf, "endpoint=[ffff:ffff:ffff:ffff:ffff:ffff:"));
	n = uapi_build_add_peer(buf, sizeof(buf), key, &none, 0);
	ck_assert_int_eq(n, (ssize_t)strlen(want_add_none));
	ck_assert_str_eq(buf, want_add_none);
	ck_assert_int_eq(uapi_build_add_peer(buf, sizeof(buf), key, NULL, 0), n);
	ck_assert_str_eq(buf, want_add_none);
	n = uapi_build_remove_peer(buf, sizeof(buf), key);
	ck_assert_int_eq(n, (ssize_t)strlen(want_remove));
	ck_assert_str_eq(buf, want_remove);

	/* No port, another family; a buffer one byte short. */
	ep = endpoint_of("192.0.2.7", 0);
	ck_assert_int_eq(uapi_build_add_peer(buf, sizeof(buf), key, &ep, 25), -EINVAL);
	ep = endpoint_of("192.0.2.7", 5);
	ep.addr.family = AF_UNIX;
	ck_assert_int_eq(uapi_build_add_peer(buf, sizeof(buf), key, &ep, 25), -EINVAL);
	ck_assert_int_eq(uapi_build_add_peer(buf, strlen(want_add_none), key, NULL, 0), -ENOSPC);
	ck_assert_int_eq(uapi_build_remove_peer(buf, strlen(want_remove), key), -ENOSPC);
}
END_TEST

/* ---- a fake wireguard-go behind a unix socket ---- */

#define FAKE_PEERS 4
#define FAKE_IPS 16
#define FAKE_CONNS 8

struct fake_peer {
	char key[65];
	char ips[FAKE_IPS][WGD_IP_STRLEN];
	int n;
	char endpoint[64];
	int keepalive;
};

struct fake_wg {
	char dir[64];
	char path[96];
	int lfd;
	int stop[2];
	pthread_t thread;

	/* Behaviour */
	bool supports_remove;   /* "allowed_ip=-", wireguard-go 0.0.20250522 */
	bool close_after_op;    /* hang up after every operation */
	bool vanish_on_set;     /* the peer goes away just before a set */
	bool dribble;           /* write replies a byte at a time */
	bool refuse_keepalive;  /* fail a set at persistent_keepalive_interval */

	/* Device state */
	struct fake_peer peers[FAKE_PEERS];
	int n_peers;

	/* What the client sent, per connection */
	char log[FAKE_CONNS][8192];
	size_t log_len[FAKE_CONNS];
	int conns;
	int ops;
};

static struct fake_peer *fake_find(struct fake_wg *fw, const char *key)
{
	for (int i = 0; i < fw->n_peers; ++i) {
		if (!strcmp(fw->peers[i].key, key))
			return &fw->peers[i];
	}
	return NULL;
}

static void fake_remove_ip(struct fake_peer *p, const char *ip)
{
	for (int i = 0; i < p->n; ++i) {
		if (!strcmp(p->ips[i], ip)) {
			memmove(p->ips[i], p->ips[i + 1], (size_t)(p->n - i - 1) * sizeof(p->ips[0]));
			--p->n;
			return;
		}
	}
}

static void fake_remove_peer(struct fake_wg *fw, struct fake_peer *p)
{
	*p = fw->peers[--fw->n_peers];
}

static bool dribble;

static void write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, dribble ? 1 : len);

		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

static void fake_reply_get(struct fake_wg *fw, int fd)
{
	char out[8192];
	size_t len = 0;

	len += (size_t)snprintf(out + len, sizeof(out) - len,
				"private_key=%s\nlisten_port=51820\n", PRIV_A);
	for (int i = 0; i < fw->n_peers; ++i) {
		struct fake_peer *p = &fw->peers[i];

		len += (size_t)snprintf(out + len, sizeof(out) - len,
					"public_key=%s\npreshared_key=%s\nprotocol_version=1\n",
					p->key, ZERO_KEY);
		if (p->endpoint[0])
			len += (size_t)snprintf(out + len, sizeof(out) - len, "endpoint=%s\n",
						p->endpoint);
		len += (size_t)snprintf(out + len, sizeof(out) - len,
					"last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
					"tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=%d\n",
					p->keepalive);
		for (int j = 0; j < p->n; ++j)
			len += (size_t)snprintf(out + len, sizeof(out) - len,
						"allowed_ip=%s\n", p->ips[j]);
	}
	len += (size_t)snprintf(out + len, sizeof(out) - len, "errno=0\n\n");
	write_all(fd, out, len);
}

struct conn_log {
	struct fake_wg *fw;
	int conn;
};

/* Keeps what the client sent on one connection, for the tests to compare. */
static void log_tap(void *ctx, const char *p, size_t n)
{
	struct conn_log *cl = ctx;
	struct fake_wg *fw = cl->fw;

	if (cl->conn < FAKE_CONNS && fw->log_len[cl->conn] + n < sizeof(fw->log[0])) {
		memcpy(fw->log[cl->conn] + fw->log_len[cl->conn], p, n);
		fw->log_len[cl->conn] += n;
	}
}

/* One set=1 operation as wireguard-go 0.0.20220316 runs it; 0 or -22. */
static int fake_set(struct fake_wg *fw, struct line_reader *lr)
{
	struct fake_peer *peer = NULL;
	bool created = false, dummy = false;
	char line[256];

	while (line_read(lr, line, sizeof(line))) {
		char *v = strchr(line, '=');

		if (!line[0])
			return 0;
		if (!v)
			return -22;
		*v++ = '\0';
		if (!strcmp(line, "public_key")) {
			if (fw->vanish_on_set && (peer = fake_find(fw, v)))
				fake_remove_peer(fw, peer);
			peer = fake_find(fw, v);
			created = !peer;
			dummy = false;
			if (created) {
				peer = &fw->peers[fw->n_peers++];
				memset(peer, 0, sizeof(*peer));
				snprintf(peer->key, sizeof(peer->key), "%s", v);
			}
		} else if (!peer) {
			return -22;
		} else if (!strcmp(line, "update_only") && !strcmp(v, "true")) {
			if (created && !dummy) {
				fake_remove_peer(fw, peer);
				dummy = true;
			}
		} else if (!strcmp(line, "remove") && !strcmp(v, "true")) {
			/* Whether it existed or was created by public_key just now. */
			if (!dummy)
				fake_remove_peer(fw, peer);
			dummy = true;
		} else if (!strcmp(line, "endpoint")) {
			if (!dummy)
				snprintf(peer->endpoint, sizeof(peer->endpoint), "%s", v);
		} else if (!strcmp(line, "persistent_keepalive_interval")) {
			if (fw->refuse_keepalive)
				return -22;
			if (!dummy)
				peer->keepalive = atoi(v);
		} else if (!strcmp(line, "replace_allowed_ips") && !strcmp(v, "true")) {
			if (!dummy)
				peer->n = 0;
		} else if (!strcmp(line, "allowed_ip")) {
			if (v[0] == '-' && !fw->supports_remove)
				return -22;
			if (dummy)
				continue;
			if (v[0] == '-') {
				fake_remove_ip(peer, v + 1);
				continue;
			}
			for (int i = 0; i < fw->n_peers; ++i)
				fake_remove_ip(&fw->peers[i], v);
			snprintf(peer->ips[peer->n++], WGD_IP_STRLEN, "%s", v);
		} else {
			return -22;
		}
	}
	return -5;
}

static void fake_serve(struct fake_wg *fw, int fd, int conn)
{
	struct conn_log cl = { .fw = fw, .conn = conn };
	struct line_reader lr;
	char op[256], reply[32];

	memset(&lr, 0, sizeof(lr));
	lr.fd = fd;
	lr.stop = fw->stop[0];
	lr.tap = log_tap;
	lr.tap_ctx = &cl;
	dribble = fw->dribble;
	while (line_read(&lr, op, sizeof(op))) {
		if (!strcmp(op, "get=1")) {
			if (!line_read(&lr, op, sizeof(op)) || op[0])
				return;
			fake_reply_get(fw, fd);
		} else if (!strcmp(op, "set=1")) {
			/*
			 * Like wireguard-go, a failed set leaves its unread lines
			 * behind, to be taken for the next operation.
			 */
			snprintf(reply, sizeof(reply), "errno=%d\n\n", fake_set(fw, &lr));
			write_all(fd, reply, strlen(reply));
		} else {
			return;
		}
		++fw->ops;
		if (fw->close_after_op)
			return;
	}
}

static void *fake_thread(void *arg)
{
	struct fake_wg *fw = arg;

	for (;;) {
		struct pollfd pfd[2] = { { fw->lfd, POLLIN, 0 }, { fw->stop[0], POLLIN, 0 } };
		int fd;

		if (poll(pfd, 2, -1) < 0 || (pfd[1].revents & POLLIN))
			break;
		fd = accept(fw->lfd, NULL, NULL);
		if (fd < 0)
			break;
		fake_serve(fw, fd, fw->conns++);
		close(fd);
	}
	return NULL;
}

static struct fake_wg *fake_start(bool supports_remove)
{
	struct fake_wg *fw = calloc(1, sizeof(*fw));
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	snprintf(fw->dir, sizeof(fw->dir), "/tmp/wgdev-uapi-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fw->dir));
	snprintf(fw->path, sizeof(fw->path), "%s/wgu0.sock", fw->dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fw->path);
	fw->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fw->lfd, 0);
	ck_assert_int_eq(bind(fw->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fw->lfd, 8), 0);
	ck_assert_int_eq(pipe(fw->stop), 0);
	fw->supports_remove = supports_remove;

	/* Peer B: two allowed-IPs; peer C: one. */
	fw->n_peers = 2;
	snprintf(fw->peers[0].key, 65, "%s", PUB_B);
	snprintf(fw->peers[0].ips[0], WGD_IP_STRLEN, "10.0.0.1/32");
	snprintf(fw->peers[0].ips[1], WGD_IP_STRLEN, "fd00::1/128");
	fw->peers[0].n = 2;
	snprintf(fw->peers[1].key, 65, "%s", PUB_C);
	snprintf(fw->peers[1].ips[0], WGD_IP_STRLEN, "10.0.1.0/24");
	fw->peers[1].n = 1;

	wgctl_uapi_dir = fw->dir;
	ck_assert_int_eq(pthread_create(&fw->thread, NULL, fake_thread, fw), 0);
	return fw;
}

/* Stops the server; what it recorded can be read safely afterwards. */
static void fake_join(struct fake_wg *fw)
{
	ck_assert_int_eq(write(fw->stop[1], "x", 1), 1);
	pthread_join(fw->thread, NULL);
}

static void fake_free(struct fake_wg *fw)
{
	close(fw->lfd);
	close(fw->stop[0]);
	close(fw->stop[1]);
	unlink(fw->path);
	rmdir(fw->dir);
	free(fw);
}

/* The log of connection conn as a string, for comparison. */
static const char *fake_log(struct fake_wg *fw, int conn)
{
	ck_assert_int_lt(conn, FAKE_CONNS);
	fw->log[conn][fw->log_len[conn]] = '\0';
	return fw->log[conn];
}

static void assert_peer_ips(struct fake_wg *fw, const char *key, const char *want)
{
	struct fake_peer *p = fake_find(fw, key);
	char got[512] = "";

	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < p->n; ++i) {
		strcat(got, i ? " " : "");
		strcat(got, p->ips[i]);
	}
	ck_assert_str_eq(got, want);
}

#define SET_HEAD_B "set=1\npublic_key=" PUB_B "\nupdate_only=true\n"

START_TEST(conversation_fallback)
{
	struct fake_wg *fw = fake_start(false);
	struct wgd_ip add = ip_of("10.0.0.3/32"), del = ip_of("10.0.0.1/32");
	uint8_t key[WG_KEY_LEN];
	struct wgctl *ctl;
	struct wgdev *dev;

	hex_key(key, PUB_B);
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	ck_assert_int_eq(wgctl_backend(ctl), WGCTL_UAPI);
	ck_assert_str_eq(wgctl_backend_name(ctl), "userspace");

	/* The old daemon refuses the removal, then the list is replaced. */
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, &add, 1, &del, 1), 0);
	/* Known now: straight to read-modify-write. */
	del = ip_of("fd00::1/128");
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, NULL, 0, &del, 1), 0);
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	ck_assert_uint_eq(dev->n_peers, 2);
	wgdev_free(dev);
	wgctl_close(ctl);
	fake_join(fw);

	ck_assert_int_eq(fw->conns, 2);
	ck_assert_str_eq(fake_log(fw, 0),
			 "get=1\n\n"
			 SET_HEAD_B
			 "allowed_ip=-10.0.0.1/32\n"
			 "allowed_ip=10.0.0.3/32\n"
			 "\n");
	/*
	 * A fresh connection after the refusal, then kept. The fallback reads
	 * the peer's list afresh each time: the view does not stand in for it.
	 */
	ck_assert_str_eq(fake_log(fw, 1),
			 "get=1\n\n"
			 SET_HEAD_B
			 "replace_allowed_ips=true\n"
			 "allowed_ip=fd00::1/128\n"
			 "allowed_ip=10.0.0.3/32\n"
			 "\n"
			 "get=1\n\n"
			 SET_HEAD_B
			 "replace_allowed_ips=true\n"
			 "allowed_ip=10.0.0.3/32\n"
			 "\n"
			 "get=1\n\n");
	assert_peer_ips(fw, PUB_B, "10.0.0.3/32");
	assert_peer_ips(fw, PUB_C, "10.0.1.0/24");
	fake_free(fw);
}
END_TEST

START_TEST(conversation_incremental)
{
	struct fake_wg *fw = fake_start(true);
	struct wgd_ip add[2] = { ip_of("10.0.0.3/32"), ip_of("fd00::3/128") };
	struct wgd_ip del = ip_of("10.0.0.1/32");
	uint8_t key[WG_KEY_LEN];
	struct wgctl *ctl;
	struct wgdev *dev;

	hex_key(key, PUB_B);
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	wgdev_free(dev);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, add, 2, &del, 1), 0);
	/* Additions alone, and a removal of an absent entry. */
	del = ip_of("192.0.2.0/24");
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, NULL, 0, &del, 1), 0);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, &add[0], 1, NULL, 0), 0);
	/* Bad input never reaches the daemon. */
	add[1].cidr = 129;
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, add, 2, NULL, 0), -EINVAL);
	add[1].family = 0;
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, NULL, 0, &add[1], 1), -EINVAL);
	wgctl_close(ctl);
	fake_join(fw);

	/* One read, then updates checked against it: no read per update. */
	ck_assert_int_eq(fw->conns, 1);
	ck_assert_int_eq(fw->ops, 4);
	ck_assert_str_eq(fake_log(fw, 0),
			 "get=1\n\n"
			 SET_HEAD_B
			 "allowed_ip=-10.0.0.1/32\n"
			 "allowed_ip=10.0.0.3/32\n"
			 "allowed_ip=fd00::3/128\n"
			 "\n"
			 SET_HEAD_B
			 "allowed_ip=-192.0.2.0/24\n"
			 "\n"
			 SET_HEAD_B
			 "allowed_ip=10.0.0.3/32\n"
			 "\n");
	assert_peer_ips(fw, PUB_B, "fd00::1/128 fd00::3/128 10.0.0.3/32");
	assert_peer_ips(fw, PUB_C, "10.0.1.0/24");
	fake_free(fw);
}
END_TEST

START_TEST(conversation_missing_peer)
{
	struct fake_wg *fw = fake_start(true);
	struct wgd_ip add = ip_of("10.0.0.9/32"), del = ip_of("10.0.0.1/32");
	uint8_t key[WG_KEY_LEN], key_c[WG_KEY_LEN];
	struct wgctl *ctl;

	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	hex_key(key, PUB_D);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, &add, 1, NULL, 0), -ENOENT);
	/* Held by another peer: refused rather than moved. */
	hex_key(key, PUB_B);
	add = ip_of("10.0.1.0/24");
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, &add, 1, NULL, 0), -EEXIST);
	/* The view follows the updates: B's new address is B's, its old one free. */
	add = ip_of("10.0.0.9/32");
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, &add, 1, &del, 1), 0);
	hex_key(key_c, PUB_C);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_c, &add, 1, NULL, 0), -EEXIST);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_c, &del, 1, NULL, 0), 0);
	/* Gone between the read and the write: update_only keeps it gone. */
	fw->vanish_on_set = true;
	add = ip_of("10.0.0.10/32");
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, &add, 1, NULL, 0), 0);
	wgctl_close(ctl);
	fake_join(fw);

	ck_assert_int_eq(fw->n_peers, 1);
	ck_assert_ptr_null(fake_find(fw, PUB_B));
	ck_assert_ptr_null(fake_find(fw, PUB_D));
	/* One read for all of it. */
	ck_assert_int_eq(fw->ops, 4);
	ck_assert(!strncmp(fake_log(fw, 0), "get=1\n\nset=1\n", 13));
	assert_peer_ips(fw, PUB_C, "10.0.1.0/24 10.0.0.1/32");
	fake_free(fw);
}
END_TEST

START_TEST(conversation_reconnect)
{
	struct fake_wg *fw = fake_start(true);
	struct wgd_ip add = ip_of("10.0.0.3/32");
	uint8_t key[WG_KEY_LEN];
	struct wgctl *ctl;
	struct wgdev *dev;

	hex_key(key, PUB_B);
	fw->close_after_op = true;
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	/* Every kept connection is found dead on its next use. */
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	wgdev_free(dev);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, &add, 1, NULL, 0), 0);
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	ck_assert_uint_eq(dev->peers[0].n_allowedips, 3);
	wgdev_free(dev);
	wgctl_close(ctl);
	fake_join(fw);
	ck_assert_int_eq(fw->ops, 3);
	ck_assert_int_eq(fw->conns, 3);
	ck_assert_str_eq(fake_log(fw, 1), SET_HEAD_B "allowed_ip=10.0.0.3/32\n\n");
	fake_free(fw);
}
END_TEST

#define SET_HEAD_C "public_key=" PUB_C "\nupdate_only=true\n"

/* Several peers' changes in one operation, each with its own outcome. */
START_TEST(conversation_batch)
{
	struct fake_wg *fw = fake_start(true);
	struct wgd_ip a3 = ip_of("10.0.0.3/32"), a4 = ip_of("10.0.0.4/32");
	struct wgd_ip a5 = ip_of("10.0.0.5/32"), c_net = ip_of("10.0.1.0/24");
	struct wgd_ip d1 = ip_of("10.0.0.1/32");
	struct wgdev_change u[5] = {
		{ .add = { a3 }, .n_add = 1, .del = { d1 }, .n_del = 1 },   /* B */
		{ .add = { a4 }, .n_add = 1 },                              /* C */
		{ .add = { a5 }, .n_add = 1 },                              /* D: no such peer */
		{ .add = { c_net }, .n_add = 1 },                           /* B: C's prefix */
		{ .add = { a4 }, .n_add = 1 },                              /* B: what C just took */
	};
	int err[5];
	struct wgctl *ctl;
	struct wgdev *dev;

	hex_key(u[0].pubkey, PUB_B);
	hex_key(u[1].pubkey, PUB_C);
	hex_key(u[2].pubkey, PUB_D);
	hex_key(u[3].pubkey, PUB_B);
	hex_key(u[4].pubkey, PUB_B);
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	wgdev_free(dev);
	wgctl_allowedips_update_batch(ctl, u, 5, err);
	ck_assert_int_eq(err[0], 0);
	ck_assert_int_eq(err[1], 0);
	ck_assert_int_eq(err[2], -ENOENT);
	ck_assert_int_eq(err[3], -EEXIST);
	ck_assert_int_eq(err[4], -EEXIST);
	wgctl_close(ctl);
	fake_join(fw);

	ck_assert_int_eq(fw->ops, 2);
	ck_assert_str_eq(fake_log(fw, 0),
			 "get=1\n\n"
			 SET_HEAD_B
			 "allowed_ip=-10.0.0.1/32\n"
			 "allowed_ip=10.0.0.3/32\n"
			 SET_HEAD_C
			 "allowed_ip=10.0.0.4/32\n"
			 "\n");
	assert_peer_ips(fw, PUB_B, "fd00::1/128 10.0.0.3/32");
	assert_peer_ips(fw, PUB_C, "10.0.1.0/24 10.0.0.4/32");
	fake_free(fw);
}
END_TEST

/*
 * A change of more entries than a struct wgdev_change holds is refused
 * before anything reaches the daemon; the others of the batch go on.
 */
START_TEST(conversation_batch_bounds)
{
	struct fake_wg *fw = fake_start(true);
	struct wgd_ip a3 = ip_of("10.0.0.3/32"), a4 = ip_of("10.0.0.4/32");
	struct wgdev_change u[2] = {
		{ .add = { a3, a4 }, .n_add = WGDEV_CHANGE_MAX + 1 },    /* B */
		{ .add = { a4 }, .n_add = 1 },                              /* C */
	};
	int err[2];
	struct wgctl *ctl;

	hex_key(u[0].pubkey, PUB_B);
	hex_key(u[1].pubkey, PUB_C);
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	wgctl_allowedips_update_batch(ctl, u, 2, err);
	ck_assert_int_eq(err[0], -EINVAL);
	ck_assert_int_eq(err[1], 0);
	wgctl_close(ctl);
	fake_join(fw);

	assert_peer_ips(fw, PUB_B, "10.0.0.1/32 fd00::1/128");
	assert_peer_ips(fw, PUB_C, "10.0.1.0/24 10.0.0.4/32");
	fake_free(fw);
}
END_TEST

/* A daemon that refuses the batch: each change is made again on its own. */
START_TEST(conversation_batch_refused)
{
	struct fake_wg *fw = fake_start(false);
	struct wgd_ip a3 = ip_of("10.0.0.3/32"), a4 = ip_of("10.0.0.4/32");
	struct wgd_ip d1 = ip_of("10.0.0.1/32");
	struct wgdev_change u[2] = {
		{ .add = { a4 }, .n_add = 1 },                              /* C */
		{ .add = { a3 }, .n_add = 1, .del = { d1 }, .n_del = 1 },   /* B */
	};
	int err[2];
	struct wgctl *ctl;

	hex_key(u[0].pubkey, PUB_C);
	hex_key(u[1].pubkey, PUB_B);
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	wgctl_allowedips_update_batch(ctl, u, 2, err);
	ck_assert_int_eq(err[0], 0);
	ck_assert_int_eq(err[1], 0);
	/* Known now: B's next removal goes alone, C's addition in a batch. */
	wgctl_allowedips_update_batch(ctl, u, 2, err);
	ck_assert_int_eq(err[0], 0);
	ck_assert_int_eq(err[1], 0);
	wgctl_close(ctl);
	fake_join(fw);

	assert_peer_ips(fw, PUB_B, "fd00::1/128 10.0.0.3/32");
	assert_peer_ips(fw, PUB_C, "10.0.1.0/24 10.0.0.4/32");
	fake_free(fw);
}
END_TEST

static int count_gets(struct fake_wg *fw)
{
	int n = 0;

	for (int c = 0; c < fw->conns && c < FAKE_CONNS; c++)
		for (const char *p = fake_log(fw, c); (p = strstr(p, "get=1\n\n")); p++)
			n++;
	return n;
}

/*
 * A daemon without the removal syntax: the changes of a batch that need
 * read-modify-write share one read of the device, kept up with the changes
 * made meanwhile, in order.
 */
START_TEST(conversation_batch_one_read)
{
	struct fake_wg *fw = fake_start(false);
	struct wgd_ip d4 = ip_of("10.0.0.1/32"), d6 = ip_of("fd00::1/128");
	struct wgd_ip a4 = ip_of("10.0.0.4/32"), a5 = ip_of("10.0.0.5/32");
	struct wgdev_change u[4] = {
		{ .del = { d4 }, .n_del = 1 },                              /* B */
		{ .add = { a4 }, .n_add = 1 },                              /* C */
		{ .add = { a5 }, .n_add = 1 },                              /* B */
		{ .del = { d6 }, .n_del = 1 },                              /* B */
	};
	int err[4];
	struct wgctl *ctl;

	hex_key(u[0].pubkey, PUB_B);
	hex_key(u[1].pubkey, PUB_C);
	hex_key(u[2].pubkey, PUB_B);
	hex_key(u[3].pubkey, PUB_B);
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	wgctl_allowedips_update_batch(ctl, u, 4, err);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(err[i], 0);
	wgctl_close(ctl);
	fake_join(fw);

	/* One read for the view, one for every read-modify-write. */
	ck_assert_int_eq(count_gets(fw), 2);
	/* B's addition between its two removals survived the second. */
	assert_peer_ips(fw, PUB_B, "10.0.0.5/32");
	assert_peer_ips(fw, PUB_C, "10.0.1.0/24 10.0.0.4/32");
	fake_free(fw);
}
END_TEST

/* Replies arriving in pieces, the blank line apart from the errno line. */
START_TEST(conversation_dribble)
{
	struct fake_wg *fw = fake_start(false);
	struct wgd_ip add = ip_of("10.0.0.3/32"), del = ip_of("10.0.0.1/32");
	uint8_t key[WG_KEY_LEN];
	struct wgctl *ctl;
	struct wgdev *dev;

	hex_key(key, PUB_B);
	fw->dribble = true;
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	for (int i = 0; i < 20; ++i) {
		ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
		ck_assert_uint_eq(dev->n_peers, 2);
		ck_assert_uint_eq(dev->peers[0].n_allowedips, 2);
		wgdev_free(dev);
	}
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, &add, 1, &del, 1), 0);
	wgctl_close(ctl);
	fake_join(fw);
	assert_peer_ips(fw, PUB_B, "fd00::1/128 10.0.0.3/32");
	fake_free(fw);
}
END_TEST

/*
 * The mesh's peer operations, and the view that follows them: a fresh peer
 * holds nothing, and a removed peer's allowed-IPs are free, with no read
 * of the device.
 */
START_TEST(conversation_peer_ops)
{
	struct fake_wg *fw = fake_start(true);
	struct wgd_endpoint ep = endpoint_of("192.0.2.7", 51820);
	struct wgd_ip a9 = ip_of("10.0.0.9/32"), b1 = ip_of("10.0.0.1/32");
	uint8_t key_b[WG_KEY_LEN], key_c[WG_KEY_LEN], key_d[WG_KEY_LEN];
	struct wgdev_peer *p;
	struct wgctl *ctl;
	struct wgdev *dev;

	hex_key(key_b, PUB_B);
	hex_key(key_c, PUB_C);
	hex_key(key_d, PUB_D);
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	wgdev_free(dev);

	/* A new peer: the view knows it at once and lets it take an address. */
	ck_assert_int_eq(wgctl_peer_add(ctl, key_d, &ep, 25), 0);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_d, &a9, 1, NULL, 0), 0);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_c, &a9, 1, NULL, 0), -EEXIST);
	/* Again, afresh: its address is free now. */
	ep = endpoint_of("2001:db8::7", 4000);
	ck_assert_int_eq(wgctl_peer_add(ctl, key_d, &ep, 5), 0);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_c, &a9, 1, NULL, 0), 0);
	/* A removed peer is gone from the view, and its addresses with it. */
	ck_assert_int_eq(wgctl_peer_remove(ctl, key_b), 0);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_b, &a9, 1, NULL, 0), -ENOENT);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_c, &b1, 1, NULL, 0), 0);
	/* An absent peer: nothing to remove, not an error. */
	ck_assert_int_eq(wgctl_peer_remove(ctl, key_b), 0);
	/* Bad input never reaches the daemon. */
	ep.port = 0;
	ck_assert_int_eq(wgctl_peer_add(ctl, key_b, &ep, 25), -EINVAL);

	/* What the device holds, read back. */
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	ck_assert_uint_eq(dev->n_peers, 2);
	ck_assert_ptr_null(wgdev_find_peer(dev, key_b));
	p = wgdev_find_peer(dev, key_d);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p->endpoint.sa.sa_family, AF_INET6);
	ck_assert_uint_eq(ntohs(p->endpoint.sin6.sin6_port), 4000);
	ck_assert_uint_eq(p->keepalive_s, 5);
	ck_assert_uint_eq(p->n_allowedips, 0);
	wgdev_free(dev);
	wgctl_close(ctl);
	fake_join(fw);

	/* One read for the view before the last; nothing more was needed. */
	ck_assert_int_eq(count_gets(fw), 2);
	ck_assert_str_eq(fake_log(fw, 0),
			 "get=1\n\n"
			 "set=1\npublic_key=" PUB_D "\nremove=true\npublic_key=" PUB_D "\n"
			 "endpoint=192.0.2.7:51820\npersistent_keepalive_interval=25\n"
			 "replace_allowed_ips=true\n\n"
			 "set=1\npublic_key=" PUB_D "\nupdate_only=true\n"
			 "allowed_ip=10.0.0.9/32\n\n"
			 "set=1\npublic_key=" PUB_D "\nremove=true\npublic_key=" PUB_D "\n"
			 "endpoint=[2001:db8::7]:4000\npersistent_keepalive_interval=5\n"
			 "replace_allowed_ips=true\n\n"
			 "set=1\n" SET_HEAD_C "allowed_ip=10.0.0.9/32\n\n"
			 "set=1\npublic_key=" PUB_B "\nremove=true\n\n"
			 "set=1\n" SET_HEAD_C "allowed_ip=10.0.0.1/32\n\n"
			 "set=1\npublic_key=" PUB_B "\nremove=true\n\n"
			 "get=1\n\n");
	assert_peer_ips(fw, PUB_C, "10.0.1.0/24 10.0.0.9/32 10.0.0.1/32");
	assert_peer_ips(fw, PUB_D, "");
	fake_free(fw);
}
END_TEST

/* A refused operation may have been made in part: the view is read again. */
START_TEST(conversation_peer_add_refused)
{
	struct fake_wg *fw = fake_start(true);
	struct wgd_endpoint ep = endpoint_of("192.0.2.7", 51820);
	struct wgd_ip b1 = ip_of("10.0.0.1/32");
	uint8_t key_b[WG_KEY_LEN], key_c[WG_KEY_LEN];
	struct wgctl *ctl;
	struct wgdev *dev;

	hex_key(key_b, PUB_B);
	hex_key(key_c, PUB_C);
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	wgdev_free(dev);
	fw->refuse_keepalive = true;
	ck_assert_int_eq(wgctl_peer_add(ctl, key_b, &ep, 25), -EINVAL);
	/*
	 * The daemon made B afresh before it failed, as wireguard-go would:
	 * the next update reads the device and finds B's address free.
	 */
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_c, &b1, 1, NULL, 0), 0);
	wgctl_close(ctl);
	fake_join(fw);
	ck_assert_int_eq(count_gets(fw), 2);
	assert_peer_ips(fw, PUB_B, "");
	assert_peer_ips(fw, PUB_C, "10.0.1.0/24 10.0.0.1/32");
	fake_free(fw);
}
END_TEST

START_TEST(daemon_gone)
{
	struct fake_wg *fw = fake_start(true);
	struct wgctl *ctl;
	struct wgdev *dev;

	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), 0);
	fake_join(fw);
	/* The listener still exists but nobody accepts: close it. */
	close(fw->lfd);
	fw->lfd = -1;
	ck_assert_int_lt(wgctl_get_device(ctl, &dev), 0);
	ck_assert_ptr_null(dev);
	/* With the socket file gone the next attempt says the device is. */
	unlink(fw->path);
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), -ENODEV);
	wgctl_close(ctl);
	/* No socket: the kernel path, which knows no such device either. */
	ck_assert_int_eq(wgctl_open(&ctl, "wgu0"), -ENODEV);
	fake_free(fw);
}
END_TEST

static Suite *wgdev_uapi_suite(void)
{
	Suite *s = suite_create("wgdev_uapi");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, parse_realistic);
	tcase_add_loop_test(tc, parse_malformed, 0,
			    (int)(sizeof(bad_replies) / sizeof(bad_replies[0])));
	tcase_add_test(tc, parse_odd_inputs);
	tcase_add_test(tc, build_set);
	tcase_add_test(tc, build_peer_ops);
	suite_add_tcase(s, tc);

	tc = tcase_create("conversation");
	tcase_add_test(tc, conversation_fallback);
	tcase_add_test(tc, conversation_incremental);
	tcase_add_test(tc, conversation_missing_peer);
	tcase_add_test(tc, conversation_reconnect);
	tcase_add_test(tc, conversation_dribble);
	tcase_add_test(tc, conversation_batch);
	tcase_add_test(tc, conversation_batch_bounds);
	tcase_add_test(tc, conversation_batch_refused);
	tcase_add_test(tc, conversation_batch_one_read);
	tcase_add_test(tc, conversation_peer_ops);
	tcase_add_test(tc, conversation_peer_add_refused);
	tcase_add_test(tc, daemon_gone);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wgdev_uapi_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
