/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_FILE_H
#define WGD_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Files that no other user can redirect. Both daemons run as root and keep
 * their files in directories given by an administrator; a symbolic link, a
 * hard link or a swapped directory planted there by another user must not
 * turn a write, a chown or a read into one on a file of that user's
 * choosing. So:
 *
 *  - a directory is reached once, from "/", one component at a time with
 *    O_NOFOLLOW, and every directory on the way must be root's (or the
 *    caller's own) and writable by nobody else, unless sticky (like /tmp);
 *    a symbolic link on the way is followed only when root (or the caller)
 *    owns it;
 *  - every file is then opened relative to that directory's descriptor,
 *    never following a symbolic link, and must be a regular file with one
 *    link;
 *  - new files are created with O_EXCL and renamed into place;
 *  - ownership and modes are changed through descriptors, never by name.
 *
 * Every function returns 0 (or a descriptor, or a length) or -errno.
 */

/*
 * Opens the directory path for the caller's files into *dirfd (O_RDONLY,
 * close-on-exec), walking it as above. The directory itself must belong to
 * owner and be writable by it alone. With create, missing components are
 * made: the ones above with mode 0755, the last with 0755 when owner is
 * root and 0700 otherwise, and given to owner.
 *
 * A directory refused for its owner or its mode, or a symbolic link on the
 * way that another user owns, is -EPERM, with a one-line reason and its
 * fix in why, which starts with the directory at fault ("/x is writable by
 * user 1000: ..."; "/x/y: /x above it is writable by ..."), for the caller
 * to prefix ("state directory "). Other failures leave an empty why.
 */
int file_dir_open_secure(const char *path, uid_t owner, bool create, int *dirfd, char *why,
			 size_t whylen);

/* Where file_dir_walk() arrived. */
struct file_dir {
	int fd;                 /* O_PATH descriptor of the directory */
	struct stat st;
	bool created;           /* the walk made it */
	char path[4096];        /* its canonical path */
};

/*
 * The walk of file_dir_open_secure() without the verdict on the last
 * directory, for a caller that decides about that one itself. With
 * create, a missing last directory is made with mode (exactly, whatever
 * the umask) and stays the caller's. -EPERM and why as above.
 */
int file_dir_walk(const char *path, bool create, mode_t mode, struct file_dir *out,
		  char *why, size_t whylen);

/*
 * Whether a directory with status st, shown as shown in the reason, may
 * hold owner's files: it belongs to owner and no one else can write it.
 * 0, or -EPERM and why as for file_dir_open_secure().
 */
int file_dir_judge(const struct stat *st, const char *shown, uid_t owner, char *why,
		   size_t whylen);

/*
 * One directory, name in dirfd, without following a symbolic link: an
 * O_PATH descriptor into *pathfd and its status into *st. With create, a
 * missing one is made with exactly mode and stays the caller's; *created
 * (may be NULL) tells. -ELOOP for a symbolic link, -ENOTDIR for another
 * kind of file.
 */
int file_dir_open_at(int dirfd, const char *name, bool create, mode_t mode, int *pathfd,
		     struct stat *st, bool *created);

/* A readable descriptor (O_RDONLY | O_DIRECTORY) of the directory behind
 * an O_PATH descriptor, for fsync(), fchown(), fchmod() and listing. */
int file_dir_reopen(int pathfd);

/*
 * Opens name in dirfd with flags, always adding O_NOFOLLOW and O_CLOEXEC.
 * The file must be a regular file with one link (-EINVAL, -EMLINK
 * otherwise; -ELOOP for a symbolic link): a hard link in the directory
 * would name a file elsewhere. O_TRUNC is applied only once that is
 * checked. mode is for O_CREAT.
 */
int file_open_at(int dirfd, const char *name, int flags, mode_t mode);

/*
 * Creates name in dirfd with O_CREAT | O_EXCL | O_NOFOLLOW and flags. A
 * file already there (a temporary file a crash left, or whatever was
 * planted under that name) is unlinked, never followed, and the creation
 * tried once more.
 */
int file_create_at(int dirfd, const char *name, int flags, mode_t mode);

/*
 * Replaces name in dirfd with buf atomically: writes name.tmp (created as
 * by file_create_at()), fsyncs it, renames it over name and fsyncs the
 * directory. A crash leaves either the old or the new file whole; a
 * symbolic link at either name is replaced, never followed.
 */
int file_write_atomic_at(int dirfd, const char *name, const void *buf, size_t len,
			 mode_t mode);

/* Reads at most max bytes of name in dirfd, opened as by file_open_at()
 * (so never through a symbolic link); the length or -errno. */
ssize_t file_read_at(int dirfd, const char *name, void *buf, size_t max);

#endif
