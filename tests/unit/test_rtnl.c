// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "../../common/rtnl.h"
#include "../../common/rtnl-parse.h"

/*
 * The kernel tests run inside a network namespace of their own, made by
 * main() before the suite forks its tests, so they touch nothing of the
 * host. Without root they are left out.
 */
static bool have_netns;
static const char *test_link_kind;

#define TEST_IF "wgdt0"
#define TEST_IF_EXTRA "wgdt9"
/* A protocol number of our own, as the client marks its routes. */
#define TEST_PROTO 87

static struct wgd_ip test_ip(const char *text)
{
	struct wgd_ip ip = { 0 };
	char buf[64];
	char *slash;

	ck_assert_uint_lt(strlen(text), sizeof(buf));
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, ip.bytes) == 1)
		ip.family = AF_INET;
	else if (inet_pton(AF_INET6, buf, ip.bytes) == 1)
		ip.family = AF_INET6;
	else
		ck_abort_msg("bad address %s", text);
	ip.cidr = slash ? (uint8_t)atoi(slash + 1) : (uint8_t)wgd_ip_bits(ip.family);
	return ip;
}

static bool ip_same(const struct wgd_ip *a, const struct wgd_ip *b)
{
	return a->family == b->family && a->cidr == b->cidr &&
	       !memcmp(a->bytes, b->bytes, wgd_ip_len(a->family));
}

/*
 * Link set-up with bare libmnl, so that the tests lean neither on the code
 * under test nor on ip(8).
 */

static int raw_request(struct nlmsghdr *nlh)
{
	char buf[8192];
	struct mnl_socket *nl;
	uint32_t portid;
	int ret;

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		ssize_t len = mnl_socket_recvfrom(nl, buf, sizeof(buf));

		if (len < 0) {
			ret = -errno;
			goto out;
		}
		ret = mnl_cb_run(buf, (size_t)len, 1, portid, NULL, NULL);
		if (ret <= MNL_CB_STOP)
			break;
	}
	ret = ret < 0 ? -errno : 0;
out:
	mnl_socket_close(nl);
	return ret;
}

static int raw_link_add(const char *name, const char *kind)
{
	char buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	struct nlattr *linkinfo, *data, *peer;
	char peer_name[IF_NAMESIZE];

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
	if (!strcmp(kind, "veth")) {
		snprintf(peer_name, sizeof(peer_name), "%sp", name);
		data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
		peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
		ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
		ifi->ifi_family = AF_UNSPEC;
		mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name);
		mnl_attr_nest_end(nlh, peer);
		mnl_attr_nest_end(nlh, data);
	}
	mnl_attr_nest_end(nlh, linkinfo);
	return raw_request(nlh);
}

static int raw_link_up(const char *name)
{
	char buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_NEWLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return raw_request(nlh);
}

static int raw_link_del(const char *name)
{
	char buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_DELLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return raw_request(nlh);
}

/*
 * A link that carries packets on its own: dummy when the kernel has it,
 * else a veth pair with both ends up, so that the link has carrier.
 */
static int test_link_create(const char *name)
{
	char peer_name[IF_NAMESIZE];
	int ret;

	ret = raw_link_add(name, "dummy");
	if (!ret) {
		test_link_kind = "dummy";
		return raw_link_up(name);
	}
	ret = raw_link_add(name, "veth");
	if (ret)
		return ret;
	test_link_kind = "veth";
	snprintf(peer_name, sizeof(peer_name), "%sp", name);
	ret = raw_link_up(peer_name);
	if (!ret)
		ret = raw_link_up(name);
	return ret;
}

static uint32_t test_ifindex(struct rtnl *rt, const char *name)
{
	struct rtnl_link link;

	ck_assert_int_eq(rtnl_link_get(rt, name, &link), 0);
	return link.ifindex;
}

/*
 * Monitor helpers
 */

struct event_log {
	struct rtnl_event ev[512];
	size_t n;
	bool overrun;
};

static void event_log_cb(const struct rtnl_event *ev, void *ctx)
{
	struct event_log *log = ctx;

	if (ev->type == RTNL_EV_OVERRUN)
		log->overrun = true;
	if (log->n < sizeof(log->ev) / sizeof(log->ev[0]))
		log->ev[log->n++] = *ev;
}

static bool event_matches(const struct rtnl_event *ev, enum rtnl_event_type type,
			  uint32_t ifindex, const struct wgd_ip *ip)
{
	if (ev->type != type || ev->ifindex != ifindex)
		return false;
	return !ip || ip_same(&ev->ip, ip);
}

/* Reads events for up to two seconds, until one matches. */
static bool wait_for_event(struct rtnl_monitor *m, enum rtnl_event_type type,
			   uint32_t ifindex, const struct wgd_ip *ip,
			   struct rtnl_event *found)
{
	struct pollfd pfd = { .fd = rtnl_monitor_fd(m), .events = POLLIN };
	struct event_log *log = calloc(1, sizeof(*log));
	bool ok = false;
	int i;

