// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "../../common/clock.h"
#include "../../common/key.h"
#include "../../common/wgview.h"
#include "../../server/privsep.h"
#include "line-reader.h"

/*
 * The parent's rules, checked against a device of four peers:
 *   A (0x42): fe80::a/128, its leases 10.1.2.3/32 and fd01::7/128, and an
 *             administrator's 10.1.0.0/32 (a pool's network address) and
 *             192.0.2.10/32 (outside the pools);
 *   B (0x43): fe80::b/128, its leases 10.1.9.9/32 and fd01::8/128, and a
 *             static subnet inside the pool, 10.1.100.0/28;
 *   E (0x44): an exit peer: 0.0.0.0/0, ::/0 and the pool's supernet
 *             10.0.0.0/8;
 *   C (0x45): nothing.
 * The pools are 10.1.0.0/16 and fd01::/64; the interface has 10.1.0.1/16,
 * fd01::1/64 and fe80::/64.
 */
enum { PEER_A = 0x42, PEER_B, PEER_E, PEER_C };

static struct wgd_ip pools[2], own[3];
static struct priv_rules rules;
static struct wgview *view;

static struct wgd_ip ip(const char *s)
{
	struct wgd_ip r;

	ck_assert_int_eq(wgd_ip_parse(&r, s, strlen(s), false), 0);
	return r;
}

static void add_peer(struct wgdev *dev, uint8_t id, const char *const *ips)
{
	uint8_t key[WG_KEY_LEN];
	struct wgdev_peer *p;

	memset(key, id, sizeof(key));
	ck_assert_int_eq(wgdev_add_peer(dev, key, &p), 0);
	for (; *ips; ips++) {
		struct wgd_ip a = ip(*ips);

		ck_assert_int_eq(wgdev_peer_add_allowedip(p, &a), 0);
	}
}

static const char *const ips_a[] = { "fe80::a/128", "10.1.2.3/32", "fd01::7/128",
				     "10.1.0.0/32", "192.0.2.10/32", NULL };
static const char *const ips_b[] = { "fe80::b/128", "10.1.9.9/32", "fd01::8/128",
				     "10.1.100.0/28", NULL };
static const char *const ips_e[] = { "0.0.0.0/0", "::/0", "10.0.0.0/8", NULL };
static const char *const ips_c[] = { NULL };

static struct wgdev *test_device(void)
{
	struct wgdev *dev = calloc(1, sizeof(*dev));

	ck_assert_ptr_nonnull(dev);
	add_peer(dev, PEER_A, ips_a);
	add_peer(dev, PEER_B, ips_b);
	add_peer(dev, PEER_E, ips_e);
	add_peer(dev, PEER_C, ips_c);
	return dev;
}

/* A change of peer's, its addresses left to the caller. */
static struct wgdev_change update(uint8_t peer, unsigned n_add, unsigned n_del)
{
	struct wgdev_change u;

	memset(&u, 0, sizeof(u));
	memset(u.pubkey, peer, sizeof(u.pubkey));
	u.n_add = (uint8_t)n_add;
	u.n_del = (uint8_t)n_del;
	return u;
}

static int check_out(const struct wgdev_change *u, struct wgdev_change *out)
{
	return priv_check_update(u, &rules, view, out);
}

static int check(const struct wgdev_change *u)
{
	struct wgdev_change out;

	return check_out(u, &out);
}

/* One addition for peer, checked. */
static int check_add(uint8_t peer, const char *addr)
{
	struct wgdev_change u = update(peer, 1, 0);

	u.add[0] = ip(addr);
	return check(&u);
}

static bool is_zero_ip(const struct wgd_ip *a)
{
	static const struct wgd_ip zero;

	return !memcmp(a, &zero, sizeof(zero));
}

static void setup(void)
{
	struct wgdev *dev = test_device();

	pools[0] = ip("10.1.0.0/16");
	pools[1] = ip("fd01::/64");
	own[0] = ip("10.1.0.1/32");
	own[1] = ip("fd01::1/128");
	own[2] = ip("fe80::/128");
	rules = (struct priv_rules){ .pools = pools, .n_pools = 2, .own = own, .n_own = 3 };
	view = wgview_new();
	ck_assert_ptr_nonnull(view);
	ck_assert_int_eq(wgview_rebuild(view, dev, 0), 0);
	wgdev_free(dev);
}

static void teardown(void)
{
	wgview_free(view);
	view = NULL;
}

