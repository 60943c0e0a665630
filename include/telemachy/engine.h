/*
 * telemachy — the engine: one run of a workflow, from preflight to teardown
 * (docs/design.md §4), and the operator's commands on journaled runs
 * (teardown, cancel, abandon, reconcile).  docs/engine.md explains the
 * lifecycle and its guarantees, docs/internals/engine.md how it works.
 *
 * tlm_engine_run() owns the whole run on the calling thread: it writes the
 * journal ahead of every create, provisions agents and teams, submits tasks
 * as their dependencies complete, follows completion through NATS and REST,
 * and tears down by policy on every exit path.  Its thread never blocks on
 * the network: every wait is a turn of one loop that also keeps the run's
 * heartbeat, watches for signals and cancel requests, and checks before
 * every request that the run is still its own (fencing).  It never prints:
 * what happens is reported through the observer, the outcome in
 * tlm_engine_result.  It starts no server: the caller hands it a control
 * plane (telemachy's CLI starts the in-process one when there is no other).
 */
#ifndef TELEMACHY_ENGINE_H
#define TELEMACHY_ENGINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "telemachy/error.h"
#include "telemachy/journal.h"
#include "telemachy/spec.h"

/* What the observer is told. */
typedef enum tlm_engine_level {
	TLM_ENGINE_DEBUG = 0,
	TLM_ENGINE_INFO,
	TLM_ENGINE_WARN,
	TLM_ENGINE_ERROR
} tlm_engine_level;

/* Counters for a progress display; a snapshot, valid during the callback. */
typedef struct tlm_engine_progress {
	const char *phase; /* "preflight", "provisioning", "running", "tearing down", ... */
	const char *run_id;
	size_t agents_total, agents_ready;
	size_t tasks_total, tasks_completed, tasks_failed, tasks_running, tasks_pending;
	uint64_t elapsed_ms;
	const char *slowest_task; /* "team/subject" of the task running longest, or NULL */
	uint64_t slowest_ms;      /* how long it has been running */
} tlm_engine_progress;

/* How often the engine reports progress with no message while it runs (a
 * live display's clock): at most every this many milliseconds. */
#define TLM_ENGINE_PROGRESS_MS 100

/* Called on the engine thread: a log line (message non-NULL) or only a
 * progress change (message NULL).  Messages never contain credentials. */
typedef void (*tlm_engine_observer)(void *ctx, tlm_engine_level level, const char *message,
				    const tlm_engine_progress *progress);

/* What happened, as data (tlm_engine_opts.on_event): for hooks, traces
 * and programs that embed the engine.  Strings are valid during the
 * callback only; any may be NULL where it does not apply. */
typedef enum tlm_engine_event_kind {
	TLM_ENGINE_EV_RUN_STARTED = 0, /* the run is ours; state: "new", "resumed", "teardown" */
	TLM_ENGINE_EV_PHASE,           /* phase: "provisioning", "running", "tearing down", ... */
	TLM_ENGINE_EV_AGENT,           /* an agent's state changed (state: the journal's name) */
	TLM_ENGINE_EV_TEAM,            /* a team's state changed */
	TLM_ENGINE_EV_TASK,            /* a task attempt's state changed (state: see below) */
	TLM_ENGINE_EV_TEARDOWN_FAILED, /* teardown left resources (count: how many) */
	TLM_ENGINE_EV_RUN_ENDED        /* state: the run's final state, message: why */
} tlm_engine_event_kind;

typedef struct tlm_engine_event {
	tlm_engine_event_kind kind;
	const char *run_id;
	const char *workflow;
	const char *phase;     /* PHASE */
	const char *name;      /* AGENT, TEAM: the resource's name; TASK: the subject */
	const char *team;      /* TASK: its team (the spec's name) */
	const char *remote_id; /* the control plane's id, when known */
	/* AGENT, TEAM: created, started (agents), deleting, deleted, absent;
	 * TASK: submitted, running, completed, failed, timed_out, skipped,
	 * cancelled, retrying; RUN_ENDED: the run state or "interrupted",
	 * "taken_over" */
	const char *state;
	const char *message; /* why (a failure's message), or NULL */
	int attempt;         /* TASK: 1-based */
	size_t count;        /* TEARDOWN_FAILED: resources left */
	uint64_t at_ms;      /* wall clock, ms since the epoch */
} tlm_engine_event;

