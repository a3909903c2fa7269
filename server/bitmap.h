/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_BITMAP_H
#define WGD_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A bitmap pool (up to 2^24 addresses) keeps one bit per address for leases
 * and one for reservations, and a binary tree counting the free addresses
 * over blocks of 512. Taking a random address draws k below the free count,
 * walks the tree down to the block holding the k-th free address and finds
 * it among the block's 8 words: O(log n) at any fill level, with no retries,
 * and no memory per lease beyond the bits. A /8 holds 4 MiB of bits and a
 * 128 KiB tree.
 *
 * Addresses are offsets from the pool's prefix. The pools of pool.c embed
 * the struct; only this file reads or changes it, apart from the free
 * count, which pool.c reads to weigh its pools.
 */

/* Words per leaf of the count tree: 512 addresses, in two cache lines. */
#define POOL_BLOCK_WORDS 8

struct bitmap_pool {
	/*
	 * Per word of 64 addresses, its leased bits then its reserved bits:
	 * a search reads both, and side by side they share a cache line.
	 * Leased also marks the addresses never leased (network, broadcast,
	 * the bits past the end of a pool smaller than a word) once and for
	 * all, which spares every count and search a test of its own.
	 */
	uint64_t *words;
	uint32_t *tree;            /* free counts; see bm_tree_add() */
	uint32_t nwords;
	uint32_t nblocks;          /* a power of two */
	uint32_t free;
	bool has_reserved;
};

/*
 * Sets up a pool of 2^host_bits offsets (host_bits <= 24) of which first to
 * last may be leased: 0 or -ENOMEM. bm_release() frees it.
 */
int bm_init(struct bitmap_pool *bm, uint8_t host_bits, uint32_t first,
	    uint32_t last);
void bm_release(struct bitmap_pool *bm);
/* Bytes allocated, for the status report. */
size_t bm_memory(const struct bitmap_pool *bm);

bool bm_is_leased(const struct bitmap_pool *bm, uint32_t off);
bool bm_is_reserved(const struct bitmap_pool *bm, uint32_t off);

/*
 * Taking the k-th free address, k < free: at once with bm_take_index(), or
 * in two steps, bm_find() for its block and its rank there, which changes
 * nothing and lets the caller prefetch the block with bm_prefetch_block(),
 * then bm_take_found() while the pool is still as it was. Both return the
 * offset taken.
 */
uint32_t bm_take_index(struct bitmap_pool *bm, uint32_t k);
uint32_t bm_take_found(struct bitmap_pool *bm, uint32_t block, uint32_t rank);

/* Marking one offset leased or free, which keeps the counts. */
void bm_mark_leased(struct bitmap_pool *bm, uint32_t off);
void bm_clear_leased(struct bitmap_pool *bm, uint32_t off);
/* Reserving first to last, and clearing every reservation. */
void bm_reserve(struct bitmap_pool *bm, uint32_t first, uint32_t last);
void bm_reserve_clear(struct bitmap_pool *bm);

/* Called from pool.c once a take, where the two calls cost 1 ns, 2 % of a
 * take from a /16 (tests/bench/bench_pool): inline. */

/*
 * The block holding the k-th free address, k < free, and that address's
 * rank among the block's free ones: down the tree, without changing it.
 */
static inline uint32_t bm_find(const struct bitmap_pool *bm, uint32_t k,
			       uint32_t *rank)
{
	uint32_t i = 1;

	/* Without branches: which way to go is a coin toss, which the
	 * processor would mispredict at every other level. */
	while (i < bm->nblocks) {
		uint32_t left = bm->tree[i], right = k >= left;

		k -= left & -right;
		i = 2 * i + right;
	}
	*rank = k;
	return i - bm->nblocks;
}

static inline void bm_prefetch_block(const struct bitmap_pool *bm,
				     uint32_t block)
{
	/* A block's words: two cache lines. */
	const uint64_t *w = &bm->words[2 * (size_t)block * POOL_BLOCK_WORDS];

	__builtin_prefetch(w, 1);
	__builtin_prefetch(w + POOL_BLOCK_WORDS, 1);
}

#endif
