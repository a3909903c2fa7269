// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/key.h"
#include "../common/strbuf.h"
#include "status.h"

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
static void put_duration(struct strbuf *b, uint64_t s)
{
	static const struct {
		uint64_t secs;
		const char *unit;
	} units[] = {
		{ 86400, "day" }, { 3600, "hour" }, { 60, "minute" }, { 1, "second" },
	};
	bool first = true;

	if (!s) {
		strbuf_printf(b, "0 seconds");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t n = s / units[i].secs;

		if (!n)
			continue;
		s %= units[i].secs;
		strbuf_printf(b, "%s%llu %s%s", first ? "" : ", ", (unsigned long long)n, units[i].unit,
		    n == 1 ? "" : "s");
		first = false;
	}
}

static void render_table(struct strbuf *b, const struct status *st)
{
	char kb[WG_KEY_B64_LEN], a[INET6_ADDRSTRLEN], ep[INET6_ADDRSTRLEN + 10];
	char p[WGD_IP_STRLEN];

	strbuf_printf(b, "interface: %s\n  leases: %zu\n  lease time: %u seconds\n  quarantined: %zu\n",
	    st->ifname, st->n_leases, st->leasetime, st->n_quarantined);
	for (size_t i = 0; i < st->n_pools; i++)
		strbuf_printf(b, "  pool: %s (%llu addresses, %llu free)\n",
		    wgd_ip_format(&st->pools[i].prefix, p, sizeof(p)),
		    (unsigned long long)st->pools[i].size, (unsigned long long)st->pools[i].free);
	strbuf_printf(b, "  counters:");
#define X(field, name, help) strbuf_printf(b, " %s %llu", name, (unsigned long long)st->counters.field);
	STATUS_COUNTERS(X)
#undef X
	strbuf_printf(b, "\n");
	if (st->mesh)
		strbuf_printf(b, "  mesh: epoch %u, version %u, %zu members, %zu tombstones, %zu polls held\n",
		    st->mesh_epoch, st->mesh_version, st->n_mesh, st->mesh_tombstones,
		    st->mesh_polls);

	for (size_t i = 0; i < st->n_leases; i++) {
		const struct status_lease *l = &st->leases[i];

		wgkey_to_base64(kb, l->pubkey);
		strbuf_printf(b, "\npeer: %s\n", kb);
		strbuf_printf(b, "  link-local: %s\n", inet_ntop(AF_INET6, &l->lladdr, a, sizeof(a)));
		if (l->has_ip4)
			strbuf_printf(b, "  ipv4: %s\n", inet_ntop(AF_INET, &l->ip4, a, sizeof(a)));
		if (l->has_ip6)
			strbuf_printf(b, "  ipv6: %s\n", inet_ntop(AF_INET6, &l->ip6, a, sizeof(a)));
		strbuf_printf(b, "  endpoint: %s\n", fmt_endpoint(&l->endpoint, ep, sizeof(ep)));
		strbuf_printf(b, "  time left: ");
		put_duration(b, l->left);
		strbuf_printf(b, "\n  last renewal: ");
		put_duration(b, st->now > l->start ? st->now - l->start : 0);
		strbuf_printf(b, " ago\n");
	}

	for (size_t i = 0; i < st->n_mesh; i++) {
		const struct status_mesh_peer *m = &st->mesh_peers[i];

		wgkey_to_base64(kb, m->pe.key);
		strbuf_printf(b, "\nmesh peer: %s\n", kb);
		if (m->pe.has_ip4)
			strbuf_printf(b, "  ipv4: %s\n", fmt_addr(&m->pe.ip4, a, sizeof(a)));
		if (m->pe.has_ip6)
			strbuf_printf(b, "  ipv6: %s\n", fmt_addr(&m->pe.ip6, a, sizeof(a)));
		strbuf_printf(b, "  endpoint: %s\n", fmt_mesh_endpoint(&m->pe.endpoint, ep, sizeof(ep), "(none)"));
		strbuf_printf(b, "  listen port: %u\n", m->pe.port);
		if (m->pe.n_cand) {
			strbuf_printf(b, "  candidates:");
			for (size_t j = 0; j < m->pe.n_cand; j++)
				strbuf_printf(b, " %s", fmt_addr(&m->pe.cand[j], a, sizeof(a)));
			strbuf_printf(b, "\n");
		}
		strbuf_printf(b, "  version: %u\n", m->version);
	}
}

