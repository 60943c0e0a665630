/* The "hooks" section of the spec (docs/hooks.md): what loads, and every
 * error with its rule and file:line:col. */
#include <stdlib.h>

#include "unit/spec_helpers.h"

#define HOOKS SPEC_HEAD "hooks:\n"

static void test_valid(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	assert_int_equal(
		parse_yaml(HOOKS "  - event: task_failed\n"
				 "    command: [notify, --run, 3]\n"
				 "  - event: run_completed\n"
				 "    url: https://hooks.example.com/tlm\n"
				 "    secret_file: /etc/tlm/hook.key\n"
				 "    timeout_seconds: 600\n"
				 "  - {event: teardown_failed, url: \"http://127.0.0.1:8080/x\"}\n"
				 "  - {event: run_cancelled, url: \"http://[::1]/x\"}\n"
				 "  - {event: task_skipped, url: \"http://LocalHost:1\"}\n",
			   &spec, &d),
		0);
	assert_int_equal(spec->nhooks, 5);
	assert_int_equal(spec->hooks[0].event, TLM_HOOK_TASK_FAILED);
	assert_int_equal(spec->hooks[0].nargv, 3);
	assert_string_equal(spec->hooks[0].argv[0], "notify");
	assert_string_equal(spec->hooks[0].argv[2], "3");
	assert_null(spec->hooks[0].argv[3]);
	assert_null(spec->hooks[0].url);
	assert_int_equal(spec->hooks[0].timeout_seconds, TLM_SPEC_HOOK_TIMEOUT_DEFAULT);
	assert_int_equal(spec->hooks[0].pos.line, 5);
	assert_int_equal(spec->hooks[1].event, TLM_HOOK_RUN_COMPLETED);
	assert_string_equal(spec->hooks[1].url, "https://hooks.example.com/tlm");
	assert_string_equal(spec->hooks[1].secret_file, "/etc/tlm/hook.key");
	assert_int_equal(spec->hooks[1].timeout_seconds, 600);
	assert_null(spec->hooks[1].argv);
	assert_int_equal(spec->hooks[2].event, TLM_HOOK_TEARDOWN_FAILED);
	assert_int_equal(spec->hooks[3].event, TLM_HOOK_RUN_CANCELLED);
	assert_int_equal(spec->hooks[4].event, TLM_HOOK_TASK_SKIPPED);
	tlm_spec_free(spec);
	tlm_diags_clear(&d);
	/* An empty list is no hooks. */
	assert_int_equal(parse_yaml(SPEC_HEAD "hooks: []\n", &spec, &d), 0);
	assert_int_equal(spec->nhooks, 0);
	tlm_spec_free(spec);
}

static void test_events(void **state)
{
	tlm_hook_event e;
	int i;
	(void)state;

	for (i = 0; i < TLM_HOOK_EVENTS; i++) {
		assert_int_equal(tlm_hook_event_parse(tlm_hook_event_name((tlm_hook_event)i), &e),
				 0);
		assert_int_equal(e, i);
	}
	assert_string_equal(tlm_hook_event_name(TLM_HOOK_EVENTS), "?");
	assert_int_equal(tlm_hook_event_parse("task_done", &e), TLM_EINVALID);
	assert_int_equal(tlm_hook_event_parse("", &e), TLM_EINVALID);
}

