/* Fencing (docs/internals/journal.md, "One owner per run"): every write about
 * a run happens in a transaction that first checks that this handle still
 * holds the run at the epoch the journal has now.  A claim by another
 * process raises the epoch, so the old owner's next write — whatever it is —
 * finds out and writes nothing.  The read-only check (fence_check) lets the
 * engine ask the same question before each request it sends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_internal.h"
#include "telemachy/metrics.h"

static tlm_journal_held *find_held(const tlm_journal *j, const char *run_id)
{
	size_t i;

	for (i = 0; run_id != NULL && i < j->nheld; i++)
		if (strcmp(j->held[i].run_id, run_id) == 0)
			return (tlm_journal_held *)&j->held[i];
	return NULL;
}

long long tlm_journal_held_epoch(const tlm_journal *j, const char *run_id)
{
	const tlm_journal_held *h = find_held(j, run_id);

	return h != NULL ? h->epoch : 0;
}

int tlm_journal__hold(tlm_journal *j, const char *run_id, long long epoch, tlm_error *err)
{
	tlm_journal_held *h = find_held(j, run_id);

	if (h == NULL) {
		if (j->nheld == j->capheld) {
			size_t cap = j->capheld ? j->capheld * 2 : 4;
			tlm_journal_held *p = realloc(j->held, cap * sizeof(*p));

			if (p == NULL)
				return tlm_error_set(err, TLM_ERROR, "journal: out of memory");
			j->held = p;
			j->capheld = cap;
		}
		h = &j->held[j->nheld++];
		snprintf(h->run_id, sizeof(h->run_id), "%s", run_id);
	}
	h->epoch = epoch;
	return 0;
}

/* Reads the run's epoch and owner; 1 when a row was found. */
static int read_epoch(tlm_journal *j, const char *run_id, long long *epoch, long *pid, char *host,
		      size_t cap, tlm_error *err)
{
	tlm_db_stmt *q;
	int step;

	char sql[128];

	/* On PostgreSQL the row stays locked until a write transaction ends, so
	 * a claim (which updates the row) waits for our commit, never slips in
	 * between the check and it; SQLite's write lock covers the whole file. */
	snprintf(sql, sizeof(sql),
		 "SELECT owner_epoch, owner_pid, owner_host FROM runs WHERE id = ?1%s",
		 tlm_db_for_update(j->db));
	if (j->epoch_q == NULL && tlm_journal__prepare(j, sql, &j->epoch_q, err) != 0)
		return TLM_ERROR;
	q = j->epoch_q;
	tlm_db_reset(q);
	tlm_db_bind_text(q, 1, run_id);
	step = tlm_db_step(q);
	if (step == TLM_DB_DONE)
		return 0;
	if (step != TLM_DB_ROW)
		return tlm_journal__db_error(j, err, "reading a run's owner");
	*epoch = tlm_db_column_int64(q, 0);
	*pid = (long)tlm_db_column_int64(q, 1);
	snprintf(host, cap, "%s", tlm_db_column_text(q, 2) ? tlm_db_column_text(q, 2) : "?");
	tlm_db_reset(q);
	return 1;
}

/* 0 when this handle holds run_id at the current epoch. */
static int check(tlm_journal *j, const char *run_id, tlm_error *err)
{
	char host[TLM_JOURNAL__HOST_MAX];
	long long epoch = 0, mine;
	long pid = 0;
	int rc;

	if ((rc = tlm_journal__check_run_id(j, run_id, err)) != 0)
		return rc;
	mine = tlm_journal_held_epoch(j, run_id);
	if ((rc = read_epoch(j, run_id, &epoch, &pid, host, sizeof(host), err)) < 0)
		return rc;
	if (rc == 0)
		return tlm_error_set(err, TLM_ENOTFOUND, "journal %s: no run %s", j->path, run_id);
	if (mine == 0)
		return tlm_error_set(err, TLM_EFENCED,
				     "journal %s: run %s is not claimed by this process", j->path,
				     run_id);
	if (mine != epoch)
		return tlm_error_set(
			err, TLM_EFENCED,
			"run %s was taken over by pid %ld on %s (owner epoch %lld, ours %lld)",
			run_id, pid, host, epoch, mine);
	return 0;
}

int tlm_journal_fence_check(tlm_journal *j, const char *run_id, tlm_error *err)
{
	return check(j, run_id, err);
}

int tlm_journal__begin_tx(tlm_journal *j, const char *run_id, tlm_error *err)
{
	int rc;

	if (tlm_db_begin(j->db) != 0)
		return tlm_journal__db_error(j, err, "starting a transaction");
	if ((rc = check(j, run_id, err)) != 0)
		tlm_db_rollback(j->db);
	return rc;
}

static int begin(tlm_journal *j, const char *run_id, int one, tlm_error *err)
{
	int rc;

	if (j->batching)
		return tlm_journal__batch_begin(j, run_id, one, err);
	/* An unbatched write after a batch (batching turned off meanwhile). */
	if ((rc = tlm_journal_flush(j, err)) != 0)
		return rc;
	return tlm_journal__begin_tx(j, run_id, err);
}

int tlm_journal__begin(tlm_journal *j, const char *run_id, tlm_error *err)
{
	return begin(j, run_id, 0, err);
}

int tlm_journal__begin_one(tlm_journal *j, const char *run_id, tlm_error *err)
{
	return begin(j, run_id, 1, err);
}

int tlm_journal__end(tlm_journal *j, int rc, const char *what, tlm_error *err)
{
	uint64_t t0 = tlm_metrics_now_us();

	if (j->in_write)
		return tlm_journal__batch_end(j, rc, err);
	if (rc == 0 && tlm_db_commit(j->db) != 0)
		rc = tlm_journal__db_error(j, err, what);
	else if (rc == 0)
		tlm_metrics_journal_commit(tlm_metrics_now_us() - t0);
	if (rc != 0)
		tlm_db_rollback(j->db);
	return rc;
}
