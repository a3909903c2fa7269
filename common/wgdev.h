/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_WGDEV_H
#define WGD_WGDEV_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../protocol/ipaddr.h"
#include "../protocol/proto.h"
#include "key.h"

/*
 * The WireGuard device model: a device, its peers and their allowed-IPs, as
 * both backends read them (wgctl.h is the API that reads and changes a
 * device), and the list arithmetic of read-modify-write. Pure data, no I/O.
 *
 * Errors are -errno returns; free functions accept NULL.
 */

struct wgdev_peer {
	uint8_t pubkey[WG_KEY_LEN];
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} endpoint;                        /* sa_family 0 when none */
	int64_t last_handshake_sec;        /* CLOCK_REALTIME seconds, 0 never */
	uint32_t last_handshake_nsec;      /* and nanoseconds */
	uint16_t keepalive_s;              /* persistent keepalive, 0 off */
	uint64_t rx_bytes, tx_bytes;
	size_t n_allowedips;
	struct wgd_ip *allowedips;         /* owned by the peer */
};

struct wgdev {
	char name[IF_NAMESIZE];
	uint32_t ifindex;                  /* 0 when the backend does not say */
	bool has_pubkey;
	uint8_t pubkey[WG_KEY_LEN];
	uint16_t listen_port;
	size_t n_peers;
	struct wgdev_peer *peers;          /* owned by the device */
};

void wgdev_free(struct wgdev *dev);

/* The peer's endpoint as the protocol writes it: an IPv4-mapped IPv6
 * address as IPv4; family 0 when it has none. */
void wgdev_peer_endpoint(const struct wgdev_peer *p, struct wgd_endpoint *ep);

/* The peer with this public key, or NULL. Linear: callers index it. */
struct wgdev_peer *wgdev_find_peer(const struct wgdev *dev, const uint8_t pubkey[WG_KEY_LEN]);

/*
 * One peer's allowed-IP change, as it travels from the server's engine to
 * the device: removals, then additions. A lease is one address per family,
 * and a mesh moves a peer's /32 and /128, so two of each suffice. Fixed
 * size and free of pointers, so that it can cross a process boundary as it
 * is; a longer list goes as several changes of the same peer.
 */
#define WGDEV_CHANGE_MAX 2

struct wgdev_change {
	uint8_t pubkey[WG_KEY_LEN];
	uint8_t n_add, n_del;
	uint8_t pad[2];
	struct wgd_ip add[WGDEV_CHANGE_MAX];
	struct wgd_ip del[WGDEV_CHANGE_MAX];
};

/*
 * Keeps *dev, a device read earlier (or NULL), up with a change made since:
 * the peer's list becomes cur - del + add. On want of memory *dev is freed
 * and NULL, to be read again.
 */
void wgdev_follow(struct wgdev **dev, const uint8_t pubkey[WG_KEY_LEN],
		  const struct wgd_ip *add, size_t n_add,
		  const struct wgd_ip *del, size_t n_del);

/*
 * Building blocks for the backends' parsers, also used by tests.
 *
 * The peer and allowed-IP arrays grow geometrically with the capacity
 * implied by the count (the next power of two, at least 4), so only grow
 * arrays these functions built: a device a backend read, or one
 * started empty. A peer pointer stays valid until the next peer is added.
 * Each returns 0 or -ENOMEM.
 */
int wgdev_add_peer(struct wgdev *dev, const uint8_t pubkey[WG_KEY_LEN],
		   struct wgdev_peer **out);
int wgdev_peer_add_allowedip(struct wgdev_peer *peer, const struct wgd_ip *ip);

/*
 * Copies an allowed-IP a caller asked for into its canonical form: the
 * family checked, the prefix length in range, the bits past it cleared and
 * the unused tail zeroed. 0 or -EINVAL.
 */
int wgdev_allowedip_canon(struct wgd_ip *out, const struct wgd_ip *in);

/*
 * The list cur - del + add, for backends that can only replace a peer's
 * whole list. Entries compare as exact prefixes (canonical input expected);
 * an addition already present is not repeated. *out is NULL when the result
 * is empty. 0 or -ENOMEM, with *out NULL and *n_out 0 on failure.
 */
int wgdev_allowedips_apply(const struct wgd_ip *cur, size_t n_cur,
			   const struct wgd_ip *add, size_t n_add,
			   const struct wgd_ip *del, size_t n_del,
			   struct wgd_ip **out, size_t *n_out);

/*
 * The same on a peer of a device read earlier: the peer's list becomes
 * cur - del + add, so that a device read once can serve a series of
 * read-modify-write changes. *peer is the peer. -ENOENT when it is not on
 * dev, -ENOMEM (the list is then as it was).
 */
int wgdev_peer_apply(struct wgdev *dev, const uint8_t pubkey[WG_KEY_LEN],
		     const struct wgd_ip *add, size_t n_add,
		     const struct wgd_ip *del, size_t n_del, struct wgdev_peer **peer);

#endif
