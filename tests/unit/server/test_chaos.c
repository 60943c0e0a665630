/* Fault injection: every type and parameter, the nth/count counting, routes,
 * both input forms and their errors, the list, windows and threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "harness/harness.h"

#include "server/chaos.h"

static tlm_chaos *new_chaos(void)
{
	tlm_chaos *c = NULL;

	assert_int_equal(tlm_chaos_new(&c), 0);
	assert_non_null(c);
	return c;
}

/* Adds spec, which must be valid; returns its id in buf. */
static const char *add(tlm_chaos *c, const char *spec)
{
	static char buf[32];
	tlm_error err = TLM_ERROR_INIT;
	char *id = NULL;
	int rc = tlm_chaos_add_spec(c, spec, &id, &err);

	if (rc != 0)
		fail_msg("%s: %s", spec, err.message);
	assert_non_null(id);
	snprintf(buf, sizeof(buf), "%s", id);
	free(id);
	return buf;
}

static tlm_fault_action check(tlm_chaos *c, const char *method, const char *path)
{
	tlm_fault_action a;

	memset(&a, 0x5a, sizeof(a)); /* check() must fill every field */
	tlm_chaos_check(c, method, path, &a);
	return a;
}

static tlm_fault_type check_type(tlm_chaos *c, const char *method, const char *path)
{
	return check(c, method, path).type;
}

/* The listed fault with id (a borrowed reference into list). */
static json_t *listed(json_t *list, const char *id)
{
	size_t i;
	json_t *f;

	json_array_foreach(json_object_get(list, "faults"), i, f)
	{
		if (strcmp(json_string_value(json_object_get(f, "id")), id) == 0)
			return f;
	}
	return NULL;
}

/* An integer field of fault id, as listed now. */
static long long field(tlm_chaos *c, const char *id, const char *key)
{
	json_t *list = tlm_chaos_list(c), *f = listed(list, id), *v;
	long long out;

	assert_non_null(f);
	v = json_object_get(f, key);
	assert_non_null(v);
	out = json_is_boolean(v) ? json_is_true(v) : (long long)json_integer_value(v);
	json_decref(list);
	return out;
}

static void test_fail_defaults(void **state)
{
	tlm_chaos *c = new_chaos();
	tlm_fault_action a;
	const char *id;
	(void)state;

	id = add(c, "fail");
	assert_string_equal(id, "f1");
	a = check(c, "GET", "/v1/agents");
	assert_int_equal(a.type, TLM_FAULT_FAIL);
	assert_int_equal(a.status, 500);
	assert_int_equal(a.retry_after, 0);
	assert_int_equal(a.delay_ms, 0); /* only the fields of the type are set */
	a = check(c, "GET", "/v1/agents");
	assert_int_equal(a.type, TLM_FAULT_NONE);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.retry_after, 0);
	assert_int_equal(a.delay_ms, 0);
	/* Used up: still listed, inactive, and no longer counting calls. */
	assert_int_equal(field(c, "f1", "fired"), 1);
	assert_int_equal(field(c, "f1", "matched"), 1);
	assert_int_equal(field(c, "f1", "active"), 0);
	tlm_chaos_free(c);
}

static void test_fail_status_and_retry_after(void **state)
{
	static const struct {
		const char *spec;
		int status;
		unsigned retry_after;
	} cases[] = {
		{ "fail:status=503", 503, 1 },
		{ "fail:status=429", 429, 1 },
		{ "fail:status=429,retry_after=0", 429, 0 },
		{ "fail:status=429,retry_after=30", 429, 30 },
		{ "fail:status=500,retry_after=7", 500, 7 },
		{ "fail:status=404", 404, 0 },
		{ "fail:status=400", 400, 0 },
		{ "fail:status=599", 599, 0 },
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tlm_chaos *c = new_chaos();
		tlm_fault_action a;

		add(c, cases[i].spec);
		a = check(c, "POST", "/v1/agents");
		assert_int_equal(a.type, TLM_FAULT_FAIL);
		assert_int_equal(a.status, cases[i].status);
		assert_int_equal(a.retry_after, cases[i].retry_after);
		tlm_chaos_free(c);
	}
}

static void test_delay_and_drop(void **state)
{
	tlm_chaos *c = new_chaos();
	tlm_fault_action a;
	(void)state;

	add(c, "delay:ms=250,route=GET /v1/agents");
	add(c, "delay:route=GET /v1/teams");
	add(c, "delay:ms=0,route=GET /v1/tasks");
	add(c, "drop:route=POST /v1/agents");
	a = check(c, "GET", "/v1/agents");
	assert_int_equal(a.type, TLM_FAULT_DELAY);
	assert_int_equal(a.delay_ms, 250);
	a = check(c, "GET", "/v1/teams");
	assert_int_equal(a.type, TLM_FAULT_DELAY);
	assert_int_equal(a.delay_ms, 1000);
	a = check(c, "GET", "/v1/tasks");
	assert_int_equal(a.type, TLM_FAULT_DELAY);
	assert_int_equal(a.delay_ms, 0);
	a = check(c, "POST", "/v1/agents");
	assert_int_equal(a.type, TLM_FAULT_DROP);
	assert_int_equal(check_type(c, "POST", "/v1/agents"), TLM_FAULT_NONE);
	tlm_chaos_free(c);
}

