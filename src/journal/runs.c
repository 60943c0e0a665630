/* Runs: the id that names every resource, the spec copy, the state, and the
 * owner (pid, host, heartbeat) that recovery uses to tell live from dead. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal_internal.h"
#include "telemachy/metrics.h"
#include "util/crashpoint.h"

#define NOW TLM_JOURNAL__NOW

/* Ids collide with probability ~n^2 / 36^8; a few retries make a clash with
 * an existing run a non-event rather than an error. */
#define RUN_ID_TRIES 8

/* The spec's text, from its own table (schema 7, open.c). */
#define RUN_SPEC "(SELECT spec FROM run_specs WHERE run_id = runs.id)"

static int new_run_id(char out[TLM_JOURNAL_RUN_ID_LEN + 1])
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t i = 0;

	/* Rejection sampling: 252 = 7 * 36, so every character is equally likely. */
	while (i < TLM_JOURNAL_RUN_ID_LEN) {
		unsigned char b[16];

		if (RAND_bytes(b, sizeof(b)) != 1)
			return -1;
		for (size_t k = 0; k < sizeof(b) && i < TLM_JOURNAL_RUN_ID_LEN; k++)
			if (b[k] < 252)
				out[i++] = alphabet[b[k] % 36];
	}
	out[i] = '\0';
	return 0;
}

