// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "clock.h"
#include "wgctl-ops.h"
#include "wgctl.h"
#include "wgdev-genl.h"
#include "wgdev-uapi.h"
#include "wgview.h"

const char *wgctl_uapi_dir = "/var/run/wireguard";

/*
 * How stale the view an update is checked against may grow before the
 * next update reads the device again, unless the caller sets its own.
 */
#define WGCTL_VIEW_MAX_MS 10000

struct wgctl {
	const struct wgctl_ops *ops;
	void *conn;
	/* The device refused removal by entry: read-modify-write instead. */
	bool no_remove;
	struct wgview *view;
	uint64_t view_max_ms;
};

static bool ifname_valid(const char *ifname)
{
	size_t len = strnlen(ifname, IF_NAMESIZE);

	/* The name becomes a path component below wgctl_uapi_dir. */
	return len > 0 && len < IF_NAMESIZE && !strchr(ifname, '/') &&
	       strcmp(ifname, ".") && strcmp(ifname, "..");
}

int wgctl_open_backend(struct wgctl **out, const struct wgctl_ops *ops, void *conn)
{
	struct wgctl *ctl = calloc(1, sizeof(*ctl));

	*out = NULL;
	if (ctl)
		ctl->view = wgview_new();
	if (!ctl || !ctl->view) {
		free(ctl);
		ops->close(conn);
		return -ENOMEM;
	}
	ctl->ops = ops;
	ctl->conn = conn;
	ctl->view_max_ms = WGCTL_VIEW_MAX_MS;
	*out = ctl;
	return 0;
}

int wgctl_open(struct wgctl **out, const char *ifname)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct uapi_conn *uc;
	struct genl_conn *gc;
	struct stat st;
	int ret;

	*out = NULL;
	if (!ifname_valid(ifname))
		return -EINVAL;
	/*
	 * Like wg(8): a socket in the UAPI directory means a userspace
	 * implementation owns the name, whatever the kernel knows.
	 */
	ret = uapi_socket_path(path, sizeof(path), wgctl_uapi_dir, ifname);
	if (ret)
		return ret;
	if (!stat(path, &st) && S_ISSOCK(st.st_mode)) {
		ret = uapi_conn_open(&uc, path);
		return ret ? ret : wgctl_open_backend(out, &uapi_ops, uc);
	}
	ret = genl_conn_open(&gc, ifname);
	return ret ? ret : wgctl_open_backend(out, &genl_ops, gc);
}

void wgctl_close(struct wgctl *ctl)
{
	if (!ctl)
		return;
	ctl->ops->close(ctl->conn);
	wgview_free(ctl->view);
	free(ctl);
}

enum wgctl_backend wgctl_backend(const struct wgctl *ctl)
{
	return ctl->ops == &uapi_ops ? WGCTL_UAPI : WGCTL_GENL;
}

const char *wgctl_backend_name(const struct wgctl *ctl)
{
	return ctl->ops->name;
}

int wgctl_read_device(struct wgctl *ctl, struct wgdev **out)
{
	*out = NULL;
	return ctl->ops->get_device(ctl->conn, out);
}

void wgctl_set_view_max_age(struct wgctl *ctl, uint64_t ms)
{
	ctl->view_max_ms = ms;
}

void wgctl_view_from(struct wgctl *ctl, const struct wgdev *dev, uint64_t read_ms)
{
	/* Without memory for the view the next update reads again. */
	wgview_rebuild(ctl->view, dev, read_ms);
}

int wgctl_get_device(struct wgctl *ctl, struct wgdev **out)
{
	uint64_t read_ms = clock_boot_ms();
	int ret = wgctl_read_device(ctl, out);

	if (!ret)
		wgctl_view_from(ctl, *out, read_ms);
	return ret;
}

static int view_refresh(struct wgctl *ctl)
{
	struct wgdev *dev;
	int ret;

	if (wgview_valid(ctl->view) &&
	    wgview_age_ms(ctl->view, clock_boot_ms()) <= ctl->view_max_ms)
		return 0;
	ret = wgctl_get_device(ctl, &dev);
	wgdev_free(dev);
	if (!ret && !wgview_valid(ctl->view))
		ret = -ENOMEM;
	return ret;
}

int wgctl_view(struct wgctl *ctl, const struct wgview **out)
{
	int ret = view_refresh(ctl);

	*out = ret ? NULL : ctl->view;
	return ret;
}

/*
 * The update policy, the same for both backends. Each change goes
 * incrementally where the device can take it: additions, and removals by
 * entry (WGALLOWEDIP_F_REMOVE_ME from Linux 6.16, "allowed_ip=-PREFIX" from
 * wireguard-go 0.0.20250522). An older device refuses the first request
 * that removes an entry, with -EINVAL, before it has made anything, as the
 * removals go first; the handle then remembers it and makes every later
 * removal by read-modify-write: it reads the peer's current list, computes
 * current - del + add, and replaces the list. That leaves a window in which
 * an allowed-IP another tool gives the same peer can be lost, and a long
 * list replaced over several kernel messages is briefly partial; the
 * incremental form has no such window. Additions alone never need it.
 *
 * A change never creates a peer: a peer removed meanwhile stays removed and
 * the device reports success. Whether the peer exists is the view's
 * question (wgview.h): the incremental path does not read the device, and
 * only read-modify-write does, answering -ENOENT when the peer is gone.
 *
 * *dev is the device as read for read-modify-write, once, when a change
 * first needs it, and kept up with every change made since; NULL until
 * then, and again after a failure leaves it in doubt. Lists are canonical.
 */
