// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "wgctl-ops.h"
#include "wgdev-uapi.h"

/*
 * How long one operation may take before we give up on the daemon. A hung
 * wireguard-go must not hang the caller with it.
 */
#define UAPI_TIMEOUT_SEC 10

struct uapi_conn {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *buf;
	size_t cap;
};

/* Like NUM(max) in wg(8): a leading digit, nothing but digits, at most max. */
static int parse_num(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || s[0] < '0' || s[0] > '9')
		return -EPROTO;
	for (size_t i = 0; i < len; ++i) {
		unsigned d = (unsigned)(s[i] - '0');

		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10)
			return -EPROTO;
		v = v * 10 + d;
	}
	if (v > max)
		return -EPROTO;
	*out = v;
	return 0;
}

/*
 * errno=N: wireguard-go sends negative values. Either sign is accepted, as
 * wg(8) accepts it, and the result is -|N|.
 */
static int parse_errno(const char *s, size_t len, int *out)
{
	uint64_t v;
	int ret;

	if (len && s[0] == '-') {
		++s;
		--len;
	}
	ret = parse_num(s, len, INT_MAX, &v);
	if (ret)
		return ret;
	*out = -(int)v;
	return 0;
}

/* Exactly 64 hex digits, either case. */
static int parse_key(const char *s, size_t len, uint8_t key[WG_KEY_LEN])
{
	const char *end;
	size_t n;

	if (len != WG_KEY_LEN * 2)
		return -EPROTO;
	if (sodium_hex2bin(key, WG_KEY_LEN, s, len, NULL, &n, &end) ||
	    n != WG_KEY_LEN || end != s + len)
		return -EPROTO;
	return 0;
}

/* Copies len bytes into a NUL-terminated buffer of size size, or fails. */
static int copy_token(char *dst, size_t size, const char *s, size_t len)
{
	if (len == 0 || len >= size || memchr(s, '\0', len))
		return -EPROTO;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/*
 * "A.B.C.D:PORT" or "[V6%ZONE]:PORT". A zone given by name is left at scope
 * 0 so the parser stays a pure function; wg-dynamic never dials endpoints.
 */
static int parse_endpoint(const char *s, size_t len, struct wgdev_peer *peer)
{
	char host[INET6_ADDRSTRLEN];
	const char *port, *end = s + len;
	uint64_t num, scope = 0;
	int ret;

	if (len && s[0] == '[') {
		const char *close = memchr(s, ']', len), *pct;
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

		if (!close || end - close < 2 || close[1] != ':')
			return -EPROTO;
		pct = memchr(s + 1, '%', (size_t)(close - s - 1));
		ret = copy_token(host, sizeof(host), s + 1,
				 (size_t)((pct ? pct : close) - s - 1));
		if (ret)
			return ret;
		if (pct) {
			size_t zlen = (size_t)(close - pct - 1);

			if (zlen == 0 || zlen >= IF_NAMESIZE)
				return -EPROTO;
			if (pct[1] >= '0' && pct[1] <= '9' &&
			    parse_num(pct + 1, zlen, UINT32_MAX, &scope))
				return -EPROTO;
		}
		if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
			return -EPROTO;
		port = close + 2;
		ret = parse_num(port, (size_t)(end - port), UINT16_MAX, &num);
		if (ret)
			return ret;
		sin6.sin6_port = htons((uint16_t)num);
		sin6.sin6_scope_id = (uint32_t)scope;
		peer->endpoint.sin6 = sin6;
	} else {
		const char *colon = memchr(s, ':', len);
		struct sockaddr_in sin = { .sin_family = AF_INET };

		if (!colon)
			return -EPROTO;
		ret = copy_token(host, sizeof(host), s, (size_t)(colon - s));
		if (ret)
			return ret;
		/* inet_pton() wants exactly four dotted decimals: no names, no shorthand. */
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
			return -EPROTO;
		port = colon + 1;
		ret = parse_num(port, (size_t)(end - port), UINT16_MAX, &num);
		if (ret)
			return ret;
		sin.sin_port = htons((uint16_t)num);
		memset(&peer->endpoint, 0, sizeof(peer->endpoint));
		peer->endpoint.sin = sin;
	}
	return 0;
}

static bool key_is(const char *k, size_t klen, const char *lit)
{
	return klen == strlen(lit) && !memcmp(k, lit, klen);
}

static bool is_peer_key(const char *k, size_t klen)
{
	static const char *const keys[] = {
		"preshared_key", "endpoint", "last_handshake_time_sec",
		"last_handshake_time_nsec", "tx_bytes", "rx_bytes",
		"persistent_keepalive_interval", "allowed_ip", "protocol_version",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); ++i) {
		if (key_is(k, klen, keys[i]))
			return true;
	}
	return false;
}

