// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "../common/array.h"
#include "../common/hashtab.h"
#include "lease.h"

_Static_assert(sizeof(struct lease) == 84, "struct lease has grown");

/* The free-list end, and so one more than the last lease index. */
#define NO_LEASE ((UINT32_C(1) << 30) - 1)

struct heap_entry {
	uint32_t expires;          /* the lease's, here to spare a visit */
	uint32_t lease;
};

struct lease_table {
	struct poolset *pools;

	struct lease *leases;      /* slab; unused entries chain through heap_pos */
	uint32_t n_slab, cap_slab;
	uint32_t free_head;
	size_t count;

	/* The key index: slab positions by the hash of their key. */
	struct hashtab index;

	struct heap_entry *heap;   /* earliest expiry first */

	/* Quarantined addresses, sorted by the end of their quarantine. */
	struct quarantine {
		struct wgd_ip addr;
		uint64_t until;
	} *quarantine;
	size_t n_quarantine, cap_quarantine;
};

static uint32_t key_hash(const struct lease_table *lt, const uint8_t *pubkey)
{
	return hashtab_hash(&lt->index, pubkey, WG_KEY_LEN);
}

struct key_query {
	const struct lease_table *lt;
	const uint8_t *pubkey;
};

static bool key_match(uint32_t idx, const void *ctx)
{
	const struct key_query *q = ctx;

	return !memcmp(q->lt->leases[idx].pubkey, q->pubkey, WG_KEY_LEN);
}

struct lease_table *lease_table_new(struct poolset *pools)
{
	struct lease_table *lt = calloc(1, sizeof(*lt));

	if (!lt)
		return NULL;
	lt->pools = pools;
	lt->free_head = NO_LEASE;
	if (hashtab_init(&lt->index)) {
		free(lt);
		return NULL;
	}
	return lt;
}

void lease_table_free(struct lease_table *lt)
{
	if (!lt)
		return;
	free(lt->leases);
	hashtab_free(&lt->index);
	free(lt->heap);
	free(lt->quarantine);
	free(lt);
}

size_t lease_count(const struct lease_table *lt)
{
	return lt->count;
}

size_t lease_table_memory(const struct lease_table *lt)
{
	return sizeof(*lt) +
	       (size_t)lt->cap_slab * (sizeof(struct lease) + sizeof(struct heap_entry)) +
	       hashtab_memory(&lt->index) +
	       lt->cap_quarantine * sizeof(*lt->quarantine);
}

static struct lease *lease_lookup(const struct lease_table *lt, const uint8_t *pubkey,
				  uint32_t hash)
{
	const struct key_query q = { lt, pubkey };
	uint32_t idx = hashtab_find(&lt->index, hash, key_match, &q);

	return idx != HASHTAB_NONE ? &lt->leases[idx] : NULL;
}

struct lease *lease_find(const struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN])
{
	return lease_lookup(lt, pubkey, key_hash(lt, pubkey));
}

uint32_t lease_prefetch(const struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN])
{
	uint32_t hash = key_hash(lt, pubkey);

	hashtab_prefetch(&lt->index, hash);
	return hash;
}

struct lease *lease_find_hashed(const struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN],
				uint32_t hash)
{
	return lease_lookup(lt, pubkey, hash);
}

/* Puts heap entry e at pos, and tells its lease. */
static void heap_set(struct lease_table *lt, uint32_t pos, struct heap_entry e)
{
	lt->heap[pos] = e;
	lt->leases[e.lease].heap_pos = pos;
}

/* Moves the entry at pos up or down to where its expiry belongs. */
static void heap_fix(struct lease_table *lt, uint32_t pos)
{
	struct heap_entry e = lt->heap[pos];
	uint32_t n = (uint32_t)lt->count;

	while (pos > 0 && e.expires < lt->heap[(pos - 1) / 2].expires) {
		heap_set(lt, pos, lt->heap[(pos - 1) / 2]);
		pos = (pos - 1) / 2;
	}
	for (;;) {
		uint32_t c = 2 * pos + 1;

		if (c >= n)
			break;
		if (c + 1 < n && lt->heap[c + 1].expires < lt->heap[c].expires)
			c++;
		if (lt->heap[c].expires >= e.expires)
			break;
		heap_set(lt, pos, lt->heap[c]);
		pos = c;
	}
	heap_set(lt, pos, e);
}

/* After a lease's expiry changed. */
static void heap_update(struct lease_table *lt, struct lease *l)
{
	lt->heap[l->heap_pos].expires = l->expires;
	heap_fix(lt, l->heap_pos);
}

