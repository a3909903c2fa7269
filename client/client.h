/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_CLIENT_H
#define WGD_CLIENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "../common/mesh.h"
#include "../common/rtnl.h"
#include "../common/wgctl.h"
#include "../common/wgdev.h"
#include "../protocol/proto.h"
#include "hook.h"
#include "probe.h"

/*
 * What the client's files share: its state, the lease it holds, and the
 * seam through which it touches the system.
 *
 *   exchange.c   one request over TCP to the hub, driven by the loop
 *   state.c      the state machine: timers, backoff, taking a response
 *   configure.c  what the hub may set up, and setting it up
 *   leasefile.c  the remembered lease
 *   mesh.c       the mesh: the long poll, the record of the peers it
 *                added, the device reads and the status file; the
 *                decisions are common/mesh.c's
 *   main.c       options, start-up checks and the event loop
 */

/* The rtnetlink protocol number on the client's routes ("ip route show
 * proto 87"): what carries it is the client's to remove, nothing else. */
#define CLIENT_RTPROT 87
/* A lease shorter than this counts as this long, so that no hub can make
 * the client ask faster than once per LEASE_MIN_S / 2. */
#define LEASE_MIN_S WGD_LEASE_MIN_S
/* UINT32_MAX is "forever" to the kernel; no lease ends up as that. */
#define LIFETIME_MAX_S (UINT32_MAX - 1)
/* The smallest MTU that IPv6, and so the tunnel's link-local, works with. */
#define MTU_MIN_IPV6 1280

/* RFC 2131, 4.4: the states of a DHCP client that apply to a tunnel with
 * one server. SELECTING and REQUESTING are one exchange here. */
#define CLIENT_STATES(X)                                                     \
	X(CLIENT_INIT, "INIT")           /* no lease, asking for any address */ \
	X(CLIENT_REBOOT, "REBOOT")       /* no lease, asking for the last ones */ \
	X(CLIENT_BOUND, "BOUND")         /* a lease, before T1 */              \
	X(CLIENT_RENEWING, "RENEWING")   /* past T1, asking to extend it */    \
	X(CLIENT_REBINDING, "REBINDING") /* past T2, still asking */

#define X(e, s) e,
enum client_state { CLIENT_STATES(X) };
#undef X

const char *client_state_name(enum client_state s);

/* A pushed route, and which of its two halves this client put in place. */
struct client_route {
	struct wgd_ip dst;
	bool in_table;   /* a route of ours on the interface */
	bool in_hub;     /* added to the hub peer's allowed-IPs by us */
};

struct lease_state {
	bool bound;
	bool has_ip4, has_ip6;
	struct wgd_ip ip4, ip6;
	size_t n_routes;
	struct client_route routes[WGD_MAX_ROUTES];
	uint32_t leasestart;          /* the hub's word, for the lease file */
	uint32_t leasetime;           /* as taken: at least LEASE_MIN_S */
	uint64_t t1_ms, t2_ms, expires_ms; /* CLOCK_BOOTTIME */
	size_t n_dns;
	struct wgd_ip dns[WGD_MAX_DNS];
	char dns_search[WGD_MAX_DNS_SEARCH];
	bool dns_applied;             /* handed to resolvconf */
	uint32_t mtu;                 /* set by us; 0 none */
};

struct client;

/*
 * Everything the client does to the host goes through this table: the real
 * one (main.c) calls rtnetlink, the WireGuard device, resolvconf, the hook
 * and the state directory; the fuzzer's records the calls instead.
 * Returns are 0 or -errno.
 */
