/* The engine against a control plane and a NATS server that misbehave, through
 * the real binary: rate limits with Retry-After, 503 bursts, a listener that
 * goes away for a while, NATS configured, killed and restarted, or absent,
 * interrupts during provisioning, during tasks and during teardown, a dry
 * run that touches nothing, and API keys.  After every run the server must
 * hold no `tlm-` resource the test did not expect. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <nats/nats.h>

#include "harness/harness.h"
#include "harness/nats.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS 60000

static tlm_h_serve srv;
static tlm_h_run run;
static pid_t nats_pid;
static unsigned short nats_port;
static char *dir;

static const char one_task[] =
	"apiVersion: telemachy/v1\n"
	"metadata: {name: faults}\n"
	"agents: [{name: a, program: none}]\n"
	"teams:\n"
	"  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n";

static const char two_agents_three_tasks[] = "apiVersion: telemachy/v1\n"
					     "metadata: {name: bursts}\n"
					     "agents:\n"
					     "  - {name: a, program: none}\n"
					     "  - {name: b, program: none}\n"
					     "teams:\n"
					     "  - name: t\n"
					     "    agents: [a, b]\n"
					     "    tasks:\n"
					     "      - {subject: s1, description: d, assign_to: a}\n"
					     "      - {subject: s2, description: d, assign_to: b}\n"
					     "      - {subject: s3, description: d, assign_to: a,\n"
					     "         blocked_by: [s1, s2]}\n";

static const char five_tasks[] =
	"apiVersion: telemachy/v1\n"
	"metadata: {name: five}\n"
	"agents: [{name: a, program: none}, {name: b, program: none}]\n"
	"teams:\n"
	"  - name: t\n"
	"    agents: [a, b]\n"
	"    tasks:\n"
	"      - {subject: s1, description: d, assign_to: a}\n"
	"      - {subject: s2, description: d, assign_to: b}\n"
	"      - {subject: s3, description: d, assign_to: a}\n"
	"      - {subject: s4, description: d, assign_to: b, blocked_by: [s1]}\n"
	"      - {subject: s5, description: d, assign_to: a,\n"
	"         blocked_by: [s3, s4]}\n";

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&run, 0, sizeof(run));
	nats_pid = 0;
	nats_port = 0;
	dir = tlm_h_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_run_clear(&run);
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	tlm_h_nats_stop(nats_pid);
	nats_pid = 0;
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

/* Runs file against srv with the extra environment and args; returns the
 * exit code. */
static int run_on_srv(const char *file, const char *const *env_extra, const char *const *extra)
{
	tlm_h_run_on(&run, &srv, file, env_extra, extra);
	return tlm_h_run_finish(&run, RUN_MS);
}

/* A run that must complete: exit 0, every task completed, torn down, and
 * nothing left on the server. */
static void assert_completed_clean(int rc)
{
	if (rc != 0)
		fail_msg("exit %d\nstdout:\n%s\nstderr:\n%s", rc, run.out, run.err);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "completed");
	tlm_h_assert_all_completed(&run);
	assert_true(json_is_true(json_object_get(run.result, "torn_down")));
	assert_int_equal(json_array_size(json_object_get(run.result, "leftovers")), 0);
	tlm_h_assert_no_tlm(&srv);
}

static void wait_err(const char *text, int ms)
{
	if (tlm_h_run_wait_for(&run, text, ms) != 0) {
		tlm_h_run_wait(&run, 100);
		fail_msg("no \"%s\" on stderr within %d ms; stderr:\n%s", text, ms, run.err);
	}
}

/* 1. 429 with Retry-After on the agent creates: retried after the wait, and
 * the run completes. */
