// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/* wg-dynamic-server: start-up: the journal replayed into the live lease table,
 * and the device reconciled with it. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/array.h"
#include "../common/clock.h"
#include "../common/key.h"
#include "../common/log.h"
#include "../common/wgdev.h"
#include "../protocol/proto.h"
#include "journal.h"
#include "lease.h"
#include "peers.h"
#include "privsep.h"
#include "pool.h"
#include "server.h"

/* ---- start-up: the journal ---- */

/*
 * Replaying the journal applies each record to the live lease table as it
 * is read: a grant inserts or overwrites its peer's lease and marks its
 * addresses in the pools, a release ends it. Beside the table, per peer:
 * a latest grant that had already run out (expired), and every address of
 * a lease that ended or moved, or that a clash took away (gone), which the
 * device may still carry if the server stopped between a record and the
 * device change that followed it.
 */
#define REPLAY_AHEAD 8

/*
 * The gone addresses: a list of (peer, address), at most two a record or
 * a lease, so bounded by the journal; sorted by peer once the replay is
 * done, for the device pass to find a peer's by bisection. Most start-ups
 * follow a clean stop and find it empty.
 */
struct gone_addr {
	uint8_t pubkey[WG_KEY_LEN];
	struct wgd_ip addr;
};

struct gone {
	struct gone_addr *v;
	size_t n, cap;
};

struct replay {
	struct engine *e;
	struct lease_table *expired;          /* no pools: scratch */
	struct gone gone;
	uint32_t now_real;
	uint64_t now_boot;
	bool clash;                           /* two leases claimed an address */
	/* Records read and not yet applied, their keys' lookups under way:
	 * each waits for a few cache misses at once rather than in turn. */
	struct pending {
		struct journal_record r;
		uint32_t hash;
	} ahead[REPLAY_AHEAD];
	size_t n_ahead, next;
	struct replay_quarantine {
		struct wgd_ip addr;
		uint64_t until_real;
	} *q;
	size_t n_q, cap_q;
};

static void record_to_lease(const struct journal_record *r, struct lease *l)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->pubkey, r->pubkey, WG_KEY_LEN);
	l->has_ip4 = r->flags & JREC_F_IP4;
	l->has_ip6 = r->flags & JREC_F_IP6;
	l->ip4 = r->ip4;
	l->ip6 = r->ip6;
	l->start = r->start;
	l->leasetime = r->leasetime;
}

static int replay_quarantine(struct replay *rp, const struct wgd_ip *addr, uint64_t until)
{
	if (array_reserve(&rp->q, &rp->cap_q, rp->n_q, sizeof(*rp->q), 16))
		return -ENOMEM;
	rp->q[rp->n_q].addr = *addr;
	rp->q[rp->n_q++].until_real = until;
	return 0;
}

static int gone_add(struct gone *g, const uint8_t *pubkey, const struct wgd_ip *addr)
{
	if (array_reserve(&g->v, &g->cap, g->n, sizeof(*g->v), 16))
		return -ENOMEM;
	memcpy(g->v[g->n].pubkey, pubkey, WG_KEY_LEN);
	g->v[g->n++].addr = *addr;
	return 0;
}

/* The addresses of l, which the device may still carry on its peer. */
static int gone_add_lease(struct gone *g, const struct lease *l)
{
	struct wgd_ip a;
	int ret = 0;

	if (l->has_ip4) {
		wgd_ip_host4(&a, &l->ip4);
		ret = gone_add(g, l->pubkey, &a);
	}
	if (!ret && l->has_ip6) {
		wgd_ip_host6(&a, &l->ip6);
		ret = gone_add(g, l->pubkey, &a);
	}
	return ret;
}

static int gone_cmp(const void *a, const void *b)
{
	const struct gone_addr *x = a, *y = b;
	int d = memcmp(x->pubkey, y->pubkey, WG_KEY_LEN);

	if (!d)
		d = (int)x->addr.family - (int)y->addr.family;
	return d ? d : memcmp(x->addr.bytes, y->addr.bytes, sizeof(x->addr.bytes));
}

/* Sorted by peer, each (peer, address) once. */
static void gone_sort(struct gone *g)
{
	size_t n = 0;

	if (!g->n)
		return;
	qsort(g->v, g->n, sizeof(*g->v), gone_cmp);
	for (size_t i = 1; i < g->n; i++)
		if (gone_cmp(&g->v[n], &g->v[i]))
			g->v[++n] = g->v[i];
	g->n = n + 1;
}

