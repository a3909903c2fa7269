// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * The cost of handing out addresses, and the memory a lease takes:
 *
 *  1. poolset_take_random() filling a /16 to 90 %, in rounds on fresh pools;
 *  2. poolset_take_random() alone, 1,000,000 addresses from a /8 and from
 *     an IPv6 /64;
 *  3. lease_request(), the server's grant path, for 1,000,000 new peers
 *     with random public keys, each given an address from a /8 and one
 *     from a /64; then, every lease released, for 1,000,000 more;
 *  4. 2,000,000 churn cycles at 100,000 live leases: a random live lease
 *     is released and a new peer is granted one.
 *
 * Times are per operation, for the first, middle and last tenth of each
 * run. Memory is what the modules account for (lease_table_memory(),
 * poolset_memory()), what malloc holds (mallinfo2()) and the resident set
 * (/proc/self/statm, after malloc_trim()), each as the growth over the
 * run's start, per live lease. Keys and victims are drawn outside the
 * timed stretches. The header gives the cost of a page fault, which the
 * first fill of a table pays for every page it touches.
 *
 * Usage: bench_pool [ROUNDS]   (rounds of part 1, default 20)
 */

#include <arpa/inet.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "../../common/rng.h"
#include "../../server/lease.h"
#include "../../server/pool.h"

#define CHUNK 10000
#define FILL_HOST_BITS 16
#define FILL_PERCENT 90
#define LEASES 1000000
#define LIVE 100000
#define CHURN 2000000
#define LEASE_TIME 3600

/* Measured with upstream wg-dynamic's server on the machine these figures
 * were first taken on; kept as text to read the rows against. */
static const char reference[] =
	"upstream wg-dynamic: 0.6-1.3 us per allocation, about 400 B per full lease,\n"
	"#   memory growing without bound under churn, from 460 to more than 1,200 B\n"
	"#   per live lease";

static const char targets[] =
	"<= 150 ns per IPv4 or IPv6 allocation at any fill level; <= 120 B per lease at\n"
	"#   1,000,000 leases, everything included; memory flat under churn";

/* The first, middle and last tenth of a run. */
enum { PH_FIRST, PH_HALF, PH_END, PHASES };
static const char *const phase_names[PHASES] = { "first tenth", "around half", "last tenth" };

/* New keys and churn victims, a chunk at a time; touched before any
 * memory is measured. */
static uint8_t keys[CHUNK][WG_KEY_LEN];
static uint32_t victims[CHUNK];

struct phases {
	double ns[PHASES];
	size_t ops[PHASES];
};

struct mem {
	size_t modules, heap, rss;
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Which phase the operations [done, done + n) of total fall in, or -1. The
 * chunks are chosen so that none straddles a boundary. */
static int phase_of(size_t done, size_t total)
{
	if (done < total / 10)
		return PH_FIRST;
	if (done >= total * 9 / 20 && done < total * 11 / 20)
		return PH_HALF;
	if (done >= total - total / 10)
		return PH_END;
	return -1;
}

static void phases_add(struct phases *ph, size_t done, size_t total, size_t n, double ns)
{
	int p = phase_of(done, total);

	if (p < 0)
		return;
	ph->ns[p] += ns;
	ph->ops[p] += n;
}

static double per_op(const struct phases *ph, int p)
{
	return ph->ops[p] ? ph->ns[p] / (double)ph->ops[p] : 0;
}

static void print_machine(void)
{
	char line[512], model[256] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *colon = strchr(line, ':');

			if (strncmp(line, "model name", 10) || !colon)
				continue;
			snprintf(model, sizeof(model), "%s", colon + 2);
			model[strcspn(model, "\n")] = '\0';
			break;
		}
		fclose(f);
	}
	printf("# machine: %s, %ld CPUs online\n", model, sysconf(_SC_NPROCESSORS_ONLN));
}

/* What touching fresh memory costs here: a page fault per page, a few
 * hundred nanoseconds on bare metal, far more under some hypervisors. */
static void print_first_touch(void)
{
	size_t size = 64u << 20, page = (size_t)sysconf(_SC_PAGESIZE);
	volatile char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	double t0;

	if (p == MAP_FAILED)
		return;
	t0 = now_ns();
	for (size_t i = 0; i < size; i += page)
		p[i] = 1;
	printf("# first touch of fresh memory: %.0f ns per %zu-byte page\n",
	       (now_ns() - t0) / (double)(size / page), page);
	munmap((void *)p, size);
}

