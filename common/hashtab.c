// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "hashtab.h"
#include "rng.h"

#define BUCKET_SLOTS HASHTAB_BUCKET_SLOTS
#define MIN_BUCKETS 8
/* Moves an insertion may make before the table grows instead: filling to
 * 31/32, about one insertion in ten thousand needs more than 64. */
#define KICKS 256

static uint64_t entry_of(uint32_t hash, uint32_t idx)
{
	return (uint64_t)hash << 32 | (idx + 1);
}

static uint32_t entry_hash(uint64_t e)
{
	return (uint32_t)(e >> 32);
}

static uint32_t entry_index(uint64_t e)
{
	return (uint32_t)e - 1;
}

static uint64_t *bucket_in(uint64_t *slots, uint32_t b)
{
	return &slots[(size_t)b * BUCKET_SLOTS];
}

static uint64_t *bucket(const struct hashtab *ht, uint32_t b)
{
	return bucket_in(ht->slots, b);
}

static size_t table_slots(const struct hashtab *ht)
{
	return (size_t)ht->n_buckets * BUCKET_SLOTS;
}

static uint64_t *slots_alloc(uint32_t n_buckets)
{
	return aligned_alloc(BUCKET_SLOTS * sizeof(uint64_t),
			     (size_t)n_buckets * BUCKET_SLOTS * sizeof(uint64_t));
}

int hashtab_init(struct hashtab *ht)
{
	memset(ht, 0, sizeof(*ht));
	ht->slots = slots_alloc(MIN_BUCKETS);
	if (!ht->slots)
		return -ENOMEM;
	memset(ht->slots, 0, MIN_BUCKETS * BUCKET_SLOTS * sizeof(uint64_t));
	ht->n_buckets = MIN_BUCKETS;
	crypto_shorthash_keygen(ht->key);
	return 0;
}

void hashtab_free(struct hashtab *ht)
{
	free(ht->slots);
	free(ht->stash);
	sodium_memzero(ht, sizeof(*ht));
}

size_t hashtab_count(const struct hashtab *ht)
{
	return ht->count;
}

size_t hashtab_memory(const struct hashtab *ht)
{
	return table_slots(ht) * sizeof(uint64_t) + ht->cap_stash * sizeof(uint64_t);
}

void hashtab_prefetch(const struct hashtab *ht, uint32_t hash)
{
	uint32_t b1, b2;

	hashtab_buckets(ht->n_buckets, hash, &b1, &b2);
	__builtin_prefetch(bucket(ht, b1));
	__builtin_prefetch(bucket(ht, b2));
}

/* The stash's part of hashtab_find(). */
uint32_t hashtab_find_stash(const struct hashtab *ht, uint32_t hash,
			    bool (*match)(uint32_t idx, const void *ctx), const void *ctx)
{
	for (size_t k = 0; k < ht->n_stash; k++) {
		if (entry_hash(ht->stash[k]) == hash && match(entry_index(ht->stash[k]), ctx))
			return entry_index(ht->stash[k]);
	}
	return HASHTAB_NONE;
}

/* The first empty slot of bucket s, or NULL; *empty counts them. */
static uint64_t *bucket_empty(uint64_t *s, unsigned *empty)
{
	uint64_t *first = NULL;
	uint32_t j;

	*empty = 0;
	for (j = BUCKET_SLOTS; j-- > 0;) {
		if (!s[j]) {
			first = &s[j];
			++*empty;
		}
	}
	return first;
}

/*
 * Puts entry e into the emptier of its buckets in the table of n buckets.
 * When both are full, a random entry of one makes way and moves to its own
 * other bucket, and so on down a random walk; if the walk is too long the
 * moves are undone, the table is as it was, and the answer is -ENOSPC.
 */
static int place(uint64_t *slots, uint32_t n, uint64_t e)
{
	uint64_t *path[KICKS], *s1, *s2, carried = e;
	uint32_t b, b1, b2, k;
	unsigned e1, e2;

	hashtab_buckets(n, entry_hash(e), &b1, &b2);
	s1 = bucket_empty(bucket_in(slots, b1), &e1);
	s2 = bucket_empty(bucket_in(slots, b2), &e2);
	if (e1 || e2) {
		*(e1 >= e2 ? s1 : s2) = e;
		return 0;
	}
	b = b1;
	for (k = 0; k < KICKS; k++) {
		uint64_t *victim = &bucket_in(slots, b)[rng_u64() % BUCKET_SLOTS];
		uint64_t evicted = *victim;

		*victim = carried;
		path[k] = victim;
		carried = evicted;
		hashtab_buckets(n, entry_hash(carried), &b1, &b2);
		b = b1 == b ? b2 : b1;
		s1 = bucket_empty(bucket_in(slots, b), &e1);
		if (s1) {
			*s1 = carried;
			return 0;
		}
	}
	while (k--) {
		uint64_t back = *path[k];

		*path[k] = carried;
		carried = back;
	}
	return -ENOSPC;
}

static int stash_add(struct hashtab *ht, uint64_t e)
{
	if (array_reserve(&ht->stash, &ht->cap_stash, ht->n_stash, sizeof(*ht->stash), 4))
		return -ENOMEM;
	ht->stash[ht->n_stash++] = e;
	return 0;
}

/* Moves what it can from the stash into the table, as after growing. */
static void stash_settle(struct hashtab *ht)
{
	size_t k = 0;

	while (k < ht->n_stash) {
		if (place(ht->slots, ht->n_buckets, ht->stash[k])) {
			k++;
			continue;
		}
		ht->stash[k] = ht->stash[--ht->n_stash];
	}
}

