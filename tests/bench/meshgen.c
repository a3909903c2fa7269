// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * meshgen: simulated mesh peers for tests/bench/mesh-fanout.sh.
 *
 *   meshgen IFACE WGCONF N J HUBPIDS WGPIDS
 *
 * The clients are loadgen's (loadgen setup wrote WGCONF and put the
 * addresses on IFACE): client i is the link-local fe80::1:0:HI:LO, the only
 * allowed-IP of the i-th peer of WGCONF, whose public key is how the
 * directory names it. Clients 0 to N-1 are the pollers, N to N+J-1 the
 * joiners. Every request is a connection from [LL%IFACE]:970 to
 * [fe80::%IFACE]:970, closed abortively after its answer, as
 * wg-dynamic-client does; a request_peers carries port=51820 and one
 * candidate, 172.16.0.0 plus the client's number plus one.
 *
 * Set-up: every poller gets a lease (request_ip for any address), joins the
 * directory (request_peers, epoch and since 0), then follows its answers
 * (since= the version of the last one) until all of them hold a long poll
 * at the same version, nothing has been answered for SETTLE_US, and each
 * holds the whole directory: the N pollers, no one else.
 *
 * Then the joins, one at a time: a joiner gets a lease, sends its
 * request_peers, and follows more=1 to the end of the directory as a
 * client does, but holds no poll after, so that the pollers stay N (the
 * hub drops it 60 s later; its gone= line then reaches the pollers as any
 * change does, and the next join waits for that fan-out to end).
 *
 * The hub knows the join once the joiner's request has reached it, and the
 * clients share the hub's host: so from the send() of the request's last
 * bytes, for each poller, until it has read an answer with the joiner's
 * peer= line. (Not from the joiner's own answer: the server may answer the
 * pollers first.) An answer's time is the kernel's receive stamp
 * (SO_TIMESTAMPNS), taken as it entered this host's stack, so that the
 * time this one process takes to read a thousand answers and open a
 * thousand connections does not count; without a stamp, the time of the
 * wake-up that read it. Every poller asks again as soon as it has an answer
 * (the answers of one wake-up first, then their next polls), and the next
 * join starts when every poll is held again, as above.
 *
 * The CPU time of the processes in HUBPIDS (the server's parent and engine)
 * and in WGPIDS (wireguard-go), comma-separated or "-", runs from the start
 * of the first join to the end of the last: utime + stime from
 * /proc/PID/stat, in clock ticks, and the run time the scheduler keeps in
 * /proc/PID/task/TID/schedstat, in nanoseconds, where the kernel has it.
 * Before the first join, the hub's run time over IDLE_US with the polls
 * held and nothing happening says how much of a join's figure is not the
 * join's (with --mesh the server reads the device every second).
 *
 * One line per join, then one of figures, key=value separated by spaces:
 *   join=K request_us=R first_us=F median_us=M last_us=L early=E missing=X
 *   peers=N joins=J sync_s=S last_p50_us= last_p95_us= last_max_us=
 *   median_p50_us= request_p50_us= line_bytes= answer_bytes= hub_cpu_us=
 *   hub_run_us= hub_net_us= grant_run_us= wg_cpu_us= idle_hub_run_us_per_s=
 *   joins_s= missing= poll_failures= resets= unknown_lines= first_error=
 * request_us runs from the joiner's request to its whole first answer;
 * first, median and last are the pollers' times from the same start; early
 * counts the pollers that had the line before the joiner had its answer,
 * missing those that had no such answer within JOIN_TIMEOUT_US. line_bytes
 * is the mean length of the peer= lines the pollers read during the joins,
 * newline included, answer_bytes that of their whole answers. The CPU
 * figures are per join: hub_cpu_us from the ticks, the others from the run
 * time (0 without schedstat); hub_net_us is hub_run_us less the idle rate
 * over the joins' time (joins_s), grant_run_us the part spent before the
 * joiner's request_peers (its lease: the journal and the device).
 * poll_failures counts the pollers' requests that got no answer (refused,
 * reset, closed), each asked again after RETRY_US; resets the answers
 * with reset=1 to a poller that held a directory; unknown_lines the lines
 * of keys that are none of the clients'.
 *
 * The exit status is 1 when the set-up failed or a poller missed a join,
 * else 0, whatever the figures.
 */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "../../common/key.h"
#include "../../protocol/ipaddr.h"
#include "../../protocol/proto.h"

#define SIMCLIENT_PROG "meshgen"
#include "simclient.h"

#define MAX_CLIENTS 65536
#define MAX_JOINS 10000
#define MAX_PIDS 8
/* Connections being set up at once while the pollers get their leases and
 * their directories: the server's limit of ordinary connections is 256. */
