// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../../common/hashtab.h"

/*
 * Keys are 64-bit numbers in an array; the table maps them to their
 * positions. A model array of flags says which positions are in.
 */
struct keys {
	uint64_t *v;
	bool *in;
	size_t n;
};

/* The keys the table under test indexes. */
static struct keys *cur;

static bool match(uint32_t idx, const void *ctx)
{
	const uint64_t *want = ctx;

	return cur->v[idx] == *want;
}

static uint32_t hash_of(const struct hashtab *ht, uint64_t k)
{
	return hashtab_hash(ht, &k, sizeof(k));
}

static uint32_t find(const struct hashtab *ht, uint64_t k, uint32_t hash)
{
	return hashtab_find(ht, hash, match, &k);
}

static void keys_init(struct keys *k, size_t n)
{
	k->v = calloc(n, sizeof(*k->v));
	k->in = calloc(n, sizeof(*k->in));
	k->n = n;
	ck_assert_ptr_nonnull(k->v);
	ck_assert_ptr_nonnull(k->in);
	for (size_t i = 0; i < n; i++)
		k->v[i] = i * UINT64_C(0x9e3779b97f4a7c15) + 1;
	cur = k;
}

static void keys_free(struct keys *k)
{
	free(k->v);
	free(k->in);
}

/* Every key is found exactly when the model says it is in. */
static void check_all(const struct hashtab *ht, const struct keys *k,
		      uint32_t (*hash)(const struct hashtab *, uint64_t))
{
	size_t in = 0;

	for (size_t i = 0; i < k->n; i++) {
		uint32_t got = find(ht, k->v[i], hash(ht, k->v[i]));

		if (k->in[i]) {
			ck_assert_uint_eq(got, i);
			in++;
		} else {
			ck_assert_uint_eq(got, HASHTAB_NONE);
		}
	}
	ck_assert_uint_eq(hashtab_count(ht), in);
}

START_TEST(insert_find_remove)
{
	struct hashtab ht;
	struct keys k;

	keys_init(&k, 1000);
	ck_assert_int_eq(hashtab_init(&ht), 0);
	ck_assert_uint_eq(find(&ht, 1, hash_of(&ht, 1)), HASHTAB_NONE);
	for (size_t i = 0; i < k.n; i++) {
		ck_assert_int_eq(hashtab_insert(&ht, hash_of(&ht, k.v[i]), (uint32_t)i), 0);
		k.in[i] = true;
	}
	check_all(&ht, &k, hash_of);
	for (size_t i = 0; i < k.n; i += 3) {
		ck_assert_int_eq(hashtab_remove(&ht, hash_of(&ht, k.v[i]), (uint32_t)i), 0);
		k.in[i] = false;
	}
	ck_assert_int_eq(hashtab_remove(&ht, hash_of(&ht, k.v[0]), 0), -ENOENT);
	check_all(&ht, &k, hash_of);
	/* Back in, at the places removals emptied. */
	for (size_t i = 0; i < k.n; i += 3) {
		ck_assert_int_eq(hashtab_insert(&ht, hash_of(&ht, k.v[i]), (uint32_t)i), 0);
		k.in[i] = true;
	}
	check_all(&ht, &k, hash_of);
	ck_assert_int_eq(hashtab_insert(&ht, 1, HASHTAB_NONE), -EINVAL);
	hashtab_free(&ht);
	keys_free(&k);
}
END_TEST

/* Growth from the smallest table to 200,000 entries, 31/32 full at most. */
START_TEST(growth)
{
	struct hashtab ht;
	struct keys k;

	keys_init(&k, 200000);
	ck_assert_int_eq(hashtab_init(&ht), 0);
	for (size_t i = 0; i < k.n; i++) {
		ck_assert_int_eq(hashtab_insert(&ht, hash_of(&ht, k.v[i]), (uint32_t)i), 0);
		k.in[i] = true;
	}
	check_all(&ht, &k, hash_of);
	ck_assert_uint_le(hashtab_memory(&ht), k.n * 17);
	ck_assert_uint_eq(ht.n_stash, 0);
	hashtab_free(&ht);

	/* Reserved ahead, the table does not grow while filling. */
	ck_assert_int_eq(hashtab_init(&ht), 0);
	ck_assert_int_eq(hashtab_reserve(&ht, k.n), 0);
	{
		uint32_t buckets = ht.n_buckets;

		for (size_t i = 0; i < k.n; i++)
			ck_assert_int_eq(hashtab_insert(&ht, hash_of(&ht, k.v[i]), (uint32_t)i), 0);
		ck_assert_uint_eq(ht.n_buckets, buckets);
	}
	check_all(&ht, &k, hash_of);
	hashtab_free(&ht);
	keys_free(&k);
}
END_TEST

/* A hash that piles keys up: few distinct values. */
static uint32_t bad_hash(const struct hashtab *ht, uint64_t k)
{
	(void)ht;
	return (uint32_t)(k % 3);
}

