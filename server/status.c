// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/key.h"
#include "status.h"

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3))) put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

int status_format_parse(const char *s, size_t len, enum status_format *out)
{
	static const struct {
		const char *name;
		enum status_format format;
	} names[] = {
		{ "table", STATUS_TABLE },
		{ "json", STATUS_JSON },
		{ "prometheus", STATUS_PROMETHEUS },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i].name) == len && !memcmp(names[i].name, s, len)) {
			*out = names[i].format;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *fmt_endpoint(const struct sockaddr_in6 *ep, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (ep->sin6_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ep;

		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, ntohs(sin->sin_port));
	} else if (ep->sin6_family == AF_INET6) {
		inet_ntop(AF_INET6, &ep->sin6_addr, a, sizeof(a));
		snprintf(out, len, "[%s]:%u", a, ntohs(ep->sin6_port));
	} else {
		snprintf(out, len, "(none)");
	}
	return out;
}

/* A directory endpoint: "ADDR:PORT", "[ADDR]:PORT", or none. */
static const char *fmt_mesh_endpoint(const struct wgd_endpoint *ep, char *out, size_t len,
				     const char *none)
{
	char a[INET6_ADDRSTRLEN];

	if (!ep->addr.family || !inet_ntop(ep->addr.family, ep->addr.bytes, a, sizeof(a)))
		snprintf(out, len, "%s", none);
	else if (ep->addr.family == AF_INET)
		snprintf(out, len, "%s:%u", a, ep->port);
	else
		snprintf(out, len, "[%s]:%u", a, ep->port);
	return out;
}

static const char *fmt_addr(const struct wgd_ip *ip, char *out, size_t len)
{
	return inet_ntop(ip->family, ip->bytes, out, (socklen_t)len) ? out : "?";
}

/* "1 hour, 2 minutes, 3 seconds", as wg(8) writes times. */
static void put_duration(struct buf *b, uint64_t s)
{
	static const struct {
		uint64_t secs;
		const char *unit;
	} units[] = {
		{ 86400, "day" }, { 3600, "hour" }, { 60, "minute" }, { 1, "second" },
	};
	bool first = true;

	if (!s) {
		put(b, "0 seconds");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t n = s / units[i].secs;

		if (!n)
			continue;
		s %= units[i].secs;
		put(b, "%s%llu %s%s", first ? "" : ", ", (unsigned long long)n, units[i].unit,
		    n == 1 ? "" : "s");
		first = false;
	}
}

static void render_table(struct buf *b, const struct status *st)
{
	char kb[WG_KEY_B64_LEN], a[INET6_ADDRSTRLEN], ep[INET6_ADDRSTRLEN + 10];
	char p[WGD_IP_STRLEN];

	put(b, "interface: %s\n  leases: %zu\n  lease time: %u seconds\n  quarantined: %zu\n",
	    st->ifname, st->n_leases, st->leasetime, st->n_quarantined);
	for (size_t i = 0; i < st->n_pools; i++)
		put(b, "  pool: %s (%llu addresses, %llu free)\n",
		    wgd_ip_format(&st->pools[i].prefix, p, sizeof(p)),
		    (unsigned long long)st->pools[i].size, (unsigned long long)st->pools[i].free);
	put(b, "  counters:");
#define X(field, name, help) put(b, " %s %llu", name, (unsigned long long)st->counters.field);
	STATUS_COUNTERS(X)
#undef X
	put(b, "\n");
	if (st->mesh)
		put(b, "  mesh: epoch %u, version %u, %zu members, %zu tombstones, %zu polls held\n",
		    st->mesh_epoch, st->mesh_version, st->n_mesh, st->mesh_tombstones,
		    st->mesh_polls);

	for (size_t i = 0; i < st->n_leases; i++) {
		const struct status_lease *l = &st->leases[i];

		wgkey_to_base64(kb, l->pubkey);
		put(b, "\npeer: %s\n", kb);
		put(b, "  link-local: %s\n", inet_ntop(AF_INET6, &l->lladdr, a, sizeof(a)));
		if (l->has_ip4)
			put(b, "  ipv4: %s\n", inet_ntop(AF_INET, &l->ip4, a, sizeof(a)));
		if (l->has_ip6)
			put(b, "  ipv6: %s\n", inet_ntop(AF_INET6, &l->ip6, a, sizeof(a)));
		put(b, "  endpoint: %s\n", fmt_endpoint(&l->endpoint, ep, sizeof(ep)));
		put(b, "  time left: ");
		put_duration(b, l->left);
		put(b, "\n  last renewal: ");
		put_duration(b, st->now > l->start ? st->now - l->start : 0);
		put(b, " ago\n");
	}

	for (size_t i = 0; i < st->n_mesh; i++) {
		const struct status_mesh_peer *m = &st->mesh_peers[i];

		wgkey_to_base64(kb, m->pe.key);
		put(b, "\nmesh peer: %s\n", kb);
		if (m->pe.has_ip4)
			put(b, "  ipv4: %s\n", fmt_addr(&m->pe.ip4, a, sizeof(a)));
		if (m->pe.has_ip6)
			put(b, "  ipv6: %s\n", fmt_addr(&m->pe.ip6, a, sizeof(a)));
		put(b, "  endpoint: %s\n", fmt_mesh_endpoint(&m->pe.endpoint, ep, sizeof(ep), "(none)"));
		put(b, "  listen port: %u\n", m->pe.port);
		if (m->pe.n_cand) {
			put(b, "  candidates:");
			for (size_t j = 0; j < m->pe.n_cand; j++)
				put(b, " %s", fmt_addr(&m->pe.cand[j], a, sizeof(a)));
			put(b, "\n");
		}
		put(b, "  version: %u\n", m->version);
	}
}

