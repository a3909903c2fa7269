// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/* wg-dynamic-server: the unprivileged engine: set-up, event loop, device and pools. */

#include <errno.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../common/caps.h"
#include "../common/clock.h"
#include "../common/key.h"
#include "../common/log.h"
#include "../common/notify.h"
#include "../common/ratelimit.h"
#include "../common/rtnl.h"
#include "../common/wgdev.h"
#include "../protocol/proto.h"
#include "journal.h"
#include "lease.h"
#include "peers.h"
#include "privsep.h"
#include "pool.h"
#include "server.h"

/* Starts watching w->fd for events; 0 or -errno. */
int watcher_add(struct engine *e, struct watcher *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(e->epfd, EPOLL_CTL_ADD, w->fd, &ev) ? -errno : 0;
}

/* Changes the events w waits for (0: none for now); 0 or -errno. */
int watcher_modify(struct engine *e, struct watcher *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(e->epfd, EPOLL_CTL_MOD, w->fd, &ev) ? -errno : 0;
}

/*
 * Logs a line about a peer at most once per RATELIMIT_LOG_MS and cause: a
 * peer decides how often it connects, and must not decide how much is
 * logged. The next line that goes out says how many were held back. key
 * is the peer's public key, or NULL when no peer is known, and then all
 * such lines of the cause share one limit.
 */
void __attribute__((format(printf, 5, 6)))
peer_log(struct engine *e, void (*out)(const char *, ...), const uint8_t *key,
	 enum log_cause cause, const char *fmt, ...)
{
	static const uint8_t no_peer[1];
	char line[768];
	uint32_t more;
	va_list ap;

	if (out == log_debug && log_verbosity() < 1)
		return;
	if (!ratelimit_pass(&e->logrl, key ? key : no_peer, key ? WG_KEY_LEN : 0, cause,
			    clock_boot_ms(), &more))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (more)
		out("%s (%u more like this suppressed)", line, more);
	else
		out("%s", line);
}

/* ---- device state ---- */

#define LOOKUP_AHEAD 8

/*
 * Never lease the server's own addresses, nor addresses inside any peer's
 * configured allowed-IPs other than its own lease. Each peer found, with
 * its lease or NULL, goes on to visit when there is one: one lookup of the
 * lease serves both.
 */
static void rebuild_reservations(struct engine *e, const struct wgdev *dev,
				 const struct peer_visit *visit)
{
	struct rtnl_addr *addrs = NULL;
	uint32_t hashes[LOOKUP_AHEAD];
	size_t n = 0, found = 0;

	poolset_reserve_clear(e->pools);
	if (!rtnl_addr_list(e->rt, cfg->ifindex, AF_UNSPEC, &addrs, &n)) {
		for (size_t i = 0; i < n; i++) {
			struct wgd_ip host = addrs[i].ip;

			host.cidr = (uint8_t)wgd_ip_bits(host.family);
			poolset_reserve(e->pools, &host);
		}
		free(addrs);
	}

	/* The lookups of the next peers under way meanwhile: a lookup in a
	 * big table waits on cache misses, and so can wait for several. */
	for (size_t i = 0; i < dev->n_peers && i < LOOKUP_AHEAD; i++)
		hashes[i] = lease_prefetch(e->leases, dev->peers[i].pubkey);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *peer = &dev->peers[i];
		const struct lease *l =
			lease_find_hashed(e->leases, peer->pubkey, hashes[i % LOOKUP_AHEAD]);

		if (i + LOOKUP_AHEAD < dev->n_peers) {
			const struct wgdev_peer *next = &dev->peers[i + LOOKUP_AHEAD];

			hashes[i % LOOKUP_AHEAD] = lease_prefetch(e->leases, next->pubkey);
			__builtin_prefetch(next->allowedips);
		}

		for (size_t j = 0; j < peer->n_allowedips; j++) {
			const struct wgd_ip *ip = &peer->allowedips[j];

			if (l && ip->family == AF_INET && ip->cidr == 32 && l->has_ip4 &&
			    !memcmp(&ip->ip4, &l->ip4, sizeof(l->ip4)))
				continue;
			if (l && ip->family == AF_INET6 && ip->cidr == 128 && l->has_ip6 &&
			    !memcmp(&ip->ip6, &l->ip6, sizeof(l->ip6)))
				continue;
			poolset_reserve(e->pools, ip);
		}
		if (visit)
			visit->fn(peer, l, visit->ctx);
		found += l != NULL;
	}
	/* Keys are unique on a device: then every lease was found once. */
	e->all_leases_on_device =
		found == lease_count(e->leases) && peer_index_count(e->peers) == dev->n_peers;
}

