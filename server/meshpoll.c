// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * wg-dynamic-server: the mesh on the wire. A request_peers joins its peer
 * to the directory (directory.c) and becomes a long poll: a connection held
 * in the engine's polls until the directory moves past what the client
 * holds, or MESH_POLL_HOLD_MS pass. Every request is answered at the end
 * of an event-loop round, after the device was read, so that a peer's
 * first answer can carry the endpoint the hub sees for it.
 *
 * Polls are out of the engine's conns: no idle timeout, no connection
 * limits, but their own, cfg->max_polls, and one per peer (a new one takes
 * the old one's place). They are held in arrival order, which is their
 * deadlines' order; a change of the directory walks them all, once a
 * round, and polls at the same version get the same bytes, made once.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "directory.h"
#include "lease.h"
#include "server.h"

/* Room in a message for what surrounds the lines: epoch=, version=,
 * reset=, more=, errno= and the empty line take 61 bytes at most. */
#define MESH_HEADER_RESERVE 128

void mesh_init(struct engine *e)
{
	if (dir_init(&e->dir, 0))
		fatalx_status(EXIT_SYSTEM, "out of memory");
	e->polls_epoch = e->dir.epoch;
	e->polls_version = e->dir.version;
	if (cfg->mesh)
		log_info("mesh directory epoch %u: up to %zu long polls", e->dir.epoch,
			 cfg->max_polls);
}

static void mesh_refuse(struct conn *c, const char *why)
{
	c->e->counters.invalid++;
	conn_respond_error(c, WGD_E_INVALID, why);
}

/* The lease's addresses, as a directory entry carries them. */
static void lease_addrs(struct wgd_peer_entry *pe, const struct lease *l)
{
	pe->has_ip4 = l->has_ip4;
	pe->has_ip6 = l->has_ip6;
	memset(&pe->ip4, 0, sizeof(pe->ip4));
	memset(&pe->ip6, 0, sizeof(pe->ip6));
	if (l->has_ip4)
		wgd_ip_host4(&pe->ip4, &l->ip4);
	if (l->has_ip6)
		wgd_ip_host6(&pe->ip6, &l->ip6);
}

static bool claims_differ(const struct wgd_peer_entry *a, const struct wgd_peer_entry *b)
{
	if (a->port != b->port || a->n_cand != b->n_cand)
		return true;
	for (size_t i = 0; i < a->n_cand; i++)
		if (!wgd_ip_equal(&a->cand[i], &b->cand[i]))
			return true;
	return false;
}

/* Moves c from the engine's conns to the tail of its polls. */
static void poll_link(struct conn *c)
{
	struct engine *e = c->e;

	conn_unlink(c);
	c->state = CONN_POLLING;
	c->prev = e->polls_tail;
	if (e->polls_tail)
		e->polls_tail->next = c;
	else
		e->polls = c;
	e->polls_tail = c;
	e->n_polls++;
}

/* Takes c out of the polls; the caller closes it or moves it on. */
void mesh_poll_unlink(struct conn *c)
{
	struct engine *e = c->e;
	struct dir_entry *d = dir_find(&e->dir, c->pubkey);

	if (d && d->poll == c)
		d->poll = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		e->polls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		e->polls_tail = c->prev;
	c->prev = c->next = NULL;
	e->n_polls--;
}

/* Back among the engine's conns, to write its answer out. */
static void conn_relink(struct conn *c)
{
	struct engine *e = c->e;

	mesh_poll_unlink(c);
	c->next = e->conns;
	if (e->conns)
		e->conns->prev = c;
	e->conns = c;
	e->n_conns++;
	c->deadline_ms = clock_boot_ms() + cfg->idle_timeout_ms;
}

/* An event on a held poll: the client went, or sent what it must not. */
static void poll_on_event(struct watcher *w, uint32_t events)
{
	struct conn *c = container_of(w, struct conn, w);
	char buf[64];
	ssize_t n;

	(void)events;
	if (c->state != CONN_POLLING) {
		if (c->state == CONN_WRITING)
			conn_flush(c);
		return;
	}
	n = recv(c->w.fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	conn_close(c);
}

void mesh_request(struct conn *c, const struct wgd_msg *req)
{
	struct engine *e = c->e;
	const struct lease *l;
	struct wgd_peer_entry pe;
	struct dir_entry *d;
	uint64_t now = clock_boot_ms();
	char kb[WG_KEY_B64_LEN];
	bool joined;
	int ret;

	if (!cfg->mesh) {
		mesh_refuse(c, "This hub has no mesh: it runs without --mesh");
		return;
	}
	l = lease_find(e->leases, c->pubkey);
	if (!l || (!l->has_ip4 && !l->has_ip6)) {
		mesh_refuse(c, "No lease: ask for an address first (request_ip)");
		return;
	}
	d = dir_find(&e->dir, c->pubkey);
	if ((!d || !d->poll) && e->n_polls >= cfg->max_polls) {
		peer_log(e, log_warnx, c->pubkey, LC_REFUSED_BUSY,
			 "peer %s: refused a long poll: %zu held already (--mesh-max-polls)",
			 fmt_key(c->pubkey, kb), e->n_polls);
		mesh_refuse(c, "The hub holds too many long polls: try again later");
		return;
	}

	memset(&pe, 0, sizeof(pe));
	memcpy(pe.key, c->pubkey, WG_KEY_LEN);
	lease_addrs(&pe, l);
	joined = !d || d->pe.gone;
	if (!joined)
		pe.endpoint = d->pe.endpoint;
	pe.port = req->port;
	/* The parser bounds and checks the candidates; host addresses only
	 * all the same, since they go to every other peer. */
	for (size_t i = 0; i < req->n_cand && i < WGD_MAX_CANDIDATES; i++)
		if ((req->cand[i].family == AF_INET || req->cand[i].family == AF_INET6) &&
		    req->cand[i].cidr == wgd_ip_bits(req->cand[i].family))
			pe.cand[pe.n_cand++] = req->cand[i];
	/*
	 * Each change of a peer's own claims goes to every member: a peer
	 * changing them at every request would have the hub answer every
	 * poll for each. Changes closer than MESH_CLAIM_MIN_MS wait for a
	 * later request.
	 */
	if (!joined && claims_differ(&pe, &d->pe)) {
		if (now - d->claimed_ms < MESH_CLAIM_MIN_MS) {
			pe.port = d->pe.port;
			pe.n_cand = d->pe.n_cand;
			memcpy(pe.cand, d->pe.cand, sizeof(pe.cand));
		} else {
			d->claimed_ms = now;
		}
	}
	ret = dir_set(&e->dir, &pe);
	if (ret < 0) {
		peer_log(e, log_warnx, c->pubkey, LC_MESH, "peer %s: cannot join the mesh: %s",
			 fmt_key(c->pubkey, kb), strerror(-ret));
		conn_close(c);
		return;
	}
	d = dir_find(&e->dir, c->pubkey);
	dir_touch(&e->dir, d, now);
	if (joined)
		d->claimed_ms = now;
	/* A new member's first answer waits for a device read, at most
	 * REFRESH_PERIOD_MESH_MS away, and so carries its endpoint. */
	c->poll_read_ms = 0;
	if (joined) {
		peer_log(e, log_info, c->pubkey, LC_MESH, "peer %s: joined the mesh",
			 fmt_key(c->pubkey, kb));
		e->mesh_refresh = true;
		c->poll_read_ms = now;
	}

	/* One poll a peer: the older one is of a client that moved on. */
	if (d->poll)
		conn_close(d->poll);
	d->poll = c;
	c->poll_epoch = req->has_epoch ? req->epoch : 0;
	c->poll_since = req->has_since ? req->since : 0;
	c->deadline_ms = now + MESH_POLL_HOLD_MS;
	poll_link(c);
	if (!dir_is_current(&e->dir, c->poll_epoch, c->poll_since))
		e->polls_pending = true;
	/* Watched for the client's going: nothing more is to come. */
	c->w.on_event = poll_on_event;
	if (!c->watched ? watcher_add(e, &c->w, EPOLLIN | EPOLLRDHUP) :
			  watcher_modify(e, &c->w, EPOLLIN | EPOLLRDHUP)) {
		conn_close(c);
		return;
	}
	c->watched = true;
}

/* The answer of a lease that changed or ended to the directory. */
void mesh_lease_changed(struct engine *e, const uint8_t *pubkey)
{
	struct dir_entry *d;
	const struct lease *l;
	struct wgd_peer_entry pe;
	char kb[WG_KEY_B64_LEN];

	if (!cfg->mesh)
		return;
	d = dir_find(&e->dir, pubkey);
	if (!d || d->pe.gone)
		return;
	l = lease_find(e->leases, pubkey);
	if (!l || (!l->has_ip4 && !l->has_ip6)) {
		dir_gone(&e->dir, pubkey, clock_boot_ms());
		peer_log(e, log_info, pubkey, LC_MESH_LEAVE,
			 "peer %s: left the mesh: its lease ended", fmt_key(pubkey, kb));
		return;
	}
	pe = d->pe;
	lease_addrs(&pe, l);
	dir_set(&e->dir, &pe);
}

/* A peer of a device read: a member's endpoint, as the hub sees it. */
void mesh_device_peer(const struct wgdev_peer *peer, const struct lease *l, void *ctx)
{
	struct engine *e = ctx;
	struct wgd_peer_entry pe;
	struct wgd_endpoint ep;
	struct dir_entry *d;

	if (!l)
		return;
	d = dir_find(&e->dir, peer->pubkey);
	if (!d || d->pe.gone)
		return;
	wgdev_peer_endpoint(peer, &ep);
	if (!ep.port)
		memset(&ep, 0, sizeof(ep));
	if (ep.addr.family == d->pe.endpoint.addr.family && ep.port == d->pe.endpoint.port &&
	    (!ep.addr.family || wgd_ip_equal(&ep.addr, &d->pe.endpoint.addr)))
		return;
	pe = d->pe;
	pe.endpoint = ep;
	dir_set(&e->dir, &pe);
}

/*
 * The bytes of one answer, kept for the polls that follow at the same
 * place: after a change, every poll held was at the version before it.
 */
struct answer_cache {
	bool valid;
	uint32_t epoch, since;
	size_t len;
	char out[WGD_MAX_MESSAGE];
};

static void answer_poll(struct conn *c, struct answer_cache *cache)
{
	static struct wgd_msg resp;
	static struct wgd_peer_entry lines[WGD_MAX_PEERS];
	struct engine *e = c->e;
	struct dir_entry *d = dir_find(&e->dir, c->pubkey);
	bool plain = c->poll_epoch == e->dir.epoch && c->poll_since >= e->dir.dropped;
	ssize_t len;

	conn_relink(c);
	if (plain && cache->valid && cache->epoch == c->poll_epoch &&
	    cache->since == c->poll_since) {
		if (d)
			d->resume = 0;
		memcpy(c->out, cache->out, cache->len);
		len = (ssize_t)cache->len;
	} else {
		memset(&resp, 0, sizeof(resp));
		resp.peers = lines;
		dir_answer(&e->dir, d, c->poll_epoch, c->poll_since,
			   WGD_MAX_MESSAGE - MESH_HEADER_RESERVE, &resp);
		resp.has_errno = true;
		resp.err = WGD_E_OK;
		len = wgd_serialize_response(&resp, c->out, sizeof(c->out));
		if (len < 0) {
			log_warnx("a directory answer does not fit: %s", strerror((int)-len));
			conn_close(c);
			return;
		}
		if (plain) {
			cache->valid = true;
			cache->epoch = c->poll_epoch;
			cache->since = c->poll_since;
			cache->len = (size_t)len;
			memcpy(cache->out, c->out, (size_t)len);
		}
	}
	e->counters.mesh_answers++;
	e->counters.mesh_bytes += (uint64_t)len;
	c->out_len = (size_t)len;
	c->out_off = 0;
	c->state = CONN_WRITING;
	conn_flush(c);
}

static void member_left(struct dir_entry *d, void *ctx)
{
	struct engine *e = ctx;
	char kb[WG_KEY_B64_LEN];

	peer_log(e, log_info, d->pe.key, LC_MESH_LEAVE,
		 "peer %s: left the mesh: no request for %us", fmt_key(d->pe.key, kb),
		 (unsigned)(DIR_JOIN_TIMEOUT_MS / 1000));
}

/*
 * The end of a round: members gone silent leave, then the polls the
 * directory moved past are answered, then those whose time is up.
 */
void mesh_round(struct engine *e)
{
	static struct answer_cache cache;
	uint64_t now = clock_boot_ms();
	struct conn *c, *next;

	if (!cfg->mesh)
		return;
	dir_expire(&e->dir, now, member_left, e);
	cache.valid = false;
	/*
	 * A join waits for the device read that finds its endpoint, a
	 * quarter second away at most: then every poll is answered once,
	 * with the whole entry, rather than once without the endpoint and
	 * again with it.
	 */
	if (e->mesh_refresh) {
		e->polls_pending = true;
	} else if (e->polls_pending || e->polls_version != e->dir.version ||
		   e->polls_epoch != e->dir.epoch ||
		   (e->polls_wait_read && e->polls_read_ms != e->last_refresh_ms)) {
		e->polls_pending = e->polls_wait_read = false;
		e->polls_read_ms = e->last_refresh_ms;
		for (c = e->polls; c; c = next) {
			next = c->next;
			if (dir_is_current(&e->dir, c->poll_epoch, c->poll_since))
				continue;
			if (c->poll_read_ms > e->last_refresh_ms) {
				e->polls_wait_read = true; /* until the next read */
				continue;
			}
			answer_poll(c, &cache);
		}
		e->polls_version = e->dir.version;
		e->polls_epoch = e->dir.epoch;
	}
	while (e->polls && e->polls->deadline_ms <= now)
		answer_poll(e->polls, &cache);
}

uint64_t mesh_next_timeout(const struct engine *e)
{
	uint64_t next = dir_next_expiry(&e->dir);

	if (e->polls && e->polls->deadline_ms < next)
		next = e->polls->deadline_ms;
	/* The read a join waits for (engine.c makes it). */
	if (e->mesh_refresh && e->last_refresh_ms + REFRESH_MIN_MS / 4 < next)
		next = e->last_refresh_ms + REFRESH_MIN_MS / 4;
	return next;
}
