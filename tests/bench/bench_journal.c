// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * Grants per second through the lease journal: with group commit, where the
 * records of 64 clients answered in one event-loop round share one write and
 * one fdatasync, and without, one commit per grant.
 *
 * Usage: bench_journal [DIR [DIR2]]
 *
 * Each DIR gets a temporary directory of its own, removed afterwards. DIR
 * defaults to /dev/shm (tmpfs: the cost of the code and the system calls);
 * give a directory on a disk as DIR2 to see what the fsyncs cost there.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "../../server/journal.h"

#define CLIENTS 64
#define GROUP_RECORDS 20000
#define SINGLE_RECORDS 2000

struct result {
	size_t records;
	uint64_t commits, fsyncs;
	double seconds;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *fs_name(const char *dir)
{
	struct statfs sf;

	if (statfs(dir, &sf))
		return "?";
	switch ((unsigned long)sf.f_type) {
	case 0x01021994:
		return "tmpfs";
	case 0xef53:
		return "ext4";
	case 0x58465342:
		return "xfs";
	case 0x9123683e:
		return "btrfs";
	case 0x794c7630:
		return "overlayfs";
	case 0x2fc12fc1:
		return "zfs";
	case 0x6969:
		return "nfs";
	default:
		return "other";
	}
}

/* A grant as the server writes it: both families, a distinct peer. */
static void make_grant(struct journal_record *r, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->type = JREC_GRANT;
	r->flags = JREC_F_IP4 | JREC_F_IP6;
	r->start = 1700000000u + (uint32_t)n;
	r->leasetime = 3600;
	r->ip4.s_addr = htonl(0x0a000000u | (uint32_t)(n & 0xffffff));
	r->ip6.s6_addr[0] = 0xfd;
	memcpy(r->ip6.s6_addr + 8, &n, sizeof(n));
	memcpy(r->pubkey, &n, sizeof(n));
	r->pubkey[31] = 0x40;
}

static int run(const char *dir, size_t records, size_t batch, struct result *res)
{
	struct journal_record r;
	struct journal *j = NULL;
	char path[4096];
	double t0;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = journal_open(&j, dir, "bench", NULL, NULL, NULL);
	if (ret)
		return ret;
	t0 = now_s();
	for (size_t i = 0; i < records; i++) {
		make_grant(&r, i);
		ret = journal_append(j, &r);
		if (!ret && journal_pending(j) == batch) {
			ret = journal_commit(j);
			res->commits++;
		}
		if (ret)
			goto out;
	}
	if (journal_pending(j)) {
		ret = journal_commit(j);
		res->commits++;
		if (ret)
			goto out;
	}
	res->seconds = now_s() - t0;
	res->records = records;
	res->fsyncs = journal_fsyncs(j);
out:
	snprintf(path, sizeof(path), "%s", journal_path(j));
	journal_close(j);
	unlink(path);
	return ret;
}

static void print_row(const char *fs, const char *mode, const struct result *res)
{
	printf("%-8s %-16s %8zu %8llu %8llu %12.0f %10.2f\n", fs, mode, res->records,
	       (unsigned long long)res->commits, (unsigned long long)res->fsyncs,
	       res->records / res->seconds, res->seconds * 1e6 / res->records);
}

static int bench_dir(const char *parent)
{
	char dir[4096];
	const char *fs = fs_name(parent);
	struct result res;
	int ret;

	if (snprintf(dir, sizeof(dir), "%s/wgd-bench-XXXXXX", parent) >= (int)sizeof(dir) ||
	    !mkdtemp(dir)) {
		fprintf(stderr, "bench_journal: cannot make a directory in %s: %s\n", parent,
			strerror(errno));
		return 1;
	}
	printf("# %s (%s)\n", parent, fs);
	ret = run(dir, GROUP_RECORDS, CLIENTS, &res);
	if (!ret) {
		print_row(fs, "group of 64", &res);
		ret = run(dir, SINGLE_RECORDS, 1, &res);
	}
	if (!ret)
		print_row(fs, "one per commit", &res);
	rmdir(dir);
	if (ret) {
		fprintf(stderr, "bench_journal: %s: %s\n", parent, strerror(-ret));
		return 1;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	struct stat st;
	const char *first = "/dev/shm";
	int failed = 0;

	if (sodium_init() < 0)
		return 1;
	if (argc > 1)
		first = argv[1];
	else if (stat(first, &st) || !S_ISDIR(st.st_mode))
		first = "/tmp";

	printf("%-8s %-16s %8s %8s %8s %12s %10s\n", "fs", "mode", "records", "commits",
	       "fsyncs", "records/s", "us/grant");
	failed |= bench_dir(first);
	if (argc > 2)
		failed |= bench_dir(argv[2]);
	return failed;
}
