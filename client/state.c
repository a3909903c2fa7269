// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * The client's state machine, in the manner of a DHCP client (RFC 2131,
 * 4.4 and figure 5): INIT or REBOOT without a lease, BOUND with one until
 * T1, RENEWING until T2, REBINDING until the lease expires. One function,
 * state_transition(), owns the timers; the backoff after a failed request
 * is set in state_request_failed().
 *
 *   INIT       RFC 2131 4.4.1, with SELECTING and REQUESTING as one
 *              exchange: one hub, so there is no offer to choose from.
 *   REBOOT     4.4.2's INIT-REBOOT and REBOOTING: the addresses last held
 *              are asked for again; refused, the client goes to INIT (3.2).
 *   BOUND      4.4.1 and 4.4.5: T1 and T2 are set from the lease.
 *   RENEWING   4.4.5: past T1, the same request to the same hub.
 *   REBINDING  4.4.5: past T2. With one hub there is no one else to ask,
 *              so it differs from RENEWING only in the hook's reason; at
 *              the end of the lease, the addresses go and it is INIT again
 *              (REBOOT, with them as hints).
 *
 * Retries follow 4.1's randomised exponential backoff, faster than its
 * 4 s to 64 s: the hub is one hop away inside the tunnel (see
 * state_request_failed()). The client's loop in main.c sends the requests;
 * nothing here does I/O but through struct client_sys.
 *
 * Whatever the hub answers, the client asks no faster than this allows: a
 * lease counts as at least LEASE_MIN_S, so T1 comes no sooner than half of
 * it, and an answer without a usable address is a failure, with backoff.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "../common/rng.h"
#include "client.h"

/* Retrying a failed renewal; without a lease, see state_request_failed(). */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 16000
#define INIT_BACKOFF_MIN_MS 250
/* Without a lease, wait 1/N of the time spent failing so far. */
#define INIT_BACKOFF_DIVISOR 4
/* leasestart is believed only this close to our own clock. */
#define CLOCK_SKEW_MAX_S 15

