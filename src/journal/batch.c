/* Group commit (docs/internals/journal.md, "Group commit"): with batching on,
 * the fenced writes about one run share one open transaction, and
 * tlm_journal_flush commits them with one fsync.  The engine flushes before
 * any request leaves and before it waits, so the write-ahead rule holds (a
 * request is sent only once what it depends on is durable) while a wave of
 * a hundred task submissions costs one commit, not a hundred.
 *
 * Each write stays atomic on its own: it runs inside a SAVEPOINT, so a write
 * that fails is undone alone and the batch goes on.  A write's savepoint is
 * released when the next one is taken (one statement string, one round
 * trip on PostgreSQL) or by the commit.  A write of one statement
 * (tlm_journal__begin_one) takes none.  SQLite undoes a failed statement by
 * itself and the batch goes on, unless an I/O error or a full disk rolled
 * back the whole transaction.  PostgreSQL aborts the whole transaction on
 * any failed statement: there a failed one-statement write loses the batch,
 * exactly as a lost connection does (a statement that changes nothing, an
 * update of a row not journaled, is no failure to the database).  A batch whose
 * transaction itself is lost (a failed COMMIT, a dropped connection, a
 * savepoint that cannot be rolled back, a failed one-statement write on
 * PostgreSQL) is reported as TLM_EFENCED by the write that lost it and by
 * every write and flush after: what it held never reached the journal, exactly as if the
 * process had died there, and its owner must stop before another request.
 * The fence is checked once, when the batch opens: from then on the batch
 * holds the write lock (SQLite) or the run's row (PostgreSQL, FOR UPDATE),
 * so no claim can slip in before the commit. */
#include <stdlib.h>
#include <string.h>

#include "journal/journal_internal.h"
#include "telemachy/metrics.h"
#include "util/crashpoint.h"

struct tlm_journal__queued {
	struct tlm_journal__queued *next;
	tlm_auditlog_event ev;
	char text[]; /* the event's strings, one after the other */
};

/* One statement without parameters, prepared once (the db's cache). */
static int run_sql(tlm_journal *j, const char *sql)
{
	tlm_db_stmt *q = NULL;
	int rc;

	if (tlm_db_prepare(j->db, sql, &q) != 0)
		return TLM_DB_FAIL;
	rc = tlm_db_step(q) == TLM_DB_DONE ? 0 : TLM_DB_FAIL;
	tlm_db_finalize(q);
	return rc;
}

static void drop_queued(tlm_journal *j)
{
	while (j->queued != NULL) {
		struct tlm_journal__queued *q = j->queued;

		j->queued = q->next;
		free(q);
	}
	j->queued_tail = NULL;
}

/* The batch's transaction is gone: everything it held is lost. */
static int lose(tlm_journal *j, const char *what)
{
	/* The database's message first: the rollback replaces it. */
	if (j->batch_lost.code == 0)
		tlm_error_set(&j->batch_lost, TLM_EFENCED,
			      "journal %s: %s failed (%s): the writes of this batch were never "
			      "committed; stopping at once, the journal holds the run as of its "
			      "last commit",
			      j->path, what, tlm_db_errmsg(j->db));
	tlm_db_rollback(j->db);
	j->batch_open = j->sp_held = 0;
	drop_queued(j);
	return TLM_EFENCED;
}

static int lost(tlm_journal *j, tlm_error *err)
{
	if (err != NULL)
		*err = j->batch_lost;
	return j->batch_lost.code;
}

/* The previous write's savepoint is released and this one's taken.  On
 * PostgreSQL in one round trip, one string; on SQLite as two cached
 * statements, which spares parsing that string for every write (it was
 * a tenth of the engine's CPU time on bench/run M). */
static int take_savepoint(tlm_journal *j)
{
	if (!j->sp_held)
		return run_sql(j, "SAVEPOINT tlm_write");
	if (tlm_db_which(j->db) == TLM_DB_POSTGRES)
		return tlm_db_exec(j->db, "RELEASE tlm_write; SAVEPOINT tlm_write");
	return run_sql(j, "RELEASE tlm_write") != 0 ? TLM_DB_FAIL
						    : run_sql(j, "SAVEPOINT tlm_write");
}

int tlm_journal__batch_begin(tlm_journal *j, const char *run_id, int one, tlm_error *err)
{
	int rc;

	if (j->batch_lost.code != 0)
		return lost(j, err);
	if (j->batch_open && strcmp(j->batch_run, run_id) != 0 &&
	    (rc = tlm_journal_flush(j, err)) != 0)
		return rc;
	if (!j->batch_open) {
		if ((rc = tlm_journal__begin_tx(j, run_id, err)) != 0)
			return rc;
		j->batch_open = 1;
		j->batch_no++;
		j->batch_opened_us = tlm_metrics_now_us();
		memcpy(j->batch_run, run_id, sizeof(j->batch_run));
	}
	j->in_write = 1;
	j->sp_write = !one;
	if (!j->sp_write)
		return 0; /* the savepoint of the write before stays held */
	if (take_savepoint(j) != 0) {
		j->in_write = 0;
		lose(j, "opening a savepoint");
		return lost(j, err);
	}
	j->sp_held = 0;
	return 0;
}

