// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "hashtab.h"
#include "keyindex.h"
#include "wgview.h"

#define NO_PEER UINT32_MAX
/* Hashes of entries a rebuild computes ahead, so that their buckets are
 * on the way from memory by the time each is placed. */
#define REBUILD_AHEAD 8

struct ip_entry {
	struct wgd_ip ip;           /* canonical */
	uint32_t peer;              /* index in keys */
};

struct wgview {
	bool valid;
	uint64_t read_ms;

	/*
	 * In device order as read; a peer added since goes at the end, and a
	 * peer removed leaves its place to the last one.
	 */
	uint8_t (*keys)[WG_KEY_LEN];
	size_t n_keys, cap_keys;
	struct key_index peers;     /* a peer's id is its position in keys */

	/*
	 * The allowed-IPs, packed, and a table of their positions
	 * (common/hashtab.h). A removal moves the last entry into its place.
	 */
	struct ip_entry *ips;
	size_t n_ips, cap_ips;
	struct hashtab table;
	/*
	 * Entries of each family (IPv4, IPv6) and prefix length: a search
	 * for the prefixes containing an address looks up only the lengths
	 * some entry has, in practice two or three.
	 */
	size_t n_len[2][129];
};

static size_t *len_count(struct wgview *v, const struct wgd_ip *ip)
{
	return &v->n_len[ip->family == AF_INET6][ip->cidr];
}

struct wgview *wgview_new(void)
{
	return calloc(1, sizeof(struct wgview));
}

void wgview_invalidate(struct wgview *v)
{
	free(v->keys);
	key_index_free(&v->peers);
	free(v->ips);
	/* Leaves the table zeroed: empty, and never searched while it is. */
	hashtab_free(&v->table);
	v->keys = NULL;
	v->ips = NULL;
	v->n_keys = v->cap_keys = v->n_ips = v->cap_ips = 0;
	memset(v->n_len, 0, sizeof(v->n_len));
	v->valid = false;
}

void wgview_free(struct wgview *v)
{
	if (!v)
		return;
	wgview_invalidate(v);
	free(v);
}

bool wgview_valid(const struct wgview *v)
{
	return v->valid;
}

uint64_t wgview_age_ms(const struct wgview *v, uint64_t now_ms)
{
	return now_ms > v->read_ms ? now_ms - v->read_ms : 0;
}

size_t wgview_peer_count(const struct wgview *v)
{
	return v->n_keys;
}

static uint32_t peer_of(const struct wgview *v, const uint8_t pubkey[WG_KEY_LEN])
{
	size_t pos = key_index_find(&v->peers, pubkey);

	return pos == SIZE_MAX ? NO_PEER : (uint32_t)pos;
}

bool wgview_has_peer(const struct wgview *v, const uint8_t pubkey[WG_KEY_LEN])
{
	return peer_of(v, pubkey) != NO_PEER;
}

static uint32_t ip_hash(const struct wgview *v, const struct wgd_ip *ip)
{
	return hashtab_hash(&v->table, ip, sizeof(*ip));
}

struct ip_query {
	const struct ip_entry *ips;
	const struct wgd_ip *ip;
};

static bool ip_match(uint32_t idx, const void *ctx)
{
	const struct ip_query *q = ctx;

	return !memcmp(&q->ips[idx].ip, q->ip, sizeof(*q->ip));
}

/* The position of the canonical prefix ip, or HASHTAB_NONE. */
static uint32_t ip_find(const struct wgview *v, const struct wgd_ip *ip, uint32_t hash)
{
	struct ip_query q = { .ips = v->ips, .ip = ip };

	if (!hashtab_count(&v->table))
		return HASHTAB_NONE;
	return hashtab_find(&v->table, hash, ip_match, &q);
}

static int ip_set(struct wgview *v, const struct wgd_ip *ip, uint32_t peer)
{
	uint32_t hash = ip_hash(v, ip), idx = ip_find(v, ip, hash);

	if (idx != HASHTAB_NONE) {
		v->ips[idx].peer = peer;
		return 0;
	}
	if (v->n_ips >= HASHTAB_NONE ||
	    array_reserve(&v->ips, &v->cap_ips, v->n_ips, sizeof(*v->ips), 64) ||
	    hashtab_insert(&v->table, hash, (uint32_t)v->n_ips))
		return -ENOMEM;
	v->ips[v->n_ips++] = (struct ip_entry){ .ip = *ip, .peer = peer };
	(*len_count(v, ip))++;
	return 0;
}

/*
 * Removes the entry at idx, under hash, and moves the last entry into its
 * place. 0 or -ENOMEM, when the table had no room to take the moved entry
 * back (it just lost two).
 */