/* With --auto-ll, every peer gets its derived link-local /128. */
static void ensure_auto_ll(struct wgdev *dev)
{
	for (size_t i = 0; i < dev->n_peers; i++) {
		struct wgdev_peer *peer = &dev->peers[i];
		struct wgd_ip ll, *grown;
		struct wgdev_change c;
		bool present = false;
		char kb[WG_KEY_B64_LEN], ib[WGD_IP_STRLEN];
		int ret;

		wgkey_derive_linklocal(&ll, peer->pubkey);
		for (size_t j = 0; j < peer->n_allowedips && !present; j++)
			present = wgd_ip_equal(&peer->allowedips[j], &ll);
		if (present)
			continue;
		memset(&c, 0, sizeof(c));
		memcpy(c.pubkey, peer->pubkey, WG_KEY_LEN);
		c.add[c.n_add++] = ll;
		priv_update_batch(&c, 1, &ret);
		if (ret) {
			log_warnx("cannot add %s to peer %s: %s", fmt_ip(&ll, ib),
				  fmt_key(peer->pubkey, kb), strerror(-ret));
			continue;
		}
		log_info("peer %s: added its derived link-local %s", fmt_key(peer->pubkey, kb),
			 fmt_ip(&ll, ib));
		/* Index it now rather than on the next read. */
		grown = realloc(peer->allowedips, (peer->n_allowedips + 1) * sizeof(*grown));
		if (grown) {
			grown[peer->n_allowedips++] = ll;
			peer->allowedips = grown;
		}
	}
}

/* ---- the journal ---- */

/* A lease as the journal records a grant or renewal of it. */
static void lease_to_record(const struct lease *l, struct journal_record *r)
{
	memset(r, 0, sizeof(*r));
	r->type = JREC_GRANT;
	r->flags = (l->has_ip4 ? JREC_F_IP4 : 0) | (l->has_ip6 ? JREC_F_IP6 : 0);
	r->start = l->start;
	r->leasetime = l->leasetime;
	r->ip4 = l->ip4;
	r->ip6 = l->ip6;
	memcpy(r->pubkey, l->pubkey, WG_KEY_LEN);
}

void journal_lease(struct engine *e, const struct lease *l)
{
	struct journal_record r;

	lease_to_record(l, &r);
	if (journal_append(e->journal, &r))
		fatalx_status(EXIT_SYSTEM, "out of memory for the journal");
	e->counters.journal_records++;
}

/* The end of c's peer's lease, its addresses c's removals; quarantine is
 * the seconds the addresses are held back, or 0. */
void journal_release(struct engine *e, const struct wgdev_change *c, uint32_t quarantine)
{
	struct journal_record r = {
		.type = JREC_RELEASE,
		.flags = quarantine ? JREC_F_QUARANTINE : 0,
		.start = clock_real_s(),
		.leasetime = quarantine,
	};

	memcpy(r.pubkey, c->pubkey, WG_KEY_LEN);
	for (size_t i = 0; i < c->n_del; i++) {
		if (c->del[i].family == AF_INET) {
			r.flags |= JREC_F_IP4;
			r.ip4 = c->del[i].ip4;
		} else {
			r.flags |= JREC_F_IP6;
			r.ip6 = c->del[i].ip6;
		}
	}
	if (journal_append(e->journal, &r))
		fatalx_status(EXIT_SYSTEM, "out of memory for the journal");
	e->counters.journal_records++;
}

/*
 * Ends a lease in the table and the journal, and logs why; the device
 * change, the addresses to take off its peer, goes to *c for
 * end_on_device().
 */
static void end_lease(struct engine *e, struct lease *l, const char *why, bool quarantine,
		      struct wgdev_change *c)
{
	char kb[WG_KEY_B64_LEN];

