// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/time_types.h>
#include <sodium.h>

#include "wgctl-ops.h"
#include "wgdev-genl.h"

/* The highest allowed-IP attribute we know, WGALLOWEDIP_A_FLAGS included. */
#define ALLOWEDIP_A_KNOWN_MAX WGALLOWEDIP_A_FLAGS

/* How often a dump interrupted by a concurrent change is started over. */
#define GENL_DUMP_TRIES 16

struct genl_conn {
	struct mnl_socket *nl;   /* NULL after a reset, reopened on use */
	uint32_t portid;
	uint32_t seq;
	uint16_t family_id;
	char ifname[IF_NAMESIZE];
	void *buf;               /* GENL_RECV_SIZE bytes, for requests too */
	const struct genl_io *io;   /* set by tests instead of a socket */
	void *io_ctx;
};

/* ---- pure message building and parsing ---- */

static bool ifname_ok(const char *ifname)
{
	size_t len = strnlen(ifname, IF_NAMESIZE);

	return len > 0 && len < IF_NAMESIZE;
}

/*
 * Nest lengths are 16 bits, so never build past what a nest can describe,
 * whatever the buffer offers.
 */
static size_t cap_len(size_t len)
{
	return len > UINT16_MAX ? UINT16_MAX & ~(size_t)3 : len;
}

static struct nlmsghdr *put_headers(void *buf, size_t len, uint16_t type,
				    uint16_t flags, uint32_t seq, uint8_t cmd,
				    uint8_t version)
{
	struct genlmsghdr *genl;
	struct nlmsghdr *nlh;

	if (len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*genl)))
		return NULL;
	/*
	 * libmnl leaves attribute padding as it finds it; zero it so no stale
	 * bytes go to the kernel and the output is reproducible.
	 */
	memset(buf, 0, len);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

size_t genl_build_get_family(void *buf, size_t len, uint32_t seq, const char *name)
{
	struct nlmsghdr *nlh;

	len = cap_len(len);
	nlh = put_headers(buf, len, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq,
			  CTRL_CMD_GETFAMILY, 1);
	if (!nlh || !mnl_attr_put_strz_check(nlh, len, CTRL_ATTR_FAMILY_NAME, name))
		return 0;
	return nlh->nlmsg_len;
}

size_t genl_build_get_device(void *buf, size_t len, uint16_t family_id,
			     uint32_t seq, const char *ifname)
{
	struct nlmsghdr *nlh;

	if (!ifname_ok(ifname))
		return 0;
	len = cap_len(len);
	nlh = put_headers(buf, len, family_id,
			  NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, seq,
			  WG_CMD_GET_DEVICE, WG_GENL_VERSION);
	if (!nlh || !mnl_attr_put_strz_check(nlh, len, WGDEVICE_A_IFNAME, ifname))
		return 0;
	return nlh->nlmsg_len;
}

static bool put_allowedip(struct nlmsghdr *nlh, size_t len,
			  const struct genl_allowedip *e)
{
	struct nlattr *nest = mnl_attr_nest_start_check(nlh, len, 0);

	if (!nest)
		return false;
	if (!mnl_attr_put_u16_check(nlh, len, WGALLOWEDIP_A_FAMILY, e->ip.family) ||
	    !mnl_attr_put_check(nlh, len, WGALLOWEDIP_A_IPADDR,
				wgd_ip_len(e->ip.family), e->ip.bytes) ||
	    !mnl_attr_put_u8_check(nlh, len, WGALLOWEDIP_A_CIDR_MASK, e->ip.cidr) ||
	    (e->flags &&
	     !mnl_attr_put_u32_check(nlh, len, WGALLOWEDIP_A_FLAGS, e->flags))) {
		mnl_attr_nest_cancel(nlh, nest);
		return false;
	}
	mnl_attr_nest_end(nlh, nest);
	return true;
}

