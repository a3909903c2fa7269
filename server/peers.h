/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_PEERS_H
#define WGD_PEERS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/wgdev.h"

/*
 * Which peer may speak from which link-local address: every link-local /128
 * allowed-IP of the device, mapped to its peer's public key. WireGuard's
 * cryptokey routing guarantees that packets from such an address came from
 * that peer. Built from a device dump; looked up per connection.
 */
struct peer_index;

/* Builds the index from dev; NULL on allocation failure. */
struct peer_index *peer_index_build(const struct wgdev *dev);
void peer_index_free(struct peer_index *pi);

/* The public key behind lladdr, or NULL. */
const uint8_t *peer_index_lookup(const struct peer_index *pi, const struct in6_addr *lladdr);
/* Whether a peer with this key was on the device. */
bool peer_index_has_key(const struct peer_index *pi, const uint8_t pubkey[WG_KEY_LEN]);
/* The position in the device it was built from of the peer with this key,
 * or SIZE_MAX. */
size_t peer_index_find_key(const struct peer_index *pi, const uint8_t pubkey[WG_KEY_LEN]);
size_t peer_index_count(const struct peer_index *pi);

#endif
