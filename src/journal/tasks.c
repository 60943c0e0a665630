/* Tasks: one row per attempt, so a retry (a new remote task) never hides the
 * attempt before it, and resume can tell completed work from unfinished. */
#include <string.h>

#include "journal/journal_internal.h"
#include "util/crashpoint.h"

#define NOW TLM_JOURNAL__NOW

/* The arguments every task write shares. */
static int check_task(tlm_journal *j, const char *run_id, const char *team, const char *subject,
		      const char *remote_id, tlm_error *err)
{
	int rc;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__check_text(j, team, TLM_JOURNAL_NAME_MAX, "team", err)) != 0 ||
	    (rc = tlm_journal__check_text(j, subject, TLM_JOURNAL_NAME_MAX * 2 + 2, "subject",
					  err)) != 0)
		return rc;
	if (remote_id != NULL)
		return tlm_journal__check_text(j, remote_id, TLM_JOURNAL_TEXT_MAX, "remote id",
					       err);
	return 0;
}

/* ?1..?4: the attempt a statement is about. */
static void bind_task(tlm_db_stmt *q, const char *run_id, const char *team, const char *subject,
		      int attempt)
{
	tlm_db_bind_text(q, 1, run_id);
	tlm_db_bind_text(q, 2, team);
	tlm_db_bind_text(q, 3, subject);
	tlm_db_bind_int64(q, 4, attempt);
}

/* Runs an UPDATE of one attempt: TLM_ENOTFOUND when it has no row. */
static int step_update(tlm_journal *j, tlm_db_stmt *q, const char *what, const char *run_id,
		       const char *team, const char *subject, int attempt, tlm_error *err)
{
	if (tlm_db_step(q) != TLM_DB_DONE)
		return tlm_journal__db_error(j, err, what);
	if (tlm_db_changes(j->db) == 0)
		return tlm_error_set(err, TLM_ENOTFOUND, "journal %s: run %s has no task %s/%s #%d",
				     j->path, run_id, team, subject, attempt);
	return 0;
}

int tlm_journal_task_record(tlm_journal *j, const char *run_id, const char *team,
			    const char *subject, int attempt, const char *remote_id,
			    tlm_attempt_status status, tlm_error *err)
{
	tlm_journal__change c = { run_id, "task", subject, team, attempt, "", "", "" };
	tlm_db_stmt *q = NULL;
	int rc, open_tx = 0;

	if ((rc = check_task(j, run_id, team, subject, remote_id, err)) != 0)
		goto done;
	if ((unsigned)status >= TLM_ATTEMPT_STATUS_COUNT || attempt < 1) {
		rc = tlm_error_set(err, TLM_EINVALID,
				   "journal %s: bad task record (status %d, attempt %d)", j->path,
				   (int)status, attempt);
		goto done;
	}
	tlm_journal__before(j, &c);
	if ((rc = tlm_journal__begin_one(j, run_id, err)) != 0)
		goto done;
	open_tx = 1;
	rc = tlm_journal__prepare(
		j,
		"INSERT INTO tasks (run_id, team, subject, attempt, remote_id, status,"
		" updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, " NOW ")"
		" ON CONFLICT (run_id, team, subject, attempt) DO UPDATE SET"
		" remote_id = COALESCE(excluded.remote_id, tasks.remote_id),"
		" status = excluded.status, updated_at = excluded.updated_at",
		&q, err);
	if (rc != 0)
		goto done;
	bind_task(q, run_id, team, subject, attempt);
	if (remote_id != NULL)
		tlm_db_bind_text(q, 5, remote_id);
	tlm_db_bind_text(q, 6, tlm_attempt_status_name(status));
	if (tlm_journal__step_write(j, q) != TLM_DB_DONE) {
		if (tlm_db_errclass_last(j->db) == TLM_DB_EFOREIGN_KEY)
			rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path,
					   run_id);
		else
			rc = tlm_journal__db_error(j, err, "recording a task");
	}
done:
	tlm_db_finalize(q);
	if (open_tx)
		rc = tlm_journal__end(j, rc, "recording a task", err);
	if (rc == 0)
		tlm_crashpoint("journal task");
	return tlm_journal__after(j, &c, rc, err);
}

