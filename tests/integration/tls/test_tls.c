/* TLS end to end, with a CA made for the test (tests/harness/tls.h):
 * `telemachy run` against `telemachy serve` over HTTPS with client
 * certificates (mTLS), and NATS over TLS with client certificates and a
 * token on both sides (serve publishes, the engine's watcher listens).  Then
 * each way it must fail, and fail clearly, before anything is created: the
 * wrong CA, no or a foreign client certificate, a wrong NATS token, plain
 * http:// off loopback; and serve's own refusals.  No message ever shows a
 * key or the token (docs/engine.md, docs/serve.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/nats.h"
#include "harness/run.h"
#include "harness/serve.h"
#include "harness/tls.h"

#define RUN_MS   60000
#define SERVE_MS 20000
#define TOKEN    "tlm-test-token-7f3a9c"

static const char hello[] = TLM_SOURCE_DIR "/examples/hello-world.yaml";

static tlm_h_pki pki;
static pid_t nats_pid;
static unsigned short nats_port;
static char nats_url[64];
static char *token_file, *bad_token_file;
static tlm_h_serve serve;
static char *client_key_text; /* the client key's PEM: must never be shown */
static tlm_h_run run;

static int group_setup(void **state)
{
	(void)state;
	tlm_h_pki_make(&pki);
	token_file = tlm_h_write_file(pki.dir, "token", TOKEN "\n");
	bad_token_file = tlm_h_write_file(pki.dir, "bad-token", "not-" TOKEN "\n");
	client_key_text = tlm_h_slurp(pki.client_key);
	nats_pid = tlm_h_nats_start_tls(&nats_port, &pki, TOKEN);
	snprintf(nats_url, sizeof(nats_url), "tls://127.0.0.1:%u", (unsigned)nats_port);
	{
		const char *args[] = { "--tls-cert",
				       pki.server_cert,
				       "--tls-key",
				       pki.server_key,
				       "--tls-client-ca",
				       pki.ca,
				       "--nats",
				       nats_url,
				       "--nats-ca",
				       pki.ca,
				       "--nats-cert",
				       pki.client_cert,
				       "--nats-key",
				       pki.client_key,
				       "--nats-token-file",
				       token_file,
				       NULL };

		tlm_h_serve_start(&serve, args);
	}
	/* The harness's own requests (checks of what serve holds) are mTLS too. */
	tlm_h_http_tls(pki.ca, pki.client_cert, pki.client_key);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (serve.pid > 0)
		tlm_h_serve_stop(&serve);
	tlm_h_nats_stop(nats_pid);
	tlm_h_http_tls(NULL, NULL, NULL);
	free(token_file);
	free(bad_token_file);
	free(client_key_text);
	tlm_h_pki_free(&pki);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_run_clear(&run);
	memset(&run, 0, sizeof(run));
	return 0;
}

/* A line of the key's base64 body (the second line of the PEM). */
static void assert_no_secret(const char *text)
{
	const char *body = strchr(client_key_text, '\n');
	char line[65];

	assert_null(strstr(text, TOKEN));
	assert_null(strstr(text, "PRIVATE KEY"));
	assert_non_null(body);
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(body + 1, "\n"), body + 1);
	assert_true(strlen(line) > 20);
	assert_null(strstr(text, line));
}

/* Everything right: TLS for the control plane and for NATS, both sides. */
static const char *const all_env[] = {
	"AGAMEMNON_CA_FILE=", "AGAMEMNON_CLIENT_CERT=", "AGAMEMNON_CLIENT_KEY=",
	"NATS_URL=",          "NATS_CA_FILE=",          "NATS_CLIENT_CERT=",
	"NATS_CLIENT_KEY=",   "NATS_TOKEN_FILE=",       NULL
};

/* "NAME=" entries of all_env with their values, into env (strings in buf);
 * a "NAME=VALUE" in changes replaces NAME's, a bare "NAME" drops it. */
static void make_env(const char **env, char buf[][4200], const char *const *changes)
{
	const char *values[] = { pki.ca, pki.client_cert, pki.client_key, nats_url,
				 pki.ca, pki.client_cert, pki.client_key, token_file };
	size_t i, j, n = 0, len;

	for (i = 0; all_env[i] != NULL; i++) {
		const char *v = values[i];
		int drop = 0;

		len = strlen(all_env[i]) - 1;
		for (j = 0; changes != NULL && changes[j] != NULL; j++)
			if (strncmp(changes[j], all_env[i], len) == 0) {
				if (changes[j][len] == '=')
					v = changes[j] + len + 1;
				else if (changes[j][len] == '\0')
					drop = 1;
			}
		if (drop)
			continue;
		snprintf(buf[n], sizeof(buf[n]), "%s%s", all_env[i], v);
		env[n] = buf[n];
		n++;
	}
	env[n] = NULL;
}