static void test_429_retry_after(void **state)
{
	const char *args[] = { "--fault",
			       "fail:route=POST /v1/agents,status=429,retry_after=1,count=2",
			       NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", one_task);

	(void)state;
	tlm_h_serve_start(&srv, args);
	assert_completed_clean(run_on_srv(file, NULL, NULL));
	assert_int_equal(tlm_h_fault_fired(&srv, 0), 2);
	/* Retry-After: 1, twice */
	assert_true(tlm_h_int(run.result, "elapsed_ms") >= 1500);
	free(file);
}

/* 2. 503 bursts on task submission and on task reads. */
static void test_503_bursts(void **state)
{
	const char *args[] = { "--fault", "fail:route=POST /v1/teams/*/tasks,status=503,count=3",
			       "--fault", "fail:route=GET /v1/teams/*/tasks/*,status=503,count=3",
			       NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", two_agents_three_tasks);

	(void)state;
	tlm_h_serve_start(&srv, args);
	assert_completed_clean(run_on_srv(file, NULL, NULL));
	assert_int_equal(tlm_h_fault_fired(&srv, 0), 3);
	print_message("503 on GET /v1/teams/*/tasks/*: fired %lld\n",
		      (long long)tlm_h_fault_fired(&srv, 1));
	free(file);
}

/* 3. The listener goes away for 2 s while a task runs.  Fresh connections:
 * keep-alive ones (the default) outlive a closed listener, and the run
 * would not meet a refused connection at all. */
static void test_refused_mid_run(void **state)
{
	static const char *const fresh[] = { "--connection", "fresh", NULL };
	char *file = tlm_h_sh_workflow(dir, "refused", "sleep 1");
	json_t *j = NULL;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, fresh);
	wait_err("submitted", 20000);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/chaos/refuse", "{\"seconds\":2}", &j), 201);
	json_decref(j);
	assert_completed_clean(tlm_h_run_finish(&run, RUN_MS));
	free(file);
}

static void start_nats_and_srv(void)
{
	char nurl[64];
	const char *args[] = { "--nats", nurl, NULL };

	nats_pid = tlm_h_nats_start(&nats_port);
	tlm_h_nats_url(nurl, sizeof(nurl), nats_port);
	tlm_h_serve_start(&srv, args);
}

/* 4. NATS configured on both sides. */
static void test_nats_configured(void **state)
{
	char nenv[80], nurl[64];
	const char *env[] = { nenv, NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", one_task);
	char *file5 = tlm_h_write_file(dir, "five.yaml", five_tasks);
	json_t *health = NULL;

	(void)state;
	start_nats_and_srv();
	snprintf(nenv, sizeof(nenv), "NATS_URL=%s", tlm_h_nats_url(nurl, sizeof(nurl), nats_port));
	assert_completed_clean(run_on_srv(file, env, NULL));
	tlm_h_run_clear(&run);
	assert_completed_clean(run_on_srv(file5, env, NULL));
	assert_int_equal(json_array_size(json_object_get(run.result, "tasks")), 5);
	/* the server did publish the events the run could follow */
	assert_int_equal(tlm_h_req(&srv, "GET", "/health", NULL, &health), 200);
	assert_string_equal(tlm_h_str(json_object_get(health, "nats"), "state"), "connected");
	assert_true(tlm_h_int(json_object_get(health, "nats"), "published") > 0);
	json_decref(health);
	free(file);
	free(file5);
}

/* 5. NATS crashes while a task runs and comes back on the same port. */
static void test_nats_killed_and_restarted(void **state)
{
	char nenv[80], nurl[64];
	const char *env[] = { nenv, NULL };
	char *file = tlm_h_sh_workflow(dir, "natskill", "sleep 2");

	(void)state;
	start_nats_and_srv();
	snprintf(nenv, sizeof(nenv), "NATS_URL=%s", tlm_h_nats_url(nurl, sizeof(nurl), nats_port));
	tlm_h_run_on(&run, &srv, file, env, NULL);
	wait_err("submitted", 20000);
	tlm_h_nats_kill(nats_pid);
	nats_pid = 0;
	tlm_h_sleep_ms(500);
	nats_pid = tlm_h_nats_restart(0, nats_port);
	assert_completed_clean(tlm_h_run_finish(&run, RUN_MS));
	free(file);
}

/* 6. NATS configured but nothing listens: the preflight fails, nothing is made. */
static void test_nats_unreachable(void **state)
{
	char nenv[80], nurl[64];
	const char *env[] = { nenv, NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", one_task);

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_nats_url(nurl, sizeof(nurl), tlm_h_free_port());
	snprintf(nenv, sizeof(nenv), "NATS_URL=%s", nurl);
	tlm_h_run_on(&run, &srv, file, env, NULL);
	tlm_h_run_wait(&run, RUN_MS);
	if (run.exit_code != 3)
		fail_msg("exit %d, expected 3\nstdout:\n%s\nstderr:\n%s", run.exit_code, run.out,
			 run.err);
	if (strstr(run.err, "NATS") == NULL || strstr(run.err, nurl) == NULL)
		fail_msg("stderr does not name NATS and %s:\n%s", nurl, run.err);
	assert_non_null(strstr(run.err, "preflight failed"));
	assert_non_null(run.result);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "preflight_failed");
	assert_int_equal(tlm_h_int(run.result, "agents_created"), 0);
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), 0);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 7. SIGINT while agents are being started (each start held 1.5 s). */
static void test_sigint_during_provisioning(void **state)
{
	const char *args[] = { "--fault", "delay:route=POST /v1/agents/*/start,ms=1500,count=0",
			       NULL };
	char *file = tlm_h_write_file(dir, "w.yaml",
				      "apiVersion: telemachy/v1\n"
				      "metadata: {name: provint}\n"
				      "agents:\n"
				      "  - {name: a, program: none}\n"
				      "  - {name: b, program: none}\n"
				      "  - {name: c, program: none}\n"
				      "teams:\n"
				      "  - name: t\n"
				      "    agents: [a, b, c]\n"
				      "    tasks:\n"
				      "      - {subject: s, description: d, assign_to: a}\n");

	(void)state;
	tlm_h_serve_start(&srv, args);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	wait_err("created as", 20000);
	assert_int_equal(kill(run.pid, SIGINT), 0);
	assert_int_equal(tlm_h_run_finish(&run, 20000), 130);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "cancelled");
	assert_true(json_is_true(json_object_get(run.result, "torn_down")));
	assert_int_equal(json_array_size(json_object_get(run.result, "leftovers")), 0);
	assert_null(strstr(run.err, "task t/s submitted"));
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

