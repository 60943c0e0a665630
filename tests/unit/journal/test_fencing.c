/* One owner per run (schema 3, docs/internals/journal.md): claims raise the
 * owner epoch; a handle that lost its run writes nothing more (every write
 * kind is tried); liveness on the same host by pid and start time (a
 * stopped owner is alive, a reused pid is not), elsewhere by the heartbeat;
 * --force; 100 races of two processes claiming one dead run; and a
 * damaged journal refused with an error instead of a crash. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "telemachy/journal.h"
#include "util/testhooks.h"

#define SPEC "apiVersion: telemachy/v1\nmetadata:\n  name: demo\n"

static void raw_exec(const char *dir, const char *sql)
{
	char path[512];
	sqlite3 *db = NULL;
	char *msg = NULL;

	snprintf(path, sizeof(path), "%s/journal.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("raw sql failed: %s: %s", sql, msg ? msg : "?");
	sqlite3_close(db);
}

static int count_rows(const tlm_journal_resource *r, void *ctx)
{
	(void)r;
	(*(int *)ctx)++;
	return 0;
}

static void test_fenced_handle_writes_nothing(void **state)
{
	char *tmp = tlm_h_tmpdir(), run[TLM_JOURNAL_RUN_ID_LEN + 1], pidtext[32];
	const char *names[] = { "tlm-x-a-one" };
	tlm_journal *a = NULL, *b = NULL, *c = NULL;
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run r;
	int rows = 0;
	(void)state;

	assert_int_equal(tlm_journal_open(&a, tmp, &err), 0);
	assert_int_equal(tlm_journal_open(&b, tmp, &err), 0);
	assert_int_equal(tlm_journal_open(&c, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(a, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_held_epoch(a, run), 1);
	assert_int_equal(tlm_journal_intent(a, run, TLM_JOURNAL_AGENT, "tlm-x-a-zero", &err), 0);
	/* b takes it over (the same process: no live foreign owner). */
	assert_int_equal(tlm_journal_run_claim(b, run, 0, &err), 0);
	assert_int_equal(tlm_journal_held_epoch(b, run), 2);
	assert_int_equal(tlm_journal_run_get(b, run, &r, &err), 0);
	assert_int_equal(r.owner_epoch, 2);
	tlm_journal_run_clear(&r);
	/* a: every kind of write is refused, naming the new owner. */
	snprintf(pidtext, sizeof(pidtext), "pid %ld", (long)getpid());
	assert_int_equal(tlm_journal_fence_check(a, run, &err), TLM_EFENCED);
	assert_non_null(strstr(err.message, "taken over"));
	assert_non_null(strstr(err.message, pidtext));
	assert_int_equal(tlm_journal_run_set_state(a, run, TLM_RUN_RUNNING, &err), TLM_EFENCED);
	assert_int_equal(tlm_journal_run_heartbeat(a, run, &err), TLM_EFENCED);
	assert_int_equal(tlm_journal_run_set_control_plane(a, run, "http://127.0.0.1:1", &err),
			 TLM_EFENCED);
	assert_int_equal(tlm_journal_intents(a, run, TLM_JOURNAL_AGENT, names, 1, &err),
			 TLM_EFENCED);
	assert_int_equal(
		tlm_journal_created(a, run, TLM_JOURNAL_AGENT, "tlm-x-a-zero", "id-0", &err),
		TLM_EFENCED);
	assert_int_equal(tlm_journal_set_resource_state(a, run, TLM_JOURNAL_AGENT, "tlm-x-a-zero",
							TLM_JOURNAL_ABSENT, NULL, &err),
			 TLM_EFENCED);
	assert_int_equal(
		tlm_journal_task_record(a, run, "t", "s", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		TLM_EFENCED);
	/* Nothing of that reached the journal. */
	assert_int_equal(tlm_journal_resources(b, run, count_rows, &rows, &err), 0);
	assert_int_equal(rows, 1);
	assert_int_equal(tlm_journal_run_get(b, run, &r, &err), 0);
	assert_int_equal(r.state, TLM_RUN_PENDING);
	assert_null(r.control_plane);
	tlm_journal_run_clear(&r);
	/* Asking for a cancel and auditing stay open to anyone. */
	assert_int_equal(tlm_journal_run_request_cancel(a, run, &err), 0);
	assert_int_equal(tlm_journal_audit(a, run, "note", "from the old owner", &err), 0);
	/* A handle that never claimed the run cannot write it either. */
	assert_int_equal(tlm_journal_run_set_state(c, run, TLM_RUN_FAILED, &err), TLM_EFENCED);
	assert_non_null(strstr(err.message, "not claimed"));
	/* The new owner writes. */
	assert_int_equal(tlm_journal_run_set_state(b, run, TLM_RUN_RUNNING, &err), 0);
	assert_int_equal(tlm_journal_run_heartbeat(b, run, &err), 0);
	assert_int_equal(
		tlm_journal_created(b, run, TLM_JOURNAL_AGENT, "tlm-x-a-zero", "id-0", &err), 0);
	/* Claiming again what one holds does not raise the epoch. */
	assert_int_equal(tlm_journal_run_claim(b, run, 0, &err), 0);
	assert_int_equal(tlm_journal_held_epoch(b, run), 2);
	tlm_journal_close(a);
	tlm_journal_close(b);
	tlm_journal_close(c);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* A child that starts a run (so owns it), reports the id and waits. */
static pid_t spawn_owner(const char *dir, char run[TLM_JOURNAL_RUN_ID_LEN + 1])
{
	int fds[2];
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tlm_journal *cj = NULL;
		char id[TLM_JOURNAL_RUN_ID_LEN + 1];

		close(fds[0]);
		if (tlm_journal_open(&cj, dir, NULL) != 0 ||
		    tlm_journal_run_new(cj, "owned", SPEC, id, NULL) != 0 ||
		    write(fds[1], id, sizeof(id)) != (ssize_t)sizeof(id))
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], run, TLM_JOURNAL_RUN_ID_LEN + 1), TLM_JOURNAL_RUN_ID_LEN + 1);
	close(fds[0]);
	return pid;
}