static void test_nth_and_count(void **state)
{
	tlm_chaos *c = new_chaos();
	tlm_fault_type want[] = { TLM_FAULT_NONE, TLM_FAULT_NONE, TLM_FAULT_FAIL,
				  TLM_FAULT_FAIL, TLM_FAULT_NONE, TLM_FAULT_NONE };
	size_t i;
	(void)state;

	add(c, "fail:route=POST /v1/agents,nth=3,count=2");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		/* Calls of other routes do not count. */
		assert_int_equal(check_type(c, "GET", "/v1/agents"), TLM_FAULT_NONE);
		assert_int_equal(check_type(c, "POST", "/v1/teams"), TLM_FAULT_NONE);
		assert_int_equal(check_type(c, "POST", "/v1/agents"), want[i]);
		assert_int_equal(field(c, "f1", "fired"), i < 2 ? 0 : i < 4 ? (long long)i - 1 : 2);
		assert_int_equal(field(c, "f1", "active"), i < 3);
	}
	assert_int_equal(field(c, "f1", "matched"), 4); /* stopped counting when used up */
	tlm_chaos_free(c);
}

static void test_count_zero_is_forever(void **state)
{
	tlm_chaos *c = new_chaos();
	int i;
	(void)state;

	add(c, "fail:nth=2,count=0,status=503");
	assert_int_equal(check_type(c, "GET", "/x"), TLM_FAULT_NONE);
	for (i = 0; i < 1000; i++)
		assert_int_equal(check_type(c, "GET", "/x"), TLM_FAULT_FAIL);
	assert_int_equal(field(c, "f1", "fired"), 1000);
	assert_int_equal(field(c, "f1", "matched"), 1001);
	assert_int_equal(field(c, "f1", "active"), 1);
	assert_int_equal(field(c, "f1", "count"), 0);
	tlm_chaos_free(c);
}

/* Counting starts when the fault is added. */
static void test_counting_starts_at_add(void **state)
{
	tlm_chaos *c = new_chaos();
	(void)state;

	add(c, "delay:route=GET /a,nth=1,count=0");
	assert_int_equal(check_type(c, "GET", "/a"), TLM_FAULT_DELAY);
	assert_int_equal(check_type(c, "GET", "/a"), TLM_FAULT_DELAY);
	add(c, "fail:route=GET /a,nth=2");
	/* f1 was added first, so it wins every call; f2 counts them anyway. */
	assert_int_equal(check_type(c, "GET", "/a"), TLM_FAULT_DELAY);
	assert_int_equal(field(c, "f2", "matched"), 1);
	assert_int_equal(field(c, "f2", "active"), 1);
	tlm_chaos_free(c);
}

static void test_first_added_wins_all_count(void **state)
{
	tlm_chaos *c = new_chaos();
	tlm_fault_action a;
	(void)state;

	add(c, "fail:route=POST /v1/agents,count=2,status=503");
	add(c, "drop:route=* /v1/agents,nth=2");
	add(c, "delay:route=POST /v1/agents,nth=3,ms=5");
	/* Call 1: f1.  Call 2: f1 again; f2's window (call 2) is taken by f1,
	 * so f2 never acts and is used up.  Call 3: f3. */
	a = check(c, "POST", "/v1/agents");
	assert_int_equal(a.type, TLM_FAULT_FAIL);
	assert_int_equal(a.status, 503);
	assert_int_equal(check_type(c, "POST", "/v1/agents"), TLM_FAULT_FAIL);
	assert_int_equal(field(c, "f2", "matched"), 2);
	assert_int_equal(field(c, "f2", "fired"), 0);
	assert_int_equal(field(c, "f2", "active"), 0);
	a = check(c, "POST", "/v1/agents");
	assert_int_equal(a.type, TLM_FAULT_DELAY);
	assert_int_equal(a.delay_ms, 5);
	assert_int_equal(check_type(c, "POST", "/v1/agents"), TLM_FAULT_NONE);
	assert_int_equal(field(c, "f3", "matched"), 3);
	tlm_chaos_free(c);
}

/* A later fault acts when the earlier ones do not cover the call. */
static void test_later_fault_fills_gaps(void **state)
{
	tlm_chaos *c = new_chaos();
	(void)state;

	add(c, "fail:nth=2");
	add(c, "drop:count=0");
	assert_int_equal(check_type(c, "GET", "/a"), TLM_FAULT_DROP);
	assert_int_equal(check_type(c, "GET", "/a"), TLM_FAULT_FAIL);
	assert_int_equal(check_type(c, "GET", "/a"), TLM_FAULT_DROP);
	assert_int_equal(field(c, "f2", "fired"), 2);
	assert_int_equal(field(c, "f2", "matched"), 3);
	tlm_chaos_free(c);
}

