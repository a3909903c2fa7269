// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * The client's side of the mesh: the glue between the hub, the WireGuard
 * device and the pure state machine of common/mesh.c, which makes every
 * decision.
 *
 *  - One long poll to the hub at all times (request_peers), sent again as
 *    soon as it is answered, and after a failure with a backoff of 1 s
 *    doubling to 30 s. What the directory said is kept meanwhile: a hub
 *    whose server restarts does not take the direct paths down with it.
 *    The lease's requests go first (client_mesh_pause_poll()).
 *  - The device is read when the state machine asks, and what it says of
 *    the mesh's peers goes back to it; its actions go to the device
 *    through client_sys.mesh_apply.
 *  - Every key is recorded in STATE_DIR/IFACE.mesh before it is added, so
 *    that a run after a crash removes exactly what an earlier one left.
 *    Peers that are on the device and not in the record, other than the
 *    hub, are the administrator's: the state machine never touches them.
 *  - STATE_DIR/IFACE.mesh-status says, for show, what path each peer
 *    takes and since when.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/array.h"
#include "../common/clock.h"
#include "../common/file.h"
#include "../common/key.h"
#include "../common/log.h"
#include "../common/ratelimit.h"
#include "../common/strbuf.h"
#include "client.h"

/* The record never holds more keys than the mesh has peers, and some left
 * over from removals that failed. */
#define MESH_RECORD_MAX (MESH_MAX_PEERS + 256)
#define RECORD_LINE (WG_KEY_B64_LEN - 1 + 1)
/* A status line: "peer=", a key, two addresses, a path, an endpoint and
 * a time, with their spaces. */
#define STATUS_LINE_MAX (8 + WGD_KEY_B64 + 2 * INET6_ADDRSTRLEN + 16 + WGD_ENDPOINT_STRLEN + 24)
#define STATUS_MAX (128 + (size_t)MESH_MAX_PEERS * STATUS_LINE_MAX)

static int64_t clock_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool key_eq(const uint8_t a[WG_KEY_LEN], const uint8_t b[WG_KEY_LEN])
{
	return !memcmp(a, b, WG_KEY_LEN);
}

static bool key_in(const uint8_t (*keys)[WG_KEY_LEN], size_t n, const uint8_t key[WG_KEY_LEN])
{
	for (size_t i = 0; i < n; i++)
		if (key_eq(keys[i], key))
			return true;
	return false;
}

static const char *key_b64(const uint8_t key[WG_KEY_LEN], char buf[WG_KEY_B64_LEN])
{
	wgkey_to_base64(buf, key);
	return buf;
}

/* ---- the join decision and the request ---- */

bool client_mesh_wanted(const struct client *cl)
{
	return !cl->no_mesh && cl->mesh_offered && cl->lease.bound && cl->has_pubkey;
}

void client_mesh_build_request(const struct client *cl, struct wgd_msg *req)
{
	const struct client_mesh *cm = &cl->mesh;

	memset(req, 0, sizeof(*req));
	req->cmd = WGD_CMD_REQUEST_PEERS;
	req->version = 1;
	req->has_epoch = req->has_since = true;
	/* A since without its epoch means nothing: both or neither. */
	req->epoch = cm->since ? cm->epoch : 0;
	req->since = cm->epoch ? cm->since : 0;
	req->port = cm->port;
	req->n_cand = cm->n_cand <= WGD_MAX_CANDIDATES ? cm->n_cand : WGD_MAX_CANDIDATES;
	memcpy(req->cand, cm->cand, req->n_cand * sizeof(req->cand[0]));
}

/* ---- candidates ---- */

static bool in_prefix(const struct wgd_ip *a, const char *prefix)
{
	struct wgd_ip p;

	return !wgd_ip_parse(&p, prefix, strlen(prefix), true) && p.family == a->family &&
	       wgd_ip_contains(&p, a);
}

/* An address a peer elsewhere might reach us at. */
static bool candidate_ok(const struct rtnl_addr *ra, const struct wgd_ip *routes, size_t n_routes)
{
	/* Not yet ours (duplicate address detection), or on its way out. */
	const uint32_t unusable = IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED;
	struct wgd_ip a = ra->ip;

	if (ra->flags & unusable)
		return false;
	if (a.family == AF_INET) {
		static const char *const not4[] = {
			"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
		};

		for (size_t i = 0; i < sizeof(not4) / sizeof(not4[0]); i++)
			if (in_prefix(&a, not4[i]))
				return false;
	} else if (a.family == AF_INET6) {
		/* Global unicast only: no loopback, link-local, ULA (a LAN's
		 * IPv4 serves there), multicast or mapped address. */
		if (!in_prefix(&a, "2000::/3"))
			return false;
	} else {
		return false;
	}
	a.cidr = (uint8_t)wgd_ip_bits(a.family);
	wgd_ip_mask(&a);
	/* Inside the tunnel's routes it would be reached through the tunnel. */
	for (size_t i = 0; i < n_routes; i++)
		if (routes[i].family == a.family && wgd_ip_contains(&routes[i], &a))
			return false;
	return true;
}

