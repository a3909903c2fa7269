// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/rtnetlink.h>

#include <sodium.h>

#include "../common/clock.h"
#include "../common/key.h"
#include "../common/log.h"
#include "../common/ratelimit.h"
#include "../common/rtnl.h"
#include "pool.h"
#include "privsep.h"

union priv_msg {
	uint32_t type;
	struct priv_get_device get;
	struct priv_updates updates;
	struct priv_result result;
	struct priv_dev_peers peers;
	struct priv_dev_end end;
};

/* Receives one message; its length, 0 when the other side closed, or -errno.
 * A message longer than any we know is an error (-EMSGSIZE). */
static ssize_t priv_recv(int fd, union priv_msg *m)
{
	for (;;) {
		ssize_t n = recv(fd, m, sizeof(*m), MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if ((size_t)n > sizeof(*m))
			return -EMSGSIZE;
		return n;
	}
}

static int priv_send(int fd, const void *m, size_t len)
{
	for (;;) {
		ssize_t n = send(fd, m, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		return (size_t)n == len ? 0 : -EIO;
	}
}

/* ---- the engine's side ---- */

static int engine_fd = -1;

void priv_engine_init(int fd)
{
	engine_fd = fd;
}

int priv_get_device(struct wgdev **out)
{
	struct priv_get_device req = { .type = PRIV_GET_DEVICE };
	struct wgdev *dev;
	struct wgdev_peer *peer = NULL;
	union priv_msg *m;
	int ret;

	*out = NULL;
	ret = priv_send(engine_fd, &req, sizeof(req));
	if (ret)
		return ret;
	dev = calloc(1, sizeof(*dev));
	m = malloc(sizeof(*m));
	if (!dev || !m) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = priv_recv(engine_fd, m);
		size_t len, off = 0;

		if (n <= 0) {
			ret = n ? (int)n : -ECONNRESET;
			goto out;
		}
		if (m->type == PRIV_DEV_END && n == sizeof(m->end)) {
			ret = m->end.err;
			dev->has_pubkey = m->end.has_pubkey;
			memcpy(dev->pubkey, m->end.pubkey, WG_KEY_LEN);
			break;
		}
		if (m->type != PRIV_DEV_PEERS || (size_t)n < offsetof(struct priv_dev_peers, data) ||
		    m->peers.len != (size_t)n - offsetof(struct priv_dev_peers, data)) {
			ret = -EPROTO;
			goto out;
		}
		len = m->peers.len;
		while (off < len) {
			struct priv_dev_entry e;
			struct wgd_ip ip;

			if (len - off < sizeof(e)) {
				ret = -EPROTO;
				goto out;
			}
			memcpy(&e, m->peers.data + off, sizeof(e));
			off += sizeof(e);
			if (e.n_allowedips > (len - off) / sizeof(ip)) {
				ret = -EPROTO;
				goto out;
			}
			if (!e.cont || !peer || memcmp(peer->pubkey, e.pubkey, WG_KEY_LEN)) {
				ret = wgdev_add_peer(dev, e.pubkey, &peer);
				if (ret)
					goto out;
				memcpy(&peer->endpoint, &e.endpoint,
				       sizeof(e.endpoint) < sizeof(peer->endpoint) ?
					       sizeof(e.endpoint) : sizeof(peer->endpoint));
			}
			for (uint32_t i = 0; i < e.n_allowedips; i++, off += sizeof(ip)) {
				memcpy(&ip, m->peers.data + off, sizeof(ip));
				ret = wgdev_peer_add_allowedip(peer, &ip);
				if (ret)
					goto out;
			}
		}
	}
out:
	free(m);
	if (ret) {
		wgdev_free(dev);
		return ret;
	}
	*out = dev;
	return 0;
}

int priv_update_batch(const struct wgdev_change *c, size_t n, int *err)
{
	struct priv_updates *req;
	union priv_msg *m = NULL;
	ssize_t got;
	int ret;

	if (!n)
		return 0;
	req = calloc(1, sizeof(*req));
	m = req ? malloc(sizeof(*m)) : NULL;
	ret = m ? 0 : -ENOMEM;
	if (!ret && n > PRIV_BATCH)
		ret = -E2BIG;
	for (size_t i = 0; !ret && i < n; i++) {
		struct wgdev_change *u = &req->u[i];

		if (c[i].n_add > WGDEV_CHANGE_MAX || c[i].n_del > WGDEV_CHANGE_MAX) {
			ret = -E2BIG;
			break;
		}
		/* Into the zeroed message entry by entry: the pad goes zero,
		 * as the parent checks, and so do the entries past the counts. */
		memcpy(u->pubkey, c[i].pubkey, WG_KEY_LEN);
		u->n_add = c[i].n_add;
		u->n_del = c[i].n_del;
		for (size_t j = 0; j < c[i].n_add; j++)
			wgdev_allowedip_canon(&u->add[j], &c[i].add[j]);
		for (size_t j = 0; j < c[i].n_del; j++)
			wgdev_allowedip_canon(&u->del[j], &c[i].del[j]);
	}
	if (!ret) {
		req->type = PRIV_UPDATES;
		req->n = (uint32_t)n;
		ret = priv_send(engine_fd, req, offsetof(struct priv_updates, u) + n * sizeof(req->u[0]));
	}
	if (!ret) {
		got = priv_recv(engine_fd, m);
		if (got <= 0)
			ret = got ? (int)got : -ECONNRESET;
		else if (m->type != PRIV_RESULT || m->result.n != n ||
			 (size_t)got != offsetof(struct priv_result, err) + n * sizeof(int32_t))
			ret = -EPROTO;
	}
	for (size_t i = 0; i < n; i++)
		err[i] = ret ? ret : m->result.err[i];
	free(req);
	free(m);
	return ret;
}

/* ---- the parent's side ---- */

/* A host address in canonical form: what a lease holds. */
static bool is_canonical_host(const struct wgd_ip *ip)
{
	if (!sodium_is_zero(ip->pad, sizeof(ip->pad)))
		return false;
	if (ip->family == AF_INET)
		return ip->cidr == 32 && sodium_is_zero(ip->bytes + 4, 12);
	return ip->family == AF_INET6 && ip->cidr == 128;
}

/* The pool holding ip, or NULL; the rules' pools do not overlap. */
static const struct wgd_ip *pool_of(const struct priv_rules *r, const struct wgd_ip *ip)
{
	for (size_t i = 0; i < r->n_pools; i++)
		if (wgd_ip_contains(&r->pools[i], ip))
			return &r->pools[i];
	return NULL;
}

static bool is_own(const struct priv_rules *r, const struct wgd_ip *ip)
{
	for (size_t i = 0; i < r->n_own; i++)
		if (wgd_ip_equal(&r->own[i], ip))
			return true;
	return false;
}

/*
 * A change crosses as the device API's struct. Its padding is explicit, so
 * that the parent can check it is zero: no room the compiler added.
 */
_Static_assert(sizeof(struct wgdev_change) ==
		       WG_KEY_LEN + 4 + 2 * WGDEV_CHANGE_MAX * sizeof(struct wgd_ip),
	       "struct wgdev_change has implicit padding");
_Static_assert(offsetof(struct priv_updates, u) == 8, "struct priv_updates has implicit padding");

/* The layout of one change, before any rule. */
static bool change_well_formed(const struct wgdev_change *u)
{
	if (u->n_add > WGDEV_CHANGE_MAX || u->n_del > WGDEV_CHANGE_MAX ||
	    !sodium_is_zero(u->pad, sizeof(u->pad)) || wgkey_is_zero(u->pubkey))
		return false;
	for (size_t i = 0; i < u->n_add; i++)
		if (!is_canonical_host(&u->add[i]))
			return false;
	for (size_t i = 0; i < u->n_del; i++)
		if (!is_canonical_host(&u->del[i]))
			return false;
	return true;
}

int priv_check_update(const struct wgdev_change *u, const struct priv_rules *r,
		      const struct wgview *view, struct wgdev_change *out)
{
	const struct wgd_ip *pool;
	struct wgd_ip ll;

	if (!change_well_formed(u))
		return -EINVAL;
	if (!wgview_has_peer(view, u->pubkey))
		return -ENOENT;
	for (size_t i = 0; i < u->n_add; i++) {
		const struct wgd_ip *a = &u->add[i];

		if (r->auto_ll) {
			wgkey_derive_linklocal(&ll, u->pubkey);
			if (wgd_ip_equal(&ll, a))
				continue;
		}
		pool = pool_of(r, a);
		if (!pool || !pool_prefix_leases(pool, a) || is_own(r, a))
			return -EPERM;
		if (wgview_covered(view, u->pubkey, a, pool->cidr))
			return -EEXIST;
	}
	memcpy(out, u, sizeof(*out));
	out->n_del = 0;
	for (size_t i = 0; i < u->n_del; i++) {
		const struct wgd_ip *d = &u->del[i];

		pool = pool_of(r, d);
		if (!pool || !pool_prefix_leases(pool, d))
			return -EPERM;
		if (wgview_holds(view, u->pubkey, d))
			out->del[out->n_del++] = *d;
	}
	memset(out->del + out->n_del, 0, (WGDEV_CHANGE_MAX - out->n_del) * sizeof(out->del[0]));
	return 0;
}

bool priv_is_pool_route(const struct wgd_ip *dst)
{
	if (dst->family == AF_INET6 && (wgd_ip_is_linklocal6(dst) || dst->bytes[0] == 0xff))
		return false;
	return dst->cidr > 0;
}

/*
 * What the parent checks changes against besides the device: the prefixes
 * the engine may lease from (the configured pools and the interface's
 * direct routes) and the interface's own addresses, read by the parent
 * itself rather than taken from the engine. Reading them per update would
 * cost netlink dumps on the hot path, so they are cached and read again
 * only after a route or address notification (or a lost one) about the
 * interface. The kernel queues a notification to every listener before the
 * change it reports returns, so an update the engine sends after learning
 * of a new route finds the parent's notification already queued.
 */
struct pool_cache {
	struct rtnl *rt;
	struct rtnl_monitor *mon;  /* NULL: read the routes every time */
	const struct priv_policy *policy;
	bool stale;
	struct wgd_ip *pools, *own;
	size_t n_pools, n_own;
};

/* Whether the interface's address ip lies inside one of the n pools;
 * *host is the address as a host. */
static bool addr_in_pools(const struct wgd_ip *ip, const struct wgd_ip *pools, size_t n,
			  struct wgd_ip *host)
{
	struct wgd_ip a = *ip;

	a.cidr = (uint8_t)wgd_ip_bits(a.family);
	if (wgdev_allowedip_canon(host, &a))
		return false;
	for (size_t i = 0; i < n; i++)
		if (wgd_ip_contains(&pools[i], host))
			return true;
	return false;
}

static void pool_cache_event(const struct rtnl_event *ev, void *ctx)
{
	struct pool_cache *pc = ctx;
	struct wgd_ip host;

	if (ev->type == RTNL_EV_OVERRUN)
		pc->stale = true;
	if (ev->ifindex != pc->policy->ifindex)
		return;
	/*
	 * Only the interface's addresses inside a pool matter. A hub may
	 * carry thousands of others, link-locals its peers connect from, and
	 * reading them all again for each would cost a dump per batch. An
	 * address whose route makes a new pool comes with a route event.
	 */
	if ((ev->type == RTNL_EV_ADDR_NEW || ev->type == RTNL_EV_ADDR_DEL) &&
	    !addr_in_pools(&ev->ip, pc->pools, pc->n_pools, &host))
		return;
	pc->stale = true;
}

/* Appends prefix to the n pools of list unless it overlaps one of them,
 * which the engine's pool set refuses as well (poolset_add()). */
static void pools_append(struct wgd_ip *list, size_t *n, const struct wgd_ip *prefix)
{
	for (size_t i = 0; i < *n; i++)
		if (wgd_ip_overlaps(&list[i], prefix))
			return;
	list[(*n)++] = *prefix;
}

static int pool_cache_read(struct pool_cache *pc)
{
	const struct priv_policy *policy = pc->policy;
	struct wgd_ip *routes = NULL, *pools, *own;
	struct rtnl_addr *addrs = NULL;
	size_t n_routes = 0, n_addrs = 0, n_pools = 0, n_own = 0;

	if (rtnl_route_list(pc->rt, policy->ifindex, AF_UNSPEC, &routes, &n_routes))
		n_routes = 0;
	if (rtnl_addr_list(pc->rt, policy->ifindex, AF_UNSPEC, &addrs, &n_addrs))
		n_addrs = 0;
	pools = calloc(policy->n_cfg_pools + n_routes + 1, sizeof(*pools));
	own = calloc(n_addrs + 1, sizeof(*own));
	if (!pools || !own) {
		free(routes);
		free(addrs);
		free(pools);
		free(own);
		return -ENOMEM;
	}
	for (size_t i = 0; i < policy->n_cfg_pools; i++)
		pools_append(pools, &n_pools, &policy->cfg_pools[i]);
	for (size_t i = 0; i < n_routes; i++)
		if (priv_is_pool_route(&routes[i]))
			pools_append(pools, &n_pools, &routes[i]);
	/* Compared as hosts, as the engine reserves them; only those inside
	 * a pool could ever be asked for. */
	for (size_t i = 0; i < n_addrs; i++)
		if (addr_in_pools(&addrs[i].ip, pools, n_pools, &own[n_own]))
			n_own++;
	free(routes);
	free(addrs);
	free(pc->pools);
	free(pc->own);
	pc->pools = pools;
	pc->n_pools = n_pools;
	pc->own = own;
	pc->n_own = n_own;
	pc->stale = false;
	return 0;
}

static int pool_cache_get(struct pool_cache *pc, struct priv_rules *r)
{
	int ret = 0;

	if (!pc->mon || rtnl_monitor_read(pc->mon, pool_cache_event, pc))
		pc->stale = true;
	if (pc->stale || !pc->pools)
		ret = pool_cache_read(pc);
	r->pools = pc->pools;
	r->n_pools = pc->n_pools;
	r->own = pc->own;
	r->n_own = pc->n_own;
	r->auto_ll = pc->policy->auto_ll;
	return ret;
}

static int flush_peers(int fd, struct priv_dev_peers *m)
{
	int ret = priv_send(fd, m, offsetof(struct priv_dev_peers, data) + m->len);

	m->len = 0;
	return ret;
}

/*
 * Streams the device to the engine: dev when given (and freed), else a
 * fresh read. A given device becomes wg's view once the engine has it, at
 * read_ms.
 */
static int serve_device(int fd, struct wgctl *wg, struct wgdev *dev, uint64_t read_ms)
{
	bool given = dev;

	struct priv_dev_end end = { .type = PRIV_DEV_END };
	struct priv_dev_peers *m = NULL;
	int ret = 0;

	end.err = dev ? 0 : wgctl_get_device(wg, &dev);
	if (!end.err) {
		m = calloc(1, sizeof(*m));
		if (!m)
			end.err = -ENOMEM;
	}
	if (m)
		m->type = PRIV_DEV_PEERS;
	for (size_t i = 0; !end.err && i < dev->n_peers; i++) {
		const struct wgdev_peer *p = &dev->peers[i];
		size_t off = 0;

		do {
			struct priv_dev_entry e = { .cont = off > 0 };
			size_t room, chunk;

			/* Room for the entry and, unless it has none, an allowed-IP. */
			if (PRIV_DEV_BYTES - m->len < sizeof(e) + (p->n_allowedips ? sizeof(struct wgd_ip) : 0)) {
				ret = flush_peers(fd, m);
				if (ret)
					goto out;
			}
			room = (PRIV_DEV_BYTES - m->len - sizeof(e)) / sizeof(struct wgd_ip);
			chunk = p->n_allowedips - off < room ? p->n_allowedips - off : room;
			memcpy(e.pubkey, p->pubkey, WG_KEY_LEN);
			memcpy(&e.endpoint, &p->endpoint, sizeof(e.endpoint) < sizeof(p->endpoint) ?
				sizeof(e.endpoint) : sizeof(p->endpoint));
			e.n_allowedips = (uint32_t)chunk;
			memcpy(m->data + m->len, &e, sizeof(e));
			m->len += sizeof(e);
			if (chunk)
				memcpy(m->data + m->len, p->allowedips + off, chunk * sizeof(struct wgd_ip));
			m->len += (uint32_t)(chunk * sizeof(struct wgd_ip));
			off += chunk;
		} while (off < p->n_allowedips);
	}
	if (!end.err && m->len) {
		ret = flush_peers(fd, m);
		if (ret)
			goto out;
	}
	if (!end.err) {
		end.has_pubkey = dev->has_pubkey;
		memcpy(end.pubkey, dev->pubkey, WG_KEY_LEN);
		end.n_peers = (uint32_t)dev->n_peers;
	}
	ret = priv_send(fd, &end, sizeof(end));
	if (!ret && given && wg)
		wgctl_view_from(wg, dev, read_ms);
out:
	free(m);
	wgdev_free(dev);
	return ret;
}

/* Why the parent refused a change, for its log; one cause per errno. */
static const char *refusal(int err)
{
	switch (err) {
	case -EPERM:
		return "an address the pools do not lease";
	case -EEXIST:
		return "an address inside another peer's allowed-IPs";
	default:
		return NULL;
	}
}

/*
 * Checks each change of a PRIV_UPDATES message of len bytes against the
 * rules, all of them against the device as it was before the batch, makes
 * the allowed ones as one batch, and answers with an outcome per change.
 */
static int serve_updates(int fd, struct wgctl *wg, struct pool_cache *pc, struct ratelimit *rl,
			 const struct priv_updates *m, size_t len)
{
	struct priv_result res = { .type = PRIV_RESULT };
	struct wgdev_change ok[PRIV_BATCH];
	int dev_err[PRIV_BATCH], ret;
	size_t which[PRIV_BATCH], n_dev = 0;
	const struct wgview *view = NULL;
	struct priv_rules rules;

	if (len < offsetof(struct priv_updates, u) || m->n < 1 || m->n > PRIV_BATCH ||
	    len != offsetof(struct priv_updates, u) + m->n * sizeof(m->u[0]))
		return -EPROTO;
	/* Malformed: the engine is not what was started. */
	for (size_t i = 0; i < m->n; i++)
		if (!change_well_formed(&m->u[i]))
			return -EPROTO;
	res.n = m->n;
	ret = pool_cache_get(pc, &rules);
	if (!ret)
		ret = wg ? wgctl_view(wg, &view) : -ENODEV;
	for (size_t i = 0; i < m->n; i++) {
		const struct wgdev_change *up = &m->u[i];
		const char *why;
		uint32_t more;

		res.err[i] = ret ? ret : priv_check_update(up, &rules, view, &ok[n_dev]);
		why = refusal(res.err[i]);
		if (why && ratelimit_pass(rl, up->pubkey, WG_KEY_LEN, (unsigned)-res.err[i],
					  clock_boot_ms(), &more)) {
			char kb[WG_KEY_B64_LEN];

			wgkey_to_base64(kb, up->pubkey);
			if (more)
				log_warnx("refused the engine's change to peer %s: %s (%u more like "
					  "this suppressed)", kb, why, more);
			else
				log_warnx("refused the engine's change to peer %s: %s", kb, why);
		}
		if (!res.err[i])
			which[n_dev++] = i;
	}
	/* Made in order, each seeing the earlier ones (wgctl.h). */
	if (n_dev)
		wgctl_allowedips_update_batch(wg, ok, n_dev, dev_err);
	for (size_t j = 0; j < n_dev; j++)
		res.err[which[j]] = dev_err[j];
	return priv_send(fd, &res, offsetof(struct priv_result, err) + res.n * sizeof(res.err[0]));
}

int priv_serve(int fd, struct wgctl *wg, const struct priv_policy *policy,
	       struct wgdev *first, uint64_t read_ms)
{
	union priv_msg *m = malloc(sizeof(*m));
	struct ratelimit *rl = malloc(sizeof(*rl));
	struct pool_cache pc = { .policy = policy };
	int ret = -ENOMEM;

	if (!m || !rl)
		goto out;
	/* A compromised engine could otherwise fill the log with refusals. */
	ratelimit_init(rl, RATELIMIT_LOG_MS);
	ret = rtnl_open(&pc.rt);
	if (ret)
		goto out;
	if (rtnl_monitor_open(&pc.mon, RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE |
			      RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
		log_warnx("cannot follow route and address changes; reading them per update");
	/*
	 * The engine asks for a full read every refresh_ms, which renews the
	 * device view too; reading again for the view alone would double that
	 * work, seconds at a million peers.
	 */
	if (wg && policy->refresh_ms)
		wgctl_set_view_max_age(wg, 2ULL * policy->refresh_ms);
	for (;;) {
		ssize_t n = priv_recv(fd, m);

		if (n <= 0) {
			ret = (int)n;
			goto out;
		}
		if (n < (ssize_t)sizeof(uint32_t)) {
			ret = -EPROTO;
			goto out;
		}
		switch (m->type) {
		case PRIV_GET_DEVICE:
			if (n != sizeof(m->get)) {
				ret = -EPROTO;
				goto out;
			}
			if (first && clock_boot_ms() - read_ms > PRIV_FIRST_MAX_MS) {
				wgdev_free(first);
				first = NULL;
			}
			ret = serve_device(fd, wg, first, read_ms);
			first = NULL;
			break;
		case PRIV_UPDATES:
			ret = serve_updates(fd, wg, &pc, rl, &m->updates, (size_t)n);
			break;
		default:
			ret = -EPROTO;
			goto out;
		}
		if (ret)
			goto out;
	}
out:
	wgdev_free(first);
	rtnl_monitor_close(pc.mon);
	rtnl_close(pc.rt);
	free(pc.pools);
	free(pc.own);
	free(rl);
	free(m);
	return ret;
}
