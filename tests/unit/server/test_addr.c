/* Addresses (src/server/addr.c): --listen parsing with its port and host
 * rules, loopback and wildcard addresses, how the bound address and the URL
 * are written, and which Host and Origin values name loopback (the DNS
 * rebinding check). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "server/addr.h"

static void parse_ok(const char *listen, const char *formatted, const char *url, int loopback,
		     int wildcard)
{
	tlm_error err = TLM_ERROR_INIT;
	char buf[256];
	tlm_addr a;

	if (tlm_addr_parse(&a, listen, &err) != 0)
		fail_msg("--listen %s: %s", listen, err.message);
	tlm_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, formatted);
	tlm_addr_url(&a, buf, sizeof(buf));
	assert_string_equal(buf, url);
	assert_int_equal(tlm_addr_is_loopback(&a), loopback);
	assert_int_equal(tlm_addr_is_wildcard(&a), wildcard);
}

static void parse_bad(const char *listen, const char *why)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_addr a;

	assert_int_equal(tlm_addr_parse(&a, listen, &err), TLM_EINVALID);
	if (strstr(err.message, why) == NULL)
		fail_msg("--listen %s: \"%s\" does not say \"%s\"", listen, err.message, why);
}

static void test_parse(void **state)
{
	(void)state;
	parse_ok("127.0.0.1:8080", "127.0.0.1:8080", "http://127.0.0.1:8080", 1, 0);
	parse_ok("127.0.0.2:0", "127.0.0.2:0", "http://127.0.0.2:0", 1, 0);
	parse_ok("127.0.0.1:65535", "127.0.0.1:65535", "http://127.0.0.1:65535", 1, 0);
	parse_ok("[::1]:80", "[::1]:80", "http://[::1]:80", 1, 0);
	parse_ok("[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:80", "http://[::ffff:127.0.0.1]:80",
		 1, 0);
	/* A wildcard is shown as bound; a client here reaches it on loopback. */
	parse_ok("0.0.0.0:8080", "0.0.0.0:8080", "http://127.0.0.1:8080", 0, 1);
	parse_ok("[::]:8080", "[::]:8080", "http://[::1]:8080", 0, 1);
	parse_ok("10.1.2.3:80", "10.1.2.3:80", "http://10.1.2.3:80", 0, 0);
	parse_ok("[2001:db8::1]:80", "[2001:db8::1]:80", "http://[2001:db8::1]:80", 0, 0);

	/* getaddrinfo alone would bind 99999 % 65536 = 34463. */
	parse_bad("127.0.0.1:99999", "the port must be a number from 0 to 65535");
	parse_bad("127.0.0.1:65536", "from 0 to 65535");
	parse_bad("127.0.0.1:000080", "from 0 to 65535");
	parse_bad("127.0.0.1:", "from 0 to 65535");
	parse_bad("127.0.0.1:-1", "from 0 to 65535");
	parse_bad("127.0.0.1:+80", "from 0 to 65535");
	parse_bad("127.0.0.1:http", "from 0 to 65535");
	parse_bad("127.0.0.1: 80", "from 0 to 65535");
	parse_bad("nonsense", "--listen wants HOST:PORT");
	parse_bad(":8080", "--listen wants HOST:PORT");
	parse_bad("::1:8080", "an IPv6 address goes in brackets");
	parse_bad("[::1:8080", "a '[' must enclose an IPv6 address");
	parse_bad("[]:8080", "a '[' must enclose an IPv6 address");
	parse_bad("[127.0.0.1]:8080", "not an IPv6 address");
	parse_bad("[localhost]:8080", "not an IPv6 address");
	parse_bad("no-such-host.invalid:8080", "cannot resolve");
	parse_bad("300.1.1.1:80", "cannot resolve");
}

/* A host name is resolved; what is bound is its address. */
static void test_parse_name(void **state)
{
	tlm_error err = TLM_ERROR_INIT;
	char buf[256];
	tlm_addr a;
	(void)state;

	assert_int_equal(tlm_addr_parse(&a, "localhost:0", &err), 0);
	assert_true(tlm_addr_is_loopback(&a));
	tlm_addr_format(&a, buf, sizeof(buf));
	assert_true(strcmp(buf, "127.0.0.1:0") == 0 || strcmp(buf, "[::1]:0") == 0);
}

static void test_host_header(void **state)
{
	static const char *const yes[] = { "localhost",   "LocalHost:8080",       "127.0.0.1",
					   "127.0.0.1:1", "127.255.0.9:65535",    "[::1]",
					   "[::1]:8080",  "[::ffff:127.0.0.1]:80" };
	static const char *const no[] = { "",
					  "evil.example",
					  "evil.example:8080",
					  "localhost.evil.example",
					  "localhost.",
					  "localhostx",
					  "127.0.0.1.evil.example",
					  "128.0.0.1",
					  "10.0.0.1:8080",
					  "0.0.0.0",
					  "[::]",
					  "[::2]:80",
					  "::1",
					  "[::1",
					  "localhost:",
					  "localhost:99999",
					  "localhost:80x",
					  "localhost:80:80",
					  "localhost evil" };
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!tlm_addr_host_is_loopback(yes[i]))
			fail_msg("Host \"%s\" should be loopback", yes[i]);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		if (tlm_addr_host_is_loopback(no[i]))
			fail_msg("Host \"%s\" should not be loopback", no[i]);
	}
	assert_false(tlm_addr_host_is_loopback(NULL));
}

static void test_origin_header(void **state)
{
	static const char *const yes[] = { "http://localhost:8080", "http://127.0.0.1",
					   "https://[::1]:443", "HTTP://LOCALHOST" };
	static const char *const no[] = { "null",
					  "",
					  "http://evil.example",
					  "http://evil.example:8080",
					  "http://localhost.evil.example",
					  "http://127.0.0.1/",
					  "http://127.0.0.1:8080/x",
					  "file://",
					  "ftp://localhost",
					  "localhost",
					  "http://" };
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!tlm_addr_origin_is_loopback(yes[i]))
			fail_msg("Origin \"%s\" should be loopback", yes[i]);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		if (tlm_addr_origin_is_loopback(no[i]))
			fail_msg("Origin \"%s\" should not be loopback", no[i]);
	}
	assert_false(tlm_addr_origin_is_loopback(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_name),
		cmocka_unit_test(test_host_header),
		cmocka_unit_test(test_origin_header),
	};

	return cmocka_run_group_tests_name("server.addr", tests, NULL, NULL);
}
