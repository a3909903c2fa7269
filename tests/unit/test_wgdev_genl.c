// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <libmnl/libmnl.h>
#include <linux/time_types.h>

#include "../../common/wgctl-ops.h"
#include "../../common/wgctl.h"
#include "../../common/wgdev-genl.h"
#include "../../common/wgdev.h"
#include "test-addrs.h"

#define FAMILY 0x1a
#define PORTID 4242

static const uint8_t key_a[WG_KEY_LEN] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const uint8_t key_b[WG_KEY_LEN] = { [0] = 0xbb, [31] = 0xb1 };
static const uint8_t key_c[WG_KEY_LEN] = { [0] = 0xcc, [31] = 0xc1 };
static const uint8_t key_dev[WG_KEY_LEN] = { [0] = 0xdd, [31] = 0xd1 };

/* The public key bytes as they appear on the wire, for the expected arrays. */
#define KEY_A_BYTES \
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, \
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, \
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, \
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f

static void assert_bytes(const void *got, size_t got_len, const uint8_t *want, size_t want_len)
{
	ck_assert_uint_eq(got_len, want_len);
	for (size_t i = 0; i < want_len; ++i) {
		if (((const uint8_t *)got)[i] != want[i])
			ck_abort_msg("byte %zu: got 0x%02x, want 0x%02x", i,
				     ((const uint8_t *)got)[i], want[i]);
	}
}

/* ---- building ---- */

START_TEST(build_get_device)
{
	static const uint8_t want[] = {
		/* nlmsghdr: len 28, type = family, REQUEST|ACK|DUMP, seq, pid 0 */
		0x1c, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x05, 0x03,
		0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00,
		/* genlmsghdr: WG_CMD_GET_DEVICE, version 1 */
		0x00, 0x01, 0x00, 0x00,
		/* WGDEVICE_A_IFNAME "wg0\0" */
		0x08, 0x00, 0x02, 0x00, 'w', 'g', '0', 0x00,
	};
	uint32_t buf[64];
	size_t len;

	memset(buf, 0xaa, sizeof(buf));
	len = genl_build_get_device(buf, sizeof(buf), FAMILY, 0x01020304, "wg0");
	assert_bytes(buf, len, want, sizeof(want));

	/* Too small a buffer, or a bad name, builds nothing. */
	ck_assert_uint_eq(genl_build_get_device(buf, 27, FAMILY, 1, "wg0"), 0);
	ck_assert_uint_eq(genl_build_get_device(buf, sizeof(buf), FAMILY, 1, ""), 0);
	ck_assert_uint_eq(genl_build_get_device(buf, sizeof(buf), FAMILY, 1,
						"sixteen-chars-xx"), 0);
}
END_TEST

START_TEST(build_get_family)
{
	static const uint8_t want[] = {
		/* nlmsghdr: len 36, GENL_ID_CTRL, REQUEST|ACK, seq 7, pid 0 */
		0x24, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00,
		0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		/* genlmsghdr: CTRL_CMD_GETFAMILY, version 1 */
		0x03, 0x01, 0x00, 0x00,
		/* CTRL_ATTR_FAMILY_NAME "wireguard\0", len 14, padded to 16 */
		0x0e, 0x00, 0x02, 0x00, 'w', 'i', 'r', 'e',
		'g', 'u', 'a', 'r', 'd', 0x00, 0x00, 0x00,
	};
	uint32_t buf[64];
	size_t len;

	memset(buf, 0xaa, sizeof(buf));
	len = genl_build_get_family(buf, sizeof(buf), 7, "wireguard");
	assert_bytes(buf, len, want, sizeof(want));
}
END_TEST

START_TEST(build_set_remove_and_add)
{
	static const uint8_t want[] = {
		/* nlmsghdr: len 160, type = family, REQUEST|ACK, seq 16, pid 0 */
		0xa0, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x05, 0x00,
		0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		/* genlmsghdr: WG_CMD_SET_DEVICE, version 1 */
		0x01, 0x01, 0x00, 0x00,
		/* WGDEVICE_A_IFNAME "wg0\0" */
		0x08, 0x00, 0x02, 0x00, 'w', 'g', '0', 0x00,
		/* WGDEVICE_A_PEERS | NLA_F_NESTED, len 132 */
		0x84, 0x00, 0x08, 0x80,
		/*  peer 0 | NLA_F_NESTED, len 128 */
		0x80, 0x00, 0x00, 0x80,
		/*   WGPEER_A_PUBLIC_KEY, len 36 */
		0x24, 0x00, 0x01, 0x00, KEY_A_BYTES,
		/*   WGPEER_A_FLAGS = WGPEER_F_UPDATE_ONLY */
		0x08, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00,
		/*   WGPEER_A_ALLOWEDIPS | NLA_F_NESTED, len 80 */
		0x50, 0x00, 0x09, 0x80,
		/*    allowed-IP 0 | NLA_F_NESTED, len 36 */
		0x24, 0x00, 0x00, 0x80,
		/*     WGALLOWEDIP_A_FAMILY = AF_INET, u16 padded */
		0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
		/*     WGALLOWEDIP_A_IPADDR = 10.0.0.5 */
		0x08, 0x00, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x05,
		/*     WGALLOWEDIP_A_CIDR_MASK = 32, u8 padded */
		0x05, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x00,
		/*     WGALLOWEDIP_A_FLAGS = WGALLOWEDIP_F_REMOVE_ME */
		0x08, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00,
		/*    allowed-IP 0 | NLA_F_NESTED, len 40 */
		0x28, 0x00, 0x00, 0x80,
		/*     WGALLOWEDIP_A_FAMILY = AF_INET6 */
		0x06, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00,
		/*     WGALLOWEDIP_A_IPADDR = 2001:db8:: */
		0x14, 0x00, 0x02, 0x00, 0x20, 0x01, 0x0d, 0xb8,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00,
		/*     WGALLOWEDIP_A_CIDR_MASK = 64; no flags attribute */
		0x05, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x00,
	};
	struct genl_allowedip ips[2] = { { .flags = WGALLOWEDIP_F_REMOVE_ME } };
	uint32_t buf[128];
	size_t pos = 0;
	int len;

	ip4(&ips[0].ip, 10, 0, 0, 5, 32);
	ip6(&ips[1].ip, 0x2001, 0, 64);
	memset(buf, 0xaa, sizeof(buf));
	len = genl_build_set_allowedips(buf, sizeof(buf), FAMILY, 16, "wg0", key_a,
					WGPEER_F_UPDATE_ONLY, ips, 2, &pos);
	ck_assert_int_gt(len, 0);
	assert_bytes(buf, (size_t)len, want, sizeof(want));
	ck_assert_uint_eq(pos, 2);
}
END_TEST

/*
 * Each message is 84 bytes of headers and peer plus 28 bytes per IPv4
 * allowed-IP, so 140 bytes hold two of them.
 */
START_TEST(build_set_split)
{
	static const uint8_t want_last[] = {
		/* nlmsghdr: len 112, type = family, REQUEST|ACK, seq 3 */
		0x70, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x05, 0x00,
		0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x01, 0x00, 0x00,
		0x08, 0x00, 0x02, 0x00, 'w', 'g', '0', 0x00,
		/* PEERS, len 84; peer, len 80 */
		0x54, 0x00, 0x08, 0x80,
		0x50, 0x00, 0x00, 0x80,
		0x24, 0x00, 0x01, 0x00, KEY_A_BYTES,
		/* flags: UPDATE_ONLY alone, REPLACE_ALLOWEDIPS dropped */
		0x08, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00,
		/* ALLOWEDIPS, len 32; one entry, len 28: 10.0.0.5/32 */
		0x20, 0x00, 0x09, 0x80,
		0x1c, 0x00, 0x00, 0x80,
		0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
		0x08, 0x00, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x05,
		0x05, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x00,
	};
	struct genl_allowedip ips[5] = { 0 };
	uint32_t buf[64];
	size_t pos = 0;
	int len;

	for (int i = 0; i < 5; ++i)
		ip4(&ips[i].ip, 10, 0, 0, (uint8_t)(i + 1), 32);

	len = genl_build_set_allowedips(buf, 140, FAMILY, 1, "wg0", key_a,
					WGPEER_F_UPDATE_ONLY | WGPEER_F_REPLACE_ALLOWEDIPS,
					ips, 5, &pos);
	ck_assert_int_eq(len, 140);
	ck_assert_uint_eq(pos, 2);
	/* The peer flags value sits at offset 76 (the attribute at 72). */
	ck_assert_uint_eq(((uint8_t *)buf)[76], WGPEER_F_UPDATE_ONLY | WGPEER_F_REPLACE_ALLOWEDIPS);

	len = genl_build_set_allowedips(buf, 140, FAMILY, 2, "wg0", key_a,
					WGPEER_F_UPDATE_ONLY | WGPEER_F_REPLACE_ALLOWEDIPS,
					ips, 5, &pos);
	ck_assert_int_eq(len, 140);
	ck_assert_uint_eq(pos, 4);
	ck_assert_uint_eq(((uint8_t *)buf)[76], WGPEER_F_UPDATE_ONLY);

	memset(buf, 0xaa, sizeof(buf));
	len = genl_build_set_allowedips(buf, 140, FAMILY, 3, "wg0", key_a,
					WGPEER_F_UPDATE_ONLY | WGPEER_F_REPLACE_ALLOWEDIPS,
					ips, 5, &pos);
	ck_assert_int_gt(len, 0);
	assert_bytes(buf, (size_t)len, want_last, sizeof(want_last));
	ck_assert_uint_eq(pos, 5);
}
END_TEST

