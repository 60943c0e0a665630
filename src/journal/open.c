/* Opening the journal: files, pragmas, schema and its migrations (the
 * helpers every file of the module shares are in sql.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal_internal.h"

/* Version 1.  A later version adds a step to migrations[] below; never edit
 * this text once released, since migrations start from it. */
static const char schema_v1[] =
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
	"  PRIMARY KEY (run_id, team, subject, attempt));";

/* Version 2 (recovery, issue 6): where a run's resources live, cancel
 * requests through the journal, the audit trail of operator actions, and an
 * index for listing runs by state.  ALTER TABLE ... ADD COLUMN leaves existing
 * rows with NULLs, which every reader takes as "not recorded". */
static const char schema_v2[] =
	"ALTER TABLE runs ADD COLUMN control_plane TEXT;"
	"ALTER TABLE runs ADD COLUMN cancel_requested_at TEXT;"
	"CREATE TABLE audit ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, run_id TEXT,"
	"  action TEXT NOT NULL, detail TEXT, pid INTEGER, host TEXT, user TEXT);"
	"CREATE INDEX audit_run ON audit (run_id);"
	"CREATE INDEX runs_state ON runs (state);";

/* Version 3 (one owner per run, docs/internals/journal.md): the owner epoch
 * (the fencing token every claim raises) and what tells the owner process
 * apart from any other with its pid: the domain (boot id and pid namespace)
 * and its start time.  Rows of older versions read epoch 0 and no domain,
 * which the liveness rule treats as it did before. */
static const char schema_v3[] =
	"ALTER TABLE runs ADD COLUMN owner_epoch INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE runs ADD COLUMN owner_domain TEXT;"
	"ALTER TABLE runs ADD COLUMN owner_start INTEGER;";

/* Version 4 (orphaned work, docs/agamemnon.md): the note telemachy set on a
 * task attempt when it ended it on the control plane (a run that stopped
 * must not leave work for a worker to pick up).  NULL: not ended by us. */
static const char schema_v4[] = "ALTER TABLE tasks ADD COLUMN ended TEXT;";

/* Version 5 (task output, docs/logs.md): what the control plane said about
 * how an attempt ended — its "result" (the built-in server: exit status and
 * the tails of stdout and stderr), "note" and "statusMessage" — as compact
 * JSON, at most TLM_JOURNAL_RESULT_MAX bytes.  NULL: not collected. */
static const char schema_v5[] = "ALTER TABLE tasks ADD COLUMN result TEXT;";

/* Version 6 (the shared journal, docs/distributed.md): runs.state may be
 * "queued" (submitted, no owner yet).  No column changes; the version is
 * raised so that an older binary, which would take such a row for damage,
 * refuses the journal with "newer schema" instead. */
static const char schema_v6[] = "SELECT 1;";

/* Version 7 (docs/performance.md): the spec's text moves to a table of its
 * own.  In the runs row it came before the owner columns, so every fence
 * check and heartbeat read (SQLite: and rewrote) the whole spec through its
 * overflow pages — megabytes per write for a 20,000-task workflow.
 * runs.spec stays, empty, for the schemas before. */
static const char schema_v7[] =
	"CREATE TABLE run_specs (run_id TEXT PRIMARY KEY REFERENCES runs (id),"
	"  spec TEXT NOT NULL);"
	"INSERT INTO run_specs (run_id, spec) SELECT id, spec FROM runs;"
	"UPDATE runs SET spec = '';";

/* Version 8 (hooks at least once, docs/hooks.md): the run's events a hook
 * may want, written in the same batch as the state change they report, and
 * which hook has had which event.  A process that dies between the two is
 * found out by the next one to own the run, which delivers what is missing.
 * Deliveries name no foreign key: they are written outside the owner's
 * batch, by whichever process ran the hook.  BIGINT, not INTEGER: the
 * same SQL runs on PostgreSQL, where INTEGER is 32 bits (at_ms is not),
 * and SQLite gives BIGINT its 64-bit integer affinity. */