int genl_build_set_allowedips(void *buf, size_t len, uint16_t family_id,
			      uint32_t seq, const char *ifname,
			      const uint8_t pubkey[WG_KEY_LEN], uint32_t peer_flags,
			      const struct genl_allowedip *ips, size_t n, size_t *pos)
{
	struct nlattr *peers, *peer, *aips;
	struct nlmsghdr *nlh;
	size_t start = *pos;

	if (!ifname_ok(ifname) || start > n)
		return -EINVAL;
	for (size_t i = start; i < n; ++i) {
		if ((ips[i].ip.family != AF_INET && ips[i].ip.family != AF_INET6) ||
		    ips[i].ip.cidr > wgd_ip_bits(ips[i].ip.family))
			return -EINVAL;
	}
	/* Only the first message may clear the list; later ones extend it. */
	if (start > 0)
		peer_flags &= ~(uint32_t)WGPEER_F_REPLACE_ALLOWEDIPS;

	len = cap_len(len);
	nlh = put_headers(buf, len, family_id, NLM_F_REQUEST | NLM_F_ACK, seq,
			  WG_CMD_SET_DEVICE, WG_GENL_VERSION);
	if (!nlh || !mnl_attr_put_strz_check(nlh, len, WGDEVICE_A_IFNAME, ifname))
		return -EMSGSIZE;
	peers = mnl_attr_nest_start_check(nlh, len, WGDEVICE_A_PEERS);
	if (!peers)
		return -EMSGSIZE;
	peer = mnl_attr_nest_start_check(nlh, len, 0);
	if (!peer ||
	    !mnl_attr_put_check(nlh, len, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, pubkey) ||
	    !mnl_attr_put_u32_check(nlh, len, WGPEER_A_FLAGS, peer_flags))
		return -EMSGSIZE;
	if (start < n) {
		aips = mnl_attr_nest_start_check(nlh, len, WGPEER_A_ALLOWEDIPS);
		if (!aips)
			return -EMSGSIZE;
		while (*pos < n && put_allowedip(nlh, len, &ips[*pos]))
			++*pos;
		if (*pos == start)
			return -EMSGSIZE;
		mnl_attr_nest_end(nlh, aips);
	}
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	return (int)nlh->nlmsg_len;
}

/* The WG_CMD_SET_DEVICE headers, the device's name and an open WGDEVICE_A_PEERS. */
static struct nlmsghdr *put_set_device(void *buf, size_t len, uint16_t family_id,
				       uint32_t seq, const char *ifname, struct nlattr **peers)
{
	struct nlmsghdr *nlh = put_headers(buf, len, family_id, NLM_F_REQUEST | NLM_F_ACK,
					   seq, WG_CMD_SET_DEVICE, WG_GENL_VERSION);

	if (!nlh || !mnl_attr_put_strz_check(nlh, len, WGDEVICE_A_IFNAME, ifname))
		return NULL;
	*peers = mnl_attr_nest_start_check(nlh, len, WGDEVICE_A_PEERS);
	return *peers ? nlh : NULL;
}

static bool put_peer_remove(struct nlmsghdr *nlh, size_t len, const uint8_t pubkey[WG_KEY_LEN])
{
	struct nlattr *peer = mnl_attr_nest_start_check(nlh, len, 0);

	if (!peer ||
	    !mnl_attr_put_check(nlh, len, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, pubkey) ||
	    !mnl_attr_put_u32_check(nlh, len, WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME))
		return false;
	mnl_attr_nest_end(nlh, peer);
	return true;
}

union endpoint_sa {
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

/* The kernel's endpoint: a sockaddr_in or sockaddr_in6 of exactly its size. */
static int endpoint_sockaddr(const struct wgd_endpoint *ep, union endpoint_sa *sa, size_t *len)
{
	memset(sa, 0, sizeof(*sa));
	if (!ep->port)
		return -EINVAL;
	switch (ep->addr.family) {
	case AF_INET:
		sa->sin.sin_family = AF_INET;
		sa->sin.sin_port = htons(ep->port);
		memcpy(&sa->sin.sin_addr, ep->addr.bytes, 4);
		*len = sizeof(sa->sin);
		return 0;
	case AF_INET6:
		sa->sin6.sin6_family = AF_INET6;
		sa->sin6.sin6_port = htons(ep->port);
		memcpy(&sa->sin6.sin6_addr, ep->addr.bytes, 16);
		*len = sizeof(sa->sin6);
		return 0;
	default:
		return -EINVAL;
	}
}

int genl_build_add_peer(void *buf, size_t len, uint16_t family_id, uint32_t seq,
			const char *ifname, const uint8_t pubkey[WG_KEY_LEN],
			const struct wgd_endpoint *endpoint, uint16_t keepalive_s)
{
	struct nlattr *peers, *peer;
	union endpoint_sa sa;
	struct nlmsghdr *nlh;
	size_t sa_len = 0;

	if (!ifname_ok(ifname))
		return -EINVAL;
	if (endpoint && endpoint->addr.family && endpoint_sockaddr(endpoint, &sa, &sa_len))
		return -EINVAL;
	len = cap_len(len);
	nlh = put_set_device(buf, len, family_id, seq, ifname, &peers);
	if (!nlh || !put_peer_remove(nlh, len, pubkey))
		return -EMSGSIZE;
	peer = mnl_attr_nest_start_check(nlh, len, 0);
	if (!peer ||
	    !mnl_attr_put_check(nlh, len, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, pubkey) ||
	    !mnl_attr_put_u32_check(nlh, len, WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS) ||
	    (sa_len && !mnl_attr_put_check(nlh, len, WGPEER_A_ENDPOINT, sa_len, &sa)) ||
	    !mnl_attr_put_u16_check(nlh, len, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
				    keepalive_s))
		return -EMSGSIZE;
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	return (int)nlh->nlmsg_len;
}

int genl_build_remove_peer(void *buf, size_t len, uint16_t family_id, uint32_t seq,
			   const char *ifname, const uint8_t pubkey[WG_KEY_LEN])
{
	struct nlattr *peers;
	struct nlmsghdr *nlh;

	if (!ifname_ok(ifname))
		return -EINVAL;
	len = cap_len(len);
	nlh = put_set_device(buf, len, family_id, seq, ifname, &peers);
	if (!nlh || !put_peer_remove(nlh, len, pubkey))
		return -EMSGSIZE;
	mnl_attr_nest_end(nlh, peers);
	return (int)nlh->nlmsg_len;
}

typedef int (*attr_cb_t)(const struct nlattr *attr, void *data);

/*
 * Hands each attribute in [start, start + len) to cb. Unlike
 * mnl_attr_parse(), bytes left over that do not form a whole attribute are
 * an error rather than silently ignored.
 */
static int attrs_walk(const void *start, size_t len, attr_cb_t cb, void *data)
{
	const struct nlattr *attr = start;
	int rem, ret;

	if (len > INT_MAX)
		return -EPROTO;
	rem = (int)len;
	while (mnl_attr_ok(attr, rem)) {
		ret = cb(attr, data);
		if (ret)
			return ret;
		rem -= (int)MNL_ALIGN(attr->nla_len);
		attr = mnl_attr_next(attr);
	}
	return rem > 0 ? -EPROTO : 0;
}

static int nest_walk(const struct nlattr *nest, attr_cb_t cb, void *data)
{
	if (mnl_attr_validate(nest, MNL_TYPE_NESTED) < 0)
		return -EPROTO;
	return attrs_walk(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest),
			  cb, data);
}

