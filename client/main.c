// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * wg-dynamic-client: asks the hub behind a WireGuard interface for addresses
 * and keeps them configured for as long as the lease lives.
 *
 * This file holds the options, the checks at start-up, the system calls
 * behind struct client_sys, and the event loop. The states and timers are
 * in state.c, what the hub may configure in configure.c, the mesh in
 * mesh.c.
 */

#include <arpa/inet.h>
#include <linux/capability.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "../common/array.h"
#include "../common/caps.h"
#include "../common/clock.h"
#include "../common/file.h"
#include "../common/key.h"
#include "../common/log.h"
#include "../common/notify.h"
#include "../common/rtnl.h"
#include "../common/version.h"
#include "../common/wgdev.h"
#include "../protocol/proto.h"
#include "client.h"
#include "hook.h"

#define REQUEST_TIMEOUT_MS 3000
#define RELEASE_TIMEOUT_MS 1500
#define RESOLVCONF_TIMEOUT_S 5
#define DEFAULT_STATE_DIR "/var/lib/wg-dynamic"

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

static struct client cl = { .state_fd = -1 };
static int sig_fd = -1;
/* The lease's exchange: a request, a renewal or, at the end, the release.
 * Every exchange has a slot of its own in the loop's poll set. */
static struct exchange lease_ex = { .fd = -1 };
/* The mesh's long poll for the hub's directory (mesh.c). */
static struct exchange peers_ex = { .fd = -1 };
static bool releasing;

/* A system call failed: the status docs/errors.md gives that case, where
 * fatal() would exit 1. */
__attribute__((format(printf, 1, 2), noreturn))
static void fatal_system(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s", msg);
	exit(EXIT_SYSTEM);
}

static const struct wgd_ip server_ll = {
	.family = AF_INET6, .cidr = 128, .bytes = { 0xfe, 0x80 },
};

/* ---- the system, for struct client_sys ---- */

static int sys_addr_add(struct client *c, const struct wgd_ip *ip, uint32_t lifetime_s)
{
	return rtnl_addr_add(c->rt, c->ifindex, ip, lifetime_s, lifetime_s);
}

static int sys_addr_del(struct client *c, const struct wgd_ip *ip)
{
	return rtnl_addr_del(c->rt, c->ifindex, ip);
}

static int sys_addr_list(struct client *c, struct rtnl_addr **out, size_t *n)
{
	return rtnl_addr_list(c->rt, c->ifindex, AF_UNSPEC, out, n);
}

static int sys_route_add(struct client *c, const struct wgd_ip *dst)
{
	return rtnl_route_add(c->rt, c->ifindex, dst, CLIENT_RTPROT);
}

static int sys_route_del(struct client *c, const struct wgd_ip *dst)
{
	return rtnl_route_del(c->rt, c->ifindex, dst, CLIENT_RTPROT);
}

static int sys_set_mtu(struct client *c, uint32_t mtu)
{
	return rtnl_link_set_mtu(c->rt, c->ifindex, mtu);
}

static int sys_get_device(struct client *c, struct wgdev **out)
{
	return wgctl_get_device(c->wg, out);
}

