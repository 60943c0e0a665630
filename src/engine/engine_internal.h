/*
 * The engine's run state, shared by the files of src/engine (one phase per
 * file).  One thread owns all of it: libnats hands events over through the
 * watcher's queue and wakes the client's poll, nothing else touches a run.
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
#include "telemachy/plan.h"
#include "telemachy/server.h"
#include "util/strmap.h"

#define ENG_DEFAULT_CONCURRENCY 16
#define ENG_HEARTBEAT_MS        5000
#define ENG_TICK_MS             200 /* longest wait: signals and timers are checked this often */
#define ENG_CANCEL_CHECK_MS     250 /* how often the journal is asked for a cancel request */

/* An agent or a team on its way to existing. */
typedef enum eng_res_state {
	RES_NEW = 0, /* nothing sent */
	RES_BUSY,    /* a request about it is in flight */
	RES_UNKNOWN, /* the create's outcome is unknown: resolve by name */
	RES_CREATED, /* remote id known and journaled (agents: not started yet) */
	RES_READY,   /* agents: started; teams: created */
	RES_FAILED
} eng_res_state;

typedef struct eng eng;

typedef struct eng_res {
	eng *e;
	tlm_client_res kind;
	size_t idx; /* into spec agents[] or teams[] */
	char name[TLM_JOURNAL_NAME_MAX + 1];
	char *id;
	eng_res_state st;
	int journaled; /* its intent is in the journal already (a resumed run) */
	int checking;  /* a GET about it is in flight (is the agent still there?) */
	int settle;    /* resolving: wait one request timeout before a create */
} eng_res;

typedef enum eng_task_state {
	TASK_WAITING = 0, /* dependencies not complete */
	TASK_READY,       /* in the ready queue */
	TASK_SUBMITTING,  /* create in flight */
	TASK_UNKNOWN,     /* the create's outcome is unknown */
	TASK_SUBMITTED,
	TASK_RUNNING,
	TASK_COMPLETED, /* terminal from here on */
	TASK_FAILED,
	TASK_TIMED_OUT,
	TASK_SKIPPED,
	TASK_CANCELLED
} eng_task_state;

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
	int polling; /* a reconcile GET is in flight */
	uint64_t submitted_ms, finished_ms, first_ms;
	char *message;
} eng_task;

struct eng {
	const tlm_engine_opts *o;
	const tlm_spec *spec;
	tlm_plan *plan;
	tlm_engine_result *res;
	tlm_server *srv; /* in-process control plane, or NULL */
	tlm_client *c;
	tlm_journal *j;
	tlm_watcher *w;
	char *tmp_dir; /* dry run: the throwaway journal */
	char run_id[TLM_JOURNAL_RUN_ID_LEN + 1];
	char prefix[32]; /* "tlm-<run>-" */
	unsigned maxc;
	eng_res *agents, *teams;
	eng_task *tasks;
	tlm_strmap by_id; /* remote id of any attempt -> task index (keys: t->id, old_ids) */
	size_t *ready;    /* FIFO of task indices, capacity ntasks */
	size_t ready_head, ready_tail;
	unsigned busy; /* our requests in flight */
	int ending;    /* decided to end: submit nothing more */
	int abandoned; /* second signal */
	int prov_failed;
	int any_submitted;
	int resumed;
	uint64_t next_cancel_check;
	tlm_engine_outcome outcome;
	char *error; /* the run's first error */
	uint64_t t0, deadline, next_heartbeat, next_reconcile;
	long reconcile_gap, reconcile_min, reconcile_max;
	long settle_ms; /* teardown: how long a create of unknown outcome may still land */
	size_t agents_ready, nterminal;
	const char *phase; /* for progress reports */
};

/* ---- report.c ---- */
uint64_t tlm_eng__now_ms(void);
void tlm_eng__log(eng *e, tlm_engine_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tlm_eng__progress(eng *e, const char *phase);
/* Records the run's first error (later ones are only logged) and fails it. */
void tlm_eng__fail(eng *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Journals; a journal error is fatal to the run (logged, run failed). */
int tlm_eng__journal_check(eng *e, int rc, const tlm_error *err);
const char *tlm_eng__task_name(eng *e, size_t i, char *buf, size_t cap);

/* ---- loop.c ---- */
/* One turn of the engine loop: network, events, signals, timers.  Returns 1
 * while the run may go on, 0 once a second signal abandoned it. */
int tlm_eng__turn(eng *e, long max_wait_ms);
/* Drives requests until none of ours is in flight (or abandoned). */
void tlm_eng__drain(eng *e);
/* Waits ms while driving the loop (signals still count). */
void tlm_eng__wait(eng *e, long ms);
/* The request timeout in force (a create's outcome may stay open so long). */
long tlm_eng__request_timeout(const eng *e);
void tlm_eng__end(eng *e, tlm_engine_outcome outcome, const char *why);

/* ---- setup.c ---- */
int tlm_eng__setup(eng *e, tlm_error *err);
/* The client options for o's control plane at url (ours: the in-process
 * server, which needs no key and keeps connections); shared by the run,
 * teardown and reconcile so that every setting applies to all of them. */
void tlm_eng__client_opts(const tlm_engine_opts *o, const char *url, int ours,
			  unsigned max_in_flight, tlm_client_opts *co);
int tlm_eng__preflight(eng *e, tlm_error *err);
void tlm_eng__cleanup(eng *e);

/* ---- provision.c ---- */
void tlm_eng__provision_agents(eng *e);
void tlm_eng__provision_teams(eng *e);

/* ---- tasks.c ---- */
void tlm_eng__run_tasks(eng *e);
/* Tasks not finished when the run ends are cancelled (never submitted ones too). */
void tlm_eng__cancel_rest(eng *e);
void tlm_eng__task_status(eng *e, eng_task *t, const char *status, const char *message);
void tlm_eng__reconcile(eng *e);
void tlm_eng__check_timeouts(eng *e, uint64_t now);
int tlm_eng__task_terminal(const eng_task *t);
const char *tlm_eng__task_state_name(eng_task_state st);

/* ---- resume.c ---- */
/* Rebuilds the run's state from the journal (a resumed run): resources with
 * ids are adopted, intents resolved by name, deleted ones created again;
 * completed tasks stay completed, the others go again as new attempts.
 * Returns 0 or an error for the caller (the run cannot be resumed). */
int tlm_eng__restore(eng *e, const char *control_plane, long heartbeat_age_ms, tlm_error *err);

/* ---- teardown.c ---- */
void tlm_eng__teardown(eng *e);
/* Lists what the journal still counts as existing as leftovers (kept by policy). */
void tlm_eng__list_kept(eng *e, const char *why);

#endif