static pid_t read_pid(const char *path, int timeout_ms)
{
	int64_t end = tlm_h_now_ms() + timeout_ms;

	while (tlm_h_now_ms() < end) {
		FILE *f = fopen(path, "r");
		long pid = 0;
		int got = f != NULL && fscanf(f, "%ld", &pid) == 1;

		if (f != NULL)
			fclose(f);
		if (got && pid > 1)
			return (pid_t)pid;
		tlm_h_sleep_ms(20);
	}
	return 0;
}

/* 8. SIGINT while a task runs: the run ends (130), its agent and team are
 * deleted, and the task's process is killed. */
static void test_sigint_during_tasks(void **state)
{
	char script[512], *pidfile = NULL, *file;
	int64_t t0, end;
	pid_t pid;
	int gone = 0;

	(void)state;
	pidfile = tlm_h_write_file(dir, "pid", "");
	snprintf(script, sizeof(script), "echo $$ > %s; exec sleep 30", pidfile);
	file = tlm_h_sh_workflow(dir, "taskint", script);
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	wait_err("submitted", 20000);
	pid = read_pid(pidfile, 10000);
	if (pid == 0) {
		tlm_h_run_wait(&run, 100);
		fail_msg("the task never wrote its pid; stderr:\n%s", run.err);
	}
	assert_int_equal(kill(pid, 0), 0);
	t0 = tlm_h_now_ms();
	assert_int_equal(kill(run.pid, SIGINT), 0);
	assert_int_equal(tlm_h_run_finish(&run, 10000), 130);
	print_message("exit 130 %lld ms after SIGINT\n", (long long)(tlm_h_now_ms() - t0));
	assert_string_equal(tlm_h_str(run.result, "outcome"), "cancelled");
	assert_true(json_is_true(json_object_get(run.result, "torn_down")));
	tlm_h_assert_no_tlm(&srv);
	end = tlm_h_now_ms() + 5000;
	while (tlm_h_now_ms() < end) {
		if (kill(pid, 0) == -1 && errno == ESRCH) {
			gone = 1;
			break;
		}
		tlm_h_sleep_ms(20);
	}
	if (!gone)
		fail_msg("the task's process %ld still exists 5 s after the run ended", (long)pid);
	free(pidfile);
	free(file);
}

/* 9. A second SIGINT during a slow teardown leaves at once and says how to
 * clean up. */
static void test_second_sigint(void **state)
{
	const char *args[] = { "--fault", "delay:route=DELETE /v1/agents/*,ms=3000,count=0", NULL };
	char *file = tlm_h_sh_workflow(dir, "twice", "sleep 30");
	int64_t t1;

	(void)state;
	tlm_h_serve_start(&srv, args);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	wait_err("submitted", 20000);
	tlm_h_sleep_ms(200);
	assert_int_equal(kill(run.pid, SIGINT), 0);
	wait_err("tearing down", 10000);
	tlm_h_sleep_ms(300);
	t1 = tlm_h_now_ms();
	assert_int_equal(kill(run.pid, SIGINT), 0);
	tlm_h_run_wait(&run, 5000);
	if (getenv("TLM_TEST_VERBOSE") != NULL)
		print_message("stderr:\n%s", run.err);
	print_message("exit %d %lld ms after the second SIGINT\n", run.exit_code,
		      (long long)(tlm_h_now_ms() - t1));
	assert_true(tlm_h_now_ms() - t1 < 5000);
	if (run.exit_code != 130)
		fail_msg("exit %d, expected 130\nstderr:\n%s", run.exit_code, run.err);
	assert_non_null(strstr(run.err, "telemachy teardown"));
	free(file);
}

