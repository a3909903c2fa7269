// SPDX-License-Identifier: MIT
/*
 * wg-dynamic-client: asks the hub behind a WireGuard interface for addresses
 * and keeps them configured for as long as the lease lives.
 *
 * States, in the manner of a DHCP client (RFC 2131, 4.4): without a lease
 * it asks for any address (INIT); once bound it renews at about half the
 * lease time; a failed renewal is retried with exponential backoff and
 * jitter until the lease expires, when everything it configured is removed
 * and it starts over.
 */

#include <arpa/inet.h>
#include <linux/capability.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "../common/caps.h"
#include "../common/clock.h"
#include "../common/file.h"
#include "../common/key.h"
#include "../common/log.h"
#include "../common/notify.h"
#include "../common/rng.h"
#include "../common/rtnl.h"
#include "../common/wgdev.h"
#include "../protocol/proto.h"
#include "hook.h"

#define REQUEST_TIMEOUT_MS 3000
#define RELEASE_TIMEOUT_MS 1500
/* Retrying a failed renewal; without a lease, see schedule_retry(). */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 16000
#define INIT_BACKOFF_MIN_MS 250
/* Without a lease, wait 1/N of the time spent failing so far. */
#define INIT_BACKOFF_DIVISOR 4
/* leasestart is believed only this close to our own clock. */
#define CLOCK_SKEW_MAX_S 15

enum exit_status {
	EXIT_OK = 0,
	EXIT_USAGE = 64,
	EXIT_NO_IFACE = 65,
	EXIT_NOT_WG = 66,
	EXIT_NO_HUB = 67,
	EXIT_NO_LL = 68,
	EXIT_STATE_DIR = 69,
	EXIT_SYSTEM = 70,
	EXIT_NO_PEERS = 71,
	EXIT_RUNNING = 72,
};

struct lease_state {
	bool bound;
	bool has_ip4, has_ip6;
	struct wgd_ip ip4, ip6;
	size_t n_routes;
	struct wgd_ip routes[WGD_MAX_ROUTES];
	/* Routes we put into the hub peer's allowed-IPs, to take back out. */
	size_t n_hub_routes;
	struct wgd_ip hub_routes[WGD_MAX_ROUTES];
	uint32_t leasestart, leasetime;
	uint64_t expires_ms;          /* CLOCK_BOOTTIME */
	size_t n_dns;
	struct wgd_ip dns[WGD_MAX_DNS];
	char dns_search[WGD_MAX_DNS_SEARCH];
	bool dns_applied;             /* handed to resolvconf */
};

struct client {
	const char *ifname;
	uint32_t ifindex;
	bool link_up;
	struct rtnl *rt;
	struct rtnl_monitor *mon;
	struct wgctl *wg;
	uint8_t hub_key[WG_KEY_LEN];
	bool has_pubkey;
	uint8_t pubkey[WG_KEY_LEN];   /* ours, to derive the link-local from */
	struct in6_addr ll;
	bool added_server_route;      /* fe80::/128, removed again at exit */
	int sig_fd;
	int pending_signal;

	const char *state_dir;
	char state_file[IF_NAMESIZE + 8];
	const char *script;
	unsigned script_timeout;
	bool no_dns, no_mtu;
	unsigned failures;            /* requests failed since the last answer */
	/* Addresses to ask for without a lease: the last ones we held. */
	bool has_hint4, has_hint6;
	struct wgd_ip hint4, hint6;

	struct lease_state lease;
	uint64_t next_try_ms;
	uint32_t backoff_ms;          /* the last wait; 0 before a failure */
	uint64_t failing_since_ms;    /* start of the first failed request in a row */
};

static struct client cl;

static void lease_save(bool ended);

static const char *fmt_ip(const struct wgd_ip *ip, char buf[WGD_IP_STRLEN])
{
	return wgd_ip_format_addr(ip, buf, WGD_IP_STRLEN);
}

/* ---- talking to the server ---- */

/* Waits for fd to become ready for events, or for a signal. Returns 1 when
 * ready, 0 on timeout, -EINTR when a signal arrived (kept in pending_signal). */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = fd, .events = events },
			{ .fd = cl.sig_fd, .events = POLLIN },
		};
		uint64_t now = clock_boot_ms();
		int n;

		if (now >= deadline_ms)
			return 0;
		n = poll(pfd, 2, (int)(deadline_ms - now));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(cl.sig_fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGHUP) {
				cl.pending_signal = (int)si.ssi_signo;
				return -EINTR;
			}
		}
		if (pfd[0].revents)
			return 1;
	}
}

/*
 * One request over one TCP connection from [ll]:970 to [fe80::]:970. The
 * server closes first; we then close abortively, so that no TIME_WAIT is
 * left on either side to block the next request between the same
 * addresses and ports.
 */
