/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_FUZZ_PROTO_H
#define WGD_FUZZ_PROTO_H

/*
 * The body of fuzz_request.c and fuzz_response.c, which differ only in the
 * kind of message they parse.
 *
 * Input: byte 0 picks how the stream is cut into reads, byte 1 seeds the
 * cut points, and the rest is the byte stream a peer sends (or, for
 * responses, also the client's saved lease file).
 *
 * The stream is parsed twice: in one read, and in the reads byte 0 and 1
 * choose. Each time a message completes, the parser is started afresh on
 * the bytes after it, as the daemons do with pipelined messages. Both
 * passes must see the same messages end at the same offsets and fail with
 * the same status. Every message that parses is serialized and parsed
 * again, and must come back with the same fields.
 */

#include <errno.h>
#include <sys/socket.h>

#include "../../protocol/proto.h"
#include "fuzz-util.h"

/* Messages compared per input; enough to cover any pipelining pattern. */
#define FUZZ_MAX_OUTCOMES 32

struct outcome {
	ssize_t status;      /* < 0 failed, 0 cut short by the end, > 0 a message */
	size_t end;          /* offset just past the message */
	struct wgd_msg msg;  /* its peers point at peers[] below */
	struct wgd_peer_entry peers[WGD_MAX_PEERS];
};

/* Keeps a parsed message, its directory lines copied in. */
static void outcome_keep(struct outcome *o, const struct wgd_msg *m)
{
	o->msg = *m;
	if (m->peers) {
		memcpy(o->peers, m->peers, m->n_peers * sizeof(*m->peers));
		o->msg.peers = o->peers;
	}
}

/* How a pass cuts the stream into reads. */
struct splitter {
	unsigned mode;
	uint32_t state;
};

static size_t next_read(struct splitter *sp, size_t left)
{
	size_t max, n;

	switch (sp->mode % 4) {
	case 0:
		return left;
	case 1:
		max = 1;
		break;
	case 2:
		max = 16;
		break;
	default:
		/* Around a line's length, so that limits fall inside reads. */
		max = WGD_MAX_LINE + 64;
		break;
	}
	n = 1 + fuzz_next(&sp->state) % max;
	return n < left ? n : left;
}

static bool ip_same(const struct wgd_ip *a, const struct wgd_ip *b)
{
	return a->family == b->family && a->cidr == b->cidr &&
	       !memcmp(a->bytes, b->bytes, sizeof(a->bytes));
}

static bool entry_same(const struct wgd_peer_entry *a, const struct wgd_peer_entry *b)
{
	if (memcmp(a->key, b->key, sizeof(a->key)) || a->gone != b->gone ||
	    a->has_ip4 != b->has_ip4 || a->has_ip6 != b->has_ip6 ||
	    !ip_same(&a->ip4, &b->ip4) || !ip_same(&a->ip6, &b->ip6) ||
	    !ip_same(&a->endpoint.addr, &b->endpoint.addr) ||
	    a->endpoint.port != b->endpoint.port || a->port != b->port || a->n_cand != b->n_cand)
		return false;
	for (size_t i = 0; i < a->n_cand; ++i)
		if (!ip_same(&a->cand[i], &b->cand[i]))
			return false;
	return true;
}

/* The mesh extension's fields. */
static bool mesh_same(const struct wgd_msg *a, const struct wgd_msg *b)
{
	if (a->mesh != b->mesh || a->has_epoch != b->has_epoch || a->has_since != b->has_since ||
	    a->has_dir_version != b->has_dir_version || a->epoch != b->epoch ||
	    a->since != b->since || a->dir_version != b->dir_version || a->port != b->port ||
	    a->n_cand != b->n_cand || a->reset != b->reset || a->more != b->more ||
	    a->n_peers != b->n_peers)
		return false;
	for (size_t i = 0; i < a->n_cand; ++i)
		if (!ip_same(&a->cand[i], &b->cand[i]))
			return false;
	for (size_t i = 0; i < a->n_peers; ++i)
		if (!entry_same(&a->peers[i], &b->peers[i]))
			return false;
	return true;
}

