/* Orphaned work (issue 12, item 1) through the real binary against the real
 * `telemachy serve`: a run that stops — interrupted, timed out, failed
 * under a policy that keeps resources, or torn down by `teardown RUN` after
 * a crash — ends every task it submitted that is not terminal (status
 * failed, with a note saying why) before deleting anything, and journals
 * it; an attempt that timed out is ended at once; a task that could not be
 * ended is a leftover (exit 4) that a later `teardown RUN` ends.  Tasks
 * outlive their team on the server, so each test reads them after the run. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS 60000
#define CMD_MS 30000

static tlm_h_serve srv;
static tlm_h_run run;
static char *dir;

/* Two tasks that run 30 s on one agent, and one waiting for the first. */
static const char sleepers[] =
	"apiVersion: telemachy/v1\n"
	"metadata: {name: ew}\n"
	"%s"
	"agents:\n"
	"  - {name: s, program: /bin/sh, args: ['-c', 'sleep 30']}\n"
	"teams:\n"
	"  - name: t\n"
	"    agents: [s]\n"
	"    tasks:\n"
	"      - {subject: a, description: d, assign_to: s}\n"
	"      - {subject: b, description: d, assign_to: s}\n"
	"      - {subject: c, description: d, assign_to: s, blocked_by: [a]}\n";

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&run, 0, sizeof(run));
	dir = tlm_h_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_run_clear(&run);
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

/* sleepers with head (workflow-level lines, may be "") in a file. */
static char *workflow(const char *head)
{
	char text[2048];

	snprintf(text, sizeof(text), sleepers, head);
	return tlm_h_write_file(dir, "w.yaml", text);
}

static void wait_err(const char *text, int ms)
{
	if (tlm_h_run_wait_for(&run, text, ms) != 0) {
		tlm_h_run_wait(&run, 100);
		fail_msg("no \"%s\" on stderr within %d ms; stderr:\n%s", text, ms, run.err);
	}
}

/* `telemachy SUB --state-dir <run's> ARGS... ` against srv; exit must be want. */
static void rcmd(const char *sub, const char *const *args, int want, tlm_h_cmd *c)
{
	char urlenv[200], state[4096];
	const char *env[] = { urlenv, NULL }, *argv[16];
	size_t n = 0, i;

	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", srv.url);
	snprintf(state, sizeof(state), "%s/state", run.dir);
	argv[n++] = sub;
	argv[n++] = "--state-dir";
	argv[n++] = state;
	for (i = 0; args != NULL && args[i] != NULL && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	tlm_h_cmd_run(c, dir, env, argv, CMD_MS);
	if (c->exit_code != want)
		fail_msg("telemachy %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", sub,
			 c->exit_code, want, c->out, c->err);
}

/* The journal of the run (status --output json; the caller decrefs). */
static json_t *journal(void)
{
	const char *args[] = { "--output", "json", NULL, NULL };
	tlm_h_cmd c;
	json_t *st;

	args[2] = tlm_h_str(run.result, "run_id");
	rcmd("status", args, 0, &c);
	if (c.json == NULL)
		fail_msg("status: not JSON:\n%s", c.out);
	st = json_incref(c.json);
	tlm_h_cmd_free(&c);
	return st;
}

/* The server's tasks of the run's team t (the caller decrefs). */
static json_t *server_tasks(const json_t *st)
{
	char path[512];
	json_t *team = NULL, *tasks = NULL, *r;
	size_t i;

	json_array_foreach(json_object_get(st, "resources"), i,
			   r) if (strcmp(tlm_h_str(r, "kind"), "team") == 0) team = r;
	if (team == NULL)
		fail_msg("no team in the journal: %s", tlm_h_dump(st));
	snprintf(path, sizeof(path), "/v1/teams/%s/tasks", tlm_h_str(team, "remote_id"));
	assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &tasks), 200);
	return tasks;
}

/* Every task on the server is failed with a note naming the run and why;
 * returns how many there are. */