/* A fixed-size attribute: validated as its type and exactly len bytes. */
static bool attr_is(const struct nlattr *attr, enum mnl_attr_data_type type, size_t len)
{
	return mnl_attr_validate2(attr, type, len) == 0 &&
	       mnl_attr_get_payload_len(attr) == len;
}

struct aip_attrs {
	const struct nlattr *tb[ALLOWEDIP_A_KNOWN_MAX + 1];
};

static int allowedip_attr_cb(const struct nlattr *attr, void *data)
{
	struct aip_attrs *a = data;
	uint16_t type = mnl_attr_get_type(attr);
	bool ok;

	switch (type) {
	case WGALLOWEDIP_A_FAMILY:
		ok = attr_is(attr, MNL_TYPE_U16, sizeof(uint16_t));
		break;
	case WGALLOWEDIP_A_IPADDR:
		ok = attr_is(attr, MNL_TYPE_BINARY, 4) || attr_is(attr, MNL_TYPE_BINARY, 16);
		break;
	case WGALLOWEDIP_A_CIDR_MASK:
		ok = attr_is(attr, MNL_TYPE_U8, sizeof(uint8_t));
		break;
	case WGALLOWEDIP_A_FLAGS:
		ok = attr_is(attr, MNL_TYPE_U32, sizeof(uint32_t));
		break;
	default:
		return 0;
	}
	if (!ok)
		return -EPROTO;
	a->tb[type] = attr;
	return 0;
}

static int allowedip_cb(const struct nlattr *attr, void *data)
{
	struct wgdev_peer *peer = data;
	struct aip_attrs a = { 0 };
	struct wgd_ip ip = { 0 };
	int ret;

	ret = nest_walk(attr, allowedip_attr_cb, &a);
	if (ret)
		return ret;
	if (!a.tb[WGALLOWEDIP_A_FAMILY] || !a.tb[WGALLOWEDIP_A_IPADDR] ||
	    !a.tb[WGALLOWEDIP_A_CIDR_MASK])
		return -EPROTO;
	switch (mnl_attr_get_u16(a.tb[WGALLOWEDIP_A_FAMILY])) {
	case AF_INET:
		ip.family = AF_INET;
		break;
	case AF_INET6:
		ip.family = AF_INET6;
		break;
	default:
		return -EPROTO;
	}
	ip.cidr = mnl_attr_get_u8(a.tb[WGALLOWEDIP_A_CIDR_MASK]);
	if (mnl_attr_get_payload_len(a.tb[WGALLOWEDIP_A_IPADDR]) != wgd_ip_len(ip.family) ||
	    ip.cidr > wgd_ip_bits(ip.family))
		return -EPROTO;
	memcpy(ip.bytes, mnl_attr_get_payload(a.tb[WGALLOWEDIP_A_IPADDR]),
	       wgd_ip_len(ip.family));
	wgd_ip_mask(&ip);
	return wgdev_peer_add_allowedip(peer, &ip);
}

struct peer_attrs {
	const struct nlattr *tb[WGPEER_A_MAX + 1];
};

