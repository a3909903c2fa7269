// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../../server/directory.h"

#define BIG_BUDGET (WGD_MAX_MESSAGE - 256)

static void key_of(uint8_t key[32], unsigned i)
{
	memset(key, 0x5a, 32);
	key[0] = (uint8_t)(i >> 8);
	key[1] = (uint8_t)i;
}

static void ip_of(struct wgd_ip *ip, const char *s)
{
	ck_assert_int_eq(wgd_ip_parse(ip, s, strlen(s), false), 0);
}

/* Peer i: 10.0.(i/256).(i%256), fd00::i, seen at 198.51.100.1:(1000+i). */
static struct wgd_peer_entry peer_of(unsigned i)
{
	struct wgd_peer_entry pe;
	char b[64];

	memset(&pe, 0, sizeof(pe));
	key_of(pe.key, i);
	pe.has_ip4 = pe.has_ip6 = true;
	snprintf(b, sizeof(b), "10.0.%u.%u", i / 256, i % 256);
	ip_of(&pe.ip4, b);
	snprintf(b, sizeof(b), "fd00::%x", i);
	ip_of(&pe.ip6, b);
	ip_of(&pe.endpoint.addr, "198.51.100.1");
	pe.endpoint.port = (uint16_t)(1000 + i);
	pe.port = 51820;
	return pe;
}

static struct wgd_msg *answer(struct directory *d, struct dir_entry *asker, uint32_t epoch,
			      uint32_t since)
{
	static struct wgd_msg m;
	static struct wgd_peer_entry lines[WGD_MAX_PEERS];

	memset(&m, 0, sizeof(m));
	m.peers = lines;
	dir_answer(d, asker, epoch, since, BIG_BUDGET, &m);
	return &m;
}

START_TEST(set_changes_version_only_on_change)
{
	struct directory d;
	struct wgd_peer_entry pe = peer_of(1);

	ck_assert_int_eq(dir_init(&d, 7), 0);
	ck_assert_uint_eq(d.epoch, 7);
	ck_assert_int_eq(dir_set(&d, &pe), 1);
	ck_assert_uint_eq(d.version, 1);
	ck_assert_int_eq(dir_set(&d, &pe), 0);
	ck_assert_uint_eq(d.version, 1);
	pe.n_cand = 1;
	ip_of(&pe.cand[0], "192.168.1.23");
	ck_assert_int_eq(dir_set(&d, &pe), 1);
	ck_assert_uint_eq(d.version, 2);
	ck_assert_uint_eq(dir_find(&d, pe.key)->version, 2);
	pe.endpoint.port++;
	ck_assert_int_eq(dir_set(&d, &pe), 1);
	ck_assert_uint_eq(d.version, 3);
	pe.has_ip4 = false;
	ck_assert_int_eq(dir_set(&d, &pe), 1);
	ck_assert_uint_eq(d.version, 4);
	ck_assert_uint_eq(d.n_live, 1);
	/* Not a host address: refused, nothing changes. */
	pe.ip6.cidr = 64;
	ck_assert_int_eq(dir_set(&d, &pe), -EINVAL);
	ck_assert_uint_eq(d.version, 4);
	dir_free(&d);
}
END_TEST

START_TEST(random_epoch)
{
	struct directory d;

	ck_assert_int_eq(dir_init(&d, 0), 0);
	ck_assert_uint_ne(d.epoch, 0);
	dir_free(&d);
}
END_TEST

