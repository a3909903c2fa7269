// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/array.h"
#include "../common/rng.h"
#include "sparse.h"

#define SPARSE_MIN_BUCKETS 8
/* Moves an insertion may make before the set grows instead: filling to
 * 31/32, about one insertion in ten thousand needs more than 64. */
#define SPARSE_KICKS 256

/* MurmurHash3's finalizer: every input bit reaches every output bit. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

/*
 * Seeded, so that addresses clients ask for cannot be chosen to pile up in
 * one run of slots. The high word goes through the seeded mix on its own
 * first: folded in linearly, pairs of offsets colliding whatever the seed
 * would be easy to write down.
 */
static uint64_t sp_hash(const struct sparse_pool *sp, struct u128 off)
{
	uint64_t x = off.lo ^ sp->seed;

	if (off.hi)
		x ^= mix64(off.hi + sp->seed);
	return mix64(x);
}

bool sp_slot_empty(const struct sparse_pool *sp, size_t i)
{
	return !sp->lo[i] && (!sp->hi || !sp->hi[i]);
}

struct u128 sp_slot_get(const struct sparse_pool *sp, size_t i)
{
	return (struct u128){ sp->hi ? sp->hi[i] : 0, sp->lo[i] };
}

static void sp_slot_set(struct sparse_pool *sp, size_t i, struct u128 off)
{
	sp->lo[i] = off.lo;
	if (sp->hi)
		sp->hi[i] = off.hi;
}

static bool sp_slot_is(const struct sparse_pool *sp, size_t i, struct u128 off)
{
	return sp->lo[i] == off.lo && (!sp->hi || sp->hi[i] == off.hi);
}

/*
 * The two buckets off may live in, in a table of n. The second differs from
 * the first by a nonzero mask, so that they are never the same bucket, and
 * each is the other's partner.
 */
static void sp_buckets_in(const struct sparse_pool *sp, size_t n, struct u128 off,
			  size_t *b1, size_t *b2)
{
	uint64_t h = sp_hash(sp, off);
	size_t mask = n - 1;

	*b1 = (size_t)h & mask;
	*b2 = *b1 ^ ((size_t)(h >> 32 | 1) & mask);
}

void sp_buckets(const struct sparse_pool *sp, struct u128 off, size_t *b1, size_t *b2)
{
	sp_buckets_in(sp, sp->nbuckets, off, b1, b2);
}

/* The slot of bucket b holding off, or SIZE_MAX. */
static size_t sp_bucket_find(const struct sparse_pool *sp, size_t b, struct u128 off)
{
	size_t i;

	for (i = b * SPARSE_BUCKET_SLOTS; i < (b + 1) * SPARSE_BUCKET_SLOTS; i++) {
		if (sp_slot_is(sp, i, off))
			return i;
	}
	return SIZE_MAX;
}

/* The slot holding off, or SIZE_MAX. */
static size_t sp_find(const struct sparse_pool *sp, struct u128 off)
{
	size_t b1, b2, i;

	if (!sp->nbuckets)
		return SIZE_MAX;
	sp_buckets(sp, off, &b1, &b2);
	/* Both cache lines at once: the second is needed whenever off is
	 * absent, which is what a random take hopes for. */
	__builtin_prefetch(&sp->lo[b2 * SPARSE_BUCKET_SLOTS]);
	i = sp_bucket_find(sp, b1, off);
	return i != SIZE_MAX ? i : sp_bucket_find(sp, b2, off);
}

bool sp_leased(const struct sparse_pool *sp, struct u128 off)
{
	return sp_find(sp, off) != SIZE_MAX;
}

/* The first empty slot of bucket b, or SIZE_MAX; *empty counts them. */
static size_t sp_bucket_empty(const struct sparse_pool *sp, size_t b, unsigned *empty)
{
	size_t i, first = SIZE_MAX;

	*empty = 0;
	for (i = (b + 1) * SPARSE_BUCKET_SLOTS; i-- > b * SPARSE_BUCKET_SLOTS;) {
		if (sp_slot_empty(sp, i)) {
			first = i;
			++*empty;
		}
	}
	return first;
}

/*
 * Puts off, absent, into the emptier of its buckets. When both are full, a
 * random entry of one makes way for it and moves to its own other bucket,
 * and so on down a random walk. If the walk is too long the moves are
 * undone, the set is as it was, and the answer is -ENOSPC.
 */
static int sp_place(struct sparse_pool *sp, struct u128 off)
{
	size_t path[SPARSE_KICKS], b, b1, b2, s1, s2, n;
	struct u128 carried = off;
	unsigned e1, e2;

	sp_buckets(sp, off, &b1, &b2);
	s1 = sp_bucket_empty(sp, b1, &e1);
	s2 = sp_bucket_empty(sp, b2, &e2);
	if (e1 || e2) {
		sp_slot_set(sp, e1 >= e2 ? s1 : s2, off);
		return 0;
	}
	b = b1;
	for (n = 0; n < SPARSE_KICKS; n++) {
		size_t slot = b * SPARSE_BUCKET_SLOTS + (size_t)(rng_u64() % SPARSE_BUCKET_SLOTS);
		struct u128 evicted = sp_slot_get(sp, slot);

		sp_slot_set(sp, slot, carried);
		path[n] = slot;
		carried = evicted;
		sp_buckets(sp, carried, &b1, &b2);
		b = b1 == b ? b2 : b1;
		s1 = sp_bucket_empty(sp, b, &e1);
		if (e1) {
			sp_slot_set(sp, s1, carried);
			return 0;
		}
	}
	while (n--) {
		struct u128 back = sp_slot_get(sp, path[n]);

		sp_slot_set(sp, path[n], carried);
		carried = back;
	}
	return -ENOSPC;
}

