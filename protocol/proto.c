// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "proto.h"

_Static_assert(WGD_KEY_COUNT <= 32, "wgd_parser.seen has one bit per key");
_Static_assert(WGD_MAX_ERRMSG <= WGD_MAX_LINE, "errmsg fits in a line");

#define X(e, s) [e] = s,
static const char *const key_names[WGD_KEY_COUNT] = { WGD_KEYS(X) };
#undef X

/* Log texts per key, built from the same table so none can go missing. */
#define X(e, s) [e] = "bad number in " s,
static const char *const bad_number[WGD_KEY_COUNT] = { WGD_KEYS(X) };
#undef X
#define X(e, s) [e] = "repeated " s,
static const char *const repeated[WGD_KEY_COUNT] = { WGD_KEYS(X) };
#undef X

#define X(e, n, s) [n] = s,
static const char *const error_texts[WGD_E_COUNT] = { WGD_ERRORS(X) };
#undef X

const char *wgd_key_name(enum wgd_key key)
{
	if (key <= WGD_KEY_UNKNOWN || key >= WGD_KEY_COUNT)
		return NULL;
	return key_names[key];
}

const char *wgd_error_text(uint32_t err)
{
	return err < WGD_E_COUNT ? error_texts[err] : NULL;
}

static enum wgd_key key_lookup(const char *s, size_t len)
{
	for (int k = WGD_KEY_UNKNOWN + 1; k < WGD_KEY_COUNT; ++k) {
		if (strlen(key_names[k]) == len && !memcmp(key_names[k], s, len))
			return (enum wgd_key)k;
	}
	return WGD_KEY_UNKNOWN;
}

/*
 * Plain decimal only: no sign, no blanks, no base prefix, at least one
 * digit. Ten digits cover UINT32_MAX; counting first keeps the sum inside
 * 64 bits whatever the peer sends.
 */
static int parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (size_t i = 0; i < len; ++i) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* What dns_search may hold: printable ASCII without blanks. */
static bool is_domain_char(char c)
{
	return c > ' ' && c <= '~';
}

static bool ip_in(const struct wgd_ip *ip, const struct wgd_ip *list, size_t n)
{
	for (size_t i = 0; i < n; ++i)
		if (wgd_ip_equal(ip, &list[i]))
			return true;
	return false;
}

void wgd_parser_init(struct wgd_parser *p, enum wgd_parse_kind kind)
{
	memset(p, 0, sizeof(*p));
	p->kind = kind;
}

void wgd_parser_set_peers(struct wgd_parser *p, struct wgd_peer_entry *store)
{
	p->msg.peers = store;
}

static int parser_fail(struct wgd_parser *p, int err, const char *why)
{
	p->status = -err;
	p->error = why;
	return -err;
}

static bool seen_once(struct wgd_parser *p, enum wgd_key key)
{
	uint32_t bit = UINT32_C(1) << key;
	bool again = p->seen & bit;

	p->seen |= bit;
	return !again;
}

/* The first line of a request names the command and its version. */
static int parse_command(struct wgd_parser *p, enum wgd_key key,
			 const char *val, size_t vlen)
{
	uint32_t version;

	/*
	 * Upstream answers an unknown command as an unsupported protocol, so
	 * a newer client learns to fall back instead of being told it erred.
	 */
	if (key != WGD_KEY_REQUEST_IP && key != WGD_KEY_REQUEST_PEERS)
		return parser_fail(p, WGD_E_UNSUPPORTED, "unknown command");
	if (parse_u32(val, vlen, &version))
		return parser_fail(p, WGD_E_INVALID, bad_number[key]);
	p->msg.cmd = key == WGD_KEY_REQUEST_IP ? WGD_CMD_REQUEST_IP : WGD_CMD_REQUEST_PEERS;
	p->msg.version = version;
	p->seen |= UINT32_C(1) << key;
	if (version != 1)
		return parser_fail(p, WGD_E_UNSUPPORTED, "unsupported version");
	return 0;
}

