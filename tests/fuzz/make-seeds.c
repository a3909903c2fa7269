// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * Writes the binary seed corpora of the genl, rtnl and journal fuzzers:
 * realistic messages and files, and a few damaged ones. The text corpora
 * (request, response, uapi) are written by hand.
 *
 * Usage: make-seeds CORPUS_DIR   (normally through "make fuzz-seeds")
 *
 * The output is deterministic, so running it again changes nothing unless
 * this file changed.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <sodium.h>

#include "../../server/journal.h"

/* As in fuzz_genl.c. */
#define GENL_FAMILY 0x1b
#define GENL_SEQ 0x5eed

static const char *corpus_dir;

/* A seed being put together. */
struct seed {
	uint8_t buf[16384];
	size_t len;
};

static void add(struct seed *s, const void *p, size_t len)
{
	if (len > sizeof(s->buf) - s->len) {
		fprintf(stderr, "make-seeds: seed too large\n");
		exit(1);
	}
	memcpy(s->buf + s->len, p, len);
	s->len += len;
}

static void add_u8(struct seed *s, uint8_t v)
{
	add(s, &v, 1);
}

static void add_u16le(struct seed *s, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	add(s, b, 2);
}

static void save(const char *fuzzer, const char *name, const struct seed *s)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", corpus_dir, fuzzer);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", corpus_dir, fuzzer, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void key_fill(uint8_t key[WG_KEY_LEN], uint8_t tag)
{
	for (int i = 0; i < WG_KEY_LEN; ++i)
		key[i] = (uint8_t)(tag * 31 + i * 7);
}

/* ---- generic netlink ---- */

static struct nlmsghdr *genl_start(void *buf, uint16_t type, uint8_t cmd, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = GENL_SEQ;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = type == GENL_ID_CTRL ? 2 : WG_GENL_VERSION;
	return nlh;
}

static void put_allowedip(struct nlmsghdr *nlh, int family, const char *addr, uint8_t cidr)
{
	uint8_t bytes[16];
	struct nlattr *nest = mnl_attr_nest_start(nlh, 0);

	inet_pton(family, addr, bytes);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, (uint16_t)family);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, family == AF_INET ? 4 : 16, bytes);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, cidr);
	mnl_attr_nest_end(nlh, nest);
}

/* The first message of a dump: device attributes and two peers, the
 * second cut short after its first allowed-IP. */
static struct nlmsghdr *genl_device_first(void *buf)
{
	struct nlmsghdr *nlh = genl_start(buf, GENL_FAMILY, WG_CMD_GET_DEVICE, NLM_F_MULTI);
	struct __kernel_timespec ts = { .tv_sec = 1700000000, .tv_nsec = 5 };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(51821) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	struct nlattr *peers, *peer, *aips;
	uint8_t key[WG_KEY_LEN];

	inet_pton(AF_INET, "198.51.100.7", &sin.sin_addr);
	inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);

	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 7);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	key_fill(key, 1);
	mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, key);
	key_fill(key, 2);
	mnl_attr_put(nlh, WGDEVICE_A_PUBLIC_KEY, WG_KEY_LEN, key);
	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, 0);

	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	key_fill(key, 3);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, key);
	memset(key, 0, sizeof(key));
	mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, key);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin), &sin);
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), &ts);
	mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 2048);
	mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 1024);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_allowedip(nlh, AF_INET, "10.0.0.2", 32);
	put_allowedip(nlh, AF_INET6, "fd00::2", 128);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);

	peer = mnl_attr_nest_start(nlh, 0);
	key_fill(key, 4);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, key);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin6), &sin6);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_allowedip(nlh, AF_INET, "10.1.0.0", 16);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	return nlh;
}

/* The next message: the second peer again, with the rest of its list. */
static struct nlmsghdr *genl_device_next(void *buf)
{
	struct nlmsghdr *nlh = genl_start(buf, GENL_FAMILY, WG_CMD_GET_DEVICE, NLM_F_MULTI);
	struct nlattr *peers, *peer, *aips;
	uint8_t key[WG_KEY_LEN];

	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	key_fill(key, 4);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, key);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_allowedip(nlh, AF_INET6, "fe80::", 64);
	put_allowedip(nlh, AF_INET, "192.168.0.0", 24);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	return nlh;
}

static struct nlmsghdr *nl_done(void *buf, uint16_t type, int status)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = type == NLMSG_DONE ? NLM_F_MULTI : 0;
	nlh->nlmsg_seq = GENL_SEQ;
	if (type == NLMSG_ERROR) {
		struct nlmsgerr *err = mnl_nlmsg_put_extra_header(nlh, sizeof(*err));

		err->error = status;
		err->msg.nlmsg_seq = GENL_SEQ;
	} else {
		int *p = mnl_nlmsg_put_extra_header(nlh, sizeof(int));

		*p = status;
	}
	return nlh;
}