static int exchange(const struct wgd_msg *req, struct wgd_msg *resp, uint64_t timeout_ms)
{
	struct sockaddr_in6 src = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_addr = cl.ll,
		.sin6_scope_id = cl.ifindex,
	};
	struct sockaddr_in6 dst = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_addr = { .s6_addr = { 0xfe, 0x80 } },
		.sin6_scope_id = cl.ifindex,
	};
	uint64_t deadline = clock_boot_ms() + timeout_ms;
	struct linger abortive = { .l_onoff = 1, .l_linger = 0 };
	static struct wgd_parser parser;
	char buf[WGD_MAX_MESSAGE];
	ssize_t len, n;
	size_t off = 0;
	int fd, one = 1, ret, err = 0;
	socklen_t errlen = sizeof(err);

	len = wgd_serialize_request(req, buf, sizeof(buf));
	if (len < 0)
		return (int)len;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src))) {
		ret = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS) {
		ret = -errno;
		goto out;
	}
	ret = wait_fd(fd, POLLOUT, deadline);
	if (ret <= 0) {
		ret = ret ?: -ETIMEDOUT;
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) || err) {
		ret = -(err ?: errno);
		goto out;
	}

	while (off < (size_t)len) {
		n = send(fd, buf + off, (size_t)len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN) {
				ret = wait_fd(fd, POLLOUT, deadline);
				if (ret <= 0) {
					ret = ret ?: -ETIMEDOUT;
					goto out;
				}
				continue;
			}
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		off += (size_t)n;
	}

	wgd_parser_init(&parser, WGD_PARSE_RESPONSE);
	for (;;) {
		ret = wait_fd(fd, POLLIN, deadline);
		if (ret <= 0) {
			ret = ret ?: -ETIMEDOUT;
			goto out;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (n == 0) {
			log_warnx("the server closed the connection before answering");
			ret = -ECONNRESET;
			goto out;
		}
		ssize_t p = wgd_parse(&parser, buf, (size_t)n);
		if (p < 0) {
			log_warnx("bad response from the server: %s", parser.error);
			ret = -EBADMSG;
			goto out;
		}
		if (p > 0) {
			*resp = parser.msg;
			ret = 0;
			goto out;
		}
	}
out:
	close(fd);
	return ret;
}

/* ---- configuring the interface ---- */

static bool route_in(const struct wgd_ip *r, const struct wgd_ip *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (wgd_ip_equal(r, &list[i]))
			return true;
	return false;
}

static void addr_apply(bool had, const struct wgd_ip *old, bool has, const struct wgd_ip *new,
		       uint32_t lifetime)
{
	char b[WGD_IP_STRLEN];
	int ret;

	if (had && !(has && wgd_ip_equal(old, new))) {
		ret = rtnl_addr_del(cl.rt, cl.ifindex, old);
		if (ret)
			log_warnx("cannot remove %s from %s: %s", fmt_ip(old, b), cl.ifname,
				  strerror(-ret));
	}
	if (has) {
		/* Adding again refreshes the lifetimes: if this process dies,
		 * the kernel drops the address when the lease ends. */
		ret = rtnl_addr_add(cl.rt, cl.ifindex, new, lifetime, lifetime);
		if (ret)
			log_warnx("cannot add %s to %s: %s", fmt_ip(new, b), cl.ifname,
				  strerror(-ret));
	}
}

/*
 * Pushed routes go on the interface and into the hub peer's allowed-IPs, so
 * that a hub configured with only fe80::/128 carries them. Entries the hub
 * peer already had are not ours: they are neither added nor later removed.
 */
static void routes_apply(struct lease_state *ls, const struct wgd_ip *routes, size_t n)
{
	struct wgd_ip add[WGD_MAX_ROUTES], del[WGD_MAX_ROUTES];
	size_t n_add = 0, n_del = 0, kept = 0;
	struct wgdev *dev = NULL;
	struct wgdev_peer *hub = NULL;
	char b[WGD_IP_STRLEN];
	int ret;

	for (size_t i = 0; i < ls->n_routes; i++) {
		if (route_in(&ls->routes[i], routes, n))
			continue;
		ret = rtnl_route_del(cl.rt, cl.ifindex, &ls->routes[i]);
		if (ret)
			log_warnx("cannot remove route %s: %s", fmt_ip(&ls->routes[i], b),
				  strerror(-ret));
	}
	for (size_t i = 0; i < n; i++) {
		ret = rtnl_route_add(cl.rt, cl.ifindex, &routes[i]);
		if (ret)
			log_warnx("cannot add route %s: %s",
				  wgd_ip_format(&routes[i], b, sizeof(b)), strerror(-ret));
	}

	for (size_t i = 0; i < ls->n_hub_routes; i++) {
		if (route_in(&ls->hub_routes[i], routes, n))
			ls->hub_routes[kept++] = ls->hub_routes[i];
		else
			del[n_del++] = ls->hub_routes[i];
	}
	ls->n_hub_routes = kept;
	for (size_t i = 0; i < n; i++)
		if (!route_in(&routes[i], ls->hub_routes, ls->n_hub_routes))
			add[n_add++] = routes[i];

	if (n_add && !wgctl_get_device(cl.wg, &dev))
		hub = wgdev_find_peer(dev, cl.hub_key);
	if (hub) {
		size_t n_new = 0;

		for (size_t i = 0; i < n_add; i++)
			if (!route_in(&add[i], hub->allowedips, hub->n_allowedips))
				add[n_new++] = add[i];
		n_add = n_new;
	}
	wgdev_free(dev);

	if (n_add || n_del) {
		ret = wgctl_allowedips_update(cl.wg, cl.hub_key, add, n_add, del, n_del);
		if (ret)
			log_warnx("cannot update the hub peer's allowed-IPs: %s", strerror(-ret));
		else
			for (size_t i = 0; i < n_add; i++)
				ls->hub_routes[ls->n_hub_routes++] = add[i];
	}
	if (n)
		memcpy(ls->routes, routes, n * sizeof(routes[0]));
	ls->n_routes = n;
}

/* ---- hooks, DNS and MTU ---- */