START_TEST(lease_changes_inside_pools_pass)
{
	struct wgdev_change u = update(PEER_A, 2, 2), out;

	u.add[0] = ip("10.1.2.4/32");
	u.add[1] = ip("fd01::9/128");
	u.del[0] = ip("10.1.2.3/32");
	u.del[1] = ip("fd01::7/128");
	ck_assert_int_eq(check_out(&u, &out), 0);
	ck_assert_int_eq(memcmp(&u, &out, sizeof(u)), 0);
	/* A peer's own address again is no change of owner. */
	ck_assert_int_eq(check_add(PEER_B, "10.1.9.9/32"), 0);
}
END_TEST

START_TEST(outside_pools_refused)
{
	struct wgdev_change u;

	ck_assert_int_eq(check_add(PEER_A, "10.2.0.1/32"), -EPERM);
	ck_assert_int_eq(check_add(PEER_A, "fd02::1/128"), -EPERM);
	/* A link-local is not a pool address. */
	rules.auto_ll = true;
	ck_assert_int_eq(check_add(PEER_A, "fe80::1/128"), -EPERM);
	rules.auto_ll = false;
	/* Nor may the engine take away what lies outside them. */
	u = update(PEER_A, 0, 1);
	u.del[0] = ip("192.0.2.10/32");
	ck_assert_int_eq(check(&u), -EPERM);
	u.del[0] = ip("fe80::a/128");
	ck_assert_int_eq(check(&u), -EPERM);
}
END_TEST

/* The addresses a pool never leases, by the engine's own rule. */
START_TEST(unleased_pool_addresses_refused)
{
	static struct wgd_ip more[4];
	struct wgdev_change u;

	ck_assert_int_eq(check_add(PEER_C, "10.1.255.255/32"), -EPERM);
	ck_assert_int_eq(check_add(PEER_C, "fd01::/128"), -EPERM);
	/* Refused as no lease address, before A's holding it is looked at. */
	ck_assert_int_eq(check_add(PEER_C, "10.1.0.0/32"), -EPERM);
	ck_assert_int_eq(check_add(PEER_C, "10.1.0.2/32"), 0);
	ck_assert_int_eq(check_add(PEER_C, "10.1.255.254/32"), 0);
	ck_assert_int_eq(check_add(PEER_C, "fd01::ffff:ffff:ffff:ffff/128"), 0);
	/* A's administrator gave it its pool's network address: no lease,
	 * so the engine cannot take it away either. */
	u = update(PEER_A, 0, 1);
	u.del[0] = ip("10.1.0.0/32");
	ck_assert_int_eq(check(&u), -EPERM);

	/* Point-to-point and one-address pools lease every address. */
	more[0] = ip("10.3.0.0/31");
	more[1] = ip("10.98.0.5/32");
	more[2] = ip("fd03::/127");
	more[3] = ip("fd04::/126");
	rules.pools = more;
	rules.n_pools = 4;
	ck_assert_int_eq(check_add(PEER_C, "10.3.0.0/32"), 0);
	ck_assert_int_eq(check_add(PEER_C, "10.3.0.1/32"), 0);
	ck_assert_int_eq(check_add(PEER_C, "10.98.0.5/32"), 0);
	ck_assert_int_eq(check_add(PEER_C, "fd03::/128"), 0);
	ck_assert_int_eq(check_add(PEER_C, "fd04::/128"), -EPERM);
	ck_assert_int_eq(check_add(PEER_C, "fd04::3/128"), 0);
}
END_TEST

START_TEST(own_addresses_refused)
{
	ck_assert_int_eq(check_add(PEER_C, "10.1.0.1/32"), -EPERM);
	ck_assert_int_eq(check_add(PEER_C, "fd01::1/128"), -EPERM);
	rules.n_own = 0;
	ck_assert_int_eq(check_add(PEER_C, "10.1.0.1/32"), 0);
}
END_TEST

/* Another peer's address, or one inside its subnet in the pool, is never
 * given; a prefix holding the whole pool blocks nothing. */
START_TEST(covered_by_another_peer_refused)
{
	ck_assert_int_eq(check_add(PEER_A, "10.1.9.9/32"), -EEXIST);
	ck_assert_int_eq(check_add(PEER_A, "fd01::8/128"), -EEXIST);
	ck_assert_int_eq(check_add(PEER_A, "10.1.100.5/32"), -EEXIST);
	ck_assert_int_eq(check_add(PEER_A, "10.1.100.15/32"), -EEXIST);
	ck_assert_int_eq(check_add(PEER_A, "10.1.100.16/32"), 0);
	/* B's own subnet does not keep B from an address in it. */
	ck_assert_int_eq(check_add(PEER_B, "10.1.100.5/32"), 0);
	/* E's 0.0.0.0/0, ::/0 and 10.0.0.0/8 hold the whole pools. */
	ck_assert_int_eq(check_add(PEER_A, "10.1.77.7/32"), 0);
	ck_assert_int_eq(check_add(PEER_A, "fd01::99/128"), 0);
	/* One refused address refuses the whole change. */
	struct wgdev_change u = update(PEER_A, 2, 0);

	u.add[0] = ip("10.1.77.7/32");
	u.add[1] = ip("fd01::8/128");
	ck_assert_int_eq(check(&u), -EEXIST);
}
END_TEST