static size_t assert_all_ended(const json_t *tasks, const char *run_id, const char *why)
{
	char want[128];
	json_t *t;
	size_t i;

	snprintf(want, sizeof(want), "cancelled by telemachy: run %s %s", run_id, why);
	json_array_foreach(json_object_get(tasks, "tasks"), i, t)
	{
		if (strcmp(tlm_h_str(t, "status"), "failed") != 0 ||
		    strcmp(tlm_h_str(t, "note"), want) != 0)
			fail_msg("task %s not ended with \"%s\": %s", tlm_h_str(t, "subject"), want,
				 tlm_h_dump(t));
	}
	return json_array_size(json_object_get(tasks, "tasks"));
}

/* Every submitted attempt of the journal is recorded as ended (audited: by
 * the end of the run, with an audit entry). */
static void assert_journal_ended(const json_t *st, size_t want, int audited)
{
	json_t *t;
	size_t i, n = 0;

	json_array_foreach(json_object_get(st, "tasks"), i, t)
	{
		if (!json_is_string(json_object_get(t, "remote_id")))
			continue;
		if (!json_is_string(json_object_get(t, "ended")))
			fail_msg("attempt not journaled as ended: %s", tlm_h_dump(t));
		n++;
	}
	assert_int_equal(n, want);
	if (audited && tlm_h_find(st, "audit", "action", "end-tasks") == NULL)
		fail_msg("no end-tasks audit entry: %s", tlm_h_dump(st));
}

/* 1. SIGINT: the two tasks the agent was working on are failed on the
 * server, with the note, before the team is deleted; nothing is left. */
static void test_interrupted(void **state)
{
	char *file = workflow("");
	json_t *st, *tasks;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	wait_err("task t/b submitted", 20000);
	kill(run.pid, SIGINT);
	assert_int_equal(tlm_h_run_finish(&run, 20000), 130);
	tlm_h_assert_no_tlm(&srv);
	st = journal();
	tasks = server_tasks(st);
	assert_int_equal(assert_all_ended(tasks, tlm_h_str(run.result, "run_id"), "interrupted"),
			 2);
	assert_journal_ended(st, 2, 1);
	assert_non_null(strstr(run.err, "task t/a ended on the control plane"));
	/* ended before the team was deleted */
	assert_true(strstr(run.err, "ended on the control plane") < strstr(run.err, "team tlm-"));
	json_decref(tasks);
	json_decref(st);
	free(file);
}

/* 2. The workflow's timeout: the note says so. */
static void test_timed_out(void **state)
{
	char *file = workflow("timeout_seconds: 2\n");
	json_t *st, *tasks;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 1);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "timed_out");
	tlm_h_assert_no_tlm(&srv);
	st = journal();
	tasks = server_tasks(st);
	assert_int_equal(assert_all_ended(tasks, tlm_h_str(run.result, "run_id"), "timed out"), 2);
	assert_journal_ended(st, 2, 1);
	json_decref(tasks);
	json_decref(st);
	free(file);
}

/* 3. Resources kept by the policy keep no work: a per-task timeout whose
 * update the server refused leaves the task running there; the run,
 * failed and kept, ends it before listing what it keeps. */
