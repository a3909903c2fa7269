// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/icmp.h>
#include <sodium.h>

#include "probe.h"

static const char payload[16] = "wg-dynamic mesh";

/* RFC 1071: the ones' complement of the ones' complement sum. */
static uint16_t inet_checksum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void probe_build(uint8_t buf[PROBE_LEN], uint8_t family, uint16_t ident, uint16_t seq)
{
	uint16_t sum;

	memset(buf, 0, PROBE_LEN);
	buf[0] = family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST; /* 8, 128 */
	buf[4] = (uint8_t)(ident >> 8);
	buf[5] = (uint8_t)ident;
	buf[6] = (uint8_t)(seq >> 8);
	buf[7] = (uint8_t)seq;
	memcpy(buf + 8, payload, sizeof(payload));
	if (family != AF_INET)
		return;
	sum = inet_checksum(buf, PROBE_LEN);
	buf[2] = (uint8_t)(sum >> 8);
	buf[3] = (uint8_t)sum;
}

void prober_init(struct prober *p)
{
	p->fd4 = p->fd6 = -1;
	p->ident = (uint16_t)randombytes_random();
	p->seq = 0;
}

/*
 * A raw socket that only sends: its receive side filters out every ICMP
 * type, so that the replies, and every other ICMP message the host gets,
 * never queue up on it.
 */
static int open_socket(uint8_t family, const char *ifname)
{
	int fd, ret;

	fd = socket(family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	if (fd < 0)
		return -errno;
	if (family == AF_INET) {
		struct icmp_filter filter = { .data = ~0U };

		ret = setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof(filter));
	} else {
		struct icmp6_filter filter;

		ICMP6_FILTER_SETBLOCKALL(&filter);
		ret = setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter));
	}
	if (!ret)
		ret = setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname));
	if (ret) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int prober_open(struct prober *p, const char *ifname)
{
	p->fd4 = open_socket(AF_INET, ifname);
	if (p->fd4 < 0)
		return p->fd4;
	p->fd6 = open_socket(AF_INET6, ifname);
	if (p->fd6 < 0) {
		int ret = p->fd6;

		prober_close(p);
		return ret;
	}
	return 0;
}

int prober_send(struct prober *p, const struct wgd_ip *dst)
{
	int *fd = dst->family == AF_INET ? &p->fd4 : &p->fd6;
	union {
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} to = { 0 };
	uint8_t buf[PROBE_LEN];
	socklen_t len;

	if (dst->family != AF_INET && dst->family != AF_INET6)
		return -EAFNOSUPPORT;
	if (*fd < 0)
		return -EBADF;
	if (dst->family == AF_INET) {
		to.sin.sin_family = AF_INET;
		to.sin.sin_addr = dst->ip4;
		len = sizeof(to.sin);
	} else {
		to.sin6.sin6_family = AF_INET6;
		to.sin6.sin6_addr = dst->ip6;
		len = sizeof(to.sin6);
	}
	probe_build(buf, dst->family, p->ident, p->seq++);
	if (sendto(*fd, buf, sizeof(buf), 0, (struct sockaddr *)&to, len) < 0)
		return -errno;
	return 0;
}

void prober_close(struct prober *p)
{
	if (p->fd4 >= 0)
		close(p->fd4);
	if (p->fd6 >= 0)
		close(p->fd6);
	p->fd4 = p->fd6 = -1;
}
