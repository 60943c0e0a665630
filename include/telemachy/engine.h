/*
 * telemachy — the engine: one run of a workflow, from preflight to teardown
 * (DESIGN §4).  docs/engine.md explains the lifecycle and its guarantees.
 *
 * tlm_engine_run() owns the whole run on the calling thread: it writes the
 * journal ahead of every create, provisions agents and teams, submits tasks
 * as their dependencies complete, follows completion through NATS and REST,
 * and tears down by policy on every exit path.  It never prints: what
 * happens is reported through the observer, the outcome in tlm_engine_result.
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
} tlm_engine_progress;

/* Called on the engine thread: a log line (message non-NULL) or only a
 * progress change (message NULL).  Messages never contain credentials. */
typedef void (*tlm_engine_observer)(void *ctx, tlm_engine_level level, const char *message,
				    const tlm_engine_progress *progress);

typedef struct tlm_engine_opts {
	const tlm_spec *spec;  /* validated; borrowed */
	const char *spec_text; /* the YAML as written, journaled with the run */
	const char *base_url;  /* NULL: start the built-in control plane in-process */
	const char *api_key;   /* never logged or journaled */
	const char *nats_url;  /* NULL: REST reconcile is the only source */
	const char *nats_creds_file;
	const char *state_dir;    /* journal; NULL: tlm_journal_default_dir() */
	unsigned max_concurrent;  /* provisioning and submit requests in flight; 0: 16 */
	int fresh_connection;     /* -1: default (on for a remote server, off for ours) */
	unsigned max_connections; /* 0: 8 to a remote server (upstream has 8 workers) */
	int require_tls;
	const char *ca_file;
	long request_timeout_ms; /* 0: 30000 */
	double rate_rps;         /* client-side limit (AGAMEMNON_RATE_LIMIT_RPS); 0: none */
	unsigned rate_burst;
	int dry_run;       /* in-memory control plane, nothing executed, journal discarded */
	long reconcile_ms; /* longest REST reconcile period; 0: default */
	const volatile sig_atomic_t *interrupts; /* signals received so far; NULL: none */
	const char *resume_run_id; /* continue this journaled run instead of a new one */
	tlm_engine_observer observe;
	void *observe_ctx;
} tlm_engine_opts;

#define TLM_ENGINE_OPTS_INIT                                                                       \
	{                                                                                          \
		NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, -1, 0, 1, NULL, 0, 0, 0, 0, 0, NULL,  \
			NULL, NULL, NULL                                                           \
	}

/* Why the run ended. */
typedef enum tlm_engine_outcome {
	TLM_ENGINE_COMPLETED = 0,   /* every task completed */
	TLM_ENGINE_FAILED,          /* a task or a provisioning step failed */
	TLM_ENGINE_TIMED_OUT,       /* the workflow's timeout_seconds */
	TLM_ENGINE_CANCELLED,       /* a signal */
	TLM_ENGINE_PREFLIGHT_FAILED /* nothing was created */
} tlm_engine_outcome;

typedef struct tlm_engine_task_result {
	const char *team, *subject;
	const char *status; /* DESIGN §4 task state */
	int attempts;
	char *remote_id; /* last attempt's, NULL if never submitted */
	char *message;   /* why it failed or was skipped, NULL otherwise */
	uint64_t elapsed_ms;
} tlm_engine_task_result;

typedef struct tlm_engine_leftover {
	char *kind, *name, *remote_id; /* remote_id NULL: outcome of the create unknown */
	char *error;
} tlm_engine_leftover;

typedef struct tlm_engine_result {
	char run_id[TLM_JOURNAL_RUN_ID_LEN + 1]; /* "" when no run was recorded */
	tlm_engine_outcome outcome;
	const char *state;             /* the journal's final run state */
	char *error;                   /* the run's own error, NULL when completed */
	int torn_down;                 /* teardown ran (the policy asked for it) */
	int abandoned;                 /* a second signal cut the run short */
	int dry_run;                   /* nothing was created anywhere */
	size_t agents_created;         /* agents that existed on the control plane */
	tlm_engine_task_result *tasks; /* spec order */
	size_t ntasks;
	tlm_engine_leftover *leftovers; /* what teardown could not delete, or kept by policy */
	size_t nleftovers;
	uint64_t elapsed_ms;
	char *journal_path;
} tlm_engine_result;

/* Runs the workflow.  Returns 0 when the run was carried out to its end —
 * whatever the outcome, which is in *res — or a TLM_E* code when it could not
 * start (bad options, journal unusable; err says why, nothing was created).
 * Release *res with tlm_engine_result_clear() in both cases. */
int tlm_engine_run(const tlm_engine_opts *opts, tlm_engine_result *res, tlm_error *err);

void tlm_engine_result_clear(tlm_engine_result *res);

/* `telemachy teardown RUN`: deletes everything the journal knows of run_id
 * on the control plane of opts (base_url NULL: the run used the in-process
 * server, whose resources died with it, and are recorded absent), resolving
 * intents by name and sweeping the run's names.  Claims the run first (a
 * live owner is TLM_ECONFLICT).  opts->spec may be NULL.  The outcome is in
 * *res (leftovers, state); 0 unless it could not start. */
int tlm_engine_teardown(const tlm_engine_opts *opts, const char *run_id, tlm_engine_result *res,
			tlm_error *err);

/* The outcome's name ("completed", "failed", "timed_out", "cancelled",
 * "preflight_failed"). */
const char *tlm_engine_outcome_name(tlm_engine_outcome o);

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

#endif