static struct nlmsghdr *genl_family(void *buf)
{
	struct nlmsghdr *nlh = genl_start(buf, GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, 0);

	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, GENL_FAMILY);
	mnl_attr_put_u32(nlh, CTRL_ATTR_VERSION, 1);
	return nlh;
}

/* A framed record of fuzz_genl.c: ctl, length, the bytes after the headers. */
static void genl_record(struct seed *s, uint8_t ctl, const struct nlmsghdr *nlh)
{
	size_t hdr = MNL_NLMSG_HDRLEN;

	if ((ctl & 3) == 0 || (ctl & 3) == 3)
		hdr += MNL_ALIGN(sizeof(struct genlmsghdr));
	add_u8(s, ctl);
	add_u16le(s, (uint16_t)(nlh->nlmsg_len - hdr));
	add(s, (const uint8_t *)nlh + hdr, nlh->nlmsg_len - hdr);
}

static void raw_msg(struct seed *s, const struct nlmsghdr *nlh)
{
	add(s, nlh, MNL_ALIGN(nlh->nlmsg_len));
}

static void genl_seeds(void)
{
	_Alignas(struct nlmsghdr) uint8_t m[3][4096];
	struct seed s;

	memset(m, 0, sizeof(m));

	/* Raw: a whole dump in one buffer. */
	s.len = 0;
	add_u8(&s, 0);
	raw_msg(&s, genl_device_first(m[0]));
	raw_msg(&s, genl_device_next(m[1]));
	raw_msg(&s, nl_done(m[2], NLMSG_DONE, 0));
	save("genl", "raw-dump", &s);

	/* Raw: the family reply and its ACK; an error ACK. */
	s.len = 0;
	add_u8(&s, 0);
	raw_msg(&s, genl_family(m[0]));
	raw_msg(&s, nl_done(m[1], NLMSG_ERROR, 0));
	save("genl", "raw-family", &s);
	s.len = 0;
	add_u8(&s, 0);
	raw_msg(&s, nl_done(m[0], NLMSG_ERROR, -ENODEV));
	save("genl", "raw-nack", &s);

	/* Raw: a message whose length runs past the buffer. */
	s.len = 0;
	add_u8(&s, 0);
	genl_device_first(m[0]);
	add(&s, m[0], 60);
	save("genl", "raw-truncated", &s);

	/* Framed: the dump over two received buffers. */
	s.len = 0;
	add_u8(&s, 1);
	genl_record(&s, 0x80, genl_device_first(m[0]));
	genl_record(&s, 0x00, genl_device_next(m[1]));
	genl_record(&s, 0x81, nl_done(m[2], NLMSG_DONE, 0));
	save("genl", "framed-dump", &s);

	/* Framed: the kernel flags the dump as interrupted. */
	s.len = 0;
	add_u8(&s, 1);
	genl_record(&s, 0x04, genl_device_first(m[0]));
	genl_record(&s, 0x81, nl_done(m[2], NLMSG_DONE, 0));
	save("genl", "framed-intr", &s);

	/* Framed: family reply, then the ACK in a buffer of its own. */
	s.len = 0;
	add_u8(&s, 1);
	genl_record(&s, 0x83, genl_family(m[0]));
	genl_record(&s, 0x82, nl_done(m[1], NLMSG_ERROR, 0));
	save("genl", "framed-family", &s);
}

/* ---- rtnetlink ---- */

static struct nlmsghdr *rt_start(void *buf, uint16_t type)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	return nlh;
}

static struct nlmsghdr *rt_link(void *buf, uint16_t type, const char *kind)
{
	struct nlmsghdr *nlh = rt_start(buf, type);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	struct nlattr *info;

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = 7;
	ifi->ifi_flags = 0x10041; /* UP, RUNNING, LOWER_UP */
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "wg0");
	mnl_attr_put_u32(nlh, IFLA_MTU, 1420);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
	mnl_attr_nest_end(nlh, info);
	return nlh;
}

static struct nlmsghdr *rt_addr(void *buf, uint16_t type, int family, const char *addr,
				uint8_t plen)
{
	struct nlmsghdr *nlh = rt_start(buf, type);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	struct ifa_cacheinfo ci = { .ifa_prefered = 3000, .ifa_valid = 3600 };
	uint8_t bytes[16];

	inet_pton(family, addr, bytes);
	ifa->ifa_family = (uint8_t)family;
	ifa->ifa_prefixlen = plen;
	ifa->ifa_index = 7;
	mnl_attr_put(nlh, IFA_ADDRESS, family == AF_INET ? 4 : 16, bytes);
	if (family == AF_INET)
		mnl_attr_put(nlh, IFA_LOCAL, 4, bytes);
	mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NOPREFIXROUTE);
	mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(ci), &ci);
	return nlh;
}

