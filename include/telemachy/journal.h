/*
 * telemachy — the write-ahead journal (docs/design.md §1).
 *
 * One SQLite database per state directory (WAL, synchronous=FULL) that knows
 * every remote resource from before it might exist until it is deleted:
 * runs, resources (agents and teams) and task attempts.  Each call that
 * writes is one transaction, committed and fsynced before it returns, so a
 * crash at any instruction leaves a journal that recovery can trust.
 *
 * The journal stores no credentials of telemachy's own: the API key and NATS
 * credentials never go in, and callers must not pass secrets in names, remote
 * ids, errors or statuses.  The spec copy is the YAML as the user wrote it
 * (resume needs it), which is one reason the file is 0600.
 *
 * A tlm_journal is used by one thread at a time (the engine thread).  Other
 * processes (`status`, `list`) may open the same directory concurrently.
 * See docs/internals/journal.md for the record format and recovery rules.
 */
#ifndef TELEMACHY_JOURNAL_H
#define TELEMACHY_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "telemachy/error.h"

#define TLM_JOURNAL_SCHEMA_VERSION 8
#define TLM_JOURNAL_FILE           "journal.db"
#define TLM_JOURNAL_RUN_ID_LEN     8         /* [a-z0-9]{8}, part of every resource name */
#define TLM_JOURNAL_NAME_MAX       255       /* resource names, teams, subjects */
#define TLM_JOURNAL_TEXT_MAX       4096      /* remote ids, states, last errors */
#define TLM_JOURNAL_STALE_MS       15000     /* an older heartbeat: the owner is presumed dead */
#define TLM_JOURNAL_BUILTIN        "builtin" /* control_plane of a run on the in-process server */

typedef struct tlm_journal tlm_journal;

/* A run's life (docs/design.md §4).  The engine moves a run between these
 * with one transition function (src/engine/states.c); the journal checks
 * that a state is one of them. */
typedef enum tlm_run_state {
	TLM_RUN_PENDING = 0,
	TLM_RUN_PROVISIONING,
	TLM_RUN_RUNNING,
	TLM_RUN_TEARING_DOWN,
	TLM_RUN_COMPLETED, /* final from here on */
	TLM_RUN_FAILED,
	TLM_RUN_CANCELLED,
	TLM_RUN_TEARDOWN_FAILED,
	TLM_RUN_QUEUED /* submitted, waiting for a worker (docs/distributed.md) */
} tlm_run_state;

#define TLM_RUN_STATE_COUNT 9

/* "pending", "provisioning", ...; "?" for a value out of range. */
const char *tlm_run_state_name(tlm_run_state s);
/* TLM_EINVALID for a name that is none of the above. */
int tlm_run_state_parse(const char *name, tlm_run_state *out);
/* The one definition of "the run has ended": completed, failed, cancelled,
 * teardown_failed.  An ended run needs no owner. */
int tlm_run_state_is_final(tlm_run_state s);

/* The status of one task attempt as journaled (docs/design.md §4's task
 * states). */
typedef enum tlm_attempt_status {
	TLM_ATTEMPT_PENDING = 0, /* journaled before its create is sent */
	TLM_ATTEMPT_SUBMITTED,
	TLM_ATTEMPT_RUNNING,
	TLM_ATTEMPT_COMPLETED, /* terminal from here on */
	TLM_ATTEMPT_FAILED,
	TLM_ATTEMPT_SKIPPED,
	TLM_ATTEMPT_CANCELLED,
	TLM_ATTEMPT_TIMED_OUT
} tlm_attempt_status;

#define TLM_ATTEMPT_STATUS_COUNT 8

const char *tlm_attempt_status_name(tlm_attempt_status s);
int tlm_attempt_status_parse(const char *name, tlm_attempt_status *out);

typedef enum tlm_journal_kind { TLM_JOURNAL_AGENT = 0, TLM_JOURNAL_TEAM } tlm_journal_kind;

/* The life of a remote resource.  intent: the create may have been sent,
 * outcome unknown; created: remote id known; absent: looked up by name and not
 * found; abandoned: the operator gave up on it (`abandon`). */
