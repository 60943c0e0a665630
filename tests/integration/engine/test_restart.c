/* A control plane that restarts without its state (issue 12, item 6),
 * emulated by stopping `telemachy serve` (which keeps everything in memory
 * by default) mid-run and starting a new one on the same port.  What the
 * run believed alive answers 404: it is recorded `absent` with a warning,
 * counted as vanished in the summary, and neither listed as kept nor left
 * for `status` as "may still exist remotely". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS 60000
#define CMD_MS 30000

static tlm_h_serve srv;
static tlm_h_run run;
static char *dir;

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

/* One agent that works for 30 s on one task, under policy. */
static char *workflow(const char *policy)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "apiVersion: telemachy/v1\n"
		 "metadata: {name: restart}\n"
		 "teardown: %s\n"
		 "agents:\n"
		 "  - {name: s, program: /bin/sh, args: ['-c', 'sleep 30']}\n"
		 "teams:\n"
		 "  - {name: t, agents: [s], tasks: [{subject: x, description: d}]}\n",
		 policy);
	return tlm_h_write_file(dir, "w.yaml", text);
}

/* Starts the run, and once its task is submitted replaces the server by an
 * empty one on the same port; returns the run's exit code. */
static int run_through_restart(const char *file)
{
	char listen[64];
	const char *args[] = { "--listen", listen, NULL };

	tlm_h_serve_start(&srv, NULL);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)srv.port);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	if (tlm_h_run_wait_for(&run, "task t/x submitted", 20000) != 0) {
		tlm_h_run_wait(&run, 100);
		fail_msg("the task was not submitted:\n%s", run.err);
	}
	tlm_h_serve_stop(&srv);
	tlm_h_serve_start(&srv, args);
	return tlm_h_run_finish(&run, RUN_MS);
}

/* status --output json of the run (the caller decrefs). */
static json_t *journal(void)
{
	char state[4096];
	const char *argv[] = { "status", "--state-dir", state, "--output", "json", NULL, NULL };
	tlm_h_cmd c;
	json_t *st;

	snprintf(state, sizeof(state), "%s/state", run.dir);
	argv[5] = tlm_h_str(run.result, "run_id");
	tlm_h_cmd_run(&c, dir, NULL, argv, CMD_MS);
	if (c.exit_code != 0 || c.json == NULL)
		fail_msg("status: exit %d\n%s\n%s", c.exit_code, c.out, c.err);
	st = json_incref(c.json);
	tlm_h_cmd_free(&c);
	return st;
}

/* The agent and the team are journaled absent with the 404 as reason, and
 * nothing may still exist. */
static void assert_vanished(void)
{
	json_t *st = journal(), *r;
	size_t i;

	assert_int_equal(tlm_h_int(st, "leftovers"), 0);
	assert_int_equal(json_array_size(json_object_get(st, "resources")), 2);
	json_array_foreach(json_object_get(st, "resources"), i, r)
	{
		if (strcmp(tlm_h_str(r, "state"), "absent") != 0 ||
		    strstr(tlm_h_str(r, "last_error"), "(404)") == NULL)
			fail_msg("not recorded as vanished: %s", tlm_h_dump(r));
	}
	json_decref(st);
	assert_int_equal(tlm_h_int(run.result, "vanished"), 2);
	assert_non_null(strstr(run.err, "is gone from the control plane (404): recorded absent"));
}

/* 1. Kept by the policy: what vanished is not listed as kept. */
static void test_kept_vanished(void **state)
{
	char *file = workflow("never");

	(void)state;
	assert_int_equal(run_through_restart(file), 1);
	assert_int_equal(json_array_size(json_object_get(run.result, "leftovers")), 0);
	assert_vanished();
	free(file);
}

/* 2. Torn down: the deletes' 404s are a vanished resource each, not a
 * delete, and not a leftover. */
static void test_teardown_vanished(void **state)
{
	char *file = workflow("always");

	(void)state;
	assert_int_equal(run_through_restart(file), 1);
	assert_int_equal(json_array_size(json_object_get(run.result, "leftovers")), 0);
	assert_vanished();
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kept_vanished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_vanished, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
