// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "../../common/log.h"
#include "../../common/mesh.h"

/*
 * The scenarios run on a clock of their own: boot time T0 and on, and a
 * real-time clock REAL0 apart from it (another, for the far end of a pair).
 * The tunnel is 10.8.0.0/16 and fd00:8::/64; we are peer 1, at
 * 192.0.2.1:50000 as the hub sees us, and on the LAN 192.168.1.0/24.
 */
#define T0 1000000
#define REAL0 INT64_C(1700000000000000000)
#define NS_PER_MS INT64_C(1000000)

static uint8_t self_key[WG_KEY_LEN], hub_key[WG_KEY_LEN], admin_key[WG_KEY_LEN];
static struct wgd_ip routes[2];
static struct mesh_config cfg;
static struct wgd_peer_entry self;
static struct mesh *m;
static struct mesh_action act;

static unsigned log_lines;
static char last_log[1024];

static void log_count(const char *line, size_t len)
{
	log_lines++;
	snprintf(last_log, sizeof(last_log), "%.*s", (int)len, line);
}

static void key_of(uint8_t key[WG_KEY_LEN], unsigned n)
{
	memset(key, 0, WG_KEY_LEN);
	key[0] = (uint8_t)(n >> 8);
	key[1] = (uint8_t)n;
	key[31] = 0x5a;
}

static struct wgd_ip ip(const char *s)
{
	struct wgd_ip a;

	ck_assert_msg(!wgd_ip_parse(&a, s, strlen(s), false), "bad test address %s", s);
	return a;
}

static struct wgd_endpoint ep(const char *addr, uint16_t port)
{
	struct wgd_endpoint e = { ip(addr), port };

	return e;
}

static bool ep_eq(const struct wgd_endpoint *a, const struct wgd_endpoint *b)
{
	return a->port == b->port && wgd_ip_equal(&a->addr, &b->addr);
}

static int64_t real(uint64_t t)
{
	return REAL0 + (int64_t)t * NS_PER_MS;
}

/* Peer n: 10.8.0.n and fd00:8::n, behind 198.51.100.n:40000+n, listening on 51820. */
static struct wgd_peer_entry peer(unsigned n)
{
	struct wgd_peer_entry e;
	char buf[64];

	memset(&e, 0, sizeof(e));
	key_of(e.key, n);
	e.has_ip4 = e.has_ip6 = true;
	snprintf(buf, sizeof(buf), "10.8.0.%u", n);
	e.ip4 = ip(buf);
	snprintf(buf, sizeof(buf), "fd00:8::%x", n);
	e.ip6 = ip(buf);
	snprintf(buf, sizeof(buf), "198.51.100.%u", n);
	e.endpoint = ep(buf, (uint16_t)(40000 + n));
	e.port = 51820;
	return e;
}

static void add_cand(struct wgd_peer_entry *e, const char *addr)
{
	ck_assert_uint_lt(e->n_cand, WGD_MAX_CANDIDATES);
	e->cand[e->n_cand++] = ip(addr);
}

static size_t apply(struct wgd_peer_entry e, uint64_t t)
{
	return mesh_directory_apply(m, &e, 1, t);
}

static void gone(unsigned n, uint64_t t)
{
	struct wgd_peer_entry e;

	memset(&e, 0, sizeof(e));
	key_of(e.key, n);
	e.gone = true;
	ck_assert_uint_eq(mesh_directory_apply(m, &e, 1, t), 1);
}

static void tick(uint64_t t)
{
	mesh_tick(m, t, real(t));
}

/*
 * The device, as the actions leave it: peer n's handshake time (real ns, 0:
 * none) and rx, zero for a fresh add. A read shows every peer the mesh put
 * on it, but those hidden.
 */
static int64_t dev_hs[256];
static uint64_t dev_rx[256];
static bool dev_hidden[256];

static void device_read(uint64_t t)
{
	struct mesh_peer_seen s[256];
	size_t n = 0;

	memset(s, 0, sizeof(s));
	for (unsigned i = 2; i < 256; i++) {
		key_of(s[n].key, i);
		if (dev_hidden[i] || !mesh_owns(m, s[n].key))
			continue;
		s[n].last_handshake_ns = dev_hs[i];
		s[n].rx_bytes = dev_rx[i];
		n++;
	}
	mesh_device_read(m, s, n, t, real(t));
}

/* A device read after peer n's handshake (real ns, 0: none) and rx changed. */
static void read1(unsigned n, int64_t hs_ns, uint64_t rx, uint64_t t)
{
	dev_hs[n] = hs_ns;
	dev_rx[n] = rx;
	device_read(t);
}

/* The next action is kind, for peer n. */
static void expect(enum mesh_action_kind kind, unsigned n)
{
	uint8_t key[WG_KEY_LEN];

	ck_assert_msg(mesh_next_action(m, &act), "no action, expected kind %d for peer %u", kind,
		      n);
	key_of(key, n);
	ck_assert_int_eq(act.kind, kind);
	ck_assert_uint_eq(act.key[1], n);
	ck_assert_mem_eq(act.key, key, WG_KEY_LEN);
	if (kind == MESH_ACT_ADD_PEER || kind == MESH_ACT_REMOVE_PEER) {
		dev_hs[n] = 0;
		dev_rx[n] = 0;
	}
}

static void expect_add(unsigned n, const char *addr, uint16_t port)
{
	struct wgd_endpoint want = ep(addr, port);
	char a[WGD_IP_STRLEN];

	expect(MESH_ACT_ADD_PEER, n);
	ck_assert_msg(ep_eq(&act.endpoint, &want), "added at %s port %u, not %s port %u",
		      wgd_ip_format(&act.endpoint.addr, a, sizeof(a)), act.endpoint.port, addr,
		      port);
	ck_assert_uint_eq(act.keepalive_s, MESH_KEEPALIVE_S);
	ck_assert_uint_eq(act.n_ips, 0);
}

/* Peer n added at the endpoint the hub sees. */
static void expect_add_ep(unsigned n)
{
	struct wgd_peer_entry e = peer(n);
	char a[WGD_IP_STRLEN];

	expect_add(n, wgd_ip_format_addr(&e.endpoint.addr, a, sizeof(a)), e.endpoint.port);
}

static void expect_ips(enum mesh_action_kind kind, unsigned n)
{
	struct wgd_peer_entry e = peer(n);

	expect(kind, n);
	ck_assert_uint_eq(act.n_ips, 2);
	ck_assert(wgd_ip_equal(&act.ips[0], &e.ip4));
	ck_assert(wgd_ip_equal(&act.ips[1], &e.ip6));
	ck_assert_uint_eq(act.ips[0].cidr, 32);
	ck_assert_uint_eq(act.ips[1].cidr, 128);
}

static void expect_none(void)
{
	bool more = mesh_next_action(m, &act);

	ck_assert_msg(!more, "unexpected action kind %d for peer %u", act.kind, act.key[1]);
}