struct client_sys {
	int (*addr_add)(struct client *cl, const struct wgd_ip *ip, uint32_t lifetime_s);
	int (*addr_del)(struct client *cl, const struct wgd_ip *ip);
	int (*addr_list)(struct client *cl, struct rtnl_addr **out, size_t *n);
	/* Exclusive, marked CLIENT_RTPROT: -EEXIST when a route is there. */
	int (*route_add)(struct client *cl, const struct wgd_ip *dst);
	/* Only a route marked CLIENT_RTPROT. */
	int (*route_del)(struct client *cl, const struct wgd_ip *dst);
	int (*set_mtu)(struct client *cl, uint32_t mtu);
	int (*get_device)(struct client *cl, struct wgdev **out);
	int (*hub_allowedips)(struct client *cl, const struct wgd_ip *add, size_t n_add,
			      const struct wgd_ip *del, size_t n_del);
	/* input NULL: remove the interface's record. */
	int (*resolvconf)(struct client *cl, const char *input);
	void (*hook)(struct client *cl, const struct hook_env *env);
	int (*save)(struct client *cl, const void *buf, size_t len);
	ssize_t (*load)(struct client *cl, void *buf, size_t max);
	/* A non-blocking socket to the hub, its connect() under way: an fd
	 * or -errno. */
	int (*hub_connect)(struct client *cl);
	/* The addresses of the host's interfaces other than ours, for the
	 * mesh's candidates. */
	int (*host_addrs)(struct client *cl, struct rtnl_addr **out, size_t *n);
	/* One action of the mesh on the WireGuard device. */
	int (*mesh_apply)(struct client *cl, const struct mesh_action *a);
	/* An echo request to a direct peer's address (probe.h). */
	int (*mesh_probe)(struct client *cl, const struct wgd_ip *dst);
};

/* ---- the mesh's state, kept by mesh.c ---- */

#define MESH_POLL_TIMEOUT_MS 40000     /* the hub holds a poll 25 s */
#define MESH_POLL_GAP_MS 20            /* polls start no closer: a hub cannot make us spin */
#define MESH_POLL_BACKOFF_MIN_MS 1000  /* after a failed poll, doubling ... */
#define MESH_POLL_BACKOFF_MAX_MS 30000 /* ... up to this */
#define MESH_STATUS_EVERY_MS 1000      /* the status file, at most this often */

struct client_mesh {
	struct mesh *m;               /* NULL while not joined */
	struct exchange *ex;          /* the long poll, the loop's */
	uint32_t epoch, since;        /* the directory we hold; 0 none */
	uint16_t port;                /* our listen port */
	size_t n_cand;
	struct wgd_ip cand[WGD_MAX_CANDIDATES];
	uint64_t next_poll_ms, last_poll_ms;
	uint32_t backoff_ms;          /* the last wait; 0 after a good answer */
	bool polling;                 /* the poll is out */
	bool poll_ok;                 /* the last poll was answered */
	uint64_t read_after_ms;       /* no device read, nor join, before */

	/* What mesh_config points at, kept here for the mesh's life. */
	uint8_t self_key[WG_KEY_LEN];
	struct wgd_endpoint hub_endpoint;
	uint8_t (*admin)[WG_KEY_LEN];
	size_t n_admin, cap_admin;
	struct wgd_ip routes[WGD_MAX_ROUTES];
	size_t n_routes;

	/* The keys we may have put on the device: STATE_DIR/IFACE.mesh. */
	char rec_file[IF_NAMESIZE + 8];
	uint8_t (*rec)[WG_KEY_LEN];
	size_t n_rec, cap_rec;
	bool rec_dirty;               /* a key left: rewrite it in time */

	char status_file[IF_NAMESIZE + 16];
	uint64_t status_next_ms;
	char *status_last;            /* as last written, to skip a rewrite */
	size_t status_last_len;
	bool status_written;

	uint64_t next_probe_ms;       /* the direct peers' next probes */
};

struct client {
	const struct client_sys *sys;
	struct prober prober;         /* the mesh's probes, sys_real's */
	const char *ifname;
	uint32_t ifindex;
	uint32_t max_mtu;             /* the link's, 0 when unknown */
	bool link_up;
	struct rtnl *rt;
	struct rtnl_monitor *mon;
	struct wgctl *wg;
	uint8_t hub_key[WG_KEY_LEN];
	bool has_pubkey;
	uint8_t pubkey[WG_KEY_LEN];   /* ours, to derive the link-local from */
	struct in6_addr ll;
	bool added_server_route;      /* fe80::/128, removed again at exit */