typedef enum tlm_journal_state {
	TLM_JOURNAL_INTENT = 0,
	TLM_JOURNAL_CREATED,
	TLM_JOURNAL_STARTED,
	TLM_JOURNAL_DELETING,
	TLM_JOURNAL_DELETED,
	TLM_JOURNAL_ABSENT,
	TLM_JOURNAL_ABANDONED
} tlm_journal_state;

#define TLM_JOURNAL_STATE_COUNT 7

/* One resource row as read back; strings live until the callback returns. */
typedef struct tlm_journal_resource {
	tlm_journal_kind kind;
	const char *name;
	const char *remote_id; /* NULL while only an intent */
	tlm_journal_state state;
	const char *last_error; /* NULL when none */
	const char *updated_at; /* ISO-8601 UTC with milliseconds */
} tlm_journal_resource;

/* One task attempt as read back; strings live until the callback returns. */
typedef struct tlm_journal_task {
	const char *team;
	const char *subject;
	int attempt;
	const char *remote_id; /* NULL until submitted */
	tlm_attempt_status status;
	const char *updated_at;
	const char *ended;  /* the note it was ended with on the control plane, or NULL */
	const char *result; /* what the control plane said of its end (JSON), or NULL */
} tlm_journal_task;

/* The largest result a task attempt keeps (tlm_journal_task_result). */
#define TLM_JOURNAL_RESULT_MAX 16384

/* A run as read back (tlm_journal_run_get); release with tlm_journal_run_clear. */
typedef struct tlm_journal_run {
	char id[TLM_JOURNAL_RUN_ID_LEN + 1];
	char *workflow;
	char *spec_hash; /* SHA-256 of the spec text, lowercase hex */
	char *spec;
	tlm_run_state state;
	char *created_at;
	char *updated_at;
	char *owner_host; /* for people: the owner's host name */
	long owner_pid;
	long long owner_epoch;          /* bumped by every claim (fencing token) */
	char *owner_domain;             /* where owner_pid means something; NULL: not recorded */
	unsigned long long owner_start; /* the owner process's start time; 0: not recorded */
	char *heartbeat_at;
	long heartbeat_age_ms;     /* now - heartbeat_at, computed when read (-1: none) */
	char *control_plane;       /* the URL, TLM_JOURNAL_BUILTIN, or NULL (not recorded) */
	char *cancel_requested_at; /* NULL unless `telemachy cancel` asked */
} tlm_journal_run;

/* What a run's owner looks like from here. */
typedef enum tlm_journal_owner {
	TLM_JOURNAL_OWNER_NONE = 0, /* the run is in a final state: nobody needs to own it */
	TLM_JOURNAL_OWNER_ALIVE,    /* same host: that very process runs; else heartbeat fresh */
	TLM_JOURNAL_OWNER_DEAD      /* same host: it does not; else heartbeat stale */
} tlm_journal_owner;

/* One audit entry as read back; strings live until the callback returns. */
typedef struct tlm_journal_audit_entry {
	long long seq;
	const char *at;     /* ISO-8601 UTC with milliseconds */
	const char *run_id; /* NULL for entries about no run */
	const char *action; /* e.g. "abandon", "teardown", "reconcile-delete", "cancel" */
	const char *detail;
	const char *user; /* login name of the process that wrote it */
	const char *host;
	long pid;
} tlm_journal_audit_entry;

/* A visitor over rows; a non-zero return stops the walk and is returned. */
typedef int (*tlm_journal_resource_cb)(const tlm_journal_resource *r, void *ctx);
typedef int (*tlm_journal_task_cb)(const tlm_journal_task *t, void *ctx);
typedef int (*tlm_journal_run_cb)(const tlm_journal_run *r, void *ctx);
typedef int (*tlm_journal_audit_cb)(const tlm_journal_audit_entry *a, void *ctx);

/* Names for logs and the database, and back ("agent", "intent", ...).
 * _parse returns TLM_EINVALID for an unknown name. */
