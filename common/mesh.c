// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "array.h"
#include "hashtab.h"
#include "keyindex.h"
#include "log.h"
#include "mesh.h"

/*
 * How it works. Each directory entry is a record: the entry as the hub
 * sent it, what the checks made of it, and its path. The records say what
 * the device should hold (on: the peer, with the candidate being tried;
 * DIRECT: its addresses too) and what the actions handed out so far made
 * it hold (dev_*). mesh_next_action() hands out the difference, a peer at
 * a time, so the actions waiting are never more than two a peer, however
 * long the caller waits: a change undone before it was made costs nothing,
 * and none is lost.
 *
 * Our own entry (mesh_self_update(), or our key in the directory) gives
 * our endpoint and candidates, for the order of the others', and our
 * leased addresses, which no other entry may claim.
 */

/*
 * A DIRECT peer counts as receiving when its rx moved this recently: the
 * other end's keepalive comes every MESH_KEEPALIVE_S, and we see it at the
 * next slow read.
 */
#define MESH_RECEIVING_MS (MESH_KEEPALIVE_S * 1000 + MESH_READ_SLOW_MS)
/*
 * A probed peer that sent us something and shook no hand this long after
 * our add crossed our initiation with its own (see tie_break()).
 */
#define MESH_CROSSED_MS 250
/* A path that stayed direct this long starts its backoff over. */
#define MESH_BACKOFF_RESET_MS 60000
/* The probe budget's window. */
#define MESH_BUDGET_WINDOW_MS 1000
/*
 * Lines about refused directory entries: at most MESH_LOG_BURST in each
 * window. An entry is told about once per change already, but a hostile
 * hub can send a new bad entry in every answer, and ask for the next at
 * once (more=1).
 */
#define MESH_LOG_BURST 10
#define MESH_LOG_WINDOW_MS 10000
/* Records: MESH_MAX_PEERS live ones, and as many that left the directory
 * and wait for their removal from the device to be made. */
#define MESH_MAX_RECORDS (2 * MESH_MAX_PEERS)
#define NS_PER_MS 1000000

/* Why a directory entry is not a peer we talk to directly. */
enum refusal {
	REFUSE_NONE,
	REFUSE_ZERO_KEY,
	REFUSE_HUB,
	REFUSE_ADMIN,
	REFUSE_NO_ADDRESS,
	REFUSE_NOT_HOST,
	REFUSE_OUTSIDE,
	REFUSE_HUB_ROUTE,
	REFUSE_OURS,
	REFUSE_TAKEN,
};

struct mesh_peer {
	uint8_t key[WG_KEY_LEN];
	struct wgd_peer_entry entry; /* as the hub last sent it */
	enum refusal refused;        /* REFUSE_NONE: a peer we may talk to */
	bool confirmed;              /* sent again since the last reset */
	bool gone;                   /* left: off the device, then forgotten */

	/* The candidates that passed the checks, in the order they are tried. */
	unsigned n_cand;
	struct wgd_endpoint cand[WGD_MAX_CANDIDATES + 1];

	enum mesh_path path;
	uint64_t since_ms;
	uint32_t backoff_ms; /* the next LOST waits this long */
	uint64_t direct_ms;  /* when it last went DIRECT */
	bool moved;          /* DIRECT, and it or we moved since: see peer_quiet() */

	/*
	 * Probing. due: an add is wanted, and waits for the probe budget.
	 * on: the peer should be on the device, added with probe_ep as the
	 * gen'th add. next_ms: PROBING, when to go on to the next candidate;
	 * LOST, when to probe again.
	 */
	unsigned cand_i;
	bool due, on;
	uint32_t gen;
	struct wgd_endpoint probe_ep;
	uint64_t hs_after_ms; /* handshakes from before are not ours */
	uint64_t next_ms;
	bool switching;
	uint64_t switch_ms;
	/* Crossed initiations: added again once this round, at readd_ep
	 * when it is set (tie_break()). */
	bool tie_broken;
	struct wgd_endpoint readd_ep;

	/* What the device reads said. */
	uint64_t rx;                 /* the last rx count read */
	uint64_t rx_ms;              /* when it last moved */
	bool rx_moved;               /* since the add, or the last check */
	struct wgd_endpoint seen_ep; /* the device's endpoint for it */
	uint32_t read_gen;           /* the last read that showed it */

	/* The device as the actions handed out leave it. */
	bool dev_present;
	uint32_t dev_gen;
	uint8_t dev_n_ips;
	struct wgd_ip dev_ips[2];
};

struct mesh {
	struct mesh_config cfg; /* routes and admin_keys: our copies */
	struct key_index admin_index;
	bool configured;

	bool has_self;
	struct wgd_peer_entry self;

	/* The records, in the order the directory gave them; the table finds
	 * them by key (linear search while it could not be built). */
	struct mesh_peer *peers;
	size_t n_peers, cap_peers;
	size_t n_live, n_gone;
	struct hashtab index;
	bool index_ok;

	uint64_t now_ms; /* the latest time an event brought */
	bool stopped;
	bool grace;
	uint64_t grace_until_ms;
	bool retake; /* an address may have come free */

	uint64_t budget_start_ms;
	unsigned budget_used;
	size_t probe_cursor; /* where the budget ran out: fairness */

	bool dirty; /* an action may be waiting */
	size_t act_cursor;

	uint32_t read_gen;

	uint64_t log_start_ms;
	unsigned log_lines, log_held;
};

const char *mesh_path_name(enum mesh_path p)
{
	switch (p) {
	case MESH_RELAY:
		return "relay";
	case MESH_PROBING:
		return "probing";
	case MESH_DIRECT:
		return "direct";
	case MESH_LOST:
		return "lost";
	}
	return "unknown";
}

/* Logging. */

static const char *key_b64(const uint8_t key[WG_KEY_LEN], char buf[WG_KEY_B64_LEN])
{
	wgkey_to_base64(buf, key);
	return buf;
}

#define EP_STRLEN (INET6_ADDRSTRLEN + 8)

static const char *ep_format(const struct wgd_endpoint *ep, char buf[EP_STRLEN])
{
	char a[WGD_IP_STRLEN];

	if (!ep->addr.family) {
		snprintf(buf, EP_STRLEN, "(none)");
		return buf;
	}
	wgd_ip_format_addr(&ep->addr, a, sizeof(a));
	snprintf(buf, EP_STRLEN, ep->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a,
		 (unsigned)ep->port);
	return buf;
}