#define SETUP_CONC 64
#define SETUP_TIMEOUT_US (180 * 1000000ull)
#define JOIN_TIMEOUT_US (10 * 1000000ull)
/* Quiet needed before a join: every poll sent, none answered. */
#define SETTLE_US (200 * 1000ull)
#define RETRY_US (1000 * 1000ull)
#define IDLE_US (2 * 1000000ull)
#define CAND_PORT 51820
#define EVENTS 1024

enum mc_state { MC_IDLE, MC_CONNECTING, MC_SENDING, MC_WAITING };

struct mclient {
	uint32_t idx;
	int fd; /* -1: no connection */
	enum mc_state state;
	bool peers_req;     /* the request in flight: request_peers, else request_ip */
	bool queued;        /* in the queue of clients to start */
	bool has_lease;
	bool answered_more; /* the last answer had more=1 */
	uint32_t req_since; /* since= of the request in flight */
	uint32_t epoch, version;
	uint32_t known;     /* members it holds */
	uint64_t retry_us;  /* 0, or when to ask again after a failure */
	uint64_t got_us;    /* when it had the current joiner's line, 0 not yet */
	uint64_t sent_us, answer_us; /* its last request's last byte, and answer */
	uint64_t arrived_us; /* the kernel's stamp of the last data read, 0 none */
	size_t req_len, sent, rlen;
	uint8_t *members;   /* a bit per client: its directory */
	struct wgd_parser parser;
	struct wgd_peer_entry peers[WGD_MAX_PEERS]; /* its answer's lines */
	char req[512];
	char rbuf[WGD_MAX_MESSAGE];
};

struct keyidx {
	uint8_t key[WG_KEY_LEN];
	uint32_t idx;
};

struct cpu {
	uint64_t hub_ticks, hub_ns, wg_ticks;
};

struct gen {
	unsigned ifindex;
	uint32_t n, j, total;
	struct mclient *c;
	struct keyidx *keys; /* sorted by key */
	uint8_t *bitmaps;
	size_t bitmap_len;
	int epfd;

	/* Clients waiting to start their next request, and how many may be
	 * connecting or sending at once (waiting too, when conc_waiting). */
	uint32_t *queue, q_head, q_len;
	uint32_t conc, active;
	bool conc_waiting;
	uint32_t n_retry;

	/* Which phase answers belong to. */
	bool polling;        /* pollers ask again at once */
	bool measuring;      /* during the joins: count the pollers' bytes */
	int64_t joiner;      /* client index of the current joiner, -1 none */
	uint32_t joiner_key_idx;
	uint32_t got;        /* pollers that have the current joiner */
	uint64_t last_poll_answer_us;

	uint32_t epoch;
	uint32_t setup_errors, unknown_lines, resets, poll_failures;
	uint64_t line_bytes, lines, answer_bytes, answers;
	char first_error[160];

	pid_t hub_pids[MAX_PIDS], wg_pids[MAX_PIDS];
	unsigned n_hub, n_wg;
};

/* CLOCK_MONOTONIC less CLOCK_REALTIME, in microseconds: the kernel stamps
 * received data with the real time. */
static int64_t mono_minus_real_us(void)
{
	struct timespec m, r;

	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &r);
	return ((int64_t)m.tv_sec - (int64_t)r.tv_sec) * 1000000 +
	       ((int64_t)m.tv_nsec - (int64_t)r.tv_nsec) / 1000;
}

/* "-" or PID[,PID...] */
static int pids_arg(const char *what, const char *arg, pid_t *pids, unsigned *n)
{
	const char *p = arg;

	*n = 0;
	if (!strcmp(arg, "-"))
		return 0;
	for (;;) {
		char *end;
		long v;

		errno = 0;
		v = strtol(p, &end, 10);
		if (errno || end == p || v < 1 || *n >= MAX_PIDS || (*end && *end != ',')) {
			fprintf(stderr, "meshgen: %s %s: give up to %d PIDs separated by commas, "
					"or -\n", what, arg, MAX_PIDS);
			return -1;
		}
		pids[(*n)++] = (pid_t)v;
		if (!*end)
			return 0;
		p = end + 1;
	}
}

static void note_error(struct gen *g, uint32_t client, const char *what)
{
	char ab[INET6_ADDRSTRLEN];
	struct in6_addr ll;

	if (g->first_error[0])
		return;
	client_ll(&ll, client);
	inet_ntop(AF_INET6, &ll, ab, sizeof(ab));
	snprintf(g->first_error, sizeof(g->first_error), "%s:%s", ab, what);
	/* Blanks would split the figures line. */
	for (char *p = g->first_error; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n')
			*p = '_';
	}
}

/* ---- the clients' keys, from WGCONF in client order ---- */