	ck_assert_ptr_nonnull(log);
	for (i = 0; i < 20 && !ok; i++) {
		size_t j;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		log->n = 0;
		ck_assert_int_eq(rtnl_monitor_read(m, event_log_cb, log), 0);
		for (j = 0; j < log->n && !ok; j++) {
			if (event_matches(&log->ev[j], type, ifindex, ip)) {
				if (found)
					*found = log->ev[j];
				ok = true;
			}
		}
	}
	free(log);
	return ok;
}

/*
 * Kernel tests
 */

START_TEST(test_link_get)
{
	struct rtnl *rt;
	struct rtnl_link link;

	ck_assert_int_eq(rtnl_open(&rt), 0);
	ck_assert_int_eq(rtnl_link_get(rt, TEST_IF, &link), 0);
	ck_assert_uint_gt(link.ifindex, 0);
	ck_assert_str_eq(link.name, TEST_IF);
	ck_assert_str_eq(link.kind, test_link_kind);
	ck_assert(link.flags & IFF_UP);
	ck_assert_uint_eq(link.mtu, 1500);

	ck_assert_int_eq(rtnl_link_set_mtu(rt, link.ifindex, 1420), 0);
	ck_assert_int_eq(rtnl_link_get(rt, TEST_IF, &link), 0);
	ck_assert_uint_eq(link.mtu, 1420);
	ck_assert_int_eq(rtnl_link_set_mtu(rt, link.ifindex, 1500), 0);

	ck_assert_int_eq(rtnl_link_get(rt, "lo", &link), 0);
	ck_assert_uint_eq(link.ifindex, 1);
	ck_assert_str_eq(link.kind, "");

	ck_assert_int_eq(rtnl_link_get(rt, "wgdnothere", &link), -ENODEV);
	ck_assert_uint_eq(link.ifindex, 0);
	ck_assert_str_eq(link.name, "");
	ck_assert_int_eq(rtnl_link_get(rt, "a-name-far-too-long", &link), -EINVAL);
	ck_assert_int_eq(rtnl_link_get(rt, "", &link), -EINVAL);
	ck_assert_int_eq(rtnl_link_set_mtu(rt, 99999, 1400), -ENODEV);
	rtnl_close(rt);
	rtnl_close(NULL);
}
END_TEST

static const struct rtnl_addr *find_addr(const struct rtnl_addr *list, size_t n,
					 const struct wgd_ip *ip)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (ip_same(&list[i].ip, ip))
			return &list[i];
	}
	return NULL;
}