size_t client_mesh_candidates(const struct rtnl_addr *addrs, size_t n, const struct wgd_ip *routes,
			      size_t n_routes, struct wgd_ip out[WGD_MAX_CANDIDATES])
{
	/* IPv4 takes the first places, with one kept for IPv6 when the host
	 * has it: a peer tries our IPv6 only when it has IPv6 itself. */
	size_t n_out = 0, n4 = 0, n6 = 0, want4, want6;

	for (size_t i = 0; i < n; i++) {
		if (!candidate_ok(&addrs[i], routes, n_routes))
			continue;
		if (addrs[i].ip.family == AF_INET)
			n4++;
		else
			n6++;
	}
	want6 = n6 ? (n4 >= WGD_MAX_CANDIDATES - 1 ? 1 : WGD_MAX_CANDIDATES - n4) : 0;
	if (want6 > n6)
		want6 = n6;
	want4 = WGD_MAX_CANDIDATES - want6;
	for (int fam = 0; fam < 2; fam++) {
		size_t left = fam ? want6 : want4;

		for (size_t i = 0; i < n && left && n_out < WGD_MAX_CANDIDATES; i++) {
			struct wgd_ip a = addrs[i].ip;
			bool dup = false;

			if (a.family != (fam ? AF_INET6 : AF_INET) ||
			    !candidate_ok(&addrs[i], routes, n_routes))
				continue;
			a.cidr = (uint8_t)wgd_ip_bits(a.family);
			wgd_ip_mask(&a);
			for (size_t j = 0; j < n_out; j++)
				dup |= wgd_ip_equal(&out[j], &a);
			if (dup)
				continue;
			out[n_out++] = a;
			left--;
		}
	}
	return n_out;
}

/* ---- the record of the keys we add ---- */