/* The status of peer n; fails when it is not listed. */
static struct mesh_peer_status status(unsigned n)
{
	struct mesh_peer_status st;
	uint8_t key[WG_KEY_LEN];

	key_of(key, n);
	for (size_t i = 0; i < mesh_peer_count(m); i++) {
		mesh_peer_status(m, i, &st);
		if (!memcmp(st.key, key, WG_KEY_LEN))
			return st;
	}
	ck_abort_msg("peer %u not listed", n);
	return st;
}

static enum mesh_path path(unsigned n)
{
	return status(n).path;
}

static bool owns(unsigned n)
{
	uint8_t key[WG_KEY_LEN];

	key_of(key, n);
	return mesh_owns(m, key);
}

/* Peer n with no candidate but the hub-seen endpoint, added at t. */
static void join(unsigned n, uint64_t t)
{
	ck_assert_uint_eq(apply(peer(n), t), 1);
	expect_add_ep(n);
	expect_none();
	ck_assert_int_eq(path(n), MESH_PROBING);
}

/* Peer n, PROBING since an add at or before t - 500, goes DIRECT at t. */
static void handshake_now(unsigned n, uint64_t rx, uint64_t t)
{
	read1(n, real(t - 400), rx, t);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, n);
	expect_none();
	ck_assert_int_eq(path(n), MESH_DIRECT);
}

static void setup_mesh(void)
{
	key_of(self_key, 1);
	key_of(hub_key, 200);
	key_of(admin_key, 201);
	routes[0] = ip("10.8.0.0/16");
	routes[1] = ip("fd00:8::/64");
	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.self_key, self_key, WG_KEY_LEN);
	memcpy(cfg.hub_key, hub_key, WG_KEY_LEN);
	cfg.hub_endpoint = ep("203.0.113.1", 51820);
	cfg.admin_keys = (const uint8_t(*)[WG_KEY_LEN])admin_key;
	cfg.n_admin_keys = 1;
	cfg.routes = routes;
	cfg.n_routes = 2;
	m = mesh_new(&cfg);
	ck_assert_ptr_nonnull(m);

	self = peer(1);
	self.endpoint = ep("192.0.2.1", 50000);
	add_cand(&self, "192.168.1.1");
	mesh_self_update(m, &self, T0);
	log_lines = 0;
	last_log[0] = 0;
	log_set_sink(log_count);
	memset(dev_hs, 0, sizeof(dev_hs));
	memset(dev_rx, 0, sizeof(dev_rx));
	memset(dev_hidden, 0, sizeof(dev_hidden));
}

static void teardown_mesh(void)
{
	log_set_sink(NULL);
	mesh_free(m);
	m = NULL;
}

START_TEST(path_names)
{
	ck_assert_str_eq(mesh_path_name(MESH_RELAY), "relay");
	ck_assert_str_eq(mesh_path_name(MESH_PROBING), "probing");
	ck_assert_str_eq(mesh_path_name(MESH_DIRECT), "direct");
	ck_assert_str_eq(mesh_path_name(MESH_LOST), "lost");
	ck_assert_uint_eq(mesh_peer_count(m), 0);
	ck_assert_uint_eq(mesh_next_wake(m), UINT64_MAX);
	ck_assert_uint_eq(mesh_next_read(m), UINT64_MAX);
	expect_none();
}
END_TEST

/* Behind our NAT: its LAN address first, then the endpoint (no hairpin). */
START_TEST(order_same_nat)
{
	struct wgd_peer_entry e = peer(2);
	struct mesh_peer_status st;
	struct wgd_endpoint lan = ep("192.168.1.2", 51820);

	e.endpoint = ep("192.0.2.1", 40002);
	add_cand(&e, "2001:db8:2::2"); /* we have no IPv6: not tried */
	add_cand(&e, "192.168.1.2");
	ck_assert_uint_eq(apply(e, T0), 1);
	expect_add(2, "192.168.1.2", 51820);
	expect_none();
	st = status(2);
	ck_assert_int_eq(st.path, MESH_PROBING);
	ck_assert_uint_eq(st.n_cand, 2);
	ck_assert(ep_eq(&st.cand[0], &lan));
	ck_assert(ep_eq(&st.cand[1], &e.endpoint));
	ck_assert(ep_eq(&st.endpoint, &lan));
	ck_assert_uint_eq(st.since_ms, T0);
	ck_assert(st.has_ip4 && st.has_ip6);
	ck_assert(wgd_ip_equal(&st.ip4, &e.ip4));
	ck_assert(owns(2));
}
END_TEST

/* Both have IPv6: its IPv6 address first; its LAN is not ours. */
START_TEST(order_ipv6)
{
	struct wgd_peer_entry e = peer(2), f = peer(3);
	struct mesh_peer_status st;

	add_cand(&self, "2001:db8:1::1");
	mesh_self_update(m, &self, T0);
	add_cand(&e, "192.168.7.2");
	add_cand(&e, "2001:db8:2::2");
	ck_assert_uint_eq(apply(e, T0), 1);
	expect_add(2, "2001:db8:2::2", 51820);
	expect_none();
	st = status(2);
	ck_assert_uint_eq(st.n_cand, 2);
	ck_assert(ep_eq(&st.cand[1], &e.endpoint));

	/* Behind our NAT and with IPv6: LAN, IPv6, endpoint. */
	f.endpoint = ep("192.0.2.1", 40003);
	add_cand(&f, "2001:db8:3::3");
	add_cand(&f, "192.168.1.3");
	ck_assert_uint_eq(apply(f, T0), 1);
	expect_add(3, "192.168.1.3", 51820);
	expect_none();
	st = status(3);
	ck_assert_uint_eq(st.n_cand, 3);
	ck_assert_uint_eq(st.cand[1].addr.family, AF_INET6);
	ck_assert(ep_eq(&st.cand[2], &f.endpoint));
}
END_TEST

/* Another NAT and no IPv6 of ours: only the endpoint the hub sees. */
START_TEST(order_endpoint)
{
	struct wgd_peer_entry e = peer(2);

	add_cand(&e, "192.168.1.2");
	add_cand(&e, "2001:db8:2::2");
	ck_assert_uint_eq(apply(e, T0), 1);
	expect_add(2, "198.51.100.2", 40002);
	expect_none();
	ck_assert_uint_eq(status(2).n_cand, 1);
}
END_TEST

