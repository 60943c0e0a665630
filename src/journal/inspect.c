/* Reading a journal without changing it, for `telemachy doctor`
 * (docs/doctor.md): nothing is created, no mode tightened, no schema
 * migrated and no audit log attached, so looking cannot hide what it
 * reports. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "journal/journal_internal.h"

static int open_sqlite_readonly(tlm_journal *j, const char *dir, tlm_error *err)
{
	char msg[256];
	struct stat st;
	size_t n = strlen(dir) + sizeof("/" TLM_JOURNAL_FILE);

	if ((j->path = malloc(n)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "journal: out of memory");
	snprintf(j->path, n, "%s/%s", dir, TLM_JOURNAL_FILE);
	/* SQLite would create a missing file even read-only in some builds;
	 * looking first keeps "no journal" a finding, not a side effect. */
	if (stat(j->path, &st) != 0)
		return tlm_error_set(err, errno == ENOENT ? TLM_ENOTFOUND : TLM_ERROR,
				     "journal %s: %s", j->path, strerror(errno));
	if (tlm_db_open_sqlite(&j->db, j->path, 1, msg, sizeof(msg)) != 0)
		return tlm_error_set(err, TLM_ERROR, "journal %s: cannot open: %s", j->path, msg);
	return 0;
}

/* A database no telemachy has opened yet holds no journal: that is a
 * finding ("none yet"), as a missing SQLite file is, not an error. */
static int pg_has_journal(tlm_journal *j, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, step;

	if ((rc = tlm_journal__prepare(j, "SELECT to_regclass('schema_version') IS NOT NULL", &q,
				       err)) != 0)
		return rc;
	step = tlm_db_step(q);
	if (step != TLM_DB_ROW)
		rc = tlm_journal__db_error(j, err, "looking for the journal");
	else if (tlm_db_column_int64(q, 0) == 0)
		rc = tlm_error_set(err, TLM_ENOTFOUND,
				   "journal %s: the database holds no journal yet", j->path);
	tlm_db_finalize(q);
	return rc;
}

int tlm_journal_open_readonly(tlm_journal **out, const char *where, tlm_error *err)
{
	tlm_journal *j = NULL;
	char *loc = NULL, msg[512];
	int rc;

	*out = NULL;
	if ((rc = tlm_journal_locate(where, &loc, err)) != 0)
		goto done;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "journal: out of memory");
		goto done;
	}
	if (!tlm_journal_is_shared(loc))
		rc = open_sqlite_readonly(j, loc, err);
	else if (tlm_db_open_pg(&j->db, loc, 1, &j->path, msg, sizeof(msg)) != 0)
		rc = tlm_error_set(err, TLM_ERROR, "journal: cannot connect to PostgreSQL: %s",
				   msg);
	if (rc == 0 && tlm_journal_is_shared(loc))
		rc = pg_has_journal(j, err);
	if (rc != 0)
		goto done;
	tlm_proc_self(&j->self);
	*out = j;
	j = NULL;
done:
	tlm_journal_close(j);
	free(loc);
	return rc;
}

int tlm_journal_quick_check(tlm_journal *j, int *ok, char *detail, size_t size, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	const char *first;
	int rc;

	*ok = 0;
	if (size > 0)
		detail[0] = '\0';
	/* quick_check: the B-tree and record checks of integrity_check without
	 * the index cross-checks, which are O(N log N) on a long history.  The
	 * PostgreSQL server checks its own pages; a query that answers is all a
	 * client can ask of it. */
	if ((rc = tlm_journal__prepare(j,
				       tlm_db_which(j->db) == TLM_DB_SQLITE
					       ? "PRAGMA quick_check(1)"
					       : "SELECT 'ok' FROM schema_version LIMIT 1",
				       &q, err)) != 0)
		goto done;
	if (tlm_db_step(q) != TLM_DB_ROW) {
		rc = tlm_journal__db_error(j, err, "checking integrity");
		goto done;
	}
	first = tlm_db_column_text(q, 0);
	*ok = first != NULL && strcmp(first, "ok") == 0;
	if (size > 0)
		snprintf(detail, size, "%s", first != NULL ? first : "no answer");
done:
	tlm_db_finalize(q);
	return rc;
}
