// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../../server/lease.h"

static struct poolset *ps;
static struct lease_table *lt;
static const struct in6_addr ll = { .s6_addr = { 0xfe, 0x80, [15] = 1 } };

static struct wgd_ip prefix(const char *s)
{
	struct wgd_ip ip;

	ck_assert_int_eq(wgd_ip_parse(&ip, s, strlen(s), true), 0);
	return ip;
}

static void setup(void)
{
	struct wgd_ip p4 = prefix("10.0.0.0/24"), p6 = prefix("fd00::/64");

	ps = poolset_new();
	ck_assert_ptr_nonnull(ps);
	ck_assert_int_eq(poolset_add(ps, &p4), 0);
	ck_assert_int_eq(poolset_add(ps, &p6), 0);
	lt = lease_table_new(ps);
	ck_assert_ptr_nonnull(lt);
}

static void teardown(void)
{
	lease_table_free(lt);
	poolset_free(ps);
}

static void key_of(uint8_t key[WG_KEY_LEN], unsigned n)
{
	memset(key, 0, WG_KEY_LEN);
	memcpy(key, &n, sizeof(n));
	key[31] = 0x40;
}

static struct wgd_msg req_any(bool v4, bool v6)
{
	struct wgd_msg m;

	memset(&m, 0, sizeof(m));
	m.cmd = WGD_CMD_REQUEST_IP;
	m.version = 1;
	m.has_ip4 = v4;
	m.has_ip6 = v6;
	m.ip4.family = AF_INET;
	m.ip4.cidr = 32;
	m.ip6.family = AF_INET6;
	m.ip6.cidr = 128;
	return m;
}

static int ask(unsigned peer, const struct wgd_msg *req, uint64_t boot, struct wgd_msg *resp,
	       struct wgdev_change *c)
{
	struct lease_clock now = { .real = 1700000000 + (uint32_t)boot, .boot = boot };
	uint8_t key[WG_KEY_LEN];

	key_of(key, peer);
	memset(resp, 0, sizeof(*resp));
	return lease_request(lt, key, &ll, req, 60, &now, resp, c);
}

START_TEST(grant_both_families)
{
	struct wgd_msg req = req_any(true, true), resp;
	struct wgdev_change c;
	struct wgd_ip p4 = prefix("10.0.0.0/24"), p6 = prefix("fd00::/64");
	uint8_t key[WG_KEY_LEN];

	ck_assert_int_eq(ask(1, &req, 100, &resp, &c), 0);
	ck_assert(resp.has_ip4 && resp.has_ip6);
	ck_assert_uint_eq(resp.err, 0);
	ck_assert(wgd_ip_contains(&p4, &resp.ip4));
	ck_assert(wgd_ip_contains(&p6, &resp.ip6));
	ck_assert_uint_eq(resp.ip4.cidr, 32);
	ck_assert_uint_eq(resp.ip6.cidr, 128);
	ck_assert_uint_eq(resp.leasetime, 60);
	ck_assert_uint_eq(resp.leasestart, 1700000100);
	/* The change is the peer's, its additions the addresses granted. */
	key_of(key, 1);
	ck_assert_mem_eq(c.pubkey, key, WG_KEY_LEN);
	ck_assert_uint_eq(c.n_add, 2);
	ck_assert_uint_eq(c.n_del, 0);
	ck_assert(wgd_ip_equal(&c.add[0], &resp.ip4));
	ck_assert(wgd_ip_equal(&c.add[1], &resp.ip6));
	ck_assert(!poolset_is_free(ps, &resp.ip4));
	ck_assert_uint_eq(lease_count(lt), 1);
}
END_TEST