/*
 * An address that is another peer's cannot become this one's within one
 * batch: each change is judged against the device before the batch, so
 * B's removal of its address does not free it for A in the same batch.
 */
START_TEST(no_move_against_the_view)
{
	struct wgdev_change del = update(PEER_B, 0, 1), add = update(PEER_A, 1, 0), out;

	del.del[0] = ip("10.1.9.9/32");
	add.add[0] = ip("10.1.9.9/32");
	ck_assert_int_eq(check_out(&del, &out), 0);
	ck_assert_uint_eq(out.n_del, 1);
	ck_assert_int_eq(check(&add), -EEXIST);
	/* Once the device has made the removal, the address is free. */
	ck_assert_int_eq(wgview_apply(view, del.pubkey, NULL, 0, del.del, 1), 0);
	ck_assert_int_eq(check(&add), 0);
}
END_TEST

/* A removal takes only what the peer holds: never another peer's lease. */
START_TEST(removal_only_of_what_the_peer_holds)
{
	struct wgdev_change u = update(PEER_A, 0, 2), out;

	u.del[0] = ip("10.1.9.9/32");   /* B's */
	u.del[1] = ip("10.1.2.3/32");   /* A's */
	ck_assert_int_eq(check_out(&u, &out), 0);
	ck_assert_uint_eq(out.n_del, 1);
	ck_assert(wgd_ip_equal(&out.del[0], &u.del[1]));
	ck_assert(is_zero_ip(&out.del[1]));
	/* Nothing of A's at all: the change becomes empty. */
	u.n_del = 1;
	ck_assert_int_eq(check_out(&u, &out), 0);
	ck_assert_uint_eq(out.n_del, 0);
}
END_TEST

START_TEST(peer_not_on_device)
{
	ck_assert_int_eq(check_add(0x99, "10.1.2.5/32"), -ENOENT);
}
END_TEST

START_TEST(derived_linklocal_only_with_auto_ll)
{
	struct wgdev_change u = update(PEER_C, 1, 0);

	wgkey_derive_linklocal(&u.add[0], u.pubkey);
	ck_assert_int_eq(check(&u), -EPERM);
	rules.auto_ll = true;
	ck_assert_int_eq(check(&u), 0);
	/* Another peer's derived address is refused. */
	memset(u.pubkey, PEER_A, sizeof(u.pubkey));
	ck_assert_int_eq(check(&u), -EPERM);
	/* It can never be removed through the engine. */
	u = update(PEER_C, 0, 1);
	wgkey_derive_linklocal(&u.del[0], u.pubkey);
	ck_assert_int_eq(check(&u), -EPERM);
}
END_TEST

START_TEST(malformed_refused)
{
	struct wgdev_change u = update(PEER_A, 1, 0);

	u.add[0] = ip("10.1.2.4/32");
	ck_assert_int_eq(check(&u), 0);
	u.n_add = WGDEV_CHANGE_MAX + 1;
	ck_assert_int_eq(check(&u), -EINVAL);
	u.n_add = 1;
	u.n_del = WGDEV_CHANGE_MAX + 1;
	ck_assert_int_eq(check(&u), -EINVAL);
	u.n_del = 0;

	u.pad[0] = 1;
	ck_assert_int_eq(check(&u), -EINVAL);
	u.pad[0] = 0;
	u.pad[1] = 0x80;
	ck_assert_int_eq(check(&u), -EINVAL);
	u.pad[1] = 0;
	/* An address's own padding too. */
	u.add[0].pad[1] = 1;
	ck_assert_int_eq(check(&u), -EINVAL);

	/* A subnet, not a host: a lease is never that. */
	u.add[0] = ip("10.1.2.0/24");
	ck_assert_int_eq(check(&u), -EINVAL);
	/* Junk past an IPv4 address. */
	u.add[0] = ip("10.1.2.4/32");
	u.add[0].bytes[9] = 1;
	ck_assert_int_eq(check(&u), -EINVAL);
	u.add[0] = ip("10.1.2.4/32");
	u.add[0].family = 99;
	ck_assert_int_eq(check(&u), -EINVAL);
	/* Malformed before anything else: even for a peer not on the device. */
	u.add[0] = ip("10.1.2.0/24");
	memset(u.pubkey, 0x99, sizeof(u.pubkey));
	ck_assert_int_eq(check(&u), -EINVAL);
	/* An all-zero key is no peer. */
	u.add[0] = ip("10.1.2.4/32");
	memset(u.pubkey, 0, sizeof(u.pubkey));
	ck_assert_int_eq(check(&u), -EINVAL);
}
END_TEST

