// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "../common/file.h"
#include "journal.h"

/*
 * Layout, little-endian (docs/journal.md has the byte tables):
 *
 *   header  0 magic[8]  8 version  12 record size  16 reserved[8]  24 sum[8]
 *   record  0 type  1 flags  2 reserved[2]  4 start  8 leasetime
 *           12 ip4[4]  16 ip6[16]  32 pubkey[32]  64 sum[16]
 *
 * Each checksum is an unkeyed BLAKE2b of the bytes before it. It guards
 * against torn writes and media errors, not against someone who can write
 * the file: such a party could rewrite the leases anyway.
 */
static const uint8_t journal_magic[8] = { 'w', 'g', 'd', 'l', 'e', 'a', 's', 'e' };

#define HDR_SUM_OFF 24
#define HDR_SUM_LEN 8
#define REC_BODY_LEN 64
#define REC_SUM_LEN 16
#define JREC_F_KNOWN (JREC_F_IP4 | JREC_F_IP6 | JREC_F_QUARANTINE)

_Static_assert(HDR_SUM_OFF + HDR_SUM_LEN == JOURNAL_HEADER_SIZE, "header layout");
_Static_assert(REC_BODY_LEN + REC_SUM_LEN == JOURNAL_RECORD_SIZE, "record layout");

/*
 * Compaction pays off once the file is both large in absolute terms and
 * mostly dead records: a journal of a few live leases is never rewritten
 * merely for being four times their size.
 */
#define JOURNAL_COMPACT_MIN_SIZE (1024 * 1024)
#define JOURNAL_COMPACT_RATIO 4

/* Compaction streams the live state through a buffer of this size. */
#define COMPACT_WRITE_SIZE (64 * 1024)

/* Growth step of the pending-record buffer: 51 records. */
#define PENDING_INITIAL_SIZE 4096

/*
 * Zeros written ahead of the records, so that a commit overwrites bytes the
 * file already has instead of growing it: fdatasync() then has no file size
 * to make durable, which on ext4 halves its latency (about 150 us instead of
 * 220 to 340 us on a virtio disk). A zero record fails its checksum, so
 * readers stop there; journal_open() takes a tail of zeros for free space,
 * not damage.
 */
#define JOURNAL_AHEAD (256 * 1024)

struct journal {
	char *path;             /* for messages: DIR/IFACE.leases */
	char *name, *tmp_name;  /* IFACE.leases and IFACE.leases.tmp in dirfd */
	int dirfd;
	int fd;
	off_t size;             /* committed length: where the next commit writes */
	off_t alloc;            /* file length; zeros from size to alloc */

	uint8_t *pending;       /* encoded records waiting for journal_commit() */
	size_t pending_len, pending_cap;

	uint64_t commits, fsyncs;
	bool dir_unsynced;      /* a rename whose directory fsync failed */

	/* Compaction in progress (tmp_fd >= 0) or failed (tmp_err != 0). */
	int tmp_fd;
	uint8_t *tmp_buf;
	size_t tmp_buf_len;
	off_t tmp_size;
	uint64_t tmp_commits;   /* commits at journal_compact_begin() */
	int tmp_err;
};

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

void journal_encode_header(uint8_t out[JOURNAL_HEADER_SIZE])
{
	memset(out, 0, JOURNAL_HEADER_SIZE);
	memcpy(out, journal_magic, sizeof(journal_magic));
	put_le32(out + 8, JOURNAL_VERSION);
	put_le32(out + 12, JOURNAL_RECORD_SIZE);
	crypto_generichash(out + HDR_SUM_OFF, HDR_SUM_LEN, out, HDR_SUM_OFF, NULL, 0);
}

void journal_encode(const struct journal_record *r, uint8_t out[JOURNAL_RECORD_SIZE])
{
	memset(out, 0, JOURNAL_RECORD_SIZE);
	out[0] = r->type;
	out[1] = r->flags;
	put_le32(out + 4, r->start);
	put_le32(out + 8, r->leasetime);
	/* An absent family is written as zeros, so that whatever the caller
	 * left in the field never reaches the disk. */
	if (r->flags & JREC_F_IP4)
		memcpy(out + 12, &r->ip4, 4);
	if (r->flags & JREC_F_IP6)
		memcpy(out + 16, &r->ip6, 16);
	memcpy(out + 32, r->pubkey, WG_KEY_LEN);
	crypto_generichash(out + REC_BODY_LEN, REC_SUM_LEN, out, REC_BODY_LEN, NULL, 0);
}

