/* submit and worker on the shared journal (docs/distributed.md), against a
 * real PostgreSQL and a real `telemachy serve` with its request log:
 * - submit: two submits of one file are two queued runs; an invalid file
 *   (exit 2) and a control plane URL with credentials write nothing;
 * - 3 workers and 30 runs of ~1 s tasks, one worker SIGKILLed while it
 *   drives runs: every run completes, its runs are taken over within the
 *   lease, nothing is left on the server, each agent and team was created
 *   once, and no run ever got a request from an owner older than one that
 *   had already spoken (the epochs in the request log never go back);
 * - a worker whose database connections are cut stops (its run is handed
 *   back or fenced, sending nothing more) and another worker finishes it;
 * - cancel from another host identity reaches the owning worker within a
 *   second;
 * - SIGTERM drains: a run that finishes within --drain-timeout finishes
 *   there; after it, the run in hand is handed back and another worker
 *   finishes it; the worker's /metrics. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "harness/harness.h"
#include "harness/pg.h"
#include "harness/run.h"
#include "harness/serve.h"

#define CMD_MS   30000
#define LEASE_MS 15000 /* TLM_JOURNAL_STALE_MS */
#define NRUNS    30
#define NWORKERS 3

static tlm_h_serve srv;
static char *dir, *uri, reqlog[512];

static const char one_second[] = "apiVersion: telemachy/v1\n"
				 "metadata: {name: sec}\n"
				 "agents:\n"
				 "  - {name: s, program: /bin/sh, args: ['-c', 'sleep %s']}\n"
				 "teams:\n"
				 "  - name: t\n"
				 "    agents: [s]\n"
				 "    tasks:\n"
				 "      - {subject: a, description: d, assign_to: s}\n";

typedef struct worker {
	tlm_h_cmd c;
	char dir[600];
} worker;

static int setup(void **state)
{
	const char *args[] = { "--request-log", reqlog, NULL };

	(void)state;
	memset(&srv, 0, sizeof(srv));
	dir = tlm_h_tmpdir();
	uri = tlm_h_pg_newdb(&tlm_h_pg_group);
	snprintf(reqlog, sizeof(reqlog), "%s/requests.jsonl", dir);
	tlm_h_serve_start(&srv, args);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	tlm_h_rmrf(dir);
	free(dir);
	free(uri);
	return 0;
}

static char *workflow(const char *seconds)
{
	char text[1024];

	snprintf(text, sizeof(text), one_second, seconds);
	return tlm_h_write_file(dir, "w.yaml", text);
}

