/* Outages during a run (docs/agamemnon.md, "Outages of NATS and of the
 * control plane"), through the real binary against a real nats-server and
 * the real `telemachy serve`:
 * - NATS stopped while a task runs: a warning, the task's completion still
 *   seen soon after it happened (REST at the no-NATS cadence, not the
 *   with-NATS back-off of up to 15 s), and "back" once NATS is restarted;
 * - serve killed and restarted on the same port with its --state file: a
 *   warning, "answers again", and the run completes.
 * Times are bounded generously: the point is "not stuck behind the with-NATS
 * back-off", not a speed target. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/nats.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS 90000

static tlm_h_serve srv;
static tlm_h_run run;
static pid_t nats;
static char *dir;

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&run, 0, sizeof(run));
	nats = 0;
	dir = tlm_h_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_run_clear(&run);
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	tlm_h_nats_stop(nats);
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

/* Seconds of the log line that contains text ("[  8.12s] ..."), -1 if none. */
static double line_time(const char *log, const char *text)
{
	const char *at = strstr(log, text), *start;
	double t = -1;

	if (at == NULL)
		return -1;
	for (start = at; start > log && start[-1] != '\n'; start--)
		;
	if (sscanf(start, "[%lf", &t) != 1)
		return -1;
	return t;
}

static char *write_wf(const char *name, const char *first, const char *second, int retries)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "apiVersion: telemachy/v1\n"
		 "metadata: {name: %s}\n"
		 "agents:\n"
		 "  - {name: a, program: /bin/sh, args: ['-c', 'sleep $(cat)']}\n"
		 "teams:\n"
		 "  - name: t\n"
		 "    agents: [a]\n"
		 "    tasks:\n"
		 "      - {subject: first, description: '%s', retries: %d}\n"
		 "      - {subject: second, description: '%s', blocked_by: [first]}\n",
		 name, first, retries, second);
	return tlm_h_write_file(dir, "w.yaml", text);
}

/* The first task sleeps 8 s.  With NATS gone, the with-NATS back-off
 * (1, 2, 4, 8 s: asks at 1, 3, 7 and 15 s after the submit) would see its
 * end at ~15 s; the no-NATS cadence (at most 2 s apart) sees it by ~10 s. */
static void test_nats_stopped_mid_run(void **state)
{
	unsigned short port = 0;
	char url[64], env_nats[96];
	const char *args[] = { "--nats", url, NULL };
	const char *env[] = { env_nats, NULL };
	char *wf = write_wf("nats-outage", "8", "2", 0);
	double submitted, done;

	(void)state;
	nats = tlm_h_nats_start(&port);
	tlm_h_nats_url(url, sizeof(url), port);
	snprintf(env_nats, sizeof(env_nats), "NATS_URL=%s", url);
	tlm_h_serve_start(&srv, args);
	tlm_h_run_on(&run, &srv, wf, env, NULL);
	assert_int_equal(tlm_h_run_wait_for(&run, "task t/first submitted", 30000), 0);
	tlm_h_nats_kill(nats);
	nats = 0;
	if (tlm_h_run_wait_for(&run, "warning: NATS connection lost", 10000) != 0 ||
	    tlm_h_run_wait_for(&run, "task t/first completed", 30000) != 0)
		fail_msg("no warning, or the task was not seen completed:\n%s", run.err);
	nats = tlm_h_nats_start(&port);
	if (tlm_h_run_wait_for(&run, "warning: NATS connection back after", 15000) != 0)
		fail_msg("NATS' return not said:\n%s", run.err);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	tlm_h_assert_all_completed(&run);
	submitted = line_time(run.err, "task t/first submitted");
	done = line_time(run.err, "task t/first completed");
	if (submitted < 0 || done < 0 || done - submitted > 13.0)
		fail_msg("completion seen %.1f s after the submit (task: 8 s):\n%s",
			 done - submitted, run.err);
	/* Once each way, not per request. */
	assert_null(strstr(strstr(run.err, "NATS connection lost") + 1, "NATS connection lost"));
	free(wf);
}

static void kill_serve(tlm_h_serve *s)
{
	int status;

	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
}

/* serve is SIGKILLed while the first task runs, and restarted 3 s later on
 * the same port with the same --state file: the running task fails there
 * ("interrupted: the server restarted") and is retried. */
static void test_serve_killed_mid_run(void **state)
{
	char db[512], listen[64], *keep_dir;
	const char *args1[] = { "--state", db, NULL };
	const char *args2[] = { "--state", db, "--listen", listen, NULL };
	char *wf = write_wf("serve-outage", "3", "1", 1);
	char *lost;

	(void)state;
	snprintf(db, sizeof(db), "%s/serve.db", dir);
	tlm_h_serve_start(&srv, args1);
	tlm_h_run_on(&run, &srv, wf, NULL, NULL);
	assert_int_equal(tlm_h_run_wait_for(&run, "task t/first submitted", 30000), 0);
	kill_serve(&srv);
	if (tlm_h_run_wait_for(&run, "warning: control plane unreachable", 10000) != 0)
		fail_msg("no warning while the control plane was away:\n%s", run.err);
	sleep(3);
	snprintf(listen, sizeof(listen), "127.0.0.1:%hu", srv.port);
	keep_dir = srv.state_dir;
	tlm_h_serve_start(&srv, args2);
	tlm_h_rmrf(keep_dir);
	free(keep_dir);
	if (tlm_h_run_wait_for(&run, "warning: control plane answers again after", 20000) != 0)
		fail_msg("its return not said:\n%s", run.err);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	tlm_h_assert_all_completed(&run);
	lost = strstr(run.err, "control plane unreachable");
	assert_non_null(lost);
	assert_null(strstr(lost + 1, "control plane unreachable"));
	tlm_h_assert_no_tlm(&srv);
	free(wf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nats_stopped_mid_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serve_killed_mid_run, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
