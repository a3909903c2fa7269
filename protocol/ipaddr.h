/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_IPADDR_H
#define WGD_IPADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * An IPv4 or IPv6 address with a prefix length. Host addresses carry /32 or
 * /128. The unused tail of the address bytes is always zero, so two values
 * compare equal with memcmp() when they are the same prefix.
 */
struct wgd_ip {
	uint8_t family; /* AF_INET or AF_INET6; 0 means "none" */
	uint8_t cidr;
	uint8_t pad[2];
	union {
		struct in_addr ip4;
		struct in6_addr ip6;
		uint8_t bytes[16];
	};
};

/* Longest text wgd_ip_format() writes, with the NUL: an IPv6 address and "/128". */
#define WGD_IP_STRLEN (INET6_ADDRSTRLEN + 4)

static inline unsigned wgd_ip_bits(uint8_t family)
{
	return family == AF_INET ? 32 : 128;
}

static inline size_t wgd_ip_len(uint8_t family)
{
	return family == AF_INET ? 4 : 16;
}

/*
 * Parses "ADDR" or "ADDR/CIDR" from exactly len bytes (no NUL needed). Without
 * a prefix length the address is a host address. Rejects trailing junk,
 * prefixes out of range, and IPv4-mapped IPv6 addresses. When host_bits_zero
 * is set, a prefix with bits set past its length is rejected too.
 * CIDR is one to three digits with no leading zero ("/0" is fine, "/032" is
 * not), and a NUL byte anywhere in the len bytes is rejected.
 * Returns 0 or -EINVAL; *out is untouched on failure.
 */
int wgd_ip_parse(struct wgd_ip *out, const char *s, size_t len, bool host_bits_zero);

/*
 * Writes "ADDR/CIDR" into buf (WGD_IP_STRLEN bytes suffice); returns buf.
 * Meant for logs: a family of 0 reads "(none)", and text that does not fit
 * leaves buf empty rather than cut short.
 */
char *wgd_ip_format(const struct wgd_ip *ip, char *buf, size_t len);

/* Writes "ADDR" without a prefix length; returns buf. */
char *wgd_ip_format_addr(const struct wgd_ip *ip, char *buf, size_t len);

void wgd_ip_host4(struct wgd_ip *out, const struct in_addr *a);
void wgd_ip_host6(struct wgd_ip *out, const struct in6_addr *a);

bool wgd_ip_equal(const struct wgd_ip *a, const struct wgd_ip *b);

/* Whether prefix a contains address or prefix b (same family only).
 * Compares prefix bits only: host bits set in a do not matter. */
bool wgd_ip_contains(const struct wgd_ip *a, const struct wgd_ip *b);

/* Whether the two prefixes share any address. */
bool wgd_ip_overlaps(const struct wgd_ip *a, const struct wgd_ip *b);

/* Clears the bits past the prefix length. */
void wgd_ip_mask(struct wgd_ip *ip);

/* Whether the address is 0.0.0.0 or ::, whatever its prefix length. */
bool wgd_ip_is_unspecified(const struct wgd_ip *ip);
/* Whether the address lies in fe80::/10. */
bool wgd_ip_is_linklocal6(const struct wgd_ip *ip);

#endif
