// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

/*
 * The UAPI backend against a real wireguard-go, run in a network namespace
 * of its own so no traffic leaves it, with a second one there to answer
 * handshakes. Skipped (and passing) unless root with wireguard-go, wg and
 * ip installed.
 */

#include <arpa/inet.h>
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
#include "../../protocol/proto.h"

#define PRIV_A "30a7e7b87aa82e66b31b50d8c97a416f35dd2cb86d9f25ff1ee1b4ed3e544f52"
#define PUB_A  "34ac31dedd2bc10437605ab1ddecd86e10bb32f31a70f3db0f56c25038459c3b"
#define PUB_B  "881cac65368107eb504145efcae6101181996f69e4b309eb75fb53528f1f7f42"
#define PUB_C  "2f15a6f026498c7263c69a0179415f019aa48f5e09d1188c8b9e754a2d71b228"
#define PUB_D  "b492ddcb0b5999cd09e1a485a546576d8588601a898514b1aad84f76f38b901a"
/* A second device, in the same namespace, for a real handshake. */
#define PRIV_E "50e31cfa0de3c725c93f67ae28fcaa89d72a120bc28d77fa9f2452fd5d1ef946"
#define PUB_E  "faddada95222bc423d86f3a0908efdd16f9f5f8df0cdf04b8d70e839bab05b60"
#define B64_E  "+t2tqVIivEI9hvOgkI790W+fX43wzfBLjXDoObqwW2A="
#define PORT_E 51001
/* The same public keys in base64, as wg(8) prints them. */
#define B64_B "iBysZTaBB+tQQUXvyuYQEYGZb2nkswnrdftTUo8ff0I="
#define B64_C "LxWm8CZJjHJjxpoBeUFfAZqkj14J0RiMi551Si1xsig="

static char netns[32], ifname[IF_NAMESIZE], sock_path[96];
static char ifname_e[IF_NAMESIZE], sock_path_e[96];
static pid_t daemon_pid = -1, daemon_e_pid = -1;

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
static void uapi_raw_at(const char *path, const char *req)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char reply[4096];
	size_t len = 0;
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
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

static void uapi_raw(const char *req)
{
	uapi_raw_at(sock_path, req);
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
/* Starts wireguard-go for name in the namespace, and waits for its socket. */
static bool start_daemon(const char *name, const char *path, pid_t *pid)
{
	struct stat st;

	*pid = fork();
	if (*pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		execl(find_tool("ip"), "ip", "netns", "exec", netns,
		      find_tool("wireguard-go"), "-f", name, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; ++i) {
		if (!stat(path, &st) && S_ISSOCK(st.st_mode))
			return true;
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
	}
	return false;
}

static void stop_daemon(pid_t *pid, const char *path)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
		*pid = -1;
	}
	unlink(path);
}

/*
 * Two devices, up, with the loopback up: the one under test, and a second
 * one that answers its handshakes over 127.0.0.1 and ::1.
 */
static bool live_setup(void)
{
	const char *ip = find_tool("ip");

	snprintf(netns, sizeof(netns), "wgdlive%d", (int)getpid());
	snprintf(ifname, sizeof(ifname), "wgdl%d", (int)getpid() % 10000000);
	snprintf(ifname_e, sizeof(ifname_e), "wgdm%d", (int)getpid() % 10000000);
	snprintf(sock_path, sizeof(sock_path), "/var/run/wireguard/%s.sock", ifname);
	snprintf(sock_path_e, sizeof(sock_path_e), "/var/run/wireguard/%s.sock", ifname_e);
	if (run("%s netns add %s", ip, netns))
		return false;
	return start_daemon(ifname, sock_path, &daemon_pid) &&
	       start_daemon(ifname_e, sock_path_e, &daemon_e_pid) &&
	       !run("%s -n %s link set lo up", ip, netns) &&
	       !run("%s -n %s link set %s up", ip, netns, ifname) &&
	       !run("%s -n %s link set %s up", ip, netns, ifname_e);
}