static void test_routes(void **state)
{
	static const struct {
		const char *route, *method, *path;
		int hit;
	} cases[] = {
		{ "POST /v1/agents", "POST", "/v1/agents", 1 },
		{ "POST /v1/agents", "GET", "/v1/agents", 0 },
		{ "POST /v1/agents", "POST", "/v1/agents/x", 0 },
		{ "POST /v1/agents", "POST", "/v1/agent", 0 },
		{ "POST /v1/agents", "POST", "/v1/agentsx", 0 },
		{ "POST /v1/agents", "POST", "/v1/agents/", 0 },
		{ "POST /v1/agents", "POST", "/v1/agents?limit=5", 1 },
		{ "post /v1/agents", "POST", "/v1/agents", 1 },
		{ "POST   /v1/agents", "POST", "/v1/agents", 1 },
		{ "POST /v1/agents/*/start", "POST", "/v1/agents/abc-1/start", 1 },
		{ "POST /v1/agents/*/start", "POST", "/v1/agents/abc/stop", 0 },
		{ "POST /v1/agents/*/start", "POST", "/v1/agents//start", 0 },
		{ "POST /v1/agents/*/start", "POST", "/v1/agents/a/b/start", 0 },
		{ "POST /v1/agents/*/start", "POST", "/v1/agents/a/start/x", 0 },
		{ "* /v1/teams/*", "DELETE", "/v1/teams/t1", 1 },
		{ "* /v1/teams/*", "PUT", "/v1/teams/t1", 1 },
		{ "* /v1/teams/*", "GET", "/v1/teams", 0 },
		{ "* /v1/teams/*", "GET", "/v1/teams/t1/tasks", 0 },
		{ "* /v1/teams/*", "GET", "/v1/teams/t1?x=/y", 1 },
		{ "* /v1/teams/**", "GET", "/v1/teams", 1 },
		{ "* /v1/teams/**", "GET", "/v1/teams/t1", 1 },
		{ "* /v1/teams/**", "POST", "/v1/teams/t1/tasks", 1 },
		{ "* /v1/teams/**", "POST", "/v1/teamsx", 0 },
		{ "* /v1/teams/**", "POST", "/v1/agents", 0 },
		{ "GET /**", "GET", "/", 1 },
		{ "GET /**", "GET", "/health", 1 },
		{ "GET /**", "HEAD", "/health", 0 },
		{ "/v1/agents", "PATCH", "/v1/agents", 1 },
		{ "/v1/agents", "PATCH", "/v1/teams", 0 },
		{ "GET /", "GET", "/", 1 },
		{ "GET /", "GET", "/health", 0 },
		{ "GET /*/*", "GET", "/v1/health", 1 },
		{ "GET /*", "GET", "/v1/health", 0 },
		{ "POST /v1/agents/{id}/start", "POST", "/v1/agents/a1/start", 1 },
		{ "POST /v1/agents/{id}/start", "POST", "/v1/agents/{id}/start", 1 },
		{ "POST /v1/agents/{id}/start", "POST", "/v1/agents/a1/stop", 0 },
		{ "GET /v1/a{b}", "GET", "/v1/a{b}", 1 },
		{ "GET /v1/a{b}", "GET", "/v1/ax", 0 },
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tlm_chaos *c = new_chaos();
		char spec[128];

		snprintf(spec, sizeof(spec), "fail:count=0,route=%s", cases[i].route);
		add(c, spec);
		if ((check_type(c, cases[i].method, cases[i].path) == TLM_FAULT_FAIL) !=
		    cases[i].hit)
			fail_msg("route \"%s\" vs %s %s: expected %s", cases[i].route,
				 cases[i].method, cases[i].path,
				 cases[i].hit ? "match" : "no match");
		tlm_chaos_free(c);
	}
}

static void test_chaos_paths_exempt(void **state)
{
	tlm_chaos *c = new_chaos();
	(void)state;

	add(c, "fail:count=0");
	add(c, "delay:route=* /v1/chaos/**,count=0");
	assert_int_equal(check_type(c, "GET", "/v1/chaos"), TLM_FAULT_NONE);
	assert_int_equal(check_type(c, "POST", "/v1/chaos/fail"), TLM_FAULT_NONE);
	assert_int_equal(check_type(c, "DELETE", "/v1/chaos/f1"), TLM_FAULT_NONE);
	assert_int_equal(check_type(c, "GET", "/v1/chaos?x=1"), TLM_FAULT_NONE);
	assert_int_equal(field(c, "f1", "matched"), 0);
	assert_int_equal(field(c, "f2", "matched"), 0);
	/* Only that path: a look-alike is faulted. */
	assert_int_equal(check_type(c, "GET", "/v1/chaosx"), TLM_FAULT_FAIL);
	assert_int_equal(check_type(c, "GET", "/v2/chaos"), TLM_FAULT_FAIL);
	tlm_chaos_free(c);
}

static void test_windows_do_not_fault_requests(void **state)
{
	tlm_chaos *c = new_chaos();
	(void)state;

	add(c, "refuse:seconds=5");
	add(c, "nats-off");
	assert_int_equal(check_type(c, "GET", "/v1/agents"), TLM_FAULT_NONE);
	assert_true(tlm_chaos_refuse_remaining(c) > 4);
	assert_int_equal(tlm_chaos_nats_off(c), 1);
	tlm_chaos_free(c);
}

static void test_spec_trimming_and_forms(void **state)
{
	tlm_chaos *c = new_chaos();
	json_t *list, *f;
	(void)state;

	add(c, "  fail : route = POST /v1/agents , nth = 2 ,status=503 ");
	add(c, "drop");
	add(c, "drop:");
	add(c, "fail:route=/v1/agents/*");
	add(c, "fail:route=DELETE /v1/teams/{teamId}/tasks/{id}");
	list = tlm_chaos_list(c);
	f = listed(list, "f1");
	assert_string_equal(json_string_value(json_object_get(f, "route")), "POST /v1/agents");
	assert_int_equal(json_integer_value(json_object_get(f, "nth")), 2);
	assert_int_equal(json_integer_value(json_object_get(f, "status")), 503);
	assert_int_equal(json_integer_value(json_object_get(f, "retry_after")), 1);
	assert_true(json_is_null(json_object_get(listed(list, "f2"), "route")));
	assert_true(json_is_null(json_object_get(listed(list, "f3"), "route")));
	f = listed(list, "f4");
	assert_string_equal(json_string_value(json_object_get(f, "route")), "* /v1/agents/*");
	f = listed(list, "f5");
	assert_string_equal(json_string_value(json_object_get(f, "route")),
			    "DELETE /v1/teams/*/tasks/*");
	json_decref(list);
	tlm_chaos_free(c);
}

