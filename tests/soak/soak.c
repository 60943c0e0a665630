/* The crash soak (`make soak`, `cmake --build BUILD --target soak`): many
 * randomized crash trials (tests/harness/crash.h) against one external
 * `telemachy serve`: a random workflow, a random server fault, a random
 * crash point k in 1..N+5 (N counted for that workflow and fault; past N the
 * run ends by itself and must leave nothing) and a random recovery (resume
 * or teardown).  Prints a report; exits 1 if any trial found an orphan, a
 * duplicate, a resource the journal did not account for, or a recovery that
 * failed.
 *
 *   TLM_SOAK_TRIALS  number of trials (default 500)
 *   TLM_SOAK_SEED    seed of the random choices (default: from the clock);
 *                    printed first, so a run can be repeated
 *   TLM_TEST_VERBOSE one line per trial */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness/crash.h"
#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define CMD_MS     60000
#define MAX_REPORT 20 /* failures printed in full */

static uint64_t rng;

/* splitmix64: small, and the same sequence on every platform. */
static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t pick(size_t n)
{
	return (size_t)(next_rand() % n);
}

static const char two_teams[] = "apiVersion: telemachy/v1\n"
				"metadata: {name: soak-two-teams}\n"
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

/* The agent "flaky" fails the first attempt of its task in each run (a
 * marker per team id, i.e. per run, in the soak's dir) and completes the
 * retry.  %s: that dir. */
static const char retry_fmt[] =
	"apiVersion: telemachy/v1\n"
	"metadata: {name: soak-retry}\n"
	"agents:\n"
	"  - {name: steady, program: none}\n"
	"  - name: flaky\n"
	"    program: /bin/sh\n"
	"    args: [\"-c\", \"m=%s/marker-$TLM_TEAM_ID; if [ -e $m ]; then exit 0; fi; "
	"touch $m; exit 3\"]\n"
	"teams:\n"
	"  - name: t\n"
	"    agents: [steady, flaky]\n"
	"    tasks:\n"
	"      - {subject: first, description: d, assign_to: steady}\n"
	"      - {subject: flaky, description: d, assign_to: flaky, retries: 2,\n"
	"         blocked_by: [first]}\n"
	"      - {subject: last, description: d, assign_to: steady, blocked_by: [flaky]}\n";

/* Ten agents in three teams, eleven tasks. */
static const char large[] =
	"apiVersion: telemachy/v1\n"
	"metadata: {name: soak-large}\n"
	"agents:\n"
	"  - {name: a1, program: none}\n"
	"  - {name: a2, program: none}\n"
	"  - {name: a3, program: none}\n"
	"  - {name: a4, program: none}\n"
	"  - {name: a5, program: none}\n"
	"  - {name: a6, program: none}\n"
	"  - {name: a7, program: none}\n"
	"  - {name: a8, program: none}\n"
	"  - {name: a9, program: none}\n"
	"  - {name: a10, program: none}\n"
	"teams:\n"
	"  - name: build\n"
	"    agents: [a1, a2, a3, a4]\n"
	"    tasks:\n"
	"      - {subject: b1, description: d, assign_to: a1}\n"
	"      - {subject: b2, description: d, assign_to: a2}\n"
	"      - {subject: b3, description: d, assign_to: a3, blocked_by: [b1]}\n"
	"      - {subject: b4, description: d, assign_to: a4, blocked_by: [b2, b3]}\n"
	"  - name: test\n"
	"    agents: [a5, a6, a7]\n"
	"    tasks:\n"
	"      - {subject: t1, description: d, assign_to: a5, blocked_by: [build/b4]}\n"
	"      - {subject: t2, description: d, assign_to: a6, blocked_by: [build/b3]}\n"
	"      - {subject: t3, description: d, assign_to: a7, blocked_by: [t1, t2]}\n"
	"  - name: ship\n"
	"    agents: [a8, a9, a10]\n"
	"    tasks:\n"
	"      - {subject: s1, description: d, assign_to: a8}\n"
	"      - {subject: s2, description: d, assign_to: a9, blocked_by: [test/t3]}\n"
	"      - {subject: s3, description: d, assign_to: a10, blocked_by: [s1]}\n"
	"      - {subject: s4, description: d, assign_to: a8, blocked_by: [s2, s3]}\n";

#define NWF    4
#define NFAULT 6

static const char *const wf_names[NWF] = { "hello-world", "two-teams", "retry", "large" };