static int parse_ip_line(struct wgd_parser *p, const char *val, size_t vlen)
{
	struct wgd_msg *m = &p->msg;
	struct wgd_ip ip;

	if (wgd_ip_parse(&ip, val, vlen, false))
		return parser_fail(p, WGD_E_INVALID, "bad address in ip");
	/* A lease is one address per family; prefixes are for route=. */
	if (ip.cidr != wgd_ip_bits(ip.family))
		return parser_fail(p, WGD_E_INVALID, "ip is not a /32 or /128");
	if (ip.family == AF_INET) {
		if (m->has_ip4)
			return parser_fail(p, WGD_E_INVALID, "repeated IPv4 ip");
		m->has_ip4 = true;
		m->ip4 = ip;
	} else {
		if (m->has_ip6)
			return parser_fail(p, WGD_E_INVALID, "repeated IPv6 ip");
		m->has_ip6 = true;
		m->ip6 = ip;
	}
	return 0;
}

/* A flag: "1" and nothing else. */
static int parse_flag(struct wgd_parser *p, enum wgd_key key, const char *val, size_t vlen,
		      bool *out)
{
	if (!seen_once(p, key))
		return parser_fail(p, WGD_E_INVALID, repeated[key]);
	if (vlen != 1 || val[0] != '1')
		return parser_fail(p, WGD_E_INVALID, bad_number[key]);
	*out = true;
	return 0;
}

static int parse_u16(const char *s, size_t len, uint16_t *out)
{
	uint32_t v;

	if (parse_u32(s, len, &v) || v > UINT16_MAX)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* A bare host address: no prefix length, of any family unless one is asked. */
static int parse_host(struct wgd_ip *out, const char *s, size_t len, uint8_t family)
{
	if (memchr(s, '/', len) || wgd_ip_parse(out, s, len, false))
		return -EINVAL;
	if (family && out->family != family)
		return -EINVAL;
	return 0;
}

int wgd_endpoint_parse(struct wgd_endpoint *out, const char *s, size_t len)
{
	const char *colon, *host = s;
	size_t hlen;
	struct wgd_endpoint ep = { 0 };

	colon = len ? memrchr(s, ':', len) : NULL;
	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - s);
	/* IPv6 goes in brackets, so that the port cannot be read into it. */
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		host = s + 1;
		hlen -= 2;
		if (parse_host(&ep.addr, host, hlen, AF_INET6))
			return -EINVAL;
	} else if (parse_host(&ep.addr, host, hlen, AF_INET)) {
		return -EINVAL;
	}
	if (parse_u16(colon + 1, len - hlen - 1 - (host != s ? 2 : 0), &ep.port) || !ep.port)
		return -EINVAL;
	*out = ep;
	return 0;
}

char *wgd_endpoint_format(const struct wgd_endpoint *ep, char *buf, size_t len)
{
	char a[WGD_IP_STRLEN];
	int n;

	wgd_ip_format_addr(&ep->addr, a, sizeof(a));
	n = snprintf(buf, len, ep->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, ep->port);
	if (n < 0 || (size_t)n >= len) {
		if (len)
			buf[0] = '\0';
	}
	return buf;
}

/* A key as wg(8) writes it: 44 characters of base64, and only the one
 * spelling of those 32 bytes, so that one peer has one name on the wire. */
static int parse_key(uint8_t key[32], const char *s, size_t len)
{
	char again[WGD_KEY_B64 + 1];
	size_t n;

	if (len != WGD_KEY_B64 ||
	    sodium_base642bin(key, 32, s, len, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) ||
	    n != 32)
		return -EINVAL;
	sodium_bin2base64(again, sizeof(again), key, 32, sodium_base64_VARIANT_ORIGINAL);
	return memcmp(again, s, len) ? -EINVAL : 0;
}

