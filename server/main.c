// SPDX-License-Identifier: MIT
/*
 * wg-dynamic-server: leases addresses to the peers of a WireGuard interface.
 *
 * One epoll loop. A peer connects from its link-local /128 to [fe80::]:970;
 * WireGuard's cryptokey routing ties that source address to one public key,
 * which is the peer's identity. The server leases one IPv4 and one IPv6
 * address per peer from its pools and keeps the peer's allowed-IPs in step.
 */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "../common/array.h"
#include "../common/caps.h"
#include "../common/clock.h"
#include "../common/file.h"
#include "../common/key.h"
#include "../common/log.h"
#include "../common/notify.h"
#include "../common/ratelimit.h"
#include "../common/rtnl.h"
#include "../common/version.h"
#include "../common/wgdev.h"
#include "../protocol/proto.h"
#include "journal.h"
#include "lease.h"
#include "peers.h"
#include "privsep.h"
#include "status.h"
#include "pool.h"

#define MAX_CONNS 256            /* concurrent connections, all peers */
#define MAX_CONNS_PER_PEER 4
#define IDLE_TIMEOUT_S 5         /* a request must arrive whole within this */
#define REFRESH_MIN_MS 1000      /* device re-reads on lookup misses, at most */
#define REFRESH_PERIOD_MS 30000  /* periodic re-read: peers come and go */
#define REFRESH_PERIOD_AUTO_LL_MS 3000
#define CONTROL_DIR "/run/wg-dynamic"
#define STATE_DIR "/var/lib/wg-dynamic"
#define ENGINE_USER "wg-dynamic"
#define ENGINE_DIR "server"      /* in the state directory: the engine's alone */

enum exit_status {
	EXIT_OK = 0,
	EXIT_USAGE = 64,
	EXIT_NO_IFACE = 65,
	EXIT_NOT_WG = 66,
	EXIT_NO_POOL = 67,
	EXIT_SOCKET = 68,
	EXIT_POOL_OVERLAP = 69,
	EXIT_SYSTEM = 70,
	EXIT_IFACE_GONE = 71,
	EXIT_JOURNAL = 72,
	EXIT_STATE_DIR = 73,
	EXIT_ENGINE = 74,
	EXIT_USER = 75,
};

enum conn_state {
	CONN_READING,
	CONN_COMMITTING,              /* answered; waiting for the journal commit */
	CONN_WRITING,                 /* flushing out[] */
};

struct conn {
	int fd;
	struct in6_addr ll;
	uint8_t pubkey[WG_KEY_LEN];
	uint64_t deadline_ms;
	enum conn_state state;
	bool ctl;                     /* a status query on the control socket */
	bool watched;                 /* registered with epoll */
	char *big_out;                /* a status reply, instead of out[] */
	struct lease_change change;   /* for the device, once committed */
	struct conn *commit_next;
	int commit_err;               /* how the device took the change */
	size_t out_len, out_off;
	char out[WGD_MAX_MESSAGE];
	struct wgd_parser parser;
	struct conn *prev, *next;
};

struct server {
	const char *ifname;
	uint32_t ifindex;
	uint32_t leasetime;
	uint32_t quarantine;
	uint32_t refresh_ms;
	uint32_t idle_timeout_ms;
	size_t max_conns, max_conns_per_peer;
	bool auto_ll;
	const char *state_dir;
	const char *user;
	char journal_name[4096 + 64]; /* for logs: the engine sees it from a chroot */
	struct journal *journal;
	struct passwd *pw;

	struct wgctl *wg;
	struct rtnl *rt;
	struct rtnl_monitor *mon;
	struct poolset *pools;
	struct lease_table *leases;
	struct peer_index *peers;

	struct wgd_ip cfg_pools[64];
	size_t n_cfg_pools;
	struct wgd_ip cfg_routes[WGD_MAX_ROUTES];
	size_t n_cfg_routes;
	struct wgd_ip dns[WGD_MAX_DNS];
	size_t n_dns;
	char dns_search[WGD_MAX_DNS_SEARCH];
	uint32_t mtu;

	int epfd, listen_fd, sig_fd, ctl_fd, priv_fd;
	/* Opened by the parent; the engine keeps only engine_dir_fd, until its
	 * chroot: a directory outside would be a way out. */
	int state_fd, engine_dir_fd, ctl_dir_fd;
	char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char ctl_name[IF_NAMESIZE + 8];
	struct status_counters counters;
	struct ratelimit logrl;       /* per-peer log lines */
	uint64_t last_refresh_ms;
	struct conn *conns;
	size_t n_conns;
	/* Answered requests waiting for this round's commit, in order. */
	struct conn *commit_head, **commit_tail;
};

static struct server srv;