static int peer_attr_cb(const struct nlattr *attr, void *data)
{
	struct peer_attrs *p = data;
	uint16_t type = mnl_attr_get_type(attr);
	bool ok;

	switch (type) {
	case WGPEER_A_PUBLIC_KEY:
	case WGPEER_A_PRESHARED_KEY:
		ok = attr_is(attr, MNL_TYPE_BINARY, WG_KEY_LEN);
		break;
	case WGPEER_A_FLAGS:
	case WGPEER_A_PROTOCOL_VERSION:
		ok = attr_is(attr, MNL_TYPE_U32, sizeof(uint32_t));
		break;
	case WGPEER_A_ENDPOINT:
		ok = attr_is(attr, MNL_TYPE_BINARY, sizeof(struct sockaddr_in)) ||
		     attr_is(attr, MNL_TYPE_BINARY, sizeof(struct sockaddr_in6));
		break;
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		ok = attr_is(attr, MNL_TYPE_U16, sizeof(uint16_t));
		break;
	case WGPEER_A_LAST_HANDSHAKE_TIME:
		ok = attr_is(attr, MNL_TYPE_BINARY, sizeof(struct __kernel_timespec));
		break;
	case WGPEER_A_RX_BYTES:
	case WGPEER_A_TX_BYTES:
		ok = attr_is(attr, MNL_TYPE_U64, sizeof(uint64_t));
		break;
	case WGPEER_A_ALLOWEDIPS:
		ok = mnl_attr_validate(attr, MNL_TYPE_NESTED) == 0;
		break;
	default:
		return 0;
	}
	if (!ok)
		return -EPROTO;
	p->tb[type] = attr;
	return 0;
}

static int peer_set_endpoint(struct wgdev_peer *peer, const struct nlattr *attr)
{
	const void *payload = mnl_attr_get_payload(attr);
	size_t len = mnl_attr_get_payload_len(attr);
	sa_family_t family;

	memcpy(&family, payload, sizeof(family));
	if (!(family == AF_INET && len == sizeof(struct sockaddr_in)) &&
	    !(family == AF_INET6 && len == sizeof(struct sockaddr_in6)))
		return -EPROTO;
	memset(&peer->endpoint, 0, sizeof(peer->endpoint));
	memcpy(&peer->endpoint, payload, len);
	return 0;
}

static int peer_cb(const struct nlattr *attr, void *data)
{
	struct wgdev *dev = data;
	struct peer_attrs p = { 0 };
	struct wgdev_peer *peer;
	const uint8_t *key;
	int ret;

	ret = nest_walk(attr, peer_attr_cb, &p);
	if (ret)
		return ret;
	if (!p.tb[WGPEER_A_PUBLIC_KEY])
		return -EPROTO;
	key = mnl_attr_get_payload(p.tb[WGPEER_A_PUBLIC_KEY]);

	/*
	 * A peer whose allowed-IPs overflowed one dump message is repeated at
	 * the start of the next with only its key and the rest of the list.
	 */
	if (dev->n_peers && !memcmp(dev->peers[dev->n_peers - 1].pubkey, key, WG_KEY_LEN)) {
		peer = &dev->peers[dev->n_peers - 1];
	} else {
		ret = wgdev_add_peer(dev, key, &peer);
		if (ret)
			return ret;
	}
	if (p.tb[WGPEER_A_ENDPOINT]) {
		ret = peer_set_endpoint(peer, p.tb[WGPEER_A_ENDPOINT]);
		if (ret)
			return ret;
	}
	if (p.tb[WGPEER_A_LAST_HANDSHAKE_TIME]) {
		struct __kernel_timespec ts;

		memcpy(&ts, mnl_attr_get_payload(p.tb[WGPEER_A_LAST_HANDSHAKE_TIME]),
		       sizeof(ts));
		if (ts.tv_nsec < 0 || ts.tv_nsec > 999999999)
			return -EPROTO;
		peer->last_handshake_sec = ts.tv_sec;
		peer->last_handshake_nsec = (uint32_t)ts.tv_nsec;
	}
	if (p.tb[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL])
		peer->keepalive_s = mnl_attr_get_u16(p.tb[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]);
	if (p.tb[WGPEER_A_RX_BYTES])
		peer->rx_bytes = mnl_attr_get_u64(p.tb[WGPEER_A_RX_BYTES]);
	if (p.tb[WGPEER_A_TX_BYTES])
		peer->tx_bytes = mnl_attr_get_u64(p.tb[WGPEER_A_TX_BYTES]);
	if (p.tb[WGPEER_A_ALLOWEDIPS])
		return nest_walk(p.tb[WGPEER_A_ALLOWEDIPS], allowedip_cb, peer);
	return 0;
}

