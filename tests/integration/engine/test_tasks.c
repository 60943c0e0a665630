/* The engine's task guarantees through the real binary against the real
 * `telemachy serve`: tasks are submitted by dependency (a diamond, a long
 * chain, a dependency across teams, each checked by the order in which the
 * programs actually ran), a failure skips exactly its dependents, per-task
 * and workflow timeouts, retries as new attempts, and every teardown policy.
 * After every run the server must hold no `tlm-` resource the policy does
 * not keep. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS 60000
#define WF_MAX 16384

static tlm_h_serve srv;
static tlm_h_run run;
static char *dir;
static char wf[WF_MAX];
static size_t wf_len;

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&run, 0, sizeof(run));
	dir = tlm_h_tmpdir();
	wf[0] = '\0';
	wf_len = 0;
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

/* Appends to the workflow being written (wf). */
__attribute__((format(printf, 1, 2))) static void wf_add(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(wf + wf_len, WF_MAX - wf_len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < WF_MAX - wf_len);
	wf_len += (size_t)n;
}

static void wf_reset(void)
{
	wf[0] = '\0';
	wf_len = 0;
}

/* The agent `name` running `sh -c script` (script without single quotes). */
static void wf_sh_agent(const char *name, const char *script)
{
	wf_add("  - {name: %s, program: /bin/sh, args: ['-c', '%s']}\n", name, script);
}

/* An agent that appends its task's subject to DIR/order. */
static void wf_order_agent(const char *name)
{
	char script[512];

	snprintf(script, sizeof(script), "echo \"$TLM_TASK_SUBJECT\" >> %s/order", dir);
	wf_sh_agent(name, script);
}

/* Runs the workflow wf against srv with the extra args; returns the exit code. */
static int run_on_srv(const char *const *extra)
{
	char *file = tlm_h_write_file(dir, "w.yaml", wf);
	int rc;

	tlm_h_run_on(&run, &srv, file, NULL, extra);
	rc = tlm_h_run_finish(&run, RUN_MS);
	free(file);
	return rc;
}

/* Task i of the summary; its subject must be `subject` (spec order). */
static json_t *task(size_t i, const char *subject)
{
	json_t *t = json_array_get(json_object_get(run.result, "tasks"), i);

	if (t == NULL)
		fail_msg("no task %zu in the summary:\n%s\nstderr:\n%s", i, run.out, run.err);
	if (strcmp(tlm_h_str(t, "subject"), subject) != 0)
		fail_msg("task %zu is \"%s\", expected \"%s\"", i, tlm_h_str(t, "subject"),
			 subject);
	return t;
}

static void assert_task(size_t i, const char *subject, const char *status)
{
	json_t *t = task(i, subject);

	if (strcmp(tlm_h_str(t, "status"), status) != 0)
		fail_msg("task %s is %s, expected %s\n%s\nstderr:\n%s", subject,
			 tlm_h_str(t, "status"), status, tlm_h_dump(t), run.err);
}

/* The message of task i ("" when it has none). */
static const char *task_message(size_t i, const char *subject)
{
	const char *m = json_string_value(json_object_get(task(i, subject), "message"));

	return m != NULL ? m : "";
}

/* The lines of DIR/order, at most max of them (copied into lines[]); returns
 * how many there are. */
static size_t read_order(char lines[][32], size_t max)
{
	char path[4096], buf[32];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/order", dir);
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("no %s: no task program ran", path);
	while (fgets(buf, sizeof(buf), f) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		if (n < max)
			snprintf(lines[n], 32, "%s", buf);
		n++;
	}
	fclose(f);
	return n;
}

/* The run kept its agent and team: listed as leftovers "kept", not torn
 * down, and still on the server. */
static void assert_kept(size_t nagents, size_t nteams)
{
	json_t *left = json_object_get(run.result, "leftovers"), *l;
	size_t i;

	assert_false(json_is_true(json_object_get(run.result, "torn_down")));
	assert_int_equal(json_array_size(left), nagents + nteams);
	json_array_foreach(left, i, l)
	{
		if (strstr(tlm_h_str(l, "reason"), "kept") == NULL)
			fail_msg("leftover not kept by policy: %s", tlm_h_dump(l));
	}
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), nagents);
	assert_int_equal(tlm_h_count_prefixed(&srv, "teams", "tlm-"), nteams);
}

