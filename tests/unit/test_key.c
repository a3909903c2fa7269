// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "../../common/key.h"

static const char key_b64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

START_TEST(base64_round_trip)
{
	uint8_t key[WG_KEY_LEN], back[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN];

	for (int i = 0; i < WG_KEY_LEN; i++)
		key[i] = (uint8_t)i;
	wgkey_to_base64(b64, key);
	ck_assert_str_eq(b64, key_b64);
	ck_assert_int_eq(wgkey_from_base64(back, b64), 0);
	ck_assert_mem_eq(back, key, WG_KEY_LEN);
}
END_TEST

START_TEST(base64_rejects)
{
	uint8_t key[WG_KEY_LEN];

	ck_assert_int_eq(wgkey_from_base64(key, ""), -EINVAL);
	ck_assert_int_eq(wgkey_from_base64(key, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"), -EINVAL);
	ck_assert_int_eq(wgkey_from_base64(key, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=="), -EINVAL);
	ck_assert_int_eq(wgkey_from_base64(key, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh!="), -EINVAL);
}
END_TEST

/* The vectors were computed independently: BLAKE2b with an 8-byte digest
 * over "wg-dynamic link-local v1" || key. */
START_TEST(derived_linklocal_vectors)
{
	static const struct {
		const char *key, *ll;
	} v[] = {
		{ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "fe80::8ce7:3284:4099:4368" },
		{ "XhyjCYOT4pXsAFUh/aQDe8v4xJRg3/7Pq0xR50pq8UM=", "fe80::11b4:5019:e11d:64d9" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t key[WG_KEY_LEN];
		struct wgd_ip ll;
		struct in6_addr want;

		ck_assert_int_eq(wgkey_from_base64(key, v[i].key), 0);
		wgkey_derive_linklocal(&ll, key);
		ck_assert_int_eq(inet_pton(AF_INET6, v[i].ll, &want), 1);
		ck_assert_int_eq(ll.family, AF_INET6);
		ck_assert_int_eq(ll.cidr, 128);
		ck_assert_mem_eq(&ll.ip6, &want, 16);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("key");
	TCase *tc = tcase_create("key");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_add_test(tc, base64_round_trip);
	tcase_add_test(tc, base64_rejects);
	tcase_add_test(tc, derived_linklocal_vectors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
