/* The journal on PostgreSQL (docs/distributed.md), against a real server the
 * test starts (tests/harness/pg.h): the schema made once and recognised
 * after; every kind of row written and read back, hostile text included;
 * fencing between two handles; two processes racing to claim one dead run
 * (exactly one wins); a handle whose connection is cut fails every call
 * after; and the password in no message, label or row. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/pg.h"
#include "telemachy/journal.h"

#define SPEC    "apiVersion: telemachy/v1\nmetadata:\n  name: demo\n"
#define HOSTILE "it's ?1 \"quoted\" $1 '); DROP TABLE runs; --"

/* The first column of the first row of sql on uri is want. */
static void expect_row(const char *uri, const char *sql, const char *want)
{
	char *got = tlm_h_pg_query(&tlm_h_pg_group, uri, sql);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_schema(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group), *v;
	tlm_journal *j = NULL, *k = NULL;
	tlm_error err = TLM_ERROR_INIT;
	int version = 0, ok = 0;
	char detail[64];
	(void)state;

	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_journal_schema_version(j, &version, &err), 0);
	assert_int_equal(version, TLM_JOURNAL_SCHEMA_VERSION);
	/* The label names the database and never a password. */
	assert_non_null(strstr(tlm_journal_path(j), "127.0.0.1"));
	assert_null(strstr(tlm_journal_path(j), tlm_h_pg_group.password));
	/* Opening again migrates nothing: three rows, the creation at version
	 * 6, the step to 7 (the spec's own table) and to 8 (run events). */
	assert_int_equal(tlm_journal_open(&k, uri, &err), 0);
	v = tlm_h_pg_query(
		&tlm_h_pg_group, uri,
		"SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version");
	assert_string_equal(v, "6,7,8");
	free(v);
	tlm_journal_close(k);
	assert_int_equal(tlm_journal_open_readonly(&k, uri, &err), 0);
	assert_int_equal(tlm_journal_quick_check(k, &ok, detail, sizeof(detail), &err), 0);
	assert_true(ok);
	tlm_journal_close(k);
	/* A schema from the future is refused, not written. */
	free(tlm_h_pg_query(&tlm_h_pg_group, uri, "INSERT INTO schema_version VALUES (99)"));
	assert_int_equal(tlm_journal_open(&k, uri, &err), TLM_ECONFLICT);
	assert_non_null(strstr(err.message, "newer"));
	tlm_journal_close(j);
	free(uri);
}

typedef struct seen {
	int runs, resources, tasks, audits, ncounts;
	char result[128];
	tlm_journal_counts counts;
} seen;

static int on_run(const tlm_journal_run *r, void *ctx)
{
	((seen *)ctx)->runs++;
	assert_string_equal(r->workflow, HOSTILE);
	return 0;
}

static int on_resource(const tlm_journal_resource *r, void *ctx)
{
	seen *s = ctx;

	/* In the order written (the PostgreSQL table's rowid column). */
	assert_string_equal(r->name, s->resources == 0 ? "tlm-x-a-b" : "tlm-x-a-a");
	s->resources++;
	return 0;
}

static int on_task(const tlm_journal_task *t, void *ctx)
{
	seen *s = ctx;

	s->tasks++;
	assert_string_equal(t->subject, HOSTILE);
	assert_int_equal(t->status, TLM_ATTEMPT_CANCELLED);
	assert_non_null(t->ended);
	snprintf(s->result, sizeof(s->result), "%s", t->result ? t->result : "");
	return 0;
}

/* Counts the completed attempts with their id. */
static int count_tasks(const tlm_journal_task *t, void *ctx)
{
	seen *s = ctx;

	s->tasks += t->status == TLM_ATTEMPT_COMPLETED && t->remote_id != NULL &&
		    strcmp(t->remote_id, "id") == 0;
	return 0;
}

static int on_audit(const tlm_journal_audit_entry *a, void *ctx)
{
	(void)a;
	((seen *)ctx)->audits++;
	return 0;
}

static int on_counts(const tlm_journal_counts *c, void *ctx)
{
	seen *s = ctx;

	s->ncounts++;
	s->counts = *c;
	return 0;
}

