// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "../../protocol/proto.h"

/* The messages upstream wg-dynamic sends, byte for byte. */
static const char req_any[] =
	"request_ip=1\nip=0.0.0.0/32\nip=::/128\nleasestart=0\nleasetime=0\n\n";
static const char req_renew[] =
	"request_ip=1\nip=192.168.47.11/32\nip=fd00::1a/128\n"
	"leasestart=1700000000\nleasetime=3600\n\n";
static const char req_release[] = "request_ip=1\n\n";
static const char resp_ok[] =
	"ip=192.168.47.11/32\nip=fd00::1a/128\nleasestart=1700000000\n"
	"leasetime=3600\nerrno=0\n\n";
static const char resp_err[] = "errno=3\nerrmsg=Chosen IP(s) unavailable\n\n";
static const char resp_partial[] =
	"ip=fd00::1a/128\nleasestart=1700000000\nleasetime=3600\n"
	"errno=3\nerrmsg=Chosen IP(s) unavailable\n\n";

/* Every field this module knows, in the order the serializer writes. */
static const char resp_full[] =
	"ip=10.9.0.7/32\n"
	"ip=fd00:9::7/128\n"
	"route=10.9.0.0/16\n"
	"route=0.0.0.0/0\n"
	"route=fd00:9::/64\n"
	"dns=10.9.0.1\n"
	"dns=fd00:9::1\n"
	"dns_search=corp.example\n"
	"mtu=1380\n"
	"leasestart=1700000123\n"
	"leasetime=86400\n"
	"errno=0\n"
	"\n";

static struct wgd_parser parser;
static struct wgd_peer_entry parser_lines[WGD_MAX_PEERS];

static struct wgd_ip ip_of(const char *s)
{
	struct wgd_ip ip;

	ck_assert_msg(wgd_ip_parse(&ip, s, strlen(s), false) == 0,
		      "cannot parse %s", s);
	return ip;
}

static void assert_ip(const struct wgd_ip *ip, const char *want)
{
	char buf[WGD_IP_STRLEN];

	ck_assert_str_eq(wgd_ip_format(ip, buf, sizeof(buf)), want);
}

static ssize_t parse_as(enum wgd_parse_kind kind, const char *s, size_t len)
{
	wgd_parser_init(&parser, kind);
	wgd_parser_set_peers(&parser, parser_lines);
	return wgd_parse(&parser, s, len);
}

static ssize_t parse_req(const char *s)
{
	return parse_as(WGD_PARSE_REQUEST, s, strlen(s));
}

static ssize_t parse_resp(const char *s)
{
	return parse_as(WGD_PARSE_RESPONSE, s, strlen(s));
}

/* A whole message, fed at once, and all of it consumed. */
static void assert_parses(enum wgd_parse_kind kind, const char *s)
{
	ssize_t r = parse_as(kind, s, strlen(s));

	ck_assert_msg(r == (ssize_t)strlen(s), "parsing \"%s\" gave %zd (%s)",
		      s, r, parser.error ? parser.error : "no error");
}

static void assert_rejects(enum wgd_parse_kind kind, const char *s, size_t len,
			   int err, const char *why)
{
	ssize_t r = parse_as(kind, s, len);

	ck_assert_msg(r == -err, "parsing \"%.*s\" gave %zd, not %d",
		      (int)len, s, r, -err);
	ck_assert_ptr_nonnull(parser.error);
	if (why)
		ck_assert_str_eq(parser.error, why);
}

static void assert_req_rejects(const char *s, int err, const char *why)
{
	assert_rejects(WGD_PARSE_REQUEST, s, strlen(s), err, why);
}

static void assert_resp_rejects(const char *s, int err, const char *why)
{
	assert_rejects(WGD_PARSE_RESPONSE, s, strlen(s), err, why);
}

static bool ip_same(bool has_a, const struct wgd_ip *a, bool has_b,
		    const struct wgd_ip *b)
{
	return has_a == has_b && (!has_a || wgd_ip_equal(a, b));
}

/* Field by field: padding bytes are not part of a message. */
static bool msg_equal(const struct wgd_msg *a, const struct wgd_msg *b)
{
	if (a->cmd != b->cmd || a->version != b->version ||
	    !ip_same(a->has_ip4, &a->ip4, b->has_ip4, &b->ip4) ||
	    !ip_same(a->has_ip6, &a->ip6, b->has_ip6, &b->ip6) ||
	    a->has_leasestart != b->has_leasestart ||
	    a->has_leasetime != b->has_leasetime ||
	    a->leasestart != b->leasestart || a->leasetime != b->leasetime ||
	    a->has_errno != b->has_errno || a->err != b->err ||
	    strcmp(a->errmsg, b->errmsg) || a->n_routes != b->n_routes ||
	    a->n_dns != b->n_dns || strcmp(a->dns_search, b->dns_search) ||
	    a->mtu != b->mtu)
		return false;
	for (size_t i = 0; i < a->n_routes; ++i) {
		if (!wgd_ip_equal(&a->routes[i], &b->routes[i]))
			return false;
	}
	for (size_t i = 0; i < a->n_dns; ++i) {
		if (!wgd_ip_equal(&a->dns[i], &b->dns[i]))
			return false;
	}
	return true;
}

START_TEST(test_names)
{
	ck_assert_str_eq(wgd_key_name(WGD_KEY_REQUEST_IP), "request_ip");
	ck_assert_str_eq(wgd_key_name(WGD_KEY_IP), "ip");
	ck_assert_str_eq(wgd_key_name(WGD_KEY_DNS_SEARCH), "dns_search");
	ck_assert_str_eq(wgd_key_name(WGD_KEY_MTU), "mtu");
	ck_assert_ptr_null(wgd_key_name(WGD_KEY_UNKNOWN));
	ck_assert_ptr_null(wgd_key_name(WGD_KEY_COUNT));
	ck_assert_str_eq(wgd_error_text(0), "Success");
	ck_assert_str_eq(wgd_error_text(1), "Invalid request");
	ck_assert_str_eq(wgd_error_text(2), "Unsupported protocol");
	ck_assert_str_eq(wgd_error_text(3), "Chosen IP(s) unavailable");
	ck_assert_ptr_null(wgd_error_text(4));
	ck_assert_ptr_null(wgd_error_text(UINT32_MAX));
	ck_assert_int_eq(WGD_E_INVALID, 1);
	ck_assert_int_eq(WGD_E_UNSUPPORTED, 2);
	ck_assert_int_eq(WGD_E_UNAVAILABLE, 3);
}
END_TEST

START_TEST(test_upstream_requests)
{
	struct wgd_msg *m = &parser.msg;

	ck_assert_int_eq(parse_req(req_any), strlen(req_any));
	ck_assert_int_eq(m->cmd, WGD_CMD_REQUEST_IP);
	ck_assert_int_eq(m->version, 1);
	ck_assert(m->has_ip4 && m->has_ip6);
	ck_assert(wgd_ip_is_unspecified(&m->ip4));
	ck_assert(wgd_ip_is_unspecified(&m->ip6));
	assert_ip(&m->ip4, "0.0.0.0/32");
	assert_ip(&m->ip6, "::/128");
	ck_assert(m->has_leasestart && m->has_leasetime);
	ck_assert_int_eq(m->leasestart, 0);
	ck_assert_int_eq(m->leasetime, 0);
	ck_assert(!m->has_errno);
	ck_assert_int_eq(parser.nlines, 6);
	ck_assert_ptr_null(parser.error);

	ck_assert_int_eq(parse_req(req_renew), strlen(req_renew));
	assert_ip(&m->ip4, "192.168.47.11/32");
	assert_ip(&m->ip6, "fd00::1a/128");
	ck_assert_uint_eq(m->leasestart, 1700000000);
	ck_assert_uint_eq(m->leasetime, 3600);

	ck_assert_int_eq(parse_req(req_release), strlen(req_release));
	ck_assert_int_eq(m->cmd, WGD_CMD_REQUEST_IP);
	ck_assert(!m->has_ip4 && !m->has_ip6);
	ck_assert(!m->has_leasestart && !m->has_leasetime);

	/* ip= without a prefix length is a host address. */
	assert_parses(WGD_PARSE_REQUEST, "request_ip=1\nip=10.0.0.5\nip=fd00::5\n\n");
	assert_ip(&m->ip4, "10.0.0.5/32");
	assert_ip(&m->ip6, "fd00::5/128");
	ck_assert(!m->has_leasestart);

	/* One family only, the other is released. */
	assert_parses(WGD_PARSE_REQUEST, "request_ip=1\nip=::/128\nleasestart=0\nleasetime=0\n\n");
	ck_assert(!m->has_ip4 && m->has_ip6);
}
END_TEST

