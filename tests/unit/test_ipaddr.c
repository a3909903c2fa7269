// SPDX-License-Identifier: MIT
/* Copyright (C) 2026 The wg-dynamic Authors. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../protocol/ipaddr.h"

static struct wgd_ip ip_of(const char *s)
{
	struct wgd_ip ip;

	ck_assert_msg(wgd_ip_parse(&ip, s, strlen(s), false) == 0,
		      "cannot parse %s", s);
	return ip;
}

static int parse(const char *s, bool host_bits_zero)
{
	struct wgd_ip ip;

	return wgd_ip_parse(&ip, s, strlen(s), host_bits_zero);
}

START_TEST(test_parse_v4)
{
	struct wgd_ip ip, host;
	struct in_addr a;

	ck_assert_int_eq(wgd_ip_parse(&ip, "192.168.47.11", 13, false), 0);
	ck_assert_int_eq(ip.family, AF_INET);
	ck_assert_int_eq(ip.cidr, 32);
	inet_pton(AF_INET, "192.168.47.11", &a);
	ck_assert_int_eq(ip.ip4.s_addr, a.s_addr);

	/* The tail past the four bytes is zero: memcmp() equality holds. */
	wgd_ip_host4(&host, &a);
	ck_assert_int_eq(memcmp(&ip, &host, sizeof(ip)), 0);

	ip = ip_of("10.1.0.0/16");
	ck_assert_int_eq(ip.cidr, 16);
	ip = ip_of("0.0.0.0/0");
	ck_assert_int_eq(ip.cidr, 0);
	ck_assert(wgd_ip_is_unspecified(&ip));
}
END_TEST

START_TEST(test_parse_v6)
{
	struct wgd_ip ip, host;
	struct in6_addr a;

	ip = ip_of("fd00::1a");
	ck_assert_int_eq(ip.family, AF_INET6);
	ck_assert_int_eq(ip.cidr, 128);
	inet_pton(AF_INET6, "fd00::1a", &a);
	wgd_ip_host6(&host, &a);
	ck_assert_int_eq(memcmp(&ip, &host, sizeof(ip)), 0);

	ip = ip_of("::/128");
	ck_assert(wgd_ip_is_unspecified(&ip));
	ip = ip_of("2001:db8::/32");
	ck_assert_int_eq(ip.cidr, 32);
	ip = ip_of("fe80::1/128");
	ck_assert(wgd_ip_is_linklocal6(&ip));
	ip = ip_of("febf::1");
	ck_assert(wgd_ip_is_linklocal6(&ip));
	ip = ip_of("fec0::1");
	ck_assert(!wgd_ip_is_linklocal6(&ip));
	ip = ip_of("169.254.0.1");
	ck_assert(!wgd_ip_is_linklocal6(&ip));
	/* The longest text form, 45 characters, still fits. */
	ip = ip_of("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128");
	ck_assert_int_eq(ip.bytes[15], 0xff);
}
END_TEST

START_TEST(test_parse_bounded)
{
	struct wgd_ip ip;
	const char text[] = "10.0.0.1/2499";

	/* Only len bytes count: no NUL needed, the rest is never read. */
	ck_assert_int_eq(wgd_ip_parse(&ip, text, 10, false), 0);
	ck_assert_int_eq(ip.cidr, 2);
	ck_assert_int_eq(wgd_ip_parse(&ip, text, 8, false), 0);
	ck_assert_int_eq(ip.cidr, 32);
	ck_assert_int_eq(ip.bytes[3], 1);
	ck_assert_int_eq(wgd_ip_parse(&ip, text, sizeof(text) - 1, false), -EINVAL);
}
END_TEST

START_TEST(test_parse_rejects)
{
	static const char *const bad[] = {
		"",
		"/",
		"/24",
		"1.2.3.4/",
		"1.2.3.4/33",
		"1.2.3.4/-1",
		"1.2.3.4/+8",
		"1.2.3.4/ 8",
		"1.2.3.4/8 ",
		"1.2.3.4/032",
		"1.2.3.4/00",
		"1.2.3.4/0032",
		"1.2.3.4/1000",
		"1.2.3.4/3a",
		"1.2.3.4/32/32",
		"1.2.3.4x",
		"1.2.3.4 ",
		" 1.2.3.4",
		"1.2.3",
		"1.2.3.256",
		"01.2.3.4",
		"0x1.2.3.4",
		"1.2.3.4\r",
		"::/129",
		"::/999",
		"fd00::1::2",
		"fe80::1%wg0",
		"::ffff:192.0.2.1",
		"::ffff:c000:201/128",
		"::ffff:0:0/96",
		"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:1",
		"fd00:0000:0000:0000:0000:0000:0000:0000:0000/64",
		"example.com",
	};
	struct wgd_ip ip;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
		memset(&ip, 0xa5, sizeof(ip));
		ck_assert_msg(wgd_ip_parse(&ip, bad[i], strlen(bad[i]), false) == -EINVAL,
			      "accepted \"%s\"", bad[i]);
		/* A failed parse leaves the output alone. */
		ck_assert_int_eq(ip.family, 0xa5);
	}

	/* A NUL would stop inet_pton() and hide what follows. */
	ck_assert_int_eq(wgd_ip_parse(&ip, "1.2.3.4\0junk", 12, false), -EINVAL);
	ck_assert_int_eq(wgd_ip_parse(&ip, "1.2.3.4\0", 8, false), -EINVAL);
	ck_assert_int_eq(wgd_ip_parse(&ip, "1.2.3.4/3\0", 10, false), -EINVAL);
}
END_TEST