static int sys_hub_allowedips(struct client *c, const struct wgd_ip *add, size_t n_add,
			      const struct wgd_ip *del, size_t n_del)
{
	return wgctl_allowedips_update(c->wg, c->hub_key, add, n_add, del, n_del);
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

static int sys_resolvconf(struct client *c, const char *input)
{
	const char *rc = resolvconf_path();
	int ret;

	if (!rc) {
		if (input)
			log_info("the server pushes DNS, but resolvconf is not installed; "
				 "not applied");
		return -ENOENT;
	}
	if (input) {
		char *argv[] = { (char *)rc, "-a", (char *)c->ifname, "-m", "0", "-x", NULL };

		ret = hook_run_wait(argv, input, RESOLVCONF_TIMEOUT_S);
		if (ret)
			log_warnx("resolvconf -a %s failed (%d)", c->ifname, ret);
	} else {
		char *argv[] = { (char *)rc, "-d", (char *)c->ifname, "-f", NULL };

		ret = hook_run_wait(argv, NULL, RESOLVCONF_TIMEOUT_S);
		if (ret)
			log_warnx("resolvconf -d %s failed", c->ifname);
	}
	return ret ? -EIO : 0;
}

static void sys_hook(struct client *c, const struct hook_env *env)
{
	int ret;

	if (!c->script)
		return;
	ret = (int)hook_run(c->script, env, c->script_timeout);
	if (ret < 0)
		log_warnx("cannot run %s: %s", c->script, strerror(-ret));
}

static int sys_save(struct client *c, const void *buf, size_t len)
{
	return file_write_atomic_at(c->state_fd, c->state_file, buf, len, 0600);
}

static ssize_t sys_load(struct client *c, void *buf, size_t max)
{
	return file_read_at(c->state_fd, c->state_file, buf, max);
}

/*
 * A socket from [ll]:970 to [fe80::]:970, its connect() under way. The
 * server closes first; we then close abortively, so that no TIME_WAIT is
 * left on either side to block the next request between the same
 * addresses and ports.
 */
static int sys_hub_connect(struct client *c)
{
	struct sockaddr_in6 src = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_addr = c->ll,
		.sin6_scope_id = c->ifindex,
	};
	struct sockaddr_in6 dst = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_addr = { .s6_addr = { 0xfe, 0x80 } },
		.sin6_scope_id = c->ifindex,
	};
	struct linger abortive = { .l_onoff = 1, .l_linger = 0 };
	int fd, one = 1, ret;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * The addresses of every interface but ours, for the mesh's candidates:
 * one list per interface, as rtnl_addr_list() lists one. A host has few;
 * past MAX_HOST_IFACES the rest are not looked at. Interfaces that are
 * down, loopback, or WireGuard (reached through a tunnel of their own)
 * have no address a peer could use.
 */
#define MAX_HOST_IFACES 64

static int sys_host_addrs(struct client *c, struct rtnl_addr **out, size_t *n)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	struct rtnl_addr *all = NULL;
	size_t n_all = 0, cap = 0;
	unsigned seen = 0;
	int ret = 0;

	*out = NULL;
	*n = 0;
	if (!ifs)
		return -errno;
	for (i = ifs; i->if_index && seen < MAX_HOST_IFACES && !ret; i++, seen++) {
		struct rtnl_addr *addrs = NULL;
		struct rtnl_link link;
		size_t k = 0;

		if (i->if_index == c->ifindex || rtnl_link_get(c->rt, i->if_name, &link) ||
		    !(link.flags & IFF_UP) || (link.flags & IFF_LOOPBACK) ||
		    !strcmp(link.kind, "wireguard") ||
		    rtnl_addr_list(c->rt, i->if_index, AF_UNSPEC, &addrs, &k))
			continue;
		for (size_t j = 0; j < k && !ret; j++) {
			ret = array_reserve(&all, &cap, n_all, sizeof(*all), 8);
			if (!ret)
				all[n_all++] = addrs[j];
		}
		free(addrs);
	}
	if_freenameindex(ifs);
	if (ret) {
		free(all);
		return ret;
	}
	*out = all;
	*n = n_all;
	return 0;
}

static int sys_mesh_apply(struct client *c, const struct mesh_action *a)
{
	switch (a->kind) {
	case MESH_ACT_ADD_PEER:
		return wgctl_peer_add(c->wg, a->key, &a->endpoint, a->keepalive_s);
	case MESH_ACT_REMOVE_PEER:
		return wgctl_peer_remove(c->wg, a->key);
	case MESH_ACT_ALLOWEDIPS_ADD:
		return wgctl_allowedips_update(c->wg, a->key, a->ips, a->n_ips, NULL, 0);
	case MESH_ACT_ALLOWEDIPS_DEL:
		return wgctl_allowedips_update(c->wg, a->key, NULL, 0, a->ips, a->n_ips);
	}
	return -EINVAL;
}

