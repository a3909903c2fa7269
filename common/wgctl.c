// SPDX-License-Identifier: MIT

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "clock.h"
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
	enum wgctl_backend backend;
	union {
		struct uapi_conn *uapi;
		struct genl_conn *genl;
	};
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

int wgctl_open(struct wgctl **out, const char *ifname)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct wgctl *ctl;
	struct stat st;
	int ret;

	*out = NULL;
	if (!ifname_valid(ifname))
		return -EINVAL;
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	ctl->view_max_ms = WGCTL_VIEW_MAX_MS;
	ctl->view = wgview_new();
	if (!ctl->view) {
		ret = -ENOMEM;
		goto out;
	}

	/*
	 * Like wg(8): a socket in the UAPI directory means a userspace
	 * implementation owns the name, whatever the kernel knows.
	 */
	ret = uapi_socket_path(path, sizeof(path), wgctl_uapi_dir, ifname);
	if (ret)
		goto out;
	if (!stat(path, &st) && S_ISSOCK(st.st_mode)) {
		ctl->backend = WGCTL_UAPI;
		ret = uapi_conn_open(&ctl->uapi, path);
	} else {
		ctl->backend = WGCTL_GENL;
		ret = genl_conn_open(&ctl->genl, ifname);
	}
out:
	if (ret) {
		wgview_free(ctl->view);
		free(ctl);
		return ret;
	}
	*out = ctl;
	return 0;
}

void wgctl_close(struct wgctl *ctl)
{
	if (!ctl)
		return;
	if (ctl->backend == WGCTL_UAPI)
		uapi_conn_close(ctl->uapi);
	else
		genl_conn_close(ctl->genl);
	wgview_free(ctl->view);
	free(ctl);
}

enum wgctl_backend wgctl_backend(const struct wgctl *ctl)
{
	return ctl->backend;
}

const char *wgctl_backend_name(const struct wgctl *ctl)
{
	return ctl->backend == WGCTL_UAPI ? "userspace" : "kernel";
}

int wgctl_read_device(struct wgctl *ctl, struct wgdev **out)
{
	*out = NULL;
	if (ctl->backend == WGCTL_UAPI)
		return uapi_conn_get_device(ctl->uapi, out);
	return genl_conn_get_device(ctl->genl, out);
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

int wgctl_allowedips_update(struct wgctl *ctl, const uint8_t pubkey[WG_KEY_LEN],
			    const struct wgd_ip *add, size_t n_add,
			    const struct wgd_ip *del, size_t n_del)
{
	struct wgctl_update u = { .add = add, .n_add = n_add, .del = del, .n_del = n_del };
	int err;

	memcpy(u.pubkey, pubkey, WG_KEY_LEN);
	wgctl_allowedips_update_batch(ctl, &u, 1, &err);
	return err;
}

void wgctl_allowedips_update_batch(struct wgctl *ctl, const struct wgctl_update *u, size_t n,
				   int *err)
{
	struct wgctl_update *cu = calloc(n ? n : 1, sizeof(*cu)), *send = NULL;
	size_t *which = NULL, n_send = 0;
	int *send_err = NULL, ret;
	bool failed = false;

	if (!cu) {
		for (size_t i = 0; i < n; i++)
			err[i] = -ENOMEM;
		return;
	}
	/* Bad input is refused before anything reaches the device. */
	for (size_t i = 0; i < n; i++) {
		struct wgd_ip *cadd, *cdel = NULL;

		memcpy(cu[i].pubkey, u[i].pubkey, WG_KEY_LEN);
		err[i] = canon_list(u[i].add, u[i].n_add, &cadd);
		if (!err[i])
			err[i] = canon_list(u[i].del, u[i].n_del, &cdel);
		cu[i].add = cadd;
		cu[i].del = cdel;
		cu[i].n_add = cadd ? u[i].n_add : 0;
		cu[i].n_del = cdel ? u[i].n_del : 0;
	}
	/*
	 * Checked in order against the view, which takes each change as it
	 * goes, so that a later change sees an earlier one's additions.
	 */
	ret = view_refresh(ctl);
	for (size_t i = 0; i < n; i++) {
		if (err[i])
			continue;
		err[i] = ret ? ret : wgview_check(ctl->view, cu[i].pubkey, cu[i].add, cu[i].n_add);
		if (!err[i])
			wgview_apply(ctl->view, cu[i].pubkey, cu[i].add, cu[i].n_add,
				     cu[i].del, cu[i].n_del);
		n_send += !err[i] && (cu[i].n_add || cu[i].n_del);
	}
	if (n_send) {
		send = malloc(n_send * sizeof(*send));
		which = malloc(n_send * sizeof(*which));
		send_err = malloc(n_send * sizeof(*send_err));
		if (!send || !which || !send_err) {
			for (size_t i = 0; i < n; i++)
				if (!err[i] && (cu[i].n_add || cu[i].n_del))
					err[i] = -ENOMEM;
			failed = true;
			n_send = 0;
		}
	}
	if (n_send) {
		n_send = 0;
		for (size_t i = 0; i < n; i++)
			if (!err[i] && (cu[i].n_add || cu[i].n_del)) {
				send[n_send] = cu[i];
				which[n_send++] = i;
			}
		if (ctl->backend == WGCTL_UAPI)
			uapi_conn_allowedips_update_batch(ctl->uapi, send, n_send, send_err);
		else
			genl_conn_allowedips_update_batch(ctl->genl, send, n_send, send_err);
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
	for (size_t i = 0; i < n; i++) {
		free((void *)cu[i].add);
		free((void *)cu[i].del);
	}
	free(cu);
	free(send);
	free(which);
	free(send_err);
}