static tlm_journal_owner owner_of(tlm_journal *j, const char *run)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run r;
	tlm_journal_owner o;

	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
	o = tlm_journal_run_owner(&r);
	tlm_journal_run_clear(&r);
	return o;
}

static void test_liveness_by_process(void **state)
{
	char *tmp = tlm_h_tmpdir(), run[TLM_JOURNAL_RUN_ID_LEN + 1], sql[256];
	tlm_journal *j = NULL, *k = NULL;
	tlm_error err = TLM_ERROR_INIT;
	pid_t child;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	child = spawn_owner(tmp, run);
	/* Stopped, with a heartbeat from another age: still alive here. */
	assert_int_equal(kill(child, SIGSTOP), 0);
	snprintf(sql, sizeof(sql),
		 "UPDATE runs SET heartbeat_at = '2000-01-01T00:00:00.000Z' WHERE id = '%s'", run);
	raw_exec(tmp, sql);
	assert_int_equal(owner_of(j, run), TLM_JOURNAL_OWNER_ALIVE);
	assert_int_equal(tlm_journal_run_claim(j, run, 0, &err), TLM_ECONFLICT);
	assert_non_null(strstr(err.message, "alive"));
	/* --force takes it: a new epoch. */
	assert_int_equal(tlm_journal_run_claim(j, run, TLM_JOURNAL_CLAIM_FORCE, &err), 0);
	assert_int_equal(tlm_journal_held_epoch(j, run), 2);
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	/* A reused pid (same pid, another start time) is not the owner. */
	assert_int_equal(tlm_journal_run_new(j, "mine", SPEC, run, &err), 0);
	assert_int_equal(owner_of(j, run), TLM_JOURNAL_OWNER_ALIVE);
	snprintf(sql, sizeof(sql), "UPDATE runs SET owner_start = owner_start + 1 WHERE id = '%s'",
		 run);
	raw_exec(tmp, sql);
	assert_int_equal(owner_of(j, run), TLM_JOURNAL_OWNER_DEAD);
	/* Another domain (another host): the heartbeat decides. */
	snprintf(sql, sizeof(sql),
		 "UPDATE runs SET owner_domain = 'other-boot/pid:[1]',"
		 " heartbeat_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now') WHERE id = '%s'",
		 run);
	raw_exec(tmp, sql);
	assert_int_equal(owner_of(j, run), TLM_JOURNAL_OWNER_ALIVE);
	assert_int_equal(tlm_journal_open(&k, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_claim(k, run, 0, &err), TLM_ECONFLICT);
	snprintf(sql, sizeof(sql),
		 "UPDATE runs SET heartbeat_at = '2000-01-01T00:00:00.000Z' WHERE id = '%s'", run);
	raw_exec(tmp, sql);
	assert_int_equal(owner_of(j, run), TLM_JOURNAL_OWNER_DEAD);
	assert_int_equal(tlm_journal_run_claim(k, run, 0, &err), 0);
	tlm_journal_close(j);
	tlm_journal_close(k);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* TLM_TEST_DOMAIN (test builds only) makes a process look as if on another
 * host: the recovery tests use it to play a remote owner. */
static void test_test_domain(void **state)
{
	char *tmp = tlm_h_tmpdir(), run[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal *j = NULL, *far = NULL;
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run r;
	(void)state;

	assert_true(tlm_testhooks_enabled());
	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "near", SPEC, run, &err), 0);
	assert_int_equal(setenv("TLM_TEST_DOMAIN", "elsewhere", 1), 0);
	assert_int_equal(tlm_journal_open(&far, tmp, &err), 0);
	assert_int_equal(unsetenv("TLM_TEST_DOMAIN"), 0);
	assert_int_equal(tlm_journal_run_claim(far, run, 0, &err), TLM_ECONFLICT); /* fresh lease */
	assert_int_equal(tlm_journal_run_claim(far, run, TLM_JOURNAL_CLAIM_FORCE, &err), 0);
	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
	assert_string_equal(r.owner_domain, "elsewhere");
	tlm_journal_run_clear(&r);
	tlm_journal_close(j);
	tlm_journal_close(far);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* One racer: claims when the parent says go, reports, waits to be told to
 * leave (so the winner is alive while the loser tries). */
static pid_t racer(const char *dir, const char *run, int go, int out, const int leave[2])
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		tlm_journal *j = NULL;
		char c, rc;

		close(leave[1]); /* EOF on leave[0] once the parent closes its end */
		if (tlm_journal_open(&j, dir, NULL) != 0 || read(go, &c, 1) != 1)
			_exit(3);
		rc = (char)(tlm_journal_run_claim(j, run, 0, NULL) == 0 ? 'W' : 'L');
		if (write(out, &rc, 1) != 1 || read(leave[0], &c, 1) < 0)
			_exit(3);
		_exit(0);
	}
	return pid;
}

