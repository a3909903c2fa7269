// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * The rtnetlink message parsers of rtnl-parse.h: links, addresses, routes
 * and the notifications built from them.
 *
 * Byte 0 chooses how the rest is read:
 *
 *   even  raw: the rest is a received buffer, walked as mnl_nlmsg_ok()
 *         would walk it;
 *   odd   framed: a list of records, each made into one message with a
 *         sound netlink header. A record is
 *           type (1 byte), len (2 bytes, little-endian), len payload bytes
 *         where type picks RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR,
 *         RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE or, for the rest, a type
 *         no parser takes. The payload is the family header and the
 *         attributes.
 *
 * Each message goes to every parser in an allocation of exactly its
 * length. The parsers promise to read nothing past nlmsg_len and to zero
 * their output on failure; both are checked.
 */

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "../../common/rtnl-parse.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; ++i) {
		if (b[i])
			return false;
	}
	return true;
}

static void check_ip(const struct wgd_ip *ip)
{
	FUZZ_CHECK(ip->family == AF_INET || ip->family == AF_INET6);
	FUZZ_CHECK(ip->cidr <= wgd_ip_bits(ip->family));
	FUZZ_CHECK(all_zero(ip->bytes + wgd_ip_len(ip->family),
			    sizeof(ip->bytes) - wgd_ip_len(ip->family)));
}

static void parse_all(const struct nlmsghdr *nlh)
{
	struct rtnl_route_info route;
	struct rtnl_event ev;
	struct rtnl_link link;
	struct rtnl_addr addr;
	uint32_t ifindex;
	int ret;

	ret = rtnl_parse_link(nlh, &link);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL);
	if (ret) {
		FUZZ_CHECK(all_zero(&link, sizeof(link)));
	} else {
		FUZZ_CHECK(link.ifindex > 0);
		FUZZ_CHECK(memchr(link.name, '\0', sizeof(link.name)));
		FUZZ_CHECK(memchr(link.kind, '\0', sizeof(link.kind)));
	}

	ret = rtnl_parse_addr(nlh, &addr, &ifindex);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -EAFNOSUPPORT);
	if (ret) {
		FUZZ_CHECK(all_zero(&addr, sizeof(addr)) && ifindex == 0);
	} else {
		check_ip(&addr.ip);
	}

	ret = rtnl_parse_route(nlh, &route);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -EAFNOSUPPORT);
	if (ret)
		FUZZ_CHECK(all_zero(&route, sizeof(route)));
	else
		check_ip(&route.dst);

	ret = rtnl_parse_event(nlh, &ev);
	FUZZ_CHECK(ret == 0 || ret == 1 || ret == -EINVAL);
	if (ret == 1) {
		switch (ev.type) {
		case RTNL_EV_LINK:
		case RTNL_EV_LINK_DEL:
			FUZZ_CHECK(ev.ifindex > 0);
			break;
		case RTNL_EV_ADDR_NEW:
		case RTNL_EV_ADDR_DEL:
		case RTNL_EV_ROUTE_NEW:
		case RTNL_EV_ROUTE_DEL:
			check_ip(&ev.ip);
			break;
		default:
			fprintf(stderr, "event of unexpected type %d\n", (int)ev.type);
			abort();
		}
	}
}

static void parse_copy(const uint8_t *msg, size_t len)
{
	void *copy = fuzz_dup(msg, len);

	parse_all(copy);
	free(copy);
}

static void run_raw(const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (len - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;

		memcpy(&h, buf + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off)
			break;
		parse_copy(buf + off, h.nlmsg_len);
		off += NLMSG_ALIGN(h.nlmsg_len);
		if (off > len)
			break;
	}
}

static void run_framed(struct fuzz_in *in)
{
	static const uint16_t types[] = {
		RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR,
		RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE, NLMSG_ERROR,
	};
	static uint8_t buf[sizeof(struct nlmsghdr) + UINT16_MAX];

	while (in->left) {
		uint8_t sel = fuzz_u8(in);
		size_t want = fuzz_u16(in), plen;
		const uint8_t *payload = fuzz_take(in, want, &plen);
		struct nlmsghdr h = {
			.nlmsg_len = (uint32_t)(sizeof(h) + plen),
			.nlmsg_type = types[sel % (sizeof(types) / sizeof(types[0]))],
		};

		memcpy(buf, &h, sizeof(h));
		if (plen)
			memcpy(buf + sizeof(h), payload, plen);
		parse_copy(buf, sizeof(h) + plen);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		fuzz_in_init(&in, data + 1, size - 1);
		run_framed(&in);
	} else {
		run_raw(data + 1, size - 1);
	}
	return 0;
}