static void render_json(struct buf *b, const struct status *st)
{
	char kb[WG_KEY_B64_LEN], a[INET6_ADDRSTRLEN], ep[INET6_ADDRSTRLEN + 10];
	char p[WGD_IP_STRLEN];

	/* Interface names and addresses need no JSON escaping: they are
	 * printable and have no quotes or backslashes. */
	put(b, "{\n  \"interface\": \"%s\",\n  \"lease_time\": %u,\n  \"now\": %u,\n",
	    st->ifname, st->leasetime, st->now);
	put(b, "  \"quarantined\": %zu,\n  \"leases\": [", st->n_quarantined);
	for (size_t i = 0; i < st->n_leases; i++) {
		const struct status_lease *l = &st->leases[i];

		wgkey_to_base64(kb, l->pubkey);
		put(b, "%s\n    {\"peer\": \"%s\", \"link_local\": \"%s\"", i ? "," : "", kb,
		    inet_ntop(AF_INET6, &l->lladdr, a, sizeof(a)));
		if (l->has_ip4)
			put(b, ", \"ipv4\": \"%s\"", inet_ntop(AF_INET, &l->ip4, a, sizeof(a)));
		else
			put(b, ", \"ipv4\": null");
		if (l->has_ip6)
			put(b, ", \"ipv6\": \"%s\"", inet_ntop(AF_INET6, &l->ip6, a, sizeof(a)));
		else
			put(b, ", \"ipv6\": null");
		if (l->endpoint.sin6_family)
			put(b, ", \"endpoint\": \"%s\"", fmt_endpoint(&l->endpoint, ep, sizeof(ep)));
		else
			put(b, ", \"endpoint\": null");
		put(b, ", \"time_left\": %u, \"last_renewal\": %u}", l->left, l->start);
	}
	put(b, "%s],\n  \"pools\": [", st->n_leases ? "\n  " : "");
	for (size_t i = 0; i < st->n_pools; i++)
		put(b, "%s\n    {\"prefix\": \"%s\", \"size\": %llu, \"free\": %llu}", i ? "," : "",
		    wgd_ip_format(&st->pools[i].prefix, p, sizeof(p)),
		    (unsigned long long)st->pools[i].size, (unsigned long long)st->pools[i].free);
	put(b, "%s],\n  \"counters\": {", st->n_pools ? "\n  " : "");
	bool first = true;
#define X(field, name, help)                                                          \
	put(b, "%s\"%s\": %llu", first ? "" : ", ", name,                             \
	    (unsigned long long)st->counters.field);                                   \
	first = false;
	STATUS_COUNTERS(X)
#undef X
	put(b, "}");
	if (st->mesh) {
		put(b, ",\n  \"mesh\": {\"epoch\": %u, \"version\": %u, \"members\": %zu, "
		       "\"tombstones\": %zu, \"polls\": %zu, \"peers\": [",
		    st->mesh_epoch, st->mesh_version, st->n_mesh, st->mesh_tombstones,
		    st->mesh_polls);
		for (size_t i = 0; i < st->n_mesh; i++) {
			const struct status_mesh_peer *m = &st->mesh_peers[i];

			wgkey_to_base64(kb, m->pe.key);
			put(b, "%s\n    {\"peer\": \"%s\"", i ? "," : "", kb);
			if (m->pe.has_ip4)
				put(b, ", \"ipv4\": \"%s\"", fmt_addr(&m->pe.ip4, a, sizeof(a)));
			else
				put(b, ", \"ipv4\": null");
			if (m->pe.has_ip6)
				put(b, ", \"ipv6\": \"%s\"", fmt_addr(&m->pe.ip6, a, sizeof(a)));
			else
				put(b, ", \"ipv6\": null");
			if (m->pe.endpoint.addr.family)
				put(b, ", \"endpoint\": \"%s\"",
				    fmt_mesh_endpoint(&m->pe.endpoint, ep, sizeof(ep), ""));
			else
				put(b, ", \"endpoint\": null");
			put(b, ", \"port\": %u, \"candidates\": [", m->pe.port);
			for (size_t j = 0; j < m->pe.n_cand; j++)
				put(b, "%s\"%s\"", j ? ", " : "", fmt_addr(&m->pe.cand[j], a, sizeof(a)));
			put(b, "], \"version\": %u}", m->version);
		}
		put(b, "%s]}", st->n_mesh ? "\n  " : "");
	}
	put(b, "\n}\n");
}