START_TEST(test_upstream_responses)
{
	struct wgd_msg *m = &parser.msg;

	ck_assert_int_eq(parse_resp(resp_ok), strlen(resp_ok));
	ck_assert_int_eq(m->cmd, WGD_CMD_NONE);
	assert_ip(&m->ip4, "192.168.47.11/32");
	assert_ip(&m->ip6, "fd00::1a/128");
	ck_assert_uint_eq(m->leasestart, 1700000000);
	ck_assert_uint_eq(m->leasetime, 3600);
	ck_assert(m->has_errno);
	ck_assert_uint_eq(m->err, 0);
	ck_assert_str_eq(m->errmsg, "");

	ck_assert_int_eq(parse_resp(resp_err), strlen(resp_err));
	ck_assert(!m->has_ip4 && !m->has_ip6);
	ck_assert_uint_eq(m->err, WGD_E_UNAVAILABLE);
	ck_assert_str_eq(m->errmsg, "Chosen IP(s) unavailable");

	ck_assert_int_eq(parse_resp(resp_partial), strlen(resp_partial));
	ck_assert(!m->has_ip4 && m->has_ip6);
	assert_ip(&m->ip6, "fd00::1a/128");
	ck_assert_uint_eq(m->err, 3);
	ck_assert_str_eq(m->errmsg, "Chosen IP(s) unavailable");

	ck_assert_int_eq(parse_resp(resp_full), strlen(resp_full));
	ck_assert_uint_eq(m->n_routes, 3);
	assert_ip(&m->routes[0], "10.9.0.0/16");
	assert_ip(&m->routes[1], "0.0.0.0/0");
	assert_ip(&m->routes[2], "fd00:9::/64");
	ck_assert_uint_eq(m->n_dns, 2);
	assert_ip(&m->dns[0], "10.9.0.1/32");
	assert_ip(&m->dns[1], "fd00:9::1/128");
	ck_assert_str_eq(m->dns_search, "corp.example");
	ck_assert_uint_eq(m->mtu, 1380);

	/* Unknown errno values pass through; the caller decides. */
	assert_parses(WGD_PARSE_RESPONSE, "errno=4294967295\n\n");
	ck_assert_uint_eq(m->err, UINT32_MAX);
	/* The key order is free, errno need not come last. */
	assert_parses(WGD_PARSE_RESPONSE, "errno=0\nleasetime=5\nip=10.0.0.1\n\n");
	ck_assert_uint_eq(m->leasetime, 5);
}
END_TEST

START_TEST(test_unknown_keys)
{
	struct wgd_msg *m = &parser.msg;

	assert_parses(WGD_PARSE_REQUEST,
		      "request_ip=1\nfuture=yes\nx=\nweird key!=a=b=c\nip=10.0.0.9\n\n");
	assert_ip(&m->ip4, "10.0.0.9/32");

	/* Response-only keys in a request are skipped, even bad or repeated. */
	assert_parses(WGD_PARSE_REQUEST,
		      "request_ip=1\nerrno=x\nerrno=y\nroute=junk\nmtu=-1\n"
		      "dns=1.2.3.4/8\ndns_search=a b\nerrmsg=1\nerrmsg=2\n\n");
	ck_assert(!m->has_errno);
	ck_assert_uint_eq(m->n_routes, 0);
	ck_assert_uint_eq(m->n_dns, 0);
	ck_assert_str_eq(m->errmsg, "");
	ck_assert_str_eq(m->dns_search, "");

	assert_parses(WGD_PARSE_RESPONSE, "future=1\nfuture=2\nerrno=0\n\n");
	ck_assert(m->has_errno);

	/* Values may hold '=' and leading zeros are plain decimal. */
	assert_parses(WGD_PARSE_RESPONSE, "errno=1\nerrmsg=a=b\nleasetime=0000000007\n\n");
	ck_assert_str_eq(m->errmsg, "a=b");
	ck_assert_uint_eq(m->leasetime, 7);
	assert_parses(WGD_PARSE_REQUEST, "request_ip=01\n\n");
	ck_assert_uint_eq(m->version, 1);
}
END_TEST