struct get_state {
	struct wgdev *dev;
	struct wgdev_peer *peer;
};

static int parse_device_line(struct get_state *st, const char *k, size_t klen,
			     const char *v, size_t vlen)
{
	uint8_t priv[WG_KEY_LEN];
	uint64_t num;
	int ret;

	if (key_is(k, klen, "private_key")) {
		ret = parse_key(v, vlen, priv);
		/* Only the public half is kept; the scalar multiplication clamps. */
		if (!ret && !crypto_scalarmult_curve25519_base(st->dev->pubkey, priv))
			st->dev->has_pubkey = true;
		sodium_memzero(priv, sizeof(priv));
		return ret;
	}
	if (key_is(k, klen, "listen_port")) {
		ret = parse_num(v, vlen, UINT16_MAX, &num);
		if (!ret)
			st->dev->listen_port = (uint16_t)num;
		return ret;
	}
	if (key_is(k, klen, "fwmark"))
		return parse_num(v, vlen, UINT32_MAX, &num);
	/* Peer keys before any public_key belong to no peer. */
	if (is_peer_key(k, klen))
		return -EPROTO;
	return 0;
}

static int parse_peer_line(struct get_state *st, const char *k, size_t klen,
			   const char *v, size_t vlen)
{
	struct wgdev_peer *peer = st->peer;
	uint8_t key[WG_KEY_LEN];
	struct wgd_ip ip;
	uint64_t num;
	int ret;

	if (key_is(k, klen, "endpoint"))
		return parse_endpoint(v, vlen, peer);
	if (key_is(k, klen, "allowed_ip")) {
		/* wireguard-go prints masked prefixes, but mask anyway to stay canonical. */
		if (wgd_ip_parse(&ip, v, vlen, false))
			return -EPROTO;
		wgd_ip_mask(&ip);
		return wgdev_peer_add_allowedip(peer, &ip);
	}
	if (key_is(k, klen, "last_handshake_time_sec")) {
		ret = parse_num(v, vlen, INT64_MAX, &num);
		if (!ret)
			peer->last_handshake_sec = (int64_t)num;
		return ret;
	}
	if (key_is(k, klen, "last_handshake_time_nsec")) {
		ret = parse_num(v, vlen, 999999999, &num);
		if (!ret)
			peer->last_handshake_nsec = (uint32_t)num;
		return ret;
	}
	if (key_is(k, klen, "preshared_key")) {
		ret = parse_key(v, vlen, key);
		sodium_memzero(key, sizeof(key));
		return ret;
	}
	if (key_is(k, klen, "protocol_version"))
		return parse_num(v, vlen, UINT32_MAX, &num);
	if (key_is(k, klen, "persistent_keepalive_interval")) {
		ret = parse_num(v, vlen, UINT16_MAX, &num);
		if (!ret)
			peer->keepalive_s = (uint16_t)num;
		return ret;
	}
	if (key_is(k, klen, "rx_bytes"))
		return parse_num(v, vlen, UINT64_MAX, &peer->rx_bytes);
	if (key_is(k, klen, "tx_bytes"))
		return parse_num(v, vlen, UINT64_MAX, &peer->tx_bytes);
	/* A device key after the first peer is out of place. */
	if (key_is(k, klen, "private_key") || key_is(k, klen, "listen_port") ||
	    key_is(k, klen, "fwmark"))
		return -EPROTO;
	return 0;
}

