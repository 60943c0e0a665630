/* The journal's half of the audit log (docs/audit.md): every state-changing
 * call that succeeded appends one record, after its SQLite commit, through
 * the handle's tlm_auditlog.  Here, so that every command that writes the
 * journal (run, resume, teardown, cancel, abandon, reconcile) records through
 * one place.  The state before a change is read before the write, the state
 * after it read back once committed: what the record says is what the
 * journal holds, whatever CASE or COALESCE the write used. */
#include <stdio.h>
#include <string.h>

#include "journal/journal_internal.h"

static const char *default_path; /* tlm_journal_set_default_audit_log */

void tlm_journal_set_default_audit_log(const char *path)
{
	default_path = path;
}

int tlm_journal__attach_default(tlm_journal *j, tlm_error *err)
{
	return default_path != NULL ? tlm_journal_set_audit_log(j, default_path, err) : 0;
}

int tlm_journal_set_audit_log(tlm_journal *j, const char *path, tlm_error *err)
{
	tlm_auditlog *a = NULL;
	int rc;

	if (path != NULL && (rc = tlm_auditlog_open(&a, path, err)) != 0)
		return rc;
	tlm_auditlog_free(j->trail);
	j->trail = a;
	return 0;
}

const char *tlm_journal_audit_log(const tlm_journal *j)
{
	return j->trail != NULL ? tlm_auditlog_path(j->trail) : NULL;
}

/* The state column and its row for c's kind; workflow comes from runs. */
static const char *state_sql(const tlm_journal__change *c)
{
	if (strcmp(c->kind, "task") == 0)
		return "SELECT r.workflow, t.status, t.ended FROM runs r LEFT JOIN tasks t ON"
		       " t.run_id = r.id AND t.team = ?2 AND t.subject = ?3 AND t.attempt = ?4"
		       " WHERE r.id = ?1";
	if (strcmp(c->kind, "agent") == 0 || strcmp(c->kind, "team") == 0)
		return "SELECT r.workflow, x.state, x.last_error FROM runs r LEFT JOIN resources x"
		       " ON x.run_id = r.id AND x.kind = ?2 AND x.name = ?3 WHERE r.id = ?1";
	return "SELECT workflow, state, NULL FROM runs WHERE id = ?1";
}

/* Reads c's workflow, and its state and detail into state/detail. */
static int read_state(tlm_journal *j, tlm_journal__change *c, char *state, size_t state_size,
		      tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	const char *s;
	int rc;

	state[0] = '\0';
	if ((rc = tlm_journal__prepare(j, state_sql(c), &q, err)) != 0)
		return rc;
	tlm_db_bind_text(q, 1, c->run_id);
	tlm_db_bind_text(q, 2, c->team ? c->team : c->kind);
	tlm_db_bind_text(q, 3, c->name);
	tlm_db_bind_int64(q, 4, c->attempt);
	if (tlm_db_step(q) != TLM_DB_ROW) {
		rc = tlm_journal__db_error(j, err, "reading a state for the audit log");
		goto done;
	}
	if ((s = tlm_db_column_text(q, 0)) != NULL)
		snprintf(c->workflow, sizeof(c->workflow), "%s", s);
	if ((s = tlm_db_column_text(q, 1)) != NULL)
		snprintf(state, state_size, "%s", s);
	if ((s = tlm_db_column_text(q, 2)) != NULL)
		snprintf(c->detail, sizeof(c->detail), "%s", s);
done:
	tlm_db_finalize(q);
	return rc;
}

void tlm_journal__before(tlm_journal *j, tlm_journal__change *c)
{
	c->from[0] = '\0';
	c->detail[0] = '\0';
	c->workflow[0] = '\0';
	/* A failed read leaves from empty ("unknown"): the write that follows
	 * reports any real trouble with the database. */
	if (j->trail != NULL)
		read_state(j, c, c->from, sizeof(c->from), NULL);
}

int tlm_journal__record(tlm_journal *j, const char *run_id, const char *workflow, const char *kind,
			const char *name, const char *from, const char *to, const char *action,
			const char *detail, tlm_error *err)
{
	tlm_auditlog_event ev = { run_id, workflow, kind, name, from, to, action, detail };

	if (j->trail == NULL)
		return 0;
	/* Batched: recorded once the change is committed (batch.c). */
	if (j->batch_open)
		return tlm_journal__batch_queue(j, &ev) == 0
			       ? 0
			       : tlm_error_set(err, TLM_ERROR, "journal: out of memory");
	return tlm_auditlog_append(j->trail, &ev, err);
}

int tlm_journal__after(tlm_journal *j, tlm_journal__change *c, int rc, tlm_error *err)
{
	char to[sizeof(c->from)], name[TLM_JOURNAL_NAME_MAX * 3 + 32];
	const char *shown = c->name;

	if (rc != 0 || j->trail == NULL)
		return rc;
	c->detail[0] = '\0';
	if ((rc = read_state(j, c, to, sizeof(to), err)) != 0)
		return rc;
	if (strcmp(c->from, to) == 0)
		return 0; /* not a state change (a remote id, a repeated status) */
	if (c->team != NULL) {
		snprintf(name, sizeof(name), "%s/%s#%d", c->team, c->name, c->attempt);
		shown = name;
	}
	return tlm_journal__record(j, c->run_id, c->workflow[0] ? c->workflow : NULL, c->kind,
				   shown, c->from[0] ? c->from : NULL, to, NULL,
				   c->detail[0] ? c->detail : NULL, err);
}
