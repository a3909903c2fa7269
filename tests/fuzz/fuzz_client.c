// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * The client's whole handling of what a hub sends, not just the parser:
 * sequences of responses go through lease acceptance, routes, addresses,
 * MTU, DNS, the hook and the lease file, with time passing and the lease
 * file read back in between. Every call the client makes to the host goes
 * through struct client_sys, which here records instead of acting, and
 * checks each call against the bounds the client promises
 * (docs/security.md): a hostile hub must never get past them.
 *
 * The input is a list of records: one byte of operation, then its data.
 *   0 LEN16 BYTES  a response (the bytes go through the parser)
 *   1 U16          time passes (U16 * 100 ms), then the timers run
 *   2              the client restarts: the lease file is read back
 *   3 BYTE         the next host calls fail (a bit per kind of call)
 *   4 U8 BYTES     the hub peer's endpoint moves to 10.X.Y.Z
 * Every log line goes through a sink that refuses control bytes.
 */

#include <arpa/inet.h>
#include <errno.h>

#include "../../client/client.h"
#include "../../common/clock.h"
#include "../../common/log.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the host holds, as the recorder sees it. */
struct host {
	size_t n_addrs;
	struct wgd_ip addrs[16];
	size_t n_routes;
	struct wgd_ip routes[WGD_MAX_ROUTES];  /* the client's own */
	size_t n_hub_added;
	struct wgd_ip hub_added[4 * WGD_MAX_ROUTES];
	char file[WGD_MAX_MESSAGE + 64];
	size_t file_len;
	uint8_t fail;                          /* bits: which calls fail */
	uint32_t mtu;
	uint8_t endpoint[4];
};

static struct host host;
static const uint8_t hub_key[WG_KEY_LEN] = { 1 };
static const uint8_t exit_key[WG_KEY_LEN] = { 2 };

enum { FAIL_ADDR = 1, FAIL_ROUTE = 2, FAIL_DEV = 4, FAIL_HUB = 8, FAIL_SAVE = 16,
       FAIL_RESOLV = 32, FAIL_MTU = 64 };

static bool listed(const struct wgd_ip *list, size_t n, const struct wgd_ip *ip)
{
	for (size_t i = 0; i < n; i++)
		if (wgd_ip_equal(&list[i], ip))
			return true;
	return false;
}

static struct wgd_ip prefix(const char *s)
{
	struct wgd_ip ip;

	FUZZ_CHECK(!wgd_ip_parse(&ip, s, strlen(s), true));
	return ip;
}

static struct wgd_ip hub_endpoint(void)
{
	struct in_addr a;
	struct wgd_ip ip;

	memcpy(&a, host.endpoint, 4);
	wgd_ip_host4(&ip, &a);
	return ip;
}

/* What no address or route from the hub may ever touch. */
static void check_not_special(const struct wgd_ip *ip)
{
	static const char *const never[] = {
		"127.0.0.0/8", "224.0.0.0/4", "169.254.0.0/16", "0.0.0.0/8", "240.0.0.0/4",
		"::1/128", "::/128", "fe80::/10", "ff00::/8",
	};
	struct wgd_ip ep = hub_endpoint(), exit_ep = prefix("198.51.100.7/32");

	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		struct wgd_ip p = prefix(never[i]);

		FUZZ_CHECK(p.family != ip->family || !wgd_ip_overlaps(&p, ip));
	}
	FUZZ_CHECK(ip->cidr > 0);
	FUZZ_CHECK(ep.family != ip->family || !wgd_ip_contains(ip, &ep));
	FUZZ_CHECK(exit_ep.family != ip->family || !wgd_ip_contains(ip, &exit_ep));
}

static int rec_addr_add(struct client *cl, const struct wgd_ip *ip, uint32_t lifetime_s)
{
	(void)cl;
	check_not_special(ip);
	FUZZ_CHECK(ip->cidr == wgd_ip_bits(ip->family));
	FUZZ_CHECK(lifetime_s >= LEASE_MIN_S && lifetime_s < UINT32_MAX);
	FUZZ_CHECK(!wgd_ip_equal(ip, &(struct wgd_ip){ 0 }));
	/* The configured address of the interface is never taken over. */
	FUZZ_CHECK(!wgd_ip_equal(ip, &(struct wgd_ip){ .family = AF_INET, .cidr = 32,
							 .bytes = { 10, 77, 0, 1 } }));
	if (host.fail & FAIL_ADDR)
		return -EIO;
	if (!listed(host.addrs, host.n_addrs, ip)) {
		if (host.n_addrs == sizeof(host.addrs) / sizeof(host.addrs[0]))
			return -ENOSPC;
		host.addrs[host.n_addrs++] = *ip;
	}
	return 0;
}