	if (quarantine)
		lease_release_quarantine(e->leases, l, clock_boot_ms() / 1000 + cfg->quarantine, c);
	else
		lease_release(e->leases, l, c);
	journal_release(e, c, quarantine ? cfg->quarantine : 0);
	mesh_lease_changed(e, c->pubkey);
	if (quarantine)
		log_info("peer %s: lease %s; its addresses are quarantined for %us",
			 fmt_key(c->pubkey, kb), why, cfg->quarantine);
	else
		log_info("peer %s: lease %s", fmt_key(c->pubkey, kb), why);
}

/* Takes the addresses of n ended leases off the device, in one exchange
 * with the parent (n at most PRIV_BATCH). The empty changes are dropped
 * from c first. */
static void end_on_device(struct wgdev_change *c, size_t n)
{
	int err[PRIV_BATCH];
	size_t m = 0;
	char kb[WG_KEY_B64_LEN];

	for (size_t i = 0; i < n; i++)
		if (c[i].n_add || c[i].n_del)
			c[m++] = c[i];
	if (!m)
		return;
	priv_update_batch(c, m, err);
	for (size_t j = 0; j < m; j++)
		if (err[j] && err[j] != -ENOENT)
			log_warnx("peer %s: cannot remove lease addresses: %s",
				  fmt_key(c[j].pubkey, kb), strerror(-err[j]));
}

/*
 * Ends a lease: recorded, off the device, addresses back to the pool or,
 * with quarantine, held back first.
 */
void release_lease(struct engine *e, struct lease *l, const char *why, bool quarantine)
{
	struct wgdev_change c;

	end_lease(e, l, why, quarantine, &c);
	end_on_device(&c, 1);
}

/* Takes in a device read: derived link-locals, the peer index, reservations;
 * visit, when not NULL, sees each peer with its lease. */
int index_device(struct engine *e, struct wgdev *dev, const struct peer_visit *visit)
{
	struct peer_index *pi;

	if (cfg->auto_ll)
		ensure_auto_ll(dev);
	pi = peer_index_build(dev);
	if (!pi)
		return -ENOMEM;
	peer_index_free(e->peers);
	e->peers = pi;
	rebuild_reservations(e, dev, visit);
	/* With --mesh the device is read every second: a line only when
	 * the count moves. */
	if (!cfg->mesh || peer_index_count(pi) != e->last_peer_count)
		log_debug("device read: %zu peers", peer_index_count(pi));
	e->last_peer_count = peer_index_count(pi);
	return 0;
}

/* Re-reads the device. */
int refresh_device(struct engine *e)
{
	struct peer_visit mesh = { mesh_device_peer, e };
	struct wgdev *dev = NULL;
	int ret;

	e->last_refresh_ms = clock_boot_ms();
	ret = priv_get_device(&dev);
	if (ret)
		return ret;
	ret = index_device(e, dev, cfg->mesh ? &mesh : NULL);
	wgdev_free(dev);
	return ret;
}

/* ---- pools ---- */

static void pool_add(struct engine *e, const struct wgd_ip *prefix, const char *origin)
{
	char b[WGD_IP_STRLEN];
	int ret = poolset_add(e->pools, prefix);

	if (!ret)
		log_info("pool %s (%s)", fmt_ip(prefix, b), origin);
	else if (ret != -EEXIST)
		log_debug("pool %s (%s) not used: overlaps another pool", fmt_ip(prefix, b), origin);
}

static bool is_cfg_pool(const struct wgd_ip *prefix)
{
	for (size_t i = 0; i < cfg->n_pools; i++)
		if (wgd_ip_equal(&cfg->pools[i], prefix))
			return true;
	return false;
}

/*
 * Makes the route pools the interface's direct routes as they are now,
 * adding and removing. Route notifications keep them so as a rule, but the
 * kernel drops an interface's IPv4 routes without one when the last IPv4
 * address goes, and notifications can be lost (an overrun).
 */
void load_route_pools(struct engine *e)
{
	struct wgd_ip *routes = NULL;
	size_t n = 0;
	int ret = rtnl_route_list(e->rt, cfg->ifindex, AF_UNSPEC, &routes, &n);

	if (ret) {
		log_warnx("cannot list the routes of %s: %s", cfg->ifname, strerror(-ret));
		return;
	}
	for (size_t i = poolset_count(e->pools); i-- > 0;) {
		struct wgd_ip pool = *poolset_prefix(e->pools, i);
		char b[WGD_IP_STRLEN];
		bool routed = false;

		if (is_cfg_pool(&pool))
			continue;
		for (size_t j = 0; j < n && !routed; j++)
			routed = priv_is_pool_route(&routes[j]) && wgd_ip_equal(&routes[j], &pool);
		if (!routed && !poolset_remove(e->pools, &pool))
			log_info("pool %s removed with its route", fmt_ip(&pool, b));
	}
	for (size_t i = 0; i < n; i++)
		if (priv_is_pool_route(&routes[i]))
			pool_add(e, &routes[i], "route");
	free(routes);
}

