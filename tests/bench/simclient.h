/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_BENCH_SIMCLIENT_H
#define WGD_BENCH_SIMCLIENT_H

/*
 * What the simulated-client load generators (loadgen.c, meshgen.c) share:
 * client i's link-local address, argument checks, a clock, percentiles and
 * the descriptor limit. SIMCLIENT_PROG names the tool in its messages.
 */

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#ifndef SIMCLIENT_PROG
#error "define SIMCLIENT_PROG before including simclient.h"
#endif

static inline uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Client i: fe80::1:0:HI:LO. */
static inline void client_ll(struct in6_addr *a, uint32_t i)
{
	memset(a, 0, sizeof(*a));
	a->s6_addr[0] = 0xfe;
	a->s6_addr[1] = 0x80;
	a->s6_addr[9] = 1;
	a->s6_addr[12] = (uint8_t)(i >> 24);
	a->s6_addr[13] = (uint8_t)(i >> 16);
	a->s6_addr[14] = (uint8_t)(i >> 8);
	a->s6_addr[15] = (uint8_t)i;
}

static inline int count_arg(const char *what, const char *arg, unsigned long max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || *end || arg[0] < '0' || arg[0] > '9' || v < 1 || v > max) {
		fprintf(stderr, SIMCLIENT_PROG ": %s %s: give a number from 1 to %lu\n", what, arg, max);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static inline int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of v[0..n), sorted. */
static inline uint32_t percentile(const uint32_t *v, uint32_t n, unsigned pct)
{
	uint64_t rank;

	if (!n)
		return 0;
	rank = ((uint64_t)n * pct + 99) / 100;
	return v[rank ? rank - 1 : 0];
}

/* Room for n connections and the tool's own descriptors. */
static inline void raise_fd_limit(uint32_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= n + 64)
		return;
	rl.rlim_cur = rl.rlim_max < n + 64 ? rl.rlim_max : n + 64;
	setrlimit(RLIMIT_NOFILE, &rl);
}

#endif
