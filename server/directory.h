/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_DIRECTORY_H
#define WGD_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/hashtab.h"
#include "../protocol/proto.h"

/*
 * The mesh directory (docs/protocol.md, "Mesh"): the peers that hold a
 * lease and asked for the directory lately, each with what the others need
 * to reach it, and a version to page through the changes.
 *
 * Every change bumps the directory's version and stamps the entry with it;
 * entries sit in a list in version order, so the changes since a client's
 * version are a walk back from the tail, as long as the client is behind.
 * A member that leaves stays as a tombstone (a gone= line) for
 * DIR_TOMBSTONE_MS, and at most DIR_MAX_TOMBSTONES of them are kept: a
 * client behind the newest tombstone dropped starts over (reset=1).
 *
 * Pure: no I/O, the clock passed in. An entry is found by key through a
 * hash table (common/hashtab.h); the entries live in one array, 240
 * bytes each. Errors are -errno.
 */

#define DIR_JOIN_TIMEOUT_MS 60000      /* a member that stops asking leaves */
#define DIR_TOMBSTONE_MS 600000
#define DIR_MAX_TOMBSTONES 4096
#define DIR_NONE UINT32_MAX

struct dir_entry {
	struct wgd_peer_entry pe;      /* what a peer= or gone= line says */
	uint32_t version;              /* the directory's version at its last change */
	uint16_t line_len;             /* its line on the wire, newline included */
	uint32_t prev, next;           /* version order, DIR_NONE at the ends */
	/* Members by their last request; tombstones by when they went. */
	uint32_t age_prev, age_next;
	uint64_t stamp_ms;             /* that request, or that going */
	void *poll;                    /* the caller's: the member's held long poll */
	uint64_t claimed_ms;           /* the caller's: its port or candidates last changed */
	uint32_t resume;               /* where its paging through a fresh start is */
};

struct directory {
	struct dir_entry *entries;
	size_t n_slots, cap;
	uint32_t free_head;            /* unused slots, linked through next */
	struct hashtab index;          /* slots by key */
	uint32_t head, tail;           /* version order: oldest, newest */
	uint32_t live_head, live_tail; /* members, least recently seen first */
	uint32_t gone_head, gone_tail; /* tombstones, oldest first */
	size_t n_live, n_gone;
	uint32_t epoch, version;
	/* The newest version of a tombstone dropped: a client behind it
	 * may have missed a departure, and starts over. */
	uint32_t dropped;
};

/* An empty directory; epoch 0 draws a random one (never 0). 0 or -ENOMEM. */
int dir_init(struct directory *d, uint32_t epoch);
void dir_free(struct directory *d);

/* The entry of key, a member or a tombstone, or NULL. */
struct dir_entry *dir_find(const struct directory *d, const uint8_t key[32]);

/*
 * Makes pe (its key, addresses, endpoint, port and candidates; gone is
 * ignored) the entry of its peer, a member from now on. The version moves
 * only when something changed: 1 when it did, 0 when not, -EINVAL for an
 * entry the wire cannot carry, -ENOMEM. Does not count as a request.
 */
int dir_set(struct directory *d, const struct wgd_peer_entry *pe);
/* A member's request: it stays for DIR_JOIN_TIMEOUT_MS more. */
void dir_touch(struct directory *d, struct dir_entry *e, uint64_t now_ms);
/* The member of key leaves: 1 when it was one, else 0. */
int dir_gone(struct directory *d, const uint8_t key[32], uint64_t now_ms);

/*
 * Members that stopped asking leave, and tombstones past their time go.
 * left, when not NULL, hears of each member that leaves, before it does.
 * Returns how many left.
 */
size_t dir_expire(struct directory *d, uint64_t now_ms,
		  void (*left)(struct dir_entry *e, void *ctx), void *ctx);
/* When dir_expire() next has something to do, or UINT64_MAX. */
uint64_t dir_next_expiry(const struct directory *d);

/* Whether a client at (epoch, since) has seen everything: a poll waits. */
static inline bool dir_is_current(const struct directory *d, uint32_t epoch, uint32_t since)
{
	return epoch == d->epoch && since == d->version;
}

/*
 * The answer to a client at (epoch, since; epoch 0 for none): epoch=,
 * version=, reset= and more= into resp, and the lines that changed after
 * since, in version order, at most WGD_MAX_PEERS of them and budget bytes
 * of lines (budget must hold the longest line). A client of another epoch,
 * behind a dropped tombstone or ahead of the directory gets reset=1 and
 * every member. A cut answer has more=1 and a version from which the next
 * resumes. asker is the asking member's entry, or NULL: it remembers where
 * a fresh start was cut, for the tombstones dropped meanwhile would
 * otherwise start it over again and again. resp->peers must have room for
 * WGD_MAX_PEERS lines.
 */
void dir_answer(const struct directory *d, struct dir_entry *asker, uint32_t epoch, uint32_t since,
		size_t budget, struct wgd_msg *resp);

/* The bytes of e's line on the wire, newline included. */
size_t dir_line_len(const struct wgd_peer_entry *pe);

/* Members and tombstones in version order: *pos starts at DIR_NONE. */
const struct dir_entry *dir_next(const struct directory *d, uint32_t *pos);

#endif
