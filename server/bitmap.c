// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "bitmap.h"

/* A reservation touching more blocks than this rebuilds the whole tree,
 * which is cheaper than updating it block by block. */
#define POOL_REBUILD_BLOCKS 64

static uint64_t *bm_leased(const struct bitmap_pool *bm, uint32_t w)
{
	return &bm->words[2 * (size_t)w];
}

static uint64_t *bm_reserved(const struct bitmap_pool *bm, uint32_t w)
{
	return &bm->words[2 * (size_t)w + 1];
}

static uint64_t bm_used(const struct bitmap_pool *bm, uint32_t w)
{
	return *bm_leased(bm, w) | *bm_reserved(bm, w);
}

/*
 * Without a popcount instruction (x86-64 before -mpopcnt) the builtin is a
 * library call; these are a dozen inline operations instead.
 */
static unsigned popcount64(uint64_t x)
{
#ifdef __POPCNT__
	return (unsigned)__builtin_popcountll(x);
#else
	x -= (x >> 1) & UINT64_C(0x5555555555555555);
	x = (x & UINT64_C(0x3333333333333333)) +
	    ((x >> 2) & UINT64_C(0x3333333333333333));
	x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
	return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
#endif
}

/* The position of the k-th set bit of x, k < popcount(x). */
static unsigned u64_select(uint64_t x, unsigned k)
{
	uint64_t c, sums;
	unsigned byte = 0, below = 0, b;

	/* Bits per byte, then their running sums: byte i of sums counts the
	 * set bits of bytes 0 to i. */
	c = x - ((x >> 1) & UINT64_C(0x5555555555555555));
	c = (c & UINT64_C(0x3333333333333333)) +
	    ((c >> 2) & UINT64_C(0x3333333333333333));
	c = (c + (c >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
	sums = c * UINT64_C(0x0101010101010101);
	while (((sums >> (8 * byte)) & 0xff) <= k) {
		below = (sums >> (8 * byte)) & 0xff;
		byte++;
	}
	k -= below;
	b = (x >> (8 * byte)) & 0xff;
	while (k--)
		b &= b - 1;
	return 8 * byte + (unsigned)__builtin_ctz(b);
}

static uint32_t bm_block_free(const struct bitmap_pool *bm, uint32_t block)
{
	uint32_t w = block * POOL_BLOCK_WORDS, end = w + POOL_BLOCK_WORDS, n = 0;

	if (end > bm->nwords)
		end = bm->nwords;
	for (; w < end; w++)
		n += popcount64(~bm_used(bm, w));
	return n;
}

/*
 * The count tree is a complete binary tree over the blocks, stored as an
 * array from 1: node i has children 2i and 2i + 1, and the blocks are the
 * leaves nblocks to 2 nblocks - 1, implicit. Each inner node holds the free
 * count of its left subtree only: finding the k-th free address reads one
 * node per level, and so does updating the counts above a block.
 */

/* Adds delta to the free count of a block, on the way up from its leaf. */
static void bm_tree_add(struct bitmap_pool *bm, uint32_t block, int32_t delta)
{
	uint32_t i;

	/* Only ancestors holding the block in their left subtree count it.
	 * Unsigned wrap-around adds a negative delta correctly. */
	for (i = block + bm->nblocks; i > 1; i >>= 1)
		bm->tree[i >> 1] += (uint32_t)delta & ((i & 1) - 1);
}

/* The free count of the subtree under node i, in a tree of totals. */
static uint32_t bm_tree_total(const struct bitmap_pool *bm, uint32_t i)
{
	return i >= bm->nblocks ? bm_block_free(bm, i - bm->nblocks) : bm->tree[i];
}

/* Builds the tree in O(n) and recounts the free addresses. */
static void bm_tree_build(struct bitmap_pool *bm)
{
	uint32_t i;

	if (bm->nblocks == 1) {
		bm->free = bm_block_free(bm, 0);
		return;
	}
	/* Subtree totals first, from the bottom up... */
	for (i = bm->nblocks - 1; i >= 1; i--)
		bm->tree[i] = bm_tree_total(bm, 2 * i) + bm_tree_total(bm, 2 * i + 1);
	bm->free = bm->tree[1];
	/* ...then each node keeps its left child's total, from the top down,
	 * so every child still holds its total when its parent reads it. */
	for (i = 1; i < bm->nblocks; i++)
		bm->tree[i] = bm_tree_total(bm, 2 * i);
}

/* Leases the free address of the given rank in a block, and returns its
 * offset; the caller has counted it in the tree. */
static uint32_t bm_take_rank(struct bitmap_pool *bm, uint32_t block, uint32_t rank)
{
	uint32_t w;

	bm->free--;
	for (w = block * POOL_BLOCK_WORDS;; w++) {
		uint64_t free_bits = ~bm_used(bm, w);
		unsigned c = popcount64(free_bits), bit;

		if (rank < c) {
			bit = u64_select(free_bits, rank);
			*bm_leased(bm, w) |= UINT64_C(1) << bit;
			return w * 64 + bit;
		}
		rank -= c;
	}
}

/*
 * Leases the k-th free address, k < free, and returns its offset: as
 * bm_find(), counting it in the nodes on the way down, then in its block.
 */
uint32_t bm_take_index(struct bitmap_pool *bm, uint32_t k)
{
	uint32_t i = 1;

	while (i < bm->nblocks) {
		uint32_t left = bm->tree[i], right = k >= left;

		bm->tree[i] -= !right;
		k -= left & -right;
		i = 2 * i + right;
	}
	return bm_take_rank(bm, i - bm->nblocks, k);
}

void bm_mark_leased(struct bitmap_pool *bm, uint32_t off)
{
	uint32_t w = off / 64;
	uint64_t bit = UINT64_C(1) << (off % 64);

	if (!(bm_used(bm, w) & bit)) {
		bm->free--;
		bm_tree_add(bm, w / POOL_BLOCK_WORDS, -1);
	}
	*bm_leased(bm, w) |= bit;
}

void bm_clear_leased(struct bitmap_pool *bm, uint32_t off)
{
	uint32_t w = off / 64;
	uint64_t bit = UINT64_C(1) << (off % 64);

	if (!(*bm_leased(bm, w) & bit))
		return;
	*bm_leased(bm, w) &= ~bit;
	if (!(*bm_reserved(bm, w) & bit)) {
		bm->free++;
		bm_tree_add(bm, w / POOL_BLOCK_WORDS, 1);
	}
}

void bm_reserve(struct bitmap_pool *bm, uint32_t first, uint32_t last)
{
	uint32_t wfirst = first / 64, wlast = last / 64, w;
	bool rebuild = wlast / POOL_BLOCK_WORDS - wfirst / POOL_BLOCK_WORDS >
		       POOL_REBUILD_BLOCKS;

	for (w = wfirst; w <= wlast; w++) {
		uint64_t mask = UINT64_MAX, newly;

		if (w == wfirst)
			mask &= UINT64_MAX << (first % 64);
		if (w == wlast)
			mask &= UINT64_MAX >> (63 - last % 64);
		newly = mask & ~bm_used(bm, w);
		*bm_reserved(bm, w) |= mask;
		if (newly && !rebuild) {
			int32_t n = (int32_t)popcount64(newly);

			bm->free -= (uint32_t)n;
			bm_tree_add(bm, w / POOL_BLOCK_WORDS, -n);
		}
	}
	if (rebuild)
		bm_tree_build(bm);
	bm->has_reserved = true;
}

void bm_reserve_clear(struct bitmap_pool *bm)
{
	uint32_t w;

	if (!bm->has_reserved)
		return;
	for (w = 0; w < bm->nwords; w++)
		*bm_reserved(bm, w) = 0;
	bm_tree_build(bm);
	bm->has_reserved = false;
}

static void bm_mark_never(struct bitmap_pool *bm, uint32_t off)
{
	*bm_leased(bm, off / 64) |= UINT64_C(1) << (off % 64);
}

int bm_init(struct bitmap_pool *bm, uint8_t host_bits, uint32_t first,
	    uint32_t last)
{
	uint32_t size = UINT32_C(1) << host_bits, off;

	bm->nwords = size >= 64 ? size / 64 : 1;
	bm->nblocks = bm->nwords >= POOL_BLOCK_WORDS ?
		      bm->nwords / POOL_BLOCK_WORDS : 1;
	bm->words = calloc(2 * (size_t)bm->nwords, sizeof(uint64_t));
	bm->tree = calloc(bm->nblocks, sizeof(uint32_t));
	if (!bm->words || !bm->tree) {
		free(bm->words);
		free(bm->tree);
		return -ENOMEM;
	}

	if (size < 64)
		*bm_leased(bm, 0) = UINT64_MAX << size;
	for (off = 0; off < first; off++)
		bm_mark_never(bm, off);
	for (off = size - 1; off > last; off--)
		bm_mark_never(bm, off);
	bm_tree_build(bm);
	return 0;
}

void bm_release(struct bitmap_pool *bm)
{
	free(bm->words);
	free(bm->tree);
}

size_t bm_memory(const struct bitmap_pool *bm)
{
	return (size_t)bm->nwords * 2 * sizeof(uint64_t) +
	       (size_t)bm->nblocks * sizeof(uint32_t);
}

bool bm_is_leased(const struct bitmap_pool *bm, uint32_t off)
{
	return *bm_leased(bm, off / 64) & UINT64_C(1) << (off % 64);
}

bool bm_is_reserved(const struct bitmap_pool *bm, uint32_t off)
{
	return *bm_reserved(bm, off / 64) & UINT64_C(1) << (off % 64);
}

uint32_t bm_take_found(struct bitmap_pool *bm, uint32_t block, uint32_t rank)
{
	bm_tree_add(bm, block, -1);
	return bm_take_rank(bm, block, rank);
}
