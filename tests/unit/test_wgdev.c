// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <check.h>

#include "../../common/wgdev.h"
#include "test-addrs.h"

START_TEST(merge_helpers)
{
	struct wgd_ip cur[3], add[2], del[2], *out;
	size_t n;

	ip4(&cur[0], 10, 0, 0, 1, 32);
	ip4(&cur[1], 10, 0, 0, 2, 32);
	ip6(&cur[2], 0xfd00, 1, 128);
	ip4(&del[0], 10, 0, 0, 2, 32);
	ip4(&del[1], 10, 0, 0, 9, 32);    /* absent: ignored */
	ip4(&add[0], 10, 0, 0, 1, 32);    /* present: not repeated */
	ip4(&add[1], 10, 0, 0, 3, 32);
	ck_assert_int_eq(wgdev_allowedips_apply(cur, 3, add, 2, del, 2, &out, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert(wgd_ip_equal(&out[0], &cur[0]));
	ck_assert(wgd_ip_equal(&out[1], &cur[2]));
	ck_assert(wgd_ip_equal(&out[2], &add[1]));
	free(out);

	/* Everything removed: an empty list. */
	ck_assert_int_eq(wgdev_allowedips_apply(cur, 1, NULL, 0, cur, 1, &out, &n), 0);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(n, 0);

	/*
	 * Counts whose sum wraps to 0 are refused before anything is read:
	 * the size check once let them through to writes into a NULL list
	 * (found by the clang static analyzer).
	 */
	out = (struct wgd_ip *)cur;
	n = 7;
	ck_assert_int_eq(wgdev_allowedips_apply(cur, 1, add, SIZE_MAX, NULL, 0, &out, &n),
			 -ENOMEM);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(n, 0);

	/* Canonical form: host bits cleared, bad prefixes refused. */
	ip4(&add[0], 10, 1, 2, 3, 16);
	ck_assert_int_eq(wgdev_allowedip_canon(&add[1], &add[0]), 0);
	ck_assert_uint_eq(add[1].bytes[2], 0);
	ck_assert_uint_eq(add[1].bytes[3], 0);
	add[0].cidr = 33;
	ck_assert_int_eq(wgdev_allowedip_canon(&add[1], &add[0]), -EINVAL);
}
END_TEST

START_TEST(peer_arrays_grow)
{
	struct wgdev *dev = calloc(1, sizeof(*dev));
	struct wgdev_peer *peer;
	uint8_t key[WG_KEY_LEN] = { 0 };
	struct wgd_ip ip;

	for (unsigned i = 0; i < 300; ++i) {
		key[0] = (uint8_t)i;
		key[1] = (uint8_t)(i >> 8);
		ck_assert_int_eq(wgdev_add_peer(dev, key, &peer), 0);
		for (unsigned j = 0; j < i % 19; ++j) {
			ip4(&ip, 10, (uint8_t)i, (uint8_t)j, 0, 24);
			ck_assert_int_eq(wgdev_peer_add_allowedip(peer, &ip), 0);
		}
	}
	ck_assert_uint_eq(dev->n_peers, 300);
	key[0] = 299 & 0xff;
	key[1] = 299 >> 8;
	peer = wgdev_find_peer(dev, key);
	ck_assert_ptr_nonnull(peer);
	ck_assert_uint_eq(peer->n_allowedips, 299 % 19);
	ck_assert_uint_eq(peer->allowedips[peer->n_allowedips - 1].bytes[2], 299 % 19 - 1);
	wgdev_free(dev);
	wgdev_free(NULL);
}
END_TEST

/* A device read once follows the changes made since, and forgets no peer. */
START_TEST(follow_changes)
{
	struct wgdev *dev = calloc(1, sizeof(*dev));
	uint8_t key[WG_KEY_LEN] = { 1 }, other[WG_KEY_LEN] = { 2 };
	struct wgd_ip ip[3];
	struct wgdev_peer *peer;

	ip4(&ip[0], 10, 0, 0, 1, 32);
	ip4(&ip[1], 10, 0, 0, 2, 32);
	ip6(&ip[2], 0xfd00, 1, 128);
	ck_assert_int_eq(wgdev_add_peer(dev, key, &peer), 0);
	ck_assert_int_eq(wgdev_peer_add_allowedip(peer, &ip[0]), 0);
	ck_assert_int_eq(wgdev_peer_add_allowedip(peer, &ip[1]), 0);
	peer->last_handshake_sec = 1700000000;
	peer->last_handshake_nsec = 999999999;
	peer->keepalive_s = 25;
	peer->rx_bytes = 1;
	peer->tx_bytes = UINT64_MAX;

	wgdev_follow(&dev, key, &ip[2], 1, &ip[0], 1);
	ck_assert_ptr_nonnull(dev);
	peer = wgdev_find_peer(dev, key);
	ck_assert_uint_eq(peer->n_allowedips, 2);
	ck_assert(wgd_ip_equal(&peer->allowedips[0], &ip[1]));
	ck_assert(wgd_ip_equal(&peer->allowedips[1], &ip[2]));
	/* Only the list changes: the rest of the peer is as it was read. */
	ck_assert_int_eq(peer->last_handshake_sec, 1700000000);
	ck_assert_uint_eq(peer->last_handshake_nsec, 999999999);
	ck_assert_uint_eq(peer->keepalive_s, 25);
	ck_assert_uint_eq(peer->rx_bytes, 1);
	ck_assert_uint_eq(peer->tx_bytes, UINT64_MAX);

	/* A peer the device did not have is no reason to read it again. */
	wgdev_follow(&dev, other, &ip[0], 1, NULL, 0);
	ck_assert_ptr_nonnull(dev);
	ck_assert_uint_eq(dev->n_peers, 1);
	wgdev_free(dev);

	/* Nothing read yet: nothing to follow. */
	dev = NULL;
	wgdev_follow(&dev, key, &ip[0], 1, NULL, 0);
	ck_assert_ptr_null(dev);
}
END_TEST

/* Endpoints as the protocol writes them: IPv4-mapped as IPv4, none as none. */
START_TEST(peer_endpoints)
{
	struct wgdev_peer p;
	struct wgd_endpoint ep;
	char buf[WGD_ENDPOINT_STRLEN];

	memset(&p, 0, sizeof(p));
	wgdev_peer_endpoint(&p, &ep);
	ck_assert_uint_eq(ep.addr.family, 0);
	ck_assert_uint_eq(ep.port, 0);

	p.endpoint.sin.sin_family = AF_INET;
	p.endpoint.sin.sin_port = htons(51820);
	p.endpoint.sin.sin_addr.s_addr = htonl(0xc6336414); /* 198.51.100.20 */
	wgdev_peer_endpoint(&p, &ep);
	ck_assert_str_eq(wgd_endpoint_format(&ep, buf, sizeof(buf)), "198.51.100.20:51820");

	memset(&p, 0, sizeof(p));
	p.endpoint.sin6.sin6_family = AF_INET6;
	p.endpoint.sin6.sin6_port = htons(7);
	p.endpoint.sin6.sin6_addr.s6_addr[10] = 0xff;
	p.endpoint.sin6.sin6_addr.s6_addr[11] = 0xff;
	p.endpoint.sin6.sin6_addr.s6_addr[12] = 10;
	p.endpoint.sin6.sin6_addr.s6_addr[15] = 1;
	wgdev_peer_endpoint(&p, &ep);
	ck_assert_str_eq(wgd_endpoint_format(&ep, buf, sizeof(buf)), "10.0.0.1:7");

	p.endpoint.sin6.sin6_addr.s6_addr[0] = 0x20;
	p.endpoint.sin6.sin6_addr.s6_addr[1] = 0x01;
	p.endpoint.sin6.sin6_addr.s6_addr[10] = 0;
	wgdev_peer_endpoint(&p, &ep);
	ck_assert_uint_eq(ep.addr.family, AF_INET6);
	ck_assert_uint_eq(ep.port, 7);
}
END_TEST

static Suite *wgdev_suite(void)
{
	Suite *s = suite_create("wgdev");
	TCase *tc = tcase_create("model");

	tcase_add_test(tc, merge_helpers);
	tcase_add_test(tc, peer_arrays_grow);
	tcase_add_test(tc, follow_changes);
	tcase_add_test(tc, peer_endpoints);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wgdev_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
