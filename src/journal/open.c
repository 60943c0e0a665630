/* Opening the journal: files, pragmas, schema and its migrations (the
 * helpers every file of the module shares are in sql.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal_internal.h"

/* Another process (`status`, a second run) may hold the write lock briefly;
 * waiting this long beats failing a write the engine cannot do without. */
#define BUSY_TIMEOUT_MS 10000

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

/* migrations[v - 1] takes the schema from version v - 1 to v. */
static const char *const migrations[] = { schema_v1, schema_v2, schema_v3, schema_v4, schema_v5 };
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(NMIGRATIONS == TLM_JOURNAL_SCHEMA_VERSION, "one migration step per schema version");

static int exec(tlm_journal *j, const char *sql, const char *what, tlm_error *err)
{
	if (sqlite3_exec(j->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return tlm_journal__db_error(j, err, what);
	return 0;
}

int tlm_journal_schema_version(tlm_journal *j, int *out, tlm_error *err)
{
	sqlite3_stmt *q = NULL;
	int rc;

	*out = 0;
	rc = tlm_journal__prepare(j, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &q,
				  err);
	if (rc != 0)
		goto done;
	if (sqlite3_step(q) != SQLITE_ROW) {
		rc = tlm_journal__db_error(j, err, "reading the schema version");
		goto done;
	}
	*out = sqlite3_column_int(q, 0);
done:
	sqlite3_finalize(q);
	return rc;
}

/* Each step and its version row commit together, so a crash mid-migration
 * leaves the previous version intact, and two processes opening a fresh
 * journal at once do not both migrate (BEGIN IMMEDIATE serialises them). */
int tlm_journal__migrate(tlm_journal *j, tlm_error *err)
{
	char sql[96];
	int rc, version = 0;

	rc = exec(j, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)",
		  "creating schema_version", err);
	if (rc != 0)
		return rc;
	for (;;) {
		if ((rc = exec(j, "BEGIN IMMEDIATE", "starting a migration", err)) != 0)
			return rc;
		if ((rc = tlm_journal_schema_version(j, &version, err)) != 0)
			goto fail;
		if (version < 0) {
			rc = tlm_error_set(err, TLM_EINVALID,
					   "journal %s: corrupt: schema version %d", j->path,
					   version);
			goto fail;
		}
		if (version > NMIGRATIONS) {
			rc = tlm_error_set(err, TLM_ECONFLICT,
					   "journal %s: schema version %d is newer than this build "
					   "understands (%d); use a newer telemachy",
					   j->path, version, NMIGRATIONS);
			goto fail;
		}
		if (version == NMIGRATIONS)
			return exec(j, "COMMIT", "ending the schema check", err);
		snprintf(sql, sizeof(sql), "INSERT INTO schema_version (version) VALUES (%d)",
			 version + 1);
		if ((rc = exec(j, migrations[version], "migrating the schema", err)) != 0 ||
		    (rc = exec(j, sql, "recording the schema version", err)) != 0 ||
		    (rc = exec(j, "COMMIT", "committing a migration", err)) != 0)
			goto fail;
	}
fail:
	sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
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

int tlm_journal_open(tlm_journal **out, const char *dir, tlm_error *err)
{
	tlm_journal *j = NULL;
	char *owned_dir = NULL;
	size_t n;
	int rc;

	*out = NULL;
	if (dir == NULL) {
		if ((rc = tlm_journal_default_dir(&owned_dir, err)) != 0)
			goto done;
		dir = owned_dir;
	}
	if ((rc = tlm_journal__make_dir(dir, err)) != 0)
		goto done;
	j = calloc(1, sizeof(*j));
	n = strlen(dir) + sizeof("/" TLM_JOURNAL_FILE);
	if (j == NULL || (j->path = malloc(n)) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "journal: out of memory");
		goto done;
	}
	snprintf(j->path, n, "%s/%s", dir, TLM_JOURNAL_FILE);
	if ((rc = tlm_journal__make_db_file(j->path, err)) != 0 || (rc = sync_dir(dir, err)) != 0)
		goto done;
	if (sqlite3_open_v2(j->path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = tlm_error_set(err, TLM_ERROR, "journal %s: cannot open: %s", j->path,
				   j->db ? sqlite3_errmsg(j->db) : "out of memory");
		goto done;
	}
	sqlite3_extended_result_codes(j->db, 0);
	sqlite3_busy_timeout(j->db, BUSY_TIMEOUT_MS);
	/* WAL + FULL: every commit fsyncs the WAL before returning, which is what
	 * makes "durable before returning" true.  journal_mode reports the mode it
	 * got, so a filesystem without WAL support is caught, not ignored. */
	{
		sqlite3_stmt *q = NULL;
		const char *mode;

		if ((rc = tlm_journal__prepare(j, "PRAGMA journal_mode=WAL", &q, err)) != 0)
			goto done;
		mode = sqlite3_step(q) == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0)
						     : NULL;
		if (mode == NULL || strcmp(mode, "wal") != 0) {
			rc = tlm_error_set(err, TLM_ERROR, "journal %s: cannot use WAL mode: %s",
					   j->path, mode ? mode : sqlite3_errmsg(j->db));
			sqlite3_finalize(q);
			goto done;
		}
		sqlite3_finalize(q);
	}
	tlm_proc_self(&j->self);
	if ((rc = exec(j, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", "setting pragmas",
		       err)) != 0 ||
	    (rc = tlm_journal__migrate(j, err)) != 0 ||
	    (rc = tlm_journal__attach_default(j, err)) != 0)
		goto done;
	*out = j;
	j = NULL;
done:
	tlm_journal_close(j);
	free(owned_dir);
	return rc;
}

void tlm_journal_close(tlm_journal *j)
{
	if (j == NULL)
		return;
	sqlite3_finalize(j->epoch_q);
	sqlite3_close(j->db);
	tlm_auditlog_free(j->trail);
	free(j->held);
	free(j->path);
	free(j);
}

const char *tlm_journal_path(const tlm_journal *j)
{
	return j->path;
}
