/* SPDX-License-Identifier: MIT */
/* Copyright (C) 2026 The wg-dynamic Authors. */
#ifndef WGD_TEST_ADDRS_H
#define WGD_TEST_ADDRS_H

#include <string.h>

#include "../../protocol/ipaddr.h"

/* Prefixes for the device tests: a.b.c.d/cidr, and first:db8::last/cidr. */
static inline void ip4(struct wgd_ip *ip, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t cidr)
{
	memset(ip, 0, sizeof(*ip));
	ip->family = AF_INET;
	ip->cidr = cidr;
	ip->bytes[0] = a;
	ip->bytes[1] = b;
	ip->bytes[2] = c;
	ip->bytes[3] = d;
}

static inline void ip6(struct wgd_ip *ip, uint16_t first, uint16_t last, uint8_t cidr)
{
	memset(ip, 0, sizeof(*ip));
	ip->family = AF_INET6;
	ip->cidr = cidr;
	ip->bytes[0] = first >> 8;
	ip->bytes[1] = first & 0xff;
	ip->bytes[2] = 0x0d;
	ip->bytes[3] = 0xb8;
	ip->bytes[14] = last >> 8;
	ip->bytes[15] = last & 0xff;
}

#endif