const char *tlm_journal_kind_name(tlm_journal_kind kind);
const char *tlm_journal_state_name(tlm_journal_state state);
int tlm_journal_kind_parse(const char *s, tlm_journal_kind *out);
int tlm_journal_state_parse(const char *s, tlm_journal_state *out);

/* The default state directory: $TELEMACHY_STATE_DIR, else
 * $XDG_STATE_HOME/telemachy, else ~/.local/state/telemachy (HOME, then the
 * password database).  *out is malloc'd; the caller frees it. */
int tlm_journal_default_dir(char **out, tlm_error *err);

/* Where the journal is (docs/distributed.md): `where` when given, else
 * $TELEMACHY_JOURNAL, else tlm_journal_default_dir.  A postgres:// or
 * postgresql:// URI names a shared PostgreSQL journal; anything else is a
 * state directory holding the SQLite journal ("sqlite:" before it is
 * allowed, and "sqlite:" alone is the default directory).  *out is the
 * URI or the directory, malloc'd. */
int tlm_journal_locate(const char *where, char **out, tlm_error *err);

/* 1 when where is a PostgreSQL URI (postgres:// or postgresql://). */
int tlm_journal_is_shared(const char *where);

/* Opens the journal at `where` (tlm_journal_locate): for SQLite it creates
 * missing directories 0700 and the database 0600; on both it migrates the
 * schema up to TLM_JOURNAL_SCHEMA_VERSION.  A newer schema than this build
 * knows is TLM_ECONFLICT: an old binary must not write a journal it does not
 * understand. */
int tlm_journal_open(tlm_journal **out, const char *where, tlm_error *err);

/* Closes the journal; NULL is a no-op.  Nothing is lost by not calling it:
 * every write is already durable. */
void tlm_journal_close(tlm_journal *j);

/* Opens dir's existing journal read-only, for `telemachy doctor`: nothing
 * is created or migrated and no audit log attached (TLM_ENOTFOUND when
 * there is no database file).  Readers work on it while its schema is
 * TLM_JOURNAL_SCHEMA_VERSION; a file that is not SQLite fails at the first
 * read. */
int tlm_journal_open_readonly(tlm_journal **out, const char *dir, tlm_error *err);

/* SQLite's PRAGMA quick_check: *ok 1 when the database is sound, else
 * detail (size bytes, always terminated) gets SQLite's first finding.  A
 * file that is not a database is an error (err says SQLite's words). */
int tlm_journal_quick_check(tlm_journal *j, int *ok, char *detail, size_t size, tlm_error *err);

/* The database file's path, for messages (owned by j). */
const char *tlm_journal_path(const tlm_journal *j);

/* The schema version recorded in the database. */
int tlm_journal_schema_version(tlm_journal *j, int *out, tlm_error *err);

/* Records a new run in state "pending", owned by this process (pid, host,
 * start time, heartbeat now, epoch 1: the handle holds the run), with a copy
 * of the spec and its SHA-256.  run_id receives a fresh random id, unique in
 * this journal; it goes into every resource name. */
int tlm_journal_run_new(tlm_journal *j, const char *workflow, const char *spec_text,
			char run_id[TLM_JOURNAL_RUN_ID_LEN + 1], tlm_error *err);

/* ---- Fencing (docs/internals/journal.md, "One owner per run") ----------
 * A handle holds the runs it created or claimed, each with the epoch its
 * claim wrote.  Every write about a held run checks, inside its own
 * transaction, that the run's epoch is still that one; a run claimed by
 * someone else since is TLM_EFENCED, and nothing is written.  Writes about
 * a run the handle does not hold are TLM_EFENCED too (a programming error).
 * Exceptions, on purpose: tlm_journal_run_request_cancel (anyone may ask)
 * and tlm_journal_audit (an append-only record of who did what). */

/* Sets a run's state (TLM_EINVALID for a value out of range); TLM_ENOTFOUND
 * for an unknown run; fenced. */
int tlm_journal_run_set_state(tlm_journal *j, const char *run_id, tlm_run_state state,
			      tlm_error *err);

/* Refreshes the run's heartbeat: the lease other hosts judge liveness by.
 * Compare-and-set on the epoch: a run taken over is TLM_EFENCED, and the
 * owner columns are never overwritten (only a claim writes them). */
