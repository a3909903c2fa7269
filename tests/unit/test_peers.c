// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "../../server/peers.h"

static void key_of(uint8_t key[WG_KEY_LEN], unsigned i)
{
	memset(key, 0xa5, WG_KEY_LEN);
	key[0] = (uint8_t)(i >> 16);
	key[1] = (uint8_t)(i >> 8);
	key[2] = (uint8_t)i;
}

static struct wgd_ip ll_of(unsigned i)
{
	struct wgd_ip ip = { .family = AF_INET6, .cidr = 128, .bytes = { 0xfe, 0x80 } };

	ip.bytes[13] = (uint8_t)(i >> 16);
	ip.bytes[14] = (uint8_t)(i >> 8);
	ip.bytes[15] = (uint8_t)(i + 1);
	return ip;
}

/* Peer i has its link-local (every third peer has none) and a pool address. */
START_TEST(lookups)
{
	enum { N = 20000 };
	struct wgdev dev = { 0 };
	struct peer_index *pi;
	uint8_t key[WG_KEY_LEN];

	for (unsigned i = 0; i < N; i++) {
		struct wgdev_peer *p;
		struct wgd_ip ll = ll_of(i), v4 = { .family = AF_INET, .cidr = 32, .bytes = { 10 } };

		key_of(key, i);
		ck_assert_int_eq(wgdev_add_peer(&dev, key, &p), 0);
		v4.bytes[3] = (uint8_t)i;
		ck_assert_int_eq(wgdev_peer_add_allowedip(p, &v4), 0);
		if (i % 3)
			ck_assert_int_eq(wgdev_peer_add_allowedip(p, &ll), 0);
	}
	pi = peer_index_build(&dev);
	ck_assert_ptr_nonnull(pi);
	ck_assert_uint_eq(peer_index_count(pi), N);
	for (unsigned i = 0; i < N; i++) {
		struct wgd_ip ll = ll_of(i);
		const uint8_t *got = peer_index_lookup(pi, &ll.ip6);

		key_of(key, i);
		ck_assert_uint_eq(peer_index_find_key(pi, key), i);
		ck_assert(peer_index_has_key(pi, key));
		if (i % 3) {
			ck_assert_ptr_nonnull(got);
			ck_assert_mem_eq(got, key, WG_KEY_LEN);
		} else {
			ck_assert_ptr_null(got);
		}
	}
	/* Neither a stranger's key nor a global address finds anyone. */
	key_of(key, N + 5);
	ck_assert_uint_eq(peer_index_find_key(pi, key), SIZE_MAX);
	ck_assert(!peer_index_has_key(pi, key));
	struct wgd_ip global = ll_of(1);
	global.bytes[0] = 0xfd;
	ck_assert_ptr_null(peer_index_lookup(pi, &global.ip6));
	peer_index_free(pi);
	for (size_t i = 0; i < dev.n_peers; i++)
		free(dev.peers[i].allowedips);
	free(dev.peers);
}
END_TEST

START_TEST(empty_device)
{
	struct wgdev dev = { 0 };
	struct peer_index *pi = peer_index_build(&dev);
	uint8_t key[WG_KEY_LEN];
	struct wgd_ip ll = ll_of(0);

	ck_assert_ptr_nonnull(pi);
	key_of(key, 0);
	ck_assert_uint_eq(peer_index_count(pi), 0);
	ck_assert_uint_eq(peer_index_find_key(pi, key), SIZE_MAX);
	ck_assert_ptr_null(peer_index_lookup(pi, &ll.ip6));
	peer_index_free(pi);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("peers");
	TCase *tc = tcase_create("index");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_add_test(tc, lookups);
	tcase_add_test(tc, empty_device);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