/* `telemachy SUB --journal URI ARGS...` with env (may be NULL) added. */
static void jcmd(tlm_h_cmd *c, const char *const *env, const char *sub, const char *const *args,
		 int want)
{
	const char *argv[16];
	size_t n = 0, i;

	argv[n++] = sub;
	argv[n++] = "--journal";
	argv[n++] = uri;
	for (i = 0; args != NULL && args[i] != NULL && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	tlm_h_cmd_run(c, dir, env, argv, CMD_MS);
	if (want >= 0 && c->exit_code != want)
		fail_msg("telemachy %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", sub,
			 c->exit_code, want, c->out, c->err);
}

static char *submit(const char *file)
{
	const char *args[] = { "-q", "--control-plane", srv.url, file, NULL };
	tlm_h_cmd c;
	char *id;

	jcmd(&c, NULL, "submit", args, 0);
	c.out[strcspn(c.out, "\n")] = '\0';
	assert_int_equal(strlen(c.out), 8);
	id = strdup(c.out);
	tlm_h_cmd_free(&c);
	return id;
}

/* The journal's runs (list --output json; the caller decrefs). */
static json_t *runs(void)
{
	const char *args[] = { "--output", "json", NULL };
	tlm_h_cmd c;
	json_t *r;

	jcmd(&c, NULL, "list", args, 0);
	r = json_is_array(c.json) ? c.json : json_object_get(c.json, "runs");
	assert_non_null(r);
	json_incref(r);
	tlm_h_cmd_free(&c);
	return r;
}

static size_t count_state(const json_t *rs, const char *state)
{
	size_t i, n = 0;

	for (i = 0; i < json_array_size(rs); i++)
		n += strcmp(tlm_h_str(json_array_get(rs, i), "state"), state) == 0;
	return n;
}

static size_t count_owner(const json_t *rs, const char *owner)
{
	size_t i, n = 0;

	for (i = 0; i < json_array_size(rs); i++) {
		const json_t *o = json_object_get(json_array_get(rs, i), "owner");

		n += o != NULL && strcmp(tlm_h_str(o, "state"), owner) == 0;
	}
	return n;
}

static void start_worker(worker *w, int i, const char *const *env, const char *extra,
			 const char *extra2)
{
	const char *argv[] = { "worker", "--journal", uri, "--max-runs", "4", extra, extra2, NULL };

	snprintf(w->dir, sizeof(w->dir), "%s/w%d", dir, i);
	assert_int_equal(mkdir(w->dir, 0700), 0);
	tlm_h_cmd_start(&w->c, w->dir, env, argv);
}

static void stop_worker(worker *w)
{
	if (w->c.pid > 0) {
		kill(w->c.pid, SIGTERM);
		tlm_h_cmd_wait(&w->c, w->dir, 60000);
	}
}

static char *worker_err(const worker *w)
{
	char p[700];

	snprintf(p, sizeof(p), "%s/cmd.err", w->dir);
	return tlm_h_slurp(p);
}

/* Waits until worker w's stderr holds text; fails after ms. */
static void wait_worker(const worker *w, const char *text, int ms)
{
	int64_t end = tlm_h_now_ms() + ms;
	char *e;

	for (;;) {
		e = worker_err(w);
		if (strstr(e, text) != NULL)
			break;
		if (tlm_h_now_ms() > end)
			fail_msg("no \"%s\" from the worker within %d ms:\n%s", text, ms, e);
		free(e);
		tlm_h_sleep_ms(50);
	}
	free(e);
}

/* Waits until every run of the journal is completed; fails after ms. */
static void wait_all_completed(size_t want, int ms)
{
	int64_t end = tlm_h_now_ms() + ms;

	for (;;) {
		json_t *rs = runs();
		size_t done = count_state(rs, "completed");

		json_decref(rs);
		if (done == want)
			return;
		if (tlm_h_now_ms() > end)
			fail_msg("%zu of %zu runs completed within %d ms", done, want, ms);
		tlm_h_sleep_ms(500);
	}
}

/* The request log, checked: per run, successful creates of agents and of
 * teams (*creates, summed over runs), and that a run's owner epochs never
 * go back (a fenced owner sent nothing after its successor). */
static void check_request_log(size_t nruns, size_t *agent_creates, size_t *team_creates)
{
	char *text = tlm_h_slurp(reqlog), *line, *save = NULL;
	json_t *last = json_object();
	size_t lines = 0;

	*agent_creates = *team_creates = 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *owner, *slash, *path, *method;
		char run[16];
		long long epoch;
		json_int_t status;

		assert_non_null(o);
		lines++;
		owner = json_string_value(json_object_get(o, "owner"));
		path = tlm_h_str(o, "path");
		method = tlm_h_str(o, "method");
		status = json_integer_value(json_object_get(o, "status"));
		if (owner != NULL && (slash = strchr(owner, '/')) != NULL &&
		    slash - owner < (long)sizeof(run)) {
			snprintf(run, sizeof(run), "%.*s", (int)(slash - owner), owner);
			epoch = atoll(slash + 1);
			if (json_integer_value(json_object_get(last, run)) > epoch)
				fail_msg("run %s: a request of epoch %lld after one of epoch "
					 "%lld: %s",
					 run, epoch,
					 (long long)json_integer_value(json_object_get(last, run)),
					 line);
			json_object_set_new(last, run, json_integer(epoch));
		}
		if (strcmp(method, "POST") == 0 && status == 201 && strcmp(path, "/v1/agents") == 0)
			(*agent_creates)++;
		if (strcmp(method, "POST") == 0 && status == 201 && strcmp(path, "/v1/teams") == 0)
			(*team_creates)++;
		json_decref(o);
	}
	assert_true(lines > 0);
	assert_int_equal(json_object_size(last), nruns);
	json_decref(last);
	free(text);
}