static void test_errors(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	/* A bad event, with the list of good ones. */
	expect_errors(HOOKS "  - event: task_done\n    command: [x]\n", 1, &d);
	assert_diag(&d, 5, 12, "enum", "\"event\" of hooks[0] must be one of task_completed");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - command: [x]\n", 1, &d);
	assert_diag(&d, 5, 5, "required", "hooks[0] is missing required key \"event\"");
	tlm_diags_clear(&d);
	/* Both, and neither. */
	expect_errors(HOOKS "  - event: run_failed\n    command: [x]\n    url: https://h/\n", 1,
		      &d);
	assert_diag(&d, 7, 10, "hook-kind", "has both \"command\" and \"url\"");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n", 1, &d);
	assert_diag(&d, 5, 5, "hook-kind", "needs a \"command\"");
	tlm_diags_clear(&d);
	/* Plain HTTP off loopback, and other bad URLs. */
	expect_errors(HOOKS "  - event: run_failed\n    url: http://hooks.example.com/x\n", 1, &d);
	assert_diag(&d, 6, 10, "hook-url", "must use https:// for a host that is not loopback");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n    url: http://127.0.0.1.evil.com/\n", 1, &d);
	assert_diag(&d, 6, 10, "hook-url", "must use https://");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n    url: http://localhost@evil.com/\n", 1, &d);
	assert_diag(&d, 6, 10, "hook-url", "must not hold a user or password");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n    url: ftp://h/\n", 1, &d);
	assert_diag(&d, 6, 10, "hook-url", "must start with https://");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n    url: https:///x\n", 1, &d);
	assert_diag(&d, 6, 10, "hook-url", "has no host");
	tlm_diags_clear(&d);
	/* Timeouts. */
	expect_errors(HOOKS "  - event: run_failed\n    command: [x]\n    timeout_seconds: 0\n", 1,
		      &d);
	assert_diag(&d, 7, 22, "range", "must be between 1 and 600, got 0");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n    command: [x]\n    timeout_seconds: 601\n",
		      1, &d);
	assert_diag(&d, 7, 22, "range", "must be between 1 and 600, got 601");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n    command: [x]\n    timeout_seconds: \"5\"\n",
		      1, &d);
	assert_diag(&d, 7, 22, "type", "must be an integer");
	tlm_diags_clear(&d);
	/* Commands. */
	expect_errors(HOOKS "  - event: run_failed\n    command: []\n", 1, &d);
	assert_diag(&d, 6, 14, "hook-command", "must have 1 to 256 entries");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n    command: /bin/true\n", 1, &d);
	assert_diag(&d, 6, 14, "type", "\"command\" of a hook must be a list");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n    command: [\"\", x]\n", 1, &d);
	assert_diag(&d, 6, 15, "hook-command", "the program of hooks[0] must not be empty");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n    command: [x, [y]]\n", 1, &d);
	assert_diag(&d, 6, 18, "type", "\"command\" entries must be a string");
	tlm_diags_clear(&d);
	/* secret_file: webhooks only, absolute. */
	expect_errors(HOOKS "  - event: run_failed\n    command: [x]\n    secret_file: /k\n", 1,
		      &d);
	assert_diag(&d, 7, 18, "hook-kind", "a command hook has none");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - event: run_failed\n    url: https://h/\n    secret_file: k\n", 1,
		      &d);
	assert_diag(&d, 7, 18, "hook-secret-file", "must be an absolute path");
	tlm_diags_clear(&d);
	/* Unknown keys, and shapes. */
	expect_errors(HOOKS "  - event: run_failed\n    command: [x]\n    timeout: 3\n", 1, &d);
	assert_diag(&d, 7, 5, "unknown-key", "unknown key \"timeout\" in hooks[0]");
	tlm_diags_clear(&d);
	expect_errors(SPEC_HEAD "hooks: {event: run_failed}\n", 1, &d);
	assert_diag(&d, 4, 8, "type", "\"hooks\" must be a list");
	tlm_diags_clear(&d);
	expect_errors(HOOKS "  - run_failed\n", 1, &d);
	assert_diag(&d, 5, 5, "type", "a hook must be a map");
	tlm_diags_clear(&d);
}

static void test_too_many(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	char *yaml = malloc(8192);
	size_t n = 0;
	int i;
	(void)state;

	assert_non_null(yaml);
	n += (size_t)snprintf(yaml + n, 8192 - n, "%s", HOOKS);
	for (i = 0; i <= TLM_SPEC_HOOKS_MAX; i++)
		n += (size_t)snprintf(yaml + n, 8192 - n,
				      "  - {event: run_failed, command: [x]}\n");
	expect_errors(yaml, 1, &d);
	assert_diag(&d, 5, 3, "too-many", "\"hooks\" has 65 entries; at most 64");
	tlm_diags_clear(&d);
	free(yaml);
}

static void test_url_check(void **state)
{
	char why[160];
	(void)state;

	assert_int_equal(tlm_hook_url_check("https://example.com", why, sizeof(why)), 0);
	assert_int_equal(tlm_hook_url_check("HTTPS://example.com:8443/a?b#c", why, sizeof(why)), 0);
	assert_int_equal(tlm_hook_url_check("http://127.255.0.1:9/", why, sizeof(why)), 0);
	assert_int_equal(tlm_hook_url_check("http://localhost", why, sizeof(why)), 0);
	assert_int_equal(tlm_hook_url_check("http://[::1]:80/", why, sizeof(why)), 0);
	assert_int_equal(tlm_hook_url_check("http://128.0.0.1/", why, sizeof(why)), TLM_EINVALID);
	assert_int_equal(tlm_hook_url_check("http://127.0.0.256/", why, sizeof(why)), TLM_EINVALID);
	assert_int_equal(tlm_hook_url_check("http://[::2]/", why, sizeof(why)), TLM_EINVALID);
	assert_int_equal(tlm_hook_url_check("http://localhost.evil/", why, sizeof(why)),
			 TLM_EINVALID);
	assert_int_equal(tlm_hook_url_check("http://0x7f.0.0.1/", why, sizeof(why)), TLM_EINVALID);
	assert_int_equal(tlm_hook_url_check("https://a b/", why, sizeof(why)), TLM_EINVALID);
	assert_int_equal(tlm_hook_url_check("https://u:p@h/", why, sizeof(why)), TLM_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),     cmocka_unit_test(test_events),
		cmocka_unit_test(test_errors),    cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_url_check),
	};

	return cmocka_run_group_tests_name("spec.hooks", tests, NULL, NULL);
}