/* The next field of a peer= line: up to a space or the end. */
static bool next_field(const char **s, const char *end, const char **f, size_t *flen)
{
	const char *sp;

	if (*s >= end)
		return false;
	sp = memchr(*s, ' ', (size_t)(end - *s));
	*f = *s;
	*flen = (size_t)((sp ? sp : end) - *s);
	*s = sp ? sp + 1 : end;
	return true;
}

static bool is_dash(const char *f, size_t flen)
{
	return flen == 1 && f[0] == '-';
}

/* peer=KEY IP4|- IP6|- ENDPOINT|- PORT [CANDIDATE ...] */
static int parse_peer_line(struct wgd_peer_entry *e, const char *val, size_t vlen)
{
	const char *s = val, *end = val + vlen, *f;
	size_t flen;

	memset(e, 0, sizeof(*e));
	if (!next_field(&s, end, &f, &flen) || parse_key(e->key, f, flen))
		return -EINVAL;
	if (!next_field(&s, end, &f, &flen))
		return -EINVAL;
	if (!is_dash(f, flen)) {
		if (parse_host(&e->ip4, f, flen, AF_INET))
			return -EINVAL;
		e->has_ip4 = true;
	}
	if (!next_field(&s, end, &f, &flen))
		return -EINVAL;
	if (!is_dash(f, flen)) {
		if (parse_host(&e->ip6, f, flen, AF_INET6))
			return -EINVAL;
		e->has_ip6 = true;
	}
	if (!next_field(&s, end, &f, &flen))
		return -EINVAL;
	if (!is_dash(f, flen) && wgd_endpoint_parse(&e->endpoint, f, flen))
		return -EINVAL;
	if (!next_field(&s, end, &f, &flen) || parse_u16(f, flen, &e->port))
		return -EINVAL;
	while (next_field(&s, end, &f, &flen)) {
		struct wgd_ip ip;

		if (parse_host(&ip, f, flen, 0))
			return -EINVAL;
		if (ip_in(&ip, e->cand, e->n_cand))
			continue;
		if (e->n_cand >= WGD_MAX_CANDIDATES)
			return -EINVAL;
		e->cand[e->n_cand++] = ip;
	}
	/* "a  b" or a trailing blank would be an empty field. */
	return vlen && val[vlen - 1] == ' ' ? -EINVAL : 0;
}

static bool peer_listed(const struct wgd_msg *m, const uint8_t key[32])
{
	for (size_t i = 0; i < m->n_peers; ++i)
		if (!memcmp(m->peers[i].key, key, 32))
			return true;
	return false;
}

/* The directory lines of a response. Each peer once per message. */
static int parse_dir_line(struct wgd_parser *p, enum wgd_key key, const char *val, size_t vlen)
{
	struct wgd_msg *m = &p->msg;
	struct wgd_peer_entry e;

	/* A reader that asked for no directory has no room for one. */
	if (!m->peers)
		return 0;
	if (key == WGD_KEY_GONE) {
		memset(&e, 0, sizeof(e));
		if (parse_key(e.key, val, vlen))
			return parser_fail(p, WGD_E_INVALID, "bad key in gone");
		e.gone = true;
	} else if (parse_peer_line(&e, val, vlen)) {
		return parser_fail(p, WGD_E_INVALID, "bad peer line");
	}
	if (peer_listed(m, e.key))
		return parser_fail(p, WGD_E_INVALID, "repeated peer");
	if (m->n_peers >= WGD_MAX_PEERS)
		return parser_fail(p, WGD_E_INVALID, "too many peers");
	m->peers[m->n_peers++] = e;
	return 0;
}