static void test_rows(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group), run[TLM_JOURNAL_RUN_ID_LEN + 1], latest[40];
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run r;
	seen s;
	int yes = 1;
	(void)state;

	memset(&s, 0, sizeof(s));
	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, HOSTILE, SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-b", &err), 0);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-a", &err), 0);
	/* The same name twice is a conflict, as on SQLite. */
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-a", &err),
			 TLM_ECONFLICT);
	assert_int_equal(tlm_journal_created(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-b", "r1", &err),
			 0);
	assert_int_equal(tlm_journal_set_resource_state(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-b",
							TLM_JOURNAL_DELETED, HOSTILE, &err),
			 0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", HOSTILE, 1, NULL, TLM_ATTEMPT_PENDING, &err),
		0);
	assert_int_equal(tlm_journal_task_record(j, run, "t", HOSTILE, 1, "task-1",
						 TLM_ATTEMPT_RUNNING, &err),
			 0);
	assert_int_equal(tlm_journal_task_ended(j, run, "t", HOSTILE, 1, "task-1", "stopped", &err),
			 0);
	assert_int_equal(tlm_journal_task_result(j, run, "t", HOSTILE, 1, "{\"exitCode\":3}", &err),
			 0);
	assert_int_equal(tlm_journal_run_cancel_requested(j, run, &yes, &err), 0);
	assert_false(yes);
	assert_int_equal(tlm_journal_run_request_cancel(j, run, &err), 0);
	assert_int_equal(tlm_journal_run_cancel_requested(j, run, &yes, &err), 0);
	assert_true(yes);
	assert_int_equal(tlm_journal_audit(j, run, "test", HOSTILE, &err), 0);
	assert_int_equal(tlm_journal_run_set_state(j, run, TLM_RUN_RUNNING, &err), 0);
	assert_int_equal(tlm_journal_run_heartbeat(j, run, &err), 0);

	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
	assert_int_equal(r.state, TLM_RUN_RUNNING);
	assert_string_equal(r.spec, SPEC);
	assert_true(r.heartbeat_age_ms >= 0 && r.heartbeat_age_ms < 60000);
	assert_int_equal(r.owner_epoch, 1);
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_ALIVE);
	tlm_journal_run_clear(&r);
	if (tlm_journal_runs(j, NULL, HOSTILE, on_run, &s, &err) != 0)
		fail_msg("%s", err.message);
	assert_int_equal(tlm_journal_resources(j, run, on_resource, &s, &err), 0);
	assert_int_equal(tlm_journal_tasks(j, run, on_task, &s, &err), 0);
	assert_int_equal(tlm_journal_audits(j, run, on_audit, &s, &err), 0);
	assert_int_equal(tlm_journal_resource_counts(j, NULL, HOSTILE, on_counts, &s, &err), 0);
	assert_int_equal(s.counts.n[TLM_JOURNAL_INTENT], 1);
	assert_int_equal(s.counts.n[TLM_JOURNAL_DELETED], 1);
	assert_string_equal(s.counts.run_id, run);
	assert_int_equal(s.ncounts, 1);
	assert_int_equal(s.runs, 1);
	assert_int_equal(s.resources, 2);
	assert_int_equal(s.tasks, 1);
	assert_int_equal(s.audits, 1);
	assert_string_equal(s.result, "{\"exitCode\":3}");
	assert_int_equal(tlm_journal_latest_run(j, latest, &err), 0);
	assert_string_equal(latest, run);
	tlm_journal_close(j);
	free(uri);
}

