// SPDX-License-Identifier: MIT

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../common/keyindex.h"
#include "peers.h"

#define NO_ENTRY UINT32_MAX

/*
 * Each peer's key is stored once, in device order; tables of 32-bit
 * positions find a peer by key and by link-local. At a million peers that
 * is about 60 bytes a peer, where slots holding keys and addresses
 * themselves took three times as much.
 */
struct peer_index {
	uint8_t (*keys)[WG_KEY_LEN];   /* by device position */
	struct key_index by_key;

	struct ll_entry {
		struct in6_addr ll;
		uint32_t peer;             /* device position */
	} *lls;
	size_t n_ll;

	uint32_t *ll_slots;            /* positions in lls */
	size_t ll_mask;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

static size_t hash_bytes(const struct peer_index *pi, const void *p, size_t len)
{
	uint64_t h;

	crypto_shorthash((uint8_t *)&h, p, len, pi->hash_key);
	return (size_t)h;
}

/* At most half full. */
static size_t table_size(size_t n)
{
	size_t size = 16;

	while (size < n * 2)
		size *= 2;
	return size;
}

static uint32_t *table_new(size_t size)
{
	uint32_t *t = malloc(size * sizeof(*t));

	if (t)
		memset(t, 0xff, size * sizeof(*t));
	return t;
}

static bool is_ll_host(const struct wgd_ip *ip)
{
	return ip->family == AF_INET6 && ip->cidr == 128 && wgd_ip_is_linklocal6(ip);
}

static size_t ll_slot(const struct peer_index *pi, const struct in6_addr *ll)
{
	size_t s = hash_bytes(pi, ll, sizeof(*ll)) & pi->ll_mask;

	while (pi->ll_slots[s] != NO_ENTRY && memcmp(&pi->lls[pi->ll_slots[s]].ll, ll, sizeof(*ll)))
		s = (s + 1) & pi->ll_mask;
	return s;
}

struct peer_index *peer_index_build(const struct wgdev *dev)
{
	struct peer_index *pi = calloc(1, sizeof(*pi));
	size_t n_ll = 0;

	if (!pi)
		return NULL;
	if (dev->n_peers >= NO_ENTRY)
		goto fail;
	crypto_shorthash_keygen(pi->hash_key);
	for (size_t i = 0; i < dev->n_peers; i++)
		for (size_t j = 0; j < dev->peers[i].n_allowedips; j++)
			n_ll += is_ll_host(&dev->peers[i].allowedips[j]);
	if (n_ll >= NO_ENTRY)
		goto fail;

	pi->ll_mask = table_size(n_ll) - 1;
	pi->keys = malloc((dev->n_peers + 1) * WG_KEY_LEN);
	pi->lls = malloc((n_ll + 1) * sizeof(*pi->lls));
	pi->ll_slots = table_new(pi->ll_mask + 1);
	if (!pi->keys || !pi->lls || !pi->ll_slots)
		goto fail;
	for (size_t i = 0; i < dev->n_peers; i++)
		memcpy(pi->keys[i], dev->peers[i].pubkey, WG_KEY_LEN);
	if (key_index_build(&pi->by_key, (const uint8_t (*)[WG_KEY_LEN])pi->keys, dev->n_peers))
		goto fail;

	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *peer = &dev->peers[i];

		for (size_t j = 0; j < peer->n_allowedips; j++) {
			const struct wgd_ip *ip = &peer->allowedips[j];
			size_t s;

			if (!is_ll_host(ip))
				continue;
			s = ll_slot(pi, &ip->ip6);
			if (pi->ll_slots[s] != NO_ENTRY)
				continue; /* WireGuard keeps allowed-IPs unique; be safe */
			pi->lls[pi->n_ll] = (struct ll_entry){ .ll = ip->ip6, .peer = (uint32_t)i };
			pi->ll_slots[s] = (uint32_t)pi->n_ll++;
		}
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
	free(pi->ll_slots);
	free(pi);
}

const uint8_t *peer_index_lookup(const struct peer_index *pi, const struct in6_addr *lladdr)
{
	size_t s = ll_slot(pi, lladdr);

	return pi->ll_slots[s] == NO_ENTRY ? NULL : pi->keys[pi->lls[pi->ll_slots[s]].peer];
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
