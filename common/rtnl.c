// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "rtnl.h"
#include "rtnl-parse.h"

/*
 * Large enough for any message of a dump: the kernel sizes dump messages to
 * the reader's buffer up to 32 KiB, and a buffer that is too small would
 * truncate them.
 */
#define RTNL_BUF_SIZE 32768
/* Our own requests carry a header and a few attributes. */
#define RTNL_REQ_SIZE 512
/* Notification datagrams read per rtnl_monitor_read() call, at most. */
#define RTNL_MONITOR_BATCH 256
/* Socket buffer asked for a monitor, so that a burst of changes (a peer set
 * reloaded, an interface with many routes going away) rarely overruns it. */
#define RTNL_MONITOR_RCVBUF (1 << 20)
/* Times a dump is repeated when the kernel says it was inconsistent. */
#define RTNL_DUMP_TRIES 3

struct rtnl {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	_Alignas(struct nlmsghdr) char buf[RTNL_BUF_SIZE];
};

struct rtnl_monitor {
	struct mnl_socket *nl;
	_Alignas(struct nlmsghdr) char buf[RTNL_BUF_SIZE];
};

/* Called for each message of a reply; returns 0 or -errno. */
typedef int (*rtnl_msg_cb)(const struct nlmsghdr *nlh, void *ctx);

/*
 * Attribute parsing
 */

/*
 * Indexes the attributes in buf by type, up to max. Unlike mnl_attr_parse(),
 * which stops quietly at the first attribute that does not fit, an attribute
 * running past the end rejects the buffer.
 */
static int rtnl_attr_index(const void *buf, size_t len,
			   const struct nlattr **tb, unsigned max)
{
	size_t off = 0;

	memset(tb, 0, (max + 1) * sizeof(*tb));
	while (off < len) {
		const struct nlattr *attr = (const void *)((const char *)buf + off);
		unsigned type;

		if (len - off < sizeof(*attr) || attr->nla_len < sizeof(*attr) ||
		    attr->nla_len > len - off)
			return -EINVAL;
		type = mnl_attr_get_type(attr);
		if (type <= max)
			tb[type] = attr;
		off += MNL_ALIGN(attr->nla_len);
	}
	return 0;
}

/* The attributes that follow a family header of hdrlen bytes. */
static int rtnl_msg_index(const struct nlmsghdr *nlh, size_t hdrlen,
			  const struct nlattr **tb, unsigned max)
{
	size_t start = MNL_NLMSG_HDRLEN + MNL_ALIGN(hdrlen);

	if (nlh->nlmsg_len < start)
		return -EINVAL;
	return rtnl_attr_index((const char *)nlh + start,
			       nlh->nlmsg_len - start, tb, max);
}

static int rtnl_attr_u32(const struct nlattr *attr, uint32_t *out)
{
	if (mnl_attr_get_payload_len(attr) != sizeof(uint32_t))
		return -EINVAL;
	*out = mnl_attr_get_u32(attr);
	return 0;
}

/* A NUL-terminated string that fits, with its NUL, in size bytes. */
static int rtnl_attr_str(const struct nlattr *attr, char *out, size_t size)
{
	if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
		return -EINVAL;
	if (strlen(mnl_attr_get_str(attr)) >= size)
		return -ENAMETOOLONG;
	strcpy(out, mnl_attr_get_str(attr));
	return 0;
}

static int rtnl_attr_ip(const struct nlattr *attr, uint8_t family,
			uint8_t cidr, struct wgd_ip *out)
{
	size_t len = wgd_ip_len(family);

	if (mnl_attr_get_payload_len(attr) != len)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->family = family;
	out->cidr = cidr;
	memcpy(out->bytes, mnl_attr_get_payload(attr), len);
	return 0;
}

static bool rtnl_family_ok(int family)
{
	return family == AF_INET || family == AF_INET6;
}

