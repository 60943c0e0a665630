/* The journal's recovery support (schema 2): migrating a version-1 journal
 * with its rows, the new run fields, listing runs, owner liveness and the
 * claim (against a live, a killed and a stale owner), the audit trail,
 * re-intents, the control plane record (no credentials), cancel requests, and
 * the resource counts of a listing. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "telemachy/journal.h"

#define SPEC "apiVersion: telemachy/v1\nmetadata:\n  name: demo\n"

/* Version 1 exactly as released (src/journal/open.c), with one row of each. */
static const char v1_db[] =
	"CREATE TABLE schema_version (version INTEGER PRIMARY KEY);"
	"INSERT INTO schema_version VALUES (1);"
	"CREATE TABLE runs ("
	"  id TEXT PRIMARY KEY, workflow TEXT NOT NULL, spec_hash TEXT NOT NULL,"
	"  spec TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL, owner_pid INTEGER, owner_host TEXT, heartbeat_at TEXT);"
	"CREATE INDEX runs_created ON runs (created_at);"
	"CREATE TABLE resources ("
	"  run_id TEXT NOT NULL REFERENCES runs (id),"
	"  kind TEXT NOT NULL CHECK (kind IN ('agent', 'team')),"
	"  name TEXT NOT NULL, remote_id TEXT,"
	"  state TEXT NOT NULL CHECK (state IN ('intent', 'created', 'started', 'deleting',"
	"    'deleted', 'absent', 'abandoned')),"
	"  last_error TEXT, updated_at TEXT NOT NULL,"
	"  PRIMARY KEY (run_id, kind, name));"
	"CREATE TABLE tasks ("
	"  run_id TEXT NOT NULL REFERENCES runs (id), team TEXT NOT NULL,"
	"  subject TEXT NOT NULL, attempt INTEGER NOT NULL CHECK (attempt >= 1),"
	"  remote_id TEXT, status TEXT NOT NULL, updated_at TEXT NOT NULL,"
	"  PRIMARY KEY (run_id, team, subject, attempt));"
	"INSERT INTO runs VALUES ('oldrun01', 'legacy', 'ab', 'spec', 'teardown_failed',"
	"  '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:01.000Z', 42, 'h', NULL);"
	"INSERT INTO resources VALUES ('oldrun01', 'agent', 'tlm-oldrun01-a-x', 'ag-1',"
	"  'created', 'delete failed', '2024-01-01T00:00:01.000Z');"
	"INSERT INTO tasks VALUES ('oldrun01', 'tm', 'build', 1, 'task-1', 'completed',"
	"  '2024-01-01T00:00:01.000Z');";

/* Runs sql on the database with a connection of its own, as another process
 * (or an old binary) would. */
