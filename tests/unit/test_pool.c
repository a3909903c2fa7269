// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/rng.h"
#include "../../server/pool.h"

/*
 * Check's ck_assert() family reports every passing assertion to the parent
 * process with a write; the millions in the loops below would have the
 * suite spend its time in system calls. These write only on failure.
 */
#define require(cond) \
	do { \
		if (!(cond)) \
			ck_abort_msg("Assertion '%s' failed", #cond); \
	} while (0)
#define require_cmp(type, fmt, a, op, b) \
	do { \
		type a_ = (a), b_ = (b); \
		if (!(a_ op b_)) \
			ck_abort_msg("Assertion '%s %s %s' failed: " fmt " vs " fmt, \
				     #a, #op, #b, a_, b_); \
	} while (0)
#define require_int(a, op, b) require_cmp(long long, "%lld", a, op, b)
#define require_uint(a, op, b) require_cmp(unsigned long long, "%llu", a, op, b)

static struct wgd_ip ip(const char *text)
{
	struct wgd_ip out = { 0 };
	char buf[64];
	char *slash;

	require_uint(strlen(text), <, sizeof(buf));
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, out.bytes) == 1)
		out.family = AF_INET;
	else if (inet_pton(AF_INET6, buf, out.bytes) == 1)
		out.family = AF_INET6;
	else
		ck_abort_msg("bad address %s", text);
	out.cidr = slash ? (uint8_t)atoi(slash + 1) : (uint8_t)wgd_ip_bits(out.family);
	return out;
}

/* The host address at offset off of an IPv4 prefix. */
static struct wgd_ip ip4_at(const struct wgd_ip *prefix, uint32_t off)
{
	struct wgd_ip out = *prefix;

	out.ip4.s_addr = htonl(ntohl(prefix->ip4.s_addr) + off);
	out.cidr = 32;
	return out;
}

static uint32_t ip4_offset(const struct wgd_ip *prefix, const struct wgd_ip *addr)
{
	return ntohl(addr->ip4.s_addr) - ntohl(prefix->ip4.s_addr);
}

/* The host address at offset off (below 2^64) of an IPv6 prefix. */
static struct wgd_ip ip6_at(const struct wgd_ip *prefix, uint64_t off)
{
	struct wgd_ip out = *prefix;
	int i;

	out.cidr = 128;
	for (i = 15; i >= 8; i--) {
		out.bytes[i] |= (uint8_t)off;
		off >>= 8;
	}
	return out;
}

static bool prefix_holds(const struct wgd_ip *prefix, const struct wgd_ip *addr)
{
	unsigned full = prefix->cidr / 8, rest = prefix->cidr % 8;

	if (prefix->family != addr->family || addr->cidr != wgd_ip_bits(addr->family))
		return false;
	if (memcmp(prefix->bytes, addr->bytes, full))
		return false;
	return !rest || !((prefix->bytes[full] ^ addr->bytes[full]) & (0xff00 >> rest));
}

static struct poolset *set_with(const char *a, const char *b)
{
	struct poolset *ps = poolset_new();
	struct wgd_ip p;

	ck_assert_ptr_nonnull(ps);
	if (a) {
		p = ip(a);
		require_int(poolset_add(ps, &p), ==, 0);
	}
	if (b) {
		p = ip(b);
		require_int(poolset_add(ps, &p), ==, 0);
	}
	return ps;
}

static int cmp_ip(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct wgd_ip));
}

/* The last address of a prefix, less back. */
static struct wgd_ip last_at(const struct wgd_ip *prefix, unsigned back)
{
	struct wgd_ip out = *prefix;
	unsigned bits = wgd_ip_bits(prefix->family);

	for (unsigned b = prefix->cidr; b < bits; b++)
		out.bytes[b / 8] |= (uint8_t)(0x80 >> (b % 8));
	out.cidr = (uint8_t)bits;
	out.bytes[bits / 8 - 1] = (uint8_t)(out.bytes[bits / 8 - 1] - back);
	return out;
}

/* The address one after (by 1) or before (by -1) a host address. */
static void step(struct wgd_ip *a, int by)
{
	for (int i = (int)wgd_ip_len(a->family) - 1; i >= 0; i--) {
		a->bytes[i] = (uint8_t)(a->bytes[i] + by);
		if (a->bytes[i] != (by > 0 ? 0x00 : 0xff))
			break;
	}
}

/*
 * The parent checks the engine's additions with pool_prefix_leases(), the
 * pools with their own bounds: at both ends of pools of every kind, and
 * just outside, both answer alike.
 */
START_TEST(test_prefix_rule_agrees)
{
	static const char *const prefixes[] = {
		"10.0.0.0/24", "10.0.0.0/30", "10.0.0.0/31", "10.0.0.5/32", "10.0.0.0/8",
		"10.0.0.0/7", "fd00::/64", "fd00::/120", "fd00::/126", "fd00::/127",
		"fd00::5/128", "fd00::/32",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		struct wgd_ip prefix = ip(prefixes[i]), probe[8];
		struct poolset *ps = set_with(prefixes[i], NULL);
		bool v4 = prefix.family == AF_INET;
		size_t n = 0;

		for (unsigned off = 0; off < 3; off++)
			probe[n++] = v4 ? ip4_at(&prefix, off) : ip6_at(&prefix, off);
		probe[n++] = last_at(&prefix, 1);
		probe[n++] = last_at(&prefix, 0);
		/* Just before and just after, in the neighbouring prefixes. */
		probe[n] = v4 ? ip4_at(&prefix, 0) : ip6_at(&prefix, 0);
		step(&probe[n++], -1);
		probe[n] = last_at(&prefix, 0);
		step(&probe[n++], 1);
		for (size_t j = 0; j < n; j++) {
			char b[64];

			inet_ntop(prefix.family, probe[j].bytes, b, sizeof(b));
			ck_assert_msg(poolset_contains(ps, &probe[j]) ==
					      pool_prefix_leases(&prefix, &probe[j]),
				      "%s in %s: the pool and the rule differ", b, prefixes[i]);
		}
		/* And the rule leaves out what RFC 3021, 4291 and 6164 say. */
		ck_assert(pool_prefix_leases(&prefix, &probe[0]) ==
			  (v4 ? prefix.cidr >= 31 : prefix.cidr >= 127));
		ck_assert(pool_prefix_leases(&prefix, &probe[4]) == (!v4 || prefix.cidr >= 31));
		poolset_free(ps);
	}
}
END_TEST