static int sys_mesh_probe(struct client *c, const struct wgd_ip *dst)
{
	return prober_send(&c->prober, dst);
}

static const struct client_sys sys_real = {
	.addr_add = sys_addr_add,
	.addr_del = sys_addr_del,
	.addr_list = sys_addr_list,
	.route_add = sys_route_add,
	.route_del = sys_route_del,
	.set_mtu = sys_set_mtu,
	.get_device = sys_get_device,
	.hub_allowedips = sys_hub_allowedips,
	.resolvconf = sys_resolvconf,
	.hook = sys_hook,
	.save = sys_save,
	.load = sys_load,
	.hub_connect = sys_hub_connect,
	.host_addrs = sys_host_addrs,
	.mesh_apply = sys_mesh_apply,
	.mesh_probe = sys_mesh_probe,
};

/* ---- requests ---- */

static void request_lease(uint64_t now)
{
	struct wgd_msg req;

	state_build_request(&cl, &req);
	client_mesh_pause_poll(&cl);
	cl.requesting = true;
	/* A failure to start is an answer too, taken on the loop's next pass. */
	exchange_start(&lease_ex, &cl, &req, now, REQUEST_TIMEOUT_MS);
}

/* The lease's exchange is done: the state machine takes what came. */
static void lease_answered(uint64_t now)
{
	const struct wgd_msg *resp = exchange_response(&lease_ex);

	cl.requesting = false;
	if (resp) {
		state_take_response(&cl, &lease_ex.req, resp, lease_ex.started_ms, now);
	} else {
		log_debug("request failed: %s", strerror(-lease_ex.result));
		state_request_failed(&cl, lease_ex.started_ms, now);
	}
	exchange_end(&lease_ex);
}

/* The release is over, told (0) or not: the lease goes and the client
 * exits. */
__attribute__((noreturn))
static void release_finish(int result)
{
	exchange_end(&lease_ex);
	/* The mesh first: its peers' addresses route through the lease. */
	client_mesh_leave(&cl, false);
	if (cl.lease.bound) {
		if (result)
			log_info("could not tell the server of the release; the lease will expire");
		state_drop_lease(&cl, "RELEASE");
	}
	if (cl.added_server_route)
		rtnl_route_del(cl.rt, cl.ifindex, &server_ll, CLIENT_RTPROT);
	log_info("exiting; released the lease");
	hook_drain(HOOK_DRAIN_EXIT_S);
	exit(EXIT_OK);
}

/* The lease's exchange is done: what came is the state machine's, or, at
 * the end, what the exit waited for. */
static void lease_done(uint64_t now)
{
	if (releasing)
		release_finish(lease_ex.result);
	lease_answered(now);
}

/* SIGTERM or SIGINT: a held lease goes back to the hub, within
 * RELEASE_TIMEOUT_MS, before the client exits; a second signal stops
 * waiting for the hub. */
static void on_stop_signal(uint64_t now)
{
	struct wgd_msg req = { .cmd = WGD_CMD_REQUEST_IP, .version = 1 };

	if (releasing)
		release_finish(-EINTR);
	if (!cl.lease.bound)
		release_finish(0);
	/* A request still out is dropped: its answer would come too late. */
	cl.requesting = false;
	releasing = true;
	client_mesh_pause_poll(&cl);
	exchange_start(&lease_ex, &cl, &req, now, RELEASE_TIMEOUT_MS);
}

/* ---- start-up ---- */

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
			  wgd_ip_format_addr(&derived, b, sizeof(b)), strerror(-ret));
		return EXIT_NO_LL;
	}
	cl.ll = derived.ip6;
	log_info("added the derived link-local %s to %s",
		 wgd_ip_format_addr(&derived, b, sizeof(b)), cl.ifname);
	return 0;
}

