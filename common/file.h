/* SPDX-License-Identifier: MIT */
#ifndef WGD_FILE_H
#define WGD_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Creates dir and its parents; the last with mode 0700. 0 or -errno. */
int file_mkdir_p(const char *dir);

/* Fsyncs a directory, so that a rename or creation in it is durable. */
int file_fsync_dir(const char *dir);

/*
 * Replaces dir/name with buf atomically: writes dir/name.tmp, fsyncs it,
 * renames it over dir/name and fsyncs dir. A crash leaves either the old
 * or the new file whole. 0 or -errno.
 */
int file_write_atomic(const char *dir, const char *name, const void *buf, size_t len,
		      mode_t mode);

/* Reads at most max bytes of dir/name into buf; the length or -errno. */
ssize_t file_read(const char *dir, const char *name, void *buf, size_t max);

#endif
