/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_POOL_H
#define WGD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../protocol/ipaddr.h"

/*
 * Address pools. A pool set holds the prefixes addresses are leased from,
 * both families. Each address of a pool is free, leased, or reserved (the
 * server's own addresses, other peers' static allowed-IPs). Leased and
 * reserved marks are independent: reservations are rebuilt whenever the
 * device is re-read, without disturbing leases.
 *
 * Cost: taking a random free address is O(log n) or better at any fill
 * level. Small pools (up to 2^24 addresses) keep bitmaps with a count tree
 * and pick the k-th free address; larger ones (an IPv6 /64) are sparse and
 * pick at random, checking a hash set and the reserved ranges.
 */

struct poolset;

struct poolset *poolset_new(void);
void poolset_free(struct poolset *ps);

/*
 * Adds a prefix. For IPv4 prefixes shorter than /31 the first and last
 * addresses are never leased. -EEXIST when the same prefix is present,
 * -EINVAL when it overlaps another pool or has host bits set.
 * Addresses already leased inside it (poolset_mark_leased() calls made for
 * addresses outside every pool are not remembered: callers re-mark) are the
 * caller's to mark.
 */
int poolset_add(struct poolset *ps, const struct wgd_ip *prefix);
/*
 * IPv6 prefixes shorter than /127 never lease their all-zero address, the
 * Subnet-Router anycast address (RFC 4291 section 2.6.1). The functions
 * below that take an address look at its address bits, not its prefix
 * length.
 */

/* Removes a prefix; its leases live on in the lease table only. */
int poolset_remove(struct poolset *ps, const struct wgd_ip *prefix);

size_t poolset_count(const struct poolset *ps);
/* The i-th pool's prefix, in the order added. */
const struct wgd_ip *poolset_prefix(const struct poolset *ps, size_t i);
/* (NULL past the end; the pointer lasts until the next add or remove.) */

/* Whether addr lies in some pool and is leasable there (not the network or
 * broadcast address of an IPv4 pool). */
bool poolset_contains(const struct poolset *ps, const struct wgd_ip *addr);
/*
 * The same for one prefix, without a pool set: whether a pool of prefix
 * leases addr. The privileged parent, which keeps no pool set, checks the
 * engine's additions with it; the pools follow the same rule.
 */
bool pool_prefix_leases(const struct wgd_ip *prefix, const struct wgd_ip *addr);
/* Whether addr is in a pool and neither leased nor reserved. */
bool poolset_is_free(const struct poolset *ps, const struct wgd_ip *addr);

/*
 * Picks an address of family uniformly at random among the free ones of
 * every pool of that family, and marks it leased. -ENOSPC when none is free.
 */
int poolset_take_random(struct poolset *ps, int family, struct wgd_ip *out);
/*
 * Optional, before poolset_take_random(): draws that take ahead and starts
 * loading the memory it will touch, so that a caller with other cache
 * misses to wait for waits for all of them at once. The draw is used by
 * the next random take of family, unless the family's pools change first.
 */
void poolset_prefetch(struct poolset *ps, int family);
/* The same before taking or putting back a given address, as a journal's
 * replay does for one record while it handles another. */
void poolset_prefetch_addr(const struct poolset *ps, const struct wgd_ip *addr);
/* Marks a given address leased: -ERANGE outside every pool, -EEXIST when
 * leased or reserved. */
int poolset_take(struct poolset *ps, const struct wgd_ip *addr);
/* Returns a leased address to its pool; no-op when outside every pool. */
void poolset_put(struct poolset *ps, const struct wgd_ip *addr);

/* Reservations: cleared together, then re-added from the device. */
void poolset_reserve_clear(struct poolset *ps);
/* Reserves every address of prefix that falls inside a pool. */
void poolset_reserve(struct poolset *ps, const struct wgd_ip *prefix);
/* A reservation that could not be recorded for want of memory makes
 * poolset_take_random() and poolset_take() fail with -ENOMEM until the next
 * poolset_reserve_clear(): no lease is better than one that clashes. */

/* Sizes for status output (saturating at UINT64_MAX for huge pools). */
uint64_t poolset_pool_size(const struct poolset *ps, size_t i);
uint64_t poolset_pool_free(const struct poolset *ps, size_t i);

/* Bytes the pool set holds, for benchmarks. */
size_t poolset_memory(const struct poolset *ps);

#endif
