// SPDX-License-Identifier: MIT

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/rng.h"
#include "../common/array.h"
#include "pool.h"

/*
 * Two kinds of pool, chosen by size.
 *
 * A bitmap pool (up to 2^24 addresses) keeps one bit per address for leases
 * and one for reservations, and a binary tree counting the free addresses
 * over blocks of 512. Taking a random address draws k below the free count,
 * walks the tree down to the block holding the k-th free address and finds
 * it among the block's 8 words: O(log n) at any fill level, with no retries,
 * and no memory per lease beyond the bits. A /8 holds 4 MiB of bits and a
 * 128 KiB tree.
 *
 * A sparse pool (an IPv6 /64, say) is far too large for bits and, with any
 * realistic number of leases, nearly empty. It draws offsets at random and
 * rejects the leased ones, kept in an open-addressing hash set, and the
 * reserved ones, kept as sorted disjoint ranges. Rejection is rare, so the
 * expected cost is one hash probe and one binary search.
 *
 * Addresses are handled as offsets from the pool's prefix, in a 128-bit
 * pair of words, since a sparse pool may be as large as an IPv6 /0.
 */

#define POOL_BITMAP_MAX_BITS 24
/* Words per leaf of the count tree: 512 addresses, in two cache lines. */
#define POOL_BLOCK_WORDS 8
/* A reservation touching more blocks than this rebuilds the whole tree,
 * which is cheaper than updating it block by block. */
#define POOL_REBUILD_BLOCKS 64
/* Draws before a random take gives up. Only sparse pools ever retry, and
 * they are full at this many misses in a row with probability 2^-64 at
 * half occupancy. */
#define POOL_TRIES 64
#define SPARSE_MIN_SLOTS 64

struct u128 {
	uint64_t hi, lo;
};

struct pool_range {
	struct u128 first, last;
};

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

struct sparse_pool {
	/* Leased offsets: linear probing, and (0, 0) marks an empty slot,
	 * which is safe as offset 0 is never leasable in a sparse pool. hi
	 * is allocated only for pools of more than 2^64 addresses. */
	uint64_t *lo, *hi;
	size_t cap, count;
	uint64_t seed;
	bool wide;
	struct pool_range *ranges; /* reserved, sorted and disjoint */
	size_t nranges, ranges_cap;
};

struct pool {
	struct wgd_ip prefix;
	struct u128 base;          /* the prefix as a number */
	struct u128 first, last;   /* the leasable offsets */
	uint8_t host_bits;
	bool sparse;
	union {
		struct bitmap_pool bm;
		struct sparse_pool sp;
	};
};

struct poolset {
	struct pool *pools;
	size_t n, cap;
	/* Set when a reservation could not be recorded; until the
	 * reservations are cleared, leasing could hand out an address that
	 * belongs to someone else, so takes fail with it instead. */
	int reserve_error;
};

/*
 * 128-bit arithmetic
 */

static int u128_cmp(struct u128 a, struct u128 b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	if (a.lo != b.lo)
		return a.lo < b.lo ? -1 : 1;
	return 0;
}

static bool u128_is_zero(struct u128 a)
{
	return !a.hi && !a.lo;
}

static struct u128 u128_add(struct u128 a, struct u128 b)
{
	struct u128 r = { a.hi + b.hi, a.lo + b.lo };

	r.hi += r.lo < a.lo;
	return r;
}

static struct u128 u128_sub(struct u128 a, struct u128 b)
{
	struct u128 r = { a.hi - b.hi, a.lo - b.lo };

	r.hi -= a.lo < b.lo;
	return r;
}

static struct u128 u128_and(struct u128 a, struct u128 b)
{
	return (struct u128){ a.hi & b.hi, a.lo & b.lo };
}

static struct u128 u128_or(struct u128 a, struct u128 b)
{
	return (struct u128){ a.hi | b.hi, a.lo | b.lo };
}

static struct u128 u128_not(struct u128 a)
{
	return (struct u128){ ~a.hi, ~a.lo };
}

static struct u128 u128_u64(uint64_t v)
{
	return (struct u128){ 0, v };
}

