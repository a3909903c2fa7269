// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <stdlib.h>
#include <string.h>

#include "../common/array.h"
#include "../common/hashtab.h"
#include "../common/keyindex.h"
#include "peers.h"

#define NO_ENTRY UINT32_MAX
#define BUILD_AHEAD 8

/*
 * Each peer's key is stored once, in device order; hash tables of 32-bit
 * positions (common/hashtab.h) find a peer by key and by link-local. At a
 * million peers that is about 60 bytes a peer, where slots holding keys
 * and addresses themselves took three times as much.
 */
struct peer_index {
	uint8_t (*keys)[WG_KEY_LEN];   /* by device position */
	struct key_index by_key;

	struct ll_entry {
		struct in6_addr ll;
		uint32_t peer;             /* device position */
	} *lls;
	size_t n_ll;

	struct hashtab by_ll;          /* positions in lls */
};

static bool is_ll_host(const struct wgd_ip *ip)
{
	return ip->family == AF_INET6 && ip->cidr == 128 && wgd_ip_is_linklocal6(ip);
}

struct ll_query {
	const struct peer_index *pi;
	const struct in6_addr *ll;
};

static bool ll_match(uint32_t pos, const void *ctx)
{
	const struct ll_query *q = ctx;

	return !memcmp(&q->pi->lls[pos].ll, q->ll, sizeof(*q->ll));
}

/* The position in lls of ll, whose hash is given, or NO_ENTRY. */
static uint32_t ll_find(const struct peer_index *pi, const struct in6_addr *ll, uint32_t hash)
{
	const struct ll_query q = { pi, ll };

	return hashtab_find(&pi->by_ll, hash, ll_match, &q);
}

/* Starts loading the buckets of ll, and returns its hash. */
static uint32_t ll_prefetch(const struct peer_index *pi, const struct in6_addr *ll)
{
	uint32_t hash = hashtab_hash(&pi->by_ll, ll, sizeof(*ll));

	hashtab_prefetch(&pi->by_ll, hash);
	return hash;
}

struct peer_index *peer_index_build(const struct wgdev *dev)
{
	struct peer_index *pi = calloc(1, sizeof(*pi));
	uint32_t ahead[BUILD_AHEAD];
	size_t cap_ll, n = 0;

	if (!pi)
		return NULL;
	if (dev->n_peers >= NO_ENTRY || hashtab_init(&pi->by_ll))
		goto fail;
	pi->keys = malloc((dev->n_peers + 1) * WG_KEY_LEN);
	/* A peer has one link-local as a rule: room for as many at once. */
	cap_ll = dev->n_peers + 1;
	pi->lls = malloc(cap_ll * sizeof(*pi->lls));
	if (!pi->keys || !pi->lls)
		goto fail;
	for (size_t i = 0; i < dev->n_peers; i++)
		memcpy(pi->keys[i], dev->peers[i].pubkey, WG_KEY_LEN);
	if (key_index_build(&pi->by_key, (const uint8_t (*)[WG_KEY_LEN])pi->keys, dev->n_peers))
		goto fail;

	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *peer = &dev->peers[i];

		for (size_t j = 0; j < peer->n_allowedips; j++) {
			const struct wgd_ip *ip = &peer->allowedips[j];

			if (!is_ll_host(ip))
				continue;
			if (n >= NO_ENTRY - 1 ||
			    array_reserve(&pi->lls, &cap_ll, n, sizeof(*pi->lls), 16))
				goto fail;
			pi->lls[n++] = (struct ll_entry){ .ll = ip->ip6, .peer = (uint32_t)i };
		}
	}
	if (hashtab_reserve(&pi->by_ll, n))
		goto fail;
	/* Then indexed, with the buckets of the next ones loading meanwhile,
	 * as key_index_build() does. */
	for (size_t k = 0; k < n && k < BUILD_AHEAD; k++)
		ahead[k] = ll_prefetch(pi, &pi->lls[k].ll);
	for (size_t k = 0; k < n; k++) {
		uint32_t hash = ahead[k % BUILD_AHEAD];
		struct ll_entry e = pi->lls[k];

		if (k + BUILD_AHEAD < n)
			ahead[k % BUILD_AHEAD] = ll_prefetch(pi, &pi->lls[k + BUILD_AHEAD].ll);
		if (ll_find(pi, &e.ll, hash) != NO_ENTRY)
			continue; /* WireGuard keeps allowed-IPs unique; be safe */
		if (hashtab_insert(&pi->by_ll, hash, (uint32_t)pi->n_ll))
			goto fail;
		pi->lls[pi->n_ll++] = e;
	}
	return pi;
fail:
	peer_index_free(pi);
	return NULL;
}

void peer_index_free(struct peer_index *pi)
{
	if (!pi)
		return;
	free(pi->keys);
	free(pi->lls);
	key_index_free(&pi->by_key);
	hashtab_free(&pi->by_ll);
	free(pi);
}

const uint8_t *peer_index_lookup(const struct peer_index *pi, const struct in6_addr *lladdr)
{
	uint32_t pos = ll_find(pi, lladdr, hashtab_hash(&pi->by_ll, lladdr, sizeof(*lladdr)));

	return pos == NO_ENTRY ? NULL : pi->keys[pi->lls[pos].peer];
}

size_t peer_index_find_key(const struct peer_index *pi, const uint8_t pubkey[WG_KEY_LEN])
{
	return key_index_find(&pi->by_key, pubkey);
}

bool peer_index_has_key(const struct peer_index *pi, const uint8_t pubkey[WG_KEY_LEN])
{
	return peer_index_find_key(pi, pubkey) != SIZE_MAX;
}

size_t peer_index_count(const struct peer_index *pi)
{
	return pi->by_key.n_unique;
}
