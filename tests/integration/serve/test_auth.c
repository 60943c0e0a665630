/* Auth (Bearer or X-API-Key, health exempt, auth before routing) and the
 * rate limiter (429 + Retry-After) of `telemachy serve`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness/harness.h"
#include "harness/serve.h"

#define KEY "s3cret-key-for-tests"

static tlm_h_serve srv; /* for tests with a teardown: stopped after a failure too */

static int teardown(void **state)
{
	(void)state;
	if (srv.pid > 0 || srv.state_dir != NULL)
		tlm_h_serve_stop(&srv);
	return 0;
}

static long call(const tlm_h_serve *s, const char *method, const char *path,
		 const char *const *headers, json_t **j, long *retry)
{
	char url[256];
	int code = 0;
	long st;

	snprintf(url, sizeof(url), "%s%s", s->url, path);
	st = tlm_h_http(method, url, NULL, headers, j, retry, &code);
	assert_int_equal(code, 0);
	return st;
}

static void test_auth(void **state)
{
	static const char *const args[] = { "--api-key", KEY, NULL };
	static const char *const bearer[] = { "Authorization: Bearer " KEY, NULL };
	static const char *const xkey[] = { "X-API-Key: " KEY, NULL };
	static const char *const wrong[] = { "Authorization: Bearer nope", NULL };
	/* A present Bearer header alone decides, even next to a right X-API-Key. */
	static const char *const both[] = { "Authorization: Bearer nope", "X-API-Key: " KEY, NULL };
	static const char *const basic[] = { "Authorization: Basic " KEY, NULL };
	tlm_h_serve s;
	json_t *j = NULL;
	(void)state;

	tlm_h_serve_start(&s, args);
	assert_int_equal(call(&s, "GET", "/v1/agents", NULL, &j, NULL), 401);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "unauthorized");
	json_decref(j);
	assert_int_equal(call(&s, "GET", "/v1/agents", bearer, NULL, NULL), 200);
	assert_int_equal(call(&s, "GET", "/v1/agents", xkey, NULL, NULL), 200);
	assert_int_equal(call(&s, "GET", "/v1/agents", wrong, NULL, NULL), 401);
	assert_int_equal(call(&s, "GET", "/v1/agents", both, NULL, NULL), 401);
	assert_int_equal(call(&s, "GET", "/v1/agents", basic, NULL, NULL), 401);
	assert_int_equal(call(&s, "GET", "/v1/version", NULL, NULL, NULL), 401);
	/* auth runs before routing: unknown paths answer 401 too */
	assert_int_equal(call(&s, "GET", "/v1/nothing", NULL, NULL, NULL), 401);
	assert_int_equal(call(&s, "GET", "/v1/nothing", bearer, NULL, NULL), 404);
	assert_int_equal(call(&s, "GET", "/v1/health", NULL, NULL, NULL), 200);
	assert_int_equal(call(&s, "GET", "/health", NULL, NULL, NULL), 200);
	tlm_h_serve_stop(&s);
}

static void test_rate_limit(void **state)
{
	static const char *const args[] = { "--rate-limit", "2:5", NULL };
	tlm_h_serve s;
	json_t *j = NULL;
	long retry = 0;
	int i, limited = 0;
	(void)state;

	tlm_h_serve_start(&s, args);
	for (i = 0; i < 5; i++)
		assert_int_equal(call(&s, "GET", "/v1/agents", NULL, NULL, NULL), 200);
	for (i = 0; i < 3 && !limited; i++)
		limited = call(&s, "GET", "/v1/agents", NULL, &j, &retry) == 429;
	assert_true(limited);
	assert_true(retry >= 1);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "rate limit exceeded");
	assert_true(json_integer_value(json_object_get(j, "retry_after_seconds")) >= 1);
	json_decref(j);
	/* health stays answerable while limited */
	assert_int_equal(call(&s, "GET", "/v1/health", NULL, NULL, NULL), 200);
	tlm_h_serve_stop(&s);
}

static void test_bad_settings(void **state)
{
	/* A bad --fault spec or --rate-limit is a usage error: exit 2. */
	static const char *const cmds[] = {
		TLM_BIN " serve --fault 'explode:now=1' >/dev/null 2>&1",
		TLM_BIN " serve --rate-limit fast >/dev/null 2>&1",
		TLM_BIN " serve --listen nonsense >/dev/null 2>&1",
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int st = system(cmds[i]);

		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 2);
	}
}