/* What journal_parse() accepts, checked before writing so that a record
 * the reader would refuse can never hide the records after it. */
static bool record_is_valid(const struct journal_record *r)
{
	return (r->type == JREC_GRANT || r->type == JREC_RELEASE) && !(r->flags & ~JREC_F_KNOWN);
}

static bool journal_decode(const uint8_t in[JOURNAL_RECORD_SIZE], struct journal_record *r)
{
	uint8_t sum[REC_SUM_LEN];

	crypto_generichash(sum, sizeof(sum), in, REC_BODY_LEN, NULL, 0);
	if (memcmp(sum, in + REC_BODY_LEN, sizeof(sum)))
		return false;
	/* A sound checksum over an unknown type, flag or reserved bit means a
	 * newer writer: what it meant cannot be guessed, so the walk stops. */
	if (in[0] != JREC_GRANT && in[0] != JREC_RELEASE)
		return false;
	if (in[1] & ~JREC_F_KNOWN)
		return false;
	if (in[2] || in[3])
		return false;

	memset(r, 0, sizeof(*r));
	r->type = in[0];
	r->flags = in[1];
	r->start = get_le32(in + 4);
	r->leasetime = get_le32(in + 8);
	if (r->flags & JREC_F_IP4)
		memcpy(&r->ip4, in + 12, 4);
	if (r->flags & JREC_F_IP6)
		memcpy(&r->ip6, in + 16, 16);
	memcpy(r->pubkey, in + 32, WG_KEY_LEN);
	return true;
}

int journal_parse(const void *buf, size_t len,
		  int (*cb)(const struct journal_record *r, void *ctx), void *ctx,
		  size_t *valid_len)
{
	const uint8_t *p = buf;
	uint8_t sum[HDR_SUM_LEN];
	struct journal_record r;
	size_t off;
	int ret;

	*valid_len = 0;
	if (len < JOURNAL_HEADER_SIZE)
		return -EBADMSG;
	crypto_generichash(sum, sizeof(sum), p, HDR_SUM_OFF, NULL, 0);
	if (memcmp(p, journal_magic, sizeof(journal_magic)) ||
	    memcmp(sum, p + HDR_SUM_OFF, sizeof(sum)))
		return -EBADMSG;
	/* The header is intact, so these are a writer's deliberate choices. */
	if (get_le32(p + 8) != JOURNAL_VERSION || get_le32(p + 12) != JOURNAL_RECORD_SIZE ||
	    !sodium_is_zero(p + 16, 8))
		return -EPROTONOSUPPORT;

	/* Records have no framing of their own to resynchronise on: after the
	 * first bad one, nothing further can be trusted. */
	for (off = JOURNAL_HEADER_SIZE; len - off >= JOURNAL_RECORD_SIZE; off += JOURNAL_RECORD_SIZE) {
		if (!journal_decode(p + off, &r))
			break;
		*valid_len = off + JOURNAL_RECORD_SIZE;
		if (cb) {
			ret = cb(&r, ctx);
			if (ret)
				return ret;
		}
	}
	*valid_len = off;
	return 0;
}