START_TEST(test_serialize_request)
{
	struct wgd_msg m = { 0 };
	char buf[WGD_MAX_MESSAGE];

	/* Family 0 and an unspecified address both ask for any address. */
	m.has_ip4 = m.has_ip6 = true;
	ck_assert_int_eq(wgd_serialize_request(&m, buf, sizeof(buf)), strlen(req_any));
	ck_assert_str_eq(buf, req_any);
	m.ip4 = ip_of("0.0.0.0");
	m.ip6 = ip_of("::");
	ck_assert_int_eq(wgd_serialize_request(&m, buf, sizeof(buf)), strlen(req_any));
	ck_assert_str_eq(buf, req_any);

	m.ip4 = ip_of("192.168.47.11");
	m.ip6 = ip_of("fd00::1a");
	m.has_leasestart = m.has_leasetime = true;
	m.leasestart = 1700000000;
	m.leasetime = 3600;
	m.version = 7; /* we only speak version 1 */
	ck_assert_int_eq(wgd_serialize_request(&m, buf, sizeof(buf)), strlen(req_renew));
	ck_assert_str_eq(buf, req_renew);

	/* The prefix length on the wire is always the host one. */
	m.ip4.cidr = 24;
	ck_assert_int_gt(wgd_serialize_request(&m, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, req_renew);

	m.has_ip4 = false;
	ck_assert_int_gt(wgd_serialize_request(&m, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "request_ip=1\nip=fd00::1a/128\n"
			      "leasestart=1700000000\nleasetime=3600\n\n");

	/* No address: no lease lines either, as upstream. */
	m.has_ip6 = false;
	ck_assert_int_eq(wgd_serialize_request(&m, buf, sizeof(buf)), strlen(req_release));
	ck_assert_str_eq(buf, req_release);

	m.has_ip4 = true;
	m.ip4 = ip_of("fd00::1");
	ck_assert_int_eq(wgd_serialize_request(&m, buf, sizeof(buf)), -EINVAL);
}
END_TEST

static void fill_full(struct wgd_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->has_ip4 = m->has_ip6 = true;
	m->ip4 = ip_of("10.9.0.7");
	m->ip6 = ip_of("fd00:9::7");
	m->routes[m->n_routes++] = ip_of("10.9.0.0/16");
	m->routes[m->n_routes++] = ip_of("0.0.0.0/0");
	m->routes[m->n_routes++] = ip_of("fd00:9::/64");
	m->dns[m->n_dns++] = ip_of("10.9.0.1");
	m->dns[m->n_dns++] = ip_of("fd00:9::1");
	strcpy(m->dns_search, "corp.example");
	m->mtu = 1380;
	m->has_leasestart = m->has_leasetime = true;
	m->leasestart = 1700000123;
	m->leasetime = 86400;
	m->has_errno = true;
}

START_TEST(test_serialize_response)
{
	struct wgd_msg m = { 0 };
	char buf[WGD_MAX_MESSAGE];

	m.has_ip4 = m.has_ip6 = true;
	m.ip4 = ip_of("192.168.47.11");
	m.ip6 = ip_of("fd00::1a");
	m.leasestart = 1700000000;
	m.leasetime = 3600;
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), strlen(resp_ok));
	ck_assert_str_eq(buf, resp_ok);

	/* An empty errmsg takes the default text. */
	m.err = WGD_E_UNAVAILABLE;
	m.has_ip4 = false;
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), strlen(resp_partial));
	ck_assert_str_eq(buf, resp_partial);

	m.has_ip6 = false;
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), strlen(resp_err));
	ck_assert_str_eq(buf, resp_err);

	strcpy(m.errmsg, "Pool exhausted");
	m.err = WGD_E_INVALID;
	ck_assert_int_gt(wgd_serialize_response(&m, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "errno=1\nerrmsg=Pool exhausted\n\n");

	m.err = 9;
	m.errmsg[0] = '\0';
	ck_assert_int_gt(wgd_serialize_response(&m, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "errno=9\nerrmsg=Unknown error\n\n");

	/* errno=0 never carries an errmsg. */
	m.err = 0;
	strcpy(m.errmsg, "ignored");
	ck_assert_int_gt(wgd_serialize_response(&m, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "errno=0\n\n");

	fill_full(&m);
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), strlen(resp_full));
	ck_assert_str_eq(buf, resp_full);

	/* Lease lines only with an address; mtu only when set. */
	m.has_ip4 = m.has_ip6 = false;
	m.mtu = 0;
	m.n_routes = m.n_dns = 0;
	m.dns_search[0] = '\0';
	ck_assert_int_gt(wgd_serialize_response(&m, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "errno=0\n\n");
}
END_TEST

START_TEST(test_serialize_space)
{
	struct wgd_msg m;
	char buf[WGD_MAX_MESSAGE];
	ssize_t n, r;

	fill_full(&m);
	n = wgd_serialize_response(&m, buf, sizeof(buf));
	ck_assert_int_eq(n, strlen(resp_full));

	/* Every length short of the message and its NUL fails cleanly. */
	for (size_t len = 0; len <= (size_t)n; ++len) {
		memset(buf, 'x', sizeof(buf));
		r = wgd_serialize_response(&m, buf, len);
		ck_assert_int_eq(r, -ENOSPC);
		ck_assert_msg(len == 0 || buf[0] == '\0', "leftover at %zu", len);
		ck_assert_msg(buf[len] == 'x', "wrote past %zu", len);
	}
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(wgd_serialize_response(&m, buf, (size_t)n + 1), n);
	ck_assert_int_eq(buf[n], '\0');
	ck_assert_int_eq(buf[n + 1], 'x');

	memset(&m, 0, sizeof(m));
	m.has_ip4 = m.has_ip6 = true;
	m.ip4 = ip_of("0.0.0.0");
	m.ip6 = ip_of("::");
	for (size_t len = 0; len <= strlen(req_any); ++len)
		ck_assert_int_eq(wgd_serialize_request(&m, buf, len), -ENOSPC);
	ck_assert_int_eq(wgd_serialize_request(&m, buf, strlen(req_any) + 1),
			 strlen(req_any));

	/* The largest response fits WGD_MAX_MESSAGE and parses back. */
	fill_full(&m);
	m.ip6 = ip_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
	/* Distinct entries, each as long as its text can be: a repeated
	 * one would collapse. */
	for (m.n_routes = 0; m.n_routes < WGD_MAX_ROUTES; ++m.n_routes) {
		char t[64];

		snprintf(t, sizeof(t), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:%x/120",
			 0xff00u - 0x100u * (unsigned)m.n_routes);
		m.routes[m.n_routes] = ip_of(t);
	}
	for (m.n_dns = 0; m.n_dns < WGD_MAX_DNS; ++m.n_dns) {
		char t[64];

		snprintf(t, sizeof(t), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:%x",
			 0xfffdu - (unsigned)m.n_dns);
		m.dns[m.n_dns] = ip_of(t);
	}
	memset(m.dns_search, 'd', sizeof(m.dns_search) - 1);
	m.dns_search[sizeof(m.dns_search) - 1] = '\0';
	memset(m.errmsg, 'e', sizeof(m.errmsg) - 1);
	m.errmsg[sizeof(m.errmsg) - 1] = '\0';
	m.mtu = m.leasestart = m.leasetime = m.err = UINT32_MAX;
	n = wgd_serialize_response(&m, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(parse_as(WGD_PARSE_RESPONSE, buf, (size_t)n), n);
	ck_assert(msg_equal(&parser.msg, &m));
}
END_TEST

START_TEST(test_serialize_invalid)
{
	struct wgd_msg m;
	char buf[WGD_MAX_MESSAGE];

	fill_full(&m);
	m.routes[0] = ip_of("10.9.0.1/16");
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);

	fill_full(&m);
	m.n_routes = WGD_MAX_ROUTES + 1;
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);

	fill_full(&m);
	m.n_dns = WGD_MAX_DNS + 1;
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);

	fill_full(&m);
	m.dns[1].family = 0;
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);

	fill_full(&m);
	strcpy(m.dns_search, "a b");
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);

	fill_full(&m);
	m.err = 3;
	strcpy(m.errmsg, "no\nerrno=0");
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);

	fill_full(&m);
	m.ip4 = ip_of("fd00::2");
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);

	fill_full(&m);
	m.ip6.family = 0;
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);
}
END_TEST

