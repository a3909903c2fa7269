// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * The client's checks on what the hub sends, its timers, its lease file
 * and its side of the mesh, through a recording struct client_sys: no
 * root, no network. The mesh's files go to a directory of the run's own
 * under /tmp.
 */

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../client/client.h"
#include "../../common/clock.h"
#include "../../common/file.h"
#include "../../common/log.h"

static struct wgd_ip ip_of(const char *s)
{
	struct wgd_ip ip;

	ck_assert_int_eq(wgd_ip_parse(&ip, s, strlen(s), false), 0);
	return ip;
}

/* ---- a recording host ---- */

static struct {
	int n_addr_add, n_route_add, n_route_del, n_hub, n_resolv, n_hook, n_mtu;
	uint32_t last_lifetime, last_mtu;
	char resolv[1024];
	char file[WGD_MAX_MESSAGE + 64];
	size_t file_len;
	bool admin_route;     /* 10.55.0.0/24 is there already */
	int connect_err;      /* what hub_connect() fails with; 0: it works */
	int hub_end;          /* the hub's end of the last connection */
	struct wgd_ip route_added[WGD_MAX_ROUTES * 2];
	struct wgd_ip route_deleted[WGD_MAX_ROUTES * 2];
	int n_applied;
	int apply_err;        /* what mesh_apply() fails with; 0: it works */
	struct mesh_action applied[16];
	size_t n_host;        /* the host's other addresses */
	struct rtnl_addr host[16];
} rec;

static const uint8_t hub_key[WG_KEY_LEN] = { 1 };
static const uint8_t exit_key[WG_KEY_LEN] = { 2 };
static const uint8_t other_hub[WG_KEY_LEN] = { 3 };

static int r_addr_add(struct client *c, const struct wgd_ip *ip, uint32_t lifetime_s)
{
	(void)c;
	(void)ip;
	rec.n_addr_add++;
	rec.last_lifetime = lifetime_s;
	return 0;
}

static int r_addr_del(struct client *c, const struct wgd_ip *ip)
{
	(void)c;
	(void)ip;
	return 0;
}

/* 10.77.0.1 is configured on the interface; a leased address is not. */
static int r_addr_list(struct client *c, struct rtnl_addr **out, size_t *n)
{
	struct rtnl_addr *a = calloc(2, sizeof(*a));

	(void)c;
	a[0].ip = ip_of("10.77.0.1");
	a[0].valid_lft = UINT32_MAX;
	a[1].ip = ip_of("10.90.0.9");
	a[1].valid_lft = 100;
	*out = a;
	*n = 2;
	return 0;
}

static int r_route_add(struct client *c, const struct wgd_ip *dst)
{
	(void)c;
	if (rec.admin_route && wgd_ip_equal(dst, &(struct wgd_ip){ .family = AF_INET, .cidr = 24,
								    .bytes = { 10, 55 } }))
		return -EEXIST;
	rec.route_added[rec.n_route_add++] = *dst;
	return 0;
}

static int r_route_del(struct client *c, const struct wgd_ip *dst)
{
	(void)c;
	rec.route_deleted[rec.n_route_del++] = *dst;
	return 0;
}

static int r_set_mtu(struct client *c, uint32_t mtu)
{
	(void)c;
	rec.n_mtu++;
	rec.last_mtu = mtu;
	return 0;
}

static void add_peer(struct wgdev *dev, const uint8_t key[WG_KEY_LEN], const char *ep,
		     const char *ip1, const char *ip2)
{
	struct wgdev_peer *p = &dev->peers[dev->n_peers++];
	struct wgd_ip a;

	memcpy(p->pubkey, key, WG_KEY_LEN);
	p->endpoint.sin.sin_family = AF_INET;
	inet_pton(AF_INET, ep, &p->endpoint.sin.sin_addr);
	p->allowedips = calloc(2, sizeof(*p->allowedips));
	ck_assert_int_eq(wgd_ip_parse(&a, ip1, strlen(ip1), true), 0);
	p->allowedips[p->n_allowedips++] = a;
	if (ip2) {
		ck_assert_int_eq(wgd_ip_parse(&a, ip2, strlen(ip2), true), 0);
		p->allowedips[p->n_allowedips++] = a;
	}
}

/* The hub at 192.0.2.1 with fe80::/128; an exit peer at 198.51.100.7
 * with 0.0.0.0/0 and 10.44.0.0/16. */
static struct wgdev *make_dev(void)
{
	struct wgdev *dev = calloc(1, sizeof(*dev));

	dev->peers = calloc(3, sizeof(*dev->peers));
	add_peer(dev, hub_key, "192.0.2.1", "fe80::/128", NULL);
	add_peer(dev, exit_key, "198.51.100.7", "0.0.0.0/0", "10.44.0.0/16");
	return dev;
}

static int r_get_device(struct client *c, struct wgdev **out)
{
	(void)c;
	*out = make_dev();
	return 0;
}

static int r_hub(struct client *c, const struct wgd_ip *add, size_t n_add,
		 const struct wgd_ip *del, size_t n_del)
{
	(void)c;
	(void)add;
	(void)del;
	(void)n_add;
	(void)n_del;
	rec.n_hub++;
	return 0;
}

static int r_resolvconf(struct client *c, const char *input)
{
	(void)c;
	rec.n_resolv++;
	snprintf(rec.resolv, sizeof(rec.resolv), "%s", input ? input : "");
	return 0;
}

static void r_hook(struct client *c, const struct hook_env *env)
{
	(void)c;
	(void)env;
	rec.n_hook++;
}

static int r_save(struct client *c, const void *buf, size_t len)
{
	(void)c;
	ck_assert_uint_le(len, sizeof(rec.file));
	memcpy(rec.file, buf, len);
	rec.file_len = len;
	return 0;
}

static ssize_t r_load(struct client *c, void *buf, size_t max)
{
	(void)c;
	if (!rec.file_len)
		return -ENOENT;
	ck_assert_uint_le(rec.file_len, max);
	memcpy(buf, rec.file, rec.file_len);
	return (ssize_t)rec.file_len;
}

/* A connection to the hub is a socket pair: the test plays the hub at
 * rec.hub_end. */
static int r_hub_connect(struct client *c)
{
	int sv[2];

	(void)c;
	if (rec.connect_err)
		return -rec.connect_err;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	rec.hub_end = sv[1];
	return sv[0];
}

static int r_host_addrs(struct client *c, struct rtnl_addr **out, size_t *n)
{
	(void)c;
	*out = calloc(rec.n_host + 1, sizeof(**out));
	memcpy(*out, rec.host, rec.n_host * sizeof(**out));
	*n = rec.n_host;
	return 0;
}

static int r_mesh_apply(struct client *c, const struct mesh_action *a)
{
	if (a->kind == MESH_ACT_ADD_PEER && c->state_fd >= 0) {
		/* The key is on the disk before it is on the device. */
		char b64[WG_KEY_B64_LEN], text[1024];
		ssize_t len = file_read_at(c->state_fd, c->mesh.rec_file, text, sizeof(text) - 1);

		ck_assert_int_gt(len, 0);
		text[len] = '\0';
		wgkey_to_base64(b64, a->key);
		ck_assert_ptr_nonnull(strstr(text, b64));
	}
	if (rec.apply_err)
		return -rec.apply_err;
	ck_assert_int_lt(rec.n_applied, 16);
	rec.applied[rec.n_applied++] = *a;
	return 0;
}

static const struct client_sys sys_rec = {
	.addr_add = r_addr_add, .addr_del = r_addr_del, .addr_list = r_addr_list,
	.route_add = r_route_add, .route_del = r_route_del, .set_mtu = r_set_mtu,
	.get_device = r_get_device, .hub_allowedips = r_hub, .resolvconf = r_resolvconf,
	.hook = r_hook, .save = r_save, .load = r_load, .hub_connect = r_hub_connect,
	.host_addrs = r_host_addrs, .mesh_apply = r_mesh_apply,
};

static struct client cl;

static void log_quiet(const char *line, size_t len)
{
	(void)line;
	(void)len;
}

static void setup(void)
{
	memset(&rec, 0, sizeof(rec));
	rec.hub_end = -1;
	memset(&cl, 0, sizeof(cl));
	cl.sys = &sys_rec;
	cl.ifname = "wgt0";
	cl.max_mtu = 9000;
	cl.link_up = true;
	cl.state_dir = "state";
	snprintf(cl.state_file, sizeof(cl.state_file), "wgt0.lease");
	memcpy(cl.hub_key, hub_key, WG_KEY_LEN);
	log_set_sink(log_quiet);
}