START_TEST(renewal_keeps_addresses_and_changes_nothing)
{
	struct wgd_msg req = req_any(true, true), resp, again;
	struct wgdev_change c;

	ck_assert_int_eq(ask(1, &req, 100, &resp, &c), 0);
	req.ip4 = resp.ip4;
	req.ip6 = resp.ip6;
	ck_assert_int_eq(ask(1, &req, 130, &again, &c), 0);
	ck_assert(wgd_ip_equal(&again.ip4, &resp.ip4));
	ck_assert(wgd_ip_equal(&again.ip6, &resp.ip6));
	ck_assert_uint_eq(again.leasestart, 1700000130);
	ck_assert_uint_eq(c.n_add + c.n_del, 0);
	ck_assert_uint_eq(lease_first_expiry(lt)->expires, 190);

	/* Asking for "any" again also keeps what is held. */
	req = req_any(true, true);
	ck_assert_int_eq(ask(1, &req, 170, &again, &c), 0);
	ck_assert(wgd_ip_equal(&again.ip4, &resp.ip4));
	ck_assert_uint_eq(c.n_add + c.n_del, 0);
}
END_TEST

/*
 * Asked again before 40 % of the lease (less the second the whole-second
 * clock may be off), the lease comes back as it stands:
 * the same addresses, leasestart now and leasetime what is left, so that it
 * ends when it did; nothing recorded, nothing for the device.
 */
START_TEST(repeat_before_t1_answered_as_it_stands)
{
	struct wgd_msg req = req_any(true, true), any = req, only4 = req_any(true, false);
	struct wgd_msg resp, again;
	struct wgdev_change c;

	ck_assert_int_eq(ask(1, &req, 100, &resp, &c), 0);
	req.ip4 = resp.ip4;
	req.ip6 = resp.ip6;
	for (uint64_t t = 100; t <= 122; t += 22) {
		ck_assert_int_eq(ask(1, &req, t, &again, &c), LEASE_AS_IS);
		ck_assert(again.has_ip4 && again.has_ip6);
		ck_assert(wgd_ip_equal(&again.ip4, &resp.ip4));
		ck_assert(wgd_ip_equal(&again.ip6, &resp.ip6));
		ck_assert_uint_eq(again.leasestart, 1700000000 + t);
		ck_assert_uint_eq(again.leasetime, 160 - t);
		ck_assert_uint_eq(again.err, 0);
		ck_assert_uint_eq(c.n_add + c.n_del, 0);
		ck_assert_uint_eq(lease_first_expiry(lt)->expires, 160);
	}
	/* "Any" of each family is the lease too. */
	ck_assert_int_eq(ask(1, &any, 110, &again, &c), LEASE_AS_IS);
	ck_assert(wgd_ip_equal(&again.ip4, &resp.ip4));

	/* Anything else takes the full path: another address... */
	req.ip4 = prefix("10.0.0.200/32");
	ck_assert_int_eq(ask(1, &req, 111, &again, &c), 0);
	ck_assert_uint_eq(c.n_add, 1);
	ck_assert_uint_eq(c.n_del, 1);
	req.ip4 = again.ip4;
	/* ...a family given up... */
	ck_assert_int_eq(ask(1, &only4, 112, &again, &c), 0);
	ck_assert(!again.has_ip6);
	ck_assert_uint_eq(c.n_del, 1);
	/* ...or one not held, even right after. */
	ck_assert_int_eq(ask(1, &any, 113, &again, &c), 0);
	ck_assert(again.has_ip6);
	ck_assert_uint_eq(c.n_add, 1);
	ck_assert_uint_eq(lease_first_expiry(lt)->expires, 173);

	/* From 40 % on, a renewal: the lease runs from now. */
	ck_assert_int_eq(ask(1, &any, 137, &again, &c), 0);
	ck_assert_uint_eq(again.leasetime, 60);
	ck_assert_uint_eq(lease_first_expiry(lt)->expires, 197);
	ck_assert_uint_eq(c.n_add + c.n_del, 0);
}
END_TEST

START_TEST(requested_address_granted_when_free)
{
	struct wgd_msg req = req_any(true, false), resp;
	struct wgdev_change c;

	req.ip4 = prefix("10.0.0.77/32");
	ck_assert_int_eq(ask(1, &req, 1, &resp, &c), 0);
	ck_assert(wgd_ip_equal(&resp.ip4, &req.ip4));
	ck_assert(!resp.has_ip6);

	/* Moving to another free address releases the old one. */
	req.ip4 = prefix("10.0.0.78/32");
	ck_assert_int_eq(ask(1, &req, 2, &resp, &c), 0);
	ck_assert(wgd_ip_equal(&resp.ip4, &req.ip4));
	ck_assert_uint_eq(c.n_add, 1);
	ck_assert_uint_eq(c.n_del, 1);
	ck_assert(wgd_ip_equal(&c.del[0], &(struct wgd_ip){ 0 }) == false);
	struct wgd_ip old = prefix("10.0.0.77/32");
	ck_assert(wgd_ip_equal(&c.del[0], &old));
	ck_assert(poolset_is_free(ps, &old));
}
END_TEST

