/* `telemachy serve` over real HTTP: every endpoint of the contract with its
 * JSON shape and status codes, validation, paging, 404/405/413. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/serve.h"

static tlm_h_serve srv;

static int setup(void **state)
{
	(void)state;
	tlm_h_serve_start(&srv, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_serve_stop(&srv);
	return 0;
}

/* Creates an agent; returns its id (caller frees). */
static char *make_agent(const char *name)
{
	char body[256];
	json_t *j = NULL;
	char *id;

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"program\":\"none\"}", name);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/agents", body, &j), 201);
	id = strdup(tlm_h_str(j, "id"));
	json_decref(j);
	return id;
}

static void test_health_and_version(void **state)
{
	json_t *j = NULL;
	(void)state;

	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/health", NULL, &j), 200);
	assert_string_equal(tlm_h_str(j, "status"), "ok");
	assert_string_equal(tlm_h_str(json_object_get(j, "nats"), "state"), "disabled");
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "GET", "/health", NULL, NULL), 200);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/version", NULL, &j), 200);
	assert_string_equal(tlm_h_str(j, "name"), "telemachy");
	assert_non_null(json_object_get(j, "version"));
	json_decref(j);
}

static void test_agent_lifecycle(void **state)
{
	const char *body =
		"{\"name\":\"tlm-r1-dev\",\"label\":\"dev\",\"program\":\"claude-code\","
		"\"programArgs\":[\"--model\",\"opus\"],\"workingDirectory\":\"/tmp\","
		"\"taskDescription\":\"d\",\"tags\":[\"a\"],\"owner\":\"o\",\"role\":\"r\","
		"\"host\":\"local\",\"bogus\":1}";
	json_t *j = NULL, *a;
	char path[256], *id;
	(void)state;

	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/agents", body, &j), 201);
	a = json_object_get(j, "agent");
	id = strdup(tlm_h_str(j, "id"));
	assert_string_equal(tlm_h_str(a, "id"), id);
	assert_string_equal(tlm_h_str(a, "name"), "tlm-r1-dev");
	assert_string_equal(tlm_h_str(a, "status"), "offline");
	assert_int_equal(json_array_size(json_object_get(a, "programArgs")), 2);
	assert_null(json_object_get(a, "bogus")); /* unknown keys dropped */
	assert_non_null(json_object_get(a, "createdAt"));
	json_decref(j);

	snprintf(path, sizeof(path), "/v1/agents/%s", id);
	assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &j), 200);
	assert_string_equal(tlm_h_str(json_object_get(j, "agent"), "label"), "dev");
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/agents/by-name/tlm-r1-dev", NULL, &j), 200);
	assert_string_equal(tlm_h_str(json_object_get(j, "agent"), "id"), id);
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/agents/by-name/nobody", NULL, &j), 404);
	assert_non_null(json_object_get(j, "error"));
	json_decref(j);

	assert_int_equal(tlm_h_req(&srv, "PATCH", path, "{\"label\":\"new\"}", &j), 200);
	assert_string_equal(tlm_h_str(json_object_get(j, "agent"), "label"), "new");
	assert_string_equal(tlm_h_str(json_object_get(j, "agent"), "name"), "tlm-r1-dev");
	json_decref(j);

	snprintf(path, sizeof(path), "/v1/agents/%s/start", id);
	assert_int_equal(tlm_h_req(&srv, "POST", path, NULL, &j), 200);
	assert_string_equal(tlm_h_str(j, "status"), "online");
	assert_string_equal(tlm_h_str(j, "id"), id);
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "POST", path, NULL, NULL), 200); /* idempotent */
	snprintf(path, sizeof(path), "/v1/agents/%s/stop", id);
	assert_int_equal(tlm_h_req(&srv, "POST", path, NULL, &j), 200);
	assert_string_equal(tlm_h_str(j, "status"), "offline");
	json_decref(j);

	snprintf(path, sizeof(path), "/v1/agents/%s", id);
	assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, &j), 200);
	assert_string_equal(tlm_h_str(j, "deleted"), id);
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, NULL), 404);
	assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, NULL), 404);
	snprintf(path, sizeof(path), "/v1/agents/%s/start", id);
	assert_int_equal(tlm_h_req(&srv, "POST", path, NULL, NULL), 404);
	free(id);
}