static void raw_exec(const char *db, const char *sql)
{
	sqlite3 *raw = NULL;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	sqlite3_busy_timeout(raw, 5000);
	if (sqlite3_exec(raw, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("raw sql failed: %s: %s", sql, msg ? msg : "?");
	sqlite3_close(raw);
}

static char *db_path(const char *dir)
{
	size_t n = strlen(dir) + sizeof("/journal.db");
	char *p = malloc(n);

	assert_non_null(p);
	snprintf(p, n, "%s/journal.db", dir);
	return p;
}

struct res_seen {
	int n;
	char state[8][16];
	char remote[8][32];
	char err[8][32];
};

static int res_cb(const tlm_journal_resource *r, void *ctx)
{
	struct res_seen *s = ctx;

	if (s->n >= 8)
		return -100;
	snprintf(s->state[s->n], 16, "%s", tlm_journal_state_name(r->state));
	snprintf(s->remote[s->n], 32, "%s", r->remote_id ? r->remote_id : "(null)");
	snprintf(s->err[s->n], 32, "%s", r->last_error ? r->last_error : "(null)");
	s->n++;
	return 0;
}

/* A task row of an old journal: version 4's "ended" reads as not ended. */
static int old_task_cb(const tlm_journal_task *t, void *ctx)
{
	int *n = ctx;

	assert_string_equal(t->remote_id, "task-1");
	assert_int_equal(t->status, TLM_ATTEMPT_COMPLETED);
	assert_null(t->ended);
	assert_null(t->result);
	(*n)++;
	return 0;
}

static void test_migrate_from_v1(void **state)
{
	char *tmp = tlm_h_tmpdir(), *db = db_path(tmp);
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run r;
	struct res_seen s = { 0 };
	int version = 0;
	(void)state;

	raw_exec(db, v1_db);
	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_schema_version(j, &version, &err), 0);
	assert_int_equal(version, TLM_JOURNAL_SCHEMA_VERSION);
	assert_int_equal(version, 8);
	assert_int_equal(tlm_journal_run_get(j, "oldrun01", &r, &err), 0);
	/* Version 7 moved the spec's text to its own table: still there. */
	assert_string_equal(r.spec, "spec");
	assert_int_equal(r.owner_epoch, 0); /* version 3's columns: not recorded */
	assert_null(r.owner_domain);
	assert_int_equal(r.owner_start, 0);
	assert_string_equal(r.workflow, "legacy");
	assert_int_equal(r.state, TLM_RUN_TEARDOWN_FAILED);
	assert_int_equal(r.owner_pid, 42);
	assert_null(r.heartbeat_at);
	assert_int_equal(r.heartbeat_age_ms, -1);
	assert_null(r.control_plane);
	assert_null(r.cancel_requested_at);
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_NONE);
	tlm_journal_run_clear(&r);
	assert_int_equal(tlm_journal_resources(j, "oldrun01", res_cb, &s, &err), 0);
	assert_int_equal(s.n, 1);
	version = 0; /* now the count of rows */
	assert_int_equal(tlm_journal_tasks(j, "oldrun01", old_task_cb, &version, &err), 0);
	assert_int_equal(version, 1);
	assert_string_equal(s.remote[0], "ag-1");
	assert_string_equal(s.err[0], "delete failed");
	/* The new columns and table work on the migrated rows (once the run is
	 * claimed: every write is fenced). */
	assert_int_equal(tlm_journal_run_set_control_plane(j, "oldrun01", "http://cp:8080", &err),
			 TLM_EFENCED);
	assert_int_equal(tlm_journal_run_claim(j, "oldrun01", 0, &err), 0);
	assert_int_equal(tlm_journal_held_epoch(j, "oldrun01"), 1);
	assert_int_equal(tlm_journal_run_set_control_plane(j, "oldrun01", "http://cp:8080", &err),
			 0);
	assert_int_equal(tlm_journal_audit(j, "oldrun01", "abandon", "migrated", &err), 0);
	tlm_journal_close(j);
	/* A journal from a newer build is refused, never written. */
	raw_exec(db, "INSERT INTO schema_version VALUES (9)");
	assert_int_equal(tlm_journal_open(&j, tmp, &err), TLM_ECONFLICT);
	assert_null(j);
	assert_non_null(strstr(err.message, "newer"));
	free(db);
	tlm_h_rmrf(tmp);
	free(tmp);
}

struct runs_seen {
	int n;
	char id[8][TLM_JOURNAL_RUN_ID_LEN + 1];
	int spec_null;
};

static int runs_cb(const tlm_journal_run *r, void *ctx)
{
	struct runs_seen *s = ctx;

	if (s->n >= 8)
		return -100;
	snprintf(s->id[s->n], sizeof(s->id[0]), "%s", r->id);
	s->spec_null += r->spec == NULL;
	s->n++;
	return 0;
}