START_TEST(candidates_cycle)
{
	struct wgd_peer_entry e = peer(2);

	e.endpoint = ep("192.0.2.1", 40002);
	add_cand(&e, "192.168.1.2");
	add_cand(&e, "192.168.1.22");
	apply(e, T0);
	expect_add(2, "192.168.1.2", 51820);
	expect_none();
	ck_assert_uint_eq(mesh_next_wake(m), T0 + MESH_CANDIDATE_MS);
	ck_assert_uint_eq(mesh_next_read(m), T0 + MESH_READ_FAST_MS);
	read1(2, 0, 0, T0 + 500);
	tick(T0 + MESH_CANDIDATE_MS - 1);
	expect_none();
	tick(T0 + MESH_CANDIDATE_MS);
	expect_add(2, "192.168.1.22", 51820);
	expect_none();
	tick(T0 + 2 * MESH_CANDIDATE_MS);
	expect_add(2, "192.0.2.1", 40002);
	expect_none();
	/* The last stays until the list runs again. */
	ck_assert_uint_eq(mesh_next_wake(m), T0 + 2 * MESH_CANDIDATE_MS + MESH_RETRY_MS);
	tick(T0 + 3 * MESH_CANDIDATE_MS);
	expect_none();
	tick(T0 + 2 * MESH_CANDIDATE_MS + MESH_RETRY_MS - 1);
	expect_none();
	tick(T0 + 2 * MESH_CANDIDATE_MS + MESH_RETRY_MS);
	expect_add(2, "192.168.1.2", 51820);
	expect_none();
	ck_assert_int_eq(path(2), MESH_PROBING);
}
END_TEST

/* The other end reaches us: the peer stays on the candidate it has. */
START_TEST(rx_moved_keeps)
{
	struct wgd_peer_entry e = peer(2);
	struct wgd_endpoint lan = ep("192.168.1.2", 51820);
	struct mesh_peer_status st;

	e.endpoint = ep("192.0.2.1", 40002);
	add_cand(&e, "192.168.1.2");
	apply(e, T0);
	expect_add(2, "192.168.1.2", 51820);
	read1(2, 0, 92, T0 + 500);
	tick(T0 + MESH_CANDIDATE_MS);
	expect_none();
	st = status(2);
	ck_assert(ep_eq(&st.endpoint, &lan));
	ck_assert_uint_eq(mesh_next_wake(m), T0 + MESH_CANDIDATE_MS + MESH_RETRY_MS);
	/* Still coming: still kept. */
	read1(2, 0, 184, T0 + 6000);
	tick(T0 + MESH_CANDIDATE_MS + MESH_RETRY_MS);
	expect_none();
	/* Stopped coming for a whole window: the next candidate. */
	read1(2, 0, 184, T0 + 20000);
	tick(T0 + MESH_CANDIDATE_MS + 2 * MESH_RETRY_MS);
	expect_add(2, "192.0.2.1", 40002);
	expect_none();
}
END_TEST

/*
 * Crossed initiations: the peer sent us something and no handshake came.
 * The end with the greater key adds it again once, at the endpoint its
 * packets came from; the other end waits (rx_moved_keeps: our key is the
 * smaller there).
 */
START_TEST(crossed_readded)
{
	struct mesh_peer_seen s;
	struct wgd_endpoint from = ep("198.51.100.77", 40077);

	mesh_free(m);
	key_of(cfg.self_key, 250);
	m = mesh_new(&cfg);
	ck_assert_ptr_nonnull(m);
	mesh_self_update(m, &self, T0);
	join(2, T0);
	/* Too early to tell from a handshake on its way. */
	read1(2, 0, 148, T0 + 100);
	expect_none();
	memset(&s, 0, sizeof(s));
	key_of(s.key, 2);
	s.rx_bytes = 148;
	s.endpoint = from;
	mesh_device_read(m, &s, 1, T0 + MESH_READ_FAST_MS * 3, real(T0 + MESH_READ_FAST_MS * 3));
	expect_add(2, "198.51.100.77", 40077);
	expect_none();
	ck_assert_int_eq(path(2), MESH_PROBING);
	/* Once a round: the fresh peer's own crossing is left to WireGuard. */
	read1(2, 0, 148, T0 + 900);
	expect_none();
	/* The handshake of the fresh add switches as always. */
	read1(2, real(T0 + 950), 240, T0 + 1000);
	tick(T0 + 950 + MESH_SWITCH_DELAY_MS);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 2);
	expect_none();
	ck_assert_int_eq(path(2), MESH_DIRECT);
}
END_TEST

/* An initiation that just arrived may be a handshake completing: the
 * side that would re-add waits until it has been quiet a moment. */
START_TEST(crossed_waits_for_a_fresh_arrival)
{
	mesh_free(m);
	key_of(cfg.self_key, 250);
	m = mesh_new(&cfg);
	ck_assert_ptr_nonnull(m);
	mesh_self_update(m, &self, T0);
	join(2, T0);
	/* Its first packet comes just before the read past 250 ms. */
	read1(2, 0, 148, T0 + 300);
	expect_none();
	/* Its handshake completes meanwhile: no re-add, a switch. */
	read1(2, real(T0 + 310), 180, T0 + 400);
	expect_none();
	tick(T0 + 310 + MESH_SWITCH_DELAY_MS);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 2);
	expect_none();
	ck_assert_int_eq(path(2), MESH_DIRECT);
}
END_TEST

START_TEST(switch_at_handshake)
{
	join(2, T0);
	/* A handshake from before the add is an old session's. */
	read1(2, real(T0 - 5000), 0, T0 + 100);
	expect_none();
	ck_assert_uint_eq(mesh_next_wake(m), T0 + MESH_RETRY_MS);
	/* One at T0 + 200: both ends switch at T0 + 500. */
	read1(2, real(T0 + 200), 148, T0 + 250);
	expect_none();
	ck_assert_uint_eq(mesh_next_wake(m), T0 + 200 + MESH_SWITCH_DELAY_MS);
	ck_assert_uint_eq(mesh_next_read(m), T0 + 250 + MESH_READ_FAST_MS);
	tick(T0 + 499);
	expect_none();
	ck_assert_int_eq(path(2), MESH_PROBING);
	/* No candidate cycling while the switch is pending. */
	read1(2, real(T0 + 200), 148, T0 + 400);
	tick(T0 + 500);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 2);
	expect_none();
	ck_assert_int_eq(path(2), MESH_DIRECT);
	ck_assert_uint_eq(status(2).since_ms, T0 + 500);
	ck_assert_uint_eq(mesh_next_read(m), T0 + 500 + MESH_READ_SLOW_MS);
	ck_assert_uint_eq(mesh_next_wake(m), UINT64_MAX);
	/* Later candidates' time passes with nothing to do. */
	tick(T0 + 20000);
	expect_none();
}
END_TEST

/* A read that comes after the switch time switches at once. */
START_TEST(switch_late_read)
{
	join(2, T0);
	read1(2, real(T0 + 200), 148, T0 + 700);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 2);
	expect_none();
	ck_assert_uint_eq(status(2).since_ms, T0 + 700);
}
END_TEST

/*
 * Two ends, with boot-time clocks far apart and one real-time clock: the
 * responder's handshake comes one trip before the initiator's, and both
 * switch within that trip.
 */
