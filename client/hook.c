// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "../protocol/proto.h"
#include "hook.h"

struct env_buf {
	char *p;
	size_t left;
	char **envp;
	size_t n;
};

static void env_add(struct env_buf *b, const char *key, const char *val)
{
	int n;

	if (b->n == HOOK_ENV_MAX)
		return;
	n = snprintf(b->p, b->left, "%s=%s", key, val);
	if (n < 0 || (size_t)n >= b->left)
		return;
	b->envp[b->n++] = b->p;
	b->p += n + 1;
	b->left -= (size_t)n + 1;
}

static void env_add_ip(struct env_buf *b, const char *key, const struct wgd_ip *ip)
{
	char s[WGD_IP_STRLEN] = "";

	if (ip)
		wgd_ip_format_addr(ip, s, sizeof(s));
	env_add(b, key, s);
}

static void env_add_list(struct env_buf *b, const char *key, const struct wgd_ip *ips, size_t n,
			 bool prefixes)
{
	char s[WGD_MAX_ROUTES * WGD_IP_STRLEN] = "", one[WGD_IP_STRLEN];
	size_t off = 0;

	for (size_t i = 0; i < n; i++) {
		if (prefixes)
			wgd_ip_format(&ips[i], one, sizeof(one));
		else
			wgd_ip_format_addr(&ips[i], one, sizeof(one));
		off += (size_t)snprintf(s + off, sizeof(s) - off, "%s%s", i ? " " : "", one);
		if (off >= sizeof(s))
			break;
	}
	env_add(b, key, s);
}