START_TEST(taken_address_not_given_twice)
{
	struct wgd_msg req = req_any(true, false), r1, r2;
	struct wgdev_change c;

	req.ip4 = prefix("10.0.0.9/32");
	ck_assert_int_eq(ask(1, &req, 1, &r1, &c), 0);
	ck_assert_int_eq(ask(2, &req, 1, &r2, &c), 0);
	ck_assert(wgd_ip_equal(&r1.ip4, &req.ip4));
	ck_assert(r2.has_ip4);
	ck_assert(!wgd_ip_equal(&r2.ip4, &req.ip4));
	ck_assert_uint_eq(r2.err, 0);
}
END_TEST

START_TEST(release_all_and_one_family)
{
	struct wgd_msg req = req_any(true, true), resp;
	struct wgdev_change c;
	struct wgd_ip ip4, ip6;

	ck_assert_int_eq(ask(1, &req, 1, &resp, &c), 0);
	ip4 = resp.ip4;
	ip6 = resp.ip6;

	/* Leaving IPv6 out releases it. */
	req = req_any(true, false);
	req.ip4 = ip4;
	ck_assert_int_eq(ask(1, &req, 2, &resp, &c), 0);
	ck_assert(resp.has_ip4 && !resp.has_ip6);
	ck_assert_uint_eq(c.n_del, 1);
	ck_assert(wgd_ip_equal(&c.del[0], &ip6));
	ck_assert(poolset_is_free(ps, &ip6));

	req = req_any(false, false);
	ck_assert_int_eq(ask(1, &req, 3, &resp, &c), 0);
	ck_assert(!resp.has_ip4 && !resp.has_ip6);
	ck_assert_uint_eq(resp.err, 0);
	ck_assert_uint_eq(c.n_del, 1);
	ck_assert(wgd_ip_equal(&c.del[0], &ip4));
	ck_assert_uint_eq(lease_count(lt), 0);

	/* Releasing nothing is fine. */
	ck_assert_int_eq(ask(1, &req, 4, &resp, &c), 0);
	ck_assert_uint_eq(c.n_del + c.n_add, 0);
}
END_TEST

START_TEST(exhausted_family_is_errno_3)
{
	struct poolset *small = poolset_new();
	struct lease_table *t = lease_table_new(small);
	struct wgd_ip one = prefix("10.9.0.5/32"), p6 = prefix("fd09::/64");
	struct lease_clock now = { 1, 1 };
	struct wgd_msg req = req_any(true, true), resp;
	struct wgdev_change c;
	uint8_t k1[WG_KEY_LEN], k2[WG_KEY_LEN];

	ck_assert_int_eq(poolset_add(small, &one), 0);
	ck_assert_int_eq(poolset_add(small, &p6), 0);
	key_of(k1, 1);
	key_of(k2, 2);
	ck_assert_int_eq(lease_request(t, k1, &ll, &req, 60, &now, &resp, &c), 0);
	ck_assert(resp.has_ip4 && wgd_ip_equal(&resp.ip4, &one));
	memset(&resp, 0, sizeof(resp));
	ck_assert_int_eq(lease_request(t, k2, &ll, &req, 60, &now, &resp, &c), 0);
	ck_assert(!resp.has_ip4);
	ck_assert(resp.has_ip6);
	ck_assert_uint_eq(resp.err, WGD_E_UNAVAILABLE);
	ck_assert_str_eq(resp.errmsg, "No IPv4 address is free");
	lease_table_free(t);
	poolset_free(small);
}
END_TEST

