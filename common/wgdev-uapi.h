/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_WGDEV_UAPI_H
#define WGD_WGDEV_UAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wgdev.h"

/*
 * The cross-platform userspace API (wireguard.com/xplatform): newline
 * separated key=value text over a unix stream socket. Private to common/;
 * the parsers and builders are pure so tests and fuzzers can drive them.
 */

/* Longest set reply accepted from a UAPI daemon, a bound on a local peer's
 * memory. A get reply is parsed as it arrives, through UAPI_STREAM_BUF. */
#define UAPI_REPLY_MAX (64U << 20)
#define UAPI_STREAM_BUF (64U << 10)
/* Longest line; real ones stay under 100 bytes. */
#define UAPI_LINE_MAX 512

/*
 * The offset just past the blank line that ends a reply in buf, or 0 while
 * the reply is incomplete.
 */
size_t uapi_reply_end(const char *buf, size_t len);

/*
 * Parses a whole reply to "get=1": key=value lines, "errno=N", a blank line,
 * and nothing after. The device's public key is derived from private_key,
 * which is not kept. Unknown keys are skipped so newer daemons still parse.
 * Returns 0, the daemon's nonzero errno as -errno, or -EPROTO when
 * malformed; -ENOMEM.
 */
int uapi_parse_get(const char *buf, size_t len, struct wgdev **out);

/*
 * Parses a whole reply to "set=1", which is only "errno=N" and a blank line.
 * Returns 0, the daemon's errno as -errno, or -EPROTO.
 */
int uapi_parse_set(const char *buf, size_t len);

/*
 * Builds the set=1 operation that changes allowed-IPs of one existing peer:
 * public_key, update_only=true so a vanished peer is never re-created, then
 * replace_allowed_ips=true when replace is set, removals as
 * "allowed_ip=-PREFIX" (the syntax of wireguard-go 0.0.20250522 and later),
 * then additions. Removals need !replace. *out is malloc'd, NUL-terminated,
 * and *out_len excludes the NUL. 0, -EINVAL or -ENOMEM.
 */
int uapi_build_set_allowedips(char **out, size_t *out_len,
			      const uint8_t pubkey[WG_KEY_LEN], bool replace,
			      const struct wgd_ip *add, size_t n_add,
			      const struct wgd_ip *del, size_t n_del);
/* The same for several changes in one operation, none replacing. */
int uapi_build_set_batch(char **out, size_t *out_len, const struct wgdev_change *c, size_t n);

/*
 * The mesh's peer operations, each one set=1 operation written into buf.
 * uapi_build_add_peer(): the peer removed and added again (see
 * wgctl-ops.h), with the endpoint unless it is NULL or of family 0, the
 * keepalive, and no allowed-IPs. uapi_build_remove_peer(): the peer
 * removed. wireguard-go takes the removal of an absent peer as a success.
 * The length written, without a NUL; -EINVAL for an endpoint of another
 * family or of port 0, -ENOSPC when buf is short (UAPI_PEER_OP_MAX
 * suffices).
 */
#define UAPI_PEER_OP_MAX 384
struct wgd_endpoint;
ssize_t uapi_build_add_peer(char *buf, size_t len, const uint8_t pubkey[WG_KEY_LEN],
			    const struct wgd_endpoint *endpoint, uint16_t keepalive_s);
ssize_t uapi_build_remove_peer(char *buf, size_t len, const uint8_t pubkey[WG_KEY_LEN]);

/* One persistent connection to a UAPI socket, reconnected when it drops. */
struct uapi_conn;

/* Fills buf with DIR/IFNAME.sock for a valid interface name; -ENAMETOOLONG. */
int uapi_socket_path(char *buf, size_t len, const char *dir, const char *ifname);

/* Connects to path now, so a dead daemon shows at open time. */
int uapi_conn_open(struct uapi_conn **out, const char *path);
void uapi_conn_close(struct uapi_conn *uc);
int uapi_conn_get_device(struct uapi_conn *uc, struct wgdev **out);
/*
 * The primitives of struct wgctl_ops (wgctl-ops.h), over canonical lists,
 * each one set=1 operation. After a failed set the daemon is out of step
 * with the connection, which is dropped and made anew on the next call.
 */
int uapi_conn_change(struct uapi_conn *uc, const uint8_t pubkey[WG_KEY_LEN],
		     const struct wgd_ip *add, size_t n_add,
		     const struct wgd_ip *del, size_t n_del, bool *first_refused);
int uapi_conn_change_batch(struct uapi_conn *uc, const struct wgdev_change *c, size_t n);
int uapi_conn_replace_allowedips(struct uapi_conn *uc, const uint8_t pubkey[WG_KEY_LEN],
				 const struct wgd_ip *ips, size_t n);
int uapi_conn_add_peer(struct uapi_conn *uc, const uint8_t pubkey[WG_KEY_LEN],
		       const struct wgd_endpoint *endpoint, uint16_t keepalive_s);
int uapi_conn_remove_peer(struct uapi_conn *uc, const uint8_t pubkey[WG_KEY_LEN]);

/* This backend for wgctl.c. */
struct wgctl_ops;
extern const struct wgctl_ops uapi_ops;

#endif
