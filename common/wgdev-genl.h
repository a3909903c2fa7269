/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_WGDEV_GENL_H
#define WGD_WGDEV_GENL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>

#include "wgdev.h"

/*
 * Kernel WireGuard over generic netlink. Private to common/. Messages are
 * built and parsed by pure functions over buffers, apart from the socket
 * I/O, so tests can compare bytes.
 */

/*
 * Per-allowed-IP flags, Linux 6.16 and later. Older kernels parse the nested
 * allowed-IP strictly and fail the whole request with -EINVAL when they meet
 * the attribute. Newer headers declare these as enum constants, which the
 * macros then shadow with the same values.
 */
#ifndef WGALLOWEDIP_A_FLAGS
#define WGALLOWEDIP_A_FLAGS 4
#endif
#ifndef WGALLOWEDIP_F_REMOVE_ME
#define WGALLOWEDIP_F_REMOVE_ME (1U << 0)
#endif

/*
 * Largest request we build. The kernel would take more, but wg(8) keeps to a
 * page too, and a long list simply goes out in several messages.
 */
#define GENL_SET_MSG_MAX 4096
/* Receive buffer for dumps; the kernel sizes dump messages to fit it. */
#define GENL_RECV_SIZE 32768

/*
 * CTRL_CMD_GETFAMILY for name, with NLM_F_REQUEST | NLM_F_ACK. Returns the
 * message length, or 0 when it does not fit in len.
 */
size_t genl_build_get_family(void *buf, size_t len, uint32_t seq, const char *name);

/*
 * Walks one received buffer of the reply to genl_build_get_family(). Sets
 * *family_id from CTRL_ATTR_FAMILY_ID. Returns 0 once the ACK arrives after
 * the id, 1 when more is to come, the kernel's -errno (-ENOENT for an
 * unknown family), or -EPROTO.
 */
int genl_parse_family_reply(const void *buf, size_t len, uint32_t seq,
			    uint32_t portid, uint16_t *family_id);

/*
 * WG_CMD_GET_DEVICE for ifname as a dump: NLM_F_REQUEST | NLM_F_ACK |
 * NLM_F_DUMP. Returns the length, or 0 when it does not fit or the name is
 * not a valid interface name.
 */
size_t genl_build_get_device(void *buf, size_t len, uint16_t family_id,
			     uint32_t seq, const char *ifname);

/*
 * Accumulates one WG_CMD_GET_DEVICE message into dev. The kernel splits a
 * device over several messages: device attributes come in the first only,
 * and a peer whose allowed-IPs did not fit continues, with its public key
 * and the remaining allowed-IPs, at the start of the next message. Such a
 * continuation merges into dev's last peer. Every attribute is checked for
 * its exact size before use; unknown ones are skipped. 0, -EPROTO or
 * -ENOMEM. dev may be partly filled on failure.
 */
int genl_parse_device_msg(const struct nlmsghdr *nlh, struct wgdev *dev);

/*
 * Walks one received buffer of a WG_CMD_GET_DEVICE dump. Returns 1 when
 * more messages are to come, 0 at NLMSG_DONE, -EINTR when the kernel flagged
 * the dump NLM_F_DUMP_INTR (the device changed under it: the caller starts
 * over), the kernel's -errno from NLMSG_ERROR, -EPROTO or -ENOMEM.
 */
int genl_parse_dump(const void *buf, size_t len, uint16_t family_id,
		    uint32_t seq, uint32_t portid, struct wgdev *dev);

struct genl_allowedip {
	struct wgd_ip ip;   /* canonical */
	uint32_t flags;     /* WGALLOWEDIP_F_*; 0 leaves the attribute out */
};

/*
 * Builds one WG_CMD_SET_DEVICE request (NLM_F_REQUEST | NLM_F_ACK) for one
 * peer, with as many of ips[*pos..n) as fit in len, and advances *pos. Call
 * again while *pos < n. WGPEER_F_REPLACE_ALLOWEDIPS is dropped from
 * peer_flags when *pos > 0: a later message must add to what the first one
 * installed, not replace it. With n == 0 one message carries only the peer
 * flags. Returns the length, or -EMSGSIZE when not even one entry fits,
 * -EINVAL for a bad name or entry.
 */