/* A new window of log lines, with a word on those held back in the last. */
static void log_window(struct mesh *m)
{
	if (m->now_ms - m->log_start_ms < MESH_LOG_WINDOW_MS && m->now_ms >= m->log_start_ms)
		return;
	if (m->log_held)
		log_warnx("mesh: %u more bad directory entries were not logged", m->log_held);
	m->log_start_ms = m->now_ms;
	m->log_lines = 0;
	m->log_held = 0;
}

/* Whether a line about the hub's directory may go out now. */
static bool log_pass(struct mesh *m)
{
	log_window(m);
	if (m->log_lines >= MESH_LOG_BURST) {
		m->log_held++;
		return false;
	}
	m->log_lines++;
	return true;
}

/* Finding records. */

struct key_query {
	const struct mesh_peer *peers;
	const uint8_t *key;
};

static bool key_match(uint32_t idx, const void *ctx)
{
	const struct key_query *q = ctx;

	return !memcmp(q->peers[idx].key, q->key, WG_KEY_LEN);
}

static uint32_t key_hash(const struct mesh *m, const uint8_t key[WG_KEY_LEN])
{
	return hashtab_hash(&m->index, key, WG_KEY_LEN);
}

static struct mesh_peer *peer_find(const struct mesh *m, const uint8_t key[WG_KEY_LEN])
{
	if (m->index_ok) {
		const struct key_query q = { m->peers, key };
		uint32_t idx = hashtab_find(&m->index, key_hash(m, key), key_match, &q);

		return idx == HASHTAB_NONE ? NULL : &m->peers[idx];
	}
	for (size_t i = 0; i < m->n_peers; i++) {
		if (!memcmp(m->peers[i].key, key, WG_KEY_LEN))
			return &m->peers[i];
	}
	return NULL;
}

/* Builds the table afresh; on failure lookups search the array. */
static void reindex(struct mesh *m)
{
	hashtab_free(&m->index);
	m->index_ok = false;
	if (hashtab_init(&m->index) || hashtab_reserve(&m->index, m->n_peers))
		return;
	for (size_t i = 0; i < m->n_peers; i++) {
		if (hashtab_insert(&m->index, key_hash(m, m->peers[i].key), (uint32_t)i))
			return;
	}
	m->index_ok = true;
}

/* Forgets the records that left and whose removal was handed out. */
static void compact(struct mesh *m)
{
	size_t kept = 0;

	if (!m->n_gone)
		return;
	for (size_t i = 0; i < m->n_peers; i++) {
		const struct mesh_peer *p = &m->peers[i];

		if (p->gone && !p->dev_present && !p->dev_n_ips) {
			m->n_gone--;
			continue;
		}
		if (kept != i)
			m->peers[kept] = *p;
		kept++;
	}
	if (kept == m->n_peers)
		return;
	m->n_peers = kept;
	m->act_cursor = 0;
	m->probe_cursor = 0;
	reindex(m);
}

static struct mesh_peer *peer_new(struct mesh *m, const uint8_t key[WG_KEY_LEN], uint64_t now)
{
	struct mesh_peer *p;

	if (array_reserve(&m->peers, &m->cap_peers, m->n_peers, sizeof(*m->peers), 16))
		return NULL;
	p = &m->peers[m->n_peers];
	memset(p, 0, sizeof(*p));
	memcpy(p->key, key, WG_KEY_LEN);
	p->path = MESH_RELAY;
	p->since_ms = now;
	p->backoff_ms = MESH_BACKOFF_MIN_MS;
	p->confirmed = true;
	if (!m->index_ok || hashtab_insert(&m->index, key_hash(m, key), (uint32_t)m->n_peers)) {
		m->n_peers++;
		reindex(m);
	} else {
		m->n_peers++;
	}
	m->n_live++;
	return p;
}

/* Addresses and endpoints. */

static bool addr_same(const struct wgd_ip *a, const struct wgd_ip *b)
{
	return a->family && a->family == b->family &&
	       !memcmp(a->bytes, b->bytes, wgd_ip_len(a->family));
}

static bool ip_same(const struct wgd_ip *a, const struct wgd_ip *b)
{
	return a->family == b->family && a->cidr == b->cidr &&
	       (!a->family || !memcmp(a->bytes, b->bytes, wgd_ip_len(a->family)));
}

static bool ep_same(const struct wgd_endpoint *a, const struct wgd_endpoint *b)
{
	return a->port == b->port && ip_same(&a->addr, &b->addr);
}

static bool entry_same(const struct wgd_peer_entry *a, const struct wgd_peer_entry *b)
{
	if (a->has_ip4 != b->has_ip4 || a->has_ip6 != b->has_ip6 || a->port != b->port ||
	    a->n_cand != b->n_cand || !ep_same(&a->endpoint, &b->endpoint))
		return false;
	if ((a->has_ip4 && !ip_same(&a->ip4, &b->ip4)) ||
	    (a->has_ip6 && !ip_same(&a->ip6, &b->ip6)))
		return false;
	for (unsigned i = 0; i < a->n_cand && i < WGD_MAX_CANDIDATES; i++) {
		if (!ip_same(&a->cand[i], &b->cand[i]))
			return false;
	}
	return true;
}

/* Whether a host address is itself one of the routes: the hub peer then
 * holds exactly that prefix, and WireGuard would move it off the hub. */
static bool is_route(const struct mesh *m, const struct wgd_ip *a)
{
	for (size_t i = 0; i < m->cfg.n_routes; i++) {
		if (ip_same(&m->cfg.routes[i], a))
			return true;
	}
	return false;
}

static bool in_routes(const struct mesh *m, const struct wgd_ip *a)
{
	for (size_t i = 0; i < m->cfg.n_routes; i++) {
		if (wgd_ip_contains(&m->cfg.routes[i], a))
			return true;
	}
	return false;
}

/*
 * Why a host address cannot be a peer's endpoint, or NULL when it can. Only
 * an address that other hosts could reach it at is tried: never the hub's
 * (that is the relay), never one inside the tunnel (that would send
 * WireGuard's packets into WireGuard).
 */
static const char *addr_unusable(const struct mesh *m, const struct wgd_ip *a)
{
	if (a->family == AF_INET) {
		if (a->cidr != 32)
			return "not a host address";
		if (a->bytes[0] == 0)
			return "unspecified";
		if (a->bytes[0] == 127)
			return "loopback";
		if (a->bytes[0] == 169 && a->bytes[1] == 254)
			return "link-local";
		if (a->bytes[0] >= 224 && a->bytes[0] < 240)
			return "multicast";
		if (a->bytes[0] >= 240)
			return "reserved";
	} else if (a->family == AF_INET6) {
		if (a->cidr != 128)
			return "not a host address";
		if (wgd_ip_is_unspecified(a))
			return "unspecified";
		if (IN6_IS_ADDR_LOOPBACK(&a->ip6))
			return "loopback";
		if (wgd_ip_is_linklocal6(a))
			return "link-local";
		if (IN6_IS_ADDR_MULTICAST(&a->ip6))
			return "multicast";
		if (IN6_IS_ADDR_V4MAPPED(&a->ip6))
			return "IPv4-mapped";
	} else {
		return "of no known family";
	}
	if (addr_same(&m->cfg.hub_endpoint.addr, a))
		return "the hub's address";
	if (in_routes(m, a))
		return "inside the tunnel's routes";
	return NULL;
}