static void test_list_runs(void **state)
{
	char *tmp = tlm_h_tmpdir(), *db = db_path(tmp), sql[256];
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	char a[TLM_JOURNAL_RUN_ID_LEN + 1], b[TLM_JOURNAL_RUN_ID_LEN + 1],
		c[TLM_JOURNAL_RUN_ID_LEN + 1], latest[TLM_JOURNAL_RUN_ID_LEN + 1];
	struct runs_seen s = { 0 };
	tlm_journal_run r;
	const tlm_run_state completed = TLM_RUN_COMPLETED, pending = TLM_RUN_PENDING;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_latest_run(j, latest, &err), TLM_ENOTFOUND);
	assert_int_equal(tlm_journal_runs(j, NULL, NULL, runs_cb, &s, &err), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(tlm_journal_run_new(j, "alpha", SPEC, a, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "beta", SPEC, b, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "alpha", SPEC, c, &err), 0);
	/* Distinct creation times, c newest, whatever the clock did. */
	snprintf(sql, sizeof(sql),
		 "UPDATE runs SET created_at = '2030-01-0' || "
		 "(CASE id WHEN '%s' THEN 1 WHEN '%s' THEN 2 ELSE 3 END) || 'T00:00:00.000Z'",
		 a, b);
	raw_exec(db, sql);
	assert_int_equal(tlm_journal_run_set_state(j, b, TLM_RUN_COMPLETED, &err), 0);
	assert_int_equal(tlm_journal_runs(j, NULL, NULL, runs_cb, &s, &err), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.id[0], c);
	assert_string_equal(s.id[1], b);
	assert_string_equal(s.id[2], a);
	assert_int_equal(s.spec_null, 3);
	assert_int_equal(tlm_journal_latest_run(j, latest, &err), 0);
	assert_string_equal(latest, c);
	memset(&s, 0, sizeof(s));
	assert_int_equal(tlm_journal_runs(j, NULL, "alpha", runs_cb, &s, &err), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.id[0], c);
	memset(&s, 0, sizeof(s));
	assert_int_equal(tlm_journal_runs(j, &completed, NULL, runs_cb, &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.id[0], b);
	memset(&s, 0, sizeof(s));
	assert_int_equal(tlm_journal_runs(j, &pending, "beta", runs_cb, &s, &err), 0);
	assert_int_equal(s.n, 0);
	/* A callback's non-zero return stops the walk and is returned. */
	s.n = 8;
	assert_int_equal(tlm_journal_runs(j, NULL, NULL, runs_cb, &s, &err), -100);
	/* run_get fills the new fields: a fresh heartbeat, owned by us. */
	assert_int_equal(tlm_journal_run_get(j, a, &r, &err), 0);
	assert_non_null(r.spec);
	assert_int_equal(r.owner_pid, (long)getpid());
	assert_true(r.heartbeat_age_ms >= 0 && r.heartbeat_age_ms < TLM_JOURNAL_STALE_MS);
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_ALIVE);
	tlm_journal_run_clear(&r);
	/* A heartbeat ten minutes old reads as ~600000 ms. */
	snprintf(sql, sizeof(sql),
		 "UPDATE runs SET heartbeat_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now',"
		 " '-600 seconds') WHERE id = '%s'",
		 a);
	raw_exec(db, sql);
	assert_int_equal(tlm_journal_run_get(j, a, &r, &err), 0);
	assert_true(r.heartbeat_age_ms >= 600000 && r.heartbeat_age_ms < 610000);
	/* Its owner is this very process (pid and start time): alive however
	 * old the heartbeat; the lease only counts across hosts. */
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_ALIVE);
	free(r.owner_domain);
	r.owner_domain = NULL; /* as a journal of version 2 had it */
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_DEAD);
	tlm_journal_run_clear(&r);
	tlm_journal_close(j);
	free(db);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* What tlm_journal_resource_counts handed over, by run. */
struct counts_seen {
	int n;
	tlm_journal_counts c[4];
};

static int counts_cb(const tlm_journal_counts *c, void *ctx)
{
	struct counts_seen *s = ctx;

	if (s->n >= 4)
		return -100;
	s->c[s->n++] = *c;
	return 0;
}

/* The counts of run id among those seen (fails when it is not there). */
static const tlm_journal_counts *counts_of(const struct counts_seen *s, const char *id)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->c[i].run_id, id) == 0)
			return &s->c[i];
	fail_msg("no counts for run %s", id);
	return NULL;
}

/* One callback per run with resources, whatever the order of their rows, and
 * the filter of tlm_journal_runs. */