static void teardown(void)
{
	client_mesh_free(&cl);
	log_set_sink(NULL);
}

/* Room for the directory lines of the answers the tests make up. */
static struct wgd_peer_entry resp_lines[WGD_MAX_PEERS];

/* A response from text, through the real parser. */
static struct wgd_msg response(const char *text)
{
	static struct wgd_parser p;
	static struct wgd_peer_entry lines[WGD_MAX_PEERS];

	wgd_parser_init(&p, WGD_PARSE_RESPONSE);
	wgd_parser_set_peers(&p, lines);
	ck_assert_int_gt(wgd_parse(&p, text, strlen(text)), 0);
	return p.msg;
}

static bool take(const char *text, uint64_t now)
{
	struct wgd_msg req, resp = response(text);

	state_build_request(&cl, &req);
	return state_take_response(&cl, &req, &resp, now, now);
}

/* ---- the checks ---- */

START_TEST(test_route_checks)
{
	struct wgdev *dev = make_dev();
	static const char *const refused[] = {
		"0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "192.0.2.1/32", "192.0.2.0/24",
		"198.51.100.0/24", "127.0.0.0/8", "::1/128", "224.0.0.0/4", "ff00::/8",
		"fe80::/10", "fe80::/64", "169.254.0.0/16", "8000::/1", "0.0.0.0/8",
		"10.44.0.0/16", "240.0.0.0/4", "::ffff:0:0/96",
	};
	static const char *const taken[] = {
		"10.90.0.0/24", "fd90::/64", "10.44.0.0/17", "10.0.0.0/8", "2001:db8::/32",
	};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct wgd_ip r;

		/* ::ffff:0:0/96 does not parse; build it. */
		if (!strcmp(refused[i], "::ffff:0:0/96")) {
			memset(&r, 0, sizeof(r));
			r.family = AF_INET6;
			r.cidr = 96;
			r.bytes[10] = r.bytes[11] = 0xff;
		} else {
			ck_assert_int_eq(wgd_ip_parse(&r, refused[i], strlen(refused[i]), true), 0);
		}
		ck_assert_msg(check_route(&cl, &r, dev) != NULL, "%s taken", refused[i]);
	}
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		struct wgd_ip r;

		ck_assert_int_eq(wgd_ip_parse(&r, taken[i], strlen(taken[i]), true), 0);
		ck_assert_msg(check_route(&cl, &r, dev) == NULL, "%s refused: %s", taken[i],
			      check_route(&cl, &r, dev));
	}
	/* Without the device nothing can be checked. */
	ck_assert_ptr_nonnull(check_route(&cl, &(struct wgd_ip){ .family = AF_INET, .cidr = 8,
								  .bytes = { 10 } }, NULL));
	wgdev_free(dev);
}
END_TEST

START_TEST(test_addr_checks)
{
	struct wgdev *dev = make_dev();
	struct rtnl_addr *addrs;
	size_t n;
	static const char *const refused[] = {
		"127.0.0.1", "::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::", "169.254.1.1",
		"fe80::99", "192.0.2.1", "198.51.100.7", "10.77.0.1", "255.255.255.255",
	};

	r_addr_list(&cl, &addrs, &n);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct wgd_ip a = ip_of(refused[i]);

		ck_assert_msg(check_addr(&cl, &a, dev, addrs, n) != NULL, "%s taken", refused[i]);
	}
	/* A lease address of ours, with its finite lifetime, is fine. */
	ck_assert_ptr_null(check_addr(&cl, &(struct wgd_ip){ .family = AF_INET, .cidr = 32,
							    .bytes = { 10, 90, 0, 9 } },
				      dev, addrs, n));
	ck_assert_ptr_null(check_addr(&cl, &(struct wgd_ip){ .family = AF_INET6, .cidr = 128,
							    .bytes = { 0xfd, 0x90, [15] = 7 } },
				      dev, addrs, n));
	free(addrs);
	wgdev_free(dev);
}
END_TEST

START_TEST(test_mtu_dns_checks)
{
	ck_assert_ptr_nonnull(check_mtu(&cl, 0));
	ck_assert_ptr_nonnull(check_mtu(&cl, 100));
	ck_assert_ptr_nonnull(check_mtu(&cl, 1279));
	ck_assert_ptr_null(check_mtu(&cl, 1280));
	ck_assert_ptr_null(check_mtu(&cl, 9000));
	ck_assert_ptr_nonnull(check_mtu(&cl, 9001));
	cl.max_mtu = 0; /* unknown: IPv4's 65535 */
	ck_assert_ptr_null(check_mtu(&cl, 65535));
	ck_assert_ptr_nonnull(check_mtu(&cl, 70000));

	ck_assert(dns_search_valid("example.com"));
	ck_assert(dns_search_valid("example.com,corp.example"));
	ck_assert(dns_search_valid("a-b.c1.example."));
	ck_assert(dns_search_valid("localdomain"));
	ck_assert(!dns_search_valid(""));
	ck_assert(!dns_search_valid("$(touch /tmp/x)"));
	ck_assert(!dns_search_valid("a;reboot"));
	ck_assert(!dns_search_valid("`id`"));
	ck_assert(!dns_search_valid("a|b"));
	ck_assert(!dns_search_valid("a b"));
	ck_assert(!dns_search_valid("a\"b"));
	ck_assert(!dns_search_valid("a\rb"));
	ck_assert(!dns_search_valid("a,,b"));
	ck_assert(!dns_search_valid(",a"));
	ck_assert(!dns_search_valid("a..b"));
	ck_assert(!dns_search_valid(".a"));
	ck_assert(!dns_search_valid("."));
	ck_assert(!dns_search_valid("a_b.example"));
	{
		char label[80];

		memset(label, 'a', 64);
		label[64] = '\0';
		ck_assert(!dns_search_valid(label));
		label[63] = '\0';
		ck_assert(dns_search_valid(label));
	}

	ck_assert_ptr_nonnull(check_dns(&(struct wgd_ip){ .family = AF_INET, .cidr = 32 }));
	ck_assert_ptr_nonnull(check_dns(&(struct wgd_ip){ .family = AF_INET, .cidr = 32,
							  .bytes = { 224, 0, 0, 251 } }));
	ck_assert_ptr_null(check_dns(&(struct wgd_ip){ .family = AF_INET, .cidr = 32,
						       .bytes = { 10, 90, 0, 1 } }));
}
END_TEST

START_TEST(test_hub_peer)
{
	struct wgdev *dev = make_dev();
	uint8_t key[WG_KEY_LEN];

	/* The exit peer's ::/0 would cover fe80::, but it is not the hub. */
	dev->peers[1].allowedips[0] = ip_of("::");
	dev->peers[1].allowedips[0].cidr = 0;
	ck_assert_int_eq(find_hub_peer(dev, key), 0);
	ck_assert_mem_eq(key, hub_key, WG_KEY_LEN);

	dev->peers[0].allowedips[0] = ip_of("fe80::/64");
	dev->peers[0].allowedips[0].cidr = 64;
	ck_assert_int_eq(find_hub_peer(dev, key), -ENOENT);

	dev->peers[0].allowedips[0] = ip_of("fe80::");
	dev->peers[1].allowedips[1] = ip_of("fe80::");
	ck_assert_int_eq(find_hub_peer(dev, key), -EEXIST);
	wgdev_free(dev);
}
END_TEST

/* ---- taking responses ---- */

static const char good[] = "ip=10.90.0.9\nip=fd90::7\nroute=10.90.0.0/24\nroute=10.55.0.0/24\n"
			   "dns=10.90.0.1\ndns_search=example.net\nmtu=1380\n"
			   "leasetime=3600\nerrno=0\n\n";

START_TEST(test_hostile_answer_partly_taken)
{
	const char *text = "ip=127.0.0.1\nip=fd90::7\nroute=0.0.0.0/0\nroute=10.90.0.0/24\n"
			   "route=192.0.2.0/24\ndns_search=$(reboot)\nmtu=100\n"
			   "leasetime=60\nerrno=0\n\n";

	ck_assert(take(text, 1000));
	ck_assert(cl.lease.bound);
	ck_assert(!cl.lease.has_ip4);
	ck_assert(cl.lease.has_ip6);
	ck_assert_uint_eq(cl.lease.n_routes, 1);
	ck_assert_int_eq(rec.n_route_add, 1);
	ck_assert_str_eq(cl.lease.dns_search, "");
	ck_assert_int_eq(rec.n_mtu, 0);
	ck_assert_int_eq(cl.state, CLIENT_BOUND);
}
END_TEST

