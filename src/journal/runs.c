/* Runs: the id that names every resource, the spec copy, the state, and the
 * owner (pid, host, heartbeat) that recovery uses to tell live from dead. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal_internal.h"
#include "util/crashpoint.h"

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/* Ids collide with probability ~n^2 / 36^8; a few retries make a clash with
 * an existing run a non-event rather than an error. */
#define RUN_ID_TRIES 8

static const char *const run_states[] = { "pending",      "provisioning",   "running",
					  "tearing_down", "completed",      "failed",
					  "cancelled",    "teardown_failed" };

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

int tlm_journal_run_new(tlm_journal *j, const char *workflow, const char *spec_text,
			char run_id[TLM_JOURNAL_RUN_ID_LEN + 1], tlm_error *err)
{
	sqlite3_stmt *q = NULL;
	char hash[65], host[256] = "";
	int rc, step = SQLITE_ERROR;

	run_id[0] = '\0';
	if ((rc = tlm_journal__check_text(j, workflow, TLM_JOURNAL_NAME_MAX, "workflow name",
					  err)) != 0)
		goto done;
	if (spec_text == NULL || sha256_hex(spec_text, hash) != 0) {
		rc = tlm_error_set(err, TLM_EINVALID, "journal %s: cannot hash the spec", j->path);
		goto done;
	}
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	rc = tlm_journal__prepare(
		j,
		"INSERT INTO runs (id, workflow, spec_hash, spec, state, created_at,"
		" updated_at, owner_pid, owner_host, heartbeat_at)"
		" VALUES (?1, ?2, ?3, ?4, 'pending', " NOW ", " NOW ", ?5, ?6, " NOW ")",
		&q, err);
	if (rc != 0)
		goto done;
	for (int i = 0; i < RUN_ID_TRIES; i++) {
		if (new_run_id(run_id) != 0) {
			rc = tlm_error_set(err, TLM_ERROR,
					   "journal %s: no random bytes for a run id", j->path);
			goto done;
		}
		sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, workflow, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 4, spec_text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 5, (sqlite3_int64)getpid());
		sqlite3_bind_text(q, 6, host, -1, SQLITE_STATIC);
		step = sqlite3_step(q);
		sqlite3_reset(q);
		if (step != SQLITE_CONSTRAINT)
			break;
	}
	if (step != SQLITE_DONE) {
		rc = tlm_journal__db_error(j, err, "recording a new run");
		run_id[0] = '\0';
	}
done:
	sqlite3_finalize(q);
	if (rc == 0)
		tlm_crashpoint("journal run_new");
	return rc;
}

/* Runs an UPDATE of one run: id in ?1, text in ?2 (may be NULL). */
static int update_run(tlm_journal *j, const char *sql, const char *run_id, const char *text,
		      const char *what, tlm_error *err)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__prepare(j, sql, &q, err)) != 0)
		goto done;
	sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
	if (text != NULL)
		sqlite3_bind_text(q, 2, text, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = tlm_journal__db_error(j, err, what);
	else if (sqlite3_changes(j->db) == 0)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path, run_id);
done:
	sqlite3_finalize(q);
	if (rc == 0)
		tlm_crashpoint(what);
	return rc;
}

int tlm_journal_run_set_state(tlm_journal *j, const char *run_id, const char *state, tlm_error *err)
{
	size_t i, n = sizeof(run_states) / sizeof(run_states[0]);

	for (i = 0; state != NULL && i < n; i++)
		if (strcmp(state, run_states[i]) == 0)
			break;
	if (state == NULL || i == n)
		return tlm_error_set(err, TLM_EINVALID, "journal %s: unknown run state \"%s\"",
				     j->path, state ? state : "(null)");
	return update_run(j, "UPDATE runs SET state = ?2, updated_at = " NOW " WHERE id = ?1",
			  run_id, state, "setting a run's state", err);
}

