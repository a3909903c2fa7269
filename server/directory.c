// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/* The mesh directory: members by key, changes by version. See directory.h. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../common/array.h"
#include "directory.h"

struct key_query {
	const struct directory *d;
	const uint8_t *key;
};

static bool key_match(uint32_t idx, const void *ctx)
{
	const struct key_query *q = ctx;

	return !memcmp(q->d->entries[idx].pe.key, q->key, 32);
}

static uint32_t new_epoch(void)
{
	uint32_t epoch;

	do
		epoch = randombytes_random();
	while (!epoch);
	return epoch;
}

int dir_init(struct directory *d, uint32_t epoch)
{
	memset(d, 0, sizeof(*d));
	if (hashtab_init(&d->index))
		return -ENOMEM;
	d->free_head = d->head = d->tail = DIR_NONE;
	d->live_head = d->live_tail = d->gone_head = d->gone_tail = DIR_NONE;
	d->epoch = epoch ? epoch : new_epoch();
	return 0;
}

void dir_free(struct directory *d)
{
	if (!d)
		return;
	hashtab_free(&d->index);
	free(d->entries);
	d->entries = NULL;
}

struct dir_entry *dir_find(const struct directory *d, const uint8_t key[32])
{
	struct key_query q = { d, key };
	uint32_t idx = hashtab_find(&d->index, hashtab_hash(&d->index, key, 32), key_match, &q);

	return idx == HASHTAB_NONE ? NULL : &d->entries[idx];
}

/* ---- the lists, by slot ---- */

#define IDX(d, e) ((uint32_t)((e) - (d)->entries))

static void unlink_version(struct directory *d, struct dir_entry *e)
{
	if (e->prev != DIR_NONE)
		d->entries[e->prev].next = e->next;
	else
		d->head = e->next;
	if (e->next != DIR_NONE)
		d->entries[e->next].prev = e->prev;
	else
		d->tail = e->prev;
}

static void append_version(struct directory *d, struct dir_entry *e)
{
	uint32_t idx = IDX(d, e);

	e->prev = d->tail;
	e->next = DIR_NONE;
	if (d->tail != DIR_NONE)
		d->entries[d->tail].next = idx;
	else
		d->head = idx;
	d->tail = idx;
}

static void unlink_age(struct directory *d, struct dir_entry *e)
{
	uint32_t *head = e->pe.gone ? &d->gone_head : &d->live_head;
	uint32_t *tail = e->pe.gone ? &d->gone_tail : &d->live_tail;

	if (e->age_prev != DIR_NONE)
		d->entries[e->age_prev].age_next = e->age_next;
	else
		*head = e->age_next;
	if (e->age_next != DIR_NONE)
		d->entries[e->age_next].age_prev = e->age_prev;
	else
		*tail = e->age_prev;
}

static void append_age(struct directory *d, struct dir_entry *e)
{
	uint32_t *head = e->pe.gone ? &d->gone_head : &d->live_head;
	uint32_t *tail = e->pe.gone ? &d->gone_tail : &d->live_tail;
	uint32_t idx = IDX(d, e);

	e->age_prev = *tail;
	e->age_next = DIR_NONE;
	if (*tail != DIR_NONE)
		d->entries[*tail].age_next = idx;
	else
		*head = idx;
	*tail = idx;
}

/* Members only: a new one, as if it had asked at time 0. */
static void prepend_age(struct directory *d, struct dir_entry *e)
{
	uint32_t idx = IDX(d, e);

	e->age_prev = DIR_NONE;
	e->age_next = d->live_head;
	if (d->live_head != DIR_NONE)
		d->entries[d->live_head].age_prev = idx;
	else
		d->live_tail = idx;
	d->live_head = idx;
}

/*
 * Four billion changes in, the versions start over under a new epoch:
 * every client resets, and the members are numbered again in order. The
 * tombstones go, which a reset makes needless.
 */
static void renumber(struct directory *d)
{
	uint32_t v = 0, i, next;

	while (d->gone_head != DIR_NONE) {
		struct dir_entry *e = &d->entries[d->gone_head];

		unlink_age(d, e);
		unlink_version(d, e);
		hashtab_remove(&d->index, hashtab_hash(&d->index, e->pe.key, 32), IDX(d, e));
		memset(e, 0, sizeof(*e));
		e->next = d->free_head;
		d->free_head = IDX(d, e);
	}
	d->n_gone = 0;
	for (i = d->head; i != DIR_NONE; i = next) {
		next = d->entries[i].next;
		d->entries[i].version = ++v;
	}
	d->version = v;
	d->dropped = 0;
	d->epoch = new_epoch();
}

/* e changed: the newest version, at the tail. */
static void bump(struct directory *d, struct dir_entry *e)
{
	if (d->version == UINT32_MAX - 1)
		renumber(d);
	unlink_version(d, e);
	append_version(d, e);
	e->version = ++d->version;
}

