// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * The generic netlink replies read from the kernel: a WG_CMD_GET_DEVICE
 * dump, the CTRL_CMD_GETFAMILY reply and a plain ACK.
 *
 * Byte 0 chooses how the rest is read:
 *
 *   even  raw: the rest is one received buffer, framing and all;
 *   odd   framed: the rest is a list of records, each made into one netlink
 *         message with a correct header, so that the fuzzer spends its
 *         effort on the attributes. A record is
 *           ctl (1 byte), len (2 bytes, little-endian), len payload bytes
 *         where ctl bits 0-1 pick the message (0 device, 1 DONE, 2 ERROR,
 *         3 family reply), bit 2 sets NLM_F_DUMP_INTR, bit 3 a wrong
 *         sequence number, bit 4 a wrong message type, and bit 7 ends the
 *         received buffer after this message.
 *
 * Each buffer goes to the parsers in its own allocation of exactly its
 * length, and each message handed to genl_parse_device_msg() alone is
 * copied the same way, so no read past the end goes unnoticed.
 */

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sodium.h>

#include "../../common/wgdev-genl.h"
#include "fuzz-util.h"

#define FAMILY 0x1b
#define SEQ 0x5eed
#define PORTID 0
/* A little more than one kernel dump buffer. */
#define BUF_MAX (GENL_RECV_SIZE + 4096)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

static void check_dev(const struct wgdev *dev)
{
	FUZZ_CHECK(strnlen(dev->name, sizeof(dev->name)) < sizeof(dev->name));
	FUZZ_CHECK(dev->n_peers == 0 || dev->peers);
	for (size_t i = 0; i < dev->n_peers; ++i) {
		const struct wgdev_peer *peer = &dev->peers[i];
		sa_family_t family = peer->endpoint.sa.sa_family;

		FUZZ_CHECK(family == 0 || family == AF_INET || family == AF_INET6);
		FUZZ_CHECK(peer->n_allowedips == 0 || peer->allowedips);
		for (size_t j = 0; j < peer->n_allowedips; ++j) {
			const struct wgd_ip *ip = &peer->allowedips[j];
			struct wgd_ip canon;

			FUZZ_CHECK(wgdev_allowedip_canon(&canon, ip) == 0);
			FUZZ_CHECK(!memcmp(canon.bytes, ip->bytes, sizeof(ip->bytes)) &&
				   canon.cidr == ip->cidr);
		}
	}
}

static struct wgdev *dev_new(void)
{
	struct wgdev *dev = calloc(1, sizeof(*dev));

	if (!dev)
		abort();
	return dev;
}

/* What a caller carries from one received buffer to the next. */
struct readers {
	struct wgdev *dev;      /* a dump in progress, or NULL */
	bool dump_done;
	uint16_t family_id;
	bool family_done, ack_done;
};

/* 1 for more, 0 at the end, or a negative status; nothing else. */
static void check_status(int ret)
{
	FUZZ_CHECK(ret <= 1);
}

/* One received buffer, through each parser still waiting for more. */
static void feed(struct readers *r, const void *buf, size_t len)
{
	int ret;

	if (!r->dump_done) {
		if (!r->dev)
			r->dev = dev_new();
		ret = genl_parse_dump(buf, len, FAMILY, SEQ, PORTID, r->dev);
		check_status(ret);
		if (ret == 0)
			check_dev(r->dev);
		if (ret != 1) {
			wgdev_free(r->dev);
			r->dev = NULL;
			r->dump_done = true;
		}
	}
	if (!r->family_done) {
		ret = genl_parse_family_reply(buf, len, SEQ, PORTID, &r->family_id);
		check_status(ret);
		if (ret == 0)
			FUZZ_CHECK(r->family_id != 0);
		r->family_done = ret != 1;
	}
	if (!r->ack_done) {
		ret = genl_parse_ack(buf, len, SEQ, PORTID);
		check_status(ret);
		r->ack_done = ret != 1;
	}
}

static void feed_copy(struct readers *r, const uint8_t *buf, size_t len)
{
	void *copy = fuzz_dup(buf, len);

	feed(r, copy, len);
	free(copy);
}

/* Each whole message of buf, alone, through genl_parse_device_msg(). */
static void each_message(const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (len - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		struct wgdev *dev;
		void *copy;

		memcpy(&h, buf + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off)
			break;
		copy = fuzz_dup(buf + off, h.nlmsg_len);
		dev = dev_new();
		if (genl_parse_device_msg(copy, dev) == 0)
			check_dev(dev);
		wgdev_free(dev);
		free(copy);
		off += NLMSG_ALIGN(h.nlmsg_len);
		if (off > len)
			break;
	}
}

static void run_raw(const uint8_t *data, size_t size)
{
	struct readers r = { 0 };

	feed_copy(&r, data, size);
	wgdev_free(r.dev);
	each_message(data, size);
}

/* Appends one message built from a record; false when it would not fit. */
static bool put_record(uint8_t *buf, size_t *len, uint8_t ctl,
		       const uint8_t *payload, size_t plen)
{
	struct nlmsghdr h = { 0 };
	struct genlmsghdr g = { 0 };
	size_t hdr = sizeof(h), total;

	h.nlmsg_seq = ctl & 0x08 ? SEQ + 1 : SEQ;
	h.nlmsg_pid = PORTID;
	h.nlmsg_flags = NLM_F_MULTI | (ctl & 0x04 ? NLM_F_DUMP_INTR : 0);
	switch (ctl & 3) {
	case 0:
		h.nlmsg_type = FAMILY;
		g.cmd = WG_CMD_GET_DEVICE;
		g.version = WG_GENL_VERSION;
		hdr += sizeof(g);
		break;
	case 1:
		h.nlmsg_type = NLMSG_DONE;
		break;
	case 2:
		h.nlmsg_type = NLMSG_ERROR;
		break;
	default:
		h.nlmsg_type = GENL_ID_CTRL;
		g.cmd = CTRL_CMD_NEWFAMILY;
		g.version = 2;
		hdr += sizeof(g);
		break;
	}
	if (ctl & 0x10)
		h.nlmsg_type = (uint16_t)(h.nlmsg_type + 0x100);

	total = hdr + plen;
	if (NLMSG_ALIGN(total) > BUF_MAX - *len)
		return false;
	h.nlmsg_len = (uint32_t)total;
	memcpy(buf + *len, &h, sizeof(h));
	if (hdr > sizeof(h))
		memcpy(buf + *len + sizeof(h), &g, sizeof(g));
	if (plen)
		memcpy(buf + *len + hdr, payload, plen);
	memset(buf + *len + total, 0, NLMSG_ALIGN(total) - total);
	*len += NLMSG_ALIGN(total);
	return true;
}

static void run_framed(struct fuzz_in *in)
{
	static uint8_t buf[BUF_MAX];
	struct readers r = { 0 };
	size_t len = 0;

	while (in->left) {
		uint8_t ctl = fuzz_u8(in);
		size_t want = fuzz_u16(in), plen;
		const uint8_t *payload = fuzz_take(in, want, &plen);

		if (!put_record(buf, &len, ctl, payload, plen))
			break;
		if (ctl & 0x80) {
			feed_copy(&r, buf, len);
			each_message(buf, len);
			len = 0;
		}
	}
	if (len) {
		feed_copy(&r, buf, len);
		each_message(buf, len);
	}
	wgdev_free(r.dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		fuzz_in_init(&in, data + 1, size - 1);
		run_framed(&in);
	} else {
		run_raw(data + 1, size - 1);
	}
	return 0;
}