int rtnl_parse_link(const struct nlmsghdr *nlh, struct rtnl_link *out)
{
	const struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1];
	const struct ifinfomsg *ifi;
	int ret;

	memset(out, 0, sizeof(*out));
	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return -EINVAL;
	ret = rtnl_msg_index(nlh, sizeof(*ifi), tb, IFLA_MAX);
	if (ret)
		goto out;
	ifi = mnl_nlmsg_get_payload(nlh);
	if (ifi->ifi_index <= 0) {
		ret = -EINVAL;
		goto out;
	}
	out->ifindex = (uint32_t)ifi->ifi_index;
	out->flags = ifi->ifi_flags;

	if (tb[IFLA_IFNAME]) {
		ret = rtnl_attr_str(tb[IFLA_IFNAME], out->name, sizeof(out->name));
		if (ret) {
			ret = -EINVAL;
			goto out;
		}
	}
	if (tb[IFLA_MTU]) {
		ret = rtnl_attr_u32(tb[IFLA_MTU], &out->mtu);
		if (ret)
			goto out;
	}
	if (tb[IFLA_MAX_MTU]) {
		ret = rtnl_attr_u32(tb[IFLA_MAX_MTU], &out->max_mtu);
		if (ret)
			goto out;
	}
	if (tb[IFLA_LINKINFO]) {
		ret = rtnl_attr_index(mnl_attr_get_payload(tb[IFLA_LINKINFO]),
				      mnl_attr_get_payload_len(tb[IFLA_LINKINFO]),
				      info, IFLA_INFO_MAX);
		if (ret)
			goto out;
		/*
		 * A kind too long for the field is no kind we look for, and
		 * cutting it short could make it one; leave it empty instead.
		 */
		if (info[IFLA_INFO_KIND]) {
			ret = rtnl_attr_str(info[IFLA_INFO_KIND], out->kind,
					    sizeof(out->kind));
			if (ret == -ENAMETOOLONG)
				ret = 0;
			if (ret)
				goto out;
		}
	}

out:
	if (ret)
		memset(out, 0, sizeof(*out));
	return ret;
}

int rtnl_parse_addr(const struct nlmsghdr *nlh, struct rtnl_addr *out,
		    uint32_t *ifindex)
{
	const struct nlattr *tb[IFA_MAX + 1], *local;
	const struct ifaddrmsg *ifa;
	int ret;

	memset(out, 0, sizeof(*out));
	*ifindex = 0;
	if (nlh->nlmsg_type != RTM_NEWADDR && nlh->nlmsg_type != RTM_DELADDR)
		return -EINVAL;
	ret = rtnl_msg_index(nlh, sizeof(*ifa), tb, IFA_MAX);
	if (ret)
		goto out;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (!rtnl_family_ok(ifa->ifa_family)) {
		ret = -EAFNOSUPPORT;
		goto out;
	}
	if (ifa->ifa_prefixlen > wgd_ip_bits(ifa->ifa_family)) {
		ret = -EINVAL;
		goto out;
	}

	/*
	 * IFA_LOCAL is our side of the address; IFA_ADDRESS is the peer's on
	 * point-to-point links and repeats the local one elsewhere. IPv6
	 * sends IFA_LOCAL only when there is a peer.
	 */
	local = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!local) {
		ret = -EINVAL;
		goto out;
	}
	ret = rtnl_attr_ip(local, ifa->ifa_family, ifa->ifa_prefixlen, &out->ip);
	if (ret)
		goto out;
	if (tb[IFA_ADDRESS] && mnl_attr_get_payload_len(tb[IFA_ADDRESS]) !=
			       wgd_ip_len(ifa->ifa_family)) {
		ret = -EINVAL;
		goto out;
	}
	out->scope = ifa->ifa_scope;

	/* IFA_FLAGS carries the flags that do not fit the 8-bit field. */
	out->flags = ifa->ifa_flags;
	if (tb[IFA_FLAGS]) {
		ret = rtnl_attr_u32(tb[IFA_FLAGS], &out->flags);
		if (ret)
			goto out;
	}

	out->valid_lft = UINT32_MAX;
	out->preferred_lft = UINT32_MAX;
	if (tb[IFA_CACHEINFO]) {
		struct ifa_cacheinfo ci;

		/* A struct, which a later kernel may lengthen: at least ours. */
		if (mnl_attr_get_payload_len(tb[IFA_CACHEINFO]) < sizeof(ci)) {
			ret = -EINVAL;
			goto out;
		}
		memcpy(&ci, mnl_attr_get_payload(tb[IFA_CACHEINFO]), sizeof(ci));
		out->valid_lft = ci.ifa_valid;
		out->preferred_lft = ci.ifa_prefered;
	}
	*ifindex = ifa->ifa_index;

out:
	if (ret)
		memset(out, 0, sizeof(*out));
	return ret;
}

