/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_CLOCK_H
#define WGD_CLOCK_H

#include <stdint.h>
#include <time.h>

/*
 * Lease timing runs on CLOCK_BOOTTIME, which keeps counting through suspend
 * and is never stepped, so a lease cannot outlive its term when the wall
 * clock jumps. Wall-clock seconds appear only on the wire (leasestart).
 */
static inline uint64_t clock_boot_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* For measuring how long something took. */
static inline uint64_t clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static inline uint32_t clock_real_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint32_t)ts.tv_sec;
}

#endif
