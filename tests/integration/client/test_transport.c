/* The network half of the control-plane client against the real
 * `telemachy serve` with injected faults: retries (503, 429 + Retry-After,
 * refused connections), a dropped create reply that must not duplicate the
 * agent, permanent errors that never leak the key, the TLS policy,
 * max_in_flight and paging.  Each test starts its own server; the teardown
 * stops it and frees the client, also after a failure.  Every wait is bounded
 * by the client's timeouts and retry budget, and run() by RUN_MS. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"
#include "telemachy/client.h"

#define RUN_MS 20000

static tlm_h_serve srv;
static tlm_client *cli;

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	cli = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_client_free(cli);
	cli = NULL;
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	memset(&srv, 0, sizeof(srv));
	return 0;
}

/* 1: the next start() makes a client with one request per connection. */
static int fresh_next;

static void start(const char *const *args, const char *key, unsigned max_in_flight)
{
	tlm_client_opts o = TLM_CLIENT_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;

	tlm_h_serve_start(&srv, args);
	o.base_url = srv.url;
	o.api_key = key;
	o.timeout_ms = 10000;
	o.connect_timeout_ms = 2000;
	o.retry_base_ms = 100;
	o.retry_cap_ms = 500;
	o.retry_max_total_ms = 15000;
	o.retry_max_attempts = 30;
	if (max_in_flight != 0)
		o.max_in_flight = max_in_flight;
	o.fresh_connection = fresh_next;
	fresh_next = 0;
	if (tlm_client_new(&cli, &o, &err) != 0)
		fail_msg("tlm_client_new: %s", err.message);
}

/* One finished request, as the tests look at it. */
typedef struct got {
	int calls;
	tlm_client_outcome outcome;
	int rc;
	long status;
	unsigned attempts;
	char msg[TLM_ERROR_MSG_MAX];
	char id[128];
} got;

static void on_done(void *ctx, const tlm_client_result *res)
{
	got *g = ctx;
	json_t *a;

	g->calls++;
	g->outcome = res->outcome;
	g->rc = res->rc;
	g->status = res->status;
	g->attempts = res->attempts;
	snprintf(g->msg, sizeof(g->msg), "%s", res->err != NULL ? res->err->message : "");
	a = res->body != NULL ? json_object_get(res->body, "agent") : NULL;
	if (a != NULL && json_is_string(json_object_get(a, "id")))
		snprintf(g->id, sizeof(g->id), "%s", json_string_value(json_object_get(a, "id")));
}

static void request(const char *method, const char *path, const char *body, tlm_client_kind kind,
		    got *g)
{
	tlm_error err = TLM_ERROR_INIT;

	memset(g, 0, sizeof(*g));
	if (tlm_client_submit(cli, method, path, body, kind, on_done, g, &err) != 0 ||
	    tlm_client_run(cli, RUN_MS, &err) != 0)
		fail_msg("%s %s: %s", method, path, err.message);
	assert_int_equal(g->calls, 1);
}

static char *create(const char *name)
{
	tlm_error err = TLM_ERROR_INIT;
	json_t *body = json_pack("{s:s}", "label", "test");
	char *id = NULL;
	int rc = tlm_client_create_agent(cli, name, body, &id, &err);

	json_decref(body);
	if (rc != 0)
		fail_msg("create %s: %s", name, err.message);
	assert_non_null(id);
	return id;
}

typedef struct named {
	const char *name, *id;
	size_t count, other_id;
} named;

static int count_name(void *ctx, json_t *item)
{
	named *w = ctx;
	const char *n = json_string_value(json_object_get(item, "name"));
	const char *id = json_string_value(json_object_get(item, "id"));

	if (n != NULL && strcmp(n, w->name) == 0) {
		w->count++;
		if (id == NULL || strcmp(id, w->id) != 0)
			w->other_id++;
	}
	return 0;
}

/* Agents named name, via the client's own paging; all must have id. */
static size_t agents_named(const char *name, const char *id)
{
	named w = { name, id, 0, 0 };
	tlm_error err = TLM_ERROR_INIT;

	if (tlm_client_list_all(cli, "/v1/agents", "agents", count_name, &w, &err) != 0)
		fail_msg("list: %s", err.message);
	assert_int_equal(w.other_id, 0);
	return w.count;
}