/* Each bad spec, and the part of its message that a user needs to see. */
static const struct {
	const char *spec, *msg;
} bad_specs[] = {
	{ "boom", "unknown fault type \"boom\" (expected fail, delay, drop, refuse or nats-off)" },
	{ "", "unknown fault type \"\"" },
	{ ":nth=1", "unknown fault type \"\"" },
	{ "FAIL", "unknown fault type \"FAIL\"" },
	{ "fail:bogus=1", "fail: unknown parameter \"bogus\" (fail takes route, nth, count, "
			  "status, retry_after)" },
	{ "fail:ms=5", "fail: parameter \"ms\" does not apply to fail (it takes route, nth, "
		       "count, status, retry_after)" },
	{ "delay:status=500", "delay: parameter \"status\" does not apply to delay" },
	{ "drop:retry_after=1", "drop: parameter \"retry_after\" does not apply to drop" },
	{ "refuse:route=GET /x", "refuse: parameter \"route\" does not apply to refuse" },
	{ "nats-off:nth=1", "nats-off: parameter \"nth\" does not apply to nats-off" },
	{ "fail:nth", "fail: \"nth\" is not key=value" },
	{ "fail:nth=1,,count=1", "fail: empty parameter" },
	{ "fail:nth=1,", "fail: empty parameter" },
	{ "fail:=1", "fail: a parameter has no name" },
	{ "fail:nth=1,nth=2", "fail: parameter \"nth\" is given twice" },
	{ "fail:nth=x", "fail: parameter \"nth\": \"x\" is not a whole number" },
	{ "fail:nth=", "fail: parameter \"nth\": \"\" is not a whole number" },
	{ "fail:nth=-1", "parameter \"nth\": \"-1\" is not a whole number" },
	{ "fail:nth=+1", "parameter \"nth\": \"+1\" is not a whole number" },
	{ "fail:nth=2.5", "parameter \"nth\": \"2.5\" is not a whole number" },
	{ "fail:nth=0x10", "parameter \"nth\": \"0x10\" is not a whole number" },
	{ "fail:nth=1 2", "parameter \"nth\": \"1 2\" is not a whole number" },
	{ "fail:nth=0", "fail: parameter \"nth\" is out of range (1..1000000000)" },
	{ "fail:nth=1000000001", "parameter \"nth\" is out of range" },
	{ "fail:nth=99999999999999999999999999", "parameter \"nth\" is out of range" },
	{ "fail:count=1000000001", "parameter \"count\" is out of range (0..1000000000)" },
	{ "fail:status=399", "fail: parameter \"status\" is out of range (400..599)" },
	{ "fail:status=600", "parameter \"status\" is out of range (400..599)" },
	{ "fail:status=abc", "parameter \"status\": \"abc\" is not a whole number" },
	{ "fail:retry_after=86401", "parameter \"retry_after\" is out of range (0..86400)" },
	{ "delay:ms=300001", "delay: parameter \"ms\" is out of range (0..300000)" },
	{ "delay:ms=1s", "parameter \"ms\": \"1s\" is not a whole number" },
	{ "refuse:seconds=abc", "refuse: parameter \"seconds\": \"abc\" is not a number" },
	{ "refuse:seconds=1e3", "\"1e3\" is not a number" },
	{ "refuse:seconds=inf", "\"inf\" is not a number" },
	{ "refuse:seconds=-1", "\"-1\" is not a number" },
	{ "refuse:seconds=.", "\".\" is not a number" },
	{ "refuse:seconds=0", "refuse: parameter \"seconds\" is out of range (more than 0, at "
			      "most 3600)" },
	{ "refuse:seconds=3601", "refuse: parameter \"seconds\" is out of range" },
	{ "nats-off:seconds=86401", "nats-off: parameter \"seconds\" is out of range (0..86400)" },
	{ "fail:route=POST", "parameter \"route\" \"POST\": expected \"METHOD /path\"" },
	{ "fail:route=POST v1/agents", "the path must start with '/'" },
	{ "fail:route=POST ", "parameter \"route\" \"POST\": expected \"METHOD /path\"" },
	{ "fail:route=", "parameter \"route\" \"\": expected \"METHOD /path\"" },
	{ "fail:route=P0ST /x", "the method must be letters or \"*\"" },
	{ "fail:route=** /x", "the method must be letters or \"*\"" },
	{ "fail:route=ABCDEFGHIJKLMNOPQ /x", "expected \"METHOD /path\"" },
	{ "fail:route=POST /v1/ag*", "'*' must be a whole path segment" },
	{ "fail:route=POST /v1/a*", "'*' must be a whole path segment" },
	{ "fail:route=POST /v1/***", "'*' must be a whole path segment" },
	{ "fail:route=GET /v1/**/x", "\"**\" may only end the path" },
	{ "fail:route=POST /v1/agents?x=1", "query strings are never matched" },
	{ "fail:route=POST /v1/a#b", "the path must not contain" },
	{ "fail:route=POST /v1/agents x", "the path must not contain spaces" },
	{ "fail:route=POST /v1/a\x01", "the path must not contain spaces, control characters" },
};