static int cmp_keyidx(const void *a, const void *b)
{
	return memcmp(((const struct keyidx *)a)->key, ((const struct keyidx *)b)->key, WG_KEY_LEN);
}

static int keys_read(struct gen *g, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[256], b64[WG_KEY_B64_LEN + 1];
	uint32_t i = 0;

	if (!f) {
		perror(path);
		return -1;
	}
	while (i < g->total && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "PublicKey = %45s", b64) != 1)
			continue;
		if (wgkey_from_base64(g->keys[i].key, b64)) {
			fprintf(stderr, "meshgen: %s: bad key %s\n", path, b64);
			fclose(f);
			return -1;
		}
		g->keys[i].idx = i;
		i++;
	}
	fclose(f);
	if (i < g->total) {
		fprintf(stderr, "meshgen: %s has %u peers, not %u: run loadgen setup with N+J\n",
			path, i, g->total);
		return -1;
	}
	qsort(g->keys, g->total, sizeof(g->keys[0]), cmp_keyidx);
	return 0;
}

/* The client with this key, or -1. */
static int64_t key_client(const struct gen *g, const uint8_t *key)
{
	struct keyidx k = { .idx = 0 };
	const struct keyidx *hit;

	memcpy(k.key, key, WG_KEY_LEN);
	hit = bsearch(&k, g->keys, g->total, sizeof(g->keys[0]), cmp_keyidx);
	return hit ? (int64_t)hit->idx : -1;
}

/* ---- CPU time ---- */

/* utime + stime of a process, its threads summed by the kernel, in ticks. */
static uint64_t proc_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long utime, stime;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command name: state is field 3, utime 14, stime 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &utime, &stime) != 2)
		return 0;
	return utime + stime;
}

/* The scheduler's run time of every thread of a process, in nanoseconds;
 * 0 without schedstat. */
static uint64_t proc_run_ns(pid_t pid)
{
	char path[64];
	struct dirent *de;
	uint64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char spath[64 + sizeof(de->d_name) + 16];
		unsigned long long ns;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(spath, sizeof(spath), "%s/%s/schedstat", path, de->d_name);
		f = fopen(spath, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	closedir(d);
	return sum;
}

static void cpu_sample(const struct gen *g, struct cpu *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < g->n_hub; i++) {
		out->hub_ticks += proc_ticks(g->hub_pids[i]);
		out->hub_ns += proc_run_ns(g->hub_pids[i]);
	}
	for (unsigned i = 0; i < g->n_wg; i++)
		out->wg_ticks += proc_ticks(g->wg_pids[i]);
}

/* ---- connections ---- */

static bool is_poller(const struct gen *g, const struct mclient *c)
{
	return c->idx < g->n;
}

static ssize_t build_request(const struct gen *g, struct mclient *c, bool peers)
{
	static struct wgd_msg req;
	uint32_t cand = 0xac100000u + c->idx + 1; /* 172.16.0.0/12 */

	memset(&req, 0, sizeof(req));
	req.version = 1;
	if (!peers) {
		req.cmd = WGD_CMD_REQUEST_IP;
		req.has_ip4 = req.has_ip6 = true;
		req.ip4.family = AF_INET;
		req.ip4.cidr = 32;
		req.ip6.family = AF_INET6;
		req.ip6.cidr = 128;
	} else {
		req.cmd = WGD_CMD_REQUEST_PEERS;
		req.epoch = c->epoch;
		req.since = c->epoch ? c->version : 0;
		req.port = CAND_PORT;
		req.n_cand = 1;
		req.cand[0].family = AF_INET;
		req.cand[0].cidr = 32;
		req.cand[0].ip4.s_addr = htonl(cand);
		c->req_since = req.since;
	}
	(void)g;
	return wgd_serialize_request(&req, c->req, sizeof(c->req));
}

static void conn_close(struct gen *g, struct mclient *c)
{
	if (c->fd >= 0) {
		epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	if (c->state == MC_CONNECTING || c->state == MC_SENDING ||
	    (g->conc_waiting && c->state == MC_WAITING))
		g->active--;
	c->fd = -1;
	c->state = MC_IDLE;
}

/* A request that got no answer: asked again after RETRY_US. */
static void conn_fail(struct gen *g, struct mclient *c, const char *what, int err)
{
	char buf[96];

	snprintf(buf, sizeof(buf), "%s%s%s", what, err ? ":" : "", err ? strerror(err) : "");
	note_error(g, c->idx, buf);
	conn_close(g, c);
	/* A poller asks again, as a client does; anything else is the
	 * set-up failing. */
	if (!is_poller(g, c) || !c->peers_req || !c->has_lease) {
		g->setup_errors++;
		return;
	}
	g->poll_failures++;
	c->retry_us = now_us() + RETRY_US;
	g->n_retry++;
}

static void conn_writable(struct gen *g, struct mclient *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
	int err = 0;
	socklen_t errlen = sizeof(err);
	uint64_t before;
	ssize_t n;

	if (c->state == MC_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &errlen) || err) {
			conn_fail(g, c, "connect", err ? err : errno);
			return;
		}
		c->state = MC_SENDING;
	}
	/* The time before the send: the server, woken by it, may take this
	 * CPU before send() returns. */
	before = now_us();
	n = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_fail(g, c, "send", errno);
		return;
	}
	c->sent += (size_t)n;
	if (c->sent < c->req_len)
		return;
	if (epoll_ctl(g->epfd, EPOLL_CTL_MOD, c->fd, &ev)) {
		conn_fail(g, c, "epoll", errno);
		return;
	}
	c->state = MC_WAITING;
	c->sent_us = before;
	if (!g->conc_waiting)
		g->active--;
}