static void assert_torn_down(void)
{
	assert_true(json_is_true(json_object_get(run.result, "torn_down")));
	assert_int_equal(json_array_size(json_object_get(run.result, "leftovers")), 0);
	tlm_h_assert_no_tlm(&srv);
}

/* ---- dependency order ----------------------------------------------------- */

/* a; b and c after a; d after b and c.  b and c run on different agents, so
 * only the dependencies order them. */
static void test_diamond(void **state)
{
	char lines[8][32];

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	wf_add("apiVersion: telemachy/v1\n"
	       "metadata: {name: diamond}\n"
	       "agents:\n");
	wf_order_agent("p");
	wf_order_agent("q");
	wf_add("teams:\n"
	       "  - name: t\n"
	       "    agents: [p, q]\n"
	       "    tasks:\n"
	       "      - {subject: a, description: d, assign_to: p}\n"
	       "      - {subject: b, description: d, assign_to: p, blocked_by: [a]}\n"
	       "      - {subject: c, description: d, assign_to: q, blocked_by: [a]}\n"
	       "      - {subject: d, description: d, assign_to: q, blocked_by: [b, c]}\n");
	assert_int_equal(run_on_srv(NULL), 0);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "completed");
	assert_task(0, "a", "completed");
	assert_task(1, "b", "completed");
	assert_task(2, "c", "completed");
	assert_task(3, "d", "completed");
	assert_int_equal(read_order(lines, 8), 4);
	assert_string_equal(lines[0], "a");
	assert_string_equal(lines[3], "d");
	assert_true((strcmp(lines[1], "b") == 0 && strcmp(lines[2], "c") == 0) ||
		    (strcmp(lines[1], "c") == 0 && strcmp(lines[2], "b") == 0));
	assert_torn_down();
}

/* t1..t20, each blocked by the previous one. */
static void chain(const char *agent_line)
{
	int i;

	wf_reset();
	wf_add("apiVersion: telemachy/v1\n"
	       "metadata: {name: chain}\n"
	       "agents:\n");
	wf_add("%s", agent_line);
	wf_add("teams:\n"
	       "  - name: t\n"
	       "    agents: [p]\n"
	       "    tasks:\n"
	       "      - {subject: t1, description: d}\n");
	for (i = 2; i <= 20; i++)
		wf_add("      - {subject: t%d, description: d, blocked_by: [t%d]}\n", i, i - 1);
}

static void test_chain(void **state)
{
	char lines[32][32], subject[16];
	size_t i;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	chain("  - {name: p, program: none}\n");
	assert_int_equal(run_on_srv(NULL), 0);
	assert_int_equal(json_array_size(json_object_get(run.result, "tasks")), 20);
	tlm_h_assert_all_completed(&run);
	assert_torn_down();

	/* The same chain with a program that records the order. */
	tlm_h_run_clear(&run);
	wf_reset();
	{
		char agent[600], script[512];

		snprintf(script, sizeof(script), "echo \"$TLM_TASK_SUBJECT\" >> %s/order", dir);
		snprintf(agent, sizeof(agent),
			 "  - {name: p, program: /bin/sh, args: ['-c', '%s']}\n", script);
		chain(agent);
	}
	assert_int_equal(run_on_srv(NULL), 0);
	tlm_h_assert_all_completed(&run);
	assert_int_equal(read_order(lines, 32), 20);
	for (i = 0; i < 20; i++) {
		snprintf(subject, sizeof(subject), "t%zu", i + 1);
		assert_string_equal(lines[i], subject);
	}
	assert_torn_down();
}

/* Team x's task waits for team y's, named y/prep. */
static void test_cross_team(void **state)
{
	char lines[8][32];

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	wf_add("apiVersion: telemachy/v1\n"
	       "metadata: {name: cross}\n"
	       "agents:\n");
	wf_order_agent("p");
	wf_order_agent("q");
	wf_add("teams:\n"
	       "  - name: x\n"
	       "    agents: [p]\n"
	       "    tasks:\n"
	       "      - {subject: use, description: d, blocked_by: [y/prep]}\n"
	       "  - name: y\n"
	       "    agents: [q]\n"
	       "    tasks:\n"
	       "      - {subject: prep, description: d}\n");
	assert_int_equal(run_on_srv(NULL), 0);
	assert_task(0, "use", "completed");
	assert_task(1, "prep", "completed");
	assert_string_equal(tlm_h_str(task(0, "use"), "team"), "x");
	assert_string_equal(tlm_h_str(task(1, "prep"), "team"), "y");
	assert_int_equal(read_order(lines, 8), 2);
	assert_string_equal(lines[0], "prep");
	assert_string_equal(lines[1], "use");
	assert_torn_down();
}

