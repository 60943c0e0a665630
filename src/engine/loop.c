/* The engine's loop: one turn drives the network, hands NATS events to the
 * task scheduler, and checks signals, the workflow deadline and the journal
 * heartbeat.  Every phase is a loop of turns, so a signal is seen within a
 * tick whatever the run is doing. */
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
	/* Events of tasks the run does not own, or of an earlier attempt of
	 * one it does, are ignored (contract §7). */
	if (tlm_strmap_get(&e->by_id, it->task_id, &i) != 0)
		return;
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
	e->error = strdup(why);
}

static void check_signals(eng *e)
{
	sig_atomic_t n = e->o->interrupts != NULL ? *e->o->interrupts : 0;

	if (n >= 2 && !e->abandoned) {
		e->abandoned = 1;
		e->ending = 1;
		if (e->outcome == TLM_ENGINE_COMPLETED)
			e->outcome = TLM_ENGINE_CANCELLED;
		tlm_eng__log(e, TLM_ENGINE_ERROR,
			     "interrupted again: leaving at once; the journal records what exists");
	} else if (n == 1 && !e->ending) {
		tlm_eng__end(
			e, TLM_ENGINE_CANCELLED,
			"interrupted: nothing more is submitted; tearing down (interrupt again to leave at once)");
	}
}

int tlm_eng__turn(eng *e, long max_wait_ms)
{
	tlm_error err = TLM_ERROR_INIT;
	uint64_t now;

	if (e->abandoned)
		return 0;
	if (max_wait_ms > ENG_TICK_MS || max_wait_ms < 0)
		max_wait_ms = ENG_TICK_MS;
	if (tlm_client_step(e->c, max_wait_ms, &err) != 0)
		tlm_eng__log(e, TLM_ENGINE_WARN, "%s", err.message);
	if (e->w != NULL)
		(void)tlm_watcher_drain(e->w, on_item, e);
	check_signals(e);
	now = tlm_eng__now_ms();
	if (e->deadline != 0 && now >= e->deadline && !e->ending) {
		char why[128];

		snprintf(why, sizeof(why), "the workflow's timeout of %ld s was reached",
			 e->spec->timeout_seconds);
		tlm_eng__end(e, TLM_ENGINE_TIMED_OUT, why);
	}
	if (e->run_id[0] != '\0' && !e->ending && now >= e->next_cancel_check) {
		int yes = 0;

		/* `telemachy cancel` from another process, maybe another host. */
		e->next_cancel_check = now + ENG_CANCEL_CHECK_MS;
		if (tlm_journal_run_cancel_requested(e->j, e->run_id, &yes, &err) == 0 && yes)
			tlm_eng__end(
				e, TLM_ENGINE_CANCELLED,
				"cancelled by `telemachy cancel`: nothing more is submitted; tearing down");
	}
	if (e->run_id[0] != '\0' && now >= e->next_heartbeat) {
		e->next_heartbeat = now + ENG_HEARTBEAT_MS;
		if (tlm_journal_run_heartbeat(e->j, e->run_id, &err) != 0)
			tlm_eng__log(e, TLM_ENGINE_WARN, "journal heartbeat: %s", err.message);
	}
	return !e->abandoned;
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

long tlm_eng__request_timeout(const eng *e)
{
	return e->o->request_timeout_ms > 0 ? e->o->request_timeout_ms : 30000;
}