static void test_resource_counts(void **state)
{
	char *tmp = tlm_h_tmpdir(), a[TLM_JOURNAL_RUN_ID_LEN + 1], b[TLM_JOURNAL_RUN_ID_LEN + 1],
	     c[TLM_JOURNAL_RUN_ID_LEN + 1];
	const char *names[] = { "tlm-a-1", "tlm-a-2", "tlm-a-3" };
	const tlm_run_state completed = TLM_RUN_COMPLETED;
	tlm_error err = TLM_ERROR_INIT;
	struct counts_seen s = { 0 };
	tlm_journal *j = NULL;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "alpha", SPEC, a, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "beta", SPEC, b, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "alpha", SPEC, c, &err), 0);
	assert_int_equal(tlm_journal_intent(j, a, TLM_JOURNAL_AGENT, names[0], &err), 0);
	assert_int_equal(tlm_journal_intent(j, c, TLM_JOURNAL_TEAM, "tlm-c-1", &err), 0);
	assert_int_equal(tlm_journal_intents(j, a, TLM_JOURNAL_TEAM, names + 1, 2, &err), 0);
	assert_int_equal(tlm_journal_created(j, a, TLM_JOURNAL_TEAM, names[2], "r", &err), 0);
	assert_int_equal(tlm_journal_set_resource_state(j, c, TLM_JOURNAL_TEAM, "tlm-c-1",
							TLM_JOURNAL_DELETED, NULL, &err),
			 0);
	assert_int_equal(tlm_journal_run_set_state(j, b, TLM_RUN_COMPLETED, &err), 0);
	assert_int_equal(tlm_journal_resource_counts(j, NULL, "alpha", counts_cb, &s, &err), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(counts_of(&s, a)->n[TLM_JOURNAL_INTENT], 2);
	assert_int_equal(counts_of(&s, a)->n[TLM_JOURNAL_CREATED], 1);
	assert_int_equal(counts_of(&s, a)->n[TLM_JOURNAL_DELETED], 0);
	assert_int_equal(counts_of(&s, c)->n[TLM_JOURNAL_DELETED], 1);
	assert_int_equal(counts_of(&s, c)->n[TLM_JOURNAL_INTENT], 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(tlm_journal_resource_counts(j, &completed, NULL, counts_cb, &s, &err), 0);
	assert_int_equal(s.n, 0); /* b has none */
	s.n = 4;
	assert_int_equal(tlm_journal_resource_counts(j, NULL, NULL, counts_cb, &s, &err), -100);
	tlm_journal_close(j);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_owner_rules(void **state)
{
	char host[256] = "";
	tlm_journal_run r;
	pid_t pid;
	(void)state;

	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	memset(&r, 0, sizeof(r));
	r.state = TLM_RUN_RUNNING;
	r.owner_host = host;
	r.owner_pid = (long)getpid();
	r.heartbeat_age_ms = 10;
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_ALIVE);
	assert_string_equal(tlm_journal_owner_name(TLM_JOURNAL_OWNER_ALIVE), "alive");
	r.heartbeat_age_ms = -1;
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_DEAD);
	r.heartbeat_age_ms = TLM_JOURNAL_STALE_MS + 1;
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_DEAD);
	assert_string_equal(tlm_journal_owner_name(TLM_JOURNAL_OWNER_DEAD), "dead");
	r.heartbeat_age_ms = TLM_JOURNAL_STALE_MS;
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_ALIVE);
	/* Final states need no owner, whatever the heartbeat says. */
	r.state = TLM_RUN_TEARDOWN_FAILED;
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_NONE);
	assert_string_equal(tlm_journal_owner_name(TLM_JOURNAL_OWNER_NONE), "-");
	r.state = TLM_RUN_TEARING_DOWN;
	/* A reaped child's pid: no such process on this host. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	r.owner_pid = (long)pid;
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_DEAD);
	/* The same pid on another host cannot be checked: the heartbeat decides. */
	r.owner_host = "elsewhere.invalid";
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_ALIVE);
	/* pid 1 exists (EPERM for a non-root user still means it exists). */
	r.owner_host = host;
	r.owner_pid = 1;
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_ALIVE);
	r.owner_pid = 0;
	assert_int_equal(tlm_journal_run_owner(&r), TLM_JOURNAL_OWNER_DEAD);
}