START_TEST(test_no_usable_address_backs_off)
{
	const char *text = "ip=127.0.0.1\nip=fe80::1\nleasetime=60\nerrno=0\n\n";
	uint64_t now = 1000;

	for (int i = 0; i < 20; i++) {
		ck_assert(!take(text, now));
		ck_assert(!cl.lease.bound);
		ck_assert_uint_ge(cl.next_try_ms, now + 180);
		now = cl.next_try_ms;
	}
	ck_assert_int_eq(rec.n_addr_add, 0);
	/* Backing off: the waits grow by 1.25 (0.94 to 1.56 with jitter), so
	 * even with the least jitter each time, 20 refusals take 12 s and the
	 * last wait is over 2.5 s. */
	ck_assert_uint_ge(cl.backoff_ms, 2500);
	ck_assert_uint_gt(now, 12000);
}
END_TEST

START_TEST(test_admin_route_kept)
{
	rec.admin_route = true;
	ck_assert(take(good, 1000));
	ck_assert_uint_eq(cl.lease.n_routes, 2);
	ck_assert_int_eq(rec.n_route_add, 1);
	/* A release deletes its own route only. */
	state_drop_lease(&cl, "RELEASE");
	ck_assert_int_eq(rec.n_route_del, 1);
	ck_assert(wgd_ip_equal(&rec.route_deleted[0], &rec.route_added[0]));
}
END_TEST

START_TEST(test_repeated_routes_bounded)
{
	char text[4096];
	size_t n = 0;

	for (int i = 0; i < 32; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "route=10.9.0.0/16\n");
	snprintf(text + n, sizeof(text) - n, "ip=10.90.0.9\nleasetime=60\nerrno=0\n\n");
	ck_assert(take(text, 1000));
	ck_assert_uint_eq(cl.lease.n_routes, 1);
	n = (size_t)snprintf(text, sizeof(text), "route=10.9.0.0/16\n");
	for (int i = 0; i < 31; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "route=10.%d.0.0/16\n", 100 + i);
	snprintf(text + n, sizeof(text) - n, "ip=10.90.0.9\nleasetime=60\nerrno=0\n\n");
	ck_assert(take(text, 2000));
	ck_assert_uint_eq(cl.lease.n_routes, 32);
	ck_assert_int_eq(rec.n_route_add, 32);
	state_drop_lease(&cl, "RELEASE");
	ck_assert_int_eq(rec.n_route_del, 32);
}
END_TEST

/* ---- timers ---- */

START_TEST(test_zero_lease)
{
	uint64_t now = 1000;
	int requests = 0;

	/* A hub that answers every request with a zero lease, for a minute. */
	while (now < 61000) {
		ck_assert(take("ip=10.90.0.9\nleasetime=0\nerrno=0\n\n", now));
		requests++;
		ck_assert_uint_eq(cl.lease.leasetime, LEASE_MIN_S);
		ck_assert_uint_ge(cl.lease.t1_ms, now + LEASE_MIN_S * 1000 / 2 * 9 / 10);
		ck_assert_uint_ge(rec.last_lifetime, LEASE_MIN_S);
		now = cl.next_try_ms;
		state_tick(&cl, now);
	}
	ck_assert_int_le(requests, 14);
	ck_assert_int_le(rec.n_hook, 14);
}
END_TEST

START_TEST(test_long_lease)
{
	const uint64_t now = 1000, days58 = 58ULL * 86400;
	char text[128];
	int timeout;

	snprintf(text, sizeof(text), "ip=10.90.0.9\nleasetime=%llu\nerrno=0\n\n",
		 (unsigned long long)days58);
	ck_assert(take(text, now));
	/* T1 at half the lease, with jitter. */
	ck_assert_uint_ge(cl.lease.t1_ms, now + days58 * 1000 / 2 * 9 / 10);
	ck_assert_uint_le(cl.lease.t1_ms, now + days58 * 1000 / 2 * 11 / 10);
	ck_assert_uint_eq(cl.lease.t2_ms, now + days58 * 1000 / 8 * 7);
	/* The loop sleeps in bounded steps and wakes at T1. */
	timeout = state_poll_timeout(&cl, now);
	ck_assert_int_gt(timeout, 0);
	ck_assert_int_le(timeout, STATE_MAX_SLEEP_MS);
	ck_assert_int_eq(state_poll_timeout(&cl, cl.lease.t1_ms - 5), 5);
	state_tick(&cl, cl.lease.t1_ms);
	ck_assert_int_eq(cl.state, CLIENT_RENEWING);
	ck_assert_int_eq(state_poll_timeout(&cl, cl.lease.t1_ms), 0);
	state_tick(&cl, cl.lease.t2_ms);
	ck_assert_int_eq(cl.state, CLIENT_REBINDING);
	state_tick(&cl, cl.lease.expires_ms);
	ck_assert_int_eq(cl.state, CLIENT_REBOOT);
	ck_assert(!cl.lease.bound);
}
END_TEST

START_TEST(test_huge_lease)
{
	ck_assert(take("ip=10.90.0.9\nleasetime=4294967295\nerrno=0\n\n", 1000));
	/* UINT32_MAX would be "forever" to the kernel. */
	ck_assert_uint_eq(rec.last_lifetime, LIFETIME_MAX_S);
	ck_assert_uint_lt(cl.lease.expires_ms, UINT64_MAX / 2);
	ck_assert_int_gt(state_poll_timeout(&cl, 1000), 0);
}
END_TEST

START_TEST(test_state_names)
{
	ck_assert_str_eq(client_state_name(CLIENT_INIT), "INIT");
	ck_assert_str_eq(client_state_name(CLIENT_REBINDING), "REBINDING");
	ck_assert_str_eq(client_state_name((enum client_state)99), "?");
}
END_TEST

/* ---- liveness and the lease file ---- */

START_TEST(test_refused_hint_forgotten)
{
	struct wgd_msg req;

	cl.has_hint4 = cl.has_hint6 = true;
	cl.hint4 = ip_of("10.90.0.33");
	cl.hint6 = ip_of("fd90::33");
	cl.state = CLIENT_REBOOT;
	state_build_request(&cl, &req);
	ck_assert(wgd_ip_equal(&req.ip4, &cl.hint4));
	ck_assert(!take("errno=3\nerrmsg=Chosen IP(s) unavailable\n\n", 1000));
	ck_assert(!cl.has_hint4 && !cl.has_hint6);
	ck_assert_int_eq(cl.state, CLIENT_INIT);
	state_build_request(&cl, &req);
	ck_assert(wgd_ip_is_unspecified(&req.ip4));
	ck_assert(wgd_ip_is_unspecified(&req.ip6));
}
END_TEST

START_TEST(test_leasefile_hub)
{
	char text[256];
	struct wgd_msg m;

	snprintf(text, sizeof(text), "ip=10.90.0.9\nleasestart=%u\nleasetime=3600\nerrno=0\n\n",
		 clock_real_s());
	ck_assert(take(text, 1000));
	ck_assert_uint_gt(rec.file_len, 0);
	ck_assert_int_eq(leasefile_parse(rec.file, rec.file_len, hub_key, NULL, &m), 0);
	ck_assert(wgd_ip_equal(&m.ip4, &cl.lease.ip4));
	ck_assert_int_eq(leasefile_parse(rec.file, rec.file_len, other_hub, NULL, &m), -ESTALE);
	/* Without the key line, an old file is no lease. */
	ck_assert_int_eq(leasefile_parse(strchr(rec.file, '\n') + 1,
					 rec.file_len - (size_t)(strchr(rec.file, '\n') + 1 -
								 rec.file), hub_key, NULL, &m),
			 -EBADMSG);

	/* A client behind another hub asks that hub for any address. */
	memset(&cl.lease, 0, sizeof(cl.lease));
	cl.has_hint4 = cl.has_hint6 = false;
	memcpy(cl.hub_key, other_hub, WG_KEY_LEN);
	leasefile_load(&cl, clock_real_s(), 5000);
	ck_assert(!cl.has_hint4 && !cl.has_hint6 && !cl.lease.bound);

	/* Behind the same hub, the running lease is taken up and renewed. */
	memcpy(cl.hub_key, hub_key, WG_KEY_LEN);
	leasefile_load(&cl, clock_real_s(), 5000);
	ck_assert(cl.lease.bound);
	ck_assert_int_eq(cl.state, CLIENT_RENEWING);
	ck_assert_uint_eq(cl.next_try_ms, 5000);
}
END_TEST