START_TEST(test_addr)
{
	struct wgd_ip v4 = test_ip("10.1.2.3/24"), v4host = test_ip("10.9.9.9/32");
	struct wgd_ip v6 = test_ip("fd00::5/128"), absent = test_ip("10.7.7.7/32");
	const struct rtnl_addr *a;
	struct rtnl_addr *list;
	struct rtnl *rt;
	uint32_t ifindex;
	size_t n, i;

	ck_assert_int_eq(rtnl_open(&rt), 0);
	ifindex = test_ifindex(rt, TEST_IF);

	ck_assert_int_eq(rtnl_addr_add(rt, ifindex, &v4, 300, 200), 0);
	ck_assert_int_eq(rtnl_addr_add(rt, ifindex, &v4host, UINT32_MAX, UINT32_MAX), 0);
	ck_assert_int_eq(rtnl_addr_add(rt, ifindex, &v6, UINT32_MAX, UINT32_MAX), 0);

	ck_assert_int_eq(rtnl_addr_list(rt, ifindex, AF_INET, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(list[i].ip.family, AF_INET);
	a = find_addr(list, n, &v4);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_le(a->valid_lft, 300);
	ck_assert_uint_ge(a->valid_lft, 290);
	ck_assert_uint_le(a->preferred_lft, 200);
	ck_assert_uint_ge(a->preferred_lft, 190);
	ck_assert_uint_eq(a->scope, RT_SCOPE_UNIVERSE);
	ck_assert(!(a->flags & IFA_F_PERMANENT));
	a = find_addr(list, n, &v4host);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->valid_lft, UINT32_MAX);
	ck_assert(a->flags & IFA_F_PERMANENT);
	free(list);

	/* Adding again refreshes the lifetimes instead of failing. */
	ck_assert_int_eq(rtnl_addr_add(rt, ifindex, &v4, 600, 600), 0);
	ck_assert_int_eq(rtnl_addr_list(rt, ifindex, AF_INET, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	a = find_addr(list, n, &v4);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_ge(a->valid_lft, 590);
	ck_assert_uint_ge(a->preferred_lft, 590);
	free(list);

	/* The kernel's refusal comes back as its errno. */
	ck_assert_int_eq(rtnl_addr_add(rt, ifindex, &v4, 100, 200), -EINVAL);
	ck_assert_int_eq(rtnl_addr_add(rt, 99999, &absent, 100, 100), -ENODEV);

	/* IPv6 lists the kernel's link-local address too, when it has one. */
	ck_assert_int_eq(rtnl_addr_list(rt, ifindex, AF_INET6, &list, &n), 0);
	ck_assert_uint_ge(n, 1);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(list[i].ip.family, AF_INET6);
	a = find_addr(list, n, &v6);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->valid_lft, UINT32_MAX);
	ck_assert_uint_eq(a->preferred_lft, UINT32_MAX);
	free(list);

	ck_assert_int_eq(rtnl_addr_list(rt, ifindex, AF_UNSPEC, &list, &n), 0);
	ck_assert_ptr_nonnull(find_addr(list, n, &v4));
	ck_assert_ptr_nonnull(find_addr(list, n, &v6));
	free(list);

	/* Another interface's list holds none of them. */
	ck_assert_int_eq(rtnl_addr_list(rt, 1, AF_UNSPEC, &list, &n), 0);
	ck_assert_ptr_null(find_addr(list, n, &v4));
	free(list);

	ck_assert_int_eq(rtnl_addr_del(rt, ifindex, &v4), 0);
	ck_assert_int_eq(rtnl_addr_del(rt, ifindex, &v4host), 0);
	ck_assert_int_eq(rtnl_addr_del(rt, ifindex, &v6), 0);
	/* Absent ones are not an error. */
	ck_assert_int_eq(rtnl_addr_del(rt, ifindex, &v4), 0);
	ck_assert_int_eq(rtnl_addr_del(rt, ifindex, &v6), 0);
	ck_assert_int_eq(rtnl_addr_del(rt, ifindex, &absent), 0);

	ck_assert_int_eq(rtnl_addr_list(rt, ifindex, AF_INET, &list, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(list);
	ck_assert_int_eq(rtnl_addr_list(rt, ifindex, AF_INET6, &list, &n), 0);
	ck_assert_ptr_null(find_addr(list, n, &v6));
	free(list);

	ck_assert_int_eq(rtnl_addr_list(rt, ifindex, AF_PACKET, &list, &n), -EAFNOSUPPORT);
	ck_assert_ptr_null(list);
	ck_assert_uint_eq(n, 0);
	rtnl_close(rt);
}
END_TEST

static bool route_listed(struct rtnl *rt, uint32_t ifindex, int family,
			 const struct wgd_ip *dst)
{
	struct wgd_ip *list;
	bool found = false;
	size_t n, i;

	ck_assert_int_eq(rtnl_route_list(rt, ifindex, family, &list, &n), 0);
	for (i = 0; i < n; i++) {
		if (family != AF_UNSPEC)
			ck_assert_uint_eq(list[i].family, family);
		if (ip_same(&list[i], dst))
			found = true;
	}
	free(list);
	return found;
}

START_TEST(test_route)
{
	struct wgd_ip r4 = test_ip("10.20.0.0/16"), r6 = test_ip("fd00:1::/64");
	struct wgd_ip host = test_ip("192.0.2.7/32"), bad = test_ip("10.20.0.1/16");
	struct rtnl *rt;
	uint32_t ifindex;

	ck_assert_int_eq(rtnl_open(&rt), 0);
	ifindex = test_ifindex(rt, TEST_IF);

	/* Exclusive: a second add of the same prefix is refused. */
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r4, TEST_PROTO), 0);
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r4, TEST_PROTO), -EEXIST);
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &host, TEST_PROTO), 0);
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r6, TEST_PROTO), 0);
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r6, TEST_PROTO), -EEXIST);
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r6, RTPROT_STATIC), -EEXIST);

	ck_assert(route_listed(rt, ifindex, AF_INET, &r4));
	ck_assert(route_listed(rt, ifindex, AF_INET, &host));
	ck_assert(!route_listed(rt, ifindex, AF_INET, &r6));
	ck_assert(route_listed(rt, ifindex, AF_INET6, &r6));
	ck_assert(route_listed(rt, ifindex, AF_UNSPEC, &r4));
	ck_assert(route_listed(rt, ifindex, AF_UNSPEC, &r6));
	ck_assert(!route_listed(rt, 1, AF_UNSPEC, &r4));

	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &bad, TEST_PROTO), -EINVAL);
	ck_assert_int_eq(rtnl_route_add(rt, 99999, &r4, TEST_PROTO), -ENODEV);
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r4, RTPROT_UNSPEC), -EINVAL);

	ck_assert_int_eq(rtnl_route_del(rt, ifindex, &r4, TEST_PROTO), 0);
	ck_assert_int_eq(rtnl_route_del(rt, ifindex, &host, TEST_PROTO), 0);
	ck_assert_int_eq(rtnl_route_del(rt, ifindex, &r6, TEST_PROTO), 0);
	ck_assert(!route_listed(rt, ifindex, AF_UNSPEC, &r4));
	ck_assert(!route_listed(rt, ifindex, AF_UNSPEC, &host));
	ck_assert(!route_listed(rt, ifindex, AF_UNSPEC, &r6));

	/* Someone else's route to the same prefix: deleting ours leaves it. */
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r4, RTPROT_STATIC), 0);
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r6, RTPROT_STATIC), 0);
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r4, TEST_PROTO), -EEXIST);
	ck_assert_int_eq(rtnl_route_del(rt, ifindex, &r4, TEST_PROTO), 0);
	ck_assert_int_eq(rtnl_route_del(rt, ifindex, &r6, TEST_PROTO), 0);
	ck_assert(route_listed(rt, ifindex, AF_INET, &r4));
	ck_assert(route_listed(rt, ifindex, AF_INET6, &r6));
	{
		struct wgd_ip *mine = NULL;
		size_t n = 1;

		ck_assert_int_eq(rtnl_route_add(rt, ifindex, &host, TEST_PROTO), 0);
		ck_assert_int_eq(rtnl_route_list_proto(rt, ifindex, AF_UNSPEC, TEST_PROTO,
						       &mine, &n), 0);
		ck_assert_uint_eq(n, 1);
		ck_assert(wgd_ip_equal(&mine[0], &host));
		free(mine);
	}
	ck_assert_int_eq(rtnl_route_del(rt, ifindex, &r4, RTPROT_UNSPEC), 0);
	ck_assert_int_eq(rtnl_route_del(rt, ifindex, &r6, RTPROT_UNSPEC), 0);
	ck_assert_int_eq(rtnl_route_del(rt, ifindex, &host, TEST_PROTO), 0);
	ck_assert(!route_listed(rt, ifindex, AF_UNSPEC, &r4));
	ck_assert(!route_listed(rt, ifindex, AF_UNSPEC, &r6));

	rtnl_close(rt);
}
END_TEST