/* The lowest h bits set, 0 <= h <= 128. */
static struct u128 u128_low_mask(unsigned h)
{
	if (h == 0)
		return u128_u64(0);
	if (h < 64)
		return u128_u64((UINT64_C(1) << h) - 1);
	if (h == 64)
		return u128_u64(UINT64_MAX);
	if (h < 128)
		return (struct u128){ (UINT64_C(1) << (h - 64)) - 1, UINT64_MAX };
	return (struct u128){ UINT64_MAX, UINT64_MAX };
}

static uint64_t u128_saturate(struct u128 a)
{
	return a.hi ? UINT64_MAX : a.lo;
}

static long double u128_to_ld(struct u128 a)
{
	return (long double)a.hi * 0x1p64L + (long double)a.lo;
}

/* An address as a number: IPv4 in the low 32 bits, IPv6 in all 128. */
static struct u128 u128_from_ip(const struct wgd_ip *ip)
{
	struct u128 r = { 0, 0 };
	int i;

	if (ip->family == AF_INET)
		return u128_u64(ntohl(ip->ip4.s_addr));
	for (i = 0; i < 8; i++) {
		r.hi = r.hi << 8 | ip->bytes[i];
		r.lo = r.lo << 8 | ip->bytes[8 + i];
	}
	return r;
}

static void u128_to_ip(struct u128 v, uint8_t family, struct wgd_ip *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	out->family = family;
	out->cidr = (uint8_t)wgd_ip_bits(family);
	if (family == AF_INET) {
		out->ip4.s_addr = htonl((uint32_t)v.lo);
		return;
	}
	for (i = 7; i >= 0; i--) {
		out->bytes[i] = (uint8_t)v.hi;
		out->bytes[8 + i] = (uint8_t)v.lo;
		v.hi >>= 8;
		v.lo >>= 8;
	}
}

/* Whether a/acidr and b/bcidr share their first min(acidr, bcidr) bits,
 * that is, whether one prefix holds the other. */
static bool prefixes_overlap(struct u128 a, unsigned acidr, struct u128 b,
			     unsigned bcidr, unsigned bits)
{
	unsigned common = acidr < bcidr ? acidr : bcidr;
	struct u128 mask = u128_and(u128_low_mask(bits),
				    u128_not(u128_low_mask(bits - common)));
	struct u128 diff = { a.hi ^ b.hi, a.lo ^ b.lo };

	return u128_is_zero(u128_and(diff, mask));
}

static bool family_ok(int family)
{
	return family == AF_INET || family == AF_INET6;
}

/*
 * Bitmap pools
 */

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
 * count of its left subtree only, so that taking the k-th free address
 * updates the nodes on the way down, in the same pass that finds it.
 */