struct lease *lease_first_expiry(const struct lease_table *lt)
{
	return lt->count ? &lt->leases[lt->heap[0].lease] : NULL;
}

void lease_foreach(const struct lease_table *lt,
		   void (*cb)(const struct lease *l, void *ctx), void *ctx)
{
	for (size_t i = 0; i < lt->count; i++)
		cb(&lt->leases[lt->heap[i].lease], ctx);
}

/*
 * Room for one more lease in the slab and the heap. Both double: a million
 * leases fill 95 % of 2^20 slots, and untouched capacity past the last
 * lease costs address space, not memory.
 */
/* Makes the slab and the heap hold cap leases (cap > cap_slab). */
static int slab_resize(struct lease_table *lt, uint32_t cap)
{
	struct heap_entry *heap;
	struct lease *leases;

	leases = realloc(lt->leases, (size_t)cap * sizeof(*leases));
	if (!leases)
		return -ENOMEM;
	lt->leases = leases;
	heap = realloc(lt->heap, (size_t)cap * sizeof(*heap));
	if (!heap)
		return -ENOMEM;
	lt->heap = heap;
	lt->cap_slab = cap;
	return 0;
}

static int slab_reserve(struct lease_table *lt)
{
	uint32_t cap;

	if (lt->free_head != NO_LEASE || lt->n_slab < lt->cap_slab)
		return 0;
	if (lt->cap_slab >= NO_LEASE)
		return -ENOMEM;
	cap = lt->cap_slab ? lt->cap_slab * 2 : 64;
	if (cap > NO_LEASE)
		cap = NO_LEASE;
	return slab_resize(lt, cap);
}

int lease_table_reserve(struct lease_table *lt, size_t n)
{
	int ret;

	if (n >= NO_LEASE)
		return -ENOMEM;
	ret = hashtab_reserve(&lt->index, n + 1);
	if (ret)
		return ret;
	return n > lt->cap_slab ? slab_resize(lt, (uint32_t)n) : 0;
}

/* Inserts a lease for pubkey, whose hash is given, with no addresses and
 * the latest expiry of all; the caller fills it in and then calls
 * heap_update(). */
static struct lease *lease_insert(struct lease_table *lt, const uint8_t *pubkey, uint32_t hash)
{
	uint32_t idx = lt->free_head != NO_LEASE ? lt->free_head : lt->n_slab;
	struct lease *l;

	if (slab_reserve(lt) || hashtab_insert(&lt->index, hash, idx))
		return NULL;
	l = &lt->leases[idx];
	if (idx == lt->n_slab)
		lt->n_slab++;
	else
		lt->free_head = l->heap_pos;
	memset(l, 0, sizeof(*l));
	memcpy(l->pubkey, pubkey, WG_KEY_LEN);
	l->expires = UINT32_MAX;
	heap_set(lt, (uint32_t)lt->count++, (struct heap_entry){ UINT32_MAX, idx });
	return l;
}

static void lease_remove(struct lease_table *lt, struct lease *l)
{
	uint32_t idx = (uint32_t)(l - lt->leases), pos = l->heap_pos;

	hashtab_remove(&lt->index, key_hash(lt, l->pubkey), idx);
	lt->count--;
	if (pos != lt->count) {
		heap_set(lt, pos, lt->heap[lt->count]);
		heap_fix(lt, pos);
	}
	sodium_memzero(l, sizeof(*l));
	l->heap_pos = lt->free_head;
	lt->free_head = idx;
}

/* Copies a recorded lease over l, keeping l's place in the heap. */
static void lease_assign(struct lease_table *lt, struct lease *l, const struct lease *src)
{
	uint32_t pos = l->heap_pos;

	*l = *src;
	l->heap_pos = pos;
	heap_update(lt, l);
}

/* An empty change of the peer's allowed-IPs. */
static void change_init(struct wgdev_change *c, const uint8_t pubkey[WG_KEY_LEN])
{
	memset(c, 0, sizeof(*c));
	memcpy(c->pubkey, pubkey, WG_KEY_LEN);
}

static void change_del(struct wgdev_change *c, int family, const void *addr)
{
	struct wgd_ip *ip = &c->del[c->n_del++];

	if (family == AF_INET)
		wgd_ip_host4(ip, addr);
	else
		wgd_ip_host6(ip, addr);
}

static void change_add(struct wgdev_change *c, const struct wgd_ip *ip)
{
	c->add[c->n_add++] = *ip;
}