START_TEST(test_monitor_route_addr)
{
	struct wgd_ip r4 = test_ip("10.30.0.0/16"), r6 = test_ip("fd00:2::/64");
	struct wgd_ip a4 = test_ip("10.40.0.1/32");
	struct rtnl_monitor *m;
	struct rtnl_event ev;
	struct rtnl *rt;
	uint32_t ifindex;

	ck_assert_int_eq(rtnl_open(&rt), 0);
	ifindex = test_ifindex(rt, TEST_IF);
	ck_assert_int_eq(rtnl_monitor_open(&m, RTMGRP_LINK | RTMGRP_IPV4_ROUTE |
					   RTMGRP_IPV6_ROUTE | RTMGRP_IPV4_IFADDR |
					   RTMGRP_IPV6_IFADDR), 0);
	ck_assert_int_ge(rtnl_monitor_fd(m), 0);

	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r4, TEST_PROTO), 0);
	ck_assert(wait_for_event(m, RTNL_EV_ROUTE_NEW, ifindex, &r4, &ev));
	ck_assert_uint_eq(ev.table, RT_TABLE_MAIN);
	ck_assert(!ev.has_gateway);
	ck_assert_int_eq(rtnl_route_add(rt, ifindex, &r6, TEST_PROTO), 0);
	ck_assert(wait_for_event(m, RTNL_EV_ROUTE_NEW, ifindex, &r6, &ev));
	ck_assert_uint_eq(ev.table, RT_TABLE_MAIN);

	ck_assert_int_eq(rtnl_route_del(rt, ifindex, &r4, TEST_PROTO), 0);
	ck_assert(wait_for_event(m, RTNL_EV_ROUTE_DEL, ifindex, &r4, NULL));
	ck_assert_int_eq(rtnl_route_del(rt, ifindex, &r6, TEST_PROTO), 0);
	ck_assert(wait_for_event(m, RTNL_EV_ROUTE_DEL, ifindex, &r6, NULL));

	ck_assert_int_eq(rtnl_addr_add(rt, ifindex, &a4, 100, 100), 0);
	ck_assert(wait_for_event(m, RTNL_EV_ADDR_NEW, ifindex, &a4, NULL));
	ck_assert_int_eq(rtnl_addr_del(rt, ifindex, &a4), 0);
	ck_assert(wait_for_event(m, RTNL_EV_ADDR_DEL, ifindex, &a4, NULL));

	/* Nothing queued: reading returns at once. */
	ck_assert_int_eq(rtnl_monitor_read(m, event_log_cb, &(struct event_log){ 0 }), 0);

	rtnl_monitor_close(m);
	rtnl_monitor_close(NULL);
	rtnl_close(rt);
}
END_TEST

