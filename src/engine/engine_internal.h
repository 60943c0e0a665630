/*
 * The engine's run state, shared by the files of src/engine (one phase per
 * file).  One thread owns all of it: libnats hands events over through the
 * watcher's queue and wakes the client's poll, nothing else touches a run.
 * docs/internals/engine.md explains the loop, the states and fencing.
 */
#ifndef TLM_ENGINE_INTERNAL_H
#define TLM_ENGINE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client_internal.h"
#include "telemachy/client.h"
#include "telemachy/engine.h"
#include "telemachy/events.h"
#include "telemachy/journal.h"
#include "telemachy/metrics.h"
#include "telemachy/names.h"
#include "telemachy/plan.h"
#include "util/strmap.h"

#define ENG_DEFAULT_CONCURRENCY 16
#define ENG_HEARTBEAT_MS        5000
#define ENG_TICK_MS             200 /* longest wait: signals and timers are checked this often */
#define ENG_CANCEL_CHECK_MS     250 /* how often the journal is asked for a cancel request */
#define ENG_LINGER_MS           5   /* longest a journal batch gathers a group commit */
#define ENG_LINGER_MIN_BUSY     2   /* ... and only while this many requests are in flight */
#define ENG_TIMEOUT_CHECK_MS    250 /* how often running tasks are checked against their timeouts */
#define ENG_CREATE_POSTS        3   /* creates of one name sent at most (unknown outcomes) */
#define ENG_PATH_MAX            2048 /* a longer path (hostile ids) is refused */

typedef struct eng eng;

/* ---- resources ---------------------------------------------------------
 * A resource's state is its journal state (tlm_journal_state); the engine
 * keeps a copy and changes it only through tlm_eng__res_to(), which checks
 * the move against a table and journals it. */
typedef struct eng_rs {
	tlm_journal_kind kind;
	char name[TLM_JOURNAL_NAME_MAX + 1];
	char *id; /* remote id, NULL while unknown */
	tlm_journal_state st;
	int journaled; /* it has a row (st is meaningful) */
} eng_rs;

/* Where a spec resource's provisioning is: which request about it, if any,
 * is in flight.  Scheduling only: its durable state is rs.st. */
typedef enum eng_step {
	STEP_NEW = 0,   /* nothing sent */
	STEP_CREATING,  /* the create is in flight */
	STEP_RESOLVING, /* its create's outcome is unknown: a lookup by name is in flight */
	STEP_STARTING,  /* agents: the start is in flight */
	STEP_DONE,      /* created (teams) or started (agents), or left for teardown */
	STEP_FAILED
} eng_step;

typedef struct eng_res {
	eng *e;
	size_t idx; /* into spec agents[] or teams[] */
	eng_rs rs;
	eng_step step;
	int posts;    /* creates sent for this name */
	int checking; /* a GET about it is in flight (is the agent still there?) */
	long settle;  /* a resumed run's open create: how long it may still land */
} eng_res;

/* ---- tasks -------------------------------------------------------------
 * Changed only through tlm_eng__task_to() (states.c), which checks the move
 * against a table and journals the attempt. */
typedef enum eng_task_state {
	TASK_WAITING = 0, /* dependencies not complete */
	TASK_READY,       /* in the ready queue */
	TASK_SUBMITTING,  /* create in flight */
	TASK_UNKNOWN,     /* the create's outcome is unknown: looking for it */
	TASK_SUBMITTED,
	TASK_RUNNING,
	TASK_COMPLETED, /* terminal from here on */
	TASK_FAILED,
	TASK_TIMED_OUT,
	TASK_SKIPPED,
	TASK_CANCELLED,
	TASK_STATE_COUNT
} eng_task_state;

/* An event about a task id not known yet (early.c). */
#define ENG_EARLY_MAX 256
typedef struct eng_early {
	char id[80]; /* "" once replayed */
	char status[TLM_WATCHER_STATUS_MAX + 1];
} eng_early;

typedef struct eng_task {
	eng *e;
	size_t idx;
	eng_task_state st;
	int attempt;      /* attempts made so far (1-based once submitted) */
	int attempt_base; /* attempts made before this process (a resumed run) */
	int poll_attempt; /* the attempt a reconcile GET in flight is about */
	char *id;         /* remote id of the current attempt */
	char **old_ids;   /* ids of earlier attempts (their events are ignored) */
	size_t nold;
	size_t deps_left;
	int polling;      /* a reconcile GET is in flight */
	int in_unwritten; /* listed in e->unwritten (states.c) */
	int row_owed;     /* its `submitted` or `running` row waits for the next commit */
	uint64_t submitted_ms, finished_ms, first_ms;
	char *message;
	char *err_line; /* the last line of its last attempt's stderr, if said */
} eng_task;