static bool msg_same(const struct wgd_msg *a, const struct wgd_msg *b)
{
	if (a->cmd != b->cmd || a->version != b->version ||
	    a->has_ip4 != b->has_ip4 || a->has_ip6 != b->has_ip6 ||
	    !ip_same(&a->ip4, &b->ip4) || !ip_same(&a->ip6, &b->ip6) ||
	    a->has_leasestart != b->has_leasestart ||
	    a->has_leasetime != b->has_leasetime ||
	    a->leasestart != b->leasestart || a->leasetime != b->leasetime ||
	    a->has_errno != b->has_errno || a->err != b->err ||
	    strcmp(a->errmsg, b->errmsg) || a->n_routes != b->n_routes ||
	    a->n_dns != b->n_dns || strcmp(a->dns_search, b->dns_search) ||
	    a->dns_search_bad != b->dns_search_bad ||
	    a->mtu != b->mtu)
		return false;
	for (size_t i = 0; i < a->n_routes; ++i) {
		if (!ip_same(&a->routes[i], &b->routes[i]))
			return false;
	}
	for (size_t i = 0; i < a->n_dns; ++i) {
		if (!ip_same(&a->dns[i], &b->dns[i]))
			return false;
	}
	return mesh_same(a, b);
}

/* What ipaddr.h promises of every parsed address: unused bytes are zero. */
static void check_ip(const struct wgd_ip *ip, bool host)
{
	struct wgd_ip masked = *ip;

	FUZZ_CHECK(ip->family == AF_INET || ip->family == AF_INET6);
	FUZZ_CHECK(ip->cidr <= wgd_ip_bits(ip->family));
	if (host)
		FUZZ_CHECK(ip->cidr == wgd_ip_bits(ip->family));
	for (size_t i = wgd_ip_len(ip->family); i < sizeof(ip->bytes); ++i)
		FUZZ_CHECK(ip->bytes[i] == 0);
	wgd_ip_mask(&masked);
	FUZZ_CHECK(ip_same(&masked, ip));
}

static void check_msg(enum wgd_parse_kind kind, const struct wgd_msg *m)
{
	if (m->has_ip4) {
		check_ip(&m->ip4, true);
		FUZZ_CHECK(m->ip4.family == AF_INET);
	}
	if (m->has_ip6) {
		check_ip(&m->ip6, true);
		FUZZ_CHECK(m->ip6.family == AF_INET6);
		FUZZ_CHECK(!IN6_IS_ADDR_V4MAPPED(&m->ip6.ip6));
	}
	FUZZ_CHECK(m->n_routes <= WGD_MAX_ROUTES && m->n_dns <= WGD_MAX_DNS);
	for (size_t i = 0; i < m->n_routes; ++i)
		check_ip(&m->routes[i], false);
	for (size_t i = 0; i < m->n_dns; ++i)
		check_ip(&m->dns[i], true);
	FUZZ_CHECK(memchr(m->errmsg, '\0', sizeof(m->errmsg)));
	FUZZ_CHECK(memchr(m->dns_search, '\0', sizeof(m->dns_search)));
	FUZZ_CHECK(m->n_cand <= WGD_MAX_CANDIDATES && m->n_peers <= WGD_MAX_PEERS);
	for (size_t i = 0; i < m->n_cand; ++i)
		check_ip(&m->cand[i], true);
	for (size_t i = 0; i < m->n_peers; ++i) {
		const struct wgd_peer_entry *e = &m->peers[i];

		FUZZ_CHECK(e->n_cand <= WGD_MAX_CANDIDATES);
		FUZZ_CHECK(!e->has_ip4 || (check_ip(&e->ip4, true), e->ip4.family == AF_INET));
		FUZZ_CHECK(!e->has_ip6 || (check_ip(&e->ip6, true), e->ip6.family == AF_INET6));
		if (e->endpoint.addr.family) {
			check_ip(&e->endpoint.addr, true);
			FUZZ_CHECK(e->endpoint.port != 0);
		}
		for (size_t j = 0; j < e->n_cand; ++j)
			check_ip(&e->cand[j], true);
		/* One line per peer and message. */
		for (size_t j = 0; j < i; ++j)
			FUZZ_CHECK(memcmp(e->key, m->peers[j].key, sizeof(e->key)));
	}
	if (kind == WGD_PARSE_REQUEST) {
		FUZZ_CHECK((m->cmd == WGD_CMD_REQUEST_IP || m->cmd == WGD_CMD_REQUEST_PEERS) &&
			   m->version == 1);
		/* Mesh keys count only in their own command. */
		if (m->cmd == WGD_CMD_REQUEST_IP)
			FUZZ_CHECK(!m->has_epoch && !m->has_since && !m->n_cand && !m->port);
		FUZZ_CHECK(!m->mesh && !m->n_peers && !m->reset && !m->more);
		/* Response keys in a request are skipped, never stored. */
		FUZZ_CHECK(!m->has_errno && !m->n_routes && !m->n_dns && !m->mtu &&
			   !m->errmsg[0] && !m->dns_search[0]);
	} else {
		FUZZ_CHECK(m->cmd == WGD_CMD_NONE && m->has_errno);
		FUZZ_CHECK(!m->has_since && !m->n_cand && !m->port);
	}
}