size_t hook_build_env(const struct hook_env *env, char *buf, size_t len,
		      char *envp[HOOK_ENV_MAX + 1])
{
	struct env_buf b = { .p = buf, .left = len, .envp = envp };
	char lt[16];

	env_add(&b, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	env_add(&b, "reason", env->reason);
	env_add(&b, "interface", env->interface);
	env_add_ip(&b, "new_ip4", env->new_ip4);
	env_add_ip(&b, "new_ip6", env->new_ip6);
	env_add_ip(&b, "old_ip4", env->old_ip4);
	env_add_ip(&b, "old_ip6", env->old_ip6);
	env_add_list(&b, "routes", env->routes, env->n_routes, true);
	snprintf(lt, sizeof(lt), "%u", env->lease_time);
	env_add(&b, "lease_time", lt);
	env_add_list(&b, "dns", env->dns, env->n_dns, false);
	env_add(&b, "dns_search", env->dns_search ? env->dns_search : "");
	envp[b.n] = NULL;
	return b.n;
}

/* ---- starting and ending one program ---- */

/* How a wait for a child ended. */
enum {
	CHILD_EXITED,
	CHILD_EXPIRED,	/* its time was up */
	CHILD_STOPPED,	/* the supervisor was told to end it */
};

/* Set in a supervisor, which has every signal blocked. */
static bool supervising;

static int pidfd_open_child(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

static void close_from(unsigned lowfd)
{
	long max;

#ifdef SYS_close_range
	if (!syscall(SYS_close_range, lowfd, ~0U, 0))
		return;
#endif
	/* Before Linux 5.9. */
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > INT_MAX)
		max = 1024;
	for (int fd = (int)lowfd; fd < max; fd++)
		close(fd);
}

/*
 * In a new child, before exec: nothing of the client's signal state or
 * descriptors, and a process group of its own. in_fd, or /dev/null, is
 * its standard input. Every signal is blocked on entry.
 */
static void child_setup(int in_fd)
{
	/* The kernel's struct sigaction for SIG_DFL, no flags, no mask. */
	static const unsigned long kdfl[8];
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int fd, null;

	for (int sig = 1; sig < NSIG; sig++) {
		if (!sigaction(sig, &dfl, NULL) || sig == SIGKILL || sig == SIGSTOP)
			continue;
		/* The C library keeps its own signals (32 and 33 with glibc)
		 * from sigaction(), yet they may come ignored from our parent. */
		syscall(SYS_rt_sigaction, sig, kdfl, NULL, (size_t)(NSIG - 1) / 8);
	}
	if (setpgid(0, 0))
		_exit(126);
	/* Above 2, whichever of 0-2 the client may have closed. */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	null = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	if (null < 0)
		_exit(126);
	close(fd);
	if (in_fd < 0)
		in_fd = null;
	/* dup2() onto itself would leave close-on-exec set. */
	if ((in_fd == STDIN_FILENO ? fcntl(in_fd, F_SETFD, 0) : dup2(in_fd, STDIN_FILENO)) < 0)
		_exit(126);
	/* The client's stdout and stderr are kept. Were either closed (or
	 * one of ours), the script's next file would take its place:
	 * /dev/null does instead. */
	for (fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++) {
		int flags = fcntl(fd, F_GETFD);

		if (flags >= 0 && !(flags & FD_CLOEXEC))
			continue;
		if (dup2(null, fd) < 0)
			_exit(126);
	}
	close_from(STDERR_FILENO + 1);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * Starts argv[0] in a process group of its own, whose id is its pid: with
 * envp through execve(), or through PATH with the client's environment
 * when envp is NULL. Returns the pid, or -errno.
 */
static pid_t spawn(char *const argv[], char *const envp[], int in_fd)
{
	sigset_t all, old;
	pid_t pid;
	int err;

	/* Nothing is delivered to the child before it has reset its handlers. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		child_setup(in_fd);
		if (envp)
			execve(argv[0], argv, envp);
		else
			execvp(argv[0], argv);
		_exit(127);
	}
	err = errno;
	/* The child does the same; whichever comes first, the group exists
	 * before anyone signals it. After its exec this fails, harmlessly. */
	if (pid > 0)
		setpgid(pid, pid);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid < 0 ? -err : pid;
}

/*
 * Waits until the child pid has exited, without reaping it, or until
 * until_ms. fd is its pidfd, or -1. A supervisor instead waits for
 * SIGCHLD, and SIGTERM tells it to end the child now.
 */
static int wait_exit(pid_t pid, int fd, uint64_t until_ms)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	for (;;) {
		siginfo_t si;
		uint64_t now, left;

		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR)
			return CHILD_EXITED; /* not ours to wait for: waitpid() says why */
		if (si.si_pid == pid)
			return CHILD_EXITED;
		now = clock_boot_ms();
		if (now >= until_ms)
			return CHILD_EXPIRED;
		left = until_ms - now < 1000 ? until_ms - now : 1000;
		if (supervising) {
			struct timespec ts = {
				.tv_sec = (time_t)(left / 1000),
				.tv_nsec = (long)(left % 1000) * 1000000,
			};

			if (sigtimedwait(&set, NULL, &ts) == SIGTERM)
				return CHILD_STOPPED;
		} else if (fd >= 0) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			poll(&pfd, 1, (int)left);
		} else {
			usleep((useconds_t)(left < 10 ? left : 10) * 1000);
		}
	}
}

/*
 * Waits for pid, which leads its own process group, at most timeout_s.
 * Past that, or when told to stop, the group gets SIGTERM and after the
 * grace SIGKILL. pid is reaped only then, so that its group's id cannot
 * have gone to another. Returns its wait status, -ETIMEDOUT, -ECANCELED
 * (told to stop), or -errno.
 */
static int wait_limited(pid_t pid, unsigned timeout_s)
{
	int fd = supervising ? -1 : pidfd_open_child(pid), how, status;

	how = wait_exit(pid, fd, clock_boot_ms() + (uint64_t)timeout_s * 1000);
	if (how != CHILD_EXITED && pid > 1) {
		kill(-pid, SIGTERM);
		wait_exit(pid, fd, clock_boot_ms() + HOOK_GRACE_MS);
		/* Even when pid has gone, what it started may linger. */
		kill(-pid, SIGKILL);
	}
	if (fd >= 0)
		close(fd);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (how == CHILD_EXPIRED)
		return -ETIMEDOUT;
	if (how == CHILD_STOPPED)
		return -ECANCELED;
	return status;
}

