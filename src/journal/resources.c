/* Resources: the write-ahead rows for agents and teams.  An intent is a row
 * before the create is sent; the remote id is written into it as soon as the
 * create answers; every later state (started, deleting, deleted, ...) is an
 * update of that same row, so teardown and recovery read one table. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_internal.h"
#include "util/crashpoint.h"

#define NOW TLM_JOURNAL__NOW

static int check_key(tlm_journal *j, const char *run_id, tlm_journal_kind kind, const char *name,
		     tlm_error *err)
{
	int rc;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0)
		return rc;
	if (kind != TLM_JOURNAL_AGENT && kind != TLM_JOURNAL_TEAM)
		return tlm_error_set(err, TLM_EINVALID, "journal %s: unknown resource kind %d",
				     j->path, (int)kind);
	return tlm_journal__check_text(j, name, TLM_JOURNAL_NAME_MAX, "resource name", err);
}

/* An insert that failed on the run's foreign key means the run is unknown;
 * one that failed on the primary key means the name is already journaled. */
static int insert_error(tlm_journal *j, const char *run_id, const char *name, tlm_error *err)
{
	tlm_db_errclass c = tlm_db_errclass_last(j->db);

	if (c == TLM_DB_EFOREIGN_KEY)
		return tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path, run_id);
	if (c == TLM_DB_EUNIQUE || c == TLM_DB_ECONSTRAINT)
		return tlm_error_set(err, TLM_ECONFLICT,
				     "journal %s: resource %s of run %s is already journaled: %s",
				     j->path, name, run_id, tlm_db_errmsg(j->db));
	return tlm_journal__db_error(j, err, "recording an intent");
}

int tlm_journal_intents(tlm_journal *j, const char *run_id, tlm_journal_kind kind,
			const char *const *names, size_t n, tlm_error *err)
{
	tlm_journal__change c = { run_id, "run", run_id, NULL, 0, "", "", "" };
	tlm_db_stmt *q = NULL;
	int rc = 0, open_tx = 0;
	size_t i;

	assert(names != NULL || n == 0);
	for (i = 0; i < n && rc == 0; i++)
		rc = check_key(j, run_id, kind, names[i], err);
	if (rc != 0 || n == 0)
		return rc;
	tlm_journal__before(j, &c); /* for the run's workflow */
	/* One transaction, one WAL fsync at COMMIT, for the whole wave. */
	if ((rc = tlm_journal__begin(j, run_id, err)) != 0)
		return rc;
	open_tx = 1;
	if ((rc = tlm_journal__prepare(
		     j,
		     "INSERT INTO resources (run_id, kind, name, state, updated_at)"
		     " VALUES (?1, ?2, ?3, 'intent', " NOW ")",
		     &q, err)) != 0)
		goto done;
	for (i = 0; i < n; i++) {
		tlm_db_bind_text(q, 1, run_id);
		tlm_db_bind_text(q, 2, tlm_journal_kind_name(kind));
		tlm_db_bind_text(q, 3, names[i]);
		if (tlm_db_step(q) != TLM_DB_DONE) {
			rc = insert_error(j, run_id, names[i], err);
			goto done;
		}
		tlm_db_reset(q);
	}
done:
	tlm_db_finalize(q);
	if (open_tx)
		rc = tlm_journal__end(j, rc, "committing intents", err);
	if (rc == 0)
		tlm_crashpoint("journal intents");
	for (i = 0; i < n && rc == 0; i++)
		rc = tlm_journal__record(j, run_id, c.workflow[0] ? c.workflow : NULL,
					 tlm_journal_kind_name(kind), names[i], NULL, "intent",
					 NULL, NULL, err);
	return rc;
}

int tlm_journal_intent(tlm_journal *j, const char *run_id, tlm_journal_kind kind, const char *name,
		       tlm_error *err)
{
	const char *names[1] = { name };

	return tlm_journal_intents(j, run_id, kind, names, 1, err);
}

/* One UPDATE of a journaled resource, fenced: ?1..?3 the key, ?4 and ?5 the
 * values. */