/* Opens c's connection and sends its request (request_peers when peers). */
static void conn_start(struct gen *g, struct mclient *c, bool peers)
{
	struct linger abortive = { .l_onoff = 1, .l_linger = 0 };
	struct sockaddr_in6 src = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_scope_id = g->ifindex,
	};
	struct sockaddr_in6 dst = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(WGD_PORT),
		.sin6_addr = { .s6_addr = { 0xfe, 0x80 } },
		.sin6_scope_id = g->ifindex,
	};
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	ssize_t len;
	int one = 1;

	c->peers_req = peers;
	len = build_request(g, c, peers);
	if (len < 0) {
		conn_fail(g, c, "request", (int)-len);
		return;
	}
	c->req_len = (size_t)len;
	c->sent = 0;
	c->rlen = 0;
	c->arrived_us = 0;
	wgd_parser_init(&c->parser, WGD_PARSE_RESPONSE);
	wgd_parser_set_peers(&c->parser, c->peers);
	c->state = MC_CONNECTING;
	g->active++;
	client_ll(&src.sin6_addr, c->idx);
	c->fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(g, c, "socket", errno);
		return;
	}
	setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
	setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	if (bind(c->fd, (struct sockaddr *)&src, sizeof(src))) {
		conn_fail(g, c, "bind", errno);
		return;
	}
	if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS) {
		conn_fail(g, c, "connect", errno);
		return;
	}
	if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, c->fd, &ev)) {
		conn_fail(g, c, "epoll", errno);
		return;
	}
	/* With the server on this host the handshake is mostly over when
	 * connect() returns: the request goes at once, as a client's follows
	 * its handshake, rather than a round of epoll later, when the server
	 * may have taken the connection without it (it refuses connections
	 * beyond its limit, held polls apart). When it is not over, send()
	 * says EAGAIN and EPOLLOUT comes. */
	conn_writable(g, c);
}

/* The queue is a ring of g->total: a client is in it once at most. */
static void queue_push(struct gen *g, struct mclient *c)
{
	uint32_t at = g->q_head + g->q_len;

	if (c->queued)
		return;
	c->queued = true;
	g->queue[at < g->total ? at : at - g->total] = c->idx;
	g->q_len++;
}

/* Starts queued clients while the concurrency allows. */
static void queue_run(struct gen *g)
{
	while (g->q_len && g->active < g->conc) {
		struct mclient *c = &g->c[g->queue[g->q_head]];

		if (++g->q_head == g->total)
			g->q_head = 0;
		g->q_len--;
		c->queued = false;
		conn_start(g, c, c->has_lease);
	}
}

/* The peer= lines of c's whole answer, for their sizes. */
static void count_lines(struct gen *g, const struct mclient *c)
{
	const char *p = c->rbuf, *end = c->rbuf + c->rlen;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		if (len > 5 && !memcmp(p, "peer=", 5)) {
			g->line_bytes += len;
			g->lines++;
		}
		p += len;
	}
}

static void members_apply(struct gen *g, struct mclient *c, const struct wgd_msg *m, uint64_t now)
{
	if (m->reset) {
		memset(c->members, 0, g->bitmap_len);
		c->known = 0;
		g->resets += c->epoch != 0;
	}
	for (size_t i = 0; i < m->n_peers; i++) {
		const struct wgd_peer_entry *pe = &m->peers[i];
		int64_t who = key_client(g, pe->key);
		uint8_t bit;

		if (who < 0) {
			g->unknown_lines++;
			note_error(g, c->idx, "a_directory_line_of_an_unknown_key");
			continue;
		}
		bit = (uint8_t)(1u << (who % 8));
		if (pe->gone) {
			if (c->members[who / 8] & bit)
				c->known--;
			c->members[who / 8] &= (uint8_t)~bit;
			continue;
		}
		if (!(c->members[who / 8] & bit))
			c->known++;
		c->members[who / 8] |= bit;
		if (who == g->joiner && is_poller(g, c) && !c->got_us) {
			c->got_us = now;
			g->got++;
		}
	}
}