static ssize_t serialize(enum wgd_parse_kind kind, const struct wgd_msg *m,
			 char *buf, size_t len)
{
	return kind == WGD_PARSE_REQUEST ? wgd_serialize_request(m, buf, len) :
					   wgd_serialize_response(m, buf, len);
}

/* The fields a serialized message must carry over from m. */
static void check_carried(enum wgd_parse_kind kind, const struct wgd_msg *m,
			  const struct wgd_msg *r)
{
	bool has_ip = m->has_ip4 || m->has_ip6;

	FUZZ_CHECK(r->cmd == m->cmd && r->version == m->version);
	if (m->cmd == WGD_CMD_REQUEST_PEERS) {
		/* The request lists its numbers always, 0 for what was missing. */
		FUZZ_CHECK(r->epoch == m->epoch && r->since == m->since && r->port == m->port);
		FUZZ_CHECK(r->n_cand == m->n_cand);
		for (size_t i = 0; i < m->n_cand; ++i)
			FUZZ_CHECK(ip_same(&r->cand[i], &m->cand[i]));
	} else {
		FUZZ_CHECK(mesh_same(m, r));
	}
	FUZZ_CHECK(r->has_ip4 == m->has_ip4 && r->has_ip6 == m->has_ip6);
	FUZZ_CHECK(!m->has_ip4 || ip_same(&r->ip4, &m->ip4));
	FUZZ_CHECK(!m->has_ip6 || ip_same(&r->ip6, &m->ip6));
	/* The lease lines go with the addresses, 0 for what was missing. */
	FUZZ_CHECK(r->has_leasestart == has_ip && r->has_leasetime == has_ip);
	if (has_ip)
		FUZZ_CHECK(r->leasestart == m->leasestart &&
			   r->leasetime == m->leasetime);
	if (kind == WGD_PARSE_REQUEST)
		return;

	FUZZ_CHECK(r->err == m->err && r->mtu == m->mtu);
	FUZZ_CHECK(!strcmp(r->dns_search, m->dns_search));
	FUZZ_CHECK(r->n_routes == m->n_routes && r->n_dns == m->n_dns);
	for (size_t i = 0; i < m->n_routes; ++i)
		FUZZ_CHECK(ip_same(&r->routes[i], &m->routes[i]));
	for (size_t i = 0; i < m->n_dns; ++i)
		FUZZ_CHECK(ip_same(&r->dns[i], &m->dns[i]));
	if (!m->err) {
		FUZZ_CHECK(!r->errmsg[0]);
	} else if (m->errmsg[0]) {
		FUZZ_CHECK(!strcmp(r->errmsg, m->errmsg));
	} else {
		const char *text = wgd_error_text(m->err);

		FUZZ_CHECK(!strcmp(r->errmsg, text ? text : "Unknown error"));
	}
}

/* Serializes m, parses the result, and serializes that again. */
static void round_trip(enum wgd_parse_kind kind, const struct wgd_msg *m)
{
	static char buf[WGD_MAX_MESSAGE], again[WGD_MAX_MESSAGE];
	static struct wgd_parser p;
	static struct wgd_peer_entry store[WGD_MAX_PEERS];
	ssize_t len, len2;
	char *tight;

	len = serialize(kind, m, buf, sizeof(buf));
	FUZZ_CHECK(len > 0 && (size_t)len < sizeof(buf));
	FUZZ_CHECK(strlen(buf) == (size_t)len);

	/* One byte short of room for the NUL: refused, and nothing half written. */
	tight = fuzz_dup(buf, (size_t)len);
	FUZZ_CHECK(serialize(kind, m, tight, (size_t)len) == -ENOSPC);
	FUZZ_CHECK(tight[0] == '\0');
	free(tight);

	wgd_parser_init(&p, kind);
	wgd_parser_set_peers(&p, kind == WGD_PARSE_RESPONSE ? store : NULL);
	FUZZ_CHECK(wgd_parse(&p, buf, (size_t)len) == len);
	check_msg(kind, &p.msg);
	check_carried(kind, m, &p.msg);

	len2 = serialize(kind, &p.msg, again, sizeof(again));
	FUZZ_CHECK(len2 == len && !memcmp(buf, again, (size_t)len));
}