static void live_teardown(void)
{
	stop_daemon(&daemon_pid, sock_path);
	stop_daemon(&daemon_e_pid, sock_path_e);
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

/* The device read again until peer key has a handshake; NULL after 5 s. */
static struct wgdev *wait_handshake(struct wgctl *ctl, const uint8_t key[WG_KEY_LEN],
				    int64_t after_sec)
{
	for (int i = 0; i < 100; ++i) {
		struct wgdev *dev;
		struct wgdev_peer *p;

		ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
		p = wgdev_find_peer(dev, key);
		ck_assert_ptr_nonnull(p);
		if (p->last_handshake_sec >= after_sec && p->rx_bytes)
			return dev;
		wgdev_free(dev);
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
	}
	return NULL;
}

/*
 * The mesh's peer operations on a real wireguard-go: a peer added with an
 * endpoint and a keepalive sends its handshake at once and the second
 * device answers; added again it is fresh, without its allowed-IPs;
 * removed it is gone, and removing it again is no error.
 */
START_TEST(live_peer_ops)
{
	struct wgd_endpoint ep = { .port = PORT_E };
	uint8_t key_e[WG_KEY_LEN], key_b[WG_KEY_LEN], key_d[WG_KEY_LEN];
	struct wgd_ip add = ip_of("10.88.0.2/32");
	int64_t start = (int64_t)time(NULL);
	struct wgdev_peer *p;
	struct wgctl *ctl;
	struct wgdev *dev;
	char ips[512];
	char cmd[256];

	uapi_raw("set=1\nprivate_key=" PRIV_A "\n\n");
	snprintf(cmd, sizeof(cmd), "set=1\nprivate_key=%s\nlisten_port=%d\n"
		 "public_key=%s\nallowed_ip=10.77.0.1/32\n\n", PRIV_E, PORT_E, PUB_A);
	uapi_raw_at(sock_path_e, cmd);
	hex_key(key_e, PUB_E);
	hex_key(key_b, PUB_B);
	hex_key(key_d, PUB_D);
	ck_assert_int_eq(wgctl_open(&ctl, ifname), 0);
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	ck_assert_ptr_null(wgdev_find_peer(dev, key_e));
	wgdev_free(dev);

	ck_assert_int_eq(wgd_ip_parse(&ep.addr, "127.0.0.1", 9, true), 0);
	ck_assert_int_eq(wgctl_peer_add(ctl, key_e, &ep, 25), 0);
	dev = wait_handshake(ctl, key_e, start - 1);
	ck_assert_msg(dev != NULL, "no handshake with the second device");
	p = wgdev_find_peer(dev, key_e);
	ck_assert_int_eq(p->endpoint.sa.sa_family, AF_INET);
	ck_assert_uint_eq(ntohl(p->endpoint.sin.sin_addr.s_addr), 0x7f000001);
	ck_assert_uint_eq(ntohs(p->endpoint.sin.sin_port), PORT_E);
	ck_assert_uint_eq(p->keepalive_s, 25);
	ck_assert_uint_gt(p->tx_bytes, 0);
	ck_assert_uint_gt(p->rx_bytes, 0);
	ck_assert_int_le(p->last_handshake_sec, (int64_t)time(NULL) + 1);
	ck_assert_uint_lt(p->last_handshake_nsec, 1000000000);
	ck_assert_uint_eq(p->n_allowedips, 0);
	wgdev_free(dev);

	/* The view knows the new peer: an update needs no read. */
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_e, &add, 1, NULL, 0), 0);
	wg_allowed_ips(B64_E, ips, sizeof(ips));
	ck_assert_str_eq(ips, "10.88.0.2/32");

	/* Again, afresh, over IPv6: nothing of the old peer is left. */
	ck_assert_int_eq(wgd_ip_parse(&ep.addr, "::1", 3, true), 0);
	ck_assert_int_eq(wgctl_peer_add(ctl, key_e, &ep, 7), 0);
	wg_allowed_ips(B64_E, ips, sizeof(ips));
	ck_assert_str_eq(ips, "(none)");
	dev = wait_handshake(ctl, key_e, start - 1);
	ck_assert_msg(dev != NULL, "no handshake over IPv6");
	p = wgdev_find_peer(dev, key_e);
	ck_assert_int_eq(p->endpoint.sa.sa_family, AF_INET6);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&p->endpoint.sin6.sin6_addr));
	ck_assert_uint_eq(ntohs(p->endpoint.sin6.sin6_port), PORT_E);
	ck_assert_uint_eq(p->keepalive_s, 7);
	ck_assert_uint_eq(p->n_allowedips, 0);
	wgdev_free(dev);
	/* The view forgot the old peer's address with it. */
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_b, &add, 1, NULL, 0), 0);

	/* Removed, then removed again: gone, and no error. */
	ck_assert_int_eq(wgctl_peer_remove(ctl, key_e), 0);
	ck_assert_int_eq(wgctl_peer_remove(ctl, key_e), 0);
	ck_assert_int_eq(wgctl_peer_remove(ctl, key_d), 0);
	ck_assert_int_eq(wgctl_allowedips_update(ctl, key_e, &add, 1, NULL, 0), -ENOENT);
	ck_assert_int_eq(wgctl_get_device(ctl, &dev), 0);
	ck_assert_ptr_null(wgdev_find_peer(dev, key_e));
	ck_assert_ptr_null(wgdev_find_peer(dev, key_d));
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
	tcase_add_test(tc, live_peer_ops);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	live_teardown();
	return failures ? 1 : 0;
}