int genl_build_set_allowedips(void *buf, size_t len, uint16_t family_id,
			      uint32_t seq, const char *ifname,
			      const uint8_t pubkey[WG_KEY_LEN], uint32_t peer_flags,
			      const struct genl_allowedip *ips, size_t n, size_t *pos);

/*
 * The mesh's peer operations, each one WG_CMD_SET_DEVICE request
 * (NLM_F_REQUEST | NLM_F_ACK). genl_build_add_peer(): two nested peers,
 * which the kernel takes in order: the key with WGPEER_F_REMOVE_ME (the
 * kernel skips the removal of an absent peer), then the key again, a new
 * peer, with WGPEER_F_REPLACE_ALLOWEDIPS and no allowed-IPs, the endpoint
 * unless it is NULL or of family 0, and the keepalive, which the kernel
 * follows with a keepalive, and so a handshake initiation, at once.
 * genl_build_remove_peer(): the first peer alone. The length, or -EINVAL
 * for a bad name or an endpoint of another family or port 0, -EMSGSIZE
 * when len is short (GENL_SET_MSG_MAX suffices).
 */
struct wgd_endpoint;
int genl_build_add_peer(void *buf, size_t len, uint16_t family_id, uint32_t seq,
			const char *ifname, const uint8_t pubkey[WG_KEY_LEN],
			const struct wgd_endpoint *endpoint, uint16_t keepalive_s);
int genl_build_remove_peer(void *buf, size_t len, uint16_t family_id, uint32_t seq,
			   const char *ifname, const uint8_t pubkey[WG_KEY_LEN]);

/*
 * Walks one received buffer for the ACK of request seq. Returns 0 for a
 * positive ACK, the kernel's -errno, 1 when the ACK has not come yet, or
 * -EPROTO.
 */
int genl_parse_ack(const void *buf, size_t len, uint32_t seq, uint32_t portid);

/* A generic netlink socket bound to the "wireguard" family. */
struct genl_conn;

/*
 * Resolves the family and reads ifname once. -ENODEV when the family is
 * missing (no WireGuard in this kernel) or ifname is not a WireGuard device.
 */
int genl_conn_open(struct genl_conn **out, const char *ifname);
void genl_conn_close(struct genl_conn *gc);

/*
 * Stands in for the netlink socket so tests can put a fake kernel behind a
 * genl_conn. send takes one request; recv returns what one recvmsg() would,
 * its length or -errno; reset drops replies still queued, as closing the
 * socket would.
 */
struct genl_io {
	int (*send)(void *ctx, const void *buf, size_t len);
	long (*recv)(void *ctx, void *buf, size_t len);
	void (*reset)(void *ctx);
};

/* genl_conn_open() over io instead of a socket; the port id is 0. */
int genl_conn_open_io(struct genl_conn **out, const char *ifname,
		      const struct genl_io *io, void *io_ctx);
int genl_conn_get_device(struct genl_conn *gc, struct wgdev **out);
/*
 * The primitives of struct wgctl_ops (wgctl-ops.h), over canonical lists.
 * A change is one message, or several for a long list, each acknowledged
 * before the next; *first_refused tells whether the first was the one
 * refused, when nothing had been applied yet.
 */
int genl_conn_change(struct genl_conn *gc, const uint8_t pubkey[WG_KEY_LEN],
		     const struct wgd_ip *add, size_t n_add,
		     const struct wgd_ip *del, size_t n_del, bool *first_refused);
int genl_conn_replace_allowedips(struct genl_conn *gc, const uint8_t pubkey[WG_KEY_LEN],
				 const struct wgd_ip *ips, size_t n);
int genl_conn_add_peer(struct genl_conn *gc, const uint8_t pubkey[WG_KEY_LEN],
		       const struct wgd_endpoint *endpoint, uint16_t keepalive_s);
int genl_conn_remove_peer(struct genl_conn *gc, const uint8_t pubkey[WG_KEY_LEN]);

/* This backend for wgctl.c. */
struct wgctl_ops;
extern const struct wgctl_ops genl_ops;

#endif
