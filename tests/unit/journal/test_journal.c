/* The journal: files and modes, schema version, run ids, the write-ahead
 * rows and their states, group commit (all or nothing), durability across a
 * crashed process, listing per run, task attempts, and clear errors. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "telemachy/journal.h"

#define SPEC "apiVersion: telemachy/v1\nmetadata:\n  name: demo\n"

struct collected {
	int n;
	char name[16][64];
	char remote[16][64];
	tlm_journal_state state[16];
	tlm_journal_kind kind[16];
	char last_error[16][64];
};

static int collect(const tlm_journal_resource *r, void *ctx)
{
	struct collected *c = ctx;

	if (c->n >= 16)
		return -100;
	snprintf(c->name[c->n], 64, "%s", r->name);
	snprintf(c->remote[c->n], 64, "%s", r->remote_id ? r->remote_id : "");
	snprintf(c->last_error[c->n], 64, "%s", r->last_error ? r->last_error : "");
	c->state[c->n] = r->state;
	c->kind[c->n] = r->kind;
	c->n++;
	return 0;
}

static char *subdir(const char *base, const char *rel)
{
	size_t n = strlen(base) + strlen(rel) + 2;
	char *p = malloc(n);

	assert_non_null(p);
	snprintf(p, n, "%s/%s", base, rel);
	return p;
}

static void test_open_modes_and_schema(void **state)
{
	char *tmp = tlm_h_tmpdir(), *dir = subdir(tmp, "a/b/state"),
	     *db = subdir(dir, "journal.db");
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	struct stat st;
	int version = 0;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, dir, &err), 0);
	assert_string_equal(tlm_journal_path(j), db);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(db, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(tlm_journal_schema_version(j, &version, &err), 0);
	assert_int_equal(version, TLM_JOURNAL_SCHEMA_VERSION);
	assert_int_equal(version, 8);
	/* The -wal file inherits the database's mode: no window where the
	 * journal's content is readable by others. */
	{
		char *wal = subdir(dir, "journal.db-wal");
		char run[TLM_JOURNAL_RUN_ID_LEN + 1];

		assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
		assert_int_equal(stat(wal, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		free(wal);
	}
	/* WAL is recorded in the file itself; another connection sees it. */
	{
		sqlite3 *raw = NULL;
		sqlite3_stmt *q = NULL;

		assert_int_equal(
			sqlite3_open_v2(tlm_journal_path(j), &raw, SQLITE_OPEN_READONLY, NULL),
			SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &q, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
		sqlite3_finalize(q);
		sqlite3_close(raw);
	}
	tlm_journal_close(j);
	/* Reopening does not migrate twice. */
	assert_int_equal(tlm_journal_open(&j, dir, &err), 0);
	assert_int_equal(tlm_journal_schema_version(j, &version, &err), 0);
	assert_int_equal(version, 8);
	tlm_journal_close(j);
	tlm_journal_close(NULL);
	free(db);
	free(dir);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_default_dir(void **state)
{
	char *dir = NULL, *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	(void)state;

	setenv("TELEMACHY_STATE_DIR", "/x/state", 1);
	assert_int_equal(tlm_journal_default_dir(&dir, NULL), 0);
	assert_string_equal(dir, "/x/state");
	free(dir);
	unsetenv("TELEMACHY_STATE_DIR");
	setenv("XDG_STATE_HOME", "/y", 1);
	assert_int_equal(tlm_journal_default_dir(&dir, NULL), 0);
	assert_string_equal(dir, "/y/telemachy");
	free(dir);
	setenv("XDG_STATE_HOME", "relative", 1); /* invalid per XDG: ignored */
	setenv("HOME", "/home/z", 1);
	assert_int_equal(tlm_journal_default_dir(&dir, NULL), 0);
	assert_string_equal(dir, "/home/z/.local/state/telemachy");
	free(dir);
	unsetenv("XDG_STATE_HOME");
	if (home != NULL)
		setenv("HOME", home, 1);
	free(home);
}

static void test_run_ids(void **state)
{
	char *tmp = tlm_h_tmpdir();
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char ids[50][TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal_run r;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, ids[i], &err), 0);
		assert_int_equal(strlen(ids[i]), 8);
		assert_int_equal(strspn(ids[i], "abcdefghijklmnopqrstuvwxyz0123456789"), 8);
		for (int k = 0; k < i; k++)
			assert_string_not_equal(ids[i], ids[k]);
	}
	assert_int_equal(tlm_journal_run_get(j, ids[0], &r, &err), 0);
	assert_string_equal(r.workflow, "demo");
	assert_string_equal(r.spec, SPEC);
	assert_int_equal(r.state, TLM_RUN_PENDING);
	assert_int_equal(strlen(r.spec_hash), 64);
	assert_int_equal(r.owner_pid, (long)getpid());
	assert_non_null(r.heartbeat_at);
	tlm_journal_run_clear(&r);
	assert_int_equal(tlm_journal_run_set_state(j, ids[0], TLM_RUN_PROVISIONING, &err), 0);
	assert_int_equal(tlm_journal_run_heartbeat(j, ids[0], &err), 0);
	assert_int_equal(tlm_journal_run_get(j, ids[0], &r, &err), 0);
	assert_int_equal(r.state, TLM_RUN_PROVISIONING);
	tlm_journal_run_clear(&r);
	assert_int_equal(tlm_journal_run_set_state(j, ids[0], (tlm_run_state)99, &err),
			 TLM_EINVALID);
	assert_int_equal(tlm_journal_run_set_state(j, "zzzzzzzz", TLM_RUN_FAILED, &err),
			 TLM_ENOTFOUND);
	assert_non_null(strstr(err.message, tlm_journal_path(j)));
	assert_int_equal(tlm_journal_run_get(j, "zzzzzzzz", &r, &err), TLM_ENOTFOUND);
	assert_int_equal(tlm_journal_run_set_state(j, "BAD", TLM_RUN_FAILED, &err), TLM_EINVALID);
	tlm_journal_close(j);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_resource_round_trip(void **state)
{
	char *tmp = tlm_h_tmpdir();
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1], name[64];
	struct collected c = { 0 };
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	snprintf(name, sizeof(name), "tlm-%s-writer", run);
	/* created before intent breaks the write-ahead order: refused. */
	assert_int_equal(tlm_journal_created(j, run, TLM_JOURNAL_AGENT, name, "id-1", &err),
			 TLM_ENOTFOUND);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, name, &err), 0);
	assert_int_equal(tlm_journal_resources(j, run, collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.state[0], TLM_JOURNAL_INTENT);
	assert_string_equal(c.remote[0], "");
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, name, &err), TLM_ECONFLICT);
	assert_int_equal(tlm_journal_created(j, run, TLM_JOURNAL_AGENT, name, "id-1", &err), 0);
	assert_int_equal(tlm_journal_set_resource_state(j, run, TLM_JOURNAL_AGENT, name,
							TLM_JOURNAL_STARTED, NULL, &err),
			 0);
	assert_int_equal(tlm_journal_set_resource_state(j, run, TLM_JOURNAL_AGENT, name,
							TLM_JOURNAL_DELETING, "HTTP 503", &err),
			 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(tlm_journal_resources(j, run, collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.kind[0], TLM_JOURNAL_AGENT);
	assert_string_equal(c.name[0], name);
	assert_string_equal(c.remote[0], "id-1");
	assert_int_equal(c.state[0], TLM_JOURNAL_DELETING);
	assert_string_equal(c.last_error[0], "HTTP 503");
	assert_int_equal(tlm_journal_set_resource_state(j, run, TLM_JOURNAL_AGENT, name,
							TLM_JOURNAL_DELETED, NULL, &err),
			 0);
	/* Same name, other kind: a different resource. */
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_TEAM, name, &err), 0);
	/* Unknown run, bad state, bad name. */
	assert_int_equal(tlm_journal_intent(j, "zzzzzzzz", TLM_JOURNAL_AGENT, "x", &err),
			 TLM_ENOTFOUND);
	assert_non_null(strstr(err.message, "zzzzzzzz"));
	assert_int_equal(tlm_journal_set_resource_state(j, run, TLM_JOURNAL_AGENT, name,
							(tlm_journal_state)42, NULL, &err),
			 TLM_EINVALID);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, "", &err), TLM_EINVALID);
	assert_int_equal(tlm_journal_set_resource_state(j, run, TLM_JOURNAL_AGENT, "nope",
							TLM_JOURNAL_DELETED, NULL, &err),
			 TLM_ENOTFOUND);
	tlm_journal_close(j);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_group_intents_all_or_nothing(void **state)
{
	char *tmp = tlm_h_tmpdir();
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	const char *wave[] = { "tlm-a", "tlm-b", "tlm-c" };
	const char *dup[] = { "tlm-d", "tlm-e", "tlm-d" };
	const char *clash[] = { "tlm-f", "tlm-a" };
	struct collected c = { 0 };
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_intents(j, run, TLM_JOURNAL_AGENT, wave, 3, &err), 0);
	assert_int_equal(tlm_journal_intents(j, run, TLM_JOURNAL_AGENT, dup, 3, &err),
			 TLM_ECONFLICT);
	assert_non_null(strstr(err.message, "tlm-d"));
	assert_non_null(strstr(err.message, tlm_journal_path(j)));
	assert_int_equal(tlm_journal_intents(j, run, TLM_JOURNAL_AGENT, clash, 2, &err),
			 TLM_ECONFLICT);
	assert_int_equal(tlm_journal_intents(j, run, TLM_JOURNAL_AGENT, wave, 0, &err), 0);
	assert_int_equal(tlm_journal_resources(j, run, collect, &c, &err), 0);
	assert_int_equal(c.n, 3); /* nothing of the failed batches */
	for (int i = 0; i < 3; i++) {
		assert_string_equal(c.name[i], wave[i]);
		assert_int_equal(c.state[i], TLM_JOURNAL_INTENT);
	}
	/* The journal is usable after a rolled-back batch. */
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, "tlm-d", &err), 0);
	tlm_journal_close(j);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* The crash case: a child journals an intent and a remote id, then is
 * SIGKILLed without closing anything; the parent must see both rows. */
