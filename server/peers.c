// SPDX-License-Identifier: MIT

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "peers.h"

struct peer_slot {
	bool used;
	struct in6_addr ll;
	uint8_t pubkey[WG_KEY_LEN];
};

struct key_slot {
	bool used;
	uint8_t pubkey[WG_KEY_LEN];
};

struct peer_index {
	size_t n_ll, n_keys;
	size_t ll_mask, key_mask;
	struct peer_slot *ll;
	struct key_slot *keys;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

static size_t hash_bytes(const struct peer_index *pi, const void *p, size_t len)
{
	uint64_t h;

	crypto_shorthash((uint8_t *)&h, p, len, pi->hash_key);
	return (size_t)h;
}

static size_t table_size(size_t n)
{
	size_t size = 16;

	while (size < n * 2)
		size *= 2;
	return size;
}

static bool is_ll_host(const struct wgd_ip *ip)
{
	return ip->family == AF_INET6 && ip->cidr == 128 && wgd_ip_is_linklocal6(ip);
}

struct peer_index *peer_index_build(const struct wgdev *dev)
{
	struct peer_index *pi = calloc(1, sizeof(*pi));
	size_t n_ll = 0;

	if (!pi)
		return NULL;
	crypto_shorthash_keygen(pi->hash_key);
	for (size_t i = 0; i < dev->n_peers; i++)
		for (size_t j = 0; j < dev->peers[i].n_allowedips; j++)
			n_ll += is_ll_host(&dev->peers[i].allowedips[j]);

	size_t ll_size = table_size(n_ll), key_size = table_size(dev->n_peers);
	pi->ll = calloc(ll_size, sizeof(*pi->ll));
	pi->keys = calloc(key_size, sizeof(*pi->keys));
	if (!pi->ll || !pi->keys) {
		peer_index_free(pi);
		return NULL;
	}
	pi->ll_mask = ll_size - 1;
	pi->key_mask = key_size - 1;

	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *peer = &dev->peers[i];
		size_t k = hash_bytes(pi, peer->pubkey, WG_KEY_LEN) & pi->key_mask;

		while (pi->keys[k].used && memcmp(pi->keys[k].pubkey, peer->pubkey, WG_KEY_LEN))
			k = (k + 1) & pi->key_mask;
		if (!pi->keys[k].used) {
			pi->keys[k].used = true;
			memcpy(pi->keys[k].pubkey, peer->pubkey, WG_KEY_LEN);
			pi->n_keys++;
		}

		for (size_t j = 0; j < peer->n_allowedips; j++) {
			const struct wgd_ip *ip = &peer->allowedips[j];

			if (!is_ll_host(ip))
				continue;
			size_t s = hash_bytes(pi, &ip->ip6, sizeof(ip->ip6)) & pi->ll_mask;
			while (pi->ll[s].used && memcmp(&pi->ll[s].ll, &ip->ip6, sizeof(ip->ip6)))
				s = (s + 1) & pi->ll_mask;
			if (pi->ll[s].used)
				continue; /* WireGuard keeps allowed-IPs unique; be safe */
			pi->ll[s].used = true;
			pi->ll[s].ll = ip->ip6;
			memcpy(pi->ll[s].pubkey, peer->pubkey, WG_KEY_LEN);
			pi->n_ll++;
		}
	}
	return pi;
}

void peer_index_free(struct peer_index *pi)
{
	if (!pi)
		return;
	free(pi->ll);
	free(pi->keys);
	free(pi);
}

const uint8_t *peer_index_lookup(const struct peer_index *pi, const struct in6_addr *lladdr)
{
	size_t s = hash_bytes(pi, lladdr, sizeof(*lladdr)) & pi->ll_mask;

	while (pi->ll[s].used) {
		if (!memcmp(&pi->ll[s].ll, lladdr, sizeof(*lladdr)))
			return pi->ll[s].pubkey;
		s = (s + 1) & pi->ll_mask;
	}
	return NULL;
}

bool peer_index_has_key(const struct peer_index *pi, const uint8_t pubkey[WG_KEY_LEN])
{
	size_t k = hash_bytes(pi, pubkey, WG_KEY_LEN) & pi->key_mask;

	while (pi->keys[k].used) {
		if (!memcmp(pi->keys[k].pubkey, pubkey, WG_KEY_LEN))
			return true;
		k = (k + 1) & pi->key_mask;
	}
	return false;
}

size_t peer_index_count(const struct peer_index *pi)
{
	return pi->n_keys;
}
