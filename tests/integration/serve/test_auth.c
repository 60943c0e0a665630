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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_bad_settings),
	};

	return cmocka_run_group_tests_name("serve.auth", tests, NULL, NULL);
}
