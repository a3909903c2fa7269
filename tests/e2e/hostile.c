// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * hostile: malformed and hostile input against a running wg-dynamic-server,
 * for the end-to-end tests.
 *
 *   hostile [OPTION...] IFACE SRC [CASE...]
 *       Runs the named cases, or all of them, one connection each, from
 *       [SRC%IFACE]:970 to [fe80::%IFACE]:970, one after the other. Prints a
 *       line per case: its name, the outcome expected, the outcome seen, and
 *       "ok" or "FAIL". Exit status 1 when any case failed.
 *   hostile --list
 *       Names and describes the cases.
 *   hostile --hold N --from-prefix PFX [--for S] [--reopen MS] [--rate R] IFACE
 *       Opens N connections, from PFX1, PFX2, ... PFXn (the number in hex
 *       appended: fe80::5: gives fe80::5:1 to fe80::5:1f4), and sends
 *       nothing on them for S seconds (default 10). With --reopen, a
 *       connection the server closes is opened again MS milliseconds later.
 *       Prints "up: ..." once the first connection of every address has
 *       settled (connected, and refused or not), and "end: ..." with the
 *       counts at the end. Connections that the server closes within a
 *       second of the connect count as refused.
 *   hostile --trickle N --from-prefix PFX [--gap MS] [--rate R] IFACE
 *       Opens N connections that each send a request one byte per MS
 *       milliseconds (default 1000), too slowly to finish it within the
 *       idle timeout, and measures how long the server lets each live.
 *       Exit status 1 unless the server closed every one, without an answer,
 *       between 0.3 s before and 1 s after --idle-timeout.
 *
 *   --rate R opens at most R connections a second (default: all at once).
 *   A burst beyond the server's listen backlog gets SYN cookies, and a
 *   handshake whose last ACK is then lost looks open from here while the
 *   server never saw it; a rate the server keeps up with avoids that.
 *
 * Options:
 *   --port PORT        source port (default 970: the server answers no other)
 *   --idle-timeout S   the server's --idle-timeout (default 5): the cases
 *                      that stop short of a whole request expect the close
 *                      then, and every case waits that long plus 3 s
 *   --pool CIDR        a pool of the server (repeatable): every address
 *                      granted must lie in one
 *   --taken ADDR       an address leased to another peer (repeatable, one
 *                      IPv4 and one IPv6): it must never be granted here, and
 *                      the case taken_by_other asks for them
 *
 * The server closes first, so each connection is closed here with SO_LINGER
 * 0, as the real client does: the reset clears the server's TIME_WAIT for
 * the (SRC, 970, fe80::, 970) tuple, which the next case reuses at once.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../protocol/proto.h"

#define CONNECT_TIMEOUT_MS 3000
#define READ_SLACK_MS 3000     /* waited past the idle timeout for a close */
#define EARLY_MS 300           /* how much before the idle timeout a close may come */
#define LATE_MS 1000           /* and how much after */
#define REFUSED_MS 1000        /* a close sooner than this after connecting is a refusal */
#define MAX_READ 65536
#define MAX_SEND 65536
#define MAX_POOLS 16
#define MAX_SLOTS 4096

static const char *ifname;
static unsigned ifindex;
static struct sockaddr_in6 dst_sa;
static uint16_t src_port = WGD_PORT;
static unsigned idle_ms = 5000;
static struct wgd_ip pools[MAX_POOLS];
static size_t n_pools;
#define MAX_TAKEN 8
static struct wgd_ip taken[MAX_TAKEN];
static size_t n_taken;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, for poll(); 0 once it has passed. */
static int ms_until(uint64_t deadline)
{
	uint64_t now = now_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/* ---- connections ---- */

/*
 * A non-blocking socket bound to [src%IFACE]:port, its connect() started.
 * Returns the fd or -errno.
 */
static int conn_start(const struct in6_addr *src)
{
	struct sockaddr_in6 sa = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(src_port),
		.sin6_addr = *src,
		.sin6_scope_id = ifindex,
	};
	struct linger abortive = { .l_onoff = 1, .l_linger = 0 };
	int fd, one = 1, err;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto fail;
	if (connect(fd, (struct sockaddr *)&dst_sa, sizeof(dst_sa)) && errno != EINPROGRESS)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	return -err;
}

/* 0 once a started connect() has succeeded, else -errno. */
static int conn_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	return -err;
}

/* ---- the cases ---- */

enum expect {
	E_ANSWER,  /* an answer with errno, then the server closes */
	E_CLOSED,  /* closed without an answer, well before the idle timeout */
	E_IDLE,    /* closed without an answer at the idle timeout */
	E_NOTHING, /* nothing to see: the connection is reset from here at once */
};

enum grant {
	G_NONE,    /* no ip= line */
	G_BOTH,    /* an IPv4 and an IPv6 address */
	G_V6,      /* an IPv6 address alone */
	G_OTHER,   /* both families, neither the address the request asked for */
	G_ASKED,   /* both families, the addresses the request asked for */
};

/* What a case needs from the command line. */
enum {
	NEED_TAKEN = 1,     /* a --taken IPv4 and IPv6 address, not link-local */
	NEED_TAKEN_LL = 2,  /* a --taken link-local address */
	NEED_POOLS = 4,     /* an IPv4 and an IPv6 --pool */
};

enum send_mode {
	SEND_ALL,   /* one write */
	SEND_LINES, /* a write per line, gap_ms apart */
	SEND_BYTES, /* a write per byte, gap_ms apart */
};

struct msgbuf {
	char data[MAX_SEND];
	size_t len;
};

struct hcase {
	const char *name;
	const char *what;
	const char *bytes;               /* what to send, or NULL for build() */
	size_t len;
	void (*build)(struct msgbuf *b);
	enum send_mode mode;
	unsigned gap_ms;
	bool shut_wr;                    /* half-close once all is sent */
	unsigned needs;                  /* NEED_*: skipped without them */
	bool fresh;                      /* released first, so that nothing is held */
	enum expect expect;
	uint32_t err;
	enum grant grant;
};

static void __attribute__((format(printf, 2, 3)))
mb_printf(struct msgbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, sizeof(b->data) - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n < sizeof(b->data) - b->len ? (size_t)n : sizeof(b->data) - b->len - 1;
}

static void mb_fill(struct msgbuf *b, char c, size_t n)
{
	if (n > sizeof(b->data) - b->len)
		n = sizeof(b->data) - b->len;
	memset(b->data + b->len, c, n);
	b->len += n;
}

#define VALID "request_ip=1\nip=0.0.0.0/32\nip=::/128\nleasestart=0\nleasetime=0\n\n"

/* A line of line_len bytes, its line feed included: "x=aaa...\n". */
static void line_of(struct msgbuf *b, size_t line_len)
{
	mb_printf(b, "x=");
	mb_fill(b, 'a', line_len - 3);
	mb_printf(b, "\n");
}

/* The longest line allowed, WGD_MAX_LINE bytes with its line feed. */
static void build_line_max(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\n");
	line_of(b, WGD_MAX_LINE);
	mb_printf(b, "\n");
}

static void build_line_over(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\n");
	line_of(b, WGD_MAX_LINE + 1);
	mb_printf(b, "\n");
}

static void build_line_huge(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\nip=0.0.0.0/32\n");
	line_of(b, 1100);
	mb_printf(b, "\n");
}

