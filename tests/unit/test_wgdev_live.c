// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * The UAPI backend against a real wireguard-go, run in a network namespace
 * of its own so no traffic leaves it. Skipped (and passing) unless root
 * with wireguard-go, wg and ip installed.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "../../common/wgctl.h"
#include "../../common/wgdev.h"

#define PRIV_A "30a7e7b87aa82e66b31b50d8c97a416f35dd2cb86d9f25ff1ee1b4ed3e544f52"
#define PUB_A  "34ac31dedd2bc10437605ab1ddecd86e10bb32f31a70f3db0f56c25038459c3b"
#define PUB_B  "881cac65368107eb504145efcae6101181996f69e4b309eb75fb53528f1f7f42"
#define PUB_C  "2f15a6f026498c7263c69a0179415f019aa48f5e09d1188c8b9e754a2d71b228"
#define PUB_D  "b492ddcb0b5999cd09e1a485a546576d8588601a898514b1aad84f76f38b901a"
/* The same public keys in base64, as wg(8) prints them. */
#define B64_B "iBysZTaBB+tQQUXvyuYQEYGZb2nkswnrdftTUo8ff0I="
#define B64_C "LxWm8CZJjHJjxpoBeUFfAZqkj14J0RiMi551Si1xsig="

static char netns[32], ifname[IF_NAMESIZE], sock_path[96];
static pid_t daemon_pid = -1;

static bool have(const char *path)
{
	return access(path, X_OK) == 0;
}

static const char *find_tool(const char *name)
{
	static char buf[4][64];
	static int n;
	const char *dirs[] = { "/usr/bin", "/usr/sbin", "/bin", "/sbin" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); ++i) {
		char *p = buf[n % 4];

		snprintf(p, sizeof(buf[0]), "%s/%s", dirs[i], name);
		if (have(p)) {
			++n;
			return p;
		}
	}
	return NULL;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Sends one UAPI operation the way wg(8) would and checks errno=0. */
static void uapi_raw(const char *req)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char reply[4096];
	size_t len = 0;
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (len < sizeof(reply) - 1) {
		ssize_t n = read(fd, reply + len, sizeof(reply) - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		reply[len] = '\0';
		if (strstr(reply, "\n\n"))
			break;
	}
	close(fd);
	ck_assert_str_eq(reply, "errno=0\n\n");
}

/* `wg show IFACE allowed-ips` for one peer, as one line. */
static void wg_allowed_ips(const char *b64, char *out, size_t size)
{
	char cmd[256], line[1024];
	FILE *f;

	out[0] = '\0';
	snprintf(cmd, sizeof(cmd), "%s show %s allowed-ips", find_tool("wg"), ifname);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, b64, strlen(b64))) {
			char *tab = strchr(line, '\t');

			snprintf(out, size, "%s", tab ? tab + 1 : "");
			out[strcspn(out, "\n")] = '\0';
		}
	}
	pclose(f);
}

static void hex_key(uint8_t key[WG_KEY_LEN], const char *hex)
{
	for (int i = 0; i < WG_KEY_LEN; ++i) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		key[i] = (uint8_t)v;
	}
}

static struct wgd_ip ip_of(const char *s)
{
	struct wgd_ip ip;

	ck_assert_int_eq(wgd_ip_parse(&ip, s, strlen(s), true), 0);
	return ip;
}

/*
 * Runs in main, outside the forked test, so a failed test cannot leave the
 * daemon or the namespace behind. Returns whether the daemon came up.
 */
static bool live_setup(void)
{
	struct stat st;

	snprintf(netns, sizeof(netns), "wgdlive%d", (int)getpid());
	snprintf(ifname, sizeof(ifname), "wgdl%d", (int)getpid() % 10000000);
	snprintf(sock_path, sizeof(sock_path), "/var/run/wireguard/%s.sock", ifname);
	if (run("%s netns add %s", find_tool("ip"), netns))
		return false;
	daemon_pid = fork();
	if (daemon_pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		execl(find_tool("ip"), "ip", "netns", "exec", netns,
		      find_tool("wireguard-go"), "-f", ifname, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; ++i) {
		if (!stat(sock_path, &st) && S_ISSOCK(st.st_mode))
			return true;
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
	}
	return false;
}

static void live_teardown(void)
{
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, NULL, 0);
		daemon_pid = -1;
	}
	unlink(sock_path);
	run("%s netns del %s 2>/dev/null", find_tool("ip"), netns);
}