static int update_one(struct wgctl *ctl, struct wgdev **dev, const uint8_t pubkey[WG_KEY_LEN],
		      const struct wgd_ip *add, size_t n_add,
		      const struct wgd_ip *del, size_t n_del)
{
	struct wgdev_peer *peer;
	bool first_refused = false;
	int ret;

	if (!n_add && !n_del)
		return 0;
	if (!n_del || !ctl->no_remove) {
		ret = ctl->ops->change(ctl->conn, pubkey, add, n_add, del, n_del, &first_refused);
		if (ret != -EINVAL || !n_del || !first_refused) {
			if (!ret)
				wgdev_follow(dev, pubkey, add, n_add, del, n_del);
			return ret;
		}
		ctl->no_remove = true;
	}
	if (!*dev) {
		ret = ctl->ops->get_device(ctl->conn, dev);
		if (ret)
			return ret;
	}
	ret = wgdev_peer_apply(*dev, pubkey, add, n_add, del, n_del, &peer);
	if (!ret)
		ret = ctl->ops->replace_allowedips(ctl->conn, pubkey, peer->allowedips,
						   peer->n_allowedips);
	if (ret && ret != -ENOENT) {
		wgdev_free(*dev);
		*dev = NULL;
	}
	return ret;
}

static int update_change(struct wgctl *ctl, struct wgdev **dev, const struct wgdev_change *c)
{
	return update_one(ctl, dev, c->pubkey, c->add, c->n_add, c->del, c->n_del);
}

/*
 * A backend with a batch request (wireguard-go spends most of a one-peer
 * set=1 on the operation itself, about 90 us, and little on each peer in
 * it, under 10 us) takes each run of changes that needs no
 * read-modify-write in one request, in order. A failure cuts a request
 * short at the failing change with those before it made; then every change
 * of the run is made again on its own, which is harmless for those made, to
 * learn which failed and why. The changes that need read-modify-write share
 * one read of the device.
 */
static void update_changes(struct wgctl *ctl, const struct wgdev_change *c, size_t n, int *err)
{
	struct wgdev *dev = NULL;
	size_t i = 0, j;

	while (i < n) {
		for (j = i; j < n && !(c[j].n_del && ctl->no_remove); j++)
			;
		if (j == i) {
			err[i] = update_change(ctl, &dev, &c[i]);
			i++;
		} else if (ctl->ops->change_batch && j - i >= 2 &&
			   !ctl->ops->change_batch(ctl->conn, &c[i], j - i)) {
			for (; i < j; i++) {
				err[i] = 0;
				wgdev_follow(&dev, c[i].pubkey, c[i].add, c[i].n_add,
					     c[i].del, c[i].n_del);
			}
		} else {
			for (; i < j; i++)
				err[i] = update_change(ctl, &dev, &c[i]);
		}
	}
	wgdev_free(dev);
}

static int canon_list(const struct wgd_ip *in, size_t n, struct wgd_ip **out)
{
	struct wgd_ip *list;
	int ret;

	*out = NULL;
	if (!n)
		return 0;
	if (n > SIZE_MAX / sizeof(*list))
		return -ENOMEM;
	list = malloc(n * sizeof(*list));
	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; ++i) {
		ret = wgdev_allowedip_canon(&list[i], &in[i]);
		if (ret) {
			free(list);
			return ret;
		}
	}
	*out = list;
	return 0;
}

/*
 * One change of lists of any length, which a struct wgdev_change would
 * have to split: the whole lists go to the backend as one change, in as
 * few requests as it needs, exactly as one change of the batch below.
 */
int wgctl_allowedips_update(struct wgctl *ctl, const uint8_t pubkey[WG_KEY_LEN],
			    const struct wgd_ip *add, size_t n_add,
			    const struct wgd_ip *del, size_t n_del)
{
	struct wgd_ip *cadd = NULL, *cdel = NULL;
	struct wgdev *dev = NULL;
	int err, ret;

	/* Bad input is refused before anything reaches the device. */
	err = canon_list(add, n_add, &cadd);
	if (!err)
		err = canon_list(del, n_del, &cdel);
	ret = view_refresh(ctl);
	if (!err)
		err = ret ? ret : wgview_check(ctl->view, pubkey, cadd, n_add);
	if (!err) {
		wgview_apply(ctl->view, pubkey, cadd, n_add, cdel, n_del);
		err = update_one(ctl, &dev, pubkey, cadd, n_add, cdel, n_del);
		wgdev_free(dev);
		/* The view took the change; refused, it may now be wrong. */
		if (err)
			wgview_invalidate(ctl->view);
	}
	free(cadd);
	free(cdel);
	return err;
}

