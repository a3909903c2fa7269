/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_SERVER_H
#define WGD_SERVER_H

#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "../common/key.h"
#include "../common/ratelimit.h"
#include "../common/rtnl.h"
#include "../common/wgctl.h"
#include "../common/wgdev.h"
#include "../protocol/proto.h"
#include "directory.h"
#include "journal.h"
#include "lease.h"
#include "peers.h"
#include "pool.h"
#include "status.h"

/* What the server's files share. */

#define MAX_CONNS 256            /* concurrent connections, all peers */
#define MAX_CONNS_PER_PEER 4
#define IDLE_TIMEOUT_S 5         /* a request must arrive whole within this */
#define REFRESH_MIN_MS 1000      /* device re-reads on lookup misses, at most */
#define REFRESH_PERIOD_MS 30000  /* periodic re-read: peers come and go */
#define REFRESH_PERIOD_AUTO_LL_MS 3000
#define REFRESH_PERIOD_MESH_MS 1000 /* endpoints move when NATs do */
#define MESH_POLL_HOLD_MS 25000  /* a long poll with nothing new is answered then */
#define MESH_MAX_POLLS 4096      /* long polls held at once, one per peer */
#define MESH_CLAIM_MIN_MS 1000   /* a peer's port and candidates change no faster */
#define CONTROL_DIR "/run/wg-dynamic"
#define STATE_DIR "/var/lib/wg-dynamic"
#define ENGINE_USER "wg-dynamic"
#define ENGINE_DIR "server"      /* in the state directory: the engine's alone */

enum exit_status {
	EXIT_OK = 0,
	EXIT_USAGE = 64,
	EXIT_NO_IFACE = 65,
	EXIT_NOT_WG = 66,
	EXIT_NO_POOL = 67,
	EXIT_SOCKET = 68,
	EXIT_POOL_OVERLAP = 69,
	EXIT_SYSTEM = 70,
	EXIT_IFACE_GONE = 71,
	EXIT_JOURNAL = 72,
	EXIT_STATE_DIR = 73,
	EXIT_ENGINE = 74,
	EXIT_USER = 75,
};

/*
 * What the engine's event loop waits on: epoll's data points at the
 * watcher, and an event calls its on_event. Something new to wait on (a
 * long poll, say) embeds a watcher, fills it in and hands it to
 * watcher_add(); closing the descriptor unregisters it.
 */
struct watcher {
	int fd;
	void (*on_event)(struct watcher *w, uint32_t events);
};

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

enum conn_state {
	CONN_READING,
	CONN_COMMITTING,              /* answered; waiting for the journal commit */
	CONN_WRITING,                 /* flushing out[] */
	CONN_POLLING,                 /* a request_peers held until the directory moves */
};

struct conn {
	struct watcher w;             /* w.fd is the socket */
	struct engine *e;
	struct in6_addr ll;
	uint8_t pubkey[WG_KEY_LEN];
	uint64_t deadline_ms;
	enum conn_state state;
	bool ctl;                     /* a status query on the control socket */
	bool watched;                 /* registered with epoll */
	char *big_out;                /* a status reply, instead of out[] */
	struct wgdev_change change;   /* for the device, once committed */
	struct conn *commit_next;
	int commit_err;               /* how the device took the change */
	size_t out_len, out_off;
	char out[WGD_MAX_MESSAGE];
	struct wgd_parser parser;
	uint32_t poll_epoch, poll_since; /* what a request_peers holds */
	uint64_t poll_read_ms;        /* answered after a device read past this */
	/* In the engine's conns, or in its polls while CONN_POLLING. */
	struct conn *prev, *next;
};

/*
 * The configuration: filled in by main.c before the split, and read by both
 * sides after it, neither of which changes it.
 */
struct server_config {
	const char *ifname;
	uint32_t ifindex;
	uint32_t leasetime;
	uint32_t quarantine;
	uint32_t refresh_ms;
	uint32_t idle_timeout_ms;
	size_t max_conns, max_conns_per_peer;
	bool auto_ll;
	bool mesh;                    /* --mesh: the directory of peers */
	size_t max_polls;             /* --mesh-max-polls */
	const char *state_dir;
	const char *user;
	char journal_name[4096 + 64]; /* for logs: the engine sees it from a chroot */
	struct wgd_ip pools[64];      /* --pool */
	size_t n_pools;
	struct wgd_ip routes[WGD_MAX_ROUTES]; /* --route */
	size_t n_routes;
	struct wgd_ip dns[WGD_MAX_DNS];
	size_t n_dns;
	char dns_search[WGD_MAX_DNS_SEARCH];
	uint32_t mtu;
};

extern const struct server_config *const cfg;

/* What main.c hands the engine at the split; the rest it closes first. */
struct engine_start {
	int parent_fd;                /* the channel to the parent */
	int listen_fd, ctl_fd;        /* port 970; the control socket, or -1 */
	int dir_fd;                   /* the engine's directory, its chroot */
	struct rtnl *rt;
	uid_t uid;
	gid_t gid;
};