#define RESOLVCONF_TIMEOUT_S 5

static void run_hook(const char *reason, const struct lease_state *old,
		     const struct lease_state *new)
{
	struct hook_env env = {
		.reason = reason,
		.interface = cl.ifname,
		.new_ip4 = new && new->has_ip4 ? &new->ip4 : NULL,
		.new_ip6 = new && new->has_ip6 ? &new->ip6 : NULL,
		.old_ip4 = old && old->has_ip4 ? &old->ip4 : NULL,
		.old_ip6 = old && old->has_ip6 ? &old->ip6 : NULL,
	};
	const struct lease_state *cur = new ? new : old;
	pid_t pid;

	if (!cl.script)
		return;
	if (cur) {
		env.routes = cur->routes;
		env.n_routes = cur->n_routes;
		env.lease_time = cur->leasetime;
		env.dns = cur->dns;
		env.n_dns = cur->n_dns;
		env.dns_search = cur->dns_search;
	}
	pid = hook_run(cl.script, &env, cl.script_timeout);
	if (pid < 0)
		log_warnx("cannot run %s: %s", cl.script, strerror((int)-pid));
}

/* resolvconf from $PATH, as wg-quick finds it. */
static const char *resolvconf_path(void)
{
	static char found[4096];
	const char *path = getenv("PATH");
	char dirs[4096], *dir, *save = NULL;

	snprintf(dirs, sizeof(dirs), "%s", path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	for (dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		if ((size_t)snprintf(found, sizeof(found), "%s/resolvconf", dir) < sizeof(found) &&
		    !access(found, X_OK))
			return found;
	}
	return NULL;
}

/* DNS as wg-quick gives it: one resolvconf record named after the interface. */
static void dns_apply(struct lease_state *ls)
{
	const char *rc = resolvconf_path();
	char input[WGD_MAX_DNS * (INET6_ADDRSTRLEN + 12) + WGD_MAX_DNS_SEARCH + 16];
	char a[WGD_IP_STRLEN], *search, *save = NULL;
	size_t off = 0;
	int ret;

	if (cl.no_dns || (!ls->n_dns && !ls->dns_search[0]))
		return;
	if (!rc) {
		log_info("the server pushes DNS, but resolvconf is not installed; not applied");
		return;
	}
	for (size_t i = 0; i < ls->n_dns; i++)
		off += (size_t)snprintf(input + off, sizeof(input) - off, "nameserver %s\n",
					wgd_ip_format_addr(&ls->dns[i], a, sizeof(a)));
	if (ls->dns_search[0]) {
		char domains[WGD_MAX_DNS_SEARCH];

		snprintf(domains, sizeof(domains), "%s", ls->dns_search);
		off += (size_t)snprintf(input + off, sizeof(input) - off, "search");
		for (search = strtok_r(domains, ",", &save); search; search = strtok_r(NULL, ",", &save))
			off += (size_t)snprintf(input + off, sizeof(input) - off, " %s", search);
		snprintf(input + off, sizeof(input) - off, "\n");
	}
	char *argv[] = { (char *)rc, "-a", (char *)cl.ifname, "-m", "0", "-x", NULL };
	ret = hook_run_wait(argv, input, RESOLVCONF_TIMEOUT_S);
	if (ret)
		log_warnx("resolvconf -a %s failed (%d)", cl.ifname, ret);
	else
		ls->dns_applied = true;
}

static void dns_remove(struct lease_state *ls)
{
	const char *rc = resolvconf_path();

	if (!ls->dns_applied || !rc)
		return;
	char *argv[] = { (char *)rc, "-d", (char *)cl.ifname, "-f", NULL };
	if (hook_run_wait(argv, NULL, RESOLVCONF_TIMEOUT_S))
		log_warnx("resolvconf -d %s failed", cl.ifname);
	ls->dns_applied = false;
}

static void mtu_apply(uint32_t mtu)
{
	int ret;

	if (!mtu || cl.no_mtu)
		return;
	ret = rtnl_link_set_mtu(cl.rt, cl.ifindex, mtu);
	if (ret)
		log_warnx("cannot set the MTU of %s to %u: %s", cl.ifname, mtu, strerror(-ret));
}

/* Removes everything the lease put in place. */
static void lease_drop(const char *reason)
{
	struct lease_state *ls = &cl.lease;

	if (ls->bound) {
		lease_save(true);
		run_hook(reason, ls, NULL);
	}
	dns_remove(ls);
	addr_apply(ls->has_ip4, &ls->ip4, false, NULL, 0);
	addr_apply(ls->has_ip6, &ls->ip6, false, NULL, 0);
	routes_apply(ls, NULL, 0);
	memset(ls, 0, sizeof(*ls));
}

static uint64_t jitter(uint64_t ms, unsigned percent)
{
	uint64_t spread = ms * percent / 100;

	return ms - spread + rng_below(2 * spread + 1);
}

/*
 * When to try again after a failed request that started at started_ms.
 *
 * Bound, the client has its addresses meanwhile: it waits 0.5 s, doubling
 * to 16 s, never past the end of the lease.
 *
 * Without a lease it has nothing until the hub answers, and the usual
 * reason for no answer is a server that is starting or restarting (the
 * hub's kernel then refuses port 970 through the tunnel at once). Doubling
 * makes each wait as long as all the time before it, so a client could sit
 * idle for about as long again as the server was away: started 3 s before
 * the server, its next try could come 4 s after it or more. Instead it
 * waits a quarter of the time it has been failing, from 0.25 s up to 16 s.
 * A server that appears is then asked within about a third of its absence
 * (jitter included). This is still exponential backoff, by 1.25 instead of
 * 2, so a hub that stays away sees each client slow down to one request
 * per 16 s after about a minute, as before; the 25% jitter keeps a crowd
 * of clients from asking in step when it comes back.
 */
static void schedule_retry(uint64_t started_ms)
{
	uint64_t now = clock_boot_ms(), wait;

	cl.failures++;
	if (!cl.backoff_ms)
		cl.failing_since_ms = started_ms;
	if (cl.lease.bound) {
		wait = cl.backoff_ms ? (uint64_t)cl.backoff_ms * 2 : BACKOFF_MIN_MS;
	} else {
		wait = (now - cl.failing_since_ms) / INIT_BACKOFF_DIVISOR;
		if (wait < INIT_BACKOFF_MIN_MS)
			wait = INIT_BACKOFF_MIN_MS;
	}
	if (wait > BACKOFF_MAX_MS)
		wait = BACKOFF_MAX_MS;
	cl.backoff_ms = (uint32_t)wait;
	cl.next_try_ms = now + jitter(wait, 25);
	if (cl.lease.bound && cl.next_try_ms > cl.lease.expires_ms)
		cl.next_try_ms = cl.lease.expires_ms;
}

static void lease_accept(const struct wgd_msg *req, const struct wgd_msg *resp)
{
	struct lease_state *ls = &cl.lease;
	uint64_t now_ms = clock_boot_ms();
	uint32_t now_real = clock_real_s(), lifetime = resp->leasetime;
	char b4[WGD_IP_STRLEN] = "-", b6[WGD_IP_STRLEN] = "-";
	bool same;

	/* The server's clock places the lease; believe it only when it agrees
	 * with ours, else count from now. */
	if (resp->leasestart <= now_real && now_real - resp->leasestart <= CLOCK_SKEW_MAX_S)
		lifetime = resp->leasetime > now_real - resp->leasestart ?
				   resp->leasetime - (now_real - resp->leasestart) : 0;
	else if (resp->leasestart > now_real && resp->leasestart - now_real > CLOCK_SKEW_MAX_S)
		log_debug("leasestart %u is %us from our clock; counting from now",
			  resp->leasestart, resp->leasestart - now_real);

	if (resp->err) {
		const char *why = resp->errmsg[0] ? resp->errmsg : wgd_error_text(resp->err);

		if (req->has_ip4 && !resp->has_ip4)
			log_warnx("no IPv4 address from the server: %s", why ?: "unknown error");
		if (req->has_ip6 && !resp->has_ip6)
			log_warnx("no IPv6 address from the server: %s", why ?: "unknown error");
	}

	same = ls->bound && ls->has_ip4 == resp->has_ip4 && ls->has_ip6 == resp->has_ip6 &&
	       (!resp->has_ip4 || wgd_ip_equal(&ls->ip4, &resp->ip4)) &&
	       (!resp->has_ip6 || wgd_ip_equal(&ls->ip6, &resp->ip6));
	struct lease_state old = *ls;
	bool dns_changed = ls->n_dns != resp->n_dns ||
			   memcmp(ls->dns, resp->dns, resp->n_dns * sizeof(resp->dns[0])) ||
			   strcmp(ls->dns_search, resp->dns_search);

	addr_apply(ls->has_ip4, &ls->ip4, resp->has_ip4, &resp->ip4, lifetime);
	addr_apply(ls->has_ip6, &ls->ip6, resp->has_ip6, &resp->ip6, lifetime);
	routes_apply(ls, resp->routes, resp->n_routes);

	ls->bound = true;
	ls->has_ip4 = resp->has_ip4;
	ls->has_ip6 = resp->has_ip6;
	ls->ip4 = resp->ip4;
	ls->ip6 = resp->ip6;
	ls->leasestart = resp->leasestart;
	ls->leasetime = resp->leasetime;
	ls->expires_ms = now_ms + (uint64_t)lifetime * 1000;
	ls->n_dns = resp->n_dns;
	memcpy(ls->dns, resp->dns, resp->n_dns * sizeof(resp->dns[0]));
	memcpy(ls->dns_search, resp->dns_search, sizeof(ls->dns_search));
	if (dns_changed || !ls->dns_applied) {
		dns_remove(ls);
		dns_apply(ls);
	}
	mtu_apply(resp->mtu);

	if (ls->has_ip4)
		fmt_ip(&ls->ip4, b4);
	if (ls->has_ip6)
		fmt_ip(&ls->ip6, b6);
	log_info("%s: ip4 %s ip6 %s leasetime %u leasestart %u", same ? "renewed" : "bound", b4,
		 b6, ls->leasetime, ls->leasestart);
	lease_save(false);
	run_hook(!same ? "BOUND" : cl.failures ? "REBIND" : "RENEW", old.bound ? &old : NULL, ls);
	cl.failures = 0;
	cl.has_hint4 = ls->has_ip4;
	cl.has_hint6 = ls->has_ip6;
	cl.hint4 = ls->ip4;
	cl.hint6 = ls->ip6;

	/* Renew at about half the time left (RFC 2131's T1), with jitter so a
	 * hub's peers spread out. */
	cl.backoff_ms = 0;
	cl.next_try_ms = now_ms + jitter((uint64_t)lifetime * 500, 10);
}

/* ---- remembering the lease ---- */

/*
 * IFACE.lease holds the last lease in the response format of the protocol
 * (docs/protocol.md), so one parser reads both. A released or expired lease
 * is written with leasetime=0: its addresses are only what to ask for next.
 */
static void lease_save(bool ended)
{
	const struct lease_state *ls = &cl.lease;
	struct wgd_msg m;
	char buf[WGD_MAX_MESSAGE];
	ssize_t len;
	int ret;

	memset(&m, 0, sizeof(m));
	m.has_ip4 = ls->has_ip4;
	m.has_ip6 = ls->has_ip6;
	m.ip4 = ls->ip4;
	m.ip6 = ls->ip6;
	m.n_routes = ls->n_routes;
	memcpy(m.routes, ls->routes, ls->n_routes * sizeof(ls->routes[0]));
	m.n_dns = ls->n_dns;
	memcpy(m.dns, ls->dns, ls->n_dns * sizeof(ls->dns[0]));
	memcpy(m.dns_search, ls->dns_search, sizeof(m.dns_search));
	m.has_leasestart = m.has_leasetime = true;
	m.leasestart = ls->leasestart;
	m.leasetime = ended ? 0 : ls->leasetime;
	m.has_errno = true;
	len = wgd_serialize_response(&m, buf, sizeof(buf));
	if (len < 0)
		return;
	ret = file_write_atomic(cl.state_dir, cl.state_file, buf, (size_t)len, 0600);
	if (ret)
		log_warnx("cannot save the lease in %s/%s: %s", cl.state_dir, cl.state_file,
			  strerror(-ret));
}

/* After a restart or reboot: a lease still running is taken up again
 * (and renewed at once); an ended one says what to ask for (RFC 2131's
 * INIT-REBOOT). */
static void lease_load(void)
{
	struct lease_state *ls = &cl.lease;
	struct wgd_parser *p;
	char buf[WGD_MAX_MESSAGE], b4[WGD_IP_STRLEN] = "-", b6[WGD_IP_STRLEN] = "-";
	ssize_t len = file_read(cl.state_dir, cl.state_file, buf, sizeof(buf));
	uint32_t now = clock_real_s();

	if (len == -ENOENT)
		return;
	if (len < 0) {
		log_warnx("cannot read %s/%s: %s", cl.state_dir, cl.state_file, strerror((int)-len));
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return;
	wgd_parser_init(p, WGD_PARSE_RESPONSE);
	if (wgd_parse(p, buf, (size_t)len) <= 0) {
		log_warnx("%s/%s is not a saved lease; ignoring it", cl.state_dir, cl.state_file);
		free(p);
		return;
	}
	cl.has_hint4 = p->msg.has_ip4;
	cl.has_hint6 = p->msg.has_ip6;
	cl.hint4 = p->msg.ip4;
	cl.hint6 = p->msg.ip6;
	if (cl.has_hint4)
		fmt_ip(&cl.hint4, b4);
	if (cl.has_hint6)
		fmt_ip(&cl.hint6, b6);

	uint64_t end = (uint64_t)p->msg.leasestart + p->msg.leasetime;
	if (end > now && p->msg.leasestart <= now) {
		ls->bound = true;
		ls->has_ip4 = p->msg.has_ip4;
		ls->has_ip6 = p->msg.has_ip6;
		ls->ip4 = p->msg.ip4;
		ls->ip6 = p->msg.ip6;
		ls->n_routes = p->msg.n_routes;
		memcpy(ls->routes, p->msg.routes, p->msg.n_routes * sizeof(ls->routes[0]));
		ls->leasestart = p->msg.leasestart;
		ls->leasetime = p->msg.leasetime;
		ls->expires_ms = clock_boot_ms() + (end - now) * 1000;
		log_info("remembered lease: ip4 %s ip6 %s, %us left", b4, b6, (unsigned)(end - now));
	} else {
		log_info("asking for the remembered addresses: ip4 %s ip6 %s", b4, b6);
	}
	free(p);
}

static void request_lease(void)
{
	struct wgd_msg req, resp = { 0 };
	struct lease_state *ls = &cl.lease;
	uint64_t started;
	int ret;

	memset(&req, 0, sizeof(req));
	req.cmd = WGD_CMD_REQUEST_IP;
	req.version = 1;
	req.has_ip4 = req.has_ip6 = true;
	req.ip4.family = AF_INET;
	req.ip4.cidr = 32;
	req.ip6.family = AF_INET6;
	req.ip6.cidr = 128;
	if (ls->bound && ls->has_ip4)
		req.ip4 = ls->ip4;
	else if (!ls->bound && cl.has_hint4)
		req.ip4 = cl.hint4;
	if (ls->bound && ls->has_ip6)
		req.ip6 = ls->ip6;
	else if (!ls->bound && cl.has_hint6)
		req.ip6 = cl.hint6;
	if (ls->bound) {
		req.leasestart = ls->leasestart;
		req.leasetime = ls->leasetime;
	}

	started = clock_boot_ms();
	ret = exchange(&req, &resp, REQUEST_TIMEOUT_MS);
	if (ret == -EINTR)
		return;
	if (ret) {
		log_debug("request failed: %s", strerror(-ret));
		schedule_retry(started);
		return;
	}
	if (!resp.has_ip4 && !resp.has_ip6) {
		const char *why = resp.err ? (resp.errmsg[0] ? resp.errmsg : wgd_error_text(resp.err))
					   : "no address in the response";

		log_warnx("the server gave no address: %s", why ?: "unknown error");
		schedule_retry(started);
		return;
	}
	lease_accept(&req, &resp);
}

static void release_and_exit(void)
{
	struct wgd_msg req, resp;

	if (cl.lease.bound) {
		memset(&req, 0, sizeof(req));
		req.cmd = WGD_CMD_REQUEST_IP;
		req.version = 1;
		if (exchange(&req, &resp, RELEASE_TIMEOUT_MS))
			log_info("could not tell the server of the release; the lease will expire");
		lease_drop("RELEASE");
	}
	if (cl.added_server_route) {
		struct wgd_ip server = { .family = AF_INET6, .cidr = 128, .bytes = { 0xfe, 0x80 } };

		rtnl_route_del(cl.rt, cl.ifindex, &server);
	}
	log_info("exiting; released the lease");
	exit(EXIT_OK);
}

/* ---- start-up ---- */

static void find_hub(const struct wgdev *dev)
{
	struct wgd_ip server = { .family = AF_INET6, .cidr = 128, .bytes = { 0xfe, 0x80 } };
	size_t found = 0;

	for (size_t i = 0; i < dev->n_peers; i++) {
		for (size_t j = 0; j < dev->peers[i].n_allowedips; j++) {
			if (wgd_ip_contains(&dev->peers[i].allowedips[j], &server)) {
				memcpy(cl.hub_key, dev->peers[i].pubkey, WG_KEY_LEN);
				found++;
				break;
			}
		}
	}
	if (!found) {
		log_warnx("no peer of %s has fe80::/128 in its allowed-IPs: add it to the hub "
			  "peer (wg set %s peer HUBKEY allowed-ips fe80::/128)", cl.ifname,
			  cl.ifname);
		exit(EXIT_NO_HUB);
	}
}

/* Finds or adds our link-local /128; returns a startup exit status or 0. */
static int ensure_ll(void)
{
	struct rtnl_addr *addrs = NULL;
	struct wgd_ip derived;
	char b[WGD_IP_STRLEN];
	size_t n = 0;
	bool found = false;
	int ret;

	ret = rtnl_addr_list(cl.rt, cl.ifindex, AF_INET6, &addrs, &n);
	if (ret) {
		log_warnx("cannot list the addresses of %s: %s", cl.ifname, strerror(-ret));
		return EXIT_SYSTEM;
	}
	for (size_t i = 0; i < n && !found; i++) {
		if (addrs[i].ip.cidr == 128 && wgd_ip_is_linklocal6(&addrs[i].ip)) {
			cl.ll = addrs[i].ip.ip6;
			found = true;
		}
	}
	free(addrs);
	if (found)
		return 0;

	if (!cl.has_pubkey) {
		log_warnx("%s has no link-local /128 and no private key to derive one from: set "
			  "a key (wg set %s private-key FILE)", cl.ifname, cl.ifname);
		return EXIT_NO_LL;
	}
	wgkey_derive_linklocal(&derived, cl.pubkey);
	ret = rtnl_addr_add(cl.rt, cl.ifindex, &derived, UINT32_MAX, UINT32_MAX);
	if (ret) {
		log_warnx("%s has no link-local /128 and adding %s failed: %s", cl.ifname,
			  fmt_ip(&derived, b), strerror(-ret));
		return EXIT_NO_LL;
	}
	cl.ll = derived.ip6;
	log_info("added the derived link-local %s to %s", fmt_ip(&derived, b), cl.ifname);
	return 0;
}

/*
 * A link-local connect needs a route to fe80:: on the interface. The kernel
 * adds fe80::/64 when it generates a link-local address itself; without one
 * (addr_gen_mode none, or a flushed interface) only our /128 exists.
 */
static void ensure_server_route(void)
{
	struct wgd_ip server = { .family = AF_INET6, .cidr = 128, .bytes = { 0xfe, 0x80 } };
	struct wgd_ip *routes = NULL;
	size_t n = 0;
	int ret;

	if (!rtnl_route_list(cl.rt, cl.ifindex, AF_INET6, &routes, &n)) {
		for (size_t i = 0; i < n; i++) {
			if (wgd_ip_contains(&routes[i], &server)) {
				free(routes);
				return;
			}
		}
		free(routes);
	}
	ret = rtnl_route_add(cl.rt, cl.ifindex, &server);
	if (ret)
		log_warnx("cannot add a route to fe80::/128 on %s: %s", cl.ifname, strerror(-ret));
	else
		cl.added_server_route = true;
}

/* ---- interface events ---- */

static void on_rtnl_event(const struct rtnl_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->ifindex != cl.ifindex)
		return;
	if (ev->type == RTNL_EV_LINK_DEL) {
		log_info("%s is gone; exiting", cl.ifname);
		if (cl.lease.bound)
			run_hook("STOP", &cl.lease, NULL);
		dns_remove(&cl.lease);
		exit(EXIT_OK);
	}
	if (ev->type == RTNL_EV_LINK) {
		bool up = ev->flags & IFF_UP;

		if (up && !cl.link_up) {
			log_info("%s is up", cl.ifname);
			/* Going down flushed IPv6 addresses and routes. */
			ensure_ll();
			ensure_server_route();
			cl.next_try_ms = clock_boot_ms();
			cl.backoff_ms = 0;
		} else if (!up && cl.link_up) {
			log_info("%s is down; waiting", cl.ifname);
		}
		cl.link_up = up;
	}
}

/* One client per interface: a lock in the state directory, held for life
 * (a fork shares it). */
static int lock_iface(void)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s.lock", cl.state_dir, cl.ifname);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_warnx("cannot open %s: %s; check --state-dir", path, strerror(errno));
		return EXIT_STATE_DIR;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		log_warnx("another wg-dynamic-client already runs on %s: stop it first", cl.ifname);
		return EXIT_RUNNING;
	}
	return 0;
}

