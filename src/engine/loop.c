/* The engine's loop: one turn keeps the run's heartbeat, drives the network,
 * hands NATS events to the task scheduler, and checks signals, the workflow
 * deadline and cancel requests.  Every wait of a run is a loop of turns —
 * there is no other way to wait in the engine — so the heartbeat never goes
 * stale while the owner lives, a signal is seen within a tick, and a
 * process that lost its run (fencing) stops before its next request
 * (docs/internals/engine.md, "The loop"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

static void on_item(void *ctx, const tlm_watcher_item *it)
{
	eng *e = ctx;
	eng_task *t;
	size_t i;

	if (it->kind == TLM_WATCHER_RECONCILE) {
		tlm_eng__log(e, TLM_ENGINE_DEBUG,
			     "events may have been lost: reconciling over REST");
		e->next_reconcile = 0;
		e->reconcile_gap = e->reconcile_min;
		return;
	}
	/* Events of an earlier attempt of a task are ignored; those of ids
	 * the run does not know are kept briefly, as the create's reply may
	 * still be coming (docs/contract.md §7, early.c). */
	if (e->stop != STOP_NONE)
		return;
	if (tlm_strmap_get(&e->by_id, it->task_id, &i) != 0) {
		/* maybe a task whose create reply has not arrived yet */
		tlm_eng__early_keep(e, it->task_id, it->status);
		return;
	}
	t = &e->tasks[i];
	if (t->id == NULL || strcmp(t->id, it->task_id) != 0)
		return;
	tlm_eng__task_status(e, t, it->status, NULL);
}

void tlm_eng__end(eng *e, tlm_engine_outcome outcome, const char *why)
{
	if (e->ending)
		return;
	e->ending = 1;
	e->outcome = outcome;
	tlm_eng__log(e, outcome == TLM_ENGINE_CANCELLED ? TLM_ENGINE_WARN : TLM_ENGINE_ERROR, "%s",
		     why);
	free(e->error);
	if ((e->error = strdup(why)) == NULL)
		e->oom = 1;
}

/* Ctrl-Z: the batch is committed before the process stops, so a stopped
 * owner holds no lock other writers of the journal would wait on. */
static void check_pause(eng *e)
{
	sig_atomic_t n = e->o->pauses != NULL ? *e->o->pauses : 0;

	if (n == e->pauses_seen)
		return;
	e->pauses_seen = n;
	(void)tlm_eng__flush(e);
	if (e->o->pause != NULL)
		e->o->pause();
}

static void check_signals(eng *e)
{
	sig_atomic_t n = e->o->interrupts != NULL ? *e->o->interrupts : 0;

	check_pause(e);
	if ((n >= 2 || (n >= 1 && e->leave_on_signal)) && e->stop == STOP_NONE) {
		e->stop = STOP_ABANDONED;
		e->ending = 1;
		if (e->outcome == TLM_ENGINE_COMPLETED)
			e->outcome = TLM_ENGINE_CANCELLED;
		tlm_eng__log(
			e, TLM_ENGINE_ERROR, "%s",
			e->leave_on_signal
				? "interrupted: leaving the teardown at once; the journal records what is left (run `telemachy teardown` again)"
				: "interrupted again: leaving at once; the journal records what exists");
	} else if (n == 1 && !e->ending) {
		tlm_eng__end(
			e, TLM_ENGINE_CANCELLED,
			"interrupted: nothing more is submitted; tearing down (interrupt again to leave at once)");
	}
}

/* The lease first: a process that was stopped (SIGSTOP) for longer than the
 * lease learns that it lost its run before it does anything else. */
static void heartbeat(eng *e, uint64_t now)
{
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	if (e->run_id[0] == '\0' || now < e->next_heartbeat || e->stop != STOP_NONE)
		return;
	e->next_heartbeat = now + ENG_HEARTBEAT_MS;
	rc = tlm_journal_run_heartbeat(e->j, e->run_id, &err);
	if (rc == TLM_EFENCED)
		tlm_eng__fenced(e, &err);
	else if (rc != 0)
		tlm_eng__log(e, TLM_ENGINE_WARN, "journal heartbeat: %s", err.message);
}

