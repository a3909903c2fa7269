/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_PRIVSEP_H
#define WGD_PRIVSEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "../common/wgctl.h"
#include "../common/wgdev.h"
#include "../common/wgview.h"
#include "../protocol/ipaddr.h"

/*
 * Privilege separation, in the manner of OpenBSD's dhcpleased. The server is
 * two processes joined by a SOCK_SEQPACKET socketpair:
 *
 *  - the parent keeps CAP_NET_ADMIN and performs two narrow operations: read
 *    the device, and add or remove lease allowed-IPs of one peer;
 *  - the engine holds no capabilities, runs as an unprivileged user in a
 *    chroot, accepts connections, parses requests and runs the lease logic.
 *
 * Every message has a fixed layout; the parent checks its exact size, its
 * type, and each address before acting on it.
 */

#define PRIV_BATCH 64           /* changes per PRIV_UPDATES message */
#define PRIV_DEV_BYTES 32768    /* peers' bytes per device-stream message */

enum priv_type {
	PRIV_GET_DEVICE = 1,    /* engine -> parent */
	PRIV_RESULT,            /* parent -> engine, answers PRIV_UPDATES */
	PRIV_DEV_PEERS,         /* parent -> engine, the device stream */
	PRIV_DEV_END,           /* parent -> engine, closes the stream */
	PRIV_UPDATES,           /* engine -> parent */
};

struct priv_get_device {
	uint32_t type;
};

/*
 * Changes travel in batches: one message of n (1 to PRIV_BATCH) changes,
 * made by the parent as one device operation where it can, and one answer
 * with an outcome per change. Sent change by change, the parent would wake
 * for the first and take it alone. Each change is the device API's own
 * struct wgdev_change (wgdev.h), fixed-size and free of pointers: it
 * crosses as it is, its pad and the entries past n_add and n_del zero.
 */
struct priv_updates {
	uint32_t type;
	uint32_t n;
	struct wgdev_change u[PRIV_BATCH];  /* n of them are sent */
};

struct priv_result {
	uint32_t type;
	uint32_t n;
	int32_t err[PRIV_BATCH];            /* 0 or -errno, n of them are sent */
};

/*
 * The device stream: peers packed into messages of up to PRIV_DEV_BYTES,
 * each a struct priv_dev_entry followed by its n_allowedips struct wgd_ip.
 * A peer with more allowed-IPs than fit goes on in the next entry, which
 * has cont set and the same key. A million peers take a few thousand
 * messages rather than a million.
 */
struct priv_dev_peers {
	uint32_t type;
	uint32_t len;           /* bytes of data used */
	uint8_t data[PRIV_DEV_BYTES];
};

struct priv_dev_entry {
	uint8_t pubkey[WG_KEY_LEN];
	struct sockaddr_in6 endpoint; /* or a sockaddr_in; family 0 when none */
	uint8_t cont;           /* 1: continues the previous entry's peer */
	uint8_t pad[3];
	uint32_t n_allowedips;
};

struct priv_dev_end {
	uint32_t type;
	int32_t err;            /* 0, or why the device could not be read */
	uint8_t has_pubkey;
	uint8_t pad[3];
	uint8_t pubkey[WG_KEY_LEN];
	uint32_t n_peers;
};

/* ---- the engine's side ---- */

/* The channel to the parent; set once after the fork. */
void priv_engine_init(int fd);
int priv_get_device(struct wgdev **out);
/*
 * Up to PRIV_BATCH changes in one exchange, each with its outcome in
 * err[i]; a single change is a batch of one. The addresses go in canonical
 * form (wgdev_allowedip_canon()). The return value is 0, or the error that
 * kept the exchange from happening (then every err[i] is that error):
 * -E2BIG for more than PRIV_BATCH changes or more than WGDEV_CHANGE_MAX
 * entries a side.
 */
int priv_update_batch(const struct wgdev_change *c, size_t n, int *err);

/* ---- the parent's side ---- */

/* How the parent is set up: what it learns from the configuration. */
struct priv_policy {
	const struct wgd_ip *cfg_pools;
	size_t n_cfg_pools;
	uint32_t ifindex;       /* whose direct routes are pools too */
	bool auto_ll;
	uint32_t refresh_ms;    /* how often the engine reads the device */
};

/*
 * What the parent checks the engine's changes against, all of it learnt by
 * the parent itself, none of it from the engine, which may be compromised:
 * the pools (the configured ones, then the interface's direct routes, each
 * left out when it overlaps one before it, as the engine's pool set leaves
 * it out), the interface's own addresses, and the device view of the
 * parent's handle (wgview.h).
 */
struct priv_rules {
	const struct wgd_ip *pools;
	size_t n_pools;
	const struct wgd_ip *own;  /* hosts */
	size_t n_own;
	bool auto_ll;
};

/*
 * Checks one change of a PRIV_UPDATES message. The rules, each of which
 * holds whatever the engine sends:
 *
 *  - An address the pools lease is a host (/32 or /128) inside a pool that
 *    the pool leases by the engine's own rule, pool_prefix_leases(): not
 *    the network or broadcast address of an IPv4 pool, not the all-zero
 *    address of an IPv6 one.
 *  - An addition is an address the pools lease that is not one of the
 *    interface's own, or, with --auto-ll, the peer's derived link-local.
 *  - No other peer may hold a prefix containing an addition that is as
 *    long as the addition's pool or longer: that is an address or a subnet
 *    inside the pool which is someone else's (another lease, a static
 *    allowed-IP). A shorter prefix holds the whole pool, as an exit peer's
 *    0.0.0.0/0 or a site's supernet does, and WireGuard's longest-prefix
 *    match carves a lease out of it as it is meant to; it blocks nothing.
 *  - A removal is an address the pools lease. One that the peer does not
 *    hold in the view is dropped from *out: nothing of the peer's would be
 *    taken, and nothing of another peer's may be.
 *  - The peer is on the device.
 *
 * The view is the device as it was before the whole batch: an address
 * another peer holds cannot move within one batch, even when the batch
 * first takes it from that peer. The engine sends such a pair in two.
 *
 * Returns 0 with *out the change to make, -EINVAL for a malformed change
 * (more than WGDEV_CHANGE_MAX entries a side, padding that is not zero, an
 * all-zero key, an address that is not a canonical /32 or /128: the engine
 * is not what was started), -EPERM for an address outside the
 * rules, -EEXIST for an addition another peer holds, -ENOENT for a peer not
 * on the device. Pure, for tests.
 */
int priv_check_update(const struct wgdev_change *c, const struct priv_rules *r,
		      const struct wgview *view, struct wgdev_change *out);

/* Whether a direct route on the interface is a pool: not link-local, not
 * multicast, not a default route. The engine and the parent agree on it. */
bool priv_is_pool_route(const struct wgd_ip *dst);

/*
 * Serves the engine until it closes its end. Returns the reason the loop
 * ended: 0 for a clean close, -errno otherwise. The engine's first device
 * read is answered with first (taken over, and freed; may be NULL) when it
 * was read at most PRIV_FIRST_MAX_MS before read_ms: the read that vetted
 * the configuration also serves the engine's start-up, which at a million
 * peers saves seconds.
 */
#define PRIV_FIRST_MAX_MS 10000
int priv_serve(int fd, struct wgctl *wg, const struct priv_policy *policy,
	       struct wgdev *first, uint64_t read_ms);

#endif