ssize_t client_mesh_record_format(const uint8_t (*keys)[WG_KEY_LEN], size_t n, char *buf,
				  size_t size)
{
	char b64[WG_KEY_B64_LEN];
	size_t len = 0;

	if (!size || n > (size - 1) / RECORD_LINE)
		return -ENOSPC;
	for (size_t i = 0; i < n; i++) {
		wgkey_to_base64(b64, keys[i]);
		memcpy(buf + len, b64, WG_KEY_B64_LEN - 1);
		buf[len + WG_KEY_B64_LEN - 1] = '\n';
		len += RECORD_LINE;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

ssize_t client_mesh_record_parse(const char *buf, size_t len, uint8_t (*keys)[WG_KEY_LEN],
				 size_t max)
{
	char b64[WG_KEY_B64_LEN];
	size_t n = 0;

	if (len % RECORD_LINE)
		return -EBADMSG;
	for (size_t off = 0; off < len; off += RECORD_LINE) {
		if (buf[off + RECORD_LINE - 1] != '\n')
			return -EBADMSG;
		memcpy(b64, buf + off, WG_KEY_B64_LEN - 1);
		b64[WG_KEY_B64_LEN - 1] = '\0';
		if (n == max)
			return -EBADMSG;
		if (wgkey_from_base64(keys[n], b64))
			return -EBADMSG;
		if (!key_in((const uint8_t(*)[WG_KEY_LEN])keys, n, keys[n]))
			n++;
	}
	return (ssize_t)n;
}

static void record_names(struct client *cl)
{
	struct client_mesh *cm = &cl->mesh;

	snprintf(cm->rec_file, sizeof(cm->rec_file), "%s.mesh", cl->ifname);
	snprintf(cm->status_file, sizeof(cm->status_file), "%s.mesh-status", cl->ifname);
}

int client_mesh_record_save(struct client *cl)
{
	struct client_mesh *cm = &cl->mesh;
	size_t size = cm->n_rec * RECORD_LINE + 1;
	ssize_t len;
	char *buf;
	int ret;

	if (!cm->n_rec) {
		/* unlinkat() removes a link itself, never what it points to. */
		ret = unlinkat(cl->state_fd, cm->rec_file, 0) && errno != ENOENT ? -errno : 0;
		goto out;
	}
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	len = client_mesh_record_format((const uint8_t(*)[WG_KEY_LEN])cm->rec, cm->n_rec, buf,
					size);
	ret = len < 0 ? (int)len :
			file_write_atomic_at(cl->state_fd, cm->rec_file, buf, (size_t)len, 0600);
	free(buf);
out:
	if (!ret)
		cm->rec_dirty = false;
	return ret;
}

int client_mesh_record_load(struct client *cl)
{
	struct client_mesh *cm = &cl->mesh;
	size_t max = (size_t)MESH_RECORD_MAX * RECORD_LINE;
	uint8_t(*keys)[WG_KEY_LEN] = NULL;
	char *buf;
	ssize_t len, n;

	cm->n_rec = 0;
	buf = malloc(max + 1);
	if (!buf)
		return -ENOMEM;
	len = file_read_at(cl->state_fd, cm->rec_file, buf, max + 1);
	if (len < 0) {
		n = len;
		goto out;
	}
	keys = calloc(MESH_RECORD_MAX, WG_KEY_LEN);
	if (!keys) {
		n = -ENOMEM;
		goto out;
	}
	n = (size_t)len > max ? -EBADMSG :
				client_mesh_record_parse(buf, (size_t)len, keys, MESH_RECORD_MAX);
	if (n >= 0) {
		free(cm->rec);
		cm->rec = keys;
		cm->n_rec = (size_t)n;
		cm->cap_rec = MESH_RECORD_MAX;
		keys = NULL;
	}
out:
	free(keys);
	free(buf);
	return n < 0 ? (int)n : 0;
}

static void record_drop(struct client_mesh *cm, const uint8_t key[WG_KEY_LEN])
{
	for (size_t i = 0; i < cm->n_rec; i++) {
		if (key_eq(cm->rec[i], key)) {
			memmove(cm->rec[i], cm->rec[cm->n_rec - 1], WG_KEY_LEN);
			cm->n_rec--;
			cm->rec_dirty = true;
			return;
		}
	}
}

/* Before a key goes on the device, it goes on the disk. */
static int record_add(struct client *cl, const uint8_t key[WG_KEY_LEN])
{
	struct client_mesh *cm = &cl->mesh;
	int ret;

	if (key_in((const uint8_t(*)[WG_KEY_LEN])cm->rec, cm->n_rec, key))
		return 0;
	if (cm->n_rec >= MESH_RECORD_MAX)
		return -ENOSPC;
	ret = array_reserve(&cm->rec, &cm->cap_rec, cm->n_rec, WG_KEY_LEN, 16);
	if (ret)
		return ret;
	memcpy(cm->rec[cm->n_rec++], key, WG_KEY_LEN);
	ret = client_mesh_record_save(cl);
	if (ret) {
		static bool said;

		/* Said once: an unrecorded key is never added, so nothing
		 * is at risk meanwhile but the direct paths. */
		if (!said)
			log_warnx("cannot record the mesh's peers in %s/%s: %s; no peer is added "
				  "until the state directory can be written",
				  cl->state_dir, cm->rec_file, strerror(-ret));
		said = true;
		cm->n_rec--;
	}
	return ret;
}

/* ---- the state machine's configuration ---- */

static void config_of(const struct client_mesh *cm, const struct client *cl,
		      struct mesh_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	memcpy(cfg->self_key, cm->self_key, WG_KEY_LEN);
	memcpy(cfg->hub_key, cl->hub_key, WG_KEY_LEN);
	cfg->hub_endpoint = cm->hub_endpoint;
	cfg->admin_keys = (const uint8_t(*)[WG_KEY_LEN])cm->admin;
	cfg->n_admin_keys = cm->n_admin;
	cfg->routes = cm->routes;
	cfg->n_routes = cm->n_routes;
}

/* The lease's routes, as the mesh's peers must lie inside them; true when
 * they changed. */
static bool routes_from_lease(struct client *cl)
{
	struct client_mesh *cm = &cl->mesh;
	struct wgd_ip routes[WGD_MAX_ROUTES];
	size_t n = 0;

	memset(routes, 0, sizeof(routes));
	for (size_t i = 0; i < cl->lease.n_routes && i < WGD_MAX_ROUTES; i++)
		routes[n++] = cl->lease.routes[i].dst;
	if (n == cm->n_routes && !memcmp(routes, cm->routes, n * sizeof(routes[0])))
		return false;
	memcpy(cm->routes, routes, sizeof(routes));
	cm->n_routes = n;
	return true;
}

static void config_apply(struct client *cl)
{
	struct client_mesh *cm = &cl->mesh;
	struct mesh_config cfg;
	int ret;

	if (!cm->m)
		return;
	config_of(cm, cl, &cfg);
	ret = mesh_set_config(cm->m, &cfg);
	if (ret)
		log_warnx("cannot reconfigure the mesh: %s", strerror(-ret));
}

/* A peer the administrator added while we run: never ours to touch. The
 * array is replaced, not grown in place, as the mesh holds the old one
 * until it is told of the new. */
static int admin_add(struct client *cl, const uint8_t key[WG_KEY_LEN])
{
	struct client_mesh *cm = &cl->mesh;
	uint8_t(*keys)[WG_KEY_LEN], (*old)[WG_KEY_LEN] = cm->admin;

	keys = calloc(cm->n_admin + 1, WG_KEY_LEN);
	if (!keys)
		return -ENOMEM;
	if (cm->n_admin)
		memcpy(keys, cm->admin, cm->n_admin * WG_KEY_LEN);
	memcpy(keys[cm->n_admin], key, WG_KEY_LEN);
	cm->admin = keys;
	cm->n_admin++;
	cm->cap_admin = cm->n_admin;
	config_apply(cl);
	free(old);
	return 0;
}

/* ---- start-up ---- */

int client_mesh_init(struct client *cl, const struct wgdev *dev, struct exchange *ex)
{
	struct client_mesh *cm = &cl->mesh;
	size_t removed = 0;
	char b64[WG_KEY_B64_LEN];
	int ret;

	cm->ex = ex;
	record_names(cl);
	memcpy(cm->self_key, dev->pubkey, WG_KEY_LEN);
	cm->port = dev->listen_port;
	ret = client_mesh_record_load(cl);
	if (ret == -EBADMSG)
		log_warnx("%s/%s is not a record of mesh peers; leaving every peer on %s as "
			  "it is",
			  cl->state_dir, cm->rec_file, cl->ifname);
	else if (ret && ret != -ENOENT)
		log_warnx("cannot read %s/%s: %s; leaving every peer on %s as it is", cl->state_dir,
			  cm->rec_file, strerror(-ret), cl->ifname);

	/* The administrator's: every peer but the hub and those recorded,
	 * whether their removal below works or not. */
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *p = &dev->peers[i];

		if (key_eq(p->pubkey, cl->hub_key)) {
			wgdev_peer_endpoint(p, &cm->hub_endpoint);
			continue;
		}
		if (key_in((const uint8_t(*)[WG_KEY_LEN])cm->rec, cm->n_rec, p->pubkey))
			continue;
		ret = array_reserve(&cm->admin, &cm->cap_admin, cm->n_admin, WG_KEY_LEN, 8);
		if (ret)
			return ret;
		memcpy(cm->admin[cm->n_admin++], p->pubkey, WG_KEY_LEN);
	}

	/* What an earlier run added and left (it crashed, or the host lost
	 * power): nothing else would ever remove it. */
	for (size_t i = 0; i < cm->n_rec;) {
		struct mesh_action a = { .kind = MESH_ACT_REMOVE_PEER };

		if (key_eq(cm->rec[i], cl->hub_key) || !wgdev_find_peer(dev, cm->rec[i])) {
			record_drop(cm, cm->rec[i]);
			continue;
		}
		memcpy(a.key, cm->rec[i], WG_KEY_LEN);
		ret = cl->sys->mesh_apply(cl, &a);
		if (ret) {
			log_warnx("cannot remove the mesh peer %s an earlier run left on %s: %s",
				  key_b64(a.key, b64), cl->ifname, strerror(-ret));
			i++;
			continue;
		}
		record_drop(cm, a.key);
		removed++;
	}
	if (removed)
		log_info("removed %zu mesh peers an earlier run left on %s", removed, cl->ifname);
	if (cm->rec_dirty) {
		ret = client_mesh_record_save(cl);
		if (ret)
			log_warnx("cannot rewrite %s/%s: %s", cl->state_dir, cm->rec_file,
				  strerror(-ret));
	}
	/* A status file a crash left would tell of peers long gone. */
	unlinkat(cl->state_fd, cm->status_file, 0);
	return 0;
}

/* ---- the device ---- */

static struct ratelimit *action_rl(void)
{
	static struct ratelimit rl;
	static bool ready;

	if (!ready)
		ratelimit_init(&rl, RATELIMIT_LOG_MS);
	ready = true;
	return &rl;
}

static const char *action_name(enum mesh_action_kind k)
{
	switch (k) {
	case MESH_ACT_ADD_PEER:
		return "add";
	case MESH_ACT_REMOVE_PEER:
		return "remove";
	case MESH_ACT_ALLOWEDIPS_ADD:
		return "route through";
	case MESH_ACT_ALLOWEDIPS_DEL:
		return "stop routing through";
	}
	return "change";
}

/*
 * Makes what the state machine asks, in order. With the device gone the
 * removals are taken as made. The count is bounded, so that a state
 * machine answering failures with new actions cannot hold the loop.
 */
static void drain(struct client *cl, uint64_t now, bool device_gone)
{
	struct client_mesh *cm = &cl->mesh;
	size_t budget = 4 * (size_t)MESH_MAX_PEERS + 64;
	struct mesh_action a;

	while (budget-- && mesh_next_action(cm->m, &a)) {
		char b64[WG_KEY_B64_LEN];
		uint32_t held;
		int ret = 0;

		if (device_gone) {
			if (a.kind == MESH_ACT_REMOVE_PEER)
				record_drop(cm, a.key);
			continue;
		}
		if (a.kind == MESH_ACT_ADD_PEER)
			ret = record_add(cl, a.key);
		if (!ret)
			ret = cl->sys->mesh_apply(cl, &a);
		if (!ret) {
			if (a.kind == MESH_ACT_REMOVE_PEER)
				record_drop(cm, a.key);
			continue;
		}
		if (ratelimit_pass(action_rl(), a.key, WG_KEY_LEN, a.kind, now, &held))
			log_warnx("mesh: cannot %s peer %s on %s: %s (%u more held back)",
				  action_name(a.kind), key_b64(a.key, b64), cl->ifname,
				  strerror(-ret), held);
		mesh_action_failed(cm->m, &a, ret, now);
	}
}

static void device_read(struct client *cl, uint64_t now, int64_t real_ns)
{
	struct client_mesh *cm = &cl->mesh;
	struct mesh_peer_seen *seen = NULL;
	struct wgdev *dev = NULL;
	bool reconfigure = false;
	size_t n = 0;
	int ret;

	/* At most every MESH_READ_FAST_MS, whatever the state machine says,
	 * and after a failure too. */
	cm->read_after_ms = now + MESH_READ_FAST_MS;
	ret = cl->sys->get_device(cl, &dev);
	if (ret) {
		log_debug("mesh: cannot read %s: %s", cl->ifname, strerror(-ret));
		cm->read_after_ms = now + MESH_READ_SLOW_MS;
		return;
	}
	if (dev->n_peers)
		seen = calloc(dev->n_peers, sizeof(*seen));
	if (dev->n_peers && !seen)
		goto out;
	cm->port = dev->listen_port;
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *p = &dev->peers[i];

		if (mesh_owns(cm->m, p->pubkey)) {
			struct mesh_peer_seen *s = &seen[n++];
			int64_t sec = p->last_handshake_sec;

			memcpy(s->key, p->pubkey, WG_KEY_LEN);
			/* Nanoseconds fit until 2262; a time past that is
			 * no time at all. */
			s->last_handshake_ns = sec > 0 && sec < INT64_MAX / 1000000000 - 1 ?
						       sec * 1000000000 + p->last_handshake_nsec :
						       0;
			s->rx_bytes = p->rx_bytes;
			wgdev_peer_endpoint(p, &s->endpoint);
		} else if (key_eq(p->pubkey, cl->hub_key)) {
			struct wgd_endpoint ep;

			/* The hub's endpoint roams too, and is never a
			 * candidate. */
			wgdev_peer_endpoint(p, &ep);
			if (memcmp(&ep, &cm->hub_endpoint, sizeof(ep))) {
				cm->hub_endpoint = ep;
				reconfigure = true;
			}
		} else if (!key_in((const uint8_t(*)[WG_KEY_LEN])cm->rec, cm->n_rec, p->pubkey) &&
			   !key_in((const uint8_t(*)[WG_KEY_LEN])cm->admin, cm->n_admin,
				   p->pubkey)) {
			admin_add(cl, p->pubkey);
		}
	}
	if (reconfigure)
		config_apply(cl);
	mesh_device_read(cm->m, seen, n, now, real_ns);
out:
	free(seen);
	wgdev_free(dev);
}

