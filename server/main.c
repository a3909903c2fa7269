// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * wg-dynamic-server: leases addresses to the peers of a WireGuard interface.
 *
 * A peer connects from its link-local /128 to [fe80::]:970; WireGuard's
 * cryptokey routing ties that source address to one public key, which is
 * the peer's identity. The server leases one IPv4 and one IPv6 address per
 * peer from its pools and keeps the peer's allowed-IPs in step.
 *
 * This file is the start: the options, the checks of the set-up, the state
 * directory, and the split into a privileged parent (parent.c) and an
 * unprivileged engine (engine.c), whose event loop serves connections
 * (conn.c) and status queries (control.c) once restore.c has made the
 * journal and the device agree.
 */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "../common/file.h"
#include "../common/log.h"
#include "../common/rtnl.h"
#include "../common/version.h"
#include "../common/wgdev.h"
#include "../protocol/proto.h"
#include "journal.h"
#include "server.h"

static struct server_config config;
const struct server_config *const cfg = &config;

/* What the set-up opens with privileges, for the side that uses it. */
static struct {
	struct wgctl *wg;
	struct rtnl *rt;
	struct passwd *pw;
	int listen_fd;
	/* The engine keeps only engine_dir_fd, until its chroot: a directory
	 * outside would be a way out. */
	int state_fd, engine_dir_fd;
	struct control_socket ctl;
} setup;

/* ---- start-up ---- */

/* A forwarding interface joins fe80:: as the subnet-router anycast address
 * (RFC 4291, 2.6.1), and the kernel refuses TCP to anycast. Forwarding is
 * decided by the global switch, so turning it off on this interface alone
 * keeps the hub routing between its peers. */
static void disable_iface_forwarding(void)
{
	char path[128], val = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/forwarding", config.ifname);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	if (read(fd, &val, 1) == 1 && val != '0') {
		if (pwrite(fd, "0\n", 2, 0) == 2)
			log_info("turned IPv6 forwarding off on %s alone, so that fe80:: is not "
				 "anycast there; the hub still forwards", config.ifname);
		else
			log_warn("cannot write %s", path);
	}
	close(fd);
}

/* Whether a sysctl under /proc/sys/net reads 0; false when unreadable. */
static bool sysctl_off(const char *path)
{
	char val = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	bool off;

	if (fd < 0)
		return false;
	off = read(fd, &val, 1) == 1 && val == '0';
	close(fd);
	return off;
}

/* Whether the hub leases IPv6: an IPv6 pool given, or an IPv6 route on the
 * interface other than a link-local one, which the engine takes as a pool. */
static bool has_ipv6_pool(void)
{
	struct wgd_ip *routes = NULL;
	bool v6 = false;
	size_t n = 0;

	for (size_t i = 0; i < config.n_pools && !v6; i++)
		v6 = config.pools[i].family == AF_INET6;
	if (!v6 && !rtnl_route_list(setup.rt, config.ifindex, AF_INET6, &routes, &n)) {
		for (size_t i = 0; i < n && !v6; i++)
			v6 = routes[i].family == AF_INET6 && !wgd_ip_is_linklocal6(&routes[i]);
		free(routes);
	}
	return v6;
}

/*
 * Mesh peers that cannot reach each other directly go through the hub,
 * which then forwards between its peers: warn when it would not. The
 * interface's own IPv6 switch is off (disable_iface_forwarding()), but the
 * global one decides.
 */
static void check_mesh_forwarding(void)
{
	if (!config.mesh)
		return;
	if (sysctl_off("/proc/sys/net/ipv4/ip_forward"))
		log_warnx("--mesh: IPv4 forwarding is off, so the hub cannot relay between peers "
			  "not yet direct: sysctl -w net.ipv4.ip_forward=1");
	if (has_ipv6_pool() && sysctl_off("/proc/sys/net/ipv6/conf/all/forwarding"))
		log_warnx("--mesh: IPv6 forwarding is off, so the hub cannot relay between peers "
			  "not yet direct: sysctl -w net.ipv6.conf.all.forwarding=1");
}

