/* `telemachy serve --nats` against a real nats-server: the subjects and
 * payloads of every change event (docs/contract.md §7, docs/serve.md "Events"),
 * workers completing tasks over NATS, /v1/health telling the truth about the
 * connection, REST staying fast while NATS is dead, events flowing again
 * after NATS comes back (also when it was down at start), and a local agent's
 * run visible as task updates.
 *
 * Each test starts its own nats-server, server and subscriber (on "hi.>")
 * and the teardown stops whatever was started, also after a failure.  Every
 * wait polls with a deadline of at most 10 s.  Events are checked in order:
 * one publisher thread sends them in the order the requests made them, so
 * "the next message" is exact, and an event that must not exist would show
 * up before the one expected after it. */
#include <nats/nats.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/harness.h"
#include "harness/nats.h"
#include "harness/serve.h"

#define WAIT_MS       10000 /* the longest any wait may take */
#define POLL_MS       20
#define DOWN_CREATES  200 /* POST /v1/agents while NATS is dead */
#define DOWN_BOUND_MS 100 /* ... each must answer within this */

static tlm_h_serve srv;
static pid_t nats_pid;
static unsigned short nats_port;
static tlm_h_sub *sub;
static int nats_frozen; /* SIGSTOPped: the teardown sends SIGCONT */

/* ---- time ---------------------------------------------------------------- */

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- JSON ---------------------------------------------------------------- */

/* Fails unless obj is an object with exactly the keys given (NULL-ended). */
static void keys_exactly(const json_t *obj, ...)
{
	const char *k;
	size_t n = 0;
	va_list ap;

	if (!json_is_object(obj))
		fail_msg("not an object");
	va_start(ap, obj);
	while ((k = va_arg(ap, const char *)) != NULL) {
		if (json_object_get(obj, k) == NULL) {
			va_end(ap);
			fail_msg("no \"%s\" in %s", k, tlm_h_dump(obj));
		}
		n++;
	}
	va_end(ap);
	if (json_object_size(obj) != n)
		fail_msg("expected exactly %zu keys in %s", n, tlm_h_dump(obj));
}

/* ---- processes ----------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	nats_pid = 0;
	nats_port = 0;
	sub = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_sub_free(sub);
	sub = NULL;
	tlm_h_serve_stop(&srv);
	if (nats_frozen && nats_pid > 0)
		kill(nats_pid, SIGCONT);
	nats_frozen = 0;
	tlm_h_nats_stop(nats_pid);
	nats_pid = 0;
	return 0;
}

/* nats.state from /v1/health (caller decrefs the nats object). */
static json_t *health_nats(void)
{
	json_t *j = NULL, *n;

	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/health", NULL, &j), 200);
	assert_string_equal(tlm_h_str(j, "status"), "ok");
	n = json_incref(json_object_get(j, "nats"));
	json_decref(j);
	assert_non_null(n);
	return n;
}

static json_int_t health_counter(const char *name)
{
	json_t *n = health_nats();
	json_t *v = json_object_get(n, name);
	json_int_t x;

	assert_true(json_is_integer(v));
	x = json_integer_value(v);
	json_decref(n);
	return x;
}

/* Polls /v1/health until nats.<name> is at least min (the counters move on
 * the publisher thread, after the request that queued the event); returns
 * the value. */
static json_int_t wait_counter(const char *name, json_int_t min)
{
	int64_t end = tlm_h_now_ms() + WAIT_MS;
	json_int_t v;

	while ((v = health_counter(name)) < min) {
		if (tlm_h_now_ms() > end)
			fail_msg("nats.%s stayed %lld for %d ms (wanted >= %lld)", name,
				 (long long)v, WAIT_MS, (long long)min);
		tlm_h_sleep_ms(POLL_MS);
	}
	return v;
}

/* Polls /v1/health until nats.state is (want_equal) or is not (!want_equal)
 * state; fails after WAIT_MS. */