/* 2000 bytes and no line feed: refused before any line feed comes. */
static void build_line_endless(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\nx=");
	mb_fill(b, 'a', 2000);
}

static void build_key_huge(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\n");
	mb_fill(b, 'k', 4000);
	mb_printf(b, "=v\n\n");
}

static void build_key_long_ok(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\nip=::/128\n");
	mb_fill(b, 'k', WGD_MAX_LINE - 3);
	mb_printf(b, "=\n\n");
}

/* Exactly WGD_MAX_MESSAGE bytes, the final empty line included. */
static void build_message_max(struct msgbuf *b)
{
	size_t left;

	mb_printf(b, "request_ip=1\nip=0.0.0.0/32\nip=::/128\n");
	left = WGD_MAX_MESSAGE - b->len - 1;
	while (left >= 200) {
		line_of(b, 100);
		left -= 100;
	}
	line_of(b, left);
	mb_printf(b, "\n");
}

static void build_message_over(struct msgbuf *b)
{
	size_t left;

	mb_printf(b, "request_ip=1\nip=0.0.0.0/32\nip=::/128\n");
	left = WGD_MAX_MESSAGE - b->len;
	while (left >= 200) {
		line_of(b, 100);
		left -= 100;
	}
	line_of(b, left);
	mb_printf(b, "\n");
}

/* Short unknown lines, 12000 bytes of them. */
static void build_message_many_lines(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\n");
	for (unsigned i = 0; b->len < 12000; i++)
		mb_printf(b, "u%u=%u\n", i, i);
	mb_printf(b, "\n");
}

static void build_ip_hundreds(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\n");
	for (unsigned i = 0; i < 300; i++)
		mb_printf(b, "ip=10.90.%u.%u/32\n", i / 250, i % 250 + 1);
	mb_printf(b, "\n");
}

static void build_ip_hundreds_v6(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\n");
	for (unsigned i = 0; i < 400; i++)
		mb_printf(b, "ip=fd90::%x/128\n", i + 1);
	mb_printf(b, "\n");
}

/* Hundreds of lines a request ignores, around one ip= per family. */
static void build_ignored_hundreds(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\nip=0.0.0.0/32\n");
	for (unsigned i = 0; i < 300; i++)
		mb_printf(b, "route=10.%u.0.0/16\n", i % 256);
	mb_printf(b, "ip=::/128\n\n");
}

static void build_equals_many(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\nip=::\nx=");
	mb_fill(b, '=', 900);
	mb_printf(b, "\n\n");
}

/* Bytes 0x01 to 0xff but the line feed and "=": a first line without "=". */
static void build_binary(struct msgbuf *b)
{
	for (unsigned round = 0; round < 2; round++)
		for (unsigned c = 1; c < 256; c++)
			if (c != '\n' && c != '=')
				b->data[b->len++] = (char)c;
	mb_printf(b, "\n\n");
}

/* Pseudo-random bytes with NULs and line feeds among them. */
static void build_binary_nul(struct msgbuf *b)
{
	uint32_t x = 2463534242u;

	mb_printf(b, "request_ip=1\n");
	for (unsigned i = 0; i < 600; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b->data[b->len++] = i == 7 ? '\0' : (char)(x >> 24);
	}
	mb_printf(b, "\n\n");
}

/* The first of n addresses of family, link-local or not; NULL if none. */
static const struct wgd_ip *ip_pick(const struct wgd_ip *list, size_t n, uint8_t family,
				    bool linklocal)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].family == family && wgd_ip_is_linklocal6(&list[i]) == linklocal)
			return &list[i];
	return NULL;
}

static bool in_pools(const struct wgd_ip *ip)
{
	if (!n_pools)
		return true;
	for (size_t i = 0; i < n_pools; i++)
		if (wgd_ip_contains(&pools[i], ip))
			return true;
	return false;
}

static bool is_taken(const struct wgd_ip *ip)
{
	for (size_t i = 0; i < n_taken; i++)
		if (wgd_ip_equal(ip, &taken[i]))
			return true;
	return false;
}

/* What of hc->needs is missing, or NULL. */
static const char *case_lacks(const struct hcase *hc)
{
	if ((hc->needs & NEED_TAKEN) && (!ip_pick(taken, n_taken, AF_INET, false) ||
					 !ip_pick(taken, n_taken, AF_INET6, false)))
		return "give --taken with an IPv4 and an IPv6 address";
	if ((hc->needs & NEED_TAKEN_LL) && !ip_pick(taken, n_taken, AF_INET6, true))
		return "give --taken with a link-local address";
	if ((hc->needs & NEED_POOLS) && (!ip_pick(pools, n_pools, AF_INET, false) ||
					 !ip_pick(pools, n_pools, AF_INET6, false)))
		return "give --pool with an IPv4 and an IPv6 prefix";
	return NULL;
}

/* "ip=ADDR/LEN\n" */
static void mb_ip(struct msgbuf *b, const struct wgd_ip *ip)
{
	char text[WGD_IP_STRLEN];

	mb_printf(b, "ip=%s\n", wgd_ip_format(ip, text, sizeof(text)));
}

/* The address at offset off (0 or last) of a pool, as a host address. */
static struct wgd_ip pool_host(const struct wgd_ip *pool, bool last)
{
	struct wgd_ip ip = *pool;
	unsigned bits = wgd_ip_bits(ip.family);