START_TEST(switch_both_ends)
{
	const uint64_t a0 = T0, b0 = 77777; /* boot time of each at real REAL0 + T0 */
	const int64_t trip = 23;
	struct mesh_config cfg_b = cfg;
	struct wgd_peer_entry ea = peer(2), eb = peer(1), self_b = peer(2);
	struct mesh *a = m, *b;
	struct mesh_peer_seen s;
	struct mesh_action x;
	uint64_t sw_a = 0, sw_b = 0;

	memcpy(cfg_b.self_key, ea.key, WG_KEY_LEN);
	b = mesh_new(&cfg_b);
	ck_assert_ptr_nonnull(b);
	mesh_self_update(b, &self_b, b0);
	eb.endpoint = self.endpoint;

	ck_assert_uint_eq(mesh_directory_apply(a, &ea, 1, a0), 1);
	ck_assert_uint_eq(mesh_directory_apply(b, &eb, 1, b0 + 37), 1);
	ck_assert(mesh_next_action(a, &x) && x.kind == MESH_ACT_ADD_PEER);
	ck_assert(mesh_next_action(b, &x) && x.kind == MESH_ACT_ADD_PEER);

	/* B answers at +60 (its handshake), A has the answer at +60 + trip. */
	memset(&s, 0, sizeof(s));
	memcpy(s.key, ea.key, WG_KEY_LEN);
	s.last_handshake_ns = real(T0 + 60 + trip);
	s.rx_bytes = 92;
	mesh_device_read(a, &s, 1, a0 + 100, real(T0 + 100));
	memcpy(s.key, eb.key, WG_KEY_LEN);
	s.last_handshake_ns = real(T0 + 60);
	mesh_device_read(b, &s, 1, b0 + 110, real(T0 + 110));

	/* Each wakes at its switch, on its own clock, and switches then. */
	for (uint64_t t = 0; t < 1000 && (!sw_a || !sw_b); t++) {
		if (!sw_a && mesh_next_wake(a) <= a0 + t) {
			mesh_tick(a, a0 + t, real(T0 + t));
			if (mesh_next_action(a, &x)) {
				ck_assert_int_eq(x.kind, MESH_ACT_ALLOWEDIPS_ADD);
				sw_a = t;
			}
		}
		if (!sw_b && mesh_next_wake(b) <= b0 + t) {
			mesh_tick(b, b0 + t, real(T0 + t));
			if (mesh_next_action(b, &x)) {
				ck_assert_int_eq(x.kind, MESH_ACT_ALLOWEDIPS_ADD);
				sw_b = t;
			}
		}
	}
	ck_assert_uint_eq(sw_b, 60 + MESH_SWITCH_DELAY_MS);
	ck_assert_uint_eq(sw_a, 60 + trip + MESH_SWITCH_DELAY_MS);
	ck_assert_uint_le(sw_a - sw_b, (uint64_t)trip);
	mesh_free(b);
}
END_TEST

/* Quiet, lost, probing again: the backoff doubles up to 30 s, and a
 * minute of direct path starts it over. */
START_TEST(quiet_lost_backoff)
{
	static const uint64_t waits[] = { 4000, 8000, 16000, 30000, 30000 };
	uint64_t t = T0, rx = 0;

	join(2, t);
	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
		t += 500;
		handshake_now(2, ++rx, t);
		read1(2, real(t - 400), rx, t + MESH_QUIET_MS - 1);
		expect_none();
		ck_assert_int_eq(path(2), MESH_DIRECT);
		t += MESH_QUIET_MS;
		read1(2, real(t - 400), rx, t);
		expect_ips(MESH_ACT_ALLOWEDIPS_DEL, 2);
		expect(MESH_ACT_REMOVE_PEER, 2);
		expect_none();
		ck_assert_int_eq(path(2), MESH_LOST);
		ck_assert(!owns(2));
		ck_assert_uint_eq(mesh_next_wake(m), t + waits[i]);
		ck_assert_uint_eq(mesh_next_read(m), UINT64_MAX);
		tick(t + waits[i] - 1);
		expect_none();
		t += waits[i];
		tick(t);
		expect_add_ep(2);
		expect_none();
		ck_assert_int_eq(path(2), MESH_PROBING);
		rx = 0;
	}

	/* A minute direct, receiving: the next loss waits the least again. */
	t += 500;
	handshake_now(2, 1, t);
	for (uint64_t s = 1; s <= 61; s++)
		read1(2, real(t - 400), 1 + s, t + s * 1000);
	t += 61000 + MESH_QUIET_MS;
	read1(2, real(t), 62, t);
	expect_ips(MESH_ACT_ALLOWEDIPS_DEL, 2);
	expect(MESH_ACT_REMOVE_PEER, 2);
	ck_assert_uint_eq(mesh_next_wake(m), t + MESH_BACKOFF_MIN_MS);
}
END_TEST

START_TEST(gone_removed)
{
	struct wgd_peer_entry e[3] = { peer(2), peer(3), peer(4) };

	memset(&e[2].endpoint, 0, sizeof(e[2].endpoint)); /* nothing to try: relayed */
	ck_assert_uint_eq(mesh_directory_apply(m, e, 3, T0), 3);
	expect_add_ep(2);
	expect_add_ep(3);
	expect_none();
	ck_assert_int_eq(path(4), MESH_RELAY);
	ck_assert_uint_eq(mesh_peer_count(m), 3);
	handshake_now(2, 1, T0 + 500);

	for (int i = 0; i < 3; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		key_of(e[i].key, 2 + i);
		e[i].gone = true;
	}
	ck_assert_uint_eq(mesh_directory_apply(m, e, 3, T0 + 600), 3);
	expect_ips(MESH_ACT_ALLOWEDIPS_DEL, 2);
	expect(MESH_ACT_REMOVE_PEER, 2);
	expect(MESH_ACT_REMOVE_PEER, 3);
	expect_none();
	ck_assert_uint_eq(mesh_peer_count(m), 0);
	ck_assert(!owns(2) && !owns(3) && !owns(4));
	ck_assert_uint_eq(mesh_next_read(m), UINT64_MAX);
	ck_assert_uint_eq(mesh_next_wake(m), UINT64_MAX);
	/* A gone= for a peer not known is nothing. */
	gone(9, T0 + 700);
	expect_none();
	/* Back: a new peer. */
	ck_assert_uint_eq(apply(peer(3), T0 + 800), 1);
	expect_add_ep(3);
	ck_assert_uint_eq(mesh_peer_count(m), 1);
}
END_TEST

/* An entry the checks refuse: not taken, one log line, nothing done. */
static void refused(struct wgd_peer_entry e, const char *why, uint64_t t)
{
	unsigned before = log_lines;

	ck_assert_uint_eq(apply(e, t), 0);
	expect_none();
	ck_assert_uint_eq(mesh_peer_count(m), 0);
	ck_assert_uint_eq(log_lines, before + 1);
	ck_assert_msg(strstr(last_log, why), "\"%s\" not in \"%s\"", why, last_log);
	/* Sent again unchanged: not logged again. */
	ck_assert_uint_eq(apply(e, t + 1), 0);
	ck_assert_uint_eq(log_lines, before + 1);
}

