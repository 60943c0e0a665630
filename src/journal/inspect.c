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

/* As open.c's: a run's owner may hold the write lock briefly. */
#define BUSY_TIMEOUT_MS 10000

int tlm_journal_open_readonly(tlm_journal **out, const char *dir, tlm_error *err)
{
	tlm_journal *j = NULL;
	struct stat st;
	size_t n;
	int rc = 0;

	*out = NULL;
	j = calloc(1, sizeof(*j));
	n = strlen(dir) + sizeof("/" TLM_JOURNAL_FILE);
	if (j == NULL || (j->path = malloc(n)) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "journal: out of memory");
		goto done;
	}
	snprintf(j->path, n, "%s/%s", dir, TLM_JOURNAL_FILE);
	/* SQLite would create a missing file even read-only in some builds;
	 * looking first keeps "no journal" a finding, not a side effect. */
	if (stat(j->path, &st) != 0) {
		rc = tlm_error_set(err, errno == ENOENT ? TLM_ENOTFOUND : TLM_ERROR,
				   "journal %s: %s", j->path, strerror(errno));
		goto done;
	}
	if (sqlite3_open_v2(j->path, &j->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = tlm_error_set(err, TLM_ERROR, "journal %s: cannot open: %s", j->path,
				   j->db ? sqlite3_errmsg(j->db) : "out of memory");
		goto done;
	}
	sqlite3_extended_result_codes(j->db, 0);
	sqlite3_busy_timeout(j->db, BUSY_TIMEOUT_MS);
	tlm_proc_self(&j->self);
	*out = j;
	j = NULL;
done:
	tlm_journal_close(j);
	return rc;
}

int tlm_journal_quick_check(tlm_journal *j, int *ok, char *detail, size_t size, tlm_error *err)
{
	sqlite3_stmt *q = NULL;
	const char *first;
	int rc;

	*ok = 0;
	if (size > 0)
		detail[0] = '\0';
	/* quick_check: the B-tree and record checks of integrity_check without
	 * the index cross-checks, which are O(N log N) on a long history. */
	if ((rc = tlm_journal__prepare(j, "PRAGMA quick_check(1)", &q, err)) != 0)
		goto done;
	if (sqlite3_step(q) != SQLITE_ROW) {
		rc = tlm_journal__db_error(j, err, "checking integrity");
		goto done;
	}
	first = (const char *)sqlite3_column_text(q, 0);
	*ok = first != NULL && strcmp(first, "ok") == 0;
	if (size > 0)
		snprintf(detail, size, "%s", first != NULL ? first : "no answer");
done:
	sqlite3_finalize(q);
	return rc;
}