/* The parent's side of the stream test, on a thread. */
struct parent_side {
	int fd;
	struct wgdev *first;
	int ret;
};

static void *serve_thread(void *arg)
{
	struct parent_side *ps = arg;
	struct priv_policy policy = { .ifindex = 1 };

	ps->ret = priv_serve(ps->fd, NULL, &policy, ps->first, clock_boot_ms());
	return NULL;
}

/*
 * The device stream: peers packed many to a message, a peer with more
 * allowed-IPs than one message holds carried on into the next, peers with
 * none, all arriving as they were sent.
 */
START_TEST(device_stream_round_trip)
{
	enum { PEERS = 3000, BIG = 5000 };
	struct wgdev *dev = calloc(1, sizeof(*dev)), *got;
	struct parent_side ps;
	pthread_t thread;
	int sp[2];

	ck_assert_ptr_nonnull(dev);
	dev->has_pubkey = true;
	memset(dev->pubkey, 0x77, WG_KEY_LEN);
	for (unsigned i = 0; i < PEERS; i++) {
		struct wgdev_peer *p;
		uint8_t key[WG_KEY_LEN] = { (uint8_t)(i >> 8), (uint8_t)i, 1 };
		unsigned n = i == 7 ? BIG : i % 5;

		ck_assert_int_eq(wgdev_add_peer(dev, key, &p), 0);
		p->endpoint.sin6.sin6_family = AF_INET6;
		p->endpoint.sin6.sin6_port = htons((uint16_t)i);
		for (unsigned j = 0; j < n; j++) {
			struct wgd_ip a = { .family = AF_INET6, .cidr = 128 };

			a.bytes[0] = 0xfd;
			a.bytes[12] = (uint8_t)(i >> 8);
			a.bytes[13] = (uint8_t)i;
			a.bytes[14] = (uint8_t)(j >> 8);
			a.bytes[15] = (uint8_t)j;
			ck_assert_int_eq(wgdev_peer_add_allowedip(p, &a), 0);
		}
	}

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	ps = (struct parent_side){ .fd = sp[0], .first = dev };
	ck_assert_int_eq(pthread_create(&thread, NULL, serve_thread, &ps), 0);
	priv_engine_init(sp[1]);
	ck_assert_int_eq(priv_get_device(&got), 0);
	/* The parent took dev over and freed it: compare with what it held. */
	ck_assert_uint_eq(got->n_peers, PEERS);
	ck_assert(got->has_pubkey);
	ck_assert_uint_eq(got->pubkey[5], 0x77);
	for (unsigned i = 0; i < PEERS; i++) {
		const struct wgdev_peer *p = &got->peers[i];
		unsigned n = i == 7 ? BIG : i % 5;

		ck_assert_uint_eq(p->pubkey[0], (uint8_t)(i >> 8));
		ck_assert_uint_eq(p->pubkey[1], (uint8_t)i);
		ck_assert_uint_eq(ntohs(p->endpoint.sin6.sin6_port), i);
		ck_assert_uint_eq(p->n_allowedips, n);
		for (unsigned j = 0; j < n; j++) {
			ck_assert_uint_eq(p->allowedips[j].bytes[12], (uint8_t)(i >> 8));
			ck_assert_uint_eq(p->allowedips[j].bytes[13], (uint8_t)i);
			ck_assert_uint_eq(p->allowedips[j].bytes[14], (uint8_t)(j >> 8));
			ck_assert_uint_eq(p->allowedips[j].bytes[15], (uint8_t)j);
		}
	}
	wgdev_free(got);
	close(sp[1]);
	pthread_join(thread, NULL);
	ck_assert_int_eq(ps.ret, 0);
	close(sp[0]);
}
END_TEST

/*
 * The engine's side builds each change of the message afresh: addresses in
 * canonical form, the pad and the entries past the counts zero, whatever
 * the caller left there, so that the parent finds it well formed.
 */
