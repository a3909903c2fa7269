/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_WGCTL_OPS_H
#define WGD_WGCTL_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../protocol/ipaddr.h"
#include "../protocol/proto.h"
#include "key.h"
#include "wgdev.h"

/*
 * What a backend gives wgctl.c: the primitive operations on one device,
 * each a request or a few to the kernel or to the daemon, with no policy of
 * its own. Which operation to try, when to fall back to read-modify-write
 * and what the view says are wgctl.c's. Private to common/ and its tests.
 *
 * conn is the backend's connection (struct genl_conn, struct uapi_conn).
 * Every change leaves a peer that is not on the device absent: the device
 * then reports success. Lists are canonical (wgdev_allowedip_canon()).
 * Each returns 0 or -errno.
 */
struct wgctl_ops {
	const char *name;       /* "kernel" or "userspace", for logs */
	void (*close)(void *conn);
	/* Reads the whole device; *out NULL on failure. */
	int (*get_device)(void *conn, struct wgdev **out);
	/*
	 * Removes del, then adds add, entry by entry, leaving the peer's
	 * other allowed-IPs alone. *first_refused is set when the device
	 * refused the first request of the change, before it made any of it:
	 * a device without removal by entry refuses there, with -EINVAL, as
	 * the removals go first.
	 */
	int (*change)(void *conn, const uint8_t pubkey[WG_KEY_LEN],
		      const struct wgd_ip *add, size_t n_add,
		      const struct wgd_ip *del, size_t n_del, bool *first_refused);
	/*
	 * Several changes, in order, in one request: NULL where the backend
	 * has nothing cheaper than one change after another. A failure may
	 * leave the changes before the failing one made.
	 */
	int (*change_batch)(void *conn, const struct wgdev_change *c, size_t n);
	/* Replaces the peer's whole list with ips[0..n). */
	int (*replace_allowedips)(void *conn, const uint8_t pubkey[WG_KEY_LEN],
				  const struct wgd_ip *ips, size_t n);
	/* The mesh: the peer removed if present and added again, with the
	 * endpoint, the keepalive and no allowed-IPs, in one request. */
	int (*add_peer)(void *conn, const uint8_t pubkey[WG_KEY_LEN],
			const struct wgd_endpoint *endpoint, uint16_t keepalive_s);
	int (*remove_peer)(void *conn, const uint8_t pubkey[WG_KEY_LEN]);
};

struct wgctl;

/*
 * A control handle over a connection a backend opened already, taken over
 * (closed through ops on failure too): for tests that put a fake device
 * behind a backend. wgctl_open() picks the backend itself.
 */
int wgctl_open_backend(struct wgctl **out, const struct wgctl_ops *ops, void *conn);

#endif