/* ---- the long poll ---- */

static void start_poll(struct client *cl, uint64_t now)
{
	struct client_mesh *cm = &cl->mesh;
	struct rtnl_addr *addrs = NULL;
	struct wgd_msg *req;
	size_t n = 0;

	/* Candidates go with every poll: the host's addresses move. */
	if (!cl->sys->host_addrs(cl, &addrs, &n)) {
		struct wgd_ip cand[WGD_MAX_CANDIDATES];
		size_t k = client_mesh_candidates(addrs, n, cm->routes, cm->n_routes, cand);

		if (k != cm->n_cand || memcmp(cand, cm->cand, k * sizeof(cand[0]))) {
			char list[WGD_MAX_CANDIDATES * WGD_IP_STRLEN] = "", a[WGD_IP_STRLEN];

			for (size_t i = 0; i < k; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), " %s",
					 wgd_ip_format_addr(&cand[i], a, sizeof(a)));
			log_info("mesh: our candidates:%s", k ? list : " none");
			memcpy(cm->cand, cand, k * sizeof(cand[0]));
			cm->n_cand = k;
		}
	}
	free(addrs);
	req = malloc(sizeof(*req));
	if (!req) {
		cm->next_poll_ms = now + MESH_POLL_BACKOFF_MIN_MS;
		return;
	}
	client_mesh_build_request(cl, req);
	cm->polling = true;
	cm->last_poll_ms = now;
	/* A failure to start is an answer too, taken on the loop's next pass. */
	exchange_start(cm->ex, cl, req, now, MESH_POLL_TIMEOUT_MS);
	free(req);
}

