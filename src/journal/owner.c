/* The run lock: who owns a run, whether that owner still lives, and taking a
 * run over (resume, teardown, cancel of a dead owner's run).  There is no lock
 * file: the owner's pid, host and heartbeat in the runs row are the lease,
 * and claiming is a compare-and-set inside one BEGIN IMMEDIATE transaction, so
 * two processes racing for a run cannot both win. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal_internal.h"

static const char *const final_states[] = { "completed", "failed", "cancelled", "teardown_failed" };

static int is_final(const char *state)
{
	for (size_t i = 0; state != NULL && i < sizeof(final_states) / sizeof(final_states[0]); i++)
		if (strcmp(state, final_states[i]) == 0)
			return 1;
	return 0;
}

tlm_journal_owner tlm_journal_run_owner(const tlm_journal_run *r)
{
	char host[TLM_JOURNAL__HOST_MAX];

	if (is_final(r->state))
		return TLM_JOURNAL_OWNER_NONE;
	if (r->heartbeat_age_ms < 0 || r->heartbeat_age_ms > TLM_JOURNAL_STALE_MS)
		return TLM_JOURNAL_OWNER_DEAD;
	/* A pid on another host cannot be checked from here: the heartbeat is all
	 * there is.  kill(0 or negative) would address process groups, so such a
	 * pid is no owner at all. */
	if (r->owner_pid <= 0)
		return TLM_JOURNAL_OWNER_DEAD;
	tlm_journal__hostname(host, sizeof(host));
	if (r->owner_host != NULL && strcmp(r->owner_host, host) == 0 &&
	    kill((pid_t)r->owner_pid, 0) != 0 && errno == ESRCH)
		return TLM_JOURNAL_OWNER_DEAD;
	/* EPERM: the process exists under another user; it is alive. */
	return TLM_JOURNAL_OWNER_ALIVE;
}

const char *tlm_journal_owner_name(tlm_journal_owner o)
{
	switch (o) {
	case TLM_JOURNAL_OWNER_ALIVE: return "alive";
	case TLM_JOURNAL_OWNER_DEAD: return "dead";
	default: return "-";
	}
}

static int exec(tlm_journal *j, const char *sql, const char *what, tlm_error *err)
{
	if (sqlite3_exec(j->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return tlm_journal__db_error(j, err, what);
	return 0;
}

/* Inside the claim's transaction: refuses a live owner other than us. */
static int check_owner(const tlm_journal_run *r, const char *host, tlm_error *err)
{
	int ours = r->owner_pid == (long)getpid() && r->owner_host != NULL &&
		   strcmp(r->owner_host, host) == 0;

	if (ours || tlm_journal_run_owner(r) != TLM_JOURNAL_OWNER_ALIVE)
		return 0;
	return tlm_error_set(
		err, TLM_ECONFLICT, "run %s is owned by pid %ld on %s (heartbeat %lds ago)", r->id,
		r->owner_pid, r->owner_host ? r->owner_host : "?", r->heartbeat_age_ms / 1000);
}

int tlm_journal_run_claim(tlm_journal *j, const char *run_id, tlm_error *err)
{
	char host[TLM_JOURNAL__HOST_MAX];
	tlm_journal_run r = { 0 };
	sqlite3_stmt *q = NULL;
	int rc, open_tx = 0;

	tlm_journal__hostname(host, sizeof(host));
	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0)
		goto done;
	/* IMMEDIATE takes the write lock before reading, so the owner we check
	 * is still the owner when we overwrite it. */
	if ((rc = exec(j, "BEGIN IMMEDIATE", "starting a claim", err)) != 0)
		goto done;
	open_tx = 1;
	if ((rc = tlm_journal_run_get(j, run_id, &r, err)) != 0 ||
	    (rc = check_owner(&r, host, err)) != 0)
		goto done;
	if ((rc = tlm_journal__prepare(j,
				       "UPDATE runs SET owner_pid = ?2, owner_host = ?3,"
				       " heartbeat_at = " TLM_JOURNAL__NOW " WHERE id = ?1",
				       &q, err)) != 0)
		goto done;
	sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)getpid());
	sqlite3_bind_text(q, 3, host, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE) {
		rc = tlm_journal__db_error(j, err, "claiming a run");
		goto done;
	}
	if ((rc = exec(j, "COMMIT", "committing a claim", err)) != 0)
		goto done;
	open_tx = 0;
done:
	sqlite3_finalize(q);
	if (open_tx)
		sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	tlm_journal_run_clear(&r);
	return rc;
}