static size_t rss_bytes(void)
{
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	return n == 2 ? resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

static size_t heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
#else
	return 0;
#endif
}

static struct mem mem_now(const struct lease_table *lt, const struct poolset *ps)
{
	/* What malloc keeps of freed tables is the allocator's, not ours:
	 * give it back before the resident set is read. */
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	return (struct mem){
		.modules = (lt ? lease_table_memory(lt) : 0) + (ps ? poolset_memory(ps) : 0),
		.heap = heap_bytes(),
		.rss = rss_bytes(),
	};
}

static double per_lease(size_t now, size_t base, size_t n)
{
	return now > base ? (double)(now - base) / (double)n : 0;
}

/* Three columns of bytes per lease: modules, malloc, RSS. */
static void print_mem(const struct mem *m, const struct mem *base, size_t n)
{
	printf(" %10.1f %10.1f %10.1f\n", per_lease(m->modules, base->modules, n),
	       per_lease(m->heap, base->heap, n), per_lease(m->rss, base->rss, n));
}

static void add_pool(struct poolset *ps, const char *cidr)
{
	struct wgd_ip p;

	if (wgd_ip_parse(&p, cidr, strlen(cidr), true) || poolset_add(ps, &p)) {
		fprintf(stderr, "bench_pool: cannot add pool %s\n", cidr);
		exit(1);
	}
}

static struct poolset *pools_of(const char *a, const char *b)
{
	struct poolset *ps = poolset_new();

	if (!ps) {
		fprintf(stderr, "bench_pool: out of memory\n");
		exit(1);
	}
	add_pool(ps, a);
	if (b)
		add_pool(ps, b);
	return ps;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* 1: a /16 filled to 90 %, rounds times; best and median per phase. */
static int bench_fill(unsigned rounds)
{
	size_t total = ((UINT32_C(1) << FILL_HOST_BITS) - 2) * FILL_PERCENT / 100;
	size_t chunk = total / 20;
	double *ns[PHASES];
	struct wgd_ip got;
	int p;

	for (p = 0; p < PHASES; p++) {
		ns[p] = calloc(rounds, sizeof(double));
		if (!ns[p])
			return -1;
	}
	for (unsigned r = 0; r < rounds; r++) {
		struct poolset *ps = pools_of("10.0.0.0/16", NULL);
		struct phases ph = { { 0 }, { 0 } };

		for (size_t done = 0; done < total; done += chunk) {
			size_t n = done + chunk <= total ? chunk : total - done;
			double t0 = now_ns();

			for (size_t i = 0; i < n; i++) {
				if (poolset_take_random(ps, AF_INET, &got))
					return -1;
			}
			phases_add(&ph, done, total, n, now_ns() - t0);
		}
		for (p = 0; p < PHASES; p++)
			ns[p][r] = per_op(&ph, p);
		poolset_free(ps);
	}
	printf("\n## poolset_take_random: %zu /32s from a /16, to %d %% full; %u rounds\n",
	       total, FILL_PERCENT, rounds);
	printf("%-28s %10s %10s\n", "phase", "best ns", "median ns");
	for (p = 0; p < PHASES; p++) {
		qsort(ns[p], rounds, sizeof(double), cmp_double);
		printf("%-28s %10.1f %10.1f\n", phase_names[p], ns[p][0], ns[p][rounds / 2]);
		free(ns[p]);
	}
	return 0;
}

/* 2: the allocations alone, one family at a time. */
static int bench_take(const char *cidr, int family)
{
	struct poolset *ps = pools_of(cidr, NULL);
	struct phases ph = { { 0 }, { 0 } };
	struct wgd_ip got;

	for (size_t done = 0; done < LEASES; done += CHUNK) {
		double t0 = now_ns();

		for (size_t i = 0; i < CHUNK; i++) {
			if (poolset_take_random(ps, family, &got)) {
				poolset_free(ps);
				return -1;
			}
		}
		phases_add(&ph, done, LEASES, CHUNK, now_ns() - t0);
	}
	printf("%-16s %12.1f %12.1f %12.1f %10.1f\n", cidr, per_op(&ph, PH_FIRST),
	       per_op(&ph, PH_HALF), per_op(&ph, PH_END),
	       (double)poolset_memory(ps) / LEASES);
	poolset_free(ps);
	return 0;
}

static struct wgd_msg request_both(void)
{
	struct wgd_msg m;

