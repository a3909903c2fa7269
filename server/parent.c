// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/* wg-dynamic-server: the privileged parent. */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <linux/capability.h>

#include "../common/caps.h"
#include "../common/clock.h"
#include "../common/log.h"
#include "../common/wgdev.h"
#include "../protocol/proto.h"
#include "privsep.h"
#include "server.h"

/* ---- the parent ---- */

static pid_t engine_pid;

static void forward_signal(int sig)
{
	if (engine_pid > 0)
		kill(engine_pid, sig);
}

/*
 * Serves the engine with CAP_NET_ADMIN and CAP_KILL alone, and goes down with it: an
 * engine that exits or dies takes the whole server down, never leaving a
 * parent that half works.
 */
/*
 * A --pool overlapping a peer's static allowed-IP subnet is a
 * misconfiguration: WireGuard would route part of the pool to that peer.
 * Static host addresses (/32, /128) inside a pool are fine: they are
 * reserved, never leased.
 */
static struct wgdev *check_pool_overlaps(struct wgctl *wg, uint64_t *read_ms)
{
	struct wgdev *dev = NULL;
	char kb[WG_KEY_B64_LEN], pb[WGD_IP_STRLEN], ab[WGD_IP_STRLEN];
	int ret;

	*read_ms = clock_boot_ms();
	/* The view waits until the engine has this read (priv_serve()). */
	ret = wgctl_read_device(wg, &dev);
	if (ret) {
		log_warnx("cannot read WireGuard device %s: %s", cfg->ifname, strerror(-ret));
		exit(EXIT_NOT_WG);
	}
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *peer = &dev->peers[i];

		for (size_t j = 0; j < peer->n_allowedips; j++) {
			const struct wgd_ip *a = &peer->allowedips[j];

			if (a->cidr == wgd_ip_bits(a->family))
				continue;
			for (size_t k = 0; k < cfg->n_pools; k++) {
				if (!wgd_ip_overlaps(a, &cfg->pools[k]))
					continue;
				log_warnx("--pool %s overlaps allowed-IP %s of peer %s: shrink the "
					  "pool or that peer's allowed-IPs",
					  fmt_ip(&cfg->pools[k], pb), fmt_ip(a, ab),
					  fmt_key(peer->pubkey, kb));
				wgdev_free(dev);
				exit(EXIT_POOL_OVERLAP);
			}
		}
	}
	/* The parent answers the engine's first read with it. */
	return dev;
}

int parent_main(int fd, struct wgctl *wg, pid_t engine)
{
	struct priv_policy policy = {
		.cfg_pools = cfg->pools,
		.n_cfg_pools = cfg->n_pools,
		.ifindex = cfg->ifindex,
		.auto_ll = cfg->auto_ll,
		.refresh_ms = cfg->refresh_ms,
	};
	struct sigaction sa = { .sa_handler = forward_signal };
	struct wgdev *dev = NULL;
	uint64_t read_ms = 0;
	bool limited;
	int ret, status;

	engine_pid = engine;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* CAP_KILL: the engine runs as another user, and stopping it is ours. */
	ret = caps_limit(CAP_BIT(CAP_NET_ADMIN) | CAP_BIT(CAP_KILL));
	limited = !ret;
	/*
	 * The device is read here, while the engine reads the journal: at a
	 * million peers each takes seconds. A configuration this read refutes
	 * ends the server, and the engine with it (PR_SET_PDEATHSIG).
	 */
	if (!ret)
		dev = check_pool_overlaps(wg, &read_ms);
	if (ret) {
		log_warnx("cannot limit the parent's capabilities: %s", strerror(-ret));
		kill(engine_pid, SIGKILL);
	} else {
		ret = priv_serve(fd, wg, &policy, dev, read_ms);
		if (ret) {
			log_warnx("the engine broke the privilege protocol (%s); stopping it",
				  strerror(-ret));
			kill(engine_pid, SIGKILL);
		}
	}
	while (waitpid(engine_pid, &status, 0) < 0)
		if (errno != EINTR)
			fatal_status(EXIT_SYSTEM, "waitpid");
	/* Stopped for the failed system call, not dead of its own. */
	if (!limited)
		return EXIT_SYSTEM;
	if (WIFSIGNALED(status)) {
		log_warnx("the engine died of signal %d (%s); stopping the server",
			  WTERMSIG(status), strsignal(WTERMSIG(status)));
		return EXIT_ENGINE;
	}
	if (ret)
		return EXIT_ENGINE;
	return WEXITSTATUS(status);
}

