// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <string.h>

#include <sodium.h>

#include "rng.h"

/* 4 KiB a batch: the keystream costs a few nanoseconds per number, and a
 * fresh key from the system one getrandom() per 131072 numbers. */
#define RNG_BATCH 512
#define RNG_REKEY_BATCHES 256

static uint64_t rng_buf[RNG_BATCH];
static unsigned rng_left, rng_batches;
static uint8_t rng_key[crypto_stream_chacha20_KEYBYTES];
static uint64_t rng_nonce;
static void (*rng_source)(void *buf, size_t len);

static void rng_refill(void)
{
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = { 0 };

	if (rng_source) {
		rng_source(rng_buf, sizeof(rng_buf));
	} else {
		if (rng_batches % RNG_REKEY_BATCHES == 0)
			randombytes_buf(rng_key, sizeof(rng_key));
		rng_batches++;
		/* The nonce counts batches: none repeats under any key. */
		rng_nonce++;
		memcpy(nonce, &rng_nonce, sizeof(rng_nonce));
		crypto_stream_chacha20((unsigned char *)rng_buf, sizeof(rng_buf), nonce, rng_key);
	}
	rng_left = RNG_BATCH;
}

void rng_set_source(void (*fill)(void *buf, size_t len))
{
	rng_source = fill;
	rng_left = 0;
}

uint64_t rng_u64(void)
{
	if (!rng_left)
		rng_refill();
	return rng_buf[RNG_BATCH - rng_left--];
}

/* The 128-bit product of a and b, as its high and low words. */
static uint64_t mul_64x64(uint64_t a, uint64_t b, uint64_t *lo)
{
#ifdef __SIZEOF_INT128__
	unsigned __int128 p = (unsigned __int128)a * b;

	*lo = (uint64_t)p;
	return (uint64_t)(p >> 64);
#else
	uint64_t a_lo = (uint32_t)a, a_hi = a >> 32, b_lo = (uint32_t)b, b_hi = b >> 32;
	uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
	uint64_t mid = (ll >> 32) + (uint32_t)lh + (uint32_t)hl;

	*lo = (mid << 32) | (uint32_t)ll;
	return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
}

/*
 * Lemire's multiply-and-shift ("Fast Random Integer Generation in an
 * Interval", 2019): the high word of r * bound is uniform in [0, bound)
 * once the draws whose low word falls below 2^64 mod bound are rejected.
 * That remainder, the one division, is needed only when the low word is
 * below bound, which for all but huge bounds is almost never.
 */
uint64_t rng_below(uint64_t bound)
{
	uint64_t lo, hi = mul_64x64(rng_u64(), bound, &lo);

	if (lo < bound) {
		uint64_t limit = -bound % bound;

		while (lo < limit)
			hi = mul_64x64(rng_u64(), bound, &lo);
	}
	return hi;
}

uint64_t rng_range(uint64_t lo, uint64_t hi)
{
	if (lo == 0 && hi == UINT64_MAX)
		return rng_u64();
	return lo + rng_below(hi - lo + 1);
}