	wgd_ip_mask(&ip);
	for (unsigned i = pool->cidr; last && i < bits; i++)
		ip.bytes[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	ip.cidr = (uint8_t)bits;
	return ip;
}

static void build_taken(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\n");
	mb_ip(b, ip_pick(taken, n_taken, AF_INET, false));
	mb_ip(b, ip_pick(taken, n_taken, AF_INET6, false));
	mb_printf(b, "leasestart=0\nleasetime=0\n\n");
}

/* Another peer's link-local: granted, it would let this peer pose as it. */
static void build_taken_ll(struct msgbuf *b)
{
	mb_printf(b, "request_ip=1\nip=0.0.0.0/32\n");
	mb_ip(b, ip_pick(taken, n_taken, AF_INET6, true));
	mb_printf(b, "\n");
}

/* The IPv4 network address and the IPv6 Subnet-Router anycast address. */
static void build_pool_first(struct msgbuf *b)
{
	struct wgd_ip net4 = pool_host(ip_pick(pools, n_pools, AF_INET, false), false);
	struct wgd_ip net6 = pool_host(ip_pick(pools, n_pools, AF_INET6, false), false);

	mb_printf(b, "request_ip=1\n");
	mb_ip(b, &net4);
	mb_ip(b, &net6);
	mb_printf(b, "\n");
}

/* Free addresses of the pools, well inside them: granted as asked. */
static void build_pool_specific(struct msgbuf *b)
{
	struct wgd_ip ip4 = pool_host(ip_pick(pools, n_pools, AF_INET, false), false);
	struct wgd_ip ip6 = pool_host(ip_pick(pools, n_pools, AF_INET6, false), false);

	ip4.bytes[3] = 77;
	ip6.bytes[15] = 0x77;
	while (is_taken(&ip4))
		ip4.bytes[3]++;
	while (is_taken(&ip6))
		ip6.bytes[15]++;
	mb_printf(b, "request_ip=1\n");
	mb_ip(b, &ip4);
	mb_ip(b, &ip6);
	mb_printf(b, "leasestart=0\nleasetime=0\n\n");
}

/* The IPv4 broadcast address, and the last IPv6 address. */
static void build_pool_last(struct msgbuf *b)
{
	struct wgd_ip bcast4 = pool_host(ip_pick(pools, n_pools, AF_INET, false), true);

	mb_printf(b, "request_ip=1\n");
	mb_ip(b, &bcast4);
	mb_printf(b, "ip=::/128\n\n");
}

#define BYTES(s) .bytes = (s), .len = sizeof(s) - 1
#define ANSWER(e, g) .expect = E_ANSWER, .err = (e), .grant = (g)
#define GRANTED ANSWER(WGD_E_OK, G_BOTH)
#define INVALID ANSWER(WGD_E_INVALID, G_NONE)
#define UNSUPPORTED ANSWER(WGD_E_UNSUPPORTED, G_NONE)

static const struct hcase cases[] = {
	/* Well-formed requests, some of them odd. */
	{ "valid", "a request for any address of each family", BYTES(VALID), GRANTED },
	{ "valid_no_prefix", "ip= lines without /32 and /128, no lease lines",
	  BYTES("request_ip=1\nip=0.0.0.0\nip=::\n\n"), GRANTED },
	{ "valid_ip6_only", "IPv6 only: the IPv4 address is released",
	  BYTES("request_ip=1\nip=::/128\nleasestart=0\nleasetime=0\n\n"), ANSWER(0, G_V6) },
	{ "release", "no ip= line: both families released",
	  BYTES("request_ip=1\n\n"), ANSWER(0, G_NONE) },
	{ "outside_pool", "addresses outside every pool: others are granted",
	  BYTES("request_ip=1\nip=203.0.113.7/32\nip=2001:db8::7/128\nleasestart=0\nleasetime=0\n\n"),
	  .fresh = true, ANSWER(0, G_OTHER) },
	{ "pool_specific", "free addresses inside the pools: granted as asked",
	  .build = build_pool_specific, .needs = NEED_POOLS, .fresh = true, ANSWER(0, G_ASKED) },
	{ "taken_by_other", "the addresses of another peer: others are granted",
	  .build = build_taken, .needs = NEED_TAKEN, .fresh = true, ANSWER(0, G_OTHER) },
	{ "taken_linklocal", "another peer's link-local: never a lease",
	  .build = build_taken_ll, .needs = NEED_TAKEN_LL, .fresh = true, ANSWER(0, G_OTHER) },
	{ "pool_network", "the IPv4 network and IPv6 Subnet-Router anycast addresses",
	  .build = build_pool_first, .needs = NEED_POOLS, .fresh = true, ANSWER(0, G_OTHER) },
	{ "pool_broadcast", "the IPv4 broadcast address", .build = build_pool_last,
	  .needs = NEED_POOLS, .fresh = true, ANSWER(0, G_OTHER) },
	{ "server_linklocal", "fe80::, the server's own address",
	  BYTES("request_ip=1\nip=0.0.0.0/32\nip=fe80::/128\n\n"), .fresh = true, ANSWER(0, G_OTHER) },
	{ "special_addresses", "loopback and multicast addresses",
	  BYTES("request_ip=1\nip=127.0.0.1/32\nip=ff02::1/128\n\n"), .fresh = true, ANSWER(0, G_OTHER) },
	{ "all_ones", "255.255.255.255 and ::1",
	  BYTES("request_ip=1\nip=255.255.255.255\nip=::1\n\n"), .fresh = true, ANSWER(0, G_OTHER) },
	{ "unknown_keys", "unknown keys are skipped",
	  BYTES("request_ip=1\nfoo=bar\nip=0.0.0.0/32\nx=\nip=::/128\nzzz=1=2\n\n"), GRANTED },
	{ "response_keys", "response keys in a request are skipped, unchecked and repeated",
	  BYTES("request_ip=1\nerrno=7\nerrno=x\nroute=junk\nmtu=-1\ndns=1.2.3.4/8\n"
		"ip=0.0.0.0/32\nip=::/128\n\n"), GRANTED },
	{ "number_leading_zeros", "0001 and 0007 read as decimal",
	  BYTES("request_ip=0001\nip=0.0.0.0/32\nip=::/128\nleasestart=0000\nleasetime=0007\n\n"),
	  GRANTED },
	{ "leasetime_max", "leasetime=4294967295 is a number; the server picks the term",
	  BYTES("request_ip=1\nip=0.0.0.0/32\nip=::/128\nleasestart=4294967295\n"
		"leasetime=4294967295\n\n"), GRANTED },
	{ "line_max", "a line of exactly 1024 bytes", .build = build_line_max, ANSWER(0, G_NONE) },
	{ "key_long_ok", "a 1021-byte unknown key", .build = build_key_long_ok, ANSWER(0, G_V6) },
	{ "message_max", "a message of exactly 8192 bytes", .build = build_message_max, GRANTED },
	{ "equals_many", "a value of 900 \"=\" signs", .build = build_equals_many, ANSWER(0, G_V6) },
	{ "ignored_hundreds", "300 route= lines, skipped in a request",
	  .build = build_ignored_hundreds, GRANTED },

	/* Framing. */
	{ "lone_lf", "an empty message", BYTES("\n"), INVALID },
	{ "lone_eq", "\"=\": an empty key", BYTES("=\n\n"), INVALID },
	{ "eq_signs", "\"====\": an empty key", BYTES("====\n\n"), INVALID },
	{ "command_no_eq", "request_ip without \"=\"", BYTES("request_ip\n\n"), INVALID },
	{ "attr_no_eq", "an attribute without \"=\"", BYTES("request_ip=1\nip\n\n"), INVALID },
	{ "attr_empty_key", "an attribute with an empty key", BYTES("request_ip=1\n=1\n\n"),
	  INVALID },
	{ "command_equals_many", "request_ip== : the version is \"=\"",
	  BYTES("request_ip==\n\n"), INVALID },
	{ "line_over", "a line of 1025 bytes", .build = build_line_over, INVALID },
	{ "line_huge", "a line of 1100 bytes", .build = build_line_huge, INVALID },
	{ "line_endless", "2000 bytes without a line feed, then silence",
	  .build = build_line_endless, INVALID },
	{ "key_huge", "a 4000-byte key", .build = build_key_huge, INVALID },
	{ "message_over", "a message of 8193 bytes", .build = build_message_over, INVALID },
	{ "message_many_lines", "12000 bytes of short unknown lines",
	  .build = build_message_many_lines, INVALID },
	{ "binary", "binary bytes, no \"=\" and no NUL", .build = build_binary, INVALID },
	{ "binary_nul", "binary bytes with NULs", .build = build_binary_nul, INVALID },
	{ "nul_first", "a NUL as the first byte", BYTES("\0request_ip=1\n\n"), INVALID },
	{ "nul_alone", "one NUL byte, then silence", BYTES("\0"), INVALID },
	{ "nul_in_key", "a NUL in a key", BYTES("request_ip=1\nk\0y=v\n\n"), INVALID },
	{ "nul_in_value", "a NUL in a value",
	  BYTES("request_ip=1\nip=0.0.0.0\0/32\nip=::/128\n\n"), INVALID },
	{ "nul_line_start", "a NUL starting a line", BYTES("request_ip=1\n\0ip=::/128\n\n"),
	  INVALID },
	{ "nul_in_version", "a NUL in the version", BYTES("request_ip=1\0\n\n"), INVALID },
	{ "crlf", "CR LF line endings", BYTES("request_ip=1\r\n\r\n"), INVALID },
	{ "crlf_attrs", "CR LF after the command line",
	  BYTES("request_ip=1\nip=0.0.0.0/32\r\nip=::/128\r\n\r\n"), INVALID },

	/* The command. */
	{ "unknown_command", "request_address=1", BYTES("request_address=1\n\n"), UNSUPPORTED },
	{ "attr_as_command", "ip= as the first line", BYTES("ip=0.0.0.0/32\n\n"), UNSUPPORTED },
	{ "version_0", "request_ip=0", BYTES("request_ip=0\nip=0.0.0.0/32\n\n"), UNSUPPORTED },
	{ "version_2", "request_ip=2", BYTES("request_ip=2\nip=0.0.0.0/32\n\n"), UNSUPPORTED },
	{ "version_max", "request_ip=4294967295", BYTES("request_ip=4294967295\n\n"),
	  UNSUPPORTED },
	{ "version_overflow", "request_ip=4294967296", BYTES("request_ip=4294967296\n\n"),
	  INVALID },
	{ "version_huge", "request_ip=99999999999", BYTES("request_ip=99999999999\n\n"), INVALID },
	{ "version_long", "request_ip=000000000001: twelve digits",
	  BYTES("request_ip=000000000001\n\n"), INVALID },
	{ "version_text", "request_ip=one", BYTES("request_ip=one\n\n"), INVALID },
	{ "version_empty", "request_ip=", BYTES("request_ip=\n\n"), INVALID },
	{ "version_signed", "request_ip=+1", BYTES("request_ip=+1\n\n"), INVALID },
	{ "version_negative", "request_ip=-1", BYTES("request_ip=-1\n\n"), INVALID },
	{ "version_hex", "request_ip=0x1", BYTES("request_ip=0x1\n\n"), INVALID },
	{ "version_space", "request_ip= 1", BYTES("request_ip= 1\n\n"), INVALID },
	{ "command_twice", "request_ip repeated",
	  BYTES("request_ip=1\nip=::/128\nrequest_ip=1\n\n"), INVALID },

	/* Numbers. */
	{ "leasetime_text", "leasetime=abc",
	  BYTES("request_ip=1\nip=::/128\nleasestart=0\nleasetime=abc\n\n"), INVALID },
	{ "leasetime_overflow", "leasetime=4294967296",
	  BYTES("request_ip=1\nip=::/128\nleasestart=0\nleasetime=4294967296\n\n"), INVALID },
	{ "leasetime_empty", "leasetime=", BYTES("request_ip=1\nip=::/128\nleasetime=\n\n"),
	  INVALID },
	{ "leasetime_negative", "leasetime=-1", BYTES("request_ip=1\nip=::/128\nleasetime=-1\n\n"),
	  INVALID },
	{ "leasestart_text", "leasestart=12a",
	  BYTES("request_ip=1\nip=::/128\nleasestart=12a\nleasetime=0\n\n"), INVALID },
	{ "leasestart_overflow", "leasestart=99999999999",
	  BYTES("request_ip=1\nip=::/128\nleasestart=99999999999\nleasetime=0\n\n"), INVALID },
	{ "leasetime_twice", "leasetime repeated",
	  BYTES("request_ip=1\nip=::/128\nleasetime=1\nleasetime=1\n\n"), INVALID },
	{ "leasestart_twice", "leasestart repeated",
	  BYTES("request_ip=1\nip=::/128\nleasestart=0\nleasestart=0\n\n"), INVALID },

	/* ip= values. */
	{ "ip_bad", "ip=10.90.0.256", BYTES("request_ip=1\nip=10.90.0.256\n\n"), INVALID },
	{ "ip_text", "ip=not-an-address", BYTES("request_ip=1\nip=not-an-address\n\n"), INVALID },
	{ "ip_prefix_24", "ip=10.90.0.5/24", BYTES("request_ip=1\nip=10.90.0.5/24\n\n"), INVALID },
	{ "ip_prefix_33", "ip=10.90.0.5/33", BYTES("request_ip=1\nip=10.90.0.5/33\n\n"), INVALID },
	{ "ip_prefix_129", "ip=fd90::5/129", BYTES("request_ip=1\nip=fd90::5/129\n\n"), INVALID },
	{ "ip_prefix_64", "ip=fd90::5/64", BYTES("request_ip=1\nip=fd90::5/64\n\n"), INVALID },
	{ "ip_prefix_zero_led", "ip=10.90.0.5/032", BYTES("request_ip=1\nip=10.90.0.5/032\n\n"),
	  INVALID },
	{ "ip_prefix_empty", "ip=10.90.0.5/", BYTES("request_ip=1\nip=10.90.0.5/\n\n"), INVALID },
	{ "ip_v4mapped", "ip=::ffff:10.90.0.5", BYTES("request_ip=1\nip=::ffff:10.90.0.5\n\n"),
	  INVALID },
	{ "ip_v4mapped_128", "ip=::ffff:10.90.0.5/128",
	  BYTES("request_ip=1\nip=::ffff:10.90.0.5/128\n\n"), INVALID },
	{ "ip_leading_space", "ip= 10.90.0.5", BYTES("request_ip=1\nip= 10.90.0.5\n\n"), INVALID },
	{ "ip_trailing_space", "ip=10.90.0.5 ", BYTES("request_ip=1\nip=10.90.0.5 \n\n"), INVALID },
	{ "ip_empty", "ip=", BYTES("request_ip=1\nip=\n\n"), INVALID },
	{ "ip_zone", "ip=fe80::1%wg0", BYTES("request_ip=1\nip=fe80::1%wg0\n\n"), INVALID },
	{ "ip_octet_zero_led", "ip=10.90.0.05", BYTES("request_ip=1\nip=10.90.0.05\n\n"), INVALID },
	{ "ip_twice_v4", "two IPv4 ip= lines",
	  BYTES("request_ip=1\nip=0.0.0.0/32\nip=::/128\nip=10.90.0.7/32\n\n"), INVALID },
	{ "ip_twice_v6", "two IPv6 ip= lines",
	  BYTES("request_ip=1\nip=::/128\nip=0.0.0.0/32\nip=::/128\n\n"), INVALID },
	{ "ip_hundreds", "300 IPv4 ip= lines", .build = build_ip_hundreds, INVALID },
	{ "ip_hundreds_v6", "400 IPv6 ip= lines", .build = build_ip_hundreds_v6, INVALID },

	/* One request per connection. */
	{ "pipelined", "a second request right after the first: only the first is answered",
	  BYTES(VALID "request_ip=1\n\n"), GRANTED },
	{ "pipelined_bad_first", "an unsupported request, then a valid one",
	  BYTES("request_ip=2\n\n" VALID), UNSUPPORTED },
	{ "trailing_garbage", "binary garbage after the request",
	  BYTES(VALID "\x01\xff garbage\0 without end"), GRANTED },
	{ "halfclose_after_request", "a whole request, then a half-close", BYTES(VALID),
	  .shut_wr = true, GRANTED },

	/* Requests that never end. */
	{ "halfclose_mid_message", "half-close before the final empty line",
	  BYTES("request_ip=1\nip=0.0.0.0/32\n"), .shut_wr = true, .expect = E_CLOSED },
	{ "halfclose_mid_line", "half-close in the middle of a line",
	  BYTES("request_ip=1\nip=0.0"), .shut_wr = true, .expect = E_CLOSED },
	{ "halfclose_at_once", "half-close before any byte", BYTES(""), .shut_wr = true,
	  .expect = E_CLOSED },
	{ "silence", "connect and send nothing", BYTES(""), .expect = E_IDLE },
	{ "no_final_lf", "no final empty line, then silence",
	  BYTES("request_ip=1\nip=0.0.0.0/32\nip=::/128\n"), .expect = E_IDLE },
	{ "cr_only", "CR line endings, so no line ever ends",
	  BYTES("request_ip=1\rip=::/128\r\r"), .expect = E_IDLE },

	/* Gone before the answer: the next case finds the server still there. */
	{ "reset_after_request", "a whole request, then a reset at once", BYTES(VALID),
	  .expect = E_NOTHING },
	{ "after_reset", "a request right after that", BYTES(VALID), GRANTED },
	{ "reset_mid_request", "half a request, then a reset", BYTES("request_ip=1\nip=0.0"),
	  .expect = E_NOTHING },
	{ "after_reset_mid", "a request right after that", BYTES(VALID), GRANTED },

	/* Timing. */
	{ "split_lines", "a valid request a line at a time, 100 ms apart", BYTES(VALID),
	  .mode = SEND_LINES, .gap_ms = 100, GRANTED },
	{ "trickle_fast", "a valid request a byte at a time, 10 ms apart", BYTES(VALID),
	  .mode = SEND_BYTES, .gap_ms = 10, GRANTED },
	{ "trickle_slow", "a valid request a byte at a time, 300 ms apart: cut at the timeout",
	  BYTES(VALID), .mode = SEND_BYTES, .gap_ms = 300, .expect = E_IDLE },
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static const struct hcase release_case = { "release", "", BYTES("request_ip=1\n\n"),
					   ANSWER(0, G_NONE) };

enum outcome {
	O_ANSWERED,
	O_CLOSED,
	O_TIMEOUT,
	O_GARBLED,   /* bytes that are not a response */
	O_ERROR,     /* no connection to speak of */
	O_ABORTED,   /* reset from here without waiting for anything */
};

struct result {
	enum outcome out;
	struct wgd_msg msg;
	bool reset;        /* the close was a reset */
	bool open_after;   /* answered, and not closed by the deadline */
	size_t extra;      /* bytes after the answer */
	uint64_t ms;       /* from connect to close, or to the deadline */
	char why[160];
};

/*
 * Sends the case's bytes as its mode says. Stops early when the server
 * speaks or closes: a paced send watches the socket during its pauses.
 */
static void send_bytes(int fd, const char *data, size_t len, const struct hcase *hc,
		       uint64_t deadline)
{
	size_t off = 0;

	while (off < len) {
		size_t piece = len - off;
		struct pollfd pfd = { .fd = fd };
		ssize_t n;

		if (hc->mode == SEND_BYTES) {
			piece = 1;
		} else if (hc->mode == SEND_LINES) {
			const char *nl = memchr(data + off, '\n', len - off);

			if (nl)
				piece = (size_t)(nl - (data + off)) + 1;
		}
		if (off > 0 && hc->mode != SEND_ALL) {
			pfd.events = POLLIN;
			if (poll(&pfd, 1, (int)hc->gap_ms) != 0)
				return;
		}
		n = send(fd, data + off, piece, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, ms_until(deadline)) <= 0)
				return;
			continue;
		}
		if (n < 0)
			return; /* reset or closed: what came back is read next */
		off += (size_t)n;
	}
	if (hc->shut_wr)
		shutdown(fd, SHUT_WR);
}

