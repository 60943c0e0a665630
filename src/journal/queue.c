/* The queue of runs for workers (docs/distributed.md): `submit` inserts a
 * queued run with no owner; a worker claims the next run that needs one —
 * a run whose owner died first (it holds resources), then the oldest queued
 * run — and drives it; a worker that stops hands its runs back by releasing
 * the lease.  Claims are the owner.c compare-and-set on the epoch, inside a
 * transaction that locks the candidates (PostgreSQL: FOR UPDATE SKIP
 * LOCKED, so concurrent workers pass over each other's rows; SQLite: the
 * write lock). */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "journal/journal_internal.h"

/* How many candidates one claim looks at: enough to pass over live owners
 * found on this host, few enough to lock briefly. */
#define CANDIDATES 16

/* Unfinished runs with no owner, an owner on this host (its pid decides),
 * or a lease older than TLM_JOURNAL_STALE_MS; dead owners' runs first. */
#define CLAIMABLE                                                                                  \
	" WHERE state = 'queued' OR (state IN ('pending', 'provisioning', 'running',"              \
	" 'tearing_down') AND (owner_pid IS NULL OR owner_host = ?1 OR tlm_age_ms(heartbeat_at)"   \
	" > ?2))"

int tlm_journal_run_submit(tlm_journal *j, const char *workflow, const char *spec_text,
			   const char *control_plane, char run_id[TLM_JOURNAL_RUN_ID_LEN + 1],
			   tlm_error *err)
{
	int rc = 0;

	run_id[0] = '\0';
	if (control_plane != NULL &&
	    ((rc = tlm_journal__check_text(j, control_plane, TLM_JOURNAL_TEXT_MAX, "control plane",
					   err)) != 0 ||
	     tlm_journal__url_has_userinfo(control_plane)))
		return rc != 0 ? rc
			       : tlm_error_set(err, TLM_EINVALID,
					       "the control plane URL carries credentials "
					       "(user:password@); they must not be journaled");
	rc = tlm_journal__insert_run(j, workflow, spec_text, control_plane, 1, run_id, err);
	/* Wakes idle workers at once (PostgreSQL); they poll anyway. */
	if (rc == 0)
		(void)tlm_db_notify(j->db, TLM_JOURNAL_CHANNEL_RUNS, run_id);
	return rc;
}

static void bind_claimable(tlm_db_stmt *q)
{
	char host[TLM_JOURNAL__HOST_MAX];

	tlm_journal__hostname(host, sizeof(host));
	tlm_db_bind_text(q, 1, host);
	tlm_db_bind_int64(q, 2, TLM_JOURNAL_STALE_MS);
}

/* Reads the candidates, without their spec text, in one query (lock: a
 * suffix locking them in the caller's transaction, or ""), and hands each
 * to visit until it returns non-zero (1: stop; < 0: an error). */
typedef int (*visit_fn)(tlm_journal_run *r, void *ctx);

static int candidates(tlm_journal *j, const char *lock, visit_fn visit, void *ctx, tlm_error *err)
{
	char sql[1024];
	tlm_db_stmt *q = NULL;
	tlm_journal_run r;
	int rc, step = TLM_DB_DONE, stop = 0;

	snprintf(
		sql, sizeof(sql),
		TLM_JOURNAL__RUN_COLUMNS("NULL") CLAIMABLE
		" ORDER BY CASE WHEN state = 'queued' THEN 1 ELSE 0 END, created_at, id LIMIT %d%s",
		CANDIDATES, lock);
	if ((rc = tlm_journal__prepare(j, sql, &q, err)) != 0)
		return rc;
	bind_claimable(q);
	while (!stop && (step = tlm_db_step(q)) == TLM_DB_ROW) {
		if ((rc = tlm_journal__read_run(j, q, 0, &r, err)) != 0)
			break;
		stop = visit(&r, ctx);
		tlm_journal_run_clear(&r);
	}
	if (rc == 0 && !stop && step != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "looking for work");
	tlm_db_finalize(q);
	return rc;
}

static int count_free(tlm_journal_run *r, void *ctx)
{
	*(long *)ctx += tlm_journal_run_owner(r) != TLM_JOURNAL_OWNER_ALIVE;
	return 0;
}

/* The first run with no live owner, moved into ctx. */
static int first_free(tlm_journal_run *r, void *ctx)
{
	if (tlm_journal_run_owner(r) == TLM_JOURNAL_OWNER_ALIVE)
		return 0;
	*(tlm_journal_run *)ctx = *r;
	memset(r, 0, sizeof(*r));
	return 1;
}

int tlm_journal_claimable(tlm_journal *j, long *n, tlm_error *err)
{
	/* A peek, not a claim: nothing is locked, and a run whose owner on
	 * this host is alive (a worker's own) is not counted. */
	*n = 0;
	return candidates(j, "", count_free, n, err);
}

