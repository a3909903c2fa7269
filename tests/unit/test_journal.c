// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "../../server/journal.h"

#define IFNAME "wg0"

/*
 * One directory for the run, removed by an unchecked teardown, which runs
 * in the parent even when a test fails; a fresh one inside it per test.
 */
static char base[64];
static char dir[96];
static char path[128], tmp_path[128];

static void remove_tree(const char *d)
{
	char sub[512];
	struct dirent *e;
	DIR *dp = opendir(d);

	if (!dp)
		return;
	while ((e = readdir(dp))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd(dp), e->d_name, 0) && errno == EISDIR &&
		    snprintf(sub, sizeof(sub), "%s/%s", d, e->d_name) < (int)sizeof(sub))
			remove_tree(sub);
	}
	closedir(dp);
	rmdir(d);
}

static void setup_base(void)
{
	strcpy(base, "/tmp/wgd-journal-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
}

static void teardown_base(void)
{
	remove_tree(base);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/t-XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/" IFNAME ".leases", dir);
	snprintf(tmp_path, sizeof(tmp_path), "%s/" IFNAME ".leases.tmp", dir);
}

static void teardown(void)
{
	remove_tree(dir);
}

/* ---- helpers ---- */

struct collected {
	struct journal_record *r;
	size_t n, cap;
	size_t stop_at;      /* 1-based record at which to stop the walk, or 0 */
	int stop_ret;
};

static int collect(const struct journal_record *r, void *ctx)
{
	struct collected *c = ctx;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->r = realloc(c->r, c->cap * sizeof(*c->r));
		ck_assert_ptr_nonnull(c->r);
	}
	c->r[c->n++] = *r;
	if (c->stop_at && c->n == c->stop_at)
		return c->stop_ret;
	return 0;
}

static void collected_reset(struct collected *c)
{
	free(c->r);
	memset(c, 0, sizeof(*c));
}

/* A varied record: both types, each family alone and together, quarantine. */
static struct journal_record make_record(unsigned n)
{
	struct journal_record r;

	memset(&r, 0, sizeof(r));
	r.type = n % 4 == 3 ? JREC_RELEASE : JREC_GRANT;
	r.flags = (uint8_t)(n % 3 + 1);
	if (r.type == JREC_RELEASE && n % 8 == 7)
		r.flags |= JREC_F_QUARANTINE;
	r.start = 1700000000u + n;
	r.leasetime = 3600u + n * 7;
	if (r.flags & JREC_F_IP4)
		r.ip4.s_addr = htonl(0x0a000000u | (n & 0xffffff));
	if (r.flags & JREC_F_IP6) {
		r.ip6.s6_addr[0] = 0xfd;
		r.ip6.s6_addr[14] = (uint8_t)(n >> 8);
		r.ip6.s6_addr[15] = (uint8_t)n;
	}
	for (size_t i = 0; i < WG_KEY_LEN; i++)
		r.pubkey[i] = (uint8_t)(n * 31 + i);
	return r;
}

static void assert_record_eq(const struct journal_record *a, const struct journal_record *b)
{
	ck_assert_uint_eq(a->type, b->type);
	ck_assert_uint_eq(a->flags, b->flags);
	ck_assert_uint_eq(a->start, b->start);
	ck_assert_uint_eq(a->leasetime, b->leasetime);
	ck_assert_mem_eq(&a->ip4, &b->ip4, sizeof(a->ip4));
	ck_assert_mem_eq(&a->ip6, &b->ip6, sizeof(a->ip6));
	ck_assert_mem_eq(a->pubkey, b->pubkey, WG_KEY_LEN);
}

static void write_file(const char *p, const void *buf, size_t len)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static uint8_t *read_file(const char *p, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(p, O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static off_t file_size(const char *p)
{
	struct stat st;

	ck_assert_int_eq(stat(p, &st), 0);
	return st.st_size;
}

/* The file holds len bytes of journal, then only zeros written ahead. */
static void assert_zeros_after(const char *p, off_t len)
{
	off_t size = file_size(p);
	uint8_t *buf;
	int fd;

	ck_assert_int_ge(size, len);
	buf = malloc((size_t)(size - len) + 1);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, (size_t)(size - len), len), size - len);
	ck_assert(sodium_is_zero(buf, (size_t)(size - len)));
	close(fd);
	free(buf);
}

static bool exists(const char *p)
{
	return access(p, F_OK) == 0;
}

/* A journal image: the header and records 0..n-1 of make_record(). */
static uint8_t *make_image(size_t n, size_t *len)
{
	uint8_t *img;

	*len = JOURNAL_HEADER_SIZE + n * JOURNAL_RECORD_SIZE;
	img = malloc(*len);
	ck_assert_ptr_nonnull(img);
	journal_encode_header(img);
	for (size_t i = 0; i < n; i++) {
		struct journal_record r = make_record((unsigned)i);

		journal_encode(&r, img + JOURNAL_HEADER_SIZE + i * JOURNAL_RECORD_SIZE);
	}
	return img;
}

static void open_ok(struct journal **j, struct collected *c, struct journal_stats *st)
{
	ck_assert_int_eq(journal_open(j, dir, IFNAME, collect, c, st), 0);
	ck_assert_ptr_nonnull(*j);
}