START_TEST(entries_refused)
{
	struct wgd_peer_entry e;

	e = peer(2);
	key_of(e.key, 200);
	refused(e, "it is the hub", T0 + 1 * 10000);
	e = peer(2);
	key_of(e.key, 201);
	refused(e, "administrator", T0 + 2 * 10000);
	e = peer(2);
	memset(e.key, 0, sizeof(e.key));
	refused(e, "zeros", T0 + 3 * 10000);
	e = peer(3);
	e.ip4 = ip("10.9.0.3");
	refused(e, "10.9.0.3/32 lies outside", T0 + 4 * 10000);
	e = peer(4);
	e.ip4 = ip("10.8.0.0/24");
	refused(e, "10.8.0.0/24 is not a /32", T0 + 5 * 10000);
	e = peer(5);
	e.ip6 = ip("fd00:8::/64");
	refused(e, "is not a /32 or /128", T0 + 6 * 10000);
	e = peer(6);
	e.ip6 = ip("fd00:9::6");
	refused(e, "fd00:9::6/128 lies outside", T0 + 7 * 10000);
	e = peer(7);
	e.has_ip6 = false;
	e.ip4 = ip("10.8.0.1");
	refused(e, "10.8.0.1/32 is ours", T0 + 8 * 10000);
	e = peer(8);
	e.has_ip4 = false;
	e.ip6 = ip("fd00:8::1");
	refused(e, "is ours", T0 + 9 * 10000);
	e = peer(9);
	e.has_ip4 = e.has_ip6 = false;
	refused(e, "no address", T0 + 10 * 10000);
	e = peer(10);
	e.ip4 = ip("fd00:8::10"); /* the wrong family in the IPv4 slot */
	refused(e, "not a /32", T0 + 11 * 10000);

	/* Changed, and still refused: told again. */
	e = peer(3);
	e.ip4 = ip("10.10.0.3");
	apply(e, T0 + 20 * 10000);
	ck_assert_ptr_nonnull(strstr(last_log, "10.10.0.3"));

	/* Our own entry is ours, neither a peer nor refused. */
	log_lines = 0;
	ck_assert_uint_eq(apply(self, T0 + 21 * 10000), 1);
	ck_assert_uint_eq(mesh_peer_count(m), 0);
	ck_assert_uint_eq(log_lines, 0);
	expect_none();
}
END_TEST

/* A pool of single addresses pushes each as a route of its own: the hub
 * peer holds exactly that /32, which a mesh peer must not take from it. */
START_TEST(host_route_refused)
{
	struct wgd_ip more[3] = { ip("10.8.0.0/16"), ip("fd00:8::/64"), ip("10.8.0.12/32") };
	struct mesh_config c = cfg;

	c.routes = more;
	c.n_routes = 3;
	ck_assert_int_eq(mesh_set_config(m, &c), 0);
	refused(peer(12), "10.8.0.12/32 is a route of its own", T0);
	join(13, T0 + 10000);
	ck_assert_int_eq(path(13), MESH_PROBING);
}
END_TEST

/* Peer n with these two candidates, behind our NAT: the candidates kept. */
static struct mesh_peer_status with_cands(unsigned n, struct wgd_ip c1, const char *c2)
{
	struct wgd_peer_entry e = peer(n);

	e.endpoint = ep("192.0.2.1", (uint16_t)(40000 + n));
	e.cand[e.n_cand++] = c1;
	add_cand(&e, c2);
	/* Apart in time, past the limit on log lines. */
	apply(e, T0 + n * 10000);
	return status(n);
}

START_TEST(candidates_refused)
{
	static const struct {
		const char *addr, *why;
	} bad[] = {
		{ "127.0.0.1", "loopback" },
		{ "::1", "loopback" },
		{ "224.0.0.5", "multicast" },
		{ "ff02::1", "multicast" },
		{ "0.0.0.0", "unspecified" },
		{ "::", "unspecified" },
		{ "169.254.1.2", "link-local" },
		{ "fe80::1", "link-local" },
		{ "203.0.113.1", "the hub's address" },
		{ "10.8.3.4", "inside the tunnel's routes" },
		{ "fd00:8::77", "inside the tunnel's routes" },
		{ "255.255.255.255", "reserved" },
		{ "192.168.1.0/24", "not a host address" },
	};
	struct wgd_endpoint good = ep("192.168.1.50", 51820);
	struct mesh_peer_status st;
	struct wgd_peer_entry e;
	struct wgd_ip mapped = ip("2001:db8::1");
	unsigned n = 2;

	add_cand(&self, "2001:db8:1::1");
	mesh_self_update(m, &self, T0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++, n++) {
		unsigned before = log_lines;

		st = with_cands(n, ip(bad[i].addr), "192.168.1.50");
		ck_assert_msg(st.n_cand == 2 && ep_eq(&st.cand[0], &good), "%s kept", bad[i].addr);
		ck_assert_uint_eq(log_lines, before + 1);
		ck_assert_msg(strstr(last_log, bad[i].why), "\"%s\" not in \"%s\"", bad[i].why,
			      last_log);
		expect_add(n, "192.168.1.50", 51820);
		expect_none();
	}
	/* IPv4-mapped, which the parser refuses already. */
	memset(mapped.bytes, 0, 10);
	memset(mapped.bytes + 10, 0xff, 2);
	st = with_cands(n, mapped, "192.168.1.50");
	ck_assert_uint_eq(st.n_cand, 2);
	ck_assert_ptr_nonnull(strstr(last_log, "IPv4-mapped"));
	expect_add(n++, "192.168.1.50", 51820);

	/* A repeat is dropped, silently. */
	log_lines = 0;
	st = with_cands(n, ip("192.168.1.50"), "192.168.1.50");
	ck_assert_uint_eq(log_lines, 0);
	ck_assert_uint_eq(st.n_cand, 2);
	ck_assert(ep_eq(&st.cand[0], &good));
	expect_add(n++, "192.168.1.50", 51820);

	/* Candidates without a port are no use. */
	e = peer(n);
	e.endpoint = ep("192.0.2.1", 40000);
	e.port = 0;
	add_cand(&e, "192.168.1.50");
	apply(e, T0);
	ck_assert_uint_eq(status(n).n_cand, 1);
	expect_add(n++, "192.0.2.1", 40000);

	/* The endpoint is checked alike: none left, the peer stays relayed. */
	e = peer(n);
	e.endpoint = ep("127.0.0.1", 5);
	ck_assert_uint_eq(apply(e, T0), 1);
	ck_assert_int_eq(path(n), MESH_RELAY);
	ck_assert_uint_eq(status(n++).n_cand, 0);
	e = peer(n);
	e.endpoint = ep("198.51.100.9", 0);
	apply(e, T0);
	ck_assert_uint_eq(status(n++).n_cand, 0);
	e = peer(n);
	e.endpoint = ep("203.0.113.1", 40000);
	apply(e, T0);
	ck_assert_uint_eq(status(n++).n_cand, 0);
	e = peer(n);
	e.endpoint = ep("10.8.200.1", 40000);
	apply(e, T0);
	ck_assert_uint_eq(status(n++).n_cand, 0);
	expect_none();
}
END_TEST

