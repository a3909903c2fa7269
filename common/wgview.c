// SPDX-License-Identifier: MIT

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keyindex.h"
#include "wgview.h"

#define NO_PEER UINT32_MAX

struct ip_slot {
	struct wgd_ip ip;           /* canonical */
	uint32_t peer;              /* index in keys, or NO_PEER when empty */
};

struct wgview {
	bool valid;
	uint64_t read_ms;

	uint8_t (*keys)[WG_KEY_LEN]; /* in device order: peers do not come and go here */
	size_t n_keys;
	struct key_index peers;     /* a peer's id is its position in keys */

	struct ip_slot *slots;      /* open addressing, at most three quarters full */
	size_t n_slots, n_ips;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
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
	struct wgview *v = calloc(1, sizeof(*v));

	if (v)
		crypto_shorthash_keygen(v->hash_key);
	return v;
}

void wgview_invalidate(struct wgview *v)
{
	free(v->keys);
	key_index_free(&v->peers);
	free(v->slots);
	v->keys = NULL;
	v->slots = NULL;
	v->n_keys = v->n_slots = v->n_ips = 0;
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

static size_t ip_home(const struct wgview *v, const struct wgd_ip *ip)
{
	uint64_t h;

	crypto_shorthash((uint8_t *)&h, (const uint8_t *)ip, sizeof(*ip), v->hash_key);
	return (size_t)h & (v->n_slots - 1);
}

/* The slot holding ip, or the empty slot where it would go. */
static size_t ip_slot(const struct wgview *v, const struct wgd_ip *ip)
{
	size_t mask = v->n_slots - 1, i = ip_home(v, ip);

	while (v->slots[i].peer != NO_PEER && memcmp(&v->slots[i].ip, ip, sizeof(*ip)))
		i = (i + 1) & mask;
	return i;
}

static int slots_resize(struct wgview *v, size_t n_slots)
{
	struct ip_slot *old = v->slots;
	size_t n_old = v->n_slots;

	v->slots = malloc(n_slots * sizeof(*v->slots));
	if (!v->slots) {
		v->slots = old;
		return -ENOMEM;
	}
	v->n_slots = n_slots;
	for (size_t i = 0; i < n_slots; i++)
		v->slots[i].peer = NO_PEER;
	for (size_t i = 0; i < n_old; i++)
		if (old[i].peer != NO_PEER)
			v->slots[ip_slot(v, &old[i].ip)] = old[i];
	free(old);
	return 0;
}

static int ip_set(struct wgview *v, const struct wgd_ip *ip, uint32_t peer)
{
	size_t i;

	if ((v->n_ips + 1) * 4 > v->n_slots * 3) {
		if (v->n_slots > SIZE_MAX / 2 / sizeof(*v->slots) ||
		    slots_resize(v, v->n_slots ? v->n_slots * 2 : 64))
			return -ENOMEM;
	}
	i = ip_slot(v, ip);
	if (v->slots[i].peer == NO_PEER) {
		v->slots[i].ip = *ip;
		v->n_ips++;
		(*len_count(v, ip))++;
	}
	v->slots[i].peer = peer;
	return 0;
}

/* Backward-shift deletion keeps linear probing free of tombstones. */
static void ip_delete(struct wgview *v, size_t i)
{
	size_t mask = v->n_slots - 1, j = i;

	(*len_count(v, &v->slots[i].ip))--;
	for (;;) {
		j = (j + 1) & mask;
		if (v->slots[j].peer == NO_PEER)
			break;
		size_t home = ip_home(v, &v->slots[j].ip);
		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			v->slots[i] = v->slots[j];
			i = j;
		}
	}
	v->slots[i].peer = NO_PEER;
	v->n_ips--;
}

int wgview_rebuild(struct wgview *v, const struct wgdev *dev, uint64_t now_ms)
{
	size_t total = 0, n_slots = 64;
	struct wgd_ip ip;

	wgview_invalidate(v);
	if (dev->n_peers >= NO_PEER)
		return -ENOMEM;
	v->keys = malloc((dev->n_peers + 1) * WG_KEY_LEN);
	if (!v->keys)
		return -ENOMEM;
	for (size_t i = 0; i < dev->n_peers; i++)
		memcpy(v->keys[i], dev->peers[i].pubkey, WG_KEY_LEN);
	v->n_keys = dev->n_peers;
	if (key_index_build(&v->peers, (const uint8_t (*)[WG_KEY_LEN])v->keys, v->n_keys)) {
		wgview_invalidate(v);
		return -ENOMEM;
	}
	/* Sized once for all, rather than grown step by step. */
	for (size_t i = 0; i < dev->n_peers; i++)
		total += dev->peers[i].n_allowedips;
	/*
	 * Three quarters full at most: at a million peers the table is a
	 * hundred megabytes, and every page of it costs a fault to fill.
	 */
	while (n_slots * 3 < total * 4 && n_slots <= SIZE_MAX / 4 / sizeof(*v->slots))
		n_slots *= 2;
	if (total && slots_resize(v, n_slots)) {
		wgview_invalidate(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < dev->n_peers; i++) {
		/* A peer's id is its position: WireGuard keeps keys unique. */
		uint32_t peer = (uint32_t)i;

		for (size_t j = 0; j < dev->peers[i].n_allowedips; j++) {
			if (wgdev_allowedip_canon(&ip, &dev->peers[i].allowedips[j]))
				continue;
			if (ip_set(v, &ip, peer)) {
				wgview_invalidate(v);
				return -ENOMEM;
			}
		}
	}
	v->read_ms = now_ms;
	v->valid = true;
	return 0;
}

int wgview_check(const struct wgview *v, const uint8_t pubkey[WG_KEY_LEN],
		 const struct wgd_ip *add, size_t n_add)
{
	uint32_t peer = peer_of(v, pubkey);
	struct wgd_ip ip;

	if (peer == NO_PEER)
		return -ENOENT;
	for (size_t i = 0; i < n_add && v->n_slots; i++) {
		if (wgdev_allowedip_canon(&ip, &add[i]))
			return -EINVAL;
		size_t s = ip_slot(v, &ip);

		if (v->slots[s].peer != NO_PEER && v->slots[s].peer != peer)
			return -EEXIST;
	}
	return 0;
}

/* The peer holding exactly the canonical prefix ip, or NO_PEER. */
static uint32_t holder(const struct wgview *v, const struct wgd_ip *ip)
{
	return v->n_slots ? v->slots[ip_slot(v, ip)].peer : NO_PEER;
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
	for (size_t i = 0; i < n_del && v->n_slots; i++) {
		if (wgdev_allowedip_canon(&ip, &del[i]))
			continue;
		size_t s = ip_slot(v, &ip);

		if (v->slots[s].peer == peer)
			ip_delete(v, s);
	}
	for (size_t i = 0; i < n_add; i++) {
		if (wgdev_allowedip_canon(&ip, &add[i]))
			continue;
		if (ip_set(v, &ip, peer)) {
			wgview_invalidate(v);
			return -ENOMEM;
		}
	}
	return 0;
}
