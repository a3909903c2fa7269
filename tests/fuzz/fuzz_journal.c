// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * The lease journal reader, journal_parse(), over a file image in memory.
 *
 * Byte 0: bit 0 set makes the harness write correct checksums into the
 * header and every whole record before parsing, so that the fuzzer gets
 * past BLAKE2b and into the field checks; the other seven bits, when not
 * zero, are the record after which the callback stops the walk. The rest
 * is the image.
 */

#include <errno.h>
#include <sodium.h>

#include "../../server/journal.h"
#include "fuzz-util.h"

/* Byte offsets from docs/journal.md. */
#define HDR_SUM_OFF 24
#define HDR_SUM_LEN 8
#define REC_BODY_LEN 64
#define REC_SUM_LEN 16
#define REC_IP4_OFF 12
#define REC_IP6_OFF 16
#define STOP_VALUE 77

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

struct walk {
	const uint8_t *image;
	size_t len;
	size_t records;
	size_t stop_after;   /* 0: never stop */
};

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; ++i) {
		if (p[i])
			return false;
	}
	return true;
}

static bool record_same(const struct journal_record *a, const struct journal_record *b)
{
	return a->type == b->type && a->flags == b->flags && a->start == b->start &&
	       a->leasetime == b->leasetime &&
	       !memcmp(&a->ip4, &b->ip4, sizeof(a->ip4)) &&
	       !memcmp(&a->ip6, &b->ip6, sizeof(a->ip6)) &&
	       !memcmp(a->pubkey, b->pubkey, sizeof(a->pubkey));
}

static int reparse_cb(const struct journal_record *r, void *ctx)
{
	*(struct journal_record *)ctx = *r;
	return 0;
}

/* The record, written back and read again, must come back unchanged. */
static void round_trip(const struct journal_record *r, const uint8_t *orig)
{
	uint8_t image[JOURNAL_HEADER_SIZE + JOURNAL_RECORD_SIZE];
	struct journal_record back;
	size_t valid;

	journal_encode_header(image);
	journal_encode(r, image + JOURNAL_HEADER_SIZE);
	memset(&back, 0, sizeof(back));
	FUZZ_CHECK(journal_parse(image, sizeof(image), reparse_cb, &back, &valid) == 0);
	FUZZ_CHECK(valid == sizeof(image));
	FUZZ_CHECK(record_same(r, &back));

	/* Where the original left an absent family's field zero, as the
	 * writer does, the encoding is byte for byte the original. */
	if ((r->flags & JREC_F_IP4 || all_zero(orig + REC_IP4_OFF, 4)) &&
	    (r->flags & JREC_F_IP6 || all_zero(orig + REC_IP6_OFF, 16)))
		FUZZ_CHECK(!memcmp(image + JOURNAL_HEADER_SIZE, orig, JOURNAL_RECORD_SIZE));
}

static int walk_cb(const struct journal_record *r, void *ctx)
{
	struct walk *w = ctx;
	size_t off = JOURNAL_HEADER_SIZE + w->records * JOURNAL_RECORD_SIZE;
	static const uint8_t zero[16];

	FUZZ_CHECK(off + JOURNAL_RECORD_SIZE <= w->len);
	FUZZ_CHECK(r->type == JREC_GRANT || r->type == JREC_RELEASE);
	FUZZ_CHECK(!(r->flags & ~(JREC_F_IP4 | JREC_F_IP6 | JREC_F_QUARANTINE)));
	if (!(r->flags & JREC_F_IP4))
		FUZZ_CHECK(!memcmp(&r->ip4, zero, sizeof(r->ip4)));
	if (!(r->flags & JREC_F_IP6))
		FUZZ_CHECK(!memcmp(&r->ip6, zero, sizeof(r->ip6)));
	round_trip(r, w->image + off);

	if (++w->records == w->stop_after)
		return STOP_VALUE;
	return 0;
}

static void fix_checksums(uint8_t *p, size_t len)
{
	if (len < JOURNAL_HEADER_SIZE)
		return;
	crypto_generichash(p + HDR_SUM_OFF, HDR_SUM_LEN, p, HDR_SUM_OFF, NULL, 0);
	for (size_t off = JOURNAL_HEADER_SIZE; len - off >= JOURNAL_RECORD_SIZE;
	     off += JOURNAL_RECORD_SIZE)
		crypto_generichash(p + off + REC_BODY_LEN, REC_SUM_LEN, p + off,
				   REC_BODY_LEN, NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct walk w = { 0 };
	size_t valid = (size_t)-1;
	uint8_t *image;
	int ret;

	if (size < 1)
		return 0;
	w.stop_after = data[0] >> 1;
	w.len = size - 1;
	image = fuzz_dup(data + 1, w.len);
	if (data[0] & 1)
		fix_checksums(image, w.len);
	w.image = image;

	ret = journal_parse(image, w.len, walk_cb, &w, &valid);
	if (ret == STOP_VALUE) {
		FUZZ_CHECK(w.records == w.stop_after);
		FUZZ_CHECK(valid == JOURNAL_HEADER_SIZE + w.records * JOURNAL_RECORD_SIZE);
	} else if (ret == 0) {
		FUZZ_CHECK(valid == JOURNAL_HEADER_SIZE + w.records * JOURNAL_RECORD_SIZE);
		FUZZ_CHECK(valid <= w.len);
	} else {
		FUZZ_CHECK(ret == -EBADMSG || ret == -EPROTONOSUPPORT);
		FUZZ_CHECK(w.records == 0 && valid == 0);
	}

	/* Without a callback the walk covers at least as much. */
	if (ret == 0 || ret == STOP_VALUE) {
		size_t all;

		FUZZ_CHECK(journal_parse(image, w.len, NULL, NULL, &all) == 0);
		FUZZ_CHECK(all >= valid);
	}
	free(image);
	return 0;
}