static void wait_nats_state(const char *state, int want_equal)
{
	int64_t end = tlm_h_now_ms() + WAIT_MS;
	char last[32] = "";

	for (;;) {
		json_t *n = health_nats();
		int eq;

		snprintf(last, sizeof(last), "%s", tlm_h_str(n, "state"));
		json_decref(n);
		eq = strcmp(last, state) == 0;
		if (eq == want_equal)
			return;
		if (tlm_h_now_ms() > end)
			fail_msg("nats.state stayed \"%s\" for %d ms (wanted %s\"%s\")", last,
				 WAIT_MS, want_equal ? "" : "not ", state);
		tlm_h_sleep_ms(POLL_MS);
	}
}

/* Starts `telemachy serve --nats URL` against the current nats_port. */
static void start_serve(void)
{
	char url[32];
	const char *args[] = { "--nats", url, NULL };

	tlm_h_nats_url(url, sizeof(url), nats_port);
	tlm_h_serve_start(&srv, args);
}

/* nats-server, a subscriber on hi.>, the server; returns once the server's
 * connection and subscriptions are up. */
static void start_all(void)
{
	nats_pid = tlm_h_nats_start(&nats_port);
	sub = tlm_h_sub_new(nats_port, "hi.>");
	start_serve();
	wait_nats_state("connected", 1);
}

/* ---- events -------------------------------------------------------------- */

/* The next message on subject_prefix ("": any); its subject must be exactly
 * subject.  Returns the payload (caller decrefs); the subject is copied to
 * got (may be NULL) when it is not known in advance. */
static json_t *take_event(const char *prefix, const char *subject, char *got, size_t size)
{
	char *s = NULL, buf[512];
	json_t *payload = NULL;

	if (tlm_h_sub_wait(sub, prefix, WAIT_MS, &s, &payload) != 0)
		fail_msg("no event %s within %d ms", subject ? subject : prefix, WAIT_MS);
	snprintf(buf, sizeof(buf), "%s", s);
	free(s);
	if (got != NULL)
		snprintf(got, size, "%s", buf);
	if (subject != NULL && strcmp(buf, subject) != 0) {
		char msg[2048];

		snprintf(msg, sizeof(msg), "%s", tlm_h_dump(payload));
		json_decref(payload);
		fail_msg("expected event %s, got %s %s", subject, buf, msg);
	}
	if (payload == NULL)
		fail_msg("event %s: the payload is not JSON", buf);
	return payload;
}

/* The next message, whatever it is: it must be on subject. */
static json_t *next_event(const char *subject)
{
	return take_event("", subject, NULL, 0);
}

/* The next message on subject (others on the way are skipped). */
static json_t *wait_event(const char *subject)
{
	return take_event(subject, subject, NULL, 0);
}

/* ---- REST helpers -------------------------------------------------------- */

/* POST /v1/agents with body; returns the answer (caller decrefs). */
static json_t *create_agent(const char *body)
{
	json_t *j = NULL;

	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/agents", body, &j), 201);
	keys_exactly(j, "agent", "id", NULL);
	return j;
}

static char *make_team(const char *name, const char *agent_id)
{
	char body[512], *id;
	json_t *j = NULL;

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"agentIds\":[\"%s\"]}", name, agent_id);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/teams", body, &j), 201);
	id = strdup(tlm_h_str(json_object_get(j, "team"), "id"));
	json_decref(j);
	return id;
}

static char *make_task(const char *team, const char *subject, const char *type,
		       const char *assignee)
{
	char body[512], path[256], *id;
	json_t *j = NULL;

	snprintf(path, sizeof(path), "/v1/teams/%s/tasks", team);
	snprintf(body, sizeof(body),
		 "{\"subject\":\"%s\",\"description\":\"desc of %s\",\"type\":\"%s\","
		 "\"assigneeAgentId\":\"%s\"}",
		 subject, subject, type, assignee);
	assert_int_equal(tlm_h_req(&srv, "POST", path, body, &j), 201);
	id = strdup(tlm_h_str(json_object_get(j, "task"), "id"));
	json_decref(j);
	return id;
}

static char *task_status(const char *team, const char *task)
{
	char path[256], *st;
	json_t *j = NULL;

	snprintf(path, sizeof(path), "/v1/teams/%s/tasks/%s", team, task);
	assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &j), 200);
	st = strdup(tlm_h_str(json_object_get(j, "task"), "status"));
	json_decref(j);
	return st;
}