START_TEST(engine_sends_clean_changes)
{
	static struct priv_updates got;
	struct priv_result res = { .type = PRIV_RESULT, .n = 1, .err = { -EEXIST } };
	struct wgdev_change c = update(PEER_A, 1, 1), want = c, out;
	static const struct wgd_ip zero;
	int sp[2], err;
	ssize_t n;

	c.add[0] = ip("10.1.2.4/32");
	c.add[0].bytes[9] = 0x55;       /* junk past an IPv4 address */
	c.add[1] = ip("10.1.2.5/32");   /* past n_add */
	c.del[0] = ip("10.1.2.3/32");
	c.del[1] = ip("fd01::7/128");   /* past n_del */
	c.pad[0] = 0xff;
	want.add[0] = ip("10.1.2.4/32");
	want.del[0] = ip("10.1.2.3/32");

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	priv_engine_init(sp[1]);
	/* The answer waits in the queue before the question is asked. */
	ck_assert_int_eq(send(sp[0], &res, offsetof(struct priv_result, err) + sizeof(int32_t), 0),
			 (ssize_t)(offsetof(struct priv_result, err) + sizeof(int32_t)));
	ck_assert_int_eq(priv_update_batch(&c, 1, &err), 0);
	ck_assert_int_eq(err, -EEXIST);
	n = recv(sp[0], &got, sizeof(got), 0);
	ck_assert_int_eq(n, (ssize_t)(offsetof(struct priv_updates, u) + sizeof(got.u[0])));
	ck_assert_uint_eq(got.type, PRIV_UPDATES);
	ck_assert_uint_eq(got.n, 1);
	ck_assert_mem_eq(&got.u[0], &want, sizeof(want));
	ck_assert(!memcmp(&got.u[0].add[1], &zero, sizeof(zero)));
	ck_assert_int_eq(check_out(&got.u[0], &out), 0);

	/* More than a change holds: refused before anything is sent. */
	c.n_del = WGDEV_CHANGE_MAX + 1;
	ck_assert_int_eq(priv_update_batch(&c, 1, &err), -E2BIG);
	ck_assert_int_eq(err, -E2BIG);
	c.n_del = 1;
	ck_assert_int_eq(recv(sp[0], &got, sizeof(got), MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(sp[0]);
	close(sp[1]);
}
END_TEST

/* Sends len bytes of msg to a parent as the engine and returns how the
 * parent's loop ended once the engine's end is closed. */
static int serve_raw(const void *msg, size_t len)
{
	struct parent_side ps;
	pthread_t thread;
	int sp[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	ps = (struct parent_side){ .fd = sp[0] };
	ck_assert_int_eq(pthread_create(&thread, NULL, serve_thread, &ps), 0);
	ck_assert_int_eq(send(sp[1], msg, len, 0), (ssize_t)len);
	close(sp[1]);
	pthread_join(thread, NULL);
	close(sp[0]);
	return ps.ret;
}

/*
 * A PRIV_UPDATES message is checked whole before any of it is judged: its
 * exact size for its count, the count, and every change's layout. Anything
 * else means the engine is not what was started, and the parent's loop
 * ends (-EPROTO), answering nothing.
 */
START_TEST(serve_malformed_updates_end)
{
	/* Room for a change past the last a message holds, for a count
	 * past PRIV_BATCH whose size matches it. */
	static struct {
		struct priv_updates m;
		struct wgdev_change past;
	} room;
	struct priv_updates *const m = &room.m;
	const size_t one = offsetof(struct priv_updates, u) + sizeof(m->u[0]);
	struct wgdev_change good = update(PEER_A, 1, 0);
	int err;

	good.add[0] = ip("10.1.2.4/32");
	m->type = PRIV_UPDATES;
	m->n = 1;
	m->u[0] = good;
	/* Well formed, it is answered: with no device, -ENODEV. */
	{
		struct parent_side ps = { 0 };
		pthread_t thread;
		int sp[2];

		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
		ps.fd = sp[0];
		ck_assert_int_eq(pthread_create(&thread, NULL, serve_thread, &ps), 0);
		priv_engine_init(sp[1]);
		ck_assert_int_eq(priv_update_batch(&good, 1, &err), 0);
		ck_assert_int_eq(err, -ENODEV);
		close(sp[1]);
		pthread_join(thread, NULL);
		ck_assert_int_eq(ps.ret, 0);
		close(sp[0]);
	}

	ck_assert_int_eq(serve_raw(m, one - 1), -EPROTO);
	ck_assert_int_eq(serve_raw(m, one + 1), -EPROTO);
	ck_assert_int_eq(serve_raw(m, offsetof(struct priv_updates, u)), -EPROTO);
	m->n = 0;
	ck_assert_int_eq(serve_raw(m, offsetof(struct priv_updates, u)), -EPROTO);
	m->n = 2;
	m->u[1] = good;
	ck_assert_int_eq(serve_raw(m, one), -EPROTO);
	m->n = PRIV_BATCH + 1;
	ck_assert_int_eq(serve_raw(m, offsetof(struct priv_updates, u) +
				   (PRIV_BATCH + 1) * sizeof(m->u[0])), -EPROTO);
	m->n = 1;
	m->type = PRIV_RESULT;
	ck_assert_int_eq(serve_raw(m, one), -EPROTO);
	m->type = PRIV_UPDATES;

	/* One bad change of a batch spoils it whole. */
	m->n = 2;
	m->u[1].n_add = WGDEV_CHANGE_MAX + 1;
	ck_assert_int_eq(serve_raw(m, one + sizeof(m->u[0])), -EPROTO);
	m->u[1] = good;
	m->u[1].pad[1] = 1;
	ck_assert_int_eq(serve_raw(m, one + sizeof(m->u[0])), -EPROTO);
	m->u[1] = good;
	m->u[1].add[0] = ip("10.1.2.0/24");
	ck_assert_int_eq(serve_raw(m, one + sizeof(m->u[0])), -EPROTO);
	m->u[1] = good;
	memset(m->u[1].pubkey, 0, WG_KEY_LEN);
	ck_assert_int_eq(serve_raw(m, one + sizeof(m->u[0])), -EPROTO);
}
END_TEST

/* ---- the parent's rules in the parent itself, against a device ---- */

/*
 * A userspace WireGuard behind a UAPI socket, as far as the parent uses
 * one: get=1 answers the device; set=1 adds and removes allowed-IPs of
 * existing peers, an addition taken from whichever peer held it exactly,
 * as WireGuard moves it. Without remove support it refuses "allowed_ip=-"
 * as wireguard-go before 0.0.20250522 does, and the parent falls back to
 * read-modify-write.
 */
struct fake_wg {
	char dir[64], path[96];
	int lfd, stop[2];
	pthread_t thread;
	bool supports_remove;
	struct wgdev *dev;
};

static void peer_drop_ip(struct wgdev_peer *p, const struct wgd_ip *a)
{
	for (size_t i = 0; i < p->n_allowedips; i++)
		if (wgd_ip_equal(&p->allowedips[i], a)) {
			memmove(&p->allowedips[i], &p->allowedips[i + 1],
				(p->n_allowedips - i - 1) * sizeof(*a));
			p->n_allowedips--;
			return;
		}
}

static void fake_get(struct fake_wg *fw, int fd)
{
	static char out[65536];
	char hex[2 * WG_KEY_LEN + 1], b[WGD_IP_STRLEN];
	size_t len = 0;

	memset(hex, 'a', 2 * WG_KEY_LEN);
	hex[2 * WG_KEY_LEN] = '\0';
	len += (size_t)snprintf(out + len, sizeof(out) - len, "private_key=%s\nlisten_port=51820\n",
				hex);
	for (size_t i = 0; i < fw->dev->n_peers; i++) {
		const struct wgdev_peer *p = &fw->dev->peers[i];

		sodium_bin2hex(hex, sizeof(hex), p->pubkey, WG_KEY_LEN);
		len += (size_t)snprintf(out + len, sizeof(out) - len,
					"public_key=%s\nprotocol_version=1\n"
					"last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n",
					hex);
		for (size_t j = 0; j < p->n_allowedips; j++)
			len += (size_t)snprintf(out + len, sizeof(out) - len, "allowed_ip=%s\n",
						wgd_ip_format(&p->allowedips[j], b, sizeof(b)));
	}
	len += (size_t)snprintf(out + len, sizeof(out) - len, "errno=0\n\n");
	ck_assert_int_eq(write(fd, out, len), (ssize_t)len);
}

/* One set=1, read whole before anything is made; 0 or -22. */
static int fake_set(struct fake_wg *fw, struct line_reader *r)
{
	char lines[64][128];
	size_t n = 0;
	struct wgdev_peer *peer = NULL;

	while (n < 64 && line_read(r, lines[n], sizeof(lines[n])) && lines[n][0])
		n++;
	for (size_t i = 0; i < n; i++)
		if (!strncmp(lines[i], "allowed_ip=-", 12) && !fw->supports_remove)
			return -22;
	for (size_t i = 0; i < n; i++) {
		char *v = strchr(lines[i], '=');
		uint8_t key[WG_KEY_LEN];
		struct wgd_ip a;

		if (!v)
			return -22;
		*v++ = '\0';
		if (!strcmp(lines[i], "public_key")) {
			if (sodium_hex2bin(key, sizeof(key), v, strlen(v), NULL, NULL, NULL))
				return -22;
			peer = wgdev_find_peer(fw->dev, key); /* update_only: none is made */
		} else if (!peer) {
			continue;
		} else if (!strcmp(lines[i], "replace_allowed_ips")) {
			peer->n_allowedips = 0;
		} else if (!strcmp(lines[i], "allowed_ip")) {
			bool del = v[0] == '-';

			if (wgd_ip_parse(&a, v + del, strlen(v + del), true))
				return -22;
			if (del) {
				peer_drop_ip(peer, &a);
				continue;
			}
			for (size_t j = 0; j < fw->dev->n_peers; j++)
				peer_drop_ip(&fw->dev->peers[j], &a);
			ck_assert_int_eq(wgdev_peer_add_allowedip(peer, &a), 0);
		}
	}
	return 0;
}

static void *fake_thread(void *arg)
{
	struct fake_wg *fw = arg;
	static struct line_reader r;
	char op[64], reply[32];

	for (;;) {
		struct pollfd pfd[2] = { { fw->lfd, POLLIN, 0 }, { fw->stop[0], POLLIN, 0 } };
		int fd;

		if (poll(pfd, 2, -1) < 0 || (pfd[1].revents & POLLIN))
			break;
		fd = accept(fw->lfd, NULL, NULL);
		if (fd < 0)
			break;
		memset(&r, 0, sizeof(r));
		r.fd = fd;
		r.stop = fw->stop[0];
		while (line_read(&r, op, sizeof(op))) {
			if (!strcmp(op, "get=1") && line_read(&r, op, sizeof(op)) && !op[0]) {
				fake_get(fw, fd);
			} else if (!strcmp(op, "set=1")) {
				snprintf(reply, sizeof(reply), "errno=%d\n\n", fake_set(fw, &r));
				ck_assert_int_eq(write(fd, reply, strlen(reply)), (ssize_t)strlen(reply));
			} else {
				break;
			}
		}
		close(fd);
	}
	return NULL;
}

static struct fake_wg *fake_start(bool supports_remove)
{
	struct fake_wg *fw = calloc(1, sizeof(*fw));
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	ck_assert_ptr_nonnull(fw);
	snprintf(fw->dir, sizeof(fw->dir), "/tmp/privsep-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fw->dir));
	snprintf(fw->path, sizeof(fw->path), "%s/wgp0.sock", fw->dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fw->path);
	fw->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fw->lfd, 0);
	ck_assert_int_eq(bind(fw->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fw->lfd, 8), 0);
	ck_assert_int_eq(pipe(fw->stop), 0);
	fw->supports_remove = supports_remove;
	fw->dev = test_device();
	wgctl_uapi_dir = fw->dir;
	ck_assert_int_eq(pthread_create(&fw->thread, NULL, fake_thread, fw), 0);
	return fw;
}

static void fake_stop(struct fake_wg *fw)
{
	ck_assert_int_eq(write(fw->stop[1], "x", 1), 1);
	pthread_join(fw->thread, NULL);
	close(fw->lfd);
	close(fw->stop[0]);
	close(fw->stop[1]);
	unlink(fw->path);
	rmdir(fw->dir);
	wgdev_free(fw->dev);
	free(fw);
}

/* Whether the fake's peer holds exactly addr. */
static bool fake_has(struct fake_wg *fw, uint8_t peer, const char *addr)
{
	uint8_t key[WG_KEY_LEN];
	struct wgdev_peer *p;
	struct wgd_ip a = ip(addr);

	memset(key, peer, sizeof(key));
	p = wgdev_find_peer(fw->dev, key);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < p->n_allowedips; i++)
		if (wgd_ip_equal(&p->allowedips[i], &a))
			return true;
	return false;
}

/* The parent, serving a socketpair with a handle on the fake device. */
struct parent {
	struct fake_wg *fw;
	struct wgctl *wg;
	struct priv_policy policy;
	int sp[2];
	pthread_t thread;
	int ret;
};

static void *parent_thread(void *arg)
{
	struct parent *pa = arg;

	pa->ret = priv_serve(pa->sp[0], pa->wg, &pa->policy, NULL, 0);
	return NULL;
}

static void parent_start(struct parent *pa, bool supports_remove)
{
	memset(pa, 0, sizeof(*pa));
	pa->fw = fake_start(supports_remove);
	ck_assert_int_eq(wgctl_open(&pa->wg, "wgp0"), 0);
	pa->policy = (struct priv_policy){ .cfg_pools = pools, .n_cfg_pools = 2, .ifindex = 1 };
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pa->sp), 0);
	ck_assert_int_eq(pthread_create(&pa->thread, NULL, parent_thread, pa), 0);
	priv_engine_init(pa->sp[1]);
}