static void test_claim_races(void **state)
{
	char *tmp = tlm_h_tmpdir(), run[TLM_JOURNAL_RUN_ID_LEN + 1];
	int i, k;
	(void)state;

	for (i = 0; i < 100; i++) {
		int go[2], out[2], leave[2], wins = 0;
		pid_t dead, p[2];
		char c;

		/* A run whose owner is dead: made by a process that exited. */
		dead = spawn_owner(tmp, run);
		assert_int_equal(kill(dead, SIGKILL), 0);
		assert_int_equal(waitpid(dead, NULL, 0), dead);
		assert_int_equal(pipe(go), 0);
		assert_int_equal(pipe(out), 0);
		assert_int_equal(pipe(leave), 0);
		for (k = 0; k < 2; k++)
			p[k] = racer(tmp, run, go[0], out[1], leave);
		assert_int_equal(write(go[1], "gg", 2), 2);
		for (k = 0; k < 2; k++) {
			assert_int_equal(read(out[0], &c, 1), 1);
			wins += c == 'W';
		}
		assert_int_equal(wins, 1);
		close(leave[1]);
		for (k = 0; k < 2; k++) {
			int st;

			assert_int_equal(waitpid(p[k], &st, 0), p[k]);
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		}
		close(go[0]);
		close(go[1]);
		close(out[0]);
		close(out[1]);
		close(leave[0]);
	}
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_corrupt_journal_refused(void **state)
{
	char *tmp = tlm_h_tmpdir(), run[TLM_JOURNAL_RUN_ID_LEN + 1], sql[256];
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run r;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	snprintf(sql, sizeof(sql), "UPDATE runs SET state = 'exploded' WHERE id = '%s'", run);
	raw_exec(tmp, sql);
	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "corrupt"));
	tlm_journal_close(j);
	/* A schema version below zero: an error, not an index before the
	 * migrations (a crash, whose core file held the API key). */
	raw_exec(tmp, "INSERT INTO schema_version VALUES (-1000000);"
		      "DELETE FROM schema_version WHERE version > 0");
	assert_int_equal(tlm_journal_open(&j, tmp, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "corrupt"));
	tlm_h_rmrf(tmp);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fenced_handle_writes_nothing),
		cmocka_unit_test(test_liveness_by_process),
		cmocka_unit_test(test_test_domain),
		cmocka_unit_test(test_claim_races),
		cmocka_unit_test(test_corrupt_journal_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
