/* One owner per run (docs/internals/engine.md, "Ownership and fencing"),
 * through the real binary against the real `telemachy serve`:
 *
 * - a create held 28 s by the server (a request timeout of 15 s, so its
 *   outcome is unknown and it is looked up after a settle wait): all along,
 *   seen from another host (TLM_TEST_DOMAIN), the owner's heartbeat stays
 *   fresh, `list` says alive, `resume` and `teardown` are refused; the run
 *   completes with nothing left;
 * - `cancel` during such a stall is seen within a second and ends the run;
 * - two `resume`s racing for one dead run, 100 times: exactly one proceeds;
 * - an owner stopped with SIGSTOP: on its host it is alive (plain `resume`
 *   refused), `resume --force` takes the run and finishes it; continued
 *   (SIGCONT), the old owner exits 5 at once and sends no request (the
 *   server's request log), with 0 resources left and no name created twice;
 * - the same owner seen from another host once its heartbeat is stale: a
 *   plain `resume` takes it over. */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define CMD_MS 30000

static tlm_h_serve srv;
static tlm_h_run run;
static char *dir;

static const char two_agents[] = "apiVersion: telemachy/v1\n"
				 "metadata: {name: two-agents}\n"
				 "agents:\n"
				 "  - {name: a1, program: none}\n"
				 "  - {name: a2, program: none}\n"
				 "teams:\n"
				 "  - name: t\n"
				 "    agents: [a1, a2]\n"
				 "    tasks:\n"
				 "      - {subject: s, description: d, assign_to: a2}\n";

/* Three tasks one after the other, each a second of real work. */
static const char slow_chain[] = "apiVersion: telemachy/v1\n"
				 "metadata: {name: slow-chain}\n"
				 "agents:\n"
				 "  - name: w\n"
				 "    program: /bin/sh\n"
				 "    args: [-c, 'sleep 1']\n"
				 "teams:\n"
				 "  - name: t\n"
				 "    agents: [w]\n"
				 "    tasks:\n"
				 "      - {subject: s1, description: d}\n"
				 "      - {subject: s2, description: d, blocked_by: [s1]}\n"
				 "      - {subject: s3, description: d, blocked_by: [s2]}\n";

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
	if (run.pid > 0)
		kill(run.pid, SIGKILL);
	tlm_h_run_clear(&run);
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

static const char *state_of(const tlm_h_run *r)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/state", r->dir);
	return path;
}

/* `telemachy SUB --state-dir STATE ARGS...` against srv, as seen from
 * domain (NULL: this host).  Bounded (then a test failure). */