int rtnl_parse_route(const struct nlmsghdr *nlh, struct rtnl_route_info *out)
{
	const struct nlattr *tb[RTA_MAX + 1];
	const struct rtmsg *rtm;
	int ret;

	memset(out, 0, sizeof(*out));
	if (nlh->nlmsg_type != RTM_NEWROUTE && nlh->nlmsg_type != RTM_DELROUTE)
		return -EINVAL;
	ret = rtnl_msg_index(nlh, sizeof(*rtm), tb, RTA_MAX);
	if (ret)
		goto out;
	rtm = mnl_nlmsg_get_payload(nlh);
	if (!rtnl_family_ok(rtm->rtm_family)) {
		ret = -EAFNOSUPPORT;
		goto out;
	}
	if (rtm->rtm_dst_len > wgd_ip_bits(rtm->rtm_family)) {
		ret = -EINVAL;
		goto out;
	}

	if (tb[RTA_DST]) {
		ret = rtnl_attr_ip(tb[RTA_DST], rtm->rtm_family, rtm->rtm_dst_len,
				   &out->dst);
		if (ret)
			goto out;
	} else {
		out->dst.family = rtm->rtm_family;
		out->dst.cidr = rtm->rtm_dst_len;
	}
	if (tb[RTA_OIF]) {
		ret = rtnl_attr_u32(tb[RTA_OIF], &out->oif);
		if (ret)
			goto out;
	}
	/* rtm_table is 8 bits; tables past 255 come only as RTA_TABLE. */
	out->table = rtm->rtm_table;
	if (tb[RTA_TABLE]) {
		ret = rtnl_attr_u32(tb[RTA_TABLE], &out->table);
		if (ret)
			goto out;
	}
	if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) !=
			       wgd_ip_len(rtm->rtm_family)) {
		ret = -EINVAL;
		goto out;
	}
	/*
	 * Whatever names a next hop other than the link itself makes the
	 * route one we did not install: an IPv4 route via an IPv6 gateway
	 * (RTA_VIA), several paths, or a nexthop object.
	 */
	out->has_gateway = tb[RTA_GATEWAY] || tb[RTA_VIA] ||
			   tb[RTA_MULTIPATH] || tb[RTA_NH_ID];
	out->type = rtm->rtm_type;
	out->protocol = rtm->rtm_protocol;
	out->scope = rtm->rtm_scope;

out:
	if (ret)
		memset(out, 0, sizeof(*out));
	return ret;
}

int rtnl_parse_event(const struct nlmsghdr *nlh, struct rtnl_event *ev)
{
	int ret;

	memset(ev, 0, sizeof(*ev));
	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK: {
		const struct ifinfomsg *ifi;
		struct rtnl_link link;

		ret = rtnl_parse_link(nlh, &link);
		if (ret)
			return ret;
		/*
		 * Bridges send their port changes as link messages of family
		 * AF_BRIDGE; an RTM_DELLINK of those means a port left its
		 * bridge, not that the link is gone.
		 */
		ifi = mnl_nlmsg_get_payload(nlh);
		if (ifi->ifi_family != AF_UNSPEC)
			return 0;
		ev->type = nlh->nlmsg_type == RTM_NEWLINK ? RTNL_EV_LINK :
							    RTNL_EV_LINK_DEL;
		ev->ifindex = link.ifindex;
		ev->flags = link.flags;
		return 1;
	}
	case RTM_NEWADDR:
	case RTM_DELADDR: {
		struct rtnl_addr addr;

		ret = rtnl_parse_addr(nlh, &addr, &ev->ifindex);
		if (ret == -EAFNOSUPPORT)
			return 0;
		if (ret)
			return ret;
		ev->type = nlh->nlmsg_type == RTM_NEWADDR ? RTNL_EV_ADDR_NEW :
							    RTNL_EV_ADDR_DEL;
		ev->ip = addr.ip;
		return 1;
	}
	case RTM_NEWROUTE:
	case RTM_DELROUTE: {
		struct rtnl_route_info route;

		ret = rtnl_parse_route(nlh, &route);
		if (ret == -EAFNOSUPPORT)
			return 0;
		if (ret)
			return ret;
		ev->type = nlh->nlmsg_type == RTM_NEWROUTE ? RTNL_EV_ROUTE_NEW :
							     RTNL_EV_ROUTE_DEL;
		ev->ifindex = route.oif;
		ev->ip = route.dst;
		ev->has_gateway = route.has_gateway;
		ev->table = route.table;
		return 1;
	}
	default:
		return 0;
	}
}