static bool same_list(const struct wgd_endpoint *a, unsigned n_a, const struct wgd_endpoint *b,
		      unsigned n_b)
{
	if (n_a != n_b)
		return false;
	for (unsigned i = 0; i < n_a; i++) {
		if (!ep_same(&a[i], &b[i]))
			return false;
	}
	return true;
}

/* Appends ep to list unless it is there already. */
static void cand_push(struct wgd_endpoint *list, unsigned *n, const struct wgd_endpoint *ep)
{
	for (unsigned i = 0; i < *n; i++) {
		if (ep_same(&list[i], ep))
			return;
	}
	if (*n < WGD_MAX_CANDIDATES + 1)
		list[(*n)++] = *ep;
}

struct cand_drops {
	unsigned n;
	const char *why; /* of the first */
	struct wgd_endpoint first;
};

static void drop(struct cand_drops *d, const struct wgd_endpoint *ep, const char *why)
{
	if (!d->n++) {
		d->why = why;
		d->first = *ep;
	}
}

/*
 * The candidates of a peer in the order they are tried (docs/mesh.md):
 * its LAN addresses first when its public address is ours (one NAT, which
 * most likely does no hairpin), then its IPv6 addresses when we have IPv6
 * ourselves, then the endpoint the hub sees. Those failing the checks are
 * counted in d.
 */
static unsigned order_candidates(const struct mesh *m, const struct wgd_peer_entry *e,
				 struct wgd_endpoint out[WGD_MAX_CANDIDATES + 1],
				 struct cand_drops *d)
{
	struct wgd_endpoint cand[WGD_MAX_CANDIDATES], ep = { { 0 }, 0 };
	unsigned n_ok = 0, n = 0;
	bool same_nat = false, have6 = false;
	const char *why;

	for (unsigned i = 0; i < e->n_cand && i < WGD_MAX_CANDIDATES; i++) {
		struct wgd_endpoint c = { e->cand[i], e->port };

		why = addr_unusable(m, &c.addr);
		if (!why && !e->port)
			why = "given without a listen port";
		if (why)
			drop(d, &c, why);
		else
			cand[n_ok++] = c;
	}
	if (e->endpoint.addr.family) {
		why = addr_unusable(m, &e->endpoint.addr);
		if (!why && !e->endpoint.port)
			why = "at port 0";
		if (why)
			drop(d, &e->endpoint, why);
		else
			ep = e->endpoint;
	}

	if (m->has_self) {
		same_nat = ep.addr.family && addr_same(&m->self.endpoint.addr, &ep.addr);
		for (unsigned i = 0; i < m->self.n_cand && i < WGD_MAX_CANDIDATES; i++)
			have6 |= m->self.cand[i].family == AF_INET6;
	}
	for (unsigned i = 0; same_nat && i < n_ok; i++) {
		if (cand[i].addr.family == AF_INET)
			cand_push(out, &n, &cand[i]);
	}
	for (unsigned i = 0; have6 && i < n_ok; i++) {
		if (cand[i].addr.family == AF_INET6)
			cand_push(out, &n, &cand[i]);
	}
	if (ep.addr.family)
		cand_push(out, &n, &ep);
	return n;
}

/* Whether another peer we talk to holds the address a. */
static bool addr_taken(const struct mesh *m, const struct mesh_peer *self, const struct wgd_ip *a)
{
	for (size_t i = 0; i < m->n_peers; i++) {
		const struct mesh_peer *p = &m->peers[i];

		if (p == self || p->gone || p->refused)
			continue;
		if ((p->entry.has_ip4 && ip_same(&p->entry.ip4, a)) ||
		    (p->entry.has_ip6 && ip_same(&p->entry.ip6, a)))
			return true;
	}
	return false;
}

static enum refusal check_addr(const struct mesh *m, const struct mesh_peer *p,
			       const struct wgd_ip *a, int family, const struct wgd_ip *ours)
{
	if (a->family != family || a->cidr != wgd_ip_bits(a->family))
		return REFUSE_NOT_HOST;
	if (!in_routes(m, a))
		return REFUSE_OUTSIDE;
	if (is_route(m, a))
		return REFUSE_HUB_ROUTE;
	if (ours && ip_same(ours, a))
		return REFUSE_OURS;
	if (addr_taken(m, p, a))
		return REFUSE_TAKEN;
	return REFUSE_NONE;
}

/* The checks of an entry as a whole; *bad is the address at fault. */
static enum refusal check_entry(const struct mesh *m, const struct mesh_peer *p,
				const struct wgd_ip **bad)
{
	const struct wgd_peer_entry *e = &p->entry;
	const struct wgd_peer_entry *s = m->has_self ? &m->self : NULL;
	enum refusal r;

	*bad = NULL;
	if (wgkey_is_zero(p->key))
		return REFUSE_ZERO_KEY;
	if (!memcmp(p->key, m->cfg.hub_key, WG_KEY_LEN))
		return REFUSE_HUB;
	if (key_index_find(&m->admin_index, p->key) != SIZE_MAX)
		return REFUSE_ADMIN;
	if (!e->has_ip4 && !e->has_ip6)
		return REFUSE_NO_ADDRESS;
	if (e->has_ip4) {
		*bad = &e->ip4;
		r = check_addr(m, p, &e->ip4, AF_INET, s && s->has_ip4 ? &s->ip4 : NULL);
		if (r)
			return r;
	}
	if (e->has_ip6) {
		*bad = &e->ip6;
		r = check_addr(m, p, &e->ip6, AF_INET6, s && s->has_ip6 ? &s->ip6 : NULL);
		if (r)
			return r;
	}
	*bad = NULL;
	return REFUSE_NONE;
}

static const char *refusal_text(enum refusal r)
{
	switch (r) {
	case REFUSE_NONE:
		break;
	case REFUSE_ZERO_KEY:
		return "its key is all zeros";
	case REFUSE_HUB:
		return "it is the hub";
	case REFUSE_ADMIN:
		return "it is a peer the administrator configured";
	case REFUSE_NO_ADDRESS:
		return "it has no address";
	case REFUSE_NOT_HOST:
		return "is not a /32 or /128";
	case REFUSE_OUTSIDE:
		return "lies outside the tunnel's routes";
	case REFUSE_HUB_ROUTE:
		return "is a route of its own through the hub (push a shorter prefix)";
	case REFUSE_OURS:
		return "is ours";
	case REFUSE_TAKEN:
		return "is another peer's";
	}
	return "";
}