/* Called on the engine thread, in order.  It must not block: a slow
 * consumer queues (hooks and traces run on threads of their own). */
typedef void (*tlm_engine_event_cb)(void *ctx, const tlm_engine_event *ev);

/* The name of a final event, the one hooks listen for: "task_completed",
 * "task_failed" (failed or timed_out), "task_skipped", "teardown_failed",
 * "run_completed", "run_failed" (failed, teardown_failed, timed_out,
 * preflight_failed), "run_cancelled"; NULL for any other event (a
 * retried attempt, a run this process only stopped running). */
const char *tlm_engine_event_final(const tlm_engine_event *ev);

/* The longest id tlm_engine_event_id writes, with its NUL. */
#define TLM_ENGINE_EVENT_ID_MAX 1024

/* Whether ev is final (tlm_engine_event_final) and its id: the same
 * for the same event of the same run wherever and however often it is
 * reported ("RUN:task_failed:TEAM/TASK:ATTEMPT", "RUN:run_failed:STATE",
 * docs/hooks.md).  0 and id[cap] (cut when longer); TLM_EINVALID when ev
 * is not final. */
int tlm_engine_event_id(const tlm_engine_event *ev, char *id, size_t cap);

/* The agent settings upstream Agamemnon drops on create
 * (docs/agamemnon.md, "What upstream keeps of an agent"), as bits. */
#define TLM_ENGINE_FIELD_MODEL  1u
#define TLM_ENGINE_FIELD_ENV    2u
#define TLM_ENGINE_FIELD_IMAGE  4u
#define TLM_ENGINE_FIELD_CPUS   8u
#define TLM_ENGINE_FIELD_MEMORY 16u
#define TLM_ENGINE_FIELDS       31u

/* "model", "env", "image", "cpus", "memory" for one bit; NULL otherwise. */
const char *tlm_engine_field_name(unsigned bit);
/* The bit of a field name; TLM_EINVALID (err says which names are) else. */
int tlm_engine_field_parse(const char *name, unsigned *bit, tlm_error *err);

/* The layout of tlm_engine_opts this header describes.  A program sets it
 * by starting from TLM_ENGINE_OPTS_INIT; every entry point refuses another
 * (TLM_EINVALID), so a program built against other headers fails clearly
 * instead of reading fields that are not there (docs/library.md). */
#define TLM_ENGINE_OPTS_VERSION 2u

typedef struct tlm_engine_opts {
	unsigned version;      /* TLM_ENGINE_OPTS_VERSION (TLM_ENGINE_OPTS_INIT sets it) */
	const tlm_spec *spec;  /* validated; borrowed */
	const char *spec_text; /* the YAML as written, journaled with the run */
	/* The control plane's URL.  run and resume need one.  For teardown and
	 * cancel, NULL means the run's control plane was an in-process one that
	 * is gone: its resources went with it. */
	const char *control_plane;
	int in_process;       /* control_plane is a server of this process, made for this run */
	const char *api_key;  /* never logged or journaled */
	const char *nats_url; /* NULL: REST reconcile is the only source */
	const char *nats_creds_file;
	const char *nats_token; /* never logged or journaled */
	/* NATS over TLS (PEM files): its own CA, and a client certificate and
	 * key when the server verifies clients; NULL: none. */
	const char *nats_ca_file;
	const char *nats_cert_file;
	const char *nats_key_file;
	const char *state_dir;    /* journal; NULL: tlm_journal_default_dir() */
	unsigned max_concurrent;  /* provisioning and submit requests in flight; 0: 16 */
	int fresh_connection;     /* one request per connection; -1: default (off: keep-alive) */
	unsigned max_connections; /* 0: 4 to a remote server (upstream's listen backlog is 5) */
	int require_tls;
	const char *ca_file; /* the control plane's CA bundle; NULL: the system's */
	/* A client certificate for the control plane (mTLS), PEM files, both or
	 * neither.  Messages name the files, never their content. */
	const char *client_cert_file;
	const char *client_key_file;
	long request_timeout_ms; /* 0: 30000 */
	double rate_rps;         /* client-side limit (AGAMEMNON_RATE_LIMIT_RPS); 0: none */
	unsigned rate_burst;
	int dry_run; /* agents run "none", journal discarded (the caller gives an in-memory plane) */
	long reconcile_ms;                       /* longest REST reconcile period; 0: default */
	const volatile sig_atomic_t *interrupts; /* signals received so far; NULL: none */
	const char *resume_run_id; /* continue this journaled run instead of a new one */
	unsigned claim_flags;      /* resume, teardown, cancel: TLM_JOURNAL_CLAIM_FORCE */
	tlm_engine_observer observe;
	void *observe_ctx;
	/* TLM_ENGINE_FIELD_* the operator agreed to run without when the
	 * control plane does not keep them (--drop-field); any other such
	 * setting the spec uses and the control plane drops refuses the run. */
	unsigned drop_fields;
	/* Stop requests (SIGTSTP, Ctrl-Z) received so far; NULL: none.  At each
	 * new one the engine commits its journal batch, then calls pause (the
	 * CLI stops the process there): a stopped owner must not hold the
	 * journal's write lock (docs/internals/engine.md). */
	const volatile sig_atomic_t *pauses;
	void (*pause)(void);
	tlm_engine_event_cb on_event; /* NULL: none */
	void *on_event_ctx;
	/* A W3C traceparent every request to the control plane carries
	 * (tlm_trace_traceparent, docs/tracing.md); NULL: none. */
	const char *traceparent;
	/* 1: every final event (tlm_engine_event_id) is journaled with the state
	 * change it reports, so a later owner can deliver what this process
	 * could not (hooks at least once, docs/hooks.md).  Needs on_event. */
	int journal_events;
} tlm_engine_opts;