/* The keys of a request_peers request; in a request_ip they are unknown. */
static int parse_peers_attr(struct wgd_parser *p, enum wgd_key key, const char *val, size_t vlen)
{
	struct wgd_msg *m = &p->msg;
	struct wgd_ip ip;

	switch (key) {
	case WGD_KEY_EPOCH:
	case WGD_KEY_SINCE:
		if (!seen_once(p, key))
			return parser_fail(p, WGD_E_INVALID, repeated[key]);
		if (parse_u32(val, vlen, key == WGD_KEY_EPOCH ? &m->epoch : &m->since))
			return parser_fail(p, WGD_E_INVALID, bad_number[key]);
		if (key == WGD_KEY_EPOCH)
			m->has_epoch = true;
		else
			m->has_since = true;
		return 0;
	case WGD_KEY_PORT:
		if (!seen_once(p, key))
			return parser_fail(p, WGD_E_INVALID, repeated[key]);
		if (parse_u16(val, vlen, &m->port))
			return parser_fail(p, WGD_E_INVALID, bad_number[key]);
		return 0;
	case WGD_KEY_CANDIDATE:
		if (parse_host(&ip, val, vlen, 0))
			return parser_fail(p, WGD_E_INVALID, "bad address in candidate");
		if (ip_in(&ip, m->cand, m->n_cand))
			return 0;
		if (m->n_cand >= WGD_MAX_CANDIDATES)
			return parser_fail(p, WGD_E_INVALID, "too many candidates");
		m->cand[m->n_cand++] = ip;
		return 0;
	default:
		return 0;
	}
}

/* The mesh keys of a response. */
static int parse_mesh_attr(struct wgd_parser *p, enum wgd_key key, const char *val, size_t vlen)
{
	struct wgd_msg *m = &p->msg;

	switch (key) {
	case WGD_KEY_MESH:
		return parse_flag(p, key, val, vlen, &m->mesh);
	case WGD_KEY_RESET:
		return parse_flag(p, key, val, vlen, &m->reset);
	case WGD_KEY_MORE:
		return parse_flag(p, key, val, vlen, &m->more);
	case WGD_KEY_EPOCH:
	case WGD_KEY_VERSION:
		if (!seen_once(p, key))
			return parser_fail(p, WGD_E_INVALID, repeated[key]);
		if (parse_u32(val, vlen, key == WGD_KEY_EPOCH ? &m->epoch : &m->dir_version))
			return parser_fail(p, WGD_E_INVALID, bad_number[key]);
		if (key == WGD_KEY_EPOCH)
			m->has_epoch = true;
		else
			m->has_dir_version = true;
		return 0;
	case WGD_KEY_PEER:
	case WGD_KEY_GONE:
		return parse_dir_line(p, key, val, vlen);
	default:
		return 0;
	}
}