/* ---- failures ---------------------------------------------------------------- */

/* a fails; b (after a) and c (after b) are skipped; e and f (after e), an
 * independent branch, complete. */
static void test_failure_skips_dependents(void **state)
{
	(void)state;
	tlm_h_serve_start(&srv, NULL);
	wf_add("apiVersion: telemachy/v1\n"
	       "metadata: {name: skip}\n"
	       "teardown: always\n"
	       "agents:\n");
	wf_sh_agent("bad", "exit 3");
	wf_add("  - {name: good, program: none}\n"
	       "teams:\n"
	       "  - name: t\n"
	       "    agents: [bad, good]\n"
	       "    tasks:\n"
	       "      - {subject: a, description: d, assign_to: bad}\n"
	       "      - {subject: b, description: d, assign_to: good, blocked_by: [a]}\n"
	       "      - {subject: c, description: d, assign_to: good, blocked_by: [b]}\n"
	       "      - {subject: e, description: d, assign_to: good}\n"
	       "      - {subject: f, description: d, assign_to: good, blocked_by: [e]}\n");
	assert_int_equal(run_on_srv(NULL), 1);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "failed");
	assert_task(0, "a", "failed");
	assert_task(1, "b", "skipped");
	assert_task(2, "c", "skipped");
	assert_task(3, "e", "completed");
	assert_task(4, "f", "completed");
	assert_int_equal(tlm_h_int(task(0, "a"), "attempts"), 1);
	/* the skipped were never submitted */
	assert_int_equal(tlm_h_int(task(1, "b"), "attempts"), 0);
	assert_int_equal(tlm_h_int(task(2, "c"), "attempts"), 0);
	if (strstr(task_message(1, "b"), "t/a") == NULL ||
	    strstr(task_message(2, "c"), "t/a") == NULL)
		fail_msg("skipped tasks do not name t/a: \"%s\", \"%s\"", task_message(1, "b"),
			 task_message(2, "c"));
	/* The server's reason, not merely "failed". */
	if (strstr(task_message(0, "a"), "exited with status 3") == NULL)
		fail_msg("failed task's message is \"%s\"\nstderr:\n%s", task_message(0, "a"),
			 run.err);
	assert_torn_down();
}

/* One attempt of a bounded by timeout_seconds: timed out long before its
 * program ends; an independent task completes. */
static void test_task_timeout(void **state)
{
	(void)state;
	tlm_h_serve_start(&srv, NULL);
	wf_add("apiVersion: telemachy/v1\n"
	       "metadata: {name: slow}\n"
	       "teardown: always\n"
	       "agents:\n");
	wf_sh_agent("sleeper", "sleep 30");
	wf_add("  - {name: quick, program: none}\n"
	       "teams:\n"
	       "  - name: t\n"
	       "    agents: [sleeper, quick]\n"
	       "    tasks:\n"
	       "      - {subject: slow, description: d, assign_to: sleeper, timeout_seconds: 1}\n"
	       "      - {subject: fast, description: d, assign_to: quick}\n");
	assert_int_equal(run_on_srv(NULL), 1);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "failed");
	assert_task(0, "slow", "timed_out");
	assert_task(1, "fast", "completed");
	if (tlm_h_int(run.result, "elapsed_ms") >= 20000)
		fail_msg("the run took %lld ms", (long long)tlm_h_int(run.result, "elapsed_ms"));
	assert_torn_down();
}

/* retries: 2 and a program that fails once: completed at the second attempt. */
static void test_retry_succeeds(void **state)
{
	char script[512];

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	snprintf(script, sizeof(script),
		 "if [ -e %s/flag ]; then exit 0; fi; touch %s/flag; exit 1", dir, dir);
	wf_add("apiVersion: telemachy/v1\n"
	       "metadata: {name: retry}\n"
	       "agents:\n");
	wf_sh_agent("p", script);
	wf_add("teams:\n"
	       "  - name: t\n"
	       "    agents: [p]\n"
	       "    tasks:\n"
	       "      - {subject: flaky, description: d, retries: 2}\n");
	assert_int_equal(run_on_srv(NULL), 0);
	assert_task(0, "flaky", "completed");
	assert_int_equal(tlm_h_int(task(0, "flaky"), "attempts"), 2);
	assert_torn_down();
}

