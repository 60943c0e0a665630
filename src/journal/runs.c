/* Runs: the id that names every resource, the spec copy, the state, and the
 * owner (pid, host, heartbeat) that recovery uses to tell live from dead. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal_internal.h"

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

static char *dup_col(sqlite3_stmt *q, int col)
{
	const unsigned char *s = sqlite3_column_text(q, col);

	return s ? strdup((const char *)s) : NULL;
}

int tlm_journal_run_get(tlm_journal *j, const char *run_id, tlm_journal_run *out, tlm_error *err)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	memset(out, 0, sizeof(*out));
	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0 ||
	    (rc = tlm_journal__prepare(
		     j,
		     "SELECT workflow, spec_hash, spec, state, created_at, updated_at,"
		     " owner_host, owner_pid, heartbeat_at FROM runs WHERE id = ?1",
		     &q, err)) != 0)
		goto done;
	sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
	step = sqlite3_step(q);
	if (step == SQLITE_DONE) {
		rc = tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path, run_id);
		goto done;
	}
	if (step != SQLITE_ROW) {
		rc = tlm_journal__db_error(j, err, "reading a run");
		goto done;
	}
	memcpy(out->id, run_id, TLM_JOURNAL_RUN_ID_LEN + 1);
	out->workflow = dup_col(q, 0);
	out->spec_hash = dup_col(q, 1);
	out->spec = dup_col(q, 2);
	out->state = dup_col(q, 3);
	out->created_at = dup_col(q, 4);
	out->updated_at = dup_col(q, 5);
	out->owner_host = dup_col(q, 6);
	out->owner_pid = (long)sqlite3_column_int64(q, 7);
	out->heartbeat_at = dup_col(q, 8);
	if (!out->workflow || !out->spec_hash || !out->spec || !out->state || !out->created_at ||
	    !out->updated_at) {
		tlm_journal_run_clear(out);
		rc = tlm_error_set(err, TLM_ERROR, "journal %s: out of memory reading run %s",
				   j->path, run_id);
	}
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
	memset(r, 0, sizeof(*r));
}