int tlm_journal__batch_end(tlm_journal *j, int rc, tlm_error *err)
{
	j->in_write = 0;
	if (rc == 0) {
		j->sp_held |= j->sp_write; /* released by the next write, or by the commit */
		return 0;
	}
	if (rc == TLM_EFENCED && j->batch_lost.code != 0)
		return rc;
	/* A one-statement write undid itself, unless its transaction is gone
	 * with it; any other write is undone to its savepoint.  A batch lost
	 * here stops the caller at once, as a failed commit would. */
	if (!j->sp_write) {
		if (!tlm_db_tx_usable(j->db)) {
			lose(j, "a write");
			return lost(j, err);
		}
		return rc;
	}
	if (tlm_db_exec(j->db, "ROLLBACK TO tlm_write; RELEASE tlm_write") != 0) {
		lose(j, "undoing a failed write");
		return lost(j, err);
	}
	return rc;
}

int tlm_journal__queues(const tlm_journal *j)
{
	return j->in_write && !j->sp_write;
}

int tlm_journal__step_write(tlm_journal *j, tlm_db_stmt *q)
{
	return tlm_journal__queues(j) ? tlm_db_step_queued(q) : tlm_db_step(q);
}

int tlm_journal__batch_queue(tlm_journal *j, const tlm_auditlog_event *ev)
{
	const char *in[8] = { ev->run_id, ev->workflow, ev->kind,   ev->name,
			      ev->from,   ev->to,       ev->action, ev->detail };
	const char **out[8];
	struct tlm_journal__queued *q;
	size_t n = 0, i;
	char *p;

	for (i = 0; i < 8; i++)
		n += in[i] != NULL ? strlen(in[i]) + 1 : 0;
	if ((q = calloc(1, sizeof(*q) + n)) == NULL)
		return TLM_ERROR;
	out[0] = &q->ev.run_id, out[1] = &q->ev.workflow, out[2] = &q->ev.kind;
	out[3] = &q->ev.name, out[4] = &q->ev.from, out[5] = &q->ev.to;
	out[6] = &q->ev.action, out[7] = &q->ev.detail;
	for (i = 0, p = q->text; i < 8; i++) {
		if (in[i] == NULL)
			continue;
		n = strlen(in[i]) + 1;
		memcpy(p, in[i], n);
		*out[i] = p;
		p += n;
	}
	if (j->queued_tail != NULL)
		j->queued_tail->next = q;
	else
		j->queued = q;
	j->queued_tail = q;
	return 0;
}

/* The audit records of a committed batch, in order; the first failure is
 * the flush's error (the journal itself is committed). */
static int append_queued(tlm_journal *j, tlm_error *err)
{
	int rc = 0;

	while (j->queued != NULL) {
		struct tlm_journal__queued *q = j->queued;

		if (rc == 0 && j->trail != NULL)
			rc = tlm_auditlog_append(j->trail, &q->ev, err);
		j->queued = q->next;
		free(q);
	}
	j->queued_tail = NULL;
	return rc;
}

int tlm_journal_flush(tlm_journal *j, tlm_error *err)
{
	uint64_t t0;

	if (j->batch_lost.code != 0) {
		int rc = lost(j, err);

		j->batch_lost.code = 0;
		j->batch_lost.message[0] = '\0';
		return rc;
	}
	if (!j->batch_open)
		return 0;
	t0 = tlm_metrics_now_us();
	if (tlm_db_commit(j->db) != 0) {
		lose(j, "committing");
		return tlm_journal_flush(j, err);
	}
	j->batch_open = j->sp_held = 0;
	j->committed_no = j->batch_no;
	tlm_metrics_journal_commit(tlm_metrics_now_us() - t0);
	tlm_crashpoint("journal commit");
	return append_queued(j, err);
}

int tlm_journal_set_batching(tlm_journal *j, int on, tlm_error *err)
{
	int rc = on ? 0 : tlm_journal_flush(j, err);

	j->batching = on != 0;
	return rc;
}

void tlm_journal_push(tlm_journal *j)
{
	if (j->batch_open)
		tlm_db_push(j->db);
}

uint64_t tlm_journal_batch_age_us(const tlm_journal *j)
{
	return j->batch_open ? tlm_metrics_now_us() - j->batch_opened_us : 0;
}

uint64_t tlm_journal_mark(const tlm_journal *j)
{
	return tlm_journal_unflushed(j) ? j->batch_no : j->committed_no;
}

uint64_t tlm_journal_committed_mark(const tlm_journal *j)
{
	return j->committed_no;
}

int tlm_journal_durable(const tlm_journal *j, uint64_t mark)
{
	return j->batch_lost.code == 0 && mark <= j->committed_no;
}

int tlm_journal_unflushed(const tlm_journal *j)
{
	return j->batch_open || j->batch_lost.code != 0;
}

void tlm_journal__batch_close(tlm_journal *j)
{
	/* A batch still open at close: the fence held since it opened, so
	 * committing it is what an unbatched journal would have done. */
	if (j->batch_open || j->batch_lost.code != 0)
		(void)tlm_journal_flush(j, NULL);
	drop_queued(j);
}
