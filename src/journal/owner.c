/* The run lock: who owns a run, whether that owner still lives, and taking a
 * run over (resume, teardown, cancel of a dead owner's run, abandon,
 * reconcile).  There is no lock file: the owner columns of the runs row are
 * the lease, and a claim is a compare-and-set inside one BEGIN IMMEDIATE
 * transaction that also raises the run's epoch, so two claimers never both
 * win and the loser of a takeover is fenced off (fence.c). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal_internal.h"
#include "util/procid.h"

/* The rule of journals written before owners recorded a start time: the
 * heartbeat, and on this host whether the pid exists at all. */
static tlm_journal_owner by_pid_only(const tlm_journal_run *r)
{
	char host[TLM_JOURNAL__HOST_MAX];

	if (r->heartbeat_age_ms < 0 || r->heartbeat_age_ms > TLM_JOURNAL_STALE_MS)
		return TLM_JOURNAL_OWNER_DEAD;
	tlm_journal__hostname(host, sizeof(host));
	if (r->owner_host != NULL && strcmp(r->owner_host, host) == 0 &&
	    kill((pid_t)r->owner_pid, 0) != 0 && errno == ESRCH)
		return TLM_JOURNAL_OWNER_DEAD;
	/* EPERM: the process exists under another user; it is alive. */
	return TLM_JOURNAL_OWNER_ALIVE;
}

tlm_journal_owner tlm_journal_run_owner(const tlm_journal_run *r)
{
	int here;

	/* A queued run no worker has claimed yet needs no owner; once claimed
	 * (still queued until its engine starts) its claimer is judged. */
	if (tlm_run_state_is_final(r->state) || (r->state == TLM_RUN_QUEUED && r->owner_pid <= 0))
		return TLM_JOURNAL_OWNER_NONE;
	/* kill(0 or negative) would address process groups: no owner at all. */
	if (r->owner_pid <= 0)
		return TLM_JOURNAL_OWNER_DEAD;
	/* Where the pid can be checked, the process decides, not the clock: a
	 * stopped or slow owner is alive, a reused pid is not. */
	here = tlm_proc_alive(r->owner_domain, r->owner_pid, r->owner_start);
	if (here >= 0)
		return here ? TLM_JOURNAL_OWNER_ALIVE : TLM_JOURNAL_OWNER_DEAD;
	if (r->owner_domain == NULL)
		return by_pid_only(r);
	/* Another host (or pid namespace): the heartbeat lease. */
	return r->heartbeat_age_ms >= 0 && r->heartbeat_age_ms <= TLM_JOURNAL_STALE_MS
		       ? TLM_JOURNAL_OWNER_ALIVE
		       : TLM_JOURNAL_OWNER_DEAD;
}

const char *tlm_journal_owner_name(tlm_journal_owner o)
{
	switch (o) {
	case TLM_JOURNAL_OWNER_ALIVE: return "alive";
	case TLM_JOURNAL_OWNER_DEAD: return "dead";
	default: return "-";
	}
}

/* This very process (not just this pid) is the recorded owner. */
static int is_self(const tlm_journal *j, const tlm_journal_run *r)
{
	return r->owner_pid == j->self.pid && r->owner_start == j->self.start &&
	       r->owner_domain != NULL && strcmp(r->owner_domain, j->self.domain) == 0;
}

/* Inside the claim's transaction: refuses a live owner other than us. */
static int check_owner(const tlm_journal *j, const tlm_journal_run *r, unsigned flags,
		       tlm_error *err)
{
	if ((flags & TLM_JOURNAL_CLAIM_FORCE) || is_self(j, r) ||
	    tlm_journal_run_owner(r) != TLM_JOURNAL_OWNER_ALIVE)
		return 0;
	return tlm_error_set(
		err, TLM_ECONFLICT,
		"run %s is owned by pid %ld on %s, which is alive (heartbeat %lds ago)", r->id,
		r->owner_pid, r->owner_host ? r->owner_host : "?", r->heartbeat_age_ms / 1000);
}

