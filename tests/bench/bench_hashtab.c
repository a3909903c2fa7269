// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * The hash tables, each as its module uses it, at 100,000 and 1,000,000
 * entries: insertions, lookups that hit, lookups that miss and removals,
 * in ns per operation, and bytes per entry where the module says.
 *
 *  - key index (common/keyindex.c): built once over an array of public
 *    keys, then looked up; the device view and the peer index use it;
 *  - peer index (server/peers.c): built from a device of N peers with a
 *    link-local /128 each, then looked up by link-local and by key;
 *  - lease table (server/lease.c): lease_set(), lease_find(),
 *    lease_forget(), the slab and the expiry heap included;
 *  - sparse set (server/sparse.c): the leased offsets of a /64;
 *  - device view (common/wgview.c): rebuilt from a device of N peers with
 *    an IPv4 /32 and an IPv6 /128 each (2N allowed-IPs), then the checks
 *    an update makes (check, holds, covered) and apply() removing every
 *    peer's IPv4 address and adding a fresh one; the key lookup each of
 *    these makes first is included, and so is the key index in a rebuild
 *    and in the bytes;
 *  - the generic table (common/hashtab.c) alone, over 32-byte keys, and
 *    over the offsets of the sparse set kept in an array beside it.
 *
 * Lookups go in a random order, as requests come; keys are drawn before
 * the clock starts. Figures, not pass or fail.
 *
 * Usage: bench_hashtab [MAX]   (largest size, default 1000000)
 */

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "../../common/hashtab.h"
#include "../../common/keyindex.h"
#include "../../common/rng.h"
#include "../../common/wgview.h"
#include "../../server/lease.h"
#include "../../server/peers.h"
#include "../../server/sparse.h"

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "bench_hashtab: out of memory\n");
		exit(1);
	}
	return p;
}

static void fail(const char *what)
{
	fprintf(stderr, "bench_hashtab: %s failed\n", what);
	exit(1);
}

/* A random order of 0..n-1. */
static uint32_t *shuffled(size_t n)
{
	uint32_t *order = xcalloc(n, sizeof(*order));

	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rng_below(i + 1);
		uint32_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	return order;
}

/* One figure, or "-" where a table has no such operation (negative). */
static void cell(double v)
{
	if (v < 0)
		printf(" %9s", "-");
	else
		printf(" %9.1f", v);
}

static void row(const char *table, size_t n, double ins, double hit, double miss, double del,
		double bytes)
{
	printf("%-26s %9zu", table, n);
	cell(ins);
	cell(hit);
	cell(miss);
	cell(del);
	cell(bytes);
	printf("\n");
}

static size_t sink;

static void bench_key_index(size_t n, uint8_t (*keys)[WG_KEY_LEN],
			    uint8_t (*absent)[WG_KEY_LEN], const uint32_t *order)
{
	struct key_index ki;
	double t0, ins, hit, miss;

	t0 = now_ns();
	if (key_index_build(&ki, (const uint8_t (*)[WG_KEY_LEN])keys, n))
		fail("key_index_build");
	ins = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += key_index_find(&ki, keys[order[i]]);
	hit = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += key_index_find(&ki, absent[order[i]]);
	miss = (now_ns() - t0) / (double)n;
	row("key index (build)", n, ins, hit, miss, -1, -1);
	key_index_free(&ki);
}

static void bench_peer_index(size_t n, uint8_t (*keys)[WG_KEY_LEN], const uint32_t *order)
{
	struct wgdev dev = { .n_peers = n };
	struct wgd_ip *ips = xcalloc(n + 1, sizeof(*ips));
	struct in6_addr ll = { .s6_addr = { 0xfe, 0x80 } }, *lls = xcalloc(n, sizeof(*lls));
	struct peer_index *pi;
	double t0, ins, hit, miss, byll;

	dev.peers = xcalloc(n, sizeof(*dev.peers));
	for (size_t i = 0; i < n; i++) {
		randombytes_buf(&ll.s6_addr[8], 8);
		lls[i] = ll;
		wgd_ip_host6(&ips[i], &ll);
		memcpy(dev.peers[i].pubkey, keys[i], WG_KEY_LEN);
		dev.peers[i].n_allowedips = 1;
		dev.peers[i].allowedips = &ips[i];
	}
	t0 = now_ns();
	pi = peer_index_build(&dev);
	if (!pi)
		fail("peer_index_build");
	ins = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += peer_index_find_key(pi, keys[order[i]]);
	hit = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += (size_t)peer_index_lookup(pi, &lls[order[i]]);
	byll = (now_ns() - t0) / (double)n;
	ll.s6_addr[7] = 1;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		memcpy(&ll.s6_addr[8], keys[order[i]], 8);
		sink += (size_t)peer_index_lookup(pi, &ll);
	}
	miss = (now_ns() - t0) / (double)n;
	row("peer index (build, key)", n, ins, hit, -1, -1, -1);
	row("peer index (link-local)", n, -1, byll, miss, -1, -1);
	peer_index_free(pi);
	free(dev.peers);
	free(ips);
	free(lls);
}