START_TEST(test_parse_host_bits)
{
	struct wgd_ip ip;

	ck_assert_int_eq(parse("10.0.0.0/24", true), 0);
	ck_assert_int_eq(parse("10.0.0.1/24", true), -EINVAL);
	ck_assert_int_eq(parse("10.0.0.128/25", true), 0);
	ck_assert_int_eq(parse("10.0.0.64/25", true), -EINVAL);
	ck_assert_int_eq(parse("0.0.0.0/0", true), 0);
	ck_assert_int_eq(parse("1.0.0.0/0", true), -EINVAL);
	ck_assert_int_eq(parse("fd00::/64", true), 0);
	ck_assert_int_eq(parse("fd00::1/64", true), -EINVAL);
	ck_assert_int_eq(parse("fd00:0:0:1::/63", true), -EINVAL);
	ck_assert_int_eq(parse("fd00:0:0:2::/63", true), 0);
	ck_assert_int_eq(parse("10.0.0.1", true), 0);

	/* Without the flag the host bits are kept, for interface addresses. */
	ck_assert_int_eq(wgd_ip_parse(&ip, "10.0.0.1/24", 11, false), 0);
	ck_assert_int_eq(ip.cidr, 24);
	ck_assert_int_eq(ip.bytes[3], 1);
}
END_TEST

static void check_format(const char *in, const char *want, const char *want_addr)
{
	char buf[WGD_IP_STRLEN];
	struct wgd_ip ip = ip_of(in);

	ck_assert_str_eq(wgd_ip_format(&ip, buf, sizeof(buf)), want);
	ck_assert_str_eq(wgd_ip_format_addr(&ip, buf, sizeof(buf)), want_addr);
}

