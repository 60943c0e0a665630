/* Auth (Bearer or X-API-Key, health exempt, auth before routing) and the
 * rate limiter (429 + Retry-After) of `telemachy serve`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness/harness.h"
#include "harness/serve.h"

#define KEY "s3cret-key-for-tests"

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
	};

	return cmocka_run_group_tests_name("serve.auth", tests, NULL, NULL);
}
