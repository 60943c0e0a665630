/* The shared journal through the real binary (docs/distributed.md), with a
 * real PostgreSQL and a real `telemachy serve`: a run journaled in
 * PostgreSQL completes and is seen by other processes (list, status); a
 * run whose process was SIGKILLed is torn down by another (0 left on the
 * server); cancel from another process stops a running run; abandon and
 * reconcile work on it; a password on the command line is refused; and the
 * password is in nothing printed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/pg.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS 60000
#define CMD_MS 30000

static tlm_h_serve srv;
static tlm_h_run run;
static char *dir, *uri;

static const char sleeper[] = "apiVersion: telemachy/v1\n"
			      "metadata: {name: shared}\n"
			      "agents:\n"
			      "  - {name: s, program: /bin/sh, args: ['-c', 'sleep 30']}\n"
			      "teams:\n"
			      "  - name: t\n"
			      "    agents: [s]\n"
			      "    tasks:\n"
			      "      - {subject: a, description: d, assign_to: s}\n";

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&run, 0, sizeof(run));
	dir = tlm_h_tmpdir();
	uri = tlm_h_pg_newdb(&tlm_h_pg_group);
	tlm_h_serve_start(&srv, NULL);
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
	free(uri);
	return 0;
}

/* `telemachy SUB --journal URI ARGS...`, as another process would; the
 * exit must be want, and the password appears in neither stream. */