/* Polls GET until the task has status; fails after WAIT_MS. */
static void wait_task_status(const char *team, const char *task, const char *status)
{
	int64_t end = tlm_h_now_ms() + WAIT_MS;

	for (;;) {
		char *st = task_status(team, task), last[128];

		snprintf(last, sizeof(last), "%s", st);
		free(st);
		if (strcmp(last, status) == 0)
			return;
		if (tlm_h_now_ms() > end)
			fail_msg("task %s stayed \"%s\" for %d ms (wanted \"%s\")", task, last,
				 WAIT_MS, status);
		tlm_h_sleep_ms(POLL_MS);
	}
}

/* DOWN_CREATES POST /v1/agents, one connection each; fails if any takes
 * DOWN_BOUND_MS or more.  A behaviour check with a generous bound (upstream
 * blocks up to ~15 s per publish when NATS is down), not a benchmark. */
static void time_creates(const char *prefix, const char *what)
{
	double worst = 0, total = 0;
	json_t *j;
	int i;

	for (i = 0; i < DOWN_CREATES; i++) {
		char body[128];
		double t0 = now_sec(), took;

		snprintf(body, sizeof(body), "{\"name\":\"%s-%d\"}", prefix, i);
		assert_int_equal(tlm_h_req(&srv, "POST", "/v1/agents", body, &j), 201);
		took = (now_sec() - t0) * 1000.0;
		json_decref(j);
		total += took;
		if (took > worst)
			worst = took;
	}
	print_message("REST with %s: %d POST /v1/agents, max %.2f ms, mean %.2f ms "
		      "(bound %d ms)\n",
		      what, DOWN_CREATES, worst, total / DOWN_CREATES, DOWN_BOUND_MS);
	if (worst >= DOWN_BOUND_MS)
		fail_msg("a POST /v1/agents took %.2f ms with %s", worst, what);
}

/* ---- tests --------------------------------------------------------------- */

/* Agent created, started, stopped, patched, deleted: subjects and payloads. */
static void test_agent_events(void **state)
{
	json_t *j, *e, *a;
	char path[256], *id;
	(void)state;

	start_all();
	j = create_agent("{\"name\":\"tlm-n1-dev\",\"program\":\"none\",\"host\":\"box1\"}");
	id = strdup(tlm_h_str(j, "id"));
	json_decref(j);

	e = next_event("hi.agents.box1.tlm-n1-dev.created");
	keys_exactly(e, "agent", "id", NULL);
	a = json_object_get(e, "agent");
	assert_string_equal(tlm_h_str(e, "id"), id);
	assert_string_equal(tlm_h_str(a, "id"), id);
	assert_string_equal(tlm_h_str(a, "name"), "tlm-n1-dev");
	assert_string_equal(tlm_h_str(a, "host"), "box1");
	assert_string_equal(tlm_h_str(a, "status"), "offline");
	json_decref(e);

	/* start/stop: the agent's own subject (upstream: the literal
	 * hi.agents.local.unknown.updated, a documented difference). */
	snprintf(path, sizeof(path), "/v1/agents/%s/start", id);
	assert_int_equal(tlm_h_req(&srv, "POST", path, NULL, NULL), 200);
	e = next_event("hi.agents.box1.tlm-n1-dev.updated");
	keys_exactly(e, "id", "status", NULL);
	assert_string_equal(tlm_h_str(e, "id"), id);
	assert_string_equal(tlm_h_str(e, "status"), "online");
	json_decref(e);
	snprintf(path, sizeof(path), "/v1/agents/%s/stop", id);
	assert_int_equal(tlm_h_req(&srv, "POST", path, NULL, NULL), 200);
	e = next_event("hi.agents.box1.tlm-n1-dev.updated");
	keys_exactly(e, "id", "status", NULL);
	assert_string_equal(tlm_h_str(e, "status"), "offline");
	json_decref(e);

	/* patch: the whole agent, as it is now */
	snprintf(path, sizeof(path), "/v1/agents/%s", id);
	assert_int_equal(tlm_h_req(&srv, "PATCH", path, "{\"label\":\"patched\"}", NULL), 200);
	e = next_event("hi.agents.box1.tlm-n1-dev.updated");
	assert_string_equal(tlm_h_str(e, "id"), id);
	assert_string_equal(tlm_h_str(e, "name"), "tlm-n1-dev");
	assert_string_equal(tlm_h_str(e, "label"), "patched");
	assert_string_equal(tlm_h_str(e, "status"), "offline");
	assert_null(json_object_get(e, "agent"));
	json_decref(e);

	assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, NULL), 200);
	e = next_event("hi.agents.box1.tlm-n1-dev.deleted");
	keys_exactly(e, "id", NULL);
	assert_string_equal(tlm_h_str(e, "id"), id);
	json_decref(e);

	/* Failed requests publish nothing: the next event is the next create. */
	assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, NULL), 404);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/agents", "{\"name\":\"\"}", NULL), 400);
	/* No host: "local"; characters a token cannot hold become '_'. */
	j = create_agent("{\"name\":\"a.b c*d>e\"}");
	json_decref(j);
	e = next_event("hi.agents.local.a_b_c_d_e.created");
	assert_string_equal(tlm_h_str(json_object_get(e, "agent"), "name"), "a.b c*d>e");
	json_decref(e);
	j = create_agent("{\"name\":\"n\",\"host\":\"lab.1\"}");
	json_decref(j);
	e = next_event("hi.agents.lab_1.n.created");
	json_decref(e);
	free(id);
}

