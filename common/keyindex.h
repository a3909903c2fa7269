/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_KEYINDEX_H
#define WGD_KEYINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "hashtab.h"
#include "key.h"

/*
 * Finds public keys held in an array by their position in it, through a
 * hash table of positions (common/hashtab.h). Built once over the array,
 * which stays the caller's, and told of each key that comes or goes after.
 * At a million keys the table is 8 MB.
 */
struct key_index {
	const uint8_t (*keys)[WG_KEY_LEN];
	size_t n_unique;        /* keys indexed; a repeat is found at its first place */
	struct hashtab table;   /* positions in keys */
};

/* 0, or -ENOMEM (more than UINT32_MAX - 1 keys included). */
int key_index_build(struct key_index *ki, const uint8_t (*keys)[WG_KEY_LEN], size_t n);
void key_index_free(struct key_index *ki);
/* The position of pubkey in the array, or SIZE_MAX. */
size_t key_index_find(const struct key_index *ki, const uint8_t pubkey[WG_KEY_LEN]);

/*
 * For an array whose keys do change, one at a time, as the index follows
 * it: key_index_add() indexes keys[pos], a key the index does not hold
 * yet, in keys, the array as it is now (it may have moved since the build).
 * key_index_remove() forgets the key at pos, while it is still there. A
 * key moved from one place to another is removed, then added. 0 or
 * -ENOMEM, with the index unchanged.
 */
int key_index_add(struct key_index *ki, const uint8_t (*keys)[WG_KEY_LEN], size_t pos);
void key_index_remove(struct key_index *ki, size_t pos);

#endif