static void run_with(const char *const *changes, const char *const *args)
{
	static char buf[16][4200];
	const char *env[16];

	make_env(env, buf, changes);
	tlm_h_run_on(&run, &serve, hello, env, args);
}

/* serve's NATS counter key from /health, once its connection is up (it
 * says "connected" when its subscriptions are confirmed: at most 5 s). */
static json_int_t health_nats(const char *key)
{
	int64_t end = tlm_h_now_ms() + 5000;
	json_t *body = NULL, *nats;
	json_int_t v;

	for (;;) {
		assert_int_equal(tlm_h_req(&serve, "GET", "/health", NULL, &body), 200);
		nats = json_object_get(body, "nats");
		if (strcmp(tlm_h_str(nats, "state"), "connected") == 0)
			break;
		if (tlm_h_now_ms() > end)
			fail_msg("serve's NATS is not connected: %s", tlm_h_dump(body));
		json_decref(body);
		tlm_h_sleep_ms(20);
	}
	v = tlm_h_int(nats, key);
	json_decref(body);
	return v;
}

/* The whole way over TLS: the run completes, and the task's events came
 * through NATS (the watcher's count, on -v), not only the REST reconcile. */
static void test_run_over_mtls_and_nats_tls(void **state)
{
	const char *args[] = { "-v", NULL };
	unsigned long long received = 0;
	json_int_t published_before = health_nats("published");
	const char *p;

	(void)state;
	run_with(NULL, args);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	tlm_h_assert_all_completed(&run);
	p = strstr(run.err, "NATS: ");
	if (p == NULL || sscanf(p, "NATS: %llu task events received", &received) != 1)
		fail_msg("no NATS counters on -v; stderr:\n%s", run.err);
	if (received == 0)
		fail_msg("no task event came through NATS; stderr:\n%s", run.err);
	assert_true(health_nats("published") > published_before);
	assert_no_secret(run.err);
	assert_no_secret(run.out);
	tlm_h_assert_no_tlm(&serve);
}

static void assert_preflight_failed(const char *what)
{
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 3);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "preflight_failed");
	if (strstr(run.err, what) == NULL)
		fail_msg("expected \"%s\" in stderr:\n%s", what, run.err);
	assert_non_null(strstr(run.err, "nothing was created"));
	assert_no_secret(run.err);
	assert_no_secret(run.out);
	tlm_h_assert_no_tlm(&serve);
}

/* A CA that did not sign serve's certificate: refused at once (no retry
 * budget spent on it), naming the host and what is wrong. */
static void test_wrong_ca(void **state)
{
	char ca[4200];
	const char *changes[] = { ca, NULL };
	int64_t t0 = tlm_h_now_ms();

	(void)state;
	snprintf(ca, sizeof(ca), "AGAMEMNON_CA_FILE=%s", pki.other_ca);
	run_with(changes, NULL);
	assert_preflight_failed("TLS with 127.0.0.1 failed: SSL certificate problem");
	assert_true(tlm_h_now_ms() - t0 < 4000);
}

/* No client certificate where serve requires one: its 403 says why. */
static void test_no_client_cert(void **state)
{
	const char *changes[] = { "AGAMEMNON_CLIENT_CERT", "AGAMEMNON_CLIENT_KEY", NULL };

	(void)state;
	run_with(changes, NULL);
	assert_preflight_failed("a client certificate is required and none was presented");
	assert_non_null(strstr(run.err, "HTTP 403"));
}

/* A client certificate of another CA: refused as well. */
static void test_foreign_client_cert(void **state)
{
	char cert[4200], key[4200];
	const char *changes[] = { cert, key, NULL };

	(void)state;
	snprintf(cert, sizeof(cert), "AGAMEMNON_CLIENT_CERT=%s", pki.other_client_cert);
	snprintf(key, sizeof(key), "AGAMEMNON_CLIENT_KEY=%s", pki.other_client_key);
	run_with(changes, NULL);
	assert_preflight_failed("the client certificate is not signed by the CA");
}

/* NATS with the wrong token: preflight fails, and neither token shows. */
static void test_nats_wrong_token(void **state)
{
	char tok[4200];
	const char *changes[] = { tok, NULL };

	(void)state;
	snprintf(tok, sizeof(tok), "NATS_TOKEN_FILE=%s", bad_token_file);
	run_with(changes, NULL);
	assert_preflight_failed("refused the token or credentials");
	assert_null(strstr(run.err, "not-" TOKEN));
}

/* NATS without a client certificate, which the server verifies. */
static void test_nats_no_client_cert(void **state)
{
	const char *changes[] = { "NATS_CLIENT_CERT", "NATS_CLIENT_KEY", NULL };

	(void)state;
	run_with(changes, NULL);
	assert_preflight_failed("NATS: cannot connect to tls://127.0.0.1:");
}

/* REQUIRE_TLS is what it was: plain http:// off loopback is refused before
 * any connection, TLS settings or not. */
