/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_WGVIEW_H
#define WGD_WGVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../protocol/ipaddr.h"
#include "wgdev.h"

/*
 * What a control handle knows of a device between two full reads: which
 * peers exist, and which peer holds each allowed-IP. A full read costs tens
 * of milliseconds at ten thousand peers, so updates are checked against
 * this view instead, and the view follows the updates made through the
 * handle. It is rebuilt from every full read.
 *
 * Pure bookkeeping, no I/O. Allowed-IPs are compared as exact canonical
 * prefixes, as WireGuard keys its table.
 */
struct wgview;

struct wgview *wgview_new(void);
void wgview_free(struct wgview *v);

/* Replaces the view with dev. 0 or -ENOMEM; on failure the view is empty
 * and wgview_valid() is false. */
int wgview_rebuild(struct wgview *v, const struct wgdev *dev, uint64_t now_ms);
/* Forgets everything: the next update must read the device first. */
void wgview_invalidate(struct wgview *v);
bool wgview_valid(const struct wgview *v);
/* CLOCK_BOOTTIME milliseconds of the read the view was built from. */
uint64_t wgview_age_ms(const struct wgview *v, uint64_t now_ms);

size_t wgview_peer_count(const struct wgview *v);
bool wgview_has_peer(const struct wgview *v, const uint8_t pubkey[WG_KEY_LEN]);

/*
 * The checks an update makes: the peer exists (else -ENOENT), and no
 * addition is held exactly by another peer (else -EEXIST), since WireGuard
 * would move it without a word.
 */
int wgview_check(const struct wgview *v, const uint8_t pubkey[WG_KEY_LEN],
		 const struct wgd_ip *add, size_t n_add);

/* Whether the peer holds exactly the prefix ip (host bits ignored). */
bool wgview_holds(const struct wgview *v, const uint8_t pubkey[WG_KEY_LEN],
		  const struct wgd_ip *ip);
/*
 * Whether a peer other than pubkey holds a prefix of min_cidr bits or more
 * that contains ip (ip itself included). Costs a lookup per prefix length
 * some entry of the family has.
 */
bool wgview_covered(const struct wgview *v, const uint8_t pubkey[WG_KEY_LEN],
		    const struct wgd_ip *ip, unsigned min_cidr);

/*
 * Records an update the device accepted: removals the peer held are
 * forgotten, additions become the peer's. 0 or -ENOMEM, after which the
 * view is invalid.
 */
int wgview_apply(struct wgview *v, const uint8_t pubkey[WG_KEY_LEN],
		 const struct wgd_ip *add, size_t n_add,
		 const struct wgd_ip *del, size_t n_del);

/*
 * Record the mesh's peer operations the device accepted (wgctl.h):
 * wgview_add_peer() leaves the peer on the device with no allowed-IPs,
 * whether it was there before or not; wgview_remove_peer() takes the peer
 * away, and its allowed-IPs with it (an absent peer is no change). Each
 * costs a pass over the allowed-IPs, which the mesh, making a few a
 * second on a client's device of a few hundred entries, can afford. Nothing
 * on an invalid view. 0 or -ENOMEM, after which the view is invalid.
 */
int wgview_add_peer(struct wgview *v, const uint8_t pubkey[WG_KEY_LEN]);
int wgview_remove_peer(struct wgview *v, const uint8_t pubkey[WG_KEY_LEN]);

#endif