static void bench_lease(size_t n, uint8_t (*keys)[WG_KEY_LEN], uint8_t (*absent)[WG_KEY_LEN],
			const uint32_t *order)
{
	struct lease_table *lt = lease_table_new(NULL);
	struct lease l;
	double t0, ins, hit, miss, del, bytes;

	if (!lt)
		fail("lease_table_new");
	memset(&l, 0, sizeof(l));
	l.has_ip4 = true;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		memcpy(l.pubkey, keys[i], WG_KEY_LEN);
		l.expires = (uint32_t)i;
		if (lease_set(lt, &l))
			fail("lease_set");
	}
	ins = (now_ns() - t0) / (double)n;
	bytes = (double)lease_table_memory(lt) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += (size_t)lease_find(lt, keys[order[i]]);
	hit = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += (size_t)lease_find(lt, absent[order[i]]);
	miss = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		lease_forget(lt, keys[order[i]]);
	del = (now_ns() - t0) / (double)n;
	if (lease_count(lt))
		fail("lease_forget");
	row("lease table", n, ins, hit, miss, del, bytes);
	lease_table_free(lt);
}

static void bench_sparse(size_t n, const uint64_t *offs, const uint32_t *order)
{
	struct sparse_pool sp;
	double t0, ins, hit, miss, del, bytes;

	memset(&sp, 0, sizeof(sp));
	sp.seed = rng_u64();
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		if (sp_insert(&sp, (struct u128){ 0, offs[i] }))
			fail("sp_insert");
	}
	ins = (now_ns() - t0) / (double)n;
	bytes = (double)(sp.nbuckets * SPARSE_BUCKET_SLOTS * sizeof(uint64_t)) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += sp_leased(&sp, (struct u128){ 0, offs[order[i]] });
	hit = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		sink += sp_leased(&sp, (struct u128){ 0, offs[order[i]] ^ (UINT64_C(1) << 63) });
	miss = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		sp_remove(&sp, (struct u128){ 0, offs[order[i]] });
	del = (now_ns() - t0) / (double)n;
	if (sp.count)
		fail("sp_remove");
	row("sparse set (/64)", n, ins, hit, miss, del, bytes);
	free(sp.lo);
	free(sp.hi);
	free(sp.ranges);
}

/* Bytes the process has allocated, where the C library says. */
static double heap_bytes(void)
{
#ifdef __GLIBC__
	struct mallinfo2 mi = mallinfo2();

	return (double)(mi.uordblks + mi.hblkhd);
#else
	return -1;
#endif
}

static struct wgd_ip ip4_of(uint8_t net, size_t i)
{
	struct wgd_ip ip = { .family = AF_INET, .cidr = 32 };

	ip.bytes[0] = net;
	ip.bytes[1] = (uint8_t)(i >> 16);
	ip.bytes[2] = (uint8_t)(i >> 8);
	ip.bytes[3] = (uint8_t)i;
	return ip;
}

static struct wgd_ip ip6_of(uint8_t net)
{
	struct wgd_ip ip = { .family = AF_INET6, .cidr = 128, .bytes = { 0xfd, net } };

	randombytes_buf(&ip.bytes[8], 8);
	return ip;
}

