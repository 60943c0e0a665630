/* The predecessor's lessons (docs/lessons.md) that the other engine
 * tests do not already pin, each named after its item: a teardown that
 * meets errors goes on and says what is left (6), a 404 on delete counts as
 * deleted (6), two runs of one workflow at once stay apart (7), two teams
 * with a task of the same subject do not mix up their statuses (11), and an
 * agent's arguments reach the control plane as an array with the model
 * beside them, never as one string (15). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS 60000

static tlm_h_serve srv;
static tlm_h_run run, run2;
static char *dir;

static const char two_agents[] = "apiVersion: telemachy/v1\n"
				 "metadata: {name: lessons}\n"
				 "agents:\n"
				 "  - {name: a, program: none}\n"
				 "  - {name: b, program: none}\n"
				 "teams:\n"
				 "  - name: t\n"
				 "    agents: [a, b]\n"
				 "    tasks:\n"
				 "      - {subject: s, description: d, assign_to: a}\n";

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&run, 0, sizeof(run));
	memset(&run2, 0, sizeof(run2));
	dir = tlm_h_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_run_clear(&run);
	tlm_h_run_clear(&run2);
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

static json_t *leftover(size_t i)
{
	json_t *l = json_array_get(json_object_get(run.result, "leftovers"), i);

	if (l == NULL)
		fail_msg("no leftover %zu:\n%s\nstderr:\n%s", i, run.out, run.err);
	return l;
}

/* 6: every agent delete fails; the team is still deleted, the agents are
 * listed with the server's reason, the run ends teardown_failed, exit 4. */
static void test_6_teardown_goes_on(void **state)
{
	const char *args[] = { "--fault", "fail:route=DELETE /v1/agents/*,status=400,count=0",
			       NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", two_agents);

	(void)state;
	tlm_h_serve_start(&srv, args);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 4);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "completed");
	assert_string_equal(tlm_h_str(run.result, "state"), "teardown_failed");
	assert_int_equal(json_array_size(json_object_get(run.result, "leftovers")), 2);
	assert_string_equal(tlm_h_str(leftover(0), "kind"), "agent");
	assert_non_null(strstr(tlm_h_str(leftover(0), "reason"), "injected fault"));
	assert_int_equal(tlm_h_count_prefixed(&srv, "teams", "tlm-"), 0);
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), 2);
	free(file);
}

/* 6: agents deleted behind the run's back before its teardown (a 404 on
 * stop and delete) count as deleted: exit 0, nothing listed. */
static void test_6_404_is_deleted(void **state)
{
	/* Teardown begins by listing each team's tasks to end its work; that
	 * listing is held for 3 s, and the agents are deleted meanwhile.
	 * (Holding teardown's agent sweep instead raced: the test's own list
	 * could be the request held, and the deletes do not wait for the
	 * sweep.) */
	const char *args[] = { "--fault", "delay:route=GET /v1/teams/*/tasks,count=0,ms=3000",
			       NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", two_agents);
	char path[160];
	json_t *j = NULL, *a;
	size_t i;

	(void)state;
	tlm_h_serve_start(&srv, args);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	if (tlm_h_run_wait_for(&run, "task t/s completed", 20000) != 0)
		fail_msg("the task did not complete");
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/agents?limit=1000", NULL, &j), 200);
	json_array_foreach(json_object_get(j, "agents"), i, a)
	{
		snprintf(path, sizeof(path), "/v1/agents/%s", tlm_h_str(a, "id"));
		assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, NULL), 200);
	}
	json_decref(j);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_true(tlm_h_fault_fired(&srv, 0) >= 1); /* teardown was held */
	assert_int_equal(json_array_size(json_object_get(run.result, "leftovers")), 0);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 7: two runs of one workflow at once, on one control plane: each creates
 * and deletes only its own (the run id is in every name). */