START_TEST(build_set_empty_replace)
{
	static const uint8_t want[] = {
		/* nlmsghdr: len 80 */
		0x50, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x05, 0x00,
		0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x01, 0x00, 0x00,
		0x08, 0x00, 0x02, 0x00, 'w', 'g', '0', 0x00,
		/* PEERS, len 52; peer, len 48 with no WGPEER_A_ALLOWEDIPS */
		0x34, 0x00, 0x08, 0x80,
		0x30, 0x00, 0x00, 0x80,
		0x24, 0x00, 0x01, 0x00, KEY_A_BYTES,
		/* REPLACE_ALLOWEDIPS | UPDATE_ONLY: clears the list */
		0x08, 0x00, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00,
	};
	uint32_t buf[64];
	size_t pos = 0;
	int len;

	len = genl_build_set_allowedips(buf, sizeof(buf), FAMILY, 9, "wg0", key_a,
					WGPEER_F_UPDATE_ONLY | WGPEER_F_REPLACE_ALLOWEDIPS,
					NULL, 0, &pos);
	ck_assert_int_gt(len, 0);
	assert_bytes(buf, (size_t)len, want, sizeof(want));
}
END_TEST

START_TEST(build_set_errors)
{
	struct genl_allowedip ip = { 0 };
	uint32_t buf[64];
	size_t pos = 0;

	/* 84 bytes of headers and 40 for one IPv6 entry do not fit in 120. */
	ip6(&ip.ip, 0x2001, 1, 128);
	ck_assert_int_eq(genl_build_set_allowedips(buf, 120, FAMILY, 1, "wg0", key_a,
						   0, &ip, 1, &pos), -EMSGSIZE);
	ck_assert_uint_eq(pos, 0);

	ip4(&ip.ip, 10, 0, 0, 1, 33);
	ck_assert_int_eq(genl_build_set_allowedips(buf, sizeof(buf), FAMILY, 1, "wg0",
						   key_a, 0, &ip, 1, &pos), -EINVAL);
	ip.ip.cidr = 32;
	ip.ip.family = 0;
	ck_assert_int_eq(genl_build_set_allowedips(buf, sizeof(buf), FAMILY, 1, "wg0",
						   key_a, 0, &ip, 1, &pos), -EINVAL);
	ip.ip.family = AF_INET;
	ck_assert_int_eq(genl_build_set_allowedips(buf, sizeof(buf), FAMILY, 1, "",
						   key_a, 0, &ip, 1, &pos), -EINVAL);
}
END_TEST

static struct wgd_endpoint endpoint4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
	struct wgd_endpoint ep = { .port = port };

	ip4(&ep.addr, a, b, c, d, 32);
	return ep;
}

START_TEST(build_add_peer)
{
	static const uint8_t want[] = {
		/* nlmsghdr: len 156, type = family, REQUEST|ACK, seq 16, pid 0 */
		0x9c, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x05, 0x00,
		0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		/* genlmsghdr: WG_CMD_SET_DEVICE, version 1 */
		0x01, 0x01, 0x00, 0x00,
		/* WGDEVICE_A_IFNAME "wg0\0" */
		0x08, 0x00, 0x02, 0x00, 'w', 'g', '0', 0x00,
		/* WGDEVICE_A_PEERS | NLA_F_NESTED, len 128 */
		0x80, 0x00, 0x08, 0x80,
		/*  peer 0 | NLA_F_NESTED, len 48: the removal */
		0x30, 0x00, 0x00, 0x80,
		/*   WGPEER_A_PUBLIC_KEY, len 36 */
		0x24, 0x00, 0x01, 0x00, KEY_A_BYTES,
		/*   WGPEER_A_FLAGS = WGPEER_F_REMOVE_ME */
		0x08, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00,
		/*  peer 0 | NLA_F_NESTED, len 76: the peer anew */
		0x4c, 0x00, 0x00, 0x80,
		0x24, 0x00, 0x01, 0x00, KEY_A_BYTES,
		/*   WGPEER_A_FLAGS = WGPEER_F_REPLACE_ALLOWEDIPS */
		0x08, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00,
		/*   WGPEER_A_ENDPOINT: sockaddr_in AF_INET, port 51820, 192.0.2.7 */
		0x14, 0x00, 0x04, 0x00, 0x02, 0x00, 0xca, 0x6c,
		0xc0, 0x00, 0x02, 0x07, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00,
		/*   WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL = 25, u16 padded */
		0x06, 0x00, 0x05, 0x00, 0x19, 0x00, 0x00, 0x00,
	};
	static const uint8_t want_remove[] = {
		/* nlmsghdr: len 80, seq 17 */
		0x50, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x05, 0x00,
		0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x01, 0x00, 0x00,
		0x08, 0x00, 0x02, 0x00, 'w', 'g', '0', 0x00,
		/* PEERS, len 52; the removal alone */
		0x34, 0x00, 0x08, 0x80,
		0x30, 0x00, 0x00, 0x80,
		0x24, 0x00, 0x01, 0x00, KEY_A_BYTES,
		0x08, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00,
	};
	struct wgd_endpoint ep = endpoint4(192, 0, 2, 7, 51820);
	uint32_t buf[128];
	int len;

	memset(buf, 0xaa, sizeof(buf));
	len = genl_build_add_peer(buf, sizeof(buf), FAMILY, 16, "wg0", key_a, &ep, 25);
	ck_assert_int_gt(len, 0);
	assert_bytes(buf, (size_t)len, want, sizeof(want));
	memset(buf, 0xaa, sizeof(buf));
	len = genl_build_remove_peer(buf, sizeof(buf), FAMILY, 17, "wg0", key_a);
	ck_assert_int_gt(len, 0);
	assert_bytes(buf, (size_t)len, want_remove, sizeof(want_remove));
}
END_TEST

struct built_peer {
	const uint8_t *key;
	uint32_t flags;
	const struct nlattr *endpoint, *keepalive, *aips;
	int n_attrs;
};

/* The nested peers of a built WG_CMD_SET_DEVICE, in order. */
static size_t built_peers(const struct nlmsghdr *nlh, struct built_peer *out, size_t max)
{
	const struct nlattr *attr, *pattr, *a;
	size_t n = 0;

	ck_assert_uint_eq(((const struct genlmsghdr *)mnl_nlmsg_get_payload(nlh))->cmd,
			  WG_CMD_SET_DEVICE);
	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(attr) != WGDEVICE_A_PEERS)
			continue;
		mnl_attr_for_each_nested(pattr, attr) {
			struct built_peer *p = &out[n++];

			ck_assert_uint_le(n, max);
			memset(p, 0, sizeof(*p));
			mnl_attr_for_each_nested(a, pattr) {
				p->n_attrs++;
				switch (mnl_attr_get_type(a)) {
				case WGPEER_A_PUBLIC_KEY:
					ck_assert_uint_eq(mnl_attr_get_payload_len(a), WG_KEY_LEN);
					p->key = mnl_attr_get_payload(a);
					break;
				case WGPEER_A_FLAGS:
					p->flags = mnl_attr_get_u32(a);
					break;
				case WGPEER_A_ENDPOINT:
					p->endpoint = a;
					break;
				case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
					ck_assert_uint_eq(mnl_attr_get_payload_len(a), 2);
					p->keepalive = a;
					break;
				case WGPEER_A_ALLOWEDIPS:
					p->aips = a;
					break;
				default:
					ck_abort_msg("unexpected peer attribute %u", mnl_attr_get_type(a));
				}
			}
		}
	}
	return n;
}