/* One key=value line after the command, if any. */
static int parse_attr(struct wgd_parser *p, enum wgd_key key,
		      const char *val, size_t vlen)
{
	struct wgd_msg *m = &p->msg;
	bool request = p->kind == WGD_PARSE_REQUEST;
	struct wgd_ip ip;

	switch (key) {
	case WGD_KEY_REQUEST_IP:
	case WGD_KEY_REQUEST_PEERS:
		if (request)
			return parser_fail(p, WGD_E_INVALID, repeated[key]);
		return parser_fail(p, WGD_E_INVALID, "command in a response");
	default:
		break;
	}
	/* A request_peers has its own keys; the lease's mean nothing there. */
	if (request && m->cmd == WGD_CMD_REQUEST_PEERS)
		return parse_peers_attr(p, key, val, vlen);

	switch (key) {
	case WGD_KEY_IP:
		return parse_ip_line(p, val, vlen);
	case WGD_KEY_LEASESTART:
	case WGD_KEY_LEASETIME:
		if (!seen_once(p, key))
			return parser_fail(p, WGD_E_INVALID, repeated[key]);
		if (parse_u32(val, vlen, key == WGD_KEY_LEASESTART ?
					     &m->leasestart : &m->leasetime))
			return parser_fail(p, WGD_E_INVALID, bad_number[key]);
		if (key == WGD_KEY_LEASESTART)
			m->has_leasestart = true;
		else
			m->has_leasetime = true;
		return 0;
	default:
		break;
	}

	/*
	 * What is left only means something in a response. A request
	 * carrying it is treated as carrying an unknown key: ignored, but
	 * its bytes still counted against the limits.
	 */
	if (request)
		return 0;

	switch (key) {
	case WGD_KEY_ERRNO:
	case WGD_KEY_MTU:
		if (!seen_once(p, key))
			return parser_fail(p, WGD_E_INVALID, repeated[key]);
		if (parse_u32(val, vlen, key == WGD_KEY_ERRNO ? &m->err : &m->mtu))
			return parser_fail(p, WGD_E_INVALID, bad_number[key]);
		if (key == WGD_KEY_ERRNO)
			m->has_errno = true;
		return 0;
	case WGD_KEY_ERRMSG:
		if (!seen_once(p, key))
			return parser_fail(p, WGD_E_INVALID, repeated[key]);
		/* Free text for a human; a long one loses its tail, not the
		 * whole answer. */
		if (vlen > sizeof(m->errmsg) - 1)
			vlen = sizeof(m->errmsg) - 1;
		memcpy(m->errmsg, val, vlen);
		m->errmsg[vlen] = '\0';
		return 0;
	case WGD_KEY_ROUTE:
		if (wgd_ip_parse(&ip, val, vlen, true))
			return parser_fail(p, WGD_E_INVALID, "bad prefix in route");
		/* A repeated route is one route: the lists are sets, so that
		 * no consumer can be made to count one entry twice. */
		if (ip_in(&ip, m->routes, m->n_routes))
			return 0;
		if (m->n_routes >= WGD_MAX_ROUTES)
			return parser_fail(p, WGD_E_INVALID, "too many routes");
		m->routes[m->n_routes++] = ip;
		return 0;
	case WGD_KEY_DNS:
		if (memchr(val, '/', vlen) || wgd_ip_parse(&ip, val, vlen, false))
			return parser_fail(p, WGD_E_INVALID, "bad address in dns");
		if (ip_in(&ip, m->dns, m->n_dns))
			return 0;
		if (m->n_dns >= WGD_MAX_DNS)
			return parser_fail(p, WGD_E_INVALID, "too many dns");
		m->dns[m->n_dns++] = ip;
		return 0;
	case WGD_KEY_DNS_SEARCH:
		if (!seen_once(p, key))
			return parser_fail(p, WGD_E_INVALID, repeated[key]);
		/*
		 * A bad value costs the value, not the message: the lease in it
		 * is still good. A cut domain would be a wrong one, so a long
		 * value is dropped whole; any other is kept as sent, for the
		 * client to judge (client/configure.c) and log escaped.
		 */
		m->dns_search_bad = vlen == 0 || vlen > sizeof(m->dns_search) - 1;
		for (size_t i = 0; i < vlen && !m->dns_search_bad; ++i)
			if (!is_domain_char(val[i]))
				m->dns_search_bad = true;
		if (vlen <= sizeof(m->dns_search) - 1) {
			memcpy(m->dns_search, val, vlen);
			m->dns_search[vlen] = '\0';
		}
		return 0;
	default:
		/* Unknown keys are skipped so that newer peers can add some. */
		return parse_mesh_attr(p, key, val, vlen);
	}
}

/* Returns 1 at the end of the message, 0 for more, < 0 on error. */
static int parse_line(struct wgd_parser *p)
{
	const char *line = p->line, *eq, *val;
	size_t len = p->line_len, klen, vlen;
	enum wgd_key key;
	int ret;

	if (len == 0) {
		if (p->nlines == 0)
			return parser_fail(p, WGD_E_INVALID, "empty message");
		if (p->kind == WGD_PARSE_RESPONSE && !p->msg.has_errno)
			return parser_fail(p, WGD_E_INVALID, "missing errno");
		return 1;
	}

	eq = memchr(line, '=', len);
	if (!eq)
		return parser_fail(p, WGD_E_INVALID, "line without '='");
	klen = (size_t)(eq - line);
	if (klen == 0)
		return parser_fail(p, WGD_E_INVALID, "empty key");
	val = eq + 1;
	vlen = len - klen - 1;
	key = key_lookup(line, klen);

	if (p->kind == WGD_PARSE_REQUEST && p->nlines == 0)
		ret = parse_command(p, key, val, vlen);
	else
		ret = parse_attr(p, key, val, vlen);
	return ret < 0 ? ret : 0;
}