/*
 * One pass over the stream. Returns the number of outcomes: each message,
 * then a failure or a message cut short by the end of the input, if any.
 */
static size_t drive(enum wgd_parse_kind kind, const uint8_t *s, size_t len,
		    struct splitter *sp, struct outcome *out)
{
	static const uint8_t extra = 'x';
	static struct wgd_parser p;
	static struct wgd_peer_entry drive_store[WGD_MAX_PEERS];
	size_t off = 0, n = 0;
	bool started = false;

	wgd_parser_init(&p, kind);
	wgd_parser_set_peers(&p, kind == WGD_PARSE_RESPONSE ? drive_store : NULL);
	while (off < len) {
		size_t chunk = next_read(sp, len - off), used = 0;
		uint8_t *copy = fuzz_dup(s + off, chunk);

		/* An empty read changes nothing. */
		if (sp->mode % 4 && fuzz_next(&sp->state) % 8 == 0)
			FUZZ_CHECK(wgd_parse(&p, copy, 0) == 0);

		while (used < chunk) {
			ssize_t ret = wgd_parse(&p, copy + used, chunk - used);

			started = true;
			if (ret < 0) {
				FUZZ_CHECK(ret == -WGD_E_INVALID || ret == -WGD_E_UNSUPPORTED);
				FUZZ_CHECK(p.error != NULL && p.status == ret);
				/* A failed parser stays failed. */
				FUZZ_CHECK(wgd_parse(&p, &extra, 1) == ret);
				out[n].status = ret;
				out[n].end = 0;
				free(copy);
				return n + 1;
			}
			if (ret == 0)
				break;
			FUZZ_CHECK((size_t)ret <= chunk - used);
			used += (size_t)ret;
			/* The count is per read; the offset is what compares. */
			out[n].status = 1;
			out[n].end = off + used;
			outcome_keep(&out[n], &p.msg);
			check_msg(kind, &p.msg);

			/* Feeding on without a new init is refused, the message kept. */
			FUZZ_CHECK(wgd_parse(&p, &extra, 1) == -WGD_E_INVALID);
			FUZZ_CHECK(msg_same(&p.msg, &out[n].msg));

			wgd_parser_init(&p, kind);
			wgd_parser_set_peers(&p, kind == WGD_PARSE_RESPONSE ? drive_store : NULL);
			started = false;
			if (++n == FUZZ_MAX_OUTCOMES) {
				free(copy);
				return n;
			}
		}
		free(copy);
		off += chunk;
	}
	if (started) {
		out[n].status = 0;
		out[n].end = len;
		++n;
	}
	return n;
}

static void fuzz_proto_one(enum wgd_parse_kind kind, const uint8_t *data, size_t size)
{
	static struct outcome whole[FUZZ_MAX_OUTCOMES + 1], split[FUZZ_MAX_OUTCOMES + 1];
	struct splitter one = { .mode = 0 }, cut;
	size_t n_whole, n_split;

	if (size < 2)
		return;
	cut.mode = data[0];
	cut.state = (uint32_t)data[1] * 0x01000193u + 1;
	data += 2;
	size -= 2;

	n_whole = drive(kind, data, size, &one, whole);
	n_split = drive(kind, data, size, &cut, split);

	FUZZ_CHECK(n_whole == n_split);
	for (size_t i = 0; i < n_whole; ++i) {
		FUZZ_CHECK(whole[i].status == split[i].status);
		if (whole[i].status <= 0)
			continue;
		/* A message's length is the same however it arrived. */
		FUZZ_CHECK(whole[i].end == split[i].end);
		FUZZ_CHECK(msg_same(&whole[i].msg, &split[i].msg));
		/* A bad dns_search is kept only to be logged; no sender may
		 * write one, so the round trip goes without it. */
		if (whole[i].msg.dns_search_bad) {
			whole[i].msg.dns_search[0] = '\0';
			whole[i].msg.dns_search_bad = false;
		}
		round_trip(kind, &whole[i].msg);
	}
}

#endif
