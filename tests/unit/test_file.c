// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */
/*
 * The file API both daemons keep their files with: nothing another user
 * plants (a symbolic link, a hard link, a directory of theirs) redirects a
 * write or a read. Cases that give a file to another user need root; as
 * anyone else they say so and pass.
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/file.h"

#define OTHER_UID 65534       /* nobody: a user that is neither root nor us */

/*
 * One directory for the run, removed by an unchecked teardown, which runs
 * in the parent even when a test fails; a fresh one inside it per test,
 * ours, mode 0700.
 */
static char base[64];
static char dir[96];
static int dfd = -1;
static char why[8192];

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
	strcpy(base, "/tmp/wgd-file-XXXXXX");
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
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dfd, 0);
	why[0] = '\0';
}

static void teardown(void)
{
	close(dfd);
	remove_tree(dir);
}

/* ---- helpers ---- */

static bool as_root(const char *test)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "test_file: %s SKIPPED: it gives files to uid %d, which needs root\n",
		test, OTHER_UID);
	return false;
}

static char *at(const char *name)
{
	static char p[4][256];
	static int next;
	char *s = p[next++ % 4];

	snprintf(s, sizeof(p[0]), "%s/%s", dir, name);
	return s;
}

static void put(const char *name, const char *text, mode_t mode)
{
	int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* The whole content of a file, read by path (following links: what they
 * point to is what must be unchanged). */
static const char *content(const char *name)
{
	static char buf[256];
	ssize_t n;
	int fd = open(at(name), O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

static struct stat lstat_of(const char *name)
{
	struct stat st;

	ck_assert_int_eq(lstat(at(name), &st), 0);
	return st;
}

static bool exists(const char *name)
{
	struct stat st;

	return lstat(at(name), &st) == 0;
}

static void mkdir_mode(const char *name, mode_t mode)
{
	ck_assert_int_eq(mkdir(at(name), 0700), 0);
	ck_assert_int_eq(chmod(at(name), mode), 0);
}

static void assert_why(const char *part)
{
	if (!strstr(why, part))
		ck_abort_msg("reason '%s' lacks '%s'", why, part);
}

/* ---- files ---- */

/* A link planted at the name is replaced; the file it names is untouched. */
START_TEST(write_replaces_a_link_at_the_name)
{
	struct stat st;

	put("victim", "secret", 0600);
	ck_assert_int_eq(symlink(at("victim"), at("wg0.lease")), 0);
	ck_assert_int_eq(file_write_atomic_at(dfd, "wg0.lease", "lease", 5, 0600), 0);
	st = lstat_of("wg0.lease");
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_str_eq(content("wg0.lease"), "lease");
	ck_assert_str_eq(content("victim"), "secret");
	ck_assert(!exists("wg0.lease.tmp"));
}
END_TEST

/* A link planted as the temporary file is never written through. */
START_TEST(write_replaces_a_link_at_the_temporary_name)
{
	put("victim", "secret", 0600);
	ck_assert_int_eq(symlink(at("victim"), at("wg0.lease.tmp")), 0);
	ck_assert_int_eq(file_write_atomic_at(dfd, "wg0.lease", "lease", 5, 0600), 0);
	ck_assert_str_eq(content("victim"), "secret");
	ck_assert_str_eq(content("wg0.lease"), "lease");
	ck_assert(!exists("wg0.lease.tmp"));
	/* A dangling one, which O_CREAT alone would create a file through. */
	ck_assert_int_eq(symlink(at("nowhere"), at("wg0.lease.tmp")), 0);
	ck_assert_int_eq(file_write_atomic_at(dfd, "wg0.lease", "again", 5, 0600), 0);
	ck_assert(!exists("nowhere"));
	ck_assert_str_eq(content("wg0.lease"), "again");
}
END_TEST

START_TEST(write_creates_with_mode)
{
	struct stat st;

	ck_assert_int_eq(file_write_atomic_at(dfd, "wg0.lease", "x", 1, 0600), 0);
	st = lstat_of("wg0.lease");
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(file_write_atomic_at(dfd, "a/b", "x", 1, 0600), -EINVAL);
	ck_assert_int_eq(file_write_atomic_at(dfd, "..", "x", 1, 0600), -EINVAL);
}
END_TEST

/* Reads go through no link, and a file with another name (a hard link to
 * some file elsewhere) or of another kind is refused. */
START_TEST(read_refuses_links_and_odd_files)
{
	char buf[64];

	put("victim", "secret", 0600);
	ck_assert_int_eq(symlink(at("victim"), at("sym")), 0);
	ck_assert_int_eq(file_read_at(dfd, "sym", buf, sizeof(buf)), -ELOOP);
	ck_assert_int_eq(link(at("victim"), at("hard")), 0);
	ck_assert_int_eq(file_read_at(dfd, "hard", buf, sizeof(buf)), -EMLINK);
	ck_assert_int_eq(unlink(at("hard")), 0);
	/* A FIFO would block a plain open() for a writer that never comes. */
	ck_assert_int_eq(mkfifo(at("fifo"), 0600), 0);
	ck_assert_int_eq(file_read_at(dfd, "fifo", buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(file_read_at(dfd, "victim", buf, sizeof(buf)), 6);
	ck_assert_mem_eq(buf, "secret", 6);
	ck_assert_int_eq(file_read_at(dfd, "absent", buf, sizeof(buf)), -ENOENT);
}
END_TEST

/* O_TRUNC waits for the checks: a hard link is refused whole. */
START_TEST(open_truncates_only_what_it_checked)
{
	int fd;

	put("victim", "secret", 0600);
	ck_assert_int_eq(link(at("victim"), at("hard")), 0);
	ck_assert_int_eq(file_open_at(dfd, "hard", O_RDWR | O_TRUNC, 0), -EMLINK);
	ck_assert_str_eq(content("victim"), "secret");
	ck_assert_int_eq(unlink(at("hard")), 0);
	ck_assert_int_eq(symlink(at("victim"), at("sym")), 0);
	ck_assert_int_eq(file_open_at(dfd, "sym", O_RDWR | O_CREAT | O_TRUNC, 0600), -ELOOP);
	ck_assert_str_eq(content("victim"), "secret");
	fd = file_open_at(dfd, "victim", O_RDWR | O_TRUNC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
	ck_assert_str_eq(content("victim"), "");
}
END_TEST

/* O_EXCL, after unlinking whatever is there: never someone else's file. */
START_TEST(create_unlinks_what_is_there)
{
	struct stat st;
	int fd;

	put("victim", "secret", 0644);
	ck_assert_int_eq(symlink(at("victim"), at("new")), 0);
	fd = file_create_at(dfd, "new", O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "mine", 4), 4);
	close(fd);
	st = lstat_of("new");
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_str_eq(content("victim"), "secret");
	/* A directory under the name is not removed. */
	mkdir_mode("d", 0700);
	ck_assert_int_lt(file_create_at(dfd, "d", O_WRONLY, 0600), 0);
	ck_assert(S_ISDIR(lstat_of("d").st_mode));
}
END_TEST

/* ---- directories ---- */

START_TEST(dir_is_made_and_reused)
{
	uid_t me = geteuid();
	struct stat st;
	int fd;

	/* /tmp above is sticky and writable by all: that is fine. */
	ck_assert_int_eq(file_dir_open_secure(at("a/b/state"), me, true, &fd, why, sizeof(why)), 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_uid, me);
	ck_assert_uint_eq(st.st_mode & 07777, me ? 0700 : 0755);
	ck_assert_uint_eq(lstat_of("a").st_mode & 07777, 0755);
	ck_assert_int_eq(file_write_atomic_at(fd, "f", "x", 1, 0600), 0);
	close(fd);
	ck_assert(exists("a/b/state/f"));
	ck_assert_int_eq(file_dir_open_secure(at("a/b/state"), me, false, &fd, why, sizeof(why)), 0);
	close(fd);
	ck_assert_int_eq(file_dir_open_secure(at("absent"), me, false, &fd, why, sizeof(why)),
			 -ENOENT);
	ck_assert_int_eq(fd, -1);
}
END_TEST

/* The walk resolves the path itself: ".", "..", our own links. */
START_TEST(walk_finds_the_canonical_path)
{
	struct file_dir d;
	char want[256];

	mkdir_mode("a", 0755);
	mkdir_mode("a/b", 0755);
	ck_assert_int_eq(symlink("a/b", at("rel")), 0);
	ck_assert_int_eq(symlink(at("a"), at("abs")), 0);
	ck_assert_int_eq(file_dir_walk(at("rel/./../b/"), false, 0700, &d, why, sizeof(why)), 0);
	snprintf(want, sizeof(want), "%s/a/b", dir);
	ck_assert_str_eq(d.path, want);
	ck_assert(!d.created);
	close(d.fd);
	ck_assert_int_eq(file_dir_walk(at("abs/b/c"), true, 0711, &d, why, sizeof(why)), 0);
	snprintf(want, sizeof(want), "%s/a/b/c", dir);
	ck_assert_str_eq(d.path, want);
	ck_assert(d.created);
	ck_assert_uint_eq(d.st.st_mode & 07777, 0711);
	close(d.fd);
	/* A file is not a directory. */
	put("file", "", 0600);
	ck_assert_int_eq(file_dir_walk(at("file/x"), true, 0700, &d, why, sizeof(why)), -ENOTDIR);
}
END_TEST

/* A directory that others can write is refused, with the reason. */
START_TEST(dir_writable_by_others_is_refused)
{
	uid_t me = geteuid();
	int fd;

	mkdir_mode("world", 0777);
	ck_assert_int_eq(file_dir_open_secure(at("world"), me, false, &fd, why, sizeof(why)),
			 -EPERM);
	ck_assert_int_eq(fd, -1);
	assert_why("is writable by every user");
	assert_why(at("world"));
	assert_why("chmod");
	/* Sticky or not: anyone could plant a name the daemon has yet to use. */
	ck_assert_int_eq(chmod(at("world"), 01777), 0);
	ck_assert_int_eq(file_dir_open_secure(at("world"), me, false, &fd, why, sizeof(why)),
			 -EPERM);
	mkdir_mode("group", 0770);
	ck_assert_int_eq(file_dir_open_secure(at("group"), me, false, &fd, why, sizeof(why)),
			 -EPERM);
	assert_why("is writable by group");
}
END_TEST

START_TEST(dir_of_another_user_is_refused)
{
	int fd;

	if (!as_root("dir_of_another_user_is_refused"))
		return;
	mkdir_mode("theirs", 0755);
	ck_assert_int_eq(chown(at("theirs"), OTHER_UID, OTHER_UID), 0);
	ck_assert_int_eq(file_dir_open_secure(at("theirs"), 0, false, &fd, why, sizeof(why)),
			 -EPERM);
	assert_why("is writable by user 65534");
	assert_why("chown root:root");
	/* Nor is what they could have made of it reached through it. */
	mkdir_mode("theirs/state", 0755);
	ck_assert_int_eq(file_dir_open_secure(at("theirs/state"), 0, true, &fd, why, sizeof(why)),
			 -EPERM);
	assert_why("above it is writable by user 65534");
	/* The engine's directory belongs to its user, and not to root. */
	mkdir_mode("engine", 0700);
	ck_assert_int_eq(chown(at("engine"), OTHER_UID, OTHER_UID), 0);
	ck_assert_int_eq(file_dir_open_secure(at("engine"), OTHER_UID, false, &fd, why,
					      sizeof(why)), 0);
	close(fd);
	ck_assert_int_eq(file_dir_open_secure(at("engine"), 0, false, &fd, why, sizeof(why)),
			 -EPERM);
	/* Made for it, it is handed over. */
	ck_assert_int_eq(file_dir_open_secure(at("made"), OTHER_UID, true, &fd, why, sizeof(why)),
			 0);
	close(fd);
	ck_assert_uint_eq(lstat_of("made").st_uid, OTHER_UID);
	ck_assert_uint_eq(lstat_of("made").st_mode & 07777, 0700);
}
END_TEST

/* Above the directory: sticky and writable by all is fine (like /tmp),
 * writable by all without the sticky bit is not. */
START_TEST(ancestors_writable_by_others)
{
	uid_t me = geteuid();
	int fd;

	mkdir_mode("open", 0777);
	ck_assert_int_eq(file_dir_open_secure(at("open/state"), me, true, &fd, why, sizeof(why)),
			 -EPERM);
	assert_why("above it is writable by every user");
	ck_assert(!exists("open/state"));
	ck_assert_int_eq(chmod(at("open"), 01777), 0);
	ck_assert_int_eq(file_dir_open_secure(at("open/state"), me, true, &fd, why, sizeof(why)),
			 0);
	close(fd);
	ck_assert(exists("open/state"));
}
END_TEST

/* In a sticky directory another user may plant the name first: what they
 * planted is judged in its turn, and refused. */
START_TEST(planted_in_a_sticky_directory)
{
	int fd;

	if (!as_root("planted_in_a_sticky_directory"))
		return;
	mkdir_mode("tmp", 01777);
	mkdir_mode("tmp/state", 0755);
	ck_assert_int_eq(chown(at("tmp/state"), OTHER_UID, OTHER_UID), 0);
	ck_assert_int_eq(file_dir_open_secure(at("tmp/state"), 0, true, &fd, why, sizeof(why)),
			 -EPERM);
	assert_why("is writable by user 65534");
}
END_TEST

/* A symbolic link on the way is followed only when root (or we) own it:
 * another user's link would choose where the daemon's files go. */
START_TEST(symlinked_component_of_another_user_is_refused)
{
	int fd;

	if (!as_root("symlinked_component_of_another_user_is_refused"))
		return;
	mkdir_mode("real", 0755);
	ck_assert_int_eq(symlink(at("real"), at("link")), 0);
	ck_assert_int_eq(lchown(at("link"), OTHER_UID, OTHER_UID), 0);
	ck_assert_int_eq(file_dir_open_secure(at("link/state"), 0, true, &fd, why, sizeof(why)),
			 -EPERM);
	assert_why("is a symbolic link that belongs to user 65534");
	ck_assert(!exists("real/state"));
	/* As the last component too. */
	ck_assert_int_eq(file_dir_open_secure(at("link"), 0, true, &fd, why, sizeof(why)), -EPERM);
	/* Root's own link is the administrator's: followed. */
	ck_assert_int_eq(lchown(at("link"), 0, 0), 0);
	ck_assert_int_eq(file_dir_open_secure(at("link/state"), 0, true, &fd, why, sizeof(why)), 0);
	close(fd);
	ck_assert(exists("real/state"));
}
END_TEST

/* A directory swapped for a link after the path was resolved is not
 * followed: components are opened with O_NOFOLLOW. */
START_TEST(dir_open_at_follows_no_link)
{
	struct stat st;
	bool created;
	int fd;

	mkdir_mode("real", 0755);
	ck_assert_int_eq(symlink(at("real"), at("link")), 0);
	ck_assert_int_eq(file_dir_open_at(dfd, "link", true, 0700, &fd, &st, &created), -ELOOP);
	put("file", "", 0600);
	ck_assert_int_eq(file_dir_open_at(dfd, "file", true, 0700, &fd, &st, &created), -ENOTDIR);
	ck_assert_int_eq(file_dir_open_at(dfd, "new", true, 0700, &fd, &st, &created), 0);
	ck_assert(created);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("file");
	TCase *tc = tcase_create("file");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, setup_base, teardown_base);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, write_replaces_a_link_at_the_name);
	tcase_add_test(tc, write_replaces_a_link_at_the_temporary_name);
	tcase_add_test(tc, write_creates_with_mode);
	tcase_add_test(tc, read_refuses_links_and_odd_files);
	tcase_add_test(tc, open_truncates_only_what_it_checked);
	tcase_add_test(tc, create_unlinks_what_is_there);
	tcase_add_test(tc, dir_is_made_and_reused);
	tcase_add_test(tc, walk_finds_the_canonical_path);
	tcase_add_test(tc, dir_writable_by_others_is_refused);
	tcase_add_test(tc, dir_of_another_user_is_refused);
	tcase_add_test(tc, ancestors_writable_by_others);
	tcase_add_test(tc, planted_in_a_sticky_directory);
	tcase_add_test(tc, symlinked_component_of_another_user_is_refused);
	tcase_add_test(tc, dir_open_at_follows_no_link);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