static void jcmd(const char *sub, const char *const *args, int want, tlm_h_cmd *c)
{
	char urlenv[200];
	const char *env[] = { urlenv, NULL }, *argv[16];
	size_t n = 0, i;

	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", srv.url);
	argv[n++] = sub;
	argv[n++] = "--journal";
	argv[n++] = uri;
	for (i = 0; args != NULL && args[i] != NULL && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	tlm_h_cmd_run(c, dir, env, argv, CMD_MS);
	if (c->exit_code != want)
		fail_msg("telemachy %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", sub,
			 c->exit_code, want, c->out, c->err);
	assert_null(strstr(c->out, tlm_h_pg_group.password));
	assert_null(strstr(c->err, tlm_h_pg_group.password));
}

static void start_sleeper(void)
{
	const char *args[] = { "--journal", uri, NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", sleeper);

	tlm_h_run_on(&run, &srv, file, NULL, args);
	free(file);
	if (tlm_h_run_wait_for(&run, "task t/a submitted", 20000) != 0) {
		tlm_h_run_wait(&run, 100);
		fail_msg("the run did not submit its task; stderr:\n%s", run.err);
	}
}

/* The id of the only run (list --output json). */
static char *only_run(void)
{
	const char *args[] = { "--output", "json", NULL };
	tlm_h_cmd c;
	json_t *runs;
	char *id;

	jcmd("list", args, 0, &c);
	runs = json_is_array(c.json) ? c.json : json_object_get(c.json, "runs");
	if (json_array_size(runs) != 1)
		fail_msg("want one run, list said:\n%s", c.out);
	id = strdup(tlm_h_str(json_array_get(runs, 0), "id"));
	tlm_h_cmd_free(&c);
	return id;
}

static void test_run_seen_by_others(void **state)
{
	const char *args[] = { "--journal", uri, NULL };
	const char *sargs[] = { "--output", "json", NULL, NULL };
	char file[512];
	tlm_h_cmd c;
	char *id;
	(void)state;

	snprintf(file, sizeof(file), "%s/examples/hello-world.yaml", TLM_SOURCE_DIR);
	tlm_h_run_on(&run, &srv, file, NULL, args);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	tlm_h_assert_all_completed(&run);
	assert_null(strstr(run.err, tlm_h_pg_group.password));
	tlm_h_assert_no_tlm(&srv);
	/* Nothing went to the SQLite state directory the harness passed before
	 * --journal (the later option wins). */
	snprintf(file, sizeof(file), "%s/state/journal.db", run.dir);
	assert_int_not_equal(access(file, F_OK), 0);
	id = only_run();
	assert_string_equal(id, tlm_h_str(run.result, "run_id"));
	sargs[2] = id;
	jcmd("status", sargs, 0, &c);
	assert_string_equal(tlm_h_str(json_object_get(c.json, "run"), "state"), "completed");
	assert_int_equal(json_array_size(json_object_get(c.json, "resources")), 2);
	tlm_h_cmd_free(&c);
	free(id);
}

static void test_teardown_after_kill(void **state)
{
	const char *args[] = { NULL, NULL };
	tlm_h_cmd c;
	char *id;
	(void)state;

	start_sleeper();
	kill(run.pid, SIGKILL);
	tlm_h_run_wait(&run, 10000);
	assert_true(tlm_h_count_prefixed(&srv, "agents", "tlm-") > 0);
	id = only_run();
	args[0] = id;
	jcmd("teardown", args, 0, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	free(id);
}

/* Hooks at least once on PostgreSQL (docs/hooks.md, "At least once"): the
 * task's event is journaled and its delivery recorded on the shared
 * journal; the owner is killed; `teardown` from another process delivers
 * the run's end and does not deliver the task's event again. */
static void test_hooks_on_shared_journal(void **state)
{
	const char *args[] = { "--journal", uri, NULL }, *targs[] = { NULL, NULL };
	char spec[2048], log[512], sql[256], *file, *text, *v, *id;
	tlm_h_cmd c;
	int i;
	(void)state;

	snprintf(log, sizeof(log), "%s/hooks.log", dir);
	snprintf(
		spec, sizeof(spec),
		"apiVersion: telemachy/v1\n"
		"metadata: {name: hooked}\n"
		"agents:\n"
		"  - {name: q, program: none}\n"
		"  - {name: s, program: /bin/sh, args: ['-c', 'sleep 30']}\n"
		"teams:\n"
		"  - name: t\n"
		"    agents: [q, s]\n"
		"    tasks:\n"
		"      - {subject: a, description: d, assign_to: q}\n"
		"      - {subject: b, description: d, assign_to: s}\n"
		"hooks:\n"
		"  - {event: task_completed, command: [/bin/sh, -c, 'echo \"$TLM_EVENT_ID\" >> %s']}\n"
		"  - {event: run_cancelled, command: [/bin/sh, -c, 'echo \"$TLM_EVENT_ID\" >> %s']}\n",
		log, log);
	file = tlm_h_write_file(dir, "hooked.yaml", spec);
	tlm_h_run_on(&run, &srv, file, NULL, args);
	free(file);
	for (i = 0; i < 200 && access(log, F_OK) != 0; i++)
		usleep(100000);
	assert_int_equal(access(log, F_OK), 0);
	/* The delivery is recorded after the hook exits: wait for the row. */
	for (i = 0; i < 100; i++) {
		v = tlm_h_pg_query(&tlm_h_pg_group, uri, "SELECT count(*) FROM hook_deliveries");
		if (v != NULL && strcmp(v, "1") == 0)
			break;
		free(v);
		v = NULL;
		usleep(100000);
	}
	assert_non_null(v);
	free(v);
	kill(run.pid, SIGKILL);
	tlm_h_run_wait(&run, 10000);
	assert_null(strstr(run.err, "is not in the journal")); /* every event was */
	id = only_run();
	targs[0] = id;
	jcmd("teardown", targs, 0, &c);
	assert_null(strstr(c.err, "is not in the journal"));
	tlm_h_cmd_free(&c);
	text = tlm_h_slurp(log);
	snprintf(spec, sizeof(spec), "%s:task_completed:t/a:1\n%s:run_cancelled:cancelled\n", id,
		 id);
	assert_string_equal(text, spec);
	free(text);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM run_events WHERE run_id = '%s'", id);
	v = tlm_h_pg_query(&tlm_h_pg_group, uri, sql);
	assert_string_equal(v, "2");
	free(v);
	v = tlm_h_pg_query(&tlm_h_pg_group, uri, "SELECT count(*) FROM hook_deliveries");
	assert_string_equal(v, "2");
	free(v);
	free(id);
}

static void test_cancel_from_another_process(void **state)
{
	const char *args[] = { NULL, NULL };
	int64_t t0;
	tlm_h_cmd c;
	char *id;
	int code;
	(void)state;

	start_sleeper();
	id = only_run();
	args[0] = id;
	t0 = tlm_h_now_ms();
	jcmd("cancel", args, 0, &c);
	tlm_h_cmd_free(&c);
	code = tlm_h_run_finish(&run, RUN_MS);
	assert_int_not_equal(code, 0);
	assert_true(tlm_h_now_ms() - t0 < 20000); /* not the 30 s sleep */
	tlm_h_assert_no_tlm(&srv);
	free(id);
}

/* abandon and reconcile read and write the shared journal as they do a
 * local one: an abandoned team survives teardown, reconcile names it, and
 * reconcile --delete removes it. */
static void test_abandon_and_reconcile(void **state)
{
	const char *ab[] = { NULL, "team/t", "--reason", "a test", NULL };
	const char *td[] = { NULL, NULL };
	const char *rc[] = { "--output", "json", NULL };
	const char *rd[] = { "--delete", NULL };
	json_t *teams;
	char path[256];
	tlm_h_cmd c;
	char *id;
	(void)state;

	start_sleeper();
	kill(run.pid, SIGKILL);
	tlm_h_run_wait(&run, 10000);
	id = only_run();
	ab[0] = td[0] = id;
	jcmd("abandon", ab, 0, &c);
	tlm_h_cmd_free(&c);
	jcmd("teardown", td, 0, &c);
	if (tlm_h_count_prefixed(&srv, "agents", "tlm-") != 0)
		fail_msg("teardown left the agent:\n%s\n%s", c.out, c.err);
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_h_count_prefixed(&srv, "teams", "tlm-"), 1);
	jcmd("reconcile", rc, 0, &c);
	if (strstr(c.out, "-t-t") == NULL)
		fail_msg("reconcile did not name the abandoned team:\n%s", c.out);
	tlm_h_cmd_free(&c);
	/* Abandoned means the operator's to delete: --delete only reports it. */
	jcmd("reconcile", rd, 0, &c);
	assert_non_null(strstr(c.out, "abandoned in run"));
	tlm_h_cmd_free(&c);
	teams = tlm_h_list_prefixed(&srv, "teams", "tlm-");
	snprintf(path, sizeof(path), "/v1/teams/%s", tlm_h_str(json_array_get(teams, 0), "id"));
	assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, NULL), 200);
	tlm_h_assert_no_tlm(&srv);
	json_decref(teams);
	free(id);
}