	memset(&m, 0, sizeof(m));
	m.cmd = WGD_CMD_REQUEST_IP;
	m.version = 1;
	m.has_ip4 = m.has_ip6 = true;
	m.ip4.family = AF_INET;
	m.ip4.cidr = 32;
	m.ip6.family = AF_INET6;
	m.ip6.cidr = 128;
	return m;
}

static const struct in6_addr lladdr = { .s6_addr = { 0xfe, 0x80, [15] = 1 } };

/* A grant of both families to a new peer; the clock moves a second per
 * thousand requests. */
static int grant(struct lease_table *lt, const uint8_t *key, size_t seq)
{
	static struct wgd_msg resp;
	const struct wgd_msg req = request_both();
	struct lease_clock now = { .real = 1700000000u + (uint32_t)(seq / 1000),
				   .boot = 1000 + seq / 1000 };
	struct wgdev_change change;

	if (lease_request(lt, key, &lladdr, &req, LEASE_TIME, &now, &resp, &change) ||
	    change.n_add != 2)
		return -1;
	return 0;
}

/* Grants LEASES new peers, timing each phase. */
static int fill(struct lease_table *lt, size_t *seq, struct phases *ph)
{
	for (size_t done = 0; done < LEASES; done += CHUNK) {
		double t0;

		randombytes_buf(keys, sizeof(keys));
		t0 = now_ns();
		for (size_t i = 0; i < CHUNK; i++) {
			if (grant(lt, keys[i], (*seq)++))
				return -1;
		}
		phases_add(ph, done, LEASES, CHUNK, now_ns() - t0);
	}
	return lease_count(lt) == LEASES ? 0 : -1;
}

/*
 * 3: a million peers through the grant path, into a new table, then again
 * into the same table once every lease has been released: the second time
 * no table grows and no memory is touched for the first time.
 */
static int bench_leases(void)
{
	struct phases first = { { 0 }, { 0 } }, again = { { 0 }, { 0 } };
	struct mem base = mem_now(NULL, NULL), m;
	struct poolset *ps = pools_of("10.0.0.0/8", "fd00:1:2:3::/64");
	struct lease_table *lt = lease_table_new(ps);
	struct wgdev_change change;
	struct lease *l;
	size_t seq = 0;

	if (!lt || fill(lt, &seq, &first))
		return -1;
	m = mem_now(lt, ps);
	while ((l = lease_first_expiry(lt)))
		lease_release(lt, l, &change);
	if (fill(lt, &seq, &again))
		return -1;

	printf("\n## lease_request: %d new peers, an IPv4 from a /8 and an IPv6 from a /64 each\n",
	       LEASES);
	printf("%-28s %21s %21s\n", "", "into a new table", "after releasing all");
	printf("%-28s %10s %10s %10s %10s\n", "phase", "ns/request", "ns/address", "ns/request",
	       "ns/address");
	for (int p = 0; p < PHASES; p++)
		printf("%-28s %10.1f %10.1f %10.1f %10.1f\n", phase_names[p], per_op(&first, p),
		       per_op(&first, p) / 2, per_op(&again, p), per_op(&again, p) / 2);
	printf("\n%-28s %10s %10s %10s\n", "B/lease at 1,000,000", "modules", "malloc", "RSS");
	printf("%-28s", "everything");
	print_mem(&m, &base, LEASES);
	printf("%-28s %10.1f\n", "  lease table", (double)lease_table_memory(lt) / LEASES);
	printf("%-28s %10.1f\n", "  pools", (double)poolset_memory(ps) / LEASES);
	printf("%-28s %10zu\n", "  sizeof(struct lease)", sizeof(struct lease));
	printf("# into a new table, each request also touches about 130 bytes of memory for\n"
	       "#   the first time (first touch, above), and the key index and the /64's set\n"
	       "#   double in the middle tenth; 1,000,000 leases fill 95 %% of 2^20 slots\n");
	lease_table_free(lt);
	poolset_free(ps);
	return 0;
}

/* 4: churn at a steady number of live leases. */
static int bench_churn(void)
{
	uint8_t (*live)[WG_KEY_LEN] = calloc(LIVE, WG_KEY_LEN);
	struct phases ph = { { 0 }, { 0 } };
	struct mem base, before, m;
	struct poolset *ps;
	struct lease_table *lt;
	struct wgdev_change change;
	size_t seq = 0, quarter_ops = 0;
	double quarter_ns = 0;

	if (!live)
		return -1;
	base = mem_now(NULL, NULL);
	ps = pools_of("10.0.0.0/8", "fd00:1:2:3::/64");
	lt = lease_table_new(ps);
	if (!lt)
		return -1;
	randombytes_buf(live, (size_t)LIVE * WG_KEY_LEN);
	for (size_t i = 0; i < LIVE; i++) {
		if (grant(lt, live[i], seq++))
			return -1;
	}
	before = mem_now(lt, ps);

	printf("\n## churn: %d cycles at %d live leases (release a random one, grant a new peer)\n",
	       CHURN, LIVE);
	printf("%-28s %10s %10s %10s %10s\n", "cycles done", "ns/cycle", "modules", "malloc",
	       "RSS");
	printf("%-28s %10s", "0", "");
	print_mem(&before, &base, LIVE);
	for (size_t done = 0; done < CHURN; done += CHUNK) {
		double t0;

		randombytes_buf(keys, sizeof(keys));
		for (size_t i = 0; i < CHUNK; i++)
			victims[i] = (uint32_t)rng_below(LIVE);
		t0 = now_ns();
		for (size_t i = 0; i < CHUNK; i++) {
			uint8_t *key = live[victims[i]];
			struct lease *l = lease_find(lt, key);

			if (!l)
				return -1;
			lease_release(lt, l, &change);
			memcpy(key, keys[i], WG_KEY_LEN);
			if (grant(lt, key, seq++))
				return -1;
		}
		t0 = now_ns() - t0;
		phases_add(&ph, done, CHURN, CHUNK, t0);
		quarter_ns += t0;
		quarter_ops += CHUNK;
		if ((done + CHUNK) % (CHURN / 4) == 0) {
			char label[32];

			m = mem_now(lt, ps);
			snprintf(label, sizeof(label), "%zu", done + CHUNK);
			printf("%-28s %10.1f", label, quarter_ns / (double)quarter_ops);
			print_mem(&m, &base, LIVE);
			quarter_ns = 0;
			quarter_ops = 0;
		}
	}
	if (lease_count(lt) != LIVE)
		return -1;
	printf("%-28s %10s\n", "phase", "ns/cycle");
	for (int p = 0; p < PHASES; p++)
		printf("%-28s %10.1f\n", phase_names[p], per_op(&ph, p));
	lease_table_free(lt);
	poolset_free(ps);
	free(live);
	return 0;
}

/* Whether the keyed hash of the lease table matters: SipHash-2-4 of one
 * 32-byte key. */
static void bench_hash(void)
{
	uint8_t k[crypto_shorthash_KEYBYTES], h[crypto_shorthash_BYTES];
	uint64_t sink = 0, x;
	double t0, ns;

	crypto_shorthash_keygen(k);
	randombytes_buf(keys, sizeof(keys));
	t0 = now_ns();
	for (int r = 0; r < 100; r++) {
		for (size_t i = 0; i < CHUNK; i++) {
			crypto_shorthash(h, keys[i], WG_KEY_LEN, k);
			memcpy(&x, h, sizeof(x));
			sink += x;
		}
	}
	ns = (now_ns() - t0) / (100.0 * CHUNK);
	printf("\n## crypto_shorthash (SipHash-2-4) of a 32-byte key: %.1f ns (%llu)\n", ns,
	       (unsigned long long)(sink & 1));
}

int main(int argc, char *argv[])
{
	unsigned rounds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 20;

	if (sodium_init() < 0 || !rounds)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(keys, 0, sizeof(keys));
	memset(victims, 0, sizeof(victims));
	print_machine();
	print_first_touch();
	printf("# reference, %s\n", reference);
	printf("# targets: %s\n", targets);

	if (bench_fill(rounds))
		goto fail;
	printf("\n## poolset_take_random alone: %d addresses from one pool\n", LEASES);
	printf("%-16s %12s %12s %12s %10s\n", "pool", "first ns", "half ns", "last ns",
	       "B/address");
	if (bench_take("10.0.0.0/8", AF_INET) || bench_take("fd00:1:2:3::/64", AF_INET6))
		goto fail;
	printf("# the /64's set of leased offsets doubles at 507,904, in the middle tenth\n");
	if (bench_leases())
		goto fail;
	if (bench_churn())
		goto fail;
	bench_hash();
	return 0;
fail:
	fprintf(stderr, "bench_pool: an operation failed\n");
	return 1;
}