static int parse_line(struct get_state *st, const char *k, size_t klen,
		      const char *v, size_t vlen)
{
	uint8_t key[WG_KEY_LEN];
	int ret;

	if (key_is(k, klen, "public_key")) {
		ret = parse_key(v, vlen, key);
		if (ret)
			return ret;
		return wgdev_add_peer(st->dev, key, &st->peer);
	}
	if (!st->peer)
		return parse_device_line(st, k, klen, v, vlen);
	return parse_peer_line(st, k, klen, v, vlen);
}

/* Where a walk over a reply's lines stands, for replies read piece by piece. */
struct walker {
	bool have_errno;        /* the errno line came: only the blank line may follow */
	bool done;              /* the blank line came */
	int err;                /* -|N| of errno=N */
};

/*
 * Walks the whole key=value lines at the start of buf, up to the blank
 * line that ends a reply, which must directly follow "errno=N" and end the
 * reply. Each line but the errno line goes to line_cb. Returns the bytes
 * consumed (a partial last line is left), or -EPROTO.
 */
static ssize_t walk_lines(struct walker *w, const char *buf, size_t len,
			  int (*line_cb)(struct get_state *, const char *, size_t,
					 const char *, size_t),
			  struct get_state *st)
{
	const char *p = buf, *end = buf + len;
	int ret;

	while (p < end) {
		const char *nl, *eq;
		size_t line_len;

		if (w->done)
			return -EPROTO; /* nothing may follow the reply */
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			if ((size_t)(end - p) > UAPI_LINE_MAX)
				return -EPROTO;
			break;
		}
		line_len = (size_t)(nl - p);
		if (line_len == 0) {
			if (!w->have_errno)
				return -EPROTO;
			w->done = true;
			p = nl + 1;
			continue;
		}
		if (w->have_errno || line_len > UAPI_LINE_MAX)
			return -EPROTO;
		eq = memchr(p, '=', line_len);
		if (!eq || eq == p)
			return -EPROTO;
		if (key_is(p, (size_t)(eq - p), "errno")) {
			ret = parse_errno(eq + 1, (size_t)(nl - eq - 1), &w->err);
			w->have_errno = true;
		} else if (line_cb) {
			ret = line_cb(st, p, (size_t)(eq - p), eq + 1, (size_t)(nl - eq - 1));
		} else {
			ret = -EPROTO;
		}
		if (ret)
			return ret;
		p = nl + 1;
	}
	return p - buf;
}

/* A whole reply in buf: 0 with *errno_out set, or -EPROTO. */
static int walk_reply(const char *buf, size_t len, int *errno_out,
		      int (*line_cb)(struct get_state *, const char *, size_t,
				     const char *, size_t),
		      struct get_state *st)
{
	struct walker w = { 0 };
	ssize_t n = walk_lines(&w, buf, len, line_cb, st);

	if (n < 0)
		return (int)n;
	if (!w.done || (size_t)n != len)
		return -EPROTO;
	*errno_out = w.err;
	return 0;
}

/* Like uapi_reply_end(), but bytes before from were already searched. */
static size_t reply_end_from(const char *buf, size_t len, size_t from)
{
	const char *p;

	if (len && buf[0] == '\n')
		return 1;
	/* The terminator may straddle the old and the new bytes. */
	from = from ? from - 1 : 0;
	p = len - from >= 2 ? memmem(buf + from, len - from, "\n\n", 2) : NULL;
	return p ? (size_t)(p - buf) + 2 : 0;
}