/* doctor checks the database instead of a state directory; a wrong
 * password is a failed check that says where passwords come from. */
static void test_doctor(void **state)
{
	const char *bad[] = { "PGPASSWORD=not-it", NULL };
	const char *argv[] = { "doctor", "--journal", uri, NULL };
	tlm_h_cmd c;
	(void)state;

	/* An empty database: no journal yet, which is fine. */
	jcmd("doctor", NULL, 0, &c);
	assert_non_null(strstr(c.out, "none yet"));
	assert_null(strstr(c.out, "state-dir"));
	tlm_h_cmd_free(&c);
	jcmd("list", NULL, 0, &c); /* the first use makes the schema */
	tlm_h_cmd_free(&c);
	jcmd("doctor", NULL, 0, &c);
	assert_non_null(strstr(c.out, "integrity ok, schema version"));
	tlm_h_cmd_free(&c);
	tlm_h_cmd_run(&c, dir, bad, argv, CMD_MS);
	assert_int_equal(c.exit_code, 1);
	assert_non_null(strstr(c.out, "PGPASSWORD"));
	assert_null(strstr(c.out, "not-it"));
	tlm_h_cmd_free(&c);
}

static void test_password_on_command_line_refused(void **state)
{
	char with[256];
	const char *argv[] = { "list", "--journal", with, NULL };
	tlm_h_cmd c;
	(void)state;

	snprintf(with, sizeof(with), "postgresql://telemachy:%s@127.0.0.1:%u/postgres",
		 tlm_h_pg_group.password, tlm_h_pg_group.port);
	tlm_h_cmd_run(&c, dir, NULL, argv, CMD_MS);
	assert_int_equal(c.exit_code, 2);
	assert_non_null(strstr(c.err, "PGPASSWORD"));
	assert_null(strstr(c.err, tlm_h_pg_group.password));
	tlm_h_cmd_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_seen_by_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_after_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hooks_on_shared_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_from_another_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandon_and_reconcile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_doctor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_on_command_line_refused, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, tlm_h_pg_group_setup, tlm_h_pg_group_teardown);
}