static void log_refusal(struct mesh *m, const struct mesh_peer *p, const struct wgd_ip *bad)
{
	char k[WG_KEY_B64_LEN], a[WGD_IP_STRLEN];

	if (!log_pass(m))
		return;
	if (bad)
		log_warnx("mesh: directory entry %s refused: its address %s %s; the hub sent it",
			  key_b64(p->key, k), wgd_ip_format(bad, a, sizeof(a)),
			  refusal_text(p->refused));
	else
		log_warnx("mesh: directory entry %s refused: %s; the hub sent it",
			  key_b64(p->key, k), refusal_text(p->refused));
}

/* Transitions. */

static void set_path(struct mesh_peer *p, enum mesh_path path, uint64_t now)
{
	if (p->path != path) {
		p->path = path;
		p->since_ms = now;
	}
}

/* Off the device, its traffic through the hub, nothing planned. */
static void peer_relay(struct mesh *m, struct mesh_peer *p, uint64_t now)
{
	p->on = false;
	p->due = false;
	p->switching = false;
	p->moved = false;
	set_path(p, MESH_RELAY, now);
	m->dirty = true;
}

/*
 * The candidates from the first, as soon as the budget allows. A peer on
 * the device stays there, with the endpoint it has, until then; a DIRECT
 * one gives its addresses back to the hub at once.
 */
static void peer_probe(struct mesh *m, struct mesh_peer *p, uint64_t now)
{
	if (p->refused || p->gone || !p->n_cand) {
		peer_relay(m, p, now);
		return;
	}
	p->cand_i = 0;
	p->due = true;
	p->switching = false;
	p->moved = false;
	p->tie_broken = false;
	memset(&p->readd_ep, 0, sizeof(p->readd_ep));
	p->hs_after_ms = now;
	if (p->path == MESH_DIRECT)
		set_path(p, MESH_PROBING, now);
	m->dirty = true;
}

/* The budget allows an add: candidate cand_i goes on the device. */
static void peer_grant(struct mesh *m, struct mesh_peer *p, uint64_t now)
{
	char k[WG_KEY_B64_LEN], e[EP_STRLEN];

	if (p->cand_i >= p->n_cand)
		p->cand_i = 0;
	p->due = false;
	p->on = true;
	p->gen++;
	p->probe_ep = p->readd_ep.addr.family ? p->readd_ep : p->cand[p->cand_i];
	memset(&p->readd_ep, 0, sizeof(p->readd_ep));
	p->hs_after_ms = now;
	/* A fresh peer counts from zero. */
	p->rx = 0;
	p->rx_ms = now;
	p->rx_moved = false;
	p->switching = false;
	p->moved = false;
	memset(&p->seen_ep, 0, sizeof(p->seen_ep));
	p->next_ms = now + (p->cand_i + 1 < p->n_cand ? MESH_CANDIDATE_MS : MESH_RETRY_MS);
	set_path(p, MESH_PROBING, now);
	m->dirty = true;
	log_debug("mesh: %s: probing %s (%u of %u)", key_b64(p->key, k), ep_format(&p->probe_ep, e),
		  p->cand_i + 1, p->n_cand);
}

static void peer_switch(struct mesh *m, struct mesh_peer *p, uint64_t now)
{
	char k[WG_KEY_B64_LEN], e[EP_STRLEN];

	p->switching = false;
	p->due = false;
	p->direct_ms = now;
	p->rx_ms = now;
	set_path(p, MESH_DIRECT, now);
	m->dirty = true;
	log_info("mesh: %s: direct via %s", key_b64(p->key, k),
		 ep_format(p->seen_ep.addr.family ? &p->seen_ep : &p->probe_ep, e));
}

/* Off the device until the backoff passes, then probing again. */
static void peer_lose(struct mesh *m, struct mesh_peer *p, uint64_t now)
{
	uint32_t wait;

	if (p->path == MESH_DIRECT && now - p->direct_ms >= MESH_BACKOFF_RESET_MS)
		p->backoff_ms = MESH_BACKOFF_MIN_MS;
	wait = p->backoff_ms;
	p->backoff_ms = wait * 2 < MESH_BACKOFF_MAX_MS ? wait * 2 : MESH_BACKOFF_MAX_MS;
	p->on = false;
	p->due = false;
	p->switching = false;
	p->moved = false;
	p->next_ms = now + wait;
	set_path(p, MESH_LOST, now);
	m->dirty = true;
}

/*
 * A DIRECT peer went quiet. When the directory said, while the path was
 * direct, that the peer's endpoint or ours moved, the path most likely
 * broke with the move: its new candidates are tried now, as they would be
 * had the news come after the silence, not after a backoff meant for paths
 * that fail on their own. Either way its addresses go back to the hub.
 */
static void peer_quiet(struct mesh *m, struct mesh_peer *p, uint64_t now)
{
	char k[WG_KEY_B64_LEN], e[EP_STRLEN];

	ep_format(&p->seen_ep, e);
	if (p->moved) {
		peer_probe(m, p, now);
		log_info("mesh: %s went quiet on %s after a move: probing its new candidates",
			 key_b64(p->key, k), e);
		return;
	}
	peer_lose(m, p, now);
	log_info("mesh: %s went quiet on %s: through the hub again, probing in %u s",
		 key_b64(p->key, k), e, (unsigned)((p->next_ms - now) / 1000));
}

/* Left the directory: off the device, then forgotten. */
static void peer_gone(struct mesh *m, struct mesh_peer *p, uint64_t now)
{
	peer_relay(m, p, now);
	p->gone = true;
	p->n_cand = 0;
	m->n_live--;
	m->n_gone++;
	m->retake = true;
}

/*
 * Runs the checks on p's entry again, after it or what it is checked
 * against changed, and moves p on: a refused peer leaves the device, and a
 * new list of candidates is tried from its first unless the path is direct.
 */
