/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_LEASE_H
#define WGD_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/wgdev.h"
#include "../protocol/ipaddr.h"
#include "../protocol/proto.h"
#include "pool.h"

/*
 * The lease table: at most one lease per peer public key, holding at most one
 * IPv4 and one IPv6 address. Leases live in one array and are found through
 * a hash of the key; a binary heap orders them by expiry. This module
 * decides and records; it does no I/O. The caller applies the resulting
 * allowed-IPs changes to the device.
 *
 * A lease in the table is read-only outside this module: its expiry is
 * kept in the heap too, and its key in the hash.
 */

struct lease {
	uint8_t pubkey[WG_KEY_LEN];
	struct in6_addr lladdr;    /* where the last request came from */
	struct in6_addr ip6;       /* valid when has_ip6 */
	struct in_addr ip4;        /* valid when has_ip4 */
	uint32_t start;            /* CLOCK_REALTIME seconds of the last grant */
	uint32_t leasetime;        /* seconds */
	uint32_t expires;          /* CLOCK_BOOTTIME seconds: 136 years of uptime */
	/* Index in the expiry heap; free-list link when unused. Beside it
	 * the flags, so that a lease is 84 bytes, not 88. */
	uint32_t heap_pos : 30;
	bool has_ip4 : 1, has_ip6 : 1;
};

struct lease_table;

struct lease_table *lease_table_new(struct poolset *pools);
void lease_table_free(struct lease_table *lt);

size_t lease_count(const struct lease_table *lt);
/* Makes room for n leases at once, as a start-up that knows how many is
 * coming does, rather than growing step by step. 0 or -ENOMEM. */
int lease_table_reserve(struct lease_table *lt, size_t n);
/* Bytes the table holds, quarantine included, for benchmarks. */
size_t lease_table_memory(const struct lease_table *lt);
struct lease *lease_find(const struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN]);
/*
 * For a caller with many lookups at hand, to wait for their cache misses
 * at once: lease_prefetch() starts loading what finding pubkey reads and
 * returns its hash, and lease_find_hashed() finds it, a few lookups later.
 */
uint32_t lease_prefetch(const struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN]);
struct lease *lease_find_hashed(const struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN],
				uint32_t hash);
/* The lease that expires first, or NULL. */
struct lease *lease_first_expiry(const struct lease_table *lt);

/* Walks every lease; the callback must not add or remove leases. */
void lease_foreach(const struct lease_table *lt,
		   void (*cb)(const struct lease *l, void *ctx), void *ctx);

struct lease_clock {
	uint32_t real;             /* CLOCK_REALTIME seconds */
	uint64_t boot;             /* CLOCK_BOOTTIME seconds */
};

/*
 * Answers a request_ip from the peer: keeps, grants or releases an address
 * per family as the request asks, records the lease, and fills the response's
 * ip=, leasestart=, leasetime= and errno= fields (not routes). The change
 * lists what the device must be told: the allowed-IPs to add to the peer
 * and to remove from it, one address a family at most, so two of each. On
 * -ENOMEM nothing was changed.
 *
 * A peer that asks for the lease it holds (each family it holds, each
 * address or any, and nothing else) before LEASE_REPEAT_PERCENT of the
 * lease has run, a second less for the whole-second clock, gets it back as
 * it stands: leasestart now and leasetime what is left, so that the lease
 * ends when it did (a client believes leasestart only near its own clock).
 * Nothing is changed and the return value is LEASE_AS_IS: there is nothing
 * to record and nothing for the device. RFC 2131's T1 is half the lease;
 * a client draws its renewal within a tenth of T1 either side of it, no
 * sooner than 45 %, so only a peer that asks early comes here.
 */
#define LEASE_REPEAT_PERCENT 40
#define LEASE_AS_IS 1
int lease_request(struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN],
		  const struct in6_addr *lladdr, const struct wgd_msg *req,
		  uint32_t leasetime, const struct lease_clock *now,
		  struct wgd_msg *resp, struct wgdev_change *change);

/* Removes a lease, returning its addresses to the pools; change lists the
 * allowed-IPs to remove from its peer. */
void lease_release(struct lease_table *lt, struct lease *l, struct wgdev_change *change);

/*
 * Adds a lease as it was recorded (start-up from a journal). The addresses
 * are marked leased in the pools when inside them. -EEXIST when another
 * lease holds one of them.
 */
int lease_restore(struct lease_table *lt, const struct lease *l);

/*
 * Replay of a grant straight into the live table: the peer's lease becomes
 * src, inserted or overwritten; hash is lease_prefetch()'s for its key. The addresses of the lease it replaces go
 * back to the pools unless src keeps them, and that lease is copied to
 * *prev (with no address when there was none). -EEXIST when a pool address
 * of src is leased already, to another peer: src is recorded all the
 * same, that address unmarked, and the pools no longer say which lease
 * holds what; the caller sorts that out. On -ENOMEM nothing was changed.
 */
int lease_replay_grant(struct lease_table *lt, const struct lease *src, uint32_t hash,
		       struct lease *prev);

/*
 * Replay: records a lease as it is, inserting or overwriting the peer's,
 * without touching any pool. For a scratch table built from a journal.
 */
int lease_set(struct lease_table *lt, const struct lease *src);
/* Forgets a peer's lease without touching any pool. */
void lease_forget(struct lease_table *lt, const uint8_t pubkey[WG_KEY_LEN]);

/*
 * Quarantine: addresses of a peer that left are held back from the pools
 * until `until` (CLOCK_BOOTTIME seconds), so that a reused address cannot
 * reach a stale peer. lease_release_quarantine() is lease_release() with the
 * addresses kept taken; lease_quarantine_addr() holds back one address
 * (start-up, from the journal); lease_quarantine_expire() returns the
 * addresses whose time is up and says how many.
 */
void lease_release_quarantine(struct lease_table *lt, struct lease *l, uint64_t until,
			      struct wgdev_change *change);
int lease_quarantine_addr(struct lease_table *lt, const struct wgd_ip *addr, uint64_t until);
size_t lease_quarantine_expire(struct lease_table *lt, uint64_t now);
/* The earliest end of a quarantine, or UINT64_MAX. */
uint64_t lease_quarantine_next(const struct lease_table *lt);
size_t lease_quarantine_count(const struct lease_table *lt);
/* The i-th quarantined address and its end, soonest first. */
const struct wgd_ip *lease_quarantine_get(const struct lease_table *lt, size_t i, uint64_t *until);


#endif