/* A child that opens the journal, starts a run (so owns it), reports the id
 * and then waits, heartbeat fresh, until killed. */
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
		    tlm_journal_run_set_state(cj, id, TLM_RUN_RUNNING, NULL) != 0 ||
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

static void test_claim(void **state)
{
	char *tmp = tlm_h_tmpdir(), *db = db_path(tmp), sql[256], pidtext[32];
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run r;
	pid_t child;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	child = spawn_owner(tmp, run);
	/* A live owner: refused, naming it; nothing changes. */
	assert_int_equal(tlm_journal_run_claim(j, run, 0, &err), TLM_ECONFLICT);
	snprintf(pidtext, sizeof(pidtext), "pid %ld", (long)child);
	assert_non_null(strstr(err.message, pidtext));
	assert_non_null(strstr(err.message, run));
	assert_non_null(strstr(err.message, "heartbeat"));
	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
	assert_int_equal(r.owner_pid, (long)child);
	tlm_journal_run_clear(&r);
	/* The owner dies (SIGKILL, heartbeat still fresh): the claim succeeds. */
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	assert_int_equal(tlm_journal_run_claim(j, run, 0, &err), 0);
	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
	assert_int_equal(r.owner_pid, (long)getpid());
	assert_true(r.heartbeat_age_ms >= 0 && r.heartbeat_age_ms < 5000);
	tlm_journal_run_clear(&r);
	/* Claiming a run we own already is not an error. */
	assert_int_equal(tlm_journal_run_claim(j, run, 0, &err), 0);
	/* Another machine's owner (it claimed: a new epoch, another domain)
	 * with a fresh heartbeat: alive, refused. */
	snprintf(sql, sizeof(sql),
		 "UPDATE runs SET owner_pid = 1, owner_host = 'elsewhere.invalid',"
		 " owner_domain = 'boot/elsewhere', owner_epoch = owner_epoch + 1,"
		 " heartbeat_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now') WHERE id = '%s'",
		 run);
	raw_exec(db, sql);
	assert_int_equal(tlm_journal_run_claim(j, run, 0, &err), TLM_ECONFLICT);
	assert_non_null(strstr(err.message, "elsewhere.invalid"));
	/* Its heartbeat goes stale: the claim succeeds though pid 1 exists. */
	snprintf(sql, sizeof(sql),
		 "UPDATE runs SET heartbeat_at = '2000-01-01T00:00:00.000Z' WHERE id = '%s'", run);
	raw_exec(db, sql);
	assert_int_equal(tlm_journal_run_claim(j, run, 0, &err), 0);
	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
	assert_int_equal(r.owner_pid, (long)getpid());
	assert_string_not_equal(r.owner_host, "elsewhere.invalid");
	tlm_journal_run_clear(&r);
	/* A final run needs no owner: claimable from a live one (teardown of
	 * its leftovers). */
	snprintf(sql, sizeof(sql),
		 "UPDATE runs SET owner_pid = 1, owner_host = 'elsewhere.invalid',"
		 " owner_domain = 'boot/elsewhere', owner_epoch = owner_epoch + 1,"
		 " heartbeat_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now'),"
		 " state = 'teardown_failed' WHERE id = '%s'",
		 run);
	raw_exec(db, sql);
	assert_int_equal(tlm_journal_run_claim(j, run, 0, &err), 0);
	assert_int_equal(tlm_journal_run_claim(j, "nosuchr1", 0, &err), TLM_ENOTFOUND);
	assert_int_equal(tlm_journal_run_claim(j, "BAD", 0, &err), TLM_EINVALID);
	/* The failed claims left no transaction open: writes still work. */
	assert_int_equal(tlm_journal_run_set_state(j, run, TLM_RUN_FAILED, &err), 0);
	tlm_journal_close(j);
	free(db);
	tlm_h_rmrf(tmp);
	free(tmp);
}