static void test_spec_errors(void **state)
{
	tlm_chaos *c = new_chaos();
	char prefix[300];
	size_t i;
	json_t *list;
	(void)state;

	for (i = 0; i < sizeof(bad_specs) / sizeof(bad_specs[0]); i++) {
		tlm_error err = TLM_ERROR_INIT;
		char *id = (char *)"sentinel";
		int rc = tlm_chaos_add_spec(c, bad_specs[i].spec, &id, &err);

		if (rc != TLM_EINVALID || strstr(err.message, bad_specs[i].msg) == NULL)
			fail_msg("spec \"%s\": rc %d, message \"%s\", expected \"%s\"",
				 bad_specs[i].spec, rc, err.message, bad_specs[i].msg);
		snprintf(prefix, sizeof(prefix), "fault \"%s\": ", bad_specs[i].spec);
		assert_int_equal(strncmp(err.message, prefix, strlen(prefix)), 0);
		assert_int_equal(err.code, TLM_EINVALID);
		assert_null(id);
	}
	/* Nothing was added, and err may be NULL. */
	list = tlm_chaos_list(c);
	assert_int_equal(json_array_size(json_object_get(list, "faults")), 0);
	json_decref(list);
	{
		char *id;

		assert_int_equal(tlm_chaos_add_spec(c, "boom", &id, NULL), TLM_EINVALID);
	}
	tlm_chaos_free(c);
}

static void test_spec_lengths(void **state)
{
	tlm_chaos *c = new_chaos();
	tlm_error err = TLM_ERROR_INIT;
	char spec[2048], *id;
	(void)state;

	memset(spec, 0, sizeof(spec));
	strcpy(spec, "fail:route=GET /");
	memset(spec + strlen(spec), 'a', 240);
	assert_int_equal(tlm_chaos_add_spec(c, spec, &id, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "the path is longer than 240 characters"));
	strcpy(spec, "fail:route=GET /");
	memset(spec + strlen(spec), 'a', 300);
	assert_int_equal(tlm_chaos_add_spec(c, spec, &id, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "parameter \"route\" is longer than 256 characters"));
	memset(spec, 0, sizeof(spec));
	strcpy(spec, "fail:route=GET /");
	memset(spec + strlen(spec), 'a', 1500);
	assert_int_equal(tlm_chaos_add_spec(c, spec, &id, &err), TLM_EINVALID);
	assert_string_equal(err.message, "fault spec is longer than 1024 characters");
	/* The longest path is fine. */
	memset(spec, 0, sizeof(spec));
	strcpy(spec, "fail:route=GET /");
	memset(spec + strlen(spec), 'a', 239);
	add(c, spec);
	tlm_chaos_free(c);
}

static int add_json(tlm_chaos *c, const char *type, const char *params, tlm_error *err)
{
	json_t *p = params ? json_loads(params, JSON_DECODE_ANY, NULL) : NULL;
	char *id = (char *)"sentinel";
	int rc;

	if (params != NULL)
		assert_non_null(p);
	rc = tlm_chaos_add(c, type, p, &id, err);
	if (rc == 0) {
		assert_non_null(id);
		free(id);
	} else {
		assert_null(id);
	}
	json_decref(p);
	return rc;
}

static void test_json_form(void **state)
{
	tlm_chaos *c = new_chaos();
	tlm_error err = TLM_ERROR_INIT;
	tlm_fault_action a;
	(void)state;

	assert_int_equal(add_json(c, "fail",
				  "{\"route\":\"POST /v1/agents/*/start\",\"nth\":2,"
				  "\"count\":1,\"status\":429,\"retry_after\":3}",
				  &err),
			 0);
	assert_int_equal(add_json(c, "drop", NULL, &err), 0);
	assert_int_equal(add_json(c, "delay", "{\"nth\":3}", &err), 0);
	assert_int_equal(add_json(c, "nats-off", "{\"seconds\":0.5}", &err), 0);
	assert_int_equal(add_json(c, "refuse", "{\"seconds\":1}", &err), 0);
	assert_int_equal(add_json(c, "nats-off", "null", &err), 0);
	assert_int_equal(check_type(c, "POST", "/v1/agents/a/start"), TLM_FAULT_DROP);
	a = check(c, "POST", "/v1/agents/a/start");
	assert_int_equal(a.type, TLM_FAULT_FAIL);
	assert_int_equal(a.status, 429);
	assert_int_equal(a.retry_after, 3);
	assert_int_equal(check_type(c, "POST", "/v1/agents/a/start"), TLM_FAULT_DELAY);
	assert_int_equal(check_type(c, "POST", "/v1/agents/a/start"), TLM_FAULT_NONE);
	tlm_chaos_free(c);
	/* An empty object is no parameters. */
	c = new_chaos();
	assert_int_equal(add_json(c, "delay", "{}", &err), 0);
	a = check(c, "GET", "/");
	assert_int_equal(a.type, TLM_FAULT_DELAY);
	assert_int_equal(a.delay_ms, 1000);
	assert_int_equal(a.status, 0);
	tlm_chaos_free(c);
}