START_TEST(test_exhaust_29)
{
	struct poolset *ps = set_with("10.0.0.0/29", NULL);
	struct wgd_ip prefix = ip("10.0.0.0/29"), got, net = ip("10.0.0.0"),
		      bcast = ip("10.0.0.7");
	bool seen[8] = { false };
	int i;

	require_uint(poolset_count(ps), ==, 1);
	require_uint(poolset_pool_size(ps, 0), ==, 6);
	require_uint(poolset_pool_free(ps, 0), ==, 6);
	require(!poolset_contains(ps, &net));
	require(!poolset_contains(ps, &bcast));
	require(!poolset_is_free(ps, &net));

	for (i = 0; i < 6; i++) {
		uint32_t off;

		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		require(prefix_holds(&prefix, &got));
		off = ip4_offset(&prefix, &got);
		require_uint(off, >=, 1);
		require_uint(off, <=, 6);
		require(!seen[off]);
		seen[off] = true;
		require(poolset_contains(ps, &got));
		require(!poolset_is_free(ps, &got));
		require_uint(poolset_pool_free(ps, 0), ==, 5 - (unsigned)i);
	}
	require_int(poolset_take_random(ps, AF_INET, &got), ==, -ENOSPC);
	require_uint(got.family, ==, 0);
	require_int(poolset_take_random(ps, AF_INET6, &got), ==, -ENOSPC);
	require_int(poolset_take_random(ps, AF_UNIX, &got), ==, -EAFNOSUPPORT);

	/* What goes back is what comes out next. */
	got = ip4_at(&prefix, 3);
	poolset_put(ps, &got);
	require(poolset_is_free(ps, &got));
	require_uint(poolset_pool_free(ps, 0), ==, 1);
	require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
	require_uint(ip4_offset(&prefix, &got), ==, 3);
	require_int(poolset_take_random(ps, AF_INET, &got), ==, -ENOSPC);
	poolset_free(ps);
	poolset_free(NULL);
}
END_TEST

START_TEST(test_small_prefixes)
{
	struct poolset *ps = set_with("192.0.2.0/31", "192.0.2.9/32");
	struct wgd_ip got, a = ip("192.0.2.0"), b = ip("192.0.2.1"), c = ip("192.0.2.9");
	bool seen[3] = { false };
	int i;

	require_uint(poolset_pool_size(ps, 0), ==, 2);
	require_uint(poolset_pool_size(ps, 1), ==, 1);
	require(poolset_contains(ps, &a));
	require(poolset_contains(ps, &b));
	require(poolset_contains(ps, &c));
	for (i = 0; i < 3; i++) {
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		if (!memcmp(&got, &a, sizeof(got)))
			seen[0] = true;
		else if (!memcmp(&got, &b, sizeof(got)))
			seen[1] = true;
		else if (!memcmp(&got, &c, sizeof(got)))
			seen[2] = true;
		else
			ck_abort_msg("address outside both pools");
	}
	require(seen[0] && seen[1] && seen[2]);
	require_int(poolset_take_random(ps, AF_INET, &got), ==, -ENOSPC);
	poolset_free(ps);

	/* IPv6: the all-zero address of a /125 is never leased, a /127
	 * leases both of its addresses, a /128 its only one. */
	ps = set_with("fd00::/125", "fd00::10/127");
	require_int(poolset_add(ps, &(struct wgd_ip){ 0 }), ==, -EINVAL);
	a = ip("fd00::20/128");
	require_int(poolset_add(ps, &a), ==, 0);
	require_uint(poolset_pool_size(ps, 0), ==, 7);
	require_uint(poolset_pool_size(ps, 1), ==, 2);
	require_uint(poolset_pool_size(ps, 2), ==, 1);
	a = ip("fd00::");
	require(!poolset_contains(ps, &a));
	require_int(poolset_take(ps, &a), ==, -ERANGE);
	a = ip("fd00::10");
	require(poolset_contains(ps, &a));
	for (i = 0; i < 10; i++) {
		struct wgd_ip zero = ip("fd00::");

		require_int(poolset_take_random(ps, AF_INET6, &got), ==, 0);
		require(memcmp(&got, &zero, sizeof(got)));
		require(poolset_contains(ps, &got));
	}
	require_int(poolset_take_random(ps, AF_INET6, &got), ==, -ENOSPC);
	poolset_free(ps);
}
END_TEST

START_TEST(test_take_put)
{
	struct poolset *ps = set_with("10.0.0.0/24", NULL);
	struct wgd_ip a = ip("10.0.0.5"), net = ip("10.0.0.0"), bcast = ip("10.0.0.255");
	struct wgd_ip out = ip("10.0.9.9"), v6 = ip("::ffff:10.0.0.5");

	require_uint(poolset_pool_size(ps, 0), ==, 254);
	require(poolset_is_free(ps, &a));
	require_int(poolset_take(ps, &a), ==, 0);
	require(!poolset_is_free(ps, &a));
	require(poolset_contains(ps, &a));
	require_uint(poolset_pool_free(ps, 0), ==, 253);
	require_int(poolset_take(ps, &a), ==, -EEXIST);
	require_int(poolset_take(ps, &net), ==, -ERANGE);
	require_int(poolset_take(ps, &bcast), ==, -ERANGE);
	require_int(poolset_take(ps, &out), ==, -ERANGE);
	require_int(poolset_take(ps, &v6), ==, -ERANGE);

	/* Putting back what was never leased changes nothing, and the
	 * never-leasable addresses stay so. */
	poolset_put(ps, &out);
	poolset_put(ps, &net);
	poolset_put(ps, &bcast);
	require_uint(poolset_pool_free(ps, 0), ==, 253);
	require(!poolset_is_free(ps, &net));
	require_int(poolset_take(ps, &net), ==, -ERANGE);

	poolset_put(ps, &a);
	require(poolset_is_free(ps, &a));
	require_uint(poolset_pool_free(ps, 0), ==, 254);
	poolset_put(ps, &a);
	require_uint(poolset_pool_free(ps, 0), ==, 254);
	require_int(poolset_take(ps, &a), ==, 0);

	/* The prefix length of a given address is not looked at. */
	a = ip("10.0.0.6/24");
	require_int(poolset_take(ps, &a), ==, 0);
	a = ip("10.0.0.6");
	require(!poolset_is_free(ps, &a));
	poolset_free(ps);
}
END_TEST