static void test_submit(void **state)
{
	char *file = workflow("1"), *a, *b, *bad;
	const char *cred[] = { "--control-plane", "http://u:secret@127.0.0.1:1", NULL, NULL };
	const char *badargs[] = { NULL, NULL };
	tlm_h_cmd c;
	json_t *rs;
	(void)state;

	a = submit(file);
	b = submit(file);
	assert_string_not_equal(a, b);
	rs = runs();
	assert_int_equal(json_array_size(rs), 2);
	assert_int_equal(count_state(rs, "queued"), 2);
	assert_int_equal(count_owner(rs, "-"), 2); /* no owner until a worker claims */
	json_decref(rs);
	/* An invalid file: file:line:col, exit 2, nothing written. */
	bad = tlm_h_write_file(dir, "bad.yaml", "apiVersion: telemachy/v1\nmetadata: [\n");
	badargs[0] = bad;
	jcmd(&c, NULL, "submit", badargs, 2);
	assert_non_null(strstr(c.err, "bad.yaml:"));
	tlm_h_cmd_free(&c);
	cred[2] = file;
	jcmd(&c, NULL, "submit", cred, 2);
	assert_null(strstr(c.err, "secret"));
	tlm_h_cmd_free(&c);
	rs = runs();
	assert_int_equal(json_array_size(rs), 2);
	json_decref(rs);
	free(file);
	free(bad);
	free(a);
	free(b);
}

static void test_three_workers_one_killed(void **state)
{
	char *file = workflow("1"), *ids[NRUNS];
	worker w[NWORKERS];
	size_t agents, teams, i;
	int64_t killed, clear = -1;
	json_t *rs;
	(void)state;

	for (i = 0; i < NRUNS; i++)
		ids[i] = submit(file);
	for (i = 0; i < NWORKERS; i++)
		start_worker(&w[i], (int)i, NULL, "--poll=1", NULL);
	wait_worker(&w[0], "task t/a submitted", 30000);
	kill(w[0].c.pid, SIGKILL); /* its run processes die with it */
	tlm_h_cmd_wait(&w[0].c, w[0].dir, 10000);
	killed = tlm_h_now_ms();
	/* Its runs are taken over within the lease: no dead owner remains. */
	while (tlm_h_now_ms() - killed < LEASE_MS + 10000) {
		rs = runs();
		if (count_owner(rs, "dead") == 0) {
			clear = tlm_h_now_ms() - killed;
			json_decref(rs);
			break;
		}
		json_decref(rs);
		tlm_h_sleep_ms(200);
	}
	if (clear < 0 || clear > LEASE_MS)
		fail_msg("runs of the killed worker still had a dead owner %lld ms later",
			 (long long)(tlm_h_now_ms() - killed));
	print_message("takeover: no dead owner %lld ms after the kill\n", (long long)clear);
	wait_all_completed(NRUNS, 240000);
	for (i = 1; i < NWORKERS; i++)
		stop_worker(&w[i]);
	tlm_h_assert_no_tlm(&srv);
	check_request_log(NRUNS, &agents, &teams);
	assert_int_equal(agents, NRUNS);
	assert_int_equal(teams, NRUNS);
	for (i = 0; i < NWORKERS; i++)
		tlm_h_cmd_free(&w[i].c);
	for (i = 0; i < NRUNS; i++)
		free(ids[i]);
	free(file);
}

static void test_connection_cut(void **state)
{
	char *file = workflow("3"), *id, *e, sql[200], *n;
	worker w1, w2;
	size_t agents, teams;
	(void)state;

	id = submit(file);
	start_worker(&w1, 1, NULL, "--poll=1", NULL);
	wait_worker(&w1, "task t/a submitted", 30000);
	snprintf(sql, sizeof(sql),
		 "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname ="
		 " 't%d' AND application_name = 'telemachy'",
		 tlm_h_pg_group.ndb);
	n = tlm_h_pg_query(&tlm_h_pg_group, NULL, sql);
	assert_true(atoi(n) >= 2); /* the worker's and its run process's */
	free(n);
	/* The worker and its run process stop on their own. */
	tlm_h_cmd_wait(&w1.c, w1.dir, 20000);
	assert_int_equal(w1.c.exit_code, 1);
	e = worker_err(&w1);
	/* Whichever notices first — the worker or its run process — the run
	 * stops: handed back, or fenced (exit 5). */
	if (strstr(e, "connection to the database was lost") == NULL ||
	    (strstr(e, "handed back") == NULL && strstr(e, "exit 5") == NULL))
		fail_msg("the worker did not stop as it should:\n%s", e);
	free(e);
	start_worker(&w2, 2, NULL, "--poll=1", NULL);
	wait_all_completed(1, 60000);
	stop_worker(&w2);
	tlm_h_assert_no_tlm(&srv);
	check_request_log(1, &agents, &teams);
	assert_int_equal(agents, 1);
	tlm_h_cmd_free(&w1.c);
	tlm_h_cmd_free(&w2.c);
	free(id);
	free(file);
}