START_TEST(build_add_peer_attrs)
{
	struct wgd_endpoint ep = { .port = 443 };
	const struct sockaddr_in6 *sin6;
	struct built_peer p[4];
	uint32_t buf[128];
	int len;

	ip6(&ep.addr, 0x2001, 7, 128);
	len = genl_build_add_peer(buf, sizeof(buf), FAMILY, 1, "wg0", key_b, &ep, 65535);
	ck_assert_int_gt(len, 0);
	ck_assert_uint_eq(built_peers((struct nlmsghdr *)buf, p, 4), 2);
	ck_assert_mem_eq(p[0].key, key_b, WG_KEY_LEN);
	ck_assert_uint_eq(p[0].flags, WGPEER_F_REMOVE_ME);
	ck_assert_int_eq(p[0].n_attrs, 2);
	ck_assert_mem_eq(p[1].key, key_b, WG_KEY_LEN);
	ck_assert_uint_eq(p[1].flags, WGPEER_F_REPLACE_ALLOWEDIPS);
	ck_assert_ptr_null(p[1].aips);
	ck_assert_ptr_nonnull(p[1].endpoint);
	ck_assert_uint_eq(mnl_attr_get_payload_len(p[1].endpoint), sizeof(*sin6));
	sin6 = mnl_attr_get_payload(p[1].endpoint);
	ck_assert_uint_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 443);
	ck_assert_mem_eq(&sin6->sin6_addr, ep.addr.bytes, 16);
	ck_assert_uint_eq(sin6->sin6_flowinfo, 0);
	ck_assert_uint_eq(sin6->sin6_scope_id, 0);
	ck_assert_uint_eq(mnl_attr_get_u16(p[1].keepalive), 65535);

	/* No endpoint: the peer anew has none, and a keepalive of 0 still says so. */
	memset(&ep, 0, sizeof(ep));
	len = genl_build_add_peer(buf, sizeof(buf), FAMILY, 1, "wg0", key_b, &ep, 0);
	ck_assert_int_gt(len, 0);
	ck_assert_uint_eq(built_peers((struct nlmsghdr *)buf, p, 4), 2);
	ck_assert_ptr_null(p[1].endpoint);
	ck_assert_uint_eq(mnl_attr_get_u16(p[1].keepalive), 0);
	ck_assert_int_eq(genl_build_add_peer(buf, sizeof(buf), FAMILY, 1, "wg0", key_b, NULL, 0),
			 len);

	/* Bad input, and a buffer too short for the second peer. */
	ep = endpoint4(192, 0, 2, 7, 0);
	ck_assert_int_eq(genl_build_add_peer(buf, sizeof(buf), FAMILY, 1, "wg0", key_b, &ep, 25),
			 -EINVAL);
	ep.port = 1;
	ep.addr.family = AF_UNIX;
	ck_assert_int_eq(genl_build_add_peer(buf, sizeof(buf), FAMILY, 1, "wg0", key_b, &ep, 25),
			 -EINVAL);
	ep = endpoint4(192, 0, 2, 7, 1);
	ck_assert_int_eq(genl_build_add_peer(buf, sizeof(buf), FAMILY, 1, "", key_b, &ep, 25),
			 -EINVAL);
	ck_assert_int_eq(genl_build_remove_peer(buf, sizeof(buf), FAMILY, 1, "", key_b), -EINVAL);
	ck_assert_int_eq(genl_build_add_peer(buf, 100, FAMILY, 1, "wg0", key_b, &ep, 25),
			 -EMSGSIZE);
	ck_assert_int_eq(genl_build_remove_peer(buf, 79, FAMILY, 1, "wg0", key_b), -EMSGSIZE);
	ck_assert_int_eq(genl_build_add_peer(buf, 155, FAMILY, 1, "wg0", key_b, &ep, 25),
			 -EMSGSIZE);
	ck_assert_int_eq(genl_build_add_peer(buf, 156, FAMILY, 1, "wg0", key_b, &ep, 25), 156);
}
END_TEST

/* ---- parsing: dump messages built by hand with libmnl's put helpers ---- */

static struct nlmsghdr *msg_start(void *buf, uint16_t type, uint16_t flags, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = PORTID;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = WG_CMD_GET_DEVICE;
	genl->version = WG_GENL_VERSION;
	return nlh;
}

static void put_aip(struct nlmsghdr *nlh, uint16_t family, const void *addr, size_t len,
		    uint8_t cidr)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, 0);

	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, family);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, len, addr);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, cidr);
	mnl_attr_nest_end(nlh, nest);
}

static const uint8_t a10_0_0_1[4] = { 10, 0, 0, 1 };
static const uint8_t a10_0_1_0[4] = { 10, 0, 1, 0 };
static const uint8_t a10_0_0_2[4] = { 10, 0, 0, 2 };
static const uint8_t afd00_1[16] = { 0xfd, [15] = 1 };

/*
 * First message of a dump: device attributes, peer A complete, and peer B
 * whose list did not fit.
 */
static size_t put_msg1(void *buf, uint16_t flags)
{
	struct nlmsghdr *nlh = msg_start(buf, FAMILY, NLM_F_MULTI | flags, 5);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(51820) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	struct __kernel_timespec ts = { .tv_sec = 1700000000, .tv_nsec = 5 };
	struct nlattr *peers, *peer, *aips;
	uint8_t priv[WG_KEY_LEN] = { 0x77 };

	sin.sin_addr.s_addr = htonl(0xc0000201);
	sin6.sin6_addr.s6_addr[0] = 0x20;
	sin6.sin6_addr.s6_addr[15] = 9;
	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, 0);
	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 7);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, priv);
	mnl_attr_put(nlh, WGDEVICE_A_PUBLIC_KEY, WG_KEY_LEN, key_dev);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);

	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, key_a);
	mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, priv);
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), &ts);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 1000);
	mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 2000);
	mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin), &sin);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_aip(nlh, AF_INET, a10_0_0_1, 4, 32);
	put_aip(nlh, AF_INET, a10_0_1_0, 4, 24);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);

	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, key_b);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin6), &sin6);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_aip(nlh, AF_INET6, afd00_1, 16, 128);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);

	mnl_attr_nest_end(nlh, peers);
	return nlh->nlmsg_len;
}

/* Second message: B continues with its key and the rest of its list, then C. */
static size_t put_msg2(void *buf, uint16_t flags)
{
	struct nlmsghdr *nlh = msg_start(buf, FAMILY, NLM_F_MULTI | flags, 5);
	struct nlattr *peers, *peer, *aips;

	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, key_b);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_aip(nlh, AF_INET, a10_0_0_2, 4, 32);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, key_c);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	return nlh->nlmsg_len;
}

static size_t put_done(void *buf, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	int zero = 0;

	nlh->nlmsg_type = NLMSG_DONE;
	nlh->nlmsg_flags = NLM_F_MULTI | flags;
	nlh->nlmsg_seq = 5;
	nlh->nlmsg_pid = PORTID;
	memcpy(mnl_nlmsg_put_extra_header(nlh, sizeof(zero)), &zero, sizeof(zero));
	return nlh->nlmsg_len;
}

static size_t put_error(void *buf, uint32_t seq, int error)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlmsgerr *err;

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = PORTID;
	err = mnl_nlmsg_put_extra_header(nlh, sizeof(*err));
	err->error = error;
	err->msg.nlmsg_seq = seq;
	return nlh->nlmsg_len;
}