/*
 * Sockets
 */

/*
 * Receives one datagram. Those that do not come from the kernel are dropped:
 * any local process may send to our port id, and what it sends must pass
 * neither for a reply nor for a notification.
 */
static int rtnl_recv(struct mnl_socket *nl, void *buf, size_t len)
{
	struct sockaddr_nl sa;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_name = &sa,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t ret;

	for (;;) {
		msg.msg_namelen = sizeof(sa);
		ret = recvmsg(mnl_socket_get_fd(nl), &msg, 0);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (msg.msg_namelen != sizeof(sa) || sa.nl_family != AF_NETLINK ||
		    sa.nl_pid != 0)
			continue;
		if (msg.msg_flags & MSG_TRUNC)
			return -EMSGSIZE;
		return (int)ret;
	}
}

/* The error an NLMSG_ERROR or NLMSG_DONE carries: 0 or -errno. */
static int rtnl_msg_error(const struct nlmsghdr *nlh)
{
	int err;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(err))
		return nlh->nlmsg_type == NLMSG_ERROR ? -EPROTO : 0;
	memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	if (err > 0 || err < -4095)
		return -EPROTO;
	return err;
}

/*
 * Sends one request and reads its whole reply: up to the ACK of a request,
 * which always asks for one, or up to NLMSG_DONE of a dump. Messages with
 * another sequence number are what is left of a request abandoned earlier
 * and are skipped. cb sees every other message; once it fails, the rest of
 * the reply is still read, to keep the socket in step, and its error is
 * returned. -EINTR means the dump was interrupted by a change and is
 * inconsistent.
 */