static int device_attr_cb(const struct nlattr *attr, void *data)
{
	struct wgdev *dev = data;
	const char *name;

	switch (mnl_attr_get_type(attr)) {
	case WGDEVICE_A_IFINDEX:
		if (!attr_is(attr, MNL_TYPE_U32, sizeof(uint32_t)))
			return -EPROTO;
		dev->ifindex = mnl_attr_get_u32(attr);
		return 0;
	case WGDEVICE_A_IFNAME:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
			return -EPROTO;
		name = mnl_attr_get_str(attr);
		if (strnlen(name, mnl_attr_get_payload_len(attr)) >= IF_NAMESIZE)
			return -EPROTO;
		memset(dev->name, 0, sizeof(dev->name));
		strcpy(dev->name, name);
		return 0;
	case WGDEVICE_A_PRIVATE_KEY:
		/* Checked, never kept. */
		return attr_is(attr, MNL_TYPE_BINARY, WG_KEY_LEN) ? 0 : -EPROTO;
	case WGDEVICE_A_PUBLIC_KEY:
		if (!attr_is(attr, MNL_TYPE_BINARY, WG_KEY_LEN))
			return -EPROTO;
		memcpy(dev->pubkey, mnl_attr_get_payload(attr), WG_KEY_LEN);
		dev->has_pubkey = true;
		return 0;
	case WGDEVICE_A_LISTEN_PORT:
		if (!attr_is(attr, MNL_TYPE_U16, sizeof(uint16_t)))
			return -EPROTO;
		dev->listen_port = mnl_attr_get_u16(attr);
		return 0;
	case WGDEVICE_A_FWMARK:
		return attr_is(attr, MNL_TYPE_U32, sizeof(uint32_t)) ? 0 : -EPROTO;
	case WGDEVICE_A_PEERS:
		return nest_walk(attr, peer_cb, dev);
	default:
		return 0;
	}
}

/* The attributes after the generic netlink header, or -EPROTO. */
static int genl_attrs(const struct nlmsghdr *nlh, uint8_t cmd, const void **start,
		      size_t *len)
{
	const size_t hdr = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct genlmsghdr));
	const struct genlmsghdr *genl;

	if (nlh->nlmsg_len < hdr)
		return -EPROTO;
	genl = mnl_nlmsg_get_payload(nlh);
	if (genl->cmd != cmd)
		return -EPROTO;
	*start = (const char *)nlh + hdr;
	*len = nlh->nlmsg_len - hdr;
	return 0;
}

int genl_parse_device_msg(const struct nlmsghdr *nlh, struct wgdev *dev)
{
	const void *start;
	size_t len;
	int ret;

	ret = genl_attrs(nlh, WG_CMD_GET_DEVICE, &start, &len);
	if (ret)
		return ret;
	return attrs_walk(start, len, device_attr_cb, dev);
}

/* The status an NLMSG_ERROR carries: 0 for an ACK, -errno, or -EPROTO. */
static int error_status(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*err) || err->error > 0 ||
	    err->error == INT_MIN)
		return -EPROTO;
	return err->error;
}

/* NLMSG_DONE may carry a negative status of its own. */
static int done_status(const struct nlmsghdr *nlh)
{
	int status;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(status))
		return 0;
	memcpy(&status, mnl_nlmsg_get_payload(nlh), sizeof(status));
	return status < 0 && status != INT_MIN ? status : 0;
}

/*
 * Whether a whole message starts at nlh with rem bytes left. Not
 * mnl_nlmsg_ok(): it compares nlmsg_len as an int, so a length past INT_MAX
 * passes for a short one and mnl_nlmsg_next() then jumps far outside buf.
 */
static bool msg_fits(const struct nlmsghdr *nlh, int rem)
{
	return rem >= (int)sizeof(*nlh) && nlh->nlmsg_len >= sizeof(*nlh) &&
	       nlh->nlmsg_len <= (unsigned)rem;
}

/*
 * Walks the netlink messages in buf that answer request seq. For each
 * message that is neither NOOP, DONE nor ERROR, msg_cb decides. Returns
 * what DONE or ERROR says, 1 when the buffer ended without either, or the
 * first error.
 */
static int msgs_walk(const void *buf, size_t len, uint32_t seq, uint32_t portid,
		     int (*msg_cb)(const struct nlmsghdr *, void *), void *data)
{
	const struct nlmsghdr *nlh = buf;
	int rem, ret;

	if (len > INT_MAX)
		return -EPROTO;
	rem = (int)len;
	while (msg_fits(nlh, rem)) {
		if (nlh->nlmsg_seq != seq || !mnl_nlmsg_portid_ok(nlh, portid))
			return -EPROTO;
		/* The dump saw the device change; what we have mixes two states. */
		if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
			return -EINTR;
		switch (nlh->nlmsg_type) {
		case NLMSG_NOOP:
			break;
		case NLMSG_DONE:
			return done_status(nlh);
		case NLMSG_ERROR:
			return error_status(nlh);
		case NLMSG_OVERRUN:
			return -EPROTO;
		default:
			ret = msg_cb(nlh, data);
			if (ret)
				return ret;
		}
		nlh = mnl_nlmsg_next(nlh, &rem);
	}
	return rem > 0 ? -EPROTO : 1;
}

