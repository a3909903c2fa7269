// SPDX-License-Identifier: MIT

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "../../common/clock.h"
#include "../../common/key.h"
#include "../../server/privsep.h"

static struct wgd_ip pools[2];

static struct wgd_ip ip(const char *s)
{
	struct wgd_ip r;

	ck_assert_int_eq(wgd_ip_parse(&r, s, strlen(s), false), 0);
	return r;
}

static struct priv_update update(unsigned n_add, unsigned n_del)
{
	struct priv_update u;

	memset(&u, 0, sizeof(u));
	u.type = PRIV_UPDATE;
	memset(u.pubkey, 0x42, sizeof(u.pubkey));
	u.n_add = (uint8_t)n_add;
	u.n_del = (uint8_t)n_del;
	return u;
}

static int check(const struct priv_update *u, bool auto_ll)
{
	return priv_check_update(u, sizeof(*u), pools, 2, auto_ll);
}

static void setup(void)
{
	pools[0] = ip("10.1.0.0/16");
	pools[1] = ip("fd01::/64");
}

START_TEST(lease_changes_inside_pools_pass)
{
	struct priv_update u = update(2, 2);

	u.add[0] = ip("10.1.2.3/32");
	u.add[1] = ip("fd01::7/128");
	u.del[0] = ip("10.1.9.9/32");
	u.del[1] = ip("fd01::8/128");
	ck_assert_int_eq(check(&u, false), 0);
}
END_TEST

START_TEST(outside_pools_refused)
{
	struct priv_update u = update(1, 0);

	u.add[0] = ip("10.2.0.1/32");
	ck_assert_int_eq(check(&u, false), -EPERM);
	u = update(0, 1);
	u.del[0] = ip("192.0.2.1/32");
	ck_assert_int_eq(check(&u, false), -EPERM);
	/* A link-local is not a pool address. */
	u = update(1, 0);
	u.add[0] = ip("fe80::1/128");
	ck_assert_int_eq(check(&u, true), -EPERM);
}
END_TEST

START_TEST(derived_linklocal_only_with_auto_ll)
{
	struct priv_update u = update(1, 0);

	wgkey_derive_linklocal(&u.add[0], u.pubkey);
	ck_assert_int_eq(check(&u, false), -EPERM);
	ck_assert_int_eq(check(&u, true), 0);
	/* Another peer's derived address is refused. */
	u.pubkey[0] ^= 1;
	ck_assert_int_eq(check(&u, true), -EPERM);
	/* It can never be removed through the engine. */
	u = update(0, 1);
	wgkey_derive_linklocal(&u.del[0], u.pubkey);
	ck_assert_int_eq(check(&u, true), -EPERM);
}
END_TEST

START_TEST(malformed_refused)
{
	struct priv_update u = update(1, 0);

	u.add[0] = ip("10.1.2.3/32");
	ck_assert_int_eq(priv_check_update(&u, sizeof(u) - 1, pools, 2, false), -EINVAL);
	ck_assert_int_eq(priv_check_update(&u, sizeof(u) + 1, pools, 2, false), -EINVAL);
	u.type = PRIV_GET_DEVICE;
	ck_assert_int_eq(check(&u, false), -EINVAL);
	u.type = PRIV_UPDATE;

	u.n_add = 3;
	ck_assert_int_eq(check(&u, false), -EINVAL);
	u.n_add = 1;

	u.pad[0] = 1;
	ck_assert_int_eq(check(&u, false), -EINVAL);
	u.pad[0] = 0;

	/* A subnet, not a host: a lease is never that. */
	u.add[0] = ip("10.1.2.0/24");
	ck_assert_int_eq(check(&u, false), -EINVAL);
	/* Junk past an IPv4 address. */
	u.add[0] = ip("10.1.2.3/32");
	u.add[0].bytes[9] = 1;
	ck_assert_int_eq(check(&u, false), -EINVAL);
	u.add[0] = ip("10.1.2.3/32");
	u.add[0].family = 99;
	ck_assert_int_eq(check(&u, false), -EINVAL);
	/* An all-zero key is no peer. */
	u.add[0] = ip("10.1.2.3/32");
	memset(u.pubkey, 0, sizeof(u.pubkey));
	ck_assert_int_eq(check(&u, false), -EINVAL);
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

int main(void)
{
	Suite *s = suite_create("privsep");
	TCase *tc = tcase_create("check_update");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, lease_changes_inside_pools_pass);
	tcase_add_test(tc, outside_pools_refused);
	tcase_add_test(tc, derived_linklocal_only_with_auto_ll);
	tcase_add_test(tc, malformed_refused);
	tcase_add_test(tc, device_stream_round_trip);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