ssize_t wgd_parse(struct wgd_parser *p, const void *buf, size_t len)
{
	const char *in = buf;
	size_t off = 0;

	if (p->status < 0)
		return p->status;
	if (p->status > 0)
		return parser_fail(p, WGD_E_INVALID, "fed after end of message");

	while (off < len) {
		const char *nl = memchr(in + off, '\n', len - off);
		size_t chunk = nl ? (size_t)(nl - (in + off)) : len - off;
		size_t take = chunk + (nl ? 1 : 0);
		int ret;

		/* Limits first, so that nothing past them is ever copied. */
		if (p->line_len + chunk > WGD_MAX_LINE - 1)
			return parser_fail(p, WGD_E_INVALID, "line too long");
		if (p->msg_len + take > WGD_MAX_MESSAGE)
			return parser_fail(p, WGD_E_INVALID, "message too long");
		if (memchr(in + off, '\0', chunk))
			return parser_fail(p, WGD_E_INVALID, "NUL byte");

		memcpy(p->line + p->line_len, in + off, chunk);
		p->line_len += chunk;
		p->msg_len += take;
		off += take;
		if (!nl)
			break;

		ret = parse_line(p);
		p->line_len = 0;
		p->nlines++;
		if (ret < 0)
			return ret;
		if (ret > 0) {
			p->status = 1;
			return (ssize_t)off;
		}
	}
	return 0;
}

/* Appends to a bounded buffer; every write is checked, none is cut short. */
struct out {
	char *buf;
	size_t len, pos;
	int err;
};

static void __attribute__((format(printf, 2, 3)))
out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		o->err = -EINVAL;
	else if ((size_t)n >= o->len - o->pos)
		o->err = -ENOSPC;
	else
		o->pos += (size_t)n;
}

static void out_init(struct out *o, char *buf, size_t len)
{
	o->buf = buf;
	o->len = len;
	o->pos = 0;
	o->err = len ? 0 : -ENOSPC;
	if (len)
		buf[0] = '\0';
}

static ssize_t out_finish(struct out *o)
{
	if (o->err) {
		if (o->len)
			o->buf[0] = '\0';
		return o->err;
	}
	return (ssize_t)o->pos;
}

/* Whether an ip= line can be written for ip, as the family it stands for. */
static bool valid_ip_field(const struct wgd_ip *ip, uint8_t family, bool zero_ok)
{
	return ip->family == family || (zero_ok && ip->family == 0);
}

/*
 * An ip= line always carries /32 or /128, as upstream writes it. In a
 * request a family of 0 stands for the unspecified address.
 */
static void out_ip_line(struct out *o, const struct wgd_ip *ip, uint8_t family)
{
	char text[WGD_IP_STRLEN];
	struct wgd_ip host = *ip;

	host.family = family;
	host.cidr = (uint8_t)wgd_ip_bits(family);
	out_printf(o, "ip=%s\n", wgd_ip_format(&host, text, sizeof(text)));
}

static bool valid_host(const struct wgd_ip *ip, uint8_t family)
{
	if (ip->family != AF_INET && ip->family != AF_INET6)
		return false;
	return (!family || ip->family == family) && ip->cidr == wgd_ip_bits(ip->family);
}