size_t uapi_reply_end(const char *buf, size_t len)
{
	return reply_end_from(buf, len, 0);
}

int uapi_parse_get(const char *buf, size_t len, struct wgdev **out)
{
	struct get_state st = { 0 };
	int err = 0, ret;

	*out = NULL;
	st.dev = calloc(1, sizeof(*st.dev));
	if (!st.dev)
		return -ENOMEM;
	ret = walk_reply(buf, len, &err, parse_line, &st);
	if (!ret)
		ret = err;
	if (ret) {
		wgdev_free(st.dev);
		return ret;
	}
	*out = st.dev;
	return 0;
}

int uapi_parse_set(const char *buf, size_t len)
{
	int err = 0, ret;

	ret = walk_reply(buf, len, &err, NULL, NULL);
	return ret ? ret : err;
}

/* "allowed_ip=-" + prefix + "\n" */
#define SET_LINE_MAX (12 + WGD_IP_STRLEN + 1)
/* "public_key=" + hex + "\nupdate_only=true\nreplace_allowed_ips=true\n" */
#define SET_PEER_HEAD_MAX 128

/* Room for one peer's lines, or SIZE_MAX when the count would overflow. */
static size_t set_peer_size(size_t n_add, size_t n_del)
{
	/* n_del on its own first, so that the subtraction cannot wrap. */
	if (n_del > (SIZE_MAX - SET_PEER_HEAD_MAX) / SET_LINE_MAX ||
	    n_add > (SIZE_MAX - SET_PEER_HEAD_MAX) / SET_LINE_MAX - n_del)
		return SIZE_MAX;
	return SET_PEER_HEAD_MAX + (n_add + n_del) * SET_LINE_MAX;
}

/* Appends one peer's lines at s + len, which has room (set_peer_size()). */
static int append_peer(char *s, size_t size, size_t *len,
		       const uint8_t pubkey[WG_KEY_LEN], bool replace,
		       const struct wgd_ip *add, size_t n_add,
		       const struct wgd_ip *del, size_t n_del)
{
	char hex[WG_KEY_LEN * 2 + 1], ipbuf[WGD_IP_STRLEN];
	size_t l = *len;

	sodium_bin2hex(hex, sizeof(hex), pubkey, WG_KEY_LEN);
	/*
	 * update_only must come right after public_key: wireguard-go creates
	 * the peer on public_key and drops it again on update_only.
	 */
	l += (size_t)snprintf(s + l, size - l, "public_key=%s\nupdate_only=true\n", hex);
	if (replace)
		l += (size_t)snprintf(s + l, size - l, "replace_allowed_ips=true\n");
	/*
	 * Removals first: a daemon without the syntax then fails on the first
	 * removal before it has applied anything of this peer.
	 */
	for (size_t i = 0; i < n_del; ++i) {
		if (!*wgd_ip_format(&del[i], ipbuf, sizeof(ipbuf)))
			return -EINVAL;
		l += (size_t)snprintf(s + l, size - l, "allowed_ip=-%s\n", ipbuf);
	}
	for (size_t i = 0; i < n_add; ++i) {
		if (!*wgd_ip_format(&add[i], ipbuf, sizeof(ipbuf)))
			return -EINVAL;
		l += (size_t)snprintf(s + l, size - l, "allowed_ip=%s\n", ipbuf);
	}
	*len = l;
	return 0;
}

int uapi_build_set_allowedips(char **out, size_t *out_len,
			      const uint8_t pubkey[WG_KEY_LEN], bool replace,
			      const struct wgd_ip *add, size_t n_add,
			      const struct wgd_ip *del, size_t n_del)
{
	size_t size = 8, one = set_peer_size(n_add, n_del), len;
	char *s;
	int ret;

	*out = NULL;
	*out_len = 0;
	if (replace && n_del)
		return -EINVAL;
	if (one == SIZE_MAX || size > SIZE_MAX - one)
		return -ENOMEM;
	size += one;
	s = malloc(size);
	if (!s)
		return -ENOMEM;
	len = (size_t)snprintf(s, size, "set=1\n");
	ret = append_peer(s, size, &len, pubkey, replace, add, n_add, del, n_del);
	if (ret) {
		free(s);
		return ret;
	}
	len += (size_t)snprintf(s + len, size - len, "\n");
	*out = s;
	*out_len = len;
	return 0;
}