/* Drops the oldest tombstone for good. */
static void drop_oldest_tombstone(struct directory *d)
{
	struct dir_entry *e = &d->entries[d->gone_head];
	uint32_t idx = IDX(d, e);

	if (e->version > d->dropped)
		d->dropped = e->version;
	unlink_age(d, e);
	unlink_version(d, e);
	hashtab_remove(&d->index, hashtab_hash(&d->index, e->pe.key, 32), idx);
	memset(e, 0, sizeof(*e));
	e->next = d->free_head;
	d->free_head = idx;
	d->n_gone--;
}

/* ---- lines ---- */

/* Sized by the serializer's own formatter, so that the budget of an
 * answer is what it writes, to the byte. */
size_t dir_line_len(const struct wgd_peer_entry *pe)
{
	char buf[WGD_MAX_LINE];
	ssize_t n = wgd_format_peer_line(pe, buf, sizeof(buf));

	return n < 0 ? WGD_MAX_LINE : (size_t)n + 1;
}

/* ---- changes ---- */

static bool host_ok(const struct wgd_ip *ip, uint8_t family)
{
	return ip->family == family && ip->cidr == wgd_ip_bits(family);
}

static bool valid(const struct wgd_peer_entry *pe)
{
	if ((pe->has_ip4 && !host_ok(&pe->ip4, AF_INET)) ||
	    (pe->has_ip6 && !host_ok(&pe->ip6, AF_INET6)) || pe->n_cand > WGD_MAX_CANDIDATES)
		return false;
	if (pe->endpoint.addr.family &&
	    ((!host_ok(&pe->endpoint.addr, AF_INET) && !host_ok(&pe->endpoint.addr, AF_INET6)) ||
	     !pe->endpoint.port))
		return false;
	for (size_t i = 0; i < pe->n_cand; i++)
		if (!host_ok(&pe->cand[i], AF_INET) && !host_ok(&pe->cand[i], AF_INET6))
			return false;
	return true;
}

static bool ip_same(bool ha, const struct wgd_ip *a, bool hb, const struct wgd_ip *b)
{
	return ha == hb && (!ha || wgd_ip_equal(a, b));
}

/* Whether two entries say the same; the key is the caller's to compare. */
static bool same(const struct wgd_peer_entry *a, const struct wgd_peer_entry *b)
{
	if (!ip_same(a->has_ip4, &a->ip4, b->has_ip4, &b->ip4) ||
	    !ip_same(a->has_ip6, &a->ip6, b->has_ip6, &b->ip6) || a->port != b->port ||
	    a->n_cand != b->n_cand)
		return false;
	if (!ip_same(a->endpoint.addr.family, &a->endpoint.addr, b->endpoint.addr.family,
		     &b->endpoint.addr) ||
	    (a->endpoint.addr.family && a->endpoint.port != b->endpoint.port))
		return false;
	for (size_t i = 0; i < a->n_cand; i++)
		if (!wgd_ip_equal(&a->cand[i], &b->cand[i]))
			return false;
	return true;
}

/* A slot for a new entry of key, in the index already, or NULL. */
static struct dir_entry *insert(struct directory *d, const uint8_t key[32])
{
	uint32_t idx = d->free_head;
	struct dir_entry *e;

	if (idx == DIR_NONE) {
		if (d->n_slots >= DIR_NONE - 1 ||
		    array_reserve(&d->entries, &d->cap, d->n_slots, sizeof(*d->entries), 16))
			return NULL;
		idx = (uint32_t)d->n_slots;
	}
	if (hashtab_insert(&d->index, hashtab_hash(&d->index, key, 32), idx))
		return NULL;
	if (idx == d->n_slots)
		d->n_slots++;
	else
		d->free_head = d->entries[idx].next;
	e = &d->entries[idx];
	memset(e, 0, sizeof(*e));
	memcpy(e->pe.key, key, 32);
	e->prev = e->next = e->age_prev = e->age_next = DIR_NONE;
	return e;
}

int dir_set(struct directory *d, const struct wgd_peer_entry *pe)
{
	struct dir_entry *e = dir_find(d, pe->key);
	struct wgd_peer_entry copy;

	if (!valid(pe))
		return -EINVAL;
	if (e && !e->pe.gone && same(&e->pe, pe))
		return 0;
	if (!e) {
		e = insert(d, pe->key);
		if (!e)
			return -ENOMEM;
		/* Linked somewhere for bump() to move to the tail. */
		append_version(d, e);
		d->n_live++;
		e->stamp_ms = 0;
		prepend_age(d, e);
	} else if (e->pe.gone) {
		unlink_age(d, e);
		d->n_gone--;
		d->n_live++;
		/* Never asked, as far as the age list goes: at its head,
		 * until dir_touch() moves it to the tail. */
		e->pe.gone = false;
		e->stamp_ms = 0;
		prepend_age(d, e);
	}
	/* The entry holds the fields the wire carries, the rest zeroed. */
	memset(&copy, 0, sizeof(copy));
	memcpy(copy.key, pe->key, 32);
	copy.has_ip4 = pe->has_ip4;
	copy.has_ip6 = pe->has_ip6;
	if (pe->has_ip4)
		copy.ip4 = pe->ip4;
	if (pe->has_ip6)
		copy.ip6 = pe->ip6;
	if (pe->endpoint.addr.family)
		copy.endpoint = pe->endpoint;
	copy.port = pe->port;
	copy.n_cand = pe->n_cand;
	memcpy(copy.cand, pe->cand, pe->n_cand * sizeof(copy.cand[0]));
	e->pe = copy;
	e->line_len = (uint16_t)dir_line_len(&e->pe);
	bump(d, e);
	return 1;
}