static int rec_addr_del(struct client *cl, const struct wgd_ip *ip)
{
	(void)cl;
	for (size_t i = 0; i < host.n_addrs; i++) {
		if (wgd_ip_equal(&host.addrs[i], ip)) {
			host.addrs[i] = host.addrs[--host.n_addrs];
			return 0;
		}
	}
	/* Not there (its addition failed): deleting it is a no-op, unless it
	 * were an address configured on the interface, which is not ours. */
	FUZZ_CHECK(!wgd_ip_equal(ip, &(struct wgd_ip){ .family = AF_INET, .cidr = 32,
							 .bytes = { 10, 77, 0, 1 } }));
	FUZZ_CHECK(!wgd_ip_equal(ip, &(struct wgd_ip){ .family = AF_INET6, .cidr = 128,
							 .bytes = { 0xfe, 0x80, [14] = 0x12, 0x34 } }));
	return 0;
}

static int rec_addr_list(struct client *cl, struct rtnl_addr **out, size_t *n)
{
	struct rtnl_addr *a = calloc(host.n_addrs + 2, sizeof(*a));

	(void)cl;
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < host.n_addrs; i++) {
		a[i].ip = host.addrs[i];
		a[i].valid_lft = 60;
	}
	a[host.n_addrs].ip = (struct wgd_ip){ .family = AF_INET, .cidr = 32,
					      .bytes = { 10, 77, 0, 1 } };
	a[host.n_addrs].valid_lft = UINT32_MAX;
	a[host.n_addrs + 1].ip = prefix("fe80::1234/128");
	a[host.n_addrs + 1].valid_lft = UINT32_MAX;
	*out = a;
	*n = host.n_addrs + 2;
	return 0;
}

static int rec_route_add(struct client *cl, const struct wgd_ip *dst)
{
	(void)cl;
	check_not_special(dst);
	/* An administrator's route: there before the client. */
	if (wgd_ip_equal(dst, &(struct wgd_ip){ .family = AF_INET, .cidr = 24,
						.bytes = { 10, 55, 0, 0 } }))
		return -EEXIST;
	if (host.fail & FAIL_ROUTE)
		return -EIO;
	if (listed(host.routes, host.n_routes, dst))
		return -EEXIST;
	FUZZ_CHECK(host.n_routes < WGD_MAX_ROUTES);
	host.routes[host.n_routes++] = *dst;
	return 0;
}

static int rec_route_del(struct client *cl, const struct wgd_ip *dst)
{
	(void)cl;
	for (size_t i = 0; i < host.n_routes; i++) {
		if (wgd_ip_equal(&host.routes[i], dst)) {
			host.routes[i] = host.routes[--host.n_routes];
			return 0;
		}
	}
	FUZZ_CHECK(!"removed a route it did not add");
	return 0;
}

static int rec_set_mtu(struct client *cl, uint32_t mtu)
{
	FUZZ_CHECK(mtu >= MTU_MIN_IPV6 && mtu <= cl->max_mtu);
	if (host.fail & FAIL_MTU)
		return -EINVAL;
	host.mtu = mtu;
	return 0;
}

static int add_peer(struct wgdev *dev, const uint8_t key[WG_KEY_LEN], const char *endpoint,
		    const char *const *ips, size_t n)
{
	struct wgdev_peer *p = &dev->peers[dev->n_peers++];

	memcpy(p->pubkey, key, WG_KEY_LEN);
	if (endpoint) {
		p->endpoint.sin.sin_family = AF_INET;
		inet_pton(AF_INET, endpoint, &p->endpoint.sin.sin_addr);
	} else {
		p->endpoint.sin.sin_family = AF_INET;
		memcpy(&p->endpoint.sin.sin_addr, host.endpoint, 4);
	}
	p->allowedips = calloc(n + sizeof(host.hub_added) / sizeof(host.hub_added[0]),
			       sizeof(*p->allowedips));
	if (!p->allowedips)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		p->allowedips[p->n_allowedips++] = prefix(ips[i]);
	return 0;
}

/* The hub with fe80::/128 and what the client added; an exit peer with
 * the default routes and one more prefix. */
static int rec_get_device(struct client *cl, struct wgdev **out)
{
	static const char *const hub_ips[] = { "fe80::/128", "10.66.0.0/16" };
	static const char *const exit_ips[] = { "0.0.0.0/0", "::/0", "10.44.0.0/16" };
	struct wgdev *dev;

	(void)cl;
	*out = NULL;
	if (host.fail & FAIL_DEV)
		return -EIO;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->peers = calloc(2, sizeof(*dev->peers));
	if (!dev->peers || add_peer(dev, hub_key, NULL, hub_ips, 2) ||
	    add_peer(dev, exit_key, "198.51.100.7", exit_ips, 3)) {
		wgdev_free(dev);
		return -ENOMEM;
	}
	for (size_t i = 0; i < host.n_hub_added; i++)
		dev->peers[0].allowedips[dev->peers[0].n_allowedips++] = host.hub_added[i];
	*out = dev;
	return 0;
}

