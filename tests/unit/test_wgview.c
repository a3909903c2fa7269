// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../common/wgview.h"

static void key_of(uint8_t key[WG_KEY_LEN], unsigned n)
{
	memset(key, 0, WG_KEY_LEN);
	key[0] = (uint8_t)(n >> 8);
	key[1] = (uint8_t)n;
	key[31] = 0x5a;
}

static struct wgd_ip host4(unsigned n)
{
	struct wgd_ip ip = { .family = AF_INET, .cidr = 32 };

	ip.bytes[0] = 10;
	ip.bytes[1] = (uint8_t)(n >> 16);
	ip.bytes[2] = (uint8_t)(n >> 8);
	ip.bytes[3] = (uint8_t)n;
	return ip;
}

/* A device of n peers, peer i holding 10.0.0.0/24-style 10.i.0.0/16 and host4(i). */
static struct wgdev *device(unsigned n)
{
	struct wgdev *dev = calloc(1, sizeof(*dev));
	uint8_t key[WG_KEY_LEN];

	ck_assert_ptr_nonnull(dev);
	for (unsigned i = 0; i < n; i++) {
		struct wgdev_peer *p;
		struct wgd_ip net = { .family = AF_INET, .cidr = 16 };

		key_of(key, i);
		ck_assert_int_eq(wgdev_add_peer(dev, key, &p), 0);
		net.bytes[0] = 172;
		net.bytes[1] = (uint8_t)i;
		ck_assert_int_eq(wgdev_peer_add_allowedip(p, &net), 0);
		struct wgd_ip h = host4(i);
		ck_assert_int_eq(wgdev_peer_add_allowedip(p, &h), 0);
	}
	return dev;
}

START_TEST(test_checks)
{
	struct wgview *v = wgview_new();
	struct wgdev *dev = device(3);
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN], stranger[WG_KEY_LEN];
	struct wgd_ip ip;

	key_of(a, 0);
	key_of(b, 1);
	key_of(stranger, 99);
	ck_assert(!wgview_valid(v));
	ck_assert_int_eq(wgview_rebuild(v, dev, 1000), 0);
	ck_assert(wgview_valid(v));
	ck_assert_uint_eq(wgview_peer_count(v), 3);
	ck_assert_uint_eq(wgview_age_ms(v, 1500), 500);
	ck_assert(wgview_has_peer(v, b));
	ck_assert(!wgview_has_peer(v, stranger));

	ip = host4(5);
	ck_assert_int_eq(wgview_check(v, stranger, &ip, 1), -ENOENT);
	ck_assert_int_eq(wgview_check(v, a, &ip, 1), 0);
	/* B's own address: another peer may not have it, B may. */
	ip = host4(1);
	ck_assert_int_eq(wgview_check(v, a, &ip, 1), -EEXIST);
	ck_assert_int_eq(wgview_check(v, b, &ip, 1), 0);
	/* Exact prefixes only: a host inside B's /16 is not B's entry. */
	ip = (struct wgd_ip){ .family = AF_INET, .cidr = 32, .bytes = { 172, 1, 0, 7 } };
	ck_assert_int_eq(wgview_check(v, a, &ip, 1), 0);
	/* Host bits past the prefix length do not hide a clash. */
	ip = (struct wgd_ip){ .family = AF_INET, .cidr = 16, .bytes = { 172, 1, 9, 9 } };
	ck_assert_int_eq(wgview_check(v, a, &ip, 1), -EEXIST);

	wgview_invalidate(v);
	ck_assert(!wgview_valid(v));
	ck_assert(!wgview_has_peer(v, b));
	wgdev_free(dev);
	wgview_free(v);
}
END_TEST

START_TEST(test_follows_updates)
{
	struct wgview *v = wgview_new();
	struct wgdev *dev = device(2);
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN];
	struct wgd_ip moved = host4(1), fresh = host4(7);

	key_of(a, 0);
	key_of(b, 1);
	ck_assert_int_eq(wgview_rebuild(v, dev, 0), 0);
	/* B gives its address up and takes another; A may then have B's old one. */
	ck_assert_int_eq(wgview_apply(v, b, &fresh, 1, &moved, 1), 0);
	ck_assert_int_eq(wgview_check(v, a, &moved, 1), 0);
	ck_assert_int_eq(wgview_check(v, a, &fresh, 1), -EEXIST);
	/* A removal of what the peer does not hold takes nothing from others. */
	ck_assert_int_eq(wgview_apply(v, a, NULL, 0, &fresh, 1), 0);
	ck_assert_int_eq(wgview_check(v, a, &fresh, 1), -EEXIST);
	/* Removed and re-added in one update: the addition wins. */
	ck_assert_int_eq(wgview_apply(v, b, &fresh, 1, &fresh, 1), 0);
	ck_assert_int_eq(wgview_check(v, a, &fresh, 1), -EEXIST);
	wgdev_free(dev);
	wgview_free(v);
}
END_TEST