int tlm_journal_run_heartbeat(tlm_journal *j, const char *run_id, tlm_error *err);

/* A read of the run's epoch only: 0 while this handle still holds run_id,
 * TLM_EFENCED (message naming the new owner) once it does not.  Cheap (one
 * prepared SELECT); the engine asks before every request it sends. */
int tlm_journal_fence_check(tlm_journal *j, const char *run_id, tlm_error *err);

/* Group commit (docs/internals/journal.md, "Group commit").  With batching
 * on, the fenced writes about a run join one open transaction (each write
 * still atomic, in a savepoint of its own; the fence checked when the batch
 * opens) until tlm_journal_flush commits them all with one fsync.  The
 * caller must flush before anything that depends on those writes leaves the
 * process (a request, a printed result) and before it waits: an open batch
 * holds the journal's write lock.  Turning batching off flushes. */
int tlm_journal_set_batching(tlm_journal *j, int on, tlm_error *err);

/* Commits the open batch, if any.  TLM_EFENCED when the batch was lost (a
 * failed commit, a lost connection): its writes never reached the journal
 * and the run must be left at once, as after a crash.  Any other error: the
 * journal is committed but an audit record could not be appended. */
int tlm_journal_flush(tlm_journal *j, tlm_error *err);

/* Sends the open batch's queued writes (PostgreSQL, docs/internals/journal.md,
 * "Queued writes on PostgreSQL") to the database without waiting for them,
 * so that they run while the caller waits for other work and the commit
 * waits for less.  Nothing to do on SQLite.  A failure is learnt by the next
 * call that waits for the database, tlm_journal_flush at the latest. */
void tlm_journal_push(tlm_journal *j);

/* 1 while writes wait for tlm_journal_flush. */
int tlm_journal_unflushed(const tlm_journal *j);

/* Marks for the write-ahead rule under group commit (docs/internals/journal.md,
 * "Group commit"): tlm_journal_mark is the mark of the latest write (a
 * request decided now depends on the writes up to it);
 * tlm_journal_committed_mark the highest mark committed; tlm_journal_durable
 * is 1 once every write up to mark is committed, and 0 while a lost batch
 * is unreported (the next flush says so).  Without batching every write is
 * committed when it returns and every mark is durable. */
uint64_t tlm_journal_mark(const tlm_journal *j);
uint64_t tlm_journal_committed_mark(const tlm_journal *j);
int tlm_journal_durable(const tlm_journal *j, uint64_t mark);

/* How long (µs, monotonic) the open batch has been open; 0 when none. */
uint64_t tlm_journal_batch_age_us(const tlm_journal *j);

/* The epoch this handle holds run_id at (0 when it holds it not). */
long long tlm_journal_held_epoch(const tlm_journal *j, const char *run_id);

/* Records where the run's resources live: the control plane's URL (no
 * credentials in it: a URL with user:password@ is TLM_EINVALID), or
 * TLM_JOURNAL_BUILTIN for the in-process server. */
int tlm_journal_run_set_control_plane(tlm_journal *j, const char *run_id, const char *url,
				      tlm_error *err);

/* Claim flags. */
#define TLM_JOURNAL_CLAIM_FORCE 1u /* take the run even from an owner that looks alive */

/* Takes ownership of a run for this process, atomically (BEGIN IMMEDIATE):
 * the epoch goes up by one and this handle holds the run at the new epoch;
 * owner pid, host, domain, start time and heartbeat are this process's.
 * An owner that looks alive (tlm_journal_run_owner) and is not this very
 * process is TLM_ECONFLICT naming its pid and host, unless flags has
 * TLM_JOURNAL_CLAIM_FORCE.  A run this handle holds at the current epoch is
 * claimed again without a new epoch.  `resume`, `teardown`, `cancel` of a
 * dead owner's run, `abandon` and `reconcile --delete` claim first. */
int tlm_journal_run_claim(tlm_journal *j, const char *run_id, unsigned flags, tlm_error *err);