static void peer_evaluate(struct mesh *m, struct mesh_peer *p, uint64_t now, bool changed)
{
	struct wgd_endpoint old[WGD_MAX_CANDIDATES + 1];
	unsigned n_old = p->n_cand;
	enum refusal was = p->refused;
	struct cand_drops d = { 0 };
	const struct wgd_ip *bad;
	char k[WG_KEY_B64_LEN], e[EP_STRLEN];

	memcpy(old, p->cand, sizeof(old));
	/* Its addresses may have changed, and a direct peer's with them. */
	m->dirty = true;
	p->refused = check_entry(m, p, &bad);
	if (p->refused) {
		if (changed || p->refused != was)
			log_refusal(m, p, bad);
		if (p->refused != was)
			m->retake = true;
		if (p->refused == REFUSE_ADMIN && p->dev_present) {
			/* The administrator's now: ours no longer to remove. */
			p->dev_present = false;
			p->dev_n_ips = 0;
		}
		p->n_cand = 0;
		peer_relay(m, p, now);
		return;
	}
	if (was)
		m->retake = true;
	memset(p->cand, 0, sizeof(p->cand));
	p->n_cand = order_candidates(m, &p->entry, p->cand, &d);
	if (d.n && changed && log_pass(m)) {
		log_warnx("mesh: directory entry %s: %u address%s ignored, %s: %s",
			  key_b64(p->key, k), d.n, d.n > 1 ? "es" : "", ep_format(&d.first, e),
			  d.why);
	}
	if (!was && same_list(old, n_old, p->cand, p->n_cand))
		return;
	/* A direct path that works needs no candidates; if it goes quiet,
	 * they are tried at once. */
	if (p->path != MESH_DIRECT)
		peer_probe(m, p, now);
	else
		p->moved = true;
}

static void revalidate(struct mesh *m, uint64_t now)
{
	for (size_t i = 0; i < m->n_peers; i++) {
		if (!m->peers[i].gone)
			peer_evaluate(m, &m->peers[i], now, false);
	}
}

/* Entries refused for an address another peer held: it may be free now. */
static void retake(struct mesh *m, uint64_t now)
{
	while (m->retake) {
		m->retake = false;
		for (size_t i = 0; i < m->n_peers; i++) {
			struct mesh_peer *p = &m->peers[i];

			if (!p->gone && p->refused == REFUSE_TAKEN)
				peer_evaluate(m, p, now, false);
		}
	}
}

static bool budget_take(struct mesh *m, uint64_t now)
{
	if (now - m->budget_start_ms >= MESH_BUDGET_WINDOW_MS || now < m->budget_start_ms) {
		m->budget_start_ms = now;
		m->budget_used = 0;
	}
	if (m->budget_used >= MESH_PROBE_BUDGET)
		return false;
	m->budget_used++;
	return true;
}

/* The adds waiting, as many as the budget allows, taking turns. */
static void serve(struct mesh *m, uint64_t now)
{
	size_t n = m->n_peers;

	for (size_t k = 0; k < n; k++) {
		size_t i = (m->probe_cursor + k) % n;

		if (!m->peers[i].due)
			continue;
		if (!budget_take(m, now)) {
			m->probe_cursor = i;
			return;
		}
		peer_grant(m, &m->peers[i], now);
	}
}

/* Every event starts here. */
static bool event(struct mesh *m, uint64_t now)
{
	m->now_ms = now;
	if (m->stopped)
		return false;
	compact(m);
	return true;
}

/* Configuration. */

/* Whether cfg is what m has: the caller may pass it after every device
 * read, and checking every entry again costs a pass over all for each. */
static bool config_same(const struct mesh *m, const struct mesh_config *cfg)
{
	const struct mesh_config *c = &m->cfg;

	if (memcmp(c->self_key, cfg->self_key, WG_KEY_LEN) ||
	    memcmp(c->hub_key, cfg->hub_key, WG_KEY_LEN) ||
	    !ep_same(&c->hub_endpoint, &cfg->hub_endpoint) || c->n_routes != cfg->n_routes ||
	    c->n_admin_keys != cfg->n_admin_keys)
		return false;
	for (size_t i = 0; i < c->n_routes; i++) {
		if (!ip_same(&c->routes[i], &cfg->routes[i]))
			return false;
	}
	return !c->n_admin_keys ||
	       !memcmp(c->admin_keys, cfg->admin_keys, c->n_admin_keys * sizeof(*c->admin_keys));
}

int mesh_set_config(struct mesh *m, const struct mesh_config *cfg)
{
	struct wgd_ip *routes = NULL;
	uint8_t(*admin)[WG_KEY_LEN] = NULL;
	struct key_index ki;
	int ret;

	if (m->configured && config_same(m, cfg))
		return 0;
	memset(&ki, 0, sizeof(ki));
	if (cfg->n_routes) {
		routes = calloc(cfg->n_routes, sizeof(*routes));
		if (!routes)
			return -ENOMEM;
		memcpy(routes, cfg->routes, cfg->n_routes * sizeof(*routes));
	}
	if (cfg->n_admin_keys) {
		admin = calloc(cfg->n_admin_keys, sizeof(*admin));
		if (!admin) {
			free(routes);
			return -ENOMEM;
		}
		memcpy(admin, cfg->admin_keys, cfg->n_admin_keys * sizeof(*admin));
		ret = key_index_build(&ki, (const uint8_t(*)[WG_KEY_LEN])admin, cfg->n_admin_keys);
		if (ret) {
			free(admin);
			free(routes);
			return ret;
		}
	}
	free((void *)m->cfg.routes);
	free((void *)m->cfg.admin_keys);
	key_index_free(&m->admin_index);
	m->cfg = *cfg;
	m->cfg.routes = routes;
	m->cfg.admin_keys = (const uint8_t(*)[WG_KEY_LEN])admin;
	m->admin_index = ki;
	m->configured = true;
	if (m->stopped)
		return 0;
	compact(m);
	revalidate(m, m->now_ms);
	retake(m, m->now_ms);
	serve(m, m->now_ms);
	return 0;
}

struct mesh *mesh_new(const struct mesh_config *cfg)
{
	struct mesh *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	reindex(m);
	if (!m->index_ok || mesh_set_config(m, cfg)) {
		mesh_free(m);
		return NULL;
	}
	return m;
}

void mesh_free(struct mesh *m)
{
	if (!m)
		return;
	free((void *)m->cfg.routes);
	free((void *)m->cfg.admin_keys);
	key_index_free(&m->admin_index);
	hashtab_free(&m->index);
	free(m->peers);
	free(m);
}

/* The directory. */