static void render_prometheus(struct buf *b, const struct status *st)
{
	char kb[WG_KEY_B64_LEN], a4[INET6_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
	char p[WGD_IP_STRLEN];

	put(b, "# HELP wg_dynamic_leases Leases held.\n# TYPE wg_dynamic_leases gauge\n");
	put(b, "wg_dynamic_leases{interface=\"%s\"} %zu\n", st->ifname, st->n_leases);
	put(b, "# HELP wg_dynamic_quarantined Addresses held back after their peer left.\n"
	       "# TYPE wg_dynamic_quarantined gauge\n");
	put(b, "wg_dynamic_quarantined{interface=\"%s\"} %zu\n", st->ifname, st->n_quarantined);
	put(b, "# HELP wg_dynamic_pool_size Leasable addresses in a pool.\n"
	       "# TYPE wg_dynamic_pool_size gauge\n");
	for (size_t i = 0; i < st->n_pools; i++)
		put(b, "wg_dynamic_pool_size{interface=\"%s\",pool=\"%s\"} %llu\n", st->ifname,
		    wgd_ip_format(&st->pools[i].prefix, p, sizeof(p)),
		    (unsigned long long)st->pools[i].size);
	put(b, "# HELP wg_dynamic_pool_free Free addresses in a pool.\n"
	       "# TYPE wg_dynamic_pool_free gauge\n");
	for (size_t i = 0; i < st->n_pools; i++)
		put(b, "wg_dynamic_pool_free{interface=\"%s\",pool=\"%s\"} %llu\n", st->ifname,
		    wgd_ip_format(&st->pools[i].prefix, p, sizeof(p)),
		    (unsigned long long)st->pools[i].free);
#define X(field, name, help)                                                          \
	put(b, "# HELP wg_dynamic_%s_total %s.\n# TYPE wg_dynamic_%s_total counter\n"     \
	       "wg_dynamic_%s_total{interface=\"%s\"} %llu\n",                         \
	    name, help, name, name, st->ifname, (unsigned long long)st->counters.field);
	STATUS_COUNTERS(X)
#undef X
	if (st->mesh) {
		put(b, "# HELP wg_dynamic_mesh_members Peers in the mesh directory.\n"
		       "# TYPE wg_dynamic_mesh_members gauge\n"
		       "wg_dynamic_mesh_members{interface=\"%s\"} %zu\n", st->ifname, st->n_mesh);
		put(b, "# HELP wg_dynamic_mesh_tombstones Departures the mesh directory still "
		       "lists.\n# TYPE wg_dynamic_mesh_tombstones gauge\n"
		       "wg_dynamic_mesh_tombstones{interface=\"%s\"} %zu\n", st->ifname,
		    st->mesh_tombstones);
		put(b, "# HELP wg_dynamic_mesh_polls Directory long polls held.\n"
		       "# TYPE wg_dynamic_mesh_polls gauge\n"
		       "wg_dynamic_mesh_polls{interface=\"%s\"} %zu\n", st->ifname, st->mesh_polls);
		put(b, "# HELP wg_dynamic_mesh_version The mesh directory's version.\n"
		       "# TYPE wg_dynamic_mesh_version gauge\n"
		       "wg_dynamic_mesh_version{interface=\"%s\",epoch=\"%u\"} %u\n", st->ifname,
		    st->mesh_epoch, st->mesh_version);
	}
	put(b, "# HELP wg_dynamic_lease_seconds_left Seconds until a lease expires.\n"
	       "# TYPE wg_dynamic_lease_seconds_left gauge\n");
	for (size_t i = 0; i < st->n_leases; i++) {
		const struct status_lease *l = &st->leases[i];

		wgkey_to_base64(kb, l->pubkey);
		put(b, "wg_dynamic_lease_seconds_left{interface=\"%s\",peer=\"%s\",ipv4=\"%s\","
		       "ipv6=\"%s\"} %u\n",
		    st->ifname, kb, l->has_ip4 ? inet_ntop(AF_INET, &l->ip4, a4, sizeof(a4)) : "",
		    l->has_ip6 ? inet_ntop(AF_INET6, &l->ip6, a6, sizeof(a6)) : "", l->left);
	}
}

char *status_render(const struct status *st, enum status_format format, size_t *len)
{
	struct buf b = { .cap = 4096 };

	b.p = malloc(b.cap);
	if (!b.p)
		return NULL;
	b.p[0] = '\0';
	switch (format) {
	case STATUS_TABLE:
		render_table(&b, st);
		break;
	case STATUS_JSON:
		render_json(&b, st);
		break;
	case STATUS_PROMETHEUS:
		render_prometheus(&b, st);
		break;
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}