	const char *state_dir;
	int state_fd;                 /* the state directory, opened safely */
	char state_file[IF_NAMESIZE + 8];
	const char *script;
	unsigned script_timeout;
	bool no_dns, no_mtu;
	bool no_mesh;                 /* --no-mesh */
	bool mesh_offered;            /* the last lease answer had mesh=1 */
	struct client_mesh mesh;

	/* Addresses to ask for without a lease: the last ones we held. */
	bool has_hint4, has_hint6;
	struct wgd_ip hint4, hint6;

	enum client_state state;
	struct lease_state lease;
	uint64_t next_try_ms;         /* the next request, CLOCK_BOOTTIME */
	bool requesting;              /* a request is out: next_try_ms waits */
	uint32_t backoff_ms;          /* the last wait; 0 before a failure */
	uint64_t failing_since_ms;    /* start of the first failed request in a row */
};

/* ---- state.c ---- */

/* Moves to a state; the one place that sets the timers for it. */
void state_transition(struct client *cl, enum client_state to, uint64_t now_ms);
/* After a request that got no usable answer, started at started_ms. */
void state_request_failed(struct client *cl, uint64_t started_ms, uint64_t now_ms);
/* The timers: expiry, T1 and T2, once now_ms has reached them. */
void state_tick(struct client *cl, uint64_t now_ms);
/* When the loop must wake next (UINT64_MAX: never by itself). */
uint64_t state_next_wake(const struct client *cl);
/* The poll() timeout until then, in ms: -1 never happens, since the loop
 * wakes at least every STATE_MAX_SLEEP_MS whatever the timers say. */
#define STATE_MAX_SLEEP_MS (3600 * 1000)
int state_poll_timeout(const struct client *cl, uint64_t now_ms);
/* The request for the current state. */
void state_build_request(const struct client *cl, struct wgd_msg *req);
/*
 * Takes a parsed response to req: everything in it is checked (configure.c)
 * and only what passes is configured. Returns true when the lease was taken,
 * false when nothing usable came (the retry is then scheduled).
 */
bool state_take_response(struct client *cl, const struct wgd_msg *req,
			 const struct wgd_msg *resp, uint64_t started_ms, uint64_t now_ms);
/* Queues the hook for reason, with the lease before (old) and after (new). */
void state_run_hook(struct client *cl, const char *reason, const struct lease_state *old,
		    const struct lease_state *new);
/* Removes everything the lease put in place, running the hook with reason. */
void state_drop_lease(struct client *cl, const char *reason);

/* ---- configure.c ---- */

/*
 * The checks on what the hub sends. Each returns NULL when the item may be
 * used, else why not, for one log line. dev is the local WireGuard device,
 * as read for this response.
 */
const char *check_route(const struct client *cl, const struct wgd_ip *r, const struct wgdev *dev);
const char *check_addr(const struct client *cl, const struct wgd_ip *a, const struct wgdev *dev,
		       const struct rtnl_addr *addrs, size_t n_addrs);
const char *check_mtu(const struct client *cl, uint32_t mtu);
const char *check_dns(const struct wgd_ip *a);
/* A comma-separated list of domain names: letters, digits, hyphens, dots. */
bool dns_search_valid(const char *s);
/* The hub peer: the one peer whose allowed-IPs hold exactly fe80::/128.
 * 0 with its key, -ENOENT with none, -EEXIST with several. */
int find_hub_peer(const struct wgdev *dev, uint8_t key[WG_KEY_LEN]);

/* Logs an item from the hub that was not taken, in one line:
 * "from the hub: KEY VALUE: refused: WHY". */