static int sha256_hex(const char *text, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	if (EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		return -1;
	for (unsigned int i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* The audit record of a new run: the spec's hash, never its text (a spec
 * may carry env values). */
static int record_new(tlm_journal *j, const char *run_id, const char *workflow, const char *hash,
		      const char *state, tlm_error *err)
{
	char detail[96];

	snprintf(detail, sizeof(detail), "spec sha256 %s", hash);
	return tlm_journal__record(j, run_id, workflow, "run", run_id, NULL, state, NULL, detail,
				   err);
}

/* The run's row (q, bound but for nothing of the spec) and its spec's row,
 * in one transaction.  TLM_DB_DONE, or TLM_DB_FAIL with the transaction
 * still open, so that the caller reads the error (a taken id: EUNIQUE)
 * before it rolls back. */
static int insert_both(tlm_journal *j, tlm_db_stmt *q, const char *run_id, const char *spec_text)
{
	tlm_db_stmt *s = NULL;
	int step = TLM_DB_FAIL;

	if (tlm_db_begin(j->db) != 0)
		return TLM_DB_FAIL;
	step = tlm_db_step(q);
	tlm_db_reset(q);
	if (step == TLM_DB_DONE &&
	    tlm_db_prepare(j->db, "INSERT INTO run_specs (run_id, spec) VALUES (?1, ?2)", &s) ==
		    0) {
		tlm_db_bind_text(s, 1, run_id);
		tlm_db_bind_text(s, 2, spec_text);
		step = tlm_db_step(s);
		tlm_db_finalize(s);
	} else if (step == TLM_DB_DONE) {
		step = TLM_DB_FAIL;
	}
	if (step == TLM_DB_DONE && tlm_db_commit(j->db) != 0)
		step = TLM_DB_FAIL;
	return step;
}

int tlm_journal__insert_run(tlm_journal *j, const char *workflow, const char *spec_text,
			    const char *control_plane, int queued,
			    char run_id[TLM_JOURNAL_RUN_ID_LEN + 1], tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	char hash[65], host[TLM_JOURNAL__HOST_MAX];
	int rc, step = TLM_DB_FAIL;

	run_id[0] = '\0';
	if ((rc = tlm_journal__check_text(j, workflow, TLM_JOURNAL_NAME_MAX, "workflow name",
					  err)) != 0)
		goto done;
	if (spec_text == NULL || sha256_hex(spec_text, hash) != 0) {
		rc = tlm_error_set(err, TLM_EINVALID, "journal %s: cannot hash the spec", j->path);
		goto done;
	}
	tlm_journal__hostname(host, sizeof(host));
	/* A queued run has no owner, no heartbeat and epoch 0 until a worker
	 * claims it (queue.c); a run started here is ours at epoch 1. */
	rc = tlm_journal__prepare(
		j,
		queued ? "INSERT INTO runs (id, workflow, spec_hash, spec, state, created_at,"
			 " updated_at, owner_epoch, control_plane) VALUES (?1, ?2, ?3, '',"
			 " 'queued', " NOW ", " NOW ", 0, ?9)"
		       : "INSERT INTO runs (id, workflow, spec_hash, spec, state, created_at,"
			 " updated_at, owner_pid, owner_host, heartbeat_at, owner_epoch,"
			 " owner_domain, owner_start) VALUES (?1, ?2, ?3, '', 'pending', " NOW
			 ", " NOW ", ?5, ?6, " NOW ", 1, ?7, ?8)",
		&q, err);
	if (rc != 0 || (rc = tlm_journal_flush(j, err)) != 0)
		goto done;
	for (int i = 0; i < RUN_ID_TRIES; i++) {
		if (new_run_id(run_id) != 0) {
			rc = tlm_error_set(err, TLM_ERROR,
					   "journal %s: no random bytes for a run id", j->path);
			goto done;
		}
		tlm_db_bind_text(q, 1, run_id);
		tlm_db_bind_text(q, 2, workflow);
		tlm_db_bind_text(q, 3, hash);
		tlm_db_bind_int64(q, 5, (long long)j->self.pid);
		tlm_db_bind_text(q, 6, host);
		if (j->self.domain[0] != '\0')
			tlm_db_bind_text(q, 7, j->self.domain);
		tlm_db_bind_int64(q, 8, (long long)j->self.start);
		tlm_db_bind_text(q, 9, control_plane);
		step = insert_both(j, q, run_id, spec_text);
		if (step != TLM_DB_FAIL || tlm_db_errclass_last(j->db) != TLM_DB_EUNIQUE)
			break;
		tlm_db_rollback(j->db);
	}
	if (step != TLM_DB_DONE) {
		rc = tlm_journal__db_error(j, err, "recording a new run");
		tlm_db_rollback(j->db);
		run_id[0] = '\0';
	} else if (!queued && (rc = tlm_journal__hold(j, run_id, 1, err)) != 0) {
		run_id[0] = '\0';
	}
done:
	tlm_db_finalize(q);
	if (rc == 0)
		tlm_crashpoint("journal run_new");
	if (rc == 0)
		rc = record_new(j, run_id, workflow, hash, queued ? "queued" : "pending", err);
	return rc;
}

int tlm_journal_run_new(tlm_journal *j, const char *workflow, const char *spec_text,
			char run_id[TLM_JOURNAL_RUN_ID_LEN + 1], tlm_error *err)
{
	return tlm_journal__insert_run(j, workflow, spec_text, NULL, 0, run_id, err);
}

/* Runs an UPDATE of one run: id in ?1, text in ?2 (may be NULL).  fenced:
 * inside a transaction that checks this handle still owns the run. */
static int update_run(tlm_journal *j, const char *sql, const char *run_id, const char *text,
		      int fenced, const char *what, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0)
		return rc;
	if (fenced && (rc = tlm_journal__begin_one(j, run_id, err)) != 0)
		return rc;
	if ((rc = tlm_journal__prepare(j, sql, &q, err)) != 0)
		goto done;
	tlm_db_bind_text(q, 1, run_id);
	if (text != NULL)
		tlm_db_bind_text(q, 2, text);
	if (tlm_db_step(q) != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, what);
	else if (tlm_db_changes(j->db) == 0)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path, run_id);
done:
	tlm_db_finalize(q);
	if (fenced)
		rc = tlm_journal__end(j, rc, what, err);
	if (rc == 0)
		tlm_crashpoint(what);
	return rc;
}

int tlm_journal_run_set_state(tlm_journal *j, const char *run_id, tlm_run_state state,
			      tlm_error *err)
{
	tlm_journal__change c = { run_id, "run", run_id, NULL, 0, "", "", "" };
	int rc;

	if ((unsigned)state >= TLM_RUN_STATE_COUNT)
		return tlm_error_set(err, TLM_EINVALID, "journal %s: unknown run state %d", j->path,
				     (int)state);
	tlm_journal__before(j, &c);
	rc = update_run(j, "UPDATE runs SET state = ?2, updated_at = " NOW " WHERE id = ?1", run_id,
			tlm_run_state_name(state), 1, "setting a run's state", err);
	return tlm_journal__after(j, &c, rc, err);
}