/* Adds delta to the free count of a block, on the way up from its leaf. */
static void bm_tree_add(struct bitmap_pool *bm, uint32_t block, int32_t delta)
{
	uint32_t i;

	/* Only ancestors holding the block in their left subtree count it.
	 * Unsigned wrap-around adds a negative delta correctly. */
	for (i = block + bm->nblocks; i > 1; i >>= 1) {
		if (!(i & 1))
			bm->tree[i >> 1] += (uint32_t)delta;
	}
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

/*
 * Leases the k-th free address, k < free, and returns its offset: down the
 * tree to its block, then along the block's words to it.
 */
static uint32_t bm_take_index(struct bitmap_pool *bm, uint32_t k)
{
	uint32_t i = 1, w;

	/* Without branches: which way to go is a coin toss, which the
	 * processor would mispredict at every other level. */
	while (i < bm->nblocks) {
		uint32_t left = bm->tree[i], right = k >= left;

		bm->tree[i] -= !right;
		k -= left & -right;
		i = 2 * i + right;
	}
	for (w = (i - bm->nblocks) * POOL_BLOCK_WORDS;; w++) {
		uint64_t free_bits = ~bm_used(bm, w);
		unsigned c = popcount64(free_bits), bit;

		if (k < c) {
			bit = u64_select(free_bits, k);
			*bm_leased(bm, w) |= UINT64_C(1) << bit;
			bm->free--;
			return w * 64 + bit;
		}
		k -= c;
	}
}

static void bm_mark_leased(struct bitmap_pool *bm, uint32_t off)
{
	uint32_t w = off / 64;
	uint64_t bit = UINT64_C(1) << (off % 64);

	if (!(bm_used(bm, w) & bit)) {
		bm->free--;
		bm_tree_add(bm, w / POOL_BLOCK_WORDS, -1);
	}
	*bm_leased(bm, w) |= bit;
}

static void bm_clear_leased(struct bitmap_pool *bm, uint32_t off)
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

static void bm_reserve(struct bitmap_pool *bm, uint32_t first, uint32_t last)
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

static void bm_reserve_clear(struct bitmap_pool *bm)
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

static int bm_init(struct pool *p)
{
	struct bitmap_pool *bm = &p->bm;
	uint32_t size = UINT32_C(1) << p->host_bits, off;

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
	for (off = 0; off < p->first.lo; off++)
		bm_mark_never(bm, off);
	for (off = size - 1; off > p->last.lo; off--)
		bm_mark_never(bm, off);
	bm_tree_build(bm);
	return 0;
}

/*
 * Sparse pools
 */

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

static bool sp_slot_empty(const struct sparse_pool *sp, size_t i)
{
	return !sp->lo[i] && (!sp->hi || !sp->hi[i]);
}

static struct u128 sp_slot_get(const struct sparse_pool *sp, size_t i)
{
	return (struct u128){ sp->hi ? sp->hi[i] : 0, sp->lo[i] };
}

static void sp_slot_set(struct sparse_pool *sp, size_t i, struct u128 off)
{
	sp->lo[i] = off.lo;
	if (sp->hi)
		sp->hi[i] = off.hi;
}

/* The slot holding off, or the empty one where it would go. */
static size_t sp_slot_find(const struct sparse_pool *sp, struct u128 off)
{
	size_t mask = sp->cap - 1, i = sp_hash(sp, off) & mask;

	while (!sp_slot_empty(sp, i) && u128_cmp(sp_slot_get(sp, i), off))
		i = (i + 1) & mask;
	return i;
}

static bool sp_leased(const struct sparse_pool *sp, struct u128 off)
{
	return sp->cap && !sp_slot_empty(sp, sp_slot_find(sp, off));
}

static int sp_grow(struct sparse_pool *sp)
{
	struct sparse_pool old = *sp;
	size_t cap = sp->cap ? sp->cap * 2 : SPARSE_MIN_SLOTS, i;

	if (cap > SIZE_MAX / 2 / sizeof(uint64_t))
		return -ENOMEM;
	sp->lo = calloc(cap, sizeof(uint64_t));
	sp->hi = sp->wide ? calloc(cap, sizeof(uint64_t)) : NULL;
	if (!sp->lo || (sp->wide && !sp->hi)) {
		free(sp->lo);
		free(sp->hi);
		*sp = old;
		return -ENOMEM;
	}
	sp->cap = cap;
	for (i = 0; i < old.cap; i++) {
		if (!sp_slot_empty(&old, i)) {
			struct u128 off = sp_slot_get(&old, i);

			sp_slot_set(sp, sp_slot_find(sp, off), off);
		}
	}
	free(old.lo);
	free(old.hi);
	return 0;
}

/* Adds off to the leased set: 0, -EEXIST when it is there, or -ENOMEM. One
 * probe both tests and inserts, as the set outgrows every cache. */
static int sp_insert(struct sparse_pool *sp, struct u128 off)
{
	size_t i;
	int ret;

	/* At most three quarters full: linear probing stays short, and a
	 * slot costs 8 bytes, so a lease costs 11 to 21 bytes. */
	if ((sp->count + 1) * 4 > sp->cap * 3) {
		ret = sp_grow(sp);
		if (ret)
			return ret;
	}
	i = sp_slot_find(sp, off);
	if (!sp_slot_empty(sp, i))
		return -EEXIST;
	sp_slot_set(sp, i, off);
	sp->count++;
	return 0;
}

static void sp_remove(struct sparse_pool *sp, struct u128 off)
{
	size_t mask = sp->cap - 1, hole, i;

	if (!sp->cap)
		return;
	hole = sp_slot_find(sp, off);
	if (sp_slot_empty(sp, hole))
		return;
	sp->count--;

	/*
	 * Backward-shift deletion: pull later entries of the run into the
	 * hole when their home slot does not lie between the hole and where
	 * they are, so that no lookup ever stops early at it. No tombstones
	 * pile up over years of leases coming and going.
	 */
	for (i = (hole + 1) & mask; !sp_slot_empty(sp, i); i = (i + 1) & mask) {
		struct u128 cur = sp_slot_get(sp, i);
		size_t home = sp_hash(sp, cur) & mask;

		if (((i - home) & mask) >= ((i - hole) & mask)) {
			sp_slot_set(sp, hole, cur);
			hole = i;
		}
	}
	sp_slot_set(sp, hole, u128_u64(0));
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

static bool sp_reserved(const struct sparse_pool *sp, struct u128 off)
{
	size_t i = sp_range_lower(sp, off);

	return i < sp->nranges && u128_cmp(sp->ranges[i].first, off) <= 0;
}

static int sp_reserve(struct sparse_pool *sp, struct u128 first, struct u128 last)
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

/* A uniform offset among the pool's leasable ones. */
static struct u128 sp_random_offset(const struct pool *p)
{
	struct u128 off, mask;

	if (p->host_bits <= 64)
		return u128_u64(rng_range(p->first.lo, p->last.lo));
	/* Only IPv6 pools are this wide, and all of them but offset 0 is
	 * leasable: draw bits until that one is missed. */
	mask = u128_low_mask(p->host_bits);
	do {
		off.hi = rng_u64() & mask.hi;
		off.lo = rng_u64();
	} while (u128_cmp(off, p->first) < 0);
	return off;
}

/* Free addresses, exactly: leases inside reserved ranges count once. */
static struct u128 sp_free(const struct pool *p)
{
	const struct sparse_pool *sp = &p->sp;
	struct u128 free_count = u128_add(u128_sub(p->last, p->first), u128_u64(1));
	size_t i, leased = sp->count;

	for (i = 0; i < sp->nranges; i++) {
		free_count = u128_sub(free_count, u128_sub(sp->ranges[i].last,
							   sp->ranges[i].first));
		free_count = u128_sub(free_count, u128_u64(1));
	}
	if (sp->nranges) {
		for (i = 0; i < sp->cap; i++) {
			if (!sp_slot_empty(sp, i) && sp_reserved(sp, sp_slot_get(sp, i)))
				leased--;
		}
	}
	return u128_sub(free_count, u128_u64(leased));
}

/*
 * One pool
 */

static int pool_init(struct pool *p, const struct wgd_ip *prefix)
{
	unsigned bits = wgd_ip_bits(prefix->family);

	memset(p, 0, sizeof(*p));
	p->prefix.family = prefix->family;
	p->prefix.cidr = prefix->cidr;
	memcpy(p->prefix.bytes, prefix->bytes, wgd_ip_len(prefix->family));
	p->base = u128_from_ip(prefix);
	p->host_bits = (uint8_t)(bits - prefix->cidr);
	p->last = u128_low_mask(p->host_bits);

	/* IPv4 leaves out the network and broadcast addresses, except on
	 * the point-to-point /31 of RFC 3021. */
	if (prefix->family == AF_INET && prefix->cidr < 31) {
		p->first = u128_u64(1);
		p->last = u128_sub(p->last, u128_u64(1));
	}
	/* IPv6 leaves out the Subnet-Router anycast address, the all-zero
	 * one (RFC 4291 section 2.6.1), except on a /127, where RFC 6164
	 * uses both addresses. */
	if (prefix->family == AF_INET6 && prefix->cidr < 127)
		p->first = u128_u64(1);

	if (p->host_bits <= POOL_BITMAP_MAX_BITS)
		return bm_init(p);
	p->sparse = true;
	p->sp.seed = rng_u64();
	p->sp.wide = p->host_bits > 64;
	return 0;
}

static void pool_release(struct pool *p)
{
	if (p->sparse) {
		free(p->sp.lo);
		free(p->sp.hi);
		free(p->sp.ranges);
	} else {
		free(p->bm.words);
		free(p->bm.tree);
	}
}

static size_t pool_memory(const struct pool *p)
{
	if (p->sparse)
		return p->sp.cap * sizeof(uint64_t) * (p->sp.wide ? 2 : 1) +
		       p->sp.ranges_cap * sizeof(struct pool_range);
	return (size_t)p->bm.nwords * 2 * sizeof(uint64_t) +
	       (size_t)p->bm.nblocks * sizeof(uint32_t);
}

static struct u128 pool_size(const struct pool *p)
{
	return u128_add(u128_sub(p->last, p->first), u128_u64(1));
}

static bool pool_leasable(const struct pool *p, struct u128 off)
{
	return u128_cmp(off, p->first) >= 0 && u128_cmp(off, p->last) <= 0;
}

static bool pool_leased(const struct pool *p, struct u128 off)
{
	if (p->sparse)
		return sp_leased(&p->sp, off);
	return *bm_leased(&p->bm, (uint32_t)(off.lo / 64)) & UINT64_C(1) << (off.lo % 64);
}

static bool pool_reserved(const struct pool *p, struct u128 off)
{
	if (p->sparse)
		return sp_reserved(&p->sp, off);
	return *bm_reserved(&p->bm, (uint32_t)(off.lo / 64)) & UINT64_C(1) << (off.lo % 64);
}

static void pool_address(const struct pool *p, struct u128 off, struct wgd_ip *out)
{
	u128_to_ip(u128_or(p->base, off), p->prefix.family, out);
}

/*
 * How likely a draw is to land in p; see poolset_pick(). A sparse pool that
 * one reservation covers whole, such as a static peer routed the entire
 * prefix, would only ever reject: it weighs nothing.
 */
static long double pool_weight(const struct pool *p)
{
	const struct sparse_pool *sp = &p->sp;

	if (!p->sparse)
		return (long double)p->bm.free;
	if (sp->nranges == 1 && !u128_cmp(sp->ranges[0].first, p->first) &&
	    !u128_cmp(sp->ranges[0].last, p->last))
		return 0;
	return u128_to_ld(pool_size(p));
}

/*
 * The set
 */

/* The pool holding addr, and addr's offset in it. Only the address bits
 * count; addr's prefix length is not looked at. */
static struct pool *poolset_find(const struct poolset *ps,
				 const struct wgd_ip *addr, struct u128 *off)
{
	struct u128 v;
	size_t i;

	if (!family_ok(addr->family))
		return NULL;
	v = u128_from_ip(addr);
	for (i = 0; i < ps->n; i++) {
		struct pool *p = &ps->pools[i];
		struct u128 host = u128_low_mask(p->host_bits);

		if (p->prefix.family != addr->family)
			continue;
		if (!u128_cmp(u128_and(v, u128_not(host)), p->base)) {
			*off = u128_and(v, host);
			return p;
		}
	}
	return NULL;
}

struct poolset *poolset_new(void)
{
	return calloc(1, sizeof(struct poolset));
}

void poolset_free(struct poolset *ps)
{
	size_t i;

	if (!ps)
		return;
	for (i = 0; i < ps->n; i++)
		pool_release(&ps->pools[i]);
	free(ps->pools);
	free(ps);
}

int poolset_add(struct poolset *ps, const struct wgd_ip *prefix)
{
	unsigned bits;
	struct u128 v;
	size_t i;
	int ret;

	if (!family_ok(prefix->family))
		return -EINVAL;
	bits = wgd_ip_bits(prefix->family);
	if (prefix->cidr > bits)
		return -EINVAL;
	v = u128_from_ip(prefix);
	if (!u128_is_zero(u128_and(v, u128_low_mask(bits - prefix->cidr))))
		return -EINVAL;

	for (i = 0; i < ps->n; i++) {
		const struct pool *p = &ps->pools[i];

		if (p->prefix.family == prefix->family &&
		    p->prefix.cidr == prefix->cidr && !u128_cmp(p->base, v))
			return -EEXIST;
	}
	for (i = 0; i < ps->n; i++) {
		const struct pool *p = &ps->pools[i];

		if (p->prefix.family == prefix->family &&
		    prefixes_overlap(p->base, p->prefix.cidr, v, prefix->cidr, bits))
			return -EINVAL;
	}

	if (array_reserve(&ps->pools, &ps->cap, ps->n, sizeof(*ps->pools), 4))
		return -ENOMEM;
	ret = pool_init(&ps->pools[ps->n], prefix);
	if (ret)
		return ret;
	ps->n++;
	return 0;
}

int poolset_remove(struct poolset *ps, const struct wgd_ip *prefix)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		struct pool *p = &ps->pools[i];

		if (p->prefix.family == prefix->family &&
		    p->prefix.cidr == prefix->cidr &&
		    !memcmp(p->prefix.bytes, prefix->bytes, wgd_ip_len(prefix->family))) {
			pool_release(p);
			memmove(p, p + 1, (ps->n - i - 1) * sizeof(*p));
			ps->n--;
			return 0;
		}
	}
	return -ENOENT;
}