static uint32_t worst_hash(const struct hashtab *ht, uint64_t k)
{
	(void)ht;
	(void)k;
	return 42;
}

/* Many keys of one hash fit in no two buckets: they overflow into the
 * stash, are found, removed and walked all the same. */
static void colliding(uint32_t (*hash)(const struct hashtab *, uint64_t))
{
	struct hashtab ht;
	struct keys k;
	size_t pos = 0, walked = 0;
	uint32_t idx;

	keys_init(&k, 300);
	ck_assert_int_eq(hashtab_init(&ht), 0);
	for (size_t i = 0; i < k.n; i++) {
		ck_assert_int_eq(hashtab_insert(&ht, hash(&ht, k.v[i]), (uint32_t)i), 0);
		k.in[i] = true;
	}
	check_all(&ht, &k, hash);
	ck_assert_uint_gt(ht.n_stash, 0);
	/* Colliding keys do not make the table grow without end. */
	ck_assert_uint_le(ht.n_buckets, 16);
	for (size_t i = 0; i < k.n; i += 2) {
		ck_assert_int_eq(hashtab_remove(&ht, hash(&ht, k.v[i]), (uint32_t)i), 0);
		k.in[i] = false;
	}
	check_all(&ht, &k, hash);
	while ((idx = hashtab_walk(&ht, &pos, NULL)) != HASHTAB_NONE) {
		ck_assert(k.in[idx]);
		walked++;
	}
	ck_assert_uint_eq(walked, hashtab_count(&ht));
	hashtab_free(&ht);
	keys_free(&k);
}

START_TEST(many_colliding)
{
	colliding(bad_hash);
	colliding(worst_hash);
}
END_TEST

/* Walking visits every entry once, while removing what it visits or not. */
static void walk_removing(uint32_t (*hash)(const struct hashtab *, uint64_t), size_t n)
{
	struct hashtab ht;
	struct keys k;
	size_t pos = 0, walked = 0;
	uint32_t idx, h;
	bool *seen = calloc(n, sizeof(*seen));

	ck_assert_ptr_nonnull(seen);
	keys_init(&k, n);
	ck_assert_int_eq(hashtab_init(&ht), 0);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(hashtab_insert(&ht, hash(&ht, k.v[i]), (uint32_t)i), 0);
		k.in[i] = true;
	}
	while ((idx = hashtab_walk(&ht, &pos, &h)) != HASHTAB_NONE) {
		ck_assert_uint_lt(idx, n);
		ck_assert(!seen[idx]);
		ck_assert_uint_eq(h, hash(&ht, k.v[idx]));
		seen[idx] = true;
		walked++;
		if (idx % 2) {
			ck_assert_int_eq(hashtab_remove(&ht, h, idx), 0);
			k.in[idx] = false;
		}
	}
	ck_assert_uint_eq(walked, n);
	check_all(&ht, &k, hash);
	hashtab_free(&ht);
	keys_free(&k);
	free(seen);
}

START_TEST(walk_while_removing)
{
	walk_removing(hash_of, 5000);
	walk_removing(worst_hash, 100);
}
END_TEST

/* Random insertions and removals against the model. */
START_TEST(churn)
{
	struct hashtab ht;
	struct keys k;

	keys_init(&k, 20000);
	ck_assert_int_eq(hashtab_init(&ht), 0);
	for (size_t r = 0; r < 200000; r++) {
		size_t i = randombytes_uniform((uint32_t)k.n);
		uint32_t h = hash_of(&ht, k.v[i]);

		if (k.in[i]) {
			ck_assert_int_eq(hashtab_remove(&ht, h, (uint32_t)i), 0);
		} else {
			ck_assert_uint_eq(find(&ht, k.v[i], h), HASHTAB_NONE);
			ck_assert_int_eq(hashtab_insert(&ht, h, (uint32_t)i), 0);
		}
		k.in[i] = !k.in[i];
	}
	check_all(&ht, &k, hash_of);
	hashtab_free(&ht);
	keys_free(&k);
}
END_TEST

/* Two tables hash under different keys. */
START_TEST(keyed)
{
	struct hashtab a, b;
	uint64_t k = 7;
	int same = 0;

	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(hashtab_init(&a), 0);
		ck_assert_int_eq(hashtab_init(&b), 0);
		same += hash_of(&a, k) == hash_of(&b, k);
		hashtab_free(&a);
		hashtab_free(&b);
	}
	ck_assert_int_lt(same, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hashtab");
	TCase *tc = tcase_create("hashtab");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, insert_find_remove);
	tcase_add_test(tc, growth);
	tcase_add_test(tc, many_colliding);
	tcase_add_test(tc, walk_while_removing);
	tcase_add_test(tc, churn);
	tcase_add_test(tc, keyed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
