/* SPDX-License-Identifier: MIT */
#ifndef WGD_HOOK_H
#define WGD_HOOK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../protocol/ipaddr.h"

/*
 * The user's script, run on every change of state as dhcpcd and udhcpc run
 * theirs, and resolvconf(8). Neither may stall the lease: each runs under a
 * supervising child that kills it at its time limit and logs how it ended,
 * while the client goes on.
 */

struct hook_env {
	const char *reason;     /* BOUND, RENEW, REBIND, EXPIRE, RELEASE, STOP */
	const char *interface;
	const struct wgd_ip *new_ip4, *new_ip6, *old_ip4, *old_ip6; /* NULL: none */
	const struct wgd_ip *routes;
	size_t n_routes;
	uint32_t lease_time;
	const struct wgd_ip *dns;
	size_t n_dns;
	const char *dns_search;
};

/*
 * Fills envp (at most HOOK_ENV_MAX entries plus NULL) with the variables,
 * their text in buf. Pure, for tests. Returns the number of entries.
 */
#define HOOK_ENV_MAX 16
size_t hook_build_env(const struct hook_env *env, char *buf, size_t len,
		      char *envp[HOOK_ENV_MAX + 1]);

/* Starts script in the background; the supervisor's pid, or -errno. */
pid_t hook_run(const char *script, const struct hook_env *env, unsigned timeout_s);

/*
 * Runs argv with input on its standard input and waits for it, at most
 * timeout_s seconds. 0 when it exited 0, else -errno or a positive status.
 */
int hook_run_wait(char *const argv[], const char *input, unsigned timeout_s);

/* Reaps finished supervisors; call now and then. */
void hook_reap(void);

#endif
