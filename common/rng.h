/* SPDX-License-Identifier: MIT */
#ifndef WGD_RNG_H
#define WGD_RNG_H

#include <stdint.h>

/*
 * Uniform random numbers from libsodium, drawn in batches so that picking an
 * address costs no system call. Not for secrets: a fork() shares the buffer.
 */
uint64_t rng_u64(void);
/* Uniform in [0, bound); bound must not be 0. */
uint64_t rng_below(uint64_t bound);
/* Uniform in [lo, hi]. */
uint64_t rng_range(uint64_t lo, uint64_t hi);

#endif
