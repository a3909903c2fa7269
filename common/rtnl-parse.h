/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_RTNL_PARSE_H
#define WGD_RTNL_PARSE_H

#include <linux/netlink.h>
#include <stdbool.h>
#include <stdint.h>

#include "rtnl.h"

/*
 * The attribute parsers behind rtnl.c, kept apart from any socket so that
 * unit tests and fuzzers can feed them bytes.
 *
 * Each reads exactly nlh->nlmsg_len bytes from nlh: the caller bounds that
 * length first, as mnl_nlmsg_ok() does for a received buffer. Every
 * attribute is length-checked before it is read, and an attribute that runs
 * past the end of the message rejects the whole message with -EINVAL, so a
 * truncated message never passes for a complete one. On failure the output
 * is zeroed.
 */

/* A route as rtnetlink describes it, reduced to what the daemons look at. */
struct rtnl_route_info {
	struct wgd_ip dst;       /* destination prefix; /0 for a default route */
	uint32_t oif;            /* RTA_OIF, 0 when absent */
	uint32_t table;          /* RTA_TABLE, else rtm_table */
	uint8_t type;            /* RTN_* */
	uint8_t protocol;        /* RTPROT_* */
	uint8_t scope;           /* RT_SCOPE_* */
	bool has_gateway;        /* through a gateway, a nexthop object or several paths */
};

/* RTM_NEWLINK or RTM_DELLINK: 0 or -EINVAL. */
int rtnl_parse_link(const struct nlmsghdr *nlh, struct rtnl_link *out);

/* RTM_NEWADDR or RTM_DELADDR: 0, -EINVAL, or -EAFNOSUPPORT for a family
 * other than IPv4 and IPv6. */
int rtnl_parse_addr(const struct nlmsghdr *nlh, struct rtnl_addr *out,
		    uint32_t *ifindex);

/* RTM_NEWROUTE or RTM_DELROUTE: 0, -EINVAL, or -EAFNOSUPPORT as above. */
int rtnl_parse_route(const struct nlmsghdr *nlh, struct rtnl_route_info *out);

/*
 * Any notification: 1 when ev describes it, 0 when it is of no kind a
 * monitor reports (another message type, family, or a bridge port
 * notification), -EINVAL when malformed.
 */
int rtnl_parse_event(const struct nlmsghdr *nlh, struct rtnl_event *ev);

#endif
