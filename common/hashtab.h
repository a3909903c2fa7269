/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_HASHTAB_H
#define WGD_HASHTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

/*
 * A hash table of 32-bit indices into an array the caller keeps: the
 * table finds which index holds a key, the caller's array holds the keys.
 * Each entry stores its index beside a 32-bit hash of its key, so that
 * growing the table never looks at a key, and a lookup compares keys only
 * for entries whose hash matches (at a million entries, a lookup compares
 * a key not its own once in a few thousand).
 *
 * The layout is bucketized cuckoo hashing: buckets of 8 entries, a cache
 * line each, and an entry lives in one of the two buckets its hash picks.
 * A lookup reads two cache lines, both at once, whatever the fill, and
 * the table stays fast up to 31/32 full: 8.3 to 17 bytes an entry. A
 * removal empties its slot and moves nothing, so nothing like a tombstone
 * piles up over years of churn. Entries whose hashes are all equal, which
 * a keyed hash makes as unlikely as guessing its key, overflow into a
 * stash searched in turn: slow, but never wrong.
 *
 * Hashes come from hashtab_hash(): SipHash-2-4 (libsodium's
 * crypto_shorthash) under a key drawn at random for each table. Keys are
 * peers' public keys, which anyone can grind, and addresses, which clients
 * and configuration choose; without the secret key, no one can choose keys
 * that pile up in a few buckets.
 */

#define HASHTAB_NONE UINT32_MAX
/* Entries per bucket: a cache line. */
#define HASHTAB_BUCKET_SLOTS 8

struct hashtab {
	uint64_t *slots;           /* entry: hash << 32 | (index + 1); 0 empty */
	uint32_t n_buckets;        /* a power of two */
	size_t count;              /* entries, stash included */
	uint64_t *stash;           /* what fitted in neither bucket */
	size_t n_stash, cap_stash;
	uint8_t key[crypto_shorthash_KEYBYTES];
};

/* An empty table under a fresh random key. 0 or -ENOMEM. */
int hashtab_init(struct hashtab *ht);
void hashtab_free(struct hashtab *ht);
/* Makes room for n entries at once. 0 or -ENOMEM. */
int hashtab_reserve(struct hashtab *ht, size_t n);
size_t hashtab_count(const struct hashtab *ht);
/* Bytes the table holds, for benchmarks. */
size_t hashtab_memory(const struct hashtab *ht);

/* The hash of len bytes under the table's key. */
static inline uint32_t hashtab_hash(const struct hashtab *ht, const void *data, size_t len)
{
	uint64_t h;

	crypto_shorthash((uint8_t *)&h, data, len, ht->key);
	return (uint32_t)(h >> 32);
}

/*
 * Adds index idx (< HASHTAB_NONE) under hash, without looking for the key
 * first: a caller that must not repeat a key looks it up before. 0 or
 * -ENOMEM, with the table unchanged.
 */
int hashtab_insert(struct hashtab *ht, uint32_t hash, uint32_t idx);
/* Removes the entry of idx under hash; -ENOENT when there is none. */
int hashtab_remove(struct hashtab *ht, uint32_t hash, uint32_t idx);

/*
 * A hash's two buckets in a table of n: the second differs from the first
 * by a nonzero mask from all of the hash's bits, so each is the other's
 * partner, and they are never the same bucket.
 */
static inline void hashtab_buckets(uint32_t n, uint32_t hash, uint32_t *b1, uint32_t *b2)
{
	uint32_t mask = n - 1;

	*b1 = hash & mask;
	*b2 = *b1 ^ (((uint32_t)((hash * UINT64_C(0x9e3779b97f4a7c15)) >> 32) | 1) & mask);
}

/* The stash's part of hashtab_find(), for it alone. */
uint32_t hashtab_find_stash(const struct hashtab *ht, uint32_t hash,
			    bool (*match)(uint32_t idx, const void *ctx), const void *ctx);

/*
 * The index under hash for which match(idx, ctx) holds, or HASHTAB_NONE.
 * match is called only for entries whose hash is equal, in no set order.
 * Inline, so that match is too: a lookup is on every request's path.
 */
static inline uint32_t hashtab_find(const struct hashtab *ht, uint32_t hash,
				    bool (*match)(uint32_t idx, const void *ctx),
				    const void *ctx)
{
	uint32_t b[2];

	hashtab_buckets(ht->n_buckets, hash, &b[0], &b[1]);
	/* Both cache lines at once: a key that is absent needs both. */
	__builtin_prefetch(&ht->slots[(size_t)b[1] * HASHTAB_BUCKET_SLOTS]);
	for (unsigned i = 0; i < 2; i++) {
		const uint64_t *s = &ht->slots[(size_t)b[i] * HASHTAB_BUCKET_SLOTS];

		for (unsigned j = 0; j < HASHTAB_BUCKET_SLOTS; j++) {
			if (s[j] && (uint32_t)(s[j] >> 32) == hash && match((uint32_t)s[j] - 1, ctx))
				return (uint32_t)s[j] - 1;
		}
	}
	return ht->n_stash ? hashtab_find_stash(ht, hash, match, ctx) : HASHTAB_NONE;
}

/* Starts loading the two cache lines a lookup of hash reads, for a caller
 * with other misses to wait for at the same time. */
void hashtab_prefetch(const struct hashtab *ht, uint32_t hash);

/*
 * Walks every entry: *pos starts at 0, and each call returns the next
 * entry's index (and hash, when hash is not NULL), or HASHTAB_NONE at the
 * end. Removing the entry just returned is safe; inserting is not.
 */
uint32_t hashtab_walk(const struct hashtab *ht, size_t *pos, uint32_t *hash);

#endif