/* Group commit across turns (docs/internals/journal.md, "Group commit"):
 * how many ms more the open batch may stay open, gathering the writes of
 * the replies and events still coming, before its commit; 0: commit now.
 * It gathers only while the control plane is busy with enough of our
 * requests that holding the next ones back leaves it no idle time (at
 * least ENG_LINGER_MIN_BUSY in flight), while the window is not full of
 * requests waiting for this very commit, and ENG_LINGER_MS at most from
 * the batch's first write.  A request still never leaves before the
 * commit that makes what it depends on durable: the gate holds it. */
static long linger_ms(eng *e)
{
	uint64_t age_us, cap_us = (uint64_t)ENG_LINGER_MS * 1000;
	unsigned busy;

	if (e->stop != STOP_NONE || e->c == NULL || e->j == NULL || !tlm_journal_unflushed(e->j))
		return 0;
	busy = tlm_client_in_flight(e->c);
	if (busy < ENG_LINGER_MIN_BUSY ||
	    tlm_client_waiting_above(e->c, tlm_journal_committed_mark(e->j)) >= e->maxc)
		return 0;
	age_us = tlm_journal_batch_age_us(e->j);
	return age_us < cap_us ? (long)((cap_us - age_us + 999) / 1000) : 0;
}

static void check_cancel(eng *e, uint64_t now)
{
	tlm_error err = TLM_ERROR_INIT;
	int yes = 0;

	if (e->run_id[0] == '\0' || e->ending || now < e->next_cancel_check)
		return;
	/* `telemachy cancel` from another process, maybe another host. */
	e->next_cancel_check = now + ENG_CANCEL_CHECK_MS;
	if (tlm_journal_run_cancel_requested(e->j, e->run_id, &yes, &err) == 0 && yes)
		tlm_eng__end(
			e, TLM_ENGINE_CANCELLED,
			"cancelled by `telemachy cancel`: nothing more is submitted; tearing down");
}

int tlm_eng__turn(eng *e, long max_wait_ms)
{
	tlm_error err = TLM_ERROR_INIT;
	uint64_t now;
	int rc;

	if (e->stop != STOP_NONE)
		return 0;
	if (max_wait_ms > ENG_TICK_MS || max_wait_ms < 0)
		max_wait_ms = ENG_TICK_MS;
	heartbeat(e, tlm_eng__now_ms());
	if (e->stop != STOP_NONE)
		return 0;
	rc = tlm_client_step(e->c, max_wait_ms, &err);
	if (rc == TLM_EFENCED)
		tlm_eng__fenced(e, &err);
	else if (rc != 0)
		tlm_eng__log(e, TLM_ENGINE_WARN, "%s", err.message);
	if (e->w != NULL && e->stop == STOP_NONE)
		(void)tlm_watcher_drain(e->w, on_item, e);
	if (e->stop == STOP_NONE)
		tlm_eng__watch_links(e);
	check_signals(e);
	now = tlm_eng__now_ms();
	if (e->deadline != 0 && now >= e->deadline && !e->ending) {
		char why[128];

		snprintf(why, sizeof(why), "the workflow's timeout of %ld s was reached",
			 e->spec->timeout_seconds);
		tlm_eng__end(e, TLM_ENGINE_TIMED_OUT, why);
	}
	check_cancel(e, now);
	/* A live display's clock: elapsed time and the slowest task move on
	 * even when nothing happens. */
	if (now >= e->next_progress && e->stop == STOP_NONE && e->phase != NULL) {
		e->next_progress = now + TLM_ENGINE_PROGRESS_MS;
		tlm_eng__progress(e, NULL);
	}
	/* The turn's writes are committed before the next turn unless the
	 * batch is gathering a group commit (linger_ms): an open batch holds
	 * the journal's write lock, so it lasts a few ms at most.  Deferred
	 * `submitted` and `running` rows are written by the flush, just
	 * before the commit that makes them durable. */
	if (linger_ms(e) == 0)
		(void)tlm_eng__flush(e);
	return e->stop == STOP_NONE;
}