static ssize_t serialize_peers_request(const struct wgd_msg *m, struct out *o)
{
	char text[WGD_IP_STRLEN];

	if (m->n_cand > WGD_MAX_CANDIDATES)
		return -EINVAL;
	for (size_t i = 0; i < m->n_cand; ++i)
		if (!valid_host(&m->cand[i], 0))
			return -EINVAL;
	out_printf(o, "request_peers=1\nepoch=%u\nsince=%u\nport=%u\n", m->epoch, m->since,
		   m->port);
	for (size_t i = 0; i < m->n_cand; ++i)
		out_printf(o, "candidate=%s\n", wgd_ip_format_addr(&m->cand[i], text, sizeof(text)));
	out_printf(o, "\n");
	return out_finish(o);
}

ssize_t wgd_serialize_request(const struct wgd_msg *m, char *buf, size_t len)
{
	struct out o;

	out_init(&o, buf, len);
	if ((m->has_ip4 && !valid_ip_field(&m->ip4, AF_INET, true)) ||
	    (m->has_ip6 && !valid_ip_field(&m->ip6, AF_INET6, true)))
		return -EINVAL;

	if (m->cmd == WGD_CMD_REQUEST_PEERS)
		return serialize_peers_request(m, &o);
	out_printf(&o, "request_ip=1\n");
	if (m->has_ip4)
		out_ip_line(&o, &m->ip4, AF_INET);
	if (m->has_ip6)
		out_ip_line(&o, &m->ip6, AF_INET6);
	/* Upstream sends the lease lines exactly when it asks for an address. */
	if (m->has_ip4 || m->has_ip6)
		out_printf(&o, "leasestart=%u\nleasetime=%u\n",
			   m->leasestart, m->leasetime);
	out_printf(&o, "\n");
	return out_finish(&o);
}

static bool valid_prefix(const struct wgd_ip *ip)
{
	struct wgd_ip masked;

	if (ip->family != AF_INET && ip->family != AF_INET6)
		return false;
	if (ip->cidr > wgd_ip_bits(ip->family))
		return false;
	masked = *ip;
	wgd_ip_mask(&masked);
	return !memcmp(masked.bytes, ip->bytes, wgd_ip_len(ip->family));
}

/* Refuses what the parser would refuse, so that no peer is sent it. */
static bool valid_response(const struct wgd_msg *m)
{
	size_t n;

	if ((m->has_ip4 && !valid_ip_field(&m->ip4, AF_INET, false)) ||
	    (m->has_ip6 && !valid_ip_field(&m->ip6, AF_INET6, false)))
		return false;
	if (m->n_routes > WGD_MAX_ROUTES || m->n_dns > WGD_MAX_DNS || m->n_peers > WGD_MAX_PEERS ||
	    (m->n_peers && !m->peers))
		return false;
	for (size_t i = 0; i < m->n_peers; ++i)
		for (size_t j = 0; j < i; ++j)
			if (!memcmp(m->peers[i].key, m->peers[j].key, 32))
				return false;
	for (size_t i = 0; i < m->n_routes; ++i) {
		if (!valid_prefix(&m->routes[i]))
			return false;
	}
	for (size_t i = 0; i < m->n_dns; ++i) {
		if (m->dns[i].family != AF_INET && m->dns[i].family != AF_INET6)
			return false;
	}

	n = strnlen(m->dns_search, sizeof(m->dns_search));
	if (n == sizeof(m->dns_search))
		return false;
	for (size_t i = 0; i < n; ++i) {
		if (!is_domain_char(m->dns_search[i]))
			return false;
	}

	/* A newline in errmsg would end the line early and forge keys. */
	if (!m->err)
		return true;
	n = strnlen(m->errmsg, sizeof(m->errmsg));
	return n < sizeof(m->errmsg) && !memchr(m->errmsg, '\n', n);
}

static bool valid_endpoint(const struct wgd_endpoint *ep)
{
	return !ep->addr.family || (valid_host(&ep->addr, 0) && ep->port);
}

