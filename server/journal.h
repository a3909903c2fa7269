/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_JOURNAL_H
#define WGD_JOURNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/wgdev.h"

/*
 * The lease journal, DIR/IFACE.leases: an append-only file of fixed-size,
 * checksummed records behind a versioned header. See docs/journal.md.
 *
 * Records are buffered by journal_append() and made durable together by
 * journal_commit(): one write() and one fdatasync() for every record of an
 * event-loop round (group commit). A lease's response is sent only after
 * the commit that holds its record.
 */

enum journal_type {
	JREC_GRANT = 1,    /* a grant or a renewal: the peer's whole lease now */
	JREC_RELEASE = 2,  /* the peer's lease ended (release, expiry, peer gone) */
};

#define JREC_F_IP4 0x01
#define JREC_F_IP6 0x02
#define JREC_F_QUARANTINE 0x04  /* RELEASE: addresses held back until start + leasetime */

struct journal_record {
	uint8_t type;
	uint8_t flags;
	uint32_t start;      /* CLOCK_REALTIME seconds: of the grant, or of the release */
	uint32_t leasetime;  /* GRANT: lease seconds; RELEASE with quarantine: its seconds */
	struct in_addr ip4;  /* valid with JREC_F_IP4 */
	struct in6_addr ip6; /* valid with JREC_F_IP6 */
	uint8_t pubkey[WG_KEY_LEN];
};

#define JOURNAL_HEADER_SIZE 32
#define JOURNAL_RECORD_SIZE 80
#define JOURNAL_VERSION 1

/* Encodes one record into exactly JOURNAL_RECORD_SIZE bytes. */
void journal_encode(const struct journal_record *r, uint8_t out[JOURNAL_RECORD_SIZE]);
void journal_encode_header(uint8_t out[JOURNAL_HEADER_SIZE]);

/*
 * Parses a whole journal image from memory, with no I/O: the header, then
 * each valid record in order through cb (which may stop the walk by
 * returning non-zero; that value is returned). *valid_len is set to the
 * length of the header and the valid records before the first torn or
 * corrupt one. Returns 0, -EBADMSG for a missing or corrupt header,
 * -EPROTONOSUPPORT for an unknown version. When cb stops the walk,
 * *valid_len ends after the record cb was given. A record is valid when it
 * is complete, its checksum matches, and its type, flags and reserved bytes
 * are known values.
 */
int journal_parse(const void *buf, size_t len,
		  int (*cb)(const struct journal_record *r, void *ctx), void *ctx,
		  size_t *valid_len);

struct journal;

struct journal_stats {
	size_t records;       /* valid records read */
	size_t dropped_bytes; /* torn or corrupt tail cut off */
};

/*
 * Opens DIR/IFACE.leases, creating it (and fsyncing the directory) when
 * missing. Replays every valid record through cb, and cuts a torn or corrupt
 * tail at the last valid record. A file whose header is corrupt or of an
 * unknown version is refused (-EBADMSG, -EPROTONOSUPPORT) and never written.
 * The directory must exist (-ENOENT otherwise). The file is opened
 * relative to the directory, never through a symbolic link (-ELOOP), and
 * must be a regular file (-EINVAL) with no other name (-EMLINK); the
 * compaction's temporary file is created anew, never opened. The file is
 * locked with flock(): a second opener gets -EBUSY. A non-zero return from
 * cb stops the replay and is returned, with nothing cut. stats may be NULL.
 */
int journal_open(struct journal **out, const char *dir, const char *ifname,
		 int (*cb)(const struct journal_record *r, void *ctx), void *ctx,
		 struct journal_stats *stats);
/* Drops pending records and any compaction in progress; accepts NULL. */
void journal_close(struct journal *j);
const char *journal_path(const struct journal *j);

/* Buffers a record; -ENOMEM only (or -EINVAL for a type or flag that
 * journal_parse() would refuse, which would hide every later record). */
int journal_append(struct journal *j, const struct journal_record *r);
/* Records appended and not yet committed. */
size_t journal_pending(const struct journal *j);
/* Writes every pending record with one write() and one fdatasync(). On
 * failure the pending records are dropped and the file is cut back to its
 * last committed length. */
int journal_commit(struct journal *j);
/* Commits issued and fsyncs done since open, for benchmarks and status:
 * every fsync or fdatasync of the journal, of a compaction's file and of
 * the directory, so one per commit of a group. A commit with nothing
 * pending does no I/O and counts nothing. */
uint64_t journal_fsyncs(const struct journal *j);

/* Bytes in the file. */
off_t journal_size(const struct journal *j);
/* Whether the file has grown past the compaction threshold given the
 * number of live leases. */
bool journal_wants_compaction(const struct journal *j, size_t live);

/*
 * Compaction: begin writes a new header to IFACE.leases.tmp; add writes
 * the live state, record by record; end fsyncs it, renames it over the
 * journal, fsyncs the directory and appends from then on to the new file.
 * On any failure the temporary file is removed and the old journal stays.
 * Pending records must be committed first.
 *
 * begin: -EBUSY with records pending or a compaction already begun. add and
 * end return the error that ended the compaction, if any. end returns
 * -ESTALE, discarding the snapshot, when a commit went to the old file
 * after begin. Once the rename is done the new file is the journal: should
 * only the directory fsync then fail, end returns that error, and the next
 * commit retries it. abort is a no-op when nothing is in progress.
 */
int journal_compact_begin(struct journal *j);
int journal_compact_add(struct journal *j, const struct journal_record *r);
int journal_compact_end(struct journal *j);
void journal_compact_abort(struct journal *j);

#endif