/*
 * A link-local connect needs a route to fe80:: on the interface. The kernel
 * adds fe80::/64 when it generates a link-local address itself; without one
 * (addr_gen_mode none, or a flushed interface) only our /128 exists.
 */
static void ensure_server_route(void)
{
	struct wgd_ip *routes = NULL;
	size_t n = 0;
	int ret;

	if (!rtnl_route_list(cl.rt, cl.ifindex, AF_INET6, &routes, &n)) {
		for (size_t i = 0; i < n; i++) {
			if (wgd_ip_contains(&routes[i], &server_ll)) {
				free(routes);
				return;
			}
		}
		free(routes);
	}
	ret = rtnl_route_add(cl.rt, cl.ifindex, &server_ll, CLIENT_RTPROT);
	if (ret && ret != -EEXIST)
		log_warnx("cannot add a route to fe80::/128 on %s: %s", cl.ifname, strerror(-ret));
	else if (!ret)
		cl.added_server_route = true;
}

/*
 * Routes marked as ours that an earlier run left: those of the remembered
 * lease are taken up again, the rest removed. No other route is touched.
 */
static void adopt_routes(void)
{
	struct lease_state *ls = &cl.lease;
	struct wgd_ip *mine = NULL;
	size_t n = 0;

	if (rtnl_route_list_proto(cl.rt, cl.ifindex, AF_UNSPEC, CLIENT_RTPROT, &mine, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		bool kept = false;

		if (wgd_ip_equal(&mine[i], &server_ll)) {
			cl.added_server_route = true;
			continue;
		}
		for (size_t j = 0; j < ls->n_routes; j++) {
			if (wgd_ip_equal(&ls->routes[j].dst, &mine[i])) {
				ls->routes[j].in_table = kept = true;
				break;
			}
		}
		if (!kept)
			rtnl_route_del(cl.rt, cl.ifindex, &mine[i], CLIENT_RTPROT);
	}
	free(mine);
}

/* ---- interface events ---- */

static void on_rtnl_event(const struct rtnl_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->ifindex != cl.ifindex)
		return;
	if (ev->type == RTNL_EV_LINK_DEL) {
		log_info("%s is gone; exiting", cl.ifname);
		client_mesh_leave(&cl, true);
		if (cl.lease.bound)
			state_run_hook(&cl, "STOP", &cl.lease, NULL);
		configure_dns_remove(&cl, &cl.lease);
		hook_drain(HOOK_DRAIN_EXIT_S);
		exit(EXIT_OK);
	}
	if (ev->type == RTNL_EV_LINK) {
		bool up = ev->flags & IFF_UP;

		if (up && !cl.link_up) {
			log_info("%s is up", cl.ifname);
			/* Going down flushed IPv6 addresses and routes, and so
			 * the source of a request still out: ask afresh. */
			ensure_ll();
			ensure_server_route();
			if (!releasing && cl.requesting) {
				exchange_end(&lease_ex);
				cl.requesting = false;
			}
			client_mesh_restart_poll(&cl, clock_boot_ms());
			cl.next_try_ms = clock_boot_ms();
			cl.backoff_ms = 0;
		} else if (!up && cl.link_up) {
			log_info("%s is down; waiting", cl.ifname);
		}
		cl.link_up = up;
	}
}

/* The state directory: root's, writable by root alone, reached without
 * following another user's links. */
static int open_state_dir(bool create)
{
	char why[512] = "";
	int ret = file_dir_open_secure(cl.state_dir, 0, create, &cl.state_fd, why, sizeof(why));

	if (ret == -EPERM && why[0])
		log_warnx("state directory %s", why);
	else if (ret)
		log_warnx("state directory %s is not writable (%s): create it or give another "
			  "with --state-dir", cl.state_dir, strerror(-ret));
	return ret;
}

/* One client per interface: a lock in the state directory, held for life
 * (a fork shares it). */