START_TEST(quarantine_holds_addresses_back)
{
	struct wgd_msg req = req_any(true, true), resp;
	struct wgdev_change c;
	uint8_t key[WG_KEY_LEN];
	struct wgd_ip ip4, ip6;

	ck_assert_int_eq(ask(1, &req, 1, &resp, &c), 0);
	ip4 = resp.ip4;
	ip6 = resp.ip6;
	key_of(key, 1);
	lease_release_quarantine(lt, lease_find(lt, key), 100, &c);
	ck_assert_mem_eq(c.pubkey, key, WG_KEY_LEN);
	ck_assert_uint_eq(c.n_add, 0);
	ck_assert_uint_eq(c.n_del, 2);
	ck_assert_uint_eq(lease_count(lt), 0);
	ck_assert_uint_eq(lease_quarantine_count(lt), 2);
	ck_assert(!poolset_is_free(ps, &ip4));
	ck_assert(!poolset_is_free(ps, &ip6));
	ck_assert_uint_eq(lease_quarantine_next(lt), 100);

	/* Asked for by another peer within the quarantine: not given. */
	req.ip4 = ip4;
	ck_assert_int_eq(ask(2, &req, 50, &resp, &c), 0);
	ck_assert(!wgd_ip_equal(&resp.ip4, &ip4));

	ck_assert_uint_eq(lease_quarantine_expire(lt, 99), 0);
	ck_assert_uint_eq(lease_quarantine_expire(lt, 100), 2);
	ck_assert(poolset_is_free(ps, &ip4));
	ck_assert(poolset_is_free(ps, &ip6));
	ck_assert_uint_eq(lease_quarantine_next(lt), UINT64_MAX);
}
END_TEST

START_TEST(quarantine_stays_sorted)
{
	struct wgd_ip a = prefix("10.0.0.1/32");
	uint64_t until;

	ck_assert_int_eq(lease_quarantine_addr(lt, &a, 30), 0);
	ck_assert_int_eq(lease_quarantine_addr(lt, &a, 10), 0);
	ck_assert_int_eq(lease_quarantine_addr(lt, &a, 20), 0);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_ptr_nonnull(lease_quarantine_get(lt, i, &until));
		ck_assert_uint_eq(until, 10 * (i + 1));
	}
	ck_assert_ptr_null(lease_quarantine_get(lt, 3, &until));
}
END_TEST

START_TEST(replay_set_and_forget)
{
	struct lease l;
	uint8_t key[WG_KEY_LEN];

	memset(&l, 0, sizeof(l));
	key_of(l.pubkey, 3);
	l.has_ip4 = true;
	l.expires = 10;
	ck_assert_int_eq(lease_set(lt, &l), 0);
	l.expires = 5;
	ck_assert_int_eq(lease_set(lt, &l), 0);
	ck_assert_uint_eq(lease_count(lt), 1);
	ck_assert_uint_eq(lease_first_expiry(lt)->expires, 5);
	key_of(key, 3);
	lease_forget(lt, key);
	ck_assert_uint_eq(lease_count(lt), 0);
}
END_TEST

START_TEST(address_outside_pools_is_not_renewed)
{
	struct wgd_msg req = req_any(true, false), resp;
	struct wgdev_change c;
	struct wgd_ip p4 = prefix("10.0.0.0/24"), p5 = prefix("10.5.0.0/24");

	ck_assert_int_eq(ask(1, &req, 1, &resp, &c), 0);
	ck_assert_int_eq(poolset_remove(ps, &p4), 0);
	ck_assert_int_eq(poolset_add(ps, &p5), 0);
	req.ip4 = resp.ip4;
	struct wgd_ip old = resp.ip4;
	ck_assert_int_eq(ask(1, &req, 2, &resp, &c), 0);
	ck_assert(wgd_ip_contains(&p5, &resp.ip4));
	ck_assert_uint_eq(c.n_del, 1);
	ck_assert(wgd_ip_equal(&c.del[0], &old));
}
END_TEST