ssize_t wgd_format_peer_line(const struct wgd_peer_entry *e, char *buf, size_t len)
{
	char key[WGD_KEY_B64 + 1], text[WGD_ENDPOINT_STRLEN];
	struct out o;

	out_init(&o, buf, len);
	if ((e->has_ip4 && !valid_host(&e->ip4, AF_INET)) ||
	    (e->has_ip6 && !valid_host(&e->ip6, AF_INET6)) || !valid_endpoint(&e->endpoint) ||
	    e->n_cand > WGD_MAX_CANDIDATES)
		return -EINVAL;
	for (size_t i = 0; i < e->n_cand; ++i)
		if (!valid_host(&e->cand[i], 0))
			return -EINVAL;

	sodium_bin2base64(key, sizeof(key), e->key, 32, sodium_base64_VARIANT_ORIGINAL);
	if (e->gone) {
		out_printf(&o, "gone=%s", key);
		return out_finish(&o);
	}
	out_printf(&o, "peer=%s", key);
	out_printf(&o, " %s", e->has_ip4 ? wgd_ip_format_addr(&e->ip4, text, sizeof(text)) : "-");
	out_printf(&o, " %s", e->has_ip6 ? wgd_ip_format_addr(&e->ip6, text, sizeof(text)) : "-");
	out_printf(&o, " %s", e->endpoint.addr.family ?
			      wgd_endpoint_format(&e->endpoint, text, sizeof(text)) : "-");
	out_printf(&o, " %u", e->port);
	for (size_t i = 0; i < e->n_cand; ++i)
		out_printf(&o, " %s", wgd_ip_format_addr(&e->cand[i], text, sizeof(text)));
	return out_finish(&o);
}

/* The mesh part of a response: the flags, then the directory lines. */
static void out_mesh(struct out *o, const struct wgd_msg *m)
{
	char line[WGD_MAX_LINE];

	if (m->mesh)
		out_printf(o, "mesh=1\n");
	if (m->has_epoch)
		out_printf(o, "epoch=%u\n", m->epoch);
	if (m->has_dir_version)
		out_printf(o, "version=%u\n", m->dir_version);
	if (m->reset)
		out_printf(o, "reset=1\n");
	if (m->more)
		out_printf(o, "more=1\n");
	for (size_t i = 0; i < m->n_peers; ++i) {
		if (wgd_format_peer_line(&m->peers[i], line, sizeof(line)) < 0) {
			o->err = -EINVAL;
			return;
		}
		out_printf(o, "%s\n", line);
	}
}

ssize_t wgd_serialize_response(const struct wgd_msg *m, char *buf, size_t len)
{
	char text[WGD_IP_STRLEN];
	const char *errmsg;
	struct out o;

	out_init(&o, buf, len);
	if (!valid_response(m))
		return -EINVAL;

	if (m->has_ip4)
		out_ip_line(&o, &m->ip4, AF_INET);
	if (m->has_ip6)
		out_ip_line(&o, &m->ip6, AF_INET6);
	for (size_t i = 0; i < m->n_routes; ++i)
		out_printf(&o, "route=%s\n",
			   wgd_ip_format(&m->routes[i], text, sizeof(text)));
	for (size_t i = 0; i < m->n_dns; ++i)
		out_printf(&o, "dns=%s\n",
			   wgd_ip_format_addr(&m->dns[i], text, sizeof(text)));
	if (m->dns_search[0])
		out_printf(&o, "dns_search=%s\n", m->dns_search);
	if (m->mtu)
		out_printf(&o, "mtu=%u\n", m->mtu);
	if (m->has_ip4 || m->has_ip6)
		out_printf(&o, "leasestart=%u\nleasetime=%u\n",
			   m->leasestart, m->leasetime);
	out_mesh(&o, m);
	out_printf(&o, "errno=%u\n", m->err);
	if (m->err) {
		errmsg = m->errmsg[0] ? m->errmsg : wgd_error_text(m->err);
		out_printf(&o, "errmsg=%s\n", errmsg ? errmsg : "Unknown error");
	}
	out_printf(&o, "\n");
	return out_finish(&o);
}