/* Whether r's owner lives: NONE for final states; on the same host (the same
 * boot and pid namespace, and a recorded start time) ALIVE exactly while
 * that process (pid and start time) runs — a stopped or slow one too, a
 * reused pid not; elsewhere (or for a journal that recorded no start time)
 * DEAD once the heartbeat is older than TLM_JOURNAL_STALE_MS, ALIVE before. */
tlm_journal_owner tlm_journal_run_owner(const tlm_journal_run *r);
const char *tlm_journal_owner_name(tlm_journal_owner o); /* "-", "alive", "dead" */

/* ---- The queue (docs/distributed.md) ------------------------------------
 * submit writes a queued run (no owner; control_plane may be NULL) and
 * wakes workers; claimable counts the runs a worker could take; claim_next
 * takes one — a run whose owner is dead first, else the oldest queued — as
 * a claim does (the epoch raised, this handle holds it), or TLM_ENOTFOUND;
 * release clears the owner of a run this handle holds, so that another
 * worker takes it at once (a worker that drains). */
#define TLM_JOURNAL_CHANNEL_RUNS   "tlm_runs"   /* NOTIFY: a run was submitted */
#define TLM_JOURNAL_CHANNEL_CANCEL "tlm_cancel" /* NOTIFY: a cancel was asked */
int tlm_journal_run_submit(tlm_journal *j, const char *workflow, const char *spec_text,
			   const char *control_plane, char run_id[TLM_JOURNAL_RUN_ID_LEN + 1],
			   tlm_error *err);
int tlm_journal_claimable(tlm_journal *j, long *n, tlm_error *err);
int tlm_journal_run_claim_next(tlm_journal *j, char run_id[TLM_JOURNAL_RUN_ID_LEN + 1],
			       tlm_error *err);
int tlm_journal_run_release(tlm_journal *j, const char *run_id, tlm_error *err);

/* LISTEN on channel (PostgreSQL; a no-op on SQLite), then wait: at most
 * timeout_ms (a signal ends it early) for a notification; 1 when one came,
 * 0 on time-out, a TLM_E* code when the connection failed. */
int tlm_journal_listen(tlm_journal *j, const char *channel, tlm_error *err);
int tlm_journal_wait(tlm_journal *j, long timeout_ms, tlm_error *err);

/* A queued run no worker has claimed is cancelled where it stands:
 * nothing was made for it.  *done 1 then; 0 when it is not queued, or a
 * worker claimed it first (then its owner is to be asked).  Not fenced
 * (the run has no owner); one conditional statement decides the race. */
int tlm_journal_run_dequeue(tlm_journal *j, const char *run_id, int *done, tlm_error *err);

/* Asks the run's owner to cancel (sets cancel_requested_at); the engine
 * polls it.  *yes gets 1 once requested. */
int tlm_journal_run_request_cancel(tlm_journal *j, const char *run_id, tlm_error *err);
int tlm_journal_run_cancel_requested(tlm_journal *j, const char *run_id, int *yes, tlm_error *err);

/* Calls cb for each run, newest first (created_at, then id), optionally only
 * those in *state and/or of workflow (NULL: any).  r->spec is NULL here (the
 * spec text is not loaded by listings); other fields as tlm_journal_run_get. */
int tlm_journal_runs(tlm_journal *j, const tlm_run_state *state, const char *workflow,
		     tlm_journal_run_cb cb, void *ctx, tlm_error *err);

/* The newest run's id; TLM_ENOTFOUND when the journal has none. */
int tlm_journal_latest_run(tlm_journal *j, char run_id[TLM_JOURNAL_RUN_ID_LEN + 1], tlm_error *err);

/* ---- The audit log file (docs/audit.md) ---------------------------------
 * With an audit log attached, every state-changing call above and below
 * that succeeded also appends a hash-chained record to that file (run
 * states, resource states, attempt statuses, takeovers, cancel requests,
 * audit entries), after its SQLite commit.  An append that fails makes the
 * call fail (TLM_ERROR, TLM_ETIMEOUT, TLM_EINVALID, the message naming the
 * file) although the journal row is written: the caller must treat it as
 * the run's failure, never carry on silently. */