void lease_release(struct lease_table *lt, struct lease *l, struct wgdev_change *change)
{
	struct wgd_ip ip;

	change_init(change, l->pubkey);
	if (l->has_ip4) {
		wgd_ip_host4(&ip, &l->ip4);
		poolset_put(lt->pools, &ip);
		change_del(change, AF_INET, &l->ip4);
	}
	if (l->has_ip6) {
		wgd_ip_host6(&ip, &l->ip6);
		poolset_put(lt->pools, &ip);
		change_del(change, AF_INET6, &l->ip6);
	}
	lease_remove(lt, l);
}

/*
 * Settles one family. held is the lease's current address of the family
 * (NULL if none); want is the request's ip= line (NULL when the family was
 * left out, which releases it). Returns 1 when an address is granted into
 * *got, 0 when none is held afterwards, -ENOSPC when one was asked for and
 * none could be given.
 */
static int settle_family(struct lease_table *lt, int family, const struct wgd_ip *held,
			 const struct wgd_ip *want, struct wgd_ip *got)
{
	bool held_ok = held && poolset_contains(lt->pools, held);

	if (!want)
		return 0;

	if (!wgd_ip_is_unspecified(want)) {
		if (held_ok && wgd_ip_equal(held, want)) {
			*got = *held;
			return 1;
		}
		if (!poolset_take(lt->pools, want)) {
			*got = *want;
			return 1;
		}
	}
	/* Any address, or the one asked for is taken: keep what the peer
	 * holds when it is still inside a pool, else pick at random. */
	if (held_ok) {
		*got = *held;
		return 1;
	}
	if (!poolset_take_random(lt->pools, family, got))
		return 1;
	return -ENOSPC;
}

/* Whether want, a request's ip= line or NULL, asks for the held address. */
static bool asks_for(const struct lease_table *lt, bool has, int family, const void *addr,
		     const struct wgd_ip *want)
{
	struct wgd_ip held;

	if (!has || !want)
		return has == !!want;
	if (family == AF_INET)
		wgd_ip_host4(&held, addr);
	else
		wgd_ip_host6(&held, addr);
	/* A pool gone since takes the full path, which moves the lease. */
	if (!poolset_contains(lt->pools, &held))
		return false;
	return wgd_ip_is_unspecified(want) || wgd_ip_equal(want, &held);
}

/*
 * A request before LEASE_REPEAT_PERCENT of the lease, for the lease as it
 * is: answered from it, changing nothing. See lease_request().
 */
static bool answer_as_is(const struct lease_table *lt, struct lease *l,
			 const struct in6_addr *lladdr, const struct wgd_msg *req,
			 const struct lease_clock *now, struct wgd_msg *resp)
{
	uint64_t left;

	/* A lease just made for this request holds nothing yet. */
	if ((!l->has_ip4 && !l->has_ip6) || l->expires <= now->boot)
		return false;
	left = l->expires - now->boot;
	/* Less a second: the lease clock counts whole seconds, so a renewal
	 * on time must never look early by the rounding. */
	if ((left - 1) * 100 <= (uint64_t)l->leasetime * (100 - LEASE_REPEAT_PERCENT))
		return false;
	if (!asks_for(lt, l->has_ip4, AF_INET, &l->ip4, req->has_ip4 ? &req->ip4 : NULL) ||
	    !asks_for(lt, l->has_ip6, AF_INET6, &l->ip6, req->has_ip6 ? &req->ip6 : NULL))
		return false;
	/* Kept in memory for status; the journal does not record it. */
	l->lladdr = *lladdr;
	resp->has_ip4 = l->has_ip4;
	resp->has_ip6 = l->has_ip6;
	if (l->has_ip4)
		wgd_ip_host4(&resp->ip4, &l->ip4);
	if (l->has_ip6)
		wgd_ip_host6(&resp->ip6, &l->ip6);
	resp->has_leasestart = resp->has_leasetime = true;
	resp->leasestart = now->real;
	resp->leasetime = (uint32_t)left;
	return true;
}

int lease_request(struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN],
		  const struct in6_addr *lladdr, const struct wgd_msg *req,
		  uint32_t leasetime, const struct lease_clock *now,
		  struct wgd_msg *resp, struct wgdev_change *change)
{
	uint32_t hash = key_hash(lt, pubkey);
	struct wgd_ip held4, held6, got4, got6;
	bool unavailable = false;
	struct lease *l;
	int r4, r6;

	/* A new peer's grant misses the cache in the key index, in a block
	 * of each pool and at its place in the slab: wait for all at once. */
	hashtab_prefetch(&lt->index, hash);
	if (req->has_ip4)
		poolset_prefetch(lt->pools, AF_INET);
	if (req->has_ip6)
		poolset_prefetch(lt->pools, AF_INET6);
	if (lt->free_head != NO_LEASE)
		__builtin_prefetch(&lt->leases[lt->free_head], 1);
	l = lease_lookup(lt, pubkey, hash);