void tlm_eng__drain(eng *e)
{
	while (tlm_client_pending(e->c) > 0 && tlm_eng__turn(e, ENG_TICK_MS))
		;
}

void tlm_eng__wait(eng *e, long ms)
{
	uint64_t end = tlm_eng__now_ms() + (uint64_t)(ms > 0 ? ms : 0), now;

	while ((now = tlm_eng__now_ms()) < end && tlm_eng__turn(e, (long)(end - now)))
		;
}

int tlm_eng__await(eng *e, const int *done)
{
	while (!*done && tlm_eng__turn(e, ENG_TICK_MS))
		;
	return *done ? 0 : TLM_ECANCELLED;
}

long tlm_eng__request_timeout(const eng *e)
{
	return e->o->request_timeout_ms > 0 ? e->o->request_timeout_ms : 30000;
}

int tlm_eng__flush(eng *e)
{
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	if (e->j == NULL)
		return 0;
	if (e->nunwritten > 0)
		tlm_eng__write_unwritten(e);
	if (!tlm_journal_unflushed(e->j))
		return 0;
	if ((rc = tlm_journal_flush(e->j, &err)) != 0)
		(void)tlm_eng__journal_check(e, rc, &err);
	return rc;
}

static int fenced_error(const eng *e, tlm_error *err)
{
	return tlm_error_set(err, TLM_EFENCED, "%s",
			     e->error != NULL ? e->error : "the run was taken over");
}

/* Called by the client before requests leave, with the journal's mark
 * when they were queued (stamp(), below).  What they depend on, the writes
 * up to that mark, is committed first unless it is already (group commit,
 * docs/internals/journal.md): then the commit's transaction checked the
 * fence.  A batch still open holds the journal's lock since its own fence
 * check.  Otherwise one indexed read: the epoch this process holds the run
 * at must still be the journal's.  Without it, a process that was paused
 * past its lease and taken over would, once resumed, send what it had
 * queued before it noticed. */
int tlm_eng__gate(void *ctx, uint64_t stamp, tlm_error *err)
{
	eng *e = ctx;
	int rc;

	if (e->stop == STOP_FENCED)
		return fenced_error(e, err);
	if (!tlm_journal_durable(e->j, stamp)) {
		long hold = linger_ms(e);

		if (hold > 0)
			return (int)hold; /* the client asks again within hold ms */
		rc = tlm_eng__flush(e);
		return e->stop == STOP_FENCED ? fenced_error(e, err) : 0;
	}
	if (tlm_journal_unflushed(e->j))
		return 0; /* durable and unflushed: a batch is open, its lock held */
	if (e->run_id[0] == '\0' || tlm_journal_held_epoch(e->j, e->run_id) == 0)
		return 0; /* before the run exists (preflight), or not ours to fence */
	rc = tlm_journal_fence_check(e->j, e->run_id, err);
	if (rc == TLM_EFENCED) {
		tlm_eng__fenced(e, err);
		return rc;
	}
	return 0; /* a journal that cannot be read now is reported by its next write */
}

/* Called by the client before it blocks: a batch stays open across a wait
 * only while it gathers a group commit, and then the wait ends when the
 * gathering must (it holds the journal's write lock). */
static long before_wait(void *ctx, long wait_ms)
{
	eng *e = ctx;
	long hold = linger_ms(e);

	if (hold > 0) {
		tlm_journal_push(e->j); /* the database works while we wait */
		return hold < wait_ms ? hold : wait_ms;
	}
	(void)tlm_eng__flush(e);
	return wait_ms;
}

/* A request depends on every write made before it was queued. */
static uint64_t stamp(void *ctx)
{
	eng *e = ctx;

	return e->j != NULL ? tlm_journal_mark(e->j) : 0;
}

void tlm_eng__client_hooks(eng *e, tlm_client_opts *co)
{
	co->gate = tlm_eng__gate;
	co->stamp = stamp;
	co->before_wait = before_wait;
	co->gate_ctx = e;
}
