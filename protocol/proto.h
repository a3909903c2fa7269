/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_PROTO_H
#define WGD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipaddr.h"

/*
 * The wg-dynamic wire format: "key=value\n" lines, a message ending with an
 * empty line. A request starts with a command line ("request_ip=1"); a
 * response has none. See docs/protocol.md.
 *
 * This module does no I/O and allocates nothing: it parses from caller
 * buffers and serializes into caller buffers.
 */

#define WGD_PORT 970          /* ASCII sum of "wireguard" */
#define WGD_MAX_LINE 1024     /* longest line, newline included */
#define WGD_MAX_MESSAGE 8192  /* longest message, final empty line included */
#define WGD_MAX_ROUTES 32
#define WGD_MAX_DNS 8
#define WGD_MAX_ERRMSG 256    /* errmsg bytes kept, NUL included */
#define WGD_MAX_DNS_SEARCH 256
/* The shortest lease: a server gives none shorter, and a client takes a
 * shorter one as this long, so that no hub can make it ask without pause. */
#define WGD_LEASE_MIN_S 10

/* The mesh extension (docs/protocol.md, "Mesh"). */
#define WGD_MAX_CANDIDATES 4  /* candidate= lines in a request; per peer= line */
#define WGD_MAX_PEERS 48      /* peer= and gone= lines in one response */
#define WGD_KEY_B64 44        /* a public key in base64, as wg(8) writes it */

/* Each key once: its enum name and its wire spelling. */
#define WGD_KEYS(X)                    \
	X(WGD_KEY_REQUEST_IP, "request_ip") \
	X(WGD_KEY_IP, "ip")                 \
	X(WGD_KEY_LEASESTART, "leasestart") \
	X(WGD_KEY_LEASETIME, "leasetime")   \
	X(WGD_KEY_ERRNO, "errno")           \
	X(WGD_KEY_ERRMSG, "errmsg")         \
	X(WGD_KEY_ROUTE, "route")           \
	X(WGD_KEY_DNS, "dns")               \
	X(WGD_KEY_DNS_SEARCH, "dns_search") \
	X(WGD_KEY_MTU, "mtu")                      \
	X(WGD_KEY_MESH, "mesh")                    \
	X(WGD_KEY_REQUEST_PEERS, "request_peers")  \
	X(WGD_KEY_EPOCH, "epoch")                  \
	X(WGD_KEY_SINCE, "since")                  \
	X(WGD_KEY_PORT, "port")                    \
	X(WGD_KEY_CANDIDATE, "candidate")          \
	X(WGD_KEY_VERSION, "version")              \
	X(WGD_KEY_RESET, "reset")                  \
	X(WGD_KEY_MORE, "more")                    \
	X(WGD_KEY_PEER, "peer")                    \
	X(WGD_KEY_GONE, "gone")

#define X(e, s) e,
enum wgd_key { WGD_KEY_UNKNOWN, WGD_KEYS(X) WGD_KEY_COUNT };
#undef X

/* Each errno= value once: its enum name, number and default errmsg. */
#define WGD_ERRORS(X)                                     \
	X(WGD_E_OK, 0, "Success")                             \
	X(WGD_E_INVALID, 1, "Invalid request")                \
	X(WGD_E_UNSUPPORTED, 2, "Unsupported protocol")       \
	X(WGD_E_UNAVAILABLE, 3, "Chosen IP(s) unavailable")

#define X(e, n, s) e = n,
enum wgd_error { WGD_ERRORS(X) };
#undef X
#define WGD_E_COUNT 4

/* Wire spelling of a key, or NULL for WGD_KEY_UNKNOWN and out of range. */
const char *wgd_key_name(enum wgd_key key);
/* Text for a known error number, or NULL. */
const char *wgd_error_text(uint32_t err);