/* Reads until the server closes or the deadline; classifies what came. */
static void read_outcome(int fd, uint64_t t0, uint64_t deadline, struct result *r)
{
	static char buf[MAX_READ];
	static struct wgd_parser parser;
	size_t got = 0;
	ssize_t used = 0;
	bool closed = false;

	wgd_parser_init(&parser, WGD_PARSE_RESPONSE);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, ms_until(deadline)) == 0)
			break;
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			r->reset = n < 0;
			closed = true;
			break;
		}
		if (used == 0) {
			used = wgd_parse(&parser, buf + got, (size_t)n);
			if (used > 0)
				used += (ssize_t)got;
		}
		got += (size_t)n;
		if (got == sizeof(buf))
			break;
	}
	r->ms = now_ms() - t0;

	if (used > 0) {
		r->out = O_ANSWERED;
		r->msg = parser.msg;
		r->extra = got - (size_t)used;
		r->open_after = !closed;
	} else if (got) {
		r->out = O_GARBLED;
		snprintf(r->why, sizeof(r->why), "%zu bytes: %s", got,
			 used < 0 ? parser.error : "no whole response");
	} else {
		r->out = closed ? O_CLOSED : O_TIMEOUT;
	}
}

static void run_one(const struct in6_addr *src, const char *data, size_t len,
		    const struct hcase *hc, struct result *r)
{
	uint64_t t0, deadline;
	struct pollfd pfd;
	int fd, ret;

	memset(r, 0, sizeof(*r));
	fd = conn_start(src);
	if (fd < 0) {
		r->out = O_ERROR;
		snprintf(r->why, sizeof(r->why), "bind or connect: %s", strerror(-fd));
		return;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	ret = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
	ret = ret > 0 ? conn_result(fd) : -ETIMEDOUT;
	if (ret) {
		r->out = O_ERROR;
		snprintf(r->why, sizeof(r->why), "connect: %s", strerror(-ret));
		close(fd);
		return;
	}
	t0 = now_ms();
	deadline = t0 + idle_ms + READ_SLACK_MS;
	send_bytes(fd, data, len, hc, deadline);
	if (hc->expect == E_NOTHING)
		r->out = O_ABORTED;
	else
		read_outcome(fd, t0, deadline, r);
	close(fd);
}

/* "ip4 A ip6 B" of an answer, for the report. */
static const char *fmt_grant(const struct wgd_msg *m, char *buf, size_t len)
{
	char a4[WGD_IP_STRLEN] = "-", a6[WGD_IP_STRLEN] = "-";

	if (m->has_ip4)
		wgd_ip_format_addr(&m->ip4, a4, sizeof(a4));
	if (m->has_ip6)
		wgd_ip_format_addr(&m->ip6, a6, sizeof(a6));
	if (!m->has_ip4 && !m->has_ip6)
		snprintf(buf, len, "no ip");
	else
		snprintf(buf, len, "ip4 %s ip6 %s", a4, a6);
	return buf;
}

static const char *grant_names[] = {
	[G_NONE] = "no ip",
	[G_BOTH] = "ip4+ip6",
	[G_V6] = "ip6 only",
	[G_OTHER] = "others than asked",
	[G_ASKED] = "as asked",
};

static void fmt_expect(const struct hcase *hc, char *buf, size_t len)
{
	switch (hc->expect) {
	case E_ANSWER:
		snprintf(buf, len, "errno=%u %s", hc->err, grant_names[hc->grant]);
		break;
	case E_CLOSED:
		snprintf(buf, len, "closed at once");
		break;
	case E_IDLE:
		snprintf(buf, len, "closed at %u ms", idle_ms);
		break;
	case E_NOTHING:
		snprintf(buf, len, "reset from here");
		break;
	}
}

static void fmt_result(const struct result *r, char *buf, size_t len)
{
	char g[2 * WGD_IP_STRLEN + 16];
	const char *how = r->reset ? "reset" : "closed";

	switch (r->out) {
	case O_ANSWERED:
		snprintf(buf, len, "errno=%u %s, %s (%llu ms)%s", r->msg.err,
			 fmt_grant(&r->msg, g, sizeof(g)), r->open_after ? "left open" : how,
			 (unsigned long long)r->ms, r->extra ? ", bytes after the answer" : "");
		break;
	case O_CLOSED:
		snprintf(buf, len, "%s without answer (%llu ms)", how, (unsigned long long)r->ms);
		break;
	case O_TIMEOUT:
		snprintf(buf, len, "timeout: still open after %llu ms", (unsigned long long)r->ms);
		break;
	case O_GARBLED:
		snprintf(buf, len, "garbled answer: %s", r->why);
		break;
	case O_ERROR:
		snprintf(buf, len, "%s", r->why);
		break;
	case O_ABORTED:
		snprintf(buf, len, "reset from here");
		break;
	}
}

/* Whether the answer grants what the case expects; why it does not, if not. */
static bool grant_ok(const struct hcase *hc, const char *data, size_t len,
		     const struct wgd_msg *m, const char **why)
{
	static struct wgd_parser req;
	const struct wgd_msg *q = &req.msg;

	if ((m->has_ip4 && !in_pools(&m->ip4)) || (m->has_ip6 && !in_pools(&m->ip6))) {
		*why = "granted outside the pools";
		return false;
	}
	if ((m->has_ip4 && is_taken(&m->ip4)) || (m->has_ip6 && is_taken(&m->ip6))) {
		*why = "granted another peer's address";
		return false;
	}
	*why = "wrong addresses";
	switch (hc->grant) {
	case G_NONE:
		return !m->has_ip4 && !m->has_ip6;
	case G_BOTH:
		return m->has_ip4 && m->has_ip6;
	case G_V6:
		return !m->has_ip4 && m->has_ip6;
	case G_OTHER:
	case G_ASKED:
		/* What the request asked for, read back with the parser. */
		wgd_parser_init(&req, WGD_PARSE_REQUEST);
		if (wgd_parse(&req, data, len) <= 0 || !q->has_ip4 || !q->has_ip6) {
			*why = "the case's own request does not parse";
			return false;
		}
		if (!m->has_ip4 || !m->has_ip6)
			return false;
		if (hc->grant == G_ASKED)
			return wgd_ip_equal(&m->ip4, &q->ip4) && wgd_ip_equal(&m->ip6, &q->ip6);
		if (wgd_ip_equal(&m->ip4, &q->ip4) || wgd_ip_equal(&m->ip6, &q->ip6)) {
			*why = "granted the address asked for";
			return false;
		}
		return true;
	}
	return false;
}

/* Whether the outcome is the one expected; why not, if not. */
static bool judge(const struct hcase *hc, const char *data, size_t len, const struct result *r,
		  const char **why)
{
	*why = NULL;
	if (hc->expect == E_NOTHING)
		return r->out == O_ABORTED;
	if (hc->expect == E_ANSWER) {
		if (r->out != O_ANSWERED) {
			*why = "no answer";
			return false;
		}
		if (r->msg.err != hc->err) {
			*why = "wrong errno";
			return false;
		}
		if (r->extra) {
			*why = "more than one answer";
			return false;
		}
		if (r->open_after) {
			*why = "not closed after the answer";
			return false;
		}
		if (r->ms + EARLY_MS >= idle_ms) {
			*why = "answered only at the idle timeout";
			return false;
		}
		return grant_ok(hc, data, len, &r->msg, why);
	}
	if (r->out != O_CLOSED) {
		*why = r->out == O_ANSWERED ? "answered" : "not closed";
		return false;
	}
	if (hc->expect == E_IDLE && (r->ms + EARLY_MS < idle_ms || r->ms > idle_ms + LATE_MS)) {
		*why = "closed at the wrong time";
		return false;
	}
	if (hc->expect == E_CLOSED && r->ms + EARLY_MS >= idle_ms) {
		*why = "closed only at the idle timeout";
		return false;
	}
	return true;
}

static const struct hcase *case_find(const char *name)
{
	for (size_t i = 0; i < N_CASES; i++)
		if (!strcmp(cases[i].name, name))
			return &cases[i];
	return NULL;
}

static int run_cases(const struct in6_addr *src, char **names, int n_names)
{
	static struct msgbuf mb;
	static struct result r;
	size_t total = n_names ? (size_t)n_names : N_CASES;
	unsigned failed = 0, skipped = 0;

	for (int i = 0; i < n_names; i++) {
		if (!case_find(names[i])) {
			fprintf(stderr, "hostile: no case %s (hostile --list names them)\n", names[i]);
			return 1;
		}
	}
	for (size_t i = 0; i < total; i++) {
		const struct hcase *hc = n_names ? case_find(names[i]) : &cases[i];
		char exp[64], got[256];
		const char *data = hc->bytes, *why, *lacks = case_lacks(hc);
		size_t len = hc->len;
		bool ok;

		if (lacks) {
			printf("%-24s skipped: %s\n", hc->name, lacks);
			skipped++;
			continue;
		}
		if (hc->build) {
			mb.len = 0;
			hc->build(&mb);
			data = mb.data;
			len = mb.len;
		}
		/* A lease held would be kept instead of the address asked for,
		 * and hide whether that one would have been granted. */
		ok = true;
		if (hc->fresh) {
			run_one(src, release_case.bytes, release_case.len, &release_case, &r);
			ok = judge(&release_case, release_case.bytes, release_case.len, &r, &why);
			if (!ok)
				why = "the release before it failed";
		}
		if (ok) {
			run_one(src, data, len, hc, &r);
			ok = judge(hc, data, len, &r, &why);
		}
		fmt_expect(hc, exp, sizeof(exp));
		fmt_result(&r, got, sizeof(got));
		printf("%-24s expect %-26s got %s: %s%s%s\n", hc->name, exp, got,
		       ok ? "ok" : "FAIL", why && !ok ? ", " : "", why && !ok ? why : "");
		fflush(stdout);
		failed += !ok;
	}
	printf("%zu cases: %zu passed, %u failed, %u skipped\n", total,
	       total - failed - skipped, failed, skipped);
	return failed ? 1 : 0;
}

/* ---- many connections at once ---- */

enum slot_state {
	SLOT_WAITING,     /* to be opened at t_next */
	SLOT_CONNECTING,
	SLOT_OPEN,
	SLOT_DONE,        /* closed, not to be opened again */
};

struct slot {
	struct in6_addr src;
	int fd;
	enum slot_state state;
	unsigned opens;   /* connections opened from this slot so far */
	uint64_t t_open;  /* when connect() succeeded */
	uint64_t t_next;  /* SLOT_WAITING: when to open; SLOT_OPEN: next byte */
	size_t sent;
	bool answered;
};

/*
 * What became of connections. A close sooner than REFUSED_MS after the
 * connect is a refusal; a later one is "kept", and its lifetime counted.
 */
struct tally {
	size_t connects, failed, refused, kept, answered;
	uint64_t life_min, life_max, life_sum;
};

struct herd {
	struct slot *slots;
	size_t n;
	bool trickle;
	unsigned gap_ms;
	int reopen_ms;      /* < 0: a closed connection stays closed */
	unsigned rate;      /* connections opened per second at most; 0: no limit */
	double tokens;      /* for rate: connections that may open now */
	uint64_t t_tokens;  /* when tokens was last topped up */
	struct tally first; /* the first connection of each slot */
	struct tally all;   /* every connection, reopened ones included */
};

static const char trickle_request[] =
	"request_ip=1\nip=0.0.0.0/32\nip=::/128\nleasestart=0\nleasetime=0\n"
	"slow=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";

static int herd_addrs(struct herd *h, const char *prefix, size_t n)
{
	char text[INET6_ADDRSTRLEN + 16];

	h->slots = calloc(n, sizeof(*h->slots));
	if (!h->slots)
		return -ENOMEM;
	h->n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "%s%zx", prefix, i + 1);
		if (inet_pton(AF_INET6, text, &h->slots[i].src) != 1) {
			fprintf(stderr, "hostile: %s is not an IPv6 address\n", text);
			return -EINVAL;
		}
		h->slots[i].fd = -1;
		h->slots[i].state = SLOT_WAITING;
	}
	return 0;
}

