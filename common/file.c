// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

/* Symbolic links one walk follows at most: the kernel's own limit. */
#define FILE_MAX_LINKS 40

static void say(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* One component that names an entry of a directory. */
static bool name_ok(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

/* ---- directories ---- */

/*
 * A directory may hold what we keep in it when no user other than the
 * expected one can change its entries: it belongs to owner (an ancestor to
 * root or to us) and is not writable by its group or by others. Sticky
 * ancestors are fine (/tmp): there no one can move or remove an entry of
 * ours, and an entry planted under a name we want is judged in its turn.
 * below, when set, is the path being walked, for the reason.
 */
static int judge(const struct stat *st, bool ancestor, uid_t owner, const char *shown,
		 const char *below, char *why, size_t whylen)
{
	bool owner_ok = ancestor ? st->st_uid == 0 || st->st_uid == geteuid() :
				   st->st_uid == owner;
	bool sticky = ancestor && (st->st_mode & S_ISVTX);
	uid_t want = ancestor ? 0 : owner;
	char who[48], fix[2 * PATH_MAX + 128];

	/* An owner other than the expected one can make it writable at will. */
	if (!owner_ok)
		snprintf(who, sizeof(who), "user %u", (unsigned)st->st_uid);
	else if ((st->st_mode & S_IWOTH) && !sticky)
		snprintf(who, sizeof(who), "every user");
	else if ((st->st_mode & S_IWGRP) && !sticky)
		snprintf(who, sizeof(who), "group %u", (unsigned)st->st_gid);
	else
		return 0;
	if (want == 0)
		snprintf(fix, sizeof(fix), "make it root's and not group- or world-writable "
			 "(chown root:root %s; chmod 755 %s)", shown, shown);
	else
		snprintf(fix, sizeof(fix), "make it user %u's and not group- or world-writable "
			 "(chown %u %s; chmod 700 %s)", (unsigned)want, (unsigned)want, shown, shown);
	if (below)
		say(why, whylen, "%s: %s above it is writable by %s: %s", below, shown, who, fix);
	else
		say(why, whylen, "%s is writable by %s: %s", shown, who, fix);
	return -EPERM;
}

int file_dir_judge(const struct stat *st, const char *shown, uid_t owner, char *why,
		   size_t whylen)
{
	return judge(st, false, owner, shown, NULL, why, whylen);
}

int file_dir_reopen(int pathfd)
{
	int fd = openat(pathfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int file_dir_open_at(int dirfd, const char *name, bool create, mode_t mode, int *pathfd,
		     struct stat *st, bool *created)
{
	bool made = false;
	int fd, rfd, ret = 0;

	*pathfd = -1;
	if (created)
		*created = false;
	if (!name_ok(name))
		return -EINVAL;
	for (int tries = 0;; tries++) {
		fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno == ENOTDIR) {
			struct stat lst;

			if (!fstatat(dirfd, name, &lst, AT_SYMLINK_NOFOLLOW) && S_ISLNK(lst.st_mode))
				return -ELOOP;
			return -ENOTDIR;
		}
		if (errno != ENOENT || !create || tries)
			return -errno;
		if (!mkdirat(dirfd, name, mode))
			made = true;
		else if (errno != EEXIST)
			return -errno;
	}
	if (fstat(fd, st)) {
		ret = -errno;
		goto out;
	}
	/* The umask may have taken bits off; only ever on a directory of ours. */
	if (made && st->st_uid == geteuid() && (st->st_mode & 07777) != mode) {
		rfd = file_dir_reopen(fd);
		if (rfd < 0) {
			ret = rfd;
			goto out;
		}
		if (fchmod(rfd, mode) || fstat(rfd, st))
			ret = -errno;
		close(rfd);
	}
out:
	if (ret) {
		close(fd);
		return ret;
	}
	*pathfd = fd;
	if (created)
		*created = made;
	return 0;
}

static int canon_push(char *canon, size_t size, const char *name)
{
	size_t len = strlen(canon);

	if (len == 1)
		len = 0;
	if (len + 1 + strlen(name) >= size)
		return -ENAMETOOLONG;
	canon[len] = '/';
	strcpy(canon + len + 1, name);
	return 0;
}

static void canon_pop(char *canon)
{
	char *slash = strrchr(canon, '/');

	if (slash == canon)
		canon[1] = '\0';
	else if (slash)
		*slash = '\0';
}

/* Whether p, the rest of a path, names anything but "." and slashes. */
static bool more_after(const char *p)
{
	for (;;) {
		size_t len;

		while (*p == '/')
			p++;
		if (!*p)
			return false;
		len = strcspn(p, "/");
		if (len != 1 || *p != '.')
			return true;
		p += len;
	}
}

static int open_root(int *fd, struct stat *st, char *canon)
{
	int nfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (nfd < 0)
		return -errno;
	if (fstat(nfd, st)) {
		int ret = -errno;

		close(nfd);
		return ret;
	}
	if (*fd >= 0)
		close(*fd);
	*fd = nfd;
	strcpy(canon, "/");
	return 0;
}

/*
 * A symbolic link met on the way: followed only when root or we own it
 * (the directory it is in has been judged already). The rest of the walk
 * becomes its target followed by what remained; *restart says whether the
 * target starts from "/".
 */
static int follow_link(int fd, const char *name, const char *canon, const char *path,
		       char *rest, size_t restlen, const char **p, bool *restart, char *why,
		       size_t whylen)
{
	char target[PATH_MAX], next[PATH_MAX];
	struct stat lst;
	ssize_t n;

	if (fstatat(fd, name, &lst, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (lst.st_uid != 0 && lst.st_uid != geteuid()) {
		say(why, whylen, "%s: %s%s%s is a symbolic link that belongs to user %u: give the "
		    "directory's real path, or make the link root's", path, canon,
		    strcmp(canon, "/") ? "/" : "", name, (unsigned)lst.st_uid);
		return -EPERM;
	}
	n = readlinkat(fd, name, target, sizeof(target));
	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(target))
		return -ENAMETOOLONG;
	target[n] = '\0';
	if ((size_t)snprintf(next, sizeof(next), "%s/%s", target, *p) >= sizeof(next) ||
	    strlen(next) >= restlen)
		return -ENAMETOOLONG;
	strcpy(rest, next);
	*p = rest;
	*restart = target[0] == '/';
	return 0;
}

int file_dir_walk(const char *path, bool create, mode_t mode, struct file_dir *out,
		  char *why, size_t whylen)
{
	char rest[PATH_MAX], name[NAME_MAX + 1];
	const char *p;
	int fd = -1, nfd, links = 0, ret;
	struct stat nst;
	bool made;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	say(why, whylen, "%s", "");
	if (!*path)
		return -ENOENT;
	if (path[0] == '/') {
		if (strlen(path) >= sizeof(rest))
			return -ENAMETOOLONG;
		strcpy(rest, path);
	} else {
		size_t len;

		if (!getcwd(rest, sizeof(rest)))
			return -errno;
		len = strlen(rest);
		if ((size_t)snprintf(rest + len, sizeof(rest) - len, "/%s", path) >=
		    sizeof(rest) - len)
			return -ENAMETOOLONG;
	}
	ret = open_root(&fd, &out->st, out->path);
	if (ret)
		return ret;
	for (p = rest;;) {
		size_t len;
		bool last, restart = false;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		len = strcspn(p, "/");
		if (len > NAME_MAX) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, "..")) {
			/* The real parent: the walk so far followed no link. */
			nfd = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (nfd < 0 || fstat(nfd, &out->st)) {
				ret = -errno;
				if (nfd >= 0)
					close(nfd);
				goto out;
			}
			close(fd);
			fd = nfd;
			canon_pop(out->path);
			continue;
		}
		/* Whoever can write this directory could swap what name is. */
		ret = judge(&out->st, true, 0, out->path, path, why, whylen);
		if (ret)
			goto out;
		last = !more_after(p);
		made = false;
		ret = file_dir_open_at(fd, name, create, last ? mode : 0755, &nfd, &nst, &made);
		if (ret == -ELOOP) {
			if (++links > FILE_MAX_LINKS)
				goto out;
			ret = follow_link(fd, name, out->path, path, rest, sizeof(rest), &p,
					  &restart, why, whylen);
			if (!ret && restart)
				ret = open_root(&fd, &out->st, out->path);
			if (ret)
				goto out;
			continue;
		}
		if (ret)
			goto out;
		ret = canon_push(out->path, sizeof(out->path), name);
		if (ret) {
			close(nfd);
			goto out;
		}
		close(fd);
		fd = nfd;
		out->st = nst;
		out->created = last && made;
	}
	out->fd = fd;
	fd = -1;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

int file_dir_open_secure(const char *path, uid_t owner, bool create, int *dirfd, char *why,
			 size_t whylen)
{
	struct file_dir d;
	int fd, ret;

	*dirfd = -1;
	ret = file_dir_walk(path, create, owner ? 0700 : 0755, &d, why, whylen);
	if (ret)
		return ret;
	fd = file_dir_reopen(d.fd);
	close(d.fd);
	if (fd < 0)
		return fd;
	/* Made just now by us, for another user. */
	if (d.created && d.st.st_uid != owner) {
		if (fchown(fd, owner, (gid_t)-1) || fstat(fd, &d.st)) {
			ret = -errno;
			goto out;
		}
	}
	ret = judge(&d.st, false, owner, d.path, NULL, why, whylen);
out:
	if (ret) {
		close(fd);
		return ret;
	}
	*dirfd = fd;
	return 0;
}

/* ---- files ---- */

int file_open_at(int dirfd, const char *name, int flags, mode_t mode)
{
	struct stat st;
	int fd, fl, ret = 0;

	if (!name_ok(name))
		return -EINVAL;
	/* Non-blocking until we know it is a regular file: opening a FIFO
	 * would wait for a writer. */
	fd = openat(dirfd, name, (flags & ~O_TRUNC) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
		    mode);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		ret = -errno;
	else if (!S_ISREG(st.st_mode))
		ret = -EINVAL;
	else if (st.st_nlink != 1)
		ret = -EMLINK;
	else if (!(flags & O_NONBLOCK) &&
		 ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)))
		ret = -errno;
	else if ((flags & O_TRUNC) && ftruncate(fd, 0))
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int file_create_at(int dirfd, const char *name, int flags, mode_t mode)
{
	if (!name_ok(name))
		return -EINVAL;
	for (int tries = 0;; tries++) {
		int fd = openat(dirfd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

		if (fd >= 0)
			return fd;
		if (errno != EEXIST || tries)
			return -errno;
		/* unlinkat() removes a link itself, never what it points to. */
		if (unlinkat(dirfd, name, 0) && errno != ENOENT)
			return -errno;
	}
}

int file_write_atomic_at(int dirfd, const char *name, const void *buf, size_t len,
			 mode_t mode)
{
	char tmp[NAME_MAX + 1];
	const char *p = buf;
	int fd, ret = 0;

	if (!name_ok(name))
		return -EINVAL;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = file_create_at(dirfd, tmp, O_WRONLY, mode);
	if (fd < 0)
		return fd;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd))
		ret = -errno;
out:
	if (close(fd) && !ret)
		ret = -errno;
	/* A rename replaces a link at name; it never writes through it. */
	if (!ret && renameat(dirfd, tmp, dirfd, name))
		ret = -errno;
	if (ret) {
		unlinkat(dirfd, tmp, 0);
		return ret;
	}
	return fsync(dirfd) ? -errno : 0;
}

ssize_t file_read_at(int dirfd, const char *name, void *buf, size_t max)
{
	size_t off = 0;
	ssize_t ret;
	int fd = file_open_at(dirfd, name, O_RDONLY, 0);

	if (fd < 0)
		return fd;
	while (off < max) {
		ssize_t n = read(fd, (char *)buf + off, max - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (!n)
			break;
		off += (size_t)n;
	}
	ret = (ssize_t)off;
out:
	close(fd);
	return ret;
}