/* A whole answer to c's request. */
static void conn_answered(struct gen *g, struct mclient *c, uint64_t now)
{
	const struct wgd_msg *m = &c->parser.msg;
	uint32_t epoch;
	char what[WGD_MAX_ERRMSG + 32];

	conn_close(g, c);
	c->answer_us = now;
	if (m->err) {
		snprintf(what, sizeof(what), "errno=%u:%s", m->err, m->errmsg);
		note_error(g, c->idx, what);
		g->setup_errors++;
		return;
	}
	if (!c->peers_req) {
		if (!m->mesh) {
			note_error(g, c->idx, "no_mesh=1_in_the_lease_answer:_is_the_server_run_with_--mesh?");
			g->setup_errors++;
			return;
		}
		c->has_lease = m->has_ip4 || m->has_ip6;
		if (!c->has_lease) {
			note_error(g, c->idx, "granted_no_address");
			g->setup_errors++;
		}
		return;
	}
	/* Without epoch=, the answer is of the epoch the client sent. */
	epoch = m->has_epoch ? m->epoch : c->epoch;
	if (!m->has_dir_version || !epoch) {
		note_error(g, c->idx, "a_directory_answer_without_epoch_or_version");
		g->setup_errors++;
		return;
	}
	if (!g->epoch)
		g->epoch = epoch;
	if (epoch != g->epoch) {
		note_error(g, c->idx, "the_epoch_changed");
		g->setup_errors++;
	}
	if (g->measuring && is_poller(g, c)) {
		count_lines(g, c);
		g->answer_bytes += c->rlen;
		g->answers++;
	}
	members_apply(g, c, m, now);
	c->epoch = epoch;
	c->version = m->dir_version;
	c->answered_more = m->more;
	if (is_poller(g, c)) {
		g->last_poll_answer_us = now;
		if (g->polling)
			queue_push(g, c);
	}
}

/*
 * When the data of the last recvmsg() came: the kernel's stamp, taken as
 * the answer entered this host's stack, whatever this process was doing
 * then (it reads a thousand answers and opens a thousand connections).
 */
static void note_arrival(struct mclient *c, struct msghdr *mh, int64_t mono_minus_real)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		struct timespec ts;
		int64_t us;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS ||
		    cm->cmsg_len < CMSG_LEN(sizeof(ts)))
			continue;
		memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
		us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + mono_minus_real;
		if (us > 0)
			c->arrived_us = (uint64_t)us;
	}
}

static void conn_readable(struct gen *g, struct mclient *c, uint64_t now, int64_t mono_minus_real)
{
	for (;;) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(struct timespec)) * 2];
		} ctl;
		struct iovec iov;
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n, p;

		if (c->rlen >= sizeof(c->rbuf)) {
			conn_fail(g, c, "answer_too_long", 0);
			return;
		}
		iov.iov_base = c->rbuf + c->rlen;
		iov.iov_len = sizeof(c->rbuf) - c->rlen;
		n = recvmsg(c->fd, &mh, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				conn_fail(g, c, "recv", errno);
			return;
		}
		if (n == 0) {
			conn_fail(g, c, "closed_without_an_answer", 0);
			return;
		}
		note_arrival(c, &mh, mono_minus_real);
		p = wgd_parse(&c->parser, c->rbuf + c->rlen, (size_t)n);
		if (p < 0) {
			conn_fail(g, c, c->parser.error ? c->parser.error : "bad_answer", 0);
			return;
		}
		c->rlen += (size_t)n;
		if (p > 0) {
			c->rlen -= (size_t)n - (size_t)p;
			/* A stamp from before the request is not this answer's. */
			conn_answered(g, c, c->arrived_us >= c->sent_us && c->arrived_us <= now ?
						    c->arrived_us : now);
			return;
		}
	}
}

/*
 * One wake-up: reads every answer that came, with the time it came, then
 * starts what the answers queued and the retries that are due.
 */
static int pump(struct gen *g, int timeout_ms)
{
	static struct epoll_event evs[EVENTS];
	int n = epoll_wait(g->epfd, evs, EVENTS, timeout_ms);
	uint64_t now = now_us();
	int64_t mono_minus_real = mono_minus_real_us();

	if (n < 0 && errno != EINTR) {
		perror("meshgen: epoll_wait");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct mclient *c = evs[i].data.ptr;

		if (c->fd < 0)
			continue;
		if (c->state == MC_WAITING)
			conn_readable(g, c, now, mono_minus_real);
		else
			conn_writable(g, c);
	}
	if (g->n_retry) {
		for (uint32_t i = 0; i < g->total; i++) {
			struct mclient *c = &g->c[i];

			if (c->retry_us && c->retry_us <= now) {
				c->retry_us = 0;
				g->n_retry--;
				queue_push(g, c);
			}
		}
	}
	queue_run(g);
	return 0;
}