/* One statement, compare-and-set on the epoch: cheaper than a fenced
 * transaction, and a heartbeat is the most frequent write of a long run. */
int tlm_journal_run_heartbeat(tlm_journal *j, const char *run_id, tlm_error *err)
{
	long long epoch = tlm_journal_held_epoch(j, run_id);
	tlm_db_stmt *q = NULL;
	int rc;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0)
		return rc;
	if (epoch == 0)
		return tlm_journal_fence_check(j, run_id, err); /* not ours: says why */
	if ((rc = tlm_journal__prepare(
		     j, "UPDATE runs SET heartbeat_at = " NOW " WHERE id = ?1 AND owner_epoch = ?2",
		     &q, err)) != 0)
		return rc;
	tlm_db_bind_text(q, 1, run_id);
	tlm_db_bind_int64(q, 2, epoch);
	if (tlm_db_step(q) != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "refreshing a run's heartbeat");
	else if (tlm_db_changes(j->db) == 0 && (rc = tlm_journal_fence_check(j, run_id, err)) == 0)
		rc = tlm_error_set(err, TLM_EFENCED, "journal %s: run %s: heartbeat refused",
				   j->path, run_id);
	tlm_db_finalize(q);
	return rc;
}

/* Whether url names credentials in its authority (scheme://user:pass@host/):
 * those would then sit in the journal, which must hold no secrets. */
int tlm_journal__url_has_userinfo(const char *url)
{
	const char *a = strstr(url, "://");
	size_t n;

	a = a ? a + 3 : url;
	n = strcspn(a, "/?#");
	return memchr(a, '@', n) != NULL;
}

int tlm_journal_run_set_control_plane(tlm_journal *j, const char *run_id, const char *url,
				      tlm_error *err)
{
	int rc = tlm_journal__check_text(j, url, TLM_JOURNAL_TEXT_MAX, "control plane", err);

	if (rc != 0)
		return rc;
	/* the message must not repeat the URL: it is the secret */
	if (tlm_journal__url_has_userinfo(url))
		return tlm_error_set(err, TLM_EINVALID,
				     "journal %s: run %s: the control plane URL carries credentials"
				     " (user:password@); they must not be journaled",
				     j->path, run_id ? run_id : "(null)");
	return update_run(j, "UPDATE runs SET control_plane = ?2 WHERE id = ?1", run_id, url, 1,
			  "recording a run's control plane", err);
}

/* Idempotent: the first request's time is the one that counts.  Every
 * request is audited, though: each is someone asking. */
int tlm_journal_run_request_cancel(tlm_journal *j, const char *run_id, tlm_error *err)
{
	tlm_journal__change c = { run_id, "run", run_id, NULL, 0, "", "", "" };
	int rc;

	tlm_journal__before(j, &c);
	rc = update_run(j,
			"UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, " NOW
			") WHERE id = ?1",
			run_id, NULL, 0, "requesting a cancel", err);
	if (rc == 0) /* the owner listens (PostgreSQL); it also polls */
		(void)tlm_db_notify(j->db, TLM_JOURNAL_CHANNEL_CANCEL, run_id);
	if (rc == 0)
		rc = tlm_journal__record(j, run_id, c.workflow[0] ? c.workflow : NULL, "run",
					 run_id, NULL, NULL, "cancel-request", NULL, err);
	return rc;
}

/* Where the database delivers notifications (PostgreSQL), a cancel request
 * arrives as one on TLM_JOURNAL_CHANNEL_CANCEL: the row is read when one
 * names a run, and otherwise only every CANCEL_FALLBACK_MS (a notification
 * sent before we listened, or lost with a connection), so an owner that
 * asks four times a second costs the database almost nothing. */
#define CANCEL_FALLBACK_MS 5000

static void note_cancel(const char *payload, void *ctx)
{
	tlm_journal *j = ctx;

	if (payload != NULL && strlen(payload) == TLM_JOURNAL_RUN_ID_LEN)
		memcpy(j->cancel_seen, payload, TLM_JOURNAL_RUN_ID_LEN + 1);
}