static int rtnl_talk(struct rtnl *rt, struct nlmsghdr *nlh, rtnl_msg_cb cb,
		     void *ctx)
{
	bool dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	bool interrupted = false;
	uint32_t seq;
	int ret = 0;

	seq = ++rt->seq;
	if (!seq)
		seq = ++rt->seq;
	nlh->nlmsg_seq = seq;
	if (!dump)
		nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(rt->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;

	for (;;) {
		const struct nlmsghdr *msg;
		int len, err;

		len = rtnl_recv(rt->nl, rt->buf, sizeof(rt->buf));
		if (len < 0)
			return len;
		for (msg = (const void *)rt->buf; mnl_nlmsg_ok(msg, len);
		     msg = mnl_nlmsg_next(msg, &len)) {
			if (msg->nlmsg_seq != seq || msg->nlmsg_pid != rt->portid)
				continue;
			if (msg->nlmsg_flags & NLM_F_DUMP_INTR)
				interrupted = true;
			switch (msg->nlmsg_type) {
			case NLMSG_NOOP:
			case NLMSG_OVERRUN:
				break;
			case NLMSG_ERROR:
				err = rtnl_msg_error(msg);
				return ret ? ret : err;
			case NLMSG_DONE:
				if (!dump)
					break;
				err = rtnl_msg_error(msg);
				if (!ret)
					ret = err;
				if (!ret && interrupted)
					ret = -EINTR;
				return ret;
			default:
				if (cb && !ret)
					ret = cb(msg, ctx);
				break;
			}
		}
	}
}

static struct nlmsghdr *rtnl_msg_start(void *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return nlh;
}

int rtnl_open(struct rtnl **out)
{
	struct rtnl *rt;
	int one = 1, ret = 0;

	*out = NULL;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rt->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!rt->nl) {
		ret = -errno;
		goto out;
	}
	if (mnl_socket_bind(rt->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	/* Errors need not echo our request back; older kernels lack this,
	 * which costs only bytes. */
	mnl_socket_setsockopt(rt->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	rt->portid = mnl_socket_get_portid(rt->nl);

out:
	if (ret)
		rtnl_close(rt);
	else
		*out = rt;
	return ret;
}

void rtnl_close(struct rtnl *rt)
{
	if (!rt)
		return;
	if (rt->nl)
		mnl_socket_close(rt->nl);
	free(rt);
}

/*
 * Links
 */

struct rtnl_link_ctx {
	struct rtnl_link *link;
	bool found;
};

static int rtnl_link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rtnl_link_ctx *c = data;
	int ret;

	if (nlh->nlmsg_type != RTM_NEWLINK || c->found)
		return 0;
	ret = rtnl_parse_link(nlh, c->link);
	if (!ret)
		c->found = true;
	return ret;
}

int rtnl_link_get(struct rtnl *rt, const char *name, struct rtnl_link *out)
{
	_Alignas(struct nlmsghdr) char buf[RTNL_REQ_SIZE];
	struct rtnl_link_ctx c = { .link = out };
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!name || !*name || strlen(name) >= IF_NAMESIZE)
		return -EINVAL;
	nlh = rtnl_msg_start(buf, RTM_GETLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	/* Statistics are most of a link message and we want none of them. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);

	ret = rtnl_talk(rt, nlh, rtnl_link_cb, &c);
	if (!ret && !c.found)
		ret = -ENODEV;
	if (ret)
		memset(out, 0, sizeof(*out));
	return ret;
}

int rtnl_link_set_mtu(struct rtnl *rt, uint32_t ifindex, uint32_t mtu)
{
	_Alignas(struct nlmsghdr) char buf[RTNL_REQ_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	if (!ifindex || ifindex > INT_MAX)
		return -EINVAL;
	nlh = rtnl_msg_start(buf, RTM_NEWLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	return rtnl_talk(rt, nlh, NULL, NULL);
}

/*
 * Dumps into a growing array
 */

struct rtnl_collect {
	uint32_t ifindex;
	int family;
	uint8_t protocol;       /* routes: RTPROT_UNSPEC for any */
	void *items;
	size_t n, cap, size;
};

static int rtnl_collect_push(struct rtnl_collect *c, const void *item)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		void *items;

		if (cap > SIZE_MAX / c->size)
			return -ENOMEM;
		items = realloc(c->items, cap * c->size);
		if (!items)
			return -ENOMEM;
		c->items = items;
		c->cap = cap;
	}
	memcpy((char *)c->items + c->n * c->size, item, c->size);
	c->n++;
	return 0;
}

/*
 * Runs a dump into c, again from the start when a concurrent change made it
 * inconsistent. On failure *out is NULL and *n is 0.
 */
static int rtnl_dump(struct rtnl *rt, struct nlmsghdr *nlh, rtnl_msg_cb cb,
		     struct rtnl_collect *c, void **out, size_t *n)
{
	int ret, tries = 0;

	do {
		c->n = 0;
		ret = rtnl_talk(rt, nlh, cb, c);
	} while (ret == -EINTR && ++tries < RTNL_DUMP_TRIES);

	if (ret) {
		free(c->items);
		*out = NULL;
		*n = 0;
	} else {
		*out = c->items;
		*n = c->n;
	}
	return ret;
}

/*
 * Addresses
 */

static int rtnl_check_ip(const struct wgd_ip *ip)
{
	if (!rtnl_family_ok(ip->family))
		return -EAFNOSUPPORT;
	if (ip->cidr > wgd_ip_bits(ip->family))
		return -EINVAL;
	return 0;
}

static int rtnl_addr_request(struct rtnl *rt, uint16_t type, uint16_t flags,
			     uint32_t ifindex, const struct wgd_ip *ip,
			     const struct ifa_cacheinfo *ci)
{
	_Alignas(struct nlmsghdr) char buf[RTNL_REQ_SIZE];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	size_t len;
	int ret;

	ret = rtnl_check_ip(ip);
	if (ret)
		return ret;
	if (!ifindex)
		return -EINVAL;
	len = wgd_ip_len(ip->family);

	nlh = rtnl_msg_start(buf, type, flags);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = ip->family;
	ifa->ifa_prefixlen = ip->cidr;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	/*
	 * Both, and equal, as ip(8) sends them: IPv4 matches IFA_LOCAL and
	 * would take a differing IFA_ADDRESS for a point-to-point peer.
	 */
	mnl_attr_put(nlh, IFA_LOCAL, len, ip->bytes);
	mnl_attr_put(nlh, IFA_ADDRESS, len, ip->bytes);
	if (ci)
		mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(*ci), ci);
	/*
	 * A host address needs no prefix route, and one made for an address
	 * with a lifetime outlives the address's deletion. Nor is duplicate
	 * detection of use on a tunnel, where WireGuard's allowed-IPs decide
	 * who holds an address; skipping it makes the address usable at once
	 * (the server's fe80::/64 too) on a device that is not NOARP.
	 */
	if (type == RTM_NEWADDR && ip->family == AF_INET6)
		mnl_attr_put_u32(nlh, IFA_FLAGS, ip->cidr == 128 ?
				 IFA_F_NOPREFIXROUTE | IFA_F_NODAD : IFA_F_NODAD);
	return rtnl_talk(rt, nlh, NULL, NULL);
}