static void daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		fatal("fork");
	if (pid > 0)
		_exit(EXIT_OK);
	setsid();
	if (chdir("/"))
		log_warn("chdir /");
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

/* wg-dynamic-client show IFACE [--state-dir DIR]: the remembered lease and
 * whether a client holds the interface. */
static int show_main(int argc, char *argv[])
{
	const char *ifname = NULL;
	char buf[WGD_MAX_MESSAGE], path[4096], a[WGD_IP_STRLEN];
	struct wgd_parser *p;
	bool running = false;
	ssize_t len;
	int fd;

	cl.state_dir = "/var/lib/wg-dynamic";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--state-dir") && i + 1 < argc)
			cl.state_dir = argv[++i];
		else if (!ifname && argv[i][0] != '-')
			ifname = argv[i];
		else
			ifname = NULL, i = argc;
	}
	if (!ifname || strlen(ifname) >= IF_NAMESIZE) {
		fprintf(stderr, "Usage: wg-dynamic-client show IFACE [--state-dir DIR]\n");
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "%s/%s.lock", cl.state_dir, ifname);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		running = flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK;
		close(fd);
	}
	printf("interface: %s\n  client: %s\n", ifname, running ? "running" : "not running");
	snprintf(cl.state_file, sizeof(cl.state_file), "%s.lease", ifname);
	len = file_read(cl.state_dir, cl.state_file, buf, sizeof(buf));
	if (len < 0) {
		printf("  lease: none remembered\n");
		return EXIT_OK;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return EXIT_SYSTEM;
	wgd_parser_init(p, WGD_PARSE_RESPONSE);
	if (wgd_parse(p, buf, (size_t)len) <= 0) {
		printf("  lease: unreadable (%s/%s)\n", cl.state_dir, cl.state_file);
		free(p);
		return EXIT_SYSTEM;
	}
	const struct wgd_msg *m = &p->msg;
	uint32_t now = clock_real_s();
	uint64_t end = (uint64_t)m->leasestart + m->leasetime;

	if (m->has_ip4)
		printf("  ipv4: %s\n", wgd_ip_format_addr(&m->ip4, a, sizeof(a)));
	if (m->has_ip6)
		printf("  ipv6: %s\n", wgd_ip_format_addr(&m->ip6, a, sizeof(a)));
	for (size_t i = 0; i < m->n_routes; i++)
		printf("  route: %s\n", wgd_ip_format(&m->routes[i], a, sizeof(a)));
	for (size_t i = 0; i < m->n_dns; i++)
		printf("  dns: %s\n", wgd_ip_format_addr(&m->dns[i], a, sizeof(a)));
	if (m->dns_search[0])
		printf("  dns search: %s\n", m->dns_search);
	if (m->leasetime && end > now)
		printf("  lease: %u seconds, %llu left\n", m->leasetime,
		       (unsigned long long)(end - now));
	else
		printf("  lease: ended; these addresses are asked for next\n");
	free(p);
	return EXIT_OK;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: wg-dynamic-client [options] IFACE\n"
		"       wg-dynamic-client show IFACE [--state-dir DIR]\n"
		"\n"
		"  -f, --foreground    stay in the foreground, logging to stderr\n"
		"  -v, --verbose       log debug messages\n"
		"  --state-dir DIR     remember the lease in DIR/IFACE.lease\n"
		"                      (default /var/lib/wg-dynamic)\n"
		"  --script PATH       run PATH on every change of state (reason=BOUND,\n"
		"                      RENEW, REBIND, EXPIRE, RELEASE or STOP)\n"
		"  --script-timeout SECS  kill the script after SECS (default 10)\n"
		"  --no-dns            do not hand pushed DNS servers to resolvconf\n"
		"  --no-mtu            do not apply a pushed MTU\n"
		"  -h, --help          show this help\n");
}