static void self_update(struct mesh *m, const struct wgd_peer_entry *self, uint64_t now)
{
	struct wgd_endpoint old = m->self.endpoint;
	bool had = m->has_self, moved;
	char a[EP_STRLEN], b[EP_STRLEN];

	if (self->gone || (had && entry_same(&m->self, self)))
		return;
	m->self = *self;
	m->has_self = true;
	/* Our addresses and candidates are in the checks and the order. */
	revalidate(m, now);
	retake(m, now);
	moved = had && !ep_same(&old, &self->endpoint);
	if (!moved)
		return;
	/*
	 * Our NAT moved: what the peers learned of us is stale, and their
	 * packets to our old mapping are lost. A direct path that still
	 * receives is fine (the other end roams to our new address as soon as
	 * ours reach it); every other peer starts over at once.
	 */
	log_info("mesh: our endpoint moved from %s to %s: punching again", ep_format(&old, a),
		 ep_format(&self->endpoint, b));
	for (size_t i = 0; i < m->n_peers; i++) {
		struct mesh_peer *p = &m->peers[i];

		if (p->gone || p->refused || !p->n_cand)
			continue;
		if (p->path == MESH_DIRECT && now - p->rx_ms < MESH_RECEIVING_MS) {
			p->moved = true;
			continue;
		}
		peer_probe(m, p, now);
	}
}

void mesh_self_update(struct mesh *m, const struct wgd_peer_entry *self, uint64_t now_ms)
{
	if (!event(m, now_ms))
		return;
	self_update(m, self, now_ms);
	serve(m, now_ms);
}

void mesh_directory_reset(struct mesh *m, uint64_t now_ms)
{
	if (!event(m, now_ms))
		return;
	/* A restarted hub rebuilds its directory as its peers come back:
	 * the paths that work are kept meanwhile. */
	log_info("mesh: the hub's directory starts over: peers not in it within %u s are removed",
		 MESH_GRACE_MS / 1000);
	for (size_t i = 0; i < m->n_peers; i++)
		m->peers[i].confirmed = false;
	m->grace = true;
	m->grace_until_ms = now_ms + MESH_GRACE_MS;
}

/* A peer= line: whether it was taken. */
static bool apply_entry(struct mesh *m, const struct wgd_peer_entry *e, uint64_t now)
{
	struct mesh_peer *p = peer_find(m, e->key);
	struct wgd_endpoint was_ep;
	bool fresh = false;
	char k[WG_KEY_B64_LEN], a[EP_STRLEN];

	if (!p) {
		if (m->n_live >= MESH_MAX_PEERS || m->n_peers >= MESH_MAX_RECORDS) {
			if (log_pass(m))
				log_warnx(
					"mesh: directory entry %s ignored: %u peers already, the most kept",
					key_b64(e->key, k), MESH_MAX_PEERS);
			return false;
		}
		p = peer_new(m, e->key, now);
		if (!p) {
			log_warnx("mesh: directory entry %s ignored: out of memory",
				  key_b64(e->key, k));
			return false;
		}
		fresh = true;
	} else if (p->gone) {
		/* Back before its removal was made. */
		p->gone = false;
		m->n_gone--;
		m->n_live++;
		fresh = true;
	}
	p->confirmed = true;
	if (!fresh && entry_same(&p->entry, e))
		return !p->refused;
	/* Its old addresses may be free now. */
	if (!fresh && !p->refused)
		m->retake = true;
	was_ep = p->entry.endpoint;
	p->entry = *e;
	memcpy(p->entry.key, p->key, WG_KEY_LEN);
	if (p->entry.n_cand > WGD_MAX_CANDIDATES)
		p->entry.n_cand = WGD_MAX_CANDIDATES;
	peer_evaluate(m, p, now, true);
	/*
	 * Its NAT moved while we send to the mapping it had: that mapping is
	 * gone, and our NAT drops what now comes from its new one. Probed
	 * again at once, rather than once the path goes quiet and the backoff
	 * passes; the first add reaches it at its new address.
	 */
	if (!fresh && !p->refused && p->path == MESH_DIRECT && was_ep.addr.family &&
	    !ep_same(&was_ep, &p->entry.endpoint) && ep_same(&p->seen_ep, &was_ep)) {
		log_info("mesh: %s moved from %s: probing it again", key_b64(p->key, k),
			 ep_format(&was_ep, a));
		peer_probe(m, p, now);
	}
	return !p->refused;
}

size_t mesh_directory_apply(struct mesh *m, const struct wgd_peer_entry *e, size_t n,
			    uint64_t now_ms)
{
	size_t taken = 0;

	if (!event(m, now_ms))
		return 0;
	/* Our own entry first: the checks and the order of the others depend on it. */
	for (size_t i = 0; i < n; i++) {
		if (!e[i].gone && !memcmp(e[i].key, m->cfg.self_key, WG_KEY_LEN))
			self_update(m, &e[i], now_ms);
	}
	for (size_t i = 0; i < n; i++) {
		struct mesh_peer *p;

		if (!memcmp(e[i].key, m->cfg.self_key, WG_KEY_LEN)) {
			taken++;
			continue;
		}
		if (!e[i].gone) {
			taken += apply_entry(m, &e[i], now_ms);
			continue;
		}
		taken++;
		p = peer_find(m, e[i].key);
		if (p && !p->gone) {
			char k[WG_KEY_B64_LEN];

			if (!p->refused)
				log_info("mesh: %s left the directory", key_b64(p->key, k));
			peer_gone(m, p, now_ms);
		}
	}
	retake(m, now_ms);
	serve(m, now_ms);
	return taken;
}

/* The device and time. */

/* A handshake the device shows for a PROBING peer: both ends switch at
 * its time plus MESH_SWITCH_DELAY_MS, on the real-time clock they share. */
static void handshake(struct mesh *m, struct mesh_peer *p, int64_t hs_ns, uint64_t now,
		      int64_t real_ns)
{
	const int64_t ms = NS_PER_MS;
	int64_t hs_boot_ns, at_ns, now_ns;
	uint64_t at;

	if (hs_ns <= 0 || real_ns < 0 || now > (uint64_t)(INT64_MAX / ms) - MESH_SWITCH_DELAY_MS)
		return;
	now_ns = (int64_t)now * ms;
	hs_boot_ns = now_ns + (hs_ns - real_ns);
	/* From before our add: an old session's. Both clocks are read in
	 * whole milliseconds, hence the one of slack. */
	if (hs_boot_ns + ms <= (int64_t)p->hs_after_ms * ms)
		return;
	at_ns = hs_boot_ns + MESH_SWITCH_DELAY_MS * ms;
	if (at_ns <= now_ns) {
		peer_switch(m, p, now);
		return;
	}
	at = (uint64_t)((at_ns + ms - 1) / ms);
	/* A handshake in the future: the real-time clock stepped back. */
	if (at > now + MESH_SWITCH_DELAY_MS)
		at = now + MESH_SWITCH_DELAY_MS;
	p->switching = true;
	p->switch_ms = at;
	p->due = false;
}

