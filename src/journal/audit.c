/* The audit trail: operator actions that change what the journal promises
 * (abandon, teardown, reconcile deletes, cancel), with who, where and when,
 * so a resource that was given up on can always be traced to a person. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal_internal.h"
#include "util/procid.h"

#define USER_MAX 256

/* The length of at most max bytes of s, not cutting a UTF-8 sequence. */
static int capped_len(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return (int)n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return (int)n;
}

int tlm_journal_audit(tlm_journal *j, const char *run_id, const char *action, const char *detail,
		      tlm_error *err)
{
	tlm_journal__change c = { run_id, "run", run_id, NULL, 0, "", "", "" };
	char host[TLM_JOURNAL__HOST_MAX], user[USER_MAX];
	sqlite3_stmt *q = NULL;
	int rc;

	if ((run_id != NULL && (rc = tlm_journal__check_run_id(j, run_id, err)) != 0) ||
	    (rc = tlm_journal__check_text(j, action, TLM_JOURNAL_NAME_MAX, "audit action", err)) !=
		    0)
		goto done;
	tlm_journal__hostname(host, sizeof(host));
	tlm_proc_user(user, sizeof(user));
	/* One INSERT in autocommit mode: its own transaction, fsynced at commit. */
	if ((rc = tlm_journal__prepare(j,
				       "INSERT INTO audit (at, run_id, action, detail, pid, host,"
				       " user) VALUES (" TLM_JOURNAL__NOW
				       ", ?1, ?2, ?3, ?4, ?5, ?6)",
				       &q, err)) != 0)
		goto done;
	if (run_id != NULL)
		sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, action, -1, SQLITE_STATIC);
	if (detail != NULL)
		sqlite3_bind_text(q, 3, detail, capped_len(detail, TLM_JOURNAL_TEXT_MAX),
				  SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)getpid());
	sqlite3_bind_text(q, 5, host, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, user, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = tlm_journal__db_error(j, err, "writing an audit entry");
	else if (run_id != NULL)
		tlm_journal__before(j, &c); /* for the run's workflow */
	if (rc == 0)
		rc = tlm_journal__record(j, run_id, c.workflow[0] ? c.workflow : NULL, "action",
					 run_id, NULL, NULL, action, detail, err);
done:
	sqlite3_finalize(q);
	return rc;
}

int tlm_journal_audits(tlm_journal *j, const char *run_id, tlm_journal_audit_cb cb, void *ctx,
		       tlm_error *err)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	if ((run_id != NULL && (rc = tlm_journal__check_run_id(j, run_id, err)) != 0) ||
	    (rc = tlm_journal__prepare(j,
				       "SELECT seq, at, run_id, action, detail, user, host, pid"
				       " FROM audit WHERE ?1 IS NULL OR run_id = ?1 ORDER BY seq",
				       &q, err)) != 0)
		goto done;
	if (run_id != NULL)
		sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		tlm_journal_audit_entry a;

		a.seq = (long long)sqlite3_column_int64(q, 0);
		a.at = (const char *)sqlite3_column_text(q, 1);
		a.run_id = (const char *)sqlite3_column_text(q, 2);
		a.action = (const char *)sqlite3_column_text(q, 3);
		a.detail = (const char *)sqlite3_column_text(q, 4);
		a.user = (const char *)sqlite3_column_text(q, 5);
		a.host = (const char *)sqlite3_column_text(q, 6);
		a.pid = (long)sqlite3_column_int64(q, 7);
		if ((rc = cb(&a, ctx)) != 0)
			goto done;
	}
	if (step != SQLITE_DONE)
		rc = tlm_journal__db_error(j, err, "listing audit entries");
done:
	sqlite3_finalize(q);
	return rc;
}