/* ---- phases ---- */

/* Every client from first to first + count - 1 asks once, SETUP_CONC at a
 * time: a lease (peers false), or to join (peers true). */
static int setup_round(struct gen *g, uint32_t first, uint32_t count, bool peers, const char *what)
{
	uint64_t deadline = now_us() + SETUP_TIMEOUT_US;
	uint32_t errors = g->setup_errors;

	g->conc = SETUP_CONC;
	g->conc_waiting = true;
	for (uint32_t i = first; i < first + count; i++) {
		if (peers != g->c[i].has_lease)
			continue; /* no lease to join with: counted already */
		queue_push(g, &g->c[i]);
	}
	queue_run(g);
	while (g->q_len || g->active) {
		if (now_us() > deadline) {
			fprintf(stderr, "meshgen: %s: no answer after %llu s\n", what,
				SETUP_TIMEOUT_US / 1000000);
			return -1;
		}
		if (pump(g, 100))
			return -1;
	}
	if (g->setup_errors > errors) {
		fprintf(stderr, "meshgen: %s: %u requests failed; the first: %s\n", what,
			g->setup_errors - errors, g->first_error);
		return -1;
	}
	return 0;
}

/* Whether every poller holds a poll at the same version, and none was
 * answered within SETTLE_US. */
static bool pollers_settled(const struct gen *g, uint64_t now)
{
	uint32_t since = g->c[0].req_since;

	if (now - g->last_poll_answer_us < SETTLE_US || g->n_retry)
		return false;
	for (uint32_t i = 0; i < g->n; i++) {
		const struct mclient *c = &g->c[i];

		if (c->state != MC_WAITING || !c->peers_req || c->req_since != since)
			return false;
	}
	return true;
}

static int wait_settled(struct gen *g, uint64_t timeout_us, const char *what)
{
	uint64_t deadline = now_us() + timeout_us;

	while (!pollers_settled(g, now_us())) {
		if (now_us() > deadline) {
			fprintf(stderr, "meshgen: %s: the pollers did not all hold a poll at one "
					"version within %llu s; first error: %s\n", what,
				(unsigned long long)(timeout_us / 1000000),
				g->first_error[0] ? g->first_error : "-");
			return -1;
		}
		if (pump(g, 20))
			return -1;
	}
	return 0;
}

/* Every poller holds the whole directory: the N pollers, no one else. */
static int check_directories(const struct gen *g)
{
	for (uint32_t i = 0; i < g->n; i++) {
		const struct mclient *c = &g->c[i];
		uint32_t have = 0;

		for (uint32_t k = 0; k < g->n; k++)
			have += !!(c->members[k / 8] & (1u << (k % 8)));
		if (have != g->n || c->known != g->n) {
			fprintf(stderr, "meshgen: poller %u holds %u of the %u pollers and %u "
					"members in all, after its directory was whole\n",
				i, have, g->n, c->known);
			return -1;
		}
	}
	return 0;
}

struct join_fig {
	uint32_t request_us, first_us, median_us, last_us, early, missing;
};

/* One joiner's request, to its answer; false when it got none. */
static bool joiner_ask(struct gen *g, struct mclient *jc, bool peers)
{
	uint64_t deadline = now_us() + JOIN_TIMEOUT_US;
	uint32_t errors = g->setup_errors;

	conn_start(g, jc, peers);
	while (jc->fd >= 0 && now_us() < deadline) {
		if (pump(g, 20))
			return false;
	}
	if (jc->fd >= 0) {
		note_error(g, jc->idx, "the_joiner_got_no_answer");
		conn_close(g, jc);
		return false;
	}
	return g->setup_errors == errors && (!peers || jc->epoch);
}

/*
 * Join k: client N+k gets a lease, then joins, while the pollers wait for
 * its line. Returns -1 when the joiner got no answer.
 */
static int join_one(struct gen *g, uint32_t k, struct join_fig *f, uint32_t *lat,
		    struct cpu *grant_cpu)
{
	struct mclient *jc = &g->c[g->n + k];
	uint64_t t0, answered, deadline;
	struct cpu before, after;
	uint32_t n_lat = 0;

	memset(f, 0, sizeof(*f));
	for (uint32_t i = 0; i < g->n; i++)
		g->c[i].got_us = 0;
	g->got = 0;
	g->joiner = jc->idx;