static void check_device(const struct wgdev *dev)
{
	const struct wgdev_peer *a, *b, *c;
	struct wgd_ip ip;

	ck_assert_str_eq(dev->name, "wg0");
	ck_assert_uint_eq(dev->ifindex, 7);
	ck_assert_uint_eq(dev->listen_port, 51820);
	ck_assert(dev->has_pubkey);
	ck_assert_mem_eq(dev->pubkey, key_dev, WG_KEY_LEN);
	ck_assert_uint_eq(dev->n_peers, 3);

	a = wgdev_find_peer(dev, key_a);
	b = wgdev_find_peer(dev, key_b);
	c = wgdev_find_peer(dev, key_c);
	ck_assert_ptr_eq(a, &dev->peers[0]);
	ck_assert_ptr_eq(b, &dev->peers[1]);
	ck_assert_ptr_eq(c, &dev->peers[2]);

	ck_assert_int_eq(a->endpoint.sa.sa_family, AF_INET);
	ck_assert_uint_eq(ntohl(a->endpoint.sin.sin_addr.s_addr), 0xc0000201);
	ck_assert_uint_eq(ntohs(a->endpoint.sin.sin_port), 51820);
	ck_assert_int_eq(a->last_handshake_sec, 1700000000);
	ck_assert_uint_eq(a->last_handshake_nsec, 5);
	ck_assert_uint_eq(a->keepalive_s, 25);
	ck_assert_uint_eq(a->tx_bytes, 1000);
	ck_assert_uint_eq(a->rx_bytes, 2000);
	ck_assert_uint_eq(a->n_allowedips, 2);
	ip4(&ip, 10, 0, 0, 1, 32);
	ck_assert_mem_eq(&a->allowedips[0], &ip, sizeof(ip));
	ip4(&ip, 10, 0, 1, 0, 24);
	ck_assert_mem_eq(&a->allowedips[1], &ip, sizeof(ip));

	/* B kept the endpoint from the first message and merged both lists. */
	ck_assert_int_eq(b->endpoint.sa.sa_family, AF_INET6);
	ck_assert_uint_eq(ntohs(b->endpoint.sin6.sin6_port), 443);
	ck_assert_uint_eq(b->endpoint.sin6.sin6_addr.s6_addr[15], 9);
	ck_assert_uint_eq(b->n_allowedips, 2);
	ck_assert_uint_eq(b->allowedips[0].family, AF_INET6);
	ck_assert_mem_eq(b->allowedips[0].bytes, afd00_1, 16);
	ip4(&ip, 10, 0, 0, 2, 32);
	ck_assert_mem_eq(&b->allowedips[1], &ip, sizeof(ip));

	ck_assert_int_eq(c->endpoint.sa.sa_family, 0);
	ck_assert_uint_eq(c->n_allowedips, 0);
	/* Without the attributes, never and nothing. */
	ck_assert_int_eq(c->last_handshake_sec, 0);
	ck_assert_uint_eq(c->last_handshake_nsec, 0);
	ck_assert_uint_eq(c->keepalive_s, 0);
	ck_assert_uint_eq(c->tx_bytes, 0);
	ck_assert_uint_eq(c->rx_bytes, 0);
}

START_TEST(parse_dump_one_buffer)
{
	uint32_t buf[1024];
	struct wgdev *dev = calloc(1, sizeof(*dev));
	size_t len = 0;

	len += put_msg1((uint8_t *)buf + len, 0);
	len += put_msg2((uint8_t *)buf + len, 0);
	len += put_done((uint8_t *)buf + len, 0);
	ck_assert_int_eq(genl_parse_dump(buf, len, FAMILY, 5, PORTID, dev), 0);
	check_device(dev);
	wgdev_free(dev);
}
END_TEST

START_TEST(parse_dump_multipart)
{
	uint32_t buf[1024];
	struct wgdev *dev = calloc(1, sizeof(*dev));
	size_t len;

	len = put_msg1(buf, 0);
	ck_assert_int_eq(genl_parse_dump(buf, len, FAMILY, 5, PORTID, dev), 1);
	ck_assert_uint_eq(dev->n_peers, 2);
	len = put_msg2(buf, 0);
	ck_assert_int_eq(genl_parse_dump(buf, len, FAMILY, 5, PORTID, dev), 1);
	len = put_done(buf, 0);
	ck_assert_int_eq(genl_parse_dump(buf, len, FAMILY, 5, PORTID, dev), 0);
	check_device(dev);
	wgdev_free(dev);
}
END_TEST

START_TEST(parse_dump_per_message)
{
	uint32_t buf[1024];
	struct wgdev *dev = calloc(1, sizeof(*dev));

	put_msg1(buf, 0);
	ck_assert_int_eq(genl_parse_device_msg((struct nlmsghdr *)buf, dev), 0);
	put_msg2(buf, 0);
	ck_assert_int_eq(genl_parse_device_msg((struct nlmsghdr *)buf, dev), 0);
	check_device(dev);
	wgdev_free(dev);
}
END_TEST

START_TEST(parse_dump_interrupted)
{
	uint32_t buf[1024];
	struct wgdev *dev = calloc(1, sizeof(*dev));
	size_t len = 0;

	len += put_msg1((uint8_t *)buf + len, 0);
	len += put_msg2((uint8_t *)buf + len, NLM_F_DUMP_INTR);
	len += put_done((uint8_t *)buf + len, NLM_F_DUMP_INTR);
	ck_assert_int_eq(genl_parse_dump(buf, len, FAMILY, 5, PORTID, dev), -EINTR);
	wgdev_free(dev);

	/* The flag on DONE alone counts too. */
	dev = calloc(1, sizeof(*dev));
	len = put_done(buf, NLM_F_DUMP_INTR);
	ck_assert_int_eq(genl_parse_dump(buf, len, FAMILY, 5, PORTID, dev), -EINTR);
	wgdev_free(dev);
}
END_TEST

START_TEST(parse_dump_errors)
{
	uint32_t buf[1024];
	struct wgdev *dev = calloc(1, sizeof(*dev));
	size_t len;

	len = put_error(buf, 5, -ENODEV);
	ck_assert_int_eq(genl_parse_dump(buf, len, FAMILY, 5, PORTID, dev), -ENODEV);
	/* A reply to another request, from another socket, or of another family. */
	len = put_msg1(buf, 0);
	ck_assert_int_eq(genl_parse_dump(buf, len, FAMILY, 6, PORTID, dev), -EPROTO);
	ck_assert_int_eq(genl_parse_dump(buf, len, FAMILY, 5, PORTID + 1, dev), -EPROTO);
	ck_assert_int_eq(genl_parse_dump(buf, len, FAMILY + 1, 5, PORTID, dev), -EPROTO);
	/* A truncated buffer. */
	ck_assert_int_eq(genl_parse_dump(buf, len - 8, FAMILY, 5, PORTID, dev), -EPROTO);
	/* Trailing bytes that are no message. */
	ck_assert_int_eq(genl_parse_dump(buf, len + 8, FAMILY, 5, PORTID, dev), -EPROTO);
	wgdev_free(dev);
}
END_TEST

/*
 * Builds a message whose single peer carries one malformed piece, chosen
 * by which, and checks it is refused.
 */
static int parse_bad(int which)
{
	uint32_t buf[256];
	struct nlmsghdr *nlh = msg_start(buf, FAMILY, 0, 5);
	struct wgdev *dev = calloc(1, sizeof(*dev));
	struct nlattr *peers, *peer, *aips, *aip;
	uint8_t junk[32] = { 0 };
	int ret;

	switch (which) {
	case 0: /* ifindex of two bytes */
		mnl_attr_put_u16(nlh, WGDEVICE_A_IFINDEX, 7);
		break;
	case 1: /* device public key one byte short */
		mnl_attr_put(nlh, WGDEVICE_A_PUBLIC_KEY, WG_KEY_LEN - 1, key_dev);
		break;
	case 2: /* ifname without NUL */
		mnl_attr_put(nlh, WGDEVICE_A_IFNAME, 3, "wg0");
		break;
	case 3: /* ifname longer than IF_NAMESIZE allows */
		mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "abcdefghijklmnopq");
		break;
	case 4: /* listen port as u32 */
		mnl_attr_put_u32(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
		break;
	default:
		break;
	}
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	if (which != 5) /* 5: a peer without public key */
		mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, key_a);
	if (which == 6) /* endpoint of a length no sockaddr has */
		mnl_attr_put(nlh, WGPEER_A_ENDPOINT, 20, junk);
	if (which == 7) { /* a sockaddr_in6 length claiming AF_INET */
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET };

		mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin6), &sin6);
	}
	if (which == 8) /* handshake time of 8 bytes */
		mnl_attr_put_u64(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, 1);
	if (which == 15 || which == 16) { /* nanoseconds past a second, or negative */
		struct __kernel_timespec ts = { .tv_sec = 1, .tv_nsec = which == 15 ? 1000000000 : -1 };

		mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), &ts);
	}
	if (which == 17) /* keepalive as u32 */
		mnl_attr_put_u32(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	if (which == 18) /* a counter as u32 */
		mnl_attr_put_u32(nlh, WGPEER_A_RX_BYTES, 1);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	aip = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, which == 11 ? 99 : AF_INET);
	if (which == 9) /* 16 address bytes for AF_INET */
		mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 16, afd00_1);
	else if (which != 12) /* 12: no address at all */
		mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 4, a10_0_0_1);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, which == 10 ? 33 : 32);
	mnl_attr_nest_end(nlh, aip);
	if (which == 13) {
		/* three stray bytes at the end of the allowed-IP */
		memset(mnl_nlmsg_get_payload_tail(nlh), 0, 4);
		aip->nla_len = (uint16_t)(aip->nla_len + 3);
		nlh->nlmsg_len += 4;
	}
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	if (which == 14) /* an attribute claiming more than the message holds */
		peers->nla_len = (uint16_t)(peers->nla_len + 64);

	ret = genl_parse_device_msg(nlh, dev);
	wgdev_free(dev);
	return ret;
}