static void log_outcome(const char *what, const char *reason, int status, unsigned timeout_s)
{
	if (status == -ETIMEDOUT)
		log_warnx("%s (%s) did not finish within %us; killed it and its process group",
			  what, reason, timeout_s);
	else if (status == -ECANCELED)
		log_warnx("%s (%s) still ran when the client exited; killed it and its "
			  "process group", what, reason);
	else if (status < 0)
		log_warnx("%s (%s): %s", what, reason, strerror(-status));
	else if (WIFSIGNALED(status))
		log_warnx("%s (%s) died of signal %d", what, reason, WTERMSIG(status));
	else if (WEXITSTATUS(status))
		log_warnx("%s (%s) failed with status %d", what, reason, WEXITSTATUS(status));
	else
		log_debug("%s (%s) done", what, reason);
}

/* ---- the queue ---- */

/* The script's path, then its variables, each ending in NUL. */
#define JOB_TEXT_SIZE (PATH_MAX + 4096)

struct hook_job {
	unsigned timeout_s;
	unsigned n_env;
	uint64_t queued_ms;
	char reason[16];
	char text[JOB_TEXT_SIZE];
};

static struct {
	struct hook_job wait[HOOK_QUEUE_MAX];	/* a ring, the oldest at head */
	unsigned head, n;
	pid_t sup;		/* the running hook's supervisor, or 0 */
	int sup_fd;		/* its pidfd, or -1 */
	char running[16];	/* its reason */
} hooks = { .sup_fd = -1 };

/* In the supervisor, the child of the client that runs one hook. */
static void __attribute__((noreturn)) supervise(struct hook_job *job, pid_t client)
{
	char *argv[3], *envp[HOOK_ENV_MAX + 1], *p;
	unsigned n = 0;
	int status;
	pid_t pid;

	/*
	 * Every signal stays blocked, and the supervisor leaves the client's
	 * process group: nothing but a SIGKILL of its own may leave the
	 * script unwatched. SIGTERM asks it to end the script now; it comes
	 * from hook_drain(), or from the kernel when the client dies.
	 */
	supervising = true;
	signal(SIGCHLD, SIG_DFL);
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != client)
		raise(SIGTERM);
	p = job->text;
	argv[0] = p;
	argv[1] = job->reason;
	argv[2] = NULL;
	p += strlen(p) + 1;
	while (n < job->n_env && n < HOOK_ENV_MAX) {
		envp[n++] = p;
		p += strlen(p) + 1;
	}
	envp[n] = NULL;
	pid = spawn(argv, envp, -1);
	status = pid < 0 ? (int)pid : wait_limited(pid, job->timeout_s);
	log_outcome(argv[0], job->reason, status, job->timeout_s);
	_exit(0);
}

/* Starts waiting hooks, oldest first, until one runs. */
static void start_next(void)
{
	while (!hooks.sup && hooks.n) {
		struct hook_job *job = &hooks.wait[hooks.head];
		pid_t pid, client = getpid();
		sigset_t all, old;
		int err;

		/* Until the supervisor has its own mask, nothing reaches it. */
		sigfillset(&all);
		sigprocmask(SIG_SETMASK, &all, &old);
		pid = fork();
		if (pid == 0)
			supervise(job, client);
		err = errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		hooks.head = (hooks.head + 1) % HOOK_QUEUE_MAX;
		hooks.n--;
		if (pid < 0) {
			log_warnx("cannot run %s (%s): %s", job->text, job->reason, strerror(err));
			continue;
		}
		hooks.sup = pid;
		hooks.sup_fd = pidfd_open_child(pid);
		snprintf(hooks.running, sizeof(hooks.running), "%s", job->reason);
	}
}

/* Lists what waits in one log line, and forgets it. */
static void drop_waiting(const char *why)
{
	char list[HOOK_QUEUE_MAX * 18] = "";
	size_t off = 0;

	if (!hooks.n)
		return;
	for (unsigned i = 0; i < hooks.n && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? " " : "",
					hooks.wait[(hooks.head + i) % HOOK_QUEUE_MAX].reason);
	log_warnx("%s; dropped %u waiting hook%s, not run: %s", why, hooks.n,
		  hooks.n == 1 ? "" : "s", list);
	hooks.n = 0;
}