/* retries: 1 and a program that always fails: failed after two attempts. */
static void test_retry_exhausted(void **state)
{
	(void)state;
	tlm_h_serve_start(&srv, NULL);
	wf_add("apiVersion: telemachy/v1\n"
	       "metadata: {name: retry}\n"
	       "teardown: always\n"
	       "agents:\n");
	wf_sh_agent("p", "exit 1");
	wf_add("teams:\n"
	       "  - name: t\n"
	       "    agents: [p]\n"
	       "    tasks:\n"
	       "      - {subject: broken, description: d, retries: 1}\n");
	assert_int_equal(run_on_srv(NULL), 1);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "failed");
	assert_task(0, "broken", "failed");
	assert_int_equal(tlm_h_int(task(0, "broken"), "attempts"), 2);
	assert_torn_down();
}

/* The workflow's timeout_seconds ends the run: the running task is
 * cancelled and everything torn down (the default policy). */
static void test_workflow_timeout(void **state)
{
	(void)state;
	tlm_h_serve_start(&srv, NULL);
	wf_add("apiVersion: telemachy/v1\n"
	       "metadata: {name: deadline}\n"
	       "timeout_seconds: 2\n"
	       "agents:\n");
	wf_sh_agent("p", "sleep 30");
	wf_add("teams:\n"
	       "  - name: t\n"
	       "    agents: [p]\n"
	       "    tasks:\n"
	       "      - {subject: forever, description: d}\n");
	assert_int_equal(run_on_srv(NULL), 1);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "timed_out");
	assert_task(0, "forever", "cancelled");
	if (tlm_h_int(run.result, "elapsed_ms") >= 20000)
		fail_msg("the run took %lld ms", (long long)tlm_h_int(run.result, "elapsed_ms"));
	assert_torn_down();
}

/* ---- teardown policies ------------------------------------------------------- */

/* One agent, one team, one task running `program`. */
static void policy_wf(const char *policy, const char *program)
{
	wf_add("apiVersion: telemachy/v1\n"
	       "metadata: {name: policy}\n"
	       "teardown: %s\n"
	       "agents:\n",
	       policy);
	if (program == NULL)
		wf_add("  - {name: p, program: none}\n");
	else
		wf_sh_agent("p", program);
	wf_add("teams:\n"
	       "  - {name: t, agents: [p], tasks: [{subject: s, description: d}]}\n");
}

static void test_on_completion_failed_kept(void **state)
{
	(void)state;
	tlm_h_serve_start(&srv, NULL);
	policy_wf("on_completion", "exit 1");
	assert_int_equal(run_on_srv(NULL), 1);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "failed");
	assert_task(0, "s", "failed");
	assert_kept(1, 1);
}

static void test_on_failure_completed_kept(void **state)
{
	(void)state;
	tlm_h_serve_start(&srv, NULL);
	policy_wf("on_failure", NULL);
	assert_int_equal(run_on_srv(NULL), 0);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "completed");
	assert_task(0, "s", "completed");
	assert_kept(1, 1);
}

static void test_always_failed_deleted(void **state)
{
	(void)state;
	tlm_h_serve_start(&srv, NULL);
	policy_wf("always", "exit 1");
	assert_int_equal(run_on_srv(NULL), 1);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "failed");
	assert_task(0, "s", "failed");
	assert_torn_down();
}

static void test_never_failed_kept(void **state)
{
	(void)state;
	tlm_h_serve_start(&srv, NULL);
	policy_wf("never", "exit 1");
	assert_int_equal(run_on_srv(NULL), 1);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "failed");
	assert_task(0, "s", "failed");
	assert_kept(1, 1);
}

/* A run that fails before any task was submitted is torn down even under
 * never: the team cannot be created. */
static void test_never_provision_failure_torn_down(void **state)
{
	const char *args[] = { "--fault", "fail:route=POST /v1/teams,status=400", NULL };

	(void)state;
	tlm_h_serve_start(&srv, args);
	policy_wf("never", NULL);
	assert_int_equal(run_on_srv(NULL), 1);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "failed");
	assert_int_equal(tlm_h_int(run.result, "agents_created"), 1);
	assert_task(0, "s", "cancelled");
	assert_int_equal(tlm_h_int(task(0, "s"), "attempts"), 0);
	assert_torn_down();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_diamond, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cross_team, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_skips_dependents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_succeeds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_workflow_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_completion_failed_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_failure_completed_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_always_failed_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_failed_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_provision_failure_torn_down, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
