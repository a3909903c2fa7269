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
 * while the client goes on. The supervisor blocks every signal and leaves
 * the client's process group, so that only a SIGKILL of its own can leave
 * a script unwatched; a SIGTERM, which the kernel sends it when the client
 * dies, has it end the script at once as at its limit.
 *
 * Both start as a fresh process would: every signal unblocked and at its
 * default action (the client blocks SIGTERM, SIGINT and SIGHUP for its
 * signalfd and ignores SIGPIPE), standard input from /dev/null (or the
 * input given), no descriptor of the client's beyond 0, 1 and 2, and in a
 * process group of their own. At the time limit the whole group gets
 * SIGTERM, and HOOK_GRACE_MS later SIGKILL, so that nothing the script
 * started outlives it, even what ignores SIGTERM. Whatever a script leaves
 * behind when it exits in time (a daemon it starts) is left alone.
 */

#define HOOK_GRACE_MS 1000	/* from SIGTERM to SIGKILL at the time limit */

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
 * Runs argv[0], found through PATH, with input on its standard input (at
 * most PIPE_BUF bytes; NULL: none), and waits for it, at most timeout_s
 * seconds and the grace. It starts as a hook does. 0 when it exited 0, a
 * positive exit status, -ETIMEDOUT when it was killed at its limit, -EINTR
 * when a signal killed it, else -errno.
 */
int hook_run_wait(char *const argv[], const char *input, unsigned timeout_s);

/* Reaps finished supervisors; call now and then. */
void hook_reap(void);

#endif