START_TEST(test_reserve)
{
	struct poolset *ps = set_with("10.0.0.0/24", "fd00::/64");
	struct wgd_ip r = ip("10.0.0.4/30"), got, a = ip("10.0.0.5"),
		      leased = ip("10.0.0.100"), prefix = ip("10.0.0.0/24");
	int i, n = 0;

	poolset_reserve(ps, &r);
	require_uint(poolset_pool_free(ps, 0), ==, 250);
	require(!poolset_is_free(ps, &a));
	require(poolset_contains(ps, &a));
	require_int(poolset_take(ps, &a), ==, -EEXIST);
	while (poolset_take_random(ps, AF_INET, &got) == 0) {
		uint32_t off = ip4_offset(&prefix, &got);

		require(off < 4 || off > 7);
		n++;
	}
	require_int(n, ==, 250);

	/* Clearing frees the reserved ones, and only them. */
	poolset_reserve_clear(ps);
	require_uint(poolset_pool_free(ps, 0), ==, 4);
	require_int(poolset_take(ps, &a), ==, 0);
	for (i = 1; i < 255; i++) {
		got = ip4_at(&prefix, (uint32_t)i);
		poolset_put(ps, &got);
	}
	require_uint(poolset_pool_free(ps, 0), ==, 254);

	/* A reservation over a lease keeps the lease. */
	require_int(poolset_take(ps, &leased), ==, 0);
	r = ip("10.0.0.96/28");
	poolset_reserve(ps, &r);
	require_uint(poolset_pool_free(ps, 0), ==, 254 - 16);
	poolset_reserve(ps, &r);
	require_uint(poolset_pool_free(ps, 0), ==, 254 - 16);
	poolset_reserve_clear(ps);
	require_uint(poolset_pool_free(ps, 0), ==, 253);
	require_int(poolset_take(ps, &leased), ==, -EEXIST);
	poolset_reserve(ps, &r);
	poolset_put(ps, &leased);
	require(!poolset_is_free(ps, &leased));
	require_uint(poolset_pool_free(ps, 0), ==, 254 - 16);
	poolset_reserve_clear(ps);
	require(poolset_is_free(ps, &leased));
	require_uint(poolset_pool_free(ps, 0), ==, 254);

	/* A reservation larger than the pool takes all of it; one of the
	 * other family or elsewhere takes nothing. */
	r = ip("10.0.0.0/8");
	poolset_reserve(ps, &r);
	require_uint(poolset_pool_free(ps, 0), ==, 0);
	require_int(poolset_take_random(ps, AF_INET, &got), ==, -ENOSPC);
	poolset_reserve_clear(ps);
	r = ip("10.0.1.0/24");
	poolset_reserve(ps, &r);
	r = ip("::/0");
	poolset_reserve(ps, &r);
	require_uint(poolset_pool_free(ps, 0), ==, 254);
	require_uint(poolset_pool_free(ps, 1), ==, 0);
	require_int(poolset_take_random(ps, AF_INET6, &got), ==, -ENOSPC);
	poolset_reserve_clear(ps);

	/* In a sparse pool too. */
	require_uint(poolset_pool_free(ps, 1), ==, UINT64_MAX);
	r = ip("fd00::/120");
	poolset_reserve(ps, &r);
	r = ip("fd00::1:0/112");
	poolset_reserve(ps, &r);
	r = ip("fd00::1:5/128");
	poolset_reserve(ps, &r);
	require_uint(poolset_pool_free(ps, 1), ==, UINT64_MAX - 255 - 65536);
	a = ip("fd00::5");
	require(!poolset_is_free(ps, &a));
	require_int(poolset_take(ps, &a), ==, -EEXIST);
	a = ip("fd00::1:ffff");
	require(!poolset_is_free(ps, &a));
	a = ip("fd00::2:0");
	require(poolset_is_free(ps, &a));
	require_int(poolset_take(ps, &a), ==, 0);
	/* A reservation over it keeps the lease and counts it once. */
	r = ip("fd00::2:0/127");
	poolset_reserve(ps, &r);
	require_uint(poolset_pool_free(ps, 1), ==, UINT64_MAX - 255 - 65536 - 2);
	poolset_reserve_clear(ps);
	require_uint(poolset_pool_free(ps, 1), ==, UINT64_MAX - 1);
	require_int(poolset_take(ps, &a), ==, -EEXIST);
	a = ip("fd00::5");
	require_int(poolset_take(ps, &a), ==, 0);
	poolset_free(ps);
}
END_TEST

START_TEST(test_uniform)
{
	struct poolset *ps = set_with("10.0.0.0/28", NULL);
	struct wgd_ip prefix = ip("10.0.0.0/28"), got;
	unsigned counts[16] = { 0 }, i, draws = 14 * 4096;

	/* Each draw is put back, so every one is among all 14. Expected
	 * 4096 per address with a deviation of 62: +-25% is 16 deviations. */
	for (i = 0; i < draws; i++) {
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		counts[ip4_offset(&prefix, &got)]++;
		poolset_put(ps, &got);
	}
	require_uint(counts[0], ==, 0);
	require_uint(counts[15], ==, 0);
	for (i = 1; i < 15; i++) {
		require_uint(counts[i], >=, 4096 * 3 / 4);
		require_uint(counts[i], <=, 4096 * 5 / 4);
	}

	/* Half leased: the other half shares the draws. */
	memset(counts, 0, sizeof(counts));
	for (i = 1; i <= 7; i++) {
		got = ip4_at(&prefix, i);
		require_int(poolset_take(ps, &got), ==, 0);
	}
	for (i = 0; i < 7 * 4096; i++) {
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		counts[ip4_offset(&prefix, &got)]++;
		poolset_put(ps, &got);
	}
	for (i = 1; i <= 7; i++)
		require_uint(counts[i], ==, 0);
	for (i = 8; i < 15; i++) {
		require_uint(counts[i], >=, 4096 * 3 / 4);
		require_uint(counts[i], <=, 4096 * 5 / 4);
	}
	poolset_free(ps);
}
END_TEST