size_t poolset_count(const struct poolset *ps)
{
	return ps->n;
}

const struct wgd_ip *poolset_prefix(const struct poolset *ps, size_t i)
{
	return i < ps->n ? &ps->pools[i].prefix : NULL;
}

bool poolset_contains(const struct poolset *ps, const struct wgd_ip *addr)
{
	struct u128 off;
	const struct pool *p = poolset_find(ps, addr, &off);

	return p && pool_leasable(p, off);
}

bool poolset_is_free(const struct poolset *ps, const struct wgd_ip *addr)
{
	struct u128 off;
	const struct pool *p = poolset_find(ps, addr, &off);

	return p && pool_leasable(p, off) && !pool_leased(p, off) &&
	       !pool_reserved(p, off);
}

/*
 * Picks a pool for one draw. For the result to be uniform over every free
 * address of the family, each candidate a draw can land on must be equally
 * likely: a bitmap pool draws only among its free addresses and so weighs
 * its free count, a sparse pool draws among all its leasable ones, and
 * rejects, so it weighs its size. A rejected draw starts over here.
 *
 * For a bitmap pool *index is the free address to take, below its free
 * count: one random number picks both pool and address where it can, as
 * every draw costs.
 */
static struct pool *poolset_pick(struct poolset *ps, int family, uint32_t *index)
{
	struct pool *p, *only = NULL, *last = NULL;
	long double weight = 0, x;
	size_t i, candidates = 0;
	bool any_sparse = false;
	uint64_t total = 0, k;