static void cmd_as(const char *domain, const char *state, const char *sub, const char *const *args,
		   tlm_h_cmd *c)
{
	char urlenv[200], domenv[128];
	const char *env[3] = { urlenv, NULL, NULL }, *argv[32];
	size_t n = 0, i;

	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", srv.url);
	if (domain != NULL) {
		snprintf(domenv, sizeof(domenv), "TLM_TEST_DOMAIN=%s", domain);
		env[1] = domenv;
	}
	argv[n++] = sub;
	argv[n++] = "--state-dir";
	argv[n++] = state;
	for (i = 0; args != NULL && args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	tlm_h_cmd_run(c, dir, env, argv, CMD_MS);
	if (c->exit_code < 0)
		fail_msg("telemachy %s did not end in time\nstdout:\n%s\nstderr:\n%s", sub, c->out,
			 c->err);
}

/* The run id from "run ID of workflow" on r's stderr, once it is there. */
static void run_id_of(tlm_h_run *r, char *id, size_t size)
{
	char path[4096], *err, *p;
	size_t n = 0;

	if (tlm_h_run_wait_for(r, "] run ", 10000) != 0)
		fail_msg("no run id on stderr");
	snprintf(path, sizeof(path), "%s/stderr", r->dir);
	err = tlm_h_slurp(path);
	p = strstr(err, "] run ") + strlen("] run ");
	while (p[n] != '\0' && p[n] != ' ' && n + 1 < size) {
		id[n] = p[n];
		n++;
	}
	id[n] = '\0';
	free(err);
}

/* The run's owner as `list --output json` from domain shows it. */
static void owner_seen(const char *domain, const char *run_id, char *owner, size_t size,
		       json_int_t *age)
{
	const char *args[] = { "--output", "json", NULL };
	json_t *runs, *r;
	tlm_h_cmd c;
	size_t i;

	cmd_as(domain, state_of(&run), "list", args, &c);
	runs = json_object_get(c.json, "runs");
	owner[0] = '\0';
	json_array_foreach(runs, i, r)
	{
		if (strcmp(tlm_h_str(r, "id"), run_id) == 0) {
			json_t *o = json_object_get(r, "owner");

			snprintf(owner, size, "%s", tlm_h_str(o, "state"));
			*age = tlm_h_int(o, "heartbeat_age_ms");
		}
	}
	tlm_h_cmd_free(&c);
	if (owner[0] == '\0')
		fail_msg("run %s not listed", run_id);
}

static void expect_refused(const char *domain, const char *sub, const char *run_id)
{
	const char *args[] = { run_id, "--request-timeout", "15", NULL };
	tlm_h_cmd c;

	cmd_as(domain, state_of(&run), sub, args, &c);
	if (c.exit_code != 2 || strstr(c.err, "is owned by") == NULL)
		fail_msg("telemachy %s %s: exit %d, want 2 (owner alive)\n%s", sub, run_id,
			 c.exit_code, c.err);
	tlm_h_cmd_free(&c);
}

static void test_stalled_create_keeps_the_lease(void **state)
{
	const char *faults[] = { "--fault", "delay:route=POST /v1/agents,nth=2,ms=28000", NULL };
	const char *args[] = { "--max-concurrent", "1", "--request-timeout", "15", NULL };
	char *file = tlm_h_write_file(dir, "two-agents.yaml", two_agents), run_id[16], owner[16];
	int64_t t0;
	json_int_t age = -1;
	int checks = 0;
	(void)state;

	tlm_h_serve_start(&srv, faults);
	t0 = tlm_h_now_ms();
	tlm_h_run_on(&run, &srv, file, NULL, args);
	run_id_of(&run, run_id, sizeof(run_id));
	/* From 17 s (past the 15 s lease, had the loop blocked at the
	 * create's timeout) to 27 s (before the held create lands). */
	while (tlm_h_now_ms() - t0 < 17000)
		tlm_h_sleep_ms(200);
	while (tlm_h_now_ms() - t0 < 27000) {
		owner_seen("elsewhere", run_id, owner, sizeof(owner), &age);
		if (strcmp(owner, "alive") != 0 || age > 8000)
			fail_msg(
				"at %.1f s the owner looked %s from another host (heartbeat %lld ms "
				"old)",
				(double)(tlm_h_now_ms() - t0) / 1000.0, owner, (long long)age);
		if (checks++ == 0) {
			expect_refused("elsewhere", "resume", run_id);
			expect_refused("elsewhere", "teardown", run_id);
			expect_refused(NULL, "resume", run_id);
		}
		tlm_h_sleep_ms(1000);
	}
	assert_int_equal(tlm_h_run_finish(&run, 60000), 0);
	tlm_h_assert_all_completed(&run);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

static void test_cancel_during_a_stall(void **state)
{
	const char *faults[] = { "--fault", "delay:route=POST /v1/agents,nth=2,ms=8000", NULL };
	const char *args[] = { "--max-concurrent", "1", NULL };
	char *file = tlm_h_write_file(dir, "two-agents.yaml", two_agents), run_id[16];
	const char *cargs[] = { run_id, "--wait", "60", NULL };
	tlm_h_cmd c;
	pid_t canceller;
	int64_t t;
	(void)state;

	tlm_h_serve_start(&srv, faults);
	tlm_h_run_on(&run, &srv, file, NULL, args);
	run_id_of(&run, run_id, sizeof(run_id));
	if (tlm_h_run_wait_for(&run, "agent a1 started", 10000) != 0)
		fail_msg("the first agent never started");
	tlm_h_sleep_ms(500); /* the second create is now held by the server */
	t = tlm_h_now_ms();
	canceller = fork();
	assert_true(canceller >= 0);
	if (canceller == 0) {
		cmd_as(NULL, state_of(&run), "cancel", cargs, &c);
		_exit(c.exit_code);
	}
	if (tlm_h_run_wait_for(&run, "cancelled by `telemachy cancel`", 1500) != 0)
		fail_msg("the owner did not see the cancel within 1.5 s (stalled create)");
	print_message("cancel seen after %lld ms\n", (long long)(tlm_h_now_ms() - t));
	{
		int st;

		assert_int_equal(waitpid(canceller, &st, 0), canceller);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(tlm_h_run_finish(&run, 60000), 130);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* A journaled run whose owner died right after journaling it. */
static void dead_run(const char *state, char *run_id, size_t size)
{
	const char *args[] = { "run", "--state-dir", state,
			       TLM_SOURCE_DIR "/examples/hello-world.yaml", NULL };
	const char *env[3];
	char urlenv[200];
	const char *largs[] = { "-q", NULL };
	tlm_h_cmd c;

	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", srv.url);
	env[0] = urlenv;
	env[1] = "TLM_CRASH_ON=journal run_new";
	env[2] = NULL;
	tlm_h_cmd_run(&c, dir, env, args, CMD_MS);
	if (c.exit_code != 128 + SIGKILL)
		fail_msg("the run did not die at its first journal write: exit %d\n%s", c.exit_code,
			 c.err);
	tlm_h_cmd_free(&c);
	cmd_as(NULL, state, "list", largs, &c);
	snprintf(run_id, size, "%.8s", c.out);
	tlm_h_cmd_free(&c);
}

static void test_resume_races(void **state)
{
	char statedir[4096];
	int i, proceeded_total = 0;
	(void)state;

	tlm_h_serve_start(&srv, NULL);
	snprintf(statedir, sizeof(statedir), "%s/races", dir);
	for (i = 0; i < 100; i++) {
		char run_id[16], outs[2][4096], errs[2][4096];
		pid_t p[2];
		int k, proceeded = 0, refused = 0;

		dead_run(statedir, run_id, sizeof(run_id));
		for (k = 0; k < 2; k++) {
			snprintf(outs[k], sizeof(outs[k]), "%s/race%d.out", dir, k);
			snprintf(errs[k], sizeof(errs[k]), "%s/race%d.err", dir, k);
			p[k] = fork();
			assert_true(p[k] >= 0);
			if (p[k] == 0) {
				const char *args[] = { run_id, "-q", NULL };
				tlm_h_cmd c;
				FILE *f;

				cmd_as(NULL, statedir, "resume", args, &c);
				f = fopen(errs[k], "w");
				if (f != NULL) {
					fputs(c.err, f);
					fclose(f);
				}
				_exit(c.exit_code);
			}
		}
		for (k = 0; k < 2; k++) {
			int st;
			char *err;

			assert_int_equal(waitpid(p[k], &st, 0), p[k]);
			assert_true(WIFEXITED(st));
			err = tlm_h_slurp(errs[k]);
			if (WEXITSTATUS(st) == 0)
				proceeded++;
			else if (WEXITSTATUS(st) == 2 && (strstr(err, "is owned by") != NULL ||
							  strstr(err, "completed") != NULL))
				refused++;
			else
				fail_msg("race %d: resume exited %d:\n%s", i, WEXITSTATUS(st), err);
			free(err);
		}
		if (proceeded != 1 || refused != 1)
			fail_msg("race %d: %d proceeded, %d refused", i, proceeded, refused);
		proceeded_total += proceeded;
	}
	assert_int_equal(proceeded_total, 100);
	tlm_h_assert_no_tlm(&srv);
}

/* ---- a stopped owner -------------------------------------------------- */

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Requests of run_id's owner `epoch` in the server's log that arrived at or
 * after since_ms (epoch 0: any owner of the run); the count of all of the
 * run's requests in *all. */
static long requests_of(const char *log, const char *run_id, long long epoch, int64_t since_ms,
			long *all)
{
	char *text = tlm_h_slurp(log), *line, *save = NULL, want[64];
	long n = 0;

	snprintf(want, sizeof(want), "%s/%lld", run_id, epoch);
	*all = 0;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, NULL);
		const char *owner = json_string_value(json_object_get(j, "owner"));

		if (j == NULL)
			fail_msg("request log: a line that is not JSON: %s", line);
		if (owner != NULL && strncmp(owner, run_id, strlen(run_id)) == 0) {
			(*all)++;
			if ((epoch == 0 || strcmp(owner, want) == 0) &&
			    json_integer_value(json_object_get(j, "ms")) >= since_ms)
				n++;
		}
		json_decref(j);
	}
	free(text);
	return n;
}

/* Waits until the journal holds the first task's remote id: the batch that
 * wrote it is committed, and the owner, waiting for that slow task, holds
 * no transaction (a process stopped inside one would hold the journal's
 * write lock, docs/internals/engine.md). */
static void wait_journaled(const char *state, const char *run_id)
{
	const char *sargs[] = { run_id, "--output", "json", NULL };
	json_t *t;
	size_t i;
	int k, found = 0;
	tlm_h_cmd c;

	for (k = 0; k < 100 && !found; k++) {
		cmd_as(NULL, state, "status", sargs, &c);
		json_array_foreach(json_object_get(c.json, "tasks"), i, t) found |=
			json_is_string(json_object_get(t, "remote_id"));
		tlm_h_cmd_free(&c);
		if (!found)
			tlm_h_sleep_ms(50);
	}
	if (!found)
		fail_msg("the journal never held the first task's id");
}

/* 1 when another process holds the write lock of the SQLite journal in
 * state: a write transaction cannot begin at once. */
static int journal_locked(const char *state)
{
	char path[4096];
	sqlite3 *db = NULL;
	int rc;

	if (snprintf(path, sizeof(path), "%s/journal.db", state) >= (int)sizeof(path))
		fail_msg("state directory path too long");
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 0);
	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	return rc == SQLITE_BUSY;
}

/* 1 once pid is stopped (state T in /proc), within a second. */
static int stopped(pid_t pid)
{
	char path[64], buf[512], *p;
	int k;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (k = 0; k < 100; k++) {
		FILE *f = fopen(path, "r");
		size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f != NULL)
			fclose(f);
		buf[n] = '\0';
		if ((p = strrchr(buf, ')')) != NULL && p[1] == ' ' && p[2] == 'T')
			return 1;
		tlm_h_sleep_ms(10);
	}
	return 0;
}

