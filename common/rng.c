// SPDX-License-Identifier: MIT

#include <sodium.h>

#include "rng.h"

static uint64_t rng_buf[256];
static unsigned rng_left;

uint64_t rng_u64(void)
{
	if (!rng_left) {
		randombytes_buf(rng_buf, sizeof(rng_buf));
		rng_left = sizeof(rng_buf) / sizeof(rng_buf[0]);
	}
	return rng_buf[--rng_left];
}

uint64_t rng_below(uint64_t bound)
{
	/* Rejection sampling keeps the result unbiased for any bound. */
	uint64_t limit = -bound % bound, r;

	do
		r = rng_u64();
	while (r < limit);
	return r % bound;
}

uint64_t rng_range(uint64_t lo, uint64_t hi)
{
	if (lo == 0 && hi == UINT64_MAX)
		return rng_u64();
	return lo + rng_below(hi - lo + 1);
}