START_TEST(test_uniform_blocks)
{
	struct poolset *ps = set_with("10.0.0.0/20", NULL);
	struct wgd_ip prefix = ip("10.0.0.0/20"), got;
	unsigned counts[8] = { 0 }, i, draws = 200000, free_count;
	double expect;

	/* The first block of 512 keeps only 64 of its addresses free, so
	 * the tree must weigh it by what is free, not by its size. */
	for (i = 1; i < 512 - 64; i++) {
		got = ip4_at(&prefix, i);
		require_int(poolset_take(ps, &got), ==, 0);
	}
	free_count = (unsigned)poolset_pool_free(ps, 0);
	require_uint(free_count, ==, 4094 - 447);
	for (i = 0; i < draws; i++) {
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		require_uint(ip4_offset(&prefix, &got), >=, 512 - 64);
		counts[ip4_offset(&prefix, &got) / 512]++;
		poolset_put(ps, &got);
	}
	/* About 3500 and 28000 expected, deviations near 60 and 160: the
	 * bounds are a dozen deviations away. */
	expect = (double)draws * 64 / free_count;
	require_uint(counts[0], >=, (unsigned)(expect * 0.8));
	require_uint(counts[0], <=, (unsigned)(expect * 1.2));
	for (i = 1; i < 8; i++) {
		expect = (double)draws * (i == 7 ? 511 : 512) / free_count;
		require_uint(counts[i], >=, (unsigned)(expect * 0.95));
		require_uint(counts[i], <=, (unsigned)(expect * 1.05));
	}
	poolset_free(ps);
}
END_TEST

START_TEST(test_sparse)
{
	struct poolset *ps = set_with("2001:db8:1:2::/64", NULL);
	struct wgd_ip prefix = ip("2001:db8:1:2::/64"), zero = ip("2001:db8:1:2::");
	const unsigned n = 100000;
	struct wgd_ip *got = calloc(n, sizeof(*got));
	size_t memory;
	unsigned i;

	ck_assert_ptr_nonnull(got);
	require_uint(poolset_pool_size(ps, 0), ==, UINT64_MAX);
	require(!poolset_contains(ps, &zero));
	require_int(poolset_take(ps, &zero), ==, -ERANGE);

	for (i = 0; i < n; i++) {
		require_int(poolset_take_random(ps, AF_INET6, &got[i]), ==, 0);
		require(prefix_holds(&prefix, &got[i]));
		require(memcmp(&got[i], &zero, sizeof(zero)));
	}
	require_uint(poolset_pool_free(ps, 0), ==, UINT64_MAX - n);
	memory = poolset_memory(ps);
	require_uint(memory, <=, (size_t)n * 24);

	/* The set must come back with its leases in any order. */
	for (i = 0; i < n; i++) {
		require(poolset_contains(ps, &got[i]));
		require(!poolset_is_free(ps, &got[i]));
		require_int(poolset_take(ps, &got[i]), ==, -EEXIST);
	}
	for (i = 0; i < n; i += 2)
		poolset_put(ps, &got[i]);
	require_uint(poolset_pool_free(ps, 0), ==, UINT64_MAX - n / 2);
	for (i = 0; i < n; i++)
		require(poolset_is_free(ps, &got[i]) == !(i % 2));
	for (i = 0; i < n; i += 2)
		require_int(poolset_take(ps, &got[i]), ==, 0);
	require_uint(poolset_pool_free(ps, 0), ==, UINT64_MAX - n);

	qsort(got, n, sizeof(*got), cmp_ip);
	for (i = 1; i < n; i++)
		require(cmp_ip(&got[i - 1], &got[i]));

	for (i = 0; i < n; i++)
		poolset_put(ps, &got[i]);
	require_uint(poolset_pool_free(ps, 0), ==, UINT64_MAX);
	free(got);
	poolset_free(ps);
}
END_TEST

START_TEST(test_sparse_wide)
{
	struct poolset *ps = set_with("::/0", NULL);
	struct wgd_ip prefix = ip("fd00:1::/48"), got[2000], a;
	unsigned i;

	/* The widest pool of all. */
	require_uint(poolset_pool_size(ps, 0), ==, UINT64_MAX);
	require_int(poolset_add(ps, &prefix), ==, -EINVAL);
	for (i = 0; i < 100; i++) {
		require_int(poolset_take_random(ps, AF_INET6, &got[i]), ==, 0);
		require(poolset_contains(ps, &got[i]));
		require(!poolset_is_free(ps, &got[i]));
	}
	a = ip("::");
	require(!poolset_contains(ps, &a));
	a = ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	require_int(poolset_take(ps, &a), ==, 0);
	require_uint(poolset_pool_free(ps, 0), ==, UINT64_MAX);
	poolset_free(ps);

	ps = set_with("fd00:1::/48", NULL);
	require_uint(poolset_pool_size(ps, 0), ==, UINT64_MAX);
	for (i = 0; i < 2000; i++) {
		require_int(poolset_take_random(ps, AF_INET6, &got[i]), ==, 0);
		require(prefix_holds(&prefix, &got[i]));
		require(!poolset_is_free(ps, &got[i]));
	}
	for (i = 0; i < 2000; i += 3)
		poolset_put(ps, &got[i]);
	for (i = 0; i < 2000; i++)
		require(poolset_is_free(ps, &got[i]) == !(i % 3));

	/* Offsets past 64 bits are kept whole. */
	a = ip("fd00:1:0:1::5");
	require_int(poolset_take(ps, &a), ==, 0);
	a = ip("fd00:1:0:2::5");
	require(poolset_is_free(ps, &a));
	a = ip("fd00:1:0:1::5");
	require(!poolset_is_free(ps, &a));
	a = ip("fd00:1::");
	require(!poolset_contains(ps, &a));
	poolset_free(ps);
}
END_TEST

START_TEST(test_sparse_ipv4)
{
	struct poolset *ps = set_with("10.0.0.0/7", NULL);
	struct wgd_ip prefix = ip("10.0.0.0/7"), got, net = ip("10.0.0.0"),
		      bcast = ip("11.255.255.255"), a = ip("11.255.255.254");
	int i;

	require_uint(poolset_pool_size(ps, 0), ==, (UINT64_C(1) << 25) - 2);
	require_int(poolset_take(ps, &net), ==, -ERANGE);
	require_int(poolset_take(ps, &bcast), ==, -ERANGE);
	require_int(poolset_take(ps, &a), ==, 0);
	for (i = 0; i < 1000; i++) {
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		require(prefix_holds(&prefix, &got));
		require(poolset_contains(ps, &got));
	}
	require_uint(poolset_pool_free(ps, 0), ==, (UINT64_C(1) << 25) - 2 - 1001);
	poolset_free(ps);
}
END_TEST