START_TEST(parse_malformed)
{
	ck_assert_int_eq(parse_bad(-1), 0);
	ck_assert_int_eq(parse_bad(_i), -EPROTO);
}
END_TEST

START_TEST(parse_unknown_attrs_skipped)
{
	uint32_t buf[256];
	struct nlmsghdr *nlh = msg_start(buf, FAMILY, 0, 5);
	struct wgdev *dev = calloc(1, sizeof(*dev));
	struct nlattr *peers, *peer;

	mnl_attr_put_u32(nlh, 200, 1);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, key_a);
	mnl_attr_put_u64(nlh, 99, 1);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	ck_assert_int_eq(genl_parse_device_msg(nlh, dev), 0);
	ck_assert_uint_eq(dev->n_peers, 1);
	/* A message of another command is refused. */
	((struct genlmsghdr *)mnl_nlmsg_get_payload(nlh))->cmd = WG_CMD_SET_DEVICE;
	ck_assert_int_eq(genl_parse_device_msg(nlh, dev), -EPROTO);
	wgdev_free(dev);
}
END_TEST

START_TEST(parse_family)
{
	uint32_t buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;
	uint16_t id = 0;
	size_t len;

	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_seq = 3;
	nlh->nlmsg_pid = PORTID;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = CTRL_CMD_NEWFAMILY;
	genl->version = 2;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, "wireguard");
	mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, 0x23);
	mnl_attr_put_u32(nlh, CTRL_ATTR_VERSION, 1);
	len = nlh->nlmsg_len;

	/* The family message alone: the ACK is still to come. */
	ck_assert_int_eq(genl_parse_family_reply(buf, len, 3, PORTID, &id), 1);
	ck_assert_uint_eq(id, 0x23);
	len += put_error((uint8_t *)buf + len, 3, 0);
	id = 0;
	ck_assert_int_eq(genl_parse_family_reply(buf, len, 3, PORTID, &id), 0);
	ck_assert_uint_eq(id, 0x23);

	/* No such family. */
	id = 0;
	len = put_error(buf, 3, -ENOENT);
	ck_assert_int_eq(genl_parse_family_reply(buf, len, 3, PORTID, &id), -ENOENT);
	/* An ACK with no family before it. */
	len = put_error(buf, 3, 0);
	ck_assert_int_eq(genl_parse_family_reply(buf, len, 3, PORTID, &id), -EPROTO);
}
END_TEST

START_TEST(parse_ack)
{
	uint32_t buf[64];
	size_t len;

	len = put_error(buf, 11, 0);
	ck_assert_int_eq(genl_parse_ack(buf, len, 11, PORTID), 0);
	len = put_error(buf, 11, -EINVAL);
	ck_assert_int_eq(genl_parse_ack(buf, len, 11, PORTID), -EINVAL);
	ck_assert_int_eq(genl_parse_ack(buf, len, 12, PORTID), -EPROTO);
	/* An nlmsgerr cut short. */
	ck_assert_int_eq(genl_parse_ack(buf, 20, 11, PORTID), -EPROTO);
	ck_assert_int_eq(genl_parse_ack(buf, 0, 11, PORTID), 1);
}
END_TEST

/*
 * A message claiming more than INT_MAX bytes. libmnl's mnl_nlmsg_ok()
 * compares the length as a signed int and let it through, and stepping
 * over it read far outside the buffer (found by tests/fuzz/fuzz_genl).
 */
START_TEST(parse_huge_length)
{
	static const uint8_t msg[] = {
		/* nlmsghdr: len 0xd0cc001b, NLMSG_NOOP, seq 5, pid 0 */
		0x1b, 0x00, 0xcc, 0xd0, 0x01, 0x00, 0x00, 0x00,
		0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x20, 0x00, 0x00,
	};
	uint32_t buf[8];
	struct wgdev *dev = calloc(1, sizeof(*dev));
	uint16_t id = 0;

	memcpy(buf, msg, sizeof(msg));
	ck_assert_int_eq(genl_parse_dump(buf, sizeof(msg), FAMILY, 5, 0, dev), -EPROTO);
	ck_assert_int_eq(genl_parse_family_reply(buf, sizeof(msg), 5, 0, &id), -EPROTO);
	ck_assert_int_eq(genl_parse_ack(buf, sizeof(msg), 5, 0), -EPROTO);
	/* Exactly INT_MAX + 1, the smallest length that wraps. */
	buf[0] = 0x80000000u;
	ck_assert_int_eq(genl_parse_ack(buf, sizeof(msg), 5, 0), -EPROTO);
	wgdev_free(dev);
}
END_TEST

/* ---- a fake kernel behind genl_conn, to drive the I/O and fallback logic ---- */

#define FK_MAX_IPS 512
#define FK_QUEUE 64

struct fk_peer {
	uint8_t key[WG_KEY_LEN];
	struct wgd_ip ips[FK_MAX_IPS];
	size_t n;
	struct sockaddr_in6 endpoint;   /* a sockaddr_in in its first bytes for IPv4 */
	size_t endpoint_len;
	uint16_t keepalive;
	uint64_t rx, tx;
};

struct fake_kernel {
	bool has_family;
	bool supports_flags;      /* Linux 6.16 WGALLOWEDIP_A_FLAGS */
	int intr_dumps;           /* dumps still to flag NLM_F_DUMP_INTR */
	size_t ips_per_msg;       /* allowed-IPs per dump message */
	bool vanish_on_set;       /* the peer goes away just before a set */
	int refuse_sets;          /* -errno every set gets, after the removals */
	int removals;             /* peers removed by WGPEER_F_REMOVE_ME */
	struct fk_peer peers[4];
	size_t n_peers;

	uint8_t queue[FK_QUEUE][GENL_RECV_SIZE / 4];
	size_t qlen[FK_QUEUE];
	size_t qhead, qtail;

	int dumps, resets, sets;
	uint32_t set_flags[64];      /* peer flags of each set message */
	size_t set_entries[64];      /* allowed-IPs in each */
	size_t set_removals[64];     /* of which carried WGALLOWEDIP_F_REMOVE_ME */
};

static struct nlmsghdr *fk_msg(struct fake_kernel *fk, uint16_t type, uint16_t flags,
			       uint32_t seq)
{
	struct nlmsghdr *nlh;

	ck_assert_uint_lt(fk->qtail, FK_QUEUE);
	nlh = mnl_nlmsg_put_header(fk->queue[fk->qtail]);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	return nlh;
}

static void fk_push(struct fake_kernel *fk, struct nlmsghdr *nlh)
{
	fk->qlen[fk->qtail++] = nlh->nlmsg_len;
}

static void fk_error(struct fake_kernel *fk, uint32_t seq, int error)
{
	struct nlmsghdr *nlh = fk_msg(fk, NLMSG_ERROR, 0, seq);
	struct nlmsgerr *err = mnl_nlmsg_put_extra_header(nlh, sizeof(*err));

	err->error = error;
	fk_push(fk, nlh);
}

static void fk_family(struct fake_kernel *fk, uint32_t seq)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *genl;

	if (!fk->has_family) {
		fk_error(fk, seq, -ENOENT);
		return;
	}
	nlh = fk_msg(fk, GENL_ID_CTRL, 0, seq);
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = CTRL_CMD_NEWFAMILY;
	mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, FAMILY);
	fk_push(fk, nlh);
	fk_error(fk, seq, 0);
}