/* Thousands of entries added and removed: every lookup stays exact. */
START_TEST(test_churn)
{
	enum { N = 4000 };
	struct wgview *v = wgview_new();
	struct wgdev *dev = device(2);
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN];
	static bool held[N];

	key_of(a, 0);
	key_of(b, 1);
	ck_assert_int_eq(wgview_rebuild(v, dev, 0), 0);
	for (unsigned i = 100; i < N; i++) {
		struct wgd_ip ip = host4(i);

		ck_assert_int_eq(wgview_apply(v, a, &ip, 1, NULL, 0), 0);
		held[i] = true;
	}
	/* Removals scattered through runs of probing, then some re-added. */
	for (unsigned i = 100; i < N; i++)
		if (i % 3 == 0 || i % 7 == 0) {
			struct wgd_ip ip = host4(i);

			ck_assert_int_eq(wgview_apply(v, a, NULL, 0, &ip, 1), 0);
			held[i] = false;
		}
	for (unsigned i = 100; i < N; i += 21) {
		struct wgd_ip ip = host4(i);

		ck_assert_int_eq(wgview_apply(v, a, &ip, 1, NULL, 0), 0);
		held[i] = true;
	}
	for (unsigned i = 100; i < N; i++) {
		struct wgd_ip ip = host4(i);

		ck_assert_int_eq(wgview_check(v, b, &ip, 1), held[i] ? -EEXIST : 0);
	}
	wgdev_free(dev);
	wgview_free(v);
}
END_TEST

START_TEST(test_empty_device)
{
	struct wgview *v = wgview_new();
	struct wgdev dev = { .n_peers = 0 };
	uint8_t a[WG_KEY_LEN];
	struct wgd_ip ip = host4(1);

	key_of(a, 0);
	ck_assert_int_eq(wgview_rebuild(v, &dev, 0), 0);
	ck_assert(wgview_valid(v));
	ck_assert_int_eq(wgview_check(v, a, &ip, 1), -ENOENT);
	ck_assert_int_eq(wgview_apply(v, a, &ip, 1, NULL, 0), 0);
	wgview_free(v);
}
END_TEST

/* Prefixes containing an address: found by length, followed through updates. */
START_TEST(test_covered)
{
	struct wgview *v = wgview_new();
	struct wgdev *dev = device(2);
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN], stranger[WG_KEY_LEN];
	struct wgd_ip in_a = { .family = AF_INET, .cidr = 32, .bytes = { 172, 0, 5, 5 } };
	struct wgd_ip net_a = { .family = AF_INET, .cidr = 16, .bytes = { 172, 0 } };
	struct wgd_ip all6 = { .family = AF_INET6, .cidr = 0 };
	struct wgd_ip h6 = { .family = AF_INET6, .cidr = 128, .bytes = { 0xfd, 1, [15] = 9 } };
	struct wgd_ip ha = host4(0);

	key_of(a, 0);
	key_of(b, 1);
	key_of(stranger, 99);
	ck_assert_int_eq(wgview_rebuild(v, dev, 0), 0);
	/* A's 172.0.0.0/16 holds the address; A itself is not kept from it. */
	ck_assert(wgview_covered(v, b, &in_a, 0));
	ck_assert(wgview_covered(v, b, &in_a, 16));
	ck_assert(!wgview_covered(v, b, &in_a, 17));
	ck_assert(!wgview_covered(v, a, &in_a, 0));
	ck_assert(wgview_covered(v, stranger, &in_a, 0));
	/* An exact entry counts, at any minimum up to its length. */
	ck_assert(wgview_covered(v, b, &ha, 32));
	ck_assert(wgview_holds(v, a, &ha));
	ck_assert(!wgview_holds(v, b, &ha));
	ck_assert(!wgview_holds(v, a, &in_a));
	ck_assert(!wgview_holds(v, stranger, &ha));

	/* A default route counts only when the minimum lets it. */
	ck_assert(!wgview_covered(v, b, &h6, 0));
	ck_assert_int_eq(wgview_apply(v, a, &all6, 1, NULL, 0), 0);
	ck_assert(wgview_covered(v, b, &h6, 0));
	ck_assert(!wgview_covered(v, b, &h6, 1));
	ck_assert(wgview_holds(v, a, &all6));

	/* Gone from A, the /16 holds nothing any more. */
	ck_assert_int_eq(wgview_apply(v, a, NULL, 0, &net_a, 1), 0);
	ck_assert(!wgview_covered(v, b, &in_a, 0));
	ck_assert(!wgview_holds(v, a, &net_a));
	/* Moved to B: B's now, kept from A. */
	ck_assert_int_eq(wgview_apply(v, b, &net_a, 1, NULL, 0), 0);
	ck_assert(wgview_covered(v, a, &in_a, 8));
	ck_assert(!wgview_covered(v, b, &in_a, 8));
	wgview_invalidate(v);
	ck_assert(!wgview_covered(v, a, &in_a, 0));
	wgdev_free(dev);
	wgview_free(v);
}
END_TEST

