/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_U128_H
#define WGD_U128_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../protocol/ipaddr.h"

/*
 * Unsigned 128-bit numbers as a pair of words, for address arithmetic: a
 * pool's offsets reach 2^128 in an IPv6 /0. Inline, as the pools use them
 * on every take.
 */
struct u128 {
	uint64_t hi, lo;
};

/*
 * 128-bit arithmetic
 */

static inline int u128_cmp(struct u128 a, struct u128 b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	if (a.lo != b.lo)
		return a.lo < b.lo ? -1 : 1;
	return 0;
}

static inline bool u128_is_zero(struct u128 a)
{
	return !a.hi && !a.lo;
}

static inline struct u128 u128_add(struct u128 a, struct u128 b)
{
	struct u128 r = { a.hi + b.hi, a.lo + b.lo };

	r.hi += r.lo < a.lo;
	return r;
}

static inline struct u128 u128_sub(struct u128 a, struct u128 b)
{
	struct u128 r = { a.hi - b.hi, a.lo - b.lo };

	r.hi -= a.lo < b.lo;
	return r;
}

static inline struct u128 u128_and(struct u128 a, struct u128 b)
{
	return (struct u128){ a.hi & b.hi, a.lo & b.lo };
}

static inline struct u128 u128_or(struct u128 a, struct u128 b)
{
	return (struct u128){ a.hi | b.hi, a.lo | b.lo };
}

static inline struct u128 u128_not(struct u128 a)
{
	return (struct u128){ ~a.hi, ~a.lo };
}

static inline struct u128 u128_u64(uint64_t v)
{
	return (struct u128){ 0, v };
}

/* The lowest h bits set, 0 <= h <= 128. */
static inline struct u128 u128_low_mask(unsigned h)
{
	if (h == 0)
		return u128_u64(0);
	if (h < 64)
		return u128_u64((UINT64_C(1) << h) - 1);
	if (h == 64)
		return u128_u64(UINT64_MAX);
	if (h < 128)
		return (struct u128){ (UINT64_C(1) << (h - 64)) - 1, UINT64_MAX };
	return (struct u128){ UINT64_MAX, UINT64_MAX };
}

static inline uint64_t u128_saturate(struct u128 a)
{
	return a.hi ? UINT64_MAX : a.lo;
}

static inline long double u128_to_ld(struct u128 a)
{
	return (long double)a.hi * 0x1p64L + (long double)a.lo;
}

/* An address as a number: IPv4 in the low 32 bits, IPv6 in all 128. */
static inline struct u128 u128_from_ip(const struct wgd_ip *ip)
{
	struct u128 r = { 0, 0 };
	int i;

	if (ip->family == AF_INET)
		return u128_u64(ntohl(ip->ip4.s_addr));
	for (i = 0; i < 8; i++) {
		r.hi = r.hi << 8 | ip->bytes[i];
		r.lo = r.lo << 8 | ip->bytes[8 + i];
	}
	return r;
}

static inline void u128_to_ip(struct u128 v, uint8_t family, struct wgd_ip *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	out->family = family;
	out->cidr = (uint8_t)wgd_ip_bits(family);
	if (family == AF_INET) {
		out->ip4.s_addr = htonl((uint32_t)v.lo);
		return;
	}
	for (i = 7; i >= 0; i--) {
		out->bytes[i] = (uint8_t)v.hi;
		out->bytes[8 + i] = (uint8_t)v.lo;
		v.hi >>= 8;
		v.lo >>= 8;
	}
}

#endif