/* Counts an event of slot s in both tallies, or in the second alone. */
#define TALLY(h, s, field)              \
	do {                             \
		if ((s)->opens == 1)     \
			(h)->first.field++; \
		(h)->all.field++;        \
	} while (0)

static void tally_life(struct tally *t, uint64_t life)
{
	if (!t->kept || life < t->life_min)
		t->life_min = life;
	if (life > t->life_max)
		t->life_max = life;
	t->life_sum += life;
	t->kept++;
}

static void slot_open(struct herd *h, struct slot *s)
{
	int fd = conn_start(&s->src);

	s->opens++;
	if (fd < 0) {
		char ab[INET6_ADDRSTRLEN];

		fprintf(stderr, "hostile: from %s: %s\n",
			inet_ntop(AF_INET6, &s->src, ab, sizeof(ab)), strerror(-fd));
		TALLY(h, s, failed);
		s->state = SLOT_DONE;
		return;
	}
	s->fd = fd;
	s->state = SLOT_CONNECTING;
	s->sent = 0;
	s->answered = false;
}

/* The server closed s: counts it, and schedules a reopen. */
static void slot_closed(struct herd *h, struct slot *s, uint64_t now)
{
	uint64_t life = now - s->t_open;

	close(s->fd);
	s->fd = -1;
	if (life < REFUSED_MS && !s->answered) {
		TALLY(h, s, refused);
	} else {
		if (s->opens == 1)
			tally_life(&h->first, life);
		tally_life(&h->all, life);
	}
	if (h->reopen_ms >= 0) {
		s->state = SLOT_WAITING;
		s->t_next = now + (uint64_t)h->reopen_ms;
	} else {
		s->state = SLOT_DONE;
	}
}