START_TEST(test_proportional)
{
	struct poolset *ps = set_with("10.0.0.0/24", "10.1.0.0/26");
	struct wgd_ip small = ip("10.1.0.0/26"), big = ip("10.0.0.0/24"), got;
	unsigned i, hits = 0, draws = 100000;
	double expect;

	/* 62 of 316 free: about 19600 with a deviation of 126. */
	for (i = 0; i < draws; i++) {
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		hits += prefix_holds(&small, &got);
		poolset_put(ps, &got);
	}
	expect = draws * 62.0 / 316;
	require_uint(hits, >=, (unsigned)(expect * 0.9));
	require_uint(hits, <=, (unsigned)(expect * 1.1));

	/* With 200 of the big pool leased, the small one holds most of
	 * what is free: 62 of 116. */
	for (i = 1; i <= 200; i++) {
		got = ip4_at(&big, i);
		require_int(poolset_take(ps, &got), ==, 0);
	}
	hits = 0;
	for (i = 0; i < draws; i++) {
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		hits += prefix_holds(&small, &got);
		poolset_put(ps, &got);
	}
	expect = draws * 62.0 / 116;
	require_uint(hits, >=, (unsigned)(expect * 0.95));
	require_uint(hits, <=, (unsigned)(expect * 1.05));
	poolset_free(ps);

	/* Sparse pools weigh by size: a /63 draws twice what a /64 does. */
	ps = set_with("fd00:0:0:2::/63", "fd00:0:0:1::/64");
	small = ip("fd00:0:0:1::/64");
	hits = 0;
	for (i = 0; i < 30000; i++) {
		require_int(poolset_take_random(ps, AF_INET6, &got), ==, 0);
		hits += prefix_holds(&small, &got);
	}
	require_uint(hits, >=, 9000);
	require_uint(hits, <=, 11000);
	poolset_free(ps);

	/* A small pool beside a fully reserved sparse one gets every draw. */
	ps = set_with("fd00:0:0:1::/64", "fd00:0:0:2::/124");
	small = ip("fd00:0:0:1::/64");
	poolset_reserve(ps, &small);
	for (i = 0; i < 15; i++)
		require_int(poolset_take_random(ps, AF_INET6, &got), ==, 0);
	require_int(poolset_take_random(ps, AF_INET6, &got), ==, -ENOSPC);
	poolset_free(ps);
}
END_TEST

START_TEST(test_add_remove)
{
	struct poolset *ps = poolset_new();
	struct wgd_ip p, a;

	p = ip("10.0.0.0/24");
	require_int(poolset_add(ps, &p), ==, 0);
	require_int(poolset_add(ps, &p), ==, -EEXIST);
	p = ip("10.0.0.0/16");
	require_int(poolset_add(ps, &p), ==, -EINVAL);
	p = ip("10.0.0.128/25");
	require_int(poolset_add(ps, &p), ==, -EINVAL);
	p = ip("10.0.0.77/32");
	require_int(poolset_add(ps, &p), ==, -EINVAL);
	p = ip("10.0.2.1/24");
	require_int(poolset_add(ps, &p), ==, -EINVAL);
	p = ip("10.0.2.0/24");
	p.cidr = 33;
	require_int(poolset_add(ps, &p), ==, -EINVAL);
	p = ip("10.0.1.0/24");
	require_int(poolset_add(ps, &p), ==, 0);
	p = ip("fd00::/64");
	require_int(poolset_add(ps, &p), ==, 0);
	p = ip("fd00::/56");
	require_int(poolset_add(ps, &p), ==, -EINVAL);
	p = ip("fd00::1:0/112");
	require_int(poolset_add(ps, &p), ==, -EINVAL);
	p = ip("fd00:0:0:1::/64");
	require_int(poolset_add(ps, &p), ==, 0);
	require_uint(poolset_count(ps), ==, 4);

	a = ip("10.0.1.9");
	require_int(poolset_take(ps, &a), ==, 0);
	p = ip("10.0.1.0/24");
	require_int(poolset_remove(ps, &p), ==, 0);
	require_int(poolset_remove(ps, &p), ==, -ENOENT);
	require_uint(poolset_count(ps), ==, 3);
	p = ip("10.0.0.0/24");
	require(!memcmp(poolset_prefix(ps, 0), &p, sizeof(p)));
	p = ip("fd00::/64");
	require(!memcmp(poolset_prefix(ps, 1), &p, sizeof(p)));
	p = ip("fd00:0:0:1::/64");
	require(!memcmp(poolset_prefix(ps, 2), &p, sizeof(p)));
	ck_assert_ptr_null(poolset_prefix(ps, 3));
	require_uint(poolset_pool_size(ps, 3), ==, 0);
	require_uint(poolset_pool_free(ps, 3), ==, 0);

	/* The removed pool's addresses belong to no pool now. */
	require(!poolset_contains(ps, &a));
	require(!poolset_is_free(ps, &a));
	require_int(poolset_take(ps, &a), ==, -ERANGE);
	poolset_put(ps, &a);

	/* And the prefix can come back, empty. */
	p = ip("10.0.1.0/24");
	require_int(poolset_add(ps, &p), ==, 0);
	require_int(poolset_take(ps, &a), ==, 0);
	require_uint(poolset_pool_free(ps, 3), ==, 253);
	poolset_free(ps);
}
END_TEST

START_TEST(test_nearly_full)
{
	struct poolset *ps = set_with("10.0.0.0/16", NULL);
	struct wgd_ip prefix = ip("10.0.0.0/16"), got, last;
	uint32_t off, free_off = 0;
	struct timespec t0, t1;
	double ns;
	int i;

	for (i = 0; i < 65533; i++)
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
	require_uint(poolset_pool_free(ps, 0), ==, 1);
	for (off = 1; off < 65535; off++) {
		got = ip4_at(&prefix, off);
		if (poolset_is_free(ps, &got)) {
			require_uint(free_off, ==, 0);
			free_off = off;
		}
	}
	require_uint(free_off, !=, 0);
	last = ip4_at(&prefix, free_off);

	/* The one free address is found at once, every time. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 10000; i++) {
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		require(!memcmp(&got, &last, sizeof(got)));
		poolset_put(ps, &got);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 10000;
	/* A scan of the bitmap would take tens of microseconds; the tree
	 * takes well under one, even under a sanitizer. */
	ck_assert_msg(ns < 20000, "%.0f ns per take", ns);

	require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
	require_int(poolset_take_random(ps, AF_INET, &got), ==, -ENOSPC);
	poolset_free(ps);
}
END_TEST

