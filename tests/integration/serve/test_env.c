/* The environment the real `telemachy serve` gives agent programs (issue
 * 11): started with its own credentials in its environment (an API key,
 * NATS credentials, a proxy with a password, some SECRET_X), it runs a
 * program that dumps its environment to a file, and none of them is there;
 * the allow-listed variables, --pass-env names, the agent's env and the
 * TLM_* variables are.  Every wait is bounded (10 s). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/serve.h"

#define KEY     "env-test-Zq7xAPIKEY"
#define WAIT_MS 10000

static tlm_h_serve srv;
static char *dir;

static int setup(void **state)
{
	(void)state;
	dir = tlm_h_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (srv.pid > 0 || srv.state_dir != NULL)
		tlm_h_serve_stop(&srv);
	tlm_h_rmrf(dir);
	free(dir);
	dir = NULL;
	return 0;
}

/* An authenticated request that must answer want; returns the JSON answer
 * (caller decrefs). */
static json_t *call(const char *method, const char *path, json_t *body, long want)
{
	static const char *const auth[] = { "Authorization: Bearer " KEY, NULL };
	char url[512], *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_t *j = NULL;
	int code = 0;
	long got;

	json_decref(body);
	snprintf(url, sizeof(url), "%s%s", srv.url, path);
	got = tlm_h_http(method, url, text, auth, &j, NULL, &code);
	free(text);
	if (code != 0 || got != want)
		fail_msg("%s %s: %ld (curl %d), expected %ld: %s", method, path, got, code, want,
			 tlm_h_dump(j));
	return j;
}