#define TLM_ENGINE_OPTS_INIT                                                                       \
	{                                                                                          \
		TLM_ENGINE_OPTS_VERSION, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL,  \
			NULL, NULL, 0, -1, 0, 1, NULL, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, 0,   \
			NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, 0                             \
	}

/* Why the run ended. */
typedef enum tlm_engine_outcome {
	TLM_ENGINE_COMPLETED = 0,    /* every task completed */
	TLM_ENGINE_FAILED,           /* a task or a provisioning step failed */
	TLM_ENGINE_TIMED_OUT,        /* the workflow's timeout_seconds */
	TLM_ENGINE_CANCELLED,        /* a signal, or `telemachy cancel` */
	TLM_ENGINE_PREFLIGHT_FAILED, /* nothing was created */
	TLM_ENGINE_TAKEN_OVER        /* another process claimed the run: this one stopped */
} tlm_engine_outcome;

typedef struct tlm_engine_task_result {
	const char *team, *subject;
	const char *status; /* docs/design.md §4 task state */
	int attempts;
	char *remote_id; /* last attempt's, NULL if never submitted */
	char *message;   /* why it failed or was skipped, NULL otherwise */
	char *output;    /* the last line of its last attempt's stderr, when the control
			    plane kept it (the built-in one does: docs/logs.md), else NULL */
	uint64_t elapsed_ms;
} tlm_engine_task_result;

typedef struct tlm_engine_leftover {
	char *kind, *name, *remote_id; /* remote_id NULL: outcome of the create unknown */
	char *error;
} tlm_engine_leftover;

typedef struct tlm_engine_result {
	char run_id[TLM_JOURNAL_RUN_ID_LEN + 1]; /* "" when no run was recorded */
	tlm_engine_outcome outcome;
	const char *state;             /* the journal's final run state, or "interrupted",
					  "taken_over", "preflight_failed" */
	char *error;                   /* the run's own error, NULL when completed */
	int torn_down;                 /* teardown ran (the policy asked for it) */
	int abandoned;                 /* a second signal cut the run short */
	int taken_over;                /* fenced: another process owns the run now */
	int dry_run;                   /* nothing was created anywhere */
	size_t agents_created;         /* agents that existed on the control plane */
	tlm_engine_task_result *tasks; /* spec order */
	size_t ntasks;
	tlm_engine_leftover *leftovers; /* what teardown could not delete, or kept by policy */
	size_t nleftovers;
	uint64_t elapsed_ms;
	char *journal_path;
	size_t vanished; /* resources the run believed alive found gone (404): recorded absent */
	/* TLM_ENGINE_FIELD_* of the spec the control plane does not keep:
	 * passed another way (model as programArgs "--model M"), dropped with
	 * the operator's consent (drop_fields), or refusing the run (nothing
	 * but the probe was created; the CLI exits 2). */
	unsigned fields_mapped, fields_dropped, fields_refused;
} tlm_engine_result;

