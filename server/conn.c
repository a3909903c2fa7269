// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/* wg-dynamic-server: connections to port 970, requests, and the commit round. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "../protocol/proto.h"
#include "journal.h"
#include "lease.h"
#include "peers.h"
#include "privsep.h"
#include "pool.h"
#include "server.h"

/*
 * Watches a connection for events, registering it on first use. A request
 * is usually whole by the time it is accepted and read, and close() drops
 * a registration: most connections never cost an epoll_ctl() at all.
 */
static int conn_watch(struct conn *c, uint32_t events)
{
	int ret = c->watched ? watcher_modify(c->e, &c->w, events) :
			       watcher_add(c->e, &c->w, events);

	if (ret)
		return ret;
	c->watched = true;
	return 0;
}

/* ---- the request path ---- */

/* Takes c out of the engine's connections; the caller frees or moves it. */
void conn_unlink(struct conn *c)
{
	struct engine *e = c->e;

	if (c->prev)
		c->prev->next = c->next;
	else
		e->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	e->n_conns--;
}

void conn_close(struct conn *c)
{
	/* The descriptor is ours alone: closing it unregisters it. */
	close(c->w.fd);
	if (c->state == CONN_POLLING)
		mesh_poll_unlink(c);
	else
		conn_unlink(c);
	free(c->big_out);
	free(c);
}

