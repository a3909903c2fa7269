/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_HOOK_H
#define WGD_HOOK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../protocol/ipaddr.h"

/*
 * The user's script, run on every change of state as dhcpcd and udhcpc run
 * theirs, and resolvconf(8).
 *
 * Scripts run one at a time, in the order hook_run() was called. Each runs
 * under a supervising child of the client, which waits for it, ends it at
 * its time limit and logs how it ended; the client waits for nothing but
 * learns through hook_fd() when the supervisor is gone, and then starts the
 * next. The supervisor blocks every signal and leaves the client's process
 * group, so that only a SIGKILL of its own can leave a script unwatched; a
 * SIGTERM, from hook_drain() or from the kernel when the client dies, has
 * it end the script at once as at its limit. resolvconf runs through
 * hook_run_wait(), which the client waits for.
 *
 * Both start as a fresh process would: every signal unblocked and at its
 * default action (the client blocks SIGTERM, SIGINT and SIGHUP for its
 * signalfd and ignores SIGPIPE), standard input from /dev/null (or the
 * input given), no descriptor of the client's beyond 0, 1 and 2, and in a
 * process group of their own. At the time limit the whole group gets
 * SIGTERM, and HOOK_GRACE_MS later SIGKILL, so that nothing the script
 * started outlives it, even what ignores SIGTERM. Whatever a script leaves
 * behind when it exits in time (a daemon it starts) is left alone.
 *
 * Hooks wait in a queue of HOOK_QUEUE_MAX behind the running one. The queue
 * only fills when scripts keep running into their limit while the lease
 * changes faster than once per limit; then the oldest waiting hook is
 * dropped, with a log line naming it. The newest hooks describe the lease
 * as it is now, which is what a script must end up with, and the last hook
 * of a client's life (RELEASE, STOP) is never the one dropped.
 *
 * The client's loop (wait_events() in main.c) polls hook_fd() in a slot
 * of its own, taken afresh for every poll() since it changes as hooks
 * start and end (poll() skips a -1), and calls hook_dispatch() when it is
 * readable:
 *
 *	struct pollfd pfd[PFD_EXCHANGES + N_EXCHANGES] = {
 *		...
 *		[PFD_HOOK] = { .fd = hook_fd(), .events = POLLIN },
 *	};
 *
 *	poll(pfd, PFD_EXCHANGES + N_EXCHANGES, timeout);
 *	if (pfd[PFD_HOOK].revents & POLLIN)
 *		hook_dispatch();
 *
 * hook_reap() stays at the top of the loop: one waitid() a pass, and what
 * advances the queue on a kernel without pidfds, though only when the loop
 * wakes for something else. Every way out that queues a last hook
 * (release_finish() for RELEASE, the RTNL_EV_LINK_DEL branch of
 * on_rtnl_event() for STOP) calls hook_drain(HOOK_DRAIN_EXIT_S) after
 * queuing it and before exit(), so that the client exits once its hooks
 * have run: with the default limit of 10 s, the hook running then and the
 * last one take at most 22 s, well within a service manager's time for a
 * stop (systemd's default is 90 s).
 */

#define HOOK_QUEUE_MAX 8	/* hooks waiting behind the running one */
#define HOOK_GRACE_MS 1000	/* from SIGTERM to SIGKILL at the time limit */
#define HOOK_DRAIN_EXIT_S 30	/* the bound of the drain run by exit() */

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
 * their text in buf, one after another, each ending in NUL. Pure, for
 * tests. Returns the number of entries.
 */
#define HOOK_ENV_MAX 16
size_t hook_build_env(const struct hook_env *env, char *buf, size_t len,
		      char *envp[HOOK_ENV_MAX + 1]);

/*
 * Queues script with env->reason as its argument and env as its
 * environment, copied: nothing env points to is needed once this returns.
 * Starts it when no hook runs. 0, or -ENAMETOOLONG for a path longer than
 * PATH_MAX; a script that cannot be started is logged, when it would start.
 */
pid_t hook_run(const char *script, const struct hook_env *env, unsigned timeout_s);

/*
 * A descriptor that becomes readable (POLLIN) when the running hook has
 * ended, for poll(); -1 when none runs, or when the kernel has no pidfds
 * (before Linux 5.3: then only hook_dispatch() finds it ended).
 */
int hook_fd(void);

/* Reaps the running hook's supervisor if it has ended and starts the next
 * hook. Never blocks; harmless to call at any time. */
void hook_dispatch(void);

/* The same as hook_dispatch(), for a loop that calls it on every pass. */
void hook_reap(void);

/*
 * Waits until every queued hook has run, at most timeout_s seconds. Past
 * that, the running hook is ended as at its time limit, and what still
 * waits is dropped with a log line naming it.
 */
void hook_drain(unsigned timeout_s);

/*
 * Runs argv[0], found through PATH, with input on its standard input (at
 * most PIPE_BUF bytes; NULL: none), and waits for it, at most timeout_s
 * seconds and the grace. It starts as a hook does. 0 when it exited 0, a
 * positive exit status, -ETIMEDOUT when it was killed at its limit, -EINTR
 * when a signal killed it, else -errno.
 */
int hook_run_wait(char *const argv[], const char *input, unsigned timeout_s);

#endif
