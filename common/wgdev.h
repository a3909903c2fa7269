/* SPDX-License-Identifier: MIT */
#ifndef WGD_WGDEV_H
#define WGD_WGDEV_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../protocol/ipaddr.h"
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

/* The peer with this public key, or NULL. Linear: callers index it. */
struct wgdev_peer *wgdev_find_peer(const struct wgdev *dev, const uint8_t pubkey[WG_KEY_LEN]);

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
 * malformed prefix; host bits past the prefix length are ignored.
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