START_TEST(test_dns_and_strings)
{
	ck_assert(take(good, 1000));
	ck_assert_str_eq(rec.resolv, "nameserver 10.90.0.1\nsearch example.net\n");
	{
		char out[64];

		ck_assert_str_eq(log_escape("a\x1b[2J\\\n", 7, out, sizeof(out)),
				 "a\\x1b[2J\\x5c\\x0a");
		ck_assert_str_eq(log_escape("abcdefgh", 8, out, 8), "abcd...");
	}
}
END_TEST

/* ---- the exchange, with the test as the hub ---- */

/* What poll() would say of ex's descriptor now. */
static short ready(const struct exchange *ex)
{
	struct pollfd pfd = { .fd = exchange_fd(ex), .events = exchange_events(ex) };

	ck_assert_int_ge(poll(&pfd, 1, 0), 0);
	return pfd.revents;
}

static void hub_send(const char *text)
{
	ck_assert_int_eq(write(rec.hub_end, text, strlen(text)), (ssize_t)strlen(text));
}

START_TEST(test_exchange_in_pieces)
{
	static struct exchange ex;
	struct wgd_msg req;
	char want[WGD_MAX_MESSAGE], got[WGD_MAX_MESSAGE];
	ssize_t len;

	exchange_init(&ex);
	state_build_request(&cl, &req);
	ck_assert_int_eq(exchange_start(&ex, &cl, &req, 1000, 3000), 0);
	ck_assert_int_eq(ex.step, EXCHANGE_CONNECTING);
	ck_assert_int_eq(exchange_events(&ex), POLLOUT);
	ck_assert_uint_eq(exchange_wake(&ex), 4000);

	/* Connected, the request goes out whole; then it waits to read. */
	exchange_advance(&ex, ready(&ex), 1010);
	ck_assert_int_eq(ex.step, EXCHANGE_RECEIVING);
	ck_assert_int_eq(exchange_events(&ex), POLLIN);
	len = wgd_serialize_request(&req, want, sizeof(want));
	ck_assert_int_eq(read(rec.hub_end, got, sizeof(got)), len);
	ck_assert_int_eq(memcmp(got, want, (size_t)len), 0);

	/* Nothing to read yet: nothing changes. */
	exchange_advance(&ex, ready(&ex), 1020);
	ck_assert_int_eq(ex.step, EXCHANGE_RECEIVING);
	/* A line cut in two, then the rest. */
	hub_send("ip=10.90.0.");
	exchange_advance(&ex, ready(&ex), 1030);
	ck_assert_int_eq(ex.step, EXCHANGE_RECEIVING);
	hub_send("7\nleasestart=0\nleasetime=60\nerrno=0\n\n");
	exchange_advance(&ex, ready(&ex), 1040);
	ck_assert_int_eq(ex.step, EXCHANGE_DONE);
	ck_assert_int_eq(ex.result, 0);
	ck_assert_int_eq(ex.fd, -1);
	ck_assert_uint_eq(exchange_wake(&ex), 0);
	ck_assert_ptr_nonnull(exchange_response(&ex));
	ck_assert(exchange_response(&ex)->has_ip4);
	ck_assert_uint_eq(exchange_response(&ex)->leasetime, 60);
	ck_assert(state_take_response(&cl, &ex.req, exchange_response(&ex), 1000, 1040));
	ck_assert(cl.lease.bound);
	exchange_end(&ex);
	ck_assert_int_eq(ex.step, EXCHANGE_IDLE);
	ck_assert_int_eq(exchange_fd(&ex), -1);
	ck_assert_uint_eq(exchange_wake(&ex), UINT64_MAX);
	close(rec.hub_end);
}
END_TEST

START_TEST(test_exchange_failures)
{
	static struct exchange ex;
	struct wgd_msg req;
	char got[WGD_MAX_MESSAGE];

	exchange_init(&ex);
	state_build_request(&cl, &req);

	/* A hub that never answers: done at the deadline, not before. */
	ck_assert_int_eq(exchange_start(&ex, &cl, &req, 1000, 3000), 0);
	exchange_advance(&ex, ready(&ex), 1000);
	exchange_advance(&ex, 0, 3999);
	ck_assert_int_eq(ex.step, EXCHANGE_RECEIVING);
	exchange_advance(&ex, 0, 4000);
	ck_assert_int_eq(ex.step, EXCHANGE_DONE);
	ck_assert_int_eq(ex.result, -ETIMEDOUT);
	ck_assert_ptr_null(exchange_response(&ex));
	close(rec.hub_end);

	/* A hub that hangs up without an answer. */
	ck_assert_int_eq(exchange_start(&ex, &cl, &req, 5000, 3000), 0);
	exchange_advance(&ex, ready(&ex), 5000);
	ck_assert_int_gt(read(rec.hub_end, got, sizeof(got)), 0);
	close(rec.hub_end);
	exchange_advance(&ex, ready(&ex), 5010);
	ck_assert_int_eq(ex.result, -ECONNRESET);

	/* A hub that sends what is no response. */
	ck_assert_int_eq(exchange_start(&ex, &cl, &req, 6000, 3000), 0);
	exchange_advance(&ex, ready(&ex), 6000);
	hub_send("request_ip=1\n\n");
	exchange_advance(&ex, ready(&ex), 6010);
	ck_assert_int_eq(ex.step, EXCHANGE_DONE);
	ck_assert_int_eq(ex.result, -EBADMSG);
	close(rec.hub_end);

	/* No connection at all: done at once, for the loop's next pass. */
	rec.connect_err = ENETUNREACH;
	ck_assert_int_eq(exchange_start(&ex, &cl, &req, 7000, 3000), -ENETUNREACH);
	ck_assert_int_eq(ex.step, EXCHANGE_DONE);
	ck_assert_int_eq(ex.result, -ENETUNREACH);
	ck_assert_int_eq(exchange_fd(&ex), -1);
	ck_assert_uint_eq(exchange_wake(&ex), 0);
	exchange_end(&ex);
}
END_TEST

/* Two exchanges at once, as the loop holds a lease's next to a long poll:
 * each goes its own way. */
START_TEST(test_exchanges_side_by_side)
{
	static struct exchange a, b;
	struct wgd_msg req;
	char got[WGD_MAX_MESSAGE];
	int hub_a, hub_b;

	exchange_init(&a);
	exchange_init(&b);
	state_build_request(&cl, &req);
	ck_assert_int_eq(exchange_start(&a, &cl, &req, 1000, 3000), 0);
	hub_a = rec.hub_end;
	ck_assert_int_eq(exchange_start(&b, &cl, &req, 1000, 60000), 0);
	hub_b = rec.hub_end;
	exchange_advance(&a, ready(&a), 1000);
	exchange_advance(&b, ready(&b), 1000);
	ck_assert_int_gt(read(hub_a, got, sizeof(got)), 0);
	ck_assert_int_gt(read(hub_b, got, sizeof(got)), 0);

	rec.hub_end = hub_a;
	hub_send("ip=10.90.0.7\nleasetime=60\nerrno=0\n\n");
	exchange_advance(&a, ready(&a), 1100);
	exchange_advance(&b, ready(&b), 1100);
	ck_assert_int_eq(a.result, 0);
	ck_assert_int_eq(a.step, EXCHANGE_DONE);
	ck_assert_int_eq(b.step, EXCHANGE_RECEIVING);
	exchange_advance(&b, 0, 4000);
	ck_assert_int_eq(b.step, EXCHANGE_RECEIVING);
	exchange_end(&a);
	exchange_end(&b);
	ck_assert_int_eq(b.step, EXCHANGE_IDLE);
	close(hub_a);
	close(hub_b);
}
END_TEST

/* ---- the mesh ---- */

/* One directory for the run, removed by an unchecked teardown, which runs
 * in the parent even when a test fails; a fresh one inside it per test. */
static char base[64];