static struct nlmsghdr *rt_route(void *buf, uint16_t type, int family, const char *dst,
				 uint8_t plen, const char *gateway)
{
	struct nlmsghdr *nlh = rt_start(buf, type);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	uint8_t bytes[16];

	rtm->rtm_family = (uint8_t)family;
	rtm->rtm_dst_len = plen;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	if (plen) {
		inet_pton(family, dst, bytes);
		mnl_attr_put(nlh, RTA_DST, family == AF_INET ? 4 : 16, bytes);
	}
	mnl_attr_put_u32(nlh, RTA_TABLE, RT_TABLE_MAIN);
	mnl_attr_put_u32(nlh, RTA_OIF, 7);
	if (gateway) {
		inet_pton(family, gateway, bytes);
		mnl_attr_put(nlh, RTA_GATEWAY, family == AF_INET ? 4 : 16, bytes);
	}
	return nlh;
}

/* A framed record of fuzz_rtnl.c: its type index and the payload. */
static void rt_record(struct seed *s, uint8_t sel, const struct nlmsghdr *nlh)
{
	add_u8(s, sel);
	add_u16le(s, (uint16_t)(nlh->nlmsg_len - MNL_NLMSG_HDRLEN));
	add(s, (const uint8_t *)nlh + MNL_NLMSG_HDRLEN, nlh->nlmsg_len - MNL_NLMSG_HDRLEN);
}

static void rtnl_seeds(void)
{
	_Alignas(struct nlmsghdr) uint8_t m[6][1024];
	struct seed s;

	memset(m, 0, sizeof(m));

	/* Raw: one buffer of each kind of notification. */
	s.len = 0;
	add_u8(&s, 0);
	raw_msg(&s, rt_link(m[0], RTM_NEWLINK, "wireguard"));
	raw_msg(&s, rt_addr(m[1], RTM_NEWADDR, AF_INET, "10.0.0.5", 24));
	raw_msg(&s, rt_addr(m[2], RTM_DELADDR, AF_INET6, "fe80::1", 64));
	raw_msg(&s, rt_route(m[3], RTM_NEWROUTE, AF_INET, "10.0.0.0", 24, NULL));
	raw_msg(&s, rt_route(m[4], RTM_DELROUTE, AF_INET6, "::", 0, "fe80::1"));
	raw_msg(&s, rt_link(m[5], RTM_DELLINK, "wireguard"));
	save("rtnl", "raw-events", &s);

	/* Raw: a route whose last attribute runs past the message. */
	s.len = 0;
	add_u8(&s, 0);
	rt_route(m[0], RTM_NEWROUTE, AF_INET, "10.9.0.0", 16, NULL);
	((struct nlmsghdr *)m[0])->nlmsg_len -= 2;
	raw_msg(&s, (struct nlmsghdr *)m[0]);
	save("rtnl", "raw-truncated-attr", &s);

	/* Framed: the same kinds, through the record format. */
	s.len = 0;
	add_u8(&s, 1);
	rt_record(&s, 0, rt_link(m[0], RTM_NEWLINK, "tun"));
	rt_record(&s, 2, rt_addr(m[1], RTM_NEWADDR, AF_INET6, "fd00::5", 128));
	rt_record(&s, 4, rt_route(m[2], RTM_NEWROUTE, AF_INET6, "fd00::", 64, NULL));
	rt_record(&s, 5, rt_route(m[3], RTM_DELROUTE, AF_INET, "0.0.0.0", 0, "10.0.0.1"));
	rt_record(&s, 3, rt_addr(m[4], RTM_DELADDR, AF_INET, "10.0.0.5", 32));
	rt_record(&s, 1, rt_link(m[5], RTM_DELLINK, "a-kind-name-too-long-for-the-field"));
	save("rtnl", "framed-events", &s);
}

/* ---- lease journal ---- */

static void journal_record_fill(struct journal_record *r, uint8_t type, uint8_t flags,
				uint8_t tag)
{
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->flags = flags;
	r->start = 1700000000 + tag;
	r->leasetime = type == JREC_GRANT ? 3600 : 600;
	if (flags & JREC_F_IP4)
		inet_pton(AF_INET, "10.0.0.5", &r->ip4);
	if (flags & JREC_F_IP6)
		inet_pton(AF_INET6, "fd00::5", &r->ip6);
	key_fill(r->pubkey, tag);
}

static void add_record(struct seed *s, uint8_t type, uint8_t flags, uint8_t tag)
{
	uint8_t rec[JOURNAL_RECORD_SIZE];
	struct journal_record r;

	journal_record_fill(&r, type, flags, tag);
	journal_encode(&r, rec);
	add(s, rec, sizeof(rec));
}