START_TEST(live_wireguard_go)
{
	struct wgd_ip add[2], del[2];
	uint8_t key[WG_KEY_LEN], dev_pub[WG_KEY_LEN];
	struct wgctl *ctl;
	struct wgdev *dev;
	char ips[512];

	uapi_raw("set=1\nprivate_key=" PRIV_A "\n"
		 "public_key=" PUB_B "\nallowed_ip=10.9.0.2/32\nallowed_ip=fd00::2/128\n"
		 "public_key=" PUB_C "\nendpoint=[::1]:6000\nallowed_ip=10.9.0.3/32\n\n");

	ck_assert_int_eq(wgctl_open(&ctl, ifname), 0);
	ck_assert_str_eq(wgctl_backend_name(ctl), "userspace");
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	hex_key(dev_pub, PUB_A);
	ck_assert(dev->has_pubkey);
	ck_assert_mem_eq(dev->pubkey, dev_pub, WG_KEY_LEN);
	ck_assert_uint_eq(dev->n_peers, 2);
	hex_key(key, PUB_C);
	ck_assert_ptr_nonnull(wgdev_find_peer(dev, key));
	ck_assert_int_eq(wgdev_find_peer(dev, key)->endpoint.sa.sa_family, AF_INET6);
	wgdev_free(dev);

	/* Additions alone. */
	hex_key(key, PUB_B);
	add[0] = ip_of("10.9.1.0/24");
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, add, 1, NULL, 0), 0);
	wg_allowed_ips(B64_B, ips, sizeof(ips));
	ck_assert_str_eq(ips, "10.9.0.2/32 fd00::2/128 10.9.1.0/24");

	/* A removal: this wireguard-go may need the read-modify-write path. */
	add[0] = ip_of("10.9.2.2/32");
	add[1] = ip_of("fd00::22/128");
	del[0] = ip_of("10.9.0.2/32");
	del[1] = ip_of("10.99.0.0/16");
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, add, 2, del, 2), 0);
	wg_allowed_ips(B64_B, ips, sizeof(ips));
	ck_assert_ptr_null(strstr(ips, "10.9.0.2/32"));
	ck_assert_ptr_nonnull(strstr(ips, "fd00::2/128"));
	ck_assert_ptr_nonnull(strstr(ips, "10.9.1.0/24"));
	ck_assert_ptr_nonnull(strstr(ips, "10.9.2.2/32"));
	ck_assert_ptr_nonnull(strstr(ips, "fd00::22/128"));
	/* Again on the kept connection. */
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, NULL, 0, add, 1), 0);
	wg_allowed_ips(B64_B, ips, sizeof(ips));
	ck_assert_ptr_null(strstr(ips, "10.9.2.2/32"));
	wg_allowed_ips(B64_C, ips, sizeof(ips));
	ck_assert_str_eq(ips, "10.9.0.3/32");

	/* Another peer's prefix, and a peer the device does not have. */
	add[0] = ip_of("10.9.0.3/32");
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, add, 1, NULL, 0), -EEXIST);
	hex_key(key, PUB_D);
	add[0] = ip_of("10.9.4.4/32");
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key, add, 1, del, 1), -ENOENT);
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	ck_assert_uint_eq(dev->n_peers, 2);
	wgdev_free(dev);
	wgctl_close(ctl);
}
END_TEST

int main(void)
{
	const char *missing = NULL;
	SRunner *sr;
	Suite *s;
	TCase *tc;
	int failures;

	if (geteuid() != 0)
		missing = "root";
	else if (!find_tool("wireguard-go"))
		missing = "wireguard-go";
	else if (!find_tool("wg"))
		missing = "wg";
	else if (!find_tool("ip"))
		missing = "ip";
	if (missing) {
		printf("SKIP: test_wgdev_live needs %s\n", missing);
		return 0;
	}
	if (!live_setup()) {
		live_teardown();
		printf("SKIP: test_wgdev_live could not start wireguard-go in a namespace\n");
		return 0;
	}

	s = suite_create("wgdev_live");
	tc = tcase_create("wireguard-go");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, live_wireguard_go);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	live_teardown();
	return failures ? 1 : 0;
}