int rtnl_addr_add(struct rtnl *rt, uint32_t ifindex, const struct wgd_ip *ip,
		  uint32_t valid_lft, uint32_t preferred_lft)
{
	struct ifa_cacheinfo ci = {
		.ifa_prefered = preferred_lft,
		.ifa_valid = valid_lft,
	};

	/* NLM_F_REPLACE updates the lifetimes of an address already there. */
	return rtnl_addr_request(rt, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE,
				 ifindex, ip, &ci);
}

int rtnl_addr_del(struct rtnl *rt, uint32_t ifindex, const struct wgd_ip *ip)
{
	int ret = rtnl_addr_request(rt, RTM_DELADDR, 0, ifindex, ip, NULL);

	if (ret == -EADDRNOTAVAIL || ret == -ENOENT || ret == -ESRCH)
		ret = 0;
	return ret;
}

static int rtnl_addr_list_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rtnl_collect *c = data;
	struct rtnl_addr addr;
	uint32_t ifindex;
	int ret;

	if (nlh->nlmsg_type != RTM_NEWADDR)
		return 0;
	ret = rtnl_parse_addr(nlh, &addr, &ifindex);
	if (ret == -EAFNOSUPPORT)
		return 0;
	if (ret)
		return ret;
	if (ifindex != c->ifindex)
		return 0;
	if (c->family != AF_UNSPEC && addr.ip.family != c->family)
		return 0;
	return rtnl_collect_push(c, &addr);
}

int rtnl_addr_list(struct rtnl *rt, uint32_t ifindex, int family,
		   struct rtnl_addr **out, size_t *n)
{
	_Alignas(struct nlmsghdr) char buf[RTNL_REQ_SIZE];
	struct rtnl_collect c = {
		.ifindex = ifindex,
		.family = family,
		.size = sizeof(struct rtnl_addr),
	};
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	void *items;
	int ret;

	*out = NULL;
	*n = 0;
	if (family != AF_UNSPEC && !rtnl_family_ok(family))
		return -EAFNOSUPPORT;
	nlh = rtnl_msg_start(buf, RTM_GETADDR, NLM_F_DUMP);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)family;
	ifa->ifa_index = ifindex;

	ret = rtnl_dump(rt, nlh, rtnl_addr_list_cb, &c, &items, n);
	*out = items;
	return ret;
}

/*
 * Routes
 */

static int rtnl_route_request(struct rtnl *rt, uint16_t type, uint16_t flags,
			      uint32_t ifindex, const struct wgd_ip *dst, uint8_t protocol)
{
	_Alignas(struct nlmsghdr) char buf[RTNL_REQ_SIZE];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	int ret;

	ret = rtnl_check_ip(dst);
	if (ret)
		return ret;
	if (!ifindex)
		return -EINVAL;

	nlh = rtnl_msg_start(buf, type, flags);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = dst->family;
	rtm->rtm_dst_len = dst->cidr;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_type = RTN_UNICAST;
	rtm->rtm_protocol = protocol;
	/* Deleting: for IPv4, any scope. Both families then match by prefix,
	 * device and, unless it is RTPROT_UNSPEC, protocol. */
	rtm->rtm_scope = type == RTM_NEWROUTE ? RT_SCOPE_LINK : RT_SCOPE_NOWHERE;
	mnl_attr_put(nlh, RTA_DST, wgd_ip_len(dst->family), dst->bytes);
	mnl_attr_put_u32(nlh, RTA_OIF, ifindex);
	return rtnl_talk(rt, nlh, NULL, NULL);
}

int rtnl_route_add(struct rtnl *rt, uint32_t ifindex, const struct wgd_ip *dst,
		   uint8_t protocol)
{
	if (protocol == RTPROT_UNSPEC)
		return -EINVAL;
	return rtnl_route_request(rt, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, ifindex, dst,
				  protocol);
}