START_TEST(test_monitor_link)
{
	struct rtnl_monitor *m;
	struct rtnl_event ev;
	struct rtnl *rt;
	uint32_t ifindex;

	ck_assert_int_eq(rtnl_open(&rt), 0);
	ck_assert_int_eq(rtnl_monitor_open(&m, RTMGRP_LINK), 0);

	ck_assert_int_eq(raw_link_add(TEST_IF_EXTRA, test_link_kind), 0);
	ifindex = test_ifindex(rt, TEST_IF_EXTRA);
	ck_assert(wait_for_event(m, RTNL_EV_LINK, ifindex, NULL, &ev));
	ck_assert(!(ev.flags & IFF_UP));

	ck_assert_int_eq(raw_link_up(TEST_IF_EXTRA), 0);
	ck_assert(wait_for_event(m, RTNL_EV_LINK, ifindex, NULL, &ev));
	ck_assert(ev.flags & IFF_UP);

	ck_assert_int_eq(raw_link_del(TEST_IF_EXTRA), 0);
	ck_assert(wait_for_event(m, RTNL_EV_LINK_DEL, ifindex, NULL, NULL));
	ck_assert_int_eq(rtnl_link_get(rt, TEST_IF_EXTRA, &(struct rtnl_link){ 0 }), -ENODEV);

	rtnl_monitor_close(m);
	rtnl_close(rt);
}
END_TEST

START_TEST(test_monitor_overrun)
{
	struct event_log *log = calloc(1, sizeof(*log));
	struct rtnl_monitor *m;
	struct rtnl *rt;
	uint32_t ifindex;
	int tiny = 1, i;

	ck_assert_ptr_nonnull(log);
	ck_assert_int_eq(rtnl_open(&rt), 0);
	ifindex = test_ifindex(rt, TEST_IF);
	ck_assert_int_eq(rtnl_monitor_open(&m, RTMGRP_IPV4_ROUTE), 0);
	/* The kernel rounds this up to its minimum, a few messages' worth. */
	ck_assert_int_eq(setsockopt(rtnl_monitor_fd(m), SOL_SOCKET, SO_RCVBUF,
				    &tiny, sizeof(tiny)), 0);

	for (i = 0; i < 200; i++) {
		struct wgd_ip dst = test_ip("10.50.0.0/24");

		dst.bytes[2] = (uint8_t)i;
		ck_assert_int_eq(rtnl_route_add(rt, ifindex, &dst, TEST_PROTO), 0);
	}
	ck_assert_int_eq(rtnl_monitor_read(m, event_log_cb, log), 0);
	ck_assert(log->overrun);

	for (i = 0; i < 200; i++) {
		struct wgd_ip dst = test_ip("10.50.0.0/24");

		dst.bytes[2] = (uint8_t)i;
		ck_assert_int_eq(rtnl_route_del(rt, ifindex, &dst, TEST_PROTO), 0);
	}
	rtnl_monitor_close(m);
	rtnl_close(rt);
	free(log);
}
END_TEST

/*
 * Parser tests on messages built by hand
 */

struct msgbuf {
	_Alignas(struct nlmsghdr) char bytes[1024];
};

static struct nlmsghdr *msg_addr(struct msgbuf *b, uint8_t family, uint8_t prefixlen)
{
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;

	memset(b->bytes, 0, sizeof(b->bytes));
	nlh = mnl_nlmsg_put_header(b->bytes);
	nlh->nlmsg_type = RTM_NEWADDR;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = family;
	ifa->ifa_prefixlen = prefixlen;
	ifa->ifa_index = 7;
	ifa->ifa_flags = IFA_F_PERMANENT;
	return nlh;
}

/*
 * Parses every prefix of a valid message, each copied to a buffer of exactly
 * its length so that the sanitizer sees any read past the end. A cut inside
 * an attribute must be refused; a cut at an attribute boundary leaves a
 * shorter, complete message.
 */
static void check_truncations(const struct nlmsghdr *nlh,
			      int (*parse)(const struct nlmsghdr *))
{
	uint32_t len;

	for (len = MNL_NLMSG_HDRLEN; len < nlh->nlmsg_len; len++) {
		struct nlmsghdr *copy = malloc(len);
		int ret;

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, nlh, len);
		copy->nlmsg_len = len;
		ret = parse(copy);
		ck_assert_msg(ret == 0 || ret == -EINVAL || ret == 1,
			      "length %u: %d", len, ret);
		free(copy);
	}
}

static int parse_addr_only(const struct nlmsghdr *nlh)
{
	struct rtnl_addr addr;
	uint32_t ifindex;

	return rtnl_parse_addr(nlh, &addr, &ifindex);
}

static int parse_event_only(const struct nlmsghdr *nlh)
{
	struct rtnl_event ev;

	return rtnl_parse_event(nlh, &ev);
}