static int canon_change(struct wgdev_change *out, const struct wgdev_change *in)
{
	int ret = 0;

	memset(out, 0, sizeof(*out));
	memcpy(out->pubkey, in->pubkey, WG_KEY_LEN);
	if (in->n_add > WGDEV_CHANGE_MAX || in->n_del > WGDEV_CHANGE_MAX)
		return -EINVAL;
	for (size_t i = 0; !ret && i < in->n_add; i++)
		ret = wgdev_allowedip_canon(&out->add[i], &in->add[i]);
	for (size_t i = 0; !ret && i < in->n_del; i++)
		ret = wgdev_allowedip_canon(&out->del[i], &in->del[i]);
	if (!ret) {
		out->n_add = in->n_add;
		out->n_del = in->n_del;
	}
	return ret;
}

void wgctl_allowedips_update_batch(struct wgctl *ctl, const struct wgdev_change *c, size_t n,
				   int *err)
{
	struct wgdev_change *cc = calloc(n ? n : 1, sizeof(*cc)), *send = NULL;
	size_t *which = NULL, n_send = 0;
	int *send_err = NULL, ret;
	bool failed = false;

	if (!cc) {
		for (size_t i = 0; i < n; i++)
			err[i] = -ENOMEM;
		return;
	}
	/* Bad input is refused before anything reaches the device. */
	for (size_t i = 0; i < n; i++)
		err[i] = canon_change(&cc[i], &c[i]);
	/*
	 * Checked in order against the view, which takes each change as it
	 * goes, so that a later change sees an earlier one's additions.
	 */
	ret = view_refresh(ctl);
	for (size_t i = 0; i < n; i++) {
		if (err[i])
			continue;
		err[i] = ret ? ret : wgview_check(ctl->view, cc[i].pubkey, cc[i].add, cc[i].n_add);
		if (!err[i])
			wgview_apply(ctl->view, cc[i].pubkey, cc[i].add, cc[i].n_add,
				     cc[i].del, cc[i].n_del);
		n_send += !err[i] && (cc[i].n_add || cc[i].n_del);
	}
	if (n_send) {
		send = malloc(n_send * sizeof(*send));
		which = malloc(n_send * sizeof(*which));
		send_err = malloc(n_send * sizeof(*send_err));
		if (!send || !which || !send_err) {
			for (size_t i = 0; i < n; i++)
				if (!err[i] && (cc[i].n_add || cc[i].n_del))
					err[i] = -ENOMEM;
			failed = true;
			n_send = 0;
		}
	}
	if (n_send) {
		n_send = 0;
		for (size_t i = 0; i < n; i++)
			if (!err[i] && (cc[i].n_add || cc[i].n_del)) {
				send[n_send] = cc[i];
				which[n_send++] = i;
			}
		update_changes(ctl, send, n_send, send_err);
		for (size_t j = 0; j < n_send; j++) {
			err[which[j]] = send_err[j];
			failed |= send_err[j] != 0;
		}
	}
	/*
	 * The view took every change; a refused or unreached one means it may
	 * now be wrong, and the next update reads the device again.
	 */
	if (failed)
		wgview_invalidate(ctl->view);
	free(cc);
	free(send);
	free(which);
	free(send_err);
}

/*
 * The mesh's peer operations go to the device as they are, without a look
 * at the view first: whether the peer is there changes nothing of the
 * request. The view then takes the outcome; a refused request may have
 * been made in part (wireguard-go stops at the failing line, after the
 * removal), so the view is read again before the next update.
 */
static int peer_op_done(struct wgctl *ctl, const uint8_t pubkey[WG_KEY_LEN], int ret, bool add)
{
	if (ret)
		wgview_invalidate(ctl->view);
	else if (add)
		wgview_add_peer(ctl->view, pubkey);
	else
		wgview_remove_peer(ctl->view, pubkey);
	return ret;
}

int wgctl_peer_add(struct wgctl *ctl, const uint8_t pubkey[WG_KEY_LEN],
		   const struct wgd_endpoint *endpoint, uint16_t keepalive_s)
{
	/* Bad input is refused before anything reaches the device. */
	if (endpoint && endpoint->addr.family &&
	    ((endpoint->addr.family != AF_INET && endpoint->addr.family != AF_INET6) ||
	     !endpoint->port))
		return -EINVAL;
	if (!ctl->ops->add_peer)
		return -EOPNOTSUPP;
	return peer_op_done(ctl, pubkey,
			    ctl->ops->add_peer(ctl->conn, pubkey, endpoint, keepalive_s), true);
}

int wgctl_peer_remove(struct wgctl *ctl, const uint8_t pubkey[WG_KEY_LEN])
{
	if (!ctl->ops->remove_peer)
		return -EOPNOTSUPP;
	return peer_op_done(ctl, pubkey, ctl->ops->remove_peer(ctl->conn, pubkey), false);
}
