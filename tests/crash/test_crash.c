/* The crash test (issue 6, the core acceptance): for every crash point k of a
 * workflow's run (every REST request sent, every reply received, every
 * durable journal write, as TLM_CRASH_LOG counts them), `telemachy run` is
 * SIGKILLed at k against an external `telemachy serve`.  Before recovery
 * every tlm-<run>- agent and team on the server must be accounted for by the
 * journal and no name may be held twice; then `telemachy teardown RUN` must
 * leave nothing of the run, and `telemachy resume RUN` must complete it and
 * (default teardown policy) leave nothing either; `reconcile` finds no
 * orphan of the run afterwards.  Groups: examples/hello-world.yaml and a
 * two-team workflow (both recoveries at every k), and the two-team workflow
 * with a lost create response (agents, teams; teardown at every k).
 *
 * Set TLM_CRASH_STEP=n to try every n-th k only (quick local runs);
 * TLM_TEST_VERBOSE prints every trial. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/crash.h"
#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define CMD_MS 60000

/* Each test's server and temporary dir (tlm_h_fixture_setup). */
static tlm_h_fixture *const fx = &tlm_h_fx;

/* 2 agents, 2 teams, 3 tasks, one dependency across the teams. */
static const char two_teams[] = "apiVersion: telemachy/v1\n"
				"metadata: {name: crash-two-teams}\n"
				"agents:\n"
				"  - {name: a, program: none}\n"
				"  - {name: b, program: none}\n"
				"teams:\n"
				"  - name: front\n"
				"    agents: [a]\n"
				"    tasks:\n"
				"      - {subject: s1, description: d}\n"
				"      - {subject: s2, description: d, blocked_by: [s1]}\n"
				"  - name: back\n"
				"    agents: [a, b]\n"
				"    tasks:\n"
				"      - {subject: s3, description: d, assign_to: b,\n"
				"         blocked_by: [front/s2]}\n";

static long step(void)
{
	const char *v = getenv("TLM_CRASH_STEP");
	long n = v != NULL ? strtol(v, NULL, 10) : 1;

	return n > 0 ? n : 1;
}

/* Counts the points of file (with fault), then one trial per k in 1..N (every
 * kstep-th) and recovery; fails with every broken trial named. */
static void crash_every_point(const char *label, const char *file, const char *fault,
			      const tlm_h_recovery *recs, size_t nrecs, long kstep, int settle_ms)
{
	tlm_h_points pts;
	size_t r, bad = 0, trials = 0, crashed = 0, ended = 0;
	int64_t t0 = tlm_h_now_ms();
	char *report = NULL;
	size_t rlen = 0;
	long k;

	tlm_h_serve_start(&fx->srv, NULL);
	tlm_h_crash_count(&fx->srv, file, fault, &pts);
	if (pts.exit_code != 0)
		fail_msg("%s: the crash-free run exited %d; stderr:\n%s", label, pts.exit_code,
			 pts.err);
	if (pts.n == 0)
		fail_msg("%s: no crash point counted (is TLM_CRASH_LOG supported?)", label);
	tlm_h_assert_no_tlm(&fx->srv);

	for (k = 1; k <= (long)pts.n; k += kstep) {
		for (r = 0; r < nrecs; r++) {
			tlm_h_crash_result res;

			tlm_h_crash_trial(&fx->srv, file, fault, k, recs[r], CMD_MS, settle_ms,
					  &res);
			trials++;
			crashed += res.crashed ? 1u : 0u;
			ended += res.crashed ? 0u : 1u;
			if (getenv("TLM_TEST_VERBOSE") != NULL)
				print_message("%s k=%ld (%s) %s: exit %d run %s before %ld "
					      "leftovers %ld recovery %d left %ld, %ld ms%s\n",
					      label, k, res.point, tlm_h_recovery_name(recs[r]),
					      res.run_exit, res.run_id[0] ? res.run_id : "-",
					      res.server_before, res.leftovers_before,
					      res.recovery_exit, res.left_after, res.elapsed_ms,
					      res.failed ? " FAILED" : "");
			if (res.failed) {
				char head[512];
				size_t add;

				bad++;
				snprintf(head, sizeof(head),
					 "\n=== %s, k=%ld of %zu (\"%s\"), fault %s, %s: run %s, "
					 "%ld on the server before, %ld duplicate(s), %ld "
					 "unaccounted, recovery exit %d, %ld left after, %ld "
					 "reconcile orphan(s)\n",
					 label, k, pts.n, res.point, fault ? fault : "none",
					 tlm_h_recovery_name(recs[r]),
					 res.run_id[0] ? res.run_id : "(none journaled)",
					 res.server_before, res.duplicates, res.unaccounted,
					 res.recovery_exit, res.left_after, res.orphans_after);
				add = strlen(head) + strlen(res.msg);
				report = realloc(report, rlen + add + 1);
				assert_non_null(report);
				memcpy(report + rlen, head, strlen(head));
				memcpy(report + rlen + strlen(head), res.msg, strlen(res.msg));
				rlen += add;
				report[rlen] = '\0';
			}
			tlm_h_crash_result_free(&res);
		}
	}
	print_message("%s: %zu points, %zu trials (%zu crashed, %zu ended before point k), "
		      "%zu failed, %.1f s\n",
		      label, pts.n, trials, crashed, ended, bad,
		      (double)(tlm_h_now_ms() - t0) / 1000.0);
	tlm_h_points_free(&pts);
	if (bad > 0) {
		/* fail_msg cuts long messages: the report goes to stderr whole */
		fprintf(stderr, "%s: %zu of %zu trials broke the no-orphans invariant:%s\n", label,
			bad, trials, report);
		fflush(stderr);
		free(report);
		fail_msg("%s: %zu of %zu trials broke the no-orphans invariant (listed above)",
			 label, bad, trials);
	}
	free(report);
}

