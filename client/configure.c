// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * What the hub may set up on this host, and setting it up.
 *
 * The client runs as root and the hub is another machine: everything it
 * sends is checked here before it touches the host, and an item that fails
 * a check is left out with one log line saying why, while the rest of the
 * lease is still taken. The rules and the reasons for them are in
 * docs/security.md.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../common/key.h"
#include "../common/log.h"
#include "client.h"

void log_refused(const char *key, const char *value, const char *why)
{
	log_warnx("from the hub: %s %s: refused: %s", key, value, why);
}

static struct wgd_ip prefix_of(const char *text)
{
	struct wgd_ip ip = { 0 };

	wgd_ip_parse(&ip, text, strlen(text), true);
	return ip;
}

/*
 * Special-purpose prefixes (RFC 6890) that no hub may route or lease into:
 * what they hold is the host's own, or no single peer's.
 */
struct special {
	const char *prefix;
	const char *what;
};

static const struct special specials[] = {
	{ "0.0.0.0/8", "\"this network\" (0.0.0.0/8)" },
	{ "127.0.0.0/8", "loopback" },
	{ "169.254.0.0/16", "link-local" },
	{ "224.0.0.0/4", "multicast" },
	{ "240.0.0.0/4", "reserved (240.0.0.0/4)" },
	{ "::/128", "the unspecified address" },
	{ "::1/128", "loopback" },
	{ "::ffff:0:0/96", "IPv4-mapped" },
	{ "fe80::/10", "link-local, where the hub's fe80:: is" },
	{ "ff00::/8", "multicast" },
};

static const char *special_overlap(const struct wgd_ip *ip)
{
	for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
		struct wgd_ip s;

		/* ::ffff:0:0/96 does not parse as an address of its own. */
		if (!strcmp(specials[i].prefix, "::ffff:0:0/96")) {
			memset(&s, 0, sizeof(s));
			s.family = AF_INET6;
			s.cidr = 96;
			s.bytes[10] = s.bytes[11] = 0xff;
		} else {
			s = prefix_of(specials[i].prefix);
		}
		if (s.family == ip->family && wgd_ip_overlaps(&s, ip))
			return specials[i].what;
	}
	return NULL;
}

/* A peer's endpoint as a host address; false when it has none. */
static bool endpoint_ip(const struct wgdev_peer *p, struct wgd_ip *out)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (p->endpoint.sa.sa_family == AF_INET) {
		wgd_ip_host4(out, &p->endpoint.sin.sin_addr);
		return true;
	}
	if (p->endpoint.sa.sa_family != AF_INET6)
		return false;
	if (!memcmp(p->endpoint.sin6.sin6_addr.s6_addr, mapped, sizeof(mapped))) {
		struct in_addr a;

		memcpy(&a, p->endpoint.sin6.sin6_addr.s6_addr + 12, 4);
		wgd_ip_host4(out, &a);
	} else {
		wgd_ip_host6(out, &p->endpoint.sin6.sin6_addr);
	}
	return true;
}

int find_hub_peer(const struct wgdev *dev, uint8_t key[WG_KEY_LEN])
{
	struct wgd_ip server = { .family = AF_INET6, .cidr = 128, .bytes = { 0xfe, 0x80 } };
	size_t found = 0;

	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *p = &dev->peers[i];

		for (size_t j = 0; j < p->n_allowedips; j++) {
			/* Exactly fe80::/128: an exit peer's ::/0 covers it too,
			 * but is not where the server is. */
			if (wgd_ip_equal(&p->allowedips[j], &server)) {
				if (!found++)
					memcpy(key, p->pubkey, WG_KEY_LEN);
				break;
			}
		}
	}
	return found == 1 ? 0 : found ? -EEXIST : -ENOENT;
}

const char *check_route(const struct client *cl, const struct wgd_ip *r, const struct wgdev *dev)
{
	static char why[128];
	const char *special;
	struct wgd_ip ep;

	if (r->family != AF_INET && r->family != AF_INET6)
		return "not an IPv4 or IPv6 prefix";
	if (r->cidr == 0)
		return "a default route would take all of the host's traffic; "
		       "configure one locally if that is wanted";
	special = special_overlap(r);
	if (special) {
		snprintf(why, sizeof(why), "overlaps %s", special);
		return why;
	}
	if (!dev)
		return "the WireGuard device could not be read to check it";
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgdev_peer *p = &dev->peers[i];
		bool hub = !memcmp(p->pubkey, cl->hub_key, WG_KEY_LEN);

		/* The tunnel's own packets to a peer must not enter it. */
		if (endpoint_ip(p, &ep) && ep.family == r->family && wgd_ip_contains(r, &ep)) {
			char b[WGD_IP_STRLEN];

			snprintf(why, sizeof(why), "covers %s, the endpoint of %s",
				 wgd_ip_format_addr(&ep, b, sizeof(b)),
				 hub ? "the hub" : "another peer");
			return why;
		}
		if (hub)
			continue;
		/* In the hub peer's allowed-IPs it would leave that peer. */
		for (size_t j = 0; j < p->n_allowedips; j++)
			if (wgd_ip_equal(&p->allowedips[j], r))
				return "it is an allowed-IP of another peer";
	}
	return NULL;
}