	change_init(change, pubkey);
	if (!l && (req->has_ip4 || req->has_ip6)) {
		l = lease_insert(lt, pubkey, hash);
		if (!l)
			return -ENOMEM;
	}

	resp->cmd = WGD_CMD_NONE;
	resp->has_errno = true;
	resp->err = WGD_E_OK;
	if (!l)
		return 0; /* a release with nothing to release */
	if (answer_as_is(lt, l, lladdr, req, now, resp))
		return LEASE_AS_IS;

	if (l->has_ip4)
		wgd_ip_host4(&held4, &l->ip4);
	if (l->has_ip6)
		wgd_ip_host6(&held6, &l->ip6);

	r4 = settle_family(lt, AF_INET, l->has_ip4 ? &held4 : NULL,
			   req->has_ip4 ? &req->ip4 : NULL, &got4);
	r6 = settle_family(lt, AF_INET6, l->has_ip6 ? &held6 : NULL,
			   req->has_ip6 ? &req->ip6 : NULL, &got6);

	/* Whatever is held and not kept goes back, and off the device. */
	if (l->has_ip4 && !(r4 == 1 && wgd_ip_equal(&got4, &held4))) {
		poolset_put(lt->pools, &held4);
		change_del(change, AF_INET, &l->ip4);
	}
	if (l->has_ip6 && !(r6 == 1 && wgd_ip_equal(&got6, &held6))) {
		poolset_put(lt->pools, &held6);
		change_del(change, AF_INET6, &l->ip6);
	}
	if (r4 == 1 && !(l->has_ip4 && wgd_ip_equal(&got4, &held4)))
		change_add(change, &got4);
	if (r6 == 1 && !(l->has_ip6 && wgd_ip_equal(&got6, &held6)))
		change_add(change, &got6);

	l->has_ip4 = r4 == 1;
	l->has_ip6 = r6 == 1;
	if (l->has_ip4)
		l->ip4 = got4.ip4;
	if (l->has_ip6)
		l->ip6 = got6.ip6;
	unavailable = r4 < 0 || r6 < 0;

	if (unavailable) {
		resp->err = WGD_E_UNAVAILABLE;
		if (r4 < 0 && r6 < 0)
			snprintf(resp->errmsg, sizeof(resp->errmsg),
				 "No IPv4 or IPv6 address is free");
		else
			snprintf(resp->errmsg, sizeof(resp->errmsg),
				 "No %s address is free", r4 < 0 ? "IPv4" : "IPv6");
	}

	if (!l->has_ip4 && !l->has_ip6) {
		lease_remove(lt, l);
		return 0;
	}

	l->lladdr = *lladdr;
	l->start = now->real;
	l->leasetime = leasetime;
	l->expires = (uint32_t)(now->boot + leasetime);
	heap_update(lt, l);

	resp->has_ip4 = l->has_ip4;
	resp->has_ip6 = l->has_ip6;
	if (l->has_ip4)
		resp->ip4 = got4;
	if (l->has_ip6)
		resp->ip6 = got6;
	resp->has_leasestart = resp->has_leasetime = true;
	resp->leasestart = l->start;
	resp->leasetime = l->leasetime;
	return 0;
}

int lease_restore(struct lease_table *lt, const struct lease *src)
{
	uint32_t hash = key_hash(lt, src->pubkey);
	struct wgd_ip ip4, ip6;
	struct lease *l;

	if (lease_lookup(lt, src->pubkey, hash))
		return -EEXIST;
	if (src->has_ip4) {
		wgd_ip_host4(&ip4, &src->ip4);
		if (poolset_contains(lt->pools, &ip4) && poolset_take(lt->pools, &ip4))
			return -EEXIST;
	}
	if (src->has_ip6) {
		wgd_ip_host6(&ip6, &src->ip6);
		if (poolset_contains(lt->pools, &ip6) && poolset_take(lt->pools, &ip6)) {
			if (src->has_ip4)
				poolset_put(lt->pools, &ip4);
			return -EEXIST;
		}
	}
	l = lease_insert(lt, src->pubkey, hash);
	if (!l) {
		if (src->has_ip4)
			poolset_put(lt->pools, &ip4);
		if (src->has_ip6)
			poolset_put(lt->pools, &ip6);
		return -ENOMEM;
	}
	lease_assign(lt, l, src);
	return 0;
}

/* Whether both hold the same address of a family, or neither holds one. */
static bool same_ip4(const struct lease *a, const struct lease *b)
{
	return a->has_ip4 == b->has_ip4 && (!a->has_ip4 || a->ip4.s_addr == b->ip4.s_addr);
}