/*
 * Random additions, removals and moves among a few peers, against a plain
 * array of who holds what: removals move entries around inside the view,
 * and every lookup must still see what the model sees.
 */
START_TEST(test_model)
{
	enum { PEERS = 4, IPS = 3000, STEPS = 60000 };
	static uint8_t holder[IPS]; /* peer + 1, or 0 for no one */
	struct wgview *v = wgview_new();
	struct wgdev *dev = device(PEERS);
	uint8_t keys[PEERS][WG_KEY_LEN];
	uint32_t seed = 12345;

	for (unsigned p = 0; p < PEERS; p++)
		key_of(keys[p], p);
	ck_assert_int_eq(wgview_rebuild(v, dev, 0), 0);
	for (unsigned step = 0; step < STEPS; step++) {
		unsigned r, i, p;
		struct wgd_ip ip;

		seed = seed * 1103515245 + 12345;
		r = seed >> 8;
		i = r % IPS;
		p = (r / IPS) % PEERS;
		ip = host4(100 + i);
		if ((r >> 20) & 1) {
			ck_assert_int_eq(wgview_apply(v, keys[p], &ip, 1, NULL, 0), 0);
			holder[i] = (uint8_t)(p + 1);
		} else {
			ck_assert_int_eq(wgview_apply(v, keys[p], NULL, 0, &ip, 1), 0);
			if (holder[i] == p + 1)
				holder[i] = 0;
		}
		if (step % 997 == 0) {
			for (i = 0; i < IPS; i++) {
				ip = host4(100 + i);
				for (p = 0; p < PEERS; p++)
					ck_assert(wgview_holds(v, keys[p], &ip) == (holder[i] == p + 1));
			}
		}
	}
	/* The device's own entries were never touched. */
	for (unsigned p = 0; p < PEERS; p++) {
		struct wgd_ip ip = host4(p);

		ck_assert(wgview_holds(v, keys[p], &ip));
	}
	wgdev_free(dev);
	wgview_free(v);
}
END_TEST

