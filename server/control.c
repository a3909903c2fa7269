// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/* wg-dynamic-server: the status socket and `show`. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/file.h"
#include "../common/log.h"
#include "../common/wgdev.h"
#include "lease.h"
#include "privsep.h"
#include "status.h"
#include "pool.h"
#include "server.h"

/* Orders device peers by public key, for bsearch(). */
static int by_pubkey(const void *a, const void *b)
{
	return memcmp(((const struct wgdev_peer *)a)->pubkey,
		      ((const struct wgdev_peer *)b)->pubkey, WG_KEY_LEN);
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
	struct engine *e = c->e;
	struct status st = {
		.ifname = cfg->ifname,
		.leasetime = cfg->leasetime,
		.now = clock_real_s(),
		.n_quarantined = lease_quarantine_count(e->leases),
		.counters = e->counters,
	};
	struct status_fill fill = { .st = &st, .now_boot = clock_boot_ms() / 1000 };
	size_t len = 0;

	st.leases = calloc(lease_count(e->leases) + 1, sizeof(*st.leases));
	st.pools = calloc(poolset_count(e->pools) + 1, sizeof(*st.pools));
	if (cfg->mesh) {
		st.mesh = true;
		st.mesh_epoch = e->dir.epoch;
		st.mesh_version = e->dir.version;
		st.mesh_tombstones = e->dir.n_gone;
		st.mesh_polls = e->n_polls;
		st.mesh_peers = calloc(e->dir.n_live + 1, sizeof(*st.mesh_peers));
	}
	if (st.leases && st.pools && (!st.mesh || st.mesh_peers)) {
		const struct dir_entry *d;
		uint32_t pos = DIR_NONE;

		while (st.mesh && (d = dir_next(&e->dir, &pos)) && st.n_mesh < e->dir.n_live) {
			if (d->pe.gone)
				continue;
			st.mesh_peers[st.n_mesh].pe = d->pe;
			st.mesh_peers[st.n_mesh++].version = d->version;
		}
		if (!priv_get_device(&fill.dev) && fill.dev->n_peers)
			qsort(fill.dev->peers, fill.dev->n_peers, sizeof(fill.dev->peers[0]),
			      by_pubkey);
		lease_foreach(e->leases, status_add_lease, &fill);
		for (size_t i = 0; i < poolset_count(e->pools); i++) {
			st.pools[i].prefix = *poolset_prefix(e->pools, i);
			st.pools[i].size = poolset_pool_size(e->pools, i);
			st.pools[i].free = poolset_pool_free(e->pools, i);
		}
		st.n_pools = poolset_count(e->pools);
		c->big_out = status_render(&st, format, &len);
	}
	wgdev_free(fill.dev);
	free(st.leases);
	free(st.pools);
	free(st.mesh_peers);
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
	ssize_t n = recv(c->w.fd, c->out + c->out_len, 64 - c->out_len, 0);

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

/* An event on a status query. */
static void ctl_on_event(struct watcher *w, uint32_t events)
{
	struct conn *c = container_of(w, struct conn, w);

	(void)events;
	if (c->state == CONN_WRITING)
		conn_flush(c);
	else if (c->state == CONN_READING)
		ctl_read(c);
}

/* Status queries waiting on the control socket w. */
void accept_ctl(struct watcher *w, uint32_t events)
{
	struct engine *e = container_of(w, struct engine, control);

	(void)events;
	for (;;) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (c) {
			c->w.fd = fd;
			c->w.on_event = ctl_on_event;
			c->e = e;
		}
		if (!c || watcher_add(e, &c->w, EPOLLIN)) {
			free(c);
			close(fd);
			continue;
		}
		c->ctl = true;
		c->watched = true;
		c->deadline_ms = clock_boot_ms() + 2000;
		c->next = e->conns;
		if (e->conns)
			e->conns->prev = c;
		e->conns = c;
		e->n_conns++;
	}
}

/* Removes IFACE.sock from the control directory when it is a socket: the
 * listener on port 970 is ours, so such a socket there is stale. */
int remove_stale_socket(const struct control_socket *cs)
{
	struct stat st;

	if (fstatat(cs->dir_fd, cs->name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	return unlinkat(cs->dir_fd, cs->name, 0) ? -errno : 0;
}

/*
 * The control socket, /run/wg-dynamic/IFACE.sock: root's alone (mode 0600),
 * opened here and served by the engine, which inherits it. The directory
 * is checked as the state directory is, so its path leads where its
 * descriptor does: no one else can change an entry in it or above it.
 */
void open_control_socket(struct control_socket *cs)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char why[2 * 4096 + 256];
	mode_t mask;
	int fd, ret;

	cs->fd = cs->dir_fd = -1;
	snprintf(cs->path, sizeof(cs->path), "%s/%s.sock", CONTROL_DIR, cfg->ifname);
	snprintf(cs->name, sizeof(cs->name), "%s.sock", cfg->ifname);
	ret = file_dir_open_secure(CONTROL_DIR, 0, true, &cs->dir_fd, why, sizeof(why));
	if (ret) {
		if (ret == -EPERM && *why)
			log_warnx("control directory %s; no status queries", why);
		else
			log_warnx("cannot create %s: %s; no status queries", CONTROL_DIR,
				  strerror(-ret));
		return;
	}
	ret = remove_stale_socket(cs);
	if (ret) {
		log_warnx("%s is %s; it is left alone, and there are no status queries", cs->path,
			  ret == -EEXIST ? "not a socket" : strerror(-ret));
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	memcpy(sa.sun_path, cs->path, strlen(cs->path) + 1);
	/* Born 0600: no moment in which another user may connect. */
	mask = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(mask);
	if (ret || listen(fd, 16)) {
		log_warnx("cannot listen on %s: %s; no status queries", cs->path,
			  strerror(errno));
		close(fd);
		return;
	}
	cs->fd = fd;
}

/* wg-dynamic-server show IFACE [--json | --prometheus] */
int show_main(int argc, char *argv[])
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