static void test_cancel_from_another_host(void **state)
{
	const char *elsewhere[] = { "TLM_TEST_DOMAIN=another-host", NULL };
	const char *args[] = { NULL, "--wait", "0", NULL };
	char *file = workflow("30"), *id;
	int64_t t0, took = -1;
	worker w;
	tlm_h_cmd c;
	(void)state;

	id = submit(file);
	start_worker(&w, 1, NULL, "--poll=1", NULL);
	wait_worker(&w, "task t/a submitted", 30000);
	args[0] = id;
	t0 = tlm_h_now_ms();
	jcmd(&c, elsewhere, "cancel", args, -1);
	tlm_h_cmd_free(&c);
	while (tlm_h_now_ms() - t0 < 10000) {
		char *e = worker_err(&w);
		int seen = strstr(e, "cancelled by `telemachy cancel`") != NULL;

		free(e);
		if (seen) {
			took = tlm_h_now_ms() - t0;
			break;
		}
		tlm_h_sleep_ms(20);
	}
	print_message("cancel reached the worker in %lld ms\n", (long long)took);
	assert_true(took >= 0 && took <= 1000);
	stop_worker(&w);
	tlm_h_assert_no_tlm(&srv);
	tlm_h_cmd_free(&w.c);
	free(id);
	free(file);
}

/* GET http://ADDR/metrics, the body (caller frees). */
static char *metrics(const char *addr)
{
	char url[128];
	tlm_h_body b = { NULL, 0 };
	CURL *c = curl_easy_init();

	snprintf(url, sizeof(url), "http://%s/metrics", addr);
	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tlm_h_curl_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (curl_easy_perform(c) != CURLE_OK || b.data == NULL)
		fail_msg("no metrics at %s", url);
	curl_easy_cleanup(c);
	return b.data;
}

static void test_drain_hands_back(void **state)
{
	char *file = workflow("3"), *id, *e, *m, listen[64];
	worker w1, w2;
	(void)state;

	id = submit(file);
	snprintf(listen, sizeof(listen), "--metrics-listen=127.0.0.1:%u", tlm_h_free_port());
	start_worker(&w1, 1, NULL, "--drain-timeout=0", listen);
	wait_worker(&w1, "task t/a submitted", 30000);
	/* The worker's own figures; its run process exports none (one port). */
	m = metrics(listen + strlen("--metrics-listen="));
	assert_non_null(strstr(m, "telemachy_worker_runs_in_hand 1\n"));
	assert_non_null(strstr(m, "telemachy_worker_run_processes_total "));
	assert_non_null(strstr(m, "telemachy_worker_draining 0\n"));
	free(m);
	kill(w1.c.pid, SIGTERM);
	tlm_h_cmd_wait(&w1.c, w1.dir, 40000);
	assert_int_equal(w1.c.exit_code, 0);
	e = worker_err(&w1);
	assert_non_null(strstr(e, "handed back"));
	free(e);
	start_worker(&w2, 2, NULL, "--poll=1", NULL);
	wait_all_completed(1, 60000);
	stop_worker(&w2);
	tlm_h_assert_no_tlm(&srv);
	tlm_h_cmd_free(&w1.c);
	tlm_h_cmd_free(&w2.c);
	free(id);
	free(file);
}

/* A drain that is long enough: the run in hand finishes here, nothing is
 * handed back, and the worker exits 0 once it has. */
static void test_drain_lets_runs_finish(void **state)
{
	char *file = workflow("2"), *id, *e;
	worker w;
	json_t *rs;
	(void)state;

	id = submit(file);
	start_worker(&w, 1, NULL, "--drain-timeout=60", NULL);
	wait_worker(&w, "task t/a submitted", 30000);
	kill(w.c.pid, SIGTERM);
	tlm_h_cmd_wait(&w.c, w.dir, 60000);
	assert_int_equal(w.c.exit_code, 0);
	e = worker_err(&w);
	assert_null(strstr(e, "handed back"));
	assert_non_null(strstr(e, "draining: 1 run(s) in hand"));
	free(e);
	rs = runs();
	assert_int_equal(count_state(rs, "completed"), 1);
	json_decref(rs);
	tlm_h_assert_no_tlm(&srv);
	tlm_h_cmd_free(&w.c);
	free(id);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_submit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_three_workers_one_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_from_another_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_hands_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_lets_runs_finish, setup, teardown),
	};

	return cmocka_run_group_tests(tests, tlm_h_pg_group_setup, tlm_h_pg_group_teardown);
}