/* A device of thousands of peers, and a prefix two peers list. */
START_TEST(test_many)
{
	enum { N = 20000 };
	struct wgview *v = wgview_new();
	struct wgdev *dev = device(N);
	uint8_t key[WG_KEY_LEN], other[WG_KEY_LEN];
	struct wgd_ip net = { .family = AF_INET, .cidr = 16, .bytes = { 172, 7 } };

	/* 172.7.0.0/16 is peer 7's, and peer 263's too (i & 0xff == 7), and
	 * so on: the last to list it holds it, as on the device. */
	ck_assert_int_eq(wgview_rebuild(v, dev, 0), 0);
	ck_assert_uint_eq(wgview_peer_count(v), N);
	for (unsigned i = 0; i < N; i++) {
		struct wgd_ip h = host4(i);

		key_of(key, i);
		key_of(other, (i + 1) % N);
		ck_assert(wgview_holds(v, key, &h));
		ck_assert(!wgview_holds(v, other, &h));
		ck_assert_int_eq(wgview_check(v, other, &h, 1), -EEXIST);
	}
	key_of(key, 7 + 256 * ((N - 1 - 7) / 256));
	ck_assert(wgview_holds(v, key, &net));
	key_of(other, 7);
	ck_assert(!wgview_holds(v, other, &net));
	/* Every host address given up, then taken again by its neighbour. */
	for (unsigned i = 0; i < N; i++) {
		struct wgd_ip h = host4(i);

		key_of(key, i);
		ck_assert_int_eq(wgview_apply(v, key, NULL, 0, &h, 1), 0);
	}
	for (unsigned i = 0; i < N; i++) {
		struct wgd_ip h = host4(i);

		key_of(key, i);
		key_of(other, (i + 1) % N);
		ck_assert(!wgview_holds(v, key, &h));
		ck_assert_int_eq(wgview_check(v, key, &h, 1), 0);
		ck_assert_int_eq(wgview_apply(v, other, &h, 1, NULL, 0), 0);
	}
	for (unsigned i = 0; i < N; i++) {
		struct wgd_ip h = host4(i);

		key_of(key, i);
		key_of(other, (i + 1) % N);
		ck_assert(wgview_holds(v, other, &h));
		ck_assert(wgview_covered(v, key, &h, 32));
	}
	wgdev_free(dev);
	wgview_free(v);
}
END_TEST

/* The mesh's peers: added afresh, with nothing, and removed with all they held. */
START_TEST(test_peers_come_and_go)
{
	struct wgview *v = wgview_new();
	struct wgdev *dev = device(3);
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN], c[WG_KEY_LEN], m[WG_KEY_LEN];
	struct wgd_ip ip9 = host4(9), ip20 = host4(20), ip_b = host4(1), ip_c = host4(2);

	key_of(a, 0);
	key_of(b, 1);
	key_of(c, 2);
	key_of(m, 99);
	/* Nothing on an invalid view: it is read again before it is used. */
	ck_assert_int_eq(wgview_add_peer(v, m), 0);
	ck_assert(!wgview_valid(v));

	ck_assert_int_eq(wgview_rebuild(v, dev, 0), 0);
	ck_assert_int_eq(wgview_add_peer(v, m), 0);
	ck_assert(wgview_has_peer(v, m));
	ck_assert_uint_eq(wgview_peer_count(v), 4);
	ck_assert_int_eq(wgview_check(v, m, &ip9, 1), 0);
	ck_assert_int_eq(wgview_apply(v, m, &ip9, 1, NULL, 0), 0);
	ck_assert_int_eq(wgview_check(v, a, &ip9, 1), -EEXIST);
	/* Again, afresh: what it held is free. */
	ck_assert_int_eq(wgview_add_peer(v, m), 0);
	ck_assert_uint_eq(wgview_peer_count(v), 4);
	ck_assert(!wgview_holds(v, m, &ip9));
	ck_assert_int_eq(wgview_check(v, a, &ip9, 1), 0);
	/* A device peer made afresh loses its own entries too. */
	ck_assert_int_eq(wgview_add_peer(v, c), 0);
	ck_assert(!wgview_holds(v, c, &ip_c));
	ck_assert_int_eq(wgview_check(v, a, &ip_c, 1), 0);

	/* B leaves from the middle; the last peer, M, takes its place. */
	ck_assert_int_eq(wgview_apply(v, m, &ip20, 1, NULL, 0), 0);
	ck_assert_int_eq(wgview_remove_peer(v, b), 0);
	ck_assert(!wgview_has_peer(v, b));
	ck_assert_uint_eq(wgview_peer_count(v), 3);
	ck_assert_int_eq(wgview_check(v, b, &ip9, 1), -ENOENT);
	ck_assert_int_eq(wgview_check(v, a, &ip_b, 1), 0);
	ck_assert(!wgview_covered(v, a, &ip_b, 0));
	ck_assert(wgview_holds(v, m, &ip20));
	ck_assert_int_eq(wgview_check(v, a, &ip20, 1), -EEXIST);
	ck_assert(wgview_holds(v, a, &(struct wgd_ip){ .family = AF_INET, .cidr = 16,
						     .bytes = { 172, 0 } }));
	/* Absent: no change. */
	ck_assert_int_eq(wgview_remove_peer(v, b), 0);
	ck_assert_uint_eq(wgview_peer_count(v), 3);
	/* The last one, and back. */
	ck_assert_int_eq(wgview_remove_peer(v, c), 0);
	ck_assert_int_eq(wgview_remove_peer(v, m), 0);
	ck_assert_int_eq(wgview_remove_peer(v, a), 0);
	ck_assert_uint_eq(wgview_peer_count(v), 0);
	ck_assert_int_eq(wgview_check(v, b, &ip20, 1), -ENOENT);
	ck_assert_int_eq(wgview_add_peer(v, b), 0);
	ck_assert_int_eq(wgview_check(v, b, &ip20, 1), 0);
	ck_assert(wgview_valid(v));
	wgdev_free(dev);
	wgview_free(v);
}
END_TEST