static int lock_iface(void)
{
	char name[IF_NAMESIZE + 8];
	int fd;

	snprintf(name, sizeof(name), "%s.lock", cl.ifname);
	fd = file_open_at(cl.state_fd, name, O_RDWR | O_CREAT, 0600);
	if (fd < 0) {
		log_warnx("cannot open %s/%s: %s; check --state-dir", cl.state_dir, name,
			  strerror(-fd));
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
		fatal_system("fork: %s", strerror(errno));
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

/* A string for JSON: printable ASCII as it is, bar the quote and the
 * backslash, and every other byte as \u00XX. */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			putchar(c);
		else
			printf("\\u%04x", c);
	}
	putchar('"');
}

/* The remembered lease, m NULL when there is none, as members of the
 * object show --json prints. */
static void show_lease_json(const struct wgd_msg *m, const uint8_t hub[WG_KEY_LEN], uint32_t now)
{
	char a[WGD_IP_STRLEN], key[WG_KEY_B64_LEN];
	uint64_t end;

	if (!m) {
		printf(",\n  \"lease\": null");
		return;
	}
	end = (uint64_t)m->leasestart + m->leasetime;
	wgkey_to_base64(key, hub);
	printf(",\n  \"lease\": {\"hub\": \"%s\", ", key);
	printf("\"ipv4\": ");
	if (m->has_ip4)
		printf("\"%s\", ", wgd_ip_format_addr(&m->ip4, a, sizeof(a)));
	else
		printf("null, ");
	printf("\"ipv6\": ");
	if (m->has_ip6)
		printf("\"%s\", ", wgd_ip_format_addr(&m->ip6, a, sizeof(a)));
	else
		printf("null, ");
	printf("\"routes\": [");
	for (size_t i = 0; i < m->n_routes; i++)
		printf("%s\"%s\"", i ? ", " : "", wgd_ip_format(&m->routes[i], a, sizeof(a)));
	printf("], \"dns\": [");
	for (size_t i = 0; i < m->n_dns; i++)
		printf("%s\"%s\"", i ? ", " : "", wgd_ip_format_addr(&m->dns[i], a, sizeof(a)));
	printf("], \"dns_search\": ");
	json_string(m->dns_search);
	printf(", \"lease_time\": %u, \"time_left\": %llu}", m->leasetime,
	       (unsigned long long)(m->leasetime && end > now ? end - now : 0));
}

/* wg-dynamic-client show IFACE [--json] [--state-dir DIR]: the remembered
 * lease, whether a client holds the interface, and its mesh. */