static void test_fencing(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group), run[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal *a = NULL, *b = NULL;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	assert_int_equal(tlm_journal_open(&a, uri, &err), 0);
	assert_int_equal(tlm_journal_open(&b, uri, &err), 0);
	assert_int_equal(tlm_journal_run_new(a, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_run_claim(b, run, 0, &err), 0); /* same process */
	assert_int_equal(tlm_journal_held_epoch(b, run), 2);
	assert_int_equal(tlm_journal_intent(a, run, TLM_JOURNAL_AGENT, "tlm-x-a-a", &err),
			 TLM_EFENCED);
	assert_int_equal(tlm_journal_run_heartbeat(a, run, &err), TLM_EFENCED);
	assert_int_equal(tlm_journal_fence_check(a, run, &err), TLM_EFENCED);
	assert_int_equal(tlm_journal_intent(b, run, TLM_JOURNAL_AGENT, "tlm-x-a-a", &err), 0);
	tlm_journal_close(a);
	tlm_journal_close(b);
	free(uri);
}

static int count_event(const tlm_journal_event *ev, void *ctx)
{
	int *n = ctx;

	/* Oldest first, as written; a message the statement binds as text. */
	assert_string_equal(ev->id, *n == 0 ? "r:teardown_failed" : "r:run_failed:failed");
	assert_string_equal(ev->message, *n == 0 ? HOSTILE : "why");
	(*n)++;
	return 0;
}

/* Run events and deliveries on PostgreSQL: the same SQL as SQLite's. */
static void test_events(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group), run[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal_event a = { "r:teardown_failed", "teardown_failed", NULL, NULL,
				"teardown_failed",   HOSTILE,           0,    3,
				1764710278185ull };
	tlm_journal_event b = {
		"r:run_failed:failed", "run_ended", NULL, NULL, "failed", "why", 0, 0,
		1764710278186ull
	};
	tlm_journal *j = NULL, *k = NULL;
	tlm_error err = TLM_ERROR_INIT;
	int n = 0, had = 0;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_journal_open(&k, uri, &err), 0);
	/* Twice on one connection: the second reuses the cached INSERT, whose
	 * unused parameter must still be typed (it once was not). */
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_set_batching(j, 1, &err), 0);
	assert_int_equal(tlm_journal_event_put(j, run, &b, &err), 0);
	assert_int_equal(tlm_journal_event_put(j, run, &a, &err), 0);
	assert_int_equal(tlm_journal_event_put(j, run, &a, &err), 0); /* again: no-op */
	/* Not committed yet: another connection sees nothing. */
	assert_int_equal(tlm_journal_events(k, run, count_event, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(tlm_journal_flush(j, &err), 0);
	assert_int_equal(tlm_journal_events(k, run, count_event, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(tlm_journal_event_put(k, run, &a, &err), TLM_EFENCED);
	assert_int_equal(tlm_journal_delivery_put(k, run, b.id, "h", &err), 0);
	assert_int_equal(tlm_journal_delivery_put(k, run, b.id, "h", &err), 0);
	assert_int_equal(tlm_journal_delivery_get(j, run, b.id, "h", &had, &err), 0);
	assert_int_equal(had, 1);
	assert_int_equal(tlm_journal_delivery_get(j, run, a.id, "h", &had, &err), 0);
	assert_int_equal(had, 0);
	tlm_journal_close(k);
	tlm_journal_close(j);
	free(uri);
}

/* A run whose owner exited, and two processes claiming it at once. */
static void test_claim_race(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group), run[TLM_JOURNAL_RUN_ID_LEN + 1];
	int p[2], go[2], res[2], hold[2], wins = 0, losses = 0, i, status;
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	pid_t kids[2], maker;
	(void)state;

	assert_int_equal(pipe(p), 0);
	if ((maker = fork()) == 0) {
		tlm_journal *m = NULL;
		char id[TLM_JOURNAL_RUN_ID_LEN + 1] = "";

		if (tlm_journal_open(&m, uri, NULL) == 0 &&
		    tlm_journal_run_new(m, "demo", SPEC, id, NULL) == 0)
			(void)!write(p[1], id, sizeof(id));
		tlm_journal_close(m);
		free(uri);
		_exit(0);
	}
	assert_int_equal(read(p[0], run, sizeof(run)), (ssize_t)sizeof(run));
	waitpid(maker, NULL, 0);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(res), 0);
	assert_int_equal(pipe(hold), 0);
	for (i = 0; i < 2; i++) {
		if ((kids[i] = fork()) == 0) {
			tlm_journal *c = NULL;
			char b;
			int rc = 1;

			close(hold[1]); /* so the parent's close is our EOF */

			if (tlm_journal_open(&c, uri, NULL) == 0 && read(go[0], &b, 1) == 1)
				rc = tlm_journal_run_claim(c, run, 0, NULL) == 0 ? 0 : 3;
			/* The winner stays alive until both have tried: a claim
			 * after its exit would rightly take over a dead owner. */
			b = (char)rc;
			(void)!write(res[1], &b, 1);
			(void)!read(hold[0], &b, 1);
			tlm_journal_close(c);
			free(uri);
			_exit(rc);
		}
	}
	tlm_h_sleep_ms(300); /* both connected */
	assert_int_equal(write(go[1], "xx", 2), 2);
	for (i = 0; i < 2; i++) {
		char r;

		assert_int_equal(read(res[0], &r, 1), 1);
	}
	close(hold[1]);
	for (i = 0; i < 2; i++) {
		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
		assert_true(WIFEXITED(status));
		wins += WEXITSTATUS(status) == 0;
		losses += WEXITSTATUS(status) == 3;
	}
	assert_int_equal(wins, 1);
	assert_int_equal(losses, 1);
	/* One claim raised the epoch once. */
	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	{
		tlm_journal_run r;

		assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
		assert_int_equal(r.owner_epoch, 2);
		tlm_journal_run_clear(&r);
	}
	tlm_journal_close(j);
	close(p[0]);
	close(p[1]);
	close(go[0]);
	close(go[1]);
	close(res[0]);
	close(res[1]);
	close(hold[0]);
	free(uri);
}

/* Ends every other connection to the test's database (the journal's one):
 * what a dropped network or a restarted server does to it. */
static void cut_connection(const char *uri)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname ="
		 " 't%d' AND pid <> pg_backend_pid()",
		 tlm_h_pg_group.ndb);
	expect_row(uri, sql, "1");
}