static void test_team_events(void **state)
{
	json_t *j, *e, *t;
	char path[256], *agent, *team;
	(void)state;

	start_all();
	j = create_agent("{\"name\":\"tlm-n2-a\"}");
	agent = strdup(tlm_h_str(j, "id"));
	json_decref(j);
	json_decref(next_event("hi.agents.local.tlm-n2-a.created"));

	team = make_team("tlm-n2-core", agent);
	e = next_event("hi.agents.team.created");
	keys_exactly(e, "team", NULL);
	t = json_object_get(e, "team");
	assert_string_equal(tlm_h_str(t, "id"), team);
	assert_string_equal(tlm_h_str(t, "name"), "tlm-n2-core");
	assert_int_equal(json_array_size(json_object_get(t, "agentIds")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(t, "agentIds"), 0)),
			    agent);
	json_decref(e);

	snprintf(path, sizeof(path), "/v1/teams/%s", team);
	assert_int_equal(
		tlm_h_req(&srv, "PUT", path, "{\"name\":\"renamed\",\"agentIds\":[]}", NULL), 200);
	e = next_event("hi.agents.team.updated");
	assert_null(json_object_get(e, "team")); /* the bare T */
	assert_string_equal(tlm_h_str(e, "id"), team);
	assert_string_equal(tlm_h_str(e, "name"), "renamed");
	assert_int_equal(json_array_size(json_object_get(e, "agentIds")), 0);
	json_decref(e);

	assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, NULL), 200);
	e = next_event("hi.agents.team.deleted");
	keys_exactly(e, "id", NULL);
	assert_string_equal(tlm_h_str(e, "id"), team);
	json_decref(e);

	assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, NULL), 404);
	j = create_agent("{\"name\":\"tlm-n2-b\"}");
	json_decref(j);
	json_decref(next_event("hi.agents.local.tlm-n2-b.created")); /* nothing in between */
	free(agent);
	free(team);
}

/* Task created: hi.tasks.created, the work queue and the pipeline subject;
 * a status change: hi.tasks.<team>.<task>.updated with {"task":K}. */