const char *check_addr(const struct client *cl, const struct wgd_ip *a, const struct wgdev *dev,
		       const struct rtnl_addr *addrs, size_t n_addrs)
{
	static char why[128];
	const char *special;
	struct wgd_ip ep;

	(void)cl;
	if ((a->family != AF_INET || a->cidr != 32) && (a->family != AF_INET6 || a->cidr != 128))
		return "not a host address";
	special = special_overlap(a);
	if (special) {
		snprintf(why, sizeof(why), "%s", special);
		return why;
	}
	for (size_t i = 0; dev && i < dev->n_peers; i++) {
		/* As a local address it would turn the tunnel's packets to
		 * that peer back into the host. */
		if (endpoint_ip(&dev->peers[i], &ep) && wgd_ip_equal(&ep, a))
			return "it is the endpoint of a peer";
	}
	for (size_t i = 0; i < n_addrs; i++) {
		/* A configured address has no end; ours end with the lease. */
		if (addrs[i].ip.family == a->family &&
		    !memcmp(addrs[i].ip.bytes, a->bytes, wgd_ip_len(a->family)) &&
		    addrs[i].valid_lft == UINT32_MAX)
			return "the interface has it as a configured address";
	}
	return NULL;
}

const char *check_mtu(const struct client *cl, uint32_t mtu)
{
	static char why[96];
	uint32_t max = cl->max_mtu ? cl->max_mtu : 65535;

	if (mtu < MTU_MIN_IPV6)
		return "below 1280, which IPv6 and the tunnel's link-local need";
	if (mtu > max) {
		snprintf(why, sizeof(why), "above %u, the most the interface takes", max);
		return why;
	}
	return NULL;
}

const char *check_dns(const struct wgd_ip *a)
{
	if (wgd_ip_is_unspecified(a))
		return "the unspecified address";
	return special_overlap(a);
}

