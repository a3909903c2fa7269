/* SPDX-License-Identifier: MIT */
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
#include "../common/wgdev.h"
#include "../protocol/proto.h"
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
};

struct conn {
	struct watcher w;             /* w.fd is the socket */
	struct in6_addr ll;
	uint8_t pubkey[WG_KEY_LEN];
	uint64_t deadline_ms;
	enum conn_state state;
	bool ctl;                     /* a status query on the control socket */
	bool watched;                 /* registered with epoll */
	char *big_out;                /* a status reply, instead of out[] */
	struct lease_change change;   /* for the device, once committed */
	struct conn *commit_next;
	int commit_err;               /* how the device took the change */
	size_t out_len, out_off;
	char out[WGD_MAX_MESSAGE];
	struct wgd_parser parser;
	struct conn *prev, *next;
};

struct server {
	const char *ifname;
	uint32_t ifindex;
	uint32_t leasetime;
	uint32_t quarantine;
	uint32_t refresh_ms;
	uint32_t idle_timeout_ms;
	size_t max_conns, max_conns_per_peer;
	bool auto_ll;
	const char *state_dir;
	const char *user;
	char journal_name[4096 + 64]; /* for logs: the engine sees it from a chroot */
	struct journal *journal;
	struct passwd *pw;

	struct wgctl *wg;
	struct rtnl *rt;
	struct rtnl_monitor *mon;
	struct poolset *pools;
	struct lease_table *leases;
	struct peer_index *peers;

	struct wgd_ip cfg_pools[64];
	size_t n_cfg_pools;
	struct wgd_ip cfg_routes[WGD_MAX_ROUTES];
	size_t n_cfg_routes;
	struct wgd_ip dns[WGD_MAX_DNS];
	size_t n_dns;
	char dns_search[WGD_MAX_DNS_SEARCH];
	uint32_t mtu;

	int epfd, listen_fd, sig_fd, ctl_fd, priv_fd;
	/* Opened by the parent; the engine keeps only engine_dir_fd, until its
	 * chroot: a directory outside would be a way out. */
	int state_fd, engine_dir_fd, ctl_dir_fd;
	char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char ctl_name[IF_NAMESIZE + 8];
	struct status_counters counters;
	struct ratelimit logrl;       /* per-peer log lines */
	uint64_t last_refresh_ms;
	struct conn *conns;
	size_t n_conns;
	/* Answered requests waiting for this round's commit, in order. */
	struct conn *commit_head, **commit_tail;
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
};


/* main.c */
extern struct server srv;

/* engine.c */
void __attribute__((noreturn)) engine_main(int fd);
int watcher_add(struct watcher *w, uint32_t events);
int watcher_modify(struct watcher *w, uint32_t events);
const char *fmt_ip(const struct wgd_ip *ip, char buf[WGD_IP_STRLEN]);
const char *fmt_key(const uint8_t *key, char buf[WG_KEY_B64_LEN]);
void __attribute__((format(printf, 4, 5)))
peer_log(void (*out)(const char *, ...), const uint8_t *key, enum log_cause cause,
	 const char *fmt, ...);
void journal_lease(const struct lease *l);
void journal_release(const uint8_t *pubkey, const struct lease_change *c,
			    uint32_t quarantine);
void release_lease(struct lease *l, const char *why, bool quarantine);
int index_device(struct wgdev *dev);
int refresh_device(void);
void load_route_pools(void);

/* conn.c */
void conn_close(struct conn *c);
void conn_flush(struct conn *c);
void commit_round(void);
void accept_conns(struct watcher *w, uint32_t events);
void expire_conns(void);

/* restore.c */
void start_up_state(void);

/* control.c */
void accept_ctl(struct watcher *w, uint32_t events);
int remove_stale_socket(void);
void open_control_socket(void);
int show_main(int argc, char *argv[]);

/* parent.c */
extern pid_t engine_pid;
int parent_main(int fd);

#endif