/* ---- timers ---- */

/* Leases that ran out, their addresses taken off PRIV_BATCH at a time. */
static void expire_leases(struct engine *e)
{
	uint64_t now = clock_boot_ms() / 1000;
	struct wgdev_change c[PRIV_BATCH];
	struct lease *l;
	size_t n;

	do {
		for (n = 0; n < PRIV_BATCH && (l = lease_first_expiry(e->leases)) &&
			    l->expires <= now; n++) {
			e->counters.expiries++;
			end_lease(e, l, "expired", false, &c[n]);
		}
		if (n)
			end_on_device(c, n);
	} while (n == PRIV_BATCH);
}

static void expire_quarantine(struct engine *e)
{
	size_t n = lease_quarantine_expire(e->leases, clock_boot_ms() / 1000);

	if (n)
		log_info("quarantine over for %zu addresses; they return to the pools", n);
}

struct departed {
	const struct peer_index *peers;
	size_t n, cap;
	uint8_t (*keys)[WG_KEY_LEN];
};

static void collect_departed(const struct lease *l, void *ctx)
{
	struct departed *d = ctx;

	if (peer_index_has_key(d->peers, l->pubkey) || d->n == d->cap)
		return;
	memcpy(d->keys[d->n++], l->pubkey, WG_KEY_LEN);
}

/* Drops leases of peers that left the device. */
static void drop_departed_peers(struct engine *e)
{
	struct departed d = { .peers = e->peers, .cap = lease_count(e->leases) };

	/* The device was just indexed, and each lease looked up then. */
	if (!d.cap || e->all_leases_on_device)
		return;
	d.keys = calloc(d.cap, WG_KEY_LEN);
	if (!d.keys)
		return;
	lease_foreach(e->leases, collect_departed, &d);
	for (size_t i = 0; i < d.n; i += PRIV_BATCH) {
		size_t n = d.n - i < PRIV_BATCH ? d.n - i : PRIV_BATCH;
		struct wgdev_change c[PRIV_BATCH] = { 0 };

		for (size_t j = 0; j < n; j++) {
			e->counters.departures++;
			end_lease(e, lease_find(e->leases, d.keys[i + j]), "dropped: the peer is gone",
				  true, &c[j]);
		}
		end_on_device(c, n);
	}
	free(d.keys);
}

static int next_timeout_ms(struct engine *e)
{
	uint64_t now = clock_boot_ms(), next = e->last_refresh_ms + cfg->refresh_ms;
	uint64_t q = lease_quarantine_next(e->leases);
	const struct lease *l = lease_first_expiry(e->leases);

	if (l && (uint64_t)l->expires * 1000 < next)
		next = (uint64_t)l->expires * 1000;
	if (q != UINT64_MAX && q * 1000 < next)
		next = q * 1000;
	for (const struct conn *c = e->conns; c; c = c->next)
		if (c->deadline_ms < next)
			next = c->deadline_ms;
	if (cfg->mesh && mesh_next_timeout(e) < next)
		next = mesh_next_timeout(e);
	return next <= now ? 0 : (int)(next - now);
}

/* ---- interface events ---- */

static void on_rtnl_event(const struct rtnl_event *ev, void *ctx)
{
	struct engine *e = ctx;

	switch (ev->type) {
	case RTNL_EV_LINK_DEL:
		if (ev->ifindex == cfg->ifindex) {
			log_warnx("interface %s was deleted; exiting (a service manager may restart "
				  "the server once it is back)", cfg->ifname);
			exit(EXIT_IFACE_GONE);
		}
		break;
	case RTNL_EV_ROUTE_NEW:
		if (ev->ifindex == cfg->ifindex && !ev->has_gateway && ev->table == RT_TABLE_MAIN &&
		    priv_is_pool_route(&ev->ip))
			pool_add(e, &ev->ip, "route");
		break;
	case RTNL_EV_ROUTE_DEL:
		if (ev->ifindex == cfg->ifindex && ev->table == RT_TABLE_MAIN &&
		    !is_cfg_pool(&ev->ip)) {
			char b[WGD_IP_STRLEN];

			if (!poolset_remove(e->pools, &ev->ip))
				log_info("pool %s removed with its route", fmt_ip(&ev->ip, b));
		}
		break;
	case RTNL_EV_ADDR_DEL:
		/* The last IPv4 address took the routes with it, unannounced. */
		if (ev->ifindex == cfg->ifindex && ev->ip.family == AF_INET)
			load_route_pools(e);
		break;
	case RTNL_EV_OVERRUN:
		load_route_pools(e);
		break;
	default:
		break;
	}
}