/* status of method path with these headers; when want_error, the answer
 * must be a JSON error containing it. */
static void expect(const tlm_h_serve *s, const char *method, const char *path,
		   const char *const *headers, long status, const char *want_error)
{
	json_t *j = NULL;
	long got = call(s, method, path, headers, &j, NULL);
	const char *e = json_string_value(json_object_get(j, "error"));

	if (got != status || (want_error != NULL && (e == NULL || strstr(e, want_error) == NULL)))
		fail_msg("%s %s with %s: %ld %s, expected %ld \"%s\"", method, path,
			 headers && headers[0] ? headers[0] : "-", got, tlm_h_dump(j), status,
			 want_error ? want_error : "");
	json_decref(j);
}

/* Without a key, a loopback server answers only requests meant for this
 * machine: DNS rebinding (a page whose own name resolves to 127.0.0.1)
 * shows in Host, a cross-site call from a page in its Origin (issue 11). */
static void test_dns_rebinding(void **state)
{
	static const char *const evil_host[] = { "Host: evil.example:8080", NULL };
	static const char *const evil_host_plain[] = { "Host: evil.example", NULL };
	static const char *const numeric_other[] = { "Host: 10.0.0.1", NULL };
	static const char *const hosts_ok[][2] = { { "Host: localhost", NULL },
						   { "Host: LOCALHOST:1234", NULL },
						   { "Host: 127.0.0.1", NULL },
						   { "Host: 127.0.0.2:80", NULL },
						   { "Host: [::1]:8080", NULL } };
	static const char *const evil_origin[] = { "Origin: http://evil.example", NULL };
	static const char *const null_origin[] = { "Origin: null", NULL };
	static const char *const local_origin[] = { "Origin: http://localhost:3000", NULL };
	static const char *const local_origin_ip[] = { "Origin: https://127.0.0.1", NULL };
	static const char *const both_evil[] = { "Host: evil.example",
						 "Origin: http://evil.example", NULL };
	json_t *j = NULL;
	size_t i;
	(void)state;

	tlm_h_serve_start(&srv, NULL);
	expect(&srv, "GET", "/v1/agents", evil_host, 421, "Host \"evil.example:8080\" is not this");
	expect(&srv, "GET", "/v1/agents", evil_host_plain, 421, "DNS rebinding");
	expect(&srv, "GET", "/v1/agents", numeric_other, 421, "is not this server");
	expect(&srv, "POST", "/v1/agents", evil_host, 421, NULL);
	expect(&srv, "POST", "/v1/chaos/fail", evil_host, 421, NULL);
	expect(&srv, "GET", "/v1/nothing", evil_host, 421, NULL);
	expect(&srv, "GET", "/v1/agents", evil_origin, 403, "cross-origin request");
	expect(&srv, "GET", "/v1/agents", null_origin, 403, "\"null\" refused");
	expect(&srv, "DELETE", "/v1/chaos/f1", evil_origin, 403, NULL);
	expect(&srv, "GET", "/v1/agents", both_evil, 421, NULL);
	/* Health stays open, as it does with auth. */
	expect(&srv, "GET", "/health", both_evil, 200, NULL);
	expect(&srv, "GET", "/v1/health", evil_host, 200, NULL);
	for (i = 0; i < sizeof(hosts_ok) / sizeof(hosts_ok[0]); i++)
		expect(&srv, "GET", "/v1/agents", hosts_ok[i], 200, NULL);
	expect(&srv, "GET", "/v1/agents", local_origin, 200, NULL);
	expect(&srv, "GET", "/v1/agents", local_origin_ip, 200, NULL);
	expect(&srv, "GET", "/v1/agents", NULL, 200, NULL); /* curl's Host: 127.0.0.1:PORT */
	/* Nothing refused was carried out. */
	assert_int_equal(call(&srv, "GET", "/v1/agents", NULL, &j, NULL), 200);
	assert_int_equal(tlm_h_int(j, "total"), 0);
	json_decref(j);
	assert_int_equal(call(&srv, "GET", "/v1/chaos", NULL, &j, NULL), 200);
	assert_int_equal(json_array_size(json_object_get(j, "faults")), 0);
	json_decref(j);
}