	for (i = 0; i < ps->n; i++) {
		long double w;

		p = &ps->pools[i];
		if (p->prefix.family != family)
			continue;
		w = pool_weight(p);
		if (w <= 0)
			continue;
		if (p->sparse)
			any_sparse = true;
		else
			total += p->bm.free;
		weight += w;
		candidates++;
		only = p;
	}
	if (!candidates)
		return NULL;

	if (candidates == 1) {
		if (!only->sparse)
			*index = (uint32_t)rng_below(only->bm.free);
		return only;
	}

	/* Bitmap pools alone hold fewer than 2^64 addresses between them:
	 * pick exactly, and the remainder is the index in the pool. */
	if (!any_sparse) {
		k = rng_below(total);
		for (i = 0; i < ps->n; i++) {
			p = &ps->pools[i];
			if (p->prefix.family != family)
				continue;
			if (k < p->bm.free) {
				*index = (uint32_t)k;
				return p;
			}
			k -= p->bm.free;
		}
		return NULL;
	}

	/* Sparse pools reach 2^128 addresses, past any integer type we
	 * have; a long double spans them, to 64 bits of precision. */
	x = (long double)rng_u64() * 0x1p-64L * weight;
	for (i = 0; i < ps->n; i++) {
		long double w;

		p = &ps->pools[i];
		if (p->prefix.family != family)
			continue;
		w = pool_weight(p);
		if (w <= 0)
			continue;
		last = p;
		if (x < w)
			break;
		x -= w;
	}
	/* Rounding can leave x just short of the end: last is the last pool
	 * with any weight then. */
	if (last && !last->sparse)
		*index = (uint32_t)rng_below(last->bm.free);
	return last;
}