START_TEST(many_peers_unique_and_expiry_order)
{
	struct wgd_msg req = req_any(true, true), resp;
	struct wgdev_change c;
	uint8_t key[WG_KEY_LEN];
	uint32_t seen[256] = { 0 };

	for (unsigned i = 0; i < 200; i++) {
		ck_assert_int_eq(ask(i, &req, 1000 - i, &resp, &c), 0);
		ck_assert(resp.has_ip4);
		ck_assert_uint_eq(seen[resp.ip4.bytes[3]]++, 0);
	}
	ck_assert_uint_eq(lease_count(lt), 200);
	/* Peer 199 asked earliest (boot 801), so it expires first. */
	key_of(key, 199);
	ck_assert_mem_eq(lease_first_expiry(lt)->pubkey, key, WG_KEY_LEN);

	/* Release every other peer, then everyone left is still found. */
	for (unsigned i = 0; i < 200; i += 2) {
		key_of(key, i);
		lease_release(lt, lease_find(lt, key), &c);
		ck_assert_mem_eq(c.pubkey, key, WG_KEY_LEN);
		ck_assert_uint_eq(c.n_del, 2);
	}
	for (unsigned i = 0; i < 200; i++) {
		key_of(key, i);
		ck_assert((lease_find(lt, key) != NULL) == (i % 2 == 1));
	}
	uint64_t last = 0;
	while (lease_first_expiry(lt)) {
		struct lease *l = lease_first_expiry(lt);

		ck_assert_uint_ge(l->expires, last);
		last = l->expires;
		lease_release(lt, l, &c);
	}
	ck_assert_uint_eq(lease_count(lt), 0);
}
END_TEST

/* Room made ahead: filling it grows nothing, and every lease is found. */
START_TEST(reserve_ahead)
{
	struct wgd_msg req = req_any(true, false), resp;
	struct wgdev_change c;
	uint8_t key[WG_KEY_LEN];
	size_t mem;

	ck_assert_int_eq(lease_table_reserve(lt, 200), 0);
	mem = lease_table_memory(lt);
	ck_assert_uint_ge(mem, 200 * sizeof(struct lease));
	for (unsigned i = 0; i < 200; i++)
		ck_assert_int_eq(ask(i, &req, 1000 + i, &resp, &c), 0);
	ck_assert_uint_eq(lease_table_memory(lt), mem);
	for (unsigned i = 0; i < 200; i++) {
		key_of(key, i);
		ck_assert_ptr_nonnull(lease_find(lt, key));
	}
	/* Less than there is already: nothing changes. */
	ck_assert_int_eq(lease_table_reserve(lt, 10), 0);
	ck_assert_uint_eq(lease_table_memory(lt), mem);
	/* Past what a table can hold. */
	ck_assert_int_eq(lease_table_reserve(lt, (size_t)1 << 31), -ENOMEM);
	key_of(key, 0);
	ck_assert_ptr_nonnull(lease_find(lt, key));
}
END_TEST

START_TEST(restore_refuses_conflicts)
{
	struct lease l;

	memset(&l, 0, sizeof(l));
	key_of(l.pubkey, 7);
	l.has_ip4 = true;
	inet_pton(AF_INET, "10.0.0.50", &l.ip4);
	l.expires = 500;
	ck_assert_int_eq(lease_restore(lt, &l), 0);
	ck_assert_int_eq(lease_restore(lt, &l), -EEXIST);
	key_of(l.pubkey, 8);
	ck_assert_int_eq(lease_restore(lt, &l), -EEXIST);
	ck_assert_uint_eq(lease_count(lt), 1);
}
END_TEST

START_TEST(replay_grant_moves_and_reports_clashes)
{
	struct wgd_ip a50 = prefix("10.0.0.50/32"), a51 = prefix("10.0.0.51/32");
	struct lease l, prev;

	memset(&l, 0, sizeof(l));
	key_of(l.pubkey, 7);
	l.has_ip4 = true;
	l.ip4 = a50.ip4;
	l.expires = 500;
	ck_assert_int_eq(lease_replay_grant(lt, &l, lease_prefetch(lt, l.pubkey), &prev), 0);
	ck_assert(!prev.has_ip4 && !prev.has_ip6);
	ck_assert(!poolset_is_free(ps, &a50));
	/* Renewed in place: the address stays taken. */
	l.expires = 600;
	ck_assert_int_eq(lease_replay_grant(lt, &l, lease_prefetch(lt, l.pubkey), &prev), 0);
	ck_assert(prev.has_ip4 && prev.ip4.s_addr == a50.ip4.s_addr);
	ck_assert(!poolset_is_free(ps, &a50));
	ck_assert_uint_eq(lease_first_expiry(lt)->expires, 600);
	/* Moved: the old address goes back. */
	l.ip4 = a51.ip4;
	ck_assert_int_eq(lease_replay_grant(lt, &l, lease_prefetch(lt, l.pubkey), &prev), 0);
	ck_assert(poolset_is_free(ps, &a50));
	ck_assert(!poolset_is_free(ps, &a51));
	/* Another peer's grant of the same address is recorded, and said. */
	key_of(l.pubkey, 8);
	ck_assert_int_eq(lease_replay_grant(lt, &l, lease_prefetch(lt, l.pubkey), &prev), -EEXIST);
	ck_assert_uint_eq(lease_count(lt), 2);
}
END_TEST