static int epoll_add(int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(srv.epfd, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * Watches a connection for events, registering it on first use. A request
 * is usually whole by the time it is accepted and read, and close() drops
 * a registration: most connections never cost an epoll_ctl() at all.
 */
static int conn_watch(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(srv.epfd, c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev))
		return -errno;
	c->watched = true;
	return 0;
}

static const char *fmt_ip(const struct wgd_ip *ip, char buf[WGD_IP_STRLEN])
{
	return wgd_ip_format(ip, buf, WGD_IP_STRLEN);
}

static const char *fmt_key(const uint8_t *key, char buf[WG_KEY_B64_LEN])
{
	wgkey_to_base64(buf, key);
	return buf;
}

/* What a per-peer log line is about: each is limited on its own. */
enum log_cause {
	LC_BAD_REQUEST = 1,
	LC_REFUSED_PORT,
	LC_REFUSED_PEER,
	LC_REFUSED_BUSY,
	LC_IDLE,
	LC_UNAVAILABLE,
	LC_GRANT,
	LC_RELEASE,
	LC_REPEAT,
	LC_RECORD,
	LC_DEVICE,
};

/*
 * Logs a line about a peer at most once per RATELIMIT_LOG_MS and cause: a
 * peer decides how often it connects, and must not decide how much is
 * logged. The next line that goes out says how many were held back. key
 * is the peer's public key, or NULL when no peer is known, and then all
 * such lines of the cause share one limit.
 */
static void __attribute__((format(printf, 4, 5)))
peer_log(void (*out)(const char *, ...), const uint8_t *key, enum log_cause cause,
	 const char *fmt, ...)
{
	static const uint8_t no_peer[1];
	char line[768];
	uint32_t more;
	va_list ap;

	if (out == log_debug && log_verbosity() < 1)
		return;
	if (!ratelimit_pass(&srv.logrl, key ? key : no_peer, key ? WG_KEY_LEN : 0, cause,
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

/* Orders device peers by public key, for bsearch(). */
static int by_pubkey(const void *a, const void *b)
{
	return memcmp(((const struct wgdev_peer *)a)->pubkey,
		      ((const struct wgdev_peer *)b)->pubkey, WG_KEY_LEN);
}

/* ---- device state ---- */

/*
 * Never lease the server's own addresses, nor addresses inside any peer's
 * configured allowed-IPs other than its own lease.
 */
static void rebuild_reservations(const struct wgdev *dev)
{
	struct rtnl_addr *addrs = NULL;
	size_t n = 0;

	poolset_reserve_clear(srv.pools);
	if (!rtnl_addr_list(srv.rt, srv.ifindex, AF_UNSPEC, &addrs, &n)) {
		for (size_t i = 0; i < n; i++) {
			struct wgd_ip host = addrs[i].ip;

			host.cidr = (uint8_t)wgd_ip_bits(host.family);
			poolset_reserve(srv.pools, &host);
		}
		free(addrs);
	}

	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *peer = &dev->peers[i];
		const struct lease *l = lease_find(srv.leases, peer->pubkey);

		for (size_t j = 0; j < peer->n_allowedips; j++) {
			const struct wgd_ip *ip = &peer->allowedips[j];

			if (l && ip->family == AF_INET && ip->cidr == 32 && l->has_ip4 &&
			    !memcmp(&ip->ip4, &l->ip4, sizeof(l->ip4)))
				continue;
			if (l && ip->family == AF_INET6 && ip->cidr == 128 && l->has_ip6 &&
			    !memcmp(&ip->ip6, &l->ip6, sizeof(l->ip6)))
				continue;
			poolset_reserve(srv.pools, ip);
		}
	}
}

/* With --auto-ll, every peer gets its derived link-local /128. */
static void ensure_auto_ll(struct wgdev *dev)
{
	for (size_t i = 0; i < dev->n_peers; i++) {
		struct wgdev_peer *peer = &dev->peers[i];
		struct wgd_ip ll, *grown;
		bool present = false;
		char kb[WG_KEY_B64_LEN], ib[WGD_IP_STRLEN];
		int ret;

		wgkey_derive_linklocal(&ll, peer->pubkey);
		for (size_t j = 0; j < peer->n_allowedips && !present; j++)
			present = wgd_ip_equal(&peer->allowedips[j], &ll);
		if (present)
			continue;
		ret = priv_update(peer->pubkey, &ll, 1, NULL, 0);
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

static void journal_lease(const struct lease *l)
{
	struct journal_record r;

	lease_to_record(l, &r);
	if (journal_append(srv.journal, &r))
		fatalx("out of memory for the journal");
	srv.counters.journal_records++;
}

/* quarantine is the seconds the addresses are held back, or 0. */
static void journal_release(const uint8_t *pubkey, const struct lease_change *c,
			    uint32_t quarantine)
{
	struct journal_record r = {
		.type = JREC_RELEASE,
		.flags = quarantine ? JREC_F_QUARANTINE : 0,
		.start = clock_real_s(),
		.leasetime = quarantine,
	};

	memcpy(r.pubkey, pubkey, WG_KEY_LEN);
	for (size_t i = 0; i < c->n_del; i++) {
		if (c->del[i].family == AF_INET) {
			r.flags |= JREC_F_IP4;
			r.ip4 = c->del[i].ip4;
		} else {
			r.flags |= JREC_F_IP6;
			r.ip6 = c->del[i].ip6;
		}
	}
	if (journal_append(srv.journal, &r))
		fatalx("out of memory for the journal");
	srv.counters.journal_records++;
}

/*
 * Ends a lease: recorded, off the device, addresses back to the pool or,
 * with quarantine, held back first.
 */
/*
 * Ends a lease in the table and the journal, and logs why; the device
 * change, the addresses to take off, goes to *c for end_on_device().
 */
static void end_lease(struct lease *l, const char *why, bool quarantine,
		      uint8_t pubkey[WG_KEY_LEN], struct lease_change *c)
{
	char kb[WG_KEY_B64_LEN];

	memcpy(pubkey, l->pubkey, WG_KEY_LEN);
	if (quarantine)
		lease_release_quarantine(srv.leases, l, clock_boot_ms() / 1000 + srv.quarantine, c);
	else
		lease_release(srv.leases, l, c);
	journal_release(pubkey, c, quarantine ? srv.quarantine : 0);
	if (quarantine)
		log_info("peer %s: lease %s; its addresses are quarantined for %us",
			 fmt_key(pubkey, kb), why, srv.quarantine);
	else
		log_info("peer %s: lease %s", fmt_key(pubkey, kb), why);
}

/* Takes the addresses of n ended leases off the device, in one exchange
 * with the parent (n at most PRIV_BATCH). */
static void end_on_device(const uint8_t (*pubkeys)[WG_KEY_LEN], const struct lease_change *c,
			  size_t n)
{
	struct priv_change batch[PRIV_BATCH];
	int err[PRIV_BATCH];
	size_t m = 0, which[PRIV_BATCH];
	char kb[WG_KEY_B64_LEN];

	for (size_t i = 0; i < n; i++) {
		if (!c[i].n_add && !c[i].n_del)
			continue;
		batch[m] = (struct priv_change){
			.pubkey = pubkeys[i],
			.add = c[i].add, .n_add = c[i].n_add,
			.del = c[i].del, .n_del = c[i].n_del,
		};
		which[m++] = i;
	}
	if (!m)
		return;
	priv_update_batch(batch, m, err);
	for (size_t j = 0; j < m; j++)
		if (err[j] && err[j] != -ENOENT)
			log_warnx("peer %s: cannot remove lease addresses: %s",
				  fmt_key(pubkeys[which[j]], kb), strerror(-err[j]));
}

static void release_lease(struct lease *l, const char *why, bool quarantine)
{
	uint8_t pubkey[1][WG_KEY_LEN];
	struct lease_change c;

	end_lease(l, why, quarantine, pubkey[0], &c);
	end_on_device(pubkey, &c, 1);
}

/* Takes in a device read: derived link-locals, the peer index, reservations. */
static int index_device(struct wgdev *dev)
{
	struct peer_index *pi;

	if (srv.auto_ll)
		ensure_auto_ll(dev);
	pi = peer_index_build(dev);
	if (!pi)
		return -ENOMEM;
	peer_index_free(srv.peers);
	srv.peers = pi;
	rebuild_reservations(dev);
	log_debug("device read: %zu peers", peer_index_count(pi));
	return 0;
}

/* Re-reads the device. */
static int refresh_device(void)
{
	struct wgdev *dev = NULL;
	int ret;

	srv.last_refresh_ms = clock_boot_ms();
	ret = priv_get_device(&dev);
	if (ret)
		return ret;
	ret = index_device(dev);
	wgdev_free(dev);
	return ret;
}

/* ---- pools ---- */

static void pool_add(const struct wgd_ip *prefix, const char *origin)
{
	char b[WGD_IP_STRLEN];
	int ret = poolset_add(srv.pools, prefix);

	if (!ret)
		log_info("pool %s (%s)", fmt_ip(prefix, b), origin);
	else if (ret != -EEXIST)
		log_debug("pool %s (%s) not used: overlaps another pool", fmt_ip(prefix, b), origin);
}

static bool is_cfg_pool(const struct wgd_ip *prefix)
{
	for (size_t i = 0; i < srv.n_cfg_pools; i++)
		if (wgd_ip_equal(&srv.cfg_pools[i], prefix))
			return true;
	return false;
}

/*
 * Makes the route pools the interface's direct routes as they are now,
 * adding and removing. Route notifications keep them so as a rule, but the
 * kernel drops an interface's IPv4 routes without one when the last IPv4
 * address goes, and notifications can be lost (an overrun).
 */
static void load_route_pools(void)
{
	struct wgd_ip *routes = NULL;
	size_t n = 0;
	int ret = rtnl_route_list(srv.rt, srv.ifindex, AF_UNSPEC, &routes, &n);

	if (ret) {
		log_warnx("cannot list the routes of %s: %s", srv.ifname, strerror(-ret));
		return;
	}
	for (size_t i = poolset_count(srv.pools); i-- > 0;) {
		struct wgd_ip pool = *poolset_prefix(srv.pools, i);
		char b[WGD_IP_STRLEN];
		bool routed = false;

		if (is_cfg_pool(&pool))
			continue;
		for (size_t j = 0; j < n && !routed; j++)
			routed = priv_is_pool_route(&routes[j]) && wgd_ip_equal(&routes[j], &pool);
		if (!routed && !poolset_remove(srv.pools, &pool))
			log_info("pool %s removed with its route", fmt_ip(&pool, b));
	}
	for (size_t i = 0; i < n; i++)
		if (priv_is_pool_route(&routes[i]))
			pool_add(&routes[i], "route");
	free(routes);
}

/* ---- the request path ---- */

static void conn_close(struct conn *c)
{
	/* The descriptor is ours alone: closing it unregisters it. */
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv.n_conns--;
	free(c->big_out);
	free(c);
}

/* Writes what is pending; closes once all is out. */
static void conn_flush(struct conn *c)
{
	const char *out = c->big_out ? c->big_out : c->out;

	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

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

static void conn_respond(struct conn *c, const struct wgd_msg *resp)
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

static void conn_respond_error(struct conn *c, enum wgd_error err)
{
	struct wgd_msg resp;

	memset(&resp, 0, sizeof(resp));
	resp.has_errno = true;
	resp.err = err;
	conn_respond(c, &resp);
}

/* What every lease carries besides its addresses: routes, DNS, MTU. */
static void add_config(struct wgd_msg *resp)
{
	memcpy(resp->dns, srv.dns, srv.n_dns * sizeof(resp->dns[0]));
	resp->n_dns = srv.n_dns;
	memcpy(resp->dns_search, srv.dns_search, sizeof(resp->dns_search));
	resp->mtu = srv.mtu;
	if (srv.n_cfg_routes) {
		memcpy(resp->routes, srv.cfg_routes, srv.n_cfg_routes * sizeof(resp->routes[0]));
		resp->n_routes = srv.n_cfg_routes;
		return;
	}
	/* Without --route, every pool's prefix is pushed. */
	for (size_t i = 0; i < poolset_count(srv.pools) && resp->n_routes < WGD_MAX_ROUTES; i++)
		resp->routes[resp->n_routes++] = *poolset_prefix(srv.pools, i);
}

/*
 * Decides, records and answers a request. The answer waits in out[] for
 * the end of this event-loop round, when every record of the round is
 * committed at once; then the device is told and the answers are sent.
 */
static void handle_request(struct conn *c, const struct wgd_msg *req)
{
	struct lease_clock now = { .real = clock_real_s(), .boot = clock_boot_ms() / 1000 };
	struct wgd_msg resp;
	char kb[WG_KEY_B64_LEN], b4[WGD_IP_STRLEN] = "-", b6[WGD_IP_STRLEN] = "-";
	bool quiet;
	bool renewal = lease_find(srv.leases, c->pubkey) != NULL;
	const struct lease *l;
	ssize_t len;
	int ret;

	memset(&resp, 0, sizeof(resp));
	ret = lease_request(srv.leases, c->pubkey, &c->ll, req, srv.leasetime, &now, &resp,
			    &c->change);
	if (ret < 0) {
		peer_log(log_warnx, c->pubkey, LC_RECORD, "peer %s: cannot record a lease: %s",
			 fmt_key(c->pubkey, kb), strerror(-ret));
		conn_respond_error(c, WGD_E_UNAVAILABLE);
		return;
	}
	if (resp.has_ip4 || resp.has_ip6)
		add_config(&resp);
	if (ret == LEASE_AS_IS) {
		/*
		 * Asked again early in the lease: the lease as it stands, on
		 * disk and on the device already. It still waits for this
		 * round's commit, which may hold the grant it repeats.
		 */
		srv.counters.repeats++;
		if (log_verbosity() >= 1)
			peer_log(log_debug, c->pubkey, LC_REPEAT,
				 "peer %s: renewed ip4 %s ip6 %s as it stands, %us left: asked again "
				 "early", fmt_key(c->pubkey, kb),
				 resp.has_ip4 ? fmt_ip(&resp.ip4, b4) : "-",
				 resp.has_ip6 ? fmt_ip(&resp.ip6, b6) : "-", resp.leasetime);
		goto queue;
	}
	l = lease_find(srv.leases, c->pubkey);
	if (l)
		journal_lease(l);
	else if (renewal)
		journal_release(c->pubkey, &c->change, 0);

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
		srv.counters.releases++;
		peer_log(log_info, c->pubkey, LC_RELEASE, "peer %s: released",
			 fmt_key(c->pubkey, kb));
	} else if (renewal && !c->change.n_add && !c->change.n_del) {
		srv.counters.renewals++;
		if (!quiet)
			log_debug("peer %s: renewed ip4 %s ip6 %s for %us", fmt_key(c->pubkey, kb),
				  b4, b6, srv.leasetime);
	} else if (resp.has_ip4 || resp.has_ip6) {
		srv.counters.grants++;
		peer_log(log_info, c->pubkey, LC_GRANT, "peer %s: granted ip4 %s ip6 %s for %us",
			 fmt_key(c->pubkey, kb), b4, b6, srv.leasetime);
	}
	if (resp.err) {
		srv.counters.unavailable++;
		peer_log(log_info, c->pubkey, LC_UNAVAILABLE, "peer %s: %s",
			 fmt_key(c->pubkey, kb), resp.errmsg);
	}

queue:
	len = wgd_serialize_response(&resp, c->out, sizeof(c->out));
	if (len < 0)
		fatalx("a response does not fit: %s", strerror((int)-len));
	c->out_len = (size_t)len;
	c->out_off = 0;
	c->state = CONN_COMMITTING;
	c->commit_next = NULL;
	*srv.commit_tail = c;
	srv.commit_tail = &c->commit_next;
	/* Nothing more is read from this connection. */
	if (c->watched)
		conn_watch(c, 0);
}

/* Writes a lease that could not be applied back out of existence. */
static void fail_committed(struct conn *c, int err)
{
	struct lease *l = lease_find(srv.leases, c->pubkey);
	char kb[WG_KEY_B64_LEN];

	srv.counters.errors++;
	peer_log(log_warnx, c->pubkey, LC_DEVICE, "peer %s: cannot update its allowed-IPs: %s",
		 fmt_key(c->pubkey, kb), strerror(-err));
	/* The parent, reading the routes itself, knows of a pool gone. */
	if (err == -EPERM)
		load_route_pools();
	if (l)
		release_lease(l, "withdrawn: the device refused it", false);
	/*
	 * The parent refuses an addition that is not to be leased or that
	 * another peer holds, by what it read of the device itself: held back
	 * until the next device read rebuilds the reservations, it is not
	 * drawn again meanwhile.
	 */
	if (err == -EPERM || err == -EEXIST)
		for (size_t i = 0; i < c->change.n_add; i++)
			poolset_reserve(srv.pools, &c->change.add[i]);
	/* Nothing of the change was made: what it gave up is still on the
	 * peer, and back in the pools. */
	if (c->change.n_del)
		priv_update(c->pubkey, NULL, 0, c->change.del, c->change.n_del);
	conn_respond_error(c, WGD_E_UNAVAILABLE);
}

/* Whether change adds an address that one of the n changes of batch removes. */
static bool adds_removed(const struct priv_change *batch, size_t n,
			 const struct lease_change *change)
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
static void commit_round(void)
{
	struct conn *c, *next;
	int ret;

	if (journal_pending(srv.journal)) {
		ret = journal_commit(srv.journal);
		if (ret) {
			log_warnx("cannot write the lease journal %s: %s; exiting",
				  srv.journal_name, strerror(-ret));
			exit(EXIT_JOURNAL);
		}
	}
	c = srv.commit_head;
	srv.commit_head = NULL;
	srv.commit_tail = &srv.commit_head;
	/*
	 * The changes go to the parent PRIV_BATCH at a time, in one message,
	 * for one device operation; the answers are all in before any is
	 * acted upon, since acting on a failure sends changes of its own.
	 */
	while (c) {
		struct priv_change batch[PRIV_BATCH];
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
			batch[n++] = (struct priv_change){
				.pubkey = c->pubkey,
				.add = c->change.add, .n_add = c->change.n_add,
				.del = c->change.del, .n_del = c->change.n_del,
			};
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
	if (journal_pending(srv.journal) && journal_commit(srv.journal))
		exit(EXIT_JOURNAL);
}

/* Reads what has come; true when the connection waits for more. */
static bool conn_read(struct conn *c)
{
	char buf[4096];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

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
				srv.counters.unsupported++;
			else
				srv.counters.invalid++;
			peer_log(log_info, c->pubkey, LC_BAD_REQUEST, "bad request from %s: %s",
				 inet_ntop(AF_INET6, &c->ll, ab, sizeof(ab)), c->parser.error);
			conn_respond_error(c, (enum wgd_error)-ret);
			return false;
		}
		if (ret > 0) {
			/* One request per connection: what follows it is not read. */
			handle_request(c, &c->parser.msg);
			return false;
		}
	}
}

static size_t conns_of_peer(const uint8_t *pubkey)
{
	size_t n = 0;

	for (struct conn *c = srv.conns; c; c = c->next)
		n += !memcmp(c->pubkey, pubkey, WG_KEY_LEN);
	return n;
}

/* pubkey is the peer's, or NULL when the source is no peer's. */
static void refuse(int fd, const struct sockaddr_in6 *sa, const uint8_t *pubkey,
		   enum log_cause cause, const char *why)
{
	char ab[INET6_ADDRSTRLEN];

	peer_log(log_info, pubkey, cause, "refused connection from [%s]:%u: %s",
		 inet_ntop(AF_INET6, &sa->sin6_addr, ab, sizeof(ab)), ntohs(sa->sin6_port), why);
	close(fd);
}

static void accept_conns(void)
{
	for (;;) {
		struct sockaddr_in6 sa = { 0 };
		socklen_t salen = sizeof(sa);
		const uint8_t *pubkey;
		struct conn *c;
		int fd = accept4(srv.listen_fd, (struct sockaddr *)&sa, &salen,
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
			srv.counters.refused_port++;
			/* The peer, when the index knows it, only for the log:
			 * no device read for a connection refused anyway. */
			refuse(fd, &sa, srv.peers ? peer_index_lookup(srv.peers, &sa.sin6_addr) : NULL,
			       LC_REFUSED_PORT, "source port is not 970");
			continue;
		}
		pubkey = srv.peers ? peer_index_lookup(srv.peers, &sa.sin6_addr) : NULL;
		if (!pubkey && clock_boot_ms() - srv.last_refresh_ms >= REFRESH_MIN_MS) {
			int ret = refresh_device();

			if (ret)
				log_warnx("cannot read %s: %s", srv.ifname, strerror(-ret));
			pubkey = srv.peers ? peer_index_lookup(srv.peers, &sa.sin6_addr) : NULL;
		}
		if (!pubkey) {
			srv.counters.refused_peer++;
			refuse(fd, &sa, NULL, LC_REFUSED_PEER,
			       "no peer has this link-local /128 in its allowed-IPs");
			continue;
		}
		if (srv.n_conns >= srv.max_conns) {
			srv.counters.refused_busy++;
			refuse(fd, &sa, pubkey, LC_REFUSED_BUSY, "too many connections");
			continue;
		}
		if (conns_of_peer(pubkey) >= srv.max_conns_per_peer) {
			srv.counters.refused_busy++;
			refuse(fd, &sa, pubkey, LC_REFUSED_BUSY, "too many connections from this peer");
			continue;
		}

		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->ll = sa.sin6_addr;
		memcpy(c->pubkey, pubkey, WG_KEY_LEN);
		c->deadline_ms = clock_boot_ms() + srv.idle_timeout_ms;
		wgd_parser_init(&c->parser, WGD_PARSE_REQUEST);
		c->next = srv.conns;
		if (srv.conns)
			srv.conns->prev = c;
		srv.conns = c;
		srv.n_conns++;
		if (conn_read(c) && conn_watch(c, EPOLLIN))
			conn_close(c);
	}
}

/* ---- status queries ---- */

struct status_fill {
	struct status *st;
	struct wgdev *dev;
	uint32_t now;
	uint64_t now_boot;
};

static void status_add_lease(const struct lease *l, void *ctx)
{
	struct status_fill *f = ctx;
	struct status_lease *out = &f->st->leases[f->st->n_leases++];
	struct wgdev_peer key, *peer = NULL;

	memset(out, 0, sizeof(*out));
	memcpy(out->pubkey, l->pubkey, WG_KEY_LEN);
	out->lladdr = l->lladdr;
	out->has_ip4 = l->has_ip4;
	out->has_ip6 = l->has_ip6;
	out->ip4 = l->ip4;
	out->ip6 = l->ip6;
	out->start = l->start;
	out->left = l->expires > f->now_boot ? (uint32_t)(l->expires - f->now_boot) : 0;
	if (f->dev && f->dev->n_peers) {
		memcpy(key.pubkey, l->pubkey, WG_KEY_LEN);
		peer = bsearch(&key, f->dev->peers, f->dev->n_peers, sizeof(key), by_pubkey);
	}
	if (peer)
		memcpy(&out->endpoint, &peer->endpoint, sizeof(out->endpoint) < sizeof(peer->endpoint) ?
			sizeof(out->endpoint) : sizeof(peer->endpoint));
}

/* Answers a status query: a fresh device read for the endpoints, then the
 * leases, pools and counters as asked. */
static void ctl_answer(struct conn *c, enum status_format format)
{
	struct status st = {
		.ifname = srv.ifname,
		.leasetime = srv.leasetime,
		.now = clock_real_s(),
		.n_quarantined = lease_quarantine_count(srv.leases),
		.counters = srv.counters,
	};
	struct status_fill fill = { .st = &st, .now_boot = clock_boot_ms() / 1000 };
	size_t len = 0;

	st.leases = calloc(lease_count(srv.leases) + 1, sizeof(*st.leases));
	st.pools = calloc(poolset_count(srv.pools) + 1, sizeof(*st.pools));
	if (st.leases && st.pools) {
		if (!priv_get_device(&fill.dev) && fill.dev->n_peers)
			qsort(fill.dev->peers, fill.dev->n_peers, sizeof(fill.dev->peers[0]),
			      by_pubkey);
		lease_foreach(srv.leases, status_add_lease, &fill);
		for (size_t i = 0; i < poolset_count(srv.pools); i++) {
			st.pools[i].prefix = *poolset_prefix(srv.pools, i);
			st.pools[i].size = poolset_pool_size(srv.pools, i);
			st.pools[i].free = poolset_pool_free(srv.pools, i);
		}
		st.n_pools = poolset_count(srv.pools);
		c->big_out = status_render(&st, format, &len);
	}
	wgdev_free(fill.dev);
	free(st.leases);
	free(st.pools);
	if (!c->big_out) {
		conn_close(c);
		return;
	}
	c->out_len = len;
	c->out_off = 0;
	c->state = CONN_WRITING;
	conn_flush(c);
}

/* A query is one line naming the format. */
static void ctl_read(struct conn *c)
{
	enum status_format format;
	char *nl;
	ssize_t n = recv(c->fd, c->out + c->out_len, 64 - c->out_len, 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->out_len += (size_t)n;
	nl = memchr(c->out, '\n', c->out_len);
	if (!nl) {
		if (c->out_len >= 64)
			conn_close(c);
		return;
	}
	if (status_format_parse(c->out, (size_t)(nl - c->out), &format)) {
		conn_close(c);
		return;
	}
	ctl_answer(c, format);
}

static void accept_ctl(void)
{
	for (;;) {
		int fd = accept4(srv.ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (!c || epoll_add(fd, EPOLLIN, c)) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->ctl = true;
		c->watched = true;
		c->deadline_ms = clock_boot_ms() + 2000;
		c->next = srv.conns;
		if (srv.conns)
			srv.conns->prev = c;
		srv.conns = c;
		srv.n_conns++;
	}
}

/* ---- timers ---- */

/* Leases that ran out, their addresses taken off PRIV_BATCH at a time. */
static void expire_leases(void)
{
	uint64_t now = clock_boot_ms() / 1000;
	uint8_t pubkeys[PRIV_BATCH][WG_KEY_LEN];
	struct lease_change c[PRIV_BATCH];
	struct lease *l;
	size_t n;

	do {
		for (n = 0; n < PRIV_BATCH && (l = lease_first_expiry(srv.leases)) &&
			    l->expires <= now; n++) {
			srv.counters.expiries++;
			end_lease(l, "expired", false, pubkeys[n], &c[n]);
		}
		if (n)
			end_on_device(pubkeys, c, n);
	} while (n == PRIV_BATCH);
}

static void expire_quarantine(void)
{
	size_t n = lease_quarantine_expire(srv.leases, clock_boot_ms() / 1000);

	if (n)
		log_info("quarantine over for %zu addresses; they return to the pools", n);
}

static void expire_conns(void)
{
	uint64_t now = clock_boot_ms();
	struct conn *c = srv.conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->state != CONN_COMMITTING && c->deadline_ms <= now) {
			char ab[INET6_ADDRSTRLEN];

			srv.counters.idle_timeouts += !c->ctl;
			peer_log(log_info, c->ctl ? NULL : c->pubkey, LC_IDLE,
				 "closing idle connection from %s",
				 inet_ntop(AF_INET6, &c->ll, ab, sizeof(ab)));
			conn_close(c);
		}
	}
}

struct departed {
	size_t n, cap;
	uint8_t (*keys)[WG_KEY_LEN];
};

static void collect_departed(const struct lease *l, void *ctx)
{
	struct departed *d = ctx;

	if (peer_index_has_key(srv.peers, l->pubkey) || d->n == d->cap)
		return;
	memcpy(d->keys[d->n++], l->pubkey, WG_KEY_LEN);
}

/* Drops leases of peers that left the device. */
static void drop_departed_peers(void)
{
	struct departed d = { .cap = lease_count(srv.leases) };

	if (!d.cap)
		return;
	d.keys = calloc(d.cap, WG_KEY_LEN);
	if (!d.keys)
		return;
	lease_foreach(srv.leases, collect_departed, &d);
	for (size_t i = 0; i < d.n; i += PRIV_BATCH) {
		size_t n = d.n - i < PRIV_BATCH ? d.n - i : PRIV_BATCH;
		struct lease_change c[PRIV_BATCH] = { 0 };
		uint8_t copy[WG_KEY_LEN]; /* d.keys has them already */

		for (size_t j = 0; j < n; j++) {
			srv.counters.departures++;
			end_lease(lease_find(srv.leases, d.keys[i + j]), "dropped: the peer is gone",
				  true, copy, &c[j]);
		}
		end_on_device((const uint8_t (*)[WG_KEY_LEN])(d.keys + i), c, n);
	}
	free(d.keys);
}

static int next_timeout_ms(void)
{
	uint64_t now = clock_boot_ms(), next = srv.last_refresh_ms + srv.refresh_ms;
	uint64_t q = lease_quarantine_next(srv.leases);
	const struct lease *l = lease_first_expiry(srv.leases);

	if (l && (uint64_t)l->expires * 1000 < next)
		next = (uint64_t)l->expires * 1000;
	if (q != UINT64_MAX && q * 1000 < next)
		next = q * 1000;
	for (const struct conn *c = srv.conns; c; c = c->next)
		if (c->deadline_ms < next)
			next = c->deadline_ms;
	return next <= now ? 0 : (int)(next - now);
}

/* ---- interface events ---- */

static void on_rtnl_event(const struct rtnl_event *ev, void *ctx)
{
	(void)ctx;
	switch (ev->type) {
	case RTNL_EV_LINK_DEL:
		if (ev->ifindex == srv.ifindex) {
			log_warnx("interface %s was deleted; exiting (a service manager may restart "
				  "the server once it is back)", srv.ifname);
			exit(EXIT_IFACE_GONE);
		}
		break;
	case RTNL_EV_ROUTE_NEW:
		if (ev->ifindex == srv.ifindex && !ev->has_gateway && ev->table == RT_TABLE_MAIN &&
		    priv_is_pool_route(&ev->ip))
			pool_add(&ev->ip, "route");
		break;
	case RTNL_EV_ROUTE_DEL:
		if (ev->ifindex == srv.ifindex && ev->table == RT_TABLE_MAIN &&
		    !is_cfg_pool(&ev->ip)) {
			char b[WGD_IP_STRLEN];

			if (!poolset_remove(srv.pools, &ev->ip))
				log_info("pool %s removed with its route", fmt_ip(&ev->ip, b));
		}
		break;
	case RTNL_EV_ADDR_DEL:
		/* The last IPv4 address took the routes with it, unannounced. */
		if (ev->ifindex == srv.ifindex && ev->ip.family == AF_INET)
			load_route_pools();
		break;
	case RTNL_EV_OVERRUN:
		load_route_pools();
		break;
	default:
		break;
	}
}

/* ---- start-up: the journal ---- */

/*
 * Replaying the journal builds, per peer, its latest lease (live) and the
 * last addresses of leases that ended or moved (gone): the latter are what
 * the device may still carry if the server stopped between a record and
 * the device change that followed it.
 */
struct replay {
	struct lease_table *live, *gone;
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

static int replay_record(const struct journal_record *r, void *ctx)
{
	struct replay *rp = ctx;
	struct lease l, *prev = lease_find(rp->live, r->pubkey);
	int ret;

	record_to_lease(r, &l);
	if (r->type == JREC_GRANT) {
		l.expires = (uint64_t)r->start + r->leasetime;
		if (prev && ((prev->has_ip4 && (!l.has_ip4 || prev->ip4.s_addr != l.ip4.s_addr)) ||
			     (prev->has_ip6 && (!l.has_ip6 || memcmp(&prev->ip6, &l.ip6, 16))))) {
			ret = lease_set(rp->gone, prev);
			if (ret)
				return ret;
		}
		return lease_set(rp->live, &l);
	}

	lease_forget(rp->live, r->pubkey);
	if (!wgkey_is_zero(r->pubkey)) {
		ret = lease_set(rp->gone, &l);
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
 * Restores the live leases, newest first, so that if two ever claimed one
 * address the later grant keeps it. Expired leases join the gone table.
 */
static void restore_leases(struct replay *rp)
{
	uint32_t now_real = clock_real_s();
	uint64_t now_boot = clock_boot_ms() / 1000;
	struct lease_list list = { .v = calloc(lease_count(rp->live) + 1, sizeof(struct lease)) };
	size_t restored = 0, expired = 0, held = 0;
	char kb[WG_KEY_B64_LEN];

	uint64_t *order = calloc(lease_count(rp->live) + 1, sizeof(*order));

	if (!list.v || !order)
		fatalx("out of memory restoring leases");
	/* Failing that, the table grows as it goes. */
	lease_table_reserve(srv.leases, lease_count(rp->live));
	lease_foreach(rp->live, collect_lease, &list);
	/* Sorting small keys rather than whole leases. */
	for (size_t i = 0; i < list.n; i++)
		order[i] = (uint64_t)list.v[i].start << 32 | i;
	qsort(order, list.n, sizeof(*order), by_key_desc);
	for (size_t i = 0; i < list.n; i++) {
		struct lease *l = &list.v[(uint32_t)order[i]];
		uint64_t end = (uint64_t)l->start + l->leasetime;

		if (end <= now_real) {
			lease_set(rp->gone, l);
			expired++;
			continue;
		}
		l->expires = now_boot + (end - now_real);
		if (!lease_restore(srv.leases, l)) {
			restored++;
			continue;
		}
		/* Keep whichever family does not clash. */
		struct lease one = *l;
		bool ok = false;

		one.has_ip6 = false;
		if (one.has_ip4 && !lease_restore(srv.leases, &one))
			ok = true;
		else {
			one = *l;
			one.has_ip4 = false;
			ok = one.has_ip6 && !lease_restore(srv.leases, &one);
		}
		log_warnx("journal: peer %s: an address was leased twice; %s", fmt_key(l->pubkey, kb),
			  ok ? "kept the other family" : "dropped the lease");
		restored += ok;
	}
	free(order);
	free(list.v);

	for (size_t i = 0; i < rp->n_q; i++) {
		if (rp->q[i].until_real <= now_real)
			continue;
		if (poolset_contains(srv.pools, &rp->q[i].addr) &&
		    poolset_take(srv.pools, &rp->q[i].addr))
			continue;
		if (lease_quarantine_addr(srv.leases, &rp->q[i].addr,
					  now_boot + (rp->q[i].until_real - now_real)))
			poolset_put(srv.pools, &rp->q[i].addr);
		else
			held++;
	}
	log_info("journal %s: restored %zu leases, dropped %zu expired, %zu addresses in "
		 "quarantine", srv.journal_name, restored, expired, held);
}

struct compact_ctx {
	int err;
};

static void compact_lease(const struct lease *l, void *ctx)
{
	struct compact_ctx *cc = ctx;
	struct journal_record r;

	lease_to_record(l, &r);
	if (!cc->err)
		cc->err = journal_compact_add(srv.journal, &r);
}

/* Rewrites the journal as the live leases and quarantines alone. */
static void compact_journal(void)
{
	struct compact_ctx cc = { 0 };
	uint32_t now_real = clock_real_s();
	uint64_t now_boot = clock_boot_ms() / 1000, until;
	const struct wgd_ip *a;
	off_t before = journal_size(srv.journal);

	cc.err = journal_compact_begin(srv.journal);
	if (!cc.err)
		lease_foreach(srv.leases, compact_lease, &cc);
	for (size_t i = 0; !cc.err && (a = lease_quarantine_get(srv.leases, i, &until)); i++) {
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
		cc.err = journal_compact_add(srv.journal, &r);
	}
	if (!cc.err)
		cc.err = journal_compact_end(srv.journal);
	if (cc.err) {
		journal_compact_abort(srv.journal);
		log_warnx("cannot compact the journal %s: %s", srv.journal_name,
			  strerror(-cc.err));
		return;
	}
	log_info("compacted the journal %s from %lld to %lld bytes", srv.journal_name,
		 (long long)before, (long long)journal_size(srv.journal));
}

static void open_journal(struct replay *rp)
{
	struct journal_stats st = { 0 };
	int ret;

	struct stat jst;
	char jpath[IF_NAMESIZE + 16];

	/* The engine sees its directory as its root. Room for every
	 * record as a live lease is room enough for the replay. */
	snprintf(jpath, sizeof(jpath), "/%s.leases", srv.ifname);
	if (!lstat(jpath, &jst) && jst.st_size > JOURNAL_HEADER_SIZE)
		lease_table_reserve(rp->live, (size_t)(jst.st_size - JOURNAL_HEADER_SIZE) /
						      JOURNAL_RECORD_SIZE);
	ret = journal_open(&srv.journal, "/", srv.ifname, replay_record, rp, &st);
	if (ret == -EBADMSG || ret == -EPROTONOSUPPORT) {
		log_warnx("%s is not a lease journal this server can read (%s); it is left "
			  "untouched: move it aside to start afresh", srv.journal_name,
			  ret == -EBADMSG ? "bad header" : "unknown version");
		exit(EXIT_JOURNAL);
	} else if (ret == -EBUSY) {
		log_warnx("%s is in use: is another wg-dynamic-server running on %s?",
			  srv.journal_name, srv.ifname);
		exit(EXIT_JOURNAL);
	} else if (ret == -ELOOP || ret == -EINVAL || ret == -EMLINK) {
		/* Not a file the engine made: followed or written, it could
		 * be another one's. */
		log_warnx("%s is %s, not a lease journal; it is left untouched: move it aside to "
			  "start afresh", srv.journal_name,
			  ret == -ELOOP ? "a symbolic link" :
			  ret == -EMLINK ? "a file with other names (hard links)" :
					   "not a regular file");
		exit(EXIT_JOURNAL);
	} else if (ret) {
		log_warnx("cannot open the lease journal %s: %s", srv.journal_name, strerror(-ret));
		exit(EXIT_STATE_DIR);
	}
	if (st.dropped_bytes)
		log_warnx("journal %s: dropped %zu bytes of a torn or corrupt tail after %zu valid "
			  "records", srv.journal_name, st.dropped_bytes, st.records);
}

/* ---- start-up: the device ---- */

static bool peer_has_ip(const struct wgdev_peer *p, const struct wgd_ip *ip)
{
	for (size_t i = 0; i < p->n_allowedips; i++)
		if (wgd_ip_equal(&p->allowedips[i], ip))
			return true;
	return false;
}

static void reconcile_lease(const struct lease *l, void *ctx)
{
	struct wgdev *dev = ctx;
	struct wgdev_peer *peer;
	struct wgd_ip want[2], add[2];
	size_t pos;
	size_t n_want = 0, n_add = 0;
	char kb[WG_KEY_B64_LEN], ab[WGD_IP_STRLEN];

	pos = peer_index_find_key(srv.peers, l->pubkey);
	if (pos == SIZE_MAX)
		return; /* dropped afterwards, by drop_departed_peers() */
	peer = &dev->peers[pos];
	if (l->has_ip4)
		wgd_ip_host4(&want[n_want++], &l->ip4);
	if (l->has_ip6)
		wgd_ip_host6(&want[n_want++], &l->ip6);
	for (size_t i = 0; i < n_want; i++)
		if (!peer_has_ip(peer, &want[i]))
			add[n_add++] = want[i];
	if (!n_add)
		return;
	int ret = priv_update(l->pubkey, add, n_add, NULL, 0);
	for (size_t i = 0; i < n_add; i++)
		log_info("reconcile: peer %s: %s %s", fmt_key(l->pubkey, kb),
			 ret ? "cannot re-add" : "re-added", fmt_ip(&add[i], ab));
}

/*
 * Makes the device agree with the journal, both ways: live leases missing
 * from their peer's allowed-IPs are added back; addresses the journal knows
 * as this peer's ended or moved leases are taken off. Host allowed-IPs the
 * journal never leased are configuration, and stay (and are reserved).
 * Leases of peers no longer on the device are dropped by the caller. The
 * peers are found through srv.peers, built from dev.
 */
static void reconcile(struct wgdev *dev, struct lease_table *gone)
{
	char kb[WG_KEY_B64_LEN], ab[WGD_IP_STRLEN];

	lease_foreach(srv.leases, reconcile_lease, dev);

	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *peer = &dev->peers[i];
		const struct lease *g = lease_find(gone, peer->pubkey);
		const struct lease *l = lease_find(srv.leases, peer->pubkey);
		struct wgd_ip stale[2], del[2];
		size_t n_stale = 0, n_del = 0;

		if (!g)
			continue;
		if (g->has_ip4 && !(l && l->has_ip4 && l->ip4.s_addr == g->ip4.s_addr))
			wgd_ip_host4(&stale[n_stale++], &g->ip4);
		if (g->has_ip6 && !(l && l->has_ip6 && !memcmp(&l->ip6, &g->ip6, 16)))
			wgd_ip_host6(&stale[n_stale++], &g->ip6);
		for (size_t j = 0; j < n_stale; j++)
			if (peer_has_ip(peer, &stale[j]))
				del[n_del++] = stale[j];
		if (!n_del)
			continue;
		int ret = priv_update(peer->pubkey, NULL, 0, del, n_del);
		for (size_t j = 0; j < n_del; j++)
			log_info("reconcile: peer %s: %s stale %s", fmt_key(peer->pubkey, kb),
				 ret ? "cannot remove" : "removed", fmt_ip(&del[j], ab));
	}
}

/* Reads the journal and the device and makes them agree. */
static void start_up_state(void)
{
	struct replay rp = { 0 };
	struct poolset *none = poolset_new();
	struct wgdev *dev = NULL;
	int ret;

	uint64_t t[6];

	t[0] = clock_mono_us();
	rp.live = none ? lease_table_new(none) : NULL;
	rp.gone = none ? lease_table_new(none) : NULL;
	if (!rp.live || !rp.gone)
		fatalx("out of memory");
	open_journal(&rp);
	t[1] = clock_mono_us();
	restore_leases(&rp);
	lease_table_free(rp.live);
	free(rp.q);

	t[2] = clock_mono_us();
	srv.last_refresh_ms = clock_boot_ms();
	ret = priv_get_device(&dev);
	if (ret)
		fatalx("cannot read WireGuard device %s: %s", srv.ifname, strerror(-ret));
	t[3] = clock_mono_us();
	ret = index_device(dev);
	if (ret)
		fatalx("cannot index the peers of %s: %s", srv.ifname, strerror(-ret));
	t[4] = clock_mono_us();
	reconcile(dev, rp.gone);
	wgdev_free(dev);
	lease_table_free(rp.gone);
	poolset_free(none);
	t[5] = clock_mono_us();
	log_debug("start-up: journal replay %llu ms, restore %llu ms, device read %llu ms, "
		  "index %llu ms, reconcile %llu ms",
		  (t[1] - t[0]) / 1000ULL, (t[2] - t[1]) / 1000ULL, (t[3] - t[2]) / 1000ULL,
		  (t[4] - t[3]) / 1000ULL, (t[5] - t[4]) / 1000ULL);
}

/* ---- start-up ---- */

/* A forwarding interface joins fe80:: as the subnet-router anycast address
 * (RFC 4291, 2.6.1), and the kernel refuses TCP to anycast. Forwarding is
 * decided by the global switch, so turning it off on this interface alone
 * keeps the hub routing between its peers. */
static void disable_iface_forwarding(void)
{
	char path[128], val = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/forwarding", srv.ifname);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	if (read(fd, &val, 1) == 1 && val != '0') {
		if (pwrite(fd, "0\n", 2, 0) == 2)
			log_info("turned IPv6 forwarding off on %s alone, so that fe80:: is not "
				 "anycast there; the hub still forwards", srv.ifname);
		else
			log_warn("cannot write %s", path);
	}
	close(fd);
}

static void ensure_server_ll(void)
{
	struct rtnl_addr *addrs = NULL;
	struct wgd_ip ll = { .family = AF_INET6, .cidr = 64, .bytes = { 0xfe, 0x80 } };
	size_t n = 0;
	int ret;

	ret = rtnl_addr_list(srv.rt, srv.ifindex, AF_INET6, &addrs, &n);
	if (ret)
		fatalx("cannot list the addresses of %s: %s", srv.ifname, strerror(-ret));
	for (size_t i = 0; i < n; i++) {
		if (wgd_ip_equal(&addrs[i].ip, &ll)) {
			free(addrs);
			return;
		}
	}
	free(addrs);
	ret = rtnl_addr_add(srv.rt, srv.ifindex, &ll, UINT32_MAX, UINT32_MAX);
	if (ret) {
		log_warnx("%s has no fe80::/64 and adding it failed: %s; add it with: ip addr add "
			  "fe80::/64 dev %s", srv.ifname, strerror(-ret), srv.ifname);
		exit(EXIT_SYSTEM);
	}
	log_info("added fe80::/64 to %s, the address clients reach the server at", srv.ifname);
}

static int open_listener(void)
{
	struct sockaddr_in6 sa = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_addr = { .s6_addr = { 0xfe, 0x80 } },
		.sin6_scope_id = srv.ifindex,
	};
	int fd, one = 1;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* A freshly added address may still be settling. */
	for (int tries = 0;; tries++) {
		if (!bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		if (errno != EADDRNOTAVAIL || tries == 50) {
			int err = errno;

			close(fd);
			return -err;
		}
		usleep(100 * 1000);
	}
	/* Reconnect storms after an outage arrive at once: take them all. */
	if (listen(fd, SOMAXCONN)) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

static long number_arg(const char *opt, const char *arg, long min, long max,
		       const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *end || arg[0] < '0' || arg[0] > '9' || v < min || v > max) {
		fprintf(stderr, "wg-dynamic-server: %s %s: give %s from %ld to %ld\n", opt, arg,
			what, min, max);
		exit(EXIT_USAGE);
	}
	return v;
}

static long seconds_arg(const char *opt, const char *arg, long min, long max)
{
	return number_arg(opt, arg, min, max, "whole seconds");
}

static long count_arg(const char *opt, const char *arg, long min, long max)
{
	return number_arg(opt, arg, min, max, "a number");
}

/* ---- the engine ---- */

/* Runs the lease service with no privileges; never returns. */
static void __attribute__((noreturn)) engine_main(int fd)
{
	int ret;

	pid_t parent = getppid();

	priv_engine_init(fd);
	srv.priv_fd = fd;
	ratelimit_init(&srv.logrl, RATELIMIT_LOG_MS);
	wgctl_close(srv.wg);
	srv.wg = NULL;
	ret = rtnl_monitor_open(&srv.mon, RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE |
				RTMGRP_IPV4_IFADDR);
	if (ret)
		fatalx("cannot watch rtnetlink: %s", strerror(-ret));
	/* Readiness is the engine's to tell (NotifyAccess=all); connect
	 * before the chroot hides the socket. */
	ret = notify_open();
	if (ret)
		log_warnx("cannot reach $NOTIFY_SOCKET: %s", strerror(-ret));
	/* Into the directory the parent checked, by its descriptor: no path
	 * is looked up again. Nothing outside stays open. */
	close(srv.state_fd);
	if (srv.ctl_dir_fd >= 0)
		close(srv.ctl_dir_fd);
	if (fchdir(srv.engine_dir_fd) || chroot(".") || chdir("/"))
		fatal("cannot confine the engine to %s/%s", srv.state_dir, ENGINE_DIR);
	close(srv.engine_dir_fd);
	ret = caps_become_user(srv.pw->pw_uid, srv.pw->pw_gid);
	if (ret)
		fatalx("cannot drop privileges to user %s: %s", srv.user, strerror(-ret));
	/* After the change of user, which clears it; a parent already gone
	 * would never send the signal. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		fatalx("the parent is gone; exiting");

	srv.pools = poolset_new();
	srv.leases = srv.pools ? lease_table_new(srv.pools) : NULL;
	if (!srv.leases)
		fatalx("out of memory");
	for (size_t i = 0; i < srv.n_cfg_pools; i++)
		pool_add(&srv.cfg_pools[i], "--pool");
	load_route_pools();
	if (!poolset_count(srv.pools)) {
		log_warnx("no pool to lease from: give --pool CIDR, or add an address with a "
			  "prefix to %s (ip addr add 10.0.0.1/24 dev %s)", srv.ifname, srv.ifname);
		exit(EXIT_NO_POOL);
	}

	start_up_state();
	drop_departed_peers();
	if (journal_pending(srv.journal) && journal_commit(srv.journal))
		fatalx("cannot write the lease journal %s", srv.journal_name);
	if (journal_wants_compaction(srv.journal, lease_count(srv.leases)))
		compact_journal();
	if (!peer_index_count(srv.peers))
		log_warnx("%s has no peers yet; waiting for some", srv.ifname);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	srv.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

	srv.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv.epfd < 0 || srv.sig_fd < 0)
		fatal("cannot set up the event loop");
	epoll_add(srv.listen_fd, EPOLLIN, &srv.listen_fd);
	if (srv.ctl_fd >= 0)
		epoll_add(srv.ctl_fd, EPOLLIN, &srv.ctl_fd);
	/* The parent speaks only when asked: anything else is its end. */
	epoll_add(srv.priv_fd, EPOLLIN, &srv.priv_fd);
	epoll_add(srv.sig_fd, EPOLLIN, &srv.sig_fd);
	epoll_add(rtnl_monitor_fd(srv.mon), EPOLLIN, srv.mon);
	log_info("serving %s on [fe80::%%%s]:970, lease time %us", srv.ifname, srv.ifname,
		 srv.leasetime);
	notify_send("READY=1\nSTATUS=serving leases");

	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(srv.epfd, evs, 64, next_timeout_ms());

		if (n < 0 && errno != EINTR)
			fatal("epoll_wait");
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &srv.listen_fd) {
				accept_conns();
			} else if (p == &srv.ctl_fd) {
				accept_ctl();
			} else if (p == &srv.priv_fd) {
				log_warnx("the privileged parent is gone; exiting");
				exit(EXIT_ENGINE);
			} else if (p == &srv.sig_fd) {
				struct signalfd_siginfo si;

				if (read(srv.sig_fd, &si, sizeof(si)) == sizeof(si) &&
				    si.ssi_signo != SIGHUP) {
					log_info("exiting on signal %u; leases stay on the device",
						 si.ssi_signo);
					if (journal_pending(srv.journal))
						journal_commit(srv.journal);
					exit(EXIT_OK);
				}
			} else if (p == srv.mon) {
				ret = rtnl_monitor_read(srv.mon, on_rtnl_event, NULL);
				if (ret)
					log_warnx("rtnetlink: %s", strerror(-ret));
			} else {
				struct conn *c = p;

				if (c->state == CONN_WRITING)
					conn_flush(c);
				else if (c->state == CONN_READING && c->ctl)
					ctl_read(c);
				else if (c->state == CONN_READING)
					conn_read(c);
			}
		}
		expire_leases();
		expire_quarantine();
		expire_conns();
		if (clock_boot_ms() - srv.last_refresh_ms >= srv.refresh_ms) {
			ret = refresh_device();
			if (ret)
				log_warnx("cannot read %s: %s", srv.ifname, strerror(-ret));
			else
				drop_departed_peers();
		}
		commit_round();
		if (journal_wants_compaction(srv.journal, lease_count(srv.leases)))
			compact_journal();
	}
}

/* ---- the parent ---- */

static pid_t engine_pid;

static void forward_signal(int sig)
{
	if (engine_pid > 0)
		kill(engine_pid, sig);
}

/*
 * Serves the engine with CAP_NET_ADMIN and CAP_KILL alone, and goes down with it: an
 * engine that exits or dies takes the whole server down, never leaving a
 * parent that half works.
 */
/*
 * A --pool overlapping a peer's static allowed-IP subnet is a
 * misconfiguration: WireGuard would route part of the pool to that peer.
 * Static host addresses (/32, /128) inside a pool are fine: they are
 * reserved, never leased.
 */
static struct wgdev *check_pool_overlaps(uint64_t *read_ms)
{
	struct wgdev *dev = NULL;
	char kb[WG_KEY_B64_LEN], pb[WGD_IP_STRLEN], ab[WGD_IP_STRLEN];
	int ret;

	*read_ms = clock_boot_ms();
	/* The view waits until the engine has this read (priv_serve()). */
	ret = wgctl_read_device(srv.wg, &dev);
	if (ret) {
		log_warnx("cannot read WireGuard device %s: %s", srv.ifname, strerror(-ret));
		exit(EXIT_NOT_WG);
	}
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *peer = &dev->peers[i];

		for (size_t j = 0; j < peer->n_allowedips; j++) {
			const struct wgd_ip *a = &peer->allowedips[j];

			if (a->cidr == wgd_ip_bits(a->family))
				continue;
			for (size_t k = 0; k < srv.n_cfg_pools; k++) {
				if (!wgd_ip_overlaps(a, &srv.cfg_pools[k]))
					continue;
				log_warnx("--pool %s overlaps allowed-IP %s of peer %s: shrink the "
					  "pool or that peer's allowed-IPs",
					  fmt_ip(&srv.cfg_pools[k], pb), fmt_ip(a, ab),
					  fmt_key(peer->pubkey, kb));
				wgdev_free(dev);
				exit(EXIT_POOL_OVERLAP);
			}
		}
	}
	/* The parent answers the engine's first read with it. */
	return dev;
}

static int parent_main(int fd)
{
	struct priv_policy policy = {
		.cfg_pools = srv.cfg_pools,
		.n_cfg_pools = srv.n_cfg_pools,
		.ifindex = srv.ifindex,
		.auto_ll = srv.auto_ll,
		.refresh_ms = srv.refresh_ms,
	};
	struct sigaction sa = { .sa_handler = forward_signal };
	struct wgdev *dev = NULL;
	uint64_t read_ms = 0;
	int ret, status;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* CAP_KILL: the engine runs as another user, and stopping it is ours. */
	ret = caps_limit(CAP_BIT(CAP_NET_ADMIN) | CAP_BIT(CAP_KILL));
	/*
	 * The device is read here, while the engine reads the journal: at a
	 * million peers each takes seconds. A configuration this read refutes
	 * ends the server, and the engine with it (PR_SET_PDEATHSIG).
	 */
	if (!ret)
		dev = check_pool_overlaps(&read_ms);
	if (ret) {
		log_warnx("cannot limit the parent's capabilities: %s", strerror(-ret));
		kill(engine_pid, SIGKILL);
	} else {
		ret = priv_serve(fd, srv.wg, &policy, dev, read_ms);
		if (ret) {
			log_warnx("the engine broke the privilege protocol (%s); stopping it",
				  strerror(-ret));
			kill(engine_pid, SIGKILL);
		}
	}
	while (waitpid(engine_pid, &status, 0) < 0)
		if (errno != EINTR)
			fatal("waitpid");
	if (WIFSIGNALED(status)) {
		log_warnx("the engine died of signal %d (%s); stopping the server",
			  WTERMSIG(status), strsignal(WTERMSIG(status)));
		return EXIT_ENGINE;
	}
	if (ret)
		return EXIT_ENGINE;
	return WEXITSTATUS(status);
}

/* Removes IFACE.sock from the control directory when it is a socket: the
 * listener on port 970 is ours, so such a socket there is stale. */
static int remove_stale_socket(void)
{
	struct stat st;

	if (fstatat(srv.ctl_dir_fd, srv.ctl_name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	return unlinkat(srv.ctl_dir_fd, srv.ctl_name, 0) ? -errno : 0;
}

static int split(void)
{
	int sp[2], ret;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp))
		fatal("socketpair");
	engine_pid = fork();
	if (engine_pid < 0)
		fatal("fork");
	if (engine_pid == 0) {
		close(sp[0]);
		engine_main(sp[1]);
	}
	close(sp[1]);
	close(srv.listen_fd);
	close(srv.state_fd);
	close(srv.engine_dir_fd);
	if (srv.ctl_fd >= 0)
		close(srv.ctl_fd);
	ret = parent_main(sp[0]);
	if (srv.ctl_fd >= 0)
		remove_stale_socket();
	return ret;
}

/* ---- start-up checks, with privileges ---- */

/*
 * The state directory is root's, and the engine's files are in its own
 * subdirectory, ENGINE_DIR, which its user alone can write and which is
 * its chroot. Root never follows a name in a directory another user can
 * write: see docs/security.md.
 */

static void __attribute__((noreturn)) state_dir_refused(int ret, const char *why)
{
	if (ret == -EPERM && *why)
		log_warnx("state directory %s", why);
	else
		log_warnx("state directory %s is not writable (%s): create it or give another with "
			  "--state-dir", srv.state_dir, strerror(-ret));
	exit(EXIT_STATE_DIR);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && !strcmp(s + n - m, suffix);
}

/*
 * Servers before ENGINE_DIR gave the whole state directory to the engine's
 * user (nobody, by default). Such a directory, holding nothing but what
 * those servers and the client kept there, is taken back by root; any
 * other directory that is not root's is refused, never taken.
 */
static bool is_old_state_dir(int pathfd, const struct stat *st)
{
	struct passwd pwbuf, *nobody = NULL;
	char buf[1024];
	struct dirent *e;
	bool ours = true;
	DIR *d;
	int fd;

	/* getpwnam() would overwrite what srv.pw points to. */
	if (getpwnam_r("nobody", &pwbuf, buf, sizeof(buf), &nobody))
		nobody = NULL;
	if (st->st_uid != srv.pw->pw_uid && (!nobody || st->st_uid != nobody->pw_uid))
		return false;
	fd = file_dir_reopen(pathfd);
	if (fd < 0)
		return false;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	while (ours && (e = readdir(d))) {
		const char *n = e->d_name;

		ours = !strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, ENGINE_DIR) ||
		       has_suffix(n, ".leases") || has_suffix(n, ".leases.tmp") ||
		       has_suffix(n, ".lease") || has_suffix(n, ".lease.tmp") ||
		       has_suffix(n, ".lock");
	}
	closedir(d);
	return ours;
}