static bool is_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* RFC 1035, 2.3.4: labels of 1 to 63 bytes, names of at most 253. */
bool dns_search_valid(const char *s)
{
	size_t name = 0, label = 0;

	if (!*s)
		return false;
	for (;; s++) {
		if (*s == ',' || !*s) {
			/* An empty name, or one ending in an empty label other
			 * than the root's dot. */
			if (!name || (!label && name == 1))
				return false;
			if (!*s)
				return true;
			name = label = 0;
			continue;
		}
		if (*s == '.') {
			if (!label)
				return false;
			label = 0;
		} else if (is_label_char(*s)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
		if (++name > 253)
			return false;
	}
}

/* ---- applying ---- */

static const char *fmt_addr(const struct wgd_ip *ip, char buf[WGD_IP_STRLEN])
{
	return wgd_ip_format_addr(ip, buf, WGD_IP_STRLEN);
}

void configure_addr(struct client *cl, bool had, const struct wgd_ip *old, bool has,
		    const struct wgd_ip *new, uint32_t lifetime_s)
{
	char b[WGD_IP_STRLEN];
	int ret;

	if (had && !(has && wgd_ip_equal(old, new))) {
		ret = cl->sys->addr_del(cl, old);
		if (ret)
			log_warnx("cannot remove %s from %s: %s", fmt_addr(old, b), cl->ifname,
				  strerror(-ret));
	}
	if (has) {
		/* Adding again refreshes the lifetimes: if this process dies,
		 * the kernel drops the address when the lease ends. */
		if (lifetime_s > LIFETIME_MAX_S)
			lifetime_s = LIFETIME_MAX_S;
		ret = cl->sys->addr_add(cl, new, lifetime_s);
		if (ret)
			log_warnx("cannot add %s to %s: %s", fmt_addr(new, b), cl->ifname,
				  strerror(-ret));
	}
}

static const struct client_route *route_find(const struct client_route *list, size_t n,
					     const struct wgd_ip *r)
{
	for (size_t i = 0; i < n; i++)
		if (wgd_ip_equal(&list[i].dst, r))
			return &list[i];
	return NULL;
}

static bool ip_listed(const struct wgd_ip *list, size_t n, const struct wgd_ip *ip)
{
	for (size_t i = 0; i < n; i++)
		if (wgd_ip_equal(&list[i], ip))
			return true;
	return false;
}

/*
 * Pushed routes go on the interface and into the hub peer's allowed-IPs, so
 * that a hub configured with only fe80::/128 carries them. Either half that
 * is already there belongs to someone else (an administrator's route, an
 * allowed-IP from the configuration): it is neither added nor ever removed.
 * The arrays here are bounded by construction: at most WGD_MAX_ROUTES old
 * routes go and at most WGD_MAX_ROUTES new ones come.
 */
void configure_routes(struct client *cl, struct lease_state *ls, const struct wgd_ip *routes,
		      size_t n, const struct wgdev *dev)
{
	struct client_route next[WGD_MAX_ROUTES];
	struct wgd_ip add[WGD_MAX_ROUTES], del[WGD_MAX_ROUTES];
	size_t n_add = 0, n_del = 0;
	const struct wgdev_peer *hub = dev ? wgdev_find_peer(dev, cl->hub_key) : NULL;
	char b[WGD_IP_STRLEN];
	int ret;

	if (n > WGD_MAX_ROUTES)
		n = WGD_MAX_ROUTES;
	for (size_t i = 0; i < ls->n_routes; i++) {
		const struct client_route *old = &ls->routes[i];

		if (ip_listed(routes, n, &old->dst))
			continue;
		if (old->in_table) {
			ret = cl->sys->route_del(cl, &old->dst);
			if (ret)
				log_warnx("cannot remove route %s: %s",
					  wgd_ip_format(&old->dst, b, sizeof(b)), strerror(-ret));
		}
		if (old->in_hub)
			del[n_del++] = old->dst;
	}

	for (size_t i = 0; i < n; i++) {
		const struct client_route *old = route_find(ls->routes, ls->n_routes, &routes[i]);
		struct client_route *r = &next[i];

		*r = old ? *old : (struct client_route){ .dst = routes[i] };
		if (!r->in_table) {
			ret = cl->sys->route_add(cl, &r->dst);
			if (!ret) {
				r->in_table = true;
			} else if (ret == -EEXIST) {
				/* Said once, when the route is new to us. */
				if (!old)
					log_info("route %s: not added: the interface already has it",
						 wgd_ip_format(&r->dst, b, sizeof(b)));
			} else {
				log_warnx("cannot add route %s: %s",
					  wgd_ip_format(&r->dst, b, sizeof(b)), strerror(-ret));
			}
		}
		if (!r->in_hub && hub && !ip_listed(hub->allowedips, hub->n_allowedips, &r->dst))
			add[n_add++] = r->dst;
	}

	if (n_add || n_del) {
		ret = cl->sys->hub_allowedips(cl, add, n_add, del, n_del);
		if (ret) {
			log_warnx("cannot update the hub peer's allowed-IPs: %s", strerror(-ret));
		} else {
			for (size_t i = 0; i < n; i++)
				if (ip_listed(add, n_add, &next[i].dst))
					next[i].in_hub = true;
		}
	}
	memcpy(ls->routes, next, n * sizeof(next[0]));
	ls->n_routes = n;
}

/* DNS as wg-quick gives it: one resolvconf record named after the interface.
 * The names were checked: letters, digits, hyphens, dots and commas. */
void configure_dns(struct client *cl, struct lease_state *ls)
{
	char input[WGD_MAX_DNS * (INET6_ADDRSTRLEN + 12) + WGD_MAX_DNS_SEARCH + 16];
	char a[WGD_IP_STRLEN];
	size_t off = 0;
	int ret;

	if (cl->no_dns || (!ls->n_dns && !ls->dns_search[0]))
		return;
	for (size_t i = 0; i < ls->n_dns && i < WGD_MAX_DNS; i++)
		off += (size_t)snprintf(input + off, sizeof(input) - off, "nameserver %s\n",
					fmt_addr(&ls->dns[i], a));
	if (ls->dns_search[0]) {
		off += (size_t)snprintf(input + off, sizeof(input) - off, "search ");
		for (const char *s = ls->dns_search; *s && off < sizeof(input) - 2; s++)
			input[off++] = *s == ',' ? ' ' : *s;
		input[off++] = '\n';
		input[off] = '\0';
	}
	ret = cl->sys->resolvconf(cl, input);
	if (!ret)
		ls->dns_applied = true;
}

void configure_dns_remove(struct client *cl, struct lease_state *ls)
{
	if (!ls->dns_applied)
		return;
	cl->sys->resolvconf(cl, NULL);
	ls->dns_applied = false;
}

void configure_mtu(struct client *cl, struct lease_state *ls, uint32_t mtu)
{
	int ret;

	if (!mtu || cl->no_mtu || mtu == ls->mtu)
		return;
	ret = cl->sys->set_mtu(cl, mtu);
	if (ret)
		log_warnx("cannot set the MTU of %s to %u: %s", cl->ifname, mtu, strerror(-ret));
	else
		ls->mtu = mtu;
}