/* Like the kernel: one peer per message, its list split ips_per_msg at a time. */
static void fk_dump(struct fake_kernel *fk, uint32_t seq)
{
	uint16_t intr = 0;
	bool first = true;

	++fk->dumps;
	if (fk->intr_dumps > 0) {
		--fk->intr_dumps;
		intr = NLM_F_DUMP_INTR;
	}
	for (size_t i = 0; i < fk->n_peers || first; ++i) {
		struct fk_peer *p = i < fk->n_peers ? &fk->peers[i] : NULL;
		size_t done = 0;

		do {
			struct nlmsghdr *nlh = fk_msg(fk, FAMILY, NLM_F_MULTI | (first ? 0 : intr), seq);
			struct genlmsghdr *genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
			struct nlattr *peers, *peer, *aips;

			genl->cmd = WG_CMD_GET_DEVICE;
			if (first) {
				mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 3);
				mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wgf0");
				mnl_attr_put(nlh, WGDEVICE_A_PUBLIC_KEY, WG_KEY_LEN, key_dev);
				first = false;
			}
			if (!p) {
				fk_push(fk, nlh);
				break;
			}
			peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
			peer = mnl_attr_nest_start(nlh, 0);
			mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, p->key);
			/* The rest of a peer comes once, with its first message. */
			if (!done) {
				if (p->endpoint_len)
					mnl_attr_put(nlh, WGPEER_A_ENDPOINT, p->endpoint_len,
						     &p->endpoint);
				mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
						 p->keepalive);
				mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, p->rx);
				mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, p->tx);
			}
			aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
			for (size_t k = 0; k < fk->ips_per_msg && done < p->n; ++k, ++done)
				put_aip(nlh, p->ips[done].family, p->ips[done].bytes,
					wgd_ip_len(p->ips[done].family), p->ips[done].cidr);
			mnl_attr_nest_end(nlh, aips);
			mnl_attr_nest_end(nlh, peer);
			mnl_attr_nest_end(nlh, peers);
			fk_push(fk, nlh);
		} while (done < p->n);
		if (!p)
			break;
	}
	fk_push(fk, fk_msg(fk, NLMSG_DONE, NLM_F_MULTI | intr, seq));
}

static struct fk_peer *fk_find(struct fake_kernel *fk, const uint8_t *key)
{
	for (size_t i = 0; i < fk->n_peers; ++i) {
		if (!memcmp(fk->peers[i].key, key, WG_KEY_LEN))
			return &fk->peers[i];
	}
	return NULL;
}

static void fk_ip_remove(struct fk_peer *p, const struct wgd_ip *ip)
{
	for (size_t i = 0; i < p->n; ++i) {
		if (wgd_ip_equal(&p->ips[i], ip)) {
			memmove(&p->ips[i], &p->ips[i + 1], (p->n - i - 1) * sizeof(*ip));
			--p->n;
			return;
		}
	}
}

/* Applies one allowed-IP the way the kernel does; -EINVAL as an old kernel would. */
static int fk_allowedip(struct fake_kernel *fk, struct fk_peer *p, const struct nlattr *nest)
{
	const struct nlattr *attr;
	struct wgd_ip ip = { 0 };
	uint32_t flags = 0;

	mnl_attr_for_each_nested(attr, nest) {
		switch (mnl_attr_get_type(attr)) {
		case WGALLOWEDIP_A_FAMILY:
			ip.family = (uint8_t)mnl_attr_get_u16(attr);
			break;
		case WGALLOWEDIP_A_IPADDR:
			memcpy(ip.bytes, mnl_attr_get_payload(attr), mnl_attr_get_payload_len(attr));
			break;
		case WGALLOWEDIP_A_CIDR_MASK:
			ip.cidr = mnl_attr_get_u8(attr);
			break;
		case WGALLOWEDIP_A_FLAGS:
			if (!fk->supports_flags)
				return -EINVAL;
			flags = mnl_attr_get_u32(attr);
			break;
		default:
			return -EINVAL;
		}
	}
	if (!p)
		return 0;
	++fk->set_entries[fk->sets - 1];
	if (flags & WGALLOWEDIP_F_REMOVE_ME) {
		++fk->set_removals[fk->sets - 1];
		fk_ip_remove(p, &ip);
		return 0;
	}
	/* An allowed-IP belongs to one peer: inserting moves it. */
	for (size_t i = 0; i < fk->n_peers; ++i)
		fk_ip_remove(&fk->peers[i], &ip);
	ck_assert_uint_lt(p->n, FK_MAX_IPS);
	p->ips[p->n++] = ip;
	return 0;
}

static int fk_set(struct fake_kernel *fk, const struct nlmsghdr *nlh)
{
	const struct nlattr *attr, *pattr, *a;

	++fk->sets;
	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(attr) != WGDEVICE_A_PEERS)
			continue;
		mnl_attr_for_each_nested(pattr, attr) {
			const uint8_t *key = NULL;
			const struct nlattr *aips = NULL, *endpoint = NULL, *keepalive = NULL;
			uint32_t flags = 0;
			struct fk_peer *p;
			int ret;

			mnl_attr_for_each_nested(a, pattr) {
				if (mnl_attr_get_type(a) == WGPEER_A_PUBLIC_KEY)
					key = mnl_attr_get_payload(a);
				else if (mnl_attr_get_type(a) == WGPEER_A_FLAGS)
					flags = mnl_attr_get_u32(a);
				else if (mnl_attr_get_type(a) == WGPEER_A_ALLOWEDIPS)
					aips = a;
				else if (mnl_attr_get_type(a) == WGPEER_A_ENDPOINT)
					endpoint = a;
				else if (mnl_attr_get_type(a) == WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL)
					keepalive = a;
			}
			ck_assert_ptr_nonnull(key);
			fk->set_flags[fk->sets - 1] = flags;
			/* Like the kernel: the removal of an absent peer is skipped. */
			if (flags & WGPEER_F_REMOVE_ME) {
				p = fk_find(fk, key);
				if (p) {
					*p = fk->peers[--fk->n_peers];
					++fk->removals;
				}
				continue;
			}
			if (fk->refuse_sets)
				return fk->refuse_sets;
			if (fk->vanish_on_set) {
				p = fk_find(fk, key);
				if (p) {
					*p = fk->peers[--fk->n_peers];
				}
			}
			p = fk_find(fk, key);
			if (!p && !(flags & WGPEER_F_UPDATE_ONLY)) {
				ck_assert_uint_lt(fk->n_peers, 4);
				p = &fk->peers[fk->n_peers++];
				memset(p, 0, sizeof(*p));
				memcpy(p->key, key, WG_KEY_LEN);
			}
			if (p && (flags & WGPEER_F_REPLACE_ALLOWEDIPS))
				p->n = 0;
			if (p && endpoint) {
				ck_assert_uint_le(mnl_attr_get_payload_len(endpoint), sizeof(p->endpoint));
				memcpy(&p->endpoint, mnl_attr_get_payload(endpoint),
				       mnl_attr_get_payload_len(endpoint));
				p->endpoint_len = mnl_attr_get_payload_len(endpoint);
			}
			if (p && keepalive)
				p->keepalive = mnl_attr_get_u16(keepalive);
			if (!aips)
				continue;
			mnl_attr_for_each_nested(a, aips) {
				ret = fk_allowedip(fk, p, a);
				if (ret)
					return ret;
			}
		}
	}
	return 0;
}

static int fk_send(void *ctx, const void *buf, size_t len)
{
	struct fake_kernel *fk = ctx;
	const struct nlmsghdr *nlh = buf;
	const struct genlmsghdr *genl = mnl_nlmsg_get_payload(nlh);

	ck_assert(mnl_nlmsg_ok(nlh, (int)len));
	ck_assert_uint_le(len, GENL_SET_MSG_MAX);
	ck_assert(nlh->nlmsg_flags & NLM_F_REQUEST);
	if (nlh->nlmsg_type == GENL_ID_CTRL)
		fk_family(fk, nlh->nlmsg_seq);
	else if (genl->cmd == WG_CMD_GET_DEVICE)
		fk_dump(fk, nlh->nlmsg_seq);
	else
		fk_error(fk, nlh->nlmsg_seq, fk_set(fk, nlh));
	return 0;
}

static long fk_recv(void *ctx, void *buf, size_t len)
{
	struct fake_kernel *fk = ctx;
	size_t n;

	if (fk->qhead == fk->qtail)
		return -EAGAIN;
	n = fk->qlen[fk->qhead];
	ck_assert_uint_le(n, len);
	memcpy(buf, fk->queue[fk->qhead], n);
	if (++fk->qhead == fk->qtail)
		fk->qhead = fk->qtail = 0;
	return (long)n;
}

static void fk_reset(void *ctx)
{
	struct fake_kernel *fk = ctx;

	fk->qhead = fk->qtail = 0;
	++fk->resets;
}

static const struct genl_io fk_io = { fk_send, fk_recv, fk_reset };

static struct fake_kernel *fk_new(bool supports_flags)
{
	struct fake_kernel *fk = calloc(1, sizeof(*fk));