/* The whole file, or NULL (caller frees). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	tlm_h_body b = { NULL, 0 };
	char buf[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		tlm_h_curl_body(buf, 1, n, &b);
	fclose(f);
	return b.data != NULL ? b.data : strdup("");
}

/* Does text have the line "NAME=..." (prefix "NAME=") or exactly line? */
static int has_line(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	while (p != NULL) {
		if (strncmp(p, prefix, n) == 0 && (prefix[n - 1] == '=' || p[n] == '\n'))
			return 1;
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return 0;
}

/* Creates an agent running `env > FILE`, gives it a task, starts it and
 * waits for the task to complete; returns the file's content. */
static char *env_of_a_program(void)
{
	char out[600], path[256], *text;
	const char *agent, *team, *task;
	json_t *a, *t, *k, *got;
	int64_t end = tlm_h_now_ms() + WAIT_MS;

	snprintf(out, sizeof(out), "env > '%s/env.txt'", dir);
	a = call("POST", "/v1/agents",
		 json_pack("{s:s,s:s,s:[s,s],s:s,s:{s:s,s:s}}", "name", "tlm-env-dump", "program",
			   "/bin/sh", "programArgs", "-c", out, "workingDirectory", dir, "env",
			   "AGENT_VAR", "from-the-agent", "TZ", "Europe/Paris"),
		 201);
	agent = tlm_h_str(a, "id");
	t = call("POST", "/v1/teams",
		 json_pack("{s:s,s:[s]}", "name", "tlm-env", "agentIds", agent), 201);
	team = tlm_h_str(json_object_get(t, "team"), "id");
	snprintf(path, sizeof(path), "/v1/teams/%s/tasks", team);
	k = call("POST", path,
		 json_pack("{s:s,s:s,s:s}", "subject", "dump", "description", "d",
			   "assigneeAgentId", agent),
		 201);
	task = tlm_h_str(json_object_get(k, "task"), "id");
	snprintf(path, sizeof(path), "/v1/agents/%s/start", agent);
	json_decref(call("POST", path, NULL, 200));
	snprintf(path, sizeof(path), "/v1/teams/%s/tasks/%s", team, task);
	for (;;) {
		const char *st;

		got = call("GET", path, NULL, 200);
		st = tlm_h_str(json_object_get(got, "task"), "status");
		if (strcmp(st, "completed") == 0)
			break;
		if (strcmp(st, "failed") == 0 || tlm_h_now_ms() > end)
			fail_msg("task: %s", tlm_h_dump(got));
		json_decref(got);
		tlm_h_sleep_ms(20);
	}
	json_decref(got);
	snprintf(out, sizeof(out), "%s/env.txt", dir);
	text = slurp(out);
	assert_non_null(text);
	json_decref(k);
	json_decref(t);
	json_decref(a);
	return text;
}

static void test_no_secrets(void **state)
{
	static const char *const args[] = { "--pass-env", "TLM_TEST_PASSED", "--pass-env",
					    "TLM_TEST_PFX_*", NULL };
	const char *const env[] = { "AGAMEMNON_API_KEY=" KEY,
				    "AGAMEMNON_API_KEY_FILE",
				    "NATS_CREDS=/etc/nats/Zq7xNATS.creds",
				    "NATS_URL=nats://user:Zq7xNATSPW@127.0.0.1:1",
				    "SECRET_X=Zq7xSECRET",
				    "HTTPS_PROXY=http://user:Zq7xPROXYPW@proxy:3128",
				    "AWS_SECRET_ACCESS_KEY=Zq7xAWS",
				    "TERM=xterm-256color",
				    "TLM_TEST_OTHER=Zq7xNOTPASSED",
				    "TLM_TEST_PASSED=passed-by-name",
				    "TLM_TEST_PFX_ONE=passed-by-prefix",
				    "HOME=/tmp/tlm-env-home",
				    "USER=tlm-env-user",
				    "LOGNAME=tlm-env-user",
				    "LANG=C.UTF-8",
				    "LC_TIME=C",
				    "TZ=UTC",
				    NULL };
	char *text;
	(void)state;

	tlm_h_serve_start_env(&srv, args, env);
	text = env_of_a_program();
	/* The server's credentials, and anything not allowed, are absent. */
	if (strstr(text, "Zq7x") != NULL)
		fail_msg("a secret of the server reached the program:\n%s", text);
	assert_false(has_line(text, "AGAMEMNON_API_KEY="));
	assert_false(has_line(text, "NATS_CREDS="));
	assert_false(has_line(text, "NATS_URL="));
	assert_false(has_line(text, "SECRET_X="));
	assert_false(has_line(text, "HTTPS_PROXY="));
	assert_false(has_line(text, "TERM="));
	assert_false(has_line(text, "TLM_TEST_OTHER="));
	/* The allow-list, --pass-env, the agent's env (over the server's), TLM_*. */
	assert_true(has_line(text, "HOME=/tmp/tlm-env-home"));
	assert_true(has_line(text, "USER=tlm-env-user"));
	assert_true(has_line(text, "LOGNAME=tlm-env-user"));
	assert_true(has_line(text, "LANG=C.UTF-8"));
	assert_true(has_line(text, "LC_TIME=C"));
	assert_true(has_line(text, "PATH="));
	assert_true(has_line(text, "TLM_TEST_PASSED=passed-by-name"));
	assert_true(has_line(text, "TLM_TEST_PFX_ONE=passed-by-prefix"));
	assert_true(has_line(text, "AGENT_VAR=from-the-agent"));
	assert_true(has_line(text, "TZ=Europe/Paris"));
	assert_true(has_line(text, "TLM_AGENT_NAME=tlm-env-dump"));
	assert_true(has_line(text, "TLM_TASK_ID="));
	free(text);
}

/* A bad --pass-env is a usage error. */
static void test_bad_pass_env(void **state)
{
	static const char *const bad[][3] = { { "--pass-env", "*", NULL },
					      { "--pass-env", "A-B", NULL },
					      { "--pass-env", "1X", NULL },
					      { "--pass-env", "X*Y", NULL } };
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;
		int rc = tlm_h_serve_run(bad[i], NULL, 5000, NULL, &err);

		if (rc != 2 || strstr(err, "--pass-env wants a variable name") == NULL)
			fail_msg("--pass-env %s: exit %d, stderr \"%s\"", bad[i][1], rc, err);
		free(err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_secrets, setup, teardown),
		cmocka_unit_test(test_bad_pass_env),
	};

	return cmocka_run_group_tests_name("serve.env", tests, NULL, NULL);
}
