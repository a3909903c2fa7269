// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wgdev.h"

void wgdev_free(struct wgdev *dev)
{
	if (!dev)
		return;
	for (size_t i = 0; i < dev->n_peers; ++i)
		free(dev->peers[i].allowedips);
	free(dev->peers);
	free(dev);
}

struct wgdev_peer *wgdev_find_peer(const struct wgdev *dev, const uint8_t pubkey[WG_KEY_LEN])
{
	for (size_t i = 0; i < dev->n_peers; ++i) {
		if (!memcmp(dev->peers[i].pubkey, pubkey, WG_KEY_LEN))
			return &dev->peers[i];
	}
	return NULL;
}

/*
 * Makes room for element n of an array of elem-sized entries whose capacity
 * is implied by n: 4 at first, doubling each time n reaches a power of two.
 * Keeping no capacity field lets the public structs stay as they are.
 */
static int array_grow(void **arr, size_t n, size_t elem)
{
	size_t cap;
	void *p;

	if (n != 0 && (n < 4 || (n & (n - 1))))
		return 0;
	cap = n ? n * 2 : 4;
	if (cap < n || cap > SIZE_MAX / elem)
		return -ENOMEM;
	p = realloc(*arr, cap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	return 0;
}

int wgdev_add_peer(struct wgdev *dev, const uint8_t pubkey[WG_KEY_LEN],
		   struct wgdev_peer **out)
{
	struct wgdev_peer *peer;
	int ret;

	*out = NULL;
	ret = array_grow((void **)&dev->peers, dev->n_peers, sizeof(*dev->peers));
	if (ret)
		return ret;
	peer = &dev->peers[dev->n_peers++];
	memset(peer, 0, sizeof(*peer));
	memcpy(peer->pubkey, pubkey, WG_KEY_LEN);
	*out = peer;
	return 0;
}

int wgdev_peer_add_allowedip(struct wgdev_peer *peer, const struct wgd_ip *ip)
{
	int ret;

	ret = array_grow((void **)&peer->allowedips, peer->n_allowedips,
			 sizeof(*peer->allowedips));
	if (ret)
		return ret;
	peer->allowedips[peer->n_allowedips++] = *ip;
	return 0;
}

int wgdev_allowedip_canon(struct wgd_ip *out, const struct wgd_ip *in)
{
	if ((in->family != AF_INET && in->family != AF_INET6) ||
	    in->cidr > wgd_ip_bits(in->family))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->family = in->family;
	out->cidr = in->cidr;
	memcpy(out->bytes, in->bytes, wgd_ip_len(in->family));
	wgd_ip_mask(out);
	return 0;
}

static bool ip_in(const struct wgd_ip *ip, const struct wgd_ip *list, size_t n)
{
	for (size_t i = 0; i < n; ++i) {
		if (wgd_ip_equal(ip, &list[i]))
			return true;
	}
	return false;
}

int wgdev_allowedips_apply(const struct wgd_ip *cur, size_t n_cur,
			   const struct wgd_ip *add, size_t n_add,
			   const struct wgd_ip *del, size_t n_del,
			   struct wgd_ip **out, size_t *n_out)
{
	struct wgd_ip *res;
	size_t n = 0;

	*out = NULL;
	*n_out = 0;
	/* Both bounds: with n_add alone past the limit, the subtraction
	 * wraps and n_cur + n_add can come out as a small number. */
	if (n_add > SIZE_MAX / sizeof(*res) || n_cur > SIZE_MAX / sizeof(*res) - n_add)
		return -ENOMEM;
	if (!n_cur && !n_add)
		return 0;
	res = malloc((n_cur + n_add) * sizeof(*res));
	if (!res)
		return -ENOMEM;
	for (size_t i = 0; i < n_cur; ++i) {
		if (!ip_in(&cur[i], del, n_del) && !ip_in(&cur[i], res, n))
			res[n++] = cur[i];
	}
	/*
	 * An addition wins over a removal of the same prefix, as on the
	 * incremental paths, which send removals first.
	 */
	for (size_t i = 0; i < n_add; ++i) {
		if (!ip_in(&add[i], res, n))
			res[n++] = add[i];
	}
	if (!n) {
		free(res);
		res = NULL;
	}
	*out = res;
	*n_out = n;
	return 0;
}

int wgdev_peer_apply(struct wgdev *dev, const uint8_t pubkey[WG_KEY_LEN],
		     const struct wgd_ip *add, size_t n_add,
		     const struct wgd_ip *del, size_t n_del, struct wgdev_peer **peer)
{
	struct wgdev_peer *p = wgdev_find_peer(dev, pubkey), next = { 0 };
	struct wgd_ip *list;
	size_t n;
	int ret;

	*peer = p;
	if (!p)
		return -ENOENT;
	ret = wgdev_allowedips_apply(p->allowedips, p->n_allowedips, add, n_add, del, n_del,
				     &list, &n);
	/* Rebuilt through the grower, so that the list keeps its implied capacity. */
	for (size_t i = 0; !ret && i < n; i++)
		ret = wgdev_peer_add_allowedip(&next, &list[i]);
	free(list);
	if (ret) {
		free(next.allowedips);
		return ret;
	}
	free(p->allowedips);
	p->allowedips = next.allowedips;
	p->n_allowedips = next.n_allowedips;
	return 0;
}

void wgdev_follow(struct wgdev **dev, const uint8_t pubkey[WG_KEY_LEN],
		  const struct wgd_ip *add, size_t n_add,
		  const struct wgd_ip *del, size_t n_del)
{
	struct wgdev_peer *peer;

	if (*dev && wgdev_peer_apply(*dev, pubkey, add, n_add, del, n_del, &peer) == -ENOMEM) {
		wgdev_free(*dev);
		*dev = NULL;
	}
}

/* A peer's endpoint as the protocol writes it; family 0 when none. */
void wgdev_peer_endpoint(const struct wgdev_peer *p, struct wgd_endpoint *ep)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	memset(ep, 0, sizeof(*ep));
	if (p->endpoint.sa.sa_family == AF_INET) {
		wgd_ip_host4(&ep->addr, &p->endpoint.sin.sin_addr);
		ep->port = ntohs(p->endpoint.sin.sin_port);
	} else if (p->endpoint.sa.sa_family == AF_INET6) {
		const uint8_t *a = p->endpoint.sin6.sin6_addr.s6_addr;

		if (!memcmp(a, mapped, sizeof(mapped))) {
			struct in_addr a4;

			memcpy(&a4, a + 12, 4);
			wgd_ip_host4(&ep->addr, &a4);
		} else {
			wgd_ip_host6(&ep->addr, &p->endpoint.sin6.sin6_addr);
		}
		ep->port = ntohs(p->endpoint.sin6.sin6_port);
	}
}
