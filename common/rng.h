/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_RNG_H
#define WGD_RNG_H

#include <stddef.h>
#include <stdint.h>

/*
 * Uniform random numbers, drawn in batches so that picking an address costs
 * no system call: a ChaCha20 keystream under a key from the system's
 * generator, rekeyed every 256 batches. Not for secrets: a fork() shares
 * the state until the next rekey.
 */
uint64_t rng_u64(void);
/* Uniform in [0, bound); bound must not be 0. */
uint64_t rng_below(uint64_t bound);
/* Uniform in [lo, hi]. */
uint64_t rng_range(uint64_t lo, uint64_t hi);

/*
 * For tests: fill writes the next len bytes of randomness, read 8 at a time
 * in order, instead of the keystream; NULL goes back to the keystream.
 * Either way the next draw starts a new batch.
 */
void rng_set_source(void (*fill)(void *buf, size_t len));

#endif