START_TEST(test_roundtrip)
{
	struct wgd_msg m, want;
	char buf[WGD_MAX_MESSAGE];
	ssize_t n;

	fill_full(&m);
	n = wgd_serialize_response(&m, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(parse_as(WGD_PARSE_RESPONSE, buf, (size_t)n), n);
	ck_assert(msg_equal(&parser.msg, &m));

	m.err = WGD_E_UNAVAILABLE;
	strcpy(m.errmsg, "Chosen IP(s) unavailable");
	m.has_ip4 = false;
	n = wgd_serialize_response(&m, buf, sizeof(buf));
	ck_assert_int_eq(parse_as(WGD_PARSE_RESPONSE, buf, (size_t)n), n);
	ck_assert(msg_equal(&parser.msg, &m));

	/* Upstream text in, the same text out. */
	ck_assert_int_gt(parse_req(req_renew), 0);
	ck_assert_int_eq(wgd_serialize_request(&parser.msg, buf, sizeof(buf)),
			 strlen(req_renew));
	ck_assert_str_eq(buf, req_renew);
	ck_assert_int_gt(parse_resp(resp_partial), 0);
	ck_assert_int_eq(wgd_serialize_response(&parser.msg, buf, sizeof(buf)),
			 strlen(resp_partial));
	ck_assert_str_eq(buf, resp_partial);

	memset(&want, 0, sizeof(want));
	want.cmd = WGD_CMD_REQUEST_IP;
	want.version = 1;
	want.has_ip6 = want.has_leasestart = want.has_leasetime = true;
	want.ip6 = ip_of("fd00::42");
	want.leasestart = 12;
	want.leasetime = 34;
	n = wgd_serialize_request(&want, buf, sizeof(buf));
	ck_assert_int_eq(parse_as(WGD_PARSE_REQUEST, buf, (size_t)n), n);
	ck_assert(msg_equal(&parser.msg, &want));
}
END_TEST

/* Feeds s in the pieces cut at a and b and checks the whole is reported once. */
static void feed_split(enum wgd_parse_kind kind, const char *s, size_t a, size_t b,
		       const struct wgd_msg *want)
{
	size_t n = strlen(s);

	wgd_parser_init(&parser, kind);
	ck_assert_int_eq(wgd_parse(&parser, s, a), a == n ? (ssize_t)n : 0);
	if (a < n) {
		ck_assert_int_eq(wgd_parse(&parser, s + a, b - a),
				 b == n ? (ssize_t)(n - a) : 0);
		if (b < n)
			ck_assert_int_eq(wgd_parse(&parser, s + b, n - b),
					 (ssize_t)(n - b));
	}
	ck_assert_msg(msg_equal(&parser.msg, want), "split at %zu and %zu", a, b);
}

START_TEST(test_split_reads)
{
	struct wgd_msg want;
	size_t n = strlen(resp_full);

	ck_assert_int_eq(parse_resp(resp_full), n);
	want = parser.msg;
	for (size_t a = 0; a <= n; ++a) {
		for (size_t b = a; b <= n; ++b)
			feed_split(WGD_PARSE_RESPONSE, resp_full, a, b, &want);
	}

	n = strlen(req_renew);
	ck_assert_int_eq(parse_req(req_renew), n);
	want = parser.msg;
	for (size_t a = 0; a <= n; ++a) {
		for (size_t b = a; b <= n; ++b)
			feed_split(WGD_PARSE_REQUEST, req_renew, a, b, &want);
	}
}
END_TEST

START_TEST(test_byte_at_a_time)
{
	const char *const msgs[] = { req_any, req_renew, req_release };
	struct wgd_msg want;

	for (size_t k = 0; k < 3; ++k) {
		size_t n = strlen(msgs[k]);

		ck_assert_int_eq(parse_req(msgs[k]), n);
		want = parser.msg;
		wgd_parser_init(&parser, WGD_PARSE_REQUEST);
		for (size_t i = 0; i + 1 < n; ++i)
			ck_assert_int_eq(wgd_parse(&parser, msgs[k] + i, 1), 0);
		ck_assert_int_eq(wgd_parse(&parser, msgs[k] + n - 1, 1), 1);
		ck_assert(msg_equal(&parser.msg, &want));
	}

	wgd_parser_init(&parser, WGD_PARSE_RESPONSE);
	for (size_t i = 0; i + 1 < strlen(resp_full); ++i)
		ck_assert_int_eq(wgd_parse(&parser, resp_full + i, 1), 0);
	ck_assert_int_eq(wgd_parse(&parser, "\n", 1), 1);
	ck_assert_uint_eq(parser.msg.n_routes, 3);
	ck_assert_uint_eq(parser.msg.mtu, 1380);

	/* Empty feeds change nothing. */
	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	ck_assert_int_eq(wgd_parse(&parser, "", 0), 0);
	ck_assert_int_eq(wgd_parse(&parser, req_release, strlen(req_release)),
			 strlen(req_release));
}
END_TEST

START_TEST(test_pipelined)
{
	char buf[512];
	size_t l1 = strlen(req_renew), l2 = strlen(req_release), l3 = strlen(req_any);
	ssize_t r;

	snprintf(buf, sizeof(buf), "%s%s%s", req_renew, req_release, req_any);

	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	r = wgd_parse(&parser, buf, l1 + l2 + l3);
	ck_assert_int_eq(r, l1);
	assert_ip(&parser.msg.ip4, "192.168.47.11/32");

	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	r = wgd_parse(&parser, buf + l1, l2 + l3);
	ck_assert_int_eq(r, l2);
	ck_assert(!parser.msg.has_ip4);

	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	r = wgd_parse(&parser, buf + l1 + l2, l3);
	ck_assert_int_eq(r, l3);
	ck_assert(wgd_ip_is_unspecified(&parser.msg.ip4));

	/* The bytes after a message are not looked at, even a NUL. */
	memcpy(buf, req_release, l2);
	memcpy(buf + l2, "\0\0junk", 6);
	ck_assert_int_eq(parse_as(WGD_PARSE_REQUEST, buf, l2 + 6), l2);

	/* Feeding on without re-init is a caller bug, and says so. */
	ck_assert_int_eq(wgd_parse(&parser, req_release, l2), -WGD_E_INVALID);
	ck_assert_ptr_nonnull(parser.error);
	ck_assert_int_eq(parser.msg.cmd, WGD_CMD_REQUEST_IP);
}
END_TEST

/* A reader that gets bytes in fixed chunks that straddle messages. */
START_TEST(test_pipelined_chunks)
{
	char stream[512];
	size_t lens[3] = { strlen(req_any), strlen(req_renew), strlen(req_release) };
	size_t total = lens[0] + lens[1] + lens[2];

	snprintf(stream, sizeof(stream), "%s%s%s", req_any, req_renew, req_release);
	for (size_t chunk = 1; chunk <= total; ++chunk) {
		size_t done = 0, got = 0, start = 0;

		wgd_parser_init(&parser, WGD_PARSE_REQUEST);
		while (done < total) {
			size_t n = total - done < chunk ? total - done : chunk;
			const char *p = stream + done;

			while (n) {
				ssize_t r = wgd_parse(&parser, p, n);

				ck_assert_int_ge(r, 0);
				if (r == 0) {
					done += n;
					break;
				}
				ck_assert_uint_lt(got, 3);
				ck_assert_uint_eq(done + (size_t)r - start, lens[got]);
				got++;
				done += (size_t)r;
				start = done;
				p += r;
				n -= (size_t)r;
				wgd_parser_init(&parser, WGD_PARSE_REQUEST);
			}
		}
		ck_assert_msg(got == 3, "chunk %zu: %zu messages", chunk, got);
	}
}
END_TEST

START_TEST(test_reject_nul)
{
	static const char with_nul[] = "request_ip=1\nip=10.0.0.1\0\n\n";
	static const char nul_key[] = "request_ip=1\nfo\0o=1\n\n";
	static const char nul_line[] = "request_ip=1\n\0\n\n";

	assert_rejects(WGD_PARSE_REQUEST, with_nul, sizeof(with_nul) - 1,
		       WGD_E_INVALID, "NUL byte");
	assert_rejects(WGD_PARSE_REQUEST, nul_key, sizeof(nul_key) - 1,
		       WGD_E_INVALID, "NUL byte");
	assert_rejects(WGD_PARSE_REQUEST, nul_line, sizeof(nul_line) - 1,
		       WGD_E_INVALID, "NUL byte");
	assert_rejects(WGD_PARSE_RESPONSE, "\0", 1, WGD_E_INVALID, "NUL byte");

	/* Also when the NUL comes alone in its own read. */
	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	ck_assert_int_eq(wgd_parse(&parser, "request_ip=1\nip=1", 17), 0);
	ck_assert_int_eq(wgd_parse(&parser, "\0", 1), -WGD_E_INVALID);
	ck_assert_str_eq(parser.error, "NUL byte");
}
END_TEST

START_TEST(test_reject_long_line)
{
	static char buf[WGD_MAX_LINE * 2 + 64];
	size_t n;

	/* A line of exactly WGD_MAX_LINE bytes, newline included, is fine. */
	n = (size_t)snprintf(buf, sizeof(buf), "request_ip=1\nx=");
	memset(buf + n, 'a', WGD_MAX_LINE - 3);
	n += WGD_MAX_LINE - 3;
	memcpy(buf + n, "\n\n", 2);
	n += 2;
	ck_assert_int_eq(parse_as(WGD_PARSE_REQUEST, buf, n), n);

	/* One more byte is not. */
	n = (size_t)snprintf(buf, sizeof(buf), "request_ip=1\nx=");
	memset(buf + n, 'a', WGD_MAX_LINE - 2);
	n += WGD_MAX_LINE - 2;
	memcpy(buf + n, "\n\n", 2);
	n += 2;
	assert_rejects(WGD_PARSE_REQUEST, buf, n, WGD_E_INVALID, "line too long");

	/* Caught as soon as it is too long, before any newline arrives. */
	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	ck_assert_int_eq(wgd_parse(&parser, buf, 13 + WGD_MAX_LINE - 1), 0);
	ck_assert_int_eq(wgd_parse(&parser, "a", 1), -WGD_E_INVALID);
	ck_assert_str_eq(parser.error, "line too long");

	/* One byte at a time, the same. */
	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	for (size_t i = 0; i < 13 + WGD_MAX_LINE - 1; ++i)
		ck_assert_int_eq(wgd_parse(&parser, buf + i, 1), 0);
	ck_assert_int_eq(wgd_parse(&parser, "\n", 1), 0);
	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	for (size_t i = 0; i < 13 + WGD_MAX_LINE - 1; ++i)
		ck_assert_int_eq(wgd_parse(&parser, buf + i, 1), 0);
	ck_assert_int_eq(wgd_parse(&parser, "a", 1), -WGD_E_INVALID);

	/* The first line has the same limit. */
	memset(buf, '1', WGD_MAX_LINE + 10);
	assert_rejects(WGD_PARSE_RESPONSE, buf, WGD_MAX_LINE + 10, WGD_E_INVALID,
		       "line too long");
}
END_TEST

/* "request_ip=1\n", short unknown lines, "\n": total bytes exactly. */
static size_t build_long_message(char *buf, size_t total)
{
	size_t n = (size_t)sprintf(buf, "request_ip=1\n");

	while (total - n - 1 >= 8) {
		memcpy(buf + n, "a=b\n", 4);
		n += 4;
	}
	/* Pad with one line of the remaining size, 4 to 7 bytes. */
	{
		size_t last = total - n - 1;

		memset(buf + n, 'k', last - 2);
		buf[n + last - 2] = '=';
		buf[n + last - 1] = '\n';
		n += last;
	}
	buf[n++] = '\n';
	return n;
}

START_TEST(test_reject_long_message)
{
	static char buf[WGD_MAX_MESSAGE * 2];
	size_t n;

	n = build_long_message(buf, WGD_MAX_MESSAGE);
	ck_assert_uint_eq(n, WGD_MAX_MESSAGE);
	ck_assert_int_eq(parse_as(WGD_PARSE_REQUEST, buf, n), n);
	ck_assert_uint_gt(parser.nlines, 2000);

	n = build_long_message(buf, WGD_MAX_MESSAGE + 1);
	ck_assert_uint_eq(n, WGD_MAX_MESSAGE + 1);
	assert_rejects(WGD_PARSE_REQUEST, buf, n, WGD_E_INVALID, "message too long");

	/* The limit holds however the bytes arrive. */
	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	for (size_t i = 0; i < WGD_MAX_MESSAGE; ++i)
		ck_assert_int_eq(wgd_parse(&parser, buf + i, 1), 0);
	ck_assert_int_eq(wgd_parse(&parser, buf + WGD_MAX_MESSAGE, 1), -WGD_E_INVALID);
	ck_assert_str_eq(parser.error, "message too long");

	/* A response made of unknown lines only never ends well either. */
	memset(buf, 0, sizeof(buf));
	for (n = 0; n < WGD_MAX_MESSAGE + 8; n += 4)
		memcpy(buf + n, "z=1\n", 4);
	assert_rejects(WGD_PARSE_RESPONSE, buf, n, WGD_E_INVALID, "message too long");
}
END_TEST

START_TEST(test_reject_crlf)
{
	assert_req_rejects("request_ip=1\r\n\r\n", WGD_E_INVALID, "bad number in request_ip");
	assert_req_rejects("request_ip=1\nleasetime=5\r\n\n", WGD_E_INVALID,
			   "bad number in leasetime");
	assert_req_rejects("request_ip=1\nip=10.0.0.1\r\n\n", WGD_E_INVALID,
			   "bad address in ip");
	assert_resp_rejects("errno=0\r\n\r\n", WGD_E_INVALID, "bad number in errno");
	/* "\r" alone on a line is a line without '=', not an end. */
	assert_req_rejects("request_ip=1\n\r\n", WGD_E_INVALID, "line without '='");
}
END_TEST

START_TEST(test_reject_versions)
{
	static const char *const unsupported[] = { "0", "2", "4294967295", "0000000002" };
	static const char *const invalid[] = {
		"", "99999999999", "4294967296", "00000000001", "1a", "+1", "-1",
		" 1", "1 ", "0x1", "1.0",
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); ++i) {
		snprintf(buf, sizeof(buf), "request_ip=%s\n\n", unsupported[i]);
		assert_req_rejects(buf, WGD_E_UNSUPPORTED, "unsupported version");
	}
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); ++i) {
		snprintf(buf, sizeof(buf), "request_ip=%s\n\n", invalid[i]);
		assert_req_rejects(buf, WGD_E_INVALID, "bad number in request_ip");
	}

	/* Known only once the first line is complete, even if split. */
	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	ck_assert_int_eq(wgd_parse(&parser, "request_ip=2", 12), 0);
	ck_assert_int_eq(wgd_parse(&parser, "\n", 1), -WGD_E_UNSUPPORTED);
	ck_assert_uint_eq(parser.msg.version, 2);
}
END_TEST