static void test_agent_validation(void **state)
{
	static const char *const bad[] = {
		"{}",                                      /* name required */
		"{\"name\":\"   \"}",                      /* blank */
		"{\"name\":42}",                           /* wrong type: 400, never 500 */
		"{\"name\":\"a\",\"programArgs\":\"-x\"}", /* a string, not a list */
		"{\"name\":\"a\",\"programArgs\":[1]}",
		"{\"name\":\"a\",\"tags\":{}}",
		"{\"name\":\"a\"", /* invalid JSON */
		"[\"name\"]",      /* not an object */
		"",                /* empty */
	};
	char big[300], body[400];
	json_t *j = NULL;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tlm_h_req(&srv, "POST", "/v1/agents", bad[i], &j), 400);
		assert_non_null(json_string_value(json_object_get(j, "error")));
		json_decref(j);
	}
	memset(big, 'x', 257);
	big[257] = '\0';
	snprintf(body, sizeof(body), "{\"name\":\"%s\"}", big);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/agents", body, &j), 400);
	assert_non_null(strstr(tlm_h_str(j, "error"), "at most 256"));
	json_decref(j);
}

static void test_body_limit(void **state)
{
	size_t n = (1u << 20) + 100, i;
	char *body = malloc(n + 1);
	json_t *j = NULL;
	(void)state;

	memcpy(body, "{\"name\":\"", 9);
	for (i = 9; i < n - 2; i++)
		body[i] = 'a';
	memcpy(body + n - 2, "\"}", 3);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/agents", body, &j), 413);
	assert_null(j); /* empty body, as upstream */
	free(body);
}

static void test_paging(void **state)
{
	json_t *j = NULL, *seen = json_object();
	size_t i, off, total = 0;
	char path[128];
	(void)state;

	for (i = 0; i < 130; i++) {
		char name[32], *id;

		snprintf(name, sizeof(name), "page-%zu", i);
		id = make_agent(name);
		free(id);
	}
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/agents", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "limit")), 100);
	assert_int_equal(json_array_size(json_object_get(j, "agents")), 100);
	total = (size_t)json_integer_value(json_object_get(j, "total"));
	assert_true(total >= 130);
	json_decref(j);
	for (off = 0; off < total; off += 50) {
		json_t *a;
		const char *prev = "";

		snprintf(path, sizeof(path), "/v1/agents?limit=50&offset=%zu", off);
		assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &j), 200);
		assert_int_equal(json_integer_value(json_object_get(j, "offset")), (json_int_t)off);
		json_array_foreach(json_object_get(j, "agents"), i, a)
		{
			assert_true(strcmp(prev, tlm_h_str(a, "id")) < 0); /* sorted by id */
			prev = tlm_h_str(a, "id");
			json_object_set_new(seen, prev, json_true());
		}
		json_decref(j);
	}
	assert_int_equal(json_object_size(seen), total); /* every agent once */
	json_decref(seen);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/agents?limit=5000", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "limit")), 1000); /* clamped */
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/agents?limit=abc", NULL, NULL), 400);
}

static void test_teams(void **state)
{
	char *a1 = make_agent("team-a1"), *a2 = make_agent("team-a2");
	char body[256], path[256], *tid;
	json_t *j = NULL, *t;
	(void)state;

	snprintf(body, sizeof(body), "{\"name\":\"tlm-r1-core\",\"agentIds\":[\"%s\",\"%s\"]}", a1,
		 a2);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/teams", body, &j), 201);
	t = json_object_get(j, "team");
	tid = strdup(tlm_h_str(t, "id"));
	assert_string_equal(tlm_h_str(t, "name"), "tlm-r1-core");
	assert_int_equal(json_array_size(json_object_get(t, "agentIds")), 2);
	assert_non_null(json_object_get(t, "createdAt"));
	assert_non_null(json_object_get(t, "updatedAt"));
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/teams", "{\"agentIds\":[]}", NULL), 400);
	assert_int_equal(
		tlm_h_req(&srv, "POST", "/v1/teams", "{\"name\":\"x\",\"agentIds\":[1]}", NULL),
		400);

	snprintf(path, sizeof(path), "/v1/teams/%s", tid);
	assert_int_equal(tlm_h_req(&srv, "PUT", path, "{\"agentIds\":[]}", &j), 200);
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "team"), "agentIds")),
			 0);
	assert_string_equal(tlm_h_str(json_object_get(j, "team"), "name"), "tlm-r1-core");
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/teams", NULL, &j), 200);
	assert_true(json_integer_value(json_object_get(j, "total")) >= 1);
	assert_true(json_is_array(json_object_get(j, "teams")));
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, &j), 200);
	assert_string_equal(tlm_h_str(j, "deleted"), tid);
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, NULL), 404);
	free(tid);
	free(a1);
	free(a2);
}