/* A link the run depends on: NATS (task events) or the control plane.
 * Changed only through outage.c's one transition function, which says so
 * once per change (docs/agamemnon.md, "Outages"). */
typedef enum eng_link_state { LINK_UP = 0, LINK_DOWN } eng_link_state;

typedef struct eng_link {
	eng_link_state st;
	uint64_t since_ms;   /* when it went to st */
	uint64_t reconnects; /* NATS: the watcher's count when last looked at */
} eng_link;

/* Why the engine stopped turning before the run's end. */
typedef enum eng_stop {
	STOP_NONE = 0,
	STOP_ABANDONED, /* a second signal: leave at once */
	STOP_FENCED     /* another process owns the run now: not one more write or request */
} eng_stop;

struct eng {
	const tlm_engine_opts *o;
	const tlm_spec *spec; /* NULL for teardown of a run whose spec is not needed */
	tlm_plan *plan;
	tlm_engine_result *res;
	tlm_client *c;
	tlm_journal *j;
	tlm_watcher *w;
	char *tmp_dir; /* dry run: the throwaway journal */
	char run_id[TLM_JOURNAL_RUN_ID_LEN + 1];
	char prefix[32]; /* "tlm-<run>-" */
	unsigned maxc;
	sig_atomic_t pauses_seen; /* stop requests handled (check_pause) */
	tlm_run_state run_state;  /* as journaled; changed by tlm_eng__run_to only */
	eng_res *agents, *teams;
	/* The settings probe (probe.c): an agent journaled like the others,
	 * created and deleted before them, to learn what the control plane
	 * keeps.  idx is unused. */
	eng_res probe;
	int probe_done;       /* the request in flight about the probe answered */
	int probe_told;       /* a reply described the probe agent: fields_kept holds */
	unsigned fields_kept; /* TLM_ENGINE_FIELD_* the probe's reply showed kept */
	unsigned fields_lost; /* of the spec, not kept: agent_body leaves them out */
	eng_task *tasks;
	tlm_strmap by_id; /* remote id of any attempt -> task index (keys: t->id, old_ids) */
	eng_early *early; /* events of ids not known yet (early.c); NULL until one came */
	size_t early_next;
	size_t *ready;     /* FIFO of task indices, capacity ntasks */
	size_t *unwritten; /* tasks that may owe a row (row_owed), capacity ntasks */
	size_t nunwritten;
	size_t ready_head, ready_tail;
	unsigned prov_busy;  /* spec resources with a request in flight */
	int ending;          /* decided to end: submit nothing more */
	int leave_on_signal; /* `teardown RUN`: the first signal leaves (it is the end already) */
	eng_stop stop;
	int prov_failed;
	int any_submitted;
	int resumed;
	int oom; /* an allocation failed: the run fails, saying so */
	uint64_t next_cancel_check;
	tlm_engine_outcome outcome;
	char *error;        /* the run's first error */
	uint64_t end_at_ms; /* when the run's end events happened (wall clock; 0: not yet) */
	uint64_t t0, deadline, next_heartbeat, next_reconcile;
	uint64_t next_timeouts; /* when task timeouts are next checked (a walk of every task) */
	long reconcile_gap, reconcile_min, reconcile_max;
	eng_link nats, plane; /* outages: said once each way (outage.c) */
	long settle_ms;       /* teardown: how long a create of unknown outcome may still land */
	size_t agents_ready, nterminal;
	size_t nstate[TASK_STATE_COUNT]; /* tasks in each state (tlm_eng__task_set) */
	size_t slowest_idx;              /* the last slowest task found, SIZE_MAX: none */
	uint64_t slowest_at;             /* when it was looked for */
	size_t leftovers_cap;            /* res->leftovers' room */
	const char *phase;               /* for progress reports */
	char slowest[2 * TLM_JOURNAL_NAME_MAX + 2]; /* the progress report's slowest task */
	uint64_t next_progress;                     /* the next report with no message */
};

/* ---- states.c: the three state machines -------------------------------- */