static int show_main(int argc, char *argv[])
{
	const char *ifname = NULL;
	char buf[WGD_MAX_MESSAGE + WG_KEY_B64_LEN + 8], name[IF_NAMESIZE + 8];
	char a[WGD_IP_STRLEN], key[WG_KEY_B64_LEN];
	uint8_t hub[WG_KEY_LEN];
	struct wgd_msg *m = NULL;
	bool running = false, json = false;
	int fd, status = EXIT_OK;
	ssize_t len;

	cl.state_dir = DEFAULT_STATE_DIR;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--state-dir") && i + 1 < argc)
			cl.state_dir = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!ifname && argv[i][0] != '-')
			ifname = argv[i];
		else
			ifname = NULL, i = argc;
	}
	if (!ifname || strlen(ifname) >= IF_NAMESIZE) {
		fprintf(stderr, "Usage: wg-dynamic-client show IFACE [--json] [--state-dir DIR]\n");
		return EXIT_USAGE;
	}
	log_init("wg-dynamic-client", false, 0);
	if (open_state_dir(false)) {
		if (json)
			printf("{\n  \"interface\": \"%s\",\n  \"client\": \"unknown\"\n}\n",
			       ifname);
		else
			printf("interface: %s\n  client: unknown\n  lease: none remembered\n",
			       ifname);
		return EXIT_STATE_DIR;
	}
	snprintf(name, sizeof(name), "%s.lock", ifname);
	fd = file_open_at(cl.state_fd, name, O_RDONLY, 0);
	if (fd >= 0) {
		running = flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK;
		close(fd);
	}
	snprintf(cl.state_file, sizeof(cl.state_file), "%s.lease", ifname);
	len = file_read_at(cl.state_fd, cl.state_file, buf, sizeof(buf));
	if (len >= 0) {
		m = malloc(sizeof(*m));
		if (!m)
			return EXIT_SYSTEM;
		if (leasefile_parse(buf, (size_t)len, NULL, hub, m)) {
			free(m);
			m = NULL;
			status = EXIT_SYSTEM;
		}
	}
	uint32_t now = clock_real_s();

	if (json) {
		/* The interface name is the caller's, and may hold anything. */
		printf("{\n  \"interface\": ");
		json_string(ifname);
		printf(",\n  \"client\": \"%s\"", running ? "running" : "not running");
		show_lease_json(m, hub, now);
		client_mesh_show(stdout, cl.state_fd, ifname, running, true);
		printf("\n}\n");
		free(m);
		return status;
	}
	printf("interface: %s\n", ifname);
	printf("  client: %s\n", running ? "running" : "not running");
	if (len < 0) {
		printf("  lease: none remembered\n");
	} else if (!m) {
		printf("  lease: unreadable (%s/%s)\n", cl.state_dir, cl.state_file);
	} else {
		uint64_t end = (uint64_t)m->leasestart + m->leasetime;

		wgkey_to_base64(key, hub);
		printf("  hub: %s\n", key);
		if (m->has_ip4)
			printf("  ipv4: %s\n", wgd_ip_format_addr(&m->ip4, a, sizeof(a)));
		if (m->has_ip6)
			printf("  ipv6: %s\n", wgd_ip_format_addr(&m->ip6, a, sizeof(a)));
		for (size_t i = 0; i < m->n_routes; i++)
			printf("  route: %s\n", wgd_ip_format(&m->routes[i], a, sizeof(a)));
		for (size_t i = 0; i < m->n_dns; i++)
			printf("  dns: %s\n", wgd_ip_format_addr(&m->dns[i], a, sizeof(a)));
		/* Written by the client after its checks; escaped all the same. */
		if (m->dns_search[0]) {
			char esc[LOG_ESCAPED_SIZE(WGD_MAX_DNS_SEARCH)];

			printf("  dns search: %s\n",
			       log_escape(m->dns_search, strlen(m->dns_search), esc, sizeof(esc)));
		}
		if (m->leasetime && end > now)
			printf("  lease: %u seconds, %llu left\n", m->leasetime,
			       (unsigned long long)(end - now));
		else
			printf("  lease: ended; these addresses are asked for next\n");
	}
	client_mesh_show(stdout, cl.state_fd, ifname, running, false);
	free(m);
	return status;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: wg-dynamic-client [options] IFACE\n"
		"       wg-dynamic-client show IFACE [--json] [--state-dir DIR]\n"
		"\n"
		"  -f, --foreground    stay in the foreground, logging to stderr\n"
		"  -v, --verbose       log debug messages\n"
		"  --state-dir DIR     remember the lease in DIR/IFACE.lease\n"
		"                      (default " DEFAULT_STATE_DIR "; root's alone)\n"
		"  --script PATH       run PATH on every change of state (reason=BOUND,\n"
		"                      RENEW, REBIND, EXPIRE, RELEASE or STOP)\n"
		"  --script-timeout SECS  kill the script after SECS (default 10)\n"
		"  --no-dns            do not hand pushed DNS servers to resolvconf\n"
		"  --no-mtu            do not apply a pushed MTU\n"
		"  --no-mesh           do not join the hub's mesh of direct paths\n"
		"  -h, --help          show this help\n"
		"  --version           show the version\n");
}