/* Writes what is pending; closes once all is out. */
void conn_flush(struct conn *c)
{
	const char *out = c->big_out ? c->big_out : c->out;

	while (c->out_off < c->out_len) {
		ssize_t n = send(c->w.fd, out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (conn_watch(c, EPOLLOUT))
					conn_close(c);
				return;
			}
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	/* One request per connection: the server closes first. */
	conn_close(c);
}

void conn_respond(struct conn *c, const struct wgd_msg *resp)
{
	ssize_t len = wgd_serialize_response(resp, c->out, sizeof(c->out));

	if (len < 0) {
		log_warnx("response does not fit: %s", strerror((int)-len));
		conn_close(c);
		return;
	}
	c->out_len = (size_t)len;
	c->out_off = 0;
	c->state = CONN_WRITING;
	conn_flush(c);
}

/* An error answer; why, unless NULL, goes out as its errmsg. */
void conn_respond_error(struct conn *c, enum wgd_error err, const char *why)
{
	struct wgd_msg resp;

	memset(&resp, 0, sizeof(resp));
	resp.has_errno = true;
	resp.err = err;
	if (why)
		snprintf(resp.errmsg, sizeof(resp.errmsg), "%s", why);
	conn_respond(c, &resp);
}

/* What every lease carries besides its addresses: routes, DNS, MTU. */
static void add_config(struct engine *e, struct wgd_msg *resp)
{
	memcpy(resp->dns, cfg->dns, cfg->n_dns * sizeof(resp->dns[0]));
	resp->n_dns = cfg->n_dns;
	memcpy(resp->dns_search, cfg->dns_search, sizeof(resp->dns_search));
	resp->mtu = cfg->mtu;
	if (cfg->n_routes) {
		memcpy(resp->routes, cfg->routes, cfg->n_routes * sizeof(resp->routes[0]));
		resp->n_routes = cfg->n_routes;
		return;
	}
	/* Without --route, every pool's prefix is pushed. */
	for (size_t i = 0; i < poolset_count(e->pools) && resp->n_routes < WGD_MAX_ROUTES; i++)
		resp->routes[resp->n_routes++] = *poolset_prefix(e->pools, i);
}

/*
 * Decides, records and answers a request. The answer waits in out[] for
 * the end of this event-loop round, when every record of the round is
 * committed at once; then the device is told and the answers are sent.
 */
static void handle_request(struct conn *c, const struct wgd_msg *req)
{
	struct engine *e = c->e;
	struct lease_clock now = { .real = clock_real_s(), .boot = clock_boot_ms() / 1000 };
	struct wgd_msg resp;
	char kb[WG_KEY_B64_LEN], b4[WGD_IP_STRLEN] = "-", b6[WGD_IP_STRLEN] = "-";
	bool quiet;
	bool renewal = lease_find(e->leases, c->pubkey) != NULL;
	const struct lease *l;
	ssize_t len;
	int ret;

	if (req->cmd == WGD_CMD_REQUEST_PEERS) {
		mesh_request(c, req);
		return;
	}
	memset(&resp, 0, sizeof(resp));
	ret = lease_request(e->leases, c->pubkey, &c->ll, req, cfg->leasetime, &now, &resp,
			    &c->change);
	if (ret < 0) {
		peer_log(e, log_warnx, c->pubkey, LC_RECORD, "peer %s: cannot record a lease: %s",
			 fmt_key(c->pubkey, kb), strerror(-ret));
		conn_respond_error(c, WGD_E_UNAVAILABLE, NULL);
		return;
	}
	if (resp.has_ip4 || resp.has_ip6)
		add_config(e, &resp);
	if (ret == LEASE_AS_IS) {
		/*
		 * Asked again early in the lease: the lease as it stands, on
		 * disk and on the device already. It still waits for this
		 * round's commit, which may hold the grant it repeats.
		 */
		e->counters.repeats++;
		if (log_verbosity() >= 1)
			peer_log(e, log_debug, c->pubkey, LC_REPEAT,
				 "peer %s: renewed ip4 %s ip6 %s as it stands, %us left: asked again "
				 "early", fmt_key(c->pubkey, kb),
				 resp.has_ip4 ? fmt_ip(&resp.ip4, b4) : "-",
				 resp.has_ip6 ? fmt_ip(&resp.ip6, b6) : "-", resp.leasetime);
		goto queue;
	}
	l = lease_find(e->leases, c->pubkey);
	if (l)
		journal_lease(e, l);
	else if (renewal)
		journal_release(e, &c->change, 0);
	mesh_lease_changed(e, c->pubkey);

	/*
	 * Grants and releases change what the device carries and are logged;
	 * a renewal that changes nothing is routine, every peer's every half
	 * lease, and costs a log line only when debugging.
	 */
	quiet = renewal && !c->change.n_add && !c->change.n_del && log_verbosity() < 1;
	if (resp.has_ip4 && !quiet)
		fmt_ip(&resp.ip4, b4);
	if (resp.has_ip6 && !quiet)
		fmt_ip(&resp.ip6, b6);
	if (!resp.has_ip4 && !resp.has_ip6 && !req->has_ip4 && !req->has_ip6) {
		e->counters.releases++;
		peer_log(e, log_info, c->pubkey, LC_RELEASE, "peer %s: released",
			 fmt_key(c->pubkey, kb));
	} else if (renewal && !c->change.n_add && !c->change.n_del) {
		e->counters.renewals++;
		if (!quiet)
			log_debug("peer %s: renewed ip4 %s ip6 %s for %us", fmt_key(c->pubkey, kb),
				  b4, b6, cfg->leasetime);
	} else if (resp.has_ip4 || resp.has_ip6) {
		e->counters.grants++;
		peer_log(e, log_info, c->pubkey, LC_GRANT, "peer %s: granted ip4 %s ip6 %s for %us",
			 fmt_key(c->pubkey, kb), b4, b6, cfg->leasetime);
	}
	if (resp.err) {
		e->counters.unavailable++;
		peer_log(e, log_info, c->pubkey, LC_UNAVAILABLE, "peer %s: %s",
			 fmt_key(c->pubkey, kb), resp.errmsg);
	}

queue:
	/* Offered in every answer: upstream clients ignore it. */
	resp.mesh = cfg->mesh;
	len = wgd_serialize_response(&resp, c->out, sizeof(c->out));
	if (len < 0)
		fatalx_status(EXIT_SYSTEM, "a response does not fit: %s", strerror((int)-len));
	c->out_len = (size_t)len;
	c->out_off = 0;
	c->state = CONN_COMMITTING;
	c->commit_next = NULL;
	*e->commit_tail = c;
	e->commit_tail = &c->commit_next;
	/* Nothing more is read from this connection. */
	if (c->watched)
		conn_watch(c, 0);
}

/* Writes a lease that could not be applied back out of existence. */
static void fail_committed(struct conn *c, int err)
{
	struct engine *e = c->e;
	struct lease *l = lease_find(e->leases, c->pubkey);
	char kb[WG_KEY_B64_LEN];

	e->counters.errors++;
	peer_log(e, log_warnx, c->pubkey, LC_DEVICE, "peer %s: cannot update its allowed-IPs: %s",
		 fmt_key(c->pubkey, kb), strerror(-err));
	/* The parent, reading the routes itself, knows of a pool gone. */
	if (err == -EPERM)
		load_route_pools(e);
	if (l)
		release_lease(e, l, "withdrawn: the device refused it", false);
	/*
	 * The parent refuses an addition that is not to be leased or that
	 * another peer holds, by what it read of the device itself: held back
	 * until the next device read rebuilds the reservations, it is not
	 * drawn again meanwhile.
	 */
	if (err == -EPERM || err == -EEXIST)
		for (size_t i = 0; i < c->change.n_add; i++)
			poolset_reserve(e->pools, &c->change.add[i]);
	/* Nothing of the change was made: what it gave up is still on the
	 * peer, and back in the pools. */
	if (c->change.n_del) {
		struct wgdev_change undo = c->change;
		int undo_err;

		undo.n_add = 0;
		priv_update_batch(&undo, 1, &undo_err);
	}
	conn_respond_error(c, WGD_E_UNAVAILABLE, NULL);
}

/* Whether change adds an address that one of the n changes of batch removes. */
static bool adds_removed(const struct wgdev_change *batch, size_t n,
			 const struct wgdev_change *change)
{
	for (size_t i = 0; i < change->n_add; i++)
		for (size_t j = 0; j < n; j++)
			for (size_t k = 0; k < batch[j].n_del; k++)
				if (wgd_ip_equal(&change->add[i], &batch[j].del[k]))
					return true;
	return false;
}

/*
 * The end of an event-loop round: one write and one fsync for every record
 * of the round (group commit), then the device changes, then the answers.
 * A server that cannot keep its leases on disk must not hand out more, so a
 * failed commit ends it; restarted, it reconciles the device with the
 * journal.
 */
void commit_round(struct engine *e)
{
	struct conn *c, *next;
	int ret;

	if (journal_pending(e->journal)) {
		ret = journal_commit(e->journal);
		if (ret) {
			log_warnx("cannot write the lease journal %s: %s; exiting",
				  cfg->journal_name, strerror(-ret));
			exit(EXIT_JOURNAL);
		}
	}
	c = e->commit_head;
	e->commit_head = NULL;
	e->commit_tail = &e->commit_head;
	/*
	 * The changes go to the parent PRIV_BATCH at a time, in one message,
	 * for one device operation; the answers are all in before any is
	 * acted upon, since acting on a failure sends changes of its own.
	 */
	while (c) {
		struct wgdev_change batch[PRIV_BATCH];
		struct conn *window = c, *end;
		int err[PRIV_BATCH];
		size_t n = 0;

		for (; c && n < PRIV_BATCH; c = c->commit_next) {
			if (!c->change.n_add && !c->change.n_del)
				continue;
			/*
			 * An address given up earlier in the batch (a release,
			 * a move) goes to its new peer in the next batch: the
			 * parent judges a batch by the device before it and
			 * never lets an address change peers within one.
			 */
			if (adds_removed(batch, n, &c->change))
				break;
			batch[n++] = c->change;
		}
		end = c;
		priv_update_batch(batch, n, err);
		n = 0;
		for (struct conn *p = window; p != end; p = p->commit_next)
			p->commit_err = p->change.n_add || p->change.n_del ? err[n++] : 0;
		for (struct conn *p = window; p != end; p = next) {
			next = p->commit_next;
			if (p->commit_err)
				fail_committed(p, p->commit_err);
			else {
				p->state = CONN_WRITING;
				conn_flush(p);
			}
		}
	}
	/* Records of failed changes, if any, go in now. */
	if (journal_pending(e->journal) && journal_commit(e->journal))
		exit(EXIT_JOURNAL);
}

/* Reads what has come; true when the connection waits for more. */
static bool conn_read(struct conn *c)
{
	struct engine *e = c->e;
	char buf[4096];

	for (;;) {
		ssize_t n = recv(c->w.fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				conn_close(c);
				return false;
			}
			return true;
		}
		if (n == 0) {
			conn_close(c); /* closed before a whole request */
			return false;
		}

		ssize_t ret = wgd_parse(&c->parser, buf, (size_t)n);
		if (ret < 0) {
			char ab[INET6_ADDRSTRLEN];

			if (ret == -WGD_E_UNSUPPORTED)
				e->counters.unsupported++;
			else
				e->counters.invalid++;
			peer_log(e, log_info, c->pubkey, LC_BAD_REQUEST, "bad request from %s: %s",
				 inet_ntop(AF_INET6, &c->ll, ab, sizeof(ab)), c->parser.error);
			conn_respond_error(c, (enum wgd_error)-ret, NULL);
			return false;
		}
		if (ret > 0) {
			/* One request per connection: what follows it is not read. */
			handle_request(c, &c->parser.msg);
			return false;
		}
	}
}