START_TEST(test_reject_commands)
{
	assert_req_rejects("request_address=1\n\n", WGD_E_UNSUPPORTED, "unknown command");
	assert_req_rejects("ip=10.0.0.1\n\n", WGD_E_UNSUPPORTED, "unknown command");
	assert_req_rejects("leasetime=1\nrequest_ip=1\n\n", WGD_E_UNSUPPORTED,
			   "unknown command");
	assert_req_rejects("request_ip\n\n", WGD_E_INVALID, "line without '='");
	assert_req_rejects("=1\n\n", WGD_E_INVALID, "empty key");
	assert_req_rejects("\n", WGD_E_INVALID, "empty message");
	assert_resp_rejects("\n", WGD_E_INVALID, "empty message");
	assert_req_rejects("request_ip=1\nrequest_ip=1\n\n", WGD_E_INVALID,
			   "repeated request_ip");
	assert_resp_rejects("request_ip=1\nerrno=0\n\n", WGD_E_INVALID,
			    "command in a response");
	assert_resp_rejects("errno=0\nrequest_ip=1\n\n", WGD_E_INVALID,
			    "command in a response");
	assert_resp_rejects("ip=10.0.0.1/32\n\n", WGD_E_INVALID, "missing errno");
	assert_resp_rejects("errno=0\nbroken\n\n", WGD_E_INVALID, "line without '='");
	assert_resp_rejects("errno=0\n=x\n\n", WGD_E_INVALID, "empty key");
	assert_req_rejects("request_ip=1\n==\n\n", WGD_E_INVALID, "empty key");
}
END_TEST

START_TEST(test_reject_addresses)
{
	assert_req_rejects("request_ip=1\nip=10.0.0.256\n\n", WGD_E_INVALID, "bad address in ip");
	assert_req_rejects("request_ip=1\nip=\n\n", WGD_E_INVALID, "bad address in ip");
	assert_req_rejects("request_ip=1\nip=/32\n\n", WGD_E_INVALID, "bad address in ip");
	assert_req_rejects("request_ip=1\nip=10.0.0.1/\n\n", WGD_E_INVALID, "bad address in ip");
	assert_req_rejects("request_ip=1\nip=10.0.0.1/33\n\n", WGD_E_INVALID, "bad address in ip");
	assert_req_rejects("request_ip=1\nip= 10.0.0.1\n\n", WGD_E_INVALID, "bad address in ip");
	assert_req_rejects("request_ip=1\nip=host.example\n\n", WGD_E_INVALID, "bad address in ip");
	assert_req_rejects("request_ip=1\nip=10.0.0.0/24\n\n", WGD_E_INVALID,
			   "ip is not a /32 or /128");
	assert_req_rejects("request_ip=1\nip=0.0.0.0/0\n\n", WGD_E_INVALID,
			   "ip is not a /32 or /128");
	assert_req_rejects("request_ip=1\nip=fd00::/64\n\n", WGD_E_INVALID,
			   "ip is not a /32 or /128");
	assert_req_rejects("request_ip=1\nip=::ffff:10.0.0.1\n\n", WGD_E_INVALID,
			   "bad address in ip");
	assert_req_rejects("request_ip=1\nip=::ffff:10.0.0.1/128\n\n", WGD_E_INVALID,
			   "bad address in ip");
	assert_resp_rejects("ip=10.0.0.0/24\nerrno=0\n\n", WGD_E_INVALID,
			    "ip is not a /32 or /128");
	assert_resp_rejects("errno=0\nroute=10.0.0.1/24\n\n", WGD_E_INVALID,
			    "bad prefix in route");
	assert_resp_rejects("errno=0\nroute=::ffff:0:0/96\n\n", WGD_E_INVALID,
			    "bad prefix in route");
	assert_resp_rejects("errno=0\ndns=10.0.0.1/32\n\n", WGD_E_INVALID,
			    "bad address in dns");
	assert_resp_rejects("errno=0\ndns=\n\n", WGD_E_INVALID, "bad address in dns");
}
END_TEST