static void poll_failed(struct client *cl, uint64_t now, const char *why)
{
	struct client_mesh *cm = &cl->mesh;
	uint32_t wait = cm->backoff_ms ? cm->backoff_ms * 2 : MESH_POLL_BACKOFF_MIN_MS;

	if (wait > MESH_POLL_BACKOFF_MAX_MS)
		wait = MESH_POLL_BACKOFF_MAX_MS;
	/* One line when it starts failing, not one per retry. */
	if (!cm->backoff_ms)
		log_warnx("mesh: the hub did not answer for its directory: %s; keeping the paths "
			  "as they are and asking again",
			  why);
	else
		log_debug("mesh: directory request failed: %s; again in %u ms", why, wait);
	cm->backoff_ms = wait;
	cm->next_poll_ms = now + wait;
	cm->poll_ok = false;
}

/* The lines of one answer, in order; our own entry goes apart. */
static void take_entries(struct client *cl, const struct wgd_msg *resp, uint64_t now)
{
	struct client_mesh *cm = &cl->mesh;
	size_t n = resp->n_peers < WGD_MAX_PEERS ? resp->n_peers : WGD_MAX_PEERS, start = 0;

	for (size_t i = 0; i <= n; i++) {
		const struct wgd_peer_entry *e = i < n ? &resp->peers[i] : NULL;

		if (e && !key_eq(e->key, cm->self_key))
			continue;
		if (i > start)
			mesh_directory_apply(cm->m, &resp->peers[start], i - start, now);
		if (e && !e->gone)
			mesh_self_update(cm->m, e, now);
		start = i + 1;
	}
}