struct dump_state {
	uint16_t family_id;
	struct wgdev *dev;
};

static int dump_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_state *st = data;

	if (nlh->nlmsg_type != st->family_id)
		return -EPROTO;
	return genl_parse_device_msg(nlh, st->dev);
}

int genl_parse_dump(const void *buf, size_t len, uint16_t family_id,
		    uint32_t seq, uint32_t portid, struct wgdev *dev)
{
	struct dump_state st = { .family_id = family_id, .dev = dev };

	return msgs_walk(buf, len, seq, portid, dump_msg_cb, &st);
}

static int family_attr_cb(const struct nlattr *attr, void *data)
{
	uint16_t *family_id = data;

	if (mnl_attr_get_type(attr) != CTRL_ATTR_FAMILY_ID)
		return 0;
	if (!attr_is(attr, MNL_TYPE_U16, sizeof(uint16_t)))
		return -EPROTO;
	*family_id = mnl_attr_get_u16(attr);
	return 0;
}

static int family_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	const void *start;
	size_t len;
	int ret;

	if (nlh->nlmsg_type != GENL_ID_CTRL)
		return -EPROTO;
	ret = genl_attrs(nlh, CTRL_CMD_NEWFAMILY, &start, &len);
	if (ret)
		return ret;
	return attrs_walk(start, len, family_attr_cb, data);
}

int genl_parse_family_reply(const void *buf, size_t len, uint32_t seq,
			    uint32_t portid, uint16_t *family_id)
{
	int ret = msgs_walk(buf, len, seq, portid, family_msg_cb, family_id);

	/* An ACK without the family would leave us with no id to use. */
	if (ret == 0 && *family_id == 0)
		return -EPROTO;
	return ret;
}

static int unexpected_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return -EPROTO;
}

int genl_parse_ack(const void *buf, size_t len, uint32_t seq, uint32_t portid)
{
	return msgs_walk(buf, len, seq, portid, unexpected_msg_cb, NULL);
}

/* ---- socket I/O ---- */

static void sock_reset(struct genl_conn *gc)
{
	if (gc->io) {
		gc->io->reset(gc->io_ctx);
		return;
	}
	if (gc->nl)
		mnl_socket_close(gc->nl);
	gc->nl = NULL;
}

static int sock_ensure(struct genl_conn *gc)
{
	struct mnl_socket *nl;
	int ret;

	if (gc->nl || gc->io)
		return 0;
	nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		mnl_socket_close(nl);
		return ret;
	}
	gc->nl = nl;
	gc->portid = mnl_socket_get_portid(nl);
	return 0;
}