const char *client_state_name(enum client_state s)
{
#define X(e, n) [e] = n,
	static const char *const names[] = { CLIENT_STATES(X) };
#undef X
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static uint64_t jitter(uint64_t ms, unsigned percent)
{
	uint64_t spread = ms * percent / 100;

	return ms - spread + rng_below(2 * spread + 1);
}

void state_transition(struct client *cl, enum client_state to, uint64_t now_ms)
{
	struct lease_state *ls = &cl->lease;

	if (to != cl->state)
		log_debug("%s -> %s", client_state_name(cl->state), client_state_name(to));
	switch (to) {
	case CLIENT_INIT:
	case CLIENT_REBOOT:
		/* RFC 2131, 4.4.1 and 4.4.2: asked for at once; failures back
		 * off from here. */
		cl->next_try_ms = now_ms;
		break;
	case CLIENT_BOUND: {
		/* RFC 2131, 4.4.5: T1 at half the lease, T2 at seven eighths,
		 * T1 with some "fuzz" so that a hub's peers spread out. */
		uint64_t lease_ms = ls->expires_ms - now_ms;

		ls->t1_ms = now_ms + jitter(lease_ms / 2, 10);
		ls->t2_ms = now_ms + lease_ms / 8 * 7;
		cl->backoff_ms = 0;
		cl->next_try_ms = ls->t1_ms;
		break;
	}
	case CLIENT_RENEWING:
	case CLIENT_REBINDING:
		/* RFC 2131, 4.4.5: ask at once on reaching T1 (or T2 from
		 * BOUND); between them the backoff runs on. */
		if (cl->state != CLIENT_RENEWING && cl->state != CLIENT_REBINDING) {
			cl->backoff_ms = 0;
			cl->next_try_ms = now_ms;
		}
		break;
	}
	cl->state = to;
}

/*
 * When to try again after a failed request that started at started_ms.
 *
 * With a lease, the client has its addresses meanwhile: it waits 0.5 s,
 * doubling to 16 s, never past the end of the lease.
 *
 * Without one it has nothing until the hub answers, and the usual reason
 * for no answer is a server that is starting or restarting. Doubling makes
 * each wait as long as all the time before it, so a client could sit idle
 * for about as long again as the server was away. Instead it waits a
 * quarter of the time it has been failing, from 0.25 s up to 16 s: still
 * exponential, by 1.25 rather than 2, so a hub that stays away sees each
 * client slow down to one request per 16 s after about a minute; the 25 %
 * jitter keeps a crowd of clients from asking in step when it comes back.
 */
void state_request_failed(struct client *cl, uint64_t started_ms, uint64_t now_ms)
{
	uint64_t wait;

	if (!cl->backoff_ms)
		cl->failing_since_ms = started_ms;
	if (cl->lease.bound) {
		wait = cl->backoff_ms ? (uint64_t)cl->backoff_ms * 2 : BACKOFF_MIN_MS;
	} else {
		wait = (now_ms - cl->failing_since_ms) / INIT_BACKOFF_DIVISOR;
		if (wait < INIT_BACKOFF_MIN_MS)
			wait = INIT_BACKOFF_MIN_MS;
	}
	if (wait > BACKOFF_MAX_MS)
		wait = BACKOFF_MAX_MS;
	cl->backoff_ms = (uint32_t)wait;
	cl->next_try_ms = now_ms + jitter(wait, 25);
	if (cl->lease.bound && cl->next_try_ms > cl->lease.expires_ms)
		cl->next_try_ms = cl->lease.expires_ms;
}

void state_tick(struct client *cl, uint64_t now_ms)
{
	struct lease_state *ls = &cl->lease;

	if (!ls->bound)
		return;
	/* RFC 2131, 4.4.5: at the end of the lease, no address is kept and
	 * the client starts again from INIT. */
	if (now_ms >= ls->expires_ms) {
		log_warnx("the lease expired; removing its addresses and starting over");
		state_drop_lease(cl, "EXPIRE");
		cl->backoff_ms = 0;
		state_transition(cl, cl->has_hint4 || cl->has_hint6 ? CLIENT_REBOOT : CLIENT_INIT,
				 now_ms);
	} else if (now_ms >= ls->t2_ms && cl->state != CLIENT_REBINDING) {
		state_transition(cl, CLIENT_REBINDING, now_ms);
	} else if (now_ms >= ls->t1_ms && cl->state == CLIENT_BOUND) {
		state_transition(cl, CLIENT_RENEWING, now_ms);
	}
}

uint64_t state_next_wake(const struct client *cl)
{
	const struct lease_state *ls = &cl->lease;
	uint64_t wake = cl->link_up && !cl->requesting ? cl->next_try_ms : UINT64_MAX;

	if (ls->bound) {
		if (ls->expires_ms < wake)
			wake = ls->expires_ms;
		if (cl->state == CLIENT_BOUND && ls->t1_ms < wake)
			wake = ls->t1_ms;
		if (cl->state == CLIENT_RENEWING && ls->t2_ms < wake)
			wake = ls->t2_ms;
	}
	return wake;
}

int state_poll_timeout(const struct client *cl, uint64_t now_ms)
{
	uint64_t wake = state_next_wake(cl);

	if (wake <= now_ms)
		return 0;
	/* poll() takes an int of milliseconds: 24.8 days at most. A longer
	 * wait, cast, would go negative and never end. */
	return wake - now_ms > STATE_MAX_SLEEP_MS ? STATE_MAX_SLEEP_MS : (int)(wake - now_ms);
}

void state_build_request(const struct client *cl, struct wgd_msg *req)
{
	const struct lease_state *ls = &cl->lease;

	memset(req, 0, sizeof(*req));
	req->cmd = WGD_CMD_REQUEST_IP;
	req->version = 1;
	req->has_ip4 = req->has_ip6 = true;
	req->ip4.family = AF_INET;
	req->ip4.cidr = 32;
	req->ip6.family = AF_INET6;
	req->ip6.cidr = 128;
	if (ls->bound) {
		if (ls->has_ip4)
			req->ip4 = ls->ip4;
		if (ls->has_ip6)
			req->ip6 = ls->ip6;
		req->leasestart = ls->leasestart;
		req->leasetime = ls->leasetime;
	} else {
		if (cl->has_hint4)
			req->ip4 = cl->hint4;
		if (cl->has_hint6)
			req->ip6 = cl->hint6;
	}
}

void state_run_hook(struct client *cl, const char *reason, const struct lease_state *old,
		    const struct lease_state *new)
{
	struct hook_env env = {
		.reason = reason,
		.interface = cl->ifname,
		.new_ip4 = new && new->has_ip4 ? &new->ip4 : NULL,
		.new_ip6 = new && new->has_ip6 ? &new->ip6 : NULL,
		.old_ip4 = old && old->has_ip4 ? &old->ip4 : NULL,
		.old_ip6 = old && old->has_ip6 ? &old->ip6 : NULL,
	};
	const struct lease_state *cur = new ? new : old;
	struct wgd_ip routes[WGD_MAX_ROUTES];

	if (cur) {
		for (size_t i = 0; i < cur->n_routes; i++)
			routes[i] = cur->routes[i].dst;
		env.routes = routes;
		env.n_routes = cur->n_routes;
		env.lease_time = cur->leasetime;
		env.dns = cur->dns;
		env.n_dns = cur->n_dns;
		env.dns_search = cur->dns_search;
	}
	cl->sys->hook(cl, &env);
}

void state_drop_lease(struct client *cl, const char *reason)
{
	struct lease_state *ls = &cl->lease;

	if (ls->bound) {
		leasefile_save(cl, true);
		state_run_hook(cl, reason, ls, NULL);
	}
	configure_dns_remove(cl, ls);
	configure_addr(cl, ls->has_ip4, &ls->ip4, false, NULL, 0);
	configure_addr(cl, ls->has_ip6, &ls->ip6, false, NULL, 0);
	configure_routes(cl, ls, NULL, 0, NULL);
	memset(ls, 0, sizeof(*ls));
}

/* The lease's lifetime from now, in seconds: the hub's leasestart is
 * believed only when it agrees with our clock, and the result is bounded
 * both ways. */
static uint32_t lease_lifetime(const struct wgd_msg *resp, uint32_t leasetime)
{
	uint32_t now_real = clock_real_s(), lifetime = leasetime;

	if (resp->leasestart <= now_real && now_real - resp->leasestart <= CLOCK_SKEW_MAX_S)
		lifetime = leasetime > now_real - resp->leasestart ?
				   leasetime - (now_real - resp->leasestart) : 0;
	else if (resp->leasestart > now_real && resp->leasestart - now_real > CLOCK_SKEW_MAX_S)
		log_debug("leasestart %u is %us from our clock; counting from now",
			  resp->leasestart, resp->leasestart - now_real);
	if (lifetime < LEASE_MIN_S)
		lifetime = LEASE_MIN_S;
	if (lifetime > LIFETIME_MAX_S)
		lifetime = LIFETIME_MAX_S;
	return lifetime;
}

/* What of the response may be used: each item checked, the rest logged. */
struct taken {
	bool has_ip4, has_ip6;
	struct wgd_ip ip4, ip6;
	size_t n_routes;
	struct wgd_ip routes[WGD_MAX_ROUTES];
	size_t n_dns;
	struct wgd_ip dns[WGD_MAX_DNS];
	char dns_search[WGD_MAX_DNS_SEARCH];
	uint32_t mtu;
	uint32_t leasetime;
};

static void take_checked(struct client *cl, const struct wgd_msg *resp, const struct wgdev *dev,
			 struct taken *t)
{
	struct rtnl_addr *addrs = NULL;
	size_t n_addrs = 0;
	char b[WGD_IP_STRLEN];
	const char *why;

	memset(t, 0, sizeof(*t));
	if (cl->sys->addr_list(cl, &addrs, &n_addrs))
		n_addrs = 0;
	if (resp->has_ip4) {
		why = check_addr(cl, &resp->ip4, dev, addrs, n_addrs);
		if (why)
			log_refused("ip", wgd_ip_format_addr(&resp->ip4, b, sizeof(b)), why);
		else
			t->has_ip4 = true, t->ip4 = resp->ip4;
	}
	if (resp->has_ip6) {
		why = check_addr(cl, &resp->ip6, dev, addrs, n_addrs);
		if (why)
			log_refused("ip", wgd_ip_format_addr(&resp->ip6, b, sizeof(b)), why);
		else
			t->has_ip6 = true, t->ip6 = resp->ip6;
	}
	free(addrs);

	for (size_t i = 0; i < resp->n_routes && i < WGD_MAX_ROUTES; i++) {
		why = check_route(cl, &resp->routes[i], dev);
		if (why)
			log_refused("route", wgd_ip_format(&resp->routes[i], b, sizeof(b)), why);
		else
			t->routes[t->n_routes++] = resp->routes[i];
	}
	for (size_t i = 0; i < resp->n_dns && i < WGD_MAX_DNS; i++) {
		why = check_dns(&resp->dns[i]);
		if (why)
			log_refused("dns", wgd_ip_format_addr(&resp->dns[i], b, sizeof(b)), why);
		else
			t->dns[t->n_dns++] = resp->dns[i];
	}
	if (resp->dns_search[0] || resp->dns_search_bad) {
		if (!resp->dns_search_bad && dns_search_valid(resp->dns_search)) {
			memcpy(t->dns_search, resp->dns_search, sizeof(t->dns_search));
		} else {
			char esc[LOG_ESCAPED_SIZE(WGD_MAX_DNS_SEARCH) + 2];
			char q[sizeof(esc) + 2];

			log_escape(resp->dns_search, strnlen(resp->dns_search, WGD_MAX_DNS_SEARCH),
				   esc, sizeof(esc));
			snprintf(q, sizeof(q), "\"%s\"", esc);
			log_refused("dns_search", q, resp->dns_search[0] ?
				    "not a comma-separated list of domain names" :
				    "empty, or longer than 255 bytes");
		}
	}
	if (resp->mtu) {
		why = check_mtu(cl, resp->mtu);
		if (why) {
			char m[16];

			snprintf(m, sizeof(m), "%u", resp->mtu);
			log_refused("mtu", m, why);
		} else {
			t->mtu = resp->mtu;
		}
	}
	t->leasetime = resp->leasetime;
	/* Only a lease that is taken has a time to speak of. */
	if (t->leasetime < LEASE_MIN_S && (t->has_ip4 || t->has_ip6)) {
		/* Said once per value, not at every renewal. */
		static uint32_t said = UINT32_MAX;

		if (said != t->leasetime)
			log_warnx("from the hub: leasetime %u: raised to %d s", t->leasetime,
				  LEASE_MIN_S);
		said = t->leasetime;
	}
	if (t->leasetime < LEASE_MIN_S)
		t->leasetime = LEASE_MIN_S;
}

bool state_take_response(struct client *cl, const struct wgd_msg *req,
			 const struct wgd_msg *resp, uint64_t started_ms, uint64_t now_ms)
{
	struct lease_state *ls = &cl->lease, old;
	char why[LOG_ESCAPED_SIZE(WGD_MAX_ERRMSG)];
	char b4[WGD_IP_STRLEN] = "-", b6[WGD_IP_STRLEN] = "-";
	struct wgdev *dev = NULL;
	enum client_state was = cl->state;
	uint32_t lifetime;
	struct taken t;
	bool same, dns_changed;
	int ret;

	if (resp->err) {
		const char *text = wgd_error_text(resp->err);

		if (resp->errmsg[0])
			log_escape(resp->errmsg, strnlen(resp->errmsg, WGD_MAX_ERRMSG), why,
				   sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", text ? text : "unknown error");
		if (req->has_ip4 && !resp->has_ip4)
			log_warnx("no IPv4 address from the server: %s", why);
		if (req->has_ip6 && !resp->has_ip6)
			log_warnx("no IPv6 address from the server: %s", why);
		/* RFC 2131, 3.2: a refused INIT-REBOOT falls back to INIT. The
		 * remembered addresses are forgotten, or the client would ask
		 * for them forever. */
		if (resp->err == WGD_E_UNAVAILABLE && !ls->bound &&
		    (cl->has_hint4 || cl->has_hint6)) {
			log_info("the server refused the remembered addresses; asking for any");
			cl->has_hint4 = cl->has_hint6 = false;
			cl->state = CLIENT_INIT;
		}
	}

	/* The checks need the peers' endpoints and allowed-IPs as they are
	 * now; without them nothing is taken. */
	ret = cl->sys->get_device(cl, &dev);
	if (ret) {
		log_warnx("cannot read %s to check the server's answer: %s; asking again later",
			  cl->ifname, strerror(-ret));
		state_request_failed(cl, started_ms, now_ms);
		return false;
	}
	take_checked(cl, resp, dev, &t);
	if (!t.has_ip4 && !t.has_ip6) {
		log_warnx("the server gave no usable address; asking again later");
		wgdev_free(dev);
		state_request_failed(cl, started_ms, now_ms);
		return false;
	}
	lifetime = lease_lifetime(resp, t.leasetime);

	same = ls->bound && ls->has_ip4 == t.has_ip4 && ls->has_ip6 == t.has_ip6 &&
	       (!t.has_ip4 || wgd_ip_equal(&ls->ip4, &t.ip4)) &&
	       (!t.has_ip6 || wgd_ip_equal(&ls->ip6, &t.ip6));
	old = *ls;
	dns_changed = ls->n_dns != t.n_dns ||
		      memcmp(ls->dns, t.dns, t.n_dns * sizeof(t.dns[0])) ||
		      strcmp(ls->dns_search, t.dns_search);

	configure_addr(cl, ls->has_ip4, &ls->ip4, t.has_ip4, &t.ip4, lifetime);
	configure_addr(cl, ls->has_ip6, &ls->ip6, t.has_ip6, &t.ip6, lifetime);
	configure_routes(cl, ls, t.routes, t.n_routes, dev);
	wgdev_free(dev);

	ls->bound = true;
	ls->has_ip4 = t.has_ip4;
	ls->has_ip6 = t.has_ip6;
	ls->ip4 = t.ip4;
	ls->ip6 = t.ip6;
	ls->leasestart = resp->leasestart;
	ls->leasetime = t.leasetime;
	ls->expires_ms = now_ms + (uint64_t)lifetime * 1000;
	ls->n_dns = t.n_dns;
	memcpy(ls->dns, t.dns, sizeof(ls->dns));
	memcpy(ls->dns_search, t.dns_search, sizeof(ls->dns_search));
	if (dns_changed || !ls->dns_applied) {
		configure_dns_remove(cl, ls);
		configure_dns(cl, ls);
	}
	configure_mtu(cl, ls, t.mtu);

	if (ls->has_ip4)
		wgd_ip_format_addr(&ls->ip4, b4, sizeof(b4));
	if (ls->has_ip6)
		wgd_ip_format_addr(&ls->ip6, b6, sizeof(b6));
	log_info("%s: ip4 %s ip6 %s leasetime %u leasestart %u", same ? "renewed" : "bound", b4,
		 b6, ls->leasetime, ls->leasestart);
	leasefile_save(cl, false);
	state_run_hook(cl, !same ? "BOUND" : was == CLIENT_REBINDING ? "REBIND" : "RENEW",
		 old.bound ? &old : NULL, ls);
	cl->has_hint4 = ls->has_ip4;
	cl->has_hint6 = ls->has_ip6;
	cl->hint4 = ls->ip4;
	cl->hint6 = ls->ip6;
	/* The mesh follows the hub's latest word: a hub restarted without
	 * --mesh no longer offers it. */
	if (resp->mesh && !cl->mesh_offered && !cl->no_mesh)
		log_info("the hub offers its mesh");
	cl->mesh_offered = resp->mesh;
	state_transition(cl, CLIENT_BOUND, now_ms);
	return true;
}
