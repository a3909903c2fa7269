// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * wait-addr: how long after a command starts an interface has its lease,
 * for tests/bench/time-to-address.sh.
 *
 *   wait-addr [-n NETNS] [-o FILE] [-t SECONDS] IFACE COMMAND [ARG...]
 *
 * Starts COMMAND, in network namespace NETNS (/var/run/netns/NETNS) when
 * given, and watches IFACE in the namespace wait-addr itself runs in. The
 * lease is there when IFACE has an IPv4 address and an IPv6 address outside
 * fe80::/10 that is not tentative. Then it writes one line to FILE (default
 * standard output):
 *
 *   ms=12.345     the time from just before COMMAND was forked
 *   timeout       no lease within SECONDS (default 10)
 *   exited        COMMAND exited first
 *
 * Address notifications (RTM_NEWADDR) wake it, so the figure is taken as
 * the kernel announces the address, with CLOCK_MONOTONIC, not at the next
 * tick of a polling loop. Afterwards it stays, so that COMMAND is stopped
 * the way a daemon is: SIGTERM or SIGINT to wait-addr goes on to COMMAND,
 * and wait-addr exits with COMMAND's status once it has exited (127 when it
 * could not be run). Exit status 2 when wait-addr itself cannot start, or
 * IFACE had its addresses already.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/clock.h"
#include "../../common/rtnl.h"

static struct rtnl *rt;
static uint32_t ifindex;
static bool addr_changed;

static void usage(void)
{
	fprintf(stderr, "usage: wait-addr [-n NETNS] [-o FILE] [-t SECONDS] IFACE COMMAND "
		"[ARG...]\n");
	exit(2);
}

/* Whether IFACE holds a lease: an IPv4 address, and a global IPv6 one that
 * is usable already. */
static bool has_lease(void)
{
	struct rtnl_addr *addrs = NULL;
	bool v4 = false, v6 = false;
	size_t n = 0;

	if (rtnl_addr_list(rt, ifindex, AF_UNSPEC, &addrs, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (addrs[i].ip.family == AF_INET)
			v4 = true;
		else if (!wgd_ip_is_linklocal6(&addrs[i].ip) &&
			 !(addrs[i].flags & IFA_F_TENTATIVE))
			v6 = true;
	}
	free(addrs);
	return v4 && v6;
}

static void on_event(const struct rtnl_event *ev, void *ctx)
{
	(void)ctx;
	if (ev->type == RTNL_EV_OVERRUN ||
	    (ev->type == RTNL_EV_ADDR_NEW && ev->ifindex == ifindex))
		addr_changed = true;
}

static pid_t start(char *argv[], const char *netns, const sigset_t *mask)
{
	int nsfd = -1;
	pid_t pid;

	if (netns) {
		char path[4096];

		snprintf(path, sizeof(path), "/var/run/netns/%s", netns);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0) {
			fprintf(stderr, "wait-addr: %s: %s\n", path, strerror(errno));
			exit(2);
		}
	}
	pid = fork();
	if (pid < 0) {
		perror("wait-addr: fork");
		exit(2);
	}
	if (pid == 0) {
		sigprocmask(SIG_UNBLOCK, mask, NULL);
		if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET)) {
			fprintf(stderr, "wait-addr: setns %s: %s\n", netns, strerror(errno));
			_exit(127);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "wait-addr: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (nsfd >= 0)
		close(nsfd);
	return pid;
}

/* The exit status a shell would give for a child's wait status. */
static int shell_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

int main(int argc, char *argv[])
{
	const char *netns = NULL, *out_path = NULL;
	struct rtnl_monitor *mon = NULL;
	struct rtnl_link link;
	bool reported = false;
	uint64_t t0, deadline;
	long timeout_s = 10;
	int opt, sig_fd, status;
	FILE *out = stdout;
	sigset_t mask;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+n:o:t:")) != -1) {
		switch (opt) {
		case 'n':
			netns = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 't': {
			char *end;

			timeout_s = strtol(optarg, &end, 10);
			if (*end || timeout_s < 1 || timeout_s > 3600)
				usage();
			break;
		}
		default:
			usage();
		}
	}
	if (argc - optind < 2)
		usage();

	if (out_path) {
		out = fopen(out_path, "we");
		if (!out) {
			fprintf(stderr, "wait-addr: %s: %s\n", out_path, strerror(errno));
			return 2;
		}
	}
	/* Watch first, then look: an address added in between is not lost. */
	if (rtnl_open(&rt) ||
	    rtnl_monitor_open(&mon, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)) {
		fprintf(stderr, "wait-addr: cannot open rtnetlink\n");
		return 2;
	}
	if (rtnl_link_get(rt, argv[optind], &link)) {
		fprintf(stderr, "wait-addr: no interface %s\n", argv[optind]);
		return 2;
	}
	ifindex = link.ifindex;
	if (has_lease()) {
		fprintf(stderr, "wait-addr: %s has its addresses already\n", argv[optind]);
		return 2;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sig_fd < 0) {
		perror("wait-addr: signalfd");
		return 2;
	}

	t0 = clock_mono_us();
	deadline = t0 + (uint64_t)timeout_s * 1000000;
	pid = start(argv + optind + 1, netns, &mask);

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = sig_fd, .events = POLLIN },
			{ .fd = rtnl_monitor_fd(mon), .events = reported ? 0 : POLLIN },
		};
		uint64_t now = clock_mono_us();
		int timeout = -1;

		if (!reported)
			timeout = now >= deadline ? 0 : (int)((deadline - now + 999) / 1000);
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
			perror("wait-addr: poll");
			return 2;
		}
		now = clock_mono_us();
		if (!reported && (pfd[1].revents & POLLIN)) {
			addr_changed = false;
			rtnl_monitor_read(mon, on_event, NULL);
			if (addr_changed && has_lease()) {
				fprintf(out, "ms=%.3f\n", (double)(now - t0) / 1000);
				fflush(out);
				reported = true;
			}
		}
		if (!reported && now >= deadline) {
			fprintf(out, "timeout\n");
			fflush(out);
			reported = true;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sig_fd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo != SIGCHLD) {
				kill(pid, (int)si.ssi_signo);
				continue;
			}
			if (waitpid(pid, &status, WNOHANG) == pid) {
				if (!reported) {
					fprintf(out, "exited\n");
					fflush(out);
				}
				return shell_status(status);
			}
		}
	}
}