static void test_connection_cut(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group), run[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	cut_connection(uri);
	/* Every call fails from now on: no reconnection behind the fence. */
	assert_int_equal(tlm_journal_run_heartbeat(j, run, &err), TLM_EFENCED);
	assert_non_null(strstr(err.message, "connection to the database was lost"));
	assert_int_not_equal(tlm_journal_fence_check(j, run, &err), 0);
	assert_int_not_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-a", &err), 0);
	assert_null(strstr(err.message, tlm_h_pg_group.password));
	tlm_journal_close(j);
	free(uri);
}

/* Group commit on PostgreSQL: a batch whose connection is cut before its
 * commit is lost as a whole, and the flush says so (TLM_EFENCED: the owner
 * must stop as after a crash). */
static void test_batch_lost(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group);
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	(void)state;

	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_set_batching(j, 1, &err), 0);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-a", &err), 0);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_TEAM, "tlm-x-t-t", &err), 0);
	cut_connection(uri);
	assert_int_equal(tlm_journal_flush(j, &err), TLM_EFENCED);
	assert_non_null(strstr(err.message, "never committed"));
	expect_row(uri, "SELECT count(*) FROM resources", "0");
	tlm_journal_close(j);
	free(uri);
}

/* The same with the batch's writes queued in the pipeline (db_pg.c), sent
 * to the server (push) or still in libpq's buffer: the drain meets the cut
 * connection, the flush loses the batch, and every write after fails at
 * once instead of waiting on the dead connection. */
static void lost_queued(int push)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group);
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	int64_t t0;

	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_set_batching(j, 1, &err), 0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "a", 1, NULL, TLM_ATTEMPT_PENDING, &err), 0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "b", 1, NULL, TLM_ATTEMPT_PENDING, &err), 0);
	if (push)
		tlm_journal_push(j);
	cut_connection(uri);
	t0 = tlm_h_now_ms();
	assert_int_equal(tlm_journal_flush(j, &err), TLM_EFENCED);
	assert_non_null(strstr(err.message, "never committed"));
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "c", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		TLM_EFENCED);
	assert_non_null(strstr(err.message, "connection to the database was lost"));
	assert_int_equal(tlm_journal_flush(j, &err), 0); /* nothing was held */
	assert_true(tlm_h_now_ms() - t0 < 5000);
	expect_row(uri, "SELECT count(*) FROM tasks", "0");
	tlm_journal_close(j);
	free(uri);
}

static void test_batch_lost_queued(void **state)
{
	(void)state;
	lost_queued(0);
	lost_queued(1);
}

/* A write that fails in the database inside a batch (PostgreSQL aborts the
 * whole transaction on an error) is undone alone: the writes before and
 * after it are committed by the flush. */
static void test_batch_failed_write(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group);
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	(void)state;

	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_set_batching(j, 1, &err), 0);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-a", &err), 0);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-a", &err),
			 TLM_ECONFLICT);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_TEAM, "tlm-x-t-t", &err), 0);
	assert_int_equal(tlm_journal_created(j, run, TLM_JOURNAL_TEAM, "tlm-x-t-t", "id-t", &err),
			 0);
	assert_int_equal(tlm_journal_flush(j, &err), 0);
	expect_row(uri, "SELECT count(*) FROM resources", "2");
	expect_row(uri, "SELECT count(*) FROM resources WHERE remote_id = 'id-t'", "1");
	tlm_journal_close(j);
	free(uri);
}