int main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "script", required_argument, NULL, 'S' },
		{ "script-timeout", required_argument, NULL, 'T' },
		{ "no-dns", no_argument, NULL, 'N' },
		{ "no-mtu", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rtnl_link link;
	struct wgdev *dev = NULL;
	bool foreground = false;
	int verbose = 0, opt, ret;
	sigset_t mask;

	if (argc >= 2 && !strcmp(argv[1], "show"))
		return show_main(argc - 1, argv + 1);
	while ((opt = getopt_long(argc, argv, "fvh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			foreground = true;
			break;
		case 'v':
			verbose++;
			break;
		case 's':
			cl.state_dir = optarg;
			break;
		case 'S':
			cl.script = optarg;
			if (access(optarg, X_OK)) {
				fprintf(stderr, "wg-dynamic-client: --script %s: not an executable "
					"file (%s)\n", optarg, strerror(errno));
				return EXIT_USAGE;
			}
			break;
		case 'T': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || optarg[0] < '0' || optarg[0] > '9' || v < 1 || v > 3600) {
				fprintf(stderr, "wg-dynamic-client: --script-timeout %s: give whole "
					"seconds from 1 to 3600\n", optarg);
				return EXIT_USAGE;
			}
			cl.script_timeout = (unsigned)v;
			break;
		}
		case 'N':
			cl.no_dns = true;
			break;
		case 'M':
			cl.no_mtu = true;
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
	cl.ifname = argv[optind];
	if (!cl.script_timeout)
		cl.script_timeout = 10;
	if (!cl.state_dir)
		cl.state_dir = "/var/lib/wg-dynamic";
	log_init("wg-dynamic-client", false, verbose);
	if (sodium_init() < 0)
		fatalx("cannot initialise libsodium");
	signal(SIGPIPE, SIG_IGN);

	if (strlen(cl.ifname) >= IF_NAMESIZE) {
		log_warnx("%s: interface names are at most %d characters", cl.ifname,
			  IF_NAMESIZE - 1);
		return EXIT_USAGE;
	}
	ret = rtnl_open(&cl.rt);
	if (ret)
		fatalx("cannot open rtnetlink: %s", strerror(-ret));
	/* Watch before checking, so that a deletion in between is seen. */
	ret = rtnl_monitor_open(&cl.mon, RTMGRP_LINK);
	if (ret)
		fatalx("cannot watch rtnetlink: %s", strerror(-ret));
	ret = rtnl_link_get(cl.rt, cl.ifname, &link);
	if (ret == -ENODEV) {
		log_warnx("no interface %s: bring up WireGuard first (wg-quick up %s)", cl.ifname,
			  cl.ifname);
		return EXIT_NO_IFACE;
	} else if (ret) {
		fatalx("cannot read interface %s: %s", cl.ifname, strerror(-ret));
	}
	cl.ifindex = link.ifindex;
	cl.link_up = link.flags & IFF_UP;
	snprintf(cl.state_file, sizeof(cl.state_file), "%s.lease", cl.ifname);
	ret = file_mkdir_p(cl.state_dir);
	if (!ret && access(cl.state_dir, W_OK))
		ret = -errno;
	if (ret) {
		log_warnx("state directory %s is not writable (%s): create it or give another with "
			  "--state-dir", cl.state_dir, strerror(-ret));
		return EXIT_STATE_DIR;
	}
	ret = lock_iface();
	if (ret)
		return ret;

	ret = wgctl_open(&cl.wg, cl.ifname);
	if (!ret)
		ret = wgctl_get_device(cl.wg, &dev);
	if (ret) {
		log_warnx("%s is not a WireGuard interface (no UAPI socket in %s and not kernel "
			  "WireGuard)", cl.ifname, wgctl_uapi_dir);
		return EXIT_NOT_WG;
	}
	if (!dev->n_peers) {
		log_warnx("%s has no peers: add the hub as a peer with allowed-ips fe80::/128",
			  cl.ifname);
		return EXIT_NO_PEERS;
	}
	find_hub(dev);
	cl.has_pubkey = dev->has_pubkey;
	memcpy(cl.pubkey, dev->pubkey, WG_KEY_LEN);
	wgdev_free(dev);
	ret = ensure_ll();
	if (ret)
		return ret;
	ensure_server_route();
	lease_load();

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	cl.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (cl.sig_fd < 0)
		fatal("signalfd");

	if (!foreground) {
		log_set_syslog(true);
		daemonize();
	}
	/* From here on: addresses, routes and allowed-IPs (CAP_NET_ADMIN), and
	 * binding port 970 for each request (CAP_NET_BIND_SERVICE). Nothing
	 * else, and nothing regained through exec. */
	ret = caps_limit(CAP_BIT(CAP_NET_ADMIN) | CAP_BIT(CAP_NET_BIND_SERVICE));
	if (ret)
		log_warnx("cannot drop capabilities: %s", strerror(-ret));
	log_info("asking for a lease on %s", cl.ifname);
	/* Ready once set up; the lease may take as long as the hub does. */
	ret = notify_open();
	if (!ret)
		ret = notify_send("READY=1\nSTATUS=asking for a lease");
	if (ret)
		log_warnx("cannot reach $NOTIFY_SOCKET: %s", strerror(-ret));
	cl.next_try_ms = clock_boot_ms();

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = cl.sig_fd, .events = POLLIN },
			{ .fd = rtnl_monitor_fd(cl.mon), .events = POLLIN },
		};
		uint64_t now = clock_boot_ms(), wake = UINT64_MAX;

		hook_reap();
		if (cl.pending_signal)
			release_and_exit();
		if (cl.lease.bound && now >= cl.lease.expires_ms) {
			log_warnx("the lease expired; removing its addresses and starting over");
			lease_drop("EXPIRE");
			cl.backoff_ms = 0;
			cl.next_try_ms = now;
		}
		if (cl.link_up && now >= cl.next_try_ms) {
			request_lease();
			continue;
		}

		if (cl.link_up)
			wake = cl.next_try_ms;
		if (cl.lease.bound && cl.lease.expires_ms < wake)
			wake = cl.lease.expires_ms;
		int timeout = wake == UINT64_MAX ? -1 : (int)(wake > now ? wake - now : 0);
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
			fatal("poll");
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(cl.sig_fd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP)
					cl.next_try_ms = clock_boot_ms();
				else
					cl.pending_signal = (int)si.ssi_signo;
			}
		}
		if (pfd[1].revents & POLLIN) {
			ret = rtnl_monitor_read(cl.mon, on_rtnl_event, NULL);
			if (ret)
				log_warnx("rtnetlink: %s", strerror(-ret));
		}
	}
}