/* Two entries with one address: the first keeps it; the second gets it
 * when the first leaves. */
START_TEST(address_taken)
{
	struct wgd_peer_entry e = peer(3);

	join(2, T0);
	e.ip4 = peer(2).ip4;
	ck_assert_uint_eq(apply(e, T0), 0);
	ck_assert_ptr_nonnull(strstr(last_log, "another peer's"));
	expect_none();
	gone(2, T0 + 100);
	expect(MESH_ACT_REMOVE_PEER, 2);
	expect_add_ep(3);
	expect_none();
	ck_assert_uint_eq(mesh_peer_count(m), 1);
}
END_TEST

START_TEST(probe_budget)
{
	struct wgd_peer_entry e[25];

	for (unsigned i = 0; i < 25; i++)
		e[i] = peer(2 + i);
	ck_assert_uint_eq(mesh_directory_apply(m, e, 25, T0), 25);
	for (unsigned i = 0; i < MESH_PROBE_BUDGET; i++)
		expect_add_ep(2 + i);
	expect_none();
	ck_assert_int_eq(path(2 + MESH_PROBE_BUDGET), MESH_RELAY);
	ck_assert_uint_eq(mesh_next_wake(m), T0 + 1000);
	tick(T0 + 999);
	expect_none();
	tick(T0 + 1000);
	for (unsigned i = MESH_PROBE_BUDGET; i < 25; i++)
		expect_add_ep(2 + i);
	expect_none();
	ck_assert_int_eq(path(26), MESH_PROBING);
	ck_assert_uint_eq(mesh_next_wake(m), T0 + MESH_RETRY_MS);
}
END_TEST

START_TEST(reset_grace)
{
	struct wgd_peer_entry e[3] = { peer(2), peer(3), peer(4) };

	mesh_directory_apply(m, e, 3, T0);
	expect_add_ep(2);
	expect_add_ep(3);
	expect_add_ep(4);
	expect_none();
	dev_hs[2] = dev_hs[3] = dev_hs[4] = real(T0 + 100);
	dev_rx[2] = dev_rx[3] = dev_rx[4] = 92;
	device_read(T0 + 500);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 2);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 3);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 4);
	expect_none();
	mesh_directory_reset(m, T0 + 600);
	ck_assert_uint_eq(mesh_next_wake(m), T0 + 600 + MESH_GRACE_MS);
	/* The same entries again: nothing to do. */
	ck_assert_uint_eq(mesh_directory_apply(m, e, 2, T0 + 700), 2);
	expect_none();
	tick(T0 + 600 + MESH_GRACE_MS - 1);
	expect_none();
	ck_assert_uint_eq(mesh_peer_count(m), 3);
	tick(T0 + 600 + MESH_GRACE_MS);
	expect_ips(MESH_ACT_ALLOWEDIPS_DEL, 4);
	expect(MESH_ACT_REMOVE_PEER, 4);
	expect_none();
	ck_assert_uint_eq(mesh_peer_count(m), 2);
	ck_assert_int_eq(path(2), MESH_DIRECT);
}
END_TEST

START_TEST(stop_removes_ours)
{
	struct wgd_peer_entry e[4] = { peer(2), peer(3), peer(4), peer(5) };

	memset(&e[3].endpoint, 0, sizeof(e[3].endpoint));
	mesh_directory_apply(m, e, 4, T0);
	expect_add_ep(2);
	expect_add_ep(3);
	expect_add_ep(4);
	expect_none();
	handshake_now(2, 1, T0 + 500);
	/* 4 fails its add: lost, and taken off in case it got half-way. */
	{
		struct mesh_action a;

		memset(&a, 0, sizeof(a));
		a.kind = MESH_ACT_ADD_PEER;
		key_of(a.key, 4);
		mesh_action_failed(m, &a, -EINVAL, T0 + 600);
	}
	expect(MESH_ACT_REMOVE_PEER, 4);
	expect_none();
	ck_assert_int_eq(path(4), MESH_LOST);
	ck_assert(owns(2) && owns(3) && !owns(4) && !owns(5));

	mesh_stop(m);
	expect(MESH_ACT_REMOVE_PEER, 2);
	expect(MESH_ACT_REMOVE_PEER, 3);
	expect_none();
	ck_assert(!owns(2) && !owns(3));
	ck_assert_uint_eq(mesh_next_wake(m), UINT64_MAX);
	ck_assert_uint_eq(mesh_next_read(m), UINT64_MAX);
	/* Stopped: events change nothing. */
	tick(T0 + 100000);
	apply(peer(6), T0 + 100000);
	expect_none();
}
END_TEST

/*
 * A direct peer's NAT moves: when we send to the mapping the hub saw
 * before, it is probed again at once at the new one; a path over another
 * endpoint (its LAN address, say) is left alone.
 */
START_TEST(peer_endpoint_moved)
{
	struct wgd_peer_entry e[2] = { peer(2), peer(3) };
	struct mesh_peer_seen s[2];
	uint64_t t = T0 + 500;

	mesh_directory_apply(m, e, 2, T0);
	expect_add_ep(2);
	expect_add_ep(3);
	expect_none();
	memset(s, 0, sizeof(s));
	for (unsigned i = 0; i < 2; i++) {
		key_of(s[i].key, 2 + i);
		s[i].last_handshake_ns = real(T0 + 100);
		s[i].rx_bytes = 92;
	}
	s[0].endpoint = e[0].endpoint;
	s[1].endpoint = ep("192.168.1.3", 51820);
	mesh_device_read(m, s, 2, t, real(t));
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 2);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 3);
	expect_none();

	e[0].endpoint = ep("203.0.113.2", 40002);
	e[1].endpoint = ep("203.0.113.3", 40003);
	mesh_directory_apply(m, e, 2, t + 100);
	/* The add afresh takes 2's allowed-IPs with it. */
	expect_add(2, "203.0.113.2", 40002);
	expect_none();
	ck_assert_int_eq(path(2), MESH_PROBING);
	ck_assert_int_eq(path(3), MESH_DIRECT);
}
END_TEST