/* Kinds of fault and the specs each may take (a route picked at random for
 * the 503 and 429 kinds). */
static const char *const fault_kinds[NFAULT] = {
	"none",      "drop-create-agent", "drop-create-team",
	"503-burst", "429-retry-after",   "drop-start"
};
static const char *const burst_routes[] = { "POST /v1/agents", "POST /v1/teams",
					    "POST /v1/teams/*/tasks", "GET /v1/teams/*/tasks/*" };
#define NROUTES (sizeof(burst_routes) / sizeof(burst_routes[0]))

static void fault_spec(size_t kind, size_t route, char *buf, size_t n)
{
	switch (kind) {
	case 0: buf[0] = '\0'; break;
	case 1: snprintf(buf, n, "drop:route=POST /v1/agents"); break;
	case 2: snprintf(buf, n, "drop:route=POST /v1/teams"); break;
	case 3: snprintf(buf, n, "fail:route=%s,status=503,count=2", burst_routes[route]); break;
	case 4:
		snprintf(buf, n, "fail:route=%s,status=429,retry_after=1,count=1",
			 burst_routes[route]);
		break;
	default: snprintf(buf, n, "drop:route=POST /v1/agents/*/start"); break;
	}
}

/* Point counts, per workflow, fault kind and route (0: not counted yet). */
static size_t npoints[NWF][NFAULT][NROUTES];

static tlm_h_pg pg;