static size_t conns_of_peer(struct engine *e, const uint8_t *pubkey)
{
	size_t n = 0;

	for (struct conn *c = e->conns; c; c = c->next)
		n += !memcmp(c->pubkey, pubkey, WG_KEY_LEN);
	return n;
}

/* pubkey is the peer's, or NULL when the source is no peer's. */
static void refuse(struct engine *e, int fd, const struct sockaddr_in6 *sa,
		   const uint8_t *pubkey, enum log_cause cause, const char *why)
{
	char ab[INET6_ADDRSTRLEN];

	peer_log(e, log_info, pubkey, cause, "refused connection from [%s]:%u: %s",
		 inet_ntop(AF_INET6, &sa->sin6_addr, ab, sizeof(ab)), ntohs(sa->sin6_port), why);
	close(fd);
}

/* An event on a request connection. */
static void conn_on_event(struct watcher *w, uint32_t events)
{
	struct conn *c = container_of(w, struct conn, w);

	(void)events;
	if (c->state == CONN_WRITING)
		conn_flush(c);
	else if (c->state == CONN_READING)
		conn_read(c);
}

/* Connections waiting on the listener w. */
void accept_conns(struct watcher *w, uint32_t events)
{
	struct engine *e = container_of(w, struct engine, listener);

	(void)events;
	for (;;) {
		struct sockaddr_in6 sa = { 0 };
		socklen_t salen = sizeof(sa);
		const uint8_t *pubkey;
		struct conn *c;
		int fd = accept4(w->fd, (struct sockaddr *)&sa, &salen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				log_warn("accept");
			return;
		}
		if (salen != sizeof(sa) || sa.sin6_family != AF_INET6 ||
		    ntohs(sa.sin6_port) != WGD_PORT) {
			e->counters.refused_port++;
			/* The peer, when the index knows it, only for the log:
			 * no device read for a connection refused anyway. */
			refuse(e, fd, &sa, e->peers ? peer_index_lookup(e->peers, &sa.sin6_addr) : NULL,
			       LC_REFUSED_PORT, "source port is not 970");
			continue;
		}
		pubkey = e->peers ? peer_index_lookup(e->peers, &sa.sin6_addr) : NULL;
		if (!pubkey && clock_boot_ms() - e->last_refresh_ms >= REFRESH_MIN_MS) {
			int ret = refresh_device(e);

			if (ret)
				log_warnx("cannot read %s: %s", cfg->ifname, strerror(-ret));
			pubkey = e->peers ? peer_index_lookup(e->peers, &sa.sin6_addr) : NULL;
		}
		if (!pubkey) {
			e->counters.refused_peer++;
			refuse(e, fd, &sa, NULL, LC_REFUSED_PEER,
			       "no peer has this link-local /128 in its allowed-IPs");
			continue;
		}
		/* With the mesh, every peer sends its next poll as soon as one
		 * is answered: the connections of a burst count against the
		 * room the polls leave, until their requests are read. */
		if (e->n_conns >= cfg->max_conns +
					  (cfg->mesh && cfg->max_polls > e->n_polls ?
						   cfg->max_polls - e->n_polls : 0)) {
			e->counters.refused_busy++;
			refuse(e, fd, &sa, pubkey, LC_REFUSED_BUSY, "too many connections");
			continue;
		}
		if (conns_of_peer(e, pubkey) >= cfg->max_conns_per_peer) {
			e->counters.refused_busy++;
			refuse(e, fd, &sa, pubkey, LC_REFUSED_BUSY, "too many connections from this peer");
			continue;
		}

		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->w.fd = fd;
		c->w.on_event = conn_on_event;
		c->e = e;
		c->ll = sa.sin6_addr;
		memcpy(c->pubkey, pubkey, WG_KEY_LEN);
		c->deadline_ms = clock_boot_ms() + cfg->idle_timeout_ms;
		wgd_parser_init(&c->parser, WGD_PARSE_REQUEST);
		c->next = e->conns;
		if (e->conns)
			e->conns->prev = c;
		e->conns = c;
		e->n_conns++;
		if (conn_read(c) && conn_watch(c, EPOLLIN))
			conn_close(c);
	}
}

void expire_conns(struct engine *e)
{
	uint64_t now = clock_boot_ms();
	struct conn *c = e->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->state != CONN_COMMITTING && c->deadline_ms <= now) {
			char ab[INET6_ADDRSTRLEN];

			e->counters.idle_timeouts += !c->ctl;
			peer_log(e, log_info, c->ctl ? NULL : c->pubkey, LC_IDLE,
				 "closing idle connection from %s",
				 inet_ntop(AF_INET6, &c->ll, ab, sizeof(ab)));
			conn_close(c);
		}
	}
}