static void test_kept_by_policy(void **state)
{
	const char *fault[] = { "--fault", "fail:route=PUT /v1/teams/*/tasks/*,status=400", NULL };
	char *file = tlm_h_write_file(dir, "w.yaml",
				      "apiVersion: telemachy/v1\n"
				      "metadata: {name: ew-kept}\n"
				      "teardown: never\n"
				      "agents:\n"
				      "  - {name: s, program: /bin/sh, args: ['-c', 'sleep 30']}\n"
				      "teams:\n"
				      "  - name: t\n"
				      "    agents: [s]\n"
				      "    tasks:\n"
				      "      - {subject: x, description: d, timeout_seconds: 1}\n");
	const char *args[] = { NULL, NULL };
	tlm_h_cmd c;
	json_t *st, *tasks;

	(void)state;
	tlm_h_serve_start(&srv, fault);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 1);
	assert_non_null(strstr(run.err, "could not be ended"));
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), 1);
	st = journal();
	tasks = server_tasks(st);
	assert_int_equal(assert_all_ended(tasks, tlm_h_str(run.result, "run_id"), "failed"), 1);
	assert_journal_ended(st, 1, 1);
	json_decref(tasks);
	json_decref(st);
	args[0] = tlm_h_str(run.result, "run_id");
	rcmd("teardown", args, 0, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 4. `teardown RUN` after the owner was SIGKILLed ends the tasks the dead
 * process left running. */
static void test_teardown_after_crash(void **state)
{
	char *file = workflow(""), id[64];
	const char *args[] = { id, NULL };
	const char *p;
	tlm_h_cmd c;
	json_t *st, *tasks;
	size_t n = 0;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	wait_err("task t/b submitted", 20000);
	kill(run.pid, SIGKILL);
	tlm_h_run_wait(&run, 10000);
	p = strstr(run.err, "] run ");
	assert_non_null(p);
	for (p += 6; *p != ' ' && n + 1 < sizeof(id); p++)
		id[n++] = *p;
	id[n] = '\0';
	rcmd("teardown", args, 0, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	json_decref(run.result);
	run.result = json_pack("{s:s}", "run_id", id);
	st = journal();
	tasks = server_tasks(st);
	assert_int_equal(assert_all_ended(tasks, id, "torn down"), 2);
	assert_journal_ended(st, 2, 1);
	json_decref(tasks);
	json_decref(st);
	free(file);
}

/* 5. A per-task timeout ends the attempt at once (its note names the
 * attempt), and the retry is a new task. */
static void test_task_timeout(void **state)
{
	char *file = tlm_h_write_file(
		dir, "w.yaml",
		"apiVersion: telemachy/v1\n"
		"metadata: {name: ew-retry}\n"
		"teardown: always\n"
		"agents:\n"
		"  - {name: s, program: /bin/sh, args: ['-c', 'sleep 30']}\n"
		"teams:\n"
		"  - name: t\n"
		"    agents: [s]\n"
		"    tasks:\n"
		"      - {subject: x, description: d, timeout_seconds: 1, retries: 1}\n");
	json_t *st, *tasks, *t;
	size_t i, n = 0;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 1);
	tlm_h_assert_no_tlm(&srv);
	st = journal();
	tasks = server_tasks(st);
	assert_int_equal(json_array_size(json_object_get(tasks, "tasks")), 2);
	json_array_foreach(json_object_get(tasks, "tasks"), i, t)
	{
		assert_string_equal(tlm_h_str(t, "status"), "failed");
		if (strstr(tlm_h_str(t, "note"), "timed out after 1 s") != NULL)
			n++;
	}
	assert_int_equal(n, 2);
	assert_journal_ended(st, 2, 0);
	json_decref(tasks);
	json_decref(st);
	free(file);
}

/* 6. The server refuses the updates (and to stop or delete the agent, which
 * would fail its tasks on this server): each task is a leftover (exit 4),
 * and a later `teardown RUN` ends them and deletes the agent. */
static void test_update_refused(void **state)
{
	const char *faults[] = { "--fault", "fail:route=PUT /v1/teams/*/tasks/*,count=0,status=400",
				 "--fault", "fail:route=POST /v1/agents/*/stop,count=0,status=400",
				 "--fault", "fail:route=DELETE /v1/agents/*,count=0,status=400",
				 NULL };
	const char *ids[] = { "/v1/chaos/f1", "/v1/chaos/f2", "/v1/chaos/f3" };
	char *file = workflow("");
	const char *args[] = { NULL, NULL };
	tlm_h_cmd c;
	json_t *lo, *st, *tasks;
	size_t i, n = 0;

	(void)state;
	tlm_h_serve_start(&srv, faults);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	wait_err("task t/b submitted", 20000);
	kill(run.pid, SIGINT);
	assert_int_equal(tlm_h_run_finish(&run, 20000), 4);
	json_array_foreach(json_object_get(run.result, "leftovers"), i,
			   lo) if (strcmp(tlm_h_str(lo, "kind"), "task") == 0 &&
				   strstr(tlm_h_str(lo, "reason"), "could not be ended") != NULL)
		n++;
	if (n != 2)
		fail_msg("want 2 task leftovers: %s", tlm_h_dump(run.result));
	for (i = 0; i < 3; i++)
		assert_int_equal(tlm_h_req(&srv, "DELETE", ids[i], NULL, NULL), 200);
	args[0] = tlm_h_str(run.result, "run_id");
	rcmd("teardown", args, 0, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	st = journal();
	tasks = server_tasks(st);
	assert_int_equal(assert_all_ended(tasks, args[0], "torn down"), 2);
	assert_journal_ended(st, 2, 1);
	json_decref(tasks);
	json_decref(st);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_interrupted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timed_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_by_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