static int ip_delete(struct wgview *v, uint32_t idx, uint32_t hash)
{
	uint32_t last = (uint32_t)v->n_ips - 1, last_hash;

	(*len_count(v, &v->ips[idx].ip))--;
	hashtab_remove(&v->table, hash, idx);
	v->n_ips--;
	if (idx == last)
		return 0;
	last_hash = ip_hash(v, &v->ips[last].ip);
	hashtab_remove(&v->table, last_hash, last);
	v->ips[idx] = v->ips[last];
	return hashtab_insert(&v->table, last_hash, idx);
}

/*
 * Indexes the n entries of v->ips, in order. A prefix that repeats is kept
 * at its first place and goes to its last peer, as the device's own table
 * would have it; the entries close up behind it.
 */
static int ips_index(struct wgview *v, size_t n)
{
	uint32_t ahead[REBUILD_AHEAD], hash, idx;
	struct ip_query q = { .ips = v->ips };
	size_t kept = 0;

	if (hashtab_init(&v->table) || hashtab_reserve(&v->table, n))
		return -ENOMEM;
	for (size_t k = 0; k < n && k < REBUILD_AHEAD; k++) {
		ahead[k] = ip_hash(v, &v->ips[k].ip);
		hashtab_prefetch(&v->table, ahead[k]);
	}
	for (size_t k = 0; k < n; k++) {
		hash = ahead[k % REBUILD_AHEAD];
		if (k + REBUILD_AHEAD < n) {
			ahead[k % REBUILD_AHEAD] = ip_hash(v, &v->ips[k + REBUILD_AHEAD].ip);
			hashtab_prefetch(&v->table, ahead[k % REBUILD_AHEAD]);
		}
		q.ip = &v->ips[k].ip;
		idx = hashtab_find(&v->table, hash, ip_match, &q);
		if (idx != HASHTAB_NONE) {
			v->ips[idx].peer = v->ips[k].peer;
			continue;
		}
		if (hashtab_insert(&v->table, hash, (uint32_t)kept))
			return -ENOMEM;
		v->ips[kept] = v->ips[k];
		(*len_count(v, &v->ips[kept].ip))++;
		kept++;
	}
	v->n_ips = kept;
	return 0;
}

int wgview_rebuild(struct wgview *v, const struct wgdev *dev, uint64_t now_ms)
{
	size_t total = 0, n = 0;

	wgview_invalidate(v);
	if (dev->n_peers >= NO_PEER)
		return -ENOMEM;
	v->keys = malloc((dev->n_peers + 1) * WG_KEY_LEN);
	if (!v->keys)
		return -ENOMEM;
	v->cap_keys = dev->n_peers + 1;
	for (size_t i = 0; i < dev->n_peers; i++)
		memcpy(v->keys[i], dev->peers[i].pubkey, WG_KEY_LEN);
	v->n_keys = dev->n_peers;
	if (key_index_build(&v->peers, (const uint8_t (*)[WG_KEY_LEN])v->keys, v->n_keys))
		goto fail;
	/* Sized once for all, rather than grown step by step. */
	for (size_t i = 0; i < dev->n_peers; i++)
		total += dev->peers[i].n_allowedips;
	if (total >= HASHTAB_NONE)
		goto fail;
	v->ips = malloc((total ? total : 1) * sizeof(*v->ips));
	if (!v->ips)
		goto fail;
	v->cap_ips = total;
	for (size_t i = 0; i < dev->n_peers; i++) {
		for (size_t j = 0; j < dev->peers[i].n_allowedips; j++) {
			if (wgdev_allowedip_canon(&v->ips[n].ip, &dev->peers[i].allowedips[j]))
				continue;
			/* A peer's id is its position: WireGuard keeps keys unique. */
			v->ips[n++].peer = (uint32_t)i;
		}
	}
	if (ips_index(v, n))
		goto fail;
	v->read_ms = now_ms;
	v->valid = true;
	return 0;
fail:
	wgview_invalidate(v);
	return -ENOMEM;
}

int wgview_check(const struct wgview *v, const uint8_t pubkey[WG_KEY_LEN],
		 const struct wgd_ip *add, size_t n_add)
{
	uint32_t peer = peer_of(v, pubkey), idx;
	struct wgd_ip ip;

	if (peer == NO_PEER)
		return -ENOENT;
	for (size_t i = 0; i < n_add && v->n_ips; i++) {
		if (wgdev_allowedip_canon(&ip, &add[i]))
			return -EINVAL;
		idx = ip_find(v, &ip, ip_hash(v, &ip));
		if (idx != HASHTAB_NONE && v->ips[idx].peer != peer)
			return -EEXIST;
	}
	return 0;
}

/* The peer holding exactly the canonical prefix ip, or NO_PEER. */
static uint32_t holder(const struct wgview *v, const struct wgd_ip *ip)
{
	uint32_t idx = ip_find(v, ip, ip_hash(v, ip));

	return idx == HASHTAB_NONE ? NO_PEER : v->ips[idx].peer;
}

