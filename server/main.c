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
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "../common/clock.h"
#include "../common/key.h"
#include "../common/log.h"
#include "../common/rtnl.h"
#include "../common/wgdev.h"
#include "../protocol/proto.h"
#include "lease.h"
#include "peers.h"
#include "pool.h"

#define MAX_CONNS 256            /* concurrent connections, all peers */
#define MAX_CONNS_PER_PEER 4
#define IDLE_TIMEOUT_MS 5000     /* a request must arrive whole within this */
#define REFRESH_MIN_MS 1000      /* device re-reads on lookup misses, at most */
#define REFRESH_PERIOD_MS 30000  /* periodic re-read: peers come and go */
#define REFRESH_PERIOD_AUTO_LL_MS 3000

enum exit_status {
	EXIT_OK = 0,
	EXIT_USAGE = 64,
	EXIT_NO_IFACE = 65,
	EXIT_NOT_WG = 66,
	EXIT_NO_POOL = 67,
	EXIT_SOCKET = 68,
	EXIT_SYSTEM = 70,
	EXIT_IFACE_GONE = 71,
};

struct conn {
	int fd;
	struct in6_addr ll;
	uint8_t pubkey[WG_KEY_LEN];
	uint64_t deadline_ms;
	bool responding;              /* request answered; flushing out[] */
	size_t out_len, out_off;
	char out[WGD_MAX_MESSAGE];
	struct wgd_parser parser;
	struct conn *prev, *next;
};

struct server {
	const char *ifname;
	uint32_t ifindex;
	uint32_t leasetime;
	bool auto_ll;

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

	int epfd, listen_fd, sig_fd;
	uint64_t last_refresh_ms;
	struct conn *conns;
	size_t n_conns;
};

static struct server srv;

