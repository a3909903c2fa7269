// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * The reply of a userspace WireGuard daemon (wireguard-go) to "get=1" and
 * "set=1". The input is the whole reply, as read_reply() hands it over.
 */

#include <errno.h>
#include <sodium.h>

#include "../../common/wgdev-uapi.h"
#include "fuzz-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

/* Where a reply that parses must end: at its one blank line. */
static void check_reply_end(const char *buf, size_t len)
{
	size_t end = uapi_reply_end(buf, len);

	FUZZ_CHECK(end <= len);
	if (end) {
		FUZZ_CHECK(buf[end - 1] == '\n');
		FUZZ_CHECK(end == 1 || buf[end - 2] == '\n');
	}
}

static void check_peer(const struct wgdev_peer *peer)
{
	sa_family_t family = peer->endpoint.sa.sa_family;

	FUZZ_CHECK(family == 0 || family == AF_INET || family == AF_INET6);
	FUZZ_CHECK(peer->last_handshake_sec >= 0);
	FUZZ_CHECK(peer->n_allowedips == 0 || peer->allowedips);
	for (size_t i = 0; i < peer->n_allowedips; ++i) {
		const struct wgd_ip *ip = &peer->allowedips[i];
		struct wgd_ip canon;

		/* The parser hands out canonical prefixes only. */
		FUZZ_CHECK(wgdev_allowedip_canon(&canon, ip) == 0);
		FUZZ_CHECK(wgd_ip_equal(&canon, ip));
		FUZZ_CHECK(!memcmp(canon.bytes, ip->bytes, sizeof(ip->bytes)));
	}
}

/* Builds the set=1 operation that would put this peer's list back. */
static void build_for_peer(const struct wgdev_peer *peer)
{
	char *req;
	size_t len;
	int ret;

	ret = uapi_build_set_allowedips(&req, &len, peer->pubkey, true,
					peer->allowedips, peer->n_allowedips, NULL, 0);
	FUZZ_CHECK(ret == 0);
	FUZZ_CHECK(strlen(req) == len && len >= 2);
	FUZZ_CHECK(req[len - 1] == '\n' && req[len - 2] == '\n');
	FUZZ_CHECK(uapi_reply_end(req, len) == len);
	free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wgdev sentinel;
	const char *buf = (const char *)data;
	struct wgdev *dev = &sentinel;
	int ret;

	check_reply_end(buf, size);

	ret = uapi_parse_get(buf, size, &dev);
	if (ret) {
		FUZZ_CHECK(ret < 0 && dev == NULL);
	} else {
		FUZZ_CHECK(dev != NULL);
		FUZZ_CHECK(uapi_reply_end(buf, size) == size);
		FUZZ_CHECK(dev->n_peers == 0 || dev->peers);
		for (size_t i = 0; i < dev->n_peers; ++i)
			check_peer(&dev->peers[i]);
		if (dev->n_peers)
			build_for_peer(&dev->peers[dev->n_peers - 1]);
		wgdev_free(dev);
	}

	ret = uapi_parse_set(buf, size);
	FUZZ_CHECK(ret <= 0);
	if (ret == 0)
		FUZZ_CHECK(uapi_reply_end(buf, size) == size);
	return 0;
}