static void test_create_get(void **state)
{
	char path[256], *id;
	got g;

	(void)state;
	start(NULL, NULL, 0);
	id = create("plain");
	snprintf(path, sizeof(path), "/v1/agents/%s", id);
	request("GET", path, NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
	assert_int_equal(g.status, 200);
	assert_string_equal(g.id, id);
	assert_int_equal(g.attempts, 1);
	snprintf(path, sizeof(path), "/v1/agents/%s/start", id);
	request("POST", path, NULL, TLM_CLIENT_POST_ACTION,
		&g); /* bodiless POST: Content-Length 0 */
	assert_int_equal(g.status, 200);
	snprintf(path, sizeof(path), "/v1/agents/%s", id);
	request("PATCH", path, "{\"label\":\"x\"}", TLM_CLIENT_PATCH, &g);
	assert_int_equal(g.status, 200);
	request("DELETE", path, NULL, TLM_CLIENT_DELETE, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
	free(id);
}

static void test_503_twice(void **state)
{
	const char *args[] = {
		"--fault", "fail:route=GET /v1/agents,status=503,count=2,retry_after=0", "--fault",
		"fail:route=POST /v1/agents,status=503,count=2,retry_after=0", NULL
	};
	char *id;
	got g;

	(void)state;
	start(args, NULL, 0);
	request("GET", "/v1/agents", NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
	assert_int_equal(g.attempts, 3);
	/* On a create a 5xx is an unknown outcome: looked up, then re-sent. */
	id = create("after503");
	assert_int_equal(agents_named("after503", id), 1);
	free(id);
}

static void test_429_retry_after(void **state)
{
	const char *args[] = { "--fault", "fail:route=GET /v1/agents,status=429,retry_after=1",
			       NULL };
	int64_t t0;
	got g;

	(void)state;
	start(args, NULL, 0);
	t0 = tlm_h_now_ms();
	request("GET", "/v1/agents", NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
	assert_int_equal(g.attempts, 2);
	assert_true(tlm_h_now_ms() - t0 >= 1000);
}

static void test_drop_create(void **state)
{
	const char *args[] = { "--fault", "drop:route=POST /v1/agents", NULL };
	json_t *j = NULL, *f;
	char *id;
	got g;

	(void)state;
	start(args, NULL, 0);
	/* The transport alone reports the lost reply and does not re-POST. */
	request("POST", "/v1/agents", "{\"name\":\"raw\"}", TLM_CLIENT_POST_CREATE, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_UNKNOWN);
	assert_int_equal(g.attempts, 1);
	assert_non_null(strstr(g.msg, "unknown outcome"));
	assert_int_equal(tlm_h_req(&srv, "DELETE", "/v1/chaos/f1", NULL, NULL), 200);
	assert_int_equal(
		tlm_h_req(&srv, "POST", "/v1/chaos/drop", "{\"route\":\"POST /v1/agents\"}", NULL),
		201);
	id = create("dropped");
	assert_int_equal(agents_named("dropped", id), 1);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/chaos", NULL, &j), 200);
	/* The drop really fired: the agent was committed and its reply lost. */
	f = json_array_get(json_object_get(j, "faults"), 0);
	assert_string_equal(tlm_h_str(f, "id"), "f2");
	assert_int_equal(tlm_h_int(f, "fired"), 1);
	json_decref(j);
	free(id);
}

/* A create on a connection kept alive from an earlier request: the server
 * commits it and closes without a reply.  libcurl would send a request
 * whose reused connection died before any reply again, on a new one — a
 * twin (docs/lessons.md #3); the client must report the outcome unknown
 * instead, and the server must hold exactly one agent. */
static void test_drop_create_reused(void **state)
{
	const char *args[] = { "--fault", "drop:route=POST /v1/agents", NULL };
	json_t *j = NULL;
	got g;

	(void)state;
	start(args, NULL, 1);
	request("GET", "/v1/agents", NULL, TLM_CLIENT_GET, &g); /* opens the connection */
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
	request("POST", "/v1/agents", "{\"name\":\"reused\"}", TLM_CLIENT_POST_CREATE, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_UNKNOWN);
	assert_int_equal(g.attempts, 1);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/chaos", NULL, &j), 200);
	assert_int_equal(tlm_h_int(json_array_get(json_object_get(j, "faults"), 0), "fired"), 1);
	json_decref(j);
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "reused"), 1);
	/* The connections that follow work as before. */
	request("GET", "/v1/agents", NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
}

static void test_refuse(void **state)
{
	got g;

	(void)state;
	start(NULL, NULL, 0);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/chaos/refuse", "{\"seconds\":1}", NULL), 201);
	request("GET", "/v1/agents", NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
	assert_true(g.attempts >= 2);
}

static void test_delete_gone(void **state)
{
	got g;

	(void)state;
	start(NULL, NULL, 0);
	request("DELETE", "/v1/agents/no-such-id", NULL, TLM_CLIENT_DELETE, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_GONE);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.status, 404);
	request("GET", "/v1/agents/no-such-id", NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_FAILED);
	assert_int_equal(g.rc, TLM_ENOTFOUND);
	assert_int_equal(g.attempts, 1);
}

static void test_bad_key(void **state)
{
	const char *args[] = { "--api-key", "right-key-0123", NULL };
	const char *wrong = "wrong-key-s3cr3t";
	tlm_client_opts o = TLM_CLIENT_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	got g;

	(void)state;
	start(args, wrong, 0);
	request("GET", "/v1/agents", NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_FAILED);
	assert_int_equal(g.status, 401);
	assert_int_equal(g.rc, TLM_EINVALID);
	assert_int_equal(g.attempts, 1);
	assert_null(strstr(g.msg, wrong));
	assert_null(strstr(g.msg, "s3cr3t"));
	assert_non_null(strstr(g.msg, "unauthorized"));
	tlm_client_free(cli);
	o.base_url = srv.url;
	o.api_key = "right-key-0123";
	assert_int_equal(tlm_client_new(&cli, &o, &err), 0);
	request("GET", "/v1/agents", NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
}

static void test_require_tls(void **state)
{
	tlm_client_opts o = TLM_CLIENT_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_client *c = NULL;

	(void)state;
	o.require_tls = 1;
	o.base_url = "http://example.com";
	assert_int_equal(tlm_client_new(&c, &o, &err), TLM_EINVALID);
	assert_null(c);
	assert_non_null(strstr(err.message, "require_tls"));
	o.base_url = "http://127.0.0.1:1";
	assert_int_equal(tlm_client_new(&c, &o, &err), 0);
	tlm_client_free(c);
	o.base_url = "http://localhost:8080/";
	assert_int_equal(tlm_client_new(&c, &o, &err), 0);
	tlm_client_free(c);
	o.base_url = "https://example.com";
	assert_int_equal(tlm_client_new(&c, &o, &err), 0);
	tlm_client_free(c);
	o.require_tls = 0;
	o.base_url = "http://example.com";
	assert_int_equal(tlm_client_new(&c, &o, &err), 0);
	tlm_client_free(c);
	o.base_url = "ftp://example.com";
	assert_int_equal(tlm_client_new(&c, &o, &err), TLM_EINVALID);
}

static void count_done(void *ctx, const tlm_client_result *res)
{
	int *n = ctx;

	if (res->outcome == TLM_CLIENT_DONE)
		(*n)++;
}

static void test_max_in_flight(void **state)
{
	const char *args[] = { "--fault", "delay:route=GET /v1/agents,ms=100,count=0", NULL };
	tlm_error err = TLM_ERROR_INIT;
	int64_t t0, took;
	int i, n = 0;

	(void)state;
	/* Fresh connections: keep-alive ones opened together may share one of
	 * serve's threads, which each delayed request holds, and the test is
	 * about the client's limit, not the server's threads. */
	fresh_next = 1;
	start(args, NULL, 4);
	t0 = tlm_h_now_ms();
	for (i = 0; i < 50; i++)
		assert_int_equal(tlm_client_submit(cli, "GET", "/v1/agents", NULL, TLM_CLIENT_GET,
						   count_done, &n, &err),
				 0);
	assert_int_equal(tlm_client_run(cli, RUN_MS, &err), 0);
	took = tlm_h_now_ms() - t0;
	assert_int_equal(n, 50);
	/* 50 requests of >= 100 ms, 4 at a time: at least 13 rounds.  With the
	 * server's 8 workers and no limit it would take about 700 ms. */
	if (took < 1250)
		fail_msg("50 delayed GETs took %lld ms: more than 4 in flight", (long long)took);
	/* And they did overlap: one at a time would take 5 s. */
	if (took > 4500)
		fail_msg("50 delayed GETs took %lld ms: not concurrent", (long long)took);
}

static int count_all(void *ctx, json_t *item)
{
	(void)item;
	(*(size_t *)ctx)++;
	return 0;
}

static void test_paging(void **state)
{
	tlm_error err = TLM_ERROR_INIT;
	char body[64];
	size_t seen = 0;
	int i, n = 0;

	(void)state;
	start(NULL, NULL, 0);
	for (i = 0; i < 250; i++) {
		snprintf(body, sizeof(body), "{\"name\":\"p%03d\"}", i);
		assert_int_equal(tlm_client_submit(cli, "POST", "/v1/agents", body,
						   TLM_CLIENT_POST_CREATE, count_done, &n, &err),
				 0);
	}
	assert_int_equal(tlm_client_run(cli, RUN_MS, &err), 0);
	assert_int_equal(n, 250);
	assert_int_equal(tlm_client_list_all(cli, "/v1/agents", "agents", count_all, &seen, &err),
			 0);
	assert_int_equal(seen, 250);
}

/* A reply over 1 MiB aborts the transfer: TLM_ETOOBIG, never a bigger buffer.
 * 300 agents with a 4000-byte description listed at once are ~1.2 MB. */
static void test_too_big(void **state)
{
	tlm_error err = TLM_ERROR_INIT;
	char desc[4001];
	int i, n = 0;
	got g;

	(void)state;
	start(NULL, NULL, 0);
	memset(desc, 'd', sizeof(desc) - 1);
	desc[sizeof(desc) - 1] = '\0';
	for (i = 0; i < 300; i++) {
		json_t *o = json_pack("{s:s,s:s}", "name", "big", "taskDescription", desc);
		char *body = json_dumps(o, JSON_COMPACT);

		json_decref(o);
		assert_non_null(body);
		assert_int_equal(tlm_client_submit(cli, "POST", "/v1/agents", body,
						   TLM_CLIENT_POST_CREATE, count_done, &n, &err),
				 0);
		free(body);
	}
	assert_int_equal(tlm_client_run(cli, RUN_MS, &err), 0);
	assert_int_equal(n, 300);
	request("GET", "/v1/agents?limit=1000", NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_FAILED);
	assert_int_equal(g.rc, TLM_ETOOBIG);
	assert_int_equal(g.attempts, 1);
	request("GET", "/v1/agents?limit=100", NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
}

/* A GET that times out is sent again; a create that times out is reported
 * as an unknown outcome and not sent again by the transport. */
static void test_timeout(void **state)
{
	const char *args[] = { "--fault", "delay:route=GET /v1/agents,ms=1500", "--fault",
			       "delay:route=POST /v1/agents,ms=1500", NULL };
	tlm_client_opts o = TLM_CLIENT_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	got g;

	(void)state;
	start(args, NULL, 0);
	tlm_client_free(cli);
	o.base_url = srv.url;
	o.timeout_ms = 400;
	o.retry_base_ms = 50;
	assert_int_equal(tlm_client_new(&cli, &o, &err), 0);
	request("GET", "/v1/agents", NULL, TLM_CLIENT_GET, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
	assert_int_equal(g.attempts, 2);
	request("POST", "/v1/agents", "{\"name\":\"slow\"}", TLM_CLIENT_POST_CREATE, &g);
	assert_int_equal(g.outcome, TLM_CLIENT_UNKNOWN);
	assert_int_equal(g.attempts, 1);
}

typedef struct team_count {
	const char *name;
	size_t count;
} team_count;

static int count_team(void *ctx, json_t *item)
{
	team_count *t = ctx;
	const char *n = json_string_value(json_object_get(item, "name"));

	if (n != NULL && strcmp(n, t->name) == 0)
		t->count++;
	return 0;
}

/* Teams have no by-name lookup upstream: a lost reply is resolved by paging
 * the team list, and exactly one team results. */
static void test_drop_team_create(void **state)
{
	const char *args[] = { "--fault", "drop:route=POST /v1/teams", NULL };
	tlm_error err = TLM_ERROR_INIT;
	team_count tc = { "tlm-x-t-core", 0 };
	char *id = NULL, *again = NULL;
	json_t *j = NULL;

	(void)state;
	start(args, NULL, 0);
	assert_int_equal(tlm_client_create(cli, TLM_CLIENT_TEAM, "tlm-x-t-core", NULL,
					   TLM_CLIENT_POST_FIRST, &id, &err),
			 0);
	assert_non_null(id);
	assert_int_equal(tlm_client_list_all(cli, "/v1/teams", "teams", count_team, &tc, &err), 0);
	assert_int_equal(tc.count, 1);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/chaos", NULL, &j), 200);
	assert_int_equal(tlm_h_int(json_array_get(json_object_get(j, "faults"), 0), "fired"), 1);
	json_decref(j);
	/* lookup_first adopts what exists instead of posting. */
	assert_int_equal(tlm_client_create(cli, TLM_CLIENT_TEAM, "tlm-x-t-core", NULL,
					   TLM_CLIENT_LOOKUP_ONCE, &again, &err),
			 0);
	assert_string_equal(again, id);
	free(again);
	assert_int_equal(tlm_client_find(cli, TLM_CLIENT_TEAM, "tlm-x-t-core", &again, &err), 0);
	assert_string_equal(again, id);
	free(again);
	free(id);
}

static void test_find(void **state)
{
	tlm_error err = TLM_ERROR_INIT;
	char *id, *found = NULL;

	(void)state;
	start(NULL, NULL, 0);
	assert_int_equal(tlm_client_find(cli, TLM_CLIENT_AGENT, "nobody", &found, &err),
			 TLM_ENOTFOUND);
	assert_null(found);
	assert_int_equal(tlm_client_find(cli, TLM_CLIENT_TEAM, "nobody", &found, &err),
			 TLM_ENOTFOUND);
	id = create("somebody");
	assert_int_equal(tlm_client_find(cli, TLM_CLIENT_AGENT, "somebody", &found, &err), 0);
	assert_string_equal(found, id);
	free(found);
	/* lookup_first: the existing agent is adopted, nothing new is made. */
	assert_int_equal(tlm_client_create(cli, TLM_CLIENT_AGENT, "somebody", NULL,
					   TLM_CLIENT_LOOKUP_ONCE, &found, &err),
			 0);
	assert_string_equal(found, id);
	assert_int_equal(agents_named("somebody", id), 1);
	free(found);
	free(id);
}

/* The client-side token bucket: 11 requests at 20/s with a burst of 1 need
 * at least 10 intervals of 50 ms.  (Only the lower bound is a property of
 * the limiter; how much longer it takes depends on the machine.) */
static void test_rate_limit(void **state)
{
	tlm_client_opts o = TLM_CLIENT_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	uint64_t t0;
	got g[11];
	int i;

	(void)state;
	start(NULL, NULL, 0);
	tlm_client_free(cli);
	o.base_url = srv.url;
	o.rate_rps = 20;
	o.rate_burst = 1;
	assert_int_equal(tlm_client_new(&cli, &o, &err), 0);
	t0 = tlm_h_now_ms();
	for (i = 0; i < 11; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		assert_int_equal(tlm_client_submit(cli, "GET", "/v1/agents", NULL, TLM_CLIENT_GET,
						   on_done, &g[i], &err),
				 0);
	}
	assert_int_equal(tlm_client_run(cli, RUN_MS, &err), 0);
	assert_true(tlm_h_now_ms() - t0 >= 490);
	for (i = 0; i < 11; i++)
		assert_int_equal(g[i].outcome, TLM_CLIENT_DONE);
	o.rate_rps = -1;
	tlm_client_free(cli);
	cli = NULL;
	assert_int_equal(tlm_client_new(&cli, &o, &err), TLM_EINVALID);
}

static void *wake_later(void *arg)
{
	tlm_h_sleep_ms(100);
	tlm_client_wakeup(arg);
	return NULL;
}

/* tlm_client_step returns when woken, long before its wait is over: the
 * engine relies on this to see NATS events at once. */
static void test_step_wakeup(void **state)
{
	tlm_error err = TLM_ERROR_INIT;
	pthread_t th;
	uint64_t t0;

	(void)state;
	start(NULL, NULL, 0);
	assert_int_equal(tlm_client_pending(cli), 0);
	t0 = tlm_h_now_ms();
	assert_int_equal(pthread_create(&th, NULL, wake_later, cli), 0);
	assert_int_equal(tlm_client_step(cli, 20000, &err), 0);
	assert_true(tlm_h_now_ms() - t0 < 15000);
	pthread_join(th, NULL);
}

/* ---- timers, lookups with a settle wait, the gate, dropping ----------- */

static void on_timer(void *ctx, int cancelled)
{
	int *fired = ctx;

	*fired = cancelled ? -1 : 1;
}

typedef struct found {
	int calls, rc;
	char id[128];
	int64_t at;
} found;

static void on_found(void *ctx, int rc, const char *id, const tlm_error *err)
{
	found *f = ctx;

	(void)err;
	f->calls++;
	f->rc = rc;
	f->at = tlm_h_now_ms();
	snprintf(f->id, sizeof(f->id), "%s", rc == 0 ? id : "");
}

/* A timer fires from inside the loop; a lookup with a settle wait does
 * not believe the first 404: an agent created meanwhile is found by the
 * second look, after the wait, while the loop kept turning. */
static void test_timer_and_settled_lookup(void **state)
{
	tlm_error err = TLM_ERROR_INIT;
	int fired = 0;
	found f = { 0, 0, "", 0 };
	char *id;
	int64_t t0;

	(void)state;
	start(NULL, NULL, 0);
	t0 = tlm_h_now_ms();
	assert_int_equal(tlm_client_after(cli, 150, on_timer, &fired, &err), 0);
	assert_int_equal(tlm_client_pending(cli), 1);
	assert_int_equal(tlm_client_run(cli, RUN_MS, &err), 0);
	assert_int_equal(fired, 1);
	assert_true(tlm_h_now_ms() - t0 >= 140);
	/* Not there yet: the lookup waits 600 ms; the agent appears at 200. */
	t0 = tlm_h_now_ms();
	assert_int_equal(
		tlm_client_find_start(cli, TLM_CLIENT_AGENT, "late-one", 600, on_found, &f, &err),
		0);
	while (tlm_h_now_ms() - t0 < 200)
		assert_int_equal(tlm_client_step(cli, 20, &err), 0);
	assert_int_equal(f.calls, 0);
	id = create("late-one");
	assert_int_equal(tlm_client_run(cli, RUN_MS, &err), 0);
	assert_int_equal(f.calls, 1);
	assert_int_equal(f.rc, 0);
	assert_string_equal(f.id, id);
	assert_true(f.at - t0 >= 590);
	free(id);
	/* Without a settle wait the answer is at once. */
	memset(&f, 0, sizeof(f));
	assert_int_equal(
		tlm_client_find_start(cli, TLM_CLIENT_TEAM, "nobody", 0, on_found, &f, &err), 0);
	assert_int_equal(tlm_client_run(cli, RUN_MS, &err), 0);
	assert_int_equal(f.rc, TLM_ENOTFOUND);
}

/* Ids go into paths percent-encoded: "/", "?", "#", "%", spaces and
 * non-ASCII cannot reach another path; "." and ".." are refused. */
static void test_paths(void **state)
{
	char p[64];
	tlm_error err = TLM_ERROR_INIT;

	(void)state;
	assert_int_equal(tlm_client_path(p, sizeof(p), "/v1/agents/", "a/b?c#d e%", "/start", NULL,
					 NULL, &err),
			 0);
	assert_string_equal(p, "/v1/agents/a%2Fb%3Fc%23d%20e%25/start");
	assert_int_equal(
		tlm_client_path(p, sizeof(p), "/v1/teams/", "t-1", "/tasks/", "k.2_~", NULL, &err),
		0);
	assert_string_equal(p, "/v1/teams/t-1/tasks/k.2_~");
	assert_int_equal(tlm_client_path(p, sizeof(p), "/v1/agents/", "..", NULL, NULL, NULL, &err),
			 TLM_EINVALID);
	assert_int_equal(tlm_client_path(p, sizeof(p), "/v1/agents/", "", NULL, NULL, NULL, &err),
			 TLM_EINVALID);
	assert_int_equal(
		tlm_client_path(p, 16, "/v1/agents/", "0123456789", NULL, NULL, NULL, &err),
		TLM_ETOOBIG);
}

static int gate_calls, gate_refuse;

static int gate(void *ctx, uint64_t stamp, tlm_error *err)
{
	(void)ctx;
	(void)stamp;
	gate_calls++;
	return gate_refuse ? tlm_error_set(err, TLM_EFENCED, "not ours any more") : 0;
}

/* The gate is asked before every request; once it refuses, nothing more is
 * sent and every step says why.  Dropping the client tells each pending
 * request and timer once. */
static void test_gate_and_cancel(void **state)
{
	tlm_client_opts o = TLM_CLIENT_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	got g[3];
	int fired = 0;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	o.base_url = srv.url;
	o.gate = gate;
	assert_int_equal(tlm_client_new(&cli, &o, &err), 0);
	memset(g, 0, sizeof(g));
	assert_int_equal(tlm_client_submit(cli, "GET", "/v1/agents", NULL, TLM_CLIENT_GET, on_done,
					   &g[0], &err),
			 0);
	assert_int_equal(tlm_client_run(cli, RUN_MS, &err), 0);
	assert_int_equal(gate_calls, 1);
	assert_int_equal(g[0].outcome, TLM_CLIENT_DONE);
	gate_refuse = 1;
	assert_int_equal(tlm_client_submit(cli, "GET", "/v1/teams", NULL, TLM_CLIENT_GET, on_done,
					   &g[1], &err),
			 0);
	assert_int_equal(tlm_client_step(cli, 10, &err), TLM_EFENCED);
	assert_non_null(strstr(err.message, "not ours"));
	assert_int_equal(tlm_client_step(cli, 10, &err), TLM_EFENCED);
	assert_int_equal(g[1].calls, 0); /* not sent, not answered */
	assert_int_equal(tlm_client_after(cli, 60000, on_timer, &fired, &err), 0);
	assert_int_equal(tlm_client_pending(cli), 2);
	tlm_client_free(cli);
	cli = NULL;
	assert_int_equal(g[1].calls, 1);
	assert_int_equal(g[1].outcome, TLM_CLIENT_CANCELLED);
	assert_int_equal(g[1].rc, TLM_ECANCELLED);
	assert_int_equal(fired, -1);
	gate_refuse = 0;
	gate_calls = 0;
}

static uint64_t hold_until; /* hold_gate holds requests until then (ms) */
static long waited;         /* the wait before_wait was offered last */

static int hold_gate(void *ctx, uint64_t stamp, tlm_error *err)
{
	uint64_t now = tlm_h_now_ms();

	(void)ctx;
	(void)stamp;
	(void)err;
	gate_calls++;
	return now < hold_until ? (int)(hold_until - now) : 0;
}

static long short_wait(void *ctx, long wait_ms)
{
	(void)ctx;
	waited = wait_ms;
	return 0;
}

/* A gate may hold a burst (the engine gathering a group commit): nothing is
 * sent, the client asks again within the hold (its wait is cut to it), and
 * the request leaves once the gate says yes.  before_wait may shorten a
 * wait. */
static void test_gate_hold(void **state)
{
	tlm_client_opts o = TLM_CLIENT_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	uint64_t t0;
	got g;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	o.base_url = srv.url;
	o.gate = hold_gate;
	assert_int_equal(tlm_client_new(&cli, &o, &err), 0);
	memset(&g, 0, sizeof(g));
	gate_calls = 0;
	assert_int_equal(tlm_client_submit(cli, "GET", "/v1/agents", NULL, TLM_CLIENT_GET, on_done,
					   &g, &err),
			 0);
	assert_int_equal(tlm_client_waiting(cli), 1);
	t0 = tlm_h_now_ms();
	hold_until = t0 + 300;
	assert_int_equal(tlm_client_step(cli, 0, &err), 0);
	assert_true(gate_calls >= 1);
	assert_int_equal(tlm_client_in_flight(cli), 0); /* held, not sent */
	assert_int_equal(tlm_client_waiting(cli), 1);
	assert_int_equal(g.calls, 0);
	/* A step of up to 10 s ends once the hold is over, and sends. */
	while (g.calls == 0 && tlm_h_now_ms() - t0 < 10000)
		assert_int_equal(tlm_client_step(cli, 10000, &err), 0);
	assert_int_equal(g.outcome, TLM_CLIENT_DONE);
	assert_true(gate_calls >= 2);
	assert_true(tlm_h_now_ms() - t0 >= 300);
	assert_true(tlm_h_now_ms() - t0 < 5000);
	assert_int_equal(tlm_client_waiting(cli) + tlm_client_in_flight(cli), 0);
	tlm_client_free(cli);
	cli = NULL;

	/* before_wait's answer bounds the wait: a 10 s step returns at once. */
	o.gate = NULL;
	o.before_wait = short_wait;
	assert_int_equal(tlm_client_new(&cli, &o, &err), 0);
	t0 = tlm_h_now_ms();
	assert_int_equal(tlm_client_step(cli, 10000, &err), 0);
	assert_int_equal(waited, 10000);
	assert_true(tlm_h_now_ms() - t0 < 5000);
	gate_calls = 0;
}

static uint64_t next_stamp; /* what stamp() gives the next request queued */
static uint64_t stamp_ok;   /* stamp_gate lets requests stamped up to this go */
static uint64_t asked[16];  /* the stamps stamp_gate was asked with */
static unsigned nasked;

static uint64_t stamp(void *ctx)
{
	(void)ctx;
	return next_stamp;
}

static int stamp_gate(void *ctx, uint64_t s, tlm_error *err)
{
	(void)ctx;
	(void)err;
	if (nasked < 16)
		asked[nasked++] = s;
	return s <= stamp_ok ? 0 : 20;
}

static void submit_stamped(got *g, uint64_t s)
{
	tlm_error err = TLM_ERROR_INIT;

	next_stamp = s;
	assert_int_equal(
		tlm_client_submit(cli, "GET", "/v1/agents", NULL, TLM_CLIENT_GET, on_done, g, &err),
		0);
}

/* Each request carries the stamp it was queued with (the engine's journal
 * mark); the gate is asked once for the requests of one stamp and again
 * at a higher one, so a burst's older requests leave while the gate holds
 * the newer (the engine committing only what they need), and requests
 * behind a held one wait behind it (FIFO). */
static void test_gate_stamps(void **state)
{
	tlm_client_opts o = TLM_CLIENT_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	uint64_t t0;
	static got g[6]; /* the teardown's free may still answer them */
	int i;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	o.base_url = srv.url;
	o.gate = stamp_gate;
	o.stamp = stamp;
	o.max_in_flight = 8;
	assert_int_equal(tlm_client_new(&cli, &o, &err), 0);
	memset(g, 0, sizeof(g));
	nasked = 0;
	stamp_ok = 1;
	submit_stamped(&g[0], 1);
	submit_stamped(&g[1], 1);
	submit_stamped(&g[2], 1);
	submit_stamped(&g[3], 2);
	submit_stamped(&g[4], 1); /* behind a held one */
	submit_stamped(&g[5], 2);
	assert_int_equal(tlm_client_waiting_above(cli, 0), 6);
	assert_int_equal(tlm_client_waiting_above(cli, 1), 2);
	assert_int_equal(tlm_client_waiting_above(cli, 2), 0);
	assert_int_equal(tlm_client_step(cli, 0, &err), 0);
	/* Once for the three of stamp 1, then for stamp 2 (held), asked again
	 * at each later start. */
	assert_true(nasked >= 2);
	assert_int_equal(asked[0], 1);
	for (i = 1; i < (int)nasked; i++)
		assert_int_equal(asked[i], 2);
	assert_int_equal(
		tlm_client_in_flight(cli) + (unsigned)(g[0].calls + g[1].calls + g[2].calls), 3);
	assert_int_equal(tlm_client_waiting(cli), 3);
	assert_int_equal(tlm_client_waiting_above(cli, 1), 2);
	t0 = tlm_h_now_ms();
	while (g[0].calls + g[1].calls + g[2].calls < 3 && tlm_h_now_ms() - t0 < RUN_MS)
		assert_int_equal(tlm_client_step(cli, 100, &err), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(g[i].outcome, TLM_CLIENT_DONE);
	for (i = 3; i < 6; i++)
		assert_int_equal(g[i].calls, 0); /* still held */
	stamp_ok = 2;
	assert_int_equal(tlm_client_run(cli, RUN_MS, &err), 0);
	for (i = 3; i < 6; i++)
		assert_int_equal(g[i].outcome, TLM_CLIENT_DONE);
	assert_int_equal(asked[nasked - 1], 2);
	tlm_client_free(cli);
	cli = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_503_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_429_retry_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_create_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_require_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_team_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_wakeup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_and_settled_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_and_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_stamps, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