static void parent_stop(struct parent *pa)
{
	close(pa->sp[1]);
	pthread_join(pa->thread, NULL);
	ck_assert_int_eq(pa->ret, 0);
	close(pa->sp[0]);
	wgctl_close(pa->wg);
	fake_stop(pa->fw);
}

/*
 * B's address given up by B and handed to A in one batch: the parent makes
 * B's removal and refuses A's addition, so that no address moves between
 * peers within a batch, whichever way the device takes removals. In the
 * next batch it is free.
 */
START_TEST(serve_no_move_within_batch)
{
	struct wgd_ip x = ip("10.1.9.9/32");
	struct wgdev_change c[2] = { update(PEER_B, 0, 1), update(PEER_A, 1, 0) };
	struct parent pa;
	int err[2];

	parent_start(&pa, _i);
	c[0].del[0] = x;
	c[1].add[0] = x;
	ck_assert_int_eq(priv_update_batch(c, 2, err), 0);
	ck_assert_int_eq(err[0], 0);
	ck_assert_int_eq(err[1], -EEXIST);
	ck_assert(!fake_has(pa.fw, PEER_B, "10.1.9.9/32"));
	ck_assert(!fake_has(pa.fw, PEER_A, "10.1.9.9/32"));

	ck_assert_int_eq(priv_update_batch(&c[1], 1, err), 0);
	ck_assert_int_eq(err[0], 0);
	ck_assert(fake_has(pa.fw, PEER_A, "10.1.9.9/32"));
	parent_stop(&pa);
}
END_TEST