/*
 * The exchanges the loop drives, each with what takes its result once it
 * is done; each has a slot in the poll set after PFD_EXCHANGES. The mesh's
 * long poll to the hub is out next to the lease's.
 */
static void peers_done(uint64_t now)
{
	client_mesh_answered(&cl, now);
}

static const struct {
	struct exchange *ex;
	void (*done)(uint64_t now);
} exchanges[] = {
	{ &lease_ex, lease_done },
	{ &peers_ex, peers_done },
};
#define N_EXCHANGES (sizeof(exchanges) / sizeof(exchanges[0]))

enum { PFD_SIGNAL, PFD_RTNL, PFD_HOOK, PFD_EXCHANGES };

/* Until the next timer of the state machine or the mesh, or deadline of
 * an exchange. */
static int poll_timeout(uint64_t now)
{
	int timeout = state_poll_timeout(&cl, now);
	/* Releasing, the loop no longer runs the mesh: its timers would
	 * only spin it. */
	uint64_t mesh = releasing ? UINT64_MAX : client_mesh_next_wake(&cl);

	if (mesh <= now)
		return 0;
	if (mesh - now < (uint64_t)timeout)
		timeout = (int)(mesh - now);

	for (size_t i = 0; i < N_EXCHANGES; i++) {
		uint64_t wake = exchange_wake(exchanges[i].ex);

		if (wake <= now)
			return 0;
		if (wake - now < (uint64_t)timeout)
			timeout = (int)(wake - now);
	}
	return timeout;
}

