/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_MESH_H
#define WGD_MESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../protocol/ipaddr.h"
#include "../protocol/proto.h"
#include "key.h"

/*
 * The mesh: which other peers of the hub this client talks to directly,
 * and over which endpoint. A pure state machine with no sockets and no
 * clock of its own: events go in (the directory changed, the device was
 * read, time passed) with the time as the caller read it, and actions come
 * out (add or remove a peer, add or remove its allowed-IPs), which the
 * caller makes on the WireGuard device. docs/mesh.md tells the design.
 *
 * The path of each peer:
 *
 *   RELAY    not on our device: its traffic goes through the hub. A peer
 *            with no usable candidate stays here; one that was LOST waits
 *            here for its backoff to pass.
 *   PROBING  on our device with a persistent keepalive and the candidate
 *            being tried as its endpoint, but no allowed-IPs: traffic still
 *            goes through the hub while WireGuard handshakes directly.
 *   DIRECT   its /32 and /128 are on it: the longest-prefix match sends its
 *            traffic straight to it.
 *   LOST     it was DIRECT and went quiet: its addresses went back to the
 *            hub and it is off the device until the backoff passes (RELAY
 *            with a reason, for show).
 *
 * Times: now_ms is CLOCK_BOOTTIME in milliseconds, and real_ns
 * CLOCK_REALTIME in nanoseconds, read together: handshake times come from
 * the device in real time, and both ends of a pair switch at the same
 * real-time instant (docs/mesh.md, "Switching without loss").
 */

#define MESH_MAX_PEERS 4096          /* directory entries kept, all others ignored */
#define MESH_KEEPALIVE_S 1           /* persistent keepalive of a mesh peer */
#define MESH_CANDIDATE_MS 1000       /* the next candidate is tried after this */
#define MESH_SWITCH_DELAY_MS 300     /* after the handshake, both ends switch */
#define MESH_QUIET_MS 2500           /* DIRECT without receive this long: LOST */
#define MESH_BACKOFF_MIN_MS 4000     /* LOST waits this, doubling ... */
#define MESH_BACKOFF_MAX_MS 30000    /* ... up to this */
#define MESH_RETRY_MS 15000          /* PROBING: the candidates again, then backoff */
#define MESH_GRACE_MS 30000          /* after a directory reset: unconfirmed peers kept */
#define MESH_PROBE_BUDGET 20         /* peer (re)adds per second, the whole mesh */
#define MESH_READ_FAST_MS 100        /* device reads while a peer is probing */
#define MESH_READ_SLOW_MS 250        /* otherwise: a quiet path is seen within this */

enum mesh_path {
	MESH_RELAY,
	MESH_PROBING,
	MESH_DIRECT,
	MESH_LOST,
};

const char *mesh_path_name(enum mesh_path p); /* "relay", "probing", ... */

/* What this client is, for the checks and the candidate order. */
struct mesh_config {
	uint8_t self_key[WG_KEY_LEN];
	uint8_t hub_key[WG_KEY_LEN];
	/* The hub's address: never a candidate. */
	struct wgd_endpoint hub_endpoint;
	/* Keys never touched: peers the administrator configured. */
	const uint8_t (*admin_keys)[WG_KEY_LEN];
	size_t n_admin_keys;
	/* A peer's leased addresses must lie inside these (the pushed routes
	 * and the hub's pools as routed), and never be our own. */
	const struct wgd_ip *routes;
	size_t n_routes;
};

/* What the caller does on the device, in the order given. */
enum mesh_action_kind {
	/* Add the peer afresh: remove it if present, then add it with this
	 * endpoint and a keepalive and no allowed-IPs, so that WireGuard sends
	 * a handshake initiation now rather than within 5 s. */
	MESH_ACT_ADD_PEER,
	MESH_ACT_REMOVE_PEER,
	MESH_ACT_ALLOWEDIPS_ADD,   /* ips[0..n_ips): the peer's /32 and /128 */
	MESH_ACT_ALLOWEDIPS_DEL,
};

struct mesh_action {
	enum mesh_action_kind kind;
	uint8_t key[WG_KEY_LEN];
	struct wgd_endpoint endpoint;  /* ADD_PEER */
	uint16_t keepalive_s;          /* ADD_PEER */
	uint8_t n_ips;
	struct wgd_ip ips[2];
};

/* What show prints of a peer. */
struct mesh_peer_status {
	uint8_t key[WG_KEY_LEN];
	bool has_ip4, has_ip6;
	struct wgd_ip ip4, ip6;
	enum mesh_path path;
	struct wgd_endpoint endpoint;  /* DIRECT: the one in use; PROBING: tried */
	uint64_t since_ms;             /* when the path took this state */
	unsigned n_cand;               /* usable candidates, in order */
	struct wgd_endpoint cand[WGD_MAX_CANDIDATES + 1];
};

/* What a device read said of one mesh peer on it. */
struct mesh_peer_seen {
	uint8_t key[WG_KEY_LEN];
	int64_t last_handshake_ns;     /* CLOCK_REALTIME, 0 never */
	uint64_t rx_bytes;
	struct wgd_endpoint endpoint;  /* as the device has it now */
};

struct mesh;

struct mesh *mesh_new(const struct mesh_config *cfg);
void mesh_free(struct mesh *m);
/* The routes or admin keys changed (a new lease, a device read). */
int mesh_set_config(struct mesh *m, const struct mesh_config *cfg);

/*
 * The directory, as the hub's answers give it: entries that failed the
 * checks are dropped, each with one log line. A reset starts over: peers
 * not seen again within MESH_GRACE_MS are then removed (a restarted hub
 * server rebuilds its directory as peers come back). Returns how many
 * entries were taken.
 */
void mesh_directory_reset(struct mesh *m, uint64_t now_ms);
size_t mesh_directory_apply(struct mesh *m, const struct wgd_peer_entry *e, size_t n,
			    uint64_t now_ms);
/* Our own entry in the directory: our endpoint as the hub sees it and
 * our candidates. A changed endpoint (our NAT moved) re-punches at once. */
void mesh_self_update(struct mesh *m, const struct wgd_peer_entry *self, uint64_t now_ms);

/* A device read, n peers it found that are mesh peers (others are not
 * passed); a mesh peer missing from the read that should be there is
 * added again. */
void mesh_device_read(struct mesh *m, const struct mesh_peer_seen *seen, size_t n,
		      uint64_t now_ms, int64_t real_ns);

/* Time passed: switches, fallbacks and the next candidates. */
void mesh_tick(struct mesh *m, uint64_t now_ms, int64_t real_ns);

/* The next action to make, false when there is none. The caller makes
 * them in order; a failure is reported with mesh_action_failed(). */
bool mesh_next_action(struct mesh *m, struct mesh_action *out);
void mesh_action_failed(struct mesh *m, const struct mesh_action *a, int err, uint64_t now_ms);

/* When to call mesh_tick() next (UINT64_MAX: no need), and when to read
 * the device next. */
uint64_t mesh_next_wake(const struct mesh *m);
uint64_t mesh_next_read(const struct mesh *m);

/* Leaving: every peer we added, to remove, as actions. */
void mesh_stop(struct mesh *m);

/* Whether key is a peer the mesh put on the device. */
bool mesh_owns(const struct mesh *m, const uint8_t key[WG_KEY_LEN]);

size_t mesh_peer_count(const struct mesh *m);
/* Peer i (0 <= i < count), in directory order. */
void mesh_peer_status(const struct mesh *m, size_t i, struct mesh_peer_status *out);

#endif