/*
 * Removals through the parent take only lease addresses the peer holds:
 * never another peer's lease, never an administrator's allowed-IP, with
 * removals made incrementally or by read-modify-write.
 */
START_TEST(serve_removals_only_own_leases)
{
	struct wgdev_change c = update(PEER_A, 0, 2);
	struct parent pa;
	int err;

	parent_start(&pa, _i);
	c.del[0] = ip("10.1.9.9/32");
	c.del[1] = ip("10.1.2.3/32");
	ck_assert_int_eq(priv_update_batch(&c, 1, &err), 0);
	ck_assert_int_eq(err, 0);
	ck_assert(fake_has(pa.fw, PEER_B, "10.1.9.9/32"));
	ck_assert(!fake_has(pa.fw, PEER_A, "10.1.2.3/32"));
	ck_assert(fake_has(pa.fw, PEER_A, "fe80::a/128"));
	ck_assert(fake_has(pa.fw, PEER_A, "fd01::7/128"));

	c = update(PEER_A, 0, 1);
	c.del[0] = ip("10.1.0.0/32");
	ck_assert_int_eq(priv_update_batch(&c, 1, &err), 0);
	ck_assert_int_eq(err, -EPERM);
	c.del[0] = ip("192.0.2.10/32");
	ck_assert_int_eq(priv_update_batch(&c, 1, &err), 0);
	ck_assert_int_eq(err, -EPERM);
	ck_assert(fake_has(pa.fw, PEER_A, "10.1.0.0/32"));
	ck_assert(fake_has(pa.fw, PEER_A, "192.0.2.10/32"));
	parent_stop(&pa);
}
END_TEST

