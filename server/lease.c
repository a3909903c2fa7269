// SPDX-License-Identifier: MIT

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "../common/array.h"
#include "lease.h"

#define SLOT_EMPTY UINT32_MAX
#define NO_FREE UINT32_MAX

struct lease_table {
	struct poolset *pools;

	struct lease *leases;      /* slab; unused entries chain through heap_pos */
	uint32_t n_slab, cap_slab;
	uint32_t free_head;
	size_t count;

	uint32_t *slots;           /* open addressing: lease index or SLOT_EMPTY */
	uint32_t n_slots;          /* power of two, kept at most half full */
	uint8_t hash_key[crypto_shorthash_KEYBYTES];

	uint32_t *heap;            /* lease indices, earliest expiry first */

	/* Quarantined addresses, sorted by the end of their quarantine. */
	struct quarantine {
		struct wgd_ip addr;
		uint64_t until;
	} *quarantine;
	size_t n_quarantine, cap_quarantine;

};

static uint32_t key_hash(const struct lease_table *lt, const uint8_t *pubkey)
{
	uint64_t h;

	crypto_shorthash((uint8_t *)&h, pubkey, WG_KEY_LEN, lt->hash_key);
	return (uint32_t)h;
}

struct lease_table *lease_table_new(struct poolset *pools)
{
	struct lease_table *lt = calloc(1, sizeof(*lt));

	if (!lt)
		return NULL;
	lt->pools = pools;
	lt->free_head = NO_FREE;
	lt->n_slots = 64;
	lt->slots = malloc(lt->n_slots * sizeof(*lt->slots));
	if (!lt->slots) {
		free(lt);
		return NULL;
	}
	memset(lt->slots, 0xff, lt->n_slots * sizeof(*lt->slots));
	crypto_shorthash_keygen(lt->hash_key);
	return lt;
}

void lease_table_free(struct lease_table *lt)
{
	if (!lt)
		return;
	free(lt->leases);
	free(lt->slots);
	free(lt->heap);
	free(lt->quarantine);
	free(lt);
}

size_t lease_count(const struct lease_table *lt)
{
	return lt->count;
}

static uint32_t slot_of(const struct lease_table *lt, const uint8_t *pubkey)
{
	uint32_t mask = lt->n_slots - 1, i = key_hash(lt, pubkey) & mask;

	while (lt->slots[i] != SLOT_EMPTY &&
	       memcmp(lt->leases[lt->slots[i]].pubkey, pubkey, WG_KEY_LEN))
		i = (i + 1) & mask;
	return i;
}

struct lease *lease_find(const struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN])
{
	uint32_t i = slot_of(lt, pubkey);

	return lt->slots[i] == SLOT_EMPTY ? NULL : &lt->leases[lt->slots[i]];
}

static int slots_grow(struct lease_table *lt)
{
	uint32_t *old = lt->slots, n_old = lt->n_slots;

	lt->slots = malloc((size_t)n_old * 2 * sizeof(*lt->slots));
	if (!lt->slots) {
		lt->slots = old;
		return -ENOMEM;
	}
	lt->n_slots = n_old * 2;
	memset(lt->slots, 0xff, lt->n_slots * sizeof(*lt->slots));
	for (uint32_t i = 0; i < n_old; i++)
		if (old[i] != SLOT_EMPTY)
			lt->slots[slot_of(lt, lt->leases[old[i]].pubkey)] = old[i];
	free(old);
	return 0;
}

/* Backward-shift deletion keeps linear probing free of tombstones. */
static void slots_delete(struct lease_table *lt, uint32_t i)
{
	uint32_t mask = lt->n_slots - 1, j = i;

	for (;;) {
		j = (j + 1) & mask;
		if (lt->slots[j] == SLOT_EMPTY)
			break;
		uint32_t home = key_hash(lt, lt->leases[lt->slots[j]].pubkey) & mask;
		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			lt->slots[i] = lt->slots[j];
			i = j;
		}
	}
	lt->slots[i] = SLOT_EMPTY;
}

static bool heap_less(const struct lease_table *lt, uint32_t a, uint32_t b)
{
	return lt->leases[lt->heap[a]].expires < lt->leases[lt->heap[b]].expires;
}

static void heap_swap(struct lease_table *lt, uint32_t a, uint32_t b)
{
	uint32_t t = lt->heap[a];

	lt->heap[a] = lt->heap[b];
	lt->heap[b] = t;
	lt->leases[lt->heap[a]].heap_pos = a;
	lt->leases[lt->heap[b]].heap_pos = b;
}

static void heap_fix(struct lease_table *lt, uint32_t pos)
{
	uint32_t n = (uint32_t)lt->count;

	while (pos > 0 && heap_less(lt, pos, (pos - 1) / 2)) {
		heap_swap(lt, pos, (pos - 1) / 2);
		pos = (pos - 1) / 2;
	}
	for (;;) {
		uint32_t l = 2 * pos + 1, r = l + 1, m = pos;

		if (l < n && heap_less(lt, l, m))
			m = l;
		if (r < n && heap_less(lt, r, m))
			m = r;
		if (m == pos)
			break;
		heap_swap(lt, pos, m);
		pos = m;
	}
}