static const char schema_v8[] =
	"CREATE TABLE run_events (run_id TEXT NOT NULL REFERENCES runs (id), id TEXT NOT NULL,"
	"  kind TEXT NOT NULL, team TEXT, name TEXT, state TEXT, message TEXT,"
	"  attempt BIGINT, count BIGINT, at_ms BIGINT NOT NULL,"
	"  PRIMARY KEY (run_id, id));"
	"CREATE TABLE hook_deliveries (run_id TEXT NOT NULL, event_id TEXT NOT NULL,"
	"  hook TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (run_id, event_id, hook));";

/* migrations[v - 1] takes the schema from version v - 1 to v. */
static const char *const migrations[] = { schema_v1, schema_v2, schema_v3, schema_v4,
					  schema_v5, schema_v6, schema_v7, schema_v8 };
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(NMIGRATIONS == TLM_JOURNAL_SCHEMA_VERSION, "one migration step per schema version");

/* PostgreSQL starts at version 6 in one step: the same tables as SQLite's
 * five steps give (BIGINT for INTEGER, BIGSERIAL for the row ids, "user"
 * quoted), and the two functions the journal's SQL calls (db.h).  Timestamps
 * stay ISO-8601 text so both backends sort and print them alike; they come
 * from the database server's clock, one clock for every host's leases. */
static const char pg_schema_v6[] =
	"CREATE OR REPLACE FUNCTION tlm_now() RETURNS text LANGUAGE sql VOLATILE AS"
	" $$ SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') $$;"
	"CREATE OR REPLACE FUNCTION tlm_age_ms(ts text) RETURNS bigint LANGUAGE sql VOLATILE AS"
	" $$ SELECT CASE WHEN ts IS NULL THEN -1 ELSE GREATEST(0, (EXTRACT(EPOCH FROM"
	" clock_timestamp() - ts::timestamptz) * 1000)::bigint) END $$;"
	"CREATE TABLE runs ("
	"  id TEXT PRIMARY KEY, workflow TEXT NOT NULL, spec_hash TEXT NOT NULL,"
	"  spec TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL, owner_pid BIGINT, owner_host TEXT, heartbeat_at TEXT,"
	"  control_plane TEXT, cancel_requested_at TEXT,"
	"  owner_epoch BIGINT NOT NULL DEFAULT 0, owner_domain TEXT, owner_start BIGINT);"
	"CREATE INDEX runs_created ON runs (created_at);"
	"CREATE INDEX runs_state ON runs (state);"
	"CREATE TABLE resources ("
	"  rowid BIGSERIAL, run_id TEXT NOT NULL REFERENCES runs (id),"
	"  kind TEXT NOT NULL CHECK (kind IN ('agent', 'team')),"
	"  name TEXT NOT NULL, remote_id TEXT,"
	"  state TEXT NOT NULL CHECK (state IN ('intent', 'created', 'started', 'deleting',"
	"    'deleted', 'absent', 'abandoned')),"
	"  last_error TEXT, updated_at TEXT NOT NULL,"
	"  PRIMARY KEY (run_id, kind, name));"
	"CREATE TABLE tasks ("
	"  run_id TEXT NOT NULL REFERENCES runs (id), team TEXT NOT NULL,"
	"  subject TEXT NOT NULL, attempt BIGINT NOT NULL CHECK (attempt >= 1),"
	"  remote_id TEXT, status TEXT NOT NULL, updated_at TEXT NOT NULL,"
	"  ended TEXT, result TEXT,"
	"  PRIMARY KEY (run_id, team, subject, attempt));"
	"CREATE TABLE audit ("
	"  seq BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, run_id TEXT,"
	"  action TEXT NOT NULL, detail TEXT, pid BIGINT, host TEXT, \"user\" TEXT);"
	"CREATE INDEX audit_run ON audit (run_id);";