START_TEST(own_endpoint_moved)
{
	struct wgd_peer_entry e[4] = { peer(2), peer(3), peer(4), peer(5) };
	struct mesh_peer_seen s[4];
	uint64_t t = T0 + 500;

	mesh_directory_apply(m, e, 4, T0);
	for (unsigned n = 2; n <= 5; n++)
		expect_add_ep(n);
	expect_none();
	memset(s, 0, sizeof(s));
	for (unsigned i = 0; i < 4; i++) {
		key_of(s[i].key, 2 + i);
		s[i].last_handshake_ns = i < 3 ? real(T0 + 100) : 0;
		s[i].rx_bytes = 92;
	}
	/* 2, 3 and 4 direct; 5 probing. */
	mesh_device_read(m, s, 4, t, real(t));
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 2);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 3);
	expect_ips(MESH_ACT_ALLOWEDIPS_ADD, 4);
	expect_none();
	/* 4 goes quiet: lost. 2 keeps receiving, 3 has not for 2 s. */
	s[0].rx_bytes = 200;
	mesh_device_read(m, s, 4, t + 1000, real(t + 1000));
	s[0].rx_bytes = 300;
	mesh_device_read(m, s, 4, t + 2000, real(t + 2000));
	expect_none();
	t += MESH_QUIET_MS;
	s[0].rx_bytes = 400;
	s[1].rx_bytes = 500;
	mesh_device_read(m, s, 4, t, real(t));
	expect_ips(MESH_ACT_ALLOWEDIPS_DEL, 4);
	expect(MESH_ACT_REMOVE_PEER, 4);
	expect_none();
	t += 2000;
	s[0].rx_bytes = 600;
	mesh_device_read(m, s, 4, t, real(t));
	expect_none();
	ck_assert_int_eq(path(2), MESH_DIRECT);
	ck_assert_int_eq(path(3), MESH_DIRECT);
	ck_assert_int_eq(path(4), MESH_LOST);
	ck_assert_int_eq(path(5), MESH_PROBING);

	/* Unchanged: nothing. */
	mesh_self_update(m, &self, t);
	expect_none();
	self.endpoint = ep("192.0.2.99", 50001);
	mesh_self_update(m, &self, t);
	/* The add afresh takes 3's allowed-IPs with it. */
	expect_add_ep(3);
	expect_add_ep(4);
	expect_add_ep(5);
	expect_none();
	ck_assert_int_eq(path(2), MESH_DIRECT);
	ck_assert_int_eq(path(3), MESH_PROBING);
	ck_assert_int_eq(path(4), MESH_PROBING);
	ck_assert_int_eq(path(5), MESH_PROBING);
}
END_TEST

START_TEST(missing_readded)
{
	join(2, T0);
	join(3, T0);
	dev_hidden[2] = true;
	device_read(T0 + 100);
	expect_add_ep(2);
	expect_none();
	ck_assert_int_eq(path(2), MESH_PROBING);
	dev_hidden[2] = false;
	handshake_now(3, 1, T0 + 600);
	dev_hidden[3] = true;
	device_read(T0 + 700);
	expect_add_ep(3);
	expect_none();
	ck_assert_int_eq(path(3), MESH_PROBING);
	ck_assert(owns(3));
}
END_TEST

START_TEST(add_failure_backs_off)
{
	join(2, T0);
	ck_assert(owns(2));
	mesh_action_failed(m, &act, -ENOMEM, T0 + 10);
	ck_assert_ptr_nonnull(strstr(last_log, "Cannot allocate memory"));
	expect(MESH_ACT_REMOVE_PEER, 2);
	expect_none();
	ck_assert_int_eq(path(2), MESH_LOST);
	ck_assert_uint_eq(mesh_next_wake(m), T0 + 10 + MESH_BACKOFF_MIN_MS);
	tick(T0 + 10 + MESH_BACKOFF_MIN_MS);
	expect_add_ep(2);
	mesh_action_failed(m, &act, -ENOMEM, T0 + 5000);
	expect(MESH_ACT_REMOVE_PEER, 2);
	ck_assert_uint_eq(mesh_next_wake(m), T0 + 5000 + 2 * MESH_BACKOFF_MIN_MS);
}
END_TEST

START_TEST(directory_change_restarts)
{
	struct wgd_peer_entry e = peer(2), old;
	uint64_t t = T0;

	join(2, t);
	tick(t + 1000); /* one candidate: nothing else to try */
	expect_none();
	e.endpoint = ep("198.51.100.22", 41000);
	apply(e, t + 1500);
	expect_add(2, "198.51.100.22", 41000);
	expect_none();

	/* Lost, then its NAT moved: probed again before the backoff ends. */
	handshake_now(2, 1, t + 2100);
	read1(2, 0, 1, t + 2100 + MESH_QUIET_MS);
	expect_ips(MESH_ACT_ALLOWEDIPS_DEL, 2);
	expect(MESH_ACT_REMOVE_PEER, 2);
	e.endpoint = ep("198.51.100.23", 41001);
	apply(e, t + 5000);
	expect_add(2, "198.51.100.23", 41001);
	expect_none();

	/* A direct path stays when only the candidates change. */
	handshake_now(2, 1, t + 5600);
	add_cand(&e, "192.168.9.9");
	apply(e, t + 5700);
	expect_none();
	/* New addresses move over. */
	e.ip4 = ip("10.8.1.2");
	apply(e, t + 5800);
	expect(MESH_ACT_ALLOWEDIPS_DEL, 2);
	old = peer(2);
	ck_assert(wgd_ip_equal(&act.ips[0], &old.ip4));
	expect(MESH_ACT_ALLOWEDIPS_ADD, 2);
	ck_assert(wgd_ip_equal(&act.ips[0], &e.ip4));
	expect_none();
}
END_TEST

/*
 * A NAT that moves breaks a direct path both ways, and the hub may see the
 * move before either end notices the silence: then, once quiet, the peer
 * is probed at its new candidates at once, with no backoff and none
 * doubled; a loss with no move in between still backs off.
 */
START_TEST(quiet_after_move_probes_now)
{
	struct wgd_peer_entry e = peer(2);
	uint64_t t = T0;

	/* Its NAT moved, seen while the path still counts as receiving. */
	join(2, t);
	t += 500;
	handshake_now(2, 1, t);
	e.endpoint = ep("198.51.100.99", 41000);
	apply(e, t + 100);
	expect_none();
	ck_assert_int_eq(path(2), MESH_DIRECT);
	t += MESH_QUIET_MS;
	read1(2, real(t - 400), 1, t);
	/* Added afresh, which takes its allowed-IPs with it. */
	expect_add(2, "198.51.100.99", 41000);
	expect_none();
	ck_assert_int_eq(path(2), MESH_PROBING);

	/* Ours moved, while 2 was receiving. */
	t += 500;
	handshake_now(2, 1, t);
	read1(2, real(t - 400), 2, t + 500);
	self.endpoint = ep("192.0.2.99", 50001);
	mesh_self_update(m, &self, t + 600);
	expect_none();
	ck_assert_int_eq(path(2), MESH_DIRECT);
	t += 500 + MESH_QUIET_MS;
	read1(2, real(t - 400), 2, t);
	expect_add(2, "198.51.100.99", 41000);
	expect_none();

	/* The news is spent: the next silence backs off, from the least. */
	t += 500;
	handshake_now(2, 1, t);
	t += MESH_QUIET_MS;
	read1(2, real(t - 400), 1, t);
	expect_ips(MESH_ACT_ALLOWEDIPS_DEL, 2);
	expect(MESH_ACT_REMOVE_PEER, 2);
	expect_none();
	ck_assert_int_eq(path(2), MESH_LOST);
	ck_assert_uint_eq(mesh_next_wake(m), t + MESH_BACKOFF_MIN_MS);
}
END_TEST