static const tlm_h_recovery both[] = { TLM_H_TEARDOWN, TLM_H_RESUME };
static const tlm_h_recovery tear_only[] = { TLM_H_TEARDOWN };

/* (a) examples/hello-world.yaml, every point, teardown and resume. */
static void test_hello_world(void **state)
{
	(void)state;
	crash_every_point("hello-world", TLM_SOURCE_DIR "/examples/hello-world.yaml", NULL, both, 2,
			  step(), 0);
}

/* (b) two teams, a cross-team dependency, every point, teardown and resume. */
static void test_two_teams(void **state)
{
	char *file = tlm_h_write_file(fx->dir, "two-teams.yaml", two_teams);

	(void)state;
	crash_every_point("two-teams", file, NULL, both, 2, step(), 0);
	free(file);
}

/* (c) the same with the reply of an agent create lost (committed, then the
 * connection dropped), every point, teardown. */
static void test_two_teams_drop_agent(void **state)
{
	char *file = tlm_h_write_file(fx->dir, "two-teams.yaml", two_teams);

	(void)state;
	crash_every_point("two-teams+drop-agent", file, "drop:route=POST /v1/agents", tear_only, 1,
			  step(), 0);
	free(file);
}

/* (c) and with the reply of a team create lost. */
static void test_two_teams_drop_team(void **state)
{
	char *file = tlm_h_write_file(fx->dir, "two-teams.yaml", two_teams);

	(void)state;
	crash_every_point("two-teams+drop-team", file, "drop:route=POST /v1/teams", tear_only, 1,
			  step(), 0);
	free(file);
}

/* (d) the second agent create is held 500 ms by the server (committed late,
 * as by a slow control plane): a crash while it is in flight leaves an intent
 * whose resource appears only after the lookup.  Every 3rd k (each trial
 * waits for the late create), teardown; checked 0.7 s after the teardown. */
static void test_two_teams_slow_create(void **state)
{
	char *file = tlm_h_write_file(fx->dir, "two-teams.yaml", two_teams);

	(void)state;
	crash_every_point("two-teams+slow-agent-create", file,
			  "delay:route=POST /v1/agents,nth=2,ms=500", tear_only, 1, 3 * step(),
			  700);
	free(file);
}

/* ctest runs the groups as separate tests (crash.hello, crash.teams,
 * crash.faults) so that they can run side by side; TLM_CRASH_GROUP picks one,
 * unset runs all. */
int main(void)
{
	const struct CMUnitTest hello[] = {
		cmocka_unit_test_setup_teardown(test_hello_world, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
	};
	const struct CMUnitTest teams[] = {
		cmocka_unit_test_setup_teardown(test_two_teams, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
	};
	const struct CMUnitTest faults[] = {
		cmocka_unit_test_setup_teardown(test_two_teams_drop_agent, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_two_teams_drop_team, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_two_teams_slow_create, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
	};
	const char *g = getenv("TLM_CRASH_GROUP");
	const char *journal = getenv("TLM_CRASH_JOURNAL");
	tlm_h_pg pg;
	int rc = 0;

	/* TLM_CRASH_JOURNAL=postgres: the same walk with the journal on a real
	 * PostgreSQL (docs/distributed.md), a fresh database per trial. */
	if (journal != NULL && strcmp(journal, "postgres") == 0) {
		tlm_h_pg_start(&pg);
		tlm_h_crash_use_pg(&pg);
	}

	if (g == NULL || strcmp(g, "hello") == 0)
		rc |= cmocka_run_group_tests_name("crash.hello", hello, NULL, NULL);
	if (g == NULL || strcmp(g, "teams") == 0)
		rc |= cmocka_run_group_tests_name("crash.teams", teams, NULL, NULL);
	if (g == NULL || strcmp(g, "faults") == 0)
		rc |= cmocka_run_group_tests_name("crash.faults", faults, NULL, NULL);
	if (journal != NULL && strcmp(journal, "postgres") == 0)
		tlm_h_pg_stop(&pg);
	return rc;
}