static void slot_event(struct herd *h, struct slot *s, short revents, uint64_t now)
{
	char buf[512];
	ssize_t n;

	if (s->state == SLOT_CONNECTING) {
		if (conn_result(s->fd)) {
			TALLY(h, s, failed);
			close(s->fd);
			s->fd = -1;
			s->state = SLOT_DONE;
			return;
		}
		TALLY(h, s, connects);
		s->state = SLOT_OPEN;
		s->t_open = now;
		s->t_next = now;
		return;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	n = recv(s->fd, buf, sizeof(buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		if (!s->answered)
			TALLY(h, s, answered);
		s->answered = true;
		return;
	}
	slot_closed(h, s, now);
}

/* Trickling slots send their next byte when it is due. */
static void slot_trickle(struct herd *h, struct slot *s, uint64_t now)
{
	if (!h->trickle || s->state != SLOT_OPEN || now < s->t_next)
		return;
	if (s->sent < sizeof(trickle_request) - 1 &&
	    send(s->fd, trickle_request + s->sent, 1, MSG_NOSIGNAL) == 1)
		s->sent++;
	s->t_next += h->gap_ms;
}

/*
 * Whether a connection may open now, under --rate: a token bucket that
 * holds a tenth of a second's worth, so that a pause builds no burst.
 */
static bool herd_may_open(struct herd *h, uint64_t now)
{
	if (!h->rate)
		return true;
	h->tokens += (double)(now - h->t_tokens) * h->rate / 1000;
	h->t_tokens = now;
	if (h->tokens > h->rate / 10.0 + 1)
		h->tokens = h->rate / 10.0 + 1;
	if (h->tokens < 1)
		return false;
	h->tokens -= 1;
	return true;
}

/*
 * One round of the event loop over every slot: opens those due, waits at
 * most max_wait_ms for events, handles them.
 */
static void herd_step(struct herd *h, int max_wait_ms)
{
	static struct pollfd pfds[MAX_SLOTS];
	static size_t idx[MAX_SLOTS];
	uint64_t now = now_ms(), next = now + (uint64_t)max_wait_ms;
	size_t n = 0;
	int ret;

	for (size_t i = 0; i < h->n; i++) {
		struct slot *s = &h->slots[i];

		if (s->state == SLOT_WAITING && s->t_next <= now) {
			if (herd_may_open(h, now))
				slot_open(h, s);
			else
				s->t_next = now + 1;
		}
		slot_trickle(h, s, now);
		if ((s->state == SLOT_WAITING || (h->trickle && s->state == SLOT_OPEN)) &&
		    s->t_next < next)
			next = s->t_next;
		if (s->state != SLOT_CONNECTING && s->state != SLOT_OPEN)
			continue;
		pfds[n].fd = s->fd;
		pfds[n].events = s->state == SLOT_CONNECTING ? POLLOUT : POLLIN;
		pfds[n].revents = 0;
		idx[n++] = i;
	}
	ret = poll(pfds, n, ms_until(next));
	if (ret <= 0)
		return;
	now = now_ms();
	for (size_t k = 0; k < n; k++)
		if (pfds[k].revents)
			slot_event(h, &h->slots[idx[k]], pfds[k].revents, now);
}

/* Slots in state st; first: only those still on their first connection. */
static size_t herd_count(const struct herd *h, enum slot_state st, bool first)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n; i++)
		n += h->slots[i].state == st && (!first || h->slots[i].opens == 1);
	return n;
}