START_TEST(test_parse_addr)
{
	struct ifa_cacheinfo ci = { .ifa_prefered = 50, .ifa_valid = 100 };
	struct wgd_ip want = test_ip("10.1.2.3/24");
	uint8_t peer[6] = { 10, 1, 2, 99 };
	struct rtnl_addr addr;
	struct rtnl_event ev;
	struct nlmsghdr *nlh;
	struct msgbuf b;
	uint32_t ifindex, full;

	nlh = msg_addr(&b, AF_INET, 24);
	mnl_attr_put(nlh, IFA_ADDRESS, 4, peer);
	mnl_attr_put(nlh, IFA_LOCAL, 4, want.bytes);
	mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_PERMANENT | IFA_F_NOPREFIXROUTE);
	mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(ci), &ci);
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), 0);
	ck_assert_uint_eq(ifindex, 7);
	ck_assert(ip_same(&addr.ip, &want));
	ck_assert_uint_eq(addr.flags, IFA_F_PERMANENT | IFA_F_NOPREFIXROUTE);
	ck_assert_uint_eq(addr.valid_lft, 100);
	ck_assert_uint_eq(addr.preferred_lft, 50);
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 1);
	ck_assert_int_eq(ev.type, RTNL_EV_ADDR_NEW);
	ck_assert_uint_eq(ev.ifindex, 7);
	ck_assert(ip_same(&ev.ip, &want));
	check_truncations(nlh, parse_addr_only);

	/* The last attribute cut short. */
	full = nlh->nlmsg_len;
	nlh->nlmsg_len = full - 2;
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EINVAL);
	ck_assert_uint_eq(ifindex, 0);
	ck_assert_uint_eq(addr.ip.family, 0);
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), -EINVAL);
	nlh->nlmsg_len = full;

	/* Without IFA_LOCAL, IFA_ADDRESS is the address; no cacheinfo is forever. */
	nlh = msg_addr(&b, AF_INET6, 64);
	want = test_ip("fd00::1/64");
	mnl_attr_put(nlh, IFA_ADDRESS, 16, want.bytes);
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), 0);
	ck_assert(ip_same(&addr.ip, &want));
	ck_assert_uint_eq(addr.flags, IFA_F_PERMANENT);
	ck_assert_uint_eq(addr.valid_lft, UINT32_MAX);
	nlh->nlmsg_type = RTM_DELADDR;
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 1);
	ck_assert_int_eq(ev.type, RTNL_EV_ADDR_DEL);

	/* An address of the wrong length. */
	nlh = msg_addr(&b, AF_INET, 24);
	mnl_attr_put(nlh, IFA_LOCAL, 3, want.bytes);
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EINVAL);
	nlh = msg_addr(&b, AF_INET6, 64);
	mnl_attr_put(nlh, IFA_ADDRESS, 4, want.bytes);
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EINVAL);

	/* No address at all. */
	nlh = msg_addr(&b, AF_INET, 24);
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EINVAL);

	/* A prefix longer than the family allows. */
	nlh = msg_addr(&b, AF_INET, 33);
	mnl_attr_put(nlh, IFA_LOCAL, 4, want.bytes);
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EINVAL);

	/* Flags and cacheinfo of the wrong size. */
	nlh = msg_addr(&b, AF_INET, 24);
	mnl_attr_put(nlh, IFA_LOCAL, 4, want.bytes);
	mnl_attr_put_u16(nlh, IFA_FLAGS, 1);
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EINVAL);
	nlh = msg_addr(&b, AF_INET, 24);
	mnl_attr_put(nlh, IFA_LOCAL, 4, want.bytes);
	mnl_attr_put(nlh, IFA_CACHEINFO, 8, &ci);
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EINVAL);

	/* An attribute header claiming less than itself. */
	nlh = msg_addr(&b, AF_INET, 24);
	mnl_attr_put(nlh, IFA_LOCAL, 4, want.bytes);
	((struct nlattr *)mnl_nlmsg_get_payload_offset(nlh, sizeof(struct ifaddrmsg)))->nla_len = 2;
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EINVAL);

	/* Shorter than its family header. */
	nlh = msg_addr(&b, AF_INET, 24);
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN + 4;
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EINVAL);

	/* Another family is not ours to report. */
	nlh = msg_addr(&b, AF_PACKET, 0);
	mnl_attr_put(nlh, IFA_LOCAL, 6, peer);
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EAFNOSUPPORT);
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 0);

	/* The wrong message type. */
	nlh = msg_addr(&b, AF_INET, 24);
	mnl_attr_put(nlh, IFA_LOCAL, 4, want.bytes);
	nlh->nlmsg_type = RTM_NEWROUTE;
	ck_assert_int_eq(rtnl_parse_addr(nlh, &addr, &ifindex), -EINVAL);
}
END_TEST

static struct nlmsghdr *msg_link(struct msgbuf *b, uint16_t type, int ifindex)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	memset(b->bytes, 0, sizeof(b->bytes));
	nlh = mnl_nlmsg_put_header(b->bytes);
	nlh->nlmsg_type = type;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP | IFF_RUNNING;
	return nlh;
}

