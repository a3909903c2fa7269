// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/rng.h"
#include "../common/array.h"
#include "bitmap.h"
#include "pool.h"
#include "sparse.h"
#include "u128.h"

/*
 * Two kinds of pool, chosen by size.
 *
 * A bitmap pool (up to 2^24 addresses) keeps bits and a tree of free
 * counts: see bitmap.h.
 *
 * A sparse pool (an IPv6 /64, say) is far too large for bits and, with any
 * realistic number of leases, nearly empty. It draws offsets at random and
 * rejects the leased ones and the reserved ones, kept as sorted disjoint
 * ranges. Rejection is rare, so the expected cost is one lookup and one
 * binary search. The leased offsets are kept in a bucketized cuckoo hash
 * set: each offset lives in one of two buckets of 8 slots, a cache line
 * each, so a lookup reads two lines, both at once, and the set stays fast
 * up to 31/32 full, at 8.3 to 17 bytes an offset. An offset is stored
 * whole, in 8 bytes up to 64 host bits and 16 past them.
 *
 * A random take can be drawn ahead, with poolset_prefetch(), so that its
 * cache misses overlap the caller's own.
 *
 * Addresses are handled as offsets from the pool's prefix, in a 128-bit
 * pair of words, since a sparse pool may be as large as an IPv6 /0.
 */

#define POOL_BITMAP_MAX_BITS 24
/* Draws before a random take gives up. Only sparse pools ever retry, and
 * they are full at this many misses in a row with probability 2^-64 at
 * half occupancy. */
#define POOL_TRIES 64

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

/*
 * A random take drawn ahead by poolset_prefetch(): the pool it picked and
 * the address in it. It is used only while its family's pools are as they
 * were when it was drawn, which every change to them marks by bumping the
 * family's version: in the same state, a draw made earlier is distributed
 * exactly as one made now.
 */
struct pool_draw {
	uint64_t version;
	size_t pool;               /* SIZE_MAX: none */
	uint32_t block, rank;      /* bitmap pools: see bm_find() */
	struct u128 off;           /* sparse pools */
};

struct poolset {
	struct pool *pools;
	size_t n, cap;
	/* Set when a reservation could not be recorded; until the
	 * reservations are cleared, leasing could hand out an address that
	 * belongs to someone else, so takes fail with it instead. */
	int reserve_error;
	uint64_t version[2];       /* IPv4, IPv6 */
	struct pool_draw draw[2];
};

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

static unsigned family_index(int family)
{
	return family == AF_INET6;
}

/*
 * Sparse pools
 */

/* A uniform offset among the pool's leasable ones. */
static struct u128 sp_random_offset(const struct pool *p)
{
	struct u128 off, mask;

	if (p->host_bits < 64)
		return u128_u64(rng_range(p->first.lo, p->last.lo));
	/* Only IPv6 pools are this wide, and all of them but offset 0 is
	 * leasable: draw bits until that one is missed, which spares a /64
	 * the division rng_below() needs for a bound this large. */
	mask = u128_low_mask(p->host_bits);
	do {
		off.hi = mask.hi ? rng_u64() & mask.hi : 0;
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
		for (i = 0; i < sp->nbuckets * SPARSE_BUCKET_SLOTS; i++) {
			if (!sp_slot_empty(sp, i) && sp_reserved(sp, sp_slot_get(sp, i)))
				leased--;
		}
	}
	return u128_sub(free_count, u128_u64(leased));
}

/*
 * One pool
 */

/*
 * The offsets a pool of prefix leases, first to last. This is the rule the
 * privileged parent checks additions against too (pool_prefix_leases()),
 * so the two cannot drift apart.
 */
static void pool_bounds(const struct wgd_ip *prefix, struct u128 *first, struct u128 *last)
{
	*first = u128_u64(0);
	*last = u128_low_mask(wgd_ip_bits(prefix->family) - prefix->cidr);
	/* IPv4 leaves out the network and broadcast addresses, except on
	 * the point-to-point /31 of RFC 3021. */
	if (prefix->family == AF_INET && prefix->cidr < 31) {
		*first = u128_u64(1);
		*last = u128_sub(*last, u128_u64(1));
	}
	/* IPv6 leaves out the Subnet-Router anycast address, the all-zero
	 * one (RFC 4291 section 2.6.1), except on a /127, where RFC 6164
	 * uses both addresses. */
	if (prefix->family == AF_INET6 && prefix->cidr < 127)
		*first = u128_u64(1);
}

bool pool_prefix_leases(const struct wgd_ip *prefix, const struct wgd_ip *addr)
{
	struct u128 first, last, host, off;
	unsigned bits;

	if (!family_ok(prefix->family) || prefix->family != addr->family)
		return false;
	bits = wgd_ip_bits(prefix->family);
	if (prefix->cidr > bits)
		return false;
	host = u128_low_mask(bits - prefix->cidr);
	if (u128_cmp(u128_and(u128_from_ip(addr), u128_not(host)),
		     u128_and(u128_from_ip(prefix), u128_not(host))))
		return false;
	off = u128_and(u128_from_ip(addr), host);
	pool_bounds(prefix, &first, &last);
	return u128_cmp(off, first) >= 0 && u128_cmp(off, last) <= 0;
}

static int pool_init(struct pool *p, const struct wgd_ip *prefix)
{
	unsigned bits = wgd_ip_bits(prefix->family);

	memset(p, 0, sizeof(*p));
	p->prefix.family = prefix->family;
	p->prefix.cidr = prefix->cidr;
	memcpy(p->prefix.bytes, prefix->bytes, wgd_ip_len(prefix->family));
	p->base = u128_from_ip(prefix);
	p->host_bits = (uint8_t)(bits - prefix->cidr);
	pool_bounds(prefix, &p->first, &p->last);

	if (p->host_bits <= POOL_BITMAP_MAX_BITS)
		return bm_init(&p->bm, p->host_bits, (uint32_t)p->first.lo,
			       (uint32_t)p->last.lo);
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
		bm_release(&p->bm);
	}
}