	fk->has_family = true;
	fk->supports_flags = supports_flags;
	fk->ips_per_msg = 2;
	fk->n_peers = 2;
	memcpy(fk->peers[0].key, key_a, WG_KEY_LEN);
	ip4(&fk->peers[0].ips[0], 10, 0, 0, 1, 32);
	ip4(&fk->peers[0].ips[1], 10, 0, 0, 2, 32);
	ip6(&fk->peers[0].ips[2], 0xfd00, 1, 128);
	fk->peers[0].n = 3;
	memcpy(fk->peers[1].key, key_b, WG_KEY_LEN);
	ip4(&fk->peers[1].ips[0], 10, 0, 1, 0, 24);
	fk->peers[1].n = 1;
	return fk;
}

static void fk_assert_ips(const struct fk_peer *p, const struct wgd_ip *want, size_t n)
{
	ck_assert_uint_eq(p->n, n);
	for (size_t i = 0; i < n; ++i)
		ck_assert_msg(wgd_ip_equal(&p->ips[i], &want[i]), "entry %zu differs", i);
}

START_TEST(io_open_and_read)
{
	struct fake_kernel *fk = fk_new(true);
	struct genl_conn *gc;
	struct wgdev *dev;

	fk->ips_per_msg = 1;
	ck_assert_int_eq(genl_conn_open_io(&gc, "wgf0", &fk_io, fk), 0);
	ck_assert_int_eq(genl_conn_get_device(gc, &dev), 0);
	ck_assert_str_eq(dev->name, "wgf0");
	ck_assert_uint_eq(dev->n_peers, 2);
	/* Peer A came in three messages, one allowed-IP each. */
	ck_assert_uint_eq(dev->peers[0].n_allowedips, 3);
	ck_assert(wgd_ip_equal(&dev->peers[0].allowedips[2], &fk->peers[0].ips[2]));
	ck_assert_uint_eq(dev->peers[1].n_allowedips, 1);
	wgdev_free(dev);
	genl_conn_close(gc);

	fk->has_family = false;
	ck_assert_int_eq(genl_conn_open_io(&gc, "wgf0", &fk_io, fk), -ENODEV);
	free(fk);
}
END_TEST

START_TEST(io_dump_restarts)
{
	struct fake_kernel *fk = fk_new(true);
	struct genl_conn *gc;
	struct wgdev *dev;

	ck_assert_int_eq(genl_conn_open_io(&gc, "wgf0", &fk_io, fk), 0);
	fk->intr_dumps = 2;
	fk->dumps = fk->resets = 0;
	ck_assert_int_eq(genl_conn_get_device(gc, &dev), 0);
	ck_assert_uint_eq(fk->dumps, 3);
	/* Each interrupted dump was abandoned with the replies still queued. */
	ck_assert_uint_eq(fk->resets, 2);
	ck_assert_uint_eq(dev->n_peers, 2);
	ck_assert_uint_eq(dev->peers[0].n_allowedips, 3);
	wgdev_free(dev);

	fk->intr_dumps = 1000;
	ck_assert_int_eq(genl_conn_get_device(gc, &dev), -EAGAIN);
	ck_assert_ptr_null(dev);
	genl_conn_close(gc);
	free(fk);
}
END_TEST

/*
 * A control handle over the fake kernel, with its view read first: the
 * update policy of wgctl.c over the genl backend.
 */
static struct wgctl *fk_ctl(struct fake_kernel *fk)
{
	struct genl_conn *gc;
	struct wgctl *ctl;
	struct wgdev *dev;

	ck_assert_int_eq(genl_conn_open_io(&gc, "wgf0", &fk_io, fk), 0);
	ck_assert_int_eq(wgctl_open_backend(&ctl, &genl_ops, gc), 0);
	ck_assert_str_eq(wgctl_backend_name(ctl), "kernel");
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	wgdev_free(dev);
	return ctl;
}

START_TEST(io_update_with_flags)
{
	struct fake_kernel *fk = fk_new(true);
	struct wgd_ip add, del, want[3];
	struct wgctl *ctl;

	ctl = fk_ctl(fk);
	ip4(&add, 10, 0, 0, 3, 32);
	ip4(&del, 10, 0, 0, 1, 32);
	fk->sets = 0;
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_a, &add, 1, &del, 1), 0);
	/* One message: the removal by flag, then the addition. */
	ck_assert_int_eq(fk->sets, 1);
	ck_assert_uint_eq(fk->set_flags[0], WGPEER_F_UPDATE_ONLY);
	ck_assert_uint_eq(fk->set_entries[0], 2);
	ck_assert_uint_eq(fk->set_removals[0], 1);
	ip4(&want[0], 10, 0, 0, 2, 32);
	ip6(&want[1], 0xfd00, 1, 128);
	want[2] = add;
	fk_assert_ips(&fk->peers[0], want, 3);
	/* The other peer is untouched. */
	ip4(&want[0], 10, 0, 1, 0, 24);
	fk_assert_ips(&fk->peers[1], want, 1);

	/* Additions alone carry no flags attribute at all. */
	ip4(&add, 10, 0, 0, 4, 32);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_a, &add, 1, NULL, 0), 0);
	ck_assert_int_eq(fk->sets, 2);
	ck_assert_uint_eq(fk->set_removals[1], 0);
	ck_assert_uint_eq(fk->peers[0].n, 4);
	wgctl_close(ctl);
	free(fk);
}
END_TEST

START_TEST(io_update_fallback)
{
	struct fake_kernel *fk = fk_new(false);
	struct wgd_ip add, del, want[3];
	struct wgctl *ctl;

	ctl = fk_ctl(fk);
	ip4(&add, 10, 0, 0, 3, 32);
	ip4(&del, 10, 0, 0, 1, 32);
	fk->sets = 0;
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_a, &add, 1, &del, 1), 0);
	/* Refused at the first removal, then the whole list replaced. */
	ck_assert_int_eq(fk->sets, 2);
	ck_assert_uint_eq(fk->set_entries[0], 0);
	ck_assert_uint_eq(fk->set_flags[1], WGPEER_F_UPDATE_ONLY | WGPEER_F_REPLACE_ALLOWEDIPS);
	ck_assert_uint_eq(fk->set_entries[1], 3);
	ip4(&want[0], 10, 0, 0, 2, 32);
	ip6(&want[1], 0xfd00, 1, 128);
	want[2] = add;
	fk_assert_ips(&fk->peers[0], want, 3);
	ck_assert_uint_eq(fk->peers[1].n, 1);

	/* Remembered: the next removal goes straight to read-modify-write. */
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_a, NULL, 0, &add, 1), 0);
	ck_assert_int_eq(fk->sets, 3);
	ck_assert_uint_eq(fk->set_flags[2], WGPEER_F_UPDATE_ONLY | WGPEER_F_REPLACE_ALLOWEDIPS);
	fk_assert_ips(&fk->peers[0], want, 2);

	/* Removing everything sends one message with an empty list. */
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_a, NULL, 0, want, 2), 0);
	ck_assert_int_eq(fk->sets, 4);
	ck_assert_uint_eq(fk->peers[0].n, 0);
	ck_assert_uint_eq(fk->peers[1].n, 1);
	wgctl_close(ctl);
	free(fk);
}
END_TEST

START_TEST(io_update_long_list)
{
	struct fake_kernel *fk = fk_new(false);
	static struct wgd_ip add[300];
	struct wgctl *ctl;
	struct wgd_ip del;
	int first;

	ctl = fk_ctl(fk);
	for (int i = 0; i < 300; ++i)
		ip6(&add[i], 0x2001, (uint16_t)(i + 1), 128);
	ip4(&del, 10, 0, 0, 2, 32);
	fk->sets = 0;
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_a, add, 300, &del, 1), 0);
	/* 302 entries of 40 bytes in 4096-byte messages: four messages after the probe. */
	ck_assert_int_eq(fk->sets, 5);
	first = 1;
	ck_assert_uint_eq(fk->set_flags[first], WGPEER_F_UPDATE_ONLY | WGPEER_F_REPLACE_ALLOWEDIPS);
	for (int i = first + 1; i < fk->sets; ++i)
		ck_assert_uint_eq(fk->set_flags[i], WGPEER_F_UPDATE_ONLY);
	ck_assert_uint_eq(fk->peers[0].n, 302);
	ck_assert(wgd_ip_equal(&fk->peers[0].ips[301], &add[299]));
	wgctl_close(ctl);
	free(fk);
}
END_TEST