bool wgview_holds(const struct wgview *v, const uint8_t pubkey[WG_KEY_LEN],
		  const struct wgd_ip *ip)
{
	uint32_t peer = peer_of(v, pubkey);
	struct wgd_ip c;

	if (peer == NO_PEER || wgdev_allowedip_canon(&c, ip))
		return false;
	return holder(v, &c) == peer;
}

bool wgview_covered(const struct wgview *v, const uint8_t pubkey[WG_KEY_LEN],
		    const struct wgd_ip *ip, unsigned min_cidr)
{
	uint32_t peer = peer_of(v, pubkey), h;
	const size_t *n_len;
	struct wgd_ip p, c;
	int len;

	if (ip->family != AF_INET && ip->family != AF_INET6)
		return false;
	n_len = v->n_len[ip->family == AF_INET6];
	p = *ip;
	len = ip->cidr < wgd_ip_bits(ip->family) ? ip->cidr : (int)wgd_ip_bits(ip->family);
	for (; len >= (int)min_cidr; len--) {
		if (!n_len[len])
			continue;
		p.cidr = (uint8_t)len;
		if (wgdev_allowedip_canon(&c, &p))
			return false;
		h = holder(v, &c);
		if (h != NO_PEER && h != peer)
			return true;
	}
	return false;
}

int wgview_apply(struct wgview *v, const uint8_t pubkey[WG_KEY_LEN],
		 const struct wgd_ip *add, size_t n_add,
		 const struct wgd_ip *del, size_t n_del)
{
	uint32_t peer = peer_of(v, pubkey);
	struct wgd_ip ip;

	if (peer == NO_PEER)
		return 0;
	/* Removals first, as the backends send them: an addition wins. */
	for (size_t i = 0; i < n_del; i++) {
		uint32_t hash, idx;

		if (wgdev_allowedip_canon(&ip, &del[i]))
			continue;
		hash = ip_hash(v, &ip);
		idx = ip_find(v, &ip, hash);
		if (idx != HASHTAB_NONE && v->ips[idx].peer == peer && ip_delete(v, idx, hash))
			goto fail;
	}
	for (size_t i = 0; i < n_add; i++) {
		if (wgdev_allowedip_canon(&ip, &add[i]))
			continue;
		if (ip_set(v, &ip, peer))
			goto fail;
	}
	return 0;
fail:
	wgview_invalidate(v);
	return -ENOMEM;
}

/* Forgets every allowed-IP of peer: a pass over them all. 0 or -ENOMEM. */
static int ips_drop_peer(struct wgview *v, uint32_t peer)
{
	size_t i = 0;

	/* A deletion moves the last entry into place i, to be looked at next. */
	while (i < v->n_ips) {
		if (v->ips[i].peer != peer)
			i++;
		else if (ip_delete(v, (uint32_t)i, ip_hash(v, &v->ips[i].ip)))
			return -ENOMEM;
	}
	return 0;
}

int wgview_add_peer(struct wgview *v, const uint8_t pubkey[WG_KEY_LEN])
{
	uint32_t peer;

	if (!v->valid)
		return 0;
	peer = peer_of(v, pubkey);
	/* Present: the device made it afresh, with no allowed-IPs. */
	if (peer != NO_PEER) {
		if (ips_drop_peer(v, peer))
			goto fail;
		return 0;
	}
	if (v->n_keys + 1 >= NO_PEER ||
	    array_reserve(&v->keys, &v->cap_keys, v->n_keys, WG_KEY_LEN, 8))
		goto fail;
	memcpy(v->keys[v->n_keys], pubkey, WG_KEY_LEN);
	if (key_index_add(&v->peers, (const uint8_t (*)[WG_KEY_LEN])v->keys, v->n_keys))
		goto fail;
	v->n_keys++;
	return 0;
fail:
	wgview_invalidate(v);
	return -ENOMEM;
}

int wgview_remove_peer(struct wgview *v, const uint8_t pubkey[WG_KEY_LEN])
{
	uint32_t peer, last;

	if (!v->valid)
		return 0;
	peer = peer_of(v, pubkey);
	if (peer == NO_PEER)
		return 0;
	if (ips_drop_peer(v, peer))
		goto fail;
	/* The last peer moves into the place, its allowed-IPs with it. */
	last = (uint32_t)v->n_keys - 1;
	key_index_remove(&v->peers, peer);
	if (peer != last) {
		key_index_remove(&v->peers, last);
		memcpy(v->keys[peer], v->keys[last], WG_KEY_LEN);
		for (size_t i = 0; i < v->n_ips; i++) {
			if (v->ips[i].peer == last)
				v->ips[i].peer = peer;
		}
		if (key_index_add(&v->peers, (const uint8_t (*)[WG_KEY_LEN])v->keys, peer))
			goto fail;
	}
	v->n_keys--;
	return 0;
fail:
	wgview_invalidate(v);
	return -ENOMEM;
}