static int rec_hub_allowedips(struct client *cl, const struct wgd_ip *add, size_t n_add,
			      const struct wgd_ip *del, size_t n_del)
{
	static const char *const theirs[] = { "10.44.0.0/16", "0.0.0.0/0", "::/0",
					      "fe80::/128", "10.66.0.0/16" };

	(void)cl;
	FUZZ_CHECK(n_add <= WGD_MAX_ROUTES && n_del <= WGD_MAX_ROUTES);
	for (size_t i = 0; i < n_add; i++) {
		check_not_special(&add[i]);
		/* Another peer's allowed-IP, or one the hub had already. */
		for (size_t j = 0; j < sizeof(theirs) / sizeof(theirs[0]); j++) {
			struct wgd_ip t = prefix(theirs[j]);

			FUZZ_CHECK(!wgd_ip_equal(&t, &add[i]));
		}
	}
	for (size_t i = 0; i < n_del; i++)
		FUZZ_CHECK(listed(host.hub_added, host.n_hub_added, &del[i]));
	if (host.fail & FAIL_HUB)
		return -EIO;
	for (size_t i = 0; i < n_del; i++) {
		for (size_t j = 0; j < host.n_hub_added; j++) {
			if (wgd_ip_equal(&host.hub_added[j], &del[i])) {
				host.hub_added[j] = host.hub_added[--host.n_hub_added];
				break;
			}
		}
	}
	/*
	 * A run before a restart may have left its additions: the client does
	 * not remember across restarts which allowed-IPs it added, so they
	 * pile up by at most WGD_MAX_ROUTES a restart. A device that is full
	 * refuses, as a real one out of memory would.
	 */
	if (host.n_hub_added + n_add > sizeof(host.hub_added) / sizeof(host.hub_added[0]))
		return -ENOMEM;
	for (size_t i = 0; i < n_add; i++) {
		FUZZ_CHECK(!listed(host.hub_added, host.n_hub_added, &add[i]));
		host.hub_added[host.n_hub_added++] = add[i];
	}
	return 0;
}