static void random_key(uint8_t key[WG_KEY_LEN])
{
	randombytes_buf(key, WG_KEY_LEN);
}

/* Leases of 60 s granted over ten minutes, out of order. */
static struct lease_clock some_time(void)
{
	return (struct lease_clock){ .real = 1700000000, .boot = 1000 + randombytes_uniform(600) };
}

/*
 * Many peers, through the key index's growth, releases and churn: every
 * live lease is found, every released one is not, expiry comes out in
 * order, and under churn the table holds on to no more memory.
 */
START_TEST(many_peers_growth_and_churn)
{
	enum { PEERS = 60000, CHURN = 120000 };
	struct poolset *pools = poolset_new();
	struct lease_table *t = lease_table_new(pools);
	struct wgd_ip p4 = prefix("10.64.0.0/12"), p6 = prefix("fd01::/64");
	uint8_t (*keys)[WG_KEY_LEN] = calloc(PEERS, WG_KEY_LEN);
	struct wgd_msg req = req_any(true, true), resp;
	struct wgdev_change c;
	size_t memory, grew = 0, i;
	uint32_t last;

	ck_assert_ptr_nonnull(keys);
	ck_assert_int_eq(poolset_add(pools, &p4), 0);
	ck_assert_int_eq(poolset_add(pools, &p6), 0);
	memory = lease_table_memory(t);
	for (i = 0; i < PEERS; i++) {
		struct lease_clock now = some_time();

		random_key(keys[i]);
		ck_assert_int_eq(lease_request(t, keys[i], &ll, &req, 60, &now, &resp, &c), 0);
		ck_assert_uint_eq(c.n_add, 2);
		if (lease_table_memory(t) != memory) {
			memory = lease_table_memory(t);
			grew++;
			for (size_t j = 0; j <= i; j++) {
				if (!lease_find(t, keys[j]))
					ck_abort_msg("lease %zu lost when the table grew", j);
			}
		}
	}
	ck_assert_uint_ge(grew, 5);
	ck_assert_uint_eq(lease_count(t), PEERS);
	/* Everything, the slab and heap doubling: 84 + 8 bytes a slot, and
	 * 8.3 to 17 in the key index. */
	ck_assert_uint_le(lease_table_memory(t), (size_t)PEERS * (2 * 92 + 17));

	for (i = 0; i < PEERS; i += 2) {
		struct lease *l = lease_find(t, keys[i]);

		ck_assert_ptr_nonnull(l);
		ck_assert(l->has_ip4 && l->has_ip6);
		lease_release(t, l, &c);
		ck_assert_uint_eq(c.n_del, 2);
	}
	for (i = 0; i < PEERS; i++) {
		if ((lease_find(t, keys[i]) != NULL) != (i % 2 == 1))
			ck_abort_msg("lease %zu found after release, or lost", i);
	}
	for (i = 0; i < PEERS; i += 2) {
		struct lease_clock now = some_time();

		random_key(keys[i]);
		ck_assert_int_eq(lease_request(t, keys[i], &ll, &req, 60, &now, &resp, &c), 0);
	}

	/* Churn: a random peer leaves, a new one comes. */
	memory = lease_table_memory(t);
	for (i = 0; i < CHURN; i++) {
		size_t k = randombytes_uniform(PEERS);
		struct lease_clock now = some_time();
		struct lease *l = lease_find(t, keys[k]);

		ck_assert_ptr_nonnull(l);
		lease_release(t, l, &c);
		random_key(keys[k]);
		ck_assert_int_eq(lease_request(t, keys[k], &ll, &req, 60, &now, &resp, &c), 0);
	}
	ck_assert_uint_eq(lease_table_memory(t), memory);
	ck_assert_uint_eq(lease_count(t), PEERS);
	for (i = 0; i < PEERS; i++) {
		if (!lease_find(t, keys[i]))
			ck_abort_msg("lease %zu lost in churn", i);
	}

	last = 0;
	while (lease_first_expiry(t)) {
		struct lease *l = lease_first_expiry(t);

		if (l->expires < last)
			ck_abort_msg("expiry %u after %u", l->expires, last);
		last = l->expires;
		lease_release(t, l, &c);
	}
	ck_assert_uint_eq(poolset_pool_free(pools, 0), (1u << 20) - 2);
	free(keys);
	lease_table_free(t);
	poolset_free(pools);
}
END_TEST