static void test_json_errors(void **state)
{
	static const struct {
		const char *type, *params, *msg;
	} cases[] = {
		{ "boom", "{}", "unknown fault type \"boom\"" },
		{ "fail", "[1]", "fail: the parameters must be a JSON object, not an array" },
		{ "fail", "\"x\"", "fail: the parameters must be a JSON object, not a string" },
		{ "fail", "{\"nth\":\"2\"}",
		  "fail: parameter \"nth\" must be an integer, not a string" },
		{ "fail", "{\"nth\":2.0}",
		  "parameter \"nth\" must be an integer, not a fractional" },
		{ "fail", "{\"status\":null}",
		  "parameter \"status\" must be an integer, not null" },
		{ "fail", "{\"count\":true}",
		  "parameter \"count\" must be an integer, not a boolean" },
		{ "fail", "{\"route\":5}", "parameter \"route\" must be a string, not an integer" },
		{ "fail", "{\"route\":{}}", "parameter \"route\" must be a string, not an object" },
		{ "refuse", "{\"seconds\":\"1\"}",
		  "refuse: parameter \"seconds\" must be a number, "
		  "not a string" },
		{ "fail", "{\"nth\":-1}", "parameter \"nth\" is out of range (1..1000000000)" },
		{ "fail", "{\"status\":200}", "parameter \"status\" is out of range (400..599)" },
		{ "fail", "{\"type\":\"fail\"}", "fail: unknown parameter \"type\"" },
		{ "drop", "{\"ms\":1}", "drop: parameter \"ms\" does not apply to drop" },
		{ "refuse", "{\"seconds\":-0.5}",
		  "parameter \"seconds\" is out of range (0..86400)" },
		{ "refuse", "{\"seconds\":0}",
		  "parameter \"seconds\" is out of range (more than 0" },
		{ "fail", "{\"route\":\"GET x\"}", "parameter \"route\" \"GET x\": the path must" },
	};
	tlm_chaos *c = new_chaos();
	json_t *list;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tlm_error err = TLM_ERROR_INIT;
		int rc = add_json(c, cases[i].type, cases[i].params, &err);

		if (rc != TLM_EINVALID || strstr(err.message, cases[i].msg) == NULL)
			fail_msg("%s %s: rc %d, message \"%s\", expected \"%s\"", cases[i].type,
				 cases[i].params, rc, err.message, cases[i].msg);
	}
	list = tlm_chaos_list(c);
	assert_int_equal(json_array_size(json_object_get(list, "faults")), 0);
	json_decref(list);
	tlm_chaos_free(c);
}

/* The keys of obj, sorted, comma-separated. */
static void keys_of(json_t *obj, char *buf, size_t size)
{
	const char *names[32];
	const char *key;
	json_t *v;
	size_t n = 0, i, j;

	json_object_foreach(obj, key, v)
	{
		(void)v;
		names[n++] = key;
	}
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];

			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		strncat(buf, names[i], size - strlen(buf) - 1);
		if (i + 1 < n)
			strncat(buf, ",", size - strlen(buf) - 1);
	}
}

static void test_list_shape(void **state)
{
	static const char *const want[] = {
		"active,count,fired,id,matched,nth,retry_after,route,status,type",
		"active,count,fired,id,matched,ms,nth,route,type",
		"active,count,fired,id,matched,nth,route,type",
		"active,id,remaining,seconds,type",
		"active,id,remaining,seconds,type",
	};
	tlm_chaos *c = new_chaos();
	json_t *list, *faults, *f;
	char keys[256];
	size_t i;
	(void)state;

	add(c, "fail:route=GET /a");
	add(c, "delay:ms=3");
	add(c, "drop:nth=4,count=5");
	add(c, "refuse:seconds=0.5");
	add(c, "nats-off");
	list = tlm_chaos_list(c);
	assert_int_equal(json_object_size(list), 1);
	faults = json_object_get(list, "faults");
	assert_int_equal(json_array_size(faults), 5);
	json_array_foreach(faults, i, f)
	{
		char id[32];

		keys_of(f, keys, sizeof(keys));
		assert_string_equal(keys, want[i]);
		snprintf(id, sizeof(id), "f%zu", i + 1);
		assert_string_equal(json_string_value(json_object_get(f, "id")), id);
		assert_true(json_is_true(json_object_get(f, "active")));
	}
	f = json_array_get(faults, 0);
	assert_string_equal(json_string_value(json_object_get(f, "type")), "fail");
	assert_string_equal(json_string_value(json_object_get(f, "route")), "GET /a");
	assert_int_equal(json_integer_value(json_object_get(f, "nth")), 1);
	assert_int_equal(json_integer_value(json_object_get(f, "count")), 1);
	assert_int_equal(json_integer_value(json_object_get(f, "status")), 500);
	assert_int_equal(json_integer_value(json_object_get(f, "retry_after")), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "fired")), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "matched")), 0);
	f = json_array_get(faults, 1);
	assert_string_equal(json_string_value(json_object_get(f, "type")), "delay");
	assert_int_equal(json_integer_value(json_object_get(f, "ms")), 3);
	f = json_array_get(faults, 2);
	assert_int_equal(json_integer_value(json_object_get(f, "nth")), 4);
	assert_int_equal(json_integer_value(json_object_get(f, "count")), 5);
	f = json_array_get(faults, 3);
	assert_string_equal(json_string_value(json_object_get(f, "type")), "refuse");
	assert_true(json_real_value(json_object_get(f, "seconds")) == 0.5);
	assert_true(json_real_value(json_object_get(f, "remaining")) > 0);
	assert_true(json_real_value(json_object_get(f, "remaining")) <= 0.5);
	f = json_array_get(faults, 4);
	assert_string_equal(json_string_value(json_object_get(f, "type")), "nats-off");
	assert_true(json_real_value(json_object_get(f, "seconds")) == 0);
	assert_true(json_is_null(json_object_get(f, "remaining")));
	json_decref(list);
	tlm_chaos_free(c);
}