START_TEST(test_reject_duplicates)
{
	assert_req_rejects("request_ip=1\nip=10.0.0.1\nip=10.0.0.2\n\n", WGD_E_INVALID,
			   "repeated IPv4 ip");
	assert_req_rejects("request_ip=1\nip=::\nip=10.0.0.2\nip=::/128\n\n", WGD_E_INVALID,
			   "repeated IPv6 ip");
	assert_req_rejects("request_ip=1\nleasestart=1\nleasestart=1\n\n", WGD_E_INVALID,
			   "repeated leasestart");
	assert_req_rejects("request_ip=1\nleasetime=1\nleasetime=2\n\n", WGD_E_INVALID,
			   "repeated leasetime");
	assert_resp_rejects("errno=0\nerrno=0\n\n", WGD_E_INVALID, "repeated errno");
	assert_resp_rejects("errmsg=a\nerrmsg=a\nerrno=1\n\n", WGD_E_INVALID,
			    "repeated errmsg");
	assert_resp_rejects("dns_search=a\ndns_search=b\nerrno=0\n\n", WGD_E_INVALID,
			    "repeated dns_search");
	assert_resp_rejects("mtu=1280\nmtu=1280\nerrno=0\n\n", WGD_E_INVALID, "repeated mtu");
	assert_resp_rejects("ip=fd00::1\nip=fd00::1\nerrno=0\n\n", WGD_E_INVALID,
			    "repeated IPv6 ip");
	assert_resp_rejects("leasestart=1\nleasestart=1\nerrno=0\n\n", WGD_E_INVALID,
			    "repeated leasestart");

	/* route= and dns= repeat; the same value again is the same entry. */
	assert_parses(WGD_PARSE_RESPONSE, "route=10.0.0.0/8\nroute=10.0.0.0/8\n"
					  "route=10.0.0.0/9\ndns=10.0.0.1\ndns=10.0.0.1\n"
					  "errno=0\n\n");
	ck_assert_uint_eq(parser.msg.n_routes, 2);
	ck_assert_uint_eq(parser.msg.n_dns, 1);
}
END_TEST

/* count route= (or dns=) lines, then "errno=0" and the end. */
static void build_repeated(char *buf, size_t size, bool routes, unsigned count)
{
	size_t n = 0;

	for (unsigned i = 0; i < count; ++i) {
		if (routes)
			n += (size_t)snprintf(buf + n, size - n, "route=10.%u.0.0/16\n", i);
		else
			n += (size_t)snprintf(buf + n, size - n, "dns=fd00::%u\n", i);
	}
	snprintf(buf + n, size - n, "errno=0\n\n");
}

/* The old client's route bookkeeping overflowed when the hub repeated a
 * route: 32 copies of one route must be one route, and a full list plus
 * repeats of its entries must still parse. */
START_TEST(test_repeated_entries_collapse)
{
	static char buf[8192];
	size_t n = 0;

	for (unsigned i = 0; i < 2 * WGD_MAX_ROUTES; ++i)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "route=10.9.0.0/16\n");
	for (unsigned i = 0; i < WGD_MAX_ROUTES; ++i)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "route=10.%u.0.0/16\n", i);
	for (unsigned i = 0; i < 3 * WGD_MAX_DNS; ++i)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "dns=fd00::%u\n", i % WGD_MAX_DNS);
	snprintf(buf + n, sizeof(buf) - n, "errno=0\n\n");
	assert_parses(WGD_PARSE_RESPONSE, buf);
	ck_assert_uint_eq(parser.msg.n_routes, WGD_MAX_ROUTES);
	assert_ip(&parser.msg.routes[0], "10.9.0.0/16");
	ck_assert_uint_eq(parser.msg.n_dns, WGD_MAX_DNS);
	for (size_t i = 0; i < parser.msg.n_routes; ++i)
		for (size_t j = i + 1; j < parser.msg.n_routes; ++j)
			ck_assert(!wgd_ip_equal(&parser.msg.routes[i], &parser.msg.routes[j]));
}
END_TEST

START_TEST(test_reject_too_many)
{
	static char buf[4096];

	build_repeated(buf, sizeof(buf), true, WGD_MAX_ROUTES);
	assert_parses(WGD_PARSE_RESPONSE, buf);
	ck_assert_uint_eq(parser.msg.n_routes, WGD_MAX_ROUTES);
	assert_ip(&parser.msg.routes[WGD_MAX_ROUTES - 1], "10.31.0.0/16");

	build_repeated(buf, sizeof(buf), true, WGD_MAX_ROUTES + 1);
	assert_resp_rejects(buf, WGD_E_INVALID, "too many routes");

	build_repeated(buf, sizeof(buf), false, WGD_MAX_DNS);
	assert_parses(WGD_PARSE_RESPONSE, buf);
	ck_assert_uint_eq(parser.msg.n_dns, WGD_MAX_DNS);

	build_repeated(buf, sizeof(buf), false, WGD_MAX_DNS + 1);
	assert_resp_rejects(buf, WGD_E_INVALID, "too many dns");
}
END_TEST

START_TEST(test_reject_numbers)
{
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "1\t", "4294967296", "99999999999",
		"00000000000", "0x10", "1e3", "١",
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
		snprintf(buf, sizeof(buf), "request_ip=1\nleasetime=%s\n\n", bad[i]);
		assert_req_rejects(buf, WGD_E_INVALID, "bad number in leasetime");
		snprintf(buf, sizeof(buf), "request_ip=1\nleasestart=%s\n\n", bad[i]);
		assert_req_rejects(buf, WGD_E_INVALID, "bad number in leasestart");
		snprintf(buf, sizeof(buf), "errno=%s\n\n", bad[i]);
		assert_resp_rejects(buf, WGD_E_INVALID, "bad number in errno");
		snprintf(buf, sizeof(buf), "mtu=%s\nerrno=0\n\n", bad[i]);
		assert_resp_rejects(buf, WGD_E_INVALID, "bad number in mtu");
	}

	assert_parses(WGD_PARSE_REQUEST, "request_ip=1\nleasestart=4294967295\nleasetime=0\n\n");
	ck_assert_uint_eq(parser.msg.leasestart, UINT32_MAX);
	ck_assert_uint_eq(parser.msg.leasetime, 0);
}
END_TEST

START_TEST(test_strings)
{
	static char buf[1024];
	size_t n;

	/* errmsg keeps its head when too long. */
	n = (size_t)sprintf(buf, "errno=3\nerrmsg=");
	memset(buf + n, 'e', 300);
	n += 300;
	strcpy(buf + n, "\n\n");
	assert_parses(WGD_PARSE_RESPONSE, buf);
	ck_assert_uint_eq(strlen(parser.msg.errmsg), WGD_MAX_ERRMSG - 1);
	ck_assert_int_eq(parser.msg.errmsg[0], 'e');

	assert_parses(WGD_PARSE_RESPONSE, "errno=3\nerrmsg=\n\n");
	ck_assert_str_eq(parser.msg.errmsg, "");

	/* dns_search is refused rather than cut. */
	n = (size_t)sprintf(buf, "errno=0\ndns_search=");
	memset(buf + n, 'd', WGD_MAX_DNS_SEARCH - 1);
	n += WGD_MAX_DNS_SEARCH - 1;
	strcpy(buf + n, "\n\n");
	assert_parses(WGD_PARSE_RESPONSE, buf);
	ck_assert_uint_eq(strlen(parser.msg.dns_search), WGD_MAX_DNS_SEARCH - 1);

	ck_assert(!parser.msg.dns_search_bad);

	/* A bad dns_search costs the value, not the lease beside it. */
	n = (size_t)sprintf(buf, "ip=10.0.0.9\nerrno=0\ndns_search=");
	memset(buf + n, 'd', WGD_MAX_DNS_SEARCH);
	n += WGD_MAX_DNS_SEARCH;
	strcpy(buf + n, "\n\n");
	assert_parses(WGD_PARSE_RESPONSE, buf);
	ck_assert(parser.msg.dns_search_bad && parser.msg.has_ip4);
	ck_assert_str_eq(parser.msg.dns_search, "");

	assert_parses(WGD_PARSE_RESPONSE, "errno=0\ndns_search=\n\n");
	ck_assert(parser.msg.dns_search_bad);
	{
		static const char *const bad[] = { "a b", "a\tb", "a\x7f", "\xc3\xa9t\xc3\xa9",
						   "a\rb" };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			sprintf(buf, "ip=10.0.0.9\nerrno=0\ndns_search=%s\n\n", bad[i]);
			assert_parses(WGD_PARSE_RESPONSE, buf);
			ck_assert(parser.msg.dns_search_bad && parser.msg.has_ip4);
			ck_assert_str_eq(parser.msg.dns_search, bad[i]);
		}
	}
}
END_TEST