START_TEST(test_memory)
{
	struct poolset *ps = set_with("10.0.0.0/8", NULL);
	size_t bytes = poolset_memory(ps);

	/* Two bitmaps of 2 MiB and a tree of 128 KiB. */
	require_uint(bytes, >=, 4u << 20);
	require_uint(bytes, <=, (4u << 20) + (256u << 10));
	require_uint(poolset_pool_size(ps, 0), ==, (1u << 24) - 2);
	poolset_free(ps);
}
END_TEST

/*
 * Random operations on a bitmap pool against a plain model, one byte per
 * address. A /14 has 512 blocks, so large reservations rebuild the tree and
 * small ones update it in place.
 */
START_TEST(test_model_bitmap)
{
	enum { HOST_BITS = 18, SIZE = 1 << HOST_BITS };
	struct poolset *ps = set_with("10.64.0.0/14", NULL);
	struct wgd_ip prefix = ip("10.64.0.0/14"), a;
	uint8_t *leased = calloc(SIZE, 1), *reserved = calloc(SIZE, 1);
	uint32_t free_count = SIZE - 2, off, i;
	int op, step;

	ck_assert_ptr_nonnull(leased);
	ck_assert_ptr_nonnull(reserved);
	for (step = 0; step < 40000; step++) {
		op = (int)rng_below(100);
		if (op < 40) {
			int ret = poolset_take_random(ps, AF_INET, &a);

			if (!free_count) {
				require_int(ret, ==, -ENOSPC);
				continue;
			}
			require_int(ret, ==, 0);
			off = ip4_offset(&prefix, &a);
			require(off >= 1 && off < SIZE - 1);
			require(!leased[off] && !reserved[off]);
			leased[off] = 1;
			free_count--;
		} else if (op < 55) {
			off = (uint32_t)rng_below(SIZE);
			a = ip4_at(&prefix, off);
			if (off == 0 || off == SIZE - 1) {
				require_int(poolset_take(ps, &a), ==, -ERANGE);
			} else if (leased[off] || reserved[off]) {
				require_int(poolset_take(ps, &a), ==, -EEXIST);
			} else {
				require_int(poolset_take(ps, &a), ==, 0);
				leased[off] = 1;
				free_count--;
			}
		} else if (op < 90) {
			off = (uint32_t)rng_below(SIZE);
			a = ip4_at(&prefix, off);
			poolset_put(ps, &a);
			if (off && off != SIZE - 1 && leased[off]) {
				leased[off] = 0;
				free_count += !reserved[off];
			}
		} else if (op < 99) {
			/* Mostly small reservations, now and then one of
			 * a sixteenth of the pool or more. */
			unsigned span_bits = op == 98 ? 10 + (unsigned)rng_below(9) :
							(unsigned)rng_below(6);
			uint32_t first = (uint32_t)rng_below(SIZE) & ~((1u << span_bits) - 1);

			a = ip4_at(&prefix, first);
			a.cidr = (uint8_t)(32 - span_bits);
			poolset_reserve(ps, &a);
			for (off = first; off < first + (1u << span_bits); off++) {
				if (off == 0 || off == SIZE - 1)
					continue;
				if (!reserved[off] && !leased[off])
					free_count--;
				reserved[off] = 1;
			}
		} else {
			poolset_reserve_clear(ps);
			for (off = 1; off < SIZE - 1; off++) {
				if (reserved[off] && !leased[off])
					free_count++;
			}
			memset(reserved, 0, SIZE);
		}
		require_uint(poolset_pool_free(ps, 0), ==, free_count);

		if (step % 5000 == 4999) {
			for (i = 0; i < SIZE; i++) {
				a = ip4_at(&prefix, i);
				require(poolset_is_free(ps, &a) ==
					  (i && i != SIZE - 1 && !leased[i] && !reserved[i]));
			}
		}
	}

	/* Exhaustion takes exactly what the model calls free. */
	while (poolset_take_random(ps, AF_INET, &a) == 0) {
		off = ip4_offset(&prefix, &a);
		require(!leased[off] && !reserved[off]);
		leased[off] = 1;
		require_uint(free_count, >, 0);
		free_count--;
	}
	require_uint(free_count, ==, 0);
	free(leased);
	free(reserved);
	poolset_free(ps);
}
END_TEST

/*
 * The same for a sparse pool, with the specific takes, puts and
 * reservations kept to its first 4096 offsets, where the model can follow.
 */
START_TEST(test_model_sparse)
{
	enum { WINDOW = 4096 };
	struct poolset *ps = set_with("fd00:9::/64", NULL);
	struct wgd_ip prefix = ip("fd00:9::/64"), a;
	uint8_t leased[WINDOW] = { 0 }, reserved[WINDOW] = { 0 };
	uint64_t taken_outside = 0, used = 1, off;
	int op, step;

	for (step = 0; step < 30000; step++) {
		op = (int)rng_below(100);
		off = rng_below(WINDOW);
		a = ip6_at(&prefix, off);
		if (op < 10) {
			require_int(poolset_take_random(ps, AF_INET6, &a), ==, 0);
			/* Landing in the window is a 2^-52 chance. */
			require(!poolset_is_free(ps, &a));
			taken_outside++;
			used++;
		} else if (op < 50) {
			int ret = poolset_take(ps, &a);

			if (off == 0) {
				require_int(ret, ==, -ERANGE);
			} else if (leased[off] || reserved[off]) {
				require_int(ret, ==, -EEXIST);
			} else {
				require_int(ret, ==, 0);
				leased[off] = 1;
				used++;
			}
		} else if (op < 90) {
			poolset_put(ps, &a);
			if (off && leased[off]) {
				leased[off] = 0;
				used -= !reserved[off];
			}
		} else if (op < 99) {
			unsigned span_bits = (unsigned)rng_below(7);
			uint64_t first = off & ~((UINT64_C(1) << span_bits) - 1), o;

			a = ip6_at(&prefix, first);
			a.cidr = (uint8_t)(128 - span_bits);
			poolset_reserve(ps, &a);
			for (o = first; o < first + (UINT64_C(1) << span_bits); o++) {
				if (o && !reserved[o] && !leased[o])
					used++;
				if (o)
					reserved[o] = 1;
			}
		} else {
			poolset_reserve_clear(ps);
			for (off = 1; off < WINDOW; off++) {
				if (reserved[off] && !leased[off])
					used--;
			}
			memset(reserved, 0, sizeof(reserved));
		}
		/* used counts the never-leased offset 0 too. */
		require_uint(poolset_pool_free(ps, 0), ==, UINT64_MAX - (used - 1));
	}
	for (off = 0; off < WINDOW; off++) {
		a = ip6_at(&prefix, off);
		require(poolset_is_free(ps, &a) == (off && !leased[off] && !reserved[off]));
	}
	require_uint(taken_outside, >, 0);
	poolset_free(ps);
}
END_TEST