static char *make_team(const char *name)
{
	char body[256], *id;
	json_t *j = NULL;

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"agentIds\":[]}", name);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/teams", body, &j), 201);
	id = strdup(tlm_h_str(json_object_get(j, "team"), "id"));
	json_decref(j);
	return id;
}

static void test_tasks(void **state)
{
	static const char *const keys[] = { "id",          "teamId",          "subject",
					    "description", "assigneeAgentId", "blockedBy",
					    "type",        "status",          "createdAt",
					    "updatedAt",   "completedAt",     NULL };
	char *team = make_team("tasks-team"), *agent = make_agent("tasks-agent");
	char body[512], path[256], *kid;
	const char *const *k;
	json_t *j = NULL, *t;
	(void)state;

	snprintf(path, sizeof(path), "/v1/teams/%s/tasks", team);
	snprintf(body, sizeof(body),
		 "{\"subject\":\"Build\",\"description\":\"b\",\"assigneeAgentId\":\"%s\","
		 "\"blockedBy\":[],\"type\":\"implementation\"}",
		 agent);
	assert_int_equal(tlm_h_req(&srv, "POST", path, body, &j), 201);
	t = json_object_get(j, "task");
	for (k = keys; *k; k++)
		if (json_object_get(t, *k) == NULL)
			fail_msg("task has no \"%s\"", *k);
	assert_string_equal(tlm_h_str(t, "status"), "pending");
	assert_string_equal(tlm_h_str(t, "teamId"), team);
	assert_true(json_is_null(json_object_get(t, "completedAt")));
	kid = strdup(tlm_h_str(t, "id"));
	json_decref(j);

	assert_int_equal(tlm_h_req(&srv, "POST", path, "{\"subject\":\" \"}", NULL), 400);
	assert_int_equal(
		tlm_h_req(&srv, "POST", path, "{\"subject\":\"x\",\"type\":\"bogus\"}", NULL), 400);
	assert_int_equal(
		tlm_h_req(&srv, "POST", path, "{\"subject\":\"x\",\"blockedBy\":\"y\"}", NULL),
		400);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/teams/no-such-team/tasks",
				   "{\"subject\":\"x\"}", NULL),
			 404);

	assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/teams/%s/tasks/%s", team, kid);
	assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &j), 200);
	assert_string_equal(tlm_h_str(json_object_get(j, "task"), "subject"), "Build");
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "PATCH", path, "{\"status\":\"running\"}", &j), 200);
	assert_string_equal(tlm_h_str(json_object_get(j, "task"), "status"), "running");
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "PUT", path, "{\"status\":\"done\"}", NULL), 400);

	snprintf(path, sizeof(path), "/v1/tasks/%s/complete", kid);
	assert_int_equal(tlm_h_req(&srv, "POST", path, "{}", &j), 200);
	assert_true(json_is_true(json_object_get(j, "completed")));
	assert_string_equal(tlm_h_str(j, "task_id"), kid);
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/teams/%s/tasks/%s", team, kid);
	assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &j), 200);
	assert_string_equal(tlm_h_str(json_object_get(j, "task"), "status"), "completed");
	assert_non_null(
		json_string_value(json_object_get(json_object_get(j, "task"), "completedAt")));
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/tasks/nope/complete", "{}", NULL), 404);

	/* Deleting a team leaves its tasks, as upstream. */
	snprintf(path, sizeof(path), "/v1/teams/%s", team);
	assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, NULL), 200);
	snprintf(path, sizeof(path), "/v1/teams/%s/tasks", team);
	assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
	json_decref(j);
	free(kid);
	free(team);
	free(agent);
}

static void test_unknown_paths(void **state)
{
	json_t *j = NULL;
	(void)state;

	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/nothing", NULL, &j), 404);
	assert_null(j); /* empty body, as upstream */
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/agents/", NULL, NULL), 404);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/agents/a/b/c/d/e/f/g/h/i", NULL, NULL), 404);
	/* a known path with the wrong method: 405 (upstream says 404) */
	assert_int_equal(tlm_h_req(&srv, "PUT", "/v1/agents", "{}", &j), 405);
	assert_non_null(json_object_get(j, "error"));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health_and_version),
		cmocka_unit_test(test_agent_lifecycle),
		cmocka_unit_test(test_agent_validation),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_paging),
		cmocka_unit_test(test_teams),
		cmocka_unit_test(test_tasks),
		cmocka_unit_test(test_unknown_paths),
	};

	return cmocka_run_group_tests_name("serve.rest", tests, setup, teardown);
}