START_TEST(test_error_sticks)
{
	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	ck_assert_int_eq(wgd_parse(&parser, "request_ip=3\n", 13), -WGD_E_UNSUPPORTED);
	ck_assert_int_eq(wgd_parse(&parser, req_release, strlen(req_release)),
			 -WGD_E_UNSUPPORTED);
	ck_assert_int_eq(wgd_parse(&parser, "", 0), -WGD_E_UNSUPPORTED);
	ck_assert_str_eq(parser.error, "unsupported version");

	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	ck_assert_ptr_null(parser.error);
	ck_assert_int_eq(wgd_parse(&parser, "request_ip=1\nip=x\n", 18), -WGD_E_INVALID);
	ck_assert_int_eq(wgd_parse(&parser, "\n", 1), -WGD_E_INVALID);
	ck_assert_str_eq(parser.error, "bad address in ip");

	/* Re-init clears everything. */
	wgd_parser_init(&parser, WGD_PARSE_REQUEST);
	ck_assert_int_eq(wgd_parse(&parser, req_release, strlen(req_release)),
			 strlen(req_release));
	ck_assert_ptr_null(parser.error);
}
END_TEST

/* ---- the mesh extension ---- */

#define KEY_A "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
#define KEY_B "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="

static const char mesh_req[] =
	"request_peers=1\nepoch=3735928559\nsince=17\nport=51820\n"
	"candidate=192.168.1.23\ncandidate=2001:db8:1::23\n\n";
static const char mesh_resp[] =
	"epoch=3735928559\nversion=18\nmore=1\n"
	"peer=" KEY_A " 10.9.0.7 fd00:9::7 198.51.100.20:40123 51820 192.168.1.23 2001:db8:1::23\n"
	"gone=" KEY_B "\n"
	"errno=0\n\n";

START_TEST(test_mesh_request)
{
	char buf[WGD_MAX_MESSAGE];
	struct wgd_msg m;

	assert_parses(WGD_PARSE_REQUEST, mesh_req);
	m = parser.msg;
	ck_assert_int_eq(m.cmd, WGD_CMD_REQUEST_PEERS);
	ck_assert_uint_eq(m.version, 1);
	ck_assert(m.has_epoch && m.has_since);
	ck_assert_uint_eq(m.epoch, 3735928559u);
	ck_assert_uint_eq(m.since, 17);
	ck_assert_uint_eq(m.port, 51820);
	ck_assert_uint_eq(m.n_cand, 2);
	assert_ip(&m.cand[0], "192.168.1.23/32");
	assert_ip(&m.cand[1], "2001:db8:1::23/128");

	/* Written back byte for byte. */
	ck_assert_int_eq(wgd_serialize_request(&m, buf, sizeof(buf)), (ssize_t)strlen(mesh_req));
	ck_assert_str_eq(buf, mesh_req);

	/* A repeated candidate is one candidate, and a fifth is refused. */
	assert_parses(WGD_PARSE_REQUEST, "request_peers=1\ncandidate=10.1.1.1\n"
					 "candidate=10.1.1.1\n\n");
	ck_assert_uint_eq(parser.msg.n_cand, 1);
	assert_req_rejects("request_peers=1\ncandidate=10.1.1.1\ncandidate=10.1.1.2\n"
			   "candidate=10.1.1.3\ncandidate=10.1.1.4\ncandidate=10.1.1.5\n\n",
			   WGD_E_INVALID, "too many candidates");
	assert_req_rejects("request_peers=1\ncandidate=10.1.1.0/24\n\n", WGD_E_INVALID,
			   "bad address in candidate");
	assert_req_rejects("request_peers=1\nport=65536\n\n", WGD_E_INVALID, "bad number in port");
	assert_req_rejects("request_peers=1\nsince=1\nsince=2\n\n", WGD_E_INVALID,
			   "repeated since");
	assert_req_rejects("request_peers=2\n\n", WGD_E_UNSUPPORTED, "unsupported version");
	assert_req_rejects("request_peers=1\nrequest_ip=1\n\n", WGD_E_INVALID,
			   "repeated request_ip");

	/* The mesh keys mean nothing in a request_ip: skipped, not checked. */
	assert_parses(WGD_PARSE_REQUEST, "request_ip=1\ncandidate=junk\nsince=x\n\n");
	assert_parses(WGD_PARSE_REQUEST, "request_peers=1\nip=junk\nleasetime=x\n\n");
	ck_assert(!parser.msg.has_ip4 && !parser.msg.has_leasetime);
	ck_assert_uint_eq(parser.msg.n_cand, 0);
	ck_assert(!parser.msg.has_since);
}
END_TEST

START_TEST(test_mesh_response)
{
	char buf[WGD_MAX_MESSAGE];
	const struct wgd_peer_entry *e;
	struct wgd_msg m;

	assert_parses(WGD_PARSE_RESPONSE, mesh_resp);
	m = parser.msg;
	ck_assert(m.has_epoch && m.has_dir_version && m.more && !m.reset && !m.mesh);
	ck_assert_uint_eq(m.dir_version, 18);
	ck_assert_uint_eq(m.n_peers, 2);
	e = &m.peers[0];
	ck_assert(!e->gone && e->has_ip4 && e->has_ip6);
	assert_ip(&e->ip4, "10.9.0.7/32");
	assert_ip(&e->ip6, "fd00:9::7/128");
	assert_ip(&e->endpoint.addr, "198.51.100.20/32");
	ck_assert_uint_eq(e->endpoint.port, 40123);
	ck_assert_uint_eq(e->port, 51820);
	ck_assert_uint_eq(e->n_cand, 2);
	ck_assert(m.peers[1].gone);
	ck_assert_uint_eq(m.peers[1].key[0], 0x4e);

	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), (ssize_t)strlen(mesh_resp));
	ck_assert_str_eq(buf, mesh_resp);

	/* A reader with no room for a directory skips its lines. */
	wgd_parser_init(&parser, WGD_PARSE_RESPONSE);
	ck_assert_int_eq(wgd_parse(&parser, mesh_resp, strlen(mesh_resp)), (ssize_t)strlen(mesh_resp));
	ck_assert_uint_eq(parser.msg.n_peers, 0);
	ck_assert(parser.msg.more && parser.msg.has_dir_version);

	/* An upstream client reads a lease answer with mesh=1 as the lease. */
	assert_parses(WGD_PARSE_RESPONSE, "ip=10.9.0.7/32\nleasestart=1\nleasetime=60\n"
					  "mesh=1\nerrno=0\n\n");
	ck_assert(parser.msg.mesh && parser.msg.has_ip4);

	/* The fields that may be absent, and an IPv6 endpoint. */
	assert_parses(WGD_PARSE_RESPONSE, "peer=" KEY_A " - fd00:9::7 [2001:db8::5]:7 0\n"
					  "errno=0\n\n");
	e = &parser.msg.peers[0];
	ck_assert(!e->has_ip4 && e->has_ip6 && e->n_cand == 0 && e->port == 0);
	assert_ip(&e->endpoint.addr, "2001:db8::5/128");
	ck_assert_uint_eq(e->endpoint.port, 7);
	assert_parses(WGD_PARSE_RESPONSE, "peer=" KEY_A " 10.9.0.7 - - 1\nerrno=0\n\n");
	ck_assert_uint_eq(parser.msg.peers[0].endpoint.addr.family, 0);
}
END_TEST