static void bench_wgview(size_t n, uint8_t (*keys)[WG_KEY_LEN], const uint32_t *order)
{
	struct wgdev dev = { .n_peers = n };
	/* Each peer's two allowed-IPs, an address of no one, a fresh one. */
	struct wgd_ip *ips = xcalloc(2 * n, sizeof(*ips));
	struct wgd_ip *absent = xcalloc(n, sizeof(*absent));
	struct wgd_ip *fresh = xcalloc(n, sizeof(*fresh));
	struct wgview *v = wgview_new();
	double t0, heap, ins, bytes, clash, avail, held, unheld, cov, uncov, add, del;
	size_t wrong = 0;

	if (!v)
		fail("wgview_new");
	dev.peers = xcalloc(n, sizeof(*dev.peers));
	for (size_t i = 0; i < n; i++) {
		ips[2 * i] = ip4_of(10, i);
		ips[2 * i + 1] = ip6_of(0);
		absent[i] = i & 1 ? ip6_of(1) : ip4_of(11, i);
		fresh[i] = ip4_of(12, i);
		memcpy(dev.peers[i].pubkey, keys[i], WG_KEY_LEN);
		dev.peers[i].n_allowedips = 2;
		dev.peers[i].allowedips = &ips[2 * i];
	}
	heap = heap_bytes();
	t0 = now_ns();
	if (wgview_rebuild(v, &dev, 0))
		fail("wgview_rebuild");
	ins = (now_ns() - t0) / (double)(2 * n);
	bytes = heap < 0 ? -1 : (heap_bytes() - heap) / (double)(2 * n);
	/* Another peer's address, of either family: a clash. */
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		size_t p = order[i];

		wrong += wgview_check(v, keys[(p + 1) % n], &ips[2 * p + (i & 1)], 1) != -EEXIST;
	}
	clash = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		size_t p = order[i];

		wrong += wgview_check(v, keys[p], &absent[p], 1) != 0;
	}
	avail = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		size_t p = order[i];

		wrong += !wgview_holds(v, keys[p], &ips[2 * p + (i & 1)]);
	}
	held = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		size_t p = order[i];

		wrong += wgview_holds(v, keys[p], &absent[p]);
	}
	unheld = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		size_t p = order[i];

		wrong += !wgview_covered(v, keys[(p + 1) % n], &ips[2 * p + (i & 1)], 0);
	}
	cov = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		size_t p = order[i];

		wrong += wgview_covered(v, keys[p], &absent[p], 0);
	}
	uncov = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		size_t p = order[i];

		if (wgview_apply(v, keys[p], NULL, 0, &ips[2 * p], 1))
			fail("wgview_apply");
	}
	del = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		size_t p = order[i];

		if (wgview_apply(v, keys[p], &fresh[p], 1, NULL, 0))
			fail("wgview_apply");
	}
	add = (now_ns() - t0) / (double)n;
	for (size_t i = 0; i < n; i++) {
		wrong += wgview_holds(v, keys[i], &ips[2 * i]);
		wrong += !wgview_holds(v, keys[i], &ips[2 * i + 1]);
		wrong += !wgview_holds(v, keys[i], &fresh[i]);
	}
	if (wrong)
		fail("a device view lookup");
	row("view (rebuild, check)", 2 * n, ins, clash, avail, -1, bytes);
	row("view (holds)", 2 * n, -1, held, unheld, -1, -1);
	row("view (covered)", 2 * n, -1, cov, uncov, -1, -1);
	row("view (apply)", 2 * n, add, -1, -1, del, -1);
	wgview_free(v);
	free(dev.peers);
	free(ips);
	free(absent);
	free(fresh);
}

struct key_ctx {
	const uint8_t (*keys)[WG_KEY_LEN];
	const uint8_t *key;
};

static bool key_match(uint32_t idx, const void *ctx)
{
	const struct key_ctx *c = ctx;

	return !memcmp(c->keys[idx], c->key, WG_KEY_LEN);
}