/* Whether every slot's first connection has connected or failed. */
static bool first_round_connected(const struct herd *h)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->slots[i].opens == 0 ||
		    (h->slots[i].opens == 1 && h->slots[i].state == SLOT_CONNECTING))
			return false;
	return true;
}

static int run_hold(const char *prefix, size_t n, unsigned hold_s, int reopen_ms,
		    unsigned rate)
{
	struct herd h = { .reopen_ms = reopen_ms, .rate = rate, .t_tokens = now_ms() };
	const struct tally *f = &h.first, *a = &h.all;
	uint64_t start, end, settled = 0;
	bool up = false;

	if (herd_addrs(&h, prefix, n))
		return 1;
	start = now_ms();
	end = start + (uint64_t)hold_s * 1000;
	printf("hold: %zu connections from %s1 to %s%zx for %u s\n", n, prefix, prefix, n, hold_s);
	while (now_ms() < end) {
		herd_step(&h, 50);
		/* The first round has settled once the server has had the time
		 * to refuse what it refuses. */
		if (!settled && first_round_connected(&h))
			settled = now_ms() + REFUSED_MS;
		if (!up && settled && now_ms() >= settled) {
			printf("up: after_ms=%llu connected=%zu open=%zu refused=%zu failed=%zu\n",
			       (unsigned long long)(now_ms() - start), f->connects,
			       herd_count(&h, SLOT_OPEN, true), f->refused, f->failed);
			up = true;
		}
	}
	/* "kept": of the first round, those the server did not refuse. */
	printf("end: seconds=%u kept_closed=%zu kept_open=%zu kept_life_min_ms=%llu "
	       "kept_life_max_ms=%llu connects=%zu refused=%zu answered=%zu failed=%zu\n",
	       hold_s, f->kept, herd_count(&h, SLOT_OPEN, true),
	       (unsigned long long)f->life_min, (unsigned long long)f->life_max, a->connects,
	       a->refused, a->answered, a->failed + herd_count(&h, SLOT_CONNECTING, false));
	return 0;
}