/* Attaches the audit log at path (opened at once, so a bad path fails here,
 * see tlm_auditlog_open); NULL detaches.  Replaces any previous one. */
int tlm_journal_set_audit_log(tlm_journal *j, const char *path, tlm_error *err);

/* The attached audit log's path, or NULL. */
const char *tlm_journal_audit_log(const tlm_journal *j);

/* For this process: every journal opened afterwards gets the audit log at
 * path attached by tlm_journal_open (which fails if it cannot be opened).
 * path is borrowed and must outlive those opens; NULL: none.  The CLI sets
 * it from AUDIT_LOG_PATH once, before any command runs. */
void tlm_journal_set_default_audit_log(const char *path);

/* Appends an audit entry (who: this process's pid, host, login name; when:
 * now).  run_id may be NULL.  action: a short word; detail: free text
 * (capped at TLM_JOURNAL_TEXT_MAX, never a secret). */
int tlm_journal_audit(tlm_journal *j, const char *run_id, const char *action, const char *detail,
		      tlm_error *err);

/* Calls cb for the audit entries of run_id (NULL: all), oldest first. */
int tlm_journal_audits(tlm_journal *j, const char *run_id, tlm_journal_audit_cb cb, void *ctx,
		       tlm_error *err);

/* A resource that is deleted or absent goes back to "intent" (remote id
 * cleared), so that a resumed run may create it again under its name.
 * TLM_ENOTFOUND if never journaled; TLM_ECONFLICT from any other state. */
int tlm_journal_reintent(tlm_journal *j, const char *run_id, tlm_journal_kind kind,
			 const char *name, tlm_error *err);

/* Reads a run; clear *out with tlm_journal_run_clear.  TLM_ENOTFOUND if none. */
int tlm_journal_run_get(tlm_journal *j, const char *run_id, tlm_journal_run *out, tlm_error *err);
void tlm_journal_run_clear(tlm_journal_run *r);

/* Records the intent to create (kind, name) for run: durable before
 * returning, because the caller sends the create right after, and recovery
 * after a crash relies on this row existing to look the name up.  A name
 * already journaled for the run is TLM_ECONFLICT; an unknown run TLM_ENOTFOUND. */
int tlm_journal_intent(tlm_journal *j, const char *run_id, tlm_journal_kind kind, const char *name,
		       tlm_error *err);

/* The intents of a whole wave in one transaction and one fsync (group
 * commit): all n rows are written or none is (a duplicate, inside the batch
 * or already journaled, is TLM_ECONFLICT and writes nothing). */
int tlm_journal_intents(tlm_journal *j, const char *run_id, tlm_journal_kind kind,
			const char *const *names, size_t n, tlm_error *err);

/* Records the remote id of a created resource (state "created"): durable
 * before returning, because the caller's next request about the resource (a
 * start, a delete) may fail, and teardown must still find it.  TLM_ENOTFOUND
 * when no intent was journaled: that would break the write-ahead order. */
int tlm_journal_created(tlm_journal *j, const char *run_id, tlm_journal_kind kind, const char *name,
			const char *remote_id, tlm_error *err);

/* Moves a resource to state, recording last_error (NULL clears it).
 * TLM_ENOTFOUND when the resource was never journaled. */
int tlm_journal_set_resource_state(tlm_journal *j, const char *run_id, tlm_journal_kind kind,
				   const char *name, tlm_journal_state state,
				   const char *last_error, tlm_error *err);

/* Calls cb for every resource of run, in the order they were journaled
 * (teardown reads this, not memory).  A run with none is not an error. */
int tlm_journal_resources(tlm_journal *j, const char *run_id, tlm_journal_resource_cb cb, void *ctx,
			  tlm_error *err);

/* How many resources one run has in each state. */
typedef struct tlm_journal_counts {
	char run_id[TLM_JOURNAL_RUN_ID_LEN + 1];
	long n[TLM_JOURNAL_STATE_COUNT]; /* indexed by tlm_journal_state */
} tlm_journal_counts;

typedef int (*tlm_journal_counts_cb)(const tlm_journal_counts *c, void *ctx);