static void test_remove(void **state)
{
	tlm_chaos *c = new_chaos();
	json_t *list;
	(void)state;

	add(c, "fail:count=0");
	add(c, "drop:count=0");
	assert_int_equal(check_type(c, "GET", "/a"), TLM_FAULT_FAIL);
	assert_int_equal(tlm_chaos_remove(c, "f1"), 0);
	assert_int_equal(tlm_chaos_remove(c, "f1"), TLM_ENOTFOUND);
	assert_int_equal(tlm_chaos_remove(c, "f9"), TLM_ENOTFOUND);
	assert_int_equal(tlm_chaos_remove(c, ""), TLM_ENOTFOUND);
	assert_int_equal(tlm_chaos_remove(c, NULL), TLM_ENOTFOUND);
	assert_int_equal(check_type(c, "GET", "/a"), TLM_FAULT_DROP);
	/* Ids are never reused: a stale id can not remove a newer fault. */
	assert_string_equal(add(c, "fail"), "f3");
	assert_int_equal(tlm_chaos_remove(c, "f2"), 0);
	list = tlm_chaos_list(c);
	assert_int_equal(json_array_size(json_object_get(list, "faults")), 1);
	assert_non_null(listed(list, "f3"));
	json_decref(list);
	tlm_chaos_free(c);
}

/* Polls until cond() is 0 or about two seconds pass; returns the ms waited. */
static long wait_until_zero(double (*cond)(tlm_chaos *), tlm_chaos *c)
{
	long waited = 0;

	while (cond(c) > 0 && waited < 2000) {
		tlm_h_sleep_ms(10);
		waited += 10;
	}
	return waited;
}

static double nats_off_d(tlm_chaos *c)
{
	return tlm_chaos_nats_off(c);
}

static void test_refuse_window(void **state)
{
	tlm_chaos *c = new_chaos();
	double left;
	long waited;
	(void)state;

	assert_true(tlm_chaos_refuse_remaining(c) == 0);
	add(c, "refuse:seconds=0.2");
	left = tlm_chaos_refuse_remaining(c);
	assert_true(left > 0 && left <= 0.2);
	assert_int_equal(tlm_chaos_nats_off(c), 0);
	waited = wait_until_zero(tlm_chaos_refuse_remaining, c);
	assert_true(waited >= 50 && waited < 2000);
	assert_int_equal(field(c, "f1", "active"), 0);
	/* The default window is two seconds; the longest window counts. */
	add(c, "refuse");
	add(c, "refuse:seconds=1");
	left = tlm_chaos_refuse_remaining(c);
	assert_true(left > 1.5 && left <= 2);
	assert_int_equal(tlm_chaos_remove(c, "f2"), 0);
	left = tlm_chaos_refuse_remaining(c);
	assert_true(left > 0 && left <= 1);
	assert_int_equal(tlm_chaos_remove(c, "f3"), 0);
	assert_true(tlm_chaos_refuse_remaining(c) == 0);
	tlm_chaos_free(c);
}

static void test_nats_off_window(void **state)
{
	tlm_chaos *c = new_chaos();
	long waited;
	(void)state;

	assert_int_equal(tlm_chaos_nats_off(c), 0);
	add(c, "nats-off");
	add(c, "nats-off:seconds=0.2");
	assert_int_equal(tlm_chaos_nats_off(c), 1);
	assert_int_equal(tlm_chaos_remove(c, "f1"), 0);
	assert_int_equal(tlm_chaos_nats_off(c), 1);
	waited = wait_until_zero(nats_off_d, c);
	assert_true(waited >= 50 && waited < 2000);
	assert_int_equal(field(c, "f2", "active"), 0);
	/* Without seconds it lasts until removed. */
	add(c, "nats-off:seconds=0");
	tlm_h_sleep_ms(250);
	assert_int_equal(tlm_chaos_nats_off(c), 1);
	assert_int_equal(field(c, "f3", "active"), 1);
	assert_int_equal(tlm_chaos_remove(c, "f3"), 0);
	assert_int_equal(tlm_chaos_nats_off(c), 0);
	tlm_chaos_free(c);
}

static void test_fault_cap(void **state)
{
	tlm_chaos *c = new_chaos();
	tlm_error err = TLM_ERROR_INIT;
	char *id = NULL;
	json_t *list;
	int i;
	(void)state;

	for (i = 0; i < 256; i++)
		add(c, "fail:count=0");
	assert_int_equal(tlm_chaos_add_spec(c, "drop", &id, &err), TLM_ETOOBIG);
	assert_null(id);
	assert_non_null(strstr(err.message, "too many active faults (256)"));
	assert_int_equal(add_json(c, "drop", NULL, &err), TLM_ETOOBIG);
	/* Used-up faults make room, oldest first. */
	assert_int_equal(tlm_chaos_remove(c, "f10"), 0);
	add(c, "drop");
	assert_int_equal(tlm_chaos_add_spec(c, "drop", &id, &err), TLM_ETOOBIG);
	assert_int_equal(check_type(c, "GET", "/a"), TLM_FAULT_FAIL); /* f1 wins, f257 used up */
	assert_string_equal(add(c, "delay"), "f258");
	list = tlm_chaos_list(c);
	assert_int_equal(json_array_size(json_object_get(list, "faults")), 256);
	assert_null(listed(list, "f257"));
	assert_non_null(listed(list, "f258"));
	assert_non_null(listed(list, "f1"));
	json_decref(list);
	tlm_chaos_free(c);
}

