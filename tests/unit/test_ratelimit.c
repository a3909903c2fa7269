// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../../common/ratelimit.h"

/* Big enough to be worth keeping off the stack. */
static struct ratelimit rl;

static uint8_t key_a[32] = { 1 }, key_b[32] = { 2 };

/* Whether a line of (key, cause) goes out at now; the count it carries in *more. */
static bool pass(const uint8_t *key, unsigned cause, uint64_t now, uint32_t *more)
{
	return ratelimit_pass(&rl, key, 32, cause, now, more);
}

static void setup(void)
{
	ratelimit_init(&rl, 10000);
}

START_TEST(once_per_interval)
{
	uint32_t more = 99;

	ck_assert(pass(key_a, 1, 5000, &more));
	ck_assert_uint_eq(more, 0);
	/* Held back until the interval is over, and counted. */
	for (uint64_t t = 5000; t < 15000; t += 1000)
		ck_assert(!pass(key_a, 1, t, &more));
	ck_assert(pass(key_a, 1, 15000, &more));
	ck_assert_uint_eq(more, 10);
	/* The count starts again with each line that goes out. */
	ck_assert(!pass(key_a, 1, 15001, &more));
	ck_assert(pass(key_a, 1, 40000, &more));
	ck_assert_uint_eq(more, 1);
	ck_assert(pass(key_a, 1, 50000, &more));
	ck_assert_uint_eq(more, 0);
}
END_TEST

START_TEST(pairs_apart)
{
	uint32_t more;

	ck_assert(pass(key_a, 1, 0, &more));
	ck_assert(!pass(key_a, 1, 1, &more));
	/* Another cause of the same peer, and another peer of the same cause. */
	ck_assert(pass(key_a, 2, 1, &more));
	ck_assert(pass(key_b, 1, 1, &more));
	ck_assert(!pass(key_b, 1, 2, &more));
	ck_assert(!pass(key_a, 2, 2, &more));
	/* Keys of other lengths are other keys, even as zero-padded prefixes. */
	ck_assert(ratelimit_pass(&rl, key_a, 16, 1, 3, &more));
	ck_assert(ratelimit_pass(&rl, key_a, 1, 1, 3, &more));
	ck_assert(!ratelimit_pass(&rl, key_a, 1, 1, 4, &more));
	ck_assert(ratelimit_pass(&rl, "", 0, 1, 3, &more));
}
END_TEST

/* Another table draws another hash key, and answers the same. */
START_TEST(hash_key_drawn)
{
	static struct ratelimit other;
	uint32_t more;

	ratelimit_init(&other, 10000);
	ck_assert_mem_ne(rl.hash_key, other.hash_key, sizeof(rl.hash_key));
	ck_assert(ratelimit_pass(&other, key_a, 32, 1, 0, &more));
	ck_assert(!ratelimit_pass(&other, key_a, 32, 1, 1, &more));
}
END_TEST

/*
 * The table never grows: a flood of new pairs, many times the slots, each
 * gets its first line out and evicts; the memory is the struct's, fixed at
 * build time. Pairs of a flood long past make way for new ones before the
 * pairs whose interval still runs.
 */
START_TEST(bounded_by_construction)
{
	enum { FLOOD = RATELIMIT_SLOTS * 16, QUIET = 64, FRESH = RATELIMIT_SLOTS / 8 };
	uint8_t key[32] = { 0 };
	uint32_t more;
	unsigned held = 0;

	/*
	 * Where pairs land depends on the hash key, drawn at random: with an
	 * unlucky one, a few more quiet pairs than below share a bucket with
	 * new ones. A fixed key makes the count the same on every run.
	 */
	memset(rl.hash_key, 0x5a, sizeof(rl.hash_key));
	ck_assert_uint_eq(sizeof(rl.slots) / sizeof(rl.slots[0]), RATELIMIT_SLOTS);
	for (uint32_t i = 0; i < FLOOD; i++) {
		memcpy(key, &i, sizeof(i));
		ck_assert(pass(key, 7, 0, &more));
		ck_assert_uint_eq(more, 0);
	}
	/* Quiet pairs log at 20 s; then new pairs arrive. */
	for (uint32_t i = 0; i < QUIET; i++) {
		memcpy(key, &i, sizeof(i));
		ck_assert(pass(key, 1, 20000, &more));
	}
	for (uint32_t i = FLOOD; i < FLOOD + FRESH; i++) {
		memcpy(key, &i, sizeof(i));
		ck_assert(pass(key, 7, 20001, &more));
	}
	/*
	 * The new pairs took the old flood's slots, which the quiet pairs'
	 * buckets had three of each to give: a quiet pair is evicted only
	 * when four new ones hash to its bucket, about one in five hundred.
	 */
	for (uint32_t i = 0; i < QUIET; i++) {
		memcpy(key, &i, sizeof(i));
		held += !pass(key, 1, 20002, &more);
	}
	ck_assert_uint_ge(held, QUIET - 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("ratelimit");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, once_per_interval);
	tcase_add_test(tc, pairs_apart);
	tcase_add_test(tc, hash_key_drawn);
	tcase_add_test(tc, bounded_by_construction);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