struct compact_ctx {
	struct journal *journal;
	int err;
};

static void compact_lease(const struct lease *l, void *ctx)
{
	struct compact_ctx *cc = ctx;
	struct journal_record r;

	lease_to_record(l, &r);
	if (!cc->err)
		cc->err = journal_compact_add(cc->journal, &r);
}

/* Rewrites the journal as the live leases and quarantines alone. */
static void compact_journal(struct engine *e)
{
	struct compact_ctx cc = { .journal = e->journal };
	uint32_t now_real = clock_real_s();
	uint64_t now_boot = clock_boot_ms() / 1000, until;
	const struct wgd_ip *a;
	off_t before = journal_size(e->journal);

	cc.err = journal_compact_begin(e->journal);
	if (!cc.err)
		lease_foreach(e->leases, compact_lease, &cc);
	for (size_t i = 0; !cc.err && (a = lease_quarantine_get(e->leases, i, &until)); i++) {
		struct journal_record r = {
			.type = JREC_RELEASE,
			.flags = JREC_F_QUARANTINE | (a->family == AF_INET ? JREC_F_IP4 : JREC_F_IP6),
			.start = now_real,
			.leasetime = until > now_boot ? (uint32_t)(until - now_boot) : 0,
		};

		if (a->family == AF_INET)
			r.ip4 = a->ip4;
		else
			r.ip6 = a->ip6;
		cc.err = journal_compact_add(e->journal, &r);
	}
	if (!cc.err)
		cc.err = journal_compact_end(e->journal);
	if (cc.err) {
		journal_compact_abort(e->journal);
		log_warnx("cannot compact the journal %s: %s", cfg->journal_name,
			  strerror(-cc.err));
		return;
	}
	log_info("compacted the journal %s from %lld to %lld bytes", cfg->journal_name,
		 (long long)before, (long long)journal_size(e->journal));
}

/* ---- the engine ---- */

/* The parent speaks only when asked: anything else is its end. */
static void on_parent(struct watcher *w, uint32_t events)
{
	(void)w;
	(void)events;
	log_warnx("the privileged parent is gone; exiting");
	exit(EXIT_ENGINE);
}