/* ---- encoding ---- */

START_TEST(encode_record_bytes)
{
	/* Written out by hand from the layout in docs/journal.md. */
	static const uint8_t body[64] = {
		0x01, 0x03, 0x00, 0x00,                         /* GRANT, IP4|IP6, reserved */
		0xa1, 0xb2, 0xc3, 0x64,                         /* start 0x64c3b2a1 */
		0x10, 0x0e, 0x00, 0x00,                         /* leasetime 3600 */
		0x0a, 0x00, 0x00, 0x07,                         /* 10.0.0.7 */
		0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* fd00::1:2 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02,
		0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, /* pubkey */
		0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
		0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57,
		0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
	};
	uint8_t sum[16], out[JOURNAL_RECORD_SIZE];
	struct journal_record r;

	memset(&r, 0, sizeof(r));
	r.type = JREC_GRANT;
	r.flags = JREC_F_IP4 | JREC_F_IP6;
	r.start = 0x64c3b2a1;
	r.leasetime = 3600;
	ck_assert_int_eq(inet_pton(AF_INET, "10.0.0.7", &r.ip4), 1);
	ck_assert_int_eq(inet_pton(AF_INET6, "fd00::1:2", &r.ip6), 1);
	for (size_t i = 0; i < WG_KEY_LEN; i++)
		r.pubkey[i] = (uint8_t)(0x40 + i);

	crypto_generichash(sum, sizeof(sum), body, sizeof(body), NULL, 0);
	journal_encode(&r, out);
	ck_assert_mem_eq(out, body, 64);
	ck_assert_mem_eq(out + 64, sum, 16);
}
END_TEST

START_TEST(encode_absent_family_is_zero)
{
	uint8_t out[JOURNAL_RECORD_SIZE], zero[16] = { 0 };
	struct journal_record r = make_record(1), back;
	size_t valid;
	uint8_t img[JOURNAL_HEADER_SIZE + JOURNAL_RECORD_SIZE];
	struct collected c = { 0 };

	/* make_record(1) is IPv6 only; leave junk in the IPv4 field. */
	ck_assert_uint_eq(r.flags, JREC_F_IP6);
	r.ip4.s_addr = 0xffffffff;
	journal_encode(&r, out);
	ck_assert_mem_eq(out + 12, zero, 4);

	r.flags = JREC_F_IP4;
	r.ip4.s_addr = htonl(0x0a000001);
	journal_encode(&r, out);
	ck_assert_mem_eq(out + 16, zero, 16);

	journal_encode_header(img);
	memcpy(img + JOURNAL_HEADER_SIZE, out, sizeof(out));
	ck_assert_int_eq(journal_parse(img, sizeof(img), collect, &c, &valid), 0);
	ck_assert_uint_eq(c.n, 1);
	back = c.r[0];
	ck_assert_uint_eq(back.ip4.s_addr, htonl(0x0a000001));
	ck_assert_mem_eq(&back.ip6, zero, 16);
	collected_reset(&c);
}
END_TEST

START_TEST(encode_header_bytes)
{
	static const uint8_t first[24] = {
		'w', 'g', 'd', 'l', 'e', 'a', 's', 'e',
		0x01, 0x00, 0x00, 0x00,                         /* version 1 */
		0x50, 0x00, 0x00, 0x00,                         /* record size 80 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* reserved */
	};
	uint8_t sum[8], out[JOURNAL_HEADER_SIZE];

	crypto_generichash(sum, sizeof(sum), first, sizeof(first), NULL, 0);
	journal_encode_header(out);
	ck_assert_mem_eq(out, first, 24);
	ck_assert_mem_eq(out + 24, sum, 8);
}
END_TEST

/* ---- parsing from memory ---- */

START_TEST(parse_from_memory)
{
	struct collected c = { 0 };
	size_t len, valid;
	uint8_t *img = make_image(3, &len);

	for (size_t l = 0; l < JOURNAL_HEADER_SIZE; l++) {
		ck_assert_int_eq(journal_parse(img, l, collect, &c, &valid), -EBADMSG);
		ck_assert_uint_eq(valid, 0);
	}
	ck_assert_uint_eq(c.n, 0);

	ck_assert_int_eq(journal_parse(img, JOURNAL_HEADER_SIZE, collect, &c, &valid), 0);
	ck_assert_uint_eq(valid, JOURNAL_HEADER_SIZE);
	ck_assert_uint_eq(c.n, 0);

	ck_assert_int_eq(journal_parse(img, len, NULL, NULL, &valid), 0);
	ck_assert_uint_eq(valid, len);

	/* The callback stops the walk; its value comes back. */
	c.stop_at = 2;
	c.stop_ret = 42;
	ck_assert_int_eq(journal_parse(img, len, collect, &c, &valid), 42);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_uint_eq(valid, JOURNAL_HEADER_SIZE + 2 * JOURNAL_RECORD_SIZE);
	for (size_t i = 0; i < 2; i++) {
		struct journal_record want = make_record((unsigned)i);

		assert_record_eq(&c.r[i], &want);
	}
	collected_reset(&c);
	free(img);
}
END_TEST

