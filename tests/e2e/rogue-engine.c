// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * rogue-engine: speaks to a running wg-dynamic-server's privileged parent
 * in its engine's place, as an engine an attacker had taken over would, for
 * the end-to-end tests.
 *
 *   rogue-engine ENGINE_PID CHANGE...
 *
 * Stops the engine (SIGSTOP) while it waits in epoll_wait() with nothing
 * in flight, takes a copy of its end of the socketpair (pidfd_getfd(2),
 * which needs ptrace rights over it: root), sends the changes to the parent
 * as one batch, reads the parent's answer itself, and lets the engine go
 * on (SIGCONT). The engine never sees the exchange.
 *
 * A CHANGE is KEY:ADDR,ADDR,... with KEY a peer's public key in base64 and
 * each ADDR +PREFIX to add or -PREFIX to remove (at most two of each). A
 * prefix that is not a host makes a malformed change: the parent stops the
 * engine for it.
 *
 * Prints one line per change, in order: "ok", or the name of the error
 * the parent answered (EPERM, EEXIST, ENOENT, ...); or, when the parent
 * answered nothing, "no answer: REASON" once. Exit status: 0 when the
 * parent answered, 2 when it did not, 1 on any other failure.
 */

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../common/key.h"
#include "../../server/privsep.h"

#define TRIES 50

static const char *err_name(int err)
{
	switch (-err) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	case EPROTO: return "EPROTO";
	case ECONNRESET: return "ECONNRESET";
	default: return strerror(-err);
	}
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip to the last. */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* Whether the stopped engine sits in epoll_wait(): no exchange in flight. */
static bool engine_idle(pid_t pid)
{
	char path[64];
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fscanf(f, "%ld", &nr) != 1)
		nr = -1;
	fclose(f);
#ifdef SYS_epoll_wait
	if (nr == SYS_epoll_wait)
		return true;
#endif
	return nr == SYS_epoll_pwait;
}

/* The engine's end of the socketpair, the one SOCK_SEQPACKET socket it has. */
static int steal_channel(pid_t pid)
{
	char path[64];
	struct dirent *d;
	int pidfd, found = -1;
	DIR *dir;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir) {
		close(pidfd);
		return -errno;
	}
	while (found < 0 && (d = readdir(dir))) {
		int type = 0, domain = 0, fd;
		socklen_t len = sizeof(int);

		if (d->d_name[0] == '.')
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(d->d_name), 0);
		if (fd < 0)
			continue;
		if (!getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) && type == SOCK_SEQPACKET &&
		    !getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) && domain == AF_UNIX)
			found = fd;
		else
			close(fd);
	}
	closedir(dir);
	close(pidfd);
	return found >= 0 ? found : -ENOENT;
}

/* Parses KEY:+A,-B,... into c. */
static int parse_change(char *arg, struct wgdev_change *c)
{
	char *colon = strchr(arg, ':'), *tok, *save = NULL;

	if (!colon)
		return -EINVAL;
	*colon = '\0';
	memset(c, 0, sizeof(*c));
	if (wgkey_from_base64(c->pubkey, arg))
		return -EINVAL;
	for (tok = strtok_r(colon + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct wgd_ip *ip;

		if (tok[0] == '+' && c->n_add < WGDEV_CHANGE_MAX)
			ip = &c->add[c->n_add++];
		else if (tok[0] == '-' && c->n_del < WGDEV_CHANGE_MAX)
			ip = &c->del[c->n_del++];
		else
			return -EINVAL;
		if (wgd_ip_parse(ip, tok + 1, strlen(tok + 1), false))
			return -EINVAL;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	struct wgdev_change c[PRIV_BATCH];
	int err[PRIV_BATCH], fd = -1, ret;
	size_t n = 0;
	pid_t pid;

	if (argc < 3 || argc - 2 > PRIV_BATCH) {
		fprintf(stderr, "Usage: %s ENGINE_PID KEY:+ADDR,-ADDR... (up to %d)\n", argv[0],
			PRIV_BATCH);
		return 1;
	}
	pid = (pid_t)atoi(argv[1]);
	/* A parent that neither answers nor goes away must not hang a test. */
	alarm(10);
	for (int i = 2; i < argc; i++, n++) {
		if (parse_change(argv[i], &c[n])) {
			fprintf(stderr, "rogue-engine: bad change %s\n", argv[i]);
			return 1;
		}
	}

	/* Caught between two rounds of its loop, or tried again. */
	for (int tries = 0;; tries++) {
		char probe;

		if (kill(pid, SIGSTOP)) {
			perror("rogue-engine: SIGSTOP");
			return 1;
		}
		for (int i = 0; i < 200 && proc_state(pid) != 't' && proc_state(pid) != 'T'; i++)
			usleep(1000);
		if (fd < 0)
			fd = steal_channel(pid);
		if (fd < 0) {
			kill(pid, SIGCONT);
			fprintf(stderr, "rogue-engine: no channel in process %d: %s\n", (int)pid,
				strerror(-fd));
			return 1;
		}
		/* Idle, and no answer of the parent's waiting for it. */
		if (engine_idle(pid) &&
		    recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN)
			break;
		kill(pid, SIGCONT);
		if (tries == TRIES) {
			fprintf(stderr, "rogue-engine: the engine is never idle\n");
			return 1;
		}
		usleep(20000);
	}

	priv_engine_init(fd);
	ret = priv_update_batch(c, n, err);
	kill(pid, SIGCONT);
	if (ret) {
		printf("no answer: %s\n", err_name(ret));
		return 2;
	}
	for (size_t i = 0; i < n; i++)
		printf("%s\n", err_name(err[i]));
	return 0;
}