static int pwrite_all(int fd, const uint8_t *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Reads up to len bytes from offset 0; returns the count or -errno. */
static ssize_t pread_all(int fd, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* A rename or a new directory entry is durable only once the directory is. */
static int sync_dir(struct journal *j)
{
	int ret = fsync(j->dirfd) ? -errno : 0;

	j->fsyncs++;
	if (!ret)
		j->dir_unsynced = false;
	return ret;
}

/* Cuts the file back to its committed length, best effort. */
static void cut_back(struct journal *j)
{
	/* Should this fail too, the next commit writes over the same bytes at
	 * j->size; the records left there were never acknowledged, so a
	 * restart in between replays leases that merely expire unused. */
	while (ftruncate(j->fd, j->size) < 0 && errno == EINTR)
		;
	j->alloc = j->size;
}

/* Writes zeros ahead so that the file holds at least need bytes and then some. */
static int write_ahead(struct journal *j, off_t need)
{
	static const uint8_t zeros[COMPACT_WRITE_SIZE];
	off_t end = need + JOURNAL_AHEAD;
	int ret;

	end -= (end - JOURNAL_HEADER_SIZE) % JOURNAL_RECORD_SIZE;
	while (j->alloc < end) {
		size_t n = (size_t)(end - j->alloc) < sizeof(zeros) ? (size_t)(end - j->alloc) :
								       sizeof(zeros);

		ret = pwrite_all(j->fd, zeros, n, j->alloc);
		if (ret)
			return ret;
		j->alloc += (off_t)n;
	}
	return 0;
}

/*
 * One writer per journal: a second server on the same interface would write
 * its records over ours. File systems without flock() support still get a
 * journal, just without that protection.
 */
static int lock_fd(int fd)
{
	if (!flock(fd, LOCK_EX | LOCK_NB) || errno == ENOLCK)
		return 0;
	return errno == EWOULDBLOCK ? -EBUSY : -errno;
}

/* ---- the temporary file: compaction and creation ---- */

static void tmp_discard(struct journal *j)
{
	if (j->tmp_fd >= 0) {
		close(j->tmp_fd);
		unlinkat(j->dirfd, j->tmp_name, 0);
		j->tmp_fd = -1;
	}
	free(j->tmp_buf);
	j->tmp_buf = NULL;
	j->tmp_buf_len = 0;
}

static int tmp_fail(struct journal *j, int err)
{
	tmp_discard(j);
	j->tmp_err = err;
	return err;
}

static int tmp_begin(struct journal *j)
{
	j->tmp_buf = malloc(COMPACT_WRITE_SIZE);
	if (!j->tmp_buf)
		return -ENOMEM;
	/* A new file, never one found there: whatever a crash during an
	 * earlier compaction left (or anything else under that name) is
	 * unlinked, not written through. */
	j->tmp_fd = file_create_at(j->dirfd, j->tmp_name, O_RDWR, 0600);
	if (j->tmp_fd < 0) {
		int ret = j->tmp_fd;

		free(j->tmp_buf);
		j->tmp_buf = NULL;
		return ret;
	}
	journal_encode_header(j->tmp_buf);
	j->tmp_buf_len = JOURNAL_HEADER_SIZE;
	j->tmp_size = 0;
	return 0;
}

static int tmp_flush(struct journal *j)
{
	int ret = pwrite_all(j->tmp_fd, j->tmp_buf, j->tmp_buf_len, j->tmp_size);

	if (ret)
		return ret;
	j->tmp_size += (off_t)j->tmp_buf_len;
	j->tmp_buf_len = 0;
	return 0;
}

/*
 * Makes the temporary file the journal: written out, fsynced, locked, renamed
 * over the old one, directory fsynced. Until the rename, a failure discards
 * the temporary file and leaves the journal as it was. After it, the new file
 * is the journal whatever happens, since the old one no longer has a name; a
 * failed directory fsync is returned, and retried by the next commit.
 */
static int tmp_install(struct journal *j)
{
	int ret, old_fd;

	ret = tmp_flush(j);
	if (ret)
		goto fail;
	j->fsyncs++;
	if (fsync(j->tmp_fd)) {
		ret = -errno;
		goto fail;
	}
	/* Locked before it gets the name, so that no second server can take it
	 * between the rename and our first commit. */
	ret = lock_fd(j->tmp_fd);
	if (ret)
		goto fail;
	if (renameat(j->dirfd, j->tmp_name, j->dirfd, j->name)) {
		ret = -errno;
		goto fail;
	}

	old_fd = j->fd;
	j->fd = j->tmp_fd;
	j->size = j->alloc = j->tmp_size;
	j->tmp_fd = -1;
	tmp_discard(j);
	if (old_fd >= 0)
		close(old_fd);
	ret = sync_dir(j);
	if (ret)
		j->dir_unsynced = true;
	return ret;

fail:
	tmp_discard(j);
	return ret;
}

int journal_compact_begin(struct journal *j)
{
	int ret;

	if (j->pending_len || j->tmp_fd >= 0)
		return -EBUSY;
	j->tmp_err = 0;
	ret = tmp_begin(j);
	if (ret)
		return ret;
	j->tmp_commits = j->commits;
	return 0;
}

int journal_compact_add(struct journal *j, const struct journal_record *r)
{
	int ret;

	if (j->tmp_fd < 0)
		return j->tmp_err ? j->tmp_err : -EINVAL;
	if (!record_is_valid(r))
		return tmp_fail(j, -EINVAL);
	if (j->tmp_buf_len + JOURNAL_RECORD_SIZE > COMPACT_WRITE_SIZE) {
		ret = tmp_flush(j);
		if (ret)
			return tmp_fail(j, ret);
	}
	journal_encode(r, j->tmp_buf + j->tmp_buf_len);
	j->tmp_buf_len += JOURNAL_RECORD_SIZE;
	return 0;
}

int journal_compact_end(struct journal *j)
{
	int ret;

	if (j->tmp_fd < 0) {
		ret = j->tmp_err ? j->tmp_err : -EINVAL;
		j->tmp_err = 0;
		return ret;
	}
	/* Records committed to the old file after begin are missing from the
	 * snapshot, and would vanish with the old file. */
	if (j->commits != j->tmp_commits) {
		tmp_discard(j);
		return -ESTALE;
	}
	return tmp_install(j);
}

void journal_compact_abort(struct journal *j)
{
	tmp_discard(j);
	j->tmp_err = 0;
}

bool journal_wants_compaction(const struct journal *j, size_t live)
{
	uint64_t needed = JOURNAL_HEADER_SIZE + (uint64_t)live * JOURNAL_RECORD_SIZE;

	return j->size > JOURNAL_COMPACT_MIN_SIZE &&
	       (uint64_t)j->size > JOURNAL_COMPACT_RATIO * needed;
}

/* ---- records ---- */

int journal_append(struct journal *j, const struct journal_record *r)
{
	if (!record_is_valid(r))
		return -EINVAL;
	if (j->pending_len + JOURNAL_RECORD_SIZE > j->pending_cap) {
		size_t cap = j->pending_cap ? j->pending_cap * 2 : PENDING_INITIAL_SIZE;
		uint8_t *grown;

		if (cap < j->pending_cap)
			return -ENOMEM;
		grown = realloc(j->pending, cap);
		if (!grown)
			return -ENOMEM;
		j->pending = grown;
		j->pending_cap = cap;
	}
	journal_encode(r, j->pending + j->pending_len);
	j->pending_len += JOURNAL_RECORD_SIZE;
	return 0;
}

size_t journal_pending(const struct journal *j)
{
	return j->pending_len / JOURNAL_RECORD_SIZE;
}

int journal_commit(struct journal *j)
{
	int ret;

	if (!j->pending_len)
		return 0;
	j->commits++;
	ret = 0;
	if (j->size + (off_t)j->pending_len > j->alloc)
		ret = write_ahead(j, j->size + (off_t)j->pending_len);
	if (!ret)
		ret = pwrite_all(j->fd, j->pending, j->pending_len, j->size);
	if (!ret) {
		j->fsyncs++;
		if (fdatasync(j->fd))
			ret = -errno;
	}
	if (!ret && j->dir_unsynced)
		ret = sync_dir(j);
	if (ret)
		cut_back(j);
	else
		j->size += (off_t)j->pending_len;
	j->pending_len = 0;
	return ret;
}

uint64_t journal_fsyncs(const struct journal *j)
{
	return j->fsyncs;
}

off_t journal_size(const struct journal *j)
{
	return j->size;
}

const char *journal_path(const struct journal *j)
{
	return j->path;
}

/* ---- open and close ---- */

/* Writes a new journal of just a header, by way of the temporary file, so
 * that the journal's name never refers to a partial header. */
static int journal_create(struct journal *j)
{
	int ret = tmp_begin(j);

	if (ret)
		return ret;
	return tmp_install(j);
}

/*
 * Opens and locks the journal, creating it when missing or empty. Returns 1
 * when it made a new one, 0 when there is one to read, or -errno.
 */
static int journal_lock(struct journal *j)
{
	struct stat fst, pst;
	int fd, ret;

	/* The inode we lock must still be the one the name refers to: a server
	 * that held the lock may have compacted in the meantime. Never through
	 * a symbolic link, and never a file with other names elsewhere: the
	 * journal is written, and the directory is not the only way to it. */
	for (int tries = 0; tries < 8; tries++) {
		fd = file_open_at(j->dirfd, j->name, O_RDWR, 0);
		if (fd < 0) {
			if (fd != -ENOENT)
				return fd;
			ret = journal_create(j);
			return ret ? ret : 1;
		}
		ret = lock_fd(fd);
		if (ret) {
			close(fd);
			return ret;
		}
		if (fstat(fd, &fst)) {
			ret = -errno;
			close(fd);
			return ret;
		}
		if (fstatat(j->dirfd, j->name, &pst, AT_SYMLINK_NOFOLLOW) ||
		    pst.st_dev != fst.st_dev || pst.st_ino != fst.st_ino) {
			close(fd);
			continue;
		}
		if (!S_ISREG(fst.st_mode)) {
			close(fd);
			return -EINVAL;
		}
		j->fd = fd;
		/* Empty: a crash between creating the file and writing its
		 * header, with no record that could have been acknowledged. */
		if (fst.st_size == 0) {
			ret = journal_create(j);
			return ret ? ret : 1;
		}
		return 0;
	}
	return -EAGAIN;
}

struct replay {
	int (*cb)(const struct journal_record *r, void *ctx);
	void *ctx;
	size_t records;
};

static int replay_one(const struct journal_record *r, void *ctx)
{
	struct replay *rp = ctx;

	rp->records++;
	return rp->cb ? rp->cb(r, rp->ctx) : 0;
}

static int journal_load(struct journal *j, struct replay *rp, size_t *dropped)
{
	uint8_t *image = NULL;
	struct stat st;
	size_t valid_len;
	ssize_t got;
	int ret;

	if (fstat(j->fd, &st))
		return -errno;
	if ((uint64_t)st.st_size > SIZE_MAX / 2)
		return -EFBIG;
	image = malloc((size_t)st.st_size);
	if (!image)
		return -ENOMEM;
	got = pread_all(j->fd, image, (size_t)st.st_size);
	if (got < 0) {
		ret = (int)got;
		goto out;
	}
	/* A refused header returns here, before anything is written. */
	ret = journal_parse(image, (size_t)got, replay_one, rp, &valid_len);
	if (ret)
		goto out;
	j->alloc = st.st_size;
	if (valid_len < (size_t)got && !sodium_is_zero(image + valid_len, (size_t)got - valid_len)) {
		/* Cut now rather than at the next commit, so that new records
		 * follow the valid ones on disk even if we crash before then. */
		if (ftruncate(j->fd, (off_t)valid_len) || fsync(j->fd)) {
			ret = -errno;
			goto out;
		}
		*dropped = (size_t)st.st_size - valid_len;
		j->alloc = (off_t)valid_len;
	}
	j->size = (off_t)valid_len;
	/* Whatever a crash during a compaction left behind. */
	unlinkat(j->dirfd, j->tmp_name, 0);
out:
	free(image);
	return ret;
}

static char *path_join(const char *dir, const char *name, const char *suffix)
{
	size_t len = strlen(dir);
	char *p;

	if (asprintf(&p, "%s%s%s%s", dir, len && dir[len - 1] != '/' ? "/" : "", name,
		     suffix) < 0)
		return NULL;
	return p;
}

int journal_open(struct journal **out, const char *dir, const char *ifname,
		 int (*cb)(const struct journal_record *r, void *ctx), void *ctx,
		 struct journal_stats *stats)
{
	struct replay rp = { .cb = cb, .ctx = ctx };
	struct journal *j;
	size_t dropped = 0;
	int ret;

	*out = NULL;
	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!*ifname || strchr(ifname, '/'))
		return -EINVAL;

	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fd = -1;
	j->tmp_fd = -1;
	j->dirfd = -1;
	j->path = path_join(dir, ifname, ".leases");
	j->name = path_join("", ifname, ".leases");
	j->tmp_name = path_join("", ifname, ".leases.tmp");
	if (!j->path || !j->name || !j->tmp_name) {
		ret = -ENOMEM;
		goto out;
	}
	/* Every file operation is relative to this, so that the directory
	 * is looked up once. */
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0) {
		ret = -errno;
		goto out;
	}

	ret = journal_lock(j);
	if (ret == 0)
		ret = journal_load(j, &rp, &dropped);
	else if (ret == 1)
		ret = 0;
	if (ret)
		goto out;
	/* Syncs done while opening are not the caller's. */
	j->fsyncs = 0;
	if (stats) {
		stats->records = rp.records;
		stats->dropped_bytes = dropped;
	}
	*out = j;
	j = NULL;
out:
	journal_close(j);
	return ret;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	tmp_discard(j);
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j->pending);
	free(j->path);
	free(j->name);
	free(j->tmp_name);
	free(j);
}