/* SIGSTOP that lands between two journal transactions.  One that lands
 * inside a turn's batch holds the journal's write lock until the process
 * is continued (docs/internals/engine.md, "A stopped owner and the write
 * lock"): a case of its own, not the one these tests are about.  So a stop
 * inside a transaction is undone and tried again (bounded). */
static void stop_between_batches(pid_t pid, const char *state)
{
	int k;

	for (k = 0; k < 50; k++) {
		assert_int_equal(kill(pid, SIGSTOP), 0);
		if (!stopped(pid))
			fail_msg("the owner did not stop");
		if (!journal_locked(state))
			return;
		assert_int_equal(kill(pid, SIGCONT), 0);
		tlm_h_sleep_ms(20);
	}
	fail_msg("the owner held the journal's write lock at each of 50 stops");
}

/* The old owner is stopped once its first task runs; the new owner (from
 * new_domain; NULL: this host) takes the run with the given arguments; the
 * old one is continued and must stop at once, exit 5, and send nothing. */
static void stopped_owner(const char *old_domain, const char *new_domain, int force,
			  long stale_wait_ms)
{
	char *file = tlm_h_write_file(dir, "slow.yaml", slow_chain), log[4096], run_id[16],
	     domenv[128];
	const char *faults[] = { "--request-log", log, NULL };
	const char *env[] = { domenv, NULL };
	const char *plain[] = { run_id, NULL }, *forced[] = { run_id, "--force", NULL };
	int64_t cont_ms;
	long all, after, epoch1;
	tlm_h_cmd c;

	snprintf(log, sizeof(log), "%s/requests.jsonl", dir);
	snprintf(domenv, sizeof(domenv), "TLM_TEST_DOMAIN=%s", old_domain ? old_domain : "");
	tlm_h_serve_start(&srv, faults);
	tlm_h_run_on(&run, &srv, file, old_domain != NULL ? env : NULL, NULL);
	run_id_of(&run, run_id, sizeof(run_id));
	if (tlm_h_run_wait_for(&run, "task t/s1 submitted", 10000) != 0)
		fail_msg("the first task was never submitted");
	wait_journaled(state_of(&run), run_id);
	stop_between_batches(run.pid, state_of(&run));
	if (stale_wait_ms > 0)
		tlm_h_sleep_ms(stale_wait_ms); /* the lease runs out */
	else {
		/* On its host a stopped owner is alive: refused. */
		cmd_as(new_domain, state_of(&run), "resume", plain, &c);
		if (c.exit_code != 2 || strstr(c.err, "is owned by") == NULL)
			fail_msg("resume of a stopped owner's run: exit %d\n%s", c.exit_code,
				 c.err);
		tlm_h_cmd_free(&c);
	}
	cmd_as(new_domain, state_of(&run), "resume", force ? forced : plain, &c);
	if (c.exit_code != 0)
		fail_msg("the takeover exited %d\n%s", c.exit_code, c.err);
	if (force && strstr(c.err, "--force: taking run") == NULL)
		fail_msg("--force said nothing of what it risks:\n%s", c.err);
	tlm_h_cmd_free(&c);
	cont_ms = wall_ms();
	assert_int_equal(kill(run.pid, SIGCONT), 0);
	tlm_h_run_wait(&run, 10000);
	if (run.exit_code != 5 || strstr(run.err, "was taken over by") == NULL)
		fail_msg("the old owner exited %d after SIGCONT:\n%s", run.exit_code, run.err);
	/* Not one request of the old owner (epoch 1) after it was continued;
	 * the new one (epoch 2) did the rest. */
	epoch1 = requests_of(log, run_id, 1, 0, &all);
	after = requests_of(log, run_id, 1, cont_ms, &all);
	if (after != 0)
		fail_msg("the old owner sent %ld request(s) after SIGCONT", after);
	assert_true(epoch1 > 0);
	assert_true(requests_of(log, run_id, 2, 0, &all) > 0);
	{
		const char *sargs[] = { run_id, "--output", "json", NULL };

		cmd_as(NULL, state_of(&run), "status", sargs, &c);
		assert_string_equal(tlm_h_str(json_object_get(c.json, "run"), "state"),
				    "completed");
		assert_int_equal(tlm_h_int(json_object_get(json_object_get(c.json, "run"), "owner"),
					   "epoch"),
				 2);
		tlm_h_cmd_free(&c);
	}
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

static void test_stopped_owner_forced(void **state)
{
	(void)state;
	stopped_owner(NULL, NULL, 1, 0);
}

static void test_stopped_owner_elsewhere(void **state)
{
	(void)state;
	/* Another host cannot see the process: once the heartbeat is older
	 * than the lease (15 s), the owner is dead and a plain resume takes
	 * the run. */
	stopped_owner("host-a", "host-b", 0, 16500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stalled_create_keeps_the_lease, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel_during_a_stall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_races, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopped_owner_forced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopped_owner_elsewhere, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
