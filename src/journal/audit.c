/* The audit trail: operator actions that change what the journal promises
 * (abandon, teardown, reconcile deletes, cancel), with who, where and when,
 * so a resource that was given up on can always be traced to a person. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal_internal.h"
#include "util/procid.h"

#define USER_MAX 256

/* Binds at most max bytes of s, not cutting a UTF-8 sequence. */
static int bind_capped(tlm_db_stmt *q, int i, const char *s, size_t max)
{
	size_t n = strlen(s);
	char *copy;

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	if ((copy = strndup(s, n)) == NULL)
		return -1;
	tlm_db_bind_text(q, i, copy);
	free(copy);
	return 0;
}

int tlm_journal_audit(tlm_journal *j, const char *run_id, const char *action, const char *detail,
		      tlm_error *err)
{
	tlm_journal__change c = { run_id, "run", run_id, NULL, 0, "", "", "" };
	char host[TLM_JOURNAL__HOST_MAX], user[USER_MAX];
	tlm_db_stmt *q = NULL;
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
				       " \"user\") VALUES (" TLM_JOURNAL__NOW
				       ", ?1, ?2, ?3, ?4, ?5, ?6)",
				       &q, err)) != 0)
		goto done;
	if (run_id != NULL)
		tlm_db_bind_text(q, 1, run_id);
	tlm_db_bind_text(q, 2, action);
	if (detail != NULL && bind_capped(q, 3, detail, TLM_JOURNAL_TEXT_MAX) != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "journal: out of memory");
		goto done;
	}
	tlm_db_bind_int64(q, 4, (long long)getpid());
	tlm_db_bind_text(q, 5, host);
	tlm_db_bind_text(q, 6, user);
	if (tlm_db_step(q) != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "writing an audit entry");
	else if (run_id != NULL)
		tlm_journal__before(j, &c); /* for the run's workflow */
	if (rc == 0)
		rc = tlm_journal__record(j, run_id, c.workflow[0] ? c.workflow : NULL, "action",
					 run_id, NULL, NULL, action, detail, err);
done:
	tlm_db_finalize(q);
	return rc;
}

int tlm_journal_audits(tlm_journal *j, const char *run_id, tlm_journal_audit_cb cb, void *ctx,
		       tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, step;

	if ((run_id != NULL && (rc = tlm_journal__check_run_id(j, run_id, err)) != 0) ||
	    (rc = tlm_journal__prepare(j,
				       "SELECT seq, at, run_id, action, detail, \"user\", host, pid"
				       " FROM audit WHERE ?1 IS NULL OR run_id = ?1 ORDER BY seq",
				       &q, err)) != 0)
		goto done;
	if (run_id != NULL)
		tlm_db_bind_text(q, 1, run_id);
	while ((step = tlm_db_step(q)) == TLM_DB_ROW) {
		tlm_journal_audit_entry a;

		a.seq = (long long)tlm_db_column_int64(q, 0);
		a.at = tlm_db_column_text(q, 1);
		a.run_id = tlm_db_column_text(q, 2);
		a.action = tlm_db_column_text(q, 3);
		a.detail = tlm_db_column_text(q, 4);
		a.user = tlm_db_column_text(q, 5);
		a.host = tlm_db_column_text(q, 6);
		a.pid = (long)tlm_db_column_int64(q, 7);
		if ((rc = cb(&a, ctx)) != 0)
			goto done;
	}
	if (step != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "listing audit entries");
done:
	tlm_db_finalize(q);
	return rc;
}