static void test_soak(void **state)
{
	const char *v = getenv("TLM_SOAK_TRIALS");
	long trials = v != NULL ? strtol(v, NULL, 10) : 500, t;
	uint64_t seed;
	char *dir = tlm_h_tmpdir(), *files[NWF], retry[2048];
	size_t faults[NFAULT] = { 0 }, rec_n[2] = { 0 }, rec_ok[2] = { 0 }, wf_n[NWF] = { 0 };
	size_t crashes = 0, ended = 0, nojournal = 0, failures = 0, run_failures = 0;
	long orphans = 0, dups = 0, unacc = 0, reconcile_orphans = 0;
	int64_t t0 = tlm_h_now_ms();
	tlm_h_serve srv;
	size_t i;

	(void)state;
	v = getenv("TLM_SOAK_SEED");
	seed = v != NULL ? strtoull(v, NULL, 0)
			 : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^
				   (uint64_t)tlm_h_now_ms();
	rng = seed;
	printf("soak: seed %" PRIu64 " (TLM_SOAK_SEED=%" PRIu64 " repeats the choices), %ld "
	       "trials\n",
	       seed, seed, trials);
	fflush(stdout);

	snprintf(retry, sizeof(retry), retry_fmt, dir);
	files[0] = strdup(TLM_SOURCE_DIR "/examples/hello-world.yaml");
	files[1] = tlm_h_write_file(dir, "two-teams.yaml", two_teams);
	files[2] = tlm_h_write_file(dir, "retry.yaml", retry);
	files[3] = tlm_h_write_file(dir, "large.yaml", large);
	memset(npoints, 0, sizeof(npoints));
	tlm_h_serve_start(&srv, NULL);
	/* TLM_CRASH_JOURNAL=postgres: every trial journals in a fresh database
	 * of a real PostgreSQL (docs/distributed.md). */
	v = getenv("TLM_CRASH_JOURNAL");
	if (v != NULL && strcmp(v, "postgres") == 0) {
		tlm_h_pg_start(&pg);
		tlm_h_crash_use_pg(&pg);
	}

	for (t = 1; t <= trials; t++) {
		size_t w = pick(NWF), fk = pick(NFAULT), route = pick(NROUTES);
		tlm_h_recovery rec = pick(2) == 0 ? TLM_H_RESUME : TLM_H_TEARDOWN;
		char spec[160];
		tlm_h_crash_result res;
		long k;

		if (fk != 3 && fk != 4)
			route = 0;
		fault_spec(fk, route, spec, sizeof(spec));
		if (npoints[w][fk][route] == 0) {
			tlm_h_points pts;

			tlm_h_crash_count(&srv, files[w], spec[0] ? spec : NULL, &pts);
			if (pts.exit_code != 0 || pts.n == 0)
				fail_msg("counting %s with fault %s: exit %d, %zu points; "
					 "stderr:\n%s",
					 wf_names[w], spec[0] ? spec : "none", pts.exit_code, pts.n,
					 pts.err);
			npoints[w][fk][route] = pts.n;
			tlm_h_points_free(&pts);
		}
		k = 1 + (long)pick(npoints[w][fk][route] + 5);
		tlm_h_crash_trial(&srv, files[w], spec[0] ? spec : NULL, k, rec, CMD_MS, 0, &res);

		wf_n[w]++;
		faults[fk]++;
		if (res.crashed) {
			crashes++;
			if (res.run_id[0] == '\0') {
				nojournal++;
			} else {
				rec_n[rec]++;
				rec_ok[rec] += res.recovery_exit == 0 ? 1u : 0u;
			}
		} else {
			ended++;
			if (res.run_exit != 0)
				run_failures++;
		}
		orphans += res.left_after;
		reconcile_orphans += res.orphans_after > 0 ? res.orphans_after : 0;
		dups += res.duplicates;
		unacc += res.unaccounted;
		if (getenv("TLM_TEST_VERBOSE") != NULL)
			printf("trial %ld: %s, fault %s, k=%ld (%s), %s: exit %d run %s, %ld on "
			       "the server, recovery %d, left %ld%s\n",
			       t, wf_names[w], spec[0] ? spec : "none", k, res.point,
			       tlm_h_recovery_name(rec), res.run_exit,
			       res.run_id[0] ? res.run_id : "-", res.server_before,
			       res.recovery_exit, res.left_after, res.failed ? " FAILED" : "");
		if (res.failed) {
			failures++;
			printf("\nFAILED trial %ld: workflow %s, fault %s, k=%ld of ~%zu (%s), "
			       "%s, run %s: exit %d, %ld duplicate(s), %ld unaccounted, recovery "
			       "exit %d, %ld left, %ld reconcile orphan(s)\n",
			       t, wf_names[w], spec[0] ? spec : "none", k, npoints[w][fk][route],
			       res.point, tlm_h_recovery_name(rec),
			       res.run_id[0] ? res.run_id : "(none)", res.run_exit, res.duplicates,
			       res.unaccounted, res.recovery_exit, res.left_after,
			       res.orphans_after);
			if (failures <= MAX_REPORT)
				printf("%s\n", res.msg);
		}
		fflush(stdout);
		tlm_h_crash_result_free(&res);
		if (t % 50 == 0 && getenv("TLM_TEST_VERBOSE") == NULL) {
			printf("soak: %ld/%ld trials, %zu failed, %.0f s\n", t, trials, failures,
			       (double)(tlm_h_now_ms() - t0) / 1000.0);
			fflush(stdout);
		}
	}
	tlm_h_assert_no_tlm(&srv);
	tlm_h_serve_stop(&srv);
	if (pg.pid > 0)
		tlm_h_pg_stop(&pg);

	printf("\n==== soak report (seed %" PRIu64 ") ====\n", seed);
	printf("trials             %ld in %.1f s\n", trials,
	       (double)(tlm_h_now_ms() - t0) / 1000.0);
	printf("workflows          ");
	for (i = 0; i < NWF; i++)
		printf("%s %zu%s", wf_names[i], wf_n[i], i + 1 < NWF ? ", " : "\n");
	printf("crashes            %zu (%zu before the run was journaled); %zu runs ended "
	       "before their point k\n",
	       crashes, nojournal, ended);
	printf("faults injected    ");
	for (i = 0; i < NFAULT; i++)
		printf("%s %zu%s", fault_kinds[i], faults[i], i + 1 < NFAULT ? ", " : "\n");
	printf("recoveries         resume %zu (%zu exit 0), teardown %zu (%zu exit 0)\n",
	       rec_n[TLM_H_RESUME], rec_ok[TLM_H_RESUME], rec_n[TLM_H_TEARDOWN],
	       rec_ok[TLM_H_TEARDOWN]);
	printf("orphans found      %ld left after recovery, %ld reported by reconcile\n", orphans,
	       reconcile_orphans);
	printf("duplicates found   %ld\n", dups);
	printf("unaccounted found  %ld\n", unacc);
	printf("uncrashed runs that failed %zu\n", run_failures);
	printf("failures           %zu\n", failures);
	fflush(stdout);

	for (i = 0; i < NWF; i++)
		free(files[i]);
	tlm_h_rmrf(dir);
	free(dir);
	if (failures > 0)
		fail_msg("soak: %zu of %ld trials failed (seed %" PRIu64 ")", failures, trials,
			 seed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_soak),
	};

	return cmocka_run_group_tests_name("soak", tests, NULL, NULL) != 0 ? 1 : 0;
}