static void test_task_events(void **state)
{
	json_t *j, *e, *k;
	char subject[512], path[256], *agent, *team, *task;
	(void)state;

	start_all();
	j = create_agent("{\"name\":\"tlm-n3-a\"}"); /* offline: runs nothing */
	agent = strdup(tlm_h_str(j, "id"));
	json_decref(j);
	team = make_team("tlm-n3", agent);
	json_decref(next_event("hi.agents.local.tlm-n3-a.created"));
	json_decref(next_event("hi.agents.team.created"));

	task = make_task(team, "Build it", "implementation", agent);
	e = next_event("hi.tasks.created");
	keys_exactly(e, "task", NULL);
	k = json_object_get(e, "task");
	assert_string_equal(tlm_h_str(k, "id"), task);
	assert_string_equal(tlm_h_str(k, "teamId"), team);
	assert_string_equal(tlm_h_str(k, "subject"), "Build it");
	assert_string_equal(tlm_h_str(k, "status"), "pending");
	assert_string_equal(tlm_h_str(k, "type"), "implementation");
	assert_string_equal(tlm_h_str(k, "assigneeAgentId"), agent);
	assert_true(json_is_null(json_object_get(k, "completedAt")));
	json_decref(e);

	snprintf(subject, sizeof(subject), "hi.myrmidon.implementation.%s", task);
	e = next_event(subject);
	keys_exactly(e, "task_id", "team_id", "subject", "description", "type", "assignee", NULL);
	assert_string_equal(tlm_h_str(e, "task_id"), task);
	assert_string_equal(tlm_h_str(e, "team_id"), team);
	assert_string_equal(tlm_h_str(e, "subject"), "Build it");
	assert_string_equal(tlm_h_str(e, "description"), "desc of Build it");
	assert_string_equal(tlm_h_str(e, "type"), "implementation");
	assert_string_equal(tlm_h_str(e, "assignee"), agent);
	json_decref(e);

	snprintf(subject, sizeof(subject), "hi.myrmidon.pipeline.implementation.task.%s", task);
	e = next_event(subject);
	keys_exactly(e, "task", NULL);
	assert_string_equal(tlm_h_str(json_object_get(e, "task"), "id"), task);
	assert_string_equal(tlm_h_str(json_object_get(e, "task"), "status"), "pending");
	json_decref(e);

	/* Every change, status or not, is an update with the new task. */
	snprintf(path, sizeof(path), "/v1/teams/%s/tasks/%s", team, task);
	snprintf(subject, sizeof(subject), "hi.tasks.%s.%s.updated", team, task);
	assert_int_equal(tlm_h_req(&srv, "PATCH", path, "{\"status\":\"running\"}", NULL), 200);
	e = next_event(subject);
	keys_exactly(e, "task", NULL);
	assert_string_equal(tlm_h_str(json_object_get(e, "task"), "status"), "running");
	assert_string_equal(tlm_h_str(json_object_get(e, "task"), "id"), task);
	json_decref(e);
	assert_int_equal(tlm_h_req(&srv, "PUT", path, "{\"description\":\"new\"}", NULL), 200);
	e = next_event(subject);
	assert_string_equal(tlm_h_str(json_object_get(e, "task"), "description"), "new");
	assert_string_equal(tlm_h_str(json_object_get(e, "task"), "status"), "running");
	json_decref(e);
	assert_int_equal(tlm_h_req(&srv, "PATCH", path, "{\"status\":\"completed\"}", NULL), 200);
	e = next_event(subject);
	assert_string_equal(tlm_h_str(json_object_get(e, "task"), "status"), "completed");
	assert_non_null(
		json_string_value(json_object_get(json_object_get(e, "task"), "completedAt")));
	json_decref(e);

	/* A rejected change publishes nothing. */
	assert_int_equal(tlm_h_req(&srv, "PATCH", path, "{\"status\":\"bogus\"}", NULL), 400);
	/* Default type "general"; no assignee: null in the work queue message. */
	snprintf(path, sizeof(path), "/v1/teams/%s/tasks", team);
	assert_int_equal(tlm_h_req(&srv, "POST", path, "{\"subject\":\"plain\"}", &j), 201);
	free(task);
	task = strdup(tlm_h_str(json_object_get(j, "task"), "id"));
	json_decref(j);
	json_decref(next_event("hi.tasks.created"));
	snprintf(subject, sizeof(subject), "hi.myrmidon.general.%s", task);
	e = next_event(subject);
	assert_true(json_is_null(json_object_get(e, "assignee")));
	assert_string_equal(tlm_h_str(e, "description"), "");
	json_decref(e);
	snprintf(subject, sizeof(subject), "hi.myrmidon.pipeline.general.task.%s", task);
	json_decref(next_event(subject));
	free(agent);
	free(team);
	free(task);
}

