// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * journal-record: writes and reads lease journal records, so that the
 * end-to-end tests can hand the server a journal no running server would
 * write (see docs/journal.md).
 *
 *   journal-record grant KEY IP4|- IP6|- START LEASETIME
 *   journal-record release KEY IP4|- IP6|- START QUARANTINE
 *   journal-record dump FILE
 *
 * grant and release print one encoded record, 80 bytes, to stdout, for the
 * test to append to a journal. KEY is a peer's public key in base64, - for
 * an absent family, START wall-clock seconds; QUARANTINE is the release's
 * quarantine in seconds, 0 for none.
 *
 * dump prints each valid record of the journal FILE as one line, in the
 * words of the arguments above ("grant KEY 10.0.0.2 fd00::2 START 600"),
 * and on stderr how many bytes follow the last valid one.
 *
 * Exit status: 0, or 1 with a one-line error on stderr.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../../common/key.h"
#include "../../server/journal.h"

static const char usage[] = "Usage: journal-record grant|release KEY IP4|- IP6|- START "
			    "SECONDS, or journal-record dump FILE\n";

/* Decimal seconds that fit a record's 32-bit field, digits only. */
static int parse_u32(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* argv: TYPE KEY IP4 IP6 START SECONDS */
static int encode(char *argv[])
{
	struct journal_record r = { 0 };
	uint8_t out[JOURNAL_RECORD_SIZE];

	r.type = strcmp(argv[0], "grant") ? JREC_RELEASE : JREC_GRANT;
	if (wgkey_from_base64(r.pubkey, argv[1])) {
		fprintf(stderr, "journal-record: '%s' is not a public key: give 44 characters of "
			"base64, as wg pubkey prints\n", argv[1]);
		return 1;
	}
	if (strcmp(argv[2], "-")) {
		if (inet_pton(AF_INET, argv[2], &r.ip4) != 1) {
			fprintf(stderr, "journal-record: '%s' is not an IPv4 address: give one "
				"such as 10.0.0.2, or - for none\n", argv[2]);
			return 1;
		}
		r.flags |= JREC_F_IP4;
	}
	if (strcmp(argv[3], "-")) {
		if (inet_pton(AF_INET6, argv[3], &r.ip6) != 1) {
			fprintf(stderr, "journal-record: '%s' is not an IPv6 address: give one "
				"such as fd00::2, or - for none\n", argv[3]);
			return 1;
		}
		r.flags |= JREC_F_IP6;
	}
	if (parse_u32(argv[4], &r.start) || parse_u32(argv[5], &r.leasetime)) {
		fprintf(stderr, "journal-record: '%s' or '%s' is not a number of seconds: give "
			"decimal digits below 2^32\n", argv[4], argv[5]);
		return 1;
	}
	/* A release's seconds are those of its quarantine, when it has one. */
	if (r.type == JREC_RELEASE && r.leasetime)
		r.flags |= JREC_F_QUARANTINE;
	journal_encode(&r, out);
	if (fwrite(out, 1, sizeof(out), stdout) != sizeof(out) || fflush(stdout)) {
		fprintf(stderr, "journal-record: cannot write the record: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

static int print_record(const struct journal_record *r, void *ctx)
{
	char kb[WG_KEY_B64_LEN], a4[INET_ADDRSTRLEN] = "-", a6[INET6_ADDRSTRLEN] = "-";

	(void)ctx;
	wgkey_to_base64(kb, r->pubkey);
	if (r->flags & JREC_F_IP4)
		inet_ntop(AF_INET, &r->ip4, a4, sizeof(a4));
	if (r->flags & JREC_F_IP6)
		inet_ntop(AF_INET6, &r->ip6, a6, sizeof(a6));
	printf("%s %s %s %s %u %u\n", r->type == JREC_GRANT ? "grant" : "release", kb, a4, a6,
	       r->start,
	       r->type == JREC_RELEASE && !(r->flags & JREC_F_QUARANTINE) ? 0 : r->leasetime);
	return 0;
}

static int dump(const char *path)
{
	size_t len = 0, cap = 0, valid = 0, n;
	uint8_t *buf = NULL;
	FILE *f = fopen(path, "rb");
	int ret;

	if (!f) {
		fprintf(stderr, "journal-record: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	do {
		if (cap - len < 65536) {
			uint8_t *p = realloc(buf, cap + 65536);

			if (!p) {
				fprintf(stderr, "journal-record: out of memory reading %s\n", path);
				fclose(f);
				free(buf);
				return 1;
			}
			buf = p;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n);
	ret = ferror(f);
	fclose(f);
	if (ret) {
		fprintf(stderr, "journal-record: cannot read %s\n", path);
		free(buf);
		return 1;
	}
	ret = journal_parse(buf, len, print_record, NULL, &valid);
	free(buf);
	if (ret) {
		fprintf(stderr, "journal-record: %s is not a lease journal: %s\n", path,
			ret == -EBADMSG ? "bad header" : "unknown version");
		return 1;
	}
	fprintf(stderr, "%s: %zu bytes after the last valid record\n", path, len - valid);
	return fflush(stdout) ? 1 : 0;
}

int main(int argc, char *argv[])
{
	if (sodium_init() < 0) {
		fprintf(stderr, "journal-record: cannot initialise libsodium\n");
		return 1;
	}
	if (argc == 3 && !strcmp(argv[1], "dump"))
		return dump(argv[2]);
	if (argc == 7 && (!strcmp(argv[1], "grant") || !strcmp(argv[1], "release")))
		return encode(argv + 1);
	fputs(usage, stderr);
	return 1;
}