/* Sound checksums over values this version does not know stop the walk. */
START_TEST(parse_refuses_unknown_values)
{
	static const struct {
		size_t off;
		uint8_t val;
	} bad[] = {
		{ 0, 0 }, { 0, 3 }, { 0, 0xff },         /* type */
		{ 1, 0x08 }, { 1, 0x80 }, { 1, 0xf8 },   /* flags */
		{ 2, 1 }, { 3, 0x80 },                   /* reserved */
	};
	struct collected c = { 0 };
	size_t len, valid;
	uint8_t *img = make_image(3, &len);
	uint8_t *mid = img + JOURNAL_HEADER_SIZE + JOURNAL_RECORD_SIZE;
	struct journal_record r = make_record(0);
	struct journal *j;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *copy = malloc(len);

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, img, len);
		copy[mid - img + bad[i].off] = bad[i].val;
		crypto_generichash(copy + (mid - img) + 64, 16, copy + (mid - img), 64, NULL, 0);
		ck_assert_int_eq(journal_parse(copy, len, collect, &c, &valid), 0);
		ck_assert_uint_eq(c.n, 1);
		ck_assert_uint_eq(valid, JOURNAL_HEADER_SIZE + JOURNAL_RECORD_SIZE);
		c.n = 0;
		free(copy);
	}
	collected_reset(&c);
	free(img);

	/* Nor can they be written. */
	open_ok(&j, NULL, NULL);
	r.type = 3;
	ck_assert_int_eq(journal_append(j, &r), -EINVAL);
	r.type = JREC_GRANT;
	r.flags = 0x10;
	ck_assert_int_eq(journal_append(j, &r), -EINVAL);
	ck_assert_uint_eq(journal_pending(j), 0);
	journal_close(j);
}
END_TEST

/* ---- open, append, commit ---- */

/*
 * Commits overwrite zeros written ahead rather than grow the file; a tail
 * of zeros is free space, not damage; a record torn into it is damage.
 */