static size_t pool_memory(const struct pool *p)
{
	if (p->sparse)
		return p->sp.nbuckets * SPARSE_BUCKET_SLOTS * sizeof(uint64_t) *
			       (p->sp.wide ? 2 : 1) +
		       p->sp.ranges_cap * sizeof(struct pool_range);
	return bm_memory(&p->bm);
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
	return bm_is_leased(&p->bm, (uint32_t)off.lo);
}

static bool pool_reserved(const struct pool *p, struct u128 off)
{
	if (p->sparse)
		return sp_reserved(&p->sp, off);
	return bm_is_reserved(&p->bm, (uint32_t)off.lo);
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

/* Marks a change to the pools of family: a draw made before is stale. */
static void poolset_changed(struct poolset *ps, int family)
{
	ps->version[family_index(family)]++;
}

struct poolset *poolset_new(void)
{
	struct poolset *ps = calloc(1, sizeof(struct poolset));

	if (ps)
		ps->draw[0].pool = ps->draw[1].pool = SIZE_MAX;
	return ps;
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
	poolset_changed(ps, prefix->family);
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
			/* Draws name pools by their place, which this moves. */
			poolset_changed(ps, AF_INET);
			poolset_changed(ps, AF_INET6);
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

/* Draws a random take ahead, changing nothing: -ENOSPC when no pool of the
 * family has a free address. */
static int poolset_draw(struct poolset *ps, int family, struct pool_draw *d)
{
	uint32_t index = 0;
	struct pool *p = poolset_pick(ps, family, &index);

	if (!p)
		return -ENOSPC;
	d->version = ps->version[family_index(family)];
	d->pool = (size_t)(p - ps->pools);
	if (p->sparse)
		d->off = sp_random_offset(p);
	else
		d->block = bm_find(&p->bm, index, &d->rank);
	return 0;
}

static bool draw_current(const struct poolset *ps, int family)
{
	const struct pool_draw *d = &ps->draw[family_index(family)];

	return d->pool != SIZE_MAX && d->version == ps->version[family_index(family)];
}

void poolset_prefetch(struct poolset *ps, int family)
{
	struct pool_draw *d;
	const struct pool *p;

	if (!family_ok(family) || ps->reserve_error)
		return;
	d = &ps->draw[family_index(family)];
	if (!draw_current(ps, family) && poolset_draw(ps, family, d)) {
		d->pool = SIZE_MAX;
		return;
	}
	p = &ps->pools[d->pool];
	if (p->sparse) {
		size_t b1, b2;

		if (!p->sp.nbuckets)
			return;
		sp_buckets(&p->sp, d->off, &b1, &b2);
		__builtin_prefetch(&p->sp.lo[b1 * SPARSE_BUCKET_SLOTS]);
		__builtin_prefetch(&p->sp.lo[b2 * SPARSE_BUCKET_SLOTS]);
	} else {
		bm_prefetch_block(&p->bm, d->block);
	}
}

void poolset_prefetch_addr(const struct poolset *ps, const struct wgd_ip *addr)
{
	struct u128 off;
	const struct pool *p = poolset_find(ps, addr, &off);
	size_t b1, b2;

	/* A bitmap pool's words for neighbouring addresses share lines;
	 * a sparse pool scatters them. */
	if (!p || !p->sparse || !p->sp.nbuckets)
		return;
	sp_buckets(&p->sp, off, &b1, &b2);
	__builtin_prefetch(&p->sp.lo[b1 * SPARSE_BUCKET_SLOTS]);
	__builtin_prefetch(&p->sp.lo[b2 * SPARSE_BUCKET_SLOTS]);
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
		struct pool_draw *d = &ps->draw[family_index(family)];
		uint32_t index = 0;
		struct pool *p;
		struct u128 off;

		if (draw_current(ps, family)) {
			p = &ps->pools[d->pool];
			if (!p->sparse) {
				off = u128_u64(bm_take_found(&p->bm, d->block, d->rank));
			} else {
				off = d->off;
			}
		} else {
			p = poolset_pick(ps, family, &index);
			if (!p)
				return -ENOSPC;
			if (!p->sparse)
				off = u128_u64(bm_take_index(&p->bm, index));
			else
				off = sp_random_offset(p);
		}
		d->pool = SIZE_MAX;
		if (p->sparse) {
			if (sp_reserved(&p->sp, off))
				continue;
			ret = sp_insert(&p->sp, off);
			if (ret == -EEXIST)
				continue;
			if (ret)
				return ret;
		}
		poolset_changed(ps, family);
		pool_address(p, off, out);
		return 0;
	}
	return -ENOSPC;
}

int poolset_take(struct poolset *ps, const struct wgd_ip *addr)
{
	struct u128 off;
	struct pool *p = poolset_find(ps, addr, &off);
	int ret;

	if (!p || !pool_leasable(p, off))
		return -ERANGE;
	if (ps->reserve_error)
		return ps->reserve_error;
	if (pool_reserved(p, off))
		return -EEXIST;
	if (p->sparse) {
		ret = sp_insert(&p->sp, off);
		if (ret)
			return ret;
	} else {
		if (pool_leased(p, off))
			return -EEXIST;
		bm_mark_leased(&p->bm, (uint32_t)off.lo);
	}
	poolset_changed(ps, addr->family);
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
	poolset_changed(ps, addr->family);
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
	poolset_changed(ps, AF_INET);
	poolset_changed(ps, AF_INET6);
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
	poolset_changed(ps, prefix->family);

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