/*
 * Both ends add each other at once, so both send an initiation at once.
 * When neither NAT drops the first one (both still map the other, or there
 * is no NAT), each end takes the other's initiation as responder, which
 * drops its own as initiator, and then refuses the response to it: no
 * session either way until WireGuard tries again 5 s later. It shows as a
 * peer that sent us something and shook no hand. The end with the greater
 * key then adds the peer once more, at the endpoint its packets came from:
 * the fresh peer initiates at once, and the other end, which has nothing
 * of its own in flight now, answers.
 */
static void tie_break(struct mesh *m, struct mesh_peer *p, uint64_t now)
{
	char k[WG_KEY_B64_LEN];

	/* What arrived in the last moments may be the first half of a
	 * handshake still completing: re-adding then would throw away a
	 * session the other end already has, and sends on. */
	if (p->tie_broken || !p->rx || now - p->hs_after_ms < MESH_CROSSED_MS ||
	    now - p->rx_ms < MESH_CROSSED_MS / 2 || memcmp(m->cfg.self_key, p->key, WG_KEY_LEN) <= 0)
		return;
	p->tie_broken = true;
	if (p->seen_ep.addr.family && p->seen_ep.port && !addr_unusable(m, &p->seen_ep.addr))
		p->readd_ep = p->seen_ep;
	p->due = true;
	m->dirty = true;
	log_debug("mesh: %s: our initiations crossed: adding it again", key_b64(p->key, k));
}

void mesh_device_read(struct mesh *m, const struct mesh_peer_seen *seen, size_t n, uint64_t now_ms,
		      int64_t real_ns)
{
	char k[WG_KEY_B64_LEN];

	if (!event(m, now_ms))
		return;
	m->read_gen++;
	for (size_t i = 0; i < n; i++) {
		struct mesh_peer *p = peer_find(m, seen[i].key);

		if (!p || p->gone || !p->dev_present)
			continue;
		p->read_gen = m->read_gen;
		p->seen_ep = seen[i].endpoint;
		if (seen[i].rx_bytes != p->rx) {
			p->rx = seen[i].rx_bytes;
			p->rx_ms = now_ms;
			p->rx_moved = true;
		}
		if (p->path == MESH_PROBING && p->on && !p->switching && p->dev_gen == p->gen)
			handshake(m, p, seen[i].last_handshake_ns, now_ms, real_ns);
		if (p->path == MESH_PROBING && p->on && !p->switching && !p->due &&
		    p->dev_gen == p->gen)
			tie_break(m, p, now_ms);
	}
	for (size_t i = 0; i < m->n_peers; i++) {
		struct mesh_peer *p = &m->peers[i];

		/* Only a peer whose add was handed out is looked for. */
		if (p->gone || !p->on || !p->dev_present || p->dev_gen != p->gen)
			continue;
		if (p->read_gen != m->read_gen) {
			log_info("mesh: %s is missing from the device: adding it again",
				 key_b64(p->key, k));
			p->dev_present = false;
			p->dev_n_ips = 0;
			p->on = false;
			p->switching = false;
			if (p->path == MESH_DIRECT)
				set_path(p, MESH_PROBING, now_ms);
			if (p->n_cand) {
				p->due = true;
				p->hs_after_ms = now_ms;
			} else {
				peer_relay(m, p, now_ms);
			}
			m->dirty = true;
			continue;
		}
		if (p->path == MESH_DIRECT && now_ms - p->rx_ms >= MESH_QUIET_MS)
			peer_quiet(m, p, now_ms);
	}
	serve(m, now_ms);
}

void mesh_tick(struct mesh *m, uint64_t now_ms, int64_t real_ns)
{
	(void)real_ns;
	if (!event(m, now_ms))
		return;
	/* Lines held back are told even when no new line comes. */
	if (m->log_held)
		log_window(m);
	if (m->grace && now_ms >= m->grace_until_ms) {
		char k[WG_KEY_B64_LEN];

		m->grace = false;
		for (size_t i = 0; i < m->n_peers; i++) {
			struct mesh_peer *p = &m->peers[i];

			if (p->gone || p->confirmed)
				continue;
			if (!p->refused)
				log_info("mesh: %s is not in the hub's new directory: removed",
					 key_b64(p->key, k));
			peer_gone(m, p, now_ms);
		}
		retake(m, now_ms);
	}
	for (size_t i = 0; i < m->n_peers; i++) {
		struct mesh_peer *p = &m->peers[i];

		if (p->gone || p->refused)
			continue;
		if (p->switching) {
			if (now_ms >= p->switch_ms)
				peer_switch(m, p, now_ms);
			continue;
		}
		if (p->path == MESH_LOST && now_ms >= p->next_ms) {
			peer_probe(m, p, now_ms);
			continue;
		}
		if (p->path != MESH_PROBING || !p->on || p->due || now_ms < p->next_ms)
			continue;
		if (p->rx_moved) {
			/* The other end reaches us: WireGuard roams to where its
			 * packets come from, so the peer stays as it is while
			 * they keep coming. */
			p->rx_moved = false;
			p->next_ms = now_ms + MESH_RETRY_MS;
			continue;
		}
		/* The next candidate; after the last, the list again. */
		p->cand_i = p->cand_i + 1 < p->n_cand ? p->cand_i + 1 : 0;
		p->due = true;
		p->tie_broken = false;
		memset(&p->readd_ep, 0, sizeof(p->readd_ep));
		m->dirty = true;
	}
	serve(m, now_ms);
}

/* Actions. */

static uint8_t entry_ips(const struct mesh_peer *p, struct wgd_ip ips[2])
{
	uint8_t n = 0;

	if (p->entry.has_ip4)
		ips[n++] = p->entry.ip4;
	if (p->entry.has_ip6)
		ips[n++] = p->entry.ip6;
	return n;
}

/*
 * The next action that brings the device to what p wants, in the order
 * that never leaves traffic astray: the addresses leave before the peer,
 * and come only once it is there.
 */