int rtnl_route_del(struct rtnl *rt, uint32_t ifindex, const struct wgd_ip *dst,
		   uint8_t protocol)
{
	int ret = rtnl_route_request(rt, RTM_DELROUTE, 0, ifindex, dst, protocol);

	if (ret == -ESRCH || ret == -ENOENT || ret == -EADDRNOTAVAIL)
		ret = 0;
	return ret;
}

static int rtnl_route_list_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rtnl_collect *c = data;
	struct rtnl_route_info route;
	int ret;

	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return 0;
	ret = rtnl_parse_route(nlh, &route);
	if (ret == -EAFNOSUPPORT)
		return 0;
	if (ret)
		return ret;
	if (route.oif != c->ifindex || route.table != RT_TABLE_MAIN ||
	    route.type != RTN_UNICAST || route.has_gateway)
		return 0;
	if (c->family != AF_UNSPEC && route.dst.family != c->family)
		return 0;
	if (c->protocol != RTPROT_UNSPEC && route.protocol != c->protocol)
		return 0;
	return rtnl_collect_push(c, &route.dst);
}

int rtnl_route_list(struct rtnl *rt, uint32_t ifindex, int family,
		    struct wgd_ip **out, size_t *n)
{
	return rtnl_route_list_proto(rt, ifindex, family, RTPROT_UNSPEC, out, n);
}

int rtnl_route_list_proto(struct rtnl *rt, uint32_t ifindex, int family, uint8_t protocol,
			  struct wgd_ip **out, size_t *n)
{
	_Alignas(struct nlmsghdr) char buf[RTNL_REQ_SIZE];
	struct rtnl_collect c = {
		.ifindex = ifindex,
		.family = family,
		.protocol = protocol,
		.size = sizeof(struct wgd_ip),
	};
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	void *items;
	int ret;

	*out = NULL;
	*n = 0;
	if (family != AF_UNSPEC && !rtnl_family_ok(family))
		return -EAFNOSUPPORT;
	nlh = rtnl_msg_start(buf, RTM_GETROUTE, NLM_F_DUMP);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)family;

	ret = rtnl_dump(rt, nlh, rtnl_route_list_cb, &c, &items, n);
	*out = items;
	return ret;
}

/*
 * Monitor
 */

int rtnl_monitor_open(struct rtnl_monitor **out, unsigned groups)
{
	struct rtnl_monitor *m;
	int rcvbuf = RTNL_MONITOR_RCVBUF, ret = 0;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!m->nl) {
		ret = -errno;
		goto out;
	}
	/* Best effort: the kernel caps it at net.core.rmem_max, and an
	 * overrun is reported all the same. */
	setsockopt(mnl_socket_get_fd(m->nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		   sizeof(rcvbuf));
	if (mnl_socket_bind(m->nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}

out:
	if (ret)
		rtnl_monitor_close(m);
	else
		*out = m;
	return ret;
}

void rtnl_monitor_close(struct rtnl_monitor *m)
{
	if (!m)
		return;
	if (m->nl)
		mnl_socket_close(m->nl);
	free(m);
}

int rtnl_monitor_fd(const struct rtnl_monitor *m)
{
	return mnl_socket_get_fd(m->nl);
}

int rtnl_monitor_read(struct rtnl_monitor *m,
		      void (*cb)(const struct rtnl_event *ev, void *ctx), void *ctx)
{
	struct rtnl_event ev;
	int i;

	/*
	 * Bounded, so that a host changing its routes without pause cannot
	 * hold the caller here; the socket stays readable for its next poll.
	 */
	for (i = 0; i < RTNL_MONITOR_BATCH; i++) {
		const struct nlmsghdr *nlh;
		int len;

		len = rtnl_recv(m->nl, m->buf, sizeof(m->buf));
		if (len == -EAGAIN || len == -EWOULDBLOCK)
			return 0;
		/*
		 * The kernel dropped notifications for want of buffer space,
		 * or one did not fit ours: either way something was missed.
		 * The socket works on, so report it and go on reading.
		 */
		if (len == -ENOBUFS || len == -EMSGSIZE) {
			memset(&ev, 0, sizeof(ev));
			ev.type = RTNL_EV_OVERRUN;
			cb(&ev, ctx);
			continue;
		}
		if (len < 0)
			return len;
		for (nlh = (const void *)m->buf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			/* A malformed notification is skipped; there is
			 * nobody to answer and the next ones may be fine. */
			if (rtnl_parse_event(nlh, &ev) > 0)
				cb(&ev, ctx);
		}
	}
	return 0;
}