static void render_json(struct strbuf *b, const struct status *st)
{
	char kb[WG_KEY_B64_LEN], a[INET6_ADDRSTRLEN], ep[INET6_ADDRSTRLEN + 10];
	char p[WGD_IP_STRLEN];

	/* Interface names and addresses need no JSON escaping: they are
	 * printable and have no quotes or backslashes. */
	strbuf_printf(b, "{\n  \"interface\": \"%s\",\n  \"lease_time\": %u,\n  \"now\": %u,\n",
	    st->ifname, st->leasetime, st->now);
	strbuf_printf(b, "  \"quarantined\": %zu,\n  \"leases\": [", st->n_quarantined);
	for (size_t i = 0; i < st->n_leases; i++) {
		const struct status_lease *l = &st->leases[i];

		wgkey_to_base64(kb, l->pubkey);
		strbuf_printf(b, "%s\n    {\"peer\": \"%s\", \"link_local\": \"%s\"", i ? "," : "", kb,
		    inet_ntop(AF_INET6, &l->lladdr, a, sizeof(a)));
		if (l->has_ip4)
			strbuf_printf(b, ", \"ipv4\": \"%s\"", inet_ntop(AF_INET, &l->ip4, a, sizeof(a)));
		else
			strbuf_printf(b, ", \"ipv4\": null");
		if (l->has_ip6)
			strbuf_printf(b, ", \"ipv6\": \"%s\"", inet_ntop(AF_INET6, &l->ip6, a, sizeof(a)));
		else
			strbuf_printf(b, ", \"ipv6\": null");
		if (l->endpoint.sin6_family)
			strbuf_printf(b, ", \"endpoint\": \"%s\"", fmt_endpoint(&l->endpoint, ep, sizeof(ep)));
		else
			strbuf_printf(b, ", \"endpoint\": null");
		strbuf_printf(b, ", \"time_left\": %u, \"last_renewal\": %u}", l->left, l->start);
	}
	strbuf_printf(b, "%s],\n  \"pools\": [", st->n_leases ? "\n  " : "");
	for (size_t i = 0; i < st->n_pools; i++)
		strbuf_printf(b, "%s\n    {\"prefix\": \"%s\", \"size\": %llu, \"free\": %llu}", i ? "," : "",
		    wgd_ip_format(&st->pools[i].prefix, p, sizeof(p)),
		    (unsigned long long)st->pools[i].size, (unsigned long long)st->pools[i].free);
	strbuf_printf(b, "%s],\n  \"counters\": {", st->n_pools ? "\n  " : "");
	bool first = true;
#define X(field, name, help)                                                          \
	strbuf_printf(b, "%s\"%s\": %llu", first ? "" : ", ", name,                             \
	    (unsigned long long)st->counters.field);                                   \
	first = false;
	STATUS_COUNTERS(X)
#undef X
	strbuf_printf(b, "}");
	if (st->mesh) {
		strbuf_printf(b, ",\n  \"mesh\": {\"epoch\": %u, \"version\": %u, \"members\": %zu, "
		       "\"tombstones\": %zu, \"polls\": %zu, \"peers\": [",
		    st->mesh_epoch, st->mesh_version, st->n_mesh, st->mesh_tombstones,
		    st->mesh_polls);
		for (size_t i = 0; i < st->n_mesh; i++) {
			const struct status_mesh_peer *m = &st->mesh_peers[i];

			wgkey_to_base64(kb, m->pe.key);
			strbuf_printf(b, "%s\n    {\"peer\": \"%s\"", i ? "," : "", kb);
			if (m->pe.has_ip4)
				strbuf_printf(b, ", \"ipv4\": \"%s\"", fmt_addr(&m->pe.ip4, a, sizeof(a)));
			else
				strbuf_printf(b, ", \"ipv4\": null");
			if (m->pe.has_ip6)
				strbuf_printf(b, ", \"ipv6\": \"%s\"", fmt_addr(&m->pe.ip6, a, sizeof(a)));
			else
				strbuf_printf(b, ", \"ipv6\": null");
			if (m->pe.endpoint.addr.family)
				strbuf_printf(b, ", \"endpoint\": \"%s\"",
				    fmt_mesh_endpoint(&m->pe.endpoint, ep, sizeof(ep), ""));
			else
				strbuf_printf(b, ", \"endpoint\": null");
			strbuf_printf(b, ", \"port\": %u, \"candidates\": [", m->pe.port);
			for (size_t j = 0; j < m->pe.n_cand; j++)
				strbuf_printf(b, "%s\"%s\"", j ? ", " : "", fmt_addr(&m->pe.cand[j], a, sizeof(a)));
			strbuf_printf(b, "], \"version\": %u}", m->version);
		}
		strbuf_printf(b, "%s]}", st->n_mesh ? "\n  " : "");
	}
	strbuf_printf(b, "\n}\n");
}

