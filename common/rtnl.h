/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_RTNL_H
#define WGD_RTNL_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../protocol/ipaddr.h"

/*
 * rtnetlink through libmnl: addresses, routes and link state of one host.
 * Errors are -errno returns.
 */

struct rtnl;

int rtnl_open(struct rtnl **out);
void rtnl_close(struct rtnl *rt);

struct rtnl_link {
	uint32_t ifindex;
	char name[IF_NAMESIZE];
	unsigned flags;          /* IFF_* */
	uint32_t mtu;
	uint32_t max_mtu;        /* IFLA_MAX_MTU; 0 when the kernel does not say */
	char kind[16];           /* IFLA_INFO_KIND: "wireguard", "tun", ... or "" */
};

/* -ENODEV when there is no such interface. */
int rtnl_link_get(struct rtnl *rt, const char *name, struct rtnl_link *out);
int rtnl_link_set_mtu(struct rtnl *rt, uint32_t ifindex, uint32_t mtu);

/* Lifetimes in seconds; UINT32_MAX is forever. Replaces an existing one,
 * so calling again refreshes the lifetimes. */
int rtnl_addr_add(struct rtnl *rt, uint32_t ifindex, const struct wgd_ip *ip,
		  uint32_t valid_lft, uint32_t preferred_lft);
/* Deleting an absent address is not an error. */
int rtnl_addr_del(struct rtnl *rt, uint32_t ifindex, const struct wgd_ip *ip);

struct rtnl_addr {
	struct wgd_ip ip;        /* address with its prefix length */
	uint8_t scope;           /* RT_SCOPE_* */
	uint32_t flags;          /* IFA_F_* */
	uint32_t valid_lft;      /* seconds left; UINT32_MAX is forever */
	uint32_t preferred_lft;
};

/* Addresses on ifindex of family (AF_INET, AF_INET6 or AF_UNSPEC). */
int rtnl_addr_list(struct rtnl *rt, uint32_t ifindex, int family,
		   struct rtnl_addr **out, size_t *n);

/*
 * Direct routes (no gateway) in the main table, marked with the rtnetlink
 * protocol number of whoever installs them (RTPROT_*, or a daemon's own).
 * Adding is exclusive: -EEXIST when the table has a route to dst already,
 * which is then someone else's to keep. Deleting matches dst, the device
 * and, unless it is RTPROT_UNSPEC, the protocol, so that a daemon removes
 * only its own; an absent route is not an error.
 */
int rtnl_route_add(struct rtnl *rt, uint32_t ifindex, const struct wgd_ip *dst,
		   uint8_t protocol);
int rtnl_route_del(struct rtnl *rt, uint32_t ifindex, const struct wgd_ip *dst,
		   uint8_t protocol);

/* Main-table routes through ifindex without a gateway: any, or those of
 * one protocol. */
int rtnl_route_list(struct rtnl *rt, uint32_t ifindex, int family,
		    struct wgd_ip **out, size_t *n);
int rtnl_route_list_proto(struct rtnl *rt, uint32_t ifindex, int family, uint8_t protocol,
			  struct wgd_ip **out, size_t *n);

/*
 * Change notifications. A monitor is a separate non-blocking socket joined
 * to the groups asked for (RTMGRP_LINK, RTMGRP_IPV4_ROUTE, ...); poll its fd
 * and call rtnl_monitor_read() when readable.
 */
enum rtnl_event_type {
	RTNL_EV_LINK,            /* link created or changed */
	RTNL_EV_LINK_DEL,
	RTNL_EV_ROUTE_NEW,
	RTNL_EV_ROUTE_DEL,
	RTNL_EV_ADDR_NEW,
	RTNL_EV_ADDR_DEL,
	RTNL_EV_OVERRUN,         /* events were lost: re-read what you follow */
};

struct rtnl_event {
	enum rtnl_event_type type;
	uint32_t ifindex;
	unsigned flags;          /* link flags, for link events */
	struct wgd_ip ip;        /* route destination or address */
	bool has_gateway;        /* routes */
	uint32_t table;          /* routes */
};

struct rtnl_monitor;

int rtnl_monitor_open(struct rtnl_monitor **out, unsigned groups);
void rtnl_monitor_close(struct rtnl_monitor *m);
int rtnl_monitor_fd(const struct rtnl_monitor *m);
/* Reads what is queued, calling cb per event; returns 0 or -errno. */
int rtnl_monitor_read(struct rtnl_monitor *m,
		      void (*cb)(const struct rtnl_event *ev, void *ctx), void *ctx);

#endif