/* The engine's state, which engine_main() holds and hands down. */
struct engine {
	struct journal *journal;
	struct rtnl *rt;
	struct rtnl_monitor *mon;
	struct poolset *pools;
	struct lease_table *leases;
	struct peer_index *peers;

	int epfd;
	/* Its own watchers; connections bring theirs. */
	struct watcher listener, control, parent, signals, rtnl_events;
	struct status_counters counters;
	struct ratelimit logrl;       /* per-peer log lines */
	uint64_t last_refresh_ms;
	size_t last_peer_count;       /* at the last device read */
	bool all_leases_on_device;    /* at the last device read: no lease departed */
	struct conn *conns;
	size_t n_conns;
	/* Answered requests waiting for this round's commit, in order. */
	struct conn *commit_head, **commit_tail;

	/* The mesh (meshpoll.c): the directory, and the long polls held,
	 * oldest first, which is their deadlines' order too. */
	struct directory dir;
	struct conn *polls, *polls_tail;
	size_t n_polls;
	bool polls_pending;           /* a poll came that may be answered now */
	bool mesh_refresh;            /* a peer joined: read its endpoint soon */
	bool polls_wait_read;         /* a poll waits for the next device read */
	uint64_t polls_read_ms;       /* the device read the polls last saw */
	uint32_t polls_epoch, polls_version; /* what the polls held last saw */
};

/* The control socket, opened by main.c before the split and served by
 * the engine; the parent removes it at the end. */
struct control_socket {
	int fd, dir_fd;               /* -1 when there is none */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char name[IF_NAMESIZE + 8];
};

/* What a per-peer log line is about: each is limited on its own. */
enum log_cause {
	LC_BAD_REQUEST = 1,
	LC_REFUSED_PORT,
	LC_REFUSED_PEER,
	LC_REFUSED_BUSY,
	LC_IDLE,
	LC_UNAVAILABLE,
	LC_GRANT,
	LC_RELEASE,
	LC_REPEAT,
	LC_RECORD,
	LC_DEVICE,
	LC_MESH,
	LC_MESH_LEAVE,
};


static inline const char *fmt_ip(const struct wgd_ip *ip, char buf[WGD_IP_STRLEN])
{
	return wgd_ip_format(ip, buf, WGD_IP_STRLEN);
}

static inline const char *fmt_key(const uint8_t *key, char buf[WG_KEY_B64_LEN])
{
	wgkey_to_base64(buf, key);
	return buf;
}

/* exit.c: fatal() and fatalx() with the exit status of the case */
void fatal_status(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
void fatalx_status(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* engine.c */
void __attribute__((noreturn)) engine_main(const struct engine_start *start);
int watcher_add(struct engine *e, struct watcher *w, uint32_t events);
int watcher_modify(struct engine *e, struct watcher *w, uint32_t events);
void __attribute__((format(printf, 5, 6)))
peer_log(struct engine *e, void (*out)(const char *, ...), const uint8_t *key,
	 enum log_cause cause, const char *fmt, ...);
void journal_lease(struct engine *e, const struct lease *l);
void journal_release(struct engine *e, const struct wgdev_change *c, uint32_t quarantine);
void release_lease(struct engine *e, struct lease *l, const char *why, bool quarantine);
/* What a caller of index_device() does with each peer and its lease (or
 * NULL) as the device is indexed, sparing a second lookup of each. */
struct peer_visit {
	void (*fn)(const struct wgdev_peer *peer, const struct lease *l, void *ctx);
	void *ctx;
};
int index_device(struct engine *e, struct wgdev *dev, const struct peer_visit *visit);
int refresh_device(struct engine *e);
void load_route_pools(struct engine *e);

/* conn.c */
void conn_close(struct conn *c);
void conn_unlink(struct conn *c);
void conn_respond(struct conn *c, const struct wgd_msg *resp);
void conn_respond_error(struct conn *c, enum wgd_error err, const char *why);
void conn_flush(struct conn *c);
void commit_round(struct engine *e);
void accept_conns(struct watcher *w, uint32_t events);
void expire_conns(struct engine *e);

/* meshpoll.c */
void mesh_init(struct engine *e);
void mesh_request(struct conn *c, const struct wgd_msg *req);
void mesh_lease_changed(struct engine *e, const uint8_t *pubkey);
void mesh_device_peer(const struct wgdev_peer *peer, const struct lease *l, void *ctx);
void mesh_poll_unlink(struct conn *c);
void mesh_round(struct engine *e);
uint64_t mesh_next_timeout(const struct engine *e);

/* restore.c */
void start_up_state(struct engine *e);

/* control.c */
void accept_ctl(struct watcher *w, uint32_t events);
int remove_stale_socket(const struct control_socket *cs);
void open_control_socket(struct control_socket *cs);
int show_main(int argc, char *argv[]);

/* parent.c */
int parent_main(int fd, struct wgctl *wg, pid_t engine);

#endif