/* 1 when the row must be read now. */
static int cancel_worth_reading(tlm_journal *j, const char *run_id)
{
	uint64_t now = tlm_metrics_now_us() / 1000;

	if (tlm_db_socket(j->db) < 0)
		return 1; /* SQLite: a local read costs microseconds */
	if (!j->cancel_listening) {
		if (tlm_db_listen(j->db, TLM_JOURNAL_CHANNEL_CANCEL) != 0)
			return 1;
		j->cancel_listening = 1;
	} else if (tlm_db_notifications(j->db, note_cancel, j) != 0) {
		return 1; /* the read reports the connection's state */
	}
	if (strcmp(j->cancel_seen, run_id) != 0 && j->cancel_read_ms != 0 &&
	    now - j->cancel_read_ms < CANCEL_FALLBACK_MS)
		return 0;
	j->cancel_read_ms = now;
	return 1;
}

int tlm_journal_run_cancel_requested(tlm_journal *j, const char *run_id, int *yes, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, step;

	*yes = 0;
	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    !cancel_worth_reading(j, run_id))
		return rc;
	if ((rc = tlm_journal__prepare(j,
				       "SELECT cancel_requested_at IS NOT NULL FROM runs"
				       " WHERE id = ?1",
				       &q, err)) != 0)
		goto done;
	tlm_db_bind_text(q, 1, run_id);
	step = tlm_db_step(q);
	if (step == TLM_DB_DONE)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path, run_id);
	else if (step != TLM_DB_ROW)
		rc = tlm_journal__db_error(j, err, "reading a cancel request");
	else
		*yes = tlm_db_column_int64(q, 0) != 0;
done:
	tlm_db_finalize(q);
	return rc;
}

static char *dup_col(tlm_db_stmt *q, int col)
{
	const char *s = tlm_db_column_text(q, col);

	return s ? strdup(s) : NULL;
}

/* A row that breaks what every writer guarantees: the journal was edited or
 * damaged, and nothing read from it may be trusted further. */
static int corrupt(tlm_journal *j, const char *what, tlm_error *err)
{
	return tlm_error_set(err, TLM_EINVALID, "journal %s: corrupt run row: %s", j->path, what);
}

/* Fills *out from a row of TLM_JOURNAL__RUN_COLUMNS; *out is cleared first.  Every value
 * is checked: the file is ours, but a damaged one must give an error, not a
 * crash or a wrong decision. */
int tlm_journal__read_run(tlm_journal *j, tlm_db_stmt *q, int with_spec, tlm_journal_run *out,
			  tlm_error *err)
{
	const char *id = tlm_db_column_text(q, 0);
	const char *state = tlm_db_column_text(q, 4);

	memset(out, 0, sizeof(*out));
	if (tlm_journal__check_run_id(j, id, NULL) != 0)
		return corrupt(j, "bad run id", err);
	if (tlm_run_state_parse(state, &out->state) != 0)
		return corrupt(j, "unknown state", err);
	if (tlm_db_column_int64(q, 13) < 0 || tlm_db_column_int64(q, 15) < 0)
		return corrupt(j, "negative owner epoch or start time", err);
	snprintf(out->id, sizeof(out->id), "%s", id);
	out->workflow = dup_col(q, 1);
	out->spec_hash = dup_col(q, 2);
	out->spec = with_spec ? dup_col(q, 3) : NULL;
	out->created_at = dup_col(q, 5);
	out->updated_at = dup_col(q, 6);
	out->owner_host = dup_col(q, 7);
	out->owner_pid = (long)tlm_db_column_int64(q, 8);
	out->heartbeat_at = dup_col(q, 9);
	out->heartbeat_age_ms = (long)tlm_db_column_int64(q, 10);
	out->control_plane = dup_col(q, 11);
	out->cancel_requested_at = dup_col(q, 12);
	out->owner_epoch = tlm_db_column_int64(q, 13);
	out->owner_domain = dup_col(q, 14);
	out->owner_start = (unsigned long long)tlm_db_column_int64(q, 15);
	if (!out->workflow || !out->spec_hash || (with_spec && !out->spec) || !out->created_at ||
	    !out->updated_at || (!tlm_db_column_is_null(q, 7) && !out->owner_host) ||
	    (!tlm_db_column_is_null(q, 9) && !out->heartbeat_at) ||
	    (!tlm_db_column_is_null(q, 11) && !out->control_plane) ||
	    (!tlm_db_column_is_null(q, 12) && !out->cancel_requested_at) ||
	    (!tlm_db_column_is_null(q, 14) && !out->owner_domain)) {
		tlm_journal_run_clear(out);
		return tlm_error_set(err, TLM_ERROR, "journal %s: out of memory reading a run",
				     j->path);
	}
	return 0;
}