static void test_durable_across_crash(void **state)
{
	char *tmp = tlm_h_tmpdir();
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1] = "";
	struct collected c = { 0 };
	int fds[2], status = 0;
	pid_t pid;
	(void)state;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tlm_journal *cj = NULL;
		char id[TLM_JOURNAL_RUN_ID_LEN + 1];

		close(fds[0]);
		if (tlm_journal_open(&cj, tmp, NULL) != 0 ||
		    tlm_journal_run_new(cj, "demo", SPEC, id, NULL) != 0 ||
		    tlm_journal_intent(cj, id, TLM_JOURNAL_AGENT, "tlm-crash-a", NULL) != 0 ||
		    tlm_journal_intent(cj, id, TLM_JOURNAL_TEAM, "tlm-crash-t", NULL) != 0 ||
		    tlm_journal_created(cj, id, TLM_JOURNAL_TEAM, "tlm-crash-t", "team-9", NULL) !=
			    0 ||
		    write(fds[1], id, sizeof(id)) != (ssize_t)sizeof(id))
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], run, sizeof(run)), (ssize_t)sizeof(run));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_resources(j, run, collect, &c, &err), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.name[0], "tlm-crash-a");
	assert_int_equal(c.state[0], TLM_JOURNAL_INTENT);
	assert_string_equal(c.name[1], "tlm-crash-t");
	assert_int_equal(c.kind[1], TLM_JOURNAL_TEAM);
	assert_string_equal(c.remote[1], "team-9");
	assert_int_equal(c.state[1], TLM_JOURNAL_CREATED);
	tlm_journal_close(j);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_reopen_and_per_run_listing(void **state)
{
	char *tmp = tlm_h_tmpdir();
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char r1[TLM_JOURNAL_RUN_ID_LEN + 1], r2[TLM_JOURNAL_RUN_ID_LEN + 1];
	struct collected c = { 0 };
	tlm_journal_run r;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "one", SPEC, r1, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "two", SPEC, r2, &err), 0);
	assert_int_equal(tlm_journal_intent(j, r1, TLM_JOURNAL_AGENT, "tlm-1-a", &err), 0);
	assert_int_equal(tlm_journal_intent(j, r2, TLM_JOURNAL_AGENT, "tlm-2-a", &err), 0);
	assert_int_equal(tlm_journal_intent(j, r2, TLM_JOURNAL_AGENT, "tlm-2-b", &err), 0);
	assert_int_equal(tlm_journal_run_set_state(j, r1, TLM_RUN_COMPLETED, &err), 0);
	tlm_journal_close(j);

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_resources(j, r1, collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.name[0], "tlm-1-a");
	memset(&c, 0, sizeof(c));
	assert_int_equal(tlm_journal_resources(j, r2, collect, &c, &err), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.name[0], "tlm-2-a");
	assert_string_equal(c.name[1], "tlm-2-b");
	assert_int_equal(tlm_journal_run_get(j, r1, &r, &err), 0);
	assert_int_equal(r.state, TLM_RUN_COMPLETED);
	assert_string_equal(r.workflow, "one");
	tlm_journal_run_clear(&r);
	memset(&c, 0, sizeof(c));
	assert_int_equal(tlm_journal_resources(j, "00000000", collect, &c, &err), 0);
	assert_int_equal(c.n, 0);
	tlm_journal_close(j);
	tlm_h_rmrf(tmp);
	free(tmp);
}