int poolset_take_random(struct poolset *ps, int family, struct wgd_ip *out)
{
	int tries, ret;

	memset(out, 0, sizeof(*out));
	if (!family_ok(family))
		return -EAFNOSUPPORT;
	if (ps->reserve_error)
		return ps->reserve_error;

	for (tries = 0; tries < POOL_TRIES; tries++) {
		uint32_t index = 0;
		struct pool *p = poolset_pick(ps, family, &index);
		struct u128 off;

		if (!p)
			return -ENOSPC;
		if (!p->sparse) {
			off = u128_u64(bm_take_index(&p->bm, index));
			pool_address(p, off, out);
			return 0;
		}
		off = sp_random_offset(p);
		if (sp_reserved(&p->sp, off))
			continue;
		ret = sp_insert(&p->sp, off);
		if (ret == -EEXIST)
			continue;
		if (ret)
			return ret;
		pool_address(p, off, out);
		return 0;
	}
	return -ENOSPC;
}

int poolset_take(struct poolset *ps, const struct wgd_ip *addr)
{
	struct u128 off;
	struct pool *p = poolset_find(ps, addr, &off);

	if (!p || !pool_leasable(p, off))
		return -ERANGE;
	if (ps->reserve_error)
		return ps->reserve_error;
	if (pool_reserved(p, off))
		return -EEXIST;
	if (p->sparse)
		return sp_insert(&p->sp, off);
	if (pool_leased(p, off))
		return -EEXIST;
	bm_mark_leased(&p->bm, (uint32_t)off.lo);
	return 0;
}