static int sock_send(struct genl_conn *gc, size_t len)
{
	ssize_t n;

	if (gc->io)
		return gc->io->send(gc->io_ctx, gc->buf, len);
	n = mnl_socket_sendto(gc->nl, gc->buf, len);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int sock_recv(struct genl_conn *gc, size_t *len)
{
	ssize_t n;

	if (gc->io) {
		long r = gc->io->recv(gc->io_ctx, gc->buf, GENL_RECV_SIZE);

		if (r < 0)
			return (int)r;
		*len = (size_t)r;
		return 0;
	}
	do {
		n = mnl_socket_recvfrom(gc->nl, gc->buf, GENL_RECV_SIZE);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	*len = (size_t)n;
	return 0;
}

/*
 * Sends the request of length len already in gc->buf, then feeds replies
 * to parse until it stops asking for more. Any failure resets the socket:
 * a half-read dump would otherwise block the next one with -EBUSY.
 */
static int sock_transact(struct genl_conn *gc, size_t len, uint32_t seq,
			 int (*parse)(struct genl_conn *, size_t, uint32_t, void *),
			 void *data)
{
	int ret;

	ret = sock_send(gc, len);
	while (!ret) {
		ret = sock_recv(gc, &len);
		if (!ret)
			ret = parse(gc, len, seq, data);
		if (ret == 1)
			ret = 0;
		else
			break;
	}
	if (ret)
		sock_reset(gc);
	return ret;
}

static int parse_family_io(struct genl_conn *gc, size_t len, uint32_t seq, void *data)
{
	return genl_parse_family_reply(gc->buf, len, seq, gc->portid, data);
}

static int parse_dump_io(struct genl_conn *gc, size_t len, uint32_t seq, void *data)
{
	int ret = genl_parse_dump(gc->buf, len, gc->family_id, seq, gc->portid, data);

	/* The first message carries the private key. */
	sodium_memzero(gc->buf, len);
	return ret;
}

static int parse_ack_io(struct genl_conn *gc, size_t len, uint32_t seq, void *data)
{
	(void)data;
	return genl_parse_ack(gc->buf, len, seq, gc->portid);
}

static int resolve_family(struct genl_conn *gc)
{
	uint32_t seq = ++gc->seq;
	uint16_t id = 0;
	size_t len;
	int ret;

	len = genl_build_get_family(gc->buf, GENL_RECV_SIZE, seq, WG_GENL_NAME);
	if (!len)
		return -EINVAL;
	ret = sock_transact(gc, len, seq, parse_family_io, &id);
	if (ret)
		return ret;
	gc->family_id = id;
	return 0;
}

int genl_conn_get_device(struct genl_conn *gc, struct wgdev **out)
{
	struct wgdev *dev;
	int ret = -EAGAIN;

	*out = NULL;
	for (int tries = 0; tries < GENL_DUMP_TRIES; ++tries) {
		uint32_t seq = ++gc->seq;
		size_t len;

		ret = sock_ensure(gc);
		if (ret)
			return ret;
		len = genl_build_get_device(gc->buf, GENL_RECV_SIZE, gc->family_id,
					    seq, gc->ifname);
		if (!len)
			return -EINVAL;
		dev = calloc(1, sizeof(*dev));
		if (!dev)
			return -ENOMEM;
		ret = sock_transact(gc, len, seq, parse_dump_io, dev);
		if (!ret) {
			*out = dev;
			return 0;
		}
		wgdev_free(dev);
		if (ret != -EINTR)
			break;
	}
	/* Not a WireGuard device (any more): report it as absent. */
	if (ret == -EOPNOTSUPP)
		ret = -ENODEV;
	/* Changing faster than we can read it; not a signal to the caller. */
	if (ret == -EINTR)
		ret = -EAGAIN;
	return ret;
}

int genl_conn_open_io(struct genl_conn **out, const char *ifname,
		      const struct genl_io *io, void *io_ctx)
{
	struct genl_conn *gc;
	struct wgdev *dev = NULL;
	int ret;

	*out = NULL;
	if (!ifname_ok(ifname))
		return -EINVAL;
	gc = calloc(1, sizeof(*gc));
	if (!gc)
		return -ENOMEM;
	strcpy(gc->ifname, ifname);
	gc->io = io;
	gc->io_ctx = io_ctx;
	gc->buf = malloc(GENL_RECV_SIZE);
	ret = gc->buf ? sock_ensure(gc) : -ENOMEM;
	if (ret)
		goto out;
	ret = resolve_family(gc);
	/* No such family: this kernel has no WireGuard at all. */
	if (ret == -ENOENT)
		ret = -ENODEV;
	if (ret)
		goto out;
	ret = genl_conn_get_device(gc, &dev);
	wgdev_free(dev);
out:
	if (ret) {
		genl_conn_close(gc);
		return ret;
	}
	*out = gc;
	return 0;
}

int genl_conn_open(struct genl_conn **out, const char *ifname)
{
	return genl_conn_open_io(out, ifname, NULL, NULL);
}

void genl_conn_close(struct genl_conn *gc)
{
	if (!gc)
		return;
	sock_reset(gc);
	free(gc->buf);
	free(gc);
}

/*
 * Sends ips for one peer in as many messages as needed, each acknowledged
 * before the next. *first_failed tells whether the first message was the
 * one refused, when nothing had been applied yet.
 */
static int send_set(struct genl_conn *gc, const uint8_t pubkey[WG_KEY_LEN],
		    uint32_t peer_flags, const struct genl_allowedip *ips, size_t n,
		    bool *first_failed)
{
	size_t pos = 0;
	int ret;

	*first_failed = false;
	do {
		uint32_t seq = ++gc->seq;
		bool first = pos == 0;
		int len;

		ret = sock_ensure(gc);
		if (ret)
			return ret;
		len = genl_build_set_allowedips(gc->buf, GENL_SET_MSG_MAX, gc->family_id,
						seq, gc->ifname, pubkey, peer_flags,
						ips, n, &pos);
		if (len < 0)
			return len;
		ret = sock_transact(gc, (size_t)len, seq, parse_ack_io, NULL);
		if (ret) {
			*first_failed = first;
			return ret;
		}
	} while (pos < n);
	return 0;
}

static struct genl_allowedip *to_genl_list(const struct wgd_ip *a, size_t n_a, uint32_t flags_a,
					   const struct wgd_ip *b, size_t n_b, uint32_t flags_b)
{
	struct genl_allowedip *list;
	size_t i;

	if (n_a > SIZE_MAX / sizeof(*list) - n_b)
		return NULL;
	list = calloc(n_a + n_b > 0 ? n_a + n_b : 1, sizeof(*list));
	if (!list)
		return NULL;
	for (i = 0; i < n_a; ++i)
		list[i] = (struct genl_allowedip){ .ip = a[i], .flags = flags_a };
	for (i = 0; i < n_b; ++i)
		list[n_a + i] = (struct genl_allowedip){ .ip = b[i], .flags = flags_b };
	return list;
}

/*
 * Removals go first, flagged WGALLOWEDIP_F_REMOVE_ME, in the first message:
 * a kernel older than 6.16 rejects the unknown nested attribute with
 * -EINVAL before it applies anything (see wgctl.c). Every message carries
 * WGPEER_F_UPDATE_ONLY so that a peer removed meanwhile is not re-created;
 * the kernel then says nothing.
 */
int genl_conn_change(struct genl_conn *gc, const uint8_t pubkey[WG_KEY_LEN],
		     const struct wgd_ip *add, size_t n_add,
		     const struct wgd_ip *del, size_t n_del, bool *first_refused)
{
	struct genl_allowedip *list;
	int ret;

	*first_refused = false;
	list = to_genl_list(del, n_del, WGALLOWEDIP_F_REMOVE_ME, add, n_add, 0);
	if (!list)
		return -ENOMEM;
	ret = send_set(gc, pubkey, WGPEER_F_UPDATE_ONLY, list, n_del + n_add, first_refused);
	free(list);
	return ret;
}

/* The first message clears the list, the others extend it. */
int genl_conn_replace_allowedips(struct genl_conn *gc, const uint8_t pubkey[WG_KEY_LEN],
				 const struct wgd_ip *ips, size_t n)
{
	struct genl_allowedip *list = to_genl_list(ips, n, 0, NULL, 0, 0);
	bool first_failed;
	int ret;

	if (!list)
		return -ENOMEM;
	ret = send_set(gc, pubkey, WGPEER_F_UPDATE_ONLY | WGPEER_F_REPLACE_ALLOWEDIPS, list, n,
		       &first_failed);
	free(list);
	return ret;
}

/* One peer operation: its message, built into gc->buf, then the ACK. */
static int send_peer_op(struct genl_conn *gc, const uint8_t pubkey[WG_KEY_LEN],
			const struct wgd_endpoint *endpoint, uint16_t keepalive_s, bool add)
{
	uint32_t seq = ++gc->seq;
	int ret, len;

	ret = sock_ensure(gc);
	if (ret)
		return ret;
	if (add)
		len = genl_build_add_peer(gc->buf, GENL_SET_MSG_MAX, gc->family_id, seq,
					  gc->ifname, pubkey, endpoint, keepalive_s);
	else
		len = genl_build_remove_peer(gc->buf, GENL_SET_MSG_MAX, gc->family_id, seq,
					     gc->ifname, pubkey);
	if (len < 0)
		return len;
	return sock_transact(gc, (size_t)len, seq, parse_ack_io, NULL);
}

int genl_conn_add_peer(struct genl_conn *gc, const uint8_t pubkey[WG_KEY_LEN],
		       const struct wgd_endpoint *endpoint, uint16_t keepalive_s)
{
	return send_peer_op(gc, pubkey, endpoint, keepalive_s, true);
}

int genl_conn_remove_peer(struct genl_conn *gc, const uint8_t pubkey[WG_KEY_LEN])
{
	return send_peer_op(gc, pubkey, NULL, 0, false);
}

static void ops_close(void *conn)
{
	genl_conn_close(conn);
}

static int ops_get_device(void *conn, struct wgdev **out)
{
	return genl_conn_get_device(conn, out);
}

static int ops_change(void *conn, const uint8_t pubkey[WG_KEY_LEN],
		      const struct wgd_ip *add, size_t n_add,
		      const struct wgd_ip *del, size_t n_del, bool *first_refused)
{
	return genl_conn_change(conn, pubkey, add, n_add, del, n_del, first_refused);
}

static int ops_replace_allowedips(void *conn, const uint8_t pubkey[WG_KEY_LEN],
				  const struct wgd_ip *ips, size_t n)
{
	return genl_conn_replace_allowedips(conn, pubkey, ips, n);
}

static int ops_add_peer(void *conn, const uint8_t pubkey[WG_KEY_LEN],
			const struct wgd_endpoint *endpoint, uint16_t keepalive_s)
{
	return genl_conn_add_peer(conn, pubkey, endpoint, keepalive_s);
}

static int ops_remove_peer(void *conn, const uint8_t pubkey[WG_KEY_LEN])
{
	return genl_conn_remove_peer(conn, pubkey);
}

/*
 * The kernel takes a change in a few microseconds, so there is no batch:
 * changes go one after another.
 */
const struct wgctl_ops genl_ops = {
	.name = "kernel",
	.close = ops_close,
	.get_device = ops_get_device,
	.change = ops_change,
	.replace_allowedips = ops_replace_allowedips,
	.add_peer = ops_add_peer,
	.remove_peer = ops_remove_peer,
};
