/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_STATUS_H
#define WGD_STATUS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/wgdev.h"
#include "../protocol/ipaddr.h"
#include "../protocol/proto.h"

/*
 * What `wg-dynamic-server show IFACE` prints: every lease, the pools and the
 * counters, as a table like wg(8)'s, as JSON, or in the Prometheus text
 * exposition format (for a node_exporter textfile collector). Rendering is
 * pure: the engine gathers a snapshot, this turns it into text.
 */

#define STATUS_COUNTERS(X)                                                  \
	X(grants, "grants", "Leases granted or moved to new addresses")        \
	X(renewals, "renewals", "Leases renewed with the same addresses")       \
	X(repeats, "repeats", "Requests early in a lease answered with it as it stands") \
	X(releases, "releases", "Leases released by their client")             \
	X(expiries, "expiries", "Leases that expired")                          \
	X(departures, "departures", "Leases dropped because the peer left")    \
	X(refused_port, "refused_port", "Connections refused: source port not 970") \
	X(refused_peer, "refused_peer", "Connections refused: no peer has the source address") \
	X(refused_busy, "refused_busy", "Connections refused: too many connections") \
	X(invalid, "invalid", "Requests answered errno 1: invalid")             \
	X(unsupported, "unsupported", "Requests answered errno 2: unsupported") \
	X(unavailable, "unavailable", "Requests answered errno 3: no address free") \
	X(idle_timeouts, "idle_timeouts", "Connections closed at the idle timeout") \
	X(errors, "errors", "Device updates that failed")                      \
	X(journal_records, "journal_records", "Records appended to the lease journal") \
	X(mesh_answers, "mesh_answers", "Mesh directory answers sent")           \
	X(mesh_bytes, "mesh_bytes", "Bytes of mesh directory answers sent")

#define X(field, name, help) uint64_t field;
struct status_counters {
	STATUS_COUNTERS(X)
};
#undef X

struct status_lease {
	uint8_t pubkey[WG_KEY_LEN];
	struct in6_addr lladdr;
	bool has_ip4, has_ip6;
	struct in_addr ip4;
	struct in6_addr ip6;
	uint32_t start;           /* last renewal, CLOCK_REALTIME seconds */
	uint32_t left;            /* seconds to expiry */
	struct sockaddr_in6 endpoint; /* sin6_family 0 when unknown; may hold a sockaddr_in */
};

/* A member of the mesh directory, as the directory has it. */
struct status_mesh_peer {
	struct wgd_peer_entry pe;
	uint32_t version;
};

struct status_pool {
	struct wgd_ip prefix;
	uint64_t size, free;
};

struct status {
	const char *ifname;
	uint32_t leasetime;
	uint32_t now;             /* CLOCK_REALTIME seconds */
	size_t n_leases;
	struct status_lease *leases;
	size_t n_pools;
	struct status_pool *pools;
	size_t n_quarantined;
	struct status_counters counters;
	/* --mesh: the directory, and its members in version order. */
	bool mesh;
	uint32_t mesh_epoch, mesh_version;
	size_t mesh_tombstones, mesh_polls;
	size_t n_mesh;
	struct status_mesh_peer *mesh_peers;
};

enum status_format {
	STATUS_TABLE,
	STATUS_JSON,
	STATUS_PROMETHEUS,
};

/* The format named by a request line ("table", "json", "prometheus"). */
int status_format_parse(const char *s, size_t len, enum status_format *out);

/* Renders st; a malloc'd NUL-terminated text (its length in *len), or NULL. */
char *status_render(const struct status *st, enum status_format format, size_t *len);

#endif