/* Runs the workflow.  Returns 0 when the run was carried out to its end —
 * whatever the outcome, which is in *res — or a TLM_E* code when it could not
 * start (bad options, journal unusable; err says why, nothing was created).
 * Release *res with tlm_engine_result_clear() in both cases. */
int tlm_engine_run(const tlm_engine_opts *opts, tlm_engine_result *res, tlm_error *err);

void tlm_engine_result_clear(tlm_engine_result *res);

/* `telemachy teardown RUN`: deletes everything the journal knows of run_id
 * on the control plane of opts (control_plane NULL: the run used an
 * in-process server, whose resources died with it, and are recorded absent),
 * resolving intents by name and sweeping the run's names.  Claims the run
 * first (a live owner is TLM_ECONFLICT unless opts->claim_flags has
 * TLM_JOURNAL_CLAIM_FORCE).  opts->spec may be NULL.  The outcome is in *res
 * (leftovers, state); 0 unless it could not start. */
int tlm_engine_teardown(const tlm_engine_opts *opts, const char *run_id, tlm_engine_result *res,
			tlm_error *err);

/* The outcome's name ("completed", "failed", "timed_out", "cancelled",
 * "preflight_failed", "taken_over"). */
const char *tlm_engine_outcome_name(tlm_engine_outcome o);

/* ---- telemachy cancel ------------------------------------------------ */

typedef enum tlm_engine_cancel_how {
	TLM_CANCEL_HAD_ENDED = 0, /* the run was already in a final state */
	TLM_CANCEL_OWNER_STOPPED, /* its live owner was asked and ended the run */
	TLM_CANCEL_STILL_RUNNING, /* its live owner was asked; wait_ms ran out first */
	TLM_CANCEL_TORN_DOWN,     /* no live owner (or forced): torn down here (teardown) */
	TLM_CANCEL_DEQUEUED       /* queued, no worker had it: cancelled before it started */
} tlm_engine_cancel_how;

typedef struct tlm_engine_cancel_result {
	tlm_engine_cancel_how how;
	tlm_run_state state; /* the run's state at the end */
	long owner_pid;      /* the owner that was asked (OWNER_STOPPED, STILL_RUNNING) */
	char owner_host[256];
	tlm_engine_result teardown; /* TORN_DOWN: the teardown's result */
} tlm_engine_cancel_result;

/* Cancels run_id: a live owner is asked through the journal (it notices
 * within a second, from any host, and tears down by policy) and this waits
 * up to wait_ms for the run to end; a dead owner's run (or any, with
 * TLM_JOURNAL_CLAIM_FORCE in opts->claim_flags) is torn down here as by
 * tlm_engine_teardown.  Waiting stops early on opts->interrupts.  Release
 * *res with tlm_engine_cancel_clear.  0 unless it could not start. */
int tlm_engine_cancel(const tlm_engine_opts *opts, const char *run_id, long wait_ms,
		      tlm_engine_cancel_result *res, tlm_error *err);
void tlm_engine_cancel_clear(tlm_engine_cancel_result *res);

/* ---- telemachy abandon ----------------------------------------------- */

typedef struct tlm_engine_abandoned {
	tlm_journal_kind kind;
	tlm_journal_state was;
	char name[TLM_JOURNAL_NAME_MAX + 1];
	char remote_id[TLM_JOURNAL_TEXT_MAX + 1]; /* "" when none was known */
	int audited; /* the audit entry was written (else err says why) */
} tlm_engine_abandoned;

/* Gives up on one resource of run_id (`resource` is a full name such as
 * tlm-RUN-a-NAME, or agent/NAME, team/NAME): claims the run (a live owner is
 * TLM_ECONFLICT unless flags has TLM_JOURNAL_CLAIM_FORCE), marks the resource
 * abandoned with why as its last error, and writes an audit entry.  Unknown
 * run or resource TLM_ENOTFOUND; one already gone or abandoned TLM_EINVALID.
 * When the resource was abandoned but the audit entry failed, the result is
 * TLM_ERROR with out->audited 0. */