START_TEST(test_format)
{
	char buf[WGD_IP_STRLEN], small[8];
	struct wgd_ip ip = { 0 };

	check_format("192.168.47.11", "192.168.47.11/32", "192.168.47.11");
	check_format("10.0.0.0/8", "10.0.0.0/8", "10.0.0.0");
	check_format("0.0.0.0/0", "0.0.0.0/0", "0.0.0.0");
	check_format("fd00::1a", "fd00::1a/128", "fd00::1a");
	check_format("FD00:0:0:0:0:0:0:1A/128", "fd00::1a/128", "fd00::1a");
	check_format("::", "::/128", "::");
	check_format("2001:db8::/32", "2001:db8::/32", "2001:db8::");
	check_format("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128",
		     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
		     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

	ck_assert_str_eq(wgd_ip_format(&ip, buf, sizeof(buf)), "(none)");

	/* Too small: empty rather than a misleading bare address. */
	ip = ip_of("192.168.47.11/32");
	memset(small, 'x', sizeof(small));
	ck_assert_str_eq(wgd_ip_format(&ip, small, sizeof(small)), "");
	ip = ip_of("1.2.3.4/24");
	ck_assert_str_eq(wgd_ip_format(&ip, small, sizeof(small)), "");
	ip = ip_of("1.2.3.4/8");
	ck_assert_str_eq(wgd_ip_format(&ip, buf, 10), "1.2.3.4/8");
	ck_assert_str_eq(wgd_ip_format(&ip, buf, 9), "");
}
END_TEST

START_TEST(test_equal)
{
	struct wgd_ip a = ip_of("10.0.0.1"), b = ip_of("10.0.0.1/32");
	struct wgd_ip c = ip_of("10.0.0.1/31"), d = ip_of("::a00:1");

	ck_assert(wgd_ip_equal(&a, &b));
	ck_assert(!wgd_ip_equal(&a, &c));
	ck_assert(!wgd_ip_equal(&a, &d));
	b = ip_of("10.0.0.2");
	ck_assert(!wgd_ip_equal(&a, &b));
}
END_TEST

static bool contains(const char *a, const char *b)
{
	struct wgd_ip x = ip_of(a), y = ip_of(b);

	return wgd_ip_contains(&x, &y);
}

static bool overlaps(const char *a, const char *b)
{
	struct wgd_ip x = ip_of(a), y = ip_of(b);
	bool r = wgd_ip_overlaps(&x, &y);

	ck_assert_msg(r == wgd_ip_overlaps(&y, &x), "asymmetric %s %s", a, b);
	return r;
}

START_TEST(test_contains)
{
	ck_assert(contains("10.0.0.0/8", "10.255.1.2"));
	ck_assert(contains("10.0.0.0/8", "10.128.0.0/9"));
	ck_assert(contains("10.0.0.0/8", "10.0.0.0/8"));
	ck_assert(!contains("10.0.0.0/8", "11.0.0.0"));
	ck_assert(!contains("10.0.0.0/9", "10.128.0.1"));
	ck_assert(contains("10.0.0.0/9", "10.127.255.255"));
	ck_assert(!contains("10.0.0.0/9", "10.0.0.0/8"));
	ck_assert(contains("0.0.0.0/0", "255.255.255.255"));
	ck_assert(contains("192.168.1.7/32", "192.168.1.7"));
	ck_assert(!contains("192.168.1.7/32", "192.168.1.6"));
	/* Host bits in the container are ignored. */
	ck_assert(contains("192.168.1.77/24", "192.168.1.3"));
	/* Families never mix, not even ::/0 with IPv4. */
	ck_assert(!contains("::/0", "10.0.0.1"));
	ck_assert(!contains("0.0.0.0/0", "::1"));
	ck_assert(contains("::/0", "fd00::1"));
	ck_assert(contains("fd00::/64", "fd00::ffff:ffff:ffff:ffff"));
	ck_assert(!contains("fd00::/64", "fd00:0:0:1::"));
	ck_assert(contains("fd00::/63", "fd00:0:0:1::"));
	ck_assert(!contains("fd00::/65", "fd00::8000:0:0:0"));
	ck_assert(contains("fd00::/65", "fd00::7fff:0:0:0"));
}
END_TEST

START_TEST(test_overlaps)
{
	ck_assert(overlaps("10.0.0.0/8", "10.1.0.0/16"));
	ck_assert(overlaps("10.0.0.0/8", "10.0.0.0/8"));
	ck_assert(!overlaps("10.0.0.0/8", "11.0.0.0/8"));
	ck_assert(!overlaps("10.0.0.0/25", "10.0.0.128/25"));
	ck_assert(overlaps("10.0.0.0/24", "10.0.0.128/25"));
	ck_assert(overlaps("0.0.0.0/0", "1.2.3.4"));
	ck_assert(!overlaps("0.0.0.0/0", "::/0"));
	ck_assert(overlaps("fd00::/8", "fdff::/16"));
	ck_assert(!overlaps("fd00::/16", "fd01::/16"));
	ck_assert(!overlaps("fd00::1", "fd00::2"));
	ck_assert(overlaps("fd00::1", "fd00::1"));
}
END_TEST

START_TEST(test_mask)
{
	struct wgd_ip ip = ip_of("192.168.47.11/20"), want = ip_of("192.168.32.0/20");
	char buf[WGD_IP_STRLEN];

	wgd_ip_mask(&ip);
	ck_assert_int_eq(memcmp(&ip, &want, sizeof(ip)), 0);

	ip = ip_of("255.255.255.255/0");
	wgd_ip_mask(&ip);
	ck_assert_str_eq(wgd_ip_format(&ip, buf, sizeof(buf)), "0.0.0.0/0");

	ip = ip_of("255.255.255.255/31");
	wgd_ip_mask(&ip);
	ck_assert_str_eq(wgd_ip_format(&ip, buf, sizeof(buf)), "255.255.255.254/31");

	ip = ip_of("fd00:1:2:3:4:5:6:7/64");
	wgd_ip_mask(&ip);
	ck_assert_str_eq(wgd_ip_format(&ip, buf, sizeof(buf)), "fd00:1:2:3::/64");

	ip = ip_of("fd00:1:2:3:ffff:5:6:7/67");
	wgd_ip_mask(&ip);
	ck_assert_str_eq(wgd_ip_format(&ip, buf, sizeof(buf)), "fd00:1:2:3:e000::/67");

	ip = ip_of("fd00::7/128");
	want = ip;
	wgd_ip_mask(&ip);
	ck_assert_int_eq(memcmp(&ip, &want, sizeof(ip)), 0);
}
END_TEST

START_TEST(test_unspecified)
{
	struct wgd_ip ip = { 0 };

	ck_assert(!wgd_ip_is_unspecified(&ip));
	ck_assert(!wgd_ip_is_linklocal6(&ip));
	ip = ip_of("0.0.0.0");
	ck_assert(wgd_ip_is_unspecified(&ip));
	ip = ip_of("0.0.0.1");
	ck_assert(!wgd_ip_is_unspecified(&ip));
	ip = ip_of("::");
	ck_assert(wgd_ip_is_unspecified(&ip));
	ip = ip_of("::1");
	ck_assert(!wgd_ip_is_unspecified(&ip));
	ip = ip_of("8000::");
	ck_assert(!wgd_ip_is_unspecified(&ip));
}
END_TEST

static Suite *ipaddr_suite(void)
{
	Suite *s = suite_create("ipaddr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_v4);
	tcase_add_test(tc, test_parse_v6);
	tcase_add_test(tc, test_parse_bounded);
	tcase_add_test(tc, test_parse_rejects);
	tcase_add_test(tc, test_parse_host_bits);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_equal);
	tcase_add_test(tc, test_contains);
	tcase_add_test(tc, test_overlaps);
	tcase_add_test(tc, test_mask);
	tcase_add_test(tc, test_unspecified);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ipaddr_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