/* Moves the run to `to` if the table allows it (a move to the same state is
 * no move), journaling it.  An illegal move is refused (TLM_EINVALID,
 * logged): a bug, never a silent state. */
int tlm_eng__run_to(eng *e, tlm_run_state to);

/* Moves resource r to `to`, journaling it: created needs id (taken over,
 * r->id owns it then), a last error is why (may be NULL).  The intent itself
 * is written by tlm_eng__intents (a wave in one transaction). */
int tlm_eng__res_to(eng *e, eng_rs *r, tlm_journal_state to, char *id, const char *why);

/* Journals why as r's last error without moving it: what went wrong with a
 * resource that stays where it is (an id it cannot be reached by). */
int tlm_eng__res_note(eng *e, eng_rs *r, const char *why);

/* The wave's intents in one transaction (rows already journaled skipped). */
int tlm_eng__intents(eng *e, eng_rs *const *rs, size_t n);

/* Moves task t to `to`, journaling its attempt: SUBMITTING from READY opens
 * a new attempt (written before its create is sent); READY from an attempt in
 * flight is a retry and `why` (TASK_FAILED, TASK_TIMED_OUT or
 * TASK_CANCELLED) is what that attempt ended as; terminal states record msg
 * as the task's message.  Returns 0, the journal's error (the run then
 * fails), or TLM_EINVALID for an illegal move (nothing changed). */
int tlm_eng__task_to(eng *e, eng_task *t, eng_task_state to, eng_task_state why, const char *msg);

/* Puts t in state to and keeps the per-state counts (nstate) true: every
 * change of a task's state goes through here. */
void tlm_eng__task_set(eng *e, eng_task *t, eng_task_state to);

/* Writes the `submitted` and `running` rows task_to deferred (states.c);
 * tlm_eng__flush calls it before every commit. */
void tlm_eng__write_unwritten(eng *e);
/* Writes t's deferred row now, if it owes one: before its id is set aside
 * for a retry, since the row of the attempt that ends names that id. */
void tlm_eng__write_owed(eng *e, eng_task *t);

/* Journals one attempt's status (the one place task rows are written). */
int tlm_eng__attempt_record(eng *e, const eng_task *t, int attempt, const char *id,
			    tlm_attempt_status st);

/* Replaces t's message (the reason shown for a failed task). */
int tlm_eng__task_message(eng *e, eng_task *t, const char *msg);
const char *tlm_eng__task_state_name(eng_task_state st);
int tlm_eng__task_terminal(const eng_task *t);
/* Whether the table allows from -> to (for the unit tests too). */
int tlm_eng__task_move_ok(eng_task_state from, eng_task_state to);
int tlm_eng__run_move_ok(tlm_run_state from, tlm_run_state to);
int tlm_eng__res_move_ok(tlm_journal_state from, tlm_journal_state to);