/* Additions through the parent: inside another peer's subnet in the pool
 * refused, beside an exit peer's default route made, that route kept. */
START_TEST(serve_additions)
{
	struct wgdev_change c = update(PEER_A, 1, 0);
	struct parent pa;
	int err;

	parent_start(&pa, _i);
	c.add[0] = ip("10.1.100.5/32");
	ck_assert_int_eq(priv_update_batch(&c, 1, &err), 0);
	ck_assert_int_eq(err, -EEXIST);
	ck_assert(!fake_has(pa.fw, PEER_A, "10.1.100.5/32"));
	c.add[0] = ip("10.1.77.7/32");
	ck_assert_int_eq(priv_update_batch(&c, 1, &err), 0);
	ck_assert_int_eq(err, 0);
	ck_assert(fake_has(pa.fw, PEER_A, "10.1.77.7/32"));
	ck_assert(fake_has(pa.fw, PEER_E, "0.0.0.0/0"));
	ck_assert(fake_has(pa.fw, PEER_E, "10.0.0.0/8"));
	parent_stop(&pa);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("privsep");
	TCase *tc = tcase_create("check_update");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, lease_changes_inside_pools_pass);
	tcase_add_test(tc, outside_pools_refused);
	tcase_add_test(tc, unleased_pool_addresses_refused);
	tcase_add_test(tc, own_addresses_refused);
	tcase_add_test(tc, covered_by_another_peer_refused);
	tcase_add_test(tc, no_move_against_the_view);
	tcase_add_test(tc, removal_only_of_what_the_peer_holds);
	tcase_add_test(tc, peer_not_on_device);
	tcase_add_test(tc, derived_linklocal_only_with_auto_ll);
	tcase_add_test(tc, malformed_refused);
	tcase_add_test(tc, device_stream_round_trip);
	tcase_add_test(tc, engine_sends_clean_changes);
	tcase_add_test(tc, serve_malformed_updates_end);
	/* Each with removals made incrementally (1) and by read-modify-write (0). */
	tcase_add_loop_test(tc, serve_no_move_within_batch, 0, 2);
	tcase_add_loop_test(tc, serve_removals_only_own_leases, 0, 2);
	tcase_add_loop_test(tc, serve_additions, 0, 2);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