static int parse_link_only(const struct nlmsghdr *nlh)
{
	struct rtnl_link link;

	return rtnl_parse_link(nlh, &link);
}

START_TEST(test_parse_link)
{
	struct rtnl_link link;
	struct rtnl_event ev;
	struct nlmsghdr *nlh;
	struct nlattr *nest;
	struct msgbuf b;

	nlh = msg_link(&b, RTM_NEWLINK, 4);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "wg0");
	mnl_attr_put_u32(nlh, IFLA_MTU, 1420);
	nest = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard");
	mnl_attr_nest_end(nlh, nest);
	ck_assert_int_eq(rtnl_parse_link(nlh, &link), 0);
	ck_assert_uint_eq(link.ifindex, 4);
	ck_assert_str_eq(link.name, "wg0");
	ck_assert_uint_eq(link.mtu, 1420);
	ck_assert_str_eq(link.kind, "wireguard");
	ck_assert_uint_eq(link.flags, IFF_UP | IFF_RUNNING);
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 1);
	ck_assert_int_eq(ev.type, RTNL_EV_LINK);
	ck_assert_uint_eq(ev.ifindex, 4);
	ck_assert_uint_eq(ev.flags, IFF_UP | IFF_RUNNING);
	check_truncations(nlh, parse_link_only);
	check_truncations(nlh, parse_event_only);

	nlh->nlmsg_type = RTM_DELLINK;
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 1);
	ck_assert_int_eq(ev.type, RTNL_EV_LINK_DEL);

	/* A bridge port's notification is not about the link itself. */
	((struct ifinfomsg *)mnl_nlmsg_get_payload(nlh))->ifi_family = AF_BRIDGE;
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 0);

	/* A nested attribute cut short inside its nest. */
	nlh = msg_link(&b, RTM_NEWLINK, 4);
	nest = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard");
	mnl_attr_nest_end(nlh, nest);
	nest->nla_len -= 3;
	ck_assert_int_eq(rtnl_parse_link(nlh, &link), -EINVAL);
	ck_assert_str_eq(link.kind, "");

	/* A name without its NUL, and one too long for IF_NAMESIZE. */
	nlh = msg_link(&b, RTM_NEWLINK, 4);
	mnl_attr_put(nlh, IFLA_IFNAME, 3, "wg0");
	ck_assert_int_eq(rtnl_parse_link(nlh, &link), -EINVAL);
	nlh = msg_link(&b, RTM_NEWLINK, 4);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "abcdefghijklmnopq");
	ck_assert_int_eq(rtnl_parse_link(nlh, &link), -EINVAL);

	/* An MTU of the wrong size. */
	nlh = msg_link(&b, RTM_NEWLINK, 4);
	mnl_attr_put_u16(nlh, IFLA_MTU, 1420);
	ck_assert_int_eq(rtnl_parse_link(nlh, &link), -EINVAL);

	/* A kind too long for the field is left empty, not cut short. */
	nlh = msg_link(&b, RTM_NEWLINK, 4);
	nest = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard-but-longer");
	mnl_attr_nest_end(nlh, nest);
	ck_assert_int_eq(rtnl_parse_link(nlh, &link), 0);
	ck_assert_str_eq(link.kind, "");

	/* No interface index. */
	nlh = msg_link(&b, RTM_NEWLINK, 0);
	ck_assert_int_eq(rtnl_parse_link(nlh, &link), -EINVAL);
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), -EINVAL);
}
END_TEST

static struct nlmsghdr *msg_route(struct msgbuf *b, uint8_t family, uint8_t dst_len)
{
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;

	memset(b->bytes, 0, sizeof(b->bytes));
	nlh = mnl_nlmsg_put_header(b->bytes);
	nlh->nlmsg_type = RTM_NEWROUTE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = family;
	rtm->rtm_dst_len = dst_len;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_type = RTN_UNICAST;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_LINK;
	return nlh;
}

static int parse_route_only(const struct nlmsghdr *nlh)
{
	struct rtnl_route_info route;

	return rtnl_parse_route(nlh, &route);
}