/*
 * rng_below() draws from a scripted source here, so that a rejection can
 * be forced: the multiply-and-shift maps r to the high word of r * bound,
 * and must draw again when the low word falls below 2^64 mod bound.
 */
static const uint64_t *script;
static size_t script_len, script_used;

static void scripted(void *buf, size_t len)
{
	uint64_t *out = buf;
	size_t i;

	/* Past the script, values that no bound rejects for long. */
	for (i = 0; i < len / sizeof(*out); i++, script_used++)
		out[i] = script_used < script_len ? script[script_used] :
			 script_used * UINT64_C(0x9e3779b97f4a7c15);
}

/* The source stays scripted until reset, so that a test can see which
 * value comes next. */
static void set_script(const uint64_t *values, size_t n)
{
	script = values;
	script_len = n;
	script_used = 0;
	rng_set_source(scripted);
}

static uint64_t below_scripted(uint64_t bound, const uint64_t *values, size_t n)
{
	set_script(values, n);
	return rng_below(bound);
}

START_TEST(test_rng_below_exact)
{
	/* 2^64 mod 3 is 1: r = 0 leaves a low word of 0 and is rejected,
	 * UINT64_MAX then gives the top of the range. */
	const uint64_t three[] = { 0, UINT64_MAX, 77 };
	/* 2^64 mod 3 * 2^62 is 2^62: 2^63 lands on a multiple of 2^64 and
	 * is rejected too; 1 is kept, and gives 0. */
	const uint64_t big[] = { 0, UINT64_C(1) << 63, 1, 78 };
	/* For the largest bound only a low word of 0 is rejected. */
	const uint64_t max[] = { 0, UINT64_MAX, 79 };
	/* Below 1 nothing is ever rejected. */
	const uint64_t one[] = { 0, 80 };
	/* Kept draws: r * bound has a high word of 500, then 0xdeadbeef. */
	const uint64_t half[] = { UINT64_C(1) << 63 | UINT64_C(1) << 53, 81 };
	const uint64_t word[] = { UINT64_C(0xdeadbeef) << 32 | 5, 82 };
	const uint64_t whole[] = { 42 };

	require_uint(below_scripted(3, three, 3), ==, 2);
	require_uint(rng_u64(), ==, 77);
	require_uint(below_scripted(UINT64_C(3) << 62, big, 4), ==, 0);
	require_uint(rng_u64(), ==, 78);
	require_uint(below_scripted(UINT64_MAX, max, 3), ==, UINT64_MAX - 1);
	require_uint(rng_u64(), ==, 79);
	require_uint(below_scripted(1, one, 2), ==, 0);
	require_uint(rng_u64(), ==, 80);
	require_uint(below_scripted(1000, half, 2), ==, 500);
	require_uint(rng_u64(), ==, 81);
	require_uint(below_scripted(UINT64_C(1) << 32, word, 2), ==, 0xdeadbeef);
	require_uint(rng_u64(), ==, 82);
	set_script(half, 2);
	require_uint(rng_range(7, 7 + 999), ==, 507);
	set_script(whole, 1);
	require_uint(rng_range(0, UINT64_MAX), ==, 42);
	rng_set_source(NULL);

	/* The keystream again. */
	require(rng_u64() != rng_u64() || rng_u64() != rng_u64());
}
END_TEST

START_TEST(test_rng_below_uniform)
{
	const uint64_t bounds[] = { 1, 2, 3, 7, 1000, (UINT64_C(1) << 32) + 1,
				    (UINT64_C(1) << 63) + 1, UINT64_MAX };
	unsigned thirds[3] = { 0 }, sixes[6] = { 0 }, i, j;

	for (i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		for (j = 0; j < 20000; j++)
			require_uint(rng_below(bounds[i]), <, bounds[i]);
	}
	require_uint(rng_range(5, 5), ==, 5);
	for (j = 0; j < 1000; j++) {
		uint64_t r = rng_range(10, 12);

		require(r >= 10 && r <= 12);
	}

	/* 60000 draws below 6: 10000 expected each, deviation 91. */
	for (j = 0; j < 60000; j++)
		sixes[rng_below(6)]++;
	for (i = 0; i < 6; i++) {
		require_uint(sixes[i], >=, 9400);
		require_uint(sixes[i], <=, 10600);
	}
	/* Below 3 * 2^62, each third of the range equally often: r % bound
	 * would put half the draws in the first third. */
	for (j = 0; j < 30000; j++)
		thirds[rng_below(UINT64_C(3) << 62) >> 62]++;
	for (i = 0; i < 3; i++) {
		require_uint(thirds[i], >=, 9400);
		require_uint(thirds[i], <=, 10600);
	}
}
END_TEST

/*
 * The sparse set through growth, deletion and churn: every offset taken is
 * found, every one put back is free, and memory stays within its bounds and
 * does not move under churn.
 */