int tlm_journal_run_claim_next(tlm_journal *j, char run_id[TLM_JOURNAL_RUN_ID_LEN + 1],
			       tlm_error *err)
{
	tlm_journal_run r;
	int rc;

	run_id[0] = '\0';
	memset(&r, 0, sizeof(r));
	if ((rc = tlm_journal_flush(j, err)) != 0)
		return rc;
	if (tlm_db_begin(j->db) != 0)
		return tlm_journal__db_error(j, err, "starting a claim");
	rc = candidates(j, tlm_db_skip_locked(j->db), first_free, &r, err);
	if (rc == 0 && r.id[0] == '\0')
		rc = tlm_error_set(err, TLM_ENOTFOUND, "no run needs a worker");
	if (rc == 0)
		rc = tlm_journal__write_owner(j, &r, err);
	if (rc != 0) {
		tlm_db_rollback(j->db);
		tlm_journal_run_clear(&r);
		return rc;
	}
	if ((rc = tlm_journal__end(j, 0, "committing a claim", err)) == 0 &&
	    (rc = tlm_journal__hold(j, r.id, r.owner_epoch + 1, err)) == 0) {
		snprintf(run_id, TLM_JOURNAL_RUN_ID_LEN + 1, "%s", r.id);
		rc = r.state == TLM_RUN_QUEUED
			     ? tlm_journal__record(j, r.id, r.workflow, "owner", r.id, NULL, NULL,
						   "claim", "a queued run, by a worker", err)
			     : tlm_journal__record_takeover(j, &r, 0, err);
	}
	tlm_journal_run_clear(&r);
	return rc;
}

/* The owner's identity cleared under the fence: the run is anyone's to
 * claim at once (no pid: no live owner).  The heartbeat stays, so the next
 * owner still waits out what a request of ours may yet do (resume.c's
 * settle time). */
int tlm_journal_run_release(tlm_journal *j, const char *run_id, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc;

	if ((rc = tlm_journal__begin_one(j, run_id, err)) != 0)
		return rc;
	if ((rc = tlm_journal__prepare(j,
				       "UPDATE runs SET owner_pid = NULL, owner_domain = NULL,"
				       " owner_start = NULL WHERE id = ?1",
				       &q, err)) == 0) {
		tlm_db_bind_text(q, 1, run_id);
		if (tlm_db_step(q) != TLM_DB_DONE)
			rc = tlm_journal__db_error(j, err, "releasing a run");
	}
	tlm_db_finalize(q);
	rc = tlm_journal__end(j, rc, "releasing a run", err);
	if (rc == 0)
		rc = tlm_journal__record(j, run_id, NULL, "owner", run_id, NULL, NULL, "release",
					 "handed back for another worker", err);
	return rc;
}

int tlm_journal_listen(tlm_journal *j, const char *channel, tlm_error *err)
{
	if (tlm_db_listen(j->db, channel) != 0)
		return tlm_journal__db_error(j, err, "listening for notifications");
	return 0;
}

static void count_one(const char *payload, void *ctx)
{
	(void)payload;
	(*(int *)ctx)++;
}

int tlm_journal_wait(tlm_journal *j, long timeout_ms, tlm_error *err)
{
	struct pollfd p = { tlm_db_socket(j->db), POLLIN, 0 };
	int got = 0;

	if (p.fd < 0) { /* SQLite: nothing to listen to; a signal ends the wait */
		struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
		return 0;
	}
	if (tlm_db_notifications(j->db, count_one, &got) != 0)
		return tlm_journal__db_error(j, err, "reading notifications");
	if (got == 0 && poll(&p, 1, (int)timeout_ms) > 0 &&
	    tlm_db_notifications(j->db, count_one, &got) != 0)
		return tlm_journal__db_error(j, err, "reading notifications");
	return got > 0;
}

int tlm_journal_run_dequeue(tlm_journal *j, const char *run_id, int *done, tlm_error *err)
{
	tlm_db_stmt *q = NULL;
	int rc;

	*done = 0;
	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0)
		return rc;
	/* One statement: a worker's claim either came first (no row changes)
	 * or finds the run cancelled. */
	if ((rc = tlm_journal__prepare(
		     j,
		     "UPDATE runs SET state = 'cancelled', updated_at = " TLM_JOURNAL__NOW
		     " WHERE id = ?1 AND state = 'queued' AND owner_pid IS NULL",
		     &q, err)) != 0)
		return rc;
	tlm_db_bind_text(q, 1, run_id);
	if (tlm_db_step(q) != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "cancelling a queued run");
	else
		*done = tlm_db_changes(j->db) == 1;
	tlm_db_finalize(q);
	if (rc == 0 && *done)
		rc = tlm_journal__record(j, run_id, NULL, "run", run_id, "queued", "cancelled",
					 "dequeue", "cancelled before a worker took it", err);
	return rc;
}