/* Sleeps until the next timer or event, and handles what came. */
static void wait_events(void)
{
	/* The hook's descriptor changes as hooks start and end, an exchange's
	 * with each connection. */
	struct pollfd pfd[PFD_EXCHANGES + N_EXCHANGES] = {
		[PFD_SIGNAL] = { .fd = sig_fd, .events = POLLIN },
		[PFD_RTNL] = { .fd = rtnl_monitor_fd(cl.mon), .events = POLLIN },
		[PFD_HOOK] = { .fd = hook_fd(), .events = POLLIN },
	};
	uint64_t now;
	int ret;

	for (size_t i = 0; i < N_EXCHANGES; i++) {
		pfd[PFD_EXCHANGES + i].fd = exchange_fd(exchanges[i].ex);
		pfd[PFD_EXCHANGES + i].events = exchange_events(exchanges[i].ex);
	}
	if (poll(pfd, PFD_EXCHANGES + N_EXCHANGES, poll_timeout(clock_boot_ms())) < 0 &&
	    errno != EINTR)
		fatal_system("poll: %s", strerror(errno));
	now = clock_boot_ms();
	if (pfd[PFD_HOOK].revents & POLLIN)
		hook_dispatch();
	/* All exchanges move on before any result is taken, and before the
	 * events that may end or replace an exchange, whose descriptor pfd[]
	 * would no longer name. */
	for (size_t i = 0; i < N_EXCHANGES; i++)
		exchange_advance(exchanges[i].ex, pfd[PFD_EXCHANGES + i].revents, now);
	for (size_t i = 0; i < N_EXCHANGES; i++)
		if (exchanges[i].ex->step == EXCHANGE_DONE)
			exchanges[i].done(now);
	if (pfd[PFD_RTNL].revents & POLLIN) {
		ret = rtnl_monitor_read(cl.mon, on_rtnl_event, NULL);
		if (ret)
			log_warnx("rtnetlink: %s", strerror(-ret));
	}
	if (pfd[PFD_SIGNAL].revents & POLLIN) {
		struct signalfd_siginfo si;

		if (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP)
				cl.next_try_ms = now;
			else
				on_stop_signal(now);
		}
	}
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
		{ "no-mesh", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct rtnl_link link;
	struct wgdev *dev = NULL;
	bool foreground = false;
	int verbose = 0, opt, ret;
	sigset_t mask;

	cl.sys = &sys_real;
	prober_init(&cl.prober);
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
		case 'm':
			cl.no_mesh = true;
			break;
		case 'V':
			printf("wg-dynamic-client %s\n", WGD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !argv[optind]) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cl.ifname = argv[optind];
	if (!cl.script_timeout)
		cl.script_timeout = 10;
	if (!cl.state_dir)
		cl.state_dir = DEFAULT_STATE_DIR;
	log_init("wg-dynamic-client", false, verbose);
	if (sodium_init() < 0)
		fatal_system("cannot initialise libsodium");
	signal(SIGPIPE, SIG_IGN);

	if (strlen(argv[optind]) >= IF_NAMESIZE) {
		log_warnx("%s: interface names are at most %d characters", argv[optind],
			  IF_NAMESIZE - 1);
		return EXIT_USAGE;
	}
	ret = rtnl_open(&cl.rt);
	if (ret)
		fatal_system("cannot open rtnetlink: %s", strerror(-ret));
	/* Watch before checking, so that a deletion in between is seen. */
	ret = rtnl_monitor_open(&cl.mon, RTMGRP_LINK);
	if (ret)
		fatal_system("cannot watch rtnetlink: %s", strerror(-ret));
	ret = rtnl_link_get(cl.rt, cl.ifname, &link);
	if (ret == -ENODEV) {
		log_warnx("no interface %s: bring up WireGuard first (wg-quick up %s)", cl.ifname,
			  cl.ifname);
		return EXIT_NO_IFACE;
	} else if (ret) {
		fatal_system("cannot read interface %s: %s", cl.ifname, strerror(-ret));
	}
	cl.ifindex = link.ifindex;
	cl.max_mtu = link.max_mtu;
	cl.link_up = link.flags & IFF_UP;
	snprintf(cl.state_file, sizeof(cl.state_file), "%s.lease", cl.ifname);
	if (open_state_dir(true))
		return EXIT_STATE_DIR;
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
	ret = find_hub_peer(dev, cl.hub_key);
	if (ret == -ENOENT) {
		log_warnx("no peer of %s has exactly fe80::/128 in its allowed-IPs: add it to "
			  "the hub peer (wg set %s peer HUBKEY allowed-ips fe80::/128,...)",
			  cl.ifname, cl.ifname);
		return EXIT_NO_HUB;
	} else if (ret) {
		log_warnx("several peers of %s have fe80::/128 in their allowed-IPs: keep it on "
			  "the hub peer alone", cl.ifname);
		return EXIT_NO_HUB;
	}
	cl.has_pubkey = dev->has_pubkey;
	memcpy(cl.pubkey, dev->pubkey, WG_KEY_LEN);
	/* Whether this run joins a mesh or not, what an earlier one left of
	 * it goes. */
	ret = client_mesh_init(&cl, dev, &peers_ex);
	wgdev_free(dev);
	if (ret)
		fatal_system("cannot set up the mesh: %s", strerror(-ret));
	ret = ensure_ll();
	if (ret)
		return ret;
	ensure_server_route();
	leasefile_load(&cl, clock_real_s(), clock_boot_ms());
	adopt_routes();

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		fatal_system("signalfd: %s", strerror(errno));

	if (!foreground) {
		log_set_syslog(true);
		daemonize();
	}
	/* The mesh's echo requests need raw sockets, opened now, while
	 * CAP_NET_RAW is still there. */
	if (!cl.no_mesh) {
		ret = prober_open(&cl.prober, cl.ifname);
		if (ret)
			log_warnx("cannot open raw ICMP sockets for the mesh's probes: %s; "
				  "an idle direct path will fall back to the hub (grant CAP_NET_RAW)",
				  strerror(-ret));
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
		uint64_t now = clock_boot_ms();

		hook_reap();
		state_tick(&cl, now);
		if (cl.link_up && !cl.requesting && !releasing && now >= cl.next_try_ms)
			request_lease(now);
		if (!releasing)
			client_mesh_run(&cl, now);
		wait_events();
	}
}