START_TEST(test_mesh_reject)
{
	static const char *const bad_lines[] = {
		"peer=" KEY_A "\n",                                  /* fields missing */
		"peer=" KEY_A " - - - \n",                           /* empty port */
		"peer=" KEY_A " - - - 1 \n",                         /* trailing blank */
		"peer=" KEY_A "  - - - 1\n",                         /* empty field */
		"peer=" KEY_A " fd00::1 - - 1\n",                    /* IPv6 as ip4 */
		"peer=" KEY_A " 10.0.0.1/32 - - 1\n",                /* a prefix */
		"peer=" KEY_A " - 10.0.0.1 - 1\n",                   /* IPv4 as ip6 */
		"peer=" KEY_A " - - 10.0.0.1 1\n",                   /* no port */
		"peer=" KEY_A " - - 10.0.0.1:0 1\n",                 /* port 0 */
		"peer=" KEY_A " - - 10.0.0.1:65536 1\n",
		"peer=" KEY_A " - - 2001:db8::1:5 1\n",              /* v6 without brackets */
		"peer=" KEY_A " - - [10.0.0.1]:5 1\n",
		"peer=" KEY_A " - - - 70000\n",
		"peer=" KEY_A " - - - 1 10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5\n",
		"peer=" KEY_A " - - - 1 ::ffff:10.0.0.1\n",
		"peer=xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh= - - - 1\n", /* not canonical */
		"peer=xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D - - - 1\n",
		"gone=" KEY_A " - - - 1\n",
		"peer=" KEY_A " - - - 1\npeer=" KEY_A " - - - 1\n", /* the same peer twice */
		"peer=" KEY_A " - - - 1\ngone=" KEY_A "\n",
		"mesh=2\n",
		"reset=0\n",
		"more=1\nmore=1\n",
		"version=-1\n",
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); ++i) {
		snprintf(buf, sizeof(buf), "%serrno=0\n\n", bad_lines[i]);
		ck_assert_msg(parse_resp(buf) == -WGD_E_INVALID, "accepted: %s", bad_lines[i]);
	}
	/* A repeated candidate is one. */
	assert_parses(WGD_PARSE_RESPONSE, "peer=" KEY_A " - - - 1 10.0.0.1 10.0.0.1\nerrno=0\n\n");
	ck_assert_uint_eq(parser.msg.peers[0].n_cand, 1);
}
END_TEST

/* WGD_MAX_PEERS lines parse, one more is refused; and the serializer
 * refuses what the parser would. */
START_TEST(test_mesh_bounds)
{
	static char buf[WGD_MAX_MESSAGE * 2];
	static struct wgd_peer_entry lines[WGD_MAX_PEERS];
	struct wgd_msg m;
	size_t off = 0;

	memset(&m, 0, sizeof(m));
	m.peers = lines;
	m.has_errno = true;
	m.n_peers = WGD_MAX_PEERS;
	for (size_t i = 0; i < WGD_MAX_PEERS; ++i) {
		m.peers[i].key[0] = (uint8_t)i;
		m.peers[i].gone = i % 2;
		m.peers[i].has_ip4 = true;
		m.peers[i].ip4 = ip_of("10.0.0.1");
	}
	ck_assert_int_gt(wgd_serialize_response(&m, buf, sizeof(buf)), 0);
	assert_parses(WGD_PARSE_RESPONSE, buf);
	ck_assert_uint_eq(parser.msg.n_peers, WGD_MAX_PEERS);

	for (size_t i = 0; i <= WGD_MAX_PEERS; ++i) {
		uint8_t key[32] = { (uint8_t)i };
		char b64[WGD_KEY_B64 + 1];

		sodium_bin2base64(b64, sizeof(b64), key, 32, sodium_base64_VARIANT_ORIGINAL);
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "gone=%s\n", b64);
	}
	snprintf(buf + off, sizeof(buf) - off, "errno=0\n\n");
	assert_resp_rejects(buf, WGD_E_INVALID, "too many peers");

	m.n_peers = 2;
	m.peers[1].key[0] = m.peers[0].key[0];
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);
	m.peers[1].key[0] = 1;
	m.peers[1].gone = false;
	m.peers[1].ip4 = ip_of("fd00::1");
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);
	m.peers[1].ip4 = ip_of("10.0.0.0/24");
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);
	m.peers[1].ip4 = ip_of("10.0.0.2");
	m.peers[1].endpoint.addr = ip_of("10.0.0.2");
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL); /* port 0 */
	m.peers[1].endpoint.port = 9;
	m.peers[1].n_cand = WGD_MAX_CANDIDATES + 1;
	ck_assert_int_eq(wgd_serialize_response(&m, buf, sizeof(buf)), -EINVAL);
	m.peers[1].n_cand = 0;
	ck_assert_int_gt(wgd_serialize_response(&m, buf, sizeof(buf)), 0);
}
END_TEST

/* The budget of the design: a typical peer line stays under 150 bytes. */
START_TEST(test_mesh_line_size)
{
	struct wgd_peer_entry e = { 0 };
	char line[WGD_MAX_LINE];

	memset(e.key, 0xab, sizeof(e.key));
	e.has_ip4 = e.has_ip6 = true;
	e.ip4 = ip_of("10.200.17.231");
	e.ip6 = ip_of("fd00:200::17e7");
	e.endpoint.addr = ip_of("198.51.100.201");
	e.endpoint.port = 61234;
	e.port = 51820;
	e.n_cand = 2;
	e.cand[0] = ip_of("192.168.178.23");
	e.cand[1] = ip_of("2001:db8:1234::23");
	ck_assert_int_lt(wgd_format_peer_line(&e, line, sizeof(line)) + 1, 150);
}
END_TEST

START_TEST(test_endpoints)
{
	struct wgd_endpoint ep;
	char buf[WGD_ENDPOINT_STRLEN];

	ck_assert_int_eq(wgd_endpoint_parse(&ep, "1.2.3.4:5", 9), 0);
	ck_assert_str_eq(wgd_endpoint_format(&ep, buf, sizeof(buf)), "1.2.3.4:5");
	ck_assert_int_eq(wgd_endpoint_parse(&ep, "[::1]:65535", 11), 0);
	ck_assert_str_eq(wgd_endpoint_format(&ep, buf, sizeof(buf)), "[::1]:65535");
	ck_assert_int_eq(wgd_endpoint_parse(&ep, "[::1]:", 6), -EINVAL);
	ck_assert_int_eq(wgd_endpoint_parse(&ep, ":5", 2), -EINVAL);
	ck_assert_int_eq(wgd_endpoint_parse(&ep, "[]:5", 4), -EINVAL);
	ck_assert_int_eq(wgd_endpoint_parse(&ep, "1.2.3.4:+5", 10), -EINVAL);
	ck_assert_int_eq(wgd_endpoint_parse(&ep, "", 0), -EINVAL);
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_upstream_requests);
	tcase_add_test(tc, test_upstream_responses);
	tcase_add_test(tc, test_unknown_keys);
	tcase_add_test(tc, test_serialize_request);
	tcase_add_test(tc, test_serialize_response);
	tcase_add_test(tc, test_serialize_space);
	tcase_add_test(tc, test_serialize_invalid);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_split_reads);
	tcase_add_test(tc, test_byte_at_a_time);
	tcase_add_test(tc, test_pipelined);
	tcase_add_test(tc, test_pipelined_chunks);
	tcase_add_test(tc, test_reject_nul);
	tcase_add_test(tc, test_reject_long_line);
	tcase_add_test(tc, test_reject_long_message);
	tcase_add_test(tc, test_reject_crlf);
	tcase_add_test(tc, test_reject_versions);
	tcase_add_test(tc, test_reject_commands);
	tcase_add_test(tc, test_reject_addresses);
	tcase_add_test(tc, test_reject_duplicates);
	tcase_add_test(tc, test_reject_too_many);
	tcase_add_test(tc, test_repeated_entries_collapse);
	tcase_add_test(tc, test_reject_numbers);
	tcase_add_test(tc, test_strings);
	tcase_add_test(tc, test_error_sticks);
	tcase_add_test(tc, test_mesh_request);
	tcase_add_test(tc, test_mesh_response);
	tcase_add_test(tc, test_mesh_reject);
	tcase_add_test(tc, test_mesh_bounds);
	tcase_add_test(tc, test_mesh_line_size);
	tcase_add_test(tc, test_endpoints);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
