/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_RATELIMIT_H
#define WGD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

/*
 * Rate limits for log lines about one peer: at most one line per key (a
 * peer's public key, say) and cause in each interval, and a count of those
 * held back, told with the next line that goes out.
 *
 * The memory is fixed: RATELIMIT_SLOTS slots in buckets of RATELIMIT_WAYS,
 * picked by a keyed hash of (key, cause), so a peer cannot aim many causes
 * or keys at one bucket. A pair not in its bucket takes a free slot, else
 * the one whose interval ended longest ago, else the one whose interval
 * ends first: past RATELIMIT_SLOTS busy pairs, a pair can log again before
 * its interval is over, and a count of lines held back can be lost with
 * its slot. Either is bounded by the rate at which pairs can be made.
 *
 * Pure: the caller passes the time, so tests can set the clock.
 */

#define RATELIMIT_SLOTS 1024           /* a power of two */
#define RATELIMIT_WAYS 4
#define RATELIMIT_KEY_MAX 32
/* The daemons' interval: a line per peer and cause every 10 s at most. */
#define RATELIMIT_LOG_MS 10000

struct ratelimit_slot {
	uint64_t tag;                  /* keyed hash of (key, cause); 0: free */
	uint64_t until_ms;             /* when the next line may go out */
	uint32_t suppressed;           /* lines held back since the last one */
};

struct ratelimit {
	uint64_t interval_ms;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct ratelimit_slot slots[RATELIMIT_SLOTS];
};

/* Empties rl and draws its hash key; interval_ms is the time between two
 * lines of one pair. */
void ratelimit_init(struct ratelimit *rl, uint64_t interval_ms);

/*
 * Whether a line about key (up to RATELIMIT_KEY_MAX bytes; longer keys are
 * told apart by their first RATELIMIT_KEY_MAX) and cause may go out at
 * now_ms. When it may, *suppressed is the number of lines of the pair held
 * back since the last that went out; the interval starts again.
 */
bool ratelimit_pass(struct ratelimit *rl, const void *key, size_t len, unsigned cause,
		    uint64_t now_ms, uint32_t *suppressed);

#endif