static void sparse_churn(const char *cidr, bool wide, unsigned n)
{
	struct poolset *ps = set_with(cidr, NULL);
	struct wgd_ip *got = calloc(n, sizeof(*got)), spare;
	size_t memory, grew = 0, last = poolset_memory(ps);
	unsigned i, j;

	ck_assert_ptr_nonnull(got);
	for (i = 0; i < n; i++) {
		require_int(poolset_take_random(ps, AF_INET6, &got[i]), ==, 0);
		if (poolset_memory(ps) != last) {
			/* Everything taken so far made it through the move. */
			for (j = 0; j <= i; j++)
				require(!poolset_is_free(ps, &got[j]));
			last = poolset_memory(ps);
			grew++;
		}
	}
	require_uint(grew, >=, 3);
	/* 8 or 16 bytes a slot, up to 31/32 full, doubling. */
	require_uint(poolset_memory(ps), <=, (size_t)n * 17 * (wide ? 2 : 1));

	for (i = 0; i < n; i += 2)
		poolset_put(ps, &got[i]);
	for (i = 0; i < n; i++)
		require(poolset_is_free(ps, &got[i]) == !(i % 2));
	/* (A wide pool's count saturates.) */
	if (!wide)
		require_uint(poolset_pool_free(ps, 0), ==, UINT64_MAX - n / 2);

	/* Churn: a random lease goes, a new one comes, four times over. */
	memory = poolset_memory(ps);
	for (i = 0; i < n; i += 2)
		require_int(poolset_take_random(ps, AF_INET6, &got[i]), ==, 0);
	for (j = 0; j < 4 * n; j++) {
		i = (unsigned)rng_below(n);
		poolset_put(ps, &got[i]);
		require(poolset_is_free(ps, &got[i]));
		require_int(poolset_take_random(ps, AF_INET6, &got[i]), ==, 0);
	}
	require_uint(poolset_memory(ps), ==, memory);
	if (!wide)
		require_uint(poolset_pool_free(ps, 0), ==, UINT64_MAX - n);
	for (i = 0; i < n; i++) {
		require(!poolset_is_free(ps, &got[i]));
		require_int(poolset_take(ps, &got[i]), ==, -EEXIST);
	}
	spare = got[0];
	for (i = 0; i < n; i++)
		poolset_put(ps, &got[i]);
	require(poolset_is_free(ps, &spare));
	require_uint(poolset_pool_free(ps, 0), ==, UINT64_MAX);
	free(got);
	poolset_free(ps);
}

/*
 * Small sets fill their few buckets unevenly, so that now and then an
 * insertion's walk gives up, is undone and the set grows: nothing may be
 * lost on the way.
 */
static void sparse_small(void)
{
	struct wgd_ip got[80];
	unsigned round, i, j;

	for (round = 0; round < 2000; round++) {
		struct poolset *ps = set_with("fd00:8::/64", NULL);

		for (i = 0; i < 80; i++) {
			require_int(poolset_take_random(ps, AF_INET6, &got[i]), ==, 0);
			for (j = 0; j <= i; j++)
				require(!poolset_is_free(ps, &got[j]));
		}
		poolset_free(ps);
	}
}

START_TEST(test_sparse_growth)
{
	sparse_small();
	sparse_churn("fd00:5::/64", false, 200000);
	/* Offsets of more than 64 bits, which take a second word. */
	sparse_churn("fd00:6::/48", true, 50000);
}
END_TEST

/*
 * A draw made ahead is used only while the pools are as they were: here
 * the one other free address is taken in between, and a stale draw would
 * hand it out twice.
 */
START_TEST(test_prefetch)
{
	struct poolset *ps = set_with("10.0.0.0/30", "fd00:7::/64");
	struct wgd_ip a = ip("10.0.0.1"), b = ip("10.0.0.2"), got, whole = ip("fd00:7::/64");
	struct wgd_ip prefix = ip("10.0.0.0/28");
	unsigned counts[16] = { 0 }, i;
	bool seen[2] = { false, false };

	for (i = 0; i < 200; i++) {
		poolset_prefetch(ps, AF_INET);
		poolset_prefetch(ps, AF_INET6);
		require_int(poolset_take(ps, &a), ==, 0);
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		require(!memcmp(&got, &b, sizeof(got)));
		poolset_put(ps, &a);
		poolset_put(ps, &b);

		/* Undisturbed, a draw made ahead picks either address. */
		poolset_prefetch(ps, AF_INET);
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		seen[!memcmp(&got, &b, sizeof(got))] = true;
		poolset_put(ps, &got);
	}
	require(seen[0] && seen[1]);

	/* Taking an address of one family leaves the other's draw alone,
	 * and a reservation covering the sparse pool voids it. */
	poolset_prefetch(ps, AF_INET6);
	require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
	require_int(poolset_take_random(ps, AF_INET6, &got), ==, 0);
	require(!poolset_is_free(ps, &got));
	poolset_prefetch(ps, AF_INET6);
	poolset_reserve(ps, &whole);
	require_int(poolset_take_random(ps, AF_INET6, &got), ==, -ENOSPC);
	poolset_prefetch(ps, AF_INET6);
	poolset_prefetch(ps, AF_UNIX);
	require_int(poolset_take_random(ps, AF_INET6, &got), ==, -ENOSPC);
	poolset_free(ps);

	/* Draws made ahead are as uniform as any: 14 addresses, 4096 draws
	 * each expected, with a deviation of 62. */
	ps = set_with("10.0.0.0/28", NULL);
	for (i = 0; i < 14 * 4096; i++) {
		poolset_prefetch(ps, AF_INET);
		if (i % 3 == 0)
			poolset_prefetch(ps, AF_INET);
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
		counts[ip4_offset(&prefix, &got)]++;
		poolset_put(ps, &got);
	}
	require_uint(counts[0] + counts[15], ==, 0);
	for (i = 1; i < 15; i++) {
		require_uint(counts[i], >=, 4096 * 3 / 4);
		require_uint(counts[i], <=, 4096 * 5 / 4);
	}

	/* Down to the last address, then none. */
	for (i = 0; i < 14; i++) {
		poolset_prefetch(ps, AF_INET);
		require_int(poolset_take_random(ps, AF_INET, &got), ==, 0);
	}
	poolset_prefetch(ps, AF_INET);
	require_int(poolset_take_random(ps, AF_INET, &got), ==, -ENOSPC);
	poolset_free(ps);
}
END_TEST

static Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_prefix_rule_agrees);
	tcase_add_test(tc, test_exhaust_29);
	tcase_add_test(tc, test_small_prefixes);
	tcase_add_test(tc, test_take_put);
	tcase_add_test(tc, test_reserve);
	tcase_add_test(tc, test_uniform);
	tcase_add_test(tc, test_uniform_blocks);
	tcase_add_test(tc, test_sparse);
	tcase_add_test(tc, test_sparse_wide);
	tcase_add_test(tc, test_sparse_ipv4);
	tcase_add_test(tc, test_proportional);
	tcase_add_test(tc, test_add_remove);
	tcase_add_test(tc, test_nearly_full);
	tcase_add_test(tc, test_memory);
	tcase_add_test(tc, test_model_bitmap);
	tcase_add_test(tc, test_model_sparse);
	tcase_add_test(tc, test_rng_below_exact);
	tcase_add_test(tc, test_rng_below_uniform);
	tcase_add_test(tc, test_sparse_growth);
	tcase_add_test(tc, test_prefetch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pool_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