/*
 * Small key indexes fill their few buckets unevenly, so that now and then
 * an insertion's walk gives up, is undone and the index grows: no lease may
 * be lost on the way.
 */
START_TEST(small_indexes_lose_nothing)
{
	struct wgd_msg req = req_any(false, true), resp;
	struct lease_clock now = { 1, 1 };
	uint8_t keys[80][WG_KEY_LEN];
	struct wgdev_change c;

	for (unsigned round = 0; round < 1000; round++) {
		struct lease_table *t = lease_table_new(ps);

		for (unsigned i = 0; i < 80; i++) {
			random_key(keys[i]);
			ck_assert_int_eq(lease_request(t, keys[i], &ll, &req, 60, &now, &resp, &c),
					 0);
			for (unsigned j = 0; j <= i; j++) {
				if (!lease_find(t, keys[j]))
					ck_abort_msg("round %u: lease %u lost at %u", round, j, i);
			}
		}
		while (lease_first_expiry(t))
			lease_release(t, lease_first_expiry(t), &c);
		lease_table_free(t);
	}
}
END_TEST

START_TEST(flags_take_any_true_value)
{
	struct lease l;

	/* As the journal's flags are copied in. */
	memset(&l, 0, sizeof(l));
	key_of(l.pubkey, 9);
	l.has_ip4 = 0x10 & 0x10;
	l.has_ip6 = 0x20 & 0x10;
	inet_pton(AF_INET, "10.0.0.60", &l.ip4);
	l.expires = UINT32_MAX - 1;
	ck_assert_int_eq(lease_restore(lt, &l), 0);
	ck_assert(lease_find(lt, l.pubkey)->has_ip4);
	ck_assert(!lease_find(lt, l.pubkey)->has_ip6);
	ck_assert_uint_eq(lease_first_expiry(lt)->expires, UINT32_MAX - 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lease");
	TCase *tc = tcase_create("lease");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, grant_both_families);
	tcase_add_test(tc, renewal_keeps_addresses_and_changes_nothing);
	tcase_add_test(tc, repeat_before_t1_answered_as_it_stands);
	tcase_add_test(tc, requested_address_granted_when_free);
	tcase_add_test(tc, taken_address_not_given_twice);
	tcase_add_test(tc, release_all_and_one_family);
	tcase_add_test(tc, exhausted_family_is_errno_3);
	tcase_add_test(tc, quarantine_holds_addresses_back);
	tcase_add_test(tc, quarantine_stays_sorted);
	tcase_add_test(tc, replay_set_and_forget);
	tcase_add_test(tc, address_outside_pools_is_not_renewed);
	tcase_add_test(tc, many_peers_unique_and_expiry_order);
	tcase_add_test(tc, reserve_ahead);
	tcase_add_test(tc, restore_refuses_conflicts);
	tcase_add_test(tc, replay_grant_moves_and_reports_clashes);
	tcase_add_test(tc, many_peers_growth_and_churn);
	tcase_add_test(tc, small_indexes_lose_nothing);
	tcase_add_test(tc, flags_take_any_true_value);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