/* Calls cb once for each run that has resources, among those
 * tlm_journal_runs would list with the same filter, in no set order: one
 * grouped query, so that a listing does not ask once per run. */
int tlm_journal_resource_counts(tlm_journal *j, const tlm_run_state *state, const char *workflow,
				tlm_journal_counts_cb cb, void *ctx, tlm_error *err);

/* Records a task attempt (attempt >= 1; a retry is a new attempt) or updates
 * its remote id and status.  remote_id NULL keeps the one recorded.  A status
 * out of range is TLM_EINVALID; fenced. */
int tlm_journal_task_record(tlm_journal *j, const char *run_id, const char *team,
			    const char *subject, int attempt, const char *remote_id,
			    tlm_attempt_status status, tlm_error *err);

/* Records that telemachy ended attempt on the control plane (a status update
 * to failed, with note): a later teardown need not end it again.  A status
 * that was not terminal (pending, submitted, running) becomes cancelled;
 * remote_id, when not NULL, fills an id never learnt (a create whose reply
 * was lost).  TLM_ENOTFOUND when the attempt was never journaled; fenced. */
int tlm_journal_task_ended(tlm_journal *j, const char *run_id, const char *team,
			   const char *subject, int attempt, const char *remote_id,
			   const char *note, tlm_error *err);

/* Records what the control plane said of how attempt ended: result is a
 * JSON object as text (the caller makes it; at most TLM_JOURNAL_RESULT_MAX
 * bytes, else TLM_ETOOBIG).  TLM_ENOTFOUND when the attempt was never
 * journaled; fenced. */
int tlm_journal_task_result(tlm_journal *j, const char *run_id, const char *team,
			    const char *subject, int attempt, const char *result, tlm_error *err);

/* Calls cb for every task attempt of run, by team, subject and attempt. */
int tlm_journal_tasks(tlm_journal *j, const char *run_id, tlm_journal_task_cb cb, void *ctx,
		      tlm_error *err);

/* ---- run events and hook deliveries (docs/hooks.md, "At least once") ---- */

/* One event of a run as journaled: the final ones a hook may want (a task
 * attempt's end, a teardown that left resources, the run's end).  Strings
 * are valid during a callback only. */
typedef struct tlm_journal_event {
	const char *id;           /* unique in the run, deterministic (the hooks' event id) */
	const char *kind;         /* "task", "teardown_failed", "run_ended" */
	const char *team;         /* task: its team; else NULL */
	const char *name;         /* task: its subject; else NULL */
	const char *state;        /* the final state */
	const char *message;      /* why, or NULL; at most TLM_JOURNAL_TEXT_MAX bytes */
	int attempt;              /* task: 1-based; else 0 */
	long long count;          /* teardown_failed: resources left; else 0 */
	unsigned long long at_ms; /* when it happened, ms since the epoch */
} tlm_journal_event;

typedef int (*tlm_journal_event_cb)(const tlm_journal_event *ev, void *ctx);

/* Records ev for run: fenced, in the batch of the state change it reports
 * when batching is on.  The same id again is a no-op (an event is what it
 * was).  TLM_EINVALID for a missing id, kind or state, TLM_ETOOBIG for a
 * text too long. */
int tlm_journal_event_put(tlm_journal *j, const char *run_id, const tlm_journal_event *ev,
			  tlm_error *err);

/* Calls cb for every journaled event of run, oldest first. */
int tlm_journal_events(tlm_journal *j, const char *run_id, tlm_journal_event_cb cb, void *ctx,
		       tlm_error *err);

/* Records that hook (a key, at most 64 characters) had event_id of run;
 * not fenced: any process that ran the hook may say so.  Idempotent. */
int tlm_journal_delivery_put(tlm_journal *j, const char *run_id, const char *event_id,
			     const char *hook, tlm_error *err);

/* *delivered = 1 when tlm_journal_delivery_put recorded this, else 0. */
int tlm_journal_delivery_get(tlm_journal *j, const char *run_id, const char *event_id,
			     const char *hook, int *delivered, tlm_error *err);

#endif