START_TEST(delta_and_gone)
{
	struct directory d;
	struct wgd_peer_entry a = peer_of(1), b = peer_of(2), c = peer_of(3);
	struct wgd_msg *m;

	ck_assert_int_eq(dir_init(&d, 9), 0);
	dir_set(&d, &a);
	dir_set(&d, &b);
	dir_set(&d, &c);

	m = answer(&d, NULL, 0, 0);
	ck_assert(m->has_epoch && m->epoch == 9 && m->has_dir_version && m->dir_version == 3);
	ck_assert(!m->reset && !m->more);
	ck_assert_uint_eq(m->n_peers, 3);
	ck_assert_mem_eq(m->peers[0].key, a.key, 32);
	ck_assert_mem_eq(m->peers[2].key, c.key, 32);

	/* a moves: it alone, at version 4. */
	a.endpoint.port = 4444;
	dir_set(&d, &a);
	m = answer(&d, NULL, 9, 3);
	ck_assert_uint_eq(m->n_peers, 1);
	ck_assert_uint_eq(m->dir_version, 4);
	/* The client sent the epoch: it is not news, and not sent back. */
	ck_assert(!m->has_epoch);
	ck_assert_uint_eq(m->peers[0].endpoint.port, 4444);

	/* b goes: a gone= line. */
	ck_assert_int_eq(dir_gone(&d, b.key, 1000), 1);
	ck_assert_int_eq(dir_gone(&d, b.key, 1000), 0);
	ck_assert_uint_eq(d.n_live, 2);
	ck_assert_uint_eq(d.n_gone, 1);
	m = answer(&d, NULL, 9, 4);
	ck_assert_uint_eq(m->n_peers, 1);
	ck_assert(m->peers[0].gone);
	ck_assert_mem_eq(m->peers[0].key, b.key, 32);
	m = answer(&d, NULL, 9, 3);
	ck_assert_uint_eq(m->n_peers, 2);
	ck_assert(!m->peers[0].gone && m->peers[1].gone);

	/* Up to date: nothing to say, a poll would wait. */
	ck_assert(dir_is_current(&d, 9, 5));
	m = answer(&d, NULL, 9, 5);
	ck_assert_uint_eq(m->n_peers, 0);
	ck_assert_uint_eq(m->dir_version, 5);
	ck_assert(!m->reset && !m->more);

	/* Starting afresh lists the members, not the tombstones. */
	m = answer(&d, NULL, 0, 0);
	ck_assert_uint_eq(m->n_peers, 2);
	ck_assert(!m->peers[0].gone && !m->peers[1].gone);

	/* b comes back. */
	ck_assert_int_eq(dir_set(&d, &b), 1);
	ck_assert_uint_eq(d.n_gone, 0);
	m = answer(&d, NULL, 9, 5);
	ck_assert_uint_eq(m->n_peers, 1);
	ck_assert(!m->peers[0].gone);
	dir_free(&d);
}
END_TEST

START_TEST(reset_cases)
{
	struct directory d;
	struct wgd_peer_entry a = peer_of(1), b = peer_of(2);
	struct wgd_msg *m;

	ck_assert_int_eq(dir_init(&d, 9), 0);
	dir_set(&d, &a);
	dir_set(&d, &b);
	dir_gone(&d, b.key, 0);

	/* Another epoch. */
	m = answer(&d, NULL, 8, 3);
	ck_assert(m->reset);
	ck_assert_uint_eq(m->n_peers, 1);
	/* A version from the future. */
	m = answer(&d, NULL, 9, 4);
	ck_assert(m->reset);
	ck_assert_uint_eq(m->n_peers, 1);
	/* Behind a dropped tombstone: b's, version 3, goes after ten minutes. */
	m = answer(&d, NULL, 9, 2);
	ck_assert(!m->reset);
	dir_touch(&d, dir_find(&d, a.key), DIR_TOMBSTONE_MS);
	dir_expire(&d, DIR_TOMBSTONE_MS, NULL, NULL);
	ck_assert_uint_eq(d.n_gone, 0);
	ck_assert_ptr_null(dir_find(&d, b.key));
	m = answer(&d, NULL, 9, 2);
	ck_assert(m->reset);
	ck_assert_uint_eq(m->n_peers, 1);
	ck_assert_mem_eq(m->peers[0].key, a.key, 32);
	/* At or past it, the delta as ever. */
	m = answer(&d, NULL, 9, 3);
	ck_assert(!m->reset);
	ck_assert_uint_eq(m->n_peers, 0);
	dir_free(&d);
}
END_TEST

START_TEST(tombstones_bounded)
{
	struct directory d;
	struct wgd_peer_entry pe;
	unsigned n = DIR_MAX_TOMBSTONES + 10;

	ck_assert_int_eq(dir_init(&d, 9), 0);
	for (unsigned i = 0; i < n; i++) {
		pe = peer_of(i);
		ck_assert_int_eq(dir_set(&d, &pe), 1);
	}
	for (unsigned i = 0; i < n; i++) {
		pe = peer_of(i);
		ck_assert_int_eq(dir_gone(&d, pe.key, i), 1);
	}
	ck_assert_uint_eq(d.n_live, 0);
	ck_assert_uint_eq(d.n_gone, DIR_MAX_TOMBSTONES);
	/* The ten oldest went: versions n + 1 to n + 10. */
	ck_assert_uint_eq(d.dropped, n + 10);
	ck_assert(answer(&d, NULL, 9, n + 9)->reset);
	ck_assert(!answer(&d, NULL, 9, n + 10)->reset);
	pe = peer_of(0);
	ck_assert_ptr_null(dir_find(&d, pe.key));
	/* Their slots are used again. */
	ck_assert_int_eq(dir_set(&d, &pe), 1);
	ck_assert_uint_eq(d.n_slots, n);
	dir_free(&d);
}
END_TEST