static void test_require_tls(void **state)
{
	static char buf[16][4200];
	const char *env[17];
	size_t n = 0;

	(void)state;
	make_env(env, buf, NULL);
	while (env[n] != NULL)
		n++;
	env[n++] = "AGAMEMNON_URL=http://192.0.2.1:8080";
	env[n] = NULL;
	tlm_h_run_wf(&run, env, NULL, hello, RUN_MS);
	assert_int_equal(run.exit_code, 2);
	assert_non_null(strstr(run.err, "plain http:// to non-loopback host \"192.0.2.1\" "
					"refused (require_tls)"));
}

/* A half-given client certificate is a mistake, not "no certificate". */
static void test_half_a_client_cert(void **state)
{
	const char *changes[] = { "AGAMEMNON_CLIENT_KEY", NULL };

	(void)state;
	run_with(changes, NULL);
	tlm_h_run_wait(&run, RUN_MS);
	assert_int_equal(run.exit_code, 2);
	assert_non_null(strstr(run.err, "AGAMEMNON_CLIENT_CERT is set but AGAMEMNON_CLIENT_KEY"));
}

/* Plain HTTP clients and clients without a certificate get nothing from
 * serve; /health included. */
static void test_serve_requires_client_cert(void **state)
{
	char url[256];
	json_t *body = NULL;
	int code = 0;

	(void)state;
	snprintf(url, sizeof(url), "%s/health", serve.url);
	tlm_h_http_tls(pki.ca, NULL, NULL);
	assert_int_equal(tlm_h_http("GET", url, NULL, NULL, &body, NULL, NULL), 403);
	assert_non_null(strstr(tlm_h_str(body, "error"), "client certificate is required"));
	json_decref(body);
	tlm_h_http_tls(pki.ca, pki.server_cert, pki.server_key); /* not for clients */
	assert_int_equal(tlm_h_http("GET", url, NULL, NULL, NULL, NULL, NULL), 403);
	tlm_h_http_tls(pki.ca, pki.client_cert, pki.client_key);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", (unsigned)serve.port);
	assert_int_equal(tlm_h_http("GET", url, NULL, NULL, NULL, NULL, &code), 0);
	assert_int_not_equal(code, 0);
}

static int serve_fails(const char *const *args, char **err)
{
	static const char *const no_key[] = { "AGAMEMNON_API_KEY", "AGAMEMNON_API_KEY_FILE", NULL };
	char *out = NULL;
	int rc = tlm_h_serve_run(args, no_key, SERVE_MS, &out, err);

	assert_no_secret(out);
	assert_no_secret(*err);
	free(out);
	return rc;
}

/* serve's refusals: exit 2 for what the operator must fix in the command,
 * exit 3 when NATS refuses it; each names the files, never shows them. */
static void test_serve_refusals(void **state)
{
	char *err = NULL;

	(void)state;
	{
		const char *args[] = { "--tls-cert", pki.server_cert, NULL };

		assert_int_equal(serve_fails(args, &err), 2);
		assert_non_null(strstr(err, "--tls-cert and --tls-key go together"));
		free(err);
	}
	{
		const char *args[] = { "--tls-cert", pki.server_cert, "--tls-key", pki.client_key,
				       NULL };

		assert_int_equal(serve_fails(args, &err), 2);
		assert_non_null(strstr(err, "do not match"));
		assert_non_null(strstr(err, pki.client_key));
		free(err);
	}
	{
		/* TLS is no substitute for a key off loopback. */
		const char *args[] = { "--listen",  "0.0.0.0:0",    "--tls-cert", pki.server_cert,
				       "--tls-key", pki.server_key, NULL };

		assert_int_equal(serve_fails(args, &err), 2);
		assert_non_null(strstr(err, "without an API key"));
		free(err);
	}
	{
		const char *args[] = { "--nats",
				       nats_url,
				       "--nats-ca",
				       pki.ca,
				       "--nats-cert",
				       pki.client_cert,
				       "--nats-key",
				       pki.client_key,
				       "--nats-token-file",
				       bad_token_file,
				       NULL };

		assert_int_equal(serve_fails(args, &err), 3);
		assert_non_null(strstr(err, "refused the token or credentials"));
		assert_null(strstr(err, "not-" TOKEN));
		free(err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_run_over_mtls_and_nats_tls, teardown),
		cmocka_unit_test_teardown(test_wrong_ca, teardown),
		cmocka_unit_test_teardown(test_no_client_cert, teardown),
		cmocka_unit_test_teardown(test_foreign_client_cert, teardown),
		cmocka_unit_test_teardown(test_nats_wrong_token, teardown),
		cmocka_unit_test_teardown(test_nats_no_client_cert, teardown),
		cmocka_unit_test_teardown(test_require_tls, teardown),
		cmocka_unit_test_teardown(test_half_a_client_cert, teardown),
		cmocka_unit_test(test_serve_requires_client_cert),
		cmocka_unit_test(test_serve_refusals),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