static int update_resource(tlm_journal *j, const char *sql, const char *run_id,
			   tlm_journal_kind kind, const char *name, const char *v4, const char *v5,
			   const char *what, tlm_error *err)
{
	tlm_journal__change c = { run_id, tlm_journal_kind_name(kind), name, NULL, 0, "", "", "" };
	tlm_db_stmt *q = NULL;
	int rc;

	if ((rc = check_key(j, run_id, kind, name, err)) != 0)
		return rc;
	tlm_journal__before(j, &c);
	if ((rc = tlm_journal__begin_one(j, run_id, err)) != 0)
		return rc;
	if ((rc = tlm_journal__prepare(j, sql, &q, err)) != 0)
		goto done;
	tlm_db_bind_text(q, 1, run_id);
	tlm_db_bind_text(q, 2, tlm_journal_kind_name(kind));
	tlm_db_bind_text(q, 3, name);
	tlm_db_bind_text(q, 4, v4);
	if (v5 != NULL)
		tlm_db_bind_text(q, 5, v5);
	if (tlm_db_step(q) != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, what);
	else if (tlm_db_changes(j->db) == 0)
		rc = tlm_error_set(err, TLM_ENOTFOUND,
				   "journal %s: %s %s of run %s was never journaled", j->path,
				   tlm_journal_kind_name(kind), name, run_id);
done:
	tlm_db_finalize(q);
	rc = tlm_journal__end(j, rc, what, err);
	if (rc == 0)
		tlm_crashpoint(what);
	return tlm_journal__after(j, &c, rc, err);
}

int tlm_journal_created(tlm_journal *j, const char *run_id, tlm_journal_kind kind, const char *name,
			const char *remote_id, tlm_error *err)
{
	int rc = tlm_journal__check_text(j, remote_id, TLM_JOURNAL_TEXT_MAX, "remote id", err);

	if (rc != 0)
		return rc;
	return update_resource(j,
			       "UPDATE resources SET remote_id = ?4, state = 'created',"
			       " last_error = NULL, updated_at = " NOW
			       " WHERE run_id = ?1 AND kind = ?2 AND name = ?3",
			       run_id, kind, name, remote_id, NULL, "recording a remote id", err);
}

int tlm_journal_set_resource_state(tlm_journal *j, const char *run_id, tlm_journal_kind kind,
				   const char *name, tlm_journal_state state,
				   const char *last_error, tlm_error *err)
{
	tlm_journal_state check;
	const char *s = tlm_journal_state_name(state);

	if (tlm_journal_state_parse(s, &check) != 0)
		return tlm_error_set(err, TLM_EINVALID, "journal %s: unknown resource state %d",
				     j->path, (int)state);
	if (last_error != NULL && strlen(last_error) > TLM_JOURNAL_TEXT_MAX)
		return tlm_error_set(err, TLM_ETOOBIG,
				     "journal %s: last error longer than %d bytes", j->path,
				     TLM_JOURNAL_TEXT_MAX);
	return update_resource(j,
			       "UPDATE resources SET state = ?4, last_error = ?5, updated_at = " NOW
			       " WHERE run_id = ?1 AND kind = ?2 AND name = ?3",
			       run_id, kind, name, s, last_error, "setting a resource's state",
			       err);
}

int tlm_journal_resources(tlm_journal *j, const char *run_id, tlm_journal_resource_cb cb, void *ctx,
			  tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, step;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__prepare(j,
				       "SELECT kind, name, remote_id, state, last_error, updated_at"
				       " FROM resources WHERE run_id = ?1 ORDER BY rowid",
				       &q, err)) != 0)
		goto done;
	tlm_db_bind_text(q, 1, run_id);
	while ((step = tlm_db_step(q)) == TLM_DB_ROW) {
		tlm_journal_resource r;

		r.name = tlm_db_column_text(q, 1);
		if (tlm_journal_kind_parse(tlm_db_column_text(q, 0), &r.kind) != 0 ||
		    tlm_journal_state_parse(tlm_db_column_text(q, 3), &r.state) != 0 ||
		    r.name == NULL || r.name[0] == '\0' || strlen(r.name) > TLM_JOURNAL_NAME_MAX) {
			rc = tlm_error_set(err, TLM_EINVALID, "journal %s: corrupt resource row",
					   j->path);
			goto done;
		}
		r.remote_id = tlm_db_column_text(q, 2);
		r.last_error = tlm_db_column_text(q, 4);
		r.updated_at = tlm_db_column_text(q, 5);
		if ((rc = cb(&r, ctx)) != 0)
			goto done;
	}
	if (step != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "listing resources");