int uapi_build_set_batch(char **out, size_t *out_len, const struct wgdev_change *c, size_t n)
{
	size_t size = 8, len = 0;
	char *s;
	int ret;

	*out = NULL;
	*out_len = 0;
	for (size_t i = 0; i < n; i++) {
		size_t one = set_peer_size(c[i].n_add, c[i].n_del);

		if (c[i].n_add > WGDEV_CHANGE_MAX || c[i].n_del > WGDEV_CHANGE_MAX)
			return -EINVAL;
		if (size > SIZE_MAX - one)
			return -ENOMEM;
		size += one;
	}
	s = malloc(size);
	if (!s)
		return -ENOMEM;
	len = (size_t)snprintf(s, size, "set=1\n");
	for (size_t i = 0; i < n; i++) {
		ret = append_peer(s, size, &len, c[i].pubkey, false, c[i].add, c[i].n_add,
				  c[i].del, c[i].n_del);
		if (ret) {
			free(s);
			return ret;
		}
	}
	len += (size_t)snprintf(s + len, size - len, "\n");
	*out = s;
	*out_len = len;
	return 0;
}

/* ADDR:PORT, or [ADDR]:PORT for IPv6, with no zone: mesh endpoints are never link-local. */
static int format_endpoint(char *buf, size_t len, const struct wgd_endpoint *ep)
{
	char host[INET6_ADDRSTRLEN];
	int n;

	if ((ep->addr.family != AF_INET && ep->addr.family != AF_INET6) || !ep->port ||
	    !inet_ntop(ep->addr.family, ep->addr.bytes, host, sizeof(host)))
		return -EINVAL;
	n = snprintf(buf, len, ep->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
		     (unsigned)ep->port);
	return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

/*
 * wireguard-go runs a set operation line by line: public_key selects the
 * peer, creating it when absent, and remove=true drops it again, so that
 * removing an absent peer succeeds and the second public_key creates it
 * afresh, with new handshake state and counters. Setting a keepalive on a
 * fresh peer of an up device sends a keepalive, and with it a handshake
 * initiation, at once. The removal leaves the peer no allowed-IPs;
 * replace_allowed_ips=true states it in the request itself, as
 * WGPEER_F_REPLACE_ALLOWEDIPS does in the kernel's.
 */
ssize_t uapi_build_add_peer(char *buf, size_t len, const uint8_t pubkey[WG_KEY_LEN],
			    const struct wgd_endpoint *endpoint, uint16_t keepalive_s)
{
	char hex[WG_KEY_LEN * 2 + 1], ep[WGD_ENDPOINT_STRLEN] = "";
	int n;

	if (endpoint && endpoint->addr.family && format_endpoint(ep, sizeof(ep), endpoint))
		return -EINVAL;
	sodium_bin2hex(hex, sizeof(hex), pubkey, WG_KEY_LEN);
	n = snprintf(buf, len,
		     "set=1\npublic_key=%s\nremove=true\npublic_key=%s\n%s%s%s"
		     "persistent_keepalive_interval=%u\nreplace_allowed_ips=true\n\n",
		     hex, hex, *ep ? "endpoint=" : "", ep, *ep ? "\n" : "",
		     (unsigned)keepalive_s);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

ssize_t uapi_build_remove_peer(char *buf, size_t len, const uint8_t pubkey[WG_KEY_LEN])
{
	char hex[WG_KEY_LEN * 2 + 1];
	int n;

	sodium_bin2hex(hex, sizeof(hex), pubkey, WG_KEY_LEN);
	n = snprintf(buf, len, "set=1\npublic_key=%s\nremove=true\n\n", hex);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

int uapi_socket_path(char *buf, size_t len, const char *dir, const char *ifname)
{
	int n = snprintf(buf, len, "%s/%s.sock", dir, ifname);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

static void conn_drop(struct uapi_conn *uc)
{
	if (uc->fd >= 0)
		close(uc->fd);
	uc->fd = -1;
}

static int conn_connect(struct uapi_conn *uc)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = UAPI_TIMEOUT_SEC };
	int fd, ret;

	memcpy(sun.sun_path, uc->path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		ret = -errno;
		close(fd);
		/* A socket file with no daemon behind it: the device is gone. */
		if (ret == -ECONNREFUSED || ret == -ENOENT)
			ret = -ENODEV;
		return ret;
	}
	uc->fd = fd;
	return 0;
}

static int send_all(int fd, const char *p, size_t len)
{
	while (len) {
		/* MSG_NOSIGNAL: a daemon that went away is an error, not a SIGPIPE. */
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Grows uc->buf, wiping the old copy: a reply to get=1 holds the private
 * key, and realloc() would leave it behind in freed memory.
 */
static int buf_grow(struct uapi_conn *uc, size_t used)
{
	size_t cap = uc->cap ? uc->cap * 2 : 4096;
	char *p;

	if (uc->cap >= UAPI_REPLY_MAX)
		return -EMSGSIZE;
	p = malloc(cap);
	if (!p)
		return -ENOMEM;
	if (uc->buf) {
		memcpy(p, uc->buf, used);
		sodium_memzero(uc->buf, uc->cap);
		free(uc->buf);
	}
	uc->buf = p;
	uc->cap = cap;
	return 0;
}

/* Reads one reply into uc->buf; its length goes to *out_len (0 on failure). */
static int read_reply(struct uapi_conn *uc, size_t *out_len)
{
	size_t len = 0, end;
	int ret;

	*out_len = 0;
	for (;;) {
		ssize_t n;

		if (len == uc->cap) {
			ret = buf_grow(uc, len);
			if (ret)
				goto err;
		}
		n = recv(uc->fd, uc->buf + len, uc->cap - len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto err;
		}
		if (n == 0) {
			ret = -ECONNRESET;
			goto err;
		}
		end = reply_end_from(uc->buf, len + (size_t)n, len);
		len += (size_t)n;
		if (end) {
			/* Nothing is pipelined, so nothing may follow the reply. */
			if (end != len) {
				ret = -EPROTO;
				goto err;
			}
			break;
		}
	}
	*out_len = len;
	return 0;
err:
	if (len)
		sodium_memzero(uc->buf, len);
	return ret;
}

/*
 * Sends one operation and reads its reply. The connection is kept for the
 * next one: wireguard-go serves any number of operations per connection.
 * When a kept connection turns out dead (the daemon restarted), connect and
 * send once more; every operation sent here is idempotent.
 */
static int transact(struct uapi_conn *uc, const char *req, size_t req_len,
		    size_t *reply_len)
{
	int ret;

	for (int attempt = 0;; ++attempt) {
		if (uc->fd < 0) {
			ret = conn_connect(uc);
			if (ret)
				return ret;
		}
		ret = send_all(uc->fd, req, req_len);
		if (!ret)
			ret = read_reply(uc, reply_len);
		if (!ret)
			return 0;
		conn_drop(uc);
		if (attempt || (ret != -EPIPE && ret != -ECONNRESET))
			return ret;
	}
}

int uapi_conn_open(struct uapi_conn **out, const char *path)
{
	struct uapi_conn *uc;
	int ret;

	*out = NULL;
	if (strlen(path) >= sizeof(uc->path))
		return -ENAMETOOLONG;
	uc = calloc(1, sizeof(*uc));
	if (!uc)
		return -ENOMEM;
	uc->fd = -1;
	memcpy(uc->path, path, strlen(path) + 1);
	ret = conn_connect(uc);
	if (ret) {
		free(uc);
		return ret;
	}
	*out = uc;
	return 0;
}

void uapi_conn_close(struct uapi_conn *uc)
{
	if (!uc)
		return;
	conn_drop(uc);
	if (uc->buf)
		sodium_memzero(uc->buf, uc->cap);
	free(uc->buf);
	free(uc);
}

/*
 * Reads a get=1 reply and parses it as it arrives, through a buffer of
 * UAPI_STREAM_BUF bytes: a device of a million peers is hundreds of
 * megabytes of text, which is never held whole. *got_any says whether any
 * of the reply came.
 */
static int read_get(struct uapi_conn *uc, struct wgdev **out, bool *got_any)
{
	struct get_state st = { 0 };
	struct walker w = { 0 };
	size_t len = 0;
	int ret = 0;

	*got_any = false;
	while (uc->cap < UAPI_STREAM_BUF && !ret)
		ret = buf_grow(uc, 0);
	st.dev = ret ? NULL : calloc(1, sizeof(*st.dev));
	if (!st.dev)
		return -ENOMEM;
	while (!w.done) {
		ssize_t n = recv(uc->fd, uc->buf + len, uc->cap - len, 0), used;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		if (n == 0) {
			ret = -ECONNRESET;
			goto out;
		}
		*got_any = true;
		len += (size_t)n;
		used = walk_lines(&w, uc->buf, len, parse_line, &st);
		if (used < 0) {
			ret = (int)used;
			goto out;
		}
		if (w.done && (size_t)used != len) {
			ret = -EPROTO; /* nothing is pipelined: nothing may follow */
			goto out;
		}
		memmove(uc->buf, uc->buf + used, len - (size_t)used);
		len -= (size_t)used;
	}
	ret = w.err;
out:
	/* The reply carried the private key. */
	sodium_memzero(uc->buf, uc->cap);
	if (ret) {
		wgdev_free(st.dev);
		return ret;
	}
	*out = st.dev;
	return 0;
}

int uapi_conn_get_device(struct uapi_conn *uc, struct wgdev **out)
{
	static const char req[] = "get=1\n\n";
	bool got_any;
	int ret;

	*out = NULL;
	for (int attempt = 0;; ++attempt) {
		if (uc->fd < 0) {
			ret = conn_connect(uc);
			if (ret)
				return ret;
		}
		ret = send_all(uc->fd, req, sizeof(req) - 1);
		if (!ret)
			ret = read_get(uc, out, &got_any);
		else
			got_any = false;
		if (!ret)
			return 0;
		conn_drop(uc);
		/* A kept connection the daemon closed meanwhile: once more. */
		if (attempt || got_any || (ret != -EPIPE && ret != -ECONNRESET))
			return ret;
	}
}

/*
 * One set operation built whole beforehand. wireguard-go stops reading a
 * failed set at the bad line and takes the rest of the operation for the
 * next one, so after an error the connection is out of step: start a
 * fresh one next time.
 */
static int send_op(struct uapi_conn *uc, const char *req, size_t req_len)
{
	size_t len;
	int ret;

	ret = transact(uc, req, req_len, &len);
	if (!ret)
		ret = uapi_parse_set(uc->buf, len);
	if (ret)
		conn_drop(uc);
	return ret;
}

static int send_set(struct uapi_conn *uc, const uint8_t pubkey[WG_KEY_LEN], bool replace,
		    const struct wgd_ip *add, size_t n_add,
		    const struct wgd_ip *del, size_t n_del)
{
	size_t req_len;
	char *req;
	int ret;

	ret = uapi_build_set_allowedips(&req, &req_len, pubkey, replace,
					add, n_add, del, n_del);
	if (ret)
		return ret;
	ret = send_op(uc, req, req_len);
	free(req);
	return ret;
}

/*
 * One operation, so a failure is always the first's. wireguard-go before
 * 0.0.20250522 (Debian's 0.0.20220316 among them) answers "allowed_ip=-"
 * with errno=-22 before touching anything, as the removals go first (see
 * wgctl.c). update_only=true keeps a peer removed meanwhile from being
 * re-created, and the daemon then reports success all the same.
 */
int uapi_conn_change(struct uapi_conn *uc, const uint8_t pubkey[WG_KEY_LEN],
		     const struct wgd_ip *add, size_t n_add,
		     const struct wgd_ip *del, size_t n_del, bool *first_refused)
{
	*first_refused = true;
	return send_set(uc, pubkey, false, add, n_add, del, n_del);
}

int uapi_conn_replace_allowedips(struct uapi_conn *uc, const uint8_t pubkey[WG_KEY_LEN],
				 const struct wgd_ip *ips, size_t n)
{
	return send_set(uc, pubkey, true, ips, n, NULL, 0);
}

int uapi_conn_change_batch(struct uapi_conn *uc, const struct wgdev_change *c, size_t n)
{
	size_t req_len;
	char *req;
	int ret;

	ret = uapi_build_set_batch(&req, &req_len, c, n);
	if (ret)
		return ret;
	ret = send_op(uc, req, req_len);
	free(req);
	return ret;
}

int uapi_conn_add_peer(struct uapi_conn *uc, const uint8_t pubkey[WG_KEY_LEN],
		       const struct wgd_endpoint *endpoint, uint16_t keepalive_s)
{
	char req[UAPI_PEER_OP_MAX];
	ssize_t n = uapi_build_add_peer(req, sizeof(req), pubkey, endpoint, keepalive_s);

	return n < 0 ? (int)n : send_op(uc, req, (size_t)n);
}

int uapi_conn_remove_peer(struct uapi_conn *uc, const uint8_t pubkey[WG_KEY_LEN])
{
	char req[UAPI_PEER_OP_MAX];
	ssize_t n = uapi_build_remove_peer(req, sizeof(req), pubkey);

	return n < 0 ? (int)n : send_op(uc, req, (size_t)n);
}

static void ops_close(void *conn)
{
	uapi_conn_close(conn);
}

static int ops_get_device(void *conn, struct wgdev **out)
{
	return uapi_conn_get_device(conn, out);
}

static int ops_change(void *conn, const uint8_t pubkey[WG_KEY_LEN],
		      const struct wgd_ip *add, size_t n_add,
		      const struct wgd_ip *del, size_t n_del, bool *first_refused)
{
	return uapi_conn_change(conn, pubkey, add, n_add, del, n_del, first_refused);
}

static int ops_change_batch(void *conn, const struct wgdev_change *c, size_t n)
{
	return uapi_conn_change_batch(conn, c, n);
}

static int ops_replace_allowedips(void *conn, const uint8_t pubkey[WG_KEY_LEN],
				  const struct wgd_ip *ips, size_t n)
{
	return uapi_conn_replace_allowedips(conn, pubkey, ips, n);
}

static int ops_add_peer(void *conn, const uint8_t pubkey[WG_KEY_LEN],
			const struct wgd_endpoint *endpoint, uint16_t keepalive_s)
{
	return uapi_conn_add_peer(conn, pubkey, endpoint, keepalive_s);
}

static int ops_remove_peer(void *conn, const uint8_t pubkey[WG_KEY_LEN])
{
	return uapi_conn_remove_peer(conn, pubkey);
}

const struct wgctl_ops uapi_ops = {
	.name = "userspace",
	.close = ops_close,
	.get_device = ops_get_device,
	.change = ops_change,
	.change_batch = ops_change_batch,
	.replace_allowedips = ops_replace_allowedips,
	.add_peer = ops_add_peer,
	.remove_peer = ops_remove_peer,
};