/* Takes an old state directory back for root, by descriptor. */
static void take_state_dir_back(int pathfd, struct stat *st, const char *canon)
{
	uid_t was = st->st_uid;
	int fd = file_dir_reopen(pathfd);

	/* Owner first: then the mode is ours to change, without CAP_FOWNER. */
	if (fd < 0 || fchown(fd, 0, 0) || fchmod(fd, 0755) || fstat(fd, st)) {
		log_warnx("cannot take the state directory %s back from user %u: %s", canon,
			  (unsigned)was, strerror(fd < 0 ? -fd : errno));
		exit(EXIT_STATE_DIR);
	}
	close(fd);
	log_info("took the state directory %s back from user %u: it is root's now, and the "
		 "engine keeps its files in %s/%s", canon, (unsigned)was, canon, ENGINE_DIR);
}

/*
 * A journal at the old place, STATE_DIR/IFACE.leases, moves into the
 * engine's directory. It is looked at through a descriptor that follows no
 * link: a symbolic link, or a hard link to some other file (which has more
 * than one name), is not a journal; it is left where it is, and the server
 * stops. Returns an O_PATH descriptor of the journal to move, or -1.
 */
static int old_journal(const char *canon, const char *name)
{
	struct stat st;
	int fd;

	fd = openat(srv.state_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return -1;
		fatal("cannot look at %s/%s", canon, name);
	}
	if (fstat(fd, &st))
		fatal("cannot look at %s/%s", canon, name);
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		log_warnx("%s/%s is %s, not a lease journal to move into %s/%s; it is left "
			  "untouched: remove it, or move it there yourself", canon, name,
			  S_ISLNK(st.st_mode) ? "a symbolic link" :
			  S_ISREG(st.st_mode) ? "a file with other names (hard links)" :
						"not a regular file", canon, ENGINE_DIR);
		exit(EXIT_JOURNAL);
	}
	if (!fstatat(srv.engine_dir_fd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		log_warnx("%s/%s is left where it is, and not used: %s/%s/%s is the journal", canon,
			  name, canon, ENGINE_DIR, name);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Hands the engine its directory, and its journal there, while root owns
 * the directory. The journal is looked at through a descriptor that
 * follows no link, and is taken only as a regular file of one name: the
 * directory may hold what the engine's user put there before a start that
 * stopped half-way.
 */
static void hand_over_engine_dir(const char *canon, const char *name)
{
	struct stat st;
	int fd = openat(srv.engine_dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	/* Anything but a journal of one name stays as it is: the engine
	 * refuses it with its own message. */
	if (fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	    fchownat(fd, "", srv.pw->pw_uid, srv.pw->pw_gid, AT_EMPTY_PATH))
		fatal("cannot hand %s/%s/%s to user %s", canon, ENGINE_DIR, name, srv.user);
	if (fd >= 0)
		close(fd);
	if (fchmod(srv.engine_dir_fd, 0700) ||
	    fchown(srv.engine_dir_fd, srv.pw->pw_uid, srv.pw->pw_gid) || fsync(srv.engine_dir_fd))
		fatal("cannot hand %s/%s to user %s", canon, ENGINE_DIR, srv.user);
}

static void prepare_state_dir(void)
{
	char why[2 * 4096 + 256], name[IF_NAMESIZE + 16], tmp[IF_NAMESIZE + 16];
	struct file_dir d;
	struct stat st;
	int pfd, old, ret;

	ret = file_dir_walk(srv.state_dir, true, 0755, &d, why, sizeof(why));
	if (ret)
		state_dir_refused(ret, why);
	ret = file_dir_judge(&d.st, d.path, 0, why, sizeof(why));
	if (ret && is_old_state_dir(d.fd, &d.st)) {
		take_state_dir_back(d.fd, &d.st, d.path);
		ret = 0;
	}
	if (ret)
		state_dir_refused(ret, why);
	srv.state_fd = file_dir_reopen(d.fd);
	close(d.fd);
	if (srv.state_fd < 0)
		state_dir_refused(srv.state_fd, "");

	ret = file_dir_open_at(srv.state_fd, ENGINE_DIR, true, 0700, &pfd, &st, NULL);
	if (ret == -ELOOP || ret == -ENOTDIR) {
		log_warnx("state directory %s: %s/%s is not a directory: remove it, the engine's "
			  "directory takes its place", d.path, d.path, ENGINE_DIR);
		exit(EXIT_STATE_DIR);
	} else if (ret) {
		log_warnx("state directory %s: cannot make %s/%s: %s", d.path, d.path, ENGINE_DIR,
			  strerror(-ret));
		exit(EXIT_STATE_DIR);
	}
	/* Root's, when made just now or left half-way by an earlier start. */
	if (st.st_uid != 0 && st.st_uid != srv.pw->pw_uid) {
		log_warnx("state directory %s: %s/%s belongs to user %u, not to %s, who runs the "
			  "engine: give --user to that user, or hand it over (chown -R %s: %s/%s)",
			  d.path, d.path, ENGINE_DIR, (unsigned)st.st_uid, srv.user, srv.user, d.path,
			  ENGINE_DIR);
		exit(EXIT_STATE_DIR);
	}
	if (!(st.st_mode & S_IWUSR) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_warnx("state directory %s: %s/%s has mode %03o: only its user may write it "
			  "(chmod 700 %s/%s)", d.path, d.path, ENGINE_DIR,
			  (unsigned)(st.st_mode & 0777), d.path, ENGINE_DIR);
		exit(EXIT_STATE_DIR);
	}
	srv.engine_dir_fd = file_dir_reopen(pfd);
	close(pfd);
	if (srv.engine_dir_fd < 0)
		fatalx("cannot open %s/%s: %s", d.path, ENGINE_DIR, strerror(-srv.engine_dir_fd));

	snprintf(name, sizeof(name), "%s.leases", srv.ifname);
	snprintf(tmp, sizeof(tmp), "%s.leases.tmp", srv.ifname);
	old = old_journal(d.path, name);
	if (old >= 0) {
		/* Root's for the moment of the move: without CAP_DAC_OVERRIDE,
		 * root cannot write another user's directory. The state
		 * directory is root's now, so the name stays put; renameat()
		 * moves the name itself, never what it might point to. */
		if ((st.st_uid != 0 && fchown(srv.engine_dir_fd, 0, 0)) ||
		    fchownat(old, "", srv.pw->pw_uid, srv.pw->pw_gid, AT_EMPTY_PATH) ||
		    renameat2(srv.state_fd, name, srv.engine_dir_fd, name, RENAME_NOREPLACE) ||
		    fsync(srv.state_fd))
			fatal("cannot move %s/%s into %s/%s", d.path, name, d.path, ENGINE_DIR);
		close(old);
		st.st_uid = 0;
		log_info("moved the lease journal %s/%s to %s/%s/%s, where the engine keeps it now",
			 d.path, name, d.path, ENGINE_DIR, name);
	}
	/* What a compaction cut short there left. */
	unlinkat(srv.state_fd, tmp, 0);
	if (st.st_uid == 0)
		hand_over_engine_dir(d.path, name);
	snprintf(srv.journal_name, sizeof(srv.journal_name), "%s/%s/%s", d.path, ENGINE_DIR,
		 name);
}

/*
 * The control socket, /run/wg-dynamic/IFACE.sock: root's alone (mode 0600),
 * opened here and served by the engine, which inherits it. The directory
 * is checked as the state directory is, so its path leads where its
 * descriptor does: no one else can change an entry in it or above it.
 */
static void open_control_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char why[2 * 4096 + 256];
	mode_t mask;
	int fd, ret;

	srv.ctl_fd = -1;
	snprintf(srv.ctl_path, sizeof(srv.ctl_path), "%s/%s.sock", CONTROL_DIR, srv.ifname);
	snprintf(srv.ctl_name, sizeof(srv.ctl_name), "%s.sock", srv.ifname);
	ret = file_dir_open_secure(CONTROL_DIR, 0, true, &srv.ctl_dir_fd, why, sizeof(why));
	if (ret) {
		if (ret == -EPERM && *why)
			log_warnx("control directory %s; no status queries", why);
		else
			log_warnx("cannot create %s: %s; no status queries", CONTROL_DIR,
				  strerror(-ret));
		return;
	}
	ret = remove_stale_socket();
	if (ret) {
		log_warnx("%s is %s; it is left alone, and there are no status queries", srv.ctl_path,
			  ret == -EEXIST ? "not a socket" : strerror(-ret));
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	memcpy(sa.sun_path, srv.ctl_path, strlen(srv.ctl_path) + 1);
	/* Born 0600: no moment in which another user may connect. */
	mask = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(mask);
	if (ret || listen(fd, 16)) {
		log_warnx("cannot listen on %s: %s; no status queries", srv.ctl_path,
			  strerror(errno));
		close(fd);
		return;
	}
	srv.ctl_fd = fd;
}

/* wg-dynamic-server show IFACE [--json | --prometheus] */
static int show_main(int argc, char *argv[])
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *format = "table", *ifname = NULL;
	char buf[65536];
	size_t len;
	int fd;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			format = "json";
		else if (!strcmp(argv[i], "--prometheus"))
			format = "prometheus";
		else if (!ifname && argv[i][0] != '-')
			ifname = argv[i];
		else
			ifname = NULL, i = argc;
	}
	if (!ifname || strlen(ifname) >= IF_NAMESIZE) {
		fprintf(stderr, "Usage: wg-dynamic-server show IFACE [--json | --prometheus]\n");
		return EXIT_USAGE;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", CONTROL_DIR, ifname);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "wg-dynamic-server: cannot reach the server of %s at %s: %s (is it "
			"running? status needs root)\n", ifname, sa.sun_path, strerror(errno));
		return EXIT_NO_IFACE;
	}
	len = (size_t)snprintf(buf, sizeof(buf), "%s\n", format);
	if (write(fd, buf, len) != (ssize_t)len)
		return EXIT_SYSTEM;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	return ferror(stdout) ? EXIT_SYSTEM : EXIT_OK;
}

/* The wire carries dns_search as printable ASCII without spaces. */
static bool dns_search_ok(const char *s)
{
	size_t len = strlen(s);

	if (!len || len >= WGD_MAX_DNS_SEARCH)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: wg-dynamic-server [options] IFACE\n"
		"       wg-dynamic-server show IFACE [--json | --prometheus]\n"
		"\n"
		"  --pool CIDR         lease addresses from CIDR (repeatable); the interface's\n"
		"                      direct routes are pools as well\n"
		"  --route CIDR        push CIDR to clients (repeatable; default: the pools)\n"
		"  --dns ADDR          push a DNS server (repeatable)\n"
		"  --dns-search DOMAINS  push search domains, separated by commas\n"
		"  --mtu MTU           push an interface MTU\n"
		"  --lease-time SECS   lease time in seconds (default 3600)\n"
		"  --auto-ll           give every peer its derived link-local /128\n"
		"  --state-dir DIR     keep the lease journal DIR/server/IFACE.leases\n"
		"                      (default /var/lib/wg-dynamic)\n"
		"  --user USER         run the unprivileged engine as USER (default wg-dynamic)\n"
		"  --idle-timeout SECS close a connection whose request is not whole by then\n"
		"                      (default 5)\n"
		"  --max-connections N concurrent connections (default 256)\n"
		"  --max-connections-per-peer N  from any one peer (default 4)\n"
		"  --quarantine SECS   hold back a departed peer's addresses this long\n"
		"                      (default: the lease time)\n"
		"  --device-refresh SECS  re-read the device this often (default 30,\n"
		"                      or 3 with --auto-ll)\n"
		"  -v, --verbose       log debug messages\n"
		"  -h, --help          show this help\n"
		"  --version           show the version\n");
}