void log_refused(const char *key, const char *value, const char *why);

void configure_addr(struct client *cl, bool had, const struct wgd_ip *old, bool has,
		    const struct wgd_ip *new, uint32_t lifetime_s);
/* Moves the routes to routes[0..n) (checked, distinct). */
void configure_routes(struct client *cl, struct lease_state *ls, const struct wgd_ip *routes,
		      size_t n, const struct wgdev *dev);
void configure_dns(struct client *cl, struct lease_state *ls);
void configure_dns_remove(struct client *cl, struct lease_state *ls);
void configure_mtu(struct client *cl, struct lease_state *ls, uint32_t mtu);

/* ---- leasefile.c ---- */

/*
 * IFACE.lease: "hub=KEY" on its first line, then the lease in the protocol's
 * response format. An ended lease is saved with leasetime=0: its addresses
 * are then only what to ask for next.
 */
ssize_t leasefile_format(const struct lease_state *ls, const uint8_t hub_key[WG_KEY_LEN],
			 bool ended, char *buf, size_t size);
/* Parses a lease file; -EBADMSG when it is not one, -ESTALE when it is
 * not hub_key's (any hub's will do when hub_key is NULL). msg receives the
 * lease and hub_out, unless NULL, the hub's key. */
int leasefile_parse(const char *buf, size_t len, const uint8_t *hub_key, uint8_t *hub_out,
		    struct wgd_msg *msg);
void leasefile_save(struct client *cl, bool ended);
/* Takes up a remembered lease, or its addresses as hints. */
void leasefile_load(struct client *cl, uint32_t now_real_s, uint64_t now_ms);

/* ---- exchange.c ---- */

/*
 * One request and its response over TCP to the hub, moved along by the
 * client's loop: nothing here blocks. The loop polls exchange_fd() for
 * exchange_events(), passes what poll() saw, and the time, to
 * exchange_advance(), and wakes by exchange_wake() for the deadline. Once
 * step is EXCHANGE_DONE, result is 0 with exchange_response(), or -errno;
 * exchange_end() then makes it idle again. The loop may hold several.
 */
enum exchange_step {
	EXCHANGE_IDLE,        /* not started, or ended */
	EXCHANGE_CONNECTING,  /* connect() under way */
	EXCHANGE_SENDING,     /* the request, as the socket takes it */
	EXCHANGE_RECEIVING,   /* the response, through the incremental parser */
	EXCHANGE_DONE,        /* result is set; the socket is closed */
};

struct exchange {
	enum exchange_step step;
	int fd;
	int result;
	uint64_t started_ms, deadline_ms; /* CLOCK_BOOTTIME */
	struct wgd_msg req;
	size_t out_len, out_off;
	char out[WGD_MAX_MESSAGE];
	struct wgd_parser parser;         /* the response in parser.msg */
	struct wgd_peer_entry peers[WGD_MAX_PEERS]; /* its directory lines */
};

void exchange_init(struct exchange *ex);
/* Sends req through a new connection, the old one ended. On failure, also
 * returned, the exchange is done at once with the error. */
int exchange_start(struct exchange *ex, struct client *cl, const struct wgd_msg *req,
		   uint64_t now_ms, uint64_t timeout_ms);
/* The descriptor to poll while it runs, else -1 (which poll() skips). */
int exchange_fd(const struct exchange *ex);
short exchange_events(const struct exchange *ex);
/* When the loop must call exchange_advance() at the latest: 0 once done,
 * UINT64_MAX when idle. */
uint64_t exchange_wake(const struct exchange *ex);
/* Goes as far as the socket lets it without waiting; past the deadline,
 * done with -ETIMEDOUT. */
void exchange_advance(struct exchange *ex, short revents, uint64_t now_ms);
/* The response, once done without error; else NULL. */
const struct wgd_msg *exchange_response(const struct exchange *ex);
/* Closes what is open; the exchange is idle. */
void exchange_end(struct exchange *ex);