START_TEST(config_changes)
{
	struct wgd_ip narrow[2] = { ip("10.8.1.0/24"), ip("fd00:8::/64") };
	struct mesh_config c = cfg;

	join(2, T0);
	handshake_now(2, 1, T0 + 500);
	c.routes = narrow;
	ck_assert_int_eq(mesh_set_config(m, &c), 0);
	expect_ips(MESH_ACT_ALLOWEDIPS_DEL, 2);
	expect(MESH_ACT_REMOVE_PEER, 2);
	expect_none();
	ck_assert_uint_eq(mesh_peer_count(m), 0);
	/* The caller's arrays are copied: changing them changes nothing. */
	narrow[0] = ip("10.8.0.0/16");
	tick(T0 + 600);
	expect_none();
	ck_assert_int_eq(mesh_set_config(m, &cfg), 0);
	expect_add_ep(2);
	expect_none();
	ck_assert_int_eq(path(2), MESH_PROBING);
	/* The same again: nothing. */
	ck_assert_int_eq(mesh_set_config(m, &cfg), 0);
	expect_none();
	ck_assert_int_eq(path(2), MESH_PROBING);

	/* The administrator configured it now: left alone, not removed. */
	{
		uint8_t admins[2][WG_KEY_LEN];

		memcpy(admins[0], admin_key, WG_KEY_LEN);
		key_of(admins[1], 2);
		c = cfg;
		c.admin_keys = (const uint8_t(*)[WG_KEY_LEN])admins;
		c.n_admin_keys = 2;
		ck_assert_int_eq(mesh_set_config(m, &c), 0);
		expect_none();
		ck_assert(!owns(2));
		ck_assert_uint_eq(mesh_peer_count(m), 0);
		ck_assert_ptr_nonnull(strstr(last_log, "administrator"));
	}
}
END_TEST

/* A hub that sends bad entries without end fills no log. */
START_TEST(log_bounded)
{
	struct wgd_peer_entry e[48];
	unsigned total = 0;

	for (unsigned round = 0; round < 20; round++) {
		for (unsigned i = 0; i < 48; i++) {
			e[i] = peer(2 + i);
			e[i].ip4.bytes[1] = (uint8_t)(100 + round); /* outside the routes */
		}
		ck_assert_uint_eq(mesh_directory_apply(m, e, 48, T0 + round), 0);
	}
	total = log_lines;
	ck_assert_uint_ge(total, 1);
	ck_assert_uint_le(total, 10);
	tick(T0 + 20000);
	ck_assert_uint_eq(log_lines, total + 1);
	ck_assert_ptr_nonnull(strstr(last_log, "not logged"));
	expect_none();
}
END_TEST

/* Peer n of a big mesh: 10.8.x.y, and a key of its own. */
static struct wgd_peer_entry big_peer(unsigned n)
{
	struct wgd_peer_entry e = peer(2);

	key_of(e.key, n);
	e.key[2] = 0xb1;
	e.ip4.bytes[2] = (uint8_t)(n >> 8);
	e.ip4.bytes[3] = (uint8_t)n;
	e.ip6.bytes[14] = (uint8_t)(n >> 8);
	e.ip6.bytes[15] = (uint8_t)n;
	return e;
}

/*
 * A full mesh: MESH_MAX_PEERS kept and the next ignored; the budget brings
 * them all onto the device in time; a stop removes each once.
 */
START_TEST(full_mesh)
{
	static struct wgd_peer_entry e[WGD_MAX_PEERS];
	static bool added[MESH_MAX_PEERS + 2];
	const unsigned first = 300, total = MESH_MAX_PEERS + 1;
	unsigned n = 0, removed = 0, n_added = 0;
	uint64_t t = T0;

	while (n < total) {
		size_t k = 0, taken;

		while (k < WGD_MAX_PEERS && n < total)
			e[k++] = big_peer(first + n++);
		taken = mesh_directory_apply(m, e, k, t);
		ck_assert_uint_eq(taken, n == total ? k - 1 : k);
		t += 10;
	}
	ck_assert_uint_eq(mesh_peer_count(m), MESH_MAX_PEERS);
	ck_assert_ptr_nonnull(strstr(last_log, "the most kept"));
	for (; n_added < MESH_MAX_PEERS && t < T0 + 400000; t += 1000) {
		tick(t);
		while (mesh_next_action(m, &act)) {
			unsigned i = (unsigned)(act.key[0] << 8 | act.key[1]) - first;

			ck_assert_int_eq(act.kind, MESH_ACT_ADD_PEER);
			ck_assert_uint_lt(i, MESH_MAX_PEERS);
			n_added += !added[i];
			added[i] = true;
		}
	}
	ck_assert_uint_eq(n_added, MESH_MAX_PEERS);
	mesh_stop(m);
	while (mesh_next_action(m, &act)) {
		unsigned i = (unsigned)(act.key[0] << 8 | act.key[1]) - first;

		ck_assert_int_eq(act.kind, MESH_ACT_REMOVE_PEER);
		ck_assert(added[i]);
		added[i] = false;
		removed++;
	}
	ck_assert_uint_eq(removed, MESH_MAX_PEERS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mesh");
	TCase *tc = tcase_create("mesh");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_add_checked_fixture(tc, setup_mesh, teardown_mesh);
	tcase_add_test(tc, path_names);
	tcase_add_test(tc, order_same_nat);
	tcase_add_test(tc, order_ipv6);
	tcase_add_test(tc, order_endpoint);
	tcase_add_test(tc, candidates_cycle);
	tcase_add_test(tc, rx_moved_keeps);
	tcase_add_test(tc, crossed_readded);
	tcase_add_test(tc, crossed_waits_for_a_fresh_arrival);
	tcase_add_test(tc, switch_at_handshake);
	tcase_add_test(tc, switch_late_read);
	tcase_add_test(tc, switch_both_ends);
	tcase_add_test(tc, quiet_lost_backoff);
	tcase_add_test(tc, gone_removed);
	tcase_add_test(tc, entries_refused);
	tcase_add_test(tc, host_route_refused);
	tcase_add_test(tc, candidates_refused);
	tcase_add_test(tc, address_taken);
	tcase_add_test(tc, probe_budget);
	tcase_add_test(tc, reset_grace);
	tcase_add_test(tc, stop_removes_ours);
	tcase_add_test(tc, own_endpoint_moved);
	tcase_add_test(tc, peer_endpoint_moved);
	tcase_add_test(tc, missing_readded);
	tcase_add_test(tc, add_failure_backs_off);
	tcase_add_test(tc, directory_change_restarts);
	tcase_add_test(tc, quiet_after_move_probes_now);
	tcase_add_test(tc, config_changes);
	tcase_add_test(tc, log_bounded);
	tcase_add_test(tc, full_mesh);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