void dir_touch(struct directory *d, struct dir_entry *e, uint64_t now_ms)
{
	if (e->pe.gone)
		return;
	e->stamp_ms = now_ms;
	unlink_age(d, e);
	append_age(d, e);
}

int dir_gone(struct directory *d, const uint8_t key[32], uint64_t now_ms)
{
	struct dir_entry *e = dir_find(d, key);

	if (!e || e->pe.gone)
		return 0;
	unlink_age(d, e);
	d->n_live--;
	memset(&e->pe, 0, sizeof(e->pe));
	memcpy(e->pe.key, key, 32);
	e->pe.gone = true;
	e->line_len = (uint16_t)dir_line_len(&e->pe);
	e->stamp_ms = now_ms;
	append_age(d, e);
	d->n_gone++;
	bump(d, e);
	while (d->n_gone > DIR_MAX_TOMBSTONES)
		drop_oldest_tombstone(d);
	return 1;
}

size_t dir_expire(struct directory *d, uint64_t now_ms,
		  void (*left)(struct dir_entry *e, void *ctx), void *ctx)
{
	size_t n = 0;

	while (d->live_head != DIR_NONE &&
	       d->entries[d->live_head].stamp_ms + DIR_JOIN_TIMEOUT_MS <= now_ms) {
		struct dir_entry *e = &d->entries[d->live_head];
		uint8_t key[32];

		if (left)
			left(e, ctx);
		memcpy(key, e->pe.key, 32);
		dir_gone(d, key, now_ms);
		n++;
	}
	while (d->gone_head != DIR_NONE &&
	       d->entries[d->gone_head].stamp_ms + DIR_TOMBSTONE_MS <= now_ms)
		drop_oldest_tombstone(d);
	return n;
}

uint64_t dir_next_expiry(const struct directory *d)
{
	uint64_t next = UINT64_MAX;

	if (d->live_head != DIR_NONE)
		next = d->entries[d->live_head].stamp_ms + DIR_JOIN_TIMEOUT_MS;
	if (d->gone_head != DIR_NONE && d->entries[d->gone_head].stamp_ms + DIR_TOMBSTONE_MS < next)
		next = d->entries[d->gone_head].stamp_ms + DIR_TOMBSTONE_MS;
	return next;
}

/* ---- answers ---- */

void dir_answer(const struct directory *d, struct dir_entry *asker, uint32_t epoch, uint32_t since,
		size_t budget, struct wgd_msg *resp)
{
	bool resuming = asker && asker->resume && since == asker->resume && epoch == d->epoch;
	uint32_t i;

	/* The epoch goes out when it is news: a client that sent it knows
	 * it, and a change costs every peer's answer these bytes. */
	resp->has_dir_version = true;
	resp->has_epoch = epoch != d->epoch;
	resp->epoch = d->epoch;
	resp->dir_version = d->version;
	resp->reset = resp->more = false;
	resp->n_peers = 0;
	if (asker)
		asker->resume = 0;
	/* A client with nothing starts at 0, and has nothing to forget. A
	 * client paging through a fresh start is behind the tombstones
	 * dropped, but knows no one they were about. */
	if (!epoch)
		since = 0;
	else if (epoch != d->epoch || since > d->version || (since < d->dropped && !resuming)) {
		resp->reset = true;
		since = 0;
	}
	if (since == d->version)
		return;

	/* Back from the newest to the first change the client lacks. */
	i = d->tail;
	while (i != DIR_NONE && d->entries[i].prev != DIR_NONE &&
	       d->entries[d->entries[i].prev].version > since)
		i = d->entries[i].prev;
	for (; i != DIR_NONE; i = d->entries[i].next) {
		const struct dir_entry *e = &d->entries[i];

		if (e->version <= since)
			continue;
		/* Starting over, the client knows of no one to forget. */
		if (e->pe.gone && !since)
			continue;
		if (resp->n_peers == WGD_MAX_PEERS || e->line_len > budget) {
			/* Up to the entry before: a tombstone passed over
			 * starting over is as good as sent. */
			resp->more = true;
			resp->dir_version = resp->n_peers ? d->entries[e->prev].version : since;
			if (asker && since < d->dropped)
				asker->resume = resp->dir_version;
			break;
		}
		budget -= e->line_len;
		resp->peers[resp->n_peers++] = e->pe;
	}
}

const struct dir_entry *dir_next(const struct directory *d, uint32_t *pos)
{
	*pos = *pos == DIR_NONE ? d->head : d->entries[*pos].next;
	return *pos == DIR_NONE ? NULL : &d->entries[*pos];
}
