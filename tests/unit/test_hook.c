// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * The client's hooks, run for real: /bin/sh scripts in a temporary
 * directory that write down what they see. The test process stands in for
 * the client, with its signal state: SIGTERM, SIGINT and SIGHUP blocked,
 * SIGPIPE ignored.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../client/hook.h"

/*
 * The shell's blocked and ignored signals, read with builtins alone: dash
 * clears its mask once it has forked. Then what it should read.
 */
#define SIG_READ \
	"while read -r k v; do case $k in SigBlk:|SigIgn:) echo \"$k $v\";; esac; done " \
	"</proc/$$/status "
#define SIG_CLEAN "SigBlk: 0000000000000000\nSigIgn: 0000000000000000\n"

/* A descriptor the client has open without close-on-exec. */
#define LEAKED_FD 57

/* Made and removed by the runner; each test has a directory inside. */
static char base[256];
static char dir[300];
static char log_path[340];

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void msleep(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static const char *path(const char *name)
{
	static char buf[4][400];
	static unsigned next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

/* Writes an executable /bin/sh script NAME; $D in it is the directory. */
static const char *script(const char *name, const char *body)
{
	const char *p = path(name);
	FILE *f = fopen(p, "w");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\nD=%s\n%s", dir, body);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(p, 0755), 0);
	return p;
}

/* The contents of NAME in the directory, "" when missing. */
static const char *slurp(const char *name)
{
	static char buf[8192];
	ssize_t n = 0;
	int fd = open(path(name), O_RDONLY);

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static long read_num(const char *name)
{
	return strtol(slurp(name), NULL, 10);
}

static bool exists(const char *name)
{
	return !access(path(name), F_OK);
}

static bool wait_exists(const char *name, unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (!exists(name)) {
		if (mono_ms() >= end)
			return false;
		msleep(10);
	}
	return true;
}

/* Whether pid has ended: no such process, or a zombie. */
static bool pid_gone(pid_t pid)
{
	char p[64], stat[512];
	ssize_t n;
	char *s;
	int fd;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return true;
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return true;
	stat[n] = '\0';
	s = strrchr(stat, ')');
	return s && s[1] == ' ' && (s[2] == 'Z' || s[2] == 'X');
}

static bool pid_gone_within(pid_t pid, unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (!pid_gone(pid)) {
		if (mono_ms() >= end)
			return false;
		msleep(10);
	}
	return true;
}

static void queue(const char *script_path, const char *reason, unsigned timeout_s)
{
	struct hook_env env = { .reason = reason, .interface = "wgtest0", .lease_time = 60 };

	ck_assert_int_eq(hook_run(script_path, &env, timeout_s), 0);
}

/* The lines of the log, counted. */
static unsigned log_lines(void)
{
	const char *s = slurp("log");
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void make_base(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(base, sizeof(base), "%s/wgd-hook.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base)) {
		perror(base);
		exit(1);
	}
}

static void remove_base(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", base);
}

static void setup(void)
{
	sigset_t mask;
	int fd;

	snprintf(dir, sizeof(dir), "%s/t.XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* What the client logs goes to stderr: into a file, to be read. */
	snprintf(log_path, sizeof(log_path), "%s/client.log", dir);
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	/* The client's signal state. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	fd = open("/dev/zero", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, LEAKED_FD), LEAKED_FD);
	close(fd);
}

static void teardown(void)
{
	hook_drain(10);
}

static const char *client_log(void)
{
	return slurp("client.log");
}

/* ---- tests ---- */

START_TEST(hooks_run_in_order_one_at_a_time)
{
	const char *s = script("hook", "echo \"start $1 $(date +%s%N)\" >>$D/log\n"
				       "sleep 0.2\n"
				       "echo \"end $1 $(date +%s%N)\" >>$D/log\n");
	static const char *const reasons[] = { "H1", "H2", "H3", "H4", "H5" };
	unsigned long long last_end = 0;
	const char *line;
	uint64_t end = mono_ms() + 10000;

	for (unsigned i = 0; i < 5; i++)
		queue(s, reasons[i], 5);
	/* The queue advances as the client loop calls hook_reap(). */
	while (log_lines() < 10 && mono_ms() < end) {
		hook_reap();
		msleep(10);
	}
	ck_assert_uint_eq(log_lines(), 10);
	line = slurp("log");
	for (unsigned i = 0; i < 5; i++) {
		char what[8], reason[8];
		unsigned long long start_ns, end_ns;

		ck_assert_int_eq(sscanf(line, "%7s %7s %llu", what, reason, &start_ns), 3);
		ck_assert_str_eq(what, "start");
		ck_assert_str_eq(reason, reasons[i]);
		line = strchr(line, '\n') + 1;
		ck_assert_int_eq(sscanf(line, "%7s %7s %llu", what, reason, &end_ns), 3);
		ck_assert_str_eq(what, "end");
		ck_assert_str_eq(reason, reasons[i]);
		line = strchr(line, '\n') + 1;
		/* Never two at once: each starts after the one before ended. */
		ck_assert_uint_ge(start_ns, last_end);
		ck_assert_uint_gt(end_ns, start_ns);
		last_end = end_ns;
	}
}
END_TEST

START_TEST(hook_starts_with_clean_signals)
{
	/* Builtins only: dash clears its signal mask once it has forked. */
	const char *s = script("hook", SIG_READ ">$D/sig\n"
				       ": >$D/asked\n"
				       "kill -TERM $$\n"
				       ": >$D/survived\n");

	queue(s, "BOUND", 5);
	ck_assert(wait_exists("asked", 5000));
	hook_drain(5);
	ck_assert_str_eq(slurp("sig"), SIG_CLEAN);
	/* SIGTERM at its default action: the script ends there. */
	ck_assert(!exists("survived"));
	ck_assert_ptr_nonnull(strstr(client_log(), "(BOUND) died of signal 15"));
}
END_TEST

START_TEST(hook_has_own_group_and_nothing_inherited)
{
	const char *s = script("hook", "cut -d' ' -f5 /proc/$$/stat >$D/pgid\n"
				       "echo $$ >$D/pid\n"
				       "readlink /proc/$$/fd/0 >$D/stdin\n"
				       "if [ -e /proc/$$/fd/57 ]; then touch $D/leaked; fi\n"
				       "echo \"$reason $interface $lease_time\" >$D/env\n");

	queue(s, "RENEW", 5);
	hook_drain(5);
	ck_assert(exists("pid"));
	ck_assert_int_eq(read_num("pgid"), read_num("pid"));
	ck_assert_int_ne(read_num("pgid"), getpgrp());
	ck_assert_str_eq(slurp("stdin"), "/dev/null\n");
	ck_assert(!exists("leaked"));
	ck_assert_str_eq(slurp("env"), "RENEW wgtest0 60\n");
}
END_TEST

START_TEST(timeout_kills_the_whole_group)
{
	/* Neither the script nor what it starts heeds SIGTERM. */
	const char *s = script("hook", "trap '' TERM\n"
				       "sleep 100 &\n"
				       "echo $! >$D/child\n"
				       "echo $$ >$D/pid\n"
				       "while :; do wait; done\n");
	uint64_t start = mono_ms(), took;
	pid_t pid, child;
	bool gone, child_gone;

	queue(s, "BOUND", 1);
	ck_assert(wait_exists("child", 5000));
	ck_assert(wait_exists("pid", 5000));
	child = (pid_t)read_num("child");
	pid = (pid_t)read_num("pid");
	ck_assert_int_gt(child, 1);
	ck_assert_int_gt(pid, 1);
	hook_drain(10);
	took = mono_ms() - start;
	gone = pid_gone_within(pid, 1000);
	child_gone = pid_gone_within(child, 1000);
	if (!child_gone)
		kill(child, SIGKILL);
	if (!gone)
		kill(pid, SIGKILL);
	ck_assert(gone);
	ck_assert(child_gone);
	/* At its limit, and the grace: not before, not much after. */
	ck_assert_uint_ge(took, 1000 + HOOK_GRACE_MS - 100);
	ck_assert_uint_lt(took, 1000 + HOOK_GRACE_MS + 3000);
	ck_assert_ptr_nonnull(strstr(client_log(), "did not finish within 1s; killed it"));
}
END_TEST

START_TEST(full_queue_drops_the_oldest_waiting)
{
	const char *block = script("block", "while [ ! -e $D/go ]; do sleep 0.02; done\n"
					    "echo \"$reason\" >>$D/log\n");
	const char *s = script("hook", "echo \"$reason $interface\" >>$D/log\n");
	char reason[8], ifname[16], want[512] = "BLOCK\n";
	size_t off = strlen(want);
	struct hook_env env = { .reason = reason, .interface = ifname };

	queue(block, "BLOCK", 20);
	/* One more than fits behind the running one. */
	for (unsigned i = 1; i <= HOOK_QUEUE_MAX + 1; i++) {
		snprintf(reason, sizeof(reason), "Q%u", i);
		snprintf(ifname, sizeof(ifname), "wg%u", i);
		ck_assert_int_eq(hook_run(s, &env, 5), 0);
		if (i > 1)
			off += (size_t)snprintf(want + off, sizeof(want) - off, "Q%u wg%u\n", i, i);
	}
	/* The queue keeps copies: the caller's memory may change. */
	strcpy(reason, "CHANGED");
	strcpy(ifname, "changed");
	msleep(300);
	/* None of them ran while the first still did. */
	ck_assert_str_eq(slurp("log"), "");
	ck_assert_int_eq(close(open(path("go"), O_WRONLY | O_CREAT, 0644)), 0);
	hook_drain(30);
	ck_assert_str_eq(slurp("log"), want);
	ck_assert_ptr_nonnull(strstr(client_log(), "dropped the oldest, Q1,"));
}
END_TEST

START_TEST(hook_fd_wakes_the_loop)
{
	const char *s = script("hook", "touch $D/started-$1\nsleep 0.2\n");
	struct pollfd pfd = { .events = POLLIN };

	ck_assert_int_eq(hook_fd(), -1);
	queue(s, "A", 5);
	queue(s, "B", 5);
	pfd.fd = hook_fd();
	ck_assert_int_ge(pfd.fd, 0);
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	ck_assert(pfd.revents & POLLIN);
	ck_assert(exists("started-A"));
	/* The next starts when the loop dispatches, not before. */
	msleep(200);
	ck_assert(!exists("started-B"));
	hook_dispatch();
	pfd.fd = hook_fd();
	ck_assert_int_ge(pfd.fd, 0);
	ck_assert(wait_exists("started-B", 5000));
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	hook_dispatch();
	ck_assert_int_eq(hook_fd(), -1);
}
END_TEST

START_TEST(drain_is_bounded)
{
	const char *hang = script("hang", "trap '' TERM\n"
					  "echo $$ >$D/pid\n"
					  "while :; do sleep 1; done\n");
	const char *s = script("hook", "touch $D/ran-$1\n");
	uint64_t start;
	pid_t pid;

	queue(hang, "RENEW", 60);
	queue(s, "RELEASE", 5);
	ck_assert(wait_exists("pid", 5000));
	pid = (pid_t)read_num("pid");
	start = mono_ms();
	hook_drain(1);
	ck_assert_uint_lt(mono_ms() - start, 1000 + HOOK_GRACE_MS + 1500);
	ck_assert_int_eq(hook_fd(), -1);
	ck_assert(pid_gone_within(pid, 1000));
	ck_assert(!exists("ran-RELEASE"));
	ck_assert_ptr_nonnull(strstr(client_log(), "dropped 1 waiting hook, not run: RELEASE"));
	ck_assert_ptr_nonnull(strstr(client_log(), "(RENEW) still ran when the client exited"));
}
END_TEST

START_TEST(drain_runs_what_waits)
{
	const char *s = script("hook", "sleep 0.1\necho $1 >>$D/log\n");

	queue(s, "RENEW", 5);
	queue(s, "RELEASE", 5);
	hook_drain(10);
	ck_assert_str_eq(slurp("log"), "RENEW\nRELEASE\n");
	ck_assert_int_eq(hook_fd(), -1);
}
END_TEST

START_TEST(client_death_ends_its_hook)
{
	const char *s = script("hang", "trap '' TERM\n"
				       "sleep 100 &\n"
				       "echo $! >$D/child\n"
				       "echo $$ >$D/pid\n"
				       "while :; do wait; done\n");
	pid_t client, pid, child;
	bool gone, child_gone;

	/* A client that queues a hook with a long limit, then is killed. */
	client = fork();
	ck_assert_int_ge(client, 0);
	if (client == 0) {
		struct hook_env env = { .reason = "RENEW", .interface = "wgtest0" };

		hook_run(s, &env, 60);
		for (;;)
			pause();
	}
	ck_assert(wait_exists("pid", 5000));
	ck_assert(wait_exists("child", 5000));
	pid = (pid_t)read_num("pid");
	child = (pid_t)read_num("child");
	ck_assert_int_gt(pid, 1);
	ck_assert_int_gt(child, 1);
	kill(client, SIGKILL);
	waitpid(client, NULL, 0);
	gone = pid_gone_within(pid, HOOK_GRACE_MS + 2000);
	child_gone = pid_gone_within(child, 1000);
	if (!gone)
		kill(pid, SIGKILL);
	if (!child_gone)
		kill(child, SIGKILL);
	ck_assert(gone);
	ck_assert(child_gone);
}
END_TEST

START_TEST(run_wait_starts_clean_and_gets_input)
{
	char *argv[] = { "/bin/sh", "-c",
			 SIG_READ ">\"$0/sig\"; cat >\"$0/input\"; "
			 "[ \"$(cut -d' ' -f5 /proc/$$/stat)\" = $$ ] || exit 3; "
			 "[ -e /proc/$$/fd/57 ] && exit 4; exit 7",
			 dir, NULL };

	ck_assert_int_eq(hook_run_wait(argv, "nameserver 192.0.2.53\n", 5), 7);
	ck_assert_str_eq(slurp("input"), "nameserver 192.0.2.53\n");
	ck_assert_str_eq(slurp("sig"), SIG_CLEAN);
}
END_TEST

START_TEST(run_wait_timeout_kills_the_whole_group)
{
	char *argv[] = { "/bin/sh", "-c",
			 "trap '' TERM; sleep 100 & echo $! >\"$0/child\"; "
			 "while :; do wait; done",
			 dir, NULL };
	uint64_t start = mono_ms(), took;
	pid_t child;
	bool gone;

	ck_assert_int_eq(hook_run_wait(argv, NULL, 1), -ETIMEDOUT);
	took = mono_ms() - start;
	child = (pid_t)read_num("child");
	ck_assert_int_gt(child, 1);
	gone = pid_gone_within(child, 1000);
	if (!gone)
		kill(child, SIGKILL);
	ck_assert(gone);
	ck_assert_uint_lt(took, 1000 + HOOK_GRACE_MS + 2000);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hook");
	TCase *tc = tcase_create("hook");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, make_base, remove_base);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, hooks_run_in_order_one_at_a_time);
	tcase_add_test(tc, hook_starts_with_clean_signals);
	tcase_add_test(tc, hook_has_own_group_and_nothing_inherited);
	tcase_add_test(tc, timeout_kills_the_whole_group);
	tcase_add_test(tc, full_queue_drops_the_oldest_waiting);
	tcase_add_test(tc, hook_fd_wakes_the_loop);
	tcase_add_test(tc, drain_is_bounded);
	tcase_add_test(tc, drain_runs_what_waits);
	tcase_add_test(tc, client_death_ends_its_hook);
	tcase_add_test(tc, run_wait_starts_clean_and_gets_input);
	tcase_add_test(tc, run_wait_timeout_kills_the_whole_group);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