static bool peer_action(struct mesh_peer *p, struct mesh_action *a)
{
	bool want_ips = p->on && p->path == MESH_DIRECT;
	bool add = p->on && (!p->dev_present || p->dev_gen != p->gen);
	struct wgd_ip ips[2];
	uint8_t n_ips = entry_ips(p, ips);

	memset(a, 0, sizeof(*a));
	memcpy(a->key, p->key, WG_KEY_LEN);
	if (p->dev_n_ips && !add &&
	    (!want_ips || p->dev_n_ips != n_ips || !ip_same(&p->dev_ips[0], &ips[0]) ||
	     (n_ips > 1 && !ip_same(&p->dev_ips[1], &ips[1])))) {
		a->kind = MESH_ACT_ALLOWEDIPS_DEL;
		a->n_ips = p->dev_n_ips;
		memcpy(a->ips, p->dev_ips, sizeof(a->ips));
		p->dev_n_ips = 0;
		return true;
	}
	if (!p->on && p->dev_present) {
		a->kind = MESH_ACT_REMOVE_PEER;
		p->dev_present = false;
		p->dev_n_ips = 0;
		return true;
	}
	if (add) {
		/* Removed and added again: no allowed-IPs left. */
		a->kind = MESH_ACT_ADD_PEER;
		a->endpoint = p->probe_ep;
		a->keepalive_s = MESH_KEEPALIVE_S;
		p->dev_present = true;
		p->dev_gen = p->gen;
		p->dev_n_ips = 0;
		return true;
	}
	if (want_ips && !p->dev_n_ips && n_ips) {
		a->kind = MESH_ACT_ALLOWEDIPS_ADD;
		a->n_ips = n_ips;
		memcpy(a->ips, ips, sizeof(a->ips));
		p->dev_n_ips = n_ips;
		memcpy(p->dev_ips, ips, sizeof(p->dev_ips));
		return true;
	}
	return false;
}

bool mesh_next_action(struct mesh *m, struct mesh_action *out)
{
	size_t n = m->n_peers;

	if (!m->dirty)
		return false;
	/* From the peer of the last action on: each peer's actions in a row. */
	for (size_t k = 0; k < n; k++) {
		size_t i = (m->act_cursor + k) % n;

		if (peer_action(&m->peers[i], out)) {
			m->act_cursor = i;
			return true;
		}
	}
	/* All made: the next ones start from the first peer again. */
	m->dirty = false;
	m->act_cursor = 0;
	return false;
}

static const char *action_name(enum mesh_action_kind kind)
{
	switch (kind) {
	case MESH_ACT_ADD_PEER:
		return "add";
	case MESH_ACT_REMOVE_PEER:
		return "remove";
	case MESH_ACT_ALLOWEDIPS_ADD:
		return "add the allowed-IPs of";
	case MESH_ACT_ALLOWEDIPS_DEL:
		return "remove the allowed-IPs of";
	}
	return "act on";
}

void mesh_action_failed(struct mesh *m, const struct mesh_action *a, int err, uint64_t now_ms)
{
	char k[WG_KEY_B64_LEN];
	struct mesh_peer *p;

	log_warnx("mesh: cannot %s peer %s: %s; it stays relayed through the hub",
		  action_name(a->kind), key_b64(a->key, k), strerror(err < 0 ? -err : err));
	if (!event(m, now_ms))
		return;
	p = peer_find(m, a->key);
	if (!p || p->gone || p->refused)
		return;
	switch (a->kind) {
	case MESH_ACT_ADD_PEER:
		/* Only the add of the current probe counts; the peer may be
		 * on the device half-way, so it is removed too. */
		if (p->on && p->dev_gen == p->gen && p->path == MESH_PROBING)
			peer_lose(m, p, now_ms);
		break;
	case MESH_ACT_ALLOWEDIPS_ADD:
		if (p->path == MESH_DIRECT)
			peer_lose(m, p, now_ms);
		break;
	case MESH_ACT_REMOVE_PEER:
	case MESH_ACT_ALLOWEDIPS_DEL:
		break;
	}
	serve(m, now_ms);
}

uint64_t mesh_next_wake(const struct mesh *m)
{
	uint64_t wake = UINT64_MAX;

	if (m->stopped)
		return UINT64_MAX;
	if (m->grace)
		wake = m->grace_until_ms;
	for (size_t i = 0; i < m->n_peers; i++) {
		const struct mesh_peer *p = &m->peers[i];
		uint64_t t;

		if (p->gone || p->refused)
			continue;
		if (p->due)
			t = m->budget_used >= MESH_PROBE_BUDGET ?
				    m->budget_start_ms + MESH_BUDGET_WINDOW_MS :
				    m->now_ms;
		else if (p->switching)
			t = p->switch_ms;
		else if ((p->path == MESH_PROBING && p->on) || p->path == MESH_LOST)
			t = p->next_ms;
		else
			continue;
		if (t < wake)
			wake = t;
	}
	return wake;
}

uint64_t mesh_next_read(const struct mesh *m)
{
	bool any = false;

	if (m->stopped)
		return UINT64_MAX;
	for (size_t i = 0; i < m->n_peers; i++) {
		const struct mesh_peer *p = &m->peers[i];

		if ((p->path == MESH_PROBING && p->on) || p->switching)
			return m->now_ms + MESH_READ_FAST_MS;
		any |= p->on || p->dev_present;
	}
	return any ? m->now_ms + MESH_READ_SLOW_MS : UINT64_MAX;
}

void mesh_stop(struct mesh *m)
{
	for (size_t i = 0; i < m->n_peers; i++) {
		struct mesh_peer *p = &m->peers[i];

		p->on = false;
		p->due = false;
		p->switching = false;
		/* Removing the peer takes its allowed-IPs with it. */
		p->dev_n_ips = 0;
	}
	m->stopped = true;
	m->grace = false;
	m->dirty = true;
}

bool mesh_owns(const struct mesh *m, const uint8_t key[WG_KEY_LEN])
{
	const struct mesh_peer *p = peer_find(m, key);

	return p && p->dev_present;
}

static bool listed(const struct mesh_peer *p)
{
	return !p->gone && !p->refused;
}

size_t mesh_peer_count(const struct mesh *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_peers; i++)
		n += listed(&m->peers[i]);
	return n;
}

void mesh_peer_status(const struct mesh *m, size_t i, struct mesh_peer_status *out)
{
	const struct mesh_peer *p = NULL;

	memset(out, 0, sizeof(*out));
	for (size_t j = 0; j < m->n_peers; j++) {
		if (listed(&m->peers[j]) && !i--) {
			p = &m->peers[j];
			break;
		}
	}
	if (!p)
		return;
	memcpy(out->key, p->key, WG_KEY_LEN);
	out->has_ip4 = p->entry.has_ip4;
	out->has_ip6 = p->entry.has_ip6;
	out->ip4 = p->entry.ip4;
	out->ip6 = p->entry.ip6;
	out->path = p->path;
	out->since_ms = p->since_ms;
	if (p->path == MESH_DIRECT)
		out->endpoint = p->seen_ep.addr.family ? p->seen_ep : p->probe_ep;
	else if (p->path == MESH_PROBING)
		out->endpoint = p->on && !p->due ? p->probe_ep : p->cand[p->cand_i];
	out->n_cand = p->n_cand;
	memcpy(out->cand, p->cand, sizeof(out->cand));
}