	cpu_sample(g, &before);
	/* The lease is the joiner's own: it does not move the directory. */
	if (!joiner_ask(g, jc, false) || !jc->has_lease) {
		fprintf(stderr, "meshgen: joiner %u got no lease: %s\n", k, g->first_error);
		return -1;
	}
	cpu_sample(g, &after);
	grant_cpu->hub_ns += after.hub_ns - before.hub_ns;
	grant_cpu->hub_ticks += after.hub_ticks - before.hub_ticks;

	if (!joiner_ask(g, jc, true)) {
		fprintf(stderr, "meshgen: joiner %u could not join: %s\n", k, g->first_error);
		return -1;
	}
	t0 = jc->sent_us;
	answered = jc->answer_us;
	f->request_us = (uint32_t)(answered - t0);
	/* The rest of the directory, as a client takes it. */
	while (jc->answered_more) {
		if (!joiner_ask(g, jc, true)) {
			fprintf(stderr, "meshgen: joiner %u lost its directory: %s\n", k,
				g->first_error);
			return -1;
		}
	}

	deadline = t0 + JOIN_TIMEOUT_US;
	while (g->got < g->n && now_us() < deadline) {
		if (pump(g, 20))
			return -1;
	}
	for (uint32_t i = 0; i < g->n; i++) {
		uint64_t got = g->c[i].got_us;

		if (!got) {
			f->missing++;
			continue;
		}
		f->early += got < answered;
		lat[n_lat++] = got > t0 ? (uint32_t)(got - t0) : 0;
	}
	g->joiner = -1;
	qsort(lat, n_lat, sizeof(lat[0]), cmp_u32);
	if (n_lat) {
		f->first_us = lat[0];
		f->median_us = percentile(lat, n_lat, 50);
		f->last_us = lat[n_lat - 1];
	}
	if (f->missing)
		note_error(g, g->n + k, "pollers_missed_this_join");
	return 0;
}

static double per_join_us(uint64_t ns, uint32_t joins)
{
	return joins ? (double)ns / 1e3 / joins : 0;
}

static int run(struct gen *g)
{
	struct join_fig *figs = calloc(g->j, sizeof(*figs));
	uint32_t *lat = calloc(g->n, sizeof(*lat));
	uint32_t *lasts = calloc(g->j, sizeof(*lasts)), *medians = calloc(g->j, sizeof(*medians));
	uint32_t *requests = calloc(g->j, sizeof(*requests));
	struct cpu idle0, idle1, c0, c1, grant = { 0 };
	uint64_t t_sync, sync_us, t_joins, joins_us, idle_ns, net_ns, missing = 0;
	double idle_ns_per_s;
	uint32_t done = 0;
	long clk_tck = sysconf(_SC_CLK_TCK);
	int ret = -1;

	if (!figs || !lat || !lasts || !medians || !requests) {
		perror("meshgen");
		goto out;
	}
	if (clk_tck <= 0)
		clk_tck = 100;

	/* Set-up: leases, joins, then every poller follows to a held poll. */
	t_sync = now_us();
	if (setup_round(g, 0, g->n, false, "leases") || setup_round(g, 0, g->n, true, "joins"))
		goto out;
	g->conc = SETUP_CONC;
	g->conc_waiting = false;
	g->polling = true;
	for (uint32_t i = 0; i < g->n; i++)
		queue_push(g, &g->c[i]);
	queue_run(g);
	if (wait_settled(g, SETUP_TIMEOUT_US, "directories") || check_directories(g))
		goto out;
	sync_us = now_us() - t_sync;
	if (g->setup_errors) {
		fprintf(stderr, "meshgen: the set-up had %u errors; the first: %s\n",
			g->setup_errors, g->first_error);
		goto out;
	}

	/* What the hub spends doing nothing but holding the polls. */
	cpu_sample(g, &idle0);
	{
		uint64_t end = now_us() + IDLE_US;

		while (now_us() < end) {
			if (pump(g, (int)((end - now_us()) / 1000) + 1))
				goto out;
		}
	}
	cpu_sample(g, &idle1);
	if (wait_settled(g, JOIN_TIMEOUT_US, "before the joins"))
		goto out;

	/* The joins: every poll that is answered is asked again at once. */
	g->conc = g->total;
	g->measuring = true;
	cpu_sample(g, &c0);
	t_joins = now_us();
	for (uint32_t k = 0; k < g->j; k++) {
		struct join_fig *f = &figs[k];

		if (join_one(g, k, f, lat, &grant))
			goto out;
		done++;
		missing += f->missing;
		lasts[k] = f->last_us;
		medians[k] = f->median_us;
		requests[k] = f->request_us;
		printf("join=%u request_us=%u first_us=%u median_us=%u last_us=%u early=%u "
		       "missing=%u\n", k + 1, f->request_us, f->first_us, f->median_us, f->last_us,
		       f->early, f->missing);
		fflush(stdout);
		if (wait_settled(g, JOIN_TIMEOUT_US, "after a join"))
			goto out;
	}
	cpu_sample(g, &c1);
	joins_us = now_us() - t_joins;
	g->measuring = false;
	idle_ns_per_s = (double)(idle1.hub_ns - idle0.hub_ns) / ((double)IDLE_US / 1e6);
	idle_ns = (uint64_t)(idle_ns_per_s * (double)joins_us / 1e6);
	net_ns = c1.hub_ns - c0.hub_ns > idle_ns ? c1.hub_ns - c0.hub_ns - idle_ns : 0;

	qsort(lasts, done, sizeof(lasts[0]), cmp_u32);
	qsort(medians, done, sizeof(medians[0]), cmp_u32);
	qsort(requests, done, sizeof(requests[0]), cmp_u32);
	printf("peers=%u joins=%u sync_s=%.2f last_p50_us=%u last_p95_us=%u last_max_us=%u "
	       "median_p50_us=%u request_p50_us=%u line_bytes=%.0f answer_bytes=%.0f "
	       "hub_cpu_us=%.0f hub_run_us=%.0f hub_net_us=%.0f grant_run_us=%.0f wg_cpu_us=%.0f "
	       "idle_hub_run_us_per_s=%.0f joins_s=%.2f missing=%llu poll_failures=%u resets=%u "
	       "unknown_lines=%u first_error=%s\n",
	       g->n, done, (double)sync_us / 1e6, percentile(lasts, done, 50),
	       percentile(lasts, done, 95), done ? lasts[done - 1] : 0,
	       percentile(medians, done, 50), percentile(requests, done, 50),
	       g->lines ? (double)g->line_bytes / (double)g->lines : 0,
	       g->answers ? (double)g->answer_bytes / (double)g->answers : 0,
	       per_join_us((c1.hub_ticks - c0.hub_ticks) * 1000000000ull / (uint64_t)clk_tck,
			   done),
	       per_join_us(c1.hub_ns - c0.hub_ns, done),
	       per_join_us(net_ns, done),
	       per_join_us(grant.hub_ns, done),
	       per_join_us((c1.wg_ticks - c0.wg_ticks) * 1000000000ull / (uint64_t)clk_tck,
			   done),
	       idle_ns_per_s / 1e3, (double)joins_us / 1e6,
	       (unsigned long long)missing, g->poll_failures, g->resets, g->unknown_lines,
	       g->first_error[0] ? g->first_error : "-");
	ret = missing ? -1 : 0;
out:
	free(figs);
	free(lat);
	free(lasts);
	free(medians);
	free(requests);
	return ret;
}