int tlm_journal_run_heartbeat(tlm_journal *j, const char *run_id, tlm_error *err)
{
	char host[256] = "";
	sqlite3_stmt *q = NULL;
	int rc;

	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__prepare(j,
				       "UPDATE runs SET heartbeat_at = " NOW ", owner_pid = ?3,"
				       " owner_host = ?2 WHERE id = ?1",
				       &q, err)) != 0)
		goto done;
	sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)getpid());
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = tlm_journal__db_error(j, err, "refreshing a run's heartbeat");
	else if (sqlite3_changes(j->db) == 0)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path, run_id);
done:
	sqlite3_finalize(q);
	return rc;
}

/* Whether url names credentials in its authority (scheme://user:pass@host/):
 * those would then sit in the journal, which must hold no secrets. */
static int url_has_userinfo(const char *url)
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
	if (url_has_userinfo(url))
		return tlm_error_set(err, TLM_EINVALID,
				     "journal %s: run %s: the control plane URL carries credentials"
				     " (user:password@); they must not be journaled",
				     j->path, run_id ? run_id : "(null)");
	return update_run(j, "UPDATE runs SET control_plane = ?2 WHERE id = ?1", run_id, url,
			  "recording a run's control plane", err);
}

/* Idempotent: the first request's time is the one that counts. */
int tlm_journal_run_request_cancel(tlm_journal *j, const char *run_id, tlm_error *err)
{
	return update_run(j,
			  "UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, " NOW
			  ") WHERE id = ?1",
			  run_id, NULL, "requesting a cancel", err);
}

int tlm_journal_run_cancel_requested(tlm_journal *j, const char *run_id, int *yes, tlm_error *err)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	*yes = 0;
	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__prepare(j,
				       "SELECT cancel_requested_at IS NOT NULL FROM runs"
				       " WHERE id = ?1",
				       &q, err)) != 0)
		goto done;
	sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
	step = sqlite3_step(q);
	if (step == SQLITE_DONE)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path, run_id);
	else if (step != SQLITE_ROW)
		rc = tlm_journal__db_error(j, err, "reading a cancel request");
	else
		*yes = sqlite3_column_int(q, 0);
done:
	sqlite3_finalize(q);
	return rc;
}

static char *dup_col(sqlite3_stmt *q, int col)
{
	const unsigned char *s = sqlite3_column_text(q, col);

	return s ? strdup((const char *)s) : NULL;
}

/* The columns read_row expects, after the spec column (?): the heartbeat's
 * age is computed by SQLite so that it and heartbeat_at share one clock.  A
 * heartbeat in the future (another host's clock ahead) counts as fresh, so
 * -1 only ever means "none". */
#define RUN_COLUMNS(spec)                                                                          \
	"SELECT id, workflow, spec_hash, " spec ", state, created_at, updated_at,"                 \
	" owner_host, owner_pid, heartbeat_at,"                                                    \
	" CASE WHEN heartbeat_at IS NULL THEN -1 ELSE MAX(0, CAST(ROUND("                          \
	"  (julianday('now') - julianday(heartbeat_at)) * 86400000.0) AS INTEGER)) END,"           \
	" control_plane, cancel_requested_at FROM runs"

/* Fills *out from a row of RUN_COLUMNS; *out is cleared first. */
static int read_row(tlm_journal *j, sqlite3_stmt *q, int with_spec, tlm_journal_run *out,
		    tlm_error *err)
{
	const unsigned char *id = sqlite3_column_text(q, 0);

	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", id ? (const char *)id : "");
	out->workflow = dup_col(q, 1);
	out->spec_hash = dup_col(q, 2);
	out->spec = with_spec ? dup_col(q, 3) : NULL;
	out->state = dup_col(q, 4);
	out->created_at = dup_col(q, 5);
	out->updated_at = dup_col(q, 6);
	out->owner_host = dup_col(q, 7);
	out->owner_pid = (long)sqlite3_column_int64(q, 8);
	out->heartbeat_at = dup_col(q, 9);
	out->heartbeat_age_ms = (long)sqlite3_column_int64(q, 10);
	out->control_plane = dup_col(q, 11);
	out->cancel_requested_at = dup_col(q, 12);
	if (!out->workflow || !out->spec_hash || (with_spec && !out->spec) || !out->state ||
	    !out->created_at || !out->updated_at ||
	    (sqlite3_column_type(q, 7) != SQLITE_NULL && !out->owner_host) ||
	    (sqlite3_column_type(q, 9) != SQLITE_NULL && !out->heartbeat_at) ||
	    (sqlite3_column_type(q, 11) != SQLITE_NULL && !out->control_plane) ||
	    (sqlite3_column_type(q, 12) != SQLITE_NULL && !out->cancel_requested_at)) {
		tlm_journal_run_clear(out);
		return tlm_error_set(err, TLM_ERROR, "journal %s: out of memory reading a run",
				     j->path);
	}
	return 0;
}