/* An external worker completes (or fails) a task over NATS. */
static void test_inbound_completion(void **state)
{
	json_t *j, *e;
	char subject[512], payload[512], *agent, *team, *t1, *t2, *t3;
	(void)state;

	start_all();
	j = create_agent("{\"name\":\"tlm-n4-a\"}");
	agent = strdup(tlm_h_str(j, "id"));
	json_decref(j);
	team = make_team("tlm-n4", agent);
	t1 = make_task(team, "one", "general", agent);
	t2 = make_task(team, "two", "general", agent);
	t3 = make_task(team, "three", "general", agent);

	/* {"task_id":ID} */
	snprintf(subject, sizeof(subject), "hi.tasks.%s.%s.completed", team, t1);
	snprintf(payload, sizeof(payload), "{\"task_id\":\"%s\"}", t1);
	tlm_h_sub_publish_str(sub, subject, payload);
	wait_task_status(team, t1, "completed");
	/* ours publishes the change (upstream publishes nothing back) */
	snprintf(subject, sizeof(subject), "hi.tasks.%s.%s.updated", team, t1);
	e = wait_event(subject);
	assert_string_equal(tlm_h_str(json_object_get(e, "task"), "status"), "completed");
	json_decref(e);

	/* {"data":{"task_id":ID}}: the id in the payload wins over the subject's
	 * token, so this proves the nested shape was read. */
	snprintf(subject, sizeof(subject), "hi.tasks.%s.not-a-task.completed", team);
	snprintf(payload, sizeof(payload), "{\"data\":{\"task_id\":\"%s\",\"extra\":1}}", t2);
	tlm_h_sub_publish_str(sub, subject, payload);
	wait_task_status(team, t2, "completed");

	/* .failed, the id from the subject (empty payload) */
	snprintf(subject, sizeof(subject), "hi.tasks.%s.%s.failed", team, t3);
	tlm_h_sub_publish_str(sub, subject, "");
	wait_task_status(team, t3, "failed");
	snprintf(subject, sizeof(subject), "hi.tasks.%s.%s.updated", team, t3);
	e = wait_event(subject);
	assert_string_equal(tlm_h_str(json_object_get(e, "task"), "status"), "failed");
	json_decref(e);
	free(agent);
	free(team);
	free(t1);
	free(t2);
	free(t3);
}

/* Health is truthful; NATS dead: REST fast, events dropped and counted;
 * NATS back: events flow again. */
static void test_outage(void **state)
{
	json_int_t pub0, drop0, pub1, drop1;
	json_t *j, *n;
	(void)state;

	start_all();
	j = create_agent("{\"name\":\"tlm-n5-before\"}");
	json_decref(j);
	json_decref(next_event("hi.agents.local.tlm-n5-before.created"));
	wait_counter("published", 1);
	n = health_nats();
	assert_string_equal(tlm_h_str(n, "state"), "connected");
	assert_int_equal(json_integer_value(json_object_get(n, "dropped")), 0);
	assert_true(json_is_false(json_object_get(n, "paused")));
	json_decref(n);

	tlm_h_nats_kill(nats_pid);
	nats_pid = 0;
	wait_nats_state("connected", 0);
	pub0 = health_counter("published");
	drop0 = health_counter("dropped");

	time_creates("tlm-n5-down", "NATS dead");
	/* Every event of the outage dropped and counted, none published. */
	drop1 = wait_counter("dropped", drop0 + DOWN_CREATES);
	n = health_nats();
	assert_string_not_equal(tlm_h_str(n, "state"), "connected");
	pub1 = json_integer_value(json_object_get(n, "published"));
	json_decref(n);
	assert_int_equal(pub1, pub0);
	assert_int_equal(drop1 - drop0, DOWN_CREATES);

	/* Back on the same port: the server reconnects by itself. */
	nats_pid = tlm_h_nats_start(&nats_port);
	assert_int_equal(tlm_h_sub_ready(sub, WAIT_MS), 0);
	wait_nats_state("connected", 1);
	j = create_agent("{\"name\":\"tlm-n5-after\"}");
	json_decref(j);
	/* Nothing of the outage is replayed: the next event is this one. */
	json_decref(next_event("hi.agents.local.tlm-n5-after.created"));
	wait_counter("published", pub1 + 1);
	assert_int_equal(health_counter("dropped"), drop1);
}

/* NATS alive but silent (SIGSTOPped: the TCP connection stays up, nothing
 * answers): REST must not notice either. */