static void render_prometheus(struct strbuf *b, const struct status *st)
{
	char kb[WG_KEY_B64_LEN], a4[INET6_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
	char p[WGD_IP_STRLEN];

	strbuf_printf(b, "# HELP wg_dynamic_leases Leases held.\n# TYPE wg_dynamic_leases gauge\n");
	strbuf_printf(b, "wg_dynamic_leases{interface=\"%s\"} %zu\n", st->ifname, st->n_leases);
	strbuf_printf(b, "# HELP wg_dynamic_quarantined Addresses held back after their peer left.\n"
	       "# TYPE wg_dynamic_quarantined gauge\n");
	strbuf_printf(b, "wg_dynamic_quarantined{interface=\"%s\"} %zu\n", st->ifname, st->n_quarantined);
	strbuf_printf(b, "# HELP wg_dynamic_pool_size Leasable addresses in a pool.\n"
	       "# TYPE wg_dynamic_pool_size gauge\n");
	for (size_t i = 0; i < st->n_pools; i++)
		strbuf_printf(b, "wg_dynamic_pool_size{interface=\"%s\",pool=\"%s\"} %llu\n", st->ifname,
		    wgd_ip_format(&st->pools[i].prefix, p, sizeof(p)),
		    (unsigned long long)st->pools[i].size);
	strbuf_printf(b, "# HELP wg_dynamic_pool_free Free addresses in a pool.\n"
	       "# TYPE wg_dynamic_pool_free gauge\n");
	for (size_t i = 0; i < st->n_pools; i++)
		strbuf_printf(b, "wg_dynamic_pool_free{interface=\"%s\",pool=\"%s\"} %llu\n", st->ifname,
		    wgd_ip_format(&st->pools[i].prefix, p, sizeof(p)),
		    (unsigned long long)st->pools[i].free);
#define X(field, name, help)                                                          \
	strbuf_printf(b, "# HELP wg_dynamic_%s_total %s.\n# TYPE wg_dynamic_%s_total counter\n"     \
	       "wg_dynamic_%s_total{interface=\"%s\"} %llu\n",                         \
	    name, help, name, name, st->ifname, (unsigned long long)st->counters.field);
	STATUS_COUNTERS(X)
#undef X
	if (st->mesh) {
		strbuf_printf(b, "# HELP wg_dynamic_mesh_members Peers in the mesh directory.\n"
		       "# TYPE wg_dynamic_mesh_members gauge\n"
		       "wg_dynamic_mesh_members{interface=\"%s\"} %zu\n", st->ifname, st->n_mesh);
		strbuf_printf(b, "# HELP wg_dynamic_mesh_tombstones Departures the mesh directory still "
		       "lists.\n# TYPE wg_dynamic_mesh_tombstones gauge\n"
		       "wg_dynamic_mesh_tombstones{interface=\"%s\"} %zu\n", st->ifname,
		    st->mesh_tombstones);
		strbuf_printf(b, "# HELP wg_dynamic_mesh_polls Directory long polls held.\n"
		       "# TYPE wg_dynamic_mesh_polls gauge\n"
		       "wg_dynamic_mesh_polls{interface=\"%s\"} %zu\n", st->ifname, st->mesh_polls);
		strbuf_printf(b, "# HELP wg_dynamic_mesh_version The mesh directory's version.\n"
		       "# TYPE wg_dynamic_mesh_version gauge\n"
		       "wg_dynamic_mesh_version{interface=\"%s\",epoch=\"%u\"} %u\n", st->ifname,
		    st->mesh_epoch, st->mesh_version);
	}
	strbuf_printf(b, "# HELP wg_dynamic_lease_seconds_left Seconds until a lease expires.\n"
	       "# TYPE wg_dynamic_lease_seconds_left gauge\n");
	for (size_t i = 0; i < st->n_leases; i++) {
		const struct status_lease *l = &st->leases[i];

		wgkey_to_base64(kb, l->pubkey);
		strbuf_printf(b, "wg_dynamic_lease_seconds_left{interface=\"%s\",peer=\"%s\",ipv4=\"%s\","
		       "ipv6=\"%s\"} %u\n",
		    st->ifname, kb, l->has_ip4 ? inet_ntop(AF_INET, &l->ip4, a4, sizeof(a4)) : "",
		    l->has_ip6 ? inet_ntop(AF_INET6, &l->ip6, a6, sizeof(a6)) : "", l->left);
	}
}

char *status_render(const struct status *st, enum status_format format, size_t *len)
{
	struct strbuf b = { .cap = 4096 };

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
