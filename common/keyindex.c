// SPDX-License-Identifier: MIT

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keyindex.h"

#define EMPTY UINT32_MAX

/* The slot holding pubkey, or the empty slot where it would go. */
static size_t slot_of(const struct key_index *ki, const uint8_t *pubkey)
{
	uint64_t h;
	size_t i;

	crypto_shorthash((uint8_t *)&h, pubkey, WG_KEY_LEN, ki->hash_key);
	for (i = (size_t)h & ki->mask; ki->slots[i] != EMPTY; i = (i + 1) & ki->mask)
		if (!memcmp(ki->keys[ki->slots[i]], pubkey, WG_KEY_LEN))
			break;
	return i;
}

int key_index_build(struct key_index *ki, const uint8_t (*keys)[WG_KEY_LEN], size_t n)
{
	size_t size = 16;

	memset(ki, 0, sizeof(*ki));
	if (n >= EMPTY)
		return -ENOMEM;
	while (size < n * 2)
		size *= 2;
	ki->slots = malloc(size * sizeof(*ki->slots));
	if (!ki->slots)
		return -ENOMEM;
	memset(ki->slots, 0xff, size * sizeof(*ki->slots));
	ki->mask = size - 1;
	ki->keys = keys;
	crypto_shorthash_keygen(ki->hash_key);
	for (size_t i = 0; i < n; i++) {
		size_t s = slot_of(ki, keys[i]);

		if (ki->slots[s] == EMPTY) {
			ki->slots[s] = (uint32_t)i;
			ki->n_unique++;
		}
	}
	return 0;
}

void key_index_free(struct key_index *ki)
{
	free(ki->slots);
	memset(ki, 0, sizeof(*ki));
}

size_t key_index_find(const struct key_index *ki, const uint8_t pubkey[WG_KEY_LEN])
{
	size_t s;

	if (!ki->slots)
		return SIZE_MAX;
	s = slot_of(ki, pubkey);
	return ki->slots[s] == EMPTY ? SIZE_MAX : ki->slots[s];
}