START_TEST(test_parse_route)
{
	struct wgd_ip dst = test_ip("fd00:1::/64"), gw = test_ip("fd00::1");
	struct rtnl_route_info route;
	struct rtnl_event ev;
	struct nlmsghdr *nlh;
	struct msgbuf b;

	nlh = msg_route(&b, AF_INET6, 64);
	mnl_attr_put(nlh, RTA_DST, 16, dst.bytes);
	mnl_attr_put_u32(nlh, RTA_OIF, 9);
	mnl_attr_put_u32(nlh, RTA_TABLE, 1000);
	ck_assert_int_eq(rtnl_parse_route(nlh, &route), 0);
	ck_assert(ip_same(&route.dst, &dst));
	ck_assert_uint_eq(route.oif, 9);
	ck_assert_uint_eq(route.table, 1000);
	ck_assert_uint_eq(route.type, RTN_UNICAST);
	ck_assert_uint_eq(route.protocol, RTPROT_STATIC);
	ck_assert_uint_eq(route.scope, RT_SCOPE_LINK);
	ck_assert(!route.has_gateway);
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 1);
	ck_assert_int_eq(ev.type, RTNL_EV_ROUTE_NEW);
	ck_assert_uint_eq(ev.ifindex, 9);
	ck_assert_uint_eq(ev.table, 1000);
	ck_assert(ip_same(&ev.ip, &dst));
	check_truncations(nlh, parse_route_only);
	check_truncations(nlh, parse_event_only);

	mnl_attr_put(nlh, RTA_GATEWAY, 16, gw.bytes);
	nlh->nlmsg_type = RTM_DELROUTE;
	ck_assert_int_eq(rtnl_parse_route(nlh, &route), 0);
	ck_assert(route.has_gateway);
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 1);
	ck_assert_int_eq(ev.type, RTNL_EV_ROUTE_DEL);
	ck_assert(ev.has_gateway);

	/* A default route has no RTA_DST. */
	nlh = msg_route(&b, AF_INET, 0);
	mnl_attr_put_u32(nlh, RTA_OIF, 3);
	ck_assert_int_eq(rtnl_parse_route(nlh, &route), 0);
	ck_assert_uint_eq(route.dst.family, AF_INET);
	ck_assert_uint_eq(route.dst.cidr, 0);
	ck_assert_uint_eq(route.table, RT_TABLE_MAIN);

	/* Wrong sizes. */
	nlh = msg_route(&b, AF_INET6, 64);
	mnl_attr_put(nlh, RTA_DST, 4, dst.bytes);
	ck_assert_int_eq(rtnl_parse_route(nlh, &route), -EINVAL);
	nlh = msg_route(&b, AF_INET6, 64);
	mnl_attr_put(nlh, RTA_DST, 16, dst.bytes);
	mnl_attr_put_u16(nlh, RTA_OIF, 9);
	ck_assert_int_eq(rtnl_parse_route(nlh, &route), -EINVAL);
	ck_assert_uint_eq(route.oif, 0);
	nlh = msg_route(&b, AF_INET, 8);
	mnl_attr_put(nlh, RTA_GATEWAY, 16, gw.bytes);
	ck_assert_int_eq(rtnl_parse_route(nlh, &route), -EINVAL);
	nlh = msg_route(&b, AF_INET, 40);
	ck_assert_int_eq(rtnl_parse_route(nlh, &route), -EINVAL);

	/* The last attribute cut short. */
	nlh = msg_route(&b, AF_INET6, 64);
	mnl_attr_put(nlh, RTA_DST, 16, dst.bytes);
	nlh->nlmsg_len -= 1;
	ck_assert_int_eq(rtnl_parse_route(nlh, &route), -EINVAL);
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), -EINVAL);

	/* Multicast routing tables and other families are skipped. */
	nlh = msg_route(&b, RTNL_FAMILY_IPMR, 32);
	ck_assert_int_eq(rtnl_parse_route(nlh, &route), -EAFNOSUPPORT);
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 0);

	/* And so are message types no event stands for. */
	nlh = msg_route(&b, AF_INET, 0);
	nlh->nlmsg_type = RTM_NEWNEIGH;
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 0);
	nlh->nlmsg_type = NLMSG_ERROR;
	ck_assert_int_eq(rtnl_parse_event(nlh, &ev), 0);
}
END_TEST

static Suite *rtnl_suite(void)
{
	Suite *s = suite_create("rtnl");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_addr);
	tcase_add_test(tc, test_parse_link);
	tcase_add_test(tc, test_parse_route);
	suite_add_tcase(s, tc);

	if (have_netns) {
		tc = tcase_create("kernel");
		tcase_set_timeout(tc, 30);
		tcase_add_test(tc, test_link_get);
		tcase_add_test(tc, test_addr);
		tcase_add_test(tc, test_route);
		tcase_add_test(tc, test_monitor_route_addr);
		tcase_add_test(tc, test_monitor_link);
		tcase_add_test(tc, test_monitor_overrun);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr;
	int failures, ret;

	if (geteuid() != 0) {
		printf("test_rtnl: not root, skipping the kernel tests\n");
	} else if (unshare(CLONE_NEWNET) < 0) {
		printf("test_rtnl: no network namespace (%s), skipping the kernel tests\n",
		       strerror(errno));
	} else {
		ret = test_link_create(TEST_IF);
		if (ret)
			printf("test_rtnl: cannot make a test link (%s), skipping the kernel tests\n",
			       strerror(-ret));
		else
			have_netns = true;
	}

	sr = srunner_create(rtnl_suite());
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