int tlm_journal_run_get(tlm_journal *j, const char *run_id, tlm_journal_run *out, tlm_error *err)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	memset(out, 0, sizeof(*out));
	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__prepare(j, RUN_COLUMNS("spec") " WHERE id = ?1", &q, err)) != 0)
		goto done;
	sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
	step = sqlite3_step(q);
	if (step == SQLITE_DONE)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path, run_id);
	else if (step != SQLITE_ROW)
		rc = tlm_journal__db_error(j, err, "reading a run");
	else
		rc = read_row(j, q, 1, out, err);
done:
	sqlite3_finalize(q);
	return rc;
}

int tlm_journal_runs(tlm_journal *j, const char *state, const char *workflow, tlm_journal_run_cb cb,
		     void *ctx, tlm_error *err)
{
	sqlite3_stmt *q = NULL;
	tlm_journal_run r;
	int rc, step;

	memset(&r, 0, sizeof(r));
	if ((rc = tlm_journal__prepare(j,
				       RUN_COLUMNS("NULL") " WHERE (?1 IS NULL OR state = ?1)"
							   " AND (?2 IS NULL OR workflow = ?2)"
							   " ORDER BY created_at DESC, id DESC",
				       &q, err)) != 0)
		goto done;
	if (state != NULL)
		sqlite3_bind_text(q, 1, state, -1, SQLITE_STATIC);
	if (workflow != NULL)
		sqlite3_bind_text(q, 2, workflow, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		if ((rc = read_row(j, q, 0, &r, err)) != 0)
			goto done;
		rc = cb(&r, ctx);
		tlm_journal_run_clear(&r);
		if (rc != 0)
			goto done;
	}
	if (step != SQLITE_DONE)
		rc = tlm_journal__db_error(j, err, "listing runs");
done:
	sqlite3_finalize(q);
	return rc;
}

int tlm_journal_latest_run(tlm_journal *j, char run_id[TLM_JOURNAL_RUN_ID_LEN + 1], tlm_error *err)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	run_id[0] = '\0';
	if ((rc = tlm_journal__prepare(j,
				       "SELECT id FROM runs ORDER BY created_at DESC, id DESC"
				       " LIMIT 1",
				       &q, err)) != 0)
		goto done;
	step = sqlite3_step(q);
	if (step == SQLITE_DONE)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no runs yet", j->path);
	else if (step != SQLITE_ROW)
		rc = tlm_journal__db_error(j, err, "finding the newest run");
	else
		snprintf(run_id, TLM_JOURNAL_RUN_ID_LEN + 1, "%s",
			 sqlite3_column_text(q, 0) ? (const char *)sqlite3_column_text(q, 0) : "");
done:
	sqlite3_finalize(q);
	return rc;
}

void tlm_journal_run_clear(tlm_journal_run *r)
{
	if (r == NULL)
		return;
	free(r->workflow);
	free(r->spec_hash);
	free(r->spec);
	free(r->state);
	free(r->created_at);
	free(r->updated_at);
	free(r->owner_host);
	free(r->heartbeat_at);
	free(r->control_plane);
	free(r->cancel_requested_at);
	memset(r, 0, sizeof(*r));
}