/*
 * Peers added, re-added and removed at random among allowed-IP changes,
 * against a plain model: a removal moves the last peer into its place, and
 * every lookup must still see what the model sees.
 */
START_TEST(test_peers_model)
{
	enum { KEYS = 40, IPS = 300, STEPS = 40000 };
	static uint8_t holder[IPS]; /* key + 1, or 0 for no one */
	static bool present[KEYS];
	struct wgview *v = wgview_new();
	struct wgdev *dev = device(4);
	uint8_t keys[KEYS][WG_KEY_LEN];
	uint32_t seed = 777;
	size_t n_present = 4;

	for (unsigned k = 0; k < KEYS; k++)
		key_of(keys[k], k);
	for (unsigned k = 0; k < 4; k++)
		present[k] = true;
	ck_assert_int_eq(wgview_rebuild(v, dev, 0), 0);
	for (unsigned step = 0; step < STEPS; step++) {
		unsigned r, i, k, op;
		struct wgd_ip ip;

		seed = seed * 1103515245 + 12345;
		r = seed >> 8;
		i = r % IPS;
		k = (r / IPS) % KEYS;
		op = (r >> 18) % 8;
		ip = host4(100 + i);
		if (op == 0) {
			ck_assert_int_eq(wgview_add_peer(v, keys[k]), 0);
			n_present += !present[k];
			present[k] = true;
			for (unsigned j = 0; j < IPS; j++)
				if (holder[j] == k + 1)
					holder[j] = 0;
		} else if (op == 1) {
			ck_assert_int_eq(wgview_remove_peer(v, keys[k]), 0);
			n_present -= present[k];
			present[k] = false;
			for (unsigned j = 0; j < IPS; j++)
				if (holder[j] == k + 1)
					holder[j] = 0;
		} else if (op < 5) {
			ck_assert_int_eq(wgview_check(v, keys[k], &ip, 1),
					 !present[k] ? -ENOENT :
					 holder[i] && holder[i] != k + 1 ? -EEXIST : 0);
			ck_assert_int_eq(wgview_apply(v, keys[k], &ip, 1, NULL, 0), 0);
			if (present[k])
				holder[i] = (uint8_t)(k + 1);
		} else {
			ck_assert_int_eq(wgview_apply(v, keys[k], NULL, 0, &ip, 1), 0);
			if (holder[i] == k + 1)
				holder[i] = 0;
		}
		ck_assert(wgview_has_peer(v, keys[k]) == present[k]);
		if (step % 499 == 0) {
			ck_assert_uint_eq(wgview_peer_count(v), n_present);
			for (i = 0; i < IPS; i++) {
				ip = host4(100 + i);
				for (k = 0; k < KEYS; k++)
					ck_assert(wgview_holds(v, keys[k], &ip) == (holder[i] == k + 1));
			}
		}
	}
	ck_assert(wgview_valid(v));
	wgdev_free(dev);
	wgview_free(v);
}
END_TEST

static Suite *wgview_suite(void)
{
	Suite *s = suite_create("wgview");
	TCase *tc = tcase_create("view");

	tcase_add_test(tc, test_checks);
	tcase_add_test(tc, test_follows_updates);
	tcase_add_test(tc, test_churn);
	tcase_add_test(tc, test_empty_device);
	tcase_add_test(tc, test_covered);
	tcase_add_test(tc, test_model);
	tcase_add_test(tc, test_many);
	tcase_add_test(tc, test_peers_come_and_go);
	tcase_add_test(tc, test_peers_model);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wgview_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
