/* The engine's provisioning guarantees through the real binary against the
 * real `telemachy serve` with injected faults (issue 5): the original bug
 * (a start that fails after its create succeeded), a partial fan-out, lost
 * create replies for agents and teams, and a run that needs nothing but the
 * built-in control plane.  After every run the server must hold no `tlm-`
 * resource the test did not expect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS 60000

static tlm_h_serve srv;
static tlm_h_run run;
static char *dir;

static const char three_agents[] = "apiVersion: telemachy/v1\n"
				   "metadata: {name: fanout}\n"
				   "agents:\n"
				   "  - {name: a, program: none}\n"
				   "  - {name: b, program: none}\n"
				   "  - {name: c, program: none}\n"
				   "teams:\n"
				   "  - name: t\n"
				   "    agents: [a, b, c]\n"
				   "    tasks:\n"
				   "      - {subject: s, description: d, assign_to: a}\n";

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

/* Runs file against srv with the extra args; returns the exit code. */
static int run_on_srv(const char *file, const char *const *extra)
{
	tlm_h_run_on(&run, &srv, file, NULL, extra);
	return tlm_h_run_finish(&run, RUN_MS);
}

/* The predecessor's bug, deterministically: the create succeeds, the start
 * fails; the agent must still be deleted at teardown, and the run fails
 * before any task (exit 1). */
static void test_start_fails_after_create(void **state)
{
	const char *args[] = { "--fault", "fail:route=POST /v1/agents/*/start,status=400", NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", three_agents);

	(void)state;
	tlm_h_serve_start(&srv, args);
	assert_int_equal(run_on_srv(file, NULL), 1);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "failed");
	assert_true(json_is_true(json_object_get(run.result, "torn_down")));
	assert_int_equal(json_array_size(json_object_get(run.result, "leftovers")), 0);
	assert_int_equal(tlm_h_int(run.result, "agents_created"), 3);
	assert_non_null(strstr(tlm_h_str(run.result, "error"), "start failed"));
	assert_string_equal(tlm_h_task_status(&run, 0), "cancelled");
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* One request at a time: a ok, b's create refused (400), c ok.  The wave
 * finishes; a and c are deleted. */
static void test_partial_fanout(void **state)
{
	const char *args[] = { "--fault", "fail:route=POST /v1/agents,nth=2,status=400", NULL };
	const char *extra[] = { "--max-concurrent", "1", NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", three_agents);

	(void)state;
	tlm_h_serve_start(&srv, args);
	assert_int_equal(run_on_srv(file, extra), 1);
	assert_int_equal(tlm_h_int(run.result, "agents_created"), 2);
	assert_non_null(strstr(tlm_h_str(run.result, "error"), "agent b: create failed"));
	assert_int_equal(tlm_h_fault_fired(&srv, 0), 1);
	assert_non_null(strstr(run.err, "tlm-"));
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* A create is committed and its reply lost: the engine finds the agent (or
 * the team) by name and makes no duplicate.  With teardown never and a
 * completed run, what exists afterwards is exactly one of each. */
static void lost_reply(const char *route)
{
	char fault[128];
	const char *args[] = { "--fault", fault, NULL };
	char *file = tlm_h_write_file(
		dir, "w.yaml",
		"apiVersion: telemachy/v1\n"
		"metadata: {name: lost}\n"
		"teardown: never\n"
		"agents: [{name: a, program: none}]\n"
		"teams:\n"
		"  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n");

	snprintf(fault, sizeof(fault), "drop:route=%s", route);
	tlm_h_serve_start(&srv, args);
	assert_int_equal(run_on_srv(file, NULL), 0);
	assert_int_equal(tlm_h_fault_fired(&srv, 0), 1);
	assert_string_equal(tlm_h_task_status(&run, 0), "completed");
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), 1);
	assert_int_equal(tlm_h_count_prefixed(&srv, "teams", "tlm-"), 1);
	/* kept by policy, and listed as such */
	assert_int_equal(json_array_size(json_object_get(run.result, "leftovers")), 2);
	free(file);
}

static void test_lost_agent_reply(void **state)
{
	(void)state;
	lost_reply("POST /v1/agents");
}

static void test_lost_team_reply(void **state)
{
	(void)state;
	lost_reply("POST /v1/teams");
}

/* The same lost replies, torn down: nothing is left. */
static void test_lost_replies_torn_down(void **state)
{
	const char *args[] = { "--fault", "drop:route=POST /v1/agents", "--fault",
			       "drop:route=POST /v1/teams", NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", three_agents);

	(void)state;
	tlm_h_serve_start(&srv, args);
	assert_int_equal(run_on_srv(file, NULL), 0);
	assert_int_equal(tlm_h_fault_fired(&srv, 0), 1);
	assert_int_equal(tlm_h_fault_fired(&srv, 1), 1);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* No AGAMEMNON_URL: the built-in control plane runs in-process. */
static void test_builtin_control_plane(void **state)
{
	(void)state;
	tlm_h_run_wf(&run, NULL, NULL, TLM_SOURCE_DIR "/examples/hello-world.yaml", RUN_MS);
	assert_int_equal(run.exit_code, 0);
	assert_non_null(run.result);
	assert_string_equal(tlm_h_str(run.result, "state"), "completed");
	assert_string_equal(tlm_h_task_status(&run, 0), "completed");
}

/* An unreachable control plane fails the preflight: exit 3, nothing made. */
static void test_unreachable(void **state)
{
	char url[64];
	const char *env[] = { url, NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", three_agents);

	(void)state;
	snprintf(url, sizeof(url), "AGAMEMNON_URL=http://127.0.0.1:%u", tlm_h_free_port());
	tlm_h_run_wf(&run, env, NULL, file, RUN_MS);
	assert_int_equal(run.exit_code, 3);
	assert_non_null(strstr(run.err, "preflight failed"));
	assert_non_null(strstr(run.err, "unreachable"));
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_fails_after_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_fanout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_agent_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_team_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_replies_torn_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_builtin_control_plane, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