static void journal_seeds(void)
{
	uint8_t hdr[JOURNAL_HEADER_SIZE];
	struct seed s;

	journal_encode_header(hdr);

	/* A journal of grants, a renewal and releases; read as is. */
	s.len = 0;
	add_u8(&s, 0);
	add(&s, hdr, sizeof(hdr));
	add_record(&s, JREC_GRANT, JREC_F_IP4 | JREC_F_IP6, 1);
	add_record(&s, JREC_GRANT, JREC_F_IP6, 2);
	add_record(&s, JREC_GRANT, JREC_F_IP4 | JREC_F_IP6, 1);
	add_record(&s, JREC_RELEASE, JREC_F_IP4 | JREC_F_IP6 | JREC_F_QUARANTINE, 1);
	add_record(&s, JREC_RELEASE, 0, 2);
	save("journal", "leases", &s);

	/* The same with a torn last record; the harness fixes checksums and
	 * stops the walk after two records. */
	s.len--;
	s.len -= 30;
	s.buf[0] = 1 | 2 << 1;
	save("journal", "torn-tail-stop", &s);

	/* Only a header; a header of another version. */
	s.len = 0;
	add_u8(&s, 0);
	add(&s, hdr, sizeof(hdr));
	save("journal", "empty", &s);
	s.buf[0] = 1;
	s.buf[1 + 8] = 2;
	save("journal", "version-2", &s);

	/* A record with an unknown flag and one with reserved bytes set. */
	s.len = 0;
	add_u8(&s, 1);
	add(&s, hdr, sizeof(hdr));
	add_record(&s, JREC_GRANT, JREC_F_IP4, 3);
	s.buf[s.len - JOURNAL_RECORD_SIZE + 1] |= 0x40;
	add_record(&s, JREC_GRANT, JREC_F_IP4, 4);
	s.buf[s.len - JOURNAL_RECORD_SIZE + 2] = 1;
	save("journal", "unknown-bits", &s);
}

/* ---- the client's handling of responses (fuzz_client.c) ---- */

static void add_response(struct seed *s, const char *text)
{
	add_u8(s, 0);
	add_u16le(s, (uint16_t)strlen(text));
	add(s, text, strlen(text));
}

static void add_wait(struct seed *s, uint16_t tenths)
{
	add_u8(s, 1);
	add_u16le(s, tenths);
}

static void client_seeds(void)
{
	static const char grant[] =
		"ip=10.90.0.7/32\nip=fd90::7/128\nroute=10.90.0.0/24\nroute=fd90::/64\n"
		"dns=10.90.0.1\ndns_search=example.net,corp.example\nmtu=1380\n"
		"leasestart=1\nleasetime=3600\nerrno=0\n\n";
	static const char hostile[] =
		"ip=127.0.0.1/32\nip=fe80::99/128\nroute=0.0.0.0/0\nroute=0.0.0.0/1\n"
		"route=128.0.0.0/1\nroute=192.0.2.0/24\nroute=10.44.0.0/16\nroute=10.55.0.0/24\n"
		"dns_search=$(reboot)\nmtu=100\nleasestart=1\nleasetime=0\nerrno=0\n\n";
	static const char refused[] = "errno=3\nerrmsg=\x1b[2Jgone\n\n";
	char many[4096];
	size_t n = 0;
	struct seed s = { .len = 0 };

	add_response(&s, grant);
	add_wait(&s, 20000);
	add_response(&s, grant);
	add_u8(&s, 2);
	add_response(&s, refused);
	save("client", "grant-renew-restart", &s);

	s.len = 0;
	add_response(&s, hostile);
	add_wait(&s, 50);
	add_response(&s, grant);
	add_u8(&s, 4);
	add(&s, "\x5a\x00\x07", 3);
	add_response(&s, grant);
	save("client", "hostile", &s);

	/* The old client's overflow: 32 copies of a route, then one of them
	 * and 31 new ones. */
	s.len = 0;
	for (int i = 0; i < 32; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "route=10.9.0.0/16\n");
	snprintf(many + n, sizeof(many) - n, "ip=10.90.0.7\nleasetime=60\nerrno=0\n\n");
	add_response(&s, many);
	n = (size_t)snprintf(many, sizeof(many), "route=10.9.0.0/16\n");
	for (int i = 0; i < 31; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "route=10.%d.0.0/16\n", 100 + i);
	snprintf(many + n, sizeof(many) - n, "ip=10.90.0.7\nleasetime=60\nerrno=0\n\n");
	add_response(&s, many);
	add_u8(&s, 3);
	add_u8(&s, 0xff);
	add_wait(&s, 700);
	save("client", "repeated-routes", &s);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	corpus_dir = argv[1];
	genl_seeds();
	rtnl_seeds();
	journal_seeds();
	client_seeds();
	return 0;
}