START_TEST(write_ahead)
{
	struct collected c = { 0 };
	struct journal_stats st;
	struct journal *j;
	struct journal_record r;
	off_t ahead, end;
	int fd;

	open_ok(&j, &c, &st);
	r = make_record(1);
	ck_assert_int_eq(journal_append(j, &r), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	ahead = file_size(path);
	ck_assert_int_ge(ahead, journal_size(j) + 64 * 1024);
	/* The next commits land inside what was written ahead. */
	for (unsigned i = 2; i < 50; i++) {
		r = make_record(i);
		ck_assert_int_eq(journal_append(j, &r), 0);
		ck_assert_int_eq(journal_commit(j), 0);
	}
	ck_assert_int_eq(file_size(path), ahead);
	end = journal_size(j);
	ck_assert_int_eq(end, JOURNAL_HEADER_SIZE + 49 * JOURNAL_RECORD_SIZE);
	assert_zeros_after(path, end);
	journal_close(j);

	/* Reopened: every record, nothing dropped, the zeros kept. */
	open_ok(&j, &c, &st);
	ck_assert_uint_eq(st.records, 49);
	ck_assert_uint_eq(st.dropped_bytes, 0);
	ck_assert_int_eq(journal_size(j), end);
	ck_assert_int_eq(file_size(path), ahead);
	journal_close(j);

	/* Half a record written into the zeros: cut, and the file with it. */
	fd = open(path, O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "torn", 4, end + 10), 4);
	close(fd);
	c.n = 0;
	open_ok(&j, &c, &st);
	ck_assert_uint_eq(st.records, 49);
	ck_assert_uint_eq(st.dropped_bytes, ahead - end);
	ck_assert_int_eq(file_size(path), end);
	/* And written ahead again by the next commit. */
	r = make_record(50);
	ck_assert_int_eq(journal_append(j, &r), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_int_gt(file_size(path), journal_size(j));
	assert_zeros_after(path, journal_size(j));
	journal_close(j);
	c.n = 0;
	open_ok(&j, &c, &st);
	ck_assert_uint_eq(st.records, 50);
	journal_close(j);
	collected_reset(&c);
}
END_TEST

START_TEST(round_trip)
{
	struct collected c = { 0 };
	struct journal_stats st;
	struct journal *j;
	const size_t n = 16;

	ck_assert(!exists(path));
	open_ok(&j, &c, &st);
	ck_assert_uint_eq(st.records, 0);
	ck_assert_uint_eq(st.dropped_bytes, 0);
	ck_assert_int_eq(journal_size(j), JOURNAL_HEADER_SIZE);
	ck_assert_int_eq(file_size(path), JOURNAL_HEADER_SIZE);
	ck_assert_str_eq(journal_path(j), path);

	for (size_t i = 0; i < n; i++) {
		struct journal_record r = make_record((unsigned)i);

		ck_assert_int_eq(journal_append(j, &r), 0);
		ck_assert_uint_eq(journal_pending(j), i + 1);
		/* Nothing reaches the file before the commit. */
		ck_assert_int_eq(file_size(path), JOURNAL_HEADER_SIZE);
	}
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_uint_eq(journal_pending(j), 0);
	ck_assert_int_eq(journal_size(j), JOURNAL_HEADER_SIZE + n * JOURNAL_RECORD_SIZE);
	/* Zeros written ahead, for the commits to come to overwrite. */
	ck_assert_int_gt(file_size(path), journal_size(j));
	assert_zeros_after(path, journal_size(j));
	journal_close(j);

	open_ok(&j, &c, &st);
	ck_assert_uint_eq(st.records, n);
	ck_assert_uint_eq(st.dropped_bytes, 0);
	ck_assert_uint_eq(c.n, n);
	for (size_t i = 0; i < n; i++) {
		struct journal_record want = make_record((unsigned)i);

		assert_record_eq(&c.r[i], &want);
	}
	/* Every combination of type and flags came through. */
	ck_assert_uint_eq(c.r[1].flags, JREC_F_IP6);
	ck_assert_uint_eq(c.r[2].flags, JREC_F_IP4 | JREC_F_IP6);
	ck_assert_uint_eq(c.r[3].type, JREC_RELEASE);
	ck_assert_uint_eq(c.r[7].flags, JREC_F_IP6 | JREC_F_QUARANTINE);

	/* Appends go on after what was there. */
	{
		struct journal_record r = make_record((unsigned)n);

		ck_assert_int_eq(journal_append(j, &r), 0);
		ck_assert_int_eq(journal_commit(j), 0);
	}
	journal_close(j);
	c.n = 0;
	open_ok(&j, &c, &st);
	ck_assert_uint_eq(st.records, n + 1);
	ck_assert_uint_eq(c.r[n].start, make_record((unsigned)n).start);
	journal_close(j);
	collected_reset(&c);
}
END_TEST

START_TEST(uncommitted_records_are_dropped_on_close)
{
	struct journal_record r = make_record(0);
	struct journal_stats st;
	struct journal *j;

	open_ok(&j, NULL, NULL);
	ck_assert_int_eq(journal_append(j, &r), 0);
	journal_close(j);
	open_ok(&j, NULL, &st);
	ck_assert_uint_eq(st.records, 0);
	journal_close(j);
	journal_close(NULL);
}
END_TEST

/* Cuts the last of 3 records at every length short of complete. */
START_TEST(torn_tail_every_offset)
{
	const size_t keep = JOURNAL_HEADER_SIZE + 2 * JOURNAL_RECORD_SIZE;
	size_t len;
	uint8_t *img = make_image(3, &len);

	for (size_t l = keep; l < len; l++) {
		struct collected c = { 0 };
		struct journal_record extra = make_record(100);
		struct journal_stats st;
		struct journal *j;

		write_file(path, img, l);
		open_ok(&j, &c, &st);
		ck_assert_uint_eq(st.records, 2);
		ck_assert_uint_eq(st.dropped_bytes, l - keep);
		ck_assert_uint_eq(c.n, 2);
		for (size_t i = 0; i < 2; i++) {
			struct journal_record want = make_record((unsigned)i);

			assert_record_eq(&c.r[i], &want);
		}
		ck_assert_int_eq(journal_size(j), keep);
		ck_assert_int_eq(file_size(path), keep);

		/* The next record follows the valid ones directly. */
		ck_assert_int_eq(journal_append(j, &extra), 0);
		ck_assert_int_eq(journal_commit(j), 0);
		journal_close(j);
		c.n = 0;
		open_ok(&j, &c, &st);
		ck_assert_uint_eq(st.records, 3);
		ck_assert_uint_eq(st.dropped_bytes, 0);
		assert_record_eq(&c.r[2], &extra);
		journal_close(j);
		collected_reset(&c);
	}
	free(img);
}
END_TEST

/* Flips each byte of the middle record of 5, body and checksum alike. */
START_TEST(flipped_byte_in_middle_record)
{
	const size_t mid = JOURNAL_HEADER_SIZE + 2 * JOURNAL_RECORD_SIZE;
	size_t len;
	uint8_t *img = make_image(5, &len);

	for (size_t b = 0; b < JOURNAL_RECORD_SIZE; b++) {
		struct collected c = { 0 };
		struct journal_stats st;
		struct journal *j;
		size_t got_len;
		uint8_t *got;

		img[mid + b] ^= 0x20;
		write_file(path, img, len);
		img[mid + b] ^= 0x20;

		open_ok(&j, &c, &st);
		ck_assert_uint_eq(st.records, 2);
		ck_assert_uint_eq(st.dropped_bytes, len - mid);
		ck_assert_uint_eq(c.n, 2);
		ck_assert_int_eq(journal_size(j), mid);
		journal_close(j);

		got = read_file(path, &got_len);
		ck_assert_uint_eq(got_len, mid);
		ck_assert_mem_eq(got, img, mid);
		free(got);
		collected_reset(&c);
	}
	free(img);
}
END_TEST

/* A failing callback fails the open, and nothing is cut. */
START_TEST(callback_error_fails_open)
{
	struct collected c = { .stop_at = 2, .stop_ret = -ENOMEM };
	struct journal *j = (struct journal *)&c;
	struct journal_stats st;
	size_t len, got_len;
	uint8_t *img = make_image(3, &len), *got;

	write_file(path, img, len - 5);
	ck_assert_int_eq(journal_open(&j, dir, IFNAME, collect, &c, &st), -ENOMEM);
	ck_assert_ptr_null(j);
	got = read_file(path, &got_len);
	ck_assert_uint_eq(got_len, len - 5);
	ck_assert_mem_eq(got, img, got_len);
	free(got);
	free(img);
	collected_reset(&c);
}
END_TEST

/* ---- headers that are refused ---- */

START_TEST(refused_headers_are_left_untouched)
{
	enum { GARBAGE, MAGIC, CHECKSUM, VERSION2, RECSIZE, RESERVED, SHORT, NCASES };
	static const int want[NCASES] = {
		[GARBAGE] = -EBADMSG, [MAGIC] = -EBADMSG, [CHECKSUM] = -EBADMSG,
		[VERSION2] = -EPROTONOSUPPORT, [RECSIZE] = -EPROTONOSUPPORT,
		[RESERVED] = -EPROTONOSUPPORT, [SHORT] = -EBADMSG,
	};

	for (int k = 0; k < NCASES; k++) {
		struct collected c = { 0 };
		struct journal *j = (struct journal *)&c;
		struct journal_stats st;
		size_t len, got_len;
		uint8_t *img = make_image(2, &len), *got;
		bool resum = true;

		switch (k) {
		case GARBAGE:
			randombytes_buf(img, JOURNAL_HEADER_SIZE);
			resum = false;
			break;
		case MAGIC:
			memcpy(img, "wgdLEASE", 8);
			break;
		case CHECKSUM:
			img[24] ^= 0x01;
			resum = false;
			break;
		case VERSION2:
			img[8] = 2;
			break;
		case RECSIZE:
			img[12] = 96;
			break;
		case RESERVED:
			img[20] = 1;
			break;
		case SHORT:
			len = JOURNAL_HEADER_SIZE - 1;
			resum = false;
			break;
		}
		if (resum)
			crypto_generichash(img + 24, 8, img, 24, NULL, 0);
		/* A torn tail too: it must not be cut either. */
		if (k != SHORT)
			len -= 3;
		write_file(path, img, len);

		ck_assert_int_eq(journal_open(&j, dir, IFNAME, collect, &c, &st), want[k]);
		ck_assert_ptr_null(j);
		ck_assert_uint_eq(c.n, 0);
		got = read_file(path, &got_len);
		ck_assert_uint_eq(got_len, len);
		ck_assert_mem_eq(got, img, len);
		ck_assert(!exists(tmp_path));
		free(got);
		free(img);
	}
}
END_TEST

START_TEST(empty_file_is_new)
{
	uint8_t hdr[JOURNAL_HEADER_SIZE], *got;
	struct journal_stats st;
	struct journal *j;
	size_t len;

	write_file(path, "", 0);
	open_ok(&j, NULL, &st);
	ck_assert_uint_eq(st.records, 0);
	ck_assert_uint_eq(st.dropped_bytes, 0);
	ck_assert_int_eq(journal_size(j), JOURNAL_HEADER_SIZE);
	journal_close(j);

	journal_encode_header(hdr);
	got = read_file(path, &len);
	ck_assert_uint_eq(len, JOURNAL_HEADER_SIZE);
	ck_assert_mem_eq(got, hdr, len);
	free(got);
	ck_assert_uint_eq(file_size(path), JOURNAL_HEADER_SIZE);

	/* A zero-length image is no journal to the parser. */
	ck_assert_int_eq(journal_parse(hdr, 0, NULL, NULL, &len), -EBADMSG);
}
END_TEST

START_TEST(new_file_mode_and_missing_dir)
{
	char missing[128];
	struct journal *j;
	struct stat st;

	open_ok(&j, NULL, NULL);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	journal_close(j);

	snprintf(missing, sizeof(missing), "%s/absent", dir);
	j = (struct journal *)missing;
	ck_assert_int_eq(journal_open(&j, missing, IFNAME, NULL, NULL, NULL), -ENOENT);
	ck_assert_ptr_null(j);
	ck_assert(!exists(missing));
	ck_assert_int_eq(journal_open(&j, dir, "a/b", NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(journal_open(&j, dir, "", NULL, NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(second_open_is_busy)
{
	struct journal *a, *b;

	open_ok(&a, NULL, NULL);
	ck_assert_int_eq(journal_open(&b, dir, IFNAME, NULL, NULL, NULL), -EBUSY);
	ck_assert_ptr_null(b);
	journal_close(a);
	open_ok(&b, NULL, NULL);
	journal_close(b);
}
END_TEST

START_TEST(stale_tmp_is_removed)
{
	struct journal *j;

	open_ok(&j, NULL, NULL);
	journal_close(j);
	write_file(tmp_path, "half a compaction", 17);
	open_ok(&j, NULL, NULL);
	ck_assert(!exists(tmp_path));
	journal_close(j);
}
END_TEST

/* N appends and one commit: one write, one fdatasync. */
START_TEST(group_commit_counts_fsyncs)
{
	struct journal *j;
	uint64_t before;

	open_ok(&j, NULL, NULL);
	ck_assert_uint_eq(journal_fsyncs(j), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_uint_eq(journal_fsyncs(j), 0);

	before = journal_fsyncs(j);
	for (unsigned i = 0; i < 64; i++) {
		struct journal_record r = make_record(i);

		ck_assert_int_eq(journal_append(j, &r), 0);
	}
	ck_assert_uint_eq(journal_fsyncs(j), before);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_uint_eq(journal_fsyncs(j), before + 1);
	ck_assert_uint_eq(journal_pending(j), 0);

	for (unsigned i = 0; i < 3; i++) {
		struct journal_record r = make_record(i);

		ck_assert_int_eq(journal_append(j, &r), 0);
		ck_assert_int_eq(journal_commit(j), 0);
	}
	ck_assert_uint_eq(journal_fsyncs(j), before + 4);
	ck_assert_int_eq(journal_size(j), JOURNAL_HEADER_SIZE + 67 * JOURNAL_RECORD_SIZE);
	journal_close(j);
}
END_TEST

/* ---- failures of writes ---- */

static struct rlimit saved_fsize;

/*
 * The kernel refuses writes past RLIMIT_FSIZE with EFBIG: a full disk on
 * demand, for this process alone. The limit applies to Check's own message
 * file too, so no ck_assert may run until unlimit_file_size().
 */
static void limit_file_size(off_t limit)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
	rl = saved_fsize;
	rl.rlim_cur = (rlim_t)limit;
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl))
		ck_abort_msg("setrlimit: %s", strerror(errno));
}

static void unlimit_file_size(void)
{
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
	signal(SIGXFSZ, SIG_DFL);
}

START_TEST(commit_failure_cuts_back)
{
	struct collected c = { 0 };
	struct journal_record r;
	struct journal_stats st;
	struct journal *j;
	off_t committed;
	int ret;

	open_ok(&j, NULL, NULL);
	r = make_record(0);
	ck_assert_int_eq(journal_append(j, &r), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	committed = journal_size(j);

	/* Room for one record and a half: the write is cut short, then fails. */
	for (unsigned i = 1; i <= 3; i++) {
		r = make_record(i);
		ck_assert_int_eq(journal_append(j, &r), 0);
	}
	limit_file_size(committed + JOURNAL_RECORD_SIZE + JOURNAL_RECORD_SIZE / 2);
	ret = journal_commit(j);
	unlimit_file_size();
	ck_assert_int_eq(ret, -EFBIG);
	ck_assert_uint_eq(journal_pending(j), 0);
	ck_assert_int_eq(journal_size(j), committed);
	ck_assert_int_eq(file_size(path), committed);

	/* The journal carries on from its committed length. */
	r = make_record(9);
	ck_assert_int_eq(journal_append(j, &r), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	journal_close(j);

	open_ok(&j, &c, &st);
	ck_assert_uint_eq(st.records, 2);
	ck_assert_uint_eq(st.dropped_bytes, 0);
	ck_assert_uint_eq(c.r[0].start, make_record(0).start);
	assert_record_eq(&c.r[1], &r);
	journal_close(j);
	collected_reset(&c);
}
END_TEST

/* ---- compaction ---- */

static void fill(struct journal *j, unsigned first, unsigned count, unsigned peers,
		 unsigned batch, struct journal_record *latest)
{
	for (unsigned i = first; i < first + count; i++) {
		struct journal_record r = make_record(i);

		r.type = JREC_GRANT;
		r.flags &= JREC_F_IP4 | JREC_F_IP6;
		memset(r.pubkey, 0, WG_KEY_LEN);
		r.pubkey[0] = (uint8_t)(i % peers);
		r.pubkey[31] = 0x40;
		ck_assert_int_eq(journal_append(j, &r), 0);
		if (latest)
			latest[i % peers] = r;
		if (journal_pending(j) == batch)
			ck_assert_int_eq(journal_commit(j), 0);
	}
	ck_assert_int_eq(journal_commit(j), 0);
}

START_TEST(compaction_keeps_exactly_the_live_records)
{
	enum { PEERS = 10, RECORDS = 15000 };
	struct journal_record live[PEERS + 2];
	struct collected c = { 0 };
	struct journal_stats st;
	struct journal *j;
	off_t before;
	size_t boundary;

	open_ok(&j, NULL, NULL);
	ck_assert(!journal_wants_compaction(j, 0));
	fill(j, 0, RECORDS, PEERS, 500, live);
	before = journal_size(j);
	ck_assert_int_eq(before, JOURNAL_HEADER_SIZE + RECORDS * JOURNAL_RECORD_SIZE);
	ck_assert_int_gt(before, 1024 * 1024);

	/* Wanted exactly while the file exceeds 4 x (header + live records). */
	boundary = ((size_t)before / 4 - JOURNAL_HEADER_SIZE) / JOURNAL_RECORD_SIZE;
	if (4 * (JOURNAL_HEADER_SIZE + boundary * JOURNAL_RECORD_SIZE) == (size_t)before)
		boundary--;
	ck_assert(journal_wants_compaction(j, PEERS));
	ck_assert(journal_wants_compaction(j, boundary));
	ck_assert(!journal_wants_compaction(j, boundary + 1));

	/* A quarantine record, as the server writes them: no key. */
	memset(&live[PEERS], 0, sizeof(live[PEERS]));
	live[PEERS].type = JREC_RELEASE;
	live[PEERS].flags = JREC_F_QUARANTINE | JREC_F_IP4;
	live[PEERS].start = 1700000999;
	live[PEERS].leasetime = 600;
	live[PEERS].ip4.s_addr = htonl(0x0a0000fe);

	ck_assert_int_eq(journal_compact_begin(j), 0);
	ck_assert(exists(tmp_path));
	for (size_t i = 0; i <= PEERS; i++)
		ck_assert_int_eq(journal_compact_add(j, &live[i]), 0);
	ck_assert_int_eq(journal_compact_end(j), 0);
	ck_assert(!exists(tmp_path));
	ck_assert_int_eq(journal_size(j), JOURNAL_HEADER_SIZE + (PEERS + 1) * JOURNAL_RECORD_SIZE);
	ck_assert_int_eq(file_size(path), journal_size(j));
	ck_assert(!journal_wants_compaction(j, PEERS));

	/* Appends go to the new file. */
	live[PEERS + 1] = make_record(77);
	ck_assert_int_eq(journal_append(j, &live[PEERS + 1]), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	journal_close(j);

	open_ok(&j, &c, &st);
	ck_assert_uint_eq(st.records, PEERS + 2);
	ck_assert_uint_eq(st.dropped_bytes, 0);
	ck_assert_uint_eq(c.n, PEERS + 2);
	for (size_t i = 0; i < PEERS + 2; i++)
		assert_record_eq(&c.r[i], &live[i]);
	journal_close(j);
	ck_assert(!exists(tmp_path));
	collected_reset(&c);
}
END_TEST

/* A compaction large enough to need several buffered writes. */
START_TEST(compaction_of_many_live_records)
{
	enum { PEERS = 3000 };
	struct journal_record *live = calloc(PEERS, sizeof(*live));
	struct collected c = { 0 };
	struct journal_stats st;
	struct journal *j;

	ck_assert_ptr_nonnull(live);
	open_ok(&j, NULL, NULL);
	fill(j, 0, 2 * PEERS, PEERS, 1000, live);
	ck_assert_int_eq(journal_compact_begin(j), 0);
	for (size_t i = 0; i < PEERS; i++)
		ck_assert_int_eq(journal_compact_add(j, &live[i]), 0);
	ck_assert_int_eq(journal_compact_end(j), 0);
	journal_close(j);

	open_ok(&j, &c, &st);
	ck_assert_uint_eq(st.records, PEERS);
	for (size_t i = 0; i < PEERS; i++)
		assert_record_eq(&c.r[i], &live[i]);
	ck_assert_int_eq(file_size(path), JOURNAL_HEADER_SIZE + PEERS * JOURNAL_RECORD_SIZE);
	journal_close(j);
	collected_reset(&c);
	free(live);
}
END_TEST

/* Reopens the journal and checks that it holds records 0..n-1 of fill(). */
static void assert_holds(size_t n)
{
	struct collected c = { 0 };
	struct journal_stats st;
	struct journal *j;

	open_ok(&j, &c, &st);
	ck_assert_uint_eq(st.records, n);
	ck_assert_uint_eq(st.dropped_bytes, 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(c.r[i].start, make_record((unsigned)i).start);
	journal_close(j);
	collected_reset(&c);
}

START_TEST(compaction_failures_keep_the_old_journal)
{
	struct journal_record r;
	struct journal *j;
	size_t n = 20;

	open_ok(&j, NULL, NULL);
	fill(j, 0, (unsigned)n, 5, 100, NULL);

	/* Not with records pending, nor twice. */
	r = make_record((unsigned)n);
	ck_assert_int_eq(journal_append(j, &r), 0);
	ck_assert_int_eq(journal_compact_begin(j), -EBUSY);
	ck_assert(!exists(tmp_path));
	ck_assert_int_eq(journal_commit(j), 0);
	n++;
	ck_assert_int_eq(journal_compact_begin(j), 0);
	ck_assert_int_eq(journal_compact_begin(j), -EBUSY);

	/* Aborted. */
	ck_assert_int_eq(journal_compact_add(j, &r), 0);
	journal_compact_abort(j);
	ck_assert(!exists(tmp_path));
	journal_compact_abort(j);
	ck_assert_int_eq(journal_compact_add(j, &r), -EINVAL);
	ck_assert_int_eq(journal_compact_end(j), -EINVAL);

	/* The rename fails: the temporary file went away. */
	ck_assert_int_eq(journal_compact_begin(j), 0);
	ck_assert_int_eq(journal_compact_add(j, &r), 0);
	ck_assert_int_eq(unlink(tmp_path), 0);
	ck_assert_int_eq(journal_compact_end(j), -ENOENT);
	ck_assert(!exists(tmp_path));

	/* A commit to the old file after begin makes the snapshot stale. */
	ck_assert_int_eq(journal_compact_begin(j), 0);
	ck_assert_int_eq(journal_compact_add(j, &r), 0);
	r = make_record((unsigned)n++);
	ck_assert_int_eq(journal_append(j, &r), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_int_eq(journal_compact_end(j), -ESTALE);
	ck_assert(!exists(tmp_path));

	/* A record the reader would refuse ends the compaction. */
	r.type = 9;
	ck_assert_int_eq(journal_compact_begin(j), 0);
	ck_assert_int_eq(journal_compact_add(j, &r), -EINVAL);
	ck_assert(!exists(tmp_path));
	r = make_record(0);
	ck_assert_int_eq(journal_compact_add(j, &r), -EINVAL);
	ck_assert_int_eq(journal_compact_end(j), -EINVAL);
	journal_compact_abort(j);

	/* The disk fills up while the snapshot is written. */
	ck_assert_int_eq(journal_compact_begin(j), 0);
	{
		int add_ret = 0, again, end;
		unsigned i;
		bool tmp_left;

		limit_file_size(journal_size(j) + 100 * JOURNAL_RECORD_SIZE);
		for (i = 0; i < 10000 && !add_ret; i++)
			add_ret = journal_compact_add(j, &r);
		tmp_left = exists(tmp_path);
		again = journal_compact_add(j, &r);
		end = journal_compact_end(j);
		journal_compact_abort(j);
		unlimit_file_size();
		ck_assert_int_eq(add_ret, -EFBIG);
		ck_assert_uint_lt(i, 10000);
		ck_assert(!tmp_left);
		ck_assert_int_eq(again, -EFBIG);
		ck_assert_int_eq(end, -EFBIG);
	}

	/* Through all of it, the journal went on working. */
	r = make_record((unsigned)n++);
	ck_assert_int_eq(journal_append(j, &r), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_int_eq(journal_size(j), JOURNAL_HEADER_SIZE + n * JOURNAL_RECORD_SIZE);
	assert_zeros_after(path, journal_size(j));
	journal_close(j);
	ck_assert(!exists(tmp_path));
	assert_holds(n);
}
END_TEST

/*
 * Neither the journal nor its temporary file is reached through a link: a
 * symbolic link at either name is not followed, and a journal with another
 * name (a hard link to some file elsewhere) is refused. The file a link
 * names is left as it was.
 */
START_TEST(links_are_not_followed)
{
	char victim[160];
	struct journal_record r = make_record(1);
	struct journal *j;
	size_t len, got_len;
	uint8_t *img = make_image(2, &len), *got;
	struct stat st;

	snprintf(victim, sizeof(victim), "%s/victim", dir);
	write_file(victim, img, len);
	ck_assert_int_eq(symlink(victim, path), 0);
	ck_assert_int_eq(journal_open(&j, dir, IFNAME, NULL, NULL, NULL), -ELOOP);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(link(victim, path), 0);
	ck_assert_int_eq(journal_open(&j, dir, IFNAME, NULL, NULL, NULL), -EMLINK);
	ck_assert_int_eq(unlink(path), 0);

	/* Creating a journal goes by way of the temporary file. */
	ck_assert_int_eq(symlink(victim, tmp_path), 0);
	open_ok(&j, NULL, NULL);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	/* So does a compaction. */
	ck_assert_int_eq(symlink(victim, tmp_path), 0);
	ck_assert_int_eq(journal_compact_begin(j), 0);
	ck_assert_int_eq(journal_compact_add(j, &r), 0);
	ck_assert_int_eq(journal_compact_end(j), 0);
	journal_close(j);
	ck_assert(!exists(tmp_path));

	got = read_file(victim, &got_len);
	ck_assert_uint_eq(got_len, len);
	ck_assert_mem_eq(got, img, len);
	free(got);
	free(img);
}
END_TEST

/* A compaction in progress is dropped with the journal. */
START_TEST(close_during_compaction)
{
	struct journal_record r = make_record(1);
	struct journal *j;

	open_ok(&j, NULL, NULL);
	ck_assert_int_eq(journal_compact_begin(j), 0);
	ck_assert_int_eq(journal_compact_add(j, &r), 0);
	journal_close(j);
	ck_assert(!exists(tmp_path));
	ck_assert_int_eq(file_size(path), JOURNAL_HEADER_SIZE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("journal");
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	tcase_add_unchecked_fixture(tc, setup_base, teardown_base);
	tcase_add_checked_fixture(tc, setup, teardown);
	/* Every case fsyncs a real file system, some of them hundreds of times. */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, encode_record_bytes);
	tcase_add_test(tc, write_ahead);
	tcase_add_test(tc, encode_absent_family_is_zero);
	tcase_add_test(tc, encode_header_bytes);
	tcase_add_test(tc, parse_from_memory);
	tcase_add_test(tc, parse_refuses_unknown_values);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, uncommitted_records_are_dropped_on_close);
	tcase_add_test(tc, torn_tail_every_offset);
	tcase_add_test(tc, flipped_byte_in_middle_record);
	tcase_add_test(tc, callback_error_fails_open);
	tcase_add_test(tc, refused_headers_are_left_untouched);
	tcase_add_test(tc, empty_file_is_new);
	tcase_add_test(tc, new_file_mode_and_missing_dir);
	tcase_add_test(tc, second_open_is_busy);
	tcase_add_test(tc, stale_tmp_is_removed);
	tcase_add_test(tc, group_commit_counts_fsyncs);
	tcase_add_test(tc, commit_failure_cuts_back);
	tcase_add_test(tc, compaction_keeps_exactly_the_live_records);
	tcase_add_test(tc, compaction_of_many_live_records);
	tcase_add_test(tc, compaction_failures_keep_the_old_journal);
	tcase_add_test(tc, close_during_compaction);
	tcase_add_test(tc, links_are_not_followed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