static bool same_ip6(const struct lease *a, const struct lease *b)
{
	return a->has_ip6 == b->has_ip6 && (!a->has_ip6 || !memcmp(&a->ip6, &b->ip6, 16));
}

int lease_replay_grant(struct lease_table *lt, const struct lease *src, uint32_t hash,
		       struct lease *prev)
{
	struct lease *l = lease_lookup(lt, src->pubkey, hash);
	struct wgd_ip ip;
	int ret = 0, taken;

	if (l) {
		*prev = *l;
	} else {
		l = lease_insert(lt, src->pubkey, hash);
		if (!l)
			return -ENOMEM;
		memset(prev, 0, sizeof(*prev));
	}
	if (prev->has_ip4 && !same_ip4(prev, src)) {
		wgd_ip_host4(&ip, &prev->ip4);
		poolset_put(lt->pools, &ip);
	}
	if (prev->has_ip6 && !same_ip6(prev, src)) {
		wgd_ip_host6(&ip, &prev->ip6);
		poolset_put(lt->pools, &ip);
	}
	if (src->has_ip4 && !same_ip4(prev, src)) {
		wgd_ip_host4(&ip, &src->ip4);
		taken = poolset_take(lt->pools, &ip);
		if (taken && taken != -ERANGE)
			ret = -EEXIST;
	}
	if (src->has_ip6 && !same_ip6(prev, src)) {
		wgd_ip_host6(&ip, &src->ip6);
		taken = poolset_take(lt->pools, &ip);
		if (taken && taken != -ERANGE)
			ret = -EEXIST;
	}
	lease_assign(lt, l, src);
	return ret;
}

int lease_set(struct lease_table *lt, const struct lease *src)
{
	uint32_t hash = key_hash(lt, src->pubkey);
	struct lease *l = lease_lookup(lt, src->pubkey, hash);

	if (!l) {
		l = lease_insert(lt, src->pubkey, hash);
		if (!l)
			return -ENOMEM;
	}
	lease_assign(lt, l, src);
	return 0;
}

void lease_forget(struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN])
{
	struct lease *l = lease_find(lt, pubkey);

	if (l)
		lease_remove(lt, l);
}

int lease_quarantine_addr(struct lease_table *lt, const struct wgd_ip *addr, uint64_t until)
{
	size_t lo = 0, hi = lt->n_quarantine;

	if (array_reserve(&lt->quarantine, &lt->cap_quarantine, lt->n_quarantine,
			  sizeof(*lt->quarantine), 16))
		return -ENOMEM;
	/* Almost always appended: quarantines share one length. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (lt->quarantine[mid].until <= until)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < lt->n_quarantine)
		memmove(&lt->quarantine[lo + 1], &lt->quarantine[lo],
			(lt->n_quarantine - lo) * sizeof(*lt->quarantine));
	lt->quarantine[lo].addr = *addr;
	lt->quarantine[lo].until = until;
	lt->n_quarantine++;
	return 0;
}

void lease_release_quarantine(struct lease_table *lt, struct lease *l, uint64_t until,
			      struct wgdev_change *change)
{
	change_init(change, l->pubkey);
	if (l->has_ip4)
		change_del(change, AF_INET, &l->ip4);
	if (l->has_ip6)
		change_del(change, AF_INET6, &l->ip6);
	for (size_t i = 0; i < change->n_del; i++) {
		/* Without room to remember it, the address goes back now. */
		if (lease_quarantine_addr(lt, &change->del[i], until))
			poolset_put(lt->pools, &change->del[i]);
	}
	lease_remove(lt, l);
}

size_t lease_quarantine_expire(struct lease_table *lt, uint64_t now)
{
	size_t n = 0;

	while (n < lt->n_quarantine && lt->quarantine[n].until <= now) {
		poolset_put(lt->pools, &lt->quarantine[n].addr);
		n++;
	}
	if (n) {
		memmove(lt->quarantine, lt->quarantine + n,
			(lt->n_quarantine - n) * sizeof(*lt->quarantine));
		lt->n_quarantine -= n;
	}
	return n;
}

uint64_t lease_quarantine_next(const struct lease_table *lt)
{
	return lt->n_quarantine ? lt->quarantine[0].until : UINT64_MAX;
}

size_t lease_quarantine_count(const struct lease_table *lt)
{
	return lt->n_quarantine;
}

const struct wgd_ip *lease_quarantine_get(const struct lease_table *lt, size_t i, uint64_t *until)
{
	if (i >= lt->n_quarantine)
		return NULL;
	*until = lt->quarantine[i].until;
	return &lt->quarantine[i].addr;
}