int tlm_journal_run_get(tlm_journal *j, const char *run_id, tlm_journal_run *out, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, step;

	memset(out, 0, sizeof(*out));
	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__prepare(j, TLM_JOURNAL__RUN_COLUMNS(RUN_SPEC) " WHERE id = ?1", &q,
				       err)) != 0)
		goto done;
	tlm_db_bind_text(q, 1, run_id);
	step = tlm_db_step(q);
	if (step == TLM_DB_DONE)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path, run_id);
	else if (step != TLM_DB_ROW)
		rc = tlm_journal__db_error(j, err, "reading a run");
	else
		rc = tlm_journal__read_run(j, q, 1, out, err);
done:
	tlm_db_finalize(q);
	return rc;
}

int tlm_journal__prepare_run_filter(tlm_journal *j, const char *sql, const tlm_run_state *state,
				    const char *workflow, tlm_db_stmt **q, tlm_error *err)
{
	int rc = tlm_journal__prepare(j, sql, q, err);

	if (rc == 0 && state != NULL)
		tlm_db_bind_text(*q, 1, tlm_run_state_name(*state));
	if (rc == 0 && workflow != NULL)
		tlm_db_bind_text(*q, 2, workflow);
	return rc;
}

int tlm_journal_runs(tlm_journal *j, const tlm_run_state *state, const char *workflow,
		     tlm_journal_run_cb cb, void *ctx, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	tlm_journal_run r;
	int rc, step;

	memset(&r, 0, sizeof(r));
	if ((rc = tlm_journal__prepare_run_filter(
		     j,
		     TLM_JOURNAL__RUN_COLUMNS("NULL") " WHERE " TLM_JOURNAL__RUN_FILTER
						      " ORDER BY created_at DESC, id DESC",
		     state, workflow, &q, err)) != 0)
		goto done;
	while ((step = tlm_db_step(q)) == TLM_DB_ROW) {
		if ((rc = tlm_journal__read_run(j, q, 0, &r, err)) != 0)
			goto done;
		rc = cb(&r, ctx);
		tlm_journal_run_clear(&r);
		if (rc != 0)
			goto done;
	}
	if (step != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "listing runs");
done:
	tlm_db_finalize(q);
	return rc;
}

int tlm_journal_latest_run(tlm_journal *j, char run_id[TLM_JOURNAL_RUN_ID_LEN + 1], tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc, step;

	run_id[0] = '\0';
	if ((rc = tlm_journal__prepare(j,
				       "SELECT id FROM runs ORDER BY created_at DESC, id DESC"
				       " LIMIT 1",
				       &q, err)) != 0)
		goto done;
	step = tlm_db_step(q);
	if (step == TLM_DB_DONE)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no runs yet", j->path);
	else if (step != TLM_DB_ROW)
		rc = tlm_journal__db_error(j, err, "finding the newest run");
	else
		snprintf(run_id, TLM_JOURNAL_RUN_ID_LEN + 1, "%s",
			 tlm_db_column_text(q, 0) ? tlm_db_column_text(q, 0) : "");
done:
	tlm_db_finalize(q);
	return rc;
}

void tlm_journal_run_clear(tlm_journal_run *r)
{
	if (r == NULL)
		return;
	free(r->workflow);
	free(r->spec_hash);
	free(r->spec);
	free(r->created_at);
	free(r->updated_at);
	free(r->owner_host);
	free(r->heartbeat_at);
	free(r->control_plane);
	free(r->cancel_requested_at);
	free(r->owner_domain);
	memset(r, 0, sizeof(*r));
}