done:
	tlm_db_finalize(q);
	return rc;
}

/* One row (run_id, state, count) of the grouped query into c; a new run
 * hands the previous one's counts to cb first. */
static int add_count(tlm_journal *j, tlm_db_stmt *q, tlm_journal_counts *c,
		     tlm_journal_counts_cb cb, void *ctx, tlm_error *err)
{
	const char *id = tlm_db_column_text(q, 0);
	tlm_journal_state s;
	int rc;

	if (tlm_journal__check_run_id(j, id, NULL) != 0 ||
	    tlm_journal_state_parse(tlm_db_column_text(q, 1), &s) != 0)
		return tlm_error_set(err, TLM_EINVALID, "journal %s: corrupt resource row",
				     j->path);
	if (c->run_id[0] != '\0' && strcmp(c->run_id, id) != 0) {
		if ((rc = cb(c, ctx)) != 0)
			return rc;
		memset(c, 0, sizeof(*c));
	}
	memcpy(c->run_id, id, TLM_JOURNAL_RUN_ID_LEN + 1);
	c->n[s] = (long)tlm_db_column_int64(q, 2);
	return 0;
}

/* ORDER BY run_id only brings each run's rows together, whatever the
 * database's collation, so that one run's counts are complete before its
 * callback. */
int tlm_journal_resource_counts(tlm_journal *j, const tlm_run_state *state, const char *workflow,
				tlm_journal_counts_cb cb, void *ctx, tlm_error *err)
{
	tlm_journal_counts c;
	tlm_db_stmt *q = NULL;
	int rc, step;

	memset(&c, 0, sizeof(c));
	if ((rc = tlm_journal__prepare_run_filter(
		     j,
		     "SELECT run_id, state, COUNT(*) FROM resources WHERE run_id IN"
		     " (SELECT id FROM runs WHERE " TLM_JOURNAL__RUN_FILTER ")"
		     " GROUP BY run_id, state ORDER BY run_id",
		     state, workflow, &q, err)) != 0)
		goto done;
	while ((step = tlm_db_step(q)) == TLM_DB_ROW)
		if ((rc = add_count(j, q, &c, cb, ctx, err)) != 0)
			goto done;
	if (step != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "counting resources");
	else if (c.run_id[0] != '\0')
		rc = cb(&c, ctx);
done:
	tlm_db_finalize(q);
	return rc;
}

/* Only a resource known to be gone may be created again: from any other
 * state a remote one may exist, and a second create under its name would
 * orphan it.  abandoned stays abandoned: the operator's word is final. */
int tlm_journal_reintent(tlm_journal *j, const char *run_id, tlm_journal_kind kind,
			 const char *name, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, step;

	rc = update_resource(j,
			     "UPDATE resources SET state = 'intent', remote_id = NULL,"
			     " last_error = NULL, updated_at = " NOW
			     " WHERE run_id = ?1 AND kind = ?2 AND name = ?3"
			     " AND state IN (?4, 'absent')",
			     run_id, kind, name, "deleted", NULL, "journaling an intent again",
			     err);
	if (rc != TLM_ENOTFOUND)
		return rc;
	/* Nothing changed: unknown, or in a state that forbids it.  Only a read. */
	if (tlm_journal__prepare(j,
				 "SELECT state FROM resources WHERE run_id = ?1 AND kind = ?2"
				 " AND name = ?3",
				 &q, NULL) != 0)
		return rc; /* keep update_resource's message */
	tlm_db_bind_text(q, 1, run_id);
	tlm_db_bind_text(q, 2, tlm_journal_kind_name(kind));
	tlm_db_bind_text(q, 3, name);
	step = tlm_db_step(q);
	if (step == TLM_DB_ROW)
		rc = tlm_error_set(err, TLM_ECONFLICT,
				   "journal %s: %s %s of run %s is %s; only a deleted or absent"
				   " resource can be created again",
				   j->path, tlm_journal_kind_name(kind), name, run_id,
				   tlm_db_column_text(q, 0));
	else if (step != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "reading a resource");
	tlm_db_finalize(q);
	return rc;
}