static void bench_generic(size_t n, uint8_t (*keys)[WG_KEY_LEN], uint8_t (*absent)[WG_KEY_LEN],
			  const uint32_t *order)
{
	struct key_ctx ctx = { .keys = (const uint8_t (*)[WG_KEY_LEN])keys };
	struct hashtab ht;
	double t0, ins, hit, miss, del, bytes;

	if (hashtab_init(&ht))
		fail("hashtab_init");
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		if (hashtab_insert(&ht, hashtab_hash(&ht, keys[i], WG_KEY_LEN), (uint32_t)i))
			fail("hashtab_insert");
	}
	ins = (now_ns() - t0) / (double)n;
	bytes = (double)hashtab_memory(&ht) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		ctx.key = keys[order[i]];
		sink += hashtab_find(&ht, hashtab_hash(&ht, ctx.key, WG_KEY_LEN), key_match, &ctx);
	}
	hit = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		ctx.key = absent[order[i]];
		sink += hashtab_find(&ht, hashtab_hash(&ht, ctx.key, WG_KEY_LEN), key_match, &ctx);
	}
	miss = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		uint32_t idx = order[i];

		if (hashtab_remove(&ht, hashtab_hash(&ht, keys[idx], WG_KEY_LEN), idx))
			fail("hashtab_remove");
	}
	del = (now_ns() - t0) / (double)n;
	row("hashtab (32-byte keys)", n, ins, hit, miss, del, bytes);
	hashtab_free(&ht);
}

static bool off_match(uint32_t idx, const void *ctx)
{
	const uint64_t *const *q = ctx;

	return q[0][idx] == *q[1];
}

/*
 * What the sparse set would cost on the generic table: the offsets in an
 * array beside it (8 bytes each, counted), found through their positions.
 */
static void bench_generic_offsets(size_t n, const uint64_t *offs, const uint32_t *order)
{
	const uint64_t *q[2] = { offs, NULL };
	struct hashtab ht;
	double t0, ins, hit, miss, del, bytes;
	uint64_t off;

	if (hashtab_init(&ht))
		fail("hashtab_init");
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		if (hashtab_insert(&ht, hashtab_hash(&ht, &offs[i], sizeof(*offs)), (uint32_t)i))
			fail("hashtab_insert");
	}
	ins = (now_ns() - t0) / (double)n;
	bytes = (double)(hashtab_memory(&ht) + n * sizeof(*offs)) / (double)n;
	q[1] = &off;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		off = offs[order[i]];
		sink += hashtab_find(&ht, hashtab_hash(&ht, &off, sizeof(off)), off_match, q);
	}
	hit = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		off = offs[order[i]] ^ (UINT64_C(1) << 63);
		sink += hashtab_find(&ht, hashtab_hash(&ht, &off, sizeof(off)), off_match, q);
	}
	miss = (now_ns() - t0) / (double)n;
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		uint32_t idx = order[i];

		if (hashtab_remove(&ht, hashtab_hash(&ht, &offs[idx], sizeof(*offs)), idx))
			fail("hashtab_remove");
	}
	del = (now_ns() - t0) / (double)n;
	row("hashtab (offset array)", n, ins, hit, miss, del, bytes);
	hashtab_free(&ht);
}

int main(int argc, char *argv[])
{
	size_t max = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	size_t sizes[] = { max / 10, max };

	if (sodium_init() < 0 || max < 10)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("%-26s %9s %9s %9s %9s %9s %9s\n", "table", "entries", "insert", "hit", "miss",
	       "delete", "B/entry");
	printf("%-26s %9s %9s %9s %9s %9s %9s\n", "", "", "ns", "ns", "ns", "ns", "");
	for (size_t s = 0; s < 2; s++) {
		size_t n = sizes[s];
		uint8_t (*keys)[WG_KEY_LEN] = xcalloc(n, WG_KEY_LEN);
		uint8_t (*absent)[WG_KEY_LEN] = xcalloc(n, WG_KEY_LEN);
		uint64_t *offs = xcalloc(n, sizeof(*offs));
		uint32_t *order = shuffled(n);

		randombytes_buf(keys, n * WG_KEY_LEN);
		randombytes_buf(absent, n * WG_KEY_LEN);
		for (size_t i = 0; i < n; i++)
			offs[i] = (rng_u64() >> 1) | 1; /* nonzero, and top bit clear */
		bench_key_index(n, keys, absent, order);
		bench_peer_index(n, keys, order);
		bench_lease(n, keys, absent, order);
		bench_sparse(n, offs, order);
		bench_wgview(n, keys, order);
		bench_generic(n, keys, absent, order);
		bench_generic_offsets(n, offs, order);
		free(keys);
		free(absent);
		free(offs);
		free(order);
	}
	printf("# (%zu)\n", sink & 1);
	return 0;
}