/* A write of one statement takes no savepoint in a batch (batch.c): one
 * that changes nothing (a row never journaled) is no failure to the
 * database and the batch goes on; one that fails in the database loses
 * the batch, as a cut connection does. */
static void test_batch_one_statement(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group);
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	uint64_t m;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	free(tlm_h_pg_query(&tlm_h_pg_group, uri,
			    "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS"
			    " $$ BEGIN RAISE EXCEPTION 'poisoned'; END $$;"
			    "CREATE TRIGGER poison BEFORE INSERT ON tasks FOR EACH ROW"
			    " WHEN (NEW.subject = 'poison') EXECUTE FUNCTION poison()"));
	assert_int_equal(tlm_journal_set_batching(j, 1, &err), 0);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-a", &err), 0);
	assert_int_equal(
		tlm_journal_created(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-none", "id-0", &err),
		TLM_ENOTFOUND);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "ok", 1, NULL, TLM_ATTEMPT_PENDING, &err), 0);
	assert_int_equal(tlm_journal_flush(j, &err), 0);
	expect_row(uri, "SELECT count(*) FROM resources", "1");
	m = tlm_journal_mark(j);
	assert_true(tlm_journal_durable(j, m));
	/* The failed statement takes the batch with it.  A task row is queued
	 * in the pipeline (db_pg.c), so its failure is learnt by the next call
	 * that waits for the database: here a write that reads its count of
	 * changes. */
	assert_int_equal(tlm_journal_created(j, run, TLM_JOURNAL_AGENT, "tlm-x-a-a", "id-a", &err),
			 0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "poison", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "after", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		0);
	assert_int_equal(
		tlm_journal_created(j, run, TLM_JOURNAL_TEAM, "tlm-x-t-none", "id-t", &err),
		TLM_EFENCED);
	assert_non_null(strstr(err.message, "poisoned"));
	assert_non_null(strstr(err.message, "never committed"));
	/* Until the flush reports it, nothing counts as durable: not even
	 * what the last commit made so (the gate commits, and learns). */
	assert_false(tlm_journal_durable(j, m));
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "after2", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		TLM_EFENCED);
	assert_int_equal(tlm_journal_flush(j, &err), TLM_EFENCED);
	assert_non_null(strstr(err.message, "never committed"));
	/* Learnt by the commit itself: the flush fails and commits nothing. */
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "poison", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		0);
	assert_int_equal(tlm_journal_flush(j, &err), TLM_EFENCED);
	assert_non_null(strstr(err.message, "poisoned"));
	expect_row(uri, "SELECT count(*) FROM resources WHERE remote_id IS NOT NULL", "0");
	expect_row(uri, "SELECT count(*) FROM tasks", "1");
	/* The connection was rolled back and left pipeline mode: the next
	 * batch commits. */
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "later", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		0);
	assert_int_equal(tlm_journal_flush(j, &err), 0);
	expect_row(uri, "SELECT count(*) FROM tasks", "2");
	/* Unbatched, a write is its own transaction and fails at once. */
	assert_int_equal(tlm_journal_set_batching(j, 0, &err), 0);
	assert_int_not_equal(
		tlm_journal_task_record(j, run, "t", "poison", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		0);
	assert_non_null(strstr(err.message, "poisoned"));
	assert_int_equal(tlm_journal_task_record(j, run, "t", "unbatched", 1, NULL,
						 TLM_ATTEMPT_PENDING, &err),
			 0);
	tlm_journal_close(j);
	free(uri);
}

/* Queued writes (db_pg.c) land with their batch's commit, in order, past
 * the number the pipeline holds before reading results back; a result
 * queued in a batch updates its row; reads in the middle of a batch see
 * the queued writes before them. */