int tlm_journal__write_owner(tlm_journal *j, const tlm_journal_run *r, tlm_error *err)
{
	char host[TLM_JOURNAL__HOST_MAX];
	tlm_db_stmt *q = NULL;
	int rc;

	tlm_journal__hostname(host, sizeof(host));
	if ((rc = tlm_journal__prepare(j,
				       "UPDATE runs SET owner_epoch = ?2 + 1, owner_pid = ?3,"
				       " owner_host = ?4, owner_domain = ?5, owner_start = ?6,"
				       " heartbeat_at = " TLM_JOURNAL__NOW
				       " WHERE id = ?1 AND owner_epoch = ?2",
				       &q, err)) != 0)
		return rc;
	tlm_db_bind_text(q, 1, r->id);
	tlm_db_bind_int64(q, 2, r->owner_epoch);
	tlm_db_bind_int64(q, 3, (long long)j->self.pid);
	tlm_db_bind_text(q, 4, host);
	if (j->self.domain[0] != '\0')
		tlm_db_bind_text(q, 5, j->self.domain);
	tlm_db_bind_int64(q, 6, (long long)j->self.start);
	if (tlm_db_step(q) != TLM_DB_DONE)
		rc = tlm_journal__db_error(j, err, "claiming a run");
	else if (tlm_db_changes(j->db) != 1) /* PostgreSQL: another claim won */
		rc = tlm_error_set(err, TLM_ECONFLICT, "run %s was claimed by another process",
				   r->id);
	tlm_db_finalize(q);
	return rc;
}

/* The audit record of a claim that raised the epoch over r's owner: who
 * held the run, and whether it looked alive (then only --force takes it). */
int tlm_journal__record_takeover(tlm_journal *j, const tlm_journal_run *r, unsigned flags,
				 tlm_error *err)
{
	char detail[TLM_JOURNAL__HOST_MAX + 160];
	tlm_journal_owner o = tlm_journal_run_owner(r);

	snprintf(detail, sizeof(detail), "epoch %lld -> %lld; previous owner pid %ld on %s (%s)%s",
		 r->owner_epoch, r->owner_epoch + 1, r->owner_pid,
		 r->owner_host ? r->owner_host : "?",
		 o == TLM_JOURNAL_OWNER_NONE ? "the run had ended" : tlm_journal_owner_name(o),
		 (flags & TLM_JOURNAL_CLAIM_FORCE) ? ", forced" : "");
	return tlm_journal__record(j, r->id, r->workflow, "owner", r->id, NULL, NULL, "takeover",
				   detail, err);
}

int tlm_journal_run_claim(tlm_journal *j, const char *run_id, unsigned flags, tlm_error *err)
{
	tlm_journal_run r;
	int rc, open_tx = 0;

	memset(&r, 0, sizeof(r));
	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0)
		goto done;
	/* IMMEDIATE takes the write lock before reading, so the owner we check
	 * is still the owner when we overwrite it.  A batch still open is
	 * committed first: a claim is a transaction of its own. */
	if ((rc = tlm_journal_flush(j, err)) != 0)
		goto done;
	if (tlm_db_begin(j->db) != 0) {
		rc = tlm_journal__db_error(j, err, "starting a claim");
		goto done;
	}
	open_tx = 1;
	if ((rc = tlm_journal_run_get(j, run_id, &r, err)) != 0)
		goto done;
	if (tlm_journal_held_epoch(j, run_id) == r.owner_epoch && r.owner_epoch > 0) {
		rc = tlm_journal__end(j, 0, "claiming a run", err); /* ours already */
		open_tx = 0;
		goto done;
	}
	if ((rc = check_owner(j, &r, flags, err)) != 0 ||
	    (rc = tlm_journal__write_owner(j, &r, err)) != 0)
		goto done;
	open_tx = 0;
	if ((rc = tlm_journal__end(j, 0, "committing a claim", err)) == 0 &&
	    (rc = tlm_journal__hold(j, run_id, r.owner_epoch + 1, err)) == 0)
		rc = tlm_journal__record_takeover(j, &r, flags, err);
done:
	if (open_tx)
		tlm_db_rollback(j->db);
	tlm_journal_run_clear(&r);
	return rc;
}