/* ---- mesh.c ---- */

/*
 * The client's side of the mesh: the long poll to the hub, fed to the
 * pure state machine of common/mesh.c, whose actions go to the device
 * through client_sys.mesh_apply. Every key it adds is first recorded in
 * STATE_DIR/IFACE.mesh, so that a later run removes what a crash left and
 * nothing else: a peer on the device that is neither the hub nor recorded
 * is the administrator's, and never touched.
 */

/* At start-up, with the device as read: removes the peers an earlier run
 * recorded and left, and takes the keys of the administrator's. ex is the
 * loop's exchange for the long poll. 0 or -errno. */
int client_mesh_init(struct client *cl, const struct wgdev *dev, struct exchange *ex);
/* Whether the client is to be in the mesh now. */
bool client_mesh_wanted(const struct client *cl);
/* Each pass of the loop: joins or leaves, starts the poll, reads the
 * device, ticks the state machine, makes its actions, writes the status. */
void client_mesh_run(struct client *cl, uint64_t now_ms);
/* The poll is done (its exchange EXCHANGE_DONE). */
void client_mesh_answered(struct client *cl, uint64_t now_ms);
/* When client_mesh_run() must run next; UINT64_MAX: not by itself. */
uint64_t client_mesh_next_wake(const struct client *cl);
/* Leaves the mesh: its peers are removed from the device (unless it is
 * gone), and the record and the status file with them. */
void client_mesh_leave(struct client *cl, bool device_gone);
void client_mesh_free(struct client *cl);

/* The request_peers for the directory held and the candidates found. */
void client_mesh_build_request(const struct client *cl, struct wgd_msg *req);
/*
 * Candidates from the host's addresses: IPv4 that is not loopback,
 * link-local, multicast, unspecified or reserved, and IPv6 global unicast
 * (2000::/3), none inside routes[]; IPv4 first, at most
 * WGD_MAX_CANDIDATES with a place kept for IPv6. Returns how many.
 */
size_t client_mesh_candidates(const struct rtnl_addr *addrs, size_t n, const struct wgd_ip *routes,
			      size_t n_routes, struct wgd_ip out[WGD_MAX_CANDIDATES]);

/* The record: one base64 key a line. format: the length, or -ENOSPC.
 * parse: how many keys (at most max), or -EBADMSG. */
ssize_t client_mesh_record_format(const uint8_t (*keys)[WG_KEY_LEN], size_t n, char *buf,
				  size_t size);
ssize_t client_mesh_record_parse(const char *buf, size_t len, uint8_t (*keys)[WG_KEY_LEN],
				 size_t max);
/* Writes cl->mesh's record through the state directory (removes the file
 * when no key is left); loads it into cl->mesh. 0 or -errno. */
int client_mesh_record_save(struct client *cl);
int client_mesh_record_load(struct client *cl);

/* A lease exchange is to start: the poll, which needs the same addresses
 * and ports, is ended, and sent again once cl->requesting is over. */
void client_mesh_pause_poll(struct client *cl);
/* The link came back up: a poll out lost its source address; ask again. */
void client_mesh_restart_poll(struct client *cl, uint64_t now_ms);

/*
 * STATE_DIR/IFACE.mesh-status, which the client rewrites (at most once per
 * MESH_STATUS_EVERY_MS, when it changed) for show to read: "mesh=STATE",
 * "epoch=", "version=", then a line per peer, "peer=KEY IP4|- IP6|- PATH
 * ENDPOINT|- SINCE", SINCE the CLOCK_BOOTTIME millisecond its path began.
 */
char *client_mesh_status_format(const struct client *cl, size_t *len);
/* wg-dynamic-client show: the mesh part, from the status file in the
 * state directory dirfd, when a client runs; json: one member, "mesh",
 * of the object being printed, with its leading comma. */
void client_mesh_show(FILE *f, int dirfd, const char *ifname, bool running, bool json);

#endif