/* The step from version v and the version it reaches; NULL: none known. */
static const char *step_from(const tlm_journal *j, int v, int *to)
{
	*to = v + 1;
	if (tlm_db_which(j->db) == TLM_DB_SQLITE)
		return v < NMIGRATIONS ? migrations[v] : NULL;
	if (v == 0) {
		*to = 6;
		return pg_schema_v6;
	}
	if (v == 6)
		return schema_v7; /* the same SQL on both */
	if (v == 7)
		return schema_v8;
	return NULL; /* later versions add their PostgreSQL steps here */
}

static int exec(tlm_journal *j, const char *sql, const char *what, tlm_error *err)
{
	if (tlm_db_exec(j->db, sql) != 0)
		return tlm_journal__db_error(j, err, what);
	return 0;
}

int tlm_journal_schema_version(tlm_journal *j, int *out, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc;

	*out = 0;
	rc = tlm_journal__prepare(j, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &q,
				  err);
	if (rc != 0)
		goto done;
	if (tlm_db_step(q) != TLM_DB_ROW) {
		rc = tlm_journal__db_error(j, err, "reading the schema version");
		goto done;
	}
	*out = (int)tlm_db_column_int64(q, 0);
done:
	tlm_db_finalize(q);
	return rc;
}

/* Checks the recorded version against what this build knows. */
static int check_version(tlm_journal *j, int version, tlm_error *err)
{
	if (version < 0)
		return tlm_error_set(err, TLM_EINVALID, "journal %s: corrupt: schema version %d",
				     j->path, version);
	if (version > NMIGRATIONS)
		return tlm_error_set(err, TLM_ECONFLICT,
				     "journal %s: schema version %d is newer than this build "
				     "understands (%d); use a newer telemachy",
				     j->path, version, NMIGRATIONS);
	return 0;
}

/* All the steps and their version rows commit in one transaction, so a
 * crash mid-migration leaves the previous version intact, and two processes
 * opening a fresh journal at once do not both migrate: BEGIN IMMEDIATE
 * serialises them on SQLite, a transaction-scoped advisory lock on
 * PostgreSQL (where CREATE TABLE IF NOT EXISTS alone can race). */
/* 1 when the journal is at this build's version already — every open but
 * a journal's first: a plain read, so that `status`, `list` or a hook's
 * ledger connection does not take the write lock to find nothing to do.
 * Anything else (no table yet, older, newer, an error) takes the locked
 * path below, which decides. */
static int up_to_date(tlm_journal *j)
{
	tlm_db_stmt *q = NULL;
	long long v = -1;

	if (tlm_db_prepare(j->db, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &q) != 0)
		return 0;
	if (tlm_db_step(q) == TLM_DB_ROW)
		v = tlm_db_column_int64(q, 0);
	tlm_db_finalize(q);
	return v == NMIGRATIONS;
}

int tlm_journal__migrate(tlm_journal *j, tlm_error *err)
{
	char sql[96];
	const char *step;
	int rc, version = 0, to;

	if (up_to_date(j))
		return 0;
	if (tlm_db_begin(j->db) != 0)
		return tlm_journal__db_error(j, err, "starting a migration");
	if ((tlm_db_which(j->db) == TLM_DB_POSTGRES &&
	     (rc = exec(j, "SELECT pg_advisory_xact_lock(7305)", "locking the schema", err)) !=
		     0) ||
	    (rc = exec(j, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)",
		       "creating schema_version", err)) != 0 ||
	    (rc = tlm_journal_schema_version(j, &version, err)) != 0 ||
	    (rc = check_version(j, version, err)) != 0)
		goto fail;
	while (version < NMIGRATIONS && (step = step_from(j, version, &to)) != NULL) {
		snprintf(sql, sizeof(sql), "INSERT INTO schema_version (version) VALUES (%d)", to);
		if ((rc = exec(j, step, "migrating the schema", err)) != 0 ||
		    (rc = exec(j, sql, "recording the schema version", err)) != 0)
			goto fail;
		version = to;
	}
	if (tlm_db_commit(j->db) != 0) {
		rc = tlm_journal__db_error(j, err, "committing a migration");
		goto fail;
	}
	return 0;