static int epoll_add(int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(srv.epfd, EPOLL_CTL_ADD, fd, &ev);
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

/* ---- device state ---- */

static int apply_change(const uint8_t *pubkey, const struct lease_change *c)
{
	if (!c->n_add && !c->n_del)
		return 0;
	return wgctl_allowedips_update(srv.wg, pubkey, c->add, c->n_add, c->del, c->n_del);
}

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
		ret = wgctl_allowedips_update(srv.wg, peer->pubkey, &ll, 1, NULL, 0);
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

static void release_lease(struct lease *l, const char *why)
{
	struct lease_change c;
	uint8_t pubkey[WG_KEY_LEN];
	char kb[WG_KEY_B64_LEN];
	int ret;

	memcpy(pubkey, l->pubkey, WG_KEY_LEN);
	lease_release(srv.leases, l, &c);
	ret = apply_change(pubkey, &c);
	if (ret && ret != -ENOENT)
		log_warnx("peer %s: cannot remove lease addresses: %s", fmt_key(pubkey, kb),
			  strerror(-ret));
	log_info("peer %s: lease %s", fmt_key(pubkey, kb), why);
}

/* Re-reads the device: the peer index, reservations, derived link-locals. */
static int refresh_device(void)
{
	struct wgdev *dev = NULL;
	struct peer_index *pi;
	int ret;

	srv.last_refresh_ms = clock_boot_ms();
	ret = wgctl_get_device(srv.wg, &dev);
	if (ret)
		return ret;
	if (srv.auto_ll)
		ensure_auto_ll(dev);
	pi = peer_index_build(dev);
	if (!pi) {
		wgdev_free(dev);
		return -ENOMEM;
	}
	peer_index_free(srv.peers);
	srv.peers = pi;
	rebuild_reservations(dev);
	wgdev_free(dev);
	log_debug("device read: %zu peers", peer_index_count(pi));
	return 0;
}

/* ---- pools ---- */

static bool is_pool_route(const struct wgd_ip *dst)
{
	if (dst->family == AF_INET6 && (wgd_ip_is_linklocal6(dst) || dst->bytes[0] == 0xff))
		return false;
	return dst->cidr > 0;
}

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

static void load_route_pools(void)
{
	struct wgd_ip *routes = NULL;
	size_t n = 0;
	int ret = rtnl_route_list(srv.rt, srv.ifindex, AF_UNSPEC, &routes, &n);

	if (ret) {
		log_warnx("cannot list the routes of %s: %s", srv.ifname, strerror(-ret));
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (is_pool_route(&routes[i]))
			pool_add(&routes[i], "route");
	free(routes);
}

/* ---- the request path ---- */

static void conn_close(struct conn *c)
{
	epoll_ctl(srv.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv.n_conns--;
	free(c);
}

/* Writes what is pending; closes once all is out. */
static void conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

				epoll_ctl(srv.epfd, EPOLL_CTL_MOD, c->fd, &ev);
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
	c->responding = true;
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

static void add_routes(struct wgd_msg *resp)
{
	if (srv.n_cfg_routes) {
		memcpy(resp->routes, srv.cfg_routes, srv.n_cfg_routes * sizeof(resp->routes[0]));
		resp->n_routes = srv.n_cfg_routes;
		return;
	}
	/* Without --route, every pool's prefix is pushed. */
	for (size_t i = 0; i < poolset_count(srv.pools) && resp->n_routes < WGD_MAX_ROUTES; i++)
		resp->routes[resp->n_routes++] = *poolset_prefix(srv.pools, i);
}

static void handle_request(struct conn *c, const struct wgd_msg *req)
{
	struct lease_clock now = { .real = clock_real_s(), .boot = clock_boot_ms() / 1000 };
	struct lease_change change;
	struct wgd_msg resp;
	char kb[WG_KEY_B64_LEN], b4[WGD_IP_STRLEN] = "-", b6[WGD_IP_STRLEN] = "-";
	const struct lease *before = lease_find(srv.leases, c->pubkey);
	bool renewal = before != NULL;
	int ret;

	memset(&resp, 0, sizeof(resp));
	ret = lease_request(srv.leases, c->pubkey, &c->ll, req, srv.leasetime, &now, &resp,
			    &change);
	if (ret) {
		log_warnx("peer %s: cannot record a lease: %s", fmt_key(c->pubkey, kb),
			  strerror(-ret));
		conn_respond_error(c, WGD_E_UNAVAILABLE);
		return;
	}
	ret = apply_change(c->pubkey, &change);
	if (ret) {
		log_warnx("peer %s: cannot update its allowed-IPs: %s", fmt_key(c->pubkey, kb),
			  strerror(-ret));
		lease_request_undo(srv.leases, c->pubkey);
		conn_respond_error(c, WGD_E_UNAVAILABLE);
		return;
	}

	if (resp.has_ip4 || resp.has_ip6)
		add_routes(&resp);
	if (resp.has_ip4)
		fmt_ip(&resp.ip4, b4);
	if (resp.has_ip6)
		fmt_ip(&resp.ip6, b6);
	if (!resp.has_ip4 && !resp.has_ip6 && !req->has_ip4 && !req->has_ip6)
		log_info("peer %s: released", fmt_key(c->pubkey, kb));
	else if (renewal && !change.n_add && !change.n_del)
		log_info("peer %s: renewed ip4 %s ip6 %s for %us", fmt_key(c->pubkey, kb), b4, b6,
			 srv.leasetime);
	else
		log_info("peer %s: granted ip4 %s ip6 %s for %us", fmt_key(c->pubkey, kb), b4, b6,
			 srv.leasetime);
	if (resp.err)
		log_info("peer %s: %s", fmt_key(c->pubkey, kb), resp.errmsg);
	conn_respond(c, &resp);
}

static void conn_read(struct conn *c)
{
	char buf[4096];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				conn_close(c);
			return;
		}
		if (n == 0) {
			conn_close(c); /* closed before a whole request */
			return;
		}

		ssize_t ret = wgd_parse(&c->parser, buf, (size_t)n);
		if (ret < 0) {
			char ab[INET6_ADDRSTRLEN];

			log_info("bad request from %s: %s",
				 inet_ntop(AF_INET6, &c->ll, ab, sizeof(ab)), c->parser.error);
			conn_respond_error(c, (enum wgd_error)-ret);
			return;
		}
		if (ret > 0) {
			/* One request per connection: what follows it is not read. */
			handle_request(c, &c->parser.msg);
			return;
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

static void refuse(int fd, const struct sockaddr_in6 *sa, const char *why)
{
	char ab[INET6_ADDRSTRLEN];

	log_info("refused connection from [%s]:%u: %s",
		 inet_ntop(AF_INET6, &sa->sin6_addr, ab, sizeof(ab)), ntohs(sa->sin6_port), why);
	close(fd);
}

static void accept_conns(void)
{
	for (;;) {
		struct sockaddr_in6 sa;
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
		if (sa.sin6_family != AF_INET6 || ntohs(sa.sin6_port) != WGD_PORT) {
			refuse(fd, &sa, "source port is not 970");
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
			refuse(fd, &sa, "no peer has this link-local /128 in its allowed-IPs");
			continue;
		}
		if (srv.n_conns >= MAX_CONNS) {
			refuse(fd, &sa, "too many connections");
			continue;
		}
		if (conns_of_peer(pubkey) >= MAX_CONNS_PER_PEER) {
			refuse(fd, &sa, "too many connections from this peer");
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
		c->deadline_ms = clock_boot_ms() + IDLE_TIMEOUT_MS;
		wgd_parser_init(&c->parser, WGD_PARSE_REQUEST);
		if (epoll_add(fd, EPOLLIN, c)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = srv.conns;
		if (srv.conns)
			srv.conns->prev = c;
		srv.conns = c;
		srv.n_conns++;
		conn_read(c);
	}
}

/* ---- timers ---- */

static void expire_leases(void)
{
	uint64_t now = clock_boot_ms() / 1000;
	struct lease *l;

	while ((l = lease_first_expiry(srv.leases)) && l->expires <= now)
		release_lease(l, "expired");
}

static void expire_conns(void)
{
	uint64_t now = clock_boot_ms();
	struct conn *c = srv.conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->deadline_ms <= now) {
			char ab[INET6_ADDRSTRLEN];

			log_info("closing idle connection from %s",
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
	for (size_t i = 0; i < d.n; i++)
		release_lease(lease_find(srv.leases, d.keys[i]), "dropped: the peer is gone");
	free(d.keys);
}

static int next_timeout_ms(void)
{
	uint64_t now = clock_boot_ms(), next = srv.last_refresh_ms +
		(srv.auto_ll ? REFRESH_PERIOD_AUTO_LL_MS : REFRESH_PERIOD_MS);
	const struct lease *l = lease_first_expiry(srv.leases);

	if (l && l->expires * 1000 < next)
		next = l->expires * 1000;
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
		    is_pool_route(&ev->ip))
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
	case RTNL_EV_OVERRUN:
		load_route_pools();
		break;
	default:
		break;
	}
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
	if (listen(fd, 128)) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: wg-dynamic-server [options] IFACE\n"
		"\n"
		"  --pool CIDR         lease addresses from CIDR (repeatable); the interface's\n"
		"                      direct routes are pools as well\n"
		"  --route CIDR        push CIDR to clients (repeatable; default: the pools)\n"
		"  --lease-time SECS   lease time in seconds (default 3600)\n"
		"  --auto-ll           give every peer its derived link-local /128\n"
		"  -v, --verbose       log debug messages\n"
		"  -h, --help          show this help\n");
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
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rtnl_link link;
	int verbose = 0, opt, ret;
	char *end;
	unsigned long lt;

	srv.leasetime = 3600;
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
			errno = 0;
			lt = strtoul(optarg, &end, 10);
			if (errno || *end || optarg[0] < '0' || optarg[0] > '9' || lt < 2 ||
			    lt > 86400 * 365) {
				fprintf(stderr, "wg-dynamic-server: --lease-time %s: give whole "
					"seconds from 2 to 31536000\n", optarg);
				return EXIT_USAGE;
			}
			srv.leasetime = (uint32_t)lt;
			break;
		case 'a':
			srv.auto_ll = true;
			break;
		case 'v':
			verbose++;
			break;
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

	srv.pools = poolset_new();
	srv.leases = srv.pools ? lease_table_new(srv.pools) : NULL;
	if (!srv.leases)
		fatalx("out of memory");
	for (size_t i = 0; i < srv.n_cfg_pools; i++)
		pool_add(&srv.cfg_pools[i], "--pool");

	ret = rtnl_monitor_open(&srv.mon, RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE);
	if (ret)
		fatalx("cannot watch rtnetlink: %s", strerror(-ret));
	load_route_pools();
	if (!poolset_count(srv.pools)) {
		log_warnx("no pool to lease from: give --pool CIDR, or add an address with a "
			  "prefix to %s (ip addr add 10.0.0.1/24 dev %s)", srv.ifname, srv.ifname);
		return EXIT_NO_POOL;
	}

	ret = refresh_device();
	if (ret)
		fatalx("cannot read WireGuard device %s: %s", srv.ifname, strerror(-ret));
	if (!peer_index_count(srv.peers))
		log_warnx("%s has no peers yet; waiting for some", srv.ifname);

	disable_iface_forwarding();
	ensure_server_ll();
	srv.listen_fd = open_listener();
	if (srv.listen_fd < 0) {
		if (srv.listen_fd == -EADDRINUSE)
			log_warnx("port 970 on %s is in use: is another wg-dynamic-server running "
				  "there?", srv.ifname);
		else
			log_warnx("cannot listen on [fe80::%%%s]:970: %s", srv.ifname,
				  strerror(-srv.listen_fd));
		return EXIT_SOCKET;
	}

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
	epoll_add(srv.sig_fd, EPOLLIN, &srv.sig_fd);
	epoll_add(rtnl_monitor_fd(srv.mon), EPOLLIN, srv.mon);
	log_info("serving %s (%s WireGuard) on [fe80::%%%s]:970, lease time %us", srv.ifname,
		 wgctl_backend_name(srv.wg), srv.ifname, srv.leasetime);

	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(srv.epfd, evs, 64, next_timeout_ms());

		if (n < 0 && errno != EINTR)
			fatal("epoll_wait");
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &srv.listen_fd) {
				accept_conns();
			} else if (p == &srv.sig_fd) {
				struct signalfd_siginfo si;

				if (read(srv.sig_fd, &si, sizeof(si)) == sizeof(si) &&
				    si.ssi_signo != SIGHUP) {
					log_info("exiting on signal %u; leases stay on the device",
						 si.ssi_signo);
					return EXIT_OK;
				}
			} else if (p == srv.mon) {
				ret = rtnl_monitor_read(srv.mon, on_rtnl_event, NULL);
				if (ret)
					log_warnx("rtnetlink: %s", strerror(-ret));
			} else {
				struct conn *c = p;

				if (c->responding)
					conn_flush(c);
				else
					conn_read(c);
			}
		}
		expire_leases();
		expire_conns();
		uint64_t period = srv.auto_ll ? REFRESH_PERIOD_AUTO_LL_MS : REFRESH_PERIOD_MS;
		if (clock_boot_ms() - srv.last_refresh_ms >= period) {
			ret = refresh_device();
			if (ret)
				log_warnx("cannot read %s: %s", srv.ifname, strerror(-ret));
			else
				drop_departed_peers();
		}
	}
}