int tlm_engine_abandon(const char *state_dir, const char *run_id, const char *resource,
		       const char *why, unsigned flags, tlm_engine_abandoned *out, tlm_error *err);

/* ---- telemachy reconcile --------------------------------------------- */

/* A tlm- resource on the control plane that no live run accounts for. */
typedef struct tlm_engine_orphan {
	char *kind; /* "agent" or "team" */
	char *name, *remote_id;
	char *run_id;  /* from the name; NULL when the name carries none */
	char *why;     /* why it is an orphan, or why it is only reported */
	int deletable; /* --delete deletes it (stranded and abandoned ones are only reported) */
	int deleted;   /* deleted by this reconcile */
	char *error;   /* the delete failed: why */
} tlm_engine_orphan;

typedef struct tlm_engine_reconcile_result {
	tlm_engine_orphan *orphans;
	size_t norphans;
	size_t scanned;   /* tlm- resources seen on the control plane */
	size_t live;      /* of them, accounted for by a live run */
	size_t too_young; /* left out by older_than_s */
} tlm_engine_reconcile_result;

/* Lists every agent and team named tlm-* on opts' control plane (all pages)
 * and compares them with the journal: a resource is an orphan when no
 * journal run has its run id, when its run has ended (kept by policy,
 * teardown failed, or a duplicate the journal never had), or when the run
 * says it was deleted.  Resources of a run whose owner died are reported as
 * stranded (resume or teardown that run) and never deleted here; abandoned
 * ones are reported only.  older_than_s > 0 leaves out resources created
 * less than that long ago.  With do_delete, the deletable orphans are
 * deleted (agents stopped first), the journal updated and audited; without
 * it nothing is changed. */
int tlm_engine_reconcile(const tlm_engine_opts *opts, long older_than_s, int do_delete,
			 tlm_engine_reconcile_result *res, tlm_error *err);

void tlm_engine_reconcile_clear(tlm_engine_reconcile_result *res);

/* A piece of a task's output: stream is "stdout" or "stderr", data len
 * bytes of text (not NUL-terminated beyond len is not promised: it is). */
typedef void (*tlm_engine_output_cb)(void *ctx, const char *stream, const char *data, size_t len);

/* Follows task "TEAM/SUBJECT" of run run_id (its last submitted attempt):
 * calls cb with its output as it grows, from the start, until the task has
 * ended and all of it was read, or *o->interrupts is set.  o gives the
 * journal (state_dir), the control plane (control_plane: NULL means the
 * run's in-process one, which cannot be followed: TLM_EINVALID) and the
 * client settings.  TLM_ENOTFOUND: no such task, or a control plane that
 * serves no output (upstream's); other TLM_E* with err. */
int tlm_engine_follow_output(const tlm_engine_opts *o, const char *run_id, const char *task,
			     tlm_engine_output_cb cb, void *ctx, tlm_error *err);

/* ---- Checks for `telemachy doctor` (docs/doctor.md) ----------------------
 * The preflight's questions asked once each, every wait bounded by
 * timeout_ms, changing nothing. */

typedef struct tlm_engine_cp_check {
	long status;         /* the HTTP status of the reply, 0 when none came */
	int unreachable;     /* no HTTP reply at all (refused, timed out, TLS failed) */
	int64_t server_date; /* the reply's Date header, seconds since the epoch; 0: none */
} tlm_engine_cp_check;

/* GET /v1/agents?limit=1 on opts->control_plane with opts' key, TLS
 * settings and client certificate, one attempt: 0 on a 2xx reply, else the
 * client's code and a message without credentials (a 401 or 403 has
 * out->status set).  *out is filled either way. */
int tlm_engine_check_control_plane(const tlm_engine_opts *opts, long timeout_ms,
				   tlm_engine_cp_check *out, tlm_error *err);

/* Connects to opts->nats_url with opts' NATS credentials and TLS settings
 * within timeout_ms (per server of the list) and disconnects: 0, or why not
 * (no credentials in the message). */
int tlm_engine_check_nats(const tlm_engine_opts *opts, long timeout_ms, tlm_error *err);

#endif