static int run_trickle(const char *prefix, size_t n, unsigned gap_ms, unsigned rate)
{
	struct herd h = { .trickle = true, .gap_ms = gap_ms, .reopen_ms = -1, .rate = rate,
			  .t_tokens = now_ms() };
	const struct tally *t = &h.all;
	size_t outlived, failed;
	bool early = false, late = false, ok;
	uint64_t end;

	if (herd_addrs(&h, prefix, n))
		return 1;
	/* Twice the idle timeout after the last connect at the latest. */
	end = now_ms() + CONNECT_TIMEOUT_MS + 2 * (uint64_t)idle_ms;
	printf("trickle: %zu connections from %s1 to %s%zx, a byte every %u ms\n", n, prefix,
	       prefix, n, gap_ms);
	do {
		herd_step(&h, 50);
	} while (herd_count(&h, SLOT_DONE, false) < n && now_ms() < end);
	outlived = herd_count(&h, SLOT_OPEN, false);
	failed = t->failed + herd_count(&h, SLOT_CONNECTING, false);
	/* Lives count from the connect; the server's clock starts at accept. */
	if (t->kept) {
		early = t->life_min + EARLY_MS < idle_ms;
		late = t->life_max > idle_ms + LATE_MS;
	}
	ok = t->connects == n && t->kept == n && !t->answered && !outlived && !failed &&
	     !early && !late;
	printf("end: connections=%zu connected=%zu closed=%zu refused=%zu answered=%zu "
	       "outlived=%zu failed=%zu life_min_ms=%llu life_max_ms=%llu life_mean_ms=%llu: %s\n",
	       n, t->connects, t->kept, t->refused, t->answered, outlived, failed,
	       (unsigned long long)t->life_min, (unsigned long long)t->life_max,
	       (unsigned long long)(t->kept ? t->life_sum / t->kept : 0), ok ? "ok" : "FAIL");
	return ok ? 0 : 1;
}

/* ---- the command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: hostile [OPTION...] IFACE SRC [CASE...]\n"
		"       hostile --list\n"
		"       hostile --hold N --from-prefix PFX [--for S] [--reopen MS] [--rate R] IFACE\n"
		"       hostile --trickle N --from-prefix PFX [--gap MS] [--rate R] IFACE\n"
		"Options: --port PORT, --idle-timeout S, --pool CIDR, --taken ADDR\n");
}

static unsigned long number(const char *opt, const char *arg, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || !*arg || *end || arg[0] == '-' || v > max) {
		fprintf(stderr, "hostile: %s %s: give a number up to %lu\n", opt, arg, max);
		exit(1);
	}
	return v;
}

static void ip_arg(const char *opt, const char *arg, bool prefix, struct wgd_ip *out)
{
	if (wgd_ip_parse(out, arg, strlen(arg), prefix)) {
		fprintf(stderr, "hostile: %s %s: not %s\n", opt, arg,
			prefix ? "a prefix" : "an address");
		exit(1);
	}
}

int main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "pool", required_argument, NULL, 'P' },
		{ "taken", required_argument, NULL, 't' },
		{ "list", no_argument, NULL, 'l' },
		{ "hold", required_argument, NULL, 'H' },
		{ "trickle", required_argument, NULL, 'T' },
		{ "from-prefix", required_argument, NULL, 'f' },
		{ "for", required_argument, NULL, 'F' },
		{ "reopen", required_argument, NULL, 'r' },
		{ "gap", required_argument, NULL, 'g' },
		{ "rate", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *prefix = NULL;
	unsigned long hold = 0, trickle = 0, hold_s = 10, gap_ms = 1000;
	unsigned rate = 0;
	long reopen_ms = -1;
	struct in6_addr src;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			src_port = (uint16_t)number("--port", optarg, 65535);
			break;
		case 'I':
			idle_ms = (unsigned)number("--idle-timeout", optarg, 3600) * 1000;
			break;
		case 'P':
			if (n_pools == MAX_POOLS) {
				fprintf(stderr, "hostile: at most %d --pool options\n", MAX_POOLS);
				return 1;
			}
			ip_arg("--pool", optarg, true, &pools[n_pools++]);
			break;
		case 't':
			if (n_taken == MAX_TAKEN) {
				fprintf(stderr, "hostile: at most %d --taken options\n", MAX_TAKEN);
				return 1;
			}
			ip_arg("--taken", optarg, false, &taken[n_taken++]);
			break;
		case 'l':
			for (size_t i = 0; i < N_CASES; i++)
				printf("%-24s %s\n", cases[i].name, cases[i].what);
			return 0;
		case 'H':
			hold = number("--hold", optarg, MAX_SLOTS);
			break;
		case 'T':
			trickle = number("--trickle", optarg, MAX_SLOTS);
			break;
		case 'f':
			prefix = optarg;
			break;
		case 'F':
			hold_s = number("--for", optarg, 3600);
			break;
		case 'r':
			reopen_ms = (long)number("--reopen", optarg, 60000);
			break;
		case 'g':
			gap_ms = number("--gap", optarg, 60000);
			break;
		case 'R':
			rate = (unsigned)number("--rate", optarg, 1000000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if ((hold || trickle) ? (!prefix || optind != argc - 1 || (hold && trickle)) :
				optind > argc - 2) {
		usage(stderr);
		return 1;
	}
	ifname = argv[optind];
	ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		fprintf(stderr, "hostile: no interface %s\n", ifname);
		return 1;
	}
	dst_sa.sin6_family = AF_INET6;
	dst_sa.sin6_port = htons(WGD_PORT);
	dst_sa.sin6_addr.s6_addr[0] = 0xfe;
	dst_sa.sin6_addr.s6_addr[1] = 0x80;
	dst_sa.sin6_scope_id = ifindex;
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (hold)
		return run_hold(prefix, hold, (unsigned)hold_s, (int)reopen_ms, rate);
	if (trickle)
		return run_trickle(prefix, trickle, (unsigned)gap_ms, rate);
	if (inet_pton(AF_INET6, argv[optind + 1], &src) != 1) {
		fprintf(stderr, "hostile: %s is not an IPv6 address\n", argv[optind + 1]);
		return 1;
	}
	return run_cases(&src, argv + optind + 2, argc - optind - 2);
}