static uint64_t *sp_alloc_words(size_t nbuckets)
{
	return aligned_alloc(SPARSE_BUCKET_SLOTS * sizeof(uint64_t),
			     nbuckets * SPARSE_BUCKET_SLOTS * sizeof(uint64_t));
}

/*
 * Doubles the buckets. With one more bit of mask, an entry's two buckets
 * both stay where they were or move up by the old count, so whichever it
 * sits in does: old bucket b splits into new buckets b and b + n, which
 * nothing else feeds. No entry looks for a place, none can fail to find
 * one, and both tables are read and written in order.
 */
static int sp_grow(struct sparse_pool *sp)
{
	size_t n = sp->nbuckets, grown = n ? 2 * n : SPARSE_MIN_BUCKETS, b, i;
	uint64_t *lo, *hi = NULL;

	if (grown > SIZE_MAX / 2 / SPARSE_BUCKET_SLOTS / sizeof(uint64_t))
		return -ENOMEM;
	lo = sp_alloc_words(grown);
	if (sp->wide)
		hi = sp_alloc_words(grown);
	if (!lo || (sp->wide && !hi)) {
		free(lo);
		free(hi);
		return -ENOMEM;
	}
	if (!n) {
		memset(lo, 0, grown * SPARSE_BUCKET_SLOTS * sizeof(uint64_t));
		if (hi)
			memset(hi, 0, grown * SPARSE_BUCKET_SLOTS * sizeof(uint64_t));
	}
	for (b = 0; b < n; b++) {
		size_t fill[2] = { 0, 0 }, half;

		for (i = b * SPARSE_BUCKET_SLOTS; i < (b + 1) * SPARSE_BUCKET_SLOTS; i++) {
			struct u128 off;
			size_t b1, b2, slot;
			bool first;

			if (sp_slot_empty(sp, i))
				continue;
			off = sp_slot_get(sp, i);
			sp_buckets(sp, off, &b1, &b2);
			first = b == b1;
			sp_buckets_in(sp, grown, off, &b1, &b2);
			half = (first ? b1 : b2) != b;
			slot = (b + half * n) * SPARSE_BUCKET_SLOTS + fill[half]++;
			lo[slot] = off.lo;
			if (hi)
				hi[slot] = off.hi;
		}
		for (half = 0; half < 2; half++) {
			for (i = fill[half]; i < SPARSE_BUCKET_SLOTS; i++) {
				size_t slot = (b + half * n) * SPARSE_BUCKET_SLOTS + i;

				lo[slot] = 0;
				if (hi)
					hi[slot] = 0;
			}
		}
	}
	free(sp->lo);
	free(sp->hi);
	sp->lo = lo;
	sp->hi = hi;
	sp->nbuckets = grown;
	return 0;
}

/* Adds off to the leased set: 0, -EEXIST when it is there, or -ENOMEM. */
int sp_insert(struct sparse_pool *sp, struct u128 off)
{
	int ret;

	if (sp_leased(sp, off))
		return -EEXIST;
	/* Up to 31/32 full, where 98 % of entries still go straight into
	 * one of their buckets: with a slot of 8 bytes, a lease costs 8.3 to
	 * 17 bytes. */
	if ((sp->count + 1) * 32 > sp->nbuckets * SPARSE_BUCKET_SLOTS * 31) {
		ret = sp_grow(sp);
		if (ret)
			return ret;
	}
	while (sp_place(sp, off)) {
		ret = sp_grow(sp);
		if (ret)
			return ret;
	}
	sp->count++;
	return 0;
}

void sp_remove(struct sparse_pool *sp, struct u128 off)
{
	size_t i = sp_find(sp, off);

	/* Nothing else moves: no tombstones pile up over years of leases
	 * coming and going. */
	if (i == SIZE_MAX)
		return;
	sp_slot_set(sp, i, u128_u64(0));
	sp->count--;
}

/* The first range ending at or after off; nranges when there is none. */
static size_t sp_range_lower(const struct sparse_pool *sp, struct u128 off)
{
	size_t lo = 0, hi = sp->nranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (u128_cmp(sp->ranges[mid].last, off) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool sp_reserved(const struct sparse_pool *sp, struct u128 off)
{
	size_t i = sp_range_lower(sp, off);

	return i < sp->nranges && u128_cmp(sp->ranges[i].first, off) <= 0;
}

int sp_reserve(struct sparse_pool *sp, struct u128 first, struct u128 last)
{
	size_t i = sp_range_lower(sp, first), j = i;

	/* Swallow every range that overlaps the new one. */
	while (j < sp->nranges && u128_cmp(sp->ranges[j].first, last) <= 0) {
		if (u128_cmp(sp->ranges[j].first, first) < 0)
			first = sp->ranges[j].first;
		if (u128_cmp(sp->ranges[j].last, last) > 0)
			last = sp->ranges[j].last;
		j++;
	}
	if (i == j) {
		if (array_reserve(&sp->ranges, &sp->ranges_cap, sp->nranges, sizeof(*sp->ranges), 8))
			return -ENOMEM;
		memmove(&sp->ranges[i + 1], &sp->ranges[i],
			(sp->nranges - i) * sizeof(*sp->ranges));
		sp->nranges++;
	} else {
		memmove(&sp->ranges[i + 1], &sp->ranges[j],
			(sp->nranges - j) * sizeof(*sp->ranges));
		sp->nranges -= j - i - 1;
	}
	sp->ranges[i] = (struct pool_range){ first, last };
	return 0;
}