/* 10. A dry run needs no network and touches nothing, whatever AGAMEMNON_URL says. */
static void test_dry_run(void **state)
{
	const char *extra[] = { "--dry-run", NULL };
	char dead[80];
	const char *env[] = { dead, NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", two_agents_three_tasks);
	json_t *j = NULL;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	assert_int_equal(run_on_srv(file, NULL, extra), 0);
	tlm_h_assert_all_completed(&run);
	assert_int_equal(json_array_size(json_object_get(run.result, "tasks")), 3);
	tlm_h_assert_no_tlm(&srv);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/agents", NULL, &j), 200);
	assert_int_equal(tlm_h_int(j, "total"), 0);
	json_decref(j);
	assert_int_equal(tlm_h_req(&srv, "GET", "/v1/teams", NULL, &j), 200);
	assert_int_equal(tlm_h_int(j, "total"), 0);
	json_decref(j);
	tlm_h_run_clear(&run);

	snprintf(dead, sizeof(dead), "AGAMEMNON_URL=http://127.0.0.1:%u", tlm_h_free_port());
	tlm_h_run_wf(&run, env, extra, file, RUN_MS);
	if (run.exit_code != 0 || run.result == NULL)
		fail_msg("dry run against a dead URL: exit %d\nstdout:\n%s\nstderr:\n%s",
			 run.exit_code, run.out, run.err);
	tlm_h_assert_all_completed(&run);
	free(file);
}

/* The agents or teams on the server, authenticated with key. */
static json_int_t total_with_key(const char *kind, const char *key)
{
	char url[256], auth[128];
	const char *headers[] = { auth, NULL };
	json_t *j = NULL;
	json_int_t n;

	snprintf(url, sizeof(url), "%s/v1/%s?limit=1000", srv.url, kind);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	assert_int_equal(tlm_h_http("GET", url, NULL, headers, &j, NULL, NULL), 200);
	n = tlm_h_int(j, "total");
	json_decref(j);
	return n;
}

/* 11. API keys: the right one from a file works; a wrong one fails the
 * preflight without ever being printed. */
static void test_api_key(void **state)
{
	const char *args[] = { "--api-key", "s3cr3t-key", NULL };
	char kenv[4200];
	const char *env[] = { kenv, NULL };
	const char *wrong[] = { "AGAMEMNON_API_KEY=wrong-key-123", NULL };
	char *file = tlm_h_write_file(dir, "w.yaml", one_task);
	char *keyfile = tlm_h_write_file(dir, "key", "s3cr3t-key\n");

	(void)state;
	tlm_h_serve_start(&srv, args);
	snprintf(kenv, sizeof(kenv), "AGAMEMNON_API_KEY_FILE=%s", keyfile);
	if (run_on_srv(file, env, NULL) != 0)
		fail_msg("exit %d\nstdout:\n%s\nstderr:\n%s", run.exit_code, run.out, run.err);
	tlm_h_assert_all_completed(&run);
	assert_true(json_is_true(json_object_get(run.result, "torn_down")));
	assert_int_equal(total_with_key("agents", "s3cr3t-key"), 0);
	assert_int_equal(total_with_key("teams", "s3cr3t-key"), 0);
	assert_null(strstr(run.out, "s3cr3t-key"));
	assert_null(strstr(run.err, "s3cr3t-key"));
	tlm_h_run_clear(&run);

	tlm_h_run_on(&run, &srv, file, wrong, NULL);
	tlm_h_run_wait(&run, RUN_MS);
	if (run.exit_code != 3)
		fail_msg("exit %d, expected 3\nstdout:\n%s\nstderr:\n%s", run.exit_code, run.out,
			 run.err);
	assert_non_null(strstr(run.err, "401"));
	assert_non_null(strstr(run.err, "API key"));
	assert_null(strstr(run.out, "wrong-key-123"));
	assert_null(strstr(run.err, "wrong-key-123"));
	assert_int_equal(total_with_key("agents", "s3cr3t-key"), 0);
	assert_int_equal(total_with_key("teams", "s3cr3t-key"), 0);
	free(file);
	free(keyfile);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_429_retry_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_503_bursts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_mid_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nats_configured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nats_killed_and_restarted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nats_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigint_during_provisioning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigint_during_tasks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_sigint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_key, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	nats_CloseAndWait(5000);
	return rc;
}