/*
 * Doubles the buckets. With one more bit of mask, a hash's two buckets both
 * stay where they were or move up by the old count, so whichever an entry
 * sits in does: old bucket b splits into new buckets b and b + n, which
 * nothing else feeds. No entry looks for a place, and none can fail to find
 * one.
 */
static int grow(struct hashtab *ht)
{
	uint32_t n = ht->n_buckets, b, j, b1, b2, half;
	uint64_t *grown;

	if (n > UINT32_MAX / 2)
		return -ENOMEM;
	grown = slots_alloc(2 * n);
	if (!grown)
		return -ENOMEM;
	for (b = 0; b < n; b++) {
		const uint64_t *s = bucket(ht, b);
		uint32_t fill[2] = { 0, 0 };

		for (j = 0; j < BUCKET_SLOTS; j++) {
			bool first;

			if (!s[j])
				continue;
			hashtab_buckets(n, entry_hash(s[j]), &b1, &b2);
			first = b == b1;
			hashtab_buckets(2 * n, entry_hash(s[j]), &b1, &b2);
			half = (first ? b1 : b2) != b;
			bucket_in(grown, b + half * n)[fill[half]++] = s[j];
		}
		for (half = 0; half < 2; half++) {
			for (j = fill[half]; j < BUCKET_SLOTS; j++)
				bucket_in(grown, b + half * n)[j] = 0;
		}
	}
	free(ht->slots);
	ht->slots = grown;
	ht->n_buckets = 2 * n;
	stash_settle(ht);
	return 0;
}

/* Whether n entries fit under the fill limit of 31/32. */
static bool fits(const struct hashtab *ht, size_t n)
{
	return n * 32 <= table_slots(ht) * 31;
}

int hashtab_reserve(struct hashtab *ht, size_t n)
{
	uint32_t n_buckets = ht->n_buckets;
	uint64_t *slots;
	int ret;

	/*
	 * An empty table is allocated at its final size at once: growing it
	 * step by step would touch twice the memory, and a first touch costs
	 * a page fault.
	 */
	if (!ht->count && !fits(ht, n)) {
		while ((size_t)n_buckets * BUCKET_SLOTS * 31 < n * 32) {
			if (n_buckets > UINT32_MAX / 2)
				return -ENOMEM;
			n_buckets *= 2;
		}
		slots = slots_alloc(n_buckets);
		if (!slots)
			return -ENOMEM;
		memset(slots, 0, (size_t)n_buckets * BUCKET_SLOTS * sizeof(uint64_t));
		free(ht->slots);
		ht->slots = slots;
		ht->n_buckets = n_buckets;
		return 0;
	}
	while (!fits(ht, n)) {
		ret = grow(ht);
		if (ret)
			return ret;
	}
	return 0;
}

int hashtab_insert(struct hashtab *ht, uint32_t hash, uint32_t idx)
{
	uint64_t e = entry_of(hash, idx);
	int ret;

	if (idx == HASHTAB_NONE)
		return -EINVAL;
	/* The stash holds what growth would not help. */
	if (!fits(ht, ht->count - ht->n_stash + 1)) {
		ret = grow(ht);
		if (ret)
			return ret;
	}
	/*
	 * A walk that fails in a table at least half full says the table
	 * is crowded: it grows. In an emptier one it says that the entry's
	 * buckets are full of entries of the same hash, which no growth
	 * separates: the entry goes to the stash.
	 */
	while (place(ht->slots, ht->n_buckets, e)) {
		if ((ht->count - ht->n_stash) * 2 < table_slots(ht)) {
			ret = stash_add(ht, e);
			if (ret)
				return ret;
			break;
		}
		ret = grow(ht);
		if (ret)
			return ret;
	}
	ht->count++;
	return 0;
}

int hashtab_remove(struct hashtab *ht, uint32_t hash, uint32_t idx)
{
	uint64_t e = entry_of(hash, idx);
	uint32_t b[2], i, j;

	hashtab_buckets(ht->n_buckets, hash, &b[0], &b[1]);
	for (i = 0; i < 2; i++) {
		uint64_t *s = bucket(ht, b[i]);

		for (j = 0; j < BUCKET_SLOTS; j++) {
			if (s[j] == e) {
				s[j] = 0;
				ht->count--;
				return 0;
			}
		}
	}
	for (size_t k = 0; k < ht->n_stash; k++) {
		if (ht->stash[k] == e) {
			ht->stash[k] = ht->stash[--ht->n_stash];
			ht->count--;
			return 0;
		}
	}
	return -ENOENT;
}

uint32_t hashtab_walk(const struct hashtab *ht, size_t *pos, uint32_t *hash)
{
	size_t n = table_slots(ht), j;
	uint64_t e;

	while (*pos < n) {
		e = ht->slots[(*pos)++];
		if (e)
			goto found;
	}
	/*
	 * Then the stash, from its end, with *pos - n - 1 the entries left:
	 * a removal moves the last entry, which has been walked, into the
	 * place of the one removed.
	 */
	if (*pos == n)
		*pos = n + 1 + ht->n_stash;
	if (*pos == n + 1)
		return HASHTAB_NONE;
	j = *pos - n - 2;
	e = ht->stash[j];
	*pos = n + 1 + j;
found:
	if (hash)
		*hash = entry_hash(e);
	return entry_index(e);
}