pid_t hook_run(const char *script, const struct hook_env *env, unsigned timeout_s)
{
	size_t len = strlen(script);
	char *envp[HOOK_ENV_MAX + 1];
	struct hook_job *job;

	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	/* A hook that has just ended makes room first. */
	hook_dispatch();
	if (hooks.n == HOOK_QUEUE_MAX) {
		job = &hooks.wait[hooks.head];
		log_warnx("%u hooks wait behind %s (%s); dropped the oldest, %s, queued %llus ago, "
			  "not run", hooks.n, script, hooks.running, job->reason,
			  (unsigned long long)(clock_boot_ms() - job->queued_ms) / 1000);
		hooks.head = (hooks.head + 1) % HOOK_QUEUE_MAX;
		hooks.n--;
	}
	job = &hooks.wait[(hooks.head + hooks.n) % HOOK_QUEUE_MAX];
	memcpy(job->text, script, len + 1);
	job->n_env = (unsigned)hook_build_env(env, job->text + len + 1,
					      sizeof(job->text) - len - 1, envp);
	snprintf(job->reason, sizeof(job->reason), "%s", env->reason);
	job->timeout_s = timeout_s;
	job->queued_ms = clock_boot_ms();
	hooks.n++;
	start_next();
	return 0;
}

int hook_fd(void)
{
	return hooks.sup ? hooks.sup_fd : -1;
}

void hook_dispatch(void)
{
	if (hooks.sup) {
		siginfo_t si;
		int ret;

		memset(&si, 0, sizeof(si));
		ret = waitid(P_PID, (id_t)hooks.sup, &si, WEXITED | WNOHANG);
		/* ECHILD: reaped by someone else; it has ended all the same. */
		if (ret < 0 && errno != ECHILD)
			return;
		if (!ret && si.si_pid != hooks.sup)
			return;
		if (hooks.sup_fd >= 0)
			close(hooks.sup_fd);
		hooks.sup = 0;
		hooks.sup_fd = -1;
	}
	start_next();
}

void hook_reap(void)
{
	hook_dispatch();
}

void hook_drain(unsigned timeout_s)
{
	uint64_t until = clock_boot_ms() + (uint64_t)timeout_s * 1000;
	char why[80];

	hook_dispatch();
	while (hooks.sup && wait_exit(hooks.sup, hooks.sup_fd, until) == CHILD_EXITED)
		hook_dispatch();
	if (!hooks.sup)
		return;
	snprintf(why, sizeof(why), "hooks still ran after %us at exit", timeout_s);
	drop_waiting(why);
	/* The supervisor ends its script as at the time limit, and logs it. */
	kill(hooks.sup, SIGTERM);
	if (wait_exit(hooks.sup, hooks.sup_fd, clock_boot_ms() + HOOK_GRACE_MS + 1000) !=
	    CHILD_EXITED)
		kill(hooks.sup, SIGKILL);
	while (waitpid(hooks.sup, NULL, 0) < 0 && errno == EINTR)
		;
	if (hooks.sup_fd >= 0)
		close(hooks.sup_fd);
	hooks.sup = 0;
	hooks.sup_fd = -1;
}

int hook_run_wait(char *const argv[], const char *input, unsigned timeout_s)
{
	size_t len = input ? strlen(input) : 0;
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	if (len > PIPE_BUF)
		return -E2BIG;
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	/* Written before the child exists: it fits in the pipe, so neither
	 * side can block the other, and no SIGPIPE can come of it. */
	if (len && (n = write(pipefd[1], input, len)) != (ssize_t)len) {
		status = n < 0 ? -errno : -EIO;
		close(pipefd[0]);
		close(pipefd[1]);
		return status;
	}
	close(pipefd[1]);
	pid = spawn(argv, NULL, pipefd[0]);
	close(pipefd[0]);
	if (pid < 0)
		return (int)pid;
	status = wait_limited(pid, timeout_s);
	if (status < 0)
		return status;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -EINTR;
}
