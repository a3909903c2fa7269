// SPDX-License-Identifier: MIT

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for pid at most timeout_s; kills it past that. Returns its wait
 * status, or -ETIMEDOUT. */
static int wait_limited(pid_t pid, unsigned timeout_s)
{
	uint64_t end = now_ms() + (uint64_t)timeout_s * 1000;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		usleep(20 * 1000);
	}
}

static void log_outcome(const char *what, const char *reason, int status, unsigned timeout_s)
{
	if (status == -ETIMEDOUT)
		log_warnx("%s (%s) did not finish within %us; killed it", what, reason, timeout_s);
	else if (status < 0)
		log_warnx("%s (%s): %s", what, reason, strerror(-status));
	else if (WIFSIGNALED(status))
		log_warnx("%s (%s) died of signal %d", what, reason, WTERMSIG(status));
	else if (WEXITSTATUS(status))
		log_warnx("%s (%s) failed with status %d", what, reason, WEXITSTATUS(status));
	else
		log_debug("%s (%s) done", what, reason);
}

pid_t hook_run(const char *script, const struct hook_env *env, unsigned timeout_s)
{
	pid_t sup = fork();

	if (sup < 0)
		return -errno;
	if (sup > 0)
		return sup;

	/* The supervisor. */
	char buf[4096], *envp[HOOK_ENV_MAX + 1];
	char *argv[] = { (char *)script, (char *)env->reason, NULL };
	pid_t pid;

	signal(SIGTERM, SIG_DFL);
	hook_build_env(env, buf, sizeof(buf), envp);
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		execve(script, argv, envp);
		_exit(127);
	}
	if (pid < 0)
		_exit(1);
	log_outcome(script, env->reason, wait_limited(pid, timeout_s), timeout_s);
	_exit(0);
}

int hook_run_wait(char *const argv[], const char *input, unsigned timeout_s)
{
	int pipefd[2], status;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(pipefd[0], STDIN_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pipefd[0]);
	if (input) {
		/* Small, fits in the pipe: no deadlock against the child. */
		ssize_t n = write(pipefd[1], input, strlen(input));
		(void)n;
	}
	close(pipefd[1]);
	status = wait_limited(pid, timeout_s);
	if (status < 0)
		return status;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -EINTR;
}

void hook_reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}