/* The listener can be reopened TLM_CHAOS_REFUSE_MAX times in a server's
 * life: a refuse past that is an error in both forms, also after faults were
 * removed, rather than listed and doing nothing. */
static void test_refuse_cap(void **state)
{
	tlm_chaos *c = new_chaos();
	tlm_error err = TLM_ERROR_INIT;
	char *id = NULL;
	int i;
	(void)state;

	for (i = 0; i < TLM_CHAOS_REFUSE_MAX; i++) {
		const char *got = add(c, "refuse:seconds=0.001");

		if (i % 2 == 0)
			assert_int_equal(tlm_chaos_remove(c, got), 0);
	}
	assert_int_equal(tlm_chaos_add_spec(c, "refuse:seconds=0.001", &id, &err), TLM_EINVALID);
	assert_null(id);
	assert_non_null(strstr(err.message, "fault \"refuse:seconds=0.001\": refuse: this server "
					    "has taken 63 refuse faults, the most it can"));
	assert_int_equal(add_json(c, "refuse", NULL, &err), TLM_EINVALID);
	assert_int_equal(strncmp(err.message, "refuse: this server has taken 63 refuse faults", 46),
			 0);
	/* Other faults are still taken. */
	add(c, "nats-off:seconds=0.001");
	add(c, "fail");
	tlm_chaos_free(c);
}

static void test_null_chaos(void **state)
{
	tlm_fault_action a;
	(void)state;

	memset(&a, 0x5a, sizeof(a));
	tlm_chaos_check(NULL, "GET", "/", &a);
	assert_int_equal(a.type, TLM_FAULT_NONE);
	assert_int_equal(a.status, 0);
	assert_true(tlm_chaos_refuse_remaining(NULL) == 0);
	assert_int_equal(tlm_chaos_nats_off(NULL), 0);
	tlm_chaos_free(NULL);
}

#define NTHREADS 4
#define NCHECKS  10000

struct worker {
	tlm_chaos *c;
	long counts[6];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < NCHECKS; i++) {
		tlm_fault_action a;

		tlm_chaos_check(w->c, "POST", "/v1/agents", &a);
		w->counts[a.type]++;
		if (i % 1000 == 0)
			json_decref(tlm_chaos_list(w->c)); /* readers race with the checks */
	}
	return NULL;
}

static void test_threads(void **state)
{
	tlm_chaos *c = new_chaos();
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	long total[6] = { 0 };
	int i, k;
	(void)state;

	add(c, "fail:route=GET /x,count=0");
	add(c, "fail:route=POST /v1/agents,nth=101,count=50,status=503");
	add(c, "delay:route=POST /v1/agents,count=0,ms=1");
	add(c, "drop:route=POST /v1/agents,nth=40000,count=0");
	memset(w, 0, sizeof(w));
	for (i = 0; i < NTHREADS; i++) {
		w[i].c = c;
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		for (k = 0; k < 6; k++)
			total[k] += w[i].counts[k];
	}
	assert_int_equal(total[TLM_FAULT_NONE], 0);
	assert_int_equal(total[TLM_FAULT_FAIL], 50);
	assert_int_equal(total[TLM_FAULT_DELAY], NTHREADS * NCHECKS - 50);
	assert_int_equal(total[TLM_FAULT_DROP], 0);
	assert_int_equal(field(c, "f1", "matched"), 0);
	assert_int_equal(field(c, "f2", "matched"), 150);
	assert_int_equal(field(c, "f2", "fired"), 50);
	assert_int_equal(field(c, "f3", "matched"), NTHREADS * NCHECKS);
	assert_int_equal(field(c, "f3", "fired"), NTHREADS * NCHECKS - 50);
	assert_int_equal(field(c, "f4", "matched"), NTHREADS * NCHECKS);
	assert_int_equal(field(c, "f4", "fired"), 0);
	tlm_chaos_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fail_defaults),
		cmocka_unit_test(test_fail_status_and_retry_after),
		cmocka_unit_test(test_delay_and_drop),
		cmocka_unit_test(test_nth_and_count),
		cmocka_unit_test(test_count_zero_is_forever),
		cmocka_unit_test(test_counting_starts_at_add),
		cmocka_unit_test(test_first_added_wins_all_count),
		cmocka_unit_test(test_later_fault_fills_gaps),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_chaos_paths_exempt),
		cmocka_unit_test(test_windows_do_not_fault_requests),
		cmocka_unit_test(test_spec_trimming_and_forms),
		cmocka_unit_test(test_spec_errors),
		cmocka_unit_test(test_spec_lengths),
		cmocka_unit_test(test_json_form),
		cmocka_unit_test(test_json_errors),
		cmocka_unit_test(test_list_shape),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_refuse_window),
		cmocka_unit_test(test_nats_off_window),
		cmocka_unit_test(test_fault_cap),
		cmocka_unit_test(test_refuse_cap),
		cmocka_unit_test(test_null_chaos),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