/* With a key, the key is the protection (a page cannot know it, nor send
 * it cross-site without a preflight this server never grants): any Host and
 * Origin are served, as behind a reverse proxy. */
static void test_rebinding_with_key(void **state)
{
	static const char *const args[] = { "--api-key", KEY, NULL };
	static const char *const evil_keyed[] = { "Host: evil.example",
						  "Origin: http://evil.example",
						  "Authorization: Bearer " KEY, NULL };
	static const char *const evil_unkeyed[] = { "Host: evil.example", NULL };
	(void)state;

	tlm_h_serve_start(&srv, args);
	expect(&srv, "GET", "/v1/agents", evil_keyed, 200, NULL);
	expect(&srv, "GET", "/v1/agents", evil_unkeyed, 401, "unauthorized");
}

/* Exits 2 with a message containing want, and shows no part of the key
 * (whose distinctive part is KEY_MARK) anywhere. */
#define KEY_MARK "Zq7xKEYPART"
static void refuses_key(const char *const *args, const char *const *env, const char *want)
{
	char *out = NULL, *err = NULL;
	int rc = tlm_h_serve_run(args, env, 5000, &out, &err);

	if (rc != 2 || strstr(err, want) == NULL)
		fail_msg("serve %s %s: exit %d (want 2), stderr \"%s\" (want \"%s\")",
			 args[0] ? args[0] : "", env && env[0] ? env[0] : "", rc, err, want);
	assert_null(strstr(err, KEY_MARK));
	assert_null(strstr(out, KEY_MARK));
	assert_null(strstr(err, "auth on"));
	free(out);
	free(err);
}

/* An empty or blank key is an error, never "no auth" (issue 11): from the
 * flag, the environment and a key file, whatever the key file's later lines
 * hold.  The key is never printed. */
static void test_blank_keys(void **state)
{
	static const char *const listen[] = { "--listen", "127.0.0.1:0", NULL };
	static const char *const no_env[] = { "AGAMEMNON_API_KEY", "AGAMEMNON_API_KEY_FILE", NULL };
	static const char *const empty_flag[] = { "--listen", "127.0.0.1:0", "--api-key", "",
						  NULL };
	static const char *const padded_flag[] = { "--listen", "127.0.0.1:0", "--api-key",
						   " " KEY_MARK " ", NULL };
	static const char *const empty_env[] = { "AGAMEMNON_API_KEY=", "AGAMEMNON_API_KEY_FILE",
						 NULL };
	static const char *const blank_env[] = { "AGAMEMNON_API_KEY= \t ", "AGAMEMNON_API_KEY_FILE",
						 NULL };
	static const char *const files[] = { "", "\n" KEY_MARK "\n", "   \n", "\t\r\n" };
	char path[] = "/tmp/tlm-test-key-XXXXXX", file_env[64];
	const char *const env_file[] = { file_env, "AGAMEMNON_API_KEY", NULL };
	const char *const flag_file[] = { "--listen", "127.0.0.1:0", "--api-key-file", path, NULL };
	size_t i;
	int fd;
	(void)state;

	refuses_key(empty_flag, no_env, "--api-key: the API key is empty");
	refuses_key(padded_flag, no_env, "--api-key: the API key starts or ends with white space");
	refuses_key(listen, empty_env, "AGAMEMNON_API_KEY: the API key is empty");
	refuses_key(listen, blank_env, "AGAMEMNON_API_KEY: the API key is blank");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	snprintf(file_env, sizeof(file_env), "AGAMEMNON_API_KEY_FILE=%s", path);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs(files[i], f);
		fclose(f);
		refuses_key(flag_file, no_env, "(first line): the API key is");
		refuses_key(listen, env_file, "(first line): the API key is");
	}
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_bad_settings),
		cmocka_unit_test(test_blank_keys),
		cmocka_unit_test_teardown(test_dns_rebinding, teardown),
		cmocka_unit_test_teardown(test_rebinding_with_key, teardown),
	};

	return cmocka_run_group_tests_name("serve.auth", tests, NULL, NULL);
}