/*
 * Every long poll holds a descriptor in the engine, beside the
 * connections, the journal and the sockets: the soft limit a service
 * manager gives (1024) is too low for --mesh-max-polls, and a descriptor
 * short, accept() would fail while the connections wait.
 */
static void raise_fd_limit(void)
{
	rlim_t want = (rlim_t)(config.max_polls + config.max_conns + 64);
	struct rlimit rl;

	if (!config.mesh || getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		log_warnx("--mesh: at most %llu open files, fewer than the %llu that %zu long polls "
			  "and %zu connections take: raise LimitNOFILE, or lower --mesh-max-polls",
			  (unsigned long long)rl.rlim_max, (unsigned long long)want,
			  config.max_polls, config.max_conns);
		want = rl.rlim_max;
	}
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		log_warn("cannot raise the open files limit to %llu", (unsigned long long)want);
}

static void ensure_server_ll(void)
{
	struct rtnl_addr *addrs = NULL;
	struct wgd_ip ll = { .family = AF_INET6, .cidr = 64, .bytes = { 0xfe, 0x80 } };
	size_t n = 0;
	int ret;

	ret = rtnl_addr_list(setup.rt, config.ifindex, AF_INET6, &addrs, &n);
	if (ret)
		fatalx_status(EXIT_SYSTEM, "cannot list the addresses of %s: %s", config.ifname,
			      strerror(-ret));
	for (size_t i = 0; i < n; i++) {
		if (wgd_ip_equal(&addrs[i].ip, &ll)) {
			free(addrs);
			return;
		}
	}
	free(addrs);
	ret = rtnl_addr_add(setup.rt, config.ifindex, &ll, UINT32_MAX, UINT32_MAX);
	if (ret) {
		log_warnx("%s has no fe80::/64 and adding it failed: %s; add it with: ip addr add "
			  "fe80::/64 dev %s", config.ifname, strerror(-ret), config.ifname);
		exit(EXIT_SYSTEM);
	}
	log_info("added fe80::/64 to %s, the address clients reach the server at", config.ifname);
}