struct tasks_seen {
	int n;
	char line[8][128];
};

static int collect_task(const tlm_journal_task *t, void *ctx)
{
	struct tasks_seen *s = ctx;

	if (s->n >= 8)
		return -100;
	snprintf(s->line[s->n++], 128, "%s/%s#%d %s %s%s%s%s%s", t->team, t->subject, t->attempt,
		 t->remote_id ? t->remote_id : "-", tlm_attempt_status_name(t->status),
		 t->ended ? " ended: " : "", t->ended ? t->ended : "", t->result ? " result: " : "",
		 t->result ? t->result : "");
	return 0;
}

static void test_task_attempts(void **state)
{
	char *tmp = tlm_h_tmpdir();
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	struct tasks_seen s = { 0 };
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	/* Two teams with the same subject must not collide (docs/lessons.md #11). */
	assert_int_equal(
		tlm_journal_task_record(j, run, "t1", "build", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		0);
	assert_int_equal(tlm_journal_task_record(j, run, "t2", "build", 1, "x2",
						 TLM_ATTEMPT_SUBMITTED, &err),
			 0);
	assert_int_equal(tlm_journal_task_record(j, run, "t1", "build", 1, "x1",
						 TLM_ATTEMPT_SUBMITTED, &err),
			 0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t1", "build", 1, NULL, TLM_ATTEMPT_FAILED, &err),
		0);
	assert_int_equal(tlm_journal_task_record(j, run, "t1", "build", 2, "x3",
						 TLM_ATTEMPT_COMPLETED, &err),
			 0);
	assert_int_equal(tlm_journal_tasks(j, run, collect_task, &s, &err), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.line[0], "t1/build#1 x1 failed");
	assert_string_equal(s.line[1], "t1/build#2 x3 completed");
	assert_string_equal(s.line[2], "t2/build#1 x2 submitted");
	assert_int_equal(
		tlm_journal_task_record(j, run, "t1", "build", 0, NULL, TLM_ATTEMPT_PENDING, &err),
		TLM_EINVALID);
	assert_int_equal(tlm_journal_task_record(j, run, "t1", "build", 1, NULL,
						 (tlm_attempt_status)99, &err),
			 TLM_EINVALID);
	assert_int_equal(tlm_journal_task_record(j, "zzzzzzzz", "t1", "build", 1, NULL,
						 TLM_ATTEMPT_PENDING, &err),
			 TLM_ENOTFOUND);
	tlm_journal_close(j);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* Ending an attempt on the control plane: a live status becomes cancelled,
 * a terminal one stays, an id never learnt is filled in, never replaced. */
static void test_task_ended(void **state)
{
	char *tmp = tlm_h_tmpdir();
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	struct tasks_seen s = { 0 };
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "a", 1, NULL, TLM_ATTEMPT_PENDING, &err), 0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "b", 1, "x1", TLM_ATTEMPT_RUNNING, &err), 0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "c", 1, "x2", TLM_ATTEMPT_TIMED_OUT, &err), 0);
	assert_int_equal(tlm_journal_task_ended(j, run, "t", "a", 1, "lost", "n1", &err), 0);
	assert_int_equal(tlm_journal_task_ended(j, run, "t", "b", 1, "other", "n2", &err), 0);
	assert_int_equal(tlm_journal_task_ended(j, run, "t", "c", 1, NULL, "n3", &err), 0);
	assert_int_equal(tlm_journal_tasks(j, run, collect_task, &s, &err), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.line[0], "t/a#1 lost cancelled ended: n1");
	assert_string_equal(s.line[1], "t/b#1 x1 cancelled ended: n2");
	assert_string_equal(s.line[2], "t/c#1 x2 timed_out ended: n3");
	assert_int_equal(tlm_journal_task_ended(j, run, "t", "a", 2, NULL, "n", &err),
			 TLM_ENOTFOUND);
	assert_int_equal(tlm_journal_task_ended(j, run, "t", "a", 1, NULL, "", &err), TLM_EINVALID);
	tlm_journal_close(j);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_bad_state_dir(void **state)
{
	char *tmp = tlm_h_tmpdir(), *file = subdir(tmp, "blocker"), *below = subdir(file, "state");
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	FILE *f = fopen(file, "w");
	(void)state;

	assert_non_null(f);
	fclose(f);
	/* The state directory itself is a file. */
	assert_int_equal(tlm_journal_open(&j, file, &err), TLM_EINVALID);
	assert_null(j);
	assert_non_null(strstr(err.message, file));
	assert_non_null(strstr(err.message, "not a directory"));
	assert_int_equal(tlm_journal_open(&j, "", &err), TLM_EINVALID);
	assert_null(j);
	/* A file in the way of a parent. */
	assert_int_not_equal(tlm_journal_open(&j, below, &err), 0);
	assert_null(j);
	assert_non_null(strstr(err.message, file));
	free(below);
	free(file);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_corrupt_db_names_path(void **state)
{
	char *tmp = tlm_h_tmpdir(), *db = subdir(tmp, "journal.db");
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	FILE *f = fopen(db, "w");
	(void)state;

	assert_non_null(f);
	fputs("this is not a database, but it is long enough to have a header.....\n", f);
	fclose(f);
	assert_int_equal(tlm_journal_open(&j, tmp, &err), TLM_ERROR);
	assert_null(j);
	assert_non_null(strstr(err.message, db));
	assert_non_null(strstr(err.message, "not a database"));
	free(db);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* Rows a query counts, through a connection of its own (another process). */
static int raw_count(const char *db, const char *sql)
{
	sqlite3 *raw = NULL;
	sqlite3_stmt *q = NULL;
	int n;

	assert_int_equal(sqlite3_open_v2(db, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(raw);
	return n;
}

/* Group commit: batched writes are seen by nobody else, and not in the
 * audit log, until the flush; a write that fails inside a batch is undone
 * alone; one flush commits them all. */
static void test_batch(void **state)
{
	char *tmp = tlm_h_tmpdir(), *db = subdir(tmp, "journal.db"),
	     *log = subdir(tmp, "audit.log");
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1], a[64], b[64], *text;
	struct collected c = { 0 };
	uint64_t m0, m1;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_set_audit_log(j, log, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	snprintf(a, sizeof(a), "tlm-%s-first", run);
	snprintf(b, sizeof(b), "tlm-%s-second", run);
	assert_int_equal(tlm_journal_set_batching(j, 1, &err), 0);
	assert_false(tlm_journal_unflushed(j));
	m0 = tlm_journal_mark(j);
	assert_true(tlm_journal_durable(j, m0)); /* nothing written yet */
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, a, &err), 0);
	assert_true(tlm_journal_unflushed(j));
	/* A request decided now depends on the intent: not durable until the
	 * flush; what was decided before it still is. */
	m1 = tlm_journal_mark(j);
	assert_true(m1 > m0);
	assert_false(tlm_journal_durable(j, m1));
	assert_true(tlm_journal_durable(j, m0));
	assert_int_equal(tlm_journal_committed_mark(j), m0);
	/* This handle reads its own batch; another connection does not. */
	assert_int_equal(tlm_journal_resources(j, run, collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(raw_count(db, "SELECT count(*) FROM resources"), 0);
	text = tlm_h_slurp(log);
	assert_null(strstr(text, a));
	free(text);
	/* A failing write (out of the write-ahead order) changes nothing and
	 * leaves the batch as it was. */
	assert_int_equal(tlm_journal_created(j, run, TLM_JOURNAL_AGENT, b, "id-2", &err),
			 TLM_ENOTFOUND);
	/* A statement that fails in the database (the name is journaled). */
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, a, &err), TLM_ECONFLICT);
	assert_int_equal(tlm_journal_intent(j, run, TLM_JOURNAL_AGENT, b, &err), 0);
	assert_int_equal(tlm_journal_created(j, run, TLM_JOURNAL_AGENT, b, "id-2", &err), 0);
	assert_int_equal(tlm_journal_mark(j), m1); /* the same batch */
	assert_int_equal(tlm_journal_flush(j, &err), 0);
	assert_false(tlm_journal_unflushed(j));
	assert_true(tlm_journal_durable(j, m1));
	assert_int_equal(tlm_journal_committed_mark(j), m1);
	assert_int_equal(tlm_journal_mark(j), m1);
	assert_int_equal(raw_count(db, "SELECT count(*) FROM resources"), 2);
	assert_int_equal(raw_count(db, "SELECT count(*) FROM resources WHERE remote_id = 'id-2'"),
			 1);
	text = tlm_h_slurp(log);
	assert_non_null(strstr(text, a));
	assert_non_null(strstr(text, b));
	free(text);
	/* What is still open at close is committed, as an unbatched write. */
	assert_int_equal(tlm_journal_set_resource_state(j, run, TLM_JOURNAL_AGENT, a,
							TLM_JOURNAL_ABSENT, NULL, &err),
			 0);
	tlm_journal_close(j);
	assert_int_equal(raw_count(db, "SELECT count(*) FROM resources WHERE state = 'absent'"), 1);
	free(log);
	free(db);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* Runs sql through a connection of its own. */
static void raw_exec(const char *db, const char *sql)
{
	sqlite3 *raw = NULL;

	assert_int_equal(sqlite3_open_v2(db, &raw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
}

/* A write of one statement takes no savepoint in a batch on SQLite
 * (batch.c): when its statement fails in the database, SQLite undoes that
 * statement, what its trigger did included, and the batch goes on. */
static void test_batch_one_statement_fails(void **state)
{
	char *tmp = tlm_h_tmpdir(), *db = subdir(tmp, "journal.db");
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	/* An insert of subject "poison" fails; so does an update of "half"
	 * to running, after its trigger wrote an audit row. */
	raw_exec(db, "CREATE TRIGGER poison BEFORE INSERT ON tasks WHEN NEW.subject = 'poison'"
		     " BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
		     "CREATE TRIGGER half AFTER UPDATE ON tasks"
		     " WHEN NEW.subject = 'half' AND NEW.status = 'running' BEGIN"
		     " INSERT INTO audit (at, action) VALUES ('now', 'half-done');"
		     " SELECT RAISE(ABORT, 'half'); END;");
	assert_int_equal(tlm_journal_set_batching(j, 1, &err), 0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "half", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		0);
	assert_int_not_equal(
		tlm_journal_task_record(j, run, "t", "poison", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		0);
	assert_non_null(strstr(err.message, "poisoned"));
	assert_int_not_equal(
		tlm_journal_task_record(j, run, "t", "half", 1, "id-1", TLM_ATTEMPT_RUNNING, &err),
		0);
	assert_int_equal(
		tlm_journal_task_record(j, run, "t", "after", 1, NULL, TLM_ATTEMPT_PENDING, &err),
		0);
	assert_true(tlm_journal_unflushed(j));
	assert_int_equal(tlm_journal_flush(j, &err), 0);
	assert_int_equal(raw_count(db, "SELECT count(*) FROM tasks"), 2);
	assert_int_equal(raw_count(db, "SELECT count(*) FROM tasks WHERE subject = 'half'"
				       " AND status = 'pending' AND remote_id IS NULL"),
			 1);
	assert_int_equal(raw_count(db, "SELECT count(*) FROM audit WHERE action = 'half-done'"), 0);
	tlm_journal_close(j);
	free(db);
	tlm_h_rmrf(tmp);
	free(tmp);
}

struct events_seen {
	int n;
	char line[4][160];
};

static int collect_event(const tlm_journal_event *ev, void *ctx)
{
	struct events_seen *s = ctx;

	if (s->n < 4)
		snprintf(s->line[s->n], sizeof(s->line[0]), "%s %s %s/%s %s #%d n%lld %llu %s",
			 ev->id, ev->kind, ev->team ? ev->team : "-", ev->name ? ev->name : "-",
			 ev->state, ev->attempt, ev->count, ev->at_ms,
			 ev->message ? ev->message : "(null)");
	s->n++;
	return 0;
}

/* Run events (schema 8): fenced, idempotent, oldest first; deliveries are
 * any process's to record, once. */
static void test_events_and_deliveries(void **state)
{
	char *tmp = tlm_h_tmpdir(), *db = subdir(tmp, "journal.db"),
	     long_msg[TLM_JOURNAL_TEXT_MAX + 2];
	tlm_journal *j = NULL, *k = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal_event a = {
		"r:task_completed:t/a:1", "task", "t", "a", "completed", "", 1, 0, 2000
	};
	tlm_journal_event b = { "r:teardown_failed",
				"teardown_failed",
				NULL,
				NULL,
				"teardown_failed",
				"2 left",
				0,
				2,
				1000 };
	struct events_seen s = { 0 };
	int had = -1;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_event_put(j, run, &a, &err), 0);
	assert_int_equal(tlm_journal_event_put(j, run, &b, &err), 0);
	a.state = "failed"; /* the same id again: what was recorded stays */
	assert_int_equal(tlm_journal_event_put(j, run, &a, &err), 0);
	assert_int_equal(tlm_journal_events(j, run, collect_event, &s, &err), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(
		s.line[0],
		"r:teardown_failed teardown_failed -/- teardown_failed #0 n2 1000 2 left");
	assert_string_equal(s.line[1],
			    "r:task_completed:t/a:1 task t/a completed #1 n0 2000 (null)");
	/* Bad events are refused, naming what is wrong. */
	a.id = NULL;
	assert_int_equal(tlm_journal_event_put(j, run, &a, &err), TLM_EINVALID);
	a.id = "r:x";
	memset(long_msg, 'm', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	a.message = long_msg;
	assert_int_equal(tlm_journal_event_put(j, run, &a, &err), TLM_ETOOBIG);
	assert_int_equal(tlm_journal_event_put(j, "NOT-A-RUN", &a, &err), TLM_EINVALID);
	/* Another process may not write the run's events: they are fenced. */
	assert_int_equal(tlm_journal_open(&k, tmp, &err), 0);
	a.message = NULL;
	assert_int_equal(tlm_journal_event_put(k, run, &a, &err), TLM_EFENCED);
	/* Deliveries: anyone's, idempotent. */
	assert_int_equal(tlm_journal_delivery_get(k, run, "r:x", "hook1", &had, &err), 0);
	assert_int_equal(had, 0);
	assert_int_equal(tlm_journal_delivery_put(k, run, "r:x", "hook1", &err), 0);
	assert_int_equal(tlm_journal_delivery_put(k, run, "r:x", "hook1", &err), 0);
	assert_int_equal(tlm_journal_delivery_get(j, run, "r:x", "hook1", &had, &err), 0);
	assert_int_equal(had, 1);
	assert_int_equal(tlm_journal_delivery_get(j, run, "r:x", "hook2", &had, &err), 0);
	assert_int_equal(had, 0);
	assert_int_equal(raw_count(db, "SELECT count(*) FROM hook_deliveries"), 1);
	assert_int_equal(tlm_journal_delivery_put(k, run, "r:x", "", &err), TLM_EINVALID);
	assert_int_equal(tlm_journal_delivery_put(k, run, "r:x", long_msg, &err), TLM_ETOOBIG);
	tlm_journal_close(k);
	tlm_journal_close(j);
	free(db);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* Opening a journal at this build's version takes no write lock: with
 * another connection holding it (a run's open batch), `status` and a hook
 * ledger still open at once instead of waiting out the busy timeout. */
static void test_open_without_write_lock(void **state)
{
	char *tmp = tlm_h_tmpdir(), *db = subdir(tmp, "journal.db");
	tlm_journal *j = NULL, *k = NULL;
	tlm_error err = TLM_ERROR_INIT;
	sqlite3 *raw = NULL;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0); /* creates and migrates */
	tlm_journal_close(j);
	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(tlm_journal_open(&k, tmp, &err), 0);
	tlm_journal_close(k);
	sqlite3_exec(raw, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(raw);
	free(db);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* 1 when another process sees a write lock on byte 100 of path. */
static int locked_elsewhere(const char *path)
{
	pid_t pid = fork();
	int status = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct flock fl = {
			.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 1
		};
		int fd = open(path, O_RDWR);

		_exit(fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

/* Closing any descriptor of a file drops every POSIX lock the process
 * holds on it, SQLite's included: opening the journal again in the same
 * process (the hooks' ledger beside the engine's connection) must not
 * open and close the database file.  A lock of our own on byte 100 stands
 * for SQLite's; it must survive a second open. */
static void test_second_open_keeps_locks(void **state)
{
	char *tmp = tlm_h_tmpdir(), *db = subdir(tmp, "journal.db");
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 1 };
	tlm_journal *j = NULL, *k = NULL;
	tlm_error err = TLM_ERROR_INIT;
	int fd;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	fd = open(db, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_SETLK, &fl), 0);
	assert_true(locked_elsewhere(db));
	assert_int_equal(tlm_journal_open(&k, tmp, &err), 0);
	assert_true(locked_elsewhere(db)); /* the second open kept it */
	tlm_journal_close(k);
	close(fd);
	tlm_journal_close(j);
	free(db);
	tlm_h_rmrf(tmp);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_batch_one_statement_fails),
		cmocka_unit_test(test_open_modes_and_schema),
		cmocka_unit_test(test_default_dir),
		cmocka_unit_test(test_run_ids),
		cmocka_unit_test(test_resource_round_trip),
		cmocka_unit_test(test_group_intents_all_or_nothing),
		cmocka_unit_test(test_durable_across_crash),
		cmocka_unit_test(test_reopen_and_per_run_listing),
		cmocka_unit_test(test_task_attempts),
		cmocka_unit_test(test_task_ended),
		cmocka_unit_test(test_events_and_deliveries),
		cmocka_unit_test(test_open_without_write_lock),
		cmocka_unit_test(test_second_open_keeps_locks),
		cmocka_unit_test(test_bad_state_dir),
		cmocka_unit_test(test_corrupt_db_names_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