static void test_batch_queued(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group), subject[32];
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	seen s;
	int i;
	(void)state;

	memset(&s, 0, sizeof(s));
	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_set_batching(j, 1, &err), 0);
	for (i = 0; i < 300; i++) {
		snprintf(subject, sizeof(subject), "s%03d", i);
		assert_int_equal(tlm_journal_task_record(j, run, "t", subject, 1, NULL,
							 TLM_ATTEMPT_PENDING, &err),
				 0);
		assert_int_equal(tlm_journal_task_record(j, run, "t", subject, 1, "id",
							 TLM_ATTEMPT_COMPLETED, &err),
				 0);
	}
	assert_int_equal(tlm_journal_task_result(j, run, "t", "s007", 1, "{\"result\":7}", &err),
			 0);
	/* Nothing is committed yet, and a read of this connection sees it all. */
	expect_row(uri, "SELECT count(*) FROM tasks", "0");
	assert_int_equal(tlm_journal_tasks(j, run, count_tasks, &s, &err), 0);
	assert_int_equal(s.tasks, 300);
	assert_int_equal(tlm_journal_flush(j, &err), 0);
	expect_row(uri,
		   "SELECT count(*) FROM tasks WHERE status = 'completed' AND remote_id = 'id'",
		   "300");
	expect_row(uri, "SELECT result FROM tasks WHERE subject = 's007'", "{\"result\":7}");
	tlm_journal_close(j);
	free(uri);
}

/* The last statement the journal's connection ran, as the server saw it. */
static char *last_statement(const char *uri)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT left(query, 20) FROM pg_stat_activity WHERE datname = 't%d'"
		 " AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
		 tlm_h_pg_group.ndb);
	return tlm_h_pg_query(&tlm_h_pg_group, uri, sql);
}

/* tlm_journal_push sends queued writes without waiting: the server runs
 * them before the commit asks for their results. */
static void test_batch_push(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group), *n = NULL;
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	int i;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_set_batching(j, 1, &err), 0);
	/* A first batch prepares the statement on the server. */
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "a", 1, NULL, TLM_ATTEMPT_PENDING, &err), 0);
	assert_int_equal(tlm_journal_flush(j, &err), 0);
	tlm_journal_push(j); /* no batch: nothing to send */
	/* The next opens with the fence check; its write waits in libpq. */
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "b", 1, NULL, TLM_ATTEMPT_PENDING, &err), 0);
	n = last_statement(uri);
	assert_string_equal(n, "SELECT owner_epoch, ");
	for (i = 0; i < 200; i++) {
		free(n);
		if (i == 0)
			tlm_journal_push(j);
		n = last_statement(uri);
		if (strcmp(n, "INSERT INTO tasks (r") == 0)
			break;
		usleep(10 * 1000);
	}
	assert_string_equal(n, "INSERT INTO tasks (r");
	free(n);
	assert_int_equal(tlm_journal_flush(j, &err), 0);
	expect_row(uri, "SELECT count(*) FROM tasks", "2");
	tlm_journal_close(j);
	free(uri);
}

static void test_password_never_shown(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group), with[256],
	     *saved = strdup(getenv("PGPASSWORD"));
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	/* A password in the URI works and stays out of the label. */
	snprintf(with, sizeof(with), "postgresql://telemachy:%s@127.0.0.1:%u/t%d",
		 tlm_h_pg_group.password, tlm_h_pg_group.port, tlm_h_pg_group.ndb);
	unsetenv("PGPASSWORD");
	assert_int_equal(tlm_journal_open(&j, with, &err), 0);
	assert_null(strstr(tlm_journal_path(j), tlm_h_pg_group.password));
	tlm_journal_close(j);
	/* A wrong one fails with libpq's words, and ours are not in them. */
	setenv("PGPASSWORD", "not-the-password-x", 1);
	assert_int_equal(tlm_journal_open(&j, uri, &err), TLM_ERROR);
	assert_non_null(strstr(err.message, "PostgreSQL"));
	assert_null(strstr(err.message, "not-the-password-x"));
	setenv("PGPASSWORD", saved, 1);
	/* A malformed location is refused before any connection. */
	assert_int_equal(tlm_journal_open(&j, "postgres:nohost", &err), TLM_EINVALID);
	free(saved);
	free(uri);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_fencing),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_claim_race),
		cmocka_unit_test(test_connection_cut),
		cmocka_unit_test(test_batch_lost),
		cmocka_unit_test(test_batch_lost_queued),
		cmocka_unit_test(test_batch_failed_write),
		cmocka_unit_test(test_batch_one_statement),
		cmocka_unit_test(test_batch_queued),
		cmocka_unit_test(test_batch_push),
		cmocka_unit_test(test_password_never_shown),
	};

	return cmocka_run_group_tests(tests, tlm_h_pg_group_setup, tlm_h_pg_group_teardown);
}
