/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_WGCTL_H
#define WGD_WGCTL_H

#include <stddef.h>
#include <stdint.h>

#include "../protocol/ipaddr.h"
#include "key.h"
#include "wgdev.h"

/*
 * WireGuard device control: one API, two backends, chosen per interface as
 * wg(8) chooses. A device with a UAPI socket /var/run/wireguard/IFACE.sock is
 * a userspace implementation (wireguard-go); any other goes to the kernel over
 * generic netlink. Each backend sits behind the table of primitive operations
 * in wgctl-ops.h; what to try and when to fall back is this module's alone.
 *
 * Errors are -errno returns. Getters set *out to NULL on failure; free
 * functions accept NULL.
 */

enum wgctl_backend {
	WGCTL_UAPI,
	WGCTL_GENL,
};

struct wgctl;

/* The UAPI socket directory, /var/run/wireguard unless overridden for tests. */
extern const char *wgctl_uapi_dir;

/*
 * Opens control of ifname. -ENODEV when the interface is neither a UAPI
 * device nor known to kernel WireGuard.
 */
int wgctl_open(struct wgctl **out, const char *ifname);
void wgctl_close(struct wgctl *ctl);
enum wgctl_backend wgctl_backend(const struct wgctl *ctl);
const char *wgctl_backend_name(const struct wgctl *ctl);

/* Reads the whole device: keys, port, peers, endpoints, allowed-IPs. */
int wgctl_get_device(struct wgctl *ctl, struct wgdev **out);
/*
 * The same in two steps, for a caller with something more urgent to do
 * with the device first: the read leaves the handle's view (see below) as
 * it was, and wgctl_view_from() then builds it from that read, made at
 * read_ms (CLOCK_BOOTTIME milliseconds). At a million peers each step
 * takes a second or so.
 */
int wgctl_read_device(struct wgctl *ctl, struct wgdev **out);
void wgctl_view_from(struct wgctl *ctl, const struct wgdev *dev, uint64_t read_ms);
/*
 * How old the view may grow before an update reads the device (10 s by
 * default). A caller that reads the device on its own schedule sets it past
 * that schedule, so that a full read is never made twice.
 */
void wgctl_set_view_max_age(struct wgctl *ctl, uint64_t ms);

struct wgview;
/*
 * The handle's view (wgview.h), the device read again first when the view
 * is older than the age above or invalid: for a caller that checks changes
 * of its own before it makes them. The pointer lasts until the next call
 * on the handle. 0 or -errno.
 */
int wgctl_view(struct wgctl *ctl, const struct wgview **out);

/*
 * Adds and removes allowed-IPs of one existing peer, leaving its other
 * allowed-IPs, its endpoint and every other peer alone. Never creates a
 * peer: -ENOENT when the peer is not on the device. Removing an entry that
 * is absent is not an error. Adding a prefix another peer holds exactly is
 * refused with -EEXIST, as WireGuard would silently move it. -EINVAL for a
 * malformed prefix; host bits past the prefix length are ignored. The
 * lists may be of any length (the client's routes through its hub are
 * dozens): they go to the device as one change, in one request where they
 * fit, and are not cut into struct wgdev_change.
 *
 * The device is not read per update: -ENOENT and -EEXIST are judged by the
 * handle's view (wgview.h), built by the last wgctl_get_device() and kept
 * up by the updates since, and read again when over ten seconds old (see
 * wgctl_set_view_max_age()). So a
 * change another tool made after that read is seen late: a peer removed
 * meanwhile is not re-created (the update is a no-op the device accepts),
 * but an allowed-IP another tool gave a peer meanwhile can be moved.
 */
int wgctl_allowedips_update(struct wgctl *ctl, const uint8_t pubkey[WG_KEY_LEN],
			    const struct wgd_ip *add, size_t n_add,
			    const struct wgd_ip *del, size_t n_del);

/*
 * wgctl_allowedips_update() for n changes at once (wgdev.h), as if made one
 * after another, each with its own outcome in err[i]; -EINVAL for a change
 * of more than WGDEV_CHANGE_MAX entries a side. A userspace daemon takes
 * them in one operation, which costs it far less than one per peer.
 */
void wgctl_allowedips_update_batch(struct wgctl *ctl, const struct wgdev_change *c, size_t n,
				   int *err);

/*
 * The mesh's peer operations (common/mesh.h). wgctl_peer_add() adds a peer
 * afresh: it is removed first when present, then added with this endpoint
 * and persistent keepalive and no allowed-IPs, in one request, so that
 * WireGuard sends a handshake initiation now. wgctl_peer_remove() removes
 * it; one that is absent is not an error. Both keep the view up. An
 * endpoint of family 0 sets none; -EINVAL for one of another family or of
 * port 0.
 */
struct wgd_endpoint;
int wgctl_peer_add(struct wgctl *ctl, const uint8_t pubkey[WG_KEY_LEN],
		   const struct wgd_endpoint *endpoint, uint16_t keepalive_s);
int wgctl_peer_remove(struct wgctl *ctl, const uint8_t pubkey[WG_KEY_LEN]);

#endif
