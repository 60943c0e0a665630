/* Shared by the files of src/journal/: the handle and the error helpers. */
#ifndef TLM_JOURNAL_INTERNAL_H
#define TLM_JOURNAL_INTERNAL_H

#include <stdint.h>

#include "telemachy/auditlog.h"
#include "telemachy/journal.h"
#include "journal/db.h"
#include "util/procid.h"

typedef struct tlm_journal_held {
	char run_id[TLM_JOURNAL_RUN_ID_LEN + 1];
	long long epoch;
} tlm_journal_held;

struct tlm_journal {
	tlm_db *db;
	char *path;             /* the database file or a label of the PostgreSQL
				 * database (no password), named in every message */
	tlm_proc_id self;       /* this process, as owners are recorded */
	tlm_journal_held *held; /* the runs this handle holds (a run; reconcile: many) */
	size_t nheld, capheld;
	tlm_db_stmt *epoch_q; /* the fence check's SELECT, prepared once */
	tlm_auditlog *trail;  /* the audit log file (trail.c); NULL: none */
	/* cancel requests by notification (runs.c; PostgreSQL only) */
	int cancel_listening;
	char cancel_seen[TLM_JOURNAL_RUN_ID_LEN + 1]; /* the last run one named */
	uint64_t cancel_read_ms;                      /* when the row was last read */
	/* group commit (batch.c) */
	int batching;             /* tlm_journal_set_batching: fenced writes share a transaction */
	int batch_open;           /* that transaction is open, about batch_run */
	uint64_t batch_opened_us; /* when (tlm_metrics_now_us) */
	uint64_t batch_no;        /* batches opened so far: the open one's number */
	uint64_t committed_no;    /* the last batch committed (tlm_journal_mark) */
	int in_write;             /* a write of the batch is under way */
	int sp_write;             /* ... inside a savepoint of its own */
	int sp_held;              /* the last write's savepoint is not released yet */
	char batch_run[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_error batch_lost; /* code != 0: the open batch was lost; the next flush says so */
	struct tlm_journal__queued *queued, *queued_tail; /* audit records awaiting the commit */
};

/* SQL for the current time, as every row stores it: ISO-8601 UTC,
 * milliseconds.  Each backend defines the function (db.h). */
#define TLM_JOURNAL__NOW "tlm_now()"

/* Room for a host name (owner_host, audit host), terminator included. */
#define TLM_JOURNAL__HOST_MAX 256

/* This machine's name into buf (empty if unknown), always terminated. */
void tlm_journal__hostname(char *buf, size_t size);

/* Fails with a message naming the database, what was being done and SQLite's
 * own words; maps constraint failures to TLM_ECONFLICT. */
int tlm_journal__db_error(tlm_journal *j, tlm_error *err, const char *what);

/* Prepares sql, failing through tlm_journal__db_error. */
int tlm_journal__prepare(tlm_journal *j, const char *sql, tlm_db_stmt **q, tlm_error *err);

/* Checks a caller's string: non-NULL, non-empty, at most max bytes. */
int tlm_journal__check_text(tlm_journal *j, const char *s, size_t max, const char *what,
			    tlm_error *err);

/* Checks a run id has the shape tlm_journal_run_new gives. */
int tlm_journal__check_run_id(tlm_journal *j, const char *run_id, tlm_error *err);

/* Creates dir and its missing parents 0700; a non-directory in the way fails. */
int tlm_journal__make_dir(const char *dir, tlm_error *err);

/* Creates (or tightens) the database file at path with mode 0600 before
 * SQLite opens it, so it is never readable by others, even for an instant. */
int tlm_journal__make_db_file(const char *path, tlm_error *err);

/* Brings the schema up to TLM_JOURNAL_SCHEMA_VERSION. */
int tlm_journal__migrate(tlm_journal *j, tlm_error *err);

/* A fenced write: BEGIN IMMEDIATE, then the check that this handle still
 * holds run_id at the journal's current epoch (else TLM_EFENCED, or
 * TLM_ENOTFOUND for an unknown run), with the transaction rolled back on
 * failure.  The caller runs its statements and ends with
 * tlm_journal__end(j, rc, what, err), which commits on rc == 0 (the fsync)
 * and rolls back otherwise; it returns the final rc. */
int tlm_journal__begin(tlm_journal *j, const char *run_id, tlm_error *err);
/* tlm_journal__begin for a write of exactly one statement, which nothing
 * after its step can fail once it changed a row: in a batch it takes no
 * savepoint of its own (batch.c).  On SQLite a failed statement undoes
 * itself; on PostgreSQL it loses the batch.  A write of several statements
 * uses tlm_journal__begin. */
int tlm_journal__begin_one(tlm_journal *j, const char *run_id, tlm_error *err);
int tlm_journal__end(tlm_journal *j, int rc, const char *what, tlm_error *err);

/* The transaction and fence check of tlm_journal__begin, unbatched. */
int tlm_journal__begin_tx(tlm_journal *j, const char *run_id, tlm_error *err);

/* Group commit (batch.c): with batching on, tlm_journal__begin and __end
 * run each write in a savepoint of the run's open batch; audit records
 * wait in a queue for the commit; close commits what is still open. */
int tlm_journal__batch_begin(tlm_journal *j, const char *run_id, int one, tlm_error *err);
int tlm_journal__batch_end(tlm_journal *j, int rc, tlm_error *err);
/* 1 inside a one-statement write of a batch: its statement may be queued
 * (tlm_db_step_queued), since its failure loses the batch whenever it is
 * learnt, and the batch commits before anything depends on it. */
int tlm_journal__queues(const tlm_journal *j);
/* The write's statement, queued when tlm_journal__queues says it may be. */
int tlm_journal__step_write(tlm_journal *j, tlm_db_stmt *q);
int tlm_journal__batch_queue(tlm_journal *j, const tlm_auditlog_event *ev);
void tlm_journal__batch_close(tlm_journal *j);

/* A SELECT of a run's columns FROM runs (spec: "spec", or "NULL" not to
 * read the text), read back with tlm_journal__read_run (runs.c).  The
 * heartbeat's age is computed by the database, so that it and heartbeat_at
 * share one clock; a heartbeat in the future (another host's clock ahead)
 * counts as fresh, so -1 only ever means "none". */
#define TLM_JOURNAL__RUN_COLUMNS(spec)                                                             \
	"SELECT id, workflow, spec_hash, " spec ", state, created_at, updated_at,"                 \
	" owner_host, owner_pid, heartbeat_at,"                                                    \
	" tlm_age_ms(heartbeat_at),"                                                               \
	" control_plane, cancel_requested_at, owner_epoch, owner_domain, owner_start FROM runs"
int tlm_journal__read_run(tlm_journal *j, tlm_db_stmt *q, int with_spec, tlm_journal_run *out,
			  tlm_error *err);

/* The filter of a listing of runs (tlm_journal_runs), for a WHERE clause
 * over runs: every query that must select the same runs says it this way. */
#define TLM_JOURNAL__RUN_FILTER                                                                    \
	"(?1 IS NULL OR runs.state = ?1) AND (?2 IS NULL OR runs.workflow = ?2)"

/* Prepares sql (with TLM_JOURNAL__RUN_FILTER in it) and binds the filter's
 * state and workflow, each NULL for any. */
int tlm_journal__prepare_run_filter(tlm_journal *j, const char *sql, const tlm_run_state *state,
				    const char *workflow, tlm_db_stmt **q, tlm_error *err);

/* Inserts a run: pending and held by this handle at epoch 1 (run_new), or
 * queued with no owner (submit; control_plane may be NULL). */
int tlm_journal__insert_run(tlm_journal *j, const char *workflow, const char *spec_text,
			    const char *control_plane, int queued,
			    char run_id[TLM_JOURNAL_RUN_ID_LEN + 1], tlm_error *err);

/* Writes this process as run r's owner at epoch r->owner_epoch + 1, a
 * compare-and-set on the epoch (owner.c); inside the caller's transaction. */
int tlm_journal__write_owner(tlm_journal *j, const tlm_journal_run *r, tlm_error *err);

/* The audit record of a claim over r's previous owner (owner.c). */
int tlm_journal__record_takeover(tlm_journal *j, const tlm_journal_run *r, unsigned flags,
				 tlm_error *err);

/* Whether url names credentials (scheme://user:pass@host/): the journal
 * holds no secrets (runs.c). */
int tlm_journal__url_has_userinfo(const char *url);

/* Records that this handle holds run_id at epoch (claim, run_new). */
int tlm_journal__hold(tlm_journal *j, const char *run_id, long long epoch, tlm_error *err);

/* ---- The audit log (trail.c, docs/audit.md) ----------------------------
 * A state-changing call fills a change, calls _before (reads the state and
 * the run's workflow while j has an audit log), writes, and returns
 * _after(j, &c, rc, err): on rc == 0 it reads the state back and appends a
 * record when it changed; an append that fails is the call's error. */
typedef struct tlm_journal__change {
	const char *run_id;
	const char *kind; /* "run", "agent", "team", "task" */
	const char *name; /* the run id, the resource name, or a task's subject */
	const char *team; /* tasks only; NULL otherwise */
	int attempt;      /* tasks only */
	char workflow[TLM_JOURNAL_NAME_MAX + 1];
	char from[32];
	char detail[TLM_AUDITLOG_DETAIL_MAX + 1]; /* last_error, or a task's ended note */
} tlm_journal__change;

void tlm_journal__before(tlm_journal *j, tlm_journal__change *c);
int tlm_journal__after(tlm_journal *j, tlm_journal__change *c, int rc, tlm_error *err);

/* Appends one record as given (no-op without an audit log). */
int tlm_journal__record(tlm_journal *j, const char *run_id, const char *workflow, const char *kind,
			const char *name, const char *from, const char *to, const char *action,
			const char *detail, tlm_error *err);

/* Attaches the process-wide default audit log, if one was set. */
int tlm_journal__attach_default(tlm_journal *j, tlm_error *err);

#endif