static void test_outage_silent(void **state)
{
	json_t *j;
	(void)state;

	start_all();
	assert_int_equal(kill(nats_pid, SIGSTOP), 0);
	nats_frozen = 1;
	time_creates("tlm-n8-frozen", "NATS frozen");
	assert_int_equal(kill(nats_pid, SIGCONT), 0);
	nats_frozen = 0;
	wait_nats_state("connected", 1);
	j = create_agent("{\"name\":\"tlm-n8-after\"}");
	json_decref(j);
	json_decref(wait_event("hi.agents.local.tlm-n8-after.created"));
}

/* NATS down when the server starts (an upstream hazard: never connects
 * later): REST works, health says so, and events flow once NATS is up. */
static void test_nats_late(void **state)
{
	json_t *j, *n;
	const char *st;
	(void)state;

	nats_port = tlm_h_free_port();
	start_serve();
	n = health_nats();
	st = tlm_h_str(n, "state");
	assert_true(strcmp(st, "connecting") == 0 || strcmp(st, "reconnecting") == 0);
	json_decref(n);
	j = create_agent("{\"name\":\"tlm-n6-early\"}");
	json_decref(j);
	wait_counter("dropped", 1);

	nats_pid = tlm_h_nats_start(&nats_port);
	sub = tlm_h_sub_new(nats_port, "hi.>");
	wait_nats_state("connected", 1);
	j = create_agent("{\"name\":\"tlm-n6-late\"}");
	json_decref(j);
	json_decref(next_event("hi.agents.local.tlm-n6-late.created"));
}

/* A local agent's run, seen on NATS: running, then completed. */
static void test_local_run(void **state)
{
	json_t *j, *e, *k;
	char subject[512], path[256], seen[128] = "", *agent, *team, *task;
	int online = 0;
	(void)state;

	start_all();
	j = create_agent("{\"name\":\"tlm-n7-none\",\"program\":\"none\"}");
	agent = strdup(tlm_h_str(j, "id"));
	json_decref(j);
	team = make_team("tlm-n7", agent);
	task = make_task(team, "work", "testing", agent);
	json_decref(next_event("hi.agents.local.tlm-n7-none.created"));
	json_decref(next_event("hi.agents.team.created"));
	json_decref(next_event("hi.tasks.created"));
	snprintf(subject, sizeof(subject), "hi.myrmidon.testing.%s", task);
	json_decref(next_event(subject));
	snprintf(subject, sizeof(subject), "hi.myrmidon.pipeline.testing.task.%s", task);
	json_decref(next_event(subject));

	/* The runner may see the agent online before the start's own event is
	 * queued, so the agent's and the task's events may interleave: collect
	 * the task's statuses until it completes. */
	snprintf(path, sizeof(path), "/v1/agents/%s/start", agent);
	assert_int_equal(tlm_h_req(&srv, "POST", path, NULL, NULL), 200);
	snprintf(subject, sizeof(subject), "hi.tasks.%s.%s.updated", team, task);
	while (strcmp(seen, " running completed") != 0 || online == 0) {
		char got[512];

		if (strlen(seen) > 64 || online > 1)
			fail_msg("task statuses on NATS:%s", seen);
		e = take_event("", NULL, got, sizeof(got));
		if (strcmp(got, "hi.agents.local.tlm-n7-none.updated") == 0) {
			assert_string_equal(tlm_h_str(e, "status"), "online");
			online++;
		} else if (strcmp(got, subject) == 0) {
			k = json_object_get(e, "task");
			strcat(seen, " ");
			strcat(seen, tlm_h_str(k, "status"));
			if (strcmp(tlm_h_str(k, "status"), "completed") == 0)
				assert_non_null(
					json_string_value(json_object_get(k, "completedAt")));
		} else {
			fail_msg("unexpected event %s %s", got, tlm_h_dump(e));
		}
		json_decref(e);
	}
	assert_int_equal(online, 1);
	wait_task_status(team, task, "completed");
	free(agent);
	free(team);
	free(task);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_agent_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_team_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_completion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outage_silent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nats_late, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_run, setup, teardown),
	};
	int rc = cmocka_run_group_tests_name("serve.nats", tests, NULL, NULL);

	/* libnats' global threads joined, for valgrind (harness/nats.h). */
	nats_CloseAndWait(5000);
	return rc;
}