void poolset_put(struct poolset *ps, const struct wgd_ip *addr)
{
	struct u128 off;
	struct pool *p = poolset_find(ps, addr, &off);

	/* The never-leasable addresses are marked leased for good in a
	 * bitmap pool: they must not be put back. */
	if (!p || !pool_leasable(p, off))
		return;
	if (p->sparse)
		sp_remove(&p->sp, off);
	else
		bm_clear_leased(&p->bm, (uint32_t)off.lo);
}

void poolset_reserve_clear(struct poolset *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		struct pool *p = &ps->pools[i];

		if (p->sparse)
			p->sp.nranges = 0;
		else
			bm_reserve_clear(&p->bm);
	}
	ps->reserve_error = 0;
}

void poolset_reserve(struct poolset *ps, const struct wgd_ip *prefix)
{
	unsigned bits;
	struct u128 v;
	size_t i;

	if (!family_ok(prefix->family))
		return;
	bits = wgd_ip_bits(prefix->family);
	if (prefix->cidr > bits)
		return;
	v = u128_from_ip(prefix);

	for (i = 0; i < ps->n; i++) {
		struct pool *p = &ps->pools[i];
		struct u128 first, last;
		int ret;

		if (p->prefix.family != prefix->family ||
		    !prefixes_overlap(p->base, p->prefix.cidr, v, prefix->cidr, bits))
			continue;
		/* Prefixes either nest or miss each other: this one holds
		 * the whole pool, or lies inside it. */
		if (prefix->cidr <= p->prefix.cidr) {
			first = p->first;
			last = p->last;
		} else {
			struct u128 span = u128_low_mask(bits - prefix->cidr);

			first = u128_and(u128_and(v, u128_low_mask(p->host_bits)),
					 u128_not(span));
			last = u128_or(first, span);
			if (u128_cmp(first, p->first) < 0)
				first = p->first;
			if (u128_cmp(last, p->last) > 0)
				last = p->last;
			if (u128_cmp(first, last) > 0)
				continue;
		}
		if (!p->sparse) {
			bm_reserve(&p->bm, (uint32_t)first.lo, (uint32_t)last.lo);
			continue;
		}
		ret = sp_reserve(&p->sp, first, last);
		if (ret && !ps->reserve_error)
			ps->reserve_error = ret;
	}
}

uint64_t poolset_pool_size(const struct poolset *ps, size_t i)
{
	if (i >= ps->n)
		return 0;
	return u128_saturate(pool_size(&ps->pools[i]));
}

uint64_t poolset_pool_free(const struct poolset *ps, size_t i)
{
	const struct pool *p;

	if (i >= ps->n)
		return 0;
	p = &ps->pools[i];
	return p->sparse ? u128_saturate(sp_free(p)) : p->bm.free;
}

size_t poolset_memory(const struct poolset *ps)
{
	size_t bytes = sizeof(*ps) + ps->cap * sizeof(*ps->pools), i;

	for (i = 0; i < ps->n; i++)
		bytes += pool_memory(&ps->pools[i]);
	return bytes;
}
