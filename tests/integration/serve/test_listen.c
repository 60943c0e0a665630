/* Where the real `telemachy serve` listens, and what it says about it:
 * --listen is validated (a port past 65535 is an error, not another port),
 * the URL printed is the address really bound (another loopback address, a
 * host name resolved), and anything but loopback needs an API key or an
 * explicit --insecure-no-auth (issue 11).  --backlog (upstream's 5, for
 * bench/connections.sh) is checked and served with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/serve.h"

static tlm_h_serve srv; /* stopped by the teardown, also after a failure */

static int teardown(void **state)
{
	(void)state;
	if (srv.pid > 0 || srv.state_dir != NULL)
		tlm_h_serve_stop(&srv);
	return 0;
}

/* serve ARGS must exit 2 within 5 s, saying want on stderr. */
static void usage_error(const char *const *args, const char *want)
{
	char *err = NULL;
	int rc = tlm_h_serve_run(args, NULL, 5000, NULL, &err);

	if (rc != 2 || strstr(err, want) == NULL)
		fail_msg("serve %s %s: exit %d (want 2), stderr \"%s\" (want \"%s\")", args[0],
			 args[1] ? args[1] : "", rc, err, want);
	free(err);
}

static void test_bad_listen(void **state)
{
	static const char *const big[] = { "--listen", "127.0.0.1:99999", NULL };
	static const char *const neg[] = { "--listen", "127.0.0.1:-1", NULL };
	static const char *const unbracketed[] = { "--listen", "::1:8080", NULL };
	static const char *const unknown[] = { "--listen", "no-such-host.invalid:8080", NULL };
	(void)state;

	/* Before the fix: bound port 34463 (99999 % 65536) and ran. */
	usage_error(big, "--listen \"127.0.0.1:99999\": the port must be a number from 0 to 65535");
	usage_error(neg, "the port must be a number from 0 to 65535");
	usage_error(unbracketed, "an IPv6 address goes in brackets");
	usage_error(unknown, "cannot resolve \"no-such-host.invalid\"");
}

static void health_at(const tlm_h_serve *s)
{
	json_t *j = NULL;

	assert_int_equal(tlm_h_req(s, "GET", "/health", NULL, &j), 200);
	assert_string_equal(tlm_h_str(j, "status"), "ok");
	json_decref(j);
}

static void test_backlog(void **state)
{
	static const char *const zero[] = { "--backlog", "0", NULL };
	static const char *const word[] = { "--backlog", "five", NULL };
	static const char *const five[] = { "--backlog", "5", NULL };
	(void)state;

	usage_error(zero, "--backlog wants 1..30000, got \"0\"");
	usage_error(word, "--backlog wants 1..30000");
	tlm_h_serve_start_env(&srv, five, NULL);
	health_at(&srv);
}

/* Another loopback address: the URL names it (it used to say 127.0.0.1,
 * where nothing listened). */
static void test_url_is_bound_address(void **state)
{
	static const char *const args[] = { "--listen", "127.0.0.2:0", NULL };
	char want[64];
	(void)state;

	tlm_h_serve_start_env(&srv, args, NULL);
	snprintf(want, sizeof(want), "http://127.0.0.2:%u", srv.port);
	assert_string_equal(srv.url, want);
	health_at(&srv);
}

/* A host name is resolved; the URL gives the address bound. */
static void test_url_of_host_name(void **state)
{
	static const char *const args[] = { "--listen", "localhost:0", NULL };
	char v4[64], v6[64];
	(void)state;

	tlm_h_serve_start_env(&srv, args, NULL);
	snprintf(v4, sizeof(v4), "http://127.0.0.1:%u", srv.port);
	snprintf(v6, sizeof(v6), "http://[::1]:%u", srv.port);
	if (strcmp(srv.url, v4) != 0 && strcmp(srv.url, v6) != 0)
		fail_msg("serve --listen localhost:0 printed %s", srv.url);
	health_at(&srv);
}

static const char *const no_key[] = { "AGAMEMNON_API_KEY", "AGAMEMNON_API_KEY_FILE", NULL };

/* Without a key, anything but loopback is refused before binding. */
static void test_exposed_needs_key(void **state)
{
	static const char *const any4[] = { "--listen", "0.0.0.0:0", NULL };
	static const char *const any6[] = { "--listen", "[::]:0", NULL };
	char *err = NULL;
	int rc;
	(void)state;

	rc = tlm_h_serve_run(any4, no_key, 5000, NULL, &err);
	if (rc != 2 || strstr(err, "refusing to listen on 0.0.0.0:0 without an API key") == NULL ||
	    strstr(err, "--insecure-no-auth") == NULL)
		fail_msg("serve --listen 0.0.0.0:0: exit %d, stderr \"%s\"", rc, err);
	free(err);
	rc = tlm_h_serve_run(any6, no_key, 5000, NULL, &err);
	if (rc != 2 || strstr(err, "refusing to listen on [::]:0 without an API key") == NULL)
		fail_msg("serve --listen [::]:0: exit %d, stderr \"%s\"", rc, err);
	free(err);
}

/* Runs serve on a wildcard address for a second (then SIGKILL: it must
 * still run), and checks the URL and the status lines it printed. */
static void wildcard_run(const char *extra, int insecure)
{
	char *dir = tlm_h_tmpdir(), *out = NULL, *err = NULL, want[128];
	const char *const args[] = { "--listen", "0.0.0.0:0", "--state-dir", dir, extra, NULL };
	unsigned port = 0;
	int rc = tlm_h_serve_run(args, no_key, 1000, &out, &err);

	tlm_h_rmrf(dir);
	free(dir);
	if (rc != -1 || sscanf(out, "http://127.0.0.1:%u\n", &port) != 1 || port == 0)
		fail_msg("serve --listen 0.0.0.0:0 %s: exit %d, stdout \"%s\", stderr \"%s\"",
			 extra, rc, out, err);
	/* The status line shows what is bound, the URL how to reach it here. */
	snprintf(want, sizeof(want), "listening on 0.0.0.0:%u (http://127.0.0.1:%u)", port, port);
	if (strstr(err, want) == NULL)
		fail_msg("stderr \"%s\" does not say \"%s\"", err, want);
	if (insecure)
		snprintf(want, sizeof(want), "warning: no auth on 0.0.0.0:%u (--insecure-no-auth)",
			 port);
	else
		snprintf(want, sizeof(want), "(http://127.0.0.1:%u), auth on", port);
	if (strstr(err, want) == NULL)
		fail_msg("stderr \"%s\" does not say \"%s\"", err, want);
	free(out);
	free(err);
}

/* With --insecure-no-auth it starts, and says what that means. */
static void test_insecure_no_auth(void **state)
{
	(void)state;
	wildcard_run("--insecure-no-auth", 1);
}

static void test_exposed_with_key(void **state)
{
	(void)state;
	wildcard_run("--api-key=k3y-for-a-wildcard-test", 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_listen),
		cmocka_unit_test_teardown(test_url_is_bound_address, teardown),
		cmocka_unit_test_teardown(test_url_of_host_name, teardown),
		cmocka_unit_test(test_exposed_needs_key),
		cmocka_unit_test(test_insecure_no_auth),
		cmocka_unit_test(test_exposed_with_key),
		cmocka_unit_test_teardown(test_backlog, teardown),
	};

	return cmocka_run_group_tests_name("serve.listen", tests, NULL, NULL);
}
