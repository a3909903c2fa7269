/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_SPARSE_H
#define WGD_SPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "u128.h"

/*
 * The state of a sparse pool (an IPv6 /64, say): the offsets leased, in a
 * set of their own, and the offsets reserved, as sorted disjoint ranges.
 *
 * The set is bucketized cuckoo hashing, as common/hashtab.c is, but it
 * stores the offsets themselves rather than indices into an array beside
 * it: 8 bytes an offset at 31/32 full (16 past 64 host bits), and one
 * visit per lookup. The shared table would need the array too, 16 bytes
 * an offset, and a second cache line for every hit: tests/bench/
 * bench_hashtab measures both. Offset 0 marks an empty slot, which is
 * safe as a sparse pool never leases it.
 */

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

/* Slot i of the set's nbuckets * SPARSE_BUCKET_SLOTS: empty, or its offset. */
bool sp_slot_empty(const struct sparse_pool *sp, size_t i);
struct u128 sp_slot_get(const struct sparse_pool *sp, size_t i);
/* The two buckets off may live in (for prefetching); nbuckets must not be 0. */
void sp_buckets(const struct sparse_pool *sp, struct u128 off, size_t *b1, size_t *b2);
bool sp_leased(const struct sparse_pool *sp, struct u128 off);
/* Adds off (not 0) to the leased set: 0, -EEXIST when it is there, or -ENOMEM. */
int sp_insert(struct sparse_pool *sp, struct u128 off);
/* Takes off out of the leased set; nothing when it is not there. */
void sp_remove(struct sparse_pool *sp, struct u128 off);
bool sp_reserved(const struct sparse_pool *sp, struct u128 off);
/* Reserves first to last, merging with the ranges it meets: 0 or -ENOMEM. */
int sp_reserve(struct sparse_pool *sp, struct u128 first, struct u128 last);

#endif