static int open_listener(void)
{
	struct sockaddr_in6 sa = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_addr = { .s6_addr = { 0xfe, 0x80 } },
		.sin6_scope_id = config.ifindex,
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

static int split(void)
{
	int sp[2], ret;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp))
		fatal_status(EXIT_SYSTEM, "socketpair");
	pid = fork();
	if (pid < 0)
		fatal_status(EXIT_SYSTEM, "fork");
	if (pid == 0) {
		struct engine_start start = {
			.parent_fd = sp[1],
			.listen_fd = setup.listen_fd,
			.ctl_fd = setup.ctl.fd,
			.dir_fd = setup.engine_dir_fd,
			.rt = setup.rt,
			.uid = setup.pw->pw_uid,
			.gid = setup.pw->pw_gid,
		};

		close(sp[0]);
		/* Nothing outside its directory stays open. */
		wgctl_close(setup.wg);
		close(setup.state_fd);
		if (setup.ctl.dir_fd >= 0)
			close(setup.ctl.dir_fd);
		engine_main(&start);
	}
	close(sp[1]);
	close(setup.listen_fd);
	close(setup.state_fd);
	close(setup.engine_dir_fd);
	if (setup.ctl.fd >= 0)
		close(setup.ctl.fd);
	ret = parent_main(sp[0], setup.wg, pid);
	if (setup.ctl.fd >= 0)
		remove_stale_socket(&setup.ctl);
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
			  "--state-dir", config.state_dir, strerror(-ret));
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

	/* getpwnam() would overwrite what setup.pw points to. */
	if (getpwnam_r("nobody", &pwbuf, buf, sizeof(buf), &nobody))
		nobody = NULL;
	if (st->st_uid != setup.pw->pw_uid && (!nobody || st->st_uid != nobody->pw_uid))
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

	fd = openat(setup.state_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return -1;
		fatal_status(EXIT_STATE_DIR, "cannot look at %s/%s", canon, name);
	}
	if (fstat(fd, &st))
		fatal_status(EXIT_STATE_DIR, "cannot look at %s/%s", canon, name);
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		log_warnx("%s/%s is %s, not a lease journal to move into %s/%s; it is left "
			  "untouched: remove it, or move it there yourself", canon, name,
			  S_ISLNK(st.st_mode) ? "a symbolic link" :
			  S_ISREG(st.st_mode) ? "a file with other names (hard links)" :
						"not a regular file", canon, ENGINE_DIR);
		exit(EXIT_JOURNAL);
	}
	if (!fstatat(setup.engine_dir_fd, name, &st, AT_SYMLINK_NOFOLLOW)) {
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
	int fd = openat(setup.engine_dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	/* Anything but a journal of one name stays as it is: the engine
	 * refuses it with its own message. */
	if (fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	    fchownat(fd, "", setup.pw->pw_uid, setup.pw->pw_gid, AT_EMPTY_PATH))
		fatal_status(EXIT_STATE_DIR, "cannot hand %s/%s/%s to user %s", canon, ENGINE_DIR,
			     name, config.user);
	if (fd >= 0)
		close(fd);
	if (fchmod(setup.engine_dir_fd, 0700) ||
	    fchown(setup.engine_dir_fd, setup.pw->pw_uid, setup.pw->pw_gid) ||
	    fsync(setup.engine_dir_fd))
		fatal_status(EXIT_STATE_DIR, "cannot hand %s/%s to user %s", canon, ENGINE_DIR, config.user);
}

static void prepare_state_dir(void)
{
	char why[2 * 4096 + 256], name[IF_NAMESIZE + 16], tmp[IF_NAMESIZE + 16];
	struct file_dir d;
	struct stat st;
	int pfd, old, ret;

	ret = file_dir_walk(config.state_dir, true, 0755, &d, why, sizeof(why));
	if (ret)
		state_dir_refused(ret, why);
	ret = file_dir_judge(&d.st, d.path, 0, why, sizeof(why));
	if (ret && is_old_state_dir(d.fd, &d.st)) {
		take_state_dir_back(d.fd, &d.st, d.path);
		ret = 0;
	}
	if (ret)
		state_dir_refused(ret, why);
	setup.state_fd = file_dir_reopen(d.fd);
	close(d.fd);
	if (setup.state_fd < 0)
		state_dir_refused(setup.state_fd, "");

	ret = file_dir_open_at(setup.state_fd, ENGINE_DIR, true, 0700, &pfd, &st, NULL);
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
	if (st.st_uid != 0 && st.st_uid != setup.pw->pw_uid) {
		log_warnx("state directory %s: %s/%s belongs to user %u, not to %s, who runs the "
			  "engine: give --user to that user, or hand it over (chown -R %s: %s/%s)",
			  d.path, d.path, ENGINE_DIR, (unsigned)st.st_uid, config.user, config.user, d.path,
			  ENGINE_DIR);
		exit(EXIT_STATE_DIR);
	}
	if (!(st.st_mode & S_IWUSR) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_warnx("state directory %s: %s/%s has mode %03o: only its user may write it "
			  "(chmod 700 %s/%s)", d.path, d.path, ENGINE_DIR,
			  (unsigned)(st.st_mode & 0777), d.path, ENGINE_DIR);
		exit(EXIT_STATE_DIR);
	}
	setup.engine_dir_fd = file_dir_reopen(pfd);
	close(pfd);
	if (setup.engine_dir_fd < 0)
		fatalx_status(EXIT_STATE_DIR, "cannot open %s/%s: %s", d.path, ENGINE_DIR,
			      strerror(-setup.engine_dir_fd));

	snprintf(name, sizeof(name), "%s.leases", config.ifname);
	snprintf(tmp, sizeof(tmp), "%s.leases.tmp", config.ifname);
	old = old_journal(d.path, name);
	if (old >= 0) {
		/* Root's for the moment of the move: without CAP_DAC_OVERRIDE,
		 * root cannot write another user's directory. The state
		 * directory is root's now, so the name stays put; renameat()
		 * moves the name itself, never what it might point to. */
		if ((st.st_uid != 0 && fchown(setup.engine_dir_fd, 0, 0)) ||
		    fchownat(old, "", setup.pw->pw_uid, setup.pw->pw_gid, AT_EMPTY_PATH) ||
		    renameat2(setup.state_fd, name, setup.engine_dir_fd, name, RENAME_NOREPLACE) ||
		    fsync(setup.state_fd))
			fatal_status(EXIT_STATE_DIR, "cannot move %s/%s into %s/%s", d.path, name,
				     d.path, ENGINE_DIR);
		close(old);
		st.st_uid = 0;
		log_info("moved the lease journal %s/%s to %s/%s/%s, where the engine keeps it now",
			 d.path, name, d.path, ENGINE_DIR, name);
	}
	/* What a compaction cut short there left. */
	unlinkat(setup.state_fd, tmp, 0);
	if (st.st_uid == 0)
		hand_over_engine_dir(d.path, name);
	snprintf(config.journal_name, sizeof(config.journal_name), "%s/%s/%s", d.path, ENGINE_DIR,
		 name);
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
		"                      3 with --auto-ll, 1 with --mesh)\n"
		"  --mesh              give leased peers the directory of each other, so that\n"
		"                      they connect directly\n"
		"  --mesh-max-polls N  directory long polls held at once (default 4096)\n"
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
		{ "mesh", no_argument, NULL, 'M' },
		{ "mesh-max-polls", required_argument, NULL, 'O' },
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
	config.leasetime = 3600;
	config.state_dir = STATE_DIR;
	config.user = ENGINE_USER;
	setup.state_fd = setup.engine_dir_fd = setup.ctl.dir_fd = -1;
	config.idle_timeout_ms = IDLE_TIMEOUT_S * 1000;
	config.max_conns = MAX_CONNS;
	config.max_conns_per_peer = MAX_CONNS_PER_PEER;
	config.max_polls = MESH_MAX_POLLS;
	while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (config.n_pools == sizeof(config.pools) / sizeof(config.pools[0])) {
				fprintf(stderr, "wg-dynamic-server: too many --pool options\n");
				return EXIT_USAGE;
			}
			parse_prefix_arg("--pool", optarg, &config.pools[config.n_pools++]);
			break;
		case 'r':
			if (config.n_routes == WGD_MAX_ROUTES) {
				fprintf(stderr, "wg-dynamic-server: at most %d --route options\n",
					WGD_MAX_ROUTES);
				return EXIT_USAGE;
			}
			parse_prefix_arg("--route", optarg, &config.routes[config.n_routes++]);
			break;
		case 'l':
			config.leasetime = (uint32_t)seconds_arg("--lease-time", optarg,
							      WGD_LEASE_MIN_S, 86400 * 365);
			break;
		case 'q':
			quarantine = seconds_arg("--quarantine", optarg, 0, 86400 * 365);
			break;
		case 'R':
			refresh = seconds_arg("--device-refresh", optarg, 1, 86400);
			break;
		case 's':
			config.state_dir = optarg;
			break;
		case 'u':
			config.user = optarg;
			break;
		case 'd':
			if (config.n_dns == WGD_MAX_DNS ||
			    wgd_ip_parse(&config.dns[config.n_dns], optarg, strlen(optarg), true) ||
			    config.dns[config.n_dns].cidr != wgd_ip_bits(config.dns[config.n_dns].family)) {
				fprintf(stderr, "wg-dynamic-server: --dns %s: give one address, at most "
					"%d times\n", optarg, WGD_MAX_DNS);
				return EXIT_USAGE;
			}
			config.n_dns++;
			break;
		case 'D':
			if (!dns_search_ok(optarg)) {
				fprintf(stderr, "wg-dynamic-server: --dns-search %s: give domains "
					"separated by commas, no spaces, at most %d characters\n", optarg,
					WGD_MAX_DNS_SEARCH - 1);
				return EXIT_USAGE;
			}
			snprintf(config.dns_search, sizeof(config.dns_search), "%s", optarg);
			break;
		case 'm':
			config.mtu = (uint32_t)count_arg("--mtu", optarg, 1280, 65535);
			break;
		case 'I':
			config.idle_timeout_ms = (uint32_t)seconds_arg("--idle-timeout", optarg, 1, 3600) * 1000;
			break;
		case 'C':
			config.max_conns = (size_t)count_arg("--max-connections", optarg, 1, 65536);
			break;
		case 'P':
			config.max_conns_per_peer =
				(size_t)count_arg("--max-connections-per-peer", optarg, 1, 65536);
			break;
		case 'a':
			config.auto_ll = true;
			break;
		case 'M':
			config.mesh = true;
			break;
		case 'O':
			config.max_polls =
				(size_t)count_arg("--mesh-max-polls", optarg, 1, 1000000);
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
	config.ifname = argv[optind];
	config.quarantine = quarantine >= 0 ? (uint32_t)quarantine : config.leasetime;
	config.refresh_ms = refresh > 0 ? (uint32_t)refresh * 1000 :
		config.mesh ? REFRESH_PERIOD_MESH_MS :
		config.auto_ll ? REFRESH_PERIOD_AUTO_LL_MS : REFRESH_PERIOD_MS;
	log_init("wg-dynamic-server", false, verbose);
	if (sodium_init() < 0)
		fatalx_status(EXIT_SYSTEM, "cannot initialise libsodium");
	signal(SIGPIPE, SIG_IGN);

	if (strlen(config.ifname) >= IF_NAMESIZE) {
		log_warnx("%s: interface names are at most %d characters", config.ifname,
			  IF_NAMESIZE - 1);
		return EXIT_USAGE;
	}
	ret = rtnl_open(&setup.rt);
	if (ret)
		fatalx_status(EXIT_SYSTEM, "cannot open rtnetlink: %s", strerror(-ret));
	ret = rtnl_link_get(setup.rt, config.ifname, &link);
	if (ret == -ENODEV) {
		log_warnx("no interface %s: create it first (ip link add %s type wireguard, or "
			  "start wireguard-go %s)", config.ifname, config.ifname, config.ifname);
		return EXIT_NO_IFACE;
	} else if (ret) {
		fatalx_status(EXIT_SYSTEM, "cannot read interface %s: %s", config.ifname, strerror(-ret));
	}
	config.ifindex = link.ifindex;

	ret = wgctl_open(&setup.wg, config.ifname);
	if (ret) {
		log_warnx("%s is not a WireGuard interface (no UAPI socket in %s and not kernel "
			  "WireGuard): run the server on the hub's WireGuard interface",
			  config.ifname, wgctl_uapi_dir);
		return EXIT_NOT_WG;
	}

	setup.pw = getpwnam(config.user);
	if (!setup.pw) {
		log_warnx("no user %s to run the engine as: create it (useradd --system "
			  "--no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "
			  "--user-group %s) or name another with --user", config.user, config.user);
		return EXIT_USER;
	}
	prepare_state_dir();
	check_mesh_forwarding();
	raise_fd_limit();
	disable_iface_forwarding();
	ensure_server_ll();
	setup.listen_fd = open_listener();
	if (setup.listen_fd < 0) {
		if (setup.listen_fd == -EADDRINUSE)
			log_warnx("port 970 on %s is in use: stop the other wg-dynamic-server there "
				  "first", config.ifname);
		else {
			log_warnx("cannot listen on [fe80::%%%s]:970: %s", config.ifname,
				  strerror(-setup.listen_fd));
			return EXIT_SYSTEM;
		}
		return EXIT_SOCKET;
	}
	open_control_socket(&setup.ctl);
	log_info("%s is %s WireGuard", config.ifname, wgctl_backend_name(setup.wg));
	return split();
}