struct lease *lease_first_expiry(const struct lease_table *lt)
{
	return lt->count ? &lt->leases[lt->heap[0]] : NULL;
}

void lease_foreach(const struct lease_table *lt,
		   void (*cb)(const struct lease *l, void *ctx), void *ctx)
{
	for (size_t i = 0; i < lt->count; i++)
		cb(&lt->leases[lt->heap[i]], ctx);
}

static int slab_reserve(struct lease_table *lt)
{
	if (lt->free_head != NO_FREE || lt->n_slab < lt->cap_slab)
		return 0;

	uint32_t cap = lt->cap_slab ? lt->cap_slab * 2 : 64;
	struct lease *leases = realloc(lt->leases, (size_t)cap * sizeof(*leases));
	if (!leases)
		return -ENOMEM;
	lt->leases = leases;
	uint32_t *heap = realloc(lt->heap, (size_t)cap * sizeof(*heap));
	if (!heap)
		return -ENOMEM;
	lt->heap = heap;
	lt->cap_slab = cap;
	return 0;
}

/* Inserts a lease for pubkey with no addresses; the caller fills it in and
 * then calls heap_fix(). */
static struct lease *lease_insert(struct lease_table *lt, const uint8_t *pubkey)
{
	uint32_t idx;

	if ((lt->count + 1) * 2 > lt->n_slots && slots_grow(lt))
		return NULL;
	if (slab_reserve(lt))
		return NULL;
	if (lt->free_head != NO_FREE) {
		idx = lt->free_head;
		lt->free_head = lt->leases[idx].heap_pos;
	} else {
		idx = lt->n_slab++;
	}

	struct lease *l = &lt->leases[idx];
	memset(l, 0, sizeof(*l));
	memcpy(l->pubkey, pubkey, WG_KEY_LEN);
	l->in_use = true;
	lt->slots[slot_of(lt, pubkey)] = idx;
	l->heap_pos = (uint32_t)lt->count;
	lt->heap[lt->count++] = idx;
	return l;
}

static void lease_remove(struct lease_table *lt, struct lease *l)
{
	uint32_t idx = (uint32_t)(l - lt->leases), pos = l->heap_pos;

	slots_delete(lt, slot_of(lt, l->pubkey));
	lt->count--;
	if (pos != lt->count) {
		heap_swap(lt, pos, (uint32_t)lt->count);
		heap_fix(lt, pos);
	}
	sodium_memzero(l, sizeof(*l));
	l->heap_pos = lt->free_head;
	lt->free_head = idx;
}

static void change_del(struct lease_change *c, int family, const void *addr)
{
	struct wgd_ip *ip = &c->del[c->n_del++];

	if (family == AF_INET)
		wgd_ip_host4(ip, addr);
	else
		wgd_ip_host6(ip, addr);
}

static void change_add(struct lease_change *c, const struct wgd_ip *ip)
{
	c->add[c->n_add++] = *ip;
}

void lease_release(struct lease_table *lt, struct lease *l, struct lease_change *change)
{
	struct wgd_ip ip;

	memset(change, 0, sizeof(*change));
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

int lease_request(struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN],
		  const struct in6_addr *lladdr, const struct wgd_msg *req,
		  uint32_t leasetime, const struct lease_clock *now,
		  struct wgd_msg *resp, struct lease_change *change)
{
	struct lease *l = lease_find(lt, pubkey);
	struct wgd_ip held4, held6, got4, got6;
	bool unavailable = false;
	int r4, r6;

	memset(change, 0, sizeof(*change));
	if (!l && (req->has_ip4 || req->has_ip6)) {
		l = lease_insert(lt, pubkey);
		if (!l)
			return -ENOMEM;
	}

	resp->cmd = WGD_CMD_NONE;
	resp->has_errno = true;
	resp->err = WGD_E_OK;
	if (!l)
		return 0; /* a release with nothing to release */

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
	l->expires = now->boot + leasetime;
	heap_fix(lt, l->heap_pos);

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
	struct wgd_ip ip4, ip6;
	struct lease *l;

	if (lease_find(lt, src->pubkey))
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
	l = lease_insert(lt, src->pubkey);
	if (!l) {
		if (src->has_ip4)
			poolset_put(lt->pools, &ip4);
		if (src->has_ip6)
			poolset_put(lt->pools, &ip6);
		return -ENOMEM;
	}
	uint32_t pos = l->heap_pos;
	*l = *src;
	l->in_use = true;
	l->heap_pos = pos;
	heap_fix(lt, pos);
	return 0;
}

int lease_set(struct lease_table *lt, const struct lease *src)
{
	struct lease *l = lease_find(lt, src->pubkey);
	uint32_t pos;

	if (!l) {
		l = lease_insert(lt, src->pubkey);
		if (!l)
			return -ENOMEM;
	}
	pos = l->heap_pos;
	*l = *src;
	l->in_use = true;
	l->heap_pos = pos;
	heap_fix(lt, pos);
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
			      struct lease_change *change)
{
	memset(change, 0, sizeof(*change));
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