static void on_signal(struct watcher *w, uint32_t events)
{
	struct engine *e = container_of(w, struct engine, signals);
	struct signalfd_siginfo si;

	(void)events;
	if (read(w->fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGHUP) {
		log_info("exiting on signal %u; leases stay on the device", si.ssi_signo);
		if (journal_pending(e->journal))
			journal_commit(e->journal);
		exit(EXIT_OK);
	}
}

static void on_rtnl(struct watcher *w, uint32_t events)
{
	struct engine *e = container_of(w, struct engine, rtnl_events);
	int ret = rtnl_monitor_read(e->mon, on_rtnl_event, e);

	(void)events;
	if (ret)
		log_warnx("rtnetlink: %s", strerror(-ret));
}

/* Runs the lease service with no privileges; never returns. */
void __attribute__((noreturn)) engine_main(const struct engine_start *start)
{
	static struct engine engine;
	struct engine *e = &engine;
	int ret;

	pid_t parent = getppid();

	priv_engine_init(start->parent_fd);
	e->rt = start->rt;
	e->commit_tail = &e->commit_head;
	mesh_init(e);
	ratelimit_init(&e->logrl, RATELIMIT_LOG_MS);
	ret = rtnl_monitor_open(&e->mon, RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE |
				RTMGRP_IPV4_IFADDR);
	if (ret)
		fatalx_status(EXIT_SYSTEM, "cannot watch rtnetlink: %s", strerror(-ret));
	/* Readiness is the engine's to tell (NotifyAccess=all); connect
	 * before the chroot hides the socket. */
	ret = notify_open();
	if (ret)
		log_warnx("cannot reach $NOTIFY_SOCKET: %s", strerror(-ret));
	/* Into the directory the parent checked, by its descriptor: no path
	 * is looked up again. Nothing outside stays open. */
	if (fchdir(start->dir_fd) || chroot(".") || chdir("/"))
		fatal_status(EXIT_SYSTEM, "cannot confine the engine to %s/%s", cfg->state_dir, ENGINE_DIR);
	close(start->dir_fd);
	ret = caps_become_user(start->uid, start->gid);
	if (ret)
		fatalx_status(EXIT_SYSTEM, "cannot drop privileges to user %s: %s", cfg->user,
			      strerror(-ret));
	/* After the change of user, which clears it; a parent already gone
	 * would never send the signal. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		fatalx_status(EXIT_ENGINE, "the parent is gone; exiting");

	e->pools = poolset_new();
	e->leases = e->pools ? lease_table_new(e->pools) : NULL;
	if (!e->leases)
		fatalx_status(EXIT_SYSTEM, "out of memory");
	for (size_t i = 0; i < cfg->n_pools; i++)
		pool_add(e, &cfg->pools[i], "--pool");
	load_route_pools(e);
	if (!poolset_count(e->pools)) {
		log_warnx("no pool to lease from: give --pool CIDR, or add an address with a "
			  "prefix to %s (ip addr add 10.0.0.1/24 dev %s)", cfg->ifname, cfg->ifname);
		exit(EXIT_NO_POOL);
	}

	start_up_state(e);
	drop_departed_peers(e);
	if (journal_pending(e->journal) && journal_commit(e->journal))
		fatalx_status(EXIT_JOURNAL, "cannot write the lease journal %s", cfg->journal_name);
	if (journal_wants_compaction(e->journal, lease_count(e->leases)))
		compact_journal(e);
	if (!peer_index_count(e->peers))
		log_warnx("%s has no peers yet; waiting for some", cfg->ifname);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	e->signals.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0 || e->signals.fd < 0)
		fatal_status(EXIT_SYSTEM, "cannot set up the event loop");
	e->listener = (struct watcher){ start->listen_fd, accept_conns };
	e->control = (struct watcher){ start->ctl_fd, accept_ctl };
	e->parent = (struct watcher){ start->parent_fd, on_parent };
	e->signals.on_event = on_signal;
	e->rtnl_events = (struct watcher){ rtnl_monitor_fd(e->mon), on_rtnl };
	watcher_add(e, &e->listener, EPOLLIN);
	if (e->control.fd >= 0)
		watcher_add(e, &e->control, EPOLLIN);
	watcher_add(e, &e->parent, EPOLLIN);
	watcher_add(e, &e->signals, EPOLLIN);
	watcher_add(e, &e->rtnl_events, EPOLLIN);
	log_info("serving %s on [fe80::%%%s]:970, lease time %us", cfg->ifname, cfg->ifname,
		 cfg->leasetime);
	notify_send("READY=1\nSTATUS=serving leases");

	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(e->epfd, evs, 64, next_timeout_ms(e));

		if (n < 0 && errno != EINTR)
			fatal_status(EXIT_SYSTEM, "epoll_wait");
		for (int i = 0; i < n; i++) {
			struct watcher *w = evs[i].data.ptr;

			w->on_event(w, evs[i].events);
		}
		expire_leases(e);
		expire_quarantine(e);
		expire_conns(e);
		/* A peer that joined the mesh has its first answer after a
		 * device read, to carry its endpoint: one now, unless the
		 * last is less than a quarter second old. */
		if (clock_boot_ms() - e->last_refresh_ms >= cfg->refresh_ms ||
		    (e->mesh_refresh &&
		     clock_boot_ms() - e->last_refresh_ms >= REFRESH_MIN_MS / 4)) {
			e->mesh_refresh = false;
			ret = refresh_device(e);
			if (ret)
				log_warnx("cannot read %s: %s", cfg->ifname, strerror(-ret));
			else
				drop_departed_peers(e);
		}
		commit_round(e);
		mesh_round(e);
		if (journal_wants_compaction(e->journal, lease_count(e->leases)))
			compact_journal(e);
	}
}