static void remove_dir(const char *d)
{
	struct dirent *e;
	DIR *dp = opendir(d);

	if (!dp)
		return;
	while ((e = readdir(dp)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(dp), e->d_name, 0);
	closedir(dp);
	rmdir(d);
}

static void make_base(void)
{
	strcpy(base, "/tmp/wgd-client-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
}

static void remove_base(void)
{
	struct dirent *e;
	char sub[256];
	DIR *dp = opendir(base);

	if (!dp)
		return;
	while ((e = readdir(dp))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    snprintf(sub, sizeof(sub), "%s/%s", base, e->d_name) < (int)sizeof(sub))
			remove_dir(sub);
	}
	closedir(dp);
	rmdir(base);
}

/* The state directory of one test: cl.state_fd. */
static void state_dir(void)
{
	static char dir[128];

	snprintf(dir, sizeof(dir), "%s/t-XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	cl.state_dir = dir;
	cl.state_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(cl.state_fd, 0);
}

static bool file_exists(const char *name)
{
	struct stat st;

	return !fstatat(cl.state_fd, name, &st, AT_SYMLINK_NOFOLLOW);
}

static const uint8_t key_a[WG_KEY_LEN] = { 0xa1, 1 }, key_b[WG_KEY_LEN] = { 0xb2, 2 };
static const uint8_t key_c[WG_KEY_LEN] = { 0xc3, 3 }, self_key[WG_KEY_LEN] = { 0x5e };

START_TEST(test_mesh_join_decision)
{
	struct wgd_msg req, resp = response(good);

	cl.has_pubkey = true;
	/* A hub that does not say mesh=1 is not asked for peers. */
	state_build_request(&cl, &req);
	ck_assert(state_take_response(&cl, &req, &resp, 1000, 1000));
	ck_assert(!cl.mesh_offered);
	ck_assert(!client_mesh_wanted(&cl));

	resp.mesh = true;
	ck_assert(state_take_response(&cl, &req, &resp, 2000, 2000));
	ck_assert(cl.mesh_offered);
	ck_assert(client_mesh_wanted(&cl));
	cl.no_mesh = true;
	ck_assert(!client_mesh_wanted(&cl));
	cl.no_mesh = false;
	/* Without a key of our own the mesh cannot tell us from the others. */
	cl.has_pubkey = false;
	ck_assert(!client_mesh_wanted(&cl));
	cl.has_pubkey = true;

	/* The hub's latest word counts: restarted without --mesh, it no
	 * longer offers it. */
	resp.mesh = false;
	ck_assert(state_take_response(&cl, &req, &resp, 3000, 3000));
	ck_assert(!client_mesh_wanted(&cl));
	resp.mesh = true;
	ck_assert(state_take_response(&cl, &req, &resp, 4000, 4000));
	ck_assert(client_mesh_wanted(&cl));
	/* Without the lease, no mesh. */
	state_drop_lease(&cl, "EXPIRE");
	ck_assert(!client_mesh_wanted(&cl));

	/* An answer that is refused whole changes nothing. */
	cl.mesh_offered = false;
	resp = response("ip=127.0.0.1\nleasetime=60\nerrno=0\n\n");
	resp.mesh = true;
	ck_assert(!state_take_response(&cl, &req, &resp, 5000, 5000));
	ck_assert(!cl.mesh_offered);
}
END_TEST

static struct rtnl_addr host_addr(const char *s, uint8_t cidr, uint32_t flags)
{
	struct rtnl_addr a = { .ip = ip_of(s), .flags = flags };

	a.ip.cidr = cidr;
	return a;
}

START_TEST(test_mesh_candidates)
{
	struct rtnl_addr addrs[] = {
		host_addr("127.0.0.1", 8, 0),
		host_addr("169.254.3.4", 16, 0),
		host_addr("224.0.0.5", 32, 0),
		host_addr("0.0.0.0", 32, 0),
		host_addr("240.1.2.3", 8, 0),
		host_addr("192.168.1.23", 24, 0),
		host_addr("10.90.0.5", 24, 0),                   /* inside a route */
		host_addr("172.16.0.1", 16, IFA_F_TENTATIVE),     /* not ours yet */
		host_addr("203.0.113.7", 24, 0),
		host_addr("192.168.1.23", 24, 0),                 /* twice */
		host_addr("198.51.100.9", 24, 0),
		host_addr("100.64.0.9", 10, 0),
		host_addr("::1", 128, 0),
		host_addr("fe80::1", 64, 0),
		host_addr("fd00::1", 64, 0),
		host_addr("ff02::1", 128, 0),
		host_addr("2001:db8:2::5", 64, 0),                /* inside a route */
		host_addr("2001:db8:3::7", 64, IFA_F_DEPRECATED),
		host_addr("2001:db8:1::23", 64, 0),
		host_addr("::", 128, 0),
	};
	struct wgd_ip routes[] = { ip_of("10.90.0.0"), ip_of("2001:db8:2::") };
	struct wgd_ip out[WGD_MAX_CANDIDATES + 1];
	size_t n;

	routes[0].cidr = 24;
	routes[1].cidr = 48;
	memset(out, 0, sizeof(out));
	n = client_mesh_candidates(addrs, sizeof(addrs) / sizeof(addrs[0]), routes, 2, out);
	/* Three IPv4, in the host's order, and a place kept for IPv6. */
	ck_assert_uint_eq(n, 4);
	ck_assert(wgd_ip_equal(&out[0], &(struct wgd_ip){ .family = AF_INET, .cidr = 32,
							   .bytes = { 192, 168, 1, 23 } }));
	ck_assert(wgd_ip_equal(&out[1], &(struct wgd_ip){ .family = AF_INET, .cidr = 32,
							   .bytes = { 203, 0, 113, 7 } }));
	ck_assert(wgd_ip_equal(&out[2], &(struct wgd_ip){ .family = AF_INET, .cidr = 32,
							   .bytes = { 198, 51, 100, 9 } }));
	ck_assert(wgd_ip_equal(&out[3], &(struct wgd_ip){ .family = AF_INET6, .cidr = 128,
							   .bytes = { 0x20, 0x01, 0x0d, 0xb8, 0, 1,
								      [15] = 0x23 } }));
	ck_assert_int_eq(out[4].family, 0);

	/* Without the routes, the address inside them is one too. */
	n = client_mesh_candidates(addrs + 6, 1, NULL, 0, out);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(out[0].cidr, 32);
	/* IPv6 alone fills every place; nothing usable gives none. */
	{
		struct rtnl_addr v6[] = {
			host_addr("2001:db8::1", 64, 0), host_addr("2001:db8::2", 64, 0),
			host_addr("2001:db8::3", 64, 0), host_addr("2001:db8::4", 64, 0),
			host_addr("2001:db8::5", 64, 0),
		};

		ck_assert_uint_eq(client_mesh_candidates(v6, 5, NULL, 0, out), WGD_MAX_CANDIDATES);
		ck_assert_uint_eq(client_mesh_candidates(addrs, 5, routes, 2, out), 0);
	}
}
END_TEST

START_TEST(test_mesh_record_format)
{
	const uint8_t keys[3][WG_KEY_LEN] = { { 0xa1, 1 }, { 0xb2, 2 }, { 0xc3, 3 } };
	uint8_t back[4][WG_KEY_LEN];
	char buf[512], bad[512];
	ssize_t len;

	len = client_mesh_record_format(keys, 3, buf, sizeof(buf));
	ck_assert_int_eq(len, 3 * (WG_KEY_B64_LEN - 1 + 1));
	ck_assert_int_eq(client_mesh_record_parse(buf, (size_t)len, back, 4), 3);
	ck_assert_mem_eq(back, keys, sizeof(keys));
	/* Too small a buffer, and more keys than the caller has room for. */
	ck_assert_int_eq(client_mesh_record_format(keys, 3, buf, 3 * 45), -ENOSPC);
	ck_assert_int_eq(client_mesh_record_parse(buf, (size_t)len, back, 2), -EBADMSG);
	/* Cut short, a line too long, a bad key: no record at all. */
	ck_assert_int_eq(client_mesh_record_parse(buf, (size_t)len - 1, back, 4), -EBADMSG);
	memcpy(bad, buf, (size_t)len);
	bad[44] = 'x';
	ck_assert_int_eq(client_mesh_record_parse(bad, (size_t)len, back, 4), -EBADMSG);
	memcpy(bad, buf, (size_t)len);
	bad[3] = '*';
	ck_assert_int_eq(client_mesh_record_parse(bad, (size_t)len, back, 4), -EBADMSG);
	/* A key twice is one key. */
	memcpy(bad, buf, 45);
	memcpy(bad + 45, buf, 45);
	ck_assert_int_eq(client_mesh_record_parse(bad, 90, back, 4), 1);
	ck_assert_int_eq(client_mesh_record_parse(buf, 0, back, 4), 0);
}
END_TEST

START_TEST(test_mesh_record_round_trip)
{
	struct client_mesh *cm = &cl.mesh;

	state_dir();
	snprintf(cm->rec_file, sizeof(cm->rec_file), "wgt0.mesh");
	ck_assert_int_eq(client_mesh_record_load(&cl), -ENOENT);
	cm->rec = calloc(3, WG_KEY_LEN);
	cm->cap_rec = 3;
	memcpy(cm->rec[0], key_a, WG_KEY_LEN);
	memcpy(cm->rec[1], key_b, WG_KEY_LEN);
	cm->n_rec = 2;
	ck_assert_int_eq(client_mesh_record_save(&cl), 0);
	ck_assert(file_exists("wgt0.mesh"));
	ck_assert(!file_exists("wgt0.mesh.tmp"));
	memset(cm->rec, 0, 3 * WG_KEY_LEN);
	cm->n_rec = 0;
	ck_assert_int_eq(client_mesh_record_load(&cl), 0);
	ck_assert_uint_eq(cm->n_rec, 2);
	ck_assert_mem_eq(cm->rec[0], key_a, WG_KEY_LEN);
	ck_assert_mem_eq(cm->rec[1], key_b, WG_KEY_LEN);

	/* No key left: no file. */
	cm->n_rec = 0;
	ck_assert_int_eq(client_mesh_record_save(&cl), 0);
	ck_assert(!file_exists("wgt0.mesh"));
	ck_assert_int_eq(client_mesh_record_load(&cl), -ENOENT);

	/* A link planted in its place is neither read nor followed. */
	ck_assert_int_eq(symlinkat("elsewhere", cl.state_fd, "wgt0.mesh"), 0);
	ck_assert_int_ne(client_mesh_record_load(&cl), 0);
	ck_assert_uint_eq(cm->n_rec, 0);
	cm->n_rec = 1;
	ck_assert_int_eq(client_mesh_record_save(&cl), 0);
	ck_assert(!file_exists("elsewhere"));
	ck_assert_int_eq(client_mesh_record_load(&cl), 0);
	ck_assert_uint_eq(cm->n_rec, 1);
	ck_assert_mem_eq(cm->rec[0], key_a, WG_KEY_LEN);
	close(cl.state_fd);
}
END_TEST

/* The hub, an administrator's peer (key_a), and key_b, which an earlier
 * run recorded and left; key_c was recorded and is gone already. */
static struct wgdev *mesh_dev(bool hub_alone)
{
	struct wgdev *dev = calloc(1, sizeof(*dev));

	dev->peers = calloc(4, sizeof(*dev->peers));
	memcpy(dev->pubkey, self_key, WG_KEY_LEN);
	dev->has_pubkey = true;
	dev->listen_port = 51820;
	add_peer(dev, hub_key, "192.0.2.1", "fe80::/128", NULL);
	if (hub_alone)
		return dev;
	add_peer(dev, key_a, "198.51.100.7", "10.44.0.0/16", NULL);
	add_peer(dev, key_b, "198.51.100.8", "10.90.0.77/32", NULL);
	return dev;
}

START_TEST(test_mesh_startup_cleanup)
{
	static struct exchange ex;
	struct client_mesh *cm = &cl.mesh;
	struct wgdev *dev = mesh_dev(false);
	char text[256];
	ssize_t len;
	const uint8_t left[3][WG_KEY_LEN] = { { 0xb2, 2 }, { 0xc3, 3 }, { 1 } };

	state_dir();
	/* The hub's key in a record is never taken for one of ours. */
	len = client_mesh_record_format(left, 3, text, sizeof(text));
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(file_write_atomic_at(cl.state_fd, "wgt0.mesh", text, (size_t)len, 0600),
			 0);
	ck_assert_int_eq(file_write_atomic_at(cl.state_fd, "wgt0.mesh-status", "mesh=joined\n",
					      12, 0600), 0);
	exchange_init(&ex);
	ck_assert_int_eq(client_mesh_init(&cl, dev, &ex), 0);
	/* key_b removed, nothing else touched. */
	ck_assert_int_eq(rec.n_applied, 1);
	ck_assert_int_eq(rec.applied[0].kind, MESH_ACT_REMOVE_PEER);
	ck_assert_mem_eq(rec.applied[0].key, key_b, WG_KEY_LEN);
	ck_assert_uint_eq(cm->n_rec, 0);
	ck_assert(!file_exists("wgt0.mesh"));
	ck_assert(!file_exists("wgt0.mesh-status"));
	/* The administrator's peer is never the mesh's; the hub is apart,
	 * and a recorded peer is ours, removed or not. */
	ck_assert_uint_eq(cm->n_admin, 1);
	ck_assert_mem_eq(cm->admin[0], key_a, WG_KEY_LEN);
	ck_assert_mem_eq(cm->self_key, self_key, WG_KEY_LEN);
	ck_assert_uint_eq(cm->port, 51820);
	ck_assert_int_eq(cm->hub_endpoint.addr.family, AF_INET);
	client_mesh_free(&cl);

	/* A removal that fails keeps its key recorded, for the next run,
	 * and does not make the peer the administrator's. */
	rec.n_applied = 0;
	rec.apply_err = EIO;
	ck_assert_int_eq(file_write_atomic_at(cl.state_fd, "wgt0.mesh", text, (size_t)len, 0600),
			 0);
	ck_assert_int_eq(client_mesh_init(&cl, dev, &ex), 0);
	ck_assert_uint_eq(cm->n_rec, 1);
	ck_assert_mem_eq(cm->rec[0], key_b, WG_KEY_LEN);
	ck_assert_uint_eq(cm->n_admin, 1);
	ck_assert_mem_eq(cm->admin[0], key_a, WG_KEY_LEN);
	len = file_read_at(cl.state_fd, "wgt0.mesh", text, sizeof(text));
	ck_assert_int_eq(len, 45);
	/* Leaving with the device there: removed, record gone. */
	rec.apply_err = 0;
	client_mesh_leave(&cl, false);
	ck_assert_int_eq(rec.n_applied, 1);
	ck_assert_mem_eq(rec.applied[0].key, key_b, WG_KEY_LEN);
	ck_assert(!file_exists("wgt0.mesh"));
	wgdev_free(dev);
	close(cl.state_fd);
}
END_TEST

/* A client bound with routes 10.90.0.0/24, whose hub offers the mesh. */
static void mesh_client(struct exchange *ex)
{
	struct wgdev *dev = mesh_dev(true);
	struct wgd_msg req, resp = response(good);

	cl.has_pubkey = true;
	cl.state_fd = -1;
	exchange_init(ex);
	ck_assert_int_eq(client_mesh_init(&cl, dev, ex), 0);
	wgdev_free(dev);
	resp.mesh = true;
	state_build_request(&cl, &req);
	ck_assert(state_take_response(&cl, &req, &resp, 1000, 1000));
	rec.host[rec.n_host++] = host_addr("192.168.1.23", 24, 0);
	rec.host[rec.n_host++] = host_addr("10.90.0.200", 24, 0);
	rec.host[rec.n_host++] = host_addr("2001:db8:1::23", 64, 0);
}

START_TEST(test_mesh_poll_request)
{
	static struct exchange ex;
	struct client_mesh *cm = &cl.mesh;
	struct wgd_msg req;

	mesh_client(&ex);
	/* Before any answer: no directory held. */
	cm->port = 51820;
	cm->n_cand = 1;
	cm->cand[0] = ip_of("192.168.1.23");
	client_mesh_build_request(&cl, &req);
	ck_assert_int_eq(req.cmd, WGD_CMD_REQUEST_PEERS);
	ck_assert(req.has_epoch && req.has_since);
	ck_assert_uint_eq(req.epoch, 0);
	ck_assert_uint_eq(req.since, 0);
	ck_assert_uint_eq(req.port, 51820);
	ck_assert_uint_eq(req.n_cand, 1);
	ck_assert(!req.has_ip4 && !req.has_ip6);
	cm->epoch = 3735928559u;
	cm->since = 17;
	client_mesh_build_request(&cl, &req);
	ck_assert_uint_eq(req.epoch, 3735928559u);
	ck_assert_uint_eq(req.since, 17);
	/* Half a directory is none. */
	cm->since = 0;
	client_mesh_build_request(&cl, &req);
	ck_assert_uint_eq(req.epoch, 0);
	cm->epoch = 0;

	/* The loop joins and sends it, with the host's candidates outside
	 * the tunnel's routes. */
	client_mesh_run(&cl, 2000);
	ck_assert_ptr_nonnull(cm->m);
	ck_assert(cm->polling);
	ck_assert_int_eq(ex.step, EXCHANGE_CONNECTING);
	ck_assert_uint_eq(exchange_wake(&ex), 2000 + MESH_POLL_TIMEOUT_MS);
	ck_assert_int_eq(ex.req.cmd, WGD_CMD_REQUEST_PEERS);
	ck_assert_uint_eq(ex.req.port, 51820);
	ck_assert_uint_eq(ex.req.n_cand, 2);
	ck_assert(wgd_ip_equal(&ex.req.cand[0], &(struct wgd_ip){ .family = AF_INET, .cidr = 32,
								   .bytes = { 192, 168, 1, 23 } }));
	ck_assert_int_eq(ex.req.cand[1].family, AF_INET6);
	/* One poll at a time. */
	client_mesh_run(&cl, 2500);
	ck_assert_uint_eq(ex.started_ms, 2000);
	close(rec.hub_end);

	/* A lease request takes the one address pair both use: the poll is
	 * ended, and sent again once the request is over. */
	cl.requesting = true;
	client_mesh_pause_poll(&cl);
	ck_assert(!cm->polling);
	ck_assert_int_eq(ex.step, EXCHANGE_IDLE);
	client_mesh_run(&cl, 3000);
	ck_assert(!cm->polling);
	ck_assert_uint_gt(client_mesh_next_wake(&cl), 3000);
	cl.requesting = false;
	ck_assert_uint_le(client_mesh_next_wake(&cl), 3000);
	client_mesh_run(&cl, 3100);
	ck_assert(cm->polling);
	ck_assert_uint_eq(ex.started_ms, 3100);
	close(rec.hub_end);
	client_mesh_leave(&cl, false);
	ck_assert_ptr_null(cm->m);
	ck_assert_int_eq(ex.step, EXCHANGE_IDLE);
}
END_TEST

/* The request as the hub reads it off the connection. */
START_TEST(test_mesh_poll_on_the_wire)
{
	static struct exchange ex;
	static struct wgd_parser p;
	char got[WGD_MAX_MESSAGE];
	ssize_t n;

	mesh_client(&ex);
	client_mesh_run(&cl, 2000);
	exchange_advance(&ex, ready(&ex), 2000);
	ck_assert_int_eq(ex.step, EXCHANGE_RECEIVING);
	n = read(rec.hub_end, got, sizeof(got));
	ck_assert_int_gt(n, 0);
	ck_assert_ptr_nonnull(memmem(got, (size_t)n, "request_peers=1\n", 16));
	wgd_parser_init(&p, WGD_PARSE_REQUEST);
	ck_assert_int_eq(wgd_parse(&p, got, (size_t)n), n);
	ck_assert_int_eq(p.msg.cmd, WGD_CMD_REQUEST_PEERS);
	ck_assert_uint_eq(p.msg.epoch, 0);
	ck_assert_uint_eq(p.msg.since, 0);
	ck_assert_uint_eq(p.msg.port, 51820);
	ck_assert_uint_eq(p.msg.n_cand, 2);
	close(rec.hub_end);
}
END_TEST

/* The poll's exchange done with result, and resp as the answer. */
static void answer(struct exchange *ex, int result, const struct wgd_msg *resp, uint64_t now)
{
	if (ex->fd >= 0)
		close(ex->fd);
	ex->fd = -1;
	ex->step = EXCHANGE_DONE;
	ex->result = result;
	if (resp)
		ex->parser.msg = *resp;
	client_mesh_answered(&cl, now);
	ck_assert_int_eq(ex->step, EXCHANGE_IDLE);
}

START_TEST(test_mesh_poll_answers)
{
	static struct exchange ex;
	static struct wgd_msg resp;
	struct client_mesh *cm = &cl.mesh;
	uint64_t now = 2000;
	uint32_t waits[8];

	mesh_client(&ex);
	rec.connect_err = ENETUNREACH;
	/* No answer: 1 s, doubling to 30 s, and what was known is kept. */
	for (int i = 0; i < 8; i++) {
		client_mesh_run(&cl, now);
		ck_assert(cm->polling);
		if (!i) {
			cm->epoch = 7;
			cm->since = 3;
		}
		ck_assert_int_eq(ex.step, EXCHANGE_DONE);
		answer(&ex, ex.result, NULL, now);
		ck_assert(!cm->polling);
		waits[i] = (uint32_t)(cm->next_poll_ms - now);
		/* Not before its time. */
		client_mesh_run(&cl, cm->next_poll_ms - 1);
		ck_assert(!cm->polling);
		now = cm->next_poll_ms;
	}
	ck_assert_uint_eq(waits[0], 1000);
	ck_assert_uint_eq(waits[1], 2000);
	ck_assert_uint_eq(waits[4], 16000);
	ck_assert_uint_eq(waits[5], 30000);
	ck_assert_uint_eq(waits[7], 30000);
	ck_assert_uint_eq(cm->epoch, 7);
	ck_assert_uint_eq(cm->since, 3);
	ck_assert_ptr_nonnull(cm->m);

	/* An answer: the directory is taken and the next poll goes at once. */
	rec.connect_err = 0;
	client_mesh_run(&cl, now);
	ck_assert(cm->polling);
	memset(&resp, 0, sizeof(resp));
	resp.peers = resp_lines;
	resp.has_epoch = resp.has_dir_version = resp.reset = true;
	resp.epoch = 3735928559u;
	resp.dir_version = 18;
	resp.n_peers = 1;
	memcpy(resp.peers[0].key, self_key, WG_KEY_LEN);
	answer(&ex, 0, &resp, now + 25000);
	ck_assert_uint_eq(cm->epoch, 3735928559u);
	ck_assert_uint_eq(cm->since, 18);
	ck_assert_uint_eq(cm->backoff_ms, 0);
	ck_assert_uint_eq(cm->next_poll_ms, now + 25000);
	close(rec.hub_end);
	/* Answered at once: the next waits the least gap. */
	now += 25000;
	client_mesh_run(&cl, now);
	ck_assert(cm->polling);
	answer(&ex, 0, &resp, now);
	ck_assert_uint_eq(cm->next_poll_ms, now + MESH_POLL_GAP_MS);
	close(rec.hub_end);

	/* errno= and an answer without the directory's version are failures. */
	client_mesh_run(&cl, now + MESH_POLL_GAP_MS);
	memset(&resp, 0, sizeof(resp));
	resp.err = WGD_E_INVALID;
	answer(&ex, 0, &resp, now + 100);
	ck_assert_uint_eq(cm->backoff_ms, MESH_POLL_BACKOFF_MIN_MS);
	close(rec.hub_end);
	client_mesh_run(&cl, cm->next_poll_ms);
	memset(&resp, 0, sizeof(resp));
	answer(&ex, 0, &resp, now + 2000);
	ck_assert_uint_eq(cm->backoff_ms, 2 * MESH_POLL_BACKOFF_MIN_MS);
	ck_assert_uint_eq(cm->epoch, 3735928559u);
	close(rec.hub_end);

	/* The lease gone, the mesh is left and the poll ended. */
	client_mesh_run(&cl, cm->next_poll_ms);
	ck_assert(cm->polling);
	close(rec.hub_end);
	state_drop_lease(&cl, "EXPIRE");
	client_mesh_run(&cl, cm->next_poll_ms + 1);
	ck_assert_ptr_null(cm->m);
	ck_assert(!cm->polling);
	ck_assert_int_eq(ex.step, EXCHANGE_IDLE);
	ck_assert_uint_eq(client_mesh_next_wake(&cl), UINT64_MAX);
}
END_TEST

/* A peer from the directory goes on the device, recorded first, and off
 * it again when the client leaves. */
START_TEST(test_mesh_peer_recorded_first)
{
	static struct exchange ex;
	static struct wgd_msg resp;
	struct client_mesh *cm = &cl.mesh;
	struct wgd_peer_entry *e;

	mesh_client(&ex);
	state_dir();
	client_mesh_run(&cl, 2000);
	ck_assert(cm->polling);
	memset(&resp, 0, sizeof(resp));
	resp.peers = resp_lines;
	resp.has_epoch = resp.has_dir_version = resp.reset = true;
	resp.epoch = 5;
	resp.dir_version = 2;
	resp.n_peers = 2;
	e = &resp.peers[0];
	memcpy(e->key, key_c, WG_KEY_LEN);
	e->has_ip4 = true;
	e->ip4 = ip_of("10.90.0.50");
	e->endpoint.addr = ip_of("198.51.100.20");
	e->endpoint.port = 51820;
	e->port = 51820;
	e = &resp.peers[1];
	memcpy(e->key, self_key, WG_KEY_LEN);
	e->has_ip4 = true;
	e->ip4 = ip_of("10.90.0.9");
	e->endpoint.addr = ip_of("203.0.113.9");
	e->endpoint.port = 51820;
	e->port = 51820;
	answer(&ex, 0, &resp, 2100);
	close(rec.hub_end);
	for (uint64_t t = 2100; t < 4000 && !rec.n_applied; t += 50)
		client_mesh_run(&cl, t);
	close(rec.hub_end);
	ck_assert_int_ge(rec.n_applied, 1);
	ck_assert_int_eq(rec.applied[0].kind, MESH_ACT_ADD_PEER);
	ck_assert_mem_eq(rec.applied[0].key, key_c, WG_KEY_LEN);
	ck_assert(file_exists("wgt0.mesh"));
	ck_assert_uint_eq(cm->n_rec, 1);

	/* Leaving: removed, then the record goes. */
	rec.n_applied = 0;
	client_mesh_leave(&cl, false);
	ck_assert_int_ge(rec.n_applied, 1);
	ck_assert_int_eq(rec.applied[rec.n_applied - 1].kind, MESH_ACT_REMOVE_PEER);
	ck_assert_mem_eq(rec.applied[rec.n_applied - 1].key, key_c, WG_KEY_LEN);
	ck_assert(!file_exists("wgt0.mesh"));
	ck_assert(!file_exists("wgt0.mesh-status"));

	/* The device gone, nothing is asked of it, and no record is left. */
	free(cm->rec);
	cm->rec = calloc(1, WG_KEY_LEN);
	cm->cap_rec = cm->n_rec = 1;
	memcpy(cm->rec[0], key_c, WG_KEY_LEN);
	ck_assert_int_eq(client_mesh_record_save(&cl), 0);
	rec.n_applied = 0;
	client_mesh_leave(&cl, true);
	ck_assert_int_eq(rec.n_applied, 0);
	ck_assert(!file_exists("wgt0.mesh"));
	close(cl.state_fd);
}
END_TEST

START_TEST(test_mesh_show)
{
	char status[1024], *out = NULL, ka[WG_KEY_B64_LEN], kb[WG_KEY_B64_LEN];
	char kc[WG_KEY_B64_LEN], want[256];
	uint64_t now = clock_boot_ms();
	size_t len = 0;
	FILE *f;
	int n;

	state_dir();
	wgkey_to_base64(ka, key_a);
	wgkey_to_base64(kb, key_b);
	wgkey_to_base64(kc, key_c);
	n = snprintf(status, sizeof(status),
		     "mesh=joined\nepoch=9\nversion=4\n"
		     "peer=%s 10.90.0.7 fd90::7 %s 203.0.113.7:51820 %llu\n"
		     "peer=%s - fd90::8 %s - %llu\n"
		     "peer=%s 10.90.0.9 - no-such-path - 1\n"
		     "peer=AAAA 10.90.0.9 - %s - 1\n",
		     ka, mesh_path_name(MESH_DIRECT),
		     (unsigned long long)(now > 5000 ? now - 5000 : 0),
		     kb, mesh_path_name(MESH_RELAY), (unsigned long long)now, kc,
		     mesh_path_name(MESH_LOST));
	ck_assert_int_eq(file_write_atomic_at(cl.state_fd, "wgt0.mesh-status", status, (size_t)n,
					      0600), 0);

	f = open_memstream(&out, &len);
	client_mesh_show(f, cl.state_fd, "wgt0", true, false);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(out, "mesh: joined, directory 9 version 4\n"));
	snprintf(want, sizeof(want), "mesh peer: %s\n    ipv4: 10.90.0.7\n    ipv6: fd90::7\n"
		 "    path: direct via 203.0.113.7:51820, for ", ka);
	ck_assert_ptr_nonnull(strstr(out, want));
	ck_assert_ptr_nonnull(strstr(out, "path: relayed, for 0 s\n"));
	/* Lines that are not ours are left out. */
	ck_assert_ptr_null(strstr(out, kc));
	ck_assert_ptr_null(strstr(out, "AAAA 10"));
	free(out);

	f = open_memstream(&out, &len);
	client_mesh_show(f, cl.state_fd, "wgt0", true, true);
	fclose(f);
	snprintf(want, sizeof(want), ",\n  \"mesh\": {\"state\": \"joined\", \"epoch\": 9, "
		 "\"version\": 4, \"peers\": [\n      {\"key\": \"%s\", "
		 "\"ipv4\": \"10.90.0.7\"", ka);
	ck_assert_ptr_nonnull(strstr(out, want));
	ck_assert_ptr_nonnull(strstr(out, "\"ipv4\": null, \"ipv6\": \"fd90::8\""));
	ck_assert_ptr_nonnull(strstr(out, "\"endpoint\": \"203.0.113.7:51820\""));
	ck_assert_ptr_nonnull(strstr(out, "\"since_s\": 0}\n    ]}"));
	free(out);

	/* With no client running, the file is a crash's leftover. */
	f = open_memstream(&out, &len);
	client_mesh_show(f, cl.state_fd, "wgt0", false, false);
	fclose(f);
	ck_assert_str_eq(out, "  mesh: not running\n");
	free(out);
	close(cl.state_fd);
}
END_TEST

/* The mesh's echo request: ICMP's checksum sums to all ones, ICMPv6's is
 * left to the kernel, and ident and seq sit where ping(8) puts them. */
START_TEST(test_probe_build)
{
	uint8_t b[PROBE_LEN];
	uint32_t sum = 0;

	probe_build(b, AF_INET, 0xbeef, 0x0102);
	ck_assert_uint_eq(b[0], 8);
	ck_assert_uint_eq(b[1], 0);
	ck_assert_uint_eq(b[4] << 8 | b[5], 0xbeef);
	ck_assert_uint_eq(b[6] << 8 | b[7], 0x0102);
	for (size_t i = 0; i < PROBE_LEN; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ck_assert_uint_eq(sum, 0xffff);

	probe_build(b, AF_INET6, 1, 2);
	ck_assert_uint_eq(b[0], 128);
	ck_assert_uint_eq(b[2] | b[3], 0);
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_route_checks);
	tcase_add_test(tc, test_probe_build);
	tcase_add_test(tc, test_addr_checks);
	tcase_add_test(tc, test_mtu_dns_checks);
	tcase_add_test(tc, test_hub_peer);
	tcase_add_test(tc, test_hostile_answer_partly_taken);
	tcase_add_test(tc, test_no_usable_address_backs_off);
	tcase_add_test(tc, test_admin_route_kept);
	tcase_add_test(tc, test_repeated_routes_bounded);
	tcase_add_test(tc, test_zero_lease);
	tcase_add_test(tc, test_long_lease);
	tcase_add_test(tc, test_huge_lease);
	tcase_add_test(tc, test_state_names);
	tcase_add_test(tc, test_refused_hint_forgotten);
	tcase_add_test(tc, test_leasefile_hub);
	tcase_add_test(tc, test_dns_and_strings);
	tcase_add_test(tc, test_exchange_in_pieces);
	tcase_add_test(tc, test_exchange_failures);
	tcase_add_test(tc, test_exchanges_side_by_side);
	suite_add_tcase(s, tc);

	tc = tcase_create("mesh");
	tcase_add_unchecked_fixture(tc, make_base, remove_base);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_mesh_join_decision);
	tcase_add_test(tc, test_mesh_candidates);
	tcase_add_test(tc, test_mesh_record_format);
	tcase_add_test(tc, test_mesh_record_round_trip);
	tcase_add_test(tc, test_mesh_startup_cleanup);
	tcase_add_test(tc, test_mesh_poll_request);
	tcase_add_test(tc, test_mesh_poll_on_the_wire);
	tcase_add_test(tc, test_mesh_poll_answers);
	tcase_add_test(tc, test_mesh_peer_recorded_first);
	tcase_add_test(tc, test_mesh_show);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(client_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
