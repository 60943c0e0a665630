/* The helpers every file of the journal module shares: statements, errors,
 * and the checks of what a caller hands in (journal_internal.h). */
#include <string.h>
#include <unistd.h>

#include "journal/journal_internal.h"

void tlm_journal__hostname(char *buf, size_t size)
{
	/* gethostname need not terminate a truncated name */
	if (size == 0)
		return;
	if (gethostname(buf, size - 1) != 0)
		buf[0] = '\0';
	buf[size - 1] = '\0';
}

int tlm_journal__db_error(tlm_journal *j, tlm_error *err, const char *what)
{
	tlm_db_errclass c = tlm_db_errclass_last(j->db);
	int code = c == TLM_DB_EUNIQUE || c == TLM_DB_EFOREIGN_KEY || c == TLM_DB_ECONSTRAINT
			   ? TLM_ECONFLICT
			   : TLM_ERROR;

	/* A lost connection is never re-made (db_pg.c): this process can no
	 * longer prove it holds its runs, which is what being fenced means. */
	if (c == TLM_DB_ELOST)
		return tlm_error_set(
			err, TLM_EFENCED,
			"journal %s: %s: the connection to the database was lost (%s); "
			"this process no longer drives its runs",
			j->path, what, tlm_db_errmsg(j->db));

	return tlm_error_set(err, code, "journal %s: %s: %s", j->path, what, tlm_db_errmsg(j->db));
}

int tlm_journal__prepare(tlm_journal *j, const char *sql, tlm_db_stmt **q, tlm_error *err)
{
	if (tlm_db_prepare(j->db, sql, q) != 0)
		return tlm_journal__db_error(j, err, "preparing a statement");
	return 0;
}

int tlm_journal__check_text(tlm_journal *j, const char *s, size_t max, const char *what,
			    tlm_error *err)
{
	if (s == NULL || s[0] == '\0')
		return tlm_error_set(err, TLM_EINVALID, "journal %s: empty %s", j->path, what);
	if (strlen(s) > max)
		return tlm_error_set(err, TLM_ETOOBIG, "journal %s: %s longer than %zu bytes",
				     j->path, what, max);
	return 0;
}

int tlm_journal__check_run_id(tlm_journal *j, const char *run_id, tlm_error *err)
{
	size_t i;

	for (i = 0; run_id != NULL && i < TLM_JOURNAL_RUN_ID_LEN; i++) {
		char c = run_id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			break;
	}
	if (run_id == NULL || i != TLM_JOURNAL_RUN_ID_LEN || run_id[i] != '\0')
		return tlm_error_set(err, TLM_EINVALID, "journal %s: malformed run id \"%s\"",
				     j->path, run_id ? run_id : "(null)");
	return 0;
}