int tlm_journal_task_ended(tlm_journal *j, const char *run_id, const char *team,
			   const char *subject, int attempt, const char *remote_id,
			   const char *note, tlm_error *err)
{
	tlm_journal__change c = { run_id, "task", subject, team, attempt, "", "", "" };
	tlm_db_stmt *q = NULL;
	int rc, open_tx = 0;

	if ((rc = check_task(j, run_id, team, subject, remote_id, err)) != 0 ||
	    (rc = tlm_journal__check_text(j, note, TLM_JOURNAL_TEXT_MAX, "note", err)) != 0)
		goto done;
	tlm_journal__before(j, &c);
	if ((rc = tlm_journal__begin_one(j, run_id, err)) != 0)
		goto done;
	open_tx = 1;
	rc = tlm_journal__prepare(
		j,
		"UPDATE tasks SET ended = ?5, remote_id = COALESCE(remote_id, ?6),"
		" status = CASE WHEN status IN ('pending', 'submitted', 'running')"
		" THEN 'cancelled' ELSE status END, updated_at = " NOW
		" WHERE run_id = ?1 AND team = ?2 AND subject = ?3 AND attempt = ?4",
		&q, err);
	if (rc != 0)
		goto done;
	bind_task(q, run_id, team, subject, attempt);
	tlm_db_bind_text(q, 5, note);
	if (remote_id != NULL)
		tlm_db_bind_text(q, 6, remote_id);
	rc = step_update(j, q, "recording an ended task", run_id, team, subject, attempt, err);
done:
	tlm_db_finalize(q);
	if (open_tx)
		rc = tlm_journal__end(j, rc, "recording an ended task", err);
	return tlm_journal__after(j, &c, rc, err);
}

int tlm_journal_task_result(tlm_journal *j, const char *run_id, const char *team,
			    const char *subject, int attempt, const char *result, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, open_tx = 0;

	if ((rc = check_task(j, run_id, team, subject, NULL, err)) != 0 ||
	    (rc = tlm_journal__check_text(j, result, TLM_JOURNAL_RESULT_MAX, "task result", err)) !=
		    0 ||
	    (rc = tlm_journal__begin_one(j, run_id, err)) != 0)
		goto done;
	open_tx = 1;
	rc = tlm_journal__prepare(j,
				  "UPDATE tasks SET result = ?5 WHERE run_id = ?1 AND team = ?2"
				  " AND subject = ?3 AND attempt = ?4",
				  &q, err);
	if (rc != 0)
		goto done;
	bind_task(q, run_id, team, subject, attempt);
	tlm_db_bind_text(q, 5, result);
	/* In a batch the update is queued and its count of changes unknown:
	 * the engine records results only of attempts it read from the
	 * journal, so the row is there. */
	if (tlm_journal__queues(j))
		rc = tlm_journal__step_write(j, q) == TLM_DB_DONE
			     ? 0
			     : tlm_journal__db_error(j, err, "recording a task result");
	else
		rc = step_update(j, q, "recording a task result", run_id, team, subject, attempt,
				 err);
done:
	tlm_db_finalize(q);
	if (open_tx)
		rc = tlm_journal__end(j, rc, "recording a task result", err);
	return rc;
}

int tlm_journal_tasks(tlm_journal *j, const char *run_id, tlm_journal_task_cb cb, void *ctx,
		      tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, step;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__prepare(
		     j,
		     "SELECT team, subject, attempt, remote_id, status, updated_at, ended, result"
		     " FROM tasks WHERE run_id = ?1 ORDER BY team, subject, attempt",
		     &q, err)) != 0)
		goto done;
	tlm_db_bind_text(q, 1, run_id);
	while ((step = tlm_db_step(q)) == TLM_DB_ROW) {
		tlm_journal_task t;

		t.team = tlm_db_column_text(q, 0);
		t.subject = tlm_db_column_text(q, 1);
		t.attempt = (int)tlm_db_column_int64(q, 2);
		t.remote_id = tlm_db_column_text(q, 3);
		t.updated_at = tlm_db_column_text(q, 5);
		t.ended = tlm_db_column_text(q, 6);
		t.result = tlm_db_column_text(q, 7);
		if (t.team == NULL || t.subject == NULL || t.attempt < 1 ||
		    tlm_attempt_status_parse(tlm_db_column_text(q, 4), &t.status) != 0) {
			rc = tlm_error_set(err, TLM_EINVALID, "journal %s: corrupt task row",
					   j->path);
			goto done;
		}
		if ((rc = cb(&t, ctx)) != 0)
			goto done;
	}
	if (step != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "listing tasks");
done:
	tlm_db_finalize(q);
	return rc;
}