fail:
	tlm_db_rollback(j->db);
	return rc;
}

/* The database file's directory entry must itself be durable, or a power
 * loss right after the first run could lose the whole file. */
static int sync_dir(const char *dir, tlm_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 || fsync(fd) != 0)
		rc = tlm_error_set(err, TLM_ERROR, "journal: cannot sync state directory %s: %s",
				   dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The SQLite journal in dir: the directory, the 0600 file, WAL. */
static int open_sqlite(tlm_journal *j, const char *dir, tlm_error *err)
{
	char msg[256];
	size_t n = strlen(dir) + sizeof("/" TLM_JOURNAL_FILE);
	int rc;

	if ((rc = tlm_journal__make_dir(dir, err)) != 0)
		return rc;
	if ((j->path = malloc(n)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "journal: out of memory");
	snprintf(j->path, n, "%s/%s", dir, TLM_JOURNAL_FILE);
	if ((rc = tlm_journal__make_db_file(j->path, err)) != 0 || (rc = sync_dir(dir, err)) != 0)
		return rc;
	if (tlm_db_open_sqlite(&j->db, j->path, 0, msg, sizeof(msg)) != 0)
		return tlm_error_set(err, TLM_ERROR, "journal %s: cannot open: %s", j->path, msg);
	/* WAL + FULL: every commit fsyncs the WAL before returning, which is what
	 * makes "durable before returning" true.  journal_mode reports the mode it
	 * got, so a filesystem without WAL support is caught, not ignored. */
	{
		tlm_db_stmt *q = NULL;
		const char *mode;

		if ((rc = tlm_journal__prepare(j, "PRAGMA journal_mode=WAL", &q, err)) != 0)
			return rc;
		mode = tlm_db_step(q) == TLM_DB_ROW ? tlm_db_column_text(q, 0) : NULL;
		if (mode == NULL || strcmp(mode, "wal") != 0)
			rc = tlm_error_set(err, TLM_ERROR, "journal %s: cannot use WAL mode: %s",
					   j->path, mode ? mode : tlm_db_errmsg(j->db));
		tlm_db_finalize(q);
		if (rc != 0)
			return rc;
	}
	return exec(j, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", "setting pragmas", err);
}

/* The PostgreSQL journal: every commit is durable when the server has
 * flushed its WAL, which is the server's default (synchronous_commit on). */
static int open_pg(tlm_journal *j, const char *conninfo, int readonly, tlm_error *err)
{
	char msg[512];

	if (tlm_db_open_pg(&j->db, conninfo, readonly, &j->path, msg, sizeof(msg)) != 0)
		return tlm_error_set(err, TLM_ERROR, "journal: cannot connect to PostgreSQL: %s",
				     msg);
	return 0;
}

int tlm_journal_open(tlm_journal **out, const char *where, tlm_error *err)
{
	tlm_journal *j = NULL;
	char *loc = NULL;
	int rc;

	*out = NULL;
	if ((rc = tlm_journal_locate(where, &loc, err)) != 0)
		goto done;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "journal: out of memory");
		goto done;
	}
	if (tlm_journal_is_shared(loc))
		rc = open_pg(j, loc, 0, err);
	else
		rc = open_sqlite(j, loc, err);
	if (rc != 0)
		goto done;
	tlm_proc_self(&j->self);
	if ((rc = tlm_journal__migrate(j, err)) != 0 ||
	    (rc = tlm_journal__attach_default(j, err)) != 0)
		goto done;
	*out = j;
	j = NULL;
done:
	tlm_journal_close(j);
	free(loc);
	return rc;
}

void tlm_journal_close(tlm_journal *j)
{
	if (j == NULL)
		return;
	tlm_journal__batch_close(j);
	tlm_db_finalize(j->epoch_q);
	tlm_db_close(j->db);
	tlm_auditlog_free(j->trail);
	free(j->held);
	free(j->path);
	free(j);
}

const char *tlm_journal_path(const tlm_journal *j)
{
	return j->path;
}