enum wgd_cmd {
	WGD_CMD_NONE = 0,      /* a response */
	WGD_CMD_REQUEST_IP,
	WGD_CMD_REQUEST_PEERS, /* the mesh directory: only after mesh=1 */
};

/* A UDP endpoint: a host address (/32 or /128) and a port, 0 when none. */
struct wgd_endpoint {
	struct wgd_ip addr;   /* family 0: none */
	uint16_t port;
};

/*
 * One line of the mesh directory in a response: a peer= line, or a gone=
 * line (gone set, only the key filled in). Everything in it is the hub's
 * word, and the addresses in cand[] the peer's own claims: the client
 * checks all of it before it acts (common/mesh.c).
 */
struct wgd_peer_entry {
	uint8_t key[32];
	bool gone;
	bool has_ip4, has_ip6;
	struct wgd_ip ip4, ip6;          /* the peer's lease, /32 and /128 */
	struct wgd_endpoint endpoint;    /* as the hub's WireGuard sees it */
	uint16_t port;                   /* the peer's listen port, 0 unknown */
	uint8_t n_cand;
	struct wgd_ip cand[WGD_MAX_CANDIDATES]; /* host addresses, at port */
};

struct wgd_msg {
	enum wgd_cmd cmd;
	uint32_t version;

	/* ip= lines. In a request, an unspecified address asks for any
	 * address of that family, and a family left out is released. */
	bool has_ip4, has_ip6;
	struct wgd_ip ip4, ip6;

	bool has_leasestart, has_leasetime;
	uint32_t leasestart; /* seconds since the epoch */
	uint32_t leasetime;  /* seconds */

	/* Responses. */
	bool has_errno;
	uint32_t err;
	char errmsg[WGD_MAX_ERRMSG]; /* empty when absent */

	size_t n_routes;
	struct wgd_ip routes[WGD_MAX_ROUTES];
	size_t n_dns;
	struct wgd_ip dns[WGD_MAX_DNS];
	char dns_search[WGD_MAX_DNS_SEARCH]; /* empty when absent */
	/* A response's dns_search was empty, too long (dns_search is then
	 * empty) or held a byte outside 0x21-0x7e (it is then kept as sent,
	 * for the log). The rest of the message stands. */
	bool dns_search_bad;
	uint32_t mtu;                         /* 0 when absent */

	/* The mesh. A request_ip response: mesh=1, the hub offers it. */
	bool mesh;
	/* request_peers: the directory the client holds (epoch 0: none) and
	 * its own listen port and LAN addresses. A response: the directory's
	 * epoch and version (dir_version), reset (forget the peers known so far: the lines
	 * start the directory over), more (ask again at once, since=version),
	 * and the lines, in order. */
	bool has_epoch, has_since, has_dir_version;
	uint32_t epoch, since, dir_version; /* dir_version: the wire's version= */
	uint16_t port;
	size_t n_cand;
	struct wgd_ip cand[WGD_MAX_CANDIDATES];
	bool reset, more;
	/* The directory lines, in storage for WGD_MAX_PEERS of them that the
	 * reader provides (wgd_parser_set_peers()) or the writer points at:
	 * only the one who asked for a directory carries its room. Without
	 * it, a reader skips the lines as unknown. */
	size_t n_peers;
	struct wgd_peer_entry *peers;
};

enum wgd_parse_kind {
	WGD_PARSE_REQUEST,
	WGD_PARSE_RESPONSE,
};

struct wgd_parser {
	enum wgd_parse_kind kind;
	struct wgd_msg msg;       /* the message being filled in */
	size_t msg_len;           /* bytes of this message seen so far */
	size_t line_len;          /* bytes buffered in line[] */
	unsigned nlines;          /* complete lines of this message */
	uint32_t seen;            /* bit per enum wgd_key seen in this message */
	const char *error;        /* why parsing failed, for the log */
	int status;               /* 0 parsing, 1 complete, < 0 the error */
	char line[WGD_MAX_LINE];  /* a line split across reads */
};