START_TEST(members_leave_when_silent)
{
	struct directory d;
	struct wgd_peer_entry a = peer_of(1), b = peer_of(2);

	ck_assert_int_eq(dir_init(&d, 9), 0);
	dir_set(&d, &a);
	dir_touch(&d, dir_find(&d, a.key), 1000);
	dir_set(&d, &b);
	dir_touch(&d, dir_find(&d, b.key), 5000);
	ck_assert_uint_eq(dir_next_expiry(&d), 1000 + DIR_JOIN_TIMEOUT_MS);
	ck_assert_uint_eq(dir_expire(&d, 1000 + DIR_JOIN_TIMEOUT_MS - 1, NULL, NULL), 0);
	/* a asks again: b is the first to go. */
	dir_touch(&d, dir_find(&d, a.key), 30000);
	ck_assert_uint_eq(dir_next_expiry(&d), 5000 + DIR_JOIN_TIMEOUT_MS);
	ck_assert_uint_eq(dir_expire(&d, 5000 + DIR_JOIN_TIMEOUT_MS, NULL, NULL), 1);
	ck_assert(dir_find(&d, b.key)->pe.gone);
	ck_assert(!dir_find(&d, a.key)->pe.gone);
	ck_assert_uint_eq(dir_next_expiry(&d), 30000 + DIR_JOIN_TIMEOUT_MS);
	/* A change that is no request keeps a's place: b, back and asking
	 * later, still goes after it. */
	dir_set(&d, &b);
	dir_touch(&d, dir_find(&d, b.key), 40000);
	a.endpoint.port = 9;
	ck_assert_int_eq(dir_set(&d, &a), 1);
	ck_assert_uint_eq(dir_next_expiry(&d), 30000 + DIR_JOIN_TIMEOUT_MS);
	ck_assert_uint_eq(dir_expire(&d, 30000 + DIR_JOIN_TIMEOUT_MS, NULL, NULL), 1);
	ck_assert(dir_find(&d, a.key)->pe.gone);
	ck_assert(!dir_find(&d, b.key)->pe.gone);
	dir_free(&d);
}
END_TEST

START_TEST(paging)
{
	struct directory d;
	unsigned n = 3 * WGD_MAX_PEERS + 5, seen = 0;
	uint32_t since = 0, epoch = 0;
	struct wgd_msg *m;

	ck_assert_int_eq(dir_init(&d, 9), 0);
	for (unsigned i = 0; i < n; i++) {
		struct wgd_peer_entry pe = peer_of(i);

		dir_set(&d, &pe);
	}
	do {
		m = answer(&d, NULL, epoch, since);
		ck_assert_uint_le(m->n_peers, WGD_MAX_PEERS);
		for (size_t i = 0; i < m->n_peers; i++) {
			struct wgd_peer_entry pe = peer_of(seen++);

			ck_assert_mem_eq(m->peers[i].key, pe.key, 32);
		}
		epoch = m->epoch;
		since = m->dir_version;
	} while (m->more);
	ck_assert_uint_eq(seen, n);
	ck_assert_uint_eq(since, d.version);
	dir_free(&d);
}
END_TEST

