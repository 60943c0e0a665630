/* Run events and hook deliveries (schema version 8, docs/hooks.md "At
 * least once"): the owner writes a run's final events in the batch of the
 * state change they report, so an event is journaled exactly when what it
 * says is; whoever runs a hook records the delivery afterwards.  What is
 * journaled and not recorded delivered is what the next owner delivers. */
#include <string.h>

#include "journal/journal_internal.h"

#define NOW TLM_JOURNAL__NOW

#define HOOK_KEY_MAX 64

static int check_event(tlm_journal *j, const char *run_id, const tlm_journal_event *ev,
		       tlm_error *err)
{
	int rc;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0)
		return rc;
	if (ev->id == NULL || ev->kind == NULL || ev->state == NULL)
		return tlm_error_set(err, TLM_EINVALID,
				     "journal %s: an event needs id, kind, state", j->path);
	if ((rc = tlm_journal__check_text(j, ev->id, TLM_JOURNAL_TEXT_MAX, "event id", err)) != 0 ||
	    (rc = tlm_journal__check_text(j, ev->kind, TLM_JOURNAL_NAME_MAX, "event kind", err)) !=
		    0 ||
	    (rc = tlm_journal__check_text(j, ev->state, TLM_JOURNAL_NAME_MAX, "event state",
					  err)) != 0)
		return rc;
	if (ev->message != NULL && ev->message[0] != '\0' &&
	    (rc = tlm_journal__check_text(j, ev->message, TLM_JOURNAL_TEXT_MAX, "event message",
					  err)) != 0)
		return rc;
	return 0;
}

int tlm_journal_event_put(tlm_journal *j, const char *run_id, const tlm_journal_event *ev,
			  tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc;

	if ((rc = check_event(j, run_id, ev, err)) != 0 ||
	    (rc = tlm_journal__begin_one(j, run_id, err)) != 0)
		return rc;
	rc = tlm_journal__prepare(
		j,
		"INSERT INTO run_events (run_id, id, kind, team, name, state, message, attempt,"
		" count, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
		" ON CONFLICT (run_id, id) DO NOTHING",
		&q, err);
	if (rc == 0) {
		tlm_db_bind_text(q, 1, run_id);
		tlm_db_bind_text(q, 2, ev->id);
		tlm_db_bind_text(q, 3, ev->kind);
		tlm_db_bind_text(q, 4, ev->team);
		tlm_db_bind_text(q, 5, ev->name);
		tlm_db_bind_text(q, 6, ev->state);
		tlm_db_bind_text(
			q, 7, ev->message != NULL && ev->message[0] != '\0' ? ev->message : NULL);
		tlm_db_bind_int64(q, 8, ev->attempt);
		tlm_db_bind_int64(q, 9, ev->count);
		tlm_db_bind_int64(q, 10, (long long)ev->at_ms);
		if (tlm_journal__step_write(j, q) != TLM_DB_DONE)
			rc = tlm_journal__db_error(j, err, "recording an event");
	}
	tlm_db_finalize(q);
	return tlm_journal__end(j, rc, "recording an event", err);
}

int tlm_journal_events(tlm_journal *j, const char *run_id, tlm_journal_event_cb cb, void *ctx,
		       tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, step;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__prepare(
		     j,
		     "SELECT id, kind, team, name, state, message, attempt, count,"
		     " at_ms FROM run_events WHERE run_id = ?1 ORDER BY at_ms, id",
		     &q, err)) != 0)
		goto done;
	tlm_db_bind_text(q, 1, run_id);
	while ((step = tlm_db_step(q)) == TLM_DB_ROW) {
		tlm_journal_event ev;

		ev.id = tlm_db_column_text(q, 0);
		ev.kind = tlm_db_column_text(q, 1);
		ev.team = tlm_db_column_text(q, 2);
		ev.name = tlm_db_column_text(q, 3);
		ev.state = tlm_db_column_text(q, 4);
		ev.message = tlm_db_column_text(q, 5);
		ev.attempt = (int)tlm_db_column_int64(q, 6);
		ev.count = tlm_db_column_int64(q, 7);
		ev.at_ms = (unsigned long long)tlm_db_column_int64(q, 8);
		if (ev.id == NULL || ev.kind == NULL || ev.state == NULL) {
			rc = tlm_error_set(err, TLM_EINVALID, "journal %s: corrupt event row",
					   j->path);
			goto done;
		}
		if ((rc = cb(&ev, ctx)) != 0)
			goto done;
	}
	if (step != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "listing events");
done:
	tlm_db_finalize(q);
	return rc;
}

static int check_delivery(tlm_journal *j, const char *run_id, const char *event_id,
			  const char *hook, tlm_error *err)
{
	int rc;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__check_text(j, event_id, TLM_JOURNAL_TEXT_MAX, "event id", err)) != 0)
		return rc;
	return tlm_journal__check_text(j, hook, HOOK_KEY_MAX, "hook key", err);
}

int tlm_journal_delivery_put(tlm_journal *j, const char *run_id, const char *event_id,
			     const char *hook, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc;

	if ((rc = check_delivery(j, run_id, event_id, hook, err)) != 0)
		return rc;
	/* One statement, its own transaction: durable when it returns. */
	rc = tlm_journal__prepare(j,
				  "INSERT INTO hook_deliveries (run_id, event_id, hook, at)"
				  " VALUES (?1, ?2, ?3, " NOW ")"
				  " ON CONFLICT (run_id, event_id, hook) DO NOTHING",
				  &q, err);
	if (rc == 0) {
		tlm_db_bind_text(q, 1, run_id);
		tlm_db_bind_text(q, 2, event_id);
		tlm_db_bind_text(q, 3, hook);
		if (tlm_db_step(q) != TLM_DB_DONE)
			rc = tlm_journal__db_error(j, err, "recording a hook delivery");
	}
	tlm_db_finalize(q);
	return rc;
}

int tlm_journal_delivery_get(tlm_journal *j, const char *run_id, const char *event_id,
			     const char *hook, int *delivered, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, step;

	*delivered = 0;
	if ((rc = check_delivery(j, run_id, event_id, hook, err)) != 0)
		return rc;
	rc = tlm_journal__prepare(j,
				  "SELECT 1 FROM hook_deliveries WHERE run_id = ?1"
				  " AND event_id = ?2 AND hook = ?3",
				  &q, err);
	if (rc == 0) {
		tlm_db_bind_text(q, 1, run_id);
		tlm_db_bind_text(q, 2, event_id);
		tlm_db_bind_text(q, 3, hook);
		step = tlm_db_step(q);
		if (step == TLM_DB_ROW)
			*delivered = 1;
		else if (step != TLM_DB_DONE)
			rc = tlm_journal__db_error(j, err, "reading a hook delivery");
	}
	tlm_db_finalize(q);
	return rc;
}
