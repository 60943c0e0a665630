/* Allocation-failure walks (curl's torture tests; docs/internals/engine.md,
 * "Allocation failures"): `telemachy run` is run once per allocation its
 * main thread makes, the k-th failing (TLM_ALLOC_FAIL_AT=k), against an
 * external `telemachy serve`.  Each trial must end with a documented exit
 * code — never a crash, and with "out of memory" said when it fails — with
 * every resource on the server accounted for by the journal and no name held
 * twice; a failed run is then torn down and must leave nothing.  Groups:
 * examples/hello-world.yaml, and a two-team workflow whose first task create
 * is refused once (a retry: a second attempt).
 *
 * TLM_ALLOC_STEP=n tries every n-th k only (the sanitizer pass);
 * TLM_TEST_VERBOSE prints every trial. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/crash.h"
#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define CMD_MS 60000

static tlm_h_serve srv;
static char *dir;

/* 2 agents, 2 teams, 3 tasks, one dependency across the teams; s1 may be
 * retried once. */
static const char two_teams[] = "apiVersion: telemachy/v1\n"
				"metadata: {name: alloc-two-teams}\n"
				"agents:\n"
				"  - {name: a, program: none}\n"
				"  - {name: b, program: none}\n"
				"teams:\n"
				"  - name: front\n"
				"    agents: [a]\n"
				"    tasks:\n"
				"      - {subject: s1, description: d, retries: 1}\n"
				"      - {subject: s2, description: d, blocked_by: [s1]}\n"
				"  - name: back\n"
				"    agents: [a, b]\n"
				"    tasks:\n"
				"      - {subject: s3, description: d, assign_to: b,\n"
				"         blocked_by: [front/s2]}\n";

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	dir = tlm_h_tmpdir();
	tlm_h_serve_start(&srv, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

static long step(void)
{
	const char *v = getenv("TLM_ALLOC_STEP");
	long n = v != NULL ? strtol(v, NULL, 10) : 1;

	return n > 0 ? n : 1;
}

static void report_add(char **report, size_t *len, const char *label, long k, long n,
		       const tlm_h_crash_result *res)
{
	char head[512];
	size_t add;

	snprintf(head, sizeof(head),
		 "\n=== %s, allocation %ld of %ld failed: exit %d, run %s, %ld unaccounted, "
		 "%ld duplicate(s), teardown exit %d, %ld left, %ld reconcile orphan(s)\n",
		 label, k, n, res->run_exit, res->run_id[0] ? res->run_id : "(none journaled)",
		 res->unaccounted, res->duplicates, res->recovery_exit, res->left_after,
		 res->orphans_after);
	add = strlen(head) + strlen(res->msg);
	*report = realloc(*report, *len + add + 1);
	assert_non_null(*report);
	memcpy(*report + *len, head, strlen(head));
	memcpy(*report + *len + strlen(head), res->msg, strlen(res->msg));
	*len += add;
	(*report)[*len] = '\0';
}

static void walk(const char *label, const char *file, const char *fault)
{
	long n = tlm_h_alloc_count(&srv, file, fault), k, kstep = step();
	size_t bad = 0, trials = 0, clean = 0, rlen = 0;
	int64_t t0 = tlm_h_now_ms();
	char *report = NULL;

	if (n < 100)
		fail_msg("%s: only %ld allocations counted (is TLM_ALLOC_LOG supported?)", label,
			 n);
	tlm_h_assert_no_tlm(&srv);
	for (k = 1; k <= n + 1; k += kstep) {
		tlm_h_crash_result res;

		tlm_h_alloc_trial(&srv, file, fault, k, CMD_MS, &res);
		trials++;
		clean += res.run_exit == 0;
		if (getenv("TLM_TEST_VERBOSE") != NULL)
			print_message("%s k=%ld: exit %d run %s, %ld ms%s\n", label, k,
				      res.run_exit, res.run_id[0] ? res.run_id : "-",
				      res.elapsed_ms, res.failed ? " FAILED" : "");
		if (res.failed) {
			bad++;
			report_add(&report, &rlen, label, k, n, &res);
		}
		tlm_h_crash_result_free(&res);
	}
	print_message("%s: %ld allocations, %zu trials (%zu completed anyway), %zu failed, "
		      "%.1f s\n",
		      label, n, trials, clean, bad, (double)(tlm_h_now_ms() - t0) / 1000.0);
	if (bad > 0) {
		fprintf(stderr, "%s: %zu of %zu trials broke the rules:%s\n", label, bad, trials,
			report);
		fflush(stderr);
		free(report);
		fail_msg("%s: %zu of %zu trials broke the rules (listed above)", label, bad,
			 trials);
	}
	free(report);
}

static void test_hello_world(void **state)
{
	(void)state;
	walk("hello-world", TLM_SOURCE_DIR "/examples/hello-world.yaml", NULL);
}

static void test_two_teams_retry(void **state)
{
	char *file = tlm_h_write_file(dir, "two-teams.yaml", two_teams);

	(void)state;
	walk("two-teams+retry", file, "fail:route=POST /v1/teams/*/tasks,nth=1,status=400");
	free(file);
}

int main(void)
{
	const struct CMUnitTest hello[] = {
		cmocka_unit_test_setup_teardown(test_hello_world, setup, teardown),
	};
	const struct CMUnitTest teams[] = {
		cmocka_unit_test_setup_teardown(test_two_teams_retry, setup, teardown),
	};
	const char *g = getenv("TLM_ALLOC_GROUP");
	int rc = 0;

	if (g == NULL || strcmp(g, "hello") == 0)
		rc |= cmocka_run_group_tests_name("alloc.hello", hello, NULL, NULL);
	if (g == NULL || strcmp(g, "teams") == 0)
		rc |= cmocka_run_group_tests_name("alloc.teams", teams, NULL, NULL);
	return rc;
}
