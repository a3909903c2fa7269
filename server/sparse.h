/* SPDX-License-Identifier: MIT */
#ifndef WGD_SPARSE_H
#define WGD_SPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "u128.h"

/* A sparse pool's buckets: a cache line of slots each. */
#define SPARSE_BUCKET_SLOTS 8

struct pool_range {
	struct u128 first, last;
};

struct sparse_pool {
	/* Leased offsets, in buckets of SPARSE_BUCKET_SLOTS: cuckoo hashing,
	 * each offset in one of two buckets. (0, 0) marks an empty slot,
	 * which is safe as offset 0 is never leasable in a sparse pool. hi
	 * is allocated only for pools of more than 2^64 addresses. */
	uint64_t *lo, *hi;
	size_t nbuckets, count;    /* nbuckets: a power of two, or 0 */
	uint64_t seed;
	bool wide;
	struct pool_range *ranges; /* reserved, sorted and disjoint */
	size_t nranges, ranges_cap;
};

bool sp_slot_empty(const struct sparse_pool *sp, size_t i);
struct u128 sp_slot_get(const struct sparse_pool *sp, size_t i);
void sp_buckets(const struct sparse_pool *sp, struct u128 off, size_t *b1, size_t *b2);
bool sp_leased(const struct sparse_pool *sp, struct u128 off);
int sp_insert(struct sparse_pool *sp, struct u128 off);
void sp_remove(struct sparse_pool *sp, struct u128 off);
bool sp_reserved(const struct sparse_pool *sp, struct u128 off);
int sp_reserve(struct sparse_pool *sp, struct u128 first, struct u128 last);

#endif