void wgd_parser_init(struct wgd_parser *p, enum wgd_parse_kind kind);
/* Room for a response's directory lines: store[WGD_MAX_PEERS], kept by the
 * caller for as long as the message is read. Call after each init. */
void wgd_parser_set_peers(struct wgd_parser *p, struct wgd_peer_entry *store);

/*
 * Feeds len bytes; buf is not modified and need not be NUL-terminated.
 * Return contract:
 *   > 0  a whole message is in p->msg; the value is the bytes consumed,
 *        which may be fewer than len (the rest starts the next message:
 *        call wgd_parser_init() and feed it again);
 *   = 0  all len bytes were consumed and more are needed;
 *   < 0  -WGD_E_INVALID or -WGD_E_UNSUPPORTED, with p->error saying why.
 *        The parser stays failed until wgd_parser_init().
 * Feeding more after a whole message, without wgd_parser_init() in between,
 * is a caller bug and fails with -WGD_E_INVALID (p->msg is kept).
 * The exact rules are in docs/protocol.md.
 */
ssize_t wgd_parse(struct wgd_parser *p, const void *buf, size_t len);

/*
 * Serializers. They write the whole message, final empty line included,
 * followed by a NUL, and return its length without the NUL; or -ENOSPC when
 * len is too small for both (buf then holds an empty string when len > 0).
 * WGD_MAX_MESSAGE bytes always suffice.
 *
 * They return -EINVAL rather than write what the parser would refuse: an
 * address of the wrong family, a route with host bits set, more than
 * WGD_MAX_ROUTES routes or WGD_MAX_DNS servers, a newline in errmsg, a
 * dns_search with a byte that is not printable ASCII or is a blank.
 *
 * A request lists ip=, leasestart= and leasetime= as an upstream client
 * does: always "request_ip=1" whatever m->version holds, ip= as /32 or /128
 * ("0.0.0.0/32" or "::/128" when the address is unspecified or has family
 * 0), and the lease lines only when an ip= line was written.
 *
 * A response lists ip= (as /32 or /128), route=, dns=, dns_search=, mtu=
 * (when not 0), leasestart= and leasetime= (when it has an address), errno=
 * and errmsg= (when errno is not 0; the default text when msg->errmsg is
 * empty, "Unknown error" for an errno without one).
 */
ssize_t wgd_serialize_request(const struct wgd_msg *m, char *buf, size_t len);
ssize_t wgd_serialize_response(const struct wgd_msg *m, char *buf, size_t len);

/*
 * The mesh extension. A request with m->cmd WGD_CMD_REQUEST_PEERS is
 * written by wgd_serialize_request() as "request_peers=1", then epoch=,
 * since=, port= and a candidate= line per address. A response carries
 * mesh=1 when m->mesh is set; epoch=, version=, reset=1, more=1 when set;
 * then the peer= and gone= lines of peers[0..n_peers), before errno=.
 *
 * wgd_format_peer_line() writes one directory line, without its newline,
 * into buf (WGD_MAX_LINE bytes suffice) and returns its length, or -EINVAL
 * for an entry the parser would refuse. The server uses it to size and
 * cache lines; the serializer uses it too.
 */
ssize_t wgd_format_peer_line(const struct wgd_peer_entry *e, char *buf, size_t len);
/* "ADDR:PORT" or "[ADDR]:PORT"; returns buf (WGD_ENDPOINT_STRLEN bytes). */
#define WGD_ENDPOINT_STRLEN (INET6_ADDRSTRLEN + 8)
char *wgd_endpoint_format(const struct wgd_endpoint *ep, char *buf, size_t len);
/* Parses "ADDR:PORT" or "[ADDR]:PORT" from exactly len bytes; the port is
 * 1-65535 and the address a host address. 0 or -EINVAL. */
int wgd_endpoint_parse(struct wgd_endpoint *out, const char *s, size_t len);

#endif