/* The first of the peer's gone addresses in the sorted list, or g->n. */
static size_t gone_first(const struct gone *g, const uint8_t *pubkey)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(g->v[mid].pubkey, pubkey, WG_KEY_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Whether prev held an address that l does not: it is gone. */
static bool moved(const struct lease *prev, const struct lease *l)
{
	return (prev->has_ip4 && (!l->has_ip4 || prev->ip4.s_addr != l->ip4.s_addr)) ||
	       (prev->has_ip6 && (!l->has_ip6 || memcmp(&prev->ip6, &l->ip6, 16)));
}

/*
 * Ends the peer's lease, live or run out, as the next record replaces it;
 * a copy goes to *prev (no address when there was none).
 */
static void replay_end(struct replay *rp, const uint8_t *pubkey, uint32_t hash, struct lease *prev)
{
	struct lease *l = lease_find_hashed(rp->e->leases, pubkey, hash);
	struct wgdev_change c;

	memset(prev, 0, sizeof(*prev));
	if (l) {
		*prev = *l;
		lease_release(rp->e->leases, l, &c);
	} else if (lease_count(rp->expired) && (l = lease_find(rp->expired, pubkey))) {
		*prev = *l;
		lease_forget(rp->expired, pubkey);
	}
}

static int apply_record(struct replay *rp, const struct journal_record *r, uint32_t hash)
{
	struct lease l, prev;
	int ret;

	record_to_lease(r, &l);
	if (r->type == JREC_GRANT) {
		uint64_t end = (uint64_t)r->start + r->leasetime;

		if (end <= rp->now_real) {
			/* Run out already: it holds no address, and stays
			 * aside in case a later record of the peer follows. */
			replay_end(rp, r->pubkey, hash, &prev);
			ret = lease_set(rp->expired, &l);
		} else {
			l.expires = (uint32_t)(rp->now_boot + (end - rp->now_real));
			ret = lease_replay_grant(rp->e->leases, &l, hash, &prev);
			if (ret == -EEXIST) {
				rp->clash = true;
				ret = 0;
			}
			if (!ret && !prev.has_ip4 && !prev.has_ip6 && lease_count(rp->expired)) {
				const struct lease *x = lease_find(rp->expired, r->pubkey);

				if (x) {
					prev = *x;
					lease_forget(rp->expired, r->pubkey);
				}
			}
		}
		if (!ret && moved(&prev, &l))
			ret = gone_add_lease(&rp->gone, &prev);
		return ret;
	}

	replay_end(rp, r->pubkey, hash, &prev);
	if (!wgkey_is_zero(r->pubkey)) {
		ret = gone_add_lease(&rp->gone, &l);
		if (ret)
			return ret;
	}
	if (r->flags & JREC_F_QUARANTINE) {
		struct wgd_ip a;
		uint64_t until = (uint64_t)r->start + r->leasetime;

		if (l.has_ip4) {
			wgd_ip_host4(&a, &l.ip4);
			if ((ret = replay_quarantine(rp, &a, until)))
				return ret;
		}
		if (l.has_ip6) {
			wgd_ip_host6(&a, &l.ip6);
			if ((ret = replay_quarantine(rp, &a, until)))
				return ret;
		}
	}
	return 0;
}

/* Applies the records read ahead, oldest first, until n are left. */
static int replay_drain(struct replay *rp, size_t n)
{
	int ret;

	while (rp->n_ahead > n) {
		struct pending *p =
			&rp->ahead[(rp->next + REPLAY_AHEAD - rp->n_ahead) % REPLAY_AHEAD];

		rp->n_ahead--;
		ret = apply_record(rp, &p->r, p->hash);
		if (ret)
			return ret;
	}
	return 0;
}

static int replay_record(const struct journal_record *r, void *ctx)
{
	struct replay *rp = ctx;
	struct pending *p;
	int ret = replay_drain(rp, REPLAY_AHEAD - 1);

	if (ret)
		return ret;
	p = &rp->ahead[rp->next];
	p->r = *r;
	p->hash = lease_prefetch(rp->e->leases, r->pubkey);
	if (r->type == JREC_GRANT && (r->flags & JREC_F_IP6)) {
		struct wgd_ip a;

		wgd_ip_host6(&a, &r->ip6);
		poolset_prefetch_addr(rp->e->pools, &a);
	}
	rp->next = (rp->next + 1) % REPLAY_AHEAD;
	rp->n_ahead++;
	return 0;
}

struct lease_list {
	struct lease *v;
	size_t n;
};

static void collect_lease(const struct lease *l, void *ctx)
{
	struct lease_list *list = ctx;

	list->v[list->n++] = *l;
}

/* Orders (start << 32 | position) keys newest first. */
static int by_key_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * When two leases claimed one address (a damaged journal), the pools no
 * longer say who holds what: the leases are taken out and put back newest
 * first, so that the later grant keeps the address; what a lease gives up
 * is gone, so that its peer lets go of it on the device. Rare, and so
 * simple rather than fast.
 */
static void settle_clashes(struct engine *e, struct gone *gone)
{
	struct lease_list list = { .v = calloc(lease_count(e->leases) + 1, sizeof(struct lease)) };
	uint64_t *order = calloc(lease_count(e->leases) + 1, sizeof(*order));
	struct wgdev_change c;
	char kb[WG_KEY_B64_LEN];

	if (!list.v || !order)
		fatalx_status(EXIT_SYSTEM, "out of memory restoring leases");
	lease_foreach(e->leases, collect_lease, &list);
	/* Every address back first: a clash left some unmarked. */
	for (size_t i = 0; i < list.n; i++)
		lease_release(e->leases, lease_find(e->leases, list.v[i].pubkey), &c);
	/* Sorting small keys rather than whole leases. */
	for (size_t i = 0; i < list.n; i++)
		order[i] = (uint64_t)list.v[i].start << 32 | i;
	qsort(order, list.n, sizeof(*order), by_key_desc);
	for (size_t i = 0; i < list.n; i++) {
		struct lease *l = &list.v[(uint32_t)order[i]];

		if (!lease_restore(e->leases, l))
			continue;
		/* Keep whichever family does not clash. */
		struct lease one = *l;
		bool ok = false;

		one.has_ip6 = false;
		if (one.has_ip4 && !lease_restore(e->leases, &one))
			ok = true;
		else {
			one = *l;
			one.has_ip4 = false;
			ok = one.has_ip6 && !lease_restore(e->leases, &one);
		}
		/* Gone: l's addresses, less the family it kept. */
		one.has_ip4 = l->has_ip4 && !(ok && one.has_ip4);
		one.has_ip6 = l->has_ip6 && !(ok && one.has_ip6);
		if (gone_add_lease(gone, &one))
			fatalx_status(EXIT_SYSTEM, "out of memory restoring leases");
		log_warnx("journal: peer %s: an address was leased twice; %s", fmt_key(l->pubkey, kb),
			  ok ? "kept the other family" : "dropped the lease");
	}
	free(order);
	free(list.v);
}

static void expired_to_gone(const struct lease *l, void *ctx)
{
	if (gone_add_lease(ctx, l))
		fatalx_status(EXIT_SYSTEM, "out of memory restoring leases");
}

/*
 * After the replay: clashes settled, leases that ran out meanwhile joined
 * those that had already (gone, both), and the quarantines restored.
 */
static void settle_leases(struct engine *e, struct replay *rp)
{
	uint32_t now_real = clock_real_s();
	uint64_t now_boot = clock_boot_ms() / 1000;
	size_t expired = lease_count(rp->expired), held = 0;
	struct wgdev_change c;
	struct lease *l;

	if (rp->clash)
		settle_clashes(e, &rp->gone);
	/* The replay took the time at its start. */
	while ((l = lease_first_expiry(e->leases)) && l->expires <= now_boot) {
		if (gone_add_lease(&rp->gone, l))
			fatalx_status(EXIT_SYSTEM, "out of memory restoring leases");
		lease_release(e->leases, l, &c);
		expired++;
	}
	lease_foreach(rp->expired, expired_to_gone, &rp->gone);
	gone_sort(&rp->gone);

	for (size_t i = 0; i < rp->n_q; i++) {
		if (rp->q[i].until_real <= now_real)
			continue;
		if (poolset_contains(e->pools, &rp->q[i].addr) &&
		    poolset_take(e->pools, &rp->q[i].addr))
			continue;
		if (lease_quarantine_addr(e->leases, &rp->q[i].addr,
					  now_boot + (rp->q[i].until_real - now_real)))
			poolset_put(e->pools, &rp->q[i].addr);
		else
			held++;
	}
	log_info("journal %s: restored %zu leases, dropped %zu expired, %zu addresses in "
		 "quarantine", cfg->journal_name, lease_count(e->leases), expired, held);
}

static void open_journal(struct engine *e, struct replay *rp)
{
	struct journal_stats st = { 0 };
	int ret;

	struct stat jst;
	char jpath[IF_NAMESIZE + 16];

	/* The engine sees its directory as its root. Room for every
	 * record as a live lease is room enough for the replay; failing
	 * that, the table grows as it goes. */
	snprintf(jpath, sizeof(jpath), "/%s.leases", cfg->ifname);
	if (!lstat(jpath, &jst) && jst.st_size > JOURNAL_HEADER_SIZE)
		lease_table_reserve(e->leases, (size_t)(jst.st_size - JOURNAL_HEADER_SIZE) /
						       JOURNAL_RECORD_SIZE);
	ret = journal_open(&e->journal, "/", cfg->ifname, replay_record, rp, &st);
	if (ret == -EBADMSG || ret == -EPROTONOSUPPORT) {
		log_warnx("%s is not a lease journal this server can read (%s); it is left "
			  "untouched: move it aside to start afresh", cfg->journal_name,
			  ret == -EBADMSG ? "bad header" : "unknown version");
		exit(EXIT_JOURNAL);
	} else if (ret == -EBUSY) {
		log_warnx("%s is in use: is another wg-dynamic-server running on %s?",
			  cfg->journal_name, cfg->ifname);
		exit(EXIT_JOURNAL);
	} else if (ret == -ELOOP || ret == -EINVAL || ret == -EMLINK) {
		/* Not a file the engine made: followed or written, it could
		 * be another one's. */
		log_warnx("%s is %s, not a lease journal; it is left untouched: move it aside to "
			  "start afresh", cfg->journal_name,
			  ret == -ELOOP ? "a symbolic link" :
			  ret == -EMLINK ? "a file with other names (hard links)" :
					   "not a regular file");
		exit(EXIT_JOURNAL);
	} else if (ret) {
		log_warnx("cannot open the lease journal %s: %s", cfg->journal_name, strerror(-ret));
		exit(EXIT_STATE_DIR);
	}
	ret = replay_drain(rp, 0);
	if (ret)
		fatalx_status(EXIT_SYSTEM, "cannot replay the lease journal %s: %s",
			      cfg->journal_name, strerror(-ret));
	if (st.dropped_bytes)
		log_warnx("journal %s: dropped %zu bytes of a torn or corrupt tail after %zu valid "
			  "records", cfg->journal_name, st.dropped_bytes, st.records);
}

/* ---- start-up: the device ---- */

static bool peer_has_ip(const struct wgdev_peer *p, const struct wgd_ip *ip)
{
	for (size_t i = 0; i < p->n_allowedips; i++)
		if (wgd_ip_equal(&p->allowedips[i], ip))
			return true;
	return false;
}

struct reconcile {
	const struct gone *gone;
	struct wgdev_change *add;             /* additions, made after the pass */
	size_t n_add, cap_add;
};

static void log_change(const struct wgdev_change *c, int ret)
{
	char kb[WG_KEY_B64_LEN], ab[WGD_IP_STRLEN];

	for (size_t i = 0; i < c->n_add; i++)
		log_info("reconcile: peer %s: %s %s", fmt_key(c->pubkey, kb),
			 ret ? "cannot re-add" : "re-added", fmt_ip(&c->add[i], ab));
	for (size_t i = 0; i < c->n_del; i++)
		log_info("reconcile: peer %s: %s stale %s", fmt_key(c->pubkey, kb),
			 ret ? "cannot remove" : "removed", fmt_ip(&c->del[i], ab));
}

static void remove_stale(struct wgdev_change *c)
{
	int ret;

	priv_update_batch(c, 1, &ret);
	log_change(c, ret);
	c->n_del = 0;
}

/*
 * Makes the device agree with the journal, both ways, one peer at a time
 * as the device is indexed: addresses the journal knows as this peer's
 * ended or moved leases, or as lost in a clash (gone), are taken off at
 * once; the addresses of its live lease l missing from its allowed-IPs
 * are noted, and added back after the pass, when every peer has let go of
 * what it no longer holds: the parent refuses an address another peer
 * holds. Host allowed-IPs the journal never leased are configuration, and
 * stay (and are reserved). Leases of peers no longer on the device are
 * dropped afterwards, by drop_departed_peers().
 */
static void reconcile_peer(const struct wgdev_peer *peer, const struct lease *l, void *ctx)
{
	struct reconcile *rc = ctx;
	const struct gone *gone = rc->gone;
	struct wgd_ip want[2];
	struct wgdev_change c = { 0 };
	size_t n_want = 0;

	memcpy(c.pubkey, peer->pubkey, WG_KEY_LEN);
	/* Most start-ups follow a clean stop, with nothing gone. */
	for (size_t i = gone_first(gone, peer->pubkey);
	     i < gone->n && !memcmp(gone->v[i].pubkey, peer->pubkey, WG_KEY_LEN); i++) {
		const struct wgd_ip *g = &gone->v[i].addr;

		if (l && g->family == AF_INET && l->has_ip4 && l->ip4.s_addr == g->ip4.s_addr)
			continue;
		if (l && g->family == AF_INET6 && l->has_ip6 && !memcmp(&l->ip6, &g->ip6, 16))
			continue;
		if (!peer_has_ip(peer, g))
			continue;
		c.del[c.n_del++] = *g;
		if (c.n_del == WGDEV_CHANGE_MAX)
			remove_stale(&c);
	}
	if (c.n_del)
		remove_stale(&c);

	if (l && l->has_ip4)
		wgd_ip_host4(&want[n_want++], &l->ip4);
	if (l && l->has_ip6)
		wgd_ip_host6(&want[n_want++], &l->ip6);
	for (size_t i = 0; i < n_want; i++)
		if (!peer_has_ip(peer, &want[i]))
			c.add[c.n_add++] = want[i];
	if (!c.n_add)
		return;
	if (array_reserve(&rc->add, &rc->cap_add, rc->n_add, sizeof(*rc->add), 16))
		fatalx_status(EXIT_SYSTEM, "out of memory reconciling %s", cfg->ifname);
	rc->add[rc->n_add++] = c;
}

/* The additions reconcile_peer() noted, a batch at a time. */
static void readd_leased(const struct reconcile *rc)
{
	int err[PRIV_BATCH];

	for (size_t i = 0; i < rc->n_add; i += PRIV_BATCH) {
		size_t n = rc->n_add - i < PRIV_BATCH ? rc->n_add - i : PRIV_BATCH;

		priv_update_batch(&rc->add[i], n, err);
		for (size_t j = 0; j < n; j++)
			log_change(&rc->add[i + j], err[j]);
	}
}

/* Reads the journal and the device and makes them agree. */
void start_up_state(struct engine *e)
{
	struct replay rp = { .e = e };
	struct reconcile rc = { .gone = &rp.gone };
	struct poolset *none = poolset_new();
	struct wgdev *dev = NULL;
	int ret;

	uint64_t t[5];

	t[0] = clock_mono_us();
	rp.expired = none ? lease_table_new(none) : NULL;
	if (!rp.expired)
		fatalx_status(EXIT_SYSTEM, "out of memory");
	rp.now_real = clock_real_s();
	rp.now_boot = clock_boot_ms() / 1000;
	open_journal(e, &rp);
	t[1] = clock_mono_us();
	settle_leases(e, &rp);
	lease_table_free(rp.expired);
	free(rp.q);

	t[2] = clock_mono_us();
	e->last_refresh_ms = clock_boot_ms();
	ret = priv_get_device(&dev);
	if (ret)
		fatalx_status(EXIT_SYSTEM, "cannot read WireGuard device %s: %s", cfg->ifname,
			      strerror(-ret));
	t[3] = clock_mono_us();
	ret = index_device(e, dev, &(struct peer_visit){ reconcile_peer, &rc });
	if (ret)
		fatalx_status(EXIT_SYSTEM, "cannot index the peers of %s: %s", cfg->ifname,
			      strerror(-ret));
	readd_leased(&rc);
	free(rc.add);
	wgdev_free(dev);
	free(rp.gone.v);
	poolset_free(none);
	t[4] = clock_mono_us();
	log_debug("start-up: journal replay %llu ms, settle %llu ms, device read %llu ms, "
		  "index and reconcile %llu ms",
		  (t[1] - t[0]) / 1000ULL, (t[2] - t[1]) / 1000ULL, (t[3] - t[2]) / 1000ULL,
		  (t[4] - t[3]) / 1000ULL);
}