START_TEST(io_update_missing_peer)
{
	struct fake_kernel *fk = fk_new(true);
	struct wgctl *ctl;
	struct wgd_ip add, del;

	ctl = fk_ctl(fk);
	/* The incremental path does not read the device: see wgctl.c. */
	ip4(&add, 10, 0, 0, 9, 32);
	fk->sets = fk->dumps = 0;
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_a, &add, 1, NULL, 0), 0);
	ck_assert_int_eq(fk->sets, 1);
	ck_assert_int_eq(fk->dumps, 0);
	/* Nothing to do: nothing sent. */
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_a, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(fk->sets, 1);

	/* Gone before the write: WGPEER_F_UPDATE_ONLY keeps it gone. */
	ip4(&add, 10, 0, 0, 10, 32);
	fk->vanish_on_set = true;
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_b, &add, 1, NULL, 0), 0);
	ck_assert_int_eq(fk->sets, 2);
	ck_assert_uint_eq(fk->n_peers, 1);
	ck_assert_ptr_null(fk_find(fk, key_b));
	wgctl_close(ctl);
	free(fk);

	/*
	 * The read-modify-write fallback reads, and finds a peer missing that
	 * the view still has.
	 */
	fk = fk_new(false);
	ctl = fk_ctl(fk);
	fk->n_peers = 1;                    /* B goes */
	ip4(&del, 10, 0, 1, 0, 24);
	fk->sets = fk->dumps = 0;
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_b, &add, 1, &del, 1), -ENOENT);
	ck_assert_int_eq(fk->dumps, 1);
	ck_assert_int_eq(fk->sets, 1);      /* the refused probe alone */
	ck_assert_uint_eq(fk->n_peers, 1);
	ck_assert_ptr_null(fk_find(fk, key_b));
	wgctl_close(ctl);
	free(fk);
}
END_TEST

/*
 * The mesh's peer operations through the handle: one message each, and the
 * view follows them with no dump: a fresh peer holds nothing, a removed
 * peer's allowed-IPs are free.
 */
START_TEST(io_peer_ops)
{
	struct fake_kernel *fk = fk_new(true);
	struct wgd_endpoint ep = endpoint4(192, 0, 2, 7, 51820);
	struct wgd_ip a9, a1;
	struct wgdev_peer *p;
	struct wgctl *ctl;
	struct wgdev *dev;
	struct fk_peer *c;

	ctl = fk_ctl(fk);
	ip4(&a9, 10, 0, 0, 9, 32);
	ip4(&a1, 10, 0, 0, 1, 32);
	fk->sets = fk->dumps = 0;
	ck_assert_int_eq(wgctl_peer_add(ctl, key_c, &ep, 25), 0);
	ck_assert_int_eq(fk->sets, 1);
	ck_assert_int_eq(fk->removals, 0);
	c = fk_find(fk, key_c);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->endpoint_len, sizeof(struct sockaddr_in));
	ck_assert_uint_eq(c->keepalive, 25);
	ck_assert_uint_eq(c->n, 0);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_c, &a9, 1, NULL, 0), 0);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_b, &a9, 1, NULL, 0), -EEXIST);
	ck_assert_uint_eq(fk_find(fk, key_c)->n, 1);

	/* Afresh, in one message: removed, then added with nothing. */
	ip6(&ep.addr, 0x2001, 7, 128);
	ep.port = 4000;
	ck_assert_int_eq(wgctl_peer_add(ctl, key_c, &ep, 5), 0);
	ck_assert_int_eq(fk->sets, 3);
	ck_assert_int_eq(fk->removals, 1);
	c = fk_find(fk, key_c);
	ck_assert_uint_eq(c->n, 0);
	ck_assert_uint_eq(c->endpoint_len, sizeof(struct sockaddr_in6));
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_b, &a9, 1, NULL, 0), 0);

	/* A leaves, and its addresses are free; removing it again is no error. */
	ck_assert_int_eq(wgctl_peer_remove(ctl, key_a), 0);
	ck_assert_int_eq(fk->removals, 2);
	ck_assert_ptr_null(fk_find(fk, key_a));
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_a, &a9, 1, NULL, 0), -ENOENT);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_b, &a1, 1, NULL, 0), 0);
	ck_assert_int_eq(wgctl_peer_remove(ctl, key_a), 0);
	ck_assert_int_eq(fk->removals, 2);
	ck_assert_int_eq(fk->dumps, 0);
	/* Bad input never reaches the kernel. */
	ep.port = 0;
	ck_assert_int_eq(wgctl_peer_add(ctl, key_a, &ep, 25), -EINVAL);
	ck_assert_int_eq(fk->sets, 7);

	/* Read back: the endpoint, the keepalive and the counters. */
	fk_find(fk, key_c)->rx = 1234;
	fk_find(fk, key_c)->tx = UINT64_MAX;
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	ck_assert_uint_eq(dev->n_peers, 2);
	p = wgdev_find_peer(dev, key_c);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p->endpoint.sa.sa_family, AF_INET6);
	ck_assert_uint_eq(ntohs(p->endpoint.sin6.sin6_port), 4000);
	ck_assert_mem_eq(&p->endpoint.sin6.sin6_addr, ep.addr.bytes, 16);
	ck_assert_uint_eq(p->keepalive_s, 5);
	ck_assert_uint_eq(p->rx_bytes, 1234);
	ck_assert_uint_eq(p->tx_bytes, UINT64_MAX);
	ck_assert_uint_eq(p->n_allowedips, 0);
	wgdev_free(dev);
	wgctl_close(ctl);
	free(fk);
}
END_TEST

/* A refused message may have been made in part: the view is read again. */
START_TEST(io_peer_add_refused)
{
	struct fake_kernel *fk = fk_new(true);
	struct wgd_endpoint ep = endpoint4(192, 0, 2, 7, 51820);
	struct wgctl *ctl;
	struct wgd_ip a1;

	ctl = fk_ctl(fk);
	ip4(&a1, 10, 0, 0, 1, 32);
	fk->refuse_sets = -ENOMEM;
	fk->dumps = 0;
	ck_assert_int_eq(wgctl_peer_add(ctl, key_a, &ep, 25), -ENOMEM);
	ck_assert_ptr_null(fk_find(fk, key_a));
	fk->refuse_sets = 0;
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_a, &a1, 1, NULL, 0), -ENOENT);
	ck_assert_int_eq(fk->dumps, 1);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_b, &a1, 1, NULL, 0), 0);
	wgctl_close(ctl);
	free(fk);
}
END_TEST

/*
 * With no UAPI socket and a name no kernel device has, the kernel path
 * answers -ENODEV whether this kernel has WireGuard or not.
 */
START_TEST(open_missing_device)
{
	char dir[] = "/tmp/wgdev-genl-XXXXXX";
	struct wgctl *ctl = (struct wgctl *)1;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	wgctl_uapi_dir = dir;
	ck_assert_int_eq(wgctl_open(&ctl, "wgdnone0"), -ENODEV);
	ck_assert_ptr_null(ctl);
	ck_assert_int_eq(wgctl_open(&ctl, "../x"), -EINVAL);
	ck_assert_int_eq(wgctl_open(&ctl, ""), -EINVAL);
	rmdir(dir);
}
END_TEST

static Suite *wgdev_genl_suite(void)
{
	Suite *s = suite_create("wgdev_genl");
	TCase *tc = tcase_create("build");

	tcase_add_test(tc, build_get_device);
	tcase_add_test(tc, build_get_family);
	tcase_add_test(tc, build_set_remove_and_add);
	tcase_add_test(tc, build_set_split);
	tcase_add_test(tc, build_set_empty_replace);
	tcase_add_test(tc, build_set_errors);
	tcase_add_test(tc, build_add_peer);
	tcase_add_test(tc, build_add_peer_attrs);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, parse_dump_one_buffer);
	tcase_add_test(tc, parse_dump_multipart);
	tcase_add_test(tc, parse_dump_per_message);
	tcase_add_test(tc, parse_dump_interrupted);
	tcase_add_test(tc, parse_dump_errors);
	tcase_add_loop_test(tc, parse_malformed, 0, 19);
	tcase_add_test(tc, parse_unknown_attrs_skipped);
	tcase_add_test(tc, parse_family);
	tcase_add_test(tc, parse_ack);
	tcase_add_test(tc, parse_huge_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("model");
	tcase_add_test(tc, open_missing_device);
	suite_add_tcase(s, tc);

	tc = tcase_create("io");
	tcase_add_test(tc, io_open_and_read);
	tcase_add_test(tc, io_dump_restarts);
	tcase_add_test(tc, io_update_with_flags);
	tcase_add_test(tc, io_update_fallback);
	tcase_add_test(tc, io_update_long_list);
	tcase_add_test(tc, io_update_missing_peer);
	tcase_add_test(tc, io_peer_ops);
	tcase_add_test(tc, io_peer_add_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wgdev_genl_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