/* ---- report.c ---- */
uint64_t tlm_eng__now_ms(void);
void tlm_eng__log(eng *e, tlm_engine_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tlm_eng__progress(eng *e, const char *phase);
/* Records the run's first error (later ones are only logged) and fails it. */
void tlm_eng__fail(eng *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An allocation failed: the run fails ("out of memory") and ends. */
int tlm_eng__oom(eng *e);
/* Checks a journal result: a failure fails and ends the run; TLM_EFENCED
 * stops the engine at once (tlm_eng__fenced).  Returns rc. */
int tlm_eng__journal_check(eng *e, int rc, const tlm_error *err);
/* Another process took the run over: stop now, no write, no request. */
void tlm_eng__fenced(eng *e, const tlm_error *err);
const char *tlm_eng__task_name(eng *e, size_t i, char *buf, size_t cap);
/* A remote id fit for a message or a journal note: escaped, cut to about
 * cap bytes ("..." when cut), never inside a character.  cap > 4. */
const char *tlm_eng__short_id(const char *id, char *buf, size_t cap);
#define ENG_SHORT_ID 80 /* the buffer tlm_eng__short_id is given in messages */

/* Adds a leftover to the result (out of memory fails the run). */
void tlm_eng__add_leftover(eng *e, tlm_journal_kind kind, const char *name, const char *id,
			   const char *why);
/* The same for a kind that is not a resource ("task"). */
void tlm_eng__add_leftover_named(eng *e, const char *kind, const char *name, const char *id,
				 const char *why);
/* rs, which the run believed alive, answered 404: it vanished (a control
 * plane restarted without its state, an operator): journaled absent with
 * why, a warning, counted in the result.  1 when recorded so, 0 when rs has
 * no journal row. */
int tlm_eng__vanished(eng *e, eng_rs *rs);

/* ---- loop.c ---- */
/* One turn of the engine loop: heartbeat, network, events, signals, timers,
 * cancel requests.  Returns 1 while the run may go on, 0 once the engine
 * must stop (abandoned or fenced). */
int tlm_eng__turn(eng *e, long max_wait_ms);
/* Turns until none of our requests and timers is pending (or stopped). */
void tlm_eng__drain(eng *e);
/* Waits ms while turning (signals, heartbeat and cancel still count). */
void tlm_eng__wait(eng *e, long ms);
/* Turns until *done is set (or stopped); 0 when done. */
int tlm_eng__await(eng *e, const int *done);
/* The request timeout in force (a create's outcome may stay open so long). */
long tlm_eng__request_timeout(const eng *e);
void tlm_eng__end(eng *e, tlm_engine_outcome outcome, const char *why);
/* The client's gate: before requests leave, what they depend on (the
 * journal up to stamp) is committed and the run still ours. */
int tlm_eng__gate(void *ctx, uint64_t stamp, tlm_error *err);

/* 0 when o has the layout this library was built with (its version). */
int tlm_eng__opts_check(const tlm_engine_opts *o, tlm_error *err);

/* Events as data for tlm_engine_opts.on_event (emit.c): run_id, workflow
 * and the time are filled in; nothing happens when there is no consumer. */
void tlm_eng__emit(eng *e, tlm_engine_event *ev);
void tlm_eng__emit_simple(eng *e, tlm_engine_event_kind kind, const char *state,
			  const char *message);
void tlm_eng__emit_task(eng *e, const eng_task *t, eng_task_state from, eng_task_state to,
			const char *msg);
void tlm_eng__emit_resource(eng *e, const eng_rs *r, const char *why);
/* TEARDOWN_FAILED when resources are left, then RUN_ENDED, from e->res. */
void tlm_eng__emit_end(eng *e);
/* Journals the events tlm_eng__emit_end will emit (with journal_events),
 * in the batch of the run's final state: called after that state is
 * written and before the flush that commits it. */
void tlm_eng__journal_end(eng *e);

/* Sets the client's gate and before_wait hooks to this engine's. */
void tlm_eng__client_hooks(eng *e, tlm_client_opts *co);

/* Commits the journal's open batch (group commit); a batch that was lost
 * stops the engine as a lost run does (TLM_EFENCED). */
int tlm_eng__flush(eng *e);

/* ---- outage.c ---- */
/* The REST reconcile's cadence: events 1 while NATS delivers (REST is the
 * safety net), 0 without (REST is the only source). */
void tlm_eng__cadence(eng *e, int events);
/* Looks at NATS and the control plane once a turn: a change is said once
 * (warning and audit), and NATS' changes switch the cadence. */
void tlm_eng__watch_links(eng *e);

/* ---- setup.c ---- */
int tlm_eng__setup(eng *e, tlm_error *err);
/* The client options for o's control plane at url (ours: the in-process
 * server, which keeps connections); shared by the run,
 * teardown and reconcile so that every setting applies to all of them. */
void tlm_eng__client_opts(const tlm_engine_opts *o, const char *url, int ours,
			  unsigned max_in_flight, tlm_client_opts *co);
int tlm_eng__preflight(eng *e, tlm_error *err);
void tlm_eng__cleanup(eng *e);
/* Builds the per-run tables from the spec (after the run id is known). */
int tlm_eng__build(eng *e, tlm_error *err);
void tlm_eng__free_run(eng *e);
/* Whether the run's end calls for teardown (its policy, its outcome). */
int tlm_eng__wants_teardown(const eng *e);
/* Zeroes e and res and sets the defaults from o. */
void tlm_eng__init(eng *e, const tlm_engine_opts *o, tlm_engine_result *res);

/* ---- provision.c ---- */
int tlm_eng__provision_agents(eng *e);
int tlm_eng__provision_teams(eng *e);

/* ---- probe.c ---- */
/* When the spec uses settings beyond upstream's contract (model, env, docker
 * image, cpus, memory): creates the probe agent, notes which of them its
 * create reply kept, deletes it, and maps, drops (with the operator's
 * consent) or refuses what was not kept; a refusal fails and ends the run
 * before any agent is created.  A resumed run first settles the probe an
 * earlier owner left.  0, or an error the run already recorded. */
int tlm_eng__probe(eng *e);
/* TLM_ENGINE_FIELD_* the agents' create requests would carry. */
unsigned tlm_eng__fields_used(const eng *e);

/* ---- tasks.c / follow.c ---- */
int tlm_eng__run_tasks(eng *e);
/* Tasks not finished when the run ends are cancelled (never submitted ones too). */
int tlm_eng__cancel_rest(eng *e);
void tlm_eng__task_status(eng *e, eng_task *t, const char *status, const char *message);

/* Events about task ids the run does not know (yet): kept, the last
 * ENG_EARLY_MAX of them, and replayed for t once its id is known (early.c). */
void tlm_eng__early_keep(eng *e, const char *task_id, const char *status);
void tlm_eng__early_apply(eng *e, eng_task *t);
/* A terminal state for t; completion readies its dependents, a failure skips
 * them, transitively. */
void tlm_eng__finish(eng *e, eng_task *t, eng_task_state st, const char *msg);
/* The current attempt failed or timed out: a retry, or the task's end. */
void tlm_eng__attempt_failed(eng *e, eng_task *t, eng_task_state why, const char *msg);
void tlm_eng__reconcile(eng *e);
void tlm_eng__check_timeouts(eng *e, uint64_t now);
/* Ends t's current attempt on the control plane (not awaited): a per-task
 * timeout; why is the note.  If it fails, teardown ends it (endwork.c). */
void tlm_eng__end_attempt(eng *e, const eng_task *t, const char *why);

/* ---- resume.c ---- */
/* Rebuilds the run's state from the journal (a resumed run): resources with
 * ids are adopted, intents resolved by name, deleted ones created again;
 * completed tasks stay completed, the others go again as new attempts.
 * Returns 0 or an error for the caller (the run cannot be resumed). */
int tlm_eng__restore(eng *e, const char *control_plane, long heartbeat_age_ms, tlm_error *err);

/* ---- remove.c ---- */
/* Deletes one remote resource: agents are stopped first (a stop that fails
 * does not prevent the delete), then DELETE; cb gets the DELETE's result
 * (DONE or GONE: it is gone).  Shared by teardown and reconcile. */
int tlm_eng__remove(tlm_client *c, tlm_journal_kind kind, const char *id, tlm_client_cb cb,
		    void *ctx, tlm_error *err);

/* 0 when every path the engine builds on a resource's own id fits (an
 * agent's start and stop, a team's tasks); else why not (err): ".", "..",
 * empty, or too long for ENG_PATH_MAX.  Such a resource cannot be reached:
 * it is recorded, never sent a request, and left as a leftover. */
int tlm_eng__addressable(tlm_journal_kind kind, const char *id, tlm_error *err);

/* ---- engine.c ---- */
/* Claims e's run (tlm_journal_run_claim with flags) and reads it into run
 * (clear it with tlm_journal_run_clear); *prev_age_ms gets how long ago its
 * last owner's heartbeat was (-1: none recorded), read before the claim,
 * which writes our own: open creates are waited for from then on. */
int tlm_eng__claim(eng *e, unsigned flags, tlm_journal_run *run, long *prev_age_ms, tlm_error *err);

/* ---- teardown.c ---- */
int tlm_eng__teardown(eng *e);
/* Lists what the journal still counts as existing as leftovers (kept by policy). */
int tlm_eng__list_kept(eng *e, const char *why);

/* ---- results.c ---- */
/* The compact JSON of what task (a control plane's task object) says of its
 * end: "result", "note", "statusMessage" (capped at TLM_JOURNAL_RESULT_MAX);
 * NULL when it says none.  Caller frees. */
char *tlm_eng__result_text(const json_t *task);
/* Journals it for attempt of team/subject (remote_id: the attempt's id),
 * and keeps the last line of its stderr for the summary.  0, or the
 * journal's error (the run fails). */
int tlm_eng__result_seen(eng *e, const char *team, const char *subject, int attempt,
			 const char *remote_id, const json_t *task);

/* ---- endwork.c ---- */
/* Ends every task of the run the journal has that is not terminal on the
 * control plane (a status update to failed with a note saying why) and
 * journals it; one that could not be ended is a leftover ("task").  Called
 * before teardown deletes anything, and when resources are kept. */
int tlm_eng__end_work(eng *e);

#endif