/* Lines with four IPv6 candidates are long: the budget cuts before 48. */
START_TEST(paging_by_bytes)
{
	struct directory d;
	unsigned n = 60, seen = 0;
	uint32_t since = 0, epoch = 0;
	size_t budget = WGD_MAX_MESSAGE - 256;
	struct wgd_msg *m;

	ck_assert_int_eq(dir_init(&d, 9), 0);
	for (unsigned i = 0; i < n; i++) {
		struct wgd_peer_entry pe = peer_of(i);

		ip_of(&pe.endpoint.addr, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
		pe.n_cand = WGD_MAX_CANDIDATES;
		for (unsigned j = 0; j < WGD_MAX_CANDIDATES; j++) {
			char b[64];

			snprintf(b, sizeof(b), "2001:db8:aaaa:bbbb:cccc:dddd:%x:%x", i, j);
			ip_of(&pe.cand[j], b);
		}
		dir_set(&d, &pe);
	}
	do {
		static char out[WGD_MAX_MESSAGE];
		size_t used = 0;

		m = answer(&d, NULL, epoch, since);
		for (size_t i = 0; i < m->n_peers; i++)
			used += dir_line_len(&m->peers[i]);
		ck_assert_uint_le(used, budget);
		/* And the whole answer fits a message. */
		m->has_errno = true;
		ck_assert_int_gt(wgd_serialize_response(m, out, sizeof(out)), (ssize_t)used);
		if (m->more)
			ck_assert_uint_lt(m->n_peers, WGD_MAX_PEERS);
		seen += (unsigned)m->n_peers;
		epoch = m->epoch;
		since = m->dir_version;
	} while (m->more);
	ck_assert_uint_eq(seen, n);
	dir_free(&d);
}
END_TEST

/*
 * A fresh start cut into pages, behind a tombstone dropped: the member
 * asking resumes where it was cut instead of starting over forever.
 */
START_TEST(reset_paging_resumes)
{
	struct directory d;
	unsigned n = 2 * WGD_MAX_PEERS, seen = 0, rounds = 0;
	struct wgd_peer_entry gone = peer_of(1000), me = peer_of(0);
	uint32_t since = 1, epoch = 9;
	struct dir_entry *asker;
	struct wgd_msg *m;

	ck_assert_int_eq(dir_init(&d, 9), 0);
	for (unsigned i = 0; i < n; i++) {
		struct wgd_peer_entry pe = peer_of(i);

		dir_set(&d, &pe);
		dir_touch(&d, dir_find(&d, pe.key), DIR_TOMBSTONE_MS);
	}
	dir_set(&d, &gone);
	dir_gone(&d, gone.key, 0);
	dir_expire(&d, DIR_TOMBSTONE_MS, NULL, NULL);
	ck_assert_uint_eq(d.dropped, n + 2);
	asker = dir_find(&d, me.key);
	do {
		m = answer(&d, asker, epoch, since);
		ck_assert(rounds == 0 ? m->reset : !m->reset);
		seen += (unsigned)m->n_peers;
		epoch = m->epoch;
		since = m->dir_version;
	} while (m->more && ++rounds < 10);
	ck_assert_uint_eq(seen, n);
	ck_assert_uint_eq(rounds, 1);
	dir_free(&d);
}
END_TEST

/* Four billion changes in: a new epoch, the members numbered again. */
START_TEST(versions_run_out)
{
	struct directory d;
	struct wgd_peer_entry a = peer_of(1), b = peer_of(2), c = peer_of(3);
	struct wgd_msg *m;

	ck_assert_int_eq(dir_init(&d, 9), 0);
	dir_set(&d, &a);
	dir_set(&d, &b);
	dir_set(&d, &c);
	dir_gone(&d, c.key, 0);
	d.version = UINT32_MAX - 1;
	b.port = 1;
	ck_assert_int_eq(dir_set(&d, &b), 1);
	ck_assert_uint_ne(d.epoch, 9);
	ck_assert_uint_eq(d.version, 3);
	ck_assert_uint_eq(d.n_gone, 0);
	ck_assert_uint_eq(dir_find(&d, a.key)->version, 1);
	ck_assert_uint_eq(dir_find(&d, b.key)->version, 3);
	m = answer(&d, NULL, 9, UINT32_MAX - 1);
	ck_assert(m->reset);
	ck_assert_uint_eq(m->n_peers, 2);
	dir_free(&d);
}
END_TEST

START_TEST(line_length)
{
	struct wgd_peer_entry pe;

	memset(&pe, 0, sizeof(pe));
	/* "peer=" KEY " - - - 0\n" */
	ck_assert_uint_eq(dir_line_len(&pe), 5 + 44 + 8 + 1);
	pe.gone = true;
	ck_assert_uint_eq(dir_line_len(&pe), 5 + 44 + 1);
	pe = peer_of(1);
	/* peer=KEY 10.0.0.1 fd00::1 198.51.100.1:1001 51820 */
	ck_assert_uint_eq(dir_line_len(&pe),
			  5 + 44 + 1 + 8 + 1 + 7 + 1 + 17 + 1 + 5 + 1);
	ip_of(&pe.endpoint.addr, "2001:db8::1");
	pe.n_cand = 1;
	ip_of(&pe.cand[0], "192.168.1.23");
	/* ... [2001:db8::1]:1001 51820 192.168.1.23 */
	ck_assert_uint_eq(dir_line_len(&pe),
			  5 + 44 + 1 + 8 + 1 + 7 + 1 + 18 + 1 + 5 + 1 + 12 + 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("directory");
	TCase *tc = tcase_create("directory");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_add_test(tc, set_changes_version_only_on_change);
	tcase_add_test(tc, random_epoch);
	tcase_add_test(tc, delta_and_gone);
	tcase_add_test(tc, reset_cases);
	tcase_add_test(tc, tombstones_bounded);
	tcase_add_test(tc, members_leave_when_silent);
	tcase_add_test(tc, paging);
	tcase_add_test(tc, paging_by_bytes);
	tcase_add_test(tc, reset_paging_resumes);
	tcase_add_test(tc, versions_run_out);
	tcase_add_test(tc, line_length);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
