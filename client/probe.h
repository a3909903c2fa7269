/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_PROBE_H
#define WGD_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../protocol/ipaddr.h"

/*
 * Liveness probes of a direct mesh peer: an ICMP echo request to its
 * leased address, through the tunnel, once a second.
 *
 * WireGuard's persistent keepalive cannot tell a live direct path from a
 * dead one on its own: each side's keepalive timer restarts on every packet
 * it sends or receives, so of two idle peers only the one that sends first
 * keeps sending, and the other receives without ever sending. The sender's
 * receive counter then stands still on a path that works. An echo request
 * is answered by the peer's kernel, and the reply comes back direct only
 * while the peer, too, sends to us directly: so our receive counter for the
 * peer moves exactly while the direct path works both ways (common/mesh.c
 * watches it). No daemon needs to run on the peer for it.
 */

#define PROBE_EVERY_MS 1000
#define PROBE_LEN 24 /* the echo request: 8 bytes of header, 16 of payload */

struct prober {
	int fd4, fd6;        /* raw ICMP sockets on the interface; -1 unopened */
	uint16_t ident, seq;
};

/* Writes an echo request (ICMP for AF_INET, ICMPv6 for AF_INET6) into
 * buf[PROBE_LEN]. IPv4's checksum is filled in; the kernel fills ICMPv6's. */
void probe_build(uint8_t buf[PROBE_LEN], uint8_t family, uint16_t ident, uint16_t seq);

void prober_init(struct prober *p);
/* Opens both families' raw sockets on ifname: it takes CAP_NET_RAW, so the
 * client does it before it drops its capabilities. 0 or -errno. */
int prober_open(struct prober *p, const char *ifname);
/* Sends one echo request to dst. 0 or -errno (-EBADF: not open). */
int prober_send(struct prober *p, const struct wgd_ip *dst);
void prober_close(struct prober *p);

#endif