struct audit_seen {
	int n;
	char action[8][32];
	char run[8][16];
	size_t detail_len[8];
	int user_ok, host_ok, pid_ok;
};

static int audit_cb(const tlm_journal_audit_entry *a, void *ctx)
{
	struct audit_seen *s = ctx;

	if (s->n >= 8)
		return -100;
	snprintf(s->action[s->n], 32, "%s", a->action);
	snprintf(s->run[s->n], 16, "%s", a->run_id ? a->run_id : "(null)");
	s->detail_len[s->n] = a->detail ? strlen(a->detail) : 0;
	s->user_ok += a->user != NULL && a->user[0] != '\0';
	s->host_ok += a->host != NULL;
	s->pid_ok += a->pid == (long)getpid();
	assert_non_null(a->at);
	assert_true(a->seq > 0);
	s->n++;
	return 0;
}

static void test_audit(void **state)
{
	char *tmp = tlm_h_tmpdir(), *big = malloc(TLM_JOURNAL_TEXT_MAX + 100);
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	struct audit_seen s = { 0 };
	(void)state;

	assert_non_null(big);
	memset(big, 'x', TLM_JOURNAL_TEXT_MAX + 99);
	big[TLM_JOURNAL_TEXT_MAX + 99] = '\0';
	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_audit(j, run, "abandon", "agent tlm-x: gone", &err), 0);
	assert_int_equal(tlm_journal_audit(j, NULL, "reconcile-delete", NULL, &err), 0);
	assert_int_equal(tlm_journal_audit(j, run, "teardown", big, &err), 0);
	assert_int_equal(tlm_journal_audit(j, run, "", "x", &err), TLM_EINVALID);
	assert_int_equal(tlm_journal_audit(j, "BAD", "x", "x", &err), TLM_EINVALID);
	assert_int_equal(tlm_journal_audits(j, run, audit_cb, &s, &err), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.action[0], "abandon");
	assert_string_equal(s.action[1], "teardown");
	assert_int_equal(s.detail_len[1], TLM_JOURNAL_TEXT_MAX);
	assert_int_equal(s.user_ok, 2);
	assert_int_equal(s.host_ok, 2);
	assert_int_equal(s.pid_ok, 2);
	memset(&s, 0, sizeof(s));
	assert_int_equal(tlm_journal_audits(j, NULL, audit_cb, &s, &err), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.run[1], "(null)");
	assert_string_equal(s.action[1], "reconcile-delete");
	tlm_journal_close(j);
	/* Durable: a fresh connection sees them. */
	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(tlm_journal_audits(j, NULL, audit_cb, &s, &err), 0);
	assert_int_equal(s.n, 3);
	tlm_journal_close(j);
	free(big);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_reintent(void **state)
{
	char *tmp = tlm_h_tmpdir();
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	struct res_seen s = { 0 };
	const tlm_journal_kind A = TLM_JOURNAL_AGENT;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_intent(j, run, A, "a", &err), 0);
	assert_int_equal(tlm_journal_reintent(j, run, A, "a", &err), TLM_ECONFLICT);
	assert_non_null(strstr(err.message, "intent"));
	assert_int_equal(tlm_journal_created(j, run, A, "a", "ag-1", &err), 0);
	assert_int_equal(tlm_journal_reintent(j, run, A, "a", &err), TLM_ECONFLICT);
	assert_int_equal(
		tlm_journal_set_resource_state(j, run, A, "a", TLM_JOURNAL_STARTED, NULL, &err), 0);
	assert_int_equal(tlm_journal_reintent(j, run, A, "a", &err), TLM_ECONFLICT);
	assert_int_equal(tlm_journal_set_resource_state(j, run, A, "a", TLM_JOURNAL_DELETED,
							"old error", &err),
			 0);
	assert_int_equal(tlm_journal_reintent(j, run, A, "a", &err), 0);
	assert_int_equal(tlm_journal_resources(j, run, res_cb, &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.state[0], "intent");
	assert_string_equal(s.remote[0], "(null)");
	assert_string_equal(s.err[0], "(null)");
	/* absent: allowed; abandoned: the operator's decision stands. */
	assert_int_equal(
		tlm_journal_set_resource_state(j, run, A, "a", TLM_JOURNAL_ABSENT, NULL, &err), 0);
	assert_int_equal(tlm_journal_reintent(j, run, A, "a", &err), 0);
	assert_int_equal(tlm_journal_set_resource_state(j, run, A, "a", TLM_JOURNAL_ABANDONED,
							"gave up", &err),
			 0);
	assert_int_equal(tlm_journal_reintent(j, run, A, "a", &err), TLM_ECONFLICT);
	assert_non_null(strstr(err.message, "abandoned"));
	assert_int_equal(tlm_journal_reintent(j, run, TLM_JOURNAL_TEAM, "a", &err), TLM_ENOTFOUND);
	assert_int_equal(tlm_journal_reintent(j, run, A, "nope", &err), TLM_ENOTFOUND);
	tlm_journal_close(j);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_control_plane_and_cancel(void **state)
{
	char *tmp = tlm_h_tmpdir();
	char run[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_run r;
	char first[64];
	int yes = -1;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, run, &err), 0);
	assert_int_equal(tlm_journal_run_set_control_plane(j, run, TLM_JOURNAL_BUILTIN, &err), 0);
	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
	assert_string_equal(r.control_plane, "builtin");
	tlm_journal_run_clear(&r);
	assert_int_equal(
		tlm_journal_run_set_control_plane(j, run, "https://cp.example:8443/api", &err), 0);
	/* An @ in the path is not userinfo. */
	assert_int_equal(tlm_journal_run_set_control_plane(j, run, "http://cp/a@b", &err), 0);
	assert_int_equal(tlm_journal_run_set_control_plane(
				 j, run, "https://bob:s3cret@cp.example/api", &err),
			 TLM_EINVALID);
	assert_null(strstr(err.message, "s3cret"));
	assert_null(strstr(err.message, "bob"));
	assert_int_equal(tlm_journal_run_set_control_plane(j, run, "tok@cp.example", &err),
			 TLM_EINVALID);
	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
	assert_string_equal(r.control_plane, "http://cp/a@b");
	tlm_journal_run_clear(&r);
	assert_int_equal(tlm_journal_run_set_control_plane(j, "nosuchr1", "builtin", &err),
			 TLM_ENOTFOUND);
	assert_int_equal(tlm_journal_run_set_control_plane(j, run, "", &err), TLM_EINVALID);
	/* Cancel: not asked, asked, asked again (the first time stays). */
	assert_int_equal(tlm_journal_run_cancel_requested(j, run, &yes, &err), 0);
	assert_int_equal(yes, 0);
	assert_int_equal(tlm_journal_run_request_cancel(j, run, &err), 0);
	assert_int_equal(tlm_journal_run_cancel_requested(j, run, &yes, &err), 0);
	assert_int_equal(yes, 1);
	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
	assert_non_null(r.cancel_requested_at);
	snprintf(first, sizeof(first), "%s", r.cancel_requested_at);
	tlm_journal_run_clear(&r);
	usleep(5000);
	assert_int_equal(tlm_journal_run_request_cancel(j, run, &err), 0);
	assert_int_equal(tlm_journal_run_get(j, run, &r, &err), 0);
	assert_string_equal(r.cancel_requested_at, first);
	tlm_journal_run_clear(&r);
	assert_int_equal(tlm_journal_run_request_cancel(j, "nosuchr1", &err), TLM_ENOTFOUND);
	assert_int_equal(tlm_journal_run_cancel_requested(j, "nosuchr1", &yes, &err),
			 TLM_ENOTFOUND);
	tlm_journal_close(j);
	tlm_h_rmrf(tmp);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_from_v1),
		cmocka_unit_test(test_list_runs),
		cmocka_unit_test(test_resource_counts),
		cmocka_unit_test(test_owner_rules),
		cmocka_unit_test(test_claim),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_reintent),
		cmocka_unit_test(test_control_plane_and_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
