// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <string.h>

#include "keyindex.h"

#define BUILD_AHEAD 8

struct key_query {
	const uint8_t (*keys)[WG_KEY_LEN];
	const uint8_t *pubkey;
};

static bool key_match(uint32_t pos, const void *ctx)
{
	const struct key_query *q = ctx;

	return !memcmp(q->keys[pos], q->pubkey, WG_KEY_LEN);
}

static uint32_t key_find(const struct key_index *ki, const uint8_t *pubkey, uint32_t hash)
{
	const struct key_query q = { ki->keys, pubkey };

	return hashtab_find(&ki->table, hash, key_match, &q);
}

int key_index_build(struct key_index *ki, const uint8_t (*keys)[WG_KEY_LEN], size_t n)
{
	uint32_t ahead[BUILD_AHEAD];
	int ret;

	memset(ki, 0, sizeof(*ki));
	if (n >= HASHTAB_NONE)
		return -ENOMEM;
	ret = hashtab_init(&ki->table);
	if (!ret)
		ret = hashtab_reserve(&ki->table, n);
	if (ret) {
		key_index_free(ki);
		return ret;
	}
	ki->keys = keys;
	/* The buckets of the next keys load meanwhile: a table of a
	 * million keys misses the cache on each, and can wait for several
	 * misses at once. */
	for (size_t i = 0; i < n && i < BUILD_AHEAD; i++) {
		ahead[i] = hashtab_hash(&ki->table, keys[i], WG_KEY_LEN);
		hashtab_prefetch(&ki->table, ahead[i]);
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t hash = ahead[i % BUILD_AHEAD];

		if (i + BUILD_AHEAD < n) {
			ahead[i % BUILD_AHEAD] =
				hashtab_hash(&ki->table, keys[i + BUILD_AHEAD], WG_KEY_LEN);
			hashtab_prefetch(&ki->table, ahead[i % BUILD_AHEAD]);
		}
		if (key_find(ki, keys[i], hash) != HASHTAB_NONE)
			continue;
		ret = hashtab_insert(&ki->table, hash, (uint32_t)i);
		if (ret) {
			key_index_free(ki);
			return ret;
		}
		ki->n_unique++;
	}
	return 0;
}

void key_index_free(struct key_index *ki)
{
	hashtab_free(&ki->table);
	memset(ki, 0, sizeof(*ki));
}

size_t key_index_find(const struct key_index *ki, const uint8_t pubkey[WG_KEY_LEN])
{
	uint32_t pos;

	if (!ki->table.slots)
		return SIZE_MAX;
	pos = key_find(ki, pubkey, hashtab_hash(&ki->table, pubkey, WG_KEY_LEN));
	return pos == HASHTAB_NONE ? SIZE_MAX : pos;
}

int key_index_add(struct key_index *ki, const uint8_t (*keys)[WG_KEY_LEN], size_t pos)
{
	int ret;

	if (pos >= HASHTAB_NONE)
		return -ENOMEM;
	ret = hashtab_insert(&ki->table, hashtab_hash(&ki->table, keys[pos], WG_KEY_LEN),
			     (uint32_t)pos);
	if (ret)
		return ret;
	ki->keys = keys;
	ki->n_unique++;
	return 0;
}

void key_index_remove(struct key_index *ki, size_t pos)
{
	uint32_t hash;

	if (pos >= HASHTAB_NONE)
		return;
	hash = hashtab_hash(&ki->table, ki->keys[pos], WG_KEY_LEN);
	/* A repeat of a key indexed elsewhere was never indexed here. */
	if (!hashtab_remove(&ki->table, hash, (uint32_t)pos))
		ki->n_unique--;
}