/* What resolvconf and the hook get holds no byte a shell would act on. */
static void check_tame(const char *s)
{
	for (; *s; s++)
		FUZZ_CHECK((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			   (*s >= '0' && *s <= '9') || strchr(" .,:-/\n", *s));
}

static int rec_resolvconf(struct client *cl, const char *input)
{
	(void)cl;
	if (input)
		check_tame(input);
	return host.fail & FAIL_RESOLV ? -EIO : 0;
}

static void rec_hook(struct client *cl, const struct hook_env *env)
{
	char buf[4096], *envp[HOOK_ENV_MAX + 1];
	size_t n = hook_build_env(env, buf, sizeof(buf), envp);

	(void)cl;
	for (size_t i = 0; i < n; i++)
		if (strncmp(envp[i], "PATH=", 5))
			check_tame(strchr(envp[i], '=') + 1);
}

static int rec_save(struct client *cl, const void *buf, size_t len)
{
	(void)cl;
	if (host.fail & FAIL_SAVE)
		return -ENOSPC;
	FUZZ_CHECK(len <= sizeof(host.file));
	memcpy(host.file, buf, len);
	host.file_len = len;
	return 0;
}

static ssize_t rec_load(struct client *cl, void *buf, size_t max)
{
	(void)cl;
	if (!host.file_len)
		return -ENOENT;
	if (host.file_len < max)
		max = host.file_len;
	memcpy(buf, host.file, max);
	return (ssize_t)max;
}

static const struct client_sys recorder = {
	.addr_add = rec_addr_add,
	.addr_del = rec_addr_del,
	.addr_list = rec_addr_list,
	.route_add = rec_route_add,
	.route_del = rec_route_del,
	.set_mtu = rec_set_mtu,
	.get_device = rec_get_device,
	.hub_allowedips = rec_hub_allowedips,
	.resolvconf = rec_resolvconf,
	.hook = rec_hook,
	.save = rec_save,
	.load = rec_load,
};

static void log_check(const char *line, size_t len)
{
	/* FUZZ_DEBUG=1 shows what the client would log, to study a finding. */
	static int debug = -1;

	if (debug < 0)
		debug = getenv("FUZZ_DEBUG") != NULL;
	if (debug)
		fprintf(stderr, "log: %.*s\n", (int)len, line);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(line[i] >= 0x20 && line[i] < 0x7f);
}

static void client_init(struct client *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->sys = &recorder;
	cl->ifname = "wgfuzz0";
	cl->ifindex = 7;
	cl->max_mtu = 9000;
	cl->link_up = true;
	cl->script = "hook";
	cl->state_dir = "state";
	snprintf(cl->state_file, sizeof(cl->state_file), "wgfuzz0.lease");
	memcpy(cl->hub_key, hub_key, WG_KEY_LEN);
}

/* What holds after every step, whatever came before. */
static void check_client(const struct client *cl, uint64_t now, bool restarted)
{
	const struct lease_state *ls = &cl->lease;

	FUZZ_CHECK(ls->n_routes <= WGD_MAX_ROUTES && ls->n_dns <= WGD_MAX_DNS);
	for (size_t i = 0; i < ls->n_routes; i++)
		for (size_t j = i + 1; j < ls->n_routes; j++)
			FUZZ_CHECK(!wgd_ip_equal(&ls->routes[i].dst, &ls->routes[j].dst));
	/* One address a family, and the kernel's to expire what a run before
	 * a restart left (see the end of LLVMFuzzerTestOneInput()). */
	FUZZ_CHECK(restarted || host.n_addrs <= 2);
	if (ls->bound) {
		FUZZ_CHECK(ls->leasetime >= LEASE_MIN_S);
		FUZZ_CHECK(ls->expires_ms > now);
		FUZZ_CHECK(ls->t1_ms <= ls->t2_ms && ls->t2_ms <= ls->expires_ms);
	}
	/* Whatever the hub answered, the next request is not at once. */
	if (cl->state != CLIENT_RENEWING && cl->state != CLIENT_REBINDING)
		FUZZ_CHECK(cl->next_try_ms >= now + 180 || cl->next_try_ms == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wgd_parser parser;
	static struct client cl;
	struct fuzz_in in;
	uint64_t now = 1000000;
	bool restarted = false;

	memset(&host, 0, sizeof(host));
	host.endpoint[0] = 192, host.endpoint[1] = 0, host.endpoint[2] = 2, host.endpoint[3] = 1;
	log_set_sink(log_check);
	client_init(&cl);
	cl.next_try_ms = 0;
	fuzz_in_init(&in, data, size);
	for (unsigned steps = 0; in.left && steps < 64; steps++) {
		uint8_t op = fuzz_u8(&in);

		switch (op % 5) {
		case 0: {
			size_t want = fuzz_u16(&in) % (WGD_MAX_MESSAGE + 1), got;
			const uint8_t *bytes = fuzz_take(&in, want, &got);
			struct wgd_msg req;

			state_build_request(&cl, &req);
			wgd_parser_init(&parser, WGD_PARSE_RESPONSE);
			if (wgd_parse(&parser, bytes, got) > 0)
				state_take_response(&cl, &req, &parser.msg, now, now);
			else
				state_request_failed(&cl, now, now);
			check_client(&cl, now, restarted);
			break;
		}
		case 1:
			now += (uint64_t)fuzz_u16(&in) * 100;
			state_tick(&cl, now);
			FUZZ_CHECK(!cl.lease.bound || cl.lease.expires_ms > now);
			break;
		case 2: {
			struct lease_state held = cl.lease;

			client_init(&cl);
			restarted = true;
			leasefile_load(&cl, clock_real_s(), now);
			/* What was remembered is a subset of what was held. */
			if (cl.lease.bound && held.bound) {
				FUZZ_CHECK(cl.lease.n_routes <= held.n_routes);
				FUZZ_CHECK(!cl.lease.has_ip4 || wgd_ip_equal(&cl.lease.ip4, &held.ip4));
			}
			/* As main.c's adopt_routes(): the last run's routes of the
			 * remembered lease are ours again, the others go. */
			for (size_t i = 0; i < host.n_routes;) {
				bool kept = false;

				for (size_t j = 0; j < cl.lease.n_routes; j++) {
					if (wgd_ip_equal(&cl.lease.routes[j].dst, &host.routes[i])) {
						cl.lease.routes[j].in_table = kept = true;
						break;
					}
				}
				if (kept)
					i++;
				else
					host.routes[i] = host.routes[--host.n_routes];
			}
			break;
		}
		case 3:
			host.fail = fuzz_u8(&in);
			break;
		case 4:
			host.endpoint[0] = 10;
			host.endpoint[1] = fuzz_u8(&in);
			host.endpoint[2] = fuzz_u8(&in);
			host.endpoint[3] = fuzz_u8(&in);
			break;
		}
	}
	/* Going away leaves nothing of the lease behind. (Addresses of a run
	 * before a restart whose lease file had ended are left to the kernel,
	 * which drops them when their lifetime ends.) */
	host.fail = 0;
	state_drop_lease(&cl, "STOP");
	FUZZ_CHECK(host.n_routes == 0);
	FUZZ_CHECK(restarted || host.n_addrs == 0);
	log_set_sink(NULL);
	return 0;
}