void client_mesh_answered(struct client *cl, uint64_t now)
{
	struct client_mesh *cm = &cl->mesh;
	const struct wgd_msg *resp = exchange_response(cm->ex);
	uint32_t sent_epoch = cm->ex->req.epoch;
	char why[LOG_ESCAPED_SIZE(WGD_MAX_ERRMSG)];

	cm->polling = false;
	if (!cm->m) {
		/* Left the mesh while it was out. */
	} else if (!resp) {
		poll_failed(cl, now, strerror(-cm->ex->result));
	} else if (resp->err) {
		const char *text = wgd_error_text(resp->err);

		if (resp->errmsg[0])
			log_escape(resp->errmsg, strnlen(resp->errmsg, WGD_MAX_ERRMSG), why,
				   sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", text ? text : "unknown error");
		poll_failed(cl, now, why);
	} else if (!resp->has_dir_version || (resp->has_epoch ? !resp->epoch : !sent_epoch)) {
		poll_failed(cl, now, "an answer without the directory's epoch and version");
	} else {
		/* Without an epoch, the answer is of the one we sent. A new
		 * epoch, or a version gone back, is a new directory whatever
		 * the hub says. */
		uint32_t epoch = resp->has_epoch ? resp->epoch : sent_epoch;

		if (resp->reset || epoch != cm->epoch || resp->dir_version < cm->since)
			mesh_directory_reset(cm->m, now);
		take_entries(cl, resp, now);
		log_debug("mesh: directory %u version %u: %zu lines%s%s", epoch,
			  resp->dir_version, resp->n_peers, resp->reset ? ", reset" : "",
			  resp->more ? ", more" : "");
		cm->epoch = epoch;
		cm->since = resp->dir_version;
		if (cm->backoff_ms)
			log_info("mesh: the hub answers again");
		cm->backoff_ms = 0;
		cm->poll_ok = true;
		/* The next one at once: the hub holds it until there is news.
		 * A gap bounds how fast a hub that answers at once can make us
		 * ask. */
		cm->next_poll_ms = cm->last_poll_ms + MESH_POLL_GAP_MS > now ?
					   cm->last_poll_ms + MESH_POLL_GAP_MS :
					   now;
		drain(cl, now, false);
	}
	exchange_end(cm->ex);
}

/*
 * Both exchanges go from [our link-local]:970 to [fe80::]:970, the one
 * address pair the hub takes requests on, so only one connection can be
 * open at a time: a poll held would block every renewal. The lease goes
 * first; the poll is sent again once the lease's exchange is over.
 */
void client_mesh_pause_poll(struct client *cl)
{
	struct client_mesh *cm = &cl->mesh;

	if (!cm->polling)
		return;
	exchange_end(cm->ex);
	cm->polling = false;
	if (cm->next_poll_ms > cm->last_poll_ms + MESH_POLL_GAP_MS)
		cm->next_poll_ms = cm->last_poll_ms + MESH_POLL_GAP_MS;
}

void client_mesh_restart_poll(struct client *cl, uint64_t now)
{
	struct client_mesh *cm = &cl->mesh;

	if (cm->polling)
		exchange_end(cm->ex);
	cm->polling = false;
	cm->backoff_ms = 0;
	cm->next_poll_ms = now;
}

/* ---- the status file ---- */

char *client_mesh_status_format(const struct client *cl, size_t *len)
{
	const struct client_mesh *cm = &cl->mesh;
	struct strbuf b = { .max = STATUS_MAX * 2 };
	size_t n = cm->m ? mesh_peer_count(cm->m) : 0;
	const char *state = !cm->m ? "off" : cm->poll_ok ? "joined" : "hub-unreachable";

	strbuf_printf(&b, "mesh=%s\nepoch=%u\nversion=%u\n", state, cm->epoch, cm->since);
	for (size_t i = 0; i < n && i < MESH_MAX_PEERS; i++) {
		struct mesh_peer_status st;
		char k[WG_KEY_B64_LEN], a4[WGD_IP_STRLEN] = "-", a6[WGD_IP_STRLEN] = "-";
		char ep[WGD_ENDPOINT_STRLEN] = "-";

		memset(&st, 0, sizeof(st));
		mesh_peer_status(cm->m, i, &st);
		if (st.has_ip4)
			wgd_ip_format_addr(&st.ip4, a4, sizeof(a4));
		if (st.has_ip6)
			wgd_ip_format_addr(&st.ip6, a6, sizeof(a6));
		if (st.endpoint.addr.family && st.endpoint.port)
			wgd_endpoint_format(&st.endpoint, ep, sizeof(ep));
		strbuf_printf(&b, "peer=%s %s %s %s %s %llu\n", key_b64(st.key, k), a4, a6,
			      mesh_path_name(st.path), ep, (unsigned long long)st.since_ms);
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/* At most once per MESH_STATUS_EVERY_MS, and only when it changed. */
static void status_update(struct client *cl, uint64_t now)
{
	struct client_mesh *cm = &cl->mesh;
	size_t len = 0;
	char *text;
	int ret;

	if (now < cm->status_next_ms)
		return;
	cm->status_next_ms = now + MESH_STATUS_EVERY_MS;
	if (cm->rec_dirty)
		client_mesh_record_save(cl);
	text = client_mesh_status_format(cl, &len);
	if (!text)
		return;
	if (cm->status_written && len == cm->status_last_len &&
	    !memcmp(text, cm->status_last, len)) {
		free(text);
		return;
	}
	ret = file_write_atomic_at(cl->state_fd, cm->status_file, text, len, 0600);
	if (ret) {
		log_debug("mesh: cannot write %s/%s: %s", cl->state_dir, cm->status_file,
			  strerror(-ret));
		free(text);
		return;
	}
	free(cm->status_last);
	cm->status_last = text;
	cm->status_last_len = len;
	cm->status_written = true;
}

/* ---- joining and leaving ---- */

static int join(struct client *cl, uint64_t now)
{
	struct client_mesh *cm = &cl->mesh;
	struct mesh_config cfg;

	routes_from_lease(cl);
	config_of(cm, cl, &cfg);
	cm->m = mesh_new(&cfg);
	if (!cm->m)
		return -ENOMEM;
	cm->epoch = cm->since = 0;
	cm->backoff_ms = 0;
	cm->poll_ok = false;
	cm->next_poll_ms = now;
	cm->read_after_ms = now;
	cm->status_next_ms = now;
	log_info("joining the hub's mesh on %s", cl->ifname);
	return 0;
}

void client_mesh_leave(struct client *cl, bool device_gone)
{
	struct client_mesh *cm = &cl->mesh;
	uint64_t now = clock_boot_ms();
	int ret;

	if (cm->m) {
		mesh_stop(cm->m);
		drain(cl, now, device_gone);
		mesh_free(cm->m);
		cm->m = NULL;
	}
	if (cm->polling && cm->ex)
		exchange_end(cm->ex);
	cm->polling = false;
	cm->epoch = cm->since = 0;
	/* What could not be removed stays recorded, for the next start. */
	for (size_t i = 0; i < cm->n_rec && !device_gone;) {
		struct mesh_action a = { .kind = MESH_ACT_REMOVE_PEER };

		memcpy(a.key, cm->rec[i], WG_KEY_LEN);
		if (key_eq(a.key, cl->hub_key) || !cl->sys->mesh_apply(cl, &a))
			record_drop(cm, a.key);
		else
			i++;
	}
	if (device_gone)
		cm->n_rec = 0;
	ret = client_mesh_record_save(cl);
	if (ret)
		log_warnx("cannot rewrite %s/%s: %s", cl->state_dir, cm->rec_file, strerror(-ret));
	unlinkat(cl->state_fd, cm->status_file, 0);
	free(cm->status_last);
	cm->status_last = NULL;
	cm->status_written = false;
}

void client_mesh_free(struct client *cl)
{
	struct client_mesh *cm = &cl->mesh;

	mesh_free(cm->m);
	cm->m = NULL;
	free(cm->admin);
	free(cm->rec);
	free(cm->status_last);
	cm->admin = NULL;
	cm->rec = NULL;
	cm->status_last = NULL;
	cm->n_admin = cm->cap_admin = cm->n_rec = cm->cap_rec = 0;
}

/*
 * An echo request to every direct peer, each second: the reply, coming
 * back direct only while the peer sends to us directly too, is what keeps
 * the peer's receive counter moving (probe.h says why keepalives cannot).
 */
static void probe_direct(struct client *cl, uint64_t now)
{
	struct client_mesh *cm = &cl->mesh;
	size_t n = mesh_peer_count(cm->m);
	bool any = false;
	uint32_t held;

	for (size_t i = 0; i < n; i++) {
		struct mesh_peer_status st;
		int ret;

		mesh_peer_status(cm->m, i, &st);
		if (st.path != MESH_DIRECT || (!st.has_ip4 && !st.has_ip6))
			continue;
		any = true;
		if (!cl->sys->mesh_probe)
			continue;
		ret = cl->sys->mesh_probe(cl, st.has_ip4 ? &st.ip4 : &st.ip6);
		if (ret && ratelimit_pass(action_rl(), "probe", 5, 0, now, &held))
			log_warnx("mesh: cannot send an echo request to a direct peer: %s (%u more "
				  "held back); without it, an idle direct path falls back to the hub",
				  strerror(-ret), held);
	}
	/* With no direct peer, each pass looks again: one may have become so. */
	cm->next_probe_ms = any ? now + PROBE_EVERY_MS : 0;
}

void client_mesh_run(struct client *cl, uint64_t now)
{
	struct client_mesh *cm = &cl->mesh;
	int64_t real_ns;
	int ret;

	if (!cm->m) {
		if (!client_mesh_wanted(cl) || now < cm->read_after_ms)
			return;
		ret = join(cl, now);
		if (ret) {
			log_warnx("cannot join the mesh: %s; trying again", strerror(-ret));
			cm->read_after_ms = now + MESH_POLL_BACKOFF_MAX_MS;
			return;
		}
	} else if (!client_mesh_wanted(cl)) {
		/* Without the lease, the peers' addresses no longer route
		 * through us, nor ours through them. */
		log_info("leaving the mesh: %s",
			 !cl->lease.bound ? "the lease is gone" : "the hub no longer offers it");
		client_mesh_leave(cl, false);
		return;
	}
	if (routes_from_lease(cl))
		config_apply(cl);
	real_ns = clock_real_ns();
	if (now >= mesh_next_read(cm->m) && now >= cm->read_after_ms)
		device_read(cl, now, real_ns);
	if (now >= mesh_next_wake(cm->m))
		mesh_tick(cm->m, now, real_ns);
	drain(cl, now, false);
	if (now >= cm->next_probe_ms)
		probe_direct(cl, now);
	if (!cm->polling && cl->link_up && !cl->requesting && now >= cm->next_poll_ms)
		start_poll(cl, now);
	status_update(cl, now);
}

uint64_t client_mesh_next_wake(const struct client *cl)
{
	const struct client_mesh *cm = &cl->mesh;
	uint64_t wake, read;

	if (!cm->m)
		return client_mesh_wanted(cl) ? cm->read_after_ms : UINT64_MAX;
	wake = mesh_next_wake(cm->m);
	read = mesh_next_read(cm->m);
	if (read < cm->read_after_ms)
		read = cm->read_after_ms;
	if (read < wake)
		wake = read;
	if (!cm->polling && cl->link_up && !cl->requesting && cm->next_poll_ms < wake)
		wake = cm->next_poll_ms;
	if (cm->status_next_ms < wake)
		wake = cm->status_next_ms;
	if (cm->next_probe_ms && cm->next_probe_ms < wake)
		wake = cm->next_probe_ms;
	return wake;
}

/* ---- show ---- */

static const char *path_text(enum mesh_path p)
{
	switch (p) {
	case MESH_DIRECT:
		return "direct via";
	case MESH_PROBING:
		return "probing";
	case MESH_RELAY:
		return "relayed";
	case MESH_LOST:
		return "lost";
	}
	return "?";
}

struct shown_peer {
	char key[WG_KEY_B64_LEN];
	char a4[WGD_IP_STRLEN], a6[WGD_IP_STRLEN];
	enum mesh_path path;
	char ep[WGD_ENDPOINT_STRLEN];
	bool has_ep;
	uint64_t since_ms;
};

/* "NAME": "VALUE", or null when empty. */
static void json_str(FILE *f, const char *name, const char *value)
{
	if (value[0])
		fprintf(f, "\"%s\": \"%s\", ", name, value);
	else
		fprintf(f, "\"%s\": null, ", name);
}

/* One "peer=" line of the status file, checked field by field. */
static bool parse_peer_line(const char *s, size_t len, struct shown_peer *out)
{
	char f[6][WGD_ENDPOINT_STRLEN + WG_KEY_B64_LEN];
	uint8_t key[WG_KEY_LEN];
	struct wgd_ip ip;
	struct wgd_endpoint ep;
	size_t nf = 0, fl = 0;
	char *end;
	bool found = false;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == ' ') {
			if (nf == 6 || !fl)
				return false;
			f[nf++][fl] = '\0';
			fl = 0;
		} else if (fl + 1 < sizeof(f[0]) && nf < 6) {
			f[nf][fl++] = s[i];
		} else {
			return false;
		}
	}
	if (nf != 6 || strlen(f[0]) != WG_KEY_B64_LEN - 1 || wgkey_from_base64(key, f[0]))
		return false;
	wgkey_to_base64(out->key, key);
	if (strcmp(f[1], "-") &&
	    (wgd_ip_parse(&ip, f[1], strlen(f[1]), false) || ip.family != AF_INET))
		return false;
	snprintf(out->a4, sizeof(out->a4), "%s", strcmp(f[1], "-") ? f[1] : "");
	if (strcmp(f[2], "-") &&
	    (wgd_ip_parse(&ip, f[2], strlen(f[2]), false) || ip.family != AF_INET6))
		return false;
	snprintf(out->a6, sizeof(out->a6), "%s", strcmp(f[2], "-") ? f[2] : "");
	for (int p = MESH_RELAY; p <= MESH_LOST; p++) {
		if (!strcmp(f[3], mesh_path_name((enum mesh_path)p))) {
			out->path = (enum mesh_path)p;
			found = true;
		}
	}
	if (!found)
		return false;
	if (strcmp(f[4], "-")) {
		if (wgd_endpoint_parse(&ep, f[4], strlen(f[4])))
			return false;
		wgd_endpoint_format(&ep, out->ep, sizeof(out->ep));
		out->has_ep = true;
	}
	if (f[5][0] < '0' || f[5][0] > '9')
		return false;
	errno = 0;
	out->since_ms = strtoull(f[5], &end, 10);
	return !*end && !errno;
}

void client_mesh_show(FILE *f, int dirfd, const char *ifname, bool running, bool json)
{
	char name[IF_NAMESIZE + 16], state[32] = "off";
	unsigned long epoch = 0, version = 0;
	uint64_t now = clock_boot_ms();
	size_t n_peers = 0;
	ssize_t len = -ENOENT;
	char *buf = NULL;

	snprintf(name, sizeof(name), "%s.mesh-status", ifname);
	if (running) {
		buf = malloc(STATUS_MAX + 1);
		if (buf)
			len = file_read_at(dirfd, name, buf, STATUS_MAX);
	}
	if (len < 0) {
		if (json)
			fprintf(f, ",\n  \"mesh\": null");
		else
			fprintf(f, "  mesh: %s\n", running ? "not joined" : "not running");
		free(buf);
		return;
	}
	buf[len] = '\0';
	for (int pass = 0; pass < 2; pass++) {
		const char *line = buf, *nl;

		for (; line < buf + len; line = nl + 1) {
			struct shown_peer p;
			uint64_t ago;

			nl = memchr(line, '\n', (size_t)(buf + len - line));
			if (!nl)
				break;
			if (!pass) {
				/* The head: the state and the directory held. */
				if (!strncmp(line, "mesh=", 5) &&
				    nl - line - 5 < (long)sizeof(state) && nl - line > 5) {
					memcpy(state, line + 5, (size_t)(nl - line - 5));
					state[nl - line - 5] = '\0';
				} else if (!strncmp(line, "epoch=", 6)) {
					epoch = strtoul(line + 6, NULL, 10);
				} else if (!strncmp(line, "version=", 8)) {
					version = strtoul(line + 8, NULL, 10);
				}
				continue;
			}
			if (strncmp(line, "peer=", 5) ||
			    !parse_peer_line(line + 5, (size_t)(nl - line - 5), &p))
				continue;
			ago = now > p.since_ms ? (now - p.since_ms) / 1000 : 0;
			if (json) {
				/* Keys, addresses and endpoints need no JSON
				 * escaping: they were checked as such. */
				fprintf(f, "%s\n      {\"key\": \"%s\", ", n_peers ? "," : "",
					p.key);
				json_str(f, "ipv4", p.a4);
				json_str(f, "ipv6", p.a6);
				json_str(f, "path", mesh_path_name(p.path));
				json_str(f, "endpoint", p.has_ep ? p.ep : "");
				fprintf(f, "\"since_s\": %llu}", (unsigned long long)ago);
			} else {
				fprintf(f, "  mesh peer: %s\n", p.key);
				if (p.a4[0])
					fprintf(f, "    ipv4: %s\n", p.a4);
				if (p.a6[0])
					fprintf(f, "    ipv6: %s\n", p.a6);
				fprintf(f, "    path: %s", path_text(p.path));
				if (p.has_ep && (p.path == MESH_DIRECT || p.path == MESH_PROBING))
					fprintf(f, " %s", p.ep);
				fprintf(f, ", for %llu s\n", (unsigned long long)ago);
			}
			n_peers++;
		}
		if (pass)
			continue;
		/* The state is one of ours; anything else is shown as unknown. */
		if (strcmp(state, "joined") && strcmp(state, "hub-unreachable") &&
		    strcmp(state, "off"))
			snprintf(state, sizeof(state), "unknown");
		if (json)
			fprintf(f,
				",\n  \"mesh\": {\"state\": \"%s\", \"epoch\": %lu, "
				"\"version\": %lu, \"peers\": [",
				state, epoch, version);
		else
			fprintf(f, "  mesh: %s, directory %lu version %lu\n", state, epoch,
				version);
	}
	if (json)
		fprintf(f, "%s]}", n_peers ? "\n    " : "");
	free(buf);
}