int main(int argc, char *argv[])
{
	struct gen g = { .joiner = -1 };
	int ret = 1;

	if (argc != 7) {
		fprintf(stderr, "Usage: meshgen IFACE WGCONF N J HUBPIDS WGPIDS\n");
		return 1;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "meshgen: libsodium failed to initialise\n");
		return 1;
	}
	g.ifindex = if_nametoindex(argv[1]);
	if (!g.ifindex) {
		perror(argv[1]);
		return 1;
	}
	if (count_arg("N", argv[3], MAX_CLIENTS / 2, &g.n) ||
	    count_arg("J", argv[4], MAX_JOINS, &g.j) ||
	    pids_arg("HUBPIDS", argv[5], g.hub_pids, &g.n_hub) ||
	    pids_arg("WGPIDS", argv[6], g.wg_pids, &g.n_wg))
		return 1;
	g.total = g.n + g.j;
	raise_fd_limit(g.total);
	g.bitmap_len = (g.total + 7) / 8;
	g.c = calloc(g.total, sizeof(*g.c));
	g.keys = calloc(g.total, sizeof(*g.keys));
	g.queue = calloc(g.total, sizeof(*g.queue));
	g.bitmaps = calloc(g.total, g.bitmap_len);
	if (!g.c || !g.keys || !g.queue || !g.bitmaps) {
		perror("meshgen");
		goto out;
	}
	if (keys_read(&g, argv[2]))
		goto out;
	for (uint32_t i = 0; i < g.total; i++) {
		g.c[i].idx = i;
		g.c[i].fd = -1;
		g.c[i].members = g.bitmaps + (size_t)i * g.bitmap_len;
	}
	g.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g.epfd < 0) {
		perror("meshgen: epoll");
		goto out;
	}
	ret = run(&g) ? 1 : 0;
	for (uint32_t i = 0; i < g.total; i++)
		conn_close(&g, &g.c[i]);
	close(g.epfd);
out:
	free(g.c);
	free(g.keys);
	free(g.queue);
	free(g.bitmaps);
	return ret;
}