static void test_7_two_runs_apart(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", two_agents);
	const char *id1, *id2;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	tlm_h_run_on(&run2, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_int_equal(tlm_h_run_finish(&run2, RUN_MS), 0);
	id1 = tlm_h_str(run.result, "run_id");
	id2 = tlm_h_str(run2.result, "run_id");
	assert_string_not_equal(id1, id2);
	tlm_h_assert_all_completed(&run);
	tlm_h_assert_all_completed(&run2);
	assert_int_equal(tlm_h_int(run.result, "agents_created"), 2);
	assert_int_equal(tlm_h_int(run2.result, "agents_created"), 2);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 11: subjects are unique per team only.  "build" fails in one team and
 * completes in the other; each team's "after" follows its own "build". */
static void test_11_same_subject_two_teams(void **state)
{
	char *file =
		tlm_h_write_file(dir, "w.yaml",
				 "apiVersion: telemachy/v1\n"
				 "metadata: {name: subjects}\n"
				 "teardown: always\n"
				 "agents:\n"
				 "  - {name: ok, program: none}\n"
				 "  - {name: bad, program: /bin/sh, args: ['-c', 'exit 5']}\n"
				 "teams:\n"
				 "  - name: x\n"
				 "    agents: [bad]\n"
				 "    tasks:\n"
				 "      - {subject: build, description: d}\n"
				 "      - {subject: after, description: d, blocked_by: [build]}\n"
				 "  - name: y\n"
				 "    agents: [ok]\n"
				 "    tasks:\n"
				 "      - {subject: build, description: d}\n"
				 "      - {subject: after, description: d, blocked_by: [build]}\n");

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 1);
	assert_string_equal(tlm_h_task_status(&run, 0), "failed");
	assert_string_equal(tlm_h_task_status(&run, 1), "skipped");
	assert_string_equal(tlm_h_task_status(&run, 2), "completed");
	assert_string_equal(tlm_h_task_status(&run, 3), "completed");
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 15: programArgs is the spec's list, element by element, and the model is
 * its own field; nothing is glued into one string. */
static void test_15_args_are_an_array(void **state)
{
	char *file = tlm_h_write_file(
		dir, "w.yaml",
		"apiVersion: telemachy/v1\n"
		"metadata: {name: args}\n"
		"teardown: never\n"
		"agents:\n"
		"  - name: a\n"
		"    program: none\n"
		"    model: claude-opus-4\n"
		"    args: ['--flag', 'two words', '; rm -rf /']\n"
		"teams:\n"
		"  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n");
	json_t *j = NULL, *a, *args;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/agents", NULL, &j), 200);
	a = json_array_get(json_object_get(j, "agents"), 0);
	assert_non_null(a);
	args = json_object_get(a, "programArgs");
	assert_true(json_is_array(args));
	assert_int_equal(json_array_size(args), 3);
	assert_string_equal(json_string_value(json_array_get(args, 1)), "two words");
	assert_string_equal(json_string_value(json_array_get(args, 2)), "; rm -rf /");
	assert_string_equal(tlm_h_str(a, "model"), "claude-opus-4");
	assert_string_equal(tlm_h_str(a, "label"), "a");
	json_decref(j);
	free(file);
}

/* Not a lesson of the predecessor, the same kind of hang: an agent deleted
 * behind the run's back leaves its pending tasks without a worker.  The
 * reconcile sees the agent gone and fails them (exit 1) instead of waiting
 * forever. */
static void test_agent_deleted_under_the_run(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml",
				      "apiVersion: telemachy/v1\n"
				      "metadata: {name: agent-gone}\n"
				      "teardown: always\n"
				      "agents:\n"
				      "  - {name: a, program: /bin/sh, args: ['-c', 'sleep 30']}\n"
				      "teams:\n"
				      "  - name: t\n"
				      "    agents: [a]\n"
				      "    tasks:\n"
				      "      - {subject: first, description: d}\n"
				      "      - {subject: second, description: d}\n");
	char path[160];
	json_t *list;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	if (tlm_h_run_wait_for(&run, "task t/second submitted", 20000) != 0)
		fail_msg("the tasks were not submitted");
	list = tlm_h_list_prefixed(&srv, "agents", "tlm-");
	assert_int_equal(json_array_size(list), 1);
	snprintf(path, sizeof(path), "/v1/agents/%s", tlm_h_str(json_array_get(list, 0), "id"));
	json_decref(list);
	assert_int_equal(tlm_h_req(&srv, "DELETE", path, NULL, NULL), 200);
	assert_int_equal(tlm_h_run_finish(&run, 25000), 1);
	assert_string_equal(tlm_h_task_status(&run, 0), "failed");
	assert_string_equal(tlm_h_task_status(&run, 1), "failed");
	assert_non_null(strstr(run.out, "is gone from the control plane"));
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_6_teardown_goes_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_6_404_is_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_7_two_runs_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_11_same_subject_two_teams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_15_args_are_an_array, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_deleted_under_the_run, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