static void parse_prefix_arg(const char *opt, const char *arg, struct wgd_ip *out)
{
	if (wgd_ip_parse(out, arg, strlen(arg), true)) {
		fprintf(stderr, "wg-dynamic-server: %s %s: not a prefix such as 10.0.0.0/24 or "
			"fd00::/64 (host bits must be zero)\n", opt, arg);
		exit(EXIT_USAGE);
	}
}

int main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "pool", required_argument, NULL, 'p' },
		{ "route", required_argument, NULL, 'r' },
		{ "lease-time", required_argument, NULL, 'l' },
		{ "auto-ll", no_argument, NULL, 'a' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "user", required_argument, NULL, 'u' },
		{ "dns", required_argument, NULL, 'd' },
		{ "dns-search", required_argument, NULL, 'D' },
		{ "mtu", required_argument, NULL, 'm' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "max-connections", required_argument, NULL, 'C' },
		{ "max-connections-per-peer", required_argument, NULL, 'P' },
		{ "quarantine", required_argument, NULL, 'q' },
		{ "device-refresh", required_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct rtnl_link link;
	int verbose = 0, opt, ret;
	long quarantine = -1, refresh = -1;

	if (argc >= 2 && !strcmp(argv[1], "show"))
		return show_main(argc - 1, argv + 1);
	srv.leasetime = 3600;
	srv.state_dir = STATE_DIR;
	srv.user = ENGINE_USER;
	srv.state_fd = srv.engine_dir_fd = srv.ctl_dir_fd = -1;
	srv.idle_timeout_ms = IDLE_TIMEOUT_S * 1000;
	srv.max_conns = MAX_CONNS;
	srv.max_conns_per_peer = MAX_CONNS_PER_PEER;
	srv.commit_tail = &srv.commit_head;
	while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (srv.n_cfg_pools == sizeof(srv.cfg_pools) / sizeof(srv.cfg_pools[0])) {
				fprintf(stderr, "wg-dynamic-server: too many --pool options\n");
				return EXIT_USAGE;
			}
			parse_prefix_arg("--pool", optarg, &srv.cfg_pools[srv.n_cfg_pools++]);
			break;
		case 'r':
			if (srv.n_cfg_routes == WGD_MAX_ROUTES) {
				fprintf(stderr, "wg-dynamic-server: at most %d --route options\n",
					WGD_MAX_ROUTES);
				return EXIT_USAGE;
			}
			parse_prefix_arg("--route", optarg, &srv.cfg_routes[srv.n_cfg_routes++]);
			break;
		case 'l':
			srv.leasetime = (uint32_t)seconds_arg("--lease-time", optarg,
							      WGD_LEASE_MIN_S, 86400 * 365);
			break;
		case 'q':
			quarantine = seconds_arg("--quarantine", optarg, 0, 86400 * 365);
			break;
		case 'R':
			refresh = seconds_arg("--device-refresh", optarg, 1, 86400);
			break;
		case 's':
			srv.state_dir = optarg;
			break;
		case 'u':
			srv.user = optarg;
			break;
		case 'd':
			if (srv.n_dns == WGD_MAX_DNS ||
			    wgd_ip_parse(&srv.dns[srv.n_dns], optarg, strlen(optarg), true) ||
			    srv.dns[srv.n_dns].cidr != wgd_ip_bits(srv.dns[srv.n_dns].family)) {
				fprintf(stderr, "wg-dynamic-server: --dns %s: give one address, at most "
					"%d times\n", optarg, WGD_MAX_DNS);
				return EXIT_USAGE;
			}
			srv.n_dns++;
			break;
		case 'D':
			if (!dns_search_ok(optarg)) {
				fprintf(stderr, "wg-dynamic-server: --dns-search %s: give domains "
					"separated by commas, no spaces, at most %d characters\n", optarg,
					WGD_MAX_DNS_SEARCH - 1);
				return EXIT_USAGE;
			}
			snprintf(srv.dns_search, sizeof(srv.dns_search), "%s", optarg);
			break;
		case 'm':
			srv.mtu = (uint32_t)count_arg("--mtu", optarg, 1280, 65535);
			break;
		case 'I':
			srv.idle_timeout_ms = (uint32_t)seconds_arg("--idle-timeout", optarg, 1, 3600) * 1000;
			break;
		case 'C':
			srv.max_conns = (size_t)count_arg("--max-connections", optarg, 1, 65536);
			break;
		case 'P':
			srv.max_conns_per_peer =
				(size_t)count_arg("--max-connections-per-peer", optarg, 1, 65536);
			break;
		case 'a':
			srv.auto_ll = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("wg-dynamic-server %s\n", WGD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	srv.ifname = argv[optind];
	srv.quarantine = quarantine >= 0 ? (uint32_t)quarantine : srv.leasetime;
	srv.refresh_ms = refresh > 0 ? (uint32_t)refresh * 1000 :
		srv.auto_ll ? REFRESH_PERIOD_AUTO_LL_MS : REFRESH_PERIOD_MS;
	log_init("wg-dynamic-server", false, verbose);
	if (sodium_init() < 0)
		fatalx("cannot initialise libsodium");
	signal(SIGPIPE, SIG_IGN);

	if (strlen(srv.ifname) >= IF_NAMESIZE) {
		log_warnx("%s: interface names are at most %d characters", srv.ifname,
			  IF_NAMESIZE - 1);
		return EXIT_USAGE;
	}
	ret = rtnl_open(&srv.rt);
	if (ret)
		fatalx("cannot open rtnetlink: %s", strerror(-ret));
	ret = rtnl_link_get(srv.rt, srv.ifname, &link);
	if (ret == -ENODEV) {
		log_warnx("no interface %s: create it first (ip link add %s type wireguard, or "
			  "start wireguard-go %s)", srv.ifname, srv.ifname, srv.ifname);
		return EXIT_NO_IFACE;
	} else if (ret) {
		fatalx("cannot read interface %s: %s", srv.ifname, strerror(-ret));
	}
	srv.ifindex = link.ifindex;

	ret = wgctl_open(&srv.wg, srv.ifname);
	if (ret) {
		log_warnx("%s is not a WireGuard interface (no UAPI socket in %s and not kernel "
			  "WireGuard): run the server on the hub's WireGuard interface",
			  srv.ifname, wgctl_uapi_dir);
		return EXIT_NOT_WG;
	}

	srv.pw = getpwnam(srv.user);
	if (!srv.pw) {
		log_warnx("no user %s to run the engine as: create it (useradd --system "
			  "--no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "
			  "--user-group %s) or name another with --user", srv.user, srv.user);
		return EXIT_USER;
	}
	prepare_state_dir();
	disable_iface_forwarding();
	ensure_server_ll();
	srv.listen_fd = open_listener();
	if (srv.listen_fd < 0) {
		if (srv.listen_fd == -EADDRINUSE)
			log_warnx("port 970 on %s is in use: stop the other wg-dynamic-server there "
				  "first", srv.ifname);
		else
			log_warnx("cannot listen on [fe80::%%%s]:970: %s", srv.ifname,
				  strerror(-srv.listen_fd));
		return EXIT_SOCKET;
	}
	open_control_socket();
	log_info("%s is %s WireGuard", srv.ifname, wgctl_backend_name(srv.wg));
	return split();
}
